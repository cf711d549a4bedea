package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
	"github.com/flexhub/flexhub/settlement"
)

// Settlement runs (docs/SETTLEMENT.md). A system operator settles a
// period [start, end): every activate order it issued whose set-points
// reach into the period and whose last set-point has ended is verified
// against its product's baseline from the stored meter data; per FSP and
// currency the availability of its active obligations and the verified
// activations are priced into a statement; the energy each order moved in
// the period is attributed to the BRPs of the metering points behind the
// resource, per 15-minute ISP. All of it in one transaction: a run that
// fails (a metering point without a BRP) stores nothing.
//
// Which orders: every activate order except those rejected (the FSP
// refused, nothing was owed) or still created (no transport ever handed
// it on, so the FSP never knew). An order ended by an end order is
// verified up to the end order's start; one the scheduler closed as
// ended_early without an acknowledgement is verified in full (it was
// delivered to the FSP). Limitation orders are not settled.
//
// Periods and orders: an order is verified whole (its baseline needs the
// whole event), but a statement pays and an adjustment attributes only
// the intervals inside the run's period, so adjacent periods never count
// an interval twice.

// Rules of refused settlement runs.
const (
	RuleSettlementPeriod = "settlement.period"
)

// RunSettlement settles a period for the calling system operator.
func (s *Service) RunSettlement(ctx context.Context, spec flexhub.SettlementRunSpec, key string) (*Created[flexhub.SettlementRun], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	request := snapshot(spec)
	if err := s.checkPeriod(&spec); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindSettlementRun, request,
		func(tx flexhub.Tx, id string) (*flexhub.SettlementRun, error) { return tx.SettlementRun(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.SettlementRun, string, error) {
			r, err := s.settle(ctx, tx, by, spec.PeriodStart, spec.PeriodEnd)
			if err != nil {
				return nil, "", err
			}
			return r, r.ID, nil
		})
}

