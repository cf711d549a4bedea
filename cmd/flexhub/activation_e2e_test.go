package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt/mosquittotest"
	"github.com/flexhub/flexhub/sim"
)

// The activation end to end through the real binary (issue 4's "done
// means"): a DSO buys three batteries' flexibility for one minute in a
// market session that clears on its own; the DSO orders each obligation;
// two FSPs run the simulator and take their orders over MQTT, the third
// has no MQTT connection and takes its order over a signed webhook,
// reporting over REST and posting its meter data over REST. Every order
// is acknowledged and tracked; one simulated FSP delivers half of what it
// was ordered and is flagged while the minute runs, on the DSO's MQTT
// monitoring topic and in the order's tracking, and only that one. Run
// with the embedded broker and with mosquitto (FLEXHUB_TEST_MOSQUITTO).

func TestActivationEndToEndEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for up to two and a half minutes in real time")
	}
	t.Parallel()
	mqttAddr := freeAddr(t)
	activationEndToEnd(t, mqttAddr, nil, false, "--mqtt-addr", mqttAddr)
}

func TestActivationEndToEndMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for up to two and a half minutes in real time")
	}
	t.Parallel()
	b := mosquittotest.Start(t)
	activationEndToEnd(t, b.Addr, []string{"FLEXHUB_MQTT_USERNAME=" + b.AdminUser, "FLEXHUB_MQTT_PASSWORD=" + b.AdminPass}, false,
		"--mqtt-broker", "mqtt://"+b.Addr)
}

// actOrder is the part of an activation order the test reads.
type actOrder struct {
	ID           string `json:"id"`
	FSPID        string `json:"fsp_id"`
	ResourceID   string `json:"resource_id"`
	ObligationID string `json:"obligation_id"`
	Status       string `json:"status"`
	Setpoints    []struct {
		Start    time.Time `json:"start"`
		End      time.Time `json:"end"`
		Quantity int64     `json:"quantity"`
	} `json:"setpoints"`
	Tracking []flexhub.OrderEvent `json:"tracking"`
	Alerts   []flexhub.OrderAlert `json:"alerts"`
}

