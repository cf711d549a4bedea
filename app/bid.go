package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flexhub/flexhub"
)

// Bids: an FSP's offers in a market session. Every rule a bid must meet
// is checked when it is submitted and again when it is modified, in the
// transaction that stores it, and a refusal names the rule (problem+json
// "type": urn:flexhub:rule:<rule>). A bid is confidential: its FSP and the
// session's market operator see it, the buying system operator only after
// gate closure, and no other FSP ever, in any list.
//
// The contract rule: a product is contract-based as soon as its system
// operator holds an active contract for it with any FSP (status active or
// termination_requested). From then on every bidder needs such a contract
// of its own for the product, valid over every interval of the bid (and
// not terminated before its end), covering the bid's resource when the
// contract names resources. A product nobody has contracted for is open
// to every prequalified FSP: prequalification is then the only entry
// ticket, as in the seed's open local markets.

// canSeeBid says who may read a bid. The buying system operator reads
// bids only after gate closure, even when it runs the session itself:
// seeing offers before the gate closes would let the buyer shape its need
// around them. The administrator operates the installation and sees all.
func canSeeBid(by *flexhub.Party, b *flexhub.Bid, m *flexhub.MarketSession, now time.Time) bool {
	switch {
	case by.ID == b.FSPID, by.HasRole(flexhub.RoleAdmin):
		return true
	case by.ID == m.SystemOperatorID:
		return m.GateClosed(now)
	case by.ID == m.OperatorID:
		return true
	}
	return false
}

// seesSessionBids says whether by may read every bid of session m.
func seesSessionBids(by *flexhub.Party, m *flexhub.MarketSession, now time.Time) bool {
	return canSeeBid(by, &flexhub.Bid{}, m, now)
}

// bidParties are the parties an audit entry about a bid names: never the
// buyer, which must not learn of offers before gate closure, and never
// another FSP.
func bidParties(b *flexhub.Bid) []string {
	out := []string{b.FSPID}
	if b.OperatorID != b.SystemOperatorID {
		out = append(out, b.OperatorID)
	}
	return out
}

// checkBid applies every rule to a bid by the caller; exceptID is the bid
// being modified. It returns the session.
func (s *Service) checkBid(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, spec *flexhub.BidSpec, exceptID string, lights *bidLights) (*flexhub.MarketSession, error) {
	now := s.now()
	m, err := tx.MarketSession(ctx, spec.SessionID)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "bid.session", "session_id", "market session %s not found", spec.SessionID)
	}
	if err != nil {
		return nil, err
	}
	if err := m.AcceptsBids(now); err != nil {
		return nil, err
	}
	if !slices.Contains(m.NeedIDs, spec.NeedID) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "bid.need_in_session", "need_id", "need %s is not part of session %s; bid for one of %v", spec.NeedID, m.ID, m.NeedIDs)
	}
	need, err := tx.Need(ctx, spec.NeedID)
	if err != nil {
		return nil, err
	}
	if need.Status != flexhub.NeedOpen {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "bid.need_open", "need_id", "need %s is %s and takes no bids", need.ID, need.Status)
	}
	prod, err := tx.Product(ctx, m.ProductID)
	if err != nil {
		return nil, err
	}
	plan, err := spec.Check(prod, need)
	if err != nil {
		return nil, err
	}
	r, units, err := activeOwnResource(ctx, tx, by, spec.ResourceID, "can bid")
	if err != nil {
		return nil, err
	}
	res := prod.Resolution()
	first, end := spec.Intervals[0].Start, spec.Intervals[len(spec.Intervals)-1].Start.Add(res)
	if err := checkLocation(ctx, tx, need, r, units); err != nil {
		return nil, err
	}
	if err := checkProductPrequal(ctx, tx, r, prod, spec, plan, res); err != nil {
		return nil, err
	}
	if err := checkGridPrequal(ctx, tx, r, units, need, prod, spec, plan, end); err != nil {
		return nil, err
	}
	if err := checkContract(ctx, tx, by, r, prod, first, end); err != nil {
		return nil, err
	}
	if err := checkCapability(r, need, prod, spec, plan); err != nil {
		return nil, err
	}
	if err := checkExclusiveGroup(ctx, tx, by, m, spec, exceptID); err != nil {
		return nil, err
	}
	return m, s.bidTrafficLight(ctx, tx, m, need, prod, r, units, spec, plan, res, lights)
}

