package app

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/postgres/pgtest"
	"github.com/flexhub/flexhub/sqlite"
)

// BenchmarkMeterGroup measures the storing side of MQTT meter ingestion
// alone (storeMeterGroup: sender checks, readings, audit, commit), without
// a broker: the fleet of BenchmarkMeterMQTT (4 FSPs × 250 resources, one
// message of 6 readings per resource and 30-second tick), one operation a
// tick of 1,000 messages stored in groups of 64 messages (what the
// embedded broker's publishers have in flight) or 1,000 (a full group
// through mosquitto), one group after the other. Payloads are decoded and
// checked before the timer. Every message must be stored.
//
//	go test ./app/ -run '^$' -bench MeterGroup -benchtime 20x
func BenchmarkMeterGroup(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, size := range []int{64, 1000} {
			b.Run(fmt.Sprintf("%s/%d", kind, size), func(b *testing.B) { benchMeterGroup(b, kind, size) })
		}
	}
}

func benchMeterGroup(b *testing.B, kind string, size int) {
	ctx := context.Background()
	store := benchStore(b, kind, "fh_metergroupbench")
	s := New(store, nil)
	ic, err := s.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := s.Authenticate(ctx, ic.Token)
	if err != nil {
		b.Fatal(err)
	}
	actx := WithActor(ctx, admin)
	now := time.Now().UTC().Truncate(time.Microsecond)
	type res struct{ fsp, id string }
	var fleet []res
	var fsps []string
	for f := range 4 {
		c, err := s.CreateParty(actx, flexhub.PartySpec{EIC: flexhub.EICFromStem(fmt.Sprintf("10XMBENCH%d", f)), Name: fmt.Sprintf("fsp %d", f), Roles: []flexhub.Role{flexhub.RoleFSP}}, "")
		if err != nil {
			b.Fatal(err)
		}
		fsps = append(fsps, c.Object.ID)
	}
	if err := store.Update(ctx, func(tx flexhub.Tx) error {
		fleet = fleet[:0]
		for _, fsp := range fsps {
			for range 250 {
				r := &flexhub.Resource{ID: flexhub.NewID(), FSPID: fsp, Status: flexhub.ResourceActive, ValidFrom: now, CreatedAt: now,
					ResourceSpec: flexhub.ResourceSpec{Name: "unit", Kind: flexhub.ResourceGroup, Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(10)}}}
				if err := tx.CreateResource(ctx, r); err != nil {
					return err
				}
				fleet = append(fleet, res{fsp, r.ID})
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	epoch := now.Add(-60 * 24 * time.Hour).Truncate(time.Hour)
	tick := func(t int) []*meterMsg {
		msgs := make([]*meterMsg, len(fleet))
		for i, r := range fleet {
			var readings []flexhub.MeterReading
			for k := range 3 {
				start := epoch.Add(time.Duration(t*3+k) * 10 * time.Second).Format(time.RFC3339)
				w := (i*104729 + (t*3+k)*31) % 9000
				for j, flow := range []string{"import", "export"} {
					v := 0
					if (j == 1) == (w%2 == 0) {
						v = w
					}
					readings = append(readings, flexhub.MeterReading{ResourceID: r.id, Quantity: "active_power", Flow: flow, Start: start,
						Resolution: "PT10S", Value: json.Number(fmt.Sprintf("%d.%03d", v/1000, v%1000)), Unit: "kW"})
				}
			}
			in, err := s.prepareMeter(nil, readings)
			if err != nil {
				b.Fatal(err)
			}
			msgs[i] = &meterMsg{topic: "flexhub/v1/parties/" + r.fsp + "/meter/" + r.id, party: r.fsp, in: in}
		}
		return msgs
	}
	store1 := func(msgs []*meterMsg) {
		for len(msgs) > 0 {
			g := msgs[:min(size, len(msgs))]
			msgs = msgs[len(g):]
			s.storeMeterGroup(ctx, g)
			for _, m := range g {
				if m.err != nil {
					b.Fatalf("%s: %v", m.topic, m.err)
				}
			}
		}
	}
	store1(tick(0)) // series created
	ticks := make([][]*meterMsg, b.N)
	for t := range ticks {
		ticks[t] = tick(1 + t)
	}
	b.ResetTimer()
	for _, msgs := range ticks {
		store1(msgs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(fleet)*6)/b.Elapsed().Seconds(), "readings/s")
}

// benchStore opens a fresh store of kind ("sqlite", or "postgres" in a
// schema of its own) for a benchmark, closed when it ends.
func benchStore(b *testing.B, kind, schema string) flexhub.Store {
	if kind != "sqlite" {
		return pgtest.Open(b, schema)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "flexhub.db"), true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
