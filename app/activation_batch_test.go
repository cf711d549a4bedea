package app_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/postgres/pgtest"
	"github.com/flexhub/flexhub/sqlite"
)

// The batch paths of activation orders (a batch of orders, a batch of
// acknowledgements, the sweep) write through the set-based store methods;
// what a user relies on must hold as it did order by order: each order
// and each step readable with its history, one audit entry per step whose
// payload hash is that of the stored version, the chain intact, the
// notifications in order, and a refused report changing nothing.
func TestActivationBatches(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "flexhub.db"), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		testActivationBatches(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		testActivationBatches(t, pgtest.Open(t, "app_batches"))
	})
}

type batchWorld struct {
	svc           *app.Service
	dso, fa, fb   *flexhub.Party
	product       string
	unitsA, unitB []string
	now           time.Time
}

func newBatchWorld(t *testing.T, st flexhub.Store) *batchWorld {
	ctx := t.Context()
	w := &batchWorld{svc: app.New(st, nil), now: time.Now().UTC().Truncate(time.Microsecond)}
	w.svc.SetClock(func() time.Time { return w.now })
	ic, err := w.svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := w.svc.Authenticate(ctx, ic.Token)
	if err != nil {
		t.Fatal(err)
	}
	party := func(stem string, role flexhub.Role) *flexhub.Party {
		c, err := w.svc.CreateParty(app.WithActor(ctx, admin), flexhub.PartySpec{EIC: flexhub.EICFromStem(stem), Name: stem, Roles: []flexhub.Role{role}}, "")
		if err != nil {
			t.Fatal(err)
		}
		return c.Object
	}
	w.dso, w.fa, w.fb = party("10XBATCHDSO", flexhub.RoleDSO), party("10XBATCHFSPA", flexhub.RoleFSP), party("10XBATCHFSPB", flexhub.RoleFSP)
	tol := 10
	prod, err := w.svc.CreateProduct(app.WithActor(ctx, w.dso), flexhub.ProductSpec{Name: "Automatic", Service: "congestion_management",
		Direction: "both", PowerType: "active", MinBidSize: flexhub.KW(1), TimeResolution: "PT15M", FullActivationTime: "PT1M",
		ActivationMode: "automatic", AckDeadline: "PT1M", DeliveryTolerance: &tol, Remuneration: []string{"energy"}, BaselineMethod: "meter_before"}, "")
	if err != nil {
		t.Fatal(err)
	}
	w.product = prod.Object.ID
	err = st.Update(ctx, func(tx flexhub.Tx) error {
		for i := range 5 {
			fsp := w.fa
			if i == 4 {
				fsp = w.fb
			}
			r := &flexhub.Resource{ID: flexhub.NewID(), FSPID: fsp.ID, DSOID: w.dso.ID, Status: flexhub.ResourceActive, ValidFrom: w.now, CreatedAt: w.now,
				ResourceSpec: flexhub.ResourceSpec{Name: "unit", Kind: flexhub.ResourceUnit, UnitType: "battery",
					Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(2), MaxDown: flexhub.KW(2)}}}
			if err := tx.CreateResource(ctx, r); err != nil {
				return err
			}
			if err := tx.CreatePrequalification(ctx, &flexhub.Prequalification{ID: flexhub.NewID(), ResourceID: r.ID, ProductID: w.product,
				FSPID: fsp.ID, SystemOperatorID: w.dso.ID, Status: flexhub.PrequalApproved, CreatedAt: w.now, UpdatedAt: w.now,
				Decision: &flexhub.PrequalDecision{Outcome: flexhub.PrequalApproved, ValidFrom: w.now.Add(-time.Hour), DecidedBy: w.dso.ID, DecidedAt: w.now}}); err != nil {
				return err
			}
			if i == 4 {
				w.unitB = append(w.unitB, r.ID)
			} else {
				w.unitsA = append(w.unitsA, r.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *batchWorld) spec(unit string) flexhub.ActivationOrderSpec {
	slot := w.now.Truncate(15 * time.Minute).Add(time.Hour)
	return flexhub.ActivationOrderSpec{Type: flexhub.OrderActivate, ProductID: w.product, ResourceID: unit, Direction: "down",
		Setpoints: []flexhub.SetpointSpec{{Start: slot, End: slot.Add(30 * time.Minute), Quantity: flexhub.KW(1)}}}
}

func testActivationBatches(t *testing.T, st flexhub.Store) {
	ctx := t.Context()
	w := newBatchWorld(t, st)
	dctx := app.WithActor(ctx, w.dso)

	// An order, then a batch that ends it between two new orders.
	x, err := w.svc.CreateActivationOrder(dctx, w.spec(w.unitsA[0]), "")
	if err != nil {
		t.Fatal(err)
	}
	slot := w.now.Truncate(15 * time.Minute).Add(time.Hour)
	end := flexhub.ActivationOrderSpec{Type: flexhub.OrderEnd, EndsOrderID: x.Object.ID,
		Setpoints: []flexhub.SetpointSpec{{Start: slot.Add(15 * time.Minute), End: slot.Add(30 * time.Minute)}}}
	w.now = w.now.Add(time.Second)
	b, err := w.svc.CreateActivationOrderBatch(dctx, []flexhub.ActivationOrderSpec{w.spec(w.unitsA[1]), end, w.spec(w.unitsA[2]), w.spec(w.unitB[0])}, "")
	if err != nil {
		t.Fatal(err)
	}
	o1, eo, o2, ob := b.Object.Orders[0], b.Object.Orders[1], b.Object.Orders[2], b.Object.Orders[3]
	wantActions := []string{"activation_order.created " + x.Object.ID, "activation_order.created " + o1.ID, "activation_order.created " + eo.ID,
		"activation_order.ended_early " + x.Object.ID, "activation_order.created " + o2.ID, "activation_order.created " + ob.ID}
	checkOrderAudit(t, st, wantActions)
	var ended *flexhub.ActivationOrder
	view := func(fn func(tx flexhub.Tx) error) {
		t.Helper()
		if err := st.View(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	view(func(tx flexhub.Tx) (err error) {
		ended, err = tx.ActivationOrder(ctx, x.Object.ID)
		return err
	})
	if ended.Status != flexhub.OrderEndedEarly || ended.EndedByOrderID != eo.ID || ended.Version != 2 {
		t.Errorf("the ended order: %s by %q v%d, want ended_early by %s v2", ended.Status, ended.EndedByOrderID, ended.Version, eo.ID)
	}
	feed := func(p *flexhub.Party) []string {
		page, err := w.svc.ListNotifications(app.WithActor(ctx, p), "", flexhub.MaxPageLimit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range page.Items {
			ids = append(ids, n.Type+" "+n.ObjectID)
		}
		return ids
	}
	if got, want := feed(w.fa), []string{"activation.order " + x.Object.ID, "activation.order " + o1.ID, "activation.order " + eo.ID, "activation.order " + o2.ID}; !slices.Equal(got, want) {
		t.Errorf("FSP A's feed %v, want %v", got, want)
	}
	if got := feed(w.fb); !slices.Equal(got, []string{"activation.order " + ob.ID}) {
		t.Errorf("FSP B's feed %v", got)
	}

	// Reports in one batch: two steps of o1, refusals, a repeat.
	w.now = w.now.Add(time.Second)
	reps := []app.OrderReport{
		{By: w.fa, Report: flexhub.ActivationOrderReport{OrderID: o1.ID, Status: flexhub.OrderReceived}, Channel: "mqtt"},
		{By: w.fb, Report: flexhub.ActivationOrderReport{OrderID: o2.ID, Status: flexhub.OrderReceived}, Channel: "mqtt"},           // not B's order
		{By: w.fa, Report: flexhub.ActivationOrderReport{OrderID: o2.ID, Status: flexhub.OrderRejected}, Channel: "mqtt"},           // no reason
		{By: w.fa, Report: flexhub.ActivationOrderReport{OrderID: flexhub.NewID(), Status: flexhub.OrderReceived}, Channel: "mqtt"}, // unknown
		{By: w.fa, Report: flexhub.ActivationOrderReport{OrderID: o2.ID, Status: flexhub.OrderReceived}, Channel: "mqtt"},
		{By: w.fa, Report: flexhub.ActivationOrderReport{OrderID: o1.ID, Status: flexhub.OrderAccepted}, Channel: "mqtt"},
		{By: w.fa, Report: flexhub.ActivationOrderReport{OrderID: o2.ID, Status: flexhub.OrderReceived}, Channel: "mqtt"},       // repeat: nothing
		{By: w.fa, Report: flexhub.ActivationOrderReport{OrderID: x.Object.ID, Status: flexhub.OrderAccepted}, Channel: "mqtt"}, // final already
		{By: w.fb, Report: flexhub.ActivationOrderReport{OrderID: ob.ID, Status: flexhub.OrderRejected, Reason: "busy"}, Channel: "mqtt"},
	}
	if err := w.svc.ReportActivationOrders(ctx, reps); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", flexhub.ENotFound, flexhub.EInvalid, flexhub.ENotFound, "", "", "", flexhub.EConflict, ""} {
		if got := flexhub.ErrorKind(reps[i].Err); (want == "") != (reps[i].Err == nil) || (want != "" && got != want) {
			t.Errorf("report %d: %v, want %q", i, reps[i].Err, want)
		}
	}
	wantActions = append(wantActions, "activation_order.received "+o1.ID, "activation_order.received "+o2.ID, "activation_order.accepted "+o1.ID,
		"activation_order.rejected "+ob.ID)
	checkOrderAudit(t, st, wantActions)
	view(func(tx flexhub.Tx) error {
		for id, want := range map[string]struct {
			status   string
			statuses []string
		}{
			o1.ID: {flexhub.OrderAccepted, []string{flexhub.OrderCreated, flexhub.OrderReceived, flexhub.OrderAccepted}},
			o2.ID: {flexhub.OrderReceived, []string{flexhub.OrderCreated, flexhub.OrderReceived}},
			ob.ID: {flexhub.OrderRejected, []string{flexhub.OrderCreated, flexhub.OrderRejected}},
		} {
			o, err := tx.ActivationOrder(ctx, id)
			if err != nil {
				return err
			}
			vs, err := tx.Versions(ctx, flexhub.KindActivationOrder, id)
			if err != nil {
				return err
			}
			if o.Status != want.status || o.Version != int64(len(want.statuses)) || len(vs) != len(want.statuses) {
				t.Errorf("order %s: %s v%d with %d versions, want %s v%d", id, o.Status, o.Version, len(vs), want.status, len(want.statuses))
				continue
			}
			for i, v := range vs {
				old := decode(t, v.Body)
				if old.Status != want.statuses[i] || old.Version != v.Version || (i < len(vs)-1) != (v.ValidTo != nil) {
					t.Errorf("order %s version %d: %s v%d (closed %v), want %s", id, v.Version, old.Status, old.Version, v.ValidTo != nil, want.statuses[i])
				}
			}
		}
		return nil
	})
	dsoFeed := feed(w.dso)
	if want := []string{"activation.status " + o1.ID, "activation.status " + o2.ID, "activation.status " + o1.ID, "activation.status " + ob.ID}; !slices.Equal(dsoFeed, want) {
		t.Errorf("the DSO's feed %v, want %v", dsoFeed, want)
	}

	// The sweep, after the ack deadline, with two new orders due for
	// their first send: without a bus it clears the next send of each
	// and raises the ack-overdue alert on the end order (nobody
	// acknowledged it); each is a new version, the alert audited and
	// notified. The acknowledged orders are not due.
	w.now = w.now.Add(2 * time.Minute)
	b2, err := w.svc.CreateActivationOrderBatch(dctx, []flexhub.ActivationOrderSpec{w.spec(w.unitsA[3]), w.spec(w.unitB[0])}, "")
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := b2.Object.Orders[0], b2.Object.Orders[1]
	wantActions = append(wantActions, "activation_order.created "+n1.ID, "activation_order.created "+n2.ID)
	if n, err := w.svc.SweepActivationOrders(ctx); err != nil || n != 3 {
		t.Fatalf("sweep: %d orders, %v; want the end order and the two new ones", n, err)
	}
	wantActions = append(wantActions, "activation_order.alert.ack_overdue "+eo.ID)
	checkOrderAudit(t, st, wantActions)
	view(func(tx flexhub.Tx) error {
		got, err := tx.ActivationOrders(ctx, []string{o1.ID, eo.ID, o2.ID, n1.ID, n2.ID})
		if err != nil {
			return err
		}
		for id, v := range map[string]int64{o1.ID: 3, o2.ID: 2, eo.ID: 2, n1.ID: 2, n2.ID: 2} {
			if got[id].Version != v {
				t.Errorf("order %s after the sweep: v%d, want v%d", id, got[id].Version, v)
			}
		}
		for _, id := range []string{eo.ID, n1.ID, n2.ID} {
			if got[id].NextSend != nil || got[id].Status != flexhub.OrderCreated {
				t.Errorf("order %s after the sweep: %s, next send %v; want created and none (no bus)", id, got[id].Status, got[id].NextSend)
			}
		}
		if !got[eo.ID].HasAlert("ack_overdue", time.Time{}) || got[n1.ID].HasAlert("ack_overdue", time.Time{}) {
			t.Errorf("alerts: end order %v, new order %v", got[eo.ID].Alerts, got[n1.ID].Alerts)
		}
		return nil
	})
	if got := feed(w.dso); len(got) != 5 || got[4] != "activation.alert "+eo.ID {
		t.Errorf("the DSO's feed after the sweep %v", got)
	}
	rep, err := app.VerifyStore(ctx, st)
	if err != nil || !rep.OK || rep.Entries < int64(len(wantActions)) {
		t.Errorf("audit verify: %+v %v", rep, err)
	}
}

// checkOrderAudit: the activation orders' audit entries are want
// ("action object"), in order, and each one's payload hash is the hash
// of the order's version it names, as stored.
func checkOrderAudit(t *testing.T, st flexhub.Store, want []string) {
	t.Helper()
	ctx := t.Context()
	var got []string
	err := st.View(ctx, func(tx flexhub.Tx) error {
		var after int64
		for {
			es, err := tx.ListAudit(ctx, "", "", after, flexhub.MaxPageLimit)
			if err != nil {
				return err
			}
			if len(es) == 0 {
				return nil
			}
			for _, e := range es {
				after = e.Seq
				if e.ObjectKind != flexhub.KindActivationOrder {
					continue
				}
				got = append(got, e.Action+" "+e.ObjectID)
				vs, err := tx.Versions(ctx, flexhub.KindActivationOrder, e.ObjectID)
				if err != nil {
					return err
				}
				if e.Version < 1 || int(e.Version) > len(vs) {
					t.Errorf("audit %d: version %d of %d", e.Seq, e.Version, len(vs))
					continue
				}
				if flexhub.PayloadHash(decode(t, vs[e.Version-1].Body)) != e.PayloadHash {
					t.Errorf("audit %d (%s v%d): payload hash is not that of the stored version", e.Seq, e.Action, e.Version)
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("order audit entries:\n got  %v\n want %v", got, want)
	}
}

func decode(t *testing.T, body []byte) *flexhub.ActivationOrder {
	t.Helper()
	o := new(flexhub.ActivationOrder)
	if err := json.Unmarshal(body, o); err != nil {
		t.Fatal(err)
	}
	return o
}
