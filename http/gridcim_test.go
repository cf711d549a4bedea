package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flexhub/flexhub/app"
)

// A CIM feeder through the API: the IEEE 13 node feeder as CIM RDF/XML
// uploads as a grid model (its capacitor banks as shunts), its power
// flow solves within the feeder's ANSI band; a broken file is refused
// naming the problem, nothing stored.
func TestGridModelCIM(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		w := newGridWorld(t, e)
		file := readFile(t, gridData(t, "cim_xml", "IEEE13.xml"))
		status, raw := e.upload(w.ga1.ID, "cim", w.dso1Key, file)
		if status != 201 {
			t.Fatalf("upload IEEE13.xml: %d %s", status, raw)
		}
		var up app.GridModelUpload
		if err := json.Unmarshal([]byte(raw), &up); err != nil {
			t.Fatal(err)
		}
		if up.Model.Format != "cim" || up.Model.Counts.Buses < 13 || up.Model.Counts.Shunts < 2 || up.Model.Counts.Slacks != 1 || up.Model.Counts.Trafos < 2 {
			t.Errorf("IEEE13 summary %+v: want the 13 nodes and more, its two capacitor banks, one source, substation and XFM-1", up.Model.Counts)
		}
		var r app.PowerFlowResult
		e.do("POST", "/v1/grid-models/"+up.Model.ID+"/power-flow?summary=true", w.dso1Key, map[string]any{}, 200, &r)
		if r.VMin.VmPU < 0.95 || r.VMax.VmPU > 1.07 || r.Iterations == 0 {
			t.Errorf("IEEE13 power flow: vmin %+v vmax %+v after %d iterations", r.VMin, r.VMax, r.Iterations)
		}
		status, raw = e.upload(w.ga1.ID, "cim", w.dso1Key, file[:len(file)/2])
		if status != 422 || !strings.Contains(raw, "malformed RDF/XML") {
			t.Errorf("a truncated CIM file: %d %s", status, raw)
		}
		var versions struct {
			Items []json.RawMessage `json:"items"`
		}
		e.do("GET", "/v1/grid-areas/"+w.ga1.ID+"/grid-models", w.dso1Key, nil, 200, &versions)
		if len(versions.Items) != 1 {
			t.Errorf("%d versions after a refused upload, want 1", len(versions.Items))
		}
	})
}