func (s *Service) checkPeriod(spec *flexhub.SettlementRunSpec) error {
	if spec.PeriodStart.IsZero() {
		return flexhub.RuleErrorf(flexhub.EInvalid, RuleSettlementPeriod, "period_start", "a settlement run needs period_start (RFC 3339, UTC, on the 15-minute grid)")
	}
	if spec.PeriodEnd.IsZero() {
		return flexhub.RuleErrorf(flexhub.EInvalid, RuleSettlementPeriod, "period_end", "a settlement run needs period_end (RFC 3339, UTC, on the 15-minute grid)")
	}
	spec.PeriodStart, spec.PeriodEnd = spec.PeriodStart.UTC(), spec.PeriodEnd.UTC()
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"period_start", spec.PeriodStart}, {"period_end", spec.PeriodEnd}} {
		if f.t.UnixNano()%int64(flexhub.ISP) != 0 {
			return flexhub.RuleErrorf(flexhub.EInvalid, RuleSettlementPeriod, f.name, "%s %s is not on the 15-minute grid (imbalance settlement periods start at :00, :15, :30 and :45)", f.name, f.t.Format(time.RFC3339Nano))
		}
	}
	if !spec.PeriodEnd.After(spec.PeriodStart) {
		return flexhub.RuleErrorf(flexhub.EInvalid, RuleSettlementPeriod, "period_end", "period_end %s must be after period_start %s",
			spec.PeriodEnd.Format(time.RFC3339), spec.PeriodStart.Format(time.RFC3339))
	}
	if d := spec.PeriodEnd.Sub(spec.PeriodStart); d > flexhub.MaxSettlementPeriod {
		return flexhub.RuleErrorf(flexhub.EInvalid, RuleSettlementPeriod, "period_end", "a run settles at most 31 days; %s to %s is %.1f days: split it",
			spec.PeriodStart.Format(time.RFC3339), spec.PeriodEnd.Format(time.RFC3339), d.Hours()/24)
	}
	if now := s.now(); spec.PeriodEnd.After(now) {
		return flexhub.RuleErrorf(flexhub.EInvalid, RuleSettlementPeriod, "period_end", "period_end %s is in the future (now %s): only a period that has ended can be settled",
			spec.PeriodEnd.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

// settleRun is what one run reads once and computes before it writes.
type settleRun struct {
	s         *Service
	tx        flexhub.Tx
	products  map[string]*flexhub.Product
	resources map[string]*flexhub.Resource
	mps       map[string]*flexhub.MeteringPoint
	awards    map[string]*flexhub.Award
	obls      map[string]*flexhub.Obligation
}

func (r *settleRun) product(ctx context.Context, id string) (*flexhub.Product, error) {
	return cached(r.products, id, func() (*flexhub.Product, error) { return r.tx.Product(ctx, id) })
}
func (r *settleRun) resource(ctx context.Context, id string) (*flexhub.Resource, error) {
	return cached(r.resources, id, func() (*flexhub.Resource, error) { return r.tx.Resource(ctx, id) })
}
func (r *settleRun) meteringPoint(ctx context.Context, id string) (*flexhub.MeteringPoint, error) {
	return cached(r.mps, id, func() (*flexhub.MeteringPoint, error) { return r.tx.MeteringPoint(ctx, id) })
}
func (r *settleRun) award(ctx context.Context, id string) (*flexhub.Award, error) {
	return cached(r.awards, id, func() (*flexhub.Award, error) { return r.tx.Award(ctx, id) })
}
func (r *settleRun) obligation(ctx context.Context, id string) (*flexhub.Obligation, error) {
	return cached(r.obls, id, func() (*flexhub.Obligation, error) { return r.tx.Obligation(ctx, id) })
}

func cached[T any](m map[string]*T, id string, load func() (*T, error)) (*T, error) {
	if v, ok := m[id]; ok {
		return v, nil
	}
	v, err := load()
	if err == nil {
		m[id] = v
	}
	return v, err
}

// preload reads the resources and metering points of ids (and of their
// group members) that are not cached yet, a statement each.
func (r *settleRun) preload(ctx context.Context, ids []string) error {
	for round := 0; round < 2; round++ { // the resources, then their members
		var missing []string
		for _, id := range ids {
			if _, ok := r.resources[id]; !ok {
				missing = append(missing, id)
			}
		}
		got, err := r.tx.Resources(ctx, dedupe(missing))
		if err != nil {
			return err
		}
		for _, id := range missing {
			if res, ok := got[id]; ok {
				r.resources[id] = res
			} else if _, err := r.resource(ctx, id); err != nil { // its error, as read alone
				return err
			}
		}
		var next []string
		for _, id := range ids {
			next = append(next, r.resources[id].Members...)
		}
		if round == 0 {
			ids = append(ids, next...)
		}
	}
	var mps []string
	for _, id := range ids {
		if mp := r.resources[id].MeteringPointID; mp != "" {
			if _, ok := r.mps[mp]; !ok {
				mps = append(mps, mp)
			}
		}
	}
	got, err := r.tx.MeteringPoints(ctx, dedupe(mps))
	if err != nil {
		return err
	}
	for id, m := range got {
		r.mps[id] = m
	}
	return nil
}

// settled is one verified order with what settles it.
type settled struct {
	order   *flexhub.ActivationOrder
	product *flexhub.Product
	v       *flexhub.Verification
	award   *flexhub.Award
	adjs    []*flexhub.ImbalanceAdjustment
	brps    []string // notified of the verification (notify_brp)
}

// settleBlock is how many orders a run reads and verifies together: the
// meter data of a block is read in a few statements and dropped once
// verified, so a run's memory does not grow with the number of orders.
const settleBlock = 500

// settle computes the run, then stores it.
func (s *Service) settle(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, start, end time.Time) (*flexhub.SettlementRun, error) {
	now := s.now()
	r := &settleRun{s: s, tx: tx, products: map[string]*flexhub.Product{}, resources: map[string]*flexhub.Resource{},
		mps: map[string]*flexhub.MeteringPoint{}, awards: map[string]*flexhub.Award{}, obls: map[string]*flexhub.Obligation{}}
	run := &flexhub.SettlementRun{ID: flexhub.NewID(), SystemOperatorID: by.ID, PeriodStart: start, PeriodEnd: end, CreatedAt: now,
		Verifications: []flexhub.RunVerification{}, Statements: []flexhub.RunStatement{}}

	phase := time.Now()
	lap := func(name string) {
		if s.settleTrace != nil {
			s.settleTrace(name, time.Since(phase))
		}
		phase = time.Now()
	}
	orders, err := listAll(func(pg flexhub.Page) ([]*flexhub.ActivationOrder, string, error) {
		return tx.ListActivationOrders(ctx, flexhub.Filter{"system_operator_id": by.ID,
			"ends_after": flexhub.OrderTimeKey(start), "starts_before": flexhub.OrderTimeKey(end)}, pg)
	})
	if err != nil {
		return nil, err
	}
	var todo []*flexhub.ActivationOrder
	for _, o := range orders {
		if o.Type != flexhub.OrderActivate || o.Status == flexhub.OrderRejected || o.Status == flexhub.OrderCreated ||
			len(o.Setpoints) == 0 || !o.First().Before(end) || !o.Last().After(start) || o.Last().After(now) {
			continue
		}
		todo = append(todo, o)
	}
	orders = nil
	// Pipelined: while a worker computes one block (net series,
	// baselines, verification, adjustments: no store), the next is read.
	type computed struct {
		sts []*settled
		err error
	}
	work := make(chan *blockRead, 1)
	results := make(chan computed, 1)
	go func() {
		defer close(results)
		for b := range work {
			sts, err := b.compute(start, end, run.ID, now)
			results <- computed{sts, err}
		}
	}()
	var done []*settled
	var readErr, computeErr error
	pending := 0
	collect := func() {
		c := <-results
		pending--
		if c.err != nil && computeErr == nil {
			computeErr = c.err
		}
		done = append(done, c.sts...)
	}
	for len(todo) > 0 && readErr == nil && computeErr == nil {
		block := todo[:min(settleBlock, len(todo))]
		todo = todo[len(block):]
		b, err := r.readBlock(ctx, block)
		if err != nil {
			readErr = err
			break
		}
		if pending == 1 {
			collect() // at most one block waits: its readings are the run's memory
		}
		work <- b
		pending++
	}
	close(work)
	for pending > 0 {
		collect()
	}
	if readErr != nil {
		return nil, readErr
	}
	if computeErr != nil {
		return nil, computeErr
	}

	lap("verify")
	statements, err := r.statements(ctx, by, start, end, done, run.ID, now)
	if err != nil {
		return nil, err
	}
	lap("statements")

	// Everything computed: store it, set-based (a run of 10,000 orders
	// writes 10,000 verifications and over 100,000 adjustments).
	vs := make([]*flexhub.Verification, len(done))
	visible := make([]bool, len(done))
	var adjs []*flexhub.ImbalanceAdjustment
	for i, d := range done {
		vs[i], visible[i] = d.v, len(d.brps) > 0
		adjs = append(adjs, d.adjs...)
		run.Verifications = append(run.Verifications, flexhub.RunVerification{VerificationID: d.v.ID, OrderID: d.v.OrderID, FSPID: d.v.FSPID, Verdict: d.v.Verdict})
		run.Adjustments += len(d.adjs)
	}
	for _, st := range statements {
		run.Statements = append(run.Statements, st.summary)
	}
	if err := tx.CreateSettlementRun(ctx, run); err != nil {
		return nil, err
	}
	hashes, err := tx.CreateVerifications(ctx, vs, visible)
	if err != nil {
		return nil, err
	}
	if err := tx.CreateImbalanceAdjustments(ctx, adjs); err != nil {
		return nil, err
	}
	// The audit chain: the run; each verification; each verification's
	// adjustments as one entry (object: the verification; its payload
	// hash covers the adjustments, GET
	// /v1/imbalance-adjustments?verification_id=), naming the BRPs,
	// suppliers and FSP they concern.
	audit := []*flexhub.AuditEntry{s.auditEntry(by.ID, "settlement_run.created", flexhub.KindSettlementRun, run.ID, run.Version, run, by.ID)}
	var notes []*flexhub.Notification
	informed := map[string]int{} // BRP or supplier → adjustments
	var informOrder []string
	for i, d := range done {
		v := d.v
		audit = append(audit, s.auditEntryHash(by.ID, "verification.created", flexhub.KindVerification, v.ID, 1, hashes[i], by.ID, v.FSPID))
		if len(d.brps) > 0 {
			text := fmt.Sprintf("order %s on resource %s was verified: %s, delivered %d of %d %s", v.OrderID, v.ResourceID, v.Verdict, v.Delivered, v.Ordered, v.Unit)
			notes = append(notes, s.notes(d.brps, flexhub.NotifyVerification, flexhub.KindVerification, v.ID, "", text)...)
		}
		if len(d.adjs) == 0 {
			continue
		}
		parties := []string{by.ID, v.FSPID}
		for _, a := range d.adjs {
			parties = append(parties, a.BRPID, a.SupplierID)
		}
		parties = dedupe(parties)
		audit = append(audit, s.auditEntry(by.ID, "imbalance_adjustments.created", flexhub.KindVerification, v.ID, 1, d.adjs, parties...))
		for _, a := range d.adjs {
			for _, p := range dedupe([]string{a.BRPID, a.SupplierID}) {
				if informed[p] == 0 {
					informOrder = append(informOrder, p)
				}
				informed[p]++
			}
		}
	}
	for _, p := range informOrder {
		text := fmt.Sprintf("settlement run %s (%s to %s) attributed %d imbalance adjustments to your metering points: GET /v1/imbalance-adjustments?run_id=%s",
			run.ID, start.Format(time.RFC3339), end.Format(time.RFC3339), informed[p], run.ID)
		notes = append(notes, s.notes([]string{p}, flexhub.NotifyImbalanceAdjustment, flexhub.KindSettlementRun, run.ID, "", text)...)
	}
	for _, st := range statements {
		if st.statement == nil {
			continue // unchanged
		}
		m := st.statement
		hash, err := tx.CreateStatement(ctx, m)
		if err != nil {
			return nil, err
		}
		audit = append(audit, s.auditEntryHash(by.ID, "settlement_statement.issued", flexhub.KindStatement, m.ID, m.Version, hash, by.ID, m.FSPID))
		text := fmt.Sprintf("statement %s version %d for %s to %s: total %s %s", m.ID, m.StatementVersion,
			m.PeriodStart.Format(time.RFC3339), m.PeriodEnd.Format(time.RFC3339), m.Total.Amount, m.Currency)
		if m.Difference != nil {
			text += fmt.Sprintf(", %s %s against version %d (%s)", m.Difference.Amount, m.Currency, m.StatementVersion-1, m.Supersedes)
		}
		notes = append(notes, s.notes([]string{m.FSPID, m.SystemOperatorID}, flexhub.NotifyStatementIssued, flexhub.KindStatement, m.ID, "", text)...)
	}
	if err := tx.AppendAudits(ctx, audit); err != nil {
		return nil, err
	}
	if err := tx.CreateNotifications(ctx, notes); err != nil {
		return nil, err
	}
	lap("write")
	return run, nil
}

// blockRead is a block of orders with everything verifying them needs,
// read from the store: compute needs nothing else.
type blockRead struct {
	orders []orderRead
	series *seriesRead
}

// orderRead is one order's part of a blockRead.
type orderRead struct {
	o         *flexhub.ActivationOrder
	p         *flexhub.Product
	res       *flexhub.Resource
	others    []*flexhub.ActivationOrder // every order of the resource
	endedAt   time.Time
	nominated *baseline.Series
	award     *flexhub.Award
	shares    []settlement.Share
}

// readBlock reads what a block of orders needs, set-based: its resources,
// members and metering points, every order of its resources (their
// activation days, and the end orders), and the meter data of all of
// them.
func (r *settleRun) readBlock(ctx context.Context, orders []*flexhub.ActivationOrder) (*blockRead, error) {
	var resIDs []string
	for _, o := range orders {
		resIDs = append(resIDs, o.ResourceID)
	}
	resIDs = dedupe(resIDs)
	if err := r.preload(ctx, resIDs); err != nil {
		return nil, err
	}
	b := &blockRead{orders: make([]orderRead, len(orders))}
	reqs := make([]seriesRequest, len(orders))
	var err error
	for i, o := range orders {
		reqs[i], err = r.seriesRequest(ctx, o)
		if err != nil {
			return nil, err
		}
	}
	// Every order of the block's resources over the meter data read: the
	// other activation days (never in a baseline) and the end orders.
	lo, hi := reqs[0].from, reqs[0].to
	for _, q := range reqs {
		lo, hi = minTime(lo, q.from), maxTime(hi, q.to)
	}
	all, err := r.tx.ResourceActivationOrders(ctx, resIDs, lo, hi)
	if err != nil {
		return nil, err
	}
	byResource := map[string][]*flexhub.ActivationOrder{}
	byID := map[string]*flexhub.ActivationOrder{}
	for _, x := range all {
		byResource[x.ResourceID] = append(byResource[x.ResourceID], x)
		byID[x.ID] = x
	}
	for i, o := range orders {
		p, res := r.products[o.ProductID], reqs[i].res
		params := p.BaselineParams()
		first, last, step := o.First(), o.Last(), reqs[i].step
		or := orderRead{o: o, p: p, res: res, others: byResource[o.ResourceID]}
		if o.EndedByOrderID != "" {
			eo := byID[o.EndedByOrderID]
			if eo == nil {
				if eo, err = r.tx.ActivationOrder(ctx, o.EndedByOrderID); err != nil {
					return nil, err
				}
			}
			or.endedAt = eo.First()
		}
		// nominated_schedule: the FSP's nominated baseline over the order
		// (app/nomination.go; frozen at gate closure). None: no_baseline.
		if params.Method == "nominated_schedule" {
			if or.nominated, err = r.s.nominatedSeries(ctx, r.tx, res.ID, first, last, step); err != nil {
				return nil, err
			}
		}
		if o.ObligationID != "" {
			ob, err := r.obligation(ctx, o.ObligationID)
			if err != nil {
				return nil, err
			}
			if or.award, err = r.award(ctx, ob.AwardID); err != nil {
				return nil, err
			}
		}
		if or.shares, err = r.shares(ctx, res, o.Direction); err != nil {
			return nil, err
		}
		b.orders[i] = or
	}
	if b.series, err = readSeries(ctx, r.tx, reqs); err != nil {
		return nil, err
	}
	return b, nil
}

// seriesRequest is the meter data verifying o reads: the look-back of
// day matching (plus a day, for daylight saving and the event day's
// morning), the intervals before the event for meter before, and the
// event.
func (r *settleRun) seriesRequest(ctx context.Context, o *flexhub.ActivationOrder) (seriesRequest, error) {
	p, err := r.product(ctx, o.ProductID)
	if err != nil {
		return seriesRequest{}, err
	}
	params := p.BaselineParams()
	step, err := p.TimeResolution.Parse("time_resolution")
	if err != nil || step <= 0 {
		step = 15 * time.Minute
	}
	first, last := o.First(), o.Last()
	from := first
	switch params.Method {
	case "x_of_y", "rolling_average":
		lb := params.LookbackDays
		if lb == 0 {
			lb = 3*params.Y + 14
		}
		from = first.Add(-time.Duration(lb+1) * 24 * time.Hour)
	case "meter_before":
		from = first.Add(-time.Duration(params.MeterBeforeIntervals) * step)
	}
	return seriesRequest{res: r.resources[o.ResourceID], reactive: p.PowerType == "reactive", from: from, to: last, step: step}, nil
}

// compute verifies a block's orders and attributes what each moved in
// the period: no store, so it runs beside the reading of the next block.
func (b *blockRead) compute(start, end time.Time, runID string, now time.Time) ([]*settled, error) {
	series, err := b.series.build()
	if err != nil {
		return nil, err
	}
	b.series = nil // the readings can go
	out := make([]*settled, len(b.orders))
	for i := range b.orders {
		if out[i], err = b.orders[i].verify(series[i], start, end, runID, now); err != nil {
			return nil, err
		}
		series[i] = nil
	}
	return out, nil
}

// verify verifies one order against its resource's net series and
// attributes what it moved in the period (the resource's other
// activation days are never in its baseline).
func (or *orderRead) verify(series *baseline.Series, start, end time.Time, runID string, now time.Time) (*settled, error) {
	o, p := or.o, or.p
	params := p.BaselineParams()
	var eventDays []baseline.Date
	seen := map[baseline.Date]bool{}
	for _, x := range or.others {
		if x.ID == o.ID || x.Type != flexhub.OrderActivate || x.Status == flexhub.OrderRejected {
			continue
		}
		for _, sp := range x.Setpoints {
			for d := baseline.DateOf(sp.Start, params.Location); ; d = d.AddDays(1) {
				if !seen[d] {
					seen[d] = true
					eventDays = append(eventDays, d)
				}
				if d == baseline.DateOf(sp.End.Add(-time.Nanosecond), params.Location) {
					break
				}
			}
		}
	}
	v, err := settlement.Verify(settlement.OrderInput{Order: o, Product: p, Series: series, Nominated: or.nominated, EventDays: eventDays, EndedAt: or.endedAt})
	if err != nil {
		return nil, err
	}
	v.ID, v.RunID, v.CreatedAt = flexhub.NewID(), runID, now
	st := &settled{order: o, product: p, v: v, award: or.award}

	// Imbalance adjustments of the intervals in the period.
	inPeriod := *v
	inPeriod.Intervals = nil
	for _, iv := range v.Intervals {
		if !iv.Start.Before(start) && iv.Start.Before(end) {
			inPeriod.Intervals = append(inPeriod.Intervals, iv)
		}
	}
	adjs, err := settlement.Adjustments(&inPeriod, or.shares, flexhub.ISP)
	if err != nil {
		return nil, err
	}
	st.adjs = make([]*flexhub.ImbalanceAdjustment, len(adjs))
	for i := range adjs {
		adjs[i].ID, adjs[i].RunID, adjs[i].CreatedAt = flexhub.NewID(), runID, now
		st.adjs[i] = &adjs[i]
	}
	if p.Settlement != nil && p.Settlement.NotifyBRP && len(v.Intervals) > 0 {
		for _, sh := range or.shares {
			if a, ok := sh.MeteringPoint.AssignmentAt(v.Intervals[0].Start); ok && a.BRPID != "" {
				st.brps = append(st.brps, a.BRPID)
			}
		}
		st.brps = dedupe(st.brps)
	}
	return st, nil
}

// shares are the metering points behind a resource and their weights: a
// unit's own (weight 1); a group's members', weighted by their maximum
// regulation in the order's direction.
func (r *settleRun) shares(ctx context.Context, res *flexhub.Resource, direction string) ([]settlement.Share, error) {
	units := []*flexhub.Resource{res}
	if res.Kind == flexhub.ResourceGroup {
		units = units[:0]
		for _, id := range res.Members {
			m, err := r.resource(ctx, id)
			if err != nil {
				return nil, err
			}
			units = append(units, m)
		}
	}
	var out []settlement.Share
	for _, u := range units {
		if u.MeteringPointID == "" {
			continue
		}
		mp, err := r.meteringPoint(ctx, u.MeteringPointID)
		if err != nil {
			return nil, err
		}
		w := int64(1)
		if res.Kind == flexhub.ResourceGroup {
			pw := u.Technical.MaxUp
			if direction == "down" {
				pw = u.Technical.MaxDown
			}
			w = 0
			if pw != nil {
				w, _ = pw.Watts("max")
			}
		}
		out = append(out, settlement.Share{ResourceID: u.ID, MeteringPoint: mp, Weight: w})
	}
	return out, nil
}

// runStatement is a run's statement: the new one (nil when unchanged)
// and its summary on the run.
type runStatement struct {
	statement *flexhub.Statement
	summary   flexhub.RunStatement
}

// statements builds a statement per FSP and currency and versions it
// against the latest one of its FSP, system operator, period and currency.
func (r *settleRun) statements(ctx context.Context, by *flexhub.Party, start, end time.Time, done []*settled, runID string, now time.Time) ([]runStatement, error) {
	type key struct{ fsp, currency string }
	inputs := map[key]*settlement.StatementInput{}
	var keys []key
	in := func(k key) *settlement.StatementInput {
		if x := inputs[k]; x != nil {
			return x
		}
		x := &settlement.StatementInput{FSPID: k.fsp, SystemOperatorID: by.ID, PeriodStart: start, PeriodEnd: end, Currency: k.currency}
		inputs[k] = x
		keys = append(keys, k)
		return x
	}
	obls, err := listAll(func(pg flexhub.Page) ([]*flexhub.Obligation, string, error) {
		return r.tx.ListObligations(ctx, flexhub.Filter{"system_operator_id": by.ID, "status": flexhub.ObligationActive}, pg)
	})
	if err != nil {
		return nil, err
	}
	for _, ob := range obls {
		if !slices.ContainsFunc(ob.Intervals, func(iv flexhub.ObligationInterval) bool { return !iv.Start.Before(start) && iv.Start.Before(end) }) {
			continue
		}
		aw, err := r.award(ctx, ob.AwardID)
		if err != nil {
			return nil, err
		}
		x := in(key{ob.FSPID, aw.Currency})
		x.Held = append(x.Held, settlement.Held{Obligation: ob, Award: aw})
	}
	for _, d := range done {
		currency := ""
		switch {
		case d.award != nil:
			currency = d.award.Currency
		case d.product.Settlement != nil && d.product.Settlement.ActivationPrice != nil:
			currency = d.product.Settlement.ActivationPrice.Currency
		default:
			continue // nothing prices this activation: verified, not paid
		}
		x := in(key{d.v.FSPID, currency})
		x.Activated = append(x.Activated, settlement.Activated{Verification: d.v, Product: d.product, Award: d.award})
	}
	// An FSP with a statement in force for the period and nothing in
	// this run gets a new version without lines: never a silent change.
	current, err := listAll(func(pg flexhub.Page) ([]*flexhub.Statement, string, error) {
		return r.tx.ListStatements(ctx, flexhub.Filter{"system_operator_id": by.ID, "period_start": flexhub.TimeKey(start),
			"period_end": flexhub.TimeKey(end), "superseded": "false"}, pg)
	})
	if err != nil {
		return nil, err
	}
	for _, c := range current {
		in(key{c.FSPID, c.Currency})
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.fsp+"/"+a.currency, b.fsp+"/"+b.currency) })
	var out []runStatement
	for _, k := range keys {
		st, err := settlement.BuildStatement(*inputs[k])
		if err != nil {
			return nil, err
		}
		st.ID, st.RunID, st.CreatedAt, st.StatementVersion = flexhub.NewID(), runID, now, 1
		latest, _, err := r.tx.ListStatements(ctx, flexhub.Filter{"fsp_id": k.fsp, "system_operator_id": by.ID, "currency": k.currency,
			"period_start": flexhub.TimeKey(start), "period_end": flexhub.TimeKey(end), "superseded": "false"}, flexhub.Page{Limit: 1})
		if err != nil {
			return nil, err
		}
		sum := flexhub.RunStatement{FSPID: k.fsp, Currency: k.currency, Outcome: flexhub.StatementIssued}
		if len(latest) == 0 && len(st.Lines) == 0 {
			continue // nothing to pay or charge, and nothing issued before
		}
		if len(latest) > 0 {
			prev := latest[0]
			if sameStatement(prev, st) {
				sum.StatementID, sum.StatementVersion, sum.Outcome, sum.Total = prev.ID, prev.StatementVersion, flexhub.StatementUnchanged, prev.Total
				out = append(out, runStatement{summary: sum})
				continue
			}
			cur, _ := st.Total.Parse("total")
			old, _ := prev.Total.Parse("total")
			diff := flexhub.Money{Amount: flexhub.FormatAmount(cur - old), Currency: k.currency}
			st.StatementVersion, st.Supersedes, st.Difference = prev.StatementVersion+1, prev.ID, &diff
			sum.Outcome, sum.Difference = flexhub.StatementRevised, &diff
		}
		sum.StatementID, sum.StatementVersion, sum.Total = st.ID, st.StatementVersion, st.Total
		out = append(out, runStatement{statement: st, summary: sum})
	}
	return out, nil
}

