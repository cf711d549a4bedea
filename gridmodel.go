package flexhub

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Grid models in the register (docs/GRID_MODELS.md): a system operator's
// electrical network for one of its grid areas, uploaded as a file
// (pandapower JSON, a zipped SimBench folder; CIM to come), parsed,
// validated and compiled for power flows before it is stored. Every upload
// is a new version (1, 2, ...) of the grid area's model; versions are
// never changed. Connection points of the grid area are mapped to buses of
// a version; mappings whose bus still exists carry over to the next
// version.
//
// Grid data is sensitive (it shows where the grid is weak): the grid
// area's DSO and the TSO of its control area read it, nobody else.

// Grid model file formats.
const (
	GridFormatPandapower = "pandapower" // pandapower.to_json file
	GridFormatSimBench   = "simbench"   // zip of one SimBench CSV grid folder
	GridFormatCIM        = "cim"        // IEC CIM RDF/XML of a distribution feeder (one file)
)

// KindGridModel is the object kind of a grid model version in audit
// entries.
const KindGridModel = "grid_model"

// GridModel is one stored version of a grid area's network: a summary of
// what was uploaded. The parsed network and the original file are stored
// with it and read separately.
type GridModel struct {
	ID            string          `json:"id" readOnly:"true" doc:"id of this version"`
	GridAreaID    string          `json:"grid_area_id"`
	DSOID         string          `json:"dso_id" doc:"the system operator of the grid area, who uploaded the model"`
	ModelVersion  int64           `json:"model_version" doc:"1 for the grid area's first upload, then 2, 3, ..."`
	Format        string          `json:"format" doc:"the file's format: pandapower or simbench"`
	Name          string          `json:"name,omitempty" doc:"the network's own name, if the file has one"`
	FileSHA256    string          `json:"file_sha256" doc:"hex SHA-256 of the uploaded file as received"`
	FileBytes     int64           `json:"file_bytes"`
	Counts        GridModelCounts `json:"counts"`
	VoltageLevels []float64       `json:"voltage_levels_kv" doc:"the distinct nominal voltages of the buses, highest first, in kV"`
	BaseMVA       float64         `json:"base_mva" doc:"power base of the per-unit system, in MVA"`
	UploadedBy    string          `json:"uploaded_by"`
	UploadedAt    time.Time       `json:"uploaded_at"`
}

// GridModelCounts counts a network's elements.
type GridModelCounts struct {
	Buses    int `json:"buses"`
	Lines    int `json:"lines"`
	Trafos   int `json:"transformers"`
	Switches int `json:"switches"`
	Slacks   int `json:"slacks"`
	Loads    int `json:"loads"`
	Gens     int `json:"static_generators"`
	Shunts   int `json:"shunts" doc:"capacitor banks and reactors (constant admittance)"`
}

// GridModelMapping ties a connection point to a bus of one grid model
// version. BusIndex is the bus's position in the version's bus list (the
// index power-flow vectors use).
type GridModelMapping struct {
	ConnectionPointID string `json:"connection_point_id"`
	BusID             string `json:"bus_id"`
	BusIndex          int    `json:"bus_index" readOnly:"true"`
}

// GridBusRef is where a connection point sits in its grid area's current
// grid model: the lookup the traffic light and grid-aware clearing use.
type GridBusRef struct {
	ConnectionPointID string `json:"connection_point_id"`
	GridAreaID        string `json:"grid_area_id"`
	GridModelID       string `json:"grid_model_id"`
	ModelVersion      int64  `json:"model_version"`
	BusID             string `json:"bus_id"`
	BusIndex          int    `json:"bus_index"`
}

// GridMappingRequest sets (or, with an empty bus_id, removes) the buses
// of connection points in one grid model version.
type GridMappingRequest struct {
	Mappings []GridMappingItem `json:"mappings" minItems:"1" maxItems:"10000"`
}

// GridMappingItem is one connection point → bus assignment.
type GridMappingItem struct {
	ConnectionPointID string `json:"connection_point_id"`
	BusID             string `json:"bus_id" doc:"a bus id of this model version; empty removes the mapping"`
}

// Validate checks the request on its own: ids present, no connection
// point twice. Whether the ids exist is the service's check.
func (r *GridMappingRequest) Validate() error {
	if len(r.Mappings) == 0 {
		return FieldErrorf("mappings", "name at least one connection point and its bus")
	}
	seen := map[string]int{}
	var p []string
	for i, m := range r.Mappings {
		r.Mappings[i].BusID = strings.TrimSpace(m.BusID)
		if !ValidID(m.ConnectionPointID) {
			p = append(p, fmt.Sprintf("mappings[%d]: %q is not a connection point id", i, m.ConnectionPointID))
			continue
		}
		if j, dup := seen[m.ConnectionPointID]; dup {
			p = append(p, fmt.Sprintf("mappings[%d]: connection point %s is already mapped in mappings[%d]", i, m.ConnectionPointID, j))
			continue
		}
		seen[m.ConnectionPointID] = i
	}
	if len(p) > 0 {
		return NewProblems("mappings", "the mapping request is invalid", p)
	}
	return nil
}

// PowerFlowRequest asks for one AC power flow of a grid model version:
// the model's own loads and generators plus the injections given.
type PowerFlowRequest struct {
	Injections []PowerFlowInjection `json:"injections,omitempty" maxItems:"100000" doc:"added to the model's own loads and static generators"`
	// The voltage band for buses whose model gives none (default
	// 0.9–1.1 p.u.).
	DefaultVMinPU float64 `json:"default_vmin_pu,omitempty" doc:"lower voltage limit for buses without their own band; default 0.9"`
	DefaultVMaxPU float64 `json:"default_vmax_pu,omitempty" doc:"upper voltage limit for buses without their own band; default 1.1"`
}

