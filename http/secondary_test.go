package http_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/sqlite"
)

// smWorld is the market world after one clearing: FSP A owes an
// obligation of 200 kW in each of the need's three quarter hours to the
// TSO, and FSP C, like FSP B, has a unit prequalified for the product and
// the grid in the need's grid area. The service runs on a clock the test
// moves (offset from the real time), so no test sleeps through a gate or
// an objection window.
type smWorld struct {
	*mkWorld
	offset     atomic.Int64 // added to the real time, in nanoseconds
	fspC, cKey string
	unitC      string
	obligation flexhub.Obligation
}

func newSecondaryWorld(t *testing.T) *smWorld {
	t.Helper()
	return newSecondaryWorldOn(t, newEnv(t))
}

// newSecondaryWorldOn is newSecondaryWorld on a given environment.
func newSecondaryWorldOn(t *testing.T, e *env) *smWorld {
	t.Helper()
	w := &smWorld{mkWorld: newMarketWorldOn(t, e)}
	w.svc.SetClock(w.now)
	w.fspC, w.cKey = w.party("sm-fsp-c", "fsp")
	w.unitC = w.unitWith(w.cp, w.cKey, 300, nil)
	w.approve(w.cKey, w.unitC, nil)
	w.grid(w.cKey, w.unitC, map[string]any{"outcome": "approved"})
	w.do("POST", "/v1/bids", w.fspAKey, w.bid(w.unitA), 201, nil)
	w.advance(time.Hour + time.Second) // past the session's gate closure
	var obs struct{ Items []flexhub.Obligation }
	w.do("GET", "/v1/obligations", w.fspAKey, nil, 200, &obs)
	if len(obs.Items) != 1 {
		t.Fatalf("FSP A owes %d obligations after the clearing, want 1", len(obs.Items))
	}
	w.obligation = obs.Items[0]
	return w
}

// now is the test's clock: the real time plus the offset.
func (w *smWorld) now() time.Time {
	return time.Now().Add(time.Duration(w.offset.Load())).UTC().Truncate(time.Microsecond)
}

