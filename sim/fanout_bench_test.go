package sim_test

// The activation fan-out benchmark (issue 4): one order set to 10,000
// simulated resources over MQTT, through flexhub end to end, against the
// same orders through the broker alone. It lives in the sim package's
// tests because the simulator is the FSPs' side of it; it builds flexhub
// the way `flexhub serve` does (app.Service, the REST server, the broker,
// ServeMQTT, RunScheduler), so it depends on no test helper of another
// package.
//
//	go test ./sim -run '^$' -bench ActivationFanout -benchtime 1x -count 3 -timeout 60m
//	FLEXHUB_TEST_POSTGRES=postgres://... FLEXHUB_TEST_MOSQUITTO=/usr/sbin/mosquitto go test ./sim ...
//
// Results and what they mean: docs/BENCHMARKS.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/mqtt"
	"github.com/flexhub/flexhub/mqtt/mosquittotest"
	"github.com/flexhub/flexhub/postgres/pgtest"
	"github.com/flexhub/flexhub/sim"
	"github.com/flexhub/flexhub/sqlite"
)

// fanoutN is the number of orders (and resources) per fan-out.
const fanoutN = 10_000

// fanoutShapes: the 10,000 resources held by one FSP, or by ten FSPs of
// 1,000 each (one MQTT connection per FSP either way).
var fanoutShapes = []int{1, 10}

// BenchmarkActivationFanout measures, per store × broker, the time from
// the start of one POST /v1/activation-order-batches with 10,000
// orders to the commit that records each order's `received`
// acknowledgement from the simulated FSP: p50, p99 and max over the
// orders, and the time to the last one. The baseline sub-benchmark
// (transport) publishes the same 10,000 orders straight to a broker of
// the same kind, to the same simulator, and times each `received`
// acknowledgement's arrival: what MQTT and the simulator alone cost.
//
// Setup (not timed): a fresh store, flexhub's service with its REST
// server, broker, MQTT handlers and scheduler; a DSO with an automatic
// product; 20,000 active units prequalified for it (10,000 of one FSP,
// 10 × 1,000 of ten more); the simulator connected as those 11 FSPs.
// The simulator's meter stream is held still (a clock whose sleeps last
// until the end): meter ingestion is measured on its own, and 10,000
// messages every few seconds would be a second load in this one.
func BenchmarkActivationFanout(b *testing.B) {
	type store struct {
		name string
		open func(b *testing.B) flexhub.Store
	}
	stores := []store{{"sqlite", func(b *testing.B) flexhub.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "flexhub.db"), true)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}}}
	if os.Getenv("FLEXHUB_TEST_POSTGRES") != "" {
		stores = append(stores, store{"postgres", openFanoutPostgres})
	}
	brokers := []string{"embedded"}
	if os.Getenv("FLEXHUB_TEST_MOSQUITTO") != "" {
		brokers = append(brokers, "mosquitto")
	}
	for _, br := range brokers {
		for _, st := range stores {
			b.Run(st.name+"/"+br, func(b *testing.B) {
				r := newFanoutRig(b, st.open(b), br)
				for _, n := range fanoutShapes {
					b.Run(fmt.Sprintf("fsps=%d", n), func(b *testing.B) { r.benchFlexhub(b, n) })
				}
			})
		}
		b.Run("transport/"+br, func(b *testing.B) {
			r := newTransportRig(b, br)
			for _, n := range fanoutShapes {
				b.Run(fmt.Sprintf("fsps=%d", n), func(b *testing.B) { r.benchTransport(b, n) })
			}
		})
	}
}

// sessionStore is the embedded broker's session file with
// FLEXHUB_FANOUT_SESSIONS set (as `flexhub serve` runs it), else none
// (sessions in memory). With the file, mochi's bolt store writes and
// fsyncs every QoS 1 message in flight and again at its PUBACK, one
// transaction each: at 10,000 orders that, not flexhub, sets the pace
// (docs/BENCHMARKS.md).
func sessionStore(b *testing.B) string {
	if os.Getenv("FLEXHUB_FANOUT_SESSIONS") == "" {
		return ""
	}
	return filepath.Join(b.TempDir(), "mqtt-sessions.db")
}

