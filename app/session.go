package app

import (
	"context"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

// Market sessions: a call for tender over one or more needs of one
// product, with a gate opening and a gate closure. Sessions are public to
// authenticated parties. The gates move on time by the scheduler
// (RunScheduler), not by anyone calling an endpoint; because the state
// lives in the store, a restarted flexhub picks up whatever fell due while
// it was down.

// SchedulerActor is the actor of the audit entries the scheduler writes:
// no party opened or closed the gate, the clock did.
const SchedulerActor = "flexhub-scheduler"

// CreateSession opens a call for tender. The caller operates the session:
// a market operator, or the system operator buying the needs' product
// acting as one. The needs must be open, of one product, in no other
// session, and their delivery must start after gate closure.
func (s *Service) CreateSession(ctx context.Context, spec flexhub.SessionSpec, key string) (*Created[flexhub.MarketSession], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := spec.Validate(now); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindMarketSession, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.MarketSession, error) { return tx.MarketSession(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.MarketSession, string, error) {
			needs := make([]*flexhub.Need, len(spec.NeedIDs))
			for i, id := range spec.NeedIDs {
				f := fmt.Sprintf("need_ids[%d]", i)
				n, err := tx.Need(ctx, id)
				if flexhub.ErrorKind(err) == flexhub.ENotFound {
					return nil, "", flexhub.FieldErrorf(f, "need %s not found", id)
				}
				if err != nil {
					return nil, "", err
				}
				switch {
				case n.Status != flexhub.NeedOpen:
					return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "session.need_open", f, "need %s is %s; a session takes open needs", id, n.Status)
				case n.SessionID != "":
					return nil, "", flexhub.RuleErrorf(flexhub.EConflict, "session.need_taken", f, "need %s already belongs to session %s", id, n.SessionID)
				case i > 0 && n.ProductID != needs[0].ProductID:
					return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "session.same_product", f, "need %s is for product %s, need %s for product %s; a session clears one product", id, n.ProductID, needs[0].ID, needs[0].ProductID)
				case spec.GateClosure.After(n.Intervals[0].Start):
					return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "session.gate_after_delivery", "gate_closure", "gate closure %s is after need %s starts delivery at %s; close the gate before delivery",
						spec.GateClosure.Format(time.RFC3339), id, n.Intervals[0].Start.Format(time.RFC3339))
				}
				needs[i] = n
			}
			prod, err := activeProduct(ctx, tx, "need_ids[0]", needs[0].ProductID)
			if err != nil {
				return nil, "", err
			}
			if !by.HasRole(flexhub.RoleMarketOperator) && by.ID != prod.SystemOperatorID {
				return nil, "", flexhub.Errorf(flexhub.EForbidden, "a market session is run by a market operator, or by system operator %s that buys product %s; party %s is neither", prod.SystemOperatorID, prod.ID, by.EIC)
			}
			m := &flexhub.MarketSession{ID: flexhub.NewID(), SessionSpec: spec, OperatorID: by.ID, ProductID: prod.ID, SystemOperatorID: prod.SystemOperatorID,
				Status: flexhub.SessionScheduled, CreatedAt: now, UpdatedAt: now}
			m.NeedIDs = append([]string(nil), spec.NeedIDs...)
			opened := false
			if m.Due(now) == "open" {
				// A gate that opens now (or opened already) opens at once:
				// an FSP reading the new session may bid straight away.
				if err := m.Open(now); err != nil {
					return nil, "", err
				}
				opened = true
			}
			if err := tx.CreateMarketSession(ctx, m); err != nil {
				return nil, "", err
			}
			for _, n := range needs {
				n.SessionID, n.UpdatedAt = m.ID, now
				if err := tx.UpdateNeed(ctx, n); err != nil {
					return nil, "", err
				}
			}
			if err := s.record(ctx, tx, by, "session.created", flexhub.KindMarketSession, m.ID, m.Version, m, m.OperatorID, m.SystemOperatorID); err != nil {
				return nil, "", err
			}
			if opened {
				if err := s.announce(ctx, tx, m, "session.opened", now); err != nil {
					return nil, "", err
				}
			}
			return m, m.ID, nil
		})
}

// audience returns who hears that a session opened or closed: its
// operator, the buying system operator, and every FSP holding an approved
// prequalification for the product that is valid now.
func audience(ctx context.Context, tx flexhub.Tx, m *flexhub.MarketSession, now time.Time) ([]string, error) {
	out := []string{m.OperatorID, m.SystemOperatorID}
	for _, status := range []string{flexhub.PrequalApproved, flexhub.PrequalApprovedConditions} {
		pqs, err := listAll(func(pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
			return tx.ListPrequalifications(ctx, flexhub.Filter{"product_id": m.ProductID, "status": status}, pg)
		})
		if err != nil {
			return nil, err
		}
		for _, p := range pqs {
			if p.ValidAt(now) {
				out = append(out, p.FSPID)
			}
		}
	}
	return dedupe(out), nil
}

