package mqtt_test

// The same cases run against the embedded broker and against a real
// mosquitto (with the Dynamic Security plugin) that the test starts from
// FLEXHUB_TEST_MOSQUITTO. flexhub's side is a real app.Service on SQLite
// with real parties, keys and resources; the parties are real MQTT 5
// clients (paho) over TCP.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt"
	"github.com/flexhub/flexhub/mqtt/mosquittotest"
	"github.com/flexhub/flexhub/sqlite"
)

// rig is one broker with flexhub on it.
type rig struct {
	t        *testing.T
	name     string
	external bool
	addr     string // host:port parties connect to
	svc      *app.Service
	admin    context.Context // the administrator as actor

	mu  sync.Mutex
	bus mqtt.Bus
	// restart stops the broker and starts it again on the same address
	// with the same persistent state.
	restart func()

	// flexhub's view: what reached its meter subscription.
	meter chan mqtt.Message
}

func (r *rig) Bus() mqtt.Bus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bus
}

// party is a registered party with a key (provisioned on the broker when
// the broker is external).
type party struct {
	id, token, cred string
	resource        string // a resource it operates
}

func newService(t *testing.T) (*app.Service, context.Context) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "flexhub.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := app.New(store, nil)
	ic, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, ic.Token)
	if err != nil {
		t.Fatal(err)
	}
	return svc, app.WithActor(ctx, admin)
}

var eicSeq = 0

// newParty registers an FSP with a key and one resource it operates.
func (r *rig) newParty(name string) party {
	r.t.Helper()
	eicSeq++
	c, err := r.svc.CreateParty(r.admin, flexhub.PartySpec{EIC: flexhub.EICFromStem(fmt.Sprintf("10XMQTT%s%d", strings.ToUpper(name), eicSeq)), Name: name,
		Roles: []flexhub.Role{flexhub.RoleFSP}}, "")
	if err != nil {
		r.t.Fatal(err)
	}
	p := party{id: c.Object.ID}
	key, err := r.svc.IssueCredential(r.admin, p.id, "mqtt test")
	if err != nil {
		r.t.Fatal(err)
	}
	p.token, p.cred = key.Token, key.ID
	now := time.Now().UTC().Truncate(time.Microsecond)
	res := &flexhub.Resource{ID: flexhub.NewID(), FSPID: p.id, Status: flexhub.ResourceActive, ValidFrom: now, CreatedAt: now,
		ResourceSpec: flexhub.ResourceSpec{Name: name + " pool", Kind: flexhub.ResourceGroup, Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(100)}}}
	if err := r.svc.Store().Update(context.Background(), func(tx flexhub.Tx) error { return tx.CreateResource(context.Background(), res) }); err != nil {
		r.t.Fatal(err)
	}
	p.resource = res.ID
	return p
}

// subscribeFlexhub makes flexhub listen to meter data, as serve does.
func (r *rig) subscribeFlexhub() {
	r.meter = make(chan mqtt.Message, 100)
	if err := r.Bus().Subscribe(context.Background(), mqtt.MeterFilter, 1, func(m mqtt.Message) { r.meter <- m }); err != nil {
		r.t.Fatal(err)
	}
}

func embeddedRig(t *testing.T) *rig {
	svc, admin := newService(t)
	r := &rig{t: t, name: "embedded", svc: svc, admin: admin}
	sessions := filepath.Join(t.TempDir(), "mqtt-sessions.db")
	start := func(addr string) *mqtt.Embedded {
		e, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: addr, Auth: svc.MQTTAuthorizer(), SessionStore: sessions, Log: testLog()})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := start("127.0.0.1:0")
	r.addr, r.bus = e.Addr(), e
	svc.SetMQTTProvisioner(e)
	t.Cleanup(func() { r.Bus().Close() })
	r.restart = func() {
		r.Bus().Close()
		e := start(r.addr)
		svc.SetMQTTProvisioner(e)
		r.mu.Lock()
		r.bus = e
		r.mu.Unlock()
		r.subscribeFlexhub()
	}
	r.subscribeFlexhub()
	return r
}

