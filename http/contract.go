package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerContracts) }

type contractCreateInput struct {
	IdempotencyInput
	Body flexhub.ContractSpec
}

type contractListInput struct {
	PageInput
	FSPID            string `query:"fsp_id" doc:"the FSP; \"self\" for the caller"`
	SystemOperatorID string `query:"system_operator_id" doc:"the system operator; \"self\" for the caller"`
	ProductID        string `query:"product_id"`
	Status           string `query:"status" enum:"proposed,active,rejected,termination_requested,terminated"`
}

type terminationInput struct {
	IDPath
	OptionalIfMatchInput
	Body *flexhub.TerminationRequest `required:"false"`
}

// contractStep adapts a contract step without a body to a handler.
func contractStep(step func(context.Context, string, int64) (*flexhub.Contract, error)) func(context.Context, *workflowStepInput) (*ObjectOutput[flexhub.Contract], error) {
	return func(ctx context.Context, in *workflowStepInput) (*ObjectOutput[flexhub.Contract], error) {
		v, err := in.version()
		if err != nil {
			return nil, problem(err)
		}
		c, err := step(ctx, in.ID, v)
		if err != nil {
			return nil, problem(err)
		}
		return object(c, c.Version), nil
	}
}

func (s *Server) registerContracts() {
	tags := []string{"Contracts"}
	huma.Register(s.api, huma.Operation{OperationID: "propose-contract", Method: http.MethodPost, Path: "/v1/contracts", Tags: tags,
		Summary: "Propose a flexibility contract", DefaultStatus: http.StatusCreated,
		Description: "By the product's system operator (naming the FSP in fsp_id) or by an FSP for itself. The product must be active and resource_ids the FSP's own. The other party accepts or rejects."},
		func(ctx context.Context, in *contractCreateInput) (*ObjectOutput[flexhub.Contract], error) {
			c, err := s.svc.ProposeContract(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/contracts/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-contracts", Method: http.MethodGet, Path: "/v1/contracts", Tags: tags,
		Summary:     "List contracts",
		Description: "The caller's own: an FSP sees its contracts, a system operator those it buys under; the register sees all. Party filters must name the caller (or self)."},
		func(ctx context.Context, in *contractListInput) (*ListOutput[flexhub.Contract], error) {
			res, err := s.svc.ListContracts(ctx, app.ContractFilter{FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID, ProductID: in.ProductID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-contract", Method: http.MethodGet, Path: "/v1/contracts/{id}", Tags: tags,
		Summary: "Read a contract", Description: "Visible to its FSP, its system operator and the register; to anyone else it does not exist."},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Contract], error) {
			c, err := s.svc.GetContract(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(c, c.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "accept-contract", Method: http.MethodPost, Path: "/v1/contracts/{id}/accept", Tags: tags,
		Summary: "Accept a proposed contract", Description: "By the counterparty of the proposer; the proposer gets 403."},
		contractStep(s.svc.AcceptContract))
	huma.Register(s.api, huma.Operation{OperationID: "reject-contract", Method: http.MethodPost, Path: "/v1/contracts/{id}/reject", Tags: tags,
		Summary: "Reject a proposed contract", Description: "By the counterparty of the proposer; the proposer gets 403."},
		contractStep(s.svc.RejectContract))
	huma.Register(s.api, huma.Operation{OperationID: "request-contract-termination", Method: http.MethodPost, Path: "/v1/contracts/{id}/termination", Tags: tags,
		Summary: "Ask to terminate an active contract", Description: "By either party; the other confirms or rejects. The body is optional: effective_at defaults to now."},
		func(ctx context.Context, in *terminationInput) (*ObjectOutput[flexhub.Contract], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			var r flexhub.TerminationRequest
			if in.Body != nil {
				r = *in.Body
			}
			c, err := s.svc.RequestContractTermination(ctx, in.ID, r, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(c, c.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "confirm-contract-termination", Method: http.MethodPost, Path: "/v1/contracts/{id}/termination/confirm", Tags: tags,
		Summary: "Confirm a termination request", Description: "By the party that did not request it; the contract is terminated."},
		contractStep(s.svc.ConfirmContractTermination))
	huma.Register(s.api, huma.Operation{OperationID: "reject-contract-termination", Method: http.MethodPost, Path: "/v1/contracts/{id}/termination/reject", Tags: tags,
		Summary: "Reject a termination request", Description: "By the party that did not request it; the contract stays active."},
		contractStep(s.svc.RejectContractTermination))
}
