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
	cols: []string{"system_operator_id", "fsp_id", "resource_id", "product_id", "obligation_id", "batch_id", "status", "due_at"},
	filters: map[string]string{"system_operator_id": "system_operator_id = ?", "fsp_id": "fsp_id = ?",
		"resource_id": "resource_id = ?", "obligation_id": "obligation_id = ?", "product_id": "product_id = ?",
		"batch_id": "batch_id = ?", "status": "status = ?"}}

func activationOrderIdx(o *flexhub.ActivationOrder) []any {
	return []any{o.SystemOperatorID, o.FSPID, o.ResourceID, o.ProductID, ns(o.ObligationID), ns(o.BatchID), o.Status, nullMicros(o.DueAt())}
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
