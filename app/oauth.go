package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Connect My Data (docs/OAUTH.md): the OAuth 2.0 authorization code grant
// with PKCE (RFC 6749, RFC 7636), token revocation (RFC 7009) and bearer
// tokens (RFC 6750). A consumer's approval on the consent page is a
// consent (GiveConsent, Channel "oauth"); a code and the tokens issued
// from it are bound to that consent, and a token reads only what that
// consent covers while it is in force.

// Lifetimes.
const (
	OAuthCodeLifetime    = 10 * time.Minute
	OAuthAccessLifetime  = time.Hour
	OAuthRefreshLifetime = 90 * 24 * time.Hour
)

// Token prefixes: an OAuth token is told from an API key (fh_) by its
// prefix.
const (
	OAuthTokenPrefix   = "fho_"
	OAuthAccessPrefix  = "fho_at_"
	OAuthRefreshPrefix = "fho_rt_"
	OAuthCodePrefix    = "fho_c_"
)

// OAuthError is an OAuth error response (RFC 6749 §4.1.2.1, §5.2; RFC
// 6750 §3.1): the error code, a description and the HTTP status.
type OAuthError struct {
	Code        string
	Description string
	Status      int
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, format string, args ...any) *OAuthError {
	return &OAuthError{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

func newSecret(prefix string) (value, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	value = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return value, hashSecret(value)
}

func hashSecret(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// RegisterOAuthClient registers a public client for the calling data user.
func (s *Service) RegisterOAuthClient(ctx context.Context, spec flexhub.OAuthClientSpec) (*flexhub.OAuthClient, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	c := &flexhub.OAuthClient{ID: flexhub.NewID(), OAuthClientSpec: spec, OwnerID: by.ID, Type: "public", CreatedAt: s.now()}
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		if err := tx.CreateOAuthClient(ctx, c); err != nil {
			return err
		}
		return s.record(ctx, tx, by, "oauth.client_registered", flexhub.KindOAuthClient, c.ID, 1, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListOAuthClients lists the caller's clients.
func (s *Service) ListOAuthClients(ctx context.Context) ([]*flexhub.OAuthClient, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out []*flexhub.OAuthClient
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		out, err = tx.ListOAuthClients(ctx, by.ID)
		return err
	})
	return out, err
}

// GetOAuthClient returns a client to its owner (and the register).
func (s *Service) GetOAuthClient(ctx context.Context, id string) (*flexhub.OAuthClient, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.OAuthClient, error) {
		c, err := tx.OAuthClient(ctx, id)
		if err != nil {
			return nil, err
		}
		if c.OwnerID != by.ID && !privileged(by) {
			return nil, notFound("OAuth client", id)
		}
		return c, nil
	})
}

// AuthorizeRequest is a parsed authorization request (RFC 6749 §4.1.1,
// RFC 7636 §4.3) with flexhub's consent parameters.
type AuthorizeRequest struct {
	ClientID, RedirectURI, State string
	ResponseType                 string
	Scopes                       []string
	CodeChallenge, Method        string
	MeteringPointIDs             []string // empty with AllMeteringPoints
	AllMeteringPoints            bool
	Purpose                      string
	ValidFrom, ValidTo           time.Time
}

// AuthorizePage is what the consent page shows.
type AuthorizePage struct {
	Client   *flexhub.OAuthClient
	DataUser *flexhub.Party
}

// ParseAuthorize checks an authorization request. The client and redirect
// URI are checked first: when either is wrong it returns (nil, nil, err)
// and the caller must NOT redirect (RFC 6749 §4.1.2.1); any other error
// comes with the page, and the caller redirects it to the client.
func (s *Service) ParseAuthorize(ctx context.Context, q url.Values) (*AuthorizeRequest, *AuthorizePage, *OAuthError) {
	r := &AuthorizeRequest{ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), ResponseType: q.Get("response_type")}
	if r.ClientID == "" || !flexhub.ValidID(r.ClientID) {
		return nil, nil, oauthErr(400, "invalid_request", "client_id is missing or malformed")
	}
	page := &AuthorizePage{}
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		c, err := tx.OAuthClient(ctx, r.ClientID)
		if err != nil {
			return err
		}
		page.Client = c
		page.DataUser, err = tx.Party(ctx, c.OwnerID)
		return err
	})
	if err != nil {
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, nil, oauthErr(400, "invalid_request", "unknown client_id %s", r.ClientID)
		}
		return nil, nil, oauthErr(500, "server_error", "%v", err)
	}
	if r.RedirectURI == "" {
		return nil, nil, oauthErr(400, "invalid_request", "redirect_uri is missing: name one of the client's registered redirect URIs")
	}
	if !slices.Contains(page.Client.RedirectURIs, r.RedirectURI) {
		return nil, nil, oauthErr(400, "invalid_request", "redirect_uri %q is not registered for client %s (compared exactly)", r.RedirectURI, r.ClientID)
	}
	// From here on errors go back to the client.
	for _, p := range []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "metering_point_ids", "purpose", "valid_from", "valid_to"} {
		if len(q[p]) > 1 {
			return r, page, oauthErr(400, "invalid_request", "parameter %s is repeated", p)
		}
	}
	if r.ResponseType != "code" {
		return r, page, oauthErr(400, "unsupported_response_type", "response_type must be code")
	}
	r.CodeChallenge, r.Method = q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case r.CodeChallenge == "":
		return r, page, oauthErr(400, "invalid_request", "code_challenge is required (PKCE, RFC 7636, method S256)")
	case r.Method != "S256":
		return r, page, oauthErr(400, "invalid_request", "code_challenge_method must be S256 (plain is not supported)")
	case !validChallenge(r.CodeChallenge):
		return r, page, oauthErr(400, "invalid_request", "code_challenge must be BASE64URL(SHA256(code_verifier)): 43 characters, no padding")
	}
	r.Scopes = strings.Fields(q.Get("scope"))
	if len(r.Scopes) == 0 {
		return r, page, oauthErr(400, "invalid_scope", "name the scopes: space-separated of %s", strings.Join(flexhub.ConsentScopes, " "))
	}
	for i, sc := range r.Scopes {
		if !slices.Contains(flexhub.ConsentScopes, sc) || slices.Index(r.Scopes, sc) != i {
			return r, page, oauthErr(400, "invalid_scope", "%q is not a scope (or repeated): %s", sc, strings.Join(flexhub.ConsentScopes, " "))
		}
	}
	mps := strings.FieldsFunc(q.Get("metering_point_ids"), func(c rune) bool { return c == ',' || c == ' ' })
	switch {
	case len(mps) == 1 && mps[0] == "all":
		r.AllMeteringPoints = true
	case len(mps) == 0:
		return r, page, oauthErr(400, "invalid_request", "metering_point_ids is required: comma-separated ids, or all")
	default:
		for _, id := range mps {
			if !flexhub.ValidID(id) {
				return r, page, oauthErr(400, "invalid_request", "metering_point_ids: %q is not a metering point id", id)
			}
		}
		r.MeteringPointIDs = mps
	}
	r.Purpose = strings.TrimSpace(q.Get("purpose"))
	if len(r.Purpose) < 3 || len(r.Purpose) > 500 {
		return r, page, oauthErr(400, "invalid_request", "purpose is required (3 to 500 characters): the consumer sees it")
	}
	now := s.now()
	r.ValidFrom = now.Truncate(time.Second)
	if v := q.Get("valid_from"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return r, page, oauthErr(400, "invalid_request", "valid_from %q is not an RFC 3339 time", v)
		}
		r.ValidFrom = t.UTC()
	}
	t, err := time.Parse(time.RFC3339, q.Get("valid_to"))
	if err != nil {
		return r, page, oauthErr(400, "invalid_request", "valid_to is required: an RFC 3339 time")
	}
	r.ValidTo = t.UTC()
	spec := r.spec(page.Client.OwnerID, []string{flexhub.NewID()})
	if err := spec.Validate(); err != nil || !r.ValidTo.After(now) {
		msg := "valid_to has passed"
		if err != nil {
			msg = flexhub.ErrorMessage(err)
		}
		return r, page, oauthErr(400, "invalid_request", "%s", msg)
	}
	return r, page, nil
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

