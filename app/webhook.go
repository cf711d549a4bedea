package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/flexhub/flexhub"
)

// Webhooks (flexhub.WebhookEndpoint, flexhub.WebhookDelivery,
// docs/WEBHOOKS.md). Every authenticated party manages its own endpoints
// and reads its own deliveries; nobody, not even the administrator, sees
// another party's (they carry the party's orders and the receiver's
// address), so another party's ids answer 404.
//
// Why an outbox: EmitEvent runs inside the transaction of the change that
// caused the event and writes one delivery row per subscribed endpoint, so
// an event exists exactly when its change committed. The dispatcher
// (RunWebhookDispatcher, or DispatchWebhooks for one pass) sends outside
// any transaction: it claims due deliveries with a versioned update that
// moves their next attempt a lease ahead (two instances on one PostgreSQL:
// the second update finds the version moved and skips the row), POSTs,
// then records the answer with another versioned update. A sender that
// dies between claim and record leaves the delivery due again when the
// lease ends: it is sent again with the same Webhook-Id (at least once;
// receivers deduplicate on it).

// WebhookActor is the actor of the dispatcher's own changes.
const WebhookActor = "flexhub-webhook"

// webhookWorkers bounds the sends in flight per instance; a slow receiver
// holds one worker for at most flexhub.WebhookTimeout.
const webhookWorkers = 32

// WebhookDispatchInterval is how often the dispatcher looks for due
// deliveries.
const WebhookDispatchInterval = 500 * time.Millisecond

// CreatedWebhookEndpoint is a new endpoint with its signing secret, the
// only answer that carries it.
type CreatedWebhookEndpoint struct {
	flexhub.WebhookEndpoint
	Secret string `json:"secret" readOnly:"true" doc:"the signing secret (whsec_...): shown only now (and to a retry with the same Idempotency-Key); verify each request's Webhook-Signature with it"`
}

// CreateWebhookEndpoint registers an endpoint of the caller.
func (s *Service) CreateWebhookEndpoint(ctx context.Context, spec flexhub.WebhookEndpointSpec, key string) (*Created[CreatedWebhookEndpoint], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	request := snapshot(spec)
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindWebhookEndpoint, request,
		func(tx flexhub.Tx, id string) (*CreatedWebhookEndpoint, error) {
			e, err := tx.WebhookEndpoint(ctx, id)
			if err != nil {
				return nil, err
			}
			return &CreatedWebhookEndpoint{WebhookEndpoint: *e, Secret: e.Secret}, nil
		},
		func(tx flexhub.Tx) (*CreatedWebhookEndpoint, string, error) {
			active, _, err := tx.ListWebhookEndpoints(ctx, flexhub.Filter{"party_id": by.ID, "status": flexhub.WebhookActive}, flexhub.Page{Limit: flexhub.MaxWebhookEndpoints + 1})
			if err != nil {
				return nil, "", err
			}
			if len(active) >= flexhub.MaxWebhookEndpoints {
				return nil, "", flexhub.RuleErrorf(flexhub.EConflict, "webhook.limit", "", "party %s has %d active webhook endpoints, the most allowed; disable one first", by.ID, len(active))
			}
			e := flexhub.NewWebhookEndpoint(by.ID, spec, s.now())
			if err := tx.CreateWebhookEndpoint(ctx, e); err != nil {
				return nil, "", err
			}
			if err := s.record(ctx, tx, by, "webhook_endpoint.created", flexhub.KindWebhookEndpoint, e.ID, e.Version, e); err != nil {
				return nil, "", err
			}
			return &CreatedWebhookEndpoint{WebhookEndpoint: *e, Secret: e.Secret}, e.ID, nil
		})
}

// ownEndpoint reads an endpoint of by, or answers 404.
func ownEndpoint(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string) (*flexhub.WebhookEndpoint, error) {
	e, err := tx.WebhookEndpoint(ctx, id)
	if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
		return nil, err
	}
	if err != nil || e.PartyID != by.ID {
		return nil, notFound("webhook endpoint", id)
	}
	return e, nil
}

