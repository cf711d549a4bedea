package clearing

import (
	"math/big"
	"math/bits"
)

// Branch and bound over the items' k ranges.
//
// A node is a set of ranges [klo, khi], one per item. Its relaxation drops
// the gaps (minimum quantities, indivisibility), the linking between a
// linked bid's intervals and the exclusive groups, keeping only each
// slot's quantity range; without constraints that relaxation separates by
// interval into a merit order (solved exactly in O(slots)); with
// constraints it is an exact rational LP (lp.go). The objective is the
// lexicographic triple (shortfall, cost, tie-break weight), so the
// relaxation's optimum is a lower bound for every clearing in the node.
// When the relaxation's solution happens to satisfy every dropped rule it
// is a clearing, and an optimal one for the node; otherwise the search
// branches on one violated rule, which strictly shrinks a range (or zeroes
// bids of a group), so the search is finite and exhaustive.

// obj is the lexicographic objective: shortfall first, then cost, then
// the tie-break weight Σ x·(bid index+1).
type obj struct{ s, c, w int64 }

func (a obj) less(b obj) bool {
	if a.s != b.s {
		return a.s < b.s
	}
	if a.c != b.c {
		return a.c < b.c
	}
	return a.w < b.w
}

func (a obj) add(b obj) obj { return obj{a.s + b.s, a.c + b.c, a.w + b.w} }
func (a obj) sub(b obj) obj { return obj{a.s - b.s, a.c - b.c, a.w - b.w} }

type trailEntry struct {
	item     int32
	klo, khi int64
}

type component struct {
	intervals []int32
	items     []int32
	groups    []int32
	cons      []int // indexes into Problem.Constraints
}

type searcher struct {
	m     *model
	c     *component
	klo   []int64 // per item (global index)
	khi   []int64
	lo    []int64 // per slot
	hi    []int64
	trail []trailEntry

	// merit-order relaxation state, per interval
	ival    []obj
	prefix  []int32 // positions < prefix are at hi
	fill    []int64 // the slot at position prefix is at lo+fill
	dirty   []bool
	dirtyL  []int32
	bound   obj
	nodes   int64
	limit   int64
	aborted bool
	diving  bool // stop at the first clearing found (the dive)
	stop    bool

	lp *lpRelax // non-nil when the component has constraints

	hasInc bool
	inc    obj
	incX   []int64 // per slot of the component (indexed by slot id)
	xs     []int64 // scratch: relaxation values (LP mode)
}

func (s *searcher) setRange(it int32, klo, khi int64) {
	s.trail = append(s.trail, trailEntry{it, s.klo[it], s.khi[it]})
	s.klo[it], s.khi[it] = klo, khi
	s.refreshSlots(it)
}

func (s *searcher) refreshSlots(it int32) {
	item := &s.m.items[it]
	for _, sl := range item.slots {
		q := s.m.slots[sl].q
		s.lo[sl] = qty(s.klo[it], q, item.K)
		s.hi[sl] = qty(s.khi[it], q, item.K)
		t := s.m.slots[sl].t
		if !s.dirty[t] {
			s.dirty[t] = true
			s.dirtyL = append(s.dirtyL, t)
		}
	}
}

func (s *searcher) undo(mark int) {
	for len(s.trail) > mark {
		e := s.trail[len(s.trail)-1]
		s.trail = s.trail[:len(s.trail)-1]
		s.klo[e.item], s.khi[e.item] = e.klo, e.khi
		s.refreshSlots(e.item)
	}
}

// normalise maps a range onto the item's allowed set {0} ∪ [gap, K];
// ok is false when nothing is left.
func normalise(it *item, klo, khi int64) (int64, int64, bool) {
	if it.gap > 0 {
		if khi < it.gap {
			khi = 0
		}
		if klo > 0 && klo < it.gap {
			klo = it.gap
		}
	}
	return klo, khi, klo <= khi
}

// relaxInterval solves interval t's merit order over the slots' ranges.
func (s *searcher) relaxInterval(t int32) {
	m := s.m
	o := m.order[t]
	var v obj
	var forced int64
	for _, sl := range o {
		if l := s.lo[sl]; l > 0 {
			forced += l
			v.c += l * m.slots[sl].p
			v.w += l * m.slots[sl].rank
		}
	}
	rem := m.p.Demand[t] - forced
	prefix, fill := int32(len(o)), int64(0)
	if rem <= 0 {
		prefix = 0
	} else {
		for i, sl := range o {
			c := s.hi[sl] - s.lo[sl]
			if c <= 0 {
				continue
			}
			st := &m.slots[sl]
			if c >= rem {
				v.c += rem * st.p
				v.w += rem * st.rank
				prefix, fill = int32(i), rem
				rem = 0
				break
			}
			v.c += c * st.p
			v.w += c * st.rank
			rem -= c
		}
		if rem > 0 {
			v.s = rem
		}
	}
	s.bound = s.bound.sub(s.ival[t]).add(v)
	s.ival[t] = v
	s.prefix[t] = prefix
	s.fill[t] = fill
}

