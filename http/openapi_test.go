package http_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestOpenAPI checks the served document and keeps docs/openapi.json, the
// copy a reader finds in the repository, equal to what the code generates:
// run `go test ./http/ -run OpenAPI -update` after changing an operation.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	status, raw, h := e.send("GET", "/openapi.json", "", nil)
	if status != 200 || !strings.Contains(h.Get("Content-Type"), "json") {
		t.Fatalf("GET /openapi.json: %d %s", status, h.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Security   []map[string][]string                 `json:"security"`
		Components struct {
			SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	if len(doc.Security) == 0 || doc.Components.SecuritySchemes["bearer"] == nil {
		t.Errorf("every operation must require the bearer API key")
	}
	for _, p := range []string{"/v1/parties", "/v1/resources/{id}", "/v1/prequalifications/{id}/decision", "/v1/contracts/{id}/termination", "/v1/audit/verify"} {
		if doc.Paths[p] == nil {
			t.Errorf("path %s missing from the OpenAPI document", p)
		}
	}
	// Every operation the mux answers is in the document: probe each
	// documented path unauthenticated; a route that exists answers 401
	// (never 404), which also proves none is public.
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for method := range doc.Paths[p] {
			url := strings.NewReplacer("{id}", "01a213c2-bc66-72cb-a753-4fda913fcce1").Replace(p)
			if st, body, _ := e.send(strings.ToUpper(method), url, "", nil); st != 401 {
				t.Errorf("%s %s without a key: %d %s", strings.ToUpper(method), p, st, body)
			}
		}
	}

	golden := filepath.Join("..", "docs", "openapi.json")
	var pretty map[string]any
	json.Unmarshal([]byte(raw), &pretty)
	out, _ := json.MarshalIndent(pretty, "", "  ")
	out = append(out, '\n')
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./http/ -run OpenAPI -update)", err)
	}
	if string(want) != string(out) {
		t.Fatalf("docs/openapi.json is out of date: run go test ./http/ -run OpenAPI -update")
	}
}