func (r *AuthorizeRequest) spec(dataUser string, mps []string) flexhub.ConsentSpec {
	return flexhub.ConsentSpec{DataUserID: dataUser, MeteringPointIDs: mps, Scopes: r.Scopes, Purpose: r.Purpose, ValidFrom: r.ValidFrom, ValidTo: r.ValidTo}
}

// ApproveAuthorize is the consumer's approval on the consent page: the
// consumer authenticates with its party id and API key, the consent is
// given (as a grant by the consumer, Channel "oauth") and a code is issued
// for it. It returns the code. Errors are flexhub errors shown on the
// page (nothing is stored).
func (s *Service) ApproveAuthorize(ctx context.Context, r *AuthorizeRequest, page *AuthorizePage, partyID, apiKey string) (string, *flexhub.Consent, error) {
	by, err := s.Authenticate(ctx, strings.TrimSpace(apiKey))
	if err != nil {
		return "", nil, err
	}
	if by.ID != strings.TrimSpace(partyID) {
		return "", nil, flexhub.Errorf(flexhub.EUnauthorized, "the API key does not belong to party %q", partyID)
	}
	if !by.HasRole(flexhub.RoleConsumer) {
		return "", nil, flexhub.RuleErrorf(flexhub.EForbidden, RuleConsentNotOwner, "", "only a consumer approves access to its data; %s is not a consumer", by.ID)
	}
	ctx = WithActor(ctx, by)
	mps := r.MeteringPointIDs
	if r.AllMeteringPoints {
		mps = nil
		err := s.store.View(ctx, func(tx flexhub.Tx) error {
			pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
			for {
				items, next, err := tx.ListMeteringPoints(ctx, flexhub.Filter{"consumer_id": by.ID}, pg)
				if err != nil {
					return err
				}
				for _, mp := range items {
					mps = append(mps, mp.ID)
				}
				if next == "" {
					return nil
				}
				pg.After = next
			}
		})
		if err != nil {
			return "", nil, err
		}
		if len(mps) == 0 {
			return "", nil, flexhub.Errorf(flexhub.EInvalid, "you own no metering point")
		}
	}
	created, err := s.GiveConsent(context.WithValue(ctx, consentChannelKey{}, flexhub.ChannelOAuth), r.spec(page.Client.OwnerID, mps), "")
	if err != nil {
		return "", nil, err
	}
	c := created.Object
	code, hash := newSecret(OAuthCodePrefix)
	now := s.now()
	oc := &flexhub.OAuthCode{ID: flexhub.NewID(), Hash: hash, ClientID: r.ClientID, RedirectURI: r.RedirectURI, CodeChallenge: r.CodeChallenge,
		ConsentID: c.ID, DataUserID: c.DataUserID, OwnerID: c.OwnerID, Scopes: c.Scopes, ExpiresAt: now.Add(OAuthCodeLifetime), CreatedAt: now}
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		if err := tx.CreateOAuthCode(ctx, oc); err != nil {
			return err
		}
		return s.record(ctx, tx, by, "oauth.code_issued", flexhub.KindOAuthGrant, oc.ID, 1, oc, c.DataUserID)
	})
	if err != nil {
		// No code, no use for the consent: take it back.
		if _, rerr := s.DecideConsent(ctx, c.ID, ConsentRevoke); rerr != nil {
			s.log.Error("oauth: revoke the consent of a failed code", "consent", c.ID, "err", rerr)
		}
		return "", nil, err
	}
	return code, c, nil
}

