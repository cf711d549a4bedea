package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

// Resources: the flexible units and groups FSPs offer. Every change is a
// new version with its own valid_from; nothing is overwritten or deleted,
// because prequalifications, bids and settlements refer to the resource
// as it was at their time.

// resolveResource checks a resource spec against the register and fills
// in what follows from its references. It returns the DSO of the unit's
// connection point and the consumer of its metering point (both "" for
// groups). fsp is the operating FSP.
//
// A unit's metering point must exist; references to objects that do not
// exist are bad input (422). Its owner defaults to the metering point's
// consumer and may otherwise only be the FSP itself (an FSP-owned asset
// behind the consumer's meter): nobody else can be made owner of a unit
// at someone's connection. Its connection point is the metering point's.
//
// A group's members must be active units of the same FSP: a group is how
// one FSP offers many small units together, and a unit another FSP
// operates is not this FSP's to offer; a unit its consumer has not
// confirmed is not the FSP's to offer yet. A missing resource and another
// FSP's resource get the same answer, so that ids cannot be probed.
func (s *Service) resolveResource(ctx context.Context, tx flexhub.Tx, fsp string, spec *flexhub.ResourceSpec) (dso, consumer string, err error) {
	if spec.Kind == flexhub.ResourceGroup {
		for i, id := range spec.Members {
			field := fmt.Sprintf("members[%d]", i)
			m, err := tx.Resource(ctx, id)
			if flexhub.ErrorKind(err) == flexhub.ENotFound || (err == nil && m.FSPID != fsp) {
				return "", "", flexhub.FieldErrorf(field, "resource %s is not one of your resources", id)
			}
			if err != nil {
				return "", "", err
			}
			if m.Kind != flexhub.ResourceUnit {
				return "", "", flexhub.FieldErrorf(field, "resource %s is a group; a group holds units only", id)
			}
			if m.Status != flexhub.ResourceActive {
				return "", "", flexhub.FieldErrorf(field, "%s; only active units can join a group", notActive(m))
			}
		}
		return "", "", nil
	}
	mp, err := tx.MeteringPoint(ctx, spec.MeteringPointID)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return "", "", flexhub.FieldErrorf("metering_point_id", "metering point %s does not exist", spec.MeteringPointID)
	}
	if err != nil {
		return "", "", err
	}
	switch spec.OwnerID {
	case "":
		spec.OwnerID = mp.ConsumerID
	case mp.ConsumerID, fsp:
	default:
		return "", "", flexhub.FieldErrorf("owner_id", "the owner of a unit at metering point %s is its consumer or the FSP itself; leave owner_id out for the consumer", mp.ID)
	}
	switch spec.ConnectionPointID {
	case "":
		spec.ConnectionPointID = mp.ConnectionPointID
	case mp.ConnectionPointID:
	default:
		return "", "", flexhub.FieldErrorf("connection_point_id", "metering point %s is at connection point %s, not %s; leave connection_point_id out", mp.ID, mp.ConnectionPointID, spec.ConnectionPointID)
	}
	cp, err := tx.ConnectionPoint(ctx, spec.ConnectionPointID)
	if err != nil {
		return "", "", err
	}
	return cp.DSOID, mp.ConsumerID, nil
}

// notActive says why a resource that is not active cannot be used in a
// group, a prequalification or a contract; the caller adds what the use
// needs.
func notActive(r *flexhub.Resource) string {
	switch r.Status {
	case flexhub.ResourcePendingConfirmation:
		return fmt.Sprintf("resource %s awaits the owner's confirmation: the consumer of metering point %s has not accepted its registration yet", r.ID, r.MeteringPointID)
	case flexhub.ResourceRejected:
		return fmt.Sprintf("resource %s was rejected by the consumer of metering point %s", r.ID, r.MeteringPointID)
	}
	return fmt.Sprintf("resource %s is %s", r.ID, r.Status)
}

// consumerOf returns the consumer of a unit's metering point, "" for a
// group. That consumer confirms the unit's registration, and every change
// of the unit is entered in its audit trail, whoever owns the unit: it is
// the consumer's data the unit exposes.
func consumerOf(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource) (string, error) {
	if r.Kind != flexhub.ResourceUnit || r.MeteringPointID == "" {
		return "", nil
	}
	mp, err := tx.MeteringPoint(ctx, r.MeteringPointID)
	if err != nil {
		return "", err
	}
	return mp.ConsumerID, nil
}

