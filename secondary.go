package flexhub

import (
	"strings"
	"time"
)

// The secondary market: an FSP that holds an obligation to deliver can
// hand all of it to another FSP. The seller publishes a SecondaryOffer; an
// eligible FSP answers with a Trade naming the resource that will
// deliver (that request is the buyer's acceptance); the seller confirms;
// the buying system operator then has an objection window, and when it
// passes without objection the scheduler completes the trade: the old
// obligation becomes transferred and a new one, with the same intervals
// and quantities, is created for the buyer. Only whole obligations are
// traded in this version: splitting intervals or quantities would need the
// activation issue to know which part each FSP owes.

// Object kinds of the secondary market, as in audit entries and history.
const (
	KindSecondaryOffer = "secondary_offer"
	KindTrade          = "trade"
)

// ObligationTransferred is the status of an obligation that a completed
// secondary trade moved to another FSP; the buyer's new obligation names
// it in TransferredFrom.
const ObligationTransferred = "transferred"

// Secondary offer statuses. An offer is open until a trade on it is
// confirmed by the seller (reserved: no second trade can be confirmed
// while the system operator may still object), traded once that trade
// completes, cancelled by the seller, or expired at its expiry.
const (
	OfferOpen      = "open"
	OfferReserved  = "reserved"
	OfferTraded    = "traded"
	OfferCancelled = "cancelled"
	OfferExpired   = "expired"
)

// Trade statuses: proposed by the buyer, confirmed by the seller (the
// system operator's objection window runs), then completed by the
// scheduler or objected by the system operator; cancelled by either FSP
// while proposed; expired when the offer expires or delivery draws near
// before the seller confirmed.
const (
	TradeProposed  = "proposed"
	TradeConfirmed = "confirmed"
	TradeObjected  = "objected"
	TradeCompleted = "completed"
	TradeCancelled = "cancelled"
	TradeExpired   = "expired"
)

// Objection window limits, in minutes. The default gives a system
// operator's control room a quarter of an hour, the smallest market time
// unit of most products; a seller may ask for longer, never for less than
// a minute (an objection must stay possible) nor more than a day.
const (
	DefaultObjectionMinutes = 15
	MinObjectionMinutes     = 1
	MaxObjectionMinutes     = 1440
)

// SecondaryOfferSpec is what a seller sends to offer an obligation.
type SecondaryOfferSpec struct {
	ObligationID string `json:"obligation_id" doc:"one of your active obligations whose first interval has not started"`
	// BuyerFSPID restricts the offer to one FSP; empty offers it to every
	// eligible FSP.
	BuyerFSPID string    `json:"buyer_fsp_id,omitempty" doc:"only this FSP may take the offer; empty: every eligible FSP"`
	Price      Money     `json:"price" doc:"what the seller asks for the whole obligation"`
	Expiry     time.Time `json:"expiry" doc:"the offer lapses then; at the latest the obligation's first interval start"`
	// ObjectionMinutes is the system operator's window after the seller
	// confirms a trade.
	ObjectionMinutes int `json:"objection_minutes,omitempty" minimum:"0" maximum:"1440" doc:"the buying system operator's objection window after the seller confirms, in minutes (1-1440); 0 or absent: 15"`
}

// Validate checks the spec's own fields and normalises it (UTC times,
// canonical amount, default window). Obligation-dependent rules live in
// the service.
func (s *SecondaryOfferSpec) Validate(now time.Time) error {
	s.ObligationID = strings.TrimSpace(s.ObligationID)
	s.BuyerFSPID = strings.TrimSpace(s.BuyerFSPID)
	if s.ObligationID == "" {
		return RuleErrorf(EInvalid, "offer.obligation", "obligation_id", "name the obligation to offer")
	}
	v, err := s.Price.Parse("price")
	if err != nil {
		return err
	}
	if v < 0 {
		return RuleErrorf(EInvalid, "offer.price.negative", "price.amount", "a price must not be negative, got %s", s.Price.Amount)
	}
	s.Price.Amount = FormatAmount(v)
	if s.Expiry.IsZero() {
		return RuleErrorf(EInvalid, "offer.expiry", "expiry", "an offer needs an expiry time")
	}
	s.Expiry = s.Expiry.UTC()
	if !s.Expiry.After(now) {
		return RuleErrorf(EInvalid, "offer.expiry", "expiry", "expiry %s is not in the future", s.Expiry.Format(time.RFC3339))
	}
	if s.ObjectionMinutes == 0 {
		s.ObjectionMinutes = DefaultObjectionMinutes
	}
	if s.ObjectionMinutes < MinObjectionMinutes || s.ObjectionMinutes > MaxObjectionMinutes {
		return RuleErrorf(EInvalid, "offer.objection_window", "objection_minutes", "%d minutes is outside %d to %d", s.ObjectionMinutes, MinObjectionMinutes, MaxObjectionMinutes)
	}
	return nil
}

// ObjectionWindow returns the offer's objection window as a duration.
func (s *SecondaryOfferSpec) ObjectionWindow() time.Duration {
	return time.Duration(s.ObjectionMinutes) * time.Minute
}

