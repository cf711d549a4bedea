package flexhub

import (
	"context"
	"time"
)

// Settlement runs and what they store (docs/SETTLEMENT.md): a system
// operator settles a period; the run verifies its finished activation
// orders, issues (or re-issues) a statement per FSP and currency, and
// attributes the energy moved to the BRPs of the metering points. Every
// row is written once and never changed: a re-run over the same period
// adds a new run, new verifications and — when the numbers differ — a
// new statement version that names the one it supersedes.

// Object kinds of settlement.
const (
	KindSettlementRun       = "settlement_run"
	KindVerification        = "verification"
	KindStatement           = "settlement_statement"
	KindImbalanceAdjustment = "imbalance_adjustment"
)

// Notification types of settlement.
const (
	// NotifyStatementIssued goes to the FSP and the system operator of a
	// new statement (or a new version of one).
	NotifyStatementIssued = "settlement.statement"
	// NotifyImbalanceAdjustment goes to each BRP and supplier whose
	// metering points a run attributed energy to.
	NotifyImbalanceAdjustment = "settlement.imbalance_adjustment"
	// NotifyVerification goes to the BRPs of the metering points of a
	// verified order when the product's settlement.notify_brp is set.
	NotifyVerification = "settlement.verification"
)

// Statement outcomes of a run.
const (
	StatementIssued    = "issued"    // the first statement of its FSP, system operator, period and currency
	StatementRevised   = "revised"   // a new version: the numbers differ from the latest statement
	StatementUnchanged = "unchanged" // the run found the latest statement's lines and totals: no new version
)

// ISP is the imbalance settlement period imbalance adjustments are
// produced in.
const ISP = 15 * time.Minute

// MaxSettlementPeriod is the longest period one run settles.
const MaxSettlementPeriod = 31 * 24 * time.Hour

// SettlementRunSpec is what a system operator asks to settle.
type SettlementRunSpec struct {
	PeriodStart time.Time `json:"period_start" doc:"UTC, on the 15-minute grid"`
	PeriodEnd   time.Time `json:"period_end" doc:"UTC, on the 15-minute grid, after period_start, at most 31 days later and not in the future"`
}

// SettlementRun is one settlement of a system operator's period.
type SettlementRun struct {
	ID               string    `json:"id" readOnly:"true"`
	SystemOperatorID string    `json:"system_operator_id" readOnly:"true"`
	PeriodStart      time.Time `json:"period_start" readOnly:"true"`
	PeriodEnd        time.Time `json:"period_end" readOnly:"true"`
	// Verifications are the run's verifications, one per order settled.
	Verifications []RunVerification `json:"verifications" readOnly:"true" nullable:"false"`
	Statements    []RunStatement    `json:"statements" readOnly:"true" nullable:"false"`
	Adjustments   int               `json:"adjustments" readOnly:"true" doc:"imbalance adjustments produced (GET /v1/imbalance-adjustments?run_id=)"`
	Version       int64             `json:"version" readOnly:"true"`
	CreatedAt     time.Time         `json:"created_at" readOnly:"true"`
}

// RunVerification names one verification of a run.
type RunVerification struct {
	VerificationID string `json:"verification_id"`
	OrderID        string `json:"order_id"`
	FSPID          string `json:"fsp_id"`
	Verdict        string `json:"verdict"`
}

// RunStatement is what a run did with one statement.
type RunStatement struct {
	StatementID      string `json:"statement_id" doc:"the new statement, or for unchanged the latest one, still in force"`
	FSPID            string `json:"fsp_id"`
	Currency         string `json:"currency"`
	StatementVersion int64  `json:"statement_version"`
	Outcome          string `json:"outcome" enum:"issued,revised,unchanged"`
	Total            Money  `json:"total"`
	Difference       *Money `json:"difference,omitempty" doc:"revised: the new total minus the superseded one's"`
}

// SettlementTx stores settlement runs and their results. Each object is
// written once.
type SettlementTx interface {
	CreateSettlementRun(ctx context.Context, r *SettlementRun) error
	SettlementRun(ctx context.Context, id string) (*SettlementRun, error)
	// ListSettlementRuns filters on "system_operator_id".
	ListSettlementRuns(ctx context.Context, f Filter, pg Page) ([]*SettlementRun, string, error)

	// CreateVerifications stores verifications; brpVisible[i] says
	// whether the BRPs of the metering points of vs[i] may read it (the
	// product's settlement.notify_brp). All or none (EConflict for an id
	// already taken). It returns each one's PayloadHash (of the JSON it
	// stored), for the audit entries.
	CreateVerifications(ctx context.Context, vs []*Verification, brpVisible []bool) ([]string, error)
	Verification(ctx context.Context, id string) (*Verification, error)
	// ListVerifications filters on "run_id", "order_id", "resource_id",
	// "fsp_id", "system_operator_id", "brp_id" (verifications visible to
	// BRPs with an imbalance adjustment of that BRP) and "superseded"
	// ("true" or "false": a later run verified the same order).
	ListVerifications(ctx context.Context, f Filter, pg Page) ([]*Verification, string, error)

	// CreateStatement stores a statement; at most one per FSP, system
	// operator, period, currency and statement version, and at most one
	// superseding a given statement (EConflict for a second). It returns
	// its PayloadHash, as CreateVerifications.
	CreateStatement(ctx context.Context, s *Statement) (string, error)
	Statement(ctx context.Context, id string) (*Statement, error)
	// ListStatements filters on "run_id", "fsp_id", "system_operator_id",
	// "currency", "period_start" and "period_end" (RFC 3339 UTC,
	// TimeKey), and "superseded" ("true" or "false").
	ListStatements(ctx context.Context, f Filter, pg Page) ([]*Statement, string, error)

	// CreateImbalanceAdjustments stores adjustments, all or none.
	CreateImbalanceAdjustments(ctx context.Context, as []*ImbalanceAdjustment) error
	// ListImbalanceAdjustments filters on "run_id", "order_id",
	// "verification_id", "resource_id", "metering_point_id", "brp_id",
	// "supplier_id", "fsp_id", "system_operator_id", "from" / "to"
	// (TimeKey: the ISP starts at or after from, before to) and
	// "superseded" ("true" or "false": a later run verified the order
	// over a period holding the ISP).
	ListImbalanceAdjustments(ctx context.Context, f Filter, pg Page) ([]*ImbalanceAdjustment, string, error)
}

// TimeKey renders a time as the settlement tables index it (and as their
// filters take it): RFC 3339 in UTC to the second, which sorts as text.
func TimeKey(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
