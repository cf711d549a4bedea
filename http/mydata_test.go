package http_test

import (
	"encoding/csv"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/greenbutton"
)

// TestMyData: bulk export and Download My Data (CSV and Green Button),
// each metering point checked and logged before the first byte, one
// refusal refusing the whole request; Green Button import of the
// Alliance's samples through the normal ingestion path. On SQLite and
// PostgreSQL.
func TestMyData(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		w := newConsentWorld(t, e)
		t.Run("export", func(t *testing.T) { testExport(t, w) })
		t.Run("import", func(t *testing.T) { testGreenButtonImport(t, w) })
	})
}

func (w *consentWorld) export(mps []string, format string) string {
	q := url.Values{"from": {w.day.Format(time.RFC3339)}, "to": {w.day.Add(24 * time.Hour).Format(time.RFC3339)}}
	for _, mp := range mps {
		q.Add("metering_point_id", mp)
	}
	if format != "" {
		q.Set("format", format)
	}
	return "/v1/meter-data/export?" + q.Encode()
}

// accessLog is the owner's log from seq after on.
func (w *consentWorld) accessLog(key, after string) []flexhub.DataAccess {
	var log struct {
		Items []flexhub.DataAccess `json:"items"`
	}
	w.do("GET", "/v1/data-access?limit=500&after="+after, key, nil, 200, &log)
	return log.Items
}

func (w *consentWorld) logCursor(key string) string {
	var log struct {
		NextCursor string `json:"next_cursor"`
	}
	w.do("GET", "/v1/data-access?limit=500", key, nil, 200, &log)
	for {
		var page struct {
			Items      []flexhub.DataAccess `json:"items"`
			NextCursor string               `json:"next_cursor"`
		}
		w.do("GET", "/v1/data-access?limit=500&after="+log.NextCursor, key, nil, 200, &page)
		if len(page.Items) == 0 {
			return log.NextCursor
		}
		log.NextCursor = page.NextCursor
	}
}

type csvRow struct{ mp, code, quantity, flow, res, start, end, value, unit string }

func parseExportCSV(t *testing.T, body string) []csvRow {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%.500s", err, body)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "metering_point_id,metering_point_code,quantity,flow,resolution,start,end,value,unit" {
		t.Fatalf("header: %v", recs[:min(1, len(recs))])
	}
	var out []csvRow
	for _, r := range recs[1:] {
		out = append(out, csvRow{r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]})
	}
	return out
}

// kwhToMWh reads an exported kWh value back to mWh, exactly.
func kwhToMWh(t *testing.T, v string) int64 {
	whole, frac, _ := strings.Cut(v, ".")
	if len(frac) < 3 || len(frac) > 6 {
		t.Fatalf("value %q: want 3 to 6 decimals", v)
	}
	frac += strings.Repeat("0", 6-len(frac))
	a, err1 := strconv.ParseInt(whole, 10, 64)
	b, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("value %q", v)
	}
	return a*1_000_000 + b
}

