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

// CreateCredential implements flexhub.Tx.
func (t *Tx) CreateCredential(ctx context.Context, c *flexhub.Credential) error {
	_, err := t.exec(ctx, `INSERT INTO credential (id, party_id, secret_hash, label, created_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)`,
		c.ID, c.PartyID, c.SecretHash, c.Label, micros(c.CreatedAt))
	if err != nil {
		if t.d.IsUniqueViolation(err) {
			return flexhub.Errorf(flexhub.EConflict, "credential %s already exists", c.ID)
		}
		return fmt.Errorf("insert credential: %w", err)
	}
	return nil
}

const credentialCols = `id, party_id, secret_hash, label, created_at, revoked_at, last_used_at`

func scanCredential(sc interface{ Scan(...any) error }) (*flexhub.Credential, error) {
	var c flexhub.Credential
	var created int64
	var revoked, used sql.NullInt64
	if err := sc.Scan(&c.ID, &c.PartyID, &c.SecretHash, &c.Label, &created, &revoked, &used); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMicros(created)
	if revoked.Valid {
		t := fromMicros(revoked.Int64)
		c.RevokedAt = &t
	}
	if used.Valid {
		t := fromMicros(used.Int64)
		c.LastUsed = &t
	}
	return &c, nil
}

// Credential implements flexhub.Tx.
func (t *Tx) Credential(ctx context.Context, id string) (*flexhub.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx, `SELECT `+credentialCols+` FROM credential WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "credential %s not found", id)
	}
	return c, err
}

// RevokeCredential implements flexhub.Tx.
func (t *Tx) RevokeCredential(ctx context.Context, id string, at time.Time) error {
	res, err := t.exec(ctx, `UPDATE credential SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), id)
	if err != nil {
		return fmt.Errorf("revoke credential: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := t.Credential(ctx, id); err != nil {
			return err
		}
		return flexhub.Errorf(flexhub.EConflict, "credential %s is already revoked", id)
	}
	return nil
}

// TouchCredential implements flexhub.Tx.
func (t *Tx) TouchCredential(ctx context.Context, id string, at time.Time) error {
	_, err := t.exec(ctx, `UPDATE credential SET last_used_at = ? WHERE id = ?`, micros(at), id)
	return err
}

