package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Webhooks: endpoints are register objects (JSON body and history) whose
// signing secret lives in a column of its own, never in the body; the
// reads here return it. Deliveries are outbox rows with plain columns and
// no history: written in the transaction of the event, then updated by
// the sender that claimed them with a versioned UPDATE.

var webhookEndpointTable = &table{kind: flexhub.KindWebhookEndpoint, name: "webhook_endpoint", noun: "webhook endpoint",
	cols:    []string{"party_id", "status", "secret"},
	filters: map[string]string{"party_id": "party_id = ?", "status": "status = ?"}}

func webhookEndpointIdx(e *flexhub.WebhookEndpoint) []any {
	return []any{e.PartyID, e.Status, e.Secret}
}

// CreateWebhookEndpoint implements flexhub.Tx.
func (t *Tx) CreateWebhookEndpoint(ctx context.Context, e *flexhub.WebhookEndpoint) error {
	if e.Secret == "" {
		return flexhub.Errorf(flexhub.EInvalid, "a webhook endpoint needs a signing secret")
	}
	return t.insertObject(ctx, webhookEndpointTable, e.ID, &e.Version, e.CreatedAt, webhookEndpointIdx(e), e)
}

// UpdateWebhookEndpoint implements flexhub.Tx.
func (t *Tx) UpdateWebhookEndpoint(ctx context.Context, e *flexhub.WebhookEndpoint) error {
	if e.Secret == "" {
		return flexhub.Errorf(flexhub.EInvalid, "a webhook endpoint needs a signing secret")
	}
	return t.updateObject(ctx, webhookEndpointTable, e.ID, &e.Version, e.UpdatedAt, webhookEndpointIdx(e), e)
}

// WebhookEndpoint implements flexhub.Tx.
func (t *Tx) WebhookEndpoint(ctx context.Context, id string) (*flexhub.WebhookEndpoint, error) {
	var body, secret string
	err := t.queryRow(ctx, `SELECT body, secret FROM webhook_endpoint WHERE id = ?`, id).Scan(&body, &secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "webhook endpoint %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoint: %w", err)
	}
	return decodeEndpoint(id, body, secret)
}

func decodeEndpoint(id, body, secret string) (*flexhub.WebhookEndpoint, error) {
	e := new(flexhub.WebhookEndpoint)
	if err := json.Unmarshal([]byte(body), e); err != nil {
		return nil, fmt.Errorf("decode webhook endpoint %s: %w", id, err)
	}
	e.Secret = secret
	return e, nil
}

