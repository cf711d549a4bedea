package grid

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ReadPandapower imports a pandapower network saved with
// pandapower.to_json: each element table is a pandas DataFrame in JSON
// "split" orientation (columns, index, data), itself stored as a JSON
// string. Bus IDs are the pandapower bus indices as decimal strings; other
// elements are named "<table><index>" (e.g. "line12").
//
// Mapped: bus, line, trafo (two-winding, ratio taps), switch, ext_grid,
// load, sgen, shunt; sn_mva and f_hz. Out-of-service elements are skipped. Any
// in-service row of a table flexhub does not model (gen, trafo3w,
// storage, impedance, ward, xward, dcline, motor, asymmetric loads and
// generators, svc, ssc, vsc, tcsc) is an error rather than being ignored
// silently, as are voltage-dependent loads and phase-shifting taps.
func ReadPandapower(r io.Reader) (*Network, error) {
	var top struct {
		Class  string                     `json:"_class"`
		Object map[string]json.RawMessage `json:"_object"`
	}
	if err := json.NewDecoder(r).Decode(&top); err != nil {
		return nil, fmt.Errorf("pandapower: not a pandapower JSON file: %w", err)
	}
	if top.Object == nil {
		return nil, fmt.Errorf("pandapower: no _object in the file (class %q)", top.Class)
	}
	pp := ppNet{obj: top.Object}
	n := &Network{BaseMVA: pp.scalar("sn_mva", 1), FrequencyHz: pp.scalar("f_hz", 50)}
	if s, ok := pp.obj["name"]; ok {
		_ = json.Unmarshal(s, &n.Name)
	}

	for _, tbl := range []string{"gen", "trafo3w", "storage", "impedance", "ward", "xward", "dcline", "motor",
		"asymmetric_load", "asymmetric_sgen", "svc", "ssc", "vsc", "tcsc"} {
		f, err := pp.frame(tbl)
		if err != nil {
			return nil, err
		}
		for i := range f.data {
			if f.bool(i, "in_service", true) {
				return nil, fmt.Errorf("pandapower: table %q has in-service element %s, which flexhub's grid model does not support", tbl, f.id(i))
			}
		}
	}

	bus, err := pp.frame("bus")
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for i := range bus.data {
		if !bus.bool(i, "in_service", true) {
			continue
		}
		b := Bus{ID: bus.id(i), Name: bus.str(i, "name"), VnKV: bus.num(i, "vn_kv", math.NaN()),
			VMinPU: bus.num(i, "min_vm_pu", 0), VMaxPU: bus.num(i, "max_vm_pu", 0)}
		if b.VMinPU >= b.VMaxPU { // pandapower stores 1.0/1.0 at a slack bus: no band
			b.VMinPU, b.VMaxPU = 0, 0
		}
		live[b.ID] = true
		n.Buses = append(n.Buses, b)
	}
	busRef := func(f *ppFrame, i int, col string) string {
		return strconv.FormatInt(int64(f.num(i, col, -1)), 10)
	}
	// Elements on out-of-service buses are out of service too (pandapower's rule).
	on := func(f *ppFrame, i int, cols ...string) bool {
		if !f.bool(i, "in_service", true) {
			return false
		}
		for _, c := range cols {
			id := busRef(f, i, c)
			if !live[id] && bus.has(id) {
				return false
			}
		}
		return true
	}

	line, err := pp.frame("line")
	if err != nil {
		return nil, err
	}
	for i := range line.data {
		if !on(line, i, "from_bus", "to_bus") {
			continue
		}
		par := int(line.num(i, "parallel", 1))
		n.Lines = append(n.Lines, Line{
			ID: "line" + line.id(i), FromBus: busRef(line, i, "from_bus"), ToBus: busRef(line, i, "to_bus"),
			LengthKM:  line.num(i, "length_km", math.NaN()),
			ROhmPerKM: line.num(i, "r_ohm_per_km", math.NaN()), XOhmPerKM: line.num(i, "x_ohm_per_km", math.NaN()),
			BMicroSPerKM: 2 * math.Pi * n.FrequencyHz * line.num(i, "c_nf_per_km", 0) * 1e-3,
			GMicroSPerKM: line.num(i, "g_us_per_km", 0),
			Parallel:     par,
			MaxIKA:       line.num(i, "max_i_ka", 0) * line.num(i, "df", 1) * float64(par),
		})
	}

	trafo, err := pp.frame("trafo")
	if err != nil {
		return nil, err
	}
	for i := range trafo.data {
		if !on(trafo, i, "hv_bus", "lv_bus") {
			continue
		}
		id := "trafo" + trafo.id(i)
		par := trafo.num(i, "parallel", 1)
		t := Transformer{
			ID: id, HVBus: busRef(trafo, i, "hv_bus"), LVBus: busRef(trafo, i, "lv_bus"),
			SnMVA: trafo.num(i, "sn_mva", math.NaN()) * par, VnHVKV: trafo.num(i, "vn_hv_kv", math.NaN()), VnLVKV: trafo.num(i, "vn_lv_kv", math.NaN()),
			VkPercent: trafo.num(i, "vk_percent", math.NaN()), VkrPercent: trafo.num(i, "vkr_percent", math.NaN()),
			PfeKW: trafo.num(i, "pfe_kw", 0) * par, I0Percent: trafo.num(i, "i0_percent", 0),
			ShiftDeg: trafo.num(i, "shift_degree", 0), TapSide: strings.ToLower(trafo.str(i, "tap_side")),
		}
		pos, neutral := trafo.num(i, "tap_pos", math.NaN()), trafo.num(i, "tap_neutral", math.NaN())
		if !math.IsNaN(pos) && !math.IsNaN(neutral) && pos != neutral {
			if d := trafo.num(i, "tap_step_degree", 0); d != 0 {
				return nil, fmt.Errorf("pandapower: transformer %s: phase-shifting tap (tap_step_degree %v) is not supported", id, d)
			}
			if ct := trafo.str(i, "tap_changer_type"); ct != "" && ct != "Ratio" {
				return nil, fmt.Errorf("pandapower: transformer %s: tap changer type %q is not supported", id, ct)
			}
			t.TapPercent = (pos - neutral) * trafo.num(i, "tap_step_percent", 0)
		}
		n.Trafos = append(n.Trafos, t)
	}

	sw, err := pp.frame("switch")
	if err != nil {
		return nil, err
	}
	for i := range sw.data {
		s := Switch{ID: "switch" + sw.id(i), BusA: busRef(sw, i, "bus"), Closed: sw.bool(i, "closed", true)}
		el := strconv.FormatInt(int64(sw.num(i, "element", -1)), 10)
		switch et := sw.str(i, "et"); et {
		case "b":
			s.BusB = el
		case "l":
			s.Element, s.ElementKind = "line"+el, "line"
		case "t":
			s.Element, s.ElementKind = "trafo"+el, "trafo"
		default:
			return nil, fmt.Errorf("pandapower: switch %s: element type %q is not supported", s.ID, et)
		}
		if !live[s.BusA] || (s.BusB != "" && !live[s.BusB]) {
			continue
		}
		n.Switches = append(n.Switches, s)
	}
	// A switch on a branch that is out of service has nothing to switch.
	have := map[string]bool{}
	for _, l := range n.Lines {
		have["line:"+l.ID] = true
	}
	for _, t := range n.Trafos {
		have["trafo:"+t.ID] = true
	}
	k := 0
	for _, s := range n.Switches {
		if s.Element == "" || have[s.ElementKind+":"+s.Element] {
			n.Switches[k] = s
			k++
		}
	}
	n.Switches = n.Switches[:k]

	ext, err := pp.frame("ext_grid")
	if err != nil {
		return nil, err
	}
	for i := range ext.data {
		if on(ext, i, "bus") {
			n.Slacks = append(n.Slacks, Slack{ID: "ext_grid" + ext.id(i), Bus: busRef(ext, i, "bus"),
				VmPU: ext.num(i, "vm_pu", 1), VaDeg: ext.num(i, "va_degree", 0)})
		}
	}
	load, err := pp.frame("load")
	if err != nil {
		return nil, err
	}
	for i := range load.data {
		if !on(load, i, "bus") {
			continue
		}
		id := "load" + load.id(i)
		for _, c := range []string{"const_z_p_percent", "const_z_q_percent", "const_i_p_percent", "const_i_q_percent"} {
			if v := load.num(i, c, 0); v != 0 {
				return nil, fmt.Errorf("pandapower: load %s: voltage-dependent load (%s = %v) is not supported", id, c, v)
			}
		}
		sc := load.num(i, "scaling", 1)
		n.Loads = append(n.Loads, Load{ID: id, Bus: busRef(load, i, "bus"),
			PMW: load.num(i, "p_mw", math.NaN()) * sc, QMvar: load.num(i, "q_mvar", 0) * sc})
	}
	sgen, err := pp.frame("sgen")
	if err != nil {
		return nil, err
	}
	for i := range sgen.data {
		if !on(sgen, i, "bus") {
			continue
		}
		sc := sgen.num(i, "scaling", 1)
		n.Gens = append(n.Gens, StaticGen{ID: "sgen" + sgen.id(i), Bus: busRef(sgen, i, "bus"),
			PMW: sgen.num(i, "p_mw", math.NaN()) * sc, QMvar: sgen.num(i, "q_mvar", 0) * sc})
	}
	// pandapower's shunt: p_mw, q_mvar at 1.0 p.u. of its vn_kv per step,
	// consumer convention (q > 0 inductive); the admittance is
	// (p + j·(-q))·step at vn_kv, i.e. scaled by (bus vn / vn_kv)² at the
	// bus's nominal voltage.
	shunt, err := pp.frame("shunt")
	if err != nil {
		return nil, err
	}
	for i := range shunt.data {
		if !on(shunt, i, "bus") {
			continue
		}
		id := "shunt" + shunt.id(i)
		if v, ok := shunt.val(i, "step_dependency_table").(bool); ok && v {
			return nil, fmt.Errorf("pandapower: shunt %s: step_dependency_table is not supported", id)
		}
		b := busRef(shunt, i, "bus")
		vbus := math.NaN()
		for _, x := range n.Buses {
			if x.ID == b {
				vbus = x.VnKV
			}
		}
		vn := shunt.num(i, "vn_kv", vbus)
		if !(vn > 0) {
			vn = vbus
		}
		scale := shunt.num(i, "step", 1) * (vbus / vn) * (vbus / vn)
		n.Shunts = append(n.Shunts, Shunt{ID: id, Bus: b,
			PMW: shunt.num(i, "p_mw", 0) * scale, QMvar: -shunt.num(i, "q_mvar", math.NaN()) * scale})
	}
	return n, nil
}

