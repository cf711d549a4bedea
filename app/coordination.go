package app

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// TSO–DSO coordination schemes (docs/COORDINATION.md), chosen per market
// session:
//
//   - dso_approval (default): a buyer uses a resource in another party's
//     distribution grid only under that DSO's traffic light, per bid and
//     per activation order (trafficlight_check.go); the DSO clears its own
//     sessions under its grid's limits (clear_grid.go).
//   - dso_first: as dso_approval, and the local markets go first: the
//     session is not cleared while a session of the DSOs of its bids'
//     units over overlapping intervals has not cleared yet, and what those
//     DSOs bought of a resource is taken off the resource's bids here — the
//     TSO gets what the local markets left.

// dsoFirst is what a dso_first clearing reads: per bid and interval
// start (UnixMicro) where the DSOs bought some of its resource, the most
// the resource has left (its technical capability in the direction minus
// what the DSOs bought; W or var); and the DSO sessions not cleared yet.
type dsoFirst struct {
	left    map[string]map[int64]int64
	waiting []string
}

// loadDSOFirst reads the DSOs' sessions and obligations for a dso_first
// session (nil for another scheme).
func (s *Service) loadDSOFirst(ctx context.Context, tx flexhub.Tx, in *clearInput) (*dsoFirst, error) {
	if in.session.Coordination != flexhub.CoordinationDSOFirst {
		return nil, nil
	}
	buyer := in.session.SystemOperatorID
	res := in.product.Resolution()
	var from, to time.Time
	for _, n := range in.needs {
		for _, iv := range n.Intervals {
			if from.IsZero() || iv.Start.Before(from) {
				from = iv.Start
			}
			if e := iv.Start.Add(res); e.After(to) {
				to = e
			}
		}
	}
	out := &dsoFirst{left: map[string]map[int64]int64{}}
	needDir := map[string]string{}
	for _, n := range in.needs {
		needDir[n.ID] = n.Direction
	}
	unit := "W"
	if in.product.PowerType == "reactive" {
		unit = "var"
	}
	dsos := map[string]bool{}
	type unitOf struct {
		bid   *flexhub.Bid
		units []*flexhub.Resource // the resource and its units
		cap   int64               // the resource's capability in the need's direction; 0: unknown
	}
	var bids []unitOf
	for _, b := range in.bids {
		if b.Status != flexhub.BidSubmitted {
			continue
		}
		r, units, err := resourceUnits(ctx, tx, b.ResourceID)
		if err != nil {
			return nil, err
		}
		for _, u := range units {
			if u.DSOID != "" && u.DSOID != buyer {
				dsos[u.DSOID] = true
			}
		}
		var cp int64
		for _, u := range units {
			c := capability(u, needDir[b.NeedID], unit, 0)
			if c == 0 {
				cp = 0
				break
			}
			cp += c
		}
		bids = append(bids, unitOf{bid: b, units: append(units, r), cap: cp})
	}
	// The DSOs' sessions over the same time that have not cleared yet.
	// (Only sessions still to clear are read: cleared, failed and
	// cancelled ones — the DSO's whole history — hold nothing to wait for.)
	for d := range dsos {
		var ms []*flexhub.MarketSession
		for _, st := range []string{flexhub.SessionScheduled, flexhub.SessionOpen, flexhub.SessionClosed} {
			part, err := listAll(func(pg flexhub.Page) ([]*flexhub.MarketSession, string, error) {
				return tx.ListMarketSessions(ctx, flexhub.Filter{"system_operator_id": d, "status": st}, pg)
			})
			if err != nil {
				return nil, err
			}
			ms = append(ms, part...)
		}
		for _, m := range ms {
			overlaps, err := sessionOverlaps(ctx, tx, m, from, to)
			if err != nil {
				return nil, err
			}
			if overlaps {
				out.waiting = append(out.waiting, m.ID)
			}
		}
	}
	if len(out.waiting) > 0 {
		sort.Strings(out.waiting)
		return out, nil
	}
	// What the DSOs bought of each bid's resource (or its units), and so
	// what it has left.
	for _, bu := range bids {
		taken := map[int64]int64{}
		seen := map[string]bool{}
		for _, u := range bu.units {
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			obs, err := listAll(func(pg flexhub.Page) ([]*flexhub.Obligation, string, error) {
				return tx.ListObligations(ctx, flexhub.Filter{"resource_id": u.ID, "status": flexhub.ObligationActive}, pg)
			})
			if err != nil {
				return nil, err
			}
			for _, o := range obs {
				if !dsos[o.SystemOperatorID] {
					continue
				}
				for _, iv := range bu.bid.Intervals {
					start, end := iv.Start, iv.Start.Add(res)
					var q int64
					for _, oi := range o.Intervals {
						if oi.Start.Before(end) && start.Before(oi.End) {
							q = max(q, oi.Quantity)
						}
					}
					taken[start.UnixMicro()] += q
				}
			}
		}
		for k, q := range taken {
			if q <= 0 {
				continue
			}
			if out.left[bu.bid.ID] == nil {
				out.left[bu.bid.ID] = map[int64]int64{}
			}
			if bu.cap > 0 {
				out.left[bu.bid.ID][k] = max(0, bu.cap-q)
			} else {
				out.left[bu.bid.ID][k] = 0 // capability unknown: nothing is known to be left
			}
		}
	}
	return out, nil
}

// sessionOverlaps reports whether a session has a need interval in [from, to).
func sessionOverlaps(ctx context.Context, tx flexhub.Tx, m *flexhub.MarketSession, from, to time.Time) (bool, error) {
	p, err := tx.Product(ctx, m.ProductID)
	if err != nil {
		return false, err
	}
	r := p.Resolution()
	for _, nid := range m.NeedIDs {
		n, err := tx.Need(ctx, nid)
		if err != nil {
			return false, err
		}
		for _, iv := range n.Intervals {
			if iv.Start.Before(to) && from.Before(iv.Start.Add(r)) {
				return true, nil
			}
		}
	}
	return false, nil
}

// waitingText names the sessions a dso_first clearing waits for.
func (d *dsoFirst) waitingText() string { return strings.Join(d.waiting, ", ") }
