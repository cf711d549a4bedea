package baseline

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

const q = 15 * time.Minute

// series spans [from, to) in 15-minute steps, every value base, with the
// given overrides (instant -> values from there on) and missing intervals.
func series(t *testing.T, from, to time.Time, base int64, set map[time.Time][]int64, missing ...time.Time) *Series {
	t.Helper()
	s := &Series{Start: from, Step: q, Values: make([]int64, int(to.Sub(from)/q)), Missing: make([]bool, int(to.Sub(from)/q))}
	for i := range s.Values {
		s.Values[i] = base
	}
	for at, vals := range set {
		i, ok := s.index(at)
		if !ok {
			t.Fatalf("override at %s outside the series", at)
		}
		copy(s.Values[i:], vals)
	}
	for _, at := range missing {
		i, ok := s.index(at)
		if !ok {
			t.Fatalf("missing at %s outside the series", at)
		}
		s.Missing[i] = true
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func date(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func used(r *Result) []string {
	var out []string
	for _, d := range r.Days {
		if d.Used {
			out = append(out, d.Date.String())
		}
	}
	return out
}

func reasons(r *Result) map[string]string {
	out := map[string]string{}
	for _, d := range r.Days {
		out[d.Date.String()] = d.Reason
	}
	return out
}

// High 3 of 5 weekdays, worked by hand: the event is Wednesday
// 2026-03-11 17:00-18:00 UTC. Going back: Tue 10 (400), Mon 9 (an event
// day), Sun 8 and Sat 7 (weekend, huge), Fri 6 (800), Thu 5 (a reading
// missing), Wed 4 (260), Tue 3 (300), Mon 2 (40): the five eligible days
// are 10, 6, 4, 3, 2; the three highest 6, 10, 3; their average interval
// by interval is (200+100+300)/3, (200+100+0)/3, ... = 200, 100, 100, 100.
func TestDayMatchHighXofY(t *testing.T) {
	s := series(t, utc("2026-02-20T00:00:00Z"), utc("2026-03-12T00:00:00Z"), 7, map[time.Time][]int64{
		utc("2026-03-10T17:00:00Z"): {100, 100, 100, 100},
		utc("2026-03-09T17:00:00Z"): {5000, 5000, 5000, 5000},
		utc("2026-03-08T17:00:00Z"): {9000, 9000, 9000, 9000},
		utc("2026-03-07T17:00:00Z"): {9000, 9000, 9000, 9000},
		utc("2026-03-06T17:00:00Z"): {200, 200, 200, 200},
		utc("2026-03-05T17:00:00Z"): {7000, 7000, 7000, 7000},
		utc("2026-03-04T17:00:00Z"): {50, 60, 70, 80},
		utc("2026-03-03T17:00:00Z"): {300, 0, 0, 0},
		utc("2026-03-02T17:00:00Z"): {10, 10, 10, 10},
	}, utc("2026-03-05T17:30:00Z"))
	w := Window{utc("2026-03-11T17:00:00Z"), utc("2026-03-11T18:00:00Z")}
	r, err := DayMatch(s, w, DayMatching{X: 3, Y: 5, Excluded: []Date{date("2026-03-09")}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{200, 100, 100, 100}; !slices.Equal(r.Values, want) {
		t.Errorf("baseline %v, want %v", r.Values, want)
	}
	if got, want := used(r), []string{"2026-03-10", "2026-03-06", "2026-03-03"}; !slices.Equal(got, want) {
		t.Errorf("days used %v, want %v", got, want)
	}
	want := map[string]string{
		"2026-03-10": "", "2026-03-09": ReasonExcluded, "2026-03-08": ReasonDayType, "2026-03-07": ReasonDayType,
		"2026-03-06": "", "2026-03-05": ReasonIncomplete, "2026-03-04": ReasonLow, "2026-03-03": "", "2026-03-02": ReasonLow,
	}
	if got := reasons(r); !maps(got, want) {
		t.Errorf("reasons %v, want %v", got, want)
	}
	// the search stops at the fifth eligible day
	if len(r.Days) != 9 {
		t.Errorf("%d days examined, want 9 (back to the fifth eligible)", len(r.Days))
	}

	// 10 of 10 over the same data needs ten eligible weekdays
	r, err = DayMatch(s, w, DayMatching{X: 10, Y: 10, Lookback: 14, Excluded: []Date{date("2026-03-09")}})
	if flexhub.ErrorRule(err) != RuleInsufficientHistory {
		t.Fatalf("10 of 10 with 14 days of lookback (8 eligible): %v, want %s", err, RuleInsufficientHistory)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Two days consume the same in the window: the more recent one is taken.
func TestDayMatchTieGoesToRecentDay(t *testing.T) {
	s := series(t, utc("2026-03-01T00:00:00Z"), utc("2026-03-12T00:00:00Z"), 0, map[time.Time][]int64{
		utc("2026-03-10T17:00:00Z"): {100, 300},
		utc("2026-03-09T17:00:00Z"): {300, 100},
	})
	r, err := DayMatch(s, Window{utc("2026-03-11T17:00:00Z"), utc("2026-03-11T17:30:00Z")}, DayMatching{X: 1, Y: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Values, []int64{100, 300}) {
		t.Errorf("baseline %v, want the 10th's [100 300]", r.Values)
	}
}

// Across the change to summer time the window is matched by wall clock:
// the event is Tuesday 2026-03-31 17:00-17:30 in Berlin (CEST, 15:00Z);
// Monday 30 is CEST too (15:00Z), Friday 27 was CET (17:00 = 16:00Z).
// The average is (100+500)/2 = 300, where matching UTC hours would give
// (100+9)/2.
func TestDayMatchDaylightSaving(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s := series(t, utc("2026-03-20T00:00:00Z"), utc("2026-04-01T00:00:00Z"), 0, map[time.Time][]int64{
		utc("2026-03-30T15:00:00Z"): {100, 100},
		utc("2026-03-27T15:00:00Z"): {9, 9},
		utc("2026-03-27T16:00:00Z"): {500, 500},
	})
	w := Window{utc("2026-03-31T15:00:00Z"), utc("2026-03-31T15:30:00Z")}
	r, err := DayMatch(s, w, DayMatching{X: 2, Y: 2, Location: berlin})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Values, []int64{300, 300}) {
		t.Errorf("baseline %v, want [300 300] (wall-clock 17:00 on both days)", r.Values)
	}
	if got := used(r); !slices.Equal(got, []string{"2026-03-30", "2026-03-27"}) {
		t.Errorf("days used %v", got)
	}

	// A window at 02:30 local: that clock time did not exist on Sunday 29.
	w = Window{utc("2026-03-30T00:30:00Z"), utc("2026-03-30T00:45:00Z")} // 02:30 CEST
	s = series(t, utc("2026-03-20T00:00:00Z"), utc("2026-04-01T00:00:00Z"), 0, map[time.Time][]int64{
		utc("2026-03-28T01:30:00Z"): {42}, // 02:30 CET on Saturday 28
	})
	r, err = DayMatch(s, w, DayMatching{X: 1, Y: 1, DayType: DayTypeAny, Location: berlin})
	if err != nil {
		t.Fatal(err)
	}
	if got := reasons(r); got["2026-03-29"] != ReasonNoClock {
		t.Errorf("Sunday 29: %q, want %q", got["2026-03-29"], ReasonNoClock)
	}
	if !slices.Equal(r.Values, []int64{42}) {
		t.Errorf("baseline %v, want Saturday's 02:30 [42]", r.Values)
	}
}

// A holiday is matched with weekends and holidays; with day_of_week a
// Wednesday only with Wednesdays.
func TestDayMatchDayTypes(t *testing.T) {
	s := series(t, utc("2026-02-01T00:00:00Z"), utc("2026-03-12T00:00:00Z"), 1, map[time.Time][]int64{
		utc("2026-03-08T17:00:00Z"): {80},  // Sunday
		utc("2026-03-07T17:00:00Z"): {60},  // Saturday
		utc("2026-03-10T17:00:00Z"): {999}, // Tuesday
		utc("2026-03-04T17:00:00Z"): {30},  // Wednesday
		utc("2026-02-25T17:00:00Z"): {50},  // Wednesday
	})
	w := Window{utc("2026-03-11T17:00:00Z"), utc("2026-03-11T17:15:00Z")}
	r, err := DayMatch(s, w, DayMatching{X: 1, Y: 2, Holidays: []Date{date("2026-03-11")}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Values, []int64{80}) || !slices.Equal(used(r), []string{"2026-03-08"}) {
		t.Errorf("holiday: baseline %v from %v, want [80] from Sunday 8", r.Values, used(r))
	}
	r, err = DayMatch(s, w, DayMatching{X: 2, Y: 2, DayType: DayTypeSameWeekday})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Values, []int64{40}) || !slices.Equal(used(r), []string{"2026-03-04", "2026-02-25"}) {
		t.Errorf("day of week: baseline %v from %v, want [40] from the 4th and 25th", r.Values, used(r))
	}
}

// Same-day adjustments, by hand. One day chosen (X=1): its event window
// [100 100], its adjustment window (15:30-16:30, the hour ending 30 min
// before the 17:00 event) [100 100 100 100] = 400; the event day there
// [120 120 130 130] = 500. Additive: +100 over 4 intervals = +25 each;
// capped at 20 % of the mean 100 = +20. Multiplicative: 500/400 = 1.25;
// capped at ±20 %: 1.2.
func TestDayMatchAdjustment(t *testing.T) {
	s := series(t, utc("2026-03-01T00:00:00Z"), utc("2026-03-12T00:00:00Z"), 0, map[time.Time][]int64{
		utc("2026-03-10T15:30:00Z"): {100, 100, 100, 100, 0, 0, 101, 99},
		utc("2026-03-11T15:30:00Z"): {120, 120, 130, 130},
	})
	w := Window{utc("2026-03-11T17:00:00Z"), utc("2026-03-11T17:30:00Z")}
	adj := func(kind string, cap int) DayMatching {
		return DayMatching{X: 1, Y: 1, Adjustment: Adjustment{Kind: kind, Length: time.Hour, Gap: 30 * time.Minute, CapPct: cap}}
	}
	for _, c := range []struct {
		name   string
		p      DayMatching
		want   []int64
		capped bool
	}{
		{"none", adj(AdjustNone, 0), []int64{101, 99}, false},
		{"additive", adj(AdjustAdditive, 0), []int64{126, 124}, false},
		{"additive capped", adj(AdjustAdditive, 20), []int64{121, 119}, true},
		{"additive under the cap", adj(AdjustAdditive, 30), []int64{126, 124}, false},
		{"multiplicative capped", adj(AdjustMultiplicative, 20), []int64{121, 119}, true}, // 101*1.2 = 121.2, 99*1.2 = 118.8
		{"multiplicative", adj(AdjustMultiplicative, 30), []int64{126, 124}, false},       // 126.25, 123.75
	} {
		r, err := DayMatch(s, w, c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(r.Values, c.want) || r.Capped != c.capped {
			t.Errorf("%s: baseline %v capped %v, want %v capped %v", c.name, r.Values, r.Capped, c.want, c.capped)
		}
	}

	// Downward: the event day consumed less than the chosen day before the event.
	s = series(t, utc("2026-03-01T00:00:00Z"), utc("2026-03-12T00:00:00Z"), 0, map[time.Time][]int64{
		utc("2026-03-10T15:30:00Z"): {100, 100, 100, 100, 0, 0, 100, 100},
		utc("2026-03-11T15:30:00Z"): {50, 50, 50, 50},
	})
	r, err := DayMatch(s, w, adj(AdjustAdditive, 20))
	if err != nil || !slices.Equal(r.Values, []int64{80, 80}) || !r.Capped {
		t.Errorf("additive down, capped: %v %v %v, want [80 80] capped", r.Values, r.Capped, err)
	}

	// Two days averaged (X=2): adjustment windows [100]x4 and [200]x4 average
	// 150 per interval; the event day has 160: +10 on [150 100].
	s = series(t, utc("2026-03-01T00:00:00Z"), utc("2026-03-12T00:00:00Z"), 0, map[time.Time][]int64{
		utc("2026-03-10T15:30:00Z"): {100, 100, 100, 100, 0, 0, 100, 100},
		utc("2026-03-09T15:30:00Z"): {200, 200, 200, 200, 0, 0, 200, 100},
		utc("2026-03-11T15:30:00Z"): {160, 160, 160, 160},
	})
	p := adj(AdjustAdditive, 0)
	p.X, p.Y = 2, 2
	r, err = DayMatch(s, w, p)
	if err != nil || !slices.Equal(r.Values, []int64{160, 110}) || r.Shift != 10 {
		t.Errorf("additive over two days: %v shift %d %v, want [160 110] shift 10", r.Values, r.Shift, err)
	}

	// The event day's adjustment window must have data.
	s.Missing[int(utc("2026-03-11T16:00:00Z").Sub(s.Start)/q)] = true
	if _, err := DayMatch(s, w, p); flexhub.ErrorRule(err) != RuleInsufficientHistory {
		t.Errorf("event day missing a reading in the adjustment window: %v", err)
	}
}

func TestMeterBefore(t *testing.T) {
	s := series(t, utc("2026-03-11T16:00:00Z"), utc("2026-03-11T18:00:00Z"), 0, map[time.Time][]int64{
		utc("2026-03-11T16:00:00Z"): {10, 20, 30, 41},
	})
	r, err := MeterBefore(s, Window{utc("2026-03-11T17:00:00Z"), utc("2026-03-11T17:45:00Z")}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Values, []int64{25, 25, 25}) { // 101/4 = 25.25
		t.Errorf("meter before %v, want [25 25 25]", r.Values)
	}
	s.Missing[2] = true
	if _, err := MeterBefore(s, Window{utc("2026-03-11T17:00:00Z"), utc("2026-03-11T17:45:00Z")}, 4); flexhub.ErrorRule(err) != RuleInsufficientHistory {
		t.Errorf("a reading missing before the event: %v", err)
	}
}

func TestBadParameters(t *testing.T) {
	s := series(t, utc("2026-03-01T00:00:00Z"), utc("2026-03-12T00:00:00Z"), 1, nil)
	w := Window{utc("2026-03-11T17:00:00Z"), utc("2026-03-11T18:00:00Z")}
	for _, c := range []struct {
		name  string
		w     Window
		p     DayMatching
		field string
	}{
		{"X > Y", w, DayMatching{X: 5, Y: 4}, "y"},
		{"X = 0", w, DayMatching{X: 0, Y: 4}, "x"},
		{"empty window", Window{w.Start, w.Start}, DayMatching{X: 1, Y: 1}, "window"},
		{"window off the grid", Window{w.Start, w.Start.Add(20 * time.Minute)}, DayMatching{X: 1, Y: 1}, "window"},
		{"unknown day type", w, DayMatching{X: 1, Y: 1, DayType: "weekly"}, "day_type"},
		{"lookback shorter than Y", w, DayMatching{X: 1, Y: 5, Lookback: 3}, "lookback"},
		{"multiplicative without cap", w, DayMatching{X: 1, Y: 1, Adjustment: Adjustment{Kind: AdjustMultiplicative, Length: time.Hour}}, "adjustment.cap_pct"},
		{"empty adjustment window", w, DayMatching{X: 1, Y: 1, Adjustment: Adjustment{Kind: AdjustAdditive}}, "adjustment.length"},
		{"unknown adjustment", w, DayMatching{X: 1, Y: 1, Adjustment: Adjustment{Kind: "scaled", Length: time.Hour}}, "adjustment.kind"},
	} {
		_, err := DayMatch(s, c.w, c.p)
		if flexhub.ErrorKind(err) != flexhub.EInvalid || flexhub.ErrorField(err) != c.field {
			t.Errorf("%s: %v (field %q), want invalid on %q", c.name, err, flexhub.ErrorField(err), c.field)
		}
	}
}

func TestCheckNomination(t *testing.T) {
	ref := []int64{1000, 1000, 1000, 1000}
	if err := CheckNomination([]int64{1100, 1100, 1000, 1000}, ref, 10, 3); err != nil {
		t.Errorf("5 %% above, tolerance 10 %%: %v", err)
	}
	err := CheckNomination([]int64{1500, 1500, 1000, 1000}, ref, 10, 3)
	if flexhub.ErrorRule(err) != RuleImplausibleNomination {
		t.Errorf("25 %% above: %v", err)
	}
	err = CheckNomination([]int64{3500, 0, 500, 0}, ref, 10, 3)
	if flexhub.ErrorRule(err) != RuleImplausibleNomination || flexhub.ErrorField(err) != "schedule[0]" {
		t.Errorf("one interval 3.5x the history's peak: %v", err)
	}
	if err := CheckNomination([]int64{1}, ref, 10, 3); flexhub.ErrorField(err) != "schedule" {
		t.Errorf("wrong length: %v", err)
	}
}

func TestMulDivRound(t *testing.T) {
	for _, c := range []struct{ a, b, c, want int64 }{
		{101, 120, 100, 121}, {99, 120, 100, 119}, {-99, 120, 100, -119}, {5, 1, 2, 3}, {-5, 1, 2, -3},
		{math.MaxInt64 / 3, 3, 3, math.MaxInt64 / 3}, // the product exceeds int64
		{4_000_000_000_000, 4_000_000_000, 8_000_000_000, 2_000_000_000_000},
	} {
		if got := mulDivRound(c.a, c.b, c.c); got != c.want {
			t.Errorf("%d*%d/%d = %d, want %d", c.a, c.b, c.c, got, c.want)
		}
	}
}
