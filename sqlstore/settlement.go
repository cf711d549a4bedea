package sqlstore

import (
	"context"

	"github.com/flexhub/flexhub"
)

// Settlement runs, verifications, statements and imbalance adjustments
// (migration 010): objects like the others (JSON body, indexed columns,
// history), written once. The unique indexes on a statement's identity
// and on what it supersedes keep two concurrent runs of one period from
// both issuing "version 2".

var (
	settlementRunTable = &table{kind: flexhub.KindSettlementRun, name: "settlement_run", noun: "settlement run",
		cols:    []string{"system_operator_id", "period_start", "period_end"},
		filters: map[string]string{"system_operator_id": "system_operator_id = ?"}}
	verificationTable = &table{kind: flexhub.KindVerification, name: "verification", noun: "verification",
		cols: []string{"run_id", "order_id", "resource_id", "fsp_id", "system_operator_id", "brp_visible"},
		filters: map[string]string{"run_id": "run_id = ?", "order_id": "order_id = ?", "resource_id": "resource_id = ?",
			"fsp_id": "fsp_id = ?", "system_operator_id": "system_operator_id = ?",
			"brp_id": "brp_visible = 1 AND id IN (SELECT verification_id FROM imbalance_adjustment WHERE brp_id = ?)",
			// a later run verified the same order (ids are time-ordered)
			"superseded": "(CASE WHEN EXISTS (SELECT 1 FROM verification n WHERE n.order_id = verification.order_id AND n.id > verification.id) THEN 'true' ELSE 'false' END) = ?"}}
	statementTable = &table{kind: flexhub.KindStatement, name: "settlement_statement", noun: "settlement statement",
		cols: []string{"run_id", "fsp_id", "system_operator_id", "period_start", "period_end", "currency", "statement_version", "supersedes"},
		filters: map[string]string{"run_id": "run_id = ?", "fsp_id": "fsp_id = ?", "system_operator_id": "system_operator_id = ?",
			"currency": "currency = ?", "period_start": "period_start = ?", "period_end": "period_end = ?",
			"superseded": "(CASE WHEN EXISTS (SELECT 1 FROM settlement_statement n WHERE n.supersedes = settlement_statement.id) THEN 'true' ELSE 'false' END) = ?"}}
	imbalanceAdjustmentTable = &table{kind: flexhub.KindImbalanceAdjustment, name: "imbalance_adjustment", noun: "imbalance adjustment",
		cols: []string{"run_id", "order_id", "verification_id", "resource_id", "metering_point_id", "brp_id", "supplier_id", "fsp_id", "system_operator_id", "start_at"},
		filters: map[string]string{"run_id": "run_id = ?", "order_id": "order_id = ?", "verification_id": "verification_id = ?",
			"resource_id": "resource_id = ?", "metering_point_id": "metering_point_id = ?", "brp_id": "brp_id = ?", "supplier_id": "supplier_id = ?",
			"fsp_id": "fsp_id = ?", "system_operator_id": "system_operator_id = ?", "from": "start_at >= ?", "to": "start_at < ?",
			// a later run verified the order over a period holding this ISP
			// (whatever it attributed there, possibly nothing)
			"superseded": "(CASE WHEN EXISTS (SELECT 1 FROM verification n JOIN settlement_run r ON r.id = n.run_id WHERE n.order_id = imbalance_adjustment.order_id " +
				"AND n.run_id > imbalance_adjustment.run_id AND r.period_start <= imbalance_adjustment.start_at AND r.period_end > imbalance_adjustment.start_at) THEN 'true' ELSE 'false' END) = ?"}}
)

// CreateSettlementRun implements flexhub.Tx.
func (t *Tx) CreateSettlementRun(ctx context.Context, r *flexhub.SettlementRun) error {
	return t.insertObject(ctx, settlementRunTable, r.ID, &r.Version, r.CreatedAt,
		[]any{r.SystemOperatorID, flexhub.TimeKey(r.PeriodStart), flexhub.TimeKey(r.PeriodEnd)}, r)
}

// SettlementRun implements flexhub.Tx.
func (t *Tx) SettlementRun(ctx context.Context, id string) (*flexhub.SettlementRun, error) {
	return getObject[flexhub.SettlementRun](ctx, t, settlementRunTable, "id", id)
}

// ListSettlementRuns implements flexhub.Tx.
func (t *Tx) ListSettlementRuns(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.SettlementRun, string, error) {
	return listObjects[flexhub.SettlementRun](ctx, t, settlementRunTable, f, pg)
}

// CreateVerification implements flexhub.Tx.
func (t *Tx) CreateVerification(ctx context.Context, v *flexhub.Verification, brpVisible bool) error {
	visible := 0
	if brpVisible {
		visible = 1
	}
	var version int64 = 1
	return t.insertObject(ctx, verificationTable, v.ID, &version, v.CreatedAt,
		[]any{v.RunID, v.OrderID, v.ResourceID, v.FSPID, v.SystemOperatorID, visible}, v)
}

// Verification implements flexhub.Tx.
func (t *Tx) Verification(ctx context.Context, id string) (*flexhub.Verification, error) {
	return getObject[flexhub.Verification](ctx, t, verificationTable, "id", id)
}

// ListVerifications implements flexhub.Tx.
func (t *Tx) ListVerifications(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Verification, string, error) {
	return listObjects[flexhub.Verification](ctx, t, verificationTable, f, pg)
}

// CreateStatement implements flexhub.Tx.
func (t *Tx) CreateStatement(ctx context.Context, s *flexhub.Statement) error {
	return t.insertObject(ctx, statementTable, s.ID, &s.Version, s.CreatedAt,
		[]any{s.RunID, s.FSPID, s.SystemOperatorID, flexhub.TimeKey(s.PeriodStart), flexhub.TimeKey(s.PeriodEnd), s.Currency, s.StatementVersion, ns(s.Supersedes)}, s)
}

// Statement implements flexhub.Tx.
func (t *Tx) Statement(ctx context.Context, id string) (*flexhub.Statement, error) {
	return getObject[flexhub.Statement](ctx, t, statementTable, "id", id)
}

// ListStatements implements flexhub.Tx.
func (t *Tx) ListStatements(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Statement, string, error) {
	return listObjects[flexhub.Statement](ctx, t, statementTable, f, pg)
}

// CreateImbalanceAdjustment implements flexhub.Tx.
func (t *Tx) CreateImbalanceAdjustment(ctx context.Context, a *flexhub.ImbalanceAdjustment) error {
	var version int64 = 1
	return t.insertObject(ctx, imbalanceAdjustmentTable, a.ID, &version, a.CreatedAt,
		[]any{a.RunID, a.OrderID, a.VerificationID, a.ResourceID, a.MeteringPointID, a.BRPID, ns(a.SupplierID), a.FSPID, a.SystemOperatorID, flexhub.TimeKey(a.Start)}, a)
}

// ListImbalanceAdjustments implements flexhub.Tx.
func (t *Tx) ListImbalanceAdjustments(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.ImbalanceAdjustment, string, error) {
	return listObjects[flexhub.ImbalanceAdjustment](ctx, t, imbalanceAdjustmentTable, f, pg)
}
