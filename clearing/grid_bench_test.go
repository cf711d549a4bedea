package clearing

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/powerflow"
)

// The constrained-clearing instance of issue 7 on lv_schutterwald (2,940
// buses, 3,000 lines, 14 transformers, 1,506 buses with loads):
//
//   - evening state of interval t: every load of the file (which has all
//     households at their peak at once) × eveningScale[t]; with 0.6 the
//     transformers reach 86 % and the lowest voltage is 0.8997 p.u.
//     (bus 1362): the grid is close to its limits before any flexibility;
//   - the need: a TSO downward (absorb) need of needMW in every interval —
//     flexhub's bids raise consumption: household batteries charging
//     (3–5 kW), EVs (3.7–11 kW, minimum 1.4 kW), heat pumps switching on
//     (1–3 kW, indivisible); 10,000 bids on random load buses (seeded);
//     prices 20–200 per MWh in minor units;
//   - limits: every line and transformer loading ≤ 100 %, every bus
//     voltage in 0.9–1.1 p.u., linearised at the interval's forecast point
//     (GridRows); elements already beyond a limit may not get worse.
var eveningScale = []float64{0.60, 0.62, 0.64, 0.61}

const needMW = 2.0

type gridInst struct {
	p      *Problem
	m      *powerflow.Model
	pMW    [][]float64 // forecast injections per interval
	qMvar  [][]float64
	limits int // limits considered (lines + trafos + 2 × buses) per interval
}

var (
	gridInstOnce = map[int]*gridInst{}
	gridInstMu   sync.Mutex
)

