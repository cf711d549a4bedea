package grid

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// feeder is a small valid 20/0.4 kV network: slack - trafo - two cables,
// and a tie cable opened by a switch.
func feeder() *Network {
	return &Network{
		BaseMVA: 1, FrequencyHz: 50,
		Buses: []Bus{{ID: "mv", VnKV: 20}, {ID: "lv", VnKV: 0.4}, {ID: "a", VnKV: 0.4}, {ID: "b", VnKV: 0.4}},
		Lines: []Line{
			{ID: "c1", FromBus: "lv", ToBus: "a", LengthKM: 0.2, ROhmPerKM: 0.206, XOhmPerKM: 0.08, Parallel: 1, MaxIKA: 0.27},
			{ID: "c2", FromBus: "a", ToBus: "b", LengthKM: 0.1, ROhmPerKM: 0.206, XOhmPerKM: 0.08, Parallel: 1, MaxIKA: 0.27},
		},
		Trafos: []Transformer{{ID: "t1", HVBus: "mv", LVBus: "lv", SnMVA: 0.4, VnHVKV: 20, VnLVKV: 0.4, VkPercent: 6, VkrPercent: 1.2}},
		Slacks: []Slack{{ID: "grid", Bus: "mv", VmPU: 1}},
		Loads:  []Load{{ID: "h1", Bus: "b", PMW: 0.01, QMvar: 0.002}},
	}
}

func problems(t *testing.T, n *Network) string {
	t.Helper()
	err := n.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	return err.Error()
}

