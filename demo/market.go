package demo

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// Day is what one demo market day set up: its needs, sessions and bids.
type Day struct {
	Date       string // the real day whose load the market day replays
	Start      time.Time
	DSONeed    *flexhub.Need
	TSONeed    *flexhub.Need
	DSOSession *flexhub.MarketSession
	TSOSession *flexhub.MarketSession
	Bids       []*flexhub.Bid
	// FeederLimitW is the evening load the DSO's feeder carries without
	// congestion; the DSO needs everything above it.
	FeederLimitW int64
}

// actors of the demo register, found by their EICs.
type actors struct {
	admin, tso, dso, sunny, heat, market *flexhub.Party
	consumers                            map[string]*flexhub.Party // by EIC
}

func findActors(ctx context.Context, store flexhub.Store) (*actors, error) {
	a := &actors{consumers: map[string]*flexhub.Party{}}
	err := store.View(ctx, func(tx flexhub.Tx) error {
		for _, f := range []struct {
			eic string
			dst **flexhub.Party
		}{{app.AdminEIC, &a.admin}, {eic("10XDEMOTSO"), &a.tso}, {DSOEIC, &a.dso}, {eic("10XSUNNYAGG"), &a.sunny},
			{eic("10XHEATFLEXAGG"), &a.heat}, {eic("10XDEMOMARKET"), &a.market}} {
			p, err := tx.PartyByEIC(ctx, f.eic)
			if err != nil {
				return fmt.Errorf("demo party %s: %w (load the demo register first)", f.eic, err)
			}
			*f.dst = p
		}
		return nil
	})
	return a, err
}

func kW(v float64) flexhub.MarketQuantity {
	return flexhub.MarketQuantity{Value: math.Round(v*10) / 10, Unit: "kW"}
}

func eur(v float64) *flexhub.Money {
	return &flexhub.Money{Amount: fmt.Sprintf("%.2f", v), Currency: "EUR"}
}

