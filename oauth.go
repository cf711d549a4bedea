package flexhub

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// Connect My Data (docs/OAUTH.md): a data user registers an OAuth 2.0
// client; a consumer approves, on flexhub's consent page, what the client
// asks for (RFC 6749 authorization code grant with PKCE, RFC 7636); the
// approval is a consent like any other (Channel "oauth"), and the tokens
// the client obtains read exactly that consent's data while it is in
// force. Codes and tokens are random and stored only as SHA-256 hashes.

// Audit and object kinds of OAuth.
const (
	KindOAuthClient = "oauth_client"
	KindOAuthGrant  = "oauth_grant" // a code and the tokens issued from it
)

// OAuth token kinds.
const (
	OAuthAccessToken  = "access_token"
	OAuthRefreshToken = "refresh_token"
)

// OAuthClientSpec is what a data user registers.
type OAuthClientSpec struct {
	Name         string   `json:"name" minLength:"3" maxLength:"200" doc:"shown to the consumer on the consent page beside your party name"`
	RedirectURIs []string `json:"redirect_uris" minItems:"1" maxItems:"10" doc:"absolute https URIs (http only for localhost/127.0.0.1/[::1]), no fragment; the authorization request must name one exactly"`
}

// OAuthClient is a registered client: a public client (no secret) that
// proves possession of each code with PKCE.
type OAuthClient struct {
	ID string `json:"client_id" readOnly:"true"`
	OAuthClientSpec
	OwnerID   string    `json:"owner_id" readOnly:"true" doc:"the data user: tokens read as this party"`
	Type      string    `json:"client_type" readOnly:"true" enum:"public" doc:"public: no client secret, PKCE (S256) on every authorization"`
	CreatedAt time.Time `json:"created_at" readOnly:"true"`
}

// Validate checks a client's name and redirect URIs (RFC 6749 §3.1.2:
// absolute, no fragment; compared exactly, no wildcards).
func (s *OAuthClientSpec) Validate() error {
	s.Name = strings.TrimSpace(s.Name)
	if len(s.Name) < 3 {
		return FieldErrorf("name", "name the client (the consumer sees it)")
	}
	if len(s.RedirectURIs) == 0 {
		return FieldErrorf("redirect_uris", "register at least one redirect URI")
	}
	for i, raw := range s.RedirectURIs {
		f := fieldIndex("redirect_uris", i)
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
			return FieldErrorf(f, "%q is not an absolute URI", raw)
		}
		if u.Fragment != "" || strings.Contains(raw, "#") {
			return FieldErrorf(f, "%q has a fragment: a redirect URI must not (RFC 6749 §3.1.2)", raw)
		}
		if strings.Contains(raw, "*") {
			return FieldErrorf(f, "%q: wildcards are not allowed; redirect URIs are compared exactly", raw)
		}
		switch u.Scheme {
		case "https":
		case "http":
			if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
				return FieldErrorf(f, "%q: http only for a loopback address; use https", raw)
			}
		default:
			return FieldErrorf(f, "%q: the scheme must be https (or http on a loopback address)", raw)
		}
		for j := range i {
			if s.RedirectURIs[j] == raw {
				return FieldErrorf(f, "%q is named twice", raw)
			}
		}
	}
	return nil
}

// OAuthCode is an authorization code: single use, short-lived, bound to
// its client, redirect URI, PKCE challenge and the consent the consumer
// gave.
type OAuthCode struct {
	ID            string     `json:"id"`
	Hash          string     `json:"-"` // hex SHA-256 of the code
	ClientID      string     `json:"client_id"`
	RedirectURI   string     `json:"redirect_uri"`
	CodeChallenge string     `json:"code_challenge"`
	ConsentID     string     `json:"consent_id"`
	DataUserID    string     `json:"data_user_id"`
	OwnerID       string     `json:"owner_id"`
	Scopes        []string   `json:"scopes"`
	ExpiresAt     time.Time  `json:"expires_at"`
	UsedAt        *time.Time `json:"used_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// OAuthToken is an access or refresh token. GrantID is the code it
// descends from: a replayed code or a reused refresh token revokes every
// token of the grant.
type OAuthToken struct {
	ID         string     `json:"id"`
	Hash       string     `json:"-"`
	Kind       string     `json:"kind"`
	GrantID    string     `json:"grant_id"`
	ParentID   string     `json:"parent_id,omitempty"` // an access token's refresh token
	ClientID   string     `json:"client_id"`
	ConsentID  string     `json:"consent_id"`
	DataUserID string     `json:"data_user_id"`
	OwnerID    string     `json:"owner_id"`
	Scopes     []string   `json:"scopes"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Active reports whether the token is neither revoked nor expired at t.
func (t *OAuthToken) Active(at time.Time) bool { return t.RevokedAt == nil && at.Before(t.ExpiresAt) }

// OAuthTx stores clients, codes and tokens (migration 015).
type OAuthTx interface {
	CreateOAuthClient(ctx context.Context, c *OAuthClient) error
	OAuthClient(ctx context.Context, id string) (*OAuthClient, error)
	ListOAuthClients(ctx context.Context, ownerID string) ([]*OAuthClient, error)
	CreateOAuthCode(ctx context.Context, c *OAuthCode) error
	// OAuthCodeByHash finds a code by the hash of its value.
	OAuthCodeByHash(ctx context.Context, hash string) (*OAuthCode, error)
	// UseOAuthCode marks a code used; false when it already was (a
	// replay), so of two concurrent exchanges one wins.
	UseOAuthCode(ctx context.Context, id string, at time.Time) (bool, error)
	CreateOAuthToken(ctx context.Context, t *OAuthToken) error
	OAuthTokenByHash(ctx context.Context, hash string) (*OAuthToken, error)
	// RevokeOAuthTokens revokes the active tokens with the given column
	// ("id", "grant_id" or "parent_id") equal to value; it returns how
	// many.
	RevokeOAuthTokens(ctx context.Context, column, value string, at time.Time) (int64, error)
}