func wantAll(t *testing.T, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

func TestValidFeederPasses(t *testing.T) {
	if err := feeder().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestIslandBehindOpenSwitch(t *testing.T) {
	n := feeder()
	n.Switches = []Switch{{ID: "s1", BusA: "a", Element: "c2", ElementKind: "line", Closed: false}}
	wantAll(t, problems(t, n), "island of 1 bus(es) not connected to any slack", `"b"`)
	n.Switches[0].Closed = true
	if err := n.Validate(); err != nil {
		t.Fatalf("closed switch: %v", err)
	}
	n.Switches[0].BusA = "lv"
	wantAll(t, problems(t, n), `switch "s1": bus "lv" is not an end of line "c2" ("a"-"b")`)
	n.Switches[0].Element = "c9"
	wantAll(t, problems(t, n), `switch "s1": line "c9" does not exist`)
}

func TestIslandWithoutSlackBusBusSwitch(t *testing.T) {
	n := feeder()
	n.Buses = append(n.Buses, Bus{ID: "spare", VnKV: 0.4})
	n.Switches = []Switch{{ID: "coupler", BusA: "b", BusB: "spare", Closed: false}}
	wantAll(t, problems(t, n), "island", `"spare"`)
	n.Switches[0].Closed = true
	if err := n.Validate(); err != nil {
		t.Fatalf("closed coupler: %v", err)
	}
}

func TestMissingImpedance(t *testing.T) {
	n := feeder()
	n.Lines[1].ROhmPerKM, n.Lines[1].XOhmPerKM = 0, 0
	n.Trafos[0].VkPercent = 0
	wantAll(t, problems(t, n), `line "c2": impedance r=0 x=0 ohm/km is missing or not positive`,
		`transformer "t1": short-circuit voltage vk 0 % is missing`)
	n = feeder()
	n.Lines[0].LengthKM = -1
	wantAll(t, problems(t, n), `line "c1": length -1 km must be positive`)
}

func TestReferenceToMissingBus(t *testing.T) {
	n := feeder()
	n.Loads = append(n.Loads, Load{ID: "h2", Bus: "nowhere", PMW: 0.003})
	n.Lines[1].ToBus = "x9"
	wantAll(t, problems(t, n), `load "h2": its bus "nowhere" does not exist`, `line "c2": to bus "x9" does not exist`)
}

func TestVoltsInsteadOfKilovolts(t *testing.T) {
	n := feeder()
	n.Buses[3].VnKV = 400 // 0.4 kV typed as 400 (V)
	wantAll(t, problems(t, n), `line "c2" connects buses of different nominal voltage`, "0.4 kV", "400 kV", "looks like volts")
	n = feeder()
	n.Buses[0].VnKV = 20000 // 20 kV given in volts
	n.Trafos[0].VnHVKV = 20000
	wantAll(t, problems(t, n), `bus "mv": nominal voltage 20000 kV is not plausible`, "given in volts")
	n = feeder()
	n.Trafos[0].VnLVKV = 400
	wantAll(t, problems(t, n), `transformer "t1": LV rated voltage 400 kV does not match bus "lv" at 0.4 kV`, "looks like volts")
	n = feeder()
	n.Slacks[0].VmPU = 20
	wantAll(t, problems(t, n), `slack "grid": voltage setpoint 20 p.u. is not plausible`)
}

func TestNoSlack(t *testing.T) {
	n := feeder()
	n.Slacks = nil
	wantAll(t, problems(t, n), "no slack")
}

func gridsDir(t *testing.T) string {
	d := filepath.Join("..", "..", "shared", "data", "grids")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("grid data not found at %s: %v", d, err)
	}
	return d
}

func TestPandapowerImport(t *testing.T) {
	f, err := os.Open(filepath.Join(gridsDir(t), "pandapower", "case33bw.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := ReadPandapower(f)
	if err != nil {
		t.Fatal(err)
	}
	// 37 lines of which the 5 tie lines are out of service.
	if len(n.Buses) != 33 || len(n.Lines) != 32 || len(n.Loads) != 32 || len(n.Slacks) != 1 || n.BaseMVA != 10 {
		t.Fatalf("imported %d buses, %d lines, %d loads, %d slacks, base %v MVA", len(n.Buses), len(n.Lines), len(n.Loads), len(n.Slacks), n.BaseMVA)
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPandapowerUnsupportedElement(t *testing.T) {
	in := `{"_module":"pandapower.auxiliary","_class":"pandapowerNet","_object":{
 "bus":{"_module":"pandas.core.frame","_class":"DataFrame","_object":"{\"columns\":[\"name\",\"vn_kv\",\"in_service\"],\"index\":[0,1],\"data\":[[\"a\",20.0,true],[\"b\",20.0,true]]}","orient":"split"},
 "gen":{"_module":"pandas.core.frame","_class":"DataFrame","_object":"{\"columns\":[\"bus\",\"p_mw\",\"vm_pu\",\"in_service\"],\"index\":[3],\"data\":[[1,1.0,1.02,true]]}","orient":"split"}}}`
	_, err := ReadPandapower(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), `table "gen" has in-service element 3`) {
		t.Fatalf("want an unsupported-gen error, got %v", err)
	}
	if _, err := ReadPandapower(strings.NewReader(`{"_object": `)); err == nil || !strings.Contains(err.Error(), "not a pandapower JSON") {
		t.Fatalf("truncated file: %v", err)
	}
}

func TestSimBenchImport(t *testing.T) {
	dir := filepath.Join(gridsDir(t), "simbench", "1-LV-rural1--0-no_sw")
	n, err := ReadSimBench(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Buses) != 15 || len(n.Lines) != 13 || len(n.Trafos) != 1 || len(n.Loads) != 13 || len(n.Gens) != 4 {
		t.Fatalf("imported %d buses, %d lines, %d trafos, %d loads, %d gens", len(n.Buses), len(n.Lines), len(n.Trafos), len(n.Loads), len(n.Gens))
	}
	tr := n.Trafos[0]
	// 0.16 MVA, pCu 2.35 kW: vkr = 2.35 / 160 = 1.46875 %.
	if tr.SnMVA != 0.16 || tr.VkPercent != 4 || tr.VkrPercent < 1.4687 || tr.VkrPercent > 1.4688 || tr.ShiftDeg != 150 {
		t.Fatalf("transformer %+v", tr)
	}
	if n.Slacks[0].VmPU != 1.025 {
		t.Fatalf("slack %+v, want the node's vmSetp 1.025", n.Slacks[0])
	}
	cases, err := ReadSimBenchStudyCases(os.DirFS(dir))
	if err != nil || len(cases) != 6 || cases[4].Name != "lW" || cases[4].PLoad != 0.1 {
		t.Fatalf("study cases %+v, %v", cases, err)
	}
}

func TestSimBenchBadFiles(t *testing.T) {
	dir := filepath.Join(gridsDir(t), "simbench", "1-LV-rural1--0-no_sw")
	fsys := fstest.MapFS{}
	for _, f := range []string{"Node.csv", "Line.csv", "LineType.csv", "Transformer.csv", "TransformerType.csv", "ExternalNet.csv", "Load.csv", "RES.csv"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		fsys[f] = &fstest.MapFile{Data: b}
	}
	lt := fsys["LineType.csv"]
	fsys["LineType.csv"] = &fstest.MapFile{Data: []byte("id;r;x;b;iMax;type\n")}
	if _, err := ReadSimBench(fsys); err == nil || !strings.Contains(err.Error(), `line "LV1.101 Line 1": line type "NAYY 4x150SE 0.6/1kV" is not in LineType.csv`) {
		t.Fatalf("missing line type: %v", err)
	}
	fsys["LineType.csv"] = lt
	node := string(fsys["Node.csv"].Data)
	fsys["Node.csv"] = &fstest.MapFile{Data: []byte(strings.Replace(node, "LV1.101 Bus 1;busbar;NULL;NULL;0.4;", "LV1.101 Bus 1;busbar;NULL;NULL;0,4;", 1))}
	if _, err := ReadSimBench(fsys); err == nil || !strings.Contains(err.Error(), `Node.csv line 2 ("LV1.101 Bus 1"): column vmR: "0,4" is not a number`) {
		t.Fatalf("decimal comma: %v", err)
	}
	delete(fsys, "Node.csv")
	if _, err := ReadSimBench(fsys); err == nil || !strings.Contains(err.Error(), "Node.csv") {
		t.Fatalf("missing Node.csv: %v", err)
	}
}
