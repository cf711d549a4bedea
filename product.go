package flexhub

import (
	"strings"
	"sync"
	"time"
)

// Services a product can buy.
var Services = []string{"congestion_management", "voltage_control", "balancing_mfrr", "balancing_afrr", "balancing_rr", "frequency_support"}

// BaselineMethods a product can fix for its activations.
var BaselineMethods = []string{"nominated_schedule", "meter_before", "x_of_y", "rolling_average", "none"}

// Product is a flexibility service a system operator buys, with the
// technical requirements a resource must meet and the questions of its
// prequalification.
type Product struct {
	ID string `json:"id" readOnly:"true"`
	ProductSpec
	SystemOperatorID string    `json:"system_operator_id" doc:"the buying TSO or DSO" readOnly:"true"`
	Status           string    `json:"status" enum:"active,retired" readOnly:"true"`
	Version          int64     `json:"version" readOnly:"true"`
	CreatedAt        time.Time `json:"created_at" readOnly:"true"`
	UpdatedAt        time.Time `json:"updated_at" readOnly:"true"`
}

// ProductSpec is what the system operator defines.
type ProductSpec struct {
	Name               string          `json:"name" minLength:"1" maxLength:"200"`
	Service            string          `json:"service" enum:"congestion_management,voltage_control,balancing_mfrr,balancing_afrr,balancing_rr,frequency_support"`
	Direction          string          `json:"direction" enum:"up,down,both"`
	PowerType          string          `json:"power_type" enum:"active,reactive"`
	MinBidSize         *Power          `json:"min_bid_size,omitempty" doc:"for active power products"`
	MinBidSizeReactive *ReactivePower  `json:"min_bid_size_reactive,omitempty" doc:"for reactive power products"`
	TimeResolution     Duration        `json:"time_resolution" doc:"market time unit, ISO 8601; PT15M unless the product says otherwise"`
	FullActivationTime Duration        `json:"full_activation_time" doc:"longest time a resource may take to reach the set-point"`
	MinDuration        Duration        `json:"min_duration,omitempty"`
	MaxDuration        Duration        `json:"max_duration,omitempty"`
	ActivationMode     string          `json:"activation_mode" enum:"manual,automatic"`
	AckDeadline        Duration        `json:"ack_deadline,omitempty" doc:"how long an FSP has to acknowledge an activation order before the system operator is alerted; PT1M when absent"`
	DeliveryTolerance  *int            `json:"delivery_tolerance_pct,omitempty" minimum:"0" maximum:"100" doc:"delivery within ± this percentage of the ordered quantity is on target; 10 when absent"`
	Remuneration       []string        `json:"remuneration" minItems:"1" doc:"capacity and/or energy" enum:"capacity,energy"`
	BaselineMethod     string          `json:"baseline_method" enum:"nominated_schedule,meter_before,x_of_y,rolling_average,none"`
	Baseline           *BaselineSpec   `json:"baseline,omitempty" doc:"parameters of the baseline method (docs/BASELINES.md); defaults when absent"`
	Settlement         *SettlementSpec `json:"settlement,omitempty" doc:"how delivered flexibility is paid and shortfalls charged (docs/SETTLEMENT.md); defaults when absent"`
	Requirements       []Requirement   `json:"requirements,omitempty" doc:"questions an FSP answers to prequalify"`
}

// Requirement is one question of a product's prequalification.
type Requirement struct {
	Key      string `json:"key" pattern:"^[a-z][a-z0-9_]{0,63}$" doc:"machine name of the requirement"`
	Question string `json:"question" minLength:"1"`
	Required bool   `json:"required"`
}

func oneOf(field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return FieldErrorf(field, "%q is not allowed: use one of %s", v, strings.Join(allowed, ", "))
}