// ownDelivery reads a delivery of by, or answers 404.
func ownDelivery(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string) (*flexhub.WebhookDelivery, error) {
	d, err := tx.WebhookDelivery(ctx, id)
	if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
		return nil, err
	}
	if err != nil || d.PartyID != by.ID {
		return nil, notFound("webhook delivery", id)
	}
	return d, nil
}

// GetWebhookEndpoint reads one of the caller's endpoints (without its
// secret).
func (s *Service) GetWebhookEndpoint(ctx context.Context, id string) (*flexhub.WebhookEndpoint, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.WebhookEndpoint, error) {
		return ownEndpoint(ctx, tx, by, id)
	})
}

// ListWebhookEndpoints lists the caller's endpoints; status narrows to
// active or disabled ones.
func (s *Service) ListWebhookEndpoints(ctx context.Context, status string, pg flexhub.Page) (*ListResult[flexhub.WebhookEndpoint], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{"party_id": by.ID}
	if status != "" {
		f["status"] = status
	}
	out := &ListResult[flexhub.WebhookEndpoint]{}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		out.Items, out.Next, err = tx.ListWebhookEndpoints(ctx, f, pg)
		return err
	})
	return out, err
}

// DisableWebhookEndpoint stops events to one of the caller's endpoints
// (version: the one the caller read, 0 for any). Its pending deliveries
// die at their next attempt; the endpoint and its deliveries stay
// readable. Disabling a disabled endpoint changes nothing.
func (s *Service) DisableWebhookEndpoint(ctx context.Context, id string, version int64) (*flexhub.WebhookEndpoint, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.WebhookEndpoint
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		e, err := ownEndpoint(ctx, tx, by, id)
		if err != nil {
			return err
		}
		if version != 0 {
			if err := checkVersion("webhook endpoint", id, version, e.Version); err != nil {
				return err
			}
		}
		out = e
		if !e.Disable(s.now()) {
			return nil
		}
		if err := tx.UpdateWebhookEndpoint(ctx, e); err != nil {
			return err
		}
		return s.record(ctx, tx, by, "webhook_endpoint.disabled", flexhub.KindWebhookEndpoint, e.ID, e.Version, e)
	})
	return out, err
}

// WebhookDeliveryFilter narrows a delivery list.
type WebhookDeliveryFilter struct {
	EndpointID string // one endpoint of the caller's; empty: all of them
	Status     string // pending, delivered, dead
}

// ListWebhookDeliveries lists the caller's deliveries, newest last; with
// Status "dead" it is the dead-letter view.
func (s *Service) ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter, pg flexhub.Page) (*ListResult[flexhub.WebhookDelivery], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	switch f.Status {
	case "", flexhub.WebhookPending, flexhub.WebhookDelivered, flexhub.WebhookDead:
	default:
		return nil, flexhub.FieldErrorf("query.status", "status %q: pending, delivered or dead", f.Status)
	}
	filter := flexhub.Filter{"party_id": by.ID}
	if f.Status != "" {
		filter["status"] = f.Status
	}
	out := &ListResult[flexhub.WebhookDelivery]{}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		if f.EndpointID != "" {
			if _, err := ownEndpoint(ctx, tx, by, f.EndpointID); err != nil {
				return err
			}
			filter["endpoint_id"] = f.EndpointID
		}
		out.Items, out.Next, err = tx.ListWebhookDeliveries(ctx, filter, pg)
		return err
	})
	return out, err
}

// GetWebhookDelivery reads one of the caller's deliveries.
func (s *Service) GetWebhookDelivery(ctx context.Context, id string) (*flexhub.WebhookDelivery, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.WebhookDelivery, error) {
		return ownDelivery(ctx, tx, by, id)
	})
}

