package powerflow

import (
	"fmt"
	"math"
	"math/cmplx"
)

// Options control convergence. Zero values take the defaults.
type Options struct {
	// TolMVA is the largest accepted active or reactive power mismatch at
	// any bus, in MW/Mvar (default 1e-8, i.e. 0.01 W).
	TolMVA float64
	// MaxIter is the largest number of Newton steps (default 20).
	MaxIter int
}

func (o Options) withDefaults() Options {
	if o.TolMVA <= 0 {
		o.TolMVA = 1e-8
	}
	if o.MaxIter <= 0 {
		o.MaxIter = 20
	}
	return o
}

// NotConvergedError reports a power flow that did not converge: its
// voltages are not a solution and no result is returned.
type NotConvergedError struct {
	Iterations     int
	MaxMismatchMVA float64 // the last largest mismatch, MW or Mvar
	Kind           string  // "P" or "Q"
	Bus            string  // where it was largest
}

func (e *NotConvergedError) Error() string {
	return fmt.Sprintf("powerflow: not converged after %d iterations: largest mismatch %.6g %s at bus %q",
		e.Iterations, e.MaxMismatchMVA, map[string]string{"P": "MW", "Q": "Mvar"}[e.Kind], e.Bus)
}

// Result is a converged power flow.
type Result struct {
	Iterations     int
	MaxMismatchMVA float64
	Buses          []BusResult    // indexed like Network().Buses
	Lines          []BranchResult // indexed like Network().Lines
	Trafos         []BranchResult // indexed like Network().Trafos (from = HV)
	LossesMW       float64        // all lines and transformers
	LossesMvar     float64
	SlackPMW       float64 // total injection of the slacks
	SlackQMvar     float64

	v []complex128 // node voltages, p.u.
}

// BusResult is the voltage at a bus.
type BusResult struct {
	ID    string
	VmPU  float64
	VaDeg float64
}

// BranchResult is the flow through a line or transformer; powers flow
// into the branch at each end.
type BranchResult struct {
	ID                 string
	Open               bool // disconnected by a switch: no flow
	PFromMW, QFromMvar float64
	PToMW, QToMvar     float64
	IFromKA, IToKA     float64
	LossMW, LossMvar   float64
	LoadingPercent     float64 // largest end current over rating; 0 if unrated
}

// Solve runs the power flow for net injections per bus (MW, Mvar; indexed
// like Network().Buses; generation positive) from the model's own start.
func (m *Model) Solve(pMW, qMvar []float64, opt Options) (*Result, error) {
	return m.SolveFrom(pMW, qMvar, nil, opt)
}

// SolveFrom is Solve starting from a previous result's voltages (a warm
// start); prev may be nil.
func (m *Model) SolveFrom(pMW, qMvar []float64, prev *Result, opt Options) (*Result, error) {
	opt = opt.withDefaults()
	nb := len(m.net.Buses)
	if len(pMW) != nb || len(qMvar) != nb {
		return nil, fmt.Errorf("powerflow: %d P and %d Q injections for %d buses", len(pMW), len(qMvar), nb)
	}
	spec := make([]complex128, m.nNode)
	for i := range pMW {
		if math.IsNaN(pMW[i]) || math.IsNaN(qMvar[i]) || math.IsInf(pMW[i], 0) || math.IsInf(qMvar[i], 0) {
			return nil, fmt.Errorf("powerflow: injection at bus %q is not a number", m.net.Buses[i].ID)
		}
		spec[m.busNode[i]] += complex(pMW[i]/m.base, qMvar[i]/m.base)
	}
	v := make([]complex128, m.nNode)
	if prev != nil && len(prev.v) == m.nNode {
		copy(v, prev.v)
	} else {
		copy(v, m.start)
	}
	for i := range v {
		if m.fixed[i] {
			v[i] = m.fixedV[i]
		}
	}
	vm := make([]float64, m.nNode)
	va := make([]float64, m.nNode)
	for i, x := range v {
		vm[i], va[i] = cmplx.Abs(x), cmplx.Phase(x)
	}
	cur := make([]complex128, m.nNode)
	vals := make([]float64, 4*m.sym.blocks())
	rhs := make([]float64, 2*m.sym.m)
	tol := opt.TolMVA / m.base
	for it := 0; ; it++ {
		m.currents(v, cur)
		worst, wi, wq := 0.0, -1, false
		for k, i := range m.order {
			s := v[i]*cmplx.Conj(cur[i]) - spec[i]
			rhs[2*k], rhs[2*k+1] = -real(s), -imag(s)
			if a := math.Abs(real(s)); a > worst || a != a {
				worst, wi, wq = a, i, false
			}
			if a := math.Abs(imag(s)); a > worst || a != a {
				worst, wi, wq = a, i, true
			}
		}
		if worst <= tol && !math.IsNaN(worst) {
			return m.result(v, cur, it, worst*m.base), nil
		}
		if it == opt.MaxIter || math.IsNaN(worst) || math.IsInf(worst, 0) {
			e := &NotConvergedError{Iterations: it, MaxMismatchMVA: worst * m.base, Kind: "P"}
			if wq {
				e.Kind = "Q"
			}
			if wi >= 0 {
				e.Bus = m.nodeBusID(wi)
			}
			return nil, e
		}
		m.jacobian(v, vm, cur, vals)
		if err := m.sym.factor(vals); err != nil {
			return nil, &NotConvergedError{Iterations: it, MaxMismatchMVA: worst * m.base, Kind: map[bool]string{false: "P", true: "Q"}[wq], Bus: m.nodeBusID(wi)}
		}
		m.sym.solve(vals, rhs)
		for k, i := range m.order {
			va[i] += rhs[2*k]
			vm[i] += rhs[2*k+1]
			v[i] = cmplx.Rect(vm[i], va[i])
		}
	}
}

