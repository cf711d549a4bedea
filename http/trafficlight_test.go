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
	var list struct{ Items []flexhub.TrafficLightOverride }
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
