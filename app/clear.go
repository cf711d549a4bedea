package app

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/clearing"
	"github.com/flexhub/flexhub/powerflow"
)

// The clearing step. After gate closure every closed session is cleared
// exactly once: its needs and submitted bids are read in a snapshot, the
// engine (package clearing) selects the bids, and the results are written
// in one transaction whose first write is a conditional, versioned move of
// the session from closed to cleared. Two flexhub instances (or a retry
// racing the sweep) may both compute a clearing; only the one whose
// session update succeeds commits, the other's transaction is rolled back
// whole. The unique indexes on award(bid_id) and need_result(need_id)
// back this up in the schema.
//
// Why in its own transaction after the closure and not in it: a clearing
// that fails (engine error, database away) must never hold the gate open
// or undo the closure. A session closed but not cleared — after such a
// failure, or a crash between the two commits — is picked up by the
// scheduler's sweep, with exponential backoff between failed attempts.
//
// How prices convert. Money is int64 ten-thousandths of the currency:
// availability per MW per hour, activation per MWh. All intervals of a
// session's product have the same length, so per-hour prices rank
// exactly as per-interval prices would: the engine gets the per-hour
// prices, divided by their greatest common divisor (which changes no
// ranking and keeps the engine's exact int64 costs far from overflow; see
// scaleProblem). The engine only selects; every money
// amount is computed here from the original prices with math/big:
// accepted W × price × interval seconds / (10^6 W/MW × 3600 s/h), rounded
// half up to a ten-thousandth once per bid interval. Bid amounts are sums
// of interval amounts, a need's total cost the sum of its bids' amounts,
// so every figure a party reads adds up.
//
// Which price selects: availability for needs buying capacity and for
// needs buying both (the activation price of a "both" bid is recorded in
// the award and paid as bid when activated: it does not rank, because
// whether and how much will be activated is unknown at clearing);
// activation for energy-only needs (nothing is owed at clearing; the
// amounts say what a full activation over the whole interval would cost).
//
// One problem per session, not per need: exclusive groups are per FSP
// and session and may span needs, so the needs' intervals become the
// columns of one problem (the engine splits independent parts again).
// Ties between equal prices go to the bid submitted first (bid ids are
// time-ordered; the engine prefers the earlier bid).

// Solver is the clearing engine's entry point (clearing.Solve); tests
// swap it to make a clearing fail or run slowly.
type Solver func(*clearing.Problem) (*clearing.Result, error)

// SetSolver replaces the clearing engine (nil: clearing.Solve).
func (s *Service) SetSolver(f Solver) {
	if f == nil {
		f = clearing.Solve
	}
	s.solve = f
}

// Retry backoff of a failing clearing: 1 s, doubling, at most 5 minutes.
const (
	clearRetryFirst = time.Second
	clearRetryMax   = 5 * time.Minute
)

// retries remembers failed clearings in this process, so the sweep does
// not hammer a failing engine or database every tick. It is in memory on
// purpose: after a restart every closed session is tried at once.
type retries struct {
	mu sync.Mutex
	m  map[string]retryState
}

type retryState struct {
	attempts int
	next     time.Time
}

func (r *retries) due(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.m[id]
	return !ok || !now.Before(st.next)
}

func (r *retries) failed(id string, now time.Time) retryState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]retryState{}
	}
	st := r.m[id]
	st.attempts++
	wait := clearRetryFirst << min(st.attempts-1, 20)
	st.next = now.Add(min(wait, clearRetryMax))
	r.m[id] = st
	return st
}

func (r *retries) done(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}

// sweepClearings clears every closed session not yet cleared whose retry
// is due, and returns how many it cleared.
func (s *Service) sweepClearings(ctx context.Context) (int, error) {
	var closed []*flexhub.MarketSession
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		closed, _, err = tx.ListMarketSessions(ctx, flexhub.Filter{"status": flexhub.SessionClosed}, flexhub.Page{Limit: flexhub.MaxPageLimit})
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range closed {
		if s.tryClear(ctx, m.ID) {
			n++
		}
	}
	return n, nil
}

// tryClear clears a session unless its retry is not due yet. A failure
// is logged and scheduled for a retry; it is never returned, because one
// session's failing clearing must not stop the scheduler for the others.
func (s *Service) tryClear(ctx context.Context, id string) bool {
	now := time.Now()
	if !s.retry.due(id, now) {
		return false
	}
	done, err := s.ClearSession(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		st := s.retry.failed(id, now)
		s.log.Error("clearing failed; will retry", "session", id, "attempt", st.attempts, "retry_at", st.next.UTC().Format(time.RFC3339), "err", err)
		return false
	}
	s.retry.done(id)
	if done {
		s.log.Info("session cleared", "session", id)
	}
	return done
}

// ClearSession clears a closed session and reports whether this call did
// it (false: it is not closed, e.g. cleared already, by this instance or
// another).
func (s *Service) ClearSession(ctx context.Context, id string) (bool, error) {
	var in *clearInput
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		if in, err = loadClearInput(ctx, tx, id); err != nil || in == nil {
			return err
		}
		if in.common, err = s.loadCommonMarket(ctx, tx, in); err != nil || in.common != nil {
			return err // the common market reads every grid itself
		}
		if in.grid, err = s.loadGridClear(ctx, tx, in); err != nil {
			return err
		}
		in.first, err = s.loadDSOFirst(ctx, tx, in)
		return err
	})
	if err != nil || in == nil {
		return false, err
	}
	if in.first != nil && len(in.first.waiting) > 0 {
		s.log.Debug("dso_first: waiting for the DSOs' sessions", "session", id, "waiting_for", in.first.waitingText())
		return false, nil
	}
	if in.common != nil && len(in.common.waiting) > 0 {
		s.log.Debug("common_market: waiting for the sessions cleared with it", "session", id, "waiting_for", in.common.waitingText())
		return false, nil
	}
	out, err := computeClearing(in, s.solve, s.now())
	if errors.Is(err, clearing.ErrNodeLimit) {
		return false, s.clearingFailed(ctx, in.session, err)
	}
	if err != nil {
		return false, err
	}
	done := false
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		done = false
		m, err := tx.MarketSession(ctx, id)
		if err != nil {
			return err
		}
		if m.Status != flexhub.SessionClosed {
			return nil // cleared meanwhile
		}
		if m.Version != in.session.Version {
			return flexhub.Errorf(flexhub.EConflict, "session %s changed while it was cleared; clearing again", id)
		}
		if in.common != nil {
			if err := s.storeJoint(ctx, tx, m, in, out); err != nil {
				return err
			}
			done = true
			return nil
		}
		if err := s.storeClearing(ctx, tx, m, in, out); err != nil {
			return err
		}
		done = true
		return nil
	})
	if flexhub.ErrorKind(err) == flexhub.EConflict {
		// Another instance cleared it first (its versioned update won);
		// whether it did is read again on the next sweep.
		return false, nil
	}
	return done, err
}

