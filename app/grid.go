package app

import (
	"context"
	"sort"
	"time"

	"github.com/flexhub/flexhub"
)

// Grid master data: control areas (TSO), grid areas and connection points
// (DSO), and metering points with their supplier and BRP over time. Areas
// and connection points are public to market parties; metering points
// carry a consumer's data and are visible only to the parties serving it.

// operatorOf resolves the party that will operate an area: the caller by
// default, and a named party only for the register, which enrols system
// operators. The named party must exist and hold role; a missing party is
// bad input (422), not a missing page.
func operatorOf(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, field, id string, role flexhub.Role) (string, error) {
	if id == "" || id == "self" {
		if !by.HasRole(role) {
			return "", flexhub.FieldErrorf(field, "name the party that operates the area in %s: you do not hold the %s role yourself", field, role)
		}
		return by.ID, nil
	}
	if id != by.ID && !privileged(by) {
		return "", (&flexhub.Error{Kind: flexhub.EForbidden, Field: field,
			Message: "a " + string(role) + " registers areas for itself only; leave " + field + " out or ask the flexibility register operator"})
	}
	return id, partyWithRole(ctx, tx, field, id, role)
}

// partyWithRole checks that a referenced party exists and holds role.
func partyWithRole(ctx context.Context, tx flexhub.Tx, field, id string, role flexhub.Role) error {
	if !flexhub.ValidID(id) {
		return flexhub.FieldErrorf(field, "%q is not a party id", id)
	}
	p, err := tx.Party(ctx, id)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return flexhub.FieldErrorf(field, "party %s does not exist", id)
	}
	if err != nil {
		return err
	}
	if !p.HasRole(role) {
		return flexhub.FieldErrorf(field, "party %s (%s) does not hold the %s role", id, p.EIC, role)
	}
	return nil
}

// uniqueField turns the store's unique-constraint conflict into a conflict
// that names the field the client has to change.
func uniqueField(err error, field, message string) error {
	if flexhub.ErrorKind(err) == flexhub.EConflict {
		return &flexhub.Error{Kind: flexhub.EConflict, Field: field, Message: message}
	}
	return err
}

// CreateControlArea registers a TSO's control area: a TSO for itself, the
// register for any TSO.
func (s *Service) CreateControlArea(ctx context.Context, spec flexhub.ControlAreaSpec, key string) (*Created[flexhub.ControlArea], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleAdmin, flexhub.RoleFlexibilityRegisterOperator)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindControlArea, spec,
		func(tx flexhub.Tx, id string) (*flexhub.ControlArea, error) { return tx.ControlArea(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.ControlArea, string, error) {
			tso, err := operatorOf(ctx, tx, by, "tso_id", spec.TSOID, flexhub.RoleTSO)
			if err != nil {
				return nil, "", err
			}
			a := &flexhub.ControlArea{ID: flexhub.NewID(), ControlAreaSpec: spec, CreatedAt: s.now()}
			a.TSOID = tso
			if err := tx.CreateControlArea(ctx, a); err != nil {
				return nil, "", uniqueField(err, "eic", "a control area with EIC "+spec.EIC+" is already registered")
			}
			return a, a.ID, s.record(ctx, tx, by, "control_area.registered", flexhub.KindControlArea, a.ID, a.Version, a, a.TSOID)
		})
}

// GetControlArea returns a control area; areas are public master data.
func (s *Service) GetControlArea(ctx context.Context, id string) (*flexhub.ControlArea, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	var out *flexhub.ControlArea
	err := s.store.View(ctx, func(tx flexhub.Tx) (err error) {
		out, err = tx.ControlArea(ctx, id)
		return err
	})
	return out, err
}

// ListControlAreas lists control areas, optionally of one TSO.
func (s *Service) ListControlAreas(ctx context.Context, tsoID string, pg flexhub.Page) (*ListResult[flexhub.ControlArea], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{}
	setFilter(f, by, "tso_id", tsoID)
	var out ListResult[flexhub.ControlArea]
	err = s.store.View(ctx, func(tx flexhub.Tx) (err error) {
		out.Items, out.Next, err = tx.ListControlAreas(ctx, f, pg)
		return err
	})
	return &out, err
}

// setFilter adds a filter when given, reading "self" as the caller.
func setFilter(f flexhub.Filter, by *flexhub.Party, key, value string) {
	if value == "self" {
		value = by.ID
	}
	if value != "" {
		f[key] = value
	}
}

