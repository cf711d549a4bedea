package clearing

import (
	"fmt"
	"math"
	"slices"

	"github.com/flexhub/flexhub/powerflow"
)

// GridLimits are the limits the network rows enforce.
type GridLimits struct {
	// LineMaxPercent and TrafoMaxPercent cap the loadings (default 100).
	LineMaxPercent, TrafoMaxPercent float64
	// VMinPU and VMaxPU are the voltage band of buses that have none of
	// their own (defaults 0.9 and 1.1 p.u.).
	VMinPU, VMaxPU float64
}

func (l GridLimits) withDefaults() GridLimits {
	if l.LineMaxPercent <= 0 {
		l.LineMaxPercent = 100
	}
	if l.TrafoMaxPercent <= 0 {
		l.TrafoMaxPercent = 100
	}
	if l.VMinPU <= 0 {
		l.VMinPU = 0.9
	}
	if l.VMaxPU <= 0 {
		l.VMaxPU = 1.1
	}
	return l
}

// band is bus b's voltage band.
func (l GridLimits) band(m *powerflow.Model, b int) (lo, hi float64) {
	bus := m.Network().Buses[b]
	lo, hi = l.VMinPU, l.VMaxPU
	if bus.VMinPU > 0 {
		lo = bus.VMinPU
	}
	if bus.VMaxPU > 0 {
		hi = bus.VMaxPU
	}
	return lo, hi
}

// GridRows linearises every line loading, transformer loading and bus
// voltage limit of one interval at its forecast operating point op
// (a converged power flow of model m) with respect to injections at the
// given buses (those where bids sit; bus indices of m.Network()):
//
//   - coefficients: round(10⁶ × sensitivity), the sensitivity in
//     percentage points (loading) or p.u. (voltage) per MW or Mvar of net
//     injection, from powerflow.Linearize;
//   - headrooms: ⌊10⁶ × (limit − forecast value)⌋ micro-units; an element
//     already beyond its limit at the forecast gets headroom 0 (the
//     clearing must not make it worse);
//   - rows whose coefficients all round to 0 are left out (no bid can
//     move them), so are the voltage rows of slack buses.
//
// It returns the rows and the number of limits considered.
func GridRows(m *powerflow.Model, op *powerflow.Result, interval int, buses []int, lim GridLimits) ([]NetRow, int, error) {
	return gridRows(m, op, op, interval, buses, lim, nil)
}

// GridRowsAt re-linearises interval t's limits at the operating point at
// of a first clearing (the forecast with the accepted quantities x0
// applied, x0 indexed like p.Bids), for a second clearing: a row keeps
// value(at) + coeff·(x − x0) within the allowed band (the limit, or the
// forecast value fc where that was already beyond it), i.e. its headroom
// is ⌊10⁶·(allowed − value(at))⌋ + ⌊Σ coeff·x0 / 10⁶⌋ micro-units, at
// least 0 (accepting nothing is the forecast, within the band in truth).
// This is one step of a sequential linearisation that shrinks the
// residual CheckGrid reports.
func GridRowsAt(m *powerflow.Model, fc, at *powerflow.Result, p *Problem, x0 []int64, t int, lim GridLimits) ([]NetRow, int, error) {
	var buses []int
	for _, nb := range p.Network.Bids {
		buses = append(buses, nb.Bus)
	}
	var acc []int // the bids with something accepted
	for b := range p.Network.Bids {
		if x0[b] != 0 {
			acc = append(acc, b)
		}
	}
	return gridRows(m, fc, at, t, buses, lim, func(r *NetRow) int64 {
		var sh int64
		for _, b := range acc {
			sh += r.coeff(p.Network.Bids[b]) * x0[b]
		}
		return sh
	})
}

