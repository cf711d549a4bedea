package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rural1Dir = filepath.Join("..", "..", "..", "shared", "data", "grids", "simbench", "1-LV-rural1--0-no_sw")

// `flexhub grid analyse` on the SimBench rural grid with three times its
// PV: the noon transformer overload is found, one downward need removes
// it, hosting capacities come over the day and the study cases, and the
// SVG is written.
func TestGridAnalyseSimBench(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "day.svg")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"grid", "analyse", "--grid", rural1Dir, "--gen-scale", "3", "--json", "--quiet",
		"--hosting", "LV1.101 Bus 13", "--svg", svg}, os.Getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var rep gridReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Intervals) != 96 || rep.ViolatedIntervals == 0 {
		t.Fatalf("%d intervals, %d violated", len(rep.Intervals), rep.ViolatedIntervals)
	}
	violated := 0
	for _, iv := range rep.Intervals {
		if len(iv.Violations) > 0 {
			violated++
			if iv.MaxLoadingPercent <= 100 {
				t.Errorf("%s: violations %v at loading %.1f %%", iv.Start, iv.Violations, iv.MaxLoadingPercent)
			}
		}
	}
	if violated != rep.ViolatedIntervals || len(rep.Needs) == 0 {
		t.Fatalf("%d violated intervals counted, %d reported, %d needs", violated, rep.ViolatedIntervals, len(rep.Needs))
	}
	for _, n := range rep.Needs {
		if n.Direction != "down" || n.Limiting.Kind != "trafo" || !n.Resolved || n.Quantity <= 0 {
			t.Errorf("need %+v", n)
		}
	}
	if len(rep.Hosting) != 2 || len(rep.Hosting[0].Capacities) != 4 || rep.Hosting[1].Over != "study cases" {
		t.Fatalf("hosting %+v", rep.Hosting)
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("<polyline")) {
		t.Errorf("svg: %v %.80s", err, b)
	}

	stdout.Reset()
	if err := run(context.Background(), []string{"grid", "analyse", "--grid", rural1Dir, "--quiet"}, os.Getenv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "0 of 96 intervals violate a limit") || !strings.Contains(stdout.String(), "No flexibility need") {
		t.Errorf("the grid's own data (no violation):\n%s", stdout.String())
	}
}

func TestGridAnalyseBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"grid"}, "usage: flexhub grid analyse"},
		{[]string{"grid", "analyse", "--grid", "/no/such/grid", "--quiet"}, "--grid"},
		{[]string{"grid", "analyse", "--grid", rural1Dir, "--kind", "apparent", "--quiet"}, `--kind "apparent"`},
		{[]string{"grid", "analyse", "--grid", rural1Dir, "--day", "27.07.2016", "--quiet"}, "YYYY-MM-DD"},
		{[]string{"grid", "analyse", "--grid", rural1Dir, "--day", "2020-01-01", "--quiet"}, "do not cover the day 2020-01-01"},
		{[]string{"grid", "analyse", "--grid", rural1Dir, "--hosting", "LV1.101 Bus 99", "--quiet"}, `unknown bus "LV1.101 Bus 99"`},
		{[]string{"grid", "analyse", "--grid", rural1Dir, "--vmin", "1.2", "--quiet"}, "voltage band"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, os.Getenv, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
