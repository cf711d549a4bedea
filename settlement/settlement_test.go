package settlement

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

const q = 15 * time.Minute

// history: 15-minute net import from 2026-02-20 to the end of 2026-03-11,
// 50 kWh (50,000,000 mWh) in every interval, except the event day's
// 17:00 and 17:15, which measured eventA and eventB.
func history(eventA, eventB int64, missingB bool) *baseline.Series {
	from, to := at("2026-02-20T00:00:00Z"), at("2026-03-12T00:00:00Z")
	n := int(to.Sub(from) / q)
	s := &baseline.Series{Start: from, Step: q, Values: make([]int64, n), Missing: make([]bool, n)}
	for i := range s.Values {
		s.Values[i] = 50_000_000
	}
	i := int(at("2026-03-11T17:00:00Z").Sub(from) / q)
	s.Values[i], s.Values[i+1] = eventA, eventB
	s.Missing[i+1] = missingB
	return s
}

func product(method string) *flexhub.Product {
	return &flexhub.Product{ID: "prod", ProductSpec: flexhub.ProductSpec{Name: "cm", Service: "congestion_management",
		Direction: "up", PowerType: "active", TimeResolution: "PT15M", FullActivationTime: "PT5M",
		ActivationMode: "manual", Remuneration: []string{"capacity", "energy"}, BaselineMethod: method}}
}

// An up order of 100 kW for 17:00-17:30: 25 kWh per quarter hour.
func order() *flexhub.ActivationOrder {
	return &flexhub.ActivationOrder{ID: "ord", Type: flexhub.OrderActivate, SystemOperatorID: "dso", FSPID: "fsp",
		ResourceID: "res", ProductID: "prod", ObligationID: "obl", Direction: "up",
		Setpoints: []flexhub.Setpoint{{Start: at("2026-03-11T17:00:00Z"), End: at("2026-03-11T17:30:00Z"), Quantity: 100_000}}}
}

// By hand: the baseline (high 4 of 5; every earlier day 50 kWh) is 50 kWh
// per interval. 17:00 measured 26 kWh: delivered 24 of 25 (96 %, on
// target within 10 %). 17:15 measured 40 kWh: delivered 10 of 25 (under).
// The order: 34 of 50 kWh, under.
func TestVerifyXofY(t *testing.T) {
	v, err := Verify(OrderInput{Order: order(), Product: product("x_of_y"), Series: history(26_000_000, 40_000_000, false)})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Intervals) != 2 {
		t.Fatalf("%d intervals", len(v.Intervals))
	}
	a, b := v.Intervals[0], v.Intervals[1]
	if a.Ordered != 25_000_000 || *a.Baseline != 50_000_000 || *a.Measured != 26_000_000 || a.Delivered != 24_000_000 || a.Verdict != flexhub.VerifyOnTarget {
		t.Errorf("17:00: %+v", a)
	}
	if b.Delivered != 10_000_000 || b.Verdict != flexhub.VerifyUnder {
		t.Errorf("17:15: %+v", b)
	}
	if v.Ordered != 50_000_000 || v.Delivered != 34_000_000 || v.Verdict != flexhub.VerifyUnder {
		t.Errorf("order: ordered %d delivered %d %s", v.Ordered, v.Delivered, v.Verdict)
	}
	if len(v.BaselineDays) != 4 || v.BaselineDays[0] != "2026-03-10" || v.BaselineNote != "high 4 of 5 days" {
		t.Errorf("baseline days %v, note %q", v.BaselineDays, v.BaselineNote)
	}

	// A down order: delivered is measured − baseline.
	o := order()
	o.Direction = "down"
	v, _ = Verify(OrderInput{Order: o, Product: product("x_of_y"), Series: history(75_000_000, 50_000_000, false)})
	if v.Intervals[0].Delivered != 25_000_000 || v.Intervals[1].Delivered != 0 || v.Verdict != flexhub.VerifyUnder {
		t.Errorf("down: %+v", v)
	}

	// Ended at 17:15 by an end order: only the first interval counts.
	v, _ = Verify(OrderInput{Order: order(), Product: product("x_of_y"), Series: history(26_000_000, 40_000_000, false), EndedAt: at("2026-03-11T17:15:00Z")})
	if len(v.Intervals) != 1 || v.Verdict != flexhub.VerifyOnTarget {
		t.Errorf("ended early: %+v", v)
	}
}

