package flexhub

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The market: a system operator publishes a Need (a call for tender for
// flexibility), a market operator bundles needs of one product into a
// MarketSession with a gate opening and a gate closure, and FSPs submit
// Bids into the session until the gate closes. Everything here is pure:
// the checks that need other objects (prequalifications, contracts,
// resources) live in app, with the caller.

// Object kinds of the market, as used in audit entries and history.
const (
	KindNeed          = "need"
	KindMarketSession = "market_session"
	KindBid           = "bid"
	KindAward         = "award"
	KindObligation    = "obligation"
	KindNeedResult    = "need_result"
)

// Need statuses: open until cancelled by its system operator or closed
// with its session at gate closure.
const (
	NeedOpen      = "open"
	NeedCancelled = "cancelled"
	NeedClosed    = "closed"
)

// Market session statuses.
//
//	scheduled --gate opening--> open --gate closure--> closed --clearing--> cleared
//	scheduled | open --cancel--> cancelled
//
// The scheduler moves a session on time; nobody calls an endpoint for it.
// Closure and clearing are two steps, each its own transaction, so that a
// clearing that fails (or a crash between the two) never holds the gate
// open: a closed session is one whose clearing is still to come.
const (
	SessionScheduled = "scheduled"
	SessionOpen      = "open"
	SessionClosed    = "closed"
	SessionCleared   = "cleared"
	SessionCancelled = "cancelled"
	// SessionClearingFailed: the engine could not prove an optimal
	// clearing within its limits. flexhub never publishes a clearing it
	// cannot prove optimal, so the session stops here for its operator to
	// decide, instead of retrying for ever.
	SessionClearingFailed = "clearing_failed"
)

// Bid statuses: submitted until gate closure (or withdrawn before it);
// the clearing turns every submitted bid into accepted,
// partially_accepted or rejected.
const (
	BidSubmitted         = "submitted"
	BidWithdrawn         = "withdrawn"
	BidAccepted          = "accepted"
	BidPartiallyAccepted = "partially_accepted"
	BidRejected          = "rejected"
)

// Session kinds, from weeks ahead to minutes ahead of delivery.
var SessionKinds = []string{"long_term", "day_ahead", "intraday", "near_real_time"}

// Pricing rules of a session. Pay-as-bid pays each accepted bid its own
// price; uniform pays every accepted bid of an interval the marginal price.
const (
	PricingPayAsBid = "pay_as_bid"
	PricingUniform  = "uniform"
)

// DefaultCurrency is the currency of a need that names none.
const DefaultCurrency = "EUR"

// maxIntervals bounds the intervals of one need or bid: 104 days of
// quarter hours, more than a long-term session needs.
const maxIntervals = 10_000

// MarketQuantity is active or reactive power with an explicit unit, as the
// product buys it: W, kW, MW for active power products; var, kvar, Mvar for
// reactive power products.
type MarketQuantity struct {
	Value float64 `json:"value" doc:"must be above zero"`
	Unit  string  `json:"unit" enum:"W,kW,MW,var,kvar,Mvar"`
}

// Base validates the quantity for a product of powerType ("active" or
// "reactive") and returns it in W or var. Zero and negative quantities are
// refused under rule: a bid or need of nothing is a mistake, not a no-op.
func (q *MarketQuantity) Base(field, powerType, rule string) (int64, error) {
	if q.Value <= 0 || q.Value != q.Value {
		return 0, RuleErrorf(EInvalid, rule, field+".value", "quantity must be above zero, got %v %s", q.Value, q.Unit)
	}
	if powerType == "reactive" {
		v, err := (&ReactivePower{Value: q.Value, Unit: q.Unit}).Vars(field)
		return v, asRule(err, "quantity.unit")
	}
	v, err := (&Power{Value: q.Value, Unit: q.Unit}).Watts(field)
	return v, asRule(err, "quantity.unit")
}

// asRule tags a field error with a rule name.
func asRule(err error, rule string) error {
	if e, ok := err.(*Error); ok && e != nil {
		c := *e
		if c.Rule == "" {
			c.Rule = rule
		}
		return &c
	}
	return err
}

// Aligned reports whether t starts a market time unit of length res, in
// UTC. Every resolution a product may have divides a day, so units start
// at midnight UTC and every res after it.
func Aligned(t time.Time, res time.Duration) bool {
	return res > 0 && t.Equal(t.UTC().Truncate(res))
}

// Resolution returns the product's market time unit (PT15M by default).
func (p *Product) Resolution() time.Duration {
	res, err := p.TimeResolution.Parse("")
	if err != nil || res <= 0 {
		return 15 * time.Minute
	}
	return res
}

// Buys says what a need buys: capacity (availability), energy
// (activation) or both.
func buysCapacity(buys string) bool { return buys == "capacity" || buys == "both" }
func buysEnergy(buys string) bool   { return buys == "energy" || buys == "both" }

// NeedSpec is what a system operator publishes.
type NeedSpec struct {
	ProductID          string         `json:"product_id" doc:"one of the caller's active products"`
	GridAreaID         string         `json:"grid_area_id,omitempty" doc:"where: a grid area; or give connection_point_ids"`
	ConnectionPointIDs []string       `json:"connection_point_ids,omitempty" doc:"where: a set of connection points (grid nodes); or give grid_area_id"`
	Direction          string         `json:"direction" enum:"up,down" doc:"up: more generation or less consumption; down: the reverse"`
	Buys               string         `json:"buys" enum:"capacity,energy,both" doc:"capacity (availability, priced per MW per hour), energy (activation, priced per MWh) or both; must be among the product's remuneration"`
	Currency           string         `json:"currency,omitempty" doc:"ISO 4217 currency of every price in the need and its bids; default EUR"`
	Intervals          []NeedInterval `json:"intervals" doc:"market time units at the product's resolution, sorted, no duplicates"`
	Description        string         `json:"description,omitempty" maxLength:"4000" doc:"why the flexibility is needed, e.g. evening peak on feeder 3"`
}

// NeedInterval is the flexibility needed in one market time unit.
type NeedInterval struct {
	Start    time.Time      `json:"start" doc:"start of the market time unit, ISO 8601 UTC, aligned to the product's time resolution"`
	Quantity MarketQuantity `json:"quantity" doc:"power needed: W/kW/MW for active, var/kvar/Mvar for reactive power products"`
	// MaxPrice caps the price the clearing selects on: the availability
	// price when the need buys capacity or both, the activation price when
	// it buys energy only.
	MaxPrice *Money `json:"max_price,omitempty" doc:"optional cap: on the availability price (per MW per hour) when buying capacity or both; on the activation price (per MWh) when buying energy only"`
	// MaxActivationPrice caps the activation price of a need buying both.
	MaxActivationPrice *Money `json:"max_activation_price,omitempty" doc:"optional cap on the activation price (per MWh) of a need buying both"`
}

// Need is a system operator's call for flexibility for one product:
// where, when, which direction, how much, at what price at most.
type Need struct {
	ID string `json:"id" readOnly:"true"`
	NeedSpec
	SystemOperatorID string    `json:"system_operator_id" readOnly:"true" doc:"the buying TSO or DSO"`
	SessionID        string    `json:"session_id,omitempty" readOnly:"true" doc:"the market session the need was put into, once it is"`
	Status           string    `json:"status" enum:"open,cancelled,closed" readOnly:"true"`
	Version          int64     `json:"version" readOnly:"true"`
	CreatedAt        time.Time `json:"created_at" readOnly:"true"`
	UpdatedAt        time.Time `json:"updated_at" readOnly:"true"`
}

// Validate checks the need against its product and normalises it (UTC
// times, canonical amounts, the default currency).
func (s *NeedSpec) Validate(p *Product) error {
	if !ValidID(s.ProductID) {
		return FieldErrorf("product_id", "%q is not a product id", s.ProductID)
	}
	switch {
	case s.GridAreaID != "" && len(s.ConnectionPointIDs) > 0:
		return RuleErrorf(EInvalid, "need.location", "grid_area_id", "say where with grid_area_id or with connection_point_ids, not both")
	case s.GridAreaID == "" && len(s.ConnectionPointIDs) == 0:
		return RuleErrorf(EInvalid, "need.location", "grid_area_id", "say where the flexibility is needed: a grid_area_id, or a non-empty list of connection_point_ids")
	case s.GridAreaID != "" && !ValidID(s.GridAreaID):
		return FieldErrorf("grid_area_id", "%q is not a grid area id", s.GridAreaID)
	}
	seen := map[string]bool{}
	for i, id := range s.ConnectionPointIDs {
		if !ValidID(id) {
			return FieldErrorf(fieldIndex("connection_point_ids", i), "%q is not a connection point id", id)
		}
		if seen[id] {
			return FieldErrorf(fieldIndex("connection_point_ids", i), "connection point %s is listed twice", id)
		}
		seen[id] = true
	}
	if err := oneOf("direction", s.Direction, []string{"up", "down"}); err != nil {
		return err
	}
	if err := oneOf("buys", s.Buys, []string{"capacity", "energy", "both"}); err != nil {
		return err
	}
	if s.Currency == "" {
		s.Currency = DefaultCurrency
	}
	if err := ValidateCurrency("currency", s.Currency); err != nil {
		return err
	}
	s.Description = strings.TrimSpace(s.Description)
	if utf8.RuneCountInString(s.Description) > 4000 {
		return FieldErrorf("description", "keep the description under 4000 characters")
	}
	if p == nil {
		return nil
	}
	if p.Direction != "both" && p.Direction != s.Direction {
		return RuleErrorf(EInvalid, "need.direction", "direction", "product %q buys %s flexibility only; a need for it cannot ask for %s", p.Name, p.Direction, s.Direction)
	}
	for _, want := range map[string][]string{"capacity": {"capacity"}, "energy": {"energy"}, "both": {"capacity", "energy"}}[s.Buys] {
		if !slices.Contains(p.Remuneration, want) {
			return RuleErrorf(EInvalid, "need.buys", "buys", "product %q pays for %s only; a need for it cannot buy %s", p.Name, strings.Join(p.Remuneration, " and "), want)
		}
	}
	if len(s.Intervals) == 0 {
		return RuleErrorf(EInvalid, "need.intervals", "intervals", "a need names at least one interval")
	}
	if len(s.Intervals) > maxIntervals {
		return RuleErrorf(EInvalid, "need.intervals", "intervals", "a need has at most %d intervals, got %d; split it", maxIntervals, len(s.Intervals))
	}
	res := p.Resolution()
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		f := fieldIndex("intervals", i)
		if err := checkStart(f, iv.Start, res, p); err != nil {
			return err
		}
		iv.Start = iv.Start.UTC()
		if i > 0 && !iv.Start.After(s.Intervals[i-1].Start) {
			return intervalOrder(f, iv.Start, s.Intervals[i-1].Start)
		}
		if _, err := iv.Quantity.Base(f+".quantity", p.PowerType, "need.quantity"); err != nil {
			return err
		}
		if iv.MaxPrice != nil {
			if err := s.price(f+".max_price", iv.MaxPrice); err != nil {
				return err
			}
		}
		if iv.MaxActivationPrice != nil {
			if s.Buys != "both" {
				return RuleErrorf(EInvalid, "need.price", f+".max_activation_price", "max_activation_price is for needs that buy both; this need buys %s: put its cap in max_price", s.Buys)
			}
			if err := s.price(f+".max_activation_price", iv.MaxActivationPrice); err != nil {
				return err
			}
		}
	}
	return nil
}

