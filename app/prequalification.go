package app

import (
	"context"
	"time"

	"github.com/flexhub/flexhub"
)

// Product prequalification: can this resource deliver this product? The
// FSP operating the resource asks, the system operator buying the product
// reviews, possibly over several rounds of questions, and decides once.
// Grid prequalification: may this unit deliver at its node? The DSO of the
// connection point decides. Both results go to the FSP and the deciding
// operator; product decisions also to the DSO of the resource, which has
// to know what may be activated in its grid.

// ownResource loads a resource the caller operates, for use in a request
// body. A resource of another FSP gets the same answer as a missing one,
// so that FSPs cannot probe each other's portfolios.
func ownResource(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, field, id string) (*flexhub.Resource, error) {
	r, err := tx.Resource(ctx, id)
	if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
		return nil, err
	}
	if err != nil || r.FSPID != by.ID {
		return nil, flexhub.FieldErrorf(field, "resource %s not found among the resources party %s operates", id, by.ID)
	}
	if r.Status != flexhub.ResourceActive {
		return nil, flexhub.FieldErrorf(field, "%s; only an active resource can be prequalified", notActive(r))
	}
	return r, nil
}

// watts reads a quantity that was validated when it was stored.
func watts(p *flexhub.Power) int64 {
	w, _ := p.Watts("")
	return w
}

// checkFit rejects requests the product's own terms already rule out, so
// that the reviewer spends time only on resources that could deliver.
func checkFit(r *flexhub.Resource, p *flexhub.Product) error {
	t := r.Technical
	up, down := watts(t.MaxUp), watts(t.MaxDown)
	minBid := watts(p.MinBidSize)
	if p.PowerType == "reactive" {
		vars, _ := t.ReactiveCapability.Vars("")
		if vars == 0 {
			return flexhub.FieldErrorf("resource_id", "resource %s declares no reactive capability (technical.reactive_capability) and product %q buys reactive power", r.ID, p.Name)
		}
		minVars, _ := p.MinBidSizeReactive.Vars("")
		if vars < minVars {
			return flexhub.FieldErrorf("resource_id", "resource %s offers at most %d var of reactive power, below the minimum bid of product %q (%d var)", r.ID, vars, p.Name, minVars)
		}
	} else {
		need := map[string][]string{"up": {"up"}, "down": {"down"}, "both": {"up", "down"}}[p.Direction]
		for _, dir := range need {
			have := up
			if dir == "down" {
				have = down
			}
			if have == 0 {
				return flexhub.FieldErrorf("resource_id", "resource %s offers no %sward flexibility (technical.max_%s) and product %q buys %s", r.ID, dir, dir, p.Name, p.Direction)
			}
			if have < minBid {
				return flexhub.FieldErrorf("resource_id", "resource %s offers at most %d W %sward, below the minimum bid of product %q (%d W)", r.ID, have, dir, p.Name, minBid)
			}
		}
	}
	need, _ := p.FullActivationTime.Parse("")
	if have, _ := t.FullActivationTime.Parse(""); have > 0 && need > 0 && have > need {
		return flexhub.FieldErrorf("resource_id", "resource %s needs %s to activate fully; product %q allows at most %s", r.ID, t.FullActivationTime, p.Name, p.FullActivationTime)
	}
	return nil
}

// blocksNew reports whether an existing prequalification makes a new one
// for the same resource and product pointless: one still under review, or
// an approval that has not expired (including one valid from a later date).
func blocksNew(p *flexhub.Prequalification, now time.Time) bool {
	if p.Open() {
		return true
	}
	if p.Decision == nil || (p.Status != flexhub.PrequalApproved && p.Status != flexhub.PrequalApprovedConditions) {
		return false
	}
	return p.Decision.ValidUntil == nil || now.Before(*p.Decision.ValidUntil)
}

// listAll walks every page of a list; for the few rows per resource that
// the duplicate checks read.
func listAll[T any](list func(flexhub.Page) ([]*T, string, error)) ([]*T, error) {
	var out []*T
	pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
	for {
		items, next, err := list(pg)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		pg.After = next
	}
}

