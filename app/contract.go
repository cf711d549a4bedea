package app

import (
	"context"
	"strconv"
	"time"

	"github.com/flexhub/flexhub"
)

// Flexibility contracts bind an FSP and the system operator buying a
// product. Either side proposes and the other answers; either side asks to
// terminate and the other confirms or refuses. A contract is confidential
// to its two parties and the register.

// ProposeContract proposes a contract for a product. The product's system
// operator names the FSP; an FSP proposes for itself to the product's
// system operator.
func (s *Service) ProposeContract(ctx context.Context, spec flexhub.ContractSpec, key string) (*Created[flexhub.Contract], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	if spec.Validity.End != nil && !spec.Validity.End.After(now) {
		return nil, flexhub.FieldErrorf("validity.end", "the contract would already have ended at %s", spec.Validity.End.Format(time.RFC3339))
	}
	return create(ctx, s, by, key, flexhub.KindContract, spec,
		func(tx flexhub.Tx, id string) (*flexhub.Contract, error) { return tx.Contract(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Contract, string, error) {
			prod, err := activeProduct(ctx, tx, "product_id", spec.ProductID)
			if err != nil {
				return nil, "", err
			}
			c := &flexhub.Contract{ID: flexhub.NewID(), ContractSpec: spec, SystemOperatorID: prod.SystemOperatorID,
				Status: flexhub.ContractProposed, ProposedBy: by.ID, CreatedAt: now, UpdatedAt: now}
			c.ResourceIDs = append([]string(nil), spec.ResourceIDs...)
			switch {
			case by.ID == prod.SystemOperatorID:
				if err := contractFSP(ctx, tx, by, spec.FSPID); err != nil {
					return nil, "", err
				}
			case by.HasRole(flexhub.RoleFSP):
				if spec.FSPID != "" && spec.FSPID != by.ID {
					return nil, "", (&flexhub.Error{Kind: flexhub.EForbidden, Field: "fsp_id", Message: "an FSP proposes contracts for itself only: leave fsp_id empty or set it to " + by.ID})
				}
				c.ContractSpec.FSPID = by.ID
			default:
				return nil, "", flexhub.Errorf(flexhub.EForbidden, "only system operator %s, which buys product %s, or an FSP may propose a contract for it", prod.SystemOperatorID, prod.ID)
			}
			c.FSPID = c.ContractSpec.FSPID
			for i, id := range c.ResourceIDs {
				f := "resource_ids[" + strconv.Itoa(i) + "]"
				r, err := tx.Resource(ctx, id)
				if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
					return nil, "", err
				}
				if err != nil || r.FSPID != c.FSPID {
					return nil, "", flexhub.FieldErrorf(f, "resource %s not found among the resources FSP %s operates", id, c.FSPID)
				}
				if r.Status != flexhub.ResourceActive {
					return nil, "", flexhub.FieldErrorf(f, "%s; a contract covers active resources only", notActive(r))
				}
			}
			if err := tx.CreateContract(ctx, c); err != nil {
				return nil, "", err
			}
			return c, c.ID, s.record(ctx, tx, by, "contract.proposed", flexhub.KindContract, c.ID, c.Version, c, c.FSPID, c.SystemOperatorID)
		})
}

// contractFSP checks the FSP a system operator names in its proposal.
func contractFSP(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, fspID string) error {
	if fspID == "" {
		return flexhub.FieldErrorf("fsp_id", "name the FSP the contract is with")
	}
	if fspID == by.ID {
		return flexhub.FieldErrorf("fsp_id", "party %s cannot contract with itself", by.ID)
	}
	fsp, err := tx.Party(ctx, fspID)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return flexhub.FieldErrorf("fsp_id", "party %s not found", fspID)
	}
	if err != nil {
		return err
	}
	if !fsp.HasRole(flexhub.RoleFSP) {
		return flexhub.FieldErrorf("fsp_id", "party %s (%s) does not hold the fsp role", fsp.ID, fsp.Name)
	}
	return nil
}

// canSeeContract: the two parties and the register.
func canSeeContract(by *flexhub.Party, c *flexhub.Contract) bool {
	return privileged(by) || by.ID == c.FSPID || by.ID == c.SystemOperatorID
}

// contractStep runs one answer or termination step in one transaction:
// load and authorise, apply the domain transition, store, audit. version
// 0 skips the If-Match check; the store's version check still keeps two
// concurrent answers from both winning.
func (s *Service) contractStep(ctx context.Context, id string, version int64, action string,
	step func(tx flexhub.Tx, by *flexhub.Party, c *flexhub.Contract, now time.Time) error) (*flexhub.Contract, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Contract
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		c, err := tx.Contract(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeContract(by, c) {
			return notFound("contract", id)
		}
		if by.ID != c.FSPID && by.ID != c.SystemOperatorID {
			return flexhub.Errorf(flexhub.EForbidden, "only the FSP and the system operator of contract %s may answer or terminate it", id)
		}
		if version > 0 {
			if err := checkVersion("contract", id, version, c.Version); err != nil {
				return err
			}
		}
		if err := step(tx, by, c, s.now()); err != nil {
			return err
		}
		if err := tx.UpdateContract(ctx, c); err != nil {
			return err
		}
		out = c
		return s.record(ctx, tx, by, action, flexhub.KindContract, c.ID, c.Version, c, c.FSPID, c.SystemOperatorID)
	})
	return out, err
}

