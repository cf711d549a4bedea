// Package storetest is the conformance suite of flexhub.Store. Every store
// implementation (sqlite, postgres) runs the same suite from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) flexhub.Store { ... })
//	}
//
// The suite checks behaviour callers rely on: create/get/list of every
// kind, not-found and conflict errors, optimistic concurrency, history,
// filters and pagination, transaction atomicity and isolation, the audit
// chain (also under concurrent writers), credentials and idempotency keys.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// Run runs the conformance suite. Every subtest calls open(t) for its own
// fresh, empty store; open must register with t.Cleanup whatever releases
// the store (closing it, removing its database).
func Run(t *testing.T, open func(t *testing.T) flexhub.Store) {
	s := &suite{open: open}
	t.Run("EmptyStore", s.testEmptyStore)
	t.Run("CreateGetList", s.testCreateGetList)
	t.Run("PartyByEIC", s.testPartyByEIC)
	t.Run("NotFound", s.testNotFound)
	t.Run("IdentityConflicts", s.testIdentityConflicts)
	t.Run("ForeignKeys", s.testForeignKeys)
	t.Run("OptimisticConcurrency", s.testOptimisticConcurrency)
	t.Run("ConcurrentUpdates", s.testConcurrentUpdates)
	t.Run("ConcurrentCreates", s.testConcurrentCreates)
	t.Run("History", s.testHistory)
	t.Run("ListFilters", s.testListFilters)
	t.Run("CombinedFilters", s.testCombinedFilters)
	t.Run("UnknownFilter", s.testUnknownFilter)
	t.Run("UpdateMaintainsIndexes", s.testUpdateMaintainsIndexes)
	t.Run("Pagination", s.testPagination)
	t.Run("UpdateAtomicity", s.testUpdateAtomicity)
	t.Run("View", s.testView)
	t.Run("Audit", s.testAudit)
	t.Run("Credentials", s.testCredentials)
	t.Run("Idempotency", s.testIdempotency)
	t.Run("DueMarketSessions", s.testDueMarketSessions)
	t.Run("Notifications", s.testNotifications)
	t.Run("SecondaryMarket", s.testSecondaryMarket)
	t.Run("Metering", s.testMetering)                   // metering.go
	t.Run("Activation", s.testActivation)               // activation.go
	t.Run("ActivationBatches", s.testActivationBatches) // activation_batch.go
	t.Run("Webhooks", s.testWebhooks)                   // webhook.go
	t.Run("Nominations", s.testNominations)             // nomination.go
	t.Run("Settlement", s.testSettlement)               // settlement.go
	t.Run("SettlementBulk", s.testSettlementBulk)       // settlement.go
	t.Run("TrafficLight", s.testTrafficLight)           // trafficlight.go
	t.Run("ConsentsInForce", s.testConsentsInForce)     // consent.go
	t.Run("GridModels", s.testGridModels)               // gridmodel.go
}

type suite struct {
	open func(t *testing.T) flexhub.Store
}

// base is when fixture objects are created; tests update them at
// base+1h and base+2h. All times have microsecond precision, which both
// stores keep exactly.
var base = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

var counter atomic.Int64

// eic returns a new valid 16-character EIC of type typ ('X' parties, 'Y'
// areas), unique within the test binary.
func eic(typ byte) string {
	for {
		first := fmt.Sprintf("10%cFH%010d", typ, counter.Add(1))
		c := flexhub.EICCheckChar(first)
		if c == '-' { // no valid EIC ends in '-'; take the next number
			continue
		}
		code := first + string(c)
		if err := flexhub.ValidateEIC("eic", code); err != nil {
			panic("storetest: built an invalid EIC: " + err.Error())
		}
		return code
	}
}

// code returns a new unique code with the given prefix.
func code(prefix string) string { return fmt.Sprintf("%s%012d", prefix, counter.Add(1)) }

// ---------------------------------------------------------------------
// Fixture: a world is one complete, referentially consistent set of
// objects of every kind. Tests usually seed two worlds so that filters
// have something to tell apart.

type world struct {
	TSO, DSO, FSP, Consumer, Supplier *flexhub.Party
	ControlArea                       *flexhub.ControlArea
	GridArea                          *flexhub.GridArea
	ConnectionPoint                   *flexhub.ConnectionPoint
	MeteringPoint                     *flexhub.MeteringPoint
	Unit, Group                       *flexhub.Resource
	Product                           *flexhub.Product
	Prequal                           *flexhub.Prequalification
	GridPrequal                       *flexhub.GridPrequalification
	Contract                          *flexhub.Contract
	Session                           *flexhub.MarketSession
	Need                              *flexhub.Need
	Bid                               *flexhub.Bid
	Award                             *flexhub.Award
	Obligation                        *flexhub.Obligation
	NeedResult                        *flexhub.NeedResult
	Offer                             *flexhub.SecondaryOffer
	Trade                             *flexhub.Trade
}

// worldStatuses gives each world different statuses, so status filters
// can be checked.
var worldStatuses = []struct{ resource, product, prequal, gridPrequal, contract, session, need, bid, award, obligation, offer, trade string }{
	{flexhub.ResourceActive, "active", flexhub.PrequalSubmitted, flexhub.GridPrequalRequested, flexhub.ContractProposed,
		flexhub.SessionOpen, flexhub.NeedOpen, flexhub.BidSubmitted, flexhub.AwardAccepted, flexhub.ObligationActive, flexhub.OfferOpen, flexhub.TradeProposed},
	{flexhub.ResourceDeregistered, "retired", flexhub.PrequalApproved, flexhub.GridPrequalApproved, flexhub.ContractActive,
		flexhub.SessionClosed, flexhub.NeedClosed, flexhub.BidWithdrawn, flexhub.AwardPartiallyAccepted, "delivered", flexhub.OfferTraded, flexhub.TradeConfirmed},
}

func newParty(name string, roles ...flexhub.Role) *flexhub.Party {
	return &flexhub.Party{
		ID:        flexhub.NewID(),
		PartySpec: flexhub.PartySpec{EIC: eic('X'), Name: name, Roles: roles, Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com"},
		CreatedAt: base, UpdatedAt: base,
	}
}

func newWorld(n int) *world {
	st := worldStatuses[n%len(worldStatuses)]
	tag := fmt.Sprint(n)
	w := &world{
		TSO:      newParty("TSO "+tag, flexhub.RoleTSO),
		DSO:      newParty("DSO "+tag, flexhub.RoleDSO),
		FSP:      newParty("FSP "+tag, flexhub.RoleFSP),
		Consumer: newParty("Consumer "+tag, flexhub.RoleConsumer),
		Supplier: newParty("Supplier "+tag, flexhub.RoleSupplier, flexhub.RoleBRP),
	}
	w.ControlArea = &flexhub.ControlArea{ID: flexhub.NewID(), CreatedAt: base,
		ControlAreaSpec: flexhub.ControlAreaSpec{EIC: eic('Y'), Name: "Control area " + tag, TSOID: w.TSO.ID}}
	w.GridArea = &flexhub.GridArea{ID: flexhub.NewID(), CreatedAt: base,
		GridAreaSpec: flexhub.GridAreaSpec{EIC: eic('Y'), Name: "Grid area " + tag, DSOID: w.DSO.ID, ControlAreaID: w.ControlArea.ID}}
	w.ConnectionPoint = &flexhub.ConnectionPoint{ID: flexhub.NewID(), DSOID: w.DSO.ID, CreatedAt: base, UpdatedAt: base,
		ConnectionPointSpec: flexhub.ConnectionPointSpec{Code: code("CP"), GridAreaID: w.GridArea.ID, NodeRef: "LV1.101 Bus " + tag, VoltageKV: 0.4, Capacity: flexhub.KW(250)}}
	w.MeteringPoint = &flexhub.MeteringPoint{ID: flexhub.NewID(), DSOID: w.DSO.ID, CreatedAt: base, UpdatedAt: base,
		MeteringPointSpec: flexhub.MeteringPointSpec{Code: code("707057"), ConnectionPointID: w.ConnectionPoint.ID, ConsumerID: w.Consumer.ID,
			SupplierID: w.Supplier.ID, BRPID: w.Supplier.ID, Direction: "consumption"},
		Assignments: []flexhub.MarketAssignment{{SupplierID: w.Supplier.ID, BRPID: w.Supplier.ID, ValidFrom: base}}}
	w.Unit = &flexhub.Resource{ID: flexhub.NewID(), FSPID: w.FSP.ID, DSOID: w.DSO.ID, Status: st.resource, ValidFrom: base, CreatedAt: base,
		ResourceSpec: flexhub.ResourceSpec{Name: "Battery " + tag, Kind: flexhub.ResourceUnit, UnitType: "battery", OwnerID: w.Consumer.ID,
			MeteringPointID: w.MeteringPoint.ID, ConnectionPointID: w.ConnectionPoint.ID,
			Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(100), MaxDown: flexhub.KW(50), FullActivationTime: "PT5M",
				EnergyLimit:  &flexhub.Energy{Value: 200, Unit: "kWh"},
				Availability: []flexhub.AvailabilityWindow{{Weekdays: []string{"mon", "tue"}, From: "06:00", To: "22:00"}}}}}
	w.Group = &flexhub.Resource{ID: flexhub.NewID(), FSPID: w.FSP.ID, Status: st.resource, ValidFrom: base, CreatedAt: base,
		ResourceSpec: flexhub.ResourceSpec{Name: "Pool " + tag, Kind: flexhub.ResourceGroup, Members: []string{w.Unit.ID},
			Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(100)}}}
	w.Product = &flexhub.Product{ID: flexhub.NewID(), SystemOperatorID: w.DSO.ID, Status: st.product, CreatedAt: base, UpdatedAt: base,
		ProductSpec: flexhub.ProductSpec{Name: "Congestion " + tag, Service: "congestion_management", Direction: "up", PowerType: "active",
			MinBidSize: flexhub.KW(10), TimeResolution: "PT15M", FullActivationTime: "PT15M", ActivationMode: "manual",
			Remuneration: []string{"capacity", "energy"}, BaselineMethod: "meter_before",
			Requirements: []flexhub.Requirement{{Key: "telemetry", Question: "Does the resource send telemetry?", Required: true}}}}
	w.Prequal = &flexhub.Prequalification{ID: flexhub.NewID(), ResourceID: w.Unit.ID, ProductID: w.Product.ID, FSPID: w.FSP.ID,
		SystemOperatorID: w.DSO.ID, Status: st.prequal, Answers: map[string]string{"telemetry": "yes"},
		Messages:  []flexhub.PrequalMessage{{Type: "submitted", By: w.FSP.ID, At: base, Answers: map[string]string{"telemetry": "yes"}}},
		CreatedAt: base, UpdatedAt: base}
	w.GridPrequal = &flexhub.GridPrequalification{ID: flexhub.NewID(), ResourceID: w.Unit.ID, ConnectionPointID: w.ConnectionPoint.ID,
		DSOID: w.DSO.ID, FSPID: w.FSP.ID, Status: st.gridPrequal, CreatedAt: base, UpdatedAt: base}
	end := base.AddDate(1, 0, 0)
	w.Contract = &flexhub.Contract{ID: flexhub.NewID(), FSPID: w.FSP.ID, SystemOperatorID: w.DSO.ID, Status: st.contract,
		ProposedBy: w.FSP.ID, CreatedAt: base, UpdatedAt: base,
		ContractSpec: flexhub.ContractSpec{ProductID: w.Product.ID, ResourceIDs: []string{w.Unit.ID},
			Validity: flexhub.Interval{Start: base, End: &end}, Terms: "standard terms " + tag}}
	delivery := base.Add(24 * time.Hour)
	w.Session = &flexhub.MarketSession{ID: flexhub.NewID(), OperatorID: w.DSO.ID, ProductID: w.Product.ID, SystemOperatorID: w.DSO.ID,
		Status: st.session, CreatedAt: base, UpdatedAt: base,
		SessionSpec: flexhub.SessionSpec{Name: "Day ahead " + tag, Kind: "day_ahead", GateOpening: base.Add(time.Hour), GateClosure: base.Add(12 * time.Hour),
			Pricing: flexhub.PricingPayAsBid}}
	w.Need = &flexhub.Need{ID: flexhub.NewID(), SystemOperatorID: w.DSO.ID, SessionID: w.Session.ID, Status: st.need, CreatedAt: base, UpdatedAt: base,
		NeedSpec: flexhub.NeedSpec{ProductID: w.Product.ID, GridAreaID: w.GridArea.ID, Direction: "up", Buys: "capacity", Currency: "EUR",
			Description: "evening peak " + tag,
			Intervals: []flexhub.NeedInterval{{Start: delivery, Quantity: flexhub.MarketQuantity{Value: 1, Unit: "MW"},
				MaxPrice: &flexhub.Money{Amount: "45.50", Currency: "EUR"}}}}}
	w.Session.NeedIDs = []string{w.Need.ID}
	w.Bid = &flexhub.Bid{ID: flexhub.NewID(), FSPID: w.FSP.ID, SystemOperatorID: w.DSO.ID, OperatorID: w.DSO.ID, Status: st.bid, CreatedAt: base, UpdatedAt: base,
		BidSpec: flexhub.BidSpec{SessionID: w.Session.ID, NeedID: w.Need.ID, ResourceID: w.Unit.ID, ExclusiveGroup: "group " + tag,
			Intervals: []flexhub.BidInterval{{Start: delivery, Quantity: flexhub.MarketQuantity{Value: 100, Unit: "kW"},
				AvailabilityPrice: &flexhub.Money{Amount: "12.3456", Currency: "EUR"}}}}}
	eur := func(a string) *flexhub.Money { return &flexhub.Money{Amount: a, Currency: "EUR"} }
	w.Award = &flexhub.Award{ID: flexhub.NewID(), SessionID: w.Session.ID, NeedID: w.Need.ID, BidID: w.Bid.ID, FSPID: w.FSP.ID, ResourceID: w.Unit.ID,
		SystemOperatorID: w.DSO.ID, OperatorID: w.DSO.ID, Status: st.award, Pricing: flexhub.PricingPayAsBid, PriceBasis: flexhub.PriceAvailability,
		Unit: "W", Currency: "EUR", Amount: *eur("0.3086"), CreatedAt: base,
		Intervals: []flexhub.AwardInterval{{Start: delivery, Offered: 100_000, Accepted: 100_000, Price: eur("12.3456"), Amount: *eur("0.3086")}}}
	w.Obligation = &flexhub.Obligation{ID: flexhub.NewID(), AwardID: w.Award.ID, BidID: w.Bid.ID, SessionID: w.Session.ID, NeedID: w.Need.ID,
		ProductID: w.Product.ID, FSPID: w.FSP.ID, ResourceID: w.Unit.ID, SystemOperatorID: w.DSO.ID, OperatorID: w.DSO.ID, Direction: "up",
		Buys: "capacity", Unit: "W", Status: st.obligation, CreatedAt: base, UpdatedAt: base,
		Intervals: []flexhub.ObligationInterval{{Start: delivery, End: delivery.Add(15 * time.Minute), Quantity: 100_000}}}
	w.NeedResult = &flexhub.NeedResult{ID: flexhub.NewID(), SessionID: w.Session.ID, SystemOperatorID: w.DSO.ID, TotalCost: *eur("0.3086"), CreatedAt: base,
		NeedOutcome: flexhub.NeedOutcome{NeedID: w.Need.ID, Direction: "up", Buys: "capacity", PriceBasis: flexhub.PriceAvailability, Unit: "W", Currency: "EUR",
			Intervals: []flexhub.OutcomeInterval{{Start: delivery, Demand: 1_000_000, Accepted: 100_000, Shortfall: 900_000,
				MinPrice: eur("12.3456"), MaxPrice: eur("12.3456"), AveragePrice: eur("12.3456")}}}}
	// The world's supplier stands in as the buying FSP (the store does
	// not check roles); the group as its delivering resource.
	w.Offer = &flexhub.SecondaryOffer{ID: flexhub.NewID(), SellerFSPID: w.FSP.ID, SystemOperatorID: w.DSO.ID, SessionID: w.Session.ID, NeedID: w.Need.ID,
		ProductID: w.Product.ID, Direction: "up", Unit: "W", Intervals: w.Obligation.Intervals, Status: st.offer, CreatedAt: base, UpdatedAt: base,
		SecondaryOfferSpec: flexhub.SecondaryOfferSpec{ObligationID: w.Obligation.ID, BuyerFSPID: w.Supplier.ID, Price: *eur("1.25"),
			Expiry: delivery.Add(-time.Hour), ObjectionMinutes: 15}}
	w.Trade = &flexhub.Trade{ID: flexhub.NewID(), ObligationID: w.Obligation.ID, SellerFSPID: w.FSP.ID, BuyerFSPID: w.Supplier.ID,
		SystemOperatorID: w.DSO.ID, Price: *eur("1.25"), Status: st.trade, BuyerAcceptedAt: base, CreatedAt: base, UpdatedAt: base,
		TradeSpec: flexhub.TradeSpec{OfferID: w.Offer.ID, ResourceID: w.Group.ID}}
	if st.trade == flexhub.TradeConfirmed {
		end := base.Add(15 * time.Minute)
		w.Trade.SellerConfirmedAt, w.Trade.ObjectionWindowEnd = &base, &end
	}
	return w
}

