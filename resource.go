package flexhub

import (
	"strings"
	"time"
	"unicode/utf8"
)

// ResourceKind says whether a resource is a single unit or a group.
type ResourceKind string

// Resource kinds.
const (
	ResourceUnit  ResourceKind = "unit"
	ResourceGroup ResourceKind = "group"
)

// Unit types of single flexible units.
var UnitTypes = []string{"battery", "ev_charger", "heat_pump", "pv_inverter", "industrial_process", "other"}

// Resource statuses.
//
//	pending_confirmation --confirm (accept)--> active --deregister--> deregistered
//	pending_confirmation --confirm (reject)--> rejected (final)
//	pending_confirmation --deregister--> deregistered
//
// A unit starts pending when the consumer of its metering point is not the
// registering FSP itself: the consumer is in control of their data, and an
// active unit gives its FSP read access to the metering point and the
// consumer. Units on the FSP's own metering point and groups (of units
// that are active already) start active.
const (
	ResourcePendingConfirmation = "pending_confirmation"
	ResourceActive              = "active"
	ResourceRejected            = "rejected"
	ResourceDeregistered        = "deregistered"
)

// Resource is a flexible unit or an aggregated group of units that an FSP
// offers to the markets. Every change makes a new version; the history can
// be read as of any time.
type Resource struct {
	ID string `json:"id" readOnly:"true"`
	ResourceSpec
	FSPID        string                `json:"fsp_id" doc:"the FSP operating the resource" readOnly:"true"`
	DSOID        string                `json:"dso_id,omitempty" doc:"the DSO of the connection point" readOnly:"true"`
	Status       string                `json:"status" enum:"pending_confirmation,active,rejected,deregistered" readOnly:"true" doc:"a unit at another party's metering point is pending_confirmation until that consumer accepts (active) or rejects (rejected) it"`
	Confirmation *ResourceConfirmation `json:"confirmation,omitempty" readOnly:"true" doc:"the consumer's answer to the registration; absent while pending and when none was needed"`
	Version      int64                 `json:"version" readOnly:"true"`
	ValidFrom    time.Time             `json:"valid_from" doc:"when this version took effect" readOnly:"true"`
	CreatedAt    time.Time             `json:"created_at" readOnly:"true"`
}

// ResourceConfirmation records how the consumer of a unit's metering point
// (or the register operator on its behalf) answered the registration. It
// is kept on the resource, not only in the audit trail, because the FSP
// needs the reason for a rejection and the audit trail holds only a hash
// of the object.
type ResourceConfirmation struct {
	Accepted   bool      `json:"accepted"`
	AnsweredBy string    `json:"answered_by" doc:"the party that answered: the consumer, or the register operator on its behalf"`
	AnsweredAt time.Time `json:"answered_at"`
	Reason     string    `json:"reason,omitempty"`
}

// ConfirmationRequest is the consumer's answer to a unit registered at its
// metering point.
type ConfirmationRequest struct {
	// Accept is a pointer so that a forgotten answer is an error rather
	// than a silent rejection.
	Accept *bool  `json:"accept" nullable:"false" doc:"true confirms the registration (the resource becomes active), false rejects it for good"`
	Reason string `json:"reason,omitempty" maxLength:"4000" doc:"why; shown to the FSP"`
}

// Validate checks the answer.
func (c *ConfirmationRequest) Validate() error {
	if c.Accept == nil {
		return FieldErrorf("accept", "say whether you accept the registration: \"accept\": true or false")
	}
	c.Reason = strings.TrimSpace(c.Reason)
	if utf8.RuneCountInString(c.Reason) > 4000 {
		return FieldErrorf("reason", "keep the reason under 4000 characters")
	}
	return nil
}

