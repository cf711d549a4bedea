package gridops

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// NeedOptions tune the derivation of flexibility needs.
type NeedOptions struct {
	// Kind of flexibility asked for (default Active). Reactive needs make
	// sense for voltage problems; a loading problem reactive power cannot
	// remove within MaxKW is reported unresolved.
	Kind PowerKind
	// Candidates are the buses where flexibility can be bought (later: the
	// buses of registered connection points). Default: every bus with a
	// load or a generator.
	Candidates []string
	// MaterialFraction: a bus is listed in a need when its effect on the
	// limiting element is at least this share of the most effective
	// candidate's (default 0.5).
	MaterialFraction float64
	// TolPercent is the sizing tolerance (default 1 %): the need removes
	// the violations under AC power flow and a need smaller by 2·TolPercent
	// does not.
	TolPercent float64
	// MaxKW caps one need (default 10,000 kW or kvar).
	MaxKW float64
}

func (o NeedOptions) withDefaults() (NeedOptions, error) {
	if o.Kind == "" {
		o.Kind = Active
	}
	if o.Kind != Active && o.Kind != Reactive {
		return o, fmt.Errorf("gridops: need kind %q: use active or reactive", o.Kind)
	}
	if o.MaterialFraction <= 0 {
		o.MaterialFraction = 0.5
	}
	if o.MaterialFraction > 1 {
		return o, fmt.Errorf("gridops: material fraction %v is above 1", o.MaterialFraction)
	}
	if o.TolPercent <= 0 {
		o.TolPercent = 1
	}
	if o.MaxKW <= 0 {
		o.MaxKW = 10000
	}
	return o, nil
}

// NeedBus is a bus that can serve a need, with its effect on the limiting
// element relative to the need's most effective bus (0..1].
type NeedBus struct {
	Bus    string  `json:"bus"`
	Effect float64 `json:"effect"`
}

// NeedInterval is a need's quantity and the violation it removes in one
// interval.
type NeedInterval struct {
	Index     int       `json:"index"`
	Start     time.Time `json:"start"`
	Quantity  float64   `json:"quantity"` // kW or kvar
	Violation Violation `json:"violation"`
	Resolved  bool      `json:"resolved"`
}

// Need is a flexibility need ready to publish: over [Start, End), Quantity
// (kW or kvar, the largest of its intervals) in Direction at Buses (each
// getting an equal share in the reference delivery the quantity is sized
// for), to relieve Limiting.
type Need struct {
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	Kind      PowerKind  `json:"kind"`
	Direction Direction  `json:"direction"`
	Quantity  float64    `json:"quantity"`
	Unit      string     `json:"unit"`
	Buses     []NeedBus  `json:"buses"`
	Limiting  Constraint `json:"limiting"`
	Worst     Violation  `json:"worst"` // the limiting element's worst violation over the intervals
	Reason    string     `json:"reason"`
	Resolved  bool       `json:"resolved"` // AC power flow confirms removal in every interval
	// Relieves lists every violated constraint the need answers for
	// besides Limiting (other buses' voltages, overloaded branches).
	Relieves  []Constraint   `json:"relieves,omitempty"`
	Intervals []NeedInterval `json:"intervals"`
}

// IntervalNeed is a need in one interval before grouping: apply
// Direction·Quantity spread equally over Buses.
type IntervalNeed struct {
	State     *State
	Direction Direction
	Kind      PowerKind
	Quantity  float64 // kW or kvar in total
	Buses     []NeedBus
	Limiting  Violation // the violation that sets the quantity (before the change)
	Resolved  bool
	Relieves  []Constraint // the other violated constraints it answers for

	bus     []int
	covered []int // constraints this need answers for
	lim     int   // the limiting constraint index
}

// Apply returns the state's injections with the needs applied (each spread
// equally over its buses), in MW and Mvar.
func Apply(s *State, needs []IntervalNeed) (pMW, qMvar []float64) {
	return applyNeeds(s, needs, nil)
}

func applyNeeds(s *State, needs []IntervalNeed, scale []float64) (p, q []float64) {
	p = append([]float64(nil), s.PMW...)
	q = append([]float64(nil), s.QMvar...)
	for k, n := range needs {
		f := 1.0
		if scale != nil {
			f = scale[k]
		}
		per := n.Direction.sign() * n.Quantity * f / 1000 / float64(len(n.bus))
		for _, b := range n.bus {
			if n.Kind == Reactive {
				q[b] += per
			} else {
				p[b] += per
			}
		}
	}
	return p, q
}

