package powerflow

import (
	"fmt"
	"sort"
)

// The Newton-Raphson Jacobian of a grid with only PQ buses besides the
// slacks has one 2x2 block per (bus, bus) pair of the admittance matrix:
// rows (P, Q), columns (angle, magnitude). It is factorised as a sparse
// block LU without pivoting over an elimination order chosen by minimum
// degree on the bus graph. For radial feeders that order gives no fill at
// all; weakly meshed grids get a little. No well-kept pure-Go sparse LU is
// available through the module proxy (gonum is dense only), hence this
// small one: the pattern is fixed per grid, so the symbolic phase (order,
// fill, update lists) runs once and every Newton step and every interval
// of a time series only refactorises numbers.

// symbolic is the fill pattern of the block LU in elimination order.
type symbolic struct {
	m       int
	upStart []int32 // block row k's upper neighbours: upCol[upStart[k]:upStart[k+1]]
	upCol   []int32
	nnz     int
	// update targets of the elimination: for each k and each pair (a, b)
	// of its upper neighbours, the block that L_a * U_b is subtracted from.
	tgtStart []int32
	tgt      []int32
}

// Block layout in the value array (4 floats per block): diagonal blocks
// 0..m-1, then U blocks (m + e), then L blocks (m + nnz + e), where e
// indexes upCol.
func (s *symbolic) uBlock(e int) int { return s.m + e }
func (s *symbolic) lBlock(e int) int { return s.m + s.nnz + e }
func (s *symbolic) blocks() int      { return s.m + 2*s.nnz }

// pos returns e such that upCol[e] == j within row i (i < j), or -1.
func (s *symbolic) pos(i, j int) int {
	lo, hi := int(s.upStart[i]), int(s.upStart[i+1])
	k := lo + sort.Search(hi-lo, func(x int) bool { return int(s.upCol[lo+x]) >= j })
	if k < hi && int(s.upCol[k]) == j {
		return k
	}
	return -1
}

// block returns the block index of entry (i, j) in elimination order.
func (s *symbolic) block(i, j int) int {
	switch {
	case i == j:
		return i
	case i < j:
		return s.uBlock(s.pos(i, j))
	default:
		return s.lBlock(s.pos(j, i))
	}
}

// minDegreeOrder returns an elimination order of the graph's vertices
// (order[k] = vertex eliminated k-th) chosen by minimum degree, and the
// symbolic factorisation in that order.
func minDegreeOrder(adj [][]int) ([]int, *symbolic) {
	m := len(adj)
	nb := make([]map[int]struct{}, m)
	for v := range adj {
		nb[v] = make(map[int]struct{}, len(adj[v]))
		for _, w := range adj[v] {
			if w != v {
				nb[v][w] = struct{}{}
			}
		}
	}
	done := make([]bool, m)
	order := make([]int, 0, m)
	elim := make([]int, m)
	upper := make([][]int, m)
	// Buckets by degree would be faster; a linear scan keeps it simple and
	// costs a few milliseconds once per grid at a few thousand buses.
	for len(order) < m {
		best, bd := -1, 1<<30
		for v := 0; v < m; v++ {
			if !done[v] && len(nb[v]) < bd {
				best, bd = v, len(nb[v])
				if bd <= 1 {
					break
				}
			}
		}
		v := best
		done[v] = true
		elim[v] = len(order)
		order = append(order, v)
		ns := make([]int, 0, len(nb[v]))
		for w := range nb[v] {
			ns = append(ns, w)
		}
		sort.Ints(ns)
		upper[v] = ns
		for _, a := range ns {
			delete(nb[a], v)
			for _, b := range ns {
				if a != b {
					nb[a][b] = struct{}{}
				}
			}
		}
		nb[v] = nil
	}
	s := &symbolic{m: m, upStart: make([]int32, m+1)}
	for k, v := range order {
		cols := make([]int, len(upper[v]))
		for i, w := range upper[v] {
			cols[i] = elim[w]
		}
		sort.Ints(cols)
		for _, c := range cols {
			s.upCol = append(s.upCol, int32(c))
		}
		s.upStart[k+1] = int32(len(s.upCol))
	}
	s.nnz = len(s.upCol)
	s.tgtStart = make([]int32, m+1)
	for k := 0; k < m; k++ {
		row := s.upCol[s.upStart[k]:s.upStart[k+1]]
		for _, i := range row {
			for _, j := range row {
				s.tgt = append(s.tgt, int32(s.block(int(i), int(j))))
			}
		}
		s.tgtStart[k+1] = int32(len(s.tgt))
	}
	return order, s
}