// SecondaryOffer is an obligation offered for sale. It carries what a
// buyer needs to decide (need, product, direction, intervals, price) and
// none of the seller's other data: not the resource that delivers today,
// not the bid or its prices.
type SecondaryOffer struct {
	ID string `json:"id" readOnly:"true"`
	SecondaryOfferSpec
	SellerFSPID      string               `json:"seller_fsp_id" readOnly:"true"`
	SystemOperatorID string               `json:"system_operator_id" readOnly:"true" doc:"the buyer of the obligation, who may object to a trade"`
	SessionID        string               `json:"session_id" readOnly:"true"`
	NeedID           string               `json:"need_id" readOnly:"true"`
	ProductID        string               `json:"product_id" readOnly:"true"`
	Direction        string               `json:"direction" enum:"up,down" readOnly:"true"`
	Unit             string               `json:"unit" enum:"W,var" readOnly:"true"`
	Intervals        []ObligationInterval `json:"intervals" readOnly:"true" doc:"the obligation's intervals and quantities, all of which change hands"`
	Status           string               `json:"status" enum:"open,reserved,traded,cancelled,expired" readOnly:"true"`
	TradeID          string               `json:"trade_id,omitempty" readOnly:"true" doc:"the confirmed or completed trade"`
	Version          int64                `json:"version" readOnly:"true"`
	CreatedAt        time.Time            `json:"created_at" readOnly:"true"`
	UpdatedAt        time.Time            `json:"updated_at" readOnly:"true"`
}

// Start is the start of the offered obligation's first interval.
func (o *SecondaryOffer) Start() time.Time { return o.Intervals[0].Start }

// Takeable reports, as an error naming the rule, why the offer takes no
// trade request at now.
func (o *SecondaryOffer) Takeable(now time.Time) error {
	switch {
	case o.Status == OfferReserved:
		return RuleErrorf(EConflict, "offer.reserved", "offer_id", "offer %s is reserved by confirmed trade %s while the system operator may object", o.ID, o.TradeID)
	case o.Status != OfferOpen:
		return RuleErrorf(EConflict, "offer.not_open", "offer_id", "offer %s is %s and takes no trades", o.ID, o.Status)
	case !now.Before(o.Expiry):
		return RuleErrorf(EGone, "offer.expired", "offer_id", "offer %s expired at %s", o.ID, o.Expiry.Format(time.RFC3339))
	}
	return nil
}

// Reserve marks the offer taken by a confirmed trade.
func (o *SecondaryOffer) Reserve(tradeID string, now time.Time) error {
	if o.Status != OfferOpen {
		return Errorf(EConflict, "offer %s is %s; only an open offer is reserved by a trade", o.ID, o.Status)
	}
	o.Status, o.TradeID, o.UpdatedAt = OfferReserved, tradeID, now
	return nil
}

// Release reopens a reserved offer after the system operator objected.
func (o *SecondaryOffer) Release(now time.Time) error {
	if o.Status != OfferReserved {
		return Errorf(EConflict, "offer %s is %s; only a reserved offer is released", o.ID, o.Status)
	}
	o.Status, o.TradeID, o.UpdatedAt = OfferOpen, "", now
	return nil
}

// MarkTraded closes a reserved offer when its trade completes.
func (o *SecondaryOffer) MarkTraded(now time.Time) error {
	if o.Status != OfferReserved {
		return Errorf(EConflict, "offer %s is %s; only a reserved offer is traded", o.ID, o.Status)
	}
	o.Status, o.UpdatedAt = OfferTraded, now
	return nil
}

// Cancel withdraws an open offer (the seller's choice).
func (o *SecondaryOffer) Cancel(now time.Time) error {
	switch o.Status {
	case OfferOpen:
	case OfferReserved:
		return RuleErrorf(EConflict, "offer.reserved", "id", "offer %s is reserved by confirmed trade %s; it can no longer be cancelled", o.ID, o.TradeID)
	default:
		return RuleErrorf(EConflict, "offer.not_open", "id", "offer %s is already %s", o.ID, o.Status)
	}
	o.Status, o.UpdatedAt = OfferCancelled, now
	return nil
}

// Expire lapses an open offer at its expiry.
func (o *SecondaryOffer) Expire(now time.Time) error {
	if o.Status != OfferOpen || now.Before(o.Expiry) {
		return Errorf(EConflict, "offer %s is %s until %s; only an open offer past its expiry expires", o.ID, o.Status, o.Expiry.Format(time.RFC3339))
	}
	o.Status, o.UpdatedAt = OfferExpired, now
	return nil
}

// TradeSpec is what a buyer sends to take an offer.
type TradeSpec struct {
	OfferID    string `json:"offer_id" doc:"an open offer you are eligible for"`
	ResourceID string `json:"resource_id" doc:"your active unit or group that will deliver: prequalified for the product over every interval, in the need's location, with grid prequalification for the quantities"`
}

