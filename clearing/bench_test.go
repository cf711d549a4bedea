package clearing

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// benchProblem generates a deterministic, realistic clearing: n bids over
// 96 quarter hours. Most bids cover 1–8 consecutive intervals; prices follow
// a daily curve plus a per-bid offset; the mix is about 45 % plain
// divisible, 15 % divisible with a minimum quantity, 15 % indivisible,
// 25 % linked (blocks: mostly indivisible, some divisible with a minimum),
// and about 10 % of the bids sit in exclusive groups of 2–3 alternatives of
// the same resource (shifted in time). Demand is 30–70 % of the volume
// offered in each interval. Quantities are whole kW, in W.
func benchProblem(n int, seed uint64) *Problem { return benchProblemMix(n, seed, false) }

// benchProblemMix is benchProblem; simple drops the links and exclusive
// groups (every bid stays, as a plain, minimum-quantity or indivisible bid).
func benchProblemMix(n int, seed uint64, simple bool) *Problem {
	const nT = 96
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	p := &Problem{Demand: make([]int64, nT), MaxPrice: make([]int64, nT)}
	curve := make([]int64, nT)
	for t := range nT {
		// evening peak: dearer flexibility from 17:00 to 21:00
		curve[t] = 8000
		if t >= 68 && t < 84 {
			curve[t] = 14000
		}
	}
	offered := make([]int64, nT)
	mk := func(start, length int, baseQ, price int64, shape bool) Bid {
		b := Bid{Quantity: make([]int64, nT), Price: make([]int64, nT), Divisible: true}
		for t := start; t < start+length && t < nT; t++ {
			q := baseQ
			if shape {
				q = baseQ * (80 + rng.Int64N(41)) / 100 / 1000 * 1000
			}
			b.Quantity[t] = q
			b.Price[t] = curve[t] + price + rng.Int64N(200)
		}
		return b
	}
	group := 0
	for len(p.Bids) < n {
		length := 1 + rng.IntN(8)
		start := rng.IntN(nT - length + 1)
		baseQ := (50 + rng.Int64N(1950)) * 1000 // 50 kW – 2 MW
		price := rng.Int64N(6000)
		r := rng.IntN(100)
		switch {
		case r < 10 && len(p.Bids)+3 <= n:
			// exclusive alternatives: the same resource at shifted times
			g := fmt.Sprintf("g%d", group)
			group++
			k := 2 + rng.IntN(2)
			for a := range k {
				s := min(nT-length, start+4*a)
				b := mk(s, length, baseQ, price+int64(a)*150, false)
				b.ExclusiveGroup = g
				b.Divisible = rng.IntN(2) == 0
				b.Linked = length > 1 && rng.IntN(2) == 0
				p.Bids = append(p.Bids, b)
			}
			continue
		case r < 50:
			p.Bids = append(p.Bids, mk(start, length, baseQ, price, true))
		case r < 62:
			b := mk(start, length, baseQ, price, true)
			b.MinQuantity = baseQ / 4 / 1000 * 1000
			p.Bids = append(p.Bids, b)
		case r < 75:
			b := mk(start, length, baseQ, price, true)
			b.Divisible = false
			p.Bids = append(p.Bids, b)
		default:
			b := mk(start, max(2, length), baseQ, price, false)
			b.Linked = true
			if rng.IntN(4) == 0 {
				b.MinQuantity = baseQ / 2 / 1000 * 1000
			} else {
				b.Divisible = false
			}
			p.Bids = append(p.Bids, b)
		}
	}
	for i := range p.Bids {
		p.Bids[i].ID = fmt.Sprintf("bid-%06d", i)
		if simple {
			p.Bids[i].Linked, p.Bids[i].ExclusiveGroup = false, ""
		}
		for t, q := range p.Bids[i].Quantity {
			offered[t] += q
		}
	}
	for t := range nT {
		p.Demand[t] = offered[t] * (30 + rng.Int64N(41)) / 100 / 1000 * 1000
		p.MaxPrice[t] = curve[t] + 5500 // a few bids priced out
	}
	return p
}

var benchSizes = []int{1_000, 10_000, 100_000}

// benchMixes: "full" has every feature; "simple" has no linked bids and no
// exclusive groups. benchMaxNodes keeps a failing size from running for
// minutes: the benchmark then fails with ErrNodeLimit, honestly.
var benchMixes = []string{"simple", "full"}

const benchMaxNodes = 2_000_000

func benchInstance(mix string, n int) *Problem {
	p := benchProblemMix(n, 1, mix == "simple")
	p.MaxNodes = benchMaxNodes
	return p
}

// BenchmarkSolve measures Solve on generated instances and reports the
// peak heap (HeapInuse high-water mark sampled around the solve) too.
func BenchmarkSolve(b *testing.B) {
	for _, mix := range benchMixes {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("mix=%s/bids=%d", mix, n), func(b *testing.B) {
				benchSolve(b, benchInstance(mix, n))
			})
		}
	}
}

func benchSolve(b *testing.B, p *Problem) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Solve(p); err != nil {
			b.Fatal(err)
		}
	}
	peak := peakHeap(func() {
		if _, err := Solve(p); err != nil {
			b.Fatal(err)
		}
	})
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
}

// peakHeap runs f while sampling the heap every millisecond and returns the
// highest HeapInuse seen (including the final state before collection).
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := base
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	f()
	close(done)
	runtime.ReadMemStats(&ms)
	return max(peak, ms.HeapInuse)
}