// duplicatePrequal returns a prequalification other than exceptID that
// blocks a new one for the resource and product, or nil.
func duplicatePrequal(ctx context.Context, tx flexhub.Tx, resourceID, productID, exceptID string, now time.Time) (*flexhub.Prequalification, error) {
	all, err := listAll(func(pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
		return tx.ListPrequalifications(ctx, flexhub.Filter{"resource_id": resourceID, "product_id": productID}, pg)
	})
	if err != nil {
		return nil, err
	}
	for _, p := range all {
		if p.ID != exceptID && blocksNew(p, now) {
			return p, nil
		}
	}
	return nil, nil
}

// SubmitPrequalification opens the prequalification of one of the caller's
// resources for a product. The request goes to the product's system
// operator.
func (s *Service) SubmitPrequalification(ctx context.Context, req flexhub.PrequalRequest, key string) (*Created[flexhub.Prequalification], error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(nil); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindPrequalification, req,
		func(tx flexhub.Tx, id string) (*flexhub.Prequalification, error) { return tx.Prequalification(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Prequalification, string, error) {
			r, err := ownResource(ctx, tx, by, "resource_id", req.ResourceID)
			if err != nil {
				return nil, "", err
			}
			prod, err := activeProduct(ctx, tx, "product_id", req.ProductID)
			if err != nil {
				return nil, "", err
			}
			if err := req.Validate(prod); err != nil {
				return nil, "", err
			}
			if err := checkFit(r, prod); err != nil {
				return nil, "", err
			}
			now := s.now()
			dup := func(exceptID string) error {
				other, err := duplicatePrequal(ctx, tx, r.ID, prod.ID, exceptID, now)
				if err != nil || other == nil {
					return err
				}
				what := "is still " + other.Status
				if !other.Open() {
					what = "is " + other.Status + " and has not expired"
				}
				return &flexhub.Error{Kind: flexhub.EConflict, Field: "resource_id", Message: "prequalification " + other.ID + " of resource " + r.ID + " for product " + prod.ID + " " + what + "; withdraw it or wait for it to end"}
			}
			if err := dup(""); err != nil {
				return nil, "", err
			}
			answers := map[string]string{}
			for k, v := range req.Answers {
				answers[k] = v
			}
			p := &flexhub.Prequalification{ID: flexhub.NewID(), ResourceID: r.ID, ProductID: prod.ID, FSPID: by.ID,
				SystemOperatorID: prod.SystemOperatorID, Status: flexhub.PrequalSubmitted, Answers: answers,
				Messages:  []flexhub.PrequalMessage{{Type: "submitted", By: by.ID, At: now, Text: req.Text, Answers: req.Answers}},
				CreatedAt: now, UpdatedAt: now}
			if err := tx.CreatePrequalification(ctx, p); err != nil {
				return nil, "", err
			}
			if err := s.record(ctx, tx, by, "prequalification.submitted", flexhub.KindPrequalification, p.ID, p.Version, p, p.FSPID, p.SystemOperatorID); err != nil {
				return nil, "", err
			}
			// Two concurrent submissions can both pass the check above.
			// Appending to the audit chain serialises writers until commit
			// (one writer in SQLite, an advisory lock in PostgreSQL), and a
			// READ COMMITTED query after it sees whatever committed first,
			// so checking again here lets exactly one of them win.
			if err := dup(p.ID); err != nil {
				return nil, "", err
			}
			return p, p.ID, nil
		})
}

// canSeePrequal: the two parties of the review and the register.
func canSeePrequal(by *flexhub.Party, p *flexhub.Prequalification) bool {
	return privileged(by) || by.ID == p.FSPID || by.ID == p.SystemOperatorID
}

// prequalSide names who may take a step in a prequalification.
type prequalSide int

const (
	sideFSP prequalSide = iota
	sideReviewer
)

