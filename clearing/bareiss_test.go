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

// invertRat (the reference) inverts a square rational matrix (Gauss-Jordan); nil when
// singular. The result is indexed [column of a][row of a].
func invertRat(a [][]big.Rat) [][]big.Rat {
	m := len(a)
	inv := make([][]big.Rat, m)
	for i := range m {
		inv[i] = make([]big.Rat, m)
		inv[i][i].SetInt64(1)
	}
	tmp := new(big.Rat)
	for c := range m {
		p := -1
		for r := c; r < m; r++ {
			if a[r][c].Sign() != 0 {
				p = r
				break
			}
		}
		if p < 0 {
			return nil
		}
		a[p], a[c] = a[c], a[p]
		inv[p], inv[c] = inv[c], inv[p]
		f := new(big.Rat).Inv(&a[c][c])
		for k := range m {
			if a[c][k].Sign() != 0 {
				a[c][k].Mul(&a[c][k], f)
			}
			if inv[c][k].Sign() != 0 {
				inv[c][k].Mul(&inv[c][k], f)
			}
		}
		for r := range m {
			if r == c || a[r][c].Sign() == 0 {
				continue
			}
			g := new(big.Rat).Set(&a[r][c])
			for k := range m {
				if a[c][k].Sign() != 0 {
					a[r][k].Sub(&a[r][k], tmp.Mul(g, &a[c][k]))
				}
				if inv[c][k].Sign() != 0 {
					inv[r][k].Sub(&inv[r][k], tmp.Mul(g, &inv[c][k]))
				}
			}
		}
	}
	return inv
}
