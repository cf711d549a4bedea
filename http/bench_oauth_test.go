package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/sqlite"
)

// BenchmarkOAuthRead: a data user reads one day of quarter-hour meter data
// of a consumer's metering point under a consent given on the OAuth
// consent page — with its API key (baseline: the consent found among the
// data user's consents) and with the OAuth access token (the token looked
// up by hash, its consent checked, the token's consent the only basis).
// Both reads are checked and logged. SQLite; the ratio is token/API key.
func BenchmarkOAuthRead(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), true)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	svc := app.New(store, nil)
	svc.SetClock(func() time.Time { return now })
	admin, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
	defer srv.Close()
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, key, ctype, body string, want int) ([]byte, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := browser.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			b.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return raw, res.Header
	}
	post := func(path, key string, body any, want int, out any) {
		buf, _ := json.Marshal(body)
		raw, _ := do("POST", path, key, "application/json", string(buf), want)
		if out != nil {
			json.Unmarshal(raw, out)
		}
	}
	type idOut struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	party := func(name string, roles ...string) (string, string) {
		var p, k idOut
		post("/v1/parties", admin.Token, map[string]any{"eic": eic("10X" + strings.ToUpper(name)), "name": name, "roles": roles}, 201, &p)
		post("/v1/parties/"+p.ID+"/credentials", admin.Token, map[string]any{}, 201, &k)
		return p.ID, k.Token
	}
	_, tso := party("btso", "tso")
	_, dso := party("bdso", "dso")
	_, agg := party("bagg", "fsp")
	house, houseKey := party("bhouse", "consumer")
	var ca, ga, cp, mp idOut
	post("/v1/control-areas", tso, map[string]any{"eic": eic("10YBENCHOA"), "name": "ca"}, 201, &ca)
	post("/v1/grid-areas", dso, map[string]any{"eic": eic("10YBENCHOG"), "name": "ga", "control_area_id": ca.ID}, 201, &ga)
	post("/v1/connection-points", dso, map[string]any{"code": "CP", "grid_area_id": ga.ID, "node_ref": "bus 1"}, 201, &cp)
	post("/v1/metering-points", dso, map[string]any{"code": "MP", "connection_point_id": cp.ID, "consumer_id": house}, 201, &mp)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var readings []map[string]any
	for i := range 96 {
		readings = append(readings, map[string]any{"metering_point_id": mp.ID, "quantity": "active_energy", "flow": "import", "resolution": "PT15M",
			"start": day.Add(time.Duration(i) * 15 * time.Minute).Format(time.RFC3339), "value": "0.25", "unit": "kWh"})
	}
	post("/v1/meter-readings", dso, map[string]any{"readings": readings}, 200, nil)

	// The consent, through the OAuth flow.
	var client struct {
		ID string `json:"client_id"`
	}
	post("/v1/oauth-clients", agg, map[string]any{"name": "bench app", "redirect_uris": []string{oauthRedirect}}, 201, &client)
	verifier, challenge := newPKCE()
	form := url.Values{"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {oauthRedirect}, "scope": {"meter_history"}, "state": {"s"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "metering_point_ids": {mp.ID}, "purpose": {"benchmark"},
		"valid_to": {now.Add(24 * time.Hour).Format(time.RFC3339)}, "decision": {"approve"}, "party_id": {house}, "api_key": {houseKey}}
	_, h := do("POST", "/oauth/authorize", "", "application/x-www-form-urlencoded", form.Encode(), http.StatusSeeOther)
	loc, _ := url.Parse(h.Get("Location"))
	raw, _ := do("POST", "/oauth/token", "", "application/x-www-form-urlencoded", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {oauthRedirect}, "client_id": {client.ID}, "code_verifier": {verifier}}.Encode(), 200)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(raw, &tok)

	path := "/v1/meter-readings?metering_point_id=" + mp.ID + "&quantity=active_energy&flow=import&resolution=PT15M&from=" +
		url.QueryEscape(day.Format(time.RFC3339)) + "&to=" + url.QueryEscape(day.Add(24*time.Hour).Format(time.RFC3339))
	for _, bc := range []struct{ name, key string }{{"api_key_consent", agg}, {"oauth_token", tok.AccessToken}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				do("GET", path, bc.key, "", "", 200)
			}
		})
	}
}
