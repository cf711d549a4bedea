package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// unitBody is a valid unit at a metering point.
func unitBody(name, mpID string) map[string]any {
	return map[string]any{"name": name, "kind": "unit", "unit_type": "battery", "metering_point_id": mpID,
		"technical": map[string]any{"max_up": kwOf(5), "max_down": kwOf(5), "full_activation_time": "PT5M",
			"energy_limit": map[string]any{"value": 10, "unit": "kWh"}}}
}

// groupBody is a group of units.
func groupBody(name string, members ...string) map[string]any {
	return map[string]any{"name": name, "kind": "group", "members": members, "technical": map[string]any{"max_up": kwOf(10)}}
}

// withTech returns a copy of a unit body with one technical field replaced.
func withTech(body map[string]any, key string, v any) map[string]any {
	out := map[string]any{}
	for k, val := range body {
		out[k] = val
	}
	tech := map[string]any{}
	for k, val := range body["technical"].(map[string]any) {
		tech[k] = val
	}
	tech[key] = v
	out["technical"] = tech
	return out
}

// with returns a copy of a body with one field replaced.
func with(body map[string]any, key string, v any) map[string]any {
	out := map[string]any{}
	for k, val := range body {
		out[k] = val
	}
	out[key] = v
	return out
}

// confirm has the consumer behind a unit accept its registration and
// reads the resource, now active, back into r.
func (e *env) confirm(consumerKey string, r *flexhub.Resource) {
	e.t.Helper()
	e.do("POST", "/v1/resources/"+r.ID+"/confirmation", consumerKey, map[string]any{"accept": true}, 200, r)
	if r.Status != "active" {
		e.t.Fatalf("confirmed resource is %s, want active", r.Status)
	}
}

