package http_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// anonWorld: a grid area with three feeders — "bus A" with 3 households,
// "bus B" with 11 (one of them with a second metering point that also
// exports), "bus C" with 7 — and a day of quarter-hour data for each, every value
// different so that every sum is checked.
type anonWorld struct {
	*env
	now, day    time.Time
	dso, asker  string // keys
	dsoID, gaID string
	feederB     []string // metering point ids on bus B
	cpC         []string // connection points on bus C
	secret      []string // ids and codes that must never appear in an answer
	importMWh   map[string][]int64
	exportMWh   map[string][]int64
	feederOf    map[string]string
	counter     int
}

// reading is the generator of the world's data: metering point n's
// import at quarter q, in mWh (not whole Wh, so that rounding shows).
func reading(n, q int) int64 { return 100_000 + int64(n)*1_237 + int64(q)*13 + int64(n*q%7)*111 }

func newAnonWorld(t *testing.T, e *env) *anonWorld {
	w := &anonWorld{env: e, now: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), day: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		importMWh: map[string][]int64{}, exportMWh: map[string][]int64{}, feederOf: map[string]string{}}
	w.svc.SetClock(func() time.Time { return w.now })
	_, tso := e.party("anon-tso", "tso")
	w.dsoID, w.dso = e.party("anon-dso", "dso")
	_, w.asker = e.party("anon-research", "fsp")
	var ca, ga struct{ ID string }
	e.do("POST", "/v1/control-areas", tso, map[string]any{"eic": eic("10YANON-CA"), "name": "ca"}, 201, &ca)
	e.do("POST", "/v1/grid-areas", w.dso, map[string]any{"eic": eic("10YANON-GA"), "name": "ga", "control_area_id": ca.ID}, 201, &ga)
	w.gaID = ga.ID
	// A metering point counts in the aggregates from its registration
	// on: the households are registered the day before their data.
	w.now = w.day.Add(-24 * time.Hour)
	for i := range 3 {
		w.household(t, "bus A", fmt.Sprintf("A%d", i), false)
	}
	for i := range 11 {
		w.household(t, "bus B", fmt.Sprintf("B%d", i), i == 0)
	}
	for i := range 7 {
		w.household(t, "bus C", fmt.Sprintf("C%d", i), false)
	}
	w.now = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	var readings []map[string]any
	for id, imp := range w.importMWh {
		for q, v := range imp {
			readings = append(readings, map[string]any{"metering_point_id": id, "quantity": "active_energy", "flow": "import", "resolution": "PT15M",
				"start": w.day.Add(time.Duration(q) * 15 * time.Minute).Format(time.RFC3339), "value": fmt.Sprintf("%d.%06d", v/1e6, v%1e6), "unit": "kWh"})
			if e := w.exportMWh[id][q]; e > 0 {
				readings = append(readings, map[string]any{"metering_point_id": id, "quantity": "active_energy", "flow": "export", "resolution": "PT15M",
					"start": w.day.Add(time.Duration(q) * 15 * time.Minute).Format(time.RFC3339), "value": fmt.Sprintf("%d.%03d", e/1000, e%1000), "unit": "Wh"})
			}
		}
	}
	w.do("POST", "/v1/meter-readings", w.dso, map[string]any{"readings": readings}, 200, nil)
	return w
}

