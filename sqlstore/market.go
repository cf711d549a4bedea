package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

var (
	needTable = &table{kind: flexhub.KindNeed, name: "need", noun: "need",
		cols: []string{"product_id", "system_operator_id", "session_id", "status"},
		filters: map[string]string{"product_id": "product_id = ?", "system_operator_id": "system_operator_id = ?",
			"session_id": "session_id = ?", "status": "status = ?"}}
	marketSessionTable = &table{kind: flexhub.KindMarketSession, name: "market_session", noun: "market session",
		cols: []string{"operator_id", "product_id", "system_operator_id", "status", "gate_opening", "gate_closure"},
		filters: map[string]string{"operator_id": "operator_id = ?", "product_id": "product_id = ?",
			"system_operator_id": "system_operator_id = ?", "status": "status = ?"}}
	bidTable = &table{kind: flexhub.KindBid, name: "bid", noun: "bid",
		cols: []string{"session_id", "need_id", "fsp_id", "resource_id", "status"},
		filters: map[string]string{"session_id": "session_id = ?", "need_id": "need_id = ?", "fsp_id": "fsp_id = ?",
			"resource_id": "resource_id = ?", "status": "status = ?"}}
)

func needIdx(n *flexhub.Need) []any {
	return []any{n.ProductID, n.SystemOperatorID, ns(n.SessionID), n.Status}
}

// CreateNeed implements flexhub.Tx.
func (t *Tx) CreateNeed(ctx context.Context, n *flexhub.Need) error {
	return t.insertObject(ctx, needTable, n.ID, &n.Version, n.CreatedAt, needIdx(n), n)
}

// UpdateNeed implements flexhub.Tx.
func (t *Tx) UpdateNeed(ctx context.Context, n *flexhub.Need) error {
	return t.updateObject(ctx, needTable, n.ID, &n.Version, n.UpdatedAt, needIdx(n), n)
}

// Need implements flexhub.Tx.
func (t *Tx) Need(ctx context.Context, id string) (*flexhub.Need, error) {
	return getObject[flexhub.Need](ctx, t, needTable, "id", id)
}

// ListNeeds implements flexhub.Tx.
func (t *Tx) ListNeeds(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Need, string, error) {
	return listObjects[flexhub.Need](ctx, t, needTable, f, pg)
}

func marketSessionIdx(m *flexhub.MarketSession) []any {
	return []any{m.OperatorID, m.ProductID, m.SystemOperatorID, m.Status, micros(m.GateOpening), micros(m.GateClosure)}
}

// CreateMarketSession implements flexhub.Tx.
func (t *Tx) CreateMarketSession(ctx context.Context, m *flexhub.MarketSession) error {
	return t.insertObject(ctx, marketSessionTable, m.ID, &m.Version, m.CreatedAt, marketSessionIdx(m), m)
}

// UpdateMarketSession implements flexhub.Tx.
func (t *Tx) UpdateMarketSession(ctx context.Context, m *flexhub.MarketSession) error {
	return t.updateObject(ctx, marketSessionTable, m.ID, &m.Version, m.UpdatedAt, marketSessionIdx(m), m)
}

// MarketSession implements flexhub.Tx.
func (t *Tx) MarketSession(ctx context.Context, id string) (*flexhub.MarketSession, error) {
	return getObject[flexhub.MarketSession](ctx, t, marketSessionTable, "id", id)
}

// ListMarketSessions implements flexhub.Tx.
func (t *Tx) ListMarketSessions(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.MarketSession, string, error) {
	return listObjects[flexhub.MarketSession](ctx, t, marketSessionTable, f, pg)
}