// announce records a gate transition in the audit chain (by the
// scheduler) and notifies the session's audience.
func (s *Service) announce(ctx context.Context, tx flexhub.Tx, m *flexhub.MarketSession, action string, now time.Time) error {
	if err := s.recordAs(ctx, tx, SchedulerActor, action, flexhub.KindMarketSession, m.ID, m.Version, m, m.OperatorID, m.SystemOperatorID); err != nil {
		return err
	}
	who, err := audience(ctx, tx, m, now)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("session %s (%s) is open for bids until %s", m.ID, m.Kind, m.GateClosure.Format(time.RFC3339))
	if action == "session.closed" {
		text = fmt.Sprintf("session %s (%s): gate closed at %s", m.ID, m.Kind, m.GateClosure.Format(time.RFC3339))
	}
	return s.notify(ctx, tx, who, action, flexhub.KindMarketSession, m.ID, m.ID, text)
}

// AdvanceSessions makes every gate transition that is due now, then
// clears every closed session that is not cleared yet (see clear.go),
// then completes secondary trades whose objection window passed and
// expires lapsed offers (see secondary.go), and returns how many of these
// changes it made. Each runs in its own transaction as a
// conditional, versioned update: when two flexhub instances share a
// database, the one that loses the race finds the session moved on (or
// its update refused) and writes nothing, so each transition is made and
// audited exactly once.
func (s *Service) AdvanceSessions(ctx context.Context) (int, error) {
	n, err := s.advanceGates(ctx, true)
	if err != nil {
		return n, err
	}
	cleared, err := s.sweepClearings(ctx)
	if err != nil {
		return n + cleared, err
	}
	// The secondary market's deadlines (objection windows, offer
	// expiries) ride on the same tick: see secondary.go.
	traded, err := s.sweepSecondary(ctx)
	if err != nil {
		return n + cleared + traded, err
	}
	// Activation orders: sends, ack deadlines, start and end (activation.go).
	orders, err := s.SweepActivationOrders(ctx)
	return n + cleared + traded + orders, err
}

// advanceGates makes every due gate transition; with clearNow, a session
// it closes is cleared straight away in the same call.
func (s *Service) advanceGates(ctx context.Context, clearNow bool) (int, error) {
	var due []*flexhub.MarketSession
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		due, err = tx.DueMarketSessions(ctx, s.now(), flexhub.MaxPageLimit)
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range due {
		for {
			step, err := s.advance(ctx, d.ID, clearNow)
			if err != nil {
				if flexhub.ErrorKind(err) == flexhub.EConflict {
					break // another instance moved it; its next state is its job
				}
				return n, fmt.Errorf("session %s: %w", d.ID, err)
			}
			if step == "" {
				break
			}
			n++
		}
	}
	return n, nil
}

// advance makes the one transition session id is due for, if any, and
// returns it ("open", "close" or "").
func (s *Service) advance(ctx context.Context, id string, clearNow bool) (string, error) {
	var step string
	var closed bool
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		step = ""
		m, err := tx.MarketSession(ctx, id)
		if err != nil {
			return err
		}
		now := s.now()
		switch m.Due(now) {
		case "open":
			if err := m.Open(now); err != nil {
				return err
			}
			if err := tx.UpdateMarketSession(ctx, m); err != nil {
				return err
			}
			step = "open"
			return s.announce(ctx, tx, m, "session.opened", now)
		case "close":
			if err := m.Close(now); err != nil {
				return err
			}
			if err := tx.UpdateMarketSession(ctx, m); err != nil {
				return err
			}
			// Closing the session closes its needs: they can no longer be
			// revised, and the clearing reads them as they were at the gate.
			for _, nid := range m.NeedIDs {
				n, err := tx.Need(ctx, nid)
				if err != nil {
					return err
				}
				if n.Status != flexhub.NeedOpen {
					continue
				}
				n.Status, n.UpdatedAt = flexhub.NeedClosed, now
				if err := tx.UpdateNeed(ctx, n); err != nil {
					return err
				}
				if err := s.recordAs(ctx, tx, SchedulerActor, "need.closed", flexhub.KindNeed, n.ID, n.Version, n, n.SystemOperatorID); err != nil {
					return err
				}
			}
			step, closed = "close", true
			return s.announce(ctx, tx, m, "session.closed", now)
		}
		return nil
	})
	if err != nil || !closed || !clearNow {
		return step, err
	}
	// Clear straight after the closure committed; a failure is logged
	// and left to the sweep (tryClear never returns it).
	s.tryClear(ctx, id)
	return step, nil
}

