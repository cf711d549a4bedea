package flexhub

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Webhooks: events for parties that cannot hold an MQTT connection. A
// party registers WebhookEndpoints (an https URL and the event types it
// wants); every event that concerns the party is written, in the
// transaction of the change that caused it, as one WebhookDelivery per
// subscribed endpoint: an outbox row. A dispatcher sends due deliveries
// outside any transaction, signed the Standard Webhooks way
// (docs/WEBHOOKS.md), and retries with exponential backoff until the
// receiver answers 2xx or the retry period ends: then the delivery is
// dead, listed in the dead-letter view, and can be sent again on request.
// The state is the database, so a restart loses nothing and two instances
// on one PostgreSQL never claim the same attempt.

// Object kinds of webhooks, as in audit entries and history.
const (
	KindWebhookEndpoint = "webhook_endpoint"
	KindWebhookDelivery = "webhook_delivery"
)

// Webhook endpoint statuses. A disabled endpoint gets no new events and
// its pending deliveries die at their next attempt; it stays readable
// with its deliveries.
const (
	WebhookActive   = "active"
	WebhookDisabled = "disabled"
)

// Webhook delivery statuses.
const (
	WebhookPending   = "pending"   // waiting for its next attempt (or being sent)
	WebhookDelivered = "delivered" // the receiver answered 2xx
	WebhookDead      = "dead"      // retries exhausted, or the endpoint was disabled
)

// Event types an endpoint may subscribe to. EventPing is what the test
// action sends (to one endpoint, whatever it subscribed to); "*"
// subscribes to every type, including types added later.
const (
	EventPing             = "ping"
	EventActivationOrder  = "activation.order"
	EventActivationStatus = "activation.status"
	EventActivationAlert  = "activation.alert"
	EventAll              = "*"
)

// WebhookEventTypes lists the event types flexhub emits.
var WebhookEventTypes = []string{EventActivationOrder, EventActivationStatus, EventActivationAlert, EventPing}

// Delivery policy. The timeout gives a receiver time to store the event
// (Standard Webhooks suggests 15-30 s; we keep a slow receiver from
// holding a sender longer than a gate-closure tick matters). The retry
// schedule doubles from 5 s to at most 1 h with ±20 % jitter, so a
// receiver that comes back gets its backlog within the hour and a fleet of
// failing deliveries does not retry in lockstep; after 24 h of failures a
// delivery is dead. The lease is how long a claimed attempt is not due
// again: longer than the timeout, so only a crashed sender's attempt is
// retried by another instance.
const (
	WebhookTimeout      = 10 * time.Second
	WebhookFirstRetry   = 5 * time.Second
	WebhookMaxRetry     = time.Hour
	WebhookRetryPeriod  = 24 * time.Hour
	WebhookLease        = time.Minute
	WebhookJitter       = 0.2
	MaxWebhookEndpoints = 20
	maxWebhookURL       = 2048
	webhookSecretBytes  = 32
	webhookSecretPrefix = "whsec_"
)

// WebhookEndpointSpec is what a party sends to register an endpoint.
type WebhookEndpointSpec struct {
	URL         string   `json:"url" maxLength:"2048" doc:"where events are POSTed: https; http only to a loopback address (127.0.0.1, ::1, localhost)"`
	EventTypes  []string `json:"event_types" nullable:"false" minItems:"1" maxItems:"20" doc:"the event types to receive: activation.order, activation.status, activation.alert, ping, or * for all"`
	Description string   `json:"description,omitempty" maxLength:"200"`
}

