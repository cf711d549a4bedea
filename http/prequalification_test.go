package http_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// pqWorld is a small grid with a TSO, a DSO, two FSPs and their units,
// registered through the API, for the prequalification and contract
// scenarios.
type pqWorld struct {
	*env
	tso, tsoKey   string
	dso, dsoKey   string
	fspA, fspAKey string
	fspB, fspBKey string
	consumer      string // the household behind every metering point
	consumerKey   string
	cp            string // the DSO's connection point all units sit behind
	unitA, unitB  string // units of fspA and fspB
	product       string // the TSO's mFRR product
	n             int    // counter for unique codes
}

// pqID decodes the id of any created object.
type pqID struct {
	ID string `json:"id"`
}

func pqKW(v float64) map[string]any { return map[string]any{"value": v, "unit": "kW"} }

func newPQWorld(t *testing.T) *pqWorld {
	t.Helper()
	return newPQWorldOn(t, newEnv(t))
}

// newPQWorldOn is newPQWorld on a given environment (e.g. on PostgreSQL).
func newPQWorldOn(t *testing.T, e *env) *pqWorld {
	t.Helper()
	w := &pqWorld{env: e}
	w.tso, w.tsoKey = w.party("pq-tso", "tso")
	w.dso, w.dsoKey = w.party("pq-dso", "dso")
	w.fspA, w.fspAKey = w.party("pq-fsp-a", "fsp")
	w.fspB, w.fspBKey = w.party("pq-fsp-b", "fsp")
	w.consumer, w.consumerKey = w.party("pq-home", "consumer")
	var ca, ga, cp pqID
	w.do("POST", "/v1/control-areas", w.tsoKey, map[string]any{"eic": eic("10YPQ-CA"), "name": "control area"}, 201, &ca)
	w.do("POST", "/v1/grid-areas", w.dsoKey, map[string]any{"eic": eic("10YPQ-GA"), "name": "grid area", "control_area_id": ca.ID}, 201, &ga)
	w.do("POST", "/v1/connection-points", w.dsoKey, map[string]any{"code": "CP-1", "grid_area_id": ga.ID, "node_ref": "LV1 bus 10"}, 201, &cp)
	w.cp = cp.ID
	w.unitA = w.unit(w.dsoKey, w.fspAKey, 300)
	w.unitB = w.unit(w.dsoKey, w.fspBKey, 300)
	w.product = w.newProduct(w.tsoKey, "mFRR")
	return w
}

// unit registers a metering point (by dsoKey, at the world's connection
// point unless the DSO has its own) and a battery behind it (by fspKey)
// that can go up and down by kw, confirmed by the household, and returns
// the resource id.
func (w *pqWorld) unit(dsoKey, fspKey string, kw float64) string {
	w.t.Helper()
	return w.unitAt(w.cp, dsoKey, fspKey, kw)
}

func (w *pqWorld) unitAt(cp, dsoKey, fspKey string, kw float64) string {
	w.t.Helper()
	w.n++
	var mp, r pqID
	w.do("POST", "/v1/metering-points", dsoKey, map[string]any{"code": fmt.Sprintf("MP-%d", w.n), "connection_point_id": cp, "consumer_id": w.consumer}, 201, &mp)
	w.do("POST", "/v1/resources", fspKey, map[string]any{"name": fmt.Sprintf("battery %d", w.n), "kind": "unit", "unit_type": "battery", "metering_point_id": mp.ID,
		"technical": map[string]any{"max_up": pqKW(kw), "max_down": pqKW(kw), "full_activation_time": "PT5M"}}, 201, &r)
	w.do("POST", "/v1/resources/"+r.ID+"/confirmation", w.consumerKey, map[string]any{"accept": true}, 200, nil)
	return r.ID
}

// pqProductBody is an upward active-power product with one required and
// one optional question.
func pqProductBody(name string) map[string]any {
	return map[string]any{"name": name, "service": "balancing_mfrr", "direction": "up", "power_type": "active",
		"min_bid_size": pqKW(100), "time_resolution": "PT15M", "full_activation_time": "PT12M30S", "activation_mode": "manual",
		"remuneration": []string{"capacity", "energy"}, "baseline_method": "nominated_schedule",
		"requirements": []map[string]any{
			{"key": "metering", "question": "Which meter measures the unit?", "required": true},
			{"key": "telemetry", "question": "Do you send real-time telemetry?", "required": false},
		}}
}

