package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerAggregates) }

type aggregateInput struct {
	GridAreaID string `query:"grid_area_id" required:"true" doc:"the group: a grid area"`
	Feeder     string `query:"feeder" doc:"one feeder of the grid area: the connection points on this node_ref"`
	From       string `query:"from" required:"true" doc:"RFC 3339, on the interval grid (UTC)"`
	To         string `query:"to" required:"true" doc:"RFC 3339, on the interval grid; at most 3,000 intervals after from"`
	Interval   string `query:"interval" required:"true" enum:"PT15M,PT1H,P1D" doc:"the interval length (P1D: UTC days)"`
}

func (s *Server) registerAggregates() {
	huma.Register(s.api, huma.Operation{OperationID: "aggregate-meter-data", Method: http.MethodGet, Path: "/v1/aggregates/meter-data", Tags: []string{"Consent"},
		Summary: "Anonymised meter data of a grid area or feeder",
		Description: "Consumer data shared beyond consent (docs/ANONYMISED_DATA.md): the active energy of a grid area, or of one feeder of it, summed per fixed interval " +
			"over its consumers and rounded to 1 Wh; no metering point, consumer or connection point is named. An interval is suppressed, with the reason, " +
			"when fewer than k consumers are in the group (fewer_than_k), when a member's data is missing (incomplete), or when fewer than k consumers joined " +
			"the group next to it (membership_change). k is the server's setting (default 10). Any authenticated party may ask; every query is in the audit chain (aggregate.read)."},
		func(ctx context.Context, in *aggregateInput) (*struct{ Body *app.Aggregate }, error) {
			from, err := queryTime("from", in.From)
			if err != nil {
				return nil, problem(err)
			}
			to, err := queryTime("to", in.To)
			if err != nil {
				return nil, problem(err)
			}
			a, err := s.svc.AggregateMeterData(ctx, app.AggregateQuery{GridAreaID: in.GridAreaID, Feeder: in.Feeder, From: from, To: to, Interval: in.Interval})
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *app.Aggregate }{a}, nil
		})
}
