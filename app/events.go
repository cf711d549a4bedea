package app

import (
	"context"

	"github.com/flexhub/flexhub"
)

// emitEvent hands an event to the party's webhook endpoints, in the
// caller's transaction (webhook.go).
func (s *Service) emitEvent(ctx context.Context, tx flexhub.Tx, partyID, typ, id string, payload any) error {
	return s.EmitEvent(ctx, tx, partyID, typ, id, payload)
}
