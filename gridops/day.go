package gridops

import (
	"fmt"
	"time"

	"github.com/flexhub/flexhub/powerflow"
)

// Forecast is a day (or any run) of forecast net injections per bus:
// interval k covers [Start+k·Step, Start+(k+1)·Step).
type Forecast struct {
	Start     time.Time
	Step      time.Duration
	Intervals []powerflow.Interval // MW, Mvar per bus, generation positive
}

// IntervalStart is the start of interval k.
func (f Forecast) IntervalStart(k int) time.Time { return f.Start.Add(time.Duration(k) * f.Step).UTC() }

// Day solves every interval of the forecast as a time series (each
// interval warm-started from the previous one) and returns its operating
// states. A forecast whose vectors do not match the grid's buses is an
// error naming the interval; an interval whose power flow does not
// converge stops the run with powerflow's error (iterations, mismatch and
// bus) and no states at all.
func (a *Analyser) Day(f Forecast) ([]*State, error) {
	nb := len(a.m.Network().Buses)
	if len(f.Intervals) == 0 {
		return nil, fmt.Errorf("gridops: forecast has no intervals")
	}
	if f.Step <= 0 {
		return nil, fmt.Errorf("gridops: forecast step %v is not positive", f.Step)
	}
	for k, iv := range f.Intervals {
		if len(iv.PMW) != nb || len(iv.QMvar) != nb {
			return nil, fmt.Errorf("gridops: forecast interval %d (%s): %d P and %d Q values for the grid's %d buses",
				k, f.IntervalStart(k).Format(time.RFC3339), len(iv.PMW), len(iv.QMvar), nb)
		}
	}
	res, err := a.m.RunSeries(f.Intervals, a.opt)
	if err != nil {
		return nil, fmt.Errorf("gridops: forecast from %s: %w", f.Start.UTC().Format(time.RFC3339), err)
	}
	out := make([]*State, len(res))
	for k, r := range res {
		out[k] = a.state(k, f.IntervalStart(k), f.IntervalStart(k+1), f.Intervals[k].PMW, f.Intervals[k].QMvar, r)
	}
	return out, nil
}

// IntervalSummary is one interval's extremes and violations.
type IntervalSummary struct {
	Index             int         `json:"index"`
	Start             time.Time   `json:"start"`
	MinVmPU           float64     `json:"min_vm_pu"`
	MinVmBus          string      `json:"min_vm_bus"`
	MaxVmPU           float64     `json:"max_vm_pu"`
	MaxVmBus          string      `json:"max_vm_bus"`
	MaxLoadingPercent float64     `json:"max_loading_percent"`
	MaxLoadingElement string      `json:"max_loading_element"`
	LoadMW            float64     `json:"load_mw"` // net consumption of all buses (negative = net export)
	Violations        []Violation `json:"violations"`
}

// Summary reports the state's extremes and violations.
func (s *State) Summary() IntervalSummary {
	r := s.Result
	out := IntervalSummary{Index: s.Index, Start: s.Start, MinVmPU: 10, Violations: s.Violations()}
	for _, b := range r.Buses {
		if b.VmPU < out.MinVmPU {
			out.MinVmPU, out.MinVmBus = b.VmPU, b.ID
		}
		if b.VmPU > out.MaxVmPU {
			out.MaxVmPU, out.MaxVmBus = b.VmPU, b.ID
		}
	}
	for _, l := range r.Lines {
		if l.LoadingPercent > out.MaxLoadingPercent {
			out.MaxLoadingPercent, out.MaxLoadingElement = l.LoadingPercent, "line "+l.ID
		}
	}
	for _, t := range r.Trafos {
		if t.LoadingPercent > out.MaxLoadingPercent {
			out.MaxLoadingPercent, out.MaxLoadingElement = t.LoadingPercent, "trafo "+t.ID
		}
	}
	for _, p := range s.PMW {
		out.LoadMW -= p
	}
	return out
}
