package gridops

import (
	"testing"
	"time"

	"github.com/flexhub/flexhub/powerflow"
)

// case33bwState is the Baran & Wu feeder's base case under a stricter
// ±5 % planning band (its own band is 0.9–1.1, which the base case keeps:
// Vmin 0.913 p.u.): undervoltage along the main feeder's far end.
func case33bwState(t testing.TB) (*Analyser, []*State) {
	t.Helper()
	a := analyser(t, pandapower(t, "case33bw"), Limits{VMinPU: 0.95, VMaxPU: 1.05, OverrideBusBands: true})
	p, q := a.Model().BaseInjections()
	s, err := a.NewState(time.Date(2026, 1, 15, 18, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 18, 15, 0, 0, time.UTC), p, q)
	if err != nil {
		t.Fatal(err)
	}
	return a, []*State{s}
}

// The derived needs, applied as published (each spread equally over its
// buses), remove every violation of their interval under a full AC power
// flow and create none; and each need is not oversized: 2·TolPercent (2 %)
// less of it, the others unchanged, leaves a violation.
func TestNeedsRemoveViolationsUnderACPowerFlow(t *testing.T) {
	for _, tc := range []struct {
		name string
		day  func(testing.TB) (*Analyser, []*State)
		kind PowerKind
		dir  Direction
	}{
		{"case33bw ±5 % band", case33bwState, Active, Up},
		{"case33bw ±5 % band, reactive", case33bwState, Reactive, Up},
		{"1-LV-rural1 PV ×3 sunniest day", rural1Day, Active, Down},
		{"lv_schutterwald SGSC evening", schutterwaldDay, Active, Up},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, states := tc.day(t)
			opt := NeedOptions{Kind: tc.kind}
			violated, needsSeen := 0, 0
			for _, s := range states {
				if len(s.Violations()) == 0 {
					continue
				}
				violated++
				needs, err := a.NeedsAt(s, opt)
				if err != nil {
					t.Fatal(err)
				}
				if len(needs) == 0 {
					t.Fatalf("%s: %d violations and no need", s.Start.Format("15:04"), len(s.Violations()))
				}
				for _, n := range needs {
					needsSeen++
					if !n.Resolved || n.Quantity <= 0 || len(n.Buses) == 0 {
						t.Fatalf("%s: need %+v is not a resolved need", s.Start.Format("15:04"), n)
					}
					if n.Direction != tc.dir || n.Kind != tc.kind {
						t.Errorf("%s: need %s %s, want %s %s for %s", s.Start.Format("15:04"), n.Kind, n.Direction, tc.kind, tc.dir, n.Limiting)
					}
				}
				p, q := Apply(s, needs)
				r, err := a.Model().Solve(p, q, a.opt)
				if err != nil {
					t.Fatal(err)
				}
				for i, g := range a.excesses(r) {
					if g > 0 {
						t.Fatalf("%s: with the needs applied: %s", s.Start.Format("15:04"), a.violation(i, g))
					}
				}
				for k := range needs {
					scale := make([]float64, len(needs))
					for j := range scale {
						scale[j] = 1
					}
					scale[k] = 0.98
					p, q := applyNeeds(s, needs, scale)
					r, err := a.Model().Solve(p, q, a.opt)
					if err != nil {
						t.Fatal(err)
					}
					if !anyViolation(a, r) {
						t.Errorf("%s: need %d (%.1f %s at %d buses for %s) is oversized: 98 %% of it removes the violations too",
							s.Start.Format("15:04"), k, needs[k].Quantity, needs[k].Kind.Unit(), len(needs[k].Buses), needs[k].Limiting)
					}
				}
			}
			if violated == 0 {
				t.Fatal("the case has no violation: nothing tested")
			}
			t.Logf("%d intervals with violations, %d needs", violated, needsSeen)
		})
	}
}

// Every violated interval of the day is in a published need, needs do not
// overlap their own intervals, and the grouped quantity is the largest of
// its intervals.
func TestNeedsGroupContiguousIntervals(t *testing.T) {
	for name, day := range map[string]func(testing.TB) (*Analyser, []*State){"1-LV-rural1 PV ×3": rural1Day, "lv_schutterwald": schutterwaldDay} {
		t.Run(name, func(t *testing.T) {
			a, states := day(t)
			needs, err := a.Needs(states, NeedOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			covered := map[int]bool{}
			for _, n := range needs {
				max := 0.0
				for k, iv := range n.Intervals {
					covered[iv.Index] = true
					if k > 0 && iv.Index != n.Intervals[k-1].Index+1 {
						t.Errorf("need %s has a gap or a repeat at interval %d", n.Reason, iv.Index)
					}
					max = maxf(max, iv.Quantity)
				}
				if n.Quantity != max || !n.Start.Equal(n.Intervals[0].Start) || !n.End.Equal(n.Intervals[len(n.Intervals)-1].Start.Add(Quarter)) {
					t.Errorf("need %+v: quantity/period do not match its intervals", n)
				}
				if n.Reason == "" || n.Limiting.Element == "" || !n.Resolved {
					t.Errorf("need without reason or limiting element, or unresolved: %+v", n)
				}
			}
			for _, s := range states {
				if (len(s.Violations()) > 0) != covered[s.Index] {
					t.Errorf("interval %s: %d violations, in a need: %v", s.Start.Format("15:04"), len(s.Violations()), covered[s.Index])
				}
			}
			if len(needs) == 0 {
				t.Fatal("no needs on a congested day")
			}
			t.Logf("%d needs, first: %s %.1f %s (%s)", len(needs), needs[0].Direction, needs[0].Quantity, needs[0].Unit, needs[0].Reason)
		})
	}
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

func anyViolation(a *Analyser, r *powerflow.Result) bool {
	for _, g := range a.excesses(r) {
		if g > 0 {
			return true
		}
	}
	return false
}