// consentChannelKey marks the context of a consent given on the OAuth
// consent page.
type consentChannelKey struct{}

func consentChannel(ctx context.Context) string {
	if c, ok := ctx.Value(consentChannelKey{}).(string); ok {
		return c
	}
	return "api"
}

// TokenResponse is a successful token response (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	ConsentID    string `json:"consent_id"`
}

// Token answers the token endpoint (RFC 6749 §4.1.3, §6): exchanges a
// code (with its PKCE verifier) or a refresh token for new tokens.
func (s *Service) Token(ctx context.Context, form url.Values) (*TokenResponse, *OAuthError) {
	for k, v := range form {
		if len(v) > 1 {
			return nil, oauthErr(400, "invalid_request", "parameter %s is repeated", k)
		}
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		return nil, oauthErr(401, "invalid_client", "client_id is required (public clients identify themselves with it)")
	}
	var client *flexhub.OAuthClient
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		client, err = tx.OAuthClient(ctx, clientID)
		return err
	})
	if err != nil {
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, oauthErr(401, "invalid_client", "unknown client_id %s", clientID)
		}
		return nil, oauthErr(500, "server_error", "%v", err)
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		return s.exchangeCode(ctx, client, form)
	case "refresh_token":
		return s.refresh(ctx, client, form)
	case "":
		return nil, oauthErr(400, "invalid_request", "grant_type is required: authorization_code or refresh_token")
	default:
		return nil, oauthErr(400, "unsupported_grant_type", "grant_type %q is not supported: authorization_code or refresh_token", form.Get("grant_type"))
	}
}

