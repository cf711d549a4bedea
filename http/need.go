package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerNeeds) }

type needCreateInput struct {
	IdempotencyInput
	Body flexhub.NeedSpec
}

type needUpdateInput struct {
	IDPath
	IfMatchInput
	Body flexhub.NeedSpec
}

type needListInput struct {
	PageInput
	ProductID        string `query:"product_id"`
	SystemOperatorID string `query:"system_operator_id" doc:"the buyer; \"self\" for the caller"`
	SessionID        string `query:"session_id"`
	Status           string `query:"status" enum:"open,cancelled,closed"`
}

func (s *Server) registerNeeds() {
	tags := []string{"Market"}
	huma.Register(s.api, huma.Operation{OperationID: "publish-need", Method: http.MethodPost, Path: "/v1/needs", Tags: tags,
		Summary: "Publish a flexibility need", DefaultStatus: http.StatusCreated,
		Description: "By the TSO or DSO buying the (active) product: where (grid_area_id, or connection_point_ids), direction, what it buys (capacity, energy or both, as the product pays), " +
			"and per interval (aligned to the product's time resolution, sorted, in the future) the quantity and optionally the maximum price. " +
			"Prices are decimal strings with a currency ({\"amount\": \"45.50\", \"currency\": \"EUR\"}), exact to 4 decimals: availability per MW per hour, activation per MWh. " +
			"A refused rule is named in the problem's type (urn:flexhub:rule:...)."},
		func(ctx context.Context, in *needCreateInput) (*ObjectOutput[flexhub.Need], error) {
			c, err := s.svc.PublishNeed(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/needs/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-needs", Method: http.MethodGet, Path: "/v1/needs", Tags: tags,
		Summary: "List flexibility needs", Description: "Needs are public calls for tender: every authenticated party lists them."},
		func(ctx context.Context, in *needListInput) (*ListOutput[flexhub.Need], error) {
			res, err := s.svc.ListNeeds(ctx, app.NeedFilter{ProductID: in.ProductID, SystemOperatorID: in.SystemOperatorID, SessionID: in.SessionID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-need", Method: http.MethodGet, Path: "/v1/needs/{id}", Tags: tags,
		Summary: "Read a flexibility need"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Need], error) {
			n, err := s.svc.GetNeed(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(n, n.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "revise-need", Method: http.MethodPut, Path: "/v1/needs/{id}", Tags: tags,
		Summary: "Revise a flexibility need",
		Description: "By its system operator, with If-Match, until the gate of its session closes (410 after). The product cannot change. " +
			"Bids already submitted were checked against the earlier version."},
		func(ctx context.Context, in *needUpdateInput) (*ObjectOutput[flexhub.Need], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			n, err := s.svc.ReviseNeed(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(n, n.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "cancel-need", Method: http.MethodPost, Path: "/v1/needs/{id}/cancel", Tags: tags,
		Summary: "Cancel a flexibility need", Description: "By its system operator until the gate of its session closes (410 after)."},
		func(ctx context.Context, in *workflowStepInput) (*ObjectOutput[flexhub.Need], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			n, err := s.svc.CancelNeed(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(n, n.Version), nil
		})
}
