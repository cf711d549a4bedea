package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerResults) }

type resultListInput struct {
	PageInput
	SessionID        string `query:"session_id" doc:"the session's market operator lists all of it"`
	NeedID           string `query:"need_id"`
	FSPID            string `query:"fsp_id" doc:"only your own (or \"self\")"`
	SystemOperatorID string `query:"system_operator_id" doc:"only yourself as the buyer (or \"self\")"`
	Status           string `query:"status" enum:"accepted,partially_accepted,rejected"`
}

type obligationListInput struct {
	PageInput
	SessionID        string `query:"session_id" doc:"the session's market operator lists all of it"`
	NeedID           string `query:"need_id"`
	FSPID            string `query:"fsp_id" doc:"only your own (or \"self\")"`
	SystemOperatorID string `query:"system_operator_id" doc:"only yourself as the buyer (or \"self\")"`
	ResourceID       string `query:"resource_id"`
	Status           string `query:"status" enum:"active,transferred"`
}

// SessionResultsOutput is a session's results as the caller may read them.
type SessionResultsOutput struct {
	Body *app.SessionResults
}

// SessionOutcomeOutput is a session's public market outcome.
type SessionOutcomeOutput struct {
	Body *app.SessionOutcome
}

const resultsVisibility = "Each FSP reads its own awards and obligations only; the buying system operator those on its needs; the session's market operator all of the session; other FSPs never."

func (s *Server) registerResults() {
	tags := []string{"Market"}
	huma.Register(s.api, huma.Operation{OperationID: "get-market-session-results", Method: http.MethodGet, Path: "/v1/market-sessions/{id}/results", Tags: tags,
		Summary: "Read a session's clearing results",
		Description: "Once the session is cleared (409 session.not_cleared before): per need the covered quantity, shortfall, prices and total cost (to the buyer and the market operator), " +
			"and the awards: per bid accepted, partially_accepted or rejected with the reason, the accepted quantity, price and amount per interval. " + resultsVisibility},
		func(ctx context.Context, in *IDPath) (*SessionResultsOutput, error) {
			r, err := s.svc.GetSessionResults(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &SessionResultsOutput{Body: r}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-market-session-outcome", Method: http.MethodGet, Path: "/v1/market-sessions/{id}/outcome", Tags: tags,
		Summary: "Read a session's public market outcome",
		Description: "For every authenticated party, once the session is cleared: per need and interval the demand, accepted volume and shortfall, " +
			"and the clearing price (uniform pricing) or the min, max and volume-weighted average price paid (pay-as-bid). No FSP, bid or resource is named."},
		func(ctx context.Context, in *IDPath) (*SessionOutcomeOutput, error) {
			r, err := s.svc.GetSessionOutcome(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &SessionOutcomeOutput{Body: r}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-awards", Method: http.MethodGet, Path: "/v1/awards", Tags: tags,
		Summary: "List awards", Description: "The clearing's verdict per bid. " + resultsVisibility + " Naming another party in fsp_id or system_operator_id is refused (403)."},
		func(ctx context.Context, in *resultListInput) (*ListOutput[flexhub.Award], error) {
			res, err := s.svc.ListAwards(ctx, app.ResultFilter{SessionID: in.SessionID, NeedID: in.NeedID, FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-award", Method: http.MethodGet, Path: "/v1/awards/{id}", Tags: tags,
		Summary: "Read an award", Description: resultsVisibility + " To anyone else it does not exist (404)."},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Award], error) {
			a, err := s.svc.GetAward(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(a, a.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-obligations", Method: http.MethodGet, Path: "/v1/obligations", Tags: tags,
		Summary: "List obligations to deliver", Description: "Every accepted or partially accepted bid becomes an obligation: resource, need, buyer and the quantity owed per interval. " + resultsVisibility},
		func(ctx context.Context, in *obligationListInput) (*ListOutput[flexhub.Obligation], error) {
			res, err := s.svc.ListObligations(ctx, app.ResultFilter{SessionID: in.SessionID, NeedID: in.NeedID, FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID, ResourceID: in.ResourceID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-obligation", Method: http.MethodGet, Path: "/v1/obligations/{id}", Tags: tags,
		Summary: "Read an obligation", Description: resultsVisibility + " To anyone else it does not exist (404)."},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Obligation], error) {
			o, err := s.svc.GetObligation(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(o, o.Version), nil
		})
}
