package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testActivationBatches: the batch methods store what the one-order
// methods store. Orders created together are each readable with their
// history; steps written together are each a version with its history
// row, and a batch in which one order moved on is refused as a conflict
// naming it, leaving every order of the batch as it was and the
// transaction usable; audit entries and notifications appended together
// continue the chain and the feed in slice order.
func (s *suite) testActivationBatches(t *testing.T) {
	t.Run("Reads", s.testBatchReads)
	st, ws := s.seed(t, 1)
	w := ws[0]
	const n = 300
	orders := make([]*flexhub.ActivationOrder, n)
	for i := range orders {
		start := base.Add(time.Duration(i%4+1) * time.Hour)
		o := &flexhub.ActivationOrder{ID: flexhub.NewID(), Type: flexhub.OrderActivate, SystemOperatorID: w.TSO.ID, FSPID: w.FSP.ID,
			ResourceID: w.Unit.ID, ProductID: w.Product.ID, BatchID: "b1", Direction: "up", Unit: "W",
			Setpoints: []flexhub.Setpoint{{Start: start, End: start.Add(15 * time.Minute), Quantity: int64(1000 + i)}},
			Status:    flexhub.OrderCreated, AckDeadline: base.Add(time.Duration(i) * time.Second), CreatedAt: base, UpdatedAt: base,
			Tracking: []flexhub.OrderEvent{{Status: flexhub.OrderCreated, At: base, By: w.TSO.ID, Channel: "rest"}}}
		if i%2 == 0 {
			o.ObligationID = w.Obligation.ID
		}
		orders[i] = o
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.CreateActivationOrders(ctx, orders)
	})
	ids := make([]string, n)
	for i, o := range orders {
		ids[i] = o.ID
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.ActivationOrders(ctx, append(slices.Clone(ids), flexhub.NewID()))
		if err != nil {
			return err
		}
		if len(got) != n {
			t.Errorf("ActivationOrders read %d of %d (and no unknown id)", len(got), n)
		}
		for i, o := range orders {
			if o.Version != 1 {
				t.Errorf("order %d: version %d after create, want 1", i, o.Version)
			}
			sameJSON(t, fmt.Sprintf("order %d read back", i), got[o.ID], o)
			one, err := tx.ActivationOrder(ctx, o.ID)
			if err != nil {
				return err
			}
			sameJSON(t, fmt.Sprintf("order %d read alone", i), one, o)
			vs, err := tx.Versions(ctx, flexhub.KindActivationOrder, o.ID)
			if err != nil {
				return err
			}
			if len(vs) != 1 || vs[0].Version != 1 || !vs[0].ValidFrom.Equal(base) || vs[0].ValidTo != nil {
				t.Errorf("order %d history %+v, want version 1 open from %s", i, vs, base)
			}
		}
		// The indexed columns are filled: the batch, the obligation, due_at.
		byBatch, _, err := tx.ListActivationOrders(ctx, flexhub.Filter{"batch_id": "b1"}, flexhub.Page{Limit: flexhub.MaxPageLimit})
		if err != nil {
			return err
		}
		if len(byBatch) != n {
			t.Errorf("batch_id filter: %d orders, want %d", len(byBatch), n)
		}
		byObl, _, err := tx.ListActivationOrders(ctx, flexhub.Filter{"obligation_id": w.Obligation.ID}, flexhub.Page{Limit: flexhub.MaxPageLimit})
		if err != nil {
			return err
		}
		if len(byObl) != n/2 {
			t.Errorf("obligation_id filter: %d orders, want %d", len(byObl), n/2)
		}
		due, err := tx.DueActivationOrders(ctx, base.Add(9*time.Second), n)
		if err != nil {
			return err
		}
		if len(due) != 10 {
			t.Errorf("due at +9s: %d orders, want the 10 whose ack deadline passed", len(due))
		}
		return nil
	})
	// An id taken already: a conflict, and none of the batch is stored.
	dup := clone(t, orders[0])
	fresh := clone(t, orders[1])
	fresh.ID, fresh.Version = flexhub.NewID(), 0
	err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.CreateActivationOrders(ctx, []*flexhub.ActivationOrder{fresh, dup})
	})
	if flexhub.ErrorKind(err) != flexhub.EConflict {
		t.Errorf("batch with a taken id: %v, want conflict", err)
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if _, err := tx.ActivationOrder(ctx, fresh.ID); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("the refused batch's other order: %v, want not found", err)
		}
		return nil
	})

	// Steps: order 0 gets two in one batch (received, then accepted),
	// the others one each.
	at1, at2 := base.Add(time.Minute), base.Add(2*time.Minute)
	step := func(o *flexhub.ActivationOrder, st string, at time.Time) *flexhub.ActivationOrder {
		c := clone(t, o)
		if _, err := c.Step(st, w.FSP.ID, "mqtt", "", at); err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := step(orders[0], flexhub.OrderReceived, at1)
	second := step(first, flexhub.OrderAccepted, at2)
	second.Version = first.Version + 1
	steps := []*flexhub.ActivationOrder{first, second}
	for _, o := range orders[1:100] {
		steps = append(steps, step(o, flexhub.OrderReceived, at1))
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.UpdateActivationOrders(ctx, steps)
	})
	if first.Version != 2 || second.Version != 3 || steps[2].Version != 2 {
		t.Errorf("versions after the batch: %d, %d, %d; want 2, 3, 2", first.Version, second.Version, steps[2].Version)
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.ActivationOrder(ctx, orders[0].ID)
		if err != nil {
			return err
		}
		sameJSON(t, "order 0 after two steps", got, second)
		vs, err := tx.Versions(ctx, flexhub.KindActivationOrder, orders[0].ID)
		if err != nil {
			return err
		}
		if len(vs) != 3 {
			t.Fatalf("order 0 has %d versions, want 3", len(vs))
		}
		for i, want := range []struct {
			from time.Time
			to   *time.Time
		}{{base, &at1}, {at1, &at2}, {at2, nil}} {
			v := vs[i]
			if v.Version != int64(i+1) || !v.ValidFrom.Equal(want.from) || (v.ValidTo == nil) != (want.to == nil) || (v.ValidTo != nil && !v.ValidTo.Equal(*want.to)) {
				t.Errorf("order 0 version %d: %d from %s to %v, want from %s to %v", i+1, v.Version, v.ValidFrom, v.ValidTo, want.from, want.to)
			}
		}
		var mid flexhub.ActivationOrder
		if err := tx.AsOf(ctx, flexhub.KindActivationOrder, orders[0].ID, at1.Add(time.Second), &mid); err != nil {
			return err
		}
		if mid.Status != flexhub.OrderReceived || mid.Version != 2 {
			t.Errorf("order 0 as of between the steps: %s v%d, want received v2", mid.Status, mid.Version)
		}
		o5, err := tx.ActivationOrder(ctx, orders[5].ID)
		if err != nil {
			return err
		}
		sameJSON(t, "order 5 after its step", o5, steps[6])
		// Acknowledged orders are due no longer at their ack deadline.
		due, err := tx.DueActivationOrders(ctx, base.Add(9*time.Second), n)
		if err != nil {
			return err
		}
		if len(due) != 0 {
			t.Errorf("due at +9s after the acknowledgements: %d, want 0", len(due))
		}
		return nil
	})

	// A lost update: order 150 moved on after it was read. The batch is
	// refused as a conflict naming it; orders 140-160 stay as they were;
	// the transaction goes on.
	read := map[string]*flexhub.ActivationOrder{}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
		read, err = tx.ActivationOrders(ctx, ids[140:161])
		return err
	})
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		o := read[ids[150]]
		c := clone(t, o)
		if _, err := c.Step(flexhub.OrderRejected, w.FSP.ID, "rest", "no", at1); err != nil {
			return err
		}
		return tx.UpdateActivationOrder(ctx, c)
	})
	var batch []*flexhub.ActivationOrder
	for _, id := range ids[140:161] {
		batch = append(batch, step(read[id], flexhub.OrderDelivered, at2))
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		err := tx.UpdateActivationOrders(ctx, batch)
		if flexhub.ErrorKind(err) != flexhub.EConflict {
			t.Errorf("batch with a stale order: %v, want conflict", err)
		} else if want := ids[150]; !strings.Contains(err.Error(), want) {
			t.Errorf("conflict %q does not name order %s", err, want)
		}
		for _, o := range batch {
			if o.Version != 1 {
				t.Errorf("order %s: version %d after the refused batch, want 1 as sent", o.ID, o.Version)
			}
		}
		// The transaction is still usable: the batch without the stale
		// order goes through.
		ok := slices.DeleteFunc(slices.Clone(batch), func(o *flexhub.ActivationOrder) bool { return o.ID == ids[150] })
		return tx.UpdateActivationOrders(ctx, ok)
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.ActivationOrders(ctx, ids[140:161])
		if err != nil {
			return err
		}
		for _, id := range ids[140:161] {
			want, vs := flexhub.OrderDelivered, 2
			if id == ids[150] {
				want = flexhub.OrderRejected
			}
			if got[id].Status != want || got[id].Version != 2 {
				t.Errorf("order %s: %s v%d, want %s v2", id, got[id].Status, got[id].Version, want)
			}
			h, err := tx.Versions(ctx, flexhub.KindActivationOrder, id)
			if err != nil {
				return err
			}
			if len(h) != vs || h[0].ValidTo == nil || h[1].ValidTo != nil {
				t.Errorf("order %s: %d versions (first closed %v, last open %v), want %d", id, len(h), h[0].ValidTo != nil, h[len(h)-1].ValidTo == nil, vs)
			}
		}
		return nil
	})
	// A missing order: not found, nothing written.
	ghost := clone(t, orders[200])
	ghost.ID = flexhub.NewID()
	err = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.UpdateActivationOrders(ctx, []*flexhub.ActivationOrder{step(orders[201], flexhub.OrderDelivered, at2), ghost})
	})
	if flexhub.ErrorKind(err) != flexhub.ENotFound {
		t.Errorf("batch with a missing order: %v, want not found", err)
	}

	// Audit entries and notifications in batches continue the chain and
	// the feed after single appends, in slice order.
	var all []*flexhub.AuditEntry
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		e := auditEntry(1, "one", w.TSO.ID)
		if err := tx.AppendAudit(ctx, e); err != nil {
			return err
		}
		all = append(all, e)
		var es []*flexhub.AuditEntry
		for i := 2; i <= 400; i++ {
			es = append(es, auditEntry(i, fmt.Sprintf("obj%d", i), w.TSO.ID, w.FSP.ID, w.TSO.ID))
		}
		if err := tx.AppendAudits(ctx, es); err != nil {
			return err
		}
		all = append(all, es...)
		return nil
	})
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		es := []*flexhub.AuditEntry{auditEntry(401, "x", w.FSP.ID), auditEntry(402, "y", w.FSP.ID)}
		all = append(all, es...)
		return tx.AppendAudits(ctx, es)
	})
	listed := allAudit(t, st, "", "")
	checkChain(t, listed, 402)
	for i := range min(len(listed), len(all)) {
		sameJSON(t, fmt.Sprintf("audit entry %d", i+1), listed[i], all[i])
	}
	if fsp := allAudit(t, st, w.FSP.ID, ""); len(fsp) != 401 {
		t.Errorf("entries naming the FSP: %d, want 401", len(fsp))
	}
	if one := allAudit(t, st, "", "obj17"); len(one) != 1 || one[0].Seq != 17 {
		t.Errorf("entries about obj17: %+v", one)
	}

	var head int64
	view(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
		head, err = tx.NotificationHead(ctx)
		return err
	})
	var notes []*flexhub.Notification
	for i := range 250 {
		p := w.FSP.ID
		if i%5 == 0 {
			p = w.TSO.ID
		}
		notes = append(notes, &flexhub.Notification{PartyID: p, At: base.Add(time.Duration(i) * time.Millisecond), Type: flexhub.NotifyActivationOrder,
			ObjectKind: flexhub.KindActivationOrder, ObjectID: ids[i], Text: fmt.Sprintf("note %d", i)})
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if err := tx.CreateNotification(ctx, notes[0]); err != nil {
			return err
		}
		return tx.CreateNotifications(ctx, notes[1:])
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.NotificationsAfter(ctx, head, flexhub.MaxPageLimit)
		if err != nil {
			return err
		}
		if len(got) != len(notes) {
			t.Fatalf("%d notifications after %d, want %d", len(got), head, len(notes))
		}
		for i, n := range got {
			if n.Seq != head+int64(i)+1 {
				t.Errorf("notification %d: seq %d, want %d", i, n.Seq, head+int64(i)+1)
			}
			sameJSON(t, fmt.Sprintf("notification %d", i), n, notes[i])
		}
		tso, err := tx.ListNotifications(ctx, w.TSO.ID, head, flexhub.MaxPageLimit)
		if err != nil {
			return err
		}
		if len(tso) != 50 {
			t.Errorf("the TSO's notifications: %d, want 50", len(tso))
		}
		return nil
	})
}

