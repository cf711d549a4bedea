package main

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt/mosquittotest"
)

// Consent end to end through the real binary (issue 6's "done means"): a
// household grants an aggregator access to its metering point's data,
// real-time included, over REST; the aggregator subscribes over MQTT and
// receives the quarter hours the DSO sends over REST; the household
// revokes; the next reading does not reach the aggregator (its
// subscription stays open; the household's own stream shows the reading
// was sent) and the aggregator's REST read fails with 403
// consent.revoked; the household's access log shows the mqtt
// deliveries, the REST reads allowed and refused, and its audit trail the
// grant and the revocation. With the embedded broker and with mosquitto.

func TestConsentEndToEndEmbedded(t *testing.T) {
	t.Parallel()
	mqttAddr := freeAddr(t)
	consentEndToEnd(t, mqttAddr, nil, "--mqtt-addr", mqttAddr)
}

func TestConsentEndToEndMosquitto(t *testing.T) {
	t.Parallel()
	b := mosquittotest.Start(t)
	consentEndToEnd(t, b.Addr, []string{"FLEXHUB_MQTT_USERNAME=" + b.AdminUser, "FLEXHUB_MQTT_PASSWORD=" + b.AdminPass}, "--mqtt-broker", "mqtt://"+b.Addr)
}

// streamClient is a party's MQTT connection subscribed to its
// consumer-data topics.
type streamClient struct {
	t   *testing.T
	got chan app.ConsumerDataMessage
}

func subscribeConsumerData(t *testing.T, ctx context.Context, addr, party, key string) *streamClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sc := &streamClient{t: t, got: make(chan app.ConsumerDataMessage, 100)}
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			var m app.ConsumerDataMessage
			if err := json.Unmarshal(pr.Packet.Payload, &m); err != nil {
				t.Errorf("consumer data message %q: %v", pr.Packet.Payload, err)
			}
			if !strings.HasPrefix(pr.Packet.Topic, app.Topic(party, "consumer-data/")) {
				t.Errorf("message on %s", pr.Packet.Topic)
			}
			sc.got <- m
			return true, nil
		}}})
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: "e2e-stream-" + party, CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: party, PasswordFlag: true, Password: []byte(key)})
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connecting over MQTT as %s: %v %+v", party, err, ack)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: app.Topic(party, "consumer-data/#"), QoS: 1}}})
	if err != nil || len(sa.Reasons) != 1 || sa.Reasons[0] > 1 {
		t.Fatalf("subscribing to the consumer-data topics as %s: %v %+v", party, err, sa)
	}
	return sc
}

// next returns the next message, failing after d.
func (sc *streamClient) next(what string, d time.Duration) app.ConsumerDataMessage {
	sc.t.Helper()
	select {
	case m := <-sc.got:
		return m
	case <-time.After(d):
		sc.t.Fatalf("%s: no consumer data within %s", what, d)
		return app.ConsumerDataMessage{}
	}
}

