package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerNominations) }

type nominationCreateInput struct {
	IdempotencyInput
	Body flexhub.NominationSpec
}

type nominationUpdateInput struct {
	IDPath
	IfMatchInput
	Body flexhub.NominationSpec
}

type nominationListInput struct {
	PageInput
	ResourceID       string `query:"resource_id"`
	SessionID        string `query:"session_id"`
	FSPID            string `query:"fsp_id"`
	SystemOperatorID string `query:"system_operator_id"`
}

func (s *Server) registerNominations() {
	tags := []string{"Settlement"}
	huma.Register(s.api, huma.Operation{OperationID: "submit-nomination", Method: http.MethodPost, Path: "/v1/nominations", Tags: tags,
		Summary: "Nominate a resource's baseline", DefaultStatus: http.StatusCreated,
		Description: "By the FSP operating the resource, for a market session whose product's baseline_method is nominated_schedule, before the session's gate closure (410 after): " +
			"per market time unit, the power the resource would take from (import) or feed into (export) the grid without activation. " +
			"The schedule is checked against the resource's history (a high 4 of 5 baseline over the same intervals): a total beyond the product's nomination_tolerance_pct, " +
			"or an interval above three times the history's largest, is refused (urn:flexhub:rule:baseline.implausible_nomination); without history it is accepted as unchecked. " +
			"One nomination per resource and session: replace it with PUT. docs/BASELINES.md."},
		func(ctx context.Context, in *nominationCreateInput) (*ObjectOutput[flexhub.Nomination], error) {
			c, err := s.svc.Nominate(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/nominations/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-nominations", Method: http.MethodGet, Path: "/v1/nominations", Tags: tags,
		Summary: "List nominated baselines", Description: "An FSP sees its own, a system operator those for its sessions."},
		func(ctx context.Context, in *nominationListInput) (*ListOutput[flexhub.Nomination], error) {
			f := flexhub.Filter{}
			for k, v := range map[string]string{"resource_id": in.ResourceID, "session_id": in.SessionID, "fsp_id": in.FSPID, "system_operator_id": in.SystemOperatorID} {
				if v != "" {
					f[k] = v
				}
			}
			res, err := s.svc.ListNominations(ctx, f, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-nomination", Method: http.MethodGet, Path: "/v1/nominations/{id}", Tags: tags,
		Summary: "Read a nominated baseline"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Nomination], error) {
			n, err := s.svc.Nomination(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(n, n.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "replace-nomination", Method: http.MethodPut, Path: "/v1/nominations/{id}", Tags: tags,
		Summary:     "Replace a nominated baseline",
		Description: "By its FSP, with If-Match, until the session's gate closes (410 after: the nomination is frozen). Same resource and session; checked like a new one; every version is kept."},
		func(ctx context.Context, in *nominationUpdateInput) (*ObjectOutput[flexhub.Nomination], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			n, err := s.svc.ReplaceNomination(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(n, n.Version), nil
		})
}
