package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerWebhooks) }

type webhookCreateInput struct {
	IdempotencyInput
	Body flexhub.WebhookEndpointSpec
}

type webhookListInput struct {
	PageInput
	Status string `query:"status" enum:"active,disabled"`
}

type webhookDisableInput struct {
	IDPath
	OptionalIfMatchInput
}

type webhookDeliveriesInput struct {
	IDPath
	PageInput
	Status string `query:"status" enum:"pending,delivered,dead" doc:"dead: the dead-letter view"`
}

type webhookAllDeliveriesInput struct {
	PageInput
	Status string `query:"status" enum:"pending,delivered,dead" doc:"dead: the dead-letter view"`
}

const (
	webhookVisibility = "Every authenticated party manages its own endpoints and reads its own deliveries; another party's (even for the administrator) do not exist (404)."
	webhookSigning    = "Each event is POSTed as JSON ({id, type, timestamp, party_id, data}) with the Standard Webhooks headers Webhook-Id (the event id, the same on every retry: " +
		"deduplicate on it), Webhook-Timestamp (Unix seconds of the attempt) and Webhook-Signature (v1,<base64 HMAC-SHA256 of \"id.timestamp.body\" keyed with the secret's bytes after whsec_); " +
		"a 2xx answer within 10 s delivers it, 410 Gone disables the endpoint, anything else (a 3xx too) is retried after 5 s doubling to 1 h (±20 % jitter, or the receiver's Retry-After) for 24 h, then the delivery is dead. See docs/WEBHOOKS.md."
)

func (s *Server) registerWebhooks() {
	tags := []string{"Webhooks"}
	huma.Register(s.api, huma.Operation{OperationID: "create-webhook", Method: http.MethodPost, Path: "/v1/webhooks", Tags: tags,
		Summary: "Register a webhook endpoint", DefaultStatus: http.StatusCreated,
		Description: "By any party, for itself. The URL must be https (http only to a loopback address; 422 webhook.url.scheme) and absolute without user information " +
			"or fragment (422 webhook.url); event_types are known types or * (422 webhook.event_type); at most 20 active endpoints (409 webhook.limit). " +
			"The answer carries the signing secret, shown only here. " + webhookSigning + " " + webhookVisibility},
		func(ctx context.Context, in *webhookCreateInput) (*ObjectOutput[app.CreatedWebhookEndpoint], error) {
			c, err := s.svc.CreateWebhookEndpoint(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/webhooks/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-webhooks", Method: http.MethodGet, Path: "/v1/webhooks", Tags: tags,
		Summary: "List your webhook endpoints", Description: "Without their secrets. " + webhookVisibility},
		func(ctx context.Context, in *webhookListInput) (*ListOutput[flexhub.WebhookEndpoint], error) {
			res, err := s.svc.ListWebhookEndpoints(ctx, in.Status, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-webhook", Method: http.MethodGet, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary: "Read a webhook endpoint", Description: "Without its secret. " + webhookVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.WebhookEndpoint], error) {
			e, err := s.svc.GetWebhookEndpoint(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(e, e.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "disable-webhook", Method: http.MethodDelete, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary: "Disable a webhook endpoint",
		Description: "Stops new events to the endpoint; its pending deliveries become dead at their next attempt. The endpoint and its deliveries stay readable; " +
			"disabling it again changes nothing. " + webhookVisibility},
		func(ctx context.Context, in *webhookDisableInput) (*ObjectOutput[flexhub.WebhookEndpoint], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			e, err := s.svc.DisableWebhookEndpoint(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(e, e.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "test-webhook", Method: http.MethodPost, Path: "/v1/webhooks/{id}/test", Tags: tags,
		Summary: "Send a ping event to a webhook endpoint", DefaultStatus: http.StatusAccepted,
		Description: "Queues a ping event to this endpoint alone, whatever types it subscribed to, and returns its delivery; it goes out like any event (signed, retried). " +
			"409 webhook.endpoint.disabled for a disabled endpoint. " + webhookVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.WebhookDelivery], error) {
			d, err := s.svc.TestWebhookEndpoint(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			out := object(d, d.Version)
			out.Location = "/v1/webhook-deliveries/" + d.ID
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-webhook-endpoint-deliveries", Method: http.MethodGet, Path: "/v1/webhooks/{id}/deliveries", Tags: tags,
		Summary: "List a webhook endpoint's deliveries", Description: "Oldest first; ?status=dead is the endpoint's dead letters. " + webhookVisibility},
		func(ctx context.Context, in *webhookDeliveriesInput) (*ListOutput[flexhub.WebhookDelivery], error) {
			res, err := s.svc.ListWebhookDeliveries(ctx, app.WebhookDeliveryFilter{EndpointID: in.ID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-webhook-deliveries", Method: http.MethodGet, Path: "/v1/webhook-deliveries", Tags: tags,
		Summary: "List your webhook deliveries", Description: "Of all your endpoints, oldest first; ?status=dead is the dead-letter view. " + webhookVisibility},
		func(ctx context.Context, in *webhookAllDeliveriesInput) (*ListOutput[flexhub.WebhookDelivery], error) {
			res, err := s.svc.ListWebhookDeliveries(ctx, app.WebhookDeliveryFilter{Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-webhook-delivery", Method: http.MethodGet, Path: "/v1/webhook-deliveries/{id}", Tags: tags,
		Summary: "Read a webhook delivery", Description: "With its payload as sent and the outcome of its last attempt. " + webhookVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.WebhookDelivery], error) {
			d, err := s.svc.GetWebhookDelivery(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(d, d.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "redeliver-webhook", Method: http.MethodPost, Path: "/v1/webhook-deliveries/{id}/redeliver", Tags: tags,
		Summary: "Send a dead (or delivered) webhook delivery again",
		Description: "Queues it at once with a fresh 24 h retry schedule and the same Webhook-Id. 409 webhook.delivery.pending while it is still being retried, " +
			"409 webhook.endpoint.disabled when its endpoint is disabled. " + webhookVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.WebhookDelivery], error) {
			d, err := s.svc.RedeliverWebhook(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(d, d.Version), nil
		})
}
