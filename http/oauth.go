package http

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// Connect My Data (docs/OAUTH.md): OAuth client registration under /v1
// (API key), and the OAuth endpoints under /oauth: the consent page
// (authorize), the token endpoint and token revocation. Requests with an
// OAuth access token are authenticated by authenticateOAuth and may call
// only the operations of oauthAllowed.

func init() { extraRoutes = append(extraRoutes, (*Server).registerOAuth) }

// oauthAllowed is THE allow-list of operations an OAuth access token may
// call: reads of consumer data, each with the consent scope it reads
// ("" for none), checked again by the app's data access check. An
// operation that reads consumer data for OAuth clients is added here.
var oauthAllowed = map[string]string{
	"read-meter-readings":         flexhub.ScopeMeterHistory,
	"read-meter-reading-versions": flexhub.ScopeMeterHistory,
	"list-meter-series":           flexhub.ScopeMeterHistory,
	"export-meter-data":           flexhub.ScopeMeterHistory, // every metering point within the token's consent, or none
	"get-consent":                 "",                        // only the token's own consent (checked below)
}

type oauthClientInput struct {
	Body flexhub.OAuthClientSpec
}

type oauthClientOutput struct {
	Location string `header:"Location"`
	Body     *flexhub.OAuthClient
}

type oauthClientsOutput struct {
	Body struct {
		Items []*flexhub.OAuthClient `json:"items" nullable:"false"`
	}
}

func (s *Server) registerOAuth() {
	tags := []string{"Consent"}
	huma.Register(s.api, huma.Operation{OperationID: "register-oauth-client", Method: http.MethodPost, Path: "/v1/oauth-clients", Tags: tags,
		Summary: "Register an OAuth client (Connect My Data)", DefaultStatus: http.StatusCreated,
		Description: "A data user registers a public OAuth 2.0 client: a name and its redirect URIs (exact match, no wildcards, https or http on loopback). " +
			"Consumers then approve its requests on flexhub's consent page (/oauth/authorize, authorization code with PKCE S256); the tokens read as the data user, " +
			"within the consent given. docs/OAUTH.md."},
		func(ctx context.Context, in *oauthClientInput) (*oauthClientOutput, error) {
			c, err := s.svc.RegisterOAuthClient(ctx, in.Body)
			if err != nil {
				return nil, problem(err)
			}
			return &oauthClientOutput{Location: "/v1/oauth-clients/" + c.ID, Body: c}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-oauth-clients", Method: http.MethodGet, Path: "/v1/oauth-clients", Tags: tags,
		Summary: "List your OAuth clients"},
		func(ctx context.Context, _ *struct{}) (*oauthClientsOutput, error) {
			cs, err := s.svc.ListOAuthClients(ctx)
			if err != nil {
				return nil, problem(err)
			}
			out := &oauthClientsOutput{}
			out.Body.Items = cs
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-oauth-client", Method: http.MethodGet, Path: "/v1/oauth-clients/{id}", Tags: tags,
		Summary: "Read an OAuth client", Description: "To the data user that registered it."},
		func(ctx context.Context, in *IDPath) (*struct{ Body *flexhub.OAuthClient }, error) {
			c, err := s.svc.GetOAuthClient(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *flexhub.OAuthClient }{c}, nil
		})

	s.mux.HandleFunc("GET /oauth/authorize", s.authorize)
	s.mux.HandleFunc("POST /oauth/authorize", s.authorize)
	s.mux.HandleFunc("POST /oauth/token", s.oauthToken)
	s.mux.HandleFunc("POST /oauth/revoke", s.oauthRevoke)
}

