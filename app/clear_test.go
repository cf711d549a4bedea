package app

import (
	"math/big"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/clearing"
)

// Unit tests of the clearing's conversion: prices and money, pricing
// rules, price bases, groups across needs, needs revised or cancelled
// after bidding. The API tests (http/clearing_test.go) cover the
// storage, visibility and exactly-once.

var day = time.Date(2027, 1, 5, 17, 0, 0, 0, time.UTC)

func money(a string) *flexhub.Money { return &flexhub.Money{Amount: a, Currency: "EUR"} }

func kwq(v float64) flexhub.MarketQuantity { return flexhub.MarketQuantity{Value: v, Unit: "kW"} }

func testNeed(id, buys string, kw ...float64) *flexhub.Need {
	n := &flexhub.Need{ID: id, SystemOperatorID: "so", Status: flexhub.NeedClosed,
		NeedSpec: flexhub.NeedSpec{Buys: buys, Direction: "up", Currency: "EUR"}}
	for i, q := range kw {
		n.Intervals = append(n.Intervals, flexhub.NeedInterval{Start: day.Add(time.Duration(i) * 15 * time.Minute), Quantity: kwq(q), MaxPrice: money("100")})
	}
	return n
}

type cell struct {
	kw         float64
	avail, act string
}

func testBid(id, fsp, need, group string, divisible bool, cells ...cell) *flexhub.Bid {
	b := &flexhub.Bid{ID: id, FSPID: fsp, Status: flexhub.BidSubmitted, SystemOperatorID: "so", OperatorID: "mo",
		BidSpec: flexhub.BidSpec{NeedID: need, ResourceID: "r-" + id, Divisible: divisible, ExclusiveGroup: group}}
	for i, c := range cells {
		if c.kw == 0 {
			continue
		}
		iv := flexhub.BidInterval{Start: day.Add(time.Duration(i) * 15 * time.Minute), Quantity: kwq(c.kw)}
		if c.avail != "" {
			iv.AvailabilityPrice = money(c.avail)
		}
		if c.act != "" {
			iv.ActivationPrice = money(c.act)
		}
		b.Intervals = append(b.Intervals, iv)
	}
	return b
}

