package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/mqtt"
	"github.com/flexhub/flexhub/sim"
)

// The activation part of `flexhub demo`: after clearing, the DSO and the
// TSO send activation orders for their obligations over REST; the two
// demo aggregators are simulated (package sim) behind an embedded MQTT
// broker; the service's scheduler delivers the orders, records the
// aggregators' reports and monitors the delivery live against the meter
// data they stream, on a clock moved to the delivery window and run fast.

// demoLive holds the flags of the activation part.
type demoLive struct {
	off          bool
	speed        float64
	underDeliver string
	fraction     float64
	resolution   time.Duration
	seed         int64
	metering     string
}

func (l *demoLive) flags(fs *flag.FlagSet) {
	fs.BoolVar(&l.off, "no-activation", false, "stop after clearing: no activation orders, no simulated aggregators")
	fs.Float64Var(&l.speed, "speed", 150, "how many times faster than real time the delivery window runs (the service's and the simulator's clock alike)")
	fs.StringVar(&l.underDeliver, "under-deliver", "heatflex", "the simulated aggregator that under-delivers its orders: sunny, heatflex or none")
	fs.Float64Var(&l.fraction, "deliver-fraction", 0.5, "what the under-delivering aggregator delivers of each set-point")
	fs.DurationVar(&l.resolution, "meter-resolution", time.Minute, "resolution of the simulated meter stream (whole seconds dividing 15m)")
	fs.Int64Var(&l.seed, "seed", 1, "the simulator's seed")
	fs.StringVar(&l.metering, "metering", sim.MeterDevice, "what the aggregators meter: device (a sub-meter at each battery and heat pump, as aggregators do) or site (the household's net power: the evening's load rise then reads as missing delivery against the meter-before baseline)")
}

func (l *demoLive) check() error {
	if l.off {
		return nil
	}
	if l.speed < 1 || l.speed > 1000 {
		return usageError{fmt.Sprintf("--speed %v: use 1 (real time) to 1000", l.speed)}
	}
	switch strings.ToLower(l.underDeliver) {
	case "sunny", "heatflex", "none":
	default:
		return usageError{fmt.Sprintf("--under-deliver %q: use sunny, heatflex or none", l.underDeliver)}
	}
	if l.metering != sim.MeterSite && l.metering != sim.MeterDevice {
		return usageError{fmt.Sprintf("--metering %q: use device or site", l.metering)}
	}
	if l.fraction <= 0 || l.fraction >= 1 {
		return usageError{fmt.Sprintf("--deliver-fraction %v: use a fraction between 0 and 1 (exclusive)", l.fraction)}
	}
	return nil
}

// ActivationReport is the activation part of `flexhub demo --json`.
type ActivationReport struct {
	WindowStart  time.Time     `json:"window_start"`
	WindowEnd    time.Time     `json:"window_end"`
	Speed        float64       `json:"speed" doc:"simulated seconds per real second"`
	UnderDeliver string        `json:"under_deliver,omitempty" doc:"the aggregator told to under-deliver"`
	Orders       []OrderReport `json:"orders"`
	Summary      []FSPSummary  `json:"summary"`
	RealSeconds  float64       `json:"real_seconds" doc:"how long the delivery window took in real time"`
}

// OrderReport is one activation order at the end of the window.
type OrderReport struct {
	ID             string               `json:"id"`
	SystemOperator string               `json:"system_operator"`
	FSP            string               `json:"fsp"`
	Resource       string               `json:"resource"`
	ObligationID   string               `json:"obligation_id"`
	Status         string               `json:"status"`
	Acknowledged   bool                 `json:"acknowledged"`
	Tracking       []flexhub.OrderEvent `json:"tracking"`
	BaselineW      *int64               `json:"baseline_w,omitempty" doc:"the monitoring's meter-before baseline, W net export"`
	Intervals      []IntervalReport     `json:"intervals"`
	Alerts         []flexhub.OrderAlert `json:"alerts"`
}

