package clearing

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"runtime"
	"slices"
	"sync"
)

// Network carries linearised grid limits in compact form: where each bid
// sits in the grid and, per interval, the monitored elements' sensitivities
// to injections at the buses. It stands for one Constraint per limit (see
// NetRow), without writing a term per bid: a row lists buses, and every
// bid at a listed bus gets that bus's coefficient.
type Network struct {
	// Bids places Problem.Bids[b] in the grid (same length as Bids).
	Bids []NetBid
	// Rows are the monitored limits, each for one interval.
	Rows []NetRow
}

// NetBid says how accepting a bid changes the injections: accepting x
// (W of the need's unit) changes the net injection at Bus by Sign·x of
// active power (W) or, when Reactive, of reactive power (var).
type NetBid struct {
	Bus      int  // bus index (the numbering of NetRow.Buses)
	Reactive bool // the bid moves Q, not P
	// Sign is +1 when the bid injects more (generation up, consumption
	// down, Q injection) and −1 when it withdraws more (consumption up,
	// e.g. batteries charging; Q absorption).
	Sign int8
}

// Unlimited marks a side of a NetRow that has no limit.
const Unlimited = math.MaxInt64

// NetRow is one monitored limit in one interval (a line or transformer
// loading, a bus voltage), linearised at the interval's forecast operating
// point:
//
//	−Down·10⁶ ≤ Σ_b coeff(b)·x[b][Interval] ≤ Up·10⁶
//
// where coeff(b) = Sign_b·PPM[i] (or QPPM[i] for a reactive bid) when bid
// b's bus is Buses[i], and 0 when its bus is not listed. The unit of the
// element's value is its own (percent loading, p.u. voltage); coefficients
// are in millionths of a micro-unit per W (per var), i.e. round(10⁶ ×
// sensitivity in unit/MW); Up and Down are the headrooms above and below
// the forecast value in micro-units (element limit − forecast value,
// rounded down; for an element already beyond its limit the builder uses 0:
// "no worse than forecast"). These integers are the instance: the engine
// and any external solver given the same rows solve the identical problem.
type NetRow struct {
	Name     string
	Interval int
	Buses    []int32 // strictly increasing
	PPM      []int64 // per listed bus: per W of active injection
	QPPM     []int64 // per listed bus: per var of reactive injection; nil = none
	Up       int64   // headroom above (micro-units), or Unlimited
	Down     int64   // headroom below (micro-units), or Unlimited
}

// Coeff returns the coefficient in row r of a bid placed as nb (0 when
// its bus is not listed).
func (r *NetRow) Coeff(nb NetBid) int64 { return r.coeff(nb) }

// coeff returns bid b's coefficient in row r (0 when its bus is not listed).
func (r *NetRow) coeff(nb NetBid) int64 {
	i, ok := slices.BinarySearch(r.Buses, int32(nb.Bus))
	if !ok {
		return 0
	}
	var c int64
	if nb.Reactive {
		if r.QPPM == nil {
			return 0
		}
		c = r.QPPM[i]
	} else {
		c = r.PPM[i]
	}
	return int64(nb.Sign) * c
}

func validateNetwork(p *Problem) error {
	n := p.Network
	if n == nil {
		return nil
	}
	if len(n.Bids) != len(p.Bids) {
		return fmt.Errorf("clearing: Network.Bids has %d entries, there are %d bids", len(n.Bids), len(p.Bids))
	}
	for b, nb := range n.Bids {
		if nb.Sign != 1 && nb.Sign != -1 {
			return fmt.Errorf("clearing: bid %s: network sign %d is not +1 or -1", bidName(p, b), nb.Sign)
		}
		if nb.Bus < 0 || nb.Bus > math.MaxInt32 {
			return fmt.Errorf("clearing: bid %s: bus index %d out of range", bidName(p, b), nb.Bus)
		}
	}
	nT := len(p.Demand)
	atBus := map[int32][]int{}
	for b, nb := range n.Bids {
		atBus[int32(nb.Bus)] = append(atBus[int32(nb.Bus)], b)
	}
	for ri := range n.Rows {
		r := &n.Rows[ri]
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("#%d", ri)
		}
		if r.Interval < 0 || r.Interval >= nT {
			return fmt.Errorf("clearing: network row %s: interval %d out of range (%d intervals)", name, r.Interval, nT)
		}
		if len(r.PPM) != len(r.Buses) || r.QPPM != nil && len(r.QPPM) != len(r.Buses) {
			return fmt.Errorf("clearing: network row %s: %d buses but %d active and %d reactive coefficients", name, len(r.Buses), len(r.PPM), len(r.QPPM))
		}
		for i := range r.Buses {
			if r.Buses[i] < 0 || i > 0 && r.Buses[i] <= r.Buses[i-1] {
				return fmt.Errorf("clearing: network row %s: buses must be non-negative and strictly increasing (position %d)", name, i)
			}
		}
		for _, h := range [2]int64{r.Up, r.Down} {
			if h != Unlimited {
				if _, ok := mulLimited(abs64(h), ppm); !ok {
					return fmt.Errorf("clearing: network row %s: headroom %d too large", name, h)
				}
			}
		}
		if r.Up != Unlimited && r.Down != Unlimited && r.Up < -r.Down {
			return fmt.Errorf("clearing: network row %s: empty band (up %d below −down %d)", name, r.Up, -r.Down)
		}
		// Σ |coeff|·quantity must stay below 2^62 (exact int64 sums).
		var sum int64
		for i, bus := range r.Buses {
			for _, b := range atBus[bus] {
				q := p.Bids[b].Quantity[r.Interval]
				if q == 0 {
					continue
				}
				c := r.PPM[i]
				if n.Bids[b].Reactive {
					c = 0
					if r.QPPM != nil {
						c = r.QPPM[i]
					}
				}
				v, ok := mulLimited(abs64(c), q)
				if ok {
					sum, ok = addLimited(sum, v)
				}
				if !ok {
					return fmt.Errorf("clearing: network row %s: coefficients × quantities too large", name)
				}
			}
		}
	}
	return nil
}