// clearingFailed stops a session whose clearing the engine could not
// prove optimal: retrying would fail the same way, and publishing a
// clearing that may not be optimal is not an option. The operator and the
// buyer are told; the operator decides what follows.
func (s *Service) clearingFailed(ctx context.Context, read *flexhub.MarketSession, cause error) error {
	reason := "the clearing engine could not prove an optimal result within its limits: " + cause.Error()
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		m, err := tx.MarketSession(ctx, read.ID)
		if err != nil {
			return err
		}
		if m.Status != flexhub.SessionClosed || m.Version != read.Version {
			return nil // another instance got there first
		}
		now := s.now()
		if err := m.MarkClearingFailed(now, reason); err != nil {
			return err
		}
		if err := tx.UpdateMarketSession(ctx, m); err != nil {
			return err
		}
		if err := s.recordAs(ctx, tx, SchedulerActor, "session.clearing_failed", flexhub.KindMarketSession, m.ID, m.Version, m, m.OperatorID, m.SystemOperatorID); err != nil {
			return err
		}
		return s.notify(ctx, tx, []string{m.OperatorID, m.SystemOperatorID}, flexhub.NotifySessionClearingFailed, flexhub.KindMarketSession, m.ID, m.ID,
			fmt.Sprintf("session %s could not be cleared: %s", m.ID, reason))
	})
	if flexhub.ErrorKind(err) == flexhub.EConflict {
		return nil
	}
	if err == nil {
		s.log.Error("clearing failed for good; the session awaits its operator", "session", read.ID, "err", cause)
	}
	return err
}

// clearInput is everything a clearing reads, from one snapshot.
type clearInput struct {
	session *flexhub.MarketSession
	product *flexhub.Product
	needs   []*flexhub.Need
	bids    []*flexhub.Bid // every bid of the session, by id (submission order)
	grid    *gridClear     // a DSO's clearing in its own grid (clear_grid.go); nil otherwise
	first   *dsoFirst      // a dso_first session: what the DSOs left (coordination.go); nil otherwise
	common  *commonMarket  // a common_market session: the sessions cleared with it (common_market.go); nil otherwise
}

