package flexhub

import "time"

// Market results: what the clearing of a session decided. Every bid that
// was still submitted at gate closure gets one Award (accepted, partially
// accepted or rejected with the reason); every accepted or partially
// accepted bid becomes an Obligation to deliver; every need gets a
// NeedResult (what was covered, what is short, what it costs). They are
// written once, in the transaction that moves the session to cleared, and
// never change afterwards: an obligation's status moves on with
// activation and secondary trades, its quantities do not.

// Award statuses, the same words as the bid statuses they set.
const (
	AwardAccepted          = BidAccepted
	AwardPartiallyAccepted = BidPartiallyAccepted
	AwardRejected          = BidRejected
)

// Obligation statuses. An obligation is active from clearing until
// delivery, or until a secondary trade moves it to another FSP
// (ObligationTransferred, secondary.go); the activation issue adds the
// rest.
const (
	ObligationActive = "active"
)

// Price bases: which price of a bid the clearing selected on and paid.
const (
	// PriceAvailability: capacity needs and needs buying both select and
	// pay on the availability price, per MW per hour.
	PriceAvailability = "availability"
	// PriceActivation: energy-only needs select on the activation price,
	// per MWh; nothing is paid at clearing, the amounts are what a full
	// activation over the whole interval would cost.
	PriceActivation = "activation"
)

// Award is the clearing's verdict on one bid. It is confidential like the
// bid: its FSP, the buying system operator and the session's market
// operator read it, other FSPs never.
type Award struct {
	ID               string `json:"id" readOnly:"true"`
	SessionID        string `json:"session_id" readOnly:"true"`
	NeedID           string `json:"need_id" readOnly:"true"`
	BidID            string `json:"bid_id" readOnly:"true"`
	FSPID            string `json:"fsp_id" readOnly:"true"`
	ResourceID       string `json:"resource_id" readOnly:"true"`
	SystemOperatorID string `json:"system_operator_id" readOnly:"true" doc:"the buyer"`
	OperatorID       string `json:"operator_id" readOnly:"true" doc:"the session's market operator"`
	Status           string `json:"status" enum:"accepted,partially_accepted,rejected" readOnly:"true"`
	// Reason says why a bid got nothing (from the clearing engine, or
	// flexhub's own checks at clearing time: need cancelled, intervals the
	// need no longer has, price above a revised maximum).
	Reason     string          `json:"reason,omitempty" readOnly:"true" doc:"why a rejected bid got nothing"`
	Pricing    string          `json:"pricing" enum:"pay_as_bid,uniform" readOnly:"true"`
	PriceBasis string          `json:"price_basis" enum:"availability,activation" readOnly:"true" doc:"availability: price per MW per hour, paid for availability; activation: price per MWh, amounts are what a full activation would cost"`
	Unit       string          `json:"unit" enum:"W,var" readOnly:"true" doc:"unit of every quantity in the award"`
	Currency   string          `json:"currency" readOnly:"true"`
	Intervals  []AwardInterval `json:"intervals" readOnly:"true"`
	Amount     Money           `json:"amount" readOnly:"true" doc:"sum of the intervals' amounts"`
	Version    int64           `json:"version" readOnly:"true"`
	CreatedAt  time.Time       `json:"created_at" readOnly:"true"`
}

// AwardInterval is the verdict for one interval of a bid.
type AwardInterval struct {
	Start    time.Time `json:"start"`
	Offered  int64     `json:"offered" doc:"what the bid offered, in the award's unit; 0 where the need no longer has the interval; capped where a DSO's amber traffic light capped the bid (the bid's grid_caps)"`
	Accepted int64     `json:"accepted" doc:"what the clearing accepted, in the award's unit"`
	// Price is what is paid per MW per hour (availability) or per MWh
	// (activation): the bid's own price under pay-as-bid, the interval's
	// clearing price under uniform pricing. Set where something is
	// accepted.
	Price *Money `json:"price,omitempty" doc:"price paid where accepted: the bid's under pay_as_bid, the clearing price under uniform"`
	// ActivationPrice is the bid's activation price on a need buying
	// both, recorded for the activation that may follow (always as bid).
	ActivationPrice *Money `json:"activation_price,omitempty" doc:"on needs buying both: the bid's activation price per MWh, paid as bid when activated"`
	Amount          Money  `json:"amount" doc:"accepted × price × interval length, exact, rounded half up to 1/10000 of the currency once per interval"`
}

