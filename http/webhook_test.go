package http_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/sqlite"
)

// Webhooks through the real HTTP server, on SQLite and PostgreSQL: a
// receiver (httptest.Server) that checks every signature the Standard
// Webhooks way, and that can be made to answer 503, drop the connection
// or hang. The service runs on a clock the test moves, so no test sleeps
// through a backoff; DispatchWebhooks is one pass of the dispatcher.

func TestWebhooks(t *testing.T) {
	for name, open := range webhookStores() {
		t.Run(name, func(t *testing.T) {
			t.Run("DeliveredAndSigned", func(t *testing.T) { testWebhookDelivered(t, newWebhookWorld(t, open(t))) })
			t.Run("RetriesUntilBack", func(t *testing.T) { testWebhookRetries(t, newWebhookWorld(t, open(t))) })
			t.Run("DeadLetterAndRedeliver", func(t *testing.T) { testWebhookDeadLetter(t, newWebhookWorld(t, open(t))) })
			t.Run("OtherParties", func(t *testing.T) { testWebhookIsolation(t, newWebhookWorld(t, open(t))) })
			t.Run("BadInput", func(t *testing.T) { testWebhookBadInput(t, newWebhookWorld(t, open(t))) })
			t.Run("Disable", func(t *testing.T) { testWebhookDisable(t, newWebhookWorld(t, open(t))) })
			t.Run("InterruptedAttempts", func(t *testing.T) { testWebhookInterrupted(t, newWebhookWorld(t, open(t))) })
			t.Run("TwoInstances", func(t *testing.T) { testWebhookTwoInstances(t, newWebhookWorld(t, open(t))) })
		})
	}
}

func webhookStores() map[string]func(t *testing.T) flexhub.Store {
	return map[string]func(t *testing.T) flexhub.Store{
		"sqlite": func(t *testing.T) flexhub.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "flexhub.db"), true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) flexhub.Store { return openPostgres(t) },
	}
}

// receiver is a webhook receiver under the test's control.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string // of every endpoint registered for it
	mode    string   // ok, 503, reset (connection dropped), hang (until the sender gives up)
	got     []received
	seen    chan struct{} // one tick per request
}

type received struct {
	id, mode string
	ts       int64
	body     []byte
	event    flexhub.WebhookEvent
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, mode: "ok", seen: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// serve checks the request like a careful receiver: method, content type,
// the three headers, the signature (computed here independently of
// flexhub's code) and the envelope.
func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	mode, secrets := r.mode, r.secrets
	id, tsRaw, sigs := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		r.t.Errorf("webhook-timestamp %q is not Unix seconds", tsRaw)
	}
	ok := false
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || !strings.HasPrefix(secret, "whsec_") || len(key) < 24 {
			r.t.Errorf("secret %q is not whsec_ and base64 of at least 24 bytes", secret)
		}
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%s.%s", id, tsRaw, body)
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		for _, s := range strings.Fields(sigs) {
			ok = ok || hmac.Equal([]byte(s), []byte(want))
		}
	}
	if !ok {
		r.t.Errorf("bad signature %q for id %q ts %q body %s", sigs, id, tsRaw, body)
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("%s with content type %q, want a JSON POST", req.Method, req.Header.Get("Content-Type"))
	}
	var ev flexhub.WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id || ev.Type == "" {
		r.t.Errorf("envelope %s (id header %q): %v", body, id, err)
	}
	r.got = append(r.got, received{id: id, mode: mode, ts: ts, body: body, event: ev})
	r.mu.Unlock()
	r.seen <- struct{}{}
	switch mode {
	case "ok":
		w.WriteHeader(http.StatusNoContent)
	case "503":
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	case "reset":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case "hang":
		<-req.Context().Done()
	case "410":
		http.Error(w, "this receiver is retired", http.StatusGone)
	}
}

