package gridops

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/flexhub/flexhub/powerflow"
)

// Analyser checks operating states of one compiled grid against Limits.
// It is read-only after New and safe for concurrent use.
type Analyser struct {
	m          *powerflow.Model
	lim        Limits
	opt        powerflow.Options
	vmin, vmax []float64 // per bus
	c          cons
	busIdx     map[string]int
	area       []int // per bus, see areas
	consArea   []int // per constraint
}

// New prepares an analyser of the compiled grid m under the limits lim
// (zero fields take the defaults) with the power-flow options opt.
func New(m *powerflow.Model, lim Limits, opt powerflow.Options) (*Analyser, error) {
	if m == nil {
		return nil, errors.New("gridops: no power-flow model")
	}
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	net := m.Network()
	a := &Analyser{m: m, lim: lim, opt: opt, busIdx: net.BusIndex(),
		c: cons{nb: len(net.Buses), nl: len(net.Lines), nt: len(net.Trafos)}}
	a.vmin = make([]float64, len(net.Buses))
	a.vmax = make([]float64, len(net.Buses))
	for i, b := range net.Buses {
		a.vmin[i], a.vmax[i] = lim.VMinPU, lim.VMaxPU
		if !lim.OverrideBusBands && b.VMinPU > 0 {
			a.vmin[i] = b.VMinPU
		}
		if !lim.OverrideBusBands && b.VMaxPU > 0 {
			a.vmax[i] = b.VMaxPU
		}
	}
	a.area = areas(a)
	a.consArea = constraintAreas(a, a.area)
	return a, nil
}

// Model returns the compiled grid.
func (a *Analyser) Model() *powerflow.Model { return a.m }

// Limits returns the limits in force (defaults filled in).
func (a *Analyser) Limits() Limits { return a.lim }

// BusIndex returns the index of a bus ID, or an error naming it.
func (a *Analyser) BusIndex(id string) (int, error) {
	i, ok := a.busIdx[id]
	if !ok {
		return 0, fmt.Errorf("gridops: unknown bus %q in grid %q", id, a.m.Network().Name)
	}
	return i, nil
}

// State is one converged operating state (an interval's forecast
// injections and its power flow) with lazily computed, cached
// sensitivities. Safe for concurrent use.
type State struct {
	Index      int       // position in its day (0 for a single state)
	Case       string    // study case name, for states built from study cases
	Start      time.Time // interval start, UTC
	End        time.Time
	PMW, QMvar []float64 // net injection per bus (generation positive)
	Result     *powerflow.Result

	a  *Analyser
	g  []float64 // constraint excesses (<= 0 within limits)
	mu sync.Mutex
	ln *powerflow.Linearization
	sn map[int]*busSens
	ac map[acKey]acLimit
}

// busSens is the derivative of every constraint's excess to a unit
// injection (1 MW, 1 Mvar) at one bus, kept sparse (constraints behind
// another slack do not move).
type busSens struct {
	idx  []int32
	p, q []float64
}

// NewState solves one operating state: net injections per bus in MW and
// Mvar (generation positive) for the interval [start, end).
func (a *Analyser) NewState(start, end time.Time, pMW, qMvar []float64) (*State, error) {
	r, err := a.m.Solve(pMW, qMvar, a.opt)
	if err != nil {
		return nil, fmt.Errorf("gridops: operating state %s: %w", start.UTC().Format(time.RFC3339), err)
	}
	return a.state(0, start, end, pMW, qMvar, r), nil
}

func (a *Analyser) state(k int, start, end time.Time, p, q []float64, r *powerflow.Result) *State {
	return &State{Index: k, Start: start.UTC(), End: end.UTC(), PMW: p, QMvar: q, Result: r, a: a, g: a.excesses(r)}
}

// Violations lists the state's limit violations, worst first within each
// kind order (voltages, lines, transformers).
func (s *State) Violations() []Violation {
	var out []Violation
	for i, g := range s.g {
		if g > 0 {
			out = append(out, s.a.violation(i, g))
		}
	}
	return out
}

func (s *State) linearization() (*powerflow.Linearization, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		ln, err := s.a.m.Linearize(s.Result)
		if err != nil {
			return nil, err
		}
		s.ln = ln
	}
	return s.ln, nil
}

// sens returns the (cached) constraint sensitivities to bus b.
func (s *State) sens(b int) (*busSens, error) {
	s.mu.Lock()
	if bs, ok := s.sn[b]; ok {
		s.mu.Unlock()
		return bs, nil
	}
	s.mu.Unlock()
	ln, err := s.linearization()
	if err != nil {
		return nil, err
	}
	x, err := ln.Sensitivity(b)
	if err != nil {
		return nil, err
	}
	c := s.a.c
	bs := &busSens{}
	add := func(i int, p, q float64) {
		if math.Abs(p) > 1e-12 || math.Abs(q) > 1e-12 {
			bs.idx = append(bs.idx, int32(i))
			bs.p = append(bs.p, p)
			bs.q = append(bs.q, q)
		}
	}
	for i := 0; i < c.nb; i++ {
		add(i, -x.DVmDP[i], -x.DVmDQ[i])
	}
	for i := 0; i < c.nb; i++ {
		add(c.nb+i, x.DVmDP[i], x.DVmDQ[i])
	}
	for i := range x.DLineLoadingDP {
		add(2*c.nb+i, x.DLineLoadingDP[i], x.DLineLoadingDQ[i])
	}
	for i := range x.DTrafoLoadingDP {
		add(2*c.nb+c.nl+i, x.DTrafoLoadingDP[i], x.DTrafoLoadingDQ[i])
	}
	s.mu.Lock()
	if s.sn == nil {
		s.sn = map[int]*busSens{}
	}
	s.sn[b] = bs
	s.mu.Unlock()
	return bs, nil
}

