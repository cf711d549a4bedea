package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerSecondary) }

type offerCreateInput struct {
	IdempotencyInput
	Body flexhub.SecondaryOfferSpec
}

type offerListInput struct {
	PageInput
	ObligationID     string `query:"obligation_id"`
	SellerFSPID      string `query:"seller_fsp_id" doc:"\"self\": your own offers"`
	ProductID        string `query:"product_id"`
	SystemOperatorID string `query:"system_operator_id" doc:"\"self\": offers of obligations you bought"`
	Status           string `query:"status" enum:"open,reserved,traded,cancelled,expired"`
}

type tradeCreateInput struct {
	IdempotencyInput
	Body flexhub.TradeSpec
}

type tradeListInput struct {
	PageInput
	OfferID          string `query:"offer_id"`
	ObligationID     string `query:"obligation_id"`
	SellerFSPID      string `query:"seller_fsp_id" doc:"\"self\": trades on your offers"`
	BuyerFSPID       string `query:"buyer_fsp_id" doc:"\"self\": trades you asked for"`
	SystemOperatorID string `query:"system_operator_id" doc:"\"self\": trades of obligations you bought"`
	Status           string `query:"status" enum:"proposed,confirmed,objected,completed,cancelled,expired"`
}

type objectionInput struct {
	IDPath
	OptionalIfMatchInput
	Body app.ObjectionRequest
}

const (
	offerVisibility = "An offer is visible to its seller, the buying system operator, FSPs that asked to trade on it and, only while it is open, the FSPs it is offered to " +
		"(the named buyer, or every FSP with a valid approved prequalification for the product); to anyone else it does not exist (404). It carries no resource, bid or bid price of the seller."
	tradeVisibility = "A trade is visible to its two FSPs, the buying system operator and the administrator; to anyone else it does not exist (404)."
	buyerRules      = "The buyer's eligibility (422, checked on the request and again on confirmation): another FSP than the seller (trade.own_offer), the named buyer if the offer names one; " +
		"its own active resource (trade.resource_owned, trade.resource_active) in the need's grid area or connection points (trade.location), with an approved product prequalification " +
		"valid over every interval of the obligation (trade.product_prequalification, within any max_power: trade.prequalified_max_power), grid prequalification approved or limited " +
		"with enough limit (trade.grid_prequalification, trade.grid_limit), and the capability to deliver (trade.capability)."
)

