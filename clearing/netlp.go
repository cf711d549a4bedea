package clearing

import (
	"fmt"
	"math"
	"math/big"
	"slices"
)

// The network fast path (see "Network constraints" in the package
// documentation): one bounded dual simplex per interval over that
// interval's bids, with the network rows added lazily, inside a
// depth-first branch and bound on minimum quantities and indivisible
// bids. Floating point only steers: every incumbent and every
// infeasibility is recomputed from its basis in exact arithmetic, and a
// node is pruned only by an exact bound or by a floating-point bound with
// a rigorous rounding-error margin.
//
// Columns of one interval's LP (the "extended" index):
//
//	0..n-1   x_j ∈ [lo_j, hi_j]   accepted W of slot j   cost (0, price, rank)
//	n        short ≥ 0                                    cost (1, 0, 0)
//	n+1      surplus ≥ 0                                  cost 0
//	n+2+r    s_r ∈ [−Down, Up]   value of active row r    cost 0
//
// Rows: Σ x + short − surplus = D (row 0) and Σ C·x − s_r = 0 (row 1+r).
// In floating point a network row is scaled to micro-units (C·10⁻⁶ per W);
// the exact system uses the integers (C per W, bounds ×10⁶).

type netEntry struct {
	r  int32 // active row
	ci int64
	cf float64
}

type busEntry struct {
	ri   int32
	p, q int64
}

type actRow struct {
	row          *NetRow
	cols         []int32
	ci           []int64
	cf           []float64
	lo, hi       float64 // slack bounds, micro-units (±Inf when unlimited)
	loI, hiI     int64   // slack bounds ×10⁶ (exact), valid when finite
	hasLo, hasHi bool
}

type netLP struct {
	p     *Problem
	t     int
	d     int64 // demand
	slots []int32
	n     int
	q     []int64
	gap   []int64
	price []int64
	rank  []int64
	lo    []int64
	hi    []int64
	nb    []NetBid

	rows      []*NetRow // every row of the interval
	busRows   [][]busEntry
	rowMax    []float64 // largest |coefficient| of each row
	rowVal    []float64 // Σ C·x (micro-units) at lastVal, for separation
	lastVal   []float64
	sepCalls  int
	rowActive []bool
	act       []actRow
	colRows   [][]netEntry
	nBus      int

	basis []int32
	state []int8 // per extended column: stLo, stHi, stBasic
	binv  []float64
	xb    []float64

	// scratch
	alpha []float64
	dd    [3][]float64
	val   []float64

	nodes    int64
	maxNodes int64
	binvOK   bool
	etas     int
	inc      []big.Rat // the incumbent (exact; divisible parts may be fractional)
	incObj   [3]big.Rat
	haveInc  bool
	incF     [3]float64
	xInt     []int64 // the incumbent rounded to whole W
}

const (
	stLo int8 = iota
	stHi
	stBasic
)

type lpStatus int

const (
	lpOptimal lpStatus = iota
	lpInfeasible
	lpFail
)

func newNetLP(p *Problem, m *model, t int, maxNodes int64) *netLP {
	s := &netLP{p: p, t: t, d: p.Demand[t], maxNodes: maxNodes}
	for _, sl := range m.order[t] {
		st := &m.slots[sl]
		it := &m.items[st.item]
		s.slots = append(s.slots, sl)
		s.q = append(s.q, st.q)
		s.gap = append(s.gap, it.gap)
		s.price = append(s.price, st.p)
		s.rank = append(s.rank, st.rank)
		s.nb = append(s.nb, p.Network.Bids[st.bid])
		s.nBus = max(s.nBus, p.Network.Bids[st.bid].Bus+1)
	}
	s.n = len(s.slots)
	s.lo = make([]int64, s.n)
	s.hi = append([]int64(nil), s.q...)
	s.colRows = make([][]netEntry, s.n)
	for ri := range p.Network.Rows {
		r := &p.Network.Rows[ri]
		if r.Interval == t && !(r.Up == Unlimited && r.Down == Unlimited) {
			s.rows = append(s.rows, r)
			if len(r.Buses) > 0 {
				s.nBus = max(s.nBus, int(r.Buses[len(r.Buses)-1])+1)
			}
		}
	}
	s.rowActive = make([]bool, len(s.rows))
	s.busRows = make([][]busEntry, s.nBus)
	s.rowMax = make([]float64, len(s.rows))
	for ri, r := range s.rows {
		for i, b := range r.Buses {
			e := busEntry{ri: int32(ri), p: r.PPM[i]}
			if r.QPPM != nil {
				e.q = r.QPPM[i]
			}
			s.busRows[b] = append(s.busRows[b], e)
			s.rowMax[ri] = max(s.rowMax[ri], math.Abs(float64(e.p)), math.Abs(float64(e.q)))
		}
	}
	s.state = make([]int8, s.n+2)
	s.alpha = make([]float64, s.n)
	for l := range 3 {
		s.dd[l] = make([]float64, s.n)
	}
	s.val = make([]float64, s.n)
	return s
}

// reset sets the merit-order basis: the columns in merit order (price,
// bid), the cheap ones at their upper bound, one marginal column basic,
// every active row's slack basic. It is dual feasible by construction.
func (s *netLP) reset() {
	s.binvOK = false
	order := make([]int, s.n) // the columns are in merit order already
	for j := range order {
		order[j] = j
	}
	for j := range s.state {
		s.state[j] = stLo
	}
	s.basis = s.basis[:0]
	R := s.d
	var acc int64
	marg := -1
	for _, j := range order {
		if acc < R && marg < 0 {
			if acc+s.hi[j] < R {
				s.state[j] = stHi
				acc += s.hi[j]
				continue
			}
			marg = j
			s.state[j] = stBasic
			continue
		}
	}
	switch {
	case marg >= 0:
		s.basis = append(s.basis, int32(marg))
	case acc < R:
		s.basis = append(s.basis, int32(s.n)) // short
		s.state[s.n] = stBasic
	default:
		s.basis = append(s.basis, int32(s.n+1)) // surplus (degenerate at 0)
		s.state[s.n+1] = stBasic
	}
	for r := range s.act {
		s.basis = append(s.basis, int32(s.n+2+r))
		s.state[s.n+2+r] = stBasic
	}
}

