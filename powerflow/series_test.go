package powerflow

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flexhub/flexhub/grid"
)

// dayShape reads the first day (96 quarter-hours) of a SimBench profile
// column: real relative load or generation values.
func dayShape(t testing.TB, file, column string) []float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(simbenchDir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	col := -1
	for i, h := range strings.Split(strings.TrimSpace(lines[0]), ";") {
		if h == column {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("%s has no column %s", file, column)
	}
	out := make([]float64, 96)
	for k := range out {
		f := strings.Split(strings.TrimSpace(lines[1+k]), ";")
		v, err := strconv.ParseFloat(f[col], 64)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// dayOf scales the network's loads by a household profile and its
// generators by a PV profile over 96 intervals.
func dayOf(t testing.TB, m *Model, n *grid.Network) []Interval {
	load := dayShape(t, "LoadProfile.csv", "H0-A_pload")
	pv := dayShape(t, "RESProfile.csv", "PV5")
	idx := n.BusIndex()
	day := make([]Interval, 96)
	for k := range day {
		p := make([]float64, len(n.Buses))
		q := make([]float64, len(n.Buses))
		for _, l := range n.Loads {
			p[idx[l.Bus]] -= l.PMW * load[k]
			q[idx[l.Bus]] -= l.QMvar * load[k]
		}
		for _, g := range n.Gens {
			p[idx[g.Bus]] += g.PMW * pv[k]
		}
		day[k] = Interval{PMW: p, QMvar: q}
	}
	return day
}

// A warm-started day gives the same voltages as solving every interval
// from scratch (to well within the 1e-8 MVA mismatch tolerance, which on
// a 1 MVA base allows voltage differences of order 1e-8 p.u.), in fewer
// Newton steps.
func TestRunSeriesMatchesColdStarts(t *testing.T) {
	dir := simbenchDir(t)
	n, err := grid.ReadSimBench(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile(n)
	if err != nil {
		t.Fatal(err)
	}
	day := dayOf(t, m, n)
	res, err := m.RunSeries(day, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 96 {
		t.Fatalf("%d results", len(res))
	}
	warm, cold := 0, 0
	lo, hi := 2.0, 0.0
	for k, iv := range day {
		c, err := m.Solve(iv.PMW, iv.QMvar, Options{})
		if err != nil {
			t.Fatal(err)
		}
		warm += res[k].Iterations
		cold += c.Iterations
		for i := range c.Buses {
			if d := math.Abs(c.Buses[i].VmPU - res[k].Buses[i].VmPU); d > 1e-7 {
				t.Fatalf("interval %d bus %s: warm %.9f, cold %.9f", k, c.Buses[i].ID, res[k].Buses[i].VmPU, c.Buses[i].VmPU)
			}
			lo, hi = math.Min(lo, c.Buses[i].VmPU), math.Max(hi, c.Buses[i].VmPU)
		}
	}
	t.Logf("96 intervals: %d Newton steps warm, %d cold; voltages %.4f..%.4f p.u.", warm, cold, lo, hi)
	if warm > cold {
		t.Errorf("warm start took more steps (%d) than cold starts (%d)", warm, cold)
	}
}

func BenchmarkSnapshotSchutterwald(b *testing.B) {
	m, _ := solveBase(b, loadPandapower(b, "lv_schutterwald.json"))
	p, q := m.BaseInjections()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Solve(p, q, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDay96Schutterwald(b *testing.B) {
	n := loadPandapower(b, "lv_schutterwald.json")
	m, _ := solveBase(b, n)
	day := dayOf(b, m, n)
	b.ResetTimer()
	steps := 0
	for b.Loop() {
		res, err := m.RunSeries(day, Options{})
		if err != nil {
			b.Fatal(err)
		}
		steps = 0
		for _, r := range res {
			steps += r.Iterations
		}
	}
	b.ReportMetric(float64(steps), "newton-steps/op")
}

// The baseline for the warm start: the same 96 intervals, each solved
// from the model's own start.
func BenchmarkDay96ColdSchutterwald(b *testing.B) {
	n := loadPandapower(b, "lv_schutterwald.json")
	m, _ := solveBase(b, n)
	day := dayOf(b, m, n)
	b.ResetTimer()
	steps := 0
	for b.Loop() {
		steps = 0
		for _, iv := range day {
			r, err := m.Solve(iv.PMW, iv.QMvar, Options{})
			if err != nil {
				b.Fatal(err)
			}
			steps += r.Iterations
		}
	}
	b.ReportMetric(float64(steps), "newton-steps/op")
}

// Compile (admittance matrix, minimum-degree order, symbolic LU) is paid
// once per grid version.
func BenchmarkCompileSchutterwald(b *testing.B) {
	n := loadPandapower(b, "lv_schutterwald.json")
	for b.Loop() {
		if _, err := Compile(n); err != nil {
			b.Fatal(err)
		}
	}
}
