package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// The end-to-end test builds the real binary, starts `flexhub serve` on a
// free port and drives registration (confirmed by the households),
// prequalification, grid prequalification and a contract through the HTTP
// API with several parties, checking that each sees exactly what it may.
// It then kills the process right after an acknowledged write and checks
// nothing was lost.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flexhub-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "flexhub")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build flexhub: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	out  *bytes.Buffer
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs `flexhub serve` and waits until it is ready.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, base: "http://" + addr, out: &out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(p.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("flexhub did not become ready: %s", out.String())
	return nil
}

func (p *proc) kill() {
	p.cmd.Process.Kill() // SIGKILL: no graceful shutdown, like a crash
	p.cmd.Wait()
}

// call sends a JSON request and checks the status.
func (p *proc) call(method, path, key string, body any, want int, out any, headers ...string) string {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		p.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("%s %s: decode: %v: %s", method, path, err, raw)
		}
	}
	return string(raw)
}

func testEIC(stem string) string { return flexhub.EICFromStem(stem) }

type obj struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Status  string `json:"status"`
	Token   string `json:"token"`
}

// party registers a party as admin and issues it a key.
func (p *proc) party(admin, name string, roles ...string) (id, key string) {
	var o obj
	p.call("POST", "/v1/parties", admin, map[string]any{"eic": testEIC("10X" + name), "name": name, "roles": roles}, 201, &o)
	var c obj
	p.call("POST", "/v1/parties/"+o.ID+"/credentials", admin, map[string]any{"label": "e2e"}, 201, &c)
	return o.ID, c.Token
}

func kw(v float64) map[string]any { return map[string]any{"value": v, "unit": "kW"} }

func TestEndToEndSQLite(t *testing.T) {
	endToEnd(t, []string{"--data-dir", t.TempDir()})
}

func TestEndToEndPostgres(t *testing.T) {
	dsn := os.Getenv("FLEXHUB_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but FLEXHUB_TEST_POSTGRES is not set")
		}
		t.Skip("set FLEXHUB_TEST_POSTGRES to run the end-to-end test on PostgreSQL")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("fh_e2e_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE " + name + " WITH (FORCE)") })
	endToEnd(t, []string{"--db", withDatabase(dsn, name)})
}

// withDatabase replaces the database name in a postgres:// URL.
func withDatabase(dsn, name string) string {
	rest, query, _ := strings.Cut(dsn, "?")
	i := strings.LastIndex(rest, "/")
	out := rest[:i+1] + name
	if query != "" {
		out += "?" + query
	}
	return out
}