// bidTrafficLight checks a bid's intervals against the DSOs' traffic
// lights (docs/TRAFFIC_LIGHT.md): an interval no grid takes refuses the
// bid (traffic_light.red); an amber one caps it — an indivisible bid, or
// one whose minimum is above the cap, cannot be cut and is refused
// (traffic_light.amber); a divisible one keeps the cap for the clearing
// (GridCaps). The lights go to out. In a common_market session only the
// DSOs' overrides speak: the joint clearing keeps their grids' limits.
func (s *Service) bidTrafficLight(ctx context.Context, tx flexhub.Tx, m *flexhub.MarketSession, need *flexhub.Need, prod *flexhub.Product, r *flexhub.Resource, units []*flexhub.Resource,
	spec *flexhub.BidSpec, plan *flexhub.BidPlan, res time.Duration, out *bidLights) error {
	unit := "W"
	if prod.PowerType == "reactive" {
		unit = "var"
	}
	asks := make([]lightAsk, len(spec.Intervals))
	for i, iv := range spec.Intervals {
		asks[i] = lightAsk{start: iv.Start.UTC(), end: iv.Start.UTC().Add(res), requested: plan.Quantities[i]}
	}
	chk, err := s.checkTrafficLight(ctx, tx, need.SystemOperatorID, units, need.Direction, unit, asks, m.Coordination == flexhub.CoordinationCommon)
	if err != nil {
		return err
	}
	for i, c := range chk.caps {
		f := fmt.Sprintf("intervals[%d].quantity", i)
		switch {
		case c <= 0:
			return redError(f, fmt.Sprintf("resource %s cannot offer %s from %s", r.ID, need.Direction, asks[i].start.Format(time.RFC3339)), chk.red)
		case c >= asks[i].requested:
		case !spec.Divisible:
			return flexhub.RuleErrorf(flexhub.EInvalid, "traffic_light.amber", f, "the DSO's traffic light allows resource %s at most %d %s from %s, and an indivisible bid of %d %s cannot be cut: offer at most that, or make the bid divisible",
				r.ID, c, unit, asks[i].start.Format(time.RFC3339), asks[i].requested, unit)
		case plan.MinQuantity > c:
			return flexhub.RuleErrorf(flexhub.EInvalid, "traffic_light.amber", f, "the DSO's traffic light allows resource %s at most %d %s from %s, below the bid's minimum quantity %d %s",
				r.ID, c, unit, asks[i].start.Format(time.RFC3339), plan.MinQuantity, unit)
		default:
			out.caps = append(out.caps, flexhub.GridCap{Start: asks[i].start, Allowed: c})
		}
	}
	out.lights = chk.lights
	return nil
}

// bidLights are a bid's traffic lights and the caps they set.
type bidLights struct {
	lights []flexhub.TrafficLight
	caps   []flexhub.GridCap
}

// activeOwnResource loads a resource the caller operates and, for a
// group, its units; the resource and every unit must be active. Rules are
// named bid.* (a trade renames them with asTradeRule); purpose ends the
// message about an inactive resource ("can bid").
func activeOwnResource(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id, purpose string) (*flexhub.Resource, []*flexhub.Resource, error) {
	r, err := tx.Resource(ctx, id)
	if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
		return nil, nil, err
	}
	if err != nil || r.FSPID != by.ID {
		return nil, nil, flexhub.RuleErrorf(flexhub.EInvalid, "bid.resource_owned", "resource_id", "resource %s not found among the resources party %s operates", id, by.ID)
	}
	if r.Status != flexhub.ResourceActive {
		return nil, nil, flexhub.RuleErrorf(flexhub.EInvalid, "bid.resource_active", "resource_id", "%s; only an active resource %s", notActive(r), purpose)
	}
	if r.Kind != flexhub.ResourceGroup {
		return r, []*flexhub.Resource{r}, nil
	}
	units := make([]*flexhub.Resource, 0, len(r.Members))
	for _, mid := range r.Members {
		u, err := tx.Resource(ctx, mid)
		if err != nil {
			return nil, nil, err
		}
		if u.Status != flexhub.ResourceActive {
			return nil, nil, flexhub.RuleErrorf(flexhub.EInvalid, "bid.resource_active", "resource_id", "member %s of group %s: %s", u.ID, r.ID, notActive(u))
		}
		units = append(units, u)
	}
	return r, units, nil
}