// RegisterResource registers a unit or a group for the calling FSP. A unit
// at a metering point whose consumer is another party starts
// pending_confirmation: until that consumer accepts it, it gives the FSP
// no access to the consumer's metering point or party and cannot be used.
// A unit at the FSP's own metering point and a group (of already active
// units) are active from now.
func (s *Service) RegisterResource(ctx context.Context, spec flexhub.ResourceSpec, key string) (*Created[flexhub.Resource], error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	request := spec // fingerprint what the client sent, before defaults are filled in
	return create(ctx, s, by, key, flexhub.KindResource, request,
		func(tx flexhub.Tx, id string) (*flexhub.Resource, error) { return tx.Resource(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Resource, string, error) {
			dso, consumer, err := s.resolveResource(ctx, tx, by.ID, &spec)
			if err != nil {
				return nil, "", err
			}
			status := flexhub.ResourceActive
			if spec.Kind == flexhub.ResourceUnit && consumer != by.ID {
				status = flexhub.ResourcePendingConfirmation
			}
			now := s.now()
			r := &flexhub.Resource{ID: flexhub.NewID(), ResourceSpec: spec, FSPID: by.ID, DSOID: dso,
				Status: status, ValidFrom: now, CreatedAt: now}
			if err := tx.CreateResource(ctx, r); err != nil {
				return nil, "", err
			}
			// The consumer learns of the registration from its audit trail
			// even when the FSP declares itself the owner.
			if err := s.record(ctx, tx, by, "resource.registered", flexhub.KindResource, r.ID, r.Version, r, append(r.Parties(), consumer)...); err != nil {
				return nil, "", err
			}
			// Same race guard as in DeregisterResource: a member deregistered
			// concurrently must not end up in the group.
			if r.Kind == flexhub.ResourceGroup {
				if _, _, err := s.resolveResource(ctx, tx, by.ID, &spec); err != nil {
					return nil, "", flexhub.Errorf(flexhub.EConflict, "a member changed while the group was registered: %s; retry", flexhub.ErrorMessage(err))
				}
			}
			return r, r.ID, nil
		})
}

// operated loads a resource for a change by its FSP: invisible resources
// are not found, visible ones of another FSP are forbidden, and a
// deregistered or rejected one is final.
func (s *Service) operated(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string) (*flexhub.Resource, error) {
	r, err := tx.Resource(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.canSeeResource(ctx, tx, by, r) {
		return nil, notFound("resource", id)
	}
	if r.FSPID != by.ID {
		return nil, flexhub.Errorf(flexhub.EForbidden, "only the FSP operating resource %s may change it", id)
	}
	switch r.Status {
	case flexhub.ResourceDeregistered:
		return nil, flexhub.Errorf(flexhub.EConflict, "resource %s was deregistered at %s; register a new resource instead", id, r.ValidFrom.Format(time.RFC3339))
	case flexhub.ResourceRejected:
		return nil, flexhub.Errorf(flexhub.EConflict, "resource %s was rejected by the consumer of metering point %s at %s and a rejection is final; register a new resource if the consumer agrees now", id, r.MeteringPointID, r.ValidFrom.Format(time.RFC3339))
	}
	return r, nil
}

// UpdateResource replaces a resource's spec with a new version, in force
// from now: by its FSP. The kind cannot change, because groups and units
// are prequalified differently. A pending unit stays pending (its consumer
// answers the latest version). An active unit cannot move to another
// metering point of someone else: its consumer confirmed the unit at the
// old one only, and moving it would open the new one's data to the FSP
// unasked.
func (s *Service) UpdateResource(ctx context.Context, id string, spec flexhub.ResourceSpec, version int64) (*flexhub.Resource, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out *flexhub.Resource
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		r, err := s.operated(ctx, tx, by, id)
		if err != nil {
			return err
		}
		if err := checkVersion("resource", id, version, r.Version); err != nil {
			return err
		}
		if spec.Kind != r.Kind {
			return flexhub.FieldErrorf("kind", "resource %s is a %s and stays one; register a new %s instead", id, r.Kind, spec.Kind)
		}
		for i, m := range spec.Members {
			if m == id {
				return flexhub.FieldErrorf(fmt.Sprintf("members[%d]", i), "a group cannot contain itself")
			}
		}
		oldConsumer, err := consumerOf(ctx, tx, r)
		if err != nil {
			return err
		}
		dso, consumer, err := s.resolveResource(ctx, tx, r.FSPID, &spec)
		if err != nil {
			return err
		}
		if r.Status == flexhub.ResourceActive && r.Kind == flexhub.ResourceUnit && spec.MeteringPointID != r.MeteringPointID && consumer != r.FSPID {
			return flexhub.FieldErrorf("metering_point_id", "unit %s was confirmed at metering point %s; the consumer of metering point %s has not confirmed it: register a new resource there instead", id, r.MeteringPointID, spec.MeteringPointID)
		}
		before := append(r.Parties(), oldConsumer)
		r.ResourceSpec = spec
		r.DSOID = dso
		r.ValidFrom = s.now()
		if err := tx.UpdateResource(ctx, r); err != nil {
			return err
		}
		out = r
		// A former owner, consumer or DSO learns that the resource left them.
		return s.record(ctx, tx, by, "resource.updated", flexhub.KindResource, r.ID, r.Version, r, append(append(before, r.Parties()...), consumer)...)
	})
	return out, err
}

