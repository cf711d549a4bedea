package clearing

import "fmt"

// Solve returns an optimal clearing of p (see the package documentation for
// the exact model, the objective and the tie-break), or an error when p is
// invalid, the constraints are infeasible or the node budget ran out.
func Solve(p *Problem) (*Result, error) {
	if err := validate(p); err != nil {
		return nil, err
	}
	if p.Network != nil {
		return solveNetwork(p)
	}
	m := buildModel(p)
	nT := m.nT
	var dead []bool
	if len(p.Constraints) == 0 {
		dead = m.dominated()
	} else {
		dead = make([]bool, len(m.items))
	}
	s := &searcher{
		m:      m,
		klo:    make([]int64, len(m.items)),
		khi:    make([]int64, len(m.items)),
		lo:     make([]int64, len(m.slots)),
		hi:     make([]int64, len(m.slots)),
		ival:   make([]obj, nT),
		prefix: make([]int32, nT),
		fill:   make([]int64, nT),
		dirty:  make([]bool, nT),
		incX:   make([]int64, len(m.slots)),
		limit:  p.MaxNodes,
	}
	if s.limit == 0 {
		s.limit = DefaultMaxNodes
	}
	for i := range m.items {
		if !dead[i] {
			s.khi[i] = m.items[i].K
		}
		s.refreshSlots(int32(i))
	}
	s.dirtyL = s.dirtyL[:0]
	for t := range s.dirty {
		s.dirty[t] = false
	}
	for _, c := range components(m, dead) {
		if err := s.solveComponent(&c, false, obj{}); err != nil {
			return nil, err
		}
	}
	return assemble(p, m, s.incX, dead), nil
}

// components splits the intervals into independent sub-problems: two
// intervals belong together when a live linked bid spans both, when live
// bids of one exclusive group offer in both, or when a constraint mentions
// both.
func components(m *model, dead []bool) []component {
	nT := m.nT
	parent := make([]int32, nT)
	for i := range parent {
		parent[i] = int32(i)
	}
	var find func(int32) int32
	find = func(a int32) int32 {
		for parent[a] != a {
			parent[a] = parent[parent[a]]
			a = parent[a]
		}
		return a
	}
	union := func(a, b int32) {
		a, b = find(a), find(b)
		if a < b {
			parent[b] = a
		} else if b < a {
			parent[a] = b
		}
	}
	for i := range m.items {
		if dead[i] {
			continue
		}
		it := &m.items[i]
		for _, sl := range it.slots[1:] {
			union(m.slots[it.slots[0]].t, m.slots[sl].t)
		}
	}
	liveGroup := make([]bool, len(m.groups))
	groupT := make([]int32, len(m.groups))
	for g, bids := range m.groups {
		first := int32(-1)
		n := 0
		for _, b := range bids {
			live := false
			for _, it := range m.bidItems[b] {
				if dead[it] {
					continue
				}
				live = true
				t := m.slots[m.items[it].slots[0]].t
				if first < 0 {
					first = t
				}
				for _, sl := range m.items[it].slots {
					union(first, m.slots[sl].t)
				}
			}
			if live {
				n++
			}
		}
		liveGroup[g] = n > 1
		groupT[g] = first
	}
	for _, c := range m.p.Constraints {
		if len(c.Terms) > 0 {
			// A constraint with no live term still binds (0 ≤ Limit must
			// hold), so it joins interval of its first term regardless.
			first := int32(c.Terms[0].Interval)
			for _, tm := range c.Terms[1:] {
				union(first, int32(tm.Interval))
			}
		}
	}
	idx := make([]int32, nT)
	var comps []component
	for t := range nT {
		r := find(int32(t))
		if r == int32(t) {
			idx[t] = int32(len(comps))
			comps = append(comps, component{})
		}
	}
	for t := range nT {
		c := &comps[idx[find(int32(t))]]
		c.intervals = append(c.intervals, int32(t))
	}
	for i := range m.items {
		if dead[i] {
			continue
		}
		t := m.slots[m.items[i].slots[0]].t
		c := &comps[idx[find(t)]]
		c.items = append(c.items, int32(i))
	}
	for g := range m.groups {
		if !liveGroup[g] {
			continue
		}
		c := &comps[idx[find(groupT[g])]]
		c.groups = append(c.groups, int32(g))
	}
	var global []int
	for ci, c := range m.p.Constraints {
		if len(c.Terms) == 0 {
			global = append(global, ci)
			continue
		}
		comp := &comps[idx[find(int32(c.Terms[0].Interval))]]
		comp.cons = append(comp.cons, ci)
	}
	// Term-less constraints (0 ≤ Limit) go with the first component so that
	// an impossible one is reported as infeasible.
	comps[0].cons = append(comps[0].cons, global...)
	return comps
}