// RunScheduler makes due gate transitions every interval until ctx ends,
// starting at once so that a restart catches up straight away. Errors are
// logged and retried on the next tick: a database that is briefly away
// must not stop the market.
//
// Clearing runs in a loop of its own: a hard clearing may take a while,
// and no session's gate may close late because another session is being
// cleared.
func (s *Service) RunScheduler(ctx context.Context, every time.Duration) {
	done := make(chan struct{}, 4)
	go func() {
		defer func() { done <- struct{}{} }()
		s.runMonitor(ctx, time.Second)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		s.runNotificationPush(ctx, 250*time.Millisecond)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		s.loop(ctx, every, "clearing", func() (int, error) { return s.sweepClearings(ctx) })
	}()
	// Orders in a loop of their own: a slow broker never delays a gate.
	go func() {
		defer func() { done <- struct{}{} }()
		s.loopKicked(ctx, every, "activation", s.kick, func() (int, error) { return s.SweepActivationOrders(ctx) })
	}()
	s.loop(ctx, every, "gates", func() (int, error) {
		n, err := s.advanceGates(ctx, false)
		if err != nil {
			return n, err
		}
		traded, err := s.sweepSecondary(ctx)
		return n + traded, err
	})
	<-done
	<-done
	<-done
	<-done
}

func (s *Service) loop(ctx context.Context, every time.Duration, name string, tick func() (int, error)) {
	s.loopKicked(ctx, every, name, nil, tick)
}

// loopKicked is loop that also runs when kick fires.
func (s *Service) loopKicked(ctx context.Context, every time.Duration, name string, kick <-chan struct{}, tick func() (int, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := tick(); err != nil && ctx.Err() == nil {
			s.log.Error("scheduler", "loop", name, "err", err)
		} else if n > 0 {
			s.log.Info("scheduler", "loop", name, "changes", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// CancelSession ends a session before gate closure, by its operator. Its
// needs are free again for another session; bids in it stay as they are
// and are never cleared.
func (s *Service) CancelSession(ctx context.Context, id string, version int64) (*flexhub.MarketSession, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.MarketSession
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		m, err := tx.MarketSession(ctx, id)
		if err != nil {
			return err
		}
		if m.OperatorID != by.ID {
			return flexhub.Errorf(flexhub.EForbidden, "only operator %s of session %s may cancel it", m.OperatorID, id)
		}
		if version > 0 {
			if err := checkVersion("market session", id, version, m.Version); err != nil {
				return err
			}
		}
		now := s.now()
		if err := m.Cancel(now); err != nil {
			return err
		}
		if err := tx.UpdateMarketSession(ctx, m); err != nil {
			return err
		}
		for _, nid := range m.NeedIDs {
			n, err := tx.Need(ctx, nid)
			if err != nil {
				return err
			}
			if n.SessionID == m.ID {
				n.SessionID, n.UpdatedAt = "", now
				if err := tx.UpdateNeed(ctx, n); err != nil {
					return err
				}
			}
		}
		out = m
		return s.record(ctx, tx, by, "session.cancelled", flexhub.KindMarketSession, m.ID, m.Version, m, m.OperatorID, m.SystemOperatorID)
	})
	return out, err
}

// GetSession returns a session; sessions are public to authenticated
// parties.
func (s *Service) GetSession(ctx context.Context, id string) (*flexhub.MarketSession, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	var out *flexhub.MarketSession
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out, err = tx.MarketSession(ctx, id)
		return err
	})
	return out, err
}

// SessionFilter narrows a session list.
type SessionFilter struct {
	OperatorID       string
	ProductID        string
	SystemOperatorID string
	Status           string
}

// ListSessions lists sessions; public, so nothing is scoped.
func (s *Service) ListSessions(ctx context.Context, f SessionFilter, pg flexhub.Page) (*ListResult[flexhub.MarketSession], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	filter, err := buildFilter(idParam{"operator_id", f.OperatorID}, idParam{"product_id", f.ProductID}, idParam{"system_operator_id", f.SystemOperatorID})
	if err != nil {
		return nil, err
	}
	for k, v := range filter {
		if v == "self" {
			filter[k] = by.ID
		}
	}
	if err := statusParam(filter, f.Status, "market session", []string{flexhub.SessionScheduled, flexhub.SessionOpen, flexhub.SessionClosed, flexhub.SessionCleared, flexhub.SessionClearingFailed, flexhub.SessionCancelled}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.MarketSession]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out.Items, out.Next, err = tx.ListMarketSessions(ctx, filter, pg)
		return err
	})
	return &out, err
}