// RunDay plays the market phase of one day on the demo register: the DSO
// publishes its evening congestion need on the rural feeder and the TSO an
// mFRR need, each in its own session; the aggregators bid what their
// households' real load and their batteries allow. The day replayed is
// the real day with the highest evening peak in the meter data; it is
// placed on the next market day (tomorrow, Sydney time, where the
// households are), or the day after the last one an earlier run played. It returns once every bid is in; closing the gates is
// the scheduler's work.
func RunDay(ctx context.Context, svc *app.Service, dataDir string, gateClosure time.Time) (*Day, error) {
	a, err := findActors(ctx, svc.Store())
	if err != nil {
		return nil, err
	}
	as := func(p *flexhub.Party) context.Context { return app.WithActor(ctx, p) }
	profile, err := ReadPeakEveningDay(dataDir)
	if err != nil {
		return nil, err
	}
	date := profile.Date
	now := time.Now().In(sydney)
	start := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, sydney).UTC()
	// Each run plays a day of its own: after an earlier run (on the same
	// register) the first day after the days it played, so that a new
	// day's orders and meter data never land on an earlier run's.
	played, err := lastNeedInterval(ctx, svc, a.dso)
	if err != nil {
		return nil, err
	}
	for !start.After(played) {
		l := start.In(sydney)
		start = time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, sydney).UTC()
	}
	day := &Day{Date: date, Start: start}
	at := func(i int) time.Time { return start.Add(time.Duration(i) * 15 * time.Minute) }

	// Every unit needs the DSO's grid prequalification before it bids;
	// the register operator approves the heat pumps for mFRR.
	if err := gridPrequalifyAll(ctx, svc, a); err != nil {
		return nil, err
	}
	if err := approvePending(ctx, svc, a); err != nil {
		return nil, err
	}

	// Which units (and their households' load) make up each pool.
	pools, err := poolsOf(ctx, svc, a, profile)
	if err != nil {
		return nil, err
	}

	// The DSO: the feeder carries 80% of the evening peak; above that it
	// needs upward flexibility (less consumption), 16:00-22:00 local.
	var peak int64
	for i := 64; i < 88; i++ {
		peak = max(peak, profile.Total[i])
	}
	day.FeederLimitW = peak * 8 / 10
	var dsoIntervals []flexhub.NeedInterval
	for i := 64; i < 88; i++ {
		if excess := profile.Total[i] - day.FeederLimitW; excess >= 500 {
			dsoIntervals = append(dsoIntervals, flexhub.NeedInterval{Start: at(i), Quantity: kW(float64(excess) / 1000), MaxPrice: eur(250)})
		}
	}
	cm, err := productOf(ctx, svc, a.dso)
	if err != nil {
		return nil, err
	}
	dsoNeed, err := svc.PublishNeed(as(a.dso), flexhub.NeedSpec{ProductID: cm.ID, GridAreaID: pools.gridArea, Direction: "up", Buys: "capacity",
		Intervals: dsoIntervals, Description: fmt.Sprintf("evening congestion on the LV rural feeder: load above %.1f kW (replaying %s)", float64(day.FeederLimitW)/1000, date)}, "")
	if err != nil {
		return nil, fmt.Errorf("DSO need: %w", err)
	}
	day.DSONeed = dsoNeed.Object

	// The TSO: 10 kW of mFRR up, 18:00-20:00 local.
	var tsoIntervals []flexhub.NeedInterval
	for i := 72; i < 80; i++ {
		tsoIntervals = append(tsoIntervals, flexhub.NeedInterval{Start: at(i), Quantity: kW(10), MaxPrice: eur(120)})
	}
	mfrr, err := productOf(ctx, svc, a.tso)
	if err != nil {
		return nil, err
	}
	tsoNeed, err := svc.PublishNeed(as(a.tso), flexhub.NeedSpec{ProductID: mfrr.ID, GridAreaID: pools.gridArea, Direction: "up", Buys: "capacity",
		Intervals: tsoIntervals, Description: "mFRR up reserve for the evening ramp"}, "")
	if err != nil {
		return nil, fmt.Errorf("TSO need: %w", err)
	}
	day.TSONeed = tsoNeed.Object

	open := svc.Now()
	ds, err := svc.CreateSession(as(a.dso), flexhub.SessionSpec{Name: "LV rural congestion, day ahead", Kind: "day_ahead", NeedIDs: []string{dsoNeed.Object.ID},
		GateOpening: open, GateClosure: gateClosure}, "")
	if err != nil {
		return nil, fmt.Errorf("DSO session: %w", err)
	}
	ts, err := svc.CreateSession(as(a.market), flexhub.SessionSpec{Name: "mFRR capacity, day ahead", Kind: "day_ahead", NeedIDs: []string{tsoNeed.Object.ID},
		GateOpening: open, GateClosure: gateClosure, Pricing: "uniform"}, "")
	if err != nil {
		return nil, fmt.Errorf("TSO session: %w", err)
	}
	day.DSOSession, day.TSOSession = ds.Object, ts.Object

	// Sunny's batteries discharge up to their power but no more than their
	// household consumes (no export): half the pool bids divisibly at 140
	// EUR/MW/h in every congested interval, the other half as one block
	// over the four most congested quarter hours at 95 EUR/MW/h.
	batteryOffer := func(i int) float64 { return pools.offer(pools.sunny, i, 1) }
	var divisible, block []flexhub.BidInterval
	congested := map[int]bool{}
	for _, iv := range dsoIntervals {
		i := int(iv.Start.Sub(start) / (15 * time.Minute))
		congested[i] = true
		if batteryOffer(i)/2 < minBidKW {
			continue // an FSP does not offer what the product would refuse
		}
		divisible = append(divisible, flexhub.BidInterval{Start: iv.Start, Quantity: kW(batteryOffer(i) / 2), AvailabilityPrice: eur(140)})
	}
	top := topIntervals(profile.Total, congested, 4)
	for _, i := range top {
		block = append(block, flexhub.BidInterval{Start: at(i), Quantity: kW(batteryOffer(i) / 2), AvailabilityPrice: eur(95)})
	}
	for _, spec := range []flexhub.BidSpec{
		{SessionID: ds.Object.ID, NeedID: dsoNeed.Object.ID, ResourceID: pools.sunnyGroup, Intervals: divisible, Divisible: true, MinQuantity: ptr(kW(5))},
		{SessionID: ds.Object.ID, NeedID: dsoNeed.Object.ID, ResourceID: pools.sunnyGroup, Intervals: block, Linked: true},
	} {
		b, err := svc.SubmitBid(as(a.sunny), spec, "")
		if err != nil {
			return nil, fmt.Errorf("battery pool bid: %w", err)
		}
		day.Bids = append(day.Bids, b.Object)
	}

	// HeatFlex's heat pumps can shed about 40% of their household's load,
	// up to each pump's capability: one divisible bid at 80 EUR/MW/h and a
	// cheaper indivisible 5 kW at 60 EUR/MW/h, never both (exclusive).
	var hpDivisible, hpFixed []flexhub.BidInterval
	for _, iv := range tsoIntervals {
		i := int(iv.Start.Sub(start) / (15 * time.Minute))
		offer := pools.offer(pools.heat, i, 0.4)
		if offer < minBidKW {
			continue
		}
		hpDivisible = append(hpDivisible, flexhub.BidInterval{Start: iv.Start, Quantity: kW(offer), AvailabilityPrice: eur(80)})
		hpFixed = append(hpFixed, flexhub.BidInterval{Start: iv.Start, Quantity: kW(math.Min(5, offer)), AvailabilityPrice: eur(60)})
	}
	for _, spec := range []flexhub.BidSpec{
		{SessionID: ts.Object.ID, NeedID: tsoNeed.Object.ID, ResourceID: pools.heatGroup, Intervals: hpDivisible, Divisible: true, MinQuantity: ptr(kW(5)), ExclusiveGroup: "heat-pool"},
		{SessionID: ts.Object.ID, NeedID: tsoNeed.Object.ID, ResourceID: pools.heatGroup, Intervals: hpFixed, ExclusiveGroup: "heat-pool"},
	} {
		b, err := svc.SubmitBid(as(a.heat), spec, "")
		if err != nil {
			return nil, fmt.Errorf("heat pump pool bid: %w", err)
		}
		day.Bids = append(day.Bids, b.Object)
	}
	return day, nil
}