type ppNet struct {
	obj map[string]json.RawMessage
}

func (p ppNet) scalar(key string, def float64) float64 {
	var v float64
	if raw, ok := p.obj[key]; ok && json.Unmarshal(raw, &v) == nil {
		return v
	}
	return def
}

type ppFrame struct {
	table   string
	col     map[string]int
	index   []string
	data    [][]any
	indexOf map[string]bool
}

func (p ppNet) frame(table string) (*ppFrame, error) {
	raw, ok := p.obj[table]
	if !ok {
		return &ppFrame{table: table, col: map[string]int{}}, nil
	}
	var wrap struct {
		Object json.RawMessage `json:"_object"`
		Orient string          `json:"orient"`
	}
	if err := json.Unmarshal(raw, &wrap); err != nil {
		return nil, fmt.Errorf("pandapower: table %q: %w", table, err)
	}
	if wrap.Orient != "" && wrap.Orient != "split" {
		return nil, fmt.Errorf("pandapower: table %q: orientation %q is not supported (want split)", table, wrap.Orient)
	}
	body := wrap.Object
	var s string
	if len(body) > 0 && body[0] == '"' {
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("pandapower: table %q: %w", table, err)
		}
		body = []byte(s)
	}
	var split struct {
		Columns []string          `json:"columns"`
		Index   []json.RawMessage `json:"index"`
		Data    [][]any           `json:"data"`
	}
	if err := json.Unmarshal(body, &split); err != nil {
		return nil, fmt.Errorf("pandapower: table %q is not a split DataFrame: %w", table, err)
	}
	if len(split.Index) != len(split.Data) {
		return nil, fmt.Errorf("pandapower: table %q: %d index entries for %d rows", table, len(split.Index), len(split.Data))
	}
	f := &ppFrame{table: table, col: map[string]int{}, data: split.Data, indexOf: map[string]bool{}}
	for i, c := range split.Columns {
		f.col[c] = i
	}
	for i, row := range split.Data {
		if len(row) != len(split.Columns) {
			return nil, fmt.Errorf("pandapower: table %q row %d has %d values for %d columns", table, i, len(row), len(split.Columns))
		}
		id := strings.Trim(string(split.Index[i]), `"`)
		f.index = append(f.index, id)
		f.indexOf[id] = true
	}
	return f, nil
}

func (f *ppFrame) id(i int) string    { return f.index[i] }
func (f *ppFrame) has(id string) bool { return f.indexOf[id] }

func (f *ppFrame) val(i int, c string) any {
	j, ok := f.col[c]
	if !ok {
		return nil
	}
	return f.data[i][j]
}

func (f *ppFrame) num(i int, c string, def float64) float64 {
	switch v := f.val(i, c).(type) {
	case float64:
		return v
	case bool:
		if v {
			return 1
		}
		return 0
	case string:
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			return x
		}
	}
	return def
}

func (f *ppFrame) str(i int, c string) string {
	switch v := f.val(i, c).(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ""
}

func (f *ppFrame) bool(i int, c string, def bool) bool {
	if v, ok := f.val(i, c).(bool); ok {
		return v
	}
	return def
}
