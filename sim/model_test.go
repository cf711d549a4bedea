package sim

import (
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/demo"
)

var sharedData = filepath.Join("..", "..", "shared", "data")

var (
	profOnce sync.Once
	prof     *Profiles
	profErr  error
)

func profiles(t testing.TB) *Profiles {
	t.Helper()
	profOnce.Do(func() { prof, profErr = LoadProfiles(sharedData, "") })
	if profErr != nil {
		t.Fatal(profErr)
	}
	return prof
}

func kwp(v float64) *flexhub.Power { return &flexhub.Power{Value: v, Unit: "kW"} }

func unit(id, typ string, tech flexhub.TechnicalData) *flexhub.Resource {
	return &flexhub.Resource{ID: id, Status: flexhub.ResourceActive,
		ResourceSpec: flexhub.ResourceSpec{Name: typ + " " + id, Kind: flexhub.ResourceUnit, UnitType: typ, Technical: tech}}
}

// day0 is local noon on a weekday in Sydney (Thursday 2026-11-26).
var day0 = time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)

func mkOrder(id, typ, res, dir string, from, to time.Time, watts int64) *flexhub.ActivationOrder {
	return &flexhub.ActivationOrder{ID: id, Type: typ, ResourceID: res, Direction: dir, Unit: "W",
		Setpoints: []flexhub.Setpoint{{Start: from, End: to, Quantity: watts}}}
}

// run advances f every step from..to and returns each resource's net
// power per interval (W, export positive).
func run(t *testing.T, f *Fleet, from, to time.Time) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	if f.next.IsZero() {
		f.Advance(from)
	}
	for now := f.next.Add(f.cfg.Resolution); !now.After(to); now = now.Add(f.cfg.Resolution) {
		tk := f.Advance(now)
		for _, b := range tk.Batches {
			for i := 0; i < len(b.Readings); i += 2 {
				imp, exp := b.Readings[i], b.Readings[i+1]
				if imp.Flow != "import" || exp.Flow != "export" || imp.Value < 0 || exp.Value < 0 || imp.Start != exp.Start {
					t.Fatalf("bad reading pair %+v %+v", imp, exp)
				}
				out[b.ResourceID] = append(out[b.ResourceID], (exp.Value-imp.Value)*1000)
			}
		}
	}
	return out
}

