package main

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/mqtt/mosquittotest"
)

// Settlement end to end (issue 5's "done means"): the activation of
// activation_e2e_test.go (a cleared market, orders over MQTT to two
// simulated FSPs and over a webhook to a third, meter data streamed every
// second), placed in the last minute of a quarter hour by moving the
// service's clock; when the quarter hour is over the DSO settles it over
// REST. Checked: a verification per order against the product's
// meter-before baseline (the minute before, streamed like the rest), a
// statement per FSP whose lines add up to its totals, availability lines
// equal to the awards, activation lines paying what was delivered, a
// penalty only for the FSP that delivered half, and imbalance adjustments
// for the households' BRP and supplier adding up to each order's delivered
// energy. Run with the embedded broker and with mosquitto
// (FLEXHUB_TEST_MOSQUITTO).

func TestSettlementEndToEndEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about two and a half minutes in real time")
	}
	t.Parallel()
	mqttAddr := freeAddr(t)
	activationEndToEnd(t, mqttAddr, nil, true, "--mqtt-addr", mqttAddr)
}

func TestSettlementEndToEndMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about two and a half minutes in real time")
	}
	t.Parallel()
	b := mosquittotest.Start(t)
	activationEndToEnd(t, b.Addr, []string{"FLEXHUB_MQTT_USERNAME=" + b.AdminUser, "FLEXHUB_MQTT_PASSWORD=" + b.AdminPass}, true,
		"--mqtt-broker", "mqtt://"+b.Addr)
}

// offsetClock is the wall clock moved by a fixed offset (the service's
// clock under FLEXHUB_TEST_CLOCK_OFFSET), for the simulated FSPs.
type offsetClock time.Duration

func (c offsetClock) Now() time.Time { return time.Now().UTC().Add(time.Duration(c)) }

func (c offsetClock) SleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(t.Sub(c.Now()))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type settleParties struct {
	dso, dsoKey, tsoKey   string
	brp, brpKey, supplier string
	fsp, fspKey           [3]string
	meteringPoint         [3]string
	session               string
	orderOf               map[string]string // FSP -> order
}

// list reads every item of a list endpoint (one page of up to 500).
func list[T any](t *testing.T, p *proc, path, key string) []T {
	t.Helper()
	var page struct {
		Items []T `json:"items"`
	}
	p.call("GET", path, key, nil, 200, &page)
	return page.Items
}

func amountOf(t *testing.T, m flexhub.Money) int64 {
	t.Helper()
	if m.Currency != "EUR" {
		t.Errorf("amount %+v: currency %q, want EUR", m, m.Currency)
	}
	v, err := flexhub.ParseAmount("amount", m.Amount)
	if err != nil {
		t.Fatalf("amount %+v: %v", m, err)
	}
	return v
}

// energyPrice is quantity mWh at price ten-thousandths per MWh, in
// ten-thousandths, rounded half away from zero.
func energyPrice(mWh, perMWh int64) int64 {
	const div = 1_000_000_000 // mWh per MWh
	v := mWh * perMWh
	if v < 0 {
		return -((-v + div/2) / div)
	}
	return (v + div/2) / div
}

