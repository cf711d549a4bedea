package http_test

import (
	"slices"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// orderBody is an activation of FSP A's obligation: 150 kW in the first
// quarter hour, 200 kW in the second.
func (w *smWorld) orderBody() map[string]any {
	return map[string]any{"type": "activate", "obligation_id": w.obligation.ID, "setpoints": []map[string]any{
		{"start": w.day, "end": w.day.Add(15 * time.Minute), "quantity": pqKW(150)},
		{"start": w.day.Add(15 * time.Minute), "end": w.day.Add(30 * time.Minute), "quantity": pqKW(200)},
	}}
}

func steps(o flexhub.ActivationOrder) []string {
	var s []string
	for _, e := range o.Tracking {
		s = append(s, e.Status)
	}
	return s
}

func (w *smWorld) notifications(key, typ string) []flexhub.Notification {
	w.t.Helper()
	var page struct{ Items []flexhub.Notification }
	w.do("GET", "/v1/notifications?limit=500", key, nil, 200, &page)
	var out []flexhub.Notification
	for _, n := range page.Items {
		if n.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

// The life of an order through the API: the TSO orders, the FSP
// acknowledges and accepts, the scheduler starts and completes it at the
// set-points' times; every step is timestamped, audited and told to the
// other side; only the parties concerned can read it.
func TestActivationOrderLifecycle(t *testing.T) {
	w := newSecondaryWorld(t)
	var o flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o)
	if o.Status != flexhub.OrderCreated || o.FSPID != w.fspA || o.ResourceID != w.unitA || o.Unit != "W" || len(o.Setpoints) != 2 || o.Setpoints[1].Quantity != 200_000 {
		t.Fatalf("created order %+v", o)
	}
	if d := o.AckDeadline.Sub(o.CreatedAt); d != time.Minute {
		t.Errorf("ack deadline %s after creation, want the default PT1M", d)
	}
	if n := w.notifications(w.fspAKey, flexhub.NotifyActivationOrder); len(n) != 1 || n[0].ObjectID != o.ID {
		t.Errorf("FSP A's order notifications: %+v", n)
	}
	// Who reads it: the TSO, FSP A, the DSO of the unit's grid; not FSP B.
	w.do("GET", "/v1/activation-orders/"+o.ID, w.fspAKey, nil, 200, nil)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.dsoKey, nil, 200, nil)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.fspBKey, nil, 404, nil)
	var list struct{ Items []flexhub.ActivationOrder }
	w.do("GET", "/v1/activation-orders", w.fspAKey, nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].ID != o.ID {
		t.Errorf("FSP A's orders: %+v", list.Items)
	}
	w.do("GET", "/v1/activation-orders", w.fspBKey, nil, 200, &list)
	if len(list.Items) != 0 {
		t.Errorf("FSP B sees %d orders of FSP A", len(list.Items))
	}
	w.do("GET", "/v1/activation-orders?resource_id="+w.unitA, w.dsoKey, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Errorf("the DSO lists %d orders of a unit in its grid, want 1", len(list.Items))
	}
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspBKey, map[string]any{"status": "received"}, 404, nil)

	// FSP A acknowledges (twice: the second changes nothing) and accepts.
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "received"}, 200, &o)
	v := o.Version
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "received"}, 200, &o)
	if o.Version != v {
		t.Errorf("a repeated acknowledgement changed the order: version %d → %d", v, o.Version)
	}
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "accepted"}, 200, &o)
	if n := w.notifications(w.tsoKey, flexhub.NotifyActivationStatus); len(n) != 2 {
		t.Errorf("TSO status notifications: %d, want 2 (received, accepted)", len(n))
	}
	// The scheduler starts it at its first interval and completes it
	// after its last; no ack alert since it was acknowledged in time.
	w.advance(w.day.Sub(w.now()) + time.Second)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.tsoKey, nil, 200, &o)
	if o.Status != flexhub.OrderExecuting {
		t.Fatalf("at the first interval the order is %s, want executing", o.Status)
	}
	w.advance(30 * time.Minute)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.tsoKey, nil, 200, &o)
	if want := []string{"created", "received", "accepted", "executing", "completed"}; !slices.Equal(steps(o), want) {
		t.Errorf("tracking %v, want %v", steps(o), want)
	}
	for i := 1; i < len(o.Tracking); i++ {
		if o.Tracking[i].At.Before(o.Tracking[i-1].At) {
			t.Errorf("tracking not in time order: %+v", o.Tracking)
		}
	}
	if len(o.Alerts) != 0 {
		t.Errorf("alerts on an order acknowledged in time: %+v", o.Alerts)
	}
	for _, a := range []string{"activation_order.created", "activation_order.received", "activation_order.accepted", "activation_order.executing", "activation_order.completed"} {
		if count(w.env, o.ID, a) != 1 {
			t.Errorf("audit entries %s: %d, want 1", a, count(w.env, o.ID, a))
		}
	}
	w.run([]scenario{{name: "report on a finished order", method: "POST", path: "/v1/activation-orders/" + o.ID + "/status", token: w.fspAKey,
		body: map[string]any{"status": "ended_early", "reason": "late"}, wantStatus: 409, wantBody: []string{rule("order.terminal")}}})
}

