package http

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerGridModels) }

// MaxGridModelBody is the largest grid model upload: lv_schutterwald's
// pandapower JSON (2,940 buses) is 1.6 MB, a zipped SimBench folder with
// its year of profiles a few MB.
const MaxGridModelBody = 64 << 20

type gridModelUploadInput struct {
	IDPath
	IdempotencyInput
	Format  string `query:"format" required:"true" doc:"the file's format: pandapower (pandapower.to_json JSON), simbench (a zip of one SimBench grid folder) or cim (IEC CIM RDF/XML)"`
	RawBody []byte `contentType:"application/octet-stream"`
}

type gridModelUploadOutput struct {
	Location string `header:"Location"`
	Replayed string `header:"Idempotent-Replayed" doc:"true when this answers a retry of an earlier request"`
	Body     *app.GridModelUpload
}

type gridModelFileOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	Digest             string `header:"X-Content-SHA256" doc:"hex SHA-256 of the file"`
	Body               []byte
}

type gridModelVersionsOutput struct {
	Body struct {
		Items []*flexhub.GridModel `json:"items"`
	}
}

type gridMappingInput struct {
	IDPath
	Body flexhub.GridMappingRequest
}

type powerFlowInput struct {
	IDPath
	Summary bool                      `query:"summary" doc:"true: leave out the per-bus and per-branch results (the summary and the violations only)"`
	Body    *flexhub.PowerFlowRequest `required:"false"`
}

// gridProblem is problem for grid model errors: a *flexhub.Problems
// (an invalid model, a mapping or injection list with bad entries)
// lists every problem as its own error detail.
func gridProblem(err error) error {
	var ps *flexhub.Problems
	if !errors.As(err, &ps) {
		return problem(err)
	}
	m := problem(ps.Err).(*huma.ErrorModel)
	loc := "body"
	if f := ps.Err.Field; f != "" && f != "body" {
		loc = "body." + f
	}
	m.Errors = make([]*huma.ErrorDetail, len(ps.List))
	for i, p := range ps.List {
		m.Errors[i] = &huma.ErrorDetail{Message: p, Location: loc}
	}
	return m
}

