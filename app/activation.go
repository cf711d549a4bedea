package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Activation orders (flexhub.ActivationOrder): a system operator orders an
// FSP's resource to deliver, within what the market awarded it (or
// directly, for automatic-activation products and for a DSO limiting a
// resource in its grid). The order is stored first, with its tracking,
// audit entry and notification, in one transaction; delivery follows from
// the order sweep (SweepActivationOrders), which publishes over MQTT at
// QoS 1 and re-sends, with the same order id, until the FSP acknowledges.
// Webhook endpoints get the same order as an event written in that same
// transaction. Nothing is sent that is not stored, and a restart resumes
// from the store: the sweep works from each order's due_at.

// Publisher is the part of the MQTT bus the service needs: publishing to
// a topic (mqtt.Bus satisfies it).
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
}

// SetPublisher gives the service the MQTT bus to deliver orders and
// alerts over; nil (the default) means REST and webhooks only.
func (s *Service) SetPublisher(p Publisher) { s.pub = p }

// Topic returns party id's MQTT topic for what (activations,
// notifications, monitoring, errors); docs/MQTT.md has the tree.
func Topic(partyID, what string) string { return "flexhub/v1/parties/" + partyID + "/" + what }

// Webhook event types for activation orders.
const (
	EventActivationOrder  = "activation.order"
	EventActivationStatus = "activation.status"
	EventActivationAlert  = "activation.alert"
)

// CreateActivationOrder stores a system operator's order for delivery.
func (s *Service) CreateActivationOrder(ctx context.Context, spec flexhub.ActivationOrderSpec, key string) (*Created[flexhub.ActivationOrder], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	spec.ObligationID, spec.ResourceID, spec.ProductID, spec.EndsOrderID = strings.TrimSpace(spec.ObligationID), strings.TrimSpace(spec.ResourceID), strings.TrimSpace(spec.ProductID), strings.TrimSpace(spec.EndsOrderID)
	return create(ctx, s, by, key, flexhub.KindActivationOrder, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.ActivationOrder, error) { return tx.ActivationOrder(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.ActivationOrder, string, error) {
			o, err := s.buildOrder(ctx, tx, by, &spec)
			if err != nil {
				return nil, "", err
			}
			if err := tx.CreateActivationOrder(ctx, o); err != nil {
				return nil, "", err
			}
			if err := s.record(ctx, tx, by, "activation_order.created", flexhub.KindActivationOrder, o.ID, o.Version, o, o.SystemOperatorID, o.FSPID); err != nil {
				return nil, "", err
			}
			text := fmt.Sprintf("%s order %s for resource %s from %s to %s; acknowledge by %s", o.Type, o.ID, o.ResourceID,
				o.First().Format(time.RFC3339), o.Last().Format(time.RFC3339), o.AckDeadline.Format(time.RFC3339))
			if err := s.notify(ctx, tx, []string{o.FSPID}, flexhub.NotifyActivationOrder, flexhub.KindActivationOrder, o.ID, "", text); err != nil {
				return nil, "", err
			}
			if err := s.emitEvent(ctx, tx, o.FSPID, EventActivationOrder, o.ID+"."+"created", o); err != nil {
				return nil, "", err
			}
			if o.Type == flexhub.OrderEnd {
				if err := s.endTarget(ctx, tx, by, o); err != nil {
					return nil, "", err
				}
			}
			return o, o.ID, nil
		})
}