func consentEndToEnd(t *testing.T, mqttAddr string, env []string, mqttArgs ...string) {
	admin, _, _ := app.NewToken()
	env = append(env, "FLEXHUB_ADMIN_KEY="+admin)
	p := start(t, env, append([]string{"--data-dir", t.TempDir()}, mqttArgs...)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The register: the DSO's grid, the household's metering point, an aggregator.
	_, tsoKey := p.party(admin, "CONSTSO", "tso")
	_, dsoKey := p.party(admin, "CONSDSO", "dso")
	house, houseKey := p.party(admin, "CONSHOME", "consumer")
	agg, aggKey := p.party(admin, "CONSAGG", "fsp")
	var ca, ga, cp, mp obj
	p.call("POST", "/v1/control-areas", tsoKey, map[string]any{"eic": testEIC("10YCONSCA"), "name": "Control area"}, 201, &ca)
	p.call("POST", "/v1/grid-areas", dsoKey, map[string]any{"eic": testEIC("10YCONSGA"), "name": "Feeder", "control_area_id": ca.ID}, 201, &ga)
	p.call("POST", "/v1/connection-points", dsoKey, map[string]any{"code": "CONS-CP", "grid_area_id": ga.ID, "node_ref": "LV bus 1"}, 201, &cp)
	p.call("POST", "/v1/metering-points", dsoKey, map[string]any{"code": "CONS-MP", "connection_point_id": cp.ID, "consumer_id": house}, 201, &mp)

	// Quarter hours of this morning: the DSO sends them as they are read.
	day := time.Now().UTC().Add(-3 * time.Hour).Truncate(15 * time.Minute)
	qh := func(i int) time.Time { return day.Add(time.Duration(i) * 15 * time.Minute) }
	send := func(i int, kwh string) {
		p.call("POST", "/v1/meter-readings", dsoKey, map[string]any{"readings": []map[string]any{{"metering_point_id": mp.ID, "quantity": "active_energy",
			"flow": "import", "resolution": "PT15M", "start": qh(i).Format(time.RFC3339), "value": kwh, "unit": "kWh"}}}, 200, nil)
	}
	read := "/v1/meter-readings?metering_point_id=" + mp.ID + "&quantity=active_energy&flow=import&resolution=PT15M&from=" +
		url.QueryEscape(qh(0).Format(time.RFC3339)) + "&to=" + url.QueryEscape(qh(8).Format(time.RFC3339))

	// The household grants the aggregator its history and real-time data.
	var consent flexhub.Consent
	p.call("POST", "/v1/consents", houseKey, map[string]any{"data_user_id": agg, "metering_point_ids": []string{mp.ID},
		"scopes": []string{"meter_history", "meter_realtime"}, "purpose": "flexibility offers for the heat pump",
		"valid_from": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), "valid_to": time.Now().UTC().Add(90 * 24 * time.Hour).Format(time.RFC3339)}, 201, &consent)

	// The aggregator subscribes over MQTT; so does the household (its own stream).
	aggStream := subscribeConsumerData(t, ctx, mqttAddr, agg, aggKey)
	houseStream := subscribeConsumerData(t, ctx, mqttAddr, house, houseKey)

	// The DSO sends two quarter hours; each reaches the aggregator.
	for i, kwh := range []string{"0.25", "0.5"} {
		send(i, kwh)
		m := aggStream.next("the aggregator, quarter hour "+kwh, 10*time.Second)
		wantWh := map[string]string{"0.25": "250", "0.5": "500"}[kwh]
		if m.MeteringPointID != mp.ID || m.Series.MeteringPointID != mp.ID || m.Series.Quantity != "active_energy" || m.Unit != "Wh" ||
			len(m.Readings) != 1 || !m.Readings[0].Start.Equal(qh(i)) || string(m.Readings[0].Value) != wantWh {
			t.Fatalf("the aggregator received %+v, want %s Wh at %s", m, wantWh, qh(i))
		}
		houseStream.next("the household, quarter hour "+kwh, 10*time.Second)
	}
	// It may read the stored history too.
	var hist flexhub.MeterSeriesData
	p.call("GET", read, aggKey, nil, 200, &hist)
	if len(hist.Readings) != 2 {
		t.Fatalf("the aggregator read %d readings, want 2", len(hist.Readings))
	}

	// The household revokes. The next quarter hour reaches the household
	// and not the aggregator, whose subscription is still open.
	var revoked flexhub.Consent
	p.call("POST", "/v1/consents/"+consent.ID+"/revoke", houseKey, nil, 200, &revoked)
	if revoked.Status != flexhub.ConsentRevoked {
		t.Fatalf("revoked: %+v", revoked)
	}
	send(2, "0.75")
	if m := houseStream.next("the household after the revocation", 10*time.Second); len(m.Readings) != 1 || !m.Readings[0].Start.Equal(qh(2)) {
		t.Fatalf("the household received %+v, want the quarter hour at %s", m, qh(2))
	}
	select {
	case m := <-aggStream.got:
		t.Fatalf("the aggregator received a reading after the revocation: %+v", m)
	case <-time.After(time.Second):
	}
	// And its REST read fails.
	if body := p.call("GET", read, aggKey, nil, 403, nil); !strings.Contains(body, "consent.revoked") {
		t.Errorf("the aggregator's read after the revocation: %s", body)
	}

	// The household's access log shows it all, in order.
	var log struct {
		Items []flexhub.DataAccess `json:"items"`
	}
	p.call("GET", "/v1/data-access?limit=500", houseKey, nil, 200, &log)
	var got []string
	for _, a := range log.Items {
		if a.ReaderID != agg || a.OwnerID != house || a.MeteringPointID != mp.ID {
			t.Errorf("the household's log holds %+v", a)
		}
		e := a.Channel + " " + a.Scope + " " + a.Outcome + " " + a.Basis
		if a.Outcome == flexhub.AccessAllowed && a.ConsentID != consent.ID {
			t.Errorf("an allowed access without the consent: %+v", a)
		}
		if a.Outcome == flexhub.AccessRefused {
			e += strings.SplitN(a.Reason, ":", 2)[0]
		}
		if a.Channel == flexhub.ChannelMQTT {
			e += " " + a.What
		}
		got = append(got, e)
	}
	want := []string{
		"mqtt meter_realtime allowed consent active_energy import PT15M from " + qh(0).Format(time.RFC3339) + " to " + qh(1).Format(time.RFC3339),
		"mqtt meter_realtime allowed consent active_energy import PT15M from " + qh(1).Format(time.RFC3339) + " to " + qh(2).Format(time.RFC3339),
		"rest meter_history allowed consent",
		"rest meter_history refused consent.revoked",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the household's access log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The grant and the revocation in its audit trail.
	var audit struct{ Items []flexhub.AuditEntry }
	p.call("GET", "/v1/audit?object_id="+consent.ID, houseKey, nil, 200, &audit)
	var actions []string
	for _, e := range audit.Items {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "consent.granted,consent.revoked" {
		t.Errorf("the consent's audit trail: %v", actions)
	}
}
