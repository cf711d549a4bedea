package app

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/powerflow"
)

// Grid models in the register (docs/GRID_MODELS.md). Who may do what:
//
//   - upload a version, map connection points, run a power flow: the DSO
//     operating the grid area (GridArea.DSOID) only;
//   - read summaries, versions, elements, the original file and the
//     mappings: that DSO, the TSO of the grid area's control area, and the
//     register (admin, flexibility register operator). Nobody else: grid
//     data shows where a grid is weak. Through /v1/grid-areas/{id}/...
//     (the area is public) a refusal is 403; through
//     /v1/grid-models/{id} the model answers 404, so ids cannot be probed.

// gridReaders parses an uploaded file of each format into a network.
// Adding a format is one line here (and its name in the docs).
var gridReaders = map[string]func(file []byte) (*grid.Network, error){
	flexhub.GridFormatPandapower: func(b []byte) (*grid.Network, error) { return grid.ReadPandapower(bytes.NewReader(b)) },
	flexhub.GridFormatSimBench:   readSimBenchZip,
	flexhub.GridFormatCIM:        func(b []byte) (*grid.Network, error) { return grid.ReadCIM(bytes.NewReader(b)) },
}

// GridFormats lists the formats an upload takes, sorted.
func GridFormats() []string {
	out := make([]string, 0, len(gridReaders))
	for f := range gridReaders {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Limits of a zipped SimBench folder: the sum of the uncompressed sizes
// its headers declare (archive/zip refuses a member that inflates beyond
// its declared size) and the number of members.
const (
	maxZipInflated = 256 << 20
	maxZipFiles    = 1000
)

// readSimBenchZip reads a zip of one SimBench grid folder: the CSV files
// at the top of the archive or inside one folder.
func readSimBenchZip(b []byte) (*grid.Network, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("simbench: the upload is not a zip archive: %v", err)
	}
	if len(zr.File) > maxZipFiles {
		return nil, fmt.Errorf("simbench: the zip holds %d files; a SimBench grid folder has a few dozen (at most %d taken)", len(zr.File), maxZipFiles)
	}
	var total uint64
	var dirs []string
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if path.Base(f.Name) == "Node.csv" {
			dirs = append(dirs, path.Dir(f.Name))
		}
	}
	if total > maxZipInflated {
		return nil, fmt.Errorf("simbench: the zip inflates to %d bytes, more than the %d taken", total, maxZipInflated)
	}
	sort.Strings(dirs)
	switch len(dirs) {
	case 0:
		return nil, fmt.Errorf("simbench: the zip holds no Node.csv: zip the folder of one SimBench grid (Node.csv, Line.csv, ...)")
	case 1:
	default:
		return nil, fmt.Errorf("simbench: the zip holds %d grids (Node.csv in %s); upload one grid folder at a time", len(dirs), strings.Join(dirs, ", "))
	}
	var fsys fs.FS = zr
	if dirs[0] != "." {
		if fsys, err = fs.Sub(zr, dirs[0]); err != nil {
			return nil, err
		}
	}
	return grid.ReadSimBench(fsys)
}

// parseGridModel reads, validates and compiles an upload. Every problem
// is an EInvalid *flexhub.Problems listing them, each naming its element.
func parseGridModel(format string, file []byte) (*grid.Network, *powerflow.Model, error) {
	read, ok := gridReaders[format]
	if !ok {
		return nil, nil, flexhub.FieldErrorf("query.format", "%q is not a grid model format; use one of %s", format, strings.Join(GridFormats(), ", "))
	}
	if len(file) == 0 {
		return nil, nil, flexhub.FieldErrorf("body", "the upload is empty: send the %s file as the request body", format)
	}
	net, err := read(file)
	if err != nil {
		return nil, nil, modelProblems(format, err)
	}
	// Compile validates first (grid.Network.Validate) and reports every
	// problem in one ValidationError.
	m, err := powerflow.Compile(net)
	if err != nil {
		return nil, nil, modelProblems(format, err)
	}
	return net, m, nil
}

func modelProblems(format string, err error) error {
	var ve *grid.ValidationError
	if errors.As(err, &ve) {
		return flexhub.NewProblems("body", "the "+format+" grid model is invalid", ve.Problems)
	}
	return flexhub.NewProblems("body", "the "+format+" grid model cannot be read", []string{err.Error()})
}

