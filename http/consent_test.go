package http_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// consentWorld: a household owning two metering points with meter data,
// its DSO, supplier and BRP, an aggregator and a second household.
type consentWorld struct {
	*env
	now                                      time.Time
	dso, supplier, brp, agg, house, other    string // keys
	dsoID, supplierID, aggID, houseID, brpID string
	mp1, mp2, otherMP                        string
	day                                      time.Time
}

func newConsentWorld(t *testing.T, e *env) *consentWorld {
	w := &consentWorld{env: e, now: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), day: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	w.svc.SetClock(func() time.Time { return w.now })
	_, tso := e.party("cons-tso", "tso")
	w.dsoID, w.dso = e.party("cons-dso", "dso")
	w.supplierID, w.supplier = e.party("cons-sup", "supplier")
	w.brpID, w.brp = e.party("cons-brp", "brp")
	w.aggID, w.agg = e.party("cons-agg", "fsp")
	w.houseID, w.house = e.party("cons-house", "consumer")
	otherID, other := e.party("cons-other", "consumer")
	w.other = other
	var ca, ga, cp, mp1, mp2, mp3 struct{ ID string }
	e.do("POST", "/v1/control-areas", tso, map[string]any{"eic": eic("10YCONSENT-CA"), "name": "ca"}, 201, &ca)
	e.do("POST", "/v1/grid-areas", w.dso, map[string]any{"eic": eic("10YCONSENT-GA"), "name": "ga", "control_area_id": ca.ID}, 201, &ga)
	e.do("POST", "/v1/connection-points", w.dso, map[string]any{"code": "CP-C", "grid_area_id": ga.ID, "node_ref": "bus 1"}, 201, &cp)
	mp := func(code, owner string, out any) {
		e.do("POST", "/v1/metering-points", w.dso, map[string]any{"code": code, "connection_point_id": cp.ID, "consumer_id": owner,
			"supplier_id": w.supplierID, "brp_id": w.brpID}, 201, out)
	}
	mp("MP-C1", w.houseID, &mp1)
	mp("MP-C2", w.houseID, &mp2)
	mp("MP-C3", otherID, &mp3)
	w.mp1, w.mp2, w.otherMP = mp1.ID, mp2.ID, mp3.ID
	// The DSO sends a day of quarter-hour data for each.
	var readings []map[string]any
	for _, id := range []string{w.mp1, w.mp2, w.otherMP} {
		for i := range 96 {
			readings = append(readings, map[string]any{"metering_point_id": id, "quantity": "active_energy", "flow": "import", "resolution": "PT15M",
				"start": w.day.Add(time.Duration(i) * 15 * time.Minute).Format(time.RFC3339), "value": "0.25", "unit": "kWh"})
		}
	}
	e.do("POST", "/v1/meter-readings", w.dso, map[string]any{"readings": readings}, 200, nil)
	return w
}

func (w *consentWorld) read(mp string) string {
	return "/v1/meter-readings?metering_point_id=" + mp + "&quantity=active_energy&flow=import&resolution=PT15M&from=" +
		url.QueryEscape(w.day.Format(time.RFC3339)) + "&to=" + url.QueryEscape(w.day.Add(24*time.Hour).Format(time.RFC3339))
}

func (w *consentWorld) consent(key string, body map[string]any, want int) flexhub.Consent {
	w.t.Helper()
	var c flexhub.Consent
	w.do("POST", "/v1/consents", key, body, want, &c)
	return c
}

func (w *consentWorld) spec(mps []string, scopes ...string) map[string]any {
	return map[string]any{"data_user_id": w.aggID, "metering_point_ids": mps, "scopes": scopes, "purpose": "flexibility offers for the heat pump",
		"valid_from": w.now.Add(-time.Hour).Format(time.RFC3339), "valid_to": w.now.Add(30 * 24 * time.Hour).Format(time.RFC3339)}
}

// TestConsent: a household grants an aggregator access to one metering
// point's history; the aggregator reads it and nothing else; a request
// for the second is approved; revocation refuses the next read at once;
// expiry, scopes, periods, ownership and bad input; roles with a legal
// basis read without consent; the owner's access log shows every read
// by someone else with its basis, refused ones with the reason; consent
// changes are audited and notified. On SQLite and PostgreSQL.
func TestConsent(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		testConsent(t, newConsentWorld(t, e))
	})
}

