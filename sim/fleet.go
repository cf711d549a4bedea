package sim

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flexhub/flexhub"
)

// Reading is one meter reading as the simulator sends it.
type Reading struct {
	ResourceID string  `json:"resource_id"`
	Quantity   string  `json:"quantity"`   // active_power
	Flow       string  `json:"flow"`       // import or export
	Start      string  `json:"start"`      // RFC 3339 UTC, aligned to the resolution
	Resolution string  `json:"resolution"` // ISO 8601, e.g. PT10S
	Value      float64 `json:"value"`      // average over the interval, ≥ 0
	Unit       string  `json:"unit"`       // kW
}

// MeterMessage is the payload of one message on a resource's meter topic.
type MeterMessage struct {
	Readings []Reading `json:"readings"`
}

// Batch is what one resource has to send after an Advance: its readings
// for each interval completed since the last one, import and export.
type Batch struct {
	ResourceID string
	Readings   []Reading
}

// Report is an order report with the order's id (the ack payload).
type Report = flexhub.ActivationOrderReport

// Config tunes a Fleet.
type Config struct {
	// Resolution of the meter stream (default 10 s). Units are stepped in
	// sub-steps of at most a second and a reading is the average net power
	// of its interval.
	Resolution time.Duration
	Seed       int64
	Faults     Faults
	// Workers bounds the goroutines that step units (default GOMAXPROCS).
	Workers int
	// MeterGroups also streams each group's readings: the sum of its
	// members' (default in NewFleet's callers: true). flexhub monitors an
	// order on the resource it names, which for market obligations is
	// often a group.
	MeterGroups bool
	// Metering is what a unit's meter measures: "site" (default: the
	// household's or site's net power, the device included) or "device"
	// (a sub-meter at the device alone, as aggregators of home batteries,
	// chargers and heat pumps often measure).
	Metering string
}

// What a unit's meter measures (Config.Metering).
const (
	MeterSite   = "site"
	MeterDevice = "device"
)

// Counters are a fleet's running totals. They are read while the fleet
// runs.
type Counters struct {
	Orders     atomic.Int64 // distinct orders received
	Duplicates atomic.Int64 // the same order again (resent), ignored
	Ignored    atomic.Int64 // orders the no-ack fault swallowed
	Accepted   atomic.Int64
	Rejected   atomic.Int64
	Executing  atomic.Int64 // orders running now (gauge)
	Completed  atomic.Int64
	Under      atomic.Int64 // accepted orders that under-deliver
}

// order is a received order as the fleet tracks it.
type order struct {
	o       *flexhub.ActivationOrder
	sign    float64 // +1 up, -1 down
	frac    float64 // the share it delivers (under-delivery fault)
	state   string  // ignored, rejected, accepted, executing, completed, ended, end
	stop    time.Time
	dropAt  time.Time
	dropped bool
}

// group is a registered group of the FSP's units.
type group struct {
	id       string
	members  []*Unit
	up, down []float64 // each member's share of an order (sums to 1)
	sumUp    float64
	sumDown  float64
}

// inboxItem hands an accepted order (or an end order's stop) from Receive
// to the next Advance, which alone touches units.
type inboxItem struct {
	o      *order
	endsID string
	stopAt time.Time
}

// Fleet is the simulated resources of one FSP: it takes activation
// orders, decides what to report, steps the units and produces their
// meter readings. Receive may be called from any goroutine; Advance from
// one goroutine at a time.
type Fleet struct {
	cfg    Config
	Units  []*Unit
	byID   map[string]*Unit
	groups map[string]*group
	gids   []string
	C      Counters

	mu     sync.Mutex // guards orders, inbox
	orders map[string]*order
	inbox  []inboxItem

	// owned by Advance
	live  []*order
	stops map[string]time.Time // end orders seen before the order they end
	next  time.Time
	sub   time.Duration
	res   string
}

