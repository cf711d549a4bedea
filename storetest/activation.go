package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testActivation: activation orders are stored with their tracking,
// updated optimistically with every version kept, listed by every filter
// the API offers, and found by the sweep through due_at: earliest first,
// never once final.
func (s *suite) testActivation(t *testing.T) {
	st, ws := s.seed(t, 1)
	w := ws[0]
	mk := func(status string, first time.Duration) *flexhub.ActivationOrder {
		start := base.Add(first)
		o := &flexhub.ActivationOrder{ID: flexhub.NewID(), Type: flexhub.OrderActivate, SystemOperatorID: w.TSO.ID, FSPID: w.FSP.ID,
			ResourceID: w.Unit.ID, ProductID: w.Product.ID, ObligationID: w.Obligation.ID, Direction: "up", Unit: "W",
			Setpoints: []flexhub.Setpoint{{Start: start, End: start.Add(15 * time.Minute), Quantity: 100_000}},
			Status:    status, AckDeadline: base.Add(time.Minute), CreatedAt: base, UpdatedAt: base,
			Tracking: []flexhub.OrderEvent{{Status: flexhub.OrderCreated, At: base, By: w.TSO.ID, Channel: "rest"}}}
		return o
	}
	// DueAt: a fresh unacknowledged order is due at its ack deadline; an
	// accepted one at its start; a final one never.
	early := mk(flexhub.OrderDelivered, 30*time.Minute)     // due at the ack deadline, base+1m
	accepted := mk(flexhub.OrderAccepted, 10*time.Minute)   // due at its start, base+10m
	late := mk(flexhub.OrderAccepted, 3*time.Hour)          // due at base+3h
	done := mk(flexhub.OrderCompleted, 0)                   // final: never due
	other := mk(flexhub.OrderCreated, 20*time.Minute)       // filters
	other.ObligationID, other.Type = "", flexhub.OrderLimit // an order without obligation
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, o := range []*flexhub.ActivationOrder{early, accepted, late, done, other} {
			if err := tx.CreateActivationOrder(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.ActivationOrder(ctx, early.ID)
		if err != nil {
			return err
		}
		if got.Version != 1 || len(got.Tracking) != 1 || got.Setpoints[0].Quantity != 100_000 || !got.AckDeadline.Equal(early.AckDeadline) {
			t.Errorf("read back %+v", got)
		}
		if _, err := tx.ActivationOrder(ctx, flexhub.NewID()); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("missing order: %v, want not found", err)
		}
		due, err := tx.DueActivationOrders(ctx, base.Add(15*time.Minute), 10)
		if err != nil {
			return err
		}
		var ids []string
		for _, o := range due {
			ids = append(ids, o.ID)
		}
		// other (created, no alert yet) is due at its ack deadline too,
		// base+1m, like early; ties go by id.
		want := []string{early.ID, other.ID}
		if other.ID < early.ID {
			want = []string{other.ID, early.ID}
		}
		want = append(want, accepted.ID)
		if !slices.Equal(ids, want) {
			t.Errorf("due at +15m: %v, want %v", ids, want)
		}
		if one, err := tx.DueActivationOrders(ctx, base.Add(15*time.Minute), 1); err != nil || len(one) != 1 || one[0].ID != want[0] {
			t.Errorf("limit 1: %v %v", one, err)
		}
		for f, wantIDs := range map[string][]string{
			"obligation_id":      {early.ID, accepted.ID, late.ID, done.ID},
			"status":             {accepted.ID, late.ID},
			"fsp_id":             {early.ID, accepted.ID, late.ID, done.ID, other.ID},
			"system_operator_id": {early.ID, accepted.ID, late.ID, done.ID, other.ID},
			"resource_id":        {early.ID, accepted.ID, late.ID, done.ID, other.ID},
			"product_id":         {early.ID, accepted.ID, late.ID, done.ID, other.ID},
		} {
			val := map[string]string{"obligation_id": w.Obligation.ID, "status": flexhub.OrderAccepted, "fsp_id": w.FSP.ID,
				"system_operator_id": w.TSO.ID, "resource_id": w.Unit.ID, "product_id": w.Product.ID}[f]
			got, _, err := tx.ListActivationOrders(ctx, flexhub.Filter{f: val}, flexhub.Page{Limit: 100})
			if err != nil {
				return err
			}
			var gotIDs []string
			for _, o := range got {
				gotIDs = append(gotIDs, o.ID)
			}
			slices.Sort(gotIDs)
			slices.Sort(wantIDs)
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("filter %s=%s: %v, want %v", f, val, gotIDs, wantIDs)
			}
		}
		if _, _, err := tx.ListActivationOrders(ctx, flexhub.Filter{"colour": "red"}, flexhub.Page{}); err == nil {
			t.Error("unknown filter accepted")
		}
		// Every order of a set of resources, by id; a resource without
		// orders adds none.
		byRes, err := tx.ResourceActivationOrders(ctx, []string{w.Unit.ID, "no-such-resource"}, base.Add(-24*time.Hour), base.Add(24*time.Hour))
		if err != nil {
			return err
		}
		var gotIDs []string
		for _, o := range byRes {
			gotIDs = append(gotIDs, o.ID)
		}
		wantIDs := []string{early.ID, accepted.ID, late.ID, done.ID, other.ID}
		slices.Sort(wantIDs)
		if !slices.Equal(gotIDs, wantIDs) || byRes[0].ResourceID != w.Unit.ID {
			t.Errorf("orders of the unit: %v, want %v", gotIDs, wantIDs)
		}
		// Orders reaching into [base+15m, base+3h): not the one ending at
		// base+15m nor the one starting at base+3h; by ResourceActivation-
		// Orders and by ListActivationOrders' time filters alike.
		from, to := base.Add(15*time.Minute), base.Add(3*time.Hour)
		wantIDs = []string{early.ID, accepted.ID, other.ID}
		slices.Sort(wantIDs)
		byRes, err = tx.ResourceActivationOrders(ctx, []string{w.Unit.ID}, from, to)
		if err != nil {
			return err
		}
		listed, _, err := tx.ListActivationOrders(ctx, flexhub.Filter{"system_operator_id": w.TSO.ID,
			"ends_after": flexhub.OrderTimeKey(from), "starts_before": flexhub.OrderTimeKey(to)}, flexhub.Page{Limit: 100})
		if err != nil {
			return err
		}
		for what, os := range map[string][]*flexhub.ActivationOrder{"orders of the unit in the window": byRes, "orders listed in the window": listed} {
			var ids []string
			for _, o := range os {
				ids = append(ids, o.ID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, wantIDs) {
				t.Errorf("%s: %v, want %v", what, ids, wantIDs)
			}
		}
		// Metering points read together; one that does not exist absent.
		mps, err := tx.MeteringPoints(ctx, []string{w.MeteringPoint.ID, "no-such-point"})
		if err != nil || len(mps) != 1 || mps[w.MeteringPoint.ID] == nil || mps[w.MeteringPoint.ID].ID != w.MeteringPoint.ID {
			t.Errorf("metering points: %v %v", mps, err)
		}
		return nil
	})
	// A step is an optimistic update; the old version stays readable; a
	// final order leaves the due list.
	stale := clone(t, accepted)
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		o, err := tx.ActivationOrder(ctx, accepted.ID)
		if err != nil {
			return err
		}
		if _, err := o.Step(flexhub.OrderCompleted, w.FSP.ID, "mqtt", "", base.Add(30*time.Minute)); err != nil {
			return err
		}
		return tx.UpdateActivationOrder(ctx, o)
	})
	err := st.Update(context.Background(), func(tx flexhub.Tx) error {
		stale.Status = flexhub.OrderRejected
		return tx.UpdateActivationOrder(context.Background(), stale)
	})
	if flexhub.ErrorKind(err) != flexhub.EConflict {
		t.Errorf("stale update: %v, want conflict", err)
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		vs, err := tx.Versions(ctx, flexhub.KindActivationOrder, accepted.ID)
		if err != nil {
			return err
		}
		if len(vs) != 2 {
			t.Errorf("versions of a stepped order: %d, want 2", len(vs))
		}
		due, err := tx.DueActivationOrders(ctx, base.Add(15*time.Minute), 10)
		if err != nil {
			return err
		}
		for _, o := range due {
			if o.ID == accepted.ID {
				t.Error("a completed order is still due")
			}
		}
		return nil
	})
}