// price checks a price of the need: its currency, non-negative, canonical.
func (s *NeedSpec) price(field string, m *Money) error {
	v, err := m.Normalize(field)
	if err != nil {
		return err
	}
	if m.Currency != s.Currency {
		return RuleErrorf(EInvalid, "need.currency", field+".currency", "the need is priced in %s, not %s", s.Currency, m.Currency)
	}
	if v < 0 {
		return RuleErrorf(EInvalid, "need.price", field+".amount", "a maximum price must not be negative, got %s", m.Amount)
	}
	return nil
}

func checkStart(field string, start time.Time, res time.Duration, p *Product) error {
	if start.IsZero() {
		return FieldErrorf(field+".start", "start is required")
	}
	if !Aligned(start, res) {
		return RuleErrorf(EInvalid, "interval.aligned", field+".start", "%s is not aligned to the %s time resolution of product %q: intervals start at %s, %s, ... (UTC)",
			start.UTC().Format(time.RFC3339Nano), p.TimeResolution, p.Name, start.UTC().Truncate(res).Format(time.RFC3339), start.UTC().Truncate(res).Add(res).Format(time.RFC3339))
	}
	return nil
}

func intervalOrder(field string, start, prev time.Time) error {
	if start.Equal(prev) {
		return RuleErrorf(EInvalid, "interval.duplicate", field+".start", "interval %s is listed twice", start.Format(time.RFC3339))
	}
	return RuleErrorf(EInvalid, "interval.sorted", field+".start", "intervals must be sorted by start: %s comes after %s", start.Format(time.RFC3339), prev.Format(time.RFC3339))
}

