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
	return t.insertOnce(ctx, verificationTable, len(vs), func(i int) (any, []any) {
		v, visible := vs[i], int64(0)
		if brpVisible[i] {
			visible = 1
		}
		return v, []any{v.ID, int64(1), v.RunID, v.OrderID, v.ResourceID, v.FSPID, v.SystemOperatorID, visible}
	}, []string{"text", "bigint", "text", "text", "text", "text", "text", "bigint"})
}

// insertOnce inserts n write-once objects: obj(i) returns the i-th object
// (for its JSON body) and its id, version and indexed columns (types:
// their PostgreSQL array types). It returns the payload hash of each
// body.
func (t *Tx) insertOnce(ctx context.Context, tb *table, n int, obj func(i int) (any, []any), types []string) ([]string, error) {
	hashes := make([]string, n)
	cols := append(append([]string{"id", "version"}, tb.cols...), "body")
	var encErr error
	err := t.insertRows(ctx, tb, cols, append(types, "text"), n, func(i int) []any {
		o, row := obj(i)
		body, err := encode(tb, o)
		if err != nil {
			if encErr == nil {
				encErr = err
			}
			body = []byte("null")
		}
		hashes[i] = flexhub.PayloadHashOf(body)
		return append(row, body)
	})
	if encErr != nil {
		return nil, encErr
	}
	if err != nil {
		return nil, err
	}
	return hashes, nil
}

// copyRows is the least number of rows insertRows bulk-loads with COPY
// (Copier): below it, one INSERT over unnest() costs less than COPY's
// extra round trips. A statement is copied whatever the count: its one
// row can hold 100,000 lines (tens of MB of JSON), which as an array
// parameter would be encoded and copied three times over.
const copyRows = 200

// insertRows inserts n rows, row(i) the values of the i-th for cols
// (their PostgreSQL array types in types: text or bigint; a text value is
// a string or []byte, nil is NULL). The rows are made and sent a part at a time, so a run's
// 100,000 adjustments are never all encoded at once: PostgreSQL takes
// 2,000 rows a statement over unnest, SQLite a few hundred in a multi-row
// statement (a statement per row would be prepared again and again: a
// run's statements are new to its transaction). On a Copier (PostgreSQL),
// copyRows or more rows are streamed with COPY instead.
func (t *Tx) insertRows(ctx context.Context, tb *table, cols, types []string, n int, row func(i int) []any) error {
	if c, ok := t.d.(Copier); ok && t.conn != nil && (n >= copyRows || tb.kind == flexhub.KindStatement) {
		if err := c.CopyFrom(ctx, t.conn, tb.name, cols, n, row); err != nil {
			return t.insertErr(tb, err)
		}
		return nil
	}
	prefix := "INSERT INTO " + tb.name + " (" + strings.Join(cols, ", ") + ") "
	per := 2_000
	if !t.d.Arrays() {
		per = max(1, min(500, 30000/len(cols))) // SQLite allows 32,766 parameters
	}
	one := "(?" + strings.Repeat(", ?", len(cols)-1) + ")"
	casts := make([]string, len(cols))
	for c, ty := range types {
		casts[c] = "?::" + ty + "[]"
	}
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		if !t.d.Arrays() {
			args := make([]any, 0, (hi-lo)*len(cols))
			for i := lo; i < hi; i++ {
				for _, v := range row(i) {
					if b, ok := v.([]byte); ok {
						v = string(b) // TEXT, not a BLOB
					}
					args = append(args, v)
				}
			}
			q := prefix + "VALUES " + one + strings.Repeat(", "+one, hi-lo-1)
			if _, err := t.tx.ExecContext(ctx, q, args...); err != nil {
				return t.insertErr(tb, err)
			}
			continue
		}
		arrays := make([]any, len(cols))
		for c, ty := range types {
			switch ty {
			case "bigint":
				arrays[c] = make([]int64, 0, hi-lo)
			case "text":
				arrays[c] = make([]*string, 0, hi-lo)
			default:
				return fmt.Errorf("insert %s: column type %s", tb.kind, ty)
			}
		}
		for i := lo; i < hi; i++ {
			for c, v := range row(i) {
				switch col := arrays[c].(type) {
				case []int64:
					x, ok := v.(int64)
					if !ok {
						return fmt.Errorf("insert %s: column %s holds %T", tb.kind, cols[c], v)
					}
					arrays[c] = append(col, x)
				case []*string:
					switch x := v.(type) {
					case string:
						arrays[c] = append(col, &x)
					case []byte:
						str := string(x)
						arrays[c] = append(col, &str)
					case nil:
						arrays[c] = append(col, nil)
					default:
						return fmt.Errorf("insert %s: column %s holds %T", tb.kind, cols[c], v)
					}
				}
			}
		}
		if _, err := t.exec(ctx, prefix+"SELECT * FROM unnest("+strings.Join(casts, ", ")+")", arrays...); err != nil {
			return t.insertErr(tb, err)
		}
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
	hashes, err := t.insertOnce(ctx, statementTable, 1, func(int) (any, []any) {
		return s, []any{s.ID, s.Version, s.RunID, s.FSPID, s.SystemOperatorID, flexhub.TimeKey(s.PeriodStart), flexhub.TimeKey(s.PeriodEnd), s.Currency, s.StatementVersion, ns(s.Supersedes)}
	}, []string{"text", "bigint", "text", "text", "text", "text", "text", "text", "bigint", "text"})
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
	for _, a := range as {
		if a.Unit != "" && a.Unit != "mWh" {
			return fmt.Errorf("imbalance adjustment %s: unit %q, want mWh", a.ID, a.Unit)
		}
	}
	return t.insertRows(ctx, &table{kind: flexhub.KindImbalanceAdjustment, name: "imbalance_adjustment", noun: "imbalance adjustment"},
		[]string{"id", "verification_id", "metering_point_id", "brp_id", "supplier_id", "start_at", "end_at", "volume", "created_at"},
		[]string{"text", "text", "text", "text", "text", "text", "text", "bigint", "text"}, len(as), func(i int) []any {
			a := as[i]
			return []any{a.ID, a.VerificationID, a.MeteringPointID, a.BRPID, ns(a.SupplierID),
				flexhub.TimeKey(a.Start), flexhub.TimeKey(a.End), a.Volume, a.CreatedAt.UTC().Format(time.RFC3339Nano)}
		})
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
