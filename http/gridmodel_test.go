package http_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// gridData is ../shared/data/grids seen from the repository root.
func gridData(t *testing.T, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{"..", "..", "shared", "data", "grids"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("grid data not found: %v", err)
	}
	return p
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ppEdit changes one table of a pandapower JSON file: the table is a
// pandas DataFrame in "split" orientation, itself a JSON string.
func ppEdit(t *testing.T, raw []byte, table string, edit func(col map[string]int, index []any, data [][]any)) []byte {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	obj := top["_object"].(map[string]any)
	tbl := obj[table].(map[string]any)
	var df struct {
		Columns []string `json:"columns"`
		Index   []any    `json:"index"`
		Data    [][]any  `json:"data"`
	}
	if err := json.Unmarshal([]byte(tbl["_object"].(string)), &df); err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, c := range df.Columns {
		col[c] = i
	}
	edit(col, df.Index, df.Data)
	s, err := json.Marshal(df)
	if err != nil {
		t.Fatal(err)
	}
	tbl["_object"] = string(s)
	out, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// zipDir zips the files of dir into a folder named after it.
func zipDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		w, err := zw.Create(filepath.Base(dir) + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(readFile(t, filepath.Join(dir, e.Name()))); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// upload posts a grid model file.
func (e *env) upload(gridAreaID, format, token string, file []byte) (int, string) {
	e.t.Helper()
	status, raw, _ := e.send("POST", "/v1/grid-areas/"+gridAreaID+"/grid-models?format="+format, token, string(file), "Content-Type", "application/octet-stream")
	return status, raw
}

// gridWorld: a TSO's control area with two DSOs' grid areas, three
// connection points in the first and one in the second, and an FSP.
type gridWorld struct {
	e                                *env
	tsoKey, dso1Key, dso2Key, fspKey string
	otherTSOKey                      string
	ga1, ga2                         flexhub.GridArea
	cpA, cpB, cpC, cpX               flexhub.ConnectionPoint
	case33                           []byte
}

func newGridWorld(t *testing.T, e *env) *gridWorld {
	w := &gridWorld{e: e}
	_, w.tsoKey = e.party("gmtso", "tso")
	_, w.otherTSOKey = e.party("gmtso2", "tso")
	_, w.dso1Key = e.party("gmdso1", "dso")
	_, w.dso2Key = e.party("gmdso2", "dso")
	_, w.fspKey = e.party("gmfsp", "fsp")
	var ca flexhub.ControlArea
	e.do("POST", "/v1/control-areas", w.tsoKey, map[string]any{"eic": eic("10YGMCA"), "name": "Control area"}, 201, &ca)
	e.do("POST", "/v1/grid-areas", w.dso1Key, map[string]any{"eic": eic("10YGMGA1"), "name": "Feeder", "control_area_id": ca.ID}, 201, &w.ga1)
	e.do("POST", "/v1/grid-areas", w.dso2Key, map[string]any{"eic": eic("10YGMGA2"), "name": "Village", "control_area_id": ca.ID}, 201, &w.ga2)
	for _, c := range []struct {
		cp   *flexhub.ConnectionPoint
		code string
		key  string
		ga   string
	}{{&w.cpA, "CP-A", w.dso1Key, w.ga1.ID}, {&w.cpB, "CP-B", w.dso1Key, w.ga1.ID}, {&w.cpC, "CP-C", w.dso1Key, w.ga1.ID}, {&w.cpX, "CP-X", w.dso2Key, w.ga2.ID}} {
		e.do("POST", "/v1/connection-points", c.key, map[string]any{"code": c.code, "grid_area_id": c.ga, "node_ref": c.code}, 201, c.cp)
	}
	w.case33 = readFile(t, gridData(t, "pandapower", "case33bw.json"))
	return w
}

func TestGridModelsThroughAPI(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		w := newGridWorld(t, e)

		// Nothing uploaded yet.
		e.do("GET", "/v1/grid-areas/"+w.ga1.ID+"/grid-model", w.dso1Key, nil, 404, nil)

		// Version 1: case33bw.
		status, raw := e.upload(w.ga1.ID, "pandapower", w.dso1Key, w.case33)
		if status != 201 {
			t.Fatalf("upload case33bw: %d %s", status, raw)
		}
		var up app.GridModelUpload
		if err := json.Unmarshal([]byte(raw), &up); err != nil {
			t.Fatal(err)
		}
		v1 := up.Model
		sum := sha256.Sum256(w.case33)
		if v1.ModelVersion != 1 || v1.Format != "pandapower" || v1.GridAreaID != w.ga1.ID || v1.FileSHA256 != hex.EncodeToString(sum[:]) ||
			v1.FileBytes != int64(len(w.case33)) {
			t.Fatalf("version 1 summary: %+v", v1)
		}
		// Baran & Wu's feeder: 33 buses, 32 branches in service (the 5
		// tie lines are open), one feeding point, 32 loads, 12.66 kV.
		if c := v1.Counts; c.Buses != 33 || c.Lines != 32 || c.Trafos != 0 || c.Slacks != 1 || c.Loads != 32 {
			t.Errorf("counts: %+v", c)
		}
		if len(v1.VoltageLevels) != 1 || v1.VoltageLevels[0] != 12.66 {
			t.Errorf("voltage levels %v, want [12.66]", v1.VoltageLevels)
		}
		if up.CarriedOver != 0 || len(up.Dropped) != 0 {
			t.Errorf("first upload carried mappings: %+v", up)
		}

		var cur flexhub.GridModel
		e.do("GET", "/v1/grid-areas/"+w.ga1.ID+"/grid-model", w.dso1Key, nil, 200, &cur)
		if cur.ID != v1.ID {
			t.Errorf("current model %s, want %s", cur.ID, v1.ID)
		}
		// The original file, byte for byte.
		file, h := e.do("GET", "/v1/grid-models/"+v1.ID+"/file", w.dso1Key, nil, 200, nil)
		if file != string(w.case33) || h.Get("X-Content-SHA256") != v1.FileSHA256 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("downloaded file differs (%d bytes, sha %s, type %s)", len(file), h.Get("X-Content-SHA256"), h.Get("Content-Type"))
		}
		var el app.GridModelElements
		e.do("GET", "/v1/grid-models/"+v1.ID+"/elements", w.dso1Key, nil, 200, &el)
		// Buses come in the file's order (pandapower's 0, 1, 10, 11, ...),
		// each with its index in that order.
		bus17 := -1
		for i, b := range el.Buses {
			if b.Index != i || b.VnKV != 12.66 {
				t.Errorf("bus %d: %+v", i, b)
			}
			if b.ID == "17" {
				bus17 = i
			}
		}
		if len(el.Buses) != 33 || len(el.Lines) != 32 || bus17 < 0 {
			t.Fatalf("elements: %d buses, %d lines, bus 17 at %d", len(el.Buses), len(el.Lines), bus17)
		}

		// Map two connection points.
		var ms app.GridModelMappings
		e.do("PUT", "/v1/grid-models/"+v1.ID+"/mappings", w.dso1Key, map[string]any{"mappings": []map[string]string{
			{"connection_point_id": w.cpA.ID, "bus_id": "17"}, {"connection_point_id": w.cpB.ID, "bus_id": "5"}}}, 200, &ms)
		if len(ms.Mappings) != 2 || len(ms.Unmapped) != 1 || ms.Unmapped[0].ConnectionPointID != w.cpC.ID {
			t.Fatalf("mappings after PUT: %+v", ms)
		}
		var ref flexhub.GridBusRef
		e.do("GET", "/v1/connection-points/"+w.cpA.ID+"/bus", w.dso1Key, nil, 200, &ref)
		if ref.GridModelID != v1.ID || ref.ModelVersion != 1 || ref.BusID != "17" || ref.BusIndex != bus17 {
			t.Errorf("connection point A's bus: %+v", ref)
		}
		e.do("GET", "/v1/connection-points/"+w.cpC.ID+"/bus", w.dso1Key, nil, 404, nil)

		// Bad mappings: each item named, nothing changed.
		e.unchanged(func() {
			e.run([]scenario{
				{name: "bus, connection point of another area, unknown connection point", method: "PUT", path: "/v1/grid-models/" + v1.ID + "/mappings", token: w.dso1Key,
					body: map[string]any{"mappings": []map[string]string{
						{"connection_point_id": w.cpC.ID, "bus_id": "99"},
						{"connection_point_id": w.cpX.ID, "bus_id": "3"},
						{"connection_point_id": flexhub.NewID(), "bus_id": "4"},
						{"connection_point_id": w.cpA.ID, "bus_id": ""}}},
					wantStatus: 422, wantBody: []string{`mappings[0]: bus \"99\" does not exist in grid model version 1`, "mappings[1]: connection point " + w.cpX.ID + " (CP-X) is in grid area " + w.ga2.ID,
						"mappings[2]: connection point", "does not exist"}},
				{name: "a connection point named twice", method: "PUT", path: "/v1/grid-models/" + v1.ID + "/mappings", token: w.dso1Key,
					body:       map[string]any{"mappings": []map[string]string{{"connection_point_id": w.cpC.ID, "bus_id": "3"}, {"connection_point_id": w.cpC.ID, "bus_id": "4"}}},
					wantStatus: 422, wantBody: []string{"mappings[1]: connection point " + w.cpC.ID + " is already mapped in mappings[0]"}},
				{name: "a DSO cannot map in another DSO's model", method: "PUT", path: "/v1/grid-models/" + v1.ID + "/mappings", token: w.dso2Key,
					body: map[string]any{"mappings": []map[string]string{{"connection_point_id": w.cpX.ID, "bus_id": "3"}}}, wantStatus: 404},
			})
		})
		e.do("GET", "/v1/grid-models/"+v1.ID+"/mappings", w.dso1Key, nil, 200, &ms)
		if len(ms.Mappings) != 2 {
			t.Fatalf("a refused mapping changed the mappings: %+v", ms)
		}

		// Base-case power flow: Baran & Wu's published minimum voltage
		// 0.9131 p.u. at bus 18 (pandapower index 17), losses 202.68 kW.
		var pf app.PowerFlowResult
		e.do("POST", "/v1/grid-models/"+v1.ID+"/power-flow", w.dso1Key, map[string]any{}, 200, &pf)
		if pf.VMin.ID != "17" || math.Abs(pf.VMin.VmPU-0.9131) > 1e-4 {
			t.Errorf("Vmin %.5f at bus %s, want 0.9131 at bus 17", pf.VMin.VmPU, pf.VMin.ID)
		}
		if math.Abs(pf.LossesMW*1000-202.68) > 0.1 {
			t.Errorf("losses %.3f kW, want 202.68", pf.LossesMW*1000)
		}
		if len(pf.Buses) != 33 || len(pf.Lines) != 32 || len(pf.Violations) != 0 {
			t.Errorf("base case: %d buses, %d lines, violations %+v", len(pf.Buses), len(pf.Lines), pf.Violations)
		}
		// The same with a tighter default band: the weak end of the feeder
		// breaks it. (case33bw's buses carry 0.9..1.1 themselves, so the
		// default applies to none: the model's own band wins.)
		var tight app.PowerFlowResult
		e.do("POST", "/v1/grid-models/"+v1.ID+"/power-flow", w.dso1Key, map[string]any{"default_vmin_pu": 0.95}, 200, &tight)
		if len(tight.Violations) != 0 {
			t.Errorf("the default band overrode the model's own: %+v", tight.Violations)
		}

		// 600 kW more consumption at connection point A (bus 17) pushes
		// the end of the feeder below 0.9 p.u.; the same as generation
		// lifts it.
		var loaded, fed app.PowerFlowResult
		e.do("POST", "/v1/grid-models/"+v1.ID+"/power-flow", w.dso1Key, map[string]any{"injections": []map[string]any{
			{"connection_point_id": w.cpA.ID, "consumption": map[string]any{"value": 600, "unit": "kW"}, "reactive_consumption": map[string]any{"value": 200, "unit": "kvar"}}}}, 200, &loaded)
		if len(loaded.Injections) != 1 || loaded.Injections[0].BusID != "17" || loaded.Injections[0].BusIndex != bus17 || loaded.Injections[0].PMW != -0.6 || loaded.Injections[0].QMvar != -0.2 {
			t.Errorf("applied injection: %+v", loaded.Injections)
		}
		if loaded.VMin.ID != "17" || loaded.VMin.VmPU >= 0.9 || loaded.LossesMW <= pf.LossesMW {
			t.Errorf("600 kW more at bus 17: Vmin %.4f at %s, losses %.4f MW (base %.4f)", loaded.VMin.VmPU, loaded.VMin.ID, loaded.LossesMW, pf.LossesMW)
		}
		under := map[string]bool{}
		for _, v := range loaded.Violations {
			if v.Kind != "undervoltage" || v.Element != "bus" || v.Limit != 0.9 || v.Value >= 0.9 || !strings.Contains(v.Message, strconv.Quote(v.ID)) {
				t.Errorf("violation %+v", v)
			}
			under[v.ID] = true
		}
		if !under["17"] || len(under) != countBelow(loaded.Buses, 0.9) {
			t.Errorf("undervoltage violations %v; buses below 0.9 p.u.: %d", under, countBelow(loaded.Buses, 0.9))
		}
		e.do("POST", "/v1/grid-models/"+v1.ID+"/power-flow", w.dso1Key, map[string]any{"injections": []map[string]any{
			{"bus_id": "17", "generation": map[string]any{"value": 0.6, "unit": "MW"}}}}, 200, &fed)
		if fed.VMin.VmPU <= pf.VMin.VmPU || len(fed.Violations) != 0 {
			t.Errorf("600 kW generation at bus 17: Vmin %.4f (base %.4f), violations %v", fed.VMin.VmPU, pf.VMin.VmPU, fed.Violations)
		}
		// Refused power flows, and the summary without the elements.
		e.run([]scenario{
			{name: "summary and violations only", method: "POST", path: "/v1/grid-models/" + v1.ID + "/power-flow?summary=true", token: w.dso1Key,
				body: map[string]any{}, wantStatus: 200, wantBody: []string{`"vmin":{`, `"violations":[]`, `"losses_mw":0.2026`}, notWantBody: []string{`"buses"`, `"lines"`}},
			{name: "does not converge", method: "POST", path: "/v1/grid-models/" + v1.ID + "/power-flow", token: w.dso1Key,
				body:       map[string]any{"injections": []map[string]any{{"bus_id": "17", "consumption": map[string]any{"value": 100, "unit": "MW"}}}},
				wantStatus: 422, wantBody: []string{"did not converge after", "largest mismatch", "at bus", fhttpRuleURI(app.RulePowerFlowNotConverged)},
				notWantBody: []string{"vm_pu"}},
			{name: "unknown bus and unmapped connection point", method: "POST", path: "/v1/grid-models/" + v1.ID + "/power-flow", token: w.dso1Key,
				body: map[string]any{"injections": []map[string]any{{"bus_id": "77", "consumption": map[string]any{"value": 1, "unit": "kW"}},
					{"connection_point_id": w.cpC.ID, "generation": map[string]any{"value": 1, "unit": "kW"}}}},
				wantStatus: 422, wantBody: []string{`injections[0]: bus \"77\" does not exist`, "injections[1]: connection point " + w.cpC.ID + " is not mapped"}},
			{name: "unit missing", method: "POST", path: "/v1/grid-models/" + v1.ID + "/power-flow", token: w.dso1Key,
				body:       map[string]any{"injections": []map[string]any{{"bus_id": "17", "consumption": map[string]any{"value": 1, "unit": "kWh"}}}},
				wantStatus: 422, wantBody: []string{"unit"}},
			{name: "the TSO reads but does not run power flows", method: "POST", path: "/v1/grid-models/" + v1.ID + "/power-flow", token: w.tsoKey,
				body: map[string]any{}, wantStatus: 403},
		})

		// Version 2: bus 17 taken out of service (the feeder shortened).
		// A's mapping (bus 17) is dropped, B's (bus 5) carries over.
		v2file := ppEdit(t, w.case33, "bus", func(col map[string]int, index []any, data [][]any) {
			for i, id := range index {
				if id.(float64) == 17 {
					data[i][col["in_service"]] = false
				}
			}
		})
		// (Sent as curl --data-binary sends it: as a form.)
		status, raw, _ = e.send("POST", "/v1/grid-areas/"+w.ga1.ID+"/grid-models?format=pandapower", w.dso1Key, string(v2file),
			"Content-Type", "application/x-www-form-urlencoded")
		if status != 201 {
			t.Fatalf("upload version 2: %d %s", status, raw)
		}
		var up2 app.GridModelUpload
		if err := json.Unmarshal([]byte(raw), &up2); err != nil {
			t.Fatal(err)
		}
		v2 := up2.Model
		if v2.ModelVersion != 2 || v2.Counts.Buses != 32 || up2.CarriedOver != 1 || len(up2.Dropped) != 1 ||
			up2.Dropped[0].ConnectionPointID != w.cpA.ID || up2.Dropped[0].PreviousBusID != "17" || !strings.Contains(up2.Dropped[0].Reason, `bus "17"`) {
			t.Fatalf("version 2 upload: %+v", up2)
		}
		e.do("GET", "/v1/grid-models/"+v2.ID+"/mappings", w.dso1Key, nil, 200, &ms)
		if len(ms.Mappings) != 1 || ms.Mappings[0].ConnectionPointID != w.cpB.ID || ms.Mappings[0].BusID != "5" || len(ms.Unmapped) != 2 {
			t.Errorf("version 2 mappings: %+v", ms)
		}
		e.do("GET", "/v1/connection-points/"+w.cpA.ID+"/bus", w.dso1Key, nil, 404, nil)
		e.do("GET", "/v1/connection-points/"+w.cpB.ID+"/bus", w.tsoKey, nil, 200, &ref)
		if ref.GridModelID != v2.ID || ref.ModelVersion != 2 || ref.BusID != "5" {
			t.Errorf("connection point B after version 2: %+v", ref)
		}
		// Version 1 is kept as it was and can no longer be mapped.
		var list struct{ Items []flexhub.GridModel }
		e.do("GET", "/v1/grid-areas/"+w.ga1.ID+"/grid-models", w.tsoKey, nil, 200, &list)
		if len(list.Items) != 2 || list.Items[0].ID != v1.ID || list.Items[1].ID != v2.ID {
			t.Errorf("versions: %+v", list.Items)
		}
		e.do("PUT", "/v1/grid-models/"+v1.ID+"/mappings", w.dso1Key, map[string]any{"mappings": []map[string]string{
			{"connection_point_id": w.cpC.ID, "bus_id": "3"}}}, 409, nil)
		e.do("GET", "/v1/grid-models/"+v1.ID+"/mappings", w.dso1Key, nil, 200, &ms)
		if len(ms.Mappings) != 2 {
			t.Errorf("version 1's mappings changed: %+v", ms)
		}

		// Who reads: the DSO and the TSO of the control area; not an FSP,
		// not another DSO, not a TSO of another control area.
		e.run([]scenario{
			{name: "TSO reads the current model", method: "GET", path: "/v1/grid-areas/" + w.ga1.ID + "/grid-model", token: w.tsoKey, wantStatus: 200, wantBody: []string{v2.ID}},
			{name: "TSO reads elements", method: "GET", path: "/v1/grid-models/" + v2.ID + "/elements", token: w.tsoKey, wantStatus: 200},
			{name: "FSP cannot read the current model", method: "GET", path: "/v1/grid-areas/" + w.ga1.ID + "/grid-model", token: w.fspKey, wantStatus: 403, notWantBody: []string{v2.ID}},
			{name: "FSP cannot list versions", method: "GET", path: "/v1/grid-areas/" + w.ga1.ID + "/grid-models", token: w.fspKey, wantStatus: 403},
			{name: "FSP cannot read a version", method: "GET", path: "/v1/grid-models/" + v2.ID, token: w.fspKey, wantStatus: 404},
			{name: "FSP cannot read elements", method: "GET", path: "/v1/grid-models/" + v2.ID + "/elements", token: w.fspKey, wantStatus: 404},
			{name: "FSP cannot download", method: "GET", path: "/v1/grid-models/" + v2.ID + "/file", token: w.fspKey, wantStatus: 404},
			{name: "FSP cannot read mappings", method: "GET", path: "/v1/grid-models/" + v2.ID + "/mappings", token: w.fspKey, wantStatus: 404},
			{name: "FSP cannot look up a bus", method: "GET", path: "/v1/connection-points/" + w.cpB.ID + "/bus", token: w.fspKey, wantStatus: 404},
			{name: "FSP cannot run a power flow", method: "POST", path: "/v1/grid-models/" + v2.ID + "/power-flow", token: w.fspKey, body: map[string]any{}, wantStatus: 404},
			{name: "another DSO cannot read", method: "GET", path: "/v1/grid-areas/" + w.ga1.ID + "/grid-model", token: w.dso2Key, wantStatus: 403},
			{name: "a TSO of another control area cannot read", method: "GET", path: "/v1/grid-models/" + v2.ID, token: w.otherTSOKey, wantStatus: 404},
		})
	})
}