// NewFleet builds the units and groups of the FSP's active resources.
// Groups whose members are not among rs are kept with the members found.
func NewFleet(rs []*flexhub.Resource, prof *Profiles, cfg Config) (*Fleet, error) {
	if cfg.Resolution <= 0 {
		cfg.Resolution = 10 * time.Second
	}
	if cfg.Resolution < time.Second || cfg.Resolution%time.Second != 0 || (24*time.Hour)%cfg.Resolution != 0 {
		return nil, fmt.Errorf("resolution %s: use whole seconds that divide a day (PT1S, PT10S, PT1M, PT15M...)", cfg.Resolution)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Metering {
	case "", MeterSite, MeterDevice:
	default:
		return nil, fmt.Errorf("metering %q: use site or device", cfg.Metering)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	f := &Fleet{cfg: cfg, byID: map[string]*Unit{}, groups: map[string]*group{}, orders: map[string]*order{}, stops: map[string]time.Time{},
		sub: min(cfg.Resolution, time.Second), res: string(flexhub.FormatDuration(cfg.Resolution))}
	for _, r := range rs {
		if r.Kind == flexhub.ResourceUnit && r.Status == flexhub.ResourceActive {
			u := NewUnit(r, prof, cfg.Seed)
			u.deviceMeter = cfg.Metering == MeterDevice
			f.Units = append(f.Units, u)
			f.byID[u.ID] = u
		}
	}
	for _, r := range rs {
		if r.Kind != flexhub.ResourceGroup || r.Status != flexhub.ResourceActive {
			continue
		}
		g := &group{id: r.ID}
		for _, m := range r.Members {
			if u := f.byID[m]; u != nil {
				g.members = append(g.members, u)
				g.sumUp += u.P.MaxUp
				g.sumDown += u.P.MaxDown
			}
		}
		share := func(sum float64, of func(*Unit) float64) []float64 {
			out := make([]float64, len(g.members))
			for i, u := range g.members {
				if sum > 0 {
					out[i] = of(u) / sum
				} else {
					out[i] = 1 / float64(len(g.members))
				}
			}
			return out
		}
		g.up = share(g.sumUp, func(u *Unit) float64 { return u.P.MaxUp })
		g.down = share(g.sumDown, func(u *Unit) float64 { return u.P.MaxDown })
		f.groups[g.id] = g
		f.gids = append(f.gids, g.id)
	}
	sort.Strings(f.gids)
	return f, nil
}

// Groups returns the number of groups simulated.
func (f *Fleet) Groups() int { return len(f.groups) }

// GroupIDs returns the ids of the groups simulated, sorted.
func (f *Fleet) GroupIDs() []string { return append([]string(nil), f.gids...) }

// Receive takes an order as it arrived and returns the reports to send,
// in order. A resent order (same id) returns nothing.
func (f *Fleet) Receive(o *flexhub.ActivationOrder, now time.Time) []Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, seen := f.orders[o.ID]; seen {
		f.C.Duplicates.Add(1)
		return nil
	}
	st := &order{o: o, sign: 1, frac: 1}
	if o.Direction == "down" {
		st.sign = -1
	}
	f.orders[o.ID] = st
	f.C.Orders.Add(1)
	fl := f.cfg.Faults
	seed := f.cfg.Seed
	if chance(seed, o.ID, "no-ack") < fl.NoAck {
		st.state = "ignored"
		f.C.Ignored.Add(1)
		return nil
	}
	out := []Report{{OrderID: o.ID, Status: flexhub.OrderReceived}}
	reason := f.check(o, now)
	if reason == "" && chance(seed, o.ID, "reject") < fl.Reject {
		reason = "simulated fault: the unit's controller refused the order"
	}
	if reason != "" {
		st.state = "rejected"
		f.C.Rejected.Add(1)
		return append(out, Report{OrderID: o.ID, Status: flexhub.OrderRejected, Reason: reason})
	}
	f.C.Accepted.Add(1)
	out = append(out, Report{OrderID: o.ID, Status: flexhub.OrderAccepted})
	if o.Type == flexhub.OrderEnd {
		st.state = "end"
		f.inbox = append(f.inbox, inboxItem{endsID: o.EndsOrderID, stopAt: o.Setpoints[0].Start})
		return out
	}
	st.state = "accepted"
	if chance(seed, o.ID, "under-deliver") < fl.UnderDeliver {
		st.frac = fl.DeliverFraction
		f.C.Under.Add(1)
	}
	if chance(seed, o.ID, "drop") < fl.Drop {
		first := o.First()
		if now.After(first) {
			first = now
		}
		span := o.Last().Sub(first)
		st.dropAt = first.Add(time.Duration(float64(span) * (0.1 + 0.4*chance(seed, o.ID, "drop-at"))))
	}
	f.inbox = append(f.inbox, inboxItem{o: st})
	return out
}

// check returns why the fleet cannot take the order, or "".
func (f *Fleet) check(o *flexhub.ActivationOrder, now time.Time) string {
	if len(o.Setpoints) == 0 {
		return "the order has no set-points"
	}
	if o.Type == flexhub.OrderEnd {
		return ""
	}
	if o.Unit == "var" {
		return "reactive power is not supported by this resource"
	}
	if !now.Before(o.Last()) {
		return "the order arrived after its last interval had ended"
	}
	var up, down float64
	name := ""
	if u := f.byID[o.ResourceID]; u != nil {
		up, down, name = u.P.MaxUp, u.P.MaxDown, u.P.Type
	} else if g := f.groups[o.ResourceID]; g != nil {
		up, down, name = g.sumUp, g.sumDown, "group"
	} else {
		return fmt.Sprintf("resource %s is not operated by this FSP's control system", o.ResourceID)
	}
	if o.Type == flexhub.OrderActivate {
		if o.Direction == "up" && up <= 0 {
			return fmt.Sprintf("the %s cannot regulate up", name)
		}
		if o.Direction == "down" && down <= 0 {
			return fmt.Sprintf("the %s cannot regulate down", name)
		}
	}
	return ""
}

// Tick is what one Advance produced.
type Tick struct {
	Batches []Batch
	Reports []Report
	// Drop asks the transport to drop the connection for that long (a
	// fault planned on an order that is running now); 0 for none.
	Drop time.Duration
	// Intervals is how many intervals were simulated.
	Intervals int
}

// maxCatchUp bounds the intervals one Advance simulates (after the
// process was suspended, say): older ones are skipped.
const maxCatchUp = 360

// Advance runs the units up to the last interval boundary at or before
// now and returns the readings of the intervals completed, the order
// reports that became due (executing, completed) and any drop.
func (f *Fleet) Advance(now time.Time) Tick {
	f.mu.Lock()
	inbox := f.inbox
	f.inbox = nil
	f.mu.Unlock()
	for _, it := range inbox {
		if it.o != nil {
			f.attach(it.o)
			continue
		}
		f.stops[it.endsID] = it.stopAt
	}
	for _, o := range f.live {
		if at, ok := f.stops[o.o.ID]; ok && o.stop.IsZero() {
			o.stop = at
		}
	}

	res := f.cfg.Resolution
	until := alignDown(now, res)
	var tk Tick
	if f.next.IsZero() {
		f.next = alignUp(now, res)
		return tk
	}
	if !until.After(f.next) {
		return f.transitions(tk)
	}
	n := int(until.Sub(f.next) / res)
	if n > maxCatchUp {
		f.next = until.Add(-maxCatchUp * res)
		n = maxCatchUp
	}
	tk.Intervals = n
	samples := make([][]float64, len(f.Units))
	subs := int(res / f.sub)
	dt := f.sub.Seconds()
	var wg sync.WaitGroup
	chunk := (len(f.Units) + f.cfg.Workers - 1) / f.cfg.Workers
	for lo := 0; lo < len(f.Units); lo += chunk {
		hi := min(lo+chunk, len(f.Units))
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				u := f.Units[i]
				s := make([]float64, n)
				for k := 0; k < n; k++ {
					start := f.next.Add(time.Duration(k) * res)
					acc := 0.0
					for j := 0; j < subs; j++ {
						t := start.Add(time.Duration(j) * f.sub)
						acc += u.step(t, dt, u.command(t))
					}
					s[k] = acc / float64(subs)
				}
				samples[i] = s
			}
		}(lo, hi)
	}
	wg.Wait()
	index := make(map[*Unit]int, len(f.Units))
	for i, u := range f.Units {
		index[u] = i
		tk.Batches = append(tk.Batches, f.batch(u.ID, samples[i]))
	}
	if f.cfg.MeterGroups {
		for _, id := range f.gids {
			g := f.groups[id]
			sum := make([]float64, n)
			for _, u := range g.members {
				for k, v := range samples[index[u]] {
					sum[k] += v
				}
			}
			tk.Batches = append(tk.Batches, f.batch(id, sum))
		}
	}
	f.next = f.next.Add(time.Duration(n) * res)
	return f.transitions(tk)
}

