package gridops

import (
	"math/rand/v2"
	"testing"
)

// Benchmarks on lv_schutterwald (2,940 buses) at 18:00 of the SGSC
// evening day (undervoltage at 275 buses... see docs/GRID_OPERATIONS.md).
// Each iteration starts from a fresh copy of the state: no cached
// linearisation, sensitivities or AC limits.

func eveningState(b *testing.B) *State {
	b.Helper()
	_, st := schutterwaldDay(b)
	return st[72]
}

func fresh(s *State) *State { return s.a.state(s.Index, s.Start, s.End, s.PMW, s.QMvar, s.Result) }

// Baseline unit: one AC power flow of the state warm-started from itself
// plus 10 kW at one bus (what one AC probe of a search costs).
func BenchmarkACProbeSchutterwald(b *testing.B) {
	s := eveningState(b)
	bus, _ := s.a.BusIndex(s.Result.MinVoltage().ID)
	b.ResetTimer()
	for b.Loop() {
		if _, _, _, err := s.acCheck([]int{bus}, 0.01, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func allBuses(s *State) []string {
	var out []string
	for _, bb := range s.a.m.Network().Buses {
		out = append(out, bb.ID)
	}
	return out
}

// Linear hosting estimate (up and down, active) at all 2,940 buses:
// factorisation, one sensitivity solve per bus, the screen.
func BenchmarkHostingLinearAllBusesSchutterwald(b *testing.B) {
	s0 := eveningState(b)
	b.ResetTimer()
	for b.Loop() {
		s := fresh(s0)
		all := make([]int, len(s.PMW))
		for i := range all {
			all[i] = i
		}
		if err := s.prefetch(all); err != nil {
			b.Fatal(err)
		}
		for i := range all {
			for _, d := range []float64{1, -1} {
				if _, _, err := s.linearAlong(i, d, 0); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// Hosting capacity (up and down, active), AC-confirmed to 1 kW, at all
// 2,940 buses.
func BenchmarkHostingAllBusesSchutterwald(b *testing.B) {
	s0 := eveningState(b)
	buses := allBuses(s0)
	b.ResetTimer()
	for b.Loop() {
		s := fresh(s0)
		for _, d := range []Direction{Up, Down} {
			if _, err := s.a.HostingAll([]*State{s}, buses, Active, d, HostingOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// requests10k are 10,000 requests at the buses of the grid's loads
// (household connection points): 70 % active, 20 % reactive, 10 % both,
// up or down, 1-30 kW/kvar, from a fixed seed.
func requests10k(s *State) []Request {
	r := rand.New(rand.NewPCG(7, 7))
	var buses []string
	seen := map[string]bool{}
	for _, l := range s.a.m.Network().Loads {
		if !seen[l.Bus] {
			seen[l.Bus] = true
			buses = append(buses, l.Bus)
		}
	}
	out := make([]Request, 10000)
	for k := range out {
		q := func() float64 {
			x := 1 + 29*r.Float64()
			if r.IntN(2) == 0 {
				return -x
			}
			return x
		}
		req := Request{Bus: buses[r.IntN(len(buses))]}
		switch u := r.Float64(); {
		case u < 0.7:
			req.PKW = q()
		case u < 0.9:
			req.QKvar = q()
		default:
			req.PKW, req.QKvar = q(), q()
		}
		out[k] = req
	}
	return out
}

func benchTraffic(b *testing.B, warm, batch bool) {
	s0 := eveningState(b)
	reqs := requests10k(s0)
	count := map[string]int{}
	var s *State
	if warm {
		s = fresh(s0)
		for _, r := range reqs {
			if _, err := s.Verdict(r, TrafficOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if !warm {
			s = fresh(s0)
		}
		clear(count)
		var vs []Verdict
		if batch {
			var err error
			if vs, err = s.Verdicts(reqs, TrafficOptions{}); err != nil {
				b.Fatal(err)
			}
		} else {
			for _, r := range reqs {
				v, err := s.Verdict(r, TrafficOptions{})
				if err != nil {
					b.Fatal(err)
				}
				vs = append(vs, v)
			}
		}
		for _, v := range vs {
			count[string(v.Light)]++
			count[v.Method]++
		}
	}
	b.ReportMetric(float64(count["green"]), "green")
	b.ReportMetric(float64(count["amber"]), "amber")
	b.ReportMetric(float64(count["red"]), "red")
	b.ReportMetric(float64(count["ac"]), "ac-decided")
}

// 10,000 traffic-light verdicts on a fresh state: includes the Jacobian
// factorisation, the sensitivities of every bus asked about and the AC
// searches near the limits.
func BenchmarkTrafficLight10kSchutterwald(b *testing.B) { benchTraffic(b, false, false) }

// The same 10,000 through State.Verdicts (all cores).
func BenchmarkTrafficLight10kBatchSchutterwald(b *testing.B) { benchTraffic(b, false, true) }

// The same 10,000 verdicts again on the warmed state (sensitivities and AC
// limits cached): the cost of a verdict once the interval is prepared.
func BenchmarkTrafficLight10kWarmSchutterwald(b *testing.B) { benchTraffic(b, true, false) }
