package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/mqtt"
)

// BenchmarkConsumerStream measures what the real-time stream of consumer
// data costs ingestion: a DSO's ingestion of one quarter hour for 1,000
// households' metering points (one REST request, 1,000 readings). One
// operation is one ingestion, through the embedded broker.
//
//   - off: no stream running (ingestion as before the stream);
//   - none: the stream runs beside ingestion, no household has given a
//     meter_realtime consent (each reading goes to its owner only: 1,000
//     publishes, nothing logged);
//   - all: every household has given an aggregator a meter_realtime
//     consent, the worst case (2,000 publishes and 1,000 accesses logged
//     per ingestion);
//   - all-wait: as all, but every ingestion waits until its messages are
//     published before the next (the stream's whole cost, serialised).
//
// In none and all the timer stops when the last ingestion is stored, and
// "drain-ms" is how long the stream then took to publish what was queued.
//
//	go test ./app/ -run '^$' -bench ConsumerStream -benchtime 10x -count 3
func BenchmarkConsumerStream(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, mode := range []string{"off", "none", "all", "all-wait"} {
			b.Run(kind+"/"+mode, func(b *testing.B) { benchConsumerStream(b, kind, mode) })
		}
	}
}

// countingPublisher counts what reaches the broker.
type countingPublisher struct {
	Publisher
	n atomic.Int64
}

func (c *countingPublisher) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	err := c.Publisher.Publish(ctx, topic, payload, qos, retain)
	c.n.Add(1)
	return err
}

const streamBenchMPs = 1000

