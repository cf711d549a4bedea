package http_test

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/postgres/pgtest"
)

// Settlement through the API, on SQLite and on PostgreSQL: the cleared
// market of smWorld (FSP A owes 200 kW in three quarter hours from w.day
// at 40 EUR/MW/h), two activation orders, meter data over REST, runs.
func TestSettlementSQLite(t *testing.T) { settlementScenario(t, newEnv(t)) }

func TestSettlementPostgres(t *testing.T) {
	settlementScenario(t, newEnvOn(t, pgtest.Open(t, "fh_settle")))
}

// kwh is one 15-minute active energy import reading of a resource.
func kwh(resource string, start time.Time, v string) map[string]any {
	return map[string]any{"resource_id": resource, "quantity": "active_energy", "flow": "import", "start": start,
		"resolution": "PT15M", "value": v, "unit": "kWh"}
}

func settlementScenario(t *testing.T, e *env) {
	w := newSecondaryWorldOn(t, e)
	brp, brpKey := w.party("st-brp", "brp")
	_, brp2Key := w.party("st-brp-two", "brp")
	supplier, supplierKey := w.party("st-supplier", "supplier")
	_, isrKey := w.party("st-isr", "imbalance_settlement_responsible")

	// The product settles on a high 2 of 3 days baseline, pays 100 EUR/MWh
	// for activations (the award bought capacity only) and tells the BRP.
	var prod flexhub.Product
	w.do("GET", "/v1/products/"+w.product, w.tsoKey, nil, 200, &prod)
	body := pqProductBody("mFRR")
	body["baseline_method"] = "x_of_y"
	body["baseline"] = map[string]any{"x": 2, "y": 3, "day_type": "any"}
	body["settlement"] = map[string]any{"activation_price": eur("100"), "notify_brp": true}
	w.do("PUT", "/v1/products/"+w.product, w.tsoKey, body, 200, nil, "If-Match", fmt.Sprintf(`"%d"`, prod.Version))

	// Two orders before delivery: 150 kW then 200 kW in the first two
	// quarter hours (orderBody), and 200 kW in the third.
	var o1, o2 flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o1)
	w.do("POST", "/v1/activation-orders", w.tsoKey, map[string]any{"type": "activate", "obligation_id": w.obligation.ID, "setpoints": []map[string]any{
		{"start": w.day.Add(30 * time.Minute), "end": w.day.Add(45 * time.Minute), "quantity": pqKW(200)}}}, 201, &o2)
	for _, o := range []flexhub.ActivationOrder{o1, o2} {
		w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "accepted"}, 200, nil)
	}
	w.advance(w.day.Add(time.Hour).Sub(w.now()) + time.Minute) // delivery is over
	w.advance(time.Second)

	// Meter data over REST: the three days before (import in kWh per
	// quarter hour, 17:00, 17:15, 17:30) and the event, where the third
	// quarter hour's reading never arrives.
	history := map[int][3]string{1: {"60", "60", "60"}, 2: {"52", "70", "60"}, 3: {"40", "40", "40"}}
	var readings []map[string]any
	for back, vals := range history {
		d := w.day.AddDate(0, 0, -back)
		for i, v := range vals {
			readings = append(readings, kwh(w.unitA, d.Add(time.Duration(i)*15*time.Minute), v))
		}
	}
	readings = append(readings, kwh(w.unitA, w.day, "18.5"), kwh(w.unitA, w.day.Add(15*time.Minute), "25"))
	w.do("POST", "/v1/meter-readings", w.fspAKey, map[string]any{"readings": readings}, 200, nil)

	period := map[string]any{"period_start": w.day.Truncate(24 * time.Hour), "period_end": w.day.Add(time.Hour)}
	statements := func(key, query string) []flexhub.Statement {
		t.Helper()
		var l struct{ Items []flexhub.Statement }
		w.do("GET", "/v1/settlement-statements"+query, key, nil, 200, &l)
		return l.Items
	}

	// The unit's metering point has no BRP yet: the run is refused, naming
	// it, and nothing is stored.
	var unit flexhub.Resource
	w.do("GET", "/v1/resources/"+w.unitA, w.fspAKey, nil, 200, &unit)
	audit := w.auditCount()
	w.run([]scenario{{name: "a metering point without a BRP", method: "POST", path: "/v1/settlement-runs", token: w.tsoKey, body: period,
		wantStatus: 422, wantBody: []string{rule("settlement.no_brp"), unit.MeteringPointID}}})
	if n := w.auditCount(); n != audit || len(statements(w.tsoKey, "")) != 0 {
		t.Fatalf("a refused run left %d audit entries and %d statements", n-audit, len(statements(w.tsoKey, "")))
	}
	var mp flexhub.MeteringPoint
	w.do("GET", "/v1/metering-points/"+unit.MeteringPointID, w.dsoKey, nil, 200, &mp)
	w.do("POST", "/v1/metering-points/"+mp.ID+"/switches", w.dsoKey, map[string]any{"brp_id": brp, "supplier_id": supplier, "valid_from": w.day.AddDate(0, 0, -7)},
		200, nil, "If-Match", fmt.Sprintf(`"%d"`, mp.Version))

	// Bad input: specific problems, nothing stored.
	audit = w.auditCount()
	bad := func(name, token string, body any, status int, want ...string) scenario {
		return scenario{name: name, method: "POST", path: "/v1/settlement-runs", token: token, body: body, wantStatus: status, wantBody: want}
	}
	w.run([]scenario{
		bad("end before start", w.tsoKey, map[string]any{"period_start": w.day, "period_end": w.day.Add(-time.Hour)}, 422, rule("settlement.period"), "must be after period_start"),
		bad("more than 31 days", w.tsoKey, map[string]any{"period_start": w.day.AddDate(0, 0, -40), "period_end": w.day}, 422, rule("settlement.period"), "at most 31 days"),
		bad("in the future", w.tsoKey, map[string]any{"period_start": w.day, "period_end": w.day.AddDate(0, 0, 2)}, 422, rule("settlement.period"), "in the future"),
		bad("off the grid", w.tsoKey, map[string]any{"period_start": w.day.Add(time.Minute), "period_end": w.day.Add(time.Hour)}, 422, "period_start", "15-minute grid"),
		bad("missing end", w.tsoKey, map[string]any{"period_start": w.day}, 422, "period_end"),
		bad("not a system operator", w.fspAKey, period, 403, "tso or dso"),
		bad("not authenticated", "", period, 401),
	})
	if n := w.auditCount(); n != audit {
		t.Fatalf("refused runs wrote %d audit entries", n-audit)
	}

	// The run.
	var run flexhub.SettlementRun
	w.do("POST", "/v1/settlement-runs", w.tsoKey, period, 201, &run)
	if len(run.Verifications) != 2 || len(run.Statements) != 1 || run.Statements[0].Outcome != flexhub.StatementIssued || run.Adjustments != 2 {
		t.Fatalf("run %+v", run)
	}
	var v1, v2 flexhub.Verification
	for _, rv := range run.Verifications {
		var v flexhub.Verification
		w.do("GET", "/v1/verifications/"+rv.VerificationID, w.fspAKey, nil, 200, &v)
		switch v.OrderID {
		case o1.ID:
			v1 = v
		case o2.ID:
			v2 = v
		}
	}
	// Order 1: baseline = mean of the two highest days in its window
	// (day −1: 120 kWh, day −2: 122 kWh; day −3's 80 is left out):
	// 56 and 65 kWh; measured 18.5 and 25; delivered 37.5 (ordered 37.5)
	// and 40 (ordered 50: under, beyond the 10 % tolerance).
	mwh := func(kwh float64) int64 { return int64(kwh * 1_000_000) }
	want := []struct{ ordered, baseline, measured, delivered int64 }{
		{mwh(37.5), mwh(56), mwh(18.5), mwh(37.5)},
		{mwh(50), mwh(65), mwh(25), mwh(40)},
	}
	if len(v1.Intervals) != 2 || v1.Verdict != flexhub.VerifyUnder || v1.Ordered != mwh(87.5) || v1.Delivered != mwh(77.5) || v1.BaselineMethod != "x_of_y" {
		t.Fatalf("verification of order 1: %+v", v1)
	}
	for i, iv := range v1.Intervals {
		if iv.Ordered != want[i].ordered || *iv.Baseline != want[i].baseline || *iv.Measured != want[i].measured || iv.Delivered != want[i].delivered {
			t.Errorf("order 1 interval %d: ordered %d baseline %d measured %d delivered %d, want %+v", i, iv.Ordered, *iv.Baseline, *iv.Measured, iv.Delivered, want[i])
		}
	}
	if days := strings.Join(v1.BaselineDays, ","); days != w.day.AddDate(0, 0, -2).Format(time.DateOnly)+","+w.day.AddDate(0, 0, -1).Format(time.DateOnly) &&
		days != w.day.AddDate(0, 0, -1).Format(time.DateOnly)+","+w.day.AddDate(0, 0, -2).Format(time.DateOnly) {
		t.Errorf("baseline days %v, want the two days before", v1.BaselineDays)
	}
	// Order 2: no reading in its quarter hour: no_data, counted as not
	// delivered (the product's default missing_data rule), nothing made up.
	if v2.Verdict != flexhub.VerifyNoData || v2.MissingData != flexhub.MissingNotDelivered || len(v2.Intervals) != 1 || v2.Intervals[0].Measured != nil ||
		v2.Intervals[0].Delivered != 0 || v2.Intervals[0].Excluded || v2.Delivered != 0 {
		t.Fatalf("verification of order 2: %+v", v2)
	}

	// The statement, by hand: availability 3 × 0.2 MW × 40 EUR/MW/h ×
	// 0.25 h = 3 × 2.00; activation 37.5 kWh and 40 kWh at 100 EUR/MWh =
	// 3.75 + 4.00; penalties (50 − 40 − 5) kWh and (50 − 0 − 5) kWh at
	// 100 % of 100 EUR/MWh = −0.50 − 4.50; total 8.75.
	var st flexhub.Statement
	w.do("GET", "/v1/settlement-statements/"+run.Statements[0].StatementID, w.fspAKey, nil, 200, &st)
	checkStatement(t, st, "6.00", "7.75", "-5.00", "8.75")
	if st.StatementVersion != 1 || st.Supersedes != "" || st.Difference != nil || st.FSPID != w.fspA || st.SystemOperatorID != w.tso || st.Currency != "EUR" {
		t.Errorf("statement %+v", st)
	}
	kinds := map[string]int{}
	for _, l := range st.Lines {
		kinds[l.Kind]++
		switch l.Kind {
		case flexhub.LineAvailability:
			if l.AwardID != w.obligation.AwardID || l.ObligationID != w.obligation.ID || l.Amount.Amount != "2.00" {
				t.Errorf("availability line %+v", l)
			}
		default:
			if l.VerificationID == "" || (l.OrderID != o1.ID && l.OrderID != o2.ID) || l.ObligationID != w.obligation.ID {
				t.Errorf("%s line without its sources: %+v", l.Kind, l)
			}
		}
	}
	noData := false
	for _, l := range st.Lines {
		if l.Kind == flexhub.LinePenalty && l.OrderID == o2.ID {
			noData = l.Quantity == mwh(45) && l.Amount.Amount == "-4.50" && strings.Contains(l.Note, "counted as not delivered")
		}
	}
	if !noData {
		t.Errorf("no penalty line for order 2 saying its missing data counted as not delivered: %+v", st.Lines)
	}
	if kinds[flexhub.LineAvailability] != 3 || kinds[flexhub.LineActivation] != 2 || kinds[flexhub.LinePenalty] != 2 {
		t.Errorf("lines by kind %v", kinds)
	}

	// BRP adjustments: per ISP, adding up exactly to what was delivered.
	var adjs struct{ Items []flexhub.ImbalanceAdjustment }
	w.do("GET", "/v1/imbalance-adjustments?brp_id=self", brpKey, nil, 200, &adjs)
	var sum int64
	for _, a := range adjs.Items {
		sum += a.Volume
		if a.BRPID != brp || a.SupplierID != supplier || a.MeteringPointID != mp.ID || a.End.Sub(a.Start) != 15*time.Minute || a.RunID != run.ID {
			t.Errorf("adjustment %+v", a)
		}
	}
	if len(adjs.Items) != 2 || sum != v1.Delivered+v2.Delivered {
		t.Errorf("%d adjustments summing to %d, delivered %d", len(adjs.Items), sum, v1.Delivered+v2.Delivered)
	}
	// As CSV for the imbalance settlement responsible, who sees them all.
	status, raw, h := w.send("GET", "/v1/imbalance-adjustments?run_id="+run.ID, isrKey, nil, "Accept", "text/csv")
	rows, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || err != nil || len(rows) != 3 {
		t.Fatalf("CSV: %d %s %v: %s", status, h.Get("Content-Type"), err, raw)
	}
	var csvSum int64
	for _, r := range rows[1:] {
		n, _ := strconv.ParseInt(r[7], 10, 64)
		csvSum += n
	}
	if rows[0][7] != "volume_mwh" || csvSum != sum {
		t.Errorf("CSV volumes sum to %d, want %d: %v", csvSum, sum, rows)
	}

	// Who sees what.
	w.run([]scenario{
		{name: "the TSO reads its run", method: "GET", path: "/v1/settlement-runs/" + run.ID, token: w.tsoKey, wantStatus: 200, wantBody: []string{st.ID}},
		{name: "the FSP does not", method: "GET", path: "/v1/settlement-runs/" + run.ID, token: w.fspAKey, wantStatus: 404},
		{name: "the TSO reads the statement", method: "GET", path: "/v1/settlement-statements/" + st.ID, token: w.tsoKey, wantStatus: 200},
		{name: "another FSP does not", method: "GET", path: "/v1/settlement-statements/" + st.ID, token: w.fspBKey, wantStatus: 404},
		{name: "nor the DSO", method: "GET", path: "/v1/settlement-statements/" + st.ID, token: w.dsoKey, wantStatus: 404},
		{name: "nor lists it", method: "GET", path: "/v1/settlement-statements", token: w.fspBKey, wantStatus: 200, wantBody: []string{`"items":[]`}},
		{name: "nor lists another FSP's", method: "GET", path: "/v1/settlement-statements?fsp_id=" + w.fspA, token: w.fspBKey, wantStatus: 403},
		{name: "the BRP reads the verification (notify_brp)", method: "GET", path: "/v1/verifications/" + v1.ID, token: brpKey, wantStatus: 200},
		{name: "and lists it", method: "GET", path: "/v1/verifications?brp_id=self", token: brpKey, wantStatus: 200, wantBody: []string{v1.ID}},
		{name: "another BRP does not", method: "GET", path: "/v1/verifications/" + v1.ID, token: brp2Key, wantStatus: 404},
		{name: "nor sees its adjustments", method: "GET", path: "/v1/imbalance-adjustments", token: brp2Key, wantStatus: 200, wantBody: []string{`"items":[]`}},
		{name: "another FSP sees no verification", method: "GET", path: "/v1/verifications/" + v2.ID, token: w.fspBKey, wantStatus: 404},
		{name: "the supplier sees its adjustments", method: "GET", path: "/v1/imbalance-adjustments?format=csv", token: supplierKey, wantStatus: 200, wantBody: []string{mp.ID}},
		{name: "the TSO lists the verifications of its run", method: "GET", path: "/v1/verifications?run_id=" + run.ID, token: w.tsoKey, wantStatus: 200, wantBody: []string{v1.ID, v2.ID}},
		{name: "a bad time filter", method: "GET", path: "/v1/imbalance-adjustments?from=yesterday", token: brpKey, wantStatus: 422, wantBody: []string{"query.from"}},
		{name: "the FSP was told", method: "GET", path: "/v1/notifications?limit=500", token: w.fspAKey, wantStatus: 200, wantBody: []string{flexhub.NotifyStatementIssued, st.ID}},
		{name: "the BRP was told", method: "GET", path: "/v1/notifications?limit=500", token: brpKey, wantStatus: 200,
			wantBody: []string{flexhub.NotifyImbalanceAdjustment, flexhub.NotifyVerification, run.ID}},
		{name: "the supplier was told", method: "GET", path: "/v1/notifications?limit=500", token: supplierKey, wantStatus: 200, wantBody: []string{flexhub.NotifyImbalanceAdjustment}},
	})

	// The same run again: the same numbers, no new version.
	var again flexhub.SettlementRun
	w.do("POST", "/v1/settlement-runs", w.tsoKey, period, 201, &again)
	if again.ID == run.ID || len(again.Statements) != 1 || again.Statements[0].Outcome != flexhub.StatementUnchanged || again.Statements[0].StatementID != st.ID {
		t.Fatalf("identical re-run %+v", again.Statements)
	}
	if all := statements(w.fspAKey, "?versions=all"); len(all) != 1 {
		t.Fatalf("%d statements after an identical re-run, want 1", len(all))
	}

	// A corrected reading (25 → 30 kWh measured in the second quarter
	// hour: 35 kWh delivered) makes a new version with the difference:
	// activation 3.75 + 3.50, penalties −1.00 − 4.50, total 7.75: −1.00.
	w.do("POST", "/v1/meter-readings", w.fspAKey, map[string]any{"readings": []any{kwh(w.unitA, w.day.Add(15*time.Minute), "30")}}, 200, nil)
	var revised flexhub.SettlementRun
	w.do("POST", "/v1/settlement-runs", w.tsoKey, period, 201, &revised)
	rs := revised.Statements[0]
	if rs.Outcome != flexhub.StatementRevised || rs.StatementVersion != 2 || rs.Difference == nil || rs.Difference.Amount != "-1.00" {
		t.Fatalf("re-run after a correction: %+v", rs)
	}
	var st2 flexhub.Statement
	w.do("GET", "/v1/settlement-statements/"+rs.StatementID, w.fspAKey, nil, 200, &st2)
	checkStatement(t, st2, "6.00", "7.25", "-5.50", "7.75")
	if st2.Supersedes != st.ID || st2.Difference == nil || st2.Difference.Amount != "-1.00" {
		t.Errorf("version 2 %+v", st2)
	}
	if latest := statements(w.fspAKey, ""); len(latest) != 1 || latest[0].ID != st2.ID {
		t.Errorf("latest statements %v, want only version 2", latest)
	}
	if all := statements(w.tsoKey, "?versions=all&period_start="+w.day.Truncate(24*time.Hour).Format(time.RFC3339)); len(all) != 2 {
		t.Errorf("all versions of the period: %d, want 2", len(all))
	}
	// The old version stays readable, unchanged.
	var old flexhub.Statement
	w.do("GET", "/v1/settlement-statements/"+st.ID, w.fspAKey, nil, 200, &old)
	checkStatement(t, old, "6.00", "7.75", "-5.00", "8.75")
	// The revised run's adjustments follow the corrected delivery.
	w.do("GET", "/v1/imbalance-adjustments?run_id="+revised.ID, brpKey, nil, 200, &adjs)
	sum = 0
	for _, a := range adjs.Items {
		sum += a.Volume
	}
	if sum != mwh(37.5+35) {
		t.Errorf("adjustments of the revised run sum to %d, want %d", sum, mwh(72.5))
	}
	// What the BRP imports by default: the adjustments in force, once
	// (three runs wrote two each); the earlier ones on request. Likewise
	// each order's latest verification.
	w.do("GET", "/v1/imbalance-adjustments?brp_id=self", brpKey, nil, 200, &adjs)
	sum = 0
	for _, a := range adjs.Items {
		sum += a.Volume
		if a.RunID != revised.ID {
			t.Errorf("adjustment in force from run %s, want the revised run %s", a.RunID, revised.ID)
		}
	}
	if len(adjs.Items) != 2 || sum != mwh(72.5) {
		t.Errorf("adjustments in force: %d summing to %d, want 2 summing to %d", len(adjs.Items), sum, mwh(72.5))
	}
	w.do("GET", "/v1/imbalance-adjustments?brp_id=self&versions=all", brpKey, nil, 200, &adjs)
	if len(adjs.Items) != 6 {
		t.Errorf("all adjustments of three runs: %d, want 6", len(adjs.Items))
	}
	var vs struct{ Items []flexhub.Verification }
	w.do("GET", "/v1/verifications?order_id="+o1.ID, w.fspAKey, nil, 200, &vs)
	if len(vs.Items) != 1 || vs.Items[0].RunID != revised.ID || vs.Items[0].Delivered != mwh(72.5) {
		t.Errorf("latest verification of order 1: %+v", vs.Items)
	}
	w.do("GET", "/v1/verifications?order_id="+o1.ID+"&versions=all", w.fspAKey, nil, 200, &vs)
	if len(vs.Items) != 3 {
		t.Errorf("verifications of order 1 by three runs: %d, want 3", len(vs.Items))
	}

	// The unit's settlement data is its consumer's: the household reads
	// it; another aggregator only under a settlement consent, logged.
	var own struct{ Items []flexhub.Verification }
	w.do("GET", "/v1/verifications?resource_id="+w.unitA, w.consumerKey, nil, 200, &own)
	if len(own.Items) != 2 {
		t.Errorf("the household reads %d verifications of its unit, want 2", len(own.Items))
	}
	aggID, aggKey := w.party("st-other-agg", "fsp")
	w.do("GET", "/v1/verifications?resource_id="+w.unitA, aggKey, nil, 403, nil)
	var u flexhub.Resource
	w.do("GET", "/v1/resources/"+w.unitA, w.consumerKey, nil, 200, &u)
	w.do("POST", "/v1/consents", w.consumerKey, map[string]any{"data_user_id": aggID, "metering_point_ids": []string{u.MeteringPointID},
		"scopes": []string{"settlement"}, "purpose": "to compare what the battery earns", "valid_from": w.now().Add(-time.Minute),
		"valid_to": w.now().Add(24 * time.Hour)}, 201, nil)
	var theirs struct{ Items []flexhub.Verification }
	w.do("GET", "/v1/verifications?resource_id="+w.unitA, aggKey, nil, 200, &theirs)
	if len(theirs.Items) != len(own.Items) {
		t.Errorf("the aggregator under consent reads %d verifications, the household %d", len(theirs.Items), len(own.Items))
	}
	var log struct{ Items []flexhub.DataAccess }
	w.do("GET", "/v1/data-access?reader_id=self", aggKey, nil, 200, &log)
	if len(log.Items) != 2 || log.Items[0].Outcome != flexhub.AccessRefused || log.Items[1].Basis != flexhub.BasisConsent || log.Items[1].Scope != flexhub.ScopeSettlement {
		t.Errorf("the aggregator's reads of settlement data in the log: %+v", log.Items)
	}
}

