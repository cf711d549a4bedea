package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerPrequalifications) }

// OptionalIfMatchInput is If-Match on workflow steps. It is optional there
// because each step reads, checks and writes in one transaction and the
// store refuses to overwrite a newer version anyway; a client that wants
// to be sure it acts on what it last read sends it.
type OptionalIfMatchInput struct {
	IfMatch string `header:"If-Match" doc:"optional: the ETag you read; the step fails with 409 if the object changed since"`
}

// version returns the sent version, 0 when none was sent.
func (i OptionalIfMatchInput) version() (int64, error) {
	if i.IfMatch == "" {
		return 0, nil
	}
	return IfMatchInput(i).version()
}

type prequalCreateInput struct {
	IdempotencyInput
	Body flexhub.PrequalRequest
}

type prequalListInput struct {
	PageInput
	ResourceID       string `query:"resource_id"`
	ProductID        string `query:"product_id"`
	FSPID            string `query:"fsp_id" doc:"the FSP; \"self\" for the caller"`
	SystemOperatorID string `query:"system_operator_id" doc:"the reviewing system operator; \"self\" for the caller"`
	Status           string `query:"status" enum:"submitted,information_requested,approved,approved_with_conditions,rejected,withdrawn"`
}

type infoRequestInput struct {
	IDPath
	OptionalIfMatchInput
	Body struct {
		Keys []string `json:"keys,omitempty" doc:"requirement keys the FSP must answer again"`
		Text string   `json:"text,omitempty" maxLength:"4000" doc:"what is missing; required unless keys are given"`
	}
}

type supplementInput struct {
	IDPath
	OptionalIfMatchInput
	Body struct {
		Answers map[string]string `json:"answers,omitempty" doc:"new or corrected answers, by requirement key"`
		Text    string            `json:"text,omitempty" maxLength:"4000"`
	}
}

type decisionInput struct {
	IDPath
	OptionalIfMatchInput
	Body flexhub.DecisionRequest
}

type workflowStepInput struct {
	IDPath
	OptionalIfMatchInput
}

type gridPrequalCreateInput struct {
	IdempotencyInput
	Body app.GridPrequalRequest
}

type gridPrequalListInput struct {
	PageInput
	ResourceID string `query:"resource_id"`
	DSOID      string `query:"dso_id" doc:"the deciding DSO; \"self\" for the caller"`
	FSPID      string `query:"fsp_id" doc:"the FSP; \"self\" for the caller"`
	Status     string `query:"status" enum:"requested,approved,limited,rejected"`
}

type gridDecisionInput struct {
	IDPath
	OptionalIfMatchInput
	Body flexhub.GridDecisionRequest
}

// prequalStep adapts a workflow step to a handler.
func prequalStep[I any](version func(*I) (int64, error), step func(context.Context, *I, int64) (*flexhub.Prequalification, error)) func(context.Context, *I) (*ObjectOutput[flexhub.Prequalification], error) {
	return func(ctx context.Context, in *I) (*ObjectOutput[flexhub.Prequalification], error) {
		v, err := version(in)
		if err != nil {
			return nil, problem(err)
		}
		p, err := step(ctx, in, v)
		if err != nil {
			return nil, problem(err)
		}
		return object(p, p.Version), nil
	}
}

