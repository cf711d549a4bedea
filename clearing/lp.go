package clearing

import (
	"math/big"
)

// The relaxation used when a component has constraints: an exact rational
// linear program, so that grid limits enter as more rows of the same
// branch and bound rather than as a separate engine.
//
// Variables (x = lo + y for each slot whose range is not a single point):
//
//	y_s ∈ [0, hi-lo]   cost (0, 0, price, rank)
//	short_t ≥ 0        cost (0, 1, 0, 0)
//	surplus_t ≥ 0      cost 0
//	slack_j ≥ 0        cost 0
//	art_i ≥ 0          cost (1, 0, 0, 0)   only where the start is infeasible
//
// Rows: Σ y + short_t − surplus_t = D_t − Σ lo per interval, and
// Σ coeff·y + slack_j = 10⁶·Limit − Σ coeff·lo per constraint. The
// objective is lexicographic (artificials, shortfall, cost, tie-break),
// handled exactly by comparing reduced costs as vectors; an optimum with
// artificials left means the node is infeasible. The simplex is a plain
// dense bounded-variable tableau with Bland's rule, in math/big rationals:
// exact and cycle-free, meant for the modest sizes of constrained
// components, not for speed.

type lpCons struct {
	slots []int32
	coef  []int64 // ppm
	limit int64   // Limit × 10⁶
}

type lpRelax struct {
	c      *component
	slots  []int32 // every slot of the component's items
	cons   []lpCons
	intObj obj // objective of the node's solution when it is integral
	bound  [3]big.Rat
	frac   int32    // a slot whose LP value is fractional, or -1
	fracV  *big.Rat // its value
	vals   []big.Rat
	col    map[int32]int // slot → column of the last solve
}

// value is slot sl's quantity in the last LP solution.
func (l *lpRelax) value(s *searcher, sl int32) *big.Rat {
	v := new(big.Rat).SetInt64(s.lo[sl])
	if c, ok := l.col[sl]; ok {
		v.Add(v, &l.vals[c])
	}
	return v
}

func newLPRelax(s *searcher, c *component) *lpRelax {
	m := s.m
	l := &lpRelax{c: c}
	slotOf := map[int64]int32{}
	for _, it := range c.items {
		for _, sl := range m.items[it].slots {
			l.slots = append(l.slots, sl)
			st := &m.slots[sl]
			slotOf[int64(st.bid)*int64(m.nT)+int64(st.t)] = sl
		}
	}
	for _, ci := range c.cons {
		con := &m.p.Constraints[ci]
		lc := lpCons{limit: con.Limit * ppm}
		idx := map[int32]int{}
		for _, tm := range con.Terms {
			sl, ok := slotOf[int64(tm.Bid)*int64(m.nT)+int64(tm.Interval)]
			if !ok {
				continue // nothing can be accepted there
			}
			if i, seen := idx[sl]; seen {
				lc.coef[i] += tm.CoeffPPM
				continue
			}
			idx[sl] = len(lc.slots)
			lc.slots = append(lc.slots, sl)
			lc.coef = append(lc.coef, tm.CoeffPPM)
		}
		l.cons = append(l.cons, lc)
	}
	return l
}

// boundLess reports bound <lex inc.
func (l *lpRelax) boundLess(inc obj) bool {
	for i, v := range [3]int64{inc.s, inc.c, inc.w} {
		if c := l.bound[i].Cmp(new(big.Rat).SetInt64(v)); c != 0 {
			return c < 0
		}
	}
	return false
}

const nObj = 4

type tableau struct {
	m, n  int
	a     [][]big.Rat // B⁻¹A, m × n
	d     [nObj][]big.Rat
	beta  []big.Rat
	basis []int
	state []int8 // 0 at lower bound (0), 1 at upper bound, 2 basic
	ub    []*big.Rat
	cost  [][nObj]int64
}