// buildOrder checks the spec against the obligation (or the product and
// resource) and returns the new order.
func (s *Service) buildOrder(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, spec *flexhub.ActivationOrderSpec) (*flexhub.ActivationOrder, error) {
	now := s.now()
	o := &flexhub.ActivationOrder{ID: flexhub.NewID(), Type: spec.Type, SystemOperatorID: by.ID, Reason: spec.Reason,
		Status: flexhub.OrderCreated, CreatedAt: now, UpdatedAt: now}
	if n := len(spec.Setpoints); n > 0 && spec.Type != flexhub.OrderEnd && !spec.Setpoints[n-1].End.After(now) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.past", "setpoints", "the order's last interval ended at %s; an order must reach into the future", spec.Setpoints[n-1].End.UTC().Format(time.RFC3339))
	}
	var obl *flexhub.Obligation
	var product *flexhub.Product
	switch {
	case spec.Type == flexhub.OrderEnd:
		if err := spec.Validate(0); err != nil {
			return nil, err
		}
		t, err := tx.ActivationOrder(ctx, spec.EndsOrderID)
		if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
			return nil, err
		}
		if err != nil || t.SystemOperatorID != by.ID {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.ends", "ends_order_id", "activation order %s not found among the orders party %s issued", spec.EndsOrderID, by.ID)
		}
		if flexhub.OrderTerminal(t.Status) || t.Type == flexhub.OrderEnd {
			return nil, flexhub.RuleErrorf(flexhub.EConflict, "order.ends", "ends_order_id", "order %s is %s (%s); there is nothing to end", t.ID, t.Status, t.Type)
		}
		at := spec.Setpoints[0].Start.UTC()
		if !at.Before(t.Last()) {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.ends", "setpoints[0].start", "order %s ends at %s anyway; an end order must stop it before that", t.ID, t.Last().Format(time.RFC3339))
		}
		o.FSPID, o.ResourceID, o.ProductID, o.ObligationID, o.Direction, o.Unit = t.FSPID, t.ResourceID, t.ProductID, t.ObligationID, t.Direction, t.Unit
		o.EndsOrderID = t.ID
		o.Setpoints = []flexhub.Setpoint{{Start: at, End: t.Last(), Quantity: 0}}
		p, err := tx.Product(ctx, t.ProductID)
		if err != nil {
			return nil, err
		}
		o.AckDeadline = now.Add(p.AckWithin())
		return o, nil
	case spec.ObligationID != "":
		var err error
		obl, err = tx.Obligation(ctx, spec.ObligationID)
		if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
			return nil, err
		}
		if err != nil || obl.SystemOperatorID != by.ID {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.obligation", "obligation_id", "obligation %s not found among the obligations owed to party %s", spec.ObligationID, by.ID)
		}
		if obl.Status != flexhub.ObligationActive {
			return nil, flexhub.RuleErrorf(flexhub.EConflict, "order.obligation", "obligation_id", "obligation %s is %s; activate the obligation that replaced it (%s)", obl.ID, obl.Status, obl.TransferredTo)
		}
		for _, f := range [][2]string{{"resource_id", spec.ResourceID}, {"product_id", spec.ProductID}, {"direction", spec.Direction}} {
			if f[1] != "" {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.obligation", f[0], "%s comes from obligation %s; leave it out", f[0], obl.ID)
			}
		}
		product, err = tx.Product(ctx, obl.ProductID)
		if err != nil {
			return nil, err
		}
		o.FSPID, o.ResourceID, o.ProductID, o.ObligationID, o.Direction, o.Unit = obl.FSPID, obl.ResourceID, obl.ProductID, obl.ID, obl.Direction, obl.Unit
	default:
		if spec.ProductID == "" || spec.ResourceID == "" || spec.Direction == "" {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.obligation", "obligation_id", "name the obligation to activate; only automatic-activation products and limitation orders take product_id, resource_id and direction instead")
		}
		p, err := tx.Product(ctx, spec.ProductID)
		if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
			return nil, err
		}
		if err != nil || p.SystemOperatorID != by.ID {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.product", "product_id", "product %s not found among the products of party %s", spec.ProductID, by.ID)
		}
		product = p
		r, err := tx.Resource(ctx, spec.ResourceID)
		if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
			return nil, err
		}
		if err != nil || r.Status != flexhub.ResourceActive {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.resource", "resource_id", "active resource %s not found", spec.ResourceID)
		}
		if spec.Direction != "up" && spec.Direction != "down" {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.direction", "direction", "%q is not a direction: use up or down", spec.Direction)
		}
		if p.Direction != "both" && p.Direction != spec.Direction {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.direction", "direction", "product %s buys %s flexibility only", p.ID, p.Direction)
		}
		switch spec.Type {
		case flexhub.OrderActivate:
			if p.ActivationMode != "automatic" {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.obligation", "obligation_id", "product %s is activated manually, against awarded obligations: name the obligation", p.ID)
			}
			if err := orderPrequalified(ctx, tx, r, p, spec.Setpoints); err != nil {
				return nil, err
			}
		case flexhub.OrderLimit:
			// A DSO limits a resource in its own grid; anyone else needs
			// the resource prequalified for its product.
			if r.DSOID != by.ID {
				if err := orderPrequalified(ctx, tx, r, p, spec.Setpoints); err != nil {
					return nil, err
				}
			}
		}
		o.FSPID, o.ResourceID, o.ProductID, o.Direction = r.FSPID, r.ID, p.ID, spec.Direction
		o.Unit = "W"
		if p.PowerType == "reactive" {
			o.Unit = "var"
		}
	}
	res, _ := product.TimeResolution.Parse("")
	if err := spec.Validate(res); err != nil {
		return nil, err
	}
	for i, sp := range spec.Setpoints {
		f := fmt.Sprintf("setpoints[%d]", i)
		var q int64
		var err error
		switch {
		case o.Unit == "W" && sp.Quantity != nil:
			q, err = sp.Quantity.Watts(f + ".quantity")
		case o.Unit == "var" && sp.Reactive != nil:
			q, err = sp.Reactive.Vars(f + ".quantity_reactive")
		default:
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.unit", f, "this order is in %s: give %s", o.Unit, map[string]string{"W": "quantity (W, kW, MW)", "var": "quantity_reactive (var, kvar, Mvar)"}[o.Unit])
		}
		if err != nil {
			return nil, err
		}
		if q <= 0 && spec.Type == flexhub.OrderActivate {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.quantity", f+".quantity", "a set-point must be above zero; end the order instead")
		}
		if obl != nil && spec.Type == flexhub.OrderActivate {
			if owed, ok := owedOver(obl, sp.Start, sp.End); !ok {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.outside_obligation", f, "obligation %s owes nothing for part of %s–%s", obl.ID, sp.Start.UTC().Format(time.RFC3339), sp.End.UTC().Format(time.RFC3339))
			} else if q > owed {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.above_obligation", f+".quantity", "%d %s is above the %d %s obligation %s owes from %s to %s", q, o.Unit, owed, o.Unit, obl.ID, sp.Start.UTC().Format(time.RFC3339), sp.End.UTC().Format(time.RFC3339))
			}
		}
		o.Setpoints = append(o.Setpoints, flexhub.Setpoint{Start: sp.Start.UTC(), End: sp.End.UTC(), Quantity: q})
	}
	if !o.Last().After(now) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.past", "setpoints", "the order's last interval ended at %s; an order must reach into the future", o.Last().Format(time.RFC3339))
	}
	o.AckDeadline = now.Add(product.AckWithin())
	o.Tracking = []flexhub.OrderEvent{{Status: flexhub.OrderCreated, At: now, By: by.ID, Channel: "rest"}}
	next := now
	o.NextSend = &next
	return o, nil
}

