package gridops

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/powerflow"
)

// shared finds ../shared/data from the repository root.
func shared(t testing.TB, parts ...string) string {
	t.Helper()
	d := filepath.Join(append([]string{"..", "..", "shared", "data"}, parts...)...)
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("shared data not found at %s: %v", d, err)
	}
	return d
}

func pandapower(t testing.TB, name string) *grid.Network {
	t.Helper()
	f, err := os.Open(shared(t, "grids", "pandapower", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := grid.ReadPandapower(f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func analyser(t testing.TB, n *grid.Network, lim Limits) *Analyser {
	t.Helper()
	m, err := powerflow.Compile(n)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(m, lim, powerflow.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func rural1Dir(t testing.TB) string { return shared(t, "grids", "simbench", "1-LV-rural1--0-no_sw") }

// rural1Day is the SimBench grid's own day with the largest noon export
// (its PV), as the CLI picks by default.
func rural1Day(t testing.TB) (*Analyser, []*State) {
	t.Helper()
	fsys := os.DirFS(rural1Dir(t))
	n, err := grid.ReadSimBench(fsys)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ReadSimBenchProfiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	_, noon := sp.Extremes(n)
	f, err := sp.Forecast(n, Argmax(noon), Scaling{Gen: 3})
	if err != nil {
		t.Fatal(err)
	}
	a := analyser(t, n, Limits{})
	st, err := a.Day(f)
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

// schutterwaldDay is lv_schutterwald on the SGSC households' worst
// evening with the scenario the CLI uses by default.
func schutterwaldDay(t testing.TB) (*Analyser, []*State) {
	t.Helper()
	n := pandapower(t, "lv_schutterwald")
	sc := defaultHouseholdScenario(t)
	f, err := sc.Forecast(n)
	if err != nil {
		t.Fatal(err)
	}
	a := analyser(t, n, Limits{})
	st, err := a.Day(f)
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

func defaultHouseholdScenario(t testing.TB) HouseholdScenario {
	t.Helper()
	f, err := os.Open(shared(t, "meter", "sgsc_25_households_halfhourly.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	hh, err := ReadSGSC(z)
	if err != nil {
		t.Fatal(err)
	}
	day, err := hh.EveningPeakDay()
	if err != nil {
		t.Fatal(err)
	}
	kw, err := hh.DayKW(day)
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.Open(shared(t, "meter", "ausgrid_solar_home_customer12_2011-2012.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sh, err := ReadAusgridSolarHome(g)
	if err != nil {
		t.Fatal(err)
	}
	pd, err := sh.SameDay(day)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := sh.DayPerKWp(pd)
	if err != nil {
		t.Fatal(err)
	}
	return HouseholdScenario{Start: day, HouseholdsKW: kw, PVPerKWp: pv, PVShare: 0.3, PVKWp: 5}
}

var _ = time.Second
