package http_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// oauthWorld is the consent world with an OAuth client of the aggregator
// and a browser that stops at redirects.
type oauthWorld struct {
	*consentWorld
	browser  *http.Client
	client   flexhub.OAuthClient
	redirect string
}

const oauthRedirect = "https://agg.example/callback"

func newPKCE() (verifier, challenge string) {
	var b [40]byte
	rand.Read(b[:])
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authParams is an authorization request for mps and scopes.
func (w *oauthWorld) authParams(challenge, mps string, scopes ...string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {w.client.ID}, "redirect_uri": {w.redirect}, "scope": {strings.Join(scopes, " ")},
		"state": {"st-" + challenge[:8]}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "metering_point_ids": {mps},
		"purpose": {"heat pump flexibility offers"}, "valid_to": {w.now.Add(30 * 24 * time.Hour).Format(time.RFC3339)}}
}

type webAnswer struct {
	status   int
	body     string
	header   http.Header
	location *url.URL
}

func (w *oauthWorld) web(method, path string, form url.Values, headers ...string) webAnswer {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.srv.URL+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := w.browser.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := webAnswer{status: res.StatusCode, body: string(raw), header: res.Header}
	if loc := res.Header.Get("Location"); loc != "" {
		if a.location, err = url.Parse(loc); err != nil {
			w.t.Fatalf("bad Location %q", loc)
		}
	}
	return a
}

// back checks a redirect to the client's redirect URI and returns its
// query.
func (w *oauthWorld) back(a webAnswer, wantStatus int, state string) url.Values {
	w.t.Helper()
	if a.status != wantStatus || a.location == nil {
		w.t.Fatalf("status %d (Location %v), want a %d redirect; body %s", a.status, a.location, wantStatus, a.body)
	}
	q := a.location.Query()
	a.location.RawQuery = ""
	if a.location.String() != w.redirect {
		w.t.Fatalf("redirected to %s, want %s", a.location, w.redirect)
	}
	if q.Get("state") != state {
		w.t.Errorf("state %q, want %q", q.Get("state"), state)
	}
	return q
}

// approve runs the consent page as the household and returns the code.
func (w *oauthWorld) approve(p url.Values) string {
	w.t.Helper()
	f := url.Values{"decision": {"approve"}, "party_id": {w.houseID}, "api_key": {w.house}}
	for k, v := range p {
		f[k] = v
	}
	q := w.back(w.web("POST", "/oauth/authorize", f), http.StatusSeeOther, p.Get("state"))
	if q.Get("code") == "" || q.Get("error") != "" {
		w.t.Fatalf("approval gave no code: %v", q)
	}
	return q.Get("code")
}

type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a tokenAnswer) s(k string) string { v, _ := a.body[k].(string); return v }

func (w *oauthWorld) token(form url.Values) tokenAnswer {
	w.t.Helper()
	a := w.web("POST", "/oauth/token", form)
	out := tokenAnswer{status: a.status, header: a.header}
	if err := json.Unmarshal([]byte(a.body), &out.body); err != nil {
		w.t.Fatalf("token answer %d not JSON: %s", a.status, a.body)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		w.t.Errorf("token endpoint Cache-Control %q, want no-store", cc)
	}
	return out
}

func (w *oauthWorld) exchange(code, verifier string) tokenAnswer {
	return w.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {w.redirect}, "client_id": {w.client.ID}, "code_verifier": {verifier}})
}

func (w *oauthWorld) wantError(a tokenAnswer, status int, code string) {
	w.t.Helper()
	if a.status != status || a.s("error") != code || a.s("error_description") == "" {
		w.t.Errorf("answer %d %v, want %d %s with a description", a.status, a.body, status, code)
	}
	if a.s("access_token") != "" {
		w.t.Errorf("an error answer carries a token: %v", a.body)
	}
}

// tokens runs a whole authorization for mps and scopes and returns the
// token answer.
func (w *oauthWorld) tokens(mps string, scopes ...string) tokenAnswer {
	w.t.Helper()
	v, c := newPKCE()
	a := w.exchange(w.approve(w.authParams(c, mps, scopes...)), v)
	if a.status != 200 {
		w.t.Fatalf("token exchange: %d %v", a.status, a.body)
	}
	return a
}

