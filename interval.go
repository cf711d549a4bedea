package flexhub

import "time"

// Interval is a half-open time interval [Start, End) in UTC. A nil End is
// open-ended.
type Interval struct {
	Start time.Time  `json:"start" doc:"inclusive, ISO 8601 UTC"`
	End   *time.Time `json:"end,omitempty" doc:"exclusive, ISO 8601 UTC; absent means open-ended"`
}

// Contains reports whether t lies in [Start, End).
func (iv Interval) Contains(t time.Time) bool {
	return !t.Before(iv.Start) && (iv.End == nil || t.Before(*iv.End))
}

// Validate normalises to UTC and checks that End is after Start.
func (iv *Interval) Validate(field string) error {
	if iv.Start.IsZero() {
		return FieldErrorf(field+".start", "start is required")
	}
	iv.Start = iv.Start.UTC()
	if iv.End != nil {
		e := iv.End.UTC()
		iv.End = &e
		if !e.After(iv.Start) {
			return FieldErrorf(field+".end", "end %s must be after start %s", e.Format(time.RFC3339), iv.Start.Format(time.RFC3339))
		}
	}
	return nil
}