// testBatchReads: Resources and PrequalificationsFor read what Resource
// and ListPrequalifications (by resource and product) read, for many ids
// at once; unknown ids are left out.
func (s *suite) testBatchReads(t *testing.T) {
	st, ws := s.seed(t, 2)
	w0, w1 := ws[0], ws[1]
	extra := clone(t, w0.Prequal)
	extra.ID, extra.Status, extra.Version = flexhub.NewID(), flexhub.PrequalApproved, 0
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.CreatePrequalification(ctx, extra)
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		rs, err := tx.Resources(ctx, []string{w0.Unit.ID, w1.Unit.ID, flexhub.NewID(), w0.Unit.ID})
		if err != nil {
			return err
		}
		if len(rs) != 2 {
			t.Errorf("Resources: %d, want 2", len(rs))
		}
		for _, w := range ws {
			one, err := tx.Resource(ctx, w.Unit.ID)
			if err != nil {
				return err
			}
			sameJSON(t, "resource "+w.Unit.ID, rs[w.Unit.ID], one)
		}
		for _, c := range []struct {
			product string
			want    []string
		}{{w0.Product.ID, []string{w0.Prequal.ID, extra.ID}}, {w1.Product.ID, []string{w1.Prequal.ID}}, {flexhub.NewID(), nil}} {
			got, err := tx.PrequalificationsFor(ctx, c.product, []string{w0.Unit.ID, w1.Unit.ID, flexhub.NewID()})
			if err != nil {
				return err
			}
			var ids []string
			for _, q := range got {
				ids = append(ids, q.ID)
			}
			slices.Sort(ids)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(ids, want) {
				t.Errorf("PrequalificationsFor product %s: %v, want %v", c.product, ids, want)
			}
		}
		return nil
	})
}