func countBelow(bs []app.PowerFlowBus, v float64) int {
	n := 0
	for _, b := range bs {
		if b.VmPU < v {
			n++
		}
	}
	return n
}

func maxLoading(fs []app.PowerFlowFlow) float64 {
	m := 0.0
	for _, f := range fs {
		m = math.Max(m, f.LoadingPercent)
	}
	return m
}

func fhttpRuleURI(rule string) string { return "urn:flexhub:rule:" + rule }

// TestGridModelBadUploads: a model with problems answers 422 naming each
// element, and nothing is stored.
func TestGridModelBadUploads(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		w := newGridWorld(t, e)
		island := ppEdit(t, w.case33, "line", func(col map[string]int, index []any, data [][]any) {
			for _, row := range data {
				if row[col["to_bus"]].(float64) == 17 {
					row[col["in_service"]] = false
				}
			}
		})
		noImpedance := ppEdit(t, w.case33, "line", func(col map[string]int, index []any, data [][]any) {
			for i, row := range data {
				if index[i].(float64) == 3 {
					row[col["r_ohm_per_km"]], row[col["x_ohm_per_km"]] = 0.0, 0.0
				}
			}
		})
		volts := ppEdit(t, w.case33, "bus", func(col map[string]int, index []any, data [][]any) {
			for i, row := range data {
				if index[i].(float64) == 6 {
					row[col["vn_kv"]] = 12660.0
				}
			}
		})
		both := ppEdit(t, noImpedance, "bus", func(col map[string]int, index []any, data [][]any) {
			for _, row := range data {
				row[col["vn_kv"]] = 12660.0
			}
		})
		upload := func(name, format string, file []byte, want int, frags ...string) scenario {
			return scenario{name: name, method: "POST", path: "/v1/grid-areas/" + w.ga1.ID + "/grid-models?format=" + format, token: w.dso1Key,
				body: string(file), headers: []string{"Content-Type", "application/octet-stream"}, wantStatus: want, wantBody: frags}
		}
		e.unchanged(func() {
			e.run([]scenario{
				upload("island", "pandapower", island, 422, `island of 1 bus(es) not connected to any slack`, `\"17\"`),
				upload("missing impedance", "pandapower", noImpedance, 422, `line \"line3\": impedance r=0 x=0 ohm/km is missing or not positive`),
				upload("kV given in volts", "pandapower", volts, 422, `bus \"6\": nominal voltage 12660 kV is not plausible`, "was it given in volts?"),
				// Every problem is its own error detail.
				upload("every problem listed", "pandapower", both, 422, `line \"line3\"`, `bus \"0\": nominal voltage 12660`, `bus \"32\": nominal voltage 12660`),
				upload("not pandapower", "pandapower", []byte(`{"buses": []}`), 422, "pandapower"),
				upload("not a zip", "simbench", w.case33, 422, "not a zip archive"),
				upload("unknown format", "matpower", w.case33, 422, `\"matpower\" is not a grid model format; use one of `, "pandapower", "simbench", "query.format"),
				upload("empty", "pandapower", nil, 400, "request body is required"),
				{name: "another DSO's grid area", method: "POST", path: "/v1/grid-areas/" + w.ga2.ID + "/grid-models?format=pandapower", token: w.dso1Key,
					body: string(w.case33), headers: []string{"Content-Type", "application/octet-stream"}, wantStatus: 403},
				{name: "the TSO does not upload", method: "POST", path: "/v1/grid-areas/" + w.ga1.ID + "/grid-models?format=pandapower", token: w.tsoKey,
					body: string(w.case33), headers: []string{"Content-Type", "application/octet-stream"}, wantStatus: 403},
			})
		})
		// The problem details list each problem separately.
		status, raw := e.upload(w.ga1.ID, "pandapower", w.dso1Key, both)
		var pm struct {
			Errors []struct{ Message, Location string }
		}
		if err := json.Unmarshal([]byte(raw), &pm); err != nil || status != 422 {
			t.Fatalf("%d %s", status, raw)
		}
		if len(pm.Errors) < 34 { // 33 buses and the line
			t.Errorf("%d error details, want one per problem (>= 34): %s", len(pm.Errors), raw)
		}
		e.do("GET", "/v1/grid-areas/"+w.ga1.ID+"/grid-model", w.dso1Key, nil, 404, nil)
		var list struct{ Items []flexhub.GridModel }
		e.do("GET", "/v1/grid-areas/"+w.ga1.ID+"/grid-models", w.dso1Key, nil, 200, &list)
		if len(list.Items) != 0 {
			t.Errorf("refused uploads stored versions: %+v", list.Items)
		}
	})
}

