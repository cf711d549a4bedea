package gridops

import (
	"errors"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/powerflow"
)

// broken lists the constraints that a change at a bus breaks in a state,
// computed from a plain power flow: a constraint within its limit may not
// go beyond it, one already violated may not get worse.
func broken(t testing.TB, s *State, bus int, dPMW, dQMvar float64) (map[Constraint]bool, bool) {
	t.Helper()
	p := append([]float64(nil), s.PMW...)
	q := append([]float64(nil), s.QMvar...)
	p[bus] += dPMW
	q[bus] += dQMvar
	r, err := s.a.Model().SolveFrom(p, q, s.Result, s.a.opt)
	if err != nil {
		var nc *powerflow.NotConvergedError
		if errors.As(err, &nc) {
			return map[Constraint]bool{{Kind: NoSolution, Element: nc.Bus}: true}, true
		}
		t.Fatal(err)
	}
	out := map[Constraint]bool{}
	for i, g := range s.a.excesses(r) {
		lim := 0.0
		if s.g[i] > 0 {
			lim = s.g[i] + worsenTol
		}
		if g > lim {
			out[s.a.c.constraint(s.a, i)] = true
		}
	}
	return out, len(out) > 0
}

func vec(c Capacity, x float64) (float64, float64) {
	s := 1.0
	if c.Direction == Down {
		s = -1
	}
	if c.Kind == Reactive {
		return 0, s * x / 1000
	}
	return s * x / 1000, 0
}

// weakest returns the bus with the lowest voltage in a state, and a few
// buses spread over the grid's loads.
func studyBuses(s *State, n int) []string {
	min := s.Result.MinVoltage().ID
	out := []string{min}
	var loads []string
	seen := map[string]bool{min: true}
	for _, l := range s.a.m.Network().Loads {
		if !seen[l.Bus] {
			seen[l.Bus] = true
			loads = append(loads, l.Bus)
		}
	}
	sort.Strings(loads)
	for k := 0; k < n-1 && k < len(loads); k++ {
		out = append(out, loads[k*len(loads)/(n-1)])
	}
	return out
}

func rural1StudyCases(t testing.TB) []*State {
	t.Helper()
	fsys := os.DirFS(rural1Dir(t))
	n, err := grid.ReadSimBench(fsys)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ReadSimBenchProfiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := grid.ReadSimBenchStudyCases(fsys)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sp.StudyCaseStates(n, cases, Limits{}, powerflow.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// At the reported hosting capacity every state keeps its limits under AC
// power flow; one tolerance (1 kW/kvar) beyond it the named element is
// broken in the named state.
func TestHostingCapacityConfirmedByACPowerFlow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		states func(testing.TB) []*State
		nbus   int
	}{
		{"case33bw base case", func(t testing.TB) []*State {
			a := analyser(t, pandapower(t, "case33bw"), Limits{})
			p, q := a.Model().BaseInjections()
			s, err := a.NewState(time.Time{}, time.Time{}, p, q)
			if err != nil {
				t.Fatal(err)
			}
			return []*State{s}
		}, 4},
		{"1-LV-rural1 six study cases", rural1StudyCases, 4},
		{"1-LV-rural1 PV ×3 day (96 intervals)", func(t testing.TB) []*State { _, s := rural1Day(t); return s }, 2},
		{"lv_schutterwald 18:00 (violated state)", func(t testing.TB) []*State { _, s := schutterwaldDay(t); return s[72:73] }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			states := tc.states(t)
			a := states[0].a
			for _, bus := range studyBuses(states[0], tc.nbus) {
				caps, err := a.HostingCapacity(states, bus, HostingOptions{})
				if err != nil {
					t.Fatal(err)
				}
				b, _ := a.BusIndex(bus)
				for _, c := range caps {
					if c.Unlimited {
						for _, s := range states {
							dp, dq := vec(c, c.Limit)
							if br, bad := broken(t, s, b, dp, dq); bad {
								t.Errorf("bus %s %s %s: unlimited but %v at %.0f", bus, c.Kind, c.Direction, br, c.Limit)
							}
						}
						continue
					}
					for _, s := range states {
						dp, dq := vec(c, c.Limit)
						if br, bad := broken(t, s, b, dp, dq); bad {
							t.Errorf("bus %s %s %s: at the limit %.3f %s state %d breaks %v", bus, c.Kind, c.Direction, c.Limit, c.Unit, s.Index, br)
						}
					}
					dp, dq := vec(c, c.Limit+c.Tol)
					var ls *State
					for _, s := range states {
						if s.Index == c.LimitingState {
							ls = s
						}
					}
					br, _ := broken(t, ls, b, dp, dq)
					if !br[c.Limiting] {
						t.Errorf("bus %s %s %s: at limit+tol %.3f %s, %s is not broken in state %d (broken: %v)", bus, c.Kind, c.Direction, c.Limit+c.Tol, c.Unit, c.Limiting, c.LimitingState, br)
					}
					t.Logf("bus %-14s %-8s %-4s linear %9.1f AC %9.1f %s (linear/AC %.3f) limiting %s in state %d %s",
						bus, c.Kind, c.Direction, c.Linear, c.Limit, c.Unit, c.Linear/math.Max(c.Limit, c.Tol), c.Limiting, c.LimitingState, c.LimitingCase)
				}
			}
		})
	}
}

func TestHostingBadInput(t *testing.T) {
	a, states := case33bwState(t)
	if _, err := a.HostingCapacity(states, "no-such-bus", HostingOptions{}); err == nil || !strings.Contains(err.Error(), `"no-such-bus"`) {
		t.Errorf("unknown bus: %v", err)
	}
	if _, err := a.HostingCapacity(nil, "17", HostingOptions{}); err == nil {
		t.Error("no states accepted")
	}
	if _, err := a.Hosting(states, "17", "apparent", Up, HostingOptions{}); err == nil || !strings.Contains(err.Error(), "apparent") {
		t.Errorf("bad kind: %v", err)
	}
}