func testExport(t *testing.T, w *consentWorld) {
	start := w.logCursor(w.house)
	// No consent: refused, logged.
	w.run([]scenario{
		{name: "no consent", method: "GET", path: w.export([]string{w.mp1}, "csv"), token: w.agg, wantStatus: 403, wantBody: []string{"consent.none", w.mp1}},
		{name: "no metering point", method: "GET", path: "/v1/meter-data/export?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", token: w.agg, wantStatus: 422},
		{name: "bad format", method: "GET", path: w.export([]string{w.mp1}, "pdf"), token: w.house, wantStatus: 422},
		{name: "backwards range", method: "GET", path: "/v1/meter-data/export?metering_point_id=" + w.mp1 + "&from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", token: w.house, wantStatus: 422, wantBody: []string{"meter.range"}},
	})
	grant := w.consent(w.house, w.spec([]string{w.mp1}, "meter_history"), 201)

	// With consent: the CSV holds mp1's day, exactly.
	body, h := w.do("GET", w.export([]string{w.mp1}, "csv"), w.agg, nil, 200, nil)
	if !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	rows := parseExportCSV(t, body)
	if len(rows) != 96 {
		t.Fatalf("%d rows, want 96", len(rows))
	}
	var sum int64
	for i, r := range rows {
		if r.mp != w.mp1 || r.code != "MP-C1" || r.quantity != "active_energy" || r.flow != "import" || r.res != "PT15M" || r.unit != "kWh" {
			t.Fatalf("row %d: %+v", i, r)
		}
		if want := w.day.Add(time.Duration(i) * 15 * time.Minute); r.start != want.Format(time.RFC3339) || r.end != want.Add(15*time.Minute).Format(time.RFC3339) {
			t.Fatalf("row %d: %s to %s", i, r.start, r.end)
		}
		if r.value != "0.250" {
			t.Fatalf("row %d: value %q, want 0.250", i, r.value)
		}
		sum += kwhToMWh(t, r.value)
	}
	if sum != 24_000_000 {
		t.Errorf("sum %d mWh, want 24 kWh", sum)
	}
	// Green Button through Accept, with consent.
	gb, h := w.do("GET", w.export([]string{w.mp1}, ""), w.agg, nil, 200, nil, "Accept", "application/atom+xml")
	if h.Get("Content-Type") != "application/atom+xml" {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	checkFeed(t, gb, map[string]int64{w.mp1: 96 * 250_000})

	// A list with one metering point not covered: refused whole, naming it.
	w.run([]scenario{
		{name: "mixed list", method: "GET", path: w.export([]string{w.mp1, w.mp2}, "csv"), token: w.agg, wantStatus: 403,
			wantBody: []string{"consent.none", w.mp2, "metering_point_id[1]"}},
		{name: "mixed list, comma-separated", method: "GET", path: "/v1/meter-data/export?metering_point_id=" + w.mp1 + "," + w.otherMP +
			"&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", token: w.agg, wantStatus: 403, wantBody: []string{w.otherMP}},
	})
	// Revoked: refused, logged with the reason.
	w.do("POST", "/v1/consents/"+grant.ID+"/revoke", w.house, nil, 200, nil)
	w.run([]scenario{{name: "after revoke", method: "GET", path: w.export([]string{w.mp1}, "greenbutton"), token: w.agg, wantStatus: 403, wantBody: []string{"consent.revoked"}}})

	// The DSO exports on its legal basis.
	body, _ = w.do("GET", w.export([]string{w.mp1, w.mp2, w.otherMP}, "csv"), w.dso, nil, 200, nil)
	if n := len(parseExportCSV(t, body)); n != 3*96 {
		t.Errorf("the DSO's export has %d rows, want %d", n, 3*96)
	}

	// The owner downloads its own: both metering points, not the other
	// household's, not logged.
	body, _ = w.do("GET", "/v1/me/data?format=csv&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", w.house, nil, 200, nil)
	perMP := map[string]int{}
	for _, r := range parseExportCSV(t, body) {
		perMP[r.mp]++
	}
	if len(perMP) != 2 || perMP[w.mp1] != 96 || perMP[w.mp2] != 96 {
		t.Errorf("own download: %v", perMP)
	}
	gb, _ = w.do("GET", "/v1/me/data?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", w.house, nil, 200, nil, "Accept", "application/atom+xml")
	checkFeed(t, gb, map[string]int64{w.mp1: 96 * 250_000, w.mp2: 96 * 250_000})
	xmllintESPI(t, gb)
	w.do("GET", "/v1/me/data?format=csv", w.dso, nil, 422, nil) // not a consumer: names no metering points

	// The log: the aggregator's allowed reads (one per metering point,
	// with channel and format), the refusals (the mixed list's allowed
	// metering point not logged: nothing was read), the DSO's three
	// reads; the owner's own none.
	var got []string
	for _, a := range w.accessLog(w.house, start) {
		if a.ReaderID == w.houseID {
			t.Errorf("the owner's own download is logged: %+v", a)
		}
		e := a.MeteringPointID + " " + a.Channel + " " + a.Outcome + " " + a.Basis
		if a.Outcome == flexhub.AccessRefused {
			e = a.MeteringPointID + " " + a.Channel + " " + a.Outcome + " " + strings.SplitN(a.Reason, ":", 2)[0]
		}
		if a.Outcome == flexhub.AccessAllowed && !strings.Contains(a.What, "2026-03-01T00:00:00Z to 2026-03-02T00:00:00Z") {
			t.Errorf("what %q does not say the range", a.What)
		}
		got = append(got, e)
	}
	want := []string{
		w.mp1 + " export refused consent.none",
		w.mp1 + " export allowed consent",
		w.mp1 + " green_button allowed consent",
		w.mp2 + " export refused consent.none",
		w.mp1 + " green_button refused consent.revoked",
		w.mp1 + " export allowed legal_dso",
		w.mp2 + " export allowed legal_dso",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("access log:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// checkFeed imports a Green Button export and compares each usage
// point's sum of mWh.
func checkFeed(t *testing.T, doc string, want map[string]int64) {
	t.Helper()
	im, err := greenbutton.Import(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("the export does not import: %v", err)
	}
	got := map[string]int64{}
	for _, up := range im.UsagePoints {
		for _, mr := range up.MeterReadings {
			if mr.ReadingType.Flow != "import" || mr.ReadingType.IntervalLength != 900 {
				t.Errorf("usage point %s: reading type %+v", up.ResourceID, mr.ReadingType)
			}
			for _, r := range mr.Readings {
				got[up.ResourceID] += r.Value
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("usage points %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("usage point %s: %d mWh, want %d", k, got[k], v)
		}
	}
}

// gbConformance is the Green Button conformance folder (schemas,
// samples), beside the repository.
func gbConformance(t *testing.T) string {
	d := os.Getenv("FLEXHUB_GREENBUTTON_CONFORMANCE")
	if d == "" {
		d, _ = filepath.Abs("../../shared/conformance/greenbutton")
	}
	if _, err := os.Stat(filepath.Join(d, "catalog.xml")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Green Button conformance files: %v", err)
		}
		t.Skipf("no Green Button conformance files: %v", err)
	}
	return d
}

// xmllintESPI validates a document against espi.xsd with the strict
// atom.xsd, as greenbutton's schema test does.
func xmllintESPI(t *testing.T, doc string) {
	t.Helper()
	dir := gbConformance(t)
	lint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmllint not installed")
		}
		t.Log("xmllint not installed: schema validation skipped")
		return
	}
	f := filepath.Join(t.TempDir(), "export.xml")
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lint, "--noout", "--nonet", "--schema", "ESPI_4.0/espi.xsd", f)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XML_CATALOG_FILES=catalog.xml")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
}

func testGreenButtonImport(t *testing.T, w *consentWorld) {
	dir := gbConformance(t)
	var mp struct {
		ConnectionPointID string `json:"connection_point_id"`
	}
	w.do("GET", "/v1/metering-points/"+w.mp1, w.dso, nil, 200, &mp)
	files, _ := filepath.Glob(filepath.Join(dir, "samples", "test_usage_data*.xml"))
	if len(files) == 0 {
		t.Fatal("no samples with interval data")
	}
	for i, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := greenbutton.Import(strings.NewReader(string(doc)))
		if err != nil {
			t.Fatal(err)
		}
		var target struct{ ID string }
		w.do("POST", "/v1/metering-points", w.dso, map[string]any{"code": "MP-GB" + strconv.Itoa(i), "connection_point_id": mp.ConnectionPointID,
			"consumer_id": w.houseID}, 201, &target)
		path := "/v1/meter-data/greenbutton?metering_point_id=" + target.ID
		// The consumer is not the metering point's data sender.
		w.do("POST", path, w.house, string(doc), 403, nil, "Content-Type", "application/atom+xml")
		var res struct {
			Received int `json:"received"`
			Inserted int `json:"inserted"`
		}
		w.do("POST", path, w.dso, string(doc), 200, &res, "Content-Type", "application/atom+xml")
		if res.Received != ref.Readings() || res.Inserted != ref.Readings() {
			t.Errorf("%s: received %d, inserted %d; the feed has %d readings", filepath.Base(f), res.Received, res.Inserted, ref.Readings())
		}
		// Read back through the API: count and sum per series.
		for _, up := range ref.UsagePoints {
			for _, mr := range up.MeterReadings {
				var lo, hi time.Time
				var sum int64
				for _, r := range mr.Readings {
					if lo.IsZero() || r.Start.Before(lo) {
						lo = r.Start
					}
					if e := r.Start.Add(r.Duration); e.After(hi) {
						hi = e
					}
					sum += r.Value
				}
				if len(mr.Readings) == 0 {
					continue
				}
				var data struct {
					Readings []struct {
						Value json.Number `json:"value"`
					} `json:"readings"`
				}
				w.do("GET", "/v1/meter-readings?metering_point_id="+target.ID+"&quantity=active_energy&flow="+mr.ReadingType.Flow+"&resolution=PT15M&unit=Wh&from="+
					url.QueryEscape(lo.Format(time.RFC3339))+"&to="+url.QueryEscape(hi.Format(time.RFC3339)), w.dso, nil, 200, &data)
				var got int64
				for _, r := range data.Readings {
					whole, frac, _ := strings.Cut(r.Value.String(), ".")
					frac += strings.Repeat("0", 3-len(frac))
					a, _ := strconv.ParseInt(whole, 10, 64)
					b, _ := strconv.ParseInt(frac, 10, 64)
					got += a*1000 + b
				}
				if len(data.Readings) != len(mr.Readings) || got != sum {
					t.Errorf("%s: read back %d readings, %d mWh; the feed has %d, %d mWh", filepath.Base(f), len(data.Readings), got, len(mr.Readings), sum)
				}
			}
		}
		// A resend changes nothing.
		w.do("POST", path, w.dso, string(doc), 200, &res, "Content-Type", "application/atom+xml")
		if res.Inserted != 0 {
			t.Errorf("%s: a resend inserted %d", filepath.Base(f), res.Inserted)
		}
	}
	w.run([]scenario{
		{name: "not a feed", method: "POST", path: "/v1/meter-data/greenbutton?metering_point_id=" + w.mp1, token: w.dso, body: "<feed", wantStatus: 422,
			headers: []string{"Content-Type", "application/atom+xml"}, wantBody: []string{"greenbutton.invalid"}},
	})
}

// TestConsumerOverview: after an activation of a household's battery is
// settled, the household's overview shows its metering point with DSO,
// supplier and BRP, the units there with their FSP, the order, its
// verification and the statement lines naming the unit (with the note
// that flexhub does not know the household's share), its consents and
// the latest reads of its data. On SQLite and PostgreSQL.
func TestConsumerOverview(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testConsumerOverview(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) { testConsumerOverview(t, newEnvOn(t, openPostgres(t))) })
}