func (w *pqWorld) newProduct(key, name string) string {
	w.t.Helper()
	var p flexhub.Product
	w.do("POST", "/v1/products", key, pqProductBody(name), 201, &p)
	return p.ID
}

// submit opens a prequalification and returns it.
func (w *pqWorld) submit(key, resource, product string) flexhub.Prequalification {
	w.t.Helper()
	var p flexhub.Prequalification
	w.do("POST", "/v1/prequalifications", key, map[string]any{"resource_id": resource, "product_id": product,
		"answers": map[string]string{"metering": "smart meter SM-1"}, "text": "please prequalify"}, 201, &p)
	return p
}

// pqNoChange runs the failing calls in fn and checks that they left no
// trace in the audit chain, which every change writes to.
func pqNoChange(e *env, fn func()) {
	e.t.Helper()
	before := e.auditCount()
	fn()
	if after := e.auditCount(); after != before {
		e.t.Fatalf("refused requests changed the store: %d audit entries, was %d", after, before)
	}
}

// pqAudit returns the audit entries about one object, as the admin sees
// them.
func pqAudit(e *env, objectID string) []flexhub.AuditEntry {
	e.t.Helper()
	var out struct{ Items []flexhub.AuditEntry }
	e.do("GET", "/v1/audit?object_id="+objectID, e.admin, nil, 200, &out)
	return out.Items
}

func TestProducts(t *testing.T) {
	w := newPQWorld(t)
	_, otherKey := w.party("pq-tso-2", "tso")
	path := "/v1/products/" + w.product
	updated := pqProductBody("mFRR 2026")
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "an FSP defines no products", method: "POST", path: "/v1/products", token: w.fspAKey, body: pqProductBody("x"), wantStatus: 403},
			{name: "unknown service", method: "POST", path: "/v1/products", token: w.tsoKey, body: func() map[string]any {
				b := pqProductBody("x")
				b["service"] = "magic"
				return b
			}(), wantStatus: 422, wantBody: []string{"body.service"}},
			{name: "duration that does not divide a day", method: "POST", path: "/v1/products", token: w.tsoKey, body: func() map[string]any {
				b := pqProductBody("x")
				b["time_resolution"] = "PT7M"
				return b
			}(), wantStatus: 422, wantBody: []string{"body.time_resolution", "divide a day"}},
			{name: "another TSO cannot change it", method: "PUT", path: path, token: otherKey, headers: []string{"If-Match", `"1"`}, body: updated, wantStatus: 403},
			{name: "update needs If-Match", method: "PUT", path: path, token: w.tsoKey, body: updated, wantStatus: 422, wantBody: []string{"If-Match"}},
			{name: "update with a stale version", method: "PUT", path: path, token: w.tsoKey, headers: []string{"If-Match", `"7"`}, body: updated, wantStatus: 409, wantBody: []string{"version 1"}},
			{name: "bad status filter", method: "GET", path: "/v1/products?status=gone", token: w.fspAKey, wantStatus: 422, wantBody: []string{"status"}},
		})
	})
	w.run([]scenario{
		{name: "every party reads products", method: "GET", path: path, token: w.fspBKey, wantStatus: 200, wantBody: []string{`"system_operator_id":"` + w.tso + `"`, `"status":"active"`}},
		{name: "list by system operator", method: "GET", path: "/v1/products?system_operator_id=" + w.tso, token: w.fspAKey, wantStatus: 200, wantBody: []string{w.product}},
		{name: "the system operator changes its product", method: "PUT", path: path, token: w.tsoKey, headers: []string{"If-Match", `"1"`}, body: updated, wantStatus: 200, wantBody: []string{"mFRR 2026", `"version":2`}},
		{name: "retire needs the current version", method: "POST", path: path + "/retire", token: w.tsoKey, headers: []string{"If-Match", `"1"`}, wantStatus: 409},
		{name: "retire", method: "POST", path: path + "/retire", token: w.tsoKey, headers: []string{"If-Match", `"2"`}, wantStatus: 200, wantBody: []string{`"status":"retired"`}},
		{name: "retire twice", method: "POST", path: path + "/retire", token: w.tsoKey, headers: []string{"If-Match", `"3"`}, wantStatus: 409, wantBody: []string{"retired"}},
		{name: "a retired product does not change", method: "PUT", path: path, token: w.tsoKey, headers: []string{"If-Match", `"3"`}, body: updated, wantStatus: 409},
		{name: "list retired products", method: "GET", path: "/v1/products?status=retired", token: w.fspAKey, wantStatus: 200, wantBody: []string{w.product}},
		{name: "list active products", method: "GET", path: "/v1/products?status=active", token: w.fspAKey, wantStatus: 200, notWantBody: []string{w.product}},
		{name: "no new prequalification for a retired product", method: "POST", path: "/v1/prequalifications", token: w.fspAKey,
			body: map[string]any{"resource_id": w.unitA, "product_id": w.product, "answers": map[string]string{"metering": "m"}}, wantStatus: 422, wantBody: []string{"body.product_id", "retired"}},
	})
	_, h := w.do("GET", path, w.fspAKey, nil, 200, nil)
	if h.Get("ETag") != `"3"` {
		t.Fatalf("ETag %q, want \"3\"", h.Get("ETag"))
	}
	var created flexhub.Product
	_, h = w.do("POST", "/v1/products", w.dsoKey, pqProductBody("DSO congestion"), 201, &created, "Idempotency-Key", "p-1")
	if h.Get("Location") != "/v1/products/"+created.ID || created.SystemOperatorID != w.dso {
		t.Fatalf("create: Location %q, product %+v", h.Get("Location"), created)
	}
	var again flexhub.Product
	_, h = w.do("POST", "/v1/products", w.dsoKey, pqProductBody("DSO congestion"), 201, &again, "Idempotency-Key", "p-1")
	if again.ID != created.ID || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a retried create made a second product: %s vs %s", again.ID, created.ID)
	}
}

