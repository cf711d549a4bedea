package sim

import (
	"math"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// TestForecastIsWhatTheMetersReadWithoutOrders: a fleet's forecast of a
// resource (what an FSP nominates as its baseline) is what the resource's
// meter then reads when no order runs, per quarter hour, for a unit and
// for a group (the sum of its members), with site and device metering.
func TestForecastIsWhatTheMetersReadWithoutOrders(t *testing.T) {
	p := profiles(t)
	from := day0.Add(6 * time.Hour) // 18:00 in Sydney: the evening load
	to := from.Add(time.Hour)
	for _, metering := range []string{MeterSite, MeterDevice} {
		rs := []*flexhub.Resource{
			unit("hp1", "heat_pump", flexhub.TechnicalData{MaxUp: kwp(1.5)}),
			unit("hp2", "heat_pump", flexhub.TechnicalData{MaxUp: kwp(0.8)}),
			unit("b1", "battery", flexhub.TechnicalData{MaxUp: kwp(3), MaxDown: kwp(3)}),
			{ID: "g", Status: flexhub.ResourceActive, ResourceSpec: flexhub.ResourceSpec{Name: "pool", Kind: flexhub.ResourceGroup, Members: []string{"hp1", "hp2"}}},
		}
		f, err := NewFleet(rs, p, Config{Resolution: time.Minute, Seed: 4, MeterGroups: true, Metering: metering})
		if err != nil {
			t.Fatal(err)
		}
		forecast := map[string][]int64{}
		for _, id := range []string{"hp1", "g", "b1"} {
			if forecast[id], err = f.Forecast(id, from, to, 15*time.Minute); err != nil {
				t.Fatal(err)
			}
			if len(forecast[id]) != 4 {
				t.Fatalf("%s: %d quarter hours forecast, want 4", id, len(forecast[id]))
			}
		}
		metered := run(t, f, from, to) // W net export per minute
		var pool float64
		for q := range 4 {
			for _, id := range []string{"hp1", "g", "b1"} {
				var sum float64
				for _, v := range metered[id][q*15 : (q+1)*15] {
					sum += v
				}
				imp := -sum / 15
				if math.Abs(imp-float64(forecast[id][q])) > 2 {
					t.Errorf("%s metering, %s, quarter hour %d: forecast %d W import, meter read %.1f W", metering, id, q, forecast[id][q], imp)
				}
			}
			pool += float64(forecast["g"][q])
		}
		if pool <= 0 {
			t.Errorf("%s metering: the heat pump pool is forecast to draw nothing (%v)", metering, forecast["g"])
		}
	}
	f, _ := NewFleet([]*flexhub.Resource{unit("hp1", "heat_pump", flexhub.TechnicalData{MaxUp: kwp(1.5)})}, p, Config{})
	if _, err := f.Forecast("nope", from, to, 15*time.Minute); err == nil {
		t.Errorf("a forecast of a resource the fleet does not simulate")
	}
	if _, err := f.Forecast("hp1", from, from.Add(20*time.Minute), 15*time.Minute); err == nil {
		t.Errorf("a forecast over a span that is not whole quarter hours")
	}
}