// fanoutParties is what both rigs set up in flexhub's register: the DSO
// and its automatic product, the FSPs with their keys and units.
type fanoutParties struct {
	svc     *app.Service
	api     *httptest.Server
	dsoKey  string
	product string
	fsps    []fanoutFSP // [0] holds 10,000 units; [1..10] 1,000 each
	sim     *sim.Sim
}

type fanoutFSP struct {
	id, token, cred string
	units           []string
}

// forShape returns the FSPs of a shape: 1 (the big one) or 10.
func (p *fanoutParties) forShape(n int) []fanoutFSP {
	if n == 1 {
		return p.fsps[:1]
	}
	return p.fsps[1 : 1+n]
}

// register creates the parties, the product and the units (prequalified)
// in svc. The units and prequalifications are written straight to the
// store, 1,000 per transaction: they are the register the benchmark
// stands on, not what it measures.
func register(b *testing.B, svc *app.Service, api *httptest.Server) *fanoutParties {
	ctx := context.Background()
	ic, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, ic.Token)
	if err != nil {
		b.Fatal(err)
	}
	actx := app.WithActor(ctx, admin)
	party := func(stem, name string, role flexhub.Role) (string, *app.IssuedCredential) {
		c, err := svc.CreateParty(actx, flexhub.PartySpec{EIC: flexhub.EICFromStem(stem), Name: name, Roles: []flexhub.Role{role}}, "")
		if err != nil {
			b.Fatal(err)
		}
		k, err := svc.IssueCredential(actx, c.Object.ID, "fan-out benchmark")
		if err != nil {
			b.Fatal(err)
		}
		return c.Object.ID, k
	}
	p := &fanoutParties{svc: svc, api: api}
	dso, dk := party("10XFANOUTDSO", "Fan-out DSO", flexhub.RoleDSO)
	p.dsoKey = dk.Token
	dsoParty, err := svc.Authenticate(ctx, dk.Token)
	if err != nil {
		b.Fatal(err)
	}
	tol := 10
	prod, err := svc.CreateProduct(app.WithActor(ctx, dsoParty), flexhub.ProductSpec{Name: "Automatic local flexibility (fan-out)", Service: "congestion_management",
		Direction: "both", PowerType: "active", MinBidSize: flexhub.KW(1), TimeResolution: "PT15M", FullActivationTime: "PT1M",
		ActivationMode: "automatic", AckDeadline: "PT1M", DeliveryTolerance: &tol, Remuneration: []string{"energy"}, BaselineMethod: "meter_before"}, "")
	if err != nil {
		b.Fatal(err)
	}
	p.product = prod.Object.ID
	for i := 0; i <= 10; i++ {
		units := 1000
		if i == 0 {
			units = fanoutN
		}
		id, k := party(fmt.Sprintf("10XFANOUTFSP%02d", i), fmt.Sprintf("Fan-out FSP %d", i), flexhub.RoleFSP)
		p.fsps = append(p.fsps, fanoutFSP{id: id, token: k.Token, cred: k.ID})
		now := time.Now().UTC().Truncate(time.Microsecond)
		for done := 0; done < units; done += 1000 {
			err := svc.Store().Update(ctx, func(tx flexhub.Tx) error {
				for j := done; j < done+1000; j++ {
					typ := unitTypes[j%len(unitTypes)]
					r := &flexhub.Resource{ID: flexhub.NewID(), FSPID: id, DSOID: dso, Status: flexhub.ResourceActive, ValidFrom: now, CreatedAt: now,
						ResourceSpec: flexhub.ResourceSpec{Name: fmt.Sprintf("%s %d", typ, j), Kind: flexhub.ResourceUnit, UnitType: typ,
							Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(2), MaxDown: flexhub.KW(2)}}}
					if err := tx.CreateResource(ctx, r); err != nil {
						return err
					}
					if err := tx.CreatePrequalification(ctx, &flexhub.Prequalification{ID: flexhub.NewID(), ResourceID: r.ID, ProductID: p.product,
						FSPID: id, SystemOperatorID: dso, Status: flexhub.PrequalApproved, CreatedAt: now, UpdatedAt: now,
						Decision: &flexhub.PrequalDecision{Outcome: flexhub.PrequalApproved, ValidFrom: now.Add(-time.Hour), DecidedBy: dso, DecidedAt: now}}); err != nil {
						return err
					}
					p.fsps[i].units = append(p.fsps[i].units, r.ID)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return p
}

// startSim connects the simulator, as every FSP, to the broker at addr.
func (p *fanoutParties) startSim(b *testing.B, addr string) *sim.Sim {
	ctx, cancel := context.WithCancel(context.Background())
	var keys []string
	for _, f := range p.fsps {
		keys = append(keys, f.token)
	}
	s, err := sim.New(ctx, sim.Options{API: p.api.URL, MQTT: "tcp://" + addr, Keys: keys, Resolution: 15 * time.Minute, Clock: stillClock{},
		DataDir: sharedData, Log: nil})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	waitForB(b, "every simulated FSP connected", 60*time.Second, func() bool {
		for _, f := range s.FSPs {
			if !f.Stats.Connected.Load() {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // the subscriptions follow the connection
	return s
}

// stillClock is the wall clock whose sleeps last until the run ends: the
// simulator takes and acknowledges orders at once but never steps its
// fleet, so it streams no meter data.
type stillClock struct{}

func (stillClock) Now() time.Time { return time.Now().UTC() }
func (stillClock) SleepUntil(ctx context.Context, _ time.Time) error {
	<-ctx.Done()
	return ctx.Err()
}

// fanoutRig is flexhub (store, service, REST server, broker, MQTT
// handlers, scheduler) with its register and the simulator connected.
type fanoutRig struct {
	*fanoutParties
	commits *commitStore
}

func newFanoutRig(b *testing.B, st flexhub.Store, broker string) *fanoutRig {
	ctx, cancel := context.WithCancel(context.Background())
	cs := &commitStore{Store: st}
	var log *slog.Logger
	if os.Getenv("FLEXHUB_FANOUT_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	svc := app.New(cs, log)
	api := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
	var bus mqtt.Bus
	var addr string
	switch broker {
	case "embedded":
		e, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: svc.MQTTAuthorizer(), SessionStore: sessionStore(b)})
		if err != nil {
			b.Fatal(err)
		}
		svc.SetMQTTProvisioner(e)
		bus, addr = e, e.Addr()
	case "mosquitto":
		m := startMosquitto(b)
		ext, prov := m.connect(b, "flexhub", svc.MQTTAuthorizer())
		svc.SetMQTTProvisioner(prov)
		bus, addr = ext, m.addr
	}
	svc.SetPublisher(bus)
	if err := svc.ServeMQTT(ctx, mqtt.Handlers{Bus: bus}); err != nil {
		b.Fatal(err)
	}
	sched := make(chan struct{})
	go func() { defer close(sched); svc.RunScheduler(ctx, 500*time.Millisecond) }()
	// Registered first, so it runs last (after the simulator stopped).
	b.Cleanup(func() { cancel(); <-sched; api.Close(); bus.Close(); st.Close() })
	progress("registering")
	p := register(b, svc, api)
	progress("starting the simulator")
	p.sim = p.startSim(b, addr)
	progress("ready")
	return &fanoutRig{fanoutParties: p, commits: cs}
}

// fanoutOrders returns the batch request for the shape's units: one
// activation order each, for the quarter hour an hour from now (the
// orders are acknowledged long before they start, so no execution or
// completion of an earlier iteration runs during a later one).
func (p *fanoutParties) fanoutOrders(n int) []byte {
	slot := time.Now().UTC().Truncate(15 * time.Minute).Add(time.Hour)
	var orders []map[string]any
	for _, f := range p.forShape(n) {
		for _, u := range f.units[:fanoutN/n] {
			orders = append(orders, map[string]any{"type": "activate", "product_id": p.product, "resource_id": u, "direction": "down",
				"setpoints": []map[string]any{{"start": slot, "end": slot.Add(15 * time.Minute), "quantity": map[string]any{"value": 1, "unit": "kW"}}}})
		}
	}
	body, _ := json.Marshal(map[string]any{"orders": orders})
	return body
}

func (r *fanoutRig) benchFlexhub(b *testing.B, n int) {
	var lat []time.Duration
	var creates, lasts []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		body := r.fanoutOrders(n)
		r.commits.expect(fanoutN)
		b.StartTimer()
		start := time.Now()
		req, _ := http.NewRequest("POST", r.api.URL+"/v1/activation-order-batches", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+r.dsoKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var batch app.OrderBatch
		err = json.NewDecoder(resp.Body).Decode(&batch)
		resp.Body.Close()
		created := time.Since(start)
		progress("created in %s", created)
		if resp.StatusCode != 201 || err != nil || len(batch.Orders) != fanoutN {
			b.Fatalf("POST /v1/activation-order-batches: %d, %v, %d orders", resp.StatusCode, err, len(batch.Orders))
		}
		ids := make([]string, len(batch.Orders))
		for j, o := range batch.Orders {
			ids[j] = o.ID
		}
		at := r.commits.wait(b, ids, false, 5*time.Minute)
		b.StopTimer()
		b.Logf("created in %s", created)
		var last time.Duration
		for _, t := range at {
			d := t.Sub(start)
			lat = append(lat, d)
			last = max(last, d)
		}
		creates, lasts = append(creates, created), append(lasts, last)
		// Every order answered (accepted, or rejected: the simulator
		// refuses what a unit cannot do) before the next iteration: the
		// answers are no part of the next fan-out.
		r.commits.wait(b, ids, true, 5*time.Minute)
		r.checkDelivered(b, batch.Orders[0].ID)
		b.StartTimer()
	}
	reportFanout(b, lat, lasts)
	b.ReportMetric(median(creates).Seconds(), "create-s")
}

// checkDelivered: the order's tracking has every step a fan-out makes,
// and the audit chain holds them.
func (r *fanoutRig) checkDelivered(b *testing.B, id string) {
	var o flexhub.ActivationOrder
	req, _ := http.NewRequest("GET", r.api.URL+"/v1/activation-orders/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+r.dsoKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		b.Fatal(err)
	}
	var steps []string
	for _, e := range o.Tracking {
		steps = append(steps, e.Status)
	}
	if !slices.Contains(steps, flexhub.OrderReceived) || !(slices.Contains(steps, flexhub.OrderAccepted) || slices.Contains(steps, flexhub.OrderRejected)) || steps[0] != flexhub.OrderCreated {
		b.Fatalf("order %s tracking %v", id, steps)
	}
}

// reportFanout reports the per-order figures.
func reportFanout(b *testing.B, lat, lasts []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))].Seconds() }
	b.ReportMetric(q(0.50), "p50-s")
	b.ReportMetric(q(0.99), "p99-s")
	b.ReportMetric(lat[len(lat)-1].Seconds(), "max-s")
	b.ReportMetric(median(lasts).Seconds(), "last-ack-s")
	b.ReportMetric(0, "ns/op")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// commitStore is the store flexhub runs on, noting when a transaction
// that recorded an order's `received` (or `accepted`/`rejected`)
// committed: the moment the acknowledgement is durable in flexhub. A
// waiter is woken by the commit that completes its count (no polling: on
// two cores a poller would take CPU from what is measured).
type commitStore struct {
	flexhub.Store
	mu       sync.Mutex
	received map[string]time.Time
	answered map[string]bool
	target   int
	recvDone chan struct{}
	ansDone  chan struct{}
}

// expect forgets earlier orders and waits for n new ones.
func (c *commitStore) expect(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received, c.answered, c.target = map[string]time.Time{}, map[string]bool{}, n
	c.recvDone, c.ansDone = make(chan struct{}), make(chan struct{})
}

func (c *commitStore) Update(ctx context.Context, fn func(flexhub.Tx) error) error {
	var rec, acc []string
	err := c.Store.Update(ctx, func(tx flexhub.Tx) error {
		rec, acc = rec[:0], acc[:0]
		return fn(noteTx{tx, &rec, &acc})
	})
	if err == nil && len(rec)+len(acc) > 0 {
		now := time.Now()
		c.mu.Lock()
		for _, id := range rec {
			if _, ok := c.received[id]; !ok && c.received != nil {
				c.received[id] = now
				if len(c.received) == c.target {
					close(c.recvDone)
				}
			}
		}
		for _, id := range acc {
			if !c.answered[id] && c.answered != nil {
				c.answered[id] = true
				if len(c.answered) == c.target {
					close(c.ansDone)
				}
			}
		}
		c.mu.Unlock()
	}
	return err
}

// wait returns when every order has its `received` (or, with answer,
// its `accepted` or `rejected`) committed, with the commit times.
func (c *commitStore) wait(b *testing.B, ids []string, answer bool, limit time.Duration) []time.Time {
	c.mu.Lock()
	done := c.recvDone
	if answer {
		done = c.ansDone
	}
	c.mu.Unlock()
	select {
	case <-done:
	case <-time.After(limit):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var at []time.Time
	missing := 0
	for _, id := range ids {
		t, ok := c.received[id]
		if answer {
			ok = c.answered[id]
		}
		if !ok {
			missing++
		}
		at = append(at, t)
	}
	if missing > 0 {
		what := "received"
		if answer {
			what = "accepted or rejected"
		}
		b.Fatalf("%d of %d orders not %s after %s", missing, len(ids), what, limit)
	}
	return at
}

// progress prints a line on stderr with FLEXHUB_FANOUT_LOG set.
func progress(format string, args ...any) {
	if os.Getenv("FLEXHUB_FANOUT_LOG") != "" {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
}

type noteTx struct {
	flexhub.Tx
	rec, acc *[]string
}

func (t noteTx) UpdateActivationOrder(ctx context.Context, o *flexhub.ActivationOrder) error {
	if err := t.Tx.UpdateActivationOrder(ctx, o); err != nil {
		return err
	}
	t.note(o)
	return nil
}

func (t noteTx) UpdateActivationOrders(ctx context.Context, steps []*flexhub.ActivationOrder) error {
	if err := t.Tx.UpdateActivationOrders(ctx, steps); err != nil {
		return err
	}
	for _, o := range steps {
		t.note(o)
	}
	return nil
}

// note notes the order's received and its answer (commitStore counts
// each order once).
func (t noteTx) note(o *flexhub.ActivationOrder) {
	for _, e := range o.Tracking {
		switch e.Status {
		case flexhub.OrderReceived:
			*t.rec = append(*t.rec, o.ID)
		case flexhub.OrderAccepted, flexhub.OrderRejected:
			*t.acc = append(*t.acc, o.ID)
		}
	}
}

// transportRig is the baseline: a broker of the same kind with the
// simulator connected as the same FSPs and a bare client in flexhub's
// place (publishing orders, listening to acknowledgements), no store.
type transportRig struct {
	*fanoutParties
	bus mqtt.Bus

	mu     sync.Mutex
	acks   map[string]time.Time
	target int
	done   chan struct{}
}

func newTransportRig(b *testing.B, broker string) *transportRig {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "register.db"), true)
	if err != nil {
		b.Fatal(err)
	}
	svc := app.New(st, nil)
	api := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
	r := &transportRig{}
	var addr string
	var prov mqtt.Provisioner
	switch broker {
	case "embedded":
		e, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: svc.MQTTAuthorizer(), SessionStore: sessionStore(b)})
		if err != nil {
			b.Fatal(err)
		}
		r.bus, addr, prov = e, e.Addr(), e
	case "mosquitto":
		m := startMosquitto(b)
		ext, p := m.connect(b, "baseline", svc.MQTTAuthorizer())
		r.bus, addr, prov = ext, m.addr, p
	}
	svc.SetMQTTProvisioner(prov)
	b.Cleanup(func() { api.Close(); r.bus.Close(); st.Close() })
	if err := r.bus.Subscribe(context.Background(), app.AcksFilter, 1, func(m mqtt.Message) {
		var rep sim.Report
		if json.Unmarshal(m.Payload, &rep) == nil && rep.Status == flexhub.OrderReceived {
			now := time.Now()
			r.mu.Lock()
			if _, ok := r.acks[rep.OrderID]; !ok && r.acks != nil {
				r.acks[rep.OrderID] = now
				if len(r.acks) == r.target {
					close(r.done)
				}
			}
			r.mu.Unlock()
		}
	}); err != nil {
		b.Fatal(err)
	}
	r.fanoutParties = register(b, svc, api)
	r.sim = r.startSim(b, addr)
	return r
}

// benchTransport publishes 10,000 orders as flexhub sends them (the
// same JSON, QoS 1, 32 publishes in flight) and times each `received`.
func (r *transportRig) benchTransport(b *testing.B, n int) {
	var lat, lasts []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		now := time.Now().UTC().Truncate(time.Microsecond)
		slot := now.Truncate(15 * time.Minute).Add(time.Hour)
		type msg struct {
			topic, id string
			payload   []byte
		}
		var msgs []msg
		for _, f := range r.forShape(n) {
			for _, u := range f.units[:fanoutN/n] {
				next := now
				o := &flexhub.ActivationOrder{ID: flexhub.NewID(), Type: flexhub.OrderActivate, SystemOperatorID: f.id, FSPID: f.id, ResourceID: u, ProductID: r.product,
					Direction: "down", Unit: "W", Status: flexhub.OrderCreated, CreatedAt: now, UpdatedAt: now, AckDeadline: now.Add(time.Minute), NextSend: &next, Version: 1,
					Setpoints: []flexhub.Setpoint{{Start: slot, End: slot.Add(15 * time.Minute), Quantity: 1000}},
					Tracking:  []flexhub.OrderEvent{{Status: flexhub.OrderCreated, At: now, By: f.id, Channel: "rest"}}}
				payload, _ := json.Marshal(o)
				msgs = append(msgs, msg{app.Topic(f.id, "activations"), o.ID, payload})
			}
		}
		r.mu.Lock()
		r.acks, r.target, r.done = map[string]time.Time{}, len(msgs), make(chan struct{})
		done := r.done
		r.mu.Unlock()
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for _, m := range msgs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := r.bus.Publish(context.Background(), m.topic, m.payload, 1, false); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		// Unacknowledged orders are sent again every 15 s, as flexhub
		// does (flexhub.OrderResend): a broker may drop a QoS 1 message
		// (mochi drops what exceeds 8,192 in flight to one client) and
		// only a re-send recovers it.
		limit := time.After(5 * time.Minute)
		resend := time.NewTicker(flexhub.OrderResend)
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-resend.C:
				r.mu.Lock()
				var again []msg
				for _, m := range msgs {
					if _, ok := r.acks[m.id]; !ok {
						again = append(again, m)
					}
				}
				r.mu.Unlock()
				for _, m := range again {
					r.bus.Publish(context.Background(), m.topic, m.payload, 1, false)
				}
			case <-limit:
				r.mu.Lock()
				b.Fatalf("%d of %d orders acknowledged", len(r.acks), len(msgs))
			}
		}
		resend.Stop()
		b.StopTimer()
		var last time.Duration
		r.mu.Lock()
		for _, m := range msgs {
			d := r.acks[m.id].Sub(start)
			lat = append(lat, d)
			last = max(last, d)
		}
		r.mu.Unlock()
		lasts = append(lasts, last)
		b.StartTimer()
	}
	reportFanout(b, lat, lasts)
}

