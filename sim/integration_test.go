package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/sim"
	"github.com/flexhub/flexhub/sqlite"
)

var sharedData = filepath.Join("..", "..", "shared", "data")

// broker is an MQTT 5 broker in the test (mochi-mqtt, every client
// allowed, each CONNECT recorded) with an inline client playing flexhub's
// side: it publishes orders and records what the FSPs publish.
type broker struct {
	t    *testing.T
	srv  *mqtt.Server
	addr string
	hook *recordHook

	mu   sync.Mutex
	acks map[string][]sim.Report // by order id, in arrival order
	// meter holds every reading per resource, by interval start.
	meter map[string]map[string]float64 // resource → start → net W
	msgs  map[string][]int              // resource → readings per message
	bad   []string
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hook := &recordHook{}
	if err := srv.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { srv.Close() })
	b := &broker{t: t, srv: srv, addr: tcp.Address(), hook: hook, acks: map[string][]sim.Report{}, meter: map[string]map[string]float64{}, msgs: map[string][]int{}}
	if err := srv.Subscribe("flexhub/v1/parties/+/activations/acks", 1, b.onAck); err != nil {
		t.Fatal(err)
	}
	if err := srv.Subscribe("flexhub/v1/parties/+/meter/+", 2, b.onMeter); err != nil {
		t.Fatal(err)
	}
	return b
}

// recordHook lets every client in and records how each connected.
type recordHook struct {
	mqtt.HookBase
	mu       sync.Mutex
	connects []packets.Packet
}

