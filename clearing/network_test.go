package clearing

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// tieWeight is the third objective, Σ x·(bid index+1).
func tieWeight(r *Result) int64 {
	var w int64
	for b, xs := range r.Accepted {
		for _, x := range xs {
			w += x * int64(b+1)
		}
	}
	return w
}

func totalShort(r *Result) int64 {
	var s int64
	for _, v := range r.Shortfall {
		s += v
	}
	return s
}

// checkConstraints fails when r breaks one of the constraints (exact).
func checkConstraints(t *testing.T, cons []Constraint, r *Result) {
	t.Helper()
	for _, c := range cons {
		var v int64
		for _, tm := range c.Terms {
			v += tm.CoeffPPM * r.Accepted[tm.Bid][tm.Interval]
		}
		if v > c.Limit*ppm {
			t.Fatalf("constraint %s violated: %d > %d", c.Name, v, c.Limit*ppm)
		}
	}
}

// randomNetProblem draws a small instance with a network: a few buses,
// rows with sensitivities of both signs (some P only, some with Q),
// bids that inject or withdraw P or Q, some indivisible and some with
// minimum quantities.
func randomNetProblem(rng *rand.Rand, nT, nBids, nBus, nRows int) *Problem {
	p := &Problem{Demand: make([]int64, nT)}
	if rng.IntN(3) == 0 {
		p.MaxPrice = make([]int64, nT)
		for t := range p.MaxPrice {
			p.MaxPrice[t] = 10 + rng.Int64N(20)
		}
	}
	net := &Network{}
	offered := make([]int64, nT)
	for b := range nBids {
		bid := Bid{ID: fmt.Sprintf("b%d", b), Quantity: make([]int64, nT), Price: make([]int64, nT), Divisible: true}
		for t := range nT {
			if rng.IntN(10) < 8 {
				bid.Quantity[t] = 1 + rng.Int64N(40)
				offered[t] += bid.Quantity[t]
			}
			bid.Price[t] = rng.Int64N(30)
		}
		switch rng.IntN(6) {
		case 0:
			bid.Divisible = false
		case 1:
			bid.MinQuantity = 1 + rng.Int64N(15)
			var mx int64
			for _, q := range bid.Quantity {
				mx = max(mx, q)
			}
			bid.MinQuantity = min(bid.MinQuantity, max(mx, 1))
		}
		p.Bids = append(p.Bids, bid)
		sign := int8(1)
		if rng.IntN(3) == 0 {
			sign = -1
		}
		net.Bids = append(net.Bids, NetBid{Bus: rng.IntN(nBus), Reactive: rng.IntN(5) == 0, Sign: sign})
	}
	for t := range nT {
		p.Demand[t] = offered[t] * (20 + rng.Int64N(60)) / 100
	}
	for r := range nRows {
		row := NetRow{Name: fmt.Sprintf("row%d", r), Interval: rng.IntN(nT), Up: Unlimited, Down: Unlimited}
		for b := range nBus {
			if rng.IntN(3) == 0 {
				continue
			}
			row.Buses = append(row.Buses, int32(b))
			row.PPM = append(row.PPM, rng.Int64N(2_000_001)-500_000)
		}
		if rng.IntN(2) == 0 {
			row.QPPM = make([]int64, len(row.Buses))
			for i := range row.QPPM {
				row.QPPM[i] = rng.Int64N(1_000_001) - 500_000
			}
		}
		// Headrooms (micro-units) against coefficients of up to 2
		// micro-units per W and quantities of up to 40 W: some rows bind,
		// some do not, a few (zero headroom) pin their bids.
		row.Up = rng.Int64N(120)
		if rng.IntN(2) == 0 {
			row.Down = rng.Int64N(80)
		}
		net.Rows = append(net.Rows, row)
	}
	p.Network = net
	return p
}