// solve solves the node's LP; false means infeasible.
func (l *lpRelax) solve(s *searcher) bool {
	m := s.m
	col := map[int32]int{} // slot → column
	l.col = col
	var ub []*big.Rat
	var cost [][nObj]int64
	for _, sl := range l.slots {
		if s.hi[sl] > s.lo[sl] {
			col[sl] = len(ub)
			ub = append(ub, new(big.Rat).SetInt64(s.hi[sl]-s.lo[sl]))
			st := &m.slots[sl]
			cost = append(cost, [nObj]int64{0, 0, st.p, st.rank})
		}
	}
	nY := len(ub)
	ivIndex := map[int32]int{}
	for i, t := range l.c.intervals {
		ivIndex[t] = i
	}
	nI, nC := len(l.c.intervals), len(l.cons)
	rows := nI + nC
	// Columns: y..., short_t, surplus_t (per interval), slack_j, art_i (per row).
	shortCol := func(i int) int { return nY + i }
	surplusCol := func(i int) int { return nY + nI + i }
	slackCol := func(j int) int { return nY + 2*nI + j }
	artCol := func(r int) int { return nY + 2*nI + nC + r }
	n := nY + 2*nI + nC + rows
	for range nI {
		ub = append(ub, nil)
		cost = append(cost, [nObj]int64{0, 1, 0, 0})
	}
	for range nI + nC {
		ub = append(ub, nil)
		cost = append(cost, [nObj]int64{})
	}
	for range rows {
		ub = append(ub, new(big.Rat)) // artificials start at 0 bound; fixed below
		cost = append(cost, [nObj]int64{1, 0, 0, 0})
	}
	tb := &tableau{m: rows, n: n, ub: ub, cost: cost, basis: make([]int, rows), state: make([]int8, n), beta: make([]big.Rat, rows)}
	tb.a = make([][]big.Rat, rows)
	for r := range rows {
		tb.a[r] = make([]big.Rat, n)
	}
	rhs := make([]int64, rows)
	for i, t := range l.c.intervals {
		rhs[i] = m.p.Demand[t]
	}
	for _, sl := range l.slots {
		st := &m.slots[sl]
		i := ivIndex[st.t]
		rhs[i] -= s.lo[sl]
		if c, ok := col[sl]; ok {
			tb.a[i][c].SetInt64(1)
		}
	}
	for i := range nI {
		tb.a[i][shortCol(i)].SetInt64(1)
		tb.a[i][surplusCol(i)].SetInt64(-1)
	}
	// Constraint rows in big integers: coefficients × quantities may exceed
	// int64 only in pathological inputs, but validation bounds them anyway.
	rhsBig := make([]big.Int, rows)
	for r := range nI {
		rhsBig[r].SetInt64(rhs[r])
	}
	for j, lc := range l.cons {
		r := nI + j
		rhsBig[r].SetInt64(lc.limit)
		for k, sl := range lc.slots {
			rhsBig[r].Sub(&rhsBig[r], new(big.Int).Mul(big.NewInt(lc.coef[k]), big.NewInt(s.lo[sl])))
			if c, ok := col[sl]; ok {
				tb.a[r][c].SetInt64(lc.coef[k])
			}
		}
		tb.a[r][slackCol(j)].SetInt64(1)
	}
	// Starting basis: short_t / slack_j where the right-hand side is
	// non-negative; otherwise negate the row and use surplus_t (coverage
	// rows) or an artificial (constraint rows).
	for r := range rows {
		neg := rhsBig[r].Sign() < 0
		if neg {
			for c := range n {
				tb.a[r][c].Neg(&tb.a[r][c])
			}
			rhsBig[r].Neg(&rhsBig[r])
		}
		tb.beta[r].SetInt(&rhsBig[r])
		var b int
		switch {
		case r < nI && !neg:
			b = shortCol(r)
		case r < nI:
			b = surplusCol(r)
		case !neg:
			b = slackCol(r - nI)
		default:
			b = artCol(r)
			tb.a[r][b].SetInt64(1)
			tb.ub[b] = nil
		}
		tb.basis[r] = b
		tb.state[b] = 2
	}
	tb.initCosts()
	tb.run()
	// Values.
	if l.vals == nil {
		l.vals = make([]big.Rat, n)
	}
	if len(l.vals) < n {
		l.vals = make([]big.Rat, n)
	}
	vals := l.vals[:n]
	for c := range n {
		switch tb.state[c] {
		case 0:
			vals[c].SetInt64(0)
		case 1:
			vals[c].Set(tb.ub[c])
		}
	}
	for r, b := range tb.basis {
		vals[b].Set(&tb.beta[r])
	}
	var z [nObj]big.Rat
	for c := range n {
		if vals[c].Sign() == 0 {
			continue
		}
		for k := range nObj {
			if tb.cost[c][k] != 0 {
				z[k].Add(&z[k], new(big.Rat).Mul(&vals[c], new(big.Rat).SetInt64(tb.cost[c][k])))
			}
		}
	}
	if z[0].Sign() > 0 {
		return false
	}
	// The bound adds the fixed part (the lo of every slot).
	var fixedC, fixedW int64
	for _, sl := range l.slots {
		fixedC += s.lo[sl] * m.slots[sl].p
		fixedW += s.lo[sl] * m.slots[sl].rank
	}
	l.bound[0].Set(&z[1])
	l.bound[1].Add(&z[2], new(big.Rat).SetInt64(fixedC))
	l.bound[2].Add(&z[3], new(big.Rat).SetInt64(fixedW))
	l.frac = -1
	for _, sl := range l.slots {
		if c, ok := col[sl]; ok {
			v := &vals[c]
			if !v.IsInt() {
				if l.frac < 0 {
					l.frac = sl
					l.fracV = new(big.Rat).Add(v, new(big.Rat).SetInt64(s.lo[sl]))
				}
				s.xs[sl] = s.lo[sl] + new(big.Int).Quo(v.Num(), v.Denom()).Int64()
				continue
			}
			s.xs[sl] = s.lo[sl] + v.Num().Int64()
		} else {
			s.xs[sl] = s.lo[sl]
		}
	}
	if l.frac < 0 {
		// Integral: the objective of this very clearing.
		l.intObj = obj{}
		cov := map[int32]int64{}
		for _, sl := range l.slots {
			st := &m.slots[sl]
			cov[st.t] += s.xs[sl]
			l.intObj.c += s.xs[sl] * st.p
			l.intObj.w += s.xs[sl] * st.rank
		}
		for _, t := range l.c.intervals {
			l.intObj.s += max(0, m.p.Demand[t]-cov[t])
		}
	}
	return true
}

