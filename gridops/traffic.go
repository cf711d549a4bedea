package gridops

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// Light is the traffic-light colour of a requested change.
type Light string

// The colours.
const (
	Green Light = "green" // the change keeps every limit
	Amber Light = "amber" // allowed up to a stated quantity below the request
	Red   Light = "red"   // nothing allowed in that direction
)

// Request is a change of net injection at a bus: positive PKW/QKvar = up
// (more generation or less consumption), negative = down.
type Request struct {
	Bus   string  `json:"bus"`
	PKW   float64 `json:"p_kw"`
	QKvar float64 `json:"q_kvar"`
}

// Verdict is the traffic light on a request in one operating state.
type Verdict struct {
	Light   Light   `json:"light"`
	Request Request `json:"request"`
	// AllowedPKW/AllowedQKvar is the request for green, the request
	// scaled down to the AC limit for amber (within TrafficOptions.TolKW
	// of the limit, on the safe side), zero for red.
	AllowedPKW   float64 `json:"allowed_p_kw"`
	AllowedQKvar float64 `json:"allowed_q_kvar"`
	// LimitKW is the AC-confirmed limit along the request's direction
	// (kW for a pure P request, the length of the (kW, kvar) vector
	// otherwise) when Method is "ac"; red means it is below
	// TrafficOptions.TolKW.
	LimitKW float64 `json:"limit_kw,omitempty"`
	// Limiting is the constraint that caps an amber or red request.
	Limiting *Constraint `json:"limiting,omitempty"`
	// Method is "linear" when the linear screen decided (a green far from
	// any limit) and "ac" when AC power flows confirmed the boundary.
	Method string `json:"method"`
}

// TrafficOptions tune the traffic light.
type TrafficOptions struct {
	// Band is the linear screen's safety band: a request up to
	// LinearLimit/(1+Band) is green without an AC power flow; anything
	// closer to the linear limit is decided by AC power flows. Default
	// 0.5; docs/GRID_OPERATIONS.md gives the linearisation's measured
	// error it covers.
	Band float64
	// TolKW is the AC limit's tolerance (default 1 kW or kvar).
	TolKW float64
	// MaxKW caps the AC search (default 10,000 kW).
	MaxKW float64
}

func (o TrafficOptions) withDefaults() TrafficOptions {
	if o.Band <= 0 {
		o.Band = 0.5
	}
	if o.TolKW <= 0 {
		o.TolKW = 1
	}
	if o.MaxKW <= 0 {
		o.MaxKW = 10000
	}
	return o
}

// Verdict decides the traffic light for a request in this state. The
// linear screen uses the sensitivities at the state's factorised Jacobian
// (cached per bus); only requests near or beyond the linear limit cost AC
// power flows, and their AC limit along the request's direction is cached
// per bus, so many requests at one bus in one direction cost one search.
func (s *State) Verdict(req Request, opt TrafficOptions) (Verdict, error) {
	opt = opt.withDefaults()
	b, err := s.a.BusIndex(req.Bus)
	if err != nil {
		return Verdict{}, err
	}
	if math.IsNaN(req.PKW) || math.IsNaN(req.QKvar) || math.IsInf(req.PKW, 0) || math.IsInf(req.QKvar, 0) {
		return Verdict{}, fmt.Errorf("gridops: request at bus %q: %v kW / %v kvar is not a number", req.Bus, req.PKW, req.QKvar)
	}
	mag := math.Hypot(req.PKW, req.QKvar) / 1000 // MW along the direction
	if mag == 0 {
		return Verdict{}, errors.New("gridops: request at bus " + fmt.Sprintf("%q", req.Bus) + " asks for no change")
	}
	dp, dq := req.PKW/1000/mag, req.QKvar/1000/mag
	v := Verdict{Request: req}
	lin, _, err := s.linearAlong(b, dp, dq)
	if err != nil {
		return Verdict{}, err
	}
	if mag <= lin/(1+opt.Band) {
		v.Light, v.AllowedPKW, v.AllowedQKvar, v.Method = Green, req.PKW, req.QKvar, "linear"
		return v, nil
	}
	l, err := s.acLimitCached(b, dp, dq, lin, opt)
	if err != nil {
		return Verdict{}, err
	}
	v.Method = "ac"
	v.LimitKW = round3(l.limit * 1000)
	tol := opt.TolKW / 1000
	switch {
	case l.unlimited || mag <= l.limit:
		v.Light, v.AllowedPKW, v.AllowedQKvar = Green, req.PKW, req.QKvar
	case l.limit < tol:
		v.Light = Red
		c := l.limiting
		v.Limiting = &c
	default:
		v.Light = Amber
		f := l.limit / mag
		v.AllowedPKW, v.AllowedQKvar = round3(req.PKW*f), round3(req.QKvar*f)
		c := l.limiting
		v.Limiting = &c
	}
	return v, nil
}

// acLimitCached returns the AC limit along a direction at bus b (MW).
func (s *State) acLimitCached(b int, dp, dq, lin float64, opt TrafficOptions) (acLimit, error) {
	key := acKey{bus: b, dp: math.Round(dp*1e9) / 1e9, dq: math.Round(dq*1e9) / 1e9, tol: opt.TolKW}
	s.mu.Lock()
	l, ok := s.ac[key]
	s.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := s.acAlong(b, dp, dq, lin, opt.TolKW/1000, opt.MaxKW/1000)
	if err != nil {
		return acLimit{}, err
	}
	s.mu.Lock()
	if s.ac == nil {
		s.ac = map[acKey]acLimit{}
	}
	s.ac[key] = l
	s.mu.Unlock()
	return l, nil
}

// VerdictOver decides a request that spans several intervals (a bid or an
// activation order over hours): the verdict of each interval's state, and
// the one that binds (red before amber before green; among ambers the
// smallest allowed quantity).
func VerdictOver(states []*State, req Request, opt TrafficOptions) (binding Verdict, per []Verdict, err error) {
	if len(states) == 0 {
		return Verdict{}, nil, errors.New("gridops: a verdict needs at least one interval's state")
	}
	rank := map[Light]int{Green: 0, Amber: 1, Red: 2}
	for k, s := range states {
		v, err := s.Verdict(req, opt)
		if err != nil {
			return Verdict{}, nil, fmt.Errorf("gridops: interval %s: %w", s.Start.Format(time.RFC3339), err)
		}
		per = append(per, v)
		switch {
		case k == 0, rank[v.Light] > rank[binding.Light]:
			binding = v
		case v.Light == Amber && binding.Light == Amber &&
			math.Hypot(v.AllowedPKW, v.AllowedQKvar) < math.Hypot(binding.AllowedPKW, binding.AllowedQKvar):
			binding = v
		}
	}
	return binding, per, nil
}

// Verdicts decides many requests in this state on all cores: the
// sensitivities of the distinct buses first, then the verdicts. The
// result is in the order of the requests; the first error stops it.
func (s *State) Verdicts(reqs []Request, opt TrafficOptions) ([]Verdict, error) {
	seen := map[string]bool{}
	var buses []int
	for _, r := range reqs {
		if !seen[r.Bus] {
			seen[r.Bus] = true
			b, err := s.a.BusIndex(r.Bus)
			if err != nil {
				return nil, err
			}
			buses = append(buses, b)
		}
	}
	if err := s.prefetch(buses); err != nil {
		return nil, err
	}
	out := make([]Verdict, len(reqs))
	errs := make([]error, len(reqs))
	work := make(chan int, 64)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				out[k], errs[k] = s.Verdict(reqs[k], opt)
			}
		}()
	}
	for k := range reqs {
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