func clearFor(t *testing.T, pricing string, needs []*flexhub.Need, bids ...*flexhub.Bid) (map[string]*flexhub.Award, map[string]*flexhub.NeedResult) {
	t.Helper()
	m := &flexhub.MarketSession{ID: "s", OperatorID: "mo", SystemOperatorID: "so", Status: flexhub.SessionClosed, SessionSpec: flexhub.SessionSpec{Pricing: pricing}}
	for _, n := range needs {
		m.NeedIDs = append(m.NeedIDs, n.ID)
	}
	in := &clearInput{session: m, product: &flexhub.Product{ProductSpec: flexhub.ProductSpec{PowerType: "active", TimeResolution: "PT15M"}}, needs: needs, bids: bids}
	out, err := computeClearing(in, clearing.Solve, day.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	awards := map[string]*flexhub.Award{}
	for _, a := range out.awards {
		awards[a.BidID] = a
	}
	results := map[string]*flexhub.NeedResult{}
	for _, r := range out.results {
		results[r.NeedID] = r
	}
	return awards, results
}

func TestClearingUniformPricing(t *testing.T) {
	// 500 kW wanted; x 300 kW @ 20.0001, y 300 kW @ 25 divisible. Uniform:
	// both paid 25.00, x 0.3 × 25 × 0.25 = 1.875, y 0.2 × 25 × 0.25 = 1.25.
	aw, rs := clearFor(t, flexhub.PricingUniform, []*flexhub.Need{testNeed("n", "capacity", 500)},
		testBid("x", "f1", "n", "", false, cell{300, "20.0001", ""}),
		testBid("y", "f2", "n", "", true, cell{300, "25", ""}))
	if aw["x"].Amount.Amount != "1.875" || aw["y"].Amount.Amount != "1.25" || aw["x"].Intervals[0].Price.Amount != "25.00" {
		t.Fatalf("uniform awards %+v %+v", aw["x"], aw["y"])
	}
	oi := rs["n"].Intervals[0]
	if oi.ClearingPrice.Amount != "25.00" || oi.MinPrice != nil || rs["n"].TotalCost.Amount != "3.125" {
		t.Fatalf("uniform outcome %+v", rs["n"])
	}
	// Pay-as-bid: x paid its own 20.0001: 0.3 × 20.0001 × 0.25 =
	// 1.5000075, rounded half up to 1.5000.
	aw, _ = clearFor(t, flexhub.PricingPayAsBid, []*flexhub.Need{testNeed("n", "capacity", 500)},
		testBid("x", "f1", "n", "", false, cell{300, "20.0001", ""}),
		testBid("y", "f2", "n", "", true, cell{300, "25", ""}))
	if aw["x"].Amount.Amount != "1.50" || aw["x"].Intervals[0].Price.Amount != "20.0001" {
		t.Fatalf("pay-as-bid award %+v", aw["x"])
	}
}

func TestClearingPriceBases(t *testing.T) {
	// Energy only: selected on the activation price. Both: on the
	// availability price, the activation price recorded.
	aw, _ := clearFor(t, flexhub.PricingPayAsBid, []*flexhub.Need{testNeed("e", "energy", 100), testNeed("b", "both", 100)},
		testBid("cheap-act", "f1", "e", "", false, cell{100, "", "50"}),
		testBid("dear-act", "f2", "e", "", false, cell{100, "", "60"}),
		testBid("cheap-avail", "f1", "b", "", false, cell{100, "5", "200"}),
		testBid("dear-avail", "f2", "b", "", false, cell{100, "6", "10"}))
	if aw["cheap-act"].Status != flexhub.AwardAccepted || aw["cheap-act"].PriceBasis != flexhub.PriceActivation || aw["dear-act"].Status != flexhub.AwardRejected {
		t.Fatalf("energy need: %+v / %+v", aw["cheap-act"], aw["dear-act"])
	}
	a := aw["cheap-avail"]
	if a.Status != flexhub.AwardAccepted || a.Intervals[0].ActivationPrice.Amount != "200.00" || a.Intervals[0].Price.Amount != "5.00" || a.Amount.Amount != "0.125" {
		t.Fatalf("both need: %+v", a.Intervals[0])
	}
}

func TestClearingGroupsAndRevisions(t *testing.T) {
	n1, n2 := testNeed("n1", "capacity", 100, 100), testNeed("n2", "capacity", 100)
	cancelled := testNeed("n3", "capacity", 100)
	cancelled.Status = flexhub.NeedCancelled
	// After bidding, n1 dropped its second interval and lowered its cap
	// to 30 on the first.
	n1.Intervals = n1.Intervals[:1]
	n1.Intervals[0].MaxPrice = money("30")
	aw, rs := clearFor(t, flexhub.PricingPayAsBid, []*flexhub.Need{n1, n2, cancelled},
		// g1 is FSP f1's group across two needs, one named by bid id.
		testBid("a", "f1", "n1", "", false, cell{100, "10", ""}),
		testBid("b", "f1", "n2", "a", false, cell{100, "10", ""}),
		testBid("c", "f2", "n2", "", false, cell{100, "20", ""}),
		// Same group name, another FSP: not in f1's group.
		testBid("d", "f2", "n1", "a", false, cell{0, "", ""}, cell{100, "1", ""}),
		testBid("e", "f3", "n1", "", false, cell{100, "31", ""}),
		testBid("f", "f3", "n3", "", false, cell{100, "1", ""}))
	want := map[string]string{"a": flexhub.AwardAccepted, "b": flexhub.AwardRejected, "c": flexhub.AwardAccepted,
		"d": flexhub.AwardRejected, "e": flexhub.AwardRejected, "f": flexhub.AwardRejected}
	for id, st := range want {
		if aw[id].Status != st {
			t.Errorf("bid %s %s (%s), want %s", id, aw[id].Status, aw[id].Reason, st)
		}
	}
	if aw["b"].Reason != "excluded: bid a of exclusive group a was selected" {
		t.Errorf("b: %q", aw["b"].Reason)
	}
	if aw["d"].Reason != reasonNoInterval || aw["d"].Intervals[0].Offered != 0 {
		t.Errorf("d: %+v", aw["d"])
	}
	if aw["e"].Reason != clearing.ReasonPriceCap || aw["f"].Reason != reasonNeedCancelled {
		t.Errorf("e: %q, f: %q", aw["e"].Reason, aw["f"].Reason)
	}
	if !rs["n3"].Cancelled || rs["n1"].Intervals[0].Shortfall != 0 || rs["n2"].Intervals[0].Accepted != 100_000 {
		t.Errorf("results %+v %+v %+v", rs["n1"], rs["n2"], rs["n3"])
	}
}

func TestMoneyRounding(t *testing.T) {
	for _, c := range []struct{ w, price, secs, want int64 }{
		{300_000, 300_000, 900, 22_500},         // 0.3 MW × 30 × 0.25 h = 2.25
		{1, 1, 900, 0},                          // far below a ten-thousandth
		{2_000, 1, 900_000, 1},                  // 0.0005 exactly: half up
		{1 << 62, 10_000_000_000_000, 86400, 0}, // overflow below
	} {
		got, err := moneyFor(c.w, c.price, c.secs)
		if c.w == 1<<62 {
			if err == nil {
				t.Errorf("%d W at %d for %d s: no overflow error, got %d", c.w, c.price, c.secs, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%d W at %d for %d s: %d, %v, want %d", c.w, c.price, c.secs, got, err, c.want)
		}
	}
	if v := roundHalfUp(big.NewInt(5), big.NewInt(2)); v.Int64() != 3 {
		t.Errorf("5/2 rounds to %d", v.Int64())
	}
}

func TestScaleProblem(t *testing.T) {
	p := &clearing.Problem{Demand: []int64{500_000}, Bids: []clearing.Bid{
		{Quantity: []int64{300_000}, Price: []int64{200_000}, MinQuantity: 100_000},
		{Quantity: []int64{200_000}, Price: []int64{250_000}}}}
	// Small totals: prices divided by their gcd (50,000), quantities kept.
	s := scaleProblem(p)
	if s.q != 1 || s.p.Demand[0] != 500_000 || s.p.Bids[0].Quantity[0] != 300_000 || s.p.Bids[0].Price[0] != 4 || s.p.Bids[1].Price[0] != 5 {
		t.Fatalf("scaled %+v by %d", s.p, s.q)
	}
	// Totals beyond the engine's int64 bound: quantities in 100 kW steps.
	p.Bids[0].Price[0], p.Bids[1].Price[0] = 1<<50+1, 1<<50
	s = scaleProblem(p)
	if s.q != 100_000 || s.p.Demand[0] != 5 || s.p.Bids[0].Quantity[0] != 3 || s.p.Bids[0].MinQuantity != 1 {
		t.Fatalf("scaled %+v by %d", s.p, s.q)
	}
}