// sameStatement reports whether two statements say the same: the same
// lines (from the same awards, obligations and orders, with the same
// quantities, prices and amounts) and totals. Which run's verification a
// line names does not count: every run verifies anew.
func sameStatement(a, b *flexhub.Statement) bool {
	canon := func(s *flexhub.Statement) string {
		lines := slices.Clone(s.Lines)
		for i := range lines {
			lines[i].VerificationID = ""
			lines[i].Start, lines[i].End = lines[i].Start.UTC(), lines[i].End.UTC()
		}
		b, _ := json.Marshal(struct {
			L          []flexhub.StatementLine
			A, C, P, T flexhub.Money
		}{lines, s.Availability, s.Activation, s.Penalties, s.Total})
		return string(b)
	}
	return canon(a) == canon(b)
}

// GetSettlementRun returns a run to the system operator that ran it.
func (s *Service) GetSettlementRun(ctx context.Context, id string) (*flexhub.SettlementRun, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.SettlementRun, error) {
		r, err := tx.SettlementRun(ctx, id)
		if err != nil {
			return nil, err
		}
		if !privileged(by) && r.SystemOperatorID != by.ID {
			return nil, notFound("settlement run", id)
		}
		return r, nil
	})
}

// ListSettlementRuns lists the caller's runs (a system operator's own;
// the register sees all).
func (s *Service) ListSettlementRuns(ctx context.Context, pg flexhub.Page) (*ListResult[flexhub.SettlementRun], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{}
	if err := scope(by, f, "settlement runs", scopeKey{"system_operator_id", flexhub.RoleTSO}, scopeKey{"system_operator_id", flexhub.RoleDSO}); err != nil {
		return nil, err
	}
	return listIn(ctx, s, func(tx flexhub.Tx) ([]*flexhub.SettlementRun, string, error) {
		return tx.ListSettlementRuns(ctx, f, pg)
	})
}

