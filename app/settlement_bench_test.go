package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline/benchdata"
)

// BenchmarkSettlementRun is issue 5's store-backed settlement run
// (docs/BENCHMARKS.md, "Baselines against pandas (issue 5)"): the
// generated data of baseline/benchdata (N resources × 30 days of 15-minute
// net import, the files BenchmarkVersusPandas writes and reads) loaded
// into a fresh store — one FSP's N resources, an x_of_y product (high 4 of
// 5, working days against weekends, Europe/Berlin, default lookback), one
// completed activation order per resource over the event window and one
// per earlier event day of the resource (so day matching leaves those days
// out, as the data says), every reading through Tx.PutMeterReadings in
// large batches (not timed; printed) — then ONE RunSettlement over the
// event day, timed: wall, CPU (getrusage of this process: SQLite is in it,
// PostgreSQL's server is not) and peak resident set of this process during
// the run (VmHWM after resetting it through /proc/self/clear_refs) with the
// Go heap allocated by the run, and the time of its phases: reading the
// meter data and computing baselines and verifications ("verify"), the
// statements, the writes (the commit is the rest). In the same invocation
// pandas (scripts/baseline_pandas.py --filter-first, its cheaper variant,
// with --method= the product's method only) runs on the same file; the
// benchmark fails unless pandas agrees with the engine (benchdata.Compare)
// and every verification of the run has the engine's baseline, chosen
// days, measured intervals and energy and delivered energy.
//
//	FLEXHUB_SETTLEMENT_BENCH_SIZES=1000 go test ./app/ -run '^$' -bench SettlementRun -benchtime=1x -count=3
//
// Sizes default to 1000 (FLEXHUB_SETTLEMENT_BENCH_SIZES=1000,10000);
// PostgreSQL runs when FLEXHUB_TEST_POSTGRES is set.
func BenchmarkSettlementRun(b *testing.B) {
	sizes := []int{1000}
	if s := os.Getenv("FLEXHUB_SETTLEMENT_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("FLEXHUB_SETTLEMENT_BENCH_SIZES: %q is not a number of resources", f)
			}
			sizes = append(sizes, n)
		}
	}
	kinds := []string{"sqlite"}
	if os.Getenv("FLEXHUB_TEST_POSTGRES") != "" {
		kinds = append(kinds, "postgres")
	}
	for _, n := range sizes {
		for _, kind := range kinds {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) { benchSettlementRun(b, kind, n) })
		}
	}
}

// settleBenchDir is the folder benchdata's benchmark caches the data of n
// resources × 30 days in (its naming; seed 5).
func settleBenchDir(b *testing.B, n int) string {
	root := os.Getenv("FLEXHUB_BASELINE_BENCH_DIR")
	if root == "" {
		root = filepath.Join(os.TempDir(), "flexhub-baseline-bench")
	}
	dir := filepath.Join(root, fmt.Sprintf("v%d-n%d-d%d-seed%d", benchdata.Version, n, 30, 5))
	if _, err := os.Stat(filepath.Join(dir, benchdata.MetaFile)); err != nil {
		b.Skipf("no generated data in %s (%v): run FLEXHUB_BASELINE_BENCH_SIZES=%d go test -run '^$' -bench VersusPandas -benchtime=1x ./baseline/benchdata/ once", dir, err, n)
	}
	return dir
}

