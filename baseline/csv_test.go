package baseline

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestReadCSVDaylightSavingAndBadRows(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// Sunday 2026-10-25 the clocks go back at 03:00 CEST to 02:00 CET:
	// 02:00 and 02:30 exist twice. Sunday 2026-03-29 they skip 02:00-03:00.
	in := `customer_id,reading_datetime,general_supply_kwh
a,2026-10-25 01:30:00,0.1
a,2026-10-25 02:00:00,0.2
a,2026-10-25 02:30:00,0.3
a,2026-10-25 02:00:00,0.4
a,2026-10-25 02:30:00,0.5
a,2026-10-25 03:00:00,0.6
a,2026-10-25 03:00:00,0.7
b,2026-03-29 01:30:00,1
b,2026-03-29 02:30:00,1
b,2026-03-29 03:00:00,x
b,2026-03-29 03:30:00,1.0005
`
	_, err := ReadCSV(strings.NewReader(in), CSVOptions{Location: berlin})
	if !errors.Is(err, ErrBadRows) {
		t.Fatalf("bad rows without --skip-bad: %v", err)
	}
	for _, want := range []string{"3 of 11 rows", "line 8: a second reading of customer a at 2026-10-25 03:00:00",
		"line 10: 2026-03-29 02:30:00 does not exist in Europe/Berlin", `line 11: "x" is not an energy in kWh`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	m, err := ReadCSV(strings.NewReader(in), CSVOptions{Location: berlin, SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.Step != 30*time.Minute || len(m.Bad) != 3 || m.Rows != 11 {
		t.Fatalf("step %s, %d bad of %d rows", m.Step, len(m.Bad), m.Rows)
	}
	// a: 23:30Z (01:30 CEST), 00:00Z, 00:30Z (CEST), 01:00Z, 01:30Z (CET), 02:00Z (03:00 CET)
	a := m.Series["a"]
	if !a.Start.Equal(utc("2026-10-24T23:30:00Z")) || len(a.Values) != 6 {
		t.Fatalf("a starts %s with %d intervals", a.Start, len(a.Values))
	}
	for i, want := range []int64{100_000, 200_000, 300_000, 400_000, 500_000, 600_000} {
		if a.Values[i] != want || a.Missing[i] {
			t.Errorf("a[%d] = %d (missing %v), want %d", i, a.Values[i], a.Missing[i], want)
		}
	}
	// b: 00:30Z (01:30 CET), 01:30Z (03:30 CEST); 01:00Z between them missing
	b := m.Series["b"]
	if len(b.Values) != 3 || b.Values[0] != 1_000_000 || b.Values[2] != 1_000_500 || !b.Missing[1] {
		t.Errorf("b = %v missing %v, want 1 kWh, a gap, 1.0005 kWh", b.Values, b.Missing)
	}
}

func TestReadCSVHeader(t *testing.T) {
	_, err := ReadCSV(strings.NewReader("id,when,kw\n1,2026-01-01 00:00,1\n"), CSVOptions{})
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "time column") {
		t.Errorf("a header without a time column: %v", err)
	}
}

// Evaluate by hand: two customers, 30-minute data, every weekday the same
// except the event day. Customer a consumes 1 kWh per interval on normal
// days and 2 kWh in the 17:00-18:00 window of the event day: 10 of 10
// gives 2 kWh for an actual 4 kWh, an error of -2 kWh (-50 %). Customer b
// has 1 kWh normally and 0.5 on the event day: 2 kWh for 1 kWh (+100 %).
// Portfolio bias = (-2 + 1) / 5 = -20 %; relative RMSE =
// √((4 + 1) / 2) / 2.5 = 63.2 %; the median of the medians is +25 %.
func TestEvaluateByHand(t *testing.T) {
	var b strings.Builder
	b.WriteString("customer_id,reading_datetime,general_supply_kwh\n")
	day := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	event := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	for _, c := range []string{"a", "b"} {
		for t := day; t.Before(event.AddDate(0, 0, 1)); t = t.Add(30 * time.Minute) {
			v := "1"
			if !t.Before(event.Add(17*time.Hour)) && t.Before(event.Add(18*time.Hour)) {
				v = map[string]string{"a": "2", "b": "0.5"}[c]
			}
			fmt.Fprintf(&b, "%s,%s,%s\n", c, t.Format(time.DateTime), v)
		}
	}
	m, err := ReadCSV(strings.NewReader(b.String()), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &Evaluation{WindowStart: 17 * time.Hour, WindowEnd: 18 * time.Hour, Methods: []Method{{X: 10, Y: 10}},
		Lookback: 20, Days: []Date{DateOf(event, time.UTC)}}
	out, sums, err := Evaluate(m, e)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !out[0].OK || out[0].Actual != 4_000_000 || out[0].Baseline != 2_000_000 ||
		out[1].Actual != 1_000_000 || out[1].Baseline != 2_000_000 {
		t.Fatalf("outcomes %+v", out)
	}
	s := sums[0]
	near := func(got, want float64) bool { return math.Abs(got-want) < 0.05 }
	if s.CustomerDays != 2 || !near(s.BiasPct, -20) || !near(s.RRMSEPct, 63.2) || !near(s.MedianError, 25) ||
		!near(s.PerCustomer["a"], -50) || !near(s.PerCustomer["b"], 100) {
		t.Errorf("summary %+v", s)
	}
	// the placebo choice finds the event day: the highest-load working day
	if got := PlaceboDays(m, e, 1); len(got) != 1 || got[0] != DateOf(event, time.UTC) {
		t.Errorf("placebo days %v, want %s", got, DateOf(event, time.UTC))
	}
}

func TestParseMethod(t *testing.T) {
	for in, want := range map[string]string{"4/5": "high 4 of 5", "10/10": "10 of 10", "before:2": "meter before (2 intervals)"} {
		m, err := ParseMethod(in)
		if err != nil || m.Name() != want {
			t.Errorf("%s: %v %v, want %s", in, m.Name(), err, want)
		}
	}
	for _, bad := range []string{"6/5", "0/5", "4", "a/b", "before:0", "before:x", "4/5/6"} {
		if _, err := ParseMethod(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