// RedeliverWebhook queues one of the caller's dead (or delivered)
// deliveries again, due at once with a fresh retry schedule and the same
// event id. The endpoint must be active.
func (s *Service) RedeliverWebhook(ctx context.Context, id string) (*flexhub.WebhookDelivery, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.WebhookDelivery
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		d, err := ownDelivery(ctx, tx, by, id)
		if err != nil {
			return err
		}
		e, err := ownEndpoint(ctx, tx, by, d.EndpointID)
		if err != nil {
			return err
		}
		if e.Status != flexhub.WebhookActive {
			return flexhub.RuleErrorf(flexhub.EConflict, "webhook.endpoint.disabled", "id", "endpoint %s of delivery %s is disabled; register an endpoint again to receive events", e.ID, d.ID)
		}
		if err := d.Redeliver(s.now()); err != nil {
			return err
		}
		if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		out = d
		return s.record(ctx, tx, by, "webhook_delivery.redelivered", flexhub.KindWebhookDelivery, d.ID, d.Version, d)
	})
	return out, err
}

// TestWebhookEndpoint queues a ping event to one of the caller's active
// endpoints (whatever types it subscribed to) and returns its delivery.
func (s *Service) TestWebhookEndpoint(ctx context.Context, id string) (*flexhub.WebhookDelivery, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.WebhookDelivery
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		e, err := ownEndpoint(ctx, tx, by, id)
		if err != nil {
			return err
		}
		if e.Status != flexhub.WebhookActive {
			return flexhub.RuleErrorf(flexhub.EConflict, "webhook.endpoint.disabled", "id", "endpoint %s is disabled", e.ID)
		}
		now := s.now()
		eventID := flexhub.NewID()
		body, err := eventBody(eventID, flexhub.EventPing, by.ID, now, map[string]string{"endpoint_id": e.ID, "message": "ping from flexhub"})
		if err != nil {
			return err
		}
		d := flexhub.NewWebhookDelivery(e, eventID, flexhub.EventPing, body, now)
		if _, err := tx.CreateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		out = d
		return nil
	})
	return out, err
}

// EmitEvent hands an event for partyID to the party's active endpoints
// that subscribed to eventType: one pending delivery each, written in tx,
// the transaction of the change that caused the event, so the event is
// durable exactly when the change is. eventID names the event (the
// Webhook-Id header; [A-Za-z0-9._:-], made by flexhub); emitting the same
// id again for an endpoint adds nothing. payload becomes the envelope's
// data. A party without endpoints costs one indexed read.
func (s *Service) EmitEvent(ctx context.Context, tx flexhub.Tx, partyID, eventType string, eventID string, payload any) error {
	return s.EmitEvents(ctx, tx, []Event{{PartyID: partyID, Type: eventType, ID: eventID, Payload: payload}})
}

// Event is one event for EmitEvents.
type Event struct {
	PartyID, Type, ID string
	Payload           any
}

// EmitEvents is EmitEvent for many events in one transaction (an order
// batch): the endpoints of each party are read once.
func (s *Service) EmitEvents(ctx context.Context, tx flexhub.Tx, events []Event) error {
	endpoints := map[string][]*flexhub.WebhookEndpoint{}
	now := s.now()
	for _, ev := range events {
		if !flexhub.ValidEventID(ev.ID) {
			return fmt.Errorf("webhook event id %q: 1-200 characters of [A-Za-z0-9._:-]", ev.ID)
		}
		eps, ok := endpoints[ev.PartyID]
		if !ok {
			var err error
			eps, _, err = tx.ListWebhookEndpoints(ctx, flexhub.Filter{"party_id": ev.PartyID, "status": flexhub.WebhookActive}, flexhub.Page{Limit: flexhub.MaxPageLimit})
			if err != nil {
				return err
			}
			endpoints[ev.PartyID] = eps
		}
		var body []byte
		for _, e := range eps {
			if !e.Wants(ev.Type) {
				continue
			}
			if body == nil {
				var err error
				if body, err = eventBody(ev.ID, ev.Type, ev.PartyID, now, ev.Payload); err != nil {
					return err
				}
			}
			if _, err := tx.CreateWebhookDelivery(ctx, flexhub.NewWebhookDelivery(e, ev.ID, ev.Type, body, now)); err != nil {
				return err
			}
		}
	}
	return nil
}

