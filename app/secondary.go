package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// The secondary market (see secondary.go in the root package for the
// life cycle). Rules, each named in the refusal:
//
//   - Only the FSP that owes an obligation offers it (anyone else: 404,
//     as the obligation is invisible to other FSPs), only while it is
//     active (offer.obligation_active) and before its first interval
//     starts (410 offer.delivery_started), with an expiry no later than
//     that start (offer.expiry), at most one live offer per obligation
//     (409 offer.duplicate).
//   - A buyer is another FSP (trade.own_offer), the named buyer when the
//     offer names one, whose resource is its own and active
//     (trade.resource_owned, trade.resource_active), sits where the need
//     is (trade.location, the bid location rule), holds an approved
//     product prequalification valid over every interval of the
//     obligation (trade.product_prequalification, within any max_power:
//     trade.prequalified_max_power), is grid-prequalified approved or
//     limited with enough limit for every quantity
//     (trade.grid_prequalification, trade.grid_limit) and can deliver the
//     quantities (trade.capability). The rules are checked when the buyer
//     asks and again when the seller confirms: a prequalification may
//     have lapsed in between.
//   - The seller confirms only if the objection window still ends before
//     delivery starts (410 trade.window_after_delivery): the system
//     operator must know who delivers before delivery.
//   - The buying system operator objects (with reasons) until the window
//     ends (410 trade.objection_window after). The scheduler completes
//     trades whose window passed, exactly once (a versioned update of
//     the trade, and the store's one-obligation-per-trade index).
//
// The contract rule of bids is not applied: the system operator's
// objection window is where a contract-based buyer refuses a newcomer.
//
// Visibility: an offer is visible to its seller, the buying system
// operator, the administrator, FSPs that asked to trade on it, and — only
// while it is open — to the FSPs it is offered to (the named buyer, or,
// when none is named, every FSP holding a valid approved prequalification
// for the product: an FSP without one could never take it).
// An offer carries no resource, bid or price of the seller's bid. A trade
// is visible to its two FSPs, the buying system operator and the
// administrator only.

// offerParties are the parties an audit entry about an offer names.
func offerParties(o *flexhub.SecondaryOffer) []string {
	return []string{o.SellerFSPID, o.SystemOperatorID, o.BuyerFSPID}
}

// tradeParties are the parties an audit entry about a trade names.
func tradeParties(t *flexhub.Trade) []string {
	return []string{t.SellerFSPID, t.BuyerFSPID, t.SystemOperatorID}
}

// holdsProduct reports whether FSP id holds an approved prequalification
// for product valid at now: the test for who is shown open offers.
func holdsProduct(ctx context.Context, tx flexhub.Tx, id, product string, now time.Time) bool {
	for _, st := range []string{flexhub.PrequalApproved, flexhub.PrequalApprovedConditions} {
		pqs, err := listAll(func(pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
			return tx.ListPrequalifications(ctx, flexhub.Filter{"fsp_id": id, "product_id": product, "status": st}, pg)
		})
		if err != nil {
			return false
		}
		for _, p := range pqs {
			if p.ValidAt(now) {
				return true
			}
		}
	}
	return false
}

// canSeeOffer applies the offer visibility rule above.
func canSeeOffer(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, o *flexhub.SecondaryOffer, now time.Time) bool {
	if by.ID == o.SellerFSPID || by.ID == o.SystemOperatorID || by.HasRole(flexhub.RoleAdmin) {
		return true
	}
	if !by.HasRole(flexhub.RoleFSP) {
		return false
	}
	if ts, _, err := tx.ListTrades(ctx, flexhub.Filter{"offer_id": o.ID, "buyer_fsp_id": by.ID}, flexhub.Page{Limit: 1}); err == nil && len(ts) > 0 {
		return true
	}
	switch {
	case o.Status != flexhub.OfferOpen || !now.Before(o.Expiry):
		return false
	case o.BuyerFSPID != "":
		// The seller chose this buyer; whether it is eligible is decided
		// when it asks, with the rule that fails named.
		return o.BuyerFSPID == by.ID
	}
	return holdsProduct(ctx, tx, by.ID, o.ProductID, now)
}

// canSeeTrade: the two FSPs, the buying system operator, the administrator.
func canSeeTrade(by *flexhub.Party, t *flexhub.Trade) bool {
	return by.ID == t.SellerFSPID || by.ID == t.BuyerFSPID || by.ID == t.SystemOperatorID || by.HasRole(flexhub.RoleAdmin)
}

// asTradeRule renames a bid rule ("bid.location") as the trade rule it
// stands for ("trade.location"), so that a refused trade names its own
// rule while the checks stay shared with bids.
func asTradeRule(err error) error {
	var e *flexhub.Error
	if errors.As(err, &e) && strings.HasPrefix(e.Rule, "bid.") {
		c := *e
		c.Rule = "trade." + strings.TrimPrefix(e.Rule, "bid.")
		return &c
	}
	return err
}

