package grid

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
)

// ReadCIM imports a distribution feeder given as IEC CIM RDF/XML in the
// CDPSM style (one file holding equipment, topology and state, as
// GridAPPS-D writes IEEE test feeders) into the balanced positive-sequence
// model. Values are read in SI units without multipliers, as those files
// write them: V, W, var, VA, ohm, S, m, A, radians.
//
// Buses are the connectivity nodes (IDs are their rdf:about/rdf:ID without
// "urn:uuid:"/"#", names their IdentifiedObject.name); every other element
// gets the ID of the CIM object it comes from. Switches become bus-bus
// switches; lines get their positive-sequence impedance from the phase
// impedance matrix or the sequence impedance; multi-tank and three-winding
// transformers are folded into balanced two-winding transformers (a star
// equivalent with an extra bus for three windings); EnergySource is the
// slack, EnergyConsumer a load (phases summed), LinearShuntCompensator a
// Shunt, PowerElectronicsConnection a static generator. docs/POWERFLOW.md
// ("CIM RDF/XML") lists the rules and what is skipped. A class the importer
// does not know is an error, never dropped silently; so are dangling
// references, missing impedances and elements without terminals. Problems
// are returned together as a *ValidationError naming each element by class,
// name and mRID.
func ReadCIM(r io.Reader) (*Network, error) {
	doc, err := parseRDF(r)
	if err != nil {
		return nil, err
	}
	c := &cimImport{u: cdpsmUnits, doc: doc, net: &Network{BaseMVA: 1, FrequencyHz: 60}}
	c.build()
	if len(c.problems) > 0 {
		return nil, &ValidationError{Problems: c.problems}
	}
	return c.net, nil
}

// ReadCGMES imports a grid model given as CGMES (IEC 61970-600, version
// 2.4.15) profiles: every *.xml file in fsys (an unpacked folder, or a
// *zip.Reader), EQ, SSH, TP, SV, ... merged by identifier (an object's
// rdf:about="#_x" in SSH adds the state to the rdf:ID="_x" of EQ). Units
// are CGMES's: kV, MW, Mvar, MVA, km, ohm, S, A; multipliers given in the
// data (RegulatingControl.targetValueUnitMultiplier) are honoured. The
// mapping is ReadCIM's, plus ExternalNetworkInjection as a slack at its
// regulating control's target voltage and EnergySource without a voltage
// as a static injection. State variables (SV) are not read: they are a
// solved case's results.
func ReadCGMES(fsys fs.FS) (*Network, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(path.Ext(p), ".xml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cgmes: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("cgmes: no .xml profile files")
	}
	sort.Strings(files)
	doc := newRDFDoc()
	for _, name := range files {
		f, err := fsys.Open(name)
		if err != nil {
			return nil, fmt.Errorf("cgmes: %w", err)
		}
		err = doc.parse(f, name, true)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	c := &cimImport{u: cgmesUnits, doc: doc, net: &Network{BaseMVA: 1, FrequencyHz: 50}}
	c.build()
	if len(c.problems) > 0 {
		return nil, &ValidationError{Problems: c.problems}
	}
	return c.net, nil
}

const rdfNS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

type cimValue struct {
	text string
	ref  string // rdf:resource, normalised
}

type cimObj struct {
	class string
	id    string
	line  int
	props map[string]cimValue
}

type rdfDoc struct {
	objs    map[string]*cimObj
	order   []*cimObj
	byClass map[string][]*cimObj
}

// normID strips the forms an RDF identifier takes in about/resource
// attributes so that rdf:ID="_x", rdf:about="#_x" and "urn:uuid:x" all
// meet.
func normID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "urn:uuid:")
	s = strings.TrimPrefix(s, "#")
	return s
}

func newRDFDoc() *rdfDoc {
	return &rdfDoc{objs: map[string]*cimObj{}, byClass: map[string][]*cimObj{}}
}

func parseRDF(r io.Reader) (*rdfDoc, error) {
	doc := newRDFDoc()
	if err := doc.parse(r, "", false); err != nil {
		return nil, err
	}
	return doc, nil
}

// parse reads one RDF/XML document into doc. With merge set (CGMES
// profiles), an object already known by its identifier gains the
// properties it did not have; otherwise a repeated identifier is an error.
func (doc *rdfDoc) parse(r io.Reader, file string, merge bool) error {
	d := xml.NewDecoder(r)
	where := "cim: "
	if file != "" {
		where = "cim: " + file + ": "
	}
	malformed := func(err error) error {
		line, _ := d.InputPos()
		return fmt.Errorf("%smalformed RDF/XML at line %d: %w", where, line, err)
	}
	// The root element.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return errors.New(where + "empty document: no rdf:RDF element")
		}
		if err != nil {
			return malformed(err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Space != rdfNS || se.Name.Local != "RDF" {
				return fmt.Errorf("%sroot element is <%s> (namespace %q), not rdf:RDF", where, se.Name.Local, se.Name.Space)
			}
			break
		}
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return malformed(errors.New("document ends before </rdf:RDF>"))
		}
		if err != nil {
			return malformed(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if len(doc.order) == 0 && !merge {
				return errors.New(where + "the document holds no objects")
			}
			return nil
		case xml.StartElement:
			line, _ := d.InputPos()
			o := &cimObj{class: t.Name.Local, line: line, props: map[string]cimValue{}}
			for _, a := range t.Attr {
				if a.Name.Space == rdfNS && (a.Name.Local == "about" || a.Name.Local == "ID") {
					o.id = normID(a.Value)
				}
			}
			if o.id == "" {
				return fmt.Errorf("%s%s at line %d has no rdf:about or rdf:ID", where, o.class, line)
			}
			if err := readProps(d, o); err != nil {
				return malformed(err)
			}
			if prev, dup := doc.objs[o.id]; dup {
				if !merge || prev.class != o.class {
					return fmt.Errorf("%s%s at line %d has the same identifier %q as the %s at line %d", where, o.class, line, o.id, prev.class, prev.line)
				}
				for k, v := range o.props {
					if _, have := prev.props[k]; !have {
						prev.props[k] = v
					}
				}
				continue
			}
			doc.objs[o.id] = o
			doc.order = append(doc.order, o)
			doc.byClass[o.class] = append(doc.byClass[o.class], o)
		}
	}
}

func readProps(d *xml.Decoder, o *cimObj) error {
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("%s %q is not closed", o.class, o.id)
			}
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			var v cimValue
			for _, a := range t.Attr {
				if a.Name.Space == rdfNS && a.Name.Local == "resource" {
					v.ref = normID(a.Value)
				}
			}
			var text strings.Builder
		inner:
			for {
				tok, err := d.Token()
				if err != nil {
					if err == io.EOF {
						return fmt.Errorf("%s %q: property %s is not closed", o.class, o.id, t.Name.Local)
					}
					return err
				}
				switch x := tok.(type) {
				case xml.CharData:
					text.Write(x)
				case xml.StartElement:
					if err := d.Skip(); err != nil {
						return err
					}
				case xml.EndElement:
					break inner
				}
			}
			v.text = strings.TrimSpace(text.String())
			if _, seen := o.props[t.Name.Local]; !seen {
				o.props[t.Name.Local] = v
			}
		}
	}
}

