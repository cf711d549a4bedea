package clearing

// An independent reference solver and an independent feasibility checker.
// Neither shares code with the engine: they re-read the rules straight from
// the Problem, use math/big where the engine uses 128-bit tricks, and solve
// by enumeration and dynamic programming instead of merit orders and
// branch and bound.

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
)

// refObj is the lexicographic objective: total shortfall, cost, tie-break
// weight Σ x·(bid index+1).
type refObj struct{ s, c, w int64 }

func (a refObj) less(b refObj) bool {
	if a.s != b.s {
		return a.s < b.s
	}
	if a.c != b.c {
		return a.c < b.c
	}
	return a.w < b.w
}

func objectiveOf(p *Problem, acc [][]int64) refObj {
	var o refObj
	for t, d := range p.Demand {
		var cov int64
		for b := range p.Bids {
			cov += acc[b][t]
		}
		o.s += max(0, d-cov)
	}
	for b := range p.Bids {
		for t, x := range acc[b] {
			o.c += x * p.Bids[b].Price[t]
			o.w += x * int64(b+1)
		}
	}
	return o
}

func capped(p *Problem, b, t int) bool {
	return len(p.MaxPrice) > 0 && p.MaxPrice[t] > 0 && p.Bids[b].Price[t] > p.MaxPrice[t]
}

// floorRatio is ⌊k·q/K⌋ with big integers.
func floorRatio(k, q, K int64) int64 {
	n := new(big.Int).Mul(big.NewInt(k), big.NewInt(q))
	return n.Quo(n, big.NewInt(K)).Int64()
}

// bidOptions lists every acceptance vector the rules allow for bid b on its
// own (ignoring groups, coverage and constraints).
func bidOptions(p *Problem, b int) [][]int64 {
	bid := &p.Bids[b]
	nT := len(p.Demand)
	var K int64
	anyCap := false
	for t, q := range bid.Quantity {
		if q > 0 {
			K = max(K, q)
			anyCap = anyCap || capped(p, b, t)
		}
	}
	if K == 0 || (bid.Linked && anyCap) {
		return [][]int64{make([]int64, nT)}
	}
	if bid.Linked {
		var out [][]int64
		for k := int64(0); k <= K; k++ {
			if k > 0 && (!bid.Divisible && k != K || bid.Divisible && k < bid.MinQuantity) {
				continue
			}
			v := make([]int64, nT)
			for t, q := range bid.Quantity {
				v[t] = floorRatio(k, q, K)
			}
			out = append(out, v)
		}
		return out
	}
	per := make([][]int64, nT)
	for t, q := range bid.Quantity {
		per[t] = []int64{0}
		if q == 0 || capped(p, b, t) {
			continue
		}
		if !bid.Divisible {
			per[t] = append(per[t], q)
			continue
		}
		for x := max(1, min(bid.MinQuantity, q)); x <= q; x++ {
			per[t] = append(per[t], x)
		}
	}
	out := [][]int64{{}}
	for t := range nT {
		var next [][]int64
		for _, pre := range out {
			for _, x := range per[t] {
				v := append(append([]int64(nil), pre...), x)
				next = append(next, v)
			}
		}
		out = next
	}
	return out
}

func constraintsHold(p *Problem, acc [][]int64) bool {
	for _, c := range p.Constraints {
		sum := new(big.Int)
		for _, tm := range c.Terms {
			sum.Add(sum, new(big.Int).Mul(big.NewInt(tm.CoeffPPM), big.NewInt(acc[tm.Bid][tm.Interval])))
		}
		if sum.Cmp(new(big.Int).Mul(big.NewInt(c.Limit), big.NewInt(1_000_000))) > 0 {
			return false
		}
	}
	return true
}

// refEnumerate is the plainest possible solver: every combination of every
// bid's allowed acceptance vectors. Only for tiny instances. ok is false
// when no combination satisfies the constraints.
func refEnumerate(p *Problem) (best refObj, ok bool) {
	opts := make([][][]int64, len(p.Bids))
	for b := range p.Bids {
		opts[b] = bidOptions(p, b)
	}
	acc := make([][]int64, len(p.Bids))
	var rec func(b int)
	rec = func(b int) {
		if b == len(p.Bids) {
			used := map[string]bool{}
			for i := range p.Bids {
				if g := p.Bids[i].ExclusiveGroup; g != "" && anyPositive(acc[i]) {
					if used[g] {
						return
					}
					used[g] = true
				}
			}
			if !constraintsHold(p, acc) {
				return
			}
			o := objectiveOf(p, acc)
			if !ok || o.less(best) {
				best, ok = o, true
			}
			return
		}
		for _, v := range opts[b] {
			acc[b] = v
			rec(b + 1)
		}
	}
	rec(0)
	return best, ok
}

