package clearing

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// writeLP writes p (without Constraints) as a MILP in CPLEX LP format, the
// textbook formulation a team would hand to CBC:
//
//   - plain divisible slot: continuous x ∈ [0, q];
//   - indivisible slot: binary y, quantity q·y;
//   - minimum-quantity slot: x continuous, binary y, m'·y ≤ x ≤ q·y;
//   - linked bid: integer k ∈ [0, K] (binary on/off y with gap·y ≤ k ≤ K·y
//     when it has a gap), and per interval x_t = ⌊k·q_t/K⌋ written as an
//     integer x_t with 0 ≤ k·q_t − K·x_t ≤ K−1 (x_t = k when q_t = K);
//   - exclusive group: binary u per member bid, every quantity of the bid
//     ≤ its quantity·u, Σ u ≤ 1;
//   - coverage Σ x + short_t ≥ D_t, objective Σ price·x + M·Σ short.
//
// The shortfall weight M (far above any price) stands in for the
// lexicographic objective; the benchmark instances have no shortfall, so
// the cost optimum is the same. The tie-break is not modelled (it does not
// change the cost). Returns the shortfall weight used.
func writeLP(w io.Writer, p *Problem) int64 {
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
	type term struct {
		coef int64
		v    string
	}
	var obj []term
	cover := make([][]term, nT)
	var rows []string
	var bounds, generals, binaries []string
	capped := func(b, t int) bool {
		return len(p.MaxPrice) > 0 && p.MaxPrice[t] > 0 && p.Bids[b].Price[t] > p.MaxPrice[t]
	}
	groups := map[string][]string{}
	var gnames []string
	for bi, b := range p.Bids {
		var K int64
		anyCap := false
		for t, q := range b.Quantity {
			if q > 0 {
				K = max(K, q)
				anyCap = anyCap || capped(bi, t)
			}
		}
		if K == 0 || b.Linked && anyCap {
			continue
		}
		u := ""
		if b.ExclusiveGroup != "" {
			u = fmt.Sprintf("u%d", bi)
			binaries = append(binaries, u)
			if _, ok := groups[b.ExclusiveGroup]; !ok {
				gnames = append(gnames, b.ExclusiveGroup)
			}
			groups[b.ExclusiveGroup] = append(groups[b.ExclusiveGroup], u)
		}
		if b.Linked {
			k := fmt.Sprintf("k%d", bi)
			generals = append(generals, k)
			bounds = append(bounds, fmt.Sprintf(" 0 <= %s <= %d", k, K))
			gap := K
			if b.Divisible {
				gap = max(b.MinQuantity, 1)
			}
			if gap > 1 {
				y := fmt.Sprintf("y%d", bi)
				binaries = append(binaries, y)
				rows = append(rows, fmt.Sprintf(" %s - %d %s >= 0", k, gap, y), fmt.Sprintf(" %s - %d %s <= 0", k, K, y))
			}
			if u != "" {
				rows = append(rows, fmt.Sprintf(" %s - %d %s <= 0", k, K, u))
			}
			for t, q := range b.Quantity {
				if q == 0 {
					continue
				}
				x := k
				if q != K {
					x = fmt.Sprintf("x%d_%d", bi, t)
					generals = append(generals, x)
					bounds = append(bounds, fmt.Sprintf(" 0 <= %s <= %d", x, q))
					rows = append(rows, fmt.Sprintf(" %d %s - %d %s >= 0", q, k, K, x), fmt.Sprintf(" %d %s - %d %s <= %d", q, k, K, x, K-1))
				}
				obj = append(obj, term{b.Price[t], x})
				cover[t] = append(cover[t], term{1, x})
			}
			continue
		}
		for t, q := range b.Quantity {
			if q == 0 || capped(bi, t) {
				continue
			}
			gap := int64(0)
			if !b.Divisible {
				gap = q
			} else if m := min(b.MinQuantity, q); m > 1 {
				gap = m
			}
			switch {
			case gap == q:
				y := fmt.Sprintf("y%d_%d", bi, t)
				binaries = append(binaries, y)
				obj = append(obj, term{b.Price[t] * q, y})
				cover[t] = append(cover[t], term{q, y})
				if u != "" {
					rows = append(rows, fmt.Sprintf(" %s - %s <= 0", y, u))
				}
			default:
				x := fmt.Sprintf("x%d_%d", bi, t)
				bounds = append(bounds, fmt.Sprintf(" 0 <= %s <= %d", x, q))
				obj = append(obj, term{b.Price[t], x})
				cover[t] = append(cover[t], term{1, x})
				if gap > 0 {
					y := fmt.Sprintf("y%d_%d", bi, t)
					binaries = append(binaries, y)
					rows = append(rows, fmt.Sprintf(" %s - %d %s >= 0", x, gap, y), fmt.Sprintf(" %s - %d %s <= 0", x, q, y))
					if u != "" {
						rows = append(rows, fmt.Sprintf(" %s - %s <= 0", y, u))
					}
				} else if u != "" {
					rows = append(rows, fmt.Sprintf(" %s - %d %s <= 0", x, q, u))
				}
			}
		}
	}
	for t := range nT {
		obj = append(obj, term{M, fmt.Sprintf("s%d", t)})
	}
	// CBC refuses a variable twice in the objective (a linked bid's k
	// stands for every interval with the full quantity): merge.
	merged := obj[:0:0]
	at := map[string]int{}
	for _, tm := range obj {
		if i, ok := at[tm.v]; ok {
			merged[i].coef += tm.coef
			continue
		}
		at[tm.v] = len(merged)
		merged = append(merged, tm)
	}
	obj = merged
	fmt.Fprintln(bw, "Minimize")
	fmt.Fprint(bw, " obj:")
	for i, tm := range obj {
		fmt.Fprintf(bw, " + %d %s", tm.coef, tm.v)
		if i%8 == 7 {
			fmt.Fprint(bw, "\n")
		}
	}
	fmt.Fprintln(bw, "\nSubject To")
	for t := range nT {
		fmt.Fprintf(bw, " cov%d: s%d", t, t)
		for i, tm := range cover[t] {
			fmt.Fprintf(bw, " + %d %s", tm.coef, tm.v)
			if i%8 == 7 {
				fmt.Fprint(bw, "\n")
			}
		}
		fmt.Fprintf(bw, " >= %d\n", p.Demand[t])
	}
	for i, r := range rows {
		fmt.Fprintf(bw, " r%d:%s\n", i, r)
	}
	for gi, g := range gnames {
		fmt.Fprintf(bw, " g%d:", gi)
		for _, u := range groups[g] {
			fmt.Fprintf(bw, " + %s", u)
		}
		fmt.Fprintln(bw, " <= 1")
	}
	fmt.Fprintln(bw, "Bounds")
	for _, b := range bounds {
		fmt.Fprintln(bw, b)
	}
	writeList := func(head string, vs []string) {
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
	writeList("General", generals)
	writeList("Binary", binaries)
	fmt.Fprintln(bw, "End")
	return M
}

var objRe = regexp.MustCompile(`Objective value:\s+([-0-9.eE+]+)`)

// runCBC solves the LP file with the cbc binary (single thread, default
// tolerances but a zero relative gap) and returns its objective.
func runCBC(lpPath string) (float64, time.Duration, error) {
	start := time.Now()
	out, err := exec.Command("cbc", lpPath, "-ratioGap", "0", "-allowableGap", "0", "-threads", "1", "-solve", "-quit").CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, d, fmt.Errorf("cbc: %v\n%s", err, out)
	}
	m := objRe.FindSubmatch(out)
	if m == nil || !regexp.MustCompile(`Optimal solution found`).Match(out) {
		return 0, d, fmt.Errorf("cbc did not report an optimum:\n%s", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return v, d, err
}

// BenchmarkVersusCBC solves each generated instance with flexhub and with
// CBC, reports both times, their ratio and both objectives, and fails when
// the objectives differ by 1e-6 relative or more.
func BenchmarkVersusCBC(b *testing.B) {
	if _, err := exec.LookPath("cbc"); err != nil {
		b.Skip("cbc not installed (apt-get install coinor-cbc): skipping the comparison")
	}
	for _, mix := range benchMixes {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("mix=%s/bids=%d", mix, n), func(b *testing.B) {
				versusCBC(b, benchInstance(mix, n))
			})
		}
	}
}