// Confirm applies the consumer's answer to a pending resource: accepted,
// it becomes active; rejected, it stays rejected for good, since a
// consumer who said no must not be asked again through the same
// registration. The caller has checked who may answer.
func (r *Resource) Confirm(by string, req ConfirmationRequest, now time.Time) error {
	if err := req.Validate(); err != nil {
		return err
	}
	switch r.Status {
	case ResourcePendingConfirmation:
	case ResourceActive:
		if r.Confirmation != nil {
			return Errorf(EConflict, "resource %s was already confirmed at %s; it is active", r.ID, r.Confirmation.AnsweredAt.Format(time.RFC3339))
		}
		return Errorf(EConflict, "resource %s is active; it needed no confirmation", r.ID)
	case ResourceRejected:
		return Errorf(EConflict, "resource %s was rejected and a rejection is final; the FSP registers a new resource if the consumer agrees now", r.ID)
	default:
		return Errorf(EConflict, "resource %s is %s; only a resource pending confirmation can be confirmed or rejected", r.ID, r.Status)
	}
	r.Confirmation = &ResourceConfirmation{Accepted: *req.Accept, AnsweredBy: by, AnsweredAt: now, Reason: req.Reason}
	if *req.Accept {
		r.Status = ResourceActive
	} else {
		r.Status = ResourceRejected
	}
	r.ValidFrom = now
	return nil
}

// ResourceSpec is what the FSP registers and updates.
type ResourceSpec struct {
	Name              string        `json:"name" minLength:"1" maxLength:"200"`
	Kind              ResourceKind  `json:"kind" enum:"unit,group"`
	UnitType          string        `json:"unit_type,omitempty" enum:"battery,ev_charger,heat_pump,pv_inverter,industrial_process,other" doc:"for units"`
	OwnerID           string        `json:"owner_id,omitempty" doc:"party owning the unit (a consumer, or the FSP itself); for units"`
	MeteringPointID   string        `json:"metering_point_id,omitempty" doc:"for units"`
	ConnectionPointID string        `json:"connection_point_id,omitempty" doc:"for units; defaults to the metering point's connection point"`
	Members           []string      `json:"members,omitempty" doc:"for groups: ids of the FSP's units in the group"`
	Technical         TechnicalData `json:"technical"`
}

// TechnicalData are the capabilities a product's prequalification checks.
type TechnicalData struct {
	MaxUp                 *Power               `json:"max_up,omitempty" doc:"maximum upward regulation (more generation / less consumption)"`
	MaxDown               *Power               `json:"max_down,omitempty" doc:"maximum downward regulation"`
	ReactiveCapability    *ReactivePower       `json:"reactive_capability,omitempty"`
	RampRate              *Ramp                `json:"ramp_rate,omitempty"`
	FullActivationTime    Duration             `json:"full_activation_time,omitempty" doc:"ISO 8601, e.g. PT5M"`
	MinActivationDuration Duration             `json:"min_activation_duration,omitempty"`
	MaxActivationDuration Duration             `json:"max_activation_duration,omitempty"`
	RecoveryTime          Duration             `json:"recovery_time,omitempty"`
	EnergyLimit           *Energy              `json:"energy_limit,omitempty" doc:"energy the resource can shift in one activation"`
	Availability          []AvailabilityWindow `json:"availability,omitempty" doc:"weekly windows in UTC; empty means always"`
}

// AvailabilityWindow is a weekly recurring window in UTC.
type AvailabilityWindow struct {
	Weekdays []string `json:"weekdays" minItems:"1" doc:"mon..sun"`
	From     string   `json:"from" pattern:"^([01][0-9]|2[0-3]):[0-5][0-9]$" doc:"HH:MM UTC"`
	To       string   `json:"to" pattern:"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$" doc:"HH:MM UTC, exclusive"`
}

var weekdays = map[string]bool{"mon": true, "tue": true, "wed": true, "thu": true, "fri": true, "sat": true, "sun": true}