func TestPrequalificationWorkflow(t *testing.T) {
	w := newPQWorld(t)
	good := map[string]any{"resource_id": w.unitA, "product_id": w.product, "answers": map[string]string{"metering": "smart meter SM-1"}}
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for key, val := range good {
			b[key] = val
		}
		b[k] = v
		return b
	}
	missing := "0195a000-0000-7000-8000-000000000bad"
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "a TSO does not submit", method: "POST", path: "/v1/prequalifications", token: w.tsoKey, body: good, wantStatus: 403},
			{name: "required answer missing", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: with("answers", map[string]string{"telemetry": "yes"}), wantStatus: 422, wantBody: []string{"body.answers.metering", "Which meter"}},
			{name: "unknown requirement", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: with("answers", map[string]string{"metering": "m", "colour": "red"}), wantStatus: 422, wantBody: []string{"body.answers.colour"}},
			{name: "unknown product", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: with("product_id", missing), wantStatus: 422, wantBody: []string{"body.product_id", "not found"}},
			{name: "malformed resource id", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: with("resource_id", "r-1"), wantStatus: 422, wantBody: []string{"body.resource_id"}},
			{name: "unknown resource", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: with("resource_id", missing), wantStatus: 422, wantBody: []string{"body.resource_id", "not found among the resources party " + w.fspA + " operates"}},
			{name: "another FSP's resource looks like a missing one", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: with("resource_id", w.unitB), wantStatus: 422,
				wantBody: []string{"body.resource_id", "not found among the resources party " + w.fspA + " operates"}, notWantBody: []string{w.fspB}},
		})
	})

	// Submission.
	var p flexhub.Prequalification
	_, h := w.do("POST", "/v1/prequalifications", w.fspAKey, map[string]any{"resource_id": w.unitA, "product_id": w.product,
		"answers": map[string]string{"metering": "smart meter SM-1"}, "text": "please prequalify"}, 201, &p, "Idempotency-Key", "pq-1")
	if p.Status != "submitted" || p.FSPID != w.fspA || p.SystemOperatorID != w.tso || len(p.Messages) != 1 || p.Messages[0].Type != "submitted" ||
		h.Get("Location") != "/v1/prequalifications/"+p.ID || h.Get("ETag") != `"1"` {
		t.Fatalf("submitted: %+v, headers %v", p, h)
	}
	path := "/v1/prequalifications/" + p.ID
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "a second open request for the same resource and product", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: good, wantStatus: 409, wantBody: []string{p.ID}},
			{name: "the FSP does not review its request", method: "POST", path: path + "/information-requests", token: w.fspAKey, body: map[string]any{"text": "?"}, wantStatus: 403},
			{name: "the FSP does not decide", method: "POST", path: path + "/decision", token: w.fspAKey, body: map[string]any{"outcome": "approved"}, wantStatus: 403},
			{name: "another FSP cannot see it", method: "GET", path: path, token: w.fspBKey, wantStatus: 404},
			{name: "another FSP cannot act on it", method: "POST", path: path + "/withdraw", token: w.fspBKey, wantStatus: 404},
			{name: "a DSO that does not buy the product cannot see it", method: "GET", path: path, token: w.dsoKey, wantStatus: 404},
			{name: "another FSP cannot list it", method: "GET", path: "/v1/prequalifications?fsp_id=" + w.fspA, token: w.fspBKey, wantStatus: 403},
			{name: "a supplement nobody asked for", method: "POST", path: path + "/supplements", token: w.fspAKey, body: map[string]any{"text": "more"}, wantStatus: 409},
			{name: "an information request on an unknown requirement", method: "POST", path: path + "/information-requests", token: w.tsoKey, body: map[string]any{"keys": []string{"colour"}}, wantStatus: 422, wantBody: []string{"body.keys[0]"}},
			{name: "an information request without text", method: "POST", path: path + "/information-requests", token: w.tsoKey, body: map[string]any{}, wantStatus: 422, wantBody: []string{"body.text"}},
			{name: "bad status filter", method: "GET", path: "/v1/prequalifications?status=pending", token: w.fspAKey, wantStatus: 422},
		})
	})
	w.run([]scenario{
		{name: "the FSP lists its own by default", method: "GET", path: "/v1/prequalifications", token: w.fspAKey, wantStatus: 200, wantBody: []string{p.ID}},
		{name: "the other FSP's default list", method: "GET", path: "/v1/prequalifications", token: w.fspBKey, wantStatus: 200, notWantBody: []string{p.ID}},
		{name: "the reviewer lists what it reviews", method: "GET", path: "/v1/prequalifications?status=submitted", token: w.tsoKey, wantStatus: 200, wantBody: []string{p.ID}},
		{name: "self stands for the caller", method: "GET", path: "/v1/prequalifications?system_operator_id=self&resource_id=" + w.unitA, token: w.tsoKey, wantStatus: 200, wantBody: []string{p.ID}},
		{name: "the register sees all", method: "GET", path: "/v1/prequalifications?fsp_id=" + w.fspA, token: w.admin, wantStatus: 200, wantBody: []string{p.ID}},
		// An information round.
		{name: "the reviewer asks for more", method: "POST", path: path + "/information-requests", token: w.tsoKey,
			body: map[string]any{"keys": []string{"telemetry"}, "text": "we need telemetry details"}, wantStatus: 200, wantBody: []string{`"status":"information_requested"`, "we need telemetry details"}},
		{name: "no decision while information is requested", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "approved"}, wantStatus: 409},
		{name: "the FSP supplements", method: "POST", path: path + "/supplements", token: w.fspAKey,
			body: map[string]any{"answers": map[string]string{"telemetry": "yes, every 4 seconds"}, "text": "see answers"}, headers: []string{"If-Match", `"2"`},
			wantStatus: 200, wantBody: []string{`"status":"submitted"`, "every 4 seconds", "smart meter SM-1"}},
	})
	until := time.Now().UTC().Add(365 * 24 * time.Hour).Format(time.RFC3339)
	decision := map[string]any{"outcome": "approved_with_conditions", "max_power": pqKW(200), "conditions": "at node LV1 bus 10 only", "valid_until": until}
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "a rejection without reasons", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "rejected"}, wantStatus: 422, wantBody: []string{"body.reasons", "reasons"}},
			{name: "an unknown outcome", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "maybe"}, wantStatus: 422, wantBody: []string{"body.outcome"}},
			{name: "conditional approval without a condition", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "approved_with_conditions"}, wantStatus: 422, wantBody: []string{"body.conditions"}},
			{name: "a decision on a stale version", method: "POST", path: path + "/decision", token: w.tsoKey, body: decision, headers: []string{"If-Match", `"1"`}, wantStatus: 409, wantBody: []string{"version 3"}},
			{name: "a malformed If-Match", method: "POST", path: path + "/decision", token: w.tsoKey, body: decision, headers: []string{"If-Match", "three"}, wantStatus: 422, wantBody: []string{"header.If-Match"}},
		})
	})
	var decided flexhub.Prequalification
	_, h = w.do("POST", path+"/decision", w.tsoKey, decision, 200, &decided, "If-Match", `"3"`)
	if d := decided.Decision; decided.Status != "approved_with_conditions" || d == nil || d.MaxPower == nil || d.MaxPower.Value != 200 || d.MaxPower.Unit != "kW" ||
		d.ValidUntil == nil || d.DecidedBy != w.tso || h.Get("ETag") != `"4"` {
		t.Fatalf("decided: %+v, ETag %s", decided, h.Get("ETag"))
	}
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "decide twice", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "rejected", "reasons": "second thoughts"}, wantStatus: 409, wantBody: []string{"final"}},
			{name: "no withdrawal after the decision", method: "POST", path: path + "/withdraw", token: w.fspAKey, wantStatus: 409},
			{name: "no new request while the approval is valid", method: "POST", path: "/v1/prequalifications", token: w.fspAKey, body: good, wantStatus: 409, wantBody: []string{p.ID, "has not expired"}},
		})
	})
	w.run([]scenario{
		{name: "the FSP reads the result", method: "GET", path: path, token: w.fspAKey, wantStatus: 200, wantBody: []string{`"outcome":"approved_with_conditions"`, `"value":200`}},
		{name: "the register reads the result", method: "GET", path: path, token: w.admin, wantStatus: 200},
	})

	// The trail: every step names the FSP and the buyer; the decision also
	// the DSO of the resource.
	entries := pqAudit(w.env, p.ID)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		if !slices.Contains(e.Parties, w.fspA) || !slices.Contains(e.Parties, w.tso) {
			t.Errorf("%s names %v; want the FSP and the TSO", e.Action, e.Parties)
		}
		if e.Action == "prequalification.decided" && !slices.Contains(e.Parties, w.dso) {
			t.Errorf("the decision must reach the resource's DSO: %v", e.Parties)
		}
	}
	want := []string{"prequalification.submitted", "prequalification.information_requested", "prequalification.supplemented", "prequalification.decided"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	raw, _ := w.do("GET", "/v1/audit?object_id="+p.ID, w.dsoKey, nil, 200, nil)
	if !strings.Contains(raw, "prequalification.decided") || strings.Contains(raw, "prequalification.submitted") {
		t.Fatalf("the DSO is told the decision, not the exchange: %s", raw)
	}
	// A retry of the first submission returns it, not a conflict.
	var replay flexhub.Prequalification
	_, h = w.do("POST", "/v1/prequalifications", w.fspAKey, map[string]any{"resource_id": w.unitA, "product_id": w.product,
		"answers": map[string]string{"metering": "smart meter SM-1"}, "text": "please prequalify"}, 201, &replay, "Idempotency-Key", "pq-1")
	if replay.ID != p.ID || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay gave %s, want %s", replay.ID, p.ID)
	}
}

