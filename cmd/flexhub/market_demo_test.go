package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

var demoShared = filepath.Join("..", "..", "..", "shared", "data")

func runDemo(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	// The coordination comparison has tests of its own
	// (demo_coordination_test.go).
	args = append([]string{"demo", "--shared-data", demoShared, "--no-coordination"}, args...)
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("flexhub %s: %v\n%s\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// TestMarketDemo runs `flexhub demo --no-activation` in a fresh directory:
// the register is loaded, the day's needs, sessions and bids go in, the
// gates close, both sessions clear, and the outcome prints as tables and
// as JSON, without an activation part.
func TestMarketDemo(t *testing.T) {
	dir := t.TempDir()
	text, _ := runDemo(t, "--data-dir", dir, "--no-activation")
	for _, want := range []string{"LV rural congestion, day ahead", "mFRR capacity, day ahead", "cleared", "cost to the buyer", "Sunny Storage Aggregator", "HeatFlex Aggregator", "excluded"} {
		if !strings.Contains(text, want) {
			t.Errorf("the printed outcome lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Activation") {
		t.Errorf("--no-activation printed an activation part:\n%s", text)
	}
	// A second run in the same directory plays another day on the same
	// register, this time for machines.
	out, _ := runDemo(t, "--data-dir", dir, "--json", "--no-activation")
	var report DayReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if len(report.Sessions) != 2 {
		t.Fatalf("%d sessions in the JSON report", len(report.Sessions))
	}
	if report.Activation != nil {
		t.Errorf("--no-activation reported an activation part")
	}
	for _, s := range report.Sessions {
		if s.Status != "cleared" || len(s.Needs) != 1 || len(s.Bids) != 2 {
			t.Errorf("session %q: status %s, %d needs, %d bids", s.Name, s.Status, len(s.Needs), len(s.Bids))
		}
		var accepted int64
		for _, iv := range s.Needs[0].Intervals {
			accepted += iv.Accepted
			if iv.Accepted+iv.Shortfall < iv.Demand {
				t.Errorf("%s at %s: accepted %d + shortfall %d < demand %d", s.Name, iv.Start, iv.Accepted, iv.Shortfall, iv.Demand)
			}
		}
		if accepted == 0 {
			t.Errorf("%s bought nothing", s.Name)
		}
	}
}

// TestMarketDemoActivation runs the whole demo twice on one register,
// each run a market day of its own replaying the same households: first
// with HeatFlex told to under-deliver (the default), then Sunny. Each
// run: an order per obligation the market awarded, sent by the obligation's
// system operator, acknowledged by the simulated aggregator over MQTT,
// completed, every interval given a verdict by the monitoring; the
// under-delivering aggregator's orders carry under-delivery alerts on every
// interval and deliver the fraction they were told to; the other's battery
// pool delivers what was ordered. Across the runs the monitoring sees the
// withheld delivery: its measurement differs from the truth by the same
// baseline error whether the aggregator under-delivers or not.
func TestMarketDemoActivation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's delivery window twice (about 45 s each)")
	}
	dir := t.TempDir()
	outA, progressA := runDemo(t, "--data-dir", dir, "--json")
	outB, _ := runDemo(t, "--data-dir", dir, "--json", "--under-deliver", "sunny")
	a := checkActivation(t, outA, "HeatFlex Aggregator")
	b := checkActivation(t, outB, "Sunny Storage Aggregator")
	if a.MarketDay == b.MarketDay {
		t.Errorf("both runs played market day %s", a.MarketDay)
	}
	for _, want := range []string{"Activation:", "orders 3: 3 acknowledged", "completed"} {
		if !strings.Contains(progressA, want) {
			t.Errorf("the progress lacks %q:\n%s", want, progressA)
		}
	}

	// Same households, same obligations' shape: per FSP and interval the
	// monitoring's error against the truth is the baseline's, the same in
	// both runs; what the under-deliverer withheld shows in full.
	type key struct {
		fsp string
		at  string
	}
	errOf := map[key]float64{}
	for _, o := range a.Activation.Orders {
		for _, iv := range o.Intervals {
			errOf[key{o.FSP, iv.Start.In(sydney).Format("15:04")}] = float64(iv.DeliveredW - *iv.TrueDeliveredW)
		}
	}
	compared := 0
	for _, o := range b.Activation.Orders {
		for _, iv := range o.Intervals {
			k := key{o.FSP, iv.Start.In(sydney).Format("15:04")}
			ea, ok := errOf[k]
			if !ok {
				continue
			}
			if eb := float64(iv.DeliveredW - *iv.TrueDeliveredW); math.Abs(ea-eb) > 0.1*float64(iv.OrderedW) {
				t.Errorf("%s at %s: the monitoring is off the truth by %.0f W in one run and %.0f W in the other", k.fsp, k.at, ea, eb)
			}
			compared++
		}
	}
	if compared < 5 {
		t.Errorf("only %d intervals in common between the runs", compared)
	}

	// HeatFlex under-delivers in the first run and is honest in the
	// second: against the nominated baseline its TSO settlement sees the
	// difference, more delivered and less penalty when honest.
	hfA, penA := tsoSettled(t, a, "HeatFlex Aggregator")
	hfB, penB := tsoSettled(t, b, "HeatFlex Aggregator")
	if hfB <= hfA || penB <= penA {
		t.Errorf("HeatFlex's TSO settlement: under-delivering %d mWh delivered and %d penalty, honest %d mWh and %d", hfA, penA, hfB, penB)
	}
	if !strings.Contains(progressA, "HeatFlex Aggregator nominates HeatFlex LV rural heat pump pool's baseline") {
		t.Errorf("the progress does not say who nominated what:\n%s", progressA)
	}

	// What a reader of the tables sees.
	var text bytes.Buffer
	printReport(&text, a)
	for _, want := range []string{"Activation and live delivery monitoring", "Rural Netz DSO", "Demo Transmission TSO", "HeatFlex LV rural heat pump pool",
		"Sunny LV rural battery pool", "under delivery", "on target", "completed", "true kW", "Alerts as the monitoring raised them",
		"Baselines nominated before gate closure", "nominated_schedule", "the FSP's nominated schedule",
		"Settlement of the market day", "Statements per FSP", "Verification per activation", "Imbalance adjustments per BRP", "Demo Balance Group"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the tables lack %q:\n%s", want, text.String())
		}
	}
}

// TestMarketDemoActivationPostgres runs the demo with its activation part
// on PostgreSQL.
func TestMarketDemoActivationPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's delivery window (about 45 s)")
	}
	dsn := os.Getenv("FLEXHUB_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but FLEXHUB_TEST_POSTGRES is not set")
		}
		t.Skip("set FLEXHUB_TEST_POSTGRES to run the demo on PostgreSQL")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("fh_demo_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE " + name + " WITH (FORCE)") })
	out, _ := runDemo(t, "--data-dir", t.TempDir(), "--db", withDatabase(dsn, name), "--json")
	checkActivation(t, out, "HeatFlex Aggregator")
}