// mosquittoInstance is a mosquitto started for the benchmark
// (mqtt/mosquittotest: dynamic security, persistence).
type mosquittoInstance struct {
	addr, adminPass string
}

func startMosquitto(b *testing.B) *mosquittoInstance {
	m := mosquittotest.Start(b)
	return &mosquittoInstance{addr: m.Addr, adminPass: m.AdminPass}
}

// connect connects flexhub's client as the dynsec admin and sets up its
// server role.
func (m *mosquittoInstance) connect(b *testing.B, clientID string, auth mqtt.Authorizer) (*mqtt.External, *mqtt.DynsecProvisioner) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ext, err := mqtt.ConnectExternal(ctx, mqtt.ExternalConfig{URL: "mqtt://" + m.addr, Username: "flexhub", Password: m.adminPass, ClientID: clientID, Auth: auth})
	if err != nil {
		b.Fatal(err)
	}
	prov := ext.Dynsec()
	if err := prov.Setup(ctx); err != nil {
		b.Fatal(err)
	}
	return ext, prov
}

// openFanoutPostgres opens a store in a fresh schema of
// FLEXHUB_TEST_POSTGRES, dropped afterwards.
func openFanoutPostgres(b *testing.B) flexhub.Store { return pgtest.Open(b, "fh_fanout") }

func waitForB(b *testing.B, what string, d time.Duration, ok func() bool) {
	b.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			b.Fatalf("%s: not after %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