func (s *netLP) m() int { return 1 + len(s.act) }

// bounds of an extended column (float).
func (s *netLP) bounds(j int) (float64, float64) {
	switch {
	case j < s.n:
		return float64(s.lo[j]), float64(s.hi[j])
	case j < s.n+2:
		return 0, math.Inf(1)
	default:
		a := &s.act[j-s.n-2]
		return a.lo, a.hi
	}
}

func (s *netLP) cost(j int) [3]float64 {
	c := s.costI(j)
	return [3]float64{float64(c[0]), float64(c[1]), float64(c[2])}
}

// costI is column j's objective (shortfall, cost, tie-break weight).
func (s *netLP) costI(j int) [3]int64 {
	var c [3]int64
	switch {
	case j < s.n:
		c = [3]int64{0, s.price[j], s.rank[j]}
	case j == s.n:
		c = [3]int64{1, 0, 0}
	}
	return c
}

// nbValue is the value of a nonbasic column (float).
func (s *netLP) nbValue(j int) float64 {
	lo, hi := s.bounds(j)
	if s.state[j] == stHi {
		return hi
	}
	return lo
}

// colEntries calls f for every nonzero of extended column j (float).
func (s *netLP) colEntries(j int, f func(r int, v float64)) {
	switch {
	case j < s.n:
		f(0, 1)
		for _, e := range s.colRows[j] {
			f(int(e.r)+1, e.cf)
		}
	case j == s.n:
		f(0, 1)
	case j == s.n+1:
		f(0, -1)
	default:
		f(j-s.n-2+1, -1)
	}
}

func (s *netLP) activate(ri int) {
	if s.rowActive[ri] {
		return
	}
	s.rowActive[ri] = true
	r := s.rows[ri]
	a := actRow{row: r, lo: math.Inf(-1), hi: math.Inf(1)}
	if r.Up != Unlimited {
		a.hasHi, a.hi, a.hiI = true, float64(r.Up), r.Up*ppm
	}
	if r.Down != Unlimited {
		a.hasLo, a.lo, a.loI = true, -float64(r.Down), -r.Down*ppm
	}
	idx := int32(len(s.act))
	for j := range s.n {
		if c := r.coeff(s.nb[j]); c != 0 {
			a.cols = append(a.cols, int32(j))
			a.ci = append(a.ci, c)
			a.cf = append(a.cf, float64(c)*1e-6)
			s.colRows[j] = append(s.colRows[j], netEntry{r: idx, ci: c, cf: float64(c) * 1e-6})
		}
	}
	s.act = append(s.act, a)
	s.state = append(s.state, stBasic)
	s.basis = append(s.basis, int32(s.n+2)+idx)
	if s.binvOK {
		// [[B,0],[c,−1]]⁻¹ = [[B⁻¹,0],[c·B⁻¹,−1]], c the new row's
		// coefficients of the basic columns.
		m := len(s.basis) - 1
		nb := make([]float64, (m+1)*(m+1))
		for i := range m {
			copy(nb[i*(m+1):i*(m+1)+m], s.binv[i*m:(i+1)*m])
		}
		last := nb[m*(m+1):]
		for k, j := range s.basis[:m] {
			if int(j) >= s.n {
				continue
			}
			var c float64
			for _, e := range s.colRows[j] {
				if e.r == idx {
					c = e.cf
				}
			}
			if c == 0 {
				continue
			}
			for i := range m {
				last[i] += c * s.binv[k*m+i]
			}
		}
		last[m] = -1
		s.binv = nb
	}
}

// factor inverts the basis matrix (dense, Gauss-Jordan with partial
// pivoting); false when it is singular.
func (s *netLP) factor() bool {
	m := s.m()
	a := make([]float64, m*m)
	for k, j := range s.basis {
		s.colEntries(int(j), func(r int, v float64) { a[r*m+k] = v })
	}
	inv := make([]float64, m*m)
	for i := range m {
		inv[i*m+i] = 1
	}
	for c := range m {
		p, best := -1, 0.0
		for r := c; r < m; r++ {
			if v := math.Abs(a[r*m+c]); v > best {
				p, best = r, v
			}
		}
		if p < 0 || best < 1e-12 {
			return false
		}
		if p != c {
			for k := range m {
				a[p*m+k], a[c*m+k] = a[c*m+k], a[p*m+k]
				inv[p*m+k], inv[c*m+k] = inv[c*m+k], inv[p*m+k]
			}
		}
		f := 1 / a[c*m+c]
		for k := range m {
			a[c*m+k] *= f
			inv[c*m+k] *= f
		}
		for r := range m {
			if r == c || a[r*m+c] == 0 {
				continue
			}
			g := a[r*m+c]
			for k := range m {
				a[r*m+k] -= g * a[c*m+k]
				inv[r*m+k] -= g * inv[c*m+k]
			}
		}
	}
	s.binv = inv
	return true
}

// primal computes the basic values for the nonbasic columns at their bounds.
func (s *netLP) primal() {
	m := s.m()
	rhs := make([]float64, m)
	rhs[0] = float64(s.d)
	for j := range s.n {
		if s.state[j] == stBasic {
			continue
		}
		v := s.nbValue(j)
		s.val[j] = v
		if v == 0 {
			continue
		}
		rhs[0] -= v
		for _, e := range s.colRows[j] {
			rhs[e.r+1] -= e.cf * v
		}
	}
	if s.state[s.n] != stBasic {
		rhs[0] -= s.nbValue(s.n)
	}
	if s.state[s.n+1] != stBasic {
		rhs[0] += s.nbValue(s.n + 1)
	}
	for r := range s.act {
		j := s.n + 2 + r
		if s.state[j] != stBasic {
			rhs[r+1] += s.nbValue(j)
		}
	}
	s.xb = make([]float64, m)
	for i := range m {
		var v float64
		for k := range m {
			v += s.binv[i*m+k] * rhs[k]
		}
		s.xb[i] = v
		if j := int(s.basis[i]); j < s.n {
			s.val[j] = v
		}
	}
}