func ptr[T any](v T) *T { return &v }

// lastNeedInterval returns the start of the latest interval among the
// system operator's needs (zero when it has none).
func lastNeedInterval(ctx context.Context, svc *app.Service, so *flexhub.Party) (time.Time, error) {
	var last time.Time
	page := flexhub.Page{Limit: flexhub.MaxPageLimit}
	for {
		res, err := svc.ListNeeds(app.WithActor(ctx, so), app.NeedFilter{SystemOperatorID: so.ID}, page)
		if err != nil {
			return last, err
		}
		for _, n := range res.Items {
			for _, iv := range n.Intervals {
				if iv.Start.After(last) {
					last = iv.Start
				}
			}
		}
		if res.Next == "" {
			return last, nil
		}
		page.After = res.Next
	}
}

// minBidKW is the demo products' minimum bid size.
const minBidKW = 5.0

// topIntervals returns the n intervals (among allowed) with the highest
// load, in time order.
func topIntervals(total []int64, allowed map[int]bool, n int) []int {
	var idx []int
	for i := range allowed {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool {
		if total[idx[a]] != total[idx[b]] {
			return total[idx[a]] > total[idx[b]]
		}
		return idx[a] < idx[b]
	})
	if len(idx) > n {
		idx = idx[:n]
	}
	sort.Ints(idx)
	return idx
}

// pool is a group and the households behind its units.
type unitLoad struct {
	maxW int64
	load []int64
}

type pools struct {
	gridArea              string
	sunnyGroup, heatGroup string
	sunny, heat           []unitLoad
}

// offer is what a pool's units can give in interval i: each unit at most
// its power and at most share of its household's load.
func (p *pools) offer(units []unitLoad, i int, share float64) float64 {
	total := 0.0
	for _, u := range units {
		total += math.Min(float64(u.maxW), share*float64(u.load[i]))
	}
	return total / 1000
}

