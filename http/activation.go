package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerActivation) }

type orderCreateInput struct {
	IdempotencyInput
	Body flexhub.ActivationOrderSpec
}

type orderBatchInput struct {
	IdempotencyInput
	Body struct {
		Orders []flexhub.ActivationOrderSpec `json:"orders" minItems:"1" maxItems:"10000"`
	}
}

type orderBatchOutput struct {
	Location string `header:"Location"`
	Replayed string `header:"Idempotent-Replayed"`
	Body     *app.OrderBatch
}

type orderListInput struct {
	PageInput
	SystemOperatorID string `query:"system_operator_id" doc:"\"self\": orders you issued"`
	FSPID            string `query:"fsp_id" doc:"\"self\": orders you must execute"`
	ResourceID       string `query:"resource_id" doc:"a DSO may list the orders of a resource in its grid"`
	ObligationID     string `query:"obligation_id"`
	BatchID          string `query:"batch_id"`
	Status           string `query:"status" enum:"created,delivered,received,accepted,rejected,executing,completed,ended_early"`
}

type orderReportInput struct {
	IDPath
	Body flexhub.ActivationOrderReport
}

const orderVisibility = "An order is visible to the system operator that issued it, the FSP that must execute it, the DSO of the resource's grid and the administrator; to anyone else it does not exist (404)."

// MaxOrderBatchBody is the largest order-batch request body: 10,000
// orders of a few set-points each (about 2.5 MB with one) fit, where the
// default 1 MiB held some 4,000.
const MaxOrderBatchBody = 16 << 20

func (s *Server) registerActivation() {
	tags := []string{"Activation"}
	huma.Register(s.api, huma.Operation{OperationID: "create-activation-order", Method: http.MethodPost, Path: "/v1/activation-orders", Tags: tags,
		Summary: "Order an activation, a limitation or the end of an order", DefaultStatus: http.StatusCreated,
		Description: "By a TSO or DSO. type activate: set-points per interval against an awarded obligation the caller bought (order.obligation; within its intervals, " +
			"order.outside_obligation, and quantities, order.above_obligation), or — for automatic-activation products only — product_id, resource_id and direction " +
			"with the resource prequalified (order.prequalification). type limit: caps per interval; without an obligation by the resource's DSO or for a prequalified resource. " +
			"type end: ends_order_id and one set-point whose start is when that order stops; the ended order becomes ended_early. Set-points are aligned to the product's " +
			"resolution (order.aligned), in time order (order.interval), reach into the future (order.past). The FSP is notified, the order is delivered over MQTT " +
			"(flexhub/v1/parties/{fsp}/activations, QoS 1, re-sent with the same id until acknowledged) and to its webhooks (activation.order). If the FSP does not " +
			"acknowledge by ack_deadline (the product's ack_deadline, PT1M by default) the system operator gets an ack_overdue alert. " + orderVisibility},
		func(ctx context.Context, in *orderCreateInput) (*ObjectOutput[flexhub.ActivationOrder], error) {
			c, err := s.svc.CreateActivationOrder(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/activation-orders/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-activation-order-batch", Method: http.MethodPost, Path: "/v1/activation-order-batches", Tags: tags,
		Summary: "Order many activations at once", DefaultStatus: http.StatusCreated, MaxBodyBytes: MaxOrderBatchBody,
		Description: "Up to 10,000 orders (each as in POST /v1/activation-orders) in one transaction: all are stored, or — when one is refused — none, with the error " +
			"naming its index (orders[17].setpoints[0]). Every order carries the batch id (batch_id; list them with ?batch_id=). They go out over MQTT at once."},
		func(ctx context.Context, in *orderBatchInput) (*orderBatchOutput, error) {
			c, err := s.svc.CreateActivationOrderBatch(ctx, in.Body.Orders, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			out := &orderBatchOutput{Location: "/v1/activation-orders?batch_id=" + c.Object.ID, Body: c.Object}
			if c.Replayed {
				out.Replayed = "true"
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-activation-orders", Method: http.MethodGet, Path: "/v1/activation-orders", Tags: tags,
		Summary: "List activation orders", Description: "A system operator sees the orders it issued, an FSP the orders it must execute. " + orderVisibility},
		func(ctx context.Context, in *orderListInput) (*ListOutput[flexhub.ActivationOrder], error) {
			res, err := s.svc.ListActivationOrders(ctx, app.OrderFilter{SystemOperatorID: in.SystemOperatorID, FSPID: in.FSPID, ResourceID: in.ResourceID,
				ObligationID: in.ObligationID, BatchID: in.BatchID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-activation-order", Method: http.MethodGet, Path: "/v1/activation-orders/{id}", Tags: tags,
		Summary: "Read an activation order and its tracking", Description: "tracking lists every step with its time, party and channel; alerts lists ack_overdue and delivery alerts. " + orderVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.ActivationOrder], error) {
			o, err := s.svc.GetActivationOrder(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(o, o.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-activation-order-delivery", Method: http.MethodGet, Path: "/v1/activation-orders/{id}/delivery", Tags: tags,
		Summary: "Delivery so far, per interval", Description: "The live comparison of the resource's measured net power (export − import) with the order: the meter-before baseline " +
			"(average in the quarter hour before the order took effect), and per started interval the delivered quantity, the measurements' coverage and the verdict " +
			"(pending, on_target, under_delivery, over_delivery) against the product's delivery_tolerance_pct. Alerts raised from it are in the order's alerts. " + orderVisibility},
		func(ctx context.Context, in *IDPath) (*struct{ Body *app.DeliveryStatus }, error) {
			d, err := s.svc.GetDelivery(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *app.DeliveryStatus }{Body: d}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "report-activation-order", Method: http.MethodPost, Path: "/v1/activation-orders/{id}/status", Tags: tags,
		Summary: "Report on an order (FSP)", Description: "By the order's FSP (the same report as on MQTT flexhub/v1/parties/{fsp}/activations/acks): received, accepted, " +
			"rejected (with a reason; only before accepting), executing, completed, ended_early (with a reason). Steps may skip forward, never go back; a repeated or " +
			"outdated report changes nothing and returns the order; a report on a finished order is 409 order.terminal. The system operator is notified."},
		func(ctx context.Context, in *orderReportInput) (*ObjectOutput[flexhub.ActivationOrder], error) {
			o, err := s.svc.ReportActivationOrder(ctx, in.ID, in.Body, "rest")
			if err != nil {
				return nil, problem(err)
			}
			return object(o, o.Version), nil
		})
}
