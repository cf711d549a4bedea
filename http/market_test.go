package http_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// mkWorld is the prequalification world plus a market: a market operator,
// the TSO's mFRR product with units of both FSPs prequalified for it and
// grid-prequalified, a need for tomorrow evening and an open session.
type mkWorld struct {
	*pqWorld
	mo, moKey string
	ga        string // the grid area of the world's connection point
	day       time.Time
	need      flexhub.Need
	session   flexhub.MarketSession
}

func newMarketWorld(t *testing.T) *mkWorld {
	t.Helper()
	return newMarketWorldOn(t, newEnv(t))
}

// newMarketWorldOn is newMarketWorld on a given environment.
func newMarketWorldOn(t *testing.T, e *env) *mkWorld {
	t.Helper()
	w := &mkWorld{pqWorld: newPQWorldOn(t, e)}
	w.mo, w.moKey = w.party("mk-mo", "market_operator")
	var cp flexhub.ConnectionPoint
	w.do("GET", "/v1/connection-points/"+w.cp, w.dsoKey, nil, 200, &cp)
	w.ga = cp.GridAreaID
	w.day = time.Now().UTC().Truncate(24 * time.Hour).Add(48*time.Hour + 17*time.Hour)
	w.approve(w.fspAKey, w.unitA, nil)
	w.approve(w.fspBKey, w.unitB, nil)
	w.grid(w.fspAKey, w.unitA, map[string]any{"outcome": "approved"})
	w.grid(w.fspBKey, w.unitB, map[string]any{"outcome": "approved"})
	w.need = w.publish(w.tsoKey, w.product, 3)
	w.session = w.openSession(w.moKey, time.Now().Add(-time.Second), time.Now().Add(time.Hour), w.need.ID)
	return w
}

// runScheduler runs the gate scheduler for the rest of the test.
func (w *mkWorld) runScheduler() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.svc.RunScheduler(ctx, 50*time.Millisecond) }()
	w.t.Cleanup(func() { cancel(); <-done })
}

// approve prequalifies a unit for the world's product (decision nil:
// approved without conditions).
func (w *mkWorld) approve(fspKey, unit string, decision map[string]any) {
	w.t.Helper()
	p := w.submit(fspKey, unit, w.product)
	if decision == nil {
		decision = map[string]any{"outcome": "approved"}
	}
	w.do("POST", "/v1/prequalifications/"+p.ID+"/decision", w.tsoKey, decision, 200, nil)
}

// grid asks for and decides a unit's grid prequalification.
func (w *mkWorld) grid(fspKey, unit string, decision map[string]any) {
	w.t.Helper()
	var g flexhub.GridPrequalification
	w.do("POST", "/v1/grid-prequalifications", fspKey, map[string]any{"resource_id": unit}, 201, &g)
	w.do("POST", "/v1/grid-prequalifications/"+g.ID+"/decision", w.dsoKey, decision, 200, nil)
}

// unitWith registers a confirmed battery of fspKey at cp with extra
// technical data.
func (w *mkWorld) unitWith(cp, fspKey string, kw float64, technical map[string]any) string {
	w.t.Helper()
	w.n++
	var mp, r pqID
	w.do("POST", "/v1/metering-points", w.dsoKey, map[string]any{"code": fmt.Sprintf("MK-%d", w.n), "connection_point_id": cp, "consumer_id": w.consumer}, 201, &mp)
	tech := map[string]any{"max_up": pqKW(kw), "max_down": pqKW(kw), "full_activation_time": "PT5M"}
	for k, v := range technical {
		tech[k] = v
	}
	w.do("POST", "/v1/resources", fspKey, map[string]any{"name": fmt.Sprintf("battery %d", w.n), "kind": "unit", "unit_type": "battery", "metering_point_id": mp.ID, "technical": tech}, 201, &r)
	w.do("POST", "/v1/resources/"+r.ID+"/confirmation", w.consumerKey, map[string]any{"accept": true}, 200, nil)
	return r.ID
}

func eur(amount string) map[string]any { return map[string]any{"amount": amount, "currency": "EUR"} }

// publish publishes an upward capacity need of n quarter hours from
// w.day at 1 MW, at most 50.00 EUR/MW/h.
func (w *mkWorld) publish(key, product string, n int) flexhub.Need {
	w.t.Helper()
	var ivs []map[string]any
	for i := range n {
		ivs = append(ivs, map[string]any{"start": w.day.Add(time.Duration(i) * 15 * time.Minute), "quantity": map[string]any{"value": 1, "unit": "MW"}, "max_price": eur("50")})
	}
	var need flexhub.Need
	w.do("POST", "/v1/needs", key, map[string]any{"product_id": product, "grid_area_id": w.ga, "direction": "up", "buys": "capacity", "intervals": ivs}, 201, &need)
	return need
}

