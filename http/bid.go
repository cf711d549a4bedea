package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerBids) }

type bidCreateInput struct {
	IdempotencyInput
	Body flexhub.BidSpec
}

type bidUpdateInput struct {
	IDPath
	IfMatchInput
	Body flexhub.BidSpec
}

type bidListInput struct {
	PageInput
	SessionID  string `query:"session_id" doc:"a session you operate (or bought in, after gate closure) lists all its bids; otherwise your own"`
	NeedID     string `query:"need_id"`
	FSPID      string `query:"fsp_id" doc:"only your own (or \"self\")"`
	ResourceID string `query:"resource_id"`
	Status     string `query:"status" enum:"submitted,withdrawn,accepted,partially_accepted,rejected"`
}

const bidRules = "Refusals name the rule in the problem's type (urn:flexhub:rule:<rule>) and the field in errors[].location; nothing is stored. " +
	"Rules: the session's gate is open (409 session.gate_not_open before, 410 session.gate_closed at or after gate closure); the need is in the session (bid.need_in_session) and open; " +
	"the resource is the caller's and active (bid.resource_owned, bid.resource_active) and located where the need is (bid.location); " +
	"an approved product prequalification valid over every interval (bid.product_prequalification), within its max_power (bid.prequalified_max_power); " +
	"every unit grid-prequalified (approved or limited, bid.grid_prequalification) and within the limits (bid.grid_limit, summed over a group's units); " +
	"an active contract when the product is bought under contract (bid.contract); no more than the resource's max_up/max_down (bid.capability) and, for linked bids, " +
	"a span within its activation durations (bid.activation_duration); intervals aligned (interval.aligned), sorted (interval.sorted, interval.duplicate) and among the need's (bid.interval_in_need); " +
	"quantities above zero (bid.quantity) and at least the product's minimum bid size (bid.min_bid_size; for divisible bids min_quantity too); min_quantity only for divisible bids and " +
	"not above the quantity (bid.min_quantity); the prices the need buys and no others (bid.price.required, bid.price.not_bought), in its currency (bid.price.currency), exact to 4 decimals " +
	"(bid.price.format), not negative, not above its maximum (bid.price.max); an exclusive group holds only the caller's bids of the session (bid.exclusive_group)."

func (s *Server) registerBids() {
	tags := []string{"Market"}
	huma.Register(s.api, huma.Operation{OperationID: "submit-bid", Method: http.MethodPost, Path: "/v1/bids", Tags: tags,
		Summary: "Submit a bid", DefaultStatus: http.StatusCreated,
		Description: "By an FSP, for one of its resources, between gate opening and gate closure. " +
			"Prices are decimal strings with the need's currency: availability per MW per hour, activation per MWh. " + bidRules},
		func(ctx context.Context, in *bidCreateInput) (*ObjectOutput[flexhub.Bid], error) {
			c, err := s.svc.SubmitBid(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/bids/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-bids", Method: http.MethodGet, Path: "/v1/bids", Tags: tags,
		Summary: "List bids",
		Description: "An FSP lists its own bids; the session's market operator lists a session's bids with session_id, the buying system operator only after gate closure. " +
			"No FSP ever lists another's."},
		func(ctx context.Context, in *bidListInput) (*ListOutput[flexhub.Bid], error) {
			res, err := s.svc.ListBids(ctx, app.BidFilter{SessionID: in.SessionID, NeedID: in.NeedID, FSPID: in.FSPID, ResourceID: in.ResourceID, Status: in.Status}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-bid", Method: http.MethodGet, Path: "/v1/bids/{id}", Tags: tags,
		Summary:     "Read a bid",
		Description: "Visible to its FSP, the session's market operator and, after gate closure, the buying system operator; to anyone else it does not exist (404)."},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Bid], error) {
			b, err := s.svc.GetBid(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(b, b.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "modify-bid", Method: http.MethodPut, Path: "/v1/bids/{id}", Tags: tags,
		Summary:     "Modify a bid",
		Description: "By its FSP with If-Match, until gate closure (410 after). The bid stays in its session; every rule is checked again. " + bidRules},
		func(ctx context.Context, in *bidUpdateInput) (*ObjectOutput[flexhub.Bid], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			b, err := s.svc.ModifyBid(ctx, in.ID, in.Body, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(b, b.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "withdraw-bid", Method: http.MethodPost, Path: "/v1/bids/{id}/withdraw", Tags: tags,
		Summary: "Withdraw a bid", Description: "By its FSP until gate closure (410 Gone after)."},
		func(ctx context.Context, in *workflowStepInput) (*ObjectOutput[flexhub.Bid], error) {
			v, err := in.version()
			if err != nil {
				return nil, problem(err)
			}
			b, err := s.svc.WithdrawBid(ctx, in.ID, v)
			if err != nil {
				return nil, problem(err)
			}
			return object(b, b.Version), nil
		})
}
