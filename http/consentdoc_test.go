package http_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/flexhub/flexhub"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/sqlite"
)

// consentJSONSchema compiles docs/schemas/consent.schema.json, formats
// asserted (date-time).
func consentJSONSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../docs/schemas/consent.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("consent.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("consent.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validateJSON(sch *jsonschema.Schema, body string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// xmllintSchema validates an XML document against docs/schemas/consent.xsd
// with xmllint: skipped where xmllint is missing, except in CI.
func xmllintSchema(t *testing.T, doc string) error {
	t.Helper()
	lint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmllint is needed in CI (libxml2-utils)")
		}
		t.Skip("xmllint not installed")
	}
	path := filepath.Join(t.TempDir(), "consent.xml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lint, "--noout", "--schema", "../docs/schemas/consent.xsd", path).CombinedOutput()
	if err != nil {
		return &lintError{string(out)}
	}
	return nil
}

type lintError struct{ out string }

func (e *lintError) Error() string { return e.out }

// TestConsentDocument: the consent document of real consents — granted,
// requested, approved, declined, revoked — as JSON validates against
// docs/schemas/consent.schema.json and as XML (Accept: application/xml or
// ?format=xml) against docs/schemas/consent.xsd, and says what the consent
// says, parties by EIC and by id; documents that break the schemas are
// refused by them; the XML is shown only to who sees the consent.
func TestConsentDocument(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "consentdoc.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	w := newConsentWorld(t, newEnvOn(t, store))
	sch := consentJSONSchema(t)

	grant := w.consent(w.house, w.spec([]string{w.mp1, w.mp2}, "meter_history", "settlement"), 201)
	req := w.spec([]string{w.mp2}, "master_data")
	req["owner_id"] = w.houseID
	asked := w.consent(w.agg, req, 201)
	approved := w.consent(w.agg, req, 201)
	w.do("POST", "/v1/consents/"+approved.ID+"/approve", w.house, nil, 200, nil)
	declined := w.consent(w.agg, req, 201)
	w.do("POST", "/v1/consents/"+declined.ID+"/decline", w.house, nil, 200, nil)
	revoked := w.consent(w.house, w.spec([]string{w.mp1}, "meter_realtime"), 201)
	w.do("POST", "/v1/consents/"+revoked.ID+"/revoke", w.house, nil, 200, nil)

	eics := map[string]string{w.houseID: eic("10XCONS-HOUSE"), w.aggID: eic("10XCONS-AGG")}
	for _, id := range []string{grant.ID, asked.ID, approved.ID, declined.ID, revoked.ID} {
		var c flexhub.Consent
		body, _ := w.do("GET", "/v1/consents/"+id, w.house, nil, 200, &c)
		if err := validateJSON(sch, body); err != nil {
			t.Errorf("consent %s (%s): the JSON does not validate: %v\n%s", id, c.Status, err, body)
		}
		for _, how := range [][]string{{"/v1/consents/" + id, "Accept", "application/xml"}, {"/v1/consents/" + id + "?format=xml"}} {
			doc, hdr := w.do("GET", how[0], w.agg, nil, 200, nil, how[1:]...)
			if ct := hdr.Get("Content-Type"); ct != "application/xml" {
				t.Errorf("%v: content type %q", how, ct)
			}
			if err := xmllintSchema(t, doc); err != nil {
				t.Errorf("consent %s (%s) %v: the XML does not validate: %v\n%s", id, c.Status, how, err, doc)
			}
			var x fhttp.ConsentXML
			if err := xml.Unmarshal([]byte(doc), &x); err != nil {
				t.Fatal(err)
			}
			sender, receiver := eics[c.OwnerID], eics[c.DataUserID]
			if c.RequestedBy == c.DataUserID {
				sender, receiver = receiver, sender
			}
			var mps []string
			for _, p := range x.EvaluationPoints {
				mps = append(mps, p.MRID.Value)
			}
			if x.MRID != c.ID || x.RevisionNumber != c.Version || x.Status != c.Status || x.Purpose != c.Purpose || x.Channel != c.Channel ||
				x.Owner.Value != eics[c.OwnerID] || x.Owner.CodingScheme != "A01" || x.OwnerID.Value != c.OwnerID ||
				x.DataUser.Value != eics[c.DataUserID] || x.DataUserID.Value != c.DataUserID ||
				x.Sender.Value != sender || x.Receiver.Value != receiver ||
				x.Period.Start != c.ValidFrom.Format("2006-01-02T15:04:05.999999999Z07:00") || x.Period.End != c.ValidTo.Format("2006-01-02T15:04:05.999999999Z07:00") ||
				strings.Join(x.Scopes, ",") != strings.Join(c.Scopes, ",") || strings.Join(mps, ",") != strings.Join(c.MeteringPointIDs, ",") ||
				(x.RevokedDateTime != "") != (c.RevokedAt != nil) || (x.DecidedDateTime != "") != (c.DecidedAt != nil) {
				t.Errorf("consent %s: the XML says\n%+v\nthe JSON\n%+v", id, x, c)
			}
		}
	}

	// The examples in docs/ are valid documents.
	ex, err := os.ReadFile("../docs/schemas/consent.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := validateJSON(sch, string(ex)); err != nil {
		t.Errorf("docs/schemas/consent.example.json: %v", err)
	}
	if ex, err = os.ReadFile("../docs/schemas/consent.example.xml"); err != nil {
		t.Fatal(err)
	}
	if err := xmllintSchema(t, string(ex)); err != nil {
		t.Errorf("docs/schemas/consent.example.xml: %v", err)
	}

	// The schemas refuse what is not a consent document.
	var c map[string]any
	body, _ := w.do("GET", "/v1/consents/"+grant.ID, w.house, nil, 200, &c)
	for name, mutate := range map[string]func(map[string]any){
		"unknown status":            func(m map[string]any) { m["status"] = "paused" },
		"no scopes":                 func(m map[string]any) { m["scopes"] = []string{} },
		"active without decided_at": func(m map[string]any) { delete(m, "decided_at") },
		"not UTC":                   func(m map[string]any) { m["valid_to"] = "2026-04-01T12:00:00+02:00" },
		"an extra field":            func(m map[string]any) { m["owner_name"] = "Jane" },
	} {
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		mutate(m)
		b, _ := json.Marshal(m)
		if err := validateJSON(sch, string(b)); err == nil {
			t.Errorf("the JSON Schema accepts a document with %s", name)
		}
	}
	doc, _ := w.do("GET", "/v1/consents/"+grant.ID+"?format=xml", w.house, nil, 200, nil)
	for name, bad := range map[string]string{
		"unknown status":    strings.Replace(doc, "<status>active</status>", "<status>paused</status>", 1),
		"no mRID":           strings.Replace(doc, "<mRID>"+grant.ID+"</mRID>", "", 1),
		"an unknown scope":  strings.Replace(doc, "<scope>settlement</scope>", "<scope>everything</scope>", 1),
		"no coding scheme":  strings.Replace(doc, `codingScheme="A01"`, "", 1),
		"no metering point": cutAll(doc, "<MarketEvaluationPoint>", "</MarketEvaluationPoint>"),
	} {
		if bad == doc {
			t.Fatalf("%s: the mutation changed nothing", name)
		}
		if err := xmllintSchema(t, bad); err == nil {
			t.Errorf("the XSD accepts a document with %s", name)
		}
	}

	// Who may not see the consent does not get its document either.
	w.run([]scenario{
		{name: "another household asks for the XML", method: "GET", path: "/v1/consents/" + grant.ID + "?format=xml", token: w.other, wantStatus: 404},
		{name: "an unknown format", method: "GET", path: "/v1/consents/" + grant.ID + "?format=yaml", token: w.house, wantStatus: 422, wantBody: []string{"format"}},
		{name: "JSON by default", method: "GET", path: "/v1/consents/" + grant.ID, token: w.house, wantStatus: 200, wantBody: []string{`"purpose"`}},
	})
}

// cutAll removes every span from open to close.
func cutAll(s, open, close string) string {
	for {
		i := strings.Index(s, open)
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], close)
		if j < 0 {
			return s
		}
		s = s[:i] + s[i+j+len(close):]
	}
}
