package sim

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"time"

	"github.com/flexhub/flexhub"
)

// Signs and units: every power here is in W and counts from the grid's
// point of view at the resource's meter, net = export − import. A
// device's power p is positive when it feeds in (a discharging battery,
// a PV inverter) and negative when it consumes. An "up" order of X W asks
// for net X W above baseline (less consumption or more generation), a
// "down" order for X W below it.

// Params are a simulated unit's capabilities, taken from its registered
// technical data with defaults per unit type where the data are silent.
type Params struct {
	Type    string  // unit type (battery, ev_charger, heat_pump, pv_inverter, industrial_process, other)
	MaxUp   float64 // W: the most an order may raise net power above baseline
	MaxDown float64 // W: the most an order may lower it
	Rated   float64 // W: the device's rated power (battery and charger power, heat pump input, PV peak, process load)
	Ramp    float64 // W per second: how fast the deviation from baseline changes
	// EnergyWh is the battery's usable capacity (energy_limit, else
	// 10 kWh); for a heat pump, the heat deficit (or surplus) it may build
	// before comfort forces it back to its natural consumption.
	EnergyWh float64
}

// Default sizes where the technical data give none.
const (
	defaultBatteryW    = 5000
	defaultBatteryWh   = 10000
	defaultChargerW    = 7400
	defaultPVW         = 5000
	defaultIndustrialW = 500000
	heatPumpShare      = 0.35 // the heat pump's share of the household's load
)

// ParamsFor derives a unit's parameters from its technical data.
func ParamsFor(r *flexhub.Resource) Params {
	t := &r.Technical
	up, _ := t.MaxUp.Watts("")
	down, _ := t.MaxDown.Watts("")
	rampPerMin, _ := t.RampRate.WattsPerMinute("")
	fat, _ := t.FullActivationTime.Parse("")
	energy, _ := t.EnergyLimit.WattHours("")
	maxDur, _ := t.MaxActivationDuration.Parse("")
	p := Params{Type: r.UnitType, MaxUp: float64(up), MaxDown: float64(down), EnergyWh: float64(energy)}
	bigger := math.Max(p.MaxUp, p.MaxDown)
	var rampFloor float64 // W/s when neither ramp rate nor full activation time is given
	switch p.Type {
	case "battery":
		p.Rated = orDefault(bigger, defaultBatteryW)
		if p.MaxUp == 0 && p.MaxDown == 0 {
			p.MaxUp, p.MaxDown = p.Rated, p.Rated
		}
		p.EnergyWh = orDefault(p.EnergyWh, defaultBatteryWh)
		rampFloor = p.Rated / 2
	case "ev_charger":
		p.Rated = orDefault(bigger, defaultChargerW)
		if p.MaxUp == 0 && p.MaxDown == 0 {
			p.MaxUp, p.MaxDown = p.Rated, p.Rated
		}
		rampFloor = p.Rated / 5
	case "heat_pump":
		p.Rated = math.Max(1500, 2*bigger)
		if p.MaxUp == 0 && p.MaxDown == 0 {
			p.MaxUp = p.Rated / 2
		}
		if maxDur == 0 {
			maxDur = time.Hour
		}
		// It may shed (or preheat) its full flexibility for its maximum
		// activation duration before comfort wins.
		p.EnergyWh = math.Max(p.MaxUp, p.MaxDown) * maxDur.Hours()
		rampFloor = p.Rated / 60
	case "pv_inverter":
		p.Rated = orDefault(bigger, defaultPVW)
		if p.MaxDown == 0 {
			p.MaxDown = p.Rated
		}
		p.MaxUp = 0 // it can only curtail
		rampFloor = p.Rated
	case "industrial_process":
		if bigger == 0 {
			p.Rated = defaultIndustrialW
			p.MaxUp, p.MaxDown = 0.3*p.Rated, 0.1*p.Rated
		} else {
			p.Rated = 3 * bigger
		}
		rampFloor = 0.05 * p.Rated / 60 // 5 % of rated per minute: large and slow
	default:
		p.Type = "other"
		if bigger == 0 {
			p.MaxUp, p.MaxDown, bigger = 1000, 1000, 1000
		}
		p.Rated = bigger
		rampFloor = bigger / 10
	}
	switch {
	case rampPerMin > 0:
		p.Ramp = float64(rampPerMin) / 60
	case fat > 0 && math.Max(p.MaxUp, p.MaxDown) > 0:
		p.Ramp = math.Max(p.MaxUp, p.MaxDown) / fat.Seconds()
	default:
		p.Ramp = rampFloor
	}
	return p
}