// advance moves the service clock on by d and runs one scheduler sweep.
func (w *smWorld) advance(d time.Duration) {
	w.t.Helper()
	w.offset.Add(int64(d))
	if _, err := w.svc.AdvanceSessions(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

// offerBody is a valid offer of FSP A's obligation.
func (w *smWorld) offerBody() map[string]any {
	return map[string]any{"obligation_id": w.obligation.ID, "price": eur("5.50"), "expiry": w.day.Add(-2 * time.Hour)}
}

func (w *smWorld) offer() flexhub.SecondaryOffer {
	w.t.Helper()
	var o flexhub.SecondaryOffer
	w.do("POST", "/v1/secondary-offers", w.fspAKey, w.offerBody(), 201, &o)
	return o
}

func count(e *env, objectID, action string) int {
	n := 0
	for _, a := range pqAudit(e, objectID) {
		if a.Action == action {
			n++
		}
	}
	return n
}

// A full trade: FSP A offers, FSP B asks, A confirms, the TSO objects;
// then FSP C asks, A confirms, the window passes, and the obligation is
// C's, exactly once.
func TestSecondaryMarketTrade(t *testing.T) {
	w := newSecondaryWorld(t)
	off := w.offer()
	if off.Status != flexhub.OfferOpen || len(off.Intervals) != 3 || off.Intervals[0].Quantity != 200_000 || off.ObjectionMinutes != 15 || off.SystemOperatorID != w.tso {
		t.Fatalf("offer %+v", off)
	}
	offerPath := "/v1/secondary-offers/" + off.ID
	w.run([]scenario{
		{name: "the seller reads its offer", method: "GET", path: offerPath, token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"open"`, `"amount":"5.50"`}},
		{name: "an eligible FSP reads it without the seller's resource", method: "GET", path: offerPath, token: w.cKey, wantStatus: 200,
			wantBody: []string{off.ID, w.obligation.NeedID}, notWantBody: []string{w.unitA, w.obligation.BidID, w.obligation.AwardID}},
		{name: "an eligible FSP lists it", method: "GET", path: "/v1/secondary-offers", token: w.fspBKey, wantStatus: 200, wantBody: []string{off.ID}},
		{name: "the buying system operator reads it", method: "GET", path: offerPath, token: w.tsoKey, wantStatus: 200},
		{name: "a consumer does not", method: "GET", path: offerPath, token: w.consumerKey, wantStatus: 404},
		{name: "a consumer lists nothing", method: "GET", path: "/v1/secondary-offers", token: w.consumerKey, wantStatus: 200, wantBody: []string{`"items":[]`}},
		{name: "eligible FSPs were told", method: "GET", path: "/v1/notifications?limit=500", token: w.cKey, wantStatus: 200, wantBody: []string{`"type":"offer.published"`, off.ID}},
	})

	// FSP B asks; A confirms; the TSO objects.
	var tb flexhub.Trade
	w.do("POST", "/v1/trades", w.fspBKey, map[string]any{"offer_id": off.ID, "resource_id": w.unitB}, 201, &tb)
	if tb.Status != flexhub.TradeProposed || tb.SellerFSPID != w.fspA || tb.BuyerFSPID != w.fspB || tb.Price.Amount != "5.50" {
		t.Fatalf("trade %+v", tb)
	}
	tradeB := "/v1/trades/" + tb.ID
	w.run([]scenario{
		{name: "FSP C, outside the deal, cannot read the trade", method: "GET", path: tradeB, token: w.cKey, wantStatus: 404},
		{name: "nor list it", method: "GET", path: "/v1/trades", token: w.cKey, wantStatus: 200, wantBody: []string{`"items":[]`}},
		{name: "nor confirm it", method: "POST", path: tradeB + "/confirm", token: w.cKey, wantStatus: 404},
		{name: "the buyer cannot confirm for the seller", method: "POST", path: tradeB + "/confirm", token: w.fspBKey, wantStatus: 403},
		{name: "the seller was told", method: "GET", path: "/v1/notifications?limit=500", token: w.fspAKey, wantStatus: 200, wantBody: []string{`"type":"trade.proposed"`, tb.ID}},
		{name: "no objection before the seller confirms", method: "POST", path: tradeB + "/objection", token: w.tsoKey, body: map[string]any{"reasons": "no"},
			wantStatus: 409, wantBody: []string{rule("trade.not_confirmed")}},
		{name: "the seller confirms", method: "POST", path: tradeB + "/confirm", token: w.fspAKey, wantStatus: 200,
			wantBody: []string{`"status":"confirmed"`, `"objection_window_end"`, `"seller_confirmed_at"`}},
		{name: "the offer is reserved", method: "GET", path: offerPath, token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"reserved"`, tb.ID}},
		{name: "and hidden from FSPs outside the deal", method: "GET", path: offerPath, token: w.cKey, wantStatus: 404},
		{name: "the TSO was told", method: "GET", path: "/v1/notifications?limit=500", token: w.tsoKey, wantStatus: 200,
			wantBody: []string{`"type":"trade.confirmed"`, "/v1/trades/" + tb.ID + "/objection"}},
		{name: "an FSP cannot object", method: "POST", path: tradeB + "/objection", token: w.fspBKey, body: map[string]any{"reasons": "no"}, wantStatus: 403},
		{name: "an objection needs reasons", method: "POST", path: tradeB + "/objection", token: w.tsoKey, body: map[string]any{"reasons": " "},
			wantStatus: 422, wantBody: []string{rule("trade.objection_reasons")}},
		{name: "the TSO objects", method: "POST", path: tradeB + "/objection", token: w.tsoKey, body: map[string]any{"reasons": "FSP B failed its last activation test"},
			wantStatus: 200, wantBody: []string{`"status":"objected"`, "activation test"}},
		{name: "both FSPs hear why", method: "GET", path: "/v1/notifications?limit=500", token: w.fspBKey, wantStatus: 200,
			wantBody: []string{`"type":"trade.objected"`, "activation test"}},
		{name: "the offer is open again", method: "GET", path: offerPath, token: w.cKey, wantStatus: 200, wantBody: []string{`"status":"open"`}},
	})
	w.advance(20 * time.Minute)
	w.run([]scenario{
		{name: "an objected trade never completes", method: "GET", path: tradeB, token: w.fspBKey, wantStatus: 200, wantBody: []string{`"status":"objected"`}},
		{name: "the obligation stays with A", method: "GET", path: "/v1/obligations/" + w.obligation.ID, token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"active"`, w.fspA}},
	})

	// FSP C asks; A confirms; nobody objects.
	var tc flexhub.Trade
	w.do("POST", "/v1/trades", w.cKey, map[string]any{"offer_id": off.ID, "resource_id": w.unitC}, 201, &tc)
	w.do("POST", "/v1/trades/"+tc.ID+"/confirm", w.fspAKey, nil, 200, &tc)
	w.advance(14 * time.Minute)
	w.run([]scenario{{name: "not before the window ends", method: "GET", path: "/v1/trades/" + tc.ID, token: w.cKey, wantStatus: 200, wantBody: []string{`"status":"confirmed"`}}})
	w.advance(2 * time.Minute)
	w.advance(time.Minute) // a second sweep changes nothing
	w.do("GET", "/v1/trades/"+tc.ID, w.cKey, nil, 200, &tc)
	if tc.Status != flexhub.TradeCompleted || tc.NewObligationID == "" {
		t.Fatalf("trade after the window: %+v", tc)
	}
	var old, nu flexhub.Obligation
	w.do("GET", "/v1/obligations/"+w.obligation.ID, w.fspAKey, nil, 200, &old)
	w.do("GET", "/v1/obligations/"+tc.NewObligationID, w.cKey, nil, 200, &nu)
	if old.Status != flexhub.ObligationTransferred || old.TransferredTo != nu.ID {
		t.Errorf("old obligation %+v", old)
	}
	if nu.Status != flexhub.ObligationActive || nu.FSPID != w.fspC || nu.ResourceID != w.unitC || nu.TradeID != tc.ID || nu.TransferredFrom != old.ID ||
		nu.SystemOperatorID != w.tso || len(nu.Intervals) != 3 {
		t.Fatalf("new obligation %+v", nu)
	}
	for i, iv := range nu.Intervals {
		if iv != old.Intervals[i] {
			t.Errorf("interval %d: %+v, want %+v", i, iv, old.Intervals[i])
		}
	}
	var cObs struct{ Items []flexhub.Obligation }
	w.do("GET", "/v1/obligations", w.cKey, nil, 200, &cObs)
	if len(cObs.Items) != 1 || count(w.env, tc.ID, "trade.completed") != 1 || count(w.env, nu.ID, "obligation.created") != 1 {
		t.Fatalf("exactly once: C owes %d obligations; %d trade.completed entries", len(cObs.Items), count(w.env, tc.ID, "trade.completed"))
	}
	w.run([]scenario{
		{name: "the offer is traded", method: "GET", path: offerPath, token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"traded"`}},
		{name: "FSP B, outside this deal, cannot read C's trade", method: "GET", path: "/v1/trades/" + tc.ID, token: w.fspBKey, wantStatus: 404},
		{name: "B lists only its own trade", method: "GET", path: "/v1/trades", token: w.fspBKey, wantStatus: 200, wantBody: []string{tb.ID}, notWantBody: []string{tc.ID}},
		{name: "nor C's new obligation", method: "GET", path: "/v1/obligations/" + nu.ID, token: w.fspBKey, wantStatus: 404},
		{name: "the TSO lists both trades", method: "GET", path: "/v1/trades?system_operator_id=self", token: w.tsoKey, wantStatus: 200, wantBody: []string{tb.ID, tc.ID}},
		{name: "the TSO sees both obligations", method: "GET", path: "/v1/obligations?system_operator_id=self", token: w.tsoKey, wantStatus: 200,
			wantBody: []string{`"status":"transferred"`, nu.ID, w.fspC}},
		{name: "A lists its transferred obligation", method: "GET", path: "/v1/obligations?status=transferred", token: w.fspAKey, wantStatus: 200, wantBody: []string{old.ID}},
		{name: "every party hears it completed", method: "GET", path: "/v1/notifications?limit=500", token: w.tsoKey, wantStatus: 200, wantBody: []string{`"type":"trade.completed"`, nu.ID}},
		{name: "the buyer too", method: "GET", path: "/v1/notifications?limit=500", token: w.cKey, wantStatus: 200, wantBody: []string{`"type":"trade.completed"`}},
		{name: "too late to object", method: "POST", path: "/v1/trades/" + tc.ID + "/objection", token: w.tsoKey, body: map[string]any{"reasons": "late"},
			wantStatus: 409, wantBody: []string{rule("trade.not_confirmed")}},
		{name: "A cannot offer what it no longer owes", method: "POST", path: "/v1/secondary-offers", token: w.fspAKey, body: w.offerBody(),
			wantStatus: 409, wantBody: []string{rule("offer.obligation_active")}},
	})
	// C may sell on, until delivery starts.
	w.offset.Add(int64(time.Until(w.day.Add(time.Minute))) - w.offset.Load())
	w.run([]scenario{{name: "no offer after the obligation started", method: "POST", path: "/v1/secondary-offers", token: w.cKey,
		body:       map[string]any{"obligation_id": nu.ID, "price": eur("1"), "expiry": w.day.Add(time.Hour)},
		wantStatus: 410, wantBody: []string{rule("offer.delivery_started"), "body.obligation_id"}}})
	w.env.auditCount() // verifies the chain
}