func TestResourceRegistration(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	var r flexhub.Resource
	_, h := e.do("POST", "/v1/resources", w.fspAKey, unitBody("Home battery", w.mp1.ID), 201, &r)
	if h.Get("ETag") != `"1"` || h.Get("Location") != "/v1/resources/"+r.ID {
		t.Fatalf("ETag %q Location %q", h.Get("ETag"), h.Get("Location"))
	}
	if r.FSPID != w.fspA || r.OwnerID != w.c1 || r.ConnectionPointID != w.cp1.ID || r.DSOID != w.dso1 || r.Status != "pending_confirmation" ||
		r.Confirmation != nil || r.Version != 1 || r.ValidFrom.IsZero() || !r.ValidFrom.Equal(r.CreatedAt) {
		t.Fatalf("registered unit: %+v", r)
	}
	e.confirm(w.c1Key, &r)
	var rB flexhub.Resource
	e.do("POST", "/v1/resources", w.fspBKey, unitBody("Heat pump", w.mp2.ID), 201, &rB)

	unit := unitBody("Unit", w.mp1.ID)
	e.unchanged(func() {
		e.run([]scenario{
			{name: "energy unit for power", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: withTech(unit, "max_up", map[string]any{"value": 5, "unit": "kWh"}), wantStatus: 422, wantBody: []string{"body.technical.max_up.unit"}},
			{name: "negative power", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: withTech(unit, "max_down", map[string]any{"value": -5, "unit": "kW"}), wantStatus: 422, wantBody: []string{"body.technical.max_down.value"}},
			{name: "power without a unit", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: withTech(unit, "max_up", map[string]any{"value": 5}), wantStatus: 422, wantBody: []string{"body.technical.max_up"}},
			{name: "no flexibility at all", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "technical", map[string]any{"max_up": kwOf(0)}), wantStatus: 422, wantBody: []string{"body.technical.max_up", "upward or downward"}},
			{name: "bad duration", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: withTech(unit, "full_activation_time", "five minutes"), wantStatus: 422, wantBody: []string{"body.technical.full_activation_time", "PT15M"}},
			{name: "minimum above maximum duration", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: withTech(withTech(unit, "min_activation_duration", "PT2H"), "max_activation_duration", "PT1H"), wantStatus: 422, wantBody: []string{"body.technical.min_activation_duration"}},
			{name: "unknown unit type", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "unit_type", "toaster"), wantStatus: 422, wantBody: []string{"body.unit_type"}},
			{name: "unit without metering point", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "metering_point_id", ""), wantStatus: 422, wantBody: []string{"body.metering_point_id"}},
			{name: "metering point that does not exist", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "metering_point_id", flexhub.NewID()), wantStatus: 422, wantBody: []string{"body.metering_point_id", "does not exist"}},
			{name: "owner who is not the consumer of the metering point", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "owner_id", w.c2), wantStatus: 422, wantBody: []string{"body.owner_id"}},
			{name: "connection point that is not the metering point's", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "connection_point_id", w.cp2.ID), wantStatus: 422, wantBody: []string{"body.connection_point_id", w.cp1.ID}},
			{name: "unit with members", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "members", []string{r.ID}), wantStatus: 422, wantBody: []string{"body.members"}},
			{name: "unknown field", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(unit, "colour", "red"), wantStatus: 422, wantBody: []string{"body.colour"}},
			{name: "dso cannot register resources", method: "POST", path: "/v1/resources", token: w.dso1Key,
				body: unit, wantStatus: 403, wantBody: []string{"fsp"}},
			{name: "consumer without fsp role cannot register", method: "POST", path: "/v1/resources", token: w.c1Key,
				body: unit, wantStatus: 403},
			{name: "group with another FSP's unit", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: groupBody("Pool", r.ID, rB.ID), wantStatus: 422, wantBody: []string{"body.members[1]", "not one of your resources"}},
			{name: "group with a unit that does not exist", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: groupBody("Pool", flexhub.NewID()), wantStatus: 422, wantBody: []string{"body.members[0]", "not one of your resources"}},
			{name: "group listing a unit twice", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: groupBody("Pool", r.ID, r.ID), wantStatus: 422, wantBody: []string{"body.members[1]", "twice"}},
			{name: "group with a metering point", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: with(groupBody("Pool", r.ID), "metering_point_id", w.mp1.ID), wantStatus: 422, wantBody: []string{"body.kind"}},
			{name: "empty group", method: "POST", path: "/v1/resources", token: w.fspAKey,
				body: groupBody("Pool"), wantStatus: 422, wantBody: []string{"body.members"}},
		})
	})

	// The FSP itself may own a unit behind a consumer's meter; it still
	// opens the consumer's metering point to the FSP, so the consumer
	// (not the owner) confirms it, and sees it for that.
	var own flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, with(unitBody("FSP-owned battery", w.mp1.ID), "owner_id", w.fspA), 201, &own)
	if own.OwnerID != w.fspA || own.Status != "pending_confirmation" {
		t.Fatalf("owner %q status %q, want the FSP %q and pending_confirmation", own.OwnerID, own.Status, w.fspA)
	}
	e.do("GET", "/v1/resources/"+own.ID, w.c1Key, nil, 200, nil)
	e.confirm(w.c1Key, &own)
	e.run([]scenario{
		{name: "the consumer reads the trail of a unit it does not own", method: "GET", path: "/v1/audit?object_id=" + own.ID, token: w.c1Key, wantStatus: 200,
			wantBody: []string{"resource.registered", "resource.confirmed"}},
	})
	var group flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, groupBody("Pool", r.ID, own.ID), 201, &group)
	if group.DSOID != "" || group.MeteringPointID != "" || group.ConnectionPointID != "" || len(group.Members) != 2 {
		t.Fatalf("group: %+v", group)
	}
	e.run([]scenario{
		{name: "group with a group", method: "POST", path: "/v1/resources", token: w.fspAKey,
			body: groupBody("Pool of pools", group.ID), wantStatus: 422, wantBody: []string{"body.members[0]", "units only"}},
	})

	// A retried create with the same key answers with the first result and
	// creates nothing more; the same key for another body is refused.
	body := unitBody("EV charger", w.mp1.ID)
	var first, again flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, body, 201, &first, "Idempotency-Key", "ev-1")
	e.unchanged(func() {
		_, h = e.do("POST", "/v1/resources", w.fspAKey, body, 201, &again, "Idempotency-Key", "ev-1")
		e.do("POST", "/v1/resources", w.fspAKey, with(body, "name", "Other"), 409, nil, "Idempotency-Key", "ev-1")
	})
	if again.ID != first.ID || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay made %s (Idempotent-Replayed %q), want %s", again.ID, h.Get("Idempotent-Replayed"), first.ID)
	}
	for status, want := range map[string]int{"active": 2, "pending_confirmation": 1} {
		raw, _ := e.do("GET", "/v1/resources?metering_point_id="+w.mp1.ID+"&status="+status, w.fspAKey, nil, 200, nil)
		var page struct{ Items []flexhub.Resource }
		if err := json.Unmarshal([]byte(raw), &page); err != nil {
			t.Fatal(err)
		}
		if n := len(page.Items); n != want {
			t.Fatalf("FSP A has %d %s units at mp1 (active: battery and own battery; pending: EV charger), got %d: %s", want, status, n, raw)
		}
	}
}

