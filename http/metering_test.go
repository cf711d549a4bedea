package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sqlite"
)

// meterWorld is a register with meter senders and readers: an FSP with
// an active unit at its own metering point and a unit pending a
// household's confirmation, another FSP, the DSO, the household.
type meterWorld struct {
	*env
	dso, fsp, fsp2, consumer       string // keys
	dsoID, fspID, fsp2ID           string
	unit, pendingUnit, mpOwn, mpHH string // ids
	day                            time.Time
}

func newMeterWorld(t *testing.T, e *env) *meterWorld {
	w := &meterWorld{env: e}
	var tso string
	_, tso = e.party("meter-tso", "tso")
	w.dsoID, w.dso = e.party("meter-dso", "dso")
	w.fspID, w.fsp = e.party("meter-fsp", "fsp", "consumer")
	w.fsp2ID, w.fsp2 = e.party("meter-fsp2", "fsp")
	consumerID, consumer := e.party("meter-house", "consumer")
	w.consumer = consumer
	var ca, ga, cp, mp1, mp2, u1, u2 struct{ ID string }
	e.do("POST", "/v1/control-areas", tso, map[string]any{"eic": eic("10YMETER-CA"), "name": "ca"}, 201, &ca)
	e.do("POST", "/v1/grid-areas", w.dso, map[string]any{"eic": eic("10YMETER-GA"), "name": "ga", "control_area_id": ca.ID}, 201, &ga)
	e.do("POST", "/v1/connection-points", w.dso, map[string]any{"code": "CP-M", "grid_area_id": ga.ID, "node_ref": "bus 1"}, 201, &cp)
	e.do("POST", "/v1/metering-points", w.dso, map[string]any{"code": "MP-FSP", "connection_point_id": cp.ID, "consumer_id": w.fspID}, 201, &mp1)
	e.do("POST", "/v1/metering-points", w.dso, map[string]any{"code": "MP-HOUSE", "connection_point_id": cp.ID, "consumer_id": consumerID}, 201, &mp2)
	tech := map[string]any{"max_up": map[string]any{"value": 5, "unit": "kW"}}
	e.do("POST", "/v1/resources", w.fsp, map[string]any{"name": "battery", "kind": "unit", "unit_type": "battery", "metering_point_id": mp1.ID, "technical": tech}, 201, &u1)
	e.do("POST", "/v1/resources", w.fsp, map[string]any{"name": "heat pump", "kind": "unit", "unit_type": "heat_pump", "metering_point_id": mp2.ID, "technical": tech}, 201, &u2)
	w.unit, w.pendingUnit, w.mpOwn, w.mpHH = u1.ID, u2.ID, mp1.ID, mp2.ID
	w.day = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	return w
}

// qh is a quarter-hour energy reading of the unit, i quarter hours into
// the day.
func (w *meterWorld) qh(i int, kwh string) map[string]any {
	return map[string]any{"resource_id": w.unit, "quantity": "active_energy", "flow": "import",
		"start": w.day.Add(time.Duration(i) * 15 * time.Minute).Format(time.RFC3339), "resolution": "PT15M", "value": jsonNum(kwh), "unit": "kWh"}
}

type jsonNum string

func (n jsonNum) MarshalJSON() ([]byte, error) { return []byte(n), nil }

func (w *meterWorld) seriesQuery(extra string) string {
	return "/v1/meter-readings" + extra + "?resource_id=" + w.unit + "&quantity=active_energy&flow=import&resolution=PT15M"
}

type ingestResult struct {
	BatchID   string `json:"batch_id"`
	Received  int    `json:"received"`
	Inserted  int    `json:"inserted"`
	Unchanged int    `json:"unchanged"`
	Corrected int    `json:"corrected"`
	Series    []struct {
		ResourceID      string `json:"resource_id"`
		MeteringPointID string `json:"metering_point_id"`
		Inserted        int    `json:"inserted"`
	} `json:"series"`
}