// CreateGridArea registers a DSO's grid area inside an existing control
// area: a DSO for itself, the register for any DSO.
func (s *Service) CreateGridArea(ctx context.Context, spec flexhub.GridAreaSpec, key string) (*Created[flexhub.GridArea], error) {
	by, err := actor(ctx, flexhub.RoleDSO, flexhub.RoleAdmin, flexhub.RoleFlexibilityRegisterOperator)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindGridArea, spec,
		func(tx flexhub.Tx, id string) (*flexhub.GridArea, error) { return tx.GridArea(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.GridArea, string, error) {
			dso, err := operatorOf(ctx, tx, by, "dso_id", spec.DSOID, flexhub.RoleDSO)
			if err != nil {
				return nil, "", err
			}
			ca, err := tx.ControlArea(ctx, spec.ControlAreaID)
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				return nil, "", flexhub.FieldErrorf("control_area_id", "control area %s does not exist", spec.ControlAreaID)
			}
			if err != nil {
				return nil, "", err
			}
			a := &flexhub.GridArea{ID: flexhub.NewID(), GridAreaSpec: spec, CreatedAt: s.now()}
			a.DSOID = dso
			if err := tx.CreateGridArea(ctx, a); err != nil {
				return nil, "", uniqueField(err, "eic", "a grid area with EIC "+spec.EIC+" is already registered")
			}
			// The TSO is told: a new distribution grid in its control area
			// matters for TSO-DSO coordination.
			return a, a.ID, s.record(ctx, tx, by, "grid_area.registered", flexhub.KindGridArea, a.ID, a.Version, a, a.DSOID, ca.TSOID)
		})
}

// GetGridArea returns a grid area; areas are public master data.
func (s *Service) GetGridArea(ctx context.Context, id string) (*flexhub.GridArea, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	var out *flexhub.GridArea
	err := s.store.View(ctx, func(tx flexhub.Tx) (err error) {
		out, err = tx.GridArea(ctx, id)
		return err
	})
	return out, err
}

// ListGridAreas lists grid areas, optionally of one DSO or control area.
func (s *Service) ListGridAreas(ctx context.Context, dsoID, controlAreaID string, pg flexhub.Page) (*ListResult[flexhub.GridArea], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{}
	setFilter(f, by, "dso_id", dsoID)
	setFilter(f, by, "control_area_id", controlAreaID)
	var out ListResult[flexhub.GridArea]
	err = s.store.View(ctx, func(tx flexhub.Tx) (err error) {
		out.Items, out.Next, err = tx.ListGridAreas(ctx, f, pg)
		return err
	})
	return &out, err
}

// gridAreaOf loads the grid area a connection point refers to and checks
// that the caller operates it.
func gridAreaOf(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string) (*flexhub.GridArea, error) {
	ga, err := tx.GridArea(ctx, id)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return nil, flexhub.FieldErrorf("grid_area_id", "grid area %s does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	if ga.DSOID != by.ID && !privileged(by) {
		return nil, flexhub.Errorf(flexhub.EForbidden, "grid area %s (%s) is operated by another DSO; only its DSO registers connection points in it", ga.ID, ga.EIC)
	}
	return ga, nil
}

