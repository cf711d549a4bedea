// Package settlement turns activations into money and imbalance volumes:
// it verifies what each order delivered against the product's baseline,
// prices the result into FSP statements, and splits the moved energy
// over the BRPs of the metering points involved (docs/SETTLEMENT.md). It
// is pure — the app layer reads the orders, awards and meter data and
// stores what comes out — and exact: energies are integer milli-units,
// money integer ten-thousandths, every rounding is written down.
package settlement

import (
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
)

// OrderInput is what verifying one activation order needs.
type OrderInput struct {
	Order   *flexhub.ActivationOrder
	Product *flexhub.Product
	// Series is the resource's net import (import − export) energy per
	// market time unit, in milli-units (mWh; mvarh for a reactive
	// product), covering the event and, for day matching, the history
	// before it. Missing marks intervals without complete data.
	Series *baseline.Series
	// Nominated is the FSP's nominated baseline over the event
	// (nominated_schedule products), in the same units.
	Nominated *baseline.Series
	// EventDays are the resource's other activation days (product time
	// zone): never in its day-matching baseline.
	EventDays []baseline.Date
	// EndedAt, when set, is when an end order stopped the order:
	// intervals from then on are not verified.
	EndedAt time.Time
}

// Verify computes the verification of one activate order: per market
// time unit its ordered energy, baseline, measured energy, delivered
// energy and verdict; the order's totals and verdict. ID, RunID and
// CreatedAt are left for the caller.
func Verify(in OrderInput) (*flexhub.Verification, error) {
	o, p := in.Order, in.Product
	if o.Type != flexhub.OrderActivate {
		return nil, fmt.Errorf("order %s is a %s order: only activate orders are verified", o.ID, o.Type)
	}
	step, err := p.TimeResolution.Parse("time_resolution")
	if err != nil || step <= 0 {
		step = 15 * time.Minute
	}
	if in.Series == nil || in.Series.Step != step {
		return nil, fmt.Errorf("order %s: the meter series must be in the product's %s intervals", o.ID, step)
	}
	params := p.BaselineParams()
	v := &flexhub.Verification{
		OrderID: o.ID, ObligationID: o.ObligationID, ResourceID: o.ResourceID, FSPID: o.FSPID,
		SystemOperatorID: o.SystemOperatorID, ProductID: o.ProductID, Direction: o.Direction,
		Unit: "mWh", BaselineMethod: params.Method, TolerancePct: p.TolerancePct(), MissingData: params.MissingData,
	}
	if p.PowerType == "reactive" {
		v.Unit = "mvarh"
	}

	// The order's market time units, with their ordered energy.
	for i, sp := range o.Setpoints {
		if sp.Start.UnixNano()%int64(step) != 0 || sp.End.UnixNano()%int64(step) != 0 {
			return nil, fmt.Errorf("order %s: set-point %d (%s to %s) is not on the %s grid", o.ID, i, sp.Start.Format(time.RFC3339), sp.End.Format(time.RFC3339), step)
		}
		for t := sp.Start; t.Before(sp.End); t = t.Add(step) {
			if !in.EndedAt.IsZero() && !t.Before(in.EndedAt) {
				break
			}
			v.Intervals = append(v.Intervals, flexhub.VerifiedInterval{Start: t.UTC(), End: t.Add(step).UTC(),
				Ordered: energyOf(sp.Quantity, step)})
		}
	}
	if len(v.Intervals) == 0 {
		v.Verdict = flexhub.VerifyNoData
		v.BaselineNote = "the order was ended before its first interval"
		return v, nil
	}

	w := baseline.Window{Start: v.Intervals[0].Start, End: v.Intervals[len(v.Intervals)-1].End}
	base, note := baselineOf(in, params, w)
	v.BaselineNote = note
	if base != nil {
		for _, d := range base.Days {
			if d.Used {
				v.BaselineDays = append(v.BaselineDays, d.Date.String())
			}
		}
	}
	tol := int64(v.TolerancePct)
	var counted, measuredCounted, noBase int
	for i := range v.Intervals {
		iv := &v.Intervals[i]
		var measured []int64
		var ok bool
		if measured, ok = in.Series.Window(iv.Start, 1); ok {
			m := measured[0]
			iv.Measured = &m
		}
		var b int64
		haveBase := false
		if base != nil {
			k := int(iv.Start.Sub(w.Start) / step)
			b, haveBase = base.Values[k], true
			iv.Baseline = &b
		}
		switch {
		case !haveBase:
			iv.Verdict, iv.Excluded = flexhub.VerifyNoBaseline, true
			noBase++
			continue
		case iv.Measured == nil:
			iv.Verdict = flexhub.VerifyNoData
			if params.MissingData == flexhub.MissingExcluded {
				iv.Excluded = true
				continue
			}
			iv.Delivered = 0 // nothing is known to have been delivered
		default:
			iv.Delivered = b - *iv.Measured
			if o.Direction == "down" {
				iv.Delivered = -iv.Delivered
			}
			iv.Verdict = verdict(iv.Ordered, iv.Delivered, tol)
			measuredCounted++
		}
		counted++
		v.Ordered += iv.Ordered
		v.Delivered += iv.Delivered
	}
	switch {
	case noBase == len(v.Intervals):
		v.Verdict = flexhub.VerifyNoBaseline
		for _, iv := range v.Intervals {
			v.Ordered += iv.Ordered
		}
	case measuredCounted == 0:
		v.Verdict = flexhub.VerifyNoData
	default:
		v.Verdict = verdict(v.Ordered, v.Delivered, tol)
	}
	return v, nil
}

