package gridops

import (
	"math"
	"sort"
	"strings"
	"testing"
	"time"
)

var s0 = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// The traffic light agrees with AC power flows on requests derived from
// the grid itself: half the bus's AC hosting capacity (green), one and a
// half times it (amber, capped at the limit: AC keeps the limits at the
// cap and breaks the named element one tolerance beyond), and any request
// where the capacity is zero (red: AC breaks a limit at the tolerance).
func TestTrafficLightAgreesWithAC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state func(testing.TB) *State
		nbus  int
	}{
		{"case33bw base case, ±5 % band (violated)", func(t testing.TB) *State { _, s := case33bwState(t); return s[0] }, 6},
		{"1-LV-rural1 PV ×3 13:00 (trafo overloaded)", func(t testing.TB) *State { _, s := rural1Day(t); return s[52] }, 6},
		{"lv_schutterwald 18:00 (undervoltage, trafo overloaded)", func(t testing.TB) *State { _, s := schutterwaldDay(t); return s[72] }, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.state(t)
			a := s.a
			seen := map[Light]int{}
			for _, bus := range studyBuses(s, tc.nbus) {
				b, _ := a.BusIndex(bus)
				for _, kind := range []PowerKind{Active, Reactive} {
					for _, dir := range []Direction{Up, Down} {
						c, err := a.Hosting([]*State{s}, bus, kind, dir, HostingOptions{})
						if err != nil {
							t.Fatal(err)
						}
						var reqs []float64
						if c.Limit >= 2*c.Tol {
							reqs = append(reqs, c.Limit/2, c.Limit*1.5)
						} else {
							reqs = append(reqs, 10)
						}
						for _, x := range reqs {
							req := Request{Bus: bus}
							px, qx := vec(c, x)
							req.PKW, req.QKvar = px*1000, qx*1000
							v, err := s.Verdict(req, TrafficOptions{})
							if err != nil {
								t.Fatal(err)
							}
							seen[v.Light]++
							switch v.Light {
							case Green:
								if br, bad := broken(t, s, b, req.PKW/1000, req.QKvar/1000); bad {
									t.Errorf("%+v green (%s) but AC breaks %v", req, v.Method, br)
								}
							case Amber:
								if br, bad := broken(t, s, b, v.AllowedPKW/1000, v.AllowedQKvar/1000); bad {
									t.Errorf("%+v amber, allowed %.3f/%.3f, but AC breaks %v there", req, v.AllowedPKW, v.AllowedQKvar, br)
								}
								f := (math.Hypot(v.AllowedPKW, v.AllowedQKvar) + 1.001) / math.Hypot(req.PKW, req.QKvar)
								br, _ := broken(t, s, b, req.PKW*f/1000, req.QKvar*f/1000)
								if !br[*v.Limiting] {
									t.Errorf("%+v amber at %.3f/%.3f limited by %s, but 1 kW beyond it AC breaks %v", req, v.AllowedPKW, v.AllowedQKvar, v.Limiting, br)
								}
							case Red:
								f := (v.LimitKW + 1.001) / math.Hypot(req.PKW, req.QKvar)
								br, _ := broken(t, s, b, req.PKW*f/1000, req.QKvar*f/1000)
								if v.LimitKW >= 1 || !br[*v.Limiting] {
									t.Errorf("%+v red by %s (limit %.3f kW), but 1 kW beyond the limit AC breaks %v", req, v.Limiting, v.LimitKW, br)
								}
							}
							// The verdict agrees with the hosting capacity found separately.
							want := Green
							switch {
							case c.Unlimited:
							case c.Limit < c.Tol:
								want = Red
							case x > c.Limit+c.Tol:
								want = Amber
							}
							if v.Light != want {
								t.Errorf("%+v: %s, the hosting capacity %.1f %s says %s", req, v.Light, c.Limit, c.Unit, want)
							}
						}
					}
				}
			}
			t.Logf("verdicts: %v", seen)
			if seen[Green] == 0 || seen[Amber] == 0 {
				t.Errorf("the cases did not reach green and amber: %v", seen)
			}
		})
	}
}

