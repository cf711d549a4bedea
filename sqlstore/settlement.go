package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	// Adjustments are stored in narrow rows (migration 012) and read
	// through the view imbalance_adjustment_full, which joins their
	// verification and builds the JSON body.
	imbalanceAdjustmentTable = &table{kind: flexhub.KindImbalanceAdjustment, name: "imbalance_adjustment_full", noun: "imbalance adjustment",
		filters: map[string]string{"run_id": "run_id = ?", "order_id": "order_id = ?", "verification_id": "verification_id = ?",
			"resource_id": "resource_id = ?", "metering_point_id": "metering_point_id = ?", "brp_id": "brp_id = ?", "supplier_id": "supplier_id = ?",
			"fsp_id": "fsp_id = ?", "system_operator_id": "system_operator_id = ?", "from": "start_at >= ?", "to": "start_at < ?",
			// a later run verified the order over a period holding this ISP
			// (whatever it attributed there, possibly nothing)
			"superseded": "(CASE WHEN EXISTS (SELECT 1 FROM verification n JOIN settlement_run r ON r.id = n.run_id WHERE n.order_id = imbalance_adjustment_full.order_id " +
				"AND n.run_id > imbalance_adjustment_full.run_id AND r.period_start <= imbalance_adjustment_full.start_at AND r.period_end > imbalance_adjustment_full.start_at) THEN 'true' ELSE 'false' END) = ?"}}
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

// CreateVerifications implements flexhub.Tx. Verifications and
// imbalance adjustments are written once and never changed, so they have
// no history rows (object_history keeps the versions of objects that
// change; these have one).
func (t *Tx) CreateVerifications(ctx context.Context, vs []*flexhub.Verification, brpVisible []bool) ([]string, error) {
	if len(vs) != len(brpVisible) {
		return nil, fmt.Errorf("create verifications: %d verifications, %d visibilities", len(vs), len(brpVisible))
	}
	rows := make([][]any, len(vs))
	for i, v := range vs {
		visible := int64(0)
		if brpVisible[i] {
			visible = 1
		}
		rows[i] = []any{v.ID, int64(1), v.RunID, v.OrderID, v.ResourceID, v.FSPID, v.SystemOperatorID, visible}
	}
	return t.insertOnce(ctx, verificationTable, rows, func(i int) any { return vs[i] },
		[]string{"text", "bigint", "text", "text", "text", "text", "text", "bigint"})
}

// insertOnce inserts write-once objects: rows holds each object's id,
// version and indexed columns (types: their PostgreSQL array types:
// text or bigint, a text column nil for NULL), obj(i) the object for its
// body. It returns the payload hash of each body. PostgreSQL takes all
// rows in one statement, SQLite in multi-row statements.
func (t *Tx) insertOnce(ctx context.Context, tb *table, rows [][]any, obj func(int) any, types []string) ([]string, error) {
	hashes := make([]string, len(rows))
	for i := range rows {
		body, err := encode(tb, obj(i))
		if err != nil {
			return nil, err
		}
		hashes[i] = flexhub.PayloadHashOf(body)
		rows[i] = append(rows[i], string(body))
	}
	cols := append(append([]string{"id", "version"}, tb.cols...), "body")
	if err := t.insertRows(ctx, tb, cols, append(types, "text"), rows); err != nil {
		return nil, err
	}
	return hashes, nil
}

// insertRows inserts rows of values for cols (their PostgreSQL array
// types in types: text or bigint; a text value nil is NULL): PostgreSQL
// in one statement over unnest, SQLite in statements of many rows each
// (a statement per row would be prepared again and again: a run's
// statements are new to its transaction).
func (t *Tx) insertRows(ctx context.Context, tb *table, cols, types []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	prefix := "INSERT INTO " + tb.name + " (" + strings.Join(cols, ", ") + ") "
	if !t.d.Arrays() {
		per := max(1, min(500, 30000/len(cols))) // SQLite allows 32,766 parameters
		one := "(?" + strings.Repeat(", ?", len(cols)-1) + ")"
		for len(rows) > 0 {
			part := rows[:min(per, len(rows))]
			rows = rows[len(part):]
			args := make([]any, 0, len(part)*len(cols))
			for _, r := range part {
				args = append(args, r...)
			}
			q := prefix + "VALUES " + one + strings.Repeat(", "+one, len(part)-1)
			if _, err := t.tx.ExecContext(ctx, q, args...); err != nil {
				return t.insertErr(tb, err)
			}
		}
		return nil
	}
	arrays := make([]any, len(cols))
	casts := make([]string, len(cols))
	for c, ty := range types {
		casts[c] = "?::" + ty + "[]"
		switch ty {
		case "bigint":
			col := make([]int64, len(rows))
			for i, r := range rows {
				v, ok := r[c].(int64)
				if !ok {
					return fmt.Errorf("insert %s: column %s holds %T", tb.kind, cols[c], r[c])
				}
				col[i] = v
			}
			arrays[c] = col
		case "text":
			col := make([]*string, len(rows))
			for i, r := range rows {
				switch v := r[c].(type) {
				case string:
					col[i] = &v
				case nil:
				default:
					return fmt.Errorf("insert %s: column %s holds %T", tb.kind, cols[c], v)
				}
			}
			arrays[c] = col
		default:
			return fmt.Errorf("insert %s: column type %s", tb.kind, ty)
		}
	}
	if _, err := t.exec(ctx, prefix+"SELECT * FROM unnest("+strings.Join(casts, ", ")+")", arrays...); err != nil {
		return t.insertErr(tb, err)
	}
	return nil
}