func orDefault(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// device is the physics of one unit type.
type device interface {
	// site is the rest of the metered site (W, net): a household's load
	// other than the device, or 0 when the meter sees the device alone.
	site(t time.Time) float64
	// base is the device's own power without orders at t; ordered says
	// whether an order runs now (a heat pump holds its rebound meanwhile).
	base(t time.Time, ordered bool) float64
	// bounds are the powers the device can run at now for dt seconds.
	bounds(t time.Time, dt float64) (lo, hi float64)
	// advance applies power p for dt seconds from t.
	advance(t time.Time, p, dt float64)
}

// limitCap is a limitation order's cap on the unit's net power: export at
// most Q (up) or import at most Q (down), followed at frac.
type limitCap struct {
	up   bool
	q    float64
	frac float64
}

// command is what the running orders ask of a unit at one instant.
type command struct {
	active bool
	delta  float64 // W: the sum of activation set-points (up positive), fractions applied
	caps   []limitCap
}

// Unit is one simulated flexible unit.
type Unit struct {
	ID        string
	Name      string
	Household string // the SGSC customer whose load the site carries ("" for PV and industrial)
	P         Params
	dev       device
	p         float64 // current device power
	dv        float64 // current deviation of p from the device's baseline
	// deviceMeter: the unit's meter measures the device alone (a
	// sub-meter at the battery, charger or heat pump), not the whole site.
	deviceMeter bool
	orders      []unitOrder
}

// unitOrder is an order as it reaches one unit: share of the quantity (a
// group's member gets its part).
type unitOrder struct {
	o     *order
	share float64
}

// NewUnit builds the unit for a registered resource. seed makes the
// unit's own variations (EV plug-in times, battery state of charge,
// process noise) repeatable.
func NewUnit(r *flexhub.Resource, prof *Profiles, seed int64) *Unit {
	p := ParamsFor(r)
	u := &Unit{ID: r.ID, Name: r.Name, P: p}
	rnd := func(what string) float64 { return unitRand(seed, r.ID, what) }
	hh := ""
	if p.Type != "pv_inverter" && p.Type != "industrial_process" {
		hh = prof.HouseholdFor(r.ID, r.Name)
	}
	u.Household = hh
	load := func(t time.Time) float64 { return prof.HouseholdLoad(hh, t) }
	switch p.Type {
	case "battery":
		u.dev = &battery{load: load, capWh: p.EnergyWh, pMax: p.Rated, soc: 0.4 + 0.3*rnd("soc"), socMin: 0.1, socMax: 0.95, eff: 0.95}
	case "ev_charger":
		u.dev = &evCharger{load: load, loc: prof.Loc, pMax: p.Rated, seed: seed, id: r.ID}
	case "heat_pump":
		u.dev = &heatPump{load: load, rated: p.Rated, share: heatPumpShare, maxDeficit: p.EnergyWh, tau: 1800}
	case "pv_inverter":
		u.dev = &pvInverter{share: prof.PVShare, peak: p.Rated}
	case "industrial_process":
		u.dev = &industrial{loc: prof.Loc, rated: p.Rated, seed: seed, id: r.ID}
	default:
		u.dev = &flexLoad{load: load, up: p.MaxUp, down: p.MaxDown}
	}
	return u
}

// Power returns the unit's current device power (W, + export).
func (u *Unit) Power() float64 { return u.p }

// Baseline returns the unit's metered net power at t without any order
// ever having run: the site (unless the meter sees the device alone) plus
// the device's own baseline (base with ordered set leaves out a heat
// pump's rebound from an earlier order's deficit, which is that order's
// effect, not the baseline).
func (u *Unit) Baseline(t time.Time) float64 { return u.metered(u.dev.site(t), u.dev.base(t, true)) }

// metered is what the unit's meter reads with the site at site and the
// device at p.
func (u *Unit) metered(site, p float64) float64 {
	if u.deviceMeter {
		return p
	}
	return site + p
}

// step runs the unit for dt seconds from t under command c and returns
// its net power. The deviation from the device's baseline moves toward
// what the orders ask at the unit's ramp rate; the device's bounds (state
// of charge, plugged-in, available sun, comfort) are hard.
func (u *Unit) step(t time.Time, dt float64, c command) float64 {
	site := u.dev.site(t)
	p0 := u.dev.base(t, c.active)
	lo, hi := u.dev.bounds(t, dt)
	want := 0.0
	if c.active {
		want = clamp(c.delta, -u.P.MaxDown, u.P.MaxUp)
	}
	for _, cp := range c.caps {
		net := u.metered(site, p0+want)
		if cp.up && net > cp.q {
			want -= (net - cp.q) * cp.frac
		}
		if !cp.up && net < -cp.q {
			want += (-cp.q - net) * cp.frac
		}
	}
	r := u.P.Ramp * dt
	d := u.dv + clamp(want-u.dv, -r, r)
	p := clamp(p0+d, lo, hi)
	u.dv = p - p0
	u.p = p
	u.dev.advance(t, p, dt)
	return u.metered(site, p)
}

// unitRand is a uniform number in [0, 1) fixed by the seed, the unit and
// what it is for.
func unitRand(seed int64, id, what string) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(what))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// battery is a home battery behind the household's meter: idle at
// baseline, charging or discharging within its power and between its
// state-of-charge limits, with a one-way efficiency.
type battery struct {
	load                     func(time.Time) float64
	capWh, pMax              float64
	soc, socMin, socMax, eff float64
}

