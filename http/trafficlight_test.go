package http_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/postgres/pgtest"
)

func TestTrafficLightOverrides(t *testing.T) { trafficLightOverrides(t, newEnv(t)) }

func TestTrafficLightOverridesPostgres(t *testing.T) {
	trafficLightOverrides(t, newEnvOn(t, pgtest.Open(t, "fh_light")))
}

// A DSO sets the light of a unit in its grid by hand: amber with a limit
// and a reason. The unit's FSP and the control area's TSO see it and are
// notified; another FSP and another DSO do not see it; bad overrides are
// refused naming the field and store nothing; the DSO withdraws it; both
// steps are in the audit trail.
func trafficLightOverrides(t *testing.T, e *env) {
	w := newMarketWorldOn(t, e)
	_, otherDSOKey := w.party("tl-dso2", "dso")
	start := w.day
	body := func(mut func(map[string]any)) map[string]any {
		b := map[string]any{"resource_id": w.unitA, "start": start, "end": start.Add(2 * time.Hour), "direction": "up",
			"color": "amber", "limit": pqKW(40), "reason": "evening peak on feeder 3: transformer at its rating"}
		if mut != nil {
			mut(b)
		}
		return b
	}
	var o flexhub.TrafficLightOverride
	w.do("POST", "/v1/traffic-light-overrides", w.dsoKey, body(nil), 201, &o)
	if o.Status != flexhub.OverrideActive || o.LimitW == nil || *o.LimitW != 40_000 || o.FSPID != w.fspA || o.DSOID != w.dso || o.Version != 1 {
		t.Fatalf("override %+v", o)
	}
	w.run([]scenario{
		{name: "the FSP reads it", method: "GET", path: "/v1/traffic-light-overrides/" + o.ID, token: w.fspAKey, wantStatus: 200, wantBody: []string{`"color":"amber"`}},
		{name: "the TSO of the control area reads it per resource", method: "GET", path: "/v1/traffic-light-overrides?resource_id=" + w.unitA, token: w.tsoKey,
			wantStatus: 200, wantBody: []string{o.ID}},
		{name: "and by id", method: "GET", path: "/v1/traffic-light-overrides/" + o.ID, token: w.tsoKey, wantStatus: 200},
		{name: "another FSP does not see it", method: "GET", path: "/v1/traffic-light-overrides/" + o.ID, token: w.fspBKey, wantStatus: 404},
		{name: "nor in its list", method: "GET", path: "/v1/traffic-light-overrides", token: w.fspBKey, wantStatus: 200, notWantBody: []string{o.ID}},
		{name: "another DSO does not see it", method: "GET", path: "/v1/traffic-light-overrides/" + o.ID, token: otherDSOKey, wantStatus: 404},
		{name: "another DSO cannot override a unit outside its grid", method: "POST", path: "/v1/traffic-light-overrides", token: otherDSOKey,
			body: body(nil), wantStatus: 422, wantBody: []string{rule("traffic_light.resource")}},
		{name: "an FSP cannot override", method: "POST", path: "/v1/traffic-light-overrides", token: w.fspAKey, body: body(nil), wantStatus: 403},
		{name: "amber without a limit", method: "POST", path: "/v1/traffic-light-overrides", token: w.dsoKey,
			body: body(func(b map[string]any) { delete(b, "limit") }), wantStatus: 422, wantBody: []string{rule("traffic_light.limit")}},
		{name: "red with a limit", method: "POST", path: "/v1/traffic-light-overrides", token: w.dsoKey,
			body: body(func(b map[string]any) { b["color"] = "red" }), wantStatus: 422, wantBody: []string{rule("traffic_light.limit")}},
		{name: "a limit in volts is not power", method: "POST", path: "/v1/traffic-light-overrides", token: w.dsoKey,
			body: body(func(b map[string]any) { b["limit"] = map[string]any{"value": 40, "unit": "V"} }), wantStatus: 422, wantBody: []string{"limit"}},
		{name: "end before start", method: "POST", path: "/v1/traffic-light-overrides", token: w.dsoKey,
			body: body(func(b map[string]any) { b["end"] = start.Add(-15 * time.Minute) }), wantStatus: 422, wantBody: []string{rule("traffic_light.interval")}},
		{name: "off the quarter hour", method: "POST", path: "/v1/traffic-light-overrides", token: w.dsoKey,
			body: body(func(b map[string]any) { b["start"] = start.Add(7 * time.Minute) }), wantStatus: 422, wantBody: []string{rule("traffic_light.interval"), "start"}},
		{name: "no reason", method: "POST", path: "/v1/traffic-light-overrides", token: w.dsoKey,
			body: body(func(b map[string]any) { b["reason"] = "" }), wantStatus: 422, wantBody: []string{"reason"}},
	})
	var list struct {
		Items []flexhub.TrafficLightOverride
	}
	w.do("GET", "/v1/traffic-light-overrides", w.dsoKey, nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].ID != o.ID {
		t.Errorf("the DSO lists %d overrides, want only %s: refused ones must store nothing", len(list.Items), o.ID)
	}
	raw, _ := w.do("GET", "/v1/notifications", w.fspAKey, nil, 200, nil)
	if !strings.Contains(raw, "traffic_light.overridden") || !strings.Contains(raw, "at most 40 kW") {
		t.Errorf("the FSP was not notified: %s", raw)
	}
	raw, _ = w.do("GET", "/v1/notifications", w.tsoKey, nil, 200, nil)
	if !strings.Contains(raw, "traffic_light.overridden") {
		t.Errorf("the TSO was not notified: %s", raw)
	}

	w.run([]scenario{
		{name: "another DSO cannot withdraw it", method: "POST", path: "/v1/traffic-light-overrides/" + o.ID + "/withdraw", token: otherDSOKey, wantStatus: 404},
		{name: "a stale version", method: "POST", path: "/v1/traffic-light-overrides/" + o.ID + "/withdraw", token: w.dsoKey, headers: []string{"If-Match", `"7"`}, wantStatus: 409},
		{name: "the DSO withdraws it", method: "POST", path: "/v1/traffic-light-overrides/" + o.ID + "/withdraw", token: w.dsoKey, headers: []string{"If-Match", `"1"`},
			wantStatus: 200, wantBody: []string{`"status":"withdrawn"`}},
		{name: "once", method: "POST", path: "/v1/traffic-light-overrides/" + o.ID + "/withdraw", token: w.dsoKey, wantStatus: 409, wantBody: []string{rule("traffic_light.withdrawn")}},
		{name: "listed as withdrawn", method: "GET", path: "/v1/traffic-light-overrides?status=withdrawn", token: w.dsoKey, wantStatus: 200, wantBody: []string{o.ID}},
	})
	raw, _ = w.do("GET", "/v1/audit?object_id="+o.ID, w.dsoKey, nil, 200, nil)
	if !strings.Contains(raw, "traffic_light.overridden") || !strings.Contains(raw, "traffic_light.override_withdrawn") {
		t.Errorf("audit: %s", raw)
	}
}