func (w *world) parties() []*flexhub.Party {
	return []*flexhub.Party{w.TSO, w.DSO, w.FSP, w.Consumer, w.Supplier}
}

// create stores the world, referenced objects first.
func (w *world) create(ctx context.Context, tx flexhub.Tx) error {
	for _, p := range w.parties() {
		if err := tx.CreateParty(ctx, p); err != nil {
			return fmt.Errorf("create party %s: %w", p.Name, err)
		}
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"control area", func() error { return tx.CreateControlArea(ctx, w.ControlArea) }},
		{"grid area", func() error { return tx.CreateGridArea(ctx, w.GridArea) }},
		{"connection point", func() error { return tx.CreateConnectionPoint(ctx, w.ConnectionPoint) }},
		{"metering point", func() error { return tx.CreateMeteringPoint(ctx, w.MeteringPoint) }},
		{"unit", func() error { return tx.CreateResource(ctx, w.Unit) }},
		{"group", func() error { return tx.CreateResource(ctx, w.Group) }},
		{"product", func() error { return tx.CreateProduct(ctx, w.Product) }},
		{"prequalification", func() error { return tx.CreatePrequalification(ctx, w.Prequal) }},
		{"grid prequalification", func() error { return tx.CreateGridPrequalification(ctx, w.GridPrequal) }},
		{"contract", func() error { return tx.CreateContract(ctx, w.Contract) }},
		{"market session", func() error { return tx.CreateMarketSession(ctx, w.Session) }},
		{"need", func() error { return tx.CreateNeed(ctx, w.Need) }},
		{"bid", func() error { return tx.CreateBid(ctx, w.Bid) }},
		{"award", func() error { return tx.CreateAward(ctx, w.Award) }},
		{"obligation", func() error { return tx.CreateObligation(ctx, w.Obligation) }},
		{"need result", func() error { return tx.CreateNeedResult(ctx, w.NeedResult) }},
		{"secondary offer", func() error { return tx.CreateSecondaryOffer(ctx, w.Offer) }},
		{"trade", func() error { return tx.CreateTrade(ctx, w.Trade) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			return fmt.Errorf("create %s: %w", st.what, err)
		}
	}
	return nil
}