// x is slot sl's quantity in the current relaxation solution.
func (s *searcher) x(sl int32) int64 {
	if s.lp != nil {
		return s.xs[sl]
	}
	if s.lo[sl] == s.hi[sl] {
		// fixed; also the only safe answer for a fixed linked slot lying in
		// an interval outside the component being searched
		return s.lo[sl]
	}
	t := s.m.slots[sl].t
	p := s.m.pos[sl]
	switch {
	case p < s.prefix[t]:
		return s.hi[sl]
	case p == s.prefix[t]:
		return s.lo[sl] + s.fill[t]
	default:
		return s.lo[sl]
	}
}

// relax brings the bound up to date; it reports false when the node is
// infeasible (only possible with constraints).
func (s *searcher) relax() bool {
	if s.lp != nil {
		s.dirtyL = s.dirtyL[:0]
		for _, t := range s.c.intervals {
			s.dirty[t] = false
		}
		return s.lp.solve(s)
	}
	for _, t := range s.dirtyL {
		s.dirty[t] = false
		s.relaxInterval(t)
	}
	s.dirtyL = s.dirtyL[:0]
	return true
}

// branch describes the two children of a node. For an item branch each
// child is a range of that item; for a group branch the first child keeps
// only bid `keep` of the group, the second zeroes it.
type branch struct {
	group              int32 // -1 for an item branch
	item               int32
	aLo, aHi, bLo, bHi int64
	keep               int32
}

func (s *searcher) used(bid int32) bool {
	for _, it := range s.m.bidItems[bid] {
		for _, sl := range s.m.items[it].slots {
			if s.x(sl) > 0 {
				return true
			}
		}
	}
	return false
}

// pickBranch returns a rule violated by the relaxation's solution, or
// ok=false when the solution is a valid clearing.
func (s *searcher) pickBranch() (branch, bool) {
	m := s.m
	if s.lp != nil && s.lp.frac >= 0 {
		return s.fracBranch(), true
	}
	// Exclusive groups first: they are the weakest part of the relaxation.
	for _, g := range s.c.groups {
		var best int32 = -1
		var bestX int64
		n := 0
		for _, b := range m.groups[g] {
			var tot int64
			for _, it := range m.bidItems[b] {
				for _, sl := range m.items[it].slots {
					tot += s.x(sl)
				}
			}
			if tot > 0 {
				n++
				if tot > bestX {
					best, bestX = b, tot
				}
			}
		}
		if n > 1 {
			return branch{group: g, keep: best}, true
		}
	}
	for _, it := range s.c.items {
		item := &m.items[it]
		if item.free || s.klo[it] == s.khi[it] {
			continue
		}
		k := s.x(item.ref)
		klo, khi := s.klo[it], s.khi[it]
		inGap := item.gap > 0 && k > 0 && k < item.gap
		consistent := !inGap
		if consistent && len(item.slots) > 1 {
			for _, sl := range item.slots {
				if s.x(sl) != qty(k, m.slots[sl].q, item.K) {
					consistent = false
					break
				}
			}
		}
		if consistent {
			continue
		}
		// Fill ratio of the relaxation decides which child goes first.
		var got, cap int64
		for _, sl := range item.slots {
			got += s.x(sl) - s.lo[sl]
			cap += s.hi[sl] - s.lo[sl]
		}
		up := 2*got >= cap
		if klo == 0 && item.gap > 0 && k < item.gap {
			// off / on
			br := branch{group: -1, item: it, aLo: 0, aHi: 0, bLo: item.gap, bHi: khi}
			if up {
				br.aLo, br.aHi, br.bLo, br.bHi = br.bLo, br.bHi, br.aLo, br.aHi
			}
			return br, true
		}
		// Split the range at k: [klo, k] and [k+1, khi] (or [klo, k-1] and
		// [k, k] when k is the top); both are non-empty and strictly
		// smaller.
		// Linked: bisect between the smallest and largest k that the
		// relaxation's quantities imply, so a block needs about log₂K
		// levels, not K.
		if len(item.slots) > 1 {
			kmin, kmax := khi, klo
			for _, sl := range item.slots {
				q := m.slots[sl].q
				// least k with ⌊k·q/K⌋ ≥ x: ⌈x·K/q⌉
				kx := ceilDiv(s.x(sl), item.K, q)
				kmin, kmax = min(kmin, kx), max(kmax, kx)
			}
			mid := kmin + (kmax-kmin)/2
			mid = max(klo, min(mid, khi-1))
			br := branch{group: -1, item: it, aLo: klo, aHi: mid, bLo: mid + 1, bHi: khi}
			if up {
				br.aLo, br.aHi, br.bLo, br.bHi = br.bLo, br.bHi, br.aLo, br.aHi
			}
			return br, true
		}
		var br branch
		if k < khi {
			br = branch{group: -1, item: it, aLo: klo, aHi: k, bLo: k + 1, bHi: khi}
		} else {
			br = branch{group: -1, item: it, aLo: klo, aHi: k - 1, bLo: k, bHi: k}
		}
		if up {
			br.aLo, br.aHi, br.bLo, br.bHi = br.bLo, br.bHi, br.aLo, br.aHi
		}
		return br, true
	}
	return branch{}, false
}