// NeedsAt derives the needs of one state (none if it has no violation):
// the linear estimate from the sensitivities, then AC power flows with all
// the state's needs applied, resizing each until its violations are gone
// and it is within the sizing tolerance of the limit.
func (a *Analyser) NeedsAt(s *State, opt NeedOptions) ([]IntervalNeed, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	cand, err := a.candidates(opt.Candidates)
	if err != nil {
		return nil, err
	}
	return a.needsAt(s, cand, opt)
}

func (a *Analyser) candidates(ids []string) ([]int, error) {
	net := a.m.Network()
	if len(ids) == 0 {
		seen := map[string]bool{}
		for _, l := range net.Loads {
			seen[l.Bus] = true
		}
		for _, g := range net.Gens {
			seen[g.Bus] = true
		}
		for id := range seen {
			ids = append(ids, id)
		}
		sort.Strings(ids)
	}
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		b, err := a.BusIndex(id)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("gridops: no candidate buses for flexibility (the grid has no loads or generators)")
	}
	return out, nil
}

type effect struct {
	bus int
	r   float64 // excess change per MW (Mvar) of injection
}

func (a *Analyser) needsAt(s *State, cand []int, opt NeedOptions) ([]IntervalNeed, error) {
	var viol []int
	for i, g := range s.g {
		if g > 0 {
			viol = append(viol, i)
		}
	}
	if len(viol) == 0 {
		return nil, nil
	}
	isViol := map[int]bool{}
	for _, i := range viol {
		isViol[i] = true
	}
	// Effects of every candidate on every violated constraint; only
	// candidates in an area with a violation can have any.
	hot := map[int]bool{}
	for _, i := range viol {
		hot[a.consArea[i]] = true
	}
	var near []int
	for _, b := range cand {
		if hot[a.area[b]] {
			near = append(near, b)
		}
	}
	cand = near
	if err := s.prefetch(cand); err != nil {
		return nil, err
	}
	eff := map[int][]effect{}
	for _, b := range cand {
		bs, err := s.sens(b)
		if err != nil {
			return nil, err
		}
		vals := bs.p
		if opt.Kind == Reactive {
			vals = bs.q
		}
		for k, ci := range bs.idx {
			if isViol[int(ci)] && vals[k] != 0 {
				eff[int(ci)] = append(eff[int(ci)], effect{b, vals[k]})
			}
		}
	}
	norm := func(i int) float64 {
		if a.isLoading(i) {
			return s.g[i]
		}
		return 100 * s.g[i]
	}
	sort.SliceStable(viol, func(x, y int) bool { return norm(viol[x]) > norm(viol[y]) })

	// material returns the direction and the material bus set for constraint i.
	material := func(i int) (float64, map[int]float64) {
		best := 0.0
		for _, e := range eff[i] {
			if math.Abs(e.r) > math.Abs(best) {
				best = e.r
			}
		}
		if best == 0 {
			return 0, nil
		}
		dir := -math.Copysign(1, best)
		set := map[int]float64{}
		for _, e := range eff[i] {
			if h := -e.r * dir; h >= opt.MaterialFraction*math.Abs(best) {
				set[e.bus] = h / math.Abs(best)
			}
		}
		return dir, set
	}
	// avgEffect is the reduction of constraint i's excess per MW of the
	// need (dir, buses) spread equally.
	avgEffect := func(i int, dir float64, buses []int) float64 {
		in := map[int]bool{}
		for _, b := range buses {
			in[b] = true
		}
		sum := 0.0
		for _, e := range eff[i] {
			if in[e.bus] {
				sum += -e.r * dir
			}
		}
		return sum / float64(len(buses))
	}

	var needs []IntervalNeed
	var unsolvable []int
	done := map[int]bool{}
	for _, c := range viol {
		if done[c] {
			continue
		}
		dir, set := material(c)
		if set == nil {
			unsolvable = append(unsolvable, c)
			done[c] = true
			continue
		}
		n := IntervalNeed{State: s, Kind: opt.Kind, Direction: Up, lim: c}
		if dir < 0 {
			n.Direction = Down
		}
		for b := range set {
			n.bus = append(n.bus, b)
		}
		sort.Ints(n.bus)
		qty := 0.0
		for _, c2 := range viol {
			if done[c2] {
				continue
			}
			d2, set2 := material(c2)
			if d2 != dir {
				continue
			}
			shared := false
			for b := range set {
				if _, ok := set2[b]; ok {
					shared = true
					break
				}
			}
			if !shared {
				continue
			}
			e := avgEffect(c2, dir, n.bus)
			if e <= 0 {
				continue
			}
			done[c2] = true
			n.covered = append(n.covered, c2)
			if q := s.g[c2] / e; q > qty {
				qty, n.lim = q, c2
			}
		}
		n.Quantity = qty * 1000
		for _, b := range n.bus {
			n.Buses = append(n.Buses, NeedBus{Bus: a.m.Network().Buses[b].ID, Effect: round3(set[b])})
		}
		needs = append(needs, n)
	}
	if err := a.sizeNeeds(s, needs, opt); err != nil {
		return nil, err
	}
	for k := range needs {
		for _, c := range needs[k].covered {
			if c != needs[k].lim {
				needs[k].Relieves = append(needs[k].Relieves, a.c.constraint(a, c))
			}
		}
	}
	for _, c := range unsolvable {
		// No candidate moves this constraint at all: reported as a need
		// with no buses, unresolved, so the DSO sees it.
		needs = append(needs, IntervalNeed{State: s, Kind: opt.Kind, Direction: Up, lim: c, covered: []int{c},
			Limiting: a.violation(c, s.g[c])})
	}
	return needs, nil
}