// owedOver returns the least quantity an obligation owes over [start,
// end), and false when some part of it is not covered.
func owedOver(o *flexhub.Obligation, start, end time.Time) (int64, bool) {
	least := int64(-1)
	at := start
	for at.Before(end) {
		found := false
		for _, iv := range o.Intervals {
			if !at.Before(iv.Start) && at.Before(iv.End) {
				if least < 0 || iv.Quantity < least {
					least = iv.Quantity
				}
				at = iv.End
				found = true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return least, least >= 0
}

// orderPrequalified: the resource holds an approved prequalification for
// the product valid over every set-point.
func orderPrequalified(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource, p *flexhub.Product, sps []flexhub.SetpointSpec) error {
	pqs, err := listAll(func(pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
		return tx.ListPrequalifications(ctx, flexhub.Filter{"resource_id": r.ID, "product_id": p.ID}, pg)
	})
	if err != nil {
		return err
	}
	for i, sp := range sps {
		ok := false
		for _, q := range pqs {
			if q.ValidAt(sp.Start) && (q.Decision.ValidUntil == nil || !sp.End.After(*q.Decision.ValidUntil)) {
				ok = true
				break
			}
		}
		if !ok {
			return flexhub.RuleErrorf(flexhub.EInvalid, "order.prequalification", fmt.Sprintf("setpoints[%d]", i),
				"resource %s holds no approved prequalification for product %s valid from %s to %s", r.ID, p.ID, sp.Start.UTC().Format(time.RFC3339), sp.End.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// endTarget moves the order an end order stops to ended_early.
func (s *Service) endTarget(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, end *flexhub.ActivationOrder) error {
	t, err := tx.ActivationOrder(ctx, end.EndsOrderID)
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("ended by order %s from %s", end.ID, end.First().Format(time.RFC3339))
	if _, err := t.Step(flexhub.OrderEndedEarly, by.ID, "rest", reason, s.now()); err != nil {
		return err
	}
	t.EndedByOrderID = end.ID
	if err := tx.UpdateActivationOrder(ctx, t); err != nil {
		return err
	}
	return s.record(ctx, tx, by, "activation_order.ended_early", flexhub.KindActivationOrder, t.ID, t.Version, t, t.SystemOperatorID, t.FSPID)
}

// canSeeOrder: the issuing system operator, the FSP, the DSO of the
// resource's connection (TSO-DSO coordination: a DSO sees activations in
// its grid) and the installation's admin.
func canSeeOrder(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, o *flexhub.ActivationOrder) bool {
	if by.ID == o.SystemOperatorID || by.ID == o.FSPID || by.HasRole(flexhub.RoleAdmin) {
		return true
	}
	if by.HasRole(flexhub.RoleDSO) {
		if r, err := tx.Resource(ctx, o.ResourceID); err == nil && r.DSOID == by.ID {
			return true
		}
	}
	return false
}

// GetActivationOrder returns an order the caller may read.
func (s *Service) GetActivationOrder(ctx context.Context, id string) (*flexhub.ActivationOrder, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.ActivationOrder
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		o, err := tx.ActivationOrder(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeOrder(ctx, tx, by, o) {
			return notFound("activation order", id)
		}
		out = o
		return nil
	})
	return out, err
}

// OrderFilter narrows a list of activation orders.
type OrderFilter struct {
	SystemOperatorID, FSPID, ResourceID, ObligationID, Status string
}

// ListActivationOrders lists the orders the caller issued or must
// execute (a DSO: also those of resources in its grid, by resource_id).
func (s *Service) ListActivationOrders(ctx context.Context, of OrderFilter, pg flexhub.Page) (*ListResult[flexhub.ActivationOrder], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f, err := buildFilter(idParam{"system_operator_id", of.SystemOperatorID}, idParam{"fsp_id", of.FSPID},
		idParam{"resource_id", of.ResourceID}, idParam{"obligation_id", of.ObligationID})
	if err != nil {
		return nil, err
	}
	if err := statusParam(f, of.Status, "activation order", []string{flexhub.OrderCreated, flexhub.OrderDelivered, flexhub.OrderReceived,
		flexhub.OrderAccepted, flexhub.OrderRejected, flexhub.OrderExecuting, flexhub.OrderCompleted, flexhub.OrderEndedEarly}); err != nil {
		return nil, err
	}
	var out ListResult[flexhub.ActivationOrder]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		// A DSO may list the orders of one resource in its grid.
		if rid := f["resource_id"]; rid != "" && by.HasRole(flexhub.RoleDSO) && f["fsp_id"] == "" && f["system_operator_id"] == "" {
			if r, err := tx.Resource(ctx, rid); err == nil && r.DSOID == by.ID {
				var err error
				out.Items, out.Next, err = tx.ListActivationOrders(ctx, f, pg)
				return err
			}
		}
		if err := scope(by, f, "activation orders", scopeKey{"system_operator_id", flexhub.RoleTSO}, scopeKey{"system_operator_id", flexhub.RoleDSO}, scopeKey{"fsp_id", flexhub.RoleFSP}); err != nil {
			return err
		}
		var err error
		out.Items, out.Next, err = tx.ListActivationOrders(ctx, f, pg)
		return err
	})
	return &out, err
}

// ReportActivationOrder records the FSP's report on one of its orders
// (received, accepted, rejected, executing, completed, ended_early);
// channel says how it came (rest, mqtt). A repeated or outdated report
// changes nothing and returns the order as it is.
func (s *Service) ReportActivationOrder(ctx context.Context, id string, rep flexhub.ActivationOrderReport, channel string) (*flexhub.ActivationOrder, error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if rep.Status == flexhub.OrderCreated || rep.Status == flexhub.OrderDelivered {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.report", "status", "an FSP reports received, accepted, rejected, executing, completed or ended_early, not %s", rep.Status)
	}
	if rep.Status == flexhub.OrderEndedEarly && strings.TrimSpace(rep.Reason) == "" {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.reason", "reason", "say why the order ended early")
	}
	var out *flexhub.ActivationOrder
	var changed bool
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		o, err := tx.ActivationOrder(ctx, id)
		if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
			return err
		}
		if err != nil || o.FSPID != by.ID {
			return notFound("activation order", id)
		}
		changed, err = o.Step(rep.Status, by.ID, channel, strings.TrimSpace(rep.Reason), s.now())
		if err != nil || !changed {
			out = o
			return err
		}
		if err := tx.UpdateActivationOrder(ctx, o); err != nil {
			return err
		}
		if err := s.record(ctx, tx, by, "activation_order."+o.Status, flexhub.KindActivationOrder, o.ID, o.Version, o, o.SystemOperatorID, o.FSPID); err != nil {
			return err
		}
		text := fmt.Sprintf("order %s: %s by %s", o.ID, o.Status, by.ID)
		if o.Tracking[len(o.Tracking)-1].Reason != "" {
			text += " (" + o.Tracking[len(o.Tracking)-1].Reason + ")"
		}
		if err := s.notify(ctx, tx, []string{o.SystemOperatorID}, flexhub.NotifyActivationStatus, flexhub.KindActivationOrder, o.ID, "", text); err != nil {
			return err
		}
		if err := s.emitEvent(ctx, tx, o.SystemOperatorID, EventActivationStatus, fmt.Sprintf("%s.%d", o.ID, o.Version), o); err != nil {
			return err
		}
		out = o
		return nil
	})
	return out, err
}

// SweepActivationOrders does the orders' timed work (the serve loop calls
// it every tick): sends unacknowledged orders (again) over MQTT, raises
// the ack-overdue alert at the deadline, starts execution of accepted
// orders at their first interval and closes orders after their last.
// Each order is handled in its own transaction with a versioned update,
// so two instances never both record a step; a publish happens before its
// "sent" is recorded, so a crash in between sends the order again with
// the same id, which receivers deduplicate.
func (s *Service) SweepActivationOrders(ctx context.Context) (int, error) {
	now := s.now()
	var due []*flexhub.ActivationOrder
	if err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		due, err = tx.DueActivationOrders(ctx, now, 500)
		return err
	}); err != nil {
		return 0, err
	}
	var firstErr error
	n := 0
	for _, o := range due {
		if err := s.sweepOrder(ctx, o, now); err != nil {
			if flexhub.ErrorKind(err) != flexhub.EConflict {
				s.log.Warn("activation order sweep", "order", o.ID, "err", err)
				if firstErr == nil {
					firstErr = err
				}
			}
			continue
		}
		n++
	}
	return n, firstErr
}

