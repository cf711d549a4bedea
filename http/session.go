package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerSessions) }

type sessionCreateInput struct {
	IdempotencyInput
	Body flexhub.SessionSpec
}

type sessionListInput struct {
	PageInput
	OperatorID       string `query:"operator_id" doc:"the market operator; \"self\" for the caller"`
	ProductID        string `query:"product_id"`
	SystemOperatorID string `query:"system_operator_id" doc:"the buyer; \"self\" for the caller"`
	Status           string `query:"status" enum:"scheduled,open,closed,cleared,cancelled"`
}

func (s *Server) registerSessions() {
	tags := []string{"Market"}
	huma.Register(s.api, huma.Operation{OperationID: "create-market-session", Method: http.MethodPost, Path: "/v1/market-sessions", Tags: tags,
		Summary: "Open a call for tender", DefaultStatus: http.StatusCreated,
		Description: "By a market operator, or by the system operator buying the needs' product acting as one. The needs must be open, of one product, in no other session, " +
			"and start delivery after gate closure. The session is scheduled until gate opening and open until gate closure; flexhub moves the gates on time by itself " +
			"and notifies the operator, the buyer and every FSP prequalified for the product."},
		func(ctx context.Context, in *sessionCreateInput) (*ObjectOutput[flexhub.MarketSession], error) {
			c, err := s.svc.CreateSession(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/market-sessions/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-market-sessions", Method: http.MethodGet, Path: "/v1/market-sessions", Tags: tags,
		Summary: "List market sessions", Description: "Sessions are public to every authenticated party."},
		func(ctx context.Context, in *sessionListInput) (*ListOutput[flexhub.MarketSession], error) {
			res, err := s.svc.ListSessions(ctx, app.SessionFilter{OperatorID: in.OperatorID, ProductID: in.ProductID, SystemOperatorID: in.SystemOperatorID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-market-session", Method: http.MethodGet, Path: "/v1/market-sessions/{id}", Tags: tags,
		Summary: "Read a market session"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.MarketSession], error) {
			m, err := s.svc.GetSession(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(m, m.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "cancel-market-session", Method: http.MethodPost, Path: "/v1/market-sessions/{id}/cancel", Tags: tags,
		Summary: "Cancel a market session", Description: "By its operator before gate closure (410 after). Its needs are free for another session; its bids are never cleared."},
		func(ctx context.Context, in *workflowStepInput) (*ObjectOutput[flexhub.MarketSession], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			m, err := s.svc.CancelSession(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(m, m.Version), nil
		})
}