// authenticateOAuth authenticates a request with an OAuth access token
// (RFC 6750): the data user, restricted to the allow-list and to the
// token's consent; reads are logged on channel "oauth".
func (s *Server) authenticateOAuth(ctx huma.Context, token string, next func(huma.Context)) {
	op := ctx.Operation().OperationID
	scope, allowed := oauthAllowed[op]
	read := app.OAuthRead{Scope: scope, MeteringPointID: ctx.Query("metering_point_id"), What: ctx.Method() + " " + ctx.URL().Path}
	if !allowed {
		read.Scope = ""
	}
	party, grant, err := s.svc.AuthenticateOAuth(ctx.Context(), token, read)
	if err != nil {
		status := statusOf[flexhub.ErrorKind(err)]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if status == http.StatusUnauthorized {
			ctx.SetHeader("WWW-Authenticate", bearerChallenge("invalid_token", flexhub.ErrorMessage(err)))
		}
		s.log.Warn("denied: bad OAuth token", "method", ctx.Method(), "path", ctx.URL().Path, "remote", ctx.RemoteAddr(), "reason", flexhub.ErrorMessage(err))
		huma.WriteErr(s.api, ctx, status, flexhub.ErrorMessage(err))
		return
	}
	if !allowed || (op == "get-consent" && ctx.Param("id") != grant.ConsentID) {
		msg := "an OAuth access token reads only consumer data within its consent (docs/OAUTH.md); use an API key for " + ctx.Method() + " " + ctx.URL().Path
		ctx.SetHeader("WWW-Authenticate", bearerChallenge("insufficient_scope", msg))
		s.log.Warn("denied: OAuth token outside its allow-list", "party", party.ID, "operation", op, "token", grant.TokenID)
		huma.WriteErr(s.api, ctx, http.StatusForbidden, msg)
		return
	}
	ctx = huma.WithValue(ctx, partyKey{}, party)
	ctx = huma.WithContext(ctx, app.WithOAuthGrant(app.WithActor(ctx.Context(), party), grant))
	next(ctx)
}

// bearerChallenge is an RFC 6750 §3 WWW-Authenticate value.
func bearerChallenge(code, desc string) string {
	desc = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return '\''
		}
		return r
	}, desc)
	return `Bearer realm="flexhub", error="` + code + `", error_description="` + desc + `"`
}

var scopeWords = map[string]string{
	flexhub.ScopeMeterHistory:  "your stored meter data (consumption and production per interval)",
	flexhub.ScopeMeterRealtime: "the live stream of your new meter readings",
	flexhub.ScopeMasterData:    "the register data of your metering points (code, connection, supplier, balance responsible party)",
	flexhub.ScopeSettlement:    "settlement data: verifications, imbalance adjustments and statement lines of activations at your metering points",
}

type consentPageData struct {
	Req      *app.AuthorizeRequest
	Page     *app.AuthorizePage
	Scopes   []string
	Hidden   map[string]string
	PartyID  string
	Error    string
	Approved bool
}