// checkStatement checks a statement's totals and that its lines add up
// to them exactly.
func checkStatement(t *testing.T, st flexhub.Statement, avail, act, pen, total string) {
	t.Helper()
	if st.Availability.Amount != avail || st.Activation.Amount != act || st.Penalties.Amount != pen || st.Total.Amount != total {
		t.Errorf("statement totals %s %s %s = %s, want %s %s %s = %s", st.Availability.Amount, st.Activation.Amount, st.Penalties.Amount, st.Total.Amount, avail, act, pen, total)
	}
	sums := map[string]int64{}
	var all int64
	for _, l := range st.Lines {
		a, err := l.Amount.Parse("amount")
		if err != nil {
			t.Fatal(err)
		}
		sums[l.Kind] += a
		all += a
	}
	for kind, m := range map[string]flexhub.Money{flexhub.LineAvailability: st.Availability, flexhub.LineActivation: st.Activation, flexhub.LinePenalty: st.Penalties, "": st.Total} {
		want, _ := m.Parse("total")
		got := sums[kind]
		if kind == "" {
			got = all
		}
		if got != want {
			t.Errorf("%q lines add up to %d, the statement says %d", kind, got, want)
		}
	}
}

// A nominated_schedule product (the market world's own) and an order
// ended early: the FSP nominates 200 kW of net import before gate
// closure; the TSO orders 150, 200 and 200 kW in the three quarter hours
// and ends the order at the third. The baseline is the nomination (50 kWh
// a quarter hour), the third quarter hour is not verified, and a retried
// run with the same Idempotency-Key returns the first run.
func TestSettlementNominatedAndEnded(t *testing.T) { settlementNominated(t, newEnv(t)) }