// Validate checks the technical data, normalising nothing but reporting
// the first problem with its field path.
func (t *TechnicalData) Validate() error {
	up, err := t.MaxUp.Watts("technical.max_up")
	if err != nil {
		return err
	}
	down, err := t.MaxDown.Watts("technical.max_down")
	if err != nil {
		return err
	}
	if up == 0 && down == 0 {
		return FieldErrorf("technical.max_up", "a resource must offer upward or downward flexibility: give max_up and/or max_down above zero")
	}
	if _, err := t.ReactiveCapability.Vars("technical.reactive_capability"); err != nil {
		return err
	}
	if _, err := t.RampRate.WattsPerMinute("technical.ramp_rate"); err != nil {
		return err
	}
	if _, err := t.EnergyLimit.WattHours("technical.energy_limit"); err != nil {
		return err
	}
	if _, err := t.FullActivationTime.Parse("technical.full_activation_time"); err != nil {
		return err
	}
	minD, err := t.MinActivationDuration.Parse("technical.min_activation_duration")
	if err != nil {
		return err
	}
	maxD, err := t.MaxActivationDuration.Parse("technical.max_activation_duration")
	if err != nil {
		return err
	}
	if minD > 0 && maxD > 0 && minD > maxD {
		return FieldErrorf("technical.min_activation_duration", "minimum activation duration %s exceeds the maximum %s", t.MinActivationDuration, t.MaxActivationDuration)
	}
	if _, err := t.RecoveryTime.Parse("technical.recovery_time"); err != nil {
		return err
	}
	for i, w := range t.Availability {
		f := fieldIndex("technical.availability", i)
		if len(w.Weekdays) == 0 {
			return FieldErrorf(f+".weekdays", "name at least one weekday")
		}
		for j, d := range w.Weekdays {
			if !weekdays[d] {
				return FieldErrorf(fieldIndex(f+".weekdays", j), "%q is not a weekday; use mon, tue, wed, thu, fri, sat or sun", d)
			}
		}
		from, ok1 := minuteOfDay(w.From)
		to, ok2 := minuteOfDay(w.To)
		if !ok1 {
			return FieldErrorf(f+".from", "%q is not a time of day HH:MM", w.From)
		}
		if !ok2 {
			return FieldErrorf(f+".to", "%q is not a time of day HH:MM", w.To)
		}
		if to <= from {
			return FieldErrorf(f+".to", "window ends at %s, before it starts at %s", w.To, w.From)
		}
	}
	return nil
}

func minuteOfDay(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9' {
		return 0, false
	}
	if h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// Validate checks the resource data that needs no other object.
func (s *ResourceSpec) Validate() error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" {
		return FieldErrorf("name", "a resource needs a name")
	}
	switch s.Kind {
	case ResourceUnit:
		if s.UnitType == "" {
			return FieldErrorf("unit_type", "a unit needs a unit_type: one of %s", strings.Join(UnitTypes, ", "))
		}
		known := false
		for _, u := range UnitTypes {
			known = known || u == s.UnitType
		}
		if !known {
			return FieldErrorf("unit_type", "%q is not a unit type: use one of %s", s.UnitType, strings.Join(UnitTypes, ", "))
		}
		if !ValidID(s.MeteringPointID) {
			return FieldErrorf("metering_point_id", "a unit needs the id of its metering point")
		}
		if s.ConnectionPointID != "" && !ValidID(s.ConnectionPointID) {
			return FieldErrorf("connection_point_id", "%q is not a connection point id", s.ConnectionPointID)
		}
		if s.OwnerID != "" && !ValidID(s.OwnerID) {
			return FieldErrorf("owner_id", "%q is not a party id", s.OwnerID)
		}
		if len(s.Members) > 0 {
			return FieldErrorf("members", "a unit has no members; register a resource of kind group")
		}
	case ResourceGroup:
		if len(s.Members) == 0 {
			return FieldErrorf("members", "a group needs at least one member unit")
		}
		seen := map[string]bool{}
		for i, m := range s.Members {
			if !ValidID(m) {
				return FieldErrorf(fieldIndex("members", i), "%q is not a resource id", m)
			}
			if seen[m] {
				return FieldErrorf(fieldIndex("members", i), "resource %s is listed twice", m)
			}
			seen[m] = true
		}
		if s.UnitType != "" || s.MeteringPointID != "" || s.ConnectionPointID != "" || s.OwnerID != "" {
			return FieldErrorf("kind", "a group takes members only; unit_type, owner_id, metering_point_id and connection_point_id belong to its units")
		}
	default:
		return FieldErrorf("kind", "%q is not a resource kind: use unit or group", s.Kind)
	}
	return s.Technical.Validate()
}

// Parties lists the parties entitled to read the resource by their role on
// it (operating FSP, owner, DSO of its connection point), for audit
// entries. Empty ids are left for the caller to drop.
func (r *Resource) Parties() []string { return []string{r.FSPID, r.OwnerID, r.DSOID} }

// HasMember reports whether the group lists the resource id.
func (r *Resource) HasMember(id string) bool {
	for _, m := range r.Members {
		if m == id {
			return true
		}
	}
	return false
}
