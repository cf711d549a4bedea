package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerTrafficLight) }

type overrideCreateInput struct {
	IdempotencyInput
	Body flexhub.TrafficLightOverrideSpec
}

type overrideListInput struct {
	PageInput
	ResourceID string `query:"resource_id"`
	DSOID      string `query:"dso_id"`
	FSPID      string `query:"fsp_id"`
	Status     string `query:"status" enum:"active,withdrawn"`
}

func (s *Server) registerTrafficLight() {
	tags := []string{"TSO-DSO coordination"}
	huma.Register(s.api, huma.Operation{OperationID: "create-traffic-light-override", Method: http.MethodPost, Path: "/v1/traffic-light-overrides", Tags: tags,
		Summary: "Override the traffic light of a unit in your grid", DefaultStatus: http.StatusCreated,
		Description: "By the DSO of the unit's connection point: for a time span and direction (up, down or both), the light is green, amber with a limit, or red, " +
			"whatever the grid model computes, for bids and activation orders checked from now on. A reason is required; the unit's FSP and the control area's TSO are notified; " +
			"the override is audited. docs/TRAFFIC_LIGHT.md."},
		func(ctx context.Context, in *overrideCreateInput) (*ObjectOutput[flexhub.TrafficLightOverride], error) {
			c, err := s.svc.CreateTrafficLightOverride(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/traffic-light-overrides/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-traffic-light-overrides", Method: http.MethodGet, Path: "/v1/traffic-light-overrides", Tags: tags,
		Summary: "List traffic-light overrides", Description: "A DSO sees its own, an FSP those of its units, a TSO those of a resource in its control area (give resource_id)."},
		func(ctx context.Context, in *overrideListInput) (*ListOutput[flexhub.TrafficLightOverride], error) {
			f := flexhub.Filter{}
			for k, v := range map[string]string{"resource_id": in.ResourceID, "dso_id": in.DSOID, "fsp_id": in.FSPID, "status": in.Status} {
				if v != "" {
					f[k] = v
				}
			}
			res, err := s.svc.ListTrafficLightOverrides(ctx, f, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-traffic-light-override", Method: http.MethodGet, Path: "/v1/traffic-light-overrides/{id}", Tags: tags,
		Summary: "Read a traffic-light override"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.TrafficLightOverride], error) {
			o, err := s.svc.GetTrafficLightOverride(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(o, o.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "withdraw-traffic-light-override", Method: http.MethodPost, Path: "/v1/traffic-light-overrides/{id}/withdraw", Tags: tags,
		Summary: "Withdraw a traffic-light override", Description: "By the DSO that set it (If-Match optional); the intervals it covered are decided by the grid model again. Audited and notified."},
		func(ctx context.Context, in *workflowStepInput) (*ObjectOutput[flexhub.TrafficLightOverride], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			o, err := s.svc.WithdrawTrafficLightOverride(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(o, o.Version), nil
		})
}