func TestResourceVisibility(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	var rA, rB flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery A", w.mp1.ID), 201, &rA)
	e.do("POST", "/v1/resources", w.fspBKey, unitBody("Heat pump B", w.mp2.ID), 201, &rB)
	a := "/v1/resources/" + rA.ID
	e.run([]scenario{
		{name: "operating FSP", method: "GET", path: a, token: w.fspAKey, wantStatus: 200, wantBody: []string{"Battery A"}},
		{name: "other FSP", method: "GET", path: a, token: w.fspBKey, wantStatus: 404, notWantBody: []string{"Battery A"}},
		{name: "owner", method: "GET", path: a, token: w.c1Key, wantStatus: 200},
		{name: "neighbour", method: "GET", path: a, token: w.c2Key, wantStatus: 404},
		{name: "DSO of its grid", method: "GET", path: a, token: w.dso1Key, wantStatus: 200},
		{name: "other DSO", method: "GET", path: a, token: w.dso2Key, wantStatus: 404},
		{name: "TSO without a prequalification", method: "GET", path: a, token: w.tsoKey, wantStatus: 404},
		{name: "supplier of the metering point", method: "GET", path: a, token: w.supplierKey, wantStatus: 404},
		{name: "register", method: "GET", path: a, token: e.admin, wantStatus: 200},
		{name: "other FSP's versions", method: "GET", path: a + "/versions", token: w.fspBKey, wantStatus: 404},
		{name: "other FSP cannot update", method: "PUT", path: a, token: w.fspBKey, headers: []string{"If-Match", `"1"`},
			body: unitBody("Mine now", w.mp1.ID), wantStatus: 404},
		{name: "other FSP cannot deregister", method: "DELETE", path: a, token: w.fspBKey, headers: []string{"If-Match", `"1"`}, wantStatus: 404},
		{name: "owner sees but cannot update", method: "PUT", path: a, token: w.c1Key, headers: []string{"If-Match", `"1"`},
			body: unitBody("Renamed", w.mp1.ID), wantStatus: 403},
		{name: "FSP lists its own", method: "GET", path: "/v1/resources", token: w.fspAKey, wantStatus: 200,
			wantBody: []string{rA.ID}, notWantBody: []string{rB.ID}},
		{name: "FSP cannot list another FSP's", method: "GET", path: "/v1/resources?fsp_id=" + w.fspB, token: w.fspAKey, wantStatus: 403,
			wantBody: []string{"fsp_id"}},
		{name: "DSO lists its grid's", method: "GET", path: "/v1/resources", token: w.dso2Key, wantStatus: 200,
			wantBody: []string{rB.ID}, notWantBody: []string{rA.ID}},
		{name: "DSO cannot list another grid's", method: "GET", path: "/v1/resources?dso_id=" + w.dso1, token: w.dso2Key, wantStatus: 403},
		{name: "consumer lists its own", method: "GET", path: "/v1/resources", token: w.c1Key, wantStatus: 200,
			wantBody: []string{rA.ID}, notWantBody: []string{rB.ID}},
		{name: "TSO is told which filter it needs", method: "GET", path: "/v1/resources", token: w.tsoKey, wantStatus: 403,
			wantBody: []string{"fsp_id=self", "dso_id=self", "owner_id=self"}},
		{name: "register lists by FSP", method: "GET", path: "/v1/resources?fsp_id=" + w.fspB, token: e.admin, wantStatus: 200,
			wantBody: []string{rB.ID}, notWantBody: []string{rA.ID}},
		{name: "register lists by owner", method: "GET", path: "/v1/resources?owner_id=" + w.c1, token: e.admin, wantStatus: 200,
			wantBody: []string{rA.ID}, notWantBody: []string{rB.ID}},
		{name: "unknown status", method: "GET", path: "/v1/resources?status=gone", token: w.fspAKey, wantStatus: 422, wantBody: []string{"status"}},
		{name: "owner reads the registration in the audit trail", method: "GET", path: "/v1/audit?object_id=" + rA.ID, token: w.c1Key, wantStatus: 200,
			wantBody: []string{"resource.registered"}},
		{name: "DSO reads the registration in the audit trail", method: "GET", path: "/v1/audit?object_id=" + rA.ID, token: w.dso1Key, wantStatus: 200,
			wantBody: []string{"resource.registered"}},
		{name: "other FSP does not", method: "GET", path: "/v1/audit?object_id=" + rA.ID, token: w.fspBKey, wantStatus: 200,
			notWantBody: []string{"resource.registered"}},
	})

	// A party with several roles picks its view explicitly: a prosumer that
	// is its own FSP and a DSO that is also an FSP.
	pro, proKey := e.party("prosumer", "consumer", "fsp")
	var mp flexhub.MeteringPoint
	e.do("POST", "/v1/metering-points", w.dso1Key, map[string]any{"code": "MP-PRO", "connection_point_id": w.cp1.ID, "consumer_id": pro}, 201, &mp)
	var self, aggregated flexhub.Resource
	e.do("POST", "/v1/resources", proKey, unitBody("Own heat pump", mp.ID), 201, &self)
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Aggregated boiler", mp.ID), 201, &aggregated)
	// A unit at the FSP's own metering point needs nobody's confirmation.
	if self.Status != "active" || self.Confirmation != nil || aggregated.Status != "pending_confirmation" {
		t.Fatalf("own unit %s, aggregated unit %s; want active and pending_confirmation", self.Status, aggregated.Status)
	}
	e.run([]scenario{
		{name: "prosumer as FSP by default", method: "GET", path: "/v1/resources", token: proKey, wantStatus: 200,
			wantBody: []string{self.ID}, notWantBody: []string{aggregated.ID}},
		{name: "prosumer as owner", method: "GET", path: "/v1/resources?owner_id=self", token: proKey, wantStatus: 200,
			wantBody: []string{self.ID, aggregated.ID}},
		{name: "prosumer sees the unit an aggregator runs on its meter", method: "GET", path: "/v1/resources/" + aggregated.ID, token: proKey, wantStatus: 200},
	})
}