// checkActivation checks one run's JSON report; under is the aggregator
// told to under-deliver.
func checkActivation(t *testing.T, out, under string) *DayReport {
	t.Helper()
	var r DayReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	act := r.Activation
	if act == nil {
		t.Fatalf("no activation part in the report")
	}
	checkSettlement(t, &r)
	checkNominated(t, &r, under)
	if act.UnderDeliver != under {
		t.Errorf("under-deliverer %q, want %q", act.UnderDeliver, under)
	}
	// Every awarded bid is an obligation; every obligation gets an order
	// from its buyer (the demo's obligations do not collide on a resource).
	awarded := map[string]string{} // FSP → buyer, and a count
	nAwarded := 0
	for _, s := range r.Sessions {
		for _, b := range s.Bids {
			if b.Accepted > 0 {
				awarded[b.FSP] = s.Buyer
				nAwarded++
			}
		}
	}
	if nAwarded == 0 || len(act.Orders) != nAwarded {
		t.Fatalf("%d orders for %d awarded bids", len(act.Orders), nAwarded)
	}
	seen := map[string]bool{}
	flagged := 0
	for _, o := range act.Orders {
		if seen[o.ObligationID] || o.ObligationID == "" {
			t.Errorf("order %s: obligation %q ordered twice or missing", o.ID, o.ObligationID)
		}
		seen[o.ObligationID] = true
		if awarded[o.FSP] != o.SystemOperator {
			t.Errorf("order %s to %s sent by %s, but %s bought from it", o.ID, o.FSP, o.SystemOperator, awarded[o.FSP])
		}
		if !o.Acknowledged || o.Status != "completed" {
			t.Errorf("order %s (%s): acknowledged %v, status %s", o.ID, o.FSP, o.Acknowledged, o.Status)
		}
		var steps []string
		for _, e := range o.Tracking {
			if e.Channel == "mqtt" {
				steps = append(steps, e.Status)
			}
		}
		// The FSP's acceptance came over MQTT. (Steps may skip forward:
		// an acknowledgement that overtakes the record of the send leaves
		// out "delivered", an "accepted" applied before its "received"
		// leaves out "received".)
		if got := "," + strings.Join(steps, ",") + ","; !strings.Contains(got, ",accepted,") {
			t.Errorf("order %s (%s): steps over MQTT %s, want accepted among them", o.ID, o.FSP, got)
		}
		if o.BaselineW == nil || len(o.Intervals) == 0 {
			t.Fatalf("order %s (%s): no baseline or no intervals", o.ID, o.FSP)
		}
		alerted := map[string]bool{}
		for _, al := range o.Alerts {
			if al.Kind == "ack_overdue" {
				t.Errorf("order %s (%s): %s", o.ID, o.FSP, al.Text)
			}
			if al.Kind == "under_delivery" {
				alerted[al.Interval.UTC().Format(time.RFC3339)] = true
			}
		}
		for _, iv := range o.Intervals {
			if iv.Verdict == "pending" || iv.TrueDeliveredW == nil {
				t.Fatalf("order %s (%s) at %s: verdict %s, truth %v", o.ID, o.FSP, iv.Start, iv.Verdict, iv.TrueDeliveredW)
			}
			truth := float64(*iv.TrueDeliveredW) / float64(iv.OrderedW)
			at := iv.Start.UTC().Format(time.RFC3339)
			switch {
			case o.FSP == under:
				// Told to deliver half: at most half (heat pumps may give
				// less), and the monitoring flags every interval live.
				if truth > 0.55 {
					t.Errorf("%s at %s under-delivers, yet delivered %.0f%% of the order", o.FSP, at, truth*100)
				}
				if !alerted[at] || iv.Verdict != "under_delivery" {
					t.Errorf("%s at %s under-delivers (%.0f%%), yet verdict %s, alert raised %v", o.FSP, at, truth*100, iv.Verdict, alerted[at])
				}
			case o.FSP == "Sunny Storage Aggregator":
				// The battery pool follows its set-points exactly, and
				// with the batteries metered on their own (the demo's
				// default) the monitoring sees it so: on target, no alert.
				if math.Abs(truth-1) > 0.05 {
					t.Errorf("%s at %s delivered %.0f%% of the order", o.FSP, at, truth*100)
				}
				if iv.Verdict != "on_target" || alerted[at] {
					t.Errorf("%s at %s delivered %.0f%%, yet verdict %s, alert raised %v", o.FSP, at, truth*100, iv.Verdict, alerted[at])
				}
			}
		}
		if o.FSP == under && len(o.Alerts) > 0 {
			flagged++
		}
	}
	if flagged == 0 {
		t.Errorf("no order of %s flagged", under)
	}
	var orders int
	for _, s := range act.Summary {
		orders += s.Orders
		if s.Readings == 0 || s.Acknowledged != s.Orders || s.Completed != s.Orders {
			t.Errorf("summary of %s: %+v", s.FSP, s)
		}
	}
	if orders != len(act.Orders) {
		t.Errorf("the summary counts %d orders, the table %d", orders, len(act.Orders))
	}
	return &r
}

