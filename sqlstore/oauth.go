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

// OAuth clients, codes and tokens (migration 015).

// CreateOAuthClient implements flexhub.Tx.
func (t *Tx) CreateOAuthClient(ctx context.Context, c *flexhub.OAuthClient) error {
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO oauth_client (id, owner_id, created_at, body) VALUES (?, ?, ?, ?)`,
		c.ID, c.OwnerID, micros(c.CreatedAt), string(body)); err != nil {
		return fmt.Errorf("insert oauth client: %w", err)
	}
	return nil
}

// OAuthClient implements flexhub.Tx.
func (t *Tx) OAuthClient(ctx context.Context, id string) (*flexhub.OAuthClient, error) {
	var body string
	err := t.queryRow(ctx, `SELECT body FROM oauth_client WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "OAuth client %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read oauth client: %w", err)
	}
	c := new(flexhub.OAuthClient)
	return c, json.Unmarshal([]byte(body), c)
}

// ListOAuthClients implements flexhub.Tx.
func (t *Tx) ListOAuthClients(ctx context.Context, ownerID string) ([]*flexhub.OAuthClient, error) {
	rows, err := t.query(ctx, `SELECT body FROM oauth_client WHERE owner_id = ? ORDER BY created_at, id`, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list oauth clients: %w", err)
	}
	defer rows.Close()
	out := []*flexhub.OAuthClient{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		c := new(flexhub.OAuthClient)
		if err := json.Unmarshal([]byte(body), c); err != nil {
			return nil, fmt.Errorf("decode oauth client: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CreateOAuthCode implements flexhub.Tx.
func (t *Tx) CreateOAuthCode(ctx context.Context, c *flexhub.OAuthCode) error {
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO oauth_code (id, hash, client_id, consent_id, expires_at, used_at, body) VALUES (?, ?, ?, ?, ?, NULL, ?)`,
		c.ID, c.Hash, c.ClientID, c.ConsentID, micros(c.ExpiresAt), string(body)); err != nil {
		return fmt.Errorf("insert oauth code: %w", err)
	}
	return nil
}

// OAuthCodeByHash implements flexhub.Tx.
func (t *Tx) OAuthCodeByHash(ctx context.Context, hash string) (*flexhub.OAuthCode, error) {
	var body string
	var used sql.NullInt64
	err := t.queryRow(ctx, `SELECT body, used_at FROM oauth_code WHERE hash = ?`, hash).Scan(&body, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "unknown authorization code")
	}
	if err != nil {
		return nil, fmt.Errorf("read oauth code: %w", err)
	}
	c := &flexhub.OAuthCode{}
	if err := json.Unmarshal([]byte(body), c); err != nil {
		return nil, fmt.Errorf("decode oauth code: %w", err)
	}
	c.Hash, c.UsedAt = hash, nil
	if used.Valid {
		at := fromMicros(used.Int64)
		c.UsedAt = &at
	}
	return c, nil
}

// UseOAuthCode implements flexhub.Tx.
func (t *Tx) UseOAuthCode(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := t.exec(ctx, `UPDATE oauth_code SET used_at = ? WHERE id = ? AND used_at IS NULL`, micros(at), id)
	if err != nil {
		return false, fmt.Errorf("use oauth code: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CreateOAuthToken implements flexhub.Tx.
func (t *Tx) CreateOAuthToken(ctx context.Context, tok *flexhub.OAuthToken) error {
	body, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO oauth_token (id, hash, kind, grant_id, parent_id, client_id, consent_id, expires_at, revoked_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
		tok.ID, tok.Hash, tok.Kind, tok.GrantID, ns(tok.ParentID), tok.ClientID, tok.ConsentID, micros(tok.ExpiresAt), string(body)); err != nil {
		return fmt.Errorf("insert oauth token: %w", err)
	}
	return nil
}

// OAuthTokenByHash implements flexhub.Tx.
func (t *Tx) OAuthTokenByHash(ctx context.Context, hash string) (*flexhub.OAuthToken, error) {
	var body string
	var revoked sql.NullInt64
	err := t.queryRow(ctx, `SELECT body, revoked_at FROM oauth_token WHERE hash = ?`, hash).Scan(&body, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "unknown token")
	}
	if err != nil {
		return nil, fmt.Errorf("read oauth token: %w", err)
	}
	tok := &flexhub.OAuthToken{}
	if err := json.Unmarshal([]byte(body), tok); err != nil {
		return nil, fmt.Errorf("decode oauth token: %w", err)
	}
	tok.Hash, tok.RevokedAt = hash, nil
	if revoked.Valid {
		at := fromMicros(revoked.Int64)
		tok.RevokedAt = &at
	}
	return tok, nil
}

// RevokeOAuthTokens implements flexhub.Tx.
func (t *Tx) RevokeOAuthTokens(ctx context.Context, column, value string, at time.Time) (int64, error) {
	switch column {
	case "id", "grant_id", "parent_id":
	default:
		return 0, fmt.Errorf("revoke oauth tokens: unknown column %q", column)
	}
	res, err := t.exec(ctx, `UPDATE oauth_token SET revoked_at = ? WHERE `+column+` = ? AND revoked_at IS NULL`, micros(at), value)
	if err != nil {
		return 0, fmt.Errorf("revoke oauth tokens: %w", err)
	}
	return res.RowsAffected()
}