func TestTrafficLightOnOrdersAndBids(t *testing.T) { trafficLightChecks(t, newEnv(t)) }

func TestTrafficLightOnOrdersAndBidsPostgres(t *testing.T) {
	trafficLightChecks(t, newEnvOn(t, pgtest.Open(t, "fh_light2")))
}

// The TSO uses units in the DSO's grid: a red light refuses its
// activation order naming the unit, the interval and the DSO's reason; an
// amber light lets the order through capped at the limit, and the FSP
// receives the capped set-point; a bid in a red interval is refused, an
// indivisible one above an amber limit too, a divisible one is kept with
// the cap and the clearing accepts no more than the cap there.
func trafficLightChecks(t *testing.T, e *env) {
	w := newSecondaryWorldOn(t, e)
	override := func(unit string, from, to time.Duration, color string, limitKW float64) flexhub.TrafficLightOverride {
		b := map[string]any{"resource_id": unit, "start": w.day.Add(from), "end": w.day.Add(to), "direction": "up", "color": color,
			"reason": "feeder 3 transformer at its rating"}
		if limitKW > 0 {
			b["limit"] = pqKW(limitKW)
		}
		var o flexhub.TrafficLightOverride
		w.do("POST", "/v1/traffic-light-overrides", w.dsoKey, b, 201, &o)
		return o
	}

	// Activation orders (the TSO's, on FSP A's obligation: 150 kW, then 200 kW).
	red := override(w.unitA, 0, 15*time.Minute, "red", 0)
	w.run([]scenario{{name: "a red set-point refuses the order", method: "POST", path: "/v1/activation-orders", token: w.tsoKey, body: w.orderBody(),
		wantStatus: 422, wantBody: []string{rule("traffic_light.red"), "setpoints[0]", w.unitA, "feeder 3 transformer"}}})
	var list struct{ Items []flexhub.ActivationOrder }
	w.do("GET", "/v1/activation-orders", w.tsoKey, nil, 200, &list)
	if len(list.Items) != 0 {
		t.Fatalf("a refused order was stored: %+v", list.Items)
	}
	w.do("POST", "/v1/traffic-light-overrides/"+red.ID+"/withdraw", w.dsoKey, nil, 200, nil)
	amber := override(w.unitA, 15*time.Minute, 30*time.Minute, "amber", 120)
	var o flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o)
	if o.Setpoints[0].Quantity != 150_000 || o.Setpoints[1].Quantity != 120_000 {
		t.Errorf("set-points %d and %d W, want 150,000 (no light) and 120,000 (amber cap)", o.Setpoints[0].Quantity, o.Setpoints[1].Quantity)
	}
	if len(o.TrafficLights) != 1 || o.TrafficLights[0].Color != flexhub.LightAmber || o.TrafficLights[0].Allowed == nil || *o.TrafficLights[0].Allowed != 120_000 ||
		o.TrafficLights[0].Requested != 200_000 || o.TrafficLights[0].OverrideID != amber.ID || o.TrafficLights[0].ResourceID != w.unitA {
		t.Errorf("the order's traffic lights %+v", o.TrafficLights)
	}
	var seen flexhub.ActivationOrder
	w.do("GET", "/v1/activation-orders/"+o.ID, w.fspAKey, nil, 200, &seen)
	if seen.Setpoints[1].Quantity != 120_000 {
		t.Errorf("the FSP reads a set-point of %d W, want the capped 120,000", seen.Setpoints[1].Quantity)
	}

	// Bids of FSP C (a 300 kW unit in the same grid) on a new TSO need.
	need := w.publish(w.tsoKey, w.product, 3)
	session := w.openSession(w.moKey, w.now().Add(-time.Second), w.now().Add(time.Hour), need.ID)
	bid := func(divisible bool) map[string]any {
		var ivs []map[string]any
		for i := range 3 {
			ivs = append(ivs, map[string]any{"start": w.day.Add(time.Duration(i) * 15 * time.Minute), "quantity": pqKW(200), "availability_price": eur("40")})
		}
		b := map[string]any{"session_id": session.ID, "need_id": need.ID, "resource_id": w.unitC, "intervals": ivs, "divisible": divisible, "linked": false}
		if divisible {
			b["min_quantity"] = pqKW(100) // the product's minimum bid size
		}
		return b
	}
	redC := override(w.unitC, 0, 15*time.Minute, "red", 0)
	w.run([]scenario{{name: "a bid in a red interval", method: "POST", path: "/v1/bids", token: w.cKey, body: bid(true),
		wantStatus: 422, wantBody: []string{rule("traffic_light.red"), "intervals[0].quantity"}}})
	w.do("POST", "/v1/traffic-light-overrides/"+redC.ID+"/withdraw", w.dsoKey, nil, 200, nil)
	low := override(w.unitC, 30*time.Minute, 45*time.Minute, "amber", 80)
	w.run([]scenario{{name: "an amber limit below the bid's minimum quantity", method: "POST", path: "/v1/bids", token: w.cKey, body: bid(true),
		wantStatus: 422, wantBody: []string{rule("traffic_light.amber"), "intervals[2].quantity", "below the bid's minimum quantity"}}})
	w.do("POST", "/v1/traffic-light-overrides/"+low.ID+"/withdraw", w.dsoKey, nil, 200, nil)
	override(w.unitC, 30*time.Minute, 45*time.Minute, "amber", 120)
	w.run([]scenario{{name: "an indivisible bid above an amber limit", method: "POST", path: "/v1/bids", token: w.cKey, body: bid(false),
		wantStatus: 422, wantBody: []string{rule("traffic_light.amber"), "intervals[2].quantity", "at most 120000 W"}}})
	var b flexhub.Bid
	w.do("POST", "/v1/bids", w.cKey, bid(true), 201, &b)
	if len(b.GridCaps) != 1 || !b.GridCaps[0].Start.Equal(w.day.Add(30*time.Minute)) || b.GridCaps[0].Allowed != 120_000 {
		t.Errorf("the bid's grid caps %+v, want 120,000 W at the third interval", b.GridCaps)
	}
	w.advance(time.Hour + time.Second) // past the gate: the session clears
	var awards struct{ Items []flexhub.Award }
	w.do("GET", "/v1/awards?session_id="+session.ID, w.tsoKey, nil, 200, &awards)
	if len(awards.Items) != 1 {
		t.Fatalf("%d awards, want FSP C's", len(awards.Items))
	}
	got := awards.Items[0].Intervals
	if len(got) != 3 || got[0].Accepted != 200_000 || got[2].Accepted != 120_000 || got[2].Offered != 120_000 {
		t.Errorf("award intervals %+v: want 200 kW accepted where green and the 120 kW cap offered and accepted where amber (the 1 MW need takes all it can)", got)
	}
}
