package http_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/postgres"
	"github.com/flexhub/flexhub/postgres/pgtest"
	"github.com/flexhub/flexhub/sqlite"
	"github.com/jackc/pgx/v5"
)

// BenchmarkMeterIngest measures bulk meter ingestion over REST: each
// operation POSTs one request of 10,000 new readings (10 resources × 1,000
// one-second active-power readings, as JSON or CSV) through
// authentication, decoding, validation, the operator check, one
// transaction and one audit entry, into SQLite and, when
// FLEXHUB_TEST_POSTGRES is set, into PostgreSQL. The baseline in the same
// run is PostgreSQL COPY (pgx CopyFrom, binary) of the same 10,000 rows
// into a plain table without index (copy); for context, COPY into that
// table with a primary key on (resource, quantity, flow, resolution,
// start) (copy-indexed), and COPY of the rows as flexhub stored them
// before migration 009 (series id, start, value, version, batch) into a
// table shaped like that layout's meter_value with its primary key
// (copy-narrow: the floor of a row-per-reading layout). Each
// REST result on PostgreSQL reports its rate as a ratio to the plain COPY
// measured just before (x_copy); the interleaved runs COPY each request's
// rows right after it and report both rates and their ratio, which a
// noisy machine disturbs least:
//
// With clients=2 two requests (or COPYs on two connections) run at once:
// the sustained rate when senders overlap.
//
//	FLEXHUB_TEST_POSTGRES=postgres://... go test ./http/ -run '^$' -bench MeterIngest -benchtime 50x
func BenchmarkMeterIngest(b *testing.B) {
	for _, clients := range []int{1, 2} {
		var copyRate float64
		c := fmt.Sprintf("/clients=%d", clients)
		b.Run("sqlite/json"+c, func(b *testing.B) { benchMeter(b, openBenchSQLite(b), "json", clients, 0) })
		b.Run("sqlite/csv"+c, func(b *testing.B) { benchMeter(b, openBenchSQLite(b), "csv", clients, 0) })
		b.Run("postgres/copy"+c, func(b *testing.B) { copyRate = benchCopy(b, "plain", clients) })
		b.Run("postgres/copy-indexed"+c, func(b *testing.B) { benchCopy(b, "indexed", clients) })
		b.Run("postgres/copy-narrow"+c, func(b *testing.B) { benchCopy(b, "narrow", clients) })
		b.Run("postgres/json"+c, func(b *testing.B) { benchMeter(b, openPostgres(b), "json", clients, copyRate) })
		b.Run("postgres/csv"+c, func(b *testing.B) { benchMeter(b, openPostgres(b), "csv", clients, copyRate) })
	}
	// One client, each request followed by the COPY of its rows: the
	// ratio least disturbed by a noisy machine.
	b.Run("postgres/json+copy/interleaved", func(b *testing.B) { benchMeter(b, openPostgres(b), "json", 1, -1) })
	b.Run("postgres/csv+copy/interleaved", func(b *testing.B) { benchMeter(b, openPostgres(b), "csv", 1, -1) })
}

// parallel runs do(worker, 0..n-1) on the given number of goroutines
// (workers).
func parallel(n, clients int, do func(worker, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				do(w, i)
			}
		}()
	}
	wg.Wait()
}

const (
	benchMeterResources = 10
	benchMeterSeconds   = 1000 // readings per resource and request
)

func openBenchSQLite(b *testing.B) flexhub.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), true)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchRows is one request's readings: resource, start, value in W.
type benchRow struct {
	resource string
	start    time.Time
	watts    string
}

func benchRows(resources []string, iter int, epoch time.Time) []benchRow {
	rows := make([]benchRow, 0, len(resources)*benchMeterSeconds)
	t0 := epoch.Add(time.Duration(iter*benchMeterSeconds) * time.Second)
	for _, r := range resources {
		for s := range benchMeterSeconds {
			rows = append(rows, benchRow{r, t0.Add(time.Duration(s) * time.Second), strconv.Itoa(1000+s%700) + "." + strconv.Itoa(s%10)})
		}
	}
	return rows
}

