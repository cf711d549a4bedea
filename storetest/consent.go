package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testConsentsInForce: the consents in force for a set of metering
// points and a scope, read at once (the real-time stream's check): only
// active consents inside their period that cover the scope and name one
// of the metering points, each once; the metering points' owners and
// the resources' metering points, read at once.
func (s *suite) testConsentsInForce(t *testing.T) {
	st, ws := s.seed(t, 2)
	mp0, mp1 := ws[0].MeteringPoint.ID, ws[1].MeteringPoint.ID
	mk := func(w *world, mps []string, status string, from, to time.Time, scopes ...string) *flexhub.Consent {
		return &flexhub.Consent{ID: flexhub.NewID(), Status: status, RequestedBy: w.Consumer.ID, Channel: "api", CreatedAt: base, UpdatedAt: base,
			ConsentSpec: flexhub.ConsentSpec{DataUserID: w.FSP.ID, OwnerID: w.Consumer.ID, MeteringPointIDs: mps, Scopes: scopes, Purpose: "test",
				ValidFrom: from, ValidTo: to}}
	}
	from, to := base.Add(-time.Hour), base.Add(30*24*time.Hour)
	realtime := mk(ws[0], []string{mp0}, flexhub.ConsentActive, from, to, flexhub.ScopeMeterHistory, flexhub.ScopeMeterRealtime)
	history := mk(ws[0], []string{mp0}, flexhub.ConsentActive, from, to, flexhub.ScopeMeterHistory)
	revoked := mk(ws[0], []string{mp0}, flexhub.ConsentRevoked, from, to, flexhub.ScopeMeterRealtime)
	requested := mk(ws[0], []string{mp0}, flexhub.ConsentRequested, from, to, flexhub.ScopeMeterRealtime)
	later := mk(ws[0], []string{mp0}, flexhub.ConsentActive, base.Add(24*time.Hour), to, flexhub.ScopeMeterRealtime)
	both := mk(ws[1], []string{mp1, mp0}, flexhub.ConsentActive, from, base.Add(time.Hour), flexhub.ScopeMeterRealtime)
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, c := range []*flexhub.Consent{realtime, history, revoked, requested, later, both} {
			if err := tx.CreateConsent(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	ids := func(cs ...*flexhub.Consent) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	check := func(what string, mps []string, scope string, at time.Time, want ...*flexhub.Consent) {
		t.Helper()
		var got []*flexhub.Consent
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			var err error
			got, err = tx.ConsentsInForce(ctx, mps, scope, at)
			return err
		})
		if g, w := ids(got...), ids(want...); !slices.Equal(g, w) {
			t.Errorf("%s: got %v, want %v", what, g, w)
		}
		if !slices.IsSortedFunc(got, func(a, b *flexhub.Consent) int { return strings.Compare(a.ID, b.ID) }) {
			t.Errorf("%s: not ordered by id", what)
		}
		for _, c := range got {
			if c.Purpose != "test" || len(c.MeteringPointIDs) == 0 {
				t.Errorf("%s: consent read back incomplete: %+v", what, c)
			}
		}
	}
	check("realtime, one metering point", []string{mp0}, flexhub.ScopeMeterRealtime, base, realtime, both)
	check("realtime, both metering points (a consent naming both once)", []string{mp0, mp1}, flexhub.ScopeMeterRealtime, base, realtime, both)
	check("history", []string{mp0}, flexhub.ScopeMeterHistory, base, realtime, history)
	check("a day later: one period over, another begun", []string{mp0, mp1}, flexhub.ScopeMeterRealtime, base.Add(24*time.Hour), realtime, later)
	check("after every period", []string{mp0, mp1}, flexhub.ScopeMeterRealtime, to)
	check("a metering point no consent names", []string{ws[1].ConnectionPoint.ID}, flexhub.ScopeMeterRealtime, base)
	check("no metering points", nil, flexhub.ScopeMeterRealtime, base)
	// Revoking takes the consent out at once.
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		realtime.Status = flexhub.ConsentRevoked
		return tx.UpdateConsent(ctx, realtime)
	})
	check("after the revocation", []string{mp0}, flexhub.ScopeMeterRealtime, base, both)

	// Whose the metering points' data is, and the resources' metering
	// points: one read each; unknown ids (and resources without a
	// metering point) absent.
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		owners, err := tx.MeteringPointOwners(ctx, []string{mp0, mp1, ws[0].Unit.ID})
		if err != nil {
			return err
		}
		want := map[string]flexhub.MeteringPointOwner{
			mp0: {ConsumerID: ws[0].Consumer.ID, DSOID: ws[0].DSO.ID},
			mp1: {ConsumerID: ws[1].Consumer.ID, DSOID: ws[1].DSO.ID},
		}
		if len(owners) != len(want) || owners[mp0] != want[mp0] || owners[mp1] != want[mp1] {
			t.Errorf("metering point owners: got %+v, want %+v", owners, want)
		}
		rmp, err := tx.ResourceMeteringPoints(ctx, []string{ws[0].Unit.ID, ws[1].Unit.ID, ws[0].Group.ID, mp0})
		if err != nil {
			return err
		}
		if len(rmp) != 2 || rmp[ws[0].Unit.ID] != mp0 || rmp[ws[1].Unit.ID] != mp1 {
			t.Errorf("resources' metering points: got %+v, want the two units' only", rmp)
		}
		return nil
	})
}