// ListCredentials implements flexhub.Tx.
func (t *Tx) ListCredentials(ctx context.Context, partyID string) ([]*flexhub.Credential, error) {
	rows, err := t.query(ctx, `SELECT `+credentialCols+` FROM credential WHERE party_id = ? ORDER BY id`, partyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*flexhub.Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// auditLockKey names the advisory lock that keeps the audit chain linear.
const auditLockKey = 0x666c6578687562 // "flexhub"

// AppendAudit implements flexhub.Tx.
func (t *Tx) AppendAudit(ctx context.Context, e *flexhub.AuditEntry) error {
	return t.AppendAudits(ctx, []*flexhub.AuditEntry{e})
}

// AppendAudits implements flexhub.Tx: the entries are chained in Go, in
// slice order, after the head read once per transaction under the audit
// lock; PostgreSQL then takes all of them in one statement, SQLite row by
// row (in-process, prepared).
func (t *Tx) AppendAudits(ctx context.Context, es []*flexhub.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	if err := t.lockAudit(ctx); err != nil {
		return err
	}
	if t.auditHead == nil {
		var seq sql.NullInt64
		var prev sql.NullString
		err := t.queryRow(ctx, `SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			t.auditHead = &auditHead{0, flexhub.GenesisHash}
		case err != nil:
			return fmt.Errorf("read audit head: %w", err)
		default:
			t.auditHead = &auditHead{seq.Int64, prev.String}
		}
	}
	head := *t.auditHead
	parties := make([]string, len(es))
	for i, e := range es {
		e.Seq, e.PrevHash = head.seq+1, head.hash
		e.At = e.At.UTC().Truncate(time.Microsecond)
		e.Hash = e.ComputeHash()
		p, _ := json.Marshal(e.Parties)
		parties[i] = string(p)
		head = auditHead{e.Seq, e.Hash}
	}
	var err error
	if t.d.Arrays() {
		err = t.appendAuditsArrays(ctx, es, parties)
	} else {
		err = t.appendAuditsRows(ctx, es, parties)
	}
	if err != nil {
		return err
	}
	t.auditHead = &head
	return nil
}

func (t *Tx) appendAuditsRows(ctx context.Context, es []*flexhub.AuditEntry, parties []string) error {
	for i, e := range es {
		if _, err := t.exec(ctx, `INSERT INTO audit_entry (seq, at, actor_id, action, object_kind, object_id, version, parties, payload_hash, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, micros(e.At), e.ActorID, e.Action, e.ObjectKind, e.ObjectID, e.Version, parties[i], e.PayloadHash, e.PrevHash, e.Hash); err != nil {
			return fmt.Errorf("append audit entry: %w", err)
		}
		for _, p := range uniq(e.Parties) {
			if _, err := t.exec(ctx, `INSERT INTO audit_party (seq, party_id) VALUES (?, ?)`, e.Seq, p); err != nil {
				return fmt.Errorf("index audit entry: %w", err)
			}
		}
	}
	return nil
}

// appendAuditsArrays writes the entries and their party index in one
// statement (PostgreSQL: the index rows' foreign key is checked at the
// statement's end, when the entries are there).
func (t *Tx) appendAuditsArrays(ctx context.Context, es []*flexhub.AuditEntry, parties []string) error {
	n := len(es)
	seq, at, ver := make([]int64, n), make([]int64, n), make([]int64, n)
	actor, action, kind, obj, ph, prev, hash := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	var pseq []int64
	var pid []string
	for i, e := range es {
		seq[i], at[i], ver[i] = e.Seq, micros(e.At), e.Version
		actor[i], action[i], kind[i], obj[i], ph[i], prev[i], hash[i] = e.ActorID, e.Action, e.ObjectKind, e.ObjectID, e.PayloadHash, e.PrevHash, e.Hash
		for _, p := range uniq(e.Parties) {
			pseq, pid = append(pseq, e.Seq), append(pid, p)
		}
	}
	const q = `WITH e AS (
    INSERT INTO audit_entry (seq, at, actor_id, action, object_kind, object_id, version, parties, payload_hash, prev_hash, hash)
    SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])
)
INSERT INTO audit_party (seq, party_id) SELECT * FROM unnest(?::bigint[], ?::text[])`
	if _, err := t.exec(ctx, q, seq, at, actor, action, kind, obj, ver, parties, ph, prev, hash, pseq, pid); err != nil {
		return fmt.Errorf("append audit entries: %w", err)
	}
	return nil
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ListAudit implements flexhub.Tx.
func (t *Tx) ListAudit(ctx context.Context, partyID, objectID string, after int64, limit int) ([]*flexhub.AuditEntry, error) {
	q := `SELECT a.seq, a.at, a.actor_id, a.action, a.object_kind, a.object_id, a.version, a.parties, a.payload_hash, a.prev_hash, a.hash FROM audit_entry a`
	var args []any
	if partyID != "" {
		q += ` JOIN audit_party p ON p.seq = a.seq AND p.party_id = ?`
		args = append(args, partyID)
	}
	q += ` WHERE a.seq > ?`
	args = append(args, after)
	if objectID != "" {
		q += ` AND a.object_id = ?`
		args = append(args, objectID)
	}
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	q += fmt.Sprintf(` ORDER BY a.seq LIMIT %d`, limit)
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []*flexhub.AuditEntry
	for rows.Next() {
		var e flexhub.AuditEntry
		var at int64
		var parties string
		if err := rows.Scan(&e.Seq, &at, &e.ActorID, &e.Action, &e.ObjectKind, &e.ObjectID, &e.Version, &parties, &e.PayloadHash, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		if err := json.Unmarshal([]byte(parties), &e.Parties); err != nil {
			return nil, fmt.Errorf("decode audit entry %d parties: %w", e.Seq, err)
		}
		out = append(out, &e)
	}
	return out, rows.Err()
}

// Idempotency implements flexhub.Tx.
func (t *Tx) Idempotency(ctx context.Context, partyID, key string) (*flexhub.IdempotencyRecord, error) {
	var r flexhub.IdempotencyRecord
	var created int64
	err := t.queryRow(ctx, `SELECT party_id, idem_key, fingerprint, object_kind, object_id, created_at FROM idempotency WHERE party_id = ? AND idem_key = ?`, partyID, key).
		Scan(&r.PartyID, &r.Key, &r.Fingerprint, &r.ObjectKind, &r.ObjectID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "no request with idempotency key %q", key)
	}
	if err != nil {
		return nil, err
	}
	r.CreatedAt = fromMicros(created)
	return &r, nil
}

// PutIdempotency implements flexhub.Tx.
func (t *Tx) PutIdempotency(ctx context.Context, r *flexhub.IdempotencyRecord) error {
	_, err := t.exec(ctx, `INSERT INTO idempotency (party_id, idem_key, fingerprint, object_kind, object_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		r.PartyID, r.Key, r.Fingerprint, r.ObjectKind, r.ObjectID, micros(r.CreatedAt))
	if err != nil {
		if t.d.IsUniqueViolation(err) {
			return flexhub.Errorf(flexhub.EConflict, "idempotency key %q is being used by a concurrent request; retry", r.Key)
		}
		return fmt.Errorf("record idempotency key: %w", err)
	}
	return nil
}
