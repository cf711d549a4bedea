package flexhub

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Activation orders: what a system operator tells an FSP to do with a
// resource after the market cleared (or directly, for automatic-activation
// products). An order is delivered over MQTT and webhooks, readable over
// REST, and its life is tracked step by step:
//
//	created → delivered → received → accepted → executing → completed
//	                               ↘ rejected          ↘ ended_early
//
// "delivered" means a transport handed it on (the MQTT broker took it at
// QoS 1, or a webhook receiver answered 2xx); "received" and the later
// steps are the FSP's own reports (MQTT acks topic or REST). Steps may be
// skipped forward (an FSP that polls REST acknowledges an order that no
// transport delivered) but never go back; a repeated report changes
// nothing. Every step is timestamped in Tracking and audited.

// KindActivationOrder is the object kind of activation orders.
const KindActivationOrder = "activation_order"

// Activation order types.
const (
	// OrderActivate asks for a set-point per interval (start/stop is one
	// interval from start to stop).
	OrderActivate = "activate"
	// OrderLimit caps the resource at the quantity per interval (a
	// limitation order, e.g. a DSO protecting its grid).
	OrderLimit = "limit"
	// OrderEnd ends an earlier order at its first interval's start.
	OrderEnd = "end"
)

// Activation order statuses.
const (
	OrderCreated    = "created"
	OrderDelivered  = "delivered"
	OrderReceived   = "received"
	OrderAccepted   = "accepted"
	OrderRejected   = "rejected"
	OrderExecuting  = "executing"
	OrderCompleted  = "completed"
	OrderEndedEarly = "ended_early"
)

// orderRank orders the statuses along the life of an order; terminal
// statuses rank highest.
var orderRank = map[string]int{
	OrderCreated: 0, OrderDelivered: 1, OrderReceived: 2, OrderAccepted: 3,
	OrderExecuting: 4, OrderRejected: 9, OrderCompleted: 9, OrderEndedEarly: 9,
}

// OrderTerminal reports whether an order in status s can change no more.
func OrderTerminal(s string) bool { return orderRank[s] == 9 }

// DefaultAckDeadline is how long an FSP has to acknowledge an order when
// its product sets no ack_deadline.
const DefaultAckDeadline = time.Minute

// OrderResend is how often an order nobody acknowledged is sent again
// (same order id, so receivers deduplicate) until its last interval ends.
const OrderResend = 15 * time.Second

// ActivationOrderSpec is what a system operator sends.
type ActivationOrderSpec struct {
	Type         string `json:"type" enum:"activate,limit,end" doc:"activate: set-points; limit: caps; end: ends the order named in ends_order_id"`
	ObligationID string `json:"obligation_id,omitempty" doc:"the awarded obligation this order activates; required unless the product activates automatically"`
	ResourceID   string `json:"resource_id,omitempty" doc:"for orders without an obligation (automatic-activation products); taken from the obligation otherwise"`
	ProductID    string `json:"product_id,omitempty" doc:"for orders without an obligation; taken from the obligation otherwise"`
	Direction    string `json:"direction,omitempty" enum:"up,down" doc:"for orders without an obligation; taken from the obligation otherwise"`
	EndsOrderID  string `json:"ends_order_id,omitempty" doc:"type end: the order to end"`
	// Setpoints are per interval; an end order has one, whose start is
	// when the ended order stops.
	Setpoints []SetpointSpec `json:"setpoints" minItems:"1" maxItems:"2976" doc:"per interval: start, end and the quantity (activate: set-point; limit: cap)"`
	Reason    string         `json:"reason,omitempty" maxLength:"4000"`
}

// SetpointSpec is one interval of an order on the wire.
type SetpointSpec struct {
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Quantity *Power         `json:"quantity,omitempty" doc:"active power (W, kW, MW); for reactive products use quantity_reactive"`
	Reactive *ReactivePower `json:"quantity_reactive,omitempty" doc:"reactive power (var, kvar, Mvar)"`
}