// summarise fills a version's counts and voltage levels.
func summarise(m *flexhub.GridModel, n *grid.Network) {
	m.Name, m.BaseMVA = n.Name, n.Base()
	m.Counts = flexhub.GridModelCounts{Buses: len(n.Buses), Lines: len(n.Lines), Trafos: len(n.Trafos), Switches: len(n.Switches),
		Slacks: len(n.Slacks), Loads: len(n.Loads), Gens: len(n.Gens), Shunts: len(n.Shunts)}
	seen := map[float64]bool{}
	m.VoltageLevels = []float64{}
	for _, b := range n.Buses {
		if !seen[b.VnKV] {
			seen[b.VnKV] = true
			m.VoltageLevels = append(m.VoltageLevels, b.VnKV)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(m.VoltageLevels)))
}

// GridModelUpload is the answer to an upload: the new version, and what
// became of the previous version's mappings.
type GridModelUpload struct {
	Model *flexhub.GridModel `json:"model"`
	// CarriedOver counts the previous version's mappings whose bus exists
	// in the new version: they hold in the new version too.
	CarriedOver int `json:"carried_over_mappings"`
	// Dropped lists the previous version's mappings whose bus is not in
	// the new version: those connection points are unmapped now.
	Dropped []DroppedMapping `json:"dropped_mappings"`
	// Replayed: this answers a retry with the same idempotency key; the
	// version is the one the first request created (its carry-over report
	// is not repeated).
	Replayed bool `json:"replayed,omitempty"`
}

// DroppedMapping is a connection point whose bus is gone in a new version.
type DroppedMapping struct {
	ConnectionPointID string `json:"connection_point_id"`
	PreviousBusID     string `json:"previous_bus_id"`
	Reason            string `json:"reason"`
}

// gridAreaForModels loads a grid area for a grid model operation and
// checks the caller: operate (the area's DSO) or read (also the TSO of
// its control area, and the register). A refusal is EForbidden.
func gridAreaForModels(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, operate bool) (*flexhub.GridArea, error) {
	ga, err := tx.GridArea(ctx, id)
	if err != nil {
		return nil, err
	}
	if ga.DSOID == by.ID {
		return ga, nil
	}
	if operate {
		return nil, flexhub.Errorf(flexhub.EForbidden, "only the DSO operating grid area %s (%s) uploads, maps and studies its grid model", ga.ID, ga.EIC)
	}
	if privileged(by) {
		return ga, nil
	}
	if by.HasRole(flexhub.RoleTSO) {
		ca, err := tx.ControlArea(ctx, ga.ControlAreaID)
		if err != nil {
			return nil, err
		}
		if ca.TSOID == by.ID {
			return ga, nil
		}
	}
	return nil, flexhub.Errorf(flexhub.EForbidden, "grid models are sensitive: only the DSO operating grid area %s (%s) and the TSO of its control area read them", ga.ID, ga.EIC)
}