// ListWebhookEndpoints implements flexhub.Tx.
func (t *Tx) ListWebhookEndpoints(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.WebhookEndpoint, string, error) {
	q, args, limit, err := pageQuery("SELECT id, body, secret FROM webhook_endpoint", webhookEndpointTable.filters, "webhook endpoints", f, pg)
	if err != nil {
		return nil, "", err
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list webhook endpoints: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.WebhookEndpoint
	for rows.Next() {
		var id, body, secret string
		if err := rows.Scan(&id, &body, &secret); err != nil {
			return nil, "", err
		}
		e, err := decodeEndpoint(id, body, secret)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	return pageOf(out, limit, func(e *flexhub.WebhookEndpoint) string { return e.ID })
}

// pageQuery builds "<sel> WHERE <filters> [AND id > after] ORDER BY id
// LIMIT n+1" from a filter map, as listObjects does.
func pageQuery(sel string, filters map[string]string, plural string, f flexhub.Filter, pg flexhub.Page) (string, []any, int, error) {
	q := sel + " WHERE 1=1"
	var args []any
	for k, v := range f {
		cond, ok := filters[k]
		if !ok {
			return "", nil, 0, flexhub.FieldErrorf(k, "%s cannot be filtered by %q", plural, k)
		}
		q += " AND " + cond
		args = append(args, v)
	}
	if pg.After != "" {
		q += " AND id > ?"
		args = append(args, pg.After)
	}
	limit := pg.Limit
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	limit = min(limit, flexhub.MaxPageLimit)
	return q + fmt.Sprintf(" ORDER BY id LIMIT %d", limit+1), args, limit, nil
}

// pageOf cuts one extra row off a page and returns the cursor.
func pageOf[T any](out []*T, limit int, id func(*T) string) ([]*T, string, error) {
	if len(out) > limit {
		out = out[:limit]
		return out, id(out[limit-1]), nil
	}
	return out, "", nil
}

var webhookDeliveryFilters = map[string]string{"endpoint_id": "endpoint_id = ?", "party_id": "party_id = ?", "status": "status = ?", "event_id": "event_id = ?"}

const webhookDeliveryCols = "id, version, endpoint_id, party_id, event_id, event_type, status, attempts, next_attempt_at, retry_until, " +
	"last_attempt_at, last_status_code, last_error, delivered_at, created_at, updated_at, payload"

// CreateWebhookDelivery implements flexhub.Tx. ON CONFLICT DO NOTHING
// (SQLite and PostgreSQL alike) skips a duplicate without an error, which
// on PostgreSQL would abort the caller's whole transaction.
func (t *Tx) CreateWebhookDelivery(ctx context.Context, d *flexhub.WebhookDelivery) (bool, error) {
	if d.Version == 0 {
		d.Version = 1
	}
	payload, err := deliveryPayload(d)
	if err != nil {
		return false, err
	}
	res, err := t.exec(ctx, `INSERT INTO webhook_delivery (`+webhookDeliveryCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
		d.ID, d.Version, d.EndpointID, d.PartyID, d.EventID, d.EventType, d.Status, d.Attempts, nullMicros(d.NextAttemptAt), micros(d.RetryUntil),
		nullMicros(d.LastAttemptAt), nullInt(d.LastStatusCode), ns(d.LastError), nullMicros(d.DeliveredAt), micros(d.CreatedAt), micros(d.UpdatedAt), payload)
	if err != nil {
		if t.d.IsUniqueViolation(err) { // the primary key: the same delivery twice
			return false, flexhub.Errorf(flexhub.EConflict, "a webhook delivery with the same identity already exists")
		}
		return false, fmt.Errorf("insert webhook delivery: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

func deliveryPayload(d *flexhub.WebhookDelivery) (string, error) {
	if !json.Valid(d.Payload) {
		return "", flexhub.Errorf(flexhub.EInvalid, "the payload of webhook delivery %s is not JSON", d.ID)
	}
	if hasNUL(d.Payload) || strings.ContainsRune(d.LastError, 0) {
		return "", flexhub.Errorf(flexhub.EInvalid, "text of a webhook delivery must not contain NUL characters (\\u0000)")
	}
	return string(d.Payload), nil
}

func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

// UpdateWebhookDelivery implements flexhub.Tx. The payload, event and
// endpoint never change and are not written.
func (t *Tx) UpdateWebhookDelivery(ctx context.Context, d *flexhub.WebhookDelivery) error {
	if strings.ContainsRune(d.LastError, 0) {
		return flexhub.Errorf(flexhub.EInvalid, "text of a webhook delivery must not contain NUL characters (\\u0000)")
	}
	res, err := t.exec(ctx, `UPDATE webhook_delivery SET version = ?, status = ?, attempts = ?, next_attempt_at = ?, retry_until = ?,
		last_attempt_at = ?, last_status_code = ?, last_error = ?, delivered_at = ?, updated_at = ? WHERE id = ? AND version = ?`,
		d.Version+1, d.Status, d.Attempts, nullMicros(d.NextAttemptAt), micros(d.RetryUntil),
		nullMicros(d.LastAttemptAt), nullInt(d.LastStatusCode), ns(d.LastError), nullMicros(d.DeliveredAt), micros(d.UpdatedAt), d.ID, d.Version)
	if err != nil {
		return fmt.Errorf("update webhook delivery: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var current int64
		err := t.queryRow(ctx, `SELECT version FROM webhook_delivery WHERE id = ?`, d.ID).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return flexhub.Errorf(flexhub.ENotFound, "webhook delivery %s not found", d.ID)
		}
		if err != nil {
			return err
		}
		return flexhub.Errorf(flexhub.EConflict, "webhook delivery %s was changed by someone else: it is at version %d, you sent version %d", d.ID, current, d.Version)
	}
	d.Version++
	return nil
}

// WebhookDelivery implements flexhub.Tx.
func (t *Tx) WebhookDelivery(ctx context.Context, id string) (*flexhub.WebhookDelivery, error) {
	rows, err := t.query(ctx, `SELECT `+webhookDeliveryCols+` FROM webhook_delivery WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("read webhook delivery: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, flexhub.Errorf(flexhub.ENotFound, "webhook delivery %s not found", id)
	}
	return out[0], nil
}

// ListWebhookDeliveries implements flexhub.Tx.
func (t *Tx) ListWebhookDeliveries(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.WebhookDelivery, string, error) {
	q, args, limit, err := pageQuery("SELECT "+webhookDeliveryCols+" FROM webhook_delivery", webhookDeliveryFilters, "webhook deliveries", f, pg)
	if err != nil {
		return nil, "", err
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list webhook deliveries: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, "", err
	}
	return pageOf(out, limit, func(d *flexhub.WebhookDelivery) string { return d.ID })
}

// DueWebhookDeliveries implements flexhub.Tx, on webhook_delivery_due.
func (t *Tx) DueWebhookDeliveries(ctx context.Context, now time.Time, limit int) ([]*flexhub.WebhookDelivery, error) {
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	rows, err := t.query(ctx, fmt.Sprintf(`SELECT `+webhookDeliveryCols+` FROM webhook_delivery
		WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT %d`, limit), flexhub.WebhookPending, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list due webhook deliveries: %w", err)
	}
	return scanDeliveries(rows)
}

func scanDeliveries(rows *sql.Rows) ([]*flexhub.WebhookDelivery, error) {
	defer rows.Close()
	var out []*flexhub.WebhookDelivery
	for rows.Next() {
		d := new(flexhub.WebhookDelivery)
		var next, last, delivered, code sql.NullInt64
		var lastErr sql.NullString
		var retry, created, updated int64
		var payload string
		if err := rows.Scan(&d.ID, &d.Version, &d.EndpointID, &d.PartyID, &d.EventID, &d.EventType, &d.Status, &d.Attempts, &next, &retry,
			&last, &code, &lastErr, &delivered, &created, &updated, &payload); err != nil {
			return nil, fmt.Errorf("read webhook delivery: %w", err)
		}
		d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt = optMicros(next), optMicros(last), optMicros(delivered)
		d.RetryUntil, d.CreatedAt, d.UpdatedAt = fromMicros(retry), fromMicros(created), fromMicros(updated)
		d.LastStatusCode, d.LastError = int(code.Int64), lastErr.String
		d.Payload = json.RawMessage(payload)
		out = append(out, d)
	}
	return out, rows.Err()
}

func optMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}