func TestResourceVersions(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	// Version 1 is the registration, pending; version 2 the household's
	// confirmation.
	var pending, v1 flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery", w.mp1.ID), 201, &pending)
	v1 = pending
	e.confirm(w.c1Key, &v1)
	if v1.Version != 2 || v1.Confirmation == nil || !v1.Confirmation.Accepted || v1.Confirmation.AnsweredBy != w.c1 || !v1.ValidFrom.After(pending.ValidFrom) {
		t.Fatalf("confirmed: %+v", v1)
	}
	path := "/v1/resources/" + v1.ID
	update := withTech(unitBody("Battery, bigger", w.mp1.ID), "max_up", kwOf(8))

	e.unchanged(func() {
		e.run([]scenario{
			{name: "update without If-Match", method: "PUT", path: path, token: w.fspAKey, body: update, wantStatus: 422, wantBody: []string{"If-Match"}},
			{name: "update with a malformed If-Match", method: "PUT", path: path, token: w.fspAKey, headers: []string{"If-Match", "latest"}, body: update, wantStatus: 422, wantBody: []string{"header.If-Match"}},
			{name: "kind cannot change", method: "PUT", path: path, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
				body: groupBody("Now a group", v1.ID), wantStatus: 422, wantBody: []string{"body.kind"}},
			{name: "update with a wrong unit", method: "PUT", path: path, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
				body: withTech(update, "max_up", map[string]any{"value": 5, "unit": "kWh"}), wantStatus: 422, wantBody: []string{"body.technical.max_up.unit"}},
			{name: "update that does not exist", method: "PUT", path: "/v1/resources/" + flexhub.NewID(), token: w.fspAKey, headers: []string{"If-Match", `"2"`},
				body: update, wantStatus: 404},
			{name: "a confirmed unit cannot move to another household's metering point", method: "PUT", path: path, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
				body: unitBody("Battery", w.mp2.ID), wantStatus: 422, wantBody: []string{"body.metering_point_id", w.mp2.ID, "register a new resource"}},
		})
	})

	var v2 flexhub.Resource
	_, h := e.do("PUT", path, w.fspAKey, update, 200, &v2, "If-Match", `"2"`)
	if h.Get("ETag") != `"3"` || v2.Version != 3 || v2.Name != "Battery, bigger" || v2.Status != "active" || v2.Confirmation == nil ||
		!v2.ValidFrom.After(v1.ValidFrom) || !v2.CreatedAt.Equal(v1.CreatedAt) {
		t.Fatalf("update: ETag %q, %+v", h.Get("ETag"), v2)
	}
	e.run([]scenario{
		{name: "second update with the same If-Match loses", method: "PUT", path: path, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
			body: with(update, "name", "Lost update"), wantStatus: 409, wantBody: []string{"version 3", "version 2"}},
		{name: "current version", method: "GET", path: path, token: w.fspAKey, wantStatus: 200, wantBody: []string{"Battery, bigger"}, notWantBody: []string{"Lost update"}},
		{name: "as_of the pending registration", method: "GET", path: path + "?as_of=" + pending.ValidFrom.Format(time.RFC3339Nano), token: w.fspAKey, wantStatus: 200,
			wantBody: []string{`"name":"Battery"`, `"version":1`, `"status":"pending_confirmation"`}},
		{name: "as_of the confirmation", method: "GET", path: path + "?as_of=" + v1.ValidFrom.Format(time.RFC3339Nano), token: w.fspAKey, wantStatus: 200,
			wantBody: []string{`"name":"Battery"`, `"version":2`, `"status":"active"`}},
		{name: "as_of the owner reads it too", method: "GET", path: path + "?as_of=" + v1.ValidFrom.Format(time.RFC3339Nano), token: w.c1Key, wantStatus: 200,
			wantBody: []string{`"version":2`}},
		{name: "as_of before it existed", method: "GET", path: path + "?as_of=" + pending.ValidFrom.Add(-time.Second).Format(time.RFC3339Nano), token: w.fspAKey, wantStatus: 404,
			wantBody: []string{"did not exist"}},
	})

	// Deregistration is a new version; the history stays.
	var v3 flexhub.Resource
	_, h = e.do("DELETE", path, w.fspAKey, nil, 200, &v3, "If-Match", `"3"`)
	if h.Get("ETag") != `"4"` || v3.Status != "deregistered" || v3.Name != "Battery, bigger" {
		t.Fatalf("deregister: ETag %q, %+v", h.Get("ETag"), v3)
	}
	e.unchanged(func() {
		e.run([]scenario{
			{name: "deregister twice", method: "DELETE", path: path, token: w.fspAKey, headers: []string{"If-Match", `"4"`}, wantStatus: 409, wantBody: []string{"deregistered"}},
			{name: "update after deregistration", method: "PUT", path: path, token: w.fspAKey, headers: []string{"If-Match", `"4"`}, body: update, wantStatus: 409, wantBody: []string{"deregistered"}},
			{name: "confirm after deregistration", method: "POST", path: path + "/confirmation", token: w.c1Key, body: map[string]any{"accept": true}, wantStatus: 409, wantBody: []string{"deregistered"}},
		})
	})
	e.run([]scenario{
		{name: "deregistered resource is still readable", method: "GET", path: path, token: w.c1Key, wantStatus: 200, wantBody: []string{`"status":"deregistered"`}},
		{name: "as_of while it was active", method: "GET", path: path + "?as_of=" + v2.ValidFrom.Format(time.RFC3339Nano), token: w.fspAKey, wantStatus: 200,
			wantBody: []string{`"status":"active"`, `"version":3`}},
		{name: "listed as deregistered", method: "GET", path: "/v1/resources?status=deregistered", token: w.fspAKey, wantStatus: 200, wantBody: []string{v1.ID}},
		{name: "not listed as active", method: "GET", path: "/v1/resources?status=active", token: w.fspAKey, wantStatus: 200, notWantBody: []string{v1.ID}},
	})

	var versions struct {
		Items []app.ResourceVersion `json:"items"`
	}
	e.do("GET", path+"/versions", w.dso1Key, nil, 200, &versions)
	if len(versions.Items) != 4 {
		t.Fatalf("want 4 versions, got %d", len(versions.Items))
	}
	for i, v := range versions.Items {
		if v.Version != int64(i+1) || v.ID != v1.ID {
			t.Fatalf("version %d: %+v", i+1, v)
		}
		if i < 3 && (v.ValidTo == nil || !v.ValidTo.Equal(versions.Items[i+1].ValidFrom)) {
			t.Fatalf("version %d must end when version %d starts: %+v", i+1, i+2, v)
		}
	}
	if last := versions.Items[3]; last.ValidTo != nil || last.Status != "deregistered" {
		t.Fatalf("current version: %+v", last)
	}
	if first := versions.Items[0]; first.Name != "Battery" || first.Status != "pending_confirmation" || first.Technical.MaxUp.Value != 5 {
		t.Fatalf("first version: %+v", first)
	}
	if second := versions.Items[1]; second.Status != "active" || second.Confirmation == nil || second.Confirmation.AnsweredBy != w.c1 {
		t.Fatalf("second version: %+v", second)
	}
}

