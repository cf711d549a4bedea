package clearing

import (
	"math/bits"
	"slices"
)

// The internal model. Every usable bid becomes one or more items; an item
// is the unit of decision:
//
//   - a linked bid is one item spanning all its offered intervals;
//   - any other bid is one item per offered interval.
//
// An item chooses an integer k in {0} ∪ [gap, K] (K = its largest quantity;
// gap ≤ 1 means no gap). In each interval (slot) of the item the accepted
// quantity is ⌊k·q/K⌋, which is k itself for a single-interval item. This
// one representation covers divisible (gap 0), minimum-quantity (gap = the
// minimum), indivisible (gap = K) and linked (several slots, one k) bids.
// The search narrows k to a range [klo, khi]; a slot's quantity then lies
// in [⌊klo·q/K⌋, ⌊khi·q/K⌋], which is what the relaxations use.

type slot struct {
	bid, t int32
	item   int32
	q, p   int64
	rank   int64 // bid index + 1: the tie-break weight (earlier bids preferred)
}

type item struct {
	bid   int32
	slots []int32 // slot ids, in interval order
	ref   int32   // a slot with q == K: there the quantity is k itself
	K     int64
	gap   int64
	// free items (non-linked, divisible, no minimum, no exclusive group)
	// are never branched on: any quantity in [0, K] is allowed.
	free bool
}

type model struct {
	p        *Problem
	nT       int
	slots    []slot
	items    []item
	bidItems [][]int32 // bid → its items
	groupOf  []int32   // bid → exclusive group index, -1 for none
	groups   [][]int32 // group → member bids (with items), in bid order
	gname    []string
	// order[t] lists interval t's slots in merit order: by price, then by
	// bid index (the documented tie-break), which also minimises the
	// tie-break weight Σ x·rank within a price.
	order [][]int32
	pos   []int32 // slot → position in order[its interval]
	// capped[b]: bid b is priced above the cap in at least one offered
	// interval (for the reasons given to unaccepted bids).
	capped []bool
}

// qty is ⌊k·q/K⌋ computed exactly (128-bit intermediate).
func qty(k, q, K int64) int64 {
	if q == K || k == 0 {
		if q == K {
			return k
		}
		return 0
	}
	hi, lo := bits.Mul64(uint64(k), uint64(q))
	quo, _ := bits.Div64(hi, lo, uint64(K))
	return int64(quo)
}

func buildModel(p *Problem) *model {
	nT := len(p.Demand)
	m := &model{p: p, nT: nT, bidItems: make([][]int32, len(p.Bids)), groupOf: make([]int32, len(p.Bids)), capped: make([]bool, len(p.Bids))}
	gidx := map[string]int32{}
	for bi := range p.Bids {
		m.groupOf[bi] = -1
		b := &p.Bids[bi]
		overCap := func(t int) bool {
			return len(p.MaxPrice) > 0 && p.MaxPrice[t] > 0 && b.Price[t] > p.MaxPrice[t]
		}
		var K int64
		offered, anyCapped := 0, false
		for t := range nT {
			if b.Quantity[t] > 0 {
				offered++
				K = max(K, b.Quantity[t])
				if overCap(t) {
					anyCapped = true
				}
			}
		}
		if anyCapped {
			m.capped[bi] = true
		}
		if offered == 0 || (b.Linked && anyCapped) {
			continue
		}
		if b.ExclusiveGroup != "" {
			g, ok := gidx[b.ExclusiveGroup]
			if !ok {
				g = int32(len(m.groups))
				gidx[b.ExclusiveGroup] = g
				m.groups = append(m.groups, nil)
				m.gname = append(m.gname, b.ExclusiveGroup)
			}
			m.groupOf[bi] = g
		}
		newSlot := func(t int, it int32) int32 {
			m.slots = append(m.slots, slot{bid: int32(bi), t: int32(t), item: it, q: b.Quantity[t], p: b.Price[t], rank: int64(bi) + 1})
			return int32(len(m.slots) - 1)
		}
		if b.Linked {
			it := item{bid: int32(bi), K: K, ref: -1}
			id := int32(len(m.items))
			for t := range nT {
				if b.Quantity[t] > 0 {
					s := newSlot(t, id)
					it.slots = append(it.slots, s)
					if it.ref < 0 && b.Quantity[t] == K {
						it.ref = s
					}
				}
			}
			switch {
			case !b.Divisible:
				it.gap = K
			default:
				it.gap = b.MinQuantity
			}
			m.items = append(m.items, it)
			m.bidItems[bi] = append(m.bidItems[bi], id)
		} else {
			for t := range nT {
				q := b.Quantity[t]
				if q == 0 || overCap(t) {
					continue
				}
				id := int32(len(m.items))
				s := newSlot(t, id)
				it := item{bid: int32(bi), K: q, ref: s, slots: []int32{s}}
				switch {
				case !b.Divisible:
					it.gap = q
				default:
					it.gap = min(b.MinQuantity, q)
				}
				it.free = it.gap <= 1 && m.groupOf[bi] < 0
				m.items = append(m.items, it)
				m.bidItems[bi] = append(m.bidItems[bi], id)
			}
		}
		if g := m.groupOf[bi]; g >= 0 && len(m.bidItems[bi]) > 0 {
			m.groups[g] = append(m.groups[g], int32(bi))
		}
	}
	for i := range m.items {
		if m.items[i].gap <= 1 {
			m.items[i].gap = 0
		}
	}
	m.order = make([][]int32, nT)
	for s := range m.slots {
		t := m.slots[s].t
		m.order[t] = append(m.order[t], int32(s))
	}
	m.pos = make([]int32, len(m.slots))
	for t := range nT {
		o := m.order[t]
		slices.SortFunc(o, func(a, b int32) int {
			sa, sb := &m.slots[a], &m.slots[b]
			if sa.p != sb.p {
				if sa.p < sb.p {
					return -1
				}
				return 1
			}
			return int(sa.bid - sb.bid)
		})
		for i, s := range o {
			m.pos[s] = int32(i)
		}
	}
	return m
}

// dominated marks items that no optimal clearing can use: in every one of
// their intervals, free (unconditionally divisible) bids strictly cheaper
// than the item can cover the whole demand on their own. Replacing any
// accepted quantity of such an item by those cheaper bids keeps the
// coverage and strictly lowers the cost, so the item is 0 in every optimum.
// Only valid without extra constraints (a grid limit could forbid the
// replacement).
func (m *model) dominated() []bool {
	dead := make([]bool, len(m.items))
	// cheap[t][i] = free capacity at positions < i in order[t].
	cheapBefore := make([][]int64, m.nT)
	for t := range m.nT {
		o := m.order[t]
		c := make([]int64, len(o)+1)
		for i, s := range o {
			c[i+1] = c[i]
			if m.items[m.slots[s].item].free {
				c[i+1] += m.slots[s].q
			}
		}
		cheapBefore[t] = c
	}
	for i := range m.items {
		it := &m.items[i]
		if it.free {
			continue
		}
		all := true
		for _, s := range it.slots {
			sl := &m.slots[s]
			o := m.order[sl.t]
			// first position with price ≥ sl.p: strictly cheaper slots before it
			j, _ := slices.BinarySearchFunc(o, sl.p, func(x int32, p int64) int {
				if m.slots[x].p < p {
					return -1
				}
				return 1
			})
			if cheapBefore[sl.t][j] < m.p.Demand[sl.t] {
				all = false
				break
			}
		}
		dead[i] = all
	}
	return dead
}