func (tb *tableau) initCosts() {
	for k := range nObj {
		tb.d[k] = make([]big.Rat, tb.n)
		for c := range tb.n {
			tb.d[k][c].SetInt64(tb.cost[c][k])
		}
		for r, b := range tb.basis {
			cb := tb.cost[b][k]
			if cb == 0 {
				continue
			}
			f := new(big.Rat).SetInt64(cb)
			for c := range tb.n {
				if tb.a[r][c].Sign() != 0 {
					tb.d[k][c].Sub(&tb.d[k][c], new(big.Rat).Mul(f, &tb.a[r][c]))
				}
			}
		}
	}
}

// lexSign is the sign of the first non-zero reduced-cost component of c.
func (tb *tableau) lexSign(c int) int {
	for k := range nObj {
		if s := tb.d[k][c].Sign(); s != 0 {
			return s
		}
	}
	return 0
}

func (tb *tableau) run() {
	for iter := 0; ; iter++ {
		if iter > 1_000_000 {
			panic("clearing: simplex did not terminate")
		}
		enter, dir := -1, 0
		for c := range tb.n {
			switch tb.state[c] {
			case 0:
				if tb.lexSign(c) < 0 && (tb.ub[c] == nil || tb.ub[c].Sign() > 0) {
					enter, dir = c, 1
				}
			case 1:
				if tb.lexSign(c) > 0 {
					enter, dir = c, -1
				}
			}
			if enter >= 0 {
				break
			}
		}
		if enter < 0 {
			return
		}
		// Ratio test: β_r changes by rate_r·δ with rate_r = −dir·a[r][enter].
		var best *big.Rat
		leave := -1
		leaveToUpper := false
		for r := range tb.m {
			a := &tb.a[r][enter]
			if a.Sign() == 0 {
				continue
			}
			rate := new(big.Rat).Mul(a, big.NewRat(int64(-dir), 1))
			var lim *big.Rat
			toUpper := false
			if rate.Sign() < 0 {
				lim = new(big.Rat).Quo(&tb.beta[r], new(big.Rat).Neg(rate))
			} else if u := tb.ub[tb.basis[r]]; u != nil {
				lim = new(big.Rat).Quo(new(big.Rat).Sub(u, &tb.beta[r]), rate)
				toUpper = true
			} else {
				continue
			}
			if best == nil || lim.Cmp(best) < 0 || lim.Cmp(best) == 0 && tb.basis[r] < tb.basis[leave] {
				best, leave, leaveToUpper = lim, r, toUpper
			}
		}
		if u := tb.ub[enter]; u != nil && (best == nil || u.Cmp(best) <= 0) {
			// Bound flip: the entering variable reaches its other bound first.
			for r := range tb.m {
				a := &tb.a[r][enter]
				if a.Sign() == 0 {
					continue
				}
				delta := new(big.Rat).Mul(a, u)
				if dir > 0 {
					tb.beta[r].Sub(&tb.beta[r], delta)
				} else {
					tb.beta[r].Add(&tb.beta[r], delta)
				}
			}
			if dir > 0 {
				tb.state[enter] = 1
			} else {
				tb.state[enter] = 0
			}
			continue
		}
		if best == nil {
			panic("clearing: unbounded relaxation")
		}
		// Move every basic variable by δ = best, then pivot.
		for r := range tb.m {
			a := &tb.a[r][enter]
			if a.Sign() == 0 || r == leave {
				continue
			}
			delta := new(big.Rat).Mul(a, best)
			if dir > 0 {
				tb.beta[r].Sub(&tb.beta[r], delta)
			} else {
				tb.beta[r].Add(&tb.beta[r], delta)
			}
		}
		var enterVal big.Rat
		if dir > 0 {
			enterVal.Set(best)
		} else {
			enterVal.Sub(tb.ub[enter], best)
		}
		old := tb.basis[leave]
		if leaveToUpper {
			tb.state[old] = 1
		} else {
			tb.state[old] = 0
		}
		tb.basis[leave] = enter
		tb.state[enter] = 2
		tb.beta[leave].Set(&enterVal)
		tb.pivot(leave, enter)
	}
}

func (tb *tableau) pivot(r, c int) {
	piv := new(big.Rat).Set(&tb.a[r][c])
	inv := new(big.Rat).Inv(piv)
	row := tb.a[r]
	for j := range tb.n {
		if row[j].Sign() != 0 {
			row[j].Mul(&row[j], inv)
		}
	}
	tmp := new(big.Rat)
	for i := range tb.m {
		if i == r {
			continue
		}
		f := new(big.Rat).Set(&tb.a[i][c])
		if f.Sign() == 0 {
			continue
		}
		for j := range tb.n {
			if row[j].Sign() != 0 {
				tb.a[i][j].Sub(&tb.a[i][j], tmp.Mul(f, &row[j]))
			}
		}
	}
	for k := range nObj {
		f := new(big.Rat).Set(&tb.d[k][c])
		if f.Sign() == 0 {
			continue
		}
		for j := range tb.n {
			if row[j].Sign() != 0 {
				tb.d[k][j].Sub(&tb.d[k][j], tmp.Mul(f, &row[j]))
			}
		}
	}
}
