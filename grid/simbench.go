package grid

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// ReadSimBench imports a SimBench grid from its semicolon-separated CSV
// files in fsys (e.g. os.DirFS of a "1-LV-rural1--0-no_sw" folder). Read:
// Node, Line + LineType, Transformer + TransformerType, ExternalNet, Load,
// RES, and Switch if present. Loads and generators are taken at their
// base values (pLoad/qLoad, pRES/qRES); the study cases' scaling factors
// are read by ReadSimBenchStudyCases and not applied here. The
// slack voltage is the node's vmSetp/vaSetp. Not mapped: profiles,
// coordinates, measurements (ignored), storage and 3-winding transformers (an
// error if the files hold any rows), ExternalNet Ward equivalents (an
// error), transformer autoTap (the fixed tappos is used).
func ReadSimBench(fsys fs.FS) (*Network, error) {
	n := &Network{BaseMVA: 1, FrequencyHz: 50}
	nodes, err := sbTable(fsys, "Node.csv", true)
	if err != nil {
		return nil, err
	}
	setp := map[string][2]float64{}
	for i := range nodes.rows {
		r := &nodes.rows[i]
		b := Bus{ID: r.s("id"), Name: r.s("id"), VnKV: r.f("vmR"), VMinPU: r.fOr("vmMin", 0), VMaxPU: r.fOr("vmMax", 0)}
		n.Buses = append(n.Buses, b)
		setp[b.ID] = [2]float64{r.fOr("vmSetp", math.NaN()), r.fOr("vaSetp", 0)}
	}
	ltypes, err := sbTable(fsys, "LineType.csv", true)
	if err != nil {
		return nil, err
	}
	lt := map[string]*sbRow{}
	for i := range ltypes.rows {
		r := &ltypes.rows[i]
		lt[r.s("id")] = r
	}
	lines, err := sbTable(fsys, "Line.csv", true)
	if err != nil {
		return nil, err
	}
	for i := range lines.rows {
		r := &lines.rows[i]
		id := r.s("id")
		t, ok := lt[r.s("type")]
		if !ok {
			return nil, fmt.Errorf("simbench: line %q: line type %q is not in LineType.csv", id, r.s("type"))
		}
		n.Lines = append(n.Lines, Line{ID: id, FromBus: r.s("nodeA"), ToBus: r.s("nodeB"), LengthKM: r.f("length"),
			ROhmPerKM: t.f("r"), XOhmPerKM: t.f("x"), BMicroSPerKM: t.fOr("b", 0), Parallel: 1, MaxIKA: t.fOr("iMax", 0) / 1000})
	}
	ttypes, err := sbTable(fsys, "TransformerType.csv", false)
	if err != nil {
		return nil, err
	}
	tt := map[string]*sbRow{}
	for i := range ttypes.rows {
		r := &ttypes.rows[i]
		tt[r.s("id")] = r
	}
	trafos, err := sbTable(fsys, "Transformer.csv", false)
	if err != nil {
		return nil, err
	}
	for i := range trafos.rows {
		r := &trafos.rows[i]
		id := r.s("id")
		t, ok := tt[r.s("type")]
		if !ok {
			return nil, fmt.Errorf("simbench: transformer %q: type %q is not in TransformerType.csv", id, r.s("type"))
		}
		sn := t.f("sR")
		tr := Transformer{ID: id, HVBus: r.s("nodeHV"), LVBus: r.s("nodeLV"), SnMVA: sn, VnHVKV: t.f("vmHV"), VnLVKV: t.f("vmLV"),
			VkPercent: t.f("vmImp"), VkrPercent: t.fOr("pCu", 0) / (sn * 1000) * 100, PfeKW: t.fOr("pFe", 0),
			I0Percent: t.fOr("iNoLoad", 0), ShiftDeg: t.fOr("va0", 0), TapSide: strings.ToLower(t.s("tapside"))}
		if pos := r.fOr("tappos", 0); pos != t.fOr("tapNeutr", 0) {
			if t.fOr("dVa", 0) != 0 {
				return nil, fmt.Errorf("simbench: transformer %q: phase-shifting tap (dVa %v) is not supported", id, t.fOr("dVa", 0))
			}
			tr.TapPercent = (pos - t.fOr("tapNeutr", 0)) * t.fOr("dVm", 0)
		}
		n.Trafos = append(n.Trafos, tr)
	}
	if sw, err := sbTable(fsys, "Switch.csv", false); err != nil {
		return nil, err
	} else {
		for i := range sw.rows {
			r := &sw.rows[i]
			n.Switches = append(n.Switches, Switch{ID: r.s("id"), BusA: r.s("nodeA"), BusB: r.s("nodeB"), Closed: r.fOr("cond", 1) != 0})
		}
	}
	ext, err := sbTable(fsys, "ExternalNet.csv", true)
	if err != nil {
		return nil, err
	}
	for i := range ext.rows {
		r := &ext.rows[i]
		id := r.s("id")
		if ct := r.s("calc_type"); ct != "vavm" {
			return nil, fmt.Errorf("simbench: external net %q: calc_type %q is not supported (only vavm, a slack)", id, ct)
		}
		sp, ok := setp[r.s("node")]
		if ok && math.IsNaN(sp[0]) {
			return nil, fmt.Errorf("simbench: external net %q: node %q has no vmSetp", id, r.s("node"))
		}
		n.Slacks = append(n.Slacks, Slack{ID: id, Bus: r.s("node"), VmPU: sp[0], VaDeg: sp[1]})
	}
	loads, err := sbTable(fsys, "Load.csv", true)
	if err != nil {
		return nil, err
	}
	for i := range loads.rows {
		r := &loads.rows[i]
		n.Loads = append(n.Loads, Load{ID: r.s("id"), Bus: r.s("node"), PMW: r.f("pLoad"), QMvar: r.fOr("qLoad", 0)})
	}
	res, err := sbTable(fsys, "RES.csv", false)
	if err != nil {
		return nil, err
	}
	{
		for i := range res.rows {
			r := &res.rows[i]
			if ct := r.s("calc_type"); ct != "pq" {
				return nil, fmt.Errorf("simbench: RES %q: calc_type %q is not supported (only pq)", r.s("id"), ct)
			}
			n.Gens = append(n.Gens, StaticGen{ID: r.s("id"), Bus: r.s("node"), PMW: r.f("pRES"), QMvar: r.fOr("qRES", 0)})
		}
	}
	for _, f := range []string{"Storage.csv", "Transformer3W.csv"} {
		if t, err := sbTable(fsys, f, false); err != nil {
			return nil, err
		} else if len(t.rows) > 0 {
			return nil, fmt.Errorf("simbench: %s has %d rows; flexhub's grid model does not support them", f, len(t.rows))
		}
	}
	for i := range nodes.rows {
		r := &nodes.rows[i]
		if r.bad != "" {
			return nil, fmt.Errorf("simbench: %s", r.bad)
		}
	}
	for _, t := range []*sbTab{lines, ltypes, trafos, ttypes, ext, loads, res} {
		for i := range t.rows {
			r := &t.rows[i]
			if r.bad != "" {
				return nil, fmt.Errorf("simbench: %s", r.bad)
			}
		}
	}
	return n, nil
}