// status sends a GET with a bearer token and returns the status, body and
// WWW-Authenticate.
func (w *oauthWorld) get(path, token string) (int, string, string) {
	w.t.Helper()
	st, raw, h := w.send("GET", path, token, nil)
	return st, raw, h.Get("WWW-Authenticate")
}

func (w *oauthWorld) accessLog() []flexhub.DataAccess {
	var log struct {
		Items []flexhub.DataAccess `json:"items"`
	}
	w.do("GET", "/v1/data-access?limit=500", w.house, nil, 200, &log)
	return log.Items
}

func (w *oauthWorld) consents(key string) []flexhub.Consent {
	var out struct{ Items []flexhub.Consent }
	w.do("GET", "/v1/consents?limit=500", key, nil, 200, &out)
	return out.Items
}

func (w *oauthWorld) auditActions() map[string]int {
	out := map[string]int{}
	after := int64(0)
	for {
		var page struct {
			Items []flexhub.AuditEntry `json:"items"`
			Next  int64                `json:"next_after"`
		}
		w.do("GET", fmt.Sprintf("/v1/audit?limit=500&after=%d", after), w.admin, nil, 200, &page)
		for _, e := range page.Items {
			out[e.Action]++
		}
		if page.Next == 0 || len(page.Items) == 0 {
			return out
		}
		after = page.Next
	}
}

// TestOAuth: Connect My Data through the real API, on SQLite and
// PostgreSQL: a data user registers a client; the consumer sees the
// consent page naming the party, scopes, purpose, period and metering
// points, approves, and the client exchanges the code with PKCE; the
// access token reads exactly the consent's data (logged on channel oauth
// with the consent as basis) and nothing else; refresh rotates; the
// consumer's revocation stops the token at once; and every abuse case of
// issue 6.
func TestOAuth(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		w := &oauthWorld{consentWorld: newConsentWorld(t, e), redirect: oauthRedirect,
			browser: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		w.do("POST", "/v1/oauth-clients", w.agg, map[string]any{"name": "HeatFlex app", "redirect_uris": []string{oauthRedirect, "http://127.0.0.1:8080/cb"}}, 201, &w.client)
		if w.client.ID == "" || w.client.OwnerID != w.aggID || w.client.Type != "public" {
			t.Fatalf("registered client: %+v", w.client)
		}
		t.Run("happy path", func(t *testing.T) { w.t = t; testOAuthHappyPath(t, w) })
		t.Run("abuse", func(t *testing.T) { w.t = t; testOAuthAbuse(t, w) })
	})
}

