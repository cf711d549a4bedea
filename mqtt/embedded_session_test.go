package mqtt_test

// The embedded broker under load and faults, with real components only:
// the broker with its session file, an app.Service on SQLite, paho
// clients over TCP. A second SQLite connection holding the write lock
// (BEGIN IMMEDIATE) is what keeps flexhub's commit from happening.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt"
	"github.com/flexhub/flexhub/sqlite"
)

// counter is an FSP's connection that records every distinct payload it
// receives on one topic.
type counter struct {
	c    *paho.Client
	mu   sync.Mutex
	seen map[string]int
}

func (n *counter) distinct() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.seen)
}

// dialCounter connects with a persistent session, a Receive Maximum of
// recvMax and a handler that takes delay per message (the PUBACK follows
// the handler), and with subscribe subscribes to topic at QoS 1.
func dialCounter(t *testing.T, addr string, p party, clientID, topic string, recvMax uint16, delay time.Duration, subscribe bool) *counter {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := &counter{seen: map[string]int{}}
	n.c = paho.NewClient(paho.ClientConfig{ClientID: clientID, Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if pr.Packet.Topic == topic {
				n.mu.Lock()
				n.seen[string(pr.Packet.Payload)]++
				n.mu.Unlock()
			}
			time.Sleep(delay)
			return true, nil
		}}})
	exp := uint32(3600)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := n.c.Connect(ctx, &paho.Connect{KeepAlive: 30, ClientID: clientID, Username: p.id, UsernameFlag: true, Password: []byte(p.token), PasswordFlag: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &exp, ReceiveMaximum: &recvMax}})
	if err != nil {
		t.Fatalf("connect: %v (%v)", err, ca)
	}
	if subscribe {
		sa, err := n.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}})
		if err != nil || sa.Reasons[0] != 1 {
			t.Fatalf("subscribe %s: %v %v", topic, err, sa)
		}
	}
	t.Cleanup(func() { n.c.Disconnect(&paho.Disconnect{}) })
	return n
}