// gridModelFor loads a version by id and checks the caller as
// gridAreaForModels does, answering 404 to anyone who may not read it.
func gridModelFor(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, operate bool) (*flexhub.GridModel, *flexhub.GridArea, error) {
	m, err := tx.GridModel(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ga, err := gridAreaForModels(ctx, tx, by, m.GridAreaID, false)
	if flexhub.ErrorKind(err) == flexhub.EForbidden {
		return nil, nil, notFound("grid model", id)
	}
	if err != nil {
		return nil, nil, err
	}
	if operate && ga.DSOID != by.ID {
		return nil, nil, flexhub.Errorf(flexhub.EForbidden, "only the DSO operating grid area %s (%s) maps and studies its grid model", ga.ID, ga.EIC)
	}
	return m, ga, nil
}

// UploadGridModel stores a new version of a grid area's model, by the
// area's DSO. The file is parsed, validated and compiled first: a model
// that fails answers EInvalid listing every problem, and nothing is
// stored. The previous version's mappings carry over where their bus
// still exists; the others are reported as dropped. With an idempotency
// key, a retry of the same upload (same area, format and file) answers
// the version the first request created instead of making another.
func (s *Service) UploadGridModel(ctx context.Context, gridAreaID, format string, file []byte, key string) (*GridModelUpload, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(file)
	request := struct{ GridAreaID, Format, FileSHA256 string }{gridAreaID, format, hex.EncodeToString(sum[:])}
	// Authorise (and answer a replay) before the CPU-bound parse: a
	// stranger's upload costs one read.
	var replayed *GridModelUpload
	if err := s.store.View(ctx, func(tx flexhub.Tx) error {
		if _, err := gridAreaForModels(ctx, tx, by, gridAreaID, true); err != nil {
			return err
		}
		replayed, err = replayUpload(ctx, tx, by, key, request)
		return err
	}); err != nil || replayed != nil {
		return replayed, err
	}
	net, _, err := parseGridModel(format, file)
	if err != nil {
		return nil, err
	}
	encoded, err := json.Marshal(net)
	if err != nil {
		return nil, fmt.Errorf("encode grid model: %w", err)
	}
	buses := net.BusIndex()
	var out *GridModelUpload
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		ga, err := gridAreaForModels(ctx, tx, by, gridAreaID, true)
		if err != nil {
			return err
		}
		if out, err = replayUpload(ctx, tx, by, key, request); err != nil || out != nil {
			return err
		}
		ca, err := tx.ControlArea(ctx, ga.ControlAreaID)
		if err != nil {
			return err
		}
		m := &flexhub.GridModel{ID: flexhub.NewID(), GridAreaID: ga.ID, DSOID: ga.DSOID, Format: format,
			FileSHA256: request.FileSHA256, FileBytes: int64(len(file)), UploadedBy: by.ID, UploadedAt: s.now()}
		summarise(m, net)
		out = &GridModelUpload{Model: m, Dropped: []DroppedMapping{}}
		prev, err := tx.CurrentGridModel(ctx, ga.ID)
		var carry []flexhub.GridModelMapping
		switch {
		case flexhub.ErrorKind(err) == flexhub.ENotFound:
			m.ModelVersion = 1
		case err != nil:
			return err
		default:
			m.ModelVersion = prev.ModelVersion + 1
			old, err := tx.GridModelMappings(ctx, prev.ID)
			if err != nil {
				return err
			}
			for _, mp := range old {
				if i, ok := buses[mp.BusID]; ok {
					carry = append(carry, flexhub.GridModelMapping{ConnectionPointID: mp.ConnectionPointID, BusID: mp.BusID, BusIndex: i})
					continue
				}
				out.Dropped = append(out.Dropped, DroppedMapping{ConnectionPointID: mp.ConnectionPointID, PreviousBusID: mp.BusID,
					Reason: fmt.Sprintf("bus %q of version %d does not exist in version %d", mp.BusID, prev.ModelVersion, m.ModelVersion)})
			}
			out.CarriedOver = len(carry)
		}
		if err := tx.CreateGridModel(ctx, m, file, encoded); err != nil {
			return err
		}
		if err := tx.PutGridModelMappings(ctx, m.ID, carry); err != nil {
			return err
		}
		if err := s.remember(ctx, tx, by, key, flexhub.KindGridModel, m.ID, request); err != nil {
			return err
		}
		return s.record(ctx, tx, by, "grid_model.uploaded", flexhub.KindGridModel, m.ID, m.ModelVersion, out, ga.DSOID, ca.TSOID)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// replayUpload answers a retried upload: the version the key created
// (without the first answer's carry-over report), or nil for a new key.
func replayUpload(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, key string, request any) (*GridModelUpload, error) {
	id, err := replay(ctx, tx, by, key, flexhub.KindGridModel, request)
	if err != nil || id == "" {
		return nil, err
	}
	m, err := tx.GridModel(ctx, id)
	if err != nil {
		return nil, err
	}
	return &GridModelUpload{Model: m, Dropped: []DroppedMapping{}, Replayed: true}, nil
}

// CurrentGridModel returns the highest version of a grid area's model.
func (s *Service) CurrentGridModel(ctx context.Context, gridAreaID string) (*flexhub.GridModel, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.GridModel, error) {
		if _, err := gridAreaForModels(ctx, tx, by, gridAreaID, false); err != nil {
			return nil, err
		}
		m, err := tx.CurrentGridModel(ctx, gridAreaID)
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, flexhub.Errorf(flexhub.ENotFound, "grid area %s has no grid model yet: its DSO uploads one with POST /v1/grid-areas/%s/grid-models", gridAreaID, gridAreaID)
		}
		return m, err
	})
}

// ListGridModels lists a grid area's versions, oldest first.
func (s *Service) ListGridModels(ctx context.Context, gridAreaID string) ([]*flexhub.GridModel, error) {
	out, err := readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*[]*flexhub.GridModel, error) {
		if _, err := gridAreaForModels(ctx, tx, by, gridAreaID, false); err != nil {
			return nil, err
		}
		ms, err := tx.ListGridModels(ctx, gridAreaID)
		if ms == nil {
			ms = []*flexhub.GridModel{}
		}
		return &ms, err
	})
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// GetGridModel returns one version's summary.
func (s *Service) GetGridModel(ctx context.Context, id string) (*flexhub.GridModel, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.GridModel, error) {
		m, _, err := gridModelFor(ctx, tx, by, id, false)
		return m, err
	})
}

// GridModelFile is an uploaded file as received.
type GridModelFile struct {
	Model *flexhub.GridModel
	Data  []byte
}

// GetGridModelFile returns the file a version was uploaded as.
func (s *Service) GetGridModelFile(ctx context.Context, id string) (*GridModelFile, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*GridModelFile, error) {
		m, _, err := gridModelFor(ctx, tx, by, id, false)
		if err != nil {
			return nil, err
		}
		b, err := tx.GridModelFile(ctx, id)
		return &GridModelFile{Model: m, Data: b}, err
	})
}