func loadClearInput(ctx context.Context, tx flexhub.Tx, id string) (*clearInput, error) {
	m, err := tx.MarketSession(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Status != flexhub.SessionClosed {
		return nil, nil
	}
	in := &clearInput{session: m}
	if in.product, err = tx.Product(ctx, m.ProductID); err != nil {
		return nil, err
	}
	for _, nid := range m.NeedIDs {
		n, err := tx.Need(ctx, nid)
		if err != nil {
			return nil, err
		}
		in.needs = append(in.needs, n)
	}
	in.bids, err = listAll(func(pg flexhub.Page) ([]*flexhub.Bid, string, error) {
		return tx.ListBids(ctx, flexhub.Filter{"session_id": id}, pg)
	})
	return in, err
}

// groupKey prefixes a bid's exclusive group names: groups are the FSP's
// own (and, in a joint clearing of several sessions, the session's).
func groupKey(in *clearInput, b *flexhub.Bid) string {
	if in.common != nil {
		return b.FSPID + "/" + b.SessionID + "/"
	}
	return b.FSPID + "/"
}

// clearOutput is what a clearing decided, ready to store.
type clearOutput struct {
	awards      []*flexhub.Award
	obligations []*flexhub.Obligation
	results     []*flexhub.NeedResult
}

// bidCell is one interval of a bid as the clearing sees it.
type bidCell struct {
	start      time.Time
	offered    int64 // W or var as bid
	col        int   // column of the problem; -1: the need no longer has it
	price      int64 // selection price, ten-thousandths per MW per hour (or per MWh)
	activation *flexhub.Money
	capped     bool // above the need's (revised) maximum price
}

// Reasons flexhub gives itself, for bids the engine never sees.
const (
	reasonNeedCancelled = "the need was cancelled by its system operator before gate closure"
	reasonNoInterval    = "the need no longer has any of the bid's intervals"
)

// computeClearing builds the problem, solves it and turns the solution
// into awards, obligations and need results. Pure apart from solve.
func computeClearing(in *clearInput, solve Solver, now time.Time) (*clearOutput, error) {
	m, prod := in.session, in.product
	res := prod.Resolution()
	unit := "W"
	if prod.PowerType == "reactive" {
		unit = "var"
	}
	// Columns: every interval of every need still wanted.
	type column struct {
		need   *flexhub.Need
		iv     *flexhub.NeedInterval
		demand int64
	}
	var cols []column
	colOf := map[string]map[int64]int{}
	needByID := map[string]*flexhub.Need{}
	for _, n := range in.needs {
		needByID[n.ID] = n
		if n.Status == flexhub.NeedCancelled {
			continue
		}
		colOf[n.ID] = map[int64]int{}
		for i := range n.Intervals {
			iv := &n.Intervals[i]
			d, err := iv.Quantity.Base("quantity", prod.PowerType, "need.quantity")
			if err != nil {
				return nil, fmt.Errorf("need %s: %w", n.ID, err)
			}
			colOf[n.ID][iv.Start.UnixMicro()] = len(cols)
			cols = append(cols, column{need: n, iv: iv, demand: d})
		}
	}
	// Cells of every submitted bid.
	type bidInfo struct {
		bid    *flexhub.Bid
		need   *flexhub.Need
		basis  string
		cells  []bidCell
		minQ   int64
		reason string // set when the engine never sees the bid
		engine int    // index into problem bids, -1 if none
	}
	var infos []*bidInfo
	for _, b := range in.bids {
		if b.Status != flexhub.BidSubmitted {
			continue
		}
		n := needByID[b.NeedID]
		if n == nil {
			return nil, fmt.Errorf("bid %s: need %s is not in session %s", b.ID, b.NeedID, m.ID)
		}
		bi := &bidInfo{bid: b, need: n, basis: flexhub.PriceAvailability, engine: -1}
		if n.Buys == "energy" {
			bi.basis = flexhub.PriceActivation
		}
		infos = append(infos, bi)
		if b.MinQuantity != nil {
			v, err := b.MinQuantity.Base("min_quantity", prod.PowerType, "bid.min_quantity")
			if err != nil {
				return nil, fmt.Errorf("bid %s: %w", b.ID, err)
			}
			bi.minQ = v
		}
		for _, iv := range b.Intervals {
			q, err := iv.Quantity.Base("quantity", prod.PowerType, "bid.quantity")
			if err != nil {
				return nil, fmt.Errorf("bid %s: %w", b.ID, err)
			}
			for _, gc := range b.GridCaps { // amber traffic lights (divisible bids only)
				if gc.Start.Equal(iv.Start) && gc.Allowed < q {
					q = gc.Allowed
				}
			}
			if in.first != nil { // dso_first: what the DSOs' markets left of the resource
				if left, ok := in.first.left[b.ID][iv.Start.UnixMicro()]; ok && left < q {
					q = left
					if !b.Divisible || bi.minQ > q {
						q = 0 // an indivisible bid, or one whose minimum is above what is left, cannot be cut
					}
				}
			}
			c := bidCell{start: iv.Start, offered: q, col: -1, activation: iv.ActivationPrice}
			sel := iv.AvailabilityPrice
			if bi.basis == flexhub.PriceActivation {
				sel, c.activation = iv.ActivationPrice, nil
			}
			if sel == nil {
				return nil, fmt.Errorf("bid %s: no %s price at %s", b.ID, bi.basis, iv.Start.Format(time.RFC3339))
			}
			if c.price, err = sel.Parse("price"); err != nil {
				return nil, fmt.Errorf("bid %s: %w", b.ID, err)
			}
			if col, ok := colOf[n.ID][iv.Start.UnixMicro()]; ok {
				c.col = col
				ni := cols[col].iv
				if ni.MaxPrice != nil {
					if limit, err := ni.MaxPrice.Parse("max_price"); err == nil && c.price > limit {
						c.capped = true
					}
				}
				if ni.MaxActivationPrice != nil && c.activation != nil {
					limit, err1 := ni.MaxActivationPrice.Parse("max_activation_price")
					act, err2 := c.activation.Parse("activation_price")
					if err1 == nil && err2 == nil && act > limit {
						c.capped = true
					}
				}
			}
			bi.cells = append(bi.cells, c)
		}
	}
	// Exclusive groups: per FSP, a bid joins the group it names; naming
	// one of the FSP's bids of the session puts both in one group. Groups
	// that share a bid merge, since the engine gives a bid one group.
	parent := map[string]string{}
	var find func(string) string
	find = func(a string) string {
		if p, ok := parent[a]; ok && p != a {
			r := find(p)
			parent[a] = r
			return r
		}
		parent[a] = a
		return a
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if rb < ra {
			ra, rb = rb, ra
		}
		parent[rb] = ra // the smaller label names the group: deterministic
	}
	for _, bi := range infos {
		g := bi.bid.ExclusiveGroup
		if g == "" {
			continue
		}
		// The group key of a name and of a bid id of the same FSP are the
		// same string, so a bid named as a group joins it.
		union(groupKey(in, bi.bid)+bi.bid.ID, groupKey(in, bi.bid)+g)
	}
	// Each group is known by the smallest name its FSP gave it, so that a
	// reason names a group as the FSP wrote it.
	label := map[string]string{}
	for _, bi := range infos {
		if g := bi.bid.ExclusiveGroup; g != "" {
			r := find(groupKey(in, bi.bid) + bi.bid.ID)
			if l, ok := label[r]; !ok || g < l {
				label[r] = g
			}
		}
	}
	// The problem. Bids the engine can never accept stay out of it.
	p := &clearing.Problem{Demand: make([]int64, len(cols)), Pricing: clearing.PayAsBid}
	for c := range cols {
		p.Demand[c] = cols[c].demand
	}
	for _, bi := range infos {
		if bi.need.Status == flexhub.NeedCancelled {
			bi.reason = reasonNeedCancelled
			continue
		}
		qty := make([]int64, len(cols))
		price := make([]int64, len(cols))
		offered, capped := false, false
		for _, c := range bi.cells {
			switch {
			case c.col < 0:
			case c.capped:
				capped = true
			default:
				qty[c.col], price[c.col], offered = c.offered, c.price, true
			}
		}
		switch {
		case capped && bi.bid.Linked:
			bi.reason = clearing.ReasonLinkedPriceCap
			continue
		case !offered && capped:
			bi.reason = clearing.ReasonPriceCap
			continue
		case !offered:
			bi.reason = reasonNoInterval
			continue
		}
		eb := clearing.Bid{ID: bi.bid.ID, Quantity: qty, Price: price, Divisible: bi.bid.Divisible, MinQuantity: bi.minQ, Linked: bi.bid.Linked}
		if self := groupKey(in, bi.bid) + bi.bid.ID; parent[self] != "" {
			eb.ExclusiveGroup = groupKey(in, bi.bid) + label[find(self)]
		}
		bi.engine = len(p.Bids)
		p.Bids = append(p.Bids, eb)
	}
	// A group label of a single bid restricts nothing; drop it so reasons
	// never name a group that was not one.
	members := map[string]int{}
	for _, b := range p.Bids {
		if b.ExclusiveGroup != "" {
			members[b.ExclusiveGroup]++
		}
	}
	for i := range p.Bids {
		if members[p.Bids[i].ExclusiveGroup] < 2 {
			p.Bids[i].ExclusiveGroup = ""
		}
	}
	starts := make([]int64, len(cols))
	for c := range cols {
		starts[c] = cols[c].iv.Start.UnixMicro()
	}
	engineBid, signs := make([]*flexhub.Bid, len(p.Bids)), make([]int8, len(p.Bids))
	for _, bi := range infos {
		if bi.engine >= 0 {
			engineBid[bi.engine], signs[bi.engine] = bi.bid, 1
			if bi.need.Direction == "down" {
				signs[bi.engine] = -1
			}
		}
	}
	gridLimitsCovered := 0
	if in.grid != nil && len(cols) > 0 {
		var err error
		if gridLimitsCovered, err = in.grid.network(p, engineBid, signs, starts, prod.PowerType == "reactive"); err != nil {
			return nil, fmt.Errorf("grid rows: %w", err)
		}
	}
	accepted := make([][]int64, len(p.Bids))
	var reasons []string
	var gridOut []*flexhub.GridOutcome
	if in.common != nil && len(cols) > 0 {
		needOf := make([]*flexhub.Need, len(cols))
		for c := range cols {
			needOf[c] = cols[c].need
		}
		var err error
		if accepted, reasons, gridOut, err = in.common.clear(p, engineBid, signs, starts, needOf, prod.PowerType == "reactive", solve); err != nil {
			return nil, err
		}
	}
	// With a grid, the cleared state is checked by AC power flow and the
	// rows are linearised again at the cleared point and the session
	// cleared again — where the linearisation let a limit slip, and where
	// it held the clearing short of what the grid really takes — until the
	// clearing stops changing (at most maxGridPasses times); the best
	// clearing the AC check found clean is kept (gridBest), and its check
	// is what the need result reports.
	var best gridBest
	passes := 0
	for pass := 1; in.common == nil && len(cols) > 0; pass++ {
		got, why, err := solveScaled(p, solve)
		if err != nil {
			return nil, err
		}
		changed := pass == 1 || !sameAccepted(got, accepted)
		accepted, reasons = got, why
		if in.grid == nil {
			break
		}
		if !changed {
			break // the re-linearised rows gave the same clearing: converged
		}
		passes = pass
		var ats [][]*powerflow.Result
		if gridOut, ats, err = in.grid.verify(p, accepted, starts, gridLimitsCovered); err != nil {
			return nil, fmt.Errorf("grid check: %w", err)
		}
		best.offer(p, accepted, reasons, gridOut)
		if pass == maxGridPasses {
			break
		}
		if err := in.grid.relinearise(p, accepted, starts, ats); err != nil {
			return nil, fmt.Errorf("grid rows at the cleared point: %w", err)
		}
	}
	if best.ok {
		accepted, reasons, gridOut = best.accepted, best.reasons, best.out
		for _, o := range gridOut {
			o.Passes = passes
		}
	}
	// Uniform price per column: the highest selection price accepted.
	clearPrice := make([]int64, len(cols))
	for i, b := range p.Bids {
		for c, v := range accepted[i] {
			if v > 0 {
				clearPrice[c] = max(clearPrice[c], b.Price[c])
			}
		}
	}
	secs := int64(res / time.Second)
	out := &clearOutput{}
	type stat struct {
		accepted       int64
		minP, maxP     int64
		weighted, cost *big.Int
	}
	stats := make([]stat, len(cols))
	for c := range stats {
		stats[c] = stat{minP: -1, weighted: new(big.Int), cost: new(big.Int)}
	}
	needCost := map[string]*big.Int{}
	for _, bi := range infos {
		b, n := bi.bid, bi.need
		m := in.sessionFor(n.ID)
		a := &flexhub.Award{ID: flexhub.NewID(), SessionID: m.ID, NeedID: n.ID, BidID: b.ID, FSPID: b.FSPID, ResourceID: b.ResourceID,
			SystemOperatorID: b.SystemOperatorID, OperatorID: b.OperatorID, Pricing: m.Pricing, PriceBasis: bi.basis, Unit: unit,
			Currency: n.Currency, CreatedAt: now}
		total := new(big.Int)
		full, some := true, false
		for _, c := range bi.cells {
			ai := flexhub.AwardInterval{Start: c.start, Offered: c.offered}
			if c.col < 0 {
				ai.Offered = 0
				full = false
			}
			if bi.engine >= 0 && c.col >= 0 {
				ai.Accepted = accepted[bi.engine][c.col]
			}
			if ai.Accepted != c.offered {
				full = false
			}
			amount := int64(0)
			if ai.Accepted > 0 {
				some = true
				paid := c.price
				if m.Pricing == flexhub.PricingUniform {
					paid = clearPrice[c.col]
				}
				ai.Price = &flexhub.Money{Amount: flexhub.FormatAmount(paid), Currency: n.Currency}
				if bi.basis == flexhub.PriceAvailability && c.activation != nil {
					act := *c.activation
					act.Normalize("activation_price") // canonical, like every price flexhub shows
					ai.ActivationPrice = &act
				}
				v, err := moneyFor(ai.Accepted, paid, secs)
				if err != nil {
					return nil, fmt.Errorf("bid %s: %w", b.ID, err)
				}
				amount = v
				st := &stats[c.col]
				st.accepted += ai.Accepted
				if st.minP < 0 || paid < st.minP {
					st.minP = paid
				}
				st.maxP = max(st.maxP, paid)
				st.weighted.Add(st.weighted, new(big.Int).Mul(big.NewInt(ai.Accepted), big.NewInt(paid)))
			}
			ai.Amount = flexhub.Money{Amount: flexhub.FormatAmount(amount), Currency: n.Currency}
			total.Add(total, big.NewInt(amount))
			a.Intervals = append(a.Intervals, ai)
		}
		if !total.IsInt64() {
			return nil, fmt.Errorf("bid %s: amount beyond int64", b.ID)
		}
		a.Amount = flexhub.Money{Amount: flexhub.FormatAmount(total.Int64()), Currency: n.Currency}
		if needCost[n.ID] == nil {
			needCost[n.ID] = new(big.Int)
		}
		needCost[n.ID].Add(needCost[n.ID], total)
		switch {
		case full && some:
			a.Status = flexhub.AwardAccepted
		case some:
			a.Status = flexhub.AwardPartiallyAccepted
		default:
			a.Status = flexhub.AwardRejected
			a.Reason = bi.reason
			if a.Reason == "" && bi.engine >= 0 && bi.engine < len(reasons) {
				// Group keys carry the FSP id to keep FSPs' names apart;
				// the FSP knows its groups by the names it gave.
				a.Reason = strings.ReplaceAll(reasons[bi.engine], "exclusive group "+groupKey(in, b), "exclusive group ")
			}
			if a.Reason == "" {
				a.Reason = clearing.ReasonNotNeeded
			}
		}
		out.awards = append(out.awards, a)
		if !some {
			continue
		}
		o := &flexhub.Obligation{ID: flexhub.NewID(), AwardID: a.ID, BidID: b.ID, SessionID: m.ID, NeedID: n.ID, ProductID: m.ProductID,
			FSPID: b.FSPID, ResourceID: b.ResourceID, SystemOperatorID: b.SystemOperatorID, OperatorID: b.OperatorID,
			Direction: n.Direction, Buys: n.Buys, Unit: unit, Status: flexhub.ObligationActive, CreatedAt: now, UpdatedAt: now}
		for _, ai := range a.Intervals {
			if ai.Accepted > 0 {
				o.Intervals = append(o.Intervals, flexhub.ObligationInterval{Start: ai.Start, End: ai.Start.Add(res), Quantity: ai.Accepted})
			}
		}
		out.obligations = append(out.obligations, o)
	}
	for _, n := range in.needs {
		m := in.sessionFor(n.ID)
		basis := flexhub.PriceAvailability
		if n.Buys == "energy" {
			basis = flexhub.PriceActivation
		}
		r := &flexhub.NeedResult{ID: flexhub.NewID(), SessionID: m.ID, SystemOperatorID: n.SystemOperatorID, CreatedAt: now,
			NeedOutcome: flexhub.NeedOutcome{NeedID: n.ID, Direction: n.Direction, Buys: n.Buys, PriceBasis: basis, Unit: unit, Currency: n.Currency,
				Cancelled: n.Status == flexhub.NeedCancelled, Intervals: []flexhub.OutcomeInterval{}}}
		cost := needCost[n.ID]
		if cost == nil {
			cost = new(big.Int)
		}
		if !cost.IsInt64() {
			return nil, fmt.Errorf("need %s: total cost beyond int64", n.ID)
		}
		r.TotalCost = flexhub.Money{Amount: flexhub.FormatAmount(cost.Int64()), Currency: n.Currency}
		for i := range n.Intervals {
			oi := flexhub.OutcomeInterval{Start: n.Intervals[i].Start}
			if c, ok := colOf[n.ID][oi.Start.UnixMicro()]; ok {
				st := stats[c]
				oi.Demand, oi.Accepted = cols[c].demand, st.accepted
				if gridOut != nil {
					oi.Grid = gridOut[c]
				}
				oi.Shortfall = max(0, oi.Demand-oi.Accepted)
				money := func(v int64) *flexhub.Money {
					return &flexhub.Money{Amount: flexhub.FormatAmount(v), Currency: n.Currency}
				}
				if st.accepted > 0 {
					if m.Pricing == flexhub.PricingUniform {
						oi.ClearingPrice = money(clearPrice[c])
					} else {
						oi.MinPrice, oi.MaxPrice = money(st.minP), money(st.maxP)
						oi.AveragePrice = money(roundHalfUp(st.weighted, big.NewInt(st.accepted)).Int64())
					}
				}
			}
			r.Intervals = append(r.Intervals, oi)
		}
		out.results = append(out.results, r)
	}
	return out, nil
}

// solveScaled solves p, scaled down by its common factors (scaleProblem),
// and returns the accepted quantities in p's units, each checked within
// its bid's quantity, with the engine's reasons.
func solveScaled(p *clearing.Problem, solve Solver) ([][]int64, []string, error) {
	scaled := scaleProblem(p)
	r, err := solve(scaled.p)
	if err != nil {
		return nil, nil, fmt.Errorf("clearing engine: %w", err)
	}
	if len(r.Accepted) != len(p.Bids) {
		return nil, nil, fmt.Errorf("clearing engine: %d results for %d bids", len(r.Accepted), len(p.Bids))
	}
	out := make([][]int64, len(p.Bids))
	for i := range r.Accepted {
		out[i] = make([]int64, len(p.Demand))
		for c, v := range r.Accepted[i] {
			out[i][c] = v * scaled.q
			if out[i][c] > p.Bids[i].Quantity[c] || out[i][c] < 0 {
				return nil, nil, fmt.Errorf("clearing engine: bid %s accepted %d of %d at column %d", p.Bids[i].ID, out[i][c], p.Bids[i].Quantity[c], c)
			}
		}
	}
	return out, r.Reasons, nil
}

// sameAccepted reports whether two clearings accepted the same.
func sameAccepted(a, b [][]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// scaled is a problem divided by common factors, and the quantity factor
// to multiply the engine's accepted quantities back with.
type scaled struct {
	p *clearing.Problem
	q int64
}

// engineLimit is the bound the engine keeps its exact int64 sums under
// (clearing refuses Σ quantity × highest price, Σ quantity × bids at or
// above it).
var engineLimit = new(big.Int).Lsh(big.NewInt(1), 62)

// scaleProblem divides every price by the prices' greatest common
// divisor: costs shrink by a constant factor, so the selection, the
// tie-break and the reasons are exactly the same, and the engine's exact
// int64 costs stay far from overflow. Only when the totals would still
// overflow are the quantities (demand, offers, minimums) divided by their
// greatest common divisor too, e.g. to whole kW for kW bids: the same
// problem in coarser units, where a divisible linked bid is accepted in
// steps of that unit instead of whole W. Amounts are always computed from
// the original prices and quantities, so nothing is lost there.
func scaleProblem(p *clearing.Problem) scaled {
	gq, gp := int64(0), int64(0)
	totalQ, maxP := new(big.Int), int64(0)
	for _, d := range p.Demand {
		gq = gcd(gq, d)
	}
	for _, b := range p.Bids {
		gq = gcd(gq, b.MinQuantity)
		for t := range b.Quantity {
			if b.Quantity[t] > 0 {
				gq = gcd(gq, b.Quantity[t])
				gp = gcd(gp, b.Price[t])
				totalQ.Add(totalQ, big.NewInt(b.Quantity[t]))
				maxP = max(maxP, b.Price[t])
			}
		}
	}
	gq, gp = max(gq, 1), max(gp, 1)
	maxP = max(maxP/gp, 1)
	bids := big.NewInt(int64(len(p.Bids)) + 1)
	if new(big.Int).Mul(totalQ, big.NewInt(maxP)).Cmp(engineLimit) < 0 && new(big.Int).Mul(totalQ, bids).Cmp(engineLimit) < 0 {
		gq = 1
	}
	out := &clearing.Problem{Demand: make([]int64, len(p.Demand)), Pricing: p.Pricing, Bids: make([]clearing.Bid, len(p.Bids))}
	for t, d := range p.Demand {
		out.Demand[t] = d / gq
	}
	for i, b := range p.Bids {
		nb := b
		nb.MinQuantity = b.MinQuantity / gq
		nb.Quantity, nb.Price = make([]int64, len(b.Quantity)), make([]int64, len(b.Price))
		for t := range b.Quantity {
			nb.Quantity[t], nb.Price[t] = b.Quantity[t]/gq, b.Price[t]/gp
		}
		out.Bids[i] = nb
	}
	if p.Network != nil {
		// The rows hold Σ coeff·x; with x in units of gq the same limit
		// is Σ (coeff·gq)·x'.
		nw := &clearing.Network{Bids: p.Network.Bids, Rows: make([]clearing.NetRow, len(p.Network.Rows))}
		for i, r := range p.Network.Rows {
			if gq > 1 {
				r.PPM = scaleCoeffs(r.PPM, gq)
				r.QPPM = scaleCoeffs(r.QPPM, gq)
			}
			nw.Rows[i] = r
		}
		out.Network = nw
	}
	return scaled{p: out, q: gq}
}

func scaleCoeffs(c []int64, by int64) []int64 {
	if c == nil {
		return nil
	}
	out := make([]int64, len(c))
	for i, v := range c {
		out[i] = v * by
	}
	return out
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// wattSecondsPerMWh converts W × s into MWh: 10^6 W/MW × 3600 s/h.
var wattSecondsPerMWh = big.NewInt(3_600_000_000)

// moneyFor is accepted W × price (ten-thousandths per MW per hour) ×
// seconds, in ten-thousandths, exact and rounded half up.
func moneyFor(accepted, price, seconds int64) (int64, error) {
	num := new(big.Int).Mul(big.NewInt(accepted), big.NewInt(price))
	num.Mul(num, big.NewInt(seconds))
	v := roundHalfUp(num, wattSecondsPerMWh)
	if !v.IsInt64() {
		return 0, fmt.Errorf("amount of %d W at %s for %d s is beyond int64", accepted, flexhub.FormatAmount(price), seconds)
	}
	return v.Int64(), nil
}

// roundHalfUp returns num/den rounded half up (num ≥ 0, den > 0).
func roundHalfUp(num, den *big.Int) *big.Int {
	n := new(big.Int).Lsh(num, 1)
	n.Add(n, den)
	return n.Quo(n, new(big.Int).Lsh(den, 1))
}

// storeClearing writes a clearing in tx: the session's move to cleared
// first (the versioned claim), then bids, awards, obligations, need
// results, audit entries and notifications.
func (s *Service) storeClearing(ctx context.Context, tx flexhub.Tx, m *flexhub.MarketSession, in *clearInput, out *clearOutput) error {
	now := s.now()
	if err := m.MarkCleared(now); err != nil {
		return err
	}
	if err := tx.UpdateMarketSession(ctx, m); err != nil {
		return err
	}
	bids := map[string]*flexhub.Bid{}
	for _, b := range in.bids {
		bids[b.ID] = b
	}
	for _, a := range out.awards {
		a.CreatedAt = now
		b := bids[a.BidID]
		b.Status, b.UpdatedAt = a.Status, now
		if err := tx.UpdateBid(ctx, b); err != nil {
			return err
		}
		if err := s.recordAs(ctx, tx, SchedulerActor, "bid."+a.Status, flexhub.KindBid, b.ID, b.Version, b, b.FSPID, b.OperatorID, b.SystemOperatorID); err != nil {
			return err
		}
		if err := tx.CreateAward(ctx, a); err != nil {
			return err
		}
		if err := s.recordAs(ctx, tx, SchedulerActor, "award.created", flexhub.KindAward, a.ID, a.Version, a, a.FSPID, a.SystemOperatorID, a.OperatorID); err != nil {
			return err
		}
	}
	for _, o := range out.obligations {
		o.CreatedAt, o.UpdatedAt = now, now
		if err := tx.CreateObligation(ctx, o); err != nil {
			return err
		}
		if err := s.recordAs(ctx, tx, SchedulerActor, "obligation.created", flexhub.KindObligation, o.ID, o.Version, o, o.FSPID, o.SystemOperatorID, o.OperatorID); err != nil {
			return err
		}
	}
	for _, r := range out.results {
		r.CreatedAt = now
		if err := tx.CreateNeedResult(ctx, r); err != nil {
			return err
		}
		if err := s.recordAs(ctx, tx, SchedulerActor, "need_result.created", flexhub.KindNeedResult, r.ID, r.Version, r, r.SystemOperatorID, m.OperatorID); err != nil {
			return err
		}
	}
	if err := s.recordAs(ctx, tx, SchedulerActor, "session.cleared", flexhub.KindMarketSession, m.ID, m.Version, m, m.OperatorID, m.SystemOperatorID); err != nil {
		return err
	}
	bidders := []string{m.OperatorID, m.SystemOperatorID}
	for _, b := range in.bids {
		bidders = append(bidders, b.FSPID)
	}
	if err := s.notify(ctx, tx, bidders, flexhub.NotifySessionCleared, flexhub.KindMarketSession, m.ID, m.ID,
		fmt.Sprintf("session %s (%s) cleared: %d bids decided; results at /v1/market-sessions/%s/results, public outcome at /v1/market-sessions/%s/outcome",
			m.ID, m.Kind, len(out.awards), m.ID, m.ID)); err != nil {
		return err
	}
	for _, a := range out.awards {
		text := fmt.Sprintf("bid %s %s", a.BidID, strings.ReplaceAll(a.Status, "_", " "))
		if a.Status == flexhub.AwardRejected {
			text += ": " + a.Reason
		} else {
			text += fmt.Sprintf(" for %s %s; obligation to deliver created", a.Amount.Amount, a.Currency)
		}
		if err := s.notify(ctx, tx, []string{a.FSPID}, flexhub.NotifyAward, flexhub.KindAward, a.ID, m.ID, text); err != nil {
			return err
		}
	}
	return nil
}

// SessionResults is a session's results as the caller may read them.
type SessionResults struct {
	SessionID string                `json:"session_id"`
	Status    string                `json:"status" enum:"cleared"`
	Pricing   string                `json:"pricing" enum:"pay_as_bid,uniform"`
	ClearedAt *time.Time            `json:"cleared_at,omitempty"`
	Needs     []*flexhub.NeedResult `json:"needs" nullable:"false" doc:"the needs the caller bought (all, for the session's market operator)"`
	Awards    []*flexhub.Award      `json:"awards" nullable:"false" doc:"the caller's own awards (an FSP), the awards on its needs (the buyer), all (the market operator)"`
}

// SessionOutcome is the public market outcome of a session.
type SessionOutcome struct {
	SessionID string                `json:"session_id"`
	ProductID string                `json:"product_id"`
	Pricing   string                `json:"pricing" enum:"pay_as_bid,uniform"`
	ClearedAt *time.Time            `json:"cleared_at,omitempty"`
	Needs     []flexhub.NeedOutcome `json:"needs" nullable:"false"`
}

// canSeeResult says who reads an award or obligation: its FSP, the buyer,
// the session's market operator and the administrator. Another FSP never.
func canSeeResult(by *flexhub.Party, fspID, soID, moID string) bool {
	return by.ID == fspID || by.ID == soID || by.ID == moID || by.HasRole(flexhub.RoleAdmin)
}

// clearedSession loads a session whose results exist, or explains why
// there are none yet.
func clearedSession(ctx context.Context, tx flexhub.Tx, id string) (*flexhub.MarketSession, error) {
	m, err := tx.MarketSession(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Status != flexhub.SessionCleared {
		return nil, flexhub.RuleErrorf(flexhub.EConflict, "session.not_cleared", "id", "session %s is %s; results exist once it is cleared, right after gate closure at %s",
			id, m.Status, m.GateClosure.Format(time.RFC3339))
	}
	return m, nil
}

// GetSessionResults returns a cleared session's results scoped to the
// caller: an FSP its own awards, the buyer every award and result of its
// needs, the market operator everything. Any other party gets empty lists.
func (s *Service) GetSessionResults(ctx context.Context, id string) (*SessionResults, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	out := &SessionResults{Needs: []*flexhub.NeedResult{}, Awards: []*flexhub.Award{}}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		m, err := clearedSession(ctx, tx, id)
		if err != nil {
			return err
		}
		out.SessionID, out.Status, out.Pricing, out.ClearedAt = m.ID, m.Status, m.Pricing, m.ClearedAt
		results, err := listAll(func(pg flexhub.Page) ([]*flexhub.NeedResult, string, error) {
			return tx.ListNeedResults(ctx, flexhub.Filter{"session_id": id}, pg)
		})
		if err != nil {
			return err
		}
		sortResults(results, m)
		for _, r := range results {
			if canSeeResult(by, "", r.SystemOperatorID, m.OperatorID) {
				out.Needs = append(out.Needs, r)
			}
		}
		f := flexhub.Filter{"session_id": id}
		switch {
		case by.ID == m.OperatorID || by.HasRole(flexhub.RoleAdmin) || by.ID == m.SystemOperatorID:
		default:
			f["fsp_id"] = by.ID
		}
		awards, err := listAll(func(pg flexhub.Page) ([]*flexhub.Award, string, error) { return tx.ListAwards(ctx, f, pg) })
		if err != nil {
			return err
		}
		for _, a := range awards {
			if canSeeResult(by, a.FSPID, a.SystemOperatorID, a.OperatorID) {
				out.Awards = append(out.Awards, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetSessionOutcome returns the public outcome of a cleared session:
// volumes and prices per need and interval, no party but the session's.
func (s *Service) GetSessionOutcome(ctx context.Context, id string) (*SessionOutcome, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	var out *SessionOutcome
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		m, err := clearedSession(ctx, tx, id)
		if err != nil {
			return err
		}
		out = &SessionOutcome{SessionID: m.ID, ProductID: m.ProductID, Pricing: m.Pricing, ClearedAt: m.ClearedAt, Needs: []flexhub.NeedOutcome{}}
		results, err := listAll(func(pg flexhub.Page) ([]*flexhub.NeedResult, string, error) {
			return tx.ListNeedResults(ctx, flexhub.Filter{"session_id": id}, pg)
		})
		if err != nil {
			return err
		}
		sortResults(results, m)
		for _, r := range results {
			out.Needs = append(out.Needs, r.NeedOutcome)
		}
		return nil
	})
	return out, err
}

// sortResults puts need results in the session's need order.
func sortResults(results []*flexhub.NeedResult, m *flexhub.MarketSession) {
	sort.SliceStable(results, func(i, j int) bool {
		return slices.Index(m.NeedIDs, results[i].NeedID) < slices.Index(m.NeedIDs, results[j].NeedID)
	})
}

// ResultFilter narrows an award or obligation list.
type ResultFilter struct {
	SessionID        string
	NeedID           string
	FSPID            string
	SystemOperatorID string
	ResourceID       string // obligations only
	Status           string
}

// resultScope scopes a list of awards or obligations to what the caller
// may read: the administrator and a session's market operator (with
// session_id) whole; otherwise an FSP its own, a system operator what it
// bought. Naming another party is refused rather than answered empty.
func resultScope(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, f flexhub.Filter, what string) error {
	for _, k := range []string{"fsp_id", "system_operator_id"} {
		if f[k] == "self" {
			f[k] = by.ID
		}
	}
	if by.HasRole(flexhub.RoleAdmin) {
		return nil
	}
	if id := f["session_id"]; id != "" {
		m, err := tx.MarketSession(ctx, id)
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return flexhub.FieldErrorf("query.session_id", "market session %s not found", id)
		}
		if err != nil {
			return err
		}
		if m.OperatorID == by.ID {
			return nil
		}
	}
	fsp, fok := f["fsp_id"]
	so, sok := f["system_operator_id"]
	switch {
	case fok && fsp != by.ID && !(sok && so == by.ID):
		return &flexhub.Error{Kind: flexhub.EForbidden, Field: "query.fsp_id", Message: "you may list only your own " + what + ": set fsp_id to your party id (or self), or leave it out"}
	case sok && so != by.ID && !(fok && fsp == by.ID):
		return &flexhub.Error{Kind: flexhub.EForbidden, Field: "query.system_operator_id", Message: "you may list only the " + what + " you bought: set system_operator_id to your party id (or self), or leave it out"}
	case fok || sok:
		return nil
	case by.HasRole(flexhub.RoleFSP):
		f["fsp_id"] = by.ID
	case by.IsSystemOperator():
		f["system_operator_id"] = by.ID
	default:
		return flexhub.Errorf(flexhub.EForbidden, "listing %s needs the fsp role (your own), a system operator role (what you bought), or session_id of a session you operate; party %s has %v", what, by.EIC, by.Roles)
	}
	return nil
}

// ListAwards lists the awards the caller may read.
func (s *Service) ListAwards(ctx context.Context, rf ResultFilter, pg flexhub.Page) (*ListResult[flexhub.Award], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f, err := buildFilter(idParam{"session_id", rf.SessionID}, idParam{"need_id", rf.NeedID}, idParam{"fsp_id", rf.FSPID}, idParam{"system_operator_id", rf.SystemOperatorID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(f, rf.Status, "award", []string{flexhub.AwardAccepted, flexhub.AwardPartiallyAccepted, flexhub.AwardRejected}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.Award]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		if err := resultScope(ctx, tx, by, f, "awards"); err != nil {
			return err
		}
		var err error
		out.Items, out.Next, err = tx.ListAwards(ctx, f, pg)
		return err
	})
	return &out, err
}

// GetAward returns an award the caller may read; to anyone else it does
// not exist.
func (s *Service) GetAward(ctx context.Context, id string) (*flexhub.Award, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Award
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		a, err := tx.Award(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeResult(by, a.FSPID, a.SystemOperatorID, a.OperatorID) {
			return notFound("award", id)
		}
		out = a
		return nil
	})
	return out, err
}

// ListObligations lists the obligations the caller may read.
func (s *Service) ListObligations(ctx context.Context, rf ResultFilter, pg flexhub.Page) (*ListResult[flexhub.Obligation], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f, err := buildFilter(idParam{"session_id", rf.SessionID}, idParam{"need_id", rf.NeedID}, idParam{"fsp_id", rf.FSPID},
		idParam{"system_operator_id", rf.SystemOperatorID}, idParam{"resource_id", rf.ResourceID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(f, rf.Status, "obligation", []string{flexhub.ObligationActive, flexhub.ObligationTransferred}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.Obligation]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		if err := resultScope(ctx, tx, by, f, "obligations"); err != nil {
			return err
		}
		var err error
		out.Items, out.Next, err = tx.ListObligations(ctx, f, pg)
		return err
	})
	return &out, err
}

// GetObligation returns an obligation the caller may read; to anyone
// else it does not exist.
func (s *Service) GetObligation(ctx context.Context, id string) (*flexhub.Obligation, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Obligation
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		o, err := tx.Obligation(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeResult(by, o.FSPID, o.SystemOperatorID, o.OperatorID) {
			return notFound("obligation", id)
		}
		out = o
		return nil
	})
	return out, err
}