// DeregisterResource ends a resource: a new version with status
// deregistered, in force from now; its history stays readable. A unit
// that an active group still counts on must leave the group first, or the
// group would offer flexibility that no longer exists.
func (s *Service) DeregisterResource(ctx context.Context, id string, version int64) (*flexhub.Resource, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Resource
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		r, err := s.operated(ctx, tx, by, id)
		if err != nil {
			return err
		}
		if err := checkVersion("resource", id, version, r.Version); err != nil {
			return err
		}
		if r.Kind == flexhub.ResourceUnit {
			g, err := activeGroupOf(ctx, tx, r)
			if err != nil {
				return err
			}
			if g != nil {
				return flexhub.Errorf(flexhub.EConflict, "unit %s is a member of active group %s (%s); remove it from the group first", id, g.ID, g.Name)
			}
		}
		consumer, err := consumerOf(ctx, tx, r)
		if err != nil {
			return err
		}
		r.Status = flexhub.ResourceDeregistered
		r.ValidFrom = s.now()
		if err := tx.UpdateResource(ctx, r); err != nil {
			return err
		}
		out = r
		if err := s.record(ctx, tx, by, "resource.deregistered", flexhub.KindResource, r.ID, r.Version, r, append(r.Parties(), consumer)...); err != nil {
			return err
		}
		// A group taking this unit in a concurrent transaction passed its
		// own check before we changed anything. Appending to the audit
		// chain serialises writers until commit, and a query after it sees
		// whatever committed first (as for duplicate prequalifications), so
		// checking again here lets only one of the two win.
		if r.Kind == flexhub.ResourceUnit {
			if g, err := activeGroupOf(ctx, tx, r); err != nil {
				return err
			} else if g != nil {
				return flexhub.Errorf(flexhub.EConflict, "unit %s was just added to group %s (%s) by a concurrent request; remove it from the group first", id, g.ID, g.Name)
			}
		}
		return nil
	})
	return out, err
}

// ConfirmResource is the answer to a unit's registration by the consumer
// of its metering point (the unit's owner, unless the FSP owns the unit
// itself), or by the administrator or the flexibility register operator on
// the consumer's behalf (a consumer who answered by letter or phone).
// Accepted, the unit becomes active and its FSP may read the metering
// point and the consumer; rejected, it is final. Anyone else who may see
// the resource is forbidden; anyone who may not is told it does not
// exist. version 0 skips the If-Match check; the store's version check
// still keeps two concurrent answers from both winning.
func (s *Service) ConfirmResource(ctx context.Context, id string, req flexhub.ConfirmationRequest, version int64) (*flexhub.Resource, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var out *flexhub.Resource
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		r, err := tx.Resource(ctx, id)
		if err != nil {
			return err
		}
		if !s.canSeeResource(ctx, tx, by, r) {
			return notFound("resource", id)
		}
		if r.Kind != flexhub.ResourceUnit {
			return flexhub.Errorf(flexhub.EConflict, "resource %s is a group of its FSP's own active units; a group needs no confirmation", id)
		}
		consumer, err := consumerOf(ctx, tx, r)
		if err != nil {
			return err
		}
		if by.ID != consumer && !privileged(by) {
			return flexhub.Errorf(flexhub.EForbidden, "only the consumer of metering point %s, or the administrator or the flexibility register operator on its behalf, may confirm or reject resource %s", r.MeteringPointID, id)
		}
		if version > 0 {
			if err := checkVersion("resource", id, version, r.Version); err != nil {
				return err
			}
		}
		if err := r.Confirm(by.ID, req, s.now()); err != nil {
			return err
		}
		if err := tx.UpdateResource(ctx, r); err != nil {
			return err
		}
		out = r
		action := "resource.confirmed"
		if r.Status == flexhub.ResourceRejected {
			action = "resource.rejected"
		}
		return s.record(ctx, tx, by, action, flexhub.KindResource, r.ID, r.Version, r, append(r.Parties(), consumer)...)
	})
	return out, err
}