// sizeNeeds resizes the needs with AC power flows (all of the state's
// needs applied together) until each need's covered constraints are within
// limits and its quantity is within TolPercent of the smallest that does
// that.
func (a *Analyser) sizeNeeds(s *State, needs []IntervalNeed, opt NeedOptions) error {
	if len(needs) == 0 {
		return nil
	}
	type hist struct{ q, h float64 }
	last := make([]*hist, len(needs))
	for k := range needs {
		needs[k].Limiting = a.violation(needs[k].lim, s.g[needs[k].lim])
		// The linear slope: excess reduction per kW.
		last[k] = &hist{q: 0, h: s.g[needs[k].lim]}
	}
	tol := opt.TolPercent / 100
	maxQ := opt.MaxKW
	for it := 0; it < 40; it++ {
		p, q := applyNeeds(s, needs, nil)
		ok, _, r, err := s.acCheckPQ(p, q)
		if err != nil {
			return err
		}
		if r == nil { // no power-flow solution: back off every need
			for k := range needs {
				needs[k].Quantity /= 2
			}
			continue
		}
		g := a.excesses(r)
		settled := true
		for k := range needs {
			n := &needs[k]
			// New violations the need helps with join its covered set.
			h, hi := math.Inf(-1), -1
			for _, c := range n.covered {
				if g[c] > h {
					h, hi = g[c], c
				}
			}
			if hi != n.lim && h > 0 {
				n.lim = hi
				n.Limiting = a.violation(hi, s.g[hi])
			}
			prev := last[k]
			slope := (h - prev.h) / (n.Quantity - prev.q) // excess per kW, negative
			if !(slope < 0) || math.IsInf(slope, 0) {
				slope = -math.Abs(prev.h) / math.Max(n.Quantity, 1e-6)
			}
			target := 0.25 * tol * n.Quantity * -slope // aim a quarter tolerance inside
			if h > 0 || h < -2*target-1e-9 {
				settled = false
				last[k] = &hist{q: n.Quantity, h: h}
				nq := n.Quantity + (h+target)/-slope
				if nq > maxQ {
					nq = maxQ
				}
				if nq <= 0 {
					nq = n.Quantity / 2
				}
				n.Quantity = nq
			}
		}
		if settled {
			res := ok || a.onlyOldUncovered(s, g, needs)
			for k := range needs {
				needs[k].Resolved = res
			}
			break
		}
	}
	for k := range needs {
		needs[k].Quantity = round3(needs[k].Quantity)
	}
	return nil
}

