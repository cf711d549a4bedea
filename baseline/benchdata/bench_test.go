package benchdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmark against pandas runs both sides as child processes on the
// same data folder, so that each one's peak memory is its own peak
// resident set (VmHWM, which each child reads from /proc/self/status): the engine's side is this
// test binary started again in child mode (childEnv set), which reads the
// data, runs the baselines and verification, prints its timings and
// writes its outcomes as JSON for the parent to compare.
const childEnv = "FLEXHUB_BASELINE_BENCH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := child(dir, os.Getenv(childEnv+"_OUT")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type timings struct {
	ReadS    float64 `json:"read_s"`
	ComputeS float64 `json:"compute_s"`
	// ComputeCPUS is the CPU time (user + system, all threads) the
	// compute took: steadier than ComputeS on a busy machine.
	ComputeCPUS float64 `json:"compute_cpu_s"`
	MaxRSSKiB   int64   `json:"maxrss_kib"`
}

// cpuSeconds is the process's CPU time so far (user + system).
func cpuSeconds() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}

func child(dir, outPath string) error {
	t0 := time.Now()
	d, err := Read(dir)
	if err != nil {
		return err
	}
	c1, err := cpuSeconds()
	if err != nil {
		return err
	}
	t1 := time.Now()
	out, err := Run(d, Methods)
	if err != nil {
		return err
	}
	t2 := time.Now()
	c2, err := cpuSeconds()
	if err != nil {
		return err
	}
	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(out); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	rss, err := peakRSSKiB()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(timings{ReadS: t1.Sub(t0).Seconds(), ComputeS: t2.Sub(t1).Seconds(), ComputeCPUS: c2 - c1, MaxRSSKiB: rss})
}

// sharedData is ../shared/data beside the repository (or
// FLEXHUB_SHARED_DATA).
func sharedData(tb testing.TB) string {
	if d := os.Getenv("FLEXHUB_SHARED_DATA"); d != "" {
		return d
	}
	d, err := filepath.Abs("../../../shared/data")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, HouseholdsFile)); err != nil {
		tb.Skipf("no household data (%v); set FLEXHUB_SHARED_DATA", err)
	}
	return d
}

var (
	profilesOnce sync.Once
	profiles     *Profiles
	profilesErr  error
)

func loadProfiles(tb testing.TB) *Profiles {
	dir := sharedData(tb)
	profilesOnce.Do(func() { profiles, profilesErr = LoadProfiles(dir) })
	if profilesErr != nil {
		tb.Fatal(profilesErr)
	}
	return profiles
}

const benchSeed = 5

// dataDir generates the data set of n resources × days once into a folder
// (FLEXHUB_BASELINE_BENCH_DIR, default the system's temporary folder) and
// reuses it on later runs: generation is not part of what is measured.
func dataDir(tb testing.TB, n, days int) string {
	root := os.Getenv("FLEXHUB_BASELINE_BENCH_DIR")
	if root == "" {
		root = filepath.Join(os.TempDir(), "flexhub-baseline-bench")
	}
	dir := filepath.Join(root, fmt.Sprintf("v%d-n%d-d%d-seed%d", Version, n, days, benchSeed))
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err == nil {
		return dir
	}
	d, err := Generate(loadProfiles(tb), Config{Resources: n, Days: days, Seed: benchSeed})
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Write(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// pandasPython is Debian's python3 with python3-pandas
// (FLEXHUB_PANDAS_PYTHON to use another).
func pandasPython(tb testing.TB) string {
	py := os.Getenv("FLEXHUB_PANDAS_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if err := exec.Command(py, "-c", "import pandas").Run(); err != nil {
		tb.Skipf("%s cannot import pandas (%v): apt-get install -y python3-pandas", py, err)
	}
	return py
}

// runChild runs cmd and decodes the JSON line it prints last into v.
func runChild(tb testing.TB, cmd *exec.Cmd, v any) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s: %v\n%s", cmd.Args[0], err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		tb.Fatalf("%s: %v in %q", cmd.Args[0], err, stdout.String())
	}
}