func TestBaselineIsTheRealProfile(t *testing.T) {
	p := profiles(t)
	day, err := demo.ReadMarketDay(sharedData, p.Date)
	if err != nil {
		t.Fatal(err)
	}
	// At each half hour's midpoint the profile is the measured average.
	for _, id := range p.HouseholdIDs[:5] {
		for i := 0; i < 48; i++ {
			mid := day.Start.Add(time.Duration(i)*30*time.Minute + 15*time.Minute)
			if got, want := p.HouseholdLoad(id, mid), float64(day.Load[id][2*i]); math.Abs(got-want) > 1e-6 {
				t.Fatalf("household %s half hour %d: %.1f W, measured %.1f W", id, i, got, want)
			}
		}
	}
	// A battery that receives no order streams its household's load:
	// every one-minute reading is the profile averaged over the minute.
	hh := p.HouseholdIDs[3]
	f, err := NewFleet([]*flexhub.Resource{unit("b1", "battery", flexhub.TechnicalData{MaxUp: kwp(3), MaxDown: kwp(3)})}, p, Config{Resolution: time.Minute, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.Units[0].Name = "Battery " + hh
	f.Units[0].Household = hh
	f.Units[0].dev.(*battery).load = func(t time.Time) float64 { return p.HouseholdLoad(hh, t) }
	start := day.Start
	nets := run(t, f, start, start.Add(24*time.Hour))["b1"]
	if len(nets) != 24*60 {
		t.Fatalf("%d readings over a day at PT1M", len(nets))
	}
	var sumSim, sumReal float64
	for k, net := range nets {
		from := start.Add(time.Duration(k) * time.Minute)
		avg := 0.0
		for s := 0; s < 60; s++ {
			avg += p.HouseholdLoad(hh, from.Add(time.Duration(s)*time.Second)) / 60
		}
		if math.Abs(-net-avg) > 0.51 {
			t.Fatalf("minute %d: streamed %.1f W import, profile %.1f W", k, -net, avg)
		}
		sumSim += -net / 60
	}
	for _, w := range day.Load[hh] {
		sumReal += float64(w) / 4
	}
	if math.Abs(sumSim-sumReal)/sumReal > 0.02 {
		t.Fatalf("day's energy %.0f Wh streamed, %.0f Wh measured", sumSim, sumReal)
	}

	// A PV inverter without orders feeds in the Ausgrid profile.
	pv, _ := NewFleet([]*flexhub.Resource{unit("pv", "pv_inverter", flexhub.TechnicalData{MaxDown: kwp(4)})}, p, Config{Resolution: 30 * time.Minute})
	nets = run(t, pv, start, start.Add(24*time.Hour))["pv"]
	peak := 0.0
	for k, net := range nets {
		mid := start.Add(time.Duration(k)*30*time.Minute + 15*time.Minute)
		if net < 0 || net > 4000 {
			t.Fatalf("PV half hour %d: %.0f W", k, net)
		}
		if want := 4000 * p.PV[k]; math.Abs(4000*p.PVShare(mid)-want) > 1e-6 {
			t.Fatalf("PV profile at midpoint %d: %.1f, measured %.1f", k, 4000*p.PVShare(mid), want)
		}
		peak = math.Max(peak, net)
	}
	if peak < 200 { // a winter day, cloudy: the real profile says 0.7 kW at best
		t.Fatalf("PV peak %.0f W on %s: no sun?", peak, p.PVDate)
	}
}

func TestRampIsRespected(t *testing.T) {
	p := profiles(t)
	for _, tc := range []struct {
		typ  string
		tech flexhub.TechnicalData
		ramp float64 // W/s
		dir  string
		q    int64
	}{
		{"battery", flexhub.TechnicalData{MaxUp: kwp(5), MaxDown: kwp(5), RampRate: &flexhub.Ramp{Value: 6, Unit: "kW/min"}}, 100, "up", 4000},
		{"industrial_process", flexhub.TechnicalData{MaxUp: kwp(200), MaxDown: kwp(50)}, 0.05 * 600000 / 60, "up", 150000},
		{"heat_pump", flexhub.TechnicalData{MaxUp: kwp(1), FullActivationTime: "PT5M"}, 1000.0 / 300, "up", 800},
		{"pv_inverter", flexhub.TechnicalData{MaxDown: kwp(5), FullActivationTime: "PT10S"}, 500, "down", 3000},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			r := unit("u-"+tc.typ, tc.typ, tc.tech)
			u := NewUnit(r, p, 1)
			if math.Abs(u.P.Ramp-tc.ramp) > 1e-9 {
				t.Fatalf("ramp %.3f W/s, want %.3f", u.P.Ramp, tc.ramp)
			}
			twin := NewUnit(r, p, 1)
			// Ask for what the unit can give now at most.
			if typ := tc.typ; typ == "heat_pump" {
				tc.q = min(tc.q, int64(0.8*u.dev.(*heatPump).natural(day0)))
			} else if typ == "pv_inverter" {
				tc.q = min(tc.q, int64(0.8*u.dev.base(day0, false)))
			}
			if tc.q < 100 {
				t.Fatalf("%s can give only %d W at %s", tc.typ, tc.q, day0)
			}
			o := &order{o: order0(tc.dir, tc.q), sign: map[string]float64{"up": 1, "down": -1}[tc.dir], frac: 1, state: "accepted"}
			u.orders = []unitOrder{{o: o, share: 1}}
			prev := 0.0
			reached := false
			for s := 0; s < 3600; s++ {
				at := day0.Add(time.Duration(s) * time.Second)
				net := u.step(at, 1, u.command(at))
				base := twin.step(at, 1, command{})
				dev := net - base
				// The deviation moves by at most the ramp per second
				// (plus the baseline's own drift between the two).
				if math.Abs(dev-prev) > tc.ramp+1e-6 {
					t.Fatalf("second %d: deviation jumped from %.1f to %.1f W (ramp %.1f W/s)", s, prev, dev, tc.ramp)
				}
				prev = dev
				want := float64(tc.q)
				if tc.dir == "down" {
					want = -want
				}
				if math.Abs(dev-want) < 1 {
					reached = true
				}
			}
			if !reached {
				t.Fatalf("never reached the set-point; last deviation %.1f W", prev)
			}
		})
	}
}

func order0(dir string, q int64) *flexhub.ActivationOrder {
	return mkOrder("o-"+dir, flexhub.OrderActivate, "", dir, day0, day0.Add(2*time.Hour), q)
}

