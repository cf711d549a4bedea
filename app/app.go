// Package app holds flexhub's use cases: every operation a party can ask
// for, as one method that authorises the caller, validates the input,
// changes the store in one transaction, and appends the change to the
// audit chain in that same transaction. Stores only persist; HTTP and MQTT
// handlers only translate to and from these methods.
package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/clearing"
)

// Service is the application layer over one store.
type Service struct {
	store flexhub.Store
	log   *slog.Logger
	now   func() time.Time
	solve Solver        // the clearing engine
	retry retries       // failed clearings waiting for their retry
	pub   Publisher     // MQTT bus for orders and alerts; nil: REST and webhooks only
	kick  chan struct{} // wakes the activation loop (KickActivation)
	// monitorQ carries resources with fresh meter data to the delivery
	// monitor (monitor.go).
	monitorQ chan string
	// stream carries committed ingestions to the real-time stream of
	// consumer data (consumerdata.go) while it runs.
	stream consumerStream
	// settleTrace, when set, is told how long each phase of a settlement
	// run took (BenchmarkSettlementRun): "verify" (the orders listed, their
	// meter data read, baselines computed, verified), "statements" and
	// "write" (everything stored; the commit follows).
	settleTrace func(phase string, took time.Duration)
	anonK       int            // the fewest consumers an aggregate is published over; 0: DefaultAnonymityK (aggregate.go)
	grids       gridModelCache // compiled grid model versions (gridmodel.go)
	gstates     gridStates     // analysers and operating states (gridforecast.go)
}

// New returns a Service. log may be nil.
func New(store flexhub.Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, log: log, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }, solve: clearing.Solve, kick: make(chan struct{}, 1), monitorQ: make(chan string, 10_000), stream: newConsumerStream()}
}

// SetClock replaces the clock (tests, demos that replay a day).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Store returns the underlying store.
func (s *Service) Store() flexhub.Store { return s.store }

type actorKey struct{}

// WithActor returns a context in which p is the authenticated caller.
func WithActor(ctx context.Context, p *flexhub.Party) context.Context {
	return context.WithValue(ctx, actorKey{}, p)
}

// ActorFrom returns the authenticated caller, or nil.
func ActorFrom(ctx context.Context) *flexhub.Party {
	p, _ := ctx.Value(actorKey{}).(*flexhub.Party)
	return p
}

// actor returns the caller, or EUnauthorized. With roles given, the caller
// must hold one of them (EForbidden otherwise).
func actor(ctx context.Context, roles ...flexhub.Role) (*flexhub.Party, error) {
	p := ActorFrom(ctx)
	if p == nil {
		return nil, flexhub.Errorf(flexhub.EUnauthorized, "authenticate with an API key: Authorization: Bearer <key>")
	}
	if len(roles) > 0 && !p.HasAnyRole(roles...) {
		names := ""
		for i, r := range roles {
			if i > 0 {
				names += " or "
			}
			names += string(r)
		}
		return nil, flexhub.Errorf(flexhub.EForbidden, "this needs the role %s; party %s has %v", names, p.EIC, p.Roles)
	}
	return p, nil
}

// privileged reports whether p may see the whole register: the platform
// administrator and the flexibility register operator.
func privileged(p *flexhub.Party) bool {
	return p.HasAnyRole(flexhub.RoleAdmin, flexhub.RoleFlexibilityRegisterOperator)
}

// record appends an audit entry for a change of obj, naming the parties
// entitled to read it (the actor always is).
func (s *Service) record(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, action, kind, id string, version int64, obj any, parties ...string) error {
	return s.recordAs(ctx, tx, by.ID, action, kind, id, version, obj, append([]string{by.ID}, parties...)...)
}

// recordAs appends an audit entry for a change made by actorID, which
// need not be a party: the scheduler acts for the clock (SchedulerActor).
func (s *Service) recordAs(ctx context.Context, tx flexhub.Tx, actorID, action, kind, id string, version int64, obj any, parties ...string) error {
	return tx.AppendAudit(ctx, s.auditEntry(actorID, action, kind, id, version, obj, parties...))
}

// auditEntry is the entry recordAs appends (for the set-based
// AppendAudits).
func (s *Service) auditEntry(actorID, action, kind, id string, version int64, obj any, parties ...string) *flexhub.AuditEntry {
	return s.auditEntryHash(actorID, action, kind, id, version, flexhub.PayloadHash(obj), parties...)
}