// canSeeVerification: the FSP and the system operator of the order, the
// register, and — when the product says notify_brp — the BRPs of the
// metering points behind the resource when the order started.
func (s *Service) canSeeVerification(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, v *flexhub.Verification) bool {
	if privileged(by) || by.ID == v.FSPID || by.ID == v.SystemOperatorID {
		return true
	}
	if !by.HasRole(flexhub.RoleBRP) || len(v.Intervals) == 0 {
		return false
	}
	p, err := tx.Product(ctx, v.ProductID)
	if err != nil || p.Settlement == nil || !p.Settlement.NotifyBRP {
		return false
	}
	res, err := tx.Resource(ctx, v.ResourceID)
	if err != nil {
		return false
	}
	r := &settleRun{tx: tx, resources: map[string]*flexhub.Resource{}, mps: map[string]*flexhub.MeteringPoint{}}
	shares, err := r.shares(ctx, res, v.Direction)
	if err != nil {
		return false
	}
	for _, sh := range shares {
		if a, ok := sh.MeteringPoint.AssignmentAt(v.Intervals[0].Start); ok && a.BRPID == by.ID {
			return true
		}
	}
	return false
}

// GetVerification returns a verification the caller may see (404
// otherwise).
func (s *Service) GetVerification(ctx context.Context, id string) (*flexhub.Verification, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.Verification, error) {
		v, err := tx.Verification(ctx, id)
		if err != nil {
			return nil, err
		}
		if !s.canSeeVerification(ctx, tx, by, v) {
			return nil, notFound("verification", id)
		}
		return v, nil
	})
}

