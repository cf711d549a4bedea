package http

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerGridForecasts) }

type gridForecastInput struct {
	IDPath
	Body flexhub.GridForecastSpec
}

type gridForecastListInput struct {
	IDPath
	PageInput
}

type gridNeedsInput struct {
	IDPath
	Kind string `query:"kind" enum:"active,reactive" doc:"active (default) or reactive flexibility"`
}

type gridNeedsOutput struct {
	Body struct {
		Items []app.GridNeed `json:"items" nullable:"false"`
	}
}

type hostingInput struct {
	IDPath
	From time.Time `query:"from" required:"true" doc:"first instant of the operating states, ISO 8601"`
	To   time.Time `query:"to" required:"true" doc:"end of the operating states (at most 7 days after from)"`
}

func (s *Server) registerGridForecasts() {
	tags := []string{"TSO-DSO coordination"}
	huma.Register(s.api, huma.Operation{OperationID: "upload-grid-forecast", Method: http.MethodPost, Path: "/v1/grid-models/{id}/forecasts", Tags: tags,
		Summary: "Forecast the operating state of a grid model", DefaultStatus: http.StatusCreated,
		Description: "By the grid area's DSO, for the current model version: per 15-minute interval, the model's loads and generators scaled, and the load and generation " +
			"at named buses or connection points. flexhub runs every interval's power flow first: a forecast that does not solve is refused naming the interval, and " +
			"each stored interval carries its extremes and violations. The traffic light, the needs and the hosting capacity are computed on these states. docs/GRID_FORECASTS.md."},
		func(ctx context.Context, in *gridForecastInput) (*ObjectOutput[flexhub.GridForecast], error) {
			f, err := s.svc.UploadGridForecast(ctx, in.ID, in.Body)
			if err != nil {
				return nil, problem(err)
			}
			return &ObjectOutput[flexhub.GridForecast]{Body: f, ETag: etag(f.Version), Location: "/v1/grid-forecasts/" + f.ID}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-grid-forecasts", Method: http.MethodGet, Path: "/v1/grid-models/{id}/forecasts", Tags: tags,
		Summary: "List a grid model's forecasts", Description: "The DSO and the TSO of the control area, as the grid model."},
		func(ctx context.Context, in *gridForecastListInput) (*ListOutput[flexhub.GridForecast], error) {
			res, err := s.svc.ListGridForecasts(ctx, in.ID, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-forecast", Method: http.MethodGet, Path: "/v1/grid-forecasts/{id}", Tags: tags,
		Summary: "Read a grid forecast with its states per interval"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.GridForecast], error) {
			f, err := s.svc.GetGridForecast(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(f, f.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-forecast-needs", Method: http.MethodGet, Path: "/v1/grid-forecasts/{id}/needs", Tags: tags,
		Summary: "Flexibility needs that would remove a forecast's violations",
		Description: "By the DSO: where (the buses that relieve each limit and the connection points mapped to them), when, how much, which direction, active or reactive; " +
			"sized with the sensitivities and confirmed by AC power flows (resolved). Publish one with POST /v1/needs and a product. docs/GRID_OPERATIONS.md."},
		func(ctx context.Context, in *gridNeedsInput) (*gridNeedsOutput, error) {
			ns, err := s.svc.GridForecastNeeds(ctx, in.ID, in.Kind)
			if err != nil {
				return nil, problem(err)
			}
			out := &gridNeedsOutput{}
			out.Body.Items = ns
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-prequalification-capacity", Method: http.MethodGet, Path: "/v1/grid-prequalifications/{id}/hosting-capacity", Tags: tags,
		Summary: "The hosting capacity at the unit's bus, for the grid prequalification",
		Description: "By the DSO: the largest up and down (and reactive) change at the unit's bus that keeps every limit in every 15-minute operating state of [from, to) " +
			"(forecasts where they exist, else the model's base case), confirmed by AC power flows, with the limiting element: the kW caps to offer as a limited approval."},
		func(ctx context.Context, in *hostingInput) (*struct{ Body *app.HostingCapacity }, error) {
			h, err := s.svc.GridPrequalificationCapacity(ctx, in.ID, in.From, in.To)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *app.HostingCapacity }{Body: h}, nil
		})
}