// Classes mapped to model elements, or read as data of a mapped element.
var cimUsed = map[string]bool{
	"ConnectivityNode": true, "Terminal": true, "BaseVoltage": true,
	"ACLineSegment": true, "ACLineSegmentPhase": true,
	"PerLengthPhaseImpedance": true, "PhaseImpedanceData": true, "PerLengthSequenceImpedance": true,
	"OperationalLimitSet": true, "CurrentLimit": true, "VoltageLimit": true, "OperationalLimitType": true,
	"Switch": true, "Breaker": true, "Fuse": true, "LoadBreakSwitch": true, "Recloser": true,
	"Disconnector": true, "Sectionaliser": true, "Jumper": true, "SwitchPhase": true,
	"PowerTransformer": true, "PowerTransformerEnd": true, "TransformerMeshImpedance": true,
	"TransformerCoreAdmittance": true, "TransformerTank": true, "TransformerTankEnd": true,
	"TransformerTankInfo": true, "TransformerEndInfo": true, "ShortCircuitTest": true, "NoLoadTest": true,
	"RatioTapChanger": true,
	"EnergySource":    true, "ExternalNetworkInjection": true, "RegulatingControl": true,
	"EnergyConsumer": true, "ConformLoad": true, "NonConformLoad": true, "EnergyConsumerPhase": true,
	"LinearShuntCompensator": true, "LinearShuntCompensatorPhase": true,
	"PowerElectronicsConnection": true, "PowerElectronicsConnectionPhase": true,
	"PhotovoltaicUnit": true, "BatteryUnit": true, "PowerElectronicsWindUnit": true,
}

// Purely descriptive classes: skipped. They carry no power and do not
// change the network's electrical behaviour in a balanced power flow.
var cimDescriptive = map[string]bool{
	"IEC61970CIMVersion": true, "FullModel": true,
	"CoordinateSystem": true, "Location": true, "PositionPoint": true,
	"GeographicalRegion": true, "SubGeographicalRegion": true, "Substation": true,
	"Feeder": true, "VoltageLevel": true, "Bay": true, "Line": true,
	"TopologicalNode": true, "TopologicalIsland": true,
	"ActivePowerLimit": true, "ApparentPowerLimit": true,
	"LoadResponseCharacteristic": true, // loads are constant power
	"TapChangerControl":          true, // taps are fixed at their step
	"BusbarSection":              true, "Junction": true, "ConnectivityNodeContainer": true,
	"Measurement": true, "Analog": true, "Discrete": true, "Accumulator": true, "MeasurementValueSource": true,
	"Name": true, "NameType": true, "NameTypeAuthority": true,
	"WireInfo": true, "OverheadWireInfo": true, "ConcentricNeutralCableInfo": true, "TapeShieldCableInfo": true,
	"WireSpacingInfo": true, "WirePosition": true, "Asset": true, "AssetInfo": true,
	"House": true, "EnergyConsumerAction": true,
	// CGMES: areas, load groups, diagram layout, and the state variables
	// of a solved case (SV is a result, not an input).
	"ControlArea": true, "TieFlow": true, "EnergySchedulingType": true,
	"LoadArea": true, "SubLoadArea": true, "ConformLoadGroup": true, "NonConformLoadGroup": true,
	"Diagram": true, "DiagramObject": true, "DiagramObjectPoint": true, "DiagramStyle": true,
	"DiagramObjectStyle": true, "TextDiagramObject": true,
	"SvVoltage": true, "SvPowerFlow": true, "SvTapStep": true, "SvStatus": true, "SvInjection": true,
	"SvShuntCompensatorSections": true,
}

// cimUnits are the factors from a file's numbers to SI: volts, watts (and
// VA, var), metres. CDPSM writes SI (1, 1, 1); CGMES's profiles fix kV,
// MW and km.
type cimUnits struct{ v, p, m float64 }

var (
	cdpsmUnits = cimUnits{1, 1, 1}
	cgmesUnits = cimUnits{1e3, 1e6, 1e3}
)

type cimImport struct {
	u        cimUnits
	doc      *rdfDoc
	net      *Network
	problems []string

	terms      map[string][]*cimObj // equipment id -> terminals by sequence number
	busOf      map[string]string    // terminal id -> bus id
	vn         map[string]float64   // bus id -> kV
	vnFrom     map[string]string    // bus id -> who set vn
	phaseCount map[string]int       // equipment id -> phases listed
	limits     map[string][]*cimObj // OperationalLimitSet id -> CurrentLimits
	setsOf     map[string][]string  // equipment or terminal id -> OperationalLimitSets naming it
	phaseIdx   map[string][]*cimObj // PerLengthPhaseImpedance id -> PhaseImpedanceData
	vlimits    map[string][]*cimObj // OperationalLimitSet id -> VoltageLimits
	seen       map[string]bool
}

func (c *cimImport) add(o *cimObj, format string, a ...any) {
	p := c.label(o) + ": " + fmt.Sprintf(format, a...)
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if !c.seen[p] { // a shared object (a BaseVoltage) is reported once
		c.seen[p] = true
		c.problems = append(c.problems, p)
	}
}

// label names an object for error messages: class, name, mRID.
func (c *cimImport) label(o *cimObj) string {
	name := o.props["IdentifiedObject.name"].text
	if name == "" {
		return fmt.Sprintf("CIM %s (mRID %s, line %d)", o.class, o.id, o.line)
	}
	return fmt.Sprintf("CIM %s %q (mRID %s)", o.class, name, o.id)
}

func (o *cimObj) has(p string) bool { _, ok := o.props[p]; return ok }

func (o *cimObj) text(p string) string { return o.props[p].text }

// num reads a numeric property; ok is false when it is absent. A value that
// is present but not a number is a problem.
func (c *cimImport) num(o *cimObj, p string) (float64, bool) {
	v, ok := o.props[p]
	if !ok || v.text == "" {
		return 0, false
	}
	x, err := strconv.ParseFloat(v.text, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		c.add(o, "%s %q is not a number", p, v.text)
		return 0, false
	}
	return x, true
}

// scaled reads a number and multiplies it by a unit factor.
func (c *cimImport) scaled(o *cimObj, p string, f float64) (float64, bool) {
	v, ok := c.num(o, p)
	return v * f, ok
}

func (c *cimImport) numOr(o *cimObj, p string, def float64) float64 {
	if x, ok := c.num(o, p); ok {
		return x
	}
	return def
}

// ref resolves a reference property. With required set, a missing
// reference is a problem; a reference to nothing in the file always is.
func (c *cimImport) ref(o *cimObj, p string, required bool, classes ...string) *cimObj {
	v, ok := o.props[p]
	if !ok || v.ref == "" {
		if required {
			c.add(o, "%s is missing", p)
		}
		return nil
	}
	t, ok := c.doc.objs[v.ref]
	if !ok {
		c.add(o, "%s refers to %q, which is not in the file (dangling rdf:resource)", p, v.ref)
		return nil
	}
	if len(classes) > 0 {
		for _, k := range classes {
			if t.class == k {
				return t
			}
		}
		c.add(o, "%s refers to %s, expected %s", p, c.label(t), strings.Join(classes, " or "))
		return nil
	}
	return t
}