// checkLocation: the resource delivers where the need is. A group
// delivers through its units, so every unit must be there: flexibility
// from the other side of a congested feeder does not relieve it.
func checkLocation(ctx context.Context, tx flexhub.Tx, n *flexhub.Need, r *flexhub.Resource, units []*flexhub.Resource) error {
	for _, u := range units {
		ok := false
		if n.GridAreaID != "" && u.ConnectionPointID != "" {
			cp, err := tx.ConnectionPoint(ctx, u.ConnectionPointID)
			if err != nil {
				return err
			}
			ok = cp.GridAreaID == n.GridAreaID
		} else {
			ok = slices.Contains(n.ConnectionPointIDs, u.ConnectionPointID)
		}
		if !ok {
			where := "grid area " + n.GridAreaID
			if n.GridAreaID == "" {
				where = fmt.Sprintf("connection points %v", n.ConnectionPointIDs)
			}
			what := "resource " + r.ID
			if u.ID != r.ID {
				what = fmt.Sprintf("unit %s of group %s", u.ID, r.ID)
			}
			return flexhub.RuleErrorf(flexhub.EInvalid, "bid.location", "resource_id", "%s is at connection point %s, outside need %s's location (%s)", what, u.ConnectionPointID, n.ID, where)
		}
	}
	return nil
}

// checkProductPrequal: for every interval, an approved prequalification
// of the resource for the product valid over the whole interval; under a
// conditional approval the quantity stays within its max_power.
func checkProductPrequal(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource, p *flexhub.Product, spec *flexhub.BidSpec, plan *flexhub.BidPlan, res time.Duration) error {
	pqs, err := listAll(func(pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
		return tx.ListPrequalifications(ctx, flexhub.Filter{"resource_id": r.ID, "product_id": p.ID}, pg)
	})
	if err != nil {
		return err
	}
	for i, iv := range spec.Intervals {
		start, end := iv.Start, iv.Start.Add(res)
		var cover *flexhub.Prequalification
		for _, q := range pqs {
			if q.ValidAt(start) && (q.Decision.ValidUntil == nil || !end.After(*q.Decision.ValidUntil)) {
				cover = q
				break
			}
		}
		if cover == nil {
			return flexhub.RuleErrorf(flexhub.EInvalid, "bid.product_prequalification", fmt.Sprintf("intervals[%d].start", i),
				"resource %s holds no approved prequalification for product %s (%s) valid from %s to %s", r.ID, p.ID, p.Name, start.Format(time.RFC3339), end.Format(time.RFC3339))
		}
		if cover.Decision.MaxPower != nil {
			if limit := watts(cover.Decision.MaxPower); plan.Quantities[i] > limit {
				return flexhub.RuleErrorf(flexhub.EInvalid, "bid.prequalified_max_power", fmt.Sprintf("intervals[%d].quantity.value", i),
					"%d W is above the %d W that prequalification %s allows resource %s under product %s (condition: %s)", plan.Quantities[i], limit, cover.ID, r.ID, p.ID, cover.Decision.Conditions)
			}
		}
	}
	return nil
}

// checkGridPrequal: every unit's latest grid prequalification is approved
// or limited and valid until the bid's end; a limited unit (for a group,
// the sum over its units, unlimited if any unit is) caps the quantity in
// the need's direction. Grid limits are active power, so they cap active
// power bids only.
func checkGridPrequal(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource, units []*flexhub.Resource, n *flexhub.Need, p *flexhub.Product, spec *flexhub.BidSpec, plan *flexhub.BidPlan, end time.Time) error {
	var total int64
	unlimited := false
	for _, u := range units {
		gs, err := listAll(func(pg flexhub.Page) ([]*flexhub.GridPrequalification, string, error) {
			return tx.ListGridPrequalifications(ctx, flexhub.Filter{"resource_id": u.ID}, pg)
		})
		if err != nil {
			return err
		}
		var g *flexhub.GridPrequalification
		for _, x := range gs { // oldest first: keep the latest decided one, else the latest
			if x.Status != flexhub.GridPrequalRequested || g == nil || g.Status == flexhub.GridPrequalRequested {
				g = x
			}
		}
		fail := func(format string, args ...any) error {
			return flexhub.RuleErrorf(flexhub.EInvalid, "bid.grid_prequalification", "resource_id", "unit %s: "+format, append([]any{u.ID}, args...)...)
		}
		switch {
		case g == nil:
			return fail("no grid prequalification; ask the DSO of connection point %s first", u.ConnectionPointID)
		case g.Status == flexhub.GridPrequalRequested:
			return fail("grid prequalification %s still awaits the DSO's decision", g.ID)
		case g.Status == flexhub.GridPrequalRejected:
			return fail("the DSO rejected grid prequalification %s: %s", g.ID, g.Reasons)
		case g.ValidUntil != nil && end.After(*g.ValidUntil):
			return fail("grid prequalification %s is valid until %s, before the bid ends at %s", g.ID, g.ValidUntil.Format(time.RFC3339), end.Format(time.RFC3339))
		}
		limit := g.LimitUp
		if n.Direction == "down" {
			limit = g.LimitDown
		}
		if g.Status == flexhub.GridPrequalApproved || limit == nil {
			unlimited = true
		} else {
			total += watts(limit)
		}
	}
	if unlimited || p.PowerType == "reactive" {
		return nil
	}
	for i, q := range plan.Quantities {
		if q > total {
			return flexhub.RuleErrorf(flexhub.EInvalid, "bid.grid_limit", fmt.Sprintf("intervals[%d].quantity.value", i),
				"%d W %s is above the %d W the DSO allows resource %s at its connection (grid prequalification limit_%s)", q, n.Direction, total, r.ID, n.Direction)
		}
	}
	return nil
}

