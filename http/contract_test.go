package http_test

import (
	"slices"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

func TestContractLifecycle(t *testing.T) {
	w := newPQWorld(t)
	start := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	end := time.Now().UTC().Add(365 * 24 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	proposal := map[string]any{"product_id": w.product, "fsp_id": w.fspA, "resource_ids": []string{w.unitA},
		"validity": map[string]any{"start": start, "end": end}, "terms": "availability 10 EUR/MW/h"}
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for key, val := range proposal {
			b[key] = val
		}
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	missing := "0195a000-0000-7000-8000-000000000bad"
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "the system operator must name the FSP", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("fsp_id", nil), wantStatus: 422, wantBody: []string{"body.fsp_id"}},
			{name: "the named party must be an FSP", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("fsp_id", w.dso), wantStatus: 422, wantBody: []string{"body.fsp_id", "fsp role"}},
			{name: "the named FSP must exist", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("fsp_id", missing), wantStatus: 422, wantBody: []string{"body.fsp_id", "not found"}},
			{name: "resources must be the FSP's", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("resource_ids", []string{w.unitA, w.unitB}), wantStatus: 422, wantBody: []string{"body.resource_ids[1]", "not found"}},
			{name: "a resource listed twice", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("resource_ids", []string{w.unitA, w.unitA}), wantStatus: 422, wantBody: []string{"body.resource_ids[1]"}},
			{name: "unknown product", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("product_id", missing), wantStatus: 422, wantBody: []string{"body.product_id"}},
			{name: "validity ends before it starts", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("validity", map[string]any{"start": end, "end": start}), wantStatus: 422, wantBody: []string{"body.validity.end"}},
			{name: "validity is required", method: "POST", path: "/v1/contracts", token: w.tsoKey, body: with("validity", nil), wantStatus: 422, wantBody: []string{"validity"}},
			{name: "an FSP proposes only for itself", method: "POST", path: "/v1/contracts", token: w.fspBKey, body: with("resource_ids", nil), wantStatus: 403, wantBody: []string{"fsp_id"}},
			{name: "a DSO that does not buy the product", method: "POST", path: "/v1/contracts", token: w.dsoKey, body: proposal, wantStatus: 403},
		})
	})

	var c flexhub.Contract
	_, h := w.do("POST", "/v1/contracts", w.tsoKey, proposal, 201, &c, "Idempotency-Key", "c-1")
	if c.Status != "proposed" || c.ProposedBy != w.tso || c.FSPID != w.fspA || c.SystemOperatorID != w.tso ||
		h.Get("Location") != "/v1/contracts/"+c.ID || h.Get("ETag") != `"1"` {
		t.Fatalf("proposed: %+v, headers %v", c, h)
	}
	path := "/v1/contracts/" + c.ID
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "the proposer cannot accept its own proposal", method: "POST", path: path + "/accept", token: w.tsoKey, wantStatus: 403, wantBody: []string{"proposed"}},
			{name: "the proposer cannot reject its own proposal", method: "POST", path: path + "/reject", token: w.tsoKey, wantStatus: 403},
			{name: "another FSP cannot see it", method: "GET", path: path, token: w.fspBKey, wantStatus: 404},
			{name: "another FSP cannot accept it", method: "POST", path: path + "/accept", token: w.fspBKey, wantStatus: 404},
			{name: "a DSO outside the contract cannot see it", method: "GET", path: path, token: w.dsoKey, wantStatus: 404},
			{name: "another FSP cannot list it", method: "GET", path: "/v1/contracts?fsp_id=" + w.fspA, token: w.fspBKey, wantStatus: 403},
			{name: "a proposal cannot be terminated", method: "POST", path: path + "/termination", token: w.fspAKey, wantStatus: 409},
			{name: "accept on a stale version", method: "POST", path: path + "/accept", token: w.fspAKey, headers: []string{"If-Match", `"5"`}, wantStatus: 409},
		})
	})
	w.run([]scenario{
		{name: "the FSP sees it", method: "GET", path: path, token: w.fspAKey, wantStatus: 200, wantBody: []string{"10 EUR/MW/h"}},
		{name: "the FSP lists it", method: "GET", path: "/v1/contracts", token: w.fspAKey, wantStatus: 200, wantBody: []string{c.ID}},
		{name: "the system operator lists it", method: "GET", path: "/v1/contracts?status=proposed", token: w.tsoKey, wantStatus: 200, wantBody: []string{c.ID}},
		{name: "the other FSP's list", method: "GET", path: "/v1/contracts", token: w.fspBKey, wantStatus: 200, notWantBody: []string{c.ID}},
		{name: "the register lists it", method: "GET", path: "/v1/contracts?product_id=" + w.product, token: w.admin, wantStatus: 200, wantBody: []string{c.ID}},
		{name: "the FSP accepts", method: "POST", path: path + "/accept", token: w.fspAKey, headers: []string{"If-Match", `"1"`}, wantStatus: 200, wantBody: []string{`"status":"active"`}},
		{name: "accept twice", method: "POST", path: path + "/accept", token: w.fspAKey, wantStatus: 409},
		{name: "the FSP asks to terminate", method: "POST", path: path + "/termination", token: w.fspAKey, body: map[string]any{"reason": "unit sold"},
			wantStatus: 200, wantBody: []string{`"status":"termination_requested"`, `"requested_by":"` + w.fspA + `"`, "unit sold"}},
		{name: "the requester cannot confirm", method: "POST", path: path + "/termination/confirm", token: w.fspAKey, wantStatus: 403},
		{name: "a second request while one is pending", method: "POST", path: path + "/termination", token: w.tsoKey, wantStatus: 409},
		{name: "the system operator rejects the termination", method: "POST", path: path + "/termination/reject", token: w.tsoKey, wantStatus: 200, wantBody: []string{`"status":"active"`, `"answer":"rejected"`}},
		{name: "nothing to confirm any more", method: "POST", path: path + "/termination/confirm", token: w.tsoKey, wantStatus: 409},
		{name: "the FSP asks again, without a body", method: "POST", path: path + "/termination", token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"termination_requested"`}},
		{name: "the system operator confirms", method: "POST", path: path + "/termination/confirm", token: w.tsoKey, wantStatus: 200, wantBody: []string{`"status":"terminated"`, `"answer":"confirmed"`}},
	})
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "terminate a terminated contract", method: "POST", path: path + "/termination", token: w.fspAKey, wantStatus: 409, wantBody: []string{"already terminated"}},
			{name: "the other side cannot either", method: "POST", path: path + "/termination", token: w.tsoKey, body: map[string]any{"reason": "again"}, wantStatus: 409},
			{name: "termination in the past", method: "POST", path: path + "/termination", token: w.tsoKey, body: map[string]any{"effective_at": "2020-01-01T00:00:00Z"}, wantStatus: 409},
		})
	})

	var actions []string
	for _, e := range pqAudit(w.env, c.ID) {
		actions = append(actions, e.Action)
		if !slices.Contains(e.Parties, w.fspA) || !slices.Contains(e.Parties, w.tso) {
			t.Errorf("%s names %v; want the FSP and the system operator", e.Action, e.Parties)
		}
	}
	want := []string{"contract.proposed", "contract.accepted", "contract.termination_requested", "contract.termination_rejected",
		"contract.termination_requested", "contract.terminated"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	var replay flexhub.Contract
	_, h = w.do("POST", "/v1/contracts", w.tsoKey, proposal, 201, &replay, "Idempotency-Key", "c-1")
	if replay.ID != c.ID || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay gave %s, want %s", replay.ID, c.ID)
	}
}

func TestContractProposedByFSP(t *testing.T) {
	w := newPQWorld(t)
	start := time.Now().UTC().Format(time.RFC3339)
	var c flexhub.Contract
	w.do("POST", "/v1/contracts", w.fspAKey, map[string]any{"product_id": w.product, "validity": map[string]any{"start": start}}, 201, &c)
	if c.FSPID != w.fspA || c.SystemOperatorID != w.tso || c.ProposedBy != w.fspA {
		t.Fatalf("proposed: %+v", c)
	}
	path := "/v1/contracts/" + c.ID
	w.run([]scenario{
		{name: "the FSP cannot accept its own proposal", method: "POST", path: path + "/accept", token: w.fspAKey, wantStatus: 403},
		{name: "the system operator rejects", method: "POST", path: path + "/reject", token: w.tsoKey, wantStatus: 200, wantBody: []string{`"status":"rejected"`}},
		{name: "a rejected proposal cannot be accepted", method: "POST", path: path + "/accept", token: w.tsoKey, wantStatus: 409},
		{name: "the register reads it but does not answer", method: "POST", path: path + "/termination", token: w.admin, wantStatus: 403},
	})

	// Retiring the product stops new contracts and the acceptance of
	// pending proposals.
	var pending flexhub.Contract
	w.do("POST", "/v1/contracts", w.fspAKey, map[string]any{"product_id": w.product, "validity": map[string]any{"start": start}}, 201, &pending)
	w.do("POST", "/v1/products/"+w.product+"/retire", w.tsoKey, nil, 200, nil, "If-Match", `"1"`)
	pqNoChange(w.env, func() {
		w.run([]scenario{
			{name: "no contract for a retired product", method: "POST", path: "/v1/contracts", token: w.fspAKey,
				body: map[string]any{"product_id": w.product, "validity": map[string]any{"start": start}}, wantStatus: 422, wantBody: []string{"body.product_id", "retired"}},
			{name: "no acceptance after retirement", method: "POST", path: "/v1/contracts/" + pending.ID + "/accept", token: w.tsoKey, wantStatus: 409, wantBody: []string{"retired"}},
		})
	})
	w.do("POST", "/v1/contracts/"+pending.ID+"/reject", w.tsoKey, nil, 200, nil)
}
