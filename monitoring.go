package flexhub

import (
	"fmt"
	"math"
	"time"
)

// Live delivery monitoring: while an order runs, the resource's measured
// net power is compared with what was ordered, against a provisional
// baseline, per set-point interval. The settlement issue brings the full
// baseline methods; here the baseline is "meter before": the resource's
// average net power in the quarter hour before the order's first
// set-point (or before the order was created, when it was created after
// that: until then the resource ran unaffected), which is what fast
// products use and needs no history.
//
// Signs: net power is export minus import (W). An "up" order asks for
// more net export (less consumption or more generation) than the
// baseline, a "down" order for less. Delivered = net − baseline for up,
// baseline − net for down. A limitation order caps the net power in its
// direction (export for up, import for down) at the set-point.

// PowerSample is a measured average net power over [Start, Start+Dur).
type PowerSample struct {
	Start time.Time
	Dur   time.Duration
	Net   int64 // W, export minus import
}

// BaselineWindow is how far before BaselineAt the meter-before baseline
// looks.
const BaselineWindow = 15 * time.Minute

// MinDeliveryCoverage is how much of an interval's evaluated window must
// have measurements before a verdict (all of the window when shorter).
const MinDeliveryCoverage = 30 * time.Second

// BaselineAt is when the order started to affect the resource: its first
// set-point's start, or its creation when that came later.
func (o *ActivationOrder) BaselineAt() time.Time { return maxTime(o.First(), o.CreatedAt) }

// Delivery verdicts.
const (
	DeliveryPending  = "pending" // not enough measurements yet
	DeliveryOnTarget = "on_target"
	DeliveryUnder    = "under_delivery"
	DeliveryOver     = "over_delivery"
)

// DeliveryCheck is the verdict on one set-point interval so far.
type DeliveryCheck struct {
	Interval  time.Time     `json:"interval"`
	Ordered   int64         `json:"ordered" doc:"W (or var): the set-point; for a limit order the cap"`
	Delivered int64         `json:"delivered" doc:"W: measured change against the baseline (for a limit order: net power in the order's direction)"`
	Coverage  time.Duration `json:"coverage" doc:"how much of the evaluated window has measurements"`
	Verdict   string        `json:"verdict" enum:"pending,on_target,under_delivery,over_delivery"`
}

// Baseline returns the time-weighted average net power of the samples in
// the BaselineWindow before at, and false when there are none.
func Baseline(samples []PowerSample, at time.Time) (int64, bool) {
	from := at.Add(-BaselineWindow)
	var sum, dur float64
	for _, s := range samples {
		lo, hi := maxTime(s.Start, from), minTime(s.Start.Add(s.Dur), at)
		if !hi.After(lo) {
			continue
		}
		d := hi.Sub(lo).Seconds()
		sum += float64(s.Net) * d
		dur += d
	}
	if dur == 0 {
		return 0, false
	}
	return int64(math.Round(sum / dur)), true
}

// EvaluateDelivery compares the samples with an order's set-points up to
// now. In each interval the window evaluated starts after the product's
// full activation time (the resource may still be ramping before it, but
// at most half the interval), counted from the interval's start or the
// order's creation when later, and ends at now or the interval's end; a
// verdict needs MinDeliveryCoverage of measurements (or the whole window,
// when the interval leaves less). tolPct is the product's tolerance in percent of the
// set-point.
func EvaluateDelivery(o *ActivationOrder, baseline int64, samples []PowerSample, fullActivation time.Duration, tolPct int, now time.Time) []DeliveryCheck {
	var out []DeliveryCheck
	for _, sp := range o.Setpoints {
		if !now.After(sp.Start) || o.Type == OrderEnd {
			continue
		}
		begin := maxTime(sp.Start, o.CreatedAt)
		if !begin.Before(sp.End) {
			continue // over before the order existed
		}
		ramp := min(fullActivation, sp.End.Sub(begin)/2)
		from, to := begin.Add(ramp), minTime(now, sp.End)
		c := DeliveryCheck{Interval: sp.Start, Ordered: sp.Quantity, Verdict: DeliveryPending}
		if !to.After(from) {
			out = append(out, c)
			continue
		}
		var sum, dur float64
		for _, s := range samples {
			lo, hi := maxTime(s.Start, from), minTime(s.Start.Add(s.Dur), to)
			if !hi.After(lo) {
				continue
			}
			d := hi.Sub(lo).Seconds()
			sum += float64(s.Net) * d
			dur += d
		}
		c.Coverage = time.Duration(dur * float64(time.Second))
		if need := min(MinDeliveryCoverage, sp.End.Sub(from)); dur == 0 || c.Coverage < need {
			out = append(out, c)
			continue
		}
		avg := sum / dur
		var delivered float64
		switch {
		case o.Type == OrderLimit && o.Direction == "up":
			delivered = avg // export
		case o.Type == OrderLimit:
			delivered = -avg // import
		case o.Direction == "up":
			delivered = avg - float64(baseline)
		default:
			delivered = float64(baseline) - avg
		}
		c.Delivered = int64(math.Round(delivered))
		band := float64(sp.Quantity) * float64(tolPct) / 100
		switch {
		case o.Type == OrderLimit:
			if delivered > float64(sp.Quantity)+band {
				c.Verdict = DeliveryOver
			} else {
				c.Verdict = DeliveryOnTarget
			}
		case delivered < float64(sp.Quantity)-band:
			c.Verdict = DeliveryUnder
		case delivered > float64(sp.Quantity)+band:
			c.Verdict = DeliveryOver
		default:
			c.Verdict = DeliveryOnTarget
		}
		out = append(out, c)
	}
	return out
}

// DeliveryAlert turns a verdict into an alert text, or "" when on target
// or pending.
func DeliveryAlert(o *ActivationOrder, c DeliveryCheck, tolPct int) string {
	switch c.Verdict {
	case DeliveryUnder:
		return fmt.Sprintf("resource %s under-delivers on order %s from %s: %d %s measured against %d ordered (tolerance %d %%)",
			o.ResourceID, o.ID, c.Interval.Format(time.RFC3339), c.Delivered, o.Unit, c.Ordered, tolPct)
	case DeliveryOver:
		what := "ordered"
		if o.Type == OrderLimit {
			what = "allowed"
		}
		return fmt.Sprintf("resource %s over-delivers on order %s from %s: %d %s measured against %d %s (tolerance %d %%)",
			o.ResourceID, o.ID, c.Interval.Format(time.RFC3339), c.Delivered, o.Unit, c.Ordered, what, tolPct)
	}
	return ""
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
