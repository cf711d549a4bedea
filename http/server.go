// Package http serves flexhub's REST API: JSON over HTTP, described by an
// OpenAPI 3.1 document generated from the handlers themselves (huma), so
// the document cannot drift from the code. Handlers only translate between
// HTTP and the app layer.
package http

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/ui"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the HTTP face of one app.Service.
type Server struct {
	svc      *app.Service
	log      *slog.Logger
	api      huma.API
	mux      *http.ServeMux
	handler  http.Handler
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	version  string
}

// NewServer builds the API and its operational endpoints.
func NewServer(svc *app.Service, log *slog.Logger, version string) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, log: log, mux: http.NewServeMux(), version: version, registry: prometheus.NewRegistry()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flexhub_http_requests_total", Help: "HTTP requests by operation and status."}, []string{"operation", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flexhub_http_request_duration_seconds", Help: "HTTP request latency by operation.", Buckets: prometheus.DefBuckets}, []string{"operation"})
	s.registry.MustRegister(s.requests, s.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cfg := huma.DefaultConfig("flexhub API", version)
	cfg.CreateHooks = nil // no $schema links in bodies: clients send back what they read
	cfg.Info.Description = "The flexibility register, prequalification, contracts and market (needs, sessions, bids, notifications) of flexhub. " +
		"Authenticate every call with `Authorization: Bearer <API key>`. Errors are RFC 9457 problem+json. " +
		"Creates accept an `Idempotency-Key` header; updates require `If-Match` with the ETag (version) you read. " +
		"Quantities carry units ({\"value\": 5, \"unit\": \"kW\"}); times are ISO 8601 UTC."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "flexhub API key (fh_<id>_<secret>)"},
	}
	cfg.Security = []map[string][]string{{"bearer": {}}}
	s.api = humago.New(s.mux, cfg)
	s.api.UseMiddleware(s.authenticate)

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	console := ui.Handler()
	s.mux.Handle("GET /{$}", console)
	s.mux.Handle("GET /ui/", console)

	s.registerParties()
	s.registerAudit()
	for _, register := range extraRoutes {
		register(s)
	}
	s.handler = s.observe(s.mux)
	return s
}

// extraRoutes lets each resource file add its operations from init, so
// files stay independent.
var extraRoutes []func(*Server)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// API returns the huma API (for the OpenAPI document).
func (s *Server) API() huma.API { return s.api }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if err := s.svc.Store().Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"store unavailable"}`))
		return
	}
	w.Write([]byte(`{"status":"ready"}`))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe logs every request and feeds the metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p == http.ErrAbortHandler {
				// A streamed response that failed midway: let net/http
				// break the connection, so the client never takes the
				// partial body for a complete one.
				rec.status = 0
				defer panic(p)
			} else if p != nil {
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", p)
				http.Error(rec, `{"title":"Internal Server Error","status":500}`, http.StatusInternalServerError)
			}
			op := r.Pattern
			if op == "" {
				op = "unmatched"
			}
			s.requests.WithLabelValues(op, strconv.Itoa(rec.status)).Inc()
			s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// authenticate runs before every API operation: no operation is public.
// Denied calls are logged with the party (when known) and the path.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	h := ctx.Header("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		s.log.Warn("denied: no credential", "method", ctx.Method(), "path", ctx.URL().Path, "remote", ctx.RemoteAddr())
		huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "authenticate with an API key: Authorization: Bearer <key>")
		return
	}
	if strings.HasPrefix(token, app.OAuthTokenPrefix) { // Connect My Data (http/oauth.go)
		s.authenticateOAuth(ctx, strings.TrimSpace(token), next)
		return
	}
	party, err := s.svc.Authenticate(ctx.Context(), strings.TrimSpace(token))
	if err != nil {
		status := statusOf[flexhub.ErrorKind(err)]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		s.log.Warn("denied: bad credential", "method", ctx.Method(), "path", ctx.URL().Path, "remote", ctx.RemoteAddr(), "reason", flexhub.ErrorMessage(err))
		huma.WriteErr(s.api, ctx, status, flexhub.ErrorMessage(err))
		return
	}
	ctx = huma.WithValue(ctx, partyKey{}, party)
	ctx = huma.WithContext(ctx, app.WithActor(ctx.Context(), party))
	next(ctx)
	if st := ctx.Status(); st == http.StatusForbidden || st == http.StatusUnauthorized {
		s.log.Warn("denied", "party", party.ID, "eic", party.EIC, "method", ctx.Method(), "path", ctx.URL().Path, "status", st)
	}
}

type partyKey struct{}

// Common inputs and outputs.

// PageInput is cursor pagination.
type PageInput struct {
	After string `query:"after" doc:"cursor: the next_cursor of the previous page"`
	Limit int    `query:"limit" minimum:"0" maximum:"500" doc:"page size, default 50, at most 500"`
}

func (p PageInput) page() flexhub.Page { return flexhub.Page{After: p.After, Limit: p.Limit} }

// ListBody is one page of a list.
type ListBody[T any] struct {
	Items      []*T   `json:"items" nullable:"false"`
	NextCursor string `json:"next_cursor,omitempty" doc:"pass as ?after= for the next page; absent on the last page"`
}

// ListOutput is a page of a list.
type ListOutput[T any] struct {
	Body ListBody[T]
}

func listOutput[T any](items []*T, next string) *ListOutput[T] {
	if items == nil {
		items = []*T{}
	}
	return &ListOutput[T]{Body: ListBody[T]{Items: items, NextCursor: next}}
}

// IDPath is an object id in the path.
type IDPath struct {
	ID string `path:"id" doc:"object id"`
}

// IdempotencyInput is the header that makes a create safe to retry.
type IdempotencyInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"200" doc:"a retried request with the same key and body returns the first result instead of creating twice"`
}

// IfMatchInput carries the version the client read.
type IfMatchInput struct {
	IfMatch string `header:"If-Match" required:"true" doc:"the ETag you read; the update fails with 409 if the object changed since"`
}

func (i IfMatchInput) version() (int64, error) {
	v := strings.Trim(strings.TrimPrefix(strings.TrimSpace(i.IfMatch), "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, &flexhub.Error{Kind: flexhub.EInvalid, Field: "If-Match", Message: "If-Match must be the ETag you read, e.g. \"3\""}
	}
	return n, nil
}

// ObjectOutput is one object with its ETag.
type ObjectOutput[T any] struct {
	ETag     string `header:"ETag"`
	Location string `header:"Location"`
	Replayed string `header:"Idempotent-Replayed" doc:"true when this answers a retry of an earlier request"`
	Body     *T
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

func object[T any](obj *T, version int64) *ObjectOutput[T] {
	return &ObjectOutput[T]{ETag: etag(version), Body: obj}
}

func created[T any](c *app.Created[T], version int64, location string) *ObjectOutput[T] {
	out := &ObjectOutput[T]{ETag: etag(version), Location: location, Body: c.Object}
	if c.Replayed {
		out.Replayed = "true"
	}
	return out
}
