package http_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// regWorld is a small register: one TSO control area, two DSOs with one
// grid area each, a connection point and a metering point per DSO, each
// with its own household, plus a supplier, a BRP and two FSPs.
type regWorld struct {
	e                     *env
	tso, tsoKey           string
	dso1, dso1Key         string
	dso2, dso2Key         string
	fspA, fspAKey         string
	fspB, fspBKey         string
	c1, c1Key             string // household at mp1 (dso1)
	c2, c2Key             string // household at mp2 (dso2)
	supplier, supplierKey string
	brp, brpKey           string
	ca                    flexhub.ControlArea
	ga1, ga2              flexhub.GridArea
	cp1, cp2              flexhub.ConnectionPoint
	mp1, mp2              flexhub.MeteringPoint
}

func newRegWorld(t *testing.T) *regWorld {
	t.Helper()
	e := newEnv(t)
	w := &regWorld{e: e}
	w.tso, w.tsoKey = e.party("tso", "tso")
	w.dso1, w.dso1Key = e.party("dso1", "dso")
	w.dso2, w.dso2Key = e.party("dso2", "dso")
	w.fspA, w.fspAKey = e.party("fspa", "fsp")
	w.fspB, w.fspBKey = e.party("fspb", "fsp")
	w.c1, w.c1Key = e.party("house1", "consumer")
	w.c2, w.c2Key = e.party("house2", "consumer")
	w.supplier, w.supplierKey = e.party("supplier", "supplier")
	w.brp, w.brpKey = e.party("brp", "brp")
	e.do("POST", "/v1/control-areas", w.tsoKey, map[string]any{"eic": eic("10YCA"), "name": "Control area"}, 201, &w.ca)
	e.do("POST", "/v1/grid-areas", w.dso1Key, map[string]any{"eic": eic("10YGA1"), "name": "Grid 1", "control_area_id": w.ca.ID}, 201, &w.ga1)
	e.do("POST", "/v1/grid-areas", w.dso2Key, map[string]any{"eic": eic("10YGA2"), "name": "Grid 2", "control_area_id": w.ca.ID}, 201, &w.ga2)
	e.do("POST", "/v1/connection-points", w.dso1Key, map[string]any{"code": "CP-1", "grid_area_id": w.ga1.ID, "node_ref": "LV1 Bus 10", "capacity": kwOf(25)}, 201, &w.cp1)
	e.do("POST", "/v1/connection-points", w.dso2Key, map[string]any{"code": "CP-2", "grid_area_id": w.ga2.ID, "node_ref": "LV2 Bus 3"}, 201, &w.cp2)
	e.do("POST", "/v1/metering-points", w.dso1Key, map[string]any{"code": "MP-1", "connection_point_id": w.cp1.ID, "consumer_id": w.c1,
		"supplier_id": w.supplier, "brp_id": w.brp}, 201, &w.mp1)
	e.do("POST", "/v1/metering-points", w.dso2Key, map[string]any{"code": "MP-2", "connection_point_id": w.cp2.ID, "consumer_id": w.c2}, 201, &w.mp2)
	return w
}

func kwOf(v float64) map[string]any { return map[string]any{"value": v, "unit": "kW"} }

// unchanged fails the test if the calls in fn appended to the audit trail:
// a rejected request must leave the store as it was.
func (e *env) unchanged(fn func()) {
	e.t.Helper()
	before := e.auditCount()
	fn()
	if after := e.auditCount(); after != before {
		e.t.Fatalf("rejected requests changed the store: %d audit entries before, %d after", before, after)
	}
}