type seriesData struct {
	Unit     string `json:"unit"`
	Readings []struct {
		Start   time.Time `json:"start"`
		Value   jsonRaw   `json:"value"`
		Version int64     `json:"version"`
		BatchID string    `json:"batch_id"`
	} `json:"readings"`
	Gaps []struct {
		Start, End time.Time
		Intervals  int
	} `json:"gaps"`
	Missing int `json:"missing"`
}

type jsonRaw string

func (r *jsonRaw) UnmarshalJSON(b []byte) error { *r = jsonRaw(b); return nil }

func TestMetering(t *testing.T) {
	stores := map[string]func(t *testing.T) flexhub.Store{
		"sqlite": func(t *testing.T) flexhub.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meter.db"), true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) flexhub.Store { return openPostgres(t) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			w := newMeterWorld(t, newEnvOn(t, stores[name](t)))
			w.testIngestAndRead(t)
			w.testCSV(t)
			w.testBadInput(t)
			w.testVisibility(t)
			w.testConcurrent(t)
		})
	}
}

func (w *meterWorld) testIngestAndRead(t *testing.T) {
	// A day of quarter hours with 10:00-10:45 and 23:45 missing.
	var readings []map[string]any
	for i := range 96 {
		if (i >= 40 && i < 44) || i == 95 {
			continue
		}
		readings = append(readings, w.qh(i, fmt.Sprintf("%d.%03d", i/10, i)))
	}
	audit := w.auditCount()
	var res ingestResult
	raw, _ := w.do("POST", "/v1/meter-readings", w.fsp, map[string]any{"readings": readings}, 200, &res)
	if res.Received != 91 || res.Inserted != 91 || res.Unchanged != 0 || res.Corrected != 0 || res.BatchID == "" || len(res.Series) != 1 || res.Series[0].ResourceID != w.unit {
		t.Fatalf("first ingestion: %+v", res)
	}
	if got := w.auditCount(); got != audit+1 {
		t.Errorf("audit entries %d after an ingestion, want %d (one per request)", got, audit+1)
	}
	// The audit entry hashes exactly the result the sender received.
	var entries struct{ Items []flexhub.AuditEntry }
	w.do("GET", "/v1/audit?object_id="+res.BatchID, w.fsp, nil, 200, &entries)
	sum := sha256.Sum256([]byte(strings.TrimSpace(raw)))
	if len(entries.Items) != 1 || entries.Items[0].Action != "meter.ingested" || entries.Items[0].ObjectKind != "meter_batch" ||
		entries.Items[0].PayloadHash != hex.EncodeToString(sum[:]) || !strings.Contains(raw, `"readings_sha256":"`) {
		t.Errorf("audit entry of the ingestion: %+v; response %s", entries.Items, raw[:min(len(raw), 300)])
	}

	// The resend changes nothing, not even the audit chain.
	res = ingestResult{}
	w.do("POST", "/v1/meter-readings", w.fsp, map[string]any{"readings": readings}, 200, &res)
	if res.Inserted != 0 || res.Unchanged != 91 || res.Corrected != 0 || res.BatchID != "" {
		t.Errorf("resend: %+v", res)
	}
	if got := w.auditCount(); got != audit+1 {
		t.Errorf("a resend wrote to the audit chain: %d entries, want %d", got, audit+1)
	}

	// Read back in kWh: exact decimals; the gaps in runs.
	q := w.seriesQuery("") + "&from=" + w.day.Format(time.RFC3339) + "&to=" + w.day.Add(24*time.Hour).Format(time.RFC3339)
	var d seriesData
	w.do("GET", q+"&unit=kWh", w.fsp, nil, 200, &d)
	if len(d.Readings) != 91 || d.Unit != "kWh" || d.Readings[1].Value != "0.001" || d.Readings[90].Value != "9.094" {
		t.Fatalf("read back: %d readings, unit %s, values %v %v", len(d.Readings), d.Unit, d.Readings[1].Value, d.Readings[90].Value)
	}
	if len(d.Gaps) != 2 || d.Missing != 5 || !d.Gaps[0].Start.Equal(w.day.Add(10*time.Hour)) || !d.Gaps[0].End.Equal(w.day.Add(11*time.Hour)) ||
		d.Gaps[0].Intervals != 4 || !d.Gaps[1].Start.Equal(w.day.Add(23*time.Hour+45*time.Minute)) || d.Gaps[1].Intervals != 1 {
		t.Errorf("gaps: %+v (missing %d)", d.Gaps, d.Missing)
	}
	w.do("GET", q, w.fsp, nil, 200, &d) // default unit: Wh
	if d.Unit != "Wh" || d.Readings[1].Value != "1" {
		t.Errorf("in Wh: %s %s", d.Unit, d.Readings[1].Value)
	}

	// A correction: a new version, the old one stays readable.
	res = ingestResult{}
	w.do("POST", "/v1/meter-readings", w.fsp, map[string]any{"readings": []any{w.qh(1, "0.0025"), w.qh(2, "0.002")}}, 200, &res)
	if res.Corrected != 1 || res.Unchanged != 1 || res.Inserted != 0 || res.BatchID == "" {
		t.Errorf("correction: %+v", res)
	}
	var v struct {
		Versions []struct {
			Value        jsonRaw    `json:"value"`
			Version      int64      `json:"version"`
			Sender       string     `json:"sender"`
			SupersededAt *time.Time `json:"superseded_at"`
		} `json:"versions"`
	}
	w.do("GET", w.seriesQuery("/versions")+"&unit=Wh&start="+w.day.Add(15*time.Minute).Format(time.RFC3339), w.fsp, nil, 200, &v)
	if len(v.Versions) != 2 || v.Versions[0].Value != "1" || v.Versions[0].SupersededAt == nil || v.Versions[1].Value != "2.5" ||
		v.Versions[1].Version != 2 || v.Versions[1].SupersededAt != nil || v.Versions[0].Sender != w.fspID {
		t.Errorf("versions: %+v", v.Versions)
	}
	w.do("GET", q, w.fsp, nil, 200, &d)
	if d.Readings[1].Value != "2.5" || d.Readings[1].Version != 2 {
		t.Errorf("current value after the correction: %+v", d.Readings[1])
	}

	// Late data fills a gap.
	w.do("POST", "/v1/meter-readings", w.fsp, map[string]any{"readings": []any{w.qh(41, "1.5"), w.qh(40, "1.25")}}, 200, &res)
	if res.Inserted != 2 {
		t.Errorf("late data: %+v", res)
	}
	w.do("GET", q, w.fsp, nil, 200, &d)
	if d.Missing != 3 || len(d.Gaps) != 2 || !d.Gaps[0].Start.Equal(w.day.Add(10*time.Hour+30*time.Minute)) || d.Gaps[0].Intervals != 2 {
		t.Errorf("gaps after late data: %+v", d.Gaps)
	}
	// The range is half-open and a future end is no gap yet.
	w.do("GET", w.seriesQuery("")+"&from="+w.day.Add(15*time.Minute).Format(time.RFC3339)+"&to="+w.day.Add(45*time.Minute).Format(time.RFC3339), w.fsp, nil, 200, &d)
	if len(d.Readings) != 2 || d.Missing != 0 {
		t.Errorf("[00:15, 00:45): %+v", d)
	}
	now := time.Now().UTC().Truncate(15 * time.Minute)
	w.do("GET", w.seriesQuery("")+"&from="+now.Add(-time.Hour).Format(time.RFC3339)+"&to="+now.Add(2*time.Hour).Format(time.RFC3339), w.fsp, nil, 200, &d)
	if d.Missing != 4 && d.Missing != 5 { // 5 if a quarter hour ended during the test
		t.Errorf("gaps reaching into the future: %d missing, want the 4 ended quarter hours", d.Missing)
	}

	// 10,000 readings in one request.
	big := make([]map[string]any, 0, 10_000)
	for i := range 10_000 {
		big = append(big, map[string]any{"resource_id": w.unit, "quantity": "active_power", "flow": "export",
			"start": w.day.Add(time.Duration(i) * time.Second).Format(time.RFC3339), "resolution": "PT1S", "value": jsonNum(fmt.Sprintf("%d.%d", i%5000, i%10)), "unit": "W"})
	}
	res = ingestResult{}
	w.do("POST", "/v1/meter-readings", w.fsp, map[string]any{"readings": big}, 200, &res)
	if res.Inserted != 10_000 {
		t.Errorf("10,000 readings: %+v", res)
	}

	var series struct{ Items []map[string]any }
	w.do("GET", "/v1/meter-series?resource_id="+w.unit, w.fsp, nil, 200, &series)
	if len(series.Items) != 2 || series.Items[0]["resolution"] != "PT15M" || series.Items[0]["quantity"] != "active_energy" || series.Items[1]["resolution"] != "PT1S" {
		t.Errorf("series: %+v", series.Items)
	}
}

