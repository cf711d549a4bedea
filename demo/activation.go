package demo

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// After the market day clears, the system operators activate what they
// bought: each sends an activation order per obligation it is owed, with
// the obligation's quantities as set-points. The demo's products are
// manual, so every order names its obligation.

// Parties are the demo register's system operators and aggregators.
type Parties struct {
	Admin, DSO, TSO, Sunny, HeatFlex *flexhub.Party
}

// FindParties finds the demo register's parties by their EICs.
func FindParties(ctx context.Context, store flexhub.Store) (*Parties, error) {
	a, err := findActors(ctx, store)
	if err != nil {
		return nil, err
	}
	return &Parties{Admin: a.admin, DSO: a.dso, TSO: a.tso, Sunny: a.sunny, HeatFlex: a.heat}, nil
}

// DayObligations returns the obligations the day's two sessions awarded,
// as their system operators list them.
func DayObligations(ctx context.Context, svc *app.Service, day *Day) ([]*flexhub.Obligation, error) {
	var out []*flexhub.Obligation
	for _, m := range []*flexhub.MarketSession{day.DSOSession, day.TSOSession} {
		var so *flexhub.Party
		if err := svc.Store().View(ctx, func(tx flexhub.Tx) error {
			var err error
			so, err = tx.Party(ctx, m.SystemOperatorID)
			return err
		}); err != nil {
			return nil, err
		}
		page := flexhub.Page{Limit: flexhub.MaxPageLimit}
		for {
			res, err := svc.ListObligations(app.WithActor(ctx, so), app.ResultFilter{SessionID: m.ID, Status: flexhub.ObligationActive}, page)
			if err != nil {
				return nil, fmt.Errorf("obligations of %s: %w", m.Name, err)
			}
			out = append(out, res.Items...)
			if res.Next == "" {
				break
			}
			page.After = res.Next
		}
	}
	return out, nil
}

// PlannedOrder is one activation order a system operator is to send.
type PlannedOrder struct {
	Obligation *flexhub.Obligation
	Spec       flexhub.ActivationOrderSpec
}

// PlanActivations turns obligations into activation orders: each
// obligation is activated over its intervals at the quantities it owes.
// flexhub monitors an order against the whole resource's meter, with the
// "meter before" baseline of the quarter hour before the order starts, so
// two orders on one resource must neither overlap nor follow each other
// closer than that quarter hour (flexhub.BaselineWindow): the second
// order's baseline would contain the first order's delivery. Per
// resource, obligations are taken by their first interval; a later
// obligation is activated only from the first interval that starts a
// baseline window after the previous order's end, and not at all when
// none does. The result is in time order.
func PlanActivations(obligations []*flexhub.Obligation) []PlannedOrder {
	obls := make([]*flexhub.Obligation, 0, len(obligations))
	for _, o := range obligations {
		if o.Status == flexhub.ObligationActive && len(o.Intervals) > 0 && o.Unit == "W" {
			obls = append(obls, o)
		}
	}
	sort.SliceStable(obls, func(i, j int) bool {
		a, b := obls[i].Intervals[0].Start, obls[j].Intervals[0].Start
		if !a.Equal(b) {
			return a.Before(b)
		}
		return obls[i].ID < obls[j].ID
	})
	free := map[string]time.Time{} // resource → earliest start of its next order
	var out []PlannedOrder
	for _, o := range obls {
		spec := flexhub.ActivationOrderSpec{Type: flexhub.OrderActivate, ObligationID: o.ID,
			Reason: fmt.Sprintf("activation of obligation %s", o.ID)}
		var last time.Time
		for _, iv := range o.Intervals {
			if iv.Quantity <= 0 || iv.Start.Before(free[o.ResourceID]) {
				continue
			}
			if !last.IsZero() && iv.Start.After(last) {
				break // one contiguous run per order
			}
			spec.Setpoints = append(spec.Setpoints, flexhub.SetpointSpec{Start: iv.Start, End: iv.End,
				Quantity: &flexhub.Power{Value: float64(iv.Quantity), Unit: "W"}})
			last = iv.End
		}
		if len(spec.Setpoints) == 0 {
			continue
		}
		free[o.ResourceID] = last.Add(flexhub.BaselineWindow)
		out = append(out, PlannedOrder{Obligation: o, Spec: spec})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Spec.Setpoints[0].Start.Before(out[j].Spec.Setpoints[0].Start) })
	return out
}

// Window returns the span of the planned orders' set-points.
func Window(orders []PlannedOrder) (start, end time.Time) {
	for _, o := range orders {
		s, e := o.Spec.Setpoints[0].Start, o.Spec.Setpoints[len(o.Spec.Setpoints)-1].End
		if start.IsZero() || s.Before(start) {
			start = s
		}
		if e.After(end) {
			end = e
		}
	}
	return start, end
}
