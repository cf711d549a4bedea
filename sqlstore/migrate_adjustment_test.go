package sqlstore_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sqlstore"
)

// Migration 012 moves imbalance adjustments stored by migration 010 (a
// JSON body and every id as a column) into narrow rows: afterwards each
// reads back through the store exactly as it was written, by the filters
// the API uses, and new adjustments are stored beside them.
func TestMigrateAdjustmentRows(t *testing.T) {
	bothStores(t, testMigrateAdjustmentRows)
}

// Migration 013 gives the orders stored before it their time span: the
// time filters find them.
func TestMigrateOrderTimes(t *testing.T) {
	bothStores(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, open func() flexhub.Store) {
		ctx := t.Context()
		migrateBefore(t, db, d, migrations, "013")
		start := time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)
		for i, span := range [][2]time.Duration{{0, time.Hour}, {2 * time.Hour, 3 * time.Hour}} {
			o := flexhub.ActivationOrder{ID: fmt.Sprintf("ord%d", i), Type: flexhub.OrderActivate, SystemOperatorID: "dso", ResourceID: "res1",
				Setpoints: []flexhub.Setpoint{{Start: start.Add(span[0]), End: start.Add(span[0] + 15*time.Minute)}, {Start: start.Add(span[1] - 15*time.Minute), End: start.Add(span[1])}}}
			body, _ := json.Marshal(o)
			if _, err := db.ExecContext(ctx, d.Rebind(`INSERT INTO activation_order (id, version, system_operator_id, fsp_id, resource_id, product_id, status, body) VALUES (?, 1, 'dso', 'fsp', 'res1', 'prod', 'completed', ?)`),
				o.ID, string(body)); err != nil {
				t.Fatal(err)
			}
		}
		st := open()
		defer st.Close()
		for _, c := range []struct {
			from, to time.Duration
			want     []string
		}{{0, 24 * time.Hour, []string{"ord0", "ord1"}}, {time.Hour, 2 * time.Hour, nil}, {30 * time.Minute, 150 * time.Minute, []string{"ord0", "ord1"}}, {150 * time.Minute, 4 * time.Hour, []string{"ord1"}}} {
			var got []string
			if err := st.View(ctx, func(tx flexhub.Tx) error {
				os, err := tx.ResourceActivationOrders(ctx, []string{"res1"}, start.Add(c.from), start.Add(c.to))
				for _, o := range os {
					got = append(got, o.ID)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("orders in [+%s, +%s): %v, want %v", c.from, c.to, got, c.want)
			}
		}
	})
}

func testMigrateAdjustmentRows(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, open func() flexhub.Store) {
	ctx := t.Context()
	migrateBefore(t, db, d, migrations, "012")
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, d.Rebind(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	start := time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)
	created := time.Date(2026, 12, 1, 8, 0, 0, 123456789, time.UTC)
	exec(`INSERT INTO settlement_run (id, version, system_operator_id, period_start, period_end, body) VALUES ('run1', 1, 'dso', ?, ?, '{}')`,
		flexhub.TimeKey(start), flexhub.TimeKey(start.Add(24*time.Hour)))
	exec(`INSERT INTO verification (id, version, run_id, order_id, resource_id, fsp_id, system_operator_id, brp_visible, body) VALUES ('ver1', 1, 'run1', 'ord1', 'res1', 'fsp', 'dso', 0, '{}')`)
	want := []flexhub.ImbalanceAdjustment{
		{ID: "adj1", RunID: "run1", OrderID: "ord1", VerificationID: "ver1", ResourceID: "res1", MeteringPointID: "mp1", BRPID: "brp", SupplierID: "sup",
			FSPID: "fsp", SystemOperatorID: "dso", Start: start, End: start.Add(flexhub.ISP), Volume: 1_234_567, Unit: "mWh", CreatedAt: created},
		{ID: "adj2", RunID: "run1", OrderID: "ord1", VerificationID: "ver1", ResourceID: "res1", MeteringPointID: "mp1", BRPID: "brp",
			FSPID: "fsp", SystemOperatorID: "dso", Start: start.Add(flexhub.ISP), End: start.Add(2 * flexhub.ISP), Volume: -5, Unit: "mWh", CreatedAt: created},
	}
	for _, a := range want {
		body, _ := json.Marshal(a)
		var supplier any
		if a.SupplierID != "" {
			supplier = a.SupplierID
		}
		exec(`INSERT INTO imbalance_adjustment (id, version, run_id, order_id, verification_id, resource_id, metering_point_id, brp_id, supplier_id, fsp_id, system_operator_id, start_at, body)
			VALUES (?, 1, 'run1', 'ord1', 'ver1', 'res1', 'mp1', 'brp', ?, 'fsp', 'dso', ?, ?)`, a.ID, supplier, flexhub.TimeKey(a.Start), string(body))
	}

	st := open()
	defer st.Close()
	list := func(f flexhub.Filter) []*flexhub.ImbalanceAdjustment {
		t.Helper()
		var out []*flexhub.ImbalanceAdjustment
		if err := st.View(ctx, func(tx flexhub.Tx) error {
			var err error
			out, _, err = tx.ListImbalanceAdjustments(ctx, f, flexhub.Page{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := list(flexhub.Filter{"run_id": "run1"})
	if len(got) != len(want) {
		t.Fatalf("%d adjustments after the migration, want %d", len(got), len(want))
	}
	for i := range want {
		g := *got[i]
		g.Start, g.End, g.CreatedAt = g.Start.UTC(), g.End.UTC(), g.CreatedAt.UTC()
		if g != want[i] {
			t.Errorf("adjustment %d after the migration:\n got %+v\nwant %+v", i, g, want[i])
		}
	}
	for f, n := range map[string]int{"brp_id=brp": 2, "supplier_id=sup": 1, "fsp_id=fsp": 2, "system_operator_id=dso": 2, "order_id=ord1": 2,
		"metering_point_id=mp1": 2, "resource_id=res1": 2, "superseded=false": 2, "from=" + flexhub.TimeKey(start.Add(flexhub.ISP)): 1} {
		k, v, _ := strings.Cut(f, "=")
		if got := list(flexhub.Filter{k: v}); len(got) != n {
			t.Errorf("filter %s: %d adjustments, want %d", f, len(got), n)
		}
	}
}