func TestControlAndGridAreas(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	if w.ca.TSOID != w.tso {
		t.Fatalf("tso_id defaults to the caller: got %q, want %q", w.ca.TSOID, w.tso)
	}
	if w.ga1.DSOID != w.dso1 {
		t.Fatalf("dso_id defaults to the caller: got %q, want %q", w.ga1.DSOID, w.dso1)
	}
	otherTSO, _ := e.party("tso2", "tso")
	e.unchanged(func() {
		e.run([]scenario{
			{name: "fsp cannot register a control area", method: "POST", path: "/v1/control-areas", token: w.fspAKey,
				body: map[string]any{"eic": eic("10YNEW"), "name": "n"}, wantStatus: 403, wantBody: []string{"tso"}},
			{name: "tso registers only its own areas", method: "POST", path: "/v1/control-areas", token: w.tsoKey,
				body: map[string]any{"eic": eic("10YNEW"), "name": "n", "tso_id": otherTSO}, wantStatus: 403, wantBody: []string{"tso_id"}},
			{name: "register names a party that is no TSO", method: "POST", path: "/v1/control-areas", token: e.admin,
				body: map[string]any{"eic": eic("10YNEW"), "name": "n", "tso_id": w.dso1}, wantStatus: 422, wantBody: []string{"body.tso_id", "tso role"}},
			{name: "register names a party that does not exist", method: "POST", path: "/v1/control-areas", token: e.admin,
				body: map[string]any{"eic": eic("10YNEW"), "name": "n", "tso_id": flexhub.NewID()}, wantStatus: 422, wantBody: []string{"body.tso_id", "does not exist"}},
			{name: "register must name the TSO", method: "POST", path: "/v1/control-areas", token: e.admin,
				body: map[string]any{"eic": eic("10YNEW"), "name": "n"}, wantStatus: 422, wantBody: []string{"body.tso_id"}},
			{name: "bad EIC", method: "POST", path: "/v1/control-areas", token: w.tsoKey,
				body: map[string]any{"eic": "10YNEW----------", "name": "n"}, wantStatus: 422, wantBody: []string{"body.eic", "check character"}},
			{name: "duplicate control area EIC", method: "POST", path: "/v1/control-areas", token: w.tsoKey,
				body: map[string]any{"eic": eic("10YCA"), "name": "again"}, wantStatus: 409, wantBody: []string{"body.eic", eic("10YCA")}},
			{name: "dso cannot register a control area", method: "POST", path: "/v1/control-areas", token: w.dso1Key,
				body: map[string]any{"eic": eic("10YNEW"), "name": "n"}, wantStatus: 403},
			{name: "grid area in a control area that does not exist", method: "POST", path: "/v1/grid-areas", token: w.dso1Key,
				body: map[string]any{"eic": eic("10YGANEW"), "name": "n", "control_area_id": flexhub.NewID()}, wantStatus: 422, wantBody: []string{"body.control_area_id", "does not exist"}},
			{name: "grid area with a malformed control area id", method: "POST", path: "/v1/grid-areas", token: w.dso1Key,
				body: map[string]any{"eic": eic("10YGANEW"), "name": "n", "control_area_id": "nope"}, wantStatus: 422, wantBody: []string{"body.control_area_id"}},
			{name: "dso registers grid areas only for itself", method: "POST", path: "/v1/grid-areas", token: w.dso1Key,
				body: map[string]any{"eic": eic("10YGANEW"), "name": "n", "control_area_id": w.ca.ID, "dso_id": w.dso2}, wantStatus: 403},
			{name: "duplicate grid area EIC", method: "POST", path: "/v1/grid-areas", token: w.dso2Key,
				body: map[string]any{"eic": eic("10YGA1"), "name": "n", "control_area_id": w.ca.ID}, wantStatus: 409, wantBody: []string{"body.eic"}},
			{name: "tso cannot register a grid area", method: "POST", path: "/v1/grid-areas", token: w.tsoKey,
				body: map[string]any{"eic": eic("10YGANEW"), "name": "n", "control_area_id": w.ca.ID}, wantStatus: 403},
		})
	})
	e.run([]scenario{
		{name: "register names another TSO", method: "POST", path: "/v1/control-areas", token: e.admin,
			body: map[string]any{"eic": eic("10YCA2"), "name": "Second area", "tso_id": otherTSO}, wantStatus: 201, wantBody: []string{otherTSO}},
		{name: "register names a DSO for a grid area", method: "POST", path: "/v1/grid-areas", token: e.admin,
			body: map[string]any{"eic": eic("10YGA3"), "name": "Grid 3", "control_area_id": w.ca.ID, "dso_id": w.dso2}, wantStatus: 201, wantBody: []string{w.dso2}},
		{name: "everyone reads areas", method: "GET", path: "/v1/control-areas/" + w.ca.ID, token: w.c1Key, wantStatus: 200, wantBody: []string{w.ca.ID}},
		{name: "control areas of one TSO", method: "GET", path: "/v1/control-areas?tso_id=" + otherTSO, token: w.fspAKey, wantStatus: 200,
			wantBody: []string{"Second area"}, notWantBody: []string{w.ca.ID}},
		{name: "own control areas", method: "GET", path: "/v1/control-areas?tso_id=self", token: w.tsoKey, wantStatus: 200,
			wantBody: []string{w.ca.ID}, notWantBody: []string{"Second area"}},
		{name: "grid areas of dso2", method: "GET", path: "/v1/grid-areas?dso_id=" + w.dso2, token: w.fspAKey, wantStatus: 200,
			wantBody: []string{w.ga2.ID, "Grid 3"}, notWantBody: []string{w.ga1.ID}},
		{name: "grid areas in a control area", method: "GET", path: "/v1/grid-areas?control_area_id=" + w.ca.ID, token: w.c2Key, wantStatus: 200,
			wantBody: []string{w.ga1.ID, w.ga2.ID}},
		{name: "grid area that does not exist", method: "GET", path: "/v1/grid-areas/" + flexhub.NewID(), token: w.fspAKey, wantStatus: 404},
	})

	// A retried create with the same key answers with the first result.
	var first, again flexhub.ControlArea
	body := map[string]any{"eic": eic("10YCA3"), "name": "Third"}
	_, h := e.do("POST", "/v1/control-areas", w.tsoKey, body, 201, &first, "Idempotency-Key", "ca-3")
	if h.Get("ETag") != `"1"` || h.Get("Location") != "/v1/control-areas/"+first.ID {
		t.Fatalf("ETag %q Location %q", h.Get("ETag"), h.Get("Location"))
	}
	e.unchanged(func() {
		_, h = e.do("POST", "/v1/control-areas", w.tsoKey, body, 201, &again, "Idempotency-Key", "ca-3")
	})
	if again.ID != first.ID || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay made %s (replayed %q), want %s", again.ID, h.Get("Idempotent-Replayed"), first.ID)
	}
}