func versusCBC(b *testing.B, p *Problem) {
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
	var short int64
	for _, s := range r.Shortfall {
		short += s
	}
	path := filepath.Join(b.TempDir(), "clearing.lp")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	M := writeLP(f, p)
	f.Close()
	theirs, cbcTime, err := runCBC(path)
	if err != nil {
		b.Fatal(err)
	}
	ourObj := float64(r.BidCost) + float64(M)*float64(short)
	rel := math.Abs(ourObj-theirs) / math.Max(1, math.Abs(theirs))
	b.ReportMetric(ours.Seconds(), "flexhub-s")
	b.ReportMetric(cbcTime.Seconds(), "cbc-s")
	b.ReportMetric(cbcTime.Seconds()/ours.Seconds(), "speedup")
	b.ReportMetric(ourObj, "flexhub-obj")
	b.ReportMetric(theirs, "cbc-obj")
	b.ReportMetric(rel, "rel-diff")
	if rel >= 1e-6 {
		b.Fatalf("objectives differ: flexhub %.0f, cbc %.0f (relative %.3g)", ourObj, theirs, rel)
	}
}

// TestLPWriterAgainstCBC cross-checks the engine with CBC on small random
// instances when cbc is installed (skipped otherwise: CBC stays optional).
func TestLPWriterAgainstCBC(t *testing.T) {
	if _, err := exec.LookPath("cbc"); err != nil {
		t.Skip("cbc not installed")
	}
	if testing.Short() {
		t.Skip("short")
	}
	rng := newRand(21)
	for i := range 20 {
		p := randomProblem(rng, genOpts{nT: 4, nBids: 12, maxQ: 9, maxPrice: 20})
		p.Constraints = nil
		r, err := Solve(p)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "p.lp")
		f, _ := os.Create(path)
		M := writeLP(f, p)
		f.Close()
		theirs, _, err := runCBC(path)
		if err != nil {
			t.Fatal(err)
		}
		var short int64
		for _, s := range r.Shortfall {
			short += s
		}
		ours := float64(r.BidCost) + float64(M)*float64(short)
		if math.Abs(ours-theirs) > 1e-6*math.Max(1, math.Abs(theirs)) {
			t.Fatalf("instance %d: flexhub %.0f, cbc %.0f\n%s", i, ours, theirs, dump(p))
		}
	}
}
