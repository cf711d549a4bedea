package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

// table describes how one object kind is stored: its head table, the
// indexed columns after id/version, and the filters a List accepts.
type table struct {
	kind    string
	name    string
	cols    []string
	filters map[string]string // filter key -> SQL condition with one ?
	noun    string            // for messages: "resource"
}

func (tb *table) insertSQL() string {
	q := "INSERT INTO " + tb.name + " (id, version"
	v := "?, ?"
	for _, c := range tb.cols {
		q += ", " + c
		v += ", ?"
	}
	return q + ", body) VALUES (" + v + ", ?)"
}

func (tb *table) updateSQL() string {
	q := "UPDATE " + tb.name + " SET version = ?"
	for _, c := range tb.cols {
		q += ", " + c + " = ?"
	}
	return q + ", body = ? WHERE id = ? AND version = ?"
}

// ns stores an empty string as NULL, so optional references can carry
// foreign keys.
func ns(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (t *Tx) insertObject(ctx context.Context, tb *table, id string, version *int64, at time.Time, idx []any, obj any) error {
	if *version == 0 {
		*version = 1
	}
	body, err := encode(tb, obj)
	if err != nil {
		return err
	}
	return t.insertObjectBody(ctx, tb, id, *version, at, idx, body)
}

// insertObjectBody is insertObject with the object already encoded.
func (t *Tx) insertObjectBody(ctx context.Context, tb *table, id string, version int64, at time.Time, idx []any, body []byte) error {
	args := append([]any{id, version}, idx...)
	args = append(args, string(body))
	if _, err := t.exec(ctx, tb.insertSQL(), args...); err != nil {
		if t.d.IsUniqueViolation(err) {
			return flexhub.Errorf(flexhub.EConflict, "a %s with the same identity already exists", tb.noun)
		}
		return fmt.Errorf("insert %s: %w", tb.kind, err)
	}
	return t.insertHistory(ctx, tb.kind, id, version, at, body)
}

// encode renders an object as stored JSON. Text with NUL characters is
// refused in both stores alike: PostgreSQL cannot hold it in jsonb, and no
// register field has a use for it.
func encode(tb *table, obj any) ([]byte, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", tb.kind, err)
	}
	if hasNUL(body) {
		return nil, flexhub.Errorf(flexhub.EInvalid, "text fields of a %s must not contain NUL characters (\\u0000)", tb.noun)
	}
	return body, nil
}

// hasNUL reports whether JSON text holds the escape \u0000 (and not an
// escaped backslash followed by "u0000").
func hasNUL(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		n := 0
		for k := at - 1; k >= 0 && body[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		i = at + 1
	}
}

func (t *Tx) insertHistory(ctx context.Context, kind, id string, version int64, at time.Time, body []byte) error {
	_, err := t.exec(ctx, `INSERT INTO object_history (kind, id, version, valid_from, valid_to, body) VALUES (?, ?, ?, ?, NULL, ?)`,
		kind, id, version, micros(at), string(body))
	if err != nil {
		return fmt.Errorf("insert %s history: %w", kind, err)
	}
	return nil
}

// updateObject writes a new version of an object if its stored version is
// still the one the caller read (*version); on success *version is the new
// version.
func (t *Tx) updateObject(ctx context.Context, tb *table, id string, version *int64, at time.Time, idx []any, obj any) error {
	expected := *version
	*version = expected + 1
	body, err := encode(tb, obj)
	if err != nil {
		*version = expected
		return err
	}
	args := append([]any{*version}, idx...)
	args = append(args, string(body), id, expected)
	res, err := t.exec(ctx, tb.updateSQL(), args...)
	if err != nil {
		*version = expected
		if t.d.IsUniqueViolation(err) {
			return flexhub.Errorf(flexhub.EConflict, "a %s with the same identity already exists", tb.noun)
		}
		return fmt.Errorf("update %s: %w", tb.kind, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		*version = expected
		var current int64
		err := t.queryRow(ctx, "SELECT version FROM "+tb.name+" WHERE id = ?", id).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return flexhub.Errorf(flexhub.ENotFound, "%s %s not found", tb.noun, id)
		}
		if err != nil {
			return err
		}
		return flexhub.Errorf(flexhub.EConflict, "%s %s was changed by someone else: it is at version %d, you sent version %d; read it again and retry", tb.noun, id, current, expected)
	}
	if _, err := t.exec(ctx, `UPDATE object_history SET valid_to = ? WHERE kind = ? AND id = ? AND valid_to IS NULL`, micros(at), tb.kind, id); err != nil {
		return fmt.Errorf("close %s history: %w", tb.kind, err)
	}
	return t.insertHistory(ctx, tb.kind, id, *version, at, body)
}

func getObject[T any](ctx context.Context, t *Tx, tb *table, col, val string) (*T, error) {
	var body string
	err := t.queryRow(ctx, "SELECT body FROM "+tb.name+" WHERE "+col+" = ?", val).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "%s %s not found", tb.noun, val)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tb.kind, err)
	}
	v := new(T)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", tb.kind, val, err)
	}
	return v, nil
}