// The elements of a version on the wire (units in the names).
type (
	// GridModelElements is a version's buses, lines and transformers,
	// whole: a few thousand buses are a few hundred kilobytes.
	GridModelElements struct {
		GridModelID  string      `json:"grid_model_id"`
		ModelVersion int64       `json:"model_version"`
		Buses        []GridBus   `json:"buses"`
		Lines        []GridLine  `json:"lines"`
		Transformers []GridTrafo `json:"transformers"`
	}
	// GridBus is a bus with its index in the version's bus list.
	GridBus struct {
		Index  int     `json:"index" doc:"position in the version's bus list (the power-flow vector index)"`
		ID     string  `json:"id"`
		Name   string  `json:"name,omitempty"`
		VnKV   float64 `json:"vn_kv"`
		VMinPU float64 `json:"vmin_pu,omitempty" doc:"lower voltage limit; absent when the model gives none"`
		VMaxPU float64 `json:"vmax_pu,omitempty"`
	}
	// GridLine is a line or cable (π model per km; rating for all
	// parallel systems together).
	GridLine struct {
		ID           string  `json:"id"`
		FromBus      string  `json:"from_bus"`
		ToBus        string  `json:"to_bus"`
		LengthKM     float64 `json:"length_km"`
		ROhmPerKM    float64 `json:"r_ohm_per_km"`
		XOhmPerKM    float64 `json:"x_ohm_per_km"`
		BMicroSPerKM float64 `json:"b_us_per_km"`
		Parallel     int     `json:"parallel"`
		MaxIKA       float64 `json:"max_i_ka,omitempty"`
		RatedMVA     float64 `json:"rated_mva,omitempty"`
	}
	// GridTrafo is a two-winding transformer's nameplate data.
	GridTrafo struct {
		ID         string  `json:"id"`
		HVBus      string  `json:"hv_bus"`
		LVBus      string  `json:"lv_bus"`
		SnMVA      float64 `json:"sn_mva"`
		VnHVKV     float64 `json:"vn_hv_kv"`
		VnLVKV     float64 `json:"vn_lv_kv"`
		VkPercent  float64 `json:"vk_percent"`
		VkrPercent float64 `json:"vkr_percent"`
		ShiftDeg   float64 `json:"shift_degree"`
		TapPercent float64 `json:"tap_percent,omitempty"`
		TapSide    string  `json:"tap_side,omitempty"`
	}
)

