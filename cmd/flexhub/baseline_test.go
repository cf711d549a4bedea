package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexhub/flexhub"
)

var sgscFile = filepath.Join("..", "..", "..", "shared", "data", "meter", "sgsc_25_households_halfhourly.csv.gz")

// `flexhub baseline evaluate` on the 25 real households: it refuses the
// file's daylight-saving rows by line number, goes on with --skip-bad,
// prints a summary row per method and adjustment, and writes one outcome
// per customer, day, method and adjustment whose actual energy is the
// file's own sum over the window.
func TestBaselineEvaluateHouseholds(t *testing.T) {
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"baseline", "evaluate", "--tz", "Australia/Sydney", "--out", "", sgscFile}, os.Getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "line 11470: 2012-10-07 02:00:00 does not exist in Australia/Sydney") ||
		!strings.Contains(err.Error(), "--skip-bad") {
		t.Fatalf("without --skip-bad: %v", err)
	}

	out := filepath.Join(t.TempDir(), "eval.csv")
	stdout.Reset()
	err = run(ctx, []string{"baseline", "evaluate", "--tz", "Australia/Sydney", "--skip-bad", "--placebo", "5",
		"--methods", "10/10,4/5", "--adjust", "none,additive", "--out", out, sgscFile}, os.Getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	text := stdout.String()
	for _, want := range []string{"725584 rows, 25 customers, 30m0s intervals", "left out 92 bad rows", "placebo event days",
		"10 of 10", "high 4 of 5", "additive ±20%", "portfolio bias %", "relative RMSE %"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+25*5*4 {
		t.Fatalf("%d outcome rows, want 25 customers x 5 days x 4 method variants", len(rows)-1)
	}
	// the first customer's first outcome: its actual is the raw file's
	// sum over the six half hours from 17:00
	var r []string
	for _, row := range rows[1:] {
		if row[4] != "" {
			r = row
			break
		}
	}
	if r == nil {
		t.Fatal("no outcome with a baseline")
	}
	want := rawWindowSum(t, r[0], r[1])
	got, err := flexhub.ParseMeterValue("actual", r[4], 6)
	if err != nil || got != want {
		t.Errorf("customer %s on %s: actual %s kWh (%d mWh), the file sums to %d mWh", r[0], r[1], r[4], got, want)
	}

	// parameters that make no sense
	for _, args := range [][]string{{"--methods", "6/5"}, {"--window", "20:00-17:00"}, {"--adjust", "multiplicative", "--cap", "0"}, {"--tz", "Mars/Olympus"}} {
		err := run(ctx, append(append([]string{"baseline", "evaluate"}, args...), sgscFile), os.Getenv, &stdout, &stderr)
		if _, ok := err.(usageError); !ok {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// rawWindowSum adds the file's kWh for one customer on one day, 17:00 to
// 19:30 inclusive, by plain string matching.
func rawWindowSum(t *testing.T, customer, day string) int64 {
	t.Helper()
	f, err := os.Open(sgscFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ",")
		if p[0] != customer || !strings.HasPrefix(p[1], day+" ") {
			continue
		}
		if hh := p[1][11:13]; hh == "17" || hh == "18" || hh == "19" {
			v, err := flexhub.ParseMeterValue("kwh", p[2], 6)
			if err != nil {
				t.Fatal(err)
			}
			total += v
		}
	}
	return total
}
