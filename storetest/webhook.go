package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testWebhooks: endpoints are stored with their secret outside the body
// and history, updated optimistically and listed by party and status;
// deliveries are outbox rows, one per endpoint and event (a duplicate is
// skipped without spoiling the transaction), updated with a versioned
// UPDATE that exactly one of two concurrent claimers wins, and found by
// DueWebhookDeliveries earliest first.
func (s *suite) testWebhooks(t *testing.T) {
	st, ws := s.seed(t, 2)
	a, b := ws[0].FSP, ws[1].FSP
	spec := flexhub.WebhookEndpointSpec{URL: "https://receiver.example.com/flexhub", EventTypes: []string{flexhub.EventActivationOrder}, Description: "control room"}
	epA := flexhub.NewWebhookEndpoint(a.ID, spec, base)
	epA2 := flexhub.NewWebhookEndpoint(a.ID, spec, base)
	epB := flexhub.NewWebhookEndpoint(b.ID, spec, base)
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, e := range []*flexhub.WebhookEndpoint{epA, epA2, epB} {
			if err := tx.CreateWebhookEndpoint(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})

	t.Run("Endpoints", func(t *testing.T) {
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			got, err := tx.WebhookEndpoint(ctx, epA.ID)
			if err != nil {
				return err
			}
			if got.Secret != epA.Secret || !strings.HasPrefix(got.Secret, "whsec_") || got.Version != 1 || got.URL != spec.URL || got.PartyID != a.ID {
				t.Errorf("read back %+v (secret %q), want %+v", got, got.Secret, epA)
			}
			_, err = tx.WebhookEndpoint(ctx, flexhub.NewID())
			wantKind(t, "missing endpoint", err, flexhub.ENotFound)
			list, next, err := tx.ListWebhookEndpoints(ctx, flexhub.Filter{"party_id": a.ID}, flexhub.Page{Limit: 1})
			if err != nil {
				return err
			}
			if len(list) != 1 || next == "" || list[0].Secret == "" {
				t.Errorf("first page of A's endpoints: %d, next %q", len(list), next)
			}
			rest, next2, err := tx.ListWebhookEndpoints(ctx, flexhub.Filter{"party_id": a.ID}, flexhub.Page{After: next, Limit: 1})
			if err != nil {
				return err
			}
			if len(rest) != 1 || next2 != "" || rest[0].ID == list[0].ID {
				t.Errorf("second page of A's endpoints: %d, next %q", len(rest), next2)
			}
			_, _, err = tx.ListWebhookEndpoints(ctx, flexhub.Filter{"url": spec.URL}, flexhub.Page{})
			wantKind(t, "unknown filter", err, flexhub.EInvalid)
			return nil
		})
		// Disable: an optimistic update; a stale copy loses; the status
		// filter follows; the secret stays out of every stored version.
		stale := *epA2
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			e, err := tx.WebhookEndpoint(ctx, epA2.ID)
			if err != nil {
				return err
			}
			e.Disable(base.Add(time.Hour))
			return tx.UpdateWebhookEndpoint(ctx, e)
		})
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			stale.Description = "stale"
			return tx.UpdateWebhookEndpoint(ctx, &stale)
		})
		wantKind(t, "stale endpoint update", err, flexhub.EConflict)
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			active, _, err := tx.ListWebhookEndpoints(ctx, flexhub.Filter{"party_id": a.ID, "status": flexhub.WebhookActive}, flexhub.Page{})
			if err != nil {
				return err
			}
			if len(active) != 1 || active[0].ID != epA.ID {
				t.Errorf("A's active endpoints: %v, want only %s", active, epA.ID)
			}
			e, err := tx.WebhookEndpoint(ctx, epA2.ID)
			if err != nil {
				return err
			}
			if e.Status != flexhub.WebhookDisabled || e.Version != 2 || e.Secret != epA2.Secret {
				t.Errorf("disabled endpoint: %+v", e)
			}
			vs, err := tx.Versions(ctx, flexhub.KindWebhookEndpoint, epA2.ID)
			if err != nil {
				return err
			}
			if len(vs) != 2 {
				t.Errorf("%d versions, want 2", len(vs))
			}
			for _, v := range vs {
				if strings.Contains(string(v.Body), epA2.Secret) || strings.Contains(string(v.Body), "whsec_") {
					t.Errorf("version %d holds the secret: %s", v.Version, v.Body)
				}
			}
			return nil
		})
	})

	payload := json.RawMessage(`{"id":"e1","type":"activation.order","data":{"html":"<b>&</b>","n":1}}`)
	mk := func(e *flexhub.WebhookEndpoint, event string, at time.Duration) *flexhub.WebhookDelivery {
		return flexhub.NewWebhookDelivery(e, event, flexhub.EventActivationOrder, payload, base.Add(at))
	}
	early, late, other := mk(epA, "o1.created", time.Minute), mk(epA, "o2.created", 2*time.Minute), mk(epB, "o1.created", 0)
	t.Run("Deliveries", func(t *testing.T) {
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			for _, d := range []*flexhub.WebhookDelivery{late, early, other} {
				ok, err := tx.CreateWebhookDelivery(ctx, d)
				if err != nil || !ok {
					t.Errorf("create %s: %v %v", d.EventID, ok, err)
				}
			}
			// The same event to the same endpoint again: skipped, and the
			// transaction goes on (PostgreSQL would abort it on an error).
			ok, err := tx.CreateWebhookDelivery(ctx, mk(epA, "o1.created", time.Hour))
			if err != nil || ok {
				t.Errorf("duplicate event: stored %v, err %v; want skipped", ok, err)
			}
			_, err = tx.CreateWebhookDelivery(ctx, mk(epA, "o3.created", 0))
			return err
		})
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			got, err := tx.WebhookDelivery(ctx, early.ID)
			if err != nil {
				return err
			}
			if string(got.Payload) != string(payload) {
				t.Errorf("payload %s, want it byte for byte: %s", got.Payload, payload)
			}
			sameJSON(t, "delivery", got, early)
			_, err = tx.WebhookDelivery(ctx, flexhub.NewID())
			wantKind(t, "missing delivery", err, flexhub.ENotFound)
			for f, want := range map[string]int{"endpoint_id=" + epA.ID: 3, "party_id=" + b.ID: 1, "event_id=o1.created": 2, "status=pending": 4, "status=dead": 0} {
				k, v, _ := strings.Cut(f, "=")
				list, _, err := tx.ListWebhookDeliveries(ctx, flexhub.Filter{k: v}, flexhub.Page{})
				if err != nil {
					return err
				}
				if len(list) != want {
					t.Errorf("filter %s: %d deliveries, want %d", f, len(list), want)
				}
			}
			_, _, err = tx.ListWebhookDeliveries(ctx, flexhub.Filter{"payload": "x"}, flexhub.Page{})
			wantKind(t, "unknown filter", err, flexhub.EInvalid)
			page, next, err := tx.ListWebhookDeliveries(ctx, flexhub.Filter{"party_id": a.ID}, flexhub.Page{Limit: 2})
			if err != nil {
				return err
			}
			rest, last, err := tx.ListWebhookDeliveries(ctx, flexhub.Filter{"party_id": a.ID}, flexhub.Page{After: next, Limit: 2})
			if err != nil {
				return err
			}
			if len(page) != 2 || next == "" || len(rest) != 1 || last != "" {
				t.Errorf("pages of 2: %d (next %q), %d (next %q)", len(page), next, len(rest), last)
			}
			// Due at base+90s: other (base), the o3 one (base), early
			// (base+1m); not late (base+2m).
			due, err := tx.DueWebhookDeliveries(ctx, base.Add(90*time.Second), 10)
			if err != nil {
				return err
			}
			var ids []string
			for _, d := range due {
				ids = append(ids, d.EventID+"@"+d.EndpointID)
			}
			if len(due) != 3 || due[2].ID != early.ID || slices.Contains(ids, "o2.created@"+epA.ID) {
				t.Errorf("due at +90s: %v", ids)
			}
			if one, err := tx.DueWebhookDeliveries(ctx, base.Add(90*time.Second), 1); err != nil || len(one) != 1 {
				t.Errorf("limit 1: %d, %v", len(one), err)
			}
			return nil
		})
	})

	t.Run("ClaimOnce", func(t *testing.T) {
		// Two claimers read the same version; one update wins, the other
		// gets EConflict and the row is the winner's.
		var c1, c2 *flexhub.WebhookDelivery
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			var err error
			if c1, err = tx.WebhookDelivery(ctx, early.ID); err != nil {
				return err
			}
			c2, err = tx.WebhookDelivery(ctx, early.ID)
			return err
		})
		now := base.Add(2 * time.Minute)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, c := range []*flexhub.WebhookDelivery{c1, c2} {
			wg.Go(func() {
				errs[i] = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
					if err := c.Claim(now); err != nil {
						return err
					}
					return tx.UpdateWebhookDelivery(ctx, c)
				})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				wantKind(t, "losing claim", err, flexhub.EConflict)
			}
		}
		if won != 1 {
			t.Fatalf("%d claims won (%v), want exactly 1", won, errs)
		}
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			d, err := tx.WebhookDelivery(ctx, early.ID)
			if err != nil {
				return err
			}
			if d.Version != 2 || d.Attempts != 1 || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(now.Add(flexhub.WebhookLease)) {
				t.Errorf("claimed delivery %+v", d)
			}
			due, err := tx.DueWebhookDeliveries(ctx, now, 10)
			if err != nil {
				return err
			}
			for _, x := range due {
				if x.ID == early.ID {
					t.Error("a claimed delivery is due again before its lease ends")
				}
			}
			return nil
		})
		// The attempt's outcome: a failure with status code and error, then
		// dead; a dead delivery is never due; the fields read back.
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			d, err := tx.WebhookDelivery(ctx, early.ID)
			if err != nil {
				return err
			}
			d.Fail(now.Add(time.Second), 503, "HTTP 503 Service Unavailable: down for maintenance", 0, 0.5)
			if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
				return err
			}
			d.Kill(now.Add(2*time.Second), "endpoint disabled")
			return tx.UpdateWebhookDelivery(ctx, d)
		})
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			d, err := tx.WebhookDelivery(ctx, early.ID)
			if err != nil {
				return err
			}
			if d.Status != flexhub.WebhookDead || d.LastStatusCode != 503 || d.LastError != "endpoint disabled" || d.NextAttemptAt != nil || d.Version != 4 {
				t.Errorf("dead delivery %+v", d)
			}
			dead, _, err := tx.ListWebhookDeliveries(ctx, flexhub.Filter{"party_id": a.ID, "status": flexhub.WebhookDead}, flexhub.Page{})
			if err != nil {
				return err
			}
			if len(dead) != 1 || dead[0].ID != early.ID {
				t.Errorf("dead letters: %d", len(dead))
			}
			due, err := tx.DueWebhookDeliveries(ctx, base.Add(48*time.Hour), 10)
			if err != nil {
				return err
			}
			for _, x := range due {
				if x.Status != flexhub.WebhookPending || x.ID == early.ID {
					t.Errorf("due list holds %s (%s)", x.ID, x.Status)
				}
			}
			return nil
		})
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			missing := mk(epA, "nowhere", 0)
			missing.Version = 1
			return tx.UpdateWebhookDelivery(ctx, missing)
		})
		wantKind(t, "update of a missing delivery", err, flexhub.ENotFound)
	})

	t.Run("ForeignKeys", func(t *testing.T) {
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			ghost := &flexhub.WebhookEndpoint{ID: flexhub.NewID(), PartyID: flexhub.NewID()}
			_, err := tx.CreateWebhookDelivery(ctx, mk(ghost, "x", 0))
			return err
		})
		if err == nil {
			t.Error("a delivery to a missing endpoint was stored")
		}
		err = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			return tx.CreateWebhookEndpoint(ctx, flexhub.NewWebhookEndpoint(flexhub.NewID(), spec, base))
		})
		if err == nil {
			t.Error("an endpoint of a missing party was stored")
		}
	})
}
