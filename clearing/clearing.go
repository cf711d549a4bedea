// Package clearing is flexhub's market clearing engine: pure, no I/O. Given
// the demand of one need per interval and the bids offered against it, it
// selects the bids that cover the demand at least total cost, or covers as
// much as the offers allow and reports the shortfall per interval,
// honouring divisibility, minimum quantities, exclusive groups and linked
// bids. The result is optimal, not a heuristic.
//
// Units: quantities in W (int64), prices in minor currency units per MW
// per interval (int64), costs in minor units × W / MW, i.e. micro-minor
// units (int64): exact integer arithmetic, never float64 money. Inputs
// whose totals could overflow (Σ quantity × highest price, Σ quantity ×
// number of bids, constraint sums, all below 2^62) are refused by Solve.
// Prices must not be negative.
//
// # The model
//
// Solve chooses an integer accepted quantity x[b][t] (W) per bid and
// interval, 0 ≤ x ≤ Quantity[b][t], such that:
//
//   - a bid priced above MaxPrice[t] (when > 0) gets nothing in t; a linked
//     bid priced above the cap in any offered interval gets nothing at all;
//   - an indivisible, non-linked bid gets 0 or its full quantity, per
//     interval;
//   - a divisible bid with MinQuantity m gets, per interval, 0 or between
//     min(m, quantity) and its quantity (an interval offering less than m
//     is all or nothing);
//   - a linked bid is accepted at one ratio in all its offered intervals.
//     Let K be its largest quantity. The engine chooses an integer k (the W
//     accepted where the quantity is K) and accepts ⌊k·q[t]/K⌋ in every
//     offered interval: the same ratio k/K everywhere, rounded down to the
//     whole W, so no interval is ever asked for more than its share. An
//     indivisible linked bid (block) has k ∈ {0, K}; a divisible one has
//     k = 0 or MinQuantity ≤ k ≤ K (its minimum ratio is MinQuantity/K).
//     Coverage and cost are computed from the rounded quantities, so the
//     optimum is exact for this (integer) model: nothing is rounded after
//     the optimisation;
//   - at most one bid of an ExclusiveGroup gets anything;
//   - every Constraint holds exactly: Σ CoeffPPM·x ≤ Limit·10⁶.
//
// # The objective and the tie-break
//
// Among those clearings Solve returns one that minimises, in this order
// (lexicographically):
//
//  1. the total shortfall Σ_t max(0, Demand[t] − Σ_b x[b][t]);
//  2. BidCost = Σ x·Price;
//  3. the tie-break weight Σ x[b][t]·(b+1): among equally cheap
//     clearings, volume goes preferably to bids that come earlier in
//     Problem.Bids (the API passes them in submission order, so earlier
//     submissions win ties; within one interval and one price the merit
//     order is strictly by bid index).
//
// Clearings equal in all three (rare: e.g. two different selections with
// the same cost and the same weighted volume) are decided by the fixed
// search order, so the same input always gives the same output.
//
// Pricing only changes Payment, never the selection: pay-as-bid pays
// BidCost, uniform pays every accepted W of interval t the highest price
// accepted in t (Result.ClearingPrice).
//
// # The algorithm
//
// Each bid becomes items (one per offered interval, or one for a whole
// linked bid) that choose an integer k in {0} ∪ [gap, K]. A depth-first
// branch and bound narrows the items' k ranges. At every node the
// relaxation keeps only each interval slot's quantity range (dropping
// gaps, links and groups); without constraints it separates into one merit
// order per interval (exact, integral, recomputed only for the intervals a
// branch touched), with constraints it is an exact rational LP over the
// same ranges plus the constraint rows (lp.go) — constraints are just more
// rows. Branching repairs one violated rule (exclusive group, gap, link or,
// with constraints, a fractional quantity), entering the child with the
// better bound first, so the first leaf is a good clearing. Independent
// parts are solved separately: intervals not tied by a linked bid, an
// exclusive group or a constraint form separate components; dominated items
// (free cheaper bids cover the demand in all their intervals) are removed
// up front; after the first clearing, reduced-cost fixing with the merit
// order's interval prices removes alternatives provably worse than it and
// the component is split again where links fell away. The search is
// exhaustive — nothing is pruned unless its bound proves it cannot beat
// the incumbent — and has no time limit; MaxNodes is a safety valve that
// makes Solve fail (ErrNodeLimit), never return a possibly suboptimal
// clearing.
//
// # Network constraints
//
// Problem.Network adds linearised grid limits in compact form (network.go):
// per bid its bus and whether accepting it moves active or reactive power,
// and which way (NetBid); per interval one row per monitored element — a
// line or transformer loading, a bus voltage — listing the buses whose
// injections move it, with integer coefficients and the headroom above
// and below the forecast value (NetRow). The integers are the instance:
// coefficient = round(10⁶ × sensitivity in unit/MW or unit/Mvar), headroom
// = ⌊10⁶ × (limit − forecast)⌋ micro-units, so a row is exactly
// −Down·10⁶ ≤ Σ coeff·x ≤ Up·10⁶ (the same as an explicit Constraint;
// NetworkConstraints expands them). GridRows builds the rows from
// powerflow.Linearize at each interval's forecast operating point (an
// element already beyond its limit gets headroom 0: no worse than
// forecast); CheckGrid runs the full AC power flow of a clearing and
// reports what it breaks.
//
// With a Network the model is the one above with one difference: a
// divisible quantity is optimised as a real number and rounded to whole W
// afterwards. Indivisible bids and minimum quantities stay exact (0 or at
// least the minimum), as do the objective and its tie-break.
//
// Without links, exclusive groups or explicit Constraints the intervals
// are independent and each (in parallel, one per CPU) is solved by a bounded dual simplex over its
// bids in float64, starting from the merit order, with the network rows
// added lazily (at most 8 of the most violated per round, measured in W of
// the row's most sensitive bus) until none is violated, inside a
// depth-first branch and bound on minimum quantities and indivisible bids
// (netlp.go). Floating point only steers; what is exact:
//
//   - every incumbent: its basis is recomputed in rational arithmetic (the
//     core of row 0 and the binding rows, inverted fraction-free), every
//     nonbasic column's reduced-cost vector is checked to have the
//     lexicographic sign its bound requires (in float64 with a rigorous
//     rounding-error bound, exactly where that bound does not decide), and
//     every network row — generated or not — is checked exactly against
//     the rational solution. The continuous optimum returned is therefore
//     optimal, exactly, for (shortfall, cost, tie-break weight);
//   - every pruned node: either by that exact lower bound (the objective of
//     a dual-feasible basis), or by a weak-duality bound on the cost,
//     Σ price·x ≥ y·b + Σ min over each column's box of (price − y·A)·x for
//     any y, computed in float64 with an explicit bound on its rounding
//     error subtracted (used only when the incumbent has no shortfall);
//   - every infeasibility, by an exact Farkas row.
//
// When a check fails (a float basis that is not exactly dual feasible, a
// singular basis, an iteration limit) the problem goes to the general
// engine with the rows expanded — exact, but only practical for small
// problems; so do problems with links, groups or Constraints.
//
// Rounding to whole W: the fractional quantities of the optimum (only
// basic columns: at most one per generated row plus one, per interval) go
// down to the W below; a row this breaks gets its relieving bids rounded
// up instead; then the coverage lost is given back W by W in merit order
// to divisible bids all of whose rows leave room. Every row is checked in
// exact integers (a rounding that cannot keep them is an error, never
// returned). The whole-W clearing costs at most one W × price per rounded
// quantity more than the continuous optimum, which is a lower bound on the
// whole-W optimum; but when every bid with room sits behind a limit the
// continuous optimum fills exactly, the W lost by rounding down cannot be
// given back and the clearing has a shortfall of up to one W per rounded
// quantity (measured: 9 W of an 8 MW need in the 4-interval benchmark).
// The whole-W optimum itself is not proven (proving it means branching on
// single W over thousands of bids: the general engine does it, slowly).
//
// What the rows do not capture is the linearisation: they are first order
// at the forecast. CheckGrid reports the residual (docs/BENCHMARKS.md,
// "Constrained clearing (issue 7)"); re-linearising at the cleared point
// and clearing again, or headroom margins, would reduce it (not built).
//
// Joint clearing of several needs (the "common market" scheme) needs no
// more than this: the app (app/common_market.go) writes the needs of one
// time interval into one column with their demands added, and caps each
// need and each resource's capacity by network rows with a "bus" per bid
// (docs/COORDINATION.md); a grid's rows over every bid in it the same way.
package clearing

