package gridops

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/powerflow"
)

func TestDayBadInput(t *testing.T) {
	n := pandapower(t, "case33bw")
	a := analyser(t, n, Limits{})
	p, q := a.Model().BaseInjections()
	start := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	iv := powerflow.Interval{PMW: p, QMvar: q}

	t.Run("forecast length mismatch names the interval", func(t *testing.T) {
		short := powerflow.Interval{PMW: p[:10], QMvar: q[:10]}
		_, err := a.Day(Forecast{Start: start, Step: Quarter, Intervals: []powerflow.Interval{iv, short}})
		if err == nil || !strings.Contains(err.Error(), "interval 1 (2026-01-15T00:15:00Z): 10 P and 10 Q values for the grid's 33 buses") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no intervals, no step", func(t *testing.T) {
		if _, err := a.Day(Forecast{Start: start, Step: Quarter}); err == nil {
			t.Error("empty forecast accepted")
		}
		if _, err := a.Day(Forecast{Start: start, Intervals: []powerflow.Interval{iv}}); err == nil {
			t.Error("zero step accepted")
		}
	})
	t.Run("a non-converging interval is powerflow's error, no states", func(t *testing.T) {
		p5 := make([]float64, len(p))
		q5 := make([]float64, len(q))
		for i := range p {
			p5[i], q5[i] = 5*p[i], 5*q[i]
		}
		st, err := a.Day(Forecast{Start: start, Step: Quarter, Intervals: []powerflow.Interval{iv, {PMW: p5, QMvar: q5}}})
		var nc *powerflow.NotConvergedError
		if st != nil || !errors.As(err, &nc) || !strings.Contains(err.Error(), "interval 1 of 2") {
			t.Errorf("states %v, error %v", st, err)
		}
		s, err := a.NewState(start, start.Add(Quarter), p5, q5)
		if s != nil || !errors.As(err, &nc) {
			t.Errorf("state %v, error %v", s, err)
		}
	})
	t.Run("bad limits", func(t *testing.T) {
		for _, l := range []Limits{{VMinPU: 1.1, VMaxPU: 0.9}, {VMinPU: 0.9, VMaxPU: 11}, {MaxLoadingPercent: -5}} {
			if _, err := New(a.Model(), l, powerflow.Options{}); err == nil {
				t.Errorf("%+v accepted", l)
			}
		}
	})
	t.Run("unknown candidate bus", func(t *testing.T) {
		_, st := case33bwState(t)
		_, err := st[0].a.NeedsAt(st[0], NeedOptions{Candidates: []string{"17", "170"}})
		if err == nil || !strings.Contains(err.Error(), `unknown bus "170"`) {
			t.Errorf("got %v", err)
		}
	})
}

func TestProfileReadersBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		read           func(string) error
	}{
		{"sgsc header", "id,when,kwh\n1,2013-01-01 00:00:00,0.1\n", "lacks customer_id", sgsc},
		{"sgsc number", "customer_id,reading_datetime,general_supply_kwh\n1,2013-01-01 00:00:00,0,1\n", "line 2", sgsc},
		{"sgsc negative", "customer_id,reading_datetime,general_supply_kwh\n1,2013-01-01 00:00:00,-0.1\n", `"-0.1" is not an energy in kWh`, sgsc},
		{"sgsc time", "customer_id,reading_datetime,general_supply_kwh\n1,01/01/2013 00:00,0.1\n", "line 2: time", sgsc},
		{"ausgrid no GG", ",GC\n2011-07-01 00:00:00,0.3\n", "no GG column", ausgrid},
		{"ausgrid no generation", ",GC,GG\n2011-07-01 00:00:00,0.3,0\n", "no generation", ausgrid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.read(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func sgsc(s string) error    { _, err := ReadSGSC(strings.NewReader(s)); return err }
func ausgrid(s string) error { _, err := ReadAusgridSolarHome(strings.NewReader(s)); return err }

// Holding each half hour's energy over its two quarter hours keeps the
// day's energy: Σ kW · 0.25 h equals the metered kWh.
func TestHouseholdDayKeepsEnergy(t *testing.T) {
	in := "customer_id,reading_datetime,general_supply_kwh\n"
	day := time.Date(2013, 6, 10, 0, 0, 0, 0, time.UTC)
	want := 0.0
	for k := 0; k < 48; k++ {
		v := 0.05 + 0.01*float64(k%7)
		want += v
		in += "7," + day.Add(time.Duration(k)*30*time.Minute).Format("2006-01-02 15:04:05") + "," + strconv.FormatFloat(v, 'f', -1, 64) + "\n"
	}
	h, err := ReadSGSC(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if d := h.CompleteDays(); len(d) != 1 || !d[0].Equal(day) {
		t.Fatalf("complete days %v", d)
	}
	kw, err := h.DayKW(day)
	if err != nil {
		t.Fatal(err)
	}
	got := 0.0
	for _, x := range kw[0] {
		got += x * 0.25
	}
	if d := got - want; d > 1e-9 || d < -1e-9 {
		t.Errorf("energy %.6f kWh, metered %.6f kWh", got, want)
	}
	if _, err := h.DayKW(day.AddDate(0, 0, 1)); err == nil {
		t.Error("a day without readings gave profiles")
	}
}

// The SimBench forecast takes each load's own profile column and scales
// loads and generators separately.
func TestSimBenchForecastUsesEachElementsProfile(t *testing.T) {
	fsys := os.DirFS(rural1Dir(t))
	n, err := grid.ReadSimBench(fsys)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ReadSimBenchProfiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Days()) != 366 {
		t.Errorf("%d days in a 2016 profile year", len(sp.Days()))
	}
	day := sp.Days()[100]
	f, err := sp.Forecast(n, day, Scaling{})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := sp.Forecast(n, day, Scaling{Load: 2, Gen: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Each load follows its own profile column (Load.csv's profile), and
	// scaling is per element kind: buses without a generator scale with
	// the load factor alone.
	idx := n.BusIndex()
	hasGen := map[int]bool{}
	for _, g := range n.Gens {
		hasGen[idx[g.Bus]] = true
	}
	off := sp.dayOffset[day]
	for _, l := range n.Loads {
		b := idx[l.Bus]
		if hasGen[b] {
			continue
		}
		for k := range f.Intervals {
			want := -l.PMW * sp.loadCols[sp.loadProf[l.ID]+"_pload"][off+k]
			if got := f.Intervals[k].PMW[b]; got != want {
				t.Fatalf("load %s interval %d: %v MW, want %v", l.ID, k, got, want)
			}
			if got := f2.Intervals[k].PMW[b]; got != 2*want {
				t.Fatalf("load %s interval %d scaled ×2: %v MW, want %v", l.ID, k, got, 2*want)
			}
		}
	}
	if _, err := sp.Forecast(n, day.AddDate(5, 0, 0), Scaling{}); err == nil {
		t.Error("a day outside the profiles gave a forecast")
	}
	if _, err := sp.Forecast(n, day, Scaling{Load: -1}); err == nil {
		t.Error("negative scaling accepted")
	}
}

// In aggregate mode (MV grids) every load peaks at its own P in the
// households' mean peak interval and the grid's generators follow PV.
func TestAggregateHouseholdForecast(t *testing.T) {
	n := pandapower(t, "mv_oberrhein")
	sc := defaultHouseholdScenario(t)
	sc.Aggregate = true
	f, err := sc.Forecast(n)
	if err != nil {
		t.Fatal(err)
	}
	peak, pk := 0.0, 0
	for k := 0; k < QuarterHours; k++ {
		m := 0.0
		for _, h := range sc.HouseholdsKW {
			m += h[k]
		}
		if m > peak {
			peak, pk = m, k
		}
	}
	idx := n.BusIndex()
	want := make([]float64, len(n.Buses))
	for _, l := range n.Loads {
		want[idx[l.Bus]] -= l.PMW
	}
	for _, g := range n.Gens {
		want[idx[g.Bus]] += g.PMW * sc.PVPerKWp[pk]
	}
	for b, w := range want {
		if d := f.Intervals[pk].PMW[b] - w; d > 1e-12 || d < -1e-12 {
			t.Fatalf("bus %s at the peak %d: %v MW, want %v", n.Buses[b].ID, pk, f.Intervals[pk].PMW[b], w)
		}
	}
}
