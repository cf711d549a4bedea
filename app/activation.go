package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// CreateActivationOrder stores a system operator's order for delivery.
func (s *Service) CreateActivationOrder(ctx context.Context, spec flexhub.ActivationOrderSpec, key string) (*Created[flexhub.ActivationOrder], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	c, err := create(ctx, s, by, key, flexhub.KindActivationOrder, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.ActivationOrder, error) { return tx.ActivationOrder(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.ActivationOrder, string, error) {
			o, err := s.createOrderTx(ctx, tx, by, &spec, "", nil)
			if err != nil {
				return nil, "", err
			}
			return o, o.ID, nil
		})
	if err == nil && !c.Replayed {
		s.KickActivation()
	}
	return c, err
}

// MaxOrderBatch is the most orders one batch may hold.
const MaxOrderBatch = 10_000

// OrderBatch is a set of orders created together, all or none.
type OrderBatch struct {
	ID     string                     `json:"id" doc:"the batch id, also on every order (batch_id)"`
	Orders []*flexhub.ActivationOrder `json:"orders"`
}

// CreateActivationOrderBatch stores many orders in one transaction: all
// of them, or — when one is refused — none, with the error naming its
// index (orders[17].setpoints[0]...).
func (s *Service) CreateActivationOrderBatch(ctx context.Context, specs []flexhub.ActivationOrderSpec, key string) (*Created[OrderBatch], error) {
	by, err := actor(ctx, flexhub.RoleTSO, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 || len(specs) > MaxOrderBatch {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.batch", "orders", "a batch holds 1 to %d orders, got %d", MaxOrderBatch, len(specs))
	}
	c, err := create(ctx, s, by, key, "activation_order_batch", snapshot(specs),
		func(tx flexhub.Tx, id string) (*OrderBatch, error) {
			orders, err := listAll(func(pg flexhub.Page) ([]*flexhub.ActivationOrder, string, error) {
				return tx.ListActivationOrders(ctx, flexhub.Filter{"batch_id": id}, pg)
			})
			return &OrderBatch{ID: id, Orders: orders}, err
		},
		func(tx flexhub.Tx) (*OrderBatch, string, error) {
			b := &OrderBatch{ID: flexhub.NewID()}
			bc := &orderBatchTx{products: map[string]*flexhub.Product{}}
			if err := bc.prefetch(ctx, tx, specs); err != nil {
				return nil, "", err
			}
			for i := range specs {
				o, err := s.createOrderTx(ctx, tx, by, &specs[i], b.ID, bc)
				if err != nil {
					var fe *flexhub.Error
					if errors.As(err, &fe) {
						c := *fe
						c.Field = strings.TrimSuffix(fmt.Sprintf("orders[%d].%s", i, fe.Field), ".")
						if fe.Field == "" {
							c.Message = fmt.Sprintf("orders[%d]: %s", i, fe.Message)
						}
						return nil, "", &c
					}
					return nil, "", err
				}
				b.Orders = append(b.Orders, o)
			}
			if err := s.storeOrders(ctx, tx, by, bc); err != nil {
				return nil, "", err
			}
			// The webhook events of the whole batch at once: each party's
			// endpoints are read once, not once per order.
			if err := s.EmitEvents(ctx, tx, bc.events); err != nil {
				return nil, "", err
			}
			return b, b.ID, nil
		})
	if err == nil && !c.Replayed {
		s.KickActivation()
	}
	return c, err
}

// orderBatchTx is what the orders of one batch share inside its
// transaction: the products read so far, the orders checked but not yet
// stored (written together by storeOrders) and the webhook events,
// emitted together at the end.
type orderBatchTx struct {
	products map[string]*flexhub.Product
	pending  []*flexhub.ActivationOrder
	events   []Event
	// The resources and prequalifications the batch's orders without an
	// obligation name, read together up front (prefetch): two reads per
	// order fewer.
	resources map[string]*flexhub.Resource
	prequals  map[[2]string][]*flexhub.Prequalification // resource, product
}

// prefetch reads the resources the specs without an obligation name and
// their prequalifications for the named products, in a few statements.
// What is not found is looked for again, one by one, when its order is
// built (and refused then as before).
func (bc *orderBatchTx) prefetch(ctx context.Context, tx flexhub.Tx, specs []flexhub.ActivationOrderSpec) error {
	var ids []string
	byProduct := map[string][]string{}
	for i := range specs {
		sp := &specs[i]
		if sp.Type == flexhub.OrderEnd || strings.TrimSpace(sp.ObligationID) != "" {
			continue
		}
		r, p := strings.TrimSpace(sp.ResourceID), strings.TrimSpace(sp.ProductID)
		if r == "" || p == "" {
			continue
		}
		ids = append(ids, r)
		byProduct[p] = append(byProduct[p], r)
	}
	if len(ids) == 0 {
		return nil
	}
	var err error
	if bc.resources, err = tx.Resources(ctx, ids); err != nil {
		return err
	}
	bc.prequals = map[[2]string][]*flexhub.Prequalification{}
	for p, rs := range byProduct {
		pqs, err := tx.PrequalificationsFor(ctx, p, rs)
		if err != nil {
			return err
		}
		for _, r := range rs {
			bc.prequals[[2]string{r, p}] = nil // read: none unless listed
		}
		for _, q := range pqs {
			k := [2]string{q.ResourceID, q.ProductID}
			bc.prequals[k] = append(bc.prequals[k], q)
		}
	}
	return nil
}

// resource returns a prefetched resource, or reads it.
func (bc *orderBatchTx) resource(ctx context.Context, tx flexhub.Tx, id string) (*flexhub.Resource, error) {
	if bc != nil {
		if r, ok := bc.resources[id]; ok {
			return r, nil
		}
	}
	return tx.Resource(ctx, id)
}

// prequalifications returns a resource's prequalifications for a
// product, prefetched or read.
func (bc *orderBatchTx) prequalifications(ctx context.Context, tx flexhub.Tx, resourceID, productID string) ([]*flexhub.Prequalification, error) {
	if bc != nil {
		if pqs, ok := bc.prequals[[2]string{resourceID, productID}]; ok {
			return pqs, nil
		}
	}
	return listAll(func(pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
		return tx.ListPrequalifications(ctx, flexhub.Filter{"resource_id": resourceID, "product_id": productID}, pg)
	})
}

// storeOrders stores the batch's pending orders with the set-based store
// methods: the orders with their history, then their audit entries and
// notifications, each in the orders' sequence — the same rows, in the
// same order, as createOrderTx writes for one order after another.
func (s *Service) storeOrders(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, bc *orderBatchTx) error {
	if len(bc.pending) == 0 {
		return nil
	}
	if err := tx.CreateActivationOrders(ctx, bc.pending); err != nil {
		return err
	}
	audit := make([]*flexhub.AuditEntry, len(bc.pending))
	notes := make([]*flexhub.Notification, 0, len(bc.pending))
	for i, o := range bc.pending {
		audit[i] = s.orderAudit(by.ID, "activation_order.created", o, by.ID, o.SystemOperatorID, o.FSPID)
		notes = append(notes, s.orderNotes([]string{o.FSPID}, flexhub.NotifyActivationOrder, o.ID, newOrderText(o))...)
	}
	if err := tx.AppendAudits(ctx, audit); err != nil {
		return err
	}
	if err := tx.CreateNotifications(ctx, notes); err != nil {
		return err
	}
	bc.pending = bc.pending[:0]
	return nil
}

// orderAudit is the audit entry recordAs appends for a step of order o
// (for the set-based AppendAudits).
func (s *Service) orderAudit(actorID, action string, o *flexhub.ActivationOrder, parties ...string) *flexhub.AuditEntry {
	return s.auditEntry(actorID, action, flexhub.KindActivationOrder, o.ID, o.Version, o, parties...)
}

// orderNotes are the notifications notify appends about order id (for
// the set-based CreateNotifications).
func (s *Service) orderNotes(parties []string, typ, id, text string) []*flexhub.Notification {
	return s.notes(parties, typ, flexhub.KindActivationOrder, id, "", text)
}

func newOrderText(o *flexhub.ActivationOrder) string {
	return fmt.Sprintf("%s order %s for resource %s from %s to %s; acknowledge by %s", o.Type, o.ID, o.ResourceID,
		o.First().Format(time.RFC3339), o.Last().Format(time.RFC3339), o.AckDeadline.Format(time.RFC3339))
}

// product reads a product once per batch (nil bc: every time).
func (bc *orderBatchTx) product(ctx context.Context, tx flexhub.Tx, id string) (*flexhub.Product, error) {
	if bc == nil {
		return tx.Product(ctx, id)
	}
	if p, ok := bc.products[id]; ok {
		return p, nil
	}
	p, err := tx.Product(ctx, id)
	if err == nil {
		bc.products[id] = p
	}
	return p, err
}

// createOrderTx validates, stores, audits and announces one order; in a
// batch (bc not nil) its webhook event is left in bc for the batch to
// emit.
func (s *Service) createOrderTx(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, spec *flexhub.ActivationOrderSpec, batch string, bc *orderBatchTx) (*flexhub.ActivationOrder, error) {
	spec.ObligationID, spec.ResourceID, spec.ProductID, spec.EndsOrderID = strings.TrimSpace(spec.ObligationID), strings.TrimSpace(spec.ResourceID), strings.TrimSpace(spec.ProductID), strings.TrimSpace(spec.EndsOrderID)
	if bc != nil && spec.Type == flexhub.OrderEnd {
		// An end order reads and changes the order it ends, which may be
		// one of this batch: what came before it is stored first.
		if err := s.storeOrders(ctx, tx, by, bc); err != nil {
			return nil, err
		}
	}
	o, err := s.buildOrder(ctx, tx, by, spec, bc)
	if err != nil {
		return nil, err
	}
	o.BatchID = batch
	if bc != nil && o.Type != flexhub.OrderEnd {
		// Stored with the rest of the batch (storeOrders).
		bc.pending = append(bc.pending, o)
		bc.events = append(bc.events, Event{PartyID: o.FSPID, Type: flexhub.EventActivationOrder, ID: o.ID + ".created", Payload: o})
		return o, nil
	}
	if err := tx.CreateActivationOrder(ctx, o); err != nil {
		return nil, err
	}
	if err := s.record(ctx, tx, by, "activation_order.created", flexhub.KindActivationOrder, o.ID, o.Version, o, o.SystemOperatorID, o.FSPID); err != nil {
		return nil, err
	}
	if err := s.notify(ctx, tx, []string{o.FSPID}, flexhub.NotifyActivationOrder, flexhub.KindActivationOrder, o.ID, "", newOrderText(o)); err != nil {
		return nil, err
	}
	if bc != nil {
		bc.events = append(bc.events, Event{PartyID: o.FSPID, Type: flexhub.EventActivationOrder, ID: o.ID + ".created", Payload: o})
	} else if err := s.emitEvent(ctx, tx, o.FSPID, flexhub.EventActivationOrder, o.ID+".created", o); err != nil {
		return nil, err
	}
	if o.Type == flexhub.OrderEnd {
		if err := s.endTarget(ctx, tx, by, o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// KickActivation makes the activation loop sweep now instead of at its
// next tick (new orders go out at once).
func (s *Service) KickActivation() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// buildOrder checks the spec against the obligation (or the product and
// resource) and returns the new order.
func (s *Service) buildOrder(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, spec *flexhub.ActivationOrderSpec, bc *orderBatchTx) (*flexhub.ActivationOrder, error) {
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
		p, err := bc.product(ctx, tx, t.ProductID)
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
		product, err = bc.product(ctx, tx, obl.ProductID)
		if err != nil {
			return nil, err
		}
		o.FSPID, o.ResourceID, o.ProductID, o.ObligationID, o.Direction, o.Unit = obl.FSPID, obl.ResourceID, obl.ProductID, obl.ID, obl.Direction, obl.Unit
	default:
		if spec.ProductID == "" || spec.ResourceID == "" || spec.Direction == "" {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.obligation", "obligation_id", "name the obligation to activate; only automatic-activation products and limitation orders take product_id, resource_id and direction instead")
		}
		p, err := bc.product(ctx, tx, spec.ProductID)
		if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
			return nil, err
		}
		if err != nil || p.SystemOperatorID != by.ID {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.product", "product_id", "product %s not found among the products of party %s", spec.ProductID, by.ID)
		}
		product = p
		r, err := bc.resource(ctx, tx, spec.ResourceID)
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
			if err := orderPrequalified(ctx, tx, bc, r, p, spec.Setpoints); err != nil {
				return nil, err
			}
		case flexhub.OrderLimit:
			// A DSO limits a resource in its own grid; anyone else needs
			// the resource prequalified for its product.
			if r.DSOID != by.ID {
				if err := orderPrequalified(ctx, tx, bc, r, p, spec.Setpoints); err != nil {
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
	if spec.Type == flexhub.OrderActivate {
		if err := s.orderTrafficLight(ctx, tx, bc, by, o); err != nil {
			return nil, err
		}
	}
	o.AckDeadline = now.Add(product.AckWithin())
	o.Tracking = []flexhub.OrderEvent{{Status: flexhub.OrderCreated, At: now, By: by.ID, Channel: "rest"}}
	next := now
	o.NextSend = &next
	return o, nil
}

// orderTrafficLight checks an activation order's set-points against the
// DSOs' traffic lights (docs/TRAFFIC_LIGHT.md): a set-point no grid takes
// refuses the order (traffic_light.red), an amber one is capped to what
// is allowed, and the lights are kept on the order.
func (s *Service) orderTrafficLight(ctx context.Context, tx flexhub.Tx, bc *orderBatchTx, by *flexhub.Party, o *flexhub.ActivationOrder) error {
	r, err := bc.resource(ctx, tx, o.ResourceID)
	if err != nil {
		return err
	}
	units := []*flexhub.Resource{r}
	if r.Kind == flexhub.ResourceGroup {
		units = units[:0]
		for _, id := range r.Members {
			u, err := bc.resource(ctx, tx, id)
			if err != nil {
				return err
			}
			units = append(units, u)
		}
	}
	asks := make([]lightAsk, len(o.Setpoints))
	for i, sp := range o.Setpoints {
		asks[i] = lightAsk{start: sp.Start, end: sp.End, requested: sp.Quantity}
	}
	chk, err := s.checkTrafficLight(ctx, tx, by.ID, units, o.Direction, o.Unit, asks, false)
	if err != nil {
		return err
	}
	for i, c := range chk.caps {
		if c <= 0 {
			return redError(fmt.Sprintf("setpoints[%d]", i), fmt.Sprintf("resource %s cannot be activated from %s to %s", r.ID,
				asks[i].start.Format(time.RFC3339), asks[i].end.Format(time.RFC3339)), chk.red)
		}
		o.Setpoints[i].Quantity = c
	}
	o.TrafficLights = chk.lights
	return nil
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
func orderPrequalified(ctx context.Context, tx flexhub.Tx, bc *orderBatchTx, r *flexhub.Resource, p *flexhub.Product, sps []flexhub.SetpointSpec) error {
	pqs, err := bc.prequalifications(ctx, tx, r.ID, p.ID)
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
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.ActivationOrder, error) {
		return visibleOrder(ctx, tx, by, id)
	})
}

// visibleOrder reads an order the caller may see (404 otherwise).
func visibleOrder(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string) (*flexhub.ActivationOrder, error) {
	o, err := tx.ActivationOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if !canSeeOrder(ctx, tx, by, o) {
		return nil, notFound("activation order", id)
	}
	return o, nil
}

// OrderFilter narrows a list of activation orders.
type OrderFilter struct {
	SystemOperatorID, FSPID, ResourceID, ObligationID, BatchID, Status string
}

// ListActivationOrders lists the orders the caller issued or must
// execute (a DSO: also those of resources in its grid, by resource_id).
func (s *Service) ListActivationOrders(ctx context.Context, of OrderFilter, pg flexhub.Page) (*ListResult[flexhub.ActivationOrder], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f, err := buildFilter(idParam{"system_operator_id", of.SystemOperatorID}, idParam{"fsp_id", of.FSPID},
		idParam{"resource_id", of.ResourceID}, idParam{"obligation_id", of.ObligationID}, idParam{"batch_id", of.BatchID})
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
	if err := checkReport(rep); err != nil {
		return nil, err
	}
	var out *flexhub.ActivationOrder
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		var err error
		out, err = s.reportTx(ctx, tx, by, id, rep, channel, nil)
		return err
	})
	return out, err
}

// OrderReport is one FSP report in a batch (ReportActivationOrders).
type OrderReport struct {
	By      *flexhub.Party
	Report  flexhub.ActivationOrderReport
	Channel string
	Err     error // set by ReportActivationOrders: why this report was refused
}

// ReportActivationOrders records many reports in one transaction (the
// MQTT acknowledgements of a fan-out arrive by the thousand). A refused
// report (unknown order, a step out of a final status, a missing reason)
// gets its Err and changes nothing; the others are stored together. The
// returned error is for the batch as a whole (the store failed), in
// which case nothing was stored.
//
// Each report is applied as reportTx applies one — checked, stepped, a
// new version with its history row, audit entry, notification and
// webhook event — but the orders are read with one ActivationOrders and
// the rows written with the set-based store methods; two reports on one
// order (received, then accepted) are two successive versions.
func (s *Service) ReportActivationOrders(ctx context.Context, reps []OrderReport) error {
	return s.store.Update(ctx, func(tx flexhub.Tx) error {
		ids := make([]string, 0, len(reps))
		for i := range reps {
			r := &reps[i]
			r.Err = nil
			if r.By == nil || !r.By.HasRole(flexhub.RoleFSP) {
				r.Err = flexhub.Errorf(flexhub.EForbidden, "only an FSP reports on activation orders")
				continue
			}
			if err := checkReport(r.Report); err != nil {
				r.Err = err
				continue
			}
			if r.Report.OrderID == "" {
				r.Err = flexhub.RuleErrorf(flexhub.EInvalid, "order.report", "order_id", "name the order the report is about")
				continue
			}
			ids = append(ids, r.Report.OrderID)
		}
		if len(ids) == 0 {
			return nil
		}
		orders, err := tx.ActivationOrders(ctx, ids)
		if err != nil {
			return err
		}
		// Step the orders in memory, report by report; every step that
		// changes an order is a snapshot to store.
		type applied struct {
			by   *flexhub.Party
			snap *flexhub.ActivationOrder
		}
		var done []applied
		stepsOf := map[string][]*flexhub.ActivationOrder{}
		var order []string // ids in the order of their first step
		for i := range reps {
			r := &reps[i]
			if r.Err != nil {
				continue
			}
			o := orders[r.Report.OrderID]
			if o == nil || o.FSPID != r.By.ID {
				r.Err = notFound("activation order", r.Report.OrderID)
				continue
			}
			changed, err := o.Step(r.Report.Status, r.By.ID, r.Channel, strings.TrimSpace(r.Report.Reason), s.now())
			if err != nil {
				r.Err = err
				continue
			}
			if !changed {
				continue
			}
			snap := snapshotOrder(o)
			o.Version++ // what the store makes it: the next step builds on that
			if _, ok := stepsOf[o.ID]; !ok {
				order = append(order, o.ID)
			}
			stepsOf[o.ID] = append(stepsOf[o.ID], snap)
			done = append(done, applied{r.By, snap})
		}
		if len(done) == 0 {
			return nil
		}
		steps := make([]*flexhub.ActivationOrder, 0, len(done))
		for _, id := range order {
			steps = append(steps, stepsOf[id]...)
		}
		if err := tx.UpdateActivationOrders(ctx, steps); err != nil {
			return err
		}
		audit := make([]*flexhub.AuditEntry, len(done))
		notes := make([]*flexhub.Notification, 0, len(done))
		events := make([]Event, len(done))
		for i, a := range done {
			o := a.snap
			audit[i] = s.orderAudit(a.by.ID, "activation_order."+o.Status, o, a.by.ID, o.SystemOperatorID, o.FSPID)
			notes = append(notes, s.orderNotes([]string{o.SystemOperatorID}, flexhub.NotifyActivationStatus, o.ID, reportText(o, a.by))...)
			events[i] = Event{PartyID: o.SystemOperatorID, Type: flexhub.EventActivationStatus, ID: fmt.Sprintf("%s.%d", o.ID, o.Version), Payload: o}
		}
		if err := tx.AppendAudits(ctx, audit); err != nil {
			return err
		}
		if err := tx.CreateNotifications(ctx, notes); err != nil {
			return err
		}
		// The webhook events of the batch together (each party's
		// endpoints read once).
		return s.EmitEvents(ctx, tx, events)
	})
}

// snapshotOrder copies an order as it is after a step, so that later
// steps of the same order in the batch leave it alone.
func snapshotOrder(o *flexhub.ActivationOrder) *flexhub.ActivationOrder {
	c := *o
	c.Setpoints = slices.Clone(o.Setpoints)
	c.Tracking = slices.Clone(o.Tracking)
	c.Alerts = slices.Clone(o.Alerts)
	return &c
}

func reportText(o *flexhub.ActivationOrder, by *flexhub.Party) string {
	text := fmt.Sprintf("order %s: %s by %s", o.ID, o.Status, by.ID)
	if r := o.Tracking[len(o.Tracking)-1].Reason; r != "" {
		text += " (" + r + ")"
	}
	return text
}

func checkReport(rep flexhub.ActivationOrderReport) error {
	switch rep.Status {
	case flexhub.OrderReceived, flexhub.OrderAccepted, flexhub.OrderRejected, flexhub.OrderExecuting, flexhub.OrderCompleted, flexhub.OrderEndedEarly:
	default:
		return flexhub.RuleErrorf(flexhub.EInvalid, "order.report", "status", "an FSP reports received, accepted, rejected, executing, completed or ended_early, not %q", rep.Status)
	}
	if (rep.Status == flexhub.OrderEndedEarly || rep.Status == flexhub.OrderRejected) && strings.TrimSpace(rep.Reason) == "" {
		return flexhub.RuleErrorf(flexhub.EInvalid, "order.reason", "reason", "say why the order was %s", rep.Status)
	}
	return nil
}

// reportTx applies one report inside tx. Domain refusals are returned
// before anything is written, so the transaction stays usable. With
// events not nil, the webhook event is appended there for the caller to
// emit (a batch of reports); else it is emitted at once.
func (s *Service) reportTx(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, id string, rep flexhub.ActivationOrderReport, channel string, events *[]Event) (*flexhub.ActivationOrder, error) {
	if id == "" {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "order.report", "order_id", "name the order the report is about")
	}
	o, err := tx.ActivationOrder(ctx, id)
	if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
		return nil, err
	}
	if err != nil || o.FSPID != by.ID {
		return nil, notFound("activation order", id)
	}
	changed, err := o.Step(rep.Status, by.ID, channel, strings.TrimSpace(rep.Reason), s.now())
	if err != nil || !changed {
		return o, err
	}
	if err := tx.UpdateActivationOrder(ctx, o); err != nil {
		return nil, err
	}
	if err := s.record(ctx, tx, by, "activation_order."+o.Status, flexhub.KindActivationOrder, o.ID, o.Version, o, o.SystemOperatorID, o.FSPID); err != nil {
		return nil, err
	}
	if err := s.notify(ctx, tx, []string{o.SystemOperatorID}, flexhub.NotifyActivationStatus, flexhub.KindActivationOrder, o.ID, "", reportText(o, by)); err != nil {
		return nil, err
	}
	ev := Event{PartyID: o.SystemOperatorID, Type: flexhub.EventActivationStatus, ID: fmt.Sprintf("%s.%d", o.ID, o.Version), Payload: o}
	if events != nil {
		*events = append(*events, ev)
		return o, nil
	}
	if err := s.EmitEvents(ctx, tx, []Event{ev}); err != nil {
		return nil, err
	}
	return o, nil
}

