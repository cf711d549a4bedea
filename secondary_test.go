package flexhub

import (
	"testing"
	"time"
)

func TestSecondaryOfferSpecValidate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good := func() SecondaryOfferSpec {
		return SecondaryOfferSpec{ObligationID: " o1 ", Price: Money{Amount: "5.5", Currency: "EUR"}, Expiry: now.Add(time.Hour)}
	}
	s := good()
	if err := s.Validate(now); err != nil {
		t.Fatal(err)
	}
	if s.ObligationID != "o1" || s.Price.Amount != "5.50" || s.ObjectionMinutes != DefaultObjectionMinutes || s.ObjectionWindow() != 15*time.Minute {
		t.Errorf("normalised spec %+v", s)
	}
	for _, c := range []struct {
		name, rule, field string
		edit              func(*SecondaryOfferSpec)
	}{
		{"no obligation", "offer.obligation", "obligation_id", func(s *SecondaryOfferSpec) { s.ObligationID = "" }},
		{"negative price", "offer.price.negative", "price.amount", func(s *SecondaryOfferSpec) { s.Price.Amount = "-1" }},
		{"bad currency", "", "price.currency", func(s *SecondaryOfferSpec) { s.Price.Currency = "eur" }},
		{"no expiry", "offer.expiry", "expiry", func(s *SecondaryOfferSpec) { s.Expiry = time.Time{} }},
		{"expiry now", "offer.expiry", "expiry", func(s *SecondaryOfferSpec) { s.Expiry = now }},
		{"window too long", "offer.objection_window", "objection_minutes", func(s *SecondaryOfferSpec) { s.ObjectionMinutes = MaxObjectionMinutes + 1 }},
		{"window negative", "offer.objection_window", "objection_minutes", func(s *SecondaryOfferSpec) { s.ObjectionMinutes = -1 }},
	} {
		s := good()
		c.edit(&s)
		err := s.Validate(now)
		if ErrorKind(err) != EInvalid || ErrorRule(err) != c.rule || ErrorField(err) != c.field {
			t.Errorf("%s: %v (rule %q, field %q), want rule %q field %q", c.name, err, ErrorRule(err), ErrorField(err), c.rule, c.field)
		}
	}
}

// The trade's state machine: each step from the one state it allows;
// every other transition is refused with EConflict (or EGone once the
// objection window ended) and leaves the trade as it was.
func TestTradeStateMachine(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	window := 15 * time.Minute
	mk := func(status string) *Trade {
		tr := &Trade{ID: "t", Status: status}
		if status != TradeProposed {
			end := now.Add(window)
			tr.ObjectionWindowEnd = &end
		}
		return tr
	}
	steps := map[string]func(*Trade) error{
		"confirm":  func(tr *Trade) error { return tr.Confirm(now, window) },
		"object":   func(tr *Trade) error { return tr.Object(now, "no") },
		"complete": func(tr *Trade) error { return tr.Complete(now.Add(window), "o2") },
		"cancel":   func(tr *Trade) error { return tr.Cancel(now, "changed my mind") },
		"expire":   func(tr *Trade) error { return tr.Expire(now, "offer expired") },
	}
	legal := map[string]map[string]string{
		TradeProposed:  {"confirm": TradeConfirmed, "cancel": TradeCancelled, "expire": TradeExpired},
		TradeConfirmed: {"object": TradeObjected, "complete": TradeCompleted},
	}
	for _, from := range []string{TradeProposed, TradeConfirmed, TradeObjected, TradeCompleted, TradeCancelled, TradeExpired} {
		for name, step := range steps {
			tr := mk(from)
			err := step(tr)
			if to, ok := legal[from][name]; ok {
				if err != nil || tr.Status != to {
					t.Errorf("%s from %s: %v, status %s, want %s", name, from, err, tr.Status, to)
				}
				continue
			}
			if ErrorKind(err) != EConflict || tr.Status != from {
				t.Errorf("%s from %s: %v (status %s), want a conflict and no change", name, from, err, tr.Status)
			}
		}
	}
	// Objections only within the window; completion only after it.
	tr := mk(TradeConfirmed)
	if err := tr.Object(now.Add(window), "late"); ErrorKind(err) != EGone || ErrorRule(err) != "trade.objection_window" || tr.Status != TradeConfirmed {
		t.Errorf("objection at the window's end: %v", err)
	}
	if err := tr.Complete(now.Add(window-time.Microsecond), "o2"); ErrorKind(err) != EConflict || tr.Status != TradeConfirmed {
		t.Errorf("completion inside the window: %v", err)
	}
	tr = mk(TradeProposed)
	if err := tr.Confirm(now, window); err != nil || tr.SellerConfirmedAt == nil || !tr.ObjectionWindowEnd.Equal(now.Add(window)) {
		t.Errorf("confirm: %v, %+v", err, tr)
	}
}

// The offer's state machine, likewise.
func TestSecondaryOfferStateMachine(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	expiry := now.Add(time.Hour)
	steps := map[string]func(*SecondaryOffer) error{
		"reserve": func(o *SecondaryOffer) error { return o.Reserve("t", now) },
		"release": func(o *SecondaryOffer) error { return o.Release(now) },
		"traded":  func(o *SecondaryOffer) error { return o.MarkTraded(now) },
		"cancel":  func(o *SecondaryOffer) error { return o.Cancel(now) },
		"expire":  func(o *SecondaryOffer) error { return o.Expire(expiry) },
	}
	legal := map[string]map[string]string{
		OfferOpen:     {"reserve": OfferReserved, "cancel": OfferCancelled, "expire": OfferExpired},
		OfferReserved: {"release": OfferOpen, "traded": OfferTraded},
	}
	for _, from := range []string{OfferOpen, OfferReserved, OfferTraded, OfferCancelled, OfferExpired} {
		for name, step := range steps {
			o := &SecondaryOffer{ID: "o", Status: from, SecondaryOfferSpec: SecondaryOfferSpec{Expiry: expiry}}
			err := step(o)
			if to, ok := legal[from][name]; ok {
				if err != nil || o.Status != to {
					t.Errorf("%s from %s: %v, status %s, want %s", name, from, err, o.Status, to)
				}
				continue
			}
			if ErrorKind(err) != EConflict || o.Status != from {
				t.Errorf("%s from %s: %v (status %s), want a conflict and no change", name, from, err, o.Status)
			}
		}
	}
	o := &SecondaryOffer{ID: "o", Status: OfferOpen, SecondaryOfferSpec: SecondaryOfferSpec{Expiry: expiry}}
	if err := o.Expire(now); ErrorKind(err) != EConflict || o.Status != OfferOpen {
		t.Errorf("expiry before its time: %v", err)
	}
	if err := o.Takeable(expiry); ErrorKind(err) != EGone || ErrorRule(err) != "offer.expired" {
		t.Errorf("takeable at expiry: %v", err)
	}
	o.Status = OfferReserved
	if err := o.Takeable(now); ErrorKind(err) != EConflict || ErrorRule(err) != "offer.reserved" {
		t.Errorf("takeable while reserved: %v", err)
	}
}