// prequalForStep loads a prequalification for a step by one side. Parties
// that may not see it get 404; a party that sees it but is on the other
// side gets 403, which tells it what it may not do, not what exists.
func prequalForStep(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, version int64, side prequalSide) (*flexhub.Prequalification, *flexhub.Product, error) {
	p, err := tx.Prequalification(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if !canSeePrequal(by, p) {
		return nil, nil, notFound("prequalification", id)
	}
	switch {
	case side == sideFSP && by.ID != p.FSPID:
		return nil, nil, flexhub.Errorf(flexhub.EForbidden, "only the FSP that submitted prequalification %s may do this", id)
	case side == sideReviewer && by.ID == p.FSPID:
		return nil, nil, flexhub.Errorf(flexhub.EForbidden, "party %s cannot approve its own request: it is both the FSP of prequalification %s and the system operator buying its product; the flexibility register operator reviews it", by.ID, id)
	case side == sideReviewer && !reviews(by, p.SystemOperatorID, p.FSPID):
		return nil, nil, flexhub.Errorf(flexhub.EForbidden, "only the system operator buying the product reviews prequalification %s", id)
	}
	if version > 0 {
		if err := checkVersion("prequalification", id, version, p.Version); err != nil {
			return nil, nil, err
		}
	}
	prod, err := tx.Product(ctx, p.ProductID)
	if err != nil {
		return nil, nil, err
	}
	return p, prod, nil
}

// prequalStep runs one step of a prequalification in one transaction:
// load and authorise, apply the domain transition, store, audit. version
// 0 skips the If-Match check; the store's own version check still stops a
// concurrent step from being overwritten.
func (s *Service) prequalStep(ctx context.Context, id string, version int64, side prequalSide, action string,
	step func(tx flexhub.Tx, by *flexhub.Party, p *flexhub.Prequalification, prod *flexhub.Product, now time.Time) ([]string, error)) (*flexhub.Prequalification, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Prequalification
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		p, prod, err := prequalForStep(ctx, tx, by, id, version, side)
		if err != nil {
			return err
		}
		extra, err := step(tx, by, p, prod, s.now())
		if err != nil {
			return err
		}
		if err := tx.UpdatePrequalification(ctx, p); err != nil {
			return err
		}
		out = p
		return s.record(ctx, tx, by, action, flexhub.KindPrequalification, p.ID, p.Version, p, append([]string{p.FSPID, p.SystemOperatorID}, extra...)...)
	})
	return out, err
}

// RequestPrequalInformation is the reviewer asking the FSP for more,
// optionally naming the requirements to answer again.
func (s *Service) RequestPrequalInformation(ctx context.Context, id string, keys []string, text string, version int64) (*flexhub.Prequalification, error) {
	return s.prequalStep(ctx, id, version, sideReviewer, "prequalification.information_requested",
		func(_ flexhub.Tx, by *flexhub.Party, p *flexhub.Prequalification, prod *flexhub.Product, now time.Time) ([]string, error) {
			return nil, p.RequestInfo(by.ID, keys, text, now, prod)
		})
}

// SupplementPrequalification is the FSP answering an information request;
// the request goes back to the reviewer.
func (s *Service) SupplementPrequalification(ctx context.Context, id string, answers map[string]string, text string, version int64) (*flexhub.Prequalification, error) {
	return s.prequalStep(ctx, id, version, sideFSP, "prequalification.supplemented",
		func(_ flexhub.Tx, by *flexhub.Party, p *flexhub.Prequalification, prod *flexhub.Product, now time.Time) ([]string, error) {
			return nil, p.Supplement(by.ID, answers, text, now, prod)
		})
}

// DecidePrequalification records the reviewer's final decision. A party
// that is both the FSP and the buying operator cannot decide: a
// prequalification it grants itself would prove nothing to anyone else, so
// the flexibility register operator reviews such a request instead.
func (s *Service) DecidePrequalification(ctx context.Context, id string, d flexhub.DecisionRequest, version int64) (*flexhub.Prequalification, error) {
	return s.prequalStep(ctx, id, version, sideReviewer, "prequalification.decided",
		func(tx flexhub.Tx, by *flexhub.Party, p *flexhub.Prequalification, prod *flexhub.Product, now time.Time) ([]string, error) {
			r, err := tx.Resource(ctx, p.ResourceID)
			if err != nil {
				return nil, err
			}
			if p.Open() && d.Outcome != flexhub.PrequalRejected {
				if prod.Status != productActive {
					return nil, flexhub.Errorf(flexhub.EConflict, "product %s was retired after this request was submitted; its open prequalifications can only be rejected", prod.ID)
				}
				if r.Status != flexhub.ResourceActive {
					return nil, flexhub.Errorf(flexhub.EConflict, "resource %s was deregistered after this request was submitted; the prequalification can only be rejected", r.ID)
				}
			}
			if err := p.Decide(by.ID, d, now); err != nil {
				return nil, err
			}
			dsos, err := resourceDSOs(ctx, tx, r)
			return dsos, err
		})
}

