package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

var activationOrderTable = &table{kind: flexhub.KindActivationOrder, name: "activation_order", noun: "activation order",
	cols: []string{"system_operator_id", "fsp_id", "resource_id", "product_id", "obligation_id", "batch_id", "status", "due_at", "first_start", "last_end"},
	filters: map[string]string{"system_operator_id": "system_operator_id = ?", "fsp_id": "fsp_id = ?",
		"resource_id": "resource_id = ?", "obligation_id": "obligation_id = ?", "product_id": "product_id = ?",
		"batch_id": "batch_id = ?", "status": "status = ?",
		// Unix microseconds (OrderTimeKey): the last set-point ends after,
		// the first starts before
		"ends_after": "last_end > ?", "starts_before": "first_start < ?"}}

func activationOrderIdx(o *flexhub.ActivationOrder) []any {
	first, last := orderSpan(o)
	return []any{o.SystemOperatorID, o.FSPID, o.ResourceID, o.ProductID, ns(o.ObligationID), ns(o.BatchID), o.Status, nullMicros(o.DueAt()), first, last}
}

// orderSpan is the start of an order's first set-point and the end of its
// last (Unix microseconds; migration 013), NULL without set-points.
func orderSpan(o *flexhub.ActivationOrder) (first, last *int64) {
	if len(o.Setpoints) == 0 {
		return nil, nil
	}
	f, l := micros(o.First()), micros(o.Last())
	return &f, &l
}

// CreateActivationOrder implements flexhub.Tx.
func (t *Tx) CreateActivationOrder(ctx context.Context, o *flexhub.ActivationOrder) error {
	return t.insertObject(ctx, activationOrderTable, o.ID, &o.Version, o.CreatedAt, activationOrderIdx(o), o)
}

// UpdateActivationOrder implements flexhub.Tx. An order's parties,
// resource, product, obligation and batch are fixed at creation; only
// its status and due time (and body) change, so only those columns are
// written: SQLite then maintains the four indexes on them and checks no
// foreign key, where a full-row update rewrote seven indexes and looked
// up six parents — a fan-out updates every order twice or more
// (updateObject otherwise).
func (t *Tx) UpdateActivationOrder(ctx context.Context, o *flexhub.ActivationOrder) error {
	if err := t.lockAudit(ctx); err != nil {
		return err
	}
	expected := o.Version
	o.Version = expected + 1 // the body carries the new version
	body, err := encode(activationOrderTable, o)
	if err != nil {
		o.Version = expected
		return err
	}
	res, err := t.exec(ctx, `UPDATE activation_order SET version = ?, status = ?, due_at = ?, body = ? WHERE id = ? AND version = ?`,
		o.Version, o.Status, nullMicros(o.DueAt()), string(body), o.ID, expected)
	if err != nil {
		o.Version = expected
		return fmt.Errorf("update %s: %w", activationOrderTable.kind, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		o.Version = expected
		var current int64
		err := t.queryRow(ctx, "SELECT version FROM activation_order WHERE id = ?", o.ID).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return flexhub.Errorf(flexhub.ENotFound, "activation order %s not found", o.ID)
		}
		if err != nil {
			return err
		}
		return flexhub.Errorf(flexhub.EConflict, "activation order %s was changed by someone else: it is at version %d, you sent version %d; read it again and retry", o.ID, current, expected)
	}
	if _, err := t.exec(ctx, `UPDATE object_history SET valid_to = ? WHERE kind = ? AND id = ? AND valid_to IS NULL`, micros(o.UpdatedAt), activationOrderTable.kind, o.ID); err != nil {
		o.Version = expected
		return fmt.Errorf("close %s history: %w", activationOrderTable.kind, err)
	}
	if err := t.insertHistory(ctx, activationOrderTable.kind, o.ID, o.Version, o.UpdatedAt, body); err != nil {
		o.Version = expected
		return err
	}
	return nil
}

// ActivationOrder implements flexhub.Tx. In a write transaction the
// audit chain's lock is taken first (lockAudit).
func (t *Tx) ActivationOrder(ctx context.Context, id string) (*flexhub.ActivationOrder, error) {
	if t.write {
		if err := t.lockAudit(ctx); err != nil {
			return nil, err
		}
	}
	return getObject[flexhub.ActivationOrder](ctx, t, activationOrderTable, "id", id)
}

