package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/postgres/pgtest"
	"github.com/flexhub/flexhub/sqlite"
)

// BenchmarkResourceRegistration measures resource registrations per second
// through the HTTP API (authentication, validation, one transaction with
// the audit append) on SQLite and, when FLEXHUB_TEST_POSTGRES is set, on
// PostgreSQL, one client and 8 concurrent clients. The baseline in the
// same run is an authenticated GET /v1/me (HTTP, authentication and one
// read, no write), so registrations can be read as a ratio to it:
//
//	FLEXHUB_TEST_POSTGRES=postgres://... go test ./http/ -run '^$' -bench ResourceRegistration -benchtime 2000x
func BenchmarkResourceRegistration(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) flexhub.Store
	}{
		{"sqlite", func(b *testing.B) flexhub.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), true)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", openBenchPostgres},
	}
	for _, st := range stores {
		for _, clients := range []int{1, 8} {
			for _, op := range []string{"register", "baseline-get-me"} {
				b.Run(fmt.Sprintf("%s/%s/clients=%d", st.name, op, clients), func(b *testing.B) {
					store := st.open(b)
					defer store.Close()
					benchRegister(b, store, clients, op == "register")
				})
			}
		}
	}
}

func openBenchPostgres(b *testing.B) flexhub.Store { return openPostgres(b) }

// openPostgres opens a store in a fresh schema of FLEXHUB_TEST_POSTGRES, or
// skips (fails under CI=true) without it.
func openPostgres(b testing.TB) flexhub.Store { return pgtest.Open(b, "fh_bench") }

type benchClient struct {
	b    *testing.B
	base string
}

func (c *benchClient) post(path, key string, body any, out any) {
	buf, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.base+path, bytes.NewReader(buf))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.b.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 {
		c.b.Fatalf("POST %s: %d %s", path, res.StatusCode, raw)
	}
	if out != nil {
		json.Unmarshal(raw, out)
	}
}

func (c *benchClient) get(path, key string) {
	req, _ := http.NewRequest("GET", c.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.b.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		c.b.Fatalf("GET %s: %d", path, res.StatusCode)
	}
}

func benchRegister(b *testing.B, store flexhub.Store, clients int, register bool) {
	ctx := context.Background()
	svc := app.New(store, nil)
	admin, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
	defer srv.Close()
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = 64
	c := &benchClient{b: b, base: srv.URL}
	type idOut struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	party := func(name string, roles ...string) (string, string) {
		var p, k idOut
		c.post("/v1/parties", admin.Token, map[string]any{"eic": eic("10X" + strings.ToUpper(name)), "name": name, "roles": roles}, &p)
		c.post("/v1/parties/"+p.ID+"/credentials", admin.Token, map[string]any{}, &k)
		return p.ID, k.Token
	}
	_, tsoKey := party("tso", "tso")
	_, dsoKey := party("dso", "dso")
	_, fspKey := party("fsp", "fsp")
	consumer, _ := party("consumer", "consumer")
	var ca, ga, cp, mp idOut
	c.post("/v1/control-areas", tsoKey, map[string]any{"eic": eic("10YBENCHCA"), "name": "ca"}, &ca)
	c.post("/v1/grid-areas", dsoKey, map[string]any{"eic": eic("10YBENCHGA"), "name": "ga", "control_area_id": ca.ID}, &ga)
	c.post("/v1/connection-points", dsoKey, map[string]any{"code": "CP", "grid_area_id": ga.ID, "node_ref": "bus 1"}, &cp)
	c.post("/v1/metering-points", dsoKey, map[string]any{"code": "MP", "connection_point_id": cp.ID, "consumer_id": consumer}, &mp)
	body := map[string]any{"name": "battery", "kind": "unit", "unit_type": "battery", "metering_point_id": mp.ID,
		"technical": map[string]any{"max_up": map[string]any{"value": 5, "unit": "kW"}, "max_down": map[string]any{"value": 5, "unit": "kW"}}}

	op := func() { c.post("/v1/resources", fspKey, body, nil) }
	if !register {
		op = func() { c.get("/v1/me", fspKey) }
	}
	b.ResetTimer()
	if clients == 1 {
		for i := 0; i < b.N; i++ {
			op()
		}
	} else {
		// RunParallel starts GOMAXPROCS × parallelism goroutines; divide so
		// that exactly `clients` send at once.
		b.SetParallelism(max(1, clients/max(1, runtime.GOMAXPROCS(0))))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