// pkceOK checks a verifier against the challenge (RFC 7636 §4.1, §4.6).
func pkceOK(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, c := range verifier {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (s *Service) exchangeCode(ctx context.Context, client *flexhub.OAuthClient, form url.Values) (*TokenResponse, *OAuthError) {
	code, verifier, redirect := form.Get("code"), form.Get("code_verifier"), form.Get("redirect_uri")
	if code == "" || verifier == "" || redirect == "" {
		return nil, oauthErr(400, "invalid_request", "code, redirect_uri and code_verifier are required")
	}
	var out *TokenResponse
	var oerr *OAuthError
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		now := s.now()
		oc, err := tx.OAuthCodeByHash(ctx, hashSecret(code))
		if err != nil {
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				oerr = oauthErr(400, "invalid_grant", "unknown authorization code")
				return nil
			}
			return err
		}
		// A replay (RFC 6749 §4.1.2): refuse, and revoke what the code gave.
		replay := func() error {
			n, err := tx.RevokeOAuthTokens(ctx, "grant_id", oc.ID, now)
			if err != nil {
				return err
			}
			if err := s.recordAs(ctx, tx, client.OwnerID, "oauth.code_replayed", flexhub.KindOAuthGrant, oc.ID, 1,
				map[string]any{"grant_id": oc.ID, "revoked_tokens": n}, oc.OwnerID); err != nil {
				return err
			}
			oerr = oauthErr(400, "invalid_grant", "the code was already used; the tokens issued from it are revoked")
			return nil
		}
		switch {
		case oc.ClientID != client.ID:
			oerr = oauthErr(400, "invalid_grant", "the code was issued to another client")
			return nil
		case oc.UsedAt != nil:
			return replay()
		case !now.Before(oc.ExpiresAt):
			oerr = oauthErr(400, "invalid_grant", "the code expired at %s (codes live %s)", oc.ExpiresAt.Format(time.RFC3339), OAuthCodeLifetime)
			return nil
		case oc.RedirectURI != redirect:
			oerr = oauthErr(400, "invalid_grant", "redirect_uri differs from the authorization request's")
			return nil
		case !pkceOK(verifier, oc.CodeChallenge):
			oerr = oauthErr(400, "invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)")
			return nil
		}
		c, err := tx.Consent(ctx, oc.ConsentID)
		if err != nil {
			return err
		}
		if c.Shown(now).Status != flexhub.ConsentActive {
			oerr = oauthErr(400, "invalid_grant", "consent %s is %s", c.ID, c.Shown(now).Status)
			return nil
		}
		ok, err := tx.UseOAuthCode(ctx, oc.ID, now)
		if err != nil {
			return err
		}
		if !ok { // a concurrent exchange used it first: a replay too
			return replay()
		}
		out, err = s.issueTokens(ctx, tx, client, oc.ID, c, oc.Scopes, "oauth.token_issued")
		return err
	})
	if err != nil {
		return nil, oauthErr(500, "server_error", "%v", err)
	}
	if oerr != nil {
		return nil, oerr
	}
	return out, nil
}

// issueTokens stores a new refresh token and access token for a grant,
// neither outliving the consent.
func (s *Service) issueTokens(ctx context.Context, tx flexhub.Tx, client *flexhub.OAuthClient, grantID string, c *flexhub.Consent, scopes []string, action string) (*TokenResponse, error) {
	now := s.now()
	until := func(d time.Duration) time.Time {
		if t := now.Add(d); t.Before(c.ValidTo) {
			return t
		}
		return c.ValidTo
	}
	rt, rhash := newSecret(OAuthRefreshPrefix)
	at, ahash := newSecret(OAuthAccessPrefix)
	refresh := &flexhub.OAuthToken{ID: flexhub.NewID(), Hash: rhash, Kind: flexhub.OAuthRefreshToken, GrantID: grantID, ClientID: client.ID, ConsentID: c.ID,
		DataUserID: c.DataUserID, OwnerID: c.OwnerID, Scopes: scopes, ExpiresAt: until(OAuthRefreshLifetime), CreatedAt: now}
	access := *refresh
	access.ID, access.Hash, access.Kind, access.ParentID, access.ExpiresAt = flexhub.NewID(), ahash, flexhub.OAuthAccessToken, refresh.ID, until(OAuthAccessLifetime)
	for _, t := range []*flexhub.OAuthToken{refresh, &access} {
		if err := tx.CreateOAuthToken(ctx, t); err != nil {
			return nil, err
		}
	}
	if err := s.recordAs(ctx, tx, client.OwnerID, action, flexhub.KindOAuthGrant, grantID, 1,
		map[string]any{"access_token_id": access.ID, "refresh_token_id": refresh.ID, "consent_id": c.ID, "scopes": scopes}, c.DataUserID, c.OwnerID); err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(access.ExpiresAt.Sub(now) / time.Second), RefreshToken: rt,
		Scope: strings.Join(scopes, " "), ConsentID: c.ID}, nil
}

