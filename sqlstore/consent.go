package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Consents and the access log (migration 014).

var consentTable = &table{kind: flexhub.KindConsent, name: "consent", noun: "consent",
	cols: []string{"owner_id", "data_user_id", "status"},
	filters: map[string]string{"owner_id": "owner_id = ?", "data_user_id": "data_user_id = ?", "status": "status = ?",
		"metering_point_id": "id IN (SELECT consent_id FROM consent_metering_point WHERE metering_point_id = ?)"}}

func consentIdx(c *flexhub.Consent) []any { return []any{c.OwnerID, c.DataUserID, c.Status} }

// CreateConsent implements flexhub.Tx.
func (t *Tx) CreateConsent(ctx context.Context, c *flexhub.Consent) error {
	if err := t.insertObject(ctx, consentTable, c.ID, &c.Version, c.CreatedAt, consentIdx(c), c); err != nil {
		return err
	}
	for _, mp := range c.MeteringPointIDs {
		if _, err := t.exec(ctx, `INSERT INTO consent_metering_point (consent_id, metering_point_id) VALUES (?, ?)`, c.ID, mp); err != nil {
			return fmt.Errorf("insert consent metering point: %w", err)
		}
	}
	return nil
}

// UpdateConsent implements flexhub.Tx. The metering points of a consent
// never change; its status and dates do.
func (t *Tx) UpdateConsent(ctx context.Context, c *flexhub.Consent) error {
	return t.updateObject(ctx, consentTable, c.ID, &c.Version, c.UpdatedAt, consentIdx(c), c)
}

// Consent implements flexhub.Tx.
func (t *Tx) Consent(ctx context.Context, id string) (*flexhub.Consent, error) {
	return getObject[flexhub.Consent](ctx, t, consentTable, "id", id)
}

// ListConsents implements flexhub.Tx.
func (t *Tx) ListConsents(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Consent, string, error) {
	return listObjects[flexhub.Consent](ctx, t, consentTable, f, pg)
}

// ConsentsOf implements flexhub.Tx.
func (t *Tx) ConsentsOf(ctx context.Context, ownerID, dataUserID string) ([]*flexhub.Consent, error) {
	rows, err := t.query(ctx, `SELECT body FROM consent WHERE data_user_id = ? AND owner_id = ? AND status = ? ORDER BY id`, dataUserID, ownerID, flexhub.ConsentActive)
	if err != nil {
		return nil, fmt.Errorf("read consents: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.Consent
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		c := new(flexhub.Consent)
		if err := json.Unmarshal([]byte(body), c); err != nil {
			return nil, fmt.Errorf("decode consent: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AppendDataAccess implements flexhub.Tx: numbered in slice order under
// the audit lock (so numbers grow in commit order and an owner paging by
// "after" never skips an access), in multi-row statements.
func (t *Tx) AppendDataAccess(ctx context.Context, as []*flexhub.DataAccess) error {
	if len(as) == 0 {
		return nil
	}
	if err := t.lockAudit(ctx); err != nil {
		return err
	}
	var head int64
	if err := t.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM data_access`).Scan(&head); err != nil {
		return fmt.Errorf("read access log head: %w", err)
	}
	for i, a := range as {
		a.Seq = head + int64(i) + 1
		a.At = a.At.UTC().Truncate(time.Microsecond)
	}
	return t.insertRows(ctx, &table{kind: "data_access", name: "data_access", noun: "data access"},
		[]string{"seq", "at", "reader_id", "owner_id", "metering_point_id", "outcome", "body"},
		[]string{"bigint", "bigint", "text", "text", "text", "text", "text"}, len(as), func(i int) []any {
			a := as[i]
			body, _ := json.Marshal(a)
			return []any{a.Seq, micros(a.At), a.ReaderID, a.OwnerID, a.MeteringPointID, a.Outcome, string(body)}
		})
}

// ListDataAccess implements flexhub.Tx.
func (t *Tx) ListDataAccess(ctx context.Context, f flexhub.Filter, after int64, limit int) ([]*flexhub.DataAccess, error) {
	cols := map[string]string{"owner_id": "owner_id", "reader_id": "reader_id", "metering_point_id": "metering_point_id", "outcome": "outcome"}
	q := `SELECT body FROM data_access WHERE seq > ?`
	args := []any{after}
	for k, v := range f {
		c, ok := cols[k]
		if !ok {
			return nil, flexhub.FieldErrorf(k, "the access log cannot be filtered by %q", k)
		}
		q += " AND " + c + " = ?"
		args = append(args, v)
	}
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	if limit > flexhub.MaxPageLimit {
		limit = flexhub.MaxPageLimit
	}
	rows, err := t.query(ctx, fmt.Sprintf(`%s ORDER BY seq LIMIT %d`, q, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list data access: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.DataAccess
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		a := new(flexhub.DataAccess)
		if err := json.Unmarshal([]byte(body), a); err != nil {
			return nil, fmt.Errorf("decode data access: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ConsentsInForce implements flexhub.Tx: the active consents naming any
// of the metering points, in one statement; scope and period (in the
// body) are checked here.
func (t *Tx) ConsentsInForce(ctx context.Context, meteringPointIDs []string, scope string, at time.Time) ([]*flexhub.Consent, error) {
	seen := map[string]bool{}
	var out []*flexhub.Consent
	err := t.forIDs(ctx, `SELECT id, body FROM consent WHERE id IN (SELECT consent_id FROM consent_metering_point WHERE metering_point_id %s) AND status = ?`,
		meteringPointIDs, func(rows *sql.Rows) error {
			var id, body string
			if err := rows.Scan(&id, &body); err != nil {
				return err
			}
			if seen[id] {
				return nil
			}
			seen[id] = true
			c := new(flexhub.Consent)
			if err := json.Unmarshal([]byte(body), c); err != nil {
				return fmt.Errorf("decode consent %s: %w", id, err)
			}
			if c.InForce(at) && slices.Contains(c.Scopes, scope) {
				out = append(out, c)
			}
			return nil
		}, flexhub.ConsentActive)
	if err != nil {
		return nil, fmt.Errorf("read consents in force: %w", err)
	}
	slices.SortFunc(out, func(a, b *flexhub.Consent) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// MeteringPointOwners implements flexhub.Tx: the indexed columns only,
// in one statement.
func (t *Tx) MeteringPointOwners(ctx context.Context, ids []string) (map[string]flexhub.MeteringPointOwner, error) {
	out := make(map[string]flexhub.MeteringPointOwner, len(ids))
	err := t.forIDs(ctx, `SELECT id, consumer_id, dso_id FROM metering_point WHERE id %s`, ids, func(rows *sql.Rows) error {
		var id string
		var o flexhub.MeteringPointOwner
		if err := rows.Scan(&id, &o.ConsumerID, &o.DSOID); err != nil {
			return err
		}
		out[id] = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read metering point owners: %w", err)
	}
	return out, nil
}

// ResourceMeteringPoints implements flexhub.Tx.
func (t *Tx) ResourceMeteringPoints(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	err := t.forIDs(ctx, `SELECT id, metering_point_id FROM resource WHERE id %s AND metering_point_id IS NOT NULL AND metering_point_id <> ''`, ids, func(rows *sql.Rows) error {
		var id, mp string
		if err := rows.Scan(&id, &mp); err != nil {
			return err
		}
		out[id] = mp
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the metering points of resources: %w", err)
	}
	return out, nil
}