func eventBody(id, typ, partyID string, at time.Time, data any) ([]byte, error) {
	b, err := json.Marshal(flexhub.WebhookEvent{ID: id, Type: typ, Timestamp: at, PartyID: partyID, Data: data})
	if err != nil {
		return nil, fmt.Errorf("encode webhook event %s: %w", id, err)
	}
	return b, nil
}

// claimedDelivery is a delivery this instance claimed, with its endpoint.
type claimedDelivery struct {
	d *flexhub.WebhookDelivery // as claimed (its version is the claim)
	e *flexhub.WebhookEndpoint
}

// claimWebhooks claims at most limit due deliveries in one transaction.
// A delivery whose endpoint was disabled dies instead.
func (s *Service) claimWebhooks(ctx context.Context, limit int) ([]claimedDelivery, error) {
	// A read first: most passes find nothing, and need no write
	// transaction (SQLite has one writer).
	var due []*flexhub.WebhookDelivery
	if err := s.store.View(ctx, func(tx flexhub.Tx) (err error) {
		due, err = tx.DueWebhookDeliveries(ctx, s.now(), 1)
		return err
	}); err != nil || len(due) == 0 {
		return nil, err
	}
	var out []claimedDelivery
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		out = out[:0]
		now := s.now()
		due, err := tx.DueWebhookDeliveries(ctx, now, limit)
		if err != nil {
			return err
		}
		endpoints := map[string]*flexhub.WebhookEndpoint{}
		for _, d := range due {
			e, ok := endpoints[d.EndpointID]
			if !ok {
				if e, err = tx.WebhookEndpoint(ctx, d.EndpointID); err != nil {
					return err
				}
				endpoints[d.EndpointID] = e
			}
			if e.Status != flexhub.WebhookActive {
				d.Kill(now, "endpoint disabled")
			} else if err := d.Claim(now); err != nil {
				continue
			}
			if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
				if flexhub.ErrorKind(err) == flexhub.EConflict {
					continue // another instance claimed it first
				}
				return err
			}
			if d.Status == flexhub.WebhookPending {
				out = append(out, claimedDelivery{d: d, e: e})
			}
		}
		return nil
	})
	return out, err
}

// DispatchWebhooks does one pass of the dispatcher: until nothing is
// due, it claims up to 32 due deliveries, sends them concurrently and
// records the answers; it returns how many attempts it made. (Claiming
// no more than it sends at once keeps every attempt well inside its
// lease.) Tests call it; a serve loop may call it from its own ticker,
// though RunWebhookDispatcher does not wait for a slow receiver before
// sending other deliveries.
func (s *Service) DispatchWebhooks(ctx context.Context, client *http.Client) (int, error) {
	client = webhookClient(client)
	total := 0
	for ctx.Err() == nil {
		claimed, err := s.claimWebhooks(ctx, webhookWorkers)
		if err != nil || len(claimed) == 0 {
			return total, err
		}
		var wg sync.WaitGroup
		for _, c := range claimed {
			wg.Go(func() { s.sendWebhook(ctx, client, c) })
		}
		wg.Wait()
		total += len(claimed)
	}
	return total, nil
}

