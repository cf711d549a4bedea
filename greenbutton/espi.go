// Package greenbutton reads and writes Green Button data: NAESB REQ.21
// ESPI usage data as an Atom feed (docs/GREENBUTTON.md). Export streams a
// feed of usage points (flexhub metering points), their meter readings
// (one per series) and interval blocks (one per UTC day) entry by entry;
// Import reads a Green Button feed or entry document back into usage
// points, reading types and interval readings, scaled exactly to flexhub's
// milli-units. The package is pure: no I/O beyond the reader and writer
// it is given.
package greenbutton

import (
	"github.com/google/uuid"
)

// XML namespaces of a Green Button document.
const (
	NSAtom     = "http://www.w3.org/2005/Atom"
	NSESPI     = "http://naesb.org/espi"
	NSCustomer = "http://naesb.org/espi/customer"
)

// ESPI enumeration values flexhub writes (espi.xsd: ServiceKind,
// AccumulationKind, CommodityKind, DataQualifierKind, FlowDirectionKind,
// MeasurementKind, UnitMultiplierKind, TimePeriodOfInterest,
// UnitSymbolKind) and reads.
const (
	ServiceKindElectricity = 0 // ServiceKind: electricity

	AccumulationDeltaData = 4 // AccumulationKind deltaData: the energy within each interval

	CommodityElectricitySecondaryMetered = 1 // CommodityKind: metered electricity

	DataQualifierNormal = 12 // DataQualifierKind: normal

	FlowForward = 1  // FlowDirectionKind forward: delivered to the customer, imported from the grid
	FlowReverse = 19 // FlowDirectionKind reverse: received from the customer, exported to the grid

	MeasurementEnergy = 12 // MeasurementKind: energy

	MultiplierMilli = -3 // UnitMultiplierKind milli, 10^-3

	TimeAttributeNone = 0 // TimePeriodOfInterest: not applicable

	UOMWattHour         = 72 // UnitSymbolKind Wh: real energy
	UOMVoltAmpReactiveH = 73 // UnitSymbolKind VArh: reactive energy
	UOMWatt             = 38 // UnitSymbolKind W: real power
	UOMVoltAmpReactive  = 63 // UnitSymbolKind VAr: reactive power
)

// Quantities and flows, spelled as flexhub's meter series spell them
// (flexhub.QuantityActiveEnergy, flexhub.FlowImport, ...).
const (
	QuantityActiveEnergy   = "active_energy"
	QuantityReactiveEnergy = "reactive_energy"
	QuantityActivePower    = "active_power"
	QuantityReactivePower  = "reactive_power"

	FlowImport = "import" // taken from the grid: ESPI forward (1)
	FlowExport = "export" // fed into the grid: ESPI reverse (19)
)

// Int48 bounds (espi.xsd Int48, the type of IntervalReading.value).
const (
	MaxInt48 = 1<<47 - 1
	MinInt48 = -(1 << 47)
)

// ResourceBase is the path every ESPI resource link starts with.
const ResourceBase = "/espi/1_1/resource"

// idNamespace is the UUID namespace of flexhub's Green Button entry ids:
// an entry's atom id is urn:uuid:<UUIDv5(idNamespace, resource path)>,
// so the same resource has the same id in every export.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/flexhub/flexhub/greenbutton"))

// EntryID is the deterministic atom id of the resource at path (a path
// below ResourceBase without the Subscription prefix, e.g.
// "UsagePoint/mp-1/MeterReading/import-900").
func EntryID(path string) string {
	return "urn:uuid:" + uuid.NewSHA1(idNamespace, []byte(path)).String()
}

// quantityOfUOM maps an ESPI unit to the flexhub quantity whose
// milli-units it converts to.
func quantityOfUOM(uom int) string {
	switch uom {
	case UOMWattHour:
		return QuantityActiveEnergy
	case UOMVoltAmpReactiveH:
		return QuantityReactiveEnergy
	case UOMWatt:
		return QuantityActivePower
	case UOMVoltAmpReactive:
		return QuantityReactivePower
	}
	return ""
}

// flowOfDirection maps an ESPI flow direction to a flexhub flow.
func flowOfDirection(d int) string {
	switch d {
	case FlowForward:
		return FlowImport
	case FlowReverse:
		return FlowExport
	}
	return ""
}