func (s *Server) registerGridModels() {
	tags := []string{"Grid models"}
	const access = " Grid models are sensitive: the grid area's DSO and the TSO of its control area read them (and the register); nobody else. docs/GRID_MODELS.md."
	huma.Register(s.api, huma.Operation{OperationID: "upload-grid-model", Method: http.MethodPost, Path: "/v1/grid-areas/{id}/grid-models", Tags: tags,
		Summary: "Upload a new version of a grid area's grid model", DefaultStatus: http.StatusCreated, MaxBodyBytes: MaxGridModelBody,
		Description: "By the DSO operating the grid area: the file as the request body (up to 64 MiB, 413 beyond), its format in ?format=: " +
			"pandapower (the JSON of pandapower.to_json), simbench (a zip of one SimBench grid folder, its CSV files at the top or in one folder) " +
			"or cim (IEC CIM RDF/XML of a distribution feeder, e.g. the IEEE 13 and 123 node feeders as CIM). " +
			"The file is parsed, validated and compiled for power flows before anything is stored: a model with problems (islands, missing impedances, " +
			"kV given in volts, unknown buses, unsupported elements, ...) answers 422 listing every problem, each naming its element, and nothing is stored. " +
			"Each upload is the grid area's next version (1, 2, ...); the previous version's connection point mappings carry over where their bus still exists, " +
			"the others are listed in dropped_mappings. With an Idempotency-Key, a retry of the same upload (same area, format and file) answers the version the first created."},
		func(ctx context.Context, in *gridModelUploadInput) (*gridModelUploadOutput, error) {
			res, err := s.svc.UploadGridModel(ctx, in.ID, in.Format, in.RawBody, in.IdempotencyKey)
			if err != nil {
				return nil, gridProblem(err)
			}
			out := &gridModelUploadOutput{Location: "/v1/grid-models/" + res.Model.ID, Body: res}
			if res.Replayed {
				out.Replayed = "true"
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-grid-models", Method: http.MethodGet, Path: "/v1/grid-areas/{id}/grid-models", Tags: tags,
		Summary: "List the versions of a grid area's grid model", Description: "Oldest first." + access},
		func(ctx context.Context, in *IDPath) (*gridModelVersionsOutput, error) {
			ms, err := s.svc.ListGridModels(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			out := &gridModelVersionsOutput{}
			out.Body.Items = ms
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-current-grid-model", Method: http.MethodGet, Path: "/v1/grid-areas/{id}/grid-model", Tags: tags,
		Summary: "Read the current version of a grid area's grid model", Description: "The summary of the highest version; 404 before the first upload." + access},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.GridModel], error) {
			m, err := s.svc.CurrentGridModel(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(m, m.ModelVersion), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-model", Method: http.MethodGet, Path: "/v1/grid-models/{id}", Tags: tags,
		Summary: "Read one version of a grid model", Description: "Its summary: format, element counts, voltage levels, who uploaded it when, the file's SHA-256." + access},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.GridModel], error) {
			m, err := s.svc.GetGridModel(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(m, m.ModelVersion), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-model-elements", Method: http.MethodGet, Path: "/v1/grid-models/{id}/elements", Tags: tags,
		Summary: "Read the buses, lines and transformers of a grid model version",
		Description: "Whole (a 3,000-bus grid is a few hundred kilobytes, compressed on the wire when the client accepts gzip). Each bus carries its index: " +
			"the position power-flow results and mappings use." + access},
		func(ctx context.Context, in *IDPath) (*struct{ Body *app.GridModelElements }, error) {
			el, err := s.svc.GetGridModelElements(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *app.GridModelElements }{Body: el}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "download-grid-model", Method: http.MethodGet, Path: "/v1/grid-models/{id}/file", Tags: tags,
		Summary: "Download the file a grid model version was uploaded as", Description: "Byte for byte as received; its SHA-256 in X-Content-SHA256." + access,
		Responses: map[string]*huma.Response{"200": {Description: "the file", Content: map[string]*huma.MediaType{
			"application/json": {Schema: &huma.Schema{Type: "string", Description: "pandapower JSON"}},
			"application/zip":  {Schema: &huma.Schema{Type: "string", Format: "binary", Description: "zipped SimBench folder"}}}}}},
		func(ctx context.Context, in *IDPath) (*gridModelFileOutput, error) {
			f, err := s.svc.GetGridModelFile(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			ct, ext := "application/octet-stream", "bin"
			switch f.Model.Format {
			case flexhub.GridFormatPandapower:
				ct, ext = "application/json", "json"
			case flexhub.GridFormatSimBench:
				ct, ext = "application/zip", "zip"
			}
			name := "grid-model-" + f.Model.GridAreaID + "-v" + strconv.FormatInt(f.Model.ModelVersion, 10) + "." + ext
			return &gridModelFileOutput{ContentType: ct, ContentDisposition: `attachment; filename="` + name + `"`, Digest: f.Model.FileSHA256, Body: f.Data}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-model-mappings", Method: http.MethodGet, Path: "/v1/grid-models/{id}/mappings", Tags: tags,
		Summary:     "Read the connection point → bus mappings of a grid model version",
		Description: "The mapped connection points with their bus, and the grid area's connection points without one (unmapped)." + access},
		func(ctx context.Context, in *IDPath) (*struct{ Body *app.GridModelMappings }, error) {
			m, err := s.svc.GetGridModelMappings(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *app.GridModelMappings }{Body: m}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "map-connection-points", Method: http.MethodPut, Path: "/v1/grid-models/{id}/mappings", Tags: tags,
		Summary: "Map connection points to buses of the current grid model version",
		Description: "By the DSO operating the grid area, in the current version only (409 for an older one). Each item sets a connection point's bus; " +
			"an empty bus_id removes its mapping; connection points not named keep theirs. A connection point that does not exist or lies in another grid area, " +
			"or a bus that is not in the version, answers 422 listing every such item, and nothing changes. Answers the version's mappings after the change."},
		func(ctx context.Context, in *gridMappingInput) (*struct{ Body *app.GridModelMappings }, error) {
			m, err := s.svc.MapConnectionPoints(ctx, in.ID, in.Body)
			if err != nil {
				return nil, gridProblem(err)
			}
			return &struct{ Body *app.GridModelMappings }{Body: m}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "run-power-flow", Method: http.MethodPost, Path: "/v1/grid-models/{id}/power-flow", Tags: tags,
		Summary: "Run an AC power flow on a grid model version",
		Description: "By the DSO operating the grid area. The model's own loads and static generators, plus the optional injections at buses or at mapped " +
			"connection points (generation, consumption, reactive_generation, reactive_consumption, each with its unit as everywhere in the API). " +
			"Answers bus voltages, line and transformer flows and loadings, losses, and the violations: a voltage outside the bus's band (the model's own, " +
			"else default_vmin_pu..default_vmax_pu, 0.9..1.1 p.u. by default) or a loading above 100 %, each naming its element. " +
			"A flow that does not converge answers 422 (type " + RuleURI(app.RulePowerFlowNotConverged) + ") with the last mismatch and its bus, never a result."},
		func(ctx context.Context, in *powerFlowInput) (*struct{ Body *app.PowerFlowResult }, error) {
			req := flexhub.PowerFlowRequest{}
			if in.Body != nil {
				req = *in.Body
			}
			r, err := s.svc.RunPowerFlow(ctx, in.ID, req)
			if err != nil {
				return nil, gridProblem(err)
			}
			if in.Summary {
				r.Buses, r.Lines, r.Transformers = nil, nil, nil
			}
			return &struct{ Body *app.PowerFlowResult }{Body: r}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-connection-point-bus", Method: http.MethodGet, Path: "/v1/connection-points/{id}/bus", Tags: tags,
		Summary: "Where a connection point sits in its grid area's current grid model",
		Description: "The current version and the bus the connection point is mapped to in it; 404 when the grid area has no model or the current version " +
			"does not map the connection point." + access},
		func(ctx context.Context, in *IDPath) (*struct{ Body *flexhub.GridBusRef }, error) {
			r, err := s.svc.ConnectionPointBus(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *flexhub.GridBusRef }{Body: r}, nil
		})
}