// seed opens a fresh store and stores n worlds in one transaction.
func (s *suite) seed(t *testing.T, n int) (flexhub.Store, []*world) {
	t.Helper()
	st := s.open(t)
	ws := make([]*world, n)
	for i := range ws {
		ws[i] = newWorld(i)
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, w := range ws {
			if err := w.create(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	return st, ws
}

// ---------------------------------------------------------------------
// Helpers.

func update(t *testing.T, s flexhub.Store, fn func(ctx context.Context, tx flexhub.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx flexhub.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s flexhub.Store, fn func(ctx context.Context, tx flexhub.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.View(ctx, func(tx flexhub.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// tryUpdate runs fn in an Update and returns its error.
func tryUpdate(t *testing.T, s flexhub.Store, fn func(ctx context.Context, tx flexhub.Tx) error) error {
	ctx := t.Context()
	return s.Update(ctx, func(tx flexhub.Tx) error { return fn(ctx, tx) })
}

// wantKind reports an error unless err has the given flexhub error kind.
func wantKind(t *testing.T, what string, err error, kind string) {
	t.Helper()
	if got := flexhub.ErrorKind(err); got != kind {
		if err == nil {
			t.Errorf("%s: no error, want a %q error", what, kind)
		} else {
			t.Errorf("%s: error %v (kind %q), want kind %q", what, err, got, kind)
		}
	}
}

// sameJSON reports an error unless got and want encode to the same JSON.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: encode got: %v", what, err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("%s: encode want: %v", what, err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs:\n got  %s\n want %s", what, g, w)
	}
}

// clone deep-copies v through JSON.
func clone[T any](t *testing.T, v *T) *T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("clone: %v", err)
	}
	return out
}

// withID returns a copy of v whose "id" is id.
func withID[T any](t *testing.T, v *T, id string) *T {
	t.Helper()
	b, _ := json.Marshal(v)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("withID: %v", err)
	}
	m["id"] = id
	b, _ = json.Marshal(m)
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("withID: %v", err)
	}
	return out
}

func sortedCopy(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// sameIDs reports an error unless got equals want in order.
func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: got ids\n  %v\nwant\n  %v", what, got, want)
	}
}

func label(n int) string { return fmt.Sprintf("changed %d", n) }

// snapshot renders everything the lists show (every kind, every audit
// entry), to check that a failed transaction left nothing behind.
func snapshot(t *testing.T, s flexhub.Store) string {
	t.Helper()
	var b strings.Builder
	view(t, s, func(ctx context.Context, tx flexhub.Tx) error {
		for _, k := range kinds() {
			d, err := k.dump(ctx, tx)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s: %s\n", k.Name(), d)
		}
		n, err := tx.CountParties(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "parties: %d\n", n)
		es, err := tx.ListAudit(ctx, "", "", 0, flexhub.MaxPageLimit)
		if err != nil {
			return err
		}
		enc, _ := json.Marshal(es)
		fmt.Fprintf(&b, "audit: %s\n", enc)
		return nil
	})
	return b.String()
}

// ---------------------------------------------------------------------
// Per-kind tests, written once for every register kind.

type kindTests interface {
	Name() string
	Updatable() bool
	FilterKeys() []string
	createGetList(t *testing.T, s flexhub.Store, ws []*world)
	notFound(t *testing.T, s flexhub.Store)
	filter(t *testing.T, s flexhub.Store, ws []*world, key string)
	unknownFilter(t *testing.T, s flexhub.Store)
	optimistic(t *testing.T, s flexhub.Store, ws []*world)
	concurrent(t *testing.T, s flexhub.Store, ws []*world)
	history(t *testing.T, s flexhub.Store, ws []*world)
	dump(ctx context.Context, tx flexhub.Tx) (string, error)
}

type kindDef[T any] struct {
	name    string
	kind    string
	get     func(flexhub.Tx, context.Context, string) (*T, error)
	list    func(flexhub.Tx, context.Context, flexhub.Filter, flexhub.Page) ([]*T, string, error)
	objs    func(*world) []*T // the world's objects of this kind; the first is the one tests update
	id      func(*T) string
	version func(*T) *int64
	// filters maps each documented filter key to the values an object
	// matches under it.
	filters map[string]func(*T) []string
	// For updatable kinds: update, and change, which alters a field to
	// label(n) and stamps the change time at; read reads it back.
	update func(flexhub.Tx, context.Context, *T) error
	change func(v *T, n int, at time.Time)
	read   func(*T) string
}

func one(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func kinds() []kindTests {
	return []kindTests{
		&kindDef[flexhub.Party]{
			name: "Party", kind: flexhub.KindParty,
			get: flexhub.Tx.Party, list: flexhub.Tx.ListParties, update: flexhub.Tx.UpdateParty,
			objs:    (*world).parties,
			id:      func(v *flexhub.Party) string { return v.ID },
			version: func(v *flexhub.Party) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Party) []string{
				"role": func(v *flexhub.Party) []string {
					var out []string
					for _, r := range v.Roles {
						out = append(out, string(r))
					}
					return out
				},
			},
			change: func(v *flexhub.Party, n int, at time.Time) { v.Name, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.Party) string { return v.Name },
		},
		&kindDef[flexhub.ControlArea]{
			name: "ControlArea", kind: flexhub.KindControlArea,
			get: flexhub.Tx.ControlArea, list: flexhub.Tx.ListControlAreas,
			objs:    func(w *world) []*flexhub.ControlArea { return []*flexhub.ControlArea{w.ControlArea} },
			id:      func(v *flexhub.ControlArea) string { return v.ID },
			version: func(v *flexhub.ControlArea) *int64 { return &v.Version },
		},
		&kindDef[flexhub.GridArea]{
			name: "GridArea", kind: flexhub.KindGridArea,
			get: flexhub.Tx.GridArea, list: flexhub.Tx.ListGridAreas,
			objs:    func(w *world) []*flexhub.GridArea { return []*flexhub.GridArea{w.GridArea} },
			id:      func(v *flexhub.GridArea) string { return v.ID },
			version: func(v *flexhub.GridArea) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.GridArea) []string{
				"dso_id":          func(v *flexhub.GridArea) []string { return one(v.DSOID) },
				"control_area_id": func(v *flexhub.GridArea) []string { return one(v.ControlAreaID) },
			},
		},
		&kindDef[flexhub.ConnectionPoint]{
			name: "ConnectionPoint", kind: flexhub.KindConnectionPoint,
			get: flexhub.Tx.ConnectionPoint, list: flexhub.Tx.ListConnectionPoints, update: flexhub.Tx.UpdateConnectionPoint,
			objs:    func(w *world) []*flexhub.ConnectionPoint { return []*flexhub.ConnectionPoint{w.ConnectionPoint} },
			id:      func(v *flexhub.ConnectionPoint) string { return v.ID },
			version: func(v *flexhub.ConnectionPoint) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.ConnectionPoint) []string{
				"dso_id":       func(v *flexhub.ConnectionPoint) []string { return one(v.DSOID) },
				"grid_area_id": func(v *flexhub.ConnectionPoint) []string { return one(v.GridAreaID) },
			},
			change: func(v *flexhub.ConnectionPoint, n int, at time.Time) { v.NodeRef, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.ConnectionPoint) string { return v.NodeRef },
		},
		&kindDef[flexhub.MeteringPoint]{
			name: "MeteringPoint", kind: flexhub.KindMeteringPoint,
			get: flexhub.Tx.MeteringPoint, list: flexhub.Tx.ListMeteringPoints, update: flexhub.Tx.UpdateMeteringPoint,
			objs:    func(w *world) []*flexhub.MeteringPoint { return []*flexhub.MeteringPoint{w.MeteringPoint} },
			id:      func(v *flexhub.MeteringPoint) string { return v.ID },
			version: func(v *flexhub.MeteringPoint) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.MeteringPoint) []string{
				"dso_id":              func(v *flexhub.MeteringPoint) []string { return one(v.DSOID) },
				"consumer_id":         func(v *flexhub.MeteringPoint) []string { return one(v.ConsumerID) },
				"connection_point_id": func(v *flexhub.MeteringPoint) []string { return one(v.ConnectionPointID) },
			},
			// The code is the metering point's unique identity: changing
			// it also exercises the unique index on update.
			change: func(v *flexhub.MeteringPoint, n int, at time.Time) { v.Code, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.MeteringPoint) string { return v.Code },
		},
		&kindDef[flexhub.Resource]{
			name: "Resource", kind: flexhub.KindResource,
			get: flexhub.Tx.Resource, list: flexhub.Tx.ListResources, update: flexhub.Tx.UpdateResource,
			objs:    func(w *world) []*flexhub.Resource { return []*flexhub.Resource{w.Unit, w.Group} },
			id:      func(v *flexhub.Resource) string { return v.ID },
			version: func(v *flexhub.Resource) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Resource) []string{
				"fsp_id":              func(v *flexhub.Resource) []string { return one(v.FSPID) },
				"owner_id":            func(v *flexhub.Resource) []string { return one(v.OwnerID) },
				"dso_id":              func(v *flexhub.Resource) []string { return one(v.DSOID) },
				"metering_point_id":   func(v *flexhub.Resource) []string { return one(v.MeteringPointID) },
				"connection_point_id": func(v *flexhub.Resource) []string { return one(v.ConnectionPointID) },
				"status":              func(v *flexhub.Resource) []string { return one(v.Status) },
			},
			// A resource's versions take effect at ValidFrom.
			change: func(v *flexhub.Resource, n int, at time.Time) { v.Name, v.ValidFrom = label(n), at },
			read:   func(v *flexhub.Resource) string { return v.Name },
		},
		&kindDef[flexhub.Product]{
			name: "Product", kind: flexhub.KindProduct,
			get: flexhub.Tx.Product, list: flexhub.Tx.ListProducts, update: flexhub.Tx.UpdateProduct,
			objs:    func(w *world) []*flexhub.Product { return []*flexhub.Product{w.Product} },
			id:      func(v *flexhub.Product) string { return v.ID },
			version: func(v *flexhub.Product) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Product) []string{
				"system_operator_id": func(v *flexhub.Product) []string { return one(v.SystemOperatorID) },
				"status":             func(v *flexhub.Product) []string { return one(v.Status) },
			},
			change: func(v *flexhub.Product, n int, at time.Time) { v.Name, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.Product) string { return v.Name },
		},
		&kindDef[flexhub.Prequalification]{
			name: "Prequalification", kind: flexhub.KindPrequalification,
			get: flexhub.Tx.Prequalification, list: flexhub.Tx.ListPrequalifications, update: flexhub.Tx.UpdatePrequalification,
			objs:    func(w *world) []*flexhub.Prequalification { return []*flexhub.Prequalification{w.Prequal} },
			id:      func(v *flexhub.Prequalification) string { return v.ID },
			version: func(v *flexhub.Prequalification) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Prequalification) []string{
				"resource_id":        func(v *flexhub.Prequalification) []string { return one(v.ResourceID) },
				"product_id":         func(v *flexhub.Prequalification) []string { return one(v.ProductID) },
				"fsp_id":             func(v *flexhub.Prequalification) []string { return one(v.FSPID) },
				"system_operator_id": func(v *flexhub.Prequalification) []string { return one(v.SystemOperatorID) },
				"status":             func(v *flexhub.Prequalification) []string { return one(v.Status) },
			},
			change: func(v *flexhub.Prequalification, n int, at time.Time) {
				v.Answers = map[string]string{"telemetry": label(n)}
				v.UpdatedAt = at
			},
			read: func(v *flexhub.Prequalification) string { return v.Answers["telemetry"] },
		},
		&kindDef[flexhub.GridPrequalification]{
			name: "GridPrequalification", kind: flexhub.KindGridPrequalification,
			get: flexhub.Tx.GridPrequalification, list: flexhub.Tx.ListGridPrequalifications, update: flexhub.Tx.UpdateGridPrequalification,
			objs:    func(w *world) []*flexhub.GridPrequalification { return []*flexhub.GridPrequalification{w.GridPrequal} },
			id:      func(v *flexhub.GridPrequalification) string { return v.ID },
			version: func(v *flexhub.GridPrequalification) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.GridPrequalification) []string{
				"resource_id": func(v *flexhub.GridPrequalification) []string { return one(v.ResourceID) },
				"dso_id":      func(v *flexhub.GridPrequalification) []string { return one(v.DSOID) },
				"fsp_id":      func(v *flexhub.GridPrequalification) []string { return one(v.FSPID) },
				"status":      func(v *flexhub.GridPrequalification) []string { return one(v.Status) },
			},
			change: func(v *flexhub.GridPrequalification, n int, at time.Time) { v.Reasons, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.GridPrequalification) string { return v.Reasons },
		},
		&kindDef[flexhub.Contract]{
			name: "Contract", kind: flexhub.KindContract,
			get: flexhub.Tx.Contract, list: flexhub.Tx.ListContracts, update: flexhub.Tx.UpdateContract,
			objs:    func(w *world) []*flexhub.Contract { return []*flexhub.Contract{w.Contract} },
			id:      func(v *flexhub.Contract) string { return v.ID },
			version: func(v *flexhub.Contract) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Contract) []string{
				"fsp_id":             func(v *flexhub.Contract) []string { return one(v.FSPID) },
				"system_operator_id": func(v *flexhub.Contract) []string { return one(v.SystemOperatorID) },
				"product_id":         func(v *flexhub.Contract) []string { return one(v.ProductID) },
				"status":             func(v *flexhub.Contract) []string { return one(v.Status) },
			},
			change: func(v *flexhub.Contract, n int, at time.Time) { v.Terms, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.Contract) string { return v.Terms },
		},
		&kindDef[flexhub.MarketSession]{
			name: "MarketSession", kind: flexhub.KindMarketSession,
			get: flexhub.Tx.MarketSession, list: flexhub.Tx.ListMarketSessions, update: flexhub.Tx.UpdateMarketSession,
			objs:    func(w *world) []*flexhub.MarketSession { return []*flexhub.MarketSession{w.Session} },
			id:      func(v *flexhub.MarketSession) string { return v.ID },
			version: func(v *flexhub.MarketSession) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.MarketSession) []string{
				"operator_id":        func(v *flexhub.MarketSession) []string { return one(v.OperatorID) },
				"product_id":         func(v *flexhub.MarketSession) []string { return one(v.ProductID) },
				"system_operator_id": func(v *flexhub.MarketSession) []string { return one(v.SystemOperatorID) },
				"status":             func(v *flexhub.MarketSession) []string { return one(v.Status) },
			},
			change: func(v *flexhub.MarketSession, n int, at time.Time) { v.Name, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.MarketSession) string { return v.Name },
		},
		&kindDef[flexhub.Need]{
			name: "Need", kind: flexhub.KindNeed,
			get: flexhub.Tx.Need, list: flexhub.Tx.ListNeeds, update: flexhub.Tx.UpdateNeed,
			objs:    func(w *world) []*flexhub.Need { return []*flexhub.Need{w.Need} },
			id:      func(v *flexhub.Need) string { return v.ID },
			version: func(v *flexhub.Need) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Need) []string{
				"product_id":         func(v *flexhub.Need) []string { return one(v.ProductID) },
				"system_operator_id": func(v *flexhub.Need) []string { return one(v.SystemOperatorID) },
				"session_id":         func(v *flexhub.Need) []string { return one(v.SessionID) },
				"status":             func(v *flexhub.Need) []string { return one(v.Status) },
			},
			change: func(v *flexhub.Need, n int, at time.Time) { v.Description, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.Need) string { return v.Description },
		},
		&kindDef[flexhub.Bid]{
			name: "Bid", kind: flexhub.KindBid,
			get: flexhub.Tx.Bid, list: flexhub.Tx.ListBids, update: flexhub.Tx.UpdateBid,
			objs:    func(w *world) []*flexhub.Bid { return []*flexhub.Bid{w.Bid} },
			id:      func(v *flexhub.Bid) string { return v.ID },
			version: func(v *flexhub.Bid) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Bid) []string{
				"session_id":  func(v *flexhub.Bid) []string { return one(v.SessionID) },
				"need_id":     func(v *flexhub.Bid) []string { return one(v.NeedID) },
				"fsp_id":      func(v *flexhub.Bid) []string { return one(v.FSPID) },
				"resource_id": func(v *flexhub.Bid) []string { return one(v.ResourceID) },
				"status":      func(v *flexhub.Bid) []string { return one(v.Status) },
			},
			change: func(v *flexhub.Bid, n int, at time.Time) { v.ExclusiveGroup, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.Bid) string { return v.ExclusiveGroup },
		},
		&kindDef[flexhub.Award]{
			name: "Award", kind: flexhub.KindAward,
			get: flexhub.Tx.Award, list: flexhub.Tx.ListAwards,
			objs:    func(w *world) []*flexhub.Award { return []*flexhub.Award{w.Award} },
			id:      func(v *flexhub.Award) string { return v.ID },
			version: func(v *flexhub.Award) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Award) []string{
				"session_id":         func(v *flexhub.Award) []string { return one(v.SessionID) },
				"need_id":            func(v *flexhub.Award) []string { return one(v.NeedID) },
				"bid_id":             func(v *flexhub.Award) []string { return one(v.BidID) },
				"fsp_id":             func(v *flexhub.Award) []string { return one(v.FSPID) },
				"system_operator_id": func(v *flexhub.Award) []string { return one(v.SystemOperatorID) },
				"status":             func(v *flexhub.Award) []string { return one(v.Status) },
			},
		},
		&kindDef[flexhub.Obligation]{
			name: "Obligation", kind: flexhub.KindObligation,
			get: flexhub.Tx.Obligation, list: flexhub.Tx.ListObligations, update: flexhub.Tx.UpdateObligation,
			objs:    func(w *world) []*flexhub.Obligation { return []*flexhub.Obligation{w.Obligation} },
			id:      func(v *flexhub.Obligation) string { return v.ID },
			version: func(v *flexhub.Obligation) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Obligation) []string{
				"session_id":         func(v *flexhub.Obligation) []string { return one(v.SessionID) },
				"need_id":            func(v *flexhub.Obligation) []string { return one(v.NeedID) },
				"fsp_id":             func(v *flexhub.Obligation) []string { return one(v.FSPID) },
				"resource_id":        func(v *flexhub.Obligation) []string { return one(v.ResourceID) },
				"system_operator_id": func(v *flexhub.Obligation) []string { return one(v.SystemOperatorID) },
				"status":             func(v *flexhub.Obligation) []string { return one(v.Status) },
			},
			change: func(v *flexhub.Obligation, n int, at time.Time) { v.Status, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.Obligation) string { return v.Status },
		},
		&kindDef[flexhub.NeedResult]{
			name: "NeedResult", kind: flexhub.KindNeedResult,
			get: flexhub.Tx.NeedResult, list: flexhub.Tx.ListNeedResults,
			objs:    func(w *world) []*flexhub.NeedResult { return []*flexhub.NeedResult{w.NeedResult} },
			id:      func(v *flexhub.NeedResult) string { return v.ID },
			version: func(v *flexhub.NeedResult) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.NeedResult) []string{
				"session_id":         func(v *flexhub.NeedResult) []string { return one(v.SessionID) },
				"need_id":            func(v *flexhub.NeedResult) []string { return one(v.NeedID) },
				"system_operator_id": func(v *flexhub.NeedResult) []string { return one(v.SystemOperatorID) },
			},
		},
		&kindDef[flexhub.SecondaryOffer]{
			name: "SecondaryOffer", kind: flexhub.KindSecondaryOffer,
			get: flexhub.Tx.SecondaryOffer, list: flexhub.Tx.ListSecondaryOffers, update: flexhub.Tx.UpdateSecondaryOffer,
			objs:    func(w *world) []*flexhub.SecondaryOffer { return []*flexhub.SecondaryOffer{w.Offer} },
			id:      func(v *flexhub.SecondaryOffer) string { return v.ID },
			version: func(v *flexhub.SecondaryOffer) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.SecondaryOffer) []string{
				"obligation_id":      func(v *flexhub.SecondaryOffer) []string { return one(v.ObligationID) },
				"seller_fsp_id":      func(v *flexhub.SecondaryOffer) []string { return one(v.SellerFSPID) },
				"buyer_fsp_id":       func(v *flexhub.SecondaryOffer) []string { return one(v.BuyerFSPID) },
				"product_id":         func(v *flexhub.SecondaryOffer) []string { return one(v.ProductID) },
				"system_operator_id": func(v *flexhub.SecondaryOffer) []string { return one(v.SystemOperatorID) },
				"status":             func(v *flexhub.SecondaryOffer) []string { return one(v.Status) },
			},
			change: func(v *flexhub.SecondaryOffer, n int, at time.Time) { v.Price.Amount, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.SecondaryOffer) string { return v.Price.Amount },
		},
		&kindDef[flexhub.Trade]{
			name: "Trade", kind: flexhub.KindTrade,
			get: flexhub.Tx.Trade, list: flexhub.Tx.ListTrades, update: flexhub.Tx.UpdateTrade,
			objs:    func(w *world) []*flexhub.Trade { return []*flexhub.Trade{w.Trade} },
			id:      func(v *flexhub.Trade) string { return v.ID },
			version: func(v *flexhub.Trade) *int64 { return &v.Version },
			filters: map[string]func(*flexhub.Trade) []string{
				"offer_id":           func(v *flexhub.Trade) []string { return one(v.OfferID) },
				"obligation_id":      func(v *flexhub.Trade) []string { return one(v.ObligationID) },
				"seller_fsp_id":      func(v *flexhub.Trade) []string { return one(v.SellerFSPID) },
				"buyer_fsp_id":       func(v *flexhub.Trade) []string { return one(v.BuyerFSPID) },
				"system_operator_id": func(v *flexhub.Trade) []string { return one(v.SystemOperatorID) },
				"status":             func(v *flexhub.Trade) []string { return one(v.Status) },
			},
			change: func(v *flexhub.Trade, n int, at time.Time) { v.ObjectionReasons, v.UpdatedAt = label(n), at },
			read:   func(v *flexhub.Trade) string { return v.ObjectionReasons },
		},
	}
}

func (k *kindDef[T]) Name() string    { return k.name }
func (k *kindDef[T]) Updatable() bool { return k.update != nil }

