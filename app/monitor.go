package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Live delivery monitoring: after meter data for a resource arrives (over
// MQTT or REST), and every monitorSweep for every running order whatever
// arrived (data stored before the order existed, an interval whose
// window has passed), the resource's running orders are compared with its measured net power (flexhub.EvaluateDelivery);
// an interval found under- or over-delivering raises one alert per
// (order, interval, kind): in the order's alerts and the audit chain, as
// notifications and webhook events to the system operator and the FSP,
// and on both parties' MQTT monitoring topics.

// deliverySamples reads a resource's net active power (export − import)
// over [from, to) from its finest active-power series. A reading of one
// flow without the other at the same start counts the other as zero (a
// meter reports the direction that flows).
func deliverySamples(ctx context.Context, tx flexhub.Tx, resourceID string, from, to time.Time) ([]flexhub.PowerSample, error) {
	series, err := tx.ListMeterSeries(ctx, flexhub.MeterSubjectResource, resourceID)
	if err != nil {
		return nil, err
	}
	var res time.Duration
	for _, s := range series {
		if s.Quantity == flexhub.QuantityActivePower && (res == 0 || s.Resolution < res) {
			res = s.Resolution
		}
	}
	if res == 0 {
		return nil, nil
	}
	net := map[int64]int64{} // start (unix ns) → milli-W
	var starts []int64
	for _, flow := range []string{flexhub.FlowImport, flexhub.FlowExport} {
		key := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: resourceID, Quantity: flexhub.QuantityActivePower, Flow: flow, Resolution: res}
		recs, err := tx.MeterReadings(ctx, key, from.Truncate(res), to)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			k := r.Start.UnixNano()
			if _, ok := net[k]; !ok {
				starts = append(starts, k)
			}
			if flow == flexhub.FlowExport {
				net[k] += r.Value
			} else {
				net[k] -= r.Value
			}
		}
	}
	out := make([]flexhub.PowerSample, 0, len(starts))
	for _, k := range starts {
		out = append(out, flexhub.PowerSample{Start: time.Unix(0, k).UTC(), Dur: res, Net: net[k] / 1000})
	}
	return out, nil
}

// DeliveryStatus is an order's delivery so far, computed on request.
type DeliveryStatus struct {
	OrderID      string                  `json:"order_id"`
	Baseline     *int64                  `json:"baseline,omitempty" doc:"W: the resource's average net power (export − import) in the quarter hour before the order took effect; absent without measurements"`
	BaselineFrom time.Time               `json:"baseline_from"`
	BaselineTo   time.Time               `json:"baseline_to"`
	TolerancePct int                     `json:"tolerance_pct"`
	Intervals    []flexhub.DeliveryCheck `json:"intervals" nullable:"false"`
}

// evaluate computes an order's delivery at now from the store.
func (s *Service) evaluate(ctx context.Context, tx flexhub.Tx, o *flexhub.ActivationOrder, now time.Time) (*DeliveryStatus, error) {
	p, err := tx.Product(ctx, o.ProductID)
	if err != nil {
		return nil, err
	}
	at := o.BaselineAt()
	st := &DeliveryStatus{OrderID: o.ID, BaselineFrom: at.Add(-flexhub.BaselineWindow), BaselineTo: at, TolerancePct: p.TolerancePct(), Intervals: []flexhub.DeliveryCheck{}}
	samples, err := deliverySamples(ctx, tx, o.ResourceID, st.BaselineFrom, minT(now, o.Last()))
	if err != nil {
		return nil, err
	}
	base, ok := flexhub.Baseline(samples, at)
	if ok {
		st.Baseline = &base
	}
	if !ok && o.Type != flexhub.OrderLimit {
		return st, nil // no baseline: nothing to compare with
	}
	fat, _ := p.FullActivationTime.Parse("")
	st.Intervals = flexhub.EvaluateDelivery(o, base, samples, fat, st.TolerancePct, now)
	return st, nil
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// GetDelivery returns an order's delivery so far (same visibility as the
// order).
// The measured delivery is the unit's meter data: a read of consumer
// data, checked and logged as meter reads are (docs/CONSENT.md).
func (s *Service) GetDelivery(ctx context.Context, id string) (*DeliveryStatus, error) {
	var acc *flexhub.DataAccess
	out, err := readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*DeliveryStatus, error) {
		o, err := visibleOrder(ctx, tx, by, id)
		if err != nil {
			return nil, err
		}
		key := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: o.ResourceID}
		if acc, err = s.meterAccess(ctx, tx, by, key, flexhub.ScopeMeterHistory, "the measured delivery of order "+o.ID); err != nil {
			return nil, err
		}
		return s.evaluate(ctx, tx, o, s.now())
	})
	if err := s.afterRead(ctx, acc, err); err != nil {
		return nil, err
	}
	return out, nil
}