// checkContract applies the contract rule described at the top of the
// file.
func checkContract(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, r *flexhub.Resource, p *flexhub.Product, start, end time.Time) error {
	inForce := func(c *flexhub.Contract) bool {
		return c.Status == flexhub.ContractActive || c.Status == flexhub.ContractTerminationRequested
	}
	all, err := listAll(func(pg flexhub.Page) ([]*flexhub.Contract, string, error) {
		return tx.ListContracts(ctx, flexhub.Filter{"product_id": p.ID}, pg)
	})
	if err != nil {
		return err
	}
	required := false
	for _, c := range all {
		if !inForce(c) {
			continue
		}
		required = true
		if c.FSPID != by.ID || !c.Validity.Contains(start) || (c.Validity.End != nil && end.After(*c.Validity.End)) {
			continue
		}
		if c.Termination != nil && c.Status == flexhub.ContractTerminationRequested && end.After(c.Termination.EffectiveAt) {
			continue
		}
		if len(c.ResourceIDs) > 0 && !slices.Contains(c.ResourceIDs, r.ID) {
			continue
		}
		return nil
	}
	if !required {
		return nil
	}
	return flexhub.RuleErrorf(flexhub.EInvalid, "bid.contract", "resource_id", "product %s is bought under contract: party %s needs an active contract with system operator %s for it covering resource %s from %s to %s",
		p.ID, by.ID, p.SystemOperatorID, r.ID, start.Format(time.RFC3339), end.Format(time.RFC3339))
}

// checkCapability: no more than the resource can deliver in the need's
// direction, and a linked bid (one activation over its whole span) within
// the resource's activation duration limits.
func checkCapability(r *flexhub.Resource, n *flexhub.Need, p *flexhub.Product, spec *flexhub.BidSpec, plan *flexhub.BidPlan) error {
	t := r.Technical
	limit, what := watts(t.MaxUp), "technical.max_up"
	if n.Direction == "down" {
		limit, what = watts(t.MaxDown), "technical.max_down"
	}
	unit := "W"
	if p.PowerType == "reactive" {
		limit, _ = t.ReactiveCapability.Vars("")
		what, unit = "technical.reactive_capability", "var"
	}
	for i, q := range plan.Quantities {
		if q > limit {
			return flexhub.RuleErrorf(flexhub.EInvalid, "bid.capability", fmt.Sprintf("intervals[%d].quantity.value", i),
				"%d %s is above what resource %s can deliver (%s: %d %s)", q, unit, r.ID, what, limit, unit)
		}
	}
	if !spec.Linked {
		return nil
	}
	minD, _ := t.MinActivationDuration.Parse("")
	maxD, _ := t.MaxActivationDuration.Parse("")
	if minD > 0 && plan.Span < minD {
		return flexhub.RuleErrorf(flexhub.EInvalid, "bid.activation_duration", "intervals", "the linked bid spans %s, shorter than resource %s's minimum activation of %s", flexhub.FormatDuration(plan.Span), r.ID, t.MinActivationDuration)
	}
	if maxD > 0 && plan.Span > maxD {
		return flexhub.RuleErrorf(flexhub.EInvalid, "bid.activation_duration", "intervals", "the linked bid spans %s, longer than resource %s's maximum activation of %s", flexhub.FormatDuration(plan.Span), r.ID, t.MaxActivationDuration)
	}
	return nil
}

