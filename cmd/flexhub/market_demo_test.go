package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestMarketDemo runs `flexhub demo` in a fresh directory: the register is
// loaded, the day's needs, sessions and bids go in, the gates close, both
// sessions clear, and the outcome prints as tables and as JSON.
func TestMarketDemo(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join("..", "..", "..", "shared", "data")
	getenv := func(string) string { return "" }
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"demo", "--data-dir", dir, "--shared-data", shared}, getenv, &out, &errb); err != nil {
		t.Fatalf("flexhub demo: %v\n%s\n%s", err, out.String(), errb.String())
	}
	text := out.String()
	for _, want := range []string{"LV rural congestion, day ahead", "mFRR capacity, day ahead", "cleared", "cost to the buyer", "Sunny Storage Aggregator", "HeatFlex Aggregator", "excluded"} {
		if !strings.Contains(text, want) {
			t.Errorf("the printed outcome lacks %q:\n%s", want, text)
		}
	}
	// A second run in the same directory plays another day on the same
	// register, this time for machines.
	out.Reset()
	if err := run(context.Background(), []string{"demo", "--data-dir", dir, "--shared-data", shared, "--json"}, getenv, &out, &errb); err != nil {
		t.Fatalf("flexhub demo --json: %v\n%s", err, errb.String())
	}
	var report DayReport
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out.String())
	}
	if len(report.Sessions) != 2 {
		t.Fatalf("%d sessions in the JSON report", len(report.Sessions))
	}
	for _, s := range report.Sessions {
		if s.Status != "cleared" || len(s.Needs) != 1 || len(s.Bids) != 2 {
			t.Errorf("session %q: status %s, %d needs, %d bids", s.Name, s.Status, len(s.Needs), len(s.Bids))
		}
		var accepted int64
		for _, iv := range s.Needs[0].Intervals {
			accepted += iv.Accepted
			if iv.Accepted+iv.Shortfall < iv.Demand {
				t.Errorf("%s at %s: accepted %d + shortfall %d < demand %d", s.Name, iv.Start, iv.Accepted, iv.Shortfall, iv.Demand)
			}
		}
		if accepted == 0 {
			t.Errorf("%s bought nothing", s.Name)
		}
	}
}