// Bad input is refused with the rule that failed, and changes nothing.
func TestSecondaryMarketBadInput(t *testing.T) {
	w := newSecondaryWorld(t)
	off := w.offer()
	unprequalified := w.unitWith(w.cp, w.fspBKey, 300, nil)
	noGrid := w.unitWith(w.cp, w.fspBKey, 300, nil)
	w.approve(w.fspBKey, noGrid, nil)
	small := w.unitWith(w.cp, w.fspBKey, 100, nil)
	w.approve(w.fspBKey, small, nil)
	w.grid(w.fspBKey, small, map[string]any{"outcome": "approved"})
	var gaObj flexhub.GridArea
	w.do("GET", "/v1/grid-areas/"+w.ga, w.dsoKey, nil, 200, &gaObj)
	var ga2, cp2 pqID
	w.do("POST", "/v1/grid-areas", w.dsoKey, map[string]any{"eic": eic("10YSM-GA2"), "name": "other area", "control_area_id": gaObj.ControlAreaID}, 201, &ga2)
	w.do("POST", "/v1/connection-points", w.dsoKey, map[string]any{"code": "CP-SM-2", "grid_area_id": ga2.ID, "node_ref": "MV bus 2"}, 201, &cp2)
	elsewhere := w.unitWith(cp2.ID, w.fspBKey, 300, nil)
	w.approve(w.fspBKey, elsewhere, nil)
	w.grid(w.fspBKey, elsewhere, map[string]any{"outcome": "approved"})

	before := w.auditCount()
	trade := func(resource string) map[string]any {
		return map[string]any{"offer_id": off.ID, "resource_id": resource}
	}
	edited := func(k string, v any) map[string]any {
		b := w.offerBody()
		b[k] = v
		return b
	}
	w.run([]scenario{
		{name: "another FSP's obligation", method: "POST", path: "/v1/secondary-offers", token: w.fspBKey, body: w.offerBody(),
			wantStatus: 404, wantBody: []string{rule("offer.obligation"), "body.obligation_id"}},
		{name: "a system operator offers nothing", method: "POST", path: "/v1/secondary-offers", token: w.tsoKey, body: w.offerBody(), wantStatus: 403},
		{name: "a second live offer", method: "POST", path: "/v1/secondary-offers", token: w.fspAKey, body: w.offerBody(), wantStatus: 409, wantBody: []string{rule("offer.duplicate")}},
		{name: "expiry after delivery starts", method: "POST", path: "/v1/secondary-offers", token: w.fspAKey, body: edited("expiry", w.day.Add(time.Minute)),
			wantStatus: 422, wantBody: []string{rule("offer.expiry")}},
		{name: "expiry in the past", method: "POST", path: "/v1/secondary-offers", token: w.fspAKey, body: edited("expiry", time.Now().Add(-time.Hour)),
			wantStatus: 422, wantBody: []string{rule("offer.expiry"), "body.expiry"}},
		{name: "negative price", method: "POST", path: "/v1/secondary-offers", token: w.fspAKey, body: edited("price", eur("-1")),
			wantStatus: 422, wantBody: []string{rule("offer.price.negative"), "body.price.amount"}},
		{name: "objection window too long", method: "POST", path: "/v1/secondary-offers", token: w.fspAKey, body: edited("objection_minutes", 1441), wantStatus: 422},
		{name: "named buyer is not an FSP", method: "POST", path: "/v1/secondary-offers", token: w.fspAKey, body: edited("buyer_fsp_id", w.tso),
			wantStatus: 422, wantBody: []string{rule("offer.buyer"), "body.buyer_fsp_id"}},
		{name: "buyer not prequalified for the product", method: "POST", path: "/v1/trades", token: w.fspBKey, body: trade(unprequalified),
			wantStatus: 422, wantBody: []string{rule("trade.product_prequalification"), "no approved prequalification"}},
		{name: "buyer's resource outside the need's location", method: "POST", path: "/v1/trades", token: w.fspBKey, body: trade(elsewhere),
			wantStatus: 422, wantBody: []string{rule("trade.location"), "outside need", "body.resource_id"}},
		{name: "buyer without grid prequalification", method: "POST", path: "/v1/trades", token: w.fspBKey, body: trade(noGrid),
			wantStatus: 422, wantBody: []string{rule("trade.grid_prequalification")}},
		{name: "buyer's resource too small", method: "POST", path: "/v1/trades", token: w.fspBKey, body: trade(small),
			wantStatus: 422, wantBody: []string{rule("trade.capability")}},
		{name: "someone else's resource", method: "POST", path: "/v1/trades", token: w.fspBKey, body: trade(w.unitC),
			wantStatus: 422, wantBody: []string{rule("trade.resource_owned")}},
		{name: "the seller's own offer", method: "POST", path: "/v1/trades", token: w.fspAKey, body: trade(w.unitA),
			wantStatus: 422, wantBody: []string{rule("trade.own_offer")}},
		{name: "an unknown offer", method: "POST", path: "/v1/trades", token: w.fspBKey, body: map[string]any{"offer_id": "0195a000-0000-7000-8000-000000000bad", "resource_id": w.unitB},
			wantStatus: 404, wantBody: []string{rule("trade.offer")}},
		{name: "a consumer trades nothing", method: "POST", path: "/v1/trades", token: w.consumerKey, body: trade(w.unitB), wantStatus: 403},
		{name: "only the seller cancels", method: "POST", path: "/v1/secondary-offers/" + off.ID + "/cancel", token: w.fspBKey, wantStatus: 403},
		{name: "a bad status filter", method: "GET", path: "/v1/trades?status=done", token: w.fspBKey, wantStatus: 422},
	})
	if after := w.auditCount(); after != before {
		t.Fatalf("refused requests wrote %d audit entries", after-before)
	}

	// A proposed trade is cancelled with its offer; the buyer hears it.
	var tr flexhub.Trade
	w.do("POST", "/v1/trades", w.fspBKey, trade(w.unitB), 201, &tr)
	w.run([]scenario{
		{name: "a second request by the same buyer", method: "POST", path: "/v1/trades", token: w.fspBKey, body: trade(w.unitB), wantStatus: 409, wantBody: []string{rule("trade.duplicate")}},
		{name: "the seller cancels the offer", method: "POST", path: "/v1/secondary-offers/" + off.ID + "/cancel", token: w.fspAKey, wantStatus: 200, wantBody: []string{`"status":"cancelled"`}},
		{name: "the trade went with it", method: "GET", path: "/v1/trades/" + tr.ID, token: w.fspBKey, wantStatus: 200, wantBody: []string{`"status":"cancelled"`}},
		{name: "the buyer heard", method: "GET", path: "/v1/notifications?limit=500", token: w.fspBKey, wantStatus: 200, wantBody: []string{`"type":"offer.cancelled"`}},
		{name: "no trade on a cancelled offer", method: "POST", path: "/v1/trades", token: w.cKey, body: map[string]any{"offer_id": off.ID, "resource_id": w.unitC},
			wantStatus: 404, wantBody: []string{rule("trade.offer")}},
	})

	// An offer expires by the scheduler, with its proposed trades.
	off2 := w.offer()
	var tr2 flexhub.Trade
	w.do("POST", "/v1/trades", w.cKey, map[string]any{"offer_id": off2.ID, "resource_id": w.unitC}, 201, &tr2)
	w.offset.Add(int64(time.Until(w.day.Add(-2*time.Hour+time.Second))) - w.offset.Load())
	w.advance(0)
	var got flexhub.SecondaryOffer
	w.do("GET", "/v1/secondary-offers/"+off2.ID, w.fspAKey, nil, 200, &got)
	w.do("GET", "/v1/trades/"+tr2.ID, w.cKey, nil, 200, &tr2)
	if got.Status != flexhub.OfferExpired || tr2.Status != flexhub.TradeExpired || !strings.Contains(tr2.EndReason, "expired") {
		t.Fatalf("after expiry: offer %s, trade %s (%s)", got.Status, tr2.Status, tr2.EndReason)
	}
}

