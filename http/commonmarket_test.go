package http_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/postgres/pgtest"
)

func TestCoordinationCommonMarket(t *testing.T) { coordinationCommonMarket(t, newEnv(t)) }

func TestCoordinationCommonMarketPostgres(t *testing.T) {
	coordinationCommonMarket(t, newEnvOn(t, pgtest.Open(t, "fh_common")))
}

// The common market: the TSO's and the DSO's sessions for the same
// quarter hour (both common_market) clear in one optimisation on
// case33bw. Three batteries bid into both needs: a small 300 kW one at
// bus 1 (cheapest), a large one at bus 17 (the end of the feeder, cheap)
// and a large dear one at bus 1. Each need alone fits what bus 17 can
// host, both together do not (the TSO's is a little more than bus 17
// hosts, the DSO's 600 kW). The joint clearing gives the small
// battery its 300 kW once (not once per need), keeps bus 17's total —
// the TSO's share and the DSO's — within the grid, and covers the rest
// from the dear battery: no shortfall, and the AC power flow of the
// joint result breaks no limit.
func coordinationCommonMarket(t *testing.T, e *env) {
	w := newSecondaryWorldOn(t, e)
	local := w.newProduct(w.dsoKey, "Feeder congestion")
	var cp2 pqID
	w.do("POST", "/v1/connection-points", w.dsoKey, map[string]any{"code": "CP-2", "grid_area_id": w.ga, "node_ref": "bus 1"}, 201, &cp2)
	small := w.unitWith(cp2.ID, w.cKey, 300, nil)
	cheap := w.unitWith(w.cp, w.fspAKey, 4000, nil)
	dear := w.unitWith(cp2.ID, w.fspBKey, 4000, nil)
	for _, u := range []struct{ key, id string }{{w.cKey, small}, {w.fspAKey, cheap}, {w.fspBKey, dear}} {
		for _, pr := range []struct{ product, soKey string }{{local, w.dsoKey}, {w.product, w.tsoKey}} {
			pq := w.submit(u.key, u.id, pr.product)
			w.do("POST", "/v1/prequalifications/"+pq.ID+"/decision", pr.soKey, map[string]any{"outcome": "approved"}, 200, nil)
		}
		w.grid(u.key, u.id, map[string]any{"outcome": "approved"})
	}
	modelID := w.case33bw(t, map[string]string{w.cp: "17", cp2.ID: "1"})
	day := w.day.Add(3 * time.Hour) // clear of the world's own obligation
	var gps struct {
		Items []flexhub.GridPrequalification
	}
	w.do("GET", "/v1/grid-prequalifications?resource_id="+cheap, w.dsoKey, nil, 200, &gps)
	var hc app.HostingCapacity
	w.do("GET", fmt.Sprintf("/v1/grid-prequalifications/%s/hosting-capacity?from=%s&to=%s", gps.Items[0].ID, day.Format(time.RFC3339),
		day.Add(15*time.Minute).Format(time.RFC3339)), w.dsoKey, nil, 200, &hc)
	host := hc.LimitUp.Value // kW bus 17 hosts, AC-confirmed
	tsoKW, dsoKW := host+200, 600.0

	needOf := func(key, product string, kw float64) flexhub.Need {
		var n flexhub.Need
		w.do("POST", "/v1/needs", key, map[string]any{"product_id": product, "grid_area_id": w.ga, "direction": "up", "buys": "capacity",
			"intervals": []map[string]any{{"start": day, "quantity": pqKW(kw), "max_price": eur("50")}}}, 201, &n)
		return n
	}
	tsoNeed, dsoNeed := needOf(w.tsoKey, w.product, tsoKW), needOf(w.dsoKey, local, dsoKW)
	session := func(need string, closure time.Duration) flexhub.MarketSession {
		var m flexhub.MarketSession
		w.do("POST", "/v1/market-sessions", w.moKey, map[string]any{"kind": "day_ahead", "need_ids": []string{need}, "coordination": "common_market",
			"gate_opening": w.now().Add(-time.Second), "gate_closure": w.now().Add(closure)}, 201, &m)
		return m
	}
	tsoSession, dsoSession := session(tsoNeed.ID, time.Hour), session(dsoNeed.ID, 2*time.Hour)
	if tsoSession.Coordination != flexhub.CoordinationCommon {
		t.Fatalf("coordination %q", tsoSession.Coordination)
	}
	bid := func(key, session, need, unit string, kw float64, price string) {
		var b flexhub.Bid
		w.do("POST", "/v1/bids", key, map[string]any{"session_id": session, "need_id": need, "resource_id": unit, "divisible": true, "min_quantity": pqKW(100), "linked": false,
			"intervals": []map[string]any{{"start": day, "quantity": pqKW(kw), "availability_price": eur(price)}}}, 201, &b)
		if len(b.GridCaps) != 0 || len(b.TrafficLights) != 0 {
			t.Errorf("a common_market bid of %.0f kW got traffic lights %+v, caps %+v: the joint clearing keeps the grid, not the bid-time light", kw, b.TrafficLights, b.GridCaps)
		}
	}
	for _, s := range []struct {
		session flexhub.MarketSession
		need    flexhub.Need
		kw      float64
	}{{tsoSession, tsoNeed, tsoKW}, {dsoSession, dsoNeed, dsoKW}} {
		// The bid at bus 17 asks the whole need, beyond what the bus
		// hosts: in a common market the traffic light does not cut it at
		// bid time (under dso_approval it would be capped), the clearing
		// does.
		bid(w.cKey, s.session.ID, s.need.ID, small, 300, "5")
		bid(w.fspAKey, s.session.ID, s.need.ID, cheap, s.kw, "10")
		bid(w.fspBKey, s.session.ID, s.need.ID, dear, s.kw, "30")
	}

	w.advance(time.Hour + time.Second) // the TSO's gate closes; the DSO's is open
	var m flexhub.MarketSession
	w.do("GET", "/v1/market-sessions/"+tsoSession.ID, w.tsoKey, nil, 200, &m)
	if m.Status != flexhub.SessionClosed {
		t.Fatalf("the TSO's common_market session is %s while the DSO's over the same quarter hour is open; want closed, waiting", m.Status)
	}
	w.advance(time.Hour) // both closed: cleared together
	results := func(s flexhub.MarketSession, key string) (map[string]int64, flexhub.OutcomeInterval, flexhub.Money) {
		var res app.SessionResults
		w.do("GET", "/v1/market-sessions/"+s.ID+"/results", key, nil, 200, &res)
		if res.Status != flexhub.SessionCleared || len(res.Needs) != 1 || len(res.Needs[0].Intervals) != 1 {
			t.Fatalf("session %s results: %+v", s.ID, res)
		}
		got := map[string]int64{}
		for _, a := range res.Awards {
			if a.SessionID != s.ID {
				t.Errorf("session %s shows award %s of session %s", s.ID, a.ID, a.SessionID)
			}
			got[a.ResourceID] += a.Intervals[0].Accepted
		}
		return got, res.Needs[0].Intervals[0], res.Needs[0].TotalCost
	}
	tso, tsoIv, tsoCost := results(tsoSession, w.tsoKey)
	dso, dsoIv, dsoCost := results(dsoSession, w.dsoKey)
	t.Logf("bus 17 hosts %.1f kW; TSO need %.1f kW got %v (%s EUR), DSO need %.0f kW got %v (%s EUR); grid %+v",
		host, tsoKW, tso, tsoCost.Amount, dsoKW, dso, dsoCost.Amount, dsoIv.Grid)
	if tsoIv.Shortfall != 0 || dsoIv.Shortfall != 0 || tsoIv.Accepted != int64(tsoKW*1000) || dsoIv.Accepted != int64(dsoKW*1000) {
		t.Errorf("TSO accepted %d (shortfall %d), DSO %d (shortfall %d): the dear battery can cover both needs exactly", tsoIv.Accepted, tsoIv.Shortfall, dsoIv.Accepted, dsoIv.Shortfall)
	}
	if got := tso[small] + dso[small]; got != 300_000 {
		t.Errorf("the 300 kW battery was sold %d W over both needs; want its 300,000 W once (cheapest, counted once)", got)
	}
	at17 := tso[cheap] + dso[cheap]
	if at17 <= 0 || at17 > int64((host+1)*1000) {
		t.Errorf("bus 17 got %d W over both needs; want some, within the %.1f kW it hosts", at17, host)
	}
	if tso[cheap]+dso[cheap] >= int64((tsoKW+dsoKW-300)*1000) {
		t.Errorf("the battery at bus 17 took everything cheap it could: %d W", at17)
	}
	for _, iv := range []flexhub.OutcomeInterval{tsoIv, dsoIv} {
		if g := iv.Grid; g == nil || g.GridModelID != modelID || len(g.After) != 0 {
			t.Errorf("grid outcome %+v: want the joint result checked on the DSO's grid, clean", g)
		}
	}
	// The AC power flow of what both buyers bought, through the API.
	var r app.PowerFlowResult
	w.do("POST", "/v1/grid-models/"+modelID+"/power-flow?summary=true", w.dsoKey, map[string]any{"injections": []map[string]any{
		{"bus_id": "17", "generation": map[string]any{"value": at17, "unit": "W"}},
		{"bus_id": "1", "generation": map[string]any{"value": tso[small] + dso[small] + tso[dear] + dso[dear], "unit": "W"}}}}, 200, &r)
	if len(r.Violations) != 0 {
		t.Errorf("the joint result breaks limits: %+v", r.Violations)
	}
	// The DSO's need alone fits bus 17; with the TSO's it would not.
	w.do("POST", "/v1/grid-models/"+modelID+"/power-flow?summary=true", w.dsoKey, map[string]any{"injections": []map[string]any{
		{"bus_id": "17", "generation": map[string]any{"value": int64((tsoKW + dsoKW - 300) * 1000), "unit": "W"}}}}, 200, &r)
	if len(r.Violations) == 0 {
		t.Errorf("both needs at bus 17 keep every limit: the test's grid does not bind")
	}
}
