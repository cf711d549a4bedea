package http_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/clearing"
)

// TestClearingFailsForGood: when the engine cannot prove an optimal
// clearing within its limits, the session is not retried for ever and no
// results are published: it becomes clearing_failed, with the reason, and
// its operator and buyer are told.
func TestClearingFailsForGood(t *testing.T) {
	w := newMarketWorld(t)
	var calls atomic.Int32
	w.svc.SetSolver(func(*clearing.Problem) (*clearing.Result, error) {
		calls.Add(1)
		return nil, fmt.Errorf("%w after 50000000 nodes", clearing.ErrNodeLimit)
	})
	need := w.publish(w.tsoKey, w.product, 2)
	m := w.openSession(w.moKey, time.Now(), time.Now().Add(time.Second), need.ID)
	w.do("POST", "/v1/bids", w.fspAKey, w.bidOn(m.ID, need, w.unitA), 201, nil)
	w.runScheduler()
	w.waitFor(m.ID, flexhub.SessionClearingFailed, 6*time.Second)
	time.Sleep(300 * time.Millisecond) // a few more scheduler ticks
	if n := calls.Load(); n != 1 {
		t.Errorf("the engine was asked %d times; a clearing that cannot be proven optimal must not be retried", n)
	}
	w.run([]scenario{
		{name: "the reason is on the session", method: "GET", path: "/v1/market-sessions/" + m.ID, token: w.fspAKey, wantStatus: 200,
			wantBody: []string{`"status":"clearing_failed"`, "could not prove an optimal result"}},
		{name: "no results are published", method: "GET", path: "/v1/market-sessions/" + m.ID + "/results", token: w.moKey, wantStatus: 409},
		{name: "the operator is told", method: "GET", path: "/v1/notifications", token: w.moKey, wantStatus: 200, wantBody: []string{"session.clearing_failed"}},
		{name: "the buyer is told", method: "GET", path: "/v1/notifications", token: w.tsoKey, wantStatus: 200, wantBody: []string{"session.clearing_failed"}},
		{name: "the bid can no longer change", method: "POST", path: "/v1/bids", token: w.fspAKey, body: w.bidOn(m.ID, need, w.unitA), wantStatus: 410},
	})
}

// bidOn is a valid bid body for unit on need in session: 200 kW at 40.00
// EUR in every interval of the need.
func (w *mkWorld) bidOn(session string, need flexhub.Need, unit string) map[string]any {
	var ivs []map[string]any
	for _, iv := range need.Intervals {
		ivs = append(ivs, map[string]any{"start": iv.Start, "quantity": pqKW(200), "availability_price": eur("40")})
	}
	return map[string]any{"session_id": session, "need_id": need.ID, "resource_id": unit, "intervals": ivs, "divisible": false, "linked": false}
}
