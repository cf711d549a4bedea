package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testNominations: one nomination per resource and session (a second is
// a conflict), versioned updates with history, list filters, and
// NominationsCovering finding exactly those with an interval in a range.
func (s *suite) testNominations(t *testing.T) {
	st, ws := s.seed(t, 2)
	w := ws[0]
	day := base.Add(48 * time.Hour).Truncate(24 * time.Hour).Add(17 * time.Hour)
	sched := func(from time.Time, n int, w int64) []flexhub.NominatedInterval {
		var out []flexhub.NominatedInterval
		for i := range n {
			s := from.Add(time.Duration(i) * 15 * time.Minute)
			out = append(out, flexhub.NominatedInterval{Start: s, End: s.Add(15 * time.Minute), NetImport: w})
		}
		return out
	}
	n := &flexhub.Nomination{ID: flexhub.NewID(), ResourceID: w.Unit.ID, SessionID: w.Session.ID, ProductID: w.Product.ID,
		FSPID: w.FSP.ID, SystemOperatorID: w.DSO.ID, Schedule: sched(day, 4, 150_000), GateClosure: w.Session.GateClosure,
		Plausibility: "unchecked: no history", CreatedAt: base, UpdatedAt: base}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateNomination(ctx, n) })
	dup := *n
	dup.ID = flexhub.NewID()
	wantKind(t, "a second nomination of the resource for the session",
		tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateNomination(ctx, &dup) }), flexhub.EConflict)

	changed := clone(t, n)
	changed.Schedule = sched(day.Add(time.Hour), 2, -20_000)
	changed.UpdatedAt = base.Add(time.Minute)
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.UpdateNomination(ctx, changed) })
	stale := clone(t, n) // still at version 1
	wantKind(t, "an update from a stale version",
		tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.UpdateNomination(ctx, stale) }), flexhub.EConflict)

	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.Nomination(ctx, n.ID)
		if err != nil {
			return err
		}
		sameJSON(t, "nomination", got, changed)
		list, _, err := tx.ListNominations(ctx, flexhub.Filter{"fsp_id": w.FSP.ID}, flexhub.Page{})
		if err != nil || len(list) != 1 {
			t.Errorf("by FSP: %d, %v", len(list), err)
		}
		list, _, err = tx.ListNominations(ctx, flexhub.Filter{"fsp_id": ws[1].FSP.ID}, flexhub.Page{})
		if err != nil || len(list) != 0 {
			t.Errorf("another FSP's: %d, %v", len(list), err)
		}
		// the updated schedule covers 18:00-18:30: the old range 17:00-18:00 no longer
		for _, c := range []struct {
			from, to time.Time
			want     int
		}{
			{day, day.Add(time.Hour), 0},
			{day.Add(time.Hour), day.Add(time.Hour + time.Minute), 1},
			{day.Add(90 * time.Minute), day.Add(2 * time.Hour), 0},
			{day.Add(-24 * time.Hour), day.Add(24 * time.Hour), 1},
		} {
			got, err := tx.NominationsCovering(ctx, w.Unit.ID, c.from, c.to)
			if err != nil || len(got) != c.want {
				t.Errorf("covering %s-%s: %d, %v; want %d", c.from, c.to, len(got), err, c.want)
			}
		}
		return nil
	})
}