// household registers a consumer with a connection point on feeder and
// a metering point (two when second; the second also exports) and makes
// up its day of data (sent by newAnonWorld).
func (w *anonWorld) household(t *testing.T, feeder, name string, second bool) string {
	t.Helper()
	id, _ := w.party("anon-h-"+name, "consumer")
	w.secret = append(w.secret, id)
	var cp struct{ ID string }
	w.do("POST", "/v1/connection-points", w.dso, map[string]any{"code": "CP-" + name, "grid_area_id": w.gaID, "node_ref": feeder}, 201, &cp)
	w.secret = append(w.secret, cp.ID, "CP-"+name)
	if feeder == "bus C" {
		w.cpC = append(w.cpC, cp.ID)
	}
	mps := []string{"MP-" + name}
	if second {
		mps = append(mps, "MP-"+name+"-PV")
	}
	for j, code := range mps {
		var mp struct{ ID string }
		w.do("POST", "/v1/metering-points", w.dso, map[string]any{"code": code, "connection_point_id": cp.ID, "consumer_id": id}, 201, &mp)
		w.secret = append(w.secret, mp.ID, code)
		w.feederOf[mp.ID] = feeder
		if feeder == "bus B" {
			w.feederB = append(w.feederB, mp.ID)
		}
		n := w.counter
		w.counter++
		imp, exp := make([]int64, 96), make([]int64, 96)
		for q := range 96 {
			imp[q] = reading(n, q)
			if j == 1 {
				exp[q] = reading(n+50, q) / 3
			}
		}
		w.importMWh[mp.ID], w.exportMWh[mp.ID] = imp, exp
	}
	return id
}

func (w *anonWorld) query(feeder, interval string, from, to time.Time) string {
	q := url.Values{"grid_area_id": {w.gaID}, "interval": {interval}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	if feeder != "" {
		q.Set("feeder", feeder)
	}
	return "/v1/aggregates/meter-data?" + q.Encode()
}

func (w *anonWorld) get(feeder, interval string, from, to time.Time) (app.Aggregate, string) {
	w.t.Helper()
	var a app.Aggregate
	body, _ := w.do("GET", w.query(feeder, interval, from, to), w.asker, nil, 200, &a)
	return a, body
}

// want sums the world's data by hand over the metering points in mps for
// [from, from+step): mWh rounded to whole Wh, halves up.
func (w *anonWorld) want(mps []string, from time.Time, step time.Duration) (imp, exp int64) {
	q0 := int(from.Sub(w.day) / (15 * time.Minute))
	for _, id := range mps {
		for q := q0; q < q0+int(step/(15*time.Minute)); q++ {
			imp += w.importMWh[id][q]
			exp += w.exportMWh[id][q]
		}
	}
	return (imp + 500) / 1000, (exp + 500) / 1000
}

// TestAnonymisedFeederBelowKSuppressed (issue 6, "done means"): an
// anonymised query over a feeder with fewer than k consumers answers
// every interval suppressed, saying so, with no sum and no count; a
// feeder and a grid area with at least k consumers answer sums equal to
// the hand-computed totals and name nobody; a household joining a feeder
// suppresses the intervals on either side of its joining, whatever the
// query's range; an interval with a member's data missing is suppressed;
// k is the server's setting; every query is audited; bad input is
// refused with a clear error. On SQLite and PostgreSQL.
func TestAnonymisedFeederBelowKSuppressed(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		testAnonymised(t, newAnonWorld(t, e))
	})
}