func testOAuthHappyPath(t *testing.T, w *oauthWorld) {
	before := w.auditActions()
	verifier, challenge := newPKCE()
	p := w.authParams(challenge, w.mp1, "meter_history", "master_data")

	// The consent page names the data user, the scopes in words, the
	// purpose, the period and the metering points.
	page := w.web("GET", "/oauth/authorize?"+p.Encode(), nil)
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("consent page: %d %s", page.status, page.body)
	}
	for _, want := range []string{"cons-agg", w.aggID, "HeatFlex app", "heat pump flexibility offers", "your stored meter data", "register data of your metering points",
		w.mp1, w.now.Add(30 * 24 * time.Hour).Format("2 January 2006"), `name="api_key"`, `value="approve"`, `value="decline"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the consent page lacks %q", want)
		}
	}
	if strings.Contains(page.body, w.mp2) || strings.Contains(page.body, "live stream") {
		t.Errorf("the consent page shows more than asked for")
	}
	if page.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the consent page may be framed")
	}

	// The household approves: back to the client with a code and the state.
	code := w.approve(p)
	cs := w.consents(w.house)
	if len(cs) != 1 {
		t.Fatalf("the household lists %d consents, want the one from OAuth", len(cs))
	}
	c := cs[0]
	if c.Channel != "oauth" || c.Status != flexhub.ConsentActive || c.DataUserID != w.aggID || c.OwnerID != w.houseID ||
		strings.Join(c.MeteringPointIDs, ",") != w.mp1 || strings.Join(c.Scopes, " ") != "meter_history master_data" || c.Purpose != "heat pump flexibility offers" {
		t.Fatalf("the consent given on the page: %+v", c)
	}

	// The code and the verifier give tokens.
	tok := w.exchange(code, verifier)
	if tok.status != 200 || tok.s("token_type") != "Bearer" || tok.s("scope") != "meter_history master_data" || tok.body["expires_in"] != 3600.0 ||
		!strings.HasPrefix(tok.s("access_token"), "fho_at_") || !strings.HasPrefix(tok.s("refresh_token"), "fho_rt_") || tok.s("consent_id") != c.ID {
		t.Fatalf("token response: %d %v", tok.status, tok.body)
	}
	access := tok.s("access_token")

	// The token reads the consented metering point's data...
	var data flexhub.MeterSeriesData
	w.do("GET", w.read(w.mp1), access, nil, 200, &data)
	if len(data.Readings) != 96 {
		t.Errorf("read %d readings with the token, want the day's 96", len(data.Readings))
	}
	w.do("GET", "/v1/meter-series?metering_point_id="+w.mp1, access, nil, 200, nil)
	w.do("GET", "/v1/consents/"+c.ID, access, nil, 200, nil)
	// ... logged on channel oauth with the consent as basis.
	log := w.accessLog()
	last := log[len(log)-2] // the meter-series read follows
	if last.ReaderID != w.aggID || last.Channel != flexhub.ChannelOAuth || last.Basis != flexhub.BasisConsent || last.ConsentID != c.ID ||
		last.Outcome != flexhub.AccessAllowed || last.MeteringPointID != w.mp1 {
		t.Errorf("the token's read is logged as %+v", last)
	}

	// Refresh rotates: a new pair that works.
	ref := w.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.s("refresh_token")}, "client_id": {w.client.ID}})
	if ref.status != 200 || ref.s("access_token") == access || ref.s("refresh_token") == tok.s("refresh_token") || ref.s("scope") != "meter_history master_data" {
		t.Fatalf("refresh: %d %v", ref.status, ref.body)
	}
	w.do("GET", w.read(w.mp1), ref.s("access_token"), nil, 200, nil)

	// The household revokes the consent: the token is refused at once.
	w.do("POST", "/v1/consents/"+c.ID+"/revoke", w.house, nil, 200, nil)
	st, body, auth := w.get(w.read(w.mp1), ref.s("access_token"))
	if st != 401 || !strings.Contains(auth, `error="invalid_token"`) || !strings.Contains(body, "revoked") {
		t.Errorf("a token of a revoked consent: %d %s (WWW-Authenticate %q)", st, body, auth)
	}
	log = w.accessLog()
	last = log[len(log)-1]
	if last.ReaderID != w.aggID || last.Channel != flexhub.ChannelOAuth || last.Outcome != flexhub.AccessRefused ||
		!strings.HasPrefix(last.Reason, "consent.revoked") || last.MeteringPointID != w.mp1 {
		t.Errorf("the refused read after revocation is logged as %+v", last)
	}
	w.wantError(w.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ref.s("refresh_token")}, "client_id": {w.client.ID}}), 400, "invalid_grant")

	after := w.auditActions()
	for action, n := range map[string]int{"oauth.code_issued": 1, "oauth.token_issued": 1, "oauth.token_refreshed": 1, "consent.granted": 1, "consent.revoked": 1} {
		if got := after[action] - before[action]; got != n {
			t.Errorf("audit %s: %d new entries, want %d", action, got, n)
		}
	}
	if after["oauth.client_registered"] != 1 {
		t.Errorf("audit oauth.client_registered: %d entries, want 1", after["oauth.client_registered"])
	}
}

func testOAuthAbuse(t *testing.T, w *oauthWorld) {
	consentsBefore := len(w.consents(w.house))

	t.Run("a bad client or redirect URI never redirects", func(t *testing.T) {
		_, c := newPKCE()
		for name, change := range map[string][2]string{
			"unregistered redirect":     {"redirect_uri", "https://evil.example/callback"},
			"redirect with a suffix":    {"redirect_uri", oauthRedirect + "/x"},
			"redirect with a query":     {"redirect_uri", oauthRedirect + "?next=evil"},
			"redirect of another case":  {"redirect_uri", "https://AGG.example/callback"},
			"no redirect":               {"redirect_uri", ""},
			"unknown client":            {"client_id", flexhub.NewID()},
			"no client":                 {"client_id", ""},
			"bad redirect and bad type": {"redirect_uri", "https://evil.example/?response_type=token"},
		} {
			p := w.authParams(c, w.mp1, "meter_history")
			p.Set(change[0], change[1])
			for _, method := range []string{"GET", "POST"} {
				var a webAnswer
				if method == "GET" {
					a = w.web("GET", "/oauth/authorize?"+p.Encode(), nil)
				} else {
					f := url.Values{"decision": {"approve"}, "party_id": {w.houseID}, "api_key": {w.house}}
					for k, v := range p {
						f[k] = v
					}
					a = w.web("POST", "/oauth/authorize", f)
				}
				if a.status != 400 || a.location != nil || !strings.Contains(a.body, "refused") {
					t.Errorf("%s (%s): %d, Location %v", name, method, a.status, a.location)
				}
			}
		}
	})

	t.Run("other bad requests go back to the client", func(t *testing.T) {
		_, c := newPKCE()
		for name, tc := range map[string]struct{ param, value, want string }{
			"implicit grant":       {"response_type", "token", "unsupported_response_type"},
			"unknown scope":        {"scope", "meter_history everything", "invalid_scope"},
			"no scope":             {"scope", "", "invalid_scope"},
			"missing PKCE":         {"code_challenge", "", "invalid_request"},
			"plain PKCE":           {"code_challenge_method", "plain", "invalid_request"},
			"no method":            {"code_challenge_method", "", "invalid_request"},
			"no purpose":           {"purpose", "", "invalid_request"},
			"period over":          {"valid_to", w.now.Add(-time.Hour).Format(time.RFC3339), "invalid_request"},
			"no metering points":   {"metering_point_ids", "", "invalid_request"},
			"a malformed mp":       {"metering_point_ids", "MP-C1", "invalid_request"},
			"challenge not sha256": {"code_challenge", "abc", "invalid_request"},
		} {
			p := w.authParams(c, w.mp1, "meter_history")
			p.Set(tc.param, tc.value)
			q := w.back(w.web("GET", "/oauth/authorize?"+p.Encode(), nil), http.StatusFound, p.Get("state"))
			if q.Get("error") != tc.want || q.Get("code") != "" {
				t.Errorf("%s: redirected with %v, want error=%s", name, q, tc.want)
			}
		}
	})

	t.Run("decline", func(t *testing.T) {
		_, c := newPKCE()
		p := w.authParams(c, w.mp1, "meter_history")
		p.Set("decision", "decline")
		q := w.back(w.web("POST", "/oauth/authorize", p), http.StatusSeeOther, p.Get("state"))
		if q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Errorf("decline: %v", q)
		}
	})

	t.Run("approval refused, nothing stored", func(t *testing.T) {
		auditBefore := w.auditCount()
		_, c := newPKCE()
		for name, tc := range map[string]struct {
			mps, party, key string
			status          int
			want            string
		}{
			"a metering point the consumer does not own": {w.mp1 + "," + w.otherMP, w.houseID, w.house, 403, "not owned by"},
			"a wrong API key":                   {w.mp1, w.houseID, w.house + "x", 401, "unknown API key"},
			"the key of another party":          {w.mp1, w.houseID, w.other, 401, "does not belong"},
			"not a consumer":                    {w.mp1, w.dsoID, w.dso, 403, "is not a consumer"},
			"the other household for this page": {w.mp1, "", w.other, 401, "does not belong"},
		} {
			p := w.authParams(c, tc.mps, "meter_history")
			p.Set("decision", "approve")
			p.Set("party_id", tc.party)
			p.Set("api_key", tc.key)
			a := w.web("POST", "/oauth/authorize", p)
			if a.status != tc.status || a.location != nil || !strings.Contains(a.body, tc.want) {
				t.Errorf("%s: %d %v, want %d with %q; body %s", name, a.status, a.location, tc.status, tc.want, a.body)
			}
		}
		if n := len(w.consents(w.house)); n != consentsBefore {
			t.Errorf("refused approvals stored consents: %d, want %d", n, consentsBefore)
		}
		if n := w.auditCount(); n != auditBefore {
			t.Errorf("refused approvals wrote %d audit entries", n-auditBefore)
		}
	})

	t.Run("all my metering points", func(t *testing.T) {
		tok := w.tokens("all", "meter_history")
		var c flexhub.Consent
		w.do("GET", "/v1/consents/"+tok.s("consent_id"), w.house, nil, 200, &c)
		if strings.Join(c.MeteringPointIDs, ",") != w.mp1+","+w.mp2 && strings.Join(c.MeteringPointIDs, ",") != w.mp2+","+w.mp1 {
			t.Errorf("all: the consent names %v, want %s and %s", c.MeteringPointIDs, w.mp1, w.mp2)
		}
		w.do("GET", w.read(w.mp2), tok.s("access_token"), nil, 200, nil)
		w.do("POST", "/v1/consents/"+c.ID+"/revoke", w.house, nil, 200, nil)
	})

	t.Run("replayed code", func(t *testing.T) {
		v, c := newPKCE()
		code := w.approve(w.authParams(c, w.mp1, "meter_history"))
		first := w.exchange(code, v)
		if first.status != 200 {
			t.Fatalf("first exchange: %v", first.body)
		}
		w.do("GET", w.read(w.mp1), first.s("access_token"), nil, 200, nil)
		w.wantError(w.exchange(code, v), 400, "invalid_grant")
		// The tokens issued from the code are revoked.
		if st, _, auth := w.get(w.read(w.mp1), first.s("access_token")); st != 401 || !strings.Contains(auth, "invalid_token") {
			t.Errorf("the access token of a replayed code: %d %q", st, auth)
		}
		w.wantError(w.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.s("refresh_token")}, "client_id": {w.client.ID}}), 400, "invalid_grant")
	})

	t.Run("concurrent exchanges of one code", func(t *testing.T) {
		v, c := newPKCE()
		code := w.approve(w.authParams(c, w.mp1, "meter_history"))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {w.redirect}, "client_id": {w.client.ID}, "code_verifier": {v}}.Encode()
		const n = 4
		type result struct {
			status int
			body   map[string]any
			err    error
		}
		results := make(chan result, n)
		for range n {
			go func() {
				res, err := http.Post(w.srv.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form))
				if err != nil {
					results <- result{err: err}
					return
				}
				defer res.Body.Close()
				var body map[string]any
				err = json.NewDecoder(res.Body).Decode(&body)
				results <- result{status: res.StatusCode, body: body, err: err}
			}()
		}
		won, access := 0, ""
		for range n {
			r := <-results
			switch {
			case r.err != nil:
				t.Fatal(r.err)
			case r.status == 200:
				won++
				access, _ = r.body["access_token"].(string)
			case r.status != 400 || r.body["error"] != "invalid_grant":
				t.Errorf("a concurrent exchange: %d %v", r.status, r.body)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent exchanges of one code got tokens, want 1", won, n)
		}
		// The others were replays: the winner's tokens are revoked.
		if st, _, _ := w.get(w.read(w.mp1), access); st != 401 {
			t.Errorf("the tokens of a code exchanged concurrently still read: %d", st)
		}
	})

	t.Run("reused refresh token revokes the grant", func(t *testing.T) {
		tok := w.tokens(w.mp1, "meter_history")
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.s("refresh_token")}, "client_id": {w.client.ID}}
		next := w.token(form)
		if next.status != 200 {
			t.Fatalf("refresh: %v", next.body)
		}
		w.wantError(w.token(form), 400, "invalid_grant")
		if st, _, _ := w.get(w.read(w.mp1), next.s("access_token")); st != 401 {
			t.Errorf("after a reused refresh token the newest access token still reads: %d", st)
		}
	})

	t.Run("PKCE and code binding", func(t *testing.T) {
		v, c := newPKCE()
		code := w.approve(w.authParams(c, w.mp1, "meter_history"))
		other, _ := newPKCE()
		w.wantError(w.exchange(code, other), 400, "invalid_grant")
		w.wantError(w.exchange(code, ""), 400, "invalid_request")
		w.wantError(w.exchange(code, "short"), 400, "invalid_grant")
		// Another client, even of the same data user, cannot use the code.
		var c2 flexhub.OAuthClient
		w.do("POST", "/v1/oauth-clients", w.agg, map[string]any{"name": "second app", "redirect_uris": []string{oauthRedirect}}, 201, &c2)
		w.wantError(w.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {w.redirect}, "client_id": {c2.ID}, "code_verifier": {v}}), 400, "invalid_grant")
		// Another redirect URI than the request's.
		w.wantError(w.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1:8080/cb"}, "client_id": {w.client.ID}, "code_verifier": {v}}), 400, "invalid_grant")
		w.wantError(w.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {w.redirect}, "client_id": {flexhub.NewID()}, "code_verifier": {v}}), 401, "invalid_client")
		w.wantError(w.token(url.Values{"grant_type": {"password"}, "client_id": {w.client.ID}}), 400, "unsupported_grant_type")
		// Failed attempts do not use the code up: the right verifier works.
		if a := w.exchange(code, v); a.status != 200 {
			t.Errorf("the right verifier after failed attempts: %v", a.body)
		}
	})

	t.Run("expired code", func(t *testing.T) {
		v, c := newPKCE()
		code := w.approve(w.authParams(c, w.mp1, "meter_history"))
		saved := w.now
		w.now = w.now.Add(10*time.Minute + time.Second)
		w.wantError(w.exchange(code, v), 400, "invalid_grant")
		w.now = saved
	})

	t.Run("revocation (RFC 7009)", func(t *testing.T) {
		tok := w.tokens(w.mp1, "meter_history")
		w.do("GET", w.read(w.mp1), tok.s("access_token"), nil, 200, nil)
		// Another client may not revoke it; unknown tokens answer 200.
		var c2 flexhub.OAuthClient
		w.do("POST", "/v1/oauth-clients", w.agg, map[string]any{"name": "third app", "redirect_uris": []string{oauthRedirect}}, 201, &c2)
		if a := w.web("POST", "/oauth/revoke", url.Values{"token": {tok.s("access_token")}, "client_id": {c2.ID}}); a.status != 400 || !strings.Contains(a.body, `"error":"invalid_grant"`) {
			t.Errorf("revocation by another client: %d %s", a.status, a.body)
		}
		w.do("GET", w.read(w.mp1), tok.s("access_token"), nil, 200, nil)
		if a := w.web("POST", "/oauth/revoke", url.Values{"token": {"fho_at_nosuchtoken"}, "client_id": {w.client.ID}}); a.status != 200 {
			t.Errorf("revoking an unknown token: %d %s", a.status, a.body)
		}
		if a := w.web("POST", "/oauth/revoke", url.Values{"token": {tok.s("access_token")}, "client_id": {w.client.ID}, "token_type_hint": {"access_token"}}); a.status != 200 {
			t.Fatalf("revoke: %d %s", a.status, a.body)
		}
		if st, _, auth := w.get(w.read(w.mp1), tok.s("access_token")); st != 401 || !strings.Contains(auth, "invalid_token") {
			t.Errorf("a revoked access token: %d %q", st, auth)
		}
		// The refresh token still works; revoking it revokes its access tokens.
		next := w.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.s("refresh_token")}, "client_id": {w.client.ID}})
		if next.status != 200 {
			t.Fatalf("refresh after revoking the access token: %v", next.body)
		}
		if a := w.web("POST", "/oauth/revoke", url.Values{"token": {next.s("refresh_token")}, "client_id": {w.client.ID}}); a.status != 200 {
			t.Fatalf("revoke refresh: %d", a.status)
		}
		if st, _, _ := w.get(w.read(w.mp1), next.s("access_token")); st != 401 {
			t.Errorf("the access token of a revoked refresh token: %d", st)
		}
		w.wantError(w.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.s("refresh_token")}, "client_id": {w.client.ID}}), 400, "invalid_grant")
	})

	t.Run("the token reads only within its consent", func(t *testing.T) {
		tok := w.tokens(w.mp1, "meter_history")
		access := tok.s("access_token")
		// The aggregator also holds an API consent for mp2: its API key
		// reads mp2, the token does not.
		api := w.consent(w.house, w.spec([]string{w.mp2}, "meter_history"), 201)
		w.do("GET", w.read(w.mp2), w.agg, nil, 200, nil)
		st, body, _ := w.get(w.read(w.mp2), access)
		if st != 403 || !strings.Contains(body, "consent.none") {
			t.Errorf("the token reading a metering point outside its consent: %d %s", st, body)
		}
		log := w.accessLog()
		last := log[len(log)-1]
		if last.Channel != flexhub.ChannelOAuth || last.Outcome != flexhub.AccessRefused || last.MeteringPointID != w.mp2 || !strings.HasPrefix(last.Reason, "consent.none") {
			t.Errorf("the refused read is logged as %+v", last)
		}
		// Another household's data, and endpoints that are no reads of consumer data.
		if st, _, _ := w.get(w.read(w.otherMP), access); st != 403 {
			t.Errorf("another household's data with the token: %d", st)
		}
		for _, path := range []string{"/v1/consents", "/v1/consents/" + api.ID, "/v1/data-access?reader_id=self", "/v1/parties", "/v1/oauth-clients", "/v1/notifications"} {
			st, _, auth := w.get(path, access)
			if st != 403 || !strings.Contains(auth, `error="insufficient_scope"`) {
				t.Errorf("GET %s with the token: %d %q, want 403 insufficient_scope", path, st, auth)
			}
		}
		if st, raw, _ := w.send("POST", "/v1/consents", access, w.spec([]string{w.mp1}, "meter_history")); st != 403 {
			t.Errorf("POST /v1/consents with the token: %d %s", st, raw)
		}
		// A refresh token is no access token; garbage is refused.
		for _, bad := range []string{tok.s("refresh_token"), "fho_at_garbage"} {
			if st, _, auth := w.get(w.read(w.mp1), bad); st != 401 || !strings.Contains(auth, "invalid_token") {
				t.Errorf("bearer %q: %d %q", bad[:7], st, auth)
			}
		}
		// An expired token.
		saved := w.now
		w.now = w.now.Add(time.Hour + time.Second)
		if st, body, _ := w.get(w.read(w.mp1), access); st != 401 || !strings.Contains(body, "expired") {
			t.Errorf("an expired access token: %d %s", st, body)
		}
		w.now = saved
	})

	t.Run("resource series: the token has no operator basis", func(t *testing.T) {
		// The aggregator operates a heat pump behind mp2 and a battery
		// behind mp1: its API key reads both series (fsp_operator); a
		// token of a consent for mp1 reads only the battery's.
		tok := w.tokens(w.mp1, "meter_history")
		for _, tc := range []struct {
			mp   string
			want int
		}{{w.mp2, 403}, {w.mp1, 200}} {
			var r flexhub.Resource
			w.do("POST", "/v1/resources", w.agg, unitBody("unit at "+tc.mp, tc.mp), 201, &r)
			w.confirm(w.house, &r)
			w.do("POST", "/v1/meter-readings", w.agg, map[string]any{"readings": []map[string]any{{"resource_id": r.ID, "quantity": "active_energy", "flow": "import",
				"resolution": "PT15M", "start": w.day.Format(time.RFC3339), "value": "0.5", "unit": "kWh"}}}, 200, nil)
			path := "/v1/meter-readings?resource_id=" + r.ID + "&quantity=active_energy&flow=import&resolution=PT15M&from=" +
				url.QueryEscape(w.day.Format(time.RFC3339)) + "&to=" + url.QueryEscape(w.day.Add(time.Hour).Format(time.RFC3339))
			w.do("GET", path, w.agg, nil, 200, nil)
			st, body, _ := w.get(path, tok.s("access_token"))
			if st != tc.want {
				t.Errorf("the token reading the series of a resource behind %s: %d %s, want %d", tc.mp, st, body, tc.want)
			}
			log := w.accessLog()
			last := log[len(log)-1]
			if last.Channel != flexhub.ChannelOAuth || last.MeteringPointID != tc.mp || !strings.Contains(last.What, r.ID) ||
				(tc.want == 200) != (last.Outcome == flexhub.AccessAllowed && last.Basis == flexhub.BasisConsent) {
				t.Errorf("the token's read of the resource series is logged as %+v", last)
			}
		}
	})

	t.Run("bad client registrations", func(t *testing.T) {
		for name, uris := range map[string][]string{
			"relative":    {"/callback"},
			"fragment":    {"https://agg.example/cb#x"},
			"wildcard":    {"https://*.agg.example/cb"},
			"plain http":  {"http://agg.example/cb"},
			"none":        {},
			"custom only": {"javascript:alert(1)"},
		} {
			st, raw, _ := w.send("POST", "/v1/oauth-clients", w.agg, map[string]any{"name": "bad app", "redirect_uris": uris})
			if st != 422 && st != 400 {
				t.Errorf("%s: %d %s", name, st, raw)
			}
		}
		var mine struct{ Items []flexhub.OAuthClient }
		w.do("GET", "/v1/oauth-clients", w.agg, nil, 200, &mine)
		for _, c := range mine.Items {
			if c.Name == "bad app" {
				t.Errorf("a refused registration was stored: %+v", c)
			}
		}
		w.do("GET", "/v1/oauth-clients/"+w.client.ID, w.other, nil, 404, nil)
	})
}