// Interval returns the need's interval starting at t, or nil.
func (n *Need) Interval(t time.Time) *NeedInterval {
	i, ok := slices.BinarySearchFunc(n.Intervals, t, func(iv NeedInterval, t time.Time) int { return iv.Start.Compare(t) })
	if !ok {
		return nil
	}
	return &n.Intervals[i]
}

// Cancel ends an open need. Bids against it are left for the clearing to
// reject, since they are the FSPs' and stay in their trail.
func (n *Need) Cancel(now time.Time) error {
	if n.Status != NeedOpen {
		return Errorf(EConflict, "need %s is %s; only an open need can be cancelled", n.ID, n.Status)
	}
	n.Status, n.UpdatedAt = NeedCancelled, now
	return nil
}

// SessionSpec is what a market operator (or a system operator acting as
// one) sends to open a call for tender.
type SessionSpec struct {
	Name        string    `json:"name,omitempty" maxLength:"200"`
	Kind        string    `json:"kind" enum:"long_term,day_ahead,intraday,near_real_time"`
	NeedIDs     []string  `json:"need_ids" maxItems:"100" doc:"open needs of one product, not yet in another session"`
	GateOpening time.Time `json:"gate_opening" doc:"from when bids are accepted, ISO 8601 UTC"`
	GateClosure time.Time `json:"gate_closure" doc:"until when (exclusive) bids are accepted, modified and withdrawn"`
	Pricing     string    `json:"pricing,omitempty" enum:"pay_as_bid,uniform" doc:"how accepted bids are paid; default pay_as_bid"`
	// Coordination is how a buyer other than a resource's DSO may use
	// DSO-connected resources (docs/COORDINATION.md).
	Coordination string `json:"coordination,omitempty" enum:"dso_approval,dso_first,common_market" doc:"TSO-DSO coordination for resources in a DSO's grid: dso_approval (default: every bid and order under the DSO's traffic light), dso_first (also: the DSOs' own sessions over the same intervals clear first, and what they bought of a resource is no longer offered here) or common_market (the session is cleared jointly with the other common_market sessions of its market operator over overlapping intervals: a resource's capacity counted once over all their needs, every grid model's limits over all the bids in it)"`
}

