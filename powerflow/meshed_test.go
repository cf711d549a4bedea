package powerflow

import (
	"bytes"
	"encoding/json"
	"math"
	"math/cmplx"
	"os"
	"path/filepath"
	"testing"

	"github.com/flexhub/flexhub/grid"
)

// case33bwMeshed is case33bw with its five tie lines (out of service in
// the file) switched in: a weakly meshed grid with five loops.
func case33bwMeshed(t *testing.T) *grid.Network {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir(t), "pandapower", "case33bw.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	obj := top["_object"].(map[string]any)
	lineTbl := obj["line"].(map[string]any)
	var frame struct {
		Columns []string `json:"columns"`
		Index   []any    `json:"index"`
		Data    [][]any  `json:"data"`
	}
	if err := json.Unmarshal([]byte(lineTbl["_object"].(string)), &frame); err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, c := range frame.Columns {
		if c == "in_service" {
			col = i
		}
	}
	ties := 0
	for _, row := range frame.Data {
		if row[col] == false {
			row[col] = true
			ties++
		}
	}
	if ties != 5 {
		t.Fatalf("%d tie lines in case33bw, want 5", ties)
	}
	b, _ := json.Marshal(frame)
	lineTbl["_object"] = string(b)
	out, _ := json.Marshal(top)
	n, err := grid.ReadPandapower(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// With the loops closed the solution must still satisfy every bus's power
// balance (checked here independently of the solver's own mismatch, from
// the branch flows), and meshing must lower the losses and raise the
// lowest voltage, as reconfiguration studies of this feeder report.
func TestMeshedCase33bw(t *testing.T) {
	n := case33bwMeshed(t)
	m, r := solveBase(t, n)
	_, radial := solveBase(t, loadPandapower(t, "case33bw.json"))
	idx := n.BusIndex()
	bal := make([]complex128, len(n.Buses))
	for i, l := range n.Lines {
		f := r.Lines[i]
		bal[idx[l.FromBus]] += complex(f.PFromMW, f.QFromMvar)
		bal[idx[l.ToBus]] += complex(f.PToMW, f.QToMvar)
	}
	p, q := m.BaseInjections()
	for i := range bal {
		if n.Buses[i].ID == n.Slacks[0].Bus {
			continue
		}
		if d := cmplx.Abs(bal[i] - complex(p[i], q[i])); d > 1e-6 {
			t.Errorf("bus %s: branch flows %v MVA, injection %v+%vj", n.Buses[i].ID, bal[i], p[i], q[i])
		}
	}
	t.Logf("meshed case33bw: %d steps, Vmin %.4f, losses %.2f kW (radial %.4f, %.2f kW); %d off-diagonal LU blocks for %d branches",
		r.Iterations, r.MinVoltage().VmPU, r.LossesMW*1000, radial.MinVoltage().VmPU, radial.LossesMW*1000, m.sym.nnz, len(n.Lines))
	if r.LossesMW >= radial.LossesMW || r.MinVoltage().VmPU <= radial.MinVoltage().VmPU {
		t.Errorf("closing the ties did not lower losses / raise Vmin")
	}
	if m.sym.nnz <= len(n.Lines)-1 {
		t.Errorf("a meshed grid with %d branches gave only %d LU blocks: loops must cause fill", len(n.Lines), m.sym.nnz)
	}
}

// The sparse block LU must solve the Jacobian system exactly as a dense
// Gaussian elimination with partial pivoting does, on the meshed feeder
// (fill) and on a grid with transformers and 150° shifts.
func TestSparseLUMatchesDense(t *testing.T) {
	for name, n := range map[string]*grid.Network{
		"case33bw meshed": case33bwMeshed(t),
		"mv_oberrhein":    loadPandapower(t, "mv_oberrhein.json"),
	} {
		m, r := solveBase(t, n)
		vm := make([]float64, m.nNode)
		for i, x := range r.v {
			vm[i] = cmplx.Abs(x)
		}
		cur := make([]complex128, m.nNode)
		m.currents(r.v, cur)
		vals := make([]float64, 4*m.sym.blocks())
		m.jacobian(r.v, vm, cur, vals)
		// Dense copy in elimination order.
		dim := 2 * m.sym.m
		a := make([][]float64, dim)
		for i := range a {
			a[i] = make([]float64, dim)
		}
		put := func(bi, bj, blk int) {
			x := vals[4*blk : 4*blk+4]
			a[2*bi][2*bj], a[2*bi][2*bj+1], a[2*bi+1][2*bj], a[2*bi+1][2*bj+1] = x[0], x[1], x[2], x[3]
		}
		for k := 0; k < m.sym.m; k++ {
			put(k, k, k)
			for e := int(m.sym.upStart[k]); e < int(m.sym.upStart[k+1]); e++ {
				j := int(m.sym.upCol[e])
				put(k, j, m.sym.uBlock(e))
				put(j, k, m.sym.lBlock(e))
			}
		}
		rhs := make([]float64, dim)
		for i := range rhs {
			rhs[i] = math.Sin(float64(i) + 1)
		}
		want := denseSolve(a, rhs)
		got := append([]float64(nil), rhs...)
		if err := m.sym.factor(vals); err != nil {
			t.Fatal(err)
		}
		m.sym.solve(vals, got)
		worst, big := 0.0, 0.0
		for i := range got {
			worst = math.Max(worst, math.Abs(got[i]-want[i]))
			big = math.Max(big, math.Abs(want[i]))
		}
		t.Logf("%s: %d unknowns, largest difference %.3g (solution up to %.3g)", name, dim, worst, big)
		if worst > 1e-9*big {
			t.Errorf("%s: sparse and dense solutions differ by %.3g", name, worst)
		}
	}
}

func denseSolve(a [][]float64, b []float64) []float64 {
	n := len(b)
	m := make([][]float64, n)
	for i := range a {
		m[i] = append(append([]float64(nil), a[i]...), b[i])
	}
	for k := 0; k < n; k++ {
		p := k
		for i := k + 1; i < n; i++ {
			if math.Abs(m[i][k]) > math.Abs(m[p][k]) {
				p = i
			}
		}
		m[k], m[p] = m[p], m[k]
		for i := k + 1; i < n; i++ {
			f := m[i][k] / m[k][k]
			if f == 0 {
				continue
			}
			for j := k; j <= n; j++ {
				m[i][j] -= f * m[k][j]
			}
		}
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := m[i][n]
		for j := i + 1; j < n; j++ {
			s -= m[i][j] * x[j]
		}
		x[i] = s / m[i][i]
	}
	return x
}
