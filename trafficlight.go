package flexhub

import (
	"context"
	"time"
)

// The traffic light (docs/TRAFFIC_LIGHT.md): before a system operator may
// use a resource inside a distribution grid, the resource's change is
// checked against that DSO's grid for each interval — green (no issue),
// amber (allowed up to a stated quantity), red (blocked) — with the
// limiting element named. The verdicts travel with the bid or activation
// order they were computed for; the DSO can override them for a resource
// and a time span, with a reason, and every override is audited.

// Traffic-light colours.
const (
	LightGreen = "green"
	LightAmber = "amber"
	LightRed   = "red"
)

// TrafficLight is the verdict for one interval of a bid or order.
type TrafficLight struct {
	ResourceID string    `json:"resource_id" doc:"the unit checked (for a group: each unit in another party's grid)"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Color      string    `json:"color" enum:"green,amber,red"`
	// Requested and Allowed are W (active) or var (reactive), as the
	// bid's or order's unit; Allowed is set for amber (less than
	// Requested) and red (0).
	Requested int64  `json:"requested"`
	Allowed   *int64 `json:"allowed,omitempty" doc:"amber: the most the DSO's grid takes in this interval; red: 0"`
	Unit      string `json:"unit" enum:"W,var"`
	// LimitingElement names the line, transformer or bus whose limit
	// decides (empty for green).
	LimitingElement string `json:"limiting_element,omitempty" doc:"the line, transformer or bus whose limit decides, e.g. line 17 at 100 % loading"`
	// Source says what the verdict came from: the DSO's grid model and
	// its version and the forecast used, or an override.
	Source     string `json:"source" doc:"grid model and version the verdict was computed on, or the DSO's override"`
	OverrideID string `json:"override_id,omitempty" doc:"the DSO override that decided this interval, if any"`
	DSOID      string `json:"dso_id"`
}

// GridCap is an interval in which the DSOs' traffic lights let a
// resource move less than a bid offers: the clearing accepts at most
// Allowed there.
type GridCap struct {
	Start   time.Time `json:"start"`
	Allowed int64     `json:"allowed" doc:"W or var, as the bid's quantities"`
}

// TrafficLightOverrideSpec is what the DSO sends to set the light of one
// of its grid's resources for a time span by hand.
type TrafficLightOverrideSpec struct {
	ResourceID string    `json:"resource_id" doc:"a resource whose connection point (or, for a group, some unit's) lies in one of the caller's grid areas"`
	Start      time.Time `json:"start" doc:"ISO 8601 UTC, on a 15-minute boundary"`
	End        time.Time `json:"end" doc:"after start, on a 15-minute boundary, at most 31 days later"`
	Direction  string    `json:"direction" enum:"up,down,both" doc:"which direction of change the override is for"`
	Color      string    `json:"color" enum:"green,amber,red"`
	Limit      *Power    `json:"limit,omitempty" doc:"amber only: the most the resource may change in the direction"`
	Reason     string    `json:"reason" minLength:"1" maxLength:"4000" doc:"why: it is shown to the FSP and the system operators and kept in the audit trail"`
}

// TrafficLightOverride is a DSO's standing verdict for a resource.
type TrafficLightOverride struct {
	ID string `json:"id" readOnly:"true"`
	TrafficLightOverrideSpec
	LimitW      *int64     `json:"limit_w,omitempty" readOnly:"true" doc:"the limit in W"`
	DSOID       string     `json:"dso_id" readOnly:"true"`
	FSPID       string     `json:"fsp_id" readOnly:"true" doc:"the resource's FSP (it sees the override)"`
	Status      string     `json:"status" enum:"active,withdrawn" readOnly:"true"`
	WithdrawnAt *time.Time `json:"withdrawn_at,omitempty" readOnly:"true"`
	Version     int64      `json:"version" readOnly:"true"`
	CreatedAt   time.Time  `json:"created_at" readOnly:"true"`
	UpdatedAt   time.Time  `json:"updated_at" readOnly:"true"`
}

// Override statuses.
const (
	OverrideActive    = "active"
	OverrideWithdrawn = "withdrawn"
)

// Validate checks the spec and returns the limit in W (amber only).
func (s *TrafficLightOverrideSpec) Validate() (*int64, error) {
	if !ValidID(s.ResourceID) {
		return nil, FieldErrorf("resource_id", "%q is not a resource id", s.ResourceID)
	}
	s.Start, s.End = s.Start.UTC(), s.End.UTC()
	if s.Start.IsZero() || s.End.IsZero() {
		return nil, FieldErrorf("start", "start and end are required")
	}
	for f, t := range map[string]time.Time{"start": s.Start, "end": s.End} {
		if t.UnixNano()%int64(ISP) != 0 {
			return nil, RuleErrorf(EInvalid, "traffic_light.interval", f, "%s is not on a 15-minute boundary", t.Format(time.RFC3339))
		}
	}
	if !s.End.After(s.Start) {
		return nil, RuleErrorf(EInvalid, "traffic_light.interval", "end", "end %s is not after start %s", s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	}
	if s.End.Sub(s.Start) > 31*24*time.Hour {
		return nil, RuleErrorf(EInvalid, "traffic_light.interval", "end", "an override spans at most 31 days, not %s", s.End.Sub(s.Start))
	}
	switch s.Direction {
	case "up", "down", "both":
	default:
		return nil, FieldErrorf("direction", "%q is not a direction: use up, down or both", s.Direction)
	}
	if s.Reason == "" {
		return nil, FieldErrorf("reason", "an override needs a reason")
	}
	switch s.Color {
	case LightGreen, LightRed:
		if s.Limit != nil {
			return nil, RuleErrorf(EInvalid, "traffic_light.limit", "limit", "only an amber override has a limit; %s has none", s.Color)
		}
		return nil, nil
	case LightAmber:
		if s.Limit == nil {
			return nil, RuleErrorf(EInvalid, "traffic_light.limit", "limit", "an amber override needs the limit it allows")
		}
		w, err := s.Limit.Watts("limit")
		if err != nil {
			return nil, err
		}
		if w <= 0 {
			return nil, RuleErrorf(EInvalid, "traffic_light.limit", "limit", "an amber limit must be positive; to block, use red")
		}
		return &w, nil
	default:
		return nil, FieldErrorf("color", "%q is not a colour: use green, amber or red", s.Color)
	}
}

// Covers reports whether the override applies to a change in direction
// ("up" or "down") over [start, end).
func (o *TrafficLightOverride) Covers(direction string, start, end time.Time) bool {
	return o.Status == OverrideActive && (o.Direction == "both" || o.Direction == direction) &&
		o.Start.Before(end) && start.Before(o.End)
}

// TrafficLightTx is the part of Tx that stores overrides.
type TrafficLightTx interface {
	CreateTrafficLightOverride(ctx context.Context, o *TrafficLightOverride) error
	UpdateTrafficLightOverride(ctx context.Context, o *TrafficLightOverride) error
	TrafficLightOverride(ctx context.Context, id string) (*TrafficLightOverride, error)
	// ListTrafficLightOverrides filters on "resource_id", "dso_id",
	// "fsp_id", "status".
	ListTrafficLightOverrides(ctx context.Context, f Filter, pg Page) ([]*TrafficLightOverride, string, error)
	// TrafficLightOverridesCovering returns the active overrides of the
	// resources that overlap [from, to), oldest first.
	TrafficLightOverridesCovering(ctx context.Context, resourceIDs []string, from, to time.Time) ([]*TrafficLightOverride, error)
}

// KindTrafficLightOverride is the audit and history kind of overrides.
const KindTrafficLightOverride = "traffic_light_override"
