package http_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/sqlite"
)

// TestOperationalEndpoints: liveness, readiness and Prometheus metrics are
// open to the operator's probes; the metrics count API calls by route.
func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t)
	e.do("GET", "/v1/me", e.admin, nil, 200, nil)
	for _, c := range []struct{ path, want string }{
		{"/healthz", `"ok"`},
		{"/readyz", `"ready"`},
		{"/metrics", `flexhub_http_requests_total{operation="GET /v1/me",status="200"} 1`},
	} {
		status, body, _ := e.send("GET", c.path, "", nil)
		if status != 200 || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d, want 200 with %q; got %.300s", c.path, status, c.want, body)
		}
	}
}

// TestReadyzReportsAClosedStore: a load balancer must stop sending traffic
// when the store is gone.
func TestReadyzReportsAClosedStore(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "f.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fhttp.NewServer(app.New(store, nil), nil, "test"))
	defer srv.Close()
	store.Close()
	e := &env{t: t, srv: srv}
	if status, _, _ := e.send("GET", "/readyz", "", nil); status != 503 {
		t.Fatalf("readyz with a closed store: %d, want 503", status)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeniedCallsAreLogged: every refused call leaves a log line with who
// tried what, for the operator's security monitoring.
func TestDeniedCallsAreLogged(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t)
	e.srv.Config.Handler = fhttp.NewServer(e.svc, slog.New(slog.NewTextHandler(&logs, nil)), "test")
	fsp, fspKey := e.party("aggregator", "fsp")
	e.do("GET", "/v1/me", "", nil, 401, nil)
	e.do("POST", "/v1/parties", fspKey, map[string]any{"eic": eic("10XNEW"), "name": "n", "roles": []string{"fsp"}}, 403, nil)
	out := logs.String()
	if !strings.Contains(out, "denied: no credential") || !strings.Contains(out, "path=/v1/me") {
		t.Errorf("the unauthenticated call is not logged: %s", out)
	}
	if !strings.Contains(out, "msg=denied") || !strings.Contains(out, "party="+fsp) || !strings.Contains(out, "path=/v1/parties") || !strings.Contains(out, "status=403") {
		t.Errorf("the forbidden call is not logged with party, path and status: %s", out)
	}
}