func testConsent(t *testing.T, w *consentWorld) {
	// No consent yet: refused, and said why.
	w.do("GET", w.read(w.mp1), w.agg, nil, 403, nil)
	// Roles with a legal basis read without consent.
	for _, key := range []string{w.dso, w.supplier, w.brp, w.house} {
		w.do("GET", w.read(w.mp1), key, nil, 200, nil)
	}

	// Bad grants: nothing stored.
	w.run([]scenario{
		{name: "grant for someone else's metering point", method: "POST", path: "/v1/consents", token: w.house, body: w.spec([]string{w.mp1, w.otherMP}, "meter_history"),
			wantStatus: 403, wantBody: []string{"consent.not_owner", "metering_point_ids[1]"}},
		{name: "a grant by a non-consumer", method: "POST", path: "/v1/consents", token: w.dso, body: w.spec([]string{w.mp1}, "meter_history"), wantStatus: 403, wantBody: []string{"consent.not_owner"}},
		{name: "unknown scope", method: "POST", path: "/v1/consents", token: w.house, body: w.spec([]string{w.mp1}, "everything"), wantStatus: 422, wantBody: []string{"scopes[0]"}},
		{name: "no purpose", method: "POST", path: "/v1/consents", token: w.house, body: func() map[string]any {
			b := w.spec([]string{w.mp1}, "meter_history")
			b["purpose"] = " "
			return b
		}(), wantStatus: 422, wantBody: []string{"purpose"}},
		{name: "period backwards", method: "POST", path: "/v1/consents", token: w.house, body: func() map[string]any {
			b := w.spec([]string{w.mp1}, "meter_history")
			b["valid_to"] = w.now.Add(-2 * time.Hour).Format(time.RFC3339)
			return b
		}(), wantStatus: 422, wantBody: []string{"valid_to"}},
		{name: "a request naming another data user", method: "POST", path: "/v1/consents", token: w.dso, body: func() map[string]any {
			b := w.spec([]string{w.mp1}, "meter_history")
			b["owner_id"] = w.houseID
			return b
		}(), wantStatus: 403, wantBody: []string{"consent.data_user"}},
	})
	var none struct{ Items []flexhub.Consent }
	w.do("GET", "/v1/consents", w.house, nil, 200, &none)
	if len(none.Items) != 0 {
		t.Fatalf("refused grants stored consents: %+v", none.Items)
	}

	// A grant for mp1's history.
	grant := w.consent(w.house, w.spec([]string{w.mp1}, "meter_history"), 201)
	if grant.Status != flexhub.ConsentActive || grant.OwnerID != w.houseID || grant.RequestedBy != w.houseID {
		t.Fatalf("grant: %+v", grant)
	}
	w.do("GET", w.read(w.mp1), w.agg, nil, 200, nil)
	w.run([]scenario{
		{name: "outside the consented metering points", method: "GET", path: w.read(w.mp2), token: w.agg, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "another household's data", method: "GET", path: w.read(w.otherMP), token: w.agg, wantStatus: 403},
		{name: "another household cannot see the consent", method: "GET", path: "/v1/consents/" + grant.ID, token: w.other, wantStatus: 404},
	})

	// A request for mp2, approved; a request declined.
	req := w.spec([]string{w.mp2}, "meter_history", "master_data")
	req["owner_id"] = w.houseID
	asked := w.consent(w.agg, req, 201)
	if asked.Status != flexhub.ConsentRequested || asked.RequestedBy != w.aggID {
		t.Fatalf("request: %+v", asked)
	}
	w.do("GET", w.read(w.mp2), w.agg, nil, 403, nil) // not approved yet
	w.do("POST", "/v1/consents/"+asked.ID+"/approve", w.agg, nil, 403, nil)
	var approved flexhub.Consent
	w.do("POST", "/v1/consents/"+asked.ID+"/approve", w.house, nil, 200, &approved)
	if approved.Status != flexhub.ConsentActive || approved.DecidedAt == nil {
		t.Fatalf("approved: %+v", approved)
	}
	w.do("GET", w.read(w.mp2), w.agg, nil, 200, nil)
	// Master data under consent: mp2's (granted), not mp1's (history only).
	w.do("GET", "/v1/metering-points/"+w.mp2, w.agg, nil, 200, nil)
	w.run([]scenario{{name: "master data outside the consented scopes", method: "GET", path: "/v1/metering-points/" + w.mp1, token: w.agg,
		wantStatus: 403, wantBody: []string{"consent.scope", "master_data"}}})
	w.do("POST", "/v1/consents/"+asked.ID+"/approve", w.house, nil, 409, nil) // already decided
	declined := w.consent(w.agg, req, 201)
	w.do("POST", "/v1/consents/"+declined.ID+"/decline", w.house, nil, 200, nil)

	// The list of mp1's series is part of its history.
	w.do("GET", "/v1/meter-series?metering_point_id="+w.mp1, w.agg, nil, 200, nil)

	// Revocation: the next read is refused, with the reason.
	var revoked flexhub.Consent
	w.do("POST", "/v1/consents/"+grant.ID+"/revoke", w.house, nil, 200, &revoked)
	if revoked.Status != flexhub.ConsentRevoked || revoked.RevokedAt == nil {
		t.Fatalf("revoked: %+v", revoked)
	}
	w.run([]scenario{
		{name: "read after revocation", method: "GET", path: w.read(w.mp1), token: w.agg, wantStatus: 403, wantBody: []string{"consent.revoked"}},
		{name: "revoke twice", method: "POST", path: "/v1/consents/" + grant.ID + "/revoke", token: w.house, wantStatus: 409, wantBody: []string{"consent.state"}},
	})
	// Expiry: a month later the approved consent is over.
	w.now = w.now.Add(31 * 24 * time.Hour)
	w.run([]scenario{
		{name: "read after expiry", method: "GET", path: w.read(w.mp2), token: w.agg, wantStatus: 403, wantBody: []string{"consent.expired"}},
		{name: "an expired consent is shown expired", method: "GET", path: "/v1/consents/" + asked.ID, token: w.agg, wantStatus: 200, wantBody: []string{`"status":"expired"`}},
	})

	// The owner sees every consent, past and present, and each version.
	var mine struct{ Items []flexhub.Consent }
	w.do("GET", "/v1/consents", w.house, nil, 200, &mine)
	if len(mine.Items) != 3 {
		t.Errorf("the owner lists %d consents, want 3", len(mine.Items))
	}
	var versions struct {
		Items []struct {
			Status string `json:"status"`
		} `json:"items"`
	}
	w.do("GET", "/v1/consents/"+asked.ID+"/versions", w.house, nil, 200, &versions)
	if len(versions.Items) != 2 || versions.Items[0].Status != "requested" || versions.Items[1].Status != "active" {
		t.Errorf("versions of the approved request: %+v", versions.Items)
	}

	// The access log: every read by someone else, with its basis; the
	// owner's own read not logged; refused reads with their reason.
	var log struct {
		Items []flexhub.DataAccess `json:"items"`
	}
	w.do("GET", "/v1/data-access?limit=500", w.house, nil, 200, &log)
	byReader := map[string][]string{}
	for _, a := range log.Items {
		if a.OwnerID != w.houseID || a.ReaderID == w.houseID {
			t.Errorf("the owner's log holds %+v", a)
		}
		entry := a.Outcome + ":" + a.Basis
		if a.Outcome == flexhub.AccessRefused {
			entry = a.Outcome + ":" + strings.SplitN(a.Reason, ":", 2)[0]
		}
		byReader[a.ReaderID] = append(byReader[a.ReaderID], entry)
		if a.Basis == flexhub.BasisConsent && a.ConsentID == "" {
			t.Errorf("a read on consent without its consent id: %+v", a)
		}
	}
	want := map[string]string{
		w.dsoID:      "allowed:legal_dso",
		w.supplierID: "allowed:legal_supplier",
		w.brpID:      "allowed:legal_brp",
		w.aggID: "refused:consent.none allowed:consent refused:consent.none refused:consent.none allowed:consent allowed:consent refused:consent.scope " +
			"allowed:consent refused:consent.revoked refused:consent.expired",
	}
	for reader, seq := range want {
		if got := strings.Join(byReader[reader], " "); got != seq {
			t.Errorf("the log of %s's reads:\n got %s\nwant %s", reader, got, seq)
		}
	}
	// Consent changes are in the audit chain and notified.
	var audit struct{ Items []flexhub.AuditEntry }
	w.do("GET", "/v1/audit?object_id="+asked.ID, w.house, nil, 200, &audit)
	var actions []string
	for _, e := range audit.Items {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "consent.requested,consent.approved" {
		t.Errorf("audit of the request: %v", actions)
	}
	var notes struct{ Items []flexhub.Notification }
	w.do("GET", "/v1/notifications?limit=500", w.agg, nil, 200, &notes)
	n := 0
	for _, x := range notes.Items {
		if x.Type == "consent.changed" {
			n++
		}
	}
	if n != 4 { // the owner granted, approved, declined and revoked
		t.Errorf("the aggregator was notified of %d consent changes, want 4", n)
	}
}