func (m *Model) nodeBusID(node int) string {
	for b, k := range m.busNode {
		if k == node {
			return m.net.Buses[b].ID
		}
	}
	return ""
}

func (m *Model) currents(v, cur []complex128) {
	for i := 0; i < m.nNode; i++ {
		c := m.yDiag[i] * v[i]
		for p := m.adjSt[i]; p < m.adjSt[i+1]; p++ {
			c += m.adjVal[p] * v[m.adjCol[p]]
		}
		cur[i] = c
	}
}

// jacobian writes dS/d(angle, magnitude) of the unknown nodes into vals
// in the symbolic layout.
func (m *Model) jacobian(v []complex128, vm []float64, cur []complex128, vals []float64) {
	clear(vals)
	for i := 0; i < m.nNode; i++ {
		if m.fixed[i] {
			continue
		}
		vi := v[i]
		for p := m.adjSt[i]; p < m.adjSt[i+1]; p++ {
			b := m.adjBlk[p]
			if b < 0 {
				continue
			}
			j := m.adjCol[p]
			c := vi * cmplx.Conj(m.adjVal[p]*v[j])
			x := vals[4*b : 4*b+4]
			x[0], x[1] = imag(c), real(c)/vm[j]
			x[2], x[3] = -real(c), imag(c)/vm[j]
		}
		c := vi * cmplx.Conj(m.yDiag[i]*vi)
		d := vi * cmplx.Conj(cur[i])
		k := m.elim[i]
		x := vals[4*k : 4*k+4]
		x[0], x[1] = -imag(d-c), real(c+d)/vm[i]
		x[2], x[3] = real(d-c), imag(c+d)/vm[i]
	}
}

func (m *Model) result(v, cur []complex128, it int, mis float64) *Result {
	r := &Result{Iterations: it, MaxMismatchMVA: mis, v: append([]complex128(nil), v...)}
	r.Buses = make([]BusResult, len(m.net.Buses))
	for b, k := range m.busNode {
		r.Buses[b] = BusResult{ID: m.net.Buses[b].ID, VmPU: cmplx.Abs(v[k]), VaDeg: cmplx.Phase(v[k]) * 180 / math.Pi}
	}
	flows := func(bs []branch) []BranchResult {
		out := make([]BranchResult, len(bs))
		for i, b := range bs {
			out[i] = BranchResult{ID: b.id, Open: b.open}
			if b.open {
				continue
			}
			vf, vt := v[b.f], v[b.t]
			iF := b.yff*vf + b.yft*vt
			iT := b.ytf*vf + b.ytt*vt
			sF := vf * cmplx.Conj(iF) * complex(m.base, 0)
			sT := vt * cmplx.Conj(iT) * complex(m.base, 0)
			o := &out[i]
			o.PFromMW, o.QFromMvar, o.PToMW, o.QToMvar = real(sF), imag(sF), real(sT), imag(sT)
			o.IFromKA, o.IToKA = cmplx.Abs(iF)*b.ibaseF, cmplx.Abs(iT)*b.ibaseT
			o.LossMW, o.LossMvar = real(sF+sT), imag(sF+sT)
			o.LoadingPercent = loading(o.IFromKA, o.IToKA, b)
			r.LossesMW += o.LossMW
			r.LossesMvar += o.LossMvar
		}
		return out
	}
	r.Lines = flows(m.lines)
	r.Trafos = flows(m.trafos)
	for i := range v {
		if m.fixed[i] {
			s := v[i] * cmplx.Conj(cur[i]) * complex(m.base, 0)
			r.SlackPMW += real(s)
			r.SlackQMvar += imag(s)
		}
	}
	return r
}

func loading(iF, iT float64, b branch) float64 {
	l := 0.0
	if b.iratF > 0 {
		l = iF / b.iratF * 100
	}
	if b.iratT > 0 {
		l = math.Max(l, iT/b.iratT*100)
	}
	return l
}

// Bus returns the result of the bus with this ID.
func (r *Result) Bus(id string) (BusResult, bool) {
	for _, b := range r.Buses {
		if b.ID == id {
			return b, true
		}
	}
	return BusResult{}, false
}

// MinVoltage returns the bus with the lowest voltage magnitude.
func (r *Result) MinVoltage() BusResult {
	best := r.Buses[0]
	for _, b := range r.Buses[1:] {
		if b.VmPU < best.VmPU {
			best = b
		}
	}
	return best
}