func TestSettlementNominatedAndEndedPostgres(t *testing.T) {
	settlementNominated(t, newEnvOn(t, pgtest.Open(t, "fh_settle")))
}

func settlementNominated(t *testing.T, e *env) {
	w := &smWorld{mkWorld: newMarketWorldOn(t, e)}
	w.svc.SetClock(w.now)
	brp, _ := w.party("sn-brp", "brp")
	w.do("POST", "/v1/nominations", w.fspAKey, map[string]any{"resource_id": w.unitA, "session_id": w.session.ID, "schedule": schedule(w.day, 3, 200)}, 201, nil)
	w.do("POST", "/v1/bids", w.fspAKey, w.bid(w.unitA), 201, nil)
	w.advance(time.Hour + time.Second) // gate closure: cleared, the nomination frozen
	var obs struct{ Items []flexhub.Obligation }
	w.do("GET", "/v1/obligations", w.fspAKey, nil, 200, &obs)
	if len(obs.Items) != 1 {
		t.Fatalf("%d obligations", len(obs.Items))
	}
	w.obligation = obs.Items[0]
	var prod flexhub.Product
	w.do("GET", "/v1/products/"+w.product, w.tsoKey, nil, 200, &prod)
	body := pqProductBody("mFRR")
	body["settlement"] = map[string]any{"activation_price": eur("100")}
	w.do("PUT", "/v1/products/"+w.product, w.tsoKey, body, 200, nil, "If-Match", fmt.Sprintf(`"%d"`, prod.Version))
	var unit flexhub.Resource
	var mp flexhub.MeteringPoint
	w.do("GET", "/v1/resources/"+w.unitA, w.fspAKey, nil, 200, &unit)
	w.do("GET", "/v1/metering-points/"+unit.MeteringPointID, w.dsoKey, nil, 200, &mp)
	w.do("POST", "/v1/metering-points/"+mp.ID+"/switches", w.dsoKey, map[string]any{"brp_id": brp, "valid_from": w.day.AddDate(0, 0, -1)},
		200, nil, "If-Match", fmt.Sprintf(`"%d"`, mp.Version))

	var o, end flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, map[string]any{"type": "activate", "obligation_id": w.obligation.ID, "setpoints": []map[string]any{
		{"start": w.day, "end": w.day.Add(15 * time.Minute), "quantity": pqKW(150)},
		{"start": w.day.Add(15 * time.Minute), "end": w.day.Add(30 * time.Minute), "quantity": pqKW(200)},
		{"start": w.day.Add(30 * time.Minute), "end": w.day.Add(45 * time.Minute), "quantity": pqKW(200)}}}, 201, &o)
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "accepted"}, 200, nil)
	w.do("POST", "/v1/activation-orders", w.tsoKey, map[string]any{"type": "end", "ends_order_id": o.ID,
		"setpoints": []map[string]any{{"start": w.day.Add(30 * time.Minute), "end": w.day.Add(45 * time.Minute)}}}, 201, &end)
	w.advance(w.day.Add(time.Hour).Sub(w.now()) + time.Minute)
	// Measured: 12.5 and 0 kWh (37.5 and 50 below the nomination); the
	// third quarter hour, after the end order, 50 kWh.
	w.do("POST", "/v1/meter-readings", w.fspAKey, map[string]any{"readings": []any{kwh(w.unitA, w.day, "12.5"),
		kwh(w.unitA, w.day.Add(15*time.Minute), "0"), kwh(w.unitA, w.day.Add(30*time.Minute), "50")}}, 200, nil)

	period := map[string]any{"period_start": w.day, "period_end": w.day.Add(time.Hour)}
	var run, retry flexhub.SettlementRun
	w.do("POST", "/v1/settlement-runs", w.tsoKey, period, 201, &run, "Idempotency-Key", "settle-1")
	_, h := w.do("POST", "/v1/settlement-runs", w.tsoKey, period, 201, &retry, "Idempotency-Key", "settle-1")
	if retry.ID != run.ID || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retried run %s (replayed %q), want %s", retry.ID, h.Get("Idempotent-Replayed"), run.ID)
	}
	if len(run.Verifications) != 1 || len(run.Statements) != 1 {
		t.Fatalf("run %+v", run)
	}
	var v flexhub.Verification
	w.do("GET", "/v1/verifications/"+run.Verifications[0].VerificationID, w.tsoKey, nil, 200, &v)
	if v.BaselineMethod != "nominated_schedule" || len(v.Intervals) != 2 || v.Verdict != flexhub.VerifyOnTarget || v.Delivered != 87_500_000 {
		t.Fatalf("verification %+v", v)
	}
	for i, want := range []int64{37_500_000, 50_000_000} {
		iv := v.Intervals[i]
		if *iv.Baseline != 50_000_000 || iv.Delivered != want || iv.Ordered != want {
			t.Errorf("interval %d: baseline %d delivered %d ordered %d, want 50000000 and %d", i, *iv.Baseline, iv.Delivered, iv.Ordered, want)
		}
	}
	// Availability 3 × 2.00 (the obligation is held whatever the order),
	// activation 3.75 + 5.00; no penalty.
	var st flexhub.Statement
	w.do("GET", "/v1/settlement-statements/"+run.Statements[0].StatementID, w.fspAKey, nil, 200, &st)
	checkStatement(t, st, "6.00", "8.75", "0.00", "14.75")
	var adjs struct{ Items []flexhub.ImbalanceAdjustment }
	w.do("GET", "/v1/imbalance-adjustments?order_id="+o.ID, w.tsoKey, nil, 200, &adjs)
	var sum int64
	for _, a := range adjs.Items {
		sum += a.Volume
	}
	if len(adjs.Items) != 2 || sum != 87_500_000 {
		t.Errorf("%d adjustments summing to %d, want 2 and 87500000", len(adjs.Items), sum)
	}
}