// NetworkConstraints expands p.Network into explicit Constraints (one or
// two per row, a term per bid at a listed bus): the same feasible set, in
// the form the general engine takes.
func NetworkConstraints(p *Problem) []Constraint {
	n := p.Network
	if n == nil {
		return nil
	}
	var out []Constraint
	for ri := range n.Rows {
		r := &n.Rows[ri]
		var up, down []Term
		for b, nb := range n.Bids {
			if p.Bids[b].Quantity[r.Interval] == 0 {
				continue
			}
			if c := r.coeff(nb); c != 0 {
				up = append(up, Term{Bid: b, Interval: r.Interval, CoeffPPM: c})
				down = append(down, Term{Bid: b, Interval: r.Interval, CoeffPPM: -c})
			}
		}
		if r.Up != Unlimited {
			out = append(out, Constraint{Name: r.Name + " (upper)", Terms: up, Limit: r.Up})
		}
		if r.Down != Unlimited {
			out = append(out, Constraint{Name: r.Name + " (lower)", Terms: down, Limit: r.Down})
		}
	}
	return out
}

// errNetFallback makes the network path hand the problem to the general
// engine (exact rational LP) instead.
var errNetFallback = errors.New("clearing: network fast path not applicable")

// solveNetwork clears a problem with a Network: the fast path when every
// usable bid is a non-linked bid outside exclusive groups and there are no
// explicit Constraints (intervals are then independent), otherwise the
// general engine with the rows expanded into Constraints.
func solveNetwork(p *Problem) (*Result, error) {
	if err := validateNetwork(p); err != nil {
		return nil, err
	}
	r, err := solveNetworkFast(p, nil)
	if err == errNetFallback {
		return solveNetworkGeneral(p)
	}
	return r, err
}

func solveNetworkGeneral(p *Problem) (*Result, error) {
	q := *p
	q.Network = nil
	q.Constraints = append(append([]Constraint(nil), p.Constraints...), NetworkConstraints(p)...)
	return Solve(&q)
}

// netStats describes a fast-path solve (for tests and benchmarks).
type netStats struct {
	cont   [3]big.Rat // the exact optimum with continuous divisible quantities
	frac   int        // quantities it had that were not whole W
	active int        // network rows generated, over all intervals
	nodes  int64      // branch-and-bound nodes
}

func solveNetworkFast(p *Problem, st *netStats) (*Result, error) {
	if len(p.Constraints) > 0 {
		return nil, errNetFallback
	}
	m := buildModel(p)
	for _, g := range m.groups {
		if len(g) > 0 {
			return nil, errNetFallback
		}
	}
	for b := range p.Bids {
		if p.Bids[b].Linked && len(m.bidItems[b]) > 0 {
			return nil, errNetFallback
		}
	}
	limit := p.MaxNodes
	if limit == 0 {
		limit = DefaultMaxNodes
	}
	x := make([]int64, len(m.slots))
	// The intervals are independent: each is solved on its own, as many
	// at once as there are CPUs (the problem and the model are only
	// read; each LP writes its own slots of x).
	stats := make([]netStats, m.nT) // per interval, when st wants them
	errs := make([]error, m.nT)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(m.nT, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range next {
				s := newNetLP(p, m, t, limit)
				if err := s.solve(); err != nil {
					errs[t] = err
					continue
				}
				if !s.haveInc {
					errs[t] = ErrInfeasible
					continue
				}
				for j, sl := range s.slots {
					x[sl] = s.xInt[j]
				}
				if st != nil {
					one := &stats[t]
					for l := range 3 {
						one.cont[l].Set(&s.incObj[l])
					}
					for j := range s.inc {
						if !s.inc[j].IsInt() {
							one.frac++
						}
					}
					one.active, one.nodes = len(s.act), s.nodes
				}
			}
		}()
	}
	for t := range m.nT {
		next <- t
	}
	close(next)
	wg.Wait()
	for t := range m.nT {
		if errs[t] != nil {
			return nil, errs[t] // the first interval's error, as solving them in order would
		}
	}
	if st != nil {
		for t := range stats {
			for l := range 3 {
				st.cont[l].Add(&st.cont[l], &stats[t].cont[l])
			}
			st.frac += stats[t].frac
			st.active += stats[t].active
			st.nodes += stats[t].nodes
		}
	}
	return assemble(p, m, x, make([]bool, len(m.items))), nil
}
