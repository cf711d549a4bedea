// Package powerflow computes balanced (positive-sequence) AC power flows on
// a grid.Network: Newton-Raphson in polar form with a sparse block LU of
// the Jacobian, time series with warm starts, and linear sensitivities of
// bus voltages and branch loadings to injections at the operating point.
//
// Per-unit system: the network's power base (grid.Network.Base) and, per
// bus, its nominal voltage. Injections are net injections into the grid
// (generation positive, consumption negative) in MW and Mvar.
package powerflow

import (
	"fmt"
	"math"
	"math/cmplx"
	"sort"

	"github.com/flexhub/flexhub/grid"
)

// Model is a validated network compiled for repeated power flows: the bus
// admittance matrix and the symbolic factorisation of the Jacobian. It is
// read-only after Compile and safe for concurrent Solve calls.
type Model struct {
	net     *grid.Network
	base    float64 // MVA
	busNode []int   // network bus index -> electrical node
	nNode   int
	vbase   []float64 // node nominal kV
	fixed   []bool    // slack nodes
	fixedV  []complex128
	yDiag   []complex128
	adjSt   []int // off-diagonals of node i: adjCol/adjVal[adjSt[i]:adjSt[i+1]]
	adjCol  []int
	adjVal  []complex128
	adjBlk  []int32 // Jacobian block index of each off-diagonal, -1 if a slack is involved
	lines   []branch
	trafos  []branch
	order   []int // unknown node of each elimination step
	elim    []int // node -> elimination step, -1 for slack nodes
	sym     *symbolic
	start   []complex128 // initial voltages propagated from the slacks
}

type branch struct {
	id                 string
	f, t               int // nodes
	open               bool
	yff, yft, ytf, ytt complex128
	ibaseF, ibaseT     float64 // kA per p.u. current at each end
	iratF, iratT       float64 // rated current at each end, kA; 0 = unrated
	ratio              complex128
}

// Compile validates the network and prepares it for power flows.
func Compile(net *grid.Network) (*Model, error) {
	if err := net.Validate(); err != nil {
		return nil, err
	}
	m := &Model{net: net, base: net.Base()}
	idx := net.BusIndex()
	node, _ := net.Components()
	nodeOf := map[int]int{}
	m.busNode = make([]int, len(net.Buses))
	for i, root := range node {
		k, ok := nodeOf[root]
		if !ok {
			k = len(nodeOf)
			nodeOf[root] = k
			m.vbase = append(m.vbase, net.Buses[root].VnKV)
		}
		m.busNode[i] = k
		if vb := m.vbase[k]; math.Abs(net.Buses[i].VnKV-vb) > 1e-6*vb {
			return nil, fmt.Errorf("powerflow: bus %q (%v kV) is switched together with a bus of %v kV", net.Buses[i].ID, net.Buses[i].VnKV, vb)
		}
	}
	m.nNode = len(nodeOf)
	n := m.nNode
	m.fixed = make([]bool, n)
	m.fixedV = make([]complex128, n)
	owner := make([]string, n)
	for _, s := range net.Slacks {
		k := m.busNode[idx[s.Bus]]
		v := cmplx.Rect(s.VmPU, s.VaDeg*math.Pi/180)
		if m.fixed[k] && cmplx.Abs(m.fixedV[k]-v) > 1e-9 {
			return nil, fmt.Errorf("powerflow: slacks %q and %q hold the same node at different voltages", owner[k], s.ID)
		}
		m.fixed[k], m.fixedV[k], owner[k] = true, v, s.ID
	}

	open := net.OpenBranches()
	for _, l := range net.Lines {
		f, t := m.busNode[idx[l.FromBus]], m.busNode[idx[l.ToBus]]
		vb := m.vbase[f]
		zb := vb * vb / m.base
		z := complex(l.ROhmPerKM, l.XOhmPerKM) * complex(l.LengthKM/float64(l.Parallel)/zb, 0)
		ys := 1 / z
		ysh := complex(l.GMicroSPerKM, l.BMicroSPerKM) * complex(1e-6*l.LengthKM*float64(l.Parallel)*zb, 0)
		irat := l.MaxIKA
		if irat <= 0 && l.RatedMVA > 0 {
			irat = l.RatedMVA / (math.Sqrt(3) * net.Buses[idx[l.FromBus]].VnKV)
		}
		b := branch{id: l.ID, f: f, t: t, open: open["line:"+l.ID] || f == t,
			yff: ys + ysh/2, yft: -ys, ytf: -ys, ytt: ys + ysh/2, ratio: 1,
			ibaseF: m.ibase(f), ibaseT: m.ibase(t), iratF: irat, iratT: irat}
		m.lines = append(m.lines, b)
	}
	for _, tr := range net.Trafos {
		f, t := m.busNode[idx[tr.HVBus]], m.busNode[idx[tr.LVBus]]
		vhv, vlv := tr.VnHVKV, tr.VnLVKV
		switch tr.TapSide {
		case "lv":
			vlv *= 1 + tr.TapPercent/100
		default:
			vhv *= 1 + tr.TapPercent/100
		}
		zbLV := m.vbase[t] * m.vbase[t] / m.base
		zk := tr.VkPercent / 100 * tr.VnLVKV * tr.VnLVKV / tr.SnMVA
		rk := tr.VkrPercent / 100 * tr.VnLVKV * tr.VnLVKV / tr.SnMVA
		ys := 1 / complex(rk/zbLV, math.Sqrt(zk*zk-rk*rk)/zbLV)
		var ym complex128
		if tr.I0Percent > 0 {
			gm := tr.PfeKW / 1000 / (tr.VnLVKV * tr.VnLVKV)
			y := tr.I0Percent / 100 * tr.SnMVA / (tr.VnLVKV * tr.VnLVKV)
			ym = complex(gm*zbLV, -math.Sqrt(math.Max(y*y-gm*gm, 0))*zbLV)
		}
		ratio := cmplx.Rect((vhv/m.vbase[f])/(vlv/m.vbase[t]), tr.ShiftDeg*math.Pi/180)
		a2 := real(ratio)*real(ratio) + imag(ratio)*imag(ratio)
		b := branch{id: tr.ID, f: f, t: t, open: open["trafo:"+tr.ID] || f == t,
			yff: (ys + ym/2) / complex(a2, 0), yft: -ys / cmplx.Conj(ratio), ytf: -ys / ratio, ytt: ys + ym/2,
			ratio: ratio, ibaseF: m.ibase(f), ibaseT: m.ibase(t),
			iratF: tr.SnMVA / (math.Sqrt(3) * tr.VnHVKV), iratT: tr.SnMVA / (math.Sqrt(3) * tr.VnLVKV)}
		m.trafos = append(m.trafos, b)
	}

	// Admittance matrix.
	m.yDiag = make([]complex128, n)
	off := make([]map[int]complex128, n)
	for i := range off {
		off[i] = map[int]complex128{}
	}
	for _, bs := range [][]branch{m.lines, m.trafos} {
		for _, b := range bs {
			if b.open {
				continue
			}
			m.yDiag[b.f] += b.yff
			m.yDiag[b.t] += b.ytt
			off[b.f][b.t] += b.yft
			off[b.t][b.f] += b.ytf
		}
	}
	for _, s := range net.Shunts {
		m.yDiag[m.busNode[idx[s.Bus]]] += complex(s.PMW/m.base, s.QMvar/m.base)
	}
	m.adjSt = make([]int, n+1)
	for i := 0; i < n; i++ {
		cols := make([]int, 0, len(off[i]))
		for j := range off[i] {
			cols = append(cols, j)
		}
		sort.Ints(cols) // deterministic order, hence bit-identical results
		for _, j := range cols {
			m.adjCol = append(m.adjCol, j)
			m.adjVal = append(m.adjVal, off[i][j])
		}
		m.adjSt[i+1] = len(m.adjCol)
	}

	// Unknown nodes, their graph, the elimination order.
	m.elim = make([]int, n)
	var unk []int
	for i := 0; i < n; i++ {
		m.elim[i] = -1
		if !m.fixed[i] {
			m.elim[i] = len(unk)
			unk = append(unk, i)
		}
	}
	adj := make([][]int, len(unk))
	for u, i := range unk {
		for p := m.adjSt[i]; p < m.adjSt[i+1]; p++ {
			if j := m.adjCol[p]; !m.fixed[j] {
				adj[u] = append(adj[u], m.elim[j])
			}
		}
	}
	order, sym := minDegreeOrder(adj)
	m.sym = sym
	m.order = make([]int, len(order))
	for k, u := range order {
		m.order[k] = unk[u]
		m.elim[unk[u]] = k
	}
	m.adjBlk = make([]int32, len(m.adjCol))
	for i := 0; i < n; i++ {
		for p := m.adjSt[i]; p < m.adjSt[i+1]; p++ {
			j := m.adjCol[p]
			m.adjBlk[p] = -1
			if !m.fixed[i] && !m.fixed[j] {
				m.adjBlk[p] = int32(sym.block(m.elim[i], m.elim[j]))
			}
		}
	}
	m.start = m.propagate()
	return m, nil
}