// RunWebhookDispatcher sends due webhook deliveries until ctx ends, with
// at most 32 sends in flight; it looks for due deliveries every
// WebhookDispatchInterval and returns once the sends in flight are
// recorded (an interrupted send is released, due again at once), so call
// it before the store closes. client may be nil (a default client); its
// redirects are never followed (a 3xx is a failure) and each request has
// flexhub.WebhookTimeout.
func (s *Service) RunWebhookDispatcher(ctx context.Context, client *http.Client) {
	client = webhookClient(client)
	sem := make(chan struct{}, webhookWorkers)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(WebhookDispatchInterval)
	defer tick.Stop()
	for {
		if free := cap(sem) - len(sem); free > 0 {
			claimed, err := s.claimWebhooks(ctx, free)
			if err != nil && ctx.Err() == nil {
				s.log.Error("webhook dispatcher: claim", "err", err)
			}
			for _, c := range claimed {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					s.sendWebhook(ctx, client, c)
				})
			}
			if len(claimed) == free && ctx.Err() == nil {
				continue // a backlog: claim more as workers free up
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// NewWebhookClient returns the HTTP client for `flexhub serve`'s
// dispatcher. Unless allowPrivate, it refuses to connect to loopback,
// private (RFC 1918, fc00::/7), shared (100.64.0.0/10), link-local (cloud
// metadata at 169.254.169.254), unspecified and multicast addresses,
// checked on the address actually dialled (after DNS, so a name that
// resolves inward is refused too): a party must not make flexhub POST into
// the operator's own network. An egress proxy from the environment
// (HTTPS_PROXY) is dialled like any address, so a proxy on a private
// address needs allowPrivate (and does the filtering itself).
func NewWebhookClient(allowPrivate bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: flexhub.WebhookTimeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !PublicAddress(ip) {
				return fmt.Errorf("webhook: %s is not a public address; flexhub sends events to public addresses only", host)
			}
			return nil
		}
	}
	tr.DialContext = d.DialContext
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: flexhub.WebhookTimeout}
}

var sharedAddressSpace = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

// PublicAddress reports whether ip is a public unicast address (what
// NewWebhookClient dials).
func PublicAddress(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || sharedAddressSpace.Contains(ip))
}

// webhookClient copies client so that redirects are not followed: a 3xx
// is a failed attempt (Standard Webhooks), and a receiver cannot redirect
// signed events elsewhere.
func webhookClient(client *http.Client) *http.Client {
	c := &http.Client{}
	if client != nil {
		*c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// sendWebhook makes one attempt and records its outcome. The record is
// written even when ctx ends meanwhile (a few seconds at most), so that a
// shutdown neither loses a 2xx nor leaves the claim to run out.
func (s *Service) sendWebhook(ctx context.Context, client *http.Client, c claimedDelivery) {
	code, retryAfter, sendErr := s.post(ctx, client, c)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if sendErr != nil && ctx.Err() != nil {
		// Shutting down: the receiver may not have had it; give the
		// attempt back rather than count it.
		s.recordWebhook(rctx, c, func(d *flexhub.WebhookDelivery, now time.Time) { d.Release(now) })
		return
	}
	delivered := sendErr == nil
	if code == http.StatusGone {
		// Standard Webhooks: 410 is the receiver saying it wants no more.
		s.endpointGone(rctx, c, sendErr.Error())
		return
	}
	s.recordWebhook(rctx, c, func(d *flexhub.WebhookDelivery, now time.Time) {
		if delivered {
			d.Succeed(now, code)
			return
		}
		d.Fail(now, code, sendErr.Error(), retryAfter, rand.Float64())
		if d.Status == flexhub.WebhookDead {
			s.log.Warn("webhook delivery dead", "delivery", d.ID, "event", d.EventID, "party", d.PartyID, "attempts", d.Attempts, "err", d.LastError)
		} else {
			s.log.Debug("webhook attempt failed", "delivery", d.ID, "event", d.EventID, "attempt", d.Attempts, "next", d.NextAttemptAt, "err", d.LastError)
		}
	})
	if delivered && c.d.EventType == flexhub.EventActivationOrder {
		var env struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if json.Unmarshal(c.d.Payload, &env) == nil && env.Data.ID != "" {
			if err := s.MarkOrderDelivered(rctx, env.Data.ID, "webhook"); err != nil {
				s.log.Warn("webhook: record order delivered", "order", env.Data.ID, "err", err)
			}
		}
	}
}

// errStatus is a non-2xx answer.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string {
	msg := fmt.Sprintf("HTTP %d %s", e.code, http.StatusText(e.code))
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

// post sends one signed attempt. It returns the HTTP status (0 without
// an answer), the receiver's Retry-After, and an error for anything but
// 2xx.
func (s *Service) post(ctx context.Context, client *http.Client, c claimedDelivery) (int, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, flexhub.WebhookTimeout)
	defer cancel()
	ts := s.now().Unix()
	sig, err := flexhub.SignWebhook(c.e.Secret, c.d.EventID, ts, c.d.Payload)
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.e.URL, bytes.NewReader(c.d.Payload))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flexhub-webhooks/1")
	req.Header.Set("Webhook-Id", c.d.EventID)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("Webhook-Signature", sig)
	res, err := client.Do(req)
	if err != nil {
		return 0, 0, errors.New(cleanText(strings.ReplaceAll(err.Error(), c.e.URL, "endpoint"), 300))
	}
	defer res.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, 200))
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	if res.StatusCode >= 200 && res.StatusCode <= 299 {
		return res.StatusCode, 0, nil
	}
	var after time.Duration
	if v, err := strconv.Atoi(strings.TrimSpace(res.Header.Get("Retry-After"))); err == nil && v > 0 {
		after = time.Duration(v) * time.Second
	}
	return res.StatusCode, after, &errStatus{code: res.StatusCode, body: cleanText(string(snippet), 200)}
}