// factor performs the numeric block LU in place on vals (4 per block):
// afterwards diagonal blocks hold D_k^-1, L blocks the multipliers, U
// blocks the reduced rows.
func (s *symbolic) factor(vals []float64) error {
	for k := 0; k < s.m; k++ {
		d := vals[4*k : 4*k+4]
		det := d[0]*d[3] - d[1]*d[2]
		if det == 0 || det != det {
			return fmt.Errorf("singular Jacobian block at elimination step %d", k)
		}
		d[0], d[1], d[2], d[3] = d[3]/det, -d[1]/det, -d[2]/det, d[0]/det
		lo, hi := int(s.upStart[k]), int(s.upStart[k+1])
		for e := lo; e < hi; e++ {
			l := vals[4*s.lBlock(e) : 4*s.lBlock(e)+4]
			a0, a1, a2, a3 := l[0], l[1], l[2], l[3]
			l[0], l[1] = a0*d[0]+a1*d[2], a0*d[1]+a1*d[3]
			l[2], l[3] = a2*d[0]+a3*d[2], a2*d[1]+a3*d[3]
		}
		t := s.tgt[s.tgtStart[k]:s.tgtStart[k+1]]
		n := 0
		for a := lo; a < hi; a++ {
			l := vals[4*s.lBlock(a) : 4*s.lBlock(a)+4]
			for b := lo; b < hi; b++ {
				u := vals[4*s.uBlock(b) : 4*s.uBlock(b)+4]
				x := vals[4*t[n] : 4*t[n]+4]
				n++
				x[0] -= l[0]*u[0] + l[1]*u[2]
				x[1] -= l[0]*u[1] + l[1]*u[3]
				x[2] -= l[2]*u[0] + l[3]*u[2]
				x[3] -= l[2]*u[1] + l[3]*u[3]
			}
		}
	}
	return nil
}

// solve solves the factorised system in place: x holds the right-hand
// side (2 per block row, elimination order) and receives the solution.
func (s *symbolic) solve(vals, x []float64) {
	for k := 0; k < s.m; k++ {
		y0, y1 := x[2*k], x[2*k+1]
		for e := int(s.upStart[k]); e < int(s.upStart[k+1]); e++ {
			i := int(s.upCol[e])
			l := vals[4*s.lBlock(e) : 4*s.lBlock(e)+4]
			x[2*i] -= l[0]*y0 + l[1]*y1
			x[2*i+1] -= l[2]*y0 + l[3]*y1
		}
	}
	for k := s.m - 1; k >= 0; k-- {
		r0, r1 := x[2*k], x[2*k+1]
		for e := int(s.upStart[k]); e < int(s.upStart[k+1]); e++ {
			j := int(s.upCol[e])
			u := vals[4*s.uBlock(e) : 4*s.uBlock(e)+4]
			r0 -= u[0]*x[2*j] + u[1]*x[2*j+1]
			r1 -= u[2]*x[2*j] + u[3]*x[2*j+1]
		}
		d := vals[4*k : 4*k+4]
		x[2*k], x[2*k+1] = d[0]*r0+d[1]*r1, d[2]*r0+d[3]*r1
	}
}