// The seller cannot confirm when the objection window would run into
// delivery: the system operator must know who delivers before it starts.
func TestSecondaryMarketWindowBeforeDelivery(t *testing.T) {
	w := newSecondaryWorld(t)
	body := w.offerBody()
	body["objection_minutes"] = 1440
	var off flexhub.SecondaryOffer
	w.do("POST", "/v1/secondary-offers", w.fspAKey, body, 201, &off)
	var tr flexhub.Trade
	w.do("POST", "/v1/trades", w.fspBKey, map[string]any{"offer_id": off.ID, "resource_id": w.unitB}, 201, &tr)
	w.offset.Add(int64(time.Until(w.day.Add(-20*time.Hour))) - w.offset.Load())
	w.run([]scenario{{name: "window after delivery", method: "POST", path: "/v1/trades/" + tr.ID + "/confirm", token: w.fspAKey,
		wantStatus: 410, wantBody: []string{rule("trade.window_after_delivery")}}})
}

// Several flexhub instances on one database sweep the same trade at the
// moment its objection window ends: the obligation moves exactly once,
// on both stores.
func TestSecondaryMarketCompletionRace(t *testing.T) {
	stores := map[string]func(t *testing.T) flexhub.Store{
		"sqlite": func(t *testing.T) flexhub.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "race.db"), true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) flexhub.Store { return openPostgres(t) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			w := newSecondaryWorldOn(t, newEnvOn(t, open(t)))
			off := w.offer()
			var tr flexhub.Trade
			w.do("POST", "/v1/trades", w.cKey, map[string]any{"offer_id": off.ID, "resource_id": w.unitC}, 201, &tr)
			w.do("POST", "/v1/trades/"+tr.ID+"/confirm", w.fspAKey, nil, 200, nil)
			w.offset.Add(int64(16 * time.Minute))
			var wg sync.WaitGroup
			for range 4 {
				svc := app.New(w.svc.Store(), nil)
				svc.SetClock(w.now)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := svc.AdvanceSessions(context.Background()); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			var obs struct{ Items []flexhub.Obligation }
			w.do("GET", "/v1/obligations", w.cKey, nil, 200, &obs)
			if len(obs.Items) != 1 || count(w.env, tr.ID, "trade.completed") != 1 || count(w.env, w.obligation.ID, "obligation.transferred") != 1 {
				t.Fatalf("after 4 concurrent sweeps: C owes %d obligations, %d trade.completed entries, %d obligation.transferred entries; want 1 each",
					len(obs.Items), count(w.env, tr.ID, "trade.completed"), count(w.env, w.obligation.ID, "obligation.transferred"))
			}
			w.env.auditCount()
		})
	}
}