// CreateOffer offers the whole of one of the caller's obligations.
func (s *Service) CreateOffer(ctx context.Context, spec flexhub.SecondaryOfferSpec, key string) (*Created[flexhub.SecondaryOffer], error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	request := snapshot(spec)
	now := s.now()
	if err := spec.Validate(now); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindSecondaryOffer, request,
		func(tx flexhub.Tx, id string) (*flexhub.SecondaryOffer, error) { return tx.SecondaryOffer(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.SecondaryOffer, string, error) {
			o, err := tx.Obligation(ctx, spec.ObligationID)
			if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
				return nil, "", err
			}
			if err != nil || o.FSPID != by.ID {
				return nil, "", flexhub.RuleErrorf(flexhub.ENotFound, "offer.obligation", "obligation_id", "obligation %s not found among the obligations party %s owes", spec.ObligationID, by.ID)
			}
			start := o.Intervals[0].Start
			switch {
			case o.Status != flexhub.ObligationActive:
				return nil, "", flexhub.RuleErrorf(flexhub.EConflict, "offer.obligation_active", "obligation_id", "obligation %s is %s; only an active obligation is offered", o.ID, o.Status)
			case !now.Before(start):
				return nil, "", flexhub.RuleErrorf(flexhub.EGone, "offer.delivery_started", "obligation_id", "obligation %s started delivery at %s; it can no longer be offered", o.ID, start.Format(time.RFC3339))
			case spec.Expiry.After(start):
				return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "offer.expiry", "expiry", "expiry %s is after obligation %s starts delivery at %s; an offer ends before delivery",
					spec.Expiry.Format(time.RFC3339), o.ID, start.Format(time.RFC3339))
			}
			if spec.BuyerFSPID != "" {
				b, err := tx.Party(ctx, spec.BuyerFSPID)
				if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
					return nil, "", err
				}
				if err != nil || !b.HasRole(flexhub.RoleFSP) || b.ID == by.ID {
					return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "offer.buyer", "buyer_fsp_id", "party %s is not another FSP; name an FSP other than yourself, or leave buyer_fsp_id out", spec.BuyerFSPID)
				}
			}
			for _, st := range []string{flexhub.OfferOpen, flexhub.OfferReserved} {
				live, _, err := tx.ListSecondaryOffers(ctx, flexhub.Filter{"obligation_id": o.ID, "status": st}, flexhub.Page{Limit: 1})
				if err != nil {
					return nil, "", err
				}
				if len(live) > 0 {
					return nil, "", flexhub.RuleErrorf(flexhub.EConflict, "offer.duplicate", "obligation_id", "obligation %s is already offered (offer %s, %s); cancel that offer first", o.ID, live[0].ID, live[0].Status)
				}
			}
			off := &flexhub.SecondaryOffer{ID: flexhub.NewID(), SecondaryOfferSpec: spec, SellerFSPID: by.ID, SystemOperatorID: o.SystemOperatorID,
				SessionID: o.SessionID, NeedID: o.NeedID, ProductID: o.ProductID, Direction: o.Direction, Unit: o.Unit,
				Intervals: append([]flexhub.ObligationInterval(nil), o.Intervals...), Status: flexhub.OfferOpen, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateSecondaryOffer(ctx, off); err != nil {
				return nil, "", err
			}
			if err := s.record(ctx, tx, by, "offer.created", flexhub.KindSecondaryOffer, off.ID, off.Version, off, offerParties(off)...); err != nil {
				return nil, "", err
			}
			who := []string{off.BuyerFSPID}
			if off.BuyerFSPID == "" {
				who, err = productHolders(ctx, tx, off.ProductID, now)
				if err != nil {
					return nil, "", err
				}
			}
			who = without(who, by.ID)
			text := fmt.Sprintf("obligation of %d intervals from %s (need %s) offered for %s %s until %s; see /v1/secondary-offers/%s",
				len(off.Intervals), off.Start().Format(time.RFC3339), off.NeedID, off.Price.Amount, off.Price.Currency, off.Expiry.Format(time.RFC3339), off.ID)
			if err := s.notify(ctx, tx, who, flexhub.NotifyOfferPublished, flexhub.KindSecondaryOffer, off.ID, off.SessionID, text); err != nil {
				return nil, "", err
			}
			return off, off.ID, nil
		})
}

