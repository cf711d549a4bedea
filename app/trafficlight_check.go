package app

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/gridops"
)

// The traffic-light check of bids and activation orders
// (docs/TRAFFIC_LIGHT.md). A resource's units whose connection point lies
// in another party's distribution grid are checked against that DSO's
// word for each interval: an active override covering the interval and
// direction decides (the newest, when several do); without one, the
// DSO's grid model does — the verdict of gridops at the unit's bus in the
// operating states of the interval (a forecast's, else the model's base
// case); a unit whose grid area has no model, or whose connection point
// it does not map, gets no light. The resource may then
// move at most the sum over its units of what each may move: a checked
// unit what its light allows (green: its share, amber: the limit, red:
// nothing), any other unit its technical maximum in the direction. A
// buyer's own grid is not checked against itself: a DSO knows its grid
// when it buys.

// lightAsk is one interval of a bid or order: the quantity asked of the
// resource (W or var, > 0).
type lightAsk struct {
	start, end time.Time
	requested  int64
}

// lightCheck is the outcome for a resource: the lights of its checked
// units per interval and the most the resource may move in each.
type lightCheck struct {
	lights []flexhub.TrafficLight
	caps   []int64 // per ask: min(requested, what the DSOs' grids allow)
	red    []string
}

// checkTrafficLight checks a resource (units: itself, or a group's
// members) for a change by buyer in direction ("up"/"down"), in unit
// ("W"/"var"), for each ask. With overridesOnly, only the DSOs' overrides
// speak, not their grid models (a common_market bid: the joint clearing
// keeps the grids' limits itself, common_market.go).
func (s *Service) checkTrafficLight(ctx context.Context, tx flexhub.Tx, buyer string, units []*flexhub.Resource, direction, unit string, asks []lightAsk, overridesOnly bool) (*lightCheck, error) {
	out := &lightCheck{caps: make([]int64, len(asks))}
	var checked []string
	for _, u := range units {
		if u.DSOID != "" && u.DSOID != buyer {
			checked = append(checked, u.ID)
		}
	}
	for i, a := range asks {
		out.caps[i] = a.requested
	}
	if len(checked) == 0 || len(asks) == 0 {
		return out, nil
	}
	overrides, err := tx.TrafficLightOverridesCovering(ctx, checked, asks[0].start, asks[len(asks)-1].end)
	if err != nil {
		return nil, err
	}
	refs := map[string]*flexhub.GridBusRef{} // unit → its bus in the current grid model (nil: none)
	for i, a := range asks {
		var total int64
		for _, u := range units {
			share := a.requested
			if len(units) > 1 {
				share = min(a.requested, capability(u, direction, unit, a.requested))
			}
			if u.DSOID == "" || u.DSOID == buyer {
				total += share
				continue
			}
			l := overrideLight(u, overrides, direction, unit, a, share)
			if l == nil && !overridesOnly {
				var err error
				if l, err = s.gridLight(ctx, tx, refs, u, direction, unit, a, share); err != nil {
					return nil, err
				}
			}
			if l == nil {
				total += share // no word from the DSO for this interval
				continue
			}
			out.lights = append(out.lights, *l)
			allowed := share
			if l.Allowed != nil {
				allowed = *l.Allowed
			}
			if l.Color == flexhub.LightRed {
				out.red = append(out.red, fmt.Sprintf("unit %s from %s to %s (%s)", u.ID, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339), l.LimitingElement))
			}
			total += allowed
		}
		out.caps[i] = min(a.requested, total)
	}
	return out, nil
}

// capability is the most a unit can move in a direction (W) or of
// reactive power (var), or fallback when its technical data do not say.
func capability(u *flexhub.Resource, direction, unit string, fallback int64) int64 {
	var w int64
	var err error
	switch {
	case unit == "var" && u.Technical.ReactiveCapability != nil:
		w, err = u.Technical.ReactiveCapability.Vars("")
	case unit == "W" && direction == "up" && u.Technical.MaxUp != nil:
		w, err = u.Technical.MaxUp.Watts("")
	case unit == "W" && direction == "down" && u.Technical.MaxDown != nil:
		w, err = u.Technical.MaxDown.Watts("")
	default:
		return fallback
	}
	if err != nil || w <= 0 {
		return fallback
	}
	return w
}