// DueMarketSessions implements flexhub.Tx. Both halves use the (status,
// gate) indexes.
func (t *Tx) DueMarketSessions(ctx context.Context, now time.Time, limit int) ([]*flexhub.MarketSession, error) {
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	q := fmt.Sprintf(`SELECT id, body, due FROM (
		SELECT id, body, gate_opening AS due FROM market_session WHERE status = ? AND gate_opening <= ?
		UNION ALL
		SELECT id, body, gate_closure AS due FROM market_session WHERE status = ? AND gate_closure <= ?
	) d ORDER BY due, id LIMIT %d`, limit)
	at := micros(now)
	rows, err := t.query(ctx, q, flexhub.SessionScheduled, at, flexhub.SessionOpen, at)
	if err != nil {
		return nil, fmt.Errorf("list due market sessions: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.MarketSession
	for rows.Next() {
		var id, body string
		var due int64
		if err := rows.Scan(&id, &body, &due); err != nil {
			return nil, err
		}
		m := new(flexhub.MarketSession)
		if err := json.Unmarshal([]byte(body), m); err != nil {
			return nil, fmt.Errorf("decode market session %s: %w", id, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func bidIdx(b *flexhub.Bid) []any {
	return []any{b.SessionID, b.NeedID, b.FSPID, b.ResourceID, b.Status}
}

// CreateBid implements flexhub.Tx.
func (t *Tx) CreateBid(ctx context.Context, b *flexhub.Bid) error {
	return t.insertObject(ctx, bidTable, b.ID, &b.Version, b.CreatedAt, bidIdx(b), b)
}

// UpdateBid implements flexhub.Tx.
func (t *Tx) UpdateBid(ctx context.Context, b *flexhub.Bid) error {
	return t.updateObject(ctx, bidTable, b.ID, &b.Version, b.UpdatedAt, bidIdx(b), b)
}

// Bid implements flexhub.Tx.
func (t *Tx) Bid(ctx context.Context, id string) (*flexhub.Bid, error) {
	return getObject[flexhub.Bid](ctx, t, bidTable, "id", id)
}

// ListBids implements flexhub.Tx.
func (t *Tx) ListBids(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Bid, string, error) {
	return listObjects[flexhub.Bid](ctx, t, bidTable, f, pg)
}

// CreateNotification implements flexhub.Tx. It takes the audit chain's
// lock: numbers are then handed out one transaction at a time until
// commit, so they grow in commit order (a sequence would not: PostgreSQL
// hands out sequence values at insert, and a later number can commit
// first, which a reader paging by "after" would skip for good).
func (t *Tx) CreateNotification(ctx context.Context, n *flexhub.Notification) error {
	return t.CreateNotifications(ctx, []*flexhub.Notification{n})
}

// CreateNotifications implements flexhub.Tx: numbered in slice order
// under the audit lock, as CreateNotification; PostgreSQL takes them in
// one statement, SQLite row by row (in-process, prepared).
func (t *Tx) CreateNotifications(ctx context.Context, ns []*flexhub.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	if err := t.lockAudit(ctx); err != nil {
		return err
	}
	if t.noteHead == nil {
		last, err := t.NotificationHead(ctx)
		if err != nil {
			return err
		}
		t.noteHead = &last
	}
	head := *t.noteHead
	bodies := make([]string, len(ns))
	for i, n := range ns {
		n.Seq = head + int64(i) + 1
		n.At = n.At.UTC().Truncate(time.Microsecond)
		body, err := json.Marshal(n)
		if err != nil {
			return err
		}
		bodies[i] = string(body)
	}
	if t.d.Arrays() {
		k := len(ns)
		seq, at := make([]int64, k), make([]int64, k)
		party, typ, kind, obj := make([]string, k), make([]string, k), make([]string, k), make([]string, k)
		for i, n := range ns {
			seq[i], at[i], party[i], typ[i], kind[i], obj[i] = n.Seq, micros(n.At), n.PartyID, n.Type, n.ObjectKind, n.ObjectID
		}
		if _, err := t.exec(ctx, `INSERT INTO notification (seq, party_id, at, type, object_kind, object_id, body)
    SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])`,
			seq, party, at, typ, kind, obj, bodies); err != nil {
			return fmt.Errorf("insert notifications: %w", err)
		}
	} else {
		for i, n := range ns {
			if _, err := t.exec(ctx, `INSERT INTO notification (seq, party_id, at, type, object_kind, object_id, body) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				n.Seq, n.PartyID, micros(n.At), n.Type, n.ObjectKind, n.ObjectID, bodies[i]); err != nil {
				return fmt.Errorf("insert notification: %w", err)
			}
		}
	}
	*t.noteHead = head + int64(len(ns))
	return nil
}

// ListNotifications implements flexhub.Tx.
func (t *Tx) ListNotifications(ctx context.Context, partyID string, after int64, limit int) ([]*flexhub.Notification, error) {
	return t.notifications(ctx, `party_id = ? AND seq > ?`, limit, partyID, after)
}

// NotificationsAfter implements flexhub.Tx.
func (t *Tx) NotificationsAfter(ctx context.Context, after int64, limit int) ([]*flexhub.Notification, error) {
	return t.notifications(ctx, `seq > ?`, limit, after)
}

// NotificationHead implements flexhub.Tx.
func (t *Tx) NotificationHead(ctx context.Context) (int64, error) {
	var last int64
	if err := t.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM notification`).Scan(&last); err != nil {
		return 0, fmt.Errorf("read notification head: %w", err)
	}
	return last, nil
}

func (t *Tx) notifications(ctx context.Context, where string, limit int, args ...any) ([]*flexhub.Notification, error) {
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	if limit > flexhub.MaxPageLimit {
		limit = flexhub.MaxPageLimit
	}
	rows, err := t.query(ctx, fmt.Sprintf(`SELECT body FROM notification WHERE %s ORDER BY seq LIMIT %d`, where, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.Notification
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		n := new(flexhub.Notification)
		if err := json.Unmarshal([]byte(body), n); err != nil {
			return nil, fmt.Errorf("decode notification: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