func TestBatteryStateOfChargeLimits(t *testing.T) {
	p := profiles(t)
	u := NewUnit(unit("b", "battery", flexhub.TechnicalData{MaxUp: kwp(5), MaxDown: kwp(5), EnergyLimit: &flexhub.Energy{Value: 5, Unit: "kWh"}}), p, 7)
	b := u.dev.(*battery)
	for _, dir := range []string{"up", "down"} {
		o := &order{o: order0(dir, 5000), sign: map[string]float64{"up": 1, "down": -1}[dir], frac: 1, state: "accepted"}
		u.orders = []unitOrder{{o: o, share: 1}}
		var last float64
		for s := 0; s < 2*3600; s++ {
			at := day0.Add(time.Duration(s) * time.Second)
			u.step(at, 1, u.command(at))
			if b.soc < b.socMin-1e-12 || b.soc > b.socMax+1e-12 {
				t.Fatalf("%s: state of charge %.4f outside [%.2f, %.2f]", dir, b.soc, b.socMin, b.socMax)
			}
			if math.Abs(u.Power()) > 5000+1e-9 {
				t.Fatalf("%s: power %.0f W above 5 kW", dir, u.Power())
			}
			last = u.Power()
		}
		// Two hours at 5 kW empty (fill) a 5 kWh battery long before the
		// end: it stops at its limit.
		if dir == "up" && (math.Abs(b.soc-b.socMin) > 1e-9 || last != 0) {
			t.Fatalf("after discharging: soc %.4f, power %.0f W", b.soc, last)
		}
		if dir == "down" && (math.Abs(b.soc-b.socMax) > 1e-9 || last != 0) {
			t.Fatalf("after charging: soc %.4f, power %.0f W", b.soc, last)
		}
	}
}