func TestConnectionPoints(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	if w.cp1.DSOID != w.dso1 {
		t.Fatalf("a connection point's DSO comes from its grid area: got %q, want %q", w.cp1.DSOID, w.dso1)
	}
	cp := "/v1/connection-points/" + w.cp1.ID
	e.unchanged(func() {
		e.run([]scenario{
			{name: "another DSO's grid area", method: "POST", path: "/v1/connection-points", token: w.dso2Key,
				body: map[string]any{"code": "X", "grid_area_id": w.ga1.ID, "node_ref": "n"}, wantStatus: 403, wantBody: []string{w.ga1.ID}},
			{name: "grid area that does not exist", method: "POST", path: "/v1/connection-points", token: w.dso1Key,
				body: map[string]any{"code": "X", "grid_area_id": flexhub.NewID(), "node_ref": "n"}, wantStatus: 422, wantBody: []string{"body.grid_area_id", "does not exist"}},
			{name: "duplicate code in the grid area", method: "POST", path: "/v1/connection-points", token: w.dso1Key,
				body: map[string]any{"code": "CP-1", "grid_area_id": w.ga1.ID, "node_ref": "n"}, wantStatus: 409, wantBody: []string{"body.code", "CP-1"}},
			{name: "capacity in a unit of energy", method: "POST", path: "/v1/connection-points", token: w.dso1Key,
				body: map[string]any{"code": "X", "grid_area_id": w.ga1.ID, "node_ref": "n", "capacity": map[string]any{"value": 5, "unit": "kWh"}}, wantStatus: 422, wantBody: []string{"body.capacity.unit"}},
			{name: "fsp cannot register connection points", method: "POST", path: "/v1/connection-points", token: w.fspAKey,
				body: map[string]any{"code": "X", "grid_area_id": w.ga1.ID, "node_ref": "n"}, wantStatus: 403},
			{name: "update without If-Match", method: "PUT", path: cp, token: w.dso1Key,
				body: map[string]any{"code": "CP-1", "grid_area_id": w.ga1.ID, "node_ref": "LV1 Bus 11"}, wantStatus: 422, wantBody: []string{"If-Match"}},
			{name: "grid area cannot change", method: "PUT", path: cp, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"code": "CP-1", "grid_area_id": w.ga2.ID, "node_ref": "LV1 Bus 11"}, wantStatus: 422, wantBody: []string{"body.grid_area_id"}},
			{name: "other DSO cannot change it", method: "PUT", path: cp, token: w.dso2Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"code": "CP-1", "grid_area_id": w.ga1.ID, "node_ref": "LV1 Bus 11"}, wantStatus: 403},
			{name: "consumer elsewhere does not see it to change it", method: "PUT", path: cp, token: w.c2Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"code": "CP-1", "grid_area_id": w.ga1.ID, "node_ref": "LV1 Bus 11"}, wantStatus: 404},
		})
	})
	e.run([]scenario{
		{name: "same code in another grid area", method: "POST", path: "/v1/connection-points", token: w.dso2Key,
			body: map[string]any{"code": "CP-1", "grid_area_id": w.ga2.ID, "node_ref": "n"}, wantStatus: 201},
		{name: "dso moves the node", method: "PUT", path: cp, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
			body: map[string]any{"code": "CP-1", "grid_area_id": w.ga1.ID, "node_ref": "LV1 Bus 11", "capacity": kwOf(40), "voltage_kv": 0.4}, wantStatus: 200,
			wantBody: []string{"LV1 Bus 11", `"version":2`, `"value":40`}},
		{name: "stale If-Match loses", method: "PUT", path: cp, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
			body: map[string]any{"code": "CP-1", "grid_area_id": w.ga1.ID, "node_ref": "lost"}, wantStatus: 409, wantBody: []string{"version 2"}},
		{name: "fsp sees connection points", method: "GET", path: cp, token: w.fspBKey, wantStatus: 200, wantBody: []string{"LV1 Bus 11"}},
		{name: "consumer sees its own connection point", method: "GET", path: cp, token: w.c1Key, wantStatus: 200},
		{name: "consumer does not see a neighbour's", method: "GET", path: "/v1/connection-points/" + w.cp2.ID, token: w.c1Key, wantStatus: 404},
		{name: "consumer lists its own only", method: "GET", path: "/v1/connection-points", token: w.c1Key, wantStatus: 200,
			wantBody: []string{w.cp1.ID}, notWantBody: []string{w.cp2.ID}},
		{name: "list by grid area", method: "GET", path: "/v1/connection-points?grid_area_id=" + w.ga2.ID, token: w.fspAKey, wantStatus: 200,
			wantBody: []string{w.cp2.ID}, notWantBody: []string{w.cp1.ID}},
		{name: "list by DSO", method: "GET", path: "/v1/connection-points?dso_id=self", token: w.dso1Key, wantStatus: 200,
			wantBody: []string{w.cp1.ID}, notWantBody: []string{w.cp2.ID}},
	})
	var got flexhub.ConnectionPoint
	e.do("GET", cp, w.dso1Key, nil, 200, &got)
	if got.NodeRef != "LV1 Bus 11" {
		t.Fatalf("lost update: node_ref %q", got.NodeRef)
	}
}