// AcceptContract is the counterparty accepting a proposal. A proposal for
// a product retired in the meantime can only be rejected.
func (s *Service) AcceptContract(ctx context.Context, id string, version int64) (*flexhub.Contract, error) {
	return s.contractStep(ctx, id, version, "contract.accepted", func(tx flexhub.Tx, by *flexhub.Party, c *flexhub.Contract, now time.Time) error {
		if c.Status == flexhub.ContractProposed && by.ID != c.ProposedBy {
			prod, err := tx.Product(ctx, c.ProductID)
			if err != nil {
				return err
			}
			if prod.Status != productActive {
				return flexhub.Errorf(flexhub.EConflict, "product %s was retired after this contract was proposed; the proposal can only be rejected", prod.ID)
			}
		}
		return c.Answer(by.ID, true, now)
	})
}

// RejectContract is the counterparty turning a proposal down.
func (s *Service) RejectContract(ctx context.Context, id string, version int64) (*flexhub.Contract, error) {
	return s.contractStep(ctx, id, version, "contract.rejected", func(_ flexhub.Tx, by *flexhub.Party, c *flexhub.Contract, now time.Time) error {
		return c.Answer(by.ID, false, now)
	})
}

// RequestContractTermination is either party asking to end an active
// contract; the other party confirms or refuses.
func (s *Service) RequestContractTermination(ctx context.Context, id string, r flexhub.TerminationRequest, version int64) (*flexhub.Contract, error) {
	return s.contractStep(ctx, id, version, "contract.termination_requested", func(_ flexhub.Tx, by *flexhub.Party, c *flexhub.Contract, now time.Time) error {
		return c.RequestTermination(by.ID, r, now)
	})
}

// ConfirmContractTermination is the other party agreeing: the contract
// ends at the requested effective time.
func (s *Service) ConfirmContractTermination(ctx context.Context, id string, version int64) (*flexhub.Contract, error) {
	return s.contractStep(ctx, id, version, "contract.terminated", func(_ flexhub.Tx, by *flexhub.Party, c *flexhub.Contract, now time.Time) error {
		return c.AnswerTermination(by.ID, true, now)
	})
}

// RejectContractTermination is the other party refusing: the contract
// stays active.
func (s *Service) RejectContractTermination(ctx context.Context, id string, version int64) (*flexhub.Contract, error) {
	return s.contractStep(ctx, id, version, "contract.termination_rejected", func(_ flexhub.Tx, by *flexhub.Party, c *flexhub.Contract, now time.Time) error {
		return c.AnswerTermination(by.ID, false, now)
	})
}

// GetContract returns a contract to its parties and the register; anyone
// else is told it does not exist.
func (s *Service) GetContract(ctx context.Context, id string) (*flexhub.Contract, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Contract
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		c, err := tx.Contract(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeContract(by, c) {
			return notFound("contract", id)
		}
		out = c
		return nil
	})
	return out, err
}

// ContractFilter narrows a contract list; empty fields do not filter.
type ContractFilter struct {
	FSPID            string
	SystemOperatorID string
	ProductID        string
	Status           string
}

var contractStatuses = []string{flexhub.ContractProposed, flexhub.ContractActive, flexhub.ContractRejected,
	flexhub.ContractTerminationRequested, flexhub.ContractTerminated}

// ListContracts lists the contracts the caller is party to; the register
// and the administrator list all. Without a party filter an FSP sees its
// own contracts and a system operator those it buys under.
func (s *Service) ListContracts(ctx context.Context, f ContractFilter, pg flexhub.Page) (*ListResult[flexhub.Contract], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	filter, err := buildFilter(idParam{"fsp_id", f.FSPID}, idParam{"system_operator_id", f.SystemOperatorID}, idParam{"product_id", f.ProductID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(filter, f.Status, "contract", contractStatuses); err != nil {
		return nil, err
	}
	if err := scope(by, filter, "contracts",
		scopeKey{"fsp_id", flexhub.RoleFSP}, scopeKey{"system_operator_id", flexhub.RoleTSO}, scopeKey{"system_operator_id", flexhub.RoleDSO}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.Contract]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out.Items, out.Next, err = tx.ListContracts(ctx, filter, pg)
		return err
	})
	return &out, err
}