// VerificationFilter narrows a list of verifications.
// Unless AllVersions or RunID is set, only the latest verification of
// each order is listed (a later run verified it anew).
type VerificationFilter struct {
	RunID, OrderID, ResourceID, FSPID, SystemOperatorID, BRPID string
	AllVersions                                                bool
}

// ListVerifications lists the verifications the caller may see: an FSP
// its own, a system operator those of its orders, a BRP (brp_id=self)
// those of products with notify_brp that moved energy at its metering
// points.
func (s *Service) ListVerifications(ctx context.Context, vf VerificationFilter, pg flexhub.Page) (*ListResult[flexhub.Verification], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := filterOf(map[string]string{"run_id": vf.RunID, "order_id": vf.OrderID, "resource_id": vf.ResourceID,
		"fsp_id": vf.FSPID, "system_operator_id": vf.SystemOperatorID, "brp_id": vf.BRPID})
	if !vf.AllVersions && f["run_id"] == "" {
		f["superseded"] = "false"
	}
	if f["resource_id"] != "" && f["fsp_id"] == "" && f["system_operator_id"] == "" && f["brp_id"] == "" && !privileged(by) &&
		!by.IsSystemOperator() && !by.HasRole(flexhub.RoleBRP) {
		// One unit's verifications for a party that is not its FSP: the
		// consumer's settlement data, under consent (docs/CONSENT.md).
		if res, acc, err := s.settlementDataAccess(ctx, by, f["resource_id"]); err != nil || res.FSPID != by.ID {
			if err != nil {
				return nil, s.afterRead(ctx, acc, err)
			}
			out, err := listIn(ctx, s, func(tx flexhub.Tx) ([]*flexhub.Verification, string, error) { return tx.ListVerifications(ctx, f, pg) })
			if err := s.afterRead(ctx, acc, err); err != nil {
				return nil, err
			}
			return out, nil
		}
	}
	if err := scope(by, f, "verifications", scopeKey{"fsp_id", flexhub.RoleFSP}, scopeKey{"system_operator_id", flexhub.RoleTSO},
		scopeKey{"system_operator_id", flexhub.RoleDSO}, scopeKey{"brp_id", flexhub.RoleBRP}); err != nil {
		return nil, err
	}
	return listIn(ctx, s, func(tx flexhub.Tx) ([]*flexhub.Verification, string, error) { return tx.ListVerifications(ctx, f, pg) })
}