func (s *Service) refresh(ctx context.Context, client *flexhub.OAuthClient, form url.Values) (*TokenResponse, *OAuthError) {
	value := form.Get("refresh_token")
	if value == "" {
		return nil, oauthErr(400, "invalid_request", "refresh_token is required")
	}
	var out *TokenResponse
	var oerr *OAuthError
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		now := s.now()
		old, err := tx.OAuthTokenByHash(ctx, hashSecret(value))
		if err != nil || old.Kind != flexhub.OAuthRefreshToken {
			if err == nil || flexhub.ErrorKind(err) == flexhub.ENotFound {
				oerr = oauthErr(400, "invalid_grant", "unknown refresh token")
				return nil
			}
			return err
		}
		switch {
		case old.ClientID != client.ID:
			oerr = oauthErr(400, "invalid_grant", "the refresh token was issued to another client")
			return nil
		case old.RevokedAt != nil:
			// A rotated or revoked refresh token used again: someone holds
			// a copy. Revoke the whole grant.
			n, err := tx.RevokeOAuthTokens(ctx, "grant_id", old.GrantID, now)
			if err != nil {
				return err
			}
			if n > 0 {
				if err := s.recordAs(ctx, tx, client.OwnerID, "oauth.refresh_reused", flexhub.KindOAuthGrant, old.GrantID, 1,
					map[string]any{"refresh_token_id": old.ID, "revoked_tokens": n}, old.OwnerID); err != nil {
					return err
				}
			}
			oerr = oauthErr(400, "invalid_grant", "the refresh token was revoked or already used; every token of this grant is now revoked")
			return nil
		case !now.Before(old.ExpiresAt):
			oerr = oauthErr(400, "invalid_grant", "the refresh token expired at %s", old.ExpiresAt.Format(time.RFC3339))
			return nil
		}
		scopes := old.Scopes
		if sc := strings.Fields(form.Get("scope")); len(sc) > 0 {
			for _, x := range sc {
				if !slices.Contains(old.Scopes, x) {
					oerr = oauthErr(400, "invalid_scope", "scope %q was not granted (granted: %s)", x, strings.Join(old.Scopes, " "))
					return nil
				}
			}
			scopes = sc
		}
		c, err := tx.Consent(ctx, old.ConsentID)
		if err != nil {
			return err
		}
		if st := c.Shown(now).Status; st != flexhub.ConsentActive {
			oerr = oauthErr(400, "invalid_grant", "consent %s is %s", c.ID, st)
			return nil
		}
		if _, err := tx.RevokeOAuthTokens(ctx, "id", old.ID, now); err != nil { // rotation
			return err
		}
		out, err = s.issueTokens(ctx, tx, client, old.GrantID, c, scopes, "oauth.token_refreshed")
		return err
	})
	if err != nil {
		return nil, oauthErr(500, "server_error", "%v", err)
	}
	if oerr != nil {
		return nil, oerr
	}
	return out, nil
}