// productHolders lists the FSPs holding an approved prequalification for
// product valid at now: who hears of an offer open to all.
func productHolders(ctx context.Context, tx flexhub.Tx, product string, now time.Time) ([]string, error) {
	var out []string
	for _, st := range []string{flexhub.PrequalApproved, flexhub.PrequalApprovedConditions} {
		pqs, err := listAll(func(pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
			return tx.ListPrequalifications(ctx, flexhub.Filter{"product_id": product, "status": st}, pg)
		})
		if err != nil {
			return nil, err
		}
		for _, p := range pqs {
			if p.ValidAt(now) {
				out = append(out, p.FSPID)
			}
		}
	}
	return dedupe(out), nil
}

// without returns ids without id.
func without(ids []string, id string) []string {
	out := ids[:0:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// GetOffer returns an offer the caller may see; to anyone else it does
// not exist.
func (s *Service) GetOffer(ctx context.Context, id string) (*flexhub.SecondaryOffer, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.SecondaryOffer
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		o, err := tx.SecondaryOffer(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeOffer(ctx, tx, by, o, s.now()) {
			return notFound("secondary offer", id)
		}
		out = o
		return nil
	})
	return out, err
}

// OfferFilter narrows an offer list.
type OfferFilter struct {
	ObligationID     string
	SellerFSPID      string
	ProductID        string
	SystemOperatorID string
	Status           string
}

// ListOffers lists the offers the caller may see. Naming oneself as the
// seller or the system operator reads the store's index directly;
// otherwise the list is scanned and filtered by visibility, so a page may
// take longer but never holds, nor points its cursor at, an offer the
// caller may not see.
func (s *Service) ListOffers(ctx context.Context, of OfferFilter, pg flexhub.Page) (*ListResult[flexhub.SecondaryOffer], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f, err := buildFilter(idParam{"obligation_id", of.ObligationID}, idParam{"seller_fsp_id", of.SellerFSPID}, idParam{"product_id", of.ProductID},
		idParam{"system_operator_id", of.SystemOperatorID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(f, of.Status, "secondary offer", []string{flexhub.OfferOpen, flexhub.OfferReserved, flexhub.OfferTraded, flexhub.OfferCancelled, flexhub.OfferExpired}); err != nil {
		return nil, err
	}
	selfFilter(by, f, "seller_fsp_id", "system_operator_id")
	var out ListResult[flexhub.SecondaryOffer]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		now := s.now()
		direct := by.HasRole(flexhub.RoleAdmin) || f["seller_fsp_id"] == by.ID || f["system_operator_id"] == by.ID
		var err error
		out.Items, out.Next, err = visiblePage(pg, func(p flexhub.Page) ([]*flexhub.SecondaryOffer, string, error) {
			return tx.ListSecondaryOffers(ctx, f, p)
		},
			func(o *flexhub.SecondaryOffer) string { return o.ID },
			func(o *flexhub.SecondaryOffer) bool { return direct || canSeeOffer(ctx, tx, by, o, now) })
		return err
	})
	return &out, err
}

// selfFilter replaces "self" in party filters by the caller's id.
func selfFilter(by *flexhub.Party, f flexhub.Filter, keys ...string) {
	for _, k := range keys {
		if f[k] == "self" {
			f[k] = by.ID
		}
	}
}

// visiblePage reads store pages from pg.After until it has pg's limit of
// visible items or the list ends. The cursor it returns is the id of the
// last visible item, so it never names an object the caller may not see.
func visiblePage[T any](pg flexhub.Page, list func(flexhub.Page) ([]*T, string, error), id func(*T) string, visible func(*T) bool) ([]*T, string, error) {
	limit := pg.Limit
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	if limit > flexhub.MaxPageLimit {
		limit = flexhub.MaxPageLimit
	}
	out := []*T{}
	after := pg.After
	for {
		items, next, err := list(flexhub.Page{After: after, Limit: flexhub.MaxPageLimit})
		if err != nil {
			return nil, "", err
		}
		for _, v := range items {
			if !visible(v) {
				continue
			}
			if len(out) == limit {
				return out, id(out[len(out)-1]), nil
			}
			out = append(out, v)
		}
		if next == "" {
			return out, "", nil
		}
		after = next
	}
}

// CancelOffer withdraws an open offer, by its seller. Trades still
// proposed on it are cancelled with it.
func (s *Service) CancelOffer(ctx context.Context, id string, version int64) (*flexhub.SecondaryOffer, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.SecondaryOffer
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		now := s.now()
		o, err := tx.SecondaryOffer(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeOffer(ctx, tx, by, o, now) {
			return notFound("secondary offer", id)
		}
		if o.SellerFSPID != by.ID {
			return flexhub.Errorf(flexhub.EForbidden, "only seller %s may cancel offer %s", o.SellerFSPID, id)
		}
		if version > 0 {
			if err := checkVersion("secondary offer", id, version, o.Version); err != nil {
				return err
			}
		}
		if err := o.Cancel(now); err != nil {
			return err
		}
		if err := tx.UpdateSecondaryOffer(ctx, o); err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "offer.cancelled", flexhub.KindSecondaryOffer, o.ID, o.Version, o, offerParties(o)...); err != nil {
			return err
		}
		who, err := s.endProposed(ctx, tx, o, by.ID, "offer "+o.ID+" was cancelled by the seller", false)
		if err != nil {
			return err
		}
		out = o
		return s.notify(ctx, tx, append(who, o.BuyerFSPID), flexhub.NotifyOfferCancelled, flexhub.KindSecondaryOffer, o.ID, o.SessionID,
			fmt.Sprintf("offer %s was cancelled by the seller", o.ID))
	})
	return out, err
}

