package benchdata

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub/baseline"
)

func TestQuartersKeepEachHalfHoursEnergy(t *testing.T) {
	var hh [48]int64
	for i := range hh {
		hh[i] = int64(i%7) * 137_001 // steps up and down, odd values
	}
	hh[20], hh[21], hh[22] = 0, 1_000_000, 0 // a spike next to zeros
	var q [96]int64
	quarters(&hh, q[:])
	for i, e := range hh {
		if q[2*i]+q[2*i+1] != e {
			t.Errorf("half hour %d: quarters %d + %d, want %d", i, q[2*i], q[2*i+1], e)
		}
		if q[2*i] < 0 || q[2*i+1] < 0 {
			t.Errorf("half hour %d: negative quarter %d, %d", i, q[2*i], q[2*i+1])
		}
	}
	// rising power: the first quarter of a half hour between a lower and a
	// higher one gets less than the second
	if hh[1] <= hh[0] || hh[2] <= hh[1] || q[2] >= q[3] {
		t.Errorf("ramp: half hours %d, %d, %d give quarters %d, %d", hh[0], hh[1], hh[2], q[2], q[3])
	}
}

func testData(t *testing.T, n int) *Data {
	t.Helper()
	d, err := Generate(loadProfiles(t), Config{Resources: n, Days: 30, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGenerateIsDeterministicPerResource(t *testing.T) {
	a, b := testData(t, 40), testData(t, 40)
	if !slices.Equal(a.Values, b.Values) || !slices.Equal(a.Missing, b.Missing) {
		t.Fatal("the same config gave different data")
	}
	small := testData(t, 7)
	k := small.Meta.Intervals * 7
	if !slices.Equal(small.Values, a.Values[:k]) || !slices.Equal(small.Missing, a.Missing[:k]) ||
		fmt.Sprint(small.Meta.Excluded) != fmt.Sprint(a.Meta.Excluded[:7]) {
		t.Fatal("resources 0-6 differ between a data set of 7 and one of 40")
	}
	other, err := Generate(loadProfiles(t), Config{Resources: 40, Days: 30, Seed: 12})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(other.Values, a.Values) {
		t.Fatal("another seed gave the same data")
	}
}

func TestGenerateShape(t *testing.T) {
	d := testData(t, 300)
	if d.Meta.Intervals != 30*96 || len(d.Values) != 300*30*96 {
		t.Fatalf("%d intervals per resource, %d values; want 2880 and %d", d.Meta.Intervals, len(d.Values), 300*2880)
	}
	if d.Meta.EventDay != "2026-11-30" {
		t.Errorf("event day %s, want the period's last working day 2026-11-30", d.Meta.EventDay)
	}
	missing := 0
	for i, m := range d.Missing {
		if m {
			missing++
			if d.Values[i] != 0 {
				t.Fatalf("value %d is missing but holds %d", i, d.Values[i])
			}
		} else if d.Values[i] < 0 {
			t.Fatalf("value %d is negative: %d", i, d.Values[i])
		}
	}
	// runs of 1 to 8 started at 1 in 1,000 intervals, plus outages of 8-15
	// days for about 1 in 100 resources
	if share := float64(missing) / float64(len(d.Missing)); share < 0.002 || share > 0.03 {
		t.Errorf("%.2f %% of the readings missing", 100*share)
	}
	event, _ := baseline.ParseDate(d.Meta.EventDay)
	withExcluded := 0
	for r := range d.Meta.Resources {
		ex := d.Excluded[r]
		if len(ex) != len(d.Meta.Excluded[r]) {
			t.Fatalf("resource %d: %d event days parsed of %d", r, len(ex), len(d.Meta.Excluded[r]))
		}
		if len(ex) > 0 {
			withExcluded++
		}
		for _, e := range ex {
			if wd := e.Weekday(); wd == time.Saturday || wd == time.Sunday || !e.Before(event) {
				t.Errorf("resource %d: event day %s is not a working day before %s", r, e, event)
			}
		}
	}
	if withExcluded < 100 || withExcluded > 280 {
		t.Errorf("%d of 300 resources have earlier event days", withExcluded)
	}
	// the households' evening peak: more energy in the event window than
	// in the same hours of the night, summed over every resource's
	// non-event working days
	w, err := d.Window()
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Start.In(time.UTC).Format("15:04"); got != "16:00" {
		t.Errorf("window starts %s UTC, want 16:00 (17:00 Berlin, winter time)", got)
	}
	from := int(w.Start.Sub(d.Meta.Start) / Step)
	var evening, night int64
	for r := range d.Meta.Resources {
		s := d.Series(r)
		for day := 1; day < 20; day++ {
			e := from - day*96
			evening += sum(s.Values[e : e+12])
			night += sum(s.Values[e-56 : e-44]) // 03:00-06:00
		}
	}
	if evening <= night {
		t.Errorf("evening %d mWh, night %d mWh: the household shapes are lost", evening, night)
	}
}

func sum(v []int64) (t int64) {
	for _, x := range v {
		t += x
	}
	return t
}

func TestWriteRead(t *testing.T) {
	d := testData(t, 20)
	dir := t.TempDir()
	if err := d.Write(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Values, d.Values) || !slices.Equal(back.Missing, d.Missing) ||
		!back.Meta.Start.Equal(d.Meta.Start) || fmt.Sprint(back.Meta.Excluded) != fmt.Sprint(d.Meta.Excluded) ||
		fmt.Sprint(back.Excluded) != fmt.Sprint(d.Excluded) {
		t.Fatal("the data read back differs from the data written")
	}
	// a truncated data file is refused, not read short
	path := filepath.Join(dir, DataFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "bytes, expected") {
		t.Fatalf("a truncated file: %v", err)
	}
}

// TestRunExercisesTheRules checks the data set makes every eligibility
// rule matter, so that agreeing with pandas means something: resources
// whose own event days, incomplete days and missing history change their
// baselines.
func TestRunExercisesTheRules(t *testing.T) {
	d := testData(t, 600)
	out, err := Run(d, Methods)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := d.Location()
	w, _ := d.Window()
	reasons := map[string]int{}
	for r := range d.Meta.Resources {
		ex := d.Excluded[r]
		res, err := baseline.DayMatch(d.Series(r), w, baseline.DayMatching{X: 10, Y: 10, Location: loc, Excluded: ex})
		if err != nil {
			reasons["error"]++
			if out[1][r].Rule != baseline.RuleInsufficientHistory {
				t.Errorf("resource %d: DayMatch says %v, Run %+v", r, err, out[1][r])
			}
			continue
		}
		for _, day := range res.Days {
			reasons[day.Reason]++
		}
		if !slices.Equal(res.Values, out[1][r].Baseline) {
			t.Errorf("resource %d: Run's 10-of-10 baseline differs from DayMatch's", r)
		}
	}
	for _, r := range []string{baseline.ReasonDayType, baseline.ReasonExcluded, baseline.ReasonIncomplete, "error"} {
		if reasons[r] == 0 {
			t.Errorf("no day was left out for %q (%v)", r, reasons)
		}
	}
	// verification: activated resources consume less than their baseline
	var delivered, measured int64
	for _, o := range out[1] {
		delivered += o.Delivered
		measured += o.MeasuredMWh
	}
	if delivered <= 0 || delivered > measured {
		t.Errorf("delivered %d mWh against %d mWh measured; the event's 10-40 %% cut should show", delivered, measured)
	}
}

// pandasCSV writes outcomes in the pandas script's format, as exact
// floats.
func pandasCSV(methods []Method, out [][]Outcome) []byte {
	var b bytes.Buffer
	b.WriteString("method,resource,rule,chosen,baseline,measured,measured_mwh,delivered_mwh\n")
	for m, meth := range methods {
		for r, o := range out[m] {
			if o.Rule != "" {
				fmt.Fprintf(&b, "%s,%d,%s,,,,,\n", meth.Name, r, o.Rule)
				continue
			}
			vals := make([]string, len(o.Baseline))
			for i, v := range o.Baseline {
				vals[i] = fmt.Sprintf("%d.0", v)
			}
			chosen := make([]string, len(o.Chosen))
			for i, d := range o.Chosen {
				chosen[i] = d.String()
			}
			fmt.Fprintf(&b, "%s,%d,,%s,%s,%d,%d,%d.0\n", meth.Name, r, strings.Join(chosen, ";"), strings.Join(vals, ";"), o.Measured, o.MeasuredMWh, o.Delivered)
		}
	}
	return b.Bytes()
}

func TestCompareFindsEachDisagreement(t *testing.T) {
	d := testData(t, 60)
	out, err := Run(d, Methods)
	if err != nil {
		t.Fatal(err)
	}
	good := pandasCSV(Methods, out)
	a, err := Compare(bytes.NewReader(good), Methods, out)
	if err != nil {
		t.Fatalf("identical results: %v", err)
	}
	if a.Baselines+a.NoHistory != 120 || a.Exact != a.Intervals || a.Intervals != a.Baselines*12 {
		t.Fatalf("identical results: %+v", a)
	}
	// a resource with a baseline, and its row in the CSV
	r := slices.IndexFunc(out[0], func(o Outcome) bool { return o.Rule == "" && o.Measured > 0 })
	row := fmt.Sprintf("high4of5,%d,,", r)
	cut := func(f func(string) string) []byte {
		lines := strings.Split(string(good), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, row) {
				lines[i] = f(l)
			}
		}
		return []byte(strings.Join(lines, "\n"))
	}
	o := out[0][r]
	cases := map[string][]byte{
		"another chosen day": cut(func(l string) string {
			return strings.Replace(l, o.Chosen[0].String(), "2026-11-02", 1)
		}),
		"a baseline 2 mWh off": cut(func(l string) string {
			return strings.Replace(l, fmt.Sprintf(",%d.0;", o.Baseline[0]), fmt.Sprintf(",%d.0;", o.Baseline[0]+2), 1)
		}),
		"no baseline": cut(func(l string) string {
			return fmt.Sprintf("high4of5,%d,%s,,,,,", r, baseline.RuleInsufficientHistory)
		}),
		"another measured energy": cut(func(l string) string {
			return strings.Replace(l, fmt.Sprintf(",%d,%d,", o.Measured, o.MeasuredMWh), fmt.Sprintf(",%d,%d,", o.Measured, o.MeasuredMWh+1), 1)
		}),
		"delivered off": cut(func(l string) string {
			return strings.Replace(l, fmt.Sprintf(",%d.0", o.Delivered), fmt.Sprintf(",%d.0", o.Delivered+int64(o.Measured)+13), 1)
		}),
		"a missing row": cut(func(string) string { return "" }),
	}
	for name, csv := range cases {
		if bytes.Equal(csv, good) {
			t.Fatalf("%s: the case changed nothing", name)
		}
		_, err := Compare(bytes.NewReader(csv), Methods, out)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("resource %d", r)) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// half a mWh either way rounds to the same baseline: agreement
	tol := cut(func(l string) string {
		return strings.Replace(l, fmt.Sprintf(",%d.0;", o.Baseline[0]), fmt.Sprintf(",%d.4;", o.Baseline[0]), 1)
	})
	if _, err := Compare(bytes.NewReader(tol), Methods, out); err != nil {
		t.Errorf("pandas 0.4 mWh above: %v", err)
	}
}

// TestAgreesWithPandas runs the pandas script on a small data set and
// compares (skipped without Debian's python3-pandas; the benchmark does
// the same at full size).
func TestAgreesWithPandas(t *testing.T) {
	py := pandasPython(t)
	dir := t.TempDir()
	if err := testData(t, 600).Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, ff := range []bool{false, true} {
		_, _, a := versusPandas(t, dir, py, ff)
		if a.Baselines < 1000 || a.NoHistory == 0 {
			t.Errorf("filter first %v: %+v", ff, a)
		}
	}
}