func (w *meterWorld) testCSV(t *testing.T) {
	// The DSO sends 1-second active energy of a metering point in CSV,
	// with the columns in another order.
	var b strings.Builder
	b.WriteString("start,resolution,metering_point_id,resource_id,quantity,flow,value,unit\n")
	t0 := w.day.Add(6 * time.Hour)
	for i := range 600 {
		fmt.Fprintf(&b, "%s,PT1S,%s,,active_energy,export,0.%04d,kWh\n", t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339), w.mpHH, i)
	}
	audit := w.auditCount()
	var res ingestResult
	w.do("POST", "/v1/meter-readings", w.dso, b.String(), 200, &res, "Content-Type", "text/csv; charset=utf-8")
	if res.Inserted != 600 || len(res.Series) != 1 || res.Series[0].MeteringPointID != w.mpHH {
		t.Fatalf("CSV ingestion: %+v", res)
	}
	w.do("POST", "/v1/meter-readings", w.dso, b.String(), 200, &res, "Content-Type", "text/csv")
	if res.Unchanged != 600 || res.Inserted != 0 {
		t.Errorf("CSV resend: %+v", res)
	}
	if got := w.auditCount(); got != audit+1 {
		t.Errorf("audit entries %d, want %d", got, audit+1)
	}
	// 0.0001 kWh = 0.1 Wh: kept exactly, not rounded away.
	var d seriesData
	w.do("GET", "/v1/meter-readings?metering_point_id="+w.mpHH+"&quantity=active_energy&flow=export&resolution=PT1S&from="+t0.Format(time.RFC3339)+
		"&to="+t0.Add(20*time.Minute).Format(time.RFC3339), w.consumer, nil, 200, &d)
	if len(d.Readings) != 600 || d.Readings[1].Value != "0.1" || d.Readings[599].Value != "59.9" || d.Missing != 600 || len(d.Gaps) != 1 {
		t.Errorf("CSV read back by the household: %d readings, %v %v, missing %d", len(d.Readings), d.Readings[1].Value, d.Readings[599].Value, d.Missing)
	}
}