// checkSettlement checks the settlement part of a report: a verification
// per order, statements whose lines add up to their totals, and BRP
// adjustments adding up to what each order delivered.
func checkSettlement(t *testing.T, r *DayReport) {
	t.Helper()
	st := r.Settlement
	if st == nil {
		t.Fatalf("no settlement part in the report")
	}
	if len(st.Runs) != 2 {
		t.Errorf("%d settlement runs, want one per system operator", len(st.Runs))
	}
	if len(st.Verifications) != len(r.Activation.Orders) {
		t.Errorf("%d verifications for %d orders", len(st.Verifications), len(r.Activation.Orders))
	}
	amount := func(m flexhub.Money) int64 {
		v, err := flexhub.ParseAmount("amount", m.Amount)
		if err != nil {
			t.Fatalf("amount %+v: %v", m, err)
		}
		return v
	}
	if len(st.Statements) == 0 {
		t.Errorf("no statements")
	}
	for _, s := range st.Statements {
		sums := map[string]int64{}
		var total int64
		for _, l := range s.Statement.Lines {
			if l.Amount.Currency != s.Statement.Currency {
				t.Errorf("%s: line in %s on a %s statement", s.FSP, l.Amount.Currency, s.Statement.Currency)
			}
			sums[l.Kind] += amount(l.Amount)
			total += amount(l.Amount)
		}
		if total != amount(s.Statement.Total) || sums[flexhub.LineAvailability] != amount(s.Statement.Availability) ||
			sums[flexhub.LineActivation] != amount(s.Statement.Activation) || sums[flexhub.LinePenalty] != amount(s.Statement.Penalties) {
			t.Errorf("%s's statement from %s does not add up: lines %v, total %d: %+v", s.FSP, s.SystemOperator, sums, total, s.Statement)
		}
		if sums[flexhub.LineAvailability] <= 0 {
			t.Errorf("%s's statement pays no availability: %+v", s.FSP, s.Statement)
		}
		if s.SystemOperator == "Rural Netz DSO" && sums[flexhub.LineActivation] <= 0 {
			t.Errorf("%s's statement from the DSO pays no activation: %+v", s.FSP, s.Statement)
		}
	}
	var moved, adjusted int64
	for _, v := range st.Verifications {
		want := v.DeliveredMWh
		if v.Direction == "down" {
			want = -want
		}
		switch v.Verdict {
		case flexhub.VerifyNoBaseline:
			want = 0
			if v.BaselineNote == "" {
				t.Errorf("order %s without a baseline and without a reason", v.OrderID)
			}
		case flexhub.VerifyNoData:
			t.Errorf("order %s: no meter data, though the aggregators streamed it", v.OrderID)
		case flexhub.VerifyUnder:
			// Short beyond the tolerance: the demo's products price
			// activations, so the shortfall is charged.
			for _, s := range st.Statements {
				if s.FSP == v.FSP && s.SystemOperator == v.SystemOperator && amount(s.Statement.Penalties) >= 0 {
					t.Errorf("%s under-delivered order %s and %s charged no penalty: %+v", v.FSP, v.OrderID, v.SystemOperator, s.Statement)
				}
			}
		}
		if v.AdjustedMWh != want {
			t.Errorf("order %s (%s, %s): adjustments add up to %d mWh, it delivered %d", v.OrderID, v.FSP, v.Verdict, v.AdjustedMWh, v.DeliveredMWh)
		}
		moved += want
	}
	for _, b := range st.Adjustments {
		adjusted += b.VolumeMWh
	}
	if moved != adjusted || moved == 0 {
		t.Errorf("the orders moved %d mWh, the BRPs' adjustments add up to %d", moved, adjusted)
	}
}