func testConsumerOverview(t *testing.T, e *env) {
	w := newSecondaryWorldOn(t, e)
	brp, _ := w.party("ov-brp", "brp")
	supplier, _ := w.party("ov-supplier", "supplier")
	var prod flexhub.Product
	w.do("GET", "/v1/products/"+w.product, w.tsoKey, nil, 200, &prod)
	body := pqProductBody("mFRR")
	body["baseline_method"] = "x_of_y"
	body["baseline"] = map[string]any{"x": 2, "y": 3, "day_type": "any"}
	body["settlement"] = map[string]any{"activation_price": eur("100")}
	w.do("PUT", "/v1/products/"+w.product, w.tsoKey, body, 200, nil, "If-Match", strconv.Quote(strconv.FormatInt(prod.Version, 10)))
	var order flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &order)
	w.do("POST", "/v1/activation-orders/"+order.ID+"/status", w.fspAKey, map[string]any{"status": "accepted"}, 200, nil)
	w.advance(w.day.Add(time.Hour).Sub(w.now()) + time.Minute)
	var readings []map[string]any
	for back := 1; back <= 3; back++ {
		for i := range 3 {
			readings = append(readings, kwh(w.unitA, w.day.AddDate(0, 0, -back).Add(time.Duration(i)*15*time.Minute), "60"))
		}
	}
	readings = append(readings, kwh(w.unitA, w.day, "20"), kwh(w.unitA, w.day.Add(15*time.Minute), "25"))
	w.do("POST", "/v1/meter-readings", w.fspAKey, map[string]any{"readings": readings}, 200, nil)
	var unit flexhub.Resource
	w.do("GET", "/v1/resources/"+w.unitA, w.fspAKey, nil, 200, &unit)
	var mp flexhub.MeteringPoint
	w.do("GET", "/v1/metering-points/"+unit.MeteringPointID, w.dsoKey, nil, 200, &mp)
	w.do("POST", "/v1/metering-points/"+mp.ID+"/switches", w.dsoKey, map[string]any{"brp_id": brp, "supplier_id": supplier, "valid_from": w.day.AddDate(0, 0, -7)},
		200, nil, "If-Match", strconv.Quote(strconv.FormatInt(mp.Version, 10)))
	var run flexhub.SettlementRun
	w.do("POST", "/v1/settlement-runs", w.tsoKey, map[string]any{"period_start": w.day.Truncate(24 * time.Hour), "period_end": w.day.Add(time.Hour)}, 201, &run)
	if len(run.Verifications) != 1 || len(run.Statements) != 1 {
		t.Fatalf("run %+v", run)
	}
	var st flexhub.Statement
	w.do("GET", "/v1/settlement-statements/"+run.Statements[0].StatementID, w.fspAKey, nil, 200, &st)
	var want []flexhub.StatementLine
	for _, l := range st.Lines {
		if l.ResourceID == w.unitA {
			want = append(want, l)
		}
	}
	// The household's data: a consent to FSP A, and the DSO reads the
	// unit's series (logged).
	w.do("POST", "/v1/consents", w.consumerKey, map[string]any{"data_user_id": w.fspB, "metering_point_ids": []string{mp.ID}, "scopes": []string{"meter_history"},
		"purpose": "an offer", "valid_from": w.now().Add(-time.Minute), "valid_to": w.now().Add(24 * time.Hour)}, 201, nil)
	w.do("GET", "/v1/meter-readings?resource_id="+w.unitA+"&quantity=active_energy&flow=import&resolution=PT15M&from="+
		url.QueryEscape(w.day.Format(time.RFC3339))+"&to="+url.QueryEscape(w.day.Add(time.Hour).Format(time.RFC3339)), w.dsoKey, nil, 200, nil)

	var ov struct {
		ConsumerID     string `json:"consumer_id"`
		MeteringPoints []struct {
			ID       string `json:"id"`
			DSO      struct{ ID, Name string }
			Supplier *struct{ ID, Name string }
			BRP      *struct{ ID, Name string }
		} `json:"metering_points"`
		Resources []struct {
			ID  string
			FSP struct{ ID, Name string }
		} `json:"resources"`
		Orders []struct {
			ID             string
			ResourceID     string              `json:"resource_id"`
			Status         string              `json:"status"`
			SystemOperator struct{ ID string } `json:"system_operator"`
		} `json:"activation_orders"`
		Verifications []struct {
			OrderID   string `json:"order_id"`
			Delivered int64  `json:"delivered"`
			Verdict   string `json:"verdict"`
		} `json:"verifications"`
		Earnings []struct {
			StatementID string                `json:"statement_id"`
			Line        flexhub.StatementLine `json:"line"`
		} `json:"fsp_earnings"`
		Note         string               `json:"fsp_earnings_note"`
		Consents     []flexhub.Consent    `json:"consents"`
		LastAccesses []flexhub.DataAccess `json:"last_accesses"`
	}
	w.do("GET", "/v1/me/overview", w.consumerKey, nil, 200, &ov)
	if ov.ConsumerID != w.consumer {
		t.Errorf("consumer %s", ov.ConsumerID)
	}
	var found bool
	for _, m := range ov.MeteringPoints {
		if m.ID == mp.ID {
			found = true
			if m.DSO.ID != w.dso || m.DSO.Name != "pq-dso" || m.Supplier == nil || m.Supplier.ID != supplier || m.BRP == nil || m.BRP.ID != brp {
				t.Errorf("metering point %+v", m)
			}
		}
	}
	if !found {
		t.Errorf("the unit's metering point is not in the overview: %+v", ov.MeteringPoints)
	}
	fsps := map[string]string{}
	for _, r := range ov.Resources {
		fsps[r.ID] = r.FSP.ID
	}
	if fsps[w.unitA] != w.fspA || fsps[w.unitB] != w.fspB || fsps[w.unitC] != w.fspC {
		t.Errorf("resources and their FSPs: %v", fsps)
	}
	if len(ov.Orders) != 1 || ov.Orders[0].ID != order.ID || ov.Orders[0].ResourceID != w.unitA || ov.Orders[0].SystemOperator.ID != w.tso {
		t.Errorf("orders %+v", ov.Orders)
	}
	var v flexhub.Verification
	w.do("GET", "/v1/verifications/"+run.Verifications[0].VerificationID, w.fspAKey, nil, 200, &v)
	if len(ov.Verifications) != 1 || ov.Verifications[0].OrderID != order.ID || ov.Verifications[0].Delivered != v.Delivered || ov.Verifications[0].Verdict != v.Verdict {
		t.Errorf("verifications %+v, want delivered %d %s", ov.Verifications, v.Delivered, v.Verdict)
	}
	if len(want) == 0 || len(ov.Earnings) != len(want) {
		t.Fatalf("earnings %+v, want the statement's %d lines naming the unit", ov.Earnings, len(want))
	}
	for i, l := range want {
		if ov.Earnings[i].StatementID != st.ID || ov.Earnings[i].Line.Amount != l.Amount || ov.Earnings[i].Line.Kind != l.Kind {
			t.Errorf("earning %d: %+v, want %+v", i, ov.Earnings[i], l)
		}
	}
	if !strings.Contains(ov.Note, "does not know") {
		t.Errorf("note %q", ov.Note)
	}
	if len(ov.Consents) != 1 || ov.Consents[0].DataUserID != w.fspB {
		t.Errorf("consents %+v", ov.Consents)
	}
	if n := len(ov.LastAccesses); n == 0 || ov.LastAccesses[n-1].ReaderID != w.dso || ov.LastAccesses[n-1].Basis != flexhub.BasisDSO {
		t.Errorf("last accesses %+v", ov.LastAccesses)
	}
	// Only a consumer has an overview.
	w.do("GET", "/v1/me/overview", w.fspAKey, nil, 403, nil)
}
