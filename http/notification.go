package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerNotifications) }

type notificationListInput struct {
	After string `query:"after" doc:"the next_cursor of the previous poll; empty for the start of the feed"`
	Limit int    `query:"limit" minimum:"0" maximum:"500" doc:"at most this many, default 50"`
}

// NotificationOutput is one poll of the caller's feed.
type NotificationOutput struct {
	Body *app.NotificationPage
}

func (s *Server) registerNotifications() {
	huma.Register(s.api, huma.Operation{OperationID: "list-notifications", Method: http.MethodGet, Path: "/v1/notifications", Tags: []string{"Market"},
		Summary: "Poll your notifications",
		Description: "The caller's feed, oldest first: session.opened and session.closed (to the session's operator, the buyer and every FSP with a valid approved prequalification for the product), " +
			"bid.received, bid.modified and bid.withdrawn (to the bidder), session.cleared (to every bidder, the buyer and the operator) and award (to the bidder, per bid). Poll with ?after=<next_cursor>; next_cursor is unchanged when nothing is new."},
		func(ctx context.Context, in *notificationListInput) (*NotificationOutput, error) {
			page, err := s.svc.ListNotifications(ctx, in.After, in.Limit)
			if err != nil {
				return nil, problem(err)
			}
			return &NotificationOutput{Body: page}, nil
		})
}