// transitions adds the reports of orders that started or finished by the
// simulated time, prunes finished orders and asks for due drops.
func (f *Fleet) transitions(tk Tick) Tick {
	at := f.next
	keep := f.live[:0]
	pruned := false
	for _, o := range f.live {
		end := o.o.Last()
		ended := !o.stop.IsZero() && o.stop.Before(end)
		if ended {
			end = o.stop
		}
		if o.state == "accepted" && at.After(o.o.First()) && at.Before(end) {
			o.state = "executing"
			f.C.Executing.Add(1)
			tk.Reports = append(tk.Reports, Report{OrderID: o.o.ID, Status: flexhub.OrderExecuting})
		}
		if !o.dropAt.IsZero() && !o.dropped && !at.Before(o.dropAt) && at.Before(end) {
			o.dropped = true
			tk.Drop = max(tk.Drop, f.cfg.Faults.DropFor)
		}
		if !at.Before(end) {
			if o.state == "executing" {
				f.C.Executing.Add(-1)
			}
			if ended {
				// flexhub ends it (ended_early); nothing to report.
				o.state = "ended"
			} else {
				o.state = "completed"
				f.C.Completed.Add(1)
				tk.Reports = append(tk.Reports, Report{OrderID: o.o.ID, Status: flexhub.OrderCompleted})
			}
			pruned = true
			continue
		}
		keep = append(keep, o)
	}
	f.live = keep
	if pruned {
		for _, u := range f.Units {
			us := u.orders[:0]
			for _, uo := range u.orders {
				if uo.o.state == "accepted" || uo.o.state == "executing" {
					us = append(us, uo)
				}
			}
			u.orders = us
		}
	}
	return tk
}