func (r *receiver) set(mode string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode = mode
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// webhookWorld: two parties with their keys, a receiver, a movable clock.
type webhookWorld struct {
	*env
	offset     atomic.Int64
	a, aKey    string
	b, bKey    string
	rcv        *receiver
	endpoint   app.CreatedWebhookEndpoint
	dispatched int
}

func newWebhookWorld(t *testing.T, store flexhub.Store) *webhookWorld {
	w := &webhookWorld{env: newEnvOn(t, store)}
	w.svc.SetClock(w.now)
	w.a, w.aKey = w.party("wh-fsp-a", "fsp")
	w.b, w.bKey = w.party("wh-dso-b", "dso")
	w.rcv = newReceiver(t)
	w.endpoint = w.register(w.aKey, flexhub.EventActivationOrder)
	return w
}

func (w *webhookWorld) now() time.Time {
	return time.Now().Add(time.Duration(w.offset.Load())).UTC().Truncate(time.Microsecond)
}

func (w *webhookWorld) advance(d time.Duration) { w.offset.Add(int64(d)) }

// advanceTo moves the clock to just past at.
func (w *webhookWorld) advanceTo(at time.Time) {
	if d := at.Sub(w.now()); d > 0 {
		w.advance(d + time.Millisecond)
	}
}

// register creates an endpoint of the receiver for key's party.
func (w *webhookWorld) register(key string, types ...string) app.CreatedWebhookEndpoint {
	w.t.Helper()
	var c app.CreatedWebhookEndpoint
	raw, h := w.do("POST", "/v1/webhooks", key, map[string]any{"url": w.rcv.srv.URL + "/hooks", "event_types": types, "description": "test receiver"}, 201, &c)
	if !strings.HasPrefix(c.Secret, "whsec_") || c.Status != flexhub.WebhookActive || h.Get("Location") != "/v1/webhooks/"+c.ID {
		w.t.Fatalf("created endpoint %s (Location %q)", raw, h.Get("Location"))
	}
	w.rcv.mu.Lock()
	w.rcv.secrets = append(w.rcv.secrets, c.Secret)
	w.rcv.mu.Unlock()
	return c
}

// dispatch runs one pass of the dispatcher and returns how many attempts it made.
func (w *webhookWorld) dispatch() int {
	w.t.Helper()
	n, err := w.svc.DispatchWebhooks(context.Background(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *webhookWorld) ping(key, endpointID string) flexhub.WebhookDelivery {
	w.t.Helper()
	var d flexhub.WebhookDelivery
	w.do("POST", "/v1/webhooks/"+endpointID+"/test", key, nil, 202, &d)
	if d.Status != flexhub.WebhookPending || d.EventType != flexhub.EventPing || d.Attempts != 0 {
		w.t.Fatalf("ping delivery %+v", d)
	}
	return d
}

func (w *webhookWorld) delivery(key, id string) flexhub.WebhookDelivery {
	w.t.Helper()
	var d flexhub.WebhookDelivery
	w.do("GET", "/v1/webhook-deliveries/"+id, key, nil, 200, &d)
	return d
}

func (w *webhookWorld) deliveries(key, path string) []flexhub.WebhookDelivery {
	w.t.Helper()
	var l struct{ Items []flexhub.WebhookDelivery }
	w.do("GET", path, key, nil, 200, &l)
	return l.Items
}

// emit writes an event for party in a transaction of its own, as a use
// case does in the transaction of its change.
func (w *webhookWorld) emit(party, typ, id string, payload any) {
	w.t.Helper()
	err := w.svc.Store().Update(context.Background(), func(tx flexhub.Tx) error {
		return w.svc.EmitEvent(context.Background(), tx, party, typ, id, payload)
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

func testWebhookDelivered(t *testing.T, w *webhookWorld) {
	// The secret is shown once: never in a read or a list.
	for _, path := range []string{"/v1/webhooks/" + w.endpoint.ID, "/v1/webhooks"} {
		raw, _ := w.do("GET", path, w.aKey, nil, 200, nil)
		if strings.Contains(raw, "whsec_") || strings.Contains(raw, `"secret"`) || !strings.Contains(raw, w.endpoint.ID) {
			t.Errorf("GET %s shows the secret or misses the endpoint: %s", path, raw)
		}
	}
	p := w.ping(w.aKey, w.endpoint.ID)
	if n := w.dispatch(); n != 1 {
		t.Fatalf("dispatch attempted %d, want 1", n)
	}
	got := w.rcv.requests()
	if len(got) != 1 || got[0].id != p.EventID || got[0].event.Type != flexhub.EventPing || string(got[0].body) != string(p.Payload) || got[0].event.PartyID != w.a {
		t.Fatalf("receiver got %+v, want the ping %+v", got, p)
	}
	if d := got[0].ts - w.now().Unix(); d < -5 || d > 5 {
		t.Errorf("webhook-timestamp %d is not the service clock's %d", got[0].ts, w.now().Unix())
	}
	d := w.delivery(w.aKey, p.ID)
	if d.Status != flexhub.WebhookDelivered || d.Attempts != 1 || d.LastStatusCode != 204 || d.DeliveredAt == nil || d.NextAttemptAt != nil {
		t.Errorf("after a 204: %+v", d)
	}
	if w.dispatch() != 0 {
		t.Error("a delivered delivery was sent again")
	}

	// Events go to the endpoints that asked for their type, once per
	// event id however often it is emitted.
	order := map[string]any{"id": "order-1", "setpoints": []int{1, 2}}
	w.emit(w.a, flexhub.EventActivationOrder, "order-1.created", order)
	w.emit(w.a, flexhub.EventActivationOrder, "order-1.created", order)
	w.emit(w.a, flexhub.EventActivationAlert, "order-1.ack_overdue", order)
	w.emit(w.b, flexhub.EventActivationOrder, "order-2.created", order) // B has no endpoint
	all := w.register(w.aKey, "*")
	w.emit(w.a, flexhub.EventActivationAlert, "order-1.alert2", order)
	if n := w.dispatch(); n != 2 {
		t.Fatalf("dispatch attempted %d, want 2 (the order to the first endpoint, the alert to the * one)", n)
	}
	got = w.rcv.requests()[1:]
	ids := map[string]string{}
	for _, r := range got {
		ids[r.id] = r.event.Type
		if r.id == "order-1.created" {
			var data map[string]any
			b, _ := json.Marshal(r.event.Data)
			json.Unmarshal(b, &data)
			if data["id"] != "order-1" {
				t.Errorf("order event data %s", b)
			}
		}
	}
	if len(ids) != 2 || ids["order-1.created"] != flexhub.EventActivationOrder || ids["order-1.alert2"] != flexhub.EventActivationAlert {
		t.Errorf("received %v", ids)
	}
	if l := w.deliveries(w.aKey, "/v1/webhooks/"+w.endpoint.ID+"/deliveries"); len(l) != 2 {
		t.Errorf("first endpoint has %d deliveries, want 2 (ping, order)", len(l))
	}
	if l := w.deliveries(w.aKey, "/v1/webhooks/"+all.ID+"/deliveries?status=delivered"); len(l) != 1 {
		t.Errorf("* endpoint has %d delivered, want 1", len(l))
	}
	if l := w.deliveries(w.bKey, "/v1/webhook-deliveries"); len(l) != 0 {
		t.Errorf("B without endpoints has %d deliveries", len(l))
	}
	// A batch of events in one transaction: the same rules.
	err := w.svc.Store().Update(context.Background(), func(tx flexhub.Tx) error {
		return w.svc.EmitEvents(context.Background(), tx, []app.Event{
			{PartyID: w.a, Type: flexhub.EventActivationOrder, ID: "b1.created", Payload: order},
			{PartyID: w.b, Type: flexhub.EventActivationOrder, ID: "b2.created", Payload: order},
			{PartyID: w.a, Type: flexhub.EventActivationOrder, ID: "b1.created", Payload: order},
			{PartyID: w.a, Type: flexhub.EventActivationStatus, ID: "b3.1", Payload: order},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := w.dispatch(); n != 3 {
		t.Errorf("batch: %d attempts, want 3 (b1 to both endpoints, b3 to the * one)", n)
	}
	err = w.svc.Store().Update(context.Background(), func(tx flexhub.Tx) error {
		return w.svc.EmitEvent(context.Background(), tx, w.a, flexhub.EventActivationOrder, "bad id/with slash", order)
	})
	if err == nil {
		t.Error("an event id outside [A-Za-z0-9._:-] was accepted")
	}
}

// backoffOK reports whether wait is the backoff after the n-th failure,
// within the jitter.
func backoffOK(n int, wait time.Duration) bool {
	base := flexhub.WebhookFirstRetry << (n - 1)
	if n > 20 || base > flexhub.WebhookMaxRetry {
		base = flexhub.WebhookMaxRetry
	}
	lo, hi := time.Duration(float64(base)*(1-flexhub.WebhookJitter)), time.Duration(float64(base)*(1+flexhub.WebhookJitter))
	return wait >= lo-time.Millisecond && wait <= hi+time.Millisecond
}

func testWebhookRetries(t *testing.T, w *webhookWorld) {
	w.rcv.set("503")
	p := w.ping(w.aKey, w.endpoint.ID)
	start := w.now()
	// Down for an hour, by 503s and dropped connections: each attempt
	// waits the doubled backoff; nothing is sent before it is due.
	for n := 1; ; n++ {
		if got := w.dispatch(); got != 1 {
			t.Fatalf("attempt %d: dispatch attempted %d, want 1", n, got)
		}
		d := w.delivery(w.aKey, p.ID)
		if d.Status != flexhub.WebhookPending || d.Attempts != n || d.NextAttemptAt == nil || d.LastError == "" {
			t.Fatalf("after failed attempt %d: %+v", n, d)
		}
		if n%2 == 1 && (d.LastStatusCode != 503 || !strings.Contains(d.LastError, "503")) {
			t.Errorf("attempt %d answered 503: last %d %q", n, d.LastStatusCode, d.LastError)
		}
		if n%2 == 0 && d.LastStatusCode != 0 {
			t.Errorf("attempt %d had its connection dropped: last status %d", n, d.LastStatusCode)
		}
		if wait := d.NextAttemptAt.Sub(d.UpdatedAt); !backoffOK(n, wait) {
			t.Errorf("wait after attempt %d: %v, want %v ±20%%", n, wait, flexhub.WebhookFirstRetry<<(n-1))
		}
		if w.dispatch() != 0 {
			t.Fatalf("sent again before the backoff after attempt %d", n)
		}
		w.advanceTo(*d.NextAttemptAt)
		if w.now().Sub(start) > time.Hour {
			break
		}
		w.rcv.set(map[bool]string{true: "reset", false: "503"}[n%2 == 1])
	}
	// Back: the next attempt delivers, with the same Webhook-Id as all
	// the failed ones.
	w.rcv.set("ok")
	if w.dispatch() != 1 {
		t.Fatal("nothing sent once the receiver is back")
	}
	d := w.delivery(w.aKey, p.ID)
	if d.Status != flexhub.WebhookDelivered || d.LastStatusCode != 204 || d.LastError != "" {
		t.Errorf("after the receiver came back: %+v", d)
	}
	got := w.rcv.requests()
	if len(got) != d.Attempts || len(got) < 10 {
		t.Errorf("%d requests for %d attempts over an hour", len(got), d.Attempts)
	}
	for i, r := range got {
		if r.id != p.EventID || string(r.body) != string(p.Payload) {
			t.Errorf("attempt %d: id %q body %s, want %q and the same body", i+1, r.id, r.body, p.EventID)
		}
	}
}

func testWebhookDeadLetter(t *testing.T, w *webhookWorld) {
	w.rcv.set("503")
	p := w.ping(w.aKey, w.endpoint.ID)
	start := p.CreatedAt
	var d flexhub.WebhookDelivery
	for i := 0; i < 100; i++ {
		if w.dispatch() != 1 {
			t.Fatalf("attempt %d not made", i+1)
		}
		if d = w.delivery(w.aKey, p.ID); d.Status != flexhub.WebhookPending {
			break
		}
		w.advanceTo(*d.NextAttemptAt)
	}
	if d.Status != flexhub.WebhookDead || d.NextAttemptAt != nil || d.LastStatusCode != 503 {
		t.Fatalf("after 24 h of 503s: %+v", d)
	}
	if took := d.LastAttemptAt.Sub(start); took < flexhub.WebhookRetryPeriod || took > flexhub.WebhookRetryPeriod+time.Minute {
		t.Errorf("dead after %v, want at the end of the %v retry period", took, flexhub.WebhookRetryPeriod)
	}
	if d.Attempts < 25 || d.Attempts > 45 {
		t.Errorf("%d attempts in 24 h", d.Attempts)
	}
	w.advance(48 * time.Hour)
	if w.dispatch() != 0 {
		t.Error("a dead delivery was attempted")
	}
	// The dead-letter views (party-wide and per endpoint) show it; the
	// other party's show nothing and it cannot read or redeliver it.
	for _, path := range []string{"/v1/webhook-deliveries?status=dead", "/v1/webhooks/" + w.endpoint.ID + "/deliveries?status=dead"} {
		if l := w.deliveries(w.aKey, path); len(l) != 1 || l[0].ID != p.ID {
			t.Errorf("%s: %d items, want the dead ping", path, len(l))
		}
	}
	if l := w.deliveries(w.aKey, "/v1/webhook-deliveries?status=pending"); len(l) != 0 {
		t.Errorf("%d pending, want none", len(l))
	}
	if l := w.deliveries(w.bKey, "/v1/webhook-deliveries?status=dead"); len(l) != 0 {
		t.Errorf("B sees %d dead letters of A's", len(l))
	}
	before := w.auditCount()
	w.run([]scenario{
		{name: "other party reads", method: "GET", path: "/v1/webhook-deliveries/" + p.ID, token: w.bKey, wantStatus: 404},
		{name: "other party redelivers", method: "POST", path: "/v1/webhook-deliveries/" + p.ID + "/redeliver", token: w.bKey, wantStatus: 404},
		{name: "admin redelivers", method: "POST", path: "/v1/webhook-deliveries/" + p.ID + "/redeliver", token: w.admin, wantStatus: 404},
	})
	if after := w.auditCount(); after != before {
		t.Errorf("refused redeliveries wrote %d audit entries", after-before)
	}
	// Redeliver: pending again at once with a fresh schedule; a second
	// request while it is pending is refused; the receiver gets it with
	// the same Webhook-Id.
	var r flexhub.WebhookDelivery
	w.do("POST", "/v1/webhook-deliveries/"+p.ID+"/redeliver", w.aKey, nil, 200, &r)
	if r.Status != flexhub.WebhookPending || r.Attempts != 0 || r.RetryUntil.Before(w.now().Add(23*time.Hour)) {
		t.Errorf("redelivered %+v", r)
	}
	if after := w.auditCount(); after != before+1 {
		t.Errorf("redelivery audited %d times, want once", after-before)
	}
	w.run([]scenario{{name: "redeliver pending", method: "POST", path: "/v1/webhook-deliveries/" + p.ID + "/redeliver", token: w.aKey,
		wantStatus: 409, wantBody: []string{"urn:flexhub:rule:webhook.delivery.pending"}}})
	w.rcv.set("ok")
	n := len(w.rcv.requests())
	if w.dispatch() != 1 {
		t.Fatal("redelivery not sent")
	}
	got := w.rcv.requests()
	if len(got) != n+1 || got[n].id != p.EventID || got[n].mode != "ok" {
		t.Errorf("redelivery received as %+v", got[n:])
	}
	if d := w.delivery(w.aKey, p.ID); d.Status != flexhub.WebhookDelivered || d.Attempts != 1 {
		t.Errorf("after redelivery: %+v", d)
	}
}

func testWebhookIsolation(t *testing.T, w *webhookWorld) {
	p := w.ping(w.aKey, w.endpoint.ID)
	bEndpoint := w.register(w.bKey, flexhub.EventActivationStatus)
	id := w.endpoint.ID
	before := w.auditCount()
	w.run([]scenario{
		{name: "B reads A's endpoint", method: "GET", path: "/v1/webhooks/" + id, token: w.bKey, wantStatus: 404, notWantBody: []string{w.rcv.srv.URL}},
		{name: "admin reads A's endpoint", method: "GET", path: "/v1/webhooks/" + id, token: w.admin, wantStatus: 404},
		{name: "B disables A's endpoint", method: "DELETE", path: "/v1/webhooks/" + id, token: w.bKey, wantStatus: 404},
		{name: "B pings A's endpoint", method: "POST", path: "/v1/webhooks/" + id + "/test", token: w.bKey, wantStatus: 404},
		{name: "B lists A's endpoint's deliveries", method: "GET", path: "/v1/webhooks/" + id + "/deliveries", token: w.bKey, wantStatus: 404},
		{name: "B reads A's delivery", method: "GET", path: "/v1/webhook-deliveries/" + p.ID, token: w.bKey, wantStatus: 404},
		{name: "B's list", method: "GET", path: "/v1/webhooks", token: w.bKey, wantStatus: 200, wantBody: []string{bEndpoint.ID}, notWantBody: []string{id}},
		{name: "B's deliveries", method: "GET", path: "/v1/webhook-deliveries", token: w.bKey, wantStatus: 200, notWantBody: []string{p.ID}},
		{name: "A's list", method: "GET", path: "/v1/webhooks", token: w.aKey, wantStatus: 200, wantBody: []string{id}, notWantBody: []string{bEndpoint.ID}},
		{name: "no key", method: "GET", path: "/v1/webhooks", wantStatus: 401},
		{name: "unknown id", method: "GET", path: "/v1/webhooks/" + flexhub.NewID(), token: w.aKey, wantStatus: 404},
	})
	if after := w.auditCount(); after != before {
		t.Errorf("refused calls wrote %d audit entries", after-before)
	}
	if d := w.delivery(w.aKey, p.ID); d.Status != flexhub.WebhookPending {
		t.Errorf("A's ping %+v", d)
	}
	if e := w.endpointOf(w.aKey, id); e.Status != flexhub.WebhookActive {
		t.Errorf("A's endpoint after B's attempts: %+v", e)
	}
}

func (w *webhookWorld) endpointOf(key, id string) flexhub.WebhookEndpoint {
	w.t.Helper()
	var e flexhub.WebhookEndpoint
	w.do("GET", "/v1/webhooks/"+id, key, nil, 200, &e)
	return e
}

func testWebhookBadInput(t *testing.T, w *webhookWorld) {
	count := func() int {
		var l struct{ Items []flexhub.WebhookEndpoint }
		w.do("GET", "/v1/webhooks", w.aKey, nil, 200, &l)
		return len(l.Items)
	}
	endpoints, audits := count(), w.auditCount()
	body := func(url string, types ...string) map[string]any {
		return map[string]any{"url": url, "event_types": types}
	}
	ok := w.rcv.srv.URL + "/hooks"
	rule := func(r string) []string { return []string{"urn:flexhub:rule:" + r} }
	w.run([]scenario{
		{name: "http to a public host", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body("http://example.com/hooks", "ping"), wantStatus: 422,
			wantBody: append(rule("webhook.url.scheme"), `"location":"body.url"`)},
		{name: "ftp", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body("ftp://127.0.0.1/hooks", "ping"), wantStatus: 422, wantBody: rule("webhook.url.scheme")},
		{name: "not a URL", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body("receiver.example.com/hooks", "ping"), wantStatus: 422, wantBody: rule("webhook.url")},
		{name: "user information", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body("https://user:pw@receiver.example.com/hooks", "ping"), wantStatus: 422,
			wantBody: rule("webhook.url"), notWantBody: []string{"pw@"}},
		{name: "fragment", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body("https://receiver.example.com/hooks#x", "ping"), wantStatus: 422, wantBody: rule("webhook.url")},
		{name: "empty URL", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body("", "ping"), wantStatus: 422, wantBody: rule("webhook.url")},
		{name: "unknown event type", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body(ok, "activation.order", "activation.bogus"), wantStatus: 422,
			wantBody: append(rule("webhook.event_type"), `"location":"body.event_types[1]"`, "activation.bogus")},
		{name: "no event types", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body(ok), wantStatus: 422, wantBody: []string{"event_types"}},
		{name: "unknown field", method: "POST", path: "/v1/webhooks", token: w.aKey, body: map[string]any{"url": ok, "event_types": []string{"ping"}, "secret": "mine"}, wantStatus: 422},
		{name: "malformed JSON", method: "POST", path: "/v1/webhooks", token: w.aKey, body: `{"url":`, wantStatus: 400},
		{name: "no key", method: "POST", path: "/v1/webhooks", body: body(ok, "ping"), wantStatus: 401},
		{name: "bad status filter", method: "GET", path: "/v1/webhook-deliveries?status=lost", token: w.aKey, wantStatus: 422},
	})
	if n := count(); n != endpoints {
		t.Errorf("refused registrations stored %d endpoints", n-endpoints)
	}
	if n := w.auditCount(); n != audits {
		t.Errorf("refused registrations wrote %d audit entries", n-audits)
	}
	// https to any host, and http to localhost / ::1, are accepted; an
	// idempotent retry returns the first endpoint and its secret.
	for _, u := range []string{"https://receiver.example.com:8443/flexhub?x=1", "http://localhost:9/hooks", "http://[::1]:9/hooks"} {
		w.do("POST", "/v1/webhooks", w.aKey, body(u, "ping"), 201, nil)
	}
	var first, again app.CreatedWebhookEndpoint
	w.do("POST", "/v1/webhooks", w.aKey, body(ok, "ping"), 201, &first, "Idempotency-Key", "wh-1")
	_, h := w.do("POST", "/v1/webhooks", w.aKey, body(ok, "ping"), 201, &again, "Idempotency-Key", "wh-1")
	if again.ID != first.ID || again.Secret != first.Secret || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed create: %s / %s, replayed %q", again.ID, first.ID, h.Get("Idempotent-Replayed"))
	}
	// At most 20 active endpoints per party.
	for count() < flexhub.MaxWebhookEndpoints {
		w.do("POST", "/v1/webhooks", w.aKey, body(ok, "ping"), 201, nil)
	}
	w.run([]scenario{{name: "21st endpoint", method: "POST", path: "/v1/webhooks", token: w.aKey, body: body(ok, "ping"), wantStatus: 409, wantBody: rule("webhook.limit")}})
}

func testWebhookDisable(t *testing.T, w *webhookWorld) {
	p := w.ping(w.aKey, w.endpoint.ID)
	var e flexhub.WebhookEndpoint
	w.do("DELETE", "/v1/webhooks/"+w.endpoint.ID, w.aKey, nil, 200, &e, "If-Match", `"1"`)
	if e.Status != flexhub.WebhookDisabled || e.DisabledAt == nil || e.Version != 2 {
		t.Fatalf("disabled endpoint %+v", e)
	}
	w.do("DELETE", "/v1/webhooks/"+w.endpoint.ID, w.aKey, nil, 200, &e) // again: no change
	if e.Version != 2 {
		t.Errorf("disabling twice made version %d", e.Version)
	}
	w.run([]scenario{
		{name: "stale If-Match", method: "DELETE", path: "/v1/webhooks/" + w.endpoint.ID, token: w.aKey, headers: []string{"If-Match", `"1"`}, wantStatus: 409},
		{name: "ping a disabled endpoint", method: "POST", path: "/v1/webhooks/" + w.endpoint.ID + "/test", token: w.aKey, wantStatus: 409,
			wantBody: []string{"urn:flexhub:rule:webhook.endpoint.disabled"}},
	})
	w.emit(w.a, flexhub.EventActivationOrder, "order-9.created", map[string]string{"id": "order-9"})
	// The pending ping dies at its attempt, unsent; the new event made no
	// delivery; a redelivery to a disabled endpoint is refused.
	if n := w.dispatch(); n != 0 {
		t.Errorf("%d attempts to a disabled endpoint", n)
	}
	if len(w.rcv.requests()) != 0 {
		t.Errorf("a disabled endpoint received %d requests", len(w.rcv.requests()))
	}
	d := w.delivery(w.aKey, p.ID)
	if d.Status != flexhub.WebhookDead || d.LastError != "endpoint disabled" || d.Attempts != 0 {
		t.Errorf("ping of a disabled endpoint: %+v", d)
	}
	if l := w.deliveries(w.aKey, "/v1/webhooks/"+w.endpoint.ID+"/deliveries"); len(l) != 1 {
		t.Errorf("%d deliveries, want only the dead ping", len(l))
	}
	w.run([]scenario{{name: "redeliver to a disabled endpoint", method: "POST", path: "/v1/webhook-deliveries/" + p.ID + "/redeliver", token: w.aKey,
		wantStatus: 409, wantBody: []string{"urn:flexhub:rule:webhook.endpoint.disabled"}}})
	var l struct{ Items []flexhub.WebhookEndpoint }
	w.do("GET", "/v1/webhooks?status=active", w.aKey, nil, 200, &l)
	if len(l.Items) != 0 {
		t.Errorf("%d active endpoints after disabling the only one", len(l.Items))
	}

	// A receiver that answers 410 Gone disables its endpoint itself
	// (Standard Webhooks): that delivery and the endpoint's other pending
	// ones are dead, and the change is audited.
	gone := w.register(w.aKey, "*")
	w.rcv.set("503")
	second := w.ping(w.aKey, gone.ID)
	w.dispatch() // second waits for its retry
	w.rcv.set("410")
	first := w.ping(w.aKey, gone.ID)
	audits := w.auditCount()
	if n := w.dispatch(); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
	if e := w.endpointOf(w.aKey, gone.ID); e.Status != flexhub.WebhookDisabled {
		t.Errorf("endpoint after a 410: %+v", e)
	}
	w.advance(time.Minute)
	w.dispatch()
	for _, id := range []string{first.ID, second.ID} {
		if d := w.delivery(w.aKey, id); d.Status != flexhub.WebhookDead {
			t.Errorf("delivery %s after a 410: %+v", id, d)
		}
	}
	if got := w.rcv.requests(); len(got) != 2 || got[1].mode != "410" {
		t.Errorf("the retired receiver got %d requests, want 2 (a 503, the 410)", len(got))
	}
	if n := w.auditCount(); n != audits+1 {
		t.Errorf("%d audit entries for the 410, want 1 (endpoint disabled)", n-audits)
	}
}

// testWebhookInterrupted: a sender that shuts down mid-attempt gives the
// attempt back; one that dies after claiming (no record at all) leaves
// the delivery due again when the lease ends. Both send again with the
// same Webhook-Id: at least once.
func testWebhookInterrupted(t *testing.T, w *webhookWorld) {
	w.rcv.set("hang")
	p := w.ping(w.aKey, w.endpoint.ID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.svc.DispatchWebhooks(ctx, nil)
	}()
	select {
	case <-w.rcv.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got nothing")
	}
	cancel()
	<-done
	d := w.delivery(w.aKey, p.ID)
	if d.Status != flexhub.WebhookPending || d.Attempts != 0 || d.NextAttemptAt.After(w.now()) {
		t.Fatalf("after a shutdown mid-attempt: %+v", d)
	}

	// A claim whose sender died: not due until the lease ends.
	err := w.svc.Store().Update(context.Background(), func(tx flexhub.Tx) error {
		d, err := tx.WebhookDelivery(context.Background(), p.ID)
		if err != nil {
			return err
		}
		if err := d.Claim(w.now()); err != nil {
			return err
		}
		return tx.UpdateWebhookDelivery(context.Background(), d)
	})
	if err != nil {
		t.Fatal(err)
	}
	w.rcv.set("ok")
	if w.dispatch() != 0 {
		t.Error("a claimed delivery was sent within its lease")
	}
	w.advance(flexhub.WebhookLease + time.Second)
	if w.dispatch() != 1 {
		t.Fatal("not sent after the lease ended")
	}
	got := w.rcv.requests()
	if len(got) != 2 || got[0].id != got[1].id || got[1].id != p.EventID {
		t.Errorf("requests %+v, want two with the event id %s", got, p.EventID)
	}
	if d := w.delivery(w.aKey, p.ID); d.Status != flexhub.WebhookDelivered {
		t.Errorf("after the lease: %+v", d)
	}
}

// testWebhookTwoInstances: two services on one store dispatch at the same
// time, over and over while events arrive; every event reaches the
// receiver exactly once.
func testWebhookTwoInstances(t *testing.T, w *webhookWorld) {
	other := app.New(w.svc.Store(), nil)
	other.SetClock(w.now)
	const events = 60
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, svc := range []*app.Service{w.svc, other} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := svc.DispatchWebhooks(context.Background(), nil); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	for i := range events {
		w.emit(w.a, flexhub.EventActivationOrder, fmt.Sprintf("burst-%d.created", i), map[string]int{"n": i})
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(w.rcv.requests()) < events && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a double send to show
	close(stop)
	wg.Wait()
	seen := map[string]int{}
	for _, r := range w.rcv.requests() {
		seen[r.id]++
	}
	for i := range events {
		if id := fmt.Sprintf("burst-%d.created", i); seen[id] != 1 {
			t.Errorf("%s received %d times, want once", id, seen[id])
		}
	}
	if l := w.deliveries(w.aKey, "/v1/webhook-deliveries?status=delivered&limit=500"); len(l) != events {
		t.Errorf("%d delivered, want %d", len(l), events)
	}
}

// TestWebhookActivationOrder: an activation order reaches the FSP's
// endpoint as an activation.order event, and the 2xx moves the order to
// delivered by flexhub-webhook. The order is created through the API;
// the event is emitted as createOrderTx does (a no-op when it did
// already: one delivery per event and endpoint).
func TestWebhookActivationOrder(t *testing.T) {
	for name, open := range webhookStores() {
		t.Run(name, func(t *testing.T) {
			w := newSecondaryWorldOn(t, newEnvOn(t, open(t)))
			rcv := newReceiver(t)
			var ep app.CreatedWebhookEndpoint
			w.do("POST", "/v1/webhooks", w.fspAKey, map[string]any{"url": rcv.srv.URL, "event_types": []string{flexhub.EventActivationOrder}}, 201, &ep)
			rcv.secrets = append(rcv.secrets, ep.Secret)
			var o flexhub.ActivationOrder
			w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o)
			err := w.svc.Store().Update(context.Background(), func(tx flexhub.Tx) error {
				return w.svc.EmitEvent(context.Background(), tx, o.FSPID, flexhub.EventActivationOrder, o.ID+".created", &o)
			})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := w.svc.DispatchWebhooks(context.Background(), nil); err != nil || n != 1 {
				t.Fatalf("dispatch: %d attempts, %v; want 1", n, err)
			}
			got := rcv.requests()
			if len(got) != 1 || got[0].id != o.ID+".created" || got[0].event.Type != flexhub.EventActivationOrder {
				t.Fatalf("receiver got %+v", got)
			}
			var sent flexhub.ActivationOrder
			b, _ := json.Marshal(got[0].event.Data)
			if err := json.Unmarshal(b, &sent); err != nil || sent.ID != o.ID || len(sent.Setpoints) != 2 {
				t.Errorf("event data %s: %v", b, err)
			}
			var after flexhub.ActivationOrder
			w.do("GET", "/v1/activation-orders/"+o.ID, w.tsoKey, nil, 200, &after)
			last := after.Tracking[len(after.Tracking)-1]
			if after.Status != flexhub.OrderDelivered || last.Channel != "webhook" || last.By != app.WebhookActor {
				t.Errorf("order after the webhook's 2xx: %s, last step %+v", after.Status, last)
			}
		})
	}
}

// TestWebhookDispatcherLoop: RunWebhookDispatcher sends what falls due
// without being asked, and returns on shutdown with a send in flight given
// back.
func TestWebhookDispatcherLoop(t *testing.T) {
	w := newWebhookWorld(t, webhookStores()["sqlite"](t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.svc.RunWebhookDispatcher(ctx, nil)
	}()
	for range 5 {
		w.ping(w.aKey, w.endpoint.ID)
	}
	for i := range 5 {
		select {
		case <-w.rcv.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("the loop sent %d of 5 pings", i)
		}
	}
	w.rcv.set("hang")
	p := w.ping(w.aKey, w.endpoint.ID)
	select {
	case <-w.rcv.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not send the sixth ping")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not return on shutdown")
	}
	if d := w.delivery(w.aKey, p.ID); d.Status != flexhub.WebhookPending || d.Attempts != 0 {
		t.Errorf("the send in flight at shutdown: %+v", d)
	}
	if l := w.deliveries(w.aKey, "/v1/webhook-deliveries?status=delivered"); len(l) != 5 {
		t.Errorf("%d delivered, want 5", len(l))
	}
}
