package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/clearing"
)

// The market end to end through the real binary: a DSO need and a TSO
// need, a session each, bids from three FSPs (one refused, naming the
// rule), gate closure and clearing by the scheduler on its own, and each
// party reading exactly its own results. Then the crash case: a session
// left closed but not cleared (as after a kill -9 between the two
// commits) is cleared once by the sweep after a restart.

func TestMarketEndToEndSQLite(t *testing.T) {
	dir := t.TempDir()
	marketEndToEnd(t, []string{"--data-dir", dir}, &config{dataDir: dir})
}

func TestMarketEndToEndPostgres(t *testing.T) {
	dsn := os.Getenv("FLEXHUB_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but FLEXHUB_TEST_POSTGRES is not set")
		}
		t.Skip("set FLEXHUB_TEST_POSTGRES to run the market end-to-end test on PostgreSQL")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("fh_market_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE " + name + " WITH (FORCE)") })
	url := withDatabase(dsn, name)
	marketEndToEnd(t, []string{"--db", url}, &config{db: url})
}

// market is the parties and objects of the end-to-end market.
type market struct {
	p                                        *proc
	admin                                    string
	tsoKey, dsoKey, moKey, consumerKey       string
	fsp, fspKey, unit                        [3]string
	tso, dso, mo                             string
	ga, tsoProduct, dsoProduct               string
	day                                      time.Time
	tsoNeed, dsoNeed, tsoSession, dsoSession obj
}

func eurE2E(a string) map[string]any { return map[string]any{"amount": a, "currency": "EUR"} }

// setupMarket registers the grid, three FSPs with a 500 kW battery each,
// a TSO product (mFRR, capacity) and a DSO product (congestion, capacity
// and energy). FSPs A and B are prequalified for both, FSP C for the
// TSO's only; every unit is grid-prequalified.
func setupMarket(t *testing.T, p *proc, admin string) *market {
	m := &market{p: p, admin: admin}
	m.tso, m.tsoKey = p.party(admin, "MKTSO", "tso")
	m.dso, m.dsoKey = p.party(admin, "MKDSO", "dso")
	m.mo, m.moKey = p.party(admin, "MKMO", "market_operator")
	var consumer obj
	p.call("POST", "/v1/parties", m.dsoKey, map[string]any{"eic": testEIC("10XMKHOUSE"), "name": "Farm", "roles": []string{"consumer"}}, 201, &consumer)
	var ck obj
	p.call("POST", "/v1/parties/"+consumer.ID+"/credentials", admin, nil, 201, &ck)
	m.consumerKey = ck.Token
	var ca, ga, cp obj
	p.call("POST", "/v1/control-areas", m.tsoKey, map[string]any{"eic": testEIC("10YMKCA"), "name": "Control area"}, 201, &ca)
	p.call("POST", "/v1/grid-areas", m.dsoKey, map[string]any{"eic": testEIC("10YMKGA"), "name": "Feeder grid", "control_area_id": ca.ID}, 201, &ga)
	p.call("POST", "/v1/connection-points", m.dsoKey, map[string]any{"code": "MK-CP", "grid_area_id": ga.ID, "node_ref": "MV bus 3"}, 201, &cp)
	m.ga = ga.ID
	product := func(key, name, service string, remuneration []string) string {
		var o obj
		p.call("POST", "/v1/products", key, map[string]any{"name": name, "service": service, "direction": "up", "power_type": "active",
			"min_bid_size": kw(10), "time_resolution": "PT15M", "full_activation_time": "PT12M30S", "activation_mode": "manual",
			"remuneration": remuneration, "baseline_method": "meter_before"}, 201, &o)
		return o.ID
	}
	m.tsoProduct = product(m.tsoKey, "mFRR up", "balancing_mfrr", []string{"capacity"})
	m.dsoProduct = product(m.dsoKey, "Feeder 3 evening", "congestion_management", []string{"capacity", "energy"})
	for i, name := range []string{"MKFSPA", "MKFSPB", "MKFSPC"} {
		m.fsp[i], m.fspKey[i] = p.party(admin, name, "fsp")
		var mp, r obj
		p.call("POST", "/v1/metering-points", m.dsoKey, map[string]any{"code": "MK-MP-" + name, "connection_point_id": cp.ID, "consumer_id": consumer.ID}, 201, &mp)
		p.call("POST", "/v1/resources", m.fspKey[i], map[string]any{"name": "battery " + name, "kind": "unit", "unit_type": "battery", "metering_point_id": mp.ID,
			"technical": map[string]any{"max_up": kw(500), "max_down": kw(500), "full_activation_time": "PT1M"}}, 201, &r)
		p.call("POST", "/v1/resources/"+r.ID+"/confirmation", m.consumerKey, map[string]any{"accept": true}, 200, nil)
		m.unit[i] = r.ID
		products := map[string]string{m.tsoProduct: m.tsoKey, m.dsoProduct: m.dsoKey}
		if i == 2 {
			delete(products, m.dsoProduct)
		}
		for prod, key := range products {
			var pq obj
			p.call("POST", "/v1/prequalifications", m.fspKey[i], map[string]any{"resource_id": r.ID, "product_id": prod, "answers": map[string]string{}}, 201, &pq)
			p.call("POST", "/v1/prequalifications/"+pq.ID+"/decision", key, map[string]any{"outcome": "approved"}, 200, nil)
		}
		var g obj
		p.call("POST", "/v1/grid-prequalifications", m.fspKey[i], map[string]any{"resource_id": r.ID}, 201, &g)
		p.call("POST", "/v1/grid-prequalifications/"+g.ID+"/decision", m.dsoKey, map[string]any{"outcome": "approved"}, 200, nil)
	}
	m.day = time.Now().UTC().Truncate(24 * time.Hour).Add(48*time.Hour + 17*time.Hour)
	return m
}

