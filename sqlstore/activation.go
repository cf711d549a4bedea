package sqlstore

import (
	"context"
	"encoding/json"
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

// UpdateActivationOrder implements flexhub.Tx.
func (t *Tx) UpdateActivationOrder(ctx context.Context, o *flexhub.ActivationOrder) error {
	return t.updateObject(ctx, activationOrderTable, o.ID, &o.Version, o.UpdatedAt, activationOrderIdx(o), o)
}

// ActivationOrder implements flexhub.Tx.
func (t *Tx) ActivationOrder(ctx context.Context, id string) (*flexhub.ActivationOrder, error) {
	return getObject[flexhub.ActivationOrder](ctx, t, activationOrderTable, "id", id)
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
