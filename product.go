package flexhub

import (
	"strings"
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
	Name               string         `json:"name" minLength:"1" maxLength:"200"`
	Service            string         `json:"service" enum:"congestion_management,voltage_control,balancing_mfrr,balancing_afrr,balancing_rr,frequency_support"`
	Direction          string         `json:"direction" enum:"up,down,both"`
	PowerType          string         `json:"power_type" enum:"active,reactive"`
	MinBidSize         *Power         `json:"min_bid_size,omitempty" doc:"for active power products"`
	MinBidSizeReactive *ReactivePower `json:"min_bid_size_reactive,omitempty" doc:"for reactive power products"`
	TimeResolution     Duration       `json:"time_resolution" doc:"market time unit, ISO 8601; PT15M unless the product says otherwise"`
	FullActivationTime Duration       `json:"full_activation_time" doc:"longest time a resource may take to reach the set-point"`
	MinDuration        Duration       `json:"min_duration,omitempty"`
	MaxDuration        Duration       `json:"max_duration,omitempty"`
	ActivationMode     string         `json:"activation_mode" enum:"manual,automatic"`
	AckDeadline        Duration       `json:"ack_deadline,omitempty" doc:"how long an FSP has to acknowledge an activation order before the system operator is alerted; PT1M when absent"`
	DeliveryTolerance  *int           `json:"delivery_tolerance_pct,omitempty" minimum:"0" maximum:"100" doc:"delivery within ± this percentage of the ordered quantity is on target; 10 when absent"`
	Remuneration       []string       `json:"remuneration" minItems:"1" doc:"capacity and/or energy" enum:"capacity,energy"`
	BaselineMethod     string         `json:"baseline_method" enum:"nominated_schedule,meter_before,x_of_y,rolling_average,none"`
	Requirements       []Requirement  `json:"requirements,omitempty" doc:"questions an FSP answers to prequalify"`
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