func benchSettlementRun(b *testing.B, kind string, n int) {
	if b.N != 1 {
		b.Skip("one settlement run per invocation: use -benchtime=1x")
	}
	ctx := context.Background()
	dir := settleBenchDir(b, n)
	d, err := benchdata.Read(dir)
	if err != nil {
		b.Fatal(err)
	}
	if d.Meta.Resources != n {
		b.Fatalf("%s holds %d resources, want %d", dir, d.Meta.Resources, n)
	}
	// The engine's outcomes (not timed): what the run must reproduce.
	// One method: the product's (pandas computes the same one only).
	methods := benchdata.Methods[:1] // high 4 of 5
	engine, err := benchdata.Run(d, methods)
	if err != nil {
		b.Fatal(err)
	}
	loc, err := d.Location()
	if err != nil {
		b.Fatal(err)
	}
	w, err := d.Window()
	if err != nil {
		b.Fatal(err)
	}

	store := benchStore(b, kind, "fh_settlebench")
	svc := New(store, nil)
	eventDay := w.Start.Truncate(24 * time.Hour)
	now := eventDay.Add(25 * time.Hour)
	svc.SetClock(func() time.Time { return now })
	ic, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, ic.Token)
	if err != nil {
		b.Fatal(err)
	}
	party := func(stem string, role flexhub.Role) *flexhub.Party {
		c, err := svc.CreateParty(WithActor(ctx, admin), flexhub.PartySpec{EIC: flexhub.EICFromStem(stem), Name: stem, Roles: []flexhub.Role{role}}, "")
		if err != nil {
			b.Fatal(err)
		}
		return c.Object
	}
	tso, fsp := party("10XSETTLEBTSO", flexhub.RoleTSO), party("10XSETTLEBFSP", flexhub.RoleFSP)
	brp, supplier := party("10XSETTLEBBRP", flexhub.RoleBRP), party("10XSETTLEBSUP", flexhub.RoleSupplier)
	dso, consumer := party("10XSETTLEBDSO", flexhub.RoleDSO), party("10XSETTLEBCON", flexhub.RoleConsumer)
	tol := 10
	m := methods[0]
	prod, err := svc.CreateProduct(WithActor(ctx, tso), flexhub.ProductSpec{Name: "Evening peak", Service: "congestion_management",
		Direction: "up", PowerType: "active", MinBidSize: flexhub.KW(1), TimeResolution: "PT15M", FullActivationTime: "PT5M",
		ActivationMode: "manual", AckDeadline: "PT1M", DeliveryTolerance: &tol, Remuneration: []string{"energy"}, BaselineMethod: "x_of_y",
		Baseline:   &flexhub.BaselineSpec{TimeZone: d.Meta.TZ, X: m.X, Y: m.Y, DayType: "weekday_weekend"},
		Settlement: &flexhub.SettlementSpec{ActivationPrice: &flexhub.Money{Amount: "120.00", Currency: "EUR"}}}, "")
	if err != nil {
		b.Fatal(err)
	}

	// Load (not timed): resources and orders, then the readings.
	t0 := time.Now()
	created := eventDay.Add(-40 * 24 * time.Hour)
	ids := make([]string, n)
	byResource := map[string]int{}
	order := func(res string, start, end time.Time) *flexhub.ActivationOrder {
		return &flexhub.ActivationOrder{ID: flexhub.NewID(), Type: flexhub.OrderActivate, SystemOperatorID: tso.ID, FSPID: fsp.ID, ResourceID: res,
			ProductID: prod.Object.ID, Direction: "up", Unit: "W", Setpoints: []flexhub.Setpoint{{Start: start, End: end, Quantity: 1000}},
			Status: flexhub.OrderCompleted, AckDeadline: start, Sends: 1, Tracking: []flexhub.OrderEvent{}, Version: 1, CreatedAt: start.Add(-time.Hour), UpdatedAt: end}
	}
	var events int
	if err := store.Update(ctx, func(tx flexhub.Tx) error {
		ca := &flexhub.ControlArea{ID: flexhub.NewID(), CreatedAt: created,
			ControlAreaSpec: flexhub.ControlAreaSpec{EIC: flexhub.EICFromStem("10YSETTLEBCA"), Name: "Control area", TSOID: tso.ID}}
		ga := &flexhub.GridArea{ID: flexhub.NewID(), CreatedAt: created,
			GridAreaSpec: flexhub.GridAreaSpec{EIC: flexhub.EICFromStem("10YSETTLEBGA"), Name: "Grid area", DSOID: dso.ID, ControlAreaID: ca.ID}}
		cp := &flexhub.ConnectionPoint{ID: flexhub.NewID(), DSOID: dso.ID, CreatedAt: created, UpdatedAt: created,
			ConnectionPointSpec: flexhub.ConnectionPointSpec{Code: "BENCHCP", GridAreaID: ga.ID, NodeRef: "LV bus", VoltageKV: 0.4, Capacity: flexhub.KW(100_000)}}
		if err := tx.CreateControlArea(ctx, ca); err != nil {
			return err
		}
		if err := tx.CreateGridArea(ctx, ga); err != nil {
			return err
		}
		if err := tx.CreateConnectionPoint(ctx, cp); err != nil {
			return err
		}
		var orders []*flexhub.ActivationOrder
		for r := range n {
			mp := &flexhub.MeteringPoint{ID: flexhub.NewID(), DSOID: dso.ID, CreatedAt: created, UpdatedAt: created,
				MeteringPointSpec: flexhub.MeteringPointSpec{Code: fmt.Sprintf("BENCHMP%08d", r), ConnectionPointID: cp.ID, ConsumerID: consumer.ID,
					SupplierID: supplier.ID, BRPID: brp.ID, Direction: "consumption"},
				Assignments: []flexhub.MarketAssignment{{SupplierID: supplier.ID, BRPID: brp.ID, ValidFrom: created}}}
			if err := tx.CreateMeteringPoint(ctx, mp); err != nil {
				return err
			}
			res := &flexhub.Resource{ID: flexhub.NewID(), FSPID: fsp.ID, DSOID: dso.ID, Status: flexhub.ResourceActive, ValidFrom: created, CreatedAt: created,
				ResourceSpec: flexhub.ResourceSpec{Name: fmt.Sprintf("household %d", r), Kind: flexhub.ResourceUnit, UnitType: "battery", MeteringPointID: mp.ID, ConnectionPointID: cp.ID, OwnerID: consumer.ID,
					Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(2), MaxDown: flexhub.KW(2)}}}
			if err := tx.CreateResource(ctx, res); err != nil {
				return err
			}
			ids[r], byResource[res.ID] = res.ID, r
			orders = append(orders, order(res.ID, w.Start, w.End))
			for _, day := range d.Excluded[r] {
				s := time.Date(day.Year, day.Month, day.Day, w.Start.In(loc).Hour(), w.Start.In(loc).Minute(), 0, 0, loc).UTC()
				orders = append(orders, order(res.ID, s, s.Add(w.End.Sub(w.Start))))
				events++
			}
			if len(orders) >= 1000 {
				if err := tx.CreateActivationOrders(ctx, orders); err != nil {
					return err
				}
				orders = orders[:0]
			}
		}
		return tx.CreateActivationOrders(ctx, orders)
	}); err != nil {
		b.Fatal(err)
	}
	tOrders := time.Since(t0)

	const batch = 200_000
	step := time.Duration(d.Meta.StepSeconds) * time.Second
	vals := make([]flexhub.MeterValue, 0, batch)
	readings := 0
	flush := func() {
		if len(vals) == 0 {
			return
		}
		if err := store.Update(ctx, func(tx flexhub.Tx) error {
			_, err := tx.PutMeterReadings(ctx, vals, now, fsp.ID, flexhub.NewID())
			return err
		}); err != nil {
			b.Fatal(err)
		}
		readings += len(vals)
		vals = vals[:0]
	}
	for r := range n {
		key := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: ids[r], Quantity: flexhub.QuantityActiveEnergy,
			Flow: flexhub.FlowImport, Resolution: step}
		s := d.Series(r)
		for i, v := range s.Values {
			if s.Missing[i] {
				continue
			}
			if v < 0 {
				b.Fatalf("resource %d interval %d: negative net import %d (the benchmark stores import only)", r, i, v)
			}
			vals = append(vals, flexhub.MeterValue{Series: key, Start: s.Start.Add(time.Duration(i) * step), Value: v})
			if len(vals) == batch {
				flush()
			}
		}
	}
	flush()
	tLoad := time.Since(t0)
	b.Logf("%s N=%d: loaded %d resources, %d orders (%d on earlier event days) in %.1f s, %d readings in %.1f s (%.0f readings/s)",
		kind, n, n, n+events, events, tOrders.Seconds(), readings, (tLoad - tOrders).Seconds(), float64(readings)/(tLoad-tOrders).Seconds())

	// pandas on the same file (a process of its own), checked against the
	// engine.
	pd := runPandas(b, dir, m.Name)
	f, err := os.Open(pd.out)
	if err != nil {
		b.Fatal(err)
	}
	agree, err := benchdata.Compare(f, methods, engine)
	f.Close()
	if err != nil {
		b.Fatalf("flexhub's engine and pandas disagree: %v", err)
	}

	// The run, timed.
	d, engineHigh := nil, engine[0]
	engine = nil
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("resetting the peak resident set: %v", err)
	}
	rssBefore := vmKiB(b, "VmRSS:")
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuSec(b)
	phases := map[string]time.Duration{}
	svc.settleTrace = func(phase string, took time.Duration) { phases[phase] += took }
	b.ResetTimer()
	run, err := svc.RunSettlement(WithActor(ctx, tso), flexhub.SettlementRunSpec{PeriodStart: eventDay, PeriodEnd: eventDay.Add(24 * time.Hour)}, "")
	b.StopTimer()
	wall := b.Elapsed()
	cpu := cpuSec(b) - cpu0
	peak := vmKiB(b, "VmHWM:")
	runtime.ReadMemStats(&ms1)
	if err != nil {
		b.Fatal(err)
	}

	// Every verification as the engine computed it.
	if len(run.Object.Verifications) != n {
		b.Fatalf("the run verified %d orders, want %d", len(run.Object.Verifications), n)
	}
	var vs []*flexhub.Verification
	if err := store.View(ctx, func(tx flexhub.Tx) error {
		vs, err = listAll(func(pg flexhub.Page) ([]*flexhub.Verification, string, error) {
			return tx.ListVerifications(ctx, flexhub.Filter{"run_id": run.Object.ID}, pg)
		})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if len(vs) != n {
		b.Fatalf("%d verifications stored, want %d", len(vs), n)
	}
	noBaseline := 0
	for _, v := range vs {
		r, ok := byResource[v.ResourceID]
		if !ok {
			b.Fatalf("verification of unknown resource %s", v.ResourceID)
		}
		if err := sameAsEngine(v, &engineHigh[r]); err != nil {
			b.Fatalf("resource %d: %v", r, err)
		}
		if v.Verdict == flexhub.VerifyNoBaseline {
			noBaseline++
		}
	}
	b.ReportMetric(cpu, "cpu-s")
	b.ReportMetric(float64(peak)/1024, "peak-MiB")
	b.ReportMetric(float64(peak-rssBefore)/1024, "peak-delta-MiB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/(1<<20), "alloc-MiB")
	b.ReportMetric(pd.ComputeS, "pandas-compute-s")
	b.ReportMetric(pd.ComputeS+pd.ReadS, "pandas-s")
	b.ReportMetric(pd.ComputeCPUS, "pandas-cpu-s")
	b.ReportMetric(float64(pd.MaxRSSKiB)/1024, "pandas-peak-MiB")
	b.ReportMetric((pd.ReadS+pd.ComputeS)/wall.Seconds(), "ratio-pandas/run")
	b.ReportMetric(pd.ComputeCPUS/cpu, "ratio-cpu")
	b.ReportMetric(phases["verify"].Seconds(), "verify-s")
	b.ReportMetric((pd.ReadS+pd.ComputeS)/phases["verify"].Seconds(), "ratio-pandas/verify")
	b.Logf("%s N=%d: run %.2f s wall (read + baselines + verification %.2f s, statements %.2f s, writes %.2f s, commit and the rest %.2f s), %.2f s CPU, peak RSS %d MiB (%d MiB before), Go heap allocated %d MiB; %d verifications (%d no_baseline) equal to the engine; "+
		"pandas read %.2f s + compute %.2f s (CPU %.2f s), peak %d MiB, agreeing on %d resource x method baselines (%d without history)",
		kind, n, wall.Seconds(), phases["verify"].Seconds(), phases["statements"].Seconds(), phases["write"].Seconds(),
		(wall - phases["verify"] - phases["statements"] - phases["write"]).Seconds(), cpu, peak/1024, rssBefore/1024, (ms1.TotalAlloc-ms0.TotalAlloc)>>20, len(vs), noBaseline,
		pd.ReadS, pd.ComputeS, pd.ComputeCPUS, pd.MaxRSSKiB/1024, agree.Baselines, agree.NoHistory)
}

// sameAsEngine checks one verification against the engine's outcome for
// its resource: the same baseline per interval of the window (or none for
// the same reason), the same chosen days, the same intervals measured and
// energy, and delivered = baseline − measured summed the same.
func sameAsEngine(v *flexhub.Verification, o *benchdata.Outcome) error {
	if o.Rule != "" {
		if v.Verdict != flexhub.VerifyNoBaseline {
			return fmt.Errorf("engine: %s; run: verdict %s", o.Rule, v.Verdict)
		}
		return nil
	}
	if len(v.Intervals) != len(o.Baseline) {
		return fmt.Errorf("%d intervals verified, engine's window has %d", len(v.Intervals), len(o.Baseline))
	}
	var measured int
	var mwh, delivered int64
	for i, iv := range v.Intervals {
		if iv.Baseline == nil || *iv.Baseline != o.Baseline[i] {
			return fmt.Errorf("interval %d: baseline %v, engine %d", i, iv.Baseline, o.Baseline[i])
		}
		if iv.Measured != nil {
			measured++
			mwh += *iv.Measured
			delivered += iv.Delivered
		}
	}
	if measured != o.Measured || mwh != o.MeasuredMWh || delivered != o.Delivered {
		return fmt.Errorf("measured %d intervals %d mWh, delivered %d; engine %d, %d, %d", measured, mwh, delivered, o.Measured, o.MeasuredMWh, o.Delivered)
	}
	var chosen []string
	for _, c := range o.Chosen {
		chosen = append(chosen, c.String())
	}
	got := slices.Clone(v.BaselineDays)
	slices.Sort(got)
	slices.Sort(chosen)
	if !slices.Equal(got, chosen) {
		return fmt.Errorf("baseline days %v, engine %v", got, chosen)
	}
	return nil
}

type pandasRun struct {
	ReadS       float64 `json:"read_s"`
	ComputeS    float64 `json:"compute_s"`
	ComputeCPUS float64 `json:"compute_cpu_s"`
	MaxRSSKiB   int64   `json:"maxrss_kib"`
	out         string
}

// runPandas runs scripts/baseline_pandas.py --filter-first on dir.
func runPandas(b *testing.B, dir, methodName string) pandasRun {
	py := os.Getenv("FLEXHUB_PANDAS_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if err := exec.Command(py, "-c", "import pandas").Run(); err != nil {
		b.Skipf("%s cannot import pandas (%v): apt-get install -y python3-pandas", py, err)
	}
	out := filepath.Join(b.TempDir(), "pandas.csv")
	cmd := exec.Command(py, "../scripts/baseline_pandas.py", dir, out, "--filter-first", "--method="+methodName)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("pandas: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var p pandasRun
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &p); err != nil {
		b.Fatalf("pandas: %v in %q", err, stdout.String())
	}
	p.out = out
	return p
}

func cpuSec(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// vmKiB reads one field (VmHWM:, VmRSS:) of /proc/self/status, KiB.
func vmKiB(b *testing.B, field string) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
