package demo_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
	"github.com/flexhub/flexhub/sqlite"
)

// TestLoad builds the demo register on a real SQLite store and checks what
// a newcomer will find in it through the use cases, as each demo party.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "demo.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := app.New(store, nil)
	if _, err := svc.Bootstrap(ctx, ""); err != nil {
		t.Fatal(err)
	}
	res, err := demo.Load(ctx, svc, filepath.Join("..", "..", "shared", "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Households != 25 || res.Points != 17 || res.Resources != 27 {
		t.Fatalf("demo made %d households, %d connection points, %d resources; want 25, 17, 27", res.Households, res.Points, res.Resources)
	}
	if loaded, err := demo.Loaded(ctx, store); err != nil || !loaded {
		t.Fatalf("Loaded = %v, %v", loaded, err)
	}
	keys := map[string]demo.Key{}
	for _, k := range res.Keys {
		keys[k.Role] = k
	}
	as := func(role string) context.Context {
		k, ok := keys[role]
		if !ok {
			t.Fatalf("no demo key for %s", role)
		}
		p, err := svc.Authenticate(ctx, k.Token)
		if err != nil {
			t.Fatalf("%s key: %v", role, err)
		}
		return app.WithActor(ctx, p)
	}
	// Each aggregator sees its own 12 or 13 units plus its group, no more.
	for role, want := range map[string]int{"FSP (batteries)": 14, "FSP (heat pumps)": 13} {
		list, err := svc.ListResources(as(role), app.ResourceFilter{}, flexhub.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != want {
			t.Errorf("%s sees %d resources, want %d", role, len(list.Items), want)
		}
	}
	// The DSO sees every unit in its grid (groups have no connection point).
	list, err := svc.ListResources(as("DSO"), app.ResourceFilter{}, flexhub.Page{Limit: 100})
	if err != nil || len(list.Items) != 25 {
		t.Fatalf("DSO sees %d resources (%v), want the 25 units", len(list.Items), err)
	}
	// Every household confirmed the unit at its metering point: all 25
	// units are active, each answered by its own household.
	for _, r := range list.Items {
		if r.Status != flexhub.ResourceActive || r.Confirmation == nil || !r.Confirmation.Accepted || r.Confirmation.AnsweredBy != r.OwnerID {
			t.Errorf("unit %s: status %s, confirmation %+v; want active, accepted by its owner %s", r.Name, r.Status, r.Confirmation, r.OwnerID)
		}
	}
	// A household sees its own metering point only, and the unit an
	// aggregator runs there.
	mps, err := svc.ListMeteringPoints(as("Consumer"), app.MeteringPointFilter{}, flexhub.Page{})
	if err != nil || len(mps.Items) != 1 {
		t.Fatalf("household sees %d metering points (%v), want 1", len(mps.Items), err)
	}
	own, err := svc.ListResources(as("Consumer"), app.ResourceFilter{}, flexhub.Page{})
	if err != nil || len(own.Items) != 1 || own.Items[0].MeteringPointID != mps.Items[0].ID {
		t.Fatalf("household sees %d resources (%v), want the one unit at its metering point", len(own.Items), err)
	}
	// The confirmed unit lets its aggregator read the household's metering
	// point; the other aggregator still cannot.
	fsp := map[string]string{keys["FSP (batteries)"].Party: "FSP (batteries)", keys["FSP (heat pumps)"].Party: "FSP (heat pumps)"}
	operator := fsp[own.Items[0].FSPID]
	if _, err := svc.GetMeteringPoint(as(operator), mps.Items[0].ID, nil); err != nil {
		t.Errorf("%s cannot read the metering point of its confirmed unit: %v", operator, err)
	}
	for _, other := range fsp {
		if other != operator {
			if _, err := svc.GetMeteringPoint(as(other), mps.Items[0].ID, nil); flexhub.ErrorKind(err) != flexhub.EForbidden {
				t.Errorf("%s reads a metering point it has no unit at: %v", other, err)
			}
		}
	}
	report, err := app.VerifyStore(ctx, store)
	if err != nil || !report.OK {
		t.Fatalf("audit chain after the demo: %+v %v", report, err)
	}
}