// overrideLight is the light of the newest active override of unit u
// covering the ask, nil when none does. An amber limit is active power:
// it caps orders and bids in W; for reactive power an amber override
// leaves the quantity as asked (the grid model decides reactive power).
func overrideLight(u *flexhub.Resource, overrides []*flexhub.TrafficLightOverride, direction, unit string, a lightAsk, requested int64) *flexhub.TrafficLight {
	var o *flexhub.TrafficLightOverride
	for _, x := range overrides { // oldest first (ids are time-ordered)
		if x.ResourceID == u.ID && x.Covers(direction, a.start, a.end) {
			o = x
		}
	}
	if o == nil {
		return nil
	}
	l := &flexhub.TrafficLight{Start: a.start, End: a.end, ResourceID: u.ID, Color: o.Color, Requested: requested, Unit: unit, DSOID: o.DSOID,
		Source: "override " + o.ID + " of DSO " + o.DSOID, OverrideID: o.ID, LimitingElement: "DSO override: " + o.Reason}
	switch o.Color {
	case flexhub.LightRed:
		zero := int64(0)
		l.Allowed = &zero
	case flexhub.LightAmber:
		if unit == "W" && o.LimitW != nil && *o.LimitW < requested {
			allowed := *o.LimitW
			l.Allowed = &allowed
		} else {
			l.Color = flexhub.LightGreen // the limit is above what is asked
		}
	default:
		l.LimitingElement = ""
	}
	return l
}

// redError is the refusal of a change some interval of which no DSO's
// grid takes.
func redError(field, what string, red []string) error {
	return flexhub.RuleErrorf(flexhub.EInvalid, "traffic_light.red", field, "%s: the DSO's traffic light is red for %s", what, strings.Join(red, "; "))
}

// gridLight is the grid model's verdict on a unit's change over an ask,
// nil when the unit's connection point is not in a grid model.
func (s *Service) gridLight(ctx context.Context, tx flexhub.Tx, refs map[string]*flexhub.GridBusRef, u *flexhub.Resource, direction, unit string, a lightAsk, requested int64) (*flexhub.TrafficLight, error) {
	if u.ConnectionPointID == "" || requested <= 0 {
		return nil, nil
	}
	ref, known := refs[u.ID]
	if !known {
		var err error
		ref, err = tx.ConnectionPointBus(ctx, u.ConnectionPointID)
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			ref, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		refs[u.ID] = ref
	}
	if ref == nil {
		return nil, nil
	}
	states, src, err := s.statesOver(ctx, tx, ref.GridModelID, a.start, a.end)
	if err != nil {
		return nil, err
	}
	sign := 1.0
	if direction == "down" {
		sign = -1
	}
	req := gridops.Request{Bus: ref.BusID}
	if unit == "var" {
		req.QKvar = sign * float64(requested) / 1000
	} else {
		req.PKW = sign * float64(requested) / 1000
	}
	v, _, err := gridops.VerdictOver(states, req, gridops.TrafficOptions{})
	if err != nil {
		return nil, fmt.Errorf("traffic light of unit %s at bus %s of grid model %s: %w", u.ID, ref.BusID, ref.GridModelID, err)
	}
	l := &flexhub.TrafficLight{Start: a.start, End: a.end, ResourceID: u.ID, Color: string(v.Light), Requested: requested, Unit: unit, DSOID: u.DSOID,
		Source: fmt.Sprintf("grid model %s version %d, bus %s, on %s", ref.GridModelID, ref.ModelVersion, ref.BusID, src)}
	if v.Limiting != nil {
		l.LimitingElement = v.Limiting.String()
	}
	switch v.Light {
	case gridops.Red:
		zero := int64(0)
		l.Allowed = &zero
	case gridops.Amber:
		kw := math.Abs(v.AllowedPKW)
		if unit == "var" {
			kw = math.Abs(v.AllowedQKvar)
		}
		allowed := min(requested, int64(math.Floor(kw*1000))) // whole W, never above the AC limit
		l.Allowed = &allowed
	}
	return l, nil
}

// resourceUnits loads a resource and its units: itself for a unit, its
// members for a group.
func resourceUnits(ctx context.Context, tx flexhub.Tx, id string) (*flexhub.Resource, []*flexhub.Resource, error) {
	r, err := tx.Resource(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if r.Kind != flexhub.ResourceGroup {
		return r, []*flexhub.Resource{r}, nil
	}
	units := make([]*flexhub.Resource, 0, len(r.Members))
	for _, mid := range r.Members {
		u, err := tx.Resource(ctx, mid)
		if err != nil {
			return nil, nil, err
		}
		units = append(units, u)
	}
	return r, units, nil
}