func (k *kindDef[T]) FilterKeys() []string {
	var keys []string
	for key := range k.filters {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

func (k *kindDef[T]) all(ws []*world) []*T {
	var out []*T
	for _, w := range ws {
		out = append(out, k.objs(w)...)
	}
	return out
}

func (k *kindDef[T]) ids(vs []*T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = k.id(v)
	}
	return out
}

func (k *kindDef[T]) dump(ctx context.Context, tx flexhub.Tx) (string, error) {
	vs, _, err := k.list(tx, ctx, nil, flexhub.Page{Limit: flexhub.MaxPageLimit})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(vs)
	return string(b), err
}

func (k *kindDef[T]) createGetList(t *testing.T, s flexhub.Store, ws []*world) {
	want := k.all(ws)
	for _, o := range want {
		if v := *k.version(o); v != 1 {
			t.Errorf("Create%s left Version %d on %s, want 1", k.name, v, k.id(o))
		}
	}
	view(t, s, func(ctx context.Context, tx flexhub.Tx) error {
		for _, o := range want {
			got, err := k.get(tx, ctx, k.id(o))
			if err != nil {
				t.Errorf("%s(%s): %v", k.name, k.id(o), err)
				continue
			}
			sameJSON(t, k.name+" "+k.id(o), got, o)
		}
		got, next, err := k.list(tx, ctx, nil, flexhub.Page{})
		if err != nil {
			t.Errorf("List %s: %v", k.name, err)
			return nil
		}
		sameIDs(t, "List "+k.name+" (ordered by id)", k.ids(got), sortedCopy(k.ids(want)))
		if next != "" {
			t.Errorf("List %s: next cursor %q on the only page, want empty", k.name, next)
		}
		byID := map[string]*T{}
		for _, o := range want {
			byID[k.id(o)] = o
		}
		for _, g := range got {
			if w, ok := byID[k.id(g)]; ok {
				sameJSON(t, "listed "+k.name+" "+k.id(g), g, w)
			}
		}
		return nil
	})
}

func (k *kindDef[T]) notFound(t *testing.T, s flexhub.Store) {
	view(t, s, func(ctx context.Context, tx flexhub.Tx) error {
		v, err := k.get(tx, ctx, flexhub.NewID())
		wantKind(t, k.name+"(missing id)", err, flexhub.ENotFound)
		if v != nil {
			t.Errorf("%s(missing id) returned an object: %+v", k.name, v)
		}
		return nil
	})
}

func (k *kindDef[T]) filter(t *testing.T, s flexhub.Store, ws []*world, key string) {
	values := k.filters[key]
	all := k.all(ws)
	var distinct []string
	for _, o := range all {
		for _, v := range values(o) {
			if !slices.Contains(distinct, v) {
				distinct = append(distinct, v)
			}
		}
	}
	if len(distinct) < 2 {
		t.Fatalf("fixture has %d distinct %q values; a filter test needs at least 2", len(distinct), key)
	}
	view(t, s, func(ctx context.Context, tx flexhub.Tx) error {
		for _, v := range distinct {
			var want []string
			for _, o := range all {
				if slices.Contains(values(o), v) {
					want = append(want, k.id(o))
				}
			}
			got, next, err := k.list(tx, ctx, flexhub.Filter{key: v}, flexhub.Page{})
			if err != nil {
				t.Errorf("List %s %s=%s: %v", k.name, key, v, err)
				continue
			}
			sameIDs(t, fmt.Sprintf("List %s %s=%s", k.name, key, v), k.ids(got), sortedCopy(want))
			if next != "" {
				t.Errorf("List %s %s=%s: next cursor %q, want empty", k.name, key, v, next)
			}
		}
		got, _, err := k.list(tx, ctx, flexhub.Filter{key: "nothing-has-this-" + key}, flexhub.Page{})
		if err != nil {
			t.Errorf("List %s %s=<unused value>: %v", k.name, key, err)
		} else if len(got) != 0 {
			t.Errorf("List %s %s=<unused value> returned %d objects, want none", k.name, key, len(got))
		}
		return nil
	})
}

func (k *kindDef[T]) unknownFilter(t *testing.T, s flexhub.Store) {
	view(t, s, func(ctx context.Context, tx flexhub.Tx) error {
		for _, key := range []string{"no_such_key", "body", "id = id OR 1=1 --"} {
			_, _, err := k.list(tx, ctx, flexhub.Filter{key: "x"}, flexhub.Page{})
			wantKind(t, fmt.Sprintf("List %s with filter %q", k.name, key), err, flexhub.EInvalid)
		}
		return nil
	})
}

// mustGet returns the stored object with the given id.
func (k *kindDef[T]) mustGet(t *testing.T, s flexhub.Store, id string) *T {
	t.Helper()
	var v *T
	view(t, s, func(ctx context.Context, tx flexhub.Tx) (err error) {
		v, err = k.get(tx, ctx, id)
		return err
	})
	return v
}

func (k *kindDef[T]) tryUpdate(t *testing.T, s flexhub.Store, v *T) error {
	return tryUpdate(t, s, func(ctx context.Context, tx flexhub.Tx) error { return k.update(tx, ctx, v) })
}

func (k *kindDef[T]) optimistic(t *testing.T, s flexhub.Store, ws []*world) {
	id := k.id(k.objs(ws[0])[0])
	a, b := k.mustGet(t, s, id), k.mustGet(t, s, id) // two callers read version 1

	k.change(a, 1, base.Add(time.Hour))
	if err := k.tryUpdate(t, s, a); err != nil {
		t.Fatalf("first Update%s: %v", k.name, err)
	}
	if v := *k.version(a); v != 2 {
		t.Errorf("first Update%s: Version %d, want 2", k.name, v)
	}

	k.change(b, 2, base.Add(time.Hour))
	err := k.tryUpdate(t, s, b)
	wantKind(t, "second Update"+k.name+" from the same version", err, flexhub.EConflict)
	if v := *k.version(b); v != 1 {
		t.Errorf("failed Update%s changed the caller's Version to %d, want it left at 1", k.name, v)
	}

	stored := k.mustGet(t, s, id)
	sameJSON(t, "stored "+k.name+" after the conflict", stored, a)
	if got := k.read(stored); got != label(1) {
		t.Errorf("stored %s holds %q, want the first update's %q", k.name, got, label(1))
	}

	k.change(a, 3, base.Add(2*time.Hour))
	if err := k.tryUpdate(t, s, a); err != nil {
		t.Fatalf("third Update%s: %v", k.name, err)
	}
	if v := *k.version(a); v != 3 {
		t.Errorf("third Update%s: Version %d, want 3", k.name, v)
	}
	if v := *k.version(k.mustGet(t, s, id)); v != 3 {
		t.Errorf("stored %s Version %d, want 3", k.name, v)
	}

	// The stale copy keeps failing once the object has moved on further.
	if err := k.tryUpdate(t, s, b); flexhub.ErrorKind(err) != flexhub.EConflict {
		t.Errorf("stale Update%s at version 3: error %v, want a conflict", k.name, err)
	}

	ghost := withID(t, a, flexhub.NewID())
	wantKind(t, "Update"+k.name+" of a missing object", k.tryUpdate(t, s, ghost), flexhub.ENotFound)
}

func (k *kindDef[T]) concurrent(t *testing.T, s flexhub.Store, ws []*world) {
	const workers = 8
	id := k.id(k.objs(ws[0])[0])
	copies := make([]*T, workers)
	for i := range copies {
		copies[i] = k.mustGet(t, s, id)
		k.change(copies[i], i+1, base.Add(time.Hour))
	}
	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = k.tryUpdate(t, s, copies[i])
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch flexhub.ErrorKind(err) {
		case "":
			if winner >= 0 {
				t.Errorf("workers %d and %d both updated %s version 1", winner, i, k.name)
			}
			winner = i
		case flexhub.EConflict:
		default:
			t.Errorf("worker %d: %v, want success or a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("none of %d concurrent updates of %s succeeded", workers, k.name)
	}
	stored := k.mustGet(t, s, id)
	if v := *k.version(stored); v != 2 {
		t.Errorf("stored %s Version %d after one successful update, want 2", k.name, v)
	}
	if got := k.read(stored); got != label(winner+1) {
		t.Errorf("stored %s holds %q, want the winner's %q", k.name, got, label(winner+1))
	}
	view(t, s, func(ctx context.Context, tx flexhub.Tx) error {
		vs, err := tx.Versions(ctx, k.kind, id)
		if err != nil {
			return err
		}
		if len(vs) != 2 {
			t.Errorf("Versions: %d versions after one successful update, want 2", len(vs))
		}
		return nil
	})
}

func (k *kindDef[T]) history(t *testing.T, s flexhub.Store, ws []*world) {
	t0, t1, t2 := base, base.Add(time.Hour), base.Add(2*time.Hour)
	orig := k.objs(ws[0])[0]
	id := k.id(orig)
	labels := []string{k.read(orig), label(1), label(2)}

	v := k.mustGet(t, s, id)
	k.change(v, 1, t1)
	if err := k.tryUpdate(t, s, v); err != nil {
		t.Fatalf("Update%s at t1: %v", k.name, err)
	}
	k.change(v, 2, t2)
	if err := k.tryUpdate(t, s, v); err != nil {
		t.Fatalf("Update%s at t2: %v", k.name, err)
	}

	cases := []struct {
		name    string
		at      time.Time
		version int64 // 0: did not exist
	}{
		{"before creation", t0.Add(-time.Microsecond), 0},
		{"at creation", t0, 1},
		{"after creation", t0.Add(30 * time.Minute), 1},
		{"just before the first update", t1.Add(-time.Microsecond), 1},
		{"at the first update", t1, 2},
		{"between the updates", t1.Add(30 * time.Minute), 2},
		{"at the second update", t2, 3},
		{"long after", t2.Add(1000 * time.Hour), 3},
	}
	view(t, s, func(ctx context.Context, tx flexhub.Tx) error {
		for _, c := range cases {
			var got T
			err := tx.AsOf(ctx, k.kind, id, c.at, &got)
			if c.version == 0 {
				wantKind(t, "AsOf "+c.name, err, flexhub.ENotFound)
				continue
			}
			if err != nil {
				t.Errorf("AsOf %s: %v", c.name, err)
				continue
			}
			if v := *k.version(&got); v != c.version {
				t.Errorf("AsOf %s: version %d, want %d", c.name, v, c.version)
			}
			if l := k.read(&got); l != labels[c.version-1] {
				t.Errorf("AsOf %s: holds %q, want %q", c.name, l, labels[c.version-1])
			}
		}

		other := flexhub.KindContract
		if k.kind == other {
			other = flexhub.KindParty
		}
		var m map[string]any
		wantKind(t, "AsOf with the id under another kind", tx.AsOf(ctx, other, id, t2, &m), flexhub.ENotFound)
		wantKind(t, "AsOf of a missing id", tx.AsOf(ctx, k.kind, flexhub.NewID(), t2, &m), flexhub.ENotFound)

		vs, err := tx.Versions(ctx, k.kind, id)
		if err != nil {
			t.Errorf("Versions: %v", err)
			return nil
		}
		if len(vs) != 3 {
			t.Errorf("Versions: %d versions, want 3", len(vs))
			return nil
		}
		froms := []time.Time{t0, t1, t2}
		tos := []*time.Time{&t1, &t2, nil}
		for i, ov := range vs {
			if ov.Version != int64(i+1) {
				t.Errorf("Versions[%d].Version = %d, want %d", i, ov.Version, i+1)
			}
			if !ov.ValidFrom.Equal(froms[i]) {
				t.Errorf("Versions[%d].ValidFrom = %s, want %s", i, ov.ValidFrom, froms[i])
			}
			switch {
			case tos[i] == nil && ov.ValidTo != nil:
				t.Errorf("Versions[%d].ValidTo = %s, want none for the current version", i, ov.ValidTo)
			case tos[i] != nil && (ov.ValidTo == nil || !ov.ValidTo.Equal(*tos[i])):
				t.Errorf("Versions[%d].ValidTo = %v, want %s", i, ov.ValidTo, tos[i])
			}
			var body T
			if err := json.Unmarshal(ov.Body, &body); err != nil {
				t.Errorf("Versions[%d].Body: %v", i, err)
				continue
			}
			if l := k.read(&body); l != labels[i] {
				t.Errorf("Versions[%d].Body holds %q, want %q", i, l, labels[i])
			}
			if v := *k.version(&body); v != int64(i+1) {
				t.Errorf("Versions[%d].Body has version %d, want %d", i, v, i+1)
			}
		}
		_, err = tx.Versions(ctx, k.kind, flexhub.NewID())
		wantKind(t, "Versions of a missing id", err, flexhub.ENotFound)
		return nil
	})
}

// ---------------------------------------------------------------------
// Tests.

func (s *suite) testEmptyStore(t *testing.T) {
	st := s.open(t)
	if err := st.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		n, err := tx.CountParties(ctx)
		if err != nil || n != 0 {
			t.Errorf("CountParties = %d, %v; want 0 in a fresh store", n, err)
		}
		for _, k := range kinds() {
			d, err := k.dump(ctx, tx)
			if err != nil {
				t.Errorf("List %s: %v", k.Name(), err)
			} else if d != "null" && d != "[]" {
				t.Errorf("List %s in a fresh store: %s, want nothing", k.Name(), d)
			}
		}
		es, err := tx.ListAudit(ctx, "", "", 0, 0)
		if err != nil || len(es) != 0 {
			t.Errorf("ListAudit = %d entries, %v; want none", len(es), err)
		}
		return nil
	})
}

func (s *suite) testCreateGetList(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.Name(), func(t *testing.T) {
			st, ws := s.seed(t, 2)
			k.createGetList(t, st, ws)
		})
	}
	t.Run("CountParties", func(t *testing.T) {
		st, ws := s.seed(t, 2)
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			n, err := tx.CountParties(ctx)
			if err != nil {
				return err
			}
			if want := int64(len(ws) * len(ws[0].parties())); n != want {
				t.Errorf("CountParties = %d, want %d", n, want)
			}
			return nil
		})
	})
	t.Run("ReadOwnWrites", func(t *testing.T) {
		st := s.open(t)
		p := newParty("Fresh", flexhub.RoleFSP)
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			if err := tx.CreateParty(ctx, p); err != nil {
				return err
			}
			got, err := tx.Party(ctx, p.ID)
			if err != nil {
				return fmt.Errorf("read back in the creating transaction: %w", err)
			}
			sameJSON(t, "party read in its own transaction", got, p)
			return nil
		})
	})
}

func (s *suite) testPartyByEIC(t *testing.T) {
	st, ws := s.seed(t, 2)
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, w := range ws {
			for _, p := range w.parties() {
				got, err := tx.PartyByEIC(ctx, p.EIC)
				if err != nil {
					t.Errorf("PartyByEIC(%s): %v", p.EIC, err)
					continue
				}
				sameJSON(t, "PartyByEIC "+p.EIC, got, p)
			}
		}
		_, err := tx.PartyByEIC(ctx, eic('X'))
		wantKind(t, "PartyByEIC(unused EIC)", err, flexhub.ENotFound)
		return nil
	})
}

func (s *suite) testNotFound(t *testing.T) {
	st := s.open(t)
	for _, k := range kinds() {
		k.notFound(t, st)
	}
	cases := []struct {
		name string
		call func(ctx context.Context, tx flexhub.Tx) error
	}{
		{"PartyByEIC", func(ctx context.Context, tx flexhub.Tx) error { _, err := tx.PartyByEIC(ctx, eic('X')); return err }},
		{"Credential", func(ctx context.Context, tx flexhub.Tx) error {
			_, err := tx.Credential(ctx, flexhub.NewID())
			return err
		}},
		{"Idempotency", func(ctx context.Context, tx flexhub.Tx) error {
			_, err := tx.Idempotency(ctx, flexhub.NewID(), "key")
			return err
		}},
		{"AsOf", func(ctx context.Context, tx flexhub.Tx) error {
			var p flexhub.Party
			return tx.AsOf(ctx, flexhub.KindParty, flexhub.NewID(), base, &p)
		}},
		{"Versions", func(ctx context.Context, tx flexhub.Tx) error {
			_, err := tx.Versions(ctx, flexhub.KindParty, flexhub.NewID())
			return err
		}},
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, c := range cases {
			wantKind(t, c.name+"(missing)", c.call(ctx, tx), flexhub.ENotFound)
		}
		return nil
	})
}

// auditEntry returns an entry about object id naming parties.
func auditEntry(n int, objectID string, parties ...string) *flexhub.AuditEntry {
	return &flexhub.AuditEntry{
		At:          base.Add(time.Duration(n) * time.Second),
		ActorID:     "actor",
		Action:      "test.changed",
		ObjectKind:  flexhub.KindParty,
		ObjectID:    objectID,
		Version:     int64(n),
		Parties:     parties,
		PayloadHash: flexhub.PayloadHash(map[string]int{"n": n}),
	}
}

