package app

import (
	"context"

	"github.com/flexhub/flexhub"
)

// Product statuses (the domain has no constants for them yet). A retired
// product stays readable, because running prequalifications and contracts
// refer to it, but takes nothing new.
const (
	productActive  = "active"
	productRetired = "retired"
)

// CreateProduct defines a product. Only a system operator buys
// flexibility, so only a TSO or DSO defines products, always as itself:
// a product bought on someone else's behalf would let any operator set
// another's requirements.
func (s *Service) CreateProduct(ctx context.Context, spec flexhub.ProductSpec, key string) (*Created[flexhub.Product], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindProduct, spec,
		func(tx flexhub.Tx, id string) (*flexhub.Product, error) { return tx.Product(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Product, string, error) {
			now := s.now()
			p := &flexhub.Product{ID: flexhub.NewID(), ProductSpec: spec, SystemOperatorID: by.ID, Status: productActive, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateProduct(ctx, p); err != nil {
				return nil, "", err
			}
			return p, p.ID, s.record(ctx, tx, by, "product.created", flexhub.KindProduct, p.ID, p.Version, p, p.SystemOperatorID)
		})
}

// GetProduct returns a product. Products are public terms of purchase:
// every authenticated party may read them, so FSPs can decide what to
// prequalify for.
func (s *Service) GetProduct(ctx context.Context, id string) (*flexhub.Product, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	var out *flexhub.Product
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out, err = tx.Product(ctx, id)
		return err
	})
	return out, err
}

// ProductFilter narrows a product list; empty fields do not filter.
type ProductFilter struct {
	SystemOperatorID string
	Status           string
}

// ListProducts lists products, readable by every authenticated party.
func (s *Service) ListProducts(ctx context.Context, f ProductFilter, pg flexhub.Page) (*ListResult[flexhub.Product], error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	filter := flexhub.Filter{}
	if f.SystemOperatorID != "" {
		if !flexhub.ValidID(f.SystemOperatorID) {
			return nil, flexhub.FieldErrorf("query.system_operator_id", "%q is not a party id", f.SystemOperatorID)
		}
		filter["system_operator_id"] = f.SystemOperatorID
	}
	if f.Status != "" {
		if f.Status != productActive && f.Status != productRetired {
			return nil, flexhub.FieldErrorf("query.status", "%q is not a product status: use active or retired", f.Status)
		}
		filter["status"] = f.Status
	}
	var out ListResult[flexhub.Product]
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out.Items, out.Next, err = tx.ListProducts(ctx, filter, pg)
		return err
	})
	return &out, err
}

// ownProduct loads a product for a change by its system operator. Products
// are public, so a stranger gets 403, not 404: hiding what everyone can
// read protects nothing.
func (s *Service) ownProduct(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, version int64) (*flexhub.Product, error) {
	p, err := tx.Product(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.SystemOperatorID != by.ID {
		return nil, flexhub.Errorf(flexhub.EForbidden, "only the system operator that defined product %s may change it", id)
	}
	if err := checkVersion("product", id, version, p.Version); err != nil {
		return nil, err
	}
	if p.Status == productRetired {
		return nil, flexhub.Errorf(flexhub.EConflict, "product %s is retired and can no longer change; define a new product", id)
	}
	return p, nil
}

// UpdateProduct makes a new version of a product. The earlier versions stay
// readable in the history, so a decision can always be checked against
// the terms in force when it was made.
func (s *Service) UpdateProduct(ctx context.Context, id string, spec flexhub.ProductSpec, version int64) (*flexhub.Product, error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out *flexhub.Product
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		p, err := s.ownProduct(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		p.ProductSpec = spec
		p.UpdatedAt = s.now()
		if err := tx.UpdateProduct(ctx, p); err != nil {
			return err
		}
		out = p
		return s.record(ctx, tx, by, "product.updated", flexhub.KindProduct, p.ID, p.Version, p, p.SystemOperatorID)
	})
	return out, err
}

// RetireProduct stops a product from taking new prequalifications and
// contracts. It is not a delete: what already refers to it stays valid
// until it ends by its own terms.
func (s *Service) RetireProduct(ctx context.Context, id string, version int64) (*flexhub.Product, error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Product
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		p, err := s.ownProduct(ctx, tx, by, id, version)
		if err != nil {
			return err
		}
		p.Status = productRetired
		p.UpdatedAt = s.now()
		if err := tx.UpdateProduct(ctx, p); err != nil {
			return err
		}
		out = p
		return s.record(ctx, tx, by, "product.retired", flexhub.KindProduct, p.ID, p.Version, p, p.SystemOperatorID)
	})
	return out, err
}

// activeProduct loads the product a request names, as a field error on
// field when it does not exist or no longer takes new business.
func activeProduct(ctx context.Context, tx flexhub.Tx, field, id string) (*flexhub.Product, error) {
	p, err := tx.Product(ctx, id)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return nil, flexhub.FieldErrorf(field, "product %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	if p.Status != productActive {
		return nil, flexhub.FieldErrorf(field, "product %s (%s) is retired and takes no new prequalifications or contracts", p.ID, p.Name)
	}
	return p, nil
}
