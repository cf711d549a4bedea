package clearing

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// div, indiv and friends build one-interval-per-value bids tersely.
func bid(id string, q, p []int64) Bid {
	return Bid{ID: id, Quantity: q, Price: p, Divisible: true}
}

func v(x ...int64) []int64 { return x }

func TestSolveCases(t *testing.T) {
	indiv := func(b Bid) Bid { b.Divisible = false; return b }
	minQ := func(b Bid, m int64) Bid { b.MinQuantity = m; return b }
	linked := func(b Bid) Bid { b.Linked = true; return b }
	group := func(b Bid, g string) Bid { b.ExclusiveGroup = g; return b }
	cases := []struct {
		name      string
		p         Problem
		accepted  [][]int64
		shortfall []int64
		cost      int64
		payment   int64
		reasons   []string // "" = accepted; otherwise a substring of the reason
	}{
		{
			name:     "merit order fills cheapest first, last one partially",
			p:        Problem{Demand: v(150), Bids: []Bid{bid("B", v(100), v(20)), bid("A", v(100), v(10))}},
			accepted: [][]int64{{50}, {100}}, shortfall: v(0), cost: 50*20 + 100*10, payment: 2000,
			reasons: []string{"", ""},
		},
		{
			name:     "uniform pricing pays every W the highest accepted price",
			p:        Problem{Demand: v(150), Pricing: Uniform, Bids: []Bid{bid("B", v(100), v(20)), bid("A", v(100), v(10))}},
			accepted: [][]int64{{50}, {100}}, shortfall: v(0), cost: 2000, payment: 150 * 20,
			reasons: []string{"", ""},
		},
		{
			name:     "price above the cap is never selected, shortfall instead",
			p:        Problem{Demand: v(100, 100), MaxPrice: v(15, 0), Bids: []Bid{bid("A", v(100, 100), v(20, 20))}},
			accepted: [][]int64{{0, 100}}, shortfall: v(100, 0), cost: 2000, payment: 2000,
			reasons: []string{""},
		},
		{
			name:     "linked bid above the cap in one interval is unusable",
			p:        Problem{Demand: v(100, 100), MaxPrice: v(15, 0), Bids: []Bid{linked(bid("A", v(100, 100), v(20, 10)))}},
			accepted: [][]int64{{0, 0}}, shortfall: v(100, 100), cost: 0, payment: 0,
			reasons: []string{ReasonLinkedPriceCap},
		},
		{
			name:     "indivisible too big: a dearer divisible bid is cheaper overall",
			p:        Problem{Demand: v(100), Bids: []Bid{indiv(bid("A", v(150), v(10))), bid("B", v(100), v(12))}},
			accepted: [][]int64{{0}, {100}}, shortfall: v(0), cost: 1200, payment: 1200,
			reasons: []string{ReasonIndivisible, ""},
		},
		{
			name:     "indivisible with over-coverage when it is cheapest",
			p:        Problem{Demand: v(100), Bids: []Bid{indiv(bid("A", v(120), v(5))), bid("B", v(100), v(10))}},
			accepted: [][]int64{{120}, {0}}, shortfall: v(0), cost: 600, payment: 600,
			reasons: []string{"", ReasonNotNeeded},
		},
		{
			name:     "minimum quantity accepted at its minimum",
			p:        Problem{Demand: v(30), Bids: []Bid{minQ(bid("A", v(100), v(5)), 50), bid("B", v(100), v(10))}},
			accepted: [][]int64{{50}, {0}}, shortfall: v(0), cost: 250, payment: 250,
			reasons: []string{"", ReasonNotNeeded},
		},
		{
			name:     "minimum quantity too costly",
			p:        Problem{Demand: v(30), Bids: []Bid{minQ(bid("A", v(100), v(5)), 50), bid("B", v(100), v(7))}},
			accepted: [][]int64{{0}, {30}}, shortfall: v(0), cost: 210, payment: 210,
			reasons: []string{ReasonMinQuantity, ""},
		},
		{
			name: "minimum above an interval's quantity means all of that interval",
			p:    Problem{Demand: v(3, 30), Bids: []Bid{minQ(bid("A", v(4, 100), v(1, 1)), 20)}},
			// interval 0: x ∈ {0, 4}; interval 1: x ∈ {0} ∪ [20, 100]
			accepted: [][]int64{{4, 30}}, shortfall: v(0, 0), cost: 34, payment: 34,
			reasons: []string{""},
		},
		{
			name: "exclusive group: one bid only, the cheaper combination",
			p: Problem{Demand: v(150), Bids: []Bid{
				group(bid("A", v(100), v(10)), "g"), group(bid("B", v(100), v(11)), "g"), bid("C", v(100), v(30))}},
			accepted: [][]int64{{100}, {0}, {50}}, shortfall: v(0), cost: 1000 + 1500, payment: 2500,
			reasons: []string{"", "excluded: bid A of exclusive group g", ""},
		},
		{
			name: "exclusive group across intervals",
			p: Problem{Demand: v(100, 100), Bids: []Bid{
				group(bid("A", v(100, 0), v(1, 0)), "g"), group(bid("B", v(0, 100), v(0, 2)), "g"), bid("C", v(100, 100), v(50, 50))}},
			// A+C(t1) = 100 + 5000; B+C(t0) = 200 + 5000: A wins by 100
			accepted: [][]int64{{100, 0}, {0, 0}, {0, 100}}, shortfall: v(0, 0), cost: 5100, payment: 5100,
			reasons: []string{"", "excluded: bid A", ""},
		},
		{
			name: "linked block accepted whole, over-covering one interval",
			p: Problem{Demand: v(100, 10), Bids: []Bid{
				indiv(linked(bid("A", v(100, 100), v(5, 5)))), bid("B", v(100, 100), v(20, 20))}},
			accepted: [][]int64{{100, 100}, {0, 0}}, shortfall: v(0, 0), cost: 1000, payment: 1000,
			reasons: []string{"", ReasonNotNeeded},
		},
		{
			name: "linked block rejected: too dear as a whole",
			p: Problem{Demand: v(100, 100), Bids: []Bid{
				indiv(linked(bid("A", v(100, 100), v(5, 40)))), bid("B", v(100, 100), v(20, 20))}},
			accepted: [][]int64{{0, 0}, {100, 100}}, shortfall: v(0, 0), cost: 4000, payment: 4000,
			reasons: []string{ReasonLinked, ""},
		},
		{
			name: "linked divisible: one ratio, rounded down per interval",
			p:    Problem{Demand: v(5, 0), Bids: []Bid{linked(bid("A", v(10, 7), v(1, 1)))}},
			// k = 5 of 10 → interval 1 gets ⌊5·7/10⌋ = 3
			accepted: [][]int64{{5, 3}}, shortfall: v(0, 0), cost: 8, payment: 8,
			reasons: []string{""},
		},
		{
			name: "linked divisible with a minimum ratio",
			p:    Problem{Demand: v(2, 0), Bids: []Bid{minQ(linked(bid("A", v(10, 10), v(1, 1))), 4), bid("B", v(10, 10), v(3, 3))}},
			// A at k=4 costs 8; B alone costs 6
			accepted: [][]int64{{0, 0}, {2, 0}}, shortfall: v(0, 0), cost: 6, payment: 6,
			reasons: []string{ReasonLinked, ""},
		},
		{
			name:     "shortfall is minimised before cost",
			p:        Problem{Demand: v(100), Bids: []Bid{indiv(bid("A", v(100), v(1000))), bid("B", v(60), v(1))}},
			accepted: [][]int64{{100}, {0}}, shortfall: v(0), cost: 100000, payment: 100000,
			reasons: []string{"", ReasonNotNeeded},
		},
		{
			name:     "not enough offered: shortfall reported",
			p:        Problem{Demand: v(300), Bids: []Bid{bid("A", v(100), v(1))}},
			accepted: [][]int64{{100}}, shortfall: v(200), cost: 100, payment: 100,
			reasons: []string{""},
		},
		{
			name:     "tie-break: equal prices go to the earlier bid",
			p:        Problem{Demand: v(100), Bids: []Bid{bid("first", v(100), v(10)), bid("second", v(100), v(10))}},
			accepted: [][]int64{{100}, {0}}, shortfall: v(0), cost: 1000, payment: 1000,
			reasons: []string{"", ReasonNotNeeded},
		},
		{
			name: "tie-break: equal cost, the earlier bid keeps more volume",
			p: Problem{Demand: v(100), Bids: []Bid{
				indiv(bid("big-late-first", v(60), v(10))), bid("x", v(100), v(10))}},
			// both 60 (indiv) + 40 and 100 cost 1000; more W on bid 0 wins
			accepted: [][]int64{{60}, {40}}, shortfall: v(0), cost: 1000, payment: 1000,
			reasons: []string{"", ""},
		},
		{
			name:     "nothing offered",
			p:        Problem{Demand: v(10), Bids: []Bid{bid("A", v(0), v(5))}},
			accepted: [][]int64{{0}}, shortfall: v(10), reasons: []string{ReasonNothingOffered},
		},
		{
			name: "grid constraint limits a cheap bid",
			p: Problem{Demand: v(100), Bids: []Bid{bid("A", v(100), v(10)), bid("B", v(100), v(20))},
				Constraints: []Constraint{{Name: "line", Terms: []Term{{Bid: 0, Interval: 0, CoeffPPM: 1_000_000}}, Limit: 40}}},
			accepted: [][]int64{{40}, {60}}, shortfall: v(0), cost: 400 + 1200, payment: 1600,
			reasons: []string{"", ""},
		},
		{
			name: "grid constraint with a fractional sensitivity",
			p: Problem{Demand: v(100), Bids: []Bid{bid("A", v(100), v(10)), bid("B", v(100), v(20))},
				Constraints: []Constraint{{Name: "line", Terms: []Term{{Bid: 0, Interval: 0, CoeffPPM: 300_000}}, Limit: 25}}},
			// 0.3·x ≤ 25 → x ≤ 83.3 → 83 W (integer)
			accepted: [][]int64{{83}, {17}}, shortfall: v(0), cost: 830 + 340, payment: 1170,
			reasons: []string{"", ""},
		},
		{
			name: "grid constraint on an indivisible bid forces the alternative",
			p: Problem{Demand: v(100), Bids: []Bid{indiv(bid("A", v(100), v(10))), bid("B", v(100), v(20))},
				Constraints: []Constraint{{Name: "line", Terms: []Term{{Bid: 0, Interval: 0, CoeffPPM: 1_000_000}}, Limit: 99}}},
			accepted: [][]int64{{0}, {100}}, shortfall: v(0), cost: 2000, payment: 2000,
			reasons: []string{ReasonIndivisible, ""},
		},
		{
			name: "grid constraint with a negative sensitivity needs a counter-flow",
			p: Problem{Demand: v(10, 0), Bids: []Bid{bid("A", v(10, 0), v(1, 0)), bid("B", v(0, 10), v(0, 5))},
				Constraints: []Constraint{{Name: "n-1", Terms: []Term{{Bid: 0, Interval: 0, CoeffPPM: 1_000_000}, {Bid: 1, Interval: 1, CoeffPPM: -2_000_000}}, Limit: 0}}},
			// x_A ≤ 2·x_B: covering 10 needs x_B ≥ 5
			accepted: [][]int64{{10, 0}, {0, 5}}, shortfall: v(0, 0), cost: 10 + 25, payment: 35,
			reasons: []string{"", ""},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Solve(&tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkResult(&tc.p, r); err != nil {
				t.Fatalf("infeasible: %v", err)
			}
			if !reflect.DeepEqual(r.Accepted, tc.accepted) {
				t.Errorf("accepted %v, want %v", r.Accepted, tc.accepted)
			}
			if !reflect.DeepEqual(r.Shortfall, tc.shortfall) {
				t.Errorf("shortfall %v, want %v", r.Shortfall, tc.shortfall)
			}
			if r.BidCost != tc.cost || r.Payment != tc.payment {
				t.Errorf("cost %d payment %d, want %d %d", r.BidCost, r.Payment, tc.cost, tc.payment)
			}
			for b, want := range tc.reasons {
				if want == "" && r.Reasons[b] != "" || !strings.Contains(r.Reasons[b], want) {
					t.Errorf("bid %d reason %q, want %q", b, r.Reasons[b], want)
				}
			}
		})
	}
}