func endToEnd(t *testing.T, storeArgs []string) {
	admin, _, _ := app.NewToken()
	env := []string{"FLEXHUB_ADMIN_KEY=" + admin}
	p := start(t, env, storeArgs...)
	if !strings.Contains(p.out.String(), "FLEXHUB_ADMIN_KEY") {
		t.Fatalf("first start must report the bootstrap administrator: %s", p.out.String())
	}

	tso, tsoKey := p.party(admin, "TSO", "tso")
	dso, dsoKey := p.party(admin, "DSO", "dso")
	fspA, fspAKey := p.party(admin, "AGGREGATORA", "fsp")
	_, fspBKey := p.party(admin, "AGGREGATORB", "fsp")
	brp, _ := p.party(admin, "BRP", "brp")
	supplier, _ := p.party(admin, "SUPPLIER", "supplier")
	var c1, c2 obj
	p.call("POST", "/v1/parties", dsoKey, map[string]any{"eic": testEIC("10XHOUSEHOLD1"), "name": "Household 1", "roles": []string{"consumer"}}, 201, &c1)
	p.call("POST", "/v1/parties", dsoKey, map[string]any{"eic": testEIC("10XHOUSEHOLD2"), "name": "Household 2", "roles": []string{"consumer"}}, 201, &c2)
	var k1, k2 obj
	p.call("POST", "/v1/parties/"+c1.ID+"/credentials", admin, nil, 201, &k1)
	p.call("POST", "/v1/parties/"+c2.ID+"/credentials", admin, nil, 201, &k2)

	// Grid master data.
	var ca, ga, cp1, cp2, mp1, mp2 obj
	p.call("POST", "/v1/control-areas", tsoKey, map[string]any{"eic": testEIC("10YCONTROLAREA"), "name": "Control area"}, 201, &ca)
	p.call("POST", "/v1/grid-areas", dsoKey, map[string]any{"eic": testEIC("10YGRIDAREA"), "name": "Rural grid", "control_area_id": ca.ID}, 201, &ga)
	p.call("POST", "/v1/connection-points", dsoKey, map[string]any{"code": "CP-1", "grid_area_id": ga.ID, "node_ref": "LV1.101 Bus 10", "capacity": kw(25)}, 201, &cp1)
	p.call("POST", "/v1/connection-points", dsoKey, map[string]any{"code": "CP-2", "grid_area_id": ga.ID, "node_ref": "LV1.101 Bus 8"}, 201, &cp2)
	p.call("POST", "/v1/metering-points", dsoKey, map[string]any{"code": "MP-0001", "connection_point_id": cp1.ID, "consumer_id": c1.ID, "supplier_id": supplier, "brp_id": brp}, 201, &mp1)
	p.call("POST", "/v1/metering-points", dsoKey, map[string]any{"code": "MP-0002", "connection_point_id": cp2.ID, "consumer_id": c2.ID}, 201, &mp2)

	// Registration.
	battery := map[string]any{"name": "Home battery", "kind": "unit", "unit_type": "battery", "metering_point_id": mp1.ID,
		"technical": map[string]any{"max_up": kw(5), "max_down": kw(5), "full_activation_time": "PT1M", "energy_limit": map[string]any{"value": 10, "unit": "kWh"}}}
	var resA obj
	p.call("POST", "/v1/resources", fspAKey, battery, 201, &resA, "Idempotency-Key", "battery-1")
	var again obj
	p.call("POST", "/v1/resources", fspAKey, battery, 201, &again, "Idempotency-Key", "battery-1")
	if again.ID != resA.ID {
		t.Fatalf("a retried create with the same idempotency key made a second resource: %s vs %s", again.ID, resA.ID)
	}
	// Until household 1 confirms the unit at its metering point, the
	// registration opens nothing of the household to the FSP.
	if resA.Status != "pending_confirmation" {
		t.Fatalf("a unit at a household's metering point starts pending_confirmation, got %q", resA.Status)
	}
	p.call("GET", "/v1/metering-points/"+mp1.ID, fspAKey, nil, 403, nil) // consent.none, in household 1's access log
	p.call("POST", "/v1/resources/"+resA.ID+"/confirmation", fspAKey, map[string]any{"accept": true}, 403, nil)
	p.call("POST", "/v1/resources/"+resA.ID+"/confirmation", k1.Token, map[string]any{"accept": true}, 200, &resA)
	if resA.Status != "active" {
		t.Fatalf("status %q after household 1 confirmed", resA.Status)
	}
	p.call("GET", "/v1/metering-points/"+mp1.ID, fspAKey, nil, 200, nil)
	var resB obj
	p.call("POST", "/v1/resources", fspBKey, map[string]any{"name": "Heat pump", "kind": "unit", "unit_type": "heat_pump", "metering_point_id": mp2.ID,
		"technical": map[string]any{"max_down": kw(2)}}, 201, &resB)
	p.call("POST", "/v1/resources/"+resB.ID+"/confirmation", k2.Token, map[string]any{"accept": true}, 200, &resB)

	// Products and prequalification with an information round and a
	// conditional approval.
	var product obj
	p.call("POST", "/v1/products", tsoKey, map[string]any{"name": "mFRR up", "service": "balancing_mfrr", "direction": "up", "power_type": "active",
		"min_bid_size": kw(1), "time_resolution": "PT15M", "full_activation_time": "PT12M30S", "activation_mode": "manual",
		"remuneration": []string{"capacity", "energy"}, "baseline_method": "meter_before",
		"requirements": []map[string]any{{"key": "telemetry", "question": "How is the unit metered in real time?", "required": true}}}, 201, &product)
	var pq obj
	p.call("POST", "/v1/prequalifications", fspAKey, map[string]any{"resource_id": resA.ID, "product_id": product.ID, "answers": map[string]string{"telemetry": "smart meter"}}, 201, &pq)
	p.call("POST", "/v1/prequalifications/"+pq.ID+"/information-requests", tsoKey, map[string]any{"keys": []string{"telemetry"}, "text": "We need 10-second telemetry; how do you provide it?"}, 200, nil)
	p.call("POST", "/v1/prequalifications/"+pq.ID+"/decision", tsoKey, map[string]any{"outcome": "approved"}, 409, nil)
	p.call("POST", "/v1/prequalifications/"+pq.ID+"/supplements", fspAKey, map[string]any{"answers": map[string]string{"telemetry": "inverter API, 10 s"}}, 200, nil)
	var decided struct {
		Status   string `json:"status"`
		Decision struct {
			MaxPower struct {
				Value float64 `json:"value"`
				Unit  string  `json:"unit"`
			} `json:"max_power"`
		} `json:"decision"`
	}
	p.call("POST", "/v1/prequalifications/"+pq.ID+"/decision", tsoKey, map[string]any{"outcome": "approved_with_conditions", "max_power": kw(200), "conditions": "at most 200 kW at this node"}, 200, &decided)
	if decided.Status != "approved_with_conditions" || decided.Decision.MaxPower.Value != 200 {
		t.Fatalf("conditional approval not recorded: %+v", decided)
	}
	p.call("POST", "/v1/prequalifications/"+pq.ID+"/decision", tsoKey, map[string]any{"outcome": "rejected", "reasons": "changed my mind"}, 409, nil)

	// Grid prequalification by the connecting DSO.
	var gpq obj
	p.call("POST", "/v1/grid-prequalifications", fspAKey, map[string]any{"resource_id": resA.ID}, 201, &gpq)
	p.call("POST", "/v1/grid-prequalifications/"+gpq.ID+"/decision", tsoKey, map[string]any{"outcome": "approved"}, 403, nil)
	p.call("POST", "/v1/grid-prequalifications/"+gpq.ID+"/decision", dsoKey, map[string]any{"outcome": "limited", "limit_up": kw(3), "reasons": "feeder loading"}, 200, nil)

	// A contract: proposed by the TSO, accepted by the FSP.
	var contract obj
	p.call("POST", "/v1/contracts", tsoKey, map[string]any{"product_id": product.ID, "fsp_id": fspA, "validity": map[string]any{"start": "2026-12-01T00:00:00Z", "end": "2027-12-01T00:00:00Z"}}, 201, &contract)
	p.call("POST", "/v1/contracts/"+contract.ID+"/accept", tsoKey, nil, 403, nil)
	p.call("POST", "/v1/contracts/"+contract.ID+"/accept", fspAKey, nil, 200, &contract)
	if contract.Status != "active" {
		t.Fatalf("contract status %q after acceptance", contract.Status)
	}

	// Each party sees exactly what it may.
	for _, c := range []struct {
		who, key, path string
		want           int
	}{
		{"FSP B, A's resource", fspBKey, "/v1/resources/" + resA.ID, 404},
		{"FSP B, A's prequalification", fspBKey, "/v1/prequalifications/" + pq.ID, 404},
		{"FSP B, A's grid prequalification", fspBKey, "/v1/grid-prequalifications/" + gpq.ID, 404},
		{"FSP B, A's contract", fspBKey, "/v1/contracts/" + contract.ID, 404},
		{"FSP B, household 1's metering point", fspBKey, "/v1/metering-points/" + mp1.ID, 403}, // consent.none, logged for the household
		{"household 1, own resource", k1.Token, "/v1/resources/" + resA.ID, 200},
		{"household 1, own metering point", k1.Token, "/v1/metering-points/" + mp1.ID, 200},
		{"household 1, neighbour's metering point", k1.Token, "/v1/metering-points/" + mp2.ID, 403},
		{"household 2, neighbour's resource", k2.Token, "/v1/resources/" + resA.ID, 404},
		{"household 1, the contract", k1.Token, "/v1/contracts/" + contract.ID, 404},
		{"DSO, resource in its grid", dsoKey, "/v1/resources/" + resA.ID, 200},
		{"TSO, resource it prequalified", tsoKey, "/v1/resources/" + resA.ID, 200},
		{"TSO, resource it never saw", tsoKey, "/v1/resources/" + resB.ID, 404},
		{"TSO, the prequalification", tsoKey, "/v1/prequalifications/" + pq.ID, 200},
		{"FSP A, its contract", fspAKey, "/v1/contracts/" + contract.ID, 200},
		{"DSO, the TSO's contract", dsoKey, "/v1/contracts/" + contract.ID, 404},
		{"FSP A, the grid prequalification", fspAKey, "/v1/grid-prequalifications/" + gpq.ID, 200},
	} {
		t.Run("visibility/"+c.who, func(t *testing.T) {
			p.t = t
			p.call("GET", c.path, c.key, nil, c.want, nil)
		})
	}
	p.t = t
	list := p.call("GET", "/v1/resources", fspBKey, nil, 200, nil)
	if strings.Contains(list, resA.ID) || !strings.Contains(list, resB.ID) {
		t.Fatalf("FSP B's resource list must hold its own resource only: %s", list)
	}
	list = p.call("GET", "/v1/prequalifications", fspBKey, nil, 200, nil)
	if strings.Contains(list, pq.ID) {
		t.Fatalf("FSP B must not list A's prequalification: %s", list)
	}
	audit := p.call("GET", "/v1/audit", fspBKey, nil, 200, nil)
	if strings.Contains(audit, resA.ID) || strings.Contains(audit, pq.ID) {
		t.Fatalf("FSP B must not read audit entries about A's objects: %s", audit)
	}
	audit = p.call("GET", "/v1/audit?object_id="+pq.ID, fspAKey, nil, 200, nil)
	for _, action := range []string{"prequalification.submitted", "prequalification.information_requested", "prequalification.supplemented", "prequalification.decided"} {
		if !strings.Contains(audit, action) {
			t.Errorf("FSP A's audit view of its prequalification lacks %s: %s", action, audit)
		}
	}
	var report flexhub.ChainReport
	p.call("GET", "/v1/audit/verify", fspBKey, nil, 200, &report)
	if !report.OK || report.Entries < 20 {
		t.Fatalf("audit chain: %+v", report)
	}
	_ = tso
	_ = dso

	// A crash right after an acknowledgement loses nothing: neither the
	// registration nor household 1's confirmation, the last write.
	var late obj
	p.call("POST", "/v1/resources", fspAKey, map[string]any{"name": "EV charger", "kind": "unit", "unit_type": "ev_charger", "metering_point_id": mp1.ID,
		"technical": map[string]any{"max_down": kw(11)}}, 201, &late)
	p.call("POST", "/v1/resources/"+late.ID+"/confirmation", k1.Token, map[string]any{"accept": true}, 200, nil, "If-Match", `"1"`)
	p.kill()
	p2 := start(t, env, storeArgs...)
	p2.call("GET", "/v1/resources/"+late.ID, fspAKey, nil, 200, &late)
	if late.Status != "active" || late.Version != 2 {
		t.Fatalf("after the crash the EV charger is %s at version %d, want active at version 2", late.Status, late.Version)
	}
	if strings.Contains(p2.out.String(), "Created the administrator") {
		t.Fatalf("a restart must not bootstrap again: %s", p2.out.String())
	}
	p2.call("GET", "/v1/audit/verify", admin, nil, 200, &report)
	if !report.OK {
		t.Fatalf("audit chain after crash: %+v", report)
	}

	// SIGTERM shuts down gracefully: the process exits 0 after saying so.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p2.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flexhub exited with %v after SIGTERM: %s", err, p2.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("flexhub did not stop within 20 s of SIGTERM")
	}
	if !strings.Contains(p2.out.String(), "shutting down") {
		t.Errorf("no shutdown in the log: %s", p2.out.String())
	}
}