// RevokeToken revokes an access or refresh token (RFC 7009): a refresh
// token with the access tokens issued with it. Unknown tokens are not an
// error; a token of another client is refused.
func (s *Service) RevokeToken(ctx context.Context, form url.Values) *OAuthError {
	clientID, value := form.Get("client_id"), form.Get("token")
	if clientID == "" {
		return oauthErr(401, "invalid_client", "client_id is required (public clients identify themselves with it)")
	}
	if value == "" {
		return oauthErr(400, "invalid_request", "token is required")
	}
	var oerr *OAuthError
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		client, err := tx.OAuthClient(ctx, clientID)
		if err != nil {
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				oerr = oauthErr(401, "invalid_client", "unknown client_id %s", clientID)
				return nil
			}
			return err
		}
		tok, err := tx.OAuthTokenByHash(ctx, hashSecret(value))
		if err != nil {
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				return nil // RFC 7009 §2.2: invalid tokens get 200 too
			}
			return err
		}
		if tok.ClientID != client.ID {
			oerr = oauthErr(400, "invalid_grant", "the token was issued to another client than %s (RFC 7009 §2.1: refused)", client.ID)
			return nil
		}
		now := s.now()
		n, err := tx.RevokeOAuthTokens(ctx, "id", tok.ID, now)
		if err != nil {
			return err
		}
		if tok.Kind == flexhub.OAuthRefreshToken {
			m, err := tx.RevokeOAuthTokens(ctx, "parent_id", tok.ID, now)
			if err != nil {
				return err
			}
			n += m
		}
		if n == 0 {
			return nil
		}
		return s.recordAs(ctx, tx, client.OwnerID, "oauth.token_revoked", flexhub.KindOAuthGrant, tok.GrantID, 1,
			map[string]any{"token_id": tok.ID, "kind": tok.Kind, "revoked_tokens": n}, tok.DataUserID, tok.OwnerID)
	})
	if err != nil {
		return oauthErr(500, "server_error", "%v", err)
	}
	return oerr
}

// OAuthGrant is what an access token lets its bearer read: one consent's
// data, in the token's scopes.
type OAuthGrant struct {
	TokenID   string
	ClientID  string
	ConsentID string
	Scopes    []string
}

type oauthGrantKey struct{}

// WithOAuthGrant marks the reads of ctx as made with an access token:
// only the grant's consent is a basis for them (no legal basis, no other
// consent of the data user), and they are logged on channel "oauth".
func WithOAuthGrant(ctx context.Context, g *OAuthGrant) context.Context {
	return WithChannel(context.WithValue(ctx, oauthGrantKey{}, g), flexhub.ChannelOAuth)
}

func oauthGrantOf(ctx context.Context) *OAuthGrant {
	g, _ := ctx.Value(oauthGrantKey{}).(*OAuthGrant)
	return g
}

// OAuthRead describes the read a token is presented for, to log it when
// the token is refused because its consent is no longer in force.
type OAuthRead struct {
	Scope           string // "" when the request reads no consumer data
	MeteringPointID string
	What            string
}

// AuthenticateOAuth returns the data user an access token reads as and its
// grant. A revoked or expired token, or one whose consent is not in force,
// is refused (EUnauthorized); in the last case the attempted read is
// logged as refused in the owner's access log.
func (s *Service) AuthenticateOAuth(ctx context.Context, token string, read OAuthRead) (*flexhub.Party, *OAuthGrant, error) {
	var party *flexhub.Party
	var tok *flexhub.OAuthToken
	var c *flexhub.Consent
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		if tok, err = tx.OAuthTokenByHash(ctx, hashSecret(token)); err != nil {
			return err
		}
		if c, err = tx.Consent(ctx, tok.ConsentID); err != nil {
			return err
		}
		party, err = tx.Party(ctx, tok.DataUserID)
		return err
	})
	if err != nil {
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, nil, flexhub.Errorf(flexhub.EUnauthorized, "unknown access token")
		}
		return nil, nil, err
	}
	now := s.now()
	switch {
	case tok.Kind != flexhub.OAuthAccessToken:
		return nil, nil, flexhub.Errorf(flexhub.EUnauthorized, "a refresh token is not an access token: exchange it at /oauth/token")
	case tok.RevokedAt != nil:
		return nil, nil, flexhub.Errorf(flexhub.EUnauthorized, "the access token was revoked at %s", tok.RevokedAt.Format(time.RFC3339))
	case !now.Before(tok.ExpiresAt):
		return nil, nil, flexhub.Errorf(flexhub.EUnauthorized, "the access token expired at %s", tok.ExpiresAt.Format(time.RFC3339))
	}
	if !c.InForce(now) {
		sh := c.Shown(now)
		rule, why := RuleConsentNotYet, fmt.Sprintf("consent %s is valid from %s", c.ID, c.ValidFrom.Format(time.RFC3339))
		switch sh.Status {
		case flexhub.ConsentRevoked:
			rule, why = RuleConsentRevoked, fmt.Sprintf("consent %s was revoked at %s", c.ID, c.RevokedAt.Format(time.RFC3339))
		case flexhub.ConsentExpired:
			rule, why = RuleConsentExpired, fmt.Sprintf("consent %s expired at %s", c.ID, c.ValidTo.Format(time.RFC3339))
		}
		if read.Scope != "" {
			mp := ""
			if slices.Contains(c.MeteringPointIDs, read.MeteringPointID) {
				mp = read.MeteringPointID
			}
			a := &flexhub.DataAccess{At: now, ReaderID: party.ID, OwnerID: c.OwnerID, MeteringPointID: mp, Scope: read.Scope, Channel: flexhub.ChannelOAuth,
				What: read.What + " (access token " + tok.ID + ")", Outcome: flexhub.AccessRefused, Reason: rule + ": " + why}
			if err := s.logAccess(ctx, a); err != nil {
				return nil, nil, err
			}
		}
		return nil, nil, flexhub.Errorf(flexhub.EUnauthorized, "the access token's %s", why)
	}
	return party, &OAuthGrant{TokenID: tok.ID, ClientID: tok.ClientID, ConsentID: tok.ConsentID, Scopes: tok.Scopes}, nil
}