func TestMeteringPoints(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	if w.mp1.DSOID != w.dso1 || len(w.mp1.Assignments) != 1 || w.mp1.Assignments[0].SupplierID != w.supplier || w.mp1.Assignments[0].BRPID != w.brp {
		t.Fatalf("metering point 1: %+v", w.mp1)
	}
	if w.mp2.Assignments == nil || len(w.mp2.Assignments) != 0 {
		t.Fatalf("a metering point without supplier has no assignment: %+v", w.mp2.Assignments)
	}
	mp := map[string]any{"code": "MP-NEW", "connection_point_id": w.cp1.ID, "consumer_id": w.c1}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range mp {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	e.unchanged(func() {
		e.run([]scenario{
			{name: "consumer that does not exist", method: "POST", path: "/v1/metering-points", token: w.dso1Key,
				body: with("consumer_id", flexhub.NewID()), wantStatus: 422, wantBody: []string{"body.consumer_id", "does not exist"}},
			{name: "consumer that is no consumer", method: "POST", path: "/v1/metering-points", token: w.dso1Key,
				body: with("consumer_id", w.fspA), wantStatus: 422, wantBody: []string{"body.consumer_id", "consumer role"}},
			{name: "supplier that is no supplier", method: "POST", path: "/v1/metering-points", token: w.dso1Key,
				body: with("supplier_id", w.brp), wantStatus: 422, wantBody: []string{"body.supplier_id", "supplier role"}},
			{name: "brp that is no brp", method: "POST", path: "/v1/metering-points", token: w.dso1Key,
				body: with("brp_id", w.supplier), wantStatus: 422, wantBody: []string{"body.brp_id", "brp role"}},
			{name: "connection point that does not exist", method: "POST", path: "/v1/metering-points", token: w.dso1Key,
				body: with("connection_point_id", flexhub.NewID()), wantStatus: 422, wantBody: []string{"body.connection_point_id"}},
			{name: "another DSO's connection point", method: "POST", path: "/v1/metering-points", token: w.dso2Key,
				body: mp, wantStatus: 403},
			{name: "duplicate code", method: "POST", path: "/v1/metering-points", token: w.dso1Key,
				body: with("code", "MP-2"), wantStatus: 409, wantBody: []string{"body.code", "MP-2"}},
			{name: "unknown direction", method: "POST", path: "/v1/metering-points", token: w.dso1Key,
				body: with("direction", "sideways"), wantStatus: 422, wantBody: []string{"body.direction"}},
			{name: "fsp cannot register metering points", method: "POST", path: "/v1/metering-points", token: w.fspAKey,
				body: mp, wantStatus: 403},
		})
	})
	mp1 := "/v1/metering-points/" + w.mp1.ID
	e.run([]scenario{
		{name: "dso sees its metering point", method: "GET", path: mp1, token: w.dso1Key, wantStatus: 200, wantBody: []string{w.c1}},
		{name: "consumer sees its own", method: "GET", path: mp1, token: w.c1Key, wantStatus: 200},
		{name: "supplier sees the one it supplies", method: "GET", path: mp1, token: w.supplierKey, wantStatus: 200},
		{name: "brp sees the one it balances", method: "GET", path: mp1, token: w.brpKey, wantStatus: 200},
		{name: "neighbour does not see it", method: "GET", path: mp1, token: w.c2Key, wantStatus: 403, wantBody: []string{"consent.none"}, notWantBody: []string{`"code"`}},
		{name: "other DSO does not see it", method: "GET", path: mp1, token: w.dso2Key, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "fsp without a resource there does not see it", method: "GET", path: mp1, token: w.fspAKey, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "tso does not see it", method: "GET", path: mp1, token: w.tsoKey, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "register sees it", method: "GET", path: mp1, token: e.admin, wantStatus: 200},
		{name: "dso lists its own by default", method: "GET", path: "/v1/metering-points", token: w.dso1Key, wantStatus: 200,
			wantBody: []string{w.mp1.ID}, notWantBody: []string{w.mp2.ID}},
		{name: "dso cannot list another DSO's", method: "GET", path: "/v1/metering-points?dso_id=" + w.dso2, token: w.dso1Key, wantStatus: 403,
			wantBody: []string{"dso_id"}},
		{name: "consumer lists its own by default", method: "GET", path: "/v1/metering-points", token: w.c2Key, wantStatus: 200,
			wantBody: []string{w.mp2.ID}, notWantBody: []string{w.mp1.ID}},
		{name: "consumer cannot list a neighbour's", method: "GET", path: "/v1/metering-points?consumer_id=" + w.c1, token: w.c2Key, wantStatus: 403},
		{name: "supplier is told which filter or role it needs", method: "GET", path: "/v1/metering-points", token: w.supplierKey, wantStatus: 403,
			wantBody: []string{"dso_id=self", "consumer_id=self", "register operator"}},
		{name: "register lists by consumer", method: "GET", path: "/v1/metering-points?consumer_id=" + w.c2, token: e.admin, wantStatus: 200,
			wantBody: []string{w.mp2.ID}, notWantBody: []string{w.mp1.ID}},
		{name: "register lists by connection point", method: "GET", path: "/v1/metering-points?connection_point_id=" + w.cp1.ID, token: e.admin, wantStatus: 200,
			wantBody: []string{w.mp1.ID}, notWantBody: []string{w.mp2.ID}},
	})

	// Switches: append, never overwrite.
	supplier2, supplier2Key := e.party("supplier2", "supplier")
	created := w.mp1.Assignments[0].ValidFrom
	from := created.Add(24 * time.Hour).UTC().Truncate(time.Second)
	sw := mp1 + "/switches"
	e.unchanged(func() {
		e.run([]scenario{
			{name: "switch before the last assignment", method: "POST", path: sw, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"supplier_id": supplier2, "valid_from": created.Add(-time.Hour)}, wantStatus: 422, wantBody: []string{"body.valid_from", "after the last assignment"}},
			{name: "switch to a party that is no supplier", method: "POST", path: sw, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"supplier_id": w.brp, "valid_from": from}, wantStatus: 422, wantBody: []string{"body.supplier_id"}},
			{name: "switch that changes nothing", method: "POST", path: sw, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"supplier_id": w.supplier, "valid_from": from}, wantStatus: 422, wantBody: []string{"nothing to switch"}},
			{name: "switch naming nobody", method: "POST", path: sw, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"valid_from": from}, wantStatus: 422, wantBody: []string{"body.supplier_id"}},
			{name: "supplier cannot switch", method: "POST", path: sw, token: w.supplierKey, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"supplier_id": supplier2, "valid_from": from}, wantStatus: 403},
			{name: "other DSO cannot switch", method: "POST", path: sw, token: w.dso2Key, headers: []string{"If-Match", `"1"`},
				body: map[string]any{"supplier_id": supplier2, "valid_from": from}, wantStatus: 404},
		})
	})
	var before flexhub.MeteringPoint
	e.do("GET", mp1, w.dso1Key, nil, 200, &before)
	var switched flexhub.MeteringPoint
	_, h := e.do("POST", sw, w.dso1Key, map[string]any{"supplier_id": supplier2, "valid_from": from}, 200, &switched, "If-Match", `"1"`)
	if h.Get("ETag") != `"2"` || len(switched.Assignments) != 2 {
		t.Fatalf("switch: ETag %q, assignments %+v", h.Get("ETag"), switched.Assignments)
	}
	if a := switched.Assignments[0]; a.SupplierID != w.supplier || !a.ValidFrom.Equal(created) {
		t.Fatalf("the first assignment changed: %+v", a)
	}
	if a := switched.Assignments[1]; a.SupplierID != supplier2 || a.BRPID != w.brp || !a.ValidFrom.Equal(from) {
		t.Fatalf("a supplier switch keeps the BRP: %+v", a)
	}
	if a, _ := switched.AssignmentAt(from.Add(-time.Second)); a.SupplierID != w.supplier {
		t.Fatalf("before the switch the old supplier holds it: %+v", a)
	}
	e.run([]scenario{
		{name: "stale If-Match loses", method: "POST", path: sw, token: w.dso1Key, headers: []string{"If-Match", `"1"`},
			body: map[string]any{"brp_id": w.brp, "valid_from": from.Add(time.Hour)}, wantStatus: 409},
		{name: "new supplier sees it", method: "GET", path: mp1, token: supplier2Key, wantStatus: 200},
		{name: "old supplier still sees it", method: "GET", path: mp1, token: w.supplierKey, wantStatus: 200},
		{name: "as_of before the switch", method: "GET", path: mp1 + "?as_of=" + before.UpdatedAt.Format(time.RFC3339Nano), token: w.dso1Key, wantStatus: 200,
			wantBody: []string{`"version":1`}, notWantBody: []string{supplier2}},
		{name: "as_of before it existed", method: "GET", path: mp1 + "?as_of=2000-01-01T00:00:00Z", token: w.dso1Key, wantStatus: 404},
		{name: "as_of that is no time", method: "GET", path: mp1 + "?as_of=yesterday", token: w.dso1Key, wantStatus: 422, wantBody: []string{"query.as_of"}},
		{name: "audit names the new supplier", method: "GET", path: "/v1/audit?object_id=" + w.mp1.ID, token: supplier2Key, wantStatus: 200,
			wantBody: []string{"metering_point.switched"}},
	})
}

