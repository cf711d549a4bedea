package app

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// BenchmarkExportConsent is issue 6's consent overhead on bulk reads
// (docs/BENCHMARKS.md, "Consent checks on bulk reads (issue 6)"): one
// consumer owns P metering points, each with D days of 15-minute
// active-energy import data (P × D × 96 readings, loaded once through
// Tx.PutMeterReadings in batches of 200,000; not timed), and has granted
// an aggregator consent (meter_history) for all of them. Each iteration
// exports all P metering points over the D days as CSV to a counting
// writer, four ways, alternating (the order rotates every iteration):
//
//   - consent: the aggregator, through ExportMeterData — every metering
//     point checked on its consent, P access-log entries written — then
//     MeterExport.Write;
//   - dso: the DSO, the same, on its legal basis (P log entries too);
//   - raw: the same metering points and series read and written as CSV
//     with no check and no log at all;
//   - store: only the store reads of raw (Tx.MeterPoints in windows), no
//     CSV — how much of an export is the store.
//
// All variants must hand out the same bytes (store: the same readings).
// Reported: seconds per export of each (medians over the iterations),
// the ratios consent/dso and consent/raw, and the decision alone
// (ExportMeterData: the P checks, the listing of the series and the P
// log entries, before the first byte) of consent and dso: the absolute
// cost of check and log, which the ratios blur on a noisy machine.
//
//	FLEXHUB_EXPORT_BENCH=1000,365 go test ./app/ -run '^$' -bench ExportConsent -benchtime=3x -count=3
//
// FLEXHUB_EXPORT_BENCH is "points,days" (default 50,30); PostgreSQL runs
// when FLEXHUB_TEST_POSTGRES is set.
func BenchmarkExportConsent(b *testing.B) {
	points, days := 50, 30
	if v := os.Getenv("FLEXHUB_EXPORT_BENCH"); v != "" {
		p, d, ok := strings.Cut(v, ",")
		var err1, err2 error
		points, err1 = strconv.Atoi(strings.TrimSpace(p))
		days, err2 = strconv.Atoi(strings.TrimSpace(d))
		if !ok || err1 != nil || err2 != nil || points < 1 || points > MaxExportPoints || days < 1 {
			b.Fatalf("FLEXHUB_EXPORT_BENCH=%q: want points,days (1 to %d points)", v, MaxExportPoints)
		}
	}
	kinds := []string{"sqlite"}
	if os.Getenv("FLEXHUB_TEST_POSTGRES") != "" {
		kinds = append(kinds, "postgres")
	}
	for _, kind := range kinds {
		b.Run(fmt.Sprintf("%s/points=%d/days=%d", kind, points, days), func(b *testing.B) { benchExportConsent(b, kind, points, days) })
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func benchExportConsent(b *testing.B, kind string, points, days int) {
	ctx := context.Background()
	store := benchStore(b, kind, "fh_exportbench")
	svc := New(store, nil)
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(time.Duration(days) * 24 * time.Hour)
	now := to.Add(24 * time.Hour)
	svc.SetClock(func() time.Time { return now })
	ic, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, ic.Token)
	if err != nil {
		b.Fatal(err)
	}
	party := func(stem string, role flexhub.Role) *flexhub.Party {
		c, err := svc.CreateParty(WithActor(ctx, admin), flexhub.PartySpec{EIC: flexhub.EICFromStem(stem), Name: stem, Roles: []flexhub.Role{role}}, "")
		if err != nil {
			b.Fatal(err)
		}
		return c.Object
	}
	tso, dso, agg := party("10XEXPBTSO", flexhub.RoleTSO), party("10XEXPBDSO", flexhub.RoleDSO), party("10XEXPBAGG", flexhub.RoleFSP)
	sup, brp, consumer := party("10XEXPBSUP", flexhub.RoleSupplier), party("10XEXPBBRP", flexhub.RoleBRP), party("10XEXPBCON", flexhub.RoleConsumer)
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	ca, err := svc.CreateControlArea(WithActor(ctx, tso), flexhub.ControlAreaSpec{EIC: flexhub.EICFromStem("10YEXPBCA"), Name: "ca"}, "")
	must(err)
	ga, err := svc.CreateGridArea(WithActor(ctx, dso), flexhub.GridAreaSpec{EIC: flexhub.EICFromStem("10YEXPBGA"), Name: "ga", ControlAreaID: ca.Object.ID}, "")
	must(err)
	cp, err := svc.CreateConnectionPoint(WithActor(ctx, dso), flexhub.ConnectionPointSpec{Code: "CP", GridAreaID: ga.Object.ID, NodeRef: "bus"}, "")
	must(err)

	t0 := time.Now()
	ids := make([]string, points)
	for i := range points {
		mp, err := svc.CreateMeteringPoint(WithActor(ctx, dso), flexhub.MeteringPointSpec{Code: fmt.Sprintf("MP%06d", i), ConnectionPointID: cp.Object.ID,
			ConsumerID: consumer.ID, SupplierID: sup.ID, BRPID: brp.ID}, "")
		must(err)
		ids[i] = mp.Object.ID
	}
	const batch = 200_000
	vals := make([]flexhub.MeterValue, 0, batch)
	readings := 0
	flush := func() {
		if len(vals) == 0 {
			return
		}
		must(store.Update(ctx, func(tx flexhub.Tx) error {
			_, err := tx.PutMeterReadings(ctx, vals, now, dso.ID, flexhub.NewID())
			return err
		}))
		readings += len(vals)
		vals = vals[:0]
	}
	x := uint64(88172645463325252)
	for _, id := range ids {
		key := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectMeteringPoint, SubjectID: id, Quantity: flexhub.QuantityActiveEnergy,
			Flow: flexhub.FlowImport, Resolution: 15 * time.Minute}
		for t := from; t.Before(to); t = t.Add(15 * time.Minute) {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			vals = append(vals, flexhub.MeterValue{Series: key, Start: t, Value: int64(x % 2_000_000)})
			if len(vals) == batch {
				flush()
			}
		}
	}
	flush()
	_, err = svc.GiveConsent(WithActor(ctx, consumer), flexhub.ConsentSpec{DataUserID: agg.ID, MeteringPointIDs: ids, Scopes: []string{flexhub.ScopeMeterHistory},
		Purpose: "benchmark", ValidFrom: now.Add(-time.Hour), ValidTo: now.Add(365 * 24 * time.Hour)}, "")
	must(err)
	b.Logf("%s: loaded %d metering points, %d readings in %s", kind, points, readings, time.Since(t0).Round(time.Millisecond))

	q := ExportQuery{MeteringPointIDs: ids, From: from, To: to, Format: ExportCSV}
	var checks [2][]time.Duration // the decision alone (check + log) of consent and dso
	exportAs := func(p *flexhub.Party, k int) int64 {
		t := time.Now()
		e, err := svc.ExportMeterData(WithActor(ctx, p), q)
		must(err)
		checks[k] = append(checks[k], time.Since(t))
		w := &countWriter{}
		must(e.Write(ctx, w))
		return w.n
	}
	rawExport := func() *MeterExport {
		e := &MeterExport{s: svc, Format: ExportCSV, From: from, To: to}
		must(store.View(ctx, func(tx flexhub.Tx) error {
			for _, id := range ids {
				mp, err := tx.MeteringPoint(ctx, id)
				if err != nil {
					return err
				}
				e.points = append(e.points, mp)
			}
			return e.listSeries(ctx, tx)
		}))
		return e
	}
	variants := []struct {
		name string
		run  func() int64
	}{
		{"consent", func() int64 { return exportAs(agg, 0) }},
		{"dso", func() int64 { return exportAs(dso, 1) }},
		{"raw", func() int64 {
			w := &countWriter{}
			must(rawExport().Write(ctx, w))
			return w.n
		}},
		{"store", func() int64 {
			e := rawExport()
			var n int64
			for c, err := range e.chunks(ctx, e.flat()) {
				must(err)
				n += int64(len(c.pts))
			}
			return n
		}},
	}
	took := make([][]time.Duration, len(variants))
	out := make([]int64, len(variants))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range variants {
			v := (i + j) % len(variants)
			t := time.Now()
			out[v] = variants[v].run()
			took[v] = append(took[v], time.Since(t))
		}
		if out[0] != out[1] || out[0] != out[2] || out[3] != int64(readings) {
			b.Fatalf("the variants handed out different data: consent %d B, dso %d B, raw %d B; store %d of %d readings", out[0], out[1], out[2], out[3], readings)
		}
	}
	b.StopTimer()
	med := make([]float64, len(variants))
	for v := range variants {
		slices.Sort(took[v])
		med[v] = took[v][len(took[v])/2].Seconds()
		b.ReportMetric(med[v], variants[v].name+"-s")
	}
	for k, name := range []string{"consent-decide-s", "dso-decide-s"} {
		slices.Sort(checks[k])
		b.ReportMetric(checks[k][len(checks[k])/2].Seconds(), name)
	}
	b.ReportMetric(med[0]/med[1], "consent/dso")
	b.ReportMetric(med[0]/med[2], "consent/raw")
	b.ReportMetric(med[1]/med[2], "dso/raw")
	b.ReportMetric(float64(readings), "readings")
}