func optionCount(p *Problem) float64 {
	n := 1.0
	for b := range p.Bids {
		n *= float64(len(bidOptions(p, b)))
	}
	return n
}

// refDP handles instances without constraints that are too large for
// refEnumerate: it enumerates the discrete choices (the k of every linked
// bid, on/off of every indivisible or minimum-quantity interval, the one
// bid of each exclusive group that may be used) and solves what remains —
// independent intervals with integer ranges — by a dynamic program over
// the covered quantity. The DP is exact for integer quantities and does
// not assume that a merit order is optimal.
func refDP(p *Problem) refObj {
	nT := len(p.Demand)
	type rng struct{ lo, hi int64 }
	// choice per bid: for linked bids the k index into options; for others
	// a bitmask of "on" intervals (only meaningful for gap intervals).
	type gapBid struct {
		linked bool
		opts   [][]int64
		gapT   []int // intervals with a gap (non-linked)
	}
	gb := make([]gapBid, len(p.Bids))
	for b := range p.Bids {
		bid := &p.Bids[b]
		if bid.Linked {
			gb[b] = gapBid{linked: true, opts: bidOptions(p, b)}
			continue
		}
		for t, q := range bid.Quantity {
			if q > 0 && !capped(p, b, t) && (!bid.Divisible || min(bid.MinQuantity, q) > 1) {
				gb[b].gapT = append(gb[b].gapT, t)
			}
		}
	}
	groups := map[string][]int{}
	var gnames []string
	for b := range p.Bids {
		if g := p.Bids[b].ExclusiveGroup; g != "" {
			if _, ok := groups[g]; !ok {
				gnames = append(gnames, g)
			}
			groups[g] = append(groups[g], b)
		}
	}
	allowed := make([]bool, len(p.Bids))
	ranges := make([][]rng, len(p.Bids))
	for b := range ranges {
		ranges[b] = make([]rng, nT)
	}
	memo := map[string]refObj{}
	intervalBest := func(t int) refObj {
		var key strings.Builder
		fmt.Fprintf(&key, "%d:", t)
		for b := range p.Bids {
			fmt.Fprintf(&key, "%d-%d,", ranges[b][t].lo, ranges[b][t].hi)
		}
		if v, ok := memo[key.String()]; ok {
			return v
		}
		D := p.Demand[t]
		type cw struct {
			c, w int64
			ok   bool
		}
		dp := make([]cw, D+1)
		dp[0] = cw{ok: true}
		for b := range p.Bids {
			r := ranges[b][t]
			if r.hi == 0 {
				continue
			}
			next := make([]cw, D+1)
			for cov, cur := range dp {
				if !cur.ok {
					continue
				}
				for x := r.lo; x <= r.hi; x++ {
					nc := min(D, int64(cov)+x)
					cand := cw{cur.c + x*p.Bids[b].Price[t], cur.w + x*int64(b+1), true}
					o := next[nc]
					if !o.ok || cand.c < o.c || cand.c == o.c && cand.w < o.w {
						next[nc] = cand
					}
				}
			}
			dp = next
		}
		var best refObj
		found := false
		for cov := D; cov >= 0; cov-- {
			if dp[cov].ok {
				best = refObj{D - cov, dp[cov].c, dp[cov].w}
				found = true
				break
			}
		}
		if !found {
			panic("refDP: no coverage state")
		}
		memo[key.String()] = best
		return best
	}
	var best refObj
	have := false
	evaluate := func() {
		var tot refObj
		for t := range nT {
			o := intervalBest(t)
			tot = refObj{tot.s + o.s, tot.c + o.c, tot.w + o.w}
		}
		if !have || tot.less(best) {
			best, have = tot, true
		}
	}
	var recBid func(b int)
	recBid = func(b int) {
		if b == len(p.Bids) {
			evaluate()
			return
		}
		bid := &p.Bids[b]
		if !allowed[b] {
			for t := range nT {
				ranges[b][t] = rng{}
			}
			recBid(b + 1)
			return
		}
		if gb[b].linked {
			for _, v := range gb[b].opts {
				for t := range nT {
					ranges[b][t] = rng{v[t], v[t]}
				}
				recBid(b + 1)
			}
			return
		}
		gapT := gb[b].gapT
		for mask := 0; mask < 1<<len(gapT); mask++ {
			for t, q := range bid.Quantity {
				switch {
				case q == 0 || capped(p, b, t):
					ranges[b][t] = rng{}
				default:
					ranges[b][t] = rng{0, q}
				}
			}
			for i, t := range gapT {
				q := bid.Quantity[t]
				switch {
				case mask&(1<<i) == 0:
					ranges[b][t] = rng{}
				case !bid.Divisible:
					ranges[b][t] = rng{q, q}
				default:
					ranges[b][t] = rng{min(bid.MinQuantity, q), q}
				}
			}
			recBid(b + 1)
		}
	}
	var recGroup func(i int)
	recGroup = func(i int) {
		if i == len(gnames) {
			recBid(0)
			return
		}
		members := groups[gnames[i]]
		for _, b := range members {
			allowed[b] = false
		}
		recGroup(i + 1) // none of the group
		for _, b := range members {
			allowed[b] = true
			recGroup(i + 1)
			allowed[b] = false
		}
	}
	for b := range p.Bids {
		allowed[b] = p.Bids[b].ExclusiveGroup == ""
	}
	recGroup(0)
	return best
}