// Setpoint is one interval of an order, in the order's unit (W or var).
type Setpoint struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Quantity int64     `json:"quantity" doc:"in the order's unit"`
}

// OrderEvent is one step of an order's life.
type OrderEvent struct {
	Status  string    `json:"status"`
	At      time.Time `json:"at"`
	By      string    `json:"by" doc:"party id, or flexhub-scheduler / flexhub-mqtt / flexhub-webhook"`
	Channel string    `json:"channel,omitempty" enum:"mqtt,webhook,rest," doc:"how the step arrived or left"`
	Reason  string    `json:"reason,omitempty"`
}

// OrderAlert is an alarm raised on an order: an acknowledgement that did
// not arrive in time, or a delivery outside the product's tolerance.
type OrderAlert struct {
	Kind     string    `json:"kind" enum:"ack_overdue,under_delivery,over_delivery"`
	At       time.Time `json:"at"`
	Interval time.Time `json:"interval,omitzero" doc:"for delivery alerts: the interval concerned"`
	Ordered  int64     `json:"ordered,omitempty"`
	Measured int64     `json:"measured,omitempty"`
	Text     string    `json:"text"`
}

// ActivationOrder is an order with its tracking.
type ActivationOrder struct {
	ID               string       `json:"id" readOnly:"true"`
	Type             string       `json:"type" enum:"activate,limit,end" readOnly:"true"`
	SystemOperatorID string       `json:"system_operator_id" readOnly:"true"`
	FSPID            string       `json:"fsp_id" readOnly:"true"`
	ResourceID       string       `json:"resource_id" readOnly:"true"`
	ProductID        string       `json:"product_id" readOnly:"true"`
	ObligationID     string       `json:"obligation_id,omitempty" readOnly:"true"`
	EndsOrderID      string       `json:"ends_order_id,omitempty" readOnly:"true"`
	EndedByOrderID   string       `json:"ended_by_order_id,omitempty" readOnly:"true"`
	BatchID          string       `json:"batch_id,omitempty" readOnly:"true" doc:"the order batch this order was created in"`
	Direction        string       `json:"direction" enum:"up,down" readOnly:"true"`
	Unit             string       `json:"unit" enum:"W,var" readOnly:"true"`
	Setpoints        []Setpoint   `json:"setpoints" readOnly:"true"`
	Reason           string       `json:"reason,omitempty" readOnly:"true"`
	Status           string       `json:"status" enum:"created,delivered,received,accepted,rejected,executing,completed,ended_early" readOnly:"true"`
	AckDeadline      time.Time    `json:"ack_deadline" readOnly:"true" doc:"the FSP must acknowledge (received) by then, or the system operator is alerted"`
	Sends            int          `json:"sends" readOnly:"true" doc:"how many times a transport handed the order on (re-sends carry the same id)"`
	LastSent         *time.Time   `json:"last_sent,omitempty" readOnly:"true"`
	NextSend         *time.Time   `json:"next_send,omitempty" readOnly:"true" doc:"when flexhub sends the order again over MQTT unless acknowledged"`
	Tracking         []OrderEvent `json:"tracking" readOnly:"true"`
	Alerts           []OrderAlert `json:"alerts,omitempty" readOnly:"true"`
	// TrafficLights are the DSOs' verdicts on the order's set-points for
	// units in another party's grid; an amber light has capped the
	// set-point it concerns (docs/TRAFFIC_LIGHT.md).
	TrafficLights []TrafficLight `json:"traffic_lights,omitempty" readOnly:"true" doc:"the DSOs' traffic lights on the set-points: amber capped a set-point to allowed, red refuses the order"`
	Version       int64          `json:"version" readOnly:"true"`
	CreatedAt     time.Time      `json:"created_at" readOnly:"true"`
	UpdatedAt     time.Time      `json:"updated_at" readOnly:"true"`
}

// First and Last return the start of the first and the end of the last
// set-point.
func (o *ActivationOrder) First() time.Time { return o.Setpoints[0].Start }
func (o *ActivationOrder) Last() time.Time  { return o.Setpoints[len(o.Setpoints)-1].End }