// need publishes a one-interval need of kwNeeded at m.day.
func (m *market) need(key, product, buys string, kwNeeded float64, maxPrice string) obj {
	var n obj
	m.p.call("POST", "/v1/needs", key, map[string]any{"product_id": product, "grid_area_id": m.ga, "direction": "up", "buys": buys,
		"intervals": []map[string]any{{"start": m.day, "quantity": kw(kwNeeded), "max_price": eurE2E(maxPrice)}}}, 201, &n)
	return n
}

// bid is a divisible one-interval bid (at least 100 kW).
func (m *market) bid(i int, session, need string, kwOffered float64, price, activation string) map[string]any {
	iv := map[string]any{"start": m.day, "quantity": kw(kwOffered), "availability_price": eurE2E(price)}
	if activation != "" {
		iv["activation_price"] = eurE2E(activation)
	}
	return map[string]any{"session_id": session, "need_id": need, "resource_id": m.unit[i], "divisible": true, "min_quantity": kw(100), "linked": false,
		"intervals": []map[string]any{iv}}
}

// waitStatus polls a session until it reaches status.
func (m *market) waitStatus(p *proc, id, status string, limit time.Duration) {
	m.p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var s obj
		p.call("GET", "/v1/market-sessions/"+id, m.moKey, nil, 200, &s)
		if s.Status == status {
			return
		}
		if time.Now().After(deadline) {
			m.p.t.Fatalf("session %s is %s after %s, want %s: %s", id, s.Status, limit, status, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type e2eResults struct {
	Needs []struct {
		NeedID    string `json:"need_id"`
		TotalCost struct {
			Amount string `json:"amount"`
		} `json:"total_cost"`
	} `json:"needs"`
	Awards []struct {
		BidID     string                  `json:"bid_id"`
		FSPID     string                  `json:"fsp_id"`
		Status    string                  `json:"status"`
		Reason    string                  `json:"reason"`
		Amount    struct{ Amount string } `json:"amount"`
		Intervals []struct {
			Accepted int64                    `json:"accepted"`
			Price    *struct{ Amount string } `json:"price"`
		} `json:"intervals"`
	} `json:"awards"`
}

func marketEndToEnd(t *testing.T, storeArgs []string, cfg *config) {
	admin, _, _ := app.NewToken()
	env := []string{"FLEXHUB_ADMIN_KEY=" + admin}
	p := start(t, env, storeArgs...)
	m := setupMarket(t, p, admin)

	// The TSO buys 500 kW of mFRR capacity at most 40 EUR/MW/h, uniform
	// pricing, in a session the market operator runs. The DSO buys 300 kW
	// of capacity and energy on its feeder, pay-as-bid, in a session it
	// runs itself.
	m.tsoNeed = m.need(m.tsoKey, m.tsoProduct, "capacity", 500, "40")
	m.dsoNeed = m.need(m.dsoKey, m.dsoProduct, "both", 300, "20")
	closure := time.Now().Add(4 * time.Second)
	p.call("POST", "/v1/market-sessions", m.moKey, map[string]any{"kind": "day_ahead", "pricing": "uniform", "need_ids": []string{m.tsoNeed.ID}, "gate_opening": time.Now(), "gate_closure": closure}, 201, &m.tsoSession)
	p.call("POST", "/v1/market-sessions", m.dsoKey, map[string]any{"kind": "day_ahead", "need_ids": []string{m.dsoNeed.ID}, "gate_opening": time.Now(), "gate_closure": closure}, 201, &m.dsoSession)

	var tA, tB, tC, dA, dB obj
	p.call("POST", "/v1/bids", m.fspKey[0], m.bid(0, m.tsoSession.ID, m.tsoNeed.ID, 300, "20", ""), 201, &tA)
	p.call("POST", "/v1/bids", m.fspKey[1], m.bid(1, m.tsoSession.ID, m.tsoNeed.ID, 300, "25", ""), 201, &tB)
	p.call("POST", "/v1/bids", m.fspKey[2], m.bid(2, m.tsoSession.ID, m.tsoNeed.ID, 300, "30", ""), 201, &tC)
	p.call("POST", "/v1/bids", m.fspKey[0], m.bid(0, m.dsoSession.ID, m.dsoNeed.ID, 200, "10", "100"), 201, &dA)
	p.call("POST", "/v1/bids", m.fspKey[1], m.bid(1, m.dsoSession.ID, m.dsoNeed.ID, 200, "12.5", "90"), 201, &dB)
	// FSP C is not prequalified for the DSO's product: refused, the rule
	// named, nothing stored.
	refused := p.call("POST", "/v1/bids", m.fspKey[2], m.bid(2, m.dsoSession.ID, m.dsoNeed.ID, 200, "5", "50"), 422, nil)
	if !strings.Contains(refused, "urn:flexhub:rule:bid.product_prequalification") {
		t.Fatalf("refusal does not name the rule: %s", refused)
	}
	if time.Now().After(closure) {
		t.Fatal("bidding took past gate closure; the test's timing is off")
	}
	m.waitStatus(p, m.tsoSession.ID, "cleared", 10*time.Second)
	m.waitStatus(p, m.dsoSession.ID, "cleared", 10*time.Second)

	results := func(key, session string) e2eResults {
		var r e2eResults
		p.call("GET", "/v1/market-sessions/"+session+"/results", key, nil, 200, &r)
		return r
	}
	awardsOf := func(r e2eResults) map[string]string {
		out := map[string]string{}
		for _, a := range r.Awards {
			out[a.BidID] = a.Status + " " + a.Amount.Amount
		}
		return out
	}
	// TSO session, uniform at the marginal 25.00: A 300 kW × 25 × 0.25 h
	// = 1.875, B 200 kW (cut, divisible) = 1.25, C not needed.
	all := results(m.moKey, m.tsoSession.ID)
	want := map[string]string{tA.ID: "accepted 1.875", tB.ID: "partially_accepted 1.25", tC.ID: "rejected 0.00"}
	if got := awardsOf(all); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("TSO session awards %v, want %v", got, want)
	}
	if len(all.Needs) != 1 || all.Needs[0].TotalCost.Amount != "3.125" {
		t.Fatalf("TSO need result %+v", all.Needs)
	}
	// DSO session, pay-as-bid on availability: A 200 kW × 10 × 0.25 =
	// 0.50, B 100 kW × 12.5 × 0.25 = 0.3125.
	dsoAll := results(m.dsoKey, m.dsoSession.ID)
	want = map[string]string{dA.ID: "accepted 0.50", dB.ID: "partially_accepted 0.3125"}
	if got := awardsOf(dsoAll); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("DSO session awards %v, want %v", got, want)
	}
	// Each party reads exactly its own.
	for _, c := range []struct {
		who, key, session string
		bids              []string
		needs             int
	}{
		{"FSP A, TSO session", m.fspKey[0], m.tsoSession.ID, []string{tA.ID}, 0},
		{"FSP B, TSO session", m.fspKey[1], m.tsoSession.ID, []string{tB.ID}, 0},
		{"FSP C, TSO session", m.fspKey[2], m.tsoSession.ID, []string{tC.ID}, 0},
		{"FSP A, DSO session", m.fspKey[0], m.dsoSession.ID, []string{dA.ID}, 0},
		{"FSP C, DSO session", m.fspKey[2], m.dsoSession.ID, nil, 0},
		{"TSO, its session", m.tsoKey, m.tsoSession.ID, []string{tA.ID, tB.ID, tC.ID}, 1},
		{"TSO, the DSO's session", m.tsoKey, m.dsoSession.ID, nil, 0},
		{"DSO, the TSO's session", m.dsoKey, m.tsoSession.ID, nil, 0},
		{"DSO, its session", m.dsoKey, m.dsoSession.ID, []string{dA.ID, dB.ID}, 1},
		{"market operator, its session", m.moKey, m.tsoSession.ID, []string{tA.ID, tB.ID, tC.ID}, 1},
		{"market operator, the DSO's session", m.moKey, m.dsoSession.ID, nil, 0},
	} {
		t.Run("results/"+c.who, func(t *testing.T) {
			p.t = t
			r := results(c.key, c.session)
			var got []string
			for _, a := range r.Awards {
				got = append(got, a.BidID)
			}
			if fmt.Sprint(sortedStrings(got)) != fmt.Sprint(sortedStrings(c.bids)) || len(r.Needs) != c.needs {
				t.Errorf("awards for bids %v and %d need results, want %v and %d", got, len(r.Needs), c.bids, c.needs)
			}
		})
	}
	p.t = t
	outcome := p.call("GET", "/v1/market-sessions/"+m.tsoSession.ID+"/outcome", m.consumerKey, nil, 200, nil)
	if !strings.Contains(outcome, `"clearing_price":{"amount":"25.00"`) || !strings.Contains(outcome, `"shortfall":0`) {
		t.Fatalf("public outcome: %s", outcome)
	}
	for _, secret := range []string{m.fsp[0], m.fsp[1], m.fsp[2], tA.ID, m.unit[0]} {
		if strings.Contains(outcome, secret) {
			t.Fatalf("the public outcome names %s: %s", secret, outcome)
		}
	}
	obligations := p.call("GET", "/v1/obligations", m.fspKey[1], nil, 200, nil)
	if !strings.Contains(obligations, tB.ID) || !strings.Contains(obligations, dB.ID) || strings.Contains(obligations, tA.ID) {
		t.Fatalf("FSP B's obligations: %s", obligations)
	}
	if none := p.call("GET", "/v1/obligations", m.fspKey[2], nil, 200, nil); !strings.Contains(none, `"items":[]`) {
		t.Fatalf("FSP C won nothing: %s", none)
	}
	p.call("GET", "/v1/awards?fsp_id="+m.fsp[0], m.fspKey[1], nil, 403, nil)

	// Crash between gate closure and clearing: a third session, flexhub
	// killed before its gate closes; the gate is then closed by a flexhub
	// whose clearing fails (the state a kill -9 right after the closure
	// commit leaves); the restarted binary's sweep clears it, once.
	late := m.need(m.tsoKey, m.tsoProduct, "capacity", 100, "40")
	var s3, b3 obj
	closure = time.Now().Add(2 * time.Second)
	p.call("POST", "/v1/market-sessions", m.moKey, map[string]any{"kind": "intraday", "need_ids": []string{late.ID}, "gate_opening": time.Now(), "gate_closure": closure}, 201, &s3)
	p.call("POST", "/v1/bids", m.fspKey[2], m.bid(2, s3.ID, late.ID, 100, "15", ""), 201, &b3)
	p.kill()
	time.Sleep(time.Until(closure) + 100*time.Millisecond)
	closeWithoutClearing(t, cfg)
	p2 := start(t, env, storeArgs...)
	m.waitStatus(p2, s3.ID, "cleared", 10*time.Second)
	var r3 e2eResults
	p2.call("GET", "/v1/market-sessions/"+s3.ID+"/results", m.fspKey[2], nil, 200, &r3)
	if len(r3.Awards) != 1 || r3.Awards[0].Status != "accepted" || r3.Awards[0].Amount.Amount != "0.375" {
		t.Fatalf("FSP C's award after the restart: %+v", r3.Awards)
	}
	var audit struct{ Items []flexhub.AuditEntry }
	p2.call("GET", "/v1/audit?object_id="+s3.ID, admin, nil, 200, &audit)
	count := map[string]int{}
	for _, e := range audit.Items {
		count[e.Action]++
	}
	if count["session.closed"] != 1 || count["session.cleared"] != 1 {
		t.Fatalf("audit of the crashed session: %v", count)
	}
	var report flexhub.ChainReport
	p2.call("GET", "/v1/audit/verify", admin, nil, 200, &report)
	if !report.OK {
		t.Fatalf("audit chain: %+v", report)
	}
}

// closeWithoutClearing opens the store as flexhub would and closes the
// due gates with a clearing engine that fails: the session is left closed
// and not cleared, exactly as a crash between the closure's commit and the
// clearing's would leave it.
func closeWithoutClearing(t *testing.T, cfg *config) {
	t.Helper()
	ctx := context.Background()
	store, _, err := openStore(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := app.New(store, nil)
	svc.SetSolver(func(*clearing.Problem) (*clearing.Result, error) { return nil, errors.New("killed") })
	if n, err := svc.AdvanceSessions(ctx); err != nil || n != 1 {
		t.Fatalf("closing the gate: %d transitions, %v", n, err)
	}
}

func sortedStrings(s []string) []string { return slices.Sorted(slices.Values(s)) }