// checkExclusiveGroup: a group name is the caller's own within the
// session, so it cannot join another FSP's bids. A name that is a bid id
// must be one of the caller's submitted bids in this session: another
// FSP's bid and a missing one get the same answer.
func checkExclusiveGroup(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, m *flexhub.MarketSession, spec *flexhub.BidSpec, exceptID string) error {
	g := spec.ExclusiveGroup
	if g == "" || !flexhub.ValidID(g) || g == exceptID {
		return nil
	}
	b, err := tx.Bid(ctx, g)
	if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
		return err
	}
	if err != nil || b.FSPID != by.ID || b.SessionID != m.ID || b.Status != flexhub.BidSubmitted {
		return flexhub.RuleErrorf(flexhub.EInvalid, "bid.exclusive_group", "exclusive_group", "exclusive group %s names no submitted bid of yours in session %s; a group holds only your own bids of the same session", g, m.ID)
	}
	return nil
}

// SubmitBid places a bid by the calling FSP.
func (s *Service) SubmitBid(ctx context.Context, spec flexhub.BidSpec, key string) (*Created[flexhub.Bid], error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if err := bidIDs(&spec); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindBid, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.Bid, error) { return tx.Bid(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Bid, string, error) {
			var lights bidLights
			m, err := s.checkBid(ctx, tx, by, &spec, "", &lights)
			if err != nil {
				return nil, "", err
			}
			now := s.now()
			b := &flexhub.Bid{ID: flexhub.NewID(), BidSpec: spec, FSPID: by.ID, SystemOperatorID: m.SystemOperatorID, OperatorID: m.OperatorID,
				Status: flexhub.BidSubmitted, TrafficLights: lights.lights, GridCaps: lights.caps, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateBid(ctx, b); err != nil {
				return nil, "", err
			}
			if err := s.record(ctx, tx, by, "bid.submitted", flexhub.KindBid, b.ID, b.Version, b, bidParties(b)...); err != nil {
				return nil, "", err
			}
			return b, b.ID, s.notify(ctx, tx, []string{b.FSPID}, flexhub.NotifyBidReceived, flexhub.KindBid, b.ID, m.ID,
				fmt.Sprintf("bid %s received in session %s; you may modify or withdraw it until %s", b.ID, m.ID, m.GateClosure.Format(time.RFC3339)))
		})
}

// bidIDs checks the ids a bid names before any lookup.
func bidIDs(spec *flexhub.BidSpec) error {
	for _, f := range []struct{ field, value, what string }{{"session_id", spec.SessionID, "market session"}, {"need_id", spec.NeedID, "need"}, {"resource_id", spec.ResourceID, "resource"}} {
		if !flexhub.ValidID(f.value) {
			return flexhub.FieldErrorf(f.field, "%q is not a %s id", f.value, f.what)
		}
	}
	return nil
}

// ownBid loads a bid for a change by its FSP until gate closure.
func (s *Service) ownBid(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, version int64) (*flexhub.Bid, *flexhub.MarketSession, error) {
	b, err := tx.Bid(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	m, err := tx.MarketSession(ctx, b.SessionID)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if !canSeeBid(by, b, m, now) {
		return nil, nil, notFound("bid", id)
	}
	if b.FSPID != by.ID {
		return nil, nil, flexhub.Errorf(flexhub.EForbidden, "only FSP %s, which submitted bid %s, may change it", b.FSPID, id)
	}
	if err := m.AcceptsBids(now); err != nil {
		return nil, nil, err
	}
	if version > 0 {
		if err := checkVersion("bid", id, version, b.Version); err != nil {
			return nil, nil, err
		}
	}
	if b.Status != flexhub.BidSubmitted {
		return nil, nil, flexhub.Errorf(flexhub.EConflict, "bid %s is %s and can no longer change; submit a new bid", id, b.Status)
	}
	return b, m, nil
}

// ModifyBid replaces a bid with a new version until gate closure. It
// stays in its session; every rule is checked again.
func (s *Service) ModifyBid(ctx context.Context, id string, spec flexhub.BidSpec, version int64) (*flexhub.Bid, error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if err := bidIDs(&spec); err != nil {
		return nil, err
	}
	var out *flexhub.Bid
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		b, _, err := s.ownBid(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		if spec.SessionID != b.SessionID {
			return flexhub.RuleErrorf(flexhub.EInvalid, "bid.session_fixed", "session_id", "bid %s belongs to session %s and stays there; withdraw it and bid in the other session", id, b.SessionID)
		}
		var lights bidLights
		m, err := s.checkBid(ctx, tx, by, &spec, b.ID, &lights)
		if err != nil {
			return err
		}
		b.BidSpec = spec
		b.TrafficLights, b.GridCaps = lights.lights, lights.caps
		b.UpdatedAt = s.now()
		if err := tx.UpdateBid(ctx, b); err != nil {
			return err
		}
		out = b
		if err := s.record(ctx, tx, by, "bid.modified", flexhub.KindBid, b.ID, b.Version, b, bidParties(b)...); err != nil {
			return err
		}
		return s.notify(ctx, tx, []string{b.FSPID}, flexhub.NotifyBidModified, flexhub.KindBid, b.ID, m.ID, fmt.Sprintf("bid %s modified (version %d)", b.ID, b.Version))
	})
	return out, err
}