func (w *mkWorld) openSession(key string, opening, closure time.Time, needs ...string) flexhub.MarketSession {
	w.t.Helper()
	var m flexhub.MarketSession
	w.do("POST", "/v1/market-sessions", key, map[string]any{"kind": "day_ahead", "need_ids": needs, "gate_opening": opening, "gate_closure": closure}, 201, &m)
	return m
}

// bid is a valid bid body for unit in the world's session: 200 kW at
// 40.00 EUR in every interval of the need.
func (w *mkWorld) bid(unit string) map[string]any {
	var ivs []map[string]any
	for i := range w.need.Intervals {
		ivs = append(ivs, map[string]any{"start": w.day.Add(time.Duration(i) * 15 * time.Minute), "quantity": pqKW(200), "availability_price": eur("40")})
	}
	return map[string]any{"session_id": w.session.ID, "need_id": w.need.ID, "resource_id": unit, "intervals": ivs, "divisible": false, "linked": false}
}

// edit returns a copy of body with fn applied to it and its first interval.
func edit(body map[string]any, fn func(b, iv map[string]any)) map[string]any {
	c := map[string]any{}
	for k, v := range body {
		c[k] = v
	}
	var ivs []map[string]any
	for _, iv := range body["intervals"].([]map[string]any) {
		x := map[string]any{}
		for k, v := range iv {
			x[k] = v
		}
		ivs = append(ivs, x)
	}
	c["intervals"] = ivs
	fn(c, ivs[0])
	return c
}

func rule(r string) string { return `"type":"urn:flexhub:rule:` + r + `"` }

