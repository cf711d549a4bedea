package clearing

import (
	"errors"
	"flag"
	"math/rand/v2"
	"slices"
	"testing"
)

var long = flag.Bool("long", false, "run the long brute-force sweeps")

func resultObj(p *Problem, r *Result) refObj { return objectiveOf(p, r.Accepted) }

// compareWithReference solves n random instances and compares with the
// reference; it returns the number of mismatches (reported through report).
func compareWithReference(solve func(*Problem) (*Result, error), seed uint64, n int, o genOpts, useEnum bool, report func(format string, args ...any)) (mismatches, compared int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for compared < n {
		oo := o
		oo.nT = 1 + rng.IntN(o.nT)
		oo.nBids = 1 + rng.IntN(o.nBids)
		p := randomProblem(rng, oo)
		if useEnum && optionCount(p) > 30_000 || !useEnum && discreteCount(p) > 3_000 {
			continue
		}
		compared++
		r, err := solve(p)
		var want refObj
		var ok bool
		if useEnum {
			want, ok = refEnumerate(p)
		} else {
			want, ok = refDP(p), true
		}
		if !ok {
			if !errors.Is(err, ErrInfeasible) {
				report("instance %d: reference infeasible, Solve: %v", compared, err)
				mismatches++
			}
			continue
		}
		if err != nil {
			report("instance %d: %v\n%s", compared, err, dump(p))
			mismatches++
			continue
		}
		if err := checkResult(p, r); err != nil {
			report("instance %d: infeasible result: %v\n%s", compared, err, dump(p))
			mismatches++
			continue
		}
		if got := resultObj(p, r); got != want {
			report("instance %d: objective %+v, reference %+v\n%s", compared, got, want, dump(p))
			mismatches++
		}
	}
	return mismatches, compared
}

func TestOptimalAgainstEnumeration(t *testing.T) {
	n := 1500
	if *long {
		n = 30000
	}
	bad, _ := compareWithReference(Solve, 1, n, genOpts{nT: 3, nBids: 4, maxQ: 4, maxPrice: 6}, true, t.Errorf)
	if bad > 0 {
		t.Fatalf("%d mismatches", bad)
	}
}

func TestOptimalAgainstDP(t *testing.T) {
	n := 1500
	if *long {
		n = 30000
	}
	bad, _ := compareWithReference(Solve, 2, n, genOpts{nT: 4, nBids: 8, maxQ: 7, maxPrice: 9}, false, t.Errorf)
	if bad > 0 {
		t.Fatalf("%d mismatches", bad)
	}
}

func TestOptimalWithConstraints(t *testing.T) {
	n := 1500
	if *long {
		n = 20000
	}
	bad, _ := compareWithReference(Solve, 3, n, genOpts{nT: 2, nBids: 4, maxQ: 4, maxPrice: 6, nCons: 2}, true, t.Errorf)
	if bad > 0 {
		t.Fatalf("%d mismatches", bad)
	}
}

// clone deep-copies p so that a mutant can change it.
func clone(p *Problem) *Problem {
	q := *p
	q.Bids = make([]Bid, len(p.Bids))
	for i, b := range p.Bids {
		b.Quantity = append([]int64(nil), b.Quantity...)
		b.Price = append([]int64(nil), b.Price...)
		q.Bids[i] = b
	}
	q.Constraints = append([]Constraint(nil), p.Constraints...)
	return &q
}

// TestReferenceCatchesWrongEngines proves the optimality tests can fail:
// each mutant is a plausible but wrong engine (one rule forgotten, the
// tie-break reversed, a heuristic) and the same comparison must reject it.
func TestReferenceCatchesWrongEngines(t *testing.T) {
	mutate := func(f func(q *Problem)) func(*Problem) (*Result, error) {
		return func(p *Problem) (*Result, error) {
			q := clone(p)
			f(q)
			return Solve(q)
		}
	}
	mutants := []struct {
		name  string
		solve func(*Problem) (*Result, error)
		cons  bool
	}{
		{"ignores exclusive groups", mutate(func(q *Problem) {
			for i := range q.Bids {
				q.Bids[i].ExclusiveGroup = ""
			}
		}), false},
		{"ignores links", mutate(func(q *Problem) {
			for i := range q.Bids {
				q.Bids[i].Linked = false
			}
		}), false},
		{"ignores indivisibility and minimum quantities", mutate(func(q *Problem) {
			for i := range q.Bids {
				q.Bids[i].Divisible, q.Bids[i].MinQuantity = true, 0
			}
		}), false},
		{"greedy: only unconditional bids", mutate(func(q *Problem) {
			for i := range q.Bids {
				b := &q.Bids[i]
				if !b.Divisible || b.MinQuantity > 1 || b.Linked || b.ExclusiveGroup != "" {
					clear(b.Quantity)
				}
			}
		}), false},
		{"ignores the price cap", mutate(func(q *Problem) { q.MaxPrice = nil }), false},
		{"tie-break reversed", func(p *Problem) (*Result, error) {
			q := clone(p)
			slices.Reverse(q.Bids)
			r, err := Solve(q)
			if err == nil {
				slices.Reverse(r.Accepted)
				slices.Reverse(r.Reasons)
			}
			return r, err
		}, false},
		{"linked quantities rounded up", func(p *Problem) (*Result, error) {
			r, err := Solve(p)
			if err != nil {
				return r, err
			}
			for b, bid := range p.Bids {
				var K int64
				for _, q := range bid.Quantity {
					K = max(K, q)
				}
				for t, q := range bid.Quantity {
					if bid.Linked && r.Accepted[b][t] > 0 && r.Accepted[b][t]*K < q*r.Accepted[b][slices.Index(bid.Quantity, K)] {
						r.Accepted[b][t]++
					}
				}
			}
			return r, nil
		}, false},
		{"ignores constraints", mutate(func(q *Problem) { q.Constraints = nil }), true},
	}
	for _, mu := range mutants {
		t.Run(mu.name, func(t *testing.T) {
			o := genOpts{nT: 4, nBids: 8, maxQ: 7, maxPrice: 9}
			if mu.cons {
				o = genOpts{nT: 2, nBids: 4, maxQ: 4, maxPrice: 6, nCons: 2}
			}
			bad, n := compareWithReference(mu.solve, 99, 400, o, mu.cons, func(string, ...any) {})
			if bad == 0 {
				t.Fatalf("the reference comparison accepted a wrong engine on all %d instances", n)
			}
			t.Logf("caught on %d of %d instances", bad, n)
		})
	}
}
