package baseline

import (
	"fmt"
	"slices"
	"time"

	"github.com/flexhub/flexhub"
)

// Day types: which earlier days count as "the same kind of day" as the
// event day.
const (
	// DayTypeWeekday splits working days (Monday to Friday, not a
	// holiday) from the rest (Saturday, Sunday, holidays).
	DayTypeWeekday = "weekday_weekend"
	// DayTypeSameWeekday matches only the same day of the week (a holiday
	// matches only holidays).
	DayTypeSameWeekday = "day_of_week"
	// DayTypeAny matches every day.
	DayTypeAny = "any"
)

// Adjustment kinds.
const (
	AdjustNone           = "none"
	AdjustAdditive       = "additive"
	AdjustMultiplicative = "multiplicative"
)

// DayMatching are the parameters of an X-of-Y baseline: from the Y most
// recent eligible days before the event day, the X with the highest
// consumption in the event window, averaged interval by interval. High
// 4-of-5 is X=4, Y=5; 10-of-10 is X=Y=10.
type DayMatching struct {
	X, Y int
	// DayType is one of the DayType constants; DayTypeWeekday when empty.
	DayType string
	// Location is the product's time zone: days, day types and the
	// wall-clock time of the window are read in it. UTC when nil.
	Location *time.Location
	// Holidays count as non-working days.
	Holidays []Date
	// Excluded days are never eligible: the resource's own event days
	// (its baseline would count the activation itself).
	Excluded []Date
	// Lookback bounds how many days before the event day are searched for
	// Y eligible ones; 3·Y+14 when zero.
	Lookback int
	// Adjustment is applied on top of the averaged days.
	Adjustment Adjustment
}

// Adjustment is a same-day adjustment: the event day's own consumption in
// a window that ends before the event, against the baseline's in the same
// window, scales or shifts the baseline.
type Adjustment struct {
	// Kind is AdjustNone (or empty), AdjustAdditive or AdjustMultiplicative.
	Kind string
	// Length of the adjustment window, and Gap between its end and the
	// event's start (so that pre-cooling or a notified customer's early
	// response does not leak into it).
	Length, Gap time.Duration
	// CapPct bounds the adjustment: a multiplicative factor stays within
	// [1-CapPct/100, 1+CapPct/100]; an additive shift within ±CapPct % of
	// the baseline's mean interval in the adjustment window. 0 leaves an
	// additive adjustment uncapped; a multiplicative one needs a cap.
	CapPct int
}

// Day is one earlier day the method looked at, and what became of it.
type Day struct {
	Date Date `json:"date"`
	// Energy in the event window, mWh (when it had complete data there).
	Energy int64 `json:"energy_mwh"`
	// Used: one of the X days averaged. Otherwise Reason says why not.
	Used   bool   `json:"used"`
	Reason string `json:"reason,omitempty"`
}

// Reasons a day is not used.
const (
	ReasonDayType    = "other day type"
	ReasonExcluded   = "event day"
	ReasonIncomplete = "incomplete data"
	ReasonNoClock    = "window's clock time does not exist that day"
	ReasonLow        = "not among the X highest"
)

// Result is a baseline over an event window.
type Result struct {
	Window Window        `json:"window"`
	Step   time.Duration `json:"step"`
	// Values are the baseline energies (mWh) of the window's intervals.
	Values []int64 `json:"values_mwh"`
	// Days are the earlier days examined, most recent first (day matching).
	Days []Day `json:"days,omitempty"`
	// Adjustment applied: the additive shift per interval (mWh), or the
	// multiplicative factor as Num/Den; Capped when the cap bound it.
	Shift    int64 `json:"shift_mwh,omitempty"`
	Num, Den int64 `json:"-"`
	Capped   bool  `json:"capped,omitempty"`
}