func TestSolveErrors(t *testing.T) {
	ok := func() Problem {
		return Problem{Demand: v(10, 10), Bids: []Bid{bid("A", v(5, 5), v(1, 1))}}
	}
	cases := []struct {
		name string
		mod  func(p *Problem)
		want string
	}{
		{"no intervals", func(p *Problem) { p.Demand = nil; p.Bids = nil }, "no intervals"},
		{"max price length", func(p *Problem) { p.MaxPrice = v(1) }, "MaxPrice has 1"},
		{"negative demand", func(p *Problem) { p.Demand[1] = -1 }, "negative demand"},
		{"negative max price", func(p *Problem) { p.MaxPrice = v(0, -3) }, "negative maximum price"},
		{"quantity length", func(p *Problem) { p.Bids[0].Quantity = v(1) }, "1 quantities"},
		{"price length", func(p *Problem) { p.Bids[0].Price = v(1, 2, 3) }, "3 prices"},
		{"negative quantity", func(p *Problem) { p.Bids[0].Quantity[0] = -5 }, "negative quantity"},
		{"negative price", func(p *Problem) { p.Bids[0].Price[1] = -5 }, "negative price"},
		{"negative minimum", func(p *Problem) { p.Bids[0].MinQuantity = -1 }, "negative minimum"},
		{"minimum above quantity", func(p *Problem) { p.Bids[0].MinQuantity = 6 }, "exceeds its largest"},
		{"pricing", func(p *Problem) { p.Pricing = 7 }, "unknown pricing"},
		{"constraint bid", func(p *Problem) {
			p.Constraints = []Constraint{{Name: "x", Terms: []Term{{Bid: 3}}}}
		}, "unknown bid index 3"},
		{"constraint interval", func(p *Problem) {
			p.Constraints = []Constraint{{Name: "x", Terms: []Term{{Bid: 0, Interval: 2}}}}
		}, "unknown interval 2"},
		{"overflowing cost", func(p *Problem) { p.Bids[0].Price[0] = 1 << 60; p.Bids[0].Quantity[0] = 1 << 10 }, "too large"},
		{"overflowing volume", func(p *Problem) { p.Bids[0].Quantity[0] = 1 << 62 }, "too large"},
		{"overflowing limit", func(p *Problem) {
			p.Constraints = []Constraint{{Name: "x", Limit: 1 << 60}}
		}, "limit too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ok()
			tc.mod(&p)
			_, err := Solve(&p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Solve(nil); err == nil {
		t.Fatal("nil problem accepted")
	}
	p := Problem{Demand: v(10), Bids: []Bid{bid("A", v(10), v(1))},
		Constraints: []Constraint{{Name: "impossible", Terms: []Term{{CoeffPPM: 1_000_000}}, Limit: -1}}}
	if _, err := Solve(&p); !errors.Is(err, ErrInfeasible) {
		t.Fatalf("infeasible constraints: %v", err)
	}
}

// TestDeterministic: the same input gives the same output, repeatedly.
func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for range 200 {
		p := randomProblem(rng, genOpts{nT: 4, nBids: 10, maxQ: 9, maxPrice: 3})
		a, errA := Solve(p)
		b, errB := Solve(clone(p))
		if (errA == nil) != (errB == nil) || errA == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("two solves differ:\n%+v\n%+v\n%s", a, b, dump(p))
		}
	}
}

// TestNodeLimit: running out of nodes is an error, never a quiet result.
func TestNodeLimit(t *testing.T) {
	p := benchProblem(300, 1)
	p.MaxNodes = 3
	if _, err := Solve(p); !errors.Is(err, ErrNodeLimit) {
		t.Fatalf("err = %v, want ErrNodeLimit", err)
	}
}

// TestAgreesWithLPPath: a constraint that never binds must not change the
// answer: it sends the same instance through the exact LP relaxation
// instead of the merit order, so the two relaxations check each other.
func TestAgreesWithLPPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for i := range 300 {
		p := randomProblem(rng, genOpts{nT: 3, nBids: 6, maxQ: 6, maxPrice: 5})
		a, err := Solve(p)
		if err != nil {
			t.Fatal(err)
		}
		q := clone(p)
		for t := range q.Demand {
			q.Constraints = append(q.Constraints, Constraint{Name: "loose", Terms: []Term{{Bid: 0, Interval: t, CoeffPPM: 1}}, Limit: 1 << 20})
		}
		b, err := Solve(q)
		if err != nil {
			t.Fatal(err)
		}
		if objectiveOf(p, a.Accepted) != objectiveOf(p, b.Accepted) {
			t.Fatalf("instance %d: merit order %+v, LP %+v\n%s", i, objectiveOf(p, a.Accepted), objectiveOf(p, b.Accepted), dump(p))
		}
	}
}