// The fast path and the general engine (the rows expanded into exact
// Constraints, rational LP branch and bound) reach the same optimum —
// shortfall, cost and tie-break weight — and the fast path's clearing
// meets every row exactly. The fast path must not fall back here.
func TestNetworkFastPathMatchesGeneralEngine(t *testing.T) {
	rng := newRand(7)
	n := 200
	if testing.Short() {
		n = 60
	}
	binding := 0
	var tFast, tGen time.Duration
	hard, differs := 0, 0
	for i := range n {
		p := randomNetProblem(rng, 1+rng.IntN(3), 4+rng.IntN(12), 1+rng.IntN(5), rng.IntN(6))
		p.MaxNodes = 20_000
		t0 := time.Now()
		var st netStats
		fast, errF := solveNetworkFast(p, &st)
		if errors.Is(errF, ErrNodeLimit) {
			// Random rows with headrooms of a few W are knapsacks; the
			// integer proof can need many nodes. Counted, not compared.
			hard++
			continue
		}
		tFast += time.Since(t0)
		t0 = time.Now()
		if errF == errNetFallback {
			t.Fatalf("instance %d: fast path fell back\n%s", i, dump(p))
		}
		p.MaxNodes = 5_000
		gen, errG := solveNetworkGeneral(p)
		tGen += time.Since(t0)
		if errors.Is(errG, ErrNodeLimit) {
			hard++
			continue
		}
		if (errF == nil) != (errG == nil) {
			t.Fatalf("instance %d: fast err %v, general err %v\n%s", i, errF, errG, dump(p))
		}
		if errF != nil {
			if !errors.Is(errF, ErrInfeasible) || !errors.Is(errG, ErrInfeasible) {
				t.Fatalf("instance %d: %v / %v", i, errF, errG)
			}
			continue
		}
		cons := NetworkConstraints(p)
		checkConstraints(t, cons, fast)
		// cont ≤ general (integer optimum) ≤ fast (a feasible integer
		// clearing), lexicographically on (shortfall, cost); and the
		// rounding costs at most one W per fractional quantity.
		cont := [2]*big.Rat{&st.cont[0], &st.cont[1]}
		g2 := [2]int64{totalShort(gen), gen.BidCost}
		f2 := [2]int64{totalShort(fast), fast.BidCost}
		if lexRatGreater(cont, g2) {
			t.Fatalf("instance %d: continuous optimum (%s, %s) above the integer optimum %v\n%s", i, cont[0].RatString(), cont[1].RatString(), g2, dump(p))
		}
		if f2[0] < g2[0] || f2[0] == g2[0] && f2[1] < g2[1] {
			t.Fatalf("instance %d: fast clearing %v better than the integer optimum %v?\n%s", i, f2, g2, dump(p))
		}
		var maxP int64
		for _, b := range p.Bids {
			for _, pr := range b.Price {
				maxP = max(maxP, pr)
			}
		}
		ceilS := new(big.Int).Quo(cont[0].Num(), cont[0].Denom()).Int64()
		if !cont[0].IsInt() {
			ceilS++
		}
		if f2[0] > ceilS+int64(st.frac) {
			t.Fatalf("instance %d: rounding lost %d W of coverage with %d fractional quantities\n%s", i, f2[0]-ceilS, st.frac, dump(p))
		}
		if f2[0] == ceilS {
			limit := new(big.Rat).Add(cont[1], tmp2(int64(st.frac)*maxP))
			if tmp2(f2[1]).Cmp(limit) > 0 {
				t.Fatalf("instance %d: rounded cost %d above continuous %s + %d W × %d\n%s", i, f2[1], cont[1].RatString(), st.frac, maxP, dump(p))
			}
		}
		if f2 != g2 {
			differs++
		}
		free := *p
		free.Network = nil
		un, err := Solve(&free)
		if err != nil {
			t.Fatal(err)
		}
		if un.BidCost != fast.BidCost || totalShort(un) != totalShort(fast) {
			binding++
		}
	}
	// The rows must matter in a good share of the instances, or the
	// comparison proves little.
	if hard > n/10 {
		t.Fatalf("%d of %d instances hit the node limit", hard, n)
	}
	if binding < n/5 {
		t.Fatalf("the network changed the clearing in only %d of %d instances", binding, n)
	}
	t.Logf("%d of %d instances: the network changed the optimum; %d hit the node limit; rounded clearing differs from the integer optimum in %d; fast path %v, general engine %v", binding, n, hard, differs, tFast, tGen)
}

