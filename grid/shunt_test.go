package grid

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// case33bw with the given rows in its shunt table (columns bus, name,
// q_mvar, p_mw, vn_kv, step, max_step, in_service).
func case33bwWithShunts(t *testing.T, rows string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(gridsDir(t), "pandapower", "case33bw.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	obj := top["_object"].(map[string]any)
	sh := obj["shunt"].(map[string]any)
	tbl := sh["_object"].(string)
	if !strings.Contains(tbl, `"index":[],"data":[]`) {
		t.Fatalf("test setup: shunt table is not empty: %s", tbl)
	}
	var idx []string
	for i := range strings.Count(rows, "],[") + 1 {
		idx = append(idx, string(rune('0'+i)))
	}
	sh["_object"] = strings.Replace(tbl, `"index":[],"data":[]`, `"index":[`+strings.Join(idx, ",")+`],"data":[`+rows+`]`, 1)
	out, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pandapower's shunt: p_mw, q_mvar at 1.0 p.u. of vn_kv per step, consumer
// convention (a capacitor has q_mvar < 0). The model's Shunt holds the
// power at the bus's nominal voltage with Q positive for a capacitor.
func TestPandapowerShunt(t *testing.T) {
	doc := case33bwWithShunts(t,
		`[17,"cap",-0.3,0.0,12.66,2,2,true],`+ // 2 steps of 0.3 Mvar at the bus's 12.66 kV
			`[5,"reactor",0.1,0.002,11.0,1,1,true],`+ // rated at 11 kV: at 12.66 kV it takes (12.66/11)² more
			`[6,"spare",-1.0,0.0,12.66,1,1,false]`) // out of service: skipped
	n, err := ReadPandapower(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(n.Shunts) != 2 {
		t.Fatalf("shunts %+v, want 2 (the out-of-service one skipped)", n.Shunts)
	}
	r := (12.66 / 11.0) * (12.66 / 11.0)
	for _, c := range []struct {
		s    Shunt
		want Shunt
	}{
		{n.Shunts[0], Shunt{ID: "shunt0", Bus: "17", PMW: 0, QMvar: 0.6}},
		{n.Shunts[1], Shunt{ID: "shunt1", Bus: "5", PMW: 0.002 * r, QMvar: -0.1 * r}},
	} {
		if c.s.ID != c.want.ID || c.s.Bus != c.want.Bus || math.Abs(c.s.PMW-c.want.PMW) > 1e-12 || math.Abs(c.s.QMvar-c.want.QMvar) > 1e-12 {
			t.Errorf("got %+v, want %+v", c.s, c.want)
		}
	}
}

func TestShuntValidation(t *testing.T) {
	n := feeder()
	n.Shunts = []Shunt{{ID: "s1", Bus: "nowhere", QMvar: 0.1}, {ID: "s2", Bus: "a", PMW: -0.01}, {ID: "s3", Bus: "a", QMvar: math.NaN()}}
	wantAll(t, problems(t, n), `shunt "s1": its bus "nowhere" does not exist`, `shunt "s2": active power -0.01 MW`, `shunt "s3": P/Q is not a number`)
}