// Validate checks the product definition.
func (s *ProductSpec) Validate() error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" {
		return FieldErrorf("name", "a product needs a name")
	}
	if err := oneOf("service", s.Service, Services); err != nil {
		return err
	}
	if err := oneOf("direction", s.Direction, []string{"up", "down", "both"}); err != nil {
		return err
	}
	if err := oneOf("power_type", s.PowerType, []string{"active", "reactive"}); err != nil {
		return err
	}
	if _, err := s.MinBidSize.Watts("min_bid_size"); err != nil {
		return err
	}
	if _, err := s.MinBidSizeReactive.Vars("min_bid_size_reactive"); err != nil {
		return err
	}
	if s.PowerType == "active" && s.MinBidSizeReactive != nil {
		return FieldErrorf("min_bid_size_reactive", "an active power product takes min_bid_size, not min_bid_size_reactive")
	}
	if s.PowerType == "reactive" && s.MinBidSize != nil {
		return FieldErrorf("min_bid_size", "a reactive power product takes min_bid_size_reactive, not min_bid_size")
	}
	if s.TimeResolution == "" {
		s.TimeResolution = "PT15M"
	}
	res, err := s.TimeResolution.Parse("time_resolution")
	if err != nil {
		return err
	}
	if res < time.Minute || (24*time.Hour)%res != 0 {
		return FieldErrorf("time_resolution", "%s must be at least a minute and divide a day evenly", s.TimeResolution)
	}
	if d, err := s.AckDeadline.Parse("ack_deadline"); err != nil {
		return err
	} else if s.AckDeadline != "" && (d < time.Second || d > 24*time.Hour) {
		return FieldErrorf("ack_deadline", "an acknowledgement deadline lies between PT1S and PT24H, got %s", s.AckDeadline)
	}
	if s.DeliveryTolerance != nil && (*s.DeliveryTolerance < 0 || *s.DeliveryTolerance > 100) {
		return FieldErrorf("delivery_tolerance_pct", "a tolerance is a percentage from 0 to 100, got %d", *s.DeliveryTolerance)
	}
	if _, err := s.FullActivationTime.Parse("full_activation_time"); err != nil {
		return err
	}
	if s.FullActivationTime == "" {
		return FieldErrorf("full_activation_time", "a product needs a full activation time, e.g. PT15M")
	}
	minD, err := s.MinDuration.Parse("min_duration")
	if err != nil {
		return err
	}
	maxD, err := s.MaxDuration.Parse("max_duration")
	if err != nil {
		return err
	}
	if minD > 0 && maxD > 0 && minD > maxD {
		return FieldErrorf("min_duration", "minimum duration %s exceeds the maximum %s", s.MinDuration, s.MaxDuration)
	}
	if err := oneOf("activation_mode", s.ActivationMode, []string{"manual", "automatic"}); err != nil {
		return err
	}
	if len(s.Remuneration) == 0 {
		return FieldErrorf("remuneration", "say how the product pays: capacity, energy or both")
	}
	seen := map[string]bool{}
	for i, r := range s.Remuneration {
		if err := oneOf(fieldIndex("remuneration", i), r, []string{"capacity", "energy"}); err != nil {
			return err
		}
		if seen[r] {
			return FieldErrorf(fieldIndex("remuneration", i), "%q is listed twice", r)
		}
		seen[r] = true
	}
	if err := oneOf("baseline_method", s.BaselineMethod, BaselineMethods); err != nil {
		return err
	}
	if err := s.Baseline.validate(s.BaselineMethod); err != nil {
		return err
	}
	if err := s.Settlement.validate(); err != nil {
		return err
	}
	keys := map[string]bool{}
	for i, q := range s.Requirements {
		f := fieldIndex("requirements", i)
		if q.Key == "" {
			return FieldErrorf(f+".key", "a requirement needs a key")
		}
		if keys[q.Key] {
			return FieldErrorf(f+".key", "requirement key %q is used twice", q.Key)
		}
		keys[q.Key] = true
		if strings.TrimSpace(q.Question) == "" {
			return FieldErrorf(f+".question", "a requirement needs a question")
		}
	}
	return nil
}