func (p *DayMatching) check() error {
	if p.X < 1 {
		return flexhub.FieldErrorf("x", "X must be at least 1, not %d", p.X)
	}
	if p.Y < p.X {
		return flexhub.FieldErrorf("y", "X of Y needs X <= Y: %d of %d", p.X, p.Y)
	}
	switch p.DayType {
	case "", DayTypeWeekday, DayTypeSameWeekday, DayTypeAny:
	default:
		return flexhub.FieldErrorf("day_type", "%q is not a day type: use %s, %s or %s", p.DayType, DayTypeWeekday, DayTypeSameWeekday, DayTypeAny)
	}
	if p.Lookback < 0 {
		return flexhub.FieldErrorf("lookback", "the lookback must not be negative")
	}
	if p.Lookback != 0 && p.Lookback < p.Y {
		return flexhub.FieldErrorf("lookback", "a lookback of %d days cannot hold %d eligible days", p.Lookback, p.Y)
	}
	return p.Adjustment.check()
}

func (a *Adjustment) check() error {
	switch a.Kind {
	case "", AdjustNone:
		return nil
	case AdjustAdditive, AdjustMultiplicative:
	default:
		return flexhub.FieldErrorf("adjustment.kind", "%q is not an adjustment: use %s, %s or %s", a.Kind, AdjustNone, AdjustAdditive, AdjustMultiplicative)
	}
	if a.Length <= 0 {
		return flexhub.FieldErrorf("adjustment.length", "the adjustment window is empty")
	}
	if a.Gap < 0 {
		return flexhub.FieldErrorf("adjustment.gap", "the gap before the event must not be negative")
	}
	if a.CapPct < 0 || a.CapPct > 100 {
		return flexhub.FieldErrorf("adjustment.cap_pct", "the cap is a percentage from 0 to 100, not %d", a.CapPct)
	}
	if a.Kind == AdjustMultiplicative && a.CapPct == 0 {
		return flexhub.FieldErrorf("adjustment.cap_pct", "a multiplicative adjustment needs a cap (e.g. 20 for ±20 %%)")
	}
	return nil
}

func (a *Adjustment) on() bool { return a.Kind == AdjustAdditive || a.Kind == AdjustMultiplicative }

// dayClass is the key two days must share to be of the same type.
func (p *DayMatching) dayClass(d Date, holidays map[Date]bool) int {
	switch p.DayType {
	case DayTypeAny:
		return 0
	case DayTypeSameWeekday:
		if holidays[d] {
			return 7
		}
		return int(d.Weekday())
	default:
		wd := d.Weekday()
		if holidays[d] || wd == time.Saturday || wd == time.Sunday {
			return 1
		}
		return 0
	}
}

// RuleInsufficientHistory is the rule of a day-matching baseline that found
// fewer than Y eligible days.
const RuleInsufficientHistory = "baseline.insufficient_history"

