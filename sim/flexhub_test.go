package sim_test

import (
	"context"
	"math"
	"net"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/mqtt"
	"github.com/flexhub/flexhub/sim"
	"github.com/flexhub/flexhub/sqlite"
)

// TestSimulatorAgainstFlexhub runs the simulator against flexhub itself:
// the demo register in a real app.Service on SQLite, the REST API, the
// embedded MQTT broker authenticating with flexhub API keys, and the
// service's activation loop and MQTT handlers. The DSO orders a battery
// up by 1 kW through an automatic one-minute product; the order reaches
// the simulated FSP over MQTT, its reports land in the order's tracking,
// and the meter data it streams is stored by flexhub and shows the
// kilowatt. A publish flexhub refuses comes back on the errors topic.
func TestSimulatorAgainstFlexhub(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for up to a minute and a half in real time")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	bus, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: svc.MQTTAuthorizer()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	svc.SetPublisher(bus)
	if err := svc.ServeMQTT(ctx, mqtt.Handlers{Bus: bus}); err != nil {
		t.Fatal(err)
	}
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); svc.RunScheduler(ctx, 200*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-schedDone })
	api := httptest.NewServer(fhttp.NewServer(svc, nil, "test"))
	t.Cleanup(api.Close)
	keys := map[string]string{}
	for _, k := range reg.Keys {
		keys[k.Role] = k.Token
	}
	dsoKey, fspKey := keys["DSO"], keys["FSP (batteries)"]

	s, err := sim.New(ctx, sim.Options{API: api.URL, MQTT: "tcp://" + bus.Addr(), Keys: []string{fspKey}, Resolution: time.Second, Seed: 3,
		DataDir: sharedData, MeterGroups: true})
	if err != nil {
		t.Fatal(err)
	}
	f := s.FSPs[0]
	bat := f.Fleet.Units[0]

	// The DSO's automatic product with one-minute intervals; the battery
	// prequalified for it.
	var product flexhub.Product
	call(t, "POST", api.URL+"/v1/products", dsoKey, map[string]any{"name": "Fast local flexibility (sim test)", "service": "congestion_management",
		"direction": "up", "power_type": "active", "min_bid_size": map[string]any{"value": 0.1, "unit": "kW"}, "time_resolution": "PT1M",
		"full_activation_time": "PT30S", "activation_mode": "automatic", "remuneration": []string{"energy"}, "baseline_method": "meter_before"}, 201, &product)
	var pq flexhub.Prequalification
	call(t, "POST", api.URL+"/v1/prequalifications", fspKey, map[string]any{"resource_id": bat.ID, "product_id": product.ID}, 201, &pq)
	call(t, "POST", api.URL+"/v1/prequalifications/"+pq.ID+"/decision", dsoKey, map[string]any{"outcome": "approved",
		"valid_from": time.Now().Add(-time.Hour).UTC()}, 200, nil)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	waitFor(t, "the FSP connected to flexhub's broker", 10*time.Second, func() bool { return f.Stats.Connected.Load() })

	// The order runs from now to the end of the minute (the next one when
	// fewer than 25 s are left).
	from := time.Now().UTC().Truncate(time.Minute)
	if time.Until(from.Add(time.Minute)) < 25*time.Second {
		from = from.Add(time.Minute)
	}
	to := from.Add(time.Minute)
	var o flexhub.ActivationOrder
	call(t, "POST", api.URL+"/v1/activation-orders", dsoKey, map[string]any{"type": "activate", "product_id": product.ID, "resource_id": bat.ID, "direction": "up",
		"setpoints": []map[string]any{{"start": from, "end": to, "quantity": map[string]any{"value": 1, "unit": "kW"}}}}, 201, &o)
	get := func() flexhub.ActivationOrder {
		var got flexhub.ActivationOrder
		call(t, "GET", api.URL+"/v1/activation-orders/"+o.ID, dsoKey, nil, 200, &got)
		return got
	}
	waitFor(t, "the order accepted over MQTT", 10*time.Second, func() bool {
		g := get()
		return g.Status == flexhub.OrderAccepted || g.Status == flexhub.OrderExecuting
	})
	waitFor(t, "the order completed", time.Until(to)+15*time.Second, func() bool { return get().Status == flexhub.OrderCompleted })
	got := get()
	var fromFSP []string
	for _, e := range got.Tracking {
		if e.By == f.Party {
			if e.Channel != "mqtt" {
				t.Fatalf("report %s came over %q", e.Status, e.Channel)
			}
			fromFSP = append(fromFSP, e.Status)
		}
	}
	// executing and completed are the scheduler's too: whichever comes
	// first is recorded, the other is a repeat.
	if !strings.HasPrefix(strings.Join(fromFSP, ","), "received,accepted") {
		t.Fatalf("the FSP's reports in the tracking: %v (%+v)", fromFSP, got.Tracking)
	}
	if f.Fleet.C.Orders.Load() != 1 || f.Fleet.C.Accepted.Load() != 1 {
		t.Fatalf("orders %d, accepted %d", f.Fleet.C.Orders.Load(), f.Fleet.C.Accepted.Load())
	}

	// flexhub stored the stream: during the order the battery's net power
	// is its baseline (the household's load) plus 1 kW.
	series := func(flow string) map[time.Time]float64 {
		q := url.Values{"resource_id": {bat.ID}, "quantity": {"active_power"}, "flow": {flow}, "resolution": {"PT1S"},
			"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "unit": {"W"}}
		var d flexhub.MeterSeriesData
		call(t, "GET", api.URL+"/v1/meter-readings?"+q.Encode(), fspKey, nil, 200, &d)
		out := map[time.Time]float64{}
		for _, r := range d.Readings {
			v, err := r.Value.Float64()
			if err != nil {
				t.Fatal(err)
			}
			out[r.Start.UTC()] = v
		}
		return out
	}
	waitFor(t, "the order's last reading stored", 10*time.Second, func() bool { _, ok := series("import")[to.Add(-time.Second)]; return ok })
	imp, exp := series("import"), series("export")
	// From when the order existed (plus the battery's second of ramp) to
	// its end, every second is stored and shows the kilowatt.
	begin := from
	if c := got.CreatedAt.Truncate(time.Second).Add(time.Second); c.After(begin) {
		begin = c
	}
	checked := 0
	for at := begin.Add(2 * time.Second); at.Before(to); at = at.Add(time.Second) {
		i, ok1 := imp[at]
		e, ok2 := exp[at]
		if !ok1 || !ok2 {
			t.Fatalf("no stored reading at %s", at.Format(time.RFC3339))
		}
		if d := e - i - bat.Baseline(at); math.Abs(d-1000) > 5 {
			t.Fatalf("%s: stored net %.0f W, baseline %.0f W: %+.0f W, want +1000", at.Format(time.RFC3339), e-i, bat.Baseline(at), d)
		}
		checked++
	}
	if checked < 15 {
		t.Fatalf("only %d seconds checked", checked)
	}

	// Another connection of the same FSP publishes meter data for a
	// resource it does not operate: the broker refuses it and flexhub
	// says why on the FSP's errors topic, where the simulator hears it.
	conn, err := net.Dial("tcp", bus.Addr())
	if err != nil {
		t.Fatal(err)
	}
	pc := paho.NewClient(paho.ClientConfig{Conn: conn})
	if _, err := pc.Connect(ctx, &paho.Connect{ClientID: "sim-test-intruder", CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: f.Party, PasswordFlag: true, Password: []byte(fspKey)}); err != nil {
		t.Fatal(err)
	}
	_, _ = pc.Publish(ctx, &paho.Publish{Topic: sim.TopicMeter(f.Party, "not-a-resource-of-ours"), QoS: 1,
		Payload: []byte(`{"readings":[]}`)})
	_ = pc.Disconnect(&paho.Disconnect{})
	waitFor(t, "the refusal on the errors topic", 10*time.Second, func() bool { return f.Stats.ServerErrors.Load() == 1 })

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the simulator did not stop")
	}
	if r, e := f.Stats.Refused.Load(), f.Stats.PublishErr.Load(); r+e != 0 {
		t.Fatalf("%d publishes refused, %d failed; last problem: %s", r, e, f.LastError())
	}
}