// Verification implements flexhub.Tx.
func (t *Tx) Verification(ctx context.Context, id string) (*flexhub.Verification, error) {
	return getObject[flexhub.Verification](ctx, t, verificationTable, "id", id)
}

// ListVerifications implements flexhub.Tx.
func (t *Tx) ListVerifications(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Verification, string, error) {
	return listObjects[flexhub.Verification](ctx, t, verificationTable, f, pg)
}

// CreateStatement implements flexhub.Tx. A statement is written once (a
// revision is a new statement), so, like verifications, it has no
// history rows.
func (t *Tx) CreateStatement(ctx context.Context, s *flexhub.Statement) (string, error) {
	if s.Version == 0 {
		s.Version = 1
	}
	rows := [][]any{{s.ID, s.Version, s.RunID, s.FSPID, s.SystemOperatorID, flexhub.TimeKey(s.PeriodStart), flexhub.TimeKey(s.PeriodEnd), s.Currency, s.StatementVersion, ns(s.Supersedes)}}
	hashes, err := t.insertOnce(ctx, statementTable, rows, func(int) any { return s },
		[]string{"text", "bigint", "text", "text", "text", "text", "text", "text", "bigint", "text"})
	if err != nil {
		return "", err
	}
	return hashes[0], nil
}

// Statement implements flexhub.Tx.
func (t *Tx) Statement(ctx context.Context, id string) (*flexhub.Statement, error) {
	return getObject[flexhub.Statement](ctx, t, statementTable, "id", id)
}

// ListStatements implements flexhub.Tx.
func (t *Tx) ListStatements(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Statement, string, error) {
	return listObjects[flexhub.Statement](ctx, t, statementTable, f, pg)
}

// CreateImbalanceAdjustments implements flexhub.Tx: narrow rows
// (migration 012); the run, order, resource, FSP and system operator are
// those of the verification, which must be stored first.
func (t *Tx) CreateImbalanceAdjustments(ctx context.Context, as []*flexhub.ImbalanceAdjustment) error {
	rows := make([][]any, len(as))
	for i, a := range as {
		if a.Unit != "" && a.Unit != "mWh" {
			return fmt.Errorf("imbalance adjustment %s: unit %q, want mWh", a.ID, a.Unit)
		}
		rows[i] = []any{a.ID, a.VerificationID, a.MeteringPointID, a.BRPID, ns(a.SupplierID),
			flexhub.TimeKey(a.Start), flexhub.TimeKey(a.End), a.Volume, a.CreatedAt.UTC().Format(time.RFC3339Nano)}
	}
	return t.insertRows(ctx, &table{kind: flexhub.KindImbalanceAdjustment, name: "imbalance_adjustment", noun: "imbalance adjustment"},
		[]string{"id", "verification_id", "metering_point_id", "brp_id", "supplier_id", "start_at", "end_at", "volume", "created_at"},
		[]string{"text", "text", "text", "text", "text", "text", "text", "bigint", "text"}, rows)
}

// ListImbalanceAdjustments implements flexhub.Tx.
func (t *Tx) ListImbalanceAdjustments(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.ImbalanceAdjustment, string, error) {
	return listObjects[flexhub.ImbalanceAdjustment](ctx, t, imbalanceAdjustmentTable, f, pg)
}

func (t *Tx) insertErr(tb *table, err error) error {
	if t.d.IsUniqueViolation(err) {
		return flexhub.Errorf(flexhub.EConflict, "a %s with the same identity already exists", tb.noun)
	}
	return fmt.Errorf("insert %s: %w", tb.kind, err)
}