// isLoading tells whether constraint i is a branch loading (|I|, which
// turns back up when the flow reverses).
func (a *Analyser) isLoading(i int) bool { return i >= 2*a.c.nb }

// loadingNow is the present loading (%) of loading constraint i.
func (s *State) loadingNow(i int) float64 { return s.g[i] + s.a.lim.MaxLoadingPercent }

// allowed is the largest excess constraint i may have after a change:
// zero, or its present excess if it is already violated (a change may
// not make an existing violation worse).
func (s *State) allowed(i int) float64 {
	if s.g[i] > 0 {
		return s.g[i] + worsenTol
	}
	return 0
}

// worsenTol absorbs power-flow round-off (1e-8 MVA mismatch) when deciding
// that a change worsens an existing violation: 1e-6 p.u. or 1e-6 %.
const worsenTol = 1e-6

// acCheck solves the state with an extra injection (MW, Mvar) at the given
// buses and reports the worst constraint beyond what is allowed. A power
// flow without solution is reported as the NoSolution constraint.
func (s *State) acCheck(buses []int, dPMW, dQMvar float64) (ok bool, worst Constraint, r *powerflow.Result, err error) {
	p := append([]float64(nil), s.PMW...)
	q := append([]float64(nil), s.QMvar...)
	for _, b := range buses {
		p[b] += dPMW
		q[b] += dQMvar
	}
	return s.acCheckPQ(p, q)
}

func (s *State) acCheckPQ(p, q []float64) (ok bool, worst Constraint, r *powerflow.Result, err error) {
	r, err = s.a.m.SolveFrom(p, q, s.Result, s.a.opt)
	if err != nil {
		var nc *powerflow.NotConvergedError
		if errors.As(err, &nc) {
			return false, Constraint{Kind: NoSolution, Element: nc.Bus}, nil, nil
		}
		return false, Constraint{}, nil, err
	}
	g := s.a.excesses(r)
	wi, wv := -1, 0.0
	for i, x := range g {
		d := x - s.allowed(i)
		if d <= 0 {
			continue
		}
		if !s.a.isLoading(i) {
			d *= 100 // p.u. to percent of nominal, comparable with loading points
		}
		if d > wv {
			wi, wv = i, d
		}
	}
	if wi < 0 {
		return true, Constraint{}, r, nil
	}
	return false, s.a.c.constraint(s.a, wi), r, nil
}

// prefetch computes the sensitivities of the given buses on all cores.
func (s *State) prefetch(buses []int) error {
	if _, err := s.linearization(); err != nil {
		return err
	}
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if _, err := s.sens(b); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, b := range buses {
		work <- b
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// areas splits the grid at its slack buses: buses in different areas do
// not affect each other's voltages or flows (each slack holds its
// voltage). area[b] is -1 for a bus on a slack node.
func areas(a *Analyser) []int {
	net := a.m.Network()
	idx := a.busIdx
	parent := make([]int, len(net.Buses))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(x, y int) { parent[find(x)] = find(y) }
	for _, s := range net.Switches {
		if s.Element == "" && s.Closed {
			union(idx[s.BusA], idx[s.BusB])
		}
	}
	slack := map[int]bool{}
	for _, s := range net.Slacks {
		slack[find(idx[s.Bus])] = true
	}
	open := net.OpenBranches()
	join := func(x, y int) {
		if !slack[find(x)] && !slack[find(y)] {
			union(x, y)
		}
	}
	for _, l := range net.Lines {
		if !open["line:"+l.ID] {
			join(idx[l.FromBus], idx[l.ToBus])
		}
	}
	for _, t := range net.Trafos {
		if !open["trafo:"+t.ID] {
			join(idx[t.HVBus], idx[t.LVBus])
		}
	}
	out := make([]int, len(net.Buses))
	for i := range out {
		out[i] = find(i)
		if slack[out[i]] {
			out[i] = -1
		}
	}
	return out
}

// constraintAreas returns the area of each constraint's element (a branch
// takes the area of an end not on a slack node).
func constraintAreas(a *Analyser, area []int) []int {
	net := a.m.Network()
	c := a.c
	out := make([]int, c.n())
	for i := 0; i < c.nb; i++ {
		out[i], out[c.nb+i] = area[i], area[i]
	}
	end := func(x, y string) int {
		if ar := area[a.busIdx[x]]; ar >= 0 {
			return ar
		}
		return area[a.busIdx[y]]
	}
	for i, l := range net.Lines {
		out[2*c.nb+i] = end(l.FromBus, l.ToBus)
	}
	for i, t := range net.Trafos {
		out[2*c.nb+c.nl+i] = end(t.LVBus, t.HVBus)
	}
	return out
}

// marginNow is every constraint's margin in the state itself (g - allowed).
func (s *State) marginNow() []float64 {
	m := make([]float64, len(s.g))
	for i, g := range s.g {
		m[i] = g - s.allowed(i)
	}
	return m
}

// index is the position of a constraint (-1 for NoSolution).
func (a *Analyser) index(c Constraint) int {
	net := a.m.Network()
	switch c.Kind {
	case UnderVoltage:
		return a.busIdx[c.Element]
	case OverVoltage:
		return a.c.nb + a.busIdx[c.Element]
	case LineLoading:
		for i, l := range net.Lines {
			if l.ID == c.Element {
				return 2*a.c.nb + i
			}
		}
	case TrafoLoading:
		for i, t := range net.Trafos {
			if t.ID == c.Element {
				return 2*a.c.nb + a.c.nl + i
			}
		}
	}
	return -1
}
