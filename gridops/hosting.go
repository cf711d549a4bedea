package gridops

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"
)

// Direction of a change of net injection.
type Direction string

// Directions: up = more generation or less consumption.
const (
	Up   Direction = "up"
	Down Direction = "down"
)

// PowerKind is active or reactive power.
type PowerKind string

// Power kinds.
const (
	Active   PowerKind = "active"
	Reactive PowerKind = "reactive"
)

// Unit is "kW" for active and "kvar" for reactive power.
func (k PowerKind) Unit() string {
	if k == Reactive {
		return "kvar"
	}
	return "kW"
}

func (d Direction) sign() float64 {
	if d == Down {
		return -1
	}
	return 1
}

// HostingOptions tune the hosting-capacity search.
type HostingOptions struct {
	// TolKW is the AC search's tolerance in kW (kvar): the reported limit
	// is within limits and limit+TolKW is not (default 1).
	TolKW float64
	// MaxKW caps the search (default 10,000 kW): a bus that takes this
	// much without a violation is reported Unlimited.
	MaxKW float64
}

func (o HostingOptions) withDefaults() HostingOptions {
	if o.TolKW <= 0 {
		o.TolKW = 1
	}
	if o.MaxKW <= 0 {
		o.MaxKW = 10000
	}
	return o
}

// Capacity is the hosting capacity at a bus in one direction: the largest
// change of net injection that keeps every limit in every given state (a
// state already violated may not be made worse).
type Capacity struct {
	Bus       string    `json:"bus"`
	Kind      PowerKind `json:"kind"`
	Direction Direction `json:"direction"`
	Unit      string    `json:"unit"` // kW or kvar
	// Linear is the first-order estimate from the sensitivities (the
	// smallest over the states).
	Linear float64 `json:"linear"`
	// Limit is confirmed by AC power flows: Limit keeps all limits and
	// Limit+Tol breaks Limiting in LimitingStart's state.
	Limit     float64 `json:"limit"`
	Tol       float64 `json:"tol"`
	Unlimited bool    `json:"unlimited,omitempty"` // no limit up to HostingOptions.MaxKW
	// Limiting is the constraint broken just beyond Limit, in the state
	// starting at LimitingStart (index LimitingState).
	Limiting      Constraint `json:"limiting,omitzero"`
	LimitingState int        `json:"limiting_state"`
	LimitingStart time.Time  `json:"limiting_start,omitzero"`
	LimitingCase  string     `json:"limiting_case,omitempty"` // study case name, if the states are study cases
}