type sbTab struct {
	rows []sbRow
}

type sbRow struct {
	file string
	line int
	col  map[string]int
	rec  []string
	bad  string
}

func (r *sbRow) s(c string) string {
	if j, ok := r.col[c]; ok && j < len(r.rec) {
		return strings.TrimSpace(r.rec[j])
	}
	return ""
}

// f reads a required number, recording the first problem.
func (r *sbRow) f(c string) float64 {
	v := r.s(c)
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		if r.bad == "" {
			r.bad = fmt.Sprintf("%s line %d (%q): column %s: %q is not a number", r.file, r.line, r.s("id"), c, v)
		}
		return math.NaN()
	}
	return x
}

func (r *sbRow) fOr(c string, def float64) float64 {
	v := r.s(c)
	if v == "" || v == "NULL" {
		return def
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		if r.bad == "" {
			r.bad = fmt.Sprintf("%s line %d (%q): column %s: %q is not a number", r.file, r.line, r.s("id"), c, v)
		}
		return math.NaN()
	}
	return x
}

func sbTable(fsys fs.FS, name string, required bool) (*sbTab, error) {
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !required {
			return &sbTab{}, nil
		}
		return nil, fmt.Errorf("simbench: %s: %w", name, err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("simbench: %s: no header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	t := &sbTab{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("simbench: %s: %w", name, err)
		}
		if len(rec) != len(head) {
			return nil, fmt.Errorf("simbench: %s line %d: %d fields for %d columns", name, line, len(rec), len(head))
		}
		t.rows = append(t.rows, sbRow{file: name, line: line, col: col, rec: rec})
	}
	return t, nil
}

// StudyCase is one row of SimBench's StudyCases.csv: scaling factors for
// loads and generation and the slack voltage.
type StudyCase struct {
	Name             string
	PLoad, QLoad     float64
	WindP, PVP, RESP float64
	SlackVmPU        float64
}

// ReadSimBenchStudyCases reads StudyCases.csv.
func ReadSimBenchStudyCases(fsys fs.FS) ([]StudyCase, error) {
	t, err := sbTable(fsys, "StudyCases.csv", true)
	if err != nil {
		return nil, err
	}
	var out []StudyCase
	for _, r := range t.rows {
		c := StudyCase{Name: r.s("Study Case"), PLoad: r.f("pload"), QLoad: r.f("qload"), WindP: r.f("Wind_p"),
			PVP: r.f("PV_p"), RESP: r.f("RES_p"), SlackVmPU: r.f("Slack_vm")}
		if r.bad != "" {
			return nil, fmt.Errorf("simbench: %s", r.bad)
		}
		out = append(out, c)
	}
	return out, nil
}