func (h *recordHook) ID() string { return "record-all" }
func (h *recordHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (h *recordHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	h.mu.Lock()
	h.connects = append(h.connects, pk)
	h.mu.Unlock()
	return true
}
func (h *recordHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (b *broker) onAck(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
	var r sim.Report
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := json.Unmarshal(pk.Payload, &r); err != nil || r.OrderID == "" {
		b.bad = append(b.bad, "ack: "+string(pk.Payload))
		return
	}
	b.acks[r.OrderID] = append(b.acks[r.OrderID], r)
}

func (b *broker) onMeter(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
	parts := strings.Split(pk.TopicName, "/")
	res := parts[len(parts)-1]
	var m sim.MeterMessage
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := json.Unmarshal(pk.Payload, &m); err != nil || len(m.Readings) == 0 || len(m.Readings)%2 != 0 {
		b.bad = append(b.bad, "meter: "+string(pk.Payload))
		return
	}
	if b.meter[res] == nil {
		b.meter[res] = map[string]float64{}
	}
	b.msgs[res] = append(b.msgs[res], len(m.Readings))
	for _, r := range m.Readings {
		start, err := time.Parse(time.RFC3339, r.Start)
		if r.ResourceID != res || r.Quantity != "active_power" || r.Unit != "kW" || r.Resolution != "PT1S" || r.Value < 0 ||
			err != nil || start.Location() != time.UTC || start.Nanosecond() != 0 || (r.Flow != "import" && r.Flow != "export") {
			b.bad = append(b.bad, "reading: "+string(pk.Payload))
			return
		}
		v := r.Value * 1000
		if r.Flow == "import" {
			v = -v
		}
		b.meter[res][r.Start] += v
	}
}

func (b *broker) publish(topic string, v any) {
	b.t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.srv.Publish(topic, raw, false, 1); err != nil {
		b.t.Fatal(err)
	}
}

func (b *broker) statuses(order string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, r := range b.acks[order] {
		out = append(out, r.Status)
	}
	return out
}

func (b *broker) net(res string, at time.Time) (float64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.meter[res][at.UTC().Format(time.RFC3339)]
	return v, ok
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSimulatorOverMQTT runs two simulated FSPs of the demo register (a
// real app.Service on SQLite behind the real REST API) against an MQTT
// broker: orders in, reports and meter data out, a resent order, an
// order the FSP cannot run, the server's error topic, a connection
// dropped mid-activation with the readings of the outage sent after it
// and an order sent during it delivered on reconnection, and a clean stop.
func TestSimulatorOverMQTT(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 20 s in real time")
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "flexhub.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := app.New(store, nil)
	if _, err := svc.Bootstrap(ctx, ""); err != nil {
		t.Fatal(err)
	}
	reg, err := demo.Load(ctx, svc, sharedData, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(fhttp.NewServer(svc, nil, "test"))
	t.Cleanup(api.Close)
	var batteryKey, heatKey string
	for _, k := range reg.Keys {
		switch k.Role {
		case "FSP (batteries)":
			batteryKey = k.Token
		case "FSP (heat pumps)":
			heatKey = k.Token
		}
	}
	b := newBroker(t)
	prof, err := sim.LoadProfiles(sharedData, "")
	if err != nil {
		t.Fatal(err)
	}
	opts := func(key string, f sim.Faults) sim.Options {
		return sim.Options{API: api.URL, MQTT: "tcp://" + b.addr, Keys: []string{key}, Resolution: time.Second, Seed: 7,
			Faults: f, Profiles: prof, MeterGroups: true}
	}
	batteries, err := sim.New(ctx, opts(batteryKey, sim.Faults{}))
	if err != nil {
		t.Fatal(err)
	}
	heat, err := sim.New(ctx, opts(heatKey, sim.Faults{Drop: 1, DropFor: 3 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	fa, fh := batteries.FSPs[0], heat.FSPs[0]
	if len(fa.Fleet.Units) != 13 || fa.Fleet.Groups() != 1 || len(fh.Fleet.Units) != 12 || fh.Fleet.Groups() != 1 {
		t.Fatalf("fleets: %d+%d and %d+%d units+groups", len(fa.Fleet.Units), fa.Fleet.Groups(), len(fh.Fleet.Units), fh.Fleet.Groups())
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- batteries.Run(runCtx) }()
	go func() { done <- heat.Run(runCtx) }()
	waitFor(t, "both FSPs connected", 10*time.Second, func() bool { return fa.Stats.Connected.Load() && fh.Stats.Connected.Load() })
	time.Sleep(300 * time.Millisecond) // subscriptions
	b.hook.mu.Lock()
	for _, pk := range b.hook.connects {
		c := pk.Connect
		key := map[string]string{fa.Party: batteryKey, fh.Party: heatKey}[string(c.Username)]
		if key == "" || string(c.Password) != key || c.ClientIdentifier != "sim-"+string(c.Username) || c.Clean || pk.ProtocolVersion != 5 ||
			pk.Properties.SessionExpiryInterval != 3600 {
			t.Fatalf("CONNECT user %q client id %q clean %v protocol %d session expiry %d", c.Username, c.ClientIdentifier, c.Clean,
				pk.ProtocolVersion, pk.Properties.SessionExpiryInterval)
		}
	}
	if len(b.hook.connects) != 2 {
		t.Fatalf("%d connections for two FSPs", len(b.hook.connects))
	}
	b.hook.mu.Unlock()

	// A battery is asked to go up 1 kW for 7 s; the order arrives twice.
	bat := fa.Fleet.Units[0]
	now := time.Now().UTC().Truncate(time.Second)
	from, to := now.Add(3*time.Second), now.Add(10*time.Second)
	o := &flexhub.ActivationOrder{ID: "order-bat", Type: flexhub.OrderActivate, FSPID: fa.Party, ResourceID: bat.ID, Direction: "up", Unit: "W",
		Status: flexhub.OrderDelivered, Setpoints: []flexhub.Setpoint{{Start: from, End: to, Quantity: 1000}}}
	b.publish(sim.TopicActivations(fa.Party), o)
	b.publish(sim.TopicActivations(fa.Party), o)
	// One it cannot run: not its resource.
	b.publish(sim.TopicActivations(fa.Party), &flexhub.ActivationOrder{ID: "order-alien", Type: flexhub.OrderActivate, ResourceID: "not-ours", Direction: "up", Unit: "W",
		Setpoints: []flexhub.Setpoint{{Start: from, End: to, Quantity: 1000}}})
	// flexhub complains about something on the errors topic.
	b.publish(sim.TopicErrors(fa.Party), map[string]string{"error": "meter.future", "detail": "test"})

	waitFor(t, "the battery order's reports", 20*time.Second, func() bool { return len(b.statuses("order-bat")) >= 4 })
	if got := strings.Join(b.statuses("order-bat"), ","); got != "received,accepted,executing,completed" {
		t.Fatalf("reports on the battery order: %s", got)
	}
	if r := b.acks["order-alien"]; len(r) != 2 || r[1].Status != "rejected" || !strings.Contains(r[1].Reason, "not-ours") {
		t.Fatalf("reports on the alien order: %+v", r)
	}
	if fa.Fleet.C.Duplicates.Load() != 1 || fa.Stats.ServerErrors.Load() != 1 {
		t.Fatalf("duplicates %d, server errors %d", fa.Fleet.C.Duplicates.Load(), fa.Stats.ServerErrors.Load())
	}
	// The battery's readings rise by 1 kW above its baseline (the
	// household's load) while the order runs, and not before or after.
	for at := from.Add(-2 * time.Second); at.Before(to.Add(3 * time.Second)); at = at.Add(time.Second) {
		var net float64
		waitFor(t, "the reading of "+at.Format(time.RFC3339), 5*time.Second, func() bool {
			var ok bool
			net, ok = b.net(bat.ID, at)
			return ok
		})
		base := bat.Baseline(at)
		want := 0.0
		if !at.Before(from.Add(time.Second)) && at.Before(to) {
			want = 1000
		}
		if at.Equal(from) || at.Equal(to) {
			continue // ramping across the boundary
		}
		if math.Abs(net-base-want) > 5 {
			t.Fatalf("%s: battery net %.0f W, baseline %.0f W, want +%.0f", at.Format(time.RFC3339), net, base, want)
		}
	}
	// The group streams the sum of its members.
	gid := fa.Fleet.GroupIDs()[0]
	at := from.Add(2 * time.Second)
	waitFor(t, "the group's reading", 5*time.Second, func() bool { _, ok := b.net(gid, at); return ok })
	sum := 0.0
	for _, u := range fa.Fleet.Units {
		v, ok := b.net(u.ID, at)
		if !ok {
			t.Fatalf("no reading of %s at %s", u.Name, at)
		}
		sum += v
	}
	if g, _ := b.net(gid, at); math.Abs(g-sum) > 13 { // each member rounded to whole W
		t.Fatalf("group %.0f W, members %.0f W", g, sum)
	}

	// The heat pump FSP drops its connection during its order's
	// activation, comes back, and sends what it measured meanwhile.
	hp := fh.Fleet.Units[0]
	now = time.Now().UTC().Truncate(time.Second)
	hfrom, hto := now.Add(2*time.Second), now.Add(14*time.Second)
	b.publish(sim.TopicActivations(fh.Party), &flexhub.ActivationOrder{ID: "order-hp", Type: flexhub.OrderActivate, FSPID: fh.Party, ResourceID: hp.ID, Direction: "up", Unit: "W",
		Setpoints: []flexhub.Setpoint{{Start: hfrom, End: hto, Quantity: 200}}})
	waitFor(t, "the drop", 15*time.Second, func() bool { return fh.Stats.Drops.Load() == 1 })
	if fh.Stats.Connected.Load() {
		waitFor(t, "the connection to go down", 2*time.Second, func() bool { return !fh.Stats.Connected.Load() })
	}
	// An order sent while the FSP is away waits in its session.
	b.publish(sim.TopicActivations(fh.Party), &flexhub.ActivationOrder{ID: "order-hp-2", Type: flexhub.OrderActivate, FSPID: fh.Party, ResourceID: hp.ID, Direction: "up", Unit: "W",
		Setpoints: []flexhub.Setpoint{{Start: hto, End: hto.Add(5 * time.Second), Quantity: 100}}})
	waitFor(t, "the reconnection", 15*time.Second, func() bool { return fh.Stats.Connects.Load() >= 2 && fh.Stats.Connected.Load() })
	waitFor(t, "the order sent during the outage", 10*time.Second, func() bool { return len(b.statuses("order-hp-2")) >= 2 })
	waitFor(t, "the heat pump order's completion", 20*time.Second, func() bool {
		st := b.statuses("order-hp")
		return len(st) > 0 && st[len(st)-1] == "completed"
	})
	// No second is missing from the heat pump's stream across the outage,
	// and some message carried the buffered seconds.
	for at := hfrom; at.Before(hto); at = at.Add(time.Second) {
		if _, ok := b.net(hp.ID, at); !ok {
			t.Fatalf("no heat pump reading for %s (outage not resent)", at.Format(time.RFC3339))
		}
	}
	b.mu.Lock()
	most := 0
	for _, n := range b.msgs[hp.ID] {
		most = max(most, n)
	}
	bad := b.bad
	b.mu.Unlock()
	if most < 4 {
		t.Fatalf("largest heat pump message had %d readings: nothing was buffered", most)
	}
	if len(bad) > 0 {
		t.Fatalf("malformed messages: %v", bad[:min(3, len(bad))])
	}
	if fh.Stats.Lost.Load() != 0 || fa.Stats.PublishErr.Load() != 0 {
		t.Fatalf("lost %d readings, %d publish errors", fh.Stats.Lost.Load(), fa.Stats.PublishErr.Load())
	}

	// Ctrl-C: both stop and disconnect.
	stop()
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the simulator did not stop")
		}
	}
	snap := append(batteries.Snapshot(), heat.Snapshot()...)
	if snap[0].Readings == 0 || snap[1].Readings == 0 || snap[0].Connected || snap[1].Connected {
		t.Fatalf("snapshots after the stop: %+v", snap)
	}

	// Reports over REST, on a real order: the DSO limits the export of a
	// battery in its grid; the test hands the stored order to the FSP as
	// the MQTT bus would, and the FSP's reports land in the order's
	// tracking.
	var dsoKey string
	for _, k := range reg.Keys {
		if k.Role == "DSO" {
			dsoKey = k.Token
		}
	}
	var products struct {
		Items []*flexhub.Product `json:"items"`
	}
	call(t, "GET", api.URL+"/v1/products?limit=100", dsoKey, nil, 200, &products)
	var cm *flexhub.Product
	for _, p := range products.Items {
		if p.Service == "congestion_management" {
			cm = p
		}
	}
	if cm == nil {
		t.Fatal("no congestion management product in the demo")
	}
	q := time.Now().UTC().Truncate(15 * time.Minute)
	var real flexhub.ActivationOrder
	call(t, "POST", api.URL+"/v1/activation-orders", dsoKey, map[string]any{"type": "limit", "product_id": cm.ID, "resource_id": bat.ID, "direction": "up",
		"setpoints": []map[string]any{{"start": q, "end": q.Add(15 * time.Minute), "quantity": map[string]any{"value": 0.5, "unit": "kW"}}}}, 201, &real)
	viaREST, err := sim.New(ctx, sim.Options{API: api.URL, MQTT: "tcp://" + b.addr, Keys: []string{batteryKey}, Resolution: time.Second, Seed: 7,
		Profiles: prof, ReportsOver: "rest"})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop = context.WithCancel(ctx)
	go func() { done <- viaREST.Run(runCtx) }()
	fr := viaREST.FSPs[0]
	waitFor(t, "the REST-reporting FSP connected", 10*time.Second, func() bool { return fr.Stats.Connected.Load() })
	time.Sleep(300 * time.Millisecond)
	b.publish(sim.TopicActivations(fr.Party), &real)
	var got flexhub.ActivationOrder
	waitFor(t, "the real order executing", 15*time.Second, func() bool {
		call(t, "GET", api.URL+"/v1/activation-orders/"+real.ID, batteryKey, nil, 200, &got)
		return got.Status == flexhub.OrderExecuting
	})
	var steps []string
	for _, e := range got.Tracking {
		if e.Channel == "rest" && e.By == fr.Party {
			steps = append(steps, e.Status)
		}
	}
	if strings.Join(steps, ",") != "received,accepted,executing" {
		t.Fatalf("steps reported over REST: %v (tracking %+v)", steps, got.Tracking)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// call sends a JSON request with a bearer key and decodes the answer.
func call(t *testing.T, method, url, key string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, url, res.Status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
}