func (s *suite) testIdentityConflicts(t *testing.T) {
	cases := []struct {
		name string
		do   func(ctx context.Context, tx flexhub.Tx, ws []*world) error
		// kind is the wanted error kind; "" means the change is allowed.
		kind  string
		check func(t *testing.T, st flexhub.Store, ws []*world)
	}{
		{
			name: "party EIC",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				p := newParty("Copycat", flexhub.RoleFSP)
				p.ID = copycatID
				p.EIC = ws[0].DSO.EIC
				return tx.CreateParty(ctx, p)
			},
			kind: flexhub.EConflict,
			check: func(t *testing.T, st flexhub.Store, ws []*world) {
				view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
					got, err := tx.PartyByEIC(ctx, ws[0].DSO.EIC)
					if err != nil {
						return err
					}
					sameJSON(t, "party holding the EIC", got, ws[0].DSO)
					_, err = tx.Party(ctx, copycatID)
					wantKind(t, "the rejected party", err, flexhub.ENotFound)
					_, err = tx.Versions(ctx, flexhub.KindParty, copycatID)
					wantKind(t, "history of the rejected party", err, flexhub.ENotFound)
					return nil
				})
			},
		},
		{
			name: "party id",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				p := newParty("Same id", flexhub.RoleFSP)
				p.ID = ws[0].FSP.ID
				return tx.CreateParty(ctx, p)
			},
			kind: flexhub.EConflict,
		},
		{
			// One award per bid: the schema's half of exactly-once clearing.
			name: "second award for a bid",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				a := *ws[0].Award
				a.ID, a.Version = copycatID, 0
				return tx.CreateAward(ctx, &a)
			},
			kind: flexhub.EConflict,
			check: func(t *testing.T, st flexhub.Store, ws []*world) {
				view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
					_, err := tx.Award(ctx, copycatID)
					wantKind(t, "the second award", err, flexhub.ENotFound)
					return nil
				})
			},
		},
		{
			name: "second obligation for an award",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				o := *ws[0].Obligation
				o.ID, o.Version = flexhub.NewID(), 0
				return tx.CreateObligation(ctx, &o)
			},
			kind: flexhub.EConflict,
		},
		{
			name: "second live offer for an obligation",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				o := *ws[0].Offer
				o.ID, o.Version, o.Status = flexhub.NewID(), 0, flexhub.OfferReserved
				return tx.CreateSecondaryOffer(ctx, &o)
			},
			kind: flexhub.EConflict,
		},
		{
			name: "second result for a need",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				r := *ws[0].NeedResult
				r.ID, r.Version = flexhub.NewID(), 0
				return tx.CreateNeedResult(ctx, &r)
			},
			kind: flexhub.EConflict,
		},
		{
			name: "control area EIC",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				a := *ws[0].ControlArea
				a.ID, a.Version = flexhub.NewID(), 0
				return tx.CreateControlArea(ctx, &a)
			},
			kind: flexhub.EConflict,
		},
		{
			name: "grid area EIC",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				a := *ws[0].GridArea
				a.ID, a.Version = flexhub.NewID(), 0
				return tx.CreateGridArea(ctx, &a)
			},
			kind: flexhub.EConflict,
		},
		{
			name: "metering point code",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				m := *ws[0].MeteringPoint
				m.ID, m.Version = copycatID, 0
				return tx.CreateMeteringPoint(ctx, &m)
			},
			kind: flexhub.EConflict,
			check: func(t *testing.T, st flexhub.Store, ws []*world) {
				view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
					_, err := tx.MeteringPoint(ctx, copycatID)
					wantKind(t, "the rejected metering point", err, flexhub.ENotFound)
					_, err = tx.Versions(ctx, flexhub.KindMeteringPoint, copycatID)
					wantKind(t, "history of the rejected metering point", err, flexhub.ENotFound)
					return nil
				})
			},
		},
		{
			name: "metering point code is unique across connection points",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				m := *ws[1].MeteringPoint
				m.ID, m.Version, m.Code = flexhub.NewID(), 0, ws[0].MeteringPoint.Code
				return tx.CreateMeteringPoint(ctx, &m)
			},
			kind: flexhub.EConflict,
		},
		{
			name: "connection point code in the same grid area",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				c := *ws[0].ConnectionPoint
				c.ID, c.Version = flexhub.NewID(), 0
				return tx.CreateConnectionPoint(ctx, &c)
			},
			kind: flexhub.EConflict,
		},
		{
			name: "connection point code in another grid area is fine",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				c := *ws[1].ConnectionPoint
				c.ID, c.Version, c.Code = copycatID, 0, ws[0].ConnectionPoint.Code
				return tx.CreateConnectionPoint(ctx, &c)
			},
			kind: "",
			check: func(t *testing.T, st flexhub.Store, ws []*world) {
				view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
					got, err := tx.ConnectionPoint(ctx, copycatID)
					if err != nil {
						return err
					}
					if got.Code != ws[0].ConnectionPoint.Code || got.GridAreaID != ws[1].GridArea.ID {
						t.Errorf("stored connection point %+v", got)
					}
					return nil
				})
			},
		},
		{
			name: "updating a party to an EIC in use",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				p := *ws[0].FSP
				p.EIC, p.UpdatedAt = ws[0].DSO.EIC, base.Add(time.Hour)
				return tx.UpdateParty(ctx, &p)
			},
			kind: flexhub.EConflict,
			check: func(t *testing.T, st flexhub.Store, ws []*world) {
				view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
					vs, err := tx.Versions(ctx, flexhub.KindParty, ws[0].FSP.ID)
					if err != nil {
						return err
					}
					if len(vs) != 1 || vs[0].ValidTo != nil {
						t.Errorf("party history after the rejected update: %d versions, want 1 open version", len(vs))
					}
					return nil
				})
			},
		},
		{
			name: "updating a metering point to a code in use",
			do: func(ctx context.Context, tx flexhub.Tx, ws []*world) error {
				m := *ws[1].MeteringPoint
				m.Code, m.UpdatedAt = ws[0].MeteringPoint.Code, base.Add(time.Hour)
				return tx.UpdateMeteringPoint(ctx, &m)
			},
			kind: flexhub.EConflict,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ws := s.seed(t, 2)
			before := snapshot(t, st)
			// An audit entry appended earlier in the same transaction must
			// go too when the conflict aborts it.
			err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				if err := tx.AppendAudit(ctx, auditEntry(1, copycatID, ws[0].FSP.ID)); err != nil {
					return err
				}
				return c.do(ctx, tx, ws)
			})
			wantKind(t, c.name, err, c.kind)
			if c.kind != "" {
				if after := snapshot(t, st); after != before {
					t.Errorf("the failed transaction left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			}
			if c.check != nil {
				c.check(t, st, ws)
			}
		})
	}
}

// copycatID is the id conflict tests give the object they try to create.
var copycatID = flexhub.NewID()

func (s *suite) testForeignKeys(t *testing.T) {
	cases := []struct {
		name string
		do   func(ctx context.Context, tx flexhub.Tx, w *world) error
	}{
		{"credential of an unknown party", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			return tx.CreateCredential(ctx, &flexhub.Credential{ID: flexhub.NewID(), PartyID: flexhub.NewID(), CreatedAt: base, SecretHash: []byte{1}})
		}},
		{"control area of an unknown TSO", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			a := *w.ControlArea
			a.ID, a.Version, a.EIC, a.TSOID = flexhub.NewID(), 0, eic('Y'), flexhub.NewID()
			return tx.CreateControlArea(ctx, &a)
		}},
		{"grid area in an unknown control area", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			a := *w.GridArea
			a.ID, a.Version, a.EIC, a.ControlAreaID = flexhub.NewID(), 0, eic('Y'), flexhub.NewID()
			return tx.CreateGridArea(ctx, &a)
		}},
		{"metering point of an unknown consumer", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			m := *w.MeteringPoint
			m.ID, m.Version, m.Code, m.ConsumerID = flexhub.NewID(), 0, code("707057"), flexhub.NewID()
			return tx.CreateMeteringPoint(ctx, &m)
		}},
		{"resource at an unknown metering point", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			r := *w.Unit
			r.ID, r.Version, r.MeteringPointID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateResource(ctx, &r)
		}},
		{"bid in an unknown session", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			b := *w.Bid
			b.ID, b.Version, b.SessionID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateBid(ctx, &b)
		}},
		{"need in an unknown session", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			n := *w.Need
			n.ID, n.Version, n.SessionID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateNeed(ctx, &n)
		}},
		{"award for an unknown bid", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			a := *w.Award
			a.ID, a.Version, a.BidID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateAward(ctx, &a)
		}},
		{"obligation of an unknown award", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			o := *w.Obligation
			o.ID, o.Version, o.AwardID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateObligation(ctx, &o)
		}},
		{"obligation of an unknown resource", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			o := *w.Obligation
			o.ID, o.Version, o.ResourceID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateObligation(ctx, &o)
		}},
		{"result of an unknown need", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			r := *w.NeedResult
			r.ID, r.Version, r.NeedID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateNeedResult(ctx, &r)
		}},
		{"notification for an unknown party", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			return tx.CreateNotification(ctx, &flexhub.Notification{PartyID: flexhub.NewID(), At: base, Type: flexhub.NotifyBidReceived, ObjectKind: flexhub.KindBid, ObjectID: w.Bid.ID})
		}},
		{"contract for an unknown product", func(ctx context.Context, tx flexhub.Tx, w *world) error {
			c := *w.Contract
			c.ID, c.Version, c.ProductID = flexhub.NewID(), 0, flexhub.NewID()
			return tx.CreateContract(ctx, &c)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ws := s.seed(t, 1)
			before := snapshot(t, st)
			if err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return c.do(ctx, tx, ws[0]) }); err == nil {
				t.Fatalf("%s was stored; foreign keys must reject it", c.name)
			}
			if after := snapshot(t, st); after != before {
				t.Errorf("the failed transaction left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func (s *suite) testOptimisticConcurrency(t *testing.T) {
	for _, k := range kinds() {
		if !k.Updatable() {
			continue
		}
		t.Run(k.Name(), func(t *testing.T) {
			st, ws := s.seed(t, 1)
			k.optimistic(t, st, ws)
		})
	}
}

func (s *suite) testConcurrentUpdates(t *testing.T) {
	for _, k := range kinds() {
		if !k.Updatable() {
			continue
		}
		t.Run(k.Name(), func(t *testing.T) {
			st, ws := s.seed(t, 1)
			k.concurrent(t, st, ws)
		})
	}
}

func (s *suite) testConcurrentCreates(t *testing.T) {
	const workers = 8
	sharedEIC := eic('X')
	owner := flexhub.NewID()
	cases := []struct {
		name   string
		create func(ctx context.Context, tx flexhub.Tx, i int) error
		count  func(ctx context.Context, tx flexhub.Tx) (int, error)
	}{
		{
			name: "parties with one EIC",
			create: func(ctx context.Context, tx flexhub.Tx, i int) error {
				p := newParty(fmt.Sprintf("Racer %d", i), flexhub.RoleFSP)
				p.EIC = sharedEIC
				return tx.CreateParty(ctx, p)
			},
			count: func(ctx context.Context, tx flexhub.Tx) (int, error) {
				n, err := tx.CountParties(ctx)
				return int(n), err
			},
		},
		{
			name: "one idempotency key",
			create: func(ctx context.Context, tx flexhub.Tx, i int) error {
				return tx.PutIdempotency(ctx, &flexhub.IdempotencyRecord{PartyID: owner, Key: "race", Fingerprint: fmt.Sprint(i),
					ObjectKind: flexhub.KindParty, ObjectID: flexhub.NewID(), CreatedAt: base})
			},
			count: func(ctx context.Context, tx flexhub.Tx) (int, error) {
				_, err := tx.Idempotency(ctx, owner, "race")
				if err != nil {
					return 0, err
				}
				return 1, nil
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := s.open(t)
			ctx := t.Context()
			start := make(chan struct{})
			errs := make([]error, workers)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// The create comes first, so the racers meet on the
					// unique index, not on the audit chain's lock.
					errs[i] = st.Update(ctx, func(tx flexhub.Tx) error {
						if err := c.create(ctx, tx, i); err != nil {
							return err
						}
						return tx.AppendAudit(ctx, auditEntry(i, owner, owner))
					})
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch flexhub.ErrorKind(err) {
				case "":
					won++
				case flexhub.EConflict:
				default:
					t.Errorf("worker %d: %v, want success or a conflict", i, err)
				}
			}
			if won != 1 {
				t.Errorf("%d of %d racing creates succeeded, want exactly 1", won, workers)
			}
			view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				n, err := c.count(ctx, tx)
				if err != nil {
					return err
				}
				if n != 1 {
					t.Errorf("%d objects stored, want 1", n)
				}
				return nil
			})
			// Only the winner's audit entry remains, and the chain is whole.
			checkChain(t, allAudit(t, st, "", ""), 1)
		})
	}
}

func (s *suite) testHistory(t *testing.T) {
	for _, k := range kinds() {
		if !k.Updatable() {
			continue
		}
		t.Run(k.Name(), func(t *testing.T) {
			st, ws := s.seed(t, 1)
			k.history(t, st, ws)
		})
	}
}

func (s *suite) testListFilters(t *testing.T) {
	for _, k := range kinds() {
		if len(k.FilterKeys()) == 0 {
			continue
		}
		t.Run(k.Name(), func(t *testing.T) {
			st, ws := s.seed(t, 2)
			for _, key := range k.FilterKeys() {
				k.filter(t, st, ws, key)
			}
		})
	}
}

func (s *suite) testCombinedFilters(t *testing.T) {
	st, ws := s.seed(t, 2)
	a := ws[0] // its resources are active, world 1's deregistered
	cases := []struct {
		name string
		f    flexhub.Filter
		want []string
	}{
		{"fsp and matching status", flexhub.Filter{"fsp_id": a.FSP.ID, "status": flexhub.ResourceActive}, []string{a.Unit.ID, a.Group.ID}},
		{"fsp and other status", flexhub.Filter{"fsp_id": a.FSP.ID, "status": flexhub.ResourceDeregistered}, nil},
		{"fsp and owner", flexhub.Filter{"fsp_id": a.FSP.ID, "owner_id": a.Consumer.ID}, []string{a.Unit.ID}},
		{"fsp and another world's owner", flexhub.Filter{"fsp_id": a.FSP.ID, "owner_id": ws[1].Consumer.ID}, nil},
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, c := range cases {
			got, _, err := tx.ListResources(ctx, c.f, flexhub.Page{})
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			sameIDs(t, c.name, ids, sortedCopy(c.want))
		}
		return nil
	})
}