// MonitorResources checks the running orders of the given resources and
// raises the delivery alerts that are due; it returns how many it raised.
func (s *Service) MonitorResources(ctx context.Context, resourceIDs []string) (int, error) {
	now := s.now()
	var orders []*flexhub.ActivationOrder
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		for _, r := range dedupe(resourceIDs) {
			for _, st := range []string{flexhub.OrderAccepted, flexhub.OrderExecuting} {
				os, _, err := tx.ListActivationOrders(ctx, flexhub.Filter{"resource_id": r, "status": st}, flexhub.Page{Limit: flexhub.MaxPageLimit})
				if err != nil {
					return err
				}
				for _, o := range os {
					if o.Type != flexhub.OrderEnd && now.After(o.First()) {
						orders = append(orders, o)
					}
				}
			}
		}
		return nil
	})
	if err != nil || len(orders) == 0 {
		return 0, err
	}
	var alerts []orderAlert
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		alerts = alerts[:0]
		for _, o := range orders {
			cur, err := tx.ActivationOrder(ctx, o.ID)
			if err != nil {
				return err
			}
			st, err := s.evaluate(ctx, tx, cur, now)
			if err != nil {
				return err
			}
			var raised []flexhub.OrderAlert
			for _, c := range st.Intervals {
				text := flexhub.DeliveryAlert(cur, c, st.TolerancePct)
				if text == "" || cur.HasAlert(c.Verdict, c.Interval) {
					continue
				}
				a := flexhub.OrderAlert{Kind: c.Verdict, At: now, Interval: c.Interval, Ordered: c.Ordered, Measured: c.Delivered, Text: text}
				cur.Alerts = append(cur.Alerts, a)
				raised = append(raised, a)
			}
			if len(raised) == 0 {
				continue
			}
			cur.UpdatedAt = now
			if err := tx.UpdateActivationOrder(ctx, cur); err != nil {
				if flexhub.ErrorKind(err) == flexhub.EConflict {
					continue // moved on: the next check sees it
				}
				return err
			}
			for _, a := range raised {
				if err := s.recordAs(ctx, tx, SchedulerActor, "activation_order.alert."+a.Kind, flexhub.KindActivationOrder, cur.ID, cur.Version, cur, cur.SystemOperatorID, cur.FSPID); err != nil {
					return err
				}
				parties := []string{cur.SystemOperatorID, cur.FSPID}
				if err := s.notify(ctx, tx, parties, flexhub.NotifyActivationAlert, flexhub.KindActivationOrder, cur.ID, "", a.Text); err != nil {
					return err
				}
				if err := s.logAlertAccess(ctx, tx, cur, a, now); err != nil {
					return err
				}
				for _, p := range parties {
					if err := s.emitEvent(ctx, tx, p, flexhub.EventActivationAlert, fmt.Sprintf("%s.%s.%d", cur.ID, a.Kind, a.Interval.Unix()), a); err != nil {
						return err
					}
					alerts = append(alerts, orderAlert{to: p, orderID: cur.ID, alert: a})
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.publishAlerts(ctx, alerts)
	return len(alerts) / 2, nil
}

// meterArrived queues resources whose meter data just arrived for a
// delivery check by the monitor loop (never blocks an ingestion: when the
// queue is full the resource is checked with the next data).
func (s *Service) meterArrived(resourceIDs ...string) {
	for _, r := range resourceIDs {
		select {
		case s.monitorQ <- r:
		default:
		}
	}
}

// monitorSweep is how often every running order is checked, data or not.
const monitorSweep = 15 * time.Second

// runMonitor checks queued resources, gathering them for up to every
// before each round so that a stream of 1-second readings costs one
// check per resource per round, not one per reading; every monitorSweep
// it queues the resources of all running orders.
func (s *Service) runMonitor(ctx context.Context, every time.Duration) {
	pending := map[string]bool{}
	t := time.NewTicker(every)
	defer t.Stop()
	sweep := time.NewTicker(monitorSweep)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.monitorQ:
			pending[r] = true
		case <-sweep.C:
			ids, err := s.RunningOrderResources(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("delivery monitor sweep", "err", err)
			}
			for _, r := range ids {
				pending[r] = true
			}
		case <-t.C:
			if len(pending) == 0 {
				continue
			}
			ids := make([]string, 0, len(pending))
			for r := range pending {
				ids = append(ids, r)
			}
			clear(pending)
			if n, err := s.MonitorResources(ctx, ids); err != nil && ctx.Err() == nil {
				s.log.Error("delivery monitor", "resources", len(ids), "err", err)
			} else if n > 0 {
				s.log.Info("delivery monitor", "alerts", n)
			}
		}
	}
}