// GetGridModelElements returns a version's buses, lines and transformers.
func (s *Service) GetGridModelElements(ctx context.Context, id string) (*GridModelElements, error) {
	var m *flexhub.GridModel
	var net *grid.Network
	err := s.viewAs(ctx, func(tx flexhub.Tx, by *flexhub.Party) (err error) {
		if m, _, err = gridModelFor(ctx, tx, by, id, false); err != nil {
			return err
		}
		net, err = loadNetwork(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &GridModelElements{GridModelID: m.ID, ModelVersion: m.ModelVersion,
		Buses: make([]GridBus, len(net.Buses)), Lines: make([]GridLine, len(net.Lines)), Transformers: make([]GridTrafo, len(net.Trafos))}
	for i, b := range net.Buses {
		out.Buses[i] = GridBus{Index: i, ID: b.ID, Name: b.Name, VnKV: b.VnKV, VMinPU: b.VMinPU, VMaxPU: b.VMaxPU}
	}
	for i, l := range net.Lines {
		out.Lines[i] = GridLine{ID: l.ID, FromBus: l.FromBus, ToBus: l.ToBus, LengthKM: l.LengthKM, ROhmPerKM: l.ROhmPerKM, XOhmPerKM: l.XOhmPerKM,
			BMicroSPerKM: l.BMicroSPerKM, Parallel: l.Parallel, MaxIKA: l.MaxIKA, RatedMVA: l.RatedMVA}
	}
	for i, t := range net.Trafos {
		out.Transformers[i] = GridTrafo{ID: t.ID, HVBus: t.HVBus, LVBus: t.LVBus, SnMVA: t.SnMVA, VnHVKV: t.VnHVKV, VnLVKV: t.VnLVKV,
			VkPercent: t.VkPercent, VkrPercent: t.VkrPercent, ShiftDeg: t.ShiftDeg, TapPercent: t.TapPercent, TapSide: t.TapSide}
	}
	return out, nil
}

// viewAs runs fn in a read-only transaction as the caller.
func (s *Service) viewAs(ctx context.Context, fn func(tx flexhub.Tx, by *flexhub.Party) error) error {
	by, err := actor(ctx)
	if err != nil {
		return err
	}
	return s.store.View(ctx, func(tx flexhub.Tx) error { return fn(tx, by) })
}

// loadNetwork decodes a version's stored network.
func loadNetwork(ctx context.Context, tx flexhub.Tx, id string) (*grid.Network, error) {
	b, err := tx.GridModelNetwork(ctx, id)
	if err != nil {
		return nil, err
	}
	net := new(grid.Network)
	if err := json.Unmarshal(b, net); err != nil {
		return nil, fmt.Errorf("decode grid model %s: %w", id, err)
	}
	return net, nil
}

// gridModelCache keeps the last few compiled grid model versions:
// versions never change, so a compiled model (read-only, safe for
// concurrent solves) stays valid for its id. The zero value is ready.
type gridModelCache struct {
	mu    sync.Mutex
	m     map[string]*powerflow.Model
	order []string // oldest first
}

const maxCompiledModels = 8

func (c *gridModelCache) get(id string) *powerflow.Model {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *gridModelCache) put(id string, m *powerflow.Model) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*powerflow.Model{}
	}
	if _, ok := c.m[id]; ok {
		return
	}
	if len(c.order) >= maxCompiledModels {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[id] = m
	c.order = append(c.order, id)
}

// CompiledGridModel returns a version's network compiled for power flows
// (loaded in tx, or from the service's cache). For app code that works on
// the grid (traffic light, grid-aware clearing): it does not authorise.
func (s *Service) CompiledGridModel(ctx context.Context, tx flexhub.Tx, id string) (*powerflow.Model, error) {
	if m := s.grids.get(id); m != nil {
		return m, nil
	}
	net, err := loadNetwork(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	m, err := powerflow.Compile(net)
	if err != nil {
		return nil, fmt.Errorf("compile stored grid model %s: %w", id, err)
	}
	s.grids.put(id, m)
	return m, nil
}

// GridModelMappings is a version's connection point mappings and the
// grid area's connection points that have none in it.
type GridModelMappings struct {
	GridModelID  string                     `json:"grid_model_id"`
	ModelVersion int64                      `json:"model_version"`
	Mappings     []flexhub.GridModelMapping `json:"mappings"`
	Unmapped     []UnmappedConnectionPoint  `json:"unmapped" doc:"connection points of the grid area without a bus in this version"`
}

// UnmappedConnectionPoint is a connection point without a bus.
type UnmappedConnectionPoint struct {
	ConnectionPointID string `json:"connection_point_id"`
	Code              string `json:"code"`
	NodeRef           string `json:"node_ref,omitempty"`
}

func (s *Service) mappingsOf(ctx context.Context, tx flexhub.Tx, m *flexhub.GridModel) (*GridModelMappings, error) {
	ms, err := tx.GridModelMappings(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	out := &GridModelMappings{GridModelID: m.ID, ModelVersion: m.ModelVersion, Mappings: ms, Unmapped: []UnmappedConnectionPoint{}}
	if out.Mappings == nil {
		out.Mappings = []flexhub.GridModelMapping{}
	}
	mapped := map[string]bool{}
	for _, mp := range ms {
		mapped[mp.ConnectionPointID] = true
	}
	pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
	for {
		cps, next, err := tx.ListConnectionPoints(ctx, flexhub.Filter{"grid_area_id": m.GridAreaID}, pg)
		if err != nil {
			return nil, err
		}
		for _, c := range cps {
			if !mapped[c.ID] {
				out.Unmapped = append(out.Unmapped, UnmappedConnectionPoint{ConnectionPointID: c.ID, Code: c.Code, NodeRef: c.NodeRef})
			}
		}
		if next == "" {
			return out, nil
		}
		pg.After = next
	}
}

// GetGridModelMappings returns a version's mappings and the unmapped
// connection points of its grid area.
func (s *Service) GetGridModelMappings(ctx context.Context, id string) (*GridModelMappings, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*GridModelMappings, error) {
		m, _, err := gridModelFor(ctx, tx, by, id, false)
		if err != nil {
			return nil, err
		}
		return s.mappingsOf(ctx, tx, m)
	})
}

// MapConnectionPoints sets the buses of connection points in the current
// version of a grid area's model, by the area's DSO. Every connection
// point must exist and lie in the model's grid area, every bus must exist
// in the version: otherwise EInvalid lists each problem and nothing
// changes.
func (s *Service) MapConnectionPoints(ctx context.Context, id string, req flexhub.GridMappingRequest) (*GridModelMappings, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var out *GridModelMappings
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		m, ga, err := gridModelFor(ctx, tx, by, id, true)
		if err != nil {
			return err
		}
		cur, err := tx.CurrentGridModel(ctx, m.GridAreaID)
		if err != nil {
			return err
		}
		if cur.ID != m.ID {
			return flexhub.Errorf(flexhub.EConflict, "grid model %s is version %d; grid area %s is at version %d (%s): map connection points in the current version",
				m.ID, m.ModelVersion, m.GridAreaID, cur.ModelVersion, cur.ID)
		}
		net, err := loadNetwork(ctx, tx, m.ID)
		if err != nil {
			return err
		}
		buses := net.BusIndex()
		var problems []string
		ms := make([]flexhub.GridModelMapping, len(req.Mappings))
		for i, it := range req.Mappings {
			ms[i] = flexhub.GridModelMapping{ConnectionPointID: it.ConnectionPointID, BusID: it.BusID}
			cp, err := tx.ConnectionPoint(ctx, it.ConnectionPointID)
			switch {
			case flexhub.ErrorKind(err) == flexhub.ENotFound:
				problems = append(problems, fmt.Sprintf("mappings[%d]: connection point %s does not exist", i, it.ConnectionPointID))
			case err != nil:
				return err
			case cp.GridAreaID != m.GridAreaID:
				problems = append(problems, fmt.Sprintf("mappings[%d]: connection point %s (%s) is in grid area %s, not in this model's grid area %s (%s)",
					i, cp.ID, cp.Code, cp.GridAreaID, ga.ID, ga.EIC))
			}
			if it.BusID == "" {
				continue
			}
			if b, ok := buses[it.BusID]; ok {
				ms[i].BusIndex = b
			} else {
				problems = append(problems, fmt.Sprintf("mappings[%d]: bus %q does not exist in grid model version %d", i, it.BusID, m.ModelVersion))
			}
		}
		if len(problems) > 0 {
			return flexhub.NewProblems("mappings", "connection points cannot be mapped", problems)
		}
		if err := tx.PutGridModelMappings(ctx, m.ID, ms); err != nil {
			return err
		}
		ca, err := tx.ControlArea(ctx, ga.ControlAreaID)
		if err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "grid_model.mapped", flexhub.KindGridModel, m.ID, m.ModelVersion, ms, ga.DSOID, ca.TSOID); err != nil {
			return err
		}
		out, err = s.mappingsOf(ctx, tx, m)
		return err
	})
	return out, err
}