func (s *Server) registerSecondary() {
	tags := []string{"Secondary market"}
	huma.Register(s.api, huma.Operation{OperationID: "create-secondary-offer", Method: http.MethodPost, Path: "/v1/secondary-offers", Tags: tags,
		Summary: "Offer an obligation to other FSPs", DefaultStatus: http.StatusCreated,
		Description: "By the FSP that owes the obligation (404 offer.obligation for anyone else's), for all of it: every interval and quantity changes hands. " +
			"The obligation must be active (409 offer.obligation_active) and not yet started (410 offer.delivery_started); the expiry is in the future and no later than " +
			"the first interval's start (offer.expiry); one live offer per obligation (409 offer.duplicate). objection_minutes (default 15, 1-1440) is the buying system operator's " +
			"window after the seller confirms a trade. The FSPs it is offered to are notified (offer.published). " + offerVisibility},
		func(ctx context.Context, in *offerCreateInput) (*ObjectOutput[flexhub.SecondaryOffer], error) {
			c, err := s.svc.CreateOffer(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/secondary-offers/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-secondary-offers", Method: http.MethodGet, Path: "/v1/secondary-offers", Tags: tags,
		Summary: "List secondary offers", Description: "The offers the caller may see. " + offerVisibility},
		func(ctx context.Context, in *offerListInput) (*ListOutput[flexhub.SecondaryOffer], error) {
			res, err := s.svc.ListOffers(ctx, app.OfferFilter{ObligationID: in.ObligationID, SellerFSPID: in.SellerFSPID, ProductID: in.ProductID,
				SystemOperatorID: in.SystemOperatorID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-secondary-offer", Method: http.MethodGet, Path: "/v1/secondary-offers/{id}", Tags: tags,
		Summary: "Read a secondary offer", Description: offerVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.SecondaryOffer], error) {
			o, err := s.svc.GetOffer(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(o, o.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "cancel-secondary-offer", Method: http.MethodPost, Path: "/v1/secondary-offers/{id}/cancel", Tags: tags,
		Summary: "Cancel a secondary offer", Description: "By its seller while it is open (409 offer.reserved while a confirmed trade awaits the objection window). Trades still proposed on it are cancelled and their buyers told."},
		func(ctx context.Context, in *workflowStepInput) (*ObjectOutput[flexhub.SecondaryOffer], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			o, err := s.svc.CancelOffer(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(o, o.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "request-trade", Method: http.MethodPost, Path: "/v1/trades", Tags: tags,
		Summary: "Ask to take a secondary offer", DefaultStatus: http.StatusCreated,
		Description: "By an eligible FSP, naming its resource that will deliver; the request is the buyer's acceptance of the offer's price. The offer must be open " +
			"(409 offer.not_open / offer.reserved, 410 offer.expired) and its obligation not started (410 trade.delivery_started). The seller is notified (trade.proposed). " + buyerRules},
		func(ctx context.Context, in *tradeCreateInput) (*ObjectOutput[flexhub.Trade], error) {
			c, err := s.svc.RequestTrade(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/trades/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-trades", Method: http.MethodGet, Path: "/v1/trades", Tags: tags,
		Summary: "List trades", Description: "The trades the caller may see. " + tradeVisibility},
		func(ctx context.Context, in *tradeListInput) (*ListOutput[flexhub.Trade], error) {
			res, err := s.svc.ListTrades(ctx, app.TradeFilter{OfferID: in.OfferID, ObligationID: in.ObligationID, SellerFSPID: in.SellerFSPID, BuyerFSPID: in.BuyerFSPID,
				SystemOperatorID: in.SystemOperatorID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-trade", Method: http.MethodGet, Path: "/v1/trades/{id}", Tags: tags,
		Summary: "Read a trade", Description: tradeVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Trade], error) {
			t, err := s.svc.GetTrade(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(t, t.Version), nil
		})
	step := func(op, path, summary, desc string, do func(ctx context.Context, id string, v int64) (*flexhub.Trade, error)) {
		huma.Register(s.api, huma.Operation{OperationID: op, Method: http.MethodPost, Path: path, Tags: tags, Summary: summary, Description: desc},
			func(ctx context.Context, in *workflowStepInput) (*ObjectOutput[flexhub.Trade], error) {
				v, err := in.version()
				if err != nil {
					return nil, problem(err)
				}
				t, err := do(ctx, in.ID, v)
				if err != nil {
					return nil, problem(err)
				}
				return object(t, t.Version), nil
			})
	}
	step("confirm-trade", "/v1/trades/{id}/confirm", "Confirm a trade (seller)",
		"By the seller, on a proposed trade (409 trade.not_proposed otherwise). The buyer's eligibility is checked again; the offer is reserved; the buying system operator "+
			"is notified and may object until objection_window_end, which must fall before delivery starts (410 trade.window_after_delivery). "+
			"When the window passes without objection the scheduler completes the trade: the seller's obligation becomes transferred and the buyer gets a new one with the same intervals and quantities. "+buyerRules,
		s.svc.ConfirmTrade)
	step("cancel-trade", "/v1/trades/{id}/cancel", "Cancel a proposed trade",
		"By either FSP while the trade is proposed (409 trade.not_proposed once confirmed: then only the system operator's objection stops it).", s.svc.CancelTrade)
	huma.Register(s.api, huma.Operation{OperationID: "object-to-trade", Method: http.MethodPost, Path: "/v1/trades/{id}/objection", Tags: tags,
		Summary: "Object to a trade (buying system operator)",
		Description: "By the system operator that bought the obligation, on a confirmed trade (409 trade.not_confirmed otherwise) before objection_window_end (410 trade.objection_window after), " +
			"with reasons (422 trade.objection_reasons). The obligation stays with the seller, the offer is open again, both FSPs are told the reasons."},
		func(ctx context.Context, in *objectionInput) (*ObjectOutput[flexhub.Trade], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			t, err := s.svc.ObjectTrade(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(t, t.Version), nil
		})
}