// solveComponent finds an optimal clearing of c (given an incumbent when
// haveInc), leaving its quantities in s.incX. Without constraints it first
// dives for a clearing, then uses the root relaxation's interval prices to
// fix items whose every alternative is provably worse than that clearing
// (reduced-cost fixing), which usually cuts the links between intervals;
// the pieces that fall apart are solved independently (recursively), so
// the search never multiplies the work of unrelated intervals.
func (s *searcher) solveComponent(c *component, haveInc bool, inc obj) error {
	m := s.m
	s.c = c
	s.hasInc, s.inc = haveInc, inc
	s.bound = obj{}
	s.trail = s.trail[:0]
	if len(c.cons) > 0 {
		s.lp = newLPRelax(s, c)
		if s.xs == nil {
			s.xs = make([]int64, len(m.slots))
		}
		s.dfs()
		s.lp = nil
		return s.finish()
	}
	s.lp = nil
	s.resetIntervals()
	if !s.hasInc {
		s.diving = true
		s.dfs()
		s.diving, s.stop = false, false
		if s.aborted {
			return s.finish()
		}
		s.resetIntervals()
	}
	s.relax()
	if !s.bound.less(s.inc) {
		return nil // the incumbent meets the bound: optimal
	}
	if s.inc.s == 0 && s.fixByReducedCost() {
		subs := s.split(c)
		if len(subs) > 1 {
			for i := range subs {
				sub := &subs[i]
				if err := s.solveComponent(sub, true, s.incumbentOn(sub)); err != nil {
					return err
				}
			}
			return nil
		}
		s.c = c
		s.resetIntervals()
		s.relax()
	}
	s.dfs()
	return s.finish()
}

func (s *searcher) finish() error {
	if s.aborted {
		return fmt.Errorf("%w (%d nodes)", ErrNodeLimit, s.limit)
	}
	if !s.hasInc {
		return ErrInfeasible
	}
	return nil
}

// resetIntervals marks every interval of the current component for a fresh
// merit order and restarts the bound from zero.
func (s *searcher) resetIntervals() {
	s.bound = obj{}
	s.dirtyL = s.dirtyL[:0]
	for _, t := range s.c.intervals {
		s.ival[t] = obj{}
		s.dirty[t] = true
		s.dirtyL = append(s.dirtyL, t)
	}
}

// incumbentOn is the objective of the incumbent restricted to sub.
func (s *searcher) incumbentOn(sub *component) obj {
	m := s.m
	// By interval, like the relaxation: a fixed linked item of a sibling
	// piece counts where its slots lie.
	var o obj
	for _, t := range sub.intervals {
		var cov int64
		for _, sl := range m.order[t] {
			st := &m.slots[sl]
			x := s.incX[sl]
			cov += x
			o.c += x * st.p
			o.w += x * st.rank
		}
		o.s += max(0, m.p.Demand[t]-cov)
	}
	return o
}

