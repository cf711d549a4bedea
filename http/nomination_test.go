package http_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// schedule is a nomination's schedule: n quarter hours from start, kw each.
func schedule(start time.Time, n int, kw float64) []map[string]any {
	var out []map[string]any
	for i := range n {
		s := start.Add(time.Duration(i) * 15 * time.Minute)
		out = append(out, map[string]any{"start": s, "end": s.Add(15 * time.Minute), "quantity": pqKW(kw)})
	}
	return out
}

// Nominated baselines through the API: the market world's product uses
// nominated_schedule. An FSP nominates its unit for the open session;
// without history the nomination is unchecked; with 28 days of history
// (40 kWh per quarter hour at 17:00-17:45, i.e. 160 kW) a nomination of
// 170 kW is plausible and one of 400 kW is refused; a nomination is
// replaced with If-Match until the gate closes and frozen after.
func TestNominations(t *testing.T) {
	w := newMarketWorld(t)
	body := func(unit, session string, kw float64) map[string]any {
		return map[string]any{"resource_id": unit, "session_id": session, "schedule": schedule(w.day, 3, kw)}
	}
	var n flexhub.Nomination
	w.do("POST", "/v1/nominations", w.fspAKey, body(w.unitA, w.session.ID, 170), 201, &n)
	if !strings.HasPrefix(n.Plausibility, "unchecked:") || len(n.Schedule) != 3 || n.Schedule[0].NetImport != 170_000 || n.FSPID != w.fspA {
		t.Fatalf("first nomination %+v", n)
	}
	export := body(w.unitB, w.session.ID, 5)
	export["schedule"].([]map[string]any)[0]["flow"] = "export"
	misaligned := body(w.unitA, w.session.ID, 170)
	misaligned["schedule"].([]map[string]any)[1]["start"] = w.day.Add(20 * time.Minute)
	w.run([]scenario{
		{name: "a second nomination for the same resource and session", method: "POST", path: "/v1/nominations", token: w.fspAKey,
			body: body(w.unitA, w.session.ID, 170), wantStatus: 409, wantBody: []string{rule("nomination.exists"), n.ID}},
		{name: "another FSP's resource", method: "POST", path: "/v1/nominations", token: w.fspBKey,
			body: body(w.unitA, w.session.ID, 170), wantStatus: 422, wantBody: []string{rule("nomination.resource")}},
		{name: "an interval off the grid", method: "POST", path: "/v1/nominations", token: w.fspAKey,
			body: misaligned, wantStatus: 422, wantBody: []string{rule("nomination.interval"), "schedule[1]"}},
		{name: "a system operator does not nominate", method: "POST", path: "/v1/nominations", token: w.tsoKey,
			body: body(w.unitA, w.session.ID, 170), wantStatus: 403},
		{name: "export is negative net import", method: "POST", path: "/v1/nominations", token: w.fspBKey,
			body: export, wantStatus: 201, wantBody: []string{`"net_import":-5000`}},
		{name: "the FSP reads its nomination", method: "GET", path: "/v1/nominations/" + n.ID, token: w.fspAKey, wantStatus: 200},
		{name: "the session's system operator reads it", method: "GET", path: "/v1/nominations?session_id=" + w.session.ID, token: w.tsoKey,
			wantStatus: 200, wantBody: []string{n.ID}},
		{name: "another FSP does not see it", method: "GET", path: "/v1/nominations/" + n.ID, token: w.fspBKey, wantStatus: 404},
		{name: "nor in its list", method: "GET", path: "/v1/nominations", token: w.fspBKey, wantStatus: 200, notWantBody: []string{n.ID}},
	})

	// 28 days of history: 40 kWh in each quarter hour from 17:00 to 17:45.
	var readings []map[string]any
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for d := 1; d <= 28; d++ {
		for i := range 3 {
			start := today.AddDate(0, 0, -d).Add(17*time.Hour + time.Duration(i)*15*time.Minute)
			readings = append(readings, map[string]any{"resource_id": w.unitA, "quantity": "active_energy", "flow": "import",
				"start": start.Format(time.RFC3339), "resolution": "PT15M", "value": 40, "unit": "kWh"})
		}
	}
	w.do("POST", "/v1/meter-readings", w.fspAKey, map[string]any{"readings": readings}, 200, nil)

	w.do("PUT", "/v1/nominations/"+n.ID, w.fspAKey, body(w.unitA, w.session.ID, 170), 200, &n, "If-Match", `"1"`)
	if !strings.HasPrefix(n.Plausibility, "checked:") || n.Version != 2 {
		t.Errorf("with history: %q version %d", n.Plausibility, n.Version)
	}
	w.run([]scenario{
		{name: "400 kW against a history of 160 kW", method: "PUT", path: "/v1/nominations/" + n.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
			body: body(w.unitA, w.session.ID, 400), wantStatus: 422, wantBody: []string{rule("baseline.implausible_nomination"), "150 % above"}},
		{name: "a stale version", method: "PUT", path: "/v1/nominations/" + n.ID, token: w.fspAKey, headers: []string{"If-Match", `"1"`},
			body: body(w.unitA, w.session.ID, 170), wantStatus: 409},
		{name: "another resource under the same id", method: "PUT", path: "/v1/nominations/" + n.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
			body: body(w.unitB, w.session.ID, 170), wantStatus: 422, wantBody: []string{rule("nomination.identity")}},
	})
	var still flexhub.Nomination
	w.do("GET", "/v1/nominations/"+n.ID, w.fspAKey, nil, 200, &still)
	if still.Version != 2 || still.Schedule[0].NetImport != 170_000 {
		t.Errorf("a refused replacement changed the nomination: %+v", still)
	}

	// A session whose gate closes in a moment: nominated before, frozen after.
	need := w.publish(w.tsoKey, w.product, 3)
	closing := w.openSession(w.moKey, time.Now().Add(-time.Second), time.Now().Add(1500*time.Millisecond), need.ID)
	var late flexhub.Nomination
	w.do("POST", "/v1/nominations", w.fspAKey, body(w.unitA, closing.ID, 170), 201, &late)
	time.Sleep(time.Until(closing.GateClosure) + 50*time.Millisecond)
	w.run([]scenario{
		{name: "replaced after the gate", method: "PUT", path: "/v1/nominations/" + late.ID, token: w.fspAKey, headers: []string{"If-Match", `"1"`},
			body: body(w.unitA, closing.ID, 160), wantStatus: 410, wantBody: []string{rule("nomination.gate_closed")}},
		{name: "nominated after the gate", method: "POST", path: "/v1/nominations", token: w.fspBKey,
			body: body(w.unitB, closing.ID, 5), wantStatus: 410, wantBody: []string{rule("nomination.gate_closed")}},
	})
	// every accepted step is in the audit trail
	raw, _ := w.do("GET", fmt.Sprintf("/v1/audit?object_id=%s", n.ID), w.fspAKey, nil, 200, nil)
	if !strings.Contains(raw, "nomination.submitted") || !strings.Contains(raw, "nomination.replaced") {
		t.Errorf("audit: %s", raw)
	}
}