// endProposed ends every trade still proposed on offer o (cancelled, or
// expired when expire is set), audits each as actorID and returns the
// buyers, who are told by the caller.
func (s *Service) endProposed(ctx context.Context, tx flexhub.Tx, o *flexhub.SecondaryOffer, actorID, reason string, expire bool) ([]string, error) {
	ts, err := listAll(func(pg flexhub.Page) ([]*flexhub.Trade, string, error) {
		return tx.ListTrades(ctx, flexhub.Filter{"offer_id": o.ID, "status": flexhub.TradeProposed}, pg)
	})
	if err != nil {
		return nil, err
	}
	now := s.now()
	var buyers []string
	for _, t := range ts {
		action, typ := "trade.cancelled", flexhub.NotifyTradeCancelled
		if expire {
			action, typ = "trade.expired", flexhub.NotifyTradeExpired
			err = t.Expire(now, reason)
		} else {
			err = t.Cancel(now, reason)
		}
		if err != nil {
			return nil, err
		}
		if err := tx.UpdateTrade(ctx, t); err != nil {
			return nil, err
		}
		if err := s.recordAs(ctx, tx, actorID, action, flexhub.KindTrade, t.ID, t.Version, t, tradeParties(t)...); err != nil {
			return nil, err
		}
		if err := s.notify(ctx, tx, []string{t.BuyerFSPID}, typ, flexhub.KindTrade, t.ID, o.SessionID, fmt.Sprintf("trade %s ended: %s", t.ID, reason)); err != nil {
			return nil, err
		}
		buyers = append(buyers, t.BuyerFSPID)
	}
	return buyers, nil
}

// checkBuyer applies the buyer's eligibility rules (see the top of the
// file) for resource resourceID of party by taking obligation o.
func checkBuyer(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, o *flexhub.Obligation, resourceID string) error {
	r, units, err := activeOwnResource(ctx, tx, by, resourceID, "takes over an obligation")
	if err != nil {
		return asTradeRule(err)
	}
	need, err := tx.Need(ctx, o.NeedID)
	if err != nil {
		return err
	}
	prod, err := tx.Product(ctx, o.ProductID)
	if err != nil {
		return err
	}
	// The obligation as a bid of the buyer: the same intervals and
	// quantities, for the shared prequalification and capability checks.
	spec := &flexhub.BidSpec{NeedID: o.NeedID, ResourceID: r.ID}
	plan := &flexhub.BidPlan{}
	for _, iv := range o.Intervals {
		spec.Intervals = append(spec.Intervals, flexhub.BidInterval{Start: iv.Start})
		plan.Quantities = append(plan.Quantities, iv.Quantity)
	}
	end := o.Intervals[len(o.Intervals)-1].End
	plan.Span = end.Sub(o.Intervals[0].Start)
	if err := checkLocation(ctx, tx, need, r, units); err != nil {
		return asTradeRule(err)
	}
	if err := checkProductPrequal(ctx, tx, r, prod, spec, plan, prod.Resolution()); err != nil {
		return asTradeRule(err)
	}
	if err := checkGridPrequal(ctx, tx, r, units, need, prod, spec, plan, end); err != nil {
		return asTradeRule(err)
	}
	return asTradeRule(checkCapability(r, need, prod, spec, plan))
}

// tradeableObligation loads the offer's obligation and checks it can
// still change hands at now.
func tradeableObligation(ctx context.Context, tx flexhub.Tx, off *flexhub.SecondaryOffer, now time.Time) (*flexhub.Obligation, error) {
	o, err := tx.Obligation(ctx, off.ObligationID)
	if err != nil {
		return nil, err
	}
	if o.Status != flexhub.ObligationActive || o.FSPID != off.SellerFSPID {
		return nil, flexhub.RuleErrorf(flexhub.EConflict, "trade.obligation_active", "offer_id", "obligation %s of offer %s is %s and no longer the seller's to trade", o.ID, off.ID, o.Status)
	}
	if start := o.Intervals[0].Start; !now.Before(start) {
		return nil, flexhub.RuleErrorf(flexhub.EGone, "trade.delivery_started", "offer_id", "obligation %s started delivery at %s; it can no longer change hands", o.ID, start.Format(time.RFC3339))
	}
	return o, nil
}