// PowerFlowInjection is extra power at one bus or at a mapped connection
// point: generation and consumption of active power, and reactive power
// supplied to (generation) or drawn from (consumption) the grid, each
// with its unit. The net injection is generation minus consumption.
type PowerFlowInjection struct {
	BusID               string         `json:"bus_id,omitempty" doc:"a bus of the model version; or give connection_point_id"`
	ConnectionPointID   string         `json:"connection_point_id,omitempty" doc:"a connection point mapped to a bus of the model version"`
	Generation          *Power         `json:"generation,omitempty" doc:"active power fed into the grid"`
	Consumption         *Power         `json:"consumption,omitempty" doc:"active power drawn from the grid"`
	ReactiveGeneration  *ReactivePower `json:"reactive_generation,omitempty" doc:"reactive power supplied to the grid (capacitive behaviour)"`
	ReactiveConsumption *ReactivePower `json:"reactive_consumption,omitempty" doc:"reactive power drawn from the grid (inductive behaviour)"`
}

// Default voltage band for buses whose model has none.
const (
	DefaultVMinPU = 0.9
	DefaultVMaxPU = 1.1
)

// Net returns the injection's net active and reactive power in W and var
// (generation positive), or a field error naming injections[i].
func (in *PowerFlowInjection) Net(i int) (w, vars int64, err error) {
	f := fmt.Sprintf("injections[%d]", i)
	if (in.BusID == "") == (in.ConnectionPointID == "") {
		return 0, 0, FieldErrorf(f, "give either bus_id or connection_point_id")
	}
	if in.Generation == nil && in.Consumption == nil && in.ReactiveGeneration == nil && in.ReactiveConsumption == nil {
		return 0, 0, FieldErrorf(f, "give at least one of generation, consumption, reactive_generation, reactive_consumption")
	}
	g, err := in.Generation.Watts(f + ".generation")
	if err != nil {
		return 0, 0, err
	}
	c, err := in.Consumption.Watts(f + ".consumption")
	if err != nil {
		return 0, 0, err
	}
	qg, err := in.ReactiveGeneration.Vars(f + ".reactive_generation")
	if err != nil {
		return 0, 0, err
	}
	qc, err := in.ReactiveConsumption.Vars(f + ".reactive_consumption")
	if err != nil {
		return 0, 0, err
	}
	return g - c, qg - qc, nil
}

// Band returns the default voltage band of the request, checked.
func (r *PowerFlowRequest) Band() (vmin, vmax float64, err error) {
	vmin, vmax = r.DefaultVMinPU, r.DefaultVMaxPU
	if vmin == 0 {
		vmin = DefaultVMinPU
	}
	if vmax == 0 {
		vmax = DefaultVMaxPU
	}
	if vmin < 0.5 || vmax > 1.5 || vmin >= vmax {
		return 0, 0, FieldErrorf("default_vmin_pu", "voltage band [%v, %v] p.u. is not plausible: expected 0.5 <= vmin < vmax <= 1.5", vmin, vmax)
	}
	return vmin, vmax, nil
}

// Problems is an EInvalid error that lists several problems, each naming
// its element (a grid model's validation, a mapping request). It unwraps
// to an *Error, so ErrorKind, ErrorMessage and ErrorField work on it; the
// HTTP adapter lists every problem in the problem details.
type Problems struct {
	Err  *Error
	List []string
}

// NewProblems returns an EInvalid error for field listing problems.
func NewProblems(field, summary string, problems []string) *Problems {
	msg := summary
	if len(problems) > 0 {
		msg = fmt.Sprintf("%s: %d problem(s): %s", summary, len(problems), strings.Join(problems, "; "))
	}
	return &Problems{Err: &Error{Kind: EInvalid, Field: field, Message: msg}, List: problems}
}

func (p *Problems) Error() string { return p.Err.Error() }

// Unwrap returns the underlying domain error.
func (p *Problems) Unwrap() error { return p.Err }

// GridModelTx stores grid model versions and their connection point
// mappings (migration 016). Versions are immutable once created.
type GridModelTx interface {
	// CreateGridModel stores a new version with its original file and
	// its encoded network (the store may compress both). m.ModelVersion
	// must be the grid area's next number: a version that exists already
	// (a concurrent upload) is EConflict.
	CreateGridModel(ctx context.Context, m *GridModel, file, network []byte) error
	// GridModel reads one version's summary.
	GridModel(ctx context.Context, id string) (*GridModel, error)
	// CurrentGridModel reads the highest version of a grid area's model;
	// ENotFound if none was uploaded.
	CurrentGridModel(ctx context.Context, gridAreaID string) (*GridModel, error)
	// ListGridModels lists a grid area's versions, oldest first.
	ListGridModels(ctx context.Context, gridAreaID string) ([]*GridModel, error)
	// GridModelFile returns the file as uploaded.
	GridModelFile(ctx context.Context, id string) ([]byte, error)
	// GridModelNetwork returns the network as encoded by the caller of
	// CreateGridModel.
	GridModelNetwork(ctx context.Context, id string) ([]byte, error)
	// PutGridModelMappings sets the bus of each connection point given
	// in one version; an empty BusID removes the connection point's
	// mapping.
	PutGridModelMappings(ctx context.Context, modelID string, ms []GridModelMapping) error
	// GridModelMappings lists a version's mappings ordered by connection
	// point id.
	GridModelMappings(ctx context.Context, modelID string) ([]GridModelMapping, error)
	// ConnectionPointBus returns where a connection point sits in the
	// current (highest) version of its grid area's model: ENotFound when
	// the area has no model or the current version does not map it.
	ConnectionPointBus(ctx context.Context, connectionPointID string) (*GridBusRef, error)
}