// fixByReducedCost narrows items using Lagrangian bounds at the current
// (root) relaxation. λ_t is the price of interval t's marginal slot (0 when
// forced quantities already cover it). For any clearing without shortfall,
// cost ≥ Σ λ_t·D_t + Σ_slots (p−λ_t)·x, so if forcing an item into a part
// of its range raises that bound strictly above the incumbent's cost, no
// optimal clearing uses that part. Only called when the incumbent has no
// shortfall (then no optimum has any). It reports whether anything changed.
func (s *searcher) fixByReducedCost() bool {
	m := s.m
	lambda := map[int32]int64{}
	var lb int64
	for _, t := range s.c.intervals {
		var l int64
		if pf := s.prefix[t]; int(pf) < len(m.order[t]) && s.ival[t].s == 0 {
			if rem := m.p.Demand[t]; rem > 0 {
				l = m.slots[m.order[t][pf]].p
			}
		}
		// an interval whose forced quantities cover it has prefix 0 and
		// fill 0: λ = price of its first slot is still a valid choice
		// (any λ ≥ 0 is), merely a weaker one.
		lambda[t] = l
		lb += l * m.p.Demand[t]
	}
	g := func(sl int32, x int64) int64 { return (m.slots[sl].p - lambda[m.slots[sl].t]) * x }
	best := func(sl int32) int64 { return min(g(sl, s.lo[sl]), g(sl, s.hi[sl])) }
	for _, it := range s.c.items {
		for _, sl := range m.items[it].slots {
			lb += best(sl)
		}
	}
	slack := s.inc.c - lb // any part of a range costing more than this is out
	if slack < 0 {
		return false // cannot happen with valid λ; be safe
	}
	changed := false
	for _, it := range s.c.items {
		item := &m.items[it]
		klo, khi := s.klo[it], s.khi[it]
		if item.free || klo == khi {
			continue
		}
		var base int64
		for _, sl := range item.slots {
			base += best(sl)
		}
		// extra(k1, k2): least increase of the bound when k ∈ [k1, k2]
		// (each slot's g is monotone in k, so its minimum is at an end).
		extra := func(k1, k2 int64) int64 {
			var e int64
			for _, sl := range item.slots {
				q := m.slots[sl].q
				e += min(g(sl, qty(k1, q, item.K)), g(sl, qty(k2, q, item.K)))
			}
			return e - base
		}
		nlo, nhi := klo, khi
		if klo == 0 && extra(0, 0) > slack {
			nlo = max(1, item.gap)
		}
		on := max(klo, max(1, item.gap))
		if on <= khi && extra(on, khi) > slack {
			nhi = 0
		}
		// A linked or indivisible item that must be on: try its top alone.
		if nlo > 0 && nhi > nlo && extra(nlo, nhi-1) > slack {
			nlo = nhi
		}
		if nlo == klo && nhi == khi {
			continue
		}
		lo, hi, ok := normalise(item, nlo, nhi)
		if !ok {
			continue // both parts provably worse: the incumbent is optimal here
		}
		s.setRange(it, lo, hi)
		changed = true
	}
	s.trail = s.trail[:0] // permanent for this component
	// An exclusive group with a member forced on excludes the others.
	for _, gi := range s.c.groups {
		var on int32 = -1
		for _, b := range m.groups[gi] {
			for _, it := range m.bidItems[b] {
				if s.klo[it] > 0 {
					on = b
				}
			}
		}
		if on >= 0 {
			for _, b := range m.groups[gi] {
				if b != on {
					s.zeroBid(b)
				}
			}
		}
	}
	s.trail = s.trail[:0]
	return changed
}

// split divides c into independent pieces given the current ranges.
func (s *searcher) split(c *component) []component {
	m := s.m
	local := map[int32]int32{}
	for i, t := range c.intervals {
		local[t] = int32(i)
	}
	parent := make([]int32, len(c.intervals))
	for i := range parent {
		parent[i] = int32(i)
	}
	find := func(a int32) int32 {
		for parent[a] != a {
			parent[a] = parent[parent[a]]
			a = parent[a]
		}
		return a
	}
	union := func(a, b int32) {
		a, b = find(local[a]), find(local[b])
		if a != b {
			parent[max(a, b)] = min(a, b)
		}
	}
	for _, it := range c.items {
		item := &m.items[it]
		if s.klo[it] < s.khi[it] && len(item.slots) > 1 {
			for _, sl := range item.slots[1:] {
				union(m.slots[item.slots[0]].t, m.slots[sl].t)
			}
		}
	}
	var groups []int32
	for _, gi := range c.groups {
		var first int32 = -1
		live := 0
		for _, b := range m.groups[gi] {
			counted := false
			for _, it := range m.bidItems[b] {
				if s.khi[it] == 0 {
					continue
				}
				if !counted {
					live++
					counted = true
				}
				for _, sl := range m.items[it].slots {
					if first < 0 {
						first = m.slots[sl].t
					}
					union(first, m.slots[sl].t)
				}
			}
		}
		if live > 1 {
			groups = append(groups, gi)
		}
	}
	idx := map[int32]int{}
	var subs []component
	for i, t := range c.intervals {
		r := find(int32(i))
		k, ok := idx[r]
		if !ok {
			k = len(subs)
			idx[r] = k
			subs = append(subs, component{})
		}
		subs[k].intervals = append(subs[k].intervals, t)
	}
	for _, it := range c.items {
		t := m.slots[m.items[it].slots[0]].t
		sub := &subs[idx[find(local[t])]]
		sub.items = append(sub.items, it)
	}
	for _, gi := range groups {
		for _, b := range m.groups[gi] {
			for _, it := range m.bidItems[b] {
				if s.khi[it] > 0 {
					t := m.slots[m.items[it].slots[0]].t
					sub := &subs[idx[find(local[t])]]
					if len(sub.groups) == 0 || sub.groups[len(sub.groups)-1] != gi {
						sub.groups = append(sub.groups, gi)
					}
					goto next
				}
			}
		}
	next:
	}
	return subs
}