// mosquittoRig starts mosquitto from FLEXHUB_TEST_MOSQUITTO with the
// Dynamic Security plugin and persistence in a temp dir, and connects
// flexhub to it as the dynsec admin.
func mosquittoRig(t *testing.T) *rig {
	broker := mosquittotest.Start(t)
	addr, adminPass := broker.Addr, broker.AdminPass
	stop, start := broker.Stop, broker.Start

	svc, admin := newService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ext, err := mqtt.ConnectExternal(ctx, mqtt.ExternalConfig{URL: "mqtt://" + addr, Username: "flexhub", Password: adminPass, Auth: svc.MQTTAuthorizer()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ext.Close() })
	prov := ext.Dynsec()
	if err := prov.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	svc.SetMQTTProvisioner(prov)
	r := &rig{t: t, name: "mosquitto", external: true, addr: addr, svc: svc, admin: admin, bus: ext}
	r.restart = func() {
		stop()
		start()
		// flexhub's client reconnects by itself (autopaho) and subscribes again.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for ext.Publish(ctx, "flexhub/v1/ping", nil, 1, false) != nil {
			if ctx.Err() != nil {
				t.Fatal("flexhub did not reconnect to mosquitto")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	r.subscribeFlexhub()
	return r
}

// client is a party's MQTT 5 connection.
type client struct {
	t   *testing.T
	c   *paho.Client
	got chan *paho.Publish
}

type connOpts struct {
	clientID   string
	persistent bool
}

// dial connects; it returns the CONNACK reason code and the client (nil
// when refused).
func (r *rig) dial(user, pass string, o connOpts) (*client, byte) {
	r.t.Helper()
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	cl := &client{t: r.t, got: make(chan *paho.Publish, 100)}
	if o.clientID == "" {
		o.clientID = "test-" + rand.Text()[:10]
	}
	cl.c = paho.NewClient(paho.ClientConfig{ClientID: o.clientID, Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			cl.got <- pr.Packet
			return true, nil
		}}})
	cp := &paho.Connect{KeepAlive: 30, ClientID: o.clientID, CleanStart: !o.persistent,
		Username: user, UsernameFlag: true, Password: []byte(pass), PasswordFlag: true}
	if o.persistent {
		exp := uint32(3600)
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &exp}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := cl.c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		if ca == nil {
			// mosquitto may close the connection without a CONNACK.
			if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
				return nil, 0xff
			}
			r.t.Fatalf("connect: %v", err)
		}
		return nil, ca.ReasonCode
	}
	r.t.Cleanup(func() { cl.close() })
	return cl, ca.ReasonCode
}

func (r *rig) connect(user, pass string, o connOpts) *client {
	r.t.Helper()
	cl, code := r.dial(user, pass, o)
	if cl == nil {
		r.t.Fatalf("%s: connect as %s refused with reason code 0x%02x", r.name, user, code)
	}
	return cl
}

func (c *client) close() { c.c.Disconnect(&paho.Disconnect{ReasonCode: 0}) }

func (c *client) subscribe(filter string) byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := c.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil {
		c.t.Fatalf("subscribe %s: %v", filter, err)
	}
	return sa.Reasons[0]
}

func (c *client) publish(topic string, payload []byte) byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr, err := c.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	if pr == nil {
		c.t.Fatalf("publish %s: %v", topic, err)
	}
	return pr.ReasonCode
}

// await returns the next message on topic, failing after d.
func (c *client) await(topic string, d time.Duration) *paho.Publish {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-c.got:
			if p.Topic == topic {
				return p
			}
		case <-deadline:
			c.t.Fatalf("no message on %s within %s", topic, d)
			return nil
		}
	}
}

// quiet checks that nothing arrives on topic for d.
func (c *client) quiet(topic string, d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-c.got:
			if p.Topic == topic {
				c.t.Fatalf("unexpected message on %s: %s", topic, p.Payload)
			}
		case <-deadline:
			return
		}
	}
}

func TestEmbedded(t *testing.T) { runCases(t, embeddedRig) }

func TestMosquitto(t *testing.T) { runCases(t, mosquittoRig) }

