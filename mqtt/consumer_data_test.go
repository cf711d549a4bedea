package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt"
)

// The real-time stream of consumer data under consent (app/consumerdata.go),
// on both brokers, with flexhub's handlers served as `flexhub serve` does:
// a household's metering point (its DSO sends quarter hours) and a
// battery behind it (its FSP streams over MQTT); an aggregator holds a
// meter_realtime consent, a second data user only meter_history. The
// aggregator and the household receive the DSO's and the FSP's new
// readings on their consumer-data topics, the history-only data user
// nothing; a resend publishes nothing; after the household revokes, the
// next reading reaches the household and not the aggregator, whose
// subscription stays open; the household's access log holds one mqtt
// entry per reading delivered to the aggregator, on its consent.

func TestConsumerDataEmbedded(t *testing.T) { consumerData(t, "embedded") }

func TestConsumerDataMosquitto(t *testing.T) { consumerData(t, "mosquitto") }

type consumerWorld struct {
	*ingestRig
	r                             *rig // the clients' helpers
	dso, fsp, house, agg, hist    party
	mp, battery                   string
	dsoCtx, houseCtx, histOnlyCtx context.Context
}

func consumerData(t *testing.T, broker string) {
	ir := newConsumerRig(t, broker)
	w := newConsumerWorld(t, ir)
	// Grants: real-time to the aggregator, history only to the other.
	spec := func(user string, scopes ...string) flexhub.ConsentSpec {
		return flexhub.ConsentSpec{DataUserID: user, MeteringPointIDs: []string{w.mp}, Scopes: scopes, Purpose: "flexibility offers",
			ValidFrom: time.Now().UTC().Add(-time.Hour), ValidTo: time.Now().UTC().Add(24 * time.Hour)}
	}
	rt, err := ir.svc.GiveConsent(w.houseCtx, spec(w.agg.id, flexhub.ScopeMeterHistory, flexhub.ScopeMeterRealtime), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ir.svc.GiveConsent(w.houseCtx, spec(w.hist.id, flexhub.ScopeMeterHistory), ""); err != nil {
		t.Fatal(err)
	}

	// Everyone listens on its own consumer-data subtree.
	agg := w.r.connect(w.agg.id, w.agg.token, connOpts{})
	house := w.r.connect(w.house.id, w.house.token, connOpts{})
	hist := w.r.connect(w.hist.id, w.hist.token, connOpts{})
	for _, c := range []struct {
		c  *client
		id string
	}{{agg, w.agg.id}, {house, w.house.id}, {hist, w.hist.id}} {
		if code := c.c.subscribe(app.Topic(c.id, "consumer-data/#")); code > 1 {
			t.Fatalf("subscribe to the own consumer-data topics: reason 0x%02x", code)
		}
	}
	// Another party's stream is not for the aggregator.
	if code := agg.subscribe(app.ConsumerDataTopic(w.house.id, w.mp)); code < 0x80 {
		t.Errorf("the aggregator subscribed to the household's stream (0x%02x)", code)
	}

	q0 := time.Now().UTC().Add(-2 * time.Hour).Truncate(15 * time.Minute)
	dsoSends := func(i int, kwh string) {
		t.Helper()
		if _, err := ir.svc.IngestMeterReadings(w.dsoCtx, []flexhub.MeterReading{{MeteringPointID: w.mp, Quantity: flexhub.QuantityActiveEnergy,
			Flow: flexhub.FlowImport, Start: q0.Add(time.Duration(i) * 15 * time.Minute).Format(time.RFC3339), Resolution: "PT15M", Value: json.Number(kwh), Unit: "kWh"}}); err != nil {
			t.Fatal(err)
		}
	}
	mpTopic := func(p party) string { return app.ConsumerDataTopic(p.id, w.mp) }
	expect := func(c *client, who party, what string, wantSeries flexhub.MeterSeriesRef, start time.Time, value string) {
		t.Helper()
		var m app.ConsumerDataMessage
		if err := json.Unmarshal(c.await(mpTopic(who), 10*time.Second).Payload, &m); err != nil {
			t.Fatal(err)
		}
		if m.MeteringPointID != w.mp || m.Series != wantSeries || len(m.Readings) != 1 || !m.Readings[0].Start.Equal(start) ||
			string(m.Readings[0].Value) != value || m.BatchID == "" {
			t.Errorf("%s: %s got %+v, want %v of %+v at %s", broker, what, m, value, wantSeries, start)
		}
	}
	mpSeries := flexhub.MeterSeriesRef{MeteringPointID: w.mp, Quantity: flexhub.QuantityActiveEnergy, Flow: flexhub.FlowImport, Resolution: "PT15M"}

	// (a) The DSO's reading over REST (values in the base unit, as
	// GET /v1/meter-readings answers by default) reaches the aggregator and the household.
	dsoSends(0, "0.25")
	expect(agg, w.agg, "the DSO's reading, aggregator", mpSeries, q0, "250")
	expect(house, w.house, "the DSO's reading, household", mpSeries, q0, "250")

	// The FSP's battery reading over MQTT reaches them too.
	fsp := w.r.connect(w.fsp.id, w.fsp.token, connOpts{})
	sec := time.Now().UTC().Add(-time.Minute).Truncate(10 * time.Second)
	msg := fmt.Sprintf(`{"readings":[{"resource_id":%q,"quantity":"active_power","flow":"export","start":%q,"resolution":"PT10S","value":"3.5","unit":"kW"}]}`,
		w.battery, sec.Format(time.RFC3339))
	if code := fsp.publish(mqtt.MeterTopic(w.fsp.id, w.battery), []byte(msg)); code != 0 {
		t.Fatalf("the FSP's meter message: reason 0x%02x", code)
	}
	batSeries := flexhub.MeterSeriesRef{ResourceID: w.battery, Quantity: flexhub.QuantityActivePower, Flow: flexhub.FlowExport, Resolution: "PT10S"}
	expect(agg, w.agg, "the FSP's reading, aggregator", batSeries, sec, "3500")
	expect(house, w.house, "the FSP's reading, household", batSeries, sec, "3500")

	// A resend stores nothing new and publishes nothing: the next message
	// is the next new reading.
	dsoSends(0, "0.25")
	dsoSends(1, "0.5")
	expect(agg, w.agg, "after a resend, aggregator", mpSeries, q0.Add(15*time.Minute), "500")
	expect(house, w.house, "after a resend, household", mpSeries, q0.Add(15*time.Minute), "500")

	// (c) Revocation: the next reading reaches the household, not the
	// aggregator, whose subscription stays open.
	if _, err := ir.svc.DecideConsent(w.houseCtx, rt.Object.ID, app.ConsentRevoke); err != nil {
		t.Fatal(err)
	}
	dsoSends(2, "0.75")
	expect(house, w.house, "after the revocation, household", mpSeries, q0.Add(30*time.Minute), "750")
	agg.quiet(mpTopic(w.agg), time.Second)

	// (b) The data user with meter_history only received nothing.
	hist.quiet(mpTopic(w.hist), 100*time.Millisecond)

	// (d) The access log: one mqtt entry per reading the aggregator got,
	// on its consent; none for the history-only data user.
	page, err := ir.svc.ListDataAccess(w.houseCtx, flexhub.Filter{}, "", 500)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range page.Items {
		if a.Channel != flexhub.ChannelMQTT {
			continue
		}
		if a.ReaderID != w.agg.id || a.OwnerID != w.house.id || a.MeteringPointID != w.mp || a.Scope != flexhub.ScopeMeterRealtime ||
			a.Outcome != flexhub.AccessAllowed || a.Basis != flexhub.BasisConsent || a.ConsentID != rt.Object.ID {
			t.Errorf("%s: mqtt access %+v", broker, a)
		}
		got = append(got, a.What)
	}
	want := []string{
		"active_energy import PT15M from " + q0.Format(time.RFC3339) + " to " + q0.Add(15*time.Minute).Format(time.RFC3339),
		"resource " + w.battery + " active_power export PT10S from " + sec.Format(time.RFC3339) + " to " + sec.Add(10*time.Second).Format(time.RFC3339),
		"active_energy import PT15M from " + q0.Add(15*time.Minute).Format(time.RFC3339) + " to " + q0.Add(30*time.Minute).Format(time.RFC3339),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: the access log's mqtt entries:\n%s\nwant\n%s", broker, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// newConsumerRig starts the broker and flexhub on SQLite (with the
// ingestion benchmark's fleet beside), serving its MQTT handlers.
func newConsumerRig(t *testing.T, broker string) *ingestRig {
	ir := newIngestRig(t, broker, "sqlite")
	ir.serveFlexhub()
	return ir
}

// newConsumerWorld registers the DSO's grid, the household's metering
// point, the FSP's battery behind it (confirmed), and the data users,
// each with a key (provisioned on mosquitto).
func newConsumerWorld(t *testing.T, ir *ingestRig) *consumerWorld {
	ctx := context.Background()
	w := &consumerWorld{ingestRig: ir, r: &rig{t: t, addr: ir.addr, name: "consumer data"}}
	mk := func(name string, role flexhub.Role) party {
		eicSeq++
		c, err := ir.svc.CreateParty(ir.admin, flexhub.PartySpec{EIC: flexhub.EICFromStem(fmt.Sprintf("10XCD%s%d", strings.ToUpper(name), eicSeq)), Name: name,
			Roles: []flexhub.Role{role}}, "")
		if err != nil {
			t.Fatal(err)
		}
		key, err := ir.svc.IssueCredential(ir.admin, c.Object.ID, "consumer data test")
		if err != nil {
			t.Fatal(err)
		}
		return party{id: c.Object.ID, token: key.Token, cred: key.ID}
	}
	tso := mk("tso", flexhub.RoleTSO)
	w.dso, w.fsp, w.house = mk("dso", flexhub.RoleDSO), mk("fsp", flexhub.RoleFSP), mk("house", flexhub.RoleConsumer)
	w.agg, w.hist = mk("agg", flexhub.RoleFSP), mk("hist", flexhub.RoleSupplier)
	now := time.Now().UTC().Truncate(time.Microsecond)
	eicSeq++
	ca := &flexhub.ControlArea{ID: flexhub.NewID(), CreatedAt: now, ControlAreaSpec: flexhub.ControlAreaSpec{EIC: flexhub.EICFromStem(fmt.Sprintf("10YCDCA%d", eicSeq)), Name: "ca", TSOID: tso.id}}
	ga := &flexhub.GridArea{ID: flexhub.NewID(), CreatedAt: now, GridAreaSpec: flexhub.GridAreaSpec{EIC: flexhub.EICFromStem(fmt.Sprintf("10YCDGA%d", eicSeq)), Name: "ga",
		DSOID: w.dso.id, ControlAreaID: ca.ID}}
	cp := &flexhub.ConnectionPoint{ID: flexhub.NewID(), DSOID: w.dso.id, CreatedAt: now, UpdatedAt: now,
		ConnectionPointSpec: flexhub.ConnectionPointSpec{Code: "CD-CP", GridAreaID: ga.ID, NodeRef: "bus 1", VoltageKV: 0.4, Capacity: flexhub.KW(50)}}
	mp := &flexhub.MeteringPoint{ID: flexhub.NewID(), DSOID: w.dso.id, CreatedAt: now, UpdatedAt: now,
		MeteringPointSpec: flexhub.MeteringPointSpec{Code: "CD-MP", ConnectionPointID: cp.ID, ConsumerID: w.house.id, Direction: "consumption"}}
	bat := &flexhub.Resource{ID: flexhub.NewID(), FSPID: w.fsp.id, DSOID: w.dso.id, Status: flexhub.ResourceActive, ValidFrom: now, CreatedAt: now,
		ResourceSpec: flexhub.ResourceSpec{Name: "battery", Kind: flexhub.ResourceUnit, UnitType: "battery", OwnerID: w.house.id,
			MeteringPointID: mp.ID, ConnectionPointID: cp.ID, Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(10), MaxDown: flexhub.KW(10)}}}
	if err := ir.store.Update(ctx, func(tx flexhub.Tx) error {
		for _, f := range []func() error{
			func() error { return tx.CreateControlArea(ctx, ca) }, func() error { return tx.CreateGridArea(ctx, ga) },
			func() error { return tx.CreateConnectionPoint(ctx, cp) }, func() error { return tx.CreateMeteringPoint(ctx, mp) },
			func() error { return tx.CreateResource(ctx, bat) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w.mp, w.battery = mp.ID, bat.ID
	as := func(p party) context.Context {
		who, err := ir.svc.Authenticate(ctx, p.token)
		if err != nil {
			t.Fatal(err)
		}
		return app.WithActor(ctx, who)
	}
	w.dsoCtx, w.houseCtx, w.histOnlyCtx = as(w.dso), as(w.house), as(w.hist)
	return w
}