// GetStatement returns a statement to its FSP and system operator (404
// to anyone else).
func (s *Service) GetStatement(ctx context.Context, id string) (*flexhub.Statement, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.Statement, error) {
		m, err := tx.Statement(ctx, id)
		if err != nil {
			return nil, err
		}
		if !privileged(by) && by.ID != m.FSPID && by.ID != m.SystemOperatorID {
			return nil, notFound("settlement statement", id)
		}
		return m, nil
	})
}

// StatementFilter narrows a list of statements. PeriodStart and
// PeriodEnd select one period; AllVersions lists superseded versions too
// (only the latest of each by default).
type StatementFilter struct {
	FSPID, SystemOperatorID, RunID, Currency string
	PeriodStart, PeriodEnd                   *time.Time
	AllVersions                              bool
}

// ListStatements lists the statements the caller may see: an FSP its
// own, a system operator those it issued.
func (s *Service) ListStatements(ctx context.Context, sf StatementFilter, pg flexhub.Page) (*ListResult[flexhub.Statement], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := filterOf(map[string]string{"fsp_id": sf.FSPID, "system_operator_id": sf.SystemOperatorID, "run_id": sf.RunID, "currency": sf.Currency})
	if sf.PeriodStart != nil {
		f["period_start"] = flexhub.TimeKey(*sf.PeriodStart)
	}
	if sf.PeriodEnd != nil {
		f["period_end"] = flexhub.TimeKey(*sf.PeriodEnd)
	}
	if !sf.AllVersions {
		f["superseded"] = "false"
	}
	if err := scope(by, f, "settlement statements", scopeKey{"fsp_id", flexhub.RoleFSP}, scopeKey{"system_operator_id", flexhub.RoleTSO},
		scopeKey{"system_operator_id", flexhub.RoleDSO}); err != nil {
		return nil, err
	}
	return listIn(ctx, s, func(tx flexhub.Tx) ([]*flexhub.Statement, string, error) { return tx.ListStatements(ctx, f, pg) })
}