// ConnectionPointBus returns where a connection point sits in its grid
// area's current model: for the system operators of the grid (the DSO,
// the TSO of its control area) and the register. App code that already
// holds a transaction calls tx.ConnectionPointBus directly.
func (s *Service) ConnectionPointBus(ctx context.Context, connectionPointID string) (*flexhub.GridBusRef, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.GridBusRef, error) {
		cp, err := tx.ConnectionPoint(ctx, connectionPointID)
		if err != nil {
			return nil, err
		}
		if _, err := gridAreaForModels(ctx, tx, by, cp.GridAreaID, false); err != nil {
			return nil, notFound("connection point", connectionPointID)
		}
		return tx.ConnectionPointBus(ctx, connectionPointID)
	})
}

// PowerFlowResult is one AC power flow of a grid model version. Units are
// in the names: p.u., degrees, MW, Mvar, kA, percent.
type PowerFlowResult struct {
	GridModelID    string             `json:"grid_model_id"`
	ModelVersion   int64              `json:"model_version"`
	Iterations     int                `json:"iterations"`
	MaxMismatchMVA float64            `json:"max_mismatch_mva" doc:"the largest remaining P or Q mismatch at any bus (MW or Mvar)"`
	LoadMW         float64            `json:"load_mw" doc:"the model's loads plus the injections' consumption"`
	GenerationMW   float64            `json:"generation_mw" doc:"the model's static generators plus the injections' generation"`
	LossesMW       float64            `json:"losses_mw"`
	LossesMvar     float64            `json:"losses_mvar"`
	SlackPMW       float64            `json:"slack_p_mw" doc:"what the slack(s) feed in; negative: the grid feeds back"`
	SlackQMvar     float64            `json:"slack_q_mvar"`
	VMin           PowerFlowBus       `json:"vmin" doc:"the bus with the lowest voltage"`
	VMax           PowerFlowBus       `json:"vmax" doc:"the bus with the highest voltage"`
	DefaultBand    [2]float64         `json:"default_band_pu" doc:"the voltage band of buses whose model gives none"`
	Violations     []GridViolation    `json:"violations" doc:"voltages outside their band, loadings above 100 %"`
	Buses          []PowerFlowBus     `json:"buses,omitempty" doc:"absent with ?summary=true"`
	Lines          []PowerFlowFlow    `json:"lines,omitempty"`
	Transformers   []PowerFlowFlow    `json:"transformers,omitempty"`
	Injections     []AppliedInjection `json:"injections,omitempty" doc:"the request's injections as applied, per bus"`
}

