package app

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/clearing"
	"github.com/flexhub/flexhub/powerflow"
)

// The common market (docs/COORDINATION.md): a common_market session is
// cleared in one optimisation together with every other common_market
// session of its market operator whose needs overlap it in time (and so
// on, transitively) — the TSO's and the DSOs' needs alike:
//
//   - each need keeps its own demand per interval; the total shortfall is
//     minimised first, then the total cost (a need is never covered beyond
//     its demand when others share its interval: what one need gets cannot
//     stand in for another's);
//   - a resource's capacity is counted once: in every interval, what all
//     its bids (into any of the needs, either direction) get together is at
//     most its technical capability (the larger of up and down; its largest
//     offer when its technical data do not say);
//   - every grid model a bid's unit sits in limits all the bids in it, the
//     TSO's as much as the DSO's: the linearised loading and voltage rows
//     of each interval's operating state over the injections of every
//     need's accepted bids — those pushing an element up against its
//     upper headroom, those pushing it down against its lower one, so
//     that whichever of the awards are activated keeps the limits — then
//     a full AC power flow of the joint result per grid and interval,
//     re-linearised at the cleared point and cleared again as a DSO's own
//     clearing does.
//
// It waits while one of those sessions is not closed yet; the joint
// result is stored in one transaction, each session getting its own
// awards, obligations and need results.

// commonMarket is what a common_market clearing reads beyond its session.
type commonMarket struct {
	sessions  []*flexhub.MarketSession          // cleared together, the triggering one first
	sessionOf map[string]*flexhub.MarketSession // need id → its session
	waiting   []string                          // sessions of the group not closed yet
	grids     []*gridClear                      // the grid models the bids' units sit in
	caps      map[string]int64                  // resource id → capability (W or var); 0: unknown
	apart     []string                          // overlapping common_market sessions of another product shape (cleared on their own)
}

// loadCommonMarket reads the group of a common_market session (nil for
// another scheme) and adds the other sessions' needs and bids to in.
func (s *Service) loadCommonMarket(ctx context.Context, tx flexhub.Tx, in *clearInput) (*commonMarket, error) {
	if in.session.Coordination != flexhub.CoordinationCommon {
		return nil, nil
	}
	cm := &commonMarket{sessions: []*flexhub.MarketSession{in.session}, sessionOf: map[string]*flexhub.MarketSession{}, caps: map[string]int64{}}
	for _, n := range in.needs {
		cm.sessionOf[n.ID] = in.session
	}
	var candidates []*flexhub.MarketSession
	for _, st := range []string{flexhub.SessionScheduled, flexhub.SessionOpen, flexhub.SessionClosed} {
		part, err := listAll(func(pg flexhub.Page) ([]*flexhub.MarketSession, string, error) {
			return tx.ListMarketSessions(ctx, flexhub.Filter{"operator_id": in.session.OperatorID, "status": st}, pg)
		})
		if err != nil {
			return nil, err
		}
		for _, m := range part {
			if m.ID != in.session.ID && m.Coordination == flexhub.CoordinationCommon {
				candidates = append(candidates, m)
			}
		}
	}
	sort.Slice(candidates, func(i, j int) bool { return candidates[i].ID < candidates[j].ID })
	// The group: sessions overlapping one already in it, until none is added.
	res := in.product.Resolution()
	type span struct{ from, to time.Time }
	spans := []span{}
	addSpans := func(needs []*flexhub.Need, r time.Duration) {
		for _, n := range needs {
			for _, iv := range n.Intervals {
				spans = append(spans, span{iv.Start, iv.Start.Add(r)})
			}
		}
	}
	addSpans(in.needs, res)
	in.bids = append([]*flexhub.Bid(nil), in.bids...)
	joined := map[string]bool{}
	for grown := true; grown; {
		grown = false
		for _, m := range candidates {
			if joined[m.ID] {
				continue
			}
			overlaps := false
			for _, sp := range spans {
				if ok, err := sessionOverlaps(ctx, tx, m, sp.from, sp.to); err != nil {
					return nil, err
				} else if ok {
					overlaps = true
					break
				}
			}
			if !overlaps {
				continue
			}
			joined[m.ID], grown = true, true
			p, err := tx.Product(ctx, m.ProductID)
			if err != nil {
				return nil, err
			}
			if p.Resolution() != res || p.PowerType != in.product.PowerType {
				cm.apart = append(cm.apart, m.ID)
				continue
			}
			if m.Status != flexhub.SessionClosed {
				cm.waiting = append(cm.waiting, m.ID)
				continue
			}
			var needs []*flexhub.Need
			for _, nid := range m.NeedIDs {
				n, err := tx.Need(ctx, nid)
				if err != nil {
					return nil, err
				}
				needs = append(needs, n)
				cm.sessionOf[n.ID] = m
			}
			addSpans(needs, res)
			bids, err := listAll(func(pg flexhub.Page) ([]*flexhub.Bid, string, error) {
				return tx.ListBids(ctx, flexhub.Filter{"session_id": m.ID}, pg)
			})
			if err != nil {
				return nil, err
			}
			in.needs = append(in.needs, needs...)
			in.bids = append(in.bids, bids...)
			cm.sessions = append(cm.sessions, m)
		}
	}
	if len(cm.waiting) > 0 {
		sort.Strings(cm.waiting)
		return cm, nil
	}
	// Where the bids sit, and what their resources can do.
	needDir := map[string]string{}
	for _, n := range in.needs {
		needDir[n.ID] = n.Direction
	}
	unit := "W"
	if in.product.PowerType == "reactive" {
		unit = "var"
	}
	gridOfArea := map[string]*gridClear{} // grid area → its grid (nil: no model)
	for _, b := range in.bids {
		if b.Status != flexhub.BidSubmitted {
			continue
		}
		_, units, err := resourceUnits(ctx, tx, b.ResourceID)
		if err != nil {
			return nil, err
		}
		if _, ok := cm.caps[b.ResourceID]; !ok {
			var c int64
			for _, u := range units {
				cu := max(capability(u, "up", unit, 0), capability(u, "down", unit, 0))
				if cu == 0 {
					c = 0
					break
				}
				c += cu
			}
			cm.caps[b.ResourceID] = c
		}
		ref, err := unitsBus(ctx, tx, units, needDir[b.NeedID], unit)
		if err != nil {
			return nil, err
		}
		if ref == nil {
			continue
		}
		g, ok := gridOfArea[ref.GridAreaID]
		if !ok {
			gm, err := tx.CurrentGridModel(ctx, ref.GridAreaID)
			switch {
			case flexhub.ErrorKind(err) == flexhub.ENotFound:
			case err != nil:
				return nil, err
			default:
				if g, err = s.newGridClear(ctx, tx, gm); err != nil {
					return nil, err
				}
				for _, n := range in.needs {
					for _, iv := range n.Intervals {
						if err := g.addState(ctx, s, tx, iv.Start, res); err != nil {
							return nil, err
						}
					}
				}
				cm.grids = append(cm.grids, g)
			}
			gridOfArea[ref.GridAreaID] = g
		}
		if g != nil && ref.GridModelID == g.modelID {
			g.bus[b.ID] = ref.BusIndex
		}
	}
	return cm, nil
}

