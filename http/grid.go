package http

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerGrid) }

type controlAreaCreateInput struct {
	IdempotencyInput
	Body flexhub.ControlAreaSpec
}

type controlAreaListInput struct {
	PageInput
	TSOID string `query:"tso_id" doc:"only areas of this TSO (a party id, or self)"`
}

type gridAreaCreateInput struct {
	IdempotencyInput
	Body flexhub.GridAreaSpec
}

type gridAreaListInput struct {
	PageInput
	DSOID         string `query:"dso_id" doc:"only areas of this DSO (a party id, or self)"`
	ControlAreaID string `query:"control_area_id" doc:"only areas in this control area"`
}

type connectionPointCreateInput struct {
	IdempotencyInput
	Body flexhub.ConnectionPointSpec
}

type connectionPointUpdateInput struct {
	IDPath
	IfMatchInput
	Body flexhub.ConnectionPointSpec
}

type connectionPointListInput struct {
	PageInput
	DSOID      string `query:"dso_id" doc:"only connection points of this DSO (a party id, or self)"`
	GridAreaID string `query:"grid_area_id" doc:"only connection points in this grid area"`
}

type meteringPointCreateInput struct {
	IdempotencyInput
	Body flexhub.MeteringPointSpec
}

type meteringPointSwitchInput struct {
	IDPath
	IfMatchInput
	Body flexhub.SwitchRequest
}

type meteringPointListInput struct {
	PageInput
	DSOID             string `query:"dso_id" doc:"only metering points of this DSO; a DSO gets its own by default"`
	ConsumerID        string `query:"consumer_id" doc:"only metering points of this consumer; a consumer gets its own by default"`
	ConnectionPointID string `query:"connection_point_id" doc:"only metering points at this connection point"`
}

// parseAsOf parses an as_of query parameter; nil when absent.
func parseAsOf(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	// An unencoded "+01:00" offset arrives as " 01:00": take it as meant.
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		return nil, flexhub.FieldErrorf("query.as_of", "%q is not an RFC 3339 time such as 2026-05-01T12:00:00Z", v)
	}
	t = t.UTC()
	return &t, nil
}

type meteringPointGetInput struct {
	IDPath
	AsOf string `query:"as_of" doc:"RFC 3339 time, e.g. 2026-05-01T12:00:00Z: return the version in force then"`
}

