// Package grid is flexhub's electrical network model for distribution
// (and small transmission) grids: buses, lines and cables, two-winding
// transformers, switches, slack (external grid) connections, loads,
// static generators and shunts. It validates a model and imports the
// pandapower JSON, SimBench CSV and IEC CIM RDF/XML (CDPSM) formats. It
// does no I/O of its own: importers read from an io.Reader or an fs.FS the
// caller opens.
//
// Units are in the field names: kV, MW, Mvar, MVA, kA, ohm, µS, km, p.u.
package grid

// Network is one grid model. Element IDs are unique per element kind.
type Network struct {
	Name string
	// BaseMVA is the three-phase power base of the per-unit system
	// (pandapower's sn_mva); 1 MVA when zero.
	BaseMVA     float64
	FrequencyHz float64

	Buses    []Bus
	Lines    []Line
	Trafos   []Transformer
	Switches []Switch
	Slacks   []Slack
	Loads    []Load
	Gens     []StaticGen
	Shunts   []Shunt
}

// Bus is a node of the grid at a nominal voltage.
type Bus struct {
	ID   string
	Name string
	VnKV float64 // nominal line-to-line voltage
	// Voltage band for limit checks; zero means unset.
	VMinPU, VMaxPU float64
}

// Line is a line or cable between two buses at the same nominal voltage,
// given per km (R, X, B per km and length). Parallel identical systems
// are folded in: Parallel >= 1.
type Line struct {
	ID           string
	FromBus      string
	ToBus        string
	LengthKM     float64
	ROhmPerKM    float64
	XOhmPerKM    float64
	BMicroSPerKM float64 // total shunt susceptance per km (ωC)
	GMicroSPerKM float64
	Parallel     int
	// Thermal rating of the whole (parallel) line: MaxIKA if positive,
	// else RatedMVA at the from bus's nominal voltage; zero = unrated.
	MaxIKA   float64
	RatedMVA float64
}

// Transformer is a two-winding transformer with its nameplate data. The
// off-nominal tap is a voltage change in percent on TapSide ("hv" or
// "lv"); ShiftDeg is the phase shift (LV lags HV by ShiftDeg).
type Transformer struct {
	ID         string
	HVBus      string
	LVBus      string
	SnMVA      float64 // rating (all parallel units together)
	VnHVKV     float64
	VnLVKV     float64
	VkPercent  float64 // short-circuit voltage
	VkrPercent float64 // its real part (copper losses)
	PfeKW      float64 // iron losses
	I0Percent  float64 // no-load current
	ShiftDeg   float64
	TapSide    string
	TapPercent float64
}

// Switch is either a bus-bus switch (Element empty: closed means BusA and
// BusB are one electrical node) or a switch at BusA on the end of a line
// or transformer named by Element/ElementKind ("line" or "trafo"; open
// means that branch is disconnected).
type Switch struct {
	ID          string
	BusA        string
	BusB        string
	Element     string
	ElementKind string
	Closed      bool
}

// Slack is an external grid connection holding its bus's voltage.
type Slack struct {
	ID    string
	Bus   string
	VmPU  float64
	VaDeg float64
}

// Load consumes P and Q at a bus (positive = consumption).
type Load struct {
	ID    string
	Bus   string
	PMW   float64
	QMvar float64
}

// StaticGen injects P and Q at a bus (positive = generation).
type StaticGen struct {
	ID    string
	Bus   string
	PMW   float64
	QMvar float64
}

// Shunt is a constant admittance from a bus to ground (a capacitor bank,
// a reactor), given by the power it takes at 1.0 p.u. of the bus's nominal
// voltage: y = (PMW + j·QMvar) / BaseMVA in per unit. PMW is the active
// power it consumes (conductance, >= 0); QMvar is the reactive power it
// supplies: positive for a capacitor (capacitive injection, raises the
// voltage), negative for a reactor. Both scale with |V|².
type Shunt struct {
	ID    string
	Bus   string
	PMW   float64
	QMvar float64
}

// Base returns the per-unit power base in MVA.
func (n *Network) Base() float64 {
	if n.BaseMVA > 0 {
		return n.BaseMVA
	}
	return 1
}

// BusIndex maps bus IDs to their position in Buses.
func (n *Network) BusIndex() map[string]int {
	m := make(map[string]int, len(n.Buses))
	for i, b := range n.Buses {
		m[b.ID] = i
	}
	return m
}

// OpenBranches returns the IDs of lines ("line:ID") and transformers
// ("trafo:ID") disconnected by an open element switch.
func (n *Network) OpenBranches() map[string]bool {
	open := map[string]bool{}
	for _, s := range n.Switches {
		if s.Element != "" && !s.Closed {
			open[s.ElementKind+":"+s.Element] = true
		}
	}
	return open
}
