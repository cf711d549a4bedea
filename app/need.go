package app

import (
	"context"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

// Needs: a system operator's published call for flexibility for one of
// its products. Needs are public to every authenticated party: they are
// calls for tender, and an FSP must read them to bid. A need can be
// revised or cancelled until the session it belongs to closes.

// checkNeedRefs checks what a need refers to: the product (the caller's,
// active) and the place (an existing grid area or connection points). It
// returns the product.
func (s *Service) checkNeedRefs(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, spec *flexhub.NeedSpec) (*flexhub.Product, error) {
	prod, err := activeProduct(ctx, tx, "product_id", spec.ProductID)
	if err != nil {
		return nil, err
	}
	if prod.SystemOperatorID != by.ID {
		return nil, (&flexhub.Error{Kind: flexhub.EForbidden, Field: "product_id", Rule: "need.product_owner",
			Message: fmt.Sprintf("only system operator %s, which buys product %s, publishes needs for it", prod.SystemOperatorID, prod.ID)})
	}
	if err := spec.Validate(prod); err != nil {
		return nil, err
	}
	if spec.GridAreaID != "" {
		if _, err := tx.GridArea(ctx, spec.GridAreaID); flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "need.location", "grid_area_id", "grid area %s not found", spec.GridAreaID)
		} else if err != nil {
			return nil, err
		}
	}
	for i, id := range spec.ConnectionPointIDs {
		if _, err := tx.ConnectionPoint(ctx, id); flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "need.location", fmt.Sprintf("connection_point_ids[%d]", i), "connection point %s not found", id)
		} else if err != nil {
			return nil, err
		}
	}
	if now := s.now(); spec.Intervals[0].Start.Before(now) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "need.intervals_past", "intervals[0].start", "interval %s has already begun; a need asks for flexibility in the future", spec.Intervals[0].Start.Format(time.RFC3339))
	}
	return prod, nil
}

// PublishNeed publishes a need for one of the caller's products.
func (s *Service) PublishNeed(ctx context.Context, spec flexhub.NeedSpec, key string) (*Created[flexhub.Need], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(nil); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindNeed, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.Need, error) { return tx.Need(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Need, string, error) {
			if _, err := s.checkNeedRefs(ctx, tx, by, &spec); err != nil {
				return nil, "", err
			}
			now := s.now()
			n := &flexhub.Need{ID: flexhub.NewID(), NeedSpec: spec, SystemOperatorID: by.ID, Status: flexhub.NeedOpen, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateNeed(ctx, n); err != nil {
				return nil, "", err
			}
			return n, n.ID, s.record(ctx, tx, by, "need.published", flexhub.KindNeed, n.ID, n.Version, n, n.SystemOperatorID)
		})
}

// ownNeed loads a need for a change by its system operator, which it may
// make until the need's session closes.
func (s *Service) ownNeed(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, version int64) (*flexhub.Need, *flexhub.MarketSession, error) {
	n, err := tx.Need(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if n.SystemOperatorID != by.ID {
		return nil, nil, flexhub.Errorf(flexhub.EForbidden, "only system operator %s, which published need %s, may change it", n.SystemOperatorID, id)
	}
	if version > 0 {
		if err := checkVersion("need", id, version, n.Version); err != nil {
			return nil, nil, err
		}
	}
	var m *flexhub.MarketSession
	if n.SessionID != "" {
		if m, err = tx.MarketSession(ctx, n.SessionID); err != nil {
			return nil, nil, err
		}
		if m.GateClosed(s.now()) {
			return nil, nil, flexhub.RuleErrorf(flexhub.EGone, "need.session_closed", "", "gate closed at %s; need %s belongs to session %s and can no longer change", m.GateClosure.Format(time.RFC3339Nano), id, m.ID)
		}
	}
	switch n.Status {
	case flexhub.NeedCancelled:
		return nil, nil, flexhub.Errorf(flexhub.EConflict, "need %s was cancelled and can no longer change", id)
	case flexhub.NeedClosed:
		return nil, nil, flexhub.Errorf(flexhub.EGone, "need %s is closed with its session and can no longer change", id)
	}
	return n, m, nil
}

// ReviseNeed replaces a need with a new version. The product stays: a
// session holds needs of one product, and bids were checked against it.
func (s *Service) ReviseNeed(ctx context.Context, id string, spec flexhub.NeedSpec, version int64) (*flexhub.Need, error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(nil); err != nil {
		return nil, err
	}
	var out *flexhub.Need
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		n, m, err := s.ownNeed(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		if spec.ProductID != n.ProductID {
			return flexhub.RuleErrorf(flexhub.EInvalid, "need.product_fixed", "product_id", "need %s is for product %s and stays so; cancel it and publish a new need for another product", id, n.ProductID)
		}
		if _, err := s.checkNeedRefs(ctx, tx, by, &spec); err != nil {
			return err
		}
		if m != nil && m.GateClosure.After(spec.Intervals[0].Start) {
			return flexhub.RuleErrorf(flexhub.EInvalid, "session.gate_after_delivery", "intervals[0].start", "session %s closes its gate at %s, after this interval begins; keep the need's intervals after gate closure", m.ID, m.GateClosure.Format(time.RFC3339))
		}
		n.NeedSpec = spec
		n.UpdatedAt = s.now()
		if err := tx.UpdateNeed(ctx, n); err != nil {
			return err
		}
		out = n
		return s.record(ctx, tx, by, "need.revised", flexhub.KindNeed, n.ID, n.Version, n, n.SystemOperatorID)
	})
	return out, err
}

// CancelNeed withdraws a need before its session closes.
func (s *Service) CancelNeed(ctx context.Context, id string, version int64) (*flexhub.Need, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Need
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		n, _, err := s.ownNeed(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		if err := n.Cancel(s.now()); err != nil {
			return err
		}
		if err := tx.UpdateNeed(ctx, n); err != nil {
			return err
		}
		out = n
		return s.record(ctx, tx, by, "need.cancelled", flexhub.KindNeed, n.ID, n.Version, n, n.SystemOperatorID)
	})
	return out, err
}

// GetNeed returns a need; needs are public to authenticated parties.
func (s *Service) GetNeed(ctx context.Context, id string) (*flexhub.Need, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	var out *flexhub.Need
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out, err = tx.Need(ctx, id)
		return err
	})
	return out, err
}

// NeedFilter narrows a need list.
type NeedFilter struct {
	ProductID        string
	SystemOperatorID string
	SessionID        string
	Status           string
}

// ListNeeds lists needs: public calls for tender, so nothing is scoped.
func (s *Service) ListNeeds(ctx context.Context, f NeedFilter, pg flexhub.Page) (*ListResult[flexhub.Need], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	filter, err := buildFilter(idParam{"product_id", f.ProductID}, idParam{"system_operator_id", f.SystemOperatorID}, idParam{"session_id", f.SessionID})
	if err != nil {
		return nil, err
	}
	if filter["system_operator_id"] == "self" {
		filter["system_operator_id"] = by.ID
	}
	if err := statusParam(filter, f.Status, "need", []string{flexhub.NeedOpen, flexhub.NeedCancelled, flexhub.NeedClosed}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.Need]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out.Items, out.Next, err = tx.ListNeeds(ctx, filter, pg)
		return err
	})
	return &out, err
}
