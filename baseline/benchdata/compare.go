package benchdata

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Agreement is what Compare found.
type Agreement struct {
	Baselines int // resource × method pairs with a baseline on both sides
	NoHistory int // pairs both sides found too little history for
	Intervals int // baseline intervals compared
	Exact     int // of them, equal after rounding pandas' mean half away from zero
}

// Compare checks the pandas script's CSV (scripts/baseline_pandas.py)
// against the engine's outcomes (out[m][r], Run with methods): the same
// resources without a baseline; the same chosen days; every baseline
// interval within 1 mWh once pandas' float mean is rounded half away from
// zero; the same number of measured intervals and measured energy; and
// pandas' delivered energy (from its float baseline) within half a mWh per
// measured interval, plus any rounding difference, of the engine's. The
// first disagreement is an error naming the resource and method.
func Compare(pandasCSV io.Reader, methods []Method, out [][]Outcome) (Agreement, error) {
	var a Agreement
	cr := csv.NewReader(pandasCSV)
	header, err := cr.Read()
	if err != nil {
		return a, fmt.Errorf("pandas results: %w", err)
	}
	want := []string{"method", "resource", "rule", "chosen", "baseline", "measured", "measured_mwh", "delivered_mwh"}
	if !slices.Equal(header, want) {
		return a, fmt.Errorf("pandas results: header %q, expected %q", header, want)
	}
	mi := map[string]int{}
	for i, m := range methods {
		mi[m.Name] = i
	}
	seen := make([][]bool, len(methods))
	for i := range seen {
		seen[i] = make([]bool, len(out[i]))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a, fmt.Errorf("pandas results: %w", err)
		}
		line, _ := cr.FieldPos(0)
		m, ok := mi[rec[0]]
		r, err := strconv.Atoi(rec[1])
		if !ok || err != nil || r < 0 || r >= len(out[m]) || seen[m][r] {
			return a, fmt.Errorf("pandas results line %d: unknown or repeated method and resource %q, %q", line, rec[0], rec[1])
		}
		seen[m][r] = true
		g := out[m][r]
		where := fmt.Sprintf("resource %d, %s", r, rec[0])
		if rec[2] != g.Rule {
			return a, fmt.Errorf("%s: pandas says %q, flexhub %q (empty: a baseline)", where, rec[2], g.Rule)
		}
		if g.Rule != "" {
			a.NoHistory++
			continue
		}
		a.Baselines++
		gc := make([]string, len(g.Chosen))
		for i, d := range g.Chosen {
			gc[i] = d.String()
		}
		if chosen := strings.Split(rec[3], ";"); !slices.Equal(chosen, gc) {
			return a, fmt.Errorf("%s: pandas chose %v, flexhub %v", where, chosen, gc)
		}
		vals := strings.Split(rec[4], ";")
		if len(vals) != len(g.Baseline) {
			return a, fmt.Errorf("%s: pandas has %d baseline intervals, flexhub %d", where, len(vals), len(g.Baseline))
		}
		var slack float64 // rounding differences, mWh
		for i, s := range vals {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return a, fmt.Errorf("%s: baseline interval %d: %w", where, i, err)
			}
			p := int64(math.Round(f)) // half away from zero
			d := p - g.Baseline[i]
			if d < -1 || d > 1 {
				return a, fmt.Errorf("%s: interval %d: pandas %s mWh, flexhub %d mWh", where, i, s, g.Baseline[i])
			}
			a.Intervals++
			if d == 0 {
				a.Exact++
			}
			slack += math.Abs(float64(d))
		}
		n, err1 := strconv.Atoi(rec[5])
		mwh, err2 := strconv.ParseInt(rec[6], 10, 64)
		del, err3 := strconv.ParseFloat(rec[7], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return a, fmt.Errorf("%s: measured %q, measured_mwh %q, delivered_mwh %q are not numbers", where, rec[5], rec[6], rec[7])
		}
		if n != g.Measured || mwh != g.MeasuredMWh {
			return a, fmt.Errorf("%s: pandas measured %d intervals, %d mWh; flexhub %d, %d mWh", where, n, mwh, g.Measured, g.MeasuredMWh)
		}
		if math.Abs(del-float64(g.Delivered)) > 0.5*float64(n)+slack+1e-6 {
			return a, fmt.Errorf("%s: pandas delivered %s mWh, flexhub %d mWh", where, rec[7], g.Delivered)
		}
	}
	for m := range seen {
		if i := slices.Index(seen[m], false); i >= 0 {
			return a, fmt.Errorf("pandas results: no row for resource %d, %s", i, methods[m].Name)
		}
	}
	return a, nil
}