func testAnonymised(t *testing.T, w *anonWorld) {
	dayEnd := w.day.Add(24 * time.Hour)
	checkNoIDs := func(body string) {
		t.Helper()
		for _, s := range w.secret {
			if strings.Contains(body, s) {
				t.Errorf("an aggregate names %q: %s", s, body)
			}
		}
	}
	queries := 0

	// Bus A: 3 consumers < k = 10: everything suppressed, and said why.
	a, body := w.get("bus A", "PT1H", w.day, dayEnd)
	queries++
	checkNoIDs(body)
	if a.K != app.DefaultAnonymityK || len(a.Intervals) != 24 {
		t.Fatalf("bus A: k %d, %d intervals", a.K, len(a.Intervals))
	}
	for _, iv := range a.Intervals {
		if !iv.Suppressed || iv.Reason != app.SuppressedFewerThanK || iv.Consumers != nil || iv.ImportWh != nil || iv.ExportWh != nil {
			t.Fatalf("bus A interval at %s: %+v", iv.Start, iv)
		}
	}
	if strings.Contains(body, `"consumers"`) || strings.Contains(body, "energy_import_wh") {
		t.Errorf("a suppressed aggregate tells counts or sums: %s", body)
	}

	// Bus B: 11 consumers (12 metering points): the sums, by hand.
	b, body := w.get("bus B", "PT1H", w.day, dayEnd)
	queries++
	checkNoIDs(body)
	for i, iv := range b.Intervals {
		start := w.day.Add(time.Duration(i) * time.Hour)
		imp, exp := w.want(w.feederB, start, time.Hour)
		if iv.Suppressed || !iv.Start.Equal(start) || iv.Consumers == nil || *iv.Consumers != 11 || *iv.ImportWh != imp || *iv.ExportWh != exp {
			t.Fatalf("bus B at %s: %+v (consumers %v import %v export %v), want 11 consumers, %d Wh in, %d Wh out", start, iv, iv.Consumers, iv.ImportWh, iv.ExportWh, imp, exp)
		}
	}
	// The grid area (21 consumers) per quarter hour and per day.
	var all []string
	for id := range w.feederOf {
		all = append(all, id)
	}
	g, body := w.get("", "PT15M", w.day, dayEnd)
	queries++
	checkNoIDs(body)
	if len(g.Intervals) != 96 {
		t.Fatalf("grid area: %d quarter hours", len(g.Intervals))
	}
	for i, iv := range g.Intervals {
		imp, exp := w.want(all, iv.Start, 15*time.Minute)
		if iv.Suppressed || !iv.Start.Equal(w.day.Add(time.Duration(i)*15*time.Minute)) || *iv.Consumers != 21 || *iv.ImportWh != imp || *iv.ExportWh != exp {
			t.Fatalf("grid area quarter %d: %+v, want %d Wh in, %d Wh out", i, iv, imp, exp)
		}
	}
	d, _ := w.get("", "P1D", w.day, dayEnd)
	queries++
	if imp, _ := w.want(all, w.day, 24*time.Hour); len(d.Intervals) != 1 || d.Intervals[0].Suppressed || *d.Intervals[0].ImportWh != imp {
		t.Fatalf("grid area day: %+v, want %d Wh", d.Intervals, imp)
	}

	// A household joins bus B at 06:05 (registered then; its data sent
	// for the whole day, 20:00-20:15 missing). It is a member from 07:00
	// on: 06:00 and 07:00 are suppressed (one consumer joined between
	// them), 20:00 is incomplete, the other hours are sums — without it
	// before 06:00, with it from 08:00.
	w.now = w.day.Add(6*time.Hour + 5*time.Minute)
	var cp struct{ ID string }
	w.do("POST", "/v1/connection-points", w.dso, map[string]any{"code": "CP-NEW", "grid_area_id": w.gaID, "node_ref": "bus B"}, 201, &cp)
	newID, _ := w.party("anon-h-new", "consumer")
	var mp struct{ ID string }
	w.do("POST", "/v1/metering-points", w.dso, map[string]any{"code": "MP-NEW", "connection_point_id": cp.ID, "consumer_id": newID}, 201, &mp)
	w.secret = append(w.secret, newID, cp.ID, mp.ID, "MP-NEW")
	w.now = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	var readings []map[string]any
	imp := make([]int64, 96)
	for q := range 96 {
		if q == 80 {
			imp[q] = -1
			continue
		}
		imp[q] = reading(99, q)
		readings = append(readings, map[string]any{"metering_point_id": mp.ID, "quantity": "active_energy", "flow": "import", "resolution": "PT15M",
			"start": w.day.Add(time.Duration(q) * 15 * time.Minute).Format(time.RFC3339), "value": fmt.Sprintf("%d.%03d", imp[q]/1000, imp[q]%1000), "unit": "Wh"})
	}
	w.do("POST", "/v1/meter-readings", w.dso, map[string]any{"readings": readings}, 200, nil)
	w.importMWh[mp.ID], w.exportMWh[mp.ID] = imp, make([]int64, 96)
	withNew := append(append([]string{}, w.feederB...), mp.ID)

	b2, body := w.get("bus B", "PT1H", w.day, dayEnd)
	queries++
	checkNoIDs(body)
	for i, iv := range b2.Intervals {
		start := w.day.Add(time.Duration(i) * time.Hour)
		switch {
		case i == 6 || i == 7:
			if !iv.Suppressed || iv.Reason != app.SuppressedMembership || iv.ImportWh != nil {
				t.Errorf("bus B at %s, next to the household joining: %+v", start, iv)
			}
		case i == 20:
			if !iv.Suppressed || iv.Reason != app.SuppressedIncomplete || iv.ImportWh != nil {
				t.Errorf("bus B at %s, a member's data missing: %+v", start, iv)
			}
		default:
			mps, n := w.feederB, 11
			if i > 7 {
				mps, n = withNew, 12
			}
			want, _ := w.want(mps, start, time.Hour)
			if iv.Suppressed || *iv.Consumers != n || *iv.ImportWh != want {
				t.Errorf("bus B at %s: %+v, want %d consumers and %d Wh", start, iv, n, want)
			}
		}
	}
	// The decision does not depend on the query's range: 07:00 alone is
	// suppressed too (else comparing it with 06:00 alone... and with a
	// query ending at 07:00 would show the step).
	one, _ := w.get("bus B", "PT1H", w.day.Add(7*time.Hour), w.day.Add(8*time.Hour))
	queries++
	if len(one.Intervals) != 1 || one.Intervals[0].Reason != app.SuppressedMembership {
		t.Errorf("07:00 asked alone: %+v", one.Intervals)
	}

	// Bus A (3) and bus C (7) hold 10 consumers together: with k = 11,
	// bus B (11 consumers at 02:00) is suppressed, else the grid area's
	// sum less bus B's would be theirs; the grid area itself is summed.
	if err := w.svc.SetAnonymityK(11); err != nil {
		t.Fatal(err)
	}
	h2 := w.day.Add(2 * time.Hour)
	b11, _ := w.get("bus B", "PT1H", h2, h2.Add(time.Hour))
	queries++
	if iv := b11.Intervals[0]; !iv.Suppressed || iv.Reason != app.SuppressedSmallRest || iv.ImportWh != nil {
		t.Errorf("bus B with k = 11 beside 10 consumers on small feeders: %+v", iv)
	}
	g11, _ := w.get("", "PT1H", h2, h2.Add(time.Hour))
	queries++
	if want, _ := w.want(all, h2, time.Hour); g11.Intervals[0].Suppressed || *g11.Intervals[0].ImportWh != want {
		t.Errorf("grid area with k = 11: %+v, want %d Wh", g11.Intervals[0], want)
	}

	// k is the server's: with k = 3, bus A's three households are summed.
	if err := w.svc.SetAnonymityK(1); err == nil {
		t.Error("k = 1 accepted")
	}
	if err := w.svc.SetAnonymityK(3); err != nil {
		t.Fatal(err)
	}
	a3, _ := w.get("bus A", "P1D", w.day, dayEnd)
	queries++
	var busA []string
	for id, f := range w.feederOf {
		if f == "bus A" {
			busA = append(busA, id)
		}
	}
	if want, _ := w.want(busA, w.day, 24*time.Hour); a3.K != 3 || a3.Intervals[0].Suppressed || *a3.Intervals[0].ImportWh != want {
		t.Errorf("bus A with k = 3: %+v, want %d Wh", a3.Intervals, want)
	}
	if err := w.svc.SetAnonymityK(app.DefaultAnonymityK); err != nil {
		t.Fatal(err)
	}

	// A connection point moves from bus C to bus B at 2026-03-02 12:00:
	// the past is unchanged (a node counts as it was at each interval),
	// and the hours on either side of the move are suppressed on both
	// feeders (one household left one and joined the other).
	w.do("PUT", "/v1/connection-points/"+w.cpC[0], w.dso, map[string]any{"code": "CP-C0", "grid_area_id": w.gaID, "node_ref": "bus B"}, 200, nil, "If-Match", `"1"`)
	again, _ := w.get("bus B", "PT1H", w.day, dayEnd)
	queries++
	for i := range again.Intervals {
		x, y := again.Intervals[i], b2.Intervals[i]
		if x.Suppressed != y.Suppressed || x.Reason != y.Reason || (x.ImportWh != nil && *x.ImportWh != *y.ImportWh) {
			t.Errorf("bus B at %s changed after a later move: %+v, was %+v", x.Start, x, y)
		}
	}
	// (With k = 3, so that bus C's 7 and bus A's 3 are feeders of their own.)
	if err := w.svc.SetAnonymityK(3); err != nil {
		t.Fatal(err)
	}
	for _, feeder := range []string{"bus B", "bus C"} {
		mv, _ := w.get(feeder, "PT1H", w.now.Add(-2*time.Hour), w.now.Add(2*time.Hour))
		queries++
		var reasons []string
		for _, iv := range mv.Intervals {
			reasons = append(reasons, iv.Reason)
		}
		if got := strings.Join(reasons, " "); got != "incomplete membership_change membership_change incomplete" {
			t.Errorf("%s around the move: %s", feeder, got)
		}
	}
	if err := w.svc.SetAnonymityK(app.DefaultAnonymityK); err != nil {
		t.Fatal(err)
	}

	// Bad input: refused, said why.
	q := func(mod func(url.Values)) string {
		v := url.Values{"grid_area_id": {w.gaID}, "interval": {"PT1H"}, "from": {w.day.Format(time.RFC3339)}, "to": {dayEnd.Format(time.RFC3339)}}
		mod(v)
		return "/v1/aggregates/meter-data?" + v.Encode()
	}
	w.run([]scenario{
		{name: "unknown grid area", method: "GET", path: q(func(v url.Values) { v.Set("grid_area_id", flexhub.NewID()) }), token: w.asker, wantStatus: 404, wantBody: []string{"aggregate.group", "does not exist"}},
		{name: "unknown feeder", method: "GET", path: q(func(v url.Values) { v.Set("feeder", "bus Z") }), token: w.asker, wantStatus: 404, wantBody: []string{"aggregate.group", "bus Z"}},
		{name: "interval not offered", method: "GET", path: q(func(v url.Values) { v.Set("interval", "PT5M") }), token: w.asker, wantStatus: 422, wantBody: []string{"interval"}},
		{name: "range too long", method: "GET", path: q(func(v url.Values) {
			v.Set("interval", "PT15M")
			v.Set("to", w.day.Add(40*24*time.Hour).Format(time.RFC3339))
		}), token: w.asker, wantStatus: 422, wantBody: []string{"aggregate.range", "at most 3000"}},
		{name: "off the interval grid", method: "GET", path: q(func(v url.Values) { v.Set("from", w.day.Add(15*time.Minute).Format(time.RFC3339)) }), token: w.asker, wantStatus: 422, wantBody: []string{"aggregate.range", "grid"}},
		{name: "backwards", method: "GET", path: q(func(v url.Values) { v.Set("to", w.day.Add(-time.Hour).Format(time.RFC3339)) }), token: w.asker, wantStatus: 422, wantBody: []string{"aggregate.range", "after"}},
		{name: "no group", method: "GET", path: q(func(v url.Values) { v.Del("grid_area_id") }), token: w.asker, wantStatus: 422, wantBody: []string{"grid_area_id"}},
		{name: "not authenticated", method: "GET", path: q(func(url.Values) {}), token: "", wantStatus: 401},
	})

	// Every answered query is in the audit chain, for the asker and the
	// grid area's DSO.
	for _, key := range []string{w.asker, w.dso} {
		var audit struct{ Items []flexhub.AuditEntry }
		w.do("GET", "/v1/audit?limit=500&object_id="+w.gaID, key, nil, 200, &audit)
		n := 0
		for _, e := range audit.Items {
			if e.Action == "aggregate.read" {
				n++
			}
		}
		if n != queries {
			t.Errorf("%d aggregate.read audit entries, want %d", n, queries)
		}
	}
}