func TestPrequalificationRejectionAndWithdrawal(t *testing.T) {
	w := newPQWorld(t)
	p := w.submit(w.fspAKey, w.unitA, w.product)
	path := "/v1/prequalifications/" + p.ID
	w.run([]scenario{
		{name: "rejected with reasons", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "rejected", "reasons": "full activation too slow"}, wantStatus: 200, wantBody: []string{`"status":"rejected"`, "too slow"}},
		{name: "after a rejection the FSP may try again", method: "POST", path: "/v1/prequalifications", token: w.fspAKey,
			body: map[string]any{"resource_id": w.unitA, "product_id": w.product, "answers": map[string]string{"metering": "new meter"}}, wantStatus: 201},
	})
	var open struct{ Items []flexhub.Prequalification }
	w.do("GET", "/v1/prequalifications?status=submitted", w.fspAKey, nil, 200, &open)
	if len(open.Items) != 1 {
		t.Fatalf("want one open request, got %+v", open.Items)
	}
	second := "/v1/prequalifications/" + open.Items[0].ID
	w.run([]scenario{
		{name: "the reviewer does not withdraw", method: "POST", path: second + "/withdraw", token: w.tsoKey, wantStatus: 403},
		{name: "the FSP withdraws", method: "POST", path: second + "/withdraw", token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"withdrawn"`}},
		{name: "withdraw twice", method: "POST", path: second + "/withdraw", token: w.fspAKey, wantStatus: 409},
		{name: "no decision on a withdrawn request", method: "POST", path: second + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "approved"}, wantStatus: 409},
	})

	// A resource that cannot deliver the product is turned away at once.
	small := w.unit(w.dsoKey, w.fspAKey, 50)
	w.run([]scenario{
		{name: "below the minimum bid", method: "POST", path: "/v1/prequalifications", token: w.fspAKey,
			body: map[string]any{"resource_id": small, "product_id": w.product, "answers": map[string]string{"metering": "m"}}, wantStatus: 422, wantBody: []string{"body.resource_id", "minimum bid"}},
	})
	// A deregistered resource cannot be prequalified.
	_, h := w.do("GET", "/v1/resources/"+small, w.fspAKey, nil, 200, nil)
	w.do("DELETE", "/v1/resources/"+small, w.fspAKey, nil, 200, nil, "If-Match", h.Get("ETag"))
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "deregistered resource", method: "POST", path: "/v1/prequalifications", token: w.fspAKey,
				body: map[string]any{"resource_id": small, "product_id": w.product, "answers": map[string]string{"metering": "m"}}, wantStatus: 422, wantBody: []string{"body.resource_id", "deregistered"}},
		})
	})
}

func TestPrequalificationSelfApproval(t *testing.T) {
	w := newPQWorld(t)
	// A TSO that also acts as an FSP, with a unit in the DSO's grid and a
	// product of its own.
	both, bothKey := w.party("pq-tso-fsp", "tso", "fsp")
	unit := w.unit(w.dsoKey, bothKey, 300)
	product := w.newProduct(bothKey, "own mFRR")
	p := w.submit(bothKey, unit, product)
	if p.FSPID != both || p.SystemOperatorID != both {
		t.Fatalf("prequalification %+v", p)
	}
	path := "/v1/prequalifications/" + p.ID
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "approving its own request", method: "POST", path: path + "/decision", token: bothKey, body: map[string]any{"outcome": "approved"}, wantStatus: 403, wantBody: []string{"cannot approve its own request"}},
			{name: "rejecting its own request", method: "POST", path: path + "/decision", token: bothKey, body: map[string]any{"outcome": "rejected", "reasons": "x"}, wantStatus: 403, wantBody: []string{"cannot approve its own request"}},
			{name: "another TSO is no reviewer", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "approved"}, wantStatus: 404},
		})
	})
	// The flexibility register operator reviews it instead: a neutral
	// party, so the request does not wait forever.
	w.do("POST", path+"/information-requests", w.admin, map[string]any{"text": "Who meters the unit?"}, 200, nil)
	w.do("POST", path+"/supplements", bothKey, map[string]any{"answers": map[string]string{"metering": "the DSO's smart meter"}}, 200, nil)
	var decided flexhub.Prequalification
	w.do("POST", path+"/decision", w.admin, map[string]any{"outcome": "approved"}, 200, &decided)
	if decided.Status != flexhub.PrequalApproved || decided.Decision.DecidedBy == both {
		t.Fatalf("the register operator's decision: %+v", decided)
	}
	// Its unit can still be prequalified for another operator's product.
	other := w.submit(bothKey, unit, w.product)
	w.do("POST", "/v1/prequalifications/"+other.ID+"/decision", w.tsoKey, map[string]any{"outcome": "approved"}, 200, nil)
}

func TestGridPrequalification(t *testing.T) {
	w := newPQWorld(t)
	var group flexhub.Resource
	w.do("POST", "/v1/resources", w.fspAKey, map[string]any{"name": "pool", "kind": "group", "members": []string{w.unitA},
		"technical": map[string]any{"max_up": pqKW(300)}}, 201, &group)
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "a group is grid-prequalified per unit", method: "POST", path: "/v1/grid-prequalifications", token: w.fspAKey, body: map[string]any{"resource_id": group.ID}, wantStatus: 422, wantBody: []string{"body.resource_id", "per unit"}},
			{name: "another FSP's unit", method: "POST", path: "/v1/grid-prequalifications", token: w.fspAKey, body: map[string]any{"resource_id": w.unitB}, wantStatus: 422, wantBody: []string{"body.resource_id", "not found"}},
			{name: "the DSO does not request", method: "POST", path: "/v1/grid-prequalifications", token: w.dsoKey, body: map[string]any{"resource_id": w.unitA}, wantStatus: 403},
		})
	})
	var g flexhub.GridPrequalification
	_, h := w.do("POST", "/v1/grid-prequalifications", w.fspAKey, map[string]any{"resource_id": w.unitA}, 201, &g)
	if g.Status != "requested" || g.DSOID != w.dso || g.FSPID != w.fspA || g.ConnectionPointID != w.cp || h.Get("Location") != "/v1/grid-prequalifications/"+g.ID {
		t.Fatalf("grid prequalification %+v", g)
	}
	path := "/v1/grid-prequalifications/" + g.ID
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "one open request per unit", method: "POST", path: "/v1/grid-prequalifications", token: w.fspAKey, body: map[string]any{"resource_id": w.unitA}, wantStatus: 409, wantBody: []string{g.ID}},
			{name: "another FSP cannot see it", method: "GET", path: path, token: w.fspBKey, wantStatus: 404},
			{name: "a TSO with no stake cannot see it", method: "GET", path: path, token: w.tsoKey, wantStatus: 404},
			{name: "a TSO with no stake cannot list it", method: "GET", path: "/v1/grid-prequalifications?resource_id=" + w.unitA, token: w.tsoKey, wantStatus: 403},
			{name: "the FSP does not decide", method: "POST", path: path + "/decision", token: w.fspAKey, body: map[string]any{"outcome": "approved"}, wantStatus: 403},
			{name: "limited needs a limit", method: "POST", path: path + "/decision", token: w.dsoKey, body: map[string]any{"outcome": "limited"}, wantStatus: 422, wantBody: []string{"body.limit_up"}},
			{name: "a rejection needs reasons", method: "POST", path: path + "/decision", token: w.dsoKey, body: map[string]any{"outcome": "rejected"}, wantStatus: 422, wantBody: []string{"body.reasons"}},
		})
	})
	// Once the unit asks the TSO for product prequalification, the TSO may
	// see what the DSO allows at its node.
	w.submit(w.fspAKey, w.unitA, w.product)
	w.run([]scenario{
		{name: "the TSO buying a product sees it", method: "GET", path: path, token: w.tsoKey, wantStatus: 200, wantBody: []string{g.ID}},
		{name: "the TSO lists it by resource", method: "GET", path: "/v1/grid-prequalifications?resource_id=" + w.unitA, token: w.tsoKey, wantStatus: 200, wantBody: []string{g.ID}},
		{name: "the TSO still does not decide", method: "POST", path: path + "/decision", token: w.tsoKey, body: map[string]any{"outcome": "approved"}, wantStatus: 403},
		{name: "the DSO lists what it decides", method: "GET", path: "/v1/grid-prequalifications?status=requested", token: w.dsoKey, wantStatus: 200, wantBody: []string{g.ID}},
		{name: "the FSP lists its own", method: "GET", path: "/v1/grid-prequalifications", token: w.fspAKey, wantStatus: 200, wantBody: []string{g.ID}},
		{name: "another FSP lists nothing of it", method: "GET", path: "/v1/grid-prequalifications", token: w.fspBKey, wantStatus: 200, notWantBody: []string{g.ID}},
		{name: "the DSO limits the unit", method: "POST", path: path + "/decision", token: w.dsoKey, headers: []string{"If-Match", `"1"`},
			body:       map[string]any{"outcome": "limited", "limit_up": pqKW(50), "limit_down": pqKW(80), "reasons": "feeder LV1 near its thermal limit"},
			wantStatus: 200, wantBody: []string{`"status":"limited"`, `"decided_by":"` + w.dso + `"`, `"limit_up":{"value":50,"unit":"kW"}`}},
		{name: "decide twice", method: "POST", path: path + "/decision", token: w.dsoKey, body: map[string]any{"outcome": "approved"}, wantStatus: 409},
		{name: "after the decision the FSP may ask again", method: "POST", path: "/v1/grid-prequalifications", token: w.fspAKey, body: map[string]any{"resource_id": w.unitA}, wantStatus: 201},
	})
	for _, e := range pqAudit(w.env, g.ID) {
		if !slices.Contains(e.Parties, w.fspA) || !slices.Contains(e.Parties, w.dso) {
			t.Errorf("%s names %v; want the FSP and the DSO", e.Action, e.Parties)
		}
	}
	if got := pqAudit(w.env, g.ID); len(got) != 2 || got[1].Action != "grid_prequalification.decided" {
		b, _ := json.Marshal(got)
		t.Fatalf("grid prequalification trail: %s", b)
	}

	// A DSO that is also the unit's FSP cannot decide for itself.
	dsoFSP, dsoFSPKey := w.party("pq-dso-fsp", "dso", "fsp")
	var ca, ga, cp pqID
	w.do("POST", "/v1/control-areas", w.tsoKey, map[string]any{"eic": eic("10YPQ-CA2"), "name": "control area 2"}, 201, &ca)
	w.do("POST", "/v1/grid-areas", dsoFSPKey, map[string]any{"eic": eic("10YPQ-GA2"), "name": "own grid", "control_area_id": ca.ID}, 201, &ga)
	w.do("POST", "/v1/connection-points", dsoFSPKey, map[string]any{"code": "OWN-1", "grid_area_id": ga.ID, "node_ref": "bus 1"}, 201, &cp)
	own := w.unitAt(cp.ID, dsoFSPKey, dsoFSPKey, 100)
	var selfG flexhub.GridPrequalification
	w.do("POST", "/v1/grid-prequalifications", dsoFSPKey, map[string]any{"resource_id": own}, 201, &selfG)
	if selfG.DSOID != dsoFSP || selfG.FSPID != dsoFSP {
		t.Fatalf("self grid prequalification %+v", selfG)
	}
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "a DSO cannot approve its own request", method: "POST", path: "/v1/grid-prequalifications/" + selfG.ID + "/decision", token: dsoFSPKey,
				body: map[string]any{"outcome": "approved"}, wantStatus: 403, wantBody: []string{"cannot approve its own request"}},
			{name: "another DSO cannot decide it either", method: "POST", path: "/v1/grid-prequalifications/" + selfG.ID + "/decision", token: w.dsoKey,
				body: map[string]any{"outcome": "approved"}, wantStatus: 404},
		})
	})
	w.do("POST", "/v1/grid-prequalifications/"+selfG.ID+"/decision", w.admin, map[string]any{"outcome": "limited", "limit_up": pqKW(50), "reasons": "feeder"}, 200, nil)
}

func TestPrequalificationConcurrentSubmissions(t *testing.T) {
	w := newPQWorld(t)
	body := map[string]any{"resource_id": w.unitA, "product_id": w.product, "answers": map[string]string{"metering": "m"}}
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, _ := w.send("POST", "/v1/prequalifications", w.fspAKey, body)
			statuses <- status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[201] != 1 || count[409] != n-1 {
		t.Fatalf("concurrent submissions for one resource and product: %v, want one 201 and %d 409", count, n-1)
	}
	var list struct{ Items []flexhub.Prequalification }
	w.do("GET", "/v1/prequalifications?resource_id="+w.unitA, w.fspAKey, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("%d prequalifications stored, want 1", len(list.Items))
	}
}
