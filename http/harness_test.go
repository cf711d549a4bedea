package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/sqlite"
)

// env is a running API over a real SQLite store in a temp dir.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	svc   *app.Service
	admin string // the administrator's API key
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "flexhub.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, store)
}

// newEnvOn is newEnv on a given store (closed when the test ends).
func newEnvOn(t *testing.T, store flexhub.Store) *env {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() { store.Close() })
	svc := app.New(store, nil)
	admin, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fhttp.NewServer(svc, nil, "test"))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, svc: svc, admin: admin.Token}
}

// eic builds a valid EIC from a 15-character stem (padded with '-').
func eic(stem string) string { return flexhub.EICFromStem(stem) }

// party registers a party with the given roles (as admin) and returns its
// id and a fresh API key.
func (e *env) party(name string, roles ...string) (id, token string) {
	e.t.Helper()
	var p flexhub.Party
	e.do("POST", "/v1/parties", e.admin, map[string]any{"eic": eic("10X" + strings.ToUpper(name)), "name": name, "roles": roles}, 201, &p)
	var c app.IssuedCredential
	e.do("POST", "/v1/parties/"+p.ID+"/credentials", e.admin, map[string]any{"label": "test"}, 201, &c)
	return p.ID, c.Token
}

// do sends a JSON request, checks the status and decodes the body into out
// (if not nil). It returns the raw body and the response headers.
func (e *env) do(method, path, token string, body any, want int, out any, headers ...string) (string, http.Header) {
	e.t.Helper()
	status, raw, h := e.send(method, path, token, body, headers...)
	if status != want {
		e.t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return raw, h
}

func (e *env) send(method, path, token string, body any, headers ...string) (int, string, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw), res.Header
}

// scenario is one API call and what must and must not be in its answer.
type scenario struct {
	name        string
	method      string
	path        string
	token       string
	body        any
	headers     []string // name, value, name, value...
	wantStatus  int
	wantBody    []string // fragments that must appear
	notWantBody []string // fragments that must not appear
}

func (e *env) run(scenarios []scenario) {
	e.t.Helper()
	for _, sc := range scenarios {
		e.t.Run(sc.name, func(t *testing.T) {
			status, raw, h := e.send(sc.method, sc.path, sc.token, sc.body, sc.headers...)
			if status != sc.wantStatus {
				t.Fatalf("status %d, want %d; body: %s", status, sc.wantStatus, raw)
			}
			if status >= 400 && !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Errorf("error content type %q, want application/problem+json", h.Get("Content-Type"))
			}
			for _, w := range sc.wantBody {
				if !strings.Contains(raw, w) {
					t.Errorf("body lacks %q: %s", w, raw)
				}
			}
			for _, w := range sc.notWantBody {
				if strings.Contains(raw, w) {
					t.Errorf("body must not contain %q: %s", w, raw)
				}
			}
		})
	}
}

// auditCount returns how many audit entries exist (as admin).
func (e *env) auditCount() int64 {
	var r flexhub.ChainReport
	e.do("GET", "/v1/audit/verify", e.admin, nil, 200, &r)
	if !r.OK {
		e.t.Fatalf("audit chain broken: %+v", r)
	}
	return r.Entries
}

// onBothStores runs test on an API over a fresh SQLite store and over a
// fresh PostgreSQL schema (skipped without FLEXHUB_TEST_POSTGRES).
func onBothStores(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "flexhub.db"), true)
		if err != nil {
			t.Fatal(err)
		}
		test(t, newEnvOn(t, s))
	})
	t.Run("postgres", func(t *testing.T) { test(t, newEnvOn(t, openPostgres(t))) })
}