// AckWithin is the product's acknowledgement deadline for activation
// orders (DefaultAckDeadline when it sets none).
func (s *ProductSpec) AckWithin() time.Duration {
	if d, err := s.AckDeadline.Parse(""); err == nil && d > 0 {
		return d
	}
	return DefaultAckDeadline
}

// TolerancePct is the product's delivery tolerance in percent (10 when it
// sets none).
func (s *ProductSpec) TolerancePct() int {
	if s.DeliveryTolerance != nil {
		return *s.DeliveryTolerance
	}
	return 10
}

// BaselineSpec parameterises a product's baseline method. Every field is
// optional; BaselineParams fills in the defaults.
type BaselineSpec struct {
	TimeZone     string   `json:"time_zone,omitempty" doc:"IANA time zone whose days, day types and clock the baseline reads; UTC when absent"`
	X            int      `json:"x,omitempty" minimum:"0" doc:"x_of_y: average the X highest of the Y days; 4 when absent (rolling_average: X = Y)"`
	Y            int      `json:"y,omitempty" minimum:"0" doc:"x_of_y and rolling_average: the Y most recent eligible days; 5 (x_of_y) or 10 (rolling_average) when absent"`
	DayType      string   `json:"day_type,omitempty" enum:"weekday_weekend,day_of_week,any" doc:"which earlier days match the event day; weekday_weekend when absent"`
	LookbackDays int      `json:"lookback_days,omitempty" minimum:"0" doc:"days searched back for eligible days; 3·Y+14 when absent"`
	Holidays     []string `json:"holidays,omitempty" doc:"public holidays, YYYY-MM-DD: non-working days"`
	// Same-day adjustment on top of day matching.
	Adjustment       string   `json:"adjustment,omitempty" enum:"none,additive,multiplicative" doc:"same-day adjustment; none when absent"`
	AdjustmentWindow Duration `json:"adjustment_window,omitempty" doc:"length of the adjustment window; PT3H when absent"`
	AdjustmentGap    Duration `json:"adjustment_gap,omitempty" doc:"gap between the adjustment window's end and the event's start; PT1H when absent"`
	AdjustmentCapPct *int     `json:"adjustment_cap_pct,omitempty" doc:"cap of the adjustment, %; 20 when absent (0: an additive adjustment is uncapped)"`
	// meter_before
	MeterBeforeIntervals int `json:"meter_before_intervals,omitempty" minimum:"0" doc:"meter_before: market time units before the activation averaged; 1 when absent"`
	// nominated_schedule
	NominationTolerancePct *int `json:"nomination_tolerance_pct,omitempty" doc:"nominated_schedule: a nomination's total must lie within this % of a high 4 of 5 baseline from the resource's history; 30 when absent"`
	// MissingData says how an interval without complete meter data is settled.
	MissingData string `json:"missing_data,omitempty" enum:"not_delivered,excluded" doc:"an interval without complete meter data: not_delivered (nothing delivered, default) or excluded (neither paid nor penalised)"`
}

// Missing-data rules.
const (
	MissingNotDelivered = "not_delivered"
	MissingExcluded     = "excluded"
)

// BaselineParams are a product's baseline parameters with the defaults
// filled in.
type BaselineParams struct {
	Method                 string
	Location               *time.Location
	X, Y, LookbackDays     int
	DayType                string
	Holidays               []string
	Adjustment             string
	AdjustmentWindow       time.Duration
	AdjustmentGap          time.Duration
	AdjustmentCapPct       int
	MeterBeforeIntervals   int
	NominationTolerancePct int
	MissingData            string
}