// grantAccess is dataAccess for a read with an access token: the token's
// consent is the only basis.
func (s *Service) grantAccess(ctx context.Context, tx flexhub.Tx, g *OAuthGrant, by *flexhub.Party, mp *flexhub.MeteringPoint, scope, what string) (*flexhub.DataAccess, error) {
	now := s.now()
	a := &flexhub.DataAccess{At: now, ReaderID: by.ID, OwnerID: mp.ConsumerID, MeteringPointID: mp.ID, Scope: scope, Channel: flexhub.ChannelOAuth,
		What: what + " (access token " + g.TokenID + ")", Outcome: flexhub.AccessAllowed}
	c, err := tx.Consent(ctx, g.ConsentID)
	if err != nil {
		return nil, err
	}
	rule, why := "", ""
	switch sh := c.Shown(now); {
	case c.OwnerID != mp.ConsumerID || !slices.Contains(c.MeteringPointIDs, mp.ID):
		rule, why = RuleConsentNone, fmt.Sprintf("the access token's consent %s does not cover metering point %s", c.ID, mp.ID)
	case sh.Status == flexhub.ConsentRevoked:
		rule, why = RuleConsentRevoked, fmt.Sprintf("consent %s was revoked at %s", c.ID, c.RevokedAt.Format(time.RFC3339))
	case sh.Status == flexhub.ConsentExpired:
		rule, why = RuleConsentExpired, fmt.Sprintf("consent %s expired at %s", c.ID, c.ValidTo.Format(time.RFC3339))
	case !c.InForce(now):
		rule, why = RuleConsentNotYet, fmt.Sprintf("consent %s is not in force", c.ID)
	case !slices.Contains(c.Scopes, scope) || !slices.Contains(g.Scopes, scope):
		rule, why = RuleConsentScope, fmt.Sprintf("the access token covers %v, not %s", g.Scopes, scope)
	}
	if rule == "" {
		a.Basis, a.ConsentID = flexhub.BasisConsent, c.ID
		return a, nil
	}
	a.Outcome, a.Reason = flexhub.AccessRefused, rule+": "+why
	return a, flexhub.RuleErrorf(flexhub.EForbidden, rule, "", "%s; the owner sees this refused read in its access log", why)
}

// grantMeterAccess is meterAccess for a read with an access token: a
// resource's series count as its metering point's data, and only the
// token's consent is a basis.
func (s *Service) grantMeterAccess(ctx context.Context, tx flexhub.Tx, g *OAuthGrant, by *flexhub.Party, key flexhub.MeterSeriesKey, scope, what string) (*flexhub.DataAccess, error) {
	mpID := key.SubjectID
	if key.SubjectKind == flexhub.MeterSubjectResource {
		r, err := tx.Resource(ctx, key.SubjectID)
		if err != nil || r.MeteringPointID == "" {
			if err == nil || flexhub.ErrorKind(err) == flexhub.ENotFound {
				return nil, notFound("resource", key.SubjectID)
			}
			return nil, err
		}
		mpID, what = r.MeteringPointID, "resource "+r.ID+" "+what
	}
	mp, err := tx.MeteringPoint(ctx, mpID)
	if err != nil {
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, notFound("metering point", mpID)
		}
		return nil, err
	}
	return s.grantAccess(ctx, tx, g, by, mp, scope, what)
}