// Step records status st (by, channel, reason) at t if it moves the order
// forward. It returns false, changing nothing, for a repeated or backward
// step. A step out of a terminal status is an error.
func (o *ActivationOrder) Step(st, by, channel, reason string, t time.Time) (bool, error) {
	r, ok := orderRank[st]
	if !ok {
		return false, FieldErrorf("status", "%q is not an order status", st)
	}
	if st == o.Status {
		return false, nil
	}
	cur := orderRank[o.Status]
	if cur == 9 {
		return false, Errorf(EConflict, "order %s is already %s", o.ID, o.Status).WithRule("order.terminal")
	}
	if r < cur {
		return false, nil // an old report arriving late: already past it
	}
	switch st {
	case OrderRejected:
		if cur >= orderRank[OrderAccepted] {
			return false, Errorf(EConflict, "order %s was already accepted; end it instead of rejecting", o.ID).WithRule("order.transition")
		}
		if reason == "" {
			return false, FieldErrorf("reason", "a rejection needs a reason").WithRule("order.reason")
		}
	case OrderEndedEarly:
		if cur < orderRank[OrderAccepted] && by != o.SystemOperatorID && by != "flexhub-scheduler" {
			return false, Errorf(EConflict, "order %s was not accepted yet; reject it instead", o.ID).WithRule("order.transition")
		}
	}
	o.Status = st
	o.Tracking = append(o.Tracking, OrderEvent{Status: st, At: t.UTC(), By: by, Channel: channel, Reason: reason})
	o.UpdatedAt = t.UTC()
	return true, nil
}

// Acknowledged reports whether the FSP has answered the order.
func (o *ActivationOrder) Acknowledged() bool { return orderRank[o.Status] >= orderRank[OrderReceived] }

// HasAlert reports whether an alert of kind k was raised (for interval
// iv, zero for order-wide alerts).
func (o *ActivationOrder) HasAlert(k string, iv time.Time) bool {
	for _, a := range o.Alerts {
		if a.Kind == k && a.Interval.Equal(iv) {
			return true
		}
	}
	return false
}

// DueAt is when the scheduler must next look at the order, or nil when
// never again: a re-send of an unacknowledged order, its ack deadline
// alert, the start of execution, or completion after the last interval.
func (o *ActivationOrder) DueAt() *time.Time {
	if OrderTerminal(o.Status) {
		return nil
	}
	var due time.Time
	consider := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	if !o.Acknowledged() {
		if o.NextSend != nil {
			consider(*o.NextSend)
		}
		if !o.HasAlert("ack_overdue", time.Time{}) {
			consider(o.AckDeadline)
		}
	}
	if o.Status == OrderAccepted {
		consider(o.First())
	}
	consider(o.Last())
	return &due
}

// Validate checks the spec's shape: type, set-points aligned, ordered and
// non-overlapping. Quantities are checked against the obligation or the
// resource by the service.
func (s *ActivationOrderSpec) Validate(resolution time.Duration) error {
	if err := oneOf("type", s.Type, []string{OrderActivate, OrderLimit, OrderEnd}); err != nil {
		return err
	}
	if s.Type == OrderEnd {
		if s.EndsOrderID == "" {
			return FieldErrorf("ends_order_id", "an end order names the order it ends").WithRule("order.ends")
		}
		if len(s.Setpoints) != 1 {
			return FieldErrorf("setpoints", "an end order has exactly one set-point: its start is when the ended order stops").WithRule("order.ends")
		}
	} else if s.EndsOrderID != "" {
		return FieldErrorf("ends_order_id", "only an end order names an order to end").WithRule("order.ends")
	}
	if len(s.Setpoints) == 0 {
		return FieldErrorf("setpoints", "an order needs at least one set-point")
	}
	for i, sp := range s.Setpoints {
		f := fmt.Sprintf("setpoints[%d]", i)
		if !sp.End.After(sp.Start) {
			return FieldErrorf(f+".end", "end %s is not after start %s", sp.End.UTC().Format(time.RFC3339), sp.Start.UTC().Format(time.RFC3339)).WithRule("order.interval")
		}
		if resolution > 0 && s.Type != OrderEnd && (sp.Start.UnixNano()%int64(resolution) != 0 || sp.End.UnixNano()%int64(resolution) != 0) {
			return FieldErrorf(f, "set-points must be aligned to the product's %s intervals", resolution).WithRule("order.aligned")
		}
		if i > 0 && sp.Start.Before(s.Setpoints[i-1].End) {
			return FieldErrorf(f+".start", "set-points must be in time order and must not overlap").WithRule("order.interval")
		}
		if (sp.Quantity == nil) == (sp.Reactive == nil) && s.Type != OrderEnd {
			return FieldErrorf(f, "give exactly one of quantity and quantity_reactive").WithRule("order.quantity")
		}
	}
	return nil
}