func TestMarketBadBids(t *testing.T) {
	w := newMarketWorld(t)
	good := w.bid(w.unitA)
	// Units that fail one check each, all of FSP A.
	unprequalified := w.unitWith(w.cp, w.fspAKey, 300, nil)
	capped := w.unitWith(w.cp, w.fspAKey, 300, nil)
	w.approve(w.fspAKey, capped, map[string]any{"outcome": "approved_with_conditions", "max_power": pqKW(150), "conditions": "feeder LV1"})
	w.grid(w.fspAKey, capped, map[string]any{"outcome": "approved"})
	noGrid := w.unitWith(w.cp, w.fspAKey, 300, nil)
	w.approve(w.fspAKey, noGrid, nil)
	limited := w.unitWith(w.cp, w.fspAKey, 300, nil)
	w.approve(w.fspAKey, limited, nil)
	w.grid(w.fspAKey, limited, map[string]any{"outcome": "limited", "limit_up": pqKW(120), "reasons": "feeder LV1 near its limit"})
	rejectedGrid := w.unitWith(w.cp, w.fspAKey, 300, nil)
	w.approve(w.fspAKey, rejectedGrid, nil)
	w.grid(w.fspAKey, rejectedGrid, map[string]any{"outcome": "rejected", "reasons": "transformer full"})
	longRunner := w.unitWith(w.cp, w.fspAKey, 300, map[string]any{"min_activation_duration": "PT1H"})
	w.approve(w.fspAKey, longRunner, nil)
	w.grid(w.fspAKey, longRunner, map[string]any{"outcome": "approved"})
	var ga, cp2 pqID
	var ca struct{ ID string }
	w.do("GET", "/v1/grid-areas/"+w.ga, w.dsoKey, nil, 200, &struct{}{})
	var gaObj flexhub.GridArea
	w.do("GET", "/v1/grid-areas/"+w.ga, w.dsoKey, nil, 200, &gaObj)
	ca.ID = gaObj.ControlAreaID
	w.do("POST", "/v1/grid-areas", w.dsoKey, map[string]any{"eic": eic("10YMK-GA2"), "name": "other area", "control_area_id": ca.ID}, 201, &ga)
	w.do("POST", "/v1/connection-points", w.dsoKey, map[string]any{"code": "CP-ELSEWHERE", "grid_area_id": ga.ID, "node_ref": "MV bus 2"}, 201, &cp2)
	elsewhere := w.unitWith(cp2.ID, w.fspAKey, 300, nil)
	// Another need of the TSO in a session that opens in an hour.
	later := w.publish(w.tsoKey, w.product, 1)
	laterSession := w.openSession(w.moKey, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), later.ID)
	// FSP B's bid, whose id FSP A tries to group with.
	var bidB flexhub.Bid
	w.do("POST", "/v1/bids", w.fspBKey, w.bid(w.unitB), 201, &bidB)
	missing := "0195a000-0000-7000-8000-000000000bad"

	type c struct {
		name, rule, field string
		status            int
		token             string
		body              map[string]any
		detail            string
	}
	cases := []c{
		{"before gate opening", "session.gate_not_open", "body.session_id", 409, "", edit(good, func(b, _ map[string]any) { b["session_id"], b["need_id"] = laterSession.ID, later.ID }), "gate opens at"},
		{"unknown session", "bid.session", "body.session_id", 422, "", edit(good, func(b, _ map[string]any) { b["session_id"] = missing }), "not found"},
		{"need of another session", "bid.need_in_session", "body.need_id", 422, "", edit(good, func(b, _ map[string]any) { b["need_id"] = later.ID }), "not part of session"},
		{"another FSP's resource", "bid.resource_owned", "body.resource_id", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"] = w.unitB }), "not found among the resources"},
		{"resource outside the need's area", "bid.location", "body.resource_id", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"] = elsewhere }), "outside need"},
		{"not prequalified for the product", "bid.product_prequalification", "body.intervals[0].start", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"] = unprequalified }), "no approved prequalification"},
		{"above the prequalified max power", "bid.prequalified_max_power", "body.intervals[0].quantity.value", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"] = capped }), "feeder LV1"},
		{"no grid prequalification", "bid.grid_prequalification", "body.resource_id", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"] = noGrid }), "no grid prequalification"},
		{"grid prequalification rejected", "bid.grid_prequalification", "body.resource_id", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"] = rejectedGrid }), "transformer full"},
		{"above the grid limit", "bid.grid_limit", "body.intervals[0].quantity.value", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"] = limited }), "120000 W"},
		{"above capability", "bid.capability", "body.intervals[0].quantity.value", 422, "", edit(good, func(_, iv map[string]any) { iv["quantity"] = pqKW(301) }), "technical.max_up"},
		{"linked bid shorter than the minimum activation", "bid.activation_duration", "body.intervals", 422, "", edit(good, func(b, _ map[string]any) { b["resource_id"], b["linked"] = longRunner, true }), "PT45M, shorter than"},
		{"interval not aligned", "interval.aligned", "body.intervals[0].start", 422, "", edit(good, func(_, iv map[string]any) { iv["start"] = w.day.Add(7 * time.Minute) }), "not aligned to the PT15M"},
		{"interval outside the need", "bid.interval_in_need", "body.intervals[0].start", 422, "", edit(good, func(_, iv map[string]any) { iv["start"] = w.day.Add(-15 * time.Minute) }), "asks for nothing at"},
		{"duplicate interval", "interval.duplicate", "body.intervals[1].start", 422, "", edit(good, func(b, _ map[string]any) {
			b["intervals"].([]map[string]any)[1]["start"] = w.day
		}), "listed twice"},
		{"zero quantity", "bid.quantity", "body.intervals[0].quantity.value", 422, "", edit(good, func(_, iv map[string]any) { iv["quantity"] = pqKW(0) }), "above zero"},
		{"negative quantity", "bid.quantity", "body.intervals[0].quantity.value", 422, "", edit(good, func(_, iv map[string]any) { iv["quantity"] = pqKW(-5) }), "above zero"},
		{"reactive unit for an active product", "quantity.unit", "body.intervals[0].quantity.unit", 422, "", edit(good, func(_, iv map[string]any) { iv["quantity"] = map[string]any{"value": 200, "unit": "kvar"} }), "not a unit of active power"},
		{"below the minimum bid size", "bid.min_bid_size", "body.intervals[0].quantity.value", 422, "", edit(good, func(_, iv map[string]any) { iv["quantity"] = pqKW(99) }), "minimum bid size"},
		{"divisible without a minimum quantity", "bid.min_bid_size", "body.min_quantity", 422, "", edit(good, func(b, _ map[string]any) { b["divisible"] = true }), "min_quantity of at least"},
		{"minimum quantity above the quantity", "bid.min_quantity", "body.min_quantity.value", 422, "", edit(good, func(b, _ map[string]any) { b["divisible"], b["min_quantity"] = true, pqKW(250) }), "exceeds the quantity"},
		{"minimum quantity on an indivisible bid", "bid.min_quantity", "body.min_quantity", 422, "", edit(good, func(b, _ map[string]any) { b["min_quantity"] = pqKW(150) }), "for divisible bids"},
		{"availability price missing", "bid.price.required", "body.intervals[0].availability_price", 422, "", edit(good, func(_, iv map[string]any) { delete(iv, "availability_price") }), "give an availability price"},
		{"activation price on a capacity need", "bid.price.not_bought", "body.intervals[0].activation_price", 422, "", edit(good, func(_, iv map[string]any) { iv["activation_price"] = eur("100") }), "leave the activation price out"},
		{"price above the need's maximum", "bid.price.max", "body.intervals[0].availability_price.amount", 422, "", edit(good, func(_, iv map[string]any) { iv["availability_price"] = eur("50.0001") }), "above the need's maximum 50.00 EUR"},
		{"price with five decimals", "bid.price.format", "body.intervals[0].availability_price.amount", 422, "", edit(good, func(_, iv map[string]any) { iv["availability_price"] = eur("40.00001") }), "exact to 4 decimals"},
		{"price as a malformed decimal", "bid.price.format", "body.intervals[0].availability_price.amount", 422, "", edit(good, func(_, iv map[string]any) { iv["availability_price"] = eur("4e1") }), "not a decimal"},
		{"price in another currency", "bid.price.currency", "body.intervals[0].availability_price.currency", 422, "", edit(good, func(_, iv map[string]any) {
			iv["availability_price"] = map[string]any{"amount": "40", "currency": "SEK"}
		}), "priced in EUR"},
		{"negative price", "bid.price.negative", "body.intervals[0].availability_price.amount", 422, "", edit(good, func(_, iv map[string]any) { iv["availability_price"] = eur("-1") }), "must not be negative"},
		{"exclusive group with another FSP's bid", "bid.exclusive_group", "body.exclusive_group", 422, "", edit(good, func(b, _ map[string]any) { b["exclusive_group"] = bidB.ID }), "only your own bids"},
	}
	pqNoChange(w.env, func() {
		var scs []scenario
		for _, c := range cases {
			tok := c.token
			if tok == "" {
				tok = w.fspAKey
			}
			scs = append(scs, scenario{name: c.name, method: "POST", path: "/v1/bids", token: tok, body: c.body, wantStatus: c.status,
				wantBody: []string{rule(c.rule), `"location":"` + c.field + `"`, c.detail}})
		}
		scs = append(scs,
			scenario{name: "a TSO does not bid", method: "POST", path: "/v1/bids", token: w.tsoKey, body: good, wantStatus: 403},
			scenario{name: "malformed resource id", method: "POST", path: "/v1/bids", token: w.fspAKey, body: edit(good, func(b, _ map[string]any) { b["resource_id"] = "r-1" }), wantStatus: 422, wantBody: []string{"body.resource_id"}},
		)
		w.run(scs)
	})
	var bidsA struct{ Items []flexhub.Bid }
	w.do("GET", "/v1/bids", w.fspAKey, nil, 200, &bidsA)
	if len(bidsA.Items) != 0 {
		t.Fatalf("refused bids were stored: %+v", bidsA.Items)
	}

	// The good bid passes; grouping with one's own bid is fine.
	var a1 flexhub.Bid
	w.do("POST", "/v1/bids", w.fspAKey, good, 201, &a1)
	if a1.Intervals[0].AvailabilityPrice.Amount != "40.00" || a1.FSPID != w.fspA || a1.SystemOperatorID != w.tso || a1.OperatorID != w.mo {
		t.Fatalf("bid %+v", a1)
	}
	w.do("POST", "/v1/bids", w.fspAKey, edit(good, func(b, iv map[string]any) { b["exclusive_group"] = a1.ID; iv["availability_price"] = eur("39.5") }), 201, nil)
	w.do("POST", "/v1/bids", w.fspAKey, edit(good, func(b, _ map[string]any) {
		b["resource_id"], b["divisible"], b["min_quantity"] = capped, true, pqKW(100)
		for _, iv := range b["intervals"].([]map[string]any) {
			iv["quantity"] = pqKW(150)
		}
	}), 201, nil)

	// Once the product is bought under contract, a bidder needs one too.
	var k flexhub.Contract
	w.do("POST", "/v1/contracts", w.fspBKey, map[string]any{"product_id": w.product, "validity": map[string]any{"start": time.Now().UTC().Add(-time.Hour)}}, 201, &k)
	w.do("POST", "/v1/contracts/"+k.ID+"/accept", w.tsoKey, nil, 200, nil)
	pqNoChange(w.env, func() {
		w.run([]scenario{{name: "no contract for a contracted product", method: "POST", path: "/v1/bids", token: w.fspAKey, body: good, wantStatus: 422,
			wantBody: []string{rule("bid.contract"), `"location":"body.resource_id"`, "needs an active contract"}}})
	})
	w.do("POST", "/v1/bids", w.fspBKey, w.bid(w.unitB), 201, nil)
	var kA flexhub.Contract
	w.do("POST", "/v1/contracts", w.tsoKey, map[string]any{"product_id": w.product, "fsp_id": w.fspA, "resource_ids": []string{w.unitA}, "validity": map[string]any{"start": time.Now().UTC().Add(-time.Hour)}}, 201, &kA)
	w.do("POST", "/v1/contracts/"+kA.ID+"/accept", w.fspAKey, nil, 200, nil)
	w.do("POST", "/v1/bids", w.fspAKey, good, 201, nil, "Idempotency-Key", "bid-1")
	var replay flexhub.Bid
	_, h := w.do("POST", "/v1/bids", w.fspAKey, good, 201, &replay, "Idempotency-Key", "bid-1")
	if h.Get("Idempotent-Replayed") != "true" {
		t.Fatal("a retried bid must replay, not bid twice")
	}
	w.run([]scenario{{name: "the contract covers named resources only", method: "POST", path: "/v1/bids", token: w.fspAKey,
		body: edit(good, func(b, _ map[string]any) {
			b["resource_id"] = capped
			for _, iv := range b["intervals"].([]map[string]any) {
				iv["quantity"] = pqKW(150)
			}
		}), wantStatus: 422, wantBody: []string{rule("bid.contract")}}})
}

func TestMarketNeedsAndSessions(t *testing.T) {
	w := newMarketWorld(t)
	body := func(fn func(b map[string]any, iv map[string]any)) map[string]any {
		iv := map[string]any{"start": w.day, "quantity": map[string]any{"value": 1, "unit": "MW"}, "max_price": eur("50")}
		b := map[string]any{"product_id": w.product, "grid_area_id": w.ga, "direction": "up", "buys": "capacity", "intervals": []map[string]any{iv}}
		fn(b, iv)
		return b
	}
	spare := w.publish(w.tsoKey, w.product, 1)
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "an FSP publishes no need", method: "POST", path: "/v1/needs", token: w.fspAKey, body: body(func(_, _ map[string]any) {}), wantStatus: 403},
			{name: "another system operator's product", method: "POST", path: "/v1/needs", token: w.dsoKey, body: body(func(_, _ map[string]any) {}), wantStatus: 403, wantBody: []string{"body.product_id"}},
			{name: "no location", method: "POST", path: "/v1/needs", token: w.tsoKey, body: body(func(b, _ map[string]any) { delete(b, "grid_area_id") }), wantStatus: 422, wantBody: []string{rule("need.location")}},
			{name: "unknown grid area", method: "POST", path: "/v1/needs", token: w.tsoKey, body: body(func(b, _ map[string]any) { b["grid_area_id"] = "0195a000-0000-7000-8000-000000000bad" }), wantStatus: 422, wantBody: []string{rule("need.location"), "body.grid_area_id"}},
			{name: "direction the product does not buy", method: "POST", path: "/v1/needs", token: w.tsoKey, body: body(func(b, _ map[string]any) { b["direction"] = "down" }), wantStatus: 422, wantBody: []string{rule("need.direction")}},
			{name: "interval not aligned", method: "POST", path: "/v1/needs", token: w.tsoKey, body: body(func(_, iv map[string]any) { iv["start"] = w.day.Add(time.Minute) }), wantStatus: 422, wantBody: []string{rule("interval.aligned"), "body.intervals[0].start"}},
			{name: "interval in the past", method: "POST", path: "/v1/needs", token: w.tsoKey, body: body(func(_, iv map[string]any) { iv["start"] = w.day.Add(-72 * time.Hour) }), wantStatus: 422, wantBody: []string{rule("need.intervals_past")}},
			{name: "max price with five decimals", method: "POST", path: "/v1/needs", token: w.tsoKey, body: body(func(_, iv map[string]any) { iv["max_price"] = eur("1.23456") }), wantStatus: 422, wantBody: []string{"body.intervals[0].max_price.amount", "exact to 4 decimals"}},
			{name: "reactive quantity for an active product", method: "POST", path: "/v1/needs", token: w.tsoKey, body: body(func(_, iv map[string]any) { iv["quantity"] = map[string]any{"value": 1, "unit": "Mvar"} }), wantStatus: 422, wantBody: []string{"body.intervals[0].quantity.unit"}},
			{name: "a need already in a session", method: "POST", path: "/v1/market-sessions", token: w.moKey,
				body: map[string]any{"kind": "intraday", "need_ids": []string{w.need.ID}, "gate_opening": time.Now(), "gate_closure": time.Now().Add(time.Hour)}, wantStatus: 409, wantBody: []string{rule("session.need_taken")}},
			{name: "an FSP runs no session", method: "POST", path: "/v1/market-sessions", token: w.fspAKey,
				body: map[string]any{"kind": "intraday", "need_ids": []string{spare.ID}, "gate_opening": time.Now(), "gate_closure": time.Now().Add(time.Hour)}, wantStatus: 403},
		})
	})
	free := w.publish(w.tsoKey, w.product, 2)
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "gate closure before opening", method: "POST", path: "/v1/market-sessions", token: w.moKey,
				body: map[string]any{"kind": "intraday", "need_ids": []string{free.ID}, "gate_opening": time.Now().Add(time.Hour), "gate_closure": time.Now().Add(time.Minute)}, wantStatus: 422, wantBody: []string{rule("session.gate_order")}},
			{name: "gate closure after delivery starts", method: "POST", path: "/v1/market-sessions", token: w.moKey,
				body: map[string]any{"kind": "intraday", "need_ids": []string{free.ID}, "gate_opening": time.Now(), "gate_closure": w.day.Add(time.Minute)}, wantStatus: 422, wantBody: []string{rule("session.gate_after_delivery")}},
			{name: "gate closure in the past", method: "POST", path: "/v1/market-sessions", token: w.moKey,
				body: map[string]any{"kind": "intraday", "need_ids": []string{free.ID}, "gate_opening": time.Now().Add(-time.Hour), "gate_closure": time.Now().Add(-time.Minute)}, wantStatus: 422, wantBody: []string{rule("session.gate_closure_past")}},
			{name: "revise without If-Match", method: "PUT", path: "/v1/needs/" + free.ID, token: w.tsoKey, body: body(func(_, _ map[string]any) {}), wantStatus: 422, wantBody: []string{"If-Match"}},
			{name: "another party revises", method: "PUT", path: "/v1/needs/" + free.ID, token: w.dsoKey, headers: []string{"If-Match", `"1"`}, body: body(func(_, _ map[string]any) {}), wantStatus: 403},
		})
	})
	w.run([]scenario{
		{name: "needs are public", method: "GET", path: "/v1/needs/" + w.need.ID, token: w.fspBKey, wantStatus: 200, wantBody: []string{`"session_id":"` + w.session.ID + `"`, `"amount":"50.00"`}},
		{name: "sessions are public", method: "GET", path: "/v1/market-sessions/" + w.session.ID, token: w.consumerKey, wantStatus: 200, wantBody: []string{`"status":"open"`, `"pricing":"pay_as_bid"`, `"operator_id":"` + w.mo + `"`}},
		{name: "list open needs of a product", method: "GET", path: "/v1/needs?status=open&product_id=" + w.product, token: w.fspAKey, wantStatus: 200, wantBody: []string{w.need.ID, free.ID}},
		{name: "list my sessions as operator", method: "GET", path: "/v1/market-sessions?operator_id=self", token: w.moKey, wantStatus: 200, wantBody: []string{w.session.ID}},
		{name: "revise a free need", method: "PUT", path: "/v1/needs/" + free.ID, token: w.tsoKey, headers: []string{"If-Match", `"1"`}, body: body(func(_, iv map[string]any) { iv["max_price"] = eur("60.5") }), wantStatus: 200, wantBody: []string{`"version":2`, `"amount":"60.50"`}},
		{name: "cancel it", method: "POST", path: "/v1/needs/" + free.ID + "/cancel", token: w.tsoKey, headers: []string{"If-Match", `"2"`}, wantStatus: 200, wantBody: []string{`"status":"cancelled"`}},
		{name: "cancel twice", method: "POST", path: "/v1/needs/" + free.ID + "/cancel", token: w.tsoKey, wantStatus: 409},
		{name: "a system operator runs its own session", method: "POST", path: "/v1/market-sessions", token: w.tsoKey,
			body:       map[string]any{"kind": "long_term", "pricing": "uniform", "need_ids": []string{w.publish(w.tsoKey, w.product, 1).ID}, "gate_opening": time.Now().Add(time.Hour), "gate_closure": time.Now().Add(2 * time.Hour)},
			wantStatus: 201, wantBody: []string{`"status":"scheduled"`, `"pricing":"uniform"`}},
	})
	// Opening notified the prequalified FSPs, the operator and the buyer.
	for _, key := range []string{w.fspAKey, w.fspBKey, w.moKey, w.tsoKey} {
		var feed struct {
			Items      []flexhub.Notification
			NextCursor string `json:"next_cursor"`
		}
		w.do("GET", "/v1/notifications", key, nil, 200, &feed)
		if len(feed.Items) == 0 || feed.Items[0].Type != "session.opened" || feed.Items[0].ObjectID != w.session.ID {
			t.Fatalf("feed: %+v", feed)
		}
		var again struct{ Items []flexhub.Notification }
		w.do("GET", "/v1/notifications?after="+feed.NextCursor, key, nil, 200, &again)
		if len(again.Items) != 0 {
			t.Fatalf("nothing new after the cursor: %+v", again.Items)
		}
	}
	w.run([]scenario{
		{name: "the DSO buys nothing here and hears nothing", method: "GET", path: "/v1/notifications", token: w.dsoKey, wantStatus: 200, notWantBody: []string{w.session.ID}},
		{name: "a malformed cursor", method: "GET", path: "/v1/notifications?after=abc", token: w.dsoKey, wantStatus: 422, wantBody: []string{"query.after"}},
	})
}