// reviews reports whether by reviews a request made by fsp to operator: the
// operator itself, unless it is the requesting FSP; then a neutral party,
// the flexibility register operator, so that no request waits forever for
// a reviewer who may not decide it.
func reviews(by *flexhub.Party, operator, fsp string) bool {
	if by.ID == fsp {
		return false
	}
	if operator != fsp {
		return by.ID == operator
	}
	return by.HasRole(flexhub.RoleFlexibilityRegisterOperator)
}

// resourceDSOs returns the DSOs in whose grids a resource sits: its own
// for a unit, its members' for a group.
func resourceDSOs(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource) ([]string, error) {
	out := []string{r.DSOID}
	if r.Kind == flexhub.ResourceGroup {
		for _, id := range r.Members {
			m, err := tx.Resource(ctx, id)
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, m.DSOID)
		}
	}
	return dedupe(out), nil
}

// WithdrawPrequalification is the FSP giving up an open request.
func (s *Service) WithdrawPrequalification(ctx context.Context, id string, version int64) (*flexhub.Prequalification, error) {
	return s.prequalStep(ctx, id, version, sideFSP, "prequalification.withdrawn",
		func(_ flexhub.Tx, by *flexhub.Party, p *flexhub.Prequalification, _ *flexhub.Product, now time.Time) ([]string, error) {
			return nil, p.Withdraw(by.ID, now)
		})
}

// GetPrequalification returns a prequalification the caller may see.
func (s *Service) GetPrequalification(ctx context.Context, id string) (*flexhub.Prequalification, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Prequalification
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		p, err := tx.Prequalification(ctx, id)
		if err != nil {
			return err
		}
		if !canSeePrequal(by, p) {
			return notFound("prequalification", id)
		}
		out = p
		return nil
	})
	return out, err
}

// PrequalFilter narrows a prequalification list; empty fields do not
// filter.
type PrequalFilter struct {
	ResourceID       string
	ProductID        string
	FSPID            string
	SystemOperatorID string
	Status           string
}

var prequalStatuses = []string{flexhub.PrequalSubmitted, flexhub.PrequalInformationRequested, flexhub.PrequalApproved,
	flexhub.PrequalApprovedConditions, flexhub.PrequalRejected, flexhub.PrequalWithdrawn}

// ListPrequalifications lists the prequalifications the caller is party
// to; the register and the administrator list all. Without a party
// filter an FSP sees its own requests and a system operator those it
// reviews (a party that is both gets its FSP view unless it sets
// system_operator_id=self).
func (s *Service) ListPrequalifications(ctx context.Context, f PrequalFilter, pg flexhub.Page) (*ListResult[flexhub.Prequalification], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	filter, err := buildFilter(
		idParam{"resource_id", f.ResourceID}, idParam{"product_id", f.ProductID},
		idParam{"fsp_id", f.FSPID}, idParam{"system_operator_id", f.SystemOperatorID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(filter, f.Status, "prequalification", prequalStatuses); err != nil {
		return nil, err
	}
	if err := scope(by, filter, "prequalifications",
		scopeKey{"fsp_id", flexhub.RoleFSP}, scopeKey{"system_operator_id", flexhub.RoleTSO}, scopeKey{"system_operator_id", flexhub.RoleDSO}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.Prequalification]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		out.Items, out.Next, err = tx.ListPrequalifications(ctx, filter, pg)
		return err
	})
	return &out, err
}

// idParam is an id-valued query filter.
type idParam struct{ key, value string }

// buildFilter checks id-valued query filters and keeps the non-empty ones.
// "self" passes: scope turns it into the caller's id.
func buildFilter(params ...idParam) (flexhub.Filter, error) {
	f := flexhub.Filter{}
	for _, p := range params {
		if p.value == "" {
			continue
		}
		if p.value != "self" && !flexhub.ValidID(p.value) {
			return nil, flexhub.FieldErrorf("query."+p.key, "%q is not an id", p.value)
		}
		f[p.key] = p.value
	}
	return f, nil
}

