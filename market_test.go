package flexhub

import (
	"testing"
	"time"
)

func marketProduct() *Product {
	return &Product{ID: NewID(), ProductSpec: ProductSpec{Name: "mFRR", Direction: "up", PowerType: "active", MinBidSize: KW(100),
		TimeResolution: "PT15M", Remuneration: []string{"capacity", "energy"}}}
}

func TestNeedValidate(t *testing.T) {
	day := time.Date(2026, 5, 4, 17, 0, 0, 0, time.UTC)
	p := marketProduct()
	good := func() NeedSpec {
		return NeedSpec{ProductID: p.ID, GridAreaID: NewID(), Direction: "up", Buys: "capacity", Intervals: []NeedInterval{
			{Start: day, Quantity: MarketQuantity{Value: 1, Unit: "MW"}, MaxPrice: &Money{Amount: "50", Currency: "EUR"}},
			{Start: day.Add(15 * time.Minute), Quantity: MarketQuantity{Value: 1, Unit: "MW"}}}}
	}
	n := good()
	if err := n.Validate(p); err != nil || n.Currency != "EUR" || n.Intervals[0].MaxPrice.Amount != "50.00" {
		t.Fatalf("good need: %v %+v", err, n)
	}
	for _, c := range []struct {
		name, rule, field string
		edit              func(*NeedSpec)
	}{
		{"no location", "need.location", "grid_area_id", func(n *NeedSpec) { n.GridAreaID = "" }},
		{"two locations", "need.location", "grid_area_id", func(n *NeedSpec) { n.ConnectionPointIDs = []string{NewID()} }},
		{"wrong direction", "need.direction", "direction", func(n *NeedSpec) { n.Direction = "down" }},
		{"energy not paid", "need.buys", "buys", func(n *NeedSpec) { p.Remuneration = []string{"capacity"}; n.Buys = "both" }},
		{"no intervals", "need.intervals", "intervals", func(n *NeedSpec) { n.Intervals = nil }},
		{"not aligned", "interval.aligned", "intervals[1].start", func(n *NeedSpec) { n.Intervals[1].Start = day.Add(10 * time.Minute) }},
		{"duplicate", "interval.duplicate", "intervals[1].start", func(n *NeedSpec) { n.Intervals[1].Start = day }},
		{"unsorted", "interval.sorted", "intervals[1].start", func(n *NeedSpec) { n.Intervals[1].Start = day.Add(-15 * time.Minute) }},
		{"zero quantity", "need.quantity", "intervals[0].quantity.value", func(n *NeedSpec) { n.Intervals[0].Quantity.Value = 0 }},
		{"reactive unit for active product", "quantity.unit", "intervals[0].quantity.unit", func(n *NeedSpec) { n.Intervals[0].Quantity.Unit = "Mvar" }},
		{"other currency", "need.currency", "intervals[0].max_price.currency", func(n *NeedSpec) { n.Intervals[0].MaxPrice.Currency = "SEK" }},
		{"activation cap on a capacity need", "need.price", "intervals[0].max_activation_price", func(n *NeedSpec) {
			n.Intervals[0].MaxActivationPrice = &Money{Amount: "1", Currency: "EUR"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p = marketProduct()
			n := good()
			c.edit(&n)
			err := n.Validate(p)
			if ErrorRule(err) != c.rule || ErrorField(err) != c.field {
				t.Fatalf("got %v (rule %q, field %q), want rule %q on %q", err, ErrorRule(err), ErrorField(err), c.rule, c.field)
			}
		})
	}
}

func TestBidCheck(t *testing.T) {
	day := time.Date(2026, 5, 4, 17, 0, 0, 0, time.UTC)
	p := marketProduct()
	need := &Need{ID: NewID(), NeedSpec: NeedSpec{Buys: "both", Currency: "EUR", Intervals: []NeedInterval{
		{Start: day, MaxPrice: &Money{Amount: "50.00", Currency: "EUR"}, MaxActivationPrice: &Money{Amount: "200.00", Currency: "EUR"}},
		{Start: day.Add(15 * time.Minute)}}}}
	good := func() BidSpec {
		return BidSpec{Intervals: []BidInterval{
			{Start: day, Quantity: MarketQuantity{Value: 200, Unit: "kW"}, AvailabilityPrice: &Money{Amount: "49.9999", Currency: "EUR"}, ActivationPrice: &Money{Amount: "120", Currency: "EUR"}},
			{Start: day.Add(15 * time.Minute), Quantity: MarketQuantity{Value: 0.3, Unit: "MW"}, AvailabilityPrice: &Money{Amount: "80", Currency: "EUR"}, ActivationPrice: &Money{Amount: "1", Currency: "EUR"}}}}
	}
	b := good()
	plan, err := b.Check(p, need)
	if err != nil || plan.Quantities[1] != 300_000 || plan.AvailabilityPrices[0] != 499999 || plan.Span != 30*time.Minute || b.Intervals[0].ActivationPrice.Amount != "120.00" {
		t.Fatalf("good bid: %v %+v", err, plan)
	}
	for _, c := range []struct {
		name, rule, field string
		edit              func(*BidSpec)
	}{
		{"outside the need", "bid.interval_in_need", "intervals[1].start", func(b *BidSpec) { b.Intervals[1].Start = day.Add(time.Hour) }},
		{"not aligned", "interval.aligned", "intervals[0].start", func(b *BidSpec) { b.Intervals[0].Start = day.Add(time.Minute) }},
		{"negative", "bid.quantity", "intervals[0].quantity.value", func(b *BidSpec) { b.Intervals[0].Quantity.Value = -1 }},
		{"below min bid", "bid.min_bid_size", "intervals[0].quantity.value", func(b *BidSpec) { b.Intervals[0].Quantity.Value = 99 }},
		{"above max price", "bid.price.max", "intervals[0].availability_price.amount", func(b *BidSpec) { b.Intervals[0].AvailabilityPrice.Amount = "50.0001" }},
		{"above max activation price", "bid.price.max", "intervals[0].activation_price.amount", func(b *BidSpec) { b.Intervals[0].ActivationPrice.Amount = "200.01" }},
		{"missing price", "bid.price.required", "intervals[1].activation_price", func(b *BidSpec) { b.Intervals[1].ActivationPrice = nil }},
		{"wrong currency", "bid.price.currency", "intervals[0].availability_price.currency", func(b *BidSpec) { b.Intervals[0].AvailabilityPrice.Currency = "USD" }},
		{"five decimals", "bid.price.format", "intervals[0].availability_price.amount", func(b *BidSpec) { b.Intervals[0].AvailabilityPrice.Amount = "1.00001" }},
		{"min quantity on an indivisible bid", "bid.min_quantity", "min_quantity", func(b *BidSpec) { b.MinQuantity = &MarketQuantity{Value: 100, Unit: "kW"} }},
		{"divisible without min quantity", "bid.min_bid_size", "min_quantity", func(b *BidSpec) { b.Divisible = true }},
		{"min quantity above quantity", "bid.min_quantity", "min_quantity.value", func(b *BidSpec) {
			b.Divisible, b.MinQuantity = true, &MarketQuantity{Value: 250, Unit: "kW"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := good()
			c.edit(&b)
			_, err := b.Check(p, need)
			if ErrorRule(err) != c.rule || ErrorField(err) != c.field {
				t.Fatalf("got %v (rule %q, field %q), want rule %q on %q", err, ErrorRule(err), ErrorField(err), c.rule, c.field)
			}
		})
	}
}

func TestSessionGates(t *testing.T) {
	open := time.Date(2026, 5, 3, 10, 0, 0, 0, time.UTC)
	m := &MarketSession{ID: NewID(), SessionSpec: SessionSpec{GateOpening: open, GateClosure: open.Add(2 * time.Hour)}, Status: SessionScheduled}
	if ErrorKind(m.AcceptsBids(open.Add(-time.Second))) != EConflict || m.Due(open.Add(-time.Second)) != "" {
		t.Fatal("before gate opening: 409 and nothing due")
	}
	if m.Due(open) != "open" || m.Open(open) != nil || m.AcceptsBids(open) != nil {
		t.Fatal("at gate opening the session opens and takes bids")
	}
	closure := open.Add(2 * time.Hour)
	if ErrorKind(m.AcceptsBids(closure)) != EGone || ErrorRule(m.AcceptsBids(closure)) != "session.gate_closed" {
		t.Fatal("at gate closure bids are gone, even before the scheduler closed the session")
	}
	if m.Due(closure) != "close" || m.Close(closure) != nil || m.Due(closure.Add(time.Hour)) != "" || !m.GateClosed(closure) {
		t.Fatal("closing")
	}
	if ErrorKind(m.Cancel(closure)) != EGone {
		t.Fatal("a closed session cannot be cancelled")
	}
}