// CreateConnectionPoint registers a connection point in a grid area: by
// the DSO operating the area, or the register. The DSO is taken from the
// area, so a connection point can never disagree with its grid.
func (s *Service) CreateConnectionPoint(ctx context.Context, spec flexhub.ConnectionPointSpec, key string) (*Created[flexhub.ConnectionPoint], error) {
	by, err := actor(ctx, flexhub.RoleDSO, flexhub.RoleAdmin, flexhub.RoleFlexibilityRegisterOperator)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindConnectionPoint, spec,
		func(tx flexhub.Tx, id string) (*flexhub.ConnectionPoint, error) { return tx.ConnectionPoint(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.ConnectionPoint, string, error) {
			ga, err := gridAreaOf(ctx, tx, by, spec.GridAreaID)
			if err != nil {
				return nil, "", err
			}
			now := s.now()
			c := &flexhub.ConnectionPoint{ID: flexhub.NewID(), ConnectionPointSpec: spec, DSOID: ga.DSOID, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateConnectionPoint(ctx, c); err != nil {
				return nil, "", uniqueField(err, "code", "grid area "+ga.EIC+" already has a connection point with code "+spec.Code)
			}
			return c, c.ID, s.record(ctx, tx, by, "connection_point.registered", flexhub.KindConnectionPoint, c.ID, c.Version, c, c.DSOID)
		})
}

// UpdateConnectionPoint changes a connection point's code, node, voltage
// or capacity: by its DSO or the register. It cannot move to another grid
// area: its metering points and resources would silently change DSO.
func (s *Service) UpdateConnectionPoint(ctx context.Context, id string, spec flexhub.ConnectionPointSpec, version int64) (*flexhub.ConnectionPoint, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out *flexhub.ConnectionPoint
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		c, err := tx.ConnectionPoint(ctx, id)
		if err != nil {
			return err
		}
		if !s.canSeeConnectionPoint(ctx, tx, by, c) {
			return notFound("connection point", id)
		}
		if c.DSOID != by.ID && !privileged(by) {
			return flexhub.Errorf(flexhub.EForbidden, "only the DSO operating connection point %s may change it", id)
		}
		if err := checkVersion("connection point", id, version, c.Version); err != nil {
			return err
		}
		if spec.GridAreaID != c.GridAreaID {
			return flexhub.FieldErrorf("grid_area_id", "a connection point cannot move to another grid area (it is in %s); register a new one", c.GridAreaID)
		}
		c.ConnectionPointSpec = spec
		c.UpdatedAt = s.now()
		if err := tx.UpdateConnectionPoint(ctx, c); err != nil {
			return uniqueField(err, "code", "grid area "+c.GridAreaID+" already has another connection point with code "+spec.Code)
		}
		out = c
		parties := []string{c.DSOID}
		mps, _, err := tx.ListMeteringPoints(ctx, flexhub.Filter{"connection_point_id": c.ID}, flexhub.Page{Limit: flexhub.MaxPageLimit})
		if err != nil {
			return err
		}
		for _, mp := range mps {
			parties = append(parties, mp.ConsumerID)
		}
		return s.record(ctx, tx, by, "connection_point.updated", flexhub.KindConnectionPoint, c.ID, c.Version, c, parties...)
	})
	return out, err
}

// GetConnectionPoint returns a connection point the caller may see.
func (s *Service) GetConnectionPoint(ctx context.Context, id string) (*flexhub.ConnectionPoint, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.ConnectionPoint
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		c, err := tx.ConnectionPoint(ctx, id)
		if err != nil {
			return err
		}
		if !s.canSeeConnectionPoint(ctx, tx, by, c) {
			return notFound("connection point", id)
		}
		out = c
		return nil
	})
	return out, err
}

// ListConnectionPoints lists connection points, optionally of one DSO or
// grid area. A consumer gets the connection points of its own metering
// points only.
func (s *Service) ListConnectionPoints(ctx context.Context, dsoID, gridAreaID string, pg flexhub.Page) (*ListResult[flexhub.ConnectionPoint], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{}
	setFilter(f, by, "dso_id", dsoID)
	setFilter(f, by, "grid_area_id", gridAreaID)
	var out ListResult[flexhub.ConnectionPoint]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		if privileged(by) || !consumerOnly(by) {
			var err error
			out.Items, out.Next, err = tx.ListConnectionPoints(ctx, f, pg)
			return err
		}
		// A household has a handful of metering points: collect their
		// connection points and page over them in id order like the store.
		mps, _, err := tx.ListMeteringPoints(ctx, flexhub.Filter{"consumer_id": by.ID}, flexhub.Page{Limit: flexhub.MaxPageLimit})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		var ids []string
		for _, mp := range mps {
			if !seen[mp.ConnectionPointID] && mp.ConnectionPointID > pg.After {
				seen[mp.ConnectionPointID] = true
				ids = append(ids, mp.ConnectionPointID)
			}
		}
		sort.Strings(ids)
		limit := pageLimit(pg)
		for _, id := range ids {
			c, err := tx.ConnectionPoint(ctx, id)
			if err != nil {
				return err
			}
			if (f["dso_id"] != "" && c.DSOID != f["dso_id"]) || (f["grid_area_id"] != "" && c.GridAreaID != f["grid_area_id"]) {
				continue
			}
			if len(out.Items) == limit {
				out.Next = out.Items[limit-1].ID
				break
			}
			out.Items = append(out.Items, c)
		}
		return nil
	})
	return &out, err
}

func pageLimit(pg flexhub.Page) int {
	if pg.Limit <= 0 {
		return flexhub.DefaultPageLimit
	}
	return min(pg.Limit, flexhub.MaxPageLimit)
}

