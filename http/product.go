package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerProducts) }

type productCreateInput struct {
	IdempotencyInput
	Body flexhub.ProductSpec
}

type productListInput struct {
	PageInput
	SystemOperatorID string `query:"system_operator_id" doc:"only products this TSO or DSO buys"`
	Status           string `query:"status" enum:"active,retired" doc:"only products in this status"`
}

type productUpdateInput struct {
	IDPath
	IfMatchInput
	Body flexhub.ProductSpec
}

type productRetireInput struct {
	IDPath
	IfMatchInput
}

func (s *Server) registerProducts() {
	tags := []string{"Products"}
	huma.Register(s.api, huma.Operation{OperationID: "create-product", Method: http.MethodPost, Path: "/v1/products", Tags: tags,
		Summary: "Define a product", DefaultStatus: http.StatusCreated,
		Description: "A TSO or DSO defines a flexibility product it buys: service, direction, technical requirements and the questions of its prequalification. The caller becomes the product's system operator."},
		func(ctx context.Context, in *productCreateInput) (*ObjectOutput[flexhub.Product], error) {
			c, err := s.svc.CreateProduct(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/products/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-products", Method: http.MethodGet, Path: "/v1/products", Tags: tags,
		Summary: "List products", Description: "Products are public to every authenticated party."},
		func(ctx context.Context, in *productListInput) (*ListOutput[flexhub.Product], error) {
			res, err := s.svc.ListProducts(ctx, app.ProductFilter{SystemOperatorID: in.SystemOperatorID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-product", Method: http.MethodGet, Path: "/v1/products/{id}", Tags: tags,
		Summary: "Read a product"},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Product], error) {
			p, err := s.svc.GetProduct(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(p, p.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-product", Method: http.MethodPut, Path: "/v1/products/{id}", Tags: tags,
		Summary: "Change a product", Description: "By the product's system operator; makes a new version, earlier ones stay in the history. A retired product cannot change."},
		func(ctx context.Context, in *productUpdateInput) (*ObjectOutput[flexhub.Product], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			p, err := s.svc.UpdateProduct(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(p, p.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "retire-product", Method: http.MethodPost, Path: "/v1/products/{id}/retire", Tags: tags,
		Summary: "Retire a product", Description: "By the product's system operator. A retired product takes no new prequalifications or contracts; existing ones keep their terms."},
		func(ctx context.Context, in *productRetireInput) (*ObjectOutput[flexhub.Product], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			p, err := s.svc.RetireProduct(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(p, p.Version), nil
		})
}