// Coordination schemes (docs/COORDINATION.md).
const (
	CoordinationDSOApproval = "dso_approval"
	CoordinationDSOFirst    = "dso_first"
	CoordinationCommon      = "common_market"
)

// MarketSession is one call for tender with its gate times.
type MarketSession struct {
	ID string `json:"id" readOnly:"true"`
	SessionSpec
	OperatorID       string     `json:"operator_id" readOnly:"true" doc:"the market operator running the session (or the system operator acting as one)"`
	ProductID        string     `json:"product_id" readOnly:"true"`
	SystemOperatorID string     `json:"system_operator_id" readOnly:"true" doc:"the buyer: the product's system operator"`
	Status           string     `json:"status" enum:"scheduled,open,closed,cleared,clearing_failed,cancelled" readOnly:"true"`
	OpenedAt         *time.Time `json:"opened_at,omitempty" readOnly:"true"`
	ClosedAt         *time.Time `json:"closed_at,omitempty" readOnly:"true"`
	ClearedAt        *time.Time `json:"cleared_at,omitempty" readOnly:"true" doc:"when the clearing's results were stored"`
	ClearingError    string     `json:"clearing_error,omitempty" readOnly:"true" doc:"why the clearing failed (status clearing_failed)"`
	CancelledAt      *time.Time `json:"cancelled_at,omitempty" readOnly:"true"`
	Version          int64      `json:"version" readOnly:"true"`
	CreatedAt        time.Time  `json:"created_at" readOnly:"true"`
	UpdatedAt        time.Time  `json:"updated_at" readOnly:"true"`
}