// A hand-checked case: two cheap batteries behind one line whose headroom
// is 3 percentage points; 1 %/kW each, so together at most 3 kW, and the
// dearer bid elsewhere covers the rest. A reactive bid relaxes the voltage
// row it shares.
func TestNetworkLineLimitHandChecked(t *testing.T) {
	p := &Problem{
		Demand: []int64{10_000},
		Bids: []Bid{
			{ID: "cheap1", Quantity: []int64{2_000}, Price: []int64{100}, Divisible: true},
			{ID: "cheap2", Quantity: []int64{2_000}, Price: []int64{110}, Divisible: true},
			{ID: "dear", Quantity: []int64{20_000}, Price: []int64{500}, Divisible: true},
		},
		Network: &Network{
			Bids: []NetBid{{Bus: 1, Sign: -1}, {Bus: 1, Sign: -1}, {Bus: 0, Sign: -1}},
			// loading sensitivity −1 %/kW = −1,000 %/MW to injection at bus 1
			// (withdrawal raises it): ppm = 10⁶ × (−1,000).
			Rows: []NetRow{{Name: "line 0-1", Buses: []int32{1}, PPM: []int64{-1_000_000_000}, Up: 3_000_000, Down: Unlimited}},
		},
	}
	r, err := Solve(p)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int64{{2_000}, {1_000}, {7_000}}
	for b := range want {
		if r.Accepted[b][0] != want[b][0] {
			t.Fatalf("accepted %v, want %v", r.Accepted, want)
		}
	}
	if r.BidCost != 2_000*100+1_000*110+7_000*500 {
		t.Fatalf("cost %d", r.BidCost)
	}
}

func TestNetworkBadInput(t *testing.T) {
	base := func() *Problem {
		return &Problem{
			Demand: []int64{10},
			Bids:   []Bid{{ID: "a", Quantity: []int64{5}, Price: []int64{1}, Divisible: true}},
			Network: &Network{
				Bids: []NetBid{{Bus: 0, Sign: 1}},
				Rows: []NetRow{{Name: "l1", Buses: []int32{0}, PPM: []int64{5}, Up: 1, Down: Unlimited}},
			},
		}
	}
	cases := []struct {
		name string
		mod  func(p *Problem)
		want string
	}{
		{"bid count", func(p *Problem) { p.Network.Bids = nil }, "Network.Bids has 0 entries, there are 1 bids"},
		{"sign", func(p *Problem) { p.Network.Bids[0].Sign = 0 }, "bid a: network sign 0"},
		{"bus", func(p *Problem) { p.Network.Bids[0].Bus = -1 }, "bid a: bus index -1"},
		{"interval", func(p *Problem) { p.Network.Rows[0].Interval = 3 }, "network row l1: interval 3 out of range"},
		{"lengths", func(p *Problem) { p.Network.Rows[0].PPM = nil }, "network row l1: 1 buses but 0 active"},
		{"order", func(p *Problem) {
			p.Network.Rows[0].Buses = []int32{2, 1}
			p.Network.Rows[0].PPM = []int64{1, 1}
		}, "network row l1: buses must be non-negative and strictly increasing"},
		{"band", func(p *Problem) { p.Network.Rows[0].Up, p.Network.Rows[0].Down = -5, 2 }, "network row l1: empty band"},
		{"overflow", func(p *Problem) { p.Network.Rows[0].PPM[0] = 1 << 61 }, "network row l1: coefficients × quantities too large"},
	}
	for _, c := range cases {
		p := base()
		c.mod(p)
		_, err := Solve(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	// A limit that nothing can meet: the row needs −10 but no bid can
	// lower it.
	p := base()
	p.Network.Rows[0].Up = -10
	if _, err := Solve(p); !errors.Is(err, ErrInfeasible) {
		t.Fatalf("infeasible row: %v", err)
	}
}

// Linked bids and exclusive groups take the general engine, with the same
// rows as exact Constraints.
func TestNetworkFallbackForLinksAndGroups(t *testing.T) {
	rng := newRand(3)
	for i := range 30 {
		p := randomNetProblem(rng, 2, 6, 3, 3)
		p.MaxPrice = nil
		for b := range 3 {
			for t := range p.Bids[b].Quantity {
				p.Bids[b].Quantity[t] = max(p.Bids[b].Quantity[t], 1)
			}
		}
		p.Bids[0].Linked = true
		p.Bids[1].ExclusiveGroup, p.Bids[2].ExclusiveGroup = "g", "g"
		if _, err := solveNetworkFast(p, nil); err != errNetFallback {
			t.Fatalf("instance %d: fast path taken with links/groups: %v", i, err)
		}
		r, err := Solve(p)
		if errors.Is(err, ErrInfeasible) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checkConstraints(t, NetworkConstraints(p), r)
	}
}

func lexRatGreater(a [2]*big.Rat, b [2]int64) bool {
	for l := range 2 {
		if c := a[l].Cmp(tmp2(b[l])); c != 0 {
			return c > 0
		}
	}
	return false
}