// BaselineParams returns the product's baseline parameters, defaults
// filled in. The spec must have passed Validate.
func (s *ProductSpec) BaselineParams() BaselineParams {
	b := s.Baseline
	if b == nil {
		b = &BaselineSpec{}
	}
	p := BaselineParams{Method: s.BaselineMethod, Location: time.UTC, X: b.X, Y: b.Y, LookbackDays: b.LookbackDays,
		DayType: b.DayType, Holidays: b.Holidays, Adjustment: b.Adjustment, AdjustmentCapPct: 20,
		MeterBeforeIntervals: b.MeterBeforeIntervals, NominationTolerancePct: 30, MissingData: b.MissingData}
	if b.TimeZone != "" {
		if loc, err := cachedLocation(b.TimeZone); err == nil {
			p.Location = loc
		}
	}
	switch s.BaselineMethod {
	case "rolling_average":
		if p.Y == 0 {
			p.Y = 10
		}
		p.X = p.Y
	default:
		if p.X == 0 {
			p.X = 4
		}
		if p.Y == 0 {
			p.Y = max(5, p.X)
		}
	}
	if p.DayType == "" {
		p.DayType = "weekday_weekend"
	}
	if p.Adjustment == "" {
		p.Adjustment = "none"
	}
	p.AdjustmentWindow, _ = b.AdjustmentWindow.Parse("")
	if p.AdjustmentWindow == 0 {
		p.AdjustmentWindow = 3 * time.Hour
	}
	p.AdjustmentGap, _ = b.AdjustmentGap.Parse("")
	if b.AdjustmentGap == "" {
		p.AdjustmentGap = time.Hour
	}
	if b.AdjustmentCapPct != nil {
		p.AdjustmentCapPct = *b.AdjustmentCapPct
	}
	if p.MeterBeforeIntervals == 0 {
		p.MeterBeforeIntervals = 1
	}
	if b.NominationTolerancePct != nil {
		p.NominationTolerancePct = *b.NominationTolerancePct
	}
	if p.MissingData == "" {
		p.MissingData = MissingNotDelivered
	}
	return p
}

func (b *BaselineSpec) validate(method string) error {
	if b == nil {
		return nil
	}
	const f = "baseline."
	if b.TimeZone != "" {
		if _, err := time.LoadLocation(b.TimeZone); err != nil || b.TimeZone == "Local" {
			return FieldErrorf(f+"time_zone", "%q is not an IANA time zone (e.g. Europe/Berlin)", b.TimeZone)
		}
	}
	if b.X < 0 || b.Y < 0 || b.LookbackDays < 0 || b.MeterBeforeIntervals < 0 {
		return FieldErrorf(f+"x", "x, y, lookback_days and meter_before_intervals must not be negative")
	}
	if method == "rolling_average" && b.X != 0 && b.Y != 0 && b.X != b.Y {
		return FieldErrorf(f+"x", "a rolling average uses every one of its Y days: leave x out or set it to y")
	}
	x, y := b.X, b.Y
	if x == 0 {
		x = 4
	}
	if y == 0 {
		y = max(5, x)
	}
	if method == "x_of_y" && x > y {
		return FieldErrorf(f+"y", "X of Y needs X <= Y: %d of %d", x, y)
	}
	if b.LookbackDays != 0 && b.LookbackDays < y {
		return FieldErrorf(f+"lookback_days", "a lookback of %d days cannot hold %d eligible days", b.LookbackDays, y)
	}
	if b.DayType != "" {
		if err := oneOf(f+"day_type", b.DayType, []string{"weekday_weekend", "day_of_week", "any"}); err != nil {
			return err
		}
	}
	for i, h := range b.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			return FieldErrorf(fieldIndex(f+"holidays", i), "%q is not a date (YYYY-MM-DD)", h)
		}
	}
	if b.Adjustment != "" {
		if err := oneOf(f+"adjustment", b.Adjustment, []string{"none", "additive", "multiplicative"}); err != nil {
			return err
		}
		if b.Adjustment != "none" && method != "x_of_y" && method != "rolling_average" {
			return FieldErrorf(f+"adjustment", "a same-day adjustment applies to day matching (x_of_y, rolling_average), not %s", method)
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"adjustment_window", b.AdjustmentWindow}, {"adjustment_gap", b.AdjustmentGap}} {
		v, err := d.v.Parse(f + d.name)
		if err != nil {
			return err
		}
		if v < 0 || v > 24*time.Hour || v%time.Minute != 0 {
			return FieldErrorf(f+d.name, "%s must be whole minutes from PT0M to PT24H", d.v)
		}
	}
	if b.Adjustment != "" && b.Adjustment != "none" && b.AdjustmentWindow == "PT0M" {
		return FieldErrorf(f+"adjustment_window", "the adjustment window is empty")
	}
	if c := b.AdjustmentCapPct; c != nil && (*c < 0 || *c > 100) {
		return FieldErrorf(f+"adjustment_cap_pct", "a cap is a percentage from 0 to 100, got %d", *c)
	}
	if b.Adjustment == "multiplicative" && b.AdjustmentCapPct != nil && *b.AdjustmentCapPct == 0 {
		return FieldErrorf(f+"adjustment_cap_pct", "a multiplicative adjustment needs a cap (e.g. 20 for ±20 %%)")
	}
	if c := b.NominationTolerancePct; c != nil && (*c < 0 || *c > 1000) {
		return FieldErrorf(f+"nomination_tolerance_pct", "a tolerance is a percentage from 0 to 1000, got %d", *c)
	}
	if b.MissingData != "" {
		if err := oneOf(f+"missing_data", b.MissingData, []string{MissingNotDelivered, MissingExcluded}); err != nil {
			return err
		}
	}
	return nil
}