// zeroBid sets every item of bid b to 0; false when one is forced above 0.
func (s *searcher) zeroBid(b int32) bool {
	for _, it := range s.m.bidItems[b] {
		if s.klo[it] > 0 {
			return false
		}
		if s.khi[it] != 0 {
			s.setRange(it, 0, 0)
		}
	}
	return true
}

func (s *searcher) dfs() {
	if s.aborted || s.stop {
		return
	}
	s.nodes++
	if s.nodes > s.limit {
		s.aborted = true
		return
	}
	if !s.relax() {
		return
	}
	if s.hasInc && !s.lpBoundLess() {
		return
	}
	br, ok := s.pickBranch()
	if !ok {
		// The relaxation's solution is a clearing.
		v := s.bound
		if s.lp != nil {
			v = s.lp.intObj
		}
		if !s.hasInc || v.less(s.inc) {
			s.hasInc, s.inc = true, v
			for _, it := range s.c.items {
				for _, sl := range s.m.items[it].slots {
					s.incX[sl] = s.x(sl)
				}
			}
		}
		s.stop = s.diving
		return
	}
	mark := len(s.trail)
	// The two children, as functions that narrow the node (false: empty).
	var apply [2]func() bool
	if br.group >= 0 {
		apply[0] = func() bool {
			for _, b := range s.m.groups[br.group] {
				if b != br.keep && !s.zeroBid(b) {
					return false
				}
			}
			return true
		}
		apply[1] = func() bool { return s.zeroBid(br.keep) }
	} else {
		it := &s.m.items[br.item]
		for i, r := range [2][2]int64{{br.aLo, br.aHi}, {br.bLo, br.bHi}} {
			apply[i] = func() bool {
				lo, hi, ok := normalise(it, r[0], r[1])
				if !ok {
					return false
				}
				s.setRange(br.item, lo, hi)
				return s.propagateOn(it.bid)
			}
		}
	}
	// Without constraints a child's bound costs only the intervals it
	// touches: evaluate both and enter the better one first, which makes
	// the first dive a good clearing (and avoids needless shortfall).
	first := 0
	if s.lp == nil {
		var ok [2]bool
		var bnd [2]obj
		for i := range 2 {
			ok[i] = apply[i]()
			if ok[i] {
				s.relax()
				bnd[i] = s.bound
			}
			s.undo(mark)
		}
		if ok[1] && (!ok[0] || bnd[1].less(bnd[0])) {
			first = 1
		}
	}
	for _, i := range [2]int{first, 1 - first} {
		if apply[i]() {
			s.dfs()
		}
		s.undo(mark)
	}
}

// lpBoundLess reports whether the node's bound is below the incumbent.
func (s *searcher) lpBoundLess() bool {
	if s.lp != nil {
		return s.lp.boundLess(s.inc)
	}
	return s.bound.less(s.inc)
}

// fracBranch splits the item of a slot whose LP value is fractional (only
// with constraints: the merit order is always integral).
func (s *searcher) fracBranch() branch {
	sl := s.lp.frac
	it := s.m.slots[sl].item
	item := &s.m.items[it]
	klo, khi := s.klo[it], s.khi[it]
	v := s.lp.value(s, item.ref) // k itself, as a rational
	gap := new(big.Rat).SetInt64(item.gap)
	if klo == 0 && item.gap > 0 && v.Cmp(gap) < 0 {
		br := branch{group: -1, item: it, aLo: 0, aHi: 0, bLo: item.gap, bHi: khi}
		if new(big.Rat).Mul(v, big.NewRat(2, 1)).Cmp(gap) >= 0 {
			br.aLo, br.aHi, br.bLo, br.bHi = br.bLo, br.bHi, br.aLo, br.aHi
		}
		return br
	}
	k := new(big.Int).Quo(v.Num(), v.Denom()).Int64() // ⌊v⌋, v ≥ 0
	if !v.IsInt() || k < khi {
		return branch{group: -1, item: it, aLo: klo, aHi: k, bLo: k + 1, bHi: khi}
	}
	return branch{group: -1, item: it, aLo: klo, aHi: k - 1, bLo: k, bHi: k}
}

// propagateOn: once an item of bid b is forced above zero, the other bids
// of its exclusive group can only be zero. False when one of them is
// itself forced on (the node is empty).
func (s *searcher) propagateOn(b int32) bool {
	g := s.m.groupOf[b]
	if g < 0 {
		return true
	}
	forced := false
	for _, it := range s.m.bidItems[b] {
		if s.klo[it] > 0 {
			forced = true
		}
	}
	if !forced {
		return true
	}
	for _, o := range s.m.groups[g] {
		if o != b && !s.zeroBid(o) {
			return false
		}
	}
	return true
}

// ceilDiv is ⌈x·K/q⌉ (x, q > 0), exactly.
func ceilDiv(x, K, q int64) int64 {
	hi, lo := bits.Mul64(uint64(x), uint64(K))
	lo2, c := bits.Add64(lo, uint64(q-1), 0)
	quo, _ := bits.Div64(hi+c, lo2, uint64(q))
	return int64(quo)
}