// discreteCount is the number of leaves refDP enumerates.
func discreteCount(p *Problem) float64 {
	n := 1.0
	groups := map[string]int{}
	for b := range p.Bids {
		bid := &p.Bids[b]
		if g := bid.ExclusiveGroup; g != "" {
			groups[g]++
		}
		if bid.Linked {
			n *= float64(len(bidOptions(p, b)))
			continue
		}
		for t, q := range bid.Quantity {
			if q > 0 && !capped(p, b, t) && (!bid.Divisible || min(bid.MinQuantity, q) > 1) {
				n *= 2
			}
		}
	}
	for _, c := range groups {
		n *= float64(c + 1)
	}
	return n
}

// checkResult verifies every rule of the clearing on r, independently of
// the engine, and that r's totals are what its quantities imply.
func checkResult(p *Problem, r *Result) error {
	nT := len(p.Demand)
	if len(r.Accepted) != len(p.Bids) || len(r.Shortfall) != nT || len(r.ClearingPrice) != nT || len(r.Reasons) != len(p.Bids) {
		return fmt.Errorf("result shape: %d accepted, %d shortfall, %d prices, %d reasons", len(r.Accepted), len(r.Shortfall), len(r.ClearingPrice), len(r.Reasons))
	}
	group := map[string]int{}
	for b := range p.Bids {
		bid := &p.Bids[b]
		x := r.Accepted[b]
		if len(x) != nT {
			return fmt.Errorf("bid %d: %d accepted intervals", b, len(x))
		}
		var K int64
		anyCap := false
		for t, q := range bid.Quantity {
			if x[t] < 0 || x[t] > q {
				return fmt.Errorf("bid %d interval %d: accepted %d outside [0, %d]", b, t, x[t], q)
			}
			if x[t] > 0 && capped(p, b, t) {
				return fmt.Errorf("bid %d interval %d: accepted above the maximum price", b, t)
			}
			if q > 0 {
				K = max(K, q)
				anyCap = anyCap || capped(p, b, t)
			}
		}
		used := anyPositive(x)
		if used != (r.Reasons[b] == "") {
			return fmt.Errorf("bid %d: accepted=%v but reason %q", b, used, r.Reasons[b])
		}
		if !used {
			continue
		}
		if g := bid.ExclusiveGroup; g != "" {
			if o, ok := group[g]; ok {
				return fmt.Errorf("bids %d and %d of exclusive group %s both accepted", o, b, g)
			}
			group[g] = b
		}
		if bid.Linked {
			if anyCap {
				return fmt.Errorf("linked bid %d accepted although capped in an interval", b)
			}
			var k int64 = -1
			for t, q := range bid.Quantity {
				if q == K {
					k = x[t]
					break
				}
			}
			if !bid.Divisible && k != K || bid.Divisible && k < bid.MinQuantity {
				return fmt.Errorf("linked bid %d: ratio %d/%d not allowed", b, k, K)
			}
			for t, q := range bid.Quantity {
				if x[t] != floorRatio(k, q, K) {
					return fmt.Errorf("linked bid %d interval %d: %d, want ⌊%d·%d/%d⌋", b, t, x[t], k, q, K)
				}
			}
			continue
		}
		for t, q := range bid.Quantity {
			if x[t] == 0 {
				continue
			}
			if !bid.Divisible && x[t] != q {
				return fmt.Errorf("indivisible bid %d interval %d: %d of %d", b, t, x[t], q)
			}
			if bid.Divisible && x[t] < min(bid.MinQuantity, q) {
				return fmt.Errorf("bid %d interval %d: %d below minimum %d", b, t, x[t], bid.MinQuantity)
			}
		}
	}
	if !constraintsHold(p, r.Accepted) {
		return fmt.Errorf("a constraint is violated")
	}
	var cost, pay int64
	for t, d := range p.Demand {
		var cov, cp int64
		for b := range p.Bids {
			if x := r.Accepted[b][t]; x > 0 {
				cov += x
				cost += x * p.Bids[b].Price[t]
				cp = max(cp, p.Bids[b].Price[t])
			}
		}
		if r.Shortfall[t] != max(0, d-cov) {
			return fmt.Errorf("interval %d: shortfall %d, want %d", t, r.Shortfall[t], max(0, d-cov))
		}
		if r.ClearingPrice[t] != cp {
			return fmt.Errorf("interval %d: clearing price %d, want %d", t, r.ClearingPrice[t], cp)
		}
		pay += cov * cp
	}
	if r.BidCost != cost {
		return fmt.Errorf("bid cost %d, want %d", r.BidCost, cost)
	}
	if p.Pricing == PayAsBid {
		pay = cost
	}
	if r.Payment != pay {
		return fmt.Errorf("payment %d, want %d", r.Payment, pay)
	}
	return nil
}