// auditEntryHash is auditEntry for an object whose payload hash is known
// (a store that encoded it returned it).
func (s *Service) auditEntryHash(actorID, action, kind, id string, version int64, hash string, parties ...string) *flexhub.AuditEntry {
	return &flexhub.AuditEntry{
		At: s.now(), ActorID: actorID, Action: action, ObjectKind: kind, ObjectID: id, Version: version,
		Parties: dedupe(parties), PayloadHash: hash,
	}
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// replay looks up an idempotency key inside a create's transaction. It
// returns the id of the object the first request created, or "" if the
// key is new (or empty). The same key with a different request is an
// error.
func replay(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, key, kind string, request any) (string, error) {
	if key == "" {
		return "", nil
	}
	if len(key) > 200 {
		return "", flexhub.FieldErrorf("Idempotency-Key", "keep idempotency keys under 200 characters")
	}
	rec, err := tx.Idempotency(ctx, by.ID, key)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if rec.ObjectKind != kind || rec.Fingerprint != flexhub.PayloadHash(request) {
		return "", flexhub.Errorf(flexhub.EConflict, "idempotency key %q was already used for a different request (%s %s); use a new key", key, rec.ObjectKind, rec.ObjectID)
	}
	return rec.ObjectID, nil
}

// remember stores an idempotency key with the object it created.
func (s *Service) remember(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, key, kind, id string, request any) error {
	if key == "" {
		return nil
	}
	return tx.PutIdempotency(ctx, &flexhub.IdempotencyRecord{PartyID: by.ID, Key: key, Fingerprint: flexhub.PayloadHash(request), ObjectKind: kind, ObjectID: id, CreatedAt: s.now()})
}

// snapshot freezes a request for its idempotency fingerprint: the create
// normalises its input in place (UTC times, canonical amounts), and a
// retry must be compared with the request as it was sent.
func snapshot(request any) json.RawMessage {
	b, err := json.Marshal(request)
	if err != nil {
		return nil
	}
	return b
}

// Created is what a create returns: the object, and whether it is the
// replay of an earlier request with the same idempotency key.
type Created[T any] struct {
	Object   *T
	Replayed bool
}

// create runs the common shape of every create: replay check, the make
// function (validate, insert, audit), and the idempotency record, in one
// transaction. load reads back a replayed object.
func create[T any](ctx context.Context, s *Service, by *flexhub.Party, key, kind string, request any,
	load func(tx flexhub.Tx, id string) (*T, error),
	make func(tx flexhub.Tx) (*T, string, error)) (*Created[T], error) {
	var out Created[T]
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		id, err := replay(ctx, tx, by, key, kind, request)
		if err != nil {
			return err
		}
		if id != "" {
			obj, err := load(tx, id)
			out = Created[T]{Object: obj, Replayed: true}
			return err
		}
		obj, id, err := make(tx)
		if err != nil {
			return err
		}
		out.Object = obj
		return s.remember(ctx, tx, by, key, kind, id, request)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// notFoundOr hides objects the caller may not see: it answers as if they
// did not exist, so ids cannot be probed.
func notFound(kind, id string) error {
	return flexhub.Errorf(flexhub.ENotFound, "%s %s not found", kind, id)
}

// ListResult is one page of a list.
type ListResult[T any] struct {
	Items []*T
	Next  string
}

// checkVersion compares the version the caller read (If-Match) with the
// stored one, before any other work.
func checkVersion(kind, id string, sent, stored int64) error {
	if sent != stored {
		return flexhub.Errorf(flexhub.EConflict, "%s %s was changed by someone else: it is at version %d, you sent version %d; read it again and retry", kind, id, stored, sent)
	}
	return nil
}

// Now is the service's clock (UTC): the real time, or a demo's replayed one.
func (s *Service) Now() time.Time { return s.now() }

// readAs runs read in a read-only transaction as the caller: the shape
// of every "get one object the caller may see" (read answers notFound for
// objects the caller may not see).
func readAs[T any](ctx context.Context, s *Service, read func(tx flexhub.Tx, by *flexhub.Party) (*T, error)) (*T, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *T
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out, err = read(tx, by)
		return err
	})
	return out, err
}
