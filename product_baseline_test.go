package flexhub

import (
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func baseProduct(method string) ProductSpec {
	return ProductSpec{Name: "p", Service: "congestion_management", Direction: "up", PowerType: "active",
		FullActivationTime: "PT15M", ActivationMode: "manual", Remuneration: []string{"capacity", "energy"}, BaselineMethod: method}
}

func TestProductBaselineDefaults(t *testing.T) {
	s := baseProduct("x_of_y")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	p := s.BaselineParams()
	if p.X != 4 || p.Y != 5 || p.DayType != "weekday_weekend" || p.Location != time.UTC || p.Adjustment != "none" ||
		p.AdjustmentWindow != 3*time.Hour || p.AdjustmentGap != time.Hour || p.AdjustmentCapPct != 20 ||
		p.MeterBeforeIntervals != 1 || p.NominationTolerancePct != 30 || p.MissingData != MissingNotDelivered {
		t.Errorf("x_of_y defaults %+v", p)
	}
	s = baseProduct("rolling_average")
	s.Baseline = &BaselineSpec{TimeZone: "Europe/Paris", Y: 7, AdjustmentGap: "PT0M", AdjustmentCapPct: ptr(0)}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	p = s.BaselineParams()
	if p.X != 7 || p.Y != 7 || p.Location.String() != "Europe/Paris" || p.AdjustmentGap != 0 || p.AdjustmentCapPct != 0 {
		t.Errorf("rolling average %+v", p)
	}
}

func TestProductBaselineAndSettlementErrors(t *testing.T) {
	for _, c := range []struct {
		method string
		b      *BaselineSpec
		s      *SettlementSpec
		field  string
	}{
		{"x_of_y", &BaselineSpec{X: 6, Y: 5}, nil, "baseline.y"},
		{"x_of_y", &BaselineSpec{X: 6}, nil, ""}, // Y defaults to X
		{"rolling_average", &BaselineSpec{X: 3, Y: 5}, nil, "baseline.x"},
		{"x_of_y", &BaselineSpec{TimeZone: "Mars/Olympus"}, nil, "baseline.time_zone"},
		{"x_of_y", &BaselineSpec{Y: 10, LookbackDays: 5}, nil, "baseline.lookback_days"},
		{"x_of_y", &BaselineSpec{DayType: "weekly"}, nil, "baseline.day_type"},
		{"x_of_y", &BaselineSpec{Holidays: []string{"2026-13-01"}}, nil, "baseline.holidays[0]"},
		{"meter_before", &BaselineSpec{Adjustment: "additive"}, nil, "baseline.adjustment"},
		{"x_of_y", &BaselineSpec{Adjustment: "multiplicative", AdjustmentCapPct: ptr(0)}, nil, "baseline.adjustment_cap_pct"},
		{"x_of_y", &BaselineSpec{AdjustmentCapPct: ptr(101)}, nil, "baseline.adjustment_cap_pct"},
		{"x_of_y", &BaselineSpec{AdjustmentWindow: "PT25H"}, nil, "baseline.adjustment_window"},
		{"x_of_y", &BaselineSpec{MissingData: "invent"}, nil, "baseline.missing_data"},
		{"x_of_y", nil, &SettlementSpec{ActivationPrice: &Money{Amount: "-1", Currency: "EUR"}}, "settlement.activation_price.amount"},
		{"x_of_y", nil, &SettlementSpec{ActivationPrice: &Money{Amount: "80", Currency: "EUR"}, PenaltyPrice: &Money{Amount: "80", Currency: "NOK"}}, "settlement.penalty_price.currency"},
		{"x_of_y", nil, &SettlementSpec{OverDelivery: "bonus"}, "settlement.over_delivery"},
		{"x_of_y", nil, &SettlementSpec{PenaltyPct: ptr(-5)}, "settlement.penalty_pct"},
	} {
		s := baseProduct(c.method)
		s.Baseline, s.Settlement = c.b, c.s
		err := s.Validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.b, err)
			}
			continue
		}
		if ErrorKind(err) != EInvalid || ErrorField(err) != c.field {
			t.Errorf("%+v %+v: %v (field %q), want invalid on %s", c.b, c.s, err, ErrorField(err), c.field)
		}
	}
}