// PowerFlowBus is the voltage at a bus and its band.
type PowerFlowBus struct {
	Index  int     `json:"index"`
	ID     string  `json:"id"`
	VmPU   float64 `json:"vm_pu"`
	VaDeg  float64 `json:"va_degree"`
	VMinPU float64 `json:"vmin_pu"`
	VMaxPU float64 `json:"vmax_pu"`
}

// PowerFlowFlow is the flow through a line or transformer; powers flow
// into the branch at each end (from = HV side of a transformer).
type PowerFlowFlow struct {
	ID             string  `json:"id"`
	FromBus        string  `json:"from_bus"`
	ToBus          string  `json:"to_bus"`
	Open           bool    `json:"open,omitempty" doc:"disconnected by a switch: no flow"`
	PFromMW        float64 `json:"p_from_mw"`
	QFromMvar      float64 `json:"q_from_mvar"`
	PToMW          float64 `json:"p_to_mw"`
	QToMvar        float64 `json:"q_to_mvar"`
	IKA            float64 `json:"i_ka" doc:"the larger end current"`
	LossMW         float64 `json:"loss_mw"`
	LoadingPercent float64 `json:"loading_percent" doc:"largest end current over the rating; 0 when unrated"`
}

// GridViolation is a limit broken in a power flow, naming its element.
type GridViolation struct {
	Kind    string  `json:"kind" enum:"undervoltage,overvoltage,overload"`
	Element string  `json:"element" enum:"bus,line,transformer"`
	ID      string  `json:"id"`
	Value   float64 `json:"value" doc:"vm_pu for voltages, loading_percent for overloads"`
	Limit   float64 `json:"limit"`
	Message string  `json:"message"`
}

// AppliedInjection is a request's injection resolved to its bus.
type AppliedInjection struct {
	BusID             string  `json:"bus_id"`
	BusIndex          int     `json:"bus_index"`
	ConnectionPointID string  `json:"connection_point_id,omitempty"`
	PMW               float64 `json:"p_mw" doc:"net injection, generation positive"`
	QMvar             float64 `json:"q_mvar"`
}

// RulePowerFlowNotConverged is the rule a non-converged power flow names.
const RulePowerFlowNotConverged = "grid_model.power_flow.not_converged"