func feasTol(b float64) float64 { return 1e-9 * math.Max(1, math.Abs(b)) }

// lp runs the dual simplex from the current basis, adding violated
// network rows whenever it reaches an optimum, until no row is violated.
func (s *netLP) lp() (lpStatus, int) {
	// Bound changes of the branch and bound (a column fixed and later
	// freed) can leave a nonbasic column at the bound its reduced cost
	// does not favour: move it to the other bound, which keeps the basis
	// dual feasible (primal feasibility is the dual simplex's job).
	if !s.ensureFactor() {
		return lpFail, -1
	}
	y := s.duals()
	for l := range 3 {
		s.rowTimesX(y[l], s.dd[l])
	}
	for j := range s.n {
		if s.state[j] == stBasic || s.lo[j] == s.hi[j] {
			continue
		}
		c := s.cost(j)
		d := [3]float64{c[0] - s.dd[0][j], c[1] - s.dd[1][j], c[2] - s.dd[2][j]}
		switch {
		case s.state[j] == stLo && lexLessTol(d, [3]float64{}):
			s.state[j] = stHi
		case s.state[j] == stHi && lexLessTol([3]float64{}, d):
			s.state[j] = stLo
		}
	}
	for iter := 0; ; iter++ {
		if iter > 20*(s.n+len(s.rows))+1000 {
			return lpFail, -1
		}
		if !s.ensureFactor() {
			return lpFail, -1
		}
		s.primal()
		m := s.m()
		leave, worst, toUpper := -1, 0.0, false
		for i := range m {
			lo, hi := s.bounds(int(s.basis[i]))
			v := s.xb[i]
			if d := lo - v; d > feasTol(lo) && d > worst {
				leave, worst, toUpper = i, d, false
			}
			if d := v - hi; d > feasTol(hi) && d > worst {
				leave, worst, toUpper = i, d, true
			}
		}
		if leave < 0 {
			if s.separate() == 0 {
				return lpOptimal, -1
			}
			continue
		}
		enter := s.ratio(leave, toUpper)
		if enter < 0 {
			return lpInfeasible, leave
		}
		old := int(s.basis[leave])
		if toUpper {
			s.state[old] = stHi
		} else {
			s.state[old] = stLo
		}
		s.basis[leave] = int32(enter)
		s.state[enter] = stBasic
		s.updateInverse(leave, enter)
	}
}

// ensureFactor refactorises the basis when its inverse is stale or has
// taken many product-form updates.
func (s *netLP) ensureFactor() bool {
	if s.binvOK && s.etas < 64 {
		return true
	}
	s.etas = 0
	s.binvOK = s.factor()
	return s.binvOK
}

// updateInverse replaces basis position r by column j in B⁻¹ (product
// form: w = B⁻¹a_j, row r divided by w_r, w_i·row r subtracted elsewhere).
func (s *netLP) updateInverse(r, j int) {
	if !s.binvOK {
		return
	}
	m := s.m()
	w := make([]float64, m)
	s.colEntries(j, func(k int, v float64) {
		for i := range m {
			w[i] += s.binv[i*m+k] * v
		}
	})
	if math.Abs(w[r]) < 1e-11 {
		s.binvOK = false
		return
	}
	rowR := s.binv[r*m : (r+1)*m]
	f := 1 / w[r]
	for k := range rowR {
		rowR[k] *= f
	}
	for i := range m {
		if i == r || w[i] == 0 {
			continue
		}
		g := w[i]
		ri := s.binv[i*m : (i+1)*m]
		for k := range ri {
			ri[k] -= g * rowR[k]
		}
	}
	s.etas++
}

// duals returns y_l = c_B,l · B⁻¹ per objective level (float).
func (s *netLP) duals() [3][]float64 {
	m := s.m()
	var y [3][]float64
	for l := range 3 {
		y[l] = make([]float64, m)
	}
	for k, j := range s.basis {
		c := s.cost(int(j))
		for l := range 3 {
			if c[l] == 0 {
				continue
			}
			for i := range m {
				y[l][i] += c[l] * s.binv[k*m+i]
			}
		}
	}
	return y
}

// rowTimesX computes, for every x column j, out[j] = v[0] + Σ_r v[r+1]·cf_r[j].
func (s *netLP) rowTimesX(v []float64, out []float64) {
	for j := range s.n {
		out[j] = v[0]
	}
	for r := range s.act {
		w := v[r+1]
		if w == 0 {
			continue
		}
		a := &s.act[r]
		for k, j := range a.cols {
			out[j] += w * a.cf[k]
		}
	}
}