// TestGridModelSimBenchZip uploads the SimBench folder zipped and checks
// the power flow through the API against SimBench's own NodePFResult.
func TestGridModelSimBenchZip(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		w := newGridWorld(t, e)
		dir := gridData(t, "simbench", "1-LV-rural1--0-no_sw")
		zipped := zipDir(t, dir)
		path := "/v1/grid-areas/" + w.ga2.ID + "/grid-models?format=simbench"
		var up, again app.GridModelUpload
		e.do("POST", path, w.dso2Key, string(zipped), 201, &up, "Content-Type", "application/zip", "Idempotency-Key", "sb-1")
		m := up.Model
		// A retry with the same key answers the same version and stores
		// nothing; the key with another file is a conflict.
		e.unchanged(func() {
			_, h := e.do("POST", path, w.dso2Key, string(zipped), 201, &again, "Content-Type", "application/zip", "Idempotency-Key", "sb-1")
			if again.Model.ID != m.ID || !again.Replayed || h.Get("Idempotent-Replayed") != "true" {
				t.Errorf("retried upload: %+v (header %q), first %s", again, h.Get("Idempotent-Replayed"), m.ID)
			}
			e.do("POST", path, w.dso2Key, string(zipped[:len(zipped)-1])+"x", 409, nil, "Content-Type", "application/zip", "Idempotency-Key", "sb-1")
		})
		var versions struct{ Items []flexhub.GridModel }
		e.do("GET", "/v1/grid-areas/"+w.ga2.ID+"/grid-models", w.dso2Key, nil, 200, &versions)
		if len(versions.Items) != 1 || up.Replayed {
			t.Errorf("after a replayed upload: %d versions, first answer replayed=%v", len(versions.Items), up.Replayed)
		}
		if m.Format != "simbench" || m.Counts.Buses != 15 || m.Counts.Trafos != 1 || len(m.VoltageLevels) != 2 || m.VoltageLevels[0] != 20 || m.VoltageLevels[1] != 0.4 {
			t.Fatalf("SimBench summary: %+v", m)
		}
		file, h := e.do("GET", "/v1/grid-models/"+m.ID+"/file", w.dso2Key, nil, 200, nil)
		if file != string(zipped) || h.Get("Content-Type") != "application/zip" {
			t.Errorf("downloaded zip differs (%d bytes, %s)", len(file), h.Get("Content-Type"))
		}
		e.do("PUT", "/v1/grid-models/"+m.ID+"/mappings", w.dso2Key, map[string]any{"mappings": []map[string]string{
			{"connection_point_id": w.cpX.ID, "bus_id": "LV1.101 Bus 4"}}}, 200, nil)

		var pf app.PowerFlowResult
		e.do("POST", "/v1/grid-models/"+m.ID+"/power-flow", w.dso2Key, nil, 200, &pf)
		f, err := os.Open(filepath.Join(dir, "NodePFResult.csv"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := csv.NewReader(f)
		r.Comma = ';'
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, b := range pf.Buses {
			got[b.ID] = b.VmPU
		}
		for _, row := range rows[1:] {
			want, _ := strconv.ParseFloat(row[1], 64)
			if v, ok := got[row[0]]; !ok || math.Abs(v-want) > 1e-4 {
				t.Errorf("bus %s: vm %.5f, SimBench %.5f", row[0], v, want)
			}
		}
		if len(rows)-1 != len(pf.Buses) {
			t.Errorf("%d buses in the result, %d in NodePFResult.csv", len(pf.Buses), len(rows)-1)
		}
		// A line or transformer loaded beyond its rating is named (the
		// SimBench cables and transformer carry ratings; case33bw's do not).
		var over app.PowerFlowResult
		e.do("POST", "/v1/grid-models/"+m.ID+"/power-flow", w.dso2Key, map[string]any{"injections": []map[string]any{
			{"connection_point_id": w.cpX.ID, "consumption": map[string]any{"value": 400, "unit": "kW"}}}}, 200, &over)
		overloaded := map[string]bool{}
		for _, v := range over.Violations {
			if v.Kind == "overload" {
				overloaded[v.ID] = true
				if (v.Element != "line" && v.Element != "transformer") || v.Value <= 100 || v.Limit != 100 || !strings.Contains(v.Message, strconv.Quote(v.ID)) {
					t.Errorf("overload %+v", v)
				}
			}
		}
		n := 0
		for _, l := range append(over.Lines, over.Transformers...) {
			if l.LoadingPercent > 100 {
				n++
				if !overloaded[l.ID] {
					t.Errorf("%s at %.1f %% is not reported", l.ID, l.LoadingPercent)
				}
			}
		}
		if n == 0 || n != len(overloaded) {
			t.Errorf("400 kW at LV1.101 Bus 4: %d branches above 100 %%, %d overloads reported (max line loading %.1f %%)", n, len(overloaded), maxLoading(over.Lines))
		}

		// A zip of two grids, or of none, is refused.
		var two bytes.Buffer
		zw := zip.NewWriter(&two)
		for _, d := range []string{"a/Node.csv", "b/Node.csv"} {
			fw, _ := zw.Create(d)
			io.WriteString(fw, "id;vmR\n")
		}
		zw.Close()
		if status, raw := e.upload(w.ga2.ID, "simbench", w.dso2Key, two.Bytes()); status != 422 || !strings.Contains(raw, "holds 2 grids") {
			t.Errorf("two grids in one zip: %d %s", status, raw)
		}
	})
}