func (s *suite) testUnknownFilter(t *testing.T) {
	st := s.open(t)
	for _, k := range kinds() {
		k.unknownFilter(t, st)
	}
}

func (s *suite) testUpdateMaintainsIndexes(t *testing.T) {
	at := base.Add(time.Hour)
	type listFn func(ctx context.Context, tx flexhub.Tx, f flexhub.Filter) ([]string, error)
	ids := func(n int, id func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	cases := []struct {
		name     string
		change   func(ctx context.Context, tx flexhub.Tx, w *world) (id string, err error)
		list     listFn
		key      string
		old, new string
	}{
		{
			name: "party roles",
			change: func(ctx context.Context, tx flexhub.Tx, w *world) (string, error) {
				p := *w.Consumer
				p.Roles, p.UpdatedAt = []flexhub.Role{flexhub.RoleFSP}, at
				return p.ID, tx.UpdateParty(ctx, &p)
			},
			list: func(ctx context.Context, tx flexhub.Tx, f flexhub.Filter) ([]string, error) {
				vs, _, err := tx.ListParties(ctx, f, flexhub.Page{})
				return ids(len(vs), func(i int) string { return vs[i].ID }), err
			},
			key: "role", old: string(flexhub.RoleConsumer), new: string(flexhub.RoleFSP),
		},
		{
			name: "resource status",
			change: func(ctx context.Context, tx flexhub.Tx, w *world) (string, error) {
				r := *w.Unit
				r.Status, r.ValidFrom = flexhub.ResourceDeregistered, at
				return r.ID, tx.UpdateResource(ctx, &r)
			},
			list: func(ctx context.Context, tx flexhub.Tx, f flexhub.Filter) ([]string, error) {
				vs, _, err := tx.ListResources(ctx, f, flexhub.Page{})
				return ids(len(vs), func(i int) string { return vs[i].ID }), err
			},
			key: "status", old: flexhub.ResourceActive, new: flexhub.ResourceDeregistered,
		},
		{
			name: "product status",
			change: func(ctx context.Context, tx flexhub.Tx, w *world) (string, error) {
				p := *w.Product
				p.Status, p.UpdatedAt = "retired", at
				return p.ID, tx.UpdateProduct(ctx, &p)
			},
			list: func(ctx context.Context, tx flexhub.Tx, f flexhub.Filter) ([]string, error) {
				vs, _, err := tx.ListProducts(ctx, f, flexhub.Page{})
				return ids(len(vs), func(i int) string { return vs[i].ID }), err
			},
			key: "status", old: "active", new: "retired",
		},
		{
			name: "prequalification status",
			change: func(ctx context.Context, tx flexhub.Tx, w *world) (string, error) {
				p := *w.Prequal
				p.Status, p.UpdatedAt = flexhub.PrequalWithdrawn, at
				return p.ID, tx.UpdatePrequalification(ctx, &p)
			},
			list: func(ctx context.Context, tx flexhub.Tx, f flexhub.Filter) ([]string, error) {
				vs, _, err := tx.ListPrequalifications(ctx, f, flexhub.Page{})
				return ids(len(vs), func(i int) string { return vs[i].ID }), err
			},
			key: "status", old: flexhub.PrequalSubmitted, new: flexhub.PrequalWithdrawn,
		},
		{
			name: "grid prequalification status",
			change: func(ctx context.Context, tx flexhub.Tx, w *world) (string, error) {
				g := *w.GridPrequal
				g.Status, g.UpdatedAt = flexhub.GridPrequalRejected, at
				return g.ID, tx.UpdateGridPrequalification(ctx, &g)
			},
			list: func(ctx context.Context, tx flexhub.Tx, f flexhub.Filter) ([]string, error) {
				vs, _, err := tx.ListGridPrequalifications(ctx, f, flexhub.Page{})
				return ids(len(vs), func(i int) string { return vs[i].ID }), err
			},
			key: "status", old: flexhub.GridPrequalRequested, new: flexhub.GridPrequalRejected,
		},
		{
			name: "contract status",
			change: func(ctx context.Context, tx flexhub.Tx, w *world) (string, error) {
				c := *w.Contract
				c.Status, c.UpdatedAt = flexhub.ContractRejected, at
				return c.ID, tx.UpdateContract(ctx, &c)
			},
			list: func(ctx context.Context, tx flexhub.Tx, f flexhub.Filter) ([]string, error) {
				vs, _, err := tx.ListContracts(ctx, f, flexhub.Page{})
				return ids(len(vs), func(i int) string { return vs[i].ID }), err
			},
			key: "status", old: flexhub.ContractProposed, new: flexhub.ContractRejected,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ws := s.seed(t, 1)
			var id string
			update(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
				id, err = c.change(ctx, tx, ws[0])
				return err
			})
			view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				got, err := c.list(ctx, tx, flexhub.Filter{c.key: c.new})
				if err != nil {
					return err
				}
				if !slices.Contains(got, id) {
					t.Errorf("after the update, %s=%s does not list %s: %v", c.key, c.new, id, got)
				}
				got, err = c.list(ctx, tx, flexhub.Filter{c.key: c.old})
				if err != nil {
					return err
				}
				if slices.Contains(got, id) {
					t.Errorf("after the update, %s=%s still lists %s", c.key, c.old, id)
				}
				return nil
			})
		})
	}
	t.Run("metering point code", func(t *testing.T) {
		st, ws := s.seed(t, 1)
		old := ws[0].MeteringPoint.Code
		renamed := code("707057")
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			m := *ws[0].MeteringPoint
			m.Code, m.UpdatedAt = renamed, at
			return tx.UpdateMeteringPoint(ctx, &m)
		})
		mp := func(c string) *flexhub.MeteringPoint {
			m := *ws[0].MeteringPoint
			m.ID, m.Version, m.Code = flexhub.NewID(), 0, c
			return &m
		}
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateMeteringPoint(ctx, mp(renamed)) })
		wantKind(t, "new metering point with the renamed code", err, flexhub.EConflict)
		err = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateMeteringPoint(ctx, mp(old)) })
		wantKind(t, "new metering point with the released code", err, "")
	})
}

func (s *suite) testPagination(t *testing.T) {
	// seedParties stores n FSPs and n DSOs, in random order, and returns
	// the FSP ids; pages list role=fsp.
	seedParties := func(ctx context.Context, tx flexhub.Tx, n int) ([]string, error) {
		var want []string
		var ps []*flexhub.Party
		for i := 0; i < n; i++ {
			f, d := newParty(fmt.Sprintf("FSP %d", i), flexhub.RoleFSP), newParty(fmt.Sprintf("DSO %d", i), flexhub.RoleDSO)
			want = append(want, f.ID)
			ps = append(ps, f, d)
		}
		rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		for _, p := range ps {
			if err := tx.CreateParty(ctx, p); err != nil {
				return nil, err
			}
		}
		return want, nil
	}
	pageParties := func(ctx context.Context, tx flexhub.Tx, pg flexhub.Page) ([]string, string, error) {
		vs, next, err := tx.ListParties(ctx, flexhub.Filter{"role": string(flexhub.RoleFSP)}, pg)
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.ID
		}
		return out, next, err
	}
	// seedGroups stores n groups of one FSP and n of another, in random
	// order, and returns the first FSP's; pages list fsp_id=<first>.
	var fsp string
	seedGroups := func(ctx context.Context, tx flexhub.Tx, n int) ([]string, error) {
		a, b := newParty("FSP A", flexhub.RoleFSP), newParty("FSP B", flexhub.RoleFSP)
		fsp = a.ID
		for _, p := range []*flexhub.Party{a, b} {
			if err := tx.CreateParty(ctx, p); err != nil {
				return nil, err
			}
		}
		var want []string
		var rs []*flexhub.Resource
		for i := 0; i < 2*n; i++ {
			owner := []string{a.ID, b.ID}[i%2]
			r := &flexhub.Resource{ID: flexhub.NewID(), FSPID: owner, Status: flexhub.ResourceActive, ValidFrom: base, CreatedAt: base,
				ResourceSpec: flexhub.ResourceSpec{Name: fmt.Sprintf("Pool %d", i), Kind: flexhub.ResourceGroup, Members: []string{flexhub.NewID()},
					Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(1)}}}
			if owner == a.ID {
				want = append(want, r.ID)
			}
			rs = append(rs, r)
		}
		rand.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		for _, r := range rs {
			if err := tx.CreateResource(ctx, r); err != nil {
				return nil, err
			}
		}
		return want, nil
	}
	pageGroups := func(ctx context.Context, tx flexhub.Tx, pg flexhub.Page) ([]string, string, error) {
		vs, next, err := tx.ListResources(ctx, flexhub.Filter{"fsp_id": fsp}, pg)
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.ID
		}
		return out, next, err
	}

	type seedFn func(ctx context.Context, tx flexhub.Tx, n int) ([]string, error)
	type pageFn func(ctx context.Context, tx flexhub.Tx, pg flexhub.Page) ([]string, string, error)
	cases := []struct {
		name     string
		seed     seedFn
		page     pageFn
		n, limit int
		pages    []int
	}{
		{"parties 7 by 3", seedParties, pageParties, 7, 3, []int{3, 3, 1}},
		{"parties 6 by 3 end without an empty page", seedParties, pageParties, 6, 3, []int{3, 3}},
		{"parties 2 by 5", seedParties, pageParties, 2, 5, []int{2}},
		{"parties none", seedParties, pageParties, 0, 3, []int{0}},
		{"parties limit 1", seedParties, pageParties, 3, 1, []int{1, 1, 1}},
		{"limit 0 means the default", seedParties, pageParties, flexhub.DefaultPageLimit + 1, 0, []int{flexhub.DefaultPageLimit, 1}},
		{"limit above the maximum is capped", seedParties, pageParties, flexhub.MaxPageLimit + 1, 10 * flexhub.MaxPageLimit, []int{flexhub.MaxPageLimit, 1}},
		{"resources 7 by 3", seedGroups, pageGroups, 7, 3, []int{3, 3, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := s.open(t)
			var want []string
			update(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
				want, err = c.seed(ctx, tx, c.n)
				return err
			})
			var got []string
			var sizes []int
			after := ""
			for {
				if len(sizes) > len(c.pages)+1 {
					t.Fatalf("pagination does not end: page sizes so far %v", sizes)
				}
				var ids []string
				var next string
				view(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
					ids, next, err = c.page(ctx, tx, flexhub.Page{After: after, Limit: c.limit})
					return err
				})
				sizes = append(sizes, len(ids))
				got = append(got, ids...)
				if next == "" {
					break
				}
				if len(ids) == 0 || next != ids[len(ids)-1] {
					t.Fatalf("page %d: next cursor %q is not the page's last id", len(sizes), next)
				}
				after = next
			}
			if !slices.Equal(sizes, c.pages) {
				t.Errorf("page sizes %v, want %v", sizes, c.pages)
			}
			sameIDs(t, "all pages together", got, sortedCopy(want))
		})
	}
}

var errRollback = errors.New("storetest: planned failure")

func (s *suite) testUpdateAtomicity(t *testing.T) {
	cases := []struct {
		name string
		fail func() error // how fn ends after its changes
	}{
		{"error", func() error { return errRollback }},
		{"domain error", func() error { return flexhub.Errorf(flexhub.EInvalid, "planned") }},
		{"panic", func() error { panic(errRollback) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ws := s.seed(t, 1)
			w := ws[0]
			// One committed audit entry, so the rolled-back one would be
			// the second.
			update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				return tx.AppendAudit(ctx, auditEntry(1, w.FSP.ID, w.FSP.ID))
			})
			before := snapshot(t, st)

			fresh := newParty("Rolled back", flexhub.RoleFSP)
			cred := &flexhub.Credential{ID: flexhub.NewID(), PartyID: w.FSP.ID, CreatedAt: base, SecretHash: []byte("secret")}
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						if p != errRollback {
							panic(p)
						}
						err = errRollback
					}
				}()
				err = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
					if err := tx.CreateParty(ctx, fresh); err != nil {
						return err
					}
					p := *w.FSP
					p.Name, p.UpdatedAt = "renamed", base.Add(time.Hour)
					if err := tx.UpdateParty(ctx, &p); err != nil {
						return err
					}
					if err := tx.AppendAudit(ctx, auditEntry(2, fresh.ID, fresh.ID)); err != nil {
						return err
					}
					if err := tx.CreateCredential(ctx, cred); err != nil {
						return err
					}
					if err := tx.PutIdempotency(ctx, &flexhub.IdempotencyRecord{PartyID: w.FSP.ID, Key: "k", Fingerprint: "f",
						ObjectKind: flexhub.KindParty, ObjectID: fresh.ID, CreatedAt: base}); err != nil {
						return err
					}
					return c.fail()
				})
			}()
			if c.name == "domain error" {
				wantKind(t, "Update", err, flexhub.EInvalid)
			} else if !errors.Is(err, errRollback) {
				t.Errorf("Update returned %v, want the fn's error", err)
			}

			if after := snapshot(t, st); after != before {
				t.Errorf("the failed transaction left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				_, err := tx.Party(ctx, fresh.ID)
				wantKind(t, "party created in the failed transaction", err, flexhub.ENotFound)
				_, err = tx.Versions(ctx, flexhub.KindParty, fresh.ID)
				wantKind(t, "history of the party created in the failed transaction", err, flexhub.ENotFound)
				p, err := tx.Party(ctx, w.FSP.ID)
				if err != nil {
					return err
				}
				sameJSON(t, "party updated in the failed transaction", p, w.FSP)
				vs, err := tx.Versions(ctx, flexhub.KindParty, w.FSP.ID)
				if err != nil {
					return err
				}
				if len(vs) != 1 || vs[0].ValidTo != nil {
					t.Errorf("history of the party updated in the failed transaction: %d versions, want 1 open version", len(vs))
				}
				es, err := tx.ListAudit(ctx, "", fresh.ID, 0, 0)
				if err != nil {
					return err
				}
				if len(es) != 0 {
					t.Errorf("the failed transaction's audit entry is listed: %+v", es[0])
				}
				_, err = tx.Credential(ctx, cred.ID)
				wantKind(t, "credential created in the failed transaction", err, flexhub.ENotFound)
				_, err = tx.Idempotency(ctx, w.FSP.ID, "k")
				wantKind(t, "idempotency key recorded in the failed transaction", err, flexhub.ENotFound)
				return nil
			})

			// The store is usable afterwards, and the chain continues
			// without a gap where the rolled-back entry was.
			update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				return tx.AppendAudit(ctx, auditEntry(3, w.FSP.ID, w.FSP.ID))
			})
			checkChain(t, allAudit(t, st, "", ""), 2)
		})
	}
}