// ratio is the dual ratio test for the basic variable of row leave leaving
// at its lower (toUpper false) or upper bound: the entering column, or -1.
func (s *netLP) ratio(leave int, toUpper bool) int {
	m := s.m()
	rho := s.binv[leave*m : (leave+1)*m]
	s.rowTimesX(rho, s.alpha)
	y := s.duals()
	var yA [3][]float64
	for l := range 3 {
		yA[l] = s.dd[l]
		if slices.ContainsFunc(y[l], func(v float64) bool { return v != 0 }) {
			s.rowTimesX(y[l], yA[l])
		} else {
			clear(yA[l])
		}
	}
	best := -1
	var bestR [3]float64
	bestA := 0.0
	maxA := 0.0
	nExt := s.n + 2 + len(s.act)
	alphaOf := func(j int) float64 {
		switch {
		case j < s.n:
			return s.alpha[j]
		case j == s.n:
			return rho[0]
		case j == s.n+1:
			return -rho[0]
		}
		return -rho[j-s.n-2+1]
	}
	dOf := func(j int) [3]float64 {
		c := s.cost(j)
		switch {
		case j < s.n:
			return [3]float64{c[0] - yA[0][j], c[1] - yA[1][j], c[2] - yA[2][j]}
		case j == s.n:
			return [3]float64{c[0] - y[0][0], c[1] - y[1][0], c[2] - y[2][0]}
		case j == s.n+1:
			return [3]float64{y[0][0], y[1][0], y[2][0]}
		}
		r := j - s.n - 2 + 1
		return [3]float64{y[0][r], y[1][r], y[2][r]}
	}
	for j := range nExt {
		if s.state[j] != stBasic {
			maxA = max(maxA, math.Abs(alphaOf(j)))
		}
	}
	ptol := 1e-9 * math.Max(maxA, 1e-300)
	for j := range nExt {
		st := s.state[j]
		if st == stBasic {
			continue
		}
		a := alphaOf(j)
		if math.Abs(a) <= ptol || !toUpper && (st == stLo) != (a < 0) || toUpper && (st == stLo) != (a > 0) {
			continue // cannot move the leaving variable the right way
		}
		lo, hi := s.bounds(j)
		if lo == hi {
			continue
		}
		if math.Abs(a) <= ptol {
			continue
		}
		// The basic value moves by −a·Δx_j; Δx_j > 0 at lower, < 0 at upper.
		var ok bool
		if !toUpper { // must increase
			ok = st == stLo && a < 0 || st == stHi && a > 0
		} else {
			ok = st == stLo && a > 0 || st == stHi && a < 0
		}
		if !ok {
			continue
		}
		d := dOf(j)
		sg := 1.0
		if st == stHi {
			sg = -1
		}
		aa := math.Abs(a)
		r := [3]float64{sg * d[0] / aa, sg * d[1] / aa, sg * d[2] / aa}
		if best < 0 || lexLessTol(r, bestR) || !lexLessTol(bestR, r) && aa > bestA {
			best, bestR, bestA = j, r, aa
		}
	}
	return best
}

func lexLessTol(a, b [3]float64) bool {
	for l := range 3 {
		tol := 1e-9 * (1 + math.Abs(a[l]) + math.Abs(b[l]))
		if a[l] < b[l]-tol {
			return true
		}
		if a[l] > b[l]+tol {
			return false
		}
	}
	return false
}

// separate activates the interval's rows that the current (float)
// solution violates; it returns how many.
func (s *netLP) separate() int {
	// Row values kept up to date from the columns that changed since the
	// last call (recomputed in full now and then against drift).
	if s.rowVal == nil || s.sepCalls%64 == 0 {
		s.rowVal = make([]float64, len(s.rows))
		s.lastVal = make([]float64, s.n)
	}
	s.sepCalls++
	for j := range s.n {
		d := s.val[j] - s.lastVal[j]
		if d == 0 {
			continue
		}
		s.lastVal[j] = s.val[j]
		nb := s.nb[j]
		d *= float64(nb.Sign) * 1e-6
		for _, e := range s.busRows[nb.Bus] {
			c := e.p
			if nb.Reactive {
				c = e.q
			}
			s.rowVal[e.ri] += float64(c) * d
		}
	}
	// The most violated rows first, measured in W of the row's most
	// sensitive bus; at most maxAdd per round (voltage rows along one
	// feeder are nearly parallel: the worst one usually settles the rest).
	type cand struct {
		ri int
		w  float64
	}
	var cs []cand
	for ri, r := range s.rows {
		if s.rowActive[ri] {
			continue
		}
		v, mc := s.rowVal[ri], s.rowMax[ri]
		var ex float64
		if r.Up != Unlimited && v > float64(r.Up)+feasTol(float64(r.Up)) {
			ex = v - float64(r.Up)
		} else if r.Down != Unlimited && v < -float64(r.Down)-feasTol(float64(r.Down)) {
			ex = -float64(r.Down) - v
		} else {
			continue
		}
		cs = append(cs, cand{ri, ex / math.Max(mc*1e-6, 1e-300)})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.w != b.w {
			if a.w > b.w {
				return -1
			}
			return 1
		}
		return a.ri - b.ri
	})
	const maxAdd = 8
	for i := range min(len(cs), maxAdd) {
		s.activate(cs[i].ri)
	}
	return min(len(cs), maxAdd)
}

// ---- exact arithmetic ----

// exactEntries calls f for every nonzero of extended column j (exact).
func (s *netLP) exactEntries(j int, f func(r int, v int64)) {
	switch {
	case j < s.n:
		f(0, 1)
		for _, e := range s.colRows[j] {
			f(int(e.r)+1, e.ci)
		}
	case j == s.n:
		f(0, 1)
	case j == s.n+1:
		f(0, -1)
	default:
		f(j-s.n-2+1, -1)
	}
}

func (s *netLP) exactBounds(j int) (lo, hi int64, hasLo, hasHi bool) {
	switch {
	case j < s.n:
		return s.lo[j], s.hi[j], true, true
	case j < s.n+2:
		return 0, 0, true, false
	}
	a := &s.act[j-s.n-2]
	return a.loI, a.hiI, a.hasLo, a.hasHi
}

func (s *netLP) exactNbValue(j int) int64 {
	lo, hi, _, _ := s.exactBounds(j)
	if s.state[j] == stHi {
		return hi
	}
	return lo
}

type exactSol struct {
	xb    []big.Rat
	bound [3]big.Rat
	x     []big.Rat // every x column's value
}

