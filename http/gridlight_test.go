package http_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/postgres/pgtest"
)

func TestGridTrafficLight(t *testing.T) { gridTrafficLight(t, newEnv(t)) }

func TestGridTrafficLightPostgres(t *testing.T) {
	gridTrafficLight(t, newEnvOn(t, pgtest.Open(t, "fh_gridlight")))
}

// The traffic light from the DSO's grid model: the world's connection
// point is mapped to bus 17 (the weakest) of case33bw. The hosting
// capacity there sets up the forecasts, so nothing is tuned by hand: a
// forecast whose first interval already has more generation at the bus
// than it hosts makes the TSO's upward activation red there (refused,
// naming the limit); a newer forecast leaving less room than the second
// set-point asks makes it amber — the order goes through capped, and an
// AC power flow through the API confirms the cap keeps every limit while
// 2 kW more breaks one. The forecast's needs ask for downward flexibility
// at that connection point where the grid is violated.
func gridTrafficLight(t *testing.T, e *env) {
	w := newSecondaryWorldOn(t, e)
	model := w.case33bw(t, map[string]string{w.cp: "17"})

	var gps struct {
		Items []flexhub.GridPrequalification
	}
	w.do("GET", "/v1/grid-prequalifications?resource_id="+w.unitA, w.dsoKey, nil, 200, &gps)
	if len(gps.Items) == 0 {
		t.Fatal("unit A has no grid prequalification")
	}
	q := fmt.Sprintf("?from=%s&to=%s", w.day.Format(time.RFC3339), w.day.Add(45*time.Minute).Format(time.RFC3339))
	var hc app.HostingCapacity
	w.do("GET", "/v1/grid-prequalifications/"+gps.Items[0].ID+"/hosting-capacity"+q, w.dsoKey, nil, 200, &hc)
	hostKW := hc.LimitUp.Value
	if hc.BusID != "17" || hc.States != "the model's base case" || hostKW <= 200 || hc.LimitDown.Value <= 0 {
		t.Fatalf("hosting capacity %+v: want bus 17 on the base case, above the 200 kW the order asks up", hc)
	}
	w.run([]scenario{
		{name: "hosting capacity is the DSO's", method: "GET", path: "/v1/grid-prequalifications/" + gps.Items[0].ID + "/hosting-capacity" + q, token: w.fspAKey, wantStatus: 403},
	})

	forecast := func(genKW ...float64) flexhub.GridForecast {
		var f flexhub.GridForecast
		w.do("POST", "/v1/grid-models/"+model+"/forecasts", w.dsoKey, map[string]any{"start": w.day, "intervals": len(genKW),
			"series": []map[string]any{{"bus_id": "17", "unit": "kW", "generation": genKW}}}, 201, &f)
		return f
	}
	// Interval 1 beyond what the bus hosts, interval 2 80 kW short of it,
	// interval 3 the base case.
	f1 := forecast(hostKW+100, hostKW-80, 0)
	if len(f1.States) != 3 || len(f1.States[0].Violations) == 0 || len(f1.States[1].Violations) != 0 || len(f1.States[2].Violations) != 0 {
		t.Fatalf("forecast states %+v: want a violation in the first interval only", f1.States)
	}
	w.run([]scenario{{name: "red: generation at the bus beyond its limit already", method: "POST", path: "/v1/activation-orders", token: w.tsoKey,
		body: w.orderBody(), wantStatus: 422, wantBody: []string{rule("traffic_light.red"), "setpoints[0]", w.unitA}}})

	var needs struct{ Items []app.GridNeed }
	w.do("GET", "/v1/grid-forecasts/"+f1.ID+"/needs", w.dsoKey, nil, 200, &needs)
	if len(needs.Items) == 0 {
		t.Fatal("no needs for a forecast with a violation")
	}
	n := needs.Items[0]
	if n.Direction != "down" || !n.Start.Equal(w.day) || !n.Resolved || len(n.Intervals) != 1 || !strings.Contains(strings.Join(n.ConnectionPointIDs, ","), w.cp) {
		t.Errorf("need %+v: want downward flexibility in the first interval at the world's connection point, confirmed by AC", n)
	}

	f2 := forecast(0, hostKW-80, 0) // newer: the first interval is back to the base case
	var o flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o)
	if o.Setpoints[0].Quantity != 150_000 {
		t.Errorf("set-point 1: %d W, want the 150 kW asked (green)", o.Setpoints[0].Quantity)
	}
	allowed := o.Setpoints[1].Quantity
	if allowed <= 0 || allowed >= 200_000 {
		t.Fatalf("set-point 2: %d W, want capped below the 200 kW asked (amber)", allowed)
	}
	var amber *flexhub.TrafficLight
	for i := range o.TrafficLights {
		if o.TrafficLights[i].Color == flexhub.LightAmber {
			amber = &o.TrafficLights[i]
		}
	}
	if amber == nil || amber.Allowed == nil || *amber.Allowed != allowed || amber.LimitingElement == "" || !strings.Contains(amber.Source, f2.ID) ||
		!amber.Start.Equal(w.day.Add(15*time.Minute)) {
		t.Fatalf("lights %+v: want an amber light on the second set-point from forecast %s, allowing %d W, naming its limit", o.TrafficLights, f2.ID, allowed)
	}
	t.Logf("bus 17 hosts %.1f kW up (base case, limit %s); amber cap %d W (%s); need: %s %v at %v", hostKW, hc.Capacities[0].Limiting, allowed, amber.LimitingElement, n.Direction, n.Intervals[0].Quantity, n.ConnectionPointIDs)
	// The cap keeps every limit in that interval's state; 2 kW more does not.
	flow := func(extraW int64) app.PowerFlowResult {
		var r app.PowerFlowResult
		w.do("POST", "/v1/grid-models/"+model+"/power-flow?summary=true", w.dsoKey, map[string]any{"injections": []map[string]any{
			{"bus_id": "17", "generation": map[string]any{"value": (hostKW-80)*1000 + float64(extraW), "unit": "W"}}}}, 200, &r)
		return r
	}
	if r := flow(allowed); len(r.Violations) != 0 {
		t.Errorf("at the cap (%d W) the grid breaks a limit: %+v", allowed, r.Violations)
	}
	if r := flow(allowed + 2000); len(r.Violations) == 0 {
		t.Errorf("2 kW beyond the cap (%d W) the grid keeps every limit: the cap is not the limit", allowed)
	}

	w.run([]scenario{
		{name: "a forecast naming a bus the model does not have", method: "POST", path: "/v1/grid-models/" + model + "/forecasts", token: w.dsoKey,
			body:       map[string]any{"start": w.day, "intervals": 1, "series": []map[string]any{{"bus_id": "99", "unit": "kW", "load": []float64{10}}}},
			wantStatus: 422, wantBody: []string{`bus \"99\" does not exist`}},
		{name: "a forecast that does not solve", method: "POST", path: "/v1/grid-models/" + model + "/forecasts", token: w.dsoKey,
			body:       map[string]any{"start": w.day, "intervals": 1, "series": []map[string]any{{"bus_id": "17", "unit": "MW", "load": []float64{500}}}},
			wantStatus: 422, wantBody: []string{rule("grid_forecast.power_flow")}},
		{name: "a scale per interval of the wrong length", method: "POST", path: "/v1/grid-models/" + model + "/forecasts", token: w.dsoKey,
			body: map[string]any{"start": w.day, "intervals": 2, "load_scale_percent": []float64{100}}, wantStatus: 422, wantBody: []string{rule("grid_forecast.length")}},
		{name: "an FSP does not forecast the DSO's grid", method: "POST", path: "/v1/grid-models/" + model + "/forecasts", token: w.fspAKey,
			body: map[string]any{"start": w.day, "intervals": 1}, wantStatus: 403},
		{name: "the TSO of the control area reads the forecast", method: "GET", path: "/v1/grid-forecasts/" + f1.ID, token: w.tsoKey, wantStatus: 200},
		{name: "an FSP does not", method: "GET", path: "/v1/grid-forecasts/" + f1.ID, token: w.fspAKey, wantStatus: 404},
	})
	var list struct{ Items []flexhub.GridForecast }
	w.do("GET", "/v1/grid-models/"+model+"/forecasts", w.dsoKey, nil, 200, &list)
	if len(list.Items) != 2 {
		t.Errorf("%d forecasts stored, want the 2 accepted", len(list.Items))
	}
}
