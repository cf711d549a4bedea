package flexhub

import "time"

// Measurement, verification and settlement (docs/SETTLEMENT.md). After an
// activation, a settlement run computes per order and interval the
// baseline (by the product's method), what was measured and so what was
// delivered; then per FSP a statement of availability payments,
// activation payments and penalties; and per metering point the energy
// the activation moved, for the BRP's imbalance settlement. Energies are
// integer milli-units (mWh, or mvarh for reactive products), money is
// Money, every line names what it came from.

// Verification verdicts per interval and per order.
const (
	VerifyOnTarget   = "on_target"
	VerifyUnder      = "under_delivery"
	VerifyOver       = "over_delivery"
	VerifyNoData     = "no_data"     // meter data incomplete: treated as the product's missing_data rule says
	VerifyNoBaseline = "no_baseline" // the baseline could not be computed (e.g. too little history)
)

// Verification is what one activation order delivered, interval by
// interval (market time units).
type Verification struct {
	ID               string `json:"id" readOnly:"true"`
	RunID            string `json:"run_id" readOnly:"true" doc:"the settlement run that computed it"`
	OrderID          string `json:"order_id" readOnly:"true"`
	ObligationID     string `json:"obligation_id,omitempty" readOnly:"true"`
	ResourceID       string `json:"resource_id" readOnly:"true"`
	FSPID            string `json:"fsp_id" readOnly:"true"`
	SystemOperatorID string `json:"system_operator_id" readOnly:"true"`
	ProductID        string `json:"product_id" readOnly:"true"`
	Direction        string `json:"direction" enum:"up,down" readOnly:"true"`
	Unit             string `json:"unit" enum:"mWh,mvarh" readOnly:"true" doc:"unit of every energy in the verification"`
	// Baseline says how the baseline was made: the method, and for day
	// matching the days averaged.
	BaselineMethod string             `json:"baseline_method" readOnly:"true"`
	BaselineDays   []string           `json:"baseline_days,omitempty" readOnly:"true" doc:"day matching: the days averaged (YYYY-MM-DD, product's time zone)"`
	BaselineNote   string             `json:"baseline_note,omitempty" readOnly:"true" doc:"adjustment applied, or why there is no baseline"`
	TolerancePct   int                `json:"tolerance_pct" readOnly:"true"`
	MissingData    string             `json:"missing_data" enum:"not_delivered,excluded" readOnly:"true" doc:"how intervals without complete meter data were treated"`
	Intervals      []VerifiedInterval `json:"intervals" readOnly:"true"`
	Ordered        int64              `json:"ordered" readOnly:"true" doc:"sum over the intervals"`
	Delivered      int64              `json:"delivered" readOnly:"true" doc:"sum over the intervals that count (excluded ones do not)"`
	Verdict        string             `json:"verdict" enum:"on_target,under_delivery,over_delivery,no_data,no_baseline" readOnly:"true" doc:"of the order as a whole"`
	CreatedAt      time.Time          `json:"created_at" readOnly:"true"`
}

// VerifiedInterval is one market time unit of an order.
type VerifiedInterval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Ordered is the set-point's energy over the interval.
	Ordered int64 `json:"ordered"`
	// Baseline and Measured are net import (import − export) energies;
	// absent when unknown.
	Baseline *int64 `json:"baseline,omitempty"`
	Measured *int64 `json:"measured,omitempty"`
	// Delivered = baseline − measured for up, measured − baseline for down;
	// 0 for an interval without data under not_delivered.
	Delivered int64  `json:"delivered"`
	Excluded  bool   `json:"excluded,omitempty" doc:"left out of payment and penalty (missing_data: excluded)"`
	Verdict   string `json:"verdict" enum:"on_target,under_delivery,over_delivery,no_data,no_baseline"`
}

// Statement line kinds.
const (
	LineAvailability = "availability"
	LineActivation   = "activation"
	LinePenalty      = "penalty"
)