// cleanText keeps a receiver's words storable and short: valid UTF-8, no
// control characters, at most n bytes.
func cleanText(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// endpointGone records a 410 answer: the delivery is dead and the
// endpoint disabled (audited, by WebhookActor), so its other pending
// deliveries die unsent at their next attempt and no new events are
// written for it.
func (s *Service) endpointGone(ctx context.Context, c claimedDelivery, msg string) {
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		d, err := tx.WebhookDelivery(ctx, c.d.ID)
		if err != nil {
			return err
		}
		if d.Version != c.d.Version {
			return flexhub.Errorf(flexhub.EConflict, "claim of webhook delivery %s lost (version %d, claimed %d)", d.ID, d.Version, c.d.Version)
		}
		now := s.now()
		d.Kill(now, msg+" (endpoint disabled: the receiver answered 410 Gone)")
		d.LastStatusCode = http.StatusGone
		if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		e, err := tx.WebhookEndpoint(ctx, d.EndpointID)
		if err != nil || !e.Disable(now) {
			return err
		}
		if err := tx.UpdateWebhookEndpoint(ctx, e); err != nil {
			return err
		}
		return s.recordAs(ctx, tx, WebhookActor, "webhook_endpoint.disabled", flexhub.KindWebhookEndpoint, e.ID, e.Version, e, e.PartyID)
	})
	if err != nil {
		s.log.Warn("webhook: record 410", "delivery", c.d.ID, "err", err)
		return
	}
	s.log.Warn("webhook endpoint disabled: the receiver answered 410 Gone", "endpoint", c.e.ID, "party", c.e.PartyID)
}

// recordWebhook applies an attempt's outcome to the delivery if this
// instance's claim still holds (the version did not move); otherwise the
// lease ran out and another sender took over, and the outcome is logged
// only.
func (s *Service) recordWebhook(ctx context.Context, c claimedDelivery, apply func(d *flexhub.WebhookDelivery, now time.Time)) {
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		d, err := tx.WebhookDelivery(ctx, c.d.ID)
		if err != nil {
			return err
		}
		if d.Version != c.d.Version {
			return flexhub.Errorf(flexhub.EConflict, "claim of webhook delivery %s lost (version %d, claimed %d)", d.ID, d.Version, c.d.Version)
		}
		apply(d, s.now())
		return tx.UpdateWebhookDelivery(ctx, d)
	})
	if err != nil {
		s.log.Warn("webhook: record attempt", "delivery", c.d.ID, "event", c.d.EventID, "err", err)
	}
}