// TestGridModelUploadLimits: lv_schutterwald (1.6 MB) fits; a body over
// the limit is refused with 413 before it is read whole.
func TestGridModelUploadLimits(t *testing.T) {
	e := newEnv(t)
	w := newGridWorld(t, e)
	big := readFile(t, gridData(t, "pandapower", "lv_schutterwald.json"))
	status, raw := e.upload(w.ga1.ID, "pandapower", w.dso1Key, big)
	if status != 201 {
		t.Fatalf("lv_schutterwald: %d %.500s", status, raw)
	}
	var up app.GridModelUpload
	if err := json.Unmarshal([]byte(raw), &up); err != nil {
		t.Fatal(err)
	}
	if up.Model.Counts.Buses != 2940 {
		t.Errorf("lv_schutterwald: %d buses, want 2,940", up.Model.Counts.Buses)
	}
	var el app.GridModelElements
	e.do("GET", "/v1/grid-models/"+up.Model.ID+"/elements", w.dso1Key, nil, 200, &el)
	if len(el.Buses) != 2940 {
		t.Errorf("elements: %d buses", len(el.Buses))
	}
	e.unchanged(func() {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/grid-areas/"+w.ga1.ID+"/grid-models?format=pandapower", io.LimitReader(zeros{}, 65<<20))
		req.Header.Set("Authorization", "Bearer "+w.dso1Key)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 413 || !strings.Contains(string(body), "too large") {
			t.Errorf("65 MiB upload: %d %s", res.StatusCode, body)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