// Statement is what one system operator owes one FSP for a period: every
// line traceable to the award, obligation, order, meter data and baseline
// it came from. Statements are versioned: a run over the same period that
// finds different numbers (corrected meter data) makes a new version that
// names the one it replaces and the difference, never a silent change.
type Statement struct {
	ID               string          `json:"id" readOnly:"true"`
	RunID            string          `json:"run_id" readOnly:"true"`
	FSPID            string          `json:"fsp_id" readOnly:"true"`
	SystemOperatorID string          `json:"system_operator_id" readOnly:"true"`
	PeriodStart      time.Time       `json:"period_start" readOnly:"true"`
	PeriodEnd        time.Time       `json:"period_end" readOnly:"true"`
	Currency         string          `json:"currency" readOnly:"true"`
	Lines            []StatementLine `json:"lines" readOnly:"true"`
	Availability     Money           `json:"availability" readOnly:"true" doc:"sum of the availability lines"`
	Activation       Money           `json:"activation" readOnly:"true" doc:"sum of the activation lines"`
	Penalties        Money           `json:"penalties" readOnly:"true" doc:"sum of the penalty lines (negative)"`
	Total            Money           `json:"total" readOnly:"true"`
	// Version counts the statements of this FSP, system operator and
	// period; Supersedes is the previous one, Difference its total
	// against it.
	StatementVersion int64     `json:"statement_version" readOnly:"true"`
	Supersedes       string    `json:"supersedes,omitempty" readOnly:"true"`
	Difference       *Money    `json:"difference,omitempty" readOnly:"true" doc:"this total minus the superseded statement's"`
	Version          int64     `json:"version" readOnly:"true"`
	CreatedAt        time.Time `json:"created_at" readOnly:"true"`
}

// StatementLine is one amount and where it came from.
type StatementLine struct {
	Kind       string    `json:"kind" enum:"availability,activation,penalty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	ResourceID string    `json:"resource_id"`
	// Quantity: availability in W (or var) held; activation and penalty
	// in mWh (mvarh) paid or charged.
	Quantity int64  `json:"quantity"`
	Unit     string `json:"unit" enum:"W,var,mWh,mvarh"`
	Price    Money  `json:"price" doc:"per MW (Mvar) per hour for availability, per MWh (Mvarh) otherwise"`
	Amount   Money  `json:"amount" doc:"exact, rounded half away from zero to 1/10000 of the currency once per line; negative for penalties"`
	// Sources
	AwardID        string `json:"award_id,omitempty"`
	BidID          string `json:"bid_id,omitempty"`
	ObligationID   string `json:"obligation_id,omitempty"`
	OrderID        string `json:"order_id,omitempty"`
	VerificationID string `json:"verification_id,omitempty"`
	Note           string `json:"note,omitempty"`
}

// ImbalanceAdjustment is the energy an activation moved at one metering
// point in one imbalance settlement period, for the BRP (and supplier) of
// that metering point: added to the BRP's metered volume, so the BRP is
// not charged imbalance for the FSP's action.
type ImbalanceAdjustment struct {
	ID               string    `json:"id" readOnly:"true"`
	RunID            string    `json:"run_id" readOnly:"true"`
	OrderID          string    `json:"order_id" readOnly:"true"`
	VerificationID   string    `json:"verification_id" readOnly:"true"`
	ResourceID       string    `json:"resource_id" readOnly:"true"`
	MeteringPointID  string    `json:"metering_point_id" readOnly:"true"`
	BRPID            string    `json:"brp_id" readOnly:"true"`
	SupplierID       string    `json:"supplier_id,omitempty" readOnly:"true"`
	FSPID            string    `json:"fsp_id" readOnly:"true"`
	SystemOperatorID string    `json:"system_operator_id" readOnly:"true"`
	Start            time.Time `json:"start" readOnly:"true" doc:"imbalance settlement period"`
	End              time.Time `json:"end" readOnly:"true"`
	Volume           int64     `json:"volume" readOnly:"true" doc:"mWh to add to the BRP's metered consumption at this metering point: the delivered energy (positive for up, negative for down)"`
	Unit             string    `json:"unit" enum:"mWh" readOnly:"true"`
	CreatedAt        time.Time `json:"created_at" readOnly:"true"`
}
