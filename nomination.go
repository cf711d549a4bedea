package flexhub

import (
	"context"
	"time"
)

// Nominated baselines (docs/BASELINES.md, "nominated schedule"): for a
// product whose baseline_method is nominated_schedule, the FSP declares,
// per resource and market session, what the resource would take from the
// grid in each market time unit without activation. flexhub checks it
// against the resource's history, keeps every version, and freezes it at
// the session's gate closure; settlement verifies against it.

// NominationSpec is what the FSP sends.
type NominationSpec struct {
	ResourceID string                `json:"resource_id"`
	SessionID  string                `json:"session_id" doc:"the market session whose gate closure freezes the nomination; its product's baseline_method is nominated_schedule"`
	Schedule   []NominatedIntervalIn `json:"schedule" minItems:"1" maxItems:"2976" doc:"per market time unit, sorted, no overlaps"`
}

// NominatedIntervalIn is one interval on the wire.
type NominatedIntervalIn struct {
	Start    time.Time `json:"start" doc:"on the product's time resolution, ISO 8601 UTC"`
	End      time.Time `json:"end"`
	Quantity Power     `json:"quantity" doc:"mean power expected without activation"`
	Flow     string    `json:"flow,omitempty" enum:"import,export" doc:"import (consumption, default) or export (generation)"`
}

// NominatedInterval is one interval as stored: net import in W.
type NominatedInterval struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	NetImport int64     `json:"net_import" doc:"W: import minus export"`
}

// Nomination is a stored nominated baseline.
type Nomination struct {
	ID               string              `json:"id" readOnly:"true"`
	ResourceID       string              `json:"resource_id" readOnly:"true"`
	SessionID        string              `json:"session_id" readOnly:"true"`
	ProductID        string              `json:"product_id" readOnly:"true"`
	FSPID            string              `json:"fsp_id" readOnly:"true"`
	SystemOperatorID string              `json:"system_operator_id" readOnly:"true"`
	Schedule         []NominatedInterval `json:"schedule" readOnly:"true"`
	GateClosure      time.Time           `json:"gate_closure" readOnly:"true" doc:"from then on the nomination cannot change"`
	// Plausibility says how the nomination compared with the resource's
	// history when it was accepted.
	Plausibility string    `json:"plausibility" readOnly:"true" doc:"checked: within tolerance of a high 4 of 5 baseline; or unchecked with the reason (no history)"`
	Version      int64     `json:"version" readOnly:"true"`
	CreatedAt    time.Time `json:"created_at" readOnly:"true"`
	UpdatedAt    time.Time `json:"updated_at" readOnly:"true"`
}

// Validate checks the schedule on a time resolution and converts it.
func (s *NominationSpec) Validate(step time.Duration) ([]NominatedInterval, error) {
	if !ValidID(s.ResourceID) {
		return nil, FieldErrorf("resource_id", "%q is not a resource id", s.ResourceID)
	}
	if !ValidID(s.SessionID) {
		return nil, FieldErrorf("session_id", "%q is not a market session id", s.SessionID)
	}
	if len(s.Schedule) == 0 {
		return nil, FieldErrorf("schedule", "a nomination needs at least one interval")
	}
	out := make([]NominatedInterval, 0, len(s.Schedule))
	for i, iv := range s.Schedule {
		f := fieldIndex("schedule", i)
		start, end := iv.Start.UTC(), iv.End.UTC()
		if step > 0 && (start.UnixNano()%int64(step) != 0 || end.Sub(start) != step) {
			return nil, RuleErrorf(EInvalid, "nomination.interval", f, "%s to %s is not one %s market time unit", start.Format(time.RFC3339), end.Format(time.RFC3339), step)
		}
		if i > 0 && start.Before(out[i-1].End) {
			return nil, RuleErrorf(EInvalid, "nomination.interval", f+".start", "intervals must be sorted and must not overlap")
		}
		w, err := iv.Quantity.Watts(f + ".quantity")
		if err != nil {
			return nil, err
		}
		switch iv.Flow {
		case "", FlowImport:
		case FlowExport:
			w = -w
		default:
			return nil, FieldErrorf(f+".flow", "%q is not a flow: use import or export", iv.Flow)
		}
		out = append(out, NominatedInterval{Start: start, End: end, NetImport: w})
	}
	return out, nil
}

// NominationTx is the part of Tx that stores nominations: one per
// resource and session, versioned with history.
type NominationTx interface {
	CreateNomination(ctx context.Context, n *Nomination) error
	UpdateNomination(ctx context.Context, n *Nomination) error
	Nomination(ctx context.Context, id string) (*Nomination, error)
	// ListNominations filters on "resource_id", "session_id", "fsp_id",
	// "system_operator_id".
	ListNominations(ctx context.Context, f Filter, pg Page) ([]*Nomination, string, error)
	// NominationsCovering returns the resource's nominations with an
	// interval in [from, to), most recently changed last.
	NominationsCovering(ctx context.Context, resourceID string, from, to time.Time) ([]*Nomination, error)
}

// KindNomination is the audit and history kind of nominations.
const KindNomination = "nomination"
