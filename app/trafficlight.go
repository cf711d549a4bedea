package app

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/flexhub/flexhub"
)

// Traffic-light overrides (docs/TRAFFIC_LIGHT.md): the DSO of a unit's
// connection point sets the light of that unit for a time span by hand —
// green (its grid takes the change), amber (up to a limit) or red
// (blocked) — with a reason. An override decides every interval it
// covers, whatever the grid model says, for bids and activation orders
// checked after it; withdrawing it returns those intervals to the grid
// model. Every override and withdrawal is audited and notified to the
// unit's FSP and the TSO of the control area.

// overrideParties are the parties an override concerns besides its DSO:
// the unit's FSP and the TSO of the control area the unit's grid area
// lies in (found through the connection point; none if a link is gone).
func overrideParties(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource) ([]string, error) {
	parties := []string{r.FSPID}
	tso, err := resourceTSO(ctx, tx, r)
	if err != nil {
		return nil, err
	}
	if tso != "" {
		parties = append(parties, tso)
	}
	return parties, nil
}

// resourceTSO is the TSO of the control area a unit's connection point's
// grid area lies in, "" when the unit has none.
func resourceTSO(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource) (string, error) {
	if r.ConnectionPointID == "" {
		return "", nil
	}
	cp, err := tx.ConnectionPoint(ctx, r.ConnectionPointID)
	if err != nil {
		return "", ignoreNotFound(err)
	}
	ga, err := tx.GridArea(ctx, cp.GridAreaID)
	if err != nil {
		return "", ignoreNotFound(err)
	}
	ca, err := tx.ControlArea(ctx, ga.ControlAreaID)
	if err != nil {
		return "", ignoreNotFound(err)
	}
	return ca.TSOID, nil
}

func ignoreNotFound(err error) error {
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return nil
	}
	return err
}

// CreateTrafficLightOverride sets the light of a unit in the caller's
// grid for a time span.
func (s *Service) CreateTrafficLightOverride(ctx context.Context, spec flexhub.TrafficLightOverrideSpec, key string) (*Created[flexhub.TrafficLightOverride], error) {
	by, err := actor(ctx, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	limit, err := spec.Validate()
	if err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindTrafficLightOverride, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.TrafficLightOverride, error) {
			return tx.TrafficLightOverride(ctx, id)
		},
		func(tx flexhub.Tx) (*flexhub.TrafficLightOverride, string, error) {
			r, err := tx.Resource(ctx, spec.ResourceID)
			if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
				return nil, "", err
			}
			if err != nil || (r.DSOID != by.ID && r.Kind != flexhub.ResourceGroup) {
				return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "traffic_light.resource", "resource_id",
					"resource %s is not connected to a grid area party %s operates", spec.ResourceID, by.ID)
			}
			if r.Kind == flexhub.ResourceGroup {
				return nil, "", flexhub.RuleErrorf(flexhub.EInvalid, "traffic_light.resource", "resource_id",
					"resource %s is a group: set the light of its units in your grid (a group's light is its units')", r.ID)
			}
			parties, err := overrideParties(ctx, tx, r)
			if err != nil {
				return nil, "", err
			}
			now := s.now()
			o := &flexhub.TrafficLightOverride{ID: flexhub.NewID(), TrafficLightOverrideSpec: spec, LimitW: limit, DSOID: by.ID, FSPID: r.FSPID,
				Status: flexhub.OverrideActive, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateTrafficLightOverride(ctx, o); err != nil {
				return nil, "", err
			}
			if err := s.notify(ctx, tx, parties, "traffic_light.overridden", flexhub.KindTrafficLightOverride, o.ID, "", overrideText(o)); err != nil {
				return nil, "", err
			}
			return o, o.ID, s.record(ctx, tx, by, "traffic_light.overridden", flexhub.KindTrafficLightOverride, o.ID, o.Version, o, parties...)
		})
}

func overrideText(o *flexhub.TrafficLightOverride) string {
	what := o.Color
	if o.LimitW != nil {
		what = fmt.Sprintf("amber, at most %s", kw(*o.LimitW))
	}
	return fmt.Sprintf("DSO %s set the traffic light of resource %s to %s for %s changes from %s to %s: %s", o.DSOID, o.ResourceID, what,
		o.Direction, o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339), o.Reason)
}