// RequestTrade is an eligible FSP taking an open offer with one of its
// resources; the request is its acceptance of the offer's price.
func (s *Service) RequestTrade(ctx context.Context, spec flexhub.TradeSpec, key string) (*Created[flexhub.Trade], error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	spec.OfferID, spec.ResourceID = strings.TrimSpace(spec.OfferID), strings.TrimSpace(spec.ResourceID)
	if spec.OfferID == "" {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "trade.offer", "offer_id", "name the offer to take")
	}
	if spec.ResourceID == "" {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "trade.resource_owned", "resource_id", "name the resource of yours that will deliver")
	}
	return create(ctx, s, by, key, flexhub.KindTrade, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.Trade, error) { return tx.Trade(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Trade, string, error) {
			now := s.now()
			off, err := tx.SecondaryOffer(ctx, spec.OfferID)
			if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
				return nil, "", err
			}
			if err != nil || !canSeeOffer(ctx, tx, by, off, now) {
				return nil, "", flexhub.RuleErrorf(flexhub.ENotFound, "trade.offer", "offer_id", "secondary offer %s not found among the offers open to party %s", spec.OfferID, by.ID)
			}
			if off.SellerFSPID == by.ID {
				return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "trade.own_offer", "offer_id", "offer %s is your own; another FSP takes it", off.ID)
			}
			if off.BuyerFSPID != "" && off.BuyerFSPID != by.ID {
				return nil, "", flexhub.RuleErrorf(flexhub.ENotFound, "trade.offer", "offer_id", "secondary offer %s not found among the offers open to party %s", spec.OfferID, by.ID)
			}
			if err := off.Takeable(now); err != nil {
				return nil, "", err
			}
			o, err := tradeableObligation(ctx, tx, off, now)
			if err != nil {
				return nil, "", err
			}
			if err := checkBuyer(ctx, tx, by, o, spec.ResourceID); err != nil {
				return nil, "", err
			}
			mine, _, err := tx.ListTrades(ctx, flexhub.Filter{"offer_id": off.ID, "buyer_fsp_id": by.ID, "status": flexhub.TradeProposed}, flexhub.Page{Limit: 1})
			if err != nil {
				return nil, "", err
			}
			if len(mine) > 0 {
				return nil, "", flexhub.RuleErrorf(flexhub.EConflict, "trade.duplicate", "offer_id", "you already asked for offer %s (trade %s); cancel that trade to ask again", off.ID, mine[0].ID)
			}
			t := &flexhub.Trade{ID: flexhub.NewID(), TradeSpec: spec, ObligationID: o.ID, SellerFSPID: off.SellerFSPID, BuyerFSPID: by.ID,
				SystemOperatorID: off.SystemOperatorID, Price: off.Price, Status: flexhub.TradeProposed, BuyerAcceptedAt: now, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateTrade(ctx, t); err != nil {
				return nil, "", err
			}
			if err := s.record(ctx, tx, by, "trade.proposed", flexhub.KindTrade, t.ID, t.Version, t, tradeParties(t)...); err != nil {
				return nil, "", err
			}
			text := fmt.Sprintf("party %s asks to take offer %s for %s %s; confirm at /v1/trades/%s/confirm", by.ID, off.ID, t.Price.Amount, t.Price.Currency, t.ID)
			if err := s.notify(ctx, tx, []string{t.SellerFSPID}, flexhub.NotifyTradeProposed, flexhub.KindTrade, t.ID, off.SessionID, text); err != nil {
				return nil, "", err
			}
			return t, t.ID, nil
		})
}

