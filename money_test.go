package flexhub

import (
	"strings"
	"testing"
	"time"
)

func TestParseAmount(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"45.50", 455000}, {"45.5", 455000}, {"45", 450000}, {"0", 0}, {"0.0001", 1}, {"-12.3456", -123456},
		{"+7.25", 72500}, {"1000000000", 1_000_000_000 * MoneyScale}, {"0045.10", 451000},
		// 45.10 is exact here, where float64 would hold 45.099999...
		{"45.10", 451000},
	} {
		got, err := ParseAmount("max_price.amount", c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{"45.12345", "5 decimals; amounts are exact to 4 decimals"},
		{"", "required"}, {"4,50", "not a decimal"}, {"1e3", "not a decimal"}, {".5", "not a decimal"}, {"5.", "not a decimal"},
		{"--1", "not a decimal"}, {"NaN", "not a decimal"}, {" 1", "not a decimal"}, {"1000000001", "beyond the largest"},
		{"99999999999999999999", "beyond the largest"},
	} {
		_, err := ParseAmount("max_price.amount", c.in)
		if err == nil || ErrorField(err) != "max_price.amount" || !strings.Contains(ErrorMessage(err), c.msg) {
			t.Errorf("ParseAmount(%q) = %v; want a max_price.amount error saying %q", c.in, err, c.msg)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for v, want := range map[int64]string{455000: "45.50", 1: "0.0001", 0: "0.00", -123456: "-12.3456", 450000: "45.00", 451200: "45.12", 451230: "45.123"} {
		if got := FormatAmount(v); got != want {
			t.Errorf("FormatAmount(%d) = %q, want %q", v, got, want)
		}
		if back, err := ParseAmount("x", FormatAmount(v)); err != nil || back != v {
			t.Errorf("round trip of %d: %d, %v", v, back, err)
		}
	}
}

func TestMoneyParse(t *testing.T) {
	m := Money{Amount: "45.5", Currency: "EUR"}
	if v, err := m.Normalize("p"); err != nil || v != 455000 || m.Amount != "45.50" {
		t.Fatalf("Normalize: %d %v %+v", v, err, m)
	}
	for _, c := range []string{"eur", "EURO", "", "E1R"} {
		m := Money{Amount: "1", Currency: c}
		if _, err := m.Parse("p"); ErrorField(err) != "p.currency" {
			t.Errorf("currency %q: %v", c, err)
		}
	}
	if _, err := (&Money{Amount: "1.00001", Currency: "EUR"}).Parse("intervals[0].availability_price"); ErrorField(err) != "intervals[0].availability_price.amount" {
		t.Errorf("too many decimals must name the amount field: %v", err)
	}
}

func TestAligned(t *testing.T) {
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	q := 15 * time.Minute
	for _, c := range []struct {
		t    time.Time
		res  time.Duration
		want bool
	}{
		{day, q, true}, {day.Add(45 * time.Minute), q, true}, {day.Add(50 * time.Minute), q, false},
		{day.Add(time.Second), q, false}, {day.Add(time.Microsecond), q, false}, {day.Add(time.Hour), time.Hour, true},
		{day.Add(30 * time.Minute), time.Hour, false}, {day.Add(23*time.Hour + 55*time.Minute), 5 * time.Minute, true},
		// A local time that is a quarter hour in UTC is aligned; one whose
		// offset is not a multiple of the resolution is not.
		{day.Add(time.Hour).In(time.FixedZone("CET", 3600)), q, true},
		{day.In(time.FixedZone("X", 20*60)), time.Hour, true},
		{day.Add(20 * time.Minute).In(time.FixedZone("X", 20*60)), time.Hour, false},
		{day, 0, false},
	} {
		if got := Aligned(c.t, c.res); got != c.want {
			t.Errorf("Aligned(%s, %s) = %v, want %v", c.t, c.res, got, c.want)
		}
	}
}