// The linear screen is only trusted far from the linear limit: at
// LinearLimit/(1+Band) the AC power flow keeps every limit, for a sample
// of buses of lv_schutterwald's evening state and of the rural grid's
// noon state in all four directions. The ratio linear/AC is the
// linearisation's error the band must cover (logged; in the docs).
func TestLinearScreenIsSafe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state func(testing.TB) *State
		every int
	}{
		{"lv_schutterwald 18:00", func(t testing.TB) *State { _, s := schutterwaldDay(t); return s[72] }, 15},
		{"1-LV-rural1 PV ×3 13:00", func(t testing.TB) *State { _, s := rural1Day(t); return s[52] }, 1},
		{"case33bw base", func(t testing.TB) *State {
			a := analyser(t, pandapower(t, "case33bw"), Limits{})
			p, q := a.Model().BaseInjections()
			s, err := a.NewState(s0, s0, p, q)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.state(t)
			a := s.a
			opt := TrafficOptions{}.withDefaults()
			cand, err := a.candidates(nil)
			if err != nil {
				t.Fatal(err)
			}
			var ratios []float64
			n := 0
			for k := 0; k < len(cand); k += tc.every {
				b := cand[k]
				for _, d := range [][2]float64{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
					lin, _, err := s.linearAlong(b, d[0], d[1])
					if err != nil {
						t.Fatal(err)
					}
					if math.IsInf(lin, 1) || lin < 1e-3 {
						continue
					}
					n++
					screen := lin / (1 + opt.Band)
					if br, bad := broken(t, s, b, screen*d[0], screen*d[1]); bad {
						t.Errorf("bus %s direction %v: screened green at %.1f kW but AC breaks %v", a.m.Network().Buses[b].ID, d, screen*1000, br)
					}
					l, err := s.acAlong(b, d[0], d[1], lin, 1e-3, 10)
					if err != nil {
						t.Fatal(err)
					}
					if !l.unlimited {
						ratios = append(ratios, lin/math.Max(l.limit, 1e-3))
					}
				}
			}
			sort.Float64s(ratios)
			if len(ratios) == 0 {
				t.Fatal("no bus with a finite limit")
			}
			t.Logf("%d (bus, direction) pairs: linear/AC limit min %.3f, median %.3f, 95th %.3f, max %.3f",
				n, ratios[0], ratios[len(ratios)/2], ratios[len(ratios)*95/100], ratios[len(ratios)-1])
		})
	}
}

func TestTrafficLightBadInput(t *testing.T) {
	_, st := case33bwState(t)
	s := st[0]
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Bus: "nope", PKW: 5}, `unknown bus "nope"`},
		{Request{Bus: "17"}, "asks for no change"},
		{Request{Bus: "17", PKW: math.NaN()}, "not a number"},
		{Request{Bus: "17", QKvar: math.Inf(1)}, "not a number"},
	} {
		if _, err := s.Verdict(tc.req, TrafficOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.req, err, tc.want)
		}
	}
}

// Over a day, the binding verdict is the worst interval's: on the rural
// grid with PV ×3, 20 kW more generation at a PV bus is red at noon (the
// transformer is already overloaded by reverse flow) and green at night.
func TestVerdictOverIntervals(t *testing.T) {
	_, states := rural1Day(t)
	req := Request{Bus: "LV1.101 Bus 11", PKW: 20}
	v, per, err := VerdictOver(states, req, TrafficOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(per) != len(states) || v.Light != Red || v.Limiting == nil || v.Limiting.Kind != TrafoLoading {
		t.Fatalf("binding %+v", v)
	}
	if per[8].Light != Green || per[52].Light != Red {
		t.Errorf("02:00 %s, 13:00 %s", per[8].Light, per[52].Light)
	}
	if _, _, err := VerdictOver(nil, req, TrafficOptions{}); err == nil {
		t.Error("no states accepted")
	}
}

// State.Verdicts on all cores gives the verdicts one by one would, in the
// requests' order; an unknown bus stops it.
func TestVerdictsBatchEqualsOneByOne(t *testing.T) {
	_, st := schutterwaldDay(t)
	reqs := requests10k(st[72])[:400]
	batch, err := fresh(st[72]).Verdicts(reqs, TrafficOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := fresh(st[72])
	lights := map[Light]int{}
	for k, r := range reqs {
		v, err := s.Verdict(r, TrafficOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lights[v.Light]++
		b := batch[k]
		if b.Light != v.Light || b.AllowedPKW != v.AllowedPKW || b.AllowedQKvar != v.AllowedQKvar || b.Request != r {
			t.Errorf("request %d %+v: batch %+v, one by one %+v", k, r, b, v)
		}
	}
	t.Logf("%v", lights)
	if _, err := s.Verdicts([]Request{{Bus: "x", PKW: 1}}, TrafficOptions{}); err == nil {
		t.Error("unknown bus accepted")
	}
}