// Pricing says how accepted bids are paid. It does not change which bids
// are selected.
type Pricing int

// Pricing rules.
const (
	PayAsBid Pricing = iota // each accepted bid is paid its own price (default)
	Uniform                 // per interval, every accepted bid is paid the marginal (highest accepted) price
)

// Problem is one clearing.
type Problem struct {
	// Demand is the quantity to cover per interval, in W; its length is
	// the number of intervals.
	Demand []int64
	// MaxPrice caps the price per interval (0 means no cap): bids priced
	// above it in an interval are not selected there.
	MaxPrice []int64
	Bids     []Bid
	Pricing  Pricing
	// Constraints are extra linear constraints over accepted quantities
	// (grid limits); empty until the grid issue.
	Constraints []Constraint
	// Network, when not nil, adds linearised grid limits in compact form
	// (see Network and "Network constraints" above).
	Network *Network
	// MaxNodes bounds the branch-and-bound search (0: DefaultMaxNodes).
	// It is a safety valve, not a time limit: when it is reached Solve
	// returns ErrNodeLimit, never a result that might not be optimal.
	MaxNodes int64
}

// Bid is one offer. Quantity and Price are per interval (same length as
// Problem.Demand); a zero quantity means "not offered in that interval".
type Bid struct {
	ID       string
	Quantity []int64 // W offered per interval
	Price    []int64 // minor units per MW per interval
	// Divisible bids may be accepted in part. An indivisible bid is
	// accepted in full or not at all (per interval, or as a whole when
	// Linked).
	Divisible bool
	// MinQuantity (W) is the least that may be accepted of a divisible bid
	// in an interval where it is accepted at all (for a linked bid: the
	// least, as a share of its quantity, is MinQuantity / max quantity).
	MinQuantity int64
	// Linked bids are accepted in all of their offered intervals or in
	// none, with the same acceptance ratio in each.
	Linked bool
	// ExclusiveGroup, when not empty, names a group of which at most one
	// bid is accepted (in any interval).
	ExclusiveGroup string
}