func (s *Server) registerGrid() {
	tags := []string{"Grid"}
	huma.Register(s.api, huma.Operation{OperationID: "create-control-area", Method: http.MethodPost, Path: "/v1/control-areas", Tags: tags,
		Summary: "Register a control area", DefaultStatus: http.StatusCreated,
		Description: "A TSO registers its own control areas (tso_id defaults to the caller); the register operator registers one for any TSO."},
		func(ctx context.Context, in *controlAreaCreateInput) (*ObjectOutput[flexhub.ControlArea], error) {
			c, err := s.svc.CreateControlArea(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/control-areas/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-control-areas", Method: http.MethodGet, Path: "/v1/control-areas", Tags: tags,
		Summary: "List control areas", Description: "Areas are public to every authenticated party."},
		func(ctx context.Context, in *controlAreaListInput) (*ListOutput[flexhub.ControlArea], error) {
			res, err := s.svc.ListControlAreas(ctx, in.TSOID, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-control-area", Method: http.MethodGet, Path: "/v1/control-areas/{id}", Tags: tags,
		Summary: "Read a control area"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.ControlArea], error) {
			a, err := s.svc.GetControlArea(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(a, a.Version), nil
		})

	huma.Register(s.api, huma.Operation{OperationID: "create-grid-area", Method: http.MethodPost, Path: "/v1/grid-areas", Tags: tags,
		Summary: "Register a grid area", DefaultStatus: http.StatusCreated,
		Description: "A DSO registers its own grid areas (dso_id defaults to the caller) inside an existing control area; the register operator registers one for any DSO."},
		func(ctx context.Context, in *gridAreaCreateInput) (*ObjectOutput[flexhub.GridArea], error) {
			c, err := s.svc.CreateGridArea(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/grid-areas/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-grid-areas", Method: http.MethodGet, Path: "/v1/grid-areas", Tags: tags,
		Summary: "List grid areas", Description: "Areas are public to every authenticated party."},
		func(ctx context.Context, in *gridAreaListInput) (*ListOutput[flexhub.GridArea], error) {
			res, err := s.svc.ListGridAreas(ctx, in.DSOID, in.ControlAreaID, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-grid-area", Method: http.MethodGet, Path: "/v1/grid-areas/{id}", Tags: tags,
		Summary: "Read a grid area"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.GridArea], error) {
			a, err := s.svc.GetGridArea(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(a, a.Version), nil
		})

	huma.Register(s.api, huma.Operation{OperationID: "create-connection-point", Method: http.MethodPost, Path: "/v1/connection-points", Tags: tags,
		Summary: "Register a connection point", DefaultStatus: http.StatusCreated,
		Description: "By the DSO operating the grid area, or the register operator. The code is unique within the grid area (409 otherwise)."},
		func(ctx context.Context, in *connectionPointCreateInput) (*ObjectOutput[flexhub.ConnectionPoint], error) {
			c, err := s.svc.CreateConnectionPoint(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/connection-points/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-connection-points", Method: http.MethodGet, Path: "/v1/connection-points", Tags: tags,
		Summary: "List connection points", Description: "Every market party sees all connection points; a consumer sees those of its own metering points."},
		func(ctx context.Context, in *connectionPointListInput) (*ListOutput[flexhub.ConnectionPoint], error) {
			res, err := s.svc.ListConnectionPoints(ctx, in.DSOID, in.GridAreaID, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-connection-point", Method: http.MethodGet, Path: "/v1/connection-points/{id}", Tags: tags,
		Summary: "Read a connection point"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.ConnectionPoint], error) {
			c, err := s.svc.GetConnectionPoint(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(c, c.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-connection-point", Method: http.MethodPut, Path: "/v1/connection-points/{id}", Tags: tags,
		Summary: "Change a connection point", Description: "By its DSO or the register operator: code, node, voltage and capacity. The grid area cannot change."},
		func(ctx context.Context, in *connectionPointUpdateInput) (*ObjectOutput[flexhub.ConnectionPoint], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			c, err := s.svc.UpdateConnectionPoint(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(c, c.Version), nil
		})

	huma.Register(s.api, huma.Operation{OperationID: "create-metering-point", Method: http.MethodPost, Path: "/v1/metering-points", Tags: tags,
		Summary: "Register a metering point", DefaultStatus: http.StatusCreated,
		Description: "By the DSO of the connection point, or the register operator. consumer_id, supplier_id and brp_id must name parties holding those roles; supplier and BRP become the first assignment, in force from now."},
		func(ctx context.Context, in *meteringPointCreateInput) (*ObjectOutput[flexhub.MeteringPoint], error) {
			c, err := s.svc.CreateMeteringPoint(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/metering-points/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-metering-points", Method: http.MethodGet, Path: "/v1/metering-points", Tags: tags,
		Summary: "List metering points",
		Description: "The register operator lists all; a DSO its own (dso_id=self by default); a consumer its own (consumer_id=self by default). " +
			"Other parties read the metering points they serve one by one."},
		func(ctx context.Context, in *meteringPointListInput) (*ListOutput[flexhub.MeteringPoint], error) {
			res, err := s.svc.ListMeteringPoints(ctx, app.MeteringPointFilter{DSOID: in.DSOID, ConsumerID: in.ConsumerID, ConnectionPointID: in.ConnectionPointID}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-metering-point", Method: http.MethodGet, Path: "/v1/metering-points/{id}", Tags: tags,
		Summary: "Read a metering point",
		Description: "Visible to its DSO, its consumer, every supplier and BRP it ever had, FSPs operating an active resource on it, and the register operator. " +
			"With as_of, the version recorded in force at that time."},
		func(ctx context.Context, in *meteringPointGetInput) (*ObjectOutput[flexhub.MeteringPoint], error) {
			at, err := parseAsOf(in.AsOf)
			if err != nil {
				return nil, problem(err)
			}
			m, err := s.svc.GetMeteringPoint(ctx, in.ID, at)
			if err != nil {
				return nil, problem(err)
			}
			return object(m, m.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "switch-metering-point", Method: http.MethodPost, Path: "/v1/metering-points/{id}/switches", Tags: tags,
		Summary: "Switch supplier and/or BRP",
		Description: "By the metering point's DSO or the register operator. Appends an assignment from valid_from on, which must be after the last one; " +
			"the party not named carries over. Earlier assignments never change."},
		func(ctx context.Context, in *meteringPointSwitchInput) (*ObjectOutput[flexhub.MeteringPoint], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			m, err := s.svc.SwitchMeteringPoint(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(m, m.Version), nil
		})
}