// statusParam checks a status query filter against the statuses of kind.
func statusParam(f flexhub.Filter, status, kind string, allowed []string) error {
	if status == "" {
		return nil
	}
	for _, a := range allowed {
		if a == status {
			f["status"] = status
			return nil
		}
	}
	list := ""
	for i, a := range allowed {
		if i > 0 {
			list += ", "
		}
		list += a
	}
	return flexhub.FieldErrorf("query.status", "%q is not a %s status: use one of %s", status, kind, list)
}

// GridPrequalRequest asks the connecting DSO to grid-prequalify a unit.
type GridPrequalRequest struct {
	ResourceID string `json:"resource_id" doc:"one of the caller's active units"`
}

var gridPrequalStatuses = []string{flexhub.GridPrequalRequested, flexhub.GridPrequalApproved, flexhub.GridPrequalLimited, flexhub.GridPrequalRejected}

// RequestGridPrequalification asks the DSO of a unit's connection point
// whether the unit may deliver flexibility there. Grid limits are per node,
// so a group is prequalified through its units.
func (s *Service) RequestGridPrequalification(ctx context.Context, req GridPrequalRequest, key string) (*Created[flexhub.GridPrequalification], error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if !flexhub.ValidID(req.ResourceID) {
		return nil, flexhub.FieldErrorf("resource_id", "%q is not a resource id", req.ResourceID)
	}
	return create(ctx, s, by, key, flexhub.KindGridPrequalification, req,
		func(tx flexhub.Tx, id string) (*flexhub.GridPrequalification, error) {
			return tx.GridPrequalification(ctx, id)
		},
		func(tx flexhub.Tx) (*flexhub.GridPrequalification, string, error) {
			r, err := ownResource(ctx, tx, by, "resource_id", req.ResourceID)
			if err != nil {
				return nil, "", err
			}
			if r.Kind != flexhub.ResourceUnit {
				return nil, "", flexhub.FieldErrorf("resource_id", "resource %s is a group: request grid prequalification per unit, for each of its members", r.ID)
			}
			if r.DSOID == "" || r.ConnectionPointID == "" {
				return nil, "", flexhub.FieldErrorf("resource_id", "resource %s has no connection point with a DSO; fix its registration first", r.ID)
			}
			dup := func(exceptID string) error {
				open, _, err := tx.ListGridPrequalifications(ctx, flexhub.Filter{"resource_id": r.ID, "status": flexhub.GridPrequalRequested}, flexhub.Page{Limit: 2})
				if err != nil {
					return err
				}
				for _, g := range open {
					if g.ID != exceptID {
						return &flexhub.Error{Kind: flexhub.EConflict, Field: "resource_id", Message: "grid prequalification " + g.ID + " of resource " + r.ID + " still awaits the DSO's decision"}
					}
				}
				return nil
			}
			if err := dup(""); err != nil {
				return nil, "", err
			}
			now := s.now()
			g := &flexhub.GridPrequalification{ID: flexhub.NewID(), ResourceID: r.ID, ConnectionPointID: r.ConnectionPointID,
				DSOID: r.DSOID, FSPID: by.ID, Status: flexhub.GridPrequalRequested, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateGridPrequalification(ctx, g); err != nil {
				return nil, "", err
			}
			if err := s.record(ctx, tx, by, "grid_prequalification.requested", flexhub.KindGridPrequalification, g.ID, g.Version, g, g.FSPID, g.DSOID); err != nil {
				return nil, "", err
			}
			// Same race guard as for product prequalifications.
			if err := dup(g.ID); err != nil {
				return nil, "", err
			}
			return g, g.ID, nil
		})
}

// canSeeGridPrequal: the FSP, the DSO, the register, and every system
// operator buying a product the resource is prequalified (or prequalifying)
// for, because a TSO must know what the connecting DSO allows before it
// activates a unit inside a distribution grid.
func canSeeGridPrequal(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, resourceID, fspID, dsoID string) (bool, error) {
	if privileged(by) || by.ID == fspID || by.ID == dsoID {
		return true, nil
	}
	if !by.IsSystemOperator() {
		return false, nil
	}
	ps, _, err := tx.ListPrequalifications(ctx, flexhub.Filter{"resource_id": resourceID, "system_operator_id": by.ID}, flexhub.Page{Limit: 1})
	return len(ps) > 0, err
}

// DecideGridPrequalification records the DSO's verdict: approved, limited
// to a maximum per direction, or rejected. A DSO that is also the unit's
// FSP cannot decide its own request.
func (s *Service) DecideGridPrequalification(ctx context.Context, id string, d flexhub.GridDecisionRequest, version int64) (*flexhub.GridPrequalification, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.GridPrequalification
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		g, err := tx.GridPrequalification(ctx, id)
		if err != nil {
			return err
		}
		if ok, err := canSeeGridPrequal(ctx, tx, by, g.ResourceID, g.FSPID, g.DSOID); err != nil {
			return err
		} else if !ok {
			return notFound("grid prequalification", id)
		}
		if by.ID == g.FSPID && g.FSPID == g.DSOID {
			return flexhub.Errorf(flexhub.EForbidden, "party %s cannot approve its own request: it is both the FSP and the DSO of grid prequalification %s; the flexibility register operator decides it", by.ID, id)
		}
		if !reviews(by, g.DSOID, g.FSPID) {
			return flexhub.Errorf(flexhub.EForbidden, "only the DSO of connection point %s decides grid prequalification %s", g.ConnectionPointID, id)
		}
		if version > 0 {
			if err := checkVersion("grid prequalification", id, version, g.Version); err != nil {
				return err
			}
		}
		if err := g.Decide(by.ID, d, s.now()); err != nil {
			return err
		}
		if err := tx.UpdateGridPrequalification(ctx, g); err != nil {
			return err
		}
		out = g
		return s.record(ctx, tx, by, "grid_prequalification.decided", flexhub.KindGridPrequalification, g.ID, g.Version, g, g.FSPID, g.DSOID)
	})
	return out, err
}

