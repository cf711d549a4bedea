package http_test

import (
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/postgres/pgtest"
)

func TestCoordinationDSOFirst(t *testing.T) { coordinationDSOFirst(t, newEnv(t)) }

func TestCoordinationDSOFirstPostgres(t *testing.T) {
	coordinationDSOFirst(t, newEnvOn(t, pgtest.Open(t, "fh_coord")))
}

// DSO-first: a 400 kW battery in the DSO's grid bids into the DSO's
// local session and into the TSO's session for the same quarter hours.
// The TSO's session (dso_first) closes first and waits, uncleared, until
// the DSO's session has cleared; the DSO buys 300 kW of the battery; the
// TSO's session then clears with what is left: 100 kW of the 200 kW bid
// (the TSO's 1 MW need would take all 200 kW).
func coordinationDSOFirst(t *testing.T, e *env) {
	w := newSecondaryWorldOn(t, e)
	local := w.newProduct(w.dsoKey, "Feeder 3 congestion")
	battery := w.unitWith(w.cp, w.cKey, 400, nil)
	pq := w.submit(w.cKey, battery, local)
	w.do("POST", "/v1/prequalifications/"+pq.ID+"/decision", w.dsoKey, map[string]any{"outcome": "approved"}, 200, nil)
	pq = w.submit(w.cKey, battery, w.product)
	w.do("POST", "/v1/prequalifications/"+pq.ID+"/decision", w.tsoKey, map[string]any{"outcome": "approved"}, 200, nil)
	w.grid(w.cKey, battery, map[string]any{"outcome": "approved"})

	day := w.day.Add(3 * time.Hour) // clear of the world's own obligation
	needOf := func(key, product string, kw float64) flexhub.Need {
		var n flexhub.Need
		w.do("POST", "/v1/needs", key, map[string]any{"product_id": product, "grid_area_id": w.ga, "direction": "up", "buys": "capacity",
			"intervals": []map[string]any{{"start": day, "quantity": pqKW(kw), "max_price": eur("50")}}}, 201, &n)
		return n
	}
	dsoNeed, tsoNeed := needOf(w.dsoKey, local, 300), needOf(w.tsoKey, w.product, 1000)
	var dsoSession, tsoSession flexhub.MarketSession
	w.do("POST", "/v1/market-sessions", w.moKey, map[string]any{"kind": "day_ahead", "need_ids": []string{dsoNeed.ID},
		"gate_opening": w.now().Add(-time.Second), "gate_closure": w.now().Add(2 * time.Hour)}, 201, &dsoSession)
	w.do("POST", "/v1/market-sessions", w.moKey, map[string]any{"kind": "day_ahead", "need_ids": []string{tsoNeed.ID}, "coordination": "dso_first",
		"gate_opening": w.now().Add(-time.Second), "gate_closure": w.now().Add(time.Hour)}, 201, &tsoSession)
	if tsoSession.Coordination != flexhub.CoordinationDSOFirst || dsoSession.Coordination != flexhub.CoordinationDSOApproval {
		t.Fatalf("coordination: TSO %q, DSO %q", tsoSession.Coordination, dsoSession.Coordination)
	}
	bid := func(session, need string, kw float64) map[string]any {
		return map[string]any{"session_id": session, "need_id": need, "resource_id": battery, "divisible": true, "min_quantity": pqKW(100), "linked": false,
			"intervals": []map[string]any{{"start": day, "quantity": pqKW(kw), "availability_price": eur("20")}}}
	}
	w.do("POST", "/v1/bids", w.cKey, bid(dsoSession.ID, dsoNeed.ID, 300), 201, nil)
	w.do("POST", "/v1/bids", w.cKey, bid(tsoSession.ID, tsoNeed.ID, 200), 201, nil)
	w.run([]scenario{{name: "an unknown scheme", method: "POST", path: "/v1/market-sessions", token: w.moKey,
		body:       map[string]any{"kind": "day_ahead", "need_ids": []string{tsoNeed.ID}, "coordination": "first_come", "gate_opening": w.now(), "gate_closure": w.now().Add(time.Hour)},
		wantStatus: 422, wantBody: []string{"coordination"}}})

	w.advance(time.Hour + time.Second) // the TSO's gate closes; the DSO's is still open
	var m flexhub.MarketSession
	w.do("GET", "/v1/market-sessions/"+tsoSession.ID, w.tsoKey, nil, 200, &m)
	if m.Status != flexhub.SessionClosed {
		t.Fatalf("the TSO's dso_first session is %s while the DSO's session over the same quarter hour is open; want closed, waiting", m.Status)
	}
	w.advance(time.Hour) // the DSO's gate closes: it clears, then the TSO's
	accepted := func(session, key string) int64 {
		var res app.SessionResults
		w.do("GET", "/v1/market-sessions/"+session+"/results", key, nil, 200, &res)
		var q int64
		for _, a := range res.Awards {
			if a.ResourceID == battery {
				q += a.Intervals[0].Accepted
			}
		}
		return q
	}
	if got := accepted(dsoSession.ID, w.dsoKey); got != 300_000 {
		t.Errorf("the DSO bought %d W of the battery, want 300,000", got)
	}
	if got := accepted(tsoSession.ID, w.tsoKey); got != 100_000 {
		t.Errorf("the TSO got %d W of the battery, want the 100,000 W the DSO's market left of its 400 kW", got)
	}
}