func (s *Service) sweepOrder(ctx context.Context, o *flexhub.ActivationOrder, now time.Time) error {
	// Send first (outside any transaction), record after.
	sent := false
	if !o.Acknowledged() && o.NextSend != nil && !o.NextSend.After(now) && s.pub != nil {
		payload, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if err := s.pub.Publish(ctx, Topic(o.FSPID, "activations"), payload, 1, false); err != nil {
			s.log.Warn("publish activation order", "order", o.ID, "err", err)
		} else {
			sent = true
		}
	}
	var alert *flexhub.OrderAlert
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		cur, err := tx.ActivationOrder(ctx, o.ID)
		if err != nil {
			return err
		}
		if cur.Version != o.Version {
			return flexhub.Errorf(flexhub.EConflict, "order %s moved on", o.ID)
		}
		var actions []string
		if sent {
			cur.Sends++
			t := now
			cur.LastSent = &t
			if ok, _ := cur.Step(flexhub.OrderDelivered, "flexhub-mqtt", "mqtt", "", now); ok {
				actions = append(actions, "delivered")
			}
		}
		if !cur.Acknowledged() && cur.NextSend != nil && !cur.NextSend.After(now) {
			// the next send (none without a bus: REST and webhooks only)
			if next := now.Add(flexhub.OrderResend); s.pub != nil && next.Before(cur.Last()) {
				cur.NextSend = &next
			} else {
				cur.NextSend = nil
			}
		}
		if !cur.Acknowledged() && !now.Before(cur.AckDeadline) && !cur.HasAlert("ack_overdue", time.Time{}) {
			a := flexhub.OrderAlert{Kind: "ack_overdue", At: now, Text: fmt.Sprintf("FSP %s has not acknowledged order %s by its deadline %s (sent %d times)",
				cur.FSPID, cur.ID, cur.AckDeadline.Format(time.RFC3339), cur.Sends)}
			cur.Alerts = append(cur.Alerts, a)
			alert = &a
			actions = append(actions, "alert.ack_overdue")
		}
		if cur.Status == flexhub.OrderAccepted && !now.Before(cur.First()) {
			cur.Step(flexhub.OrderExecuting, SchedulerActor, "", "first interval started", now)
			actions = append(actions, "executing")
		}
		if !now.Before(cur.Last()) && !flexhub.OrderTerminal(cur.Status) {
			if cur.Acknowledged() && cur.Status != flexhub.OrderReceived {
				cur.Step(flexhub.OrderCompleted, SchedulerActor, "", "last interval ended", now)
			} else {
				cur.Step(flexhub.OrderEndedEarly, SchedulerActor, "", fmt.Sprintf("last interval ended without the FSP accepting the order (status %s)", cur.Status), now)
			}
			actions = append(actions, cur.Status)
		}
		cur.UpdatedAt = now
		if err := tx.UpdateActivationOrder(ctx, cur); err != nil {
			return err
		}
		for _, a := range actions {
			if a == "delivered" && cur.Sends > 1 {
				continue
			}
			if err := s.recordAs(ctx, tx, SchedulerActor, "activation_order."+a, flexhub.KindActivationOrder, cur.ID, cur.Version, cur, cur.SystemOperatorID, cur.FSPID); err != nil {
				return err
			}
		}
		if alert != nil {
			if err := s.notify(ctx, tx, []string{cur.SystemOperatorID}, flexhub.NotifyActivationAlert, flexhub.KindActivationOrder, cur.ID, "", alert.Text); err != nil {
				return err
			}
			if err := s.emitEvent(ctx, tx, cur.SystemOperatorID, EventActivationAlert, cur.ID+".ack_overdue", alert); err != nil {
				return err
			}
		}
		*o = *cur
		return nil
	})
	if err == nil && alert != nil && s.pub != nil {
		payload, _ := json.Marshal(map[string]any{"order_id": o.ID, "alert": alert})
		if perr := s.pub.Publish(ctx, Topic(o.SystemOperatorID, "monitoring"), payload, 1, false); perr != nil {
			s.log.Warn("publish alert", "order", o.ID, "err", perr)
		}
	}
	return err
}

// MarkOrderDelivered records that a transport other than the sweep's
// MQTT publish (a webhook receiver's 2xx) handed the order on.
func (s *Service) MarkOrderDelivered(ctx context.Context, id, channel string) error {
	return s.store.Update(ctx, func(tx flexhub.Tx) error {
		o, err := tx.ActivationOrder(ctx, id)
		if err != nil {
			return err
		}
		now := s.now()
		ok, err := o.Step(flexhub.OrderDelivered, "flexhub-"+channel, channel, "", now)
		if err != nil || !ok {
			return nil // already further on: nothing to record
		}
		if err := tx.UpdateActivationOrder(ctx, o); err != nil {
			return err
		}
		return s.recordAs(ctx, tx, SchedulerActor, "activation_order.delivered", flexhub.KindActivationOrder, o.ID, o.Version, o, o.SystemOperatorID, o.FSPID)
	})
}