// IntervalReport is one set-point and what the monitoring measured.
type IntervalReport struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	OrderedW   int64     `json:"ordered_w"`
	DeliveredW int64     `json:"delivered_w" doc:"what flexhub's monitoring measured: the change against its meter-before baseline"`
	Verdict    string    `json:"verdict" enum:"pending,on_target,under_delivery,over_delivery"`
	// TrueDeliveredW is the same measurement against the simulated
	// units' own baseline (what they would have drawn without the order),
	// which only the simulator knows.
	TrueDeliveredW *int64 `json:"true_delivered_w,omitempty"`
}

// FSPSummary sums one aggregator's orders.
type FSPSummary struct {
	FSP          string `json:"fsp"`
	Orders       int    `json:"orders"`
	Acknowledged int    `json:"acknowledged"`
	Completed    int    `json:"completed"`
	WithAlerts   int    `json:"orders_with_alerts"`
	Alerts       int    `json:"alerts"`
	OrderedWh    int64  `json:"ordered_wh"`
	DeliveredWh  int64  `json:"delivered_wh" doc:"as the monitoring measured it"`
	TrueWh       int64  `json:"true_delivered_wh" doc:"against the simulated units' own baseline"`
	Readings     int64  `json:"readings_streamed" doc:"meter readings the simulated aggregator streamed"`
	ServerErrors int64  `json:"errors_from_flexhub" doc:"messages flexhub sent on the aggregator's errors topic (a refused report or reading)"`
	LastError    string `json:"last_error,omitempty" doc:"the simulated aggregator's last problem"`
}

// liveRun is the demo's live part: its REST API and MQTT broker on
// loopback, API keys for this run only (the register's own keys are shown
// once, when it is loaded; these are revoked by close) and the two
// simulated aggregators. It starts before gate closure, so that the
// aggregators can nominate their baselines (nominate, demo_nomination.go);
// activate then plays the delivery window of the cleared day.
type liveRun struct {
	svc        *app.Service
	log        *slog.Logger
	l          demoLive
	p          *demo.Parties
	keys       map[string]string // party id → this run's API key
	names      map[string]string // party id → name
	clock      *demoClock
	bus        *mqtt.Embedded
	api        string
	sims       []*sim.Sim
	underParty string
	underName  string
	closers    []func()
}