// Validate checks what needs no other object. A gate closure in the past
// would open a session that can take no bid.
func (s *SessionSpec) Validate(now time.Time) error {
	s.Name = strings.TrimSpace(s.Name)
	if err := oneOf("kind", s.Kind, SessionKinds); err != nil {
		return err
	}
	if s.Pricing == "" {
		s.Pricing = PricingPayAsBid
	}
	if err := oneOf("pricing", s.Pricing, []string{PricingPayAsBid, PricingUniform}); err != nil {
		return err
	}
	if s.Coordination == "" {
		s.Coordination = CoordinationDSOApproval
	}
	if err := oneOf("coordination", s.Coordination, []string{CoordinationDSOApproval, CoordinationDSOFirst, CoordinationCommon}); err != nil {
		return err
	}
	if len(s.NeedIDs) == 0 {
		return RuleErrorf(EInvalid, "session.needs", "need_ids", "a session needs at least one need")
	}
	seen := map[string]bool{}
	for i, id := range s.NeedIDs {
		f := fieldIndex("need_ids", i)
		if !ValidID(id) {
			return FieldErrorf(f, "%q is not a need id", id)
		}
		if seen[id] {
			return FieldErrorf(f, "need %s is listed twice", id)
		}
		seen[id] = true
	}
	if s.GateOpening.IsZero() {
		return FieldErrorf("gate_opening", "gate_opening is required")
	}
	if s.GateClosure.IsZero() {
		return FieldErrorf("gate_closure", "gate_closure is required")
	}
	s.GateOpening, s.GateClosure = s.GateOpening.UTC().Truncate(time.Microsecond), s.GateClosure.UTC().Truncate(time.Microsecond)
	if !s.GateOpening.Before(s.GateClosure) {
		return RuleErrorf(EInvalid, "session.gate_order", "gate_closure", "gate closure %s must be after gate opening %s", s.GateClosure.Format(time.RFC3339Nano), s.GateOpening.Format(time.RFC3339Nano))
	}
	if !s.GateClosure.After(now) {
		return RuleErrorf(EInvalid, "session.gate_closure_past", "gate_closure", "gate closure %s has already passed", s.GateClosure.Format(time.RFC3339Nano))
	}
	return nil
}

// Due returns the transition the session is due for at now: "open",
// "close" or "" when nothing is due. A session whose both gates passed
// while nobody was looking opens first, then closes, so its trail shows
// both steps.
func (m *MarketSession) Due(now time.Time) string {
	switch {
	case m.Status == SessionScheduled && !now.Before(m.GateOpening):
		return "open"
	case m.Status == SessionOpen && !now.Before(m.GateClosure):
		return "close"
	}
	return ""
}

// Open moves a scheduled session to open at gate opening.
func (m *MarketSession) Open(now time.Time) error {
	if m.Status != SessionScheduled {
		return Errorf(EConflict, "session %s is %s; only a scheduled session opens", m.ID, m.Status)
	}
	m.Status, m.OpenedAt, m.UpdatedAt = SessionOpen, &now, now
	return nil
}

// Close moves an open session to closed at gate closure.
func (m *MarketSession) Close(now time.Time) error {
	if m.Status != SessionOpen {
		return Errorf(EConflict, "session %s is %s; only an open session closes", m.ID, m.Status)
	}
	m.Status, m.ClosedAt, m.UpdatedAt = SessionClosed, &now, now
	return nil
}

// MarkCleared moves a closed session to cleared. Only a closed session
// clears: together with the versioned update this is what makes the
// clearing happen exactly once.
func (m *MarketSession) MarkClearingFailed(now time.Time, reason string) error {
	if m.Status != SessionClosed {
		return Errorf(EConflict, "session %s is %s; only a closed session can fail to clear", m.ID, m.Status)
	}
	m.Status, m.ClearingError, m.UpdatedAt = SessionClearingFailed, reason, now
	return nil
}

// MarkCleared records that the session's results are stored.
func (m *MarketSession) MarkCleared(now time.Time) error {
	if m.Status != SessionClosed {
		return Errorf(EConflict, "session %s is %s; only a closed session is cleared", m.ID, m.Status)
	}
	m.Status, m.ClearedAt, m.UpdatedAt = SessionCleared, &now, now
	return nil
}

// Cancel ends a session before gate closure; its needs are free again.
func (m *MarketSession) Cancel(now time.Time) error {
	switch m.Status {
	case SessionScheduled, SessionOpen:
	case SessionCancelled:
		return Errorf(EConflict, "session %s is already cancelled", m.ID)
	default:
		return Errorf(EGone, "session %s closed at %s and can no longer be cancelled", m.ID, m.GateClosure.Format(time.RFC3339))
	}
	if !now.Before(m.GateClosure) {
		return Errorf(EGone, "gate closed at %s; session %s can no longer be cancelled", m.GateClosure.Format(time.RFC3339), m.ID)
	}
	m.Status, m.CancelledAt, m.UpdatedAt = SessionCancelled, &now, now
	return nil
}

// AcceptsBids reports, as an error naming the rule, why the session takes
// no bid changes at now: before gate opening (409), at or after gate
// closure (410 Gone: too late for good), cancelled (409). The clock
// decides, not the status alone: the scheduler may lag by a tick, and a
// bid must never slip in after the gate closed.
func (m *MarketSession) AcceptsBids(now time.Time) error {
	switch {
	case m.Status == SessionCancelled:
		return RuleErrorf(EConflict, "session.cancelled", "session_id", "session %s was cancelled; it takes no bids", m.ID)
	case m.Status == SessionClosed || m.Status == SessionCleared || m.Status == SessionClearingFailed || !now.Before(m.GateClosure):
		return RuleErrorf(EGone, "session.gate_closed", "session_id", "gate closed at %s; session %s takes no more bids, modifications or withdrawals", m.GateClosure.Format(time.RFC3339Nano), m.ID)
	case now.Before(m.GateOpening):
		return RuleErrorf(EConflict, "session.gate_not_open", "session_id", "gate opens at %s; session %s takes bids from then until %s", m.GateOpening.Format(time.RFC3339Nano), m.ID, m.GateClosure.Format(time.RFC3339Nano))
	}
	return nil
}

