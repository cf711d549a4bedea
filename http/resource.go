package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerResources) }

type resourceCreateInput struct {
	IdempotencyInput
	Body flexhub.ResourceSpec
}

type resourceUpdateInput struct {
	IDPath
	IfMatchInput
	Body flexhub.ResourceSpec
}

type resourceDeleteInput struct {
	IDPath
	IfMatchInput
}

type resourceConfirmationInput struct {
	IDPath
	OptionalIfMatchInput
	Body flexhub.ConfirmationRequest
}

type resourceGetInput struct {
	IDPath
	AsOf string `query:"as_of" doc:"RFC 3339 time, e.g. 2026-05-01T12:00:00Z: return the version in force then (404 if the resource did not exist yet)"`
}

type resourceListInput struct {
	PageInput
	FSPID             string `query:"fsp_id" doc:"operating FSP: a party id, or self; an FSP gets its own by default"`
	DSOID             string `query:"dso_id" doc:"DSO of the connection point: a party id, or self; a DSO gets its grid's by default"`
	OwnerID           string `query:"owner_id" doc:"owner: a party id, or self; a consumer gets its own by default"`
	Status            string `query:"status" enum:"pending_confirmation,active,rejected,deregistered" doc:"only resources in this status"`
	MeteringPointID   string `query:"metering_point_id"`
	ConnectionPointID string `query:"connection_point_id"`
}

type resourceVersionsOutput struct {
	Body struct {
		Items []*app.ResourceVersion `json:"items" nullable:"false" doc:"every version, oldest first"`
	}
}

func (s *Server) registerResources() {
	tags := []string{"Resources"}
	huma.Register(s.api, huma.Operation{OperationID: "create-resource", Method: http.MethodPost, Path: "/v1/resources", Tags: tags,
		Summary: "Register a resource", DefaultStatus: http.StatusCreated,
		Description: "An FSP registers a unit (at a metering point; owner defaults to the metering point's consumer, connection point to the metering point's) " +
			"or a group of its own active units. A unit at a metering point whose consumer is another party is pending_confirmation until that consumer " +
			"accepts it (POST /v1/resources/{id}/confirmation); until then it gives the FSP no access to the metering point or the consumer and cannot be " +
			"grouped, prequalified or contracted. A unit at the FSP's own metering point and a group are active at once. " +
			"Quantities carry units: {\"value\": 5, \"unit\": \"kW\"}."},
		func(ctx context.Context, in *resourceCreateInput) (*ObjectOutput[flexhub.Resource], error) {
			c, err := s.svc.RegisterResource(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/resources/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-resources", Method: http.MethodGet, Path: "/v1/resources", Tags: tags,
		Summary: "List resources",
		Description: "The register operator lists all. Otherwise the list is scoped to the caller: fsp_id=self for an FSP, dso_id=self for a DSO, owner_id=self for a consumer, " +
			"in that order by default; a party with several roles picks one explicitly. A party filter naming another party is forbidden."},
		func(ctx context.Context, in *resourceListInput) (*ListOutput[flexhub.Resource], error) {
			res, err := s.svc.ListResources(ctx, app.ResourceFilter{FSPID: in.FSPID, DSOID: in.DSOID, OwnerID: in.OwnerID, Status: in.Status,
				MeteringPointID: in.MeteringPointID, ConnectionPointID: in.ConnectionPointID}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-resource", Method: http.MethodGet, Path: "/v1/resources/{id}", Tags: tags,
		Summary:     "Read a resource",
		Description: "Visible to the operating FSP, the owner, the consumer of its metering point, the DSO of its connection point, system operators asked to prequalify it, and the register operator."},
		func(ctx context.Context, in *resourceGetInput) (*ObjectOutput[flexhub.Resource], error) {
			at, err := parseAsOf(in.AsOf)
			if err != nil {
				return nil, problem(err)
			}
			r, err := s.svc.GetResource(ctx, in.ID, at)
			if err != nil {
				return nil, problem(err)
			}
			return object(r, r.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-resource-versions", Method: http.MethodGet, Path: "/v1/resources/{id}/versions", Tags: tags,
		Summary: "Every version of a resource", Description: "Oldest first, each with valid_from and (except the current one) valid_to."},
		func(ctx context.Context, in *IDPath) (*resourceVersionsOutput, error) {
			vs, err := s.svc.ResourceVersions(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			out := &resourceVersionsOutput{}
			out.Body.Items = vs
			if out.Body.Items == nil {
				out.Body.Items = []*app.ResourceVersion{}
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-resource", Method: http.MethodPut, Path: "/v1/resources/{id}", Tags: tags,
		Summary: "Change a resource",
		Description: "By the operating FSP: replaces the whole spec with a new version in force from now. The kind cannot change; a deregistered or rejected resource cannot change (409). " +
			"A pending unit stays pending; an active unit cannot move to another consumer's metering point (422: register a new resource there)."},
		func(ctx context.Context, in *resourceUpdateInput) (*ObjectOutput[flexhub.Resource], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			r, err := s.svc.UpdateResource(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(r, r.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "confirm-resource", Method: http.MethodPost, Path: "/v1/resources/{id}/confirmation", Tags: tags,
		Summary: "Confirm or reject a resource registration",
		Description: "By the consumer of the unit's metering point (its owner, unless the FSP owns the unit itself), or by the administrator or the " +
			"flexibility register operator on the consumer's behalf. accept: true makes the unit active (audit resource.confirmed), false rejects it for good " +
			"(audit resource.rejected). Only a pending_confirmation unit can be answered (409 otherwise). Others who see the resource get 403."},
		func(ctx context.Context, in *resourceConfirmationInput) (*ObjectOutput[flexhub.Resource], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			r, err := s.svc.ConfirmResource(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(r, r.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "deregister-resource", Method: http.MethodDelete, Path: "/v1/resources/{id}", Tags: tags,
		Summary: "Deregister a resource",
		Description: "By the operating FSP: a new version with status deregistered; nothing is deleted and the history stays readable. " +
			"A pending unit may be withdrawn this way; a rejected one is final (409). A unit in an active group must leave the group first (409)."},
		func(ctx context.Context, in *resourceDeleteInput) (*ObjectOutput[flexhub.Resource], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			r, err := s.svc.DeregisterResource(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(r, r.Version), nil
		})
}