func meterBody(rows []benchRow, format string) []byte {
	var b bytes.Buffer
	if format == "csv" {
		b.WriteString("metering_point_id,resource_id,quantity,flow,start,resolution,value,unit\n")
		for _, r := range rows {
			fmt.Fprintf(&b, ",%s,active_power,export,%s,PT1S,%s,W\n", r.resource, r.start.Format(time.RFC3339), r.watts)
		}
		return b.Bytes()
	}
	b.WriteString(`{"readings":[`)
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"resource_id":"%s","quantity":"active_power","flow":"export","start":"%s","resolution":"PT1S","value":%s,"unit":"W"}`,
			r.resource, r.start.Format(time.RFC3339), r.watts)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// meterBenchEnv is a flexhub with an FSP operating n resources, each on
// its own metering point.
type meterBenchEnv struct {
	svc       *app.Service
	srv       *httptest.Server
	fsp       *flexhub.Party
	fspKey    string
	resources []string
}

func newMeterBenchEnv(b *testing.B, store flexhub.Store, n int) *meterBenchEnv {
	ctx := context.Background()
	svc := app.New(store, nil)
	admin, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
	b.Cleanup(srv.Close)
	c := &benchClient{b: b, base: srv.URL}
	type idOut struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	party := func(name string, roles ...string) (string, string) {
		var p, k idOut
		c.post("/v1/parties", admin.Token, map[string]any{"eic": eic("10X" + strings.ToUpper(name)), "name": name, "roles": roles}, &p)
		c.post("/v1/parties/"+p.ID+"/credentials", admin.Token, map[string]any{}, &k)
		return p.ID, k.Token
	}
	_, tsoKey := party("tso", "tso")
	_, dsoKey := party("dso", "dso")
	fsp, fspKey := party("fsp", "fsp", "consumer")
	var ca, ga, cp idOut
	c.post("/v1/control-areas", tsoKey, map[string]any{"eic": eic("10YBENCHCA"), "name": "ca"}, &ca)
	c.post("/v1/grid-areas", dsoKey, map[string]any{"eic": eic("10YBENCHGA"), "name": "ga", "control_area_id": ca.ID}, &ga)
	c.post("/v1/connection-points", dsoKey, map[string]any{"code": "CP", "grid_area_id": ga.ID, "node_ref": "bus 1"}, &cp)
	e := &meterBenchEnv{svc: svc, srv: srv, fspKey: fspKey}
	for i := range n {
		var mp, r idOut
		c.post("/v1/metering-points", dsoKey, map[string]any{"code": fmt.Sprintf("MP%d", i), "connection_point_id": cp.ID, "consumer_id": fsp}, &mp)
		c.post("/v1/resources", fspKey, map[string]any{"name": "pv", "kind": "unit", "unit_type": "pv_inverter", "metering_point_id": mp.ID,
			"technical": map[string]any{"max_up": map[string]any{"value": 5, "unit": "kW"}}}, &r)
		e.resources = append(e.resources, r.ID)
	}
	if e.fsp, err = svc.Authenticate(ctx, fspKey); err != nil {
		b.Fatal(err)
	}
	return e
}

func benchMeter(b *testing.B, store flexhub.Store, format string, clients int, copyRate float64) {
	defer store.Close()
	e := newMeterBenchEnv(b, store, benchMeterResources)
	srv, fspKey, resources := e.srv, e.fspKey, e.resources
	contentType := "application/json"
	if format == "csv" {
		contentType = "text/csv"
	}
	epoch := time.Now().UTC().Add(-60 * 24 * time.Hour).Truncate(time.Hour)
	send := func(body []byte) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/meter-readings", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+fspKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var out struct{ Inserted int }
		if res.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.Inserted != benchMeterResources*benchMeterSeconds {
			b.Fatalf("POST /v1/meter-readings: %d %.300s", res.StatusCode, raw)
		}
	}
	send(meterBody(benchRows(resources, 0, epoch), format)) // series created, pools warm
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = meterBody(benchRows(resources, i+1, epoch), format)
	}
	if copyRate < 0 {
		// Interleaved: each request is followed by the COPY of the same
		// rows, so both see the same noise from the rest of the machine.
		cp := newCopier(b, "plain", 1, b.N)
		var rest, copying time.Duration
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			send(bodies[i])
			t1 := time.Now()
			cp(0, i)
			rest, copying = rest+t1.Sub(t0), copying+time.Since(t1)
		}
		b.StopTimer()
		n := float64(b.N * benchMeterResources * benchMeterSeconds)
		b.ReportMetric(n/rest.Seconds(), "readings/s")
		b.ReportMetric(n/copying.Seconds(), "copy_readings/s")
		b.ReportMetric(copying.Seconds()/rest.Seconds(), "x_copy")
		return
	}
	b.ResetTimer()
	parallel(b.N, clients, func(_, i int) { send(bodies[i]) })
	b.StopTimer()
	rate := float64(b.N*benchMeterResources*benchMeterSeconds) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "readings/s")
	if copyRate > 0 {
		b.ReportMetric(rate/copyRate, "x_copy")
	}
}

// benchCopy COPYs the same rows a REST request carries into a table
// (see BenchmarkMeterIngest for the kinds) and returns the rows per
// second.
func benchCopy(b *testing.B, kind string, clients int) float64 {
	cp := newCopier(b, kind, clients, b.N)
	b.ResetTimer()
	parallel(b.N, clients, cp)
	b.StopTimer()
	rate := float64(b.N*benchMeterResources*benchMeterSeconds) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "readings/s")
	return rate
}

// newCopier prepares a table of the kind and n batches of rows, and
// returns the function that COPYs batch i on connection worker.
func newCopier(b *testing.B, kind string, clients, n int) func(worker, i int) {
	dsn := os.Getenv("FLEXHUB_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("set FLEXHUB_TEST_POSTGRES to run against PostgreSQL")
	}
	ctx := context.Background()
	var conns []*pgx.Conn
	for len(conns) < clients {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(context.Background()) })
		conns = append(conns, c)
	}
	table := fmt.Sprintf("fh_bench_copy_%d", time.Now().UnixNano())
	ddl := `CREATE TABLE ` + table + ` (resource_id text NOT NULL, quantity text NOT NULL, flow text NOT NULL, start timestamptz NOT NULL,
		resolution_s integer NOT NULL, value double precision NOT NULL, unit text NOT NULL`
	cols := []string{"resource_id", "quantity", "flow", "start", "resolution_s", "value", "unit"}
	switch kind {
	case "indexed":
		ddl += ", PRIMARY KEY (resource_id, quantity, flow, resolution_s, start)"
	case "narrow":
		ddl = `CREATE TABLE ` + table + ` (series_id integer NOT NULL, version integer NOT NULL, start_s bigint NOT NULL, value bigint NOT NULL,
		batch_id bigint NOT NULL, PRIMARY KEY (series_id, start_s)`
		cols = []string{"series_id", "version", "start_s", "value", "batch_id"}
	}
	if _, err := conns[0].Exec(ctx, ddl+`)`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conns[0].Exec(context.Background(), `DROP TABLE `+table) })
	resources := make([]string, benchMeterResources)
	for i := range resources {
		resources[i] = flexhub.NewID()
	}
	epoch := time.Now().UTC().Add(-60 * 24 * time.Hour).Truncate(time.Hour)
	// The rows as a client holds them (or as flexhub stores them), built
	// beforehand like the REST bodies.
	source := func(rows []benchRow) [][]any {
		src := make([][]any, len(rows))
		for i, r := range rows {
			v, _ := strconv.ParseFloat(r.watts, 64)
			if kind == "narrow" {
				src[i] = []any{int32(i / benchMeterSeconds), int32(1), r.start.Unix(), int64(v * 1000), int64(1)}
				continue
			}
			src[i] = []any{r.resource, "active_power", "export", r.start, int32(1), v, "W"}
		}
		return src
	}
	copyRows := func(conn *pgx.Conn, src [][]any) {
		n, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(src))
		if err != nil || n != int64(len(src)) {
			b.Fatalf("COPY: %d rows, %v", n, err)
		}
	}
	copyRows(conns[0], source(benchRows(resources, 0, epoch))) // warm
	srcs := make([][][]any, n)
	for i := range srcs {
		srcs[i] = source(benchRows(resources, i+1, epoch))
	}
	return func(w, i int) { copyRows(conns[w], srcs[i]) }
}

// BenchmarkMeterStream measures meter ingestion in the small batches of
// streamed (MQTT) data, through the service call an MQTT message ends in
// (app.IngestMeterReadings: validation, the operator check, one
// transaction, one audit entry; no HTTP): each operation is
//
//   - stream/readings=k: 100 messages of k consecutive one-second
//     readings of one resource, one transaction each, the 10 resources
//     in turn;
//   - fleet/resources=1000: one transaction of 1,000 readings, one second
//     of each of 1,000 resources.
//
// Before the timed messages every series gets its first 450 s in bulk,
// so the messages write into series that already hold data, as in steady
// state (with chunks of 300 intervals, into a half-full chunk).
//
// readings/s is the rate; the layout's write amplification for data that
// arrives a few readings at a time shows against the bulk case
// (BenchmarkMeterIngest). On PostgreSQL each message is followed by the
// COPY of its rows, as a client holds them, into a plain table in a
// transaction of its own (one commit per message, like the message):
// copy_readings/s and the ratio x_copy, which the machine's noise
// disturbs least.
//
//	FLEXHUB_TEST_POSTGRES=postgres://... go test ./http/ -run '^$' -bench MeterStream -benchtime 50x
func BenchmarkMeterStream(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) flexhub.Store
	}{{"sqlite", openBenchSQLite}, {"postgres", openBenchPostgres}}
	for _, st := range stores {
		for _, k := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/stream/readings=%d", st.name, k), func(b *testing.B) {
				store := st.open(b)
				defer store.Close()
				benchMeterStream(b, store, st.name == "postgres", benchMeterResources, k, 100)
			})
		}
		b.Run(st.name+"/fleet/resources=1000", func(b *testing.B) {
			store := st.open(b)
			defer store.Close()
			benchMeterStream(b, store, st.name == "postgres", 1000, 1, 1)
		})
	}
}

// benchMeterStream runs b.N operations of msgs transactions; a
// transaction holds perResource consecutive one-second readings of one
// resource when resources is benchMeterResources, one reading of every
// resource otherwise.
func benchMeterStream(b *testing.B, store flexhub.Store, withCopy bool, resources, perResource, msgs int) {
	e := newMeterBenchEnv(b, store, resources)
	ctx := app.WithActor(context.Background(), e.fsp)
	epoch := time.Now().UTC().Add(-60 * 24 * time.Hour).Truncate(time.Hour)
	reading := func(resource string, at time.Time, s int) flexhub.MeterReading {
		return flexhub.MeterReading{ResourceID: resource, Quantity: "active_power", Flow: "export", Start: at.Format(time.RFC3339),
			Resolution: "PT1S", Value: json.Number(strconv.Itoa(1000+s%700) + "." + strconv.Itoa(s%10)), Unit: "W"}
	}
	ingest := func(msg []flexhub.MeterReading) {
		res, err := e.svc.IngestMeterReadings(ctx, msg)
		if err != nil || res.Inserted != len(msg) {
			b.Fatalf("ingest: %+v %v", res, err)
		}
	}
	// Each series already holds its first 450 s (sent in bulk, not
	// timed), so the stream writes into stored data as it does in steady
	// state.
	const prefill = 450 // s
	var bulk []flexhub.MeterReading
	for _, r := range e.resources {
		for s := range prefill {
			bulk = append(bulk, reading(r, epoch.Add(time.Duration(s)*time.Second), s))
			if len(bulk) == 10_000 {
				ingest(bulk)
				bulk = nil
			}
		}
	}
	if len(bulk) > 0 {
		ingest(bulk)
	}
	// The messages, built beforehand: message m of the run.
	var messages [][]flexhub.MeterReading
	total := (b.N + 1) * msgs
	for m := range total {
		var msg []flexhub.MeterReading
		if resources == benchMeterResources {
			r := m % resources
			s0 := prefill + (m/resources)*perResource
			for s := s0; s < s0+perResource; s++ {
				msg = append(msg, reading(e.resources[r], epoch.Add(time.Duration(s)*time.Second), s))
			}
		} else {
			for _, r := range e.resources {
				msg = append(msg, reading(r, epoch.Add(time.Duration(prefill+m)*time.Second), prefill+m))
			}
		}
		messages = append(messages, msg)
	}
	for _, msg := range messages[:msgs] { // series created, pools warm
		ingest(msg)
	}
	messages = messages[msgs:]
	var copyMsg func(i int)
	if withCopy {
		copyMsg = newReadingCopier(b, messages)
	}
	var rest, copying time.Duration
	b.ResetTimer()
	for i, msg := range messages {
		t0 := time.Now()
		ingest(msg)
		if copyMsg != nil {
			t1 := time.Now()
			copyMsg(i)
			rest, copying = rest+t1.Sub(t0), copying+time.Since(t1)
		}
	}
	b.StopTimer()
	n := 0
	for _, msg := range messages {
		n += len(msg)
	}
	if copyMsg == nil {
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
		return
	}
	b.ReportMetric(float64(n)/rest.Seconds(), "readings/s")
	b.ReportMetric(float64(n)/copying.Seconds(), "copy_readings/s")
	b.ReportMetric(copying.Seconds()/rest.Seconds(), "x_copy")
}

// newReadingCopier creates a plain table like newCopier's and returns the
// function that COPYs message i of messages into it (one transaction).
func newReadingCopier(b *testing.B, messages [][]flexhub.MeterReading) func(i int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("FLEXHUB_TEST_POSTGRES"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	table := fmt.Sprintf("fh_bench_copy_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, `CREATE TABLE `+table+` (resource_id text NOT NULL, quantity text NOT NULL, flow text NOT NULL, start timestamptz NOT NULL,
		resolution_s integer NOT NULL, value double precision NOT NULL, unit text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Exec(context.Background(), `DROP TABLE `+table) })
	srcs := make([][][]any, len(messages))
	for i, msg := range messages {
		for _, r := range msg {
			start, _ := time.Parse(time.RFC3339, r.Start)
			v, _ := strconv.ParseFloat(string(r.Value), 64)
			srcs[i] = append(srcs[i], []any{r.ResourceID, r.Quantity, r.Flow, start, int32(1), v, r.Unit})
		}
	}
	cols := []string{"resource_id", "quantity", "flow", "start", "resolution_s", "value", "unit"}
	return func(i int) {
		n, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(srcs[i]))
		if err != nil || n != int64(len(srcs[i])) {
			b.Fatalf("COPY: %d rows, %v", n, err)
		}
	}
}