type genOpts struct {
	nT, nBids  int
	maxQ       int64
	maxPrice   int64
	nCons      int
	noFeatures bool
}

// randomProblem draws a small instance mixing every feature. Prices are
// drawn from a small range so that ties (and the tie-break) are common.
func randomProblem(rng *rand.Rand, o genOpts) *Problem {
	p := &Problem{Demand: make([]int64, o.nT)}
	if rng.IntN(3) == 0 {
		p.MaxPrice = make([]int64, o.nT)
		for t := range p.MaxPrice {
			if rng.IntN(2) == 0 {
				p.MaxPrice[t] = 1 + rng.Int64N(o.maxPrice)
			}
		}
	}
	if rng.IntN(3) == 0 {
		p.Pricing = Uniform
	}
	groups := []string{"g1", "g2"}
	offered := make([]int64, o.nT)
	for b := range o.nBids {
		bid := Bid{ID: fmt.Sprintf("b%d", b), Quantity: make([]int64, o.nT), Price: make([]int64, o.nT), Divisible: true}
		var maxQ int64
		for t := range o.nT {
			if rng.IntN(10) < 7 {
				bid.Quantity[t] = 1 + rng.Int64N(o.maxQ)
				maxQ = max(maxQ, bid.Quantity[t])
				offered[t] += bid.Quantity[t]
			}
			bid.Price[t] = rng.Int64N(o.maxPrice + 1)
		}
		if !o.noFeatures {
			switch rng.IntN(3) {
			case 0:
				bid.Divisible = false
			case 1:
				if maxQ > 0 {
					bid.MinQuantity = 1 + rng.Int64N(maxQ)
				}
			}
			bid.Linked = rng.IntN(3) == 0
			if rng.IntN(3) == 0 {
				bid.ExclusiveGroup = groups[rng.IntN(len(groups))]
			}
		}
		p.Bids = append(p.Bids, bid)
	}
	for t := range o.nT {
		p.Demand[t] = rng.Int64N(offered[t]*6/5 + 2)
	}
	coeffs := []int64{1_000_000, 500_000, 333_333, -1_000_000, 250_000, 2_000_000, 700_001}
	for range o.nCons {
		c := Constraint{Name: "c"}
		for range 1 + rng.IntN(4) {
			c.Terms = append(c.Terms, Term{Bid: rng.IntN(o.nBids), Interval: rng.IntN(o.nT), CoeffPPM: coeffs[rng.IntN(len(coeffs))]})
		}
		c.Limit = rng.Int64N(int64(o.maxQ)*2) - 1
		p.Constraints = append(p.Constraints, c)
	}
	return p
}

// dump prints p as Go-ish text for a failure message.
func dump(p *Problem) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Demand=%v MaxPrice=%v Pricing=%v\n", p.Demand, p.MaxPrice, p.Pricing)
	for i, bid := range p.Bids {
		fmt.Fprintf(&b, "  bid %d q=%v p=%v div=%v min=%d linked=%v group=%q\n", i, bid.Quantity, bid.Price, bid.Divisible, bid.MinQuantity, bid.Linked, bid.ExclusiveGroup)
	}
	for _, c := range p.Constraints {
		fmt.Fprintf(&b, "  constraint %+v\n", c)
	}
	return b.String()
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
