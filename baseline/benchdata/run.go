package benchdata

import (
	"errors"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
)

// Method is an X-of-Y day-matching baseline the benchmark computes.
type Method struct {
	Name string
	X, Y int
}

// Methods are the benchmark's baselines: high 4 of 5 and 10 of 10, working
// days against weekends (baseline.DayTypeWeekday), default lookback.
var Methods = []Method{{"high4of5", 4, 5}, {"10of10", 10, 10}}

// Outcome is one resource's baseline by one method and its verification.
type Outcome struct {
	// Rule is set when there is no baseline (baseline.insufficient_history).
	Rule string `json:"rule,omitempty"`
	// Baseline per interval of the window, mWh.
	Baseline []int64 `json:"baseline,omitempty"`
	// Chosen are the X days averaged, most recent first.
	Chosen []baseline.Date `json:"chosen,omitempty"`
	// Verification: over the window's intervals with a reading (Measured
	// of them), MeasuredMWh is the metered energy and Delivered the sum of
	// baseline minus measured. Intervals without a reading are left out,
	// never filled in.
	Measured    int   `json:"measured"`
	MeasuredMWh int64 `json:"measured_mwh"`
	Delivered   int64 `json:"delivered_mwh"`
}

// Run computes every resource's baselines by every method for the event
// window, and verifies the event day's readings against them: out[m][r] is
// method m's outcome for resource r. It runs on one goroutine (as pandas
// does). A resource with too little history has an Outcome with its Rule;
// any other error stops the run.
func Run(d *Data, methods []Method) ([][]Outcome, error) {
	loc, err := d.Location()
	if err != nil {
		return nil, err
	}
	w, err := d.Window()
	if err != nil {
		return nil, err
	}
	out := make([][]Outcome, len(methods))
	for m := range methods {
		out[m] = make([]Outcome, d.Meta.Resources)
	}
	step := time.Duration(d.Meta.StepSeconds) * time.Second
	n := int(w.End.Sub(w.Start) / step)
	for r := range d.Meta.Resources {
		s := d.Series(r)
		excl := d.Excluded[r]
		from := int(w.Start.Sub(s.Start) / step)
		for m, meth := range methods {
			o := &out[m][r]
			res, err := baseline.DayMatch(s, w, baseline.DayMatching{
				X: meth.X, Y: meth.Y, DayType: baseline.DayTypeWeekday, Location: loc, Excluded: excl,
			})
			if err != nil {
				var e *flexhub.Error
				if errors.As(err, &e) && e.Rule == baseline.RuleInsufficientHistory {
					o.Rule = e.Rule
					continue
				}
				return nil, fmt.Errorf("resource %d, %s: %w", r, meth.Name, err)
			}
			o.Baseline = res.Values
			for _, day := range res.Days {
				if day.Used {
					o.Chosen = append(o.Chosen, day.Date)
				}
			}
			for i := range n {
				k := from + i
				if k < 0 || k >= len(s.Values) || s.Missing[k] {
					continue
				}
				o.Measured++
				o.MeasuredMWh += s.Values[k]
				o.Delivered += res.Values[i] - s.Values[k]
			}
		}
	}
	return out, nil
}