func (b *battery) site(t time.Time) float64     { return -b.load(t) }
func (b *battery) base(time.Time, bool) float64 { return 0 }
func (b *battery) bounds(_ time.Time, dt float64) (float64, float64) {
	hi := math.Min(b.pMax, math.Max(0, (b.soc-b.socMin)*b.capWh*3600/dt*b.eff))
	lo := -math.Min(b.pMax, math.Max(0, (b.socMax-b.soc)*b.capWh*3600/dt/b.eff))
	return lo, hi
}
func (b *battery) advance(_ time.Time, p, dt float64) {
	wh := p * dt / 3600
	if p > 0 {
		b.soc -= wh / b.eff / b.capWh
	} else {
		b.soc -= wh * b.eff / b.capWh
	}
	b.soc = clamp(b.soc, b.socMin, b.socMax)
}

// SoC returns a battery unit's state of charge (0..1), or -1.
func (u *Unit) SoC() float64 {
	if b, ok := u.dev.(*battery); ok {
		return b.soc
	}
	return -1
}

// evCharger is a household's EV charger: the car is plugged in every
// evening (arrival between 17:00 and 20:00 local time, leaving between
// 06:30 and 08:30, each day drawn from the seed) and needs 6-30 kWh; at
// baseline it charges at full power from arrival until the need is met.
// Orders reduce (up) or raise (down) the charging power while plugged in;
// energy not charged now is charged later.
type evCharger struct {
	load      func(time.Time) float64
	loc       *time.Location
	pMax      float64
	seed      int64
	id        string
	sessStart time.Time
	needWh    float64
	chargedWh float64
}

// session returns the plug-in window covering t, if any, and the energy
// the car needs in it.
func (e *evCharger) session(t time.Time) (start, end time.Time, needWh float64, ok bool) {
	lt := t.In(e.loc)
	for back := 0; back < 2; back++ {
		d := time.Date(lt.Year(), lt.Month(), lt.Day()-back, 0, 0, 0, 0, e.loc)
		key := d.Format("2006-01-02")
		arr := 17*60 + int(180*unitRand(e.seed, e.id, "arrive "+key))
		dep := 6*60 + 30 + int(120*unitRand(e.seed, e.id, "depart "+key))
		start = time.Date(d.Year(), d.Month(), d.Day(), 0, arr, 0, 0, e.loc)
		end = time.Date(d.Year(), d.Month(), d.Day()+1, 0, dep, 0, 0, e.loc)
		if !t.Before(start) && t.Before(end) {
			return start, end, 6000 + 24000*unitRand(e.seed, e.id, "need "+key), true
		}
	}
	return time.Time{}, time.Time{}, 0, false
}

func (e *evCharger) remaining(t time.Time) (float64, bool) {
	start, _, need, ok := e.session(t)
	if !ok {
		return 0, false
	}
	if !start.Equal(e.sessStart) {
		e.sessStart, e.needWh, e.chargedWh = start, need, 0
	}
	return math.Max(0, e.needWh-e.chargedWh), true
}

func (e *evCharger) site(t time.Time) float64 { return -e.load(t) }
func (e *evCharger) base(t time.Time, _ bool) float64 {
	lo, _ := e.bounds(t, 1)
	return lo // dumb charging: as fast as it can
}
func (e *evCharger) bounds(t time.Time, dt float64) (float64, float64) {
	rem, ok := e.remaining(t)
	if !ok {
		return 0, 0
	}
	return -math.Min(e.pMax, rem*3600/dt), 0
}
func (e *evCharger) advance(t time.Time, p, dt float64) {
	if _, ok := e.remaining(t); ok {
		e.chargedWh += -p * dt / 3600
	}
}

