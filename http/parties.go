package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

type partyCreateInput struct {
	IdempotencyInput
	Body flexhub.PartySpec
}

type partyUpdateInput struct {
	IDPath
	IfMatchInput
	Body flexhub.PartySpec
}

type partyListInput struct {
	PageInput
	Role string `query:"role" doc:"only parties holding this role"`
}

type meOutput struct {
	Body *flexhub.Party
}

type credentialCreateInput struct {
	IDPath
	Body *credentialLabel `required:"false"`
}

type credentialLabel struct {
	Label string `json:"label,omitempty" maxLength:"200" doc:"what the key is for"`
}

type issuedOutput struct {
	Body *app.IssuedCredential
}

type credentialListOutput struct {
	Body struct {
		Items []*flexhub.Credential `json:"items" nullable:"false"`
	}
}

type credentialOutput struct {
	Body *flexhub.Credential
}

func (s *Server) registerParties() {
	tags := []string{"Parties and API keys"}
	huma.Register(s.api, huma.Operation{OperationID: "get-me", Method: http.MethodGet, Path: "/v1/me", Tags: tags,
		Summary: "The party the API key belongs to"},
		func(ctx context.Context, _ *struct{}) (*meOutput, error) {
			return &meOutput{Body: app.ActorFrom(ctx)}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-party", Method: http.MethodPost, Path: "/v1/parties", Tags: tags,
		Summary: "Register a party", DefaultStatus: http.StatusCreated,
		Description: "The administrator and the flexibility register operator register any party; a DSO registers its consumers."},
		func(ctx context.Context, in *partyCreateInput) (*ObjectOutput[flexhub.Party], error) {
			c, err := s.svc.CreateParty(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/parties/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-parties", Method: http.MethodGet, Path: "/v1/parties", Tags: tags,
		Summary: "List parties", Description: "Consumers are listed only to the register operator. A page may hold fewer items than the limit; follow next_cursor until it is absent."},
		func(ctx context.Context, in *partyListInput) (*ListOutput[flexhub.Party], error) {
			res, err := s.svc.ListParties(ctx, in.Role, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-party", Method: http.MethodGet, Path: "/v1/parties/{id}", Tags: tags,
		Summary: "Read a party"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Party], error) {
			p, err := s.svc.GetParty(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(p, p.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-party", Method: http.MethodPut, Path: "/v1/parties/{id}", Tags: tags,
		Summary: "Change a party", Description: "A party changes its own name and email; roles and EIC change through the register operator."},
		func(ctx context.Context, in *partyUpdateInput) (*ObjectOutput[flexhub.Party], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			p, err := s.svc.UpdateParty(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(p, p.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-credential", Method: http.MethodPost, Path: "/v1/parties/{id}/credentials", Tags: tags,
		Summary: "Issue an API key", DefaultStatus: http.StatusCreated,
		Description: "The key is in the response once and never again; flexhub keeps only its hash."},
		func(ctx context.Context, in *credentialCreateInput) (*issuedOutput, error) {
			label := ""
			if in.Body != nil {
				label = in.Body.Label
			}
			c, err := s.svc.IssueCredential(ctx, in.ID, label)
			if err != nil {
				return nil, problem(err)
			}
			return &issuedOutput{Body: c}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-credentials", Method: http.MethodGet, Path: "/v1/parties/{id}/credentials", Tags: tags,
		Summary: "List a party's API keys (without secrets)"},
		func(ctx context.Context, in *IDPath) (*credentialListOutput, error) {
			cs, err := s.svc.ListCredentials(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			out := &credentialListOutput{}
			out.Body.Items = cs
			if out.Body.Items == nil {
				out.Body.Items = []*flexhub.Credential{}
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "rotate-credential", Method: http.MethodPost, Path: "/v1/credentials/{id}/rotate", Tags: tags,
		Summary: "Replace an API key", DefaultStatus: http.StatusCreated, Description: "Revokes the key at once and returns a new one with the same label."},
		func(ctx context.Context, in *IDPath) (*issuedOutput, error) {
			c, err := s.svc.RotateCredential(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &issuedOutput{Body: c}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "revoke-credential", Method: http.MethodDelete, Path: "/v1/credentials/{id}", Tags: tags,
		Summary: "Revoke an API key"},
		func(ctx context.Context, in *IDPath) (*credentialOutput, error) {
			c, err := s.svc.RevokeCredential(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &credentialOutput{Body: c}, nil
		})
}

type auditListInput struct {
	ObjectID string `query:"object_id" doc:"only entries about this object"`
	After    int64  `query:"after" minimum:"0" doc:"sequence number to continue after"`
	Limit    int    `query:"limit" minimum:"0" maximum:"500"`
}

type auditListOutput struct {
	Body struct {
		Items []*flexhub.AuditEntry `json:"items" nullable:"false"`
		Next  int64                 `json:"next_after,omitempty" doc:"pass as ?after= for the next page"`
	}
}

type verifyOutput struct {
	Body *flexhub.ChainReport
}

func (s *Server) registerAudit() {
	tags := []string{"Audit trail"}
	huma.Register(s.api, huma.Operation{OperationID: "list-audit", Method: http.MethodGet, Path: "/v1/audit", Tags: tags,
		Summary: "Read the audit trail", Description: "Entries about the caller's own objects; the register operator reads all."},
		func(ctx context.Context, in *auditListInput) (*auditListOutput, error) {
			limit := in.Limit
			if limit == 0 {
				limit = flexhub.DefaultPageLimit
			}
			es, err := s.svc.ListAudit(ctx, in.ObjectID, in.After, limit)
			if err != nil {
				return nil, problem(err)
			}
			out := &auditListOutput{}
			out.Body.Items = es
			if es == nil {
				out.Body.Items = []*flexhub.AuditEntry{}
			}
			if len(es) == limit {
				out.Body.Next = es[len(es)-1].Seq
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "verify-audit", Method: http.MethodGet, Path: "/v1/audit/verify", Tags: tags,
		Summary: "Verify the audit chain", Description: "Recomputes every hash and reports the first broken entry."},
		func(ctx context.Context, _ *struct{}) (*verifyOutput, error) {
			r, err := s.svc.VerifyAudit(ctx)
			if err != nil {
				return nil, problem(err)
			}
			return &verifyOutput{Body: r}, nil
		})
}
