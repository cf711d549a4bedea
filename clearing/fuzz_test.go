package clearing

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// FuzzSolve: any problem the fuzzer makes up is either refused with an
// error or solved to a result that passes the independent checker; Solve
// never panics.
func FuzzSolve(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(5), uint8(9), uint8(0))
	f.Add(uint64(2), uint8(2), uint8(4), uint8(4), uint8(2))
	f.Add(uint64(3), uint8(8), uint8(20), uint8(50), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, nT, nBids, maxQ, nCons uint8) {
		rng := rand.New(rand.NewPCG(seed, 1))
		o := genOpts{nT: 1 + int(nT%8), nBids: 1 + int(nBids%24), maxQ: 1 + int64(maxQ), maxPrice: 1 + int64(seed%50), nCons: int(nCons % 3)}
		if o.nCons > 0 {
			o.nT, o.nBids = min(o.nT, 3), min(o.nBids, 6)
		}
		p := randomProblem(rng, o)
		// Corrupt the input now and then: validation must catch it.
		if seed%7 == 0 {
			p.Bids[0].Quantity[0] = -int64(seed % 5)
		}
		p.MaxNodes = 200_000
		r, err := Solve(p)
		if err != nil {
			if errors.Is(err, ErrNodeLimit) || errors.Is(err, ErrInfeasible) || validate(p) != nil {
				return
			}
			t.Fatalf("unexpected error %v\n%s", err, dump(p))
		}
		if err := checkResult(p, r); err != nil {
			t.Fatalf("%v\n%s", err, dump(p))
		}
	})
}