func schutterwald(t testing.TB) *grid.Network {
	t.Helper()
	path := filepath.Join("..", "..", "shared", "data", "grids", "pandapower", "lv_schutterwald.json")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("grid data not found: %v", err)
	}
	defer f.Close()
	net, err := grid.ReadPandapower(f)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func gridInstance(tb testing.TB, nT, nBids int) *gridInst {
	gridInstMu.Lock()
	defer gridInstMu.Unlock()
	key := nT*1_000_000 + nBids
	if g, ok := gridInstOnce[key]; ok {
		return g
	}
	net := schutterwald(tb)
	m, err := powerflow.Compile(net)
	if err != nil {
		tb.Fatal(err)
	}
	idx := net.BusIndex()
	seen := map[int]bool{}
	var loadBuses []int
	for _, l := range net.Loads {
		if b := idx[l.Bus]; !seen[b] {
			seen[b] = true
			loadBuses = append(loadBuses, b)
		}
	}
	rng := rand.New(rand.NewPCG(2026, uint64(nBids)))
	g := &gridInst{m: m}
	p := &Problem{Demand: make([]int64, nT), Network: &Network{}}
	for range nBids {
		bus := loadBuses[rng.IntN(len(loadBuses))]
		b := Bid{Quantity: make([]int64, nT), Price: make([]int64, nT), Divisible: true}
		var q int64
		switch k := rng.IntN(10); {
		case k < 5: // battery
			q = 3000 + rng.Int64N(2001)
		case k < 8: // EV
			q = 3700 + rng.Int64N(7301)
			b.MinQuantity = 1400
		default: // heat pump
			q = 1000 + rng.Int64N(2001)
			b.Divisible = false
		}
		base := 2000 + rng.Int64N(18001) // minor units per MW per interval
		for t := range nT {
			b.Quantity[t] = q
			b.Price[t] = base + rng.Int64N(500)
		}
		b.ID = fmt.Sprintf("bid%d@%s", len(p.Bids), net.Buses[bus].ID)
		p.Bids = append(p.Bids, b)
		p.Network.Bids = append(p.Network.Bids, NetBid{Bus: bus, Sign: -1})
	}
	var buses []int
	for _, nb := range p.Network.Bids {
		buses = append(buses, nb.Bus)
	}
	for t := range nT {
		p.Demand[t] = int64(needMW * 1e6)
		pm, qm := m.BaseInjections()
		for i := range pm {
			pm[i] *= eveningScale[t]
			qm[i] *= eveningScale[t]
		}
		op, err := m.Solve(pm, qm, powerflow.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		rows, limits, err := GridRows(m, op, t, buses, GridLimits{})
		if err != nil {
			tb.Fatal(err)
		}
		p.Network.Rows = append(p.Network.Rows, rows...)
		g.pMW = append(g.pMW, pm)
		g.qMvar = append(g.qMvar, qm)
		g.limits += limits
	}
	g.p = p
	gridInstOnce[key] = g
	return g
}

// writeNetLP writes a problem with a Network (no links, no groups, no
// Constraints) as a MILP in CPLEX LP format with bus-injection auxiliary
// variables: P_t_bus = Σ sign·x over the bids at the bus (an equality
// row), and each network row as Σ (PPM/10⁶)·P_t_bus (+ Q) within
// [−Down, Up] micro-units — a projection of the identical feasible set in
// x, the coefficients the same integers printed in decimal (exact).
// Divisible quantities are continuous (the network path's model, see
// "Network constraints"), indivisible bids binary, minimum quantities a
// binary with m·y ≤ x ≤ q·y. Objective Σ price·x +
// M·Σ shortfall as in writeLP. Returns M.
func writeNetLP(w io.Writer, p *Problem) int64 {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	nT := len(p.Demand)
	var maxP int64
	for _, b := range p.Bids {
		for t, q := range b.Quantity {
			if q > 0 {
				maxP = max(maxP, b.Price[t])
			}
		}
	}
	M := 1000 * (maxP + 1)
	dec := func(v int64) string { // " + v/10⁶" or " - |v|/10⁶", exactly
		s := " +"
		if v < 0 {
			s, v = " -", -v
		}
		return fmt.Sprintf("%s %d.%06d", s, v/1_000_000, v%1_000_000)
	}
	type term struct {
		c string
		v string
	}
	cover := make([][]term, nT)
	var obj []term
	var rows, bounds, binaries []string
	inj := map[string][]term{} // P_t_bus / Q_t_bus → terms
	var injNames []string
	for bi, b := range p.Bids {
		nb := p.Network.Bids[bi]
		for t, q := range b.Quantity {
			if q == 0 || len(p.MaxPrice) > 0 && p.MaxPrice[t] > 0 && b.Price[t] > p.MaxPrice[t] {
				continue
			}
			gap := int64(0)
			if !b.Divisible {
				gap = q
			} else if m := min(b.MinQuantity, q); m > 1 {
				gap = m
			}
			var x string
			coef := int64(1)
			if gap == q {
				x = fmt.Sprintf("y%d_%d", bi, t)
				binaries = append(binaries, x)
				coef = q
			} else {
				x = fmt.Sprintf("x%d_%d", bi, t)
				bounds = append(bounds, fmt.Sprintf(" 0 <= %s <= %d", x, q))
				if gap > 0 {
					y := fmt.Sprintf("y%d_%d", bi, t)
					binaries = append(binaries, y)
					rows = append(rows, fmt.Sprintf(" %s - %d %s >= 0", x, gap, y), fmt.Sprintf(" %s - %d %s <= 0", x, q, y))
				}
			}
			obj = append(obj, term{fmt.Sprint(b.Price[t] * coef), x})
			cover[t] = append(cover[t], term{fmt.Sprint(coef), x})
			kind := "P"
			if nb.Reactive {
				kind = "Q"
			}
			name := fmt.Sprintf("%s%d_%d", kind, t, nb.Bus)
			if _, ok := inj[name]; !ok {
				injNames = append(injNames, name)
			}
			inj[name] = append(inj[name], term{fmt.Sprint(int64(nb.Sign) * coef), x}) // written negated below
		}
	}
	fmt.Fprintln(bw, "Minimize")
	fmt.Fprint(bw, " obj:")
	for i, tm := range obj {
		fmt.Fprintf(bw, " + %s %s", tm.c, tm.v)
		if i%8 == 7 {
			fmt.Fprint(bw, "\n")
		}
	}
	for t := range nT {
		fmt.Fprintf(bw, " + %d s%d", M, t)
	}
	fmt.Fprintln(bw, "\nSubject To")
	for t := range nT {
		fmt.Fprintf(bw, " cov%d: s%d", t, t)
		for i, tm := range cover[t] {
			fmt.Fprintf(bw, " + %s %s", tm.c, tm.v)
			if i%8 == 7 {
				fmt.Fprint(bw, "\n")
			}
		}
		fmt.Fprintf(bw, " >= %d\n", p.Demand[t])
	}
	for i, r := range rows {
		fmt.Fprintf(bw, " r%d:%s\n", i, r)
	}
	for _, name := range injNames {
		fmt.Fprintf(bw, " d%s: %s", name, name)
		for _, tm := range inj[name] {
			if tm.c[0] == '-' {
				fmt.Fprintf(bw, " + %s %s", tm.c[1:], tm.v)
			} else {
				fmt.Fprintf(bw, " - %s %s", tm.c, tm.v)
			}
		}
		fmt.Fprintln(bw, " = 0")
	}
	for ri, r := range p.Network.Rows {
		var b []string
		for i, bus := range r.Buses {
			if c := r.PPM[i]; c != 0 {
				if n := fmt.Sprintf("P%d_%d", r.Interval, bus); inj[n] != nil {
					b = append(b, fmt.Sprintf("%s %s", dec(c), n))
				}
			}
			if r.QPPM != nil {
				if c := r.QPPM[i]; c != 0 {
					if n := fmt.Sprintf("Q%d_%d", r.Interval, bus); inj[n] != nil {
						b = append(b, fmt.Sprintf("%s %s", dec(c), n))
					}
				}
			}
		}
		if len(b) == 0 {
			continue
		}
		for _, side := range []struct {
			on  bool
			op  string
			lim int64
		}{{r.Up != Unlimited, "<=", r.Up}, {r.Down != Unlimited, ">=", -r.Down}} {
			if !side.on {
				continue
			}
			fmt.Fprintf(bw, " n%d%s:", ri, side.op[:1])
			for _, s := range b {
				fmt.Fprint(bw, s)
			}
			fmt.Fprintf(bw, " %s %d\n", side.op, side.lim)
		}
	}
	fmt.Fprintln(bw, "Bounds")
	for _, b := range bounds {
		fmt.Fprintln(bw, b)
	}
	for _, n := range injNames {
		fmt.Fprintf(bw, " %s free\n", n)
	}
	list := func(head string, vs []string) {
		if len(vs) == 0 {
			return
		}
		fmt.Fprintln(bw, head)
		for i, v := range vs {
			fmt.Fprintf(bw, " %s", v)
			if i%10 == 9 {
				fmt.Fprintln(bw)
			}
		}
		fmt.Fprintln(bw)
	}
	list("Binary", binaries)
	fmt.Fprintln(bw, "End")
	return M
}

// bindingRows counts the rows of r's clearing that are within one W of
// their most sensitive bid of a limit (for an integer clearing "binding"
// means no bid on them could take one more W), and those exactly at it.
func bindingRows(p *Problem, r *Result) int {
	n := 0
	for _, row := range p.Network.Rows {
		var v, maxC int64
		for b, nb := range p.Network.Bids {
			x := r.Accepted[b][row.Interval]
			c := row.coeff(nb)
			if p.Bids[b].Quantity[row.Interval] > 0 {
				maxC = max(maxC, abs64(c))
			}
			v += c * x
		}
		if row.Up != Unlimited && row.Up*ppm-v < maxC || row.Down != Unlimited && v+row.Down*ppm < maxC {
			n++
		}
	}
	return n
}

// BenchmarkGridVersusCBC: the constrained clearing of issue 7 against CBC
// on the identical instance. Run with -benchtime=1x -count=3.
func BenchmarkGridVersusCBC(b *testing.B) {
	if _, err := exec.LookPath("cbc"); err != nil {
		b.Skip("cbc not installed (apt-get install coinor-cbc)")
	}
	for _, nT := range []int{1, 4} {
		b.Run(fmt.Sprintf("bids=10000/intervals=%d", nT), func(b *testing.B) {
			g := gridInstance(b, nT, 10_000)
			p := g.p
			var r *Result
			var ours time.Duration
			for b.Loop() {
				start := time.Now()
				var err error
				if r, err = Solve(p); err != nil {
					b.Fatal(err)
				}
				ours = time.Since(start)
			}
			free := *p
			free.Network = nil
			ru, err := Solve(&free)
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(b.TempDir(), "grid.lp")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			M := writeNetLP(f, p)
			f.Close()
			theirs, cbcTime, timedOut, err := runCBCLimit(path)
			if err != nil {
				b.Fatal(err)
			}
			// The identical problem CBC solves is the one with continuous
			// divisible quantities: compare its exact optimum; the clearing
			// returned (whole W) is reported against it.
			var st netStats
			if _, err := solveNetworkFast(p, &st); err != nil {
				b.Fatal(err)
			}
			cs, _ := st.cont[0].Float64()
			cc, _ := st.cont[1].Float64()
			ourObj := cc + float64(M)*cs
			rel := math.Abs(ourObj-theirs) / math.Max(1, math.Abs(theirs))
			if timedOut {
				rel, theirs = math.NaN(), math.NaN()
			}
			intObj := float64(r.BidCost) + float64(M)*float64(totalShort(r))
			roundRel := (intObj - ourObj) / ourObj
			var resL, resV float64
			viol := 0
			// One re-linearisation at the cleared point and a second
			// clearing (untimed; single interval only, to keep the run
			// short): its AC residual.
			p2 := *p
			p2.Network = &Network{Bids: p.Network.Bids}
			for t := range nT {
				gc, err := CheckGrid(g.m, g.pMW[t], g.qMvar[t], p, r, t, GridLimits{}, 0.01, 1e-4)
				if err != nil {
					b.Fatal(err)
				}
				resL, resV = max(resL, gc.MaxLoadingExcess), max(resV, gc.MaxVoltageExcess)
				viol += len(gc.Violations)
				if nT > 1 {
					continue
				}
				x0 := make([]int64, len(p.Bids))
				for bi := range p.Bids {
					x0[bi] = r.Accepted[bi][t]
				}
				rows, _, err := GridRowsAt(g.m, gc.Before, gc.After, p, x0, t, GridLimits{})
				if err != nil {
					b.Fatal(err)
				}
				p2.Network.Rows = append(p2.Network.Rows, rows...)
			}
			r2, t2 := r, time.Duration(0)
			if nT == 1 {
				start2 := time.Now()
				if r2, err = Solve(&p2); err != nil {
					b.Fatal(err)
				}
				t2 = time.Since(start2)
			}
			var res2L, res2V float64
			viol2 := 0
			for t := range nT {
				if nT > 1 {
					break
				}
				gc, err := CheckGrid(g.m, g.pMW[t], g.qMvar[t], &p2, r2, t, GridLimits{}, 0.01, 1e-4)
				if err != nil {
					b.Fatal(err)
				}
				res2L, res2V = max(res2L, gc.MaxLoadingExcess), max(res2V, gc.MaxVoltageExcess)
				viol2 += len(gc.Violations)
			}
			// the unconstrained clearing breaks the grid
			var unL, unV float64
			unViol := 0
			for t := range nT {
				gc, err := CheckGrid(g.m, g.pMW[t], g.qMvar[t], p, ru, t, GridLimits{}, 0.01, 1e-4)
				if err != nil {
					b.Fatal(err)
				}
				unL, unV = max(unL, gc.MaxLoadingExcess), max(unV, gc.MaxVoltageExcess)
				unViol += len(gc.Violations)
			}
			bind := bindingRows(p, r)
			b.ReportMetric(float64(len(p.Network.Rows)), "rows")
			b.ReportMetric(float64(g.limits), "limits")
			b.ReportMetric(float64(bind), "binding")
			b.ReportMetric(ours.Seconds(), "flexhub-s")
			b.ReportMetric(cbcTime.Seconds(), "cbc-s")
			b.ReportMetric(cbcTime.Seconds()/ours.Seconds(), "speedup")
			b.ReportMetric(ourObj, "flexhub-obj")
			b.ReportMetric(theirs, "cbc-obj")
			b.ReportMetric(rel, "rel-diff")
			b.ReportMetric(float64(ru.BidCost), "unconstrained-obj")
			b.ReportMetric(intObj, "whole-W-obj")
			b.ReportMetric(res2L, "ac-excess-loading-pp-2nd")
			b.ReportMetric(res2V, "ac-excess-v-pu-2nd")
			b.ReportMetric(roundRel, "rounding-rel")
			b.ReportMetric(resL, "ac-excess-loading-pp")
			b.ReportMetric(resV, "ac-excess-v-pu")
			b.Logf("%s: %d limits, %d network rows (%d generated), %d binding; %d B&B nodes; flexhub %v, CBC %v (%.1fx); objectives %.1f / %.1f (rel %.2g); whole-W clearing %.0f (+%.2g, %d fractional quantities rounded); unconstrained %d (+%.2f %%); AC check: %d violations (largest excess %.4f pp loading, %.5f p.u. voltage); unconstrained clearing: %d violations (%.2f pp, %.4f p.u.); re-linearised at the cleared point and cleared again (%v, cost %d): %d violations (%.4f pp, %.5f p.u.)",
				b.Name(), g.limits, len(p.Network.Rows), st.active, bind, st.nodes, ours, cbcTime, cbcTime.Seconds()/ours.Seconds(), ourObj, theirs, rel, intObj, roundRel, st.frac,
				ru.BidCost, 100*float64(r.BidCost-ru.BidCost)/float64(ru.BidCost), viol, resL, resV, unViol, unL, unV, t2, r2.BidCost, viol2, res2L, res2V)
			if timedOut {
				b.Logf("CBC stopped after %v (FLEXHUB_CBC_LIMIT) without an answer: no objective comparison; the speed-up is a lower bound", cbcTime)
				return
			}
			if rel >= 1e-6 {
				b.Fatalf("objectives differ: flexhub %.0f, cbc %.0f (relative %.3g)", ourObj, theirs, rel)
			}
		})
	}
}

// runCBCLimit is runCBC, stopped after FLEXHUB_CBC_LIMIT seconds when that
// is set (timedOut then true, the time the limit).
func runCBCLimit(lpPath string) (obj float64, d time.Duration, timedOut bool, err error) {
	lim, _ := strconv.Atoi(os.Getenv("FLEXHUB_CBC_LIMIT"))
	if lim <= 0 {
		obj, d, err = runCBC(lpPath)
		return obj, d, false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(lim)*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "cbc", lpPath, "-ratioGap", "0", "-allowableGap", "0", "-threads", "1", "-solve", "-quit").CombinedOutput()
	d = time.Since(start)
	if ctx.Err() != nil {
		return 0, d, true, nil
	}
	if err != nil {
		return 0, d, false, fmt.Errorf("cbc: %v\n%s", err, out)
	}
	m := objRe.FindSubmatch(out)
	if m == nil || !strings.Contains(string(out), "Optimal solution found") {
		return 0, d, false, fmt.Errorf("cbc did not report an optimum:\n%s", out)
	}
	obj, err = strconv.ParseFloat(string(m[1]), 64)
	return obj, d, false, err
}

// BenchmarkGridIntervalsParallel: the network path solves a problem's
// intervals at once on every CPU (they are independent); the baseline is
// the same solve on one CPU, in the same run. 10,000 bids on
// lv_schutterwald, 4 evening intervals, every limit. Both must give the
// same clearing.
func BenchmarkGridIntervalsParallel(b *testing.B) {
	g := gridInstance(b, 4, 10_000)
	var costs []int64
	for _, procs := range []int{1, runtime.NumCPU()} {
		b.Run(fmt.Sprintf("cpus=%d", procs), func(b *testing.B) {
			old := runtime.GOMAXPROCS(procs)
			defer runtime.GOMAXPROCS(old)
			var r *Result
			for b.Loop() {
				var err error
				if r, err = solveNetworkFast(g.p, nil); err != nil {
					b.Fatal(err)
				}
			}
			costs = append(costs, r.BidCost)
			if costs[0] != r.BidCost {
				b.Fatalf("cost %d on %d CPUs, %d on one", r.BidCost, procs, costs[0])
			}
		})
	}
}