func poolsOf(ctx context.Context, svc *app.Service, a *actors, profile *MarketDay) (*pools, error) {
	p := &pools{}
	err := svc.Store().View(ctx, func(tx flexhub.Tx) error {
		areas, _, err := tx.ListGridAreas(ctx, flexhub.Filter{"dso_id": a.dso.ID}, flexhub.Page{})
		if err != nil || len(areas) == 0 {
			return fmt.Errorf("the demo DSO has no grid area: %v", err)
		}
		p.gridArea = areas[0].ID
		for _, fsp := range []*flexhub.Party{a.sunny, a.heat} {
			rs, _, err := tx.ListResources(ctx, flexhub.Filter{"fsp_id": fsp.ID, "status": flexhub.ResourceActive}, flexhub.Page{Limit: flexhub.MaxPageLimit})
			if err != nil {
				return err
			}
			for _, r := range rs {
				if r.Kind == flexhub.ResourceGroup {
					if fsp == a.sunny {
						p.sunnyGroup = r.ID
					} else {
						p.heatGroup = r.ID
					}
					continue
				}
				mp, err := tx.MeteringPoint(ctx, r.MeteringPointID)
				if err != nil {
					return err
				}
				load := profile.Load[strings.TrimPrefix(mp.Code, "SGSC-")]
				if load == nil {
					return fmt.Errorf("no load for metering point %s", mp.Code)
				}
				w, _ := r.Technical.MaxUp.Watts("")
				u := unitLoad{maxW: w, load: load}
				if fsp == a.sunny {
					p.sunny = append(p.sunny, u)
				} else {
					p.heat = append(p.heat, u)
				}
			}
		}
		return nil
	})
	if err == nil && (p.sunnyGroup == "" || p.heatGroup == "") {
		err = fmt.Errorf("the demo aggregators' groups are missing")
	}
	return p, err
}

func productOf(ctx context.Context, svc *app.Service, so *flexhub.Party) (*flexhub.Product, error) {
	ps, err := svc.ListProducts(app.WithActor(ctx, so), app.ProductFilter{SystemOperatorID: so.ID, Status: "active"}, flexhub.Page{})
	if err != nil {
		return nil, err
	}
	if len(ps.Items) == 0 {
		return nil, fmt.Errorf("%s has no active product", so.Name)
	}
	return ps.Items[0], nil
}

// gridPrequalifyAll has every active unit of the two aggregators
// grid-prequalified by the DSO (approved), requesting where needed.
func gridPrequalifyAll(ctx context.Context, svc *app.Service, a *actors) error {
	dso := app.WithActor(ctx, a.dso)
	for _, fsp := range []*flexhub.Party{a.sunny, a.heat} {
		fctx := app.WithActor(ctx, fsp)
		rs, err := svc.ListResources(fctx, app.ResourceFilter{}, flexhub.Page{Limit: flexhub.MaxPageLimit})
		if err != nil {
			return err
		}
		gs, err := svc.ListGridPrequalifications(fctx, app.GridPrequalFilter{}, flexhub.Page{Limit: flexhub.MaxPageLimit})
		if err != nil {
			return err
		}
		has := map[string]*flexhub.GridPrequalification{}
		for _, g := range gs.Items {
			has[g.ResourceID] = g
		}
		for _, r := range rs.Items {
			if r.Kind != flexhub.ResourceUnit || r.Status != flexhub.ResourceActive {
				continue
			}
			g := has[r.ID]
			if g == nil {
				c, err := svc.RequestGridPrequalification(fctx, app.GridPrequalRequest{ResourceID: r.ID}, "")
				if err != nil {
					return fmt.Errorf("grid prequalification of %s: %w", r.Name, err)
				}
				g = c.Object
			}
			if g.Status == flexhub.GridPrequalRequested {
				if _, err := svc.DecideGridPrequalification(dso, g.ID, flexhub.GridDecisionRequest{Outcome: flexhub.GridPrequalApproved}, 0); err != nil {
					return fmt.Errorf("grid decision for %s: %w", r.Name, err)
				}
			}
		}
	}
	return nil
}

// approvePending has the system operators decide the product
// prequalifications still open in the demo register.
func approvePending(ctx context.Context, svc *app.Service, a *actors) error {
	for _, so := range []*flexhub.Party{a.tso, a.dso} {
		sctx := app.WithActor(ctx, so)
		ps, err := svc.ListPrequalifications(sctx, app.PrequalFilter{SystemOperatorID: so.ID, Status: flexhub.PrequalSubmitted}, flexhub.Page{})
		if err != nil {
			return err
		}
		for _, p := range ps.Items {
			if _, err := svc.DecidePrequalification(sctx, p.ID, flexhub.DecisionRequest{Outcome: flexhub.PrequalApproved}, 0); err != nil {
				return fmt.Errorf("prequalification decision: %w", err)
			}
		}
	}
	return nil
}