// exactInverse inverts the basis exactly (inv[position][row]); nil when
// singular. Basic slacks are unit columns of their own rows, so only the
// core — row 0 and the rows whose slack is nonbasic (the binding ones),
// against the basic non-slack columns — needs a rational inversion:
// B = [[Bc, 0], [C, −I]] gives B⁻¹ = [[Bc⁻¹, 0], [C·Bc⁻¹, −I]].
func (s *netLP) exactCore() (coreRows, corePos []int, adj [][]big.Int, det *big.Int) {
	m := s.m()
	coreRows = append(coreRows, 0)
	for r := range s.act {
		if s.state[s.n+2+r] != stBasic {
			coreRows = append(coreRows, r+1)
		}
	}
	rowAt := make([]int, m) // row → index in coreRows, −1 if not core
	for i := range rowAt {
		rowAt[i] = -1
	}
	for a, r := range coreRows {
		rowAt[r] = a
	}
	for p, j := range s.basis {
		if int(j) < s.n+2 {
			corePos = append(corePos, p)
		}
	}
	k := len(coreRows)
	if len(corePos) != k {
		return nil, nil, nil, nil
	}
	bc := make([][]big.Int, k)
	for a := range k {
		bc[a] = make([]big.Int, k)
	}
	for b, p := range corePos {
		s.exactEntries(int(s.basis[p]), func(r int, v int64) {
			if a := rowAt[r]; a >= 0 {
				bc[a][b].SetInt64(v)
			}
		})
	}
	adj, det = invertBareiss(bc) // B_c⁻¹ = adj/det, adj[b][a]
	if det.Sign() == 0 {
		return nil, nil, nil, nil
	}
	return coreRows, corePos, adj, det
}

// exactInverse is the full exact inverse (see exactCore).
func (s *netLP) exactInverse() [][]big.Rat {
	m := s.m()
	coreRows, corePos, adj, det := s.exactCore()
	if adj == nil {
		return nil
	}
	ic := make([][]big.Rat, len(adj))
	for b := range adj {
		ic[b] = make([]big.Rat, len(adj[b]))
		for a := range adj[b] {
			ic[b][a].SetFrac(&adj[b][a], det)
		}
	}
	inv := make([][]big.Rat, m)
	for p := range m {
		inv[p] = make([]big.Rat, m)
	}
	for b, p := range corePos {
		for a, r := range coreRows {
			inv[p][r].Set(&ic[b][a])
		}
	}
	tmp := new(big.Rat)
	for p, j := range s.basis {
		if int(j) < s.n+2 {
			continue
		}
		rho := int(j) - s.n - 2 + 1
		for b, cp := range corePos {
			var c int64
			s.exactEntries(int(s.basis[cp]), func(r int, v int64) {
				if r == rho {
					c = v
				}
			})
			if c == 0 {
				continue
			}
			cr := tmp2(c)
			for a, r := range coreRows {
				if ic[b][a].Sign() != 0 {
					inv[p][r].Add(&inv[p][r], tmp.Mul(cr, &ic[b][a]))
				}
			}
		}
		inv[p][rho].SetInt64(-1)
	}
	return inv
}

// exact recomputes the current basis's solution, checks lexicographic
// dual feasibility of every nonbasic column and returns the exact
// objective of the basic solution, which is then a valid lower bound on
// every solution of the node (whatever the rows not yet active). ok is
// false when the basis is not exactly dual feasible (or singular).
func (s *netLP) exact() (*exactSol, bool) {
	m := s.m()
	coreRows, corePos, adj, det := s.exactCore()
	if adj == nil {
		return nil, false
	}
	e := &exactSol{xb: make([]big.Rat, m), x: make([]big.Rat, s.n)}
	// rhs (int64: bounded by validation).
	rhs := make([]int64, m)
	rhs[0] = s.d
	nExt := s.n + 2 + len(s.act)
	for j := range nExt {
		if s.state[j] == stBasic {
			continue
		}
		v := s.exactNbValue(j)
		if j < s.n {
			e.x[j].SetInt64(v)
		}
		if v == 0 {
			continue
		}
		s.exactEntries(j, func(r int, c int64) { rhs[r] -= c * v })
	}
	tmp := new(big.Rat)
	num, ti := new(big.Int), new(big.Int)
	for b, p := range corePos {
		num.SetInt64(0)
		for a, r := range coreRows {
			if rhs[r] != 0 && adj[b][a].Sign() != 0 {
				num.Add(num, ti.Mul(&adj[b][a], big.NewInt(rhs[r])))
			}
		}
		e.xb[p].SetFrac(num, det)
		if j := int(s.basis[p]); j < s.n {
			e.x[j].Set(&e.xb[p])
		}
	}
	// Basic slacks: the row's value Σ C·x.
	for p, j := range s.basis {
		if int(j) < s.n+2 {
			continue
		}
		a := &s.act[int(j)-s.n-2]
		var in int64
		for k, col := range a.cols {
			if s.state[col] == stBasic {
				e.xb[p].Add(&e.xb[p], tmp.Mul(tmp2(a.ci[k]), &e.x[col]))
			} else {
				in += a.ci[k] * s.exactNbValue(int(col))
			}
		}
		e.xb[p].Add(&e.xb[p], tmp2(in))
	}
	// Duals: zero on the rows whose slack is basic.
	var y [3][]big.Rat
	var yf [3][]float64
	var ynz [3][]bool
	for l := range 3 {
		y[l] = make([]big.Rat, m)
		yf[l] = make([]float64, m)
		ynz[l] = make([]bool, m)
	}
	for l := range 3 {
		for a, r := range coreRows {
			num.SetInt64(0)
			for b, p := range corePos {
				if c := s.costI(int(s.basis[p]))[l]; c != 0 && adj[b][a].Sign() != 0 {
					num.Add(num, ti.Mul(&adj[b][a], big.NewInt(c)))
				}
			}
			y[l][r].SetFrac(num, det)
		}
	}
	for l := range 3 {
		for i := range m {
			yf[l][i], _ = y[l][i].Float64()
			ynz[l][i] = y[l][i].Sign() != 0
		}
	}
	// Reduced costs of x columns: float with a rigorous error bound, exact
	// where the bound does not settle the sign.
	var yA, yAbs [3][]float64
	for l := range 3 {
		yA[l] = make([]float64, s.n)
		yAbs[l] = make([]float64, s.n)
		for j := range s.n {
			yA[l][j] = yf[l][0]
			yAbs[l][j] = math.Abs(yf[l][0])
		}
		for r := range s.act {
			w := yf[l][r+1]
			if w == 0 {
				continue
			}
			a := &s.act[r]
			for k, j := range a.cols {
				p := w * float64(a.ci[k])
				yA[l][j] += p
				yAbs[l][j] += math.Abs(p)
			}
		}
	}
	sign := func(j int) int { // lexicographic sign of d_j (exact)
		c := s.costI(j)
		for l := range 3 {
			var sg int
			if j < s.n {
				d := float64(c[l]) - yA[l][j]
				bound := float64(len(s.colRows[j])+6) * 4.5e-16 * (math.Abs(float64(c[l])) + yAbs[l][j])
				switch {
				case d > bound:
					sg = 1
				case d < -bound:
					sg = -1
				case c[l] == 0 && !ynz[l][0] && !anyNZ(ynz[l], s.colRows[j]):
					sg = 0 // every term exactly zero
				default:
					dr := new(big.Rat).Sub(tmp2(c[l]), &y[l][0])
					for _, en := range s.colRows[j] {
						dr.Sub(dr, new(big.Rat).Mul(&y[l][en.r+1], tmp2(en.ci)))
					}
					sg = dr.Sign()
				}
			} else {
				dr := new(big.Rat).SetInt64(c[l])
				s.exactEntries(j, func(r int, v int64) {
					dr.Sub(dr, new(big.Rat).Mul(&y[l][r], tmp2(v)))
				})
				sg = dr.Sign()
			}
			if sg != 0 {
				return sg
			}
		}
		return 0
	}
	for j := range nExt {
		st := s.state[j]
		if st == stBasic {
			continue
		}
		lo, hi, hasLo, hasHi := s.exactBounds(j)
		if hasLo && hasHi && lo == hi {
			continue
		}
		sg := sign(j)
		if st == stLo && sg < 0 || st == stHi && sg > 0 {
			return nil, false
		}
	}
	// Objective of the basic solution.
	var fixed [3]int64
	for j := range nExt {
		if s.state[j] == stBasic {
			continue
		}
		v := s.exactNbValue(j)
		c := s.costI(j)
		for l := range 3 {
			fixed[l] += c[l] * v
		}
	}
	for l := range 3 {
		e.bound[l].SetInt64(fixed[l])
	}
	for i, j := range s.basis {
		c := s.costI(int(j))
		for l := range 3 {
			if c[l] != 0 {
				e.bound[l].Add(&e.bound[l], tmp.Mul(tmp2(c[l]), &e.xb[i]))
			}
		}
	}
	return e, true
}