func benchConsumerStream(b *testing.B, kind, mode string) {
	ctx := context.Background()
	store := benchStore(b, kind, "fh_streambench")
	s := New(store, nil)
	e, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: s.MQTTAuthorizer()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	pub := &countingPublisher{Publisher: e}
	s.SetPublisher(pub)
	sctx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	if mode != "off" {
		if err := s.ServeMQTT(sctx, mqtt.Handlers{Bus: e}); err != nil {
			b.Fatal(err)
		}
		for !s.stream.running.Load() {
			time.Sleep(time.Millisecond)
		}
	}

	// The register, written straight to the store.
	now := time.Now().UTC().Truncate(time.Microsecond)
	party := func(name string, role flexhub.Role) *flexhub.Party {
		return &flexhub.Party{ID: flexhub.NewID(), PartySpec: flexhub.PartySpec{EIC: flexhub.EICFromStem("10X" + name), Name: name, Roles: []flexhub.Role{role}},
			CreatedAt: now, UpdatedAt: now}
	}
	tso, dso, agg := party("SBTSO", flexhub.RoleTSO), party("SBDSO", flexhub.RoleDSO), party("SBAGG", flexhub.RoleFSP)
	ca := &flexhub.ControlArea{ID: flexhub.NewID(), CreatedAt: now, ControlAreaSpec: flexhub.ControlAreaSpec{EIC: flexhub.EICFromStem("10YSBCA"), Name: "ca", TSOID: tso.ID}}
	ga := &flexhub.GridArea{ID: flexhub.NewID(), CreatedAt: now, GridAreaSpec: flexhub.GridAreaSpec{EIC: flexhub.EICFromStem("10YSBGA"), Name: "ga", DSOID: dso.ID, ControlAreaID: ca.ID}}
	cp := &flexhub.ConnectionPoint{ID: flexhub.NewID(), DSOID: dso.ID, CreatedAt: now, UpdatedAt: now,
		ConnectionPointSpec: flexhub.ConnectionPointSpec{Code: "SB-CP", GridAreaID: ga.ID, NodeRef: "bus", VoltageKV: 0.4, Capacity: flexhub.KW(5000)}}
	mps := make([]string, streamBenchMPs)
	err = store.Update(ctx, func(tx flexhub.Tx) error {
		for _, p := range []*flexhub.Party{tso, dso, agg} {
			if err := tx.CreateParty(ctx, p); err != nil {
				return err
			}
		}
		if err := tx.CreateControlArea(ctx, ca); err != nil {
			return err
		}
		if err := tx.CreateGridArea(ctx, ga); err != nil {
			return err
		}
		if err := tx.CreateConnectionPoint(ctx, cp); err != nil {
			return err
		}
		for i := range mps {
			house := party(fmt.Sprintf("SBH%d", i), flexhub.RoleConsumer)
			if err := tx.CreateParty(ctx, house); err != nil {
				return err
			}
			mp := &flexhub.MeteringPoint{ID: flexhub.NewID(), DSOID: dso.ID, CreatedAt: now, UpdatedAt: now,
				MeteringPointSpec: flexhub.MeteringPointSpec{Code: fmt.Sprintf("SB-MP-%d", i), ConnectionPointID: cp.ID, ConsumerID: house.ID, Direction: "consumption"}}
			if err := tx.CreateMeteringPoint(ctx, mp); err != nil {
				return err
			}
			mps[i] = mp.ID
			if mode == "none" {
				continue
			}
			c := &flexhub.Consent{ID: flexhub.NewID(), Status: flexhub.ConsentActive, RequestedBy: house.ID, Channel: "api", CreatedAt: now, UpdatedAt: now,
				ConsentSpec: flexhub.ConsentSpec{DataUserID: agg.ID, OwnerID: house.ID, MeteringPointIDs: []string{mp.ID},
					Scopes: []string{flexhub.ScopeMeterRealtime}, Purpose: "bench", ValidFrom: now.Add(-time.Hour), ValidTo: now.Add(24 * time.Hour)}}
			if err := tx.CreateConsent(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	dctx := WithActor(ctx, dso)
	// Quarter hours going back from now: b.N of them, one per operation.
	start := now.Truncate(15 * time.Minute).Add(-time.Duration(b.N+1) * 15 * time.Minute)
	batch := func(i int) []flexhub.MeterReading {
		rs := make([]flexhub.MeterReading, len(mps))
		at := start.Add(time.Duration(i) * 15 * time.Minute).Format(time.RFC3339)
		for j, mp := range mps {
			rs[j] = flexhub.MeterReading{MeteringPointID: mp, Quantity: flexhub.QuantityActiveEnergy, Flow: flexhub.FlowImport, Start: at, Resolution: "PT15M",
				Value: json.Number(fmt.Sprintf("0.%03d", (i*31+j)%1000)), Unit: "kWh"}
		}
		return rs
	}
	batches := make([][]flexhub.MeterReading, b.N)
	for i := range batches {
		batches[i] = batch(i)
	}
	waitPublished := func(want int64) {
		for deadline := time.Now().Add(2 * time.Minute); pub.n.Load() < want; time.Sleep(200 * time.Microsecond) {
			if time.Now().After(deadline) {
				b.Fatalf("published %d messages, want %d", pub.n.Load(), want)
			}
		}
	}
	perIngestion := int64(2 * len(mps)) // the owner and the aggregator
	if mode == "none" {
		perIngestion = int64(len(mps)) // the owner
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.IngestMeterReadings(dctx, batches[i]); err != nil {
			b.Fatal(err)
		}
		if mode == "all-wait" {
			waitPublished(int64(i+1) * perIngestion)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(mps))/b.Elapsed().Seconds(), "readings/s")
	if mode == "off" {
		if n := pub.n.Load(); n != 0 {
			b.Fatalf("the stream is off but %d messages were published", n)
		}
		return
	}
	t0 := time.Now()
	waitPublished(int64(b.N) * perIngestion)
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "drain-ms")
	// Every publish to the aggregator is logged.
	var logged []*flexhub.DataAccess
	if err := store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		logged, err = tx.ListDataAccess(ctx, flexhub.Filter{"reader_id": agg.ID, "metering_point_id": mps[0]}, 0, flexhub.MaxPageLimit)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if want := min(b.N, flexhub.MaxPageLimit); mode == "none" && len(logged) != 0 || mode != "none" && len(logged) != want {
		b.Fatalf("%d accesses logged for the first metering point, want %d", len(logged), b.N)
	}
}