// lockAudit takes the audit chain's lock (once per transaction) before
// a write transaction reads or writes an order. Every such transaction
// appends to the audit chain anyway, so they are serialised at the end;
// taking the lock first serialises their reads of orders too. Without
// it, on PostgreSQL (read committed) two of them — a batch of FSP
// acknowledgements and a sweep recording deliveries — could each read an
// order, the first to commit would move its version, and the other's
// versioned update failed (the FSP's acknowledgement was refused and
// lost); or each held an order row the other waited for while holding
// the lock, a deadlock that aborted one. SQLite has one writer: its lock
// is a no-op.
func (t *Tx) lockAudit(ctx context.Context) error {
	if t.auditLocked {
		return nil
	}
	if err := t.d.Lock(ctx, t.tx, auditLockKey); err != nil {
		return fmt.Errorf("lock audit chain: %w", err)
	}
	t.auditLocked = true
	return nil
}

// ListActivationOrders implements flexhub.Tx.
func (t *Tx) ListActivationOrders(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.ActivationOrder, string, error) {
	return listObjects[flexhub.ActivationOrder](ctx, t, activationOrderTable, f, pg)
}

// DueActivationOrders implements flexhub.Tx, on the partial due_at index.
func (t *Tx) DueActivationOrders(ctx context.Context, now time.Time, limit int) ([]*flexhub.ActivationOrder, error) {
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	q := fmt.Sprintf(`SELECT id, body FROM activation_order WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at, id LIMIT %d`, limit)
	rows, err := t.query(ctx, q, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list due activation orders: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.ActivationOrder
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		o := new(flexhub.ActivationOrder)
		if err := json.Unmarshal([]byte(body), o); err != nil {
			return nil, fmt.Errorf("decode activation order %s: %w", id, err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// CreateActivationOrders implements flexhub.Tx. Each order is encoded
// once, for its row and its history row; PostgreSQL takes the orders and
// their history in one statement, SQLite row by row (in-process,
// prepared).
func (t *Tx) CreateActivationOrders(ctx context.Context, orders []*flexhub.ActivationOrder) error {
	if len(orders) == 0 {
		return nil
	}
	bodies := make([][]byte, len(orders))
	for i, o := range orders {
		if o.Version == 0 {
			o.Version = 1
		}
		b, err := encode(activationOrderTable, o)
		if err != nil {
			return err
		}
		bodies[i] = b
	}
	if !t.d.Arrays() {
		for i, o := range orders {
			if err := t.insertObjectBody(ctx, activationOrderTable, o.ID, o.Version, o.CreatedAt, activationOrderIdx(o), bodies[i]); err != nil {
				return err
			}
		}
		return nil
	}
	n := len(orders)
	id, so, fsp, res, prod, status, body := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	obl, batch := make([]*string, n), make([]*string, n)
	ver, from := make([]int64, n), make([]int64, n)
	due, first, last := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	for i, o := range orders {
		first[i], last[i] = orderSpan(o)
		id[i], so[i], fsp[i], res[i], prod[i], status[i], body[i] = o.ID, o.SystemOperatorID, o.FSPID, o.ResourceID, o.ProductID, o.Status, string(bodies[i])
		obl[i], batch[i] = nullString(o.ObligationID), nullString(o.BatchID)
		ver[i], from[i] = o.Version, micros(o.CreatedAt)
		if d := o.DueAt(); d != nil {
			v := micros(*d)
			due[i] = &v
		}
	}
	const q = `WITH d AS (
    SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[])
        AS d(id, version, system_operator_id, fsp_id, resource_id, product_id, obligation_id, batch_id, status, due_at, first_start, last_end, valid_from, body)
), o AS (
    INSERT INTO activation_order (id, version, system_operator_id, fsp_id, resource_id, product_id, obligation_id, batch_id, status, due_at, first_start, last_end, body)
    SELECT id, version, system_operator_id, fsp_id, resource_id, product_id, obligation_id, batch_id, status, due_at, first_start, last_end, body FROM d
)
INSERT INTO object_history (kind, id, version, valid_from, valid_to, body)
SELECT 'activation_order', id, version, valid_from, NULL, body::jsonb FROM d`
	if _, err := t.exec(ctx, q, id, ver, so, fsp, res, prod, obl, batch, status, due, first, last, from, body); err != nil {
		if t.d.IsUniqueViolation(err) {
			return flexhub.Errorf(flexhub.EConflict, "an activation order with the same identity already exists")
		}
		return fmt.Errorf("insert activation orders: %w", err)
	}
	return nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ActivationOrders implements flexhub.Tx.
func (t *Tx) ActivationOrders(ctx context.Context, ids []string) (map[string]*flexhub.ActivationOrder, error) {
	if t.write {
		if err := t.lockAudit(ctx); err != nil {
			return nil, err
		}
	}
	out := make(map[string]*flexhub.ActivationOrder, len(ids))
	if !t.d.Arrays() {
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			o, err := getObject[flexhub.ActivationOrder](ctx, t, activationOrderTable, "id", id)
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[id] = o
		}
		return out, nil
	}
	rows, err := t.query(ctx, `SELECT id, body FROM activation_order WHERE id = ANY(?::text[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read activation orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		o := new(flexhub.ActivationOrder)
		if err := json.Unmarshal([]byte(body), o); err != nil {
			return nil, fmt.Errorf("decode activation order %s: %w", id, err)
		}
		out[id] = o
	}
	return out, rows.Err()
}

// orderRun is the entries of one order in UpdateActivationOrders:
// steps[first..last], the stored version expected to be old.
type orderRun struct {
	first, last int
	old         int64
}

// UpdateActivationOrders implements flexhub.Tx. Under a savepoint: the
// orders' rows are updated where their version is still the one read
// (PostgreSQL: one statement with the history; SQLite: row by row), and
// if any moved on, everything is rolled back to the savepoint and the
// first such order named, so a lost update is refused, never written
// over, and the transaction stays usable.
func (t *Tx) UpdateActivationOrders(ctx context.Context, steps []*flexhub.ActivationOrder) error {
	if len(steps) == 0 {
		return nil
	}
	if err := t.lockAudit(ctx); err != nil {
		return err
	}
	var runs []orderRun
	seen := make(map[string]bool, len(steps))
	for i, o := range steps {
		if i > 0 && steps[i-1].ID == o.ID {
			if o.Version != steps[i-1].Version+1 {
				return fmt.Errorf("update activation orders: step %d of order %s carries version %d after %d", i, o.ID, o.Version, steps[i-1].Version)
			}
			runs[len(runs)-1].last = i
			continue
		}
		if seen[o.ID] {
			return fmt.Errorf("update activation orders: the steps of order %s are not in succession", o.ID)
		}
		seen[o.ID] = true
		runs = append(runs, orderRun{first: i, last: i, old: o.Version})
	}
	undo := func(k int) {
		for _, o := range steps[:k] {
			o.Version--
		}
	}
	bodies := make([][]byte, len(steps))
	for i, o := range steps {
		o.Version++ // the body carries the new version
		b, err := encode(activationOrderTable, o)
		if err != nil {
			undo(i + 1)
			return err
		}
		bodies[i] = b
	}
	if _, err := t.tx.ExecContext(ctx, `SAVEPOINT flexhub_orders`); err != nil {
		undo(len(steps))
		return fmt.Errorf("update activation orders: %w", err)
	}
	var ok bool
	var err error
	if t.d.Arrays() {
		ok, err = t.updateOrdersArrays(ctx, steps, runs, bodies)
	} else {
		ok, err = t.updateOrdersRows(ctx, steps, runs, bodies)
	}
	if err == nil && ok {
		if _, err := t.tx.ExecContext(ctx, `RELEASE SAVEPOINT flexhub_orders`); err != nil {
			undo(len(steps))
			return fmt.Errorf("update activation orders: %w", err)
		}
		return nil
	}
	undo(len(steps))
	if _, rerr := t.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT flexhub_orders`); rerr != nil {
		return errors.Join(err, fmt.Errorf("update activation orders: %w", rerr))
	}
	if err != nil {
		return err
	}
	// Which order moved on (read after the rollback: nothing of this
	// call is left).
	for _, r := range runs {
		o := steps[r.first]
		var current int64
		err := t.queryRow(ctx, "SELECT version FROM activation_order WHERE id = ?", o.ID).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return flexhub.Errorf(flexhub.ENotFound, "activation order %s not found", o.ID)
		}
		if err != nil {
			return err
		}
		if current != r.old {
			return flexhub.Errorf(flexhub.EConflict, "activation order %s was changed by someone else: it is at version %d, you sent version %d; read it again and retry", o.ID, current, r.old)
		}
	}
	return flexhub.Errorf(flexhub.EConflict, "activation orders were changed by someone else meanwhile; read them again and retry")
}

// updateOrdersRows is UpdateActivationOrders row by row (SQLite); ok is
// false when an order's version moved on.
func (t *Tx) updateOrdersRows(ctx context.Context, steps []*flexhub.ActivationOrder, runs []orderRun, bodies [][]byte) (bool, error) {
	kind := activationOrderTable.kind
	for _, r := range runs {
		o := steps[r.last]
		res, err := t.exec(ctx, `UPDATE activation_order SET version = ?, status = ?, due_at = ?, body = ? WHERE id = ? AND version = ?`,
			o.Version, o.Status, nullMicros(o.DueAt()), string(bodies[r.last]), o.ID, r.old)
		if err != nil {
			return false, fmt.Errorf("update %s: %w", kind, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, nil
		}
		if _, err := t.exec(ctx, `UPDATE object_history SET valid_to = ? WHERE kind = ? AND id = ? AND valid_to IS NULL`, micros(steps[r.first].UpdatedAt), kind, o.ID); err != nil {
			return false, fmt.Errorf("close %s history: %w", kind, err)
		}
		for i := r.first; i < r.last; i++ {
			if _, err := t.exec(ctx, `INSERT INTO object_history (kind, id, version, valid_from, valid_to, body) VALUES (?, ?, ?, ?, ?, ?)`,
				kind, o.ID, steps[i].Version, micros(steps[i].UpdatedAt), micros(steps[i+1].UpdatedAt), string(bodies[i])); err != nil {
				return false, fmt.Errorf("insert %s history: %w", kind, err)
			}
		}
		if err := t.insertHistory(ctx, kind, o.ID, o.Version, o.UpdatedAt, bodies[r.last]); err != nil {
			return false, err
		}
	}
	return true, nil
}

// updateOrdersArrays is UpdateActivationOrders in one statement
// (PostgreSQL): the orders' rows at their last step where the version is
// still the one read, their open history rows closed, a history row per
// step; ok is false when fewer rows matched than orders were given.
func (t *Tx) updateOrdersArrays(ctx context.Context, steps []*flexhub.ActivationOrder, runs []orderRun, bodies [][]byte) (bool, error) {
	n := len(steps)
	id, status, body := make([]string, n), make([]string, n), make([]string, n)
	old, ver, from := make([]int64, n), make([]int64, n), make([]int64, n)
	to, due := make([]*int64, n), make([]*int64, n)
	last := make([]bool, n)
	for _, r := range runs {
		for i := r.first; i <= r.last; i++ {
			o := steps[i]
			id[i], status[i], body[i] = o.ID, o.Status, string(bodies[i])
			old[i], ver[i], from[i] = r.old, o.Version, micros(o.UpdatedAt)
			if i < r.last {
				v := micros(steps[i+1].UpdatedAt)
				to[i] = &v
			}
			if d := o.DueAt(); d != nil {
				v := micros(*d)
				due[i] = &v
			}
			last[i] = i == r.last
		}
	}
	const q = `WITH e AS (
    SELECT * FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::boolean[])
        AS e(id, old, version, valid_from, valid_to, status, due_at, body, last)
), upd AS (
    UPDATE activation_order a SET version = e.version, status = e.status, due_at = e.due_at, body = e.body
    FROM e WHERE e.last AND a.id = e.id AND a.version = e.old
    RETURNING 1
), closed AS (
    UPDATE object_history h SET valid_to = e.valid_from
    FROM e WHERE e.version = e.old + 1 AND h.kind = 'activation_order' AND h.id = e.id AND h.valid_to IS NULL
), hist AS (
    INSERT INTO object_history (kind, id, version, valid_from, valid_to, body)
    SELECT 'activation_order', e.id, e.version, e.valid_from, e.valid_to, e.body::jsonb FROM e
)
SELECT count(*) FROM upd`
	var matched int
	if err := t.queryRow(ctx, q, id, old, ver, from, to, status, due, body, last).Scan(&matched); err != nil {
		if t.d.IsUniqueViolation(err) {
			return false, nil // a history row of that version exists: the version read is stale
		}
		return false, fmt.Errorf("update activation orders: %w", err)
	}
	return matched == len(runs), nil
}