// activeGroupOf finds an active group that lists the unit. Groups belong
// to the unit's FSP, so its active resources are all there is to scan.
func activeGroupOf(ctx context.Context, tx flexhub.Tx, unit *flexhub.Resource) (*flexhub.Resource, error) {
	pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
	for {
		rs, next, err := tx.ListResources(ctx, flexhub.Filter{"fsp_id": unit.FSPID, "status": flexhub.ResourceActive}, pg)
		if err != nil {
			return nil, err
		}
		for _, g := range rs {
			if g.Kind == flexhub.ResourceGroup && g.HasMember(unit.ID) {
				return g, nil
			}
		}
		if next == "" {
			return nil, nil
		}
		pg.After = next
	}
}

// GetResource returns a resource the caller may see; with asOf set, the
// version in force at that time (404 if the resource did not exist yet).
// Visibility follows the resource as it is now.
func (s *Service) GetResource(ctx context.Context, id string, asOf *time.Time) (*flexhub.Resource, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Resource
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		r, err := tx.Resource(ctx, id)
		if err != nil {
			return err
		}
		if !s.canSeeResource(ctx, tx, by, r) {
			return notFound("resource", id)
		}
		if asOf != nil {
			r = new(flexhub.Resource)
			if err := tx.AsOf(ctx, flexhub.KindResource, id, *asOf, r); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	return out, err
}

// ResourceVersion is one version of a resource with the time it stopped
// being in force (absent for the current version).
type ResourceVersion struct {
	flexhub.Resource
	ValidTo *time.Time `json:"valid_to,omitempty" doc:"when the next version replaced this one; absent for the current version"`
}

// ResourceVersions lists every version of a resource the caller may see,
// oldest first.
func (s *Service) ResourceVersions(ctx context.Context, id string) ([]*ResourceVersion, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out []*ResourceVersion
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		r, err := tx.Resource(ctx, id)
		if err != nil {
			return err
		}
		if !s.canSeeResource(ctx, tx, by, r) {
			return notFound("resource", id)
		}
		vs, err := tx.Versions(ctx, flexhub.KindResource, id)
		if err != nil {
			return err
		}
		for _, v := range vs {
			rv := &ResourceVersion{ValidTo: v.ValidTo}
			if err := json.Unmarshal(v.Body, &rv.Resource); err != nil {
				return fmt.Errorf("decode resource %s version %d: %w", id, v.Version, err)
			}
			out = append(out, rv)
		}
		return nil
	})
	return out, err
}

// ResourceFilter narrows a resource list. Party filters accept "self".
type ResourceFilter struct {
	FSPID             string
	DSOID             string
	OwnerID           string
	Status            string
	MeteringPointID   string
	ConnectionPointID string
}

// ListResources lists resources: the register sees all; an FSP its own
// (fsp_id=self by default), a DSO those in its grid (dso_id=self), an
// owner its own (owner_id=self). A party with several of these roles gets
// the first of them by default and picks another with an explicit
// filter. Resources visible through a prequalification are listed through
// the prequalifications, not here.
func (s *Service) ListResources(ctx context.Context, rf ResourceFilter, pg flexhub.Page) (*ListResult[flexhub.Resource], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{}
	setFilter(f, by, "fsp_id", rf.FSPID)
	setFilter(f, by, "dso_id", rf.DSOID)
	setFilter(f, by, "owner_id", rf.OwnerID)
	setFilter(f, by, "metering_point_id", rf.MeteringPointID)
	setFilter(f, by, "connection_point_id", rf.ConnectionPointID)
	switch rf.Status {
	case "", flexhub.ResourcePendingConfirmation, flexhub.ResourceActive, flexhub.ResourceRejected, flexhub.ResourceDeregistered:
		setFilter(f, by, "status", rf.Status)
	default:
		return nil, flexhub.FieldErrorf("query.status", "%q is not a resource status: use pending_confirmation, active, rejected or deregistered", rf.Status)
	}
	if err := scope(by, f, "resources", scopeKey{"fsp_id", flexhub.RoleFSP}, scopeKey{"dso_id", flexhub.RoleDSO}, scopeKey{"owner_id", flexhub.RoleConsumer}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.Resource]
	err = s.store.View(ctx, func(tx flexhub.Tx) (err error) {
		out.Items, out.Next, err = tx.ListResources(ctx, f, pg)
		return err
	})
	return &out, err
}