func (s *suite) testView(t *testing.T) {
	t.Run("SeesCommitted", func(t *testing.T) {
		st := s.open(t)
		p := newParty("Committed", flexhub.RoleDSO)
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateParty(ctx, p) })
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			got, err := tx.Party(ctx, p.ID)
			if err != nil {
				return err
			}
			sameJSON(t, "party in View", got, p)
			list, _, err := tx.ListParties(ctx, nil, flexhub.Page{})
			if err != nil {
				return err
			}
			if len(list) != 1 || list[0].ID != p.ID {
				t.Errorf("ListParties in View: %d parties, want the committed one", len(list))
			}
			return nil
		})
	})

	t.Run("Snapshot", func(t *testing.T) {
		st := s.open(t)
		first := newParty("First", flexhub.RoleDSO)
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateParty(ctx, first) })
		late := newParty("Late", flexhub.RoleDSO)
		done := make(chan error, 1)
		pending := false // the Update goroutine has not reported yet
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			before, err := tx.CountParties(ctx)
			if err != nil {
				return err
			}
			pending = true
			go func() {
				done <- st.Update(ctx, func(tx flexhub.Tx) error { return tx.CreateParty(ctx, late) })
			}()
			select {
			case err := <-done:
				pending = false
				if err != nil {
					return fmt.Errorf("Update while a View is open: %w", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("an Update could not commit while a View was open")
				return nil
			}
			after, err := tx.CountParties(ctx)
			if err != nil {
				return err
			}
			if after != before {
				t.Errorf("CountParties in one View went from %d to %d: a View must read one consistent snapshot", before, after)
			}
			_, err = tx.Party(ctx, late.ID)
			wantKind(t, "party committed after the View's first read", err, flexhub.ENotFound)
			list, _, err := tx.ListParties(ctx, nil, flexhub.Page{})
			if err != nil {
				return err
			}
			if len(list) != 1 {
				t.Errorf("ListParties in the View: %d parties, want the 1 of its snapshot", len(list))
			}
			return nil
		})
		if pending {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
		}
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			_, err := tx.Party(ctx, late.ID)
			return err
		})
	})

	t.Run("ReadOnly", func(t *testing.T) {
		st := s.open(t)
		p := newParty("Sneaky", flexhub.RoleFSP)
		var createErr error
		err := st.View(t.Context(), func(tx flexhub.Tx) error {
			createErr = tx.CreateParty(t.Context(), p)
			return nil
		})
		if createErr == nil && err == nil {
			t.Error("CreateParty in a View succeeded; a View is read-only")
		}
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			_, err := tx.Party(ctx, p.ID)
			wantKind(t, "party written in a View", err, flexhub.ENotFound)
			return nil
		})
	})

	t.Run("ErrorIsReturned", func(t *testing.T) {
		st := s.open(t)
		err := st.View(t.Context(), func(flexhub.Tx) error { return errRollback })
		if !errors.Is(err, errRollback) {
			t.Errorf("View returned %v, want the fn's error", err)
		}
	})
}

// allAudit lists every entry matching the filters, paging with small
// pages to exercise ListAudit's after and limit.
func allAudit(t *testing.T, s flexhub.Store, partyID, objectID string) []*flexhub.AuditEntry {
	t.Helper()
	var out []*flexhub.AuditEntry
	var after int64
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("ListAudit paging does not end")
		}
		var page []*flexhub.AuditEntry
		view(t, s, func(ctx context.Context, tx flexhub.Tx) (err error) {
			page, err = tx.ListAudit(ctx, partyID, objectID, after, 7)
			return err
		})
		if len(page) > 7 {
			t.Fatalf("ListAudit limit 7 returned %d entries", len(page))
		}
		if len(page) == 0 {
			return out
		}
		for _, e := range page {
			if e.Seq <= after {
				t.Fatalf("ListAudit after %d returned seq %d", after, e.Seq)
			}
			after = e.Seq
		}
		out = append(out, page...)
	}
}

// checkChain checks that entries are the whole chain 1..n.
func checkChain(t *testing.T, entries []*flexhub.AuditEntry, n int) {
	t.Helper()
	if len(entries) != n {
		t.Errorf("audit chain has %d entries, want %d", len(entries), n)
	}
	prev := flexhub.GenesisHash
	v := flexhub.NewChainVerifier()
	for i, e := range entries {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d, want %d", i, e.Seq, i+1)
		}
		if e.PrevHash != prev {
			t.Errorf("entry seq %d: PrevHash %s, want the previous hash %s", e.Seq, e.PrevHash, prev)
		}
		if h := e.ComputeHash(); e.Hash != h {
			t.Errorf("entry seq %d: Hash %s, want ComputeHash() %s", e.Seq, e.Hash, h)
		}
		prev = e.Hash
		v.Add(e)
	}
	if !v.Report.OK {
		t.Errorf("chain verifier: %+v", v.Report)
	}
	if v.Report.Entries != int64(len(entries)) {
		t.Errorf("chain verifier checked %d entries, want %d", v.Report.Entries, len(entries))
	}
	if len(entries) > 0 && v.Report.Head != entries[len(entries)-1].Hash {
		t.Errorf("chain head %s, want the last entry's hash", v.Report.Head)
	}
}

func (s *suite) testAudit(t *testing.T) {
	t.Run("Chain", func(t *testing.T) {
		st := s.open(t)
		// The times have nanoseconds and a zone: the store normalises them,
		// and the hash must cover what it stores.
		cet := time.FixedZone("CET", 3600)
		var appended []*flexhub.AuditEntry
		for _, batch := range [][]int{{1, 2}, {3}, {4, 5}} {
			update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				for _, n := range batch {
					e := auditEntry(n, "obj", "p1", "p2")
					e.At = base.Add(time.Duration(n)*time.Second + 123456789).In(cet)
					if err := tx.AppendAudit(ctx, e); err != nil {
						return err
					}
					if e.Seq != int64(n) {
						t.Errorf("AppendAudit gave seq %d, want %d", e.Seq, n)
					}
					if e.Hash == "" || e.Hash != e.ComputeHash() {
						t.Errorf("AppendAudit seq %d: Hash %q, want ComputeHash() %q", e.Seq, e.Hash, e.ComputeHash())
					}
					appended = append(appended, e)
				}
				return nil
			})
		}
		if appended[0].PrevHash != flexhub.GenesisHash {
			t.Errorf("first entry PrevHash %s, want the genesis hash", appended[0].PrevHash)
		}
		listed := allAudit(t, st, "", "")
		checkChain(t, listed, 5)
		if len(listed) == len(appended) {
			for i := range listed {
				sameJSON(t, fmt.Sprintf("listed entry %d", i+1), listed[i], appended[i])
			}
		}
	})

	t.Run("ListByPartyAndObject", func(t *testing.T) {
		st := s.open(t)
		a, b, c := flexhub.NewID(), flexhub.NewID(), flexhub.NewID()
		o1, o2 := flexhub.NewID(), flexhub.NewID()
		entries := []*flexhub.AuditEntry{
			auditEntry(1, o1, a),
			auditEntry(2, o1, b),
			auditEntry(3, o2, a, b),
			auditEntry(4, o2),
			auditEntry(5, o1, a, a), // a party named twice is listed once
			auditEntry(6, o2, c),
		}
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			for _, e := range entries {
				if err := tx.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		seqs := func(es []*flexhub.AuditEntry) []int64 {
			var out []int64
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		cases := []struct {
			name          string
			party, object string
			after         int64
			limit         int
			want          []int64
			paged         bool
		}{
			{name: "all", want: []int64{1, 2, 3, 4, 5, 6}, paged: true},
			{name: "party a", party: a, want: []int64{1, 3, 5}, paged: true},
			{name: "party b", party: b, want: []int64{2, 3}, paged: true},
			{name: "party c", party: c, want: []int64{6}, paged: true},
			{name: "unknown party", party: flexhub.NewID(), want: nil, paged: true},
			{name: "object o1", object: o1, want: []int64{1, 2, 5}, paged: true},
			{name: "object o2", object: o2, want: []int64{3, 4, 6}, paged: true},
			{name: "party a and object o2", party: a, object: o2, want: []int64{3}, paged: true},
			{name: "after 2", after: 2, limit: 0, want: []int64{3, 4, 5, 6}},
			{name: "limit 2", limit: 2, want: []int64{1, 2}},
			{name: "party a after 1 limit 1", party: a, after: 1, limit: 1, want: []int64{3}},
			{name: "after the last", after: 6, want: nil},
		}
		for _, c := range cases {
			var got []*flexhub.AuditEntry
			if c.paged {
				got = allAudit(t, st, c.party, c.object)
			} else {
				view(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
					got, err = tx.ListAudit(ctx, c.party, c.object, c.after, c.limit)
					return err
				})
			}
			if g := seqs(got); !slices.Equal(g, c.want) {
				t.Errorf("ListAudit %s: seqs %v, want %v", c.name, g, c.want)
			}
			for _, e := range got {
				if c.party != "" && !slices.Contains(e.Parties, c.party) {
					t.Errorf("ListAudit %s: entry %d does not name the party: %v", c.name, e.Seq, e.Parties)
				}
				if c.object != "" && e.ObjectID != c.object {
					t.Errorf("ListAudit %s: entry %d is about %s", c.name, e.Seq, e.ObjectID)
				}
				sameJSON(t, fmt.Sprintf("ListAudit %s entry %d", c.name, e.Seq), e, entries[e.Seq-1])
			}
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		st := s.open(t)
		const workers, perWorker = 8, 10
		parties := make([]string, workers)
		for i := range parties {
			parties[i] = flexhub.NewID()
		}
		ctx := t.Context()
		errs := make(chan error, workers*perWorker)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < perWorker; i++ {
					errs <- st.Update(ctx, func(tx flexhub.Tx) error {
						return tx.AppendAudit(ctx, auditEntry(w*perWorker+i, parties[w], parties[w]))
					})
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Update with AppendAudit: %v", err)
			}
		}
		checkChain(t, allAudit(t, st, "", ""), workers*perWorker)
		for w, p := range parties {
			if got := allAudit(t, st, p, ""); len(got) != perWorker {
				t.Errorf("worker %d: %d entries name its party, want %d", w, len(got), perWorker)
			}
		}
	})
}

func (s *suite) testCredentials(t *testing.T) {
	secret := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	setup := func(t *testing.T) (flexhub.Store, *world, []*flexhub.Credential) {
		st, ws := s.seed(t, 1)
		w := ws[0]
		creds := []*flexhub.Credential{
			{ID: flexhub.NewID(), PartyID: w.FSP.ID, Label: "ems", CreatedAt: base, SecretHash: secret("one")},
			{ID: flexhub.NewID(), PartyID: w.FSP.ID, Label: "", CreatedAt: base.Add(time.Second), SecretHash: secret("two")},
			{ID: flexhub.NewID(), PartyID: w.DSO.ID, Label: "scada", CreatedAt: base.Add(2 * time.Second), SecretHash: secret("three")},
		}
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			for _, c := range creds {
				if err := tx.CreateCredential(ctx, c); err != nil {
					return err
				}
			}
			return nil
		})
		return st, w, creds
	}
	get := func(t *testing.T, st flexhub.Store, id string) *flexhub.Credential {
		t.Helper()
		var c *flexhub.Credential
		view(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
			c, err = tx.Credential(ctx, id)
			return err
		})
		return c
	}

	t.Run("CreateGet", func(t *testing.T) {
		st, _, creds := setup(t)
		for _, want := range creds {
			got := get(t, st, want.ID)
			sameJSON(t, "credential "+want.ID, got, want)
			if !bytes.Equal(got.SecretHash, want.SecretHash) {
				t.Errorf("credential %s: SecretHash %x, want %x", want.ID, got.SecretHash, want.SecretHash)
			}
			if !got.Active() {
				t.Errorf("new credential %s is not active", want.ID)
			}
		}
	})

	t.Run("DuplicateID", func(t *testing.T) {
		st, w, creds := setup(t)
		dup := *creds[0]
		dup.PartyID, dup.SecretHash = w.DSO.ID, secret("other")
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateCredential(ctx, &dup) })
		wantKind(t, "CreateCredential with an id in use", err, flexhub.EConflict)
		got := get(t, st, creds[0].ID)
		if got.PartyID != creds[0].PartyID || !bytes.Equal(got.SecretHash, creds[0].SecretHash) {
			t.Errorf("the duplicate replaced the stored credential: %+v", got)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		st, _, creds := setup(t)
		at := base.Add(time.Hour + 42*time.Microsecond)
		update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.RevokeCredential(ctx, creds[0].ID, at) })
		got := get(t, st, creds[0].ID)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
			t.Fatalf("RevokedAt = %v, want %s", got.RevokedAt, at)
		}
		if got.Active() {
			t.Error("revoked credential is still active")
		}
		if other := get(t, st, creds[1].ID); other.RevokedAt != nil {
			t.Errorf("revoking one credential revoked another: %+v", other)
		}
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			return tx.RevokeCredential(ctx, creds[0].ID, at.Add(time.Hour))
		})
		wantKind(t, "revoking twice", err, flexhub.EConflict)
		if again := get(t, st, creds[0].ID); again.RevokedAt == nil || !again.RevokedAt.Equal(at) {
			t.Errorf("second revocation moved RevokedAt to %v, want %s", again.RevokedAt, at)
		}
		err = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			return tx.RevokeCredential(ctx, flexhub.NewID(), at)
		})
		wantKind(t, "revoking a missing credential", err, flexhub.ENotFound)
	})

	t.Run("Touch", func(t *testing.T) {
		st, _, creds := setup(t)
		for _, at := range []time.Time{base.Add(time.Minute), base.Add(2 * time.Minute)} {
			update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.TouchCredential(ctx, creds[0].ID, at) })
			if got := get(t, st, creds[0].ID); got.LastUsed == nil || !got.LastUsed.Equal(at) {
				t.Errorf("LastUsed = %v, want %s", got.LastUsed, at)
			}
		}
	})

	t.Run("ListByParty", func(t *testing.T) {
		st, w, creds := setup(t)
		cases := []struct {
			party string
			want  []*flexhub.Credential
		}{
			{w.FSP.ID, creds[:2]},
			{w.DSO.ID, creds[2:]},
			{w.TSO.ID, nil},
			{flexhub.NewID(), nil},
		}
		view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
			for _, c := range cases {
				got, err := tx.ListCredentials(ctx, c.party)
				if err != nil {
					return err
				}
				if len(got) != len(c.want) {
					t.Errorf("ListCredentials(%s): %d credentials, want %d", c.party, len(got), len(c.want))
					continue
				}
				byID := map[string]*flexhub.Credential{}
				for _, g := range got {
					byID[g.ID] = g
				}
				for _, wc := range c.want {
					g, ok := byID[wc.ID]
					if !ok {
						t.Errorf("ListCredentials(%s) misses %s", c.party, wc.ID)
						continue
					}
					sameJSON(t, "listed credential", g, wc)
					if !bytes.Equal(g.SecretHash, wc.SecretHash) {
						t.Errorf("listed credential %s: SecretHash differs", wc.ID)
					}
				}
			}
			return nil
		})
	})
}