// activationEndToEnd plays the activation; with settle, the service's
// clock is moved so that the delivery minute is the last of a quarter
// hour, and the DSO then settles that quarter hour (settleEndToEnd).
func activationEndToEnd(t *testing.T, mqttAddr string, env []string, settle bool, mqttArgs ...string) {
	admin, _, _ := app.NewToken()
	env = append(env, "FLEXHUB_ADMIN_KEY="+admin, "FLEXHUB_WEBHOOK_ALLOW_PRIVATE=true")
	// The clock every party reads: the wall clock, or with settle the
	// service's moved clock, which the simulated FSPs and the webhook FSP
	// read too. Then the quarter hour ends at qhEnd, 140 s after the
	// start: the minute before the delivery minute is metered from its
	// start (the settlement's meter-before baseline), and there is time
	// for the market.
	var offset time.Duration
	var qhEnd time.Time
	if settle {
		wall := time.Now().UTC()
		qhEnd = wall.Add(140 * time.Second).Truncate(flexhub.ISP).Add(flexhub.ISP)
		offset = qhEnd.Add(-140 * time.Second).Sub(wall)
		env = append(env, "FLEXHUB_TEST_CLOCK_OFFSET="+offset.String())
	}
	now := func() time.Time { return time.Now().UTC().Add(offset) }
	p := start(t, env, append([]string{"--data-dir", t.TempDir()}, mqttArgs...)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The register: a TSO's control area, the DSO's grid, a household
	// whose consumer confirms three 10 kW batteries, one per FSP.
	_, tsoKey := p.party(admin, "ACTTSO", "tso")
	dso, dsoKey := p.party(admin, "ACTDSO", "dso", "market_operator")
	var consumer, ck, ca, ga, cp obj
	p.call("POST", "/v1/parties", dsoKey, map[string]any{"eic": testEIC("10XACTHOME"), "name": "Household", "roles": []string{"consumer"}}, 201, &consumer)
	p.call("POST", "/v1/parties/"+consumer.ID+"/credentials", admin, nil, 201, &ck)
	p.call("POST", "/v1/control-areas", tsoKey, map[string]any{"eic": testEIC("10YACTCA"), "name": "Control area"}, 201, &ca)
	p.call("POST", "/v1/grid-areas", dsoKey, map[string]any{"eic": testEIC("10YACTGA"), "name": "Feeder", "control_area_id": ca.ID}, 201, &ga)
	p.call("POST", "/v1/connection-points", dsoKey, map[string]any{"code": "ACT-CP", "grid_area_id": ga.ID, "node_ref": "LV bus 1"}, 201, &cp)
	// A manual product in one-minute intervals: ramp within 10 s,
	// acknowledgement within 15 s, ±10 % tolerance.
	// Settled: activations paid at 100 EUR/MWh (none of the bids prices
	// them), shortfalls beyond the tolerance charged at the same price.
	var product obj
	p.call("POST", "/v1/products", dsoKey, map[string]any{"name": "Feeder minute", "service": "congestion_management", "direction": "up",
		"power_type": "active", "min_bid_size": kw(1), "time_resolution": "PT1M", "full_activation_time": "PT10S", "ack_deadline": "PT15S",
		"delivery_tolerance_pct": 10, "activation_mode": "manual", "remuneration": []string{"capacity"}, "baseline_method": "meter_before",
		"settlement": map[string]any{"activation_price": eurE2E("100")}}, 201, &product)
	// The household's balance responsible party and supplier.
	brp, brpKey := p.party(admin, "ACTBRP", "brp")
	supplier, _ := p.party(admin, "ACTSUPPLIER", "supplier")
	var fsp, fspKey, unit, meteringPoint [3]string
	for i, name := range []string{"ACTFSPA", "ACTFSPB", "ACTFSPC"} {
		fsp[i], fspKey[i] = p.party(admin, name, "fsp")
		var mp, r, pq, g obj
		p.call("POST", "/v1/metering-points", dsoKey, map[string]any{"code": "ACT-MP-" + name, "connection_point_id": cp.ID, "consumer_id": consumer.ID}, 201, &mp)
		// BRP and supplier since yesterday (settlement attributes energy
		// to the assignment in force at the quarter hour's start).
		p.call("POST", "/v1/metering-points/"+mp.ID+"/switches", dsoKey, map[string]any{"brp_id": brp, "supplier_id": supplier,
			"valid_from": now().Add(-24 * time.Hour)}, 200, nil, "If-Match", fmt.Sprintf(`"%d"`, mp.Version))
		meteringPoint[i] = mp.ID
		p.call("POST", "/v1/resources", fspKey[i], map[string]any{"name": "battery " + name, "kind": "unit", "unit_type": "battery", "metering_point_id": mp.ID,
			"technical": map[string]any{"max_up": kw(10), "max_down": kw(10), "full_activation_time": "PT5S"}}, 201, &r)
		p.call("POST", "/v1/resources/"+r.ID+"/confirmation", ck.Token, map[string]any{"accept": true}, 200, nil)
		unit[i] = r.ID
		p.call("POST", "/v1/prequalifications", fspKey[i], map[string]any{"resource_id": r.ID, "product_id": product.ID, "answers": map[string]string{}}, 201, &pq)
		p.call("POST", "/v1/prequalifications/"+pq.ID+"/decision", dsoKey, map[string]any{"outcome": "approved", "valid_from": now().Add(-time.Hour)}, 200, nil)
		p.call("POST", "/v1/grid-prequalifications", fspKey[i], map[string]any{"resource_id": r.ID}, 201, &g)
		p.call("POST", "/v1/grid-prequalifications/"+g.ID+"/decision", dsoKey, map[string]any{"outcome": "approved"}, 200, nil)
	}

	// The DSO watches its monitoring and notifications topics over MQTT.
	alertsOverMQTT, notesOverMQTT := subscribeMonitoring(t, ctx, mqttAddr, dso, dsoKey)

	// FSPs A and B: the simulator, one connection each, streaming every
	// second; B delivers half of every order.
	sims := make([]*sim.FSP, 2)
	for i := range 2 {
		faults := sim.Faults{}
		if i == 1 {
			faults = sim.Faults{UnderDeliver: 1, DeliverFraction: 0.5}
		}
		s, err := sim.New(ctx, sim.Options{API: p.base, MQTT: "tcp://" + mqttAddr, Keys: []string{fspKey[i]}, Resolution: time.Second,
			Seed: int64(i + 1), Faults: faults, DataDir: filepath.Join("..", "..", "..", "shared", "data"), Clock: offsetClock(offset)})
		if err != nil {
			t.Fatal(err)
		}
		sims[i] = s.FSPs[0]
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("simulated FSP %d: %v", i, err)
			}
		})
	}
	// FSP C: a webhook receiver that reports over REST, and a meter that
	// posts every second over REST.
	c := &webhookFSP{t: t, base: p.base, key: fspKey[2], resource: unit[2], baseW: 2000, offset: offset}
	recv := httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(recv.Close)
	var hook struct {
		Secret string `json:"secret"`
	}
	p.call("POST", "/v1/webhooks", fspKey[2], map[string]any{"url": recv.URL + "/flexhub", "event_types": []string{"activation.order"}}, 201, &hook)
	c.secret = hook.Secret
	go c.meter(ctx)
	waitUntil(t, "both simulated FSPs connected", 15*time.Second, func() bool {
		return sims[0].Stats.Connected.Load() && sims[1].Stats.Connected.Load()
	})

	// The market: one minute of 15 kW, starting on the first minute at
	// least 25 s away (time for clearing, ordering and a baseline).
	delivery := time.Now().UTC().Add(25 * time.Second).Truncate(time.Minute).Add(time.Minute)
	if settle {
		delivery = qhEnd.Add(-time.Minute)
	}
	end := delivery.Add(time.Minute)
	var need, session obj
	p.call("POST", "/v1/needs", dsoKey, map[string]any{"product_id": product.ID, "grid_area_id": ga.ID, "direction": "up", "buys": "capacity",
		"intervals": []map[string]any{{"start": delivery, "quantity": kw(15), "max_price": eurE2E("50")}}}, 201, &need)
	closure := now().Add(3 * time.Second)
	p.call("POST", "/v1/market-sessions", dsoKey, map[string]any{"kind": "near_real_time", "need_ids": []string{need.ID},
		"gate_opening": now(), "gate_closure": closure}, 201, &session)
	for i := range 3 {
		p.call("POST", "/v1/bids", fspKey[i], map[string]any{"session_id": session.ID, "need_id": need.ID, "resource_id": unit[i], "divisible": false, "linked": false,
			"intervals": []map[string]any{{"start": delivery, "quantity": kw(5), "availability_price": eurE2E(strconv.Itoa(10 + i))}}}, 201, nil)
	}
	waitUntil(t, "the session cleared", 15*time.Second, func() bool {
		var s obj
		p.call("GET", "/v1/market-sessions/"+session.ID, dsoKey, nil, 200, &s)
		return s.Status == "cleared"
	})

	// The DSO orders what each obligation owes.
	var obligations struct {
		Items []flexhub.Obligation `json:"items"`
	}
	p.call("GET", "/v1/obligations?session_id="+session.ID, dsoKey, nil, 200, &obligations)
	if len(obligations.Items) != 3 {
		t.Fatalf("%d obligations, want 3", len(obligations.Items))
	}
	orderOf := map[string]string{} // FSP -> order
	for _, ob := range obligations.Items {
		if len(ob.Intervals) != 1 || ob.Intervals[0].Quantity != 5000 {
			t.Fatalf("obligation %+v", ob)
		}
		var o actOrder
		p.call("POST", "/v1/activation-orders", dsoKey, map[string]any{"type": "activate", "obligation_id": ob.ID,
			"setpoints": []map[string]any{{"start": delivery, "end": end, "quantity": kw(5)}}}, 201, &o)
		orderOf[o.FSPID] = o.ID
	}
	get := func(fspIndex int) actOrder {
		var o actOrder
		p.call("GET", "/v1/activation-orders/"+orderOf[fsp[fspIndex]], dsoKey, nil, 200, &o)
		return o
	}
	if now().After(delivery) {
		t.Fatalf("setting up took past the delivery minute %s; the test's timing is off", delivery.Format(time.TimeOnly))
	}

	// Every FSP acknowledges and accepts before the minute starts, the
	// simulated ones over MQTT, the webhook one over REST.
	for i, channel := range []string{"mqtt", "mqtt", "rest"} {
		waitUntil(t, fmt.Sprintf("FSP %c accepting its order", 'A'+i), delivery.Sub(now())+5*time.Second, func() bool {
			return reported(get(i), fsp[i], flexhub.OrderAccepted)
		})
		o := get(i)
		var steps []string
		for _, e := range o.Tracking {
			if e.By == fsp[i] {
				if e.Channel != channel {
					t.Errorf("FSP %c reported %s over %q, want %s", 'A'+i, e.Status, e.Channel, channel)
				}
				steps = append(steps, e.Status)
			}
		}
		if !strings.HasPrefix(strings.Join(steps, ","), "received,accepted") {
			t.Errorf("FSP %c's reports: %v", 'A'+i, steps)
		}
		// The tracking only moves forward (an acknowledgement that
		// overtakes the record of the send leaves "delivered" out).
		rank := map[string]int{"created": 0, "delivered": 1, "received": 2, "accepted": 3, "executing": 4, "completed": 5}
		for k := 1; k < len(o.Tracking); k++ {
			if rank[o.Tracking[k].Status] <= rank[o.Tracking[k-1].Status] || o.Tracking[k].At.Before(o.Tracking[k-1].At) {
				t.Errorf("FSP %c's order's tracking goes back: %+v", 'A'+i, o.Tracking)
			}
		}
	}
	if got := c.orders(); len(got) != 1 || got[0] != orderOf[fsp[2]] {
		t.Fatalf("the webhook FSP received orders %v, want [%s]", got, orderOf[fsp[2]])
	}

	// While the minute runs, B is flagged, on the DSO's MQTT topic and in
	// its order, before the minute ends.
	select {
	case a := <-alertsOverMQTT:
		if a.OrderID != orderOf[fsp[1]] || a.Alert.Kind != "under_delivery" {
			t.Fatalf("alert over MQTT %+v, want under_delivery of FSP B's order %s", a, orderOf[fsp[1]])
		}
		if !a.Alert.At.Before(end) || now().After(end) {
			t.Fatalf("FSP B flagged at %s, the minute ended at %s: not while it happened", a.Alert.At.Format(time.TimeOnly), end.Format(time.TimeOnly))
		}
	case <-time.After(end.Sub(now())):
		o := get(1)
		var d json.RawMessage
		p.call("GET", "/v1/activation-orders/"+o.ID+"/delivery", dsoKey, nil, 200, &d)
		t.Fatalf("no alert over MQTT before the minute ended; order %+v, delivery %s", o, d)
	}
	if o := get(1); len(o.Alerts) != 1 || o.Alerts[0].Kind != "under_delivery" {
		t.Fatalf("FSP B's order alerts %+v", o.Alerts)
	} else if m := o.Alerts[0].Measured; m < 1500 || m > 3500 {
		t.Errorf("FSP B measured at %d W of 5000 W ordered; it delivers half", m)
	}

	// After the minute: every order completed, only B's flagged; A's and
	// C's deliveries on target.
	for i := range 3 {
		waitUntil(t, fmt.Sprintf("FSP %c's order completed", 'A'+i), end.Sub(now())+15*time.Second, func() bool {
			return get(i).Status == flexhub.OrderCompleted
		})
	}
	for _, i := range []int{0, 2} {
		o := get(i)
		if len(o.Alerts) != 0 {
			t.Errorf("FSP %c flagged: %+v", 'A'+i, o.Alerts)
		}
		var d app.DeliveryStatus
		p.call("GET", "/v1/activation-orders/"+o.ID+"/delivery", dsoKey, nil, 200, &d)
		if len(d.Intervals) != 1 || d.Intervals[0].Verdict != "on_target" {
			t.Errorf("FSP %c's delivery: %+v", 'A'+i, d)
		}
	}
	select {
	case a := <-alertsOverMQTT:
		t.Errorf("a second alert over MQTT: %+v", a)
	default:
	}
	c.mu.Lock()
	if c.failures > 0 {
		t.Errorf("%d of the webhook FSP's meter posts failed; the last: %s", c.failures, c.lastMeterError)
	}
	c.mu.Unlock()
	// The DSO's notifications came over MQTT as they were written: the
	// session's, each FSP's reports, the alert; the same as its feed.
	var feed struct {
		Items []flexhub.Notification `json:"items"`
	}
	p.call("GET", "/v1/notifications?limit=500", dsoKey, nil, 200, &feed)
	var pushed []flexhub.Notification
	for len(pushed) < len(feed.Items) {
		select {
		case n := <-notesOverMQTT:
			pushed = append(pushed, n)
		case <-time.After(5 * time.Second):
			t.Fatalf("%d notifications over MQTT, %d in the feed", len(pushed), len(feed.Items))
		}
	}
	for i, n := range feed.Items {
		if pushed[i].Seq != n.Seq || pushed[i].Type != n.Type || pushed[i].ObjectID != n.ObjectID {
			t.Fatalf("notification %d over MQTT %+v, in the feed %+v", i, pushed[i], n)
		}
	}
	// The DSO's and FSP B's notification feeds carry the alert; FSP A's
	// does not.
	for _, who := range []struct {
		name, key string
		want      bool
	}{{"DSO", dsoKey, true}, {"FSP B", fspKey[1], true}, {"FSP A", fspKey[0], false}} {
		feed := p.call("GET", "/v1/notifications", who.key, nil, 200, nil)
		if got := strings.Contains(feed, "activation.alert"); got != who.want {
			t.Errorf("%s's notifications carry an activation alert: %v, want %v: %s", who.name, got, who.want, feed)
		}
	}
	if settle {
		settleEndToEnd(t, p, now, qhEnd, settleParties{dso: dso, dsoKey: dsoKey, tsoKey: tsoKey, brp: brp, brpKey: brpKey, supplier: supplier,
			fsp: fsp, fspKey: fspKey, meteringPoint: meteringPoint, session: session.ID, orderOf: orderOf})
	}
	var report flexhub.ChainReport
	p.call("GET", "/v1/audit/verify", admin, nil, 200, &report)
	if !report.OK {
		t.Fatalf("audit chain: %+v", report)
	}
}