// GateClosed reports whether bidding has ended (closed, or past gate
// closure): from then on the buyer may read the bids.
func (m *MarketSession) GateClosed(now time.Time) bool {
	return m.Status == SessionClosed || m.Status == SessionCleared || m.Status == SessionClearingFailed || (m.Status != SessionCancelled && !now.Before(m.GateClosure))
}

// BidSpec is what an FSP submits and modifies.
type BidSpec struct {
	SessionID  string        `json:"session_id"`
	NeedID     string        `json:"need_id" doc:"a need of the session"`
	ResourceID string        `json:"resource_id" doc:"one of the caller's active units or groups"`
	Intervals  []BidInterval `json:"intervals" doc:"sorted, aligned to the product's resolution, each one of the need's intervals"`
	Divisible  bool          `json:"divisible" doc:"true: may be accepted in part (not below min_quantity); false: all of an interval's quantity or nothing"`
	// MinQuantity is the least a divisible bid may be cut to per interval.
	MinQuantity *MarketQuantity `json:"min_quantity,omitempty" doc:"for divisible bids: the least that may be accepted per interval; at least the product's min bid size"`
	// ExclusiveGroup names a group of the caller's bids in this session of
	// which at most one is accepted.
	ExclusiveGroup string `json:"exclusive_group,omitempty" maxLength:"100" doc:"a name of your choosing (your own namespace per session), or the id of one of your bids in this session: at most one bid of the group is accepted"`
	Linked         bool   `json:"linked" doc:"true: accepted in all of its intervals or in none"`
}

// BidInterval is the offer for one market time unit.
type BidInterval struct {
	Start             time.Time      `json:"start" doc:"one of the need's interval starts"`
	Quantity          MarketQuantity `json:"quantity" doc:"offered power, above zero, in the product's power type"`
	AvailabilityPrice *Money         `json:"availability_price,omitempty" doc:"price per MW per hour of availability; required when the need buys capacity or both"`
	ActivationPrice   *Money         `json:"activation_price,omitempty" doc:"price per MWh activated; required when the need buys energy or both"`
}

// Bid is an FSP's offer in a market session. It is confidential: its FSP
// and the session's market operator see it, the buying system operator
// only after gate closure, other FSPs never.
type Bid struct {
	ID string `json:"id" readOnly:"true"`
	BidSpec
	FSPID            string     `json:"fsp_id" readOnly:"true"`
	SystemOperatorID string     `json:"system_operator_id" readOnly:"true" doc:"the buyer"`
	OperatorID       string     `json:"operator_id" readOnly:"true" doc:"the session's market operator"`
	Status           string     `json:"status" enum:"submitted,withdrawn,accepted,partially_accepted,rejected" readOnly:"true"`
	WithdrawnAt      *time.Time `json:"withdrawn_at,omitempty" readOnly:"true"`
	// TrafficLights are the DSOs' verdicts on the bid's intervals for
	// units in another party's grid (docs/TRAFFIC_LIGHT.md); GridCaps the
	// intervals they cap below the offer.
	TrafficLights []TrafficLight `json:"traffic_lights,omitempty" readOnly:"true" doc:"the DSOs' traffic lights on the bid's intervals, for units in another party's distribution grid"`
	GridCaps      []GridCap      `json:"grid_caps,omitempty" readOnly:"true" doc:"intervals where the traffic lights cap the bid: the clearing accepts at most allowed there"`
	Version       int64          `json:"version" readOnly:"true"`
	CreatedAt     time.Time      `json:"created_at" readOnly:"true"`
	UpdatedAt     time.Time      `json:"updated_at" readOnly:"true"`
}

// BidPlan is a bid's parsed numbers, for the checks against the resource
// and, later, the clearing.
type BidPlan struct {
	Quantities  []int64 // W or var per interval
	MinQuantity int64   // W or var; 0 when none
	// AvailabilityPrices and ActivationPrices are in ten-thousandths of
	// the currency per MW per hour and per MWh; 0 where not given.
	AvailabilityPrices []int64
	ActivationPrices   []int64
	Span               time.Duration // first start to last end
}

