package grid

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// xmlObj is one top-level RDF object as the test reads it, independently of
// the importer: its class, its about attribute and its properties (text or
// rdf:resource).
type xmlObj struct {
	class, about string
	props        map[string]string
}

func readXMLObjects(t *testing.T, data []byte) []xmlObj {
	t.Helper()
	var doc struct {
		Objs []struct {
			XMLName xml.Name
			About   string `xml:"about,attr"`
			Props   []struct {
				XMLName  xml.Name
				Resource string `xml:"resource,attr"`
				Text     string `xml:",chardata"`
			} `xml:",any"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []xmlObj
	for _, o := range doc.Objs {
		x := xmlObj{class: o.XMLName.Local, about: strings.TrimPrefix(o.About, "urn:uuid:"), props: map[string]string{}}
		for _, p := range o.Props {
			v := p.Text
			if p.Resource != "" {
				v = strings.TrimPrefix(p.Resource, "urn:uuid:")
			}
			x.props[p.XMLName.Local] = v
		}
		out = append(out, x)
	}
	return out
}

func cimFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gridsDir(t), "cim_xml", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readCIMBytes(b []byte) (*Network, error) { return ReadCIM(strings.NewReader(string(b))) }

func fnum(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// TestCIMImportCounts imports the three files and checks the model against
// counts and totals taken straight from the XML.
func TestCIMImportCounts(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(gridsDir(t), "..", "..", "conformance", "cim-grid", "IEEE13.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"IEEE13.xml", cimFile(t, "IEEE13.xml")}, {"IEEE123.xml", cimFile(t, "IEEE123.xml")}, {"conformance IEEE13.xml", conf}} {
		t.Run(f.name, func(t *testing.T) {
			n, err := readCIMBytes(f.data)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Validate(); err != nil {
				t.Fatal(err)
			}
			objs := readXMLObjects(t, f.data)
			count := map[string]int{}
			var loadW, loadVar, genW, lengthM, shuntVar float64
			endsOf := map[string]int{} // PowerTransformer or TransformerTank -> ends
			tankOf := map[string]string{}
			for _, o := range objs {
				count[o.class]++
				switch o.class {
				case "EnergyConsumer":
					loadW += fnum(t, o.props["EnergyConsumer.p"])
					loadVar += fnum(t, o.props["EnergyConsumer.q"])
				case "PowerElectronicsConnection":
					genW += fnum(t, o.props["PowerElectronicsConnection.p"])
				case "ACLineSegment":
					lengthM += fnum(t, o.props["Conductor.length"])
				case "LinearShuntCompensator":
					// Rated reactive power b·U² at the bank's own nomU (line-to-line
					// for three phases, phase voltage for a single phase).
					u := fnum(t, o.props["ShuntCompensator.nomU"])
					shuntVar += fnum(t, o.props["LinearShuntCompensator.bPerSection"]) * fnum(t, o.props["ShuntCompensator.sections"]) * u * u
				case "PowerTransformerEnd":
					endsOf[o.props["PowerTransformerEnd.PowerTransformer"]]++
				case "TransformerTankEnd":
					endsOf[o.props["TransformerTankEnd.TransformerTank"]]++
				case "TransformerTank":
					tankOf[o.about] = o.props["TransformerTank.PowerTransformer"]
				}
			}
			// A bank's winding count is that of one of its tanks.
			windings := map[string]int{}
			for id, k := range endsOf {
				if pt, ok := tankOf[id]; ok {
					id = pt
				}
				windings[id] = k
			}
			trafos, starBuses := 0, 0
			for _, k := range windings {
				if k == 3 {
					trafos += 3
					starBuses++
				} else {
					trafos++
				}
			}
			switches := 0
			for _, c := range []string{"Breaker", "Fuse", "LoadBreakSwitch", "Recloser", "Switch", "Disconnector"} {
				switches += count[c]
			}
			for _, c := range []struct {
				what      string
				got, want int
			}{
				{"buses (connectivity nodes + star points)", len(n.Buses), count["ConnectivityNode"] + starBuses},
				{"lines", len(n.Lines), count["ACLineSegment"]},
				{"transformers", len(n.Trafos), trafos},
				{"switches", len(n.Switches), switches},
				{"loads", len(n.Loads), count["EnergyConsumer"]},
				{"generators", len(n.Gens), count["PowerElectronicsConnection"]},
				{"shunts", len(n.Shunts), count["LinearShuntCompensator"]},
				{"slacks", len(n.Slacks), count["EnergySource"]},
			} {
				if c.got != c.want {
					t.Errorf("%s: imported %d, the file has %d", c.what, c.got, c.want)
				}
			}
			var p, q, g, l, s float64
			for _, x := range n.Loads {
				p, q = p+x.PMW, q+x.QMvar
			}
			for _, x := range n.Gens {
				g += x.PMW
			}
			for _, x := range n.Lines {
				l += x.LengthKM
			}
			for _, x := range n.Shunts {
				s += x.QMvar
			}
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"load MW", p, loadW / 1e6}, {"load Mvar", q, loadVar / 1e6}, {"generation MW", g, genW / 1e6},
				{"line km", l, lengthM / 1000}, {"capacitor Mvar", s, shuntVar / 1e6},
			} {
				// Capacitors: the model states Q at the bus's nominal voltage, the
				// file at the bank's nomU (2402 V vs 4160/√3 = 2401.8 V on IEEE123).
				if math.Abs(c.got-c.want) > 1e-9+5e-4*math.Abs(c.want) {
					t.Errorf("%s: imported %.6f, the file has %.6f", c.what, c.got, c.want)
				}
			}
			t.Logf("%d buses, %d lines, %d transformers, %d switches, %d loads (%.3f MW, %.3f Mvar), %d generators, %d shunts (%.3f Mvar)",
				len(n.Buses), len(n.Lines), len(n.Trafos), len(n.Switches), len(n.Loads), p, q, len(n.Gens), len(n.Shunts), s)
		})
	}
}

// TestCIMIEEE13Mapping checks individual elements against the IEEE 13-node
// data the file encodes (values from the feeder's definition, not from
// the importer).
func TestCIMIEEE13Mapping(t *testing.T) {
	n, err := readCIMBytes(cimFile(t, "IEEE13.xml"))
	if err != nil {
		t.Fatal(err)
	}
	name := map[string]string{}
	for _, b := range n.Buses {
		name[b.ID] = b.Name
	}
	// Line 650-632: configuration 601, 2000 ft. IEEE's 601 matrix (ohm/mile):
	// diagonal 0.3465+j1.0179, 0.3375+j1.0478, 0.3414+j1.0348; off-diagonal
	// 0.1580+j0.4236, 0.1535+j0.3849, 0.1560+j0.5017.
	zs := complex((0.3465+0.3375+0.3414)/3, (1.0179+1.0478+1.0348)/3)
	zm := complex((0.1580+0.1535+0.1560)/3, (0.4236+0.3849+0.5017)/3)
	z1 := (zs - zm) / 1.609344 // ohm/km
	var found bool
	for _, l := range n.Lines {
		if name[l.FromBus] == "rg60" && name[l.ToBus] == "632" {
			found = true
			if math.Abs(l.LengthKM-0.6096) > 1e-9 || math.Abs(l.ROhmPerKM-real(z1)) > 1e-4 || math.Abs(l.XOhmPerKM-imag(z1)) > 1e-4 || math.Abs(l.MaxIKA-0.730) > 1e-9 {
				t.Errorf("line 650-632: %+v, want 0.6096 km, z1 %.4f ohm/km, 0.730 kA", l, z1)
			}
		}
		// 684-652 is single-phase (configuration 607): three times its
		// self impedance, a third of its rating.
		if name[l.FromBus] == "684" && name[l.ToBus] == "652" {
			want := 3 * complex(1.3425, 0.5124) / 1.609344
			if math.Abs(l.ROhmPerKM-real(want)) > 1e-3 || math.Abs(l.XOhmPerKM-imag(want)) > 1e-3 || math.Abs(l.MaxIKA-0.165/3) > 1e-9 {
				t.Errorf("line 684-652: %+v, want z %.4f ohm/km, %.4f kA", l, want, 0.165/3)
			}
		}
	}
	if !found {
		t.Error("line 650-632 not found")
	}
	// XFM-1: 500 kVA 4.16/0.48 kV, R = 1.1 %, X = 2 %.
	// Regulator bank: 3 x 1666 kVA, taps 10, 8, 11 of 0.625 %: 6.0417 % on
	// average, on the regulated (second) winding.
	for _, tr := range n.Trafos {
		switch {
		case name[tr.HVBus] == "xf1":
			if tr.SnMVA != 0.5 || tr.VnHVKV != 4.16 || tr.VnLVKV != 0.48 || math.Abs(tr.VkrPercent-1.1) > 1e-6 || math.Abs(tr.VkPercent-math.Hypot(1.1, 2)) > 1e-6 {
				t.Errorf("XFM-1: %+v", tr)
			}
		case name[tr.HVBus] == "brkr":
			if math.Abs(tr.SnMVA-4.998) > 1e-9 || tr.TapSide != "lv" || math.Abs(tr.TapPercent-(10+8+11)/3.0*0.625) > 1e-9 || name[tr.LVBus] != "rg60" {
				t.Errorf("regulator: %+v", tr)
			}
		}
	}
	// Voltage bands: ANSI C84.1 range A (the longest-duration limits),
	// 3952..4368 V at 4.16 kV.
	for _, b := range n.Buses {
		if b.Name == "671" && (math.Abs(b.VMinPU-0.95) > 1e-9 || math.Abs(b.VMaxPU-1.05) > 1e-9) {
			t.Errorf("bus 671 band [%v, %v], want [0.95, 1.05]", b.VMinPU, b.VMaxPU)
		}
	}
	// Capacitors: 600 kvar at 675, 100 kvar on phase C at 611.
	caps := map[string]float64{}
	for _, s := range n.Shunts {
		caps[name[s.Bus]] = s.QMvar
	}
	if math.Abs(caps["675"]-0.6) > 1e-3 || math.Abs(caps["611"]-0.1) > 1e-3 {
		t.Errorf("capacitors %v, want 0.6 Mvar at 675 and 0.1 at 611", caps)
	}
	// The source: 115 kV at 30° (OpenDSS's advance so that 650 is at 0°
	// behind the Dyn1 substation transformer).
	if s := n.Slacks[0]; name[s.Bus] != "sourcebus" || s.VmPU != 1 || math.Abs(s.VaDeg-30) > 1e-5 {
		t.Errorf("slack %+v", s)
	}
}

// mutate returns the IEEE13 file with one replacement made (which must
// apply).
func mutate(t *testing.T, old, new string) []byte {
	t.Helper()
	s := string(cimFile(t, "IEEE13.xml"))
	if !strings.Contains(s, old) {
		t.Fatalf("test setup: %q not in the file", old)
	}
	return []byte(strings.Replace(s, old, new, 1))
}

func appendObjects(t *testing.T, objs string) []byte {
	return mutate(t, "</rdf:RDF>", objs+"\n</rdf:RDF>")
}

// withoutSource is IEEE13 with its EnergySource and that source's terminal
// cut out.
func withoutSource(t *testing.T) []byte {
	s := string(cimFile(t, "IEEE13.xml"))
	for _, cut := range []struct{ open, name, close string }{
		{"<cim:EnergySource rdf:about=", "", "</cim:EnergySource>"},
		{"<cim:Terminal rdf:about=", "source_T1", "</cim:Terminal>"},
	} {
		i := 0
		for {
			j := strings.Index(s[i:], cut.open)
			if j < 0 {
				t.Fatalf("test setup: %s %s not found", cut.open, cut.name)
			}
			start := i + j
			end := start + strings.Index(s[start:], cut.close) + len(cut.close)
			if strings.Contains(s[start:end], cut.name) {
				s = s[:start] + s[end:]
				break
			}
			i = end
		}
	}
	return []byte(s)
}

func TestCIMBadInput(t *testing.T) {
	full := cimFile(t, "IEEE13.xml")
	for _, c := range []struct {
		name string
		doc  []byte
		want []string
		// structured: the error is a *ValidationError (element problems)
		structured bool
	}{
		{"truncated", full[:len(full)/2], []string{"malformed RDF/XML at line"}, false},
		{"not RDF", []byte(`<?xml version="1.0"?><feeder/>`), []string{"not rdf:RDF"}, false},
		{"empty", []byte(``), []string{"no rdf:RDF element"}, false},
		{"duplicate identifier", appendObjects(t, `<cim:ConnectivityNode rdf:about="urn:uuid:7BEDDADD-0A14-429F-8601-9EA8B892CA6E"/>`),
			[]string{"same identifier", "7BEDDADD-0A14-429F-8601-9EA8B892CA6E"}, false},
		{"dangling reference",
			mutate(t, `<cim:Terminal.ConnectivityNode rdf:resource="urn:uuid:63DFBEA0-CD06-4D2E-B956-DF9517BE057B"/>`,
				`<cim:Terminal.ConnectivityNode rdf:resource="urn:uuid:00000000-DEAD-BEEF-0000-000000000000"/>`),
			[]string{`CIM Terminal "`, "Terminal.ConnectivityNode refers to \"00000000-DEAD-BEEF-0000-000000000000\"", "dangling"}, true},
		{"missing impedance",
			mutate(t, `<cim:ACLineSegment.PerLengthImpedance rdf:resource="urn:uuid:50044320-7295-4591-B39E-F793F1923098"/>`, ``),
			[]string{`CIM ACLineSegment "650632"`, "no impedance"}, true},
		{"element without terminals",
			appendObjects(t, `<cim:EnergyConsumer rdf:about="urn:uuid:11111111-2222-3333-4444-555555555555">
  <cim:IdentifiedObject.name>orphan</cim:IdentifiedObject.name>
  <cim:EnergyConsumer.p>1000</cim:EnergyConsumer.p>
</cim:EnergyConsumer>`),
			[]string{`CIM EnergyConsumer "orphan" (mRID 11111111-2222-3333-4444-555555555555)`, "no terminals"}, true},
		{"unsupported power class",
			appendObjects(t, `<cim:SynchronousMachine rdf:about="urn:uuid:11111111-2222-3333-4444-666666666666">
  <cim:IdentifiedObject.name>diesel</cim:IdentifiedObject.name>
  <cim:RotatingMachine.p>300000</cim:RotatingMachine.p>
</cim:SynchronousMachine>
<cim:Terminal rdf:about="urn:uuid:11111111-2222-3333-4444-777777777777">
  <cim:Terminal.ConductingEquipment rdf:resource="urn:uuid:11111111-2222-3333-4444-666666666666"/>
  <cim:Terminal.ConnectivityNode rdf:resource="urn:uuid:63DFBEA0-CD06-4D2E-B956-DF9517BE057B"/>
</cim:Terminal>`),
			[]string{`CIM SynchronousMachine "diesel"`, "SynchronousMachine is not supported"}, true},
		{"voltage in kV",
			mutate(t, `<cim:BaseVoltage.nominalVoltage>4160</cim:BaseVoltage.nominalVoltage>`, `<cim:BaseVoltage.nominalVoltage>4.16</cim:BaseVoltage.nominalVoltage>`),
			[]string{`CIM BaseVoltage "BaseV_4.1600"`, "4.16 V is not plausible", "written in kV"}, true},
		{"not a number",
			mutate(t, `<cim:Conductor.length>609.6</cim:Conductor.length>`, `<cim:Conductor.length>609,6</cim:Conductor.length>`),
			[]string{`CIM ACLineSegment "650632"`, `Conductor.length "609,6" is not a number`}, true},
		{"transformer without short-circuit test",
			mutate(t, `<cim:ShortCircuitTest.EnergisedEnd rdf:resource="urn:uuid:E5816653-354B-4A9B-B3C6-52AF94318954"/>`, ``),
			[]string{`CIM TransformerTank "reg1"`, "no ShortCircuitTest between ends 1 and 2", "impedance is missing"}, true},
		{"switch open on one phase only",
			mutate(t, `<cim:SwitchPhase.closed>true</cim:SwitchPhase.closed>`, `<cim:SwitchPhase.closed>false</cim:SwitchPhase.closed>`),
			[]string{`CIM SwitchPhase "sect1_C"`, "is open while its switch is closed"}, true},
		{"no source", withoutSource(t), []string{"no EnergySource (or ExternalNetworkInjection) in the file"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := readCIMBytes(c.doc)
			if err == nil {
				t.Fatalf("no error; imported %d buses", len(n.Buses))
			}
			if n != nil {
				t.Error("a network came back with the error")
			}
			var ve *ValidationError
			if errors.As(err, &ve) != c.structured {
				t.Errorf("error type %T, structured=%v wanted", err, c.structured)
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A small hand-written CIM16-style document (rdf:ID and "#_" references)
// exercising the paths the IEEE files do not: sequence impedances, r/x
// totals on the segment, star impedances on PowerTransformerEnds (no mesh),
// a switch whose open state overrides normalOpen, a disconnected terminal,
// equipment out of service.
const smallCIM = `<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:cim="http://iec.ch/TC57/2013/CIM-schema-cim16#">
<cim:BaseVoltage rdf:ID="_bv20"><cim:BaseVoltage.nominalVoltage>20000</cim:BaseVoltage.nominalVoltage></cim:BaseVoltage>
<cim:BaseVoltage rdf:ID="_bv04"><cim:BaseVoltage.nominalVoltage>400</cim:BaseVoltage.nominalVoltage></cim:BaseVoltage>
<cim:ConnectivityNode rdf:ID="_n1"><cim:IdentifiedObject.name>n1</cim:IdentifiedObject.name></cim:ConnectivityNode>
<cim:ConnectivityNode rdf:ID="_n2"><cim:IdentifiedObject.name>n2</cim:IdentifiedObject.name></cim:ConnectivityNode>
<cim:ConnectivityNode rdf:ID="_n3"><cim:IdentifiedObject.name>n3</cim:IdentifiedObject.name></cim:ConnectivityNode>
<cim:ConnectivityNode rdf:ID="_n4"><cim:IdentifiedObject.name>n4</cim:IdentifiedObject.name></cim:ConnectivityNode>
<cim:ConnectivityNode rdf:ID="_lv"><cim:IdentifiedObject.name>lv</cim:IdentifiedObject.name></cim:ConnectivityNode>
<cim:EnergySource rdf:ID="_src">
  <cim:ConductingEquipment.BaseVoltage rdf:resource="#_bv20"/>
  <cim:EnergySource.nominalVoltage>20000</cim:EnergySource.nominalVoltage>
  <cim:EnergySource.voltageMagnitude>20400</cim:EnergySource.voltageMagnitude>
</cim:EnergySource>
<cim:Terminal rdf:ID="_src_t"><cim:Terminal.ConductingEquipment rdf:resource="#_src"/><cim:Terminal.ConnectivityNode rdf:resource="#_n1"/></cim:Terminal>
<cim:PerLengthSequenceImpedance rdf:ID="_seq">
  <cim:PerLengthSequenceImpedance.r>0.0002</cim:PerLengthSequenceImpedance.r>
  <cim:PerLengthSequenceImpedance.x>0.0003</cim:PerLengthSequenceImpedance.x>
  <cim:PerLengthSequenceImpedance.bch>2E-9</cim:PerLengthSequenceImpedance.bch>
</cim:PerLengthSequenceImpedance>
<cim:ACLineSegment rdf:ID="_l1">
  <cim:IdentifiedObject.name>l1</cim:IdentifiedObject.name>
  <cim:ConductingEquipment.BaseVoltage rdf:resource="#_bv20"/>
  <cim:Conductor.length>2000</cim:Conductor.length>
  <cim:ACLineSegment.PerLengthImpedance rdf:resource="#_seq"/>
</cim:ACLineSegment>
<cim:Terminal rdf:ID="_l1_t2"><cim:ACDCTerminal.sequenceNumber>2</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_l1"/><cim:Terminal.ConnectivityNode rdf:resource="#_n2"/></cim:Terminal>
<cim:Terminal rdf:ID="_l1_t1"><cim:ACDCTerminal.sequenceNumber>1</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_l1"/><cim:Terminal.ConnectivityNode rdf:resource="#_n1"/></cim:Terminal>
<cim:ACLineSegment rdf:ID="_l2">
  <cim:ConductingEquipment.BaseVoltage rdf:resource="#_bv20"/>
  <cim:Conductor.length>1000</cim:Conductor.length>
  <cim:ACLineSegment.r>0.5</cim:ACLineSegment.r>
  <cim:ACLineSegment.x>0.4</cim:ACLineSegment.x>
</cim:ACLineSegment>
<cim:Terminal rdf:ID="_l2_t1"><cim:ACDCTerminal.sequenceNumber>1</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_l2"/><cim:Terminal.ConnectivityNode rdf:resource="#_n2"/></cim:Terminal>
<cim:Terminal rdf:ID="_l2_t2"><cim:ACDCTerminal.sequenceNumber>2</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_l2"/><cim:Terminal.ConnectivityNode rdf:resource="#_n3"/></cim:Terminal>
<cim:ACLineSegment rdf:ID="_l3">
  <cim:ConductingEquipment.BaseVoltage rdf:resource="#_bv20"/>
  <cim:Conductor.length>500</cim:Conductor.length>
  <cim:ACLineSegment.r>1</cim:ACLineSegment.r>
  <cim:ACLineSegment.x>1</cim:ACLineSegment.x>
</cim:ACLineSegment>
<cim:Terminal rdf:ID="_l3_t1"><cim:ACDCTerminal.sequenceNumber>1</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_l3"/><cim:Terminal.ConnectivityNode rdf:resource="#_n2"/></cim:Terminal>
<cim:Terminal rdf:ID="_l3_t2"><cim:ACDCTerminal.sequenceNumber>2</cim:ACDCTerminal.sequenceNumber><cim:ACDCTerminal.connected>false</cim:ACDCTerminal.connected><cim:Terminal.ConductingEquipment rdf:resource="#_l3"/><cim:Terminal.ConnectivityNode rdf:resource="#_n3"/></cim:Terminal>
<cim:Breaker rdf:ID="_b1">
  <cim:Switch.normalOpen>true</cim:Switch.normalOpen>
  <cim:Switch.open>false</cim:Switch.open>
</cim:Breaker>
<cim:Terminal rdf:ID="_b1_t1"><cim:ACDCTerminal.sequenceNumber>1</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_b1"/><cim:Terminal.ConnectivityNode rdf:resource="#_n3"/></cim:Terminal>
<cim:Terminal rdf:ID="_b1_t2"><cim:ACDCTerminal.sequenceNumber>2</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_b1"/><cim:Terminal.ConnectivityNode rdf:resource="#_n4"/></cim:Terminal>
<cim:PowerTransformer rdf:ID="_t1"><cim:IdentifiedObject.name>t1</cim:IdentifiedObject.name></cim:PowerTransformer>
<cim:Terminal rdf:ID="_t1_t1"><cim:ACDCTerminal.sequenceNumber>1</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_t1"/><cim:Terminal.ConnectivityNode rdf:resource="#_n4"/></cim:Terminal>
<cim:Terminal rdf:ID="_t1_t2"><cim:ACDCTerminal.sequenceNumber>2</cim:ACDCTerminal.sequenceNumber><cim:Terminal.ConductingEquipment rdf:resource="#_t1"/><cim:Terminal.ConnectivityNode rdf:resource="#_lv"/></cim:Terminal>
<cim:PowerTransformerEnd rdf:ID="_e1">
  <cim:PowerTransformerEnd.PowerTransformer rdf:resource="#_t1"/><cim:TransformerEnd.Terminal rdf:resource="#_t1_t1"/>
  <cim:TransformerEnd.endNumber>1</cim:TransformerEnd.endNumber><cim:TransformerEnd.BaseVoltage rdf:resource="#_bv20"/>
  <cim:PowerTransformerEnd.ratedU>20000</cim:PowerTransformerEnd.ratedU><cim:PowerTransformerEnd.ratedS>400000</cim:PowerTransformerEnd.ratedS>
  <cim:PowerTransformerEnd.r>4</cim:PowerTransformerEnd.r><cim:PowerTransformerEnd.x>40</cim:PowerTransformerEnd.x>
</cim:PowerTransformerEnd>
<cim:PowerTransformerEnd rdf:ID="_e2">
  <cim:PowerTransformerEnd.PowerTransformer rdf:resource="#_t1"/><cim:TransformerEnd.Terminal rdf:resource="#_t1_t2"/>
  <cim:TransformerEnd.endNumber>2</cim:TransformerEnd.endNumber><cim:TransformerEnd.BaseVoltage rdf:resource="#_bv04"/>
  <cim:PowerTransformerEnd.ratedU>400</cim:PowerTransformerEnd.ratedU><cim:PowerTransformerEnd.ratedS>400000</cim:PowerTransformerEnd.ratedS>
  <cim:PowerTransformerEnd.r>0.0016</cim:PowerTransformerEnd.r><cim:PowerTransformerEnd.x>0.016</cim:PowerTransformerEnd.x>
  <cim:PowerTransformerEnd.phaseAngleClock>5</cim:PowerTransformerEnd.phaseAngleClock>
</cim:PowerTransformerEnd>
<cim:EnergyConsumer rdf:ID="_ld"><cim:ConductingEquipment.BaseVoltage rdf:resource="#_bv04"/><cim:EnergyConsumer.p>100000</cim:EnergyConsumer.p><cim:EnergyConsumer.q>20000</cim:EnergyConsumer.q></cim:EnergyConsumer>
<cim:Terminal rdf:ID="_ld_t"><cim:Terminal.ConductingEquipment rdf:resource="#_ld"/><cim:Terminal.ConnectivityNode rdf:resource="#_lv"/></cim:Terminal>
<cim:EnergyConsumer rdf:ID="_off"><cim:Equipment.inService>false</cim:Equipment.inService><cim:EnergyConsumer.p>5E6</cim:EnergyConsumer.p></cim:EnergyConsumer>
<cim:Terminal rdf:ID="_off_t"><cim:Terminal.ConductingEquipment rdf:resource="#_off"/><cim:Terminal.ConnectivityNode rdf:resource="#_lv"/></cim:Terminal>
<cim:LinearShuntCompensator rdf:ID="_c1">
  <cim:ConductingEquipment.BaseVoltage rdf:resource="#_bv20"/>
  <cim:LinearShuntCompensator.bPerSection>1E-4</cim:LinearShuntCompensator.bPerSection>
  <cim:ShuntCompensator.normalSections>2</cim:ShuntCompensator.normalSections>
</cim:LinearShuntCompensator>
<cim:Terminal rdf:ID="_c1_t"><cim:Terminal.ConductingEquipment rdf:resource="#_c1"/><cim:Terminal.ConnectivityNode rdf:resource="#_n2"/></cim:Terminal>
</rdf:RDF>`

func TestCIMSmallDocument(t *testing.T) {
	n, err := ReadCIM(strings.NewReader(smallCIM))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	if len(n.Buses) != 5 || len(n.Lines) != 3 || len(n.Trafos) != 1 || len(n.Loads) != 1 || len(n.Shunts) != 1 || len(n.Slacks) != 1 {
		t.Fatalf("imported %d buses, %d lines, %d trafos, %d loads, %d shunts, %d slacks", len(n.Buses), len(n.Lines), len(n.Trafos), len(n.Loads), len(n.Shunts), len(n.Slacks))
	}
	l1, l2, l3 := n.Lines[0], n.Lines[1], n.Lines[2]
	// Sequence impedance per m -> per km; terminals ordered by sequence number.
	if l1.ID != "_l1" || l1.FromBus != "_n1" || l1.ToBus != "_n2" {
		t.Errorf("l1 %+v", l1)
	}
	near("l1 km", l1.LengthKM, 2)
	near("l1 r", l1.ROhmPerKM, 0.2)
	near("l1 x", l1.XOhmPerKM, 0.3)
	near("l1 b", l1.BMicroSPerKM, 2)
	// Totals on the segment divided by its length.
	near("l2 r", l2.ROhmPerKM, 0.5)
	near("l2 x", l2.XOhmPerKM, 0.4)
	near("l3 r", l3.ROhmPerKM, 2)
	// l3's second terminal is disconnected: an open switch at n3 on l3;
	// the breaker is closed (open=false overrides normalOpen=true).
	var openEnd, breaker bool
	for _, s := range n.Switches {
		if s.Element == "_l3" && s.BusA == "_n3" && !s.Closed {
			openEnd = true
		}
		if s.ID == "_b1" && s.Element == "" && s.Closed && s.BusA == "_n3" && s.BusB == "_n4" {
			breaker = true
		}
	}
	if !openEnd || !breaker {
		t.Errorf("switches %+v: want l3 open at n3 and breaker b1 closed", n.Switches)
	}
	// Star impedances: 4+j40 ohm at 20 kV and 0.0016+j0.016 ohm at 0.4 kV on
	// 400 kVA are 0.4 %+j4 % each.
	tr := n.Trafos[0]
	if tr.HVBus != "_n4" || tr.LVBus != "_lv" || tr.VnHVKV != 20 || tr.VnLVKV != 0.4 || tr.SnMVA != 0.4 || tr.ShiftDeg != 150 {
		t.Errorf("transformer %+v", tr)
	}
	near("vkr", tr.VkrPercent, 0.8)
	near("vk", tr.VkPercent, math.Hypot(0.8, 8))
	near("slack", n.Slacks[0].VmPU, 1.02)
	near("load", n.Loads[0].PMW, 0.1)
	// b·sections·U² = 1e-4·2·20² MVA.
	near("capacitor", n.Shunts[0].QMvar, 0.08)

	// The transformer's LV terminal disconnected: an open switch on it
	// (and the LV side an island, which Validate names).
	d := strings.Replace(smallCIM, `<cim:Terminal rdf:ID="_t1_t2">`, `<cim:Terminal rdf:ID="_t1_t2"><cim:ACDCTerminal.connected>false</cim:ACDCTerminal.connected>`, 1)
	n, err = ReadCIM(strings.NewReader(d))
	if err != nil {
		t.Fatal(err)
	}
	var open bool
	for _, s := range n.Switches {
		open = open || (s.Element == "_t1" && s.ElementKind == "trafo" && s.BusA == "_lv" && !s.Closed)
	}
	if !open {
		t.Errorf("switches %+v: want the transformer open at lv", n.Switches)
	}
	wantAll(t, problems(t, n), `island of 1 bus(es) not connected to any slack`, `"_lv"`)
}

func TestCGMESImportCounts(t *testing.T) {
	z, err := zip.OpenReader(filepath.Join(gridsDir(t), "cgmes", "SimBench_1-HVMV-mixed-1.105-0-sw_modified.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	n, err := ReadCGMES(z)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	f, err := z.Open("_eq.xml")
	if err != nil {
		t.Fatal(err)
	}
	eq, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, o := range readXMLObjects(t, eq) {
		count[o.class]++
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"buses", len(n.Buses), count["ConnectivityNode"]},
		{"lines", len(n.Lines), count["ACLineSegment"]},
		{"transformers", len(n.Trafos), count["PowerTransformer"]},
		{"switches", len(n.Switches), count["Breaker"] + count["LoadBreakSwitch"] + count["Disconnector"]},
		{"loads", len(n.Loads), count["EnergyConsumer"]},
		{"generators (EnergySource with a power, no voltage)", len(n.Gens), count["EnergySource"]},
		{"slacks (ExternalNetworkInjection)", len(n.Slacks), count["ExternalNetworkInjection"]},
	} {
		if c.got != c.want {
			t.Errorf("%s: imported %d, EQ has %d", c.what, c.got, c.want)
		}
	}
	// Every line has a CurrentLimit on its terminals (A -> kA).
	for _, l := range n.Lines {
		if l.MaxIKA <= 0 || l.MaxIKA > 5 {
			t.Errorf("line %s: rating %v kA", l.ID, l.MaxIKA)
		}
	}
	// Units: CGMES gives kV; the 20 kV buses must come out at 20 kV.
	seen := map[float64]int{}
	for _, b := range n.Buses {
		seen[b.VnKV]++
	}
	if seen[20] == 0 || seen[110] == 0 || len(seen) != 4 {
		t.Errorf("nominal voltages %v, want the file's four levels incl. 20 and 110 kV", seen)
	}
	t.Logf("%d buses, %d lines, %d transformers, %d switches, %d loads, %d generators, %d slacks; voltage levels %v",
		len(n.Buses), len(n.Lines), len(n.Trafos), len(n.Switches), len(n.Loads), len(n.Gens), len(n.Slacks), seen)
}

func TestCGMESBadInput(t *testing.T) {
	if _, err := ReadCGMES(fstest.MapFS{"readme.txt": {Data: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "no .xml profile files") {
		t.Errorf("empty: %v", err)
	}
	bad := fstest.MapFS{"_eq.xml": {Data: []byte(smallCIM)}, "_ssh.xml": {Data: []byte(`<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:cim="x"><cim:ACLineSegment rdf:about="#_l1"><cim:Conductor.length>2`)}}
	if _, err := ReadCGMES(bad); err == nil || !strings.Contains(err.Error(), "_ssh.xml: malformed RDF/XML") {
		t.Errorf("truncated profile: %v", err)
	}
	// A class clash between profiles is an error, not a merge.
	clash := fstest.MapFS{"_eq.xml": {Data: []byte(smallCIM)}, "_tp.xml": {Data: []byte(`<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:cim="x"><cim:Breaker rdf:about="#_l1"/></rdf:RDF>`)}}
	if _, err := ReadCGMES(clash); err == nil || !strings.Contains(err.Error(), `same identifier "_l1"`) {
		t.Errorf("class clash: %v", err)
	}
	// The small document read as CGMES: its numbers are now kV and MW, so
	// a 20000 "kV" bus is caught by the model's plausibility check.
	n, err := ReadCGMES(fstest.MapFS{"_eq.xml": {Data: []byte(smallCIM)}})
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, problems(t, n), "nominal voltage 20000 kV is not plausible", "was it given in volts?")
}