// DayMatch computes the X-of-Y baseline of window w from s, with the
// adjustment p names. Every interval of w must lie on s's grid. Earlier
// days are matched by wall-clock time in p.Location: on a day in winter
// time the window is the same clock hours as on a summer event day, not
// the same UTC hours. A day is eligible when it has the event day's type,
// is not excluded, the window's start clock time exists on it, and it has
// complete data in the window (and in the adjustment window, when there
// is one). Ties in consumption go to the more recent day.
func DayMatch(s *Series, w Window, p DayMatching) (*Result, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	n, err := w.intervals(s.Step)
	if err != nil {
		return nil, err
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	lookback := p.Lookback
	if lookback == 0 {
		lookback = 3*p.Y + 14
	}
	holidays := make(map[Date]bool, len(p.Holidays))
	for _, h := range p.Holidays {
		holidays[h] = true
	}
	excluded := make(map[Date]bool, len(p.Excluded))
	for _, e := range p.Excluded {
		excluded[e] = true
	}
	adj := p.Adjustment
	eventDay := DateOf(w.Start, loc)
	clock := clockOf(w.Start, loc)
	var adjN int
	if adj.on() {
		if adj.Length%s.Step != 0 || adj.Gap%s.Step != 0 {
			return nil, flexhub.FieldErrorf("adjustment", "the adjustment window (%s, %s before the event) is not on the %s interval grid", adj.Length, adj.Gap, s.Step)
		}
		adjN = int(adj.Length / s.Step)
	}
	class := p.dayClass(eventDay, holidays)

	type cand struct {
		day    int // index in res.Days
		vals   []int64
		adj    []int64
		energy int64
	}
	res := &Result{Window: w, Step: s.Step}
	var cands []cand
	for back := 1; back <= lookback && len(cands) < p.Y; back++ {
		d := eventDay.AddDays(-back)
		day := Day{Date: d}
		start, ok := d.at(clock, loc)
		switch {
		case p.dayClass(d, holidays) != class:
			day.Reason = ReasonDayType
		case excluded[d]:
			day.Reason = ReasonExcluded
		case !ok:
			day.Reason = ReasonNoClock
		}
		if day.Reason != "" {
			res.Days = append(res.Days, day)
			continue
		}
		vals, ok := s.window(start, n)
		var adjVals []int64
		if ok && adj.on() {
			adjVals, ok = s.window(start.Add(-adj.Gap-adj.Length), adjN)
		}
		if !ok {
			day.Reason = ReasonIncomplete
			res.Days = append(res.Days, day)
			continue
		}
		day.Energy = sum(vals)
		res.Days = append(res.Days, day)
		cands = append(cands, cand{day: len(res.Days) - 1, vals: vals, adj: adjVals, energy: day.Energy})
	}
	if len(cands) < p.Y {
		return res, flexhub.RuleErrorf(flexhub.EInvalid, RuleInsufficientHistory, "",
			"only %d eligible days (same day type, not an event day, complete data) in the %d days before %s; %d of %d needs %d",
			len(cands), lookback, eventDay, p.X, p.Y, p.Y)
	}
	// The X highest; the stable sort keeps the more recent day first on a tie.
	slices.SortStableFunc(cands, func(a, b cand) int {
		switch {
		case a.energy > b.energy:
			return -1
		case a.energy < b.energy:
			return 1
		}
		return 0
	})
	for _, c := range cands[p.X:] {
		res.Days[c.day].Reason = ReasonLow
	}
	chosen := cands[:p.X]
	res.Values = make([]int64, n)
	for i := range n {
		var t int64
		for _, c := range chosen {
			t += c.vals[i]
		}
		res.Values[i] = divRound(t, int64(p.X))
	}
	for _, c := range chosen {
		res.Days[c.day].Used = true
	}
	if !adj.on() {
		return res, nil
	}

	// Same-day adjustment: the event day's actual energy in the adjustment
	// window against the chosen days' average there.
	actual, ok := s.window(w.Start.Add(-adj.Gap-adj.Length), adjN)
	if !ok {
		return res, flexhub.RuleErrorf(flexhub.EInvalid, RuleInsufficientHistory, "adjustment",
			"the event day has incomplete data in the adjustment window %s to %s",
			w.Start.Add(-adj.Gap-adj.Length).UTC().Format(time.RFC3339), w.Start.Add(-adj.Gap).UTC().Format(time.RFC3339))
	}
	var baseAdj int64 // sum over the chosen days and the window, X times the average's sum
	for _, c := range chosen {
		baseAdj += sum(c.adj)
	}
	actualAdj := sum(actual) * int64(p.X) // on the same scale as baseAdj
	capPct := int64(adj.CapPct)
	switch adj.Kind {
	case AdjustAdditive:
		// shift per interval = (actual - baseline) / intervals, both on
		// the X scale; the cap is CapPct % of the baseline's mean there
		diff := actualAdj - baseAdj
		den := int64(p.X) * int64(adjN)
		res.Shift = divRound(diff, den)
		if limit := abs(baseAdj) * capPct; capPct > 0 && abs(diff)*100 > limit {
			res.Capped = true
			res.Shift = divRound(limit, 100*den)
			if diff < 0 {
				res.Shift = -res.Shift
			}
		}
		for i := range res.Values {
			res.Values[i] += res.Shift
		}
	case AdjustMultiplicative:
		num, den := actualAdj, baseAdj
		if den <= 0 {
			// nothing consumed on the chosen days in the window: no ratio
			num, den = 1, 1
		} else {
			lo, hi := 100-capPct, 100+capPct
			if num*100 > den*hi {
				num, den, res.Capped = hi, 100, true
			} else if num*100 < den*lo {
				num, den, res.Capped = lo, 100, true
			}
		}
		res.Num, res.Den = num, den
		for i, v := range res.Values {
			res.Values[i] = mulDivRound(v, num, den)
		}
	}
	return res, nil
}

// MeterBefore is the meter-before baseline: the mean of the n intervals
// just before the window's start, held for every interval of the window.
// All n must have data.
func MeterBefore(s *Series, w Window, n int) (*Result, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, flexhub.FieldErrorf("intervals", "meter before needs at least one interval before the event")
	}
	k, err := w.intervals(s.Step)
	if err != nil {
		return nil, err
	}
	from := w.Start.Add(-time.Duration(n) * s.Step)
	vals, ok := s.window(from, n)
	if !ok {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, RuleInsufficientHistory, "",
			"no complete meter data in the %s before %s", time.Duration(n)*s.Step, w.Start.UTC().Format(time.RFC3339))
	}
	level := divRound(sum(vals), int64(n))
	res := &Result{Window: w, Step: s.Step, Values: make([]int64, k)}
	for i := range res.Values {
		res.Values[i] = level
	}
	return res, nil
}