// sessionFor is the session a need of the clearing belongs to.
func (in *clearInput) sessionFor(needID string) *flexhub.MarketSession {
	if in.common != nil {
		if m := in.common.sessionOf[needID]; m != nil {
			return m
		}
	}
	return in.session
}

// waitingText names the sessions a common_market clearing waits for.
func (cm *commonMarket) waitingText() string { return strings.Join(cm.waiting, ", ") }

// jointRow is one extra row of the joint problem (a need's cap or a
// resource's capacity): Σ x over bids ≤ limit, in one time column.
type jointRow struct {
	name  string
	t     int
	bids  []int
	limit int64
}

// clear solves the joint problem p (a column per need and interval,
// engineBid[i] the session bid behind p.Bids[i], signs[i] its injection
// sign, starts[c] column c's interval start). The engine sees it per time
// interval: every need's bids in one column, the needs' demands added up,
// with a row per need capping what it gets at its demand, a row per
// resource for its capacity and every grid's rows over all the bids in it
// (in the engine's compact network form, a bus per bid). It returns the
// accepted quantities in p's layout, the engine's reasons and the AC check
// per column.
func (cm *commonMarket) clear(p *clearing.Problem, engineBid []*flexhub.Bid, signs []int8, starts []int64, needOf []*flexhub.Need, reactive bool, solve Solver) ([][]int64, []string, []*flexhub.GridOutcome, error) {
	// Time columns.
	var times []int64
	tIdx := map[int64]int{}
	for _, k := range starts {
		if _, ok := tIdx[k]; !ok {
			tIdx[k] = 0
			times = append(times, k)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	for i, k := range times {
		tIdx[k] = i
	}
	colT := make([]int, len(starts))
	colsAt := make([][]int, len(times))
	for c, k := range starts {
		colT[c] = tIdx[k]
		colsAt[colT[c]] = append(colsAt[colT[c]], c)
	}
	nT := len(times)
	pt := &clearing.Problem{Demand: make([]int64, nT), Pricing: p.Pricing, Bids: make([]clearing.Bid, len(p.Bids))}
	for c, d := range p.Demand {
		pt.Demand[colT[c]] += d
	}
	for i, b := range p.Bids {
		nb := b
		nb.Quantity, nb.Price = make([]int64, nT), make([]int64, nT)
		for c := range b.Quantity {
			if b.Quantity[c] > 0 || b.Price[c] != 0 {
				nb.Quantity[colT[c]], nb.Price[colT[c]] = b.Quantity[c], b.Price[c]
			}
		}
		pt.Bids[i] = nb
	}
	// Needs' caps and resources' capacities.
	var extra []jointRow
	for t, cs := range colsAt {
		if len(cs) > 1 {
			for _, c := range cs {
				r := jointRow{name: fmt.Sprintf("need %s at %s", needOf[c].ID, time.UnixMicro(starts[c]).UTC().Format(time.RFC3339)), t: t, limit: p.Demand[c]}
				for i, b := range p.Bids {
					if b.Quantity[c] > 0 {
						r.bids = append(r.bids, i)
					}
				}
				if len(r.bids) > 0 {
					extra = append(extra, r)
				}
			}
		}
		byRes := map[string][]int{}
		var order []string
		for i := range pt.Bids {
			if pt.Bids[i].Quantity[t] > 0 {
				rid := engineBid[i].ResourceID
				if byRes[rid] == nil {
					order = append(order, rid)
				}
				byRes[rid] = append(byRes[rid], i)
			}
		}
		for _, rid := range order {
			bs := byRes[rid]
			if len(bs) < 2 {
				continue
			}
			var sum, most int64
			for _, i := range bs {
				sum += pt.Bids[i].Quantity[t]
				most = max(most, pt.Bids[i].Quantity[t])
			}
			limit := cm.caps[rid]
			if limit <= 0 {
				limit = most
			}
			if sum > limit {
				extra = append(extra, jointRow{name: fmt.Sprintf("resource %s capacity at %s", rid, time.UnixMicro(times[t]).UTC().Format(time.RFC3339)), t: t, bids: bs, limit: limit})
			}
		}
	}
	// Every grid's rows, on the time view with the bids at their buses.
	atBus := make([]*clearing.Problem, len(cm.grids))
	limits := make([]int, len(cm.grids))
	for gi, g := range cm.grids {
		q := *pt
		var err error
		if limits[gi], err = g.network(&q, engineBid, signs, times, reactive); err != nil {
			return nil, nil, nil, fmt.Errorf("grid rows: %w", err)
		}
		atBus[gi] = &q
	}
	build := func() {
		nw := &clearing.Network{Bids: make([]clearing.NetBid, len(pt.Bids))}
		for i := range nw.Bids {
			nw.Bids[i] = clearing.NetBid{Bus: i, Sign: 1}
		}
		for _, r := range extra {
			row := clearing.NetRow{Name: r.name, Interval: r.t, Up: r.limit, Down: clearing.Unlimited}
			for _, i := range r.bids {
				row.Buses = append(row.Buses, int32(i))
				row.PPM = append(row.PPM, 1_000_000) // Σ 10⁶·x ≤ limit·10⁶
			}
			nw.Rows = append(nw.Rows, row)
		}
		for _, q := range atBus {
			for ri := range q.Network.Rows {
				nw.Rows = append(nw.Rows, perBid(pt, q, &q.Network.Rows[ri])...)
			}
		}
		pt.Network = nw
		if len(nw.Rows) == 0 {
			pt.Network = nil
		}
	}
	build()
	accepted := make([][]int64, len(p.Bids))
	var acceptedT [][]int64
	var reasons []string
	var outT []*flexhub.GridOutcome // per grid and time column, flattened (grid-major)
	var best gridBest
	passes := 0
	for pass := 1; ; pass++ {
		got, why, err := solveScaled(pt, solve)
		if err != nil {
			return nil, nil, nil, err
		}
		changed := pass == 1 || !sameAccepted(got, acceptedT)
		acceptedT, reasons = got, why
		if len(cm.grids) == 0 || !changed {
			break // no grid to check, or the re-linearised rows changed nothing
		}
		passes = pass
		outT = outT[:0]
		ats := make([][][]*powerflow.Result, len(cm.grids))
		for gi, g := range cm.grids {
			o, at, err := g.verify(atBus[gi], acceptedT, times, limits[gi])
			if err != nil {
				return nil, nil, nil, fmt.Errorf("grid check: %w", err)
			}
			outT, ats[gi] = append(outT, o...), at
		}
		best.offer(pt, acceptedT, reasons, append([]*flexhub.GridOutcome(nil), outT...))
		if pass == maxGridPasses {
			break
		}
		for gi, g := range cm.grids {
			if err := g.relinearise(atBus[gi], acceptedT, times, ats[gi]); err != nil {
				return nil, nil, nil, fmt.Errorf("grid rows at the cleared point: %w", err)
			}
		}
		build()
	}
	if best.ok {
		acceptedT, reasons, outT = best.accepted, best.reasons, best.out
	}
	for _, o := range outT {
		o.Passes = passes
	}
	for i := range p.Bids {
		accepted[i] = make([]int64, len(starts))
		for c := range starts {
			if p.Bids[i].Quantity[c] > 0 {
				accepted[i][c] = acceptedT[i][colT[c]]
			}
		}
	}
	// Each column reports the check of its need's own grid, else of the
	// grid holding most of what it bought.
	var gridOut []*flexhub.GridOutcome
	if len(cm.grids) > 0 {
		gridOut = make([]*flexhub.GridOutcome, len(starts))
		for c := range starts {
			pick, most := -1, int64(0)
			for gi, g := range cm.grids {
				if g.gridAreaID == needOf[c].GridAreaID && needOf[c].GridAreaID != "" {
					pick, most = gi, 1<<62
					break
				}
				var v int64
				for i, b := range engineBid {
					if _, in := g.bus[b.ID]; in {
						v += accepted[i][c]
					}
				}
				if v > most {
					pick, most = gi, v
				}
			}
			if pick >= 0 {
				gridOut[c] = outT[pick*nT+colT[c]]
			}
		}
	}
	return accepted, reasons, gridOut, nil
}

// perBid writes a grid row of q (bids at their buses) in the joint
// network's form (a bus per bid, signs and reactive coefficients taken
// in) as two rows, one per side: the bids that push the element up
// against its upper headroom and those that push it down against its
// lower one. The buyers activate independently (a capacity award may not
// be activated at all), so one buyer's activation must not count on
// another's to offset it: every subset of the awards keeps the limits.
// A side no acceptance can reach is dropped.
func perBid(pt, q *clearing.Problem, r *clearing.NetRow) []clearing.NetRow {
	up := clearing.NetRow{Name: r.Name, Interval: r.Interval, Up: r.Up, Down: clearing.Unlimited}
	down := clearing.NetRow{Name: r.Name, Interval: r.Interval, Up: clearing.Unlimited, Down: r.Down}
	pos, neg := new(big.Int), new(big.Int)
	for i := range pt.Bids {
		x := pt.Bids[i].Quantity[r.Interval]
		if x == 0 {
			continue
		}
		c := r.Coeff(q.Network.Bids[i])
		switch {
		case c > 0 && r.Up != clearing.Unlimited:
			up.Buses, up.PPM = append(up.Buses, int32(i)), append(up.PPM, c)
			pos.Add(pos, new(big.Int).Mul(big.NewInt(c), big.NewInt(x)))
		case c < 0 && r.Down != clearing.Unlimited:
			down.Buses, down.PPM = append(down.Buses, int32(i)), append(down.PPM, c)
			neg.Sub(neg, new(big.Int).Mul(big.NewInt(c), big.NewInt(x)))
		}
	}
	mega := big.NewInt(1_000_000)
	var out []clearing.NetRow
	if len(up.Buses) > 0 && pos.Cmp(new(big.Int).Mul(big.NewInt(up.Up), mega)) > 0 {
		out = append(out, up)
	}
	if len(down.Buses) > 0 && neg.Cmp(new(big.Int).Mul(big.NewInt(down.Down), mega)) > 0 {
		out = append(out, down)
	}
	return out
}

// storeJoint stores a joint clearing: every session of the group, each
// with its own awards, obligations and need results, in the caller's
// transaction (m is the triggering session, read in it). A session of the
// group that changed meanwhile makes the whole clearing start again.
func (s *Service) storeJoint(ctx context.Context, tx flexhub.Tx, m *flexhub.MarketSession, in *clearInput, out *clearOutput) error {
	for i, read := range in.common.sessions {
		cur := m
		if i > 0 {
			var err error
			if cur, err = tx.MarketSession(ctx, read.ID); err != nil {
				return err
			}
			if cur.Status != flexhub.SessionClosed || cur.Version != read.Version {
				return flexhub.Errorf(flexhub.EConflict, "session %s, cleared jointly with %s, changed meanwhile; clearing again", read.ID, m.ID)
			}
		}
		sub := *in
		sub.session, sub.bids = cur, nil
		for _, b := range in.bids {
			if b.SessionID == cur.ID {
				sub.bids = append(sub.bids, b)
			}
		}
		part := &clearOutput{}
		for _, a := range out.awards {
			if a.SessionID == cur.ID {
				part.awards = append(part.awards, a)
			}
		}
		for _, o := range out.obligations {
			if o.SessionID == cur.ID {
				part.obligations = append(part.obligations, o)
			}
		}
		for _, r := range out.results {
			if r.SessionID == cur.ID {
				part.results = append(part.results, r)
			}
		}
		if err := s.storeClearing(ctx, tx, cur, &sub, part); err != nil {
			return err
		}
	}
	return nil
}