// waitFor polls until the session reaches status, failing after limit.
func (w *mkWorld) waitFor(id, status string, limit time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var m flexhub.MarketSession
		w.do("GET", "/v1/market-sessions/"+id, w.fspAKey, nil, 200, &m)
		if m.Status == status {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("session %s is %s after %s, want %s", id, m.Status, limit, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMarketGatesAndVisibility(t *testing.T) {
	w := newMarketWorld(t)
	w.runScheduler()
	// A session whose gate opens in 1 s and closes 2.5 s from now.
	need := w.publish(w.tsoKey, w.product, 2)
	opening, closure := time.Now().Add(time.Second), time.Now().Add(2500*time.Millisecond)
	m := w.openSession(w.moKey, opening, closure, need.ID)
	if m.Status != "scheduled" {
		t.Fatalf("session %+v", m)
	}
	w.need, w.session = need, m
	body := w.bid(w.unitA)
	pqNoChange(w.env, func() {
		w.run([]scenario{{name: "before gate opening", method: "POST", path: "/v1/bids", token: w.fspAKey, body: body, wantStatus: 409, wantBody: []string{rule("session.gate_not_open"), "gate opens at"}}})
	})
	w.waitFor(m.ID, "open", 3*time.Second)
	var a, a2, b flexhub.Bid
	w.do("POST", "/v1/bids", w.fspAKey, body, 201, &a)
	w.do("POST", "/v1/bids", w.fspAKey, body, 201, &a2)
	w.do("POST", "/v1/bids", w.fspBKey, w.bid(w.unitB), 201, &b)
	modified := edit(body, func(_, iv map[string]any) { iv["availability_price"] = eur("35.25") })
	w.run([]scenario{
		{name: "modify before gate closure", method: "PUT", path: "/v1/bids/" + a.ID, token: w.fspAKey, headers: []string{"If-Match", `"1"`}, body: modified, wantStatus: 200, wantBody: []string{`"version":2`, `"amount":"35.25"`}},
		{name: "modify with a stale version", method: "PUT", path: "/v1/bids/" + a.ID, token: w.fspAKey, headers: []string{"If-Match", `"1"`}, body: modified, wantStatus: 409},
		{name: "modify into a bad bid", method: "PUT", path: "/v1/bids/" + a.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`}, body: edit(body, func(_, iv map[string]any) { iv["quantity"] = pqKW(0) }), wantStatus: 422, wantBody: []string{rule("bid.quantity")}},
		{name: "withdraw before gate closure", method: "POST", path: "/v1/bids/" + a2.ID + "/withdraw", token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"withdrawn"`}},
		{name: "another FSP cannot modify it", method: "PUT", path: "/v1/bids/" + a.ID, token: w.fspBKey, headers: []string{"If-Match", `"2"`}, body: modified, wantStatus: 404},
		// Visibility before gate closure.
		{name: "FSP B does not see A's bid", method: "GET", path: "/v1/bids/" + a.ID, token: w.fspBKey, wantStatus: 404},
		{name: "FSP B's list holds only its own", method: "GET", path: "/v1/bids", token: w.fspBKey, wantStatus: 200, wantBody: []string{b.ID}, notWantBody: []string{a.ID, a2.ID}},
		{name: "FSP B's session list holds only its own", method: "GET", path: "/v1/bids?session_id=" + m.ID, token: w.fspBKey, wantStatus: 200, wantBody: []string{b.ID}, notWantBody: []string{a.ID}},
		{name: "FSP B cannot list A's bids", method: "GET", path: "/v1/bids?fsp_id=" + w.fspA, token: w.fspBKey, wantStatus: 403},
		{name: "the buyer does not see bids before gate closure", method: "GET", path: "/v1/bids/" + a.ID, token: w.tsoKey, wantStatus: 404},
		{name: "the buyer cannot list them before gate closure", method: "GET", path: "/v1/bids?session_id=" + m.ID, token: w.tsoKey, wantStatus: 403},
		{name: "the buyer is not told of them in the audit trail", method: "GET", path: "/v1/audit?object_id=" + a.ID, token: w.tsoKey, wantStatus: 200, notWantBody: []string{"bid.submitted"}},
		{name: "FSP B is not told of them in the audit trail", method: "GET", path: "/v1/audit?object_id=" + a.ID, token: w.fspBKey, wantStatus: 200, notWantBody: []string{"bid.submitted"}},
		{name: "the market operator sees them", method: "GET", path: "/v1/bids/" + a.ID, token: w.moKey, wantStatus: 200},
		{name: "the market operator lists the session", method: "GET", path: "/v1/bids?session_id=" + m.ID, token: w.moKey, wantStatus: 200, wantBody: []string{a.ID, b.ID}},
		{name: "FSP A hears of its own bid", method: "GET", path: "/v1/notifications", token: w.fspAKey, wantStatus: 200, wantBody: []string{`"type":"bid.received"`, `"type":"bid.modified"`, `"type":"bid.withdrawn"`, a.ID}},
		{name: "FSP B never hears of A's bids", method: "GET", path: "/v1/notifications", token: w.fspBKey, wantStatus: 200, notWantBody: []string{a.ID, a2.ID}},
	})
	w.waitFor(m.ID, "cleared", 3*time.Second)
	if time.Now().Before(closure) {
		t.Fatal("closed before gate closure")
	}
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "submit after gate closure", method: "POST", path: "/v1/bids", token: w.fspAKey, body: body, wantStatus: 410, wantBody: []string{rule("session.gate_closed"), "gate closed at"}},
			{name: "modify after gate closure", method: "PUT", path: "/v1/bids/" + a.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`}, body: modified, wantStatus: 410, wantBody: []string{"gate closed at"}},
			{name: "withdraw after gate closure", method: "POST", path: "/v1/bids/" + a.ID + "/withdraw", token: w.fspAKey, wantStatus: 410, wantBody: []string{"gate closed at"}},
			{name: "revise the need after gate closure", method: "PUT", path: "/v1/needs/" + need.ID, token: w.tsoKey, headers: []string{"If-Match", `"3"`}, body: map[string]any{}, wantStatus: 422},
			{name: "cancel the need after gate closure", method: "POST", path: "/v1/needs/" + need.ID + "/cancel", token: w.tsoKey, wantStatus: 410},
			{name: "cancel the session after gate closure", method: "POST", path: "/v1/market-sessions/" + m.ID + "/cancel", token: w.moKey, wantStatus: 410},
		})
	})
	w.run([]scenario{
		{name: "the buyer sees bids after gate closure", method: "GET", path: "/v1/bids/" + a.ID, token: w.tsoKey, wantStatus: 200},
		{name: "the buyer lists the session's bids", method: "GET", path: "/v1/bids?session_id=" + m.ID, token: w.tsoKey, wantStatus: 200, wantBody: []string{a.ID, a2.ID, b.ID}},
		{name: "FSP B still does not see A's bid", method: "GET", path: "/v1/bids/" + a.ID, token: w.fspBKey, wantStatus: 404},
		{name: "FSP B's session list still holds only its own", method: "GET", path: "/v1/bids?session_id=" + m.ID, token: w.fspBKey, wantStatus: 200, notWantBody: []string{a.ID}},
		{name: "the need closed with the session", method: "GET", path: "/v1/needs/" + need.ID, token: w.fspBKey, wantStatus: 200, wantBody: []string{`"status":"closed"`}},
		{name: "FSP B heard the gate close", method: "GET", path: "/v1/notifications", token: w.fspBKey, wantStatus: 200, wantBody: []string{`"type":"session.closed"`}},
	})
	var closes int
	for _, e := range pqAudit(w.env, m.ID) {
		if e.Action == "session.closed" {
			closes++
			if e.ActorID != "flexhub-scheduler" {
				t.Errorf("the scheduler closes the gate, not %s", e.ActorID)
			}
		}
	}
	if closes != 1 {
		t.Fatalf("%d session.closed entries, want 1", closes)
	}
	// Running the scheduler again changes nothing.
	if n, err := w.svc.AdvanceSessions(context.Background()); err != nil || n != 0 {
		t.Fatalf("AdvanceSessions after closure: %d, %v", n, err)
	}
}