// enum returns the last part of an enumeration reference
// ("...#WindingConnection.D" -> "D").
func enum(v cimValue) string {
	s := v.ref
	if s == "" {
		s = v.text
	}
	if i := strings.LastIndexAny(s, "#."); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func (o *cimObj) boolean(p string) (bool, bool) {
	v, ok := o.props[p]
	if !ok {
		return false, false
	}
	return strings.EqualFold(v.text, "true"), true
}

func (c *cimImport) build() {
	doc := c.doc
	for _, o := range doc.order {
		if !cimUsed[o.class] && !cimDescriptive[o.class] {
			c.add(o, "class %s is not supported by flexhub's grid model; it is rejected rather than dropped (if it carries power, the power flow would be wrong without it)", o.class)
		}
	}
	c.indexTerminals()
	c.indexLimits()
	c.phaseCount = map[string]int{}
	for cls, parent := range map[string]string{
		"ACLineSegmentPhase": "ACLineSegmentPhase.ACLineSegment", "EnergyConsumerPhase": "EnergyConsumerPhase.EnergyConsumer",
		"LinearShuntCompensatorPhase": "ShuntCompensatorPhase.ShuntCompensator", "PowerElectronicsConnectionPhase": "PowerElectronicsConnectionPhase.PowerElectronicsConnection",
	} {
		for _, o := range doc.byClass[cls] {
			if p := c.ref(o, parent, true); p != nil {
				c.phaseCount[p.id]++
			}
		}
	}
	c.buses()
	c.lines()
	c.switches()
	c.transformers()
	c.injections()
	if len(c.net.Slacks) == 0 && len(c.problems) == 0 {
		c.problems = append(c.problems, "CIM: no EnergySource (or ExternalNetworkInjection) in the file: the power flow needs a slack")
	}
}

func (c *cimImport) indexTerminals() {
	c.terms = map[string][]*cimObj{}
	c.busOf = map[string]string{}
	for _, t := range c.doc.byClass["Terminal"] {
		eq := c.ref(t, "Terminal.ConductingEquipment", true)
		node := c.ref(t, "Terminal.ConnectivityNode", false, "ConnectivityNode")
		if node == nil && !t.has("Terminal.ConnectivityNode") {
			node = c.ref(t, "Terminal.TopologicalNode", false, "TopologicalNode")
			if node == nil && !t.has("Terminal.TopologicalNode") {
				c.add(t, "connects to no ConnectivityNode (nor TopologicalNode)")
			}
		}
		if eq == nil || node == nil {
			continue
		}
		c.busOf[t.id] = node.id
		c.terms[eq.id] = append(c.terms[eq.id], t)
	}
	for id, ts := range c.terms {
		sort.SliceStable(ts, func(i, j int) bool {
			return c.numOr(ts[i], "ACDCTerminal.sequenceNumber", 0) < c.numOr(ts[j], "ACDCTerminal.sequenceNumber", 0)
		})
		c.terms[id] = ts
	}
}

// terminals returns the equipment's terminals, checking their number.
func (c *cimImport) terminals(o *cimObj, want int) []*cimObj {
	ts := c.terms[o.id]
	if len(ts) == 0 {
		c.add(o, "has no terminals: it is connected to nothing")
		return nil
	}
	if want > 0 && len(ts) != want {
		c.add(o, "has %d terminals, want %d", len(ts), want)
		return nil
	}
	return ts
}

// connected reports whether every terminal is connected
// (ACDCTerminal.connected, true when absent).
func connected(ts []*cimObj) bool {
	for _, t := range ts {
		if v, ok := t.boolean("ACDCTerminal.connected"); ok && !v {
			return false
		}
	}
	return true
}

// inService is false for equipment marked out of service.
func inService(o *cimObj) bool {
	if v, ok := o.boolean("Equipment.inService"); ok {
		return v
	}
	if v, ok := o.boolean("Equipment.normallyInService"); ok {
		return v
	}
	return true
}

// Nominal voltages below this (in volts) are not plausible for a CIM bus:
// the value was most likely written in kV.
const minPlausibleV = 60.0

// baseKV reads a BaseVoltage reference in kV.
func (c *cimImport) baseKV(o *cimObj, p string) (float64, bool) {
	bv := c.ref(o, p, false, "BaseVoltage")
	if bv == nil {
		return 0, false
	}
	v, ok := c.scaled(bv, "BaseVoltage.nominalVoltage", c.u.v)
	if !ok {
		c.add(bv, "nominalVoltage is missing")
		return 0, false
	}
	if !c.plausibleV(bv, "nominalVoltage", v) {
		return 0, false
	}
	return v / 1000, true
}

func (c *cimImport) plausibleV(o *cimObj, what string, v float64) bool {
	if v <= 0 {
		c.add(o, "%s %v V must be positive", what, v)
		return false
	}
	if v < minPlausibleV {
		c.add(o, "%s %v V is not plausible: CIM gives voltages in volts; was it written in kV? (%v kV = %v V)", what, v, v, v*1000)
		return false
	}
	return true
}

func (c *cimImport) setVn(bus string, kv float64, from *cimObj) {
	if kv <= 0 {
		return
	}
	if old, ok := c.vn[bus]; ok {
		if kv/old > 1.1 || old/kv > 1.1 {
			node := c.doc.objs[bus]
			c.add(node, "connected equipment disagrees on its nominal voltage: %s says %v kV, %s says %v kV%s",
				c.vnFrom[bus], old, c.label(from), kv, voltsHint(old, kv))
		}
		return
	}
	c.vn[bus] = kv
	c.vnFrom[bus] = c.label(from)
}

func (c *cimImport) buses() {
	c.vn = map[string]float64{}
	c.vnFrom = map[string]string{}
	// Equipment with a BaseVoltage sets the voltage of its nodes.
	for _, o := range c.doc.order {
		ts := c.terms[o.id]
		if len(ts) == 0 {
			continue
		}
		if kv, ok := c.baseKV(o, "ConductingEquipment.BaseVoltage"); ok {
			for _, t := range ts {
				c.setVn(c.busOf[t.id], kv, o)
			}
		}
	}
	// A node's container (CGMES: its VoltageLevel) or a topological node
	// may carry the base voltage too.
	for _, t := range c.doc.byClass["Terminal"] {
		id, ok := c.busOf[t.id]
		if !ok {
			continue
		}
		node := c.doc.objs[id]
		if node.class == "TopologicalNode" {
			if kv, ok := c.baseKV(node, "TopologicalNode.BaseVoltage"); ok {
				c.setVn(id, kv, node)
			}
			continue
		}
		if vl := c.ref(node, "ConnectivityNode.ConnectivityNodeContainer", false); vl != nil && vl.class == "VoltageLevel" {
			if kv, ok := c.baseKV(vl, "VoltageLevel.BaseVoltage"); ok {
				c.setVn(id, kv, vl)
			}
		}
	}
	// Transformer ends set the voltage at their own terminal.
	for _, cls := range []string{"PowerTransformerEnd", "TransformerTankEnd"} {
		for _, e := range c.doc.byClass[cls] {
			t := c.ref(e, "TransformerEnd.Terminal", false, "Terminal")
			if t == nil {
				continue
			}
			kv, ok := c.baseKV(e, "TransformerEnd.BaseVoltage")
			if !ok && cls == "PowerTransformerEnd" {
				if u, ok2 := c.scaled(e, "PowerTransformerEnd.ratedU", c.u.v); ok2 && c.plausibleV(e, "ratedU", u) {
					kv, ok = u/1000, true
				}
			}
			if ok {
				c.setVn(c.busOf[t.id], kv, e)
			}
		}
	}
	// Nodes reached only through switches take the voltage across them.
	for changed := true; changed; {
		changed = false
		for _, cls := range cimSwitchClasses {
			for _, o := range c.doc.byClass[cls] {
				ts := c.terms[o.id]
				if len(ts) != 2 {
					continue
				}
				a, b := c.busOf[ts[0].id], c.busOf[ts[1].id]
				va, oka := c.vn[a]
				vb, okb := c.vn[b]
				if oka && !okb {
					c.setVn(b, va, o)
					changed = true
				} else if okb && !oka {
					c.setVn(a, vb, o)
					changed = true
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, t := range c.doc.byClass["Terminal"] {
		id, ok := c.busOf[t.id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		node := c.doc.objs[id]
		kv, ok := c.vn[id]
		if !ok {
			c.add(node, "no nominal voltage: no connected equipment has a BaseVoltage")
		}
		b := Bus{ID: id, Name: node.text("IdentifiedObject.name"), VnKV: kv}
		if set := c.ref(node, "ConnectivityNode.OperationalLimitSet", false, "OperationalLimitSet"); set != nil && kv > 0 {
			b.VMinPU, b.VMaxPU = c.voltageBand(set, kv)
		}
		c.net.Buses = append(c.net.Buses, b)
	}
}

// voltageBand reads a node's normal voltage band (p.u.) from its limit set:
// per direction (high, low) the VoltageLimit whose type has the longest
// acceptable duration (ANSI range A rather than B in the IEEE files). Both
// or neither are set.
func (c *cimImport) voltageBand(set *cimObj, kv float64) (lo, hi float64) {
	if c.vlimits == nil {
		c.vlimits = map[string][]*cimObj{}
		for _, l := range c.doc.byClass["VoltageLimit"] {
			if s := c.ref(l, "OperationalLimit.OperationalLimitSet", true, "OperationalLimitSet"); s != nil {
				c.vlimits[s.id] = append(c.vlimits[s.id], l)
			}
		}
	}
	durLo, durHi := -1.0, -1.0
	for _, l := range c.vlimits[set.id] {
		v, ok := c.scaled(l, "VoltageLimit.value", c.u.v)
		typ := c.ref(l, "OperationalLimit.OperationalLimitType", false, "OperationalLimitType")
		if !ok || typ == nil {
			continue
		}
		dur := c.numOr(typ, "OperationalLimitType.acceptableDuration", math.Inf(1))
		switch enum(typ.props["OperationalLimitType.direction"]) {
		case "high":
			if dur > durHi {
				hi, durHi = v/(kv*1000), dur
			}
		case "low":
			if dur > durLo {
				lo, durLo = v/(kv*1000), dur
			}
		}
	}
	if lo == 0 || hi == 0 {
		return 0, 0
	}
	return lo, hi
}

func (c *cimImport) indexLimits() {
	c.setsOf = map[string][]string{}
	for _, s := range c.doc.byClass["OperationalLimitSet"] {
		for _, p := range []string{"OperationalLimitSet.Equipment", "OperationalLimitSet.Terminal"} {
			if r := s.props[p].ref; r != "" {
				c.setsOf[r] = append(c.setsOf[r], s.id)
			}
		}
	}
	c.limits = map[string][]*cimObj{}
	for _, l := range c.doc.byClass["CurrentLimit"] {
		if set := c.ref(l, "OperationalLimit.OperationalLimitSet", true, "OperationalLimitSet"); set != nil {
			c.limits[set.id] = append(c.limits[set.id], l)
		}
	}
}

// currentLimitKA is the normal (longest acceptable duration) current limit
// over the equipment's terminals, the lowest if several; 0 if none.
func (c *cimImport) currentLimitKA(eq *cimObj, ts []*cimObj) float64 {
	var sets []string
	for _, t := range ts {
		if v := t.props["ACDCTerminal.OperationalLimitSet"]; v.ref != "" {
			sets = append(sets, v.ref)
		}
	}
	sets = append(sets, c.setsOf[eq.id]...)
	for _, t := range ts {
		sets = append(sets, c.setsOf[t.id]...)
	}
	best, bestDur := 0.0, -1.0
	for _, s := range sets {
		for _, l := range c.limits[s] {
			v, ok := c.num(l, "CurrentLimit.value")
			if !ok || v <= 0 {
				continue
			}
			dur := math.Inf(1) // a limit without type counts as permanent
			if typ := c.ref(l, "OperationalLimit.OperationalLimitType", false, "OperationalLimitType"); typ != nil {
				if d, ok := c.num(typ, "OperationalLimitType.acceptableDuration"); ok {
					dur = d
				}
			}
			if dur > bestDur || (dur == bestDur && v < best) {
				best, bestDur = v, dur
			}
		}
	}
	return best / 1000
}

func (c *cimImport) lines() {
	for _, o := range c.doc.byClass["ACLineSegment"] {
		if !inService(o) {
			continue
		}
		ts := c.terminals(o, 2)
		if ts == nil {
			continue
		}
		lengthM, hasLen := c.scaled(o, "Conductor.length", c.u.m)
		if hasLen && lengthM < 0 {
			c.add(o, "length %v m must not be negative", lengthM)
			continue
		}
		var r, x, b, g float64 // ohm/km, µS/km
		lengthKM := lengthM / 1000
		phases := 3
		if n := c.phaseCount[o.id]; n > 0 {
			phases = n
		}
		switch {
		case o.has("ACLineSegment.r") || o.has("ACLineSegment.x"):
			// Totals for the whole segment.
			if lengthKM <= 0 {
				lengthKM = 1 // no length: the totals as one "km"
			}
			r = c.numOr(o, "ACLineSegment.r", 0) / lengthKM
			x = c.numOr(o, "ACLineSegment.x", 0) / lengthKM
			b = c.numOr(o, "ACLineSegment.bch", 0) * 1e6 / lengthKM
			g = c.numOr(o, "ACLineSegment.gch", 0) * 1e6 / lengthKM
		case o.has("ACLineSegment.PerLengthImpedance"):
			pli := c.ref(o, "ACLineSegment.PerLengthImpedance", true, "PerLengthPhaseImpedance", "PerLengthSequenceImpedance")
			if pli == nil {
				continue
			}
			if !hasLen || lengthKM <= 0 {
				c.add(o, "length is missing or zero (Conductor.length, in m) while its impedance is per length")
				continue
			}
			var ok bool
			r, x, b, g, ok = c.perLength(pli, phases)
			if !ok {
				continue
			}
		default:
			c.add(o, "no impedance: neither r/x nor a PerLengthImpedance")
			continue
		}
		if r <= 0 && x <= 0 {
			c.add(o, "impedance r=%v x=%v ohm/km is missing or not positive", r, x)
			continue
		}
		maxI := c.currentLimitKA(o, ts)
		// A lateral with fewer than three phases: see lateralScale.
		s := lateralScale(phases)
		l := Line{ID: o.id, FromBus: c.busOf[ts[0].id], ToBus: c.busOf[ts[1].id], LengthKM: lengthKM,
			ROhmPerKM: r * s, XOhmPerKM: x * s, BMicroSPerKM: b / s, GMicroSPerKM: g / s, Parallel: 1, MaxIKA: maxI / s}
		c.net.Lines = append(c.net.Lines, l)
		c.openEnds(o, ts, "line", l.ID)
	}
}

// lateralScale is the factor on the impedance (and 1/factor on the
// rating) of a line with fewer than three phases in the balanced
// equivalent: 3/phases, so that the single- or two-phase load it carries,
// spread over three phases in the balanced model, sees the voltage drop
// and loading it causes on the phases that really carry it.
func lateralScale(phases int) float64 {
	if phases <= 0 || phases >= 3 {
		return 1
	}
	return 3 / float64(phases)
}

// perLength returns the positive-sequence r, x (ohm/km), b, g (µS/km) of a
// per-length impedance.
func (c *cimImport) perLength(p *cimObj, phases int) (r, x, b, g float64, ok bool) {
	if p.class == "PerLengthSequenceImpedance" {
		rr, ok1 := c.num(p, "PerLengthSequenceImpedance.r")
		xx, ok2 := c.num(p, "PerLengthSequenceImpedance.x")
		if !ok1 && !ok2 {
			c.add(p, "r and x are missing")
			return 0, 0, 0, 0, false
		}
		k := 1000 / c.u.m // per file length unit -> per km
		return rr * k, xx * k, c.numOr(p, "PerLengthSequenceImpedance.bch", 0) * 1e6 * k,
			c.numOr(p, "PerLengthSequenceImpedance.gch", 0) * 1e6 * k, true
	}
	type cell struct{ r, x, b float64 }
	m := map[[2]int]cell{}
	n := 0
	for _, d := range c.phaseData(p) {
		row, ok1 := c.num(d, "PhaseImpedanceData.row")
		col, ok2 := c.num(d, "PhaseImpedanceData.column")
		if !ok1 || !ok2 || row < 1 || col < 1 {
			c.add(d, "row/column missing or not positive")
			return 0, 0, 0, 0, false
		}
		i, j := int(row), int(col)
		if i < j {
			i, j = j, i
		}
		m[[2]int{i, j}] = cell{c.numOr(d, "PhaseImpedanceData.r", 0), c.numOr(d, "PhaseImpedanceData.x", 0), c.numOr(d, "PhaseImpedanceData.b", 0)}
		n = max(n, i)
	}
	if cc, ok := c.num(p, "PerLengthPhaseImpedance.conductorCount"); ok && int(cc) > n {
		n = int(cc)
	}
	if n == 0 {
		c.add(p, "no PhaseImpedanceData: the impedance is missing")
		return 0, 0, 0, 0, false
	}
	var sd, od cell
	nd, no := 0, 0
	for i := 1; i <= n; i++ {
		for j := 1; j <= i; j++ {
			v, found := m[[2]int{i, j}]
			if !found {
				if i == j {
					c.add(p, "no PhaseImpedanceData for row %d, column %d: the impedance is missing", i, j)
					return 0, 0, 0, 0, false
				}
				continue // zero coupling
			}
			if i == j {
				sd.r, sd.x, sd.b = sd.r+v.r, sd.x+v.x, sd.b+v.b
				nd++
			} else {
				od.r, od.x, od.b = od.r+v.r, od.x+v.x, od.b+v.b
			}
		}
	}
	no = n * (n - 1) / 2
	zs := cell{sd.r / float64(nd), sd.x / float64(nd), sd.b / float64(nd)}
	var zm cell
	if no > 0 {
		zm = cell{od.r / float64(no), od.x / float64(no), od.b / float64(no)}
	}
	// per file length unit (m in CDPSM) -> ohm/km, µS/km.
	k := 1000 / c.u.m
	return (zs.r - zm.r) * k, (zs.x - zm.x) * k, (zs.b - zm.b) * 1e6 * k, 0, true
}

func (c *cimImport) phaseData(p *cimObj) []*cimObj {
	if c.phaseIdx == nil {
		c.phaseIdx = map[string][]*cimObj{}
		for _, d := range c.doc.byClass["PhaseImpedanceData"] {
			if q := c.ref(d, "PhaseImpedanceData.PhaseImpedance", true, "PerLengthPhaseImpedance"); q != nil {
				c.phaseIdx[q.id] = append(c.phaseIdx[q.id], d)
			}
		}
	}
	return c.phaseIdx[p.id]
}

// openEnds adds an open element switch for each disconnected terminal.
func (c *cimImport) openEnds(o *cimObj, ts []*cimObj, kind, id string) {
	for i, t := range ts {
		if v, ok := t.boolean("ACDCTerminal.connected"); ok && !v {
			c.net.Switches = append(c.net.Switches, Switch{ID: fmt.Sprintf("%s-T%d", id, i+1), BusA: c.busOf[t.id],
				Element: id, ElementKind: kind, Closed: false})
		}
	}
}

var cimSwitchClasses = []string{"Switch", "Breaker", "Fuse", "LoadBreakSwitch", "Recloser", "Disconnector", "Sectionaliser", "Jumper"}

func (c *cimImport) switches() {
	phases := c.refIndex("SwitchPhase", "SwitchPhase.Switch")
	for _, cls := range cimSwitchClasses {
		for _, o := range c.doc.byClass[cls] {
			if !inService(o) {
				continue
			}
			ts := c.terminals(o, 2)
			if ts == nil {
				continue
			}
			open, ok := o.boolean("Switch.open")
			if !ok {
				open, _ = o.boolean("Switch.normalOpen")
			}
			// Per-phase states must agree with the switch's: a switch
			// open on some phases only has no balanced equivalent.
			for _, ph := range phases[o.id] {
				closed, ok := ph.boolean("SwitchPhase.closed")
				if !ok {
					if no, ok2 := ph.boolean("SwitchPhase.normalOpen"); ok2 {
						closed, ok = !no, true
					}
				}
				if ok && closed == open {
					c.add(ph, "is %s while its switch is %s: a switch open on some phases only is not supported", map[bool]string{true: "closed", false: "open"}[closed], map[bool]string{true: "open", false: "closed"}[open])
				}
			}
			a, b := c.busOf[ts[0].id], c.busOf[ts[1].id]
			if a == b {
				continue // both ends on one node: nothing to switch
			}
			c.net.Switches = append(c.net.Switches, Switch{ID: o.id, BusA: a, BusB: b, Closed: !open && connected(ts)})
		}
	}
}

// cimEnd is one winding of a (possibly multi-tank) transformer in the
// balanced equivalent.
type cimEnd struct {
	obj   *cimObj
	bus   string
	kv    float64 // rated line-to-line (equivalent) voltage
	va    float64 // rated power, VA, all tanks together
	clock float64
	tap   float64 // ratio tap in %, averaged over tanks
	taps  int
}

// refIndex maps the target of property p to the objects of class cls
// that point to it.
func (c *cimImport) refIndex(cls, p string) map[string][]*cimObj {
	m := map[string][]*cimObj{}
	for _, o := range c.doc.byClass[cls] {
		if t := c.ref(o, p, false); t != nil {
			m[t.id] = append(m[t.id], o)
		}
	}
	return m
}

func byEndNumber(c *cimImport, os []*cimObj, p string) {
	sort.SliceStable(os, func(i, j int) bool { return c.numOr(os[i], p, 0) < c.numOr(os[j], p, 0) })
}

// tapPercent is a ratio tap changer's voltage change at its step.
func (c *cimImport) tapPercent(t *cimObj) float64 {
	neutral := c.numOr(t, "TapChanger.neutralStep", 0)
	step, ok := c.num(t, "TapChanger.step")
	if !ok {
		step = c.numOr(t, "TapChanger.normalStep", neutral)
	}
	inc, ok := c.num(t, "RatioTapChanger.stepVoltageIncrement")
	if !ok {
		c.add(t, "stepVoltageIncrement is missing")
		return 0
	}
	return (step - neutral) * inc
}

func (c *cimImport) transformers() {
	ptEnds := c.refIndex("PowerTransformerEnd", "PowerTransformerEnd.PowerTransformer")
	tanks := c.refIndex("TransformerTank", "TransformerTank.PowerTransformer")
	tankEnds := c.refIndex("TransformerTankEnd", "TransformerTankEnd.TransformerTank")
	endInfos := c.refIndex("TransformerEndInfo", "TransformerEndInfo.TransformerTankInfo")
	meshes := c.refIndex("TransformerMeshImpedance", "TransformerMeshImpedance.FromTransformerEnd")
	cores := c.refIndex("TransformerCoreAdmittance", "TransformerCoreAdmittance.TransformerEnd")
	scTests := c.refIndex("ShortCircuitTest", "ShortCircuitTest.EnergisedEnd")
	nlTests := c.refIndex("NoLoadTest", "NoLoadTest.EnergisedEnd")
	tapOf := map[string]*cimObj{}
	for _, t := range c.doc.byClass["RatioTapChanger"] {
		if e := c.ref(t, "RatioTapChanger.TransformerEnd", true, "PowerTransformerEnd", "TransformerTankEnd"); e != nil {
			tapOf[e.id] = t
		}
	}
	for _, tk := range c.doc.byClass["TransformerTank"] {
		if !tk.has("TransformerTank.PowerTransformer") {
			c.add(tk, "belongs to no PowerTransformer (TransformerTank.PowerTransformer is missing)")
		}
	}
	for _, pt := range c.doc.byClass["PowerTransformer"] {
		if !inService(pt) {
			continue
		}
		pe, tk := ptEnds[pt.id], tanks[pt.id]
		var ends []*cimEnd
		var z map[[2]int]complex128 // per unit on the bank's rating of end 1, by end index pair
		var i0, pfeKW float64
		ok := true
		switch {
		case len(pe) > 0 && len(tk) > 0:
			c.add(pt, "has both PowerTransformerEnds and TransformerTanks")
			continue
		case len(pe) > 0:
			ends, z, i0, pfeKW, ok = c.ptEnds(pt, pe, meshes, cores, tapOf)
		case len(tk) > 0:
			ends, z, i0, ok = c.tankBank(pt, tk, tankEnds, endInfos, scTests, nlTests, tapOf)
		default:
			c.add(pt, "has no PowerTransformerEnd and no TransformerTank: its windings and impedance are missing")
			continue
		}
		if !ok {
			continue
		}
		c.emitTransformer(pt, ends, z, i0, pfeKW)
	}
}

func (c *cimImport) endBus(e *cimObj) (string, bool) {
	t := c.ref(e, "TransformerEnd.Terminal", true, "Terminal")
	if t == nil {
		return "", false
	}
	b, ok := c.busOf[t.id]
	if !ok {
		c.add(e, "its terminal is connected to no node")
	}
	return b, ok
}

func (c *cimImport) ptEnds(pt *cimObj, pe []*cimObj, meshes, cores map[string][]*cimObj, tapOf map[string]*cimObj) (
	ends []*cimEnd, z map[[2]int]complex128, i0, pfeKW float64, ok bool) {
	byEndNumber(c, pe, "TransformerEnd.endNumber")
	ok = true
	pos := map[string]int{}
	for k, e := range pe {
		u, okU := c.scaled(e, "PowerTransformerEnd.ratedU", c.u.v)
		sVA, okS := c.scaled(e, "PowerTransformerEnd.ratedS", c.u.p)
		if !okU || !c.plausibleV(e, "ratedU", u) {
			if !okU {
				c.add(e, "ratedU is missing")
			}
			ok = false
			continue
		}
		if !okS || sVA <= 0 {
			c.add(e, "ratedS %v VA is missing or not positive", sVA)
			ok = false
			continue
		}
		bus, okB := c.endBus(e)
		if !okB {
			ok = false
			continue
		}
		end := &cimEnd{obj: e, bus: bus, kv: u / 1000, va: sVA, clock: c.numOr(e, "PowerTransformerEnd.phaseAngleClock", 0)}
		if t := tapOf[e.id]; t != nil {
			end.tap, end.taps = c.tapPercent(t), 1
		}
		pos[e.id] = k
		ends = append(ends, end)
	}
	if !ok {
		return nil, nil, 0, 0, false
	}
	sb := ends[0].va
	zb := func(e *cimEnd) float64 { return e.kv * e.kv * 1e6 / sb } // ohm at the end's voltage, base sb
	z = map[[2]int]complex128{}
	for _, e := range ends {
		for _, m := range meshes[e.obj.id] {
			to := c.ref(m, "TransformerMeshImpedance.ToTransformerEnd", true, "PowerTransformerEnd")
			if to == nil {
				ok = false
				continue
			}
			j, in := pos[to.id]
			if !in {
				c.add(m, "connects ends of different transformers")
				ok = false
				continue
			}
			i := pos[e.obj.id]
			zz := complex(c.numOr(m, "TransformerMeshImpedance.r", 0), c.numOr(m, "TransformerMeshImpedance.x", 0)) / complex(zb(e), 0)
			z[[2]int{min(i, j), max(i, j)}] = zz
		}
		for _, y := range cores[e.obj.id] {
			g, b := c.numOr(y, "TransformerCoreAdmittance.g", 0), c.numOr(y, "TransformerCoreAdmittance.b", 0)
			u := e.kv * 1000
			pfeKW += g * u * u / 1000
			i0 += math.Hypot(g, b) * u * u / e.va * 100
		}
		// CGMES-style magnetising admittance on the end itself.
		if g, b := c.numOr(e.obj, "PowerTransformerEnd.g", 0), c.numOr(e.obj, "PowerTransformerEnd.b", 0); g != 0 || b != 0 {
			u := e.kv * 1000
			pfeKW += g * u * u / 1000
			i0 += math.Hypot(g, b) * u * u / e.va * 100
		}
	}
	if len(z) == 0 {
		// No mesh: star impedances on the ends (r, x in ohm at each end's voltage).
		star := make([]complex128, len(ends))
		any := false
		for k, e := range ends {
			r, okR := c.num(e.obj, "PowerTransformerEnd.r")
			x, okX := c.num(e.obj, "PowerTransformerEnd.x")
			any = any || okR || okX
			star[k] = complex(r, x) / complex(zb(e), 0)
		}
		if !any {
			c.add(pt, "no impedance: neither TransformerMeshImpedance nor r/x on its PowerTransformerEnds")
			return nil, nil, 0, 0, false
		}
		for i := range ends {
			for j := i + 1; j < len(ends); j++ {
				z[[2]int{i, j}] = star[i] + star[j]
			}
		}
	}
	return ends, z, i0, pfeKW, ok
}

// phaseFactor turns a tank winding's rated voltage into the line-to-line
// voltage of the balanced equivalent: √3 for a winding between one phase
// and neutral (orderedPhases AN, BN, s1N, Ns2, ...), 1 otherwise.
func phaseFactor(ordered string) float64 {
	s := strings.ToUpper(ordered)
	n := strings.Count(s, "N")
	s = strings.ReplaceAll(s, "N", "")
	phases := strings.Count(s, "A") + strings.Count(s, "B") + strings.Count(s, "C") + strings.Count(s, "S1") + strings.Count(s, "S2")
	if phases == 1 && n == 1 {
		return math.Sqrt(3)
	}
	return 1
}

func (c *cimImport) tankBank(pt *cimObj, tanks []*cimObj, tankEnds, endInfos, scTests, nlTests map[string][]*cimObj, tapOf map[string]*cimObj) (
	ends []*cimEnd, z map[[2]int]complex128, i0 float64, ok bool) {
	ok = true
	z = map[[2]int]complex128{}
	nEnds := -1
	for ti, tk := range tanks {
		info := c.ref(tk, "TransformerTank.TransformerTankInfo", false, "TransformerTankInfo")
		if info == nil {
			if !tk.has("TransformerTank.TransformerTankInfo") {
				c.add(tk, "no TransformerTankInfo: its ratings and impedance are missing")
			}
			return nil, nil, 0, false
		}
		te, ei := tankEnds[tk.id], endInfos[info.id]
		byEndNumber(c, te, "TransformerEnd.endNumber")
		byEndNumber(c, ei, "TransformerEndInfo.endNumber")
		if len(te) < 2 || len(te) != len(ei) {
			c.add(tk, "has %d TransformerTankEnds and its TransformerTankInfo %d TransformerEndInfos; want the same number, at least 2", len(te), len(ei))
			return nil, nil, 0, false
		}
		if nEnds >= 0 && len(te) != nEnds {
			c.add(tk, "has %d ends, other tanks of its PowerTransformer %d", len(te), nEnds)
			return nil, nil, 0, false
		}
		nEnds = len(te)
		u := make([]float64, len(te)) // V
		sVA := make([]float64, len(te))
		rOhm := make([]float64, len(te))
		pos := map[string]int{}
		for k := range te {
			pos[ei[k].id] = k
			var okU, okS bool
			u[k], okU = c.scaled(ei[k], "TransformerEndInfo.ratedU", c.u.v)
			sVA[k], okS = c.scaled(ei[k], "TransformerEndInfo.ratedS", c.u.p)
			rOhm[k] = c.numOr(ei[k], "TransformerEndInfo.r", 0)
			if !okU || !c.plausibleV(ei[k], "ratedU", u[k]) || !okS || sVA[k] <= 0 {
				if !okU || !okS || sVA[k] <= 0 {
					c.add(ei[k], "ratedU %v V / ratedS %v VA missing or not positive", u[k], sVA[k])
				}
				return nil, nil, 0, false
			}
			bus, okB := c.endBus(te[k])
			if !okB {
				return nil, nil, 0, false
			}
			kv := u[k] / 1000 * phaseFactor(enum(te[k].props["TransformerTankEnd.orderedPhases"]))
			if ti == 0 {
				ends = append(ends, &cimEnd{obj: te[k], bus: bus, kv: kv})
			} else if ends[k].bus != bus {
				c.add(tk, "connects end %d to node %q, another tank of the same PowerTransformer to %q", k+1, bus, ends[k].bus)
				return nil, nil, 0, false
			}
			ends[k].va += sVA[k]
			if t := tapOf[te[k].id]; t != nil {
				ends[k].tap += c.tapPercent(t)
			}
			ends[k].taps++
		}
		// Leakage impedances between pairs of ends, per unit on the
		// tank's rating of end 1 (= the bank's per unit on the bank's).
		s0 := sVA[0]
		pairs := map[[2]int]bool{}
		for _, e := range ei {
			for _, sc := range scTests[e.id] {
				g := c.ref(sc, "ShortCircuitTest.GroundedEnds", true, "TransformerEndInfo")
				if g == nil {
					return nil, nil, 0, false
				}
				i, j := pos[e.id], pos[g.id]
				zl, okZ := c.num(sc, "ShortCircuitTest.leakageImpedance")
				if !okZ || zl <= 0 {
					c.add(sc, "leakageImpedance is missing or not positive")
					return nil, nil, 0, false
				}
				zpu := zl * s0 / (u[i] * u[i])
				rpu := (rOhm[i]/(u[i]*u[i]) + rOhm[j]/(u[j]*u[j])) * s0
				if rpu > zpu {
					c.add(sc, "the ends' resistance (%.4g p.u.) exceeds the leakage impedance (%.4g p.u.)", rpu, zpu)
					return nil, nil, 0, false
				}
				k := [2]int{min(i, j), max(i, j)}
				pairs[k] = true
				z[k] += complex(rpu, math.Sqrt(zpu*zpu-rpu*rpu)) / complex(float64(len(tanks)), 0)
			}
			for _, nl := range nlTests[e.id] {
				i0 += c.numOr(nl, "NoLoadTest.excitingCurrent", 0) / float64(len(tanks))
			}
		}
		for i := range te {
			for j := i + 1; j < len(te); j++ {
				if !pairs[[2]int{i, j}] {
					c.add(tk, "no ShortCircuitTest between ends %d and %d in its TransformerTankInfo: the impedance is missing", i+1, j+1)
					return nil, nil, 0, false
				}
			}
		}
	}
	for k := range ends {
		ends[k].tap /= float64(ends[k].taps)
		ends[k].taps = 1
		if ends[k].tap == 0 {
			ends[k].taps = 0
		}
	}
	// Banks of single-phase tanks: no vector-group shift (wye-wye); a
	// three-phase tank keeps its clock numbers.
	return ends, z, i0, true
}

func shiftDeg(clockHV, clockLV float64) float64 {
	d := math.Mod((clockLV-clockHV)*30, 360)
	if d > 180 {
		d -= 360
	} else if d <= -180 {
		d += 360
	}
	return d
}

func (c *cimImport) emitTransformer(pt *cimObj, ends []*cimEnd, z map[[2]int]complex128, i0, pfeKW float64) {
	sb := ends[0].va // the per-unit base of z
	switch len(ends) {
	case 2:
		hv, lv := ends[0], ends[1]
		if lv.kv > hv.kv {
			hv, lv = lv, hv
		}
		zz := z[[2]int{0, 1}]
		c.openTransformerEnds(pt.id, hv, lv)
		t := Transformer{ID: pt.id, HVBus: hv.bus, LVBus: lv.bus, SnMVA: sb / 1e6, VnHVKV: hv.kv, VnLVKV: lv.kv,
			VkPercent: cmplxAbs(zz) * 100, VkrPercent: real(zz) * 100, PfeKW: pfeKW, I0Percent: i0,
			ShiftDeg: shiftDeg(hv.clock, lv.clock)}
		if hv.taps > 0 && lv.taps > 0 {
			c.add(pt, "tap changers on both windings are not supported")
			return
		}
		if hv.taps > 0 {
			t.TapSide, t.TapPercent = "hv", hv.tap
		} else if lv.taps > 0 {
			t.TapSide, t.TapPercent = "lv", lv.tap
		}
		c.net.Trafos = append(c.net.Trafos, t)
	case 3:
		// Star equivalent: z1 = (z12 + z13 - z23)/2 and so on, around a
		// star-point bus at end 1's voltage.
		z12, z13, z23 := z[[2]int{0, 1}], z[[2]int{0, 2}], z[[2]int{1, 2}]
		star := []complex128{(z12 + z13 - z23) / 2, (z12 + z23 - z13) / 2, (z13 + z23 - z12) / 2}
		sp := pt.id + "-star"
		c.net.Buses = append(c.net.Buses, Bus{ID: sp, Name: pt.props["IdentifiedObject.name"].text + " star point", VnKV: ends[0].kv})
		for k, e := range ends {
			zk := star[k]
			if real(zk) < 0 || imag(zk) <= 0 {
				c.add(pt, "the three-winding star equivalent has a non-positive impedance at end %d (r=%.4g, x=%.4g p.u.): not supported", k+1, real(zk), imag(zk))
				return
			}
			scale := e.va / sb // per unit on this end's rating
			t := Transformer{ID: fmt.Sprintf("%s-end%d", pt.id, k+1), SnMVA: e.va / 1e6,
				VkPercent: cmplxAbs(zk) * scale * 100, VkrPercent: real(zk) * scale * 100}
			if k == 0 {
				t.HVBus, t.LVBus, t.VnHVKV, t.VnLVKV = e.bus, sp, e.kv, e.kv
				t.PfeKW, t.I0Percent = pfeKW, i0
				if e.taps > 0 {
					t.TapSide, t.TapPercent = "hv", e.tap
				}
			} else {
				t.HVBus, t.LVBus, t.VnHVKV, t.VnLVKV = sp, e.bus, ends[0].kv, e.kv
				t.ShiftDeg = shiftDeg(ends[0].clock, e.clock)
				if e.taps > 0 {
					t.TapSide, t.TapPercent = "lv", e.tap
				}
			}
			c.openTransformerEnds(t.ID, e)
			c.net.Trafos = append(c.net.Trafos, t)
		}
	default:
		c.add(pt, "has %d windings; two or three are supported", len(ends))
	}
}

// openTransformerEnds adds an open element switch on transformer id for
// each of the given windings whose terminal is disconnected.
func (c *cimImport) openTransformerEnds(id string, ends ...*cimEnd) {
	for _, e := range ends {
		if t := c.doc.objs[e.obj.props["TransformerEnd.Terminal"].ref]; t != nil {
			if v, ok := t.boolean("ACDCTerminal.connected"); ok && !v {
				c.net.Switches = append(c.net.Switches, Switch{ID: id + "-" + t.id, BusA: e.bus, Element: id, ElementKind: "trafo", Closed: false})
			}
		}
	}
}

func cmplxAbs(z complex128) float64 { return math.Hypot(real(z), imag(z)) }

// phaseSum returns the sum of a property over an element's phase objects,
// checked against the element's own total when both are given.
func (c *cimImport) phaseSum(o *cimObj, phases []*cimObj, prop, phaseProp string) (float64, bool) {
	total, hasTotal := c.scaled(o, prop, c.u.p)
	if len(phases) == 0 {
		return total, hasTotal
	}
	sum := 0.0
	for _, p := range phases {
		v, _ := c.scaled(p, phaseProp, c.u.p)
		sum += v
	}
	if hasTotal && math.Abs(total-sum) > 1e-6*math.Max(math.Abs(total), 1)+1e-3 {
		c.add(o, "%s %v disagrees with the sum %v of its phases", prop, total/c.u.p, sum/c.u.p)
	}
	return sum, true
}

// unitMultiplier is the factor of a UnitMultiplier enumeration value.
func unitMultiplier(v cimValue) (float64, bool) {
	f, ok := map[string]float64{"none": 1, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3, "c": 1e-2, "d": 1e-1}[enum(v)]
	return f, ok
}

func (c *cimImport) injections() {
	for _, o := range c.doc.byClass["EnergySource"] {
		ts := c.terminals(o, 1)
		if ts == nil || !inService(o) || !connected(ts) {
			continue
		}
		bus := c.busOf[ts[0].id]
		if !o.has("EnergySource.voltageMagnitude") && (o.has("EnergySource.activePower") || o.has("EnergySource.reactivePower")) {
			// A source with a power but no voltage (CGMES writes
			// SimBench's generators so): a static injection, load sign
			// convention in CIM (negative = generation).
			p, _ := c.scaled(o, "EnergySource.activePower", c.u.p)
			q, _ := c.scaled(o, "EnergySource.reactivePower", c.u.p)
			c.net.Gens = append(c.net.Gens, StaticGen{ID: o.id, Bus: bus, PMW: -p / 1e6, QMvar: -q / 1e6})
			continue
		}
		nom, ok := c.scaled(o, "EnergySource.nominalVoltage", c.u.v)
		if ok && !c.plausibleV(o, "nominalVoltage", nom) {
			continue
		}
		if !ok {
			if kv, ok2 := c.baseKV(o, "ConductingEquipment.BaseVoltage"); ok2 {
				nom = kv * 1000
			} else {
				nom = c.vn[bus] * 1000
			}
		}
		vm := 1.0
		if v, ok := c.scaled(o, "EnergySource.voltageMagnitude", c.u.v); ok {
			if !c.plausibleV(o, "voltageMagnitude", v) {
				continue
			}
			vm = v / nom
		}
		c.net.Slacks = append(c.net.Slacks, Slack{ID: o.id, Bus: bus, VmPU: vm,
			VaDeg: c.numOr(o, "EnergySource.voltageAngle", 0) * 180 / math.Pi})
	}
	// CGMES's external grid: a slack at its regulating control's target
	// voltage (targetValue times targetValueUnitMultiplier; the file's
	// voltage unit without a multiplier).
	for _, o := range c.doc.byClass["ExternalNetworkInjection"] {
		ts := c.terminals(o, 1)
		if ts == nil || !inService(o) || !connected(ts) {
			continue
		}
		bus := c.busOf[ts[0].id]
		rc := c.ref(o, "RegulatingCondEq.RegulatingControl", false, "RegulatingControl")
		var target float64
		var ok bool
		if rc != nil {
			f, okM := unitMultiplier(rc.props["RegulatingControl.targetValueUnitMultiplier"])
			if !okM {
				f = c.u.v
			}
			target, ok = c.scaled(rc, "RegulatingControl.targetValue", f)
		}
		if !ok {
			c.add(o, "no voltage set point (RegulatingControl.targetValue): an external grid needs one to be the slack")
			continue
		}
		if !c.plausibleV(o, "voltage set point", target) || c.vn[bus] <= 0 {
			continue
		}
		c.net.Slacks = append(c.net.Slacks, Slack{ID: o.id, Bus: bus, VmPU: target / (c.vn[bus] * 1000)})
	}
	ecPhases := c.refIndex("EnergyConsumerPhase", "EnergyConsumerPhase.EnergyConsumer")
	for _, cls := range []string{"EnergyConsumer", "ConformLoad", "NonConformLoad"} {
		for _, o := range c.doc.byClass[cls] {
			ts := c.terminals(o, 1)
			if ts == nil || !inService(o) || !connected(ts) {
				continue
			}
			p, okP := c.phaseSum(o, ecPhases[o.id], "EnergyConsumer.p", "EnergyConsumerPhase.p")
			q, _ := c.phaseSum(o, ecPhases[o.id], "EnergyConsumer.q", "EnergyConsumerPhase.q")
			if !okP {
				c.add(o, "active power p is missing")
				continue
			}
			c.net.Loads = append(c.net.Loads, Load{ID: o.id, Bus: c.busOf[ts[0].id], PMW: p / 1e6, QMvar: q / 1e6})
		}
	}
	for _, o := range c.doc.byClass["LinearShuntCompensator"] {
		ts := c.terminals(o, 1)
		if ts == nil || !inService(o) || !connected(ts) {
			continue
		}
		b, okB := c.num(o, "LinearShuntCompensator.bPerSection")
		if !okB {
			c.add(o, "bPerSection is missing")
			continue
		}
		g := c.numOr(o, "LinearShuntCompensator.gPerSection", 0)
		sections, ok := c.num(o, "ShuntCompensator.sections")
		if !ok {
			sections = c.numOr(o, "ShuntCompensator.normalSections", 1)
		}
		bus := c.busOf[ts[0].id]
		// b is per phase (wye equivalent): at the bus's nominal
		// line-to-line voltage Vn, k of three phases take k/3·b·Vn².
		k := 3.0
		if n := c.phaseCount[o.id]; n > 0 && n < 3 {
			k = float64(n)
		}
		v2 := c.vn[bus] * c.vn[bus] * k / 3 // kV² -> MW per S
		c.net.Shunts = append(c.net.Shunts, Shunt{ID: o.id, Bus: bus, PMW: g * sections * v2, QMvar: b * sections * v2})
	}
	pecPhases := c.refIndex("PowerElectronicsConnectionPhase", "PowerElectronicsConnectionPhase.PowerElectronicsConnection")
	for _, o := range c.doc.byClass["PowerElectronicsConnection"] {
		ts := c.terminals(o, 1)
		if ts == nil || !inService(o) || !connected(ts) {
			continue
		}
		p, okP := c.phaseSum(o, pecPhases[o.id], "PowerElectronicsConnection.p", "PowerElectronicsConnectionPhase.p")
		q, _ := c.phaseSum(o, pecPhases[o.id], "PowerElectronicsConnection.q", "PowerElectronicsConnectionPhase.q")
		if !okP {
			c.add(o, "active power p is missing")
			continue
		}
		// Generation positive, as GridAPPS-D writes it (a PV unit with
		// p > 0, a charging battery with p < 0).
		c.net.Gens = append(c.net.Gens, StaticGen{ID: o.id, Bus: c.busOf[ts[0].id], PMW: p / 1e6, QMvar: q / 1e6})
	}
}