// BenchmarkMeterStorage measures the space meter data takes on
// PostgreSQL: each operation stores one day of one-second readings of one
// series (86,400), in bulk (ingestions of 10,000 readings) or streamed
// (ingestions of 10), and reports the size of the meter value tables
// (pg_total_relation_size: heap, indexes, TOAST) per reading: after
// VACUUM (bytes/reading: what the writes left in the files, dead
// versions free for reuse) and after VACUUM FULL (live_bytes/reading).
//
//	FLEXHUB_TEST_POSTGRES=postgres://... go test ./http/ -run '^$' -bench MeterStorage -benchtime 1x
func BenchmarkMeterStorage(b *testing.B) {
	for _, per := range []int{10_000, 10} {
		name := "bulk"
		if per < 100 {
			name = "stream"
		}
		b.Run(fmt.Sprintf("%s/readings=%d", name, per), func(b *testing.B) {
			store, db, schema := openPostgresSchema(b)
			defer store.Close()
			e := newMeterBenchEnv(b, store, 1)
			ctx := app.WithActor(context.Background(), e.fsp)
			epoch := time.Now().UTC().Add(-time.Duration(b.N+2) * 24 * time.Hour).Truncate(24 * time.Hour)
			const day = 86_400
			b.ResetTimer()
			for d := range b.N {
				for s0 := 0; s0 < day; s0 += per {
					var msg []flexhub.MeterReading
					for s := s0; s < s0+per && s < day; s++ {
						msg = append(msg, flexhub.MeterReading{ResourceID: e.resources[0], Quantity: "active_power", Flow: "export",
							Start: epoch.Add(time.Duration(d*day+s) * time.Second).Format(time.RFC3339), Resolution: "PT1S",
							Value: json.Number(strconv.Itoa(1000+s%700) + "." + strconv.Itoa(s%10)), Unit: "W"})
					}
					if res, err := e.svc.IngestMeterReadings(ctx, msg); err != nil || res.Inserted != len(msg) {
						b.Fatalf("ingest: %+v %v", res, err)
					}
				}
			}
			b.StopTimer()
			var tables []string
			rows, err := db.Query(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relkind = 'r' AND (c.relname LIKE 'meter\_value%' OR c.relname LIKE 'meter\_chunk%')`, schema)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var t string
				rows.Scan(&t)
				tables = append(tables, schema+"."+t)
			}
			rows.Close()
			size := func() float64 {
				var size int64
				for _, t := range tables {
					var n int64
					if err := db.QueryRow(`SELECT pg_total_relation_size($1::regclass)`, t).Scan(&n); err != nil {
						b.Fatal(err)
					}
					size += n
				}
				return float64(size) / float64(b.N*day)
			}
			for _, vacuum := range []string{"VACUUM ANALYZE ", "VACUUM FULL "} {
				for _, t := range tables {
					if _, err := db.Exec(vacuum + t); err != nil {
						b.Fatal(err)
					}
				}
				if vacuum == "VACUUM ANALYZE " {
					b.ReportMetric(size(), "bytes/reading")
				} else {
					b.ReportMetric(size(), "live_bytes/reading")
				}
			}
		})
	}
}

// openPostgresSchema is openPostgres that also returns a connection to
// the database and the store's schema.
func openPostgresSchema(b *testing.B) (flexhub.Store, *sql.DB, string) {
	dsn, db, schema := pgtest.Schema(b, "fh_bench")
	s, err := postgres.Open(context.Background(), dsn, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, db, schema
}