// reported tells whether the order's tracking has status st (by party,
// when given).
func reported(o actOrder, party, st string) bool {
	for _, e := range o.Tracking {
		if e.Status == st && (party == "" || e.By == party) {
			return true
		}
	}
	return false
}

func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d.Round(time.Second), what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type monitoringMessage struct {
	OrderID string             `json:"order_id"`
	Alert   flexhub.OrderAlert `json:"alert"`
}

// subscribeMonitoring connects as a party and returns what arrives on its
// monitoring and notifications topics.
func subscribeMonitoring(t *testing.T, ctx context.Context, addr, party, key string) (<-chan monitoringMessage, <-chan flexhub.Notification) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan monitoringMessage, 10)
	notes := make(chan flexhub.Notification, 100)
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			if pr.Packet.Topic == app.Topic(party, "notifications") {
				var n flexhub.Notification
				if err := json.Unmarshal(pr.Packet.Payload, &n); err != nil {
					t.Errorf("notification %q: %v", pr.Packet.Payload, err)
				}
				notes <- n
				return true, nil
			}
			var m monitoringMessage
			if err := json.Unmarshal(pr.Packet.Payload, &m); err != nil {
				t.Errorf("monitoring message %q: %v", pr.Packet.Payload, err)
			}
			got <- m
			return true, nil
		}}})
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: "e2e-monitor-" + party, CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: party, PasswordFlag: true, Password: []byte(key)})
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("the DSO connecting over MQTT: %v %+v", err, ack)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: app.Topic(party, "monitoring"), QoS: 1},
		{Topic: app.Topic(party, "notifications"), QoS: 1}}})
	if err != nil || len(sa.Reasons) != 2 || sa.Reasons[0] > 1 || sa.Reasons[1] > 1 {
		t.Fatalf("the DSO subscribing to its monitoring and notifications topics: %v %+v", err, sa)
	}
	return got, notes
}