// AdjustmentFilter narrows a list of imbalance adjustments; From and To
// bound the ISP's start. Unless AllVersions or RunID is set, only the
// adjustments in force are listed: those no later run replaced by
// verifying the order again over a period holding the ISP.
type AdjustmentFilter struct {
	BRPID, SupplierID, FSPID, SystemOperatorID, OrderID, RunID, MeteringPointID string
	From, To                                                                    *time.Time
	AllVersions                                                                 bool
}

// ListImbalanceAdjustments lists the adjustments the caller may see: a
// BRP or supplier those of its metering points, the system operator and
// the FSP those of their orders, a party with the imbalance settlement
// role all of them.
func (s *Service) ListImbalanceAdjustments(ctx context.Context, af AdjustmentFilter, pg flexhub.Page) (*ListResult[flexhub.ImbalanceAdjustment], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := filterOf(map[string]string{"brp_id": af.BRPID, "supplier_id": af.SupplierID, "fsp_id": af.FSPID, "system_operator_id": af.SystemOperatorID,
		"order_id": af.OrderID, "run_id": af.RunID, "metering_point_id": af.MeteringPointID})
	if af.From != nil {
		f["from"] = flexhub.TimeKey(*af.From)
	}
	if af.To != nil {
		f["to"] = flexhub.TimeKey(*af.To)
	}
	if !af.AllVersions && f["run_id"] == "" {
		f["superseded"] = "false"
	}
	if !by.HasRole(flexhub.RoleImbalanceSettlement) {
		if err := scope(by, f, "imbalance adjustments", scopeKey{"brp_id", flexhub.RoleBRP}, scopeKey{"supplier_id", flexhub.RoleSupplier},
			scopeKey{"system_operator_id", flexhub.RoleTSO}, scopeKey{"system_operator_id", flexhub.RoleDSO}, scopeKey{"fsp_id", flexhub.RoleFSP}); err != nil {
			return nil, err
		}
	} else {
		for k, v := range f {
			if v == "self" {
				f[k] = by.ID
			}
		}
	}
	return listIn(ctx, s, func(tx flexhub.Tx) ([]*flexhub.ImbalanceAdjustment, string, error) {
		return tx.ListImbalanceAdjustments(ctx, f, pg)
	})
}

