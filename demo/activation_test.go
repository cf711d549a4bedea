package demo_test

import (
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/demo"
)

// TestPlanActivations: an order per obligation at its quantities; on one
// resource orders neither overlap nor start within a quarter hour of the
// previous one's end (the monitoring's meter-before baseline), other
// resources are not held back, and an obligation left with nothing is
// not ordered.
func TestPlanActivations(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)
	q := func(i int) time.Time { return t0.Add(time.Duration(i) * 15 * time.Minute) }
	obl := func(id, res string, from int, kw ...int64) *flexhub.Obligation {
		o := &flexhub.Obligation{ID: id, ResourceID: res, Unit: "W", Status: flexhub.ObligationActive, SystemOperatorID: "so"}
		for i, w := range kw {
			o.Intervals = append(o.Intervals, flexhub.ObligationInterval{Start: q(from + i), End: q(from + i + 1), Quantity: w * 1000})
		}
		return o
	}
	plan := demo.PlanActivations([]*flexhub.Obligation{
		obl("block", "pool", 2, 6, 6, 7, 7), // 07:00-08:00
		obl("div", "pool", 0, 5, 5, 5, 5),   // 06:30-07:30: first on the pool
		obl("hp", "heat", 2, 7, 7, 5, 5),    // another resource: whole
		obl("late", "pool", 3, 4),           // 07:15-07:30: inside div's order
		obl("gone", "pool", 0, 1),           // 06:30: overlaps div entirely
		{ID: "old", ResourceID: "pool", Unit: "W", Status: flexhub.ObligationTransferred, Intervals: obl("x", "pool", 6, 9).Intervals},
	})
	type want struct {
		id       string
		from, to int
		first    int64
	}
	wants := []want{{"div", 0, 4, 5000}, {"hp", 2, 6, 7000}, {"block", 5, 6, 7000}}
	if len(plan) != len(wants) {
		for _, p := range plan {
			t.Logf("%s %s-%s", p.Obligation.ID, p.Spec.Setpoints[0].Start, p.Spec.Setpoints[len(p.Spec.Setpoints)-1].End)
		}
		t.Fatalf("%d orders planned, want %d", len(plan), len(wants))
	}
	for i, w := range wants {
		p := plan[i]
		sps := p.Spec.Setpoints
		if p.Obligation.ID != w.id || p.Spec.ObligationID != w.id || p.Spec.Type != flexhub.OrderActivate || !sps[0].Start.Equal(q(w.from)) || !sps[len(sps)-1].End.Equal(q(w.to)) {
			t.Errorf("order %d: obligation %s, %s to %s; want %s, %s to %s", i, p.Obligation.ID, sps[0].Start, sps[len(sps)-1].End, w.id, q(w.from), q(w.to))
			continue
		}
		if w, err := sps[0].Quantity.Watts(""); err != nil || w != wants[i].first {
			t.Errorf("order %d: first set-point %v W (%v), want %d", i, w, err, wants[i].first)
		}
	}
	if s, e := demo.Window(plan); !s.Equal(q(0)) || !e.Equal(q(6)) {
		t.Errorf("window %s to %s", s, e)
	}
}