// Constraint is a linear constraint Σ Coeff[b][t]·accepted[b][t] ≤ Limit
// (W-weighted); the grid issue fills it with sensitivities of flows.
type Constraint struct {
	Name  string
	Terms []Term
	Limit int64
}

// Term is one coefficient of a constraint, in parts per million.
type Term struct {
	Bid      int // index into Problem.Bids
	Interval int
	CoeffPPM int64
}

// Result is an optimal clearing.
type Result struct {
	// Accepted is the accepted quantity per bid (same order as
	// Problem.Bids) per interval, in W.
	Accepted [][]int64
	// Shortfall is the uncovered demand per interval, in W.
	Shortfall []int64
	// BidCost is the objective the selection minimises (after shortfall):
	// Σ accepted × bid price, in micro-minor units (minor units × W / MW).
	BidCost int64
	// Payment is what the buyer pays under the pricing rule: BidCost under
	// pay-as-bid; under uniform pricing every accepted W of an interval is
	// paid that interval's clearing price. Selection always minimises
	// BidCost; uniform pricing only changes what is paid.
	Payment int64
	// ClearingPrice is, per interval, the highest price of an accepted bid
	// (the uniform price; informative under pay-as-bid); 0 when nothing is
	// accepted.
	ClearingPrice []int64
	// Reasons explains, per bid, why it was not accepted (empty when
	// accepted): "price above the need's maximum", "not needed: cheaper
	// bids cover the demand", "excluded: bid X of the same exclusive group
	// was selected", ...
	Reasons []string
}