// HostingCapacity returns the four hosting capacities at a bus (active up,
// active down, reactive up, reactive down) over the given operating states.
func (a *Analyser) HostingCapacity(states []*State, bus string, opt HostingOptions) ([]Capacity, error) {
	var out []Capacity
	for _, k := range []PowerKind{Active, Reactive} {
		for _, d := range []Direction{Up, Down} {
			c, err := a.Hosting(states, bus, k, d, opt)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Hosting returns the hosting capacity at a bus for one kind and direction.
func (a *Analyser) Hosting(states []*State, bus string, kind PowerKind, dir Direction, opt HostingOptions) (Capacity, error) {
	if len(states) == 0 {
		return Capacity{}, errors.New("gridops: hosting capacity needs at least one operating state")
	}
	b, err := a.BusIndex(bus)
	if err != nil {
		return Capacity{}, err
	}
	if kind != Active && kind != Reactive {
		return Capacity{}, fmt.Errorf("gridops: power kind %q: use active or reactive", kind)
	}
	if dir != Up && dir != Down {
		return Capacity{}, fmt.Errorf("gridops: direction %q: use up or down", dir)
	}
	for _, s := range states {
		if s.a != a && len(s.PMW) != len(a.m.Network().Buses) {
			return Capacity{}, errors.New("gridops: operating state is from another grid")
		}
	}
	opt = opt.withDefaults()
	dp, dq := dir.sign(), 0.0
	if kind == Reactive {
		dp, dq = 0, dir.sign()
	}
	lin, l, err := a.limitAlong(states, b, dp, dq, opt.TolKW/1000, opt.MaxKW/1000)
	if err != nil {
		return Capacity{}, err
	}
	c := Capacity{Bus: bus, Kind: kind, Direction: dir, Unit: kind.Unit(), Tol: opt.TolKW,
		Linear: round3(math.Min(lin, opt.MaxKW/1000) * 1000), Limit: round3(l.limit * 1000), Unlimited: l.unlimited}
	if !l.unlimited {
		c.Limiting, c.LimitingState, c.LimitingStart, c.LimitingCase = l.limiting, states[l.state].Index, states[l.state].Start, states[l.state].Case
	}
	return c, nil
}

// acLimit is an AC-confirmed limit along a direction, in MW of the
// direction's (unit) vector.
type acLimit struct {
	limit     float64
	unlimited bool
	limiting  Constraint
	state     int // index into the states slice
}

type acKey struct {
	bus    int
	dp, dq float64
	tol    float64
}

// linearAlong is the first-order limit (MW along the unit direction
// (dp, dq)) at bus b in one state, and the constraint that sets it (-1 if
// none). Voltages are linear in the change; loadings follow the circle
// model below.
func (s *State) linearAlong(b int, dp, dq float64) (float64, int, error) {
	bs, err := s.sens(b)
	if err != nil {
		return 0, -1, err
	}
	best, bi := math.Inf(1), -1
	for k, ci := range bs.idx {
		i := int(ci)
		r := bs.p[k]*dp + bs.q[k]*dq // excess change per MW along the direction
		var t float64
		if s.a.isLoading(i) {
			// Circle model: on the path between the bus and its slack a
			// unit of P or Q injection moves the branch's complex power by
			// one unit in P or Q; in loading units that is a vector of
			// length c = |(dL/dP, dL/dQ)| whose projection on the present
			// flow is r. So L(Δ)² = (L0 + rΔ)² + (kΔ)², k² = c² - r²,
			// which turns back up when a flow is driven through zero and
			// grows when a reactive change meets an active flow.
			l0 := s.loadingNow(i)
			cap := s.a.lim.MaxLoadingPercent + s.allowed(i)
			c2 := bs.p[k]*bs.p[k] + bs.q[k]*bs.q[k]
			if c2 == 0 {
				continue
			}
			disc := l0*l0*r*r - c2*(l0*l0-cap*cap)
			t = (-l0*r + math.Sqrt(math.Max(disc, 0))) / c2
		} else {
			if r <= 0 {
				continue
			}
			t = (s.allowed(i) - s.g[i]) / r
		}
		if t < best {
			best, bi = math.Max(t, 0), i
		}
	}
	return best, bi, nil
}

// limitAlong finds the linear and the AC limit along a unit direction at
// bus b over all states (MW): the states are tried in the order of their
// linear limits; once one state has set a limit, every other state costs
// one power flow at that limit unless it is tighter.
func (a *Analyser) limitAlong(states []*State, b int, dp, dq, tol, max float64) (float64, acLimit, error) {
	lins := make([]float64, len(states))
	order := make([]int, len(states))
	for k, s := range states {
		l, _, err := s.linearAlong(b, dp, dq)
		if err != nil {
			return 0, acLimit{}, err
		}
		lins[k], order[k] = l, k
	}
	sort.SliceStable(order, func(i, j int) bool { return lins[order[i]] < lins[order[j]] })
	res := acLimit{limit: max, unlimited: true}
	for n, k := range order {
		s := states[k]
		var l acLimit
		var err error
		if n == 0 {
			l, err = s.acAlong(b, dp, dq, lins[k], tol, max)
		} else {
			ok, _, _, e := s.acCheck([]int{b}, res.limit*dp, res.limit*dq)
			if e != nil {
				return 0, acLimit{}, e
			}
			if ok {
				continue
			}
			l, err = s.acBisect(b, dp, dq, 0, res.limit, tol)
		}
		if err != nil {
			return 0, acLimit{}, err
		}
		if l.unlimited {
			continue
		}
		if res.unlimited || l.limit <= res.limit {
			l.state = k
			res = l
		}
	}
	return lins[order[0]], res, nil
}

// probe is one AC power flow with t MW along (dp, dq) at bus b: whether
// all limits hold, the worst constraint otherwise (index -1 for no
// solution) and every constraint's margin beyond what is allowed.
type probe struct {
	ok bool
	ci int
	c  Constraint
	m  []float64 // g - allowed per constraint; nil without a solution
}

func (s *State) probe(b int, dp, dq, t float64) (probe, error) {
	ok, c, r, err := s.acCheck([]int{b}, t*dp, t*dq)
	if err != nil {
		return probe{}, err
	}
	pr := probe{ok: ok, c: c, ci: -1}
	if r == nil {
		return pr, nil
	}
	pr.m = s.a.excesses(r)
	for i := range pr.m {
		pr.m[i] -= s.allowed(i)
	}
	if !ok {
		pr.ci = s.a.index(c)
	}
	return pr, nil
}

// acAlong searches the AC limit in one state along a unit direction,
// starting from the linear estimate hint: bracket it, then secant steps
// on the breaking constraint's margin, each followed by a probe one
// tolerance above the last feasible point, until the bracket is one
// tolerance wide. Typically 3-5 power flows.
func (s *State) acAlong(b int, dp, dq, hint, tol, max float64) (acLimit, error) {
	t := math.Min(math.Max(hint, tol), max)
	lo, mLo := 0.0, s.marginNow()
	var hi probe
	hiT := 0.0
	for {
		pr, err := s.probe(b, dp, dq, t)
		if err != nil {
			return acLimit{}, err
		}
		if !pr.ok {
			hi, hiT = pr, t
			break
		}
		if t >= max {
			return acLimit{limit: max, unlimited: true}, nil
		}
		// Extrapolate every constraint's margin through the last two
		// feasible points and aim just beyond the nearest crossing, so
		// the next probe usually brackets the limit within a tolerance.
		next := math.Inf(1)
		for i, m := range pr.m {
			if d := m - mLo[i]; d > 0 {
				next = math.Min(next, t+(-m)*(t-lo)/d)
			}
		}
		lo, mLo = t, pr.m
		switch {
		case math.IsInf(next, 1):
			t = 2*t + tol
		default:
			t = math.Max(next+tol/2, t+tol)
		}
		t = math.Min(t, max)
	}
	lastSecant := false
	for it := 0; it < 100; it++ {
		if hiT-lo <= tol*(1+1e-9) {
			// hi breaks hi.c and lies at most one tolerance above lo; a
			// margin that grows along the ray (the usual case, checked in
			// the tests at lo+tol) breaks at lo+tol too.
			return acLimit{limit: lo, limiting: hi.c}, nil
		}
		var t float64
		switch {
		case lastSecant:
			t = lo + tol*(1-1e-6) // close the bracket just above the secant's feasible point
		case hi.ci >= 0 && mLo != nil && hi.m[hi.ci] > 0 && mLo[hi.ci] <= 0:
			a, c := mLo[hi.ci], hi.m[hi.ci]
			t = lo + (hiT-lo)*(-a)/(c-a) - tol/2
		default:
			t = lo + (hiT-lo)/2
		}
		t = math.Min(math.Max(t, lo+tol/8), hiT-tol/8)
		pr, err := s.probe(b, dp, dq, t)
		if err != nil {
			return acLimit{}, err
		}
		if pr.ok {
			lo, mLo = t, pr.m
			lastSecant = !lastSecant
		} else {
			hi, hiT = pr, t
			lastSecant = false
		}
	}
	return acLimit{}, fmt.Errorf("gridops: AC limit search at bus %q did not settle", s.a.m.Network().Buses[b].ID)
}

// acBisect narrows [lo, hi] (lo within limits, hi not) to the limit; used
// when another state already bounds the limit by hi.
func (s *State) acBisect(b int, dp, dq, lo, hi, tol float64) (acLimit, error) {
	return s.acAlong(b, dp, dq, hi, tol, hi*(1+1e-9)+tol)
}

// HostingAll computes the hosting capacity of one kind and direction at
// many buses, spread over all cores (buses are independent; each search
// warm-starts from the states' own results).
func (a *Analyser) HostingAll(states []*State, buses []string, kind PowerKind, dir Direction, opt HostingOptions) ([]Capacity, error) {
	out := make([]Capacity, len(buses))
	errs := make([]error, len(buses))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				out[k], errs[k] = a.Hosting(states, buses[k], kind, dir, opt)
			}
		}()
	}
	for k := range buses {
		work <- k
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