// testBadInput: every bad request is refused with its own problem, and
// nothing of it is stored: each starts with a good new reading at 12:00,
// which must never show up.
func (w *meterWorld) testBadInput(t *testing.T) {
	// the day before the others, so that these slots are empty
	good := w.qh(48-96, "1")
	with := func(k, v string) map[string]any {
		r := w.qh(49-96, "1")
		if v == "" {
			delete(r, k)
		} else if k == "value" {
			r[k] = jsonNum(v)
		} else {
			r[k] = v
		}
		return r
	}
	body := func(rs ...map[string]any) map[string]any {
		return map[string]any{"readings": append([]map[string]any{good}, rs...)}
	}
	future := time.Now().UTC().Truncate(15 * time.Minute).Add(15 * time.Minute).Format(time.RFC3339)
	both := with("metering_point_id", w.mpOwn)
	atMP := with("resource_id", "")
	atMP["metering_point_id"] = w.mpOwn
	goodCSV := "metering_point_id,resource_id,quantity,flow,start,resolution,value,unit\n," + w.unit + ",active_energy,import," + w.day.Add(-12*time.Hour).Format(time.RFC3339) + ",PT15M,1,kWh\n"
	audit := w.auditCount()
	problem := func(rule, loc string) []string {
		return []string{`"type":"urn:flexhub:rule:` + rule + `"`, `"location":"` + loc + `"`}
	}
	w.run([]scenario{
		{name: "resource not operated by the sender", method: "POST", path: "/v1/meter-readings", token: w.fsp2, body: body(), wantStatus: 403,
			wantBody: problem("meter.not_operator", "body.readings[0].resource_id")},
		{name: "the DSO for a resource", method: "POST", path: "/v1/meter-readings", token: w.dso, body: body(), wantStatus: 403,
			wantBody: problem("meter.not_operator", "body.readings[0].resource_id")},
		{name: "an FSP for a metering point", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(atMP), wantStatus: 403,
			wantBody: problem("meter.not_operator", "body.readings[1].metering_point_id")},
		{name: "unknown resource", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("resource_id", flexhub.NewID())), wantStatus: 403,
			wantBody: problem("meter.not_operator", "body.readings[1].resource_id")},
		{name: "resource pending confirmation", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("resource_id", w.pendingUnit)), wantStatus: 422,
			wantBody: problem("meter.resource_not_active", "body.readings[1].resource_id")},
		{name: "future", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("start", future)), wantStatus: 422,
			wantBody: problem("meter.future", "body.readings[1].start")},
		{name: "misaligned", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("start", w.day.Add(7*time.Minute).Format(time.RFC3339))), wantStatus: 422,
			wantBody: append(problem("meter.misaligned", "body.readings[1].start"), "multiple of 900 s")},
		{name: "bad start", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("start", "yesterday")), wantStatus: 422,
			wantBody: problem("meter.start", "body.readings[1].start")},
		{name: "unknown unit", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("unit", "kWatt-hours")), wantStatus: 422,
			wantBody: problem("meter.unit", "body.readings[1].unit")},
		{name: "unit of another quantity", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("unit", "kW")), wantStatus: 422,
			wantBody: problem("meter.unit_mismatch", "body.readings[1].unit")},
		{name: "negative", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("value", "-0.5")), wantStatus: 422,
			wantBody: problem("meter.negative", "body.readings[1].value")},
		{name: "value not a JSON number", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("value", `"NaN"`)), wantStatus: 400,
			wantBody: problem("meter.malformed", "body.readings[1]")},
		{name: "CSV value not a number", method: "POST", path: "/v1/meter-readings", token: w.fsp, headers: []string{"Content-Type", "text/csv"},
			body: goodCSV + "," + w.unit + ",active_energy,import," + w.day.Add(-11*time.Hour).Format(time.RFC3339) + ",PT15M,NaN,kWh\n", wantStatus: 422,
			wantBody: append(problem("meter.value", "body.readings[1].value"), "CSV line 3")},
		{name: "both subjects", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(both), wantStatus: 422,
			wantBody: problem("meter.subject", "body.readings[1].resource_id")},
		{name: "resolution not dividing 15 minutes", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(with("resolution", "PT7S")), wantStatus: 422,
			wantBody: problem("meter.resolution", "body.readings[1].resolution")},
		{name: "two values for one reading", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: body(w.qh(48-96, "2")), wantStatus: 422,
			wantBody: problem("meter.duplicate", "body.readings[1].value")},
		{name: "empty", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: map[string]any{"readings": []any{}}, wantStatus: 422,
			wantBody: []string{"meter.empty"}},
		{name: "malformed JSON", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: `{"readings": [{"resource_id": "x",}]}`, wantStatus: 400,
			wantBody: append(problem("meter.malformed", "body.readings[0]"), "malformed JSON")},
		{name: "wrong JSON type", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: `{"readings": [{"quantity": 5}]}`, wantStatus: 400,
			wantBody: append(problem("meter.malformed", "body.readings[0].quantity"), "must be a JSON string")},
		{name: "unknown property", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: map[string]any{"readings": []any{good, map[string]any{"colour": "red"}}}, wantStatus: 400,
			wantBody: append(problem("meter.malformed", "body.readings[1]"), "colour")},
		{name: "not an object", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: `[1, 2]`, wantStatus: 400,
			wantBody: problem("meter.malformed", "body")},
		{name: "malformed CSV", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: goodCSV + "a,b,\"c\n", headers: []string{"Content-Type", "text/csv"}, wantStatus: 400,
			wantBody: append(problem("meter.malformed", "body"), "malformed CSV")},
		{name: "CSV with an unknown column", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: "resource,quantity\nx,y\n", headers: []string{"Content-Type", "text/csv"}, wantStatus: 400,
			wantBody: append(problem("meter.malformed", "body"), `unknown column \"resource\"`)},
		{name: "CSV with a bad reading names its line", method: "POST", path: "/v1/meter-readings", token: w.fsp,
			body: goodCSV + "," + w.unit + ",active_energy,import," + w.day.Add(-11*time.Hour).Format(time.RFC3339) + ",PT15M,1,kWatt\n", headers: []string{"Content-Type", "text/csv"}, wantStatus: 422,
			wantBody: append(problem("meter.unit", "body.readings[1].unit"), "CSV line 3")},
		{name: "more than 100,000 readings", method: "POST", path: "/v1/meter-readings", token: w.fsp, headers: []string{"Content-Type", "text/csv"},
			body: goodCSV + strings.Repeat(",,,,,,,\n", 100_000), wantStatus: 422, wantBody: []string{"meter.batch_size", "at most 100000"}},
		{name: "other content type", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: "<readings/>", headers: []string{"Content-Type", "application/xml"}, wantStatus: 415},
		{name: "too large", method: "POST", path: "/v1/meter-readings", token: w.fsp, body: `{"readings": [` + strings.Repeat(" ", 17<<20) + `]}`, wantStatus: 413,
			wantBody: []string{"too large"}},
		{name: "no key", method: "POST", path: "/v1/meter-readings", body: body(), wantStatus: 401},
	})
	if got := w.auditCount(); got != audit {
		t.Errorf("bad input wrote %d audit entries", got-audit)
	}
	var d seriesData
	w.do("GET", w.seriesQuery("")+"&from="+w.day.Add(-12*time.Hour).Format(time.RFC3339)+"&to="+w.day.Add(-11*time.Hour).Format(time.RFC3339), w.fsp, nil, 200, &d)
	if len(d.Readings) != 0 {
		t.Errorf("a refused request stored readings: %+v", d.Readings)
	}
}