func awaitDistinct(t *testing.T, n *counter, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for n.distinct() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived within %s", n.distinct(), want, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The broker keeps at most 8,192 QoS 1 messages in flight to one session
// and drops what comes beyond. flexhub's own publishes wait for room
// instead: 12,000 orders to one FSP whose client takes them slowly (half
// a millisecond per message, PUBACK after each; Receive Maximum 65,535,
// which the broker caps at its limit) all arrive, with nothing re-sent
// (the test publishes each once).
func TestEmbeddedFullSessionWaits(t *testing.T) {
	r := embeddedRig(t)
	p := r.newParty("slow")
	topic := mqtt.Topic(p.id, mqtt.Activations)
	n := dialCounter(t, r.addr, p, "slow-"+rand.Text()[:8], topic, 65535, 100*time.Microsecond, true)
	publishAll(t, r, topic, 12_000)
	awaitDistinct(t, n, 12_000, 2*time.Minute)
}

// A client with a small Receive Maximum (64) gets every one of 2,000
// orders published to it at once, none twice.
func TestEmbeddedSmallReceiveMaximum(t *testing.T) {
	r := embeddedRig(t)
	p := r.newParty("small")
	topic := mqtt.Topic(p.id, mqtt.Activations)
	n := dialCounter(t, r.addr, p, "small-"+rand.Text()[:8], topic, 64, 0, true)
	publishAll(t, r, topic, 2000)
	awaitDistinct(t, n, 2000, time.Minute)
	time.Sleep(200 * time.Millisecond)
	n.mu.Lock()
	defer n.mu.Unlock()
	for m, k := range n.seen {
		if k != 1 {
			t.Fatalf("message %s arrived %d times", m, k)
		}
	}
}

func publishAll(t *testing.T, r *rig, topic string, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range count {
		if err := r.Bus().Publish(ctx, topic, []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// A session whose client is away fills up: the publish beyond the limit
// is refused at once with ErrSessionFull (it does not hold up flexhub's
// publishing, and is not dropped silently), and everything taken before
// it is kept in the session file across a restart of the broker and
// delivered when the client comes back.
func TestEmbeddedAwaySessionFull(t *testing.T) {
	r := embeddedRig(t)
	p := r.newParty("away")
	topic := mqtt.Topic(p.id, mqtt.Activations)
	id := "away-" + rand.Text()[:8]
	n := dialCounter(t, r.addr, p, id, topic, 1000, 0, true)
	if err := n.c.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the broker sees the disconnection

	const limit = 8192
	for i := range limit {
		if err := r.Bus().Publish(context.Background(), topic, []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// Shorter than the broker's wait for a connected session: a full
	// session that is away must not be waited for.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.Bus().Publish(ctx, topic, []byte("one too many"), 1, false)
	if !errors.Is(err, mqtt.ErrSessionFull) {
		t.Fatalf("publish beyond the limit to a session that is away: %v, want ErrSessionFull", err)
	}

	r.restart()
	// The session (and its subscription) is still there; subscribing
	// again is not needed, nor possible while its 8,192 messages hold
	// every low packet id (mochi answers 0x91).
	back := dialCounter(t, r.addr, p, id, topic, 1000, 0, false)
	awaitDistinct(t, back, limit, time.Minute)
	time.Sleep(200 * time.Millisecond)
	back.mu.Lock()
	defer back.mu.Unlock()
	if _, ok := back.seen["one too many"]; ok || len(back.seen) != limit {
		t.Fatalf("after the restart %d distinct messages arrived (refused one among them: %v), want the %d taken", len(back.seen), ok, limit)
	}
}

// holdRig is flexhub as serve runs it on the embedded broker (ServeMQTT
// with its held acknowledgements) on a SQLite file that the test can
// lock from a second connection.
type holdRig struct {
	*rig
	path  string
	store flexhub.Store
}

func newHoldRig(t *testing.T) *holdRig {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flexhub.db")
	store, err := sqlite.Open(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := app.New(store, testLog())
	ic, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, ic.Token)
	if err != nil {
		t.Fatal(err)
	}
	e, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: svc.MQTTAuthorizer(), SessionStore: filepath.Join(t.TempDir(), "mqtt-sessions.db"), Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	svc.SetMQTTProvisioner(e)
	svc.SetPublisher(e)
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := svc.ServeMQTT(sctx, mqtt.Handlers{Bus: e}); err != nil {
		t.Fatal(err)
	}
	return &holdRig{rig: &rig{t: t, name: "embedded", addr: e.Addr(), svc: svc, admin: app.WithActor(ctx, admin), bus: e}, path: path, store: store}
}

// lockWrites takes SQLite's write lock on another connection, as a long
// writer would: flexhub's next write transaction waits (up to its 10 s
// busy timeout). The returned func releases it.
func (h *holdRig) lockWrites() (release func()) {
	h.t.Helper()
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		h.t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		h.t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				h.t.Error(err)
			}
			conn.Close()
			db.Close()
		})
	}
	h.t.Cleanup(release)
	return release
}

// publishAsync publishes at QoS 1 and reports the PUBACK's reason code.
func publishAsync(c *client, topic string, payload []byte) <-chan byte {
	acked := make(chan byte, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pr, err := c.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
		if pr == nil {
			c.t.Errorf("publish %s: %v", topic, err)
			close(acked)
			return
		}
		acked <- pr.ReasonCode
	}()
	return acked
}

// An FSP's QoS 1 meter message and its report on an order get their
// PUBACK only once flexhub has committed them: while the commit cannot
// happen (the store's write lock is held elsewhere) no PUBACK arrives and
// nothing is stored; once it can, the PUBACK arrives and what it
// acknowledges is in the store.
func TestEmbeddedPubackAfterCommit(t *testing.T) {
	h := newHoldRig(t)
	ctx := context.Background()
	p := h.newParty("hold")
	c := h.connect(p.id, p.token, connOpts{})
	const blocked = 1500 * time.Millisecond

	t.Run("meter", func(t *testing.T) {
		start := time.Now().UTC().Truncate(10 * time.Second).Add(-time.Minute)
		payload := fmt.Appendf(nil, `{"readings":[{"resource_id":"%s","quantity":"active_power","flow":"export","start":"%s","resolution":"PT10S","value":"42.125","unit":"kW"}]}`,
			p.resource, start.Format(time.RFC3339))
		key := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: p.resource, Quantity: flexhub.QuantityActivePower, Flow: "export", Resolution: 10 * time.Second}
		stored := func() []flexhub.MeterRecord {
			var recs []flexhub.MeterRecord
			if err := h.store.View(ctx, func(tx flexhub.Tx) error {
				var err error
				recs, err = tx.MeterReadings(ctx, key, start, start.Add(10*time.Second))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return recs
		}

		release := h.lockWrites()
		acked := publishAsync(c, mqtt.MeterTopic(p.id, p.resource), payload)
		select {
		case code := <-acked:
			t.Fatalf("PUBACK (0x%02x) while flexhub could not commit", code)
		case <-time.After(blocked):
		}
		if recs := stored(); len(recs) != 0 {
			t.Fatalf("stored while the write lock was held elsewhere: %+v", recs)
		}
		release()
		select {
		case code := <-acked:
			if code != 0 {
				t.Fatalf("PUBACK reason 0x%02x, want success", code)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no PUBACK after the store was free again")
		}
		recs := stored()
		if len(recs) != 1 || recs[0].Value != 42_125_000 || recs[0].Version != 1 {
			t.Fatalf("at the PUBACK the store holds %+v, want one reading of 42.125 kW (42125000 mW), version 1", recs)
		}
	})

	t.Run("order report", func(t *testing.T) {
		order := h.order(p)
		status := func() string {
			o, err := h.svc.GetActivationOrder(h.admin, order)
			if err != nil {
				t.Fatal(err)
			}
			return o.Status
		}
		before := status()
		release := h.lockWrites()
		rep, _ := json.Marshal(map[string]string{"order_id": order, "status": "received"})
		acked := publishAsync(c, mqtt.Topic(p.id, mqtt.Acks), rep)
		select {
		case code := <-acked:
			t.Fatalf("PUBACK (0x%02x) while flexhub could not commit", code)
		case <-time.After(blocked):
		}
		if s := status(); s != before {
			t.Fatalf("order status %s while the write lock was held elsewhere, want %s", s, before)
		}
		release()
		select {
		case code := <-acked:
			if code != 0 {
				t.Fatalf("PUBACK reason 0x%02x, want success", code)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no PUBACK after the store was free again")
		}
		if s := status(); s != flexhub.OrderReceived {
			t.Fatalf("at the PUBACK the order is %s, want %s", s, flexhub.OrderReceived)
		}
	})
}

// order makes an activation order for p's resource: a DSO, an automatic
// product, the resource prequalified for it, one quarter hour an hour
// ahead.
func (h *holdRig) order(p party) string {
	t := h.t
	ctx := context.Background()
	eicSeq++
	c, err := h.svc.CreateParty(h.admin, flexhub.PartySpec{EIC: flexhub.EICFromStem(fmt.Sprintf("10XHOLDDSO%d", eicSeq)), Name: "hold DSO", Roles: []flexhub.Role{flexhub.RoleDSO}}, "")
	if err != nil {
		t.Fatal(err)
	}
	dso := c.Object.ID
	key, err := h.svc.IssueCredential(h.admin, dso, "hold test")
	if err != nil {
		t.Fatal(err)
	}
	dsoParty, err := h.svc.Authenticate(ctx, key.Token)
	if err != nil {
		t.Fatal(err)
	}
	dctx := app.WithActor(ctx, dsoParty)
	tol := 10
	prod, err := h.svc.CreateProduct(dctx, flexhub.ProductSpec{Name: "hold automatic", Service: "congestion_management", Direction: "both", PowerType: "active",
		MinBidSize: flexhub.KW(1), TimeResolution: "PT15M", FullActivationTime: "PT1M", ActivationMode: "automatic", AckDeadline: "PT1M",
		DeliveryTolerance: &tol, Remuneration: []string{"energy"}, BaselineMethod: "meter_before"}, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	err = h.store.Update(ctx, func(tx flexhub.Tx) error {
		res, err := tx.Resource(ctx, p.resource)
		if err != nil {
			return err
		}
		res.DSOID = dso
		if err := tx.UpdateResource(ctx, res); err != nil {
			return err
		}
		return tx.CreatePrequalification(ctx, &flexhub.Prequalification{ID: flexhub.NewID(), ResourceID: p.resource, ProductID: prod.Object.ID,
			FSPID: p.id, SystemOperatorID: dso, Status: flexhub.PrequalApproved, CreatedAt: now, UpdatedAt: now,
			Decision: &flexhub.PrequalDecision{Outcome: flexhub.PrequalApproved, ValidFrom: now.Add(-time.Hour), DecidedBy: dso, DecidedAt: now}})
	})
	if err != nil {
		t.Fatal(err)
	}
	slot := now.Truncate(15 * time.Minute).Add(time.Hour)
	o, err := h.svc.CreateActivationOrder(dctx, flexhub.ActivationOrderSpec{Type: "activate", ResourceID: p.resource, ProductID: prod.Object.ID, Direction: "up",
		Setpoints: []flexhub.SetpointSpec{{Start: slot, End: slot.Add(15 * time.Minute), Quantity: flexhub.KW(1)}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	return o.Object.ID
}
