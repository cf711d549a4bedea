package flexhub

import (
	"strings"
	"time"
)

// ControlArea is a TSO's load-frequency control area (an EIC "Y" code).
type ControlArea struct {
	ID string `json:"id" readOnly:"true"`
	ControlAreaSpec
	Version   int64     `json:"version" readOnly:"true"`
	CreatedAt time.Time `json:"created_at" readOnly:"true"`
}

// ControlAreaSpec is what the TSO registers.
type ControlAreaSpec struct {
	EIC   string `json:"eic" doc:"area EIC code" example:"10YDE-RWENET---I"`
	Name  string `json:"name" minLength:"1" maxLength:"200"`
	TSOID string `json:"tso_id,omitempty" doc:"party id of the TSO operating the area; defaults to the caller"`
}

// Validate checks the control area's data.
func (s *ControlAreaSpec) Validate() error {
	s.EIC = strings.ToUpper(strings.TrimSpace(s.EIC))
	if err := ValidateEIC("eic", s.EIC); err != nil {
		return err
	}
	if strings.TrimSpace(s.Name) == "" {
		return FieldErrorf("name", "a control area needs a name")
	}
	return nil
}

// GridArea is a DSO's distribution grid area (metering grid area).
type GridArea struct {
	ID string `json:"id" readOnly:"true"`
	GridAreaSpec
	Version   int64     `json:"version" readOnly:"true"`
	CreatedAt time.Time `json:"created_at" readOnly:"true"`
}

// GridAreaSpec is what the DSO registers.
type GridAreaSpec struct {
	EIC           string `json:"eic" doc:"area EIC code"`
	Name          string `json:"name" minLength:"1" maxLength:"200"`
	DSOID         string `json:"dso_id,omitempty" doc:"party id of the operating DSO; defaults to the caller"`
	ControlAreaID string `json:"control_area_id" doc:"the TSO control area the grid area lies in"`
}

// Validate checks the grid area's data.
func (s *GridAreaSpec) Validate() error {
	s.EIC = strings.ToUpper(strings.TrimSpace(s.EIC))
	if err := ValidateEIC("eic", s.EIC); err != nil {
		return err
	}
	if strings.TrimSpace(s.Name) == "" {
		return FieldErrorf("name", "a grid area needs a name")
	}
	if !ValidID(s.ControlAreaID) {
		return FieldErrorf("control_area_id", "%q is not a control area id", s.ControlAreaID)
	}
	return nil
}

// ConnectionPoint is a grid connection point: where a customer installation
// meets the DSO's grid. NodeRef names the bus in the grid model.
type ConnectionPoint struct {
	ID string `json:"id" readOnly:"true"`
	ConnectionPointSpec
	DSOID     string    `json:"dso_id" doc:"the DSO operating the grid area" readOnly:"true"`
	Version   int64     `json:"version" readOnly:"true"`
	CreatedAt time.Time `json:"created_at" readOnly:"true"`
	UpdatedAt time.Time `json:"updated_at" readOnly:"true"`
}

// ConnectionPointSpec is what the DSO registers.
type ConnectionPointSpec struct {
	Code       string  `json:"code" minLength:"1" maxLength:"64" doc:"the DSO's own code, unique per grid area"`
	GridAreaID string  `json:"grid_area_id"`
	NodeRef    string  `json:"node_ref" maxLength:"200" doc:"bus or node in the DSO's grid model, e.g. 'LV1.101 Bus 10'"`
	VoltageKV  float64 `json:"voltage_kv,omitempty" minimum:"0" doc:"nominal voltage in kV"`
	Capacity   *Power  `json:"capacity,omitempty" doc:"connection capacity"`
}

// Validate checks the connection point's data.
func (s *ConnectionPointSpec) Validate() error {
	s.Code = strings.TrimSpace(s.Code)
	if s.Code == "" {
		return FieldErrorf("code", "a connection point needs a code")
	}
	if !ValidID(s.GridAreaID) {
		return FieldErrorf("grid_area_id", "%q is not a grid area id", s.GridAreaID)
	}
	if _, err := s.Capacity.Watts("capacity"); err != nil {
		return err
	}
	return nil
}

// MeteringPoint is an accounting point: where energy is measured and
// settled, with the consumer who owns its data and the supplier and BRP
// responsible for it.
type MeteringPoint struct {
	ID string `json:"id" readOnly:"true"`
	MeteringPointSpec
	DSOID       string             `json:"dso_id" readOnly:"true"`
	Assignments []MarketAssignment `json:"assignments" readOnly:"true" doc:"supplier and BRP over time, newest last"`
	Version     int64              `json:"version" readOnly:"true"`
	CreatedAt   time.Time          `json:"created_at" readOnly:"true"`
	UpdatedAt   time.Time          `json:"updated_at" readOnly:"true"`
}

// MeteringPointSpec is what the DSO (metering point administrator) registers.
type MeteringPointSpec struct {
	Code              string `json:"code" minLength:"1" maxLength:"64" doc:"GSRN/EAN-18 or national metering point id"`
	ConnectionPointID string `json:"connection_point_id"`
	ConsumerID        string `json:"consumer_id" doc:"party id of the consumer who owns the metering point's data"`
	SupplierID        string `json:"supplier_id,omitempty" doc:"initial supplier (only on registration)"`
	BRPID             string `json:"brp_id,omitempty" doc:"initial balance responsible party (only on registration)"`
	Direction         string `json:"direction,omitempty" enum:"consumption,production,combined" doc:"defaults to consumption"`
}

