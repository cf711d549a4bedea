package clearing

import (
	"fmt"
	"math"

	"github.com/flexhub/flexhub/powerflow"
)

// GridViolation is a limit the AC power flow of the cleared state breaks
// by more than the forecast already did.
type GridViolation struct {
	Element string  // "line 17 loading", "bus 1362 voltage"
	Value   float64 // after clearing (percent or p.u.)
	Limit   float64 // the limit, or the forecast value when that was already beyond it
	Excess  float64 // Value − Limit (positive; for a lower voltage limit Limit − Value)
}

// GridCheck is the full AC verification of one interval of a clearing.
type GridCheck struct {
	Before, After *powerflow.Result
	// Violations lists every element the cleared state takes beyond
	// max(limit, forecast value) by more than the tolerance.
	Violations []GridViolation
	// Largest excess over the allowed value (0 when none), per kind:
	// loading in percentage points, voltage in p.u. These are the
	// linearisation's residuals.
	MaxLoadingExcess, MaxVoltageExcess float64
}

// CheckGrid runs a full AC power flow of interval t with the accepted
// quantities of r applied to the forecast injections (pMW, qMvar per bus,
// generation positive) and reports every limit the result breaks that the
// forecast did not break as badly. tolLoading (percentage points) and
// tolVoltage (p.u.) are the excesses reported as zero; a violation is any
// excess above them. p.Network places the bids; bids on no bus are an
// error.
func CheckGrid(m *powerflow.Model, pMW, qMvar []float64, p *Problem, r *Result, t int, lim GridLimits, tolLoading, tolVoltage float64) (*GridCheck, error) {
	if p.Network == nil || len(p.Network.Bids) != len(p.Bids) || len(r.Accepted) != len(p.Bids) {
		return nil, fmt.Errorf("clearing: grid check needs a Network placing every bid and a result of the same problem")
	}
	lim = lim.withDefaults()
	net := m.Network()
	if len(pMW) != len(net.Buses) || len(qMvar) != len(net.Buses) {
		return nil, fmt.Errorf("clearing: grid check: %d/%d injections for %d buses", len(pMW), len(qMvar), len(net.Buses))
	}
	before, err := m.Solve(pMW, qMvar, powerflow.Options{})
	if err != nil {
		return nil, fmt.Errorf("clearing: grid check: forecast power flow: %w", err)
	}
	p2 := append([]float64(nil), pMW...)
	q2 := append([]float64(nil), qMvar...)
	for b, nb := range p.Network.Bids {
		x := r.Accepted[b][t]
		if x == 0 {
			continue
		}
		if nb.Bus < 0 || nb.Bus >= len(net.Buses) {
			return nil, fmt.Errorf("clearing: grid check: bid %s on bus index %d, the grid has %d buses", bidName(p, b), nb.Bus, len(net.Buses))
		}
		d := float64(nb.Sign) * float64(x) * 1e-6
		if nb.Reactive {
			q2[nb.Bus] += d
		} else {
			p2[nb.Bus] += d
		}
	}
	after, err := m.SolveFrom(p2, q2, before, powerflow.Options{})
	if err != nil {
		return nil, fmt.Errorf("clearing: grid check: power flow of the cleared state: %w", err)
	}
	g := &GridCheck{Before: before, After: after}
	over := func(name string, v, limit, prev float64, tol float64, worst *float64) {
		allowed := math.Max(limit, prev)
		if ex := v - allowed; ex > 0 {
			*worst = math.Max(*worst, ex)
			if ex > tol {
				g.Violations = append(g.Violations, GridViolation{Element: name, Value: v, Limit: allowed, Excess: ex})
			}
		}
	}
	for i, l := range after.Lines {
		if l.Open || net.Lines[i].MaxIKA <= 0 && net.Lines[i].RatedMVA <= 0 {
			continue
		}
		over("line "+l.ID+" loading", l.LoadingPercent, lim.LineMaxPercent, before.Lines[i].LoadingPercent, tolLoading, &g.MaxLoadingExcess)
	}
	for i, tr := range after.Trafos {
		if tr.Open {
			continue
		}
		over("transformer "+tr.ID+" loading", tr.LoadingPercent, lim.TrafoMaxPercent, before.Trafos[i].LoadingPercent, tolLoading, &g.MaxLoadingExcess)
	}
	for i, b := range after.Buses {
		lo, hi := lim.band(m, i)
		over("bus "+b.ID+" voltage (upper)", b.VmPU, hi, before.Buses[i].VmPU, tolVoltage, &g.MaxVoltageExcess)
		// lower limit: mirror the values
		over("bus "+b.ID+" voltage (lower)", -b.VmPU, -lo, -before.Buses[i].VmPU, tolVoltage, &g.MaxVoltageExcess)
	}
	for i := range g.Violations {
		if v := &g.Violations[i]; v.Value < 0 {
			v.Value, v.Limit = -v.Value, -v.Limit
		}
	}
	return g, nil
}
