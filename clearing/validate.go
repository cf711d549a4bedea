package clearing

import (
	"errors"
	"fmt"
	"math/bits"
)

// DefaultMaxNodes is the search-node budget used when Problem.MaxNodes is 0.
// Realistic clearings need a tiny fraction of it; it only exists so that a
// pathological input fails loudly instead of running for hours.
const DefaultMaxNodes = 50_000_000

// ErrNodeLimit is returned when the search needed more nodes than allowed.
// No partial (possibly suboptimal) result is returned with it.
var ErrNodeLimit = errors.New("clearing: search node limit reached before optimality was proven")

// ErrInfeasible is returned when the constraints cannot all be met, not even
// by accepting nothing (e.g. a limit below zero that no bid can relieve).
var ErrInfeasible = errors.New("clearing: the constraints cannot all be satisfied")

// sumLimit bounds every aggregate the engine computes (volumes, costs,
// tie-break weights, constraint sums) so that int64 arithmetic can never
// overflow: each partial sum stays below 2^62 and the sum of two stays
// below 2^63.
const sumLimit = int64(1) << 62

// mulLimited returns a×b when it is below sumLimit (a, b ≥ 0).
func mulLimited(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo >= uint64(sumLimit) {
		return 0, false
	}
	return int64(lo), true
}

// addLimited returns a+b when it is below sumLimit (a, b ≥ 0).
func addLimited(a, b int64) (int64, bool) {
	s := a + b
	if s >= sumLimit || s < 0 {
		return 0, false
	}
	return s, true
}

// validate checks p and returns the first problem found, naming the bid,
// interval or constraint at fault.
func validate(p *Problem) error {
	if p == nil {
		return errors.New("clearing: nil problem")
	}
	nT := len(p.Demand)
	if nT == 0 {
		return errors.New("clearing: no intervals (Demand is empty)")
	}
	if len(p.MaxPrice) != 0 && len(p.MaxPrice) != nT {
		return fmt.Errorf("clearing: MaxPrice has %d intervals, Demand has %d", len(p.MaxPrice), nT)
	}
	if p.Pricing != PayAsBid && p.Pricing != Uniform {
		return fmt.Errorf("clearing: unknown pricing rule %d", p.Pricing)
	}
	if p.MaxNodes < 0 {
		return errors.New("clearing: MaxNodes must not be negative")
	}
	var totalDemand int64
	for t, d := range p.Demand {
		if d < 0 {
			return fmt.Errorf("clearing: negative demand %d in interval %d", d, t)
		}
		var ok bool
		if totalDemand, ok = addLimited(totalDemand, d); !ok {
			return errors.New("clearing: total demand too large")
		}
	}
	for t, m := range p.MaxPrice {
		if m < 0 {
			return fmt.Errorf("clearing: negative maximum price %d in interval %d", m, t)
		}
	}
	var totalQ, maxP int64
	for i := range p.Bids {
		b := &p.Bids[i]
		if len(b.Quantity) != nT || len(b.Price) != nT {
			return fmt.Errorf("clearing: bid %d (%s): %d quantities and %d prices for %d intervals", i, b.ID, len(b.Quantity), len(b.Price), nT)
		}
		if b.MinQuantity < 0 {
			return fmt.Errorf("clearing: bid %d (%s): negative minimum quantity", i, b.ID)
		}
		var maxQ int64
		for t := range nT {
			q, pr := b.Quantity[t], b.Price[t]
			if q < 0 {
				return fmt.Errorf("clearing: bid %d (%s): negative quantity %d in interval %d", i, b.ID, q, t)
			}
			if pr < 0 {
				return fmt.Errorf("clearing: bid %d (%s): negative price %d in interval %d (not supported)", i, b.ID, pr, t)
			}
			var ok bool
			if totalQ, ok = addLimited(totalQ, q); !ok {
				return errors.New("clearing: total offered quantity too large")
			}
			maxQ = max(maxQ, q)
			if q > 0 {
				maxP = max(maxP, pr)
			}
		}
		if b.Divisible && b.MinQuantity > maxQ && maxQ > 0 {
			return fmt.Errorf("clearing: bid %d (%s): minimum quantity %d W exceeds its largest offered quantity %d W", i, b.ID, b.MinQuantity, maxQ)
		}
	}
	// Costs, uniform payments (Σ volume × highest price) and the tie-break
	// weight Σ x·(bid index+1) are all bounded by these two products.
	if _, ok := mulLimited(totalQ, max(maxP, 1)); !ok {
		return errors.New("clearing: offered quantities × prices too large for exact int64 costs")
	}
	if _, ok := mulLimited(totalQ, int64(len(p.Bids))+1); !ok {
		return errors.New("clearing: offered quantities × number of bids too large")
	}
	for ci, c := range p.Constraints {
		if _, ok := mulLimited(abs64(c.Limit), ppm); !ok {
			return fmt.Errorf("clearing: constraint %d (%s): limit too large", ci, c.Name)
		}
		var sum int64
		for ti, term := range c.Terms {
			if term.Bid < 0 || term.Bid >= len(p.Bids) {
				return fmt.Errorf("clearing: constraint %d (%s) term %d: unknown bid index %d", ci, c.Name, ti, term.Bid)
			}
			if term.Interval < 0 || term.Interval >= nT {
				return fmt.Errorf("clearing: constraint %d (%s) term %d: unknown interval %d", ci, c.Name, ti, term.Interval)
			}
			v, ok := mulLimited(abs64(term.CoeffPPM), max(p.Bids[term.Bid].Quantity[term.Interval], 1))
			if ok {
				sum, ok = addLimited(sum, v)
			}
			if !ok {
				return fmt.Errorf("clearing: constraint %d (%s): coefficients × quantities too large", ci, c.Name)
			}
		}
	}
	return nil
}

const ppm = 1_000_000

func abs64(v int64) int64 {
	if v < 0 {
		if v == -v {
			return sumLimit // MinInt64: report as too large
		}
		return -v
	}
	return v
}