// WithdrawTrafficLightOverride ends an override (version: the one the
// caller read); the intervals it covered go back to the grid model.
func (s *Service) WithdrawTrafficLightOverride(ctx context.Context, id string, version int64) (*flexhub.TrafficLightOverride, error) {
	by, err := actor(ctx, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	var out *flexhub.TrafficLightOverride
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		o, err := tx.TrafficLightOverride(ctx, id)
		if err != nil {
			return err
		}
		if o.DSOID != by.ID {
			return notFound("traffic-light override", id)
		}
		if version != 0 && o.Version != version {
			return flexhub.Errorf(flexhub.EConflict, "traffic-light override %s is at version %d, not %d: read it again", id, o.Version, version)
		}
		if o.Status != flexhub.OverrideActive {
			return flexhub.RuleErrorf(flexhub.EConflict, "traffic_light.withdrawn", "", "traffic-light override %s is already withdrawn", id)
		}
		now := s.now()
		o.Status, o.WithdrawnAt, o.UpdatedAt = flexhub.OverrideWithdrawn, &now, now
		if err := tx.UpdateTrafficLightOverride(ctx, o); err != nil {
			return err
		}
		r, err := tx.Resource(ctx, o.ResourceID)
		if err != nil {
			return err
		}
		parties, err := overrideParties(ctx, tx, r)
		if err != nil {
			return err
		}
		if err := s.notify(ctx, tx, parties, "traffic_light.override_withdrawn", flexhub.KindTrafficLightOverride, o.ID, "",
			fmt.Sprintf("DSO %s withdrew its traffic-light override %s of resource %s; the grid model decides again", o.DSOID, o.ID, o.ResourceID)); err != nil {
			return err
		}
		out = o
		return s.record(ctx, tx, by, "traffic_light.override_withdrawn", flexhub.KindTrafficLightOverride, o.ID, o.Version, o, parties...)
	})
	return out, err
}

// canSeeOverride: the DSO that set it, the unit's FSP, the TSO of the
// control area, and the installation's privileged parties.
func canSeeOverride(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, o *flexhub.TrafficLightOverride) (bool, error) {
	if privileged(by) || o.DSOID == by.ID || o.FSPID == by.ID {
		return true, nil
	}
	if !by.HasRole(flexhub.RoleTSO) {
		return false, nil
	}
	r, err := tx.Resource(ctx, o.ResourceID)
	if err != nil {
		return false, ignoreNotFound(err)
	}
	tso, err := resourceTSO(ctx, tx, r)
	return tso == by.ID, err
}

// GetTrafficLightOverride reads one override the caller may see.
func (s *Service) GetTrafficLightOverride(ctx context.Context, id string) (*flexhub.TrafficLightOverride, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.TrafficLightOverride
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		o, err := tx.TrafficLightOverride(ctx, id)
		if err != nil {
			return err
		}
		ok, err := canSeeOverride(ctx, tx, by, o)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("traffic-light override", id)
		}
		out = o
		return nil
	})
	return out, err
}

// ListTrafficLightOverrides lists the overrides the caller may see: a DSO
// its own, an FSP those of its units; a TSO lists them per resource
// (resource_id), and sees those in its control area.
func (s *Service) ListTrafficLightOverrides(ctx context.Context, f flexhub.Filter, pg flexhub.Page) (*ListResult[flexhub.TrafficLightOverride], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	tsoByResource := false
	if !privileged(by) {
		switch {
		case f["dso_id"] == by.ID || f["fsp_id"] == by.ID:
		case by.HasRole(flexhub.RoleDSO):
			f["dso_id"] = by.ID
		case by.HasRole(flexhub.RoleFSP):
			f["fsp_id"] = by.ID
		case by.HasRole(flexhub.RoleTSO) && f["resource_id"] != "":
			tsoByResource = true
		default:
			return nil, flexhub.FieldErrorf("resource_id", "list overrides per resource: give resource_id (a TSO sees those of the resources in its control area)")
		}
	}
	out := &ListResult[flexhub.TrafficLightOverride]{}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		if tsoByResource {
			r, err := tx.Resource(ctx, f["resource_id"])
			if err != nil {
				if flexhub.ErrorKind(err) == flexhub.ENotFound {
					out.Items = []*flexhub.TrafficLightOverride{}
					return nil
				}
				return err
			}
			if tso, err := resourceTSO(ctx, tx, r); err != nil || tso != by.ID {
				out.Items = []*flexhub.TrafficLightOverride{}
				return err
			}
		}
		out.Items, out.Next, err = tx.ListTrafficLightOverrides(ctx, f, pg)
		return err
	})
	return out, err
}

// kw formats W as kW with up to three decimals ("12.5 kW").
func kw(w int64) string {
	return strconv.FormatFloat(float64(w)/1000, 'f', -1, 64) + " kW"
}
