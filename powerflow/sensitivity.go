package powerflow

import (
	"fmt"
	"math"
	"math/cmplx"
)

// Linearization holds the Newton-Raphson Jacobian of a converged operating
// point, factorised, to give the first-order response of bus voltages and
// branch loadings to a change of injection at one bus. Each Sensitivity
// call is one sparse forward/backward solve.
type Linearization struct {
	m    *Model
	v    []complex128
	vals []float64
}

// Linearize factorises the Jacobian at a result of this model.
func (m *Model) Linearize(r *Result) (*Linearization, error) {
	if r == nil || len(r.v) != m.nNode {
		return nil, fmt.Errorf("powerflow: result is not from this model")
	}
	vm := make([]float64, m.nNode)
	for i, x := range r.v {
		vm[i] = cmplx.Abs(x)
	}
	cur := make([]complex128, m.nNode)
	m.currents(r.v, cur)
	vals := make([]float64, 4*m.sym.blocks())
	m.jacobian(r.v, vm, cur, vals)
	if err := m.sym.factor(vals); err != nil {
		return nil, fmt.Errorf("powerflow: linearization: %w", err)
	}
	return &Linearization{m: m, v: r.v, vals: vals}, nil
}

// Sensitivity is the derivative of the operating point with respect to
// the net injection at one bus (more generation or less consumption is
// positive). Voltages are in p.u. per MW (or Mvar), loadings in
// percentage points per MW (or Mvar), indexed like the Result's slices.
// At a slack bus every derivative is zero.
type Sensitivity struct {
	Bus             string
	DVmDP, DVmDQ    []float64
	DLineLoadingDP  []float64
	DLineLoadingDQ  []float64
	DTrafoLoadingDP []float64
	DTrafoLoadingDQ []float64
}

// Sensitivity returns the sensitivities to an injection at bus index b.
func (l *Linearization) Sensitivity(b int) (*Sensitivity, error) {
	m := l.m
	if b < 0 || b >= len(m.net.Buses) {
		return nil, fmt.Errorf("powerflow: bus index %d out of range (%d buses)", b, len(m.net.Buses))
	}
	s := &Sensitivity{Bus: m.net.Buses[b].ID}
	node := m.busNode[b]
	for q := 0; q < 2; q++ {
		dv := make([]complex128, m.nNode) // dV (complex p.u.) per p.u. injection
		if !m.fixed[node] {
			x := make([]float64, 2*m.sym.m)
			x[2*m.elim[node]+q] = 1 // J dx = dS_spec
			m.sym.solve(l.vals, x)
			for k, i := range m.order {
				vi := l.v[i]
				vmi := cmplx.Abs(vi)
				// dV = V (dVm/Vm + j dθ)
				dv[i] = vi * complex(x[2*k+1]/vmi, x[2*k])
			}
		}
		per := 1 / m.base // p.u. per MW
		dvm := make([]float64, len(m.net.Buses))
		for bb, k := range m.busNode {
			vk := l.v[k]
			dvm[bb] = real(cmplx.Conj(vk)*dv[k]) / cmplx.Abs(vk) * per
		}
		dl := l.loadingDerivs(m.lines, dv, per)
		dt := l.loadingDerivs(m.trafos, dv, per)
		if q == 0 {
			s.DVmDP, s.DLineLoadingDP, s.DTrafoLoadingDP = dvm, dl, dt
		} else {
			s.DVmDQ, s.DLineLoadingDQ, s.DTrafoLoadingDQ = dvm, dl, dt
		}
	}
	return s, nil
}

// loadingDerivs differentiates each branch's loading (the larger of its
// two end currents over rating) along dv.
func (l *Linearization) loadingDerivs(bs []branch, dv []complex128, per float64) []float64 {
	out := make([]float64, len(bs))
	for i, b := range bs {
		if b.open {
			continue
		}
		vf, vt := l.v[b.f], l.v[b.t]
		iF := b.yff*vf + b.yft*vt
		iT := b.ytf*vf + b.ytt*vt
		dF := b.yff*dv[b.f] + b.yft*dv[b.t]
		dT := b.ytf*dv[b.f] + b.ytt*dv[b.t]
		d := func(i, di complex128, ib, irat float64) (float64, float64) {
			a := cmplx.Abs(i)
			if irat <= 0 || a == 0 {
				return 0, 0
			}
			return a * ib / irat * 100, real(cmplx.Conj(i)*di) / a * ib / irat * 100
		}
		lf, df := d(iF, dF, b.ibaseF, b.iratF)
		lt, dt := d(iT, dT, b.ibaseT, b.iratT)
		if lt > lf {
			df = dt
		}
		if math.IsNaN(df) {
			df = 0
		}
		out[i] = df * per
	}
	return out
}