// verdict compares delivered with ordered within ±tol %.
func verdict(ordered, delivered, tol int64) string {
	switch {
	case delivered*100 < ordered*(100-tol):
		return flexhub.VerifyUnder
	case delivered*100 > ordered*(100+tol):
		return flexhub.VerifyOver
	}
	return flexhub.VerifyOnTarget
}

// energyOf is q W (or var) held for d, in mWh (mvarh), rounded half away
// from zero.
func energyOf(q int64, d time.Duration) int64 {
	return baseline.MulDivRound(q, int64(d/time.Millisecond), 3600)
}

// baselineOf computes the product's baseline over w, or nil and why not.
func baselineOf(in OrderInput, p flexhub.BaselineParams, w baseline.Window) (*baseline.Result, string) {
	switch p.Method {
	case "none":
		n := int(w.End.Sub(w.Start) / in.Series.Step)
		return &baseline.Result{Window: w, Step: in.Series.Step, Values: make([]int64, n)}, "no baseline: delivered is the net export measured"
	case "meter_before":
		r, err := baseline.MeterBefore(in.Series, w, p.MeterBeforeIntervals)
		if err != nil {
			return nil, flexhub.ErrorMessage(err)
		}
		return r, fmt.Sprintf("meter before: the mean of the %d intervals before the activation", p.MeterBeforeIntervals)
	case "nominated_schedule":
		if in.Nominated == nil {
			return nil, "no schedule was nominated before gate closure"
		}
		n := int(w.End.Sub(w.Start) / in.Series.Step)
		vals, ok := in.Nominated.Window(w.Start, n)
		if !ok {
			return nil, "the nominated schedule does not cover the activation"
		}
		return &baseline.Result{Window: w, Step: in.Series.Step, Values: append([]int64(nil), vals...)}, "the FSP's nominated schedule"
	default: // x_of_y, rolling_average
		holidays := make([]baseline.Date, 0, len(p.Holidays))
		for _, h := range p.Holidays {
			if d, err := baseline.ParseDate(h); err == nil {
				holidays = append(holidays, d)
			}
		}
		dm := baseline.DayMatching{X: p.X, Y: p.Y, DayType: p.DayType, Location: p.Location, Holidays: holidays,
			Excluded: in.EventDays, Lookback: p.LookbackDays}
		if p.Adjustment != "none" {
			dm.Adjustment = baseline.Adjustment{Kind: p.Adjustment, Length: p.AdjustmentWindow, Gap: p.AdjustmentGap, CapPct: p.AdjustmentCapPct}
		}
		r, err := baseline.DayMatch(in.Series, w, dm)
		if err != nil {
			return nil, flexhub.ErrorMessage(err)
		}
		note := fmt.Sprintf("%d of %d days", p.X, p.Y)
		if p.X < p.Y {
			note = "high " + note
		}
		switch {
		case r.Den != 0:
			note += fmt.Sprintf("; multiplicative same-day adjustment ×%d/%d", r.Num, r.Den)
		case p.Adjustment == baseline.AdjustAdditive:
			note += fmt.Sprintf("; additive same-day adjustment %+d per interval", r.Shift)
		}
		if r.Capped {
			note += fmt.Sprintf(" (capped at %d %%)", p.AdjustmentCapPct)
		}
		return r, note
	}
}