// ActivationOrderReport is an FSP's report on an order (over MQTT on its
// acks topic, or REST).
type ActivationOrderReport struct {
	OrderID string `json:"order_id,omitempty" doc:"over MQTT: which order; over REST it is in the path"`
	Status  string `json:"status" enum:"received,accepted,rejected,executing,completed,ended_early"`
	Reason  string `json:"reason,omitempty" maxLength:"4000" doc:"required for rejected and ended_early"`
}

// ActivationTx is the part of Tx that stores activation orders.
type ActivationTx interface {
	CreateActivationOrder(ctx context.Context, o *ActivationOrder) error
	UpdateActivationOrder(ctx context.Context, o *ActivationOrder) error
	ActivationOrder(ctx context.Context, id string) (*ActivationOrder, error)
	// ListActivationOrders filters on "system_operator_id", "fsp_id",
	// "resource_id", "obligation_id", "product_id", "batch_id", "status",
	// and on time: "ends_after" (the last set-point ends after) and
	// "starts_before" (the first set-point starts before), each
	// OrderTimeKey of a time.
	ListActivationOrders(ctx context.Context, f Filter, pg Page) ([]*ActivationOrder, string, error)
	// ResourceActivationOrders lists every order of the given resources
	// (all types and statuses) with set-points reaching into [from, to),
	// by id.
	ResourceActivationOrders(ctx context.Context, resourceIDs []string, from, to time.Time) ([]*ActivationOrder, error)
	// DueActivationOrders lists, earliest first, at most limit orders
	// whose DueAt has passed at now.
	DueActivationOrders(ctx context.Context, now time.Time, limit int) ([]*ActivationOrder, error)

	// Batches (an order batch of 10,000, a sweep, a batch of MQTT
	// acknowledgements): the same rows as the one-order methods, written
	// with a few set-based statements instead of a dozen per order.

	// CreateActivationOrders is CreateActivationOrder for many orders:
	// each with its first history row; all of them, or an error and none
	// (EConflict for an id already taken).
	CreateActivationOrders(ctx context.Context, orders []*ActivationOrder) error
	// ActivationOrders reads the orders with the given ids, as
	// ActivationOrder does each (in a write transaction under the same
	// lock); ids not found are absent from the map.
	ActivationOrders(ctx context.Context, ids []string) (map[string]*ActivationOrder, error)
	// UpdateActivationOrders is UpdateActivationOrder for many steps. An
	// order may appear more than once, its entries in succession, one
	// per step: the first carries the version read, each next one the
	// version after the previous step (one more). Every entry becomes a
	// version of its own with its history row; the order's row ends at
	// the last. On success each entry's Version is its new version. If
	// the stored version of any order is not the one its first entry
	// carries, nothing is written and the error is EConflict (ENotFound
	// for a missing order), naming the order, as UpdateActivationOrder's.
	UpdateActivationOrders(ctx context.Context, steps []*ActivationOrder) error
}

// OrderTimeKey renders a time as ListActivationOrders' time filters take
// it: Unix microseconds.
func OrderTimeKey(t time.Time) string { return strconv.FormatInt(t.UTC().UnixMicro(), 10) }