func settleEndToEnd(t *testing.T, p *proc, now func() time.Time, qhEnd time.Time, ps settleParties) {
	start := qhEnd.Add(-flexhub.ISP)
	period := map[string]any{"period_start": start, "period_end": qhEnd}
	// The quarter hour over and its last second's readings in, the DSO
	// settles it (the TSO, who ordered nothing, has nothing to settle).
	waitUntil(t, "the quarter hour over", qhEnd.Sub(now())+10*time.Second, func() bool { return now().After(qhEnd.Add(5 * time.Second)) })
	var run flexhub.SettlementRun
	p.call("POST", "/v1/settlement-runs", ps.dsoKey, period, 201, &run)
	var tsoRun flexhub.SettlementRun
	p.call("POST", "/v1/settlement-runs", ps.tsoKey, period, 201, &tsoRun)
	if len(tsoRun.Verifications) != 0 || len(tsoRun.Statements) != 0 || tsoRun.Adjustments != 0 {
		t.Errorf("the TSO's run settled someone else's orders: %+v", tsoRun)
	}

	// A verification per order against the minute before it.
	vs := list[flexhub.Verification](t, p, "/v1/verifications?run_id="+run.ID+"&limit=500", ps.dsoKey)
	if len(run.Verifications) != 3 || len(vs) != 3 {
		t.Fatalf("run %+v; verifications %+v", run, vs)
	}
	verOf := map[string]flexhub.Verification{} // FSP -> verification
	for _, v := range vs {
		verOf[v.FSPID] = v
	}
	wantVerdict := []string{flexhub.VerifyOnTarget, flexhub.VerifyUnder, flexhub.VerifyOnTarget}
	for i := range 3 {
		v, ok := verOf[ps.fsp[i]]
		if !ok || v.OrderID != ps.orderOf[ps.fsp[i]] {
			t.Fatalf("FSP %c: verification %+v, want one of order %s", 'A'+i, v, ps.orderOf[ps.fsp[i]])
		}
		// 5 kW for a minute: 83.333 Wh.
		if v.BaselineMethod != "meter_before" || len(v.Intervals) != 1 || v.Ordered != 83333 || v.Unit != "mWh" {
			t.Errorf("FSP %c's verification: %+v", 'A'+i, v)
		}
		if v.Verdict != wantVerdict[i] {
			t.Errorf("FSP %c's verdict %s, want %s: %+v", 'A'+i, v.Verdict, wantVerdict[i], v)
		}
		var sum int64
		for _, iv := range v.Intervals {
			if iv.Baseline == nil || iv.Measured == nil {
				t.Fatalf("FSP %c's interval without baseline or measurement: %+v", 'A'+i, iv)
			}
			if iv.Delivered != *iv.Baseline-*iv.Measured {
				t.Errorf("FSP %c: delivered %d, baseline %d − measured %d", 'A'+i, iv.Delivered, *iv.Baseline, *iv.Measured)
			}
			sum += iv.Delivered
		}
		if sum != v.Delivered {
			t.Errorf("FSP %c: intervals deliver %d, the verification %d", 'A'+i, sum, v.Delivered)
		}
	}
	// The webhook FSP meters exactly, one power reading a second: 2 kW
	// import before, 3 kW export during. The readings of a minute are
	// summed and become energy once, rounded to the mWh (docs/SETTLEMENT.md,
	// units): 2 kW for 60 s is 33,333 mWh of baseline, 5 kW of change is
	// 83,333 mWh delivered — exactly the order.
	perMinute := func(w int64) int64 { return (w*1000*60 + 1800) / 3600 }
	if v, want := verOf[ps.fsp[2]], perMinute(2000+3000); v.Delivered != want || *v.Intervals[0].Baseline != perMinute(2000) {
		t.Errorf("the webhook FSP delivered %d mWh, want %d: %+v", v.Delivered, want, v)
	}
	// FSP B delivers half of it.
	if d := verOf[ps.fsp[1]].Delivered; d < 83333/4 || d > 83333*3/4 {
		t.Errorf("FSP B delivered %d mWh of 83333 ordered; it delivers half", d)
	}

	// The awards of the session, per FSP.
	awards := list[flexhub.Award](t, p, "/v1/awards?session_id="+ps.session+"&limit=500", ps.dsoKey)
	awardOf := map[string]flexhub.Award{}
	for _, a := range awards {
		awardOf[a.FSPID] = a
	}

	// A statement per FSP that adds up.
	sts := list[flexhub.Statement](t, p, "/v1/settlement-statements?system_operator_id=self&period_start="+url.QueryEscape(start.Format(time.RFC3339))+"&limit=500", ps.dsoKey)
	if len(run.Statements) != 3 || len(sts) != 3 {
		t.Fatalf("run statements %+v; statements %+v", run.Statements, sts)
	}
	for _, rs := range run.Statements {
		if rs.Outcome != "issued" || rs.StatementVersion != 1 {
			t.Errorf("run statement %+v, want issued version 1", rs)
		}
	}
	stOf := map[string]flexhub.Statement{}
	for _, st := range sts {
		stOf[st.FSPID] = st
	}
	const price = 100 * 10_000 // EUR/MWh in ten-thousandths
	for i := range 3 {
		st, ok := stOf[ps.fsp[i]]
		if !ok {
			t.Fatalf("no statement for FSP %c: %+v", 'A'+i, sts)
		}
		v, a := verOf[ps.fsp[i]], awardOf[ps.fsp[i]]
		sums := map[string]int64{}
		var total int64
		for _, l := range st.Lines {
			amt := amountOf(t, l.Amount)
			sums[l.Kind] += amt
			total += amt
			switch l.Kind {
			case flexhub.LineAvailability:
				if l.AwardID != a.ID || l.ObligationID == "" {
					t.Errorf("FSP %c's availability line names award %q, want %s: %+v", 'A'+i, l.AwardID, a.ID, l)
				}
			case flexhub.LineActivation:
				if l.OrderID != v.OrderID || l.VerificationID != v.ID || l.Quantity != min(v.Delivered, v.Ordered) || l.Unit != "mWh" {
					t.Errorf("FSP %c's activation line %+v; verification delivered %d of %d", 'A'+i, l, v.Delivered, v.Ordered)
				}
				if amt != energyPrice(l.Quantity, price) {
					t.Errorf("FSP %c: activation of %d mWh at 100 EUR/MWh paid %d ten-thousandths, want %d", 'A'+i, l.Quantity, amt, energyPrice(l.Quantity, price))
				}
			case flexhub.LinePenalty:
				short := v.Ordered - v.Delivered - v.Ordered*10/100
				if l.VerificationID != v.ID || l.Quantity != short || amt != -energyPrice(short, price) {
					t.Errorf("FSP %c's penalty line %+v; want %d mWh short beyond the 10 %% band at 100 EUR/MWh", 'A'+i, l, short)
				}
			default:
				t.Errorf("FSP %c: line of kind %q", 'A'+i, l.Kind)
			}
		}
		if total != amountOf(t, st.Total) || sums[flexhub.LineAvailability] != amountOf(t, st.Availability) ||
			sums[flexhub.LineActivation] != amountOf(t, st.Activation) || sums[flexhub.LinePenalty] != amountOf(t, st.Penalties) {
			t.Errorf("FSP %c's statement does not add up: lines %v (total %d), statement %+v", 'A'+i, sums, total, st)
		}
		if got := amountOf(t, a.Amount); sums[flexhub.LineAvailability] != got || got <= 0 {
			t.Errorf("FSP %c: availability lines %d, award amount %d", 'A'+i, sums[flexhub.LineAvailability], got)
		}
		if sums[flexhub.LineActivation] <= 0 {
			t.Errorf("FSP %c: no activation paid: %+v", 'A'+i, st)
		}
		if penalised := sums[flexhub.LinePenalty] < 0; penalised != (i == 1) {
			t.Errorf("FSP %c penalised: %v (only B under-delivers): %+v", 'A'+i, penalised, st.Lines)
		}
		// The FSP reads the same statement.
		own := list[flexhub.Statement](t, p, "/v1/settlement-statements?fsp_id=self&limit=500", ps.fspKey[i])
		if len(own) != 1 || own[0].ID != st.ID || own[0].Total != st.Total {
			t.Errorf("FSP %c sees statements %+v, want %s", 'A'+i, own, st.ID)
		}
	}

	// Imbalance adjustments: the household's BRP and supplier, per
	// metering point, the quarter hour; per order they add up to what it
	// delivered (up: + to the BRP's consumption).
	adjs := list[flexhub.ImbalanceAdjustment](t, p, "/v1/imbalance-adjustments?run_id="+run.ID+"&limit=500", ps.dsoKey)
	if len(adjs) != run.Adjustments || len(adjs) == 0 {
		t.Fatalf("run says %d adjustments, listed %d", run.Adjustments, len(adjs))
	}
	perOrder := map[string]int64{}
	for _, a := range adjs {
		perOrder[a.OrderID] += a.Volume
		i := -1
		for k := range 3 {
			if ps.fsp[k] == a.FSPID {
				i = k
			}
		}
		if i < 0 || a.MeteringPointID != ps.meteringPoint[i] || a.BRPID != ps.brp || a.SupplierID != ps.supplier ||
			!a.Start.Equal(start) || !a.End.Equal(qhEnd) || a.Unit != "mWh" || a.VerificationID != verOf[a.FSPID].ID {
			t.Errorf("adjustment %+v", a)
		}
	}
	for i := range 3 {
		v := verOf[ps.fsp[i]]
		if perOrder[v.OrderID] != v.Delivered {
			t.Errorf("FSP %c's order: adjustments add up to %d mWh, it delivered %d", 'A'+i, perOrder[v.OrderID], v.Delivered)
		}
	}
	// The BRP sees the same adjustments.
	from, to := url.QueryEscape(start.Format(time.RFC3339)), url.QueryEscape(qhEnd.Format(time.RFC3339))
	if got := list[flexhub.ImbalanceAdjustment](t, p, fmt.Sprintf("/v1/imbalance-adjustments?brp_id=self&from=%s&to=%s&limit=500", from, to), ps.brpKey); len(got) != len(adjs) {
		t.Errorf("the BRP sees %d adjustments, the run wrote %d", len(got), len(adjs))
	}

	// Run again with nothing new: every statement unchanged.
	var again flexhub.SettlementRun
	p.call("POST", "/v1/settlement-runs", ps.dsoKey, period, 201, &again)
	for _, rs := range again.Statements {
		if rs.Outcome != "unchanged" || rs.StatementVersion != 1 {
			t.Errorf("re-run statement %+v, want unchanged version 1", rs)
		}
	}
}
