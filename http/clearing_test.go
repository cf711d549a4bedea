package http_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/clearing"
	"github.com/flexhub/flexhub/sqlite"
)

// The clearing step through the API, on a case small enough to compute
// by hand. Need: 400 kW at t0, 200 kW at t1, capacity, at most 50 EUR per
// MW per hour, pay-as-bid. Bids (availability price per MW per hour):
//
//	a1  FSP A  divisible (min 100 kW)  300 kW @ 30.00 at t0 and t1
//	a2  FSP A  indivisible, group g    100 kW @ 32.50 at t0
//	a3  FSP A  indivisible, group g    200 kW @ 40.00 at t0
//	b1  FSP B  indivisible             300 kW @ 31.00 at t0 and t1
//	b2  FSP B  withdrawn before gate closure
//
// t0: a1 300 + a2 100 costs 9000 + 3250 = 12250 (kW × EUR); the
// alternative with the cheaper b1, a1 100 + b1 300, costs 12300, and b1
// cannot be cut, so it loses. a3 is out because a2 of its group won.
// t1: a1 200 alone (6000) beats b1 300 (9300). So a1 is partially
// accepted (300 + 200 of 300 + 300), a2 accepted, a3 and b1 rejected.
// Money (a quarter hour is 0.25 h): a1 0.3 MW × 30 × 0.25 = 2.25 plus
// 0.2 × 30 × 0.25 = 1.50, 3.75 EUR; a2 0.1 × 32.5 × 0.25 = 0.8125 EUR;
// the need costs 4.5625 EUR. Average price paid at t0:
// (300 × 30 + 100 × 32.5) / 400 = 30.625.
func TestMarketClearing(t *testing.T) {
	w := newMarketWorld(t)
	unitA2 := w.unitWith(w.cp, w.fspAKey, 300, nil)
	unitA3 := w.unitWith(w.cp, w.fspAKey, 300, nil)
	for _, u := range []string{unitA2, unitA3} {
		w.approve(w.fspAKey, u, nil)
		w.grid(w.fspAKey, u, map[string]any{"outcome": "approved"})
	}
	t0, t1 := w.day, w.day.Add(15*time.Minute)
	var need flexhub.Need
	w.do("POST", "/v1/needs", w.tsoKey, map[string]any{"product_id": w.product, "grid_area_id": w.ga, "direction": "up", "buys": "capacity",
		"intervals": []map[string]any{
			{"start": t0, "quantity": pqKW(400), "max_price": eur("50")},
			{"start": t1, "quantity": pqKW(200), "max_price": eur("50")},
		}}, 201, &need)
	closure := time.Now().Add(3 * time.Second)
	m := w.openSession(w.moKey, time.Now(), closure, need.ID)
	bid := func(key, unit string, divisible bool, group string, kw float64, price string, starts ...time.Time) flexhub.Bid {
		t.Helper()
		var ivs []map[string]any
		for _, s := range starts {
			ivs = append(ivs, map[string]any{"start": s, "quantity": pqKW(kw), "availability_price": eur(price)})
		}
		body := map[string]any{"session_id": m.ID, "need_id": need.ID, "resource_id": unit, "intervals": ivs, "divisible": divisible, "exclusive_group": group, "linked": false}
		if divisible {
			body["min_quantity"] = pqKW(100)
		}
		var b flexhub.Bid
		w.do("POST", "/v1/bids", key, body, 201, &b)
		return b
	}
	a1 := bid(w.fspAKey, w.unitA, true, "", 300, "30", t0, t1)
	a2 := bid(w.fspAKey, unitA2, false, "g", 100, "32.5", t0)
	a3 := bid(w.fspAKey, unitA3, false, "g", 200, "40", t0)
	b1 := bid(w.fspBKey, w.unitB, false, "", 300, "31", t0, t1)
	b2 := bid(w.fspBKey, w.unitB, false, "", 300, "1", t0, t1)
	w.do("POST", "/v1/bids/"+b2.ID+"/withdraw", w.fspBKey, nil, 200, nil)
	w.run([]scenario{{name: "no results before clearing", method: "GET", path: "/v1/market-sessions/" + m.ID + "/results", token: w.moKey,
		wantStatus: 409, wantBody: []string{rule("session.not_cleared"), "is open"}}})

	w.runScheduler()
	w.waitFor(m.ID, "cleared", 6*time.Second)

	var all struct {
		Needs  []flexhub.NeedResult
		Awards []flexhub.Award
	}
	w.do("GET", "/v1/market-sessions/"+m.ID+"/results", w.moKey, nil, 200, &all)
	awards := map[string]flexhub.Award{}
	for _, a := range all.Awards {
		awards[a.BidID] = a
	}
	if len(all.Awards) != 4 || len(all.Needs) != 1 {
		t.Fatalf("the market operator sees %d awards, %d need results: %+v", len(all.Awards), len(all.Needs), all)
	}
	if _, ok := awards[b2.ID]; ok {
		t.Fatal("a withdrawn bid got an award")
	}
	type want struct {
		status   string
		accepted []int64
		amount   string
		reason   string
	}
	for id, wt := range map[string]want{
		a1.ID: {"partially_accepted", []int64{300_000, 200_000}, "3.75", ""},
		a2.ID: {"accepted", []int64{100_000}, "0.8125", ""},
		a3.ID: {"rejected", []int64{0}, "0.00", "excluded: bid " + a2.ID + " of exclusive group g was selected"},
		b1.ID: {"rejected", []int64{0, 0}, "0.00", "indivisible"},
	} {
		a := awards[id]
		var got []int64
		for _, iv := range a.Intervals {
			got = append(got, iv.Accepted)
		}
		if a.Status != wt.status || a.Amount.Amount != wt.amount || !strings.Contains(a.Reason, wt.reason) || len(got) != len(wt.accepted) {
			t.Errorf("award for bid %s: %+v, want %+v", id, a, wt)
			continue
		}
		for i := range got {
			if got[i] != wt.accepted[i] {
				t.Errorf("award for bid %s accepts %v, want %v", id, got, wt.accepted)
			}
		}
	}
	if p := awards[a1.ID].Intervals[1].Price; p == nil || p.Amount != "30.00" || awards[a1.ID].Intervals[1].Amount.Amount != "1.50" {
		t.Errorf("a1 at t1: %+v", awards[a1.ID].Intervals[1])
	}
	nr := all.Needs[0]
	if nr.TotalCost.Amount != "4.5625" || nr.Intervals[0].AveragePrice.Amount != "30.625" || nr.Intervals[0].MinPrice.Amount != "30.00" ||
		nr.Intervals[0].MaxPrice.Amount != "32.50" || nr.Intervals[0].Accepted != 400_000 || nr.Intervals[1].Shortfall != 0 {
		t.Errorf("need result %+v", nr)
	}

	results := "/v1/market-sessions/" + m.ID + "/results"
	w.run([]scenario{
		{name: "FSP A reads its own awards", method: "GET", path: results, token: w.fspAKey, wantStatus: 200,
			wantBody: []string{a1.ID, a2.ID, a3.ID, `"needs":[]`}, notWantBody: []string{b1.ID, w.fspB, `"total_cost"`}},
		{name: "FSP B never sees FSP A's awards", method: "GET", path: results, token: w.fspBKey, wantStatus: 200,
			wantBody: []string{b1.ID, `"status":"rejected"`}, notWantBody: []string{a1.ID, a2.ID, a3.ID, w.fspA}},
		{name: "the buyer reads every award on its need and the cost", method: "GET", path: results, token: w.tsoKey, wantStatus: 200,
			wantBody: []string{a1.ID, b1.ID, `"amount":"4.5625"`}},
		{name: "a party with no part in it reads nothing", method: "GET", path: results, token: w.dsoKey, wantStatus: 200,
			wantBody: []string{`"needs":[]`, `"awards":[]`}},
		{name: "the public outcome names no FSP", method: "GET", path: "/v1/market-sessions/" + m.ID + "/outcome", token: w.consumerKey, wantStatus: 200,
			wantBody:    []string{`"demand":400000`, `"accepted":400000`, `"shortfall":0`, `"average_price":{"amount":"30.625"`, `"max_price":{"amount":"32.50"`},
			notWantBody: []string{w.fspA, w.fspB, a1.ID, b1.ID, w.unitA, "total_cost"}},
		{name: "FSP B lists only its own awards", method: "GET", path: "/v1/awards", token: w.fspBKey, wantStatus: 200, wantBody: []string{b1.ID}, notWantBody: []string{a1.ID}},
		{name: "FSP B cannot list A's awards", method: "GET", path: "/v1/awards?fsp_id=" + w.fspA, token: w.fspBKey, wantStatus: 403, wantBody: []string{"query.fsp_id"}},
		{name: "FSP B cannot list the session's awards", method: "GET", path: "/v1/awards?session_id=" + m.ID, token: w.fspBKey, wantStatus: 200, notWantBody: []string{a1.ID}},
		{name: "FSP B cannot read A's award", method: "GET", path: "/v1/awards/" + awards[a1.ID].ID, token: w.fspBKey, wantStatus: 404},
		{name: "the market operator lists the session's awards", method: "GET", path: "/v1/awards?session_id=" + m.ID, token: w.moKey, wantStatus: 200, wantBody: []string{a1.ID, b1.ID}},
		{name: "the buyer lists its awards", method: "GET", path: "/v1/awards?status=partially_accepted", token: w.tsoKey, wantStatus: 200, wantBody: []string{a1.ID}, notWantBody: []string{b1.ID}},
		{name: "FSP A's obligations", method: "GET", path: "/v1/obligations", token: w.fspAKey, wantStatus: 200,
			wantBody: []string{a1.ID, a2.ID, `"status":"active"`, `"quantity":200000`}, notWantBody: []string{a3.ID}},
		{name: "FSP B has none", method: "GET", path: "/v1/obligations", token: w.fspBKey, wantStatus: 200, wantBody: []string{`"items":[]`}},
		{name: "the buyer sees what it bought", method: "GET", path: "/v1/obligations?system_operator_id=self", token: w.tsoKey, wantStatus: 200, wantBody: []string{a1.ID, a2.ID}},
		{name: "a consumer lists no obligations", method: "GET", path: "/v1/obligations", token: w.consumerKey, wantStatus: 403},
		{name: "the bid's status moved", method: "GET", path: "/v1/bids/" + a1.ID, token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"partially_accepted"`}},
		{name: "the withdrawn bid stays withdrawn", method: "GET", path: "/v1/bids/" + b2.ID, token: w.fspBKey, wantStatus: 200, wantBody: []string{`"status":"withdrawn"`}},
		{name: "FSP A hears of the clearing and its awards", method: "GET", path: "/v1/notifications?limit=500", token: w.fspAKey, wantStatus: 200,
			wantBody: []string{`"type":"session.cleared"`, `"type":"award"`, "bid " + a2.ID + " accepted for 0.8125 EUR"}},
		{name: "FSP B hears of its own award only", method: "GET", path: "/v1/notifications?limit=500", token: w.fspBKey, wantStatus: 200,
			wantBody: []string{`"type":"session.cleared"`, "bid " + b1.ID + " rejected"}, notWantBody: []string{a1.ID, a2.ID}},
		{name: "the buyer hears the session cleared", method: "GET", path: "/v1/notifications?limit=500", token: w.tsoKey, wantStatus: 200, wantBody: []string{`"type":"session.cleared"`}},
	})

	// Exactly once: one session.cleared entry, and clearing again does
	// nothing.
	var cleared int
	for _, e := range pqAudit(w.env, m.ID) {
		if e.Action == "session.cleared" {
			cleared++
		}
	}
	if cleared != 1 {
		t.Fatalf("%d session.cleared entries, want 1", cleared)
	}
	if done, err := w.svc.ClearSession(context.Background(), m.ID); err != nil || done {
		t.Fatalf("clearing a cleared session again: %v, %v", done, err)
	}
	var again struct{ Items []flexhub.Award }
	w.do("GET", "/v1/awards?session_id="+m.ID+"&limit=500", w.moKey, nil, 200, &again)
	if len(again.Items) != 4 {
		t.Fatalf("%d awards after a second clearing, want 4", len(again.Items))
	}
	w.env.auditCount() // verifies the chain
}

// A clearing that fails leaves the session closed (the gate is not held
// open) and is retried by the sweep until it succeeds, once.
func TestMarketClearingRetried(t *testing.T) {
	w := newMarketWorld(t)
	need := w.publish(w.tsoKey, w.product, 1)
	m := w.openSession(w.moKey, time.Now(), time.Now().Add(1500*time.Millisecond), need.ID)
	w.need, w.session = need, m
	w.do("POST", "/v1/bids", w.fspAKey, w.bid(w.unitA), 201, nil)
	var calls atomic.Int32
	w.svc.SetSolver(func(p *clearing.Problem) (*clearing.Result, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("engine away")
		}
		return clearing.Solve(p)
	})
	w.runScheduler()
	w.waitFor(m.ID, "closed", 3*time.Second)
	w.waitFor(m.ID, "cleared", 5*time.Second)
	if n := calls.Load(); n != 2 {
		t.Fatalf("solver called %d times, want 2 (one failure, one retry)", n)
	}
	w.run([]scenario{{name: "cleared after the retry", method: "GET", path: "/v1/market-sessions/" + m.ID + "/outcome", token: w.fspBKey, wantStatus: 200,
		wantBody: []string{`"accepted":200000`, `"shortfall":800000`, `"min_price":{"amount":"40.00"`}}})
}

// Several flexhub instances on one database clear a closed session at
// the same moment: exactly one commits, on both stores.
func TestMarketClearingRace(t *testing.T) {
	stores := map[string]func(t *testing.T) flexhub.Store{
		"sqlite": func(t *testing.T) flexhub.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "race.db"), true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) flexhub.Store { return openPostgres(t) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			w := newMarketWorldOn(t, newEnvOn(t, open(t)))
			need := w.publish(w.tsoKey, w.product, 2)
			closure := time.Now().Add(time.Second)
			m := w.openSession(w.moKey, time.Now(), closure, need.ID)
			w.need, w.session = need, m
			w.do("POST", "/v1/bids", w.fspAKey, w.bid(w.unitA), 201, nil)
			w.do("POST", "/v1/bids", w.fspBKey, w.bid(w.unitB), 201, nil)
			time.Sleep(time.Until(closure))
			// Close the gate with a failing engine: closed, not cleared.
			store := w.svc.Store()
			closer := app.New(store, nil)
			closer.SetSolver(func(*clearing.Problem) (*clearing.Result, error) { return nil, errors.New("down") })
			if _, err := closer.AdvanceSessions(context.Background()); err != nil {
				t.Fatal(err)
			}
			w.waitFor(m.ID, "closed", time.Second)
			var wg sync.WaitGroup
			var wins atomic.Int32
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					done, err := app.New(store, nil).ClearSession(context.Background(), m.ID)
					if err != nil {
						t.Error(err)
					}
					if done {
						wins.Add(1)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d instances cleared the session, want exactly 1", wins.Load())
			}
			var awards struct{ Items []flexhub.Award }
			w.do("GET", "/v1/awards?session_id="+m.ID, w.moKey, nil, 200, &awards)
			if len(awards.Items) != 2 {
				t.Fatalf("%d awards, want 2", len(awards.Items))
			}
			cleared := 0
			for _, e := range pqAudit(w.env, m.ID) {
				if e.Action == "session.cleared" {
					cleared++
				}
			}
			if cleared != 1 {
				t.Fatalf("%d session.cleared entries", cleared)
			}
		})
	}
}