// WithdrawBid takes a bid out of its session until gate closure.
func (s *Service) WithdrawBid(ctx context.Context, id string, version int64) (*flexhub.Bid, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Bid
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		b, m, err := s.ownBid(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		if err := b.Withdraw(s.now()); err != nil {
			return err
		}
		if err := tx.UpdateBid(ctx, b); err != nil {
			return err
		}
		out = b
		if err := s.record(ctx, tx, by, "bid.withdrawn", flexhub.KindBid, b.ID, b.Version, b, bidParties(b)...); err != nil {
			return err
		}
		return s.notify(ctx, tx, []string{b.FSPID}, flexhub.NotifyBidWithdrawn, flexhub.KindBid, b.ID, m.ID, fmt.Sprintf("bid %s withdrawn from session %s", b.ID, m.ID))
	})
	return out, err
}

// GetBid returns a bid the caller may see; to anyone else it does not
// exist.
func (s *Service) GetBid(ctx context.Context, id string) (*flexhub.Bid, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Bid
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		b, err := tx.Bid(ctx, id)
		if err != nil {
			return err
		}
		m, err := tx.MarketSession(ctx, b.SessionID)
		if err != nil {
			return err
		}
		if !canSeeBid(by, b, m, s.now()) {
			return notFound("bid", id)
		}
		out = b
		return nil
	})
	return out, err
}

// BidFilter narrows a bid list.
type BidFilter struct {
	SessionID  string
	NeedID     string
	FSPID      string
	ResourceID string
	Status     string
}

// ListBids lists bids the caller may see. With session_id, the session's
// market operator (and, after gate closure, the buyer) lists every bid of
// it; everyone else lists only its own bids (an FSP by default). Naming
// another FSP is refused.
func (s *Service) ListBids(ctx context.Context, f BidFilter, pg flexhub.Page) (*ListResult[flexhub.Bid], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	filter, err := buildFilter(idParam{"session_id", f.SessionID}, idParam{"need_id", f.NeedID}, idParam{"fsp_id", f.FSPID}, idParam{"resource_id", f.ResourceID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(filter, f.Status, "bid", []string{flexhub.BidSubmitted, flexhub.BidWithdrawn, flexhub.BidAccepted, flexhub.BidPartiallyAccepted, flexhub.BidRejected}); err != nil {
		return nil, err
	}
	if filter["fsp_id"] == "self" {
		filter["fsp_id"] = by.ID
	}
	var out ListResult[flexhub.Bid]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		whole := by.HasRole(flexhub.RoleAdmin)
		if id := filter["session_id"]; id != "" && !whole {
			m, err := tx.MarketSession(ctx, id)
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				return flexhub.FieldErrorf("query.session_id", "market session %s not found", id)
			}
			if err != nil {
				return err
			}
			whole = seesSessionBids(by, m, s.now())
		}
		if !whole {
			switch v, ok := filter["fsp_id"]; {
			case ok && v != by.ID:
				return &flexhub.Error{Kind: flexhub.EForbidden, Field: "query.fsp_id", Message: "you may list only your own bids: set fsp_id to your party id (or self), or leave it out"}
			case !ok && !by.HasRole(flexhub.RoleFSP):
				return flexhub.Errorf(flexhub.EForbidden, "listing bids needs session_id of a session you operate (or bought in, after gate closure), or the fsp role; party %s has %v", by.EIC, by.Roles)
			}
			filter["fsp_id"] = by.ID
		}
		var err error
		out.Items, out.Next, err = tx.ListBids(ctx, filter, pg)
		return err
	})
	return &out, err
}