// A group on an automatic product without baseline (method none): its
// delivery is the net export its members measured, and the energy is
// attributed to the members' metering points by their registered max_up
// (300 kW and 100 kW: 3 to 1), whatever each member measured, to two
// different BRPs, adding up exactly.
func TestSettlementGroup(t *testing.T) { settlementGroup(t, newEnv(t)) }

func TestSettlementGroupPostgres(t *testing.T) {
	settlementGroup(t, newEnvOn(t, pgtest.Open(t, "fh_settle")))
}

func settlementGroup(t *testing.T, e *env) {
	w := newPQWorldOn(t, e)
	var offset time.Duration
	w.svc.SetClock(func() time.Time { return time.Now().Add(offset).UTC().Truncate(time.Microsecond) })
	brp1, brp1Key := w.party("sg-brp-one", "brp")
	brp2, brp2Key := w.party("sg-brp-two", "brp")
	unit2 := w.unit(w.dsoKey, w.fspAKey, 100)
	var group flexhub.Resource
	w.do("POST", "/v1/resources", w.fspAKey, map[string]any{"name": "pool", "kind": "group", "members": []string{w.unitA, unit2},
		"technical": map[string]any{"max_up": pqKW(400), "max_down": pqKW(400)}}, 201, &group)
	body := pqProductBody("aFRR")
	body["service"], body["activation_mode"], body["baseline_method"] = "balancing_afrr", "automatic", "none"
	body["settlement"] = map[string]any{"activation_price": eur("80")}
	var prod flexhub.Product
	w.do("POST", "/v1/products", w.tsoKey, body, 201, &prod)
	pq := w.submit(w.fspAKey, group.ID, prod.ID)
	w.do("POST", "/v1/prequalifications/"+pq.ID+"/decision", w.tsoKey, map[string]any{"outcome": "approved"}, 200, nil)
	for unit, brp := range map[string]string{w.unitA: brp1, unit2: brp2} {
		var r flexhub.Resource
		var mp flexhub.MeteringPoint
		w.do("GET", "/v1/resources/"+unit, w.fspAKey, nil, 200, &r)
		w.do("GET", "/v1/metering-points/"+r.MeteringPointID, w.dsoKey, nil, 200, &mp)
		w.do("POST", "/v1/metering-points/"+mp.ID+"/switches", w.dsoKey, map[string]any{"brp_id": brp, "valid_from": time.Now().Add(-time.Hour)},
			200, nil, "If-Match", fmt.Sprintf(`"%d"`, mp.Version))
	}
	at := time.Now().UTC().Truncate(15 * time.Minute).Add(30 * time.Minute)
	var o flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, map[string]any{"type": "activate", "product_id": prod.ID, "resource_id": group.ID, "direction": "up",
		"setpoints": []map[string]any{{"start": at, "end": at.Add(15 * time.Minute), "quantity": pqKW(400)}}}, 201, &o)
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "accepted"}, 200, nil)
	offset = at.Add(20 * time.Minute).Sub(time.Now())
	export := func(unit, v string) map[string]any {
		r := kwh(unit, at, v)
		r["flow"] = "export"
		return r
	}
	w.do("POST", "/v1/meter-readings", w.fspAKey, map[string]any{"readings": []any{export(w.unitA, "35"), export(unit2, "5")}}, 200, nil)

	var run flexhub.SettlementRun
	w.do("POST", "/v1/settlement-runs", w.tsoKey, map[string]any{"period_start": at, "period_end": at.Add(15 * time.Minute)}, 201, &run)
	var v flexhub.Verification
	w.do("GET", "/v1/verifications/"+run.Verifications[0].VerificationID, w.fspAKey, nil, 200, &v)
	// Ordered 100 kWh; delivered 40 (net export); short 100 − 40 − 10.
	if v.Ordered != 100_000_000 || v.Delivered != 40_000_000 || v.Verdict != flexhub.VerifyUnder || v.ResourceID != group.ID {
		t.Fatalf("verification %+v", v)
	}
	var st flexhub.Statement
	w.do("GET", "/v1/settlement-statements/"+run.Statements[0].StatementID, w.fspAKey, nil, 200, &st)
	checkStatement(t, st, "0.00", "3.20", "-4.00", "-0.80")
	for key, want := range map[string]int64{brp1Key: 30_000_000, brp2Key: 10_000_000} {
		var adjs struct{ Items []flexhub.ImbalanceAdjustment }
		w.do("GET", "/v1/imbalance-adjustments?brp_id=self", key, nil, 200, &adjs)
		if len(adjs.Items) != 1 || adjs.Items[0].Volume != want || adjs.Items[0].OrderID != o.ID {
			t.Errorf("adjustments %+v, want one of %d", adjs.Items, want)
		}
	}
	// The product stops pricing activations: a re-run finds nothing to
	// pay or charge the FSP, and says so with a version without lines
	// (never a silent change); FSP B, which never had a statement, gets
	// none.
	w.do("GET", "/v1/products/"+prod.ID, w.tsoKey, nil, 200, &prod)
	delete(body, "settlement")
	w.do("PUT", "/v1/products/"+prod.ID, w.tsoKey, body, 200, nil, "If-Match", fmt.Sprintf(`"%d"`, prod.Version))
	var rerun flexhub.SettlementRun
	w.do("POST", "/v1/settlement-runs", w.tsoKey, map[string]any{"period_start": at, "period_end": at.Add(15 * time.Minute)}, 201, &rerun)
	if len(rerun.Statements) != 1 || rerun.Statements[0].Outcome != flexhub.StatementRevised || rerun.Statements[0].FSPID != w.fspA ||
		rerun.Statements[0].Difference == nil || rerun.Statements[0].Difference.Amount != "0.80" {
		t.Fatalf("re-run without prices: %+v", rerun.Statements)
	}
	w.do("GET", "/v1/settlement-statements/"+rerun.Statements[0].StatementID, w.fspAKey, nil, 200, &st)
	checkStatement(t, st, "0.00", "0.00", "0.00", "0.00")
	if len(st.Lines) != 0 || st.StatementVersion != 2 {
		t.Errorf("statement without prices %+v", st)
	}
	var runs struct{ Items []flexhub.SettlementRun }
	w.do("GET", "/v1/settlement-runs", w.tsoKey, nil, 200, &runs)
	if len(runs.Items) != 2 || runs.Items[0].ID != run.ID || runs.Items[1].ID != rerun.ID {
		t.Errorf("the TSO's runs: %d", len(runs.Items))
	}
	w.do("GET", "/v1/settlement-runs", w.fspAKey, nil, 403, nil)
}