// Check validates a bid against its need and the need's product and
// normalises it (UTC, canonical amounts). Each failure names its rule.
func (b *BidSpec) Check(p *Product, n *Need) (*BidPlan, error) {
	if len(b.Intervals) == 0 {
		return nil, RuleErrorf(EInvalid, "bid.intervals", "intervals", "a bid offers at least one interval")
	}
	if len(b.Intervals) > len(n.Intervals) {
		return nil, RuleErrorf(EInvalid, "bid.intervals", "intervals", "need %s has %d intervals; the bid offers %d", n.ID, len(n.Intervals), len(b.Intervals))
	}
	b.ExclusiveGroup = strings.TrimSpace(b.ExclusiveGroup)
	res := p.Resolution()
	plan := &BidPlan{}
	minBid := int64(0)
	if p.PowerType == "reactive" {
		minBid, _ = p.MinBidSizeReactive.Vars("")
	} else {
		minBid, _ = p.MinBidSize.Watts("")
	}
	unit := "W"
	if p.PowerType == "reactive" {
		unit = "var"
	}
	if b.MinQuantity != nil {
		if !b.Divisible {
			return nil, RuleErrorf(EInvalid, "bid.min_quantity", "min_quantity", "min_quantity is for divisible bids; an indivisible bid is accepted in full or not at all")
		}
		v, err := b.MinQuantity.Base("min_quantity", p.PowerType, "bid.min_quantity")
		if err != nil {
			return nil, err
		}
		plan.MinQuantity = v
	}
	if b.Divisible && minBid > 0 && plan.MinQuantity < minBid {
		if b.MinQuantity == nil {
			return nil, RuleErrorf(EInvalid, "bid.min_bid_size", "min_quantity", "product %q has a minimum bid size of %d %s: a divisible bid gives min_quantity of at least that, so it is never cut below it", p.Name, minBid, unit)
		}
		return nil, RuleErrorf(EInvalid, "bid.min_bid_size", "min_quantity.value", "min_quantity %d %s is below the minimum bid size of product %q (%d %s)", plan.MinQuantity, unit, p.Name, minBid, unit)
	}
	for i := range b.Intervals {
		iv := &b.Intervals[i]
		f := fieldIndex("intervals", i)
		if err := checkStart(f, iv.Start, res, p); err != nil {
			return nil, asRule(err, "interval.aligned")
		}
		iv.Start = iv.Start.UTC()
		if i > 0 && !iv.Start.After(b.Intervals[i-1].Start) {
			return nil, intervalOrder(f, iv.Start, b.Intervals[i-1].Start)
		}
		ni := n.Interval(iv.Start)
		if ni == nil {
			return nil, RuleErrorf(EInvalid, "bid.interval_in_need", f+".start", "need %s asks for nothing at %s; bid only for its intervals", n.ID, iv.Start.Format(time.RFC3339))
		}
		q, err := iv.Quantity.Base(f+".quantity", p.PowerType, "bid.quantity")
		if err != nil {
			return nil, err
		}
		if q < minBid {
			return nil, RuleErrorf(EInvalid, "bid.min_bid_size", f+".quantity.value", "%d %s is below the minimum bid size of product %q (%d %s)", q, unit, p.Name, minBid, unit)
		}
		if plan.MinQuantity > q {
			return nil, RuleErrorf(EInvalid, "bid.min_quantity", "min_quantity.value", "min_quantity %d %s exceeds the quantity offered at %s (%d %s)", plan.MinQuantity, unit, iv.Start.Format(time.RFC3339), q, unit)
		}
		plan.Quantities = append(plan.Quantities, q)
		avail, err := bidPrice(f+".availability_price", iv.AvailabilityPrice, buysCapacity(n.Buys), n, "capacity", "availability")
		if err != nil {
			return nil, err
		}
		act, err := bidPrice(f+".activation_price", iv.ActivationPrice, buysEnergy(n.Buys), n, "energy", "activation")
		if err != nil {
			return nil, err
		}
		// The cap: max_price on the price the need selects on, and
		// max_activation_price on the activation price of a need buying both.
		if ni.MaxPrice != nil {
			field, price, what := f+".availability_price", avail, "availability"
			if n.Buys == "energy" {
				field, price, what = f+".activation_price", act, "activation"
			}
			if limit, _ := ni.MaxPrice.Parse(""); price > limit {
				return nil, RuleErrorf(EInvalid, "bid.price.max", field+".amount", "%s price %s %s is above the need's maximum %s %s at %s", what, FormatAmount(price), n.Currency, ni.MaxPrice.Amount, n.Currency, iv.Start.Format(time.RFC3339))
			}
		}
		if ni.MaxActivationPrice != nil {
			if limit, _ := ni.MaxActivationPrice.Parse(""); act > limit {
				return nil, RuleErrorf(EInvalid, "bid.price.max", f+".activation_price.amount", "activation price %s %s is above the need's maximum %s %s at %s", FormatAmount(act), n.Currency, ni.MaxActivationPrice.Amount, n.Currency, iv.Start.Format(time.RFC3339))
			}
		}
		plan.AvailabilityPrices = append(plan.AvailabilityPrices, avail)
		plan.ActivationPrices = append(plan.ActivationPrices, act)
	}
	plan.Span = b.Intervals[len(b.Intervals)-1].Start.Add(res).Sub(b.Intervals[0].Start)
	return plan, nil
}

