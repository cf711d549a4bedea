package demo

import (
	"testing"
	"time"
)

func TestMarketDay(t *testing.T) {
	date, err := PeakEveningDay(sharedData)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadMarketDay(sharedData, date)
	if err != nil {
		t.Fatal(err)
	}
	if d.Intervals() != 96 || len(d.Load) != 25 {
		t.Fatalf("%s: %d intervals, %d households", date, d.Intervals(), len(d.Load))
	}
	// Local midnight in Sydney is 13:00 or 14:00 UTC the day before.
	if h := d.Start.Hour(); d.Start.Location() != time.UTC || (h != 13 && h != 14) {
		t.Fatalf("day starts %s", d.Start)
	}
	// The evening (17:00-21:00 local, intervals 68-83) must hold the peak
	// that chose the day: higher than the small hours (02:00-05:00).
	var evening, night int64
	for i := 68; i < 84; i++ {
		evening = max(evening, d.Total[i])
	}
	for i := 8; i < 20; i++ {
		night = max(night, d.Total[i])
	}
	if evening <= night {
		t.Fatalf("%s: evening peak %d W not above the night's %d W", date, evening, night)
	}
	var sum int64
	for _, l := range d.Load {
		sum += l[70]
	}
	if sum != d.Total[70] {
		t.Fatalf("total %d is not the sum of households %d", d.Total[70], sum)
	}
	if _, err := ReadMarketDay(sharedData, "2013-04-07"); err == nil {
		t.Fatal("2013-04-07, the end of daylight saving in Sydney, must be refused")
	}
}