// loadTrade reads a trade the caller may see (404 otherwise) and checks
// the version the caller sent, if any.
func loadTrade(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, version int64) (*flexhub.Trade, error) {
	t, err := tx.Trade(ctx, id)
	if err != nil {
		return nil, err
	}
	if !canSeeTrade(by, t) {
		return nil, notFound("trade", id)
	}
	if version > 0 {
		if err := checkVersion("trade", id, version, t.Version); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ConfirmTrade is the seller's confirmation: the buyer's eligibility is
// checked again, the offer is reserved and the buying system operator's
// objection window starts.
func (s *Service) ConfirmTrade(ctx context.Context, id string, version int64) (*flexhub.Trade, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Trade
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		now := s.now()
		t, err := loadTrade(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		if by.ID != t.SellerFSPID {
			return flexhub.Errorf(flexhub.EForbidden, "only seller %s confirms trade %s", t.SellerFSPID, id)
		}
		if t.Status != flexhub.TradeProposed {
			return flexhub.RuleErrorf(flexhub.EConflict, "trade.not_proposed", "id", "trade %s is %s; only a proposed trade is confirmed", t.ID, t.Status)
		}
		off, err := tx.SecondaryOffer(ctx, t.OfferID)
		if err != nil {
			return err
		}
		if err := off.Takeable(now); err != nil {
			return err
		}
		o, err := tradeableObligation(ctx, tx, off, now)
		if err != nil {
			return err
		}
		buyer, err := tx.Party(ctx, t.BuyerFSPID)
		if err != nil {
			return err
		}
		if err := checkBuyer(ctx, tx, buyer, o, t.ResourceID); err != nil {
			return err
		}
		window := off.ObjectionWindow()
		if start := o.Intervals[0].Start; now.Add(window).After(start) {
			return flexhub.RuleErrorf(flexhub.EGone, "trade.window_after_delivery", "id", "the %d-minute objection window would end at %s, after obligation %s starts delivery at %s; too late to confirm",
				off.ObjectionMinutes, now.Add(window).Format(time.RFC3339), o.ID, start.Format(time.RFC3339))
		}
		if err := t.Confirm(now, window); err != nil {
			return err
		}
		if err := off.Reserve(t.ID, now); err != nil {
			return err
		}
		if err := tx.UpdateTrade(ctx, t); err != nil {
			return err
		}
		if err := tx.UpdateSecondaryOffer(ctx, off); err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "trade.confirmed", flexhub.KindTrade, t.ID, t.Version, t, tradeParties(t)...); err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "offer.reserved", flexhub.KindSecondaryOffer, off.ID, off.Version, off, offerParties(off)...); err != nil {
			return err
		}
		end := t.ObjectionWindowEnd.Format(time.RFC3339)
		if err := s.notify(ctx, tx, []string{t.BuyerFSPID}, flexhub.NotifyTradeConfirmed, flexhub.KindTrade, t.ID, off.SessionID,
			fmt.Sprintf("seller confirmed trade %s; obligation %s moves to you at %s unless system operator %s objects", t.ID, o.ID, end, t.SystemOperatorID)); err != nil {
			return err
		}
		if err := s.notify(ctx, tx, []string{t.SystemOperatorID}, flexhub.NotifyTradeConfirmed, flexhub.KindTrade, t.ID, off.SessionID,
			fmt.Sprintf("obligation %s is to move from FSP %s to FSP %s (resource %s); object until %s at /v1/trades/%s/objection",
				o.ID, t.SellerFSPID, t.BuyerFSPID, t.ResourceID, end, t.ID)); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, err
}

// ObjectionRequest is the buying system operator's objection to a trade.
type ObjectionRequest struct {
	Reasons string `json:"reasons" maxLength:"2000" doc:"why the system operator refuses the new FSP; told to both FSPs"`
}

// ObjectTrade is the buying system operator stopping a confirmed trade
// within its window; the offer is open again.
func (s *Service) ObjectTrade(ctx context.Context, id string, req ObjectionRequest, version int64) (*flexhub.Trade, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	reasons := strings.TrimSpace(req.Reasons)
	if reasons == "" {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "trade.objection_reasons", "reasons", "an objection states its reasons")
	}
	var out *flexhub.Trade
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		now := s.now()
		t, err := loadTrade(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		if by.ID != t.SystemOperatorID {
			return flexhub.Errorf(flexhub.EForbidden, "only system operator %s, the obligation's buyer, objects to trade %s", t.SystemOperatorID, id)
		}
		if err := t.Object(now, reasons); err != nil {
			return err
		}
		off, err := tx.SecondaryOffer(ctx, t.OfferID)
		if err != nil {
			return err
		}
		if err := off.Release(now); err != nil {
			return err
		}
		if err := tx.UpdateTrade(ctx, t); err != nil {
			return err
		}
		if err := tx.UpdateSecondaryOffer(ctx, off); err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "trade.objected", flexhub.KindTrade, t.ID, t.Version, t, tradeParties(t)...); err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "offer.released", flexhub.KindSecondaryOffer, off.ID, off.Version, off, offerParties(off)...); err != nil {
			return err
		}
		out = t
		return s.notify(ctx, tx, []string{t.SellerFSPID, t.BuyerFSPID}, flexhub.NotifyTradeObjected, flexhub.KindTrade, t.ID, off.SessionID,
			fmt.Sprintf("system operator %s objected to trade %s: %s; obligation %s stays with FSP %s", by.ID, t.ID, reasons, t.ObligationID, t.SellerFSPID))
	})
	return out, err
}