// checkNominated checks the TSO's settlement against nominated baselines:
// the aggregators nominated one, accepted by flexhub, for every resource
// the TSO bought from; every TSO verification is measured against it (a
// verdict, not no_baseline, with the baseline's energy); what the
// settlement counts as delivered is what the simulated units truly
// delivered (the nomination is their own forecast without orders); the
// under-deliverer's TSO order is under_delivery and penalised; an
// aggregator told to deliver in full is charged no penalty by the DSO.
func checkNominated(t *testing.T, r *DayReport, under string) {
	t.Helper()
	const tso = "Demo Transmission TSO"
	bought := map[string]bool{}
	for _, s := range r.Sessions {
		for _, b := range s.Bids {
			if s.Buyer == tso && b.Accepted > 0 {
				bought[b.Resource] = true
			}
		}
	}
	nominated := map[string]bool{}
	for _, n := range r.Nominations {
		if n.Refused != "" || n.NominationID == "" || n.Plausibility == "" {
			t.Errorf("%s's nomination for %s: refused %q, id %q, plausibility %q", n.FSP, n.Resource, n.Refused, n.NominationID, n.Plausibility)
		}
		if n.EnergyMWh <= 0 || n.Intervals == 0 || !n.End.Equal(n.Start.Add(time.Duration(n.Intervals)*15*time.Minute)) {
			t.Errorf("%s's nomination for %s: %d mWh over %d intervals, %s to %s", n.FSP, n.Resource, n.EnergyMWh, n.Intervals, n.Start, n.End)
		}
		nominated[n.Resource] = true
	}
	if len(bought) == 0 {
		t.Fatalf("the TSO bought nothing")
	}
	for res := range bought {
		if !nominated[res] {
			t.Errorf("the TSO bought from %s, which has no nomination", res)
		}
	}
	truth := map[string]int64{} // order id → truly delivered, mWh
	for _, o := range r.Activation.Orders {
		for _, iv := range o.Intervals {
			if iv.TrueDeliveredW != nil {
				truth[o.ID] += *iv.TrueDeliveredW * int64(iv.End.Sub(iv.Start)/time.Millisecond) / 3600
			}
		}
	}
	penalties := map[[2]string]int64{}
	for _, s := range r.Settlement.Statements {
		v, err := flexhub.ParseAmount("penalties", s.Statement.Penalties.Amount)
		if err != nil {
			t.Fatal(err)
		}
		penalties[[2]string{s.SystemOperator, s.FSP}] = v
	}
	seen := 0
	for _, v := range r.Settlement.Verifications {
		if v.SystemOperator != tso {
			if v.FSP != under && penalties[[2]string{v.SystemOperator, v.FSP}] != 0 {
				t.Errorf("%s delivered in full, yet %s charged it a penalty", v.FSP, v.SystemOperator)
			}
			continue
		}
		seen++
		if v.Verdict == flexhub.VerifyNoBaseline || v.BaselineMethod != "nominated_schedule" || v.BaselineMWh == nil || *v.BaselineMWh <= 0 {
			t.Errorf("TSO order %s (%s): verdict %s, method %s, baseline %v (%s)", v.OrderID, v.FSP, v.Verdict, v.BaselineMethod, v.BaselineMWh, v.BaselineNote)
			continue
		}
		if d := v.DeliveredMWh - truth[v.OrderID]; d > v.OrderedMWh/10 || -d > v.OrderedMWh/10 {
			t.Errorf("TSO order %s (%s): settled as %d mWh delivered, the units truly delivered %d (ordered %d)", v.OrderID, v.FSP, v.DeliveredMWh, truth[v.OrderID], v.OrderedMWh)
		}
		if v.FSP == under && (v.Verdict != flexhub.VerifyUnder || penalties[[2]string{tso, v.FSP}] >= 0) {
			t.Errorf("%s under-delivered TSO order %s (%d of %d mWh), yet verdict %s and penalties %d", v.FSP, v.OrderID, v.DeliveredMWh, v.OrderedMWh, v.Verdict, penalties[[2]string{tso, v.FSP}])
		}
	}
	if seen == 0 {
		t.Errorf("no verification of a TSO order")
	}
}