// webhookFSP is an FSP's control system without an MQTT connection: it
// takes orders on a webhook (checking the signature), reports over REST,
// and posts its battery's meter data every second over REST: importing
// baseW, and delivering what it accepted while an order runs.
type webhookFSP struct {
	t              *testing.T
	base, key      string
	resource       string
	secret         string
	baseW          int64
	offset         time.Duration // the clock the FSP reads runs this far ahead of the wall clock
	mu             sync.Mutex
	got            []string
	running        []actOrder
	failures       int
	lastMeterError string
}

func (c *webhookFSP) orders() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func (c *webhookFSP) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.secret, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(r.Header.Get("Webhook-Id") + "." + r.Header.Get("Webhook-Timestamp") + "."))
	m.Write(body)
	if r.Header.Get("Webhook-Signature") != "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)) {
		c.t.Errorf("webhook with a bad signature: %s", r.Header.Get("Webhook-Signature"))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev struct {
		ID   string   `json:"id"`
		Type string   `json:"type"`
		Data actOrder `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type != "activation.order" {
		c.t.Errorf("webhook event %s: %v", body, err)
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, id := range c.got {
		if id == ev.Data.ID { // a redelivery: already handled
			c.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	c.got = append(c.got, ev.Data.ID)
	c.running = append(c.running, ev.Data)
	c.mu.Unlock()
	for _, st := range []string{"received", "accepted"} {
		if code, raw := c.post("/v1/activation-orders/"+ev.Data.ID+"/status", map[string]any{"status": st}); code != http.StatusOK {
			c.t.Errorf("reporting %s: %d %s", st, code, raw)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *webhookFSP) post(path string, body any) (int, string) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.base+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// meter posts, each second, the second just ended: net power is -baseW,
// plus the set-point of an accepted order in force (up: less import,
// then export).
func (c *webhookFSP) meter(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			at := now.UTC().Add(c.offset).Truncate(time.Second).Add(-time.Second)
			net := -c.baseW
			c.mu.Lock()
			for _, o := range c.running {
				for _, sp := range o.Setpoints {
					if !at.Before(sp.Start) && at.Before(sp.End) {
						net += sp.Quantity
					}
				}
			}
			c.mu.Unlock()
			imp, exp := max(-net, 0), max(net, 0)
			reading := func(flow string, w int64) map[string]any {
				return map[string]any{"resource_id": c.resource, "quantity": "active_power", "flow": flow, "start": at.Format(time.RFC3339),
					"resolution": "PT1S", "value": strconv.FormatInt(w, 10), "unit": "W"}
			}
			if code, raw := c.post("/v1/meter-readings", map[string]any{"readings": []any{reading("import", imp), reading("export", exp)}}); code != http.StatusOK && code != http.StatusCreated {
				c.mu.Lock()
				c.failures++
				c.lastMeterError = fmt.Sprintf("%d %s", code, raw)
				c.mu.Unlock()
			}
		}
	}
}
