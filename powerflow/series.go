package powerflow

import "fmt"

// Interval is the net injection per bus (MW, Mvar; generation positive;
// indexed like Network().Buses) for one interval of a time series.
type Interval struct {
	PMW   []float64
	QMvar []float64
}

// RunSeries solves the intervals in order (e.g. the 96 quarter-hours of a
// day), each starting from the previous interval's voltages. An interval
// that does not converge stops the run with an error naming it; no partial
// results are returned.
func (m *Model) RunSeries(intervals []Interval, opt Options) ([]*Result, error) {
	out := make([]*Result, len(intervals))
	var prev *Result
	for k, iv := range intervals {
		r, err := m.SolveFrom(iv.PMW, iv.QMvar, prev, opt)
		if err != nil {
			return nil, fmt.Errorf("powerflow: interval %d of %d: %w", k, len(intervals), err)
		}
		out[k], prev = r, r
	}
	return out, nil
}