func runCases(t *testing.T, newRig func(*testing.T) *rig) {
	t.Run("connect", func(t *testing.T) {
		r := newRig(t)
		a, b := r.newParty("alpha"), r.newParty("beta")
		r.connect(a.id, a.token, connOpts{})
		r.connect(a.cred, a.token, connOpts{}) // the key's credential id works as user name too
		_, code := r.dial(a.id, b.token, connOpts{})
		t.Logf("%s: another party's id: CONNACK 0x%02x", r.name, code)
		if code < 0x80 {
			t.Errorf("a valid key used as another party was accepted (0x%02x)", code)
		} else if !r.external && code != mqtt.CodeNotAuthorized {
			t.Errorf("another party's id: reason 0x%02x, want 0x87 Not authorized", code)
		}
		bad, _, _ := app.NewToken()
		for _, pass := range []string{bad, "not a key", a.token + "x"} {
			_, code := r.dial(a.id, pass, connOpts{})
			t.Logf("%s: wrong key: CONNACK 0x%02x", r.name, code)
			if code < 0x80 {
				t.Errorf("wrong key %q accepted", pass)
			} else if !r.external && code != mqtt.CodeBadCredentials {
				t.Errorf("wrong key: reason 0x%02x, want 0x86 Bad user name or password", code)
			}
		}
	})

	t.Run("subscribe", func(t *testing.T) {
		r := newRig(t)
		a, b := r.newParty("alpha"), r.newParty("beta")
		ca := r.connect(a.id, a.token, connOpts{})
		for _, f := range []string{mqtt.Topic(a.id, mqtt.Activations), mqtt.Topic(a.id, mqtt.Notifications), mqtt.Topic(a.id, mqtt.Monitoring),
			mqtt.Topic(a.id, mqtt.Errors), mqtt.Root + a.id + "/+", mqtt.Root + a.id + "/#"} {
			if code := ca.subscribe(f); code >= 0x80 {
				t.Errorf("own %s refused: 0x%02x", f, code)
			}
		}
		for _, f := range []string{mqtt.Topic(b.id, mqtt.Activations), mqtt.Root + "+/activations", "flexhub/#", "#", mqtt.Root + b.id + "/#",
			mqtt.Topic(a.id, mqtt.Acks), mqtt.MeterTopic(a.id, a.resource)} {
			if code := ca.subscribe(f); code != mqtt.CodeNotAuthorized {
				t.Errorf("subscribe %s: reason 0x%02x, want 0x87 Not authorized", f, code)
			}
		}
	})

	t.Run("publish meter", func(t *testing.T) {
		r := newRig(t)
		a, b := r.newParty("alpha"), r.newParty("beta")
		ca := r.connect(a.id, a.token, connOpts{})
		if code := ca.subscribe(mqtt.Topic(a.id, mqtt.Errors)); code >= 0x80 {
			t.Fatalf("subscribe errors: 0x%02x", code)
		}
		payload := []byte(`{"readings":[]}`)
		if code := ca.publish(mqtt.MeterTopic(a.id, a.resource), payload); code >= 0x80 {
			t.Fatalf("meter for own resource refused: 0x%02x", code)
		}
		select {
		case m := <-r.meter:
			if m.Topic != mqtt.MeterTopic(a.id, a.resource) || m.Party != a.id || !bytes.Equal(m.Payload, payload) {
				t.Errorf("flexhub got %+v", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("flexhub did not receive the meter message")
		}
		if code := ca.publish(mqtt.Topic(a.id, mqtt.Acks), []byte(`{}`)); code >= 0x80 {
			t.Errorf("own acks topic refused: 0x%02x", code)
		}

		// Someone else's resource, on its own topic: refused, explained.
		code := ca.publish(mqtt.MeterTopic(a.id, b.resource), payload)
		t.Logf("%s: meter for another's resource: PUBACK 0x%02x", r.name, code)
		if !r.external && code != mqtt.CodeNotAuthorized {
			t.Errorf("meter for another's resource: reason 0x%02x, want 0x87", code)
		}
		e := ca.await(mqtt.Topic(a.id, mqtt.Errors), 5*time.Second)
		var ref mqtt.Refusal
		if err := json.Unmarshal(e.Payload, &ref); err != nil || ref.Topic != mqtt.MeterTopic(a.id, b.resource) || ref.Type != mqtt.RefusalType || !strings.Contains(ref.Detail, b.resource) {
			t.Errorf("errors topic: %s (%v)", e.Payload, err)
		}
		select {
		case m := <-r.meter:
			t.Errorf("flexhub handled a refused message: %s", m.Topic)
		case <-time.After(300 * time.Millisecond):
		}
		// Another party's topic: the broker refuses.
		for _, topic := range []string{mqtt.MeterTopic(b.id, b.resource), mqtt.Topic(b.id, mqtt.Acks), mqtt.Topic(a.id, mqtt.Activations), "elsewhere"} {
			if code := ca.publish(topic, payload); code != mqtt.CodeNotAuthorized {
				t.Errorf("publish %s: reason 0x%02x, want 0x87", topic, code)
			}
		}
	})

	t.Run("server publish reaches party", func(t *testing.T) {
		r := newRig(t)
		a, b := r.newParty("alpha"), r.newParty("beta")
		ca := r.connect(a.id, a.token, connOpts{})
		cb := r.connect(b.id, b.token, connOpts{})
		ca.subscribe(mqtt.Topic(a.id, mqtt.Activations))
		cb.subscribe(mqtt.Root + b.id + "/#")
		order := []byte(`{"id":"order-1"}`)
		if err := r.Bus().Publish(context.Background(), mqtt.Topic(a.id, mqtt.Activations), order, 1, false); err != nil {
			t.Fatal(err)
		}
		m := ca.await(mqtt.Topic(a.id, mqtt.Activations), 5*time.Second)
		if m.QoS != 1 || !bytes.Equal(m.Payload, order) {
			t.Errorf("got qos %d %s", m.QoS, m.Payload)
		}
		cb.quiet(mqtt.Topic(a.id, mqtt.Activations), 300*time.Millisecond)
	})

	t.Run("revoked key", func(t *testing.T) {
		r := newRig(t)
		a := r.newParty("alpha")
		k2, err := r.svc.IssueCredential(r.admin, a.id, "second")
		if err != nil {
			t.Fatal(err)
		}
		live := []*client{r.connect(a.id, k2.Token, connOpts{}), r.connect(k2.ID, k2.Token, connOpts{})}
		if _, err := r.svc.RevokeCredential(r.admin, k2.ID); err != nil {
			t.Fatal(err)
		}
		for i, c := range live { // open connections of the key are dropped
			select {
			case <-c.c.Done():
			case <-time.After(5 * time.Second):
				t.Errorf("connection %d with the revoked key still open", i)
			}
		}
		for _, user := range []string{a.id, k2.ID} {
			if _, code := r.dial(user, k2.Token, connOpts{}); code < 0x80 {
				t.Errorf("revoked key still connects as %s", user)
			}
		}
		r.connect(a.cred, a.token, connOpts{}) // the party's other key still works
		if !r.external {
			r.connect(a.id, a.token, connOpts{})
		}
		// Rotation: the old key stops, the new one works.
		rot, err := r.svc.RotateCredential(r.admin, a.cred)
		if err != nil {
			t.Fatal(err)
		}
		if _, code := r.dial(a.cred, a.token, connOpts{}); code < 0x80 {
			t.Error("rotated-away key still connects")
		}
		r.connect(a.id, rot.Token, connOpts{})
	})

	t.Run("persistent session survives broker restart", func(t *testing.T) {
		r := newRig(t)
		a := r.newParty("alpha")
		o := connOpts{clientID: "fsp-" + a.id[:8], persistent: true}
		ca := r.connect(a.id, a.token, o)
		if code := ca.subscribe(mqtt.Topic(a.id, mqtt.Activations)); code >= 0x80 {
			t.Fatalf("subscribe: 0x%02x", code)
		}
		ca.close()
		order := []byte(`{"id":"order-while-away"}`)
		if err := r.Bus().Publish(context.Background(), mqtt.Topic(a.id, mqtt.Activations), order, 1, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // mosquitto autosaves every second
		r.restart()
		ca = r.connect(a.id, a.token, o)
		m := ca.await(mqtt.Topic(a.id, mqtt.Activations), 10*time.Second)
		if !bytes.Equal(m.Payload, order) {
			t.Errorf("got %s", m.Payload)
		}
		// flexhub's own subscriptions are back too.
		if code := ca.publish(mqtt.MeterTopic(a.id, a.resource), []byte(`{"readings":[]}`)); code >= 0x80 {
			t.Fatalf("meter after restart: 0x%02x", code)
		}
		select {
		case <-r.meter:
		case <-time.After(10 * time.Second):
			t.Fatal("flexhub did not receive meter data after the broker restarted")
		}
		// Another party cannot take the session over by its client id:
		// the embedded broker refuses, mosquitto gives it a fresh session.
		b := r.newParty("beta")
		ca.close()
		time.Sleep(200 * time.Millisecond)
		if err := r.Bus().Publish(context.Background(), mqtt.Topic(a.id, mqtt.Activations), []byte(`{"id":"second"}`), 1, false); err != nil {
			t.Fatal(err)
		}
		cb, code := r.dial(b.id, b.token, o)
		switch {
		case cb == nil && code == mqtt.CodeNotAuthorized:
		case cb != nil && r.external:
			cb.quiet(mqtt.Topic(a.id, mqtt.Activations), time.Second)
		default:
			t.Errorf("another party connecting with the session's client id: 0x%02x", code)
		}
	})
}

// testLog logs to stderr with FLEXHUB_TEST_MQTT_LOG=1.
func testLog() *slog.Logger {
	if os.Getenv("FLEXHUB_TEST_MQTT_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