// Trade is one FSP's request to take a secondary offer, and its fate.
// Its two FSPs, the buying system operator and the administrator read
// it; nobody else learns it exists.
type Trade struct {
	ID string `json:"id" readOnly:"true"`
	TradeSpec
	ObligationID     string `json:"obligation_id" readOnly:"true"`
	SellerFSPID      string `json:"seller_fsp_id" readOnly:"true"`
	BuyerFSPID       string `json:"buyer_fsp_id" readOnly:"true"`
	SystemOperatorID string `json:"system_operator_id" readOnly:"true"`
	Price            Money  `json:"price" readOnly:"true" doc:"the offer's price at the time of the request"`
	Status           string `json:"status" enum:"proposed,confirmed,objected,completed,cancelled,expired" readOnly:"true"`
	// BuyerAcceptedAt is when the buyer asked: the request is its
	// acceptance of the offer's terms.
	BuyerAcceptedAt    time.Time  `json:"buyer_accepted_at" readOnly:"true"`
	SellerConfirmedAt  *time.Time `json:"seller_confirmed_at,omitempty" readOnly:"true"`
	ObjectionWindowEnd *time.Time `json:"objection_window_end,omitempty" readOnly:"true" doc:"set when the seller confirms; the system operator may object until then"`
	ObjectedAt         *time.Time `json:"objected_at,omitempty" readOnly:"true"`
	ObjectionReasons   string     `json:"objection_reasons,omitempty" readOnly:"true"`
	CompletedAt        *time.Time `json:"completed_at,omitempty" readOnly:"true"`
	NewObligationID    string     `json:"new_obligation_id,omitempty" readOnly:"true" doc:"the buyer's obligation, once completed"`
	EndedAt            *time.Time `json:"ended_at,omitempty" readOnly:"true" doc:"when it was cancelled or expired"`
	EndReason          string     `json:"end_reason,omitempty" readOnly:"true"`
	Version            int64      `json:"version" readOnly:"true"`
	CreatedAt          time.Time  `json:"created_at" readOnly:"true"`
	UpdatedAt          time.Time  `json:"updated_at" readOnly:"true"`
}

// Confirm records the seller's confirmation and starts the system
// operator's objection window.
func (t *Trade) Confirm(now time.Time, window time.Duration) error {
	if t.Status != TradeProposed {
		return RuleErrorf(EConflict, "trade.not_proposed", "id", "trade %s is %s; only a proposed trade is confirmed", t.ID, t.Status)
	}
	end := now.Add(window)
	t.Status, t.SellerConfirmedAt, t.ObjectionWindowEnd, t.UpdatedAt = TradeConfirmed, &now, &end, now
	return nil
}

// Object records the system operator's objection, within the window.
func (t *Trade) Object(now time.Time, reasons string) error {
	if t.Status != TradeConfirmed {
		return RuleErrorf(EConflict, "trade.not_confirmed", "id", "trade %s is %s; an objection stops a confirmed trade only", t.ID, t.Status)
	}
	if !now.Before(*t.ObjectionWindowEnd) {
		return RuleErrorf(EGone, "trade.objection_window", "id", "the objection window of trade %s ended at %s", t.ID, t.ObjectionWindowEnd.Format(time.RFC3339))
	}
	t.Status, t.ObjectedAt, t.ObjectionReasons, t.UpdatedAt = TradeObjected, &now, reasons, now
	return nil
}

// Complete ends a confirmed trade whose objection window passed; the
// caller moves the obligation in the same transaction.
func (t *Trade) Complete(now time.Time, newObligationID string) error {
	if t.Status != TradeConfirmed || now.Before(*t.ObjectionWindowEnd) {
		return Errorf(EConflict, "trade %s is %s; only a confirmed trade past its objection window completes", t.ID, t.Status)
	}
	t.Status, t.CompletedAt, t.NewObligationID, t.UpdatedAt = TradeCompleted, &now, newObligationID, now
	return nil
}

// Cancel ends a proposed trade at either FSP's request.
func (t *Trade) Cancel(now time.Time, reason string) error {
	if t.Status != TradeProposed {
		return RuleErrorf(EConflict, "trade.not_proposed", "id", "trade %s is %s; only a proposed trade can be cancelled", t.ID, t.Status)
	}
	t.Status, t.EndedAt, t.EndReason, t.UpdatedAt = TradeCancelled, &now, reason, now
	return nil
}

// Expire ends a proposed trade whose offer is gone.
func (t *Trade) Expire(now time.Time, reason string) error {
	if t.Status != TradeProposed {
		return Errorf(EConflict, "trade %s is %s; only a proposed trade expires", t.ID, t.Status)
	}
	t.Status, t.EndedAt, t.EndReason, t.UpdatedAt = TradeExpired, &now, reason, now
	return nil
}

// Notification types of the secondary market.
const (
	NotifyOfferPublished = "offer.published"
	NotifyOfferCancelled = "offer.cancelled"
	NotifyOfferExpired   = "offer.expired"
	NotifyTradeProposed  = "trade.proposed"
	NotifyTradeConfirmed = "trade.confirmed"
	NotifyTradeObjected  = "trade.objected"
	NotifyTradeCompleted = "trade.completed"
	NotifyTradeCancelled = "trade.cancelled"
	NotifyTradeExpired   = "trade.expired"
)
