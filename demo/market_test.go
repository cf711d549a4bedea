package demo_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
	"github.com/flexhub/flexhub/sqlite"
)

// TestRunDay plays the market phase on the demo register: both needs are
// published from the real load, both sessions open, and every bid the
// aggregators derive from their households passes the platform's rules.
func TestRunDay(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "day.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := app.New(store, nil)
	if _, err := svc.Bootstrap(ctx, ""); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join("..", "..", "shared", "data")
	if _, err := demo.Load(ctx, svc, data, nil); err != nil {
		t.Fatal(err)
	}
	day, err := demo.RunDay(ctx, svc, data, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(day.DSONeed.Intervals) < 4 || len(day.TSONeed.Intervals) != 8 {
		t.Fatalf("needs: DSO %d intervals, TSO %d", len(day.DSONeed.Intervals), len(day.TSONeed.Intervals))
	}
	if day.DSOSession.Status != "open" || day.TSOSession.Status != "open" {
		t.Fatalf("sessions %s, %s; want open", day.DSOSession.Status, day.TSOSession.Status)
	}
	if len(day.Bids) != 4 {
		t.Fatalf("%d bids, want 4", len(day.Bids))
	}
	for _, b := range day.Bids {
		if b.Status != "submitted" {
			t.Errorf("bid %s is %s", b.ID, b.Status)
		}
	}
	report, err := app.VerifyStore(ctx, store)
	if err != nil || !report.OK {
		t.Fatalf("audit chain: %+v %v", report, err)
	}
	_ = flexhub.KindResource
}