// CancelTrade ends a proposed trade, by either of its FSPs.
func (s *Service) CancelTrade(ctx context.Context, id string, version int64) (*flexhub.Trade, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Trade
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		t, err := loadTrade(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		if by.ID != t.SellerFSPID && by.ID != t.BuyerFSPID {
			return flexhub.Errorf(flexhub.EForbidden, "only FSPs %s and %s cancel trade %s", t.SellerFSPID, t.BuyerFSPID, id)
		}
		who := "buyer"
		other := t.SellerFSPID
		if by.ID == t.SellerFSPID {
			who, other = "seller", t.BuyerFSPID
		}
		if err := t.Cancel(s.now(), "cancelled by the "+who); err != nil {
			return err
		}
		if err := tx.UpdateTrade(ctx, t); err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "trade.cancelled", flexhub.KindTrade, t.ID, t.Version, t, tradeParties(t)...); err != nil {
			return err
		}
		out = t
		return s.notify(ctx, tx, []string{other}, flexhub.NotifyTradeCancelled, flexhub.KindTrade, t.ID, "", fmt.Sprintf("trade %s was cancelled by the %s", t.ID, who))
	})
	return out, err
}

// GetTrade returns a trade the caller may see; to anyone else it does not
// exist.
func (s *Service) GetTrade(ctx context.Context, id string) (*flexhub.Trade, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Trade
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out, err = loadTrade(ctx, tx, by, id, 0)
		return err
	})
	return out, err
}

// TradeFilter narrows a trade list.
type TradeFilter struct {
	OfferID          string
	ObligationID     string
	SellerFSPID      string
	BuyerFSPID       string
	SystemOperatorID string
	Status           string
}

// ListTrades lists the trades the caller may see, like ListOffers: by
// the index when the caller names itself as seller, buyer or system
// operator, otherwise scanned and filtered by visibility.
func (s *Service) ListTrades(ctx context.Context, tf TradeFilter, pg flexhub.Page) (*ListResult[flexhub.Trade], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f, err := buildFilter(idParam{"offer_id", tf.OfferID}, idParam{"obligation_id", tf.ObligationID}, idParam{"seller_fsp_id", tf.SellerFSPID},
		idParam{"buyer_fsp_id", tf.BuyerFSPID}, idParam{"system_operator_id", tf.SystemOperatorID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(f, tf.Status, "trade", []string{flexhub.TradeProposed, flexhub.TradeConfirmed, flexhub.TradeObjected, flexhub.TradeCompleted, flexhub.TradeCancelled, flexhub.TradeExpired}); err != nil {
		return nil, err
	}
	selfFilter(by, f, "seller_fsp_id", "buyer_fsp_id", "system_operator_id")
	var out ListResult[flexhub.Trade]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		direct := by.HasRole(flexhub.RoleAdmin) || f["seller_fsp_id"] == by.ID || f["buyer_fsp_id"] == by.ID || f["system_operator_id"] == by.ID
		var err error
		out.Items, out.Next, err = visiblePage(pg, func(p flexhub.Page) ([]*flexhub.Trade, string, error) { return tx.ListTrades(ctx, f, p) },
			func(t *flexhub.Trade) string { return t.ID },
			func(t *flexhub.Trade) bool { return direct || canSeeTrade(by, t) })
		return err
	})
	return &out, err
}

// sweepSecondary is the scheduler's secondary-market step: it completes
// every confirmed trade whose objection window has passed and expires
// every open offer past its expiry, each in its own transaction as a
// conditional, versioned update, so that of two flexhub instances only
// one makes (and audits) each change. It returns how many it made.
func (s *Service) sweepSecondary(ctx context.Context) (int, error) {
	var trades []*flexhub.Trade
	var offers []*flexhub.SecondaryOffer
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		now := s.now()
		var err error
		if trades, err = tx.DueTrades(ctx, now, flexhub.MaxPageLimit); err != nil {
			return err
		}
		offers, err = tx.DueSecondaryOffers(ctx, now, flexhub.MaxPageLimit)
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range trades {
		done, err := s.completeTrade(ctx, t.ID)
		if err != nil && flexhub.ErrorKind(err) != flexhub.EConflict {
			return n, fmt.Errorf("trade %s: %w", t.ID, err)
		}
		if done {
			n++
		}
	}
	for _, o := range offers {
		done, err := s.expireOffer(ctx, o.ID)
		if err != nil && flexhub.ErrorKind(err) != flexhub.EConflict {
			return n, fmt.Errorf("secondary offer %s: %w", o.ID, err)
		}
		if done {
			n++
		}
	}
	return n, nil
}

