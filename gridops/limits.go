// Package gridops is what a DSO computes on its own grid for flexibility:
// operating states from forecasts and their limit violations, the
// flexibility needs that remove them, hosting capacity at a bus (the cap
// of a grid prequalification) and the traffic-light verdict on a requested
// change. It is a pure engine on top of grid and powerflow: no I/O of its
// own (the forecast readers take an io.Reader or fs.FS the caller opens),
// no store. See docs/GRID_OPERATIONS.md.
//
// Sign convention throughout: a change at a bus is a change of its net
// injection, "up" = more generation or less consumption (positive),
// "down" = less generation or more consumption. Active power in kW or MW,
// reactive in kvar or Mvar, as the field names say.
package gridops

import (
	"fmt"
	"math"

	"github.com/flexhub/flexhub/powerflow"
)

// Limits are the operating limits checked in every state.
type Limits struct {
	// VMinPU and VMaxPU are the voltage band of a bus that has none of its
	// own (grid.Bus.VMinPU/VMaxPU zero). Defaults 0.9 and 1.1 p.u., the
	// EN 50160 ±10 % band.
	VMinPU float64 `json:"vmin_pu"`
	VMaxPU float64 `json:"vmax_pu"`
	// OverrideBusBands applies VMinPU/VMaxPU to every bus, also those with
	// a band of their own (e.g. a stricter planning band of ±5 %).
	OverrideBusBands bool `json:"override_bus_bands"`
	// MaxLoadingPercent is the largest allowed line and transformer loading
	// (default 100 %).
	MaxLoadingPercent float64 `json:"max_loading_percent"`
}

// DefaultLimits are the EN 50160 band (a bus's own band wins) and 100 %
// loading.
func DefaultLimits() Limits { return Limits{VMinPU: 0.9, VMaxPU: 1.1, MaxLoadingPercent: 100} }

func (l Limits) withDefaults() (Limits, error) {
	if l.VMinPU == 0 {
		l.VMinPU = 0.9
	}
	if l.VMaxPU == 0 {
		l.VMaxPU = 1.1
	}
	if l.MaxLoadingPercent == 0 {
		l.MaxLoadingPercent = 100
	}
	switch {
	case !(l.VMinPU > 0.5 && l.VMinPU < l.VMaxPU && l.VMaxPU < 1.5):
		return l, fmt.Errorf("gridops: voltage band %v..%v p.u. is not a band within 0.5..1.5 p.u.", l.VMinPU, l.VMaxPU)
	case !(l.MaxLoadingPercent > 0 && l.MaxLoadingPercent <= 1000):
		return l, fmt.Errorf("gridops: maximum loading %v %% is not in (0, 1000] %%", l.MaxLoadingPercent)
	}
	return l, nil
}

// ConstraintKind names what a limit is on.
type ConstraintKind string

// The constraint kinds.
const (
	UnderVoltage ConstraintKind = "undervoltage" // bus voltage below its band
	OverVoltage  ConstraintKind = "overvoltage"  // bus voltage above its band
	LineLoading  ConstraintKind = "line"         // line loading above the limit
	TrafoLoading ConstraintKind = "trafo"        // transformer loading above the limit
	NoSolution   ConstraintKind = "no-solution"  // the power flow has no solution (voltage collapse)
)

// Constraint is one limit on one element.
type Constraint struct {
	Kind    ConstraintKind `json:"kind"`
	Element string         `json:"element"` // bus, line or transformer ID
}

func (c Constraint) String() string {
	switch c.Kind {
	case UnderVoltage, OverVoltage:
		return fmt.Sprintf("bus %s %s", c.Element, c.Kind)
	case LineLoading:
		return "line " + c.Element
	case TrafoLoading:
		return "trafo " + c.Element
	}
	return "power flow has no solution"
}

// Violation is a constraint broken in one state: Value beyond Limit
// (voltages in p.u., loadings in %).
type Violation struct {
	Constraint
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
}

// Excess is how far the value is beyond the limit (p.u. or percentage
// points), positive for a violation.
func (v Violation) Excess() float64 {
	if v.Kind == UnderVoltage {
		return v.Limit - v.Value
	}
	return v.Value - v.Limit
}

func (v Violation) String() string {
	switch v.Kind {
	case UnderVoltage, OverVoltage:
		return fmt.Sprintf("%s at %.4f p.u. (band limit %.3f)", v.Constraint, v.Value, v.Limit)
	}
	return fmt.Sprintf("%s at %.1f %% (limit %.0f %%)", v.Constraint, v.Value, v.Limit)
}

// cons indexes all constraints of a model: 2 per bus (under, over), one per
// line and per transformer, in that order.
type cons struct {
	nb, nl, nt int
}

func (c cons) n() int { return 2*c.nb + c.nl + c.nt }

func (c cons) constraint(a *Analyser, i int) Constraint {
	net := a.m.Network()
	switch {
	case i < c.nb:
		return Constraint{UnderVoltage, net.Buses[i].ID}
	case i < 2*c.nb:
		return Constraint{OverVoltage, net.Buses[i-c.nb].ID}
	case i < 2*c.nb+c.nl:
		return Constraint{LineLoading, net.Lines[i-2*c.nb].ID}
	}
	return Constraint{TrafoLoading, net.Trafos[i-2*c.nb-c.nl].ID}
}

// values returns per constraint the quantity g with g <= 0 meaning within
// the limit: Vmin - V, V - Vmax, loading - max.
func (a *Analyser) excesses(r *powerflow.Result) []float64 {
	c := a.c
	g := make([]float64, c.n())
	for i, b := range r.Buses {
		g[i] = a.vmin[i] - b.VmPU
		g[c.nb+i] = b.VmPU - a.vmax[i]
	}
	for i, l := range r.Lines {
		g[2*c.nb+i] = l.LoadingPercent - a.lim.MaxLoadingPercent
	}
	for i, l := range r.Trafos {
		g[2*c.nb+c.nl+i] = l.LoadingPercent - a.lim.MaxLoadingPercent
	}
	return g
}

// violation turns constraint i with excess g into a Violation.
func (a *Analyser) violation(i int, g float64) Violation {
	c := a.c.constraint(a, i)
	v := Violation{Constraint: c}
	switch {
	case i < a.c.nb:
		v.Limit, v.Value = a.vmin[i], a.vmin[i]-g
	case i < 2*a.c.nb:
		v.Limit, v.Value = a.vmax[i-a.c.nb], a.vmax[i-a.c.nb]+g
	default:
		v.Limit, v.Value = a.lim.MaxLoadingPercent, a.lim.MaxLoadingPercent+g
	}
	return v
}

// round keeps reported quantities readable and stable (0.001 kW = 1 W).
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