// Validate checks the metering point's data.
func (s *MeteringPointSpec) Validate() error {
	s.Code = strings.TrimSpace(s.Code)
	if s.Code == "" {
		return FieldErrorf("code", "a metering point needs a code")
	}
	if !ValidID(s.ConnectionPointID) {
		return FieldErrorf("connection_point_id", "%q is not a connection point id", s.ConnectionPointID)
	}
	if !ValidID(s.ConsumerID) {
		return FieldErrorf("consumer_id", "%q is not a party id", s.ConsumerID)
	}
	if s.SupplierID != "" && !ValidID(s.SupplierID) {
		return FieldErrorf("supplier_id", "%q is not a party id", s.SupplierID)
	}
	if s.BRPID != "" && !ValidID(s.BRPID) {
		return FieldErrorf("brp_id", "%q is not a party id", s.BRPID)
	}
	switch s.Direction {
	case "":
		s.Direction = "consumption"
	case "consumption", "production", "combined":
	default:
		return FieldErrorf("direction", "%q is not consumption, production or combined", s.Direction)
	}
	return nil
}

// MarketAssignment says who supplies a metering point and who is balance
// responsible for it from ValidFrom on (until the next assignment).
type MarketAssignment struct {
	SupplierID string    `json:"supplier_id,omitempty"`
	BRPID      string    `json:"brp_id,omitempty"`
	ValidFrom  time.Time `json:"valid_from"`
}

// AssignmentAt returns the supplier/BRP assignment in force at t.
func (m *MeteringPoint) AssignmentAt(t time.Time) (MarketAssignment, bool) {
	var cur MarketAssignment
	found := false
	for _, a := range m.Assignments {
		if !a.ValidFrom.After(t) {
			cur, found = a, true
		}
	}
	return cur, found
}

// SwitchRequest changes the supplier and/or BRP of a metering point from a
// date on (a supplier switch or a BRP switch).
type SwitchRequest struct {
	SupplierID string    `json:"supplier_id,omitempty"`
	BRPID      string    `json:"brp_id,omitempty"`
	ValidFrom  time.Time `json:"valid_from"`
}

// Validate checks a switch request on its own; whether valid_from is late
// enough depends on the metering point (see MeteringPoint.Switch).
func (s *SwitchRequest) Validate() error {
	if s.SupplierID == "" && s.BRPID == "" {
		return FieldErrorf("supplier_id", "a switch names a new supplier_id, a new brp_id, or both")
	}
	if s.SupplierID != "" && !ValidID(s.SupplierID) {
		return FieldErrorf("supplier_id", "%q is not a party id", s.SupplierID)
	}
	if s.BRPID != "" && !ValidID(s.BRPID) {
		return FieldErrorf("brp_id", "%q is not a party id", s.BRPID)
	}
	if s.ValidFrom.IsZero() {
		return FieldErrorf("valid_from", "a switch needs the time it takes effect")
	}
	s.ValidFrom = s.ValidFrom.UTC()
	return nil
}

// Switch appends the assignment a switch request makes. The party that is
// not switched carries over from the last assignment, so every assignment
// is complete on its own and AssignmentAt needs no look-back. Earlier
// assignments are never changed: settlement of past periods depends on
// them.
func (m *MeteringPoint) Switch(s SwitchRequest) error {
	next := MarketAssignment{SupplierID: s.SupplierID, BRPID: s.BRPID, ValidFrom: s.ValidFrom}
	if n := len(m.Assignments); n > 0 {
		last := m.Assignments[n-1]
		if !s.ValidFrom.After(last.ValidFrom) {
			return FieldErrorf("valid_from", "valid_from %s must be after the last assignment, which took effect at %s",
				s.ValidFrom.Format(time.RFC3339), last.ValidFrom.Format(time.RFC3339))
		}
		if next.SupplierID == "" {
			next.SupplierID = last.SupplierID
		}
		if next.BRPID == "" {
			next.BRPID = last.BRPID
		}
		if next.SupplierID == last.SupplierID && next.BRPID == last.BRPID {
			return FieldErrorf("supplier_id", "supplier %s and BRP %s already hold this metering point; nothing to switch", last.SupplierID, last.BRPID)
		}
	}
	m.Assignments = append(m.Assignments, next)
	return nil
}

// Assigned reports whether the party was ever supplier or BRP of the
// metering point: it stays entitled to the data of the periods it served.
func (m *MeteringPoint) Assigned(partyID string) bool {
	for _, a := range m.Assignments {
		if a.SupplierID == partyID || a.BRPID == partyID {
			return true
		}
	}
	return false
}

// Parties lists everyone entitled to read the metering point by their
// role on it (the DSO, the consumer, every supplier and BRP it ever had),
// for audit entries.
func (m *MeteringPoint) Parties() []string {
	out := []string{m.DSOID, m.ConsumerID}
	for _, a := range m.Assignments {
		out = append(out, a.SupplierID, a.BRPID)
	}
	return out
}