// filterOf keeps the non-empty entries.
func filterOf(m map[string]string) flexhub.Filter {
	f := flexhub.Filter{}
	for k, v := range m {
		if v = strings.TrimSpace(v); v != "" {
			f[k] = v
		}
	}
	return f
}

// listIn runs one list in a read-only transaction.
func listIn[T any](ctx context.Context, s *Service, list func(tx flexhub.Tx) ([]*T, string, error)) (*ListResult[T], error) {
	var out ListResult[T]
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out.Items, out.Next, err = list(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// settlementDataAccess decides a read of the settlement data of a unit
// behind a consumer's metering point (scope settlement): the consumer's
// own, a supplier's on its legal basis, anyone else's under consent. A
// unit without a metering point, or one the caller may not know of, does
// not exist for the caller.
func (s *Service) settlementDataAccess(ctx context.Context, by *flexhub.Party, resourceID string) (*flexhub.Resource, *flexhub.DataAccess, error) {
	var res *flexhub.Resource
	var acc *flexhub.DataAccess
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		r, err := tx.Resource(ctx, resourceID)
		if err != nil {
			return err
		}
		res = r
		if r.FSPID == by.ID {
			return nil // its own unit: the role's view
		}
		if r.MeteringPointID == "" {
			return notFound("resource", resourceID)
		}
		mp, err := tx.MeteringPoint(ctx, r.MeteringPointID)
		if err != nil {
			return err
		}
		if by.ID == r.OwnerID {
			return nil
		}
		acc, err = s.dataAccess(ctx, tx, by, mp, flexhub.ScopeSettlement, channelOf(ctx), "verifications of resource "+r.ID)
		return err
	})
	return res, acc, err
}
