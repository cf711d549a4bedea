package settlement

import (
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
)

// Flow is one stored meter series of a resource with its readings.
type Flow struct {
	Key    flexhub.MeterSeriesKey
	Points []flexhub.MeterPoint // current values, by start
}

// PickFlows chooses, of a resource's series, the ones settlement reads:
// per flow direction (import, export) one series of the wanted kind —
// energy if there is one, else power — with the coarsest resolution
// (fewest readings; every resolution divides the market time unit).
// reactive picks reactive energy/power instead of active.
func PickFlows(series []flexhub.MeterSeries, reactive bool) []flexhub.MeterSeriesKey {
	energy, power := flexhub.QuantityActiveEnergy, flexhub.QuantityActivePower
	if reactive {
		energy, power = flexhub.QuantityReactiveEnergy, flexhub.QuantityReactivePower
	}
	var out []flexhub.MeterSeriesKey
	for _, flow := range []string{flexhub.FlowImport, flexhub.FlowExport} {
		var best *flexhub.MeterSeriesKey
		rank := func(k flexhub.MeterSeriesKey) int {
			if k.Quantity == energy {
				return 2
			}
			return 1
		}
		for i := range series {
			k := series[i].MeterSeriesKey
			if k.Flow != flow || (k.Quantity != energy && k.Quantity != power) {
				continue
			}
			if best == nil || rank(k) > rank(*best) || rank(k) == rank(*best) && k.Resolution > best.Resolution {
				kk := k
				best = &kk
			}
		}
		if best != nil {
			out = append(out, *best)
		}
	}
	return out
}

// NetSeries sums flows into net import energy (import − export) per
// step over [from, to): energies are added as they are, powers (mW, mvar)
// are summed per step and become energy over their resolution once per
// step (mWh, mvarh, rounded half away from zero: a step of 900 1-second
// readings is rounded once, not 900 times). An interval is complete only
// when every flow has a reading for every part of it; incomplete
// intervals are marked missing, never filled in. A flow absent altogether
// counts as zero (a consumer without export has no export series).
func NetSeries(flows []Flow, from, to time.Time, step time.Duration) (*baseline.Series, error) {
	if step <= 0 || !to.After(from) || from.UnixNano()%int64(step) != 0 || to.UnixNano()%int64(step) != 0 {
		return nil, fmt.Errorf("net series: %s to %s is not whole %s intervals", from.Format(time.RFC3339), to.Format(time.RFC3339), step)
	}
	n := int(to.Sub(from) / step)
	s := &baseline.Series{Start: from, Step: step, Values: make([]int64, n), Missing: make([]bool, n)}
	lo, hi, st := from.Unix(), to.Unix(), int64(step/time.Second)
	count := make([]int32, n)
	var sum []int64
	for _, f := range flows {
		res := f.Key.Resolution
		if res <= 0 || step%res != 0 || res%time.Second != 0 {
			return nil, fmt.Errorf("net series: a %s series does not divide %s intervals", res, step)
		}
		per := int32(step / res)
		clear(count)
		sign := int64(1)
		if f.Key.Flow == flexhub.FlowExport {
			sign = -1
		}
		power := f.Key.Quantity == flexhub.QuantityActivePower || f.Key.Quantity == flexhub.QuantityReactivePower
		if power {
			if sum == nil {
				sum = make([]int64, n)
			}
			clear(sum)
		}
		for _, p := range f.Points {
			if p.Start < lo || p.Start >= hi {
				continue
			}
			i := (p.Start - lo) / st
			if power {
				sum[i] += p.Value
			} else {
				s.Values[i] += sign * p.Value
			}
			count[i]++
		}
		for i := range count {
			if count[i] != per {
				s.Missing[i] = true
			}
			if power {
				// Σ mW over readings of res seconds: mW·s / 3600 = mWh.
				s.Values[i] += sign * baseline.MulDivRound(sum[i], int64(res/time.Second), 3600)
			}
		}
	}
	if len(flows) == 0 {
		for i := range s.Missing {
			s.Missing[i] = true
		}
	}
	return s, nil
}