// Validate checks and normalises the spec (trimmed, event types without
// duplicates).
func (s *WebhookEndpointSpec) Validate() error {
	s.URL = strings.TrimSpace(s.URL)
	s.Description = strings.TrimSpace(s.Description)
	if err := ValidateWebhookURL("url", s.URL); err != nil {
		return err
	}
	if len(s.EventTypes) == 0 {
		return RuleErrorf(EInvalid, "webhook.event_type", "event_types", "name at least one event type: %s, or * for all", strings.Join(WebhookEventTypes, ", "))
	}
	var types []string
	for i, t := range s.EventTypes {
		t = strings.TrimSpace(t)
		if t != EventAll && !slices.Contains(WebhookEventTypes, t) {
			return RuleErrorf(EInvalid, "webhook.event_type", fieldIndex("event_types", i), "unknown event type %q: flexhub emits %s (or * for all)", t, strings.Join(WebhookEventTypes, ", "))
		}
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	s.EventTypes = types
	return nil
}

// ValidateWebhookURL checks a receiver URL: absolute, https (http only to
// a loopback host, for local receivers and tests), a host, no user
// information (it would be stored and shown) and no fragment.
func ValidateWebhookURL(field, raw string) error {
	if raw == "" {
		return RuleErrorf(EInvalid, "webhook.url", field, "give the URL events are POSTed to, e.g. https://example.com/flexhub/events")
	}
	if len(raw) > maxWebhookURL {
		return RuleErrorf(EInvalid, "webhook.url", field, "the URL has %d characters, at most %d are allowed", len(raw), maxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return RuleErrorf(EInvalid, "webhook.url", field, "%q is not an absolute URL such as https://example.com/flexhub/events", raw)
	}
	if u.User != nil {
		return RuleErrorf(EInvalid, "webhook.url", field, "the URL must not carry user information: authenticate the events by their signature")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return RuleErrorf(EInvalid, "webhook.url", field, "the URL must not have a fragment (#...)")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return RuleErrorf(EInvalid, "webhook.url.scheme", field, "events are sent over https only; http is allowed to a loopback address (127.0.0.1, ::1, localhost), not to %q", u.Hostname())
		}
	default:
		return RuleErrorf(EInvalid, "webhook.url.scheme", field, "scheme %q: events are sent over https (http only to a loopback address)", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return RuleErrorf(EInvalid, "webhook.url", field, "port %q is not a port number", p)
		}
	}
	return nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// WebhookEndpoint is a party's registered receiver. Its signing secret is
// generated by flexhub, shown once when the endpoint is created, and kept
// out of every other answer, the history and the audit payload (json:"-").
type WebhookEndpoint struct {
	ID string `json:"id" readOnly:"true"`
	WebhookEndpointSpec
	PartyID    string     `json:"party_id" readOnly:"true"`
	Status     string     `json:"status" enum:"active,disabled" readOnly:"true"`
	Secret     string     `json:"-"`
	DisabledAt *time.Time `json:"disabled_at,omitempty" readOnly:"true"`
	Version    int64      `json:"version" readOnly:"true"`
	CreatedAt  time.Time  `json:"created_at" readOnly:"true"`
	UpdatedAt  time.Time  `json:"updated_at" readOnly:"true"`
}

// NewWebhookEndpoint returns an active endpoint of party with a fresh
// secret.
func NewWebhookEndpoint(partyID string, spec WebhookEndpointSpec, now time.Time) *WebhookEndpoint {
	return &WebhookEndpoint{ID: NewID(), WebhookEndpointSpec: spec, PartyID: partyID, Status: WebhookActive,
		Secret: NewWebhookSecret(), CreatedAt: now, UpdatedAt: now}
}

// Wants reports whether the endpoint takes events of type typ.
func (e *WebhookEndpoint) Wants(typ string) bool {
	return e.Status == WebhookActive && (slices.Contains(e.EventTypes, typ) || slices.Contains(e.EventTypes, EventAll))
}

// Disable stops new events to the endpoint. It reports whether anything
// changed (disabling twice is no error).
func (e *WebhookEndpoint) Disable(now time.Time) bool {
	if e.Status == WebhookDisabled {
		return false
	}
	e.Status, e.DisabledAt, e.UpdatedAt = WebhookDisabled, &now, now
	return true
}

// NewWebhookSecret returns a signing secret in the Standard Webhooks
// form: "whsec_" and the base64 of 32 random bytes.
func NewWebhookSecret() string {
	b := make([]byte, webhookSecretBytes)
	if _, err := rand.Read(b); err != nil {
		panic("flexhub: no randomness for a webhook secret: " + err.Error())
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SignWebhook returns the Webhook-Signature header value of one attempt:
// "v1," and the base64 of HMAC-SHA256 over "id.timestamp.body", keyed with
// the secret's bytes (the base64 after "whsec_").
func SignWebhook(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, webhookSecretPrefix))
	if err != nil {
		return "", fmt.Errorf("webhook secret is not base64: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// VerifyWebhook checks a Webhook-Signature header (a space-separated list
// of "v1,<base64>") against the secret, in constant time.
func VerifyWebhook(secret, id string, timestamp int64, body []byte, header string) bool {
	want, err := SignWebhook(secret, id, timestamp, body)
	if err != nil {
		return false
	}
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// WebhookEvent is the body of every webhook request (the Standard
// Webhooks envelope): the event id (also the Webhook-Id header, the same
// on every attempt), its type, when it happened, the party it is for and
// the event's data.
type WebhookEvent struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	PartyID   string    `json:"party_id"`
	Data      any       `json:"data"`
}

// ValidEventID reports whether id may be an event id: 1-200 characters
// of [A-Za-z0-9._:-]. Event ids are made by flexhub, never by callers;
// they are signed as the first part of "id.timestamp.body".
func ValidEventID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// WebhookDelivery is one event on its way to one endpoint: an outbox row
// with the state of its attempts.
type WebhookDelivery struct {
	ID             string          `json:"id" readOnly:"true"`
	EndpointID     string          `json:"endpoint_id" readOnly:"true"`
	PartyID        string          `json:"party_id" readOnly:"true"`
	EventID        string          `json:"event_id" readOnly:"true" doc:"also the Webhook-Id header: the same on every attempt, so receivers deduplicate"`
	EventType      string          `json:"event_type" readOnly:"true"`
	Payload        json.RawMessage `json:"payload" readOnly:"true" doc:"the request body, byte for byte as sent (the event envelope)"`
	Status         string          `json:"status" enum:"pending,delivered,dead" readOnly:"true"`
	Attempts       int             `json:"attempts" readOnly:"true" doc:"attempts since the event (or its last redelivery)"`
	NextAttemptAt  *time.Time      `json:"next_attempt_at,omitempty" readOnly:"true" doc:"while pending: when the next attempt is due"`
	RetryUntil     time.Time       `json:"retry_until" readOnly:"true" doc:"a failed attempt at or after this time makes the delivery dead"`
	LastAttemptAt  *time.Time      `json:"last_attempt_at,omitempty" readOnly:"true"`
	LastStatusCode int             `json:"last_status_code,omitempty" readOnly:"true" doc:"the receiver's HTTP status at the last attempt; absent when it gave none (connection refused, timeout)"`
	LastError      string          `json:"last_error,omitempty" readOnly:"true"`
	DeliveredAt    *time.Time      `json:"delivered_at,omitempty" readOnly:"true"`
	Version        int64           `json:"version" readOnly:"true"`
	CreatedAt      time.Time       `json:"created_at" readOnly:"true"`
	UpdatedAt      time.Time       `json:"updated_at" readOnly:"true"`
}

// NewWebhookDelivery returns a delivery of an event to endpoint e, due at
// once.
func NewWebhookDelivery(e *WebhookEndpoint, eventID, eventType string, payload []byte, now time.Time) *WebhookDelivery {
	return &WebhookDelivery{ID: NewID(), EndpointID: e.ID, PartyID: e.PartyID, EventID: eventID, EventType: eventType,
		Payload: payload, Status: WebhookPending, NextAttemptAt: &now, RetryUntil: now.Add(WebhookRetryPeriod),
		CreatedAt: now, UpdatedAt: now}
}

// Due reports whether the delivery waits for an attempt at now.
func (d *WebhookDelivery) Due(now time.Time) bool {
	return d.Status == WebhookPending && d.NextAttemptAt != nil && !now.Before(*d.NextAttemptAt)
}

// Claim starts an attempt: it counts it and moves the next attempt a
// lease ahead, so that no other sender takes the delivery while this one
// is sending (unless this one dies: then the delivery is due again when
// the lease ends, and is sent again with the same event id).
func (d *WebhookDelivery) Claim(now time.Time) error {
	if !d.Due(now) {
		return Errorf(EConflict, "webhook delivery %s is %s and not due at %s", d.ID, d.Status, now.Format(time.RFC3339))
	}
	next := now.Add(WebhookLease)
	d.Attempts++
	d.LastAttemptAt, d.NextAttemptAt, d.UpdatedAt = &now, &next, now
	return nil
}

// Release undoes a claim whose attempt never reached the receiver
// (the sender shut down first): due again at now, the attempt uncounted.
func (d *WebhookDelivery) Release(now time.Time) {
	if d.Status != WebhookPending {
		return
	}
	if d.Attempts > 0 {
		d.Attempts--
	}
	d.NextAttemptAt, d.UpdatedAt = &now, now
}

// Succeed records a 2xx answer.
func (d *WebhookDelivery) Succeed(now time.Time, code int) {
	d.Status, d.DeliveredAt, d.NextAttemptAt = WebhookDelivered, &now, nil
	d.LastStatusCode, d.LastError, d.UpdatedAt = code, "", now
}

// Fail records a failed attempt (code 0: no HTTP answer) and schedules
// the next one after WebhookBackoff, or after retryAfter when the
// receiver asked for longer (Retry-After, at most WebhookMaxRetry), never
// past RetryUntil; a failure at or after RetryUntil makes the delivery
// dead. jitter is a random number in [0, 1).
func (d *WebhookDelivery) Fail(now time.Time, code int, msg string, retryAfter time.Duration, jitter float64) {
	d.LastStatusCode, d.LastError, d.UpdatedAt = code, msg, now
	if !now.Before(d.RetryUntil) {
		d.Status, d.NextAttemptAt = WebhookDead, nil
		return
	}
	wait := WebhookBackoff(d.Attempts, jitter)
	if retryAfter > wait {
		wait = min(retryAfter, WebhookMaxRetry)
	}
	next := now.Add(wait)
	if next.After(d.RetryUntil) {
		next = d.RetryUntil
	}
	d.NextAttemptAt = &next
}

// Kill makes a pending delivery dead without an attempt (its endpoint was
// disabled).
func (d *WebhookDelivery) Kill(now time.Time, reason string) {
	d.Status, d.NextAttemptAt, d.LastError, d.UpdatedAt = WebhookDead, nil, reason, now
}

// Redeliver queues a dead (or delivered) delivery again, due at once
// with a fresh retry schedule and period; the event id stays, so a
// receiver that had it already can tell.
func (d *WebhookDelivery) Redeliver(now time.Time) error {
	if d.Status == WebhookPending {
		return RuleErrorf(EConflict, "webhook.delivery.pending", "id", "webhook delivery %s is still pending (next attempt %s); it is retried without asking", d.ID, d.NextAttemptAt.Format(time.RFC3339))
	}
	d.Status, d.Attempts, d.NextAttemptAt, d.RetryUntil, d.DeliveredAt, d.UpdatedAt = WebhookPending, 0, &now, now.Add(WebhookRetryPeriod), nil, now
	return nil
}

// WebhookBackoff is the wait after the attempt-th failed attempt:
// WebhookFirstRetry doubling per attempt up to WebhookMaxRetry, scaled by
// 1 ± WebhookJitter (jitter in [0, 1) picks where).
func WebhookBackoff(attempt int, jitter float64) time.Duration {
	d := WebhookFirstRetry
	for i := 1; i < attempt && d < WebhookMaxRetry; i++ {
		d *= 2
	}
	d = min(d, WebhookMaxRetry)
	return time.Duration(float64(d) * (1 - WebhookJitter + 2*WebhookJitter*jitter))
}

// WebhookTx is the part of Tx that stores webhook endpoints and deliveries.
type WebhookTx interface {
	CreateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	UpdateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	// WebhookEndpoint and ListWebhookEndpoints return endpoints with
	// their Secret.
	WebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error)
	// ListWebhookEndpoints filters on "party_id", "status".
	ListWebhookEndpoints(ctx context.Context, f Filter, pg Page) ([]*WebhookEndpoint, string, error)

	// CreateWebhookDelivery stores d unless d's endpoint has a delivery of
	// d.EventID already; it reports whether it stored d. A duplicate is
	// no error and leaves the transaction usable, so an event emitted
	// twice is delivered once.
	CreateWebhookDelivery(ctx context.Context, d *WebhookDelivery) (bool, error)
	// UpdateWebhookDelivery is optimistic like every update (EConflict
	// when the stored version moved on). Deliveries keep no history: the
	// row is the state of the attempts.
	UpdateWebhookDelivery(ctx context.Context, d *WebhookDelivery) error
	WebhookDelivery(ctx context.Context, id string) (*WebhookDelivery, error)
	// ListWebhookDeliveries filters on "endpoint_id", "party_id",
	// "status", "event_id".
	ListWebhookDeliveries(ctx context.Context, f Filter, pg Page) ([]*WebhookDelivery, string, error)
	// DueWebhookDeliveries lists, earliest first, at most limit pending
	// deliveries whose next attempt is due at now (index on status,
	// next_attempt_at).
	DueWebhookDeliveries(ctx context.Context, now time.Time, limit int) ([]*WebhookDelivery, error)
}
