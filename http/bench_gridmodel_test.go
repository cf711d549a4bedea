package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/grid"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/powerflow"
	"github.com/flexhub/flexhub/sqlite"
)

// BenchmarkGridModelPowerFlow measures a base-case power flow of
// lv_schutterwald (2,940 buses) through the API on SQLite, with every
// element in the answer (1.4 MB of JSON) and with ?summary=true, against
// the baseline in the same run: powerflow.Model.Solve on the compiled
// model in process (what the API adds: authentication, the model's reads,
// the answer's JSON, HTTP). upload is one POST of the 1.6 MB file (parse,
// validate, compile, gzip, store).
//
//	go test ./http/ -run '^$' -bench GridModelPowerFlow -count 3
func BenchmarkGridModelPowerFlow(b *testing.B) {
	file, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "grids", "pandapower", "lv_schutterwald.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline-solve", func(b *testing.B) {
		net, err := grid.ReadPandapower(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		m, err := powerflow.Compile(net)
		if err != nil {
			b.Fatal(err)
		}
		p, q := m.BaseInjections()
		b.ResetTimer()
		for range b.N {
			if _, err := m.Solve(p, q, powerflow.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// setup: a DSO with a grid area, over HTTP on a fresh SQLite store.
	setup := func(b *testing.B) (base, dsoKey, gaID string) {
		store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), true)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		svc := app.New(store, nil)
		admin, err := svc.Bootstrap(context.Background(), "")
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
		b.Cleanup(srv.Close)
		c := &benchClient{b: b, base: srv.URL}
		type idOut struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		party := func(name string, roles ...string) string {
			var p, k idOut
			c.post("/v1/parties", admin.Token, map[string]any{"eic": eic("10X" + strings.ToUpper(name)), "name": name, "roles": roles}, &p)
			c.post("/v1/parties/"+p.ID+"/credentials", admin.Token, map[string]any{}, &k)
			return k.Token
		}
		tsoKey, dsoKey := party("tso", "tso"), party("dso", "dso")
		var ca, ga idOut
		c.post("/v1/control-areas", tsoKey, map[string]any{"eic": eic("10YBENCHCA"), "name": "ca"}, &ca)
		c.post("/v1/grid-areas", dsoKey, map[string]any{"eic": eic("10YBENCHGA"), "name": "ga", "control_area_id": ca.ID}, &ga)
		return srv.URL, dsoKey, ga.ID
	}
	post := func(b *testing.B, url, key string, body []byte, want int) []byte {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if bytes.HasPrefix(body, []byte("{}")) {
			req.Header.Set("Content-Type", "application/json")
		} // the upload goes without, as curl --data-binary sends it
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			b.Fatalf("POST %s: %d %.300s", url, res.StatusCode, raw)
		}
		return raw
	}
	b.Run("upload", func(b *testing.B) {
		base, key, ga := setup(b)
		b.ResetTimer()
		for range b.N {
			post(b, base+"/v1/grid-areas/"+ga+"/grid-models?format=pandapower", key, file, 201)
		}
	})
	for _, q := range []string{"", "?summary=true"} {
		name := "api-full"
		if q != "" {
			name = "api-summary"
		}
		b.Run(name, func(b *testing.B) {
			base, key, ga := setup(b)
			var up struct{ Model struct{ ID string } }
			if err := json.Unmarshal(post(b, base+"/v1/grid-areas/"+ga+"/grid-models?format=pandapower", key, file, 201), &up); err != nil {
				b.Fatal(err)
			}
			url := base + "/v1/grid-models/" + up.Model.ID + "/power-flow" + q
			n := len(post(b, url, key, []byte(`{}`), 200)) // compiles into the cache
			b.ResetTimer()
			for range b.N {
				post(b, url, key, []byte(`{}`), 200)
			}
			b.ReportMetric(float64(n)/1e6, "MB/answer")
		})
	}
}