// completeTrade moves the obligation of trade id if it is confirmed and
// its objection window has passed: the trade completes, the seller's
// obligation becomes transferred, the buyer's new one is created with the
// same intervals and quantities, and the offer is traded.
func (s *Service) completeTrade(ctx context.Context, id string) (bool, error) {
	done := false
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		done = false
		now := s.now()
		t, err := tx.Trade(ctx, id)
		if err != nil {
			return err
		}
		if t.Status != flexhub.TradeConfirmed || now.Before(*t.ObjectionWindowEnd) {
			return nil // another instance completed it, or the SO objected
		}
		old, err := tx.Obligation(ctx, t.ObligationID)
		if err != nil {
			return err
		}
		if old.Status != flexhub.ObligationActive || old.FSPID != t.SellerFSPID {
			return flexhub.Errorf(flexhub.EConflict, "obligation %s of trade %s is %s and held by %s", old.ID, t.ID, old.Status, old.FSPID)
		}
		off, err := tx.SecondaryOffer(ctx, t.OfferID)
		if err != nil {
			return err
		}
		nu := *old
		nu.ID, nu.Version, nu.FSPID, nu.ResourceID = flexhub.NewID(), 0, t.BuyerFSPID, t.ResourceID
		nu.Status, nu.TradeID, nu.TransferredFrom, nu.TransferredTo = flexhub.ObligationActive, t.ID, old.ID, ""
		nu.Intervals = append([]flexhub.ObligationInterval(nil), old.Intervals...)
		nu.CreatedAt, nu.UpdatedAt = now, now
		if err := t.Complete(now, nu.ID); err != nil {
			return err
		}
		if err := tx.UpdateTrade(ctx, t); err != nil { // the versioned claim
			return err
		}
		old.Status, old.TransferredTo, old.UpdatedAt = flexhub.ObligationTransferred, nu.ID, now
		if err := tx.UpdateObligation(ctx, old); err != nil {
			return err
		}
		if err := tx.CreateObligation(ctx, &nu); err != nil {
			return err
		}
		if err := off.MarkTraded(now); err != nil {
			return err
		}
		if err := tx.UpdateSecondaryOffer(ctx, off); err != nil {
			return err
		}
		steps := []struct {
			action, kind, id string
			version          int64
			obj              any
			parties          []string
		}{
			{"trade.completed", flexhub.KindTrade, t.ID, t.Version, t, tradeParties(t)},
			{"obligation.transferred", flexhub.KindObligation, old.ID, old.Version, old, []string{old.FSPID, old.SystemOperatorID, old.OperatorID}},
			{"obligation.created", flexhub.KindObligation, nu.ID, nu.Version, &nu, []string{nu.FSPID, nu.SystemOperatorID, nu.OperatorID}},
			{"offer.traded", flexhub.KindSecondaryOffer, off.ID, off.Version, off, offerParties(off)},
		}
		for _, st := range steps {
			if err := s.recordAs(ctx, tx, SchedulerActor, st.action, st.kind, st.id, st.version, st.obj, st.parties...); err != nil {
				return err
			}
		}
		if _, err := s.endProposed(ctx, tx, off, SchedulerActor, "offer "+off.ID+" was traded to another FSP", true); err != nil {
			return err
		}
		if err := s.notify(ctx, tx, tradeParties(t), flexhub.NotifyTradeCompleted, flexhub.KindTrade, t.ID, old.SessionID,
			fmt.Sprintf("trade %s completed: obligation %s of FSP %s is transferred; FSP %s now owes obligation %s with resource %s",
				t.ID, old.ID, t.SellerFSPID, t.BuyerFSPID, nu.ID, t.ResourceID)); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done, err
}

// expireOffer lapses open offer id if its expiry has passed, with the
// trades still proposed on it.
func (s *Service) expireOffer(ctx context.Context, id string) (bool, error) {
	done := false
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		done = false
		now := s.now()
		o, err := tx.SecondaryOffer(ctx, id)
		if err != nil {
			return err
		}
		if o.Status != flexhub.OfferOpen || now.Before(o.Expiry) {
			return nil
		}
		if err := o.Expire(now); err != nil {
			return err
		}
		if err := tx.UpdateSecondaryOffer(ctx, o); err != nil {
			return err
		}
		if err := s.recordAs(ctx, tx, SchedulerActor, "offer.expired", flexhub.KindSecondaryOffer, o.ID, o.Version, o, offerParties(o)...); err != nil {
			return err
		}
		if _, err := s.endProposed(ctx, tx, o, SchedulerActor, "offer "+o.ID+" expired", true); err != nil {
			return err
		}
		done = true
		return s.notify(ctx, tx, []string{o.SellerFSPID}, flexhub.NotifyOfferExpired, flexhub.KindSecondaryOffer, o.ID, o.SessionID,
			fmt.Sprintf("offer %s expired at %s without a trade", o.ID, o.Expiry.Format(time.RFC3339)))
	})
	return done, err
}
