package app_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// The signature is the Standard Webhooks one: the published test vector
// of the reference libraries.
func TestSignWebhookVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	got, err := flexhub.SignWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; err != nil || got != want {
		t.Fatalf("signature %q (%v), want %q", got, err, want)
	}
	if !flexhub.VerifyWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, "v1,bm90IGl0 "+got) {
		t.Error("a list holding the right signature is refused")
	}
	for name, ok := range map[string]bool{
		"other body": flexhub.VerifyWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test":2432232314}`), got),
		"other time": flexhub.VerifyWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, got),
		"other id":   flexhub.VerifyWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJel", 1614265330, body, got),
		"other key":  flexhub.VerifyWebhook(flexhub.NewWebhookSecret(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, got),
	} {
		if ok {
			t.Errorf("%s: verified", name)
		}
	}
	if s := flexhub.NewWebhookSecret(); !strings.HasPrefix(s, "whsec_") || len(s) != len("whsec_")+44 || s == flexhub.NewWebhookSecret() {
		t.Errorf("secret %q: want whsec_ and 32 random bytes in base64", s)
	}
}

func TestWebhookBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 10: 2560 * time.Second,
		11: time.Hour, 12: time.Hour, 40: time.Hour, 1000: time.Hour} {
		if got := flexhub.WebhookBackoff(n, 0.5); got != want {
			t.Errorf("backoff after attempt %d: %v, want %v", n, got, want)
		}
		if lo, hi := flexhub.WebhookBackoff(n, 0), flexhub.WebhookBackoff(n, 0.999999); lo != want*8/10 || hi < want*119/100 || hi > want*12/10 {
			t.Errorf("jitter after attempt %d: %v..%v, want %v±20%%", n, lo, hi, want)
		}
	}
}

func TestWebhookDeliveryLife(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	e := flexhub.NewWebhookEndpoint(flexhub.NewID(), flexhub.WebhookEndpointSpec{URL: "https://x.example", EventTypes: []string{"*"}}, t0)
	d := flexhub.NewWebhookDelivery(e, "o.created", flexhub.EventActivationOrder, []byte(`{}`), t0)
	if !d.Due(t0) || d.Claim(t0) != nil || d.Due(t0.Add(time.Second)) || !d.Due(t0.Add(flexhub.WebhookLease)) {
		t.Fatalf("claim and lease: %+v", d)
	}
	// A receiver's Retry-After beyond the backoff is honoured, up to the
	// longest wait.
	d.Fail(t0, 503, "busy", 10*time.Minute, 0.5)
	if d.NextAttemptAt.Sub(t0) != 10*time.Minute || d.Status != flexhub.WebhookPending {
		t.Errorf("Retry-After 10m: next %v", d.NextAttemptAt)
	}
	d.Fail(t0, 429, "slow down", 48*time.Hour, 0.5)
	if d.NextAttemptAt.Sub(t0) != flexhub.WebhookMaxRetry {
		t.Errorf("Retry-After 48h: next %v, want capped at %v", d.NextAttemptAt.Sub(t0), flexhub.WebhookMaxRetry)
	}
	// Never scheduled past the retry period; a failure at its end is final.
	late := d.RetryUntil.Add(-time.Minute)
	d.Attempts = 30
	d.Fail(late, 500, "boom", 0, 0.5)
	if !d.NextAttemptAt.Equal(d.RetryUntil) {
		t.Errorf("next %v, want the end of the retry period %v", d.NextAttemptAt, d.RetryUntil)
	}
	d.Fail(d.RetryUntil, 500, "boom", 0, 0.5)
	if d.Status != flexhub.WebhookDead || d.NextAttemptAt != nil || d.Claim(d.RetryUntil.Add(time.Hour)) == nil {
		t.Errorf("after the retry period: %+v", d)
	}
	if err := d.Redeliver(t0.Add(48 * time.Hour)); err != nil || d.Attempts != 0 || !d.Due(t0.Add(48*time.Hour)) || !d.RetryUntil.Equal(t0.Add(72*time.Hour)) {
		t.Errorf("redelivered: %+v, %v", d, err)
	}
	if err := d.Redeliver(t0.Add(49 * time.Hour)); flexhub.ErrorRule(err) != "webhook.delivery.pending" {
		t.Errorf("redelivering a pending delivery: %v", err)
	}
}

func TestWebhookEndpointSpec(t *testing.T) {
	for url, rule := range map[string]string{
		"https://receiver.example.com/x":                            "",
		"HTTPS://receiver.example.com:443":                          "",
		"http://127.0.0.1:8080/hooks":                               "",
		"http://127.3.4.5/hooks":                                    "",
		"http://[::1]/hooks":                                        "",
		"http://LOCALHOST/hooks":                                    "",
		"http://receiver.example.com/x":                             "webhook.url.scheme",
		"http://10.0.0.1/x":                                         "webhook.url.scheme",
		"ws://127.0.0.1/x":                                          "webhook.url.scheme",
		"https:///path-only":                                        "webhook.url",
		"/relative":                                                 "webhook.url",
		"https://u@receiver.example.com":                            "webhook.url",
		"https://receiver.example.com/#a":                           "webhook.url",
		"https://receiver.example.com:0/x":                          "webhook.url",
		"https://receiver.example.com/" + strings.Repeat("a", 2048): "webhook.url",
		"mailto:ops@example.com":                                    "webhook.url",
	} {
		s := flexhub.WebhookEndpointSpec{URL: " " + url + " ", EventTypes: []string{"ping"}}
		if got := flexhub.ErrorRule(s.Validate()); got != rule {
			t.Errorf("%.60s: rule %q, want %q", url, got, rule)
		}
	}
	s := flexhub.WebhookEndpointSpec{URL: "https://x.example", EventTypes: []string{" activation.order", "activation.order", "*"}}
	if err := s.Validate(); err != nil || len(s.EventTypes) != 2 || s.EventTypes[0] != "activation.order" {
		t.Errorf("normalised types %v, %v", s.EventTypes, err)
	}
	// The event types the service emits may be subscribed to.
	for _, typ := range []string{flexhub.EventActivationOrder, flexhub.EventActivationStatus, flexhub.EventActivationAlert} {
		s := flexhub.WebhookEndpointSpec{URL: "https://x.example", EventTypes: []string{typ}}
		if err := s.Validate(); err != nil {
			t.Errorf("event type %s the service emits is refused: %v", typ, err)
		}
	}
}

func TestWebhookClientRefusesPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	if _, err := app.NewWebhookClient(false).Post(srv.URL, "application/json", nil); err == nil || !strings.Contains(err.Error(), "not a public address") {
		t.Errorf("guarded client reached loopback: %v", err)
	}
	res, err := app.NewWebhookClient(true).Post(srv.URL, "application/json", nil)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("unguarded client: %v", err)
	}
	res.Body.Close()
	for ip, public := range map[string]bool{"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fd00::1": false, "fe80::1": false, "::ffff:10.0.0.1": false, "224.0.0.1": false,
		"8.8.8.8": true, "2001:4860:4860::8888": true, "100.128.0.1": true} {
		if got := app.PublicAddress(net.ParseIP(ip)); got != public {
			t.Errorf("PublicAddress(%s) = %v, want %v", ip, got, public)
		}
	}
}