// onlyOldUncovered reports whether every remaining violation was there
// before and lies outside all needs' covered sets (no candidate moves it):
// the needs did their part and created no new violation.
func (a *Analyser) onlyOldUncovered(s *State, g []float64, needs []IntervalNeed) bool {
	cov := map[int]bool{}
	for _, n := range needs {
		for _, c := range n.covered {
			cov[c] = true
		}
	}
	for i, x := range g {
		if x > 0 && (cov[i] || s.g[i] <= 0) {
			return false
		}
	}
	return true
}

// Needs derives the needs of every state of a day and groups needs of
// contiguous intervals with the same kind, direction and (overlapping)
// buses into one published need.
func (a *Analyser) Needs(states []*State, opt NeedOptions, progress func(done, total int)) ([]Need, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	cand, err := a.candidates(opt.Candidates)
	if err != nil {
		return nil, err
	}
	var out []Need
	open := map[int]bool{} // indices into out still extendable
	for k, s := range states {
		if progress != nil {
			progress(k, len(states))
		}
		ins, err := a.needsAt(s, cand, opt)
		if err != nil {
			return nil, err
		}
		next := map[int]bool{}
		for _, in := range ins {
			ni := -1
			var keys []int
			for j := range open {
				keys = append(keys, j)
			}
			sort.Ints(keys) // deterministic: the earliest opened need first
			for _, j := range keys {
				if !next[j] && out[j].Kind == in.Kind && out[j].Direction == in.Direction && out[j].End.Equal(s.Start) && overlap(out[j].Buses, in.Buses) {
					ni = j
					break
				}
			}
			if ni < 0 {
				out = append(out, Need{Start: s.Start, Kind: in.Kind, Direction: in.Direction, Unit: in.Kind.Unit(), Resolved: true})
				ni = len(out) - 1
			}
			n := &out[ni]
			n.End = s.End
			n.Buses = mergeBuses(n.Buses, in.Buses)
			n.Resolved = n.Resolved && in.Resolved
			n.Relieves = append(n.Relieves, in.Relieves...)
			n.Intervals = append(n.Intervals, NeedInterval{Index: s.Index, Start: s.Start, Quantity: in.Quantity, Violation: in.Limiting, Resolved: in.Resolved})
			if in.Quantity > n.Quantity {
				n.Quantity = in.Quantity
			}
			if len(n.Intervals) == 1 || in.Limiting.Excess() > n.Worst.Excess() {
				n.Worst, n.Limiting = in.Limiting, in.Limiting.Constraint
			}
			next[ni] = true
		}
		open = next
	}
	if progress != nil {
		progress(len(states), len(states))
	}
	for k := range out {
		n := &out[k]
		n.Reason = fmt.Sprintf("%s %s–%s", n.Worst, n.Start.Format("15:04"), n.End.Format("15:04"))
		seen := map[Constraint]bool{n.Limiting: true}
		var rel []Constraint
		var branches []string
		volt := 0
		for _, c := range n.Relieves {
			if seen[c] {
				continue
			}
			seen[c] = true
			rel = append(rel, c)
			if c.Kind == LineLoading || c.Kind == TrafoLoading {
				branches = append(branches, c.String())
			} else {
				volt++
			}
		}
		n.Relieves = rel
		sort.Strings(branches)
		if len(branches) > 0 {
			n.Reason += "; also " + strings.Join(branches, ", ")
		}
		if volt > 0 {
			n.Reason += fmt.Sprintf("; also %d other bus voltage(s)", volt)
		}
		if !n.Resolved {
			n.Reason += " (not removable within the limits of this need)"
		}
	}
	return out, nil
}

func overlap(a, b []NeedBus) bool {
	in := map[string]bool{}
	for _, x := range a {
		in[x.Bus] = true
	}
	for _, x := range b {
		if in[x.Bus] {
			return true
		}
	}
	return len(a) == 0 && len(b) == 0
}

func mergeBuses(a, b []NeedBus) []NeedBus {
	m := map[string]float64{}
	for _, x := range append(append([]NeedBus(nil), a...), b...) {
		if x.Effect > m[x.Bus] {
			m[x.Bus] = x.Effect
		}
	}
	out := make([]NeedBus, 0, len(m))
	for id, e := range m {
		out = append(out, NeedBus{Bus: id, Effect: e})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Effect != out[j].Effect {
			return out[i].Effect > out[j].Effect
		}
		return out[i].Bus < out[j].Bus
	})
	return out
}