// peakRSSKiB is this process's peak resident set (VmHWM), KiB. Not
// getrusage's ru_maxrss: Linux carries that over exec from the process
// that started this one (here the benchmark, with its generated data).
func peakRSSKiB() (int64, error) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// versusPandas runs both sides once on dir, checks they agree and returns
// their timings.
func versusPandas(tb testing.TB, dir, py string, filterFirst bool) (eng, pd timings, a Agreement) {
	tmp := tb.TempDir()
	engOut, pdOut := filepath.Join(tmp, "engine.json"), filepath.Join(tmp, "pandas.csv")

	self := exec.Command(os.Args[0], "-test.run=^$")
	self.Env = append(os.Environ(), childEnv+"="+dir, childEnv+"_OUT="+engOut)
	runChild(tb, self, &eng)

	args := []string{"../../scripts/baseline_pandas.py", dir, pdOut}
	if filterFirst {
		args = append(args, "--filter-first")
	}
	var pdT struct {
		timings
		Rows int `json:"rows"`
	}
	runChild(tb, exec.Command(py, args...), &pdT)
	pd = pdT.timings

	raw, err := os.ReadFile(engOut)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]Outcome
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(pdOut)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	a, err = Compare(f, Methods, out)
	if err != nil {
		tb.Fatalf("flexhub and pandas disagree: %v", err)
	}
	return eng, pd, a
}

func benchSizes(tb testing.TB) []int {
	s := os.Getenv("FLEXHUB_BASELINE_BENCH_SIZES")
	if s == "" {
		return []int{100, 1000, 10000}
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			tb.Fatalf("FLEXHUB_BASELINE_BENCH_SIZES: %q is not a number of resources", f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkVersusPandas: for N resources × 30 days, flexhub's engine and
// pandas compute the high 4-of-5 and 10-of-10 baselines of every resource
// and the verification, each in a process of its own, on the same data
// file; the results must agree. Reported: each side's reading and compute
// seconds and peak RSS, and the ratios pandas/flexhub of compute and of
// reading plus compute, and of compute CPU time (user + system: steadier
// on a busy machine, where the wall clock includes waiting for a core).
// Use -benchtime=1x -count=3.
func BenchmarkVersusPandas(b *testing.B) {
	py := pandasPython(b)
	for _, filterFirst := range []bool{false, true} {
		for _, n := range benchSizes(b) {
			pivot := "all"
			if filterFirst {
				pivot = "window"
			}
			b.Run(fmt.Sprintf("pivot=%s/N=%d", pivot, n), func(b *testing.B) {
				dir := dataDir(b, n, 30)
				var eng, pd timings
				var a Agreement
				b.ResetTimer()
				for range b.N {
					eng, pd, a = versusPandas(b, dir, py, filterFirst)
				}
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(eng.ReadS, "go-read-s")
				b.ReportMetric(eng.ComputeS, "go-compute-s")
				b.ReportMetric(float64(eng.MaxRSSKiB)/1024, "go-rss-MiB")
				b.ReportMetric(pd.ReadS, "pd-read-s")
				b.ReportMetric(pd.ComputeS, "pd-compute-s")
				b.ReportMetric(float64(pd.MaxRSSKiB)/1024, "pd-rss-MiB")
				b.ReportMetric(eng.ComputeCPUS, "go-cpu-s")
				b.ReportMetric(pd.ComputeCPUS, "pd-cpu-s")
				b.ReportMetric(pd.ComputeS/eng.ComputeS, "x-compute")
				b.ReportMetric(pd.ComputeCPUS/eng.ComputeCPUS, "x-cpu")
				b.ReportMetric((pd.ReadS+pd.ComputeS)/(eng.ReadS+eng.ComputeS), "x-total")
				b.ReportMetric(float64(a.Baselines), "baselines")
				b.ReportMetric(float64(a.Exact)/float64(a.Intervals), "exact-share")
			})
		}
	}
}

// BenchmarkRun is the engine alone, in process (for profiling):
// baselines and verification of N resources × 30 days.
func BenchmarkRun(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			d, err := Read(dataDir(b, n, 30))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := Run(d, Methods); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/resource")
		})
	}
}