// Meter data missing at 17:15: under not_delivered (the default) it
// counts as nothing delivered; under excluded it is left out.
func TestVerifyMissingData(t *testing.T) {
	v, _ := Verify(OrderInput{Order: order(), Product: product("x_of_y"), Series: history(26_000_000, 0, true)})
	b := v.Intervals[1]
	if b.Verdict != flexhub.VerifyNoData || b.Measured != nil || b.Delivered != 0 || b.Excluded || v.Ordered != 50_000_000 || v.Delivered != 24_000_000 {
		t.Errorf("not_delivered: %+v / %+v", b, v)
	}
	p := product("x_of_y")
	p.Baseline = &flexhub.BaselineSpec{MissingData: flexhub.MissingExcluded}
	v, _ = Verify(OrderInput{Order: order(), Product: p, Series: history(26_000_000, 0, true)})
	if !v.Intervals[1].Excluded || v.Ordered != 25_000_000 || v.Delivered != 24_000_000 || v.Verdict != flexhub.VerifyOnTarget {
		t.Errorf("excluded: %+v", v)
	}
}

// Too little history for 10 of 10 (lookback 14 days, eight weekdays with
// data): no baseline, nothing invented; every interval is left out.
func TestVerifyNoBaseline(t *testing.T) {
	p := product("rolling_average")
	p.Baseline = &flexhub.BaselineSpec{Y: 10, LookbackDays: 10}
	v, err := Verify(OrderInput{Order: order(), Product: p, Series: history(26_000_000, 40_000_000, false)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Verdict != flexhub.VerifyNoBaseline || !v.Intervals[0].Excluded || v.Intervals[0].Baseline != nil || v.Delivered != 0 {
		t.Errorf("%+v", v)
	}
	if v.BaselineNote == "" {
		t.Error("no reason given for the missing baseline")
	}
}

func TestVerifyMeterBeforeAndNomination(t *testing.T) {
	s := history(26_000_000, 40_000_000, false)
	i := int(at("2026-03-11T16:30:00Z").Sub(s.Start) / q)
	s.Values[i], s.Values[i+1] = 30_000_000, 31_000_001 // the half hour before: mean 30,500,000.5 -> 30,500,001
	p := product("meter_before")
	p.Baseline = &flexhub.BaselineSpec{MeterBeforeIntervals: 2}
	v, _ := Verify(OrderInput{Order: order(), Product: p, Series: s})
	if *v.Intervals[0].Baseline != 30_500_001 || v.Intervals[0].Delivered != 4_500_001 {
		t.Errorf("meter before: %+v", v.Intervals[0])
	}
	nom := &baseline.Series{Start: at("2026-03-11T17:00:00Z"), Step: q, Values: []int64{51_000_000, 52_000_000}}
	v, _ = Verify(OrderInput{Order: order(), Product: product("nominated_schedule"), Series: s, Nominated: nom})
	if v.Intervals[1].Delivered != 12_000_000 || v.BaselineNote != "the FSP's nominated schedule" {
		t.Errorf("nominated: %+v", v)
	}
	v, _ = Verify(OrderInput{Order: order(), Product: product("nominated_schedule"), Series: s})
	if v.Verdict != flexhub.VerifyNoBaseline {
		t.Errorf("no nomination: %s", v.Verdict)
	}
}

// The statement by hand, for a need that bought both: availability at
// 10.00 EUR/MW/h for 100 kW over two quarter hours = 0.25 + 0.25; the
// bid's activation price 100.00 EUR/MWh: 24 kWh = 2.40 and 10 kWh = 1.00;
// 17:15's shortfall beyond the 10 % band, 25 - 10 - 2.5 = 12.5 kWh, at
// 100 % of 100.00 EUR/MWh = -1.25. Total 0.50 + 3.40 - 1.25 = 2.65.
func TestStatementByHand(t *testing.T) {
	v, _ := Verify(OrderInput{Order: order(), Product: product("x_of_y"), Series: history(26_000_000, 40_000_000, false)})
	v.ID = "ver"
	eur := func(a string) *flexhub.Money { return &flexhub.Money{Amount: a, Currency: "EUR"} }
	aw := &flexhub.Award{ID: "awd", BidID: "bid", FSPID: "fsp", ResourceID: "res", PriceBasis: "availability", Unit: "W", Currency: "EUR",
		Intervals: []flexhub.AwardInterval{
			{Start: at("2026-03-11T17:00:00Z"), Offered: 100_000, Accepted: 100_000, Price: eur("10.00"), ActivationPrice: eur("100.00")},
			{Start: at("2026-03-11T17:15:00Z"), Offered: 100_000, Accepted: 100_000, Price: eur("10.00"), ActivationPrice: eur("100.00")},
		}}
	ob := &flexhub.Obligation{ID: "obl", AwardID: "awd", BidID: "bid", FSPID: "fsp", ResourceID: "res", Unit: "W", Direction: "up",
		Intervals: []flexhub.ObligationInterval{
			{Start: at("2026-03-11T17:00:00Z"), End: at("2026-03-11T17:15:00Z"), Quantity: 100_000},
			{Start: at("2026-03-11T17:15:00Z"), End: at("2026-03-11T17:30:00Z"), Quantity: 100_000},
		}}
	in := StatementInput{FSPID: "fsp", SystemOperatorID: "dso", PeriodStart: at("2026-03-11T00:00:00Z"), PeriodEnd: at("2026-03-12T00:00:00Z"),
		Currency: "EUR", Held: []Held{{Obligation: ob, Award: aw}}, Activated: []Activated{{Verification: v, Product: product("x_of_y"), Award: aw}}}
	st, err := BuildStatement(in)
	if err != nil {
		t.Fatal(err)
	}
	if st.Availability.Amount != "0.50" || st.Activation.Amount != "3.40" || st.Penalties.Amount != "-1.25" || st.Total.Amount != "2.65" {
		t.Errorf("totals: availability %s activation %s penalties %s total %s", st.Availability.Amount, st.Activation.Amount, st.Penalties.Amount, st.Total.Amount)
	}
	if len(st.Lines) != 5 {
		t.Fatalf("%d lines: %+v", len(st.Lines), st.Lines)
	}
	pen := st.Lines[4]
	if pen.Kind != flexhub.LinePenalty || pen.Quantity != 12_500_000 || pen.OrderID != "ord" || pen.VerificationID != "ver" || pen.AwardID != "awd" || pen.BidID != "bid" {
		t.Errorf("penalty line %+v", pen)
	}
	// every line adds up to the total
	var sum int64
	for _, l := range st.Lines {
		a, _ := flexhub.ParseAmount("", l.Amount.Amount)
		sum += a
	}
	if total, _ := flexhub.ParseAmount("", st.Total.Amount); sum != total {
		t.Errorf("lines add to %d, total %d", sum, total)
	}

	// Over-delivery paid, a penalty price of its own, another period.
	p := product("x_of_y")
	p.Settlement = &flexhub.SettlementSpec{OverDelivery: flexhub.OverDeliveryPaid, PenaltyPrice: eur("300")}
	v2, _ := Verify(OrderInput{Order: order(), Product: p, Series: history(20_000_000, 40_000_000, false)}) // 30 kWh, 10 kWh
	in.Held, in.Activated = nil, []Activated{{Verification: v2, Product: p, Award: aw}}
	st, _ = BuildStatement(in)
	// 30 kWh paid at 100 = 3.00, 10 kWh = 1.00; penalty 12.5 kWh at 300 = -3.75
	if st.Activation.Amount != "4.00" || st.Penalties.Amount != "-3.75" {
		t.Errorf("over-delivery paid: activation %s penalties %s", st.Activation.Amount, st.Penalties.Amount)
	}
	in.PeriodStart = at("2026-03-12T00:00:00Z")
	in.PeriodEnd = at("2026-03-13T00:00:00Z")
	if st, _ = BuildStatement(in); len(st.Lines) != 0 || st.Total.Amount != "0.00" {
		t.Errorf("another day: %+v", st)
	}
}

// A group of three units: 24 kWh at 17:00 splits 8/8/8, 10 kWh at 17:15
// 3.333334/3.333333/3.333333 kWh; the third metering point changed BRP at
// 17:15. The volumes add up exactly to what was delivered.
func TestAdjustments(t *testing.T) {
	v, _ := Verify(OrderInput{Order: order(), Product: product("x_of_y"), Series: history(26_000_000, 40_000_000, false)})
	mp := func(id string, asg ...flexhub.MarketAssignment) *flexhub.MeteringPoint {
		return &flexhub.MeteringPoint{ID: id, Assignments: asg}
	}
	since := at("2026-01-01T00:00:00Z")
	shares := []Share{
		{ResourceID: "u1", MeteringPoint: mp("m1", flexhub.MarketAssignment{BRPID: "brpA", SupplierID: "supA", ValidFrom: since}), Weight: 5},
		{ResourceID: "u2", MeteringPoint: mp("m2", flexhub.MarketAssignment{BRPID: "brpA", ValidFrom: since}), Weight: 5},
		{ResourceID: "u3", MeteringPoint: mp("m3", flexhub.MarketAssignment{BRPID: "brpA", ValidFrom: since},
			flexhub.MarketAssignment{BRPID: "brpB", ValidFrom: at("2026-03-11T17:15:00Z")}), Weight: 5},
	}
	adj, err := Adjustments(v, shares, q)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	byBRP := map[string]int64{}
	for _, a := range adj {
		total += a.Volume
		byBRP[a.BRPID] += a.Volume
	}
	if total != v.Delivered || len(adj) != 6 {
		t.Errorf("%d adjustments totalling %d, delivered %d", len(adj), total, v.Delivered)
	}
	if byBRP["brpB"] != 3_333_333 || byBRP["brpA"] != 24_000_000+6_666_667 {
		t.Errorf("by BRP %v", byBRP)
	}
	if adj[0].SupplierID != "supA" || adj[0].Volume != 8_000_000 {
		t.Errorf("first %+v", adj[0])
	}
	// A down order moves energy the other way.
	o := order()
	o.Direction = "down"
	v, _ = Verify(OrderInput{Order: o, Product: product("x_of_y"), Series: history(75_000_000, 60_000_000, false)})
	adj, _ = Adjustments(v, shares[:1], time.Hour)
	if len(adj) != 1 || adj[0].Volume != -35_000_000 || !adj[0].Start.Equal(at("2026-03-11T17:00:00Z")) {
		t.Errorf("down over an hourly ISP: %+v", adj)
	}
	// No BRP: refused, not lost.
	_, err = Adjustments(v, []Share{{ResourceID: "u9", MeteringPoint: mp("m9"), Weight: 1}}, q)
	if flexhub.ErrorKind(err) != flexhub.EInvalid || !strings.Contains(flexhub.ErrorMessage(err), "m9") {
		t.Errorf("a metering point without a BRP: %v, want an invalid-input error naming m9", err)
	}
	var fe *flexhub.Error
	if !errors.As(err, &fe) || fe.Rule != RuleNoBRP {
		t.Errorf("rule of %v, want %s", err, RuleNoBRP)
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		total   int64
		weights []int64
		want    []int64
	}{
		{10, []int64{1, 1, 1}, []int64{4, 3, 3}},
		{-10, []int64{1, 1, 1}, []int64{-4, -3, -3}},
		{7, []int64{0, 3, 1}, []int64{0, 5, 2}}, // 5.25, 1.75: the larger remainder gets the unit
		{1 << 60, []int64{1 << 40, 1 << 40}, []int64{1 << 59, 1 << 59}},
	} {
		got := split(c.total, c.weights)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("split(%d, %v) = %v, want %v", c.total, c.weights, got, c.want)
				break
			}
		}
	}
}