func (m *Model) ibase(node int) float64 { return m.base / (math.Sqrt(3) * m.vbase[node]) }

// propagate sets each node's starting voltage from its slack through the
// transformers' ratios and phase shifts (breadth first), so that a grid
// behind a 150° transformer does not start 150° off.
func (m *Model) propagate() []complex128 {
	v := make([]complex128, m.nNode)
	seen := make([]bool, m.nNode)
	type hop struct {
		to    int
		ratio complex128 // V_to = V_from * ratio
	}
	nb := make([][]hop, m.nNode)
	for _, bs := range [][]branch{m.lines, m.trafos} {
		for _, b := range bs {
			if !b.open {
				nb[b.f] = append(nb[b.f], hop{b.t, 1 / b.ratio})
				nb[b.t] = append(nb[b.t], hop{b.f, b.ratio})
			}
		}
	}
	var queue []int
	for i := range v {
		if m.fixed[i] {
			v[i], seen[i] = m.fixedV[i], true
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, h := range nb[i] {
			if !seen[h.to] {
				seen[h.to] = true
				v[h.to] = v[i] * h.ratio
				queue = append(queue, h.to)
			}
		}
	}
	return v
}

// Network returns the compiled network.
func (m *Model) Network() *grid.Network { return m.net }

// BaseInjections returns the network's own net injection per bus (static
// generators minus loads) in MW and Mvar, indexed like Network().Buses.
func (m *Model) BaseInjections() (pMW, qMvar []float64) {
	idx := m.net.BusIndex()
	pMW = make([]float64, len(m.net.Buses))
	qMvar = make([]float64, len(m.net.Buses))
	for _, l := range m.net.Loads {
		pMW[idx[l.Bus]] -= l.PMW
		qMvar[idx[l.Bus]] -= l.QMvar
	}
	for _, g := range m.net.Gens {
		pMW[idx[g.Bus]] += g.PMW
		qMvar[idx[g.Bus]] += g.QMvar
	}
	return pMW, qMvar
}