func gridRows(m *powerflow.Model, fc, op *powerflow.Result, interval int, buses []int, lim GridLimits, shift func(*NetRow) int64) ([]NetRow, int, error) {
	lim = lim.withDefaults()
	net := m.Network()
	lin, err := m.Linearize(op)
	if err != nil {
		return nil, 0, err
	}
	bs := slices.Clone(buses)
	slices.Sort(bs)
	bs = slices.Compact(bs)
	nL, nTr, nB := len(net.Lines), len(net.Trafos), len(net.Buses)
	type acc struct {
		buses  []int32
		pp, qp []int64
	}
	accs := make([]acc, nL+nTr+nB)
	add := func(e, bus int, dp, dq float64) {
		p, q := int64(math.Round(dp*1e6)), int64(math.Round(dq*1e6))
		if p == 0 && q == 0 {
			return
		}
		a := &accs[e]
		a.buses = append(a.buses, int32(bus))
		a.pp = append(a.pp, p)
		a.qp = append(a.qp, q)
	}
	for _, b := range bs {
		if b < 0 || b >= nB {
			return nil, 0, fmt.Errorf("clearing: bus index %d out of range (%d buses)", b, nB)
		}
		sn, err := lin.Sensitivity(b)
		if err != nil {
			return nil, 0, err
		}
		for i := range nL {
			add(i, b, sn.DLineLoadingDP[i], sn.DLineLoadingDQ[i])
		}
		for i := range nTr {
			add(nL+i, b, sn.DTrafoLoadingDP[i], sn.DTrafoLoadingDQ[i])
		}
		for i := range nB {
			add(nL+nTr+i, b, sn.DVmDP[i], sn.DVmDQ[i])
		}
	}
	head := func(v float64) int64 { return max(0, int64(math.Floor(v*1e6))) }
	if shift != nil { // allowed band from the forecast, value at op
		head = func(v float64) int64 { return int64(math.Floor(v * 1e6)) }
	}
	// allowed: the limit, or the forecast value when already beyond it
	allowHi := func(limit, f float64) float64 { return math.Max(limit, f) }
	allowLo := func(limit, f float64) float64 { return math.Min(limit, f) }
	var rows []NetRow
	limits := 0
	for e := range accs {
		var name string
		up, down := int64(Unlimited), int64(Unlimited)
		switch {
		case e < nL:
			if op.Lines[e].Open || net.Lines[e].MaxIKA <= 0 && net.Lines[e].RatedMVA <= 0 {
				continue
			}
			limits++
			name = fmt.Sprintf("line %s loading", net.Lines[e].ID)
			up = head(allowHi(lim.LineMaxPercent, fc.Lines[e].LoadingPercent) - op.Lines[e].LoadingPercent)
		case e < nL+nTr:
			i := e - nL
			if op.Trafos[i].Open {
				continue
			}
			limits++
			name = fmt.Sprintf("transformer %s loading", net.Trafos[i].ID)
			up = head(allowHi(lim.TrafoMaxPercent, fc.Trafos[i].LoadingPercent) - op.Trafos[i].LoadingPercent)
		default:
			i := e - nL - nTr
			limits += 2
			lo, hi := lim.band(m, i)
			v := op.Buses[i].VmPU
			name = fmt.Sprintf("bus %s voltage", net.Buses[i].ID)
			up, down = head(allowHi(hi, fc.Buses[i].VmPU)-v), head(v-allowLo(lo, fc.Buses[i].VmPU))
		}
		a := &accs[e]
		if len(a.buses) == 0 {
			continue
		}
		r := NetRow{Name: name, Interval: interval, Buses: a.buses, PPM: a.pp, Up: up, Down: down}
		for _, q := range a.qp {
			if q != 0 {
				r.QPPM = a.qp
				break
			}
		}
		if shift != nil { // rounded towards the tighter side
			sh := shift(&r)
			if r.Up != Unlimited {
				r.Up += floorDiv(sh, ppm)
			}
			if r.Down != Unlimited {
				r.Down += floorDiv(-sh, ppm)
			}
			// Accepting nothing is within the allowed band in truth (it is
			// the forecast); a row that predicts otherwise is off by its
			// linearisation error: keep x = 0 feasible.
			r.Up, r.Down = max(r.Up, 0), max(r.Down, 0)
		}
		rows = append(rows, r)
	}
	return rows, limits, nil
}

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
