package clearing

import (
	"math/big"
	"testing"
)

// The fraction-free inverse equals the rational Gauss-Jordan one.
func TestBareissInverseMatchesRational(t *testing.T) {
	rng := newRand(5)
	for it := range 300 {
		k := 1 + rng.IntN(9)
		ai := make([][]big.Int, k)
		ar := make([][]big.Rat, k)
		for i := range k {
			ai[i] = make([]big.Int, k)
			ar[i] = make([]big.Rat, k)
			for j := range k {
				v := rng.Int64N(2_000_000_001) - 1_000_000_000
				if rng.IntN(3) == 0 {
					v = 0
				}
				ai[i][j].SetInt64(v)
				ar[i][j].SetInt64(v)
			}
		}
		adj, d := invertBareiss(ai)
		inv := invertRat(ar)
		if (inv == nil) != (d.Sign() == 0) {
			t.Fatalf("case %d: singular disagrees", it)
		}
		if inv == nil {
			continue
		}
		for i := range k {
			for j := range k {
				got := new(big.Rat).SetFrac(&adj[i][j], d)
				if got.Cmp(&inv[i][j]) != 0 {
					t.Fatalf("case %d: entry %d,%d: %s vs %s", it, i, j, got.RatString(), inv[i][j].RatString())
				}
			}
		}
	}
}