// An offer naming its buyer is that FSP's alone: other FSPs neither see
// nor take it.
func TestSecondaryMarketNamedBuyer(t *testing.T) {
	w := newSecondaryWorld(t)
	body := w.offerBody()
	body["buyer_fsp_id"] = w.fspC
	var off flexhub.SecondaryOffer
	w.do("POST", "/v1/secondary-offers", w.fspAKey, body, 201, &off)
	w.run([]scenario{
		{name: "another FSP does not see it", method: "GET", path: "/v1/secondary-offers/" + off.ID, token: w.fspBKey, wantStatus: 404},
		{name: "nor list it", method: "GET", path: "/v1/secondary-offers", token: w.fspBKey, wantStatus: 200, wantBody: []string{`"items":[]`}},
		{name: "nor take it", method: "POST", path: "/v1/trades", token: w.fspBKey, body: map[string]any{"offer_id": off.ID, "resource_id": w.unitB},
			wantStatus: 404, wantBody: []string{rule("trade.offer")}},
		{name: "nor was told", method: "GET", path: "/v1/notifications?limit=500", token: w.fspBKey, wantStatus: 200, notWantBody: []string{off.ID}},
		{name: "the named buyer sees it", method: "GET", path: "/v1/secondary-offers/" + off.ID, token: w.cKey, wantStatus: 200, wantBody: []string{w.fspC}},
		{name: "and was told", method: "GET", path: "/v1/notifications?limit=500", token: w.cKey, wantStatus: 200, wantBody: []string{`"type":"offer.published"`, off.ID}},
		{name: "and takes it", method: "POST", path: "/v1/trades", token: w.cKey, body: map[string]any{"offer_id": off.ID, "resource_id": w.unitC}, wantStatus: 201},
	})
}
