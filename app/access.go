package app

import (
	"context"
	"strings"

	"github.com/flexhub/flexhub"
)

// Visibility of register objects. Each canSee* answers for one object, so
// a get can hide what the caller may not see behind a 404 and a list can
// be scoped to the same rule. Store errors count as "no": a failed lookup
// must never widen access.

// consumerOnly reports whether p is only a consumer: a household, whose
// view of the grid is limited to its own connection. A party holding any
// market or grid role besides is treated by that role.
func consumerOnly(p *flexhub.Party) bool {
	if !p.HasRole(flexhub.RoleConsumer) {
		return false
	}
	for _, r := range p.Roles {
		if r != flexhub.RoleConsumer {
			return false
		}
	}
	return true
}

// canSeeConnectionPoint: connection points are grid master data that every
// market party needs (to place resources and check grid limits); a
// consumer sees only the connection points of its own metering points,
// since the codes and nodes of a neighbour's connection are none of its
// business.
func (s *Service) canSeeConnectionPoint(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, cp *flexhub.ConnectionPoint) bool {
	if privileged(by) || !consumerOnly(by) {
		return true
	}
	mps, _, err := tx.ListMeteringPoints(ctx, flexhub.Filter{"consumer_id": by.ID, "connection_point_id": cp.ID}, flexhub.Page{Limit: 1})
	return err == nil && len(mps) > 0
}

// canSeeMeteringPoint: a metering point carries a consumer's identity and
// market relations, so it is visible only to the parties that serve it:
// its DSO, the consumer, every supplier and BRP it ever had (they settle
// the periods they served), FSPs operating an active resource on it, and
// the register. Only an active resource counts: one pending the
// consumer's confirmation, rejected by it or deregistered must not open
// the consumer's data to an FSP.
func (s *Service) canSeeMeteringPoint(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, mp *flexhub.MeteringPoint) bool {
	if privileged(by) || mp.DSOID == by.ID || mp.ConsumerID == by.ID || mp.Assigned(by.ID) {
		return true
	}
	if !by.HasRole(flexhub.RoleFSP) {
		return false
	}
	rs, _, err := tx.ListResources(ctx, flexhub.Filter{"metering_point_id": mp.ID, "fsp_id": by.ID, "status": flexhub.ResourceActive}, flexhub.Page{Limit: 1})
	return err == nil && len(rs) > 0
}

// canSeeResource: a resource is visible to the FSP operating it, its
// owner, the consumer of its metering point (who confirms the unit even
// when the FSP owns it, since it is the consumer's data the unit opens),
// the DSO of its connection point, the register, and every system
// operator that was asked to prequalify it — for a product it owns, or
// for its grid — because reviewing a resource needs its technical data.
// Everyone else must not learn that it exists.
func (s *Service) canSeeResource(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, r *flexhub.Resource) bool {
	if privileged(by) || r.FSPID == by.ID || (r.OwnerID != "" && r.OwnerID == by.ID) || (r.DSOID != "" && r.DSOID == by.ID) {
		return true
	}
	if r.MeteringPointID != "" && by.HasRole(flexhub.RoleConsumer) {
		if consumer, err := consumerOf(ctx, tx, r); err == nil && consumer == by.ID {
			return true
		}
	}
	if !by.IsSystemOperator() {
		return false
	}
	pqs, _, err := tx.ListPrequalifications(ctx, flexhub.Filter{"resource_id": r.ID, "system_operator_id": by.ID}, flexhub.Page{Limit: 1})
	if err == nil && len(pqs) > 0 {
		return true
	}
	if !by.HasRole(flexhub.RoleDSO) {
		return false
	}
	gpqs, _, err := tx.ListGridPrequalifications(ctx, flexhub.Filter{"resource_id": r.ID, "dso_id": by.ID}, flexhub.Page{Limit: 1})
	return err == nil && len(gpqs) > 0
}

// scopeKey is a list filter that names a party, and the role whose holder
// gets it set to itself by default.
type scopeKey struct {
	filter string
	role   flexhub.Role
}

// scope restricts a list to what a non-privileged caller may see: every
// party filter must name the caller itself, and without one the first
// scope the caller's roles give is applied. Why not filter the rows after
// reading: a page of someone else's objects would come back empty but
// with a cursor, and the caller would page through the whole register.
// "self" in a party filter stands for the caller, so a client need not
// know its own id.
func scope(by *flexhub.Party, f flexhub.Filter, what string, keys ...scopeKey) error {
	for _, k := range keys {
		if f[k.filter] == "self" {
			f[k.filter] = by.ID
		}
	}
	if privileged(by) {
		return nil
	}
	scoped := false
	for _, k := range keys {
		v, ok := f[k.filter]
		if !ok {
			continue
		}
		if v != by.ID {
			return (&flexhub.Error{Kind: flexhub.EForbidden, Field: "query." + k.filter,
				Message: "you may list only your own " + what + ": set " + k.filter + " to your party id (or self), or leave it out"})
		}
		scoped = true
	}
	if scoped {
		return nil
	}
	for _, k := range keys {
		if by.HasRole(k.role) {
			f[k.filter] = by.ID
			return nil
		}
	}
	var opts []string
	for _, k := range keys {
		opts = append(opts, k.filter+"=self (as "+string(k.role)+")")
	}
	return flexhub.Errorf(flexhub.EForbidden, "listing %s needs one of %s, or the flexibility register operator role; party %s has %v",
		what, strings.Join(opts, ", "), by.EIC, by.Roles)
}