// heatPump is a household's heat pump, a fixed share of the household's
// real load (so the site's baseline is the household's load unchanged).
// Running below its natural consumption builds a heat deficit, above it
// a surplus; once either reaches the comfort band (EnergyWh) it must run
// naturally again, so an activation longer than the band under-delivers.
// After an order the deficit is paid back (the rebound), decaying with a
// 30-minute time constant, at most at rated power.
type heatPump struct {
	load         func(time.Time) float64
	rated, share float64
	deficit      float64 // Wh of heat not delivered (negative: stored)
	maxDeficit   float64
	tau          float64 // s
}

func (h *heatPump) natural(t time.Time) float64 { return math.Min(h.rated, h.share*h.load(t)) }
func (h *heatPump) site(t time.Time) float64    { return -(h.load(t) - h.natural(t)) }
func (h *heatPump) base(t time.Time, ordered bool) float64 {
	n := h.natural(t)
	if ordered {
		return -n
	}
	return -clamp(n+h.deficit*3600/h.tau, 0, h.rated)
}
func (h *heatPump) bounds(t time.Time, _ float64) (float64, float64) {
	n := h.natural(t)
	lo, hi := -h.rated, 0.0
	if h.deficit >= h.maxDeficit {
		hi = -n
	}
	if h.deficit <= -h.maxDeficit {
		lo = -n
	}
	return lo, hi
}
func (h *heatPump) advance(t time.Time, p, dt float64) {
	h.deficit += (p + h.natural(t)) * dt / 3600
	if math.Abs(h.deficit) < 0.01 {
		h.deficit = 0
	}
}

// Deficit returns a heat pump's heat deficit in Wh (negative: surplus), or 0.
func (u *Unit) Deficit() float64 {
	if h, ok := u.dev.(*heatPump); ok {
		return h.deficit
	}
	return 0
}

// pvInverter is a rooftop PV inverter metered on its own: it feeds in
// what the sun gives (the real Ausgrid profile scaled to its peak) and can
// only curtail, down to zero.
type pvInverter struct {
	share func(time.Time) float64
	peak  float64
}

func (v *pvInverter) site(time.Time) float64           { return 0 }
func (v *pvInverter) base(t time.Time, _ bool) float64 { return v.peak * v.share(t) }
func (v *pvInverter) bounds(t time.Time, _ float64) (float64, float64) {
	return 0, v.base(t, false)
}
func (v *pvInverter) advance(time.Time, float64, float64) {}

// industrial is a process load metered on its own: two shifts on
// weekdays (06:00-22:00 local, 85 % of rated), 35 % at night, 25 % at
// weekends, each quarter hour varying a few percent (fixed by the seed),
// with a minimum of 20 % of rated it never sheds below. The shared data
// hold no industrial meter data, so this shape is synthetic.
type industrial struct {
	loc   *time.Location
	rated float64
	seed  int64
	id    string
}

func (x *industrial) level(q time.Time) float64 {
	lt := q.In(x.loc)
	h := lt.Hour()
	lvl := 0.35
	switch {
	case lt.Weekday() == time.Saturday || lt.Weekday() == time.Sunday:
		lvl = 0.25
	case h >= 6 && h < 22:
		lvl = 0.85
	}
	return lvl * (0.95 + 0.1*unitRand(x.seed, x.id, q.UTC().Format(time.RFC3339)))
}

func (x *industrial) load(t time.Time) float64 {
	q := t.Truncate(15 * time.Minute)
	f := t.Sub(q).Seconds() / 900
	return x.rated * (x.level(q)*(1-f) + x.level(q.Add(15*time.Minute))*f)
}

func (x *industrial) site(time.Time) float64           { return 0 }
func (x *industrial) base(t time.Time, _ bool) float64 { return -x.load(t) }
func (x *industrial) bounds(t time.Time, _ float64) (float64, float64) {
	return -x.rated, -math.Min(x.load(t), 0.2*x.rated)
}
func (x *industrial) advance(time.Time, float64, float64) {}

// flexLoad is an "other" unit: a device behind the household's meter that
// can move between MaxDown of extra consumption and MaxUp of less (or of
// feed-in), idle at baseline.
type flexLoad struct {
	load     func(time.Time) float64
	up, down float64
}

func (f *flexLoad) site(t time.Time) float64                     { return -f.load(t) }
func (f *flexLoad) base(time.Time, bool) float64                 { return 0 }
func (f *flexLoad) bounds(time.Time, float64) (float64, float64) { return -f.down, f.up }
func (f *flexLoad) advance(time.Time, float64, float64)          {}
