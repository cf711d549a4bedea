package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

var nominationTable = &table{kind: flexhub.KindNomination, name: "nomination", noun: "nomination",
	cols: []string{"resource_id", "session_id", "product_id", "fsp_id", "system_operator_id", "first_start", "last_end"},
	filters: map[string]string{"resource_id": "resource_id = ?", "session_id": "session_id = ?", "fsp_id": "fsp_id = ?",
		"system_operator_id": "system_operator_id = ?"}}

func nominationIdx(n *flexhub.Nomination) []any {
	return []any{n.ResourceID, n.SessionID, n.ProductID, n.FSPID, n.SystemOperatorID,
		micros(n.Schedule[0].Start), micros(n.Schedule[len(n.Schedule)-1].End)}
}

// CreateNomination implements flexhub.Tx; a second nomination of the same
// resource for the same session is a conflict.
func (t *Tx) CreateNomination(ctx context.Context, n *flexhub.Nomination) error {
	return t.insertObject(ctx, nominationTable, n.ID, &n.Version, n.CreatedAt, nominationIdx(n), n)
}

// UpdateNomination implements flexhub.Tx.
func (t *Tx) UpdateNomination(ctx context.Context, n *flexhub.Nomination) error {
	return t.updateObject(ctx, nominationTable, n.ID, &n.Version, n.UpdatedAt, nominationIdx(n), n)
}

// Nomination implements flexhub.Tx.
func (t *Tx) Nomination(ctx context.Context, id string) (*flexhub.Nomination, error) {
	return getObject[flexhub.Nomination](ctx, t, nominationTable, "id", id)
}

// ListNominations implements flexhub.Tx.
func (t *Tx) ListNominations(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Nomination, string, error) {
	return listObjects[flexhub.Nomination](ctx, t, nominationTable, f, pg)
}

// NominationsCovering implements flexhub.Tx.
func (t *Tx) NominationsCovering(ctx context.Context, resourceID string, from, to time.Time) ([]*flexhub.Nomination, error) {
	rows, err := t.query(ctx, `SELECT id, body FROM nomination WHERE resource_id = ? AND first_start < ? AND last_end > ? ORDER BY first_start, id`,
		resourceID, micros(to), micros(from))
	if err != nil {
		return nil, fmt.Errorf("list nominations: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.Nomination
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		n := new(flexhub.Nomination)
		if err := json.Unmarshal([]byte(body), n); err != nil {
			return nil, fmt.Errorf("decode nomination %s: %w", id, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