func (s *suite) testIdempotency(t *testing.T) {
	a, b := flexhub.NewID(), flexhub.NewID()
	rec := func(party, key, fp string) *flexhub.IdempotencyRecord {
		return &flexhub.IdempotencyRecord{PartyID: party, Key: key, Fingerprint: fp, ObjectKind: flexhub.KindResource,
			ObjectID: flexhub.NewID(), CreatedAt: base.Add(1500 * time.Microsecond)}
	}
	put := func(t *testing.T, st flexhub.Store, r *flexhub.IdempotencyRecord) error {
		return tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.PutIdempotency(ctx, r) })
	}
	get := func(t *testing.T, st flexhub.Store, party, key string) (*flexhub.IdempotencyRecord, error) {
		var r *flexhub.IdempotencyRecord
		err := st.View(t.Context(), func(tx flexhub.Tx) (err error) {
			r, err = tx.Idempotency(t.Context(), party, key)
			return err
		})
		return r, err
	}

	t.Run("PutGet", func(t *testing.T) {
		st := s.open(t)
		r := rec(a, "create-1", "fp1")
		if err := put(t, st, r); err != nil {
			t.Fatalf("PutIdempotency: %v", err)
		}
		got, err := get(t, st, a, "create-1")
		if err != nil {
			t.Fatalf("Idempotency: %v", err)
		}
		sameJSON(t, "idempotency record", got, r)
	})

	t.Run("SameKeyTwice", func(t *testing.T) {
		st := s.open(t)
		r := rec(a, "create-1", "fp1")
		if err := put(t, st, r); err != nil {
			t.Fatalf("PutIdempotency: %v", err)
		}
		wantKind(t, "PutIdempotency with a used key", put(t, st, rec(a, "create-1", "fp2")), flexhub.EConflict)
		got, err := get(t, st, a, "create-1")
		if err != nil {
			t.Fatalf("Idempotency: %v", err)
		}
		sameJSON(t, "record after the rejected second put", got, r)
	})

	t.Run("OtherPartySameKey", func(t *testing.T) {
		st := s.open(t)
		ra, rb := rec(a, "create-1", "fp-a"), rec(b, "create-1", "fp-b")
		for _, r := range []*flexhub.IdempotencyRecord{ra, rb} {
			if err := put(t, st, r); err != nil {
				t.Fatalf("PutIdempotency(%s): %v", r.PartyID, err)
			}
		}
		for _, r := range []*flexhub.IdempotencyRecord{ra, rb} {
			got, err := get(t, st, r.PartyID, r.Key)
			if err != nil {
				t.Fatalf("Idempotency(%s): %v", r.PartyID, err)
			}
			sameJSON(t, "record of party "+r.PartyID, got, r)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		st := s.open(t)
		if err := put(t, st, rec(a, "create-1", "fp")); err != nil {
			t.Fatalf("PutIdempotency: %v", err)
		}
		_, err := get(t, st, a, "create-2")
		wantKind(t, "Idempotency of an unused key", err, flexhub.ENotFound)
		_, err = get(t, st, b, "create-1")
		wantKind(t, "Idempotency of another party's key", err, flexhub.ENotFound)
	})
}

// testDueMarketSessions checks the scheduler's query: scheduled sessions
// past gate opening and open sessions past gate closure, earliest gate
// first; nothing closed, cancelled or not yet due.
func (s *suite) testDueMarketSessions(t *testing.T) {
	st, ws := s.seed(t, 1)
	w := ws[0]
	mk := func(status string, opening, closure time.Duration) *flexhub.MarketSession {
		m := *w.Session
		m.ID, m.Version, m.Status = flexhub.NewID(), 0, status
		m.GateOpening, m.GateClosure = base.Add(opening), base.Add(closure)
		return &m
	}
	dueOpen := mk(flexhub.SessionScheduled, time.Hour, 3*time.Hour)
	dueClose := mk(flexhub.SessionOpen, 0, 2*time.Hour)
	early := mk(flexhub.SessionScheduled, 30*time.Minute, 10*time.Hour)
	notYet := []*flexhub.MarketSession{
		mk(flexhub.SessionScheduled, 5*time.Hour, 6*time.Hour),
		mk(flexhub.SessionOpen, time.Hour, 5*time.Hour),
		mk(flexhub.SessionClosed, 0, time.Hour),
		mk(flexhub.SessionCancelled, 0, time.Hour),
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		// w.Session itself is open until base+12h and so not due.
		for _, m := range append([]*flexhub.MarketSession{dueOpen, dueClose, early}, notYet...) {
			if err := tx.CreateMarketSession(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
	now := base.Add(2 * time.Hour)
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.DueMarketSessions(ctx, now, 10)
		if err != nil {
			return err
		}
		var ids []string
		for _, m := range got {
			ids = append(ids, m.ID)
		}
		if want := []string{early.ID, dueOpen.ID, dueClose.ID}; !slices.Equal(ids, want) {
			t.Errorf("due at %s: %v, want %v (earliest gate first)", now, ids, want)
		}
		if len(got) == 3 {
			sameJSON(t, "due session", got[2], dueClose)
		}
		got, err = tx.DueMarketSessions(ctx, now, 1)
		if err != nil || len(got) != 1 || got[0].ID != early.ID {
			t.Errorf("limit 1: %v, %v", got, err)
		}
		got, err = tx.DueMarketSessions(ctx, base, 10)
		if err != nil || len(got) != 0 {
			t.Errorf("nothing is due at %s: %v, %v", base, got, err)
		}
		return nil
	})
	// Closing is a conditional update: of two writers that read the same
	// version, exactly one wins.
	wins := 0
	for range 2 {
		m := clone(t, dueClose)
		m.Status, m.UpdatedAt = flexhub.SessionClosed, now
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.UpdateMarketSession(ctx, m) })
		if err == nil {
			wins++
		} else {
			wantKind(t, "second close", err, flexhub.EConflict)
		}
	}
	if wins != 1 {
		t.Errorf("%d writers closed the session, want exactly 1", wins)
	}
}

// testNotifications checks the feed: per party, in order, paged by seq,
// numbered in commit order under concurrent writers, and rolled back with
// the transaction that wrote it.
func (s *suite) testNotifications(t *testing.T) {
	st, ws := s.seed(t, 2)
	a, b := ws[0].FSP.ID, ws[1].FSP.ID
	note := func(party string, n int) *flexhub.Notification {
		return &flexhub.Notification{PartyID: party, At: base.Add(time.Duration(n) * time.Second), Type: flexhub.NotifySessionOpened,
			ObjectKind: flexhub.KindMarketSession, ObjectID: ws[0].Session.ID, SessionID: ws[0].Session.ID, Text: label(n)}
	}
	var written []*flexhub.Notification
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for i := range 5 {
			party := a
			if i%2 == 1 {
				party = b
			}
			n := note(party, i)
			if err := tx.CreateNotification(ctx, n); err != nil {
				return err
			}
			written = append(written, n)
		}
		return nil
	})
	for i, n := range written {
		if n.Seq != int64(i+1) {
			t.Fatalf("notification %d got seq %d", i, n.Seq)
		}
	}
	// A failed transaction leaves no notification behind.
	_ = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if err := tx.CreateNotification(ctx, note(a, 99)); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.ListNotifications(ctx, a, 0, 0)
		if err != nil {
			return err
		}
		if len(got) != 3 || got[0].Seq != 1 || got[1].Seq != 3 || got[2].Seq != 5 {
			t.Errorf("party A's feed: %+v", got)
		}
		sameJSON(t, "notification", got[1], written[2])
		page, err := tx.ListNotifications(ctx, a, 1, 1)
		if err != nil || len(page) != 1 || page[0].Seq != 3 {
			t.Errorf("after 1, limit 1: %+v %v", page, err)
		}
		other, err := tx.ListNotifications(ctx, b, 0, 0)
		if err != nil || len(other) != 2 {
			t.Errorf("party B's feed: %+v %v", other, err)
		}
		none, err := tx.ListNotifications(ctx, a, 5, 0)
		if err != nil || len(none) != 0 {
			t.Errorf("nothing after the last: %+v %v", none, err)
		}
		// Every party's, for the MQTT push.
		all, err := tx.NotificationsAfter(ctx, 1, 3)
		if err != nil || len(all) != 3 || all[0].Seq != 2 || all[2].Seq != 4 || all[0].PartyID != b || all[1].PartyID != a {
			t.Errorf("every party's after 1, limit 3: %+v %v", all, err)
		}
		if head, err := tx.NotificationHead(ctx); err != nil || head != 5 {
			t.Errorf("head %d %v, want 5", head, err)
		}
		return nil
	})
	// Concurrent writers get distinct numbers with no gaps.
	var wg sync.WaitGroup
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- st.Update(t.Context(), func(tx flexhub.Tx) error { return tx.CreateNotification(t.Context(), note(a, 10+i)) })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent notification: %v", err)
		}
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.ListNotifications(ctx, a, 5, 0)
		if err != nil {
			return err
		}
		if len(got) != n {
			t.Fatalf("%d concurrent notifications stored, want %d", len(got), n)
		}
		for i, x := range got {
			if x.Seq != int64(6+i) {
				t.Errorf("concurrent notification %d has seq %d, want %d", i, x.Seq, 6+i)
			}
		}
		return nil
	})
}

// testSecondaryMarket checks the secondary market's store half: the
// scheduler's queries (confirmed trades past their objection window,
// open offers past expiry, earliest first), an obligation a trade creates
// sharing its award with the one it replaces, at most one obligation per
// trade, a live offer again once the first one ended, and the trade's
// completion as a conditional update that exactly one writer wins.
func (s *suite) testSecondaryMarket(t *testing.T) {
	st, ws := s.seed(t, 1)
	w := ws[0]
	mkTrade := func(status string, end time.Duration) *flexhub.Trade {
		tr := *w.Trade
		tr.ID, tr.Version, tr.Status = flexhub.NewID(), 0, status
		if end != 0 {
			e := base.Add(end)
			tr.ObjectionWindowEnd = &e
		}
		return &tr
	}
	due1, due2 := mkTrade(flexhub.TradeConfirmed, 20*time.Minute), mkTrade(flexhub.TradeConfirmed, 10*time.Minute)
	notDue := []*flexhub.Trade{mkTrade(flexhub.TradeConfirmed, 2*time.Hour), mkTrade(flexhub.TradeObjected, 10*time.Minute), mkTrade(flexhub.TradeProposed, 0)}
	mkOffer := func(status string, expiry time.Duration) *flexhub.SecondaryOffer {
		o := *w.Offer
		o.ID, o.Version, o.Status, o.Expiry = flexhub.NewID(), 0, status, base.Add(expiry)
		return &o
	}
	// w.Offer is open: the world's own offer must end before another
	// offer of the obligation can be live.
	closed := clone(t, w.Offer)
	closed.Status = flexhub.OfferCancelled
	expired := mkOffer(flexhub.OfferOpen, 30*time.Minute)
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, tr := range append([]*flexhub.Trade{due1, due2}, notDue...) {
			if err := tx.CreateTrade(ctx, tr); err != nil {
				return err
			}
		}
		if err := tx.UpdateSecondaryOffer(ctx, closed); err != nil {
			return err
		}
		if err := tx.CreateSecondaryOffer(ctx, expired); err != nil {
			return err
		}
		for _, o := range []*flexhub.SecondaryOffer{mkOffer(flexhub.OfferCancelled, 0), mkOffer(flexhub.OfferExpired, 0)} {
			if err := tx.CreateSecondaryOffer(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	now := base.Add(time.Hour)
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.DueTrades(ctx, now, 10)
		if err != nil {
			return err
		}
		var ids []string
		for _, tr := range got {
			ids = append(ids, tr.ID)
		}
		// The world's own trade is only proposed: not due.
		if want := []string{due2.ID, due1.ID}; !slices.Equal(ids, want) {
			t.Errorf("due trades at %s: %v, want %v (earliest window end first)", now, ids, want)
		}
		if got, err := tx.DueTrades(ctx, now, 1); err != nil || len(got) != 1 || got[0].ID != due2.ID {
			t.Errorf("limit 1: %v, %v", got, err)
		}
		offers, err := tx.DueSecondaryOffers(ctx, now, 10)
		if err != nil {
			return err
		}
		if len(offers) != 1 || offers[0].ID != expired.ID {
			t.Errorf("due offers: %v, want only %s", offers, expired.ID)
		}
		if offers, err := tx.DueSecondaryOffers(ctx, base, 10); err != nil || len(offers) != 0 {
			t.Errorf("nothing expires at %s: %v, %v", base, offers, err)
		}
		return nil
	})
	// The buyer's obligation shares the award; a second one for the same
	// trade is refused.
	nu := clone(t, w.Obligation)
	nu.ID, nu.Version, nu.FSPID, nu.TradeID, nu.TransferredFrom = flexhub.NewID(), 0, w.Supplier.ID, due1.ID, w.Obligation.ID
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateObligation(ctx, nu) })
	again := clone(t, nu)
	again.ID, again.Version = flexhub.NewID(), 0
	err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateObligation(ctx, again) })
	wantKind(t, "second obligation for a trade", err, flexhub.EConflict)
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.Obligation(ctx, nu.ID)
		if err != nil {
			return err
		}
		sameJSON(t, "the buyer's obligation", got, nu)
		return nil
	})
	// Completing is a conditional update: of two writers that read the
	// same version, exactly one wins.
	wins := 0
	for range 2 {
		tr := clone(t, due1)
		tr.Status, tr.UpdatedAt = flexhub.TradeCompleted, now
		err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.UpdateTrade(ctx, tr) })
		if err == nil {
			wins++
		} else {
			wantKind(t, "second completion", err, flexhub.EConflict)
		}
	}
	if wins != 1 {
		t.Errorf("%d writers completed the trade, want exactly 1", wins)
	}
}