func tmp2(v int64) *big.Rat { return new(big.Rat).SetInt64(v) }

// below reports bound <lex the incumbent's objective.
func (e *exactSol) below(inc *[3]big.Rat) bool {
	for l := range 3 {
		if c := e.bound[l].Cmp(&inc[l]); c != 0 {
			return c < 0
		}
	}
	return false
}

// solve finds the exact optimum of the interval (divisible quantities
// continuous) and rounds it to whole W.
func (s *netLP) solve() error {
	s.reset()
	err := s.search()
	if err != nil || !s.haveInc {
		return err
	}
	return s.round()
}

// infeasibleExact proves that the basic variable of row i cannot be
// brought within its bounds (the dual simplex found no entering column):
// true only when that holds in exact arithmetic.
func (s *netLP) infeasibleExact(i int) bool {
	inv := s.exactInverse()
	if inv == nil {
		return false
	}
	m := s.m()
	// β_i with nonbasics at their bounds.
	rhs := make([]int64, m)
	rhs[0] = s.d
	nExt := s.n + 2 + len(s.act)
	for j := range nExt {
		if s.state[j] == stBasic {
			continue
		}
		if v := s.exactNbValue(j); v != 0 {
			s.exactEntries(j, func(r int, c int64) { rhs[r] -= c * v })
		}
	}
	beta := new(big.Rat)
	for k := range m {
		beta.Add(beta, new(big.Rat).Mul(&inv[i][k], tmp2(rhs[k])))
	}
	lo, hi, hasLo, hasHi := s.exactBounds(int(s.basis[i]))
	var mustUp bool
	switch {
	case hasLo && beta.Cmp(tmp2(lo)) < 0:
		mustUp = true
	case hasHi && beta.Cmp(tmp2(hi)) > 0:
		mustUp = false
	default:
		return false
	}
	// x_Bi = β − Σ α_j (x_j − v_j): no column may move it the needed way.
	for j := range nExt {
		st := s.state[j]
		if st == stBasic {
			continue
		}
		jlo, jhi, hasJLo, hasJHi := s.exactBounds(j)
		if hasJLo && hasJHi && jlo == jhi {
			continue
		}
		a := new(big.Rat)
		s.exactEntries(j, func(r int, v int64) { a.Add(a, new(big.Rat).Mul(&inv[i][r], tmp2(v))) })
		sg := a.Sign()
		if sg == 0 {
			continue
		}
		// Δx_j > 0 possible at lower, < 0 at upper; x_Bi moves by −α·Δx.
		up := st == stLo && sg < 0 || st == stHi && sg > 0
		if up == mustUp {
			return false
		}
	}
	return true
}

