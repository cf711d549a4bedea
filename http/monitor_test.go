package http_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// readings is one reading per minute of unit's import and export (kW)
// from..to.
func (w *smWorld) readings(unit string, from, to time.Time, importKW, exportKW float64) map[string]any {
	var rs []map[string]any
	for t := from; t.Before(to); t = t.Add(time.Minute) {
		for flow, v := range map[string]float64{"import": importKW, "export": exportKW} {
			rs = append(rs, map[string]any{"resource_id": unit, "quantity": "active_power", "flow": flow, "start": t, "resolution": "PT1M", "value": v, "unit": "kW"})
		}
	}
	return map[string]any{"readings": rs}
}

// Live monitoring through the API: the unit imports 100 kW before the
// order; asked for 150 kW up it only cuts its import to 40 kW (60 kW
// delivered): under-delivery, flagged once to the TSO and the FSP; in the
// next quarter hour it exports 100 kW for a 200 kW order: on target.
func TestDeliveryMonitoring(t *testing.T) {
	w := newSecondaryWorld(t)
	var o flexhub.ActivationOrder
	w.do("POST", "/v1/activation-orders", w.tsoKey, w.orderBody(), 201, &o)
	w.do("POST", "/v1/activation-orders/"+o.ID+"/status", w.fspAKey, map[string]any{"status": "accepted"}, 200, nil)
	day := w.day
	w.advance(day.Sub(w.now()) + time.Second)
	w.do("POST", "/v1/meter-readings", w.fspAKey, w.readings(w.unitA, day.Add(-15*time.Minute), day, 100, 0), 200, nil)
	monitor := func() int {
		n, err := w.svc.MonitorResources(context.Background(), []string{w.unitA})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	w.advance(14 * time.Minute)
	w.do("POST", "/v1/meter-readings", w.fspAKey, w.readings(w.unitA, day, day.Add(14*time.Minute), 40, 0), 200, nil)
	if n := monitor(); n != 1 {
		t.Fatalf("alerts raised: %d, want 1 (under-delivery in the first quarter hour)", n)
	}
	if n := monitor(); n != 0 {
		t.Errorf("a second check raised %d more alerts for the same interval", n)
	}
	var d app.DeliveryStatus
	w.do("GET", "/v1/activation-orders/"+o.ID+"/delivery", w.tsoKey, nil, 200, &d)
	if d.Baseline == nil || *d.Baseline != -100_000 || len(d.Intervals) != 1 || d.Intervals[0].Verdict != flexhub.DeliveryUnder || d.Intervals[0].Delivered != 60_000 {
		t.Fatalf("delivery %+v", d)
	}
	w.do("GET", "/v1/activation-orders/"+o.ID+"/delivery", w.fspBKey, nil, 404, nil)
	// The measured delivery is the household's data: the TSO's read is in
	// the household's access log, on its basis.
	var log struct{ Items []flexhub.DataAccess }
	w.do("GET", "/v1/data-access", w.consumerKey, nil, 200, &log)
	if n := len(log.Items); n == 0 || log.Items[n-1].Basis != flexhub.BasisSystemOperator || !strings.Contains(log.Items[n-1].What, o.ID) {
		t.Errorf("the household's access log after the TSO read the delivery: %+v", log.Items)
	}
	pushed := map[string]bool{}
	for _, a := range log.Items {
		if a.Channel == flexhub.ChannelNotification && strings.Contains(a.What, "under_delivery alert of order "+o.ID) {
			pushed[a.Basis] = true
		}
	}
	if !pushed[flexhub.BasisSystemOperator] || !pushed[flexhub.BasisFSPOperator] {
		t.Errorf("the alert's measurement pushed to the TSO and the FSP is not in the household's log: %+v", log.Items)
	}
	w.do("GET", "/v1/activation-orders/"+o.ID, w.fspAKey, nil, 200, &o)
	if len(o.Alerts) != 1 || o.Alerts[0].Kind != flexhub.DeliveryUnder || !o.Alerts[0].Interval.Equal(day) || o.Alerts[0].Measured != 60_000 || o.Alerts[0].Ordered != 150_000 {
		t.Errorf("order alerts %+v", o.Alerts)
	}
	for _, key := range []string{w.tsoKey, w.fspAKey} {
		if n := w.notifications(key, flexhub.NotifyActivationAlert); len(n) != 1 {
			t.Errorf("alert notifications: %d, want 1", len(n))
		}
	}
	if n := w.notifications(w.fspBKey, flexhub.NotifyActivationAlert); len(n) != 0 {
		t.Errorf("FSP B was told of FSP A's delivery")
	}
	// The monitor's sweep finds the running order by itself.
	if ids, err := w.svc.RunningOrderResources(context.Background()); err != nil || len(ids) != 1 || ids[0] != w.unitA {
		t.Errorf("resources of running orders: %v %v, want [%s]", ids, err, w.unitA)
	}
	w.advance(16 * time.Minute)
	w.do("POST", "/v1/meter-readings", w.fspAKey, w.readings(w.unitA, day.Add(14*time.Minute), day.Add(30*time.Minute), 0, 100), 200, nil)
	if n := monitor(); n != 0 {
		t.Errorf("alerts for an on-target quarter hour: %d", n)
	}
	w.do("GET", "/v1/activation-orders/"+o.ID+"/delivery", w.tsoKey, nil, 200, &d)
	if len(d.Intervals) != 2 || d.Intervals[1].Verdict != flexhub.DeliveryOnTarget || d.Intervals[1].Delivered != 200_000 {
		t.Errorf("second quarter hour %+v", d.Intervals)
	}
}