// SweepActivationOrders does the orders' timed work (the serve loop calls
// it every tick and whenever orders are created): sends unacknowledged
// orders (again) over MQTT, raises the ack-overdue alert at the deadline,
// starts execution of accepted orders at their first interval and closes
// orders after their last. The sends go out first, concurrently and
// outside any transaction; then the steps are recorded in transactions of
// up to 500 orders, each order with a versioned update, so two instances
// never both record a step and an order that moved on meanwhile (an
// acknowledgement came in) is left for the next sweep. A crash between a
// send and its record sends the order again with the same id, which
// receivers deduplicate.
func (s *Service) SweepActivationOrders(ctx context.Context) (int, error) {
	total := 0
	for {
		n, full, err := s.sweepPage(ctx)
		total += n
		// A full page that changed something: more are due (a batch of
		// 10,000 orders is five pages), so go on at once rather than at
		// the next tick.
		if err != nil || !full || n == 0 || ctx.Err() != nil {
			return total, err
		}
	}
}

// sweepPageSize is how many due orders one sweep page handles: a whole
// batch, so that all its orders are sent before the first step is
// recorded (recording 10,000 steps takes seconds; the sends of the next
// page would wait for them).
const sweepPageSize = MaxOrderBatch

// sweepPage handles one page of due orders; full says the page was full.
func (s *Service) sweepPage(ctx context.Context) (int, bool, error) {
	now := s.now()
	var due []*flexhub.ActivationOrder
	if err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		due, err = tx.DueActivationOrders(ctx, now, sweepPageSize)
		return err
	}); err != nil {
		return 0, false, err
	}
	if len(due) == 0 {
		return 0, false, nil
	}
	sent := s.sendOrders(ctx, due, now)
	n := 0
	var firstErr error
	for start := 0; start < len(due); start += 500 {
		chunk := due[start:min(start+500, len(due))]
		var alerts []orderAlert
		done := 0
		err := s.store.Update(ctx, func(tx flexhub.Tx) error {
			var err error
			alerts, done, err = s.sweepOrdersTx(ctx, tx, chunk, sent, now)
			return err
		})
		if err != nil {
			s.log.Warn("activation order sweep", "orders", len(chunk), "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		n += done
		s.publishAlerts(ctx, alerts)
	}
	return n, len(due) == sweepPageSize, firstErr
}

type orderAlert struct {
	to      string
	orderID string
	alert   flexhub.OrderAlert
}

// sendOrders publishes the due orders that are to be sent, with a few
// publishes in flight at once (an external broker answers each QoS 1
// publish after a round trip). It returns the ids the broker took.
func (s *Service) sendOrders(ctx context.Context, due []*flexhub.ActivationOrder, now time.Time) map[string]bool {
	sent := map[string]bool{}
	if s.pub == nil {
		return sent
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, o := range due {
		if o.Acknowledged() || o.NextSend == nil || o.NextSend.After(now) {
			continue
		}
		payload, err := json.Marshal(o)
		if err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(o *flexhub.ActivationOrder) {
			defer func() { <-sem; wg.Done() }()
			if err := s.pub.Publish(ctx, Topic(o.FSPID, "activations"), payload, 1, false); err != nil {
				s.log.Warn("publish activation order", "order", o.ID, "err", err)
				return
			}
			mu.Lock()
			sent[o.ID] = true
			mu.Unlock()
		}(o)
	}
	wg.Wait()
	return sent
}

// sweepOrdersTx records the due steps of a chunk of orders read before
// the sends: each order read again (ActivationOrders, under the audit
// lock), left for the next sweep if it moved on meanwhile (an
// acknowledgement came in), else stepped and written as a new version
// with the set-based store methods, its audit entries, and for an alert
// its notification and webhook event. done counts the orders recorded.
func (s *Service) sweepOrdersTx(ctx context.Context, tx flexhub.Tx, chunk []*flexhub.ActivationOrder, sent map[string]bool, now time.Time) ([]orderAlert, int, error) {
	ids := make([]string, len(chunk))
	for i, o := range chunk {
		ids[i] = o.ID
	}
	curs, err := tx.ActivationOrders(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	type swept struct {
		cur     *flexhub.ActivationOrder
		actions []string
		alert   *orderAlert
	}
	todo := make([]swept, 0, len(chunk))
	steps := make([]*flexhub.ActivationOrder, 0, len(chunk))
	for _, o := range chunk {
		cur := curs[o.ID]
		if cur == nil {
			return nil, 0, flexhub.Errorf(flexhub.ENotFound, "activation order %s not found", o.ID)
		}
		if cur.Version != o.Version {
			continue
		}
		actions, alert := s.sweepStep(cur, sent[o.ID], now)
		todo = append(todo, swept{cur, actions, alert})
		steps = append(steps, cur)
	}
	if err := tx.UpdateActivationOrders(ctx, steps); err != nil {
		return nil, 0, err
	}
	var audit []*flexhub.AuditEntry
	var notes []*flexhub.Notification
	var events []Event
	var alerts []orderAlert
	for _, w := range todo {
		cur := w.cur
		for _, a := range w.actions {
			audit = append(audit, s.orderAudit(SchedulerActor, "activation_order."+a, cur, cur.SystemOperatorID, cur.FSPID))
		}
		if w.alert != nil {
			alerts = append(alerts, *w.alert)
			notes = append(notes, s.orderNotes([]string{cur.SystemOperatorID}, flexhub.NotifyActivationAlert, cur.ID, w.alert.alert.Text)...)
			events = append(events, Event{PartyID: cur.SystemOperatorID, Type: flexhub.EventActivationAlert, ID: cur.ID + ".ack_overdue", Payload: w.alert.alert})
		}
	}
	if err := tx.AppendAudits(ctx, audit); err != nil {
		return nil, 0, err
	}
	if err := tx.CreateNotifications(ctx, notes); err != nil {
		return nil, 0, err
	}
	if err := s.EmitEvents(ctx, tx, events); err != nil {
		return nil, 0, err
	}
	return alerts, len(todo), nil
}

// sweepStep applies an order's due steps to cur (read just now): the
// send's delivered, the next send, the ack-overdue alert, the start of
// execution, completion; it returns the audited actions and the alert.
func (s *Service) sweepStep(cur *flexhub.ActivationOrder, sent bool, now time.Time) ([]string, *orderAlert) {
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
	var alert *orderAlert
	if !cur.Acknowledged() && !now.Before(cur.AckDeadline) && !cur.HasAlert("ack_overdue", time.Time{}) {
		a := flexhub.OrderAlert{Kind: "ack_overdue", At: now, Text: fmt.Sprintf("FSP %s has not acknowledged order %s by its deadline %s (sent %d times)",
			cur.FSPID, cur.ID, cur.AckDeadline.Format(time.RFC3339), cur.Sends)}
		cur.Alerts = append(cur.Alerts, a)
		alert = &orderAlert{to: cur.SystemOperatorID, orderID: cur.ID, alert: a}
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
	return actions, alert
}

// publishAlerts tells the parties' MQTT monitoring topics (after the
// alerts are stored: the feed and the order are the record, MQTT is the
// fast path).
func (s *Service) publishAlerts(ctx context.Context, alerts []orderAlert) {
	if s.pub == nil {
		return
	}
	for _, a := range alerts {
		payload, _ := json.Marshal(map[string]any{"order_id": a.orderID, "alert": a.alert})
		if err := s.pub.Publish(ctx, Topic(a.to, "monitoring"), payload, 1, false); err != nil {
			s.log.Warn("publish alert", "order", a.orderID, "err", err)
		}
	}
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
