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
	args = append([]string{"demo", "--shared-data", demoShared}, args...)
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

	// What a reader of the tables sees.
	var text bytes.Buffer
	printReport(&text, a)
	for _, want := range []string{"Activation and live delivery monitoring", "Rural Netz DSO", "Demo Transmission TSO", "HeatFlex LV rural heat pump pool",
		"Sunny LV rural battery pool", "under delivery", "on target", "completed", "true kW", "Alerts as the monitoring raised them",
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