// GetGridPrequalification returns a grid prequalification the caller may
// see.
func (s *Service) GetGridPrequalification(ctx context.Context, id string) (*flexhub.GridPrequalification, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.GridPrequalification
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		g, err := tx.GridPrequalification(ctx, id)
		if err != nil {
			return err
		}
		if ok, err := canSeeGridPrequal(ctx, tx, by, g.ResourceID, g.FSPID, g.DSOID); err != nil {
			return err
		} else if !ok {
			return notFound("grid prequalification", id)
		}
		out = g
		return nil
	})
	return out, err
}

// GridPrequalFilter narrows a grid prequalification list.
type GridPrequalFilter struct {
	ResourceID string
	DSOID      string
	FSPID      string
	Status     string
}

// ListGridPrequalifications lists grid prequalifications the caller may
// see. Without a party filter an FSP sees its own, a DSO those it decides.
// A system operator buying a product the resource prequalifies for lists
// by resource_id.
func (s *Service) ListGridPrequalifications(ctx context.Context, f GridPrequalFilter, pg flexhub.Page) (*ListResult[flexhub.GridPrequalification], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	filter, err := buildFilter(idParam{"resource_id", f.ResourceID}, idParam{"dso_id", f.DSOID}, idParam{"fsp_id", f.FSPID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(filter, f.Status, "grid prequalification", gridPrequalStatuses); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.GridPrequalification]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		// A system operator buying a product the resource prequalifies for
		// lists the resource's grid prequalifications, whoever its FSP and
		// DSO; everyone else is scoped to the side it is on.
		viaProduct := false
		if r := filter["resource_id"]; r != "" && filter["fsp_id"] == "" && filter["dso_id"] == "" && !privileged(by) {
			ok, err := canSeeGridPrequal(ctx, tx, by, r, "", "")
			if err != nil {
				return err
			}
			viaProduct = ok
		}
		if !viaProduct {
			if err := scope(by, filter, "grid prequalifications", scopeKey{"fsp_id", flexhub.RoleFSP}, scopeKey{"dso_id", flexhub.RoleDSO}); err != nil {
				return err
			}
		}
		var err error
		out.Items, out.Next, err = tx.ListGridPrequalifications(ctx, filter, pg)
		return err
	})
	return &out, err
}