func listObjects[T any](ctx context.Context, t *Tx, tb *table, f flexhub.Filter, pg flexhub.Page) ([]*T, string, error) {
	q := "SELECT id, body FROM " + tb.name + " WHERE 1=1"
	var args []any
	for k, v := range f {
		cond, ok := tb.filters[k]
		if !ok {
			return nil, "", flexhub.FieldErrorf(k, "%ss cannot be filtered by %q", tb.noun, k)
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
	if limit > flexhub.MaxPageLimit {
		limit = flexhub.MaxPageLimit
	}
	q += fmt.Sprintf(" ORDER BY id LIMIT %d", limit+1)
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", tb.kind, err)
	}
	defer rows.Close()
	var out []*T
	var ids []string
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, "", err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(body), v); err != nil {
			return nil, "", fmt.Errorf("decode %s %s: %w", tb.kind, id, err)
		}
		out = append(out, v)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = ids[limit-1]
	}
	return out, next, nil
}

// AsOf implements flexhub.Tx.
func (t *Tx) AsOf(ctx context.Context, kind, id string, at time.Time, dst any) error {
	var body string
	err := t.queryRow(ctx, `SELECT body FROM object_history WHERE kind = ? AND id = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) ORDER BY version DESC LIMIT 1`,
		kind, id, micros(at), micros(at)).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return flexhub.Errorf(flexhub.ENotFound, "%s %s did not exist at %s", kind, id, at.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return fmt.Errorf("read %s history: %w", kind, err)
	}
	return json.Unmarshal([]byte(body), dst)
}

// Versions implements flexhub.Tx.
func (t *Tx) Versions(ctx context.Context, kind, id string) ([]flexhub.ObjectVersion, error) {
	rows, err := t.query(ctx, `SELECT version, valid_from, valid_to, body FROM object_history WHERE kind = ? AND id = ? ORDER BY version`, kind, id)
	if err != nil {
		return nil, fmt.Errorf("read %s history: %w", kind, err)
	}
	defer rows.Close()
	var out []flexhub.ObjectVersion
	for rows.Next() {
		var v flexhub.ObjectVersion
		var from int64
		var to sql.NullInt64
		var body string
		if err := rows.Scan(&v.Version, &from, &to, &body); err != nil {
			return nil, err
		}
		v.ValidFrom = fromMicros(from)
		if to.Valid {
			t := fromMicros(to.Int64)
			v.ValidTo = &t
		}
		v.Body = []byte(body)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, flexhub.Errorf(flexhub.ENotFound, "%s %s not found", kind, id)
	}
	return out, nil
}

// getObjects reads the objects with the given ids (absent ids are left
// out): one statement on PostgreSQL, prepared reads on SQLite.
func getObjects[T any](ctx context.Context, t *Tx, tb *table, ids []string) (map[string]*T, error) {
	out := make(map[string]*T, len(ids))
	if !t.d.Arrays() {
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			v, err := getObject[T](ctx, t, tb, "id", id)
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[id] = v
		}
		return out, nil
	}
	rows, err := t.query(ctx, "SELECT id, body FROM "+tb.name+" WHERE id = ANY(?::text[])", ids)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tb.kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(body), v); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", tb.kind, id, err)
		}
		out[id] = v
	}
	return out, rows.Err()
}

// Resources implements flexhub.Tx.
func (t *Tx) Resources(ctx context.Context, ids []string) (map[string]*flexhub.Resource, error) {
	return getObjects[flexhub.Resource](ctx, t, resourceTable, ids)
}

// PrequalificationsFor implements flexhub.Tx.
func (t *Tx) PrequalificationsFor(ctx context.Context, productID string, resourceIDs []string) ([]*flexhub.Prequalification, error) {
	var out []*flexhub.Prequalification
	if !t.d.Arrays() {
		seen := map[string]bool{}
		for _, r := range resourceIDs {
			if seen[r] {
				continue
			}
			seen[r] = true
			for pg := (flexhub.Page{Limit: flexhub.MaxPageLimit}); ; {
				page, next, err := listObjects[flexhub.Prequalification](ctx, t, prequalificationTable, flexhub.Filter{"resource_id": r, "product_id": productID}, pg)
				if err != nil {
					return nil, err
				}
				out = append(out, page...)
				if next == "" {
					break
				}
				pg.After = next
			}
		}
		return out, nil
	}
	rows, err := t.query(ctx, `SELECT id, body FROM prequalification WHERE resource_id = ANY(?::text[]) AND product_id = ? ORDER BY id`, resourceIDs, productID)
	if err != nil {
		return nil, fmt.Errorf("read prequalifications: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		v := new(flexhub.Prequalification)
		if err := json.Unmarshal([]byte(body), v); err != nil {
			return nil, fmt.Errorf("decode prequalification %s: %w", id, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
