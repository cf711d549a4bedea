package http_test

import (
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func TestParties(t *testing.T) {
	e := newEnv(t)
	dso, dsoKey := e.party("dso-one", "dso")
	fsp, fspKey := e.party("aggregator", "fsp")
	var consumer flexhub.Party
	e.do("POST", "/v1/parties", dsoKey, map[string]any{"eic": eic("10XCONSUMER1"), "name": "Household 1", "roles": []string{"consumer"}}, 201, &consumer)
	_ = dso
	e.run([]scenario{
		{name: "no key", method: "GET", path: "/v1/me", wantStatus: 401, wantBody: []string{"Bearer"}},
		{name: "bad key", method: "GET", path: "/v1/me", token: "fh_0123456789abcdef0123456789abcdef_" + "x123456789012345678901234567890123", wantStatus: 401, wantBody: []string{"unknown API key"}},
		{name: "me", method: "GET", path: "/v1/me", token: fspKey, wantStatus: 200, wantBody: []string{fsp, `"fsp"`}},
		{name: "unknown field", method: "POST", path: "/v1/parties", token: e.admin, body: map[string]any{"eic": eic("10XNEW"), "name": "n", "roles": []string{"fsp"}, "colour": "red"}, wantStatus: 422, wantBody: []string{"body.colour"}},
		{name: "NUL character in a name", method: "POST", path: "/v1/parties", token: e.admin, body: map[string]any{"eic": eic("10XNUL"), "name": "nul\x00name", "roles": []string{"fsp"}}, wantStatus: 422, wantBody: []string{"NUL"}},
		{name: "malformed json", method: "POST", path: "/v1/parties", token: e.admin, body: `{"eic":`, wantStatus: 400},
		{name: "bad EIC check character", method: "POST", path: "/v1/parties", token: e.admin, body: map[string]any{"eic": "10XNEW----------", "name": "n", "roles": []string{"fsp"}}, wantStatus: 422, wantBody: []string{"body.eic", "check character"}},
		{name: "unknown role", method: "POST", path: "/v1/parties", token: e.admin, body: map[string]any{"eic": eic("10XNEW"), "name": "n", "roles": []string{"king"}}, wantStatus: 422, wantBody: []string{"body.roles[0]"}},
		{name: "duplicate EIC", method: "POST", path: "/v1/parties", token: e.admin, body: map[string]any{"eic": eic("10XAGGREGATOR"), "name": "n", "roles": []string{"fsp"}}, wantStatus: 409, wantBody: []string{fsp}},
		{name: "fsp cannot register parties", method: "POST", path: "/v1/parties", token: fspKey, body: map[string]any{"eic": eic("10XNEW"), "name": "n", "roles": []string{"fsp"}}, wantStatus: 403},
		{name: "dso registers only consumers", method: "POST", path: "/v1/parties", token: dsoKey, body: map[string]any{"eic": eic("10XNEW"), "name": "n", "roles": []string{"fsp"}}, wantStatus: 403},
		{name: "fsp cannot see a consumer it does not serve", method: "GET", path: "/v1/parties/" + consumer.ID, token: fspKey, wantStatus: 404},
		{name: "consumers are not listed to others", method: "GET", path: "/v1/parties", token: fspKey, wantStatus: 200, wantBody: []string{fsp}, notWantBody: []string{consumer.ID}},
		{name: "register operator lists consumers", method: "GET", path: "/v1/parties?role=consumer", token: e.admin, wantStatus: 200, wantBody: []string{consumer.ID}, notWantBody: []string{fsp}},
		{name: "fsp cannot change its roles", method: "PUT", path: "/v1/parties/" + fsp, token: fspKey, headers: []string{"If-Match", `"1"`}, body: map[string]any{"eic": eic("10XAGGREGATOR"), "name": "aggregator", "roles": []string{"fsp", "tso"}}, wantStatus: 403},
		{name: "update without If-Match", method: "PUT", path: "/v1/parties/" + fsp, token: fspKey, body: map[string]any{"eic": eic("10XAGGREGATOR"), "name": "Aggregator BV", "roles": []string{"fsp"}}, wantStatus: 422, wantBody: []string{"If-Match"}},
		{name: "fsp renames itself", method: "PUT", path: "/v1/parties/" + fsp, token: fspKey, headers: []string{"If-Match", `"1"`}, body: map[string]any{"eic": eic("10XAGGREGATOR"), "name": "Aggregator BV", "roles": []string{"fsp"}}, wantStatus: 200, wantBody: []string{"Aggregator BV", `"version":2`}},
		{name: "stale If-Match loses", method: "PUT", path: "/v1/parties/" + fsp, token: fspKey, headers: []string{"If-Match", `"1"`}, body: map[string]any{"eic": eic("10XAGGREGATOR"), "name": "Lost update", "roles": []string{"fsp"}}, wantStatus: 409, wantBody: []string{"version 2"}},
	})
	var p flexhub.Party
	e.do("GET", "/v1/parties/"+fsp, fspKey, nil, 200, &p)
	if p.Name != "Aggregator BV" {
		t.Errorf("lost update: name %q", p.Name)
	}
}

func TestCredentials(t *testing.T) {
	e := newEnv(t)
	fsp, key1 := e.party("aggregator", "fsp")
	other, otherKey := e.party("other", "fsp")
	var issued app.IssuedCredential
	e.do("POST", "/v1/parties/"+fsp+"/credentials", key1, map[string]any{"label": "second"}, 201, &issued)
	e.do("GET", "/v1/me", issued.Token, nil, 200, nil)
	raw, _ := e.do("GET", "/v1/parties/"+fsp+"/credentials", key1, nil, 200, nil)
	if want := issued.ID; !contains(raw, want) || contains(raw, issued.Token) || contains(raw, "secret") {
		t.Fatalf("credential list must show ids, never secrets: %s", raw)
	}
	e.do("GET", "/v1/parties/"+other+"/credentials", key1, nil, 403, nil)
	e.do("DELETE", "/v1/credentials/"+issued.ID, otherKey, nil, 404, nil)

	var rotated app.IssuedCredential
	e.do("POST", "/v1/credentials/"+issued.ID+"/rotate", key1, nil, 201, &rotated)
	e.do("GET", "/v1/me", issued.Token, nil, 401, nil)
	e.do("GET", "/v1/me", rotated.Token, nil, 200, nil)
	e.do("DELETE", "/v1/credentials/"+rotated.ID, key1, nil, 200, nil)
	e.do("GET", "/v1/me", rotated.Token, nil, 401, nil)
	e.do("DELETE", "/v1/credentials/"+rotated.ID, key1, nil, 409, nil)
}

func TestAuditVisibility(t *testing.T) {
	e := newEnv(t)
	a, aKey := e.party("alpha", "fsp")
	b, bKey := e.party("beta", "fsp")
	raw, _ := e.do("GET", "/v1/audit", aKey, nil, 200, nil)
	if !contains(raw, a) || contains(raw, `"object_id":"`+b+`"`) {
		t.Fatalf("alpha's audit view must show its own entries and not beta's: %s", raw)
	}
	raw, _ = e.do("GET", "/v1/audit?object_id="+b, e.admin, nil, 200, nil)
	if !contains(raw, "party.registered") {
		t.Fatalf("admin sees all: %s", raw)
	}
	e.do("GET", "/v1/audit/verify", bKey, nil, 200, nil)
	if n := e.auditCount(); n < 5 {
		t.Fatalf("expected audit entries for 2 parties + keys + bootstrap, got %d", n)
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (func() bool { return indexOf(s, sub) >= 0 })()
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