// An order nobody acknowledges raises one ack_overdue alert to the
// system operator at the deadline, and is closed as ended early after its
// last interval.
func TestActivationOrderAckOverdue(t *testing.T) {
	w := newSecondaryWorld(t)
	var o flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o)
	w.advance(30 * time.Second)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.tsoKey, nil, 200, &o)
	if len(o.Alerts) != 0 {
		t.Fatalf("alert before the deadline: %+v", o.Alerts)
	}
	w.advance(31 * time.Second)
	w.advance(time.Minute)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.tsoKey, nil, 200, &o)
	if len(o.Alerts) != 1 || o.Alerts[0].Kind != "ack_overdue" {
		t.Fatalf("alerts after the deadline: %+v, want one ack_overdue", o.Alerts)
	}
	if n := w.notifications(w.tsoKey, flexhub.NotifyActivationAlert); len(n) != 1 {
		t.Errorf("TSO alert notifications: %d, want 1", len(n))
	}
	if n := w.notifications(w.fspBKey, flexhub.NotifyActivationAlert); len(n) != 0 {
		t.Errorf("FSP B got %d alerts about FSP A's order", len(n))
	}
	w.advance(w.day.Sub(w.now()) + 31*time.Minute)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.tsoKey, nil, 200, &o)
	if o.Status != flexhub.OrderEndedEarly {
		t.Errorf("an order never acknowledged is %s after its last interval, want ended_early", o.Status)
	}
}

// An end order stops an accepted order: the ended order becomes
// ended_early and names the end order; the FSP is told.
func TestActivationOrderEnd(t *testing.T) {
	w := newSecondaryWorld(t)
	var o, end flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o)
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "accepted"}, 200, nil)
	w.do("POST", "/v1/activation-orders", w.tsoKey, map[string]any{"type": "end", "ends_order_id": o.ID,
		"setpoints": []map[string]any{{"start": w.day.Add(15 * time.Minute), "end": w.day.Add(30 * time.Minute)}}}, 201, &end)
	w.do("GET", "/v1/activation-orders/"+o.ID, w.fspAKey, nil, 200, &o)
	if o.Status != flexhub.OrderEndedEarly || o.EndedByOrderID != end.ID {
		t.Errorf("ended order: status %s ended by %q, want ended_early by %s", o.Status, o.EndedByOrderID, end.ID)
	}
	if n := w.notifications(w.fspAKey, flexhub.NotifyActivationOrder); len(n) != 2 {
		t.Errorf("FSP A's order notifications: %d, want 2 (the order and its end)", len(n))
	}
	w.run([]scenario{{name: "end an ended order", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
		body:       map[string]any{"type": "end", "ends_order_id": o.ID, "setpoints": []map[string]any{{"start": w.day.Add(15 * time.Minute), "end": w.day.Add(30 * time.Minute)}}},
		wantStatus: 409, wantBody: []string{rule("order.ends")}}})
}