var consentPage = template.Must(template.New("consent").Funcs(template.FuncMap{
	"day": func(t time.Time) string { return t.UTC().Format("2 January 2006 15:04 UTC") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flexhub: share your data?</title>
<style>body{font-family:sans-serif;max-width:42em;margin:2em auto;padding:0 1em;line-height:1.4}
.err{background:#fdd;border:1px solid #c33;padding:.5em}dt{font-weight:bold;margin-top:.6em}
label{display:block;margin-top:.6em}button{margin:1em 1em 0 0;padding:.5em 1.2em}</style></head>
<body>
<h1>Share your data with {{.Page.DataUser.Name}}?</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<p><strong>{{.Page.DataUser.Name}}</strong> (party {{.Page.DataUser.ID}}, EIC {{.Page.DataUser.EIC}}) asks, through its application
<strong>{{.Page.Client.Name}}</strong>, to read your data.</p>
<dl>
<dt>What</dt>{{range .Scopes}}<dd>{{.}}</dd>{{end}}
<dt>Purpose</dt><dd>{{.Req.Purpose}}</dd>
<dt>Period</dt><dd>from {{day .Req.ValidFrom}} until {{day .Req.ValidTo}}</dd>
<dt>Metering points</dt>{{if .Req.AllMeteringPoints}}<dd>all your metering points</dd>{{else}}{{range .Req.MeteringPointIDs}}<dd>{{.}}</dd>{{end}}{{end}}
</dl>
<p>You can revoke this consent at any time (POST /v1/consents/{id}/revoke); the application's access stops at once.
Every read is logged in your access log (GET /v1/data-access).</p>
<form method="post" action="/oauth/authorize">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<p>To approve, sign in as the consumer who owns the metering points: your party id and an API key of yours
(sent with this form only, never to {{.Page.DataUser.Name}}).</p>
<label>Party id <input name="party_id" value="{{.PartyID}}" autocomplete="username"></label>
<label>API key <input name="api_key" type="password" autocomplete="current-password"></label>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="decline">Decline</button>
</form>
</body></html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flexhub: authorization request refused</title></head>
<body><h1>This authorization request is refused</h1>
<p>{{.}}</p>
<p>flexhub did not send you back to the application: its address could not be trusted. Close this page.</p>
</body></html>
`))

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// authorize serves the consent page (GET) and takes the consumer's
// decision (POST, the same parameters in the form).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			pageHeaders(w)
			w.WriteHeader(http.StatusBadRequest)
			errorPage.Execute(w, "The form could not be read.")
			return
		}
		params = r.PostForm
	}
	req, page, oerr := s.svc.ParseAuthorize(r.Context(), params)
	if oerr != nil && req == nil { // bad client or redirect URI: never redirect
		pageHeaders(w)
		w.WriteHeader(oerr.Status)
		errorPage.Execute(w, oerr.Description)
		return
	}
	if oerr != nil {
		redirectBack(w, r, req, url.Values{"error": {oerr.Code}, "error_description": {oerr.Description}})
		return
	}
	data := &consentPageData{Req: req, Page: page, Hidden: map[string]string{}}
	for _, sc := range req.Scopes {
		data.Scopes = append(data.Scopes, scopeWords[sc])
	}
	for _, k := range []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "metering_point_ids", "purpose", "valid_from", "valid_to"} {
		if v := params.Get(k); v != "" {
			data.Hidden[k] = v
		}
	}
	if r.Method == http.MethodGet {
		pageHeaders(w)
		consentPage.Execute(w, data)
		return
	}
	switch params.Get("decision") {
	case "decline":
		redirectBack(w, r, req, url.Values{"error": {"access_denied"}, "error_description": {"the consumer declined"}})
		return
	case "approve":
	default:
		pageHeaders(w)
		w.WriteHeader(http.StatusBadRequest)
		data.Error = "Choose Approve or Decline."
		consentPage.Execute(w, data)
		return
	}
	code, _, err := s.svc.ApproveAuthorize(r.Context(), req, page, params.Get("party_id"), params.Get("api_key"))
	if err != nil {
		status := statusOf[flexhub.ErrorKind(err)]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		s.log.Warn("oauth: approval refused", "client", req.ClientID, "party", params.Get("party_id"), "reason", flexhub.ErrorMessage(err))
		pageHeaders(w)
		w.WriteHeader(status)
		data.Error = "Not approved: " + flexhub.ErrorMessage(err)
		data.PartyID = params.Get("party_id")
		consentPage.Execute(w, data)
		return
	}
	redirectBack(w, r, req, url.Values{"code": {code}})
}

// redirectBack sends the browser to the client's (checked) redirect URI
// with the response parameters and the state.
func redirectBack(w http.ResponseWriter, r *http.Request, req *app.AuthorizeRequest, v url.Values) {
	u, _ := url.Parse(req.RedirectURI) // registered, so valid
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, u.String(), status)
}

func oauthForm(w http.ResponseWriter, r *http.Request) (url.Values, *app.OAuthError) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, &app.OAuthError{Code: "invalid_request", Description: "send application/x-www-form-urlencoded", Status: http.StatusBadRequest}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, &app.OAuthError{Code: "invalid_request", Description: "the form could not be read", Status: http.StatusBadRequest}
	}
	return r.PostForm, nil
}

func writeOAuthJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func writeOAuthError(w http.ResponseWriter, e *app.OAuthError) {
	writeOAuthJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

// oauthToken is the token endpoint (RFC 6749 §3.2, §4.1.3, §6).
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	form, oerr := oauthForm(w, r)
	if oerr == nil {
		var res *app.TokenResponse
		if res, oerr = s.svc.Token(r.Context(), form); oerr == nil {
			writeOAuthJSON(w, http.StatusOK, res)
			return
		}
	}
	if oerr.Status >= 500 {
		s.log.Error("oauth token", "err", oerr.Description)
		oerr = &app.OAuthError{Code: "server_error", Description: "internal error", Status: oerr.Status}
	}
	writeOAuthError(w, oerr)
}

// oauthRevoke is token revocation (RFC 7009).
func (s *Server) oauthRevoke(w http.ResponseWriter, r *http.Request) {
	form, oerr := oauthForm(w, r)
	if oerr == nil {
		if oerr = s.svc.RevokeToken(r.Context(), form); oerr == nil {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	if oerr.Status >= 500 {
		s.log.Error("oauth revoke", "err", oerr.Description)
		oerr = &app.OAuthError{Code: "server_error", Description: "internal error", Status: oerr.Status}
	}
	writeOAuthError(w, oerr)
}