func (w *meterWorld) testVisibility(t *testing.T) {
	q := w.seriesQuery("") + "&from=" + url.QueryEscape(w.day.Format(time.RFC3339)) + "&to=" + url.QueryEscape(w.day.Add(time.Hour).Format(time.RFC3339))
	w.run([]scenario{
		{name: "operating FSP", method: "GET", path: q, token: w.fsp, wantStatus: 200, wantBody: []string{`"readings":[{`}},
		{name: "DSO of the connection point", method: "GET", path: q, token: w.dso, wantStatus: 200, wantBody: []string{`"readings":[{`}},
		// The unit is behind a metering point whose data the FSP owns:
		// others need its consent (docs/CONSENT.md), and are told so.
		{name: "another FSP", method: "GET", path: q, token: w.fsp2, wantStatus: 403, wantBody: []string{"consent.none"}, notWantBody: []string{`"readings"`}},
		{name: "another household", method: "GET", path: q, token: w.consumer, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "another FSP lists series", method: "GET", path: "/v1/meter-series?resource_id=" + w.unit, token: w.fsp2, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "another FSP reads versions", method: "GET", path: w.seriesQuery("/versions") + "&start=" + w.day.Format(time.RFC3339), token: w.fsp2, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "a resource that does not exist", method: "GET", path: strings.Replace(q, w.unit, "01a216d9-3a4a-7e94-aad5-6fbe60fd05cb", 1), token: w.fsp2, wantStatus: 404},
		{name: "range too long", method: "GET", path: "/v1/meter-readings?resource_id=" + w.unit + "&quantity=active_energy&flow=import&resolution=PT1S&from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z",
			token: w.fsp, wantStatus: 422, wantBody: []string{"meter.range"}},
		{name: "unit of another quantity", method: "GET", path: q + "&unit=kW", token: w.fsp, wantStatus: 422, wantBody: []string{"meter.unit_mismatch", "query.unit"}},
		{name: "bad resolution", method: "GET", path: w.seriesQuery("")[:len(w.seriesQuery(""))-len("PT15M")] + "PT2H&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z",
			token: w.fsp, wantStatus: 422, wantBody: []string{"meter.resolution", "query.resolution"}},
	})
	// The owner's access log: the DSO's read on its legal basis, each
	// refused read with who and why; its own reads are not logged.
	var log struct {
		Items []flexhub.DataAccess `json:"items"`
	}
	w.do("GET", "/v1/data-access?limit=500", w.fsp, nil, 200, &log)
	count := map[string]int{}
	for _, a := range log.Items {
		if a.OwnerID != w.fspID || a.Scope != flexhub.ScopeMeterHistory {
			t.Errorf("access of another owner or scope in the FSP's log: %+v", a)
		}
		switch {
		case a.ReaderID == w.dsoID && a.Outcome == flexhub.AccessAllowed && a.Basis == flexhub.BasisDSO:
			count["dso"]++
		case a.ReaderID == w.fsp2ID && a.Outcome == flexhub.AccessRefused && strings.HasPrefix(a.Reason, "consent.none"):
			count["fsp2"]++
		case a.Outcome == flexhub.AccessRefused && a.ReaderID != w.fspID:
			count["household"]++
		default:
			t.Errorf("unexpected access in the owner's log: %+v", a)
		}
	}
	if count["dso"] != 1 || count["fsp2"] != 3 || count["household"] != 1 {
		t.Errorf("the owner's access log counts %v, want the DSO's read, fsp2's 3 refused reads and the household's 1", count)
	}
	// A reader sees its own reads, not the owner's whole log.
	w.do("GET", "/v1/data-access?reader_id=self", w.fsp2, nil, 200, &log)
	if len(log.Items) != 3 {
		t.Errorf("fsp2 sees %d of its reads, want 3", len(log.Items))
	}
	w.do("GET", "/v1/data-access?owner_id="+w.fspID, w.fsp2, nil, 403, nil)
}