// Rule of an implausible nominated schedule.
const RuleImplausibleNomination = "baseline.implausible_nomination"

// CheckNomination compares an FSP's nominated baseline with a reference
// computed from its history (e.g. DayMatch over the same window): the
// nomination's total energy must lie within ±tolPct % of the reference's,
// and no interval may exceed maxRatio times the reference's largest
// interval (a nomination inflated in one interval to be "delivered"
// later). A zero maxRatio skips the interval check.
func CheckNomination(nominated, reference []int64, tolPct, maxRatio int) error {
	if len(nominated) != len(reference) {
		return flexhub.FieldErrorf("schedule", "the nominated schedule has %d intervals, the window %d", len(nominated), len(reference))
	}
	if tolPct < 0 {
		return flexhub.FieldErrorf("tolerance_pct", "the tolerance must not be negative")
	}
	nt, rt := sum(nominated), sum(reference)
	if abs(nt-rt)*100 > abs(rt)*int64(tolPct) {
		return flexhub.RuleErrorf(flexhub.EInvalid, RuleImplausibleNomination, "schedule",
			"the nominated schedule totals %s, %s its recent history (%s); at most ±%d %% is plausible",
			fmtMWh(nt), pctDiff(nt, rt), fmtMWh(rt), tolPct)
	}
	if maxRatio > 0 {
		peak := slices.Max(append([]int64{0}, reference...))
		for i, v := range nominated {
			if v > peak*int64(maxRatio) {
				return flexhub.RuleErrorf(flexhub.EInvalid, RuleImplausibleNomination, fmt.Sprintf("schedule[%d]", i),
					"interval %d nominates %s, more than %d times the largest interval of its recent history (%s)", i, fmtMWh(v), maxRatio, fmtMWh(peak))
			}
		}
	}
	return nil
}

func sum(v []int64) int64 {
	var t int64
	for _, x := range v {
		t += x
	}
	return t
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// fmtMWh renders milliwatt-hours as kWh with three decimals (exact: 1 Wh).
func fmtMWh(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	wh := divRound(v, 1000)
	return fmt.Sprintf("%s%d.%03d kWh", sign, wh/1000, wh%1000)
}

func pctDiff(a, ref int64) string {
	if ref == 0 {
		return "against zero in"
	}
	p := divRound((a-ref)*100, abs(ref))
	if p >= 0 {
		return fmt.Sprintf("%d %% above", p)
	}
	return fmt.Sprintf("%d %% below", -p)
}