func TestPVCurtailmentNeverNegative(t *testing.T) {
	p := profiles(t)
	r := unit("pv", "pv_inverter", flexhub.TechnicalData{MaxDown: kwp(5)})
	f, err := NewFleet([]*flexhub.Resource{r}, p, Config{Resolution: 10 * time.Second, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	from := day0.Add(-3 * time.Hour) // 09:00 local: the sun rises through the order
	f.Advance(from)
	if rep := f.Receive(mkOrder("up", flexhub.OrderActivate, "pv", "up", from, from.Add(time.Hour), 1000), from); rep[1].Status != flexhub.OrderRejected {
		t.Fatalf("a PV inverter asked to go up: %+v", rep)
	}
	// Ask for far more curtailment than the sun gives.
	if rep := f.Receive(mkOrder("down", flexhub.OrderActivate, "pv", "down", from.Add(time.Minute), from.Add(4*time.Hour), 20000), from); rep[1].Status != flexhub.OrderAccepted {
		t.Fatalf("curtailment: %+v", rep)
	}
	nets := run(t, f, from.Add(10*time.Second), from.Add(5*time.Hour))["pv"]
	curtailed := 0
	for k, net := range nets {
		if net < 0 {
			t.Fatalf("interval %d: PV net %.0f W", k, net)
		}
		at := from.Add(10*time.Second + time.Duration(k)*10*time.Second)
		if at.After(from.Add(2*time.Minute)) && at.Before(from.Add(4*time.Hour)) {
			if net != 0 {
				t.Fatalf("interval %d: %.0f W fed in while fully curtailed", k, net)
			}
			curtailed++
		}
	}
	if curtailed == 0 || nets[len(nets)-1] <= 0 {
		t.Fatalf("curtailed intervals %d, PV after the order %.0f W", curtailed, nets[len(nets)-1])
	}
	// A limit order (up) caps the export at its set-point.
	f2, _ := NewFleet([]*flexhub.Resource{r}, p, Config{Resolution: 10 * time.Second, Seed: 3})
	noon := day0.Add(time.Hour)
	f2.Advance(noon)
	f2.Receive(mkOrder("cap", flexhub.OrderLimit, "pv", "up", noon, noon.Add(time.Hour), 1500), noon)
	for k, net := range run(t, f2, noon.Add(10*time.Second), noon.Add(time.Hour))["pv"] {
		if k > 1 && (net > 1500.5 || net < 0) {
			t.Fatalf("interval %d under a 1.5 kW cap: %.0f W", k, net)
		}
	}
}

// delivered runs two identical fleets, one with the order, and returns the
// average deviation of the ordered resource over the order's second half.
func delivered(t *testing.T, rs []*flexhub.Resource, o *flexhub.ActivationOrder, cfg Config) float64 {
	p := profiles(t)
	with, err := NewFleet(rs, p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	without, _ := NewFleet(rs, p, cfg)
	from := o.First().Add(-time.Minute)
	with.Advance(from)
	without.Advance(from)
	rep := with.Receive(o, from)
	if len(rep) != 2 || rep[1].Status != flexhub.OrderAccepted {
		t.Fatalf("order not accepted: %+v", rep)
	}
	a := run(t, with, from.Add(cfg.Resolution), o.Last())[o.ResourceID]
	b := run(t, without, from.Add(cfg.Resolution), o.Last())[o.ResourceID]
	half := len(a) / 2
	sum := 0.0
	for k := half; k < len(a); k++ {
		sum += a[k] - b[k]
	}
	return sum / float64(len(a)-half)
}

func TestUnderDelivery(t *testing.T) {
	rs := []*flexhub.Resource{unit("b", "battery", flexhub.TechnicalData{MaxUp: kwp(5), MaxDown: kwp(5)})}
	o := mkOrder("o1", flexhub.OrderActivate, "b", "up", day0, day0.Add(15*time.Minute), 3000)
	full := delivered(t, rs, o, Config{Resolution: 10 * time.Second, Seed: 1})
	if math.Abs(full-3000) > 2 {
		t.Fatalf("delivered %.1f W of 3000", full)
	}
	part := delivered(t, rs, o, Config{Resolution: 10 * time.Second, Seed: 1, Faults: Faults{UnderDeliver: 1, DeliverFraction: 0.4}})
	if math.Abs(part-1200) > 2 {
		t.Fatalf("under-delivering at 0.4: %.1f W of 3000", part)
	}
	down := mkOrder("o2", flexhub.OrderActivate, "b", "down", day0, day0.Add(15*time.Minute), 2000)
	if d := delivered(t, rs, down, Config{Resolution: 10 * time.Second, Seed: 1}); math.Abs(d+2000) > 2 {
		t.Fatalf("down 2 kW: deviation %.1f W", d)
	}
}

func TestGroupOrderIsSplitOverItsMembers(t *testing.T) {
	rs := []*flexhub.Resource{
		unit("b1", "battery", flexhub.TechnicalData{MaxUp: kwp(2), MaxDown: kwp(2)}),
		unit("b2", "battery", flexhub.TechnicalData{MaxUp: kwp(6), MaxDown: kwp(6)}),
		{ID: "g", Status: flexhub.ResourceActive, ResourceSpec: flexhub.ResourceSpec{Name: "pool", Kind: flexhub.ResourceGroup, Members: []string{"b1", "b2"}}},
	}
	o := mkOrder("og", flexhub.OrderActivate, "g", "up", day0, day0.Add(15*time.Minute), 4000)
	if d := delivered(t, rs, o, Config{Resolution: 10 * time.Second, MeterGroups: true}); math.Abs(d-4000) > 3 {
		t.Fatalf("group delivered %.1f W of 4000", d)
	}
	o.ResourceID = "b1"
	o.ID = "ob1"
	// The unit alone delivers what it can: 2 kW of 4.
	if d := delivered(t, rs, o, Config{Resolution: 10 * time.Second, MeterGroups: true}); math.Abs(d-2000) > 3 {
		t.Fatalf("unit delivered %.1f W (its max is 2 kW)", d)
	}
}

func TestHeatPumpShedsThenRebounds(t *testing.T) {
	p := profiles(t)
	from := day0.Add(7 * time.Hour) // 18:00 local: the household (and its heat pump) runs
	// The household whose heat pump runs most through the hour.
	best, bestMin := "", 0.0
	for _, id := range p.HouseholdIDs {
		lo := math.Inf(1)
		for s := 0; s < 3600; s += 60 {
			lo = math.Min(lo, heatPumpShare*p.HouseholdLoad(id, from.Add(time.Duration(s)*time.Second)))
		}
		if lo > bestMin {
			best, bestMin = id, lo
		}
	}
	r := unit("hp", "heat_pump", flexhub.TechnicalData{MaxUp: kwp(1), FullActivationTime: "PT1M", MaxActivationDuration: "PT30M"})
	r.Name = "Heat pump " + best
	r.Technical.MaxActivationDuration = "PT2H"
	u := NewUnit(r, p, 1)
	twin := NewUnit(r, p, 1)
	h := u.dev.(*heatPump)
	q := int64(0.8 * bestMin)
	if u.Household != best || q < 100 {
		t.Fatalf("household %s (want %s), %d W to shed", u.Household, best, q)
	}
	o := &order{o: mkOrder("hp", flexhub.OrderActivate, "hp", "up", from, from.Add(time.Hour), q), sign: 1, frac: 1, state: "accepted"}
	u.orders = []unitOrder{{o: o, share: 1}}
	var shed, rebound float64
	for s := 0; s < 3*3600; s++ {
		at := from.Add(time.Duration(s) * time.Second)
		dev := u.step(at, 1, u.command(at)) - twin.step(at, 1, command{})
		if s > 120 && s < 3600 && math.Abs(dev-float64(q)) > 1 {
			t.Fatalf("second %d: shedding %.1f W of %d", s, dev, q)
		}
		if s < 3600 {
			shed += dev / 3600
		} else {
			rebound += dev / 3600
		}
	}
	// Its comfort band (1 kW × 2 h = 2 kWh) holds the hour; afterwards it
	// pays the heat back.
	if shed < 0.9*float64(q) || rebound > -0.8*shed || math.Abs(h.deficit) > 0.1*shed {
		t.Fatalf("shed %.0f Wh, rebound %.0f Wh, deficit left %.0f Wh", shed, rebound, h.deficit)
	}
	// A long deep activation hits the comfort band (2 kW × 30 min = 1 kWh)
	// and under-delivers.
	r.Technical.MaxUp = kwp(2)
	r.Technical.MaxActivationDuration = "PT30M"
	u2 := NewUnit(r, p, 1)
	o2 := &order{o: mkOrder("hp2", flexhub.OrderActivate, "hp", "up", from, from.Add(2*time.Hour), 1000), sign: 1, frac: 1, state: "accepted"}
	u2.orders = []unitOrder{{o: o2, share: 1}}
	for s := 0; s < 2*3600; s++ {
		at := from.Add(time.Duration(s) * time.Second)
		u2.step(at, 1, u2.command(at))
		if d := u2.dev.(*heatPump).deficit; d > u2.P.EnergyWh+1 {
			t.Fatalf("deficit %.0f Wh beyond the comfort band %.0f", d, u2.P.EnergyWh)
		}
	}
	at := from.Add(2*time.Hour - time.Second)
	if nat := u2.dev.(*heatPump).natural(at); math.Abs(u2.Power()+nat) > 1 {
		t.Fatalf("at the comfort limit the heat pump runs %.0f W, natural %.0f W", -u2.Power(), nat)
	}
}

func TestEVChargerWindows(t *testing.T) {
	p := profiles(t)
	r := unit("ev", "ev_charger", flexhub.TechnicalData{MaxUp: kwp(7.4), MaxDown: kwp(7.4)})
	u := NewUnit(r, p, 5)
	e := u.dev.(*evCharger)
	midnight := time.Date(2026, 11, 26, 0, 0, 0, 0, p.Loc)
	start, end, need, ok := e.session(midnight.Add(21 * time.Hour))
	if !ok || start.Hour() < 17 || start.Hour() >= 20 || end.Hour() < 6 || end.Hour() > 8 || need < 6000 || need > 30000 {
		t.Fatalf("evening session %s-%s %.0f Wh ok=%v", start, end, need, ok)
	}
	if _, _, _, ok := e.session(midnight.Add(12 * time.Hour)); ok {
		t.Fatal("plugged in at noon")
	}
	// Noon: nothing to charge, nothing to shift; an order there changes nothing.
	if lo, hi := e.bounds(midnight.Add(12*time.Hour), 1); lo != 0 || hi != 0 {
		t.Fatalf("bounds at noon %.0f..%.0f", lo, hi)
	}
	// From arrival it charges at full power until the need is met; an up
	// order pauses part of it, which is charged later.
	o := &order{o: mkOrder("ev", flexhub.OrderActivate, "ev", "up", start, start.Add(30*time.Minute), 4000), sign: 1, frac: 1, state: "accepted"}
	u.orders = []unitOrder{{o: o, share: 1}}
	twin := NewUnit(r, p, 5)
	var eU, eT float64
	for s := 0; s < 12*3600; s++ {
		at := start.Add(time.Duration(s) * time.Second)
		a := u.step(at, 1, u.command(at)) - u.dev.site(at)
		b := twin.step(at, 1, command{}) - twin.dev.site(at)
		if s > 10 && s < 1800 && math.Abs((a-b)-4000) > 1 {
			t.Fatalf("second %d: charging reduced by %.0f W, want 4000", s, a-b)
		}
		if a > 0 || a < -7400 {
			t.Fatalf("charger at %.0f W", a)
		}
		eU, eT = eU-a/3600, eT-b/3600
	}
	if math.Abs(eU-need) > 1 || math.Abs(eT-need) > 1 {
		t.Fatalf("charged %.0f and %.0f Wh, need %.0f", eU, eT, need)
	}
}

func TestIndustrialIsLargeAndSlow(t *testing.T) {
	p := profiles(t)
	rs := []*flexhub.Resource{unit("ind", "industrial_process", flexhub.TechnicalData{MaxUp: kwp(300), MaxDown: kwp(100)})}
	o := mkOrder("oi", flexhub.OrderActivate, "ind", "up", day0, day0.Add(time.Hour), 250000)
	cfg := Config{Resolution: time.Minute, Seed: 2}
	f, _ := NewFleet(rs, p, cfg)
	u := f.Units[0]
	if base := -u.Baseline(day0); base < 600000 || base > 900000 {
		t.Fatalf("weekday noon load %.0f W of 900 kW rated", base)
	}
	if d := delivered(t, rs, o, cfg); math.Abs(d-250000) > 100 {
		t.Fatalf("delivered %.0f W of 250 kW", d)
	}
	// 5 % of 900 kW per minute: 250 kW take over five minutes.
	if u.P.Ramp*60 != 45000 {
		t.Fatalf("ramp %.0f W/min", u.P.Ramp*60)
	}
}

func TestDeterministicWithSeed(t *testing.T) {
	p := profiles(t)
	rs := []*flexhub.Resource{
		unit("b", "battery", flexhub.TechnicalData{MaxUp: kwp(3), MaxDown: kwp(3)}),
		unit("ev", "ev_charger", flexhub.TechnicalData{}),
		unit("hp", "heat_pump", flexhub.TechnicalData{MaxUp: kwp(1)}),
		unit("pv", "pv_inverter", flexhub.TechnicalData{MaxDown: kwp(4)}),
		unit("ind", "industrial_process", flexhub.TechnicalData{}),
	}
	faults := Faults{NoAck: 0.2, Reject: 0.2, UnderDeliver: 0.3, Drop: 0.2}
	play := func(seed int64) (map[string][]float64, [][]Report) {
		f, err := NewFleet(rs, p, Config{Resolution: 10 * time.Second, Seed: seed, Faults: faults})
		if err != nil {
			t.Fatal(err)
		}
		from := day0.Add(6 * time.Hour)
		f.Advance(from)
		var reps [][]Report
		for i, id := range []string{"b", "ev", "hp", "ind", "b", "hp"} {
			dir := "up"
			if i == 4 {
				dir = "down"
			}
			s := from.Add(time.Duration(i) * 10 * time.Minute)
			reps = append(reps, f.Receive(mkOrder(id+string(rune('0'+i)), flexhub.OrderActivate, id, dir, s, s.Add(30*time.Minute), 500), from))
		}
		return run(t, f, from.Add(10*time.Second), from.Add(2*time.Hour)), reps
	}
	a, ra := play(42)
	b, rb := play(42)
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ra, rb) {
		t.Fatal("two runs with the same seed differ")
	}
	c, rc := play(43)
	if reflect.DeepEqual(a["ev"], c["ev"]) && reflect.DeepEqual(ra, rc) {
		t.Fatal("another seed changes nothing")
	}
}

func TestOrdersDeduplicatedEndedAndFaulted(t *testing.T) {
	p := profiles(t)
	rs := []*flexhub.Resource{unit("b", "battery", flexhub.TechnicalData{MaxUp: kwp(5), MaxDown: kwp(5)})}
	f, _ := NewFleet(rs, p, Config{Resolution: 10 * time.Second, Seed: 9})
	from := day0
	f.Advance(from)
	o := mkOrder("o1", flexhub.OrderActivate, "b", "up", from.Add(time.Minute), from.Add(time.Hour), 2000)
	if rep := f.Receive(o, from); len(rep) != 2 || rep[0].Status != "received" || rep[1].Status != "accepted" || rep[0].OrderID != "o1" {
		t.Fatalf("first delivery: %+v", rep)
	}
	if rep := f.Receive(o, from.Add(time.Second)); rep != nil {
		t.Fatalf("resent order answered again: %+v", rep)
	}
	if f.C.Duplicates.Load() != 1 || f.C.Orders.Load() != 1 {
		t.Fatalf("counters: %d orders, %d duplicates", f.C.Orders.Load(), f.C.Duplicates.Load())
	}
	// An end order stops it ten minutes in; nothing runs after that.
	end := &flexhub.ActivationOrder{ID: "e1", Type: flexhub.OrderEnd, ResourceID: "b", EndsOrderID: "o1", Direction: "up", Unit: "W",
		Setpoints: []flexhub.Setpoint{{Start: from.Add(10 * time.Minute), End: from.Add(time.Hour)}}}
	if rep := f.Receive(end, from); len(rep) != 2 || rep[1].Status != "accepted" {
		t.Fatalf("end order: %+v", rep)
	}
	twin, _ := NewFleet(rs, p, Config{Resolution: 10 * time.Second, Seed: 9})
	var statuses []string
	f.Advance(from)
	twin.Advance(from)
	for now := from.Add(10 * time.Second); !now.After(from.Add(30 * time.Minute)); now = now.Add(10 * time.Second) {
		a, b := f.Advance(now), twin.Advance(now)
		for _, r := range a.Reports {
			statuses = append(statuses, r.Status)
		}
		dev := (a.Batches[0].Readings[1].Value - a.Batches[0].Readings[0].Value) - (b.Batches[0].Readings[1].Value - b.Batches[0].Readings[0].Value)
		start, _ := time.Parse(time.RFC3339, a.Batches[0].Readings[0].Start)
		if start.After(from.Add(11*time.Minute)) && math.Abs(dev) > 0.001 {
			t.Fatalf("%s: still deviating %.3f kW after the end order", start, dev)
		}
		if start.After(from.Add(3*time.Minute)) && start.Before(from.Add(10*time.Minute)) && math.Abs(dev-2) > 0.001 {
			t.Fatalf("%s: deviating %.3f kW, want 2", start, dev)
		}
	}
	// It was executing, then ended by flexhub: no "completed" from the FSP.
	if !reflect.DeepEqual(statuses, []string{"executing"}) {
		t.Fatalf("reports during the run: %v", statuses)
	}

	// Faults: every order is swallowed, or rejected with a reason.
	g, _ := NewFleet(rs, p, Config{Seed: 9, Faults: Faults{NoAck: 1}})
	if rep := g.Receive(mkOrder("x", flexhub.OrderActivate, "b", "up", from.Add(time.Minute), from.Add(time.Hour), 1000), from); rep != nil || g.C.Ignored.Load() != 1 {
		t.Fatalf("no-ack fault answered: %+v", rep)
	}
	h, _ := NewFleet(rs, p, Config{Seed: 9, Faults: Faults{Reject: 1}})
	rep := h.Receive(mkOrder("x", flexhub.OrderActivate, "b", "up", from.Add(time.Minute), from.Add(time.Hour), 1000), from)
	if len(rep) != 2 || rep[1].Status != "rejected" || rep[1].Reason == "" {
		t.Fatalf("reject fault: %+v", rep)
	}
	// Natural rejections: unknown resource, reactive power, too late.
	for _, o := range []*flexhub.ActivationOrder{
		mkOrder("u1", flexhub.OrderActivate, "nope", "up", from.Add(time.Minute), from.Add(time.Hour), 1000),
		{ID: "u2", Type: flexhub.OrderActivate, ResourceID: "b", Direction: "up", Unit: "var", Setpoints: []flexhub.Setpoint{{Start: from.Add(time.Minute), End: from.Add(time.Hour), Quantity: 1}}},
		mkOrder("u3", flexhub.OrderActivate, "b", "up", from.Add(-time.Hour), from.Add(-time.Minute), 1000),
	} {
		if rep := f.Receive(o, from); len(rep) != 2 || rep[1].Status != "rejected" || rep[1].Reason == "" {
			t.Fatalf("%s: %+v", o.ID, rep)
		}
	}
}

func TestCompletedAndDropPlanned(t *testing.T) {
	p := profiles(t)
	rs := []*flexhub.Resource{unit("b", "battery", flexhub.TechnicalData{MaxUp: kwp(5), MaxDown: kwp(5)})}
	f, _ := NewFleet(rs, p, Config{Resolution: 10 * time.Second, Seed: 9, Faults: Faults{Drop: 1, DropFor: 20 * time.Second}})
	f.Advance(day0)
	f.Receive(mkOrder("o", flexhub.OrderActivate, "b", "up", day0.Add(time.Minute), day0.Add(11*time.Minute), 1000), day0)
	var statuses []string
	drops := 0
	for now := day0.Add(10 * time.Second); !now.After(day0.Add(15 * time.Minute)); now = now.Add(10 * time.Second) {
		tk := f.Advance(now)
		for _, r := range tk.Reports {
			statuses = append(statuses, r.Status)
		}
		if tk.Drop > 0 {
			drops++
			if tk.Drop != 20*time.Second || now.Before(day0.Add(time.Minute)) || now.After(day0.Add(11*time.Minute)) {
				t.Fatalf("drop %s at %s", tk.Drop, now)
			}
		}
	}
	if !reflect.DeepEqual(statuses, []string{"executing", "completed"}) || drops != 1 {
		t.Fatalf("reports %v, drops %d", statuses, drops)
	}
	if f.C.Executing.Load() != 0 || f.C.Completed.Load() != 1 || len(f.Units[0].orders) != 0 {
		t.Fatalf("executing %d completed %d, orders left on the unit %d", f.C.Executing.Load(), f.C.Completed.Load(), len(f.Units[0].orders))
	}
}

// TestDeviceMetering: with a sub-meter at the device, a battery streams
// its own power only — nothing while idle, the set-point while ordered —
// where the site meter streams the household's load around it; the two
// differ by exactly the load, and a bad setting is refused.
func TestDeviceMetering(t *testing.T) {
	p := profiles(t)
	r := unit("b-dev", "battery", flexhub.TechnicalData{MaxUp: kwp(5), MaxDown: kwp(5), FullActivationTime: "PT1S"})
	fleets := map[string]*Fleet{}
	for _, m := range []string{MeterSite, MeterDevice} {
		f, err := NewFleet([]*flexhub.Resource{r}, p, Config{Resolution: time.Minute, Seed: 1, Metering: m})
		if err != nil {
			t.Fatal(err)
		}
		u := f.Units[0]
		u.orders = []unitOrder{{o: &order{o: mkOrder("o-dev", flexhub.OrderActivate, "", "up", day0.Add(time.Hour), day0.Add(2*time.Hour), 3000),
			sign: 1, frac: 1, state: "accepted"}, share: 1}}
		fleets[m] = f
	}
	site := run(t, fleets[MeterSite], day0, day0.Add(3*time.Hour))["b-dev"]
	dev := run(t, fleets[MeterDevice], day0, day0.Add(3*time.Hour))["b-dev"]
	if len(site) != 180 || len(dev) != 180 {
		t.Fatalf("%d and %d readings over three hours at PT1M", len(site), len(dev))
	}
	for k := range 180 {
		at := day0.Add(time.Duration(k) * time.Minute)
		want := 0.0
		if k >= 61 && k < 120 { // the first minute of the order ramps
			want = 3000
		}
		if k != 60 && math.Abs(dev[k]-want) > 1 {
			t.Fatalf("minute %d: the device meter reads %.1f W, want %.0f", k, dev[k], want)
		}
		load := 0.0
		for s := range 60 {
			load += p.HouseholdLoad(fleets[MeterSite].Units[0].Household, at.Add(time.Duration(s)*time.Second)) / 60
		}
		if math.Abs(dev[k]-site[k]-load) > 0.51 {
			t.Fatalf("minute %d: device %.1f W, site %.1f W, household load %.1f W", k, dev[k], site[k], load)
		}
	}
	if b := fleets[MeterDevice].Units[0].Baseline(day0); b != 0 {
		t.Errorf("an idle battery's device baseline is %.1f W", b)
	}
	if _, err := NewFleet(nil, p, Config{Metering: "household"}); err == nil || !strings.Contains(err.Error(), "site or device") {
		t.Errorf("metering household: %v", err)
	}
}
