package http_test

import (
	"bytes"
	"context"
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
// start) (copy-indexed), and COPY of the rows as flexhub stores them
// (series id, start, value, version, batch) into a table shaped like
// meter_value with its primary key (copy-narrow: the storage floor). Each
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

func benchMeter(b *testing.B, store flexhub.Store, format string, clients int, copyRate float64) {
	defer store.Close()
	ctx := context.Background()
	svc := app.New(store, nil)
	admin, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
	defer srv.Close()
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
	var resources []string
	for i := range benchMeterResources {
		var mp, r idOut
		c.post("/v1/metering-points", dsoKey, map[string]any{"code": fmt.Sprintf("MP%d", i), "connection_point_id": cp.ID, "consumer_id": fsp}, &mp)
		c.post("/v1/resources", fspKey, map[string]any{"name": "pv", "kind": "unit", "unit_type": "pv_inverter", "metering_point_id": mp.ID,
			"technical": map[string]any{"max_up": map[string]any{"value": 5, "unit": "kW"}}}, &r)
		resources = append(resources, r.ID)
	}
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