// RunPowerFlow runs an AC power flow of a version with the model's own
// loads and generators plus the request's injections, by the grid area's
// DSO. A flow that does not converge is an error naming the last
// mismatch and its bus, never a result.
func (s *Service) RunPowerFlow(ctx context.Context, id string, req flexhub.PowerFlowRequest) (*PowerFlowResult, error) {
	vmin, vmax, err := req.Band()
	if err != nil {
		return nil, err
	}
	var gm *flexhub.GridModel
	var model *powerflow.Model
	var mappings []flexhub.GridModelMapping
	err = s.viewAs(ctx, func(tx flexhub.Tx, by *flexhub.Party) (err error) {
		if gm, _, err = gridModelFor(ctx, tx, by, id, true); err != nil {
			return err
		}
		if model, err = s.CompiledGridModel(ctx, tx, id); err != nil {
			return err
		}
		mappings, err = tx.GridModelMappings(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	net := model.Network()
	p, q := model.BaseInjections()
	out := &PowerFlowResult{GridModelID: gm.ID, ModelVersion: gm.ModelVersion, DefaultBand: [2]float64{vmin, vmax}}
	for _, l := range net.Loads {
		out.LoadMW += l.PMW
	}
	for _, g := range net.Gens {
		out.GenerationMW += g.PMW
	}
	buses := net.BusIndex()
	cpBus := map[string]int{}
	for _, m := range mappings {
		cpBus[m.ConnectionPointID] = m.BusIndex
	}
	var problems []string
	for i := range req.Injections {
		in := &req.Injections[i]
		w, vars, err := in.Net(i)
		if err != nil {
			return nil, err
		}
		b, ok := 0, false
		if in.BusID != "" {
			if b, ok = buses[in.BusID]; !ok {
				problems = append(problems, fmt.Sprintf("injections[%d]: bus %q does not exist in grid model version %d", i, in.BusID, gm.ModelVersion))
				continue
			}
		} else if b, ok = cpBus[in.ConnectionPointID]; !ok {
			problems = append(problems, fmt.Sprintf("injections[%d]: connection point %s is not mapped to a bus of grid model version %d", i, in.ConnectionPointID, gm.ModelVersion))
			continue
		}
		pMW, qMvar := float64(w)/1e6, float64(vars)/1e6
		p[b] += pMW
		q[b] += qMvar
		if pMW > 0 {
			out.GenerationMW += pMW
		} else {
			out.LoadMW -= pMW
		}
		out.Injections = append(out.Injections, AppliedInjection{BusID: net.Buses[b].ID, BusIndex: b, ConnectionPointID: in.ConnectionPointID, PMW: pMW, QMvar: qMvar})
	}
	if len(problems) > 0 {
		return nil, flexhub.NewProblems("injections", "the injections cannot be applied", problems)
	}
	r, err := model.Solve(p, q, powerflow.Options{})
	var nc *powerflow.NotConvergedError
	if errors.As(err, &nc) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, RulePowerFlowNotConverged, "",
			"the power flow of grid model %s (version %d) did not converge after %d Newton steps: the largest mismatch was %.6g %s at bus %q; "+
				"no result is reported. Injections this large have no steady state in this grid (or the model is wrong there)",
			gm.ID, gm.ModelVersion, nc.Iterations, nc.MaxMismatchMVA, map[string]string{"P": "MW", "Q": "Mvar"}[nc.Kind], nc.Bus)
	}
	if err != nil {
		return nil, flexhub.FieldErrorf("injections", "%v", err)
	}
	fillPowerFlow(out, net, r, vmin, vmax)
	return out, nil
}

// limitTolPU keeps rounding noise from reporting a bus held exactly at
// its limit (a slack at 1.0 p.u. with a band of [1.0, 1.0]) as a violation.
const limitTolPU = 1e-9

// fillPowerFlow copies a converged result and lists its violations.
func fillPowerFlow(out *PowerFlowResult, net *grid.Network, r *powerflow.Result, vmin, vmax float64) {
	out.Iterations, out.MaxMismatchMVA = r.Iterations, r.MaxMismatchMVA
	out.LossesMW, out.LossesMvar, out.SlackPMW, out.SlackQMvar = r.LossesMW, r.LossesMvar, r.SlackPMW, r.SlackQMvar
	out.Violations = []GridViolation{}
	out.Buses = make([]PowerFlowBus, len(r.Buses))
	for i, b := range r.Buses {
		lo, hi := net.Buses[i].VMinPU, net.Buses[i].VMaxPU
		if lo == 0 && hi == 0 {
			lo, hi = vmin, vmax
		}
		pb := PowerFlowBus{Index: i, ID: b.ID, VmPU: b.VmPU, VaDeg: b.VaDeg, VMinPU: lo, VMaxPU: hi}
		out.Buses[i] = pb
		if i == 0 || b.VmPU < out.VMin.VmPU {
			out.VMin = pb
		}
		if i == 0 || b.VmPU > out.VMax.VmPU {
			out.VMax = pb
		}
		switch {
		case b.VmPU < lo-limitTolPU:
			out.Violations = append(out.Violations, GridViolation{Kind: "undervoltage", Element: "bus", ID: b.ID, Value: b.VmPU, Limit: lo,
				Message: fmt.Sprintf("bus %q: voltage %.4f p.u. below its limit %.4f p.u.", b.ID, b.VmPU, lo)})
		case b.VmPU > hi+limitTolPU:
			out.Violations = append(out.Violations, GridViolation{Kind: "overvoltage", Element: "bus", ID: b.ID, Value: b.VmPU, Limit: hi,
				Message: fmt.Sprintf("bus %q: voltage %.4f p.u. above its limit %.4f p.u.", b.ID, b.VmPU, hi)})
		}
	}
	flows := func(element string, rs []powerflow.BranchResult, ends func(i int) (string, string)) []PowerFlowFlow {
		fs := make([]PowerFlowFlow, len(rs))
		for i, b := range rs {
			f, t := ends(i)
			fs[i] = PowerFlowFlow{ID: b.ID, FromBus: f, ToBus: t, Open: b.Open, PFromMW: b.PFromMW, QFromMvar: b.QFromMvar, PToMW: b.PToMW, QToMvar: b.QToMvar,
				IKA: math.Max(b.IFromKA, b.IToKA), LossMW: b.LossMW, LoadingPercent: b.LoadingPercent}
			if b.LoadingPercent > 100 {
				out.Violations = append(out.Violations, GridViolation{Kind: "overload", Element: element, ID: b.ID, Value: b.LoadingPercent, Limit: 100,
					Message: fmt.Sprintf("%s %q: loading %.1f %% above 100 %%", element, b.ID, b.LoadingPercent)})
			}
		}
		return fs
	}
	out.Lines = flows("line", r.Lines, func(i int) (string, string) { return net.Lines[i].FromBus, net.Lines[i].ToBus })
	out.Transformers = flows("transformer", r.Trafos, func(i int) (string, string) { return net.Trafos[i].HVBus, net.Trafos[i].LVBus })
}