// TestMeteringPointVisibleToOperatingFSP: an FSP sees a metering point only
// while it operates an active resource on it: not before the consumer has
// confirmed the unit, and not after it is deregistered (then it needs the
// consumer's consent: 403 consent.none, logged for the consumer).
func TestMeteringPointVisibleToOperatingFSP(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	var r flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery", w.mp1.ID), 201, &r)
	e.do("GET", "/v1/metering-points/"+w.mp1.ID, w.fspAKey, nil, 403, nil) // consent.none: the consumer has not confirmed the unit
	e.do("POST", "/v1/resources/"+r.ID+"/confirmation", w.c1Key, map[string]any{"accept": true}, 200, &r)
	e.do("GET", "/v1/metering-points/"+w.mp1.ID, w.fspAKey, nil, 200, nil)
	e.do("GET", "/v1/metering-points/"+w.mp2.ID, w.fspAKey, nil, 403, nil)
	raw, _ := e.do("GET", "/v1/metering-points", w.fspAKey, nil, 403, nil)
	if !strings.Contains(raw, "dso_id=self") {
		t.Fatalf("an FSP is told how metering points are listed: %s", raw)
	}
	e.do("DELETE", "/v1/resources/"+r.ID, w.fspAKey, nil, 200, nil, "If-Match", `"2"`)
	e.do("GET", "/v1/metering-points/"+w.mp1.ID, w.fspAKey, nil, 403, nil)
}