// Import energy every 5 minutes and export power every 15 minutes make a
// net import per quarter hour; a quarter hour missing one 5-minute
// reading is incomplete.
func TestNetSeries(t *testing.T) {
	imp := flexhub.MeterSeriesKey{SubjectKind: "resource", SubjectID: "r", Quantity: flexhub.QuantityActiveEnergy, Flow: flexhub.FlowImport, Resolution: 5 * time.Minute}
	exp := flexhub.MeterSeriesKey{SubjectKind: "resource", SubjectID: "r", Quantity: flexhub.QuantityActivePower, Flow: flexhub.FlowExport, Resolution: q}
	rec := func(s string, v int64) flexhub.MeterPoint { return flexhub.MeterPoint{Start: at(s).Unix(), Value: v} }
	flows := []Flow{
		{Key: imp, Points: []flexhub.MeterPoint{rec("2026-03-11T17:00:00Z", 1000), rec("2026-03-11T17:05:00Z", 2000), rec("2026-03-11T17:10:00Z", 3000),
			rec("2026-03-11T17:15:00Z", 1000), rec("2026-03-11T17:25:00Z", 1000)}},
		{Key: exp, Points: []flexhub.MeterPoint{rec("2026-03-11T17:00:00Z", 4000), rec("2026-03-11T17:15:00Z", 4000)}}, // 4 W for 15 min = 1000 mWh
	}
	s, err := NetSeries(flows, at("2026-03-11T17:00:00Z"), at("2026-03-11T17:30:00Z"), q)
	if err != nil {
		t.Fatal(err)
	}
	if s.Values[0] != 6000-1000 || s.Missing[0] || !s.Missing[1] {
		t.Errorf("net %v missing %v, want 5000 then incomplete", s.Values, s.Missing)
	}
	keys := PickFlows([]flexhub.MeterSeries{{MeterSeriesKey: exp}, {MeterSeriesKey: imp},
		{MeterSeriesKey: flexhub.MeterSeriesKey{Quantity: flexhub.QuantityActiveEnergy, Flow: flexhub.FlowImport, Resolution: time.Minute}}}, false)
	if len(keys) != 2 || keys[0] != imp || keys[1] != exp {
		t.Errorf("picked %v", keys)
	}
}

// 1-second power is summed over the quarter hour and rounded once: 900
// readings of 1.801 W are 450.25 mWh -> 450 mWh (rounding each reading
// first would give 900 x 1 mWh).
func TestNetSeriesRoundsOncePerStep(t *testing.T) {
	k := flexhub.MeterSeriesKey{SubjectKind: "resource", SubjectID: "r", Quantity: flexhub.QuantityActivePower, Flow: flexhub.FlowImport, Resolution: time.Second}
	from := at("2026-03-11T17:00:00Z")
	var pts []flexhub.MeterPoint
	for i := int64(0); i < 1800; i++ {
		pts = append(pts, flexhub.MeterPoint{Start: from.Unix() + i, Value: 1801})
	}
	pts = pts[:1799] // the second quarter hour lacks its last second
	s, err := NetSeries([]Flow{{Key: k, Points: pts}}, from, from.Add(2*q), q)
	if err != nil {
		t.Fatal(err)
	}
	if s.Values[0] != 450 || s.Missing[0] || !s.Missing[1] {
		t.Errorf("net %v missing %v, want 450 mWh then incomplete", s.Values, s.Missing)
	}
}