func TestGroupMembership(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	var u1, u2, g flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery 1", w.mp1.ID), 201, &u1)
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery 2", w.mp1.ID), 201, &u2)
	e.confirm(w.c1Key, &u1)
	e.confirm(w.c1Key, &u2)
	e.do("POST", "/v1/resources", w.fspAKey, groupBody("Pool", u1.ID, u2.ID), 201, &g)
	if g.Status != "active" {
		t.Fatalf("a group of active units is active at once, got %s", g.Status)
	}
	e.run([]scenario{
		{name: "unit in an active group cannot go", method: "DELETE", path: "/v1/resources/" + u1.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
			wantStatus: 409, wantBody: []string{g.ID, "Pool"}},
		{name: "group cannot contain itself", method: "PUT", path: "/v1/resources/" + g.ID, token: w.fspAKey, headers: []string{"If-Match", `"1"`},
			body: groupBody("Pool", u2.ID, g.ID), wantStatus: 422, wantBody: []string{"body.members[1]"}},
		{name: "unit leaves the group", method: "PUT", path: "/v1/resources/" + g.ID, token: w.fspAKey, headers: []string{"If-Match", `"1"`},
			body: groupBody("Pool", u2.ID), wantStatus: 200, wantBody: []string{`"version":2`}, notWantBody: []string{u1.ID}},
		{name: "then it can go", method: "DELETE", path: "/v1/resources/" + u1.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
			wantStatus: 200, wantBody: []string{`"status":"deregistered"`}},
		{name: "a deregistered unit cannot rejoin", method: "PUT", path: "/v1/resources/" + g.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`},
			body: groupBody("Pool", u2.ID, u1.ID), wantStatus: 422, wantBody: []string{"body.members[1]", "deregistered"}},
		{name: "the group goes", method: "DELETE", path: "/v1/resources/" + g.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`}, wantStatus: 200},
		{name: "then its last unit can go", method: "DELETE", path: "/v1/resources/" + u2.ID, token: w.fspAKey, headers: []string{"If-Match", `"2"`}, wantStatus: 200},
	})
}

// TestResourceConcurrentUpdate: two clients update the same version at
// once; exactly one wins, the other is told to re-read, and the winner's
// change is what is stored.
func TestResourceConcurrentUpdate(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	var r flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery", w.mp1.ID), 201, &r)

	names := []string{"Client one", "Client two"}
	statuses := make([]int, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf, _ := json.Marshal(unitBody(name, w.mp1.ID))
			req, err := http.NewRequest("PUT", e.srv.URL+"/v1/resources/"+r.ID, bytes.NewReader(buf))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+w.fspAKey)
			req.Header.Set("If-Match", `"1"`)
			<-start
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	winner := -1
	for i, st := range statuses {
		switch st {
		case 200:
			if winner >= 0 {
				t.Fatalf("both updates won: %v", statuses)
			}
			winner = i
		case 409:
		default:
			t.Fatalf("statuses %v, want one 200 and one 409", statuses)
		}
	}
	if winner < 0 {
		t.Fatalf("statuses %v, want one 200 and one 409", statuses)
	}
	var got flexhub.Resource
	e.do("GET", "/v1/resources/"+r.ID, w.fspAKey, nil, 200, &got)
	if got.Version != 2 || got.Name != names[winner] {
		t.Fatalf("stored version %d named %q, want version 2 named %q", got.Version, got.Name, names[winner])
	}
}