// tsoSettled returns what the TSO's settlement counted as the FSP's
// delivered energy (mWh) and its penalties (smallest currency units, ≤ 0).
func tsoSettled(t *testing.T, r *DayReport, fsp string) (delivered, penalties int64) {
	t.Helper()
	for _, v := range r.Settlement.Verifications {
		if v.SystemOperator == "Demo Transmission TSO" && v.FSP == fsp {
			delivered += v.DeliveredMWh
		}
	}
	for _, s := range r.Settlement.Statements {
		if s.SystemOperator == "Demo Transmission TSO" && s.FSP == fsp {
			p, err := flexhub.ParseAmount("penalties", s.Statement.Penalties.Amount)
			if err != nil {
				t.Fatal(err)
			}
			penalties += p
		}
	}
	return delivered, penalties
}

// TestPrintNominationsRefused: a nomination flexhub refused is printed
// with flexhub's reason and what it means for the settlement.
func TestPrintNominationsRefused(t *testing.T) {
	start := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	why := "POST /v1/nominations: 422 Unprocessable Entity: the nominated schedule totals 9.000 kWh, 80 % above its recent history (5.000 kWh); at most ±30 % is plausible"
	var b bytes.Buffer
	printNominations(&b, []NominationReport{
		{FSP: "HeatFlex Aggregator", Resource: "HeatFlex LV rural heat pump pool", Session: "mFRR capacity, day ahead", Start: start, End: start.Add(time.Hour), Intervals: 4, EnergyMWh: 9_000_000, Refused: why},
		{FSP: "Sunny Storage Aggregator", Resource: "Sunny pool", Session: "mFRR capacity, day ahead", Start: start, End: start.Add(time.Hour), Intervals: 4, EnergyMWh: 1_000_000, NominationID: "x", Plausibility: "checked: within 30 % of a high 4 of 5 baseline"},
	})
	text := b.String()
	for _, want := range []string{"REFUSED", why, "HeatFlex LV rural heat pump pool", "no_baseline", "accepted", "checked: within 30 %", "9.000"} {
		if !strings.Contains(text, want) {
			t.Errorf("the nominations table lacks %q:\n%s", want, text)
		}
	}
}