// bidPrice checks one price of a bid interval: present exactly when the
// need buys what it prices, in the need's currency, not negative.
func bidPrice(field string, m *Money, bought bool, n *Need, buys, what string) (int64, error) {
	if m == nil {
		if bought {
			return 0, RuleErrorf(EInvalid, "bid.price.required", field, "need %s buys %s: give an %s price", n.ID, n.Buys, what)
		}
		return 0, nil
	}
	if !bought {
		return 0, RuleErrorf(EInvalid, "bid.price.not_bought", field, "need %s buys %s, not %s: leave the %s price out", n.ID, n.Buys, buys, what)
	}
	v, err := m.Normalize(field)
	if err != nil {
		return 0, asRule(err, "bid.price.format")
	}
	if m.Currency != n.Currency {
		return 0, RuleErrorf(EInvalid, "bid.price.currency", field+".currency", "need %s is priced in %s; the bid offers %s", n.ID, n.Currency, m.Currency)
	}
	if v < 0 {
		return 0, RuleErrorf(EInvalid, "bid.price.negative", field+".amount", "a price must not be negative, got %s", m.Amount)
	}
	return v, nil
}

// Withdraw takes a submitted bid out of the session.
func (b *Bid) Withdraw(now time.Time) error {
	if b.Status != BidSubmitted {
		return Errorf(EConflict, "bid %s is already %s", b.ID, b.Status)
	}
	b.Status, b.WithdrawnAt, b.UpdatedAt = BidWithdrawn, &now, now
	return nil
}

// Notification types.
const (
	// NotifySessionClearingFailed goes to the operator and the buyer when
	// the engine could not prove an optimal clearing.
	NotifySessionClearingFailed = "session.clearing_failed"
	NotifySessionOpened         = "session.opened"
	NotifySessionClosed         = "session.closed"
	NotifyBidReceived           = "bid.received"
	NotifyBidModified           = "bid.modified"
	NotifyBidWithdrawn          = "bid.withdrawn"
	// NotifySessionCleared goes to every bidder, the buyer and the
	// operator once the results are stored.
	NotifySessionCleared = "session.cleared"
	// NotifyAward goes to a bidder for each of its bids the clearing
	// decided on.
	NotifyAward = "award"
	// NotifyActivationOrder goes to the FSP of a new order (and of an
	// end order); NotifyActivationStatus to the system operator for each
	// FSP report; NotifyActivationAlert to the system operator (and the
	// FSP for delivery alerts).
	NotifyActivationOrder  = "activation.order"
	NotifyActivationStatus = "activation.status"
	NotifyActivationAlert  = "activation.alert"
)

// Notification is one message in a party's feed. It is written in the
// same transaction as the change it reports, so the feed never tells of a
// change that did not happen nor misses one that did.
type Notification struct {
	Seq        int64     `json:"seq" doc:"position in the feed; pass the last one you read as ?after="`
	PartyID    string    `json:"party_id"`
	At         time.Time `json:"at"`
	Type       string    `json:"type" enum:"session.opened,session.closed,session.cleared,session.clearing_failed,bid.received,bid.modified,bid.withdrawn,award,offer.published,offer.cancelled,offer.expired,trade.proposed,trade.confirmed,trade.objected,trade.completed,trade.cancelled,trade.expired,activation.order,activation.status,activation.alert,settlement.statement,settlement.imbalance_adjustment,settlement.verification"`
	ObjectKind string    `json:"object_kind"`
	ObjectID   string    `json:"object_id"`
	SessionID  string    `json:"session_id,omitempty"`
	Text       string    `json:"text"`
}