func (s *Server) registerPrequalifications() {
	tags := []string{"Prequalification"}
	huma.Register(s.api, huma.Operation{OperationID: "submit-prequalification", Method: http.MethodPost, Path: "/v1/prequalifications", Tags: tags,
		Summary: "Ask to prequalify a resource for a product", DefaultStatus: http.StatusCreated,
		Description: "By the FSP operating the resource, which must be active. The product must be active and every required requirement answered. " +
			"One request per resource and product may be open, and none while an approval is still valid (409). The request goes to the product's system operator."},
		func(ctx context.Context, in *prequalCreateInput) (*ObjectOutput[flexhub.Prequalification], error) {
			c, err := s.svc.SubmitPrequalification(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/prequalifications/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-prequalifications", Method: http.MethodGet, Path: "/v1/prequalifications", Tags: tags,
		Summary: "List prequalifications",
		Description: "The caller's own: an FSP sees its requests, a system operator those it reviews; the register sees all. " +
			"Party filters must name the caller (or self); naming another party is refused (403)."},
		func(ctx context.Context, in *prequalListInput) (*ListOutput[flexhub.Prequalification], error) {
			res, err := s.svc.ListPrequalifications(ctx, app.PrequalFilter{ResourceID: in.ResourceID, ProductID: in.ProductID,
				FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-prequalification", Method: http.MethodGet, Path: "/v1/prequalifications/{id}", Tags: tags,
		Summary: "Read a prequalification", Description: "Visible to the FSP, the product's system operator and the register; to anyone else it does not exist."},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Prequalification], error) {
			p, err := s.svc.GetPrequalification(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(p, p.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "request-prequalification-information", Method: http.MethodPost, Path: "/v1/prequalifications/{id}/information-requests", Tags: tags,
		Summary: "Ask the FSP for more information", Description: "By the product's system operator while the request is submitted; any number of rounds."},
		prequalStep(func(in *infoRequestInput) (int64, error) { return in.version() },
			func(ctx context.Context, in *infoRequestInput, v int64) (*flexhub.Prequalification, error) {
				return s.svc.RequestPrequalInformation(ctx, in.ID, in.Body.Keys, in.Body.Text, v)
			}))
	huma.Register(s.api, huma.Operation{OperationID: "supplement-prequalification", Method: http.MethodPost, Path: "/v1/prequalifications/{id}/supplements", Tags: tags,
		Summary: "Answer an information request", Description: "By the FSP after the system operator asked; the request goes back to review."},
		prequalStep(func(in *supplementInput) (int64, error) { return in.version() },
			func(ctx context.Context, in *supplementInput, v int64) (*flexhub.Prequalification, error) {
				return s.svc.SupplementPrequalification(ctx, in.ID, in.Body.Answers, in.Body.Text, v)
			}))
	huma.Register(s.api, huma.Operation{OperationID: "decide-prequalification", Method: http.MethodPost, Path: "/v1/prequalifications/{id}/decision", Tags: tags,
		Summary: "Decide a prequalification",
		Description: "By the product's system operator, once: approved, approved_with_conditions (max_power and/or conditions) or rejected (reasons required), with a validity period. " +
			"A party cannot decide a request it made itself (403). The result goes to the FSP, the system operator and the resource's DSO."},
		prequalStep(func(in *decisionInput) (int64, error) { return in.version() },
			func(ctx context.Context, in *decisionInput, v int64) (*flexhub.Prequalification, error) {
				return s.svc.DecidePrequalification(ctx, in.ID, in.Body, v)
			}))
	huma.Register(s.api, huma.Operation{OperationID: "withdraw-prequalification", Method: http.MethodPost, Path: "/v1/prequalifications/{id}/withdraw", Tags: tags,
		Summary: "Withdraw a prequalification request", Description: "By the FSP while no decision is made."},
		prequalStep(func(in *workflowStepInput) (int64, error) { return in.version() },
			func(ctx context.Context, in *workflowStepInput, v int64) (*flexhub.Prequalification, error) {
				return s.svc.WithdrawPrequalification(ctx, in.ID, v)
			}))

	gtags := []string{"Grid prequalification"}
	huma.Register(s.api, huma.Operation{OperationID: "request-grid-prequalification", Method: http.MethodPost, Path: "/v1/grid-prequalifications", Tags: gtags,
		Summary: "Ask the connecting DSO to grid-prequalify a unit", DefaultStatus: http.StatusCreated,
		Description: "By the FSP operating the unit; groups are grid-prequalified per unit. One open request per unit (409)."},
		func(ctx context.Context, in *gridPrequalCreateInput) (*ObjectOutput[flexhub.GridPrequalification], error) {
			c, err := s.svc.RequestGridPrequalification(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/grid-prequalifications/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-grid-prequalifications", Method: http.MethodGet, Path: "/v1/grid-prequalifications", Tags: gtags,
		Summary:     "List grid prequalifications",
		Description: "An FSP sees its own, a DSO those it decides, the register all. A system operator buying a product the unit prequalifies for lists by resource_id."},
		func(ctx context.Context, in *gridPrequalListInput) (*ListOutput[flexhub.GridPrequalification], error) {
			res, err := s.svc.ListGridPrequalifications(ctx, app.GridPrequalFilter{ResourceID: in.ResourceID, DSOID: in.DSOID, FSPID: in.FSPID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-prequalification", Method: http.MethodGet, Path: "/v1/grid-prequalifications/{id}", Tags: gtags,
		Summary:     "Read a grid prequalification",
		Description: "Visible to the FSP, the DSO, the register, and system operators buying a product the unit prequalifies for."},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.GridPrequalification], error) {
			g, err := s.svc.GetGridPrequalification(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(g, g.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "decide-grid-prequalification", Method: http.MethodPost, Path: "/v1/grid-prequalifications/{id}/decision", Tags: gtags,
		Summary:     "Decide a grid prequalification",
		Description: "By the DSO of the unit's connection point, once: approved, limited (limit_up and/or limit_down) or rejected (reasons required). A DSO cannot decide its own request (403)."},
		func(ctx context.Context, in *gridDecisionInput) (*ObjectOutput[flexhub.GridPrequalification], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			g, err := s.svc.DecideGridPrequalification(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(g, g.Version), nil
		})
}