// startLive starts the REST API and the broker and builds the simulated
// aggregators (each discovers its resources over REST); nothing runs on
// the broker yet.
func startLive(ctx context.Context, svc *app.Service, log *slog.Logger, dataDir string, l demoLive) (_ *liveRun, err error) {
	p, err := demo.FindParties(ctx, svc.Store())
	if err != nil {
		return nil, err
	}
	lr := &liveRun{svc: svc, log: log, l: l, p: p, keys: map[string]string{}, names: map[string]string{}}
	defer func() {
		if err != nil {
			lr.close()
		}
	}()
	admin := app.WithActor(ctx, p.Admin)
	for _, party := range []*flexhub.Party{p.DSO, p.TSO, p.Sunny, p.HeatFlex} {
		lr.names[party.ID] = party.Name
		k, err := svc.IssueCredential(admin, party.ID, "flexhub demo: activation run")
		if err != nil {
			return nil, fmt.Errorf("API key for %s: %w", party.Name, err)
		}
		lr.keys[party.ID] = k.Token
		id := k.ID
		lr.closers = append(lr.closers, func() { _, _ = svc.RevokeCredential(admin, id) })
	}
	lr.bus, err = mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: svc.MQTTAuthorizer(), Log: log})
	if err != nil {
		return nil, fmt.Errorf("MQTT broker: %w", err)
	}
	lr.closers = append(lr.closers, func() { lr.bus.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: fhttp.NewServer(svc, log, Version), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	lr.closers = append(lr.closers, func() { srv.Close() })
	lr.api = "http://" + ln.Addr().String()

	// The service's clock and the simulator's are one clock; activate
	// sets it to the delivery window.
	lr.clock = newDemoClock(time.Now())
	switch strings.ToLower(l.underDeliver) {
	case "sunny":
		lr.underParty, lr.underName = p.Sunny.ID, p.Sunny.Name
	case "heatflex":
		lr.underParty, lr.underName = p.HeatFlex.ID, p.HeatFlex.Name
	}
	// The two aggregators, each its own simulation (faults are per
	// simulation): one MQTT connection each, once they run.
	for _, fsp := range []*flexhub.Party{p.Sunny, p.HeatFlex} {
		o := sim.Options{API: lr.api, MQTT: "tcp://" + lr.bus.Addr(), Keys: []string{lr.keys[fsp.ID]}, Resolution: l.resolution, Seed: l.seed,
			DataDir: dataDir, Clock: lr.clock, MeterGroups: true, Metering: l.metering, Log: log}
		if fsp.ID == lr.underParty {
			o.Faults = sim.Faults{UnderDeliver: 1, DeliverFraction: l.fraction}
		}
		s, err := sim.New(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("simulating %s: %w", fsp.Name, err)
		}
		lr.sims = append(lr.sims, s)
	}
	return lr, nil
}

// close stops the API and the broker and revokes the run's keys.
func (lr *liveRun) close() {
	for i := len(lr.closers) - 1; i >= 0; i-- {
		lr.closers[i]()
	}
	lr.closers = nil
}

// activate plays the delivery window of the cleared day.
func (lr *liveRun) activate(ctx context.Context, day *demo.Day, progress io.Writer) (*ActivationReport, error) {
	svc, p, l, keys, names := lr.svc, lr.p, lr.l, lr.keys, lr.names
	obls, err := demo.DayObligations(ctx, svc, day)
	if err != nil {
		return nil, err
	}
	plan := demo.PlanActivations(obls)
	if len(plan) == 0 {
		fmt.Fprintln(progress, "Activation: the market awarded nothing to activate.")
		return &ActivationReport{Speed: l.speed, Orders: []OrderReport{}, Summary: []FSPSummary{}}, nil
	}
	winStart, winEnd := demo.Window(plan)
	rep := &ActivationReport{WindowStart: winStart, WindowEnd: winEnd, Speed: l.speed, UnderDeliver: lr.underName}

	// The clock is set 20 simulated minutes before the window (the
	// monitoring's baseline is the quarter hour before an order starts).
	// It runs in real time while the aggregators connect and the orders
	// go out and are acknowledged (an FSP has a minute to acknowledge),
	// then fast.
	clock := lr.clock
	clock.set(winStart.Add(-20 * time.Minute))
	svc.SetClock(func() time.Time { return clock.Now().Truncate(time.Microsecond) })

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	svc.SetPublisher(lr.bus)
	if err := svc.ServeMQTT(runCtx, mqtt.Handlers{Bus: lr.bus}); err != nil {
		return nil, err
	}
	api := lr.api
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); svc.RunScheduler(runCtx, 100*time.Millisecond) }()
	defer func() { cancel(); <-schedDone }()

	simCtx, stopSims := context.WithCancel(runCtx)
	defer stopSims()
	sims := lr.sims
	simDone := make(chan error, len(sims))
	for _, s := range sims {
		go func() { simDone <- s.Run(simCtx) }()
	}
	defer func() {
		stopSims()
		for range sims {
			<-simDone
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for _, s := range sims {
		for !s.FSPs[0].Stats.Connected.Load() {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("the simulated %s did not connect to the broker: %s", s.FSPs[0].Name, s.FSPs[0].LastError())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	fmt.Fprintf(progress, "\nActivation: %s to %s Sydney time, %d orders, clock ×%g (about %s)%s\n",
		winStart.In(sydney).Format("Mon 15:04"), winEnd.In(sydney).Format("15:04"), len(plan), l.speed,
		(time.Duration(float64(winEnd.Add(2*time.Minute).Sub(clock.Now())) / l.speed)).Round(time.Second), underNote(rep.UnderDeliver, l.fraction))
	realStart := time.Now()

	// The system operators send their orders over REST.
	var orders []*flexhub.ActivationOrder
	for _, po := range plan {
		var o flexhub.ActivationOrder
		if err := restCall(ctx, http.MethodPost, api+"/v1/activation-orders", keys[po.Obligation.SystemOperatorID], "demo-"+po.Obligation.ID, po.Spec, http.StatusCreated, &o); err != nil {
			return nil, fmt.Errorf("%s's order for obligation %s: %w", names[po.Obligation.SystemOperatorID], po.Obligation.ID, err)
		}
		orders = append(orders, &o)
	}

	// Every order acknowledged (or a minute gone), the clock runs fast.
	for wait := time.Now().Add(time.Minute); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		acked := 0
		for _, o := range orders {
			if cur, err := svc.GetActivationOrder(app.WithActor(ctx, p.Admin), o.ID); err == nil && orderRankAtLeast(cur.Status, flexhub.OrderAccepted) {
				acked++
			}
		}
		if acked == len(orders) {
			break
		}
	}
	clock.SetSpeed(l.speed)

	// Live: a progress line whenever the picture changes, until every
	// order is final and the window (plus two minutes for the last
	// readings) is over.
	asSO := func(o *flexhub.ActivationOrder) context.Context {
		if o.SystemOperatorID == p.TSO.ID {
			return app.WithActor(ctx, p.TSO)
		}
		return app.WithActor(ctx, p.DSO)
	}
	realLimit := time.Now().Add(time.Duration(float64(winEnd.Sub(clock.Now()))/l.speed) + 90*time.Second)
	last := ""
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var ack, running, done, alerts int
		for i, o := range orders {
			cur, err := svc.GetActivationOrder(asSO(o), o.ID)
			if err != nil {
				return nil, err
			}
			orders[i] = cur
			if cur.Acknowledged() {
				ack++
			}
			if cur.Status == flexhub.OrderExecuting {
				running++
			}
			if flexhub.OrderTerminal(cur.Status) {
				done++
			}
			alerts += len(cur.Alerts)
		}
		now := clock.Now()
		line := fmt.Sprintf("orders %d: %d acknowledged, %d running, %d completed; alerts %d", len(orders), ack, running, done, alerts)
		over := done == len(orders) && !now.Before(winEnd.Add(2*time.Minute))
		if line != last || over {
			fmt.Fprintf(progress, "  %s  %s\n", now.In(sydney).Format("15:04"), line)
			last = line
		}
		if over {
			break
		}
		if time.Now().After(realLimit) {
			return nil, fmt.Errorf("the delivery window did not finish in time (%s)", line)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	rep.RealSeconds = time.Since(realStart).Seconds()
	stopSims()
	readings := map[string]int64{}
	snaps := map[string]sim.Snapshot{}
	units := map[string]*sim.Unit{}
	for _, s := range sims {
		for _, sn := range s.Snapshot() {
			readings[sn.Party] += sn.Readings
			snaps[sn.Party] = sn
		}
		for _, f := range s.FSPs {
			for _, u := range f.Fleet.Units {
				units[u.ID] = u
			}
		}
	}

	// What the monitoring says about each order.
	sums := map[string]*FSPSummary{}
	for _, o := range orders {
		ds, err := svc.GetDelivery(asSO(o), o.ID)
		if err != nil {
			return nil, err
		}
		or := OrderReport{ID: o.ID, SystemOperator: names[o.SystemOperatorID], FSP: names[o.FSPID], ObligationID: o.ObligationID,
			Status: o.Status, Acknowledged: o.Acknowledged(), Tracking: o.Tracking, BaselineW: ds.Baseline, Alerts: o.Alerts}
		if or.Alerts == nil {
			or.Alerts = []flexhub.OrderAlert{}
		}
		_ = svc.Store().View(ctx, func(tx flexhub.Tx) error {
			if r, err := tx.Resource(ctx, o.ResourceID); err == nil {
				or.Resource = r.Name
			}
			return nil
		})
		truth, err := trueDelivery(ctx, svc, o, units)
		if err != nil {
			return nil, err
		}
		checks := map[time.Time]flexhub.DeliveryCheck{}
		for _, c := range ds.Intervals {
			checks[c.Interval] = c
		}
		sum := sums[or.FSP]
		if sum == nil {
			sn := snaps[o.FSPID]
			sum = &FSPSummary{FSP: or.FSP, Readings: readings[o.FSPID], ServerErrors: sn.ServerErrors, LastError: sn.LastError}
			sums[or.FSP] = sum
		}
		sum.Orders++
		if or.Acknowledged {
			sum.Acknowledged++
		}
		if o.Status == flexhub.OrderCompleted {
			sum.Completed++
		}
		if len(o.Alerts) > 0 {
			sum.WithAlerts++
		}
		sum.Alerts += len(o.Alerts)
		for _, sp := range o.Setpoints {
			c, ok := checks[sp.Start]
			ir := IntervalReport{Start: sp.Start, End: sp.End, OrderedW: sp.Quantity, Verdict: flexhub.DeliveryPending}
			if ok {
				ir.DeliveredW, ir.Verdict = c.Delivered, c.Verdict
			}
			hours := sp.End.Sub(sp.Start).Hours()
			sum.OrderedWh += int64(float64(sp.Quantity) * hours)
			sum.DeliveredWh += int64(float64(ir.DeliveredW) * hours)
			if t, ok := truth[sp.Start]; ok {
				ir.TrueDeliveredW = &t
				sum.TrueWh += int64(float64(t) * hours)
			}
			or.Intervals = append(or.Intervals, ir)
		}
		rep.Orders = append(rep.Orders, or)
	}
	for _, s := range sums {
		rep.Summary = append(rep.Summary, *s)
	}
	sort.Slice(rep.Summary, func(i, j int) bool { return rep.Summary[i].FSP < rep.Summary[j].FSP })
	return rep, nil
}

func underNote(who string, fraction float64) string {
	if who == "" {
		return ""
	}
	return fmt.Sprintf("; %s is set to deliver only %.0f%% of its set-points", who, fraction*100)
}

// restCall sends one JSON request to the demo's own REST API.
func restCall(ctx context.Context, method, url, key, idem string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return errors.New(resp.Status + ": " + strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// printActivation prints the activation tables.
func printActivation(w io.Writer, r *ActivationReport) {
	if len(r.Orders) == 0 {
		fmt.Fprintln(w, "== Activation: nothing to activate")
		return
	}
	fmt.Fprintf(w, "== Activation and live delivery monitoring, %s to %s (Sydney time), clock ×%g (%.0f s)\n\n",
		r.WindowStart.In(sydney).Format("15:04"), r.WindowEnd.In(sydney).Format("15:04"), r.Speed, r.RealSeconds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "buyer\tFSP\tresource\ttime (Sydney)\tordered kW\tdelivered kW\tverdict\ttrue kW\tstatus\talerts")
	for _, o := range r.Orders {
		alerts := "-"
		if len(o.Alerts) > 0 {
			kinds := map[string]int{}
			var order []string
			for _, a := range o.Alerts {
				if kinds[a.Kind] == 0 {
					order = append(order, a.Kind)
				}
				kinds[a.Kind]++
			}
			var parts []string
			for _, k := range order {
				parts = append(parts, fmt.Sprintf("%d %s", kinds[k], strings.ReplaceAll(k, "_", " ")))
			}
			alerts = strings.Join(parts, ", ")
		}
		for i, iv := range o.Intervals {
			buyer, fsp, res, status, al := o.SystemOperator, o.FSP, o.Resource, strings.ReplaceAll(o.Status, "_", " "), alerts
			if i > 0 {
				buyer, fsp, res, status, al = "", "", "", "", ""
			}
			truth := "-"
			if iv.TrueDeliveredW != nil {
				truth = kwString(*iv.TrueDeliveredW)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s-%s\t%s\t%s\t%s\t%s\t%s\t%s\n", buyer, fsp, res, iv.Start.In(sydney).Format("15:04"), iv.End.In(sydney).Format("15:04"),
				kwString(iv.OrderedW), kwString(iv.DeliveredW), strings.ReplaceAll(iv.Verdict, "_", " "), truth, status, al)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FSP\torders\tacknowledged\tcompleted\twith alerts\talerts\tordered kWh\tdelivered kWh\ttrue kWh\treadings streamed\terrors from flexhub")
	for _, s := range r.Summary {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\n", s.FSP, s.Orders, s.Acknowledged, s.Completed, s.WithAlerts, s.Alerts,
			kwString(s.OrderedWh), kwString(s.DeliveredWh), kwString(s.TrueWh), s.Readings, s.ServerErrors)
	}
	tw.Flush()
	for _, s := range r.Summary {
		if s.ServerErrors > 0 && s.LastError != "" {
			fmt.Fprintf(w, "%s's last problem: %s\n", s.FSP, s.LastError)
		}
	}
	fmt.Fprintln(w, "\nAlerts as the monitoring raised them (simulated time, Sydney):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	type raised struct {
		fsp string
		a   flexhub.OrderAlert
	}
	var all []raised
	for _, o := range r.Orders {
		for _, a := range o.Alerts {
			all = append(all, raised{o.FSP, a})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].a.At.Before(all[j].a.At) })
	for _, x := range all {
		what := strings.ReplaceAll(x.a.Kind, "_", " ")
		if !x.a.Interval.IsZero() {
			what += fmt.Sprintf(" in %s: %s kW measured of %s kW ordered", x.a.Interval.In(sydney).Format("15:04"), kwString(x.a.Measured), kwString(x.a.Ordered))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", x.a.At.In(sydney).Format("15:04:05"), x.fsp, what)
	}
	if len(all) == 0 {
		fmt.Fprintln(tw, "  none")
	}
	tw.Flush()
	fmt.Fprint(w, `
delivered kW: what flexhub's live monitoring measured (GET /v1/activation-orders/{id}/delivery):
  the pool's net power against its provisional "meter before" baseline, the quarter hour
  before the order (docs/ACTIVATION.md). true kW: the same meter data against what the
  simulated units would have drawn without the order, which only the simulator knows. Where
  the two differ, the units' own consumption moved after the baseline was taken (with
  --metering site, the households' evening load ramp), and the monitoring counts that as
  missing or extra delivery.
`)
	fmt.Fprintln(w)
}

// trueDelivery is what the simulator knows and flexhub cannot: the
// resource's measured net power (as stored by flexhub) against the
// simulated units' own baseline (what they would have done without the
// order), averaged over the window the monitoring evaluates in each
// interval. It shows what the monitoring's provisional "meter before"
// baseline gets right and wrong. Keyed by set-point start.
func trueDelivery(ctx context.Context, svc *app.Service, o *flexhub.ActivationOrder, units map[string]*sim.Unit) (map[time.Time]int64, error) {
	out := map[time.Time]int64{}
	err := svc.Store().View(ctx, func(tx flexhub.Tx) error {
		r, err := tx.Resource(ctx, o.ResourceID)
		if err != nil {
			return err
		}
		members := r.Members
		if r.Kind != flexhub.ResourceGroup {
			members = []string{r.ID}
		}
		var us []*sim.Unit
		for _, id := range members {
			if u := units[id]; u != nil {
				us = append(us, u)
			}
		}
		if len(us) != len(members) {
			return nil // a member the simulator did not run: no truth to tell
		}
		p, err := tx.Product(ctx, o.ProductID)
		if err != nil {
			return err
		}
		fat, _ := p.FullActivationTime.Parse("")
		series, err := tx.ListMeterSeries(ctx, flexhub.MeterSubjectResource, r.ID)
		if err != nil {
			return err
		}
		var res time.Duration
		for _, s := range series {
			if s.Quantity == flexhub.QuantityActivePower && (res == 0 || s.Resolution < res) {
				res = s.Resolution
			}
		}
		if res == 0 {
			return nil
		}
		for _, sp := range o.Setpoints {
			begin := sp.Start
			if o.CreatedAt.After(begin) {
				begin = o.CreatedAt
			}
			from := begin.Add(min(fat, sp.End.Sub(begin)/2))
			net := map[time.Time]int64{} // mW
			for _, flow := range []string{flexhub.FlowImport, flexhub.FlowExport} {
				recs, err := tx.MeterReadings(ctx, flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: r.ID,
					Quantity: flexhub.QuantityActivePower, Flow: flow, Resolution: res}, from.Truncate(res), sp.End)
				if err != nil {
					return err
				}
				for _, rec := range recs {
					if flow == flexhub.FlowExport {
						net[rec.Start] += rec.Value
					} else {
						net[rec.Start] -= rec.Value
					}
				}
			}
			var sum float64
			n := 0
			for start, v := range net {
				if start.Before(from) {
					continue
				}
				mid := start.Add(res / 2)
				base := 0.0
				for _, u := range us {
					base += u.Baseline(mid)
				}
				d := float64(v)/1000 - base
				if o.Direction == "down" {
					d = -d
				}
				sum += d
				n++
			}
			if n > 0 {
				out[sp.Start] = int64(sum / float64(n))
			}
		}
		return nil
	})
	return out, err
}

// orderRankAtLeast reports whether status s is st or later (a final
// status counts as later).
func orderRankAtLeast(s, st string) bool {
	rank := map[string]int{flexhub.OrderCreated: 0, flexhub.OrderDelivered: 1, flexhub.OrderReceived: 2, flexhub.OrderAccepted: 3, flexhub.OrderExecuting: 4}
	if flexhub.OrderTerminal(s) {
		return true
	}
	return rank[s] >= rank[st]
}

// demoClock is the demo's one clock for the service and the simulator:
// simulated time that runs at a speed that can change (real time first,
// then fast). Its SleepUntil wakes in short steps, so a change of speed
// is followed at once.
type demoClock struct {
	mu     sync.Mutex
	origin time.Time // wall clock at the last change of speed
	at     time.Time // simulated time then
	speed  float64
}

func newDemoClock(start time.Time) *demoClock {
	return &demoClock{origin: time.Now(), at: start.UTC(), speed: 1}
}

// set moves the clock to t, running in real time from now on.
func (c *demoClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.origin, c.at, c.speed = time.Now(), t.UTC(), 1
}

// Now returns the simulated time.
func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at.Add(time.Duration(float64(time.Since(c.origin)) * c.speed))
}

// SetSpeed makes the clock run speed times real time from now on.
func (c *demoClock) SetSpeed(speed float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.at = c.at.Add(time.Duration(float64(now.Sub(c.origin)) * c.speed))
	c.origin, c.speed = now, speed
}

// SleepUntil waits until the clock reads t or ctx ends.
func (c *demoClock) SleepUntil(ctx context.Context, t time.Time) error {
	for {
		c.mu.Lock()
		d := time.Duration(float64(t.Sub(c.at.Add(time.Duration(float64(time.Since(c.origin))*c.speed)))) / c.speed)
		c.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		timer := time.NewTimer(min(d, 50*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}
