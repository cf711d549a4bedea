package main

import (
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// The gate scheduler against the real binary: a session due to close
// while flexhub is down (killed with SIGKILL) is closed (and then
// cleared) after the restart, exactly once.

func TestGateClosureAcrossRestartSQLite(t *testing.T) {
	gateAcrossRestart(t, []string{"--data-dir", t.TempDir()})
}

func TestGateClosureAcrossRestartPostgres(t *testing.T) {
	dsn := os.Getenv("FLEXHUB_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but FLEXHUB_TEST_POSTGRES is not set")
		}
		t.Skip("set FLEXHUB_TEST_POSTGRES to run the restart test on PostgreSQL")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("fh_gate_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE " + name + " WITH (FORCE)") })
	gateAcrossRestart(t, []string{"--db", withDatabase(dsn, name)})
}

func gateAcrossRestart(t *testing.T, storeArgs []string) {
	admin, _, _ := app.NewToken()
	env := []string{"FLEXHUB_ADMIN_KEY=" + admin}
	p := start(t, env, storeArgs...)
	_, tsoKey := p.party(admin, "GATETSO", "tso")
	_, dsoKey := p.party(admin, "GATEDSO", "dso")
	_, moKey := p.party(admin, "GATEMO", "market_operator")
	var ca, ga, prod, need flexhub.Need
	p.call("POST", "/v1/control-areas", tsoKey, map[string]any{"eic": testEIC("10YGATE-CA"), "name": "ca"}, 201, &ca)
	p.call("POST", "/v1/grid-areas", dsoKey, map[string]any{"eic": testEIC("10YGATE-GA"), "name": "ga", "control_area_id": ca.ID}, 201, &ga)
	p.call("POST", "/v1/products", tsoKey, map[string]any{"name": "mFRR", "service": "balancing_mfrr", "direction": "up", "power_type": "active", "time_resolution": "PT15M",
		"full_activation_time": "PT12M30S", "activation_mode": "manual", "remuneration": []string{"capacity"}, "baseline_method": "nominated_schedule"}, 201, &prod)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(48*time.Hour + 17*time.Hour)
	p.call("POST", "/v1/needs", tsoKey, map[string]any{"product_id": prod.ID, "grid_area_id": ga.ID, "direction": "up", "buys": "capacity",
		"intervals": []map[string]any{{"start": day, "quantity": map[string]any{"value": 5, "unit": "MW"}, "max_price": map[string]any{"amount": "45.50", "currency": "EUR"}}}}, 201, &need)
	closure := time.Now().Add(3 * time.Second)
	var m flexhub.MarketSession
	p.call("POST", "/v1/market-sessions", moKey, map[string]any{"kind": "day_ahead", "need_ids": []string{need.ID}, "gate_opening": time.Now(), "gate_closure": closure}, 201, &m)
	if m.Status != "open" {
		t.Fatalf("session %+v", m)
	}
	p.kill() // SIGKILL well before gate closure

	time.Sleep(time.Until(closure) + 200*time.Millisecond)
	p2 := start(t, env, storeArgs...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p2.call("GET", "/v1/market-sessions/"+m.ID, moKey, nil, 200, &m)
		if m.Status == "cleared" { // closed, then cleared straight after
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still %s after the restart: %s", m.Status, p2.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m.ClosedAt == nil || m.ClosedAt.Before(closure) {
		t.Fatalf("closed at %v, gate closure %s", m.ClosedAt, closure)
	}
	var audit struct{ Items []flexhub.AuditEntry }
	p2.call("GET", "/v1/audit?object_id="+m.ID, admin, nil, 200, &audit)
	closes := 0
	for _, e := range audit.Items {
		if e.Action == "session.closed" {
			closes++
		}
	}
	if closes != 1 {
		t.Fatalf("%d session.closed audit entries, want exactly 1: %+v", closes, audit.Items)
	}
	p2.call("GET", "/v1/needs/"+need.ID, moKey, nil, 200, &need)
	if need.Status != "closed" {
		t.Fatalf("need %s after closure", need.Status)
	}
	var report flexhub.ChainReport
	p2.call("GET", "/v1/audit/verify", admin, nil, 200, &report)
	if !report.OK {
		t.Fatalf("audit chain after restart: %+v", report)
	}
}