// Obligation is an awarded bid as a duty to deliver: the resource must be
// available (or deliver, for energy) the accepted quantity in each
// interval. The activation issue activates against it; the secondary
// market moves it between FSPs.
type Obligation struct {
	ID               string               `json:"id" readOnly:"true"`
	AwardID          string               `json:"award_id" readOnly:"true"`
	BidID            string               `json:"bid_id" readOnly:"true"`
	SessionID        string               `json:"session_id" readOnly:"true"`
	NeedID           string               `json:"need_id" readOnly:"true"`
	ProductID        string               `json:"product_id" readOnly:"true"`
	FSPID            string               `json:"fsp_id" readOnly:"true"`
	ResourceID       string               `json:"resource_id" readOnly:"true"`
	SystemOperatorID string               `json:"system_operator_id" readOnly:"true"`
	OperatorID       string               `json:"operator_id" readOnly:"true"`
	Direction        string               `json:"direction" enum:"up,down" readOnly:"true"`
	Buys             string               `json:"buys" enum:"capacity,energy,both" readOnly:"true"`
	Unit             string               `json:"unit" enum:"W,var" readOnly:"true"`
	Intervals        []ObligationInterval `json:"intervals" readOnly:"true" doc:"only the intervals with an accepted quantity"`
	Status           string               `json:"status" enum:"active,transferred" readOnly:"true"`
	// TradeID, TransferredFrom and TransferredTo link the obligations a
	// secondary trade replaced: the buyer's new obligation names the trade
	// and the seller's old one, the old one names the new one.
	TradeID         string    `json:"trade_id,omitempty" readOnly:"true" doc:"the secondary trade that created this obligation"`
	TransferredFrom string    `json:"transferred_from,omitempty" readOnly:"true" doc:"the seller's obligation this one replaced"`
	TransferredTo   string    `json:"transferred_to,omitempty" readOnly:"true" doc:"the buyer's obligation that replaced this one"`
	Version         int64     `json:"version" readOnly:"true"`
	CreatedAt       time.Time `json:"created_at" readOnly:"true"`
	UpdatedAt       time.Time `json:"updated_at" readOnly:"true"`
}

// ObligationInterval is the quantity owed in one market time unit.
type ObligationInterval struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Quantity int64     `json:"quantity" doc:"in the obligation's unit"`
}

// NeedOutcome is what the market learns of one need's clearing: volumes
// and prices per interval, never who sold them.
type NeedOutcome struct {
	NeedID     string            `json:"need_id"`
	Direction  string            `json:"direction" enum:"up,down"`
	Buys       string            `json:"buys" enum:"capacity,energy,both"`
	PriceBasis string            `json:"price_basis" enum:"availability,activation"`
	Unit       string            `json:"unit" enum:"W,var"`
	Currency   string            `json:"currency"`
	Cancelled  bool              `json:"cancelled,omitempty" doc:"the need was cancelled before gate closure; nothing was bought"`
	Intervals  []OutcomeInterval `json:"intervals"`
}

// OutcomeInterval is one interval of a need's outcome. Under uniform
// pricing ClearingPrice is what every accepted bid is paid; under
// pay-as-bid the min, max and volume-weighted average of the prices paid
// describe the spread without naming a bid.
type OutcomeInterval struct {
	Start         time.Time `json:"start"`
	Demand        int64     `json:"demand"`
	Accepted      int64     `json:"accepted"`
	Shortfall     int64     `json:"shortfall"`
	ClearingPrice *Money    `json:"clearing_price,omitempty" doc:"uniform pricing: the marginal (highest accepted) price"`
	MinPrice      *Money    `json:"min_price,omitempty" doc:"pay-as-bid: lowest price paid"`
	MaxPrice      *Money    `json:"max_price,omitempty" doc:"pay-as-bid: highest price paid"`
	AveragePrice  *Money    `json:"average_price,omitempty" doc:"pay-as-bid: volume-weighted average price paid, rounded half up"`
	// Grid is the network side of a DSO's clearing in its own grid: the
	// limits the clearing respected and the AC power flow that verified
	// the accepted bids (docs/GRID_CLEARING.md).
	Grid *GridOutcome `json:"grid,omitempty" doc:"for a DSO's clearing in its own grid: the limits respected and the AC verification of the result"`
}

// GridOutcome is the grid check of one interval of a clearing.
type GridOutcome struct {
	GridModelID  string   `json:"grid_model_id"`
	ModelVersion int64    `json:"model_version"`
	States       string   `json:"states" doc:"the operating state(s) the interval was cleared on: a forecast, or the model's base case"`
	Limits       int      `json:"limits" doc:"line, transformer and voltage limits the clearing's linearised rows covered"`
	Before       []string `json:"violations_before,omitempty" doc:"the limits the forecast state already breaks"`
	// After lists what the AC power flow of the cleared state breaks
	// beyond the forecast (the linearisation's residual); empty when the
	// result is verified.
	After            []string `json:"violations_after" nullable:"false" doc:"what the AC power flow with the accepted bids breaks beyond the forecast, by more than 0.5 % loading or 0.001 p.u.; empty: verified"`
	MaxLoadingExcess float64  `json:"max_loading_excess_pct" doc:"largest loading beyond its allowed value after clearing, percentage points (0: none)"`
	MaxVoltageExcess float64  `json:"max_voltage_excess_pu" doc:"largest voltage beyond its allowed value after clearing, p.u. (0: none)"`
	Passes           int      `json:"passes" doc:"how many times the session was cleared and checked: again on rows linearised at the cleared point until the clearing stops changing (at most 4); the best clearing the AC check found clean is the result"`
}

// NeedResult is the buyer's view of one need's clearing: the outcome plus
// what it costs. Read by the buying system operator and the session's
// market operator.
type NeedResult struct {
	ID string `json:"id" readOnly:"true"`
	NeedOutcome
	SessionID        string    `json:"session_id" readOnly:"true"`
	SystemOperatorID string    `json:"system_operator_id" readOnly:"true"`
	TotalCost        Money     `json:"total_cost" readOnly:"true" doc:"sum of the amounts of the need's awards"`
	Version          int64     `json:"version" readOnly:"true"`
	CreatedAt        time.Time `json:"created_at" readOnly:"true"`
}