// search is the depth-first branch and bound of one interval.
func (s *netLP) search() error {
	s.nodes++
	if s.nodes > s.maxNodes {
		return ErrNodeLimit
	}
	for {
		st, leave := s.lp()
		switch st {
		case lpFail:
			return errNetFallback
		case lpInfeasible:
			if !s.infeasibleExact(leave) {
				return errNetFallback
			}
			return nil
		}
		// Exact arithmetic is needed to prune and at leaves; a node that
		// the float solution clearly shows to be inside a gap, and whose
		// float bound is clearly below the incumbent (or there is none),
		// is branched on directly (branching is never wrong, only work).
		bj := -1
		for j := range s.n {
			if g := float64(s.gap[j]); g > 0 && s.val[j] > 1e-6*g && s.val[j] < g*(1-1e-6) {
				bj = j
				break
			}
		}
		if s.haveInc && s.incObj[0].Sign() == 0 {
			// A rigorous floating-point lower bound on the cost of any
			// solution of this node without shortfall (the incumbent has
			// none, so nothing else can beat it): prune without exact
			// arithmetic when it exceeds the incumbent's cost.
			if lb, ok := s.safeCostBound(); ok && lb > s.incF[1]*(1+1e-12)+1 {
				return nil
			}
		}
		var e *exactSol
		if bj < 0 || s.haveInc && !lexLessTol(s.floatObj(), s.incF) {
			var ok bool
			if e, ok = s.exact(); !ok {
				return errNetFallback
			}
			if s.haveInc && !e.below(&s.incObj) {
				return nil
			}
			// Branching candidate: a value inside a gap (indivisible bid
			// or minimum quantity). Divisible quantities stay continuous.
			bj = -1
			for j := range s.n {
				v := &e.x[j]
				if s.gap[j] > 0 && v.Sign() > 0 && v.Cmp(tmp2(s.gap[j])) < 0 {
					bj = j
					break
				}
			}
		}
		if bj < 0 {
			// Every basic variable within its bounds, exactly.
			for i, j := range s.basis {
				lo, hi, hasLo, hasHi := s.exactBounds(int(j))
				if hasLo && e.xb[i].Cmp(tmp2(lo)) < 0 || hasHi && e.xb[i].Cmp(tmp2(hi)) > 0 {
					return errNetFallback
				}
			}
			if v := s.violatedRat(e.x); len(v) > 0 {
				for _, ri := range v {
					if s.rowActive[ri] {
						return errNetFallback // cannot happen with exact slack bounds
					}
					s.activate(ri)
				}
				continue
			}
			s.inc, s.haveInc = e.x, true
			for l := range 3 {
				s.incObj[l].Set(&e.bound[l])
				s.incF[l], _ = e.bound[l].Float64()
			}
			return nil
		}
		g := s.gap[bj]
		type child struct{ lo, hi int64 }
		kids := [2]child{{s.lo[bj], 0}, {max(s.lo[bj], g), s.hi[bj]}}
		if s.val[bj] > float64(g)/2 {
			kids[0], kids[1] = kids[1], kids[0]
		}
		lo0, hi0 := s.lo[bj], s.hi[bj]
		for _, k := range kids {
			k.lo, k.hi = max(k.lo, lo0), min(k.hi, hi0)
			if k.lo == lo0 && k.hi == hi0 {
				// The value lies outside the column's bounds: the float
				// simplex stopped short of an exact vertex.
				return errNetFallback
			}
			if k.lo > k.hi {
				continue
			}
			s.lo[bj], s.hi[bj] = k.lo, k.hi
			err := s.search()
			s.lo[bj], s.hi[bj] = lo0, hi0
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// violatedRat returns the rows of the interval that x (exact) violates.
// Only the few fractional values need rational arithmetic: the integer
// parts go through the exact integer check.
func (s *netLP) violatedRat(x []big.Rat) []int {
	fl := make([]int64, s.n)
	var frac []int
	for j := range s.n {
		v := &x[j]
		fl[j] = new(big.Int).Quo(v.Num(), v.Denom()).Int64()
		if !v.IsInt() {
			frac = append(frac, j)
		}
	}
	vals := s.rowValues(fl)
	var out []int
	for ri, r := range s.rows {
		v := new(big.Rat).SetInt64(vals[ri])
		for _, j := range frac {
			if c := r.coeff(s.nb[j]); c != 0 {
				f := new(big.Rat).Sub(&x[j], tmp2(fl[j]))
				v.Add(v, f.Mul(f, tmp2(c)))
			}
		}
		if r.Up != Unlimited && v.Cmp(tmp2(r.Up*ppm)) > 0 || r.Down != Unlimited && v.Cmp(tmp2(-r.Down*ppm)) < 0 {
			out = append(out, ri)
		}
	}
	return out
}

// rowValues is Σ C·x of every row of the interval (exact integers).
func (s *netLP) rowValues(x []int64) []int64 {
	pb := make([]int64, s.nBus)
	qb := make([]int64, s.nBus)
	for j := range s.n {
		if x[j] == 0 {
			continue
		}
		nb := s.nb[j]
		if nb.Reactive {
			qb[nb.Bus] += int64(nb.Sign) * x[j]
		} else {
			pb[nb.Bus] += int64(nb.Sign) * x[j]
		}
	}
	out := make([]int64, len(s.rows))
	for ri, r := range s.rows {
		var v int64
		for i, b := range r.Buses {
			v += r.PPM[i] * pb[b]
			if r.QPPM != nil {
				v += r.QPPM[i] * qb[b]
			}
		}
		out[ri] = v
	}
	return out
}

// round turns the exact optimum into whole W. Each fractional quantity
// (at most one per binding row plus one, the basic columns of the final
// LP) goes down to the W below; a row that this takes beyond a limit
// (a bid whose acceptance relieves that row) gets its bids on it rounded
// up instead; then the W lost on coverage are given back, in merit order,
// to divisible bids whose rows all leave room for them. Every row is
// checked in exact integers; a rounding that cannot keep every row is an
// error (it is not hidden).
func (s *netLP) round() error {
	x := make([]int64, s.n)
	var frac []int
	var cov int64
	for j := range s.n {
		v := &s.inc[j]
		x[j] = new(big.Int).Quo(v.Num(), v.Denom()).Int64()
		if !v.IsInt() {
			frac = append(frac, j)
		}
		cov += x[j]
	}
	vals := s.rowValues(x)
	over := func(ri int, v int64) bool {
		r := s.rows[ri]
		return r.Up != Unlimited && v > r.Up*ppm || r.Down != Unlimited && v < -r.Down*ppm
	}
	for pass := 0; pass < 2; pass++ {
		bad := false
		for ri, v := range vals {
			if !over(ri, v) {
				continue
			}
			bad = true
			r := s.rows[ri]
			for _, j := range frac {
				c := r.coeff(s.nb[j])
				if c == 0 || x[j] >= s.hi[j] {
					continue
				}
				up := r.Up != Unlimited && vals[ri] > r.Up*ppm
				if up && c < 0 || !up && c > 0 {
					x[j]++
					cov++
					for rj, rr := range s.rows {
						vals[rj] += rr.coeff(s.nb[j])
					}
				}
			}
		}
		if !bad {
			break
		}
	}
	for ri, v := range vals {
		if over(ri, v) {
			return fmt.Errorf("clearing: interval %d: rounding the optimum to whole W breaks %s", s.t, s.rows[ri].Name)
		}
	}
	// Give back the coverage lost by rounding down, a W at a time.
	target := s.d
	var exact big.Rat
	for j := range s.n {
		exact.Add(&exact, &s.inc[j])
	}
	if exact.Cmp(tmp2(s.d)) < 0 { // the optimum itself has a shortfall
		target = new(big.Int).Quo(exact.Num(), exact.Denom()).Int64()
	}
	for j := 0; j < s.n && cov < target; j++ {
		if s.gap[j] > 0 && x[j] < s.gap[j] {
			continue
		}
		for cov < target && x[j] < s.hi[j] {
			ok := true
			for ri, r := range s.rows {
				if c := r.coeff(s.nb[j]); c != 0 && over(ri, vals[ri]+c) {
					ok = false
					break
				}
			}
			if !ok {
				break
			}
			x[j]++
			cov++
			for ri, r := range s.rows {
				vals[ri] += r.coeff(s.nb[j])
			}
		}
	}
	s.xInt = x
	return nil
}

func anyNZ(nz []bool, es []netEntry) bool {
	for _, e := range es {
		if nz[e.r+1] {
			return true
		}
	}
	return false
}

// floatObj is the float objective of the current LP solution.
func (s *netLP) floatObj() [3]float64 {
	var o [3]float64
	for j := range s.n {
		o[1] += s.val[j] * float64(s.price[j])
		o[2] += s.val[j] * float64(s.rank[j])
	}
	if s.state[s.n] == stBasic {
		for i, j := range s.basis {
			if int(j) == s.n {
				o[0] = s.xb[i]
			}
		}
	}
	return o
}

// invertBareiss inverts an integer matrix fraction-free (Bareiss'
// Gauss-Jordan): it returns adj and d with A⁻¹ = adj/d, adj indexed
// [column of A][row of A], or d = 0 when A is singular. Every division
// is exact, so no rational normalisation happens until the caller forms
// the few values it needs.
func invertBareiss(a [][]big.Int) ([][]big.Int, *big.Int) {
	k := len(a)
	w := make([][]big.Int, k)
	for i := range k {
		w[i] = make([]big.Int, 2*k)
		for j := range k {
			w[i][j].Set(&a[i][j])
		}
		w[i][k+i].SetInt64(1)
	}
	prev := big.NewInt(1)
	t1, t2 := new(big.Int), new(big.Int)
	for c := range k {
		p := -1
		for r := c; r < k; r++ {
			if w[r][c].Sign() != 0 {
				p = r
				break
			}
		}
		if p < 0 {
			return nil, new(big.Int)
		}
		w[p], w[c] = w[c], w[p]
		piv := &w[c][c]
		for r := range k {
			if r == c {
				continue
			}
			f := new(big.Int).Set(&w[r][c])
			for j := range 2 * k {
				if j == c {
					continue
				}
				t1.Mul(piv, &w[r][j])
				if f.Sign() != 0 && w[c][j].Sign() != 0 {
					t2.Mul(f, &w[c][j])
					t1.Sub(t1, t2)
				}
				w[r][j].Quo(t1, prev)
			}
			w[r][c].SetInt64(0)
		}
		prev = new(big.Int).Set(piv)
	}
	// Left block = d·I (d = prev); right block = d·A⁻¹.
	adj := make([][]big.Int, k)
	for i := range k {
		adj[i] = w[i][k:]
	}
	return adj, prev
}

// safeCostBound is a lower bound on Σ price·x over every point of the
// node's LP with zero shortfall, from the float cost duals y of the
// current basis: for any y, Σ price·x ≥ y·b + Σ_j min over column j's box
// of (price_j − y·A_j)·x_j (weak duality; shortfall fixed at 0, the
// surplus and the slacks over their boxes). Every term is computed in
// float64 with a running bound on its rounding error, which is
// subtracted (twice over): the result is a valid bound whatever the
// accuracy of y. ok is false when the bound is −∞ (a column with an
// unbounded side whose reduced cost has the wrong sign).
func (s *netLP) safeCostBound() (float64, bool) {
	const eps = 1.2e-16
	y := s.duals()[1]
	var lb, errSum float64
	term := func(d, dErr, lo, hi float64) bool {
		x := lo
		if d < 0 {
			x = hi
		}
		v := d * x
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return false
		}
		// the bound the true reduced cost picks may be the other one
		// when |d| ≤ dErr: count both.
		xm := math.Abs(x)
		if math.Abs(d) <= dErr {
			if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
				return false
			}
			xm = math.Max(math.Abs(lo), math.Abs(hi))
		}
		lb += v
		errSum += dErr*xm + eps*math.Abs(v) + eps*math.Abs(lb)
		return true
	}
	// y·b: row 0 only (the network rows have b = 0).
	lb = y[0] * float64(s.d)
	errSum = eps * math.Abs(lb)
	s.rowTimesX(y, s.alpha)
	for j := range s.n {
		d := float64(s.price[j]) - s.alpha[j]
		mag := math.Abs(float64(s.price[j])) + math.Abs(y[0])
		for _, e := range s.colRows[j] {
			mag += math.Abs(y[e.r+1] * e.cf)
		}
		dErr := float64(len(s.colRows[j])+4) * eps * mag
		if !term(d, dErr, float64(s.lo[j]), float64(s.hi[j])) {
			return 0, false
		}
	}
	// surplus: column −e0, box [0, ∞): reduced cost y[0].
	if y[0] < 0 {
		return 0, false
	}
	for r := range s.act {
		a := &s.act[r]
		d := y[r+1] // column −e_{r+1}, cost 0
		switch {
		case d > 0 && !a.hasLo, d < 0 && !a.hasHi:
			return 0, false
		case d == 0:
			continue
		}
		if !term(d, eps*math.Abs(d), a.lo, a.hi) {
			return 0, false
		}
	}
	return lb - 2*errSum, true
}