// attach makes an accepted order act on its unit or its group's members.
func (f *Fleet) attach(o *order) {
	if at, ok := f.stops[o.o.ID]; ok {
		o.stop = at
	}
	f.live = append(f.live, o)
	if u := f.byID[o.o.ResourceID]; u != nil {
		u.orders = append(u.orders, unitOrder{o: o, share: 1})
		return
	}
	g := f.groups[o.o.ResourceID]
	if g == nil {
		return
	}
	shares := g.up
	if o.o.Direction == "down" {
		shares = g.down
	}
	for i, u := range g.members {
		u.orders = append(u.orders, unitOrder{o: o, share: shares[i]})
	}
}

// command sums what the unit's running orders ask at t.
func (u *Unit) command(t time.Time) command {
	var c command
	for _, uo := range u.orders {
		o := uo.o
		if o.state != "accepted" && o.state != "executing" {
			continue
		}
		if !o.stop.IsZero() && !t.Before(o.stop) {
			continue
		}
		q, ok := setpointAt(o.o.Setpoints, t)
		if !ok {
			continue
		}
		c.active = true
		switch o.o.Type {
		case flexhub.OrderActivate:
			c.delta += o.sign * float64(q) * uo.share * o.frac
		case flexhub.OrderLimit:
			c.caps = append(c.caps, limitCap{up: o.sign > 0, q: float64(q) * uo.share, frac: o.frac})
		}
	}
	return c
}

// setpointAt returns the quantity of the set-point running at t.
func setpointAt(sps []flexhub.Setpoint, t time.Time) (int64, bool) {
	i := sort.Search(len(sps), func(i int) bool { return sps[i].End.After(t) })
	if i < len(sps) && !t.Before(sps[i].Start) {
		return sps[i].Quantity, true
	}
	return 0, false
}

// batch turns a resource's interval averages (net W) into readings.
func (f *Fleet) batch(id string, nets []float64) Batch {
	b := Batch{ResourceID: id, Readings: make([]Reading, 0, 2*len(nets))}
	start := f.next
	for k, net := range nets {
		s := start.Add(time.Duration(k) * f.cfg.Resolution).UTC().Format(time.RFC3339)
		imp, exp := 0.0, 0.0
		if net >= 0 {
			exp = net
		} else {
			imp = -net
		}
		b.Readings = append(b.Readings,
			Reading{ResourceID: id, Quantity: "active_power", Flow: "import", Start: s, Resolution: f.res, Value: kw(imp), Unit: "kW"},
			Reading{ResourceID: id, Quantity: "active_power", Flow: "export", Start: s, Resolution: f.res, Value: kw(exp), Unit: "kW"})
	}
	return b
}

// alignUp returns the interval boundary at or after t.
func alignUp(t time.Time, res time.Duration) time.Time {
	d := alignDown(t, res)
	if d.Before(t) {
		return d.Add(res)
	}
	return d
}

// kw rounds W to kW with three decimals (whole W).
func kw(w float64) float64 { return math.Round(w) / 1000 }

// alignDown returns the interval boundary at or before t (UTC, since the
// Unix epoch, so PT15M boundaries fall on the quarter hours).
func alignDown(t time.Time, res time.Duration) time.Time {
	ns := t.UnixNano()
	return time.Unix(0, ns-ns%int64(res)).UTC()
}
