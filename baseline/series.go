// Package baseline computes what a resource would have consumed without
// an activation, by the methods a product can name (docs/BASELINES.md):
// day matching (X of Y days, with an optional same-day adjustment), meter
// before, and the plausibility check of a nominated schedule. It is pure:
// meter data in, numbers out, no I/O, no clock.
//
// Energy is integer milliwatt-hours (mWh) per interval, as flexhub stores
// meter data; averages and adjustments round half away from zero to the
// mWh, and no float ever holds a value. Instants are UTC; the calendar
// (which day an interval belongs to, its day type, the same clock time on
// another day) is read in the product's time zone.
package baseline

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/flexhub/flexhub"
)

// Series is a regular series of interval energies: Values[i] is the energy
// (mWh) of [Start+i·Step, Start+(i+1)·Step). Missing[i] marks an interval
// without a reading; a nil Missing means none is missing.
type Series struct {
	Start   time.Time
	Step    time.Duration
	Values  []int64
	Missing []bool
}

// End is the end of the last interval.
func (s *Series) End() time.Time { return s.Start.Add(time.Duration(len(s.Values)) * s.Step) }

// index returns the interval starting at t, and false when t is outside
// the series or not on its grid.
func (s *Series) index(t time.Time) (int, bool) {
	d := t.Sub(s.Start)
	if d < 0 || s.Step <= 0 || d%s.Step != 0 {
		return 0, false
	}
	i := int(d / s.Step)
	return i, i < len(s.Values)
}

// Window returns the values of the n intervals from t, and false when any
// of them is outside the series or missing.
func (s *Series) Window(t time.Time, n int) ([]int64, bool) { return s.window(t, n) }

func (s *Series) window(t time.Time, n int) ([]int64, bool) {
	i, ok := s.index(t)
	if !ok || i+n > len(s.Values) {
		return nil, false
	}
	if s.Missing != nil {
		for _, m := range s.Missing[i : i+n] {
			if m {
				return nil, false
			}
		}
	}
	return s.Values[i : i+n], true
}

func (s *Series) check() error {
	if s.Step <= 0 {
		return flexhub.FieldErrorf("series.step", "a meter series needs a positive interval length")
	}
	if s.Missing != nil && len(s.Missing) != len(s.Values) {
		return flexhub.FieldErrorf("series.missing", "%d missing flags for %d values", len(s.Missing), len(s.Values))
	}
	return nil
}

// Window is an event window [Start, End) in UTC, on the series' grid.
type Window struct {
	Start, End time.Time
}

// intervals returns how many steps the window holds, or an error naming
// what is wrong with it.
func (w Window) intervals(step time.Duration) (int, error) {
	if !w.End.After(w.Start) {
		return 0, flexhub.FieldErrorf("window", "the event window is empty: end %s is not after start %s",
			w.End.UTC().Format(time.RFC3339), w.Start.UTC().Format(time.RFC3339))
	}
	d := w.End.Sub(w.Start)
	if d%step != 0 {
		return 0, flexhub.FieldErrorf("window", "the event window (%s) is not a whole number of %s intervals", d, step)
	}
	return int(d / step), nil
}

// Date is a calendar day in the product's time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the calendar day of t in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// ParseDate reads 2006-01-02.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	return DateOf(t, time.UTC), nil
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// AddDays is the day n days later (earlier for negative n).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC), time.UTC)
}

// Weekday of the date.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// at is the instant the wall clock of loc shows clock (a duration since
// midnight) on day d, and false when that clock time does not exist on
// that day (skipped by a daylight-saving change).
func (d Date) at(clock time.Duration, loc *time.Location) (time.Time, bool) {
	h := int(clock / time.Hour)
	m := int(clock % time.Hour / time.Minute)
	s := int(clock % time.Minute / time.Second)
	t := time.Date(d.Year, d.Month, d.Day, h, m, s, 0, loc)
	y, mo, dd := t.Date()
	if y != d.Year || mo != d.Month || dd != d.Day || t.Hour() != h || t.Minute() != m || t.Second() != s {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// clockOf is t's wall-clock time of day in loc, as a duration since midnight.
func clockOf(t time.Time, loc *time.Location) time.Duration {
	l := t.In(loc)
	return time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute + time.Duration(l.Second())*time.Second
}

// divRound is a/b rounded half away from zero (b > 0).
func divRound(a, b int64) int64 {
	if a >= 0 {
		return (a + b/2) / b
	}
	return -((-a + b/2) / b)
}

// MulDivRound is a·b/c rounded half away from zero, exact for any int64
// a, b and c > 0 whose result fits (the product is formed in 128 bits).
func MulDivRound(a, b, c int64) int64 { return mulDivRound(a, b, c) }

func mulDivRound(a, b, c int64) int64 {
	neg := (a < 0) != (b < 0)
	ua, ub := abs64(a), abs64(b)
	hi, lo := bits.Mul64(ua, ub)
	uc := uint64(c)
	// add c/2 for rounding, carrying into hi
	lo2, carry := bits.Add64(lo, uc/2, 0)
	hi += carry
	if hi >= uc {
		panic("baseline: mulDivRound overflow")
	}
	q, _ := bits.Div64(hi, lo2, uc)
	if neg {
		return -int64(q)
	}
	return int64(q)
}

func abs64(v int64) uint64 {
	if v < 0 {
		return uint64(-v)
	}
	return uint64(v)
}