// SettlementSpec says how a product's activations are paid and its
// shortfalls charged. Availability is paid as awarded (the award's
// amounts); this adds the activation side.
type SettlementSpec struct {
	ActivationPrice *Money `json:"activation_price,omitempty" doc:"per MWh delivered, for activations no bid priced (automatic activation, capacity-only awards); none paid when absent"`
	PenaltyPct      *int   `json:"penalty_pct,omitempty" doc:"a shortfall beyond the delivery tolerance is charged at this % of the interval's activation price; 100 when absent"`
	PenaltyPrice    *Money `json:"penalty_price,omitempty" doc:"per MWh of shortfall beyond the tolerance, instead of penalty_pct"`
	OverDelivery    string `json:"over_delivery,omitempty" enum:"capped,paid" doc:"capped (default): energy beyond the ordered quantity is not paid; paid: all delivered energy is paid"`
	NotifyBRP       bool   `json:"notify_brp,omitempty" doc:"the BRPs of the metering points involved also receive the verification results"`
}

// Over-delivery rules.
const (
	OverDeliveryCapped = "capped"
	OverDeliveryPaid   = "paid"
)

func (s *SettlementSpec) validate() error {
	if s == nil {
		return nil
	}
	const f = "settlement."
	for _, m := range []struct {
		name string
		v    *Money
	}{{"activation_price", s.ActivationPrice}, {"penalty_price", s.PenaltyPrice}} {
		if m.v == nil {
			continue
		}
		v, err := m.v.Normalize(f + m.name)
		if err != nil {
			return err
		}
		if v < 0 {
			return FieldErrorf(f+m.name+".amount", "a price per MWh must not be negative")
		}
	}
	if s.ActivationPrice != nil && s.PenaltyPrice != nil && s.ActivationPrice.Currency != s.PenaltyPrice.Currency {
		return FieldErrorf(f+"penalty_price.currency", "the penalty price is in %s, the activation price in %s: use one currency", s.PenaltyPrice.Currency, s.ActivationPrice.Currency)
	}
	if p := s.PenaltyPct; p != nil && (*p < 0 || *p > 1000) {
		return FieldErrorf(f+"penalty_pct", "a penalty is a percentage from 0 to 1000, got %d", *p)
	}
	if s.OverDelivery != "" {
		if err := oneOf(f+"over_delivery", s.OverDelivery, []string{OverDeliveryCapped, OverDeliveryPaid}); err != nil {
			return err
		}
	}
	return nil
}

// locations caches time zones by name: time.LoadLocation reads and parses
// the zone file on every call, and a settlement run asks once per order.
var locations sync.Map // name → *time.Location

func cachedLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}