// Bad orders are refused with the rule that failed, and nothing is
// stored.
func TestActivationOrderBadInput(t *testing.T) {
	w := newSecondaryWorld(t)
	before := w.auditCount()
	with := func(fn func(b map[string]any, sp []map[string]any)) map[string]any {
		b := w.orderBody()
		fn(b, b["setpoints"].([]map[string]any))
		return b
	}
	w.run([]scenario{
		{name: "above the obligation", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(_ map[string]any, sp []map[string]any) { sp[1]["quantity"] = pqKW(250) }), wantStatus: 422, wantBody: []string{rule("order.above_obligation"), "setpoints[1].quantity"}},
		{name: "outside the obligation", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(_ map[string]any, sp []map[string]any) {
				sp[1]["start"], sp[1]["end"] = w.day.Add(time.Hour), w.day.Add(75*time.Minute)
			}), wantStatus: 422, wantBody: []string{rule("order.outside_obligation")}},
		{name: "misaligned", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(_ map[string]any, sp []map[string]any) { sp[0]["start"] = w.day.Add(5 * time.Minute) }), wantStatus: 422, wantBody: []string{rule("order.aligned")}},
		{name: "overlapping set-points", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(_ map[string]any, sp []map[string]any) { sp[1]["start"] = w.day }), wantStatus: 422, wantBody: []string{rule("order.interval")}},
		{name: "reactive quantity on an active obligation", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(_ map[string]any, sp []map[string]any) {
				delete(sp[0], "quantity")
				sp[0]["quantity_reactive"] = map[string]any{"value": 10, "unit": "kvar"}
			}), wantStatus: 422, wantBody: []string{rule("order.unit")}},
		{name: "unknown unit", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(_ map[string]any, sp []map[string]any) {
				sp[0]["quantity"] = map[string]any{"value": 10, "unit": "hp"}
			}), wantStatus: 422},
		{name: "in the past", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(b map[string]any, _ []map[string]any) {
				b["setpoints"] = []map[string]any{{"start": time.Now().UTC().Truncate(15 * time.Minute).Add(-time.Hour), "end": time.Now().UTC().Truncate(15 * time.Minute).Add(-45 * time.Minute), "quantity": pqKW(1)}}
				delete(b, "obligation_id")
				b["product_id"], b["resource_id"], b["direction"], b["type"] = w.product, w.unitA, "up", "limit"
			}), wantStatus: 422, wantBody: []string{rule("order.past")}},
		{name: "an FSP cannot order", method: "POST", path: "/v1/activation-orders", token: w.fspAKey, body: w.orderBody(), wantStatus: 403},
		{name: "an obligation bought by someone else", method: "POST", path: "/v1/activation-orders", token: w.dsoKey, body: w.orderBody(),
			wantStatus: 422, wantBody: []string{rule("order.obligation")}},
		{name: "no obligation on a manual product", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: with(func(b map[string]any, _ []map[string]any) {
				delete(b, "obligation_id")
				b["product_id"], b["resource_id"], b["direction"] = w.product, w.unitA, "up"
			}), wantStatus: 422, wantBody: []string{rule("order.obligation")}},
		{name: "an end order without the order to end", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
			body: map[string]any{"type": "end", "setpoints": []map[string]any{{"start": w.day, "end": w.day.Add(15 * time.Minute)}}}, wantStatus: 422, wantBody: []string{rule("order.ends")}},
	})
	var list struct{ Items []flexhub.ActivationOrder }
	w.do("GET", "/v1/activation-orders", w.tsoKey, nil, 200, &list)
	if len(list.Items) != 0 || w.auditCount() != before {
		t.Errorf("refused orders left %d orders and %d audit entries", len(list.Items), w.auditCount()-before)
	}
}

// A batch is stored whole or not at all; a refused order is named by its
// index; a retry with the same key returns the same batch.
func TestActivationOrderBatch(t *testing.T) {
	w := newSecondaryWorld(t)
	good := w.orderBody()
	bad := w.orderBody()
	bad["setpoints"].([]map[string]any)[0]["quantity"] = pqKW(900)
	before := w.auditCount()
	w.run([]scenario{{name: "one bad order refuses the batch", method: "POST", path: "/v1/activation-order-batches", token: w.tsoKey,
		body: map[string]any{"orders": []any{good, bad}}, wantStatus: 422, wantBody: []string{rule("order.above_obligation"), "orders[1].setpoints[0].quantity"}}})
	var list struct{ Items []flexhub.ActivationOrder }
	w.do("GET", "/v1/activation-orders", w.tsoKey, nil, 200, &list)
	if len(list.Items) != 0 || w.auditCount() != before {
		t.Fatalf("a refused batch left %d orders, %d audit entries", len(list.Items), w.auditCount()-before)
	}
	limit := map[string]any{"type": "limit", "obligation_id": w.obligation.ID, "setpoints": []map[string]any{
		{"start": w.day.Add(30 * time.Minute), "end": w.day.Add(45 * time.Minute), "quantity": pqKW(50)}}}
	var b struct {
		ID     string
		Orders []flexhub.ActivationOrder
	}
	w.do("POST", "/v1/activation-order-batches", w.tsoKey, map[string]any{"orders": []any{good, limit}}, 201, &b, "Idempotency-Key", "batch-1")
	if len(b.Orders) != 2 || b.Orders[0].BatchID != b.ID || b.Orders[1].Type != flexhub.OrderLimit {
		t.Fatalf("batch %+v", b)
	}
	var again struct{ ID string }
	_, h := w.do("POST", "/v1/activation-order-batches", w.tsoKey, map[string]any{"orders": []any{good, limit}}, 201, &again, "Idempotency-Key", "batch-1")
	if again.ID != b.ID || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry: batch %s (replayed %q), want %s", again.ID, h.Get("Idempotent-Replayed"), b.ID)
	}
	w.do("GET", "/v1/activation-orders?batch_id="+b.ID, w.fspAKey, nil, 200, &list)
	if len(list.Items) != 2 {
		t.Errorf("FSP A lists %d orders of the batch, want 2", len(list.Items))
	}
}
