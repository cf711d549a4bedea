package sqlstore_test

// Regression tests on PostgreSQL for BENCHMARKS.md's "a write transaction
// takes the audit chain's lock before it reads or updates an order": a
// batch of MQTT acknowledgements and the delivery sweep working on the
// same orders at the same time deadlocked (one transaction aborted, its
// acknowledgements lost) or the acknowledgement's versioned update lost
// against the sweep's and was refused as a conflict. Real components:
// app.Service on a PostgreSQL store, the embedded MQTT broker taking the
// sweep's publishes.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt"
	"github.com/flexhub/flexhub/postgres/pgtest"
)

// acceptAll is the embedded broker's Authorizer: nobody connects in this
// test, flexhub only publishes.
type acceptAll struct{}

func (acceptAll) Authenticate(context.Context, string, string) (string, error) {
	return "", mqtt.ErrBadCredentials
}
func (acceptAll) CanSubscribe(context.Context, string, string) error { return nil }
func (acceptAll) CanPublish(context.Context, string, string) error   { return nil }

type concurrencyRig struct {
	svc    *app.Service
	store  flexhub.Store
	fsp    *flexhub.Party
	orders []string
}

// newConcurrencyRig registers a DSO, its automatic product and an FSP
// with n prequalified units, and orders each unit once (one batch).
func newConcurrencyRig(t *testing.T, n int) *concurrencyRig {
	ctx := context.Background()
	store := pgtest.Open(t, "actconc")
	svc := app.New(store, nil)
	bus, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: acceptAll{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	svc.SetPublisher(bus)
	ic, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, ic.Token)
	if err != nil {
		t.Fatal(err)
	}
	actx := app.WithActor(ctx, admin)
	party := func(stem string, role flexhub.Role) *flexhub.Party {
		c, err := svc.CreateParty(actx, flexhub.PartySpec{EIC: flexhub.EICFromStem(stem), Name: stem, Roles: []flexhub.Role{role}}, "")
		if err != nil {
			t.Fatal(err)
		}
		k, err := svc.IssueCredential(actx, c.Object.ID, "concurrency test")
		if err != nil {
			t.Fatal(err)
		}
		p, err := svc.Authenticate(ctx, k.Token)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	dso := party("10XCONCDSO", flexhub.RoleDSO)
	fsp := party("10XCONCFSP", flexhub.RoleFSP)
	tol := 10
	prod, err := svc.CreateProduct(app.WithActor(ctx, dso), flexhub.ProductSpec{Name: "automatic", Service: "congestion_management", Direction: "both",
		PowerType: "active", MinBidSize: flexhub.KW(1), TimeResolution: "PT15M", FullActivationTime: "PT1M", ActivationMode: "automatic",
		AckDeadline: "PT1M", DeliveryTolerance: &tol, Remuneration: []string{"energy"}, BaselineMethod: "meter_before"}, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var units []string
	err = store.Update(ctx, func(tx flexhub.Tx) error {
		for i := range n {
			r := &flexhub.Resource{ID: flexhub.NewID(), FSPID: fsp.ID, DSOID: dso.ID, Status: flexhub.ResourceActive, ValidFrom: now, CreatedAt: now,
				ResourceSpec: flexhub.ResourceSpec{Name: fmt.Sprintf("battery %d", i), Kind: flexhub.ResourceUnit, UnitType: "battery",
					Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(2), MaxDown: flexhub.KW(2)}}}
			if err := tx.CreateResource(ctx, r); err != nil {
				return err
			}
			if err := tx.CreatePrequalification(ctx, &flexhub.Prequalification{ID: flexhub.NewID(), ResourceID: r.ID, ProductID: prod.Object.ID,
				FSPID: fsp.ID, SystemOperatorID: dso.ID, Status: flexhub.PrequalApproved, CreatedAt: now, UpdatedAt: now,
				Decision: &flexhub.PrequalDecision{Outcome: flexhub.PrequalApproved, ValidFrom: now.Add(-time.Hour), DecidedBy: dso.ID, DecidedAt: now}}); err != nil {
				return err
			}
			units = append(units, r.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slot := now.Truncate(15 * time.Minute).Add(time.Hour)
	var specs []flexhub.ActivationOrderSpec
	for _, u := range units {
		specs = append(specs, flexhub.ActivationOrderSpec{Type: "activate", ResourceID: u, ProductID: prod.Object.ID, Direction: "up",
			Setpoints: []flexhub.SetpointSpec{{Start: slot, End: slot.Add(15 * time.Minute), Quantity: flexhub.KW(1)}}})
	}
	b, err := svc.CreateActivationOrderBatch(app.WithActor(ctx, dso), specs, "")
	if err != nil {
		t.Fatal(err)
	}
	r := &concurrencyRig{svc: svc, store: store, fsp: fsp}
	for _, o := range b.Object.Orders {
		r.orders = append(r.orders, o.ID)
	}
	return r
}

// The delivery sweep (send every order, record delivered, 500 orders per
// transaction) and batches of the FSP's "received" reports on the same
// orders — in the opposite order, 250 per transaction, two batches at a
// time — run at once: neither fails (no deadlock), no report is refused
// (no conflict), and afterwards every order is received (no report lost),
// with its tracking in order.
func TestActivationAcksAgainstSweepPostgres(t *testing.T) {
	const n = 2000
	r := newConcurrencyRig(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	ids := slices.Clone(r.orders)
	slices.Reverse(ids)
	var batches [][]app.OrderReport
	for start := 0; start < n; start += 250 {
		var b []app.OrderReport
		for _, id := range ids[start:min(start+250, n)] {
			b = append(b, app.OrderReport{By: r.fsp, Channel: "mqtt", Report: flexhub.ActivationOrderReport{OrderID: id, Status: flexhub.OrderReceived}})
		}
		batches = append(batches, b)
	}

	var wg sync.WaitGroup
	var sweepErr error
	var swept int
	wg.Go(func() { swept, sweepErr = r.svc.SweepActivationOrders(ctx) })
	errs := make([]error, len(batches))
	next := make(chan int)
	for range 2 {
		wg.Go(func() {
			for i := range next {
				errs[i] = r.svc.ReportActivationOrders(ctx, batches[i])
			}
		})
	}
	for i := range batches {
		next <- i
	}
	close(next)
	wg.Wait()

	if sweepErr != nil {
		t.Errorf("sweep failed against the acknowledgements: %v", sweepErr)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("acknowledgement batch %d (%d reports) failed as a whole: %v", i, len(batches[i]), err)
		}
		for _, rep := range batches[i] {
			if rep.Err != nil {
				t.Errorf("report on order %s refused: %v", rep.Report.OrderID, rep.Err)
			}
		}
	}
	t.Logf("the sweep recorded %d steps while the reports came in", swept)

	// Whatever the sweep left (an order that moved on under it is left
	// for the next sweep) is done by another sweep, as the scheduler does.
	if _, err := r.svc.SweepActivationOrders(ctx); err != nil {
		t.Fatal(err)
	}
	received := 0
	err := r.store.View(ctx, func(tx flexhub.Tx) error {
		for _, id := range r.orders {
			o, err := tx.ActivationOrder(ctx, id)
			if err != nil {
				return err
			}
			if o.Status != flexhub.OrderReceived {
				return fmt.Errorf("order %s is %s, want received: its acknowledgement was lost", id, o.Status)
			}
			seenReceived := false
			for _, ev := range o.Tracking {
				if ev.Status == flexhub.OrderReceived {
					if seenReceived {
						return fmt.Errorf("order %s: received recorded twice: %+v", id, o.Tracking)
					}
					seenReceived = true
				}
			}
			if !seenReceived {
				return fmt.Errorf("order %s: no received in its tracking: %+v", id, o.Tracking)
			}
			received++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if received != n {
		t.Fatalf("%d of %d orders received", received, n)
	}
}