// RunningOrderResources lists the resources of the accepted and executing
// orders whose first set-point has started: what the monitor's sweep
// checks.
func (s *Service) RunningOrderResources(ctx context.Context) ([]string, error) {
	now := s.now()
	var ids []string
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		for _, st := range []string{flexhub.OrderAccepted, flexhub.OrderExecuting} {
			os, err := listAll(func(pg flexhub.Page) ([]*flexhub.ActivationOrder, string, error) {
				return tx.ListActivationOrders(ctx, flexhub.Filter{"status": st}, pg)
			})
			if err != nil {
				return err
			}
			for _, o := range os {
				if o.Type != flexhub.OrderEnd && now.After(o.First()) {
					ids = append(ids, o.ResourceID)
				}
			}
		}
		return nil
	})
	return dedupe(ids), err
}

// logAlertAccess logs, in the alert's transaction, that an alert carrying
// a unit's measured delivery goes to the order's system operator and FSP
// (feed, webhooks, MQTT): consumer data, on their bases (docs/CONSENT.md).
func (s *Service) logAlertAccess(ctx context.Context, tx flexhub.Tx, o *flexhub.ActivationOrder, a flexhub.OrderAlert, now time.Time) error {
	r, err := tx.Resource(ctx, o.ResourceID)
	if err != nil || r.MeteringPointID == "" {
		return err
	}
	mp, err := tx.MeteringPoint(ctx, r.MeteringPointID)
	if err != nil {
		return err
	}
	var as []*flexhub.DataAccess
	for p, basis := range map[string]string{o.SystemOperatorID: flexhub.BasisSystemOperator, o.FSPID: flexhub.BasisFSPOperator} {
		if p == mp.ConsumerID {
			continue
		}
		as = append(as, &flexhub.DataAccess{At: now, ReaderID: p, OwnerID: mp.ConsumerID, MeteringPointID: mp.ID, Scope: flexhub.ScopeMeterRealtime,
			Channel: flexhub.ChannelNotification, Basis: basis, Outcome: flexhub.AccessAllowed,
			What: fmt.Sprintf("%s alert of order %s: measured delivery at %s", a.Kind, o.ID, a.Interval.UTC().Format(time.RFC3339))})
	}
	slices.SortFunc(as, func(x, y *flexhub.DataAccess) int { return strings.Compare(x.ReaderID, y.ReaderID) })
	return tx.AppendDataAccess(ctx, as)
}