// TestResourceVisibleToReviewingOperators: a system operator asked to
// prequalify a resource (for its product, or for its grid) may read it;
// others may not. The prequalification rows are written straight to the
// store so that this test depends on the register alone.
func TestResourceVisibleToReviewingOperators(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	var rA, rB flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery A", w.mp1.ID), 201, &rA)
	e.do("POST", "/v1/resources", w.fspBKey, unitBody("Heat pump B", w.mp2.ID), 201, &rB)
	now := time.Now().UTC()
	ctx := context.Background()
	err := e.svc.Store().Update(ctx, func(tx flexhub.Tx) error {
		p := &flexhub.Product{ID: flexhub.NewID(), SystemOperatorID: w.tso, Status: "active", CreatedAt: now, UpdatedAt: now,
			ProductSpec: flexhub.ProductSpec{Name: "mFRR up", Service: "balancing_mfrr", Direction: "up", PowerType: "active"}}
		if err := tx.CreateProduct(ctx, p); err != nil {
			return err
		}
		if err := tx.CreatePrequalification(ctx, &flexhub.Prequalification{ID: flexhub.NewID(), ResourceID: rA.ID, ProductID: p.ID,
			FSPID: w.fspA, SystemOperatorID: w.tso, Status: flexhub.PrequalSubmitted, CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		// dso2 is asked for a grid prequalification of a unit outside its
		// grid: unusual, but the request alone entitles it to the data.
		return tx.CreateGridPrequalification(ctx, &flexhub.GridPrequalification{ID: flexhub.NewID(), ResourceID: rA.ID,
			ConnectionPointID: w.cp1.ID, DSOID: w.dso2, FSPID: w.fspA, Status: "requested", CreatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.run([]scenario{
		{name: "TSO reviewing a prequalification", method: "GET", path: "/v1/resources/" + rA.ID, token: w.tsoKey, wantStatus: 200},
		{name: "TSO reads its versions too", method: "GET", path: "/v1/resources/" + rA.ID + "/versions", token: w.tsoKey, wantStatus: 200},
		{name: "TSO not asked about another resource", method: "GET", path: "/v1/resources/" + rB.ID, token: w.tsoKey, wantStatus: 404},
		{name: "DSO asked for a grid prequalification", method: "GET", path: "/v1/resources/" + rA.ID, token: w.dso2Key, wantStatus: 200},
		{name: "reviewer cannot change it", method: "PUT", path: "/v1/resources/" + rA.ID, token: w.tsoKey, headers: []string{"If-Match", `"1"`},
			body: unitBody("Mine", w.mp1.ID), wantStatus: 403},
	})
}

// TestResourceConfirmation: a unit an FSP registers at a household's
// metering point stays pending until the household, or the register on
// its behalf, answers. Until it is accepted it opens nothing of the
// household to the FSP and cannot be grouped, prequalified or contracted;
// a rejection is final.
func TestResourceConfirmation(t *testing.T) {
	w := newRegWorld(t)
	e := w.e
	var product flexhub.Product
	e.do("POST", "/v1/products", w.tsoKey, pqProductBody("mFRR"), 201, &product)
	yes := map[string]any{"accept": true}
	prequal := func(id string) map[string]any {
		return map[string]any{"resource_id": id, "product_id": product.ID, "answers": map[string]string{"metering": "smart meter"}}
	}
	contract := func(id string) map[string]any {
		return map[string]any{"product_id": product.ID, "resource_ids": []string{id}, "validity": map[string]any{"start": "2027-01-01T00:00:00Z"}}
	}
	mp1, c1 := "/v1/metering-points/"+w.mp1.ID, "/v1/parties/"+w.c1

	// FSP B has no agreement with household 1 but knows its metering point.
	var r flexhub.Resource
	e.do("POST", "/v1/resources", w.fspBKey, unitBody("Battery B", w.mp1.ID), 201, &r)
	if r.Status != "pending_confirmation" || r.OwnerID != w.c1 || r.Version != 1 || r.Confirmation != nil {
		t.Fatalf("registered at someone else's metering point: %+v", r)
	}
	path := "/v1/resources/" + r.ID
	confirm := path + "/confirmation"
	e.run([]scenario{
		{name: "pending: FSP B cannot read the metering point", method: "GET", path: mp1, token: w.fspBKey, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "pending: FSP B cannot read the household", method: "GET", path: c1, token: w.fspBKey, wantStatus: 404},
		{name: "FSP B reads its pending resource", method: "GET", path: path, token: w.fspBKey, wantStatus: 200, wantBody: []string{`"status":"pending_confirmation"`}},
		{name: "FSP B lists it as pending", method: "GET", path: "/v1/resources?status=pending_confirmation", token: w.fspBKey, wantStatus: 200, wantBody: []string{r.ID}},
		{name: "household 1 lists it", method: "GET", path: "/v1/resources", token: w.c1Key, wantStatus: 200, wantBody: []string{r.ID, `"status":"pending_confirmation"`}},
		{name: "household 1 lists what awaits its answer", method: "GET", path: "/v1/resources?status=pending_confirmation", token: w.c1Key, wantStatus: 200, wantBody: []string{r.ID}},
		{name: "household 1 reads it", method: "GET", path: path, token: w.c1Key, wantStatus: 200, wantBody: []string{"Battery B"}},
		{name: "household 1 finds the registration in its audit trail", method: "GET", path: "/v1/audit?object_id=" + r.ID, token: w.c1Key, wantStatus: 200,
			wantBody: []string{"resource.registered"}},
		{name: "household 2 does not see it", method: "GET", path: path, token: w.c2Key, wantStatus: 404},
	})
	e.unchanged(func() {
		e.run([]scenario{
			{name: "pending: no prequalification", method: "POST", path: "/v1/prequalifications", token: w.fspBKey, body: prequal(r.ID),
				wantStatus: 422, wantBody: []string{"body.resource_id", "awaits the owner's confirmation"}},
			{name: "pending: no grid prequalification", method: "POST", path: "/v1/grid-prequalifications", token: w.fspBKey, body: map[string]any{"resource_id": r.ID},
				wantStatus: 422, wantBody: []string{"body.resource_id", "awaits the owner's confirmation"}},
			{name: "pending: no group", method: "POST", path: "/v1/resources", token: w.fspBKey, body: groupBody("Pool", r.ID),
				wantStatus: 422, wantBody: []string{"body.members[0]", "awaits the owner's confirmation"}},
			{name: "pending: no contract", method: "POST", path: "/v1/contracts", token: w.fspBKey, body: contract(r.ID),
				wantStatus: 422, wantBody: []string{"body.resource_ids[0]", "awaits the owner's confirmation"}},
			{name: "household 2 cannot answer", method: "POST", path: confirm, token: w.c2Key, body: yes, wantStatus: 404},
			{name: "a TSO with no stake cannot answer", method: "POST", path: confirm, token: w.tsoKey, body: yes, wantStatus: 404},
			{name: "FSP B cannot confirm its own registration", method: "POST", path: confirm, token: w.fspBKey, body: yes,
				wantStatus: 403, wantBody: []string{"consumer of metering point " + w.mp1.ID}},
			{name: "the DSO sees it but cannot answer", method: "POST", path: confirm, token: w.dso1Key, body: yes, wantStatus: 403},
			{name: "an answer is required", method: "POST", path: confirm, token: w.c1Key, body: map[string]any{"reason": "hm"}, wantStatus: 422, wantBody: []string{"accept"}},
			{name: "the answer is not null", method: "POST", path: confirm, token: w.c1Key, body: map[string]any{"accept": nil}, wantStatus: 422, wantBody: []string{"body.accept"}},
			{name: "the answer is true or false", method: "POST", path: confirm, token: w.c1Key, body: map[string]any{"accept": "yes"}, wantStatus: 422, wantBody: []string{"body.accept"}},
			{name: "a body is required", method: "POST", path: confirm, token: w.c1Key, wantStatus: 400},
			{name: "unknown field", method: "POST", path: confirm, token: w.c1Key, body: map[string]any{"accept": true, "colour": "red"}, wantStatus: 422, wantBody: []string{"body.colour"}},
			{name: "stale If-Match", method: "POST", path: confirm, token: w.c1Key, body: yes, headers: []string{"If-Match", `"7"`}, wantStatus: 409, wantBody: []string{"version 1"}},
			{name: "a resource that does not exist", method: "POST", path: "/v1/resources/" + flexhub.NewID() + "/confirmation", token: w.c1Key, body: yes, wantStatus: 404},
			{name: "unauthenticated", method: "POST", path: confirm, body: yes, wantStatus: 401},
		})
	})

	// Household 1 says no: final, and FSP B is told why.
	var rejected flexhub.Resource
	_, h := e.do("POST", confirm, w.c1Key, map[string]any{"accept": false, "reason": "  I have no contract with this aggregator "}, 200, &rejected, "If-Match", `"1"`)
	if rejected.Status != "rejected" || rejected.Version != 2 || h.Get("ETag") != `"2"` || rejected.Confirmation == nil || rejected.Confirmation.Accepted ||
		rejected.Confirmation.AnsweredBy != w.c1 || rejected.Confirmation.Reason != "I have no contract with this aggregator" {
		t.Fatalf("rejected: ETag %q, %+v", h.Get("ETag"), rejected)
	}
	e.run([]scenario{
		{name: "rejected: FSP B still cannot read the metering point", method: "GET", path: mp1, token: w.fspBKey, wantStatus: 403, wantBody: []string{"consent.none"}},
		{name: "rejected: FSP B still cannot read the household", method: "GET", path: c1, token: w.fspBKey, wantStatus: 404},
		{name: "FSP B reads the rejection and its reason", method: "GET", path: path, token: w.fspBKey, wantStatus: 200,
			wantBody: []string{`"status":"rejected"`, "no contract with this aggregator"}},
		{name: "FSP B finds it in its audit trail", method: "GET", path: "/v1/audit?object_id=" + r.ID, token: w.fspBKey, wantStatus: 200, wantBody: []string{"resource.rejected"}},
		{name: "household 1 lists what it rejected", method: "GET", path: "/v1/resources?status=rejected", token: w.c1Key, wantStatus: 200, wantBody: []string{r.ID}},
	})
	e.unchanged(func() {
		e.run([]scenario{
			{name: "household 1 cannot change its mind", method: "POST", path: confirm, token: w.c1Key, body: yes, wantStatus: 409, wantBody: []string{"final"}},
			{name: "nor can the register", method: "POST", path: confirm, token: e.admin, body: yes, wantStatus: 409, wantBody: []string{"final"}},
			{name: "rejected: FSP B cannot update it", method: "PUT", path: path, token: w.fspBKey, headers: []string{"If-Match", `"2"`},
				body: unitBody("Battery B, again", w.mp1.ID), wantStatus: 409, wantBody: []string{"rejected", "final"}},
			{name: "rejected: nor deregister it", method: "DELETE", path: path, token: w.fspBKey, headers: []string{"If-Match", `"2"`}, wantStatus: 409, wantBody: []string{"rejected"}},
			{name: "rejected: no prequalification", method: "POST", path: "/v1/prequalifications", token: w.fspBKey, body: prequal(r.ID),
				wantStatus: 422, wantBody: []string{"body.resource_id", "rejected"}},
			{name: "rejected: no group", method: "POST", path: "/v1/resources", token: w.fspBKey, body: groupBody("Pool", r.ID),
				wantStatus: 422, wantBody: []string{"body.members[0]", "rejected"}},
		})
	})

	// Another unit, which household 1 accepts after FSP B corrected it.
	var r2 flexhub.Resource
	e.do("POST", "/v1/resources", w.fspBKey, unitBody("Heat pump B", w.mp1.ID), 201, &r2)
	path2 := "/v1/resources/" + r2.ID
	e.do("PUT", path2, w.fspBKey, withTech(unitBody("Heat pump B", w.mp1.ID), "max_up", kwOf(150)), 200, &r2, "If-Match", `"1"`)
	if r2.Status != "pending_confirmation" || r2.Version != 2 {
		t.Fatalf("a pending unit stays pending when its FSP changes it: %+v", r2)
	}
	e.do("POST", path2+"/confirmation", w.c1Key, map[string]any{"accept": true}, 200, &r2, "If-Match", `"2"`)
	if r2.Status != "active" || r2.Version != 3 || r2.Confirmation == nil || !r2.Confirmation.Accepted || r2.Confirmation.AnsweredBy != w.c1 {
		t.Fatalf("accepted: %+v", r2)
	}
	e.run([]scenario{
		{name: "accepted: FSP B reads the metering point", method: "GET", path: mp1, token: w.fspBKey, wantStatus: 200, wantBody: []string{w.mp1.ID}},
		{name: "accepted: FSP B reads the household", method: "GET", path: c1, token: w.fspBKey, wantStatus: 200, wantBody: []string{w.c1}},
		{name: "FSP B finds the confirmation in its audit trail", method: "GET", path: "/v1/audit?object_id=" + r2.ID, token: w.fspBKey, wantStatus: 200,
			wantBody: []string{"resource.registered", "resource.updated", "resource.confirmed"}},
		{name: "household 2's metering point stays closed", method: "GET", path: "/v1/metering-points/" + w.mp2.ID, token: w.fspBKey, wantStatus: 403, wantBody: []string{"consent.none"}},
	})
	e.unchanged(func() {
		e.run([]scenario{
			{name: "confirming again", method: "POST", path: path2 + "/confirmation", token: w.c1Key, body: yes, wantStatus: 409, wantBody: []string{"already confirmed"}},
			{name: "rejecting after accepting", method: "POST", path: path2 + "/confirmation", token: w.c1Key, body: map[string]any{"accept": false}, wantStatus: 409},
		})
	})
	e.do("POST", "/v1/prequalifications", w.fspBKey, prequal(r2.ID), 201, nil)

	// The register answers on a household's behalf.
	var me, fro flexhub.Party
	e.do("GET", "/v1/me", e.admin, nil, 200, &me)
	froID, froKey := e.party("fro", "flexibility_register_operator")
	e.do("GET", "/v1/me", froKey, nil, 200, &fro)
	var r3, r4 flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Battery A", w.mp2.ID), 201, &r3)
	e.do("POST", "/v1/resources/"+r3.ID+"/confirmation", e.admin, yes, 200, &r3)
	if r3.Status != "active" || r3.Confirmation.AnsweredBy != me.ID {
		t.Fatalf("confirmed by the administrator: %+v", r3)
	}
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("EV charger A", w.mp2.ID), 201, &r4)
	e.do("POST", "/v1/resources/"+r4.ID+"/confirmation", froKey, map[string]any{"accept": false, "reason": "the household wrote to us"}, 200, &r4)
	if r4.Status != "rejected" || r4.Confirmation.AnsweredBy != froID || fro.ID != froID {
		t.Fatalf("rejected by the register operator: %+v", r4)
	}
	e.run([]scenario{
		{name: "household 2 reads who answered for it", method: "GET", path: "/v1/audit?object_id=" + r3.ID, token: w.c2Key, wantStatus: 200, wantBody: []string{"resource.confirmed", me.ID}},
	})

	// A group needs no confirmation; a pending unit can be withdrawn, and
	// then there is nothing left to answer.
	var g, r5 flexhub.Resource
	e.do("POST", "/v1/resources", w.fspAKey, groupBody("Pool A", r3.ID), 201, &g)
	e.do("POST", "/v1/resources", w.fspAKey, unitBody("Boiler A", w.mp2.ID), 201, &r5)
	e.do("DELETE", "/v1/resources/"+r5.ID, w.fspAKey, nil, 200, &r5, "If-Match", `"1"`)
	if g.Status != "active" || r5.Status != "deregistered" {
		t.Fatalf("group %s, withdrawn unit %s", g.Status, r5.Status)
	}
	e.unchanged(func() {
		e.run([]scenario{
			{name: "a group is not confirmed", method: "POST", path: "/v1/resources/" + g.ID + "/confirmation", token: e.admin, body: yes, wantStatus: 409, wantBody: []string{"group"}},
			{name: "a withdrawn unit is not confirmed", method: "POST", path: "/v1/resources/" + r5.ID + "/confirmation", token: w.c2Key, body: yes, wantStatus: 409, wantBody: []string{"deregistered"}},
		})
	})
}