// CreateMeteringPoint registers a metering point at a connection point:
// by the DSO operating it, or the register. The consumer, supplier and BRP
// it names must be parties holding those roles; the supplier and BRP
// given become the first assignment, in force from now.
func (s *Service) CreateMeteringPoint(ctx context.Context, spec flexhub.MeteringPointSpec, key string) (*Created[flexhub.MeteringPoint], error) {
	by, err := actor(ctx, flexhub.RoleDSO, flexhub.RoleAdmin, flexhub.RoleFlexibilityRegisterOperator)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindMeteringPoint, spec,
		func(tx flexhub.Tx, id string) (*flexhub.MeteringPoint, error) { return tx.MeteringPoint(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.MeteringPoint, string, error) {
			cp, err := tx.ConnectionPoint(ctx, spec.ConnectionPointID)
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				return nil, "", flexhub.FieldErrorf("connection_point_id", "connection point %s does not exist", spec.ConnectionPointID)
			}
			if err != nil {
				return nil, "", err
			}
			if cp.DSOID != by.ID && !privileged(by) {
				return nil, "", flexhub.Errorf(flexhub.EForbidden, "connection point %s is in another DSO's grid; only its DSO registers metering points at it", cp.ID)
			}
			if err := partyWithRole(ctx, tx, "consumer_id", spec.ConsumerID, flexhub.RoleConsumer); err != nil {
				return nil, "", err
			}
			if spec.SupplierID != "" {
				if err := partyWithRole(ctx, tx, "supplier_id", spec.SupplierID, flexhub.RoleSupplier); err != nil {
					return nil, "", err
				}
			}
			if spec.BRPID != "" {
				if err := partyWithRole(ctx, tx, "brp_id", spec.BRPID, flexhub.RoleBRP); err != nil {
					return nil, "", err
				}
			}
			now := s.now()
			m := &flexhub.MeteringPoint{ID: flexhub.NewID(), MeteringPointSpec: spec, DSOID: cp.DSOID,
				Assignments: []flexhub.MarketAssignment{}, CreatedAt: now, UpdatedAt: now}
			if spec.SupplierID != "" || spec.BRPID != "" {
				m.Assignments = append(m.Assignments, flexhub.MarketAssignment{SupplierID: spec.SupplierID, BRPID: spec.BRPID, ValidFrom: now})
			}
			if err := tx.CreateMeteringPoint(ctx, m); err != nil {
				return nil, "", uniqueField(err, "code", "a metering point with code "+spec.Code+" is already registered")
			}
			return m, m.ID, s.record(ctx, tx, by, "metering_point.registered", flexhub.KindMeteringPoint, m.ID, m.Version, m, m.Parties()...)
		})
}

// SwitchMeteringPoint records a supplier and/or BRP switch from a time on:
// by the metering point's DSO or the register. It appends an assignment;
// earlier ones stay, because the periods they cover are settled with them.
func (s *Service) SwitchMeteringPoint(ctx context.Context, id string, req flexhub.SwitchRequest, version int64) (*flexhub.MeteringPoint, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var out *flexhub.MeteringPoint
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		m, err := tx.MeteringPoint(ctx, id)
		if err != nil {
			return err
		}
		if !s.canSeeMeteringPoint(ctx, tx, by, m) {
			return notFound("metering point", id)
		}
		if m.DSOID != by.ID && !privileged(by) {
			return flexhub.Errorf(flexhub.EForbidden, "only the DSO of metering point %s records supplier and BRP switches", id)
		}
		if err := checkVersion("metering point", id, version, m.Version); err != nil {
			return err
		}
		if req.SupplierID != "" {
			if err := partyWithRole(ctx, tx, "supplier_id", req.SupplierID, flexhub.RoleSupplier); err != nil {
				return err
			}
		}
		if req.BRPID != "" {
			if err := partyWithRole(ctx, tx, "brp_id", req.BRPID, flexhub.RoleBRP); err != nil {
				return err
			}
		}
		if err := m.Switch(req); err != nil {
			return err
		}
		m.UpdatedAt = s.now()
		if err := tx.UpdateMeteringPoint(ctx, m); err != nil {
			return err
		}
		out = m
		return s.record(ctx, tx, by, "metering_point.switched", flexhub.KindMeteringPoint, m.ID, m.Version, m, m.Parties()...)
	})
	return out, err
}

