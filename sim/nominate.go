package sim

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/flexhub/flexhub"
)

// Nominated baselines: for a product whose baseline is a nominated
// schedule, the FSP declares before gate closure what each resource would
// take from the grid without activation (POST /v1/nominations,
// docs/BASELINES.md). A simulated FSP knows that exactly: it is what its
// units' meters read when no order runs (Unit.Baseline: the household's
// replayed load, a heat pump at its natural share of it, a battery idle),
// so its nomination is an honest forecast, made from the same model that
// later runs the units.

// Forecast returns the resource's metered net import without any order,
// in W, per step from start to end (a unit's own meter, a group's the sum
// of its members'): the mean of Unit.Baseline over each step, sampled at
// the middle of every second of it, as the meter stream averages.
func (f *Fleet) Forecast(resourceID string, start, end time.Time, step time.Duration) ([]int64, error) {
	if step <= 0 || step%time.Second != 0 || !start.Before(end) || end.Sub(start)%step != 0 {
		return nil, fmt.Errorf("forecast of %s: %s to %s is not whole steps of %s", resourceID, start.Format(time.RFC3339), end.Format(time.RFC3339), step)
	}
	var units []*Unit
	if u := f.byID[resourceID]; u != nil {
		units = []*Unit{u}
	} else if g := f.groups[resourceID]; g != nil {
		units = g.members
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("forecast of %s: the resource is not simulated here (or has no simulated member)", resourceID)
	}
	n := int(end.Sub(start) / step)
	per := int(step / time.Second)
	out := make([]int64, 0, n)
	for i := range n {
		from := start.Add(time.Duration(i) * step)
		var sum float64
		for s := range per {
			t := from.Add(time.Duration(s)*time.Second + time.Second/2)
			for _, u := range units {
				sum += u.Baseline(t) // W, + export
			}
		}
		out = append(out, int64(math.Round(-sum/float64(per))))
	}
	return out, nil
}

// Nominate sends the FSP's forecast of the resource over [start, end) as
// its nominated baseline for the market session (POST /v1/nominations,
// as the FSP). It returns what it sent and flexhub's answer; a refusal
// (an implausible schedule, a closed gate) is an *HTTPError saying why.
func (f *FSP) Nominate(ctx context.Context, sessionID, resourceID string, start, end time.Time, step time.Duration) (flexhub.NominationSpec, *flexhub.Nomination, error) {
	spec := flexhub.NominationSpec{ResourceID: resourceID, SessionID: sessionID}
	w, err := f.Fleet.Forecast(resourceID, start, end, step)
	if err != nil {
		return spec, nil, err
	}
	for i, v := range w {
		iv := flexhub.NominatedIntervalIn{Start: start.Add(time.Duration(i) * step).UTC(), End: start.Add(time.Duration(i+1) * step).UTC(),
			Quantity: flexhub.Power{Value: float64(v), Unit: "W"}}
		if v < 0 {
			iv.Quantity.Value, iv.Flow = float64(-v), flexhub.FlowExport
		}
		spec.Schedule = append(spec.Schedule, iv)
	}
	var n flexhub.Nomination
	if err := f.api.do(ctx, http.MethodPost, "/v1/nominations", spec, &n); err != nil {
		return spec, nil, err
	}
	return spec, &n, nil
}