// TestMeterValues: values are read from their decimal text exactly, in
// milli-units, and written back exactly.
func TestMeterValues(t *testing.T) {
	for _, c := range []struct {
		in   string
		unit string
		want int64
		rule string
	}{
		{"0", "W", 0, ""},
		{"1.2345", "kWh", 1_234_500, ""},
		{"0.0001", "kWh", 100, ""},
		{"0.1", "Wh", 100, ""},
		{"0.0005", "W", 1, ""}, // half a mW rounds up
		{"0.0004", "W", 0, ""},
		{"1e3", "W", 1_000_000, ""},
		{"2.5E-3", "MW", 2_500_000, ""},
		{"12.000000001", "Mvarh", 12_000_000_001, ""},
		{"-0", "W", 0, ""},
		{"-1", "W", 0, "meter.negative"},
		{"NaN", "W", 0, "meter.value"},
		{"1.2.3", "W", 0, "meter.value"},
		{"", "W", 0, "meter.value"},
		{"1e30", "W", 0, "meter.value_range"},
		{"20000000", "MWh", 0, "meter.value_range"},
	} {
		exp := map[string]int{"W": 3, "Wh": 3, "kWh": 6, "MW": 9, "MWh": 9, "Mvarh": 9}[c.unit]
		got, err := flexhub.ParseMeterValue("value", c.in, exp)
		if flexhub.ErrorRule(err) != c.rule || (c.rule == "" && got != c.want) {
			t.Errorf("%q %s: %d, %v; want %d, rule %q", c.in, c.unit, got, err, c.want, c.rule)
		}
	}
	for _, c := range []struct {
		milli int64
		unit  string
		want  string
	}{{1_234_500, "kWh", "1.2345"}, {100, "Wh", "0.1"}, {100, "kWh", "0.0001"}, {5_000, "W", "5"}, {0, "MW", "0"}, {1, "Mvar", "0.000000001"}} {
		if got := flexhub.FormatMeterValue(c.milli, c.unit); string(got) != c.want {
			t.Errorf("%d m%s in %s: %s, want %s", c.milli, c.unit, c.unit, got, c.want)
		}
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r := flexhub.MeterReading{ResourceID: flexhub.NewID(), Quantity: "active_power", Flow: "export", Start: "2026-05-01T11:59:50Z", Resolution: "PT5S", Value: "1.5", Unit: "kW"}
	if v, err := r.Parse("", now); err != nil || v.Value != 1_500_000 || v.Series.Resolution != 5*time.Second {
		t.Errorf("5-second reading: %+v %v", v, err)
	}
	r.Start = "2026-05-01T11:59:58Z" // ends 12:00:03, within the 5 s tolerance... but misaligned
	if _, err := r.Parse("", now); flexhub.ErrorRule(err) != "meter.misaligned" {
		t.Errorf("misaligned: %v", err)
	}
	r.Start = "2026-05-01T12:00:05Z" // ends 12:00:10
	if _, err := r.Parse("", now); flexhub.ErrorRule(err) != "meter.future" {
		t.Errorf("future: %v", err)
	}
	r.Start = "2026-05-01T12:00:00Z" // ends 12:00:05: within the tolerance
	if _, err := r.Parse("", now); err != nil {
		t.Errorf("end within the clock tolerance: %v", err)
	}
	for _, res := range []string{"PT0S", "PT7S", "PT0.5S", "PT16M", "PT1H", "15m"} {
		r.Resolution = flexhub.Duration(res)
		if _, err := r.Parse("", now); flexhub.ErrorRule(err) != "meter.resolution" {
			t.Errorf("resolution %s: %v", res, err)
		}
	}
}

// TestMeterGaps: missing intervals are merged into runs, and intervals
// that have not ended are no gap.
func TestMeterGaps(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	gaps, n := flexhub.MeterGaps([]time.Time{at(15), at(30), at(75)}, t0, at(120), 15*time.Minute, at(1000))
	if n != 5 || len(gaps) != 3 || !gaps[0].Start.Equal(t0) || gaps[0].Intervals != 1 || !gaps[1].Start.Equal(at(45)) || !gaps[1].End.Equal(at(75)) ||
		gaps[1].Intervals != 2 || !gaps[2].Start.Equal(at(90)) || gaps[2].Intervals != 2 {
		t.Errorf("gaps %+v, missing %d", gaps, n)
	}
	// from not aligned: the first interval starts at the next quarter hour;
	// now at 01:40: the interval 01:30-01:45 has not ended.
	gaps, n = flexhub.MeterGaps(nil, at(7), at(120), 15*time.Minute, at(100))
	if n != 5 || len(gaps) != 1 || !gaps[0].Start.Equal(at(15)) || !gaps[0].End.Equal(at(90)) {
		t.Errorf("unaligned from, now inside: %+v, missing %d", gaps, n)
	}
}

// testConcurrent: two senders posting the same new readings at once both
// succeed; each reading is stored once (on PostgreSQL the loser of the
// race retries and finds them unchanged).
func (w *meterWorld) testConcurrent(t *testing.T) {
	var readings []map[string]any
	for i := range 500 {
		readings = append(readings, map[string]any{"resource_id": w.unit, "quantity": "reactive_power", "flow": "import",
			"start": w.day.Add(time.Duration(i) * time.Minute).Format(time.RFC3339), "resolution": "PT1M", "value": jsonNum("12.5"), "unit": "kvar"})
	}
	results := make(chan ingestResult, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res ingestResult
			status, raw, _ := w.send("POST", "/v1/meter-readings", w.fsp, map[string]any{"readings": readings})
			if status != 200 || json.Unmarshal([]byte(raw), &res) != nil {
				t.Errorf("concurrent ingestion: %d %s", status, raw)
			}
			results <- res
		}()
	}
	wg.Wait()
	close(results)
	inserted, unchanged := 0, 0
	for r := range results {
		inserted, unchanged = inserted+r.Inserted, unchanged+r.Unchanged
	}
	if inserted != 500 || unchanged != 1500 {
		t.Errorf("4 concurrent identical requests: %d inserted, %d unchanged; want 500 and 1500", inserted, unchanged)
	}
}
