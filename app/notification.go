package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/flexhub/flexhub"
)

// Notifications: each party's feed of market events that concern it,
// written in the transaction of the change, so the feed and the market
// never disagree. A party polls GET /v1/notifications?after=<cursor>;
// runNotificationPush publishes the same feed on each party's MQTT
// notifications topic.

// notify appends one notification per party (duplicates and empty ids
// dropped).
func (s *Service) notify(ctx context.Context, tx flexhub.Tx, parties []string, typ, kind, id, sessionID, text string) error {
	return tx.CreateNotifications(ctx, s.notes(parties, typ, kind, id, sessionID, text))
}

// notes are the notifications notify appends (for the set-based
// CreateNotifications).
func (s *Service) notes(parties []string, typ, kind, id, sessionID, text string) []*flexhub.Notification {
	now := s.now()
	var out []*flexhub.Notification
	for _, p := range dedupe(parties) {
		out = append(out, &flexhub.Notification{PartyID: p, At: now, Type: typ, ObjectKind: kind, ObjectID: id, SessionID: sessionID, Text: text})
	}
	return out
}

// NotificationPage is a slice of a feed and the cursor to poll next.
type NotificationPage struct {
	Items []*flexhub.Notification `json:"items" nullable:"false"`
	// NextCursor is the seq of the last item, or the cursor that was sent
	// when nothing is new: always the value to pass as ?after= next time.
	NextCursor string `json:"next_cursor" doc:"pass as ?after= on the next poll; unchanged when nothing is new"`
}

// ListNotifications returns the caller's notifications after the cursor
// (the seq of the last one read; empty for the start of the feed).
func (s *Service) ListNotifications(ctx context.Context, after string, limit int) (*NotificationPage, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var from int64
	if after != "" {
		from, err = strconv.ParseInt(after, 10, 64)
		if err != nil || from < 0 {
			return nil, flexhub.FieldErrorf("query.after", "%q is not a cursor: pass the next_cursor (a number) of the previous page", after)
		}
	}
	out := &NotificationPage{Items: []*flexhub.Notification{}, NextCursor: strconv.FormatInt(from, 10)}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		items, err := tx.ListNotifications(ctx, by.ID, from, limit)
		if err != nil {
			return err
		}
		if len(items) > 0 {
			out.Items = items
			out.NextCursor = strconv.FormatInt(items[len(items)-1].Seq, 10)
		}
		return nil
	})
	return out, err
}

// runNotificationPush publishes each committed notification on its
// party's MQTT notifications topic (docs/MQTT.md), in Seq order, polling
// every interval. It starts at the newest notification when it starts:
// the push is live delivery, the feed (GET /v1/notifications?after=) is
// the record; every message carries its seq, so a party that was away, or
// a flexhub restart, is caught up from the feed without a gap. A failed
// publish (broker down) is retried from that notification on the next
// tick: while flexhub runs nothing is skipped.
func (s *Service) runNotificationPush(ctx context.Context, every time.Duration) {
	if s.pub == nil {
		return
	}
	var cursor int64
	started := false
	s.loop(ctx, every, "notifications", func() (int, error) {
		if !started {
			err := s.store.View(ctx, func(tx flexhub.Tx) error {
				var err error
				cursor, err = tx.NotificationHead(ctx)
				return err
			})
			if err != nil {
				return 0, err
			}
			started = true
		}
		sent := 0
		for {
			var page []*flexhub.Notification
			if err := s.store.View(ctx, func(tx flexhub.Tx) error {
				var err error
				page, err = tx.NotificationsAfter(ctx, cursor, flexhub.MaxPageLimit)
				return err
			}); err != nil {
				return sent, err
			}
			for _, n := range page {
				payload, err := json.Marshal(n)
				if err != nil {
					return sent, err
				}
				if err := s.pub.Publish(ctx, Topic(n.PartyID, "notifications"), payload, 1, false); err != nil {
					return sent, fmt.Errorf("publish notification %d: %w", n.Seq, err)
				}
				cursor, sent = n.Seq, sent+1
			}
			if len(page) < flexhub.MaxPageLimit {
				return sent, nil
			}
		}
	})
}