// GetMeteringPoint returns a metering point the caller may see; with asOf
// set, the version that was recorded in force at that time.
func (s *Service) GetMeteringPoint(ctx context.Context, id string, asOf *time.Time) (*flexhub.MeteringPoint, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.MeteringPoint
	var acc *flexhub.DataAccess
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		m, err := tx.MeteringPoint(ctx, id)
		if err != nil {
			return err
		}
		// Master data of a consumer's metering point: checked and logged
		// as every read of consumer data (docs/CONSENT.md).
		what := "master data"
		if asOf != nil {
			what += " as of " + asOf.UTC().Format(time.RFC3339)
		}
		if acc, err = s.masterDataAccess(ctx, tx, by, m, what); err != nil {
			return err
		}
		if asOf != nil {
			m = new(flexhub.MeteringPoint)
			if err := tx.AsOf(ctx, flexhub.KindMeteringPoint, id, *asOf, m); err != nil {
				return err
			}
		}
		out = m
		return nil
	})
	if err := s.afterRead(ctx, acc, err); err != nil {
		return nil, err
	}
	return out, nil
}

// masterDataAccess decides a read of a metering point's register data:
// the FSP operating an active resource behind it reads it on that basis
// (its unit's connection); everyone else as dataAccess decides (the
// owner; DSO, supplier, BRP, register; or a consent for master_data).
func (s *Service) masterDataAccess(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, m *flexhub.MeteringPoint, what string) (*flexhub.DataAccess, error) {
	if by.ID != m.ConsumerID && by.ID != m.DSOID && !m.Assigned(by.ID) && !privileged(by) && by.HasRole(flexhub.RoleFSP) {
		rs, _, err := tx.ListResources(ctx, flexhub.Filter{"metering_point_id": m.ID, "fsp_id": by.ID, "status": flexhub.ResourceActive}, flexhub.Page{Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(rs) > 0 {
			return &flexhub.DataAccess{At: s.now(), ReaderID: by.ID, OwnerID: m.ConsumerID, MeteringPointID: m.ID, Scope: flexhub.ScopeMasterData,
				Channel: channelOf(ctx), Basis: flexhub.BasisFSPOperator, What: what + " (resource " + rs[0].ID + ")", Outcome: flexhub.AccessAllowed}, nil
		}
	}
	if by.ID != m.ConsumerID && by.ID != m.DSOID && m.Assigned(by.ID) {
		// a supplier or BRP of the metering point at any time (a switch
		// being prepared included): the register data it bills and settles on
		basis := flexhub.BasisBRP
		for _, a := range m.Assignments {
			if a.SupplierID == by.ID {
				basis = flexhub.BasisSupplier
			}
		}
		return &flexhub.DataAccess{At: s.now(), ReaderID: by.ID, OwnerID: m.ConsumerID, MeteringPointID: m.ID, Scope: flexhub.ScopeMasterData,
			Channel: channelOf(ctx), Basis: basis, What: what, Outcome: flexhub.AccessAllowed}, nil
	}
	return s.dataAccess(ctx, tx, by, m, flexhub.ScopeMasterData, channelOf(ctx), what)
}

// MeteringPointFilter narrows a metering point list.
type MeteringPointFilter struct {
	DSOID             string
	ConsumerID        string
	ConnectionPointID string
}

// ListMeteringPoints lists metering points: the register sees all; a DSO
// its own (dso_id=self by default), a consumer its own (consumer_id=self).
// Suppliers, BRPs and FSPs read single metering points by id: the store
// cannot list "every metering point I ever supplied", and a list that
// filtered rows afterwards would let them page through everyone's.
func (s *Service) ListMeteringPoints(ctx context.Context, mf MeteringPointFilter, pg flexhub.Page) (*ListResult[flexhub.MeteringPoint], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{}
	setFilter(f, by, "dso_id", mf.DSOID)
	setFilter(f, by, "consumer_id", mf.ConsumerID)
	setFilter(f, by, "connection_point_id", mf.ConnectionPointID)
	if err := scope(by, f, "metering points", scopeKey{"dso_id", flexhub.RoleDSO}, scopeKey{"consumer_id", flexhub.RoleConsumer}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.MeteringPoint]
	err = s.store.View(ctx, func(tx flexhub.Tx) (err error) {
		out.Items, out.Next, err = tx.ListMeteringPoints(ctx, f, pg)
		return err
	})
	return &out, err
}
