package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/clearing"
	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/gridops"
	"github.com/flexhub/flexhub/powerflow"
	"github.com/flexhub/flexhub/sqlite"
)

// The TSO–DSO coordination comparison of `flexhub demo` (issue 7, item 7;
// docs/COORDINATION.md "The demo: the schemes compared"). On the real
// lv_schutterwald grid with the SGSC households' evening of 2013-06-10
// (undervoltage 17:30–19:30), a DSO needs upward flexibility where its
// forecast says, and a TSO needs mFRR down (batteries charging) at the
// same time from the same household batteries. Each coordination scheme
// runs in a fresh, temporary SQLite store through the service's public
// methods (the calls the REST API makes), and the outcome of each is
// printed in one table with the grid before and after.

// coordinationSchemes are the schemes compared, each in its own store.
var coordinationSchemes = []string{flexhub.CoordinationDSOApproval, flexhub.CoordinationDSOFirst, flexhub.CoordinationCommon}

// referenceScheme labels the row computed outside the product.
const referenceScheme = "no coordination (reference)"

// demoCoordination is `flexhub demo`'s coordination part.
type demoCoordination struct {
	off       bool
	batteries int
}

func (d *demoCoordination) flags(fs *flag.FlagSet) {
	fs.BoolVar(&d.off, "no-coordination", false, "skip the TSO–DSO coordination comparison on lv_schutterwald")
	fs.IntVar(&d.batteries, "coordination-batteries", defaultCoordOptions().Batteries, "household batteries (5 kW) in the coordination comparison, placed at distinct load buses")
}

// options are the comparison's options from the flags.
func (d *demoCoordination) options() (coordOptions, error) {
	o := defaultCoordOptions()
	if d.batteries < 1 {
		return o, usageError{fmt.Sprintf("--coordination-batteries %d: at least 1", d.batteries)}
	}
	o.Batteries = d.batteries
	return o, nil
}

// coordOptions set up the comparison's scenario.
type coordOptions struct {
	Batteries int     // household batteries, 5 kW up and down each
	Seed      uint64  // placement and prices
	TSOKW     float64 // the TSO's mFRR need per quarter hour
	// TSODirection is the TSO's need: down (batteries charging, the
	// demo's) or up (the same direction as the DSO's: the tests use it
	// to make both buyers want the same batteries).
	TSODirection string
	Schemes      []string
}

func defaultCoordOptions() coordOptions {
	return coordOptions{Batteries: 150, Seed: 7, TSOKW: 300, TSODirection: "down", Schemes: coordinationSchemes}
}

const (
	batteryW      = 5000 // each battery's max_up and max_down
	minBidW       = 1000 // products' minimum bid size and every bid's min_quantity
	forecastFrom  = 64   // 16:00, the forecast's first quarter hour of the day
	forecastCount = 16   // 16:00–20:00
	needFrom      = 70   // 17:30, the TSO's need (the evening's undervoltage)
	needCount     = 8    // 17:30–19:30
	quarterSecs   = 900
)

// CoordinationReport is the comparison, as `flexhub demo --json` carries it.
type CoordinationReport struct {
	Grid        string `json:"grid"`
	Forecast    string `json:"forecast" doc:"what the DSO's forecast is made of"`
	Window      string `json:"window" doc:"the forecast's intervals (UTC)"`
	Batteries   int    `json:"batteries"`
	TSONeed     string `json:"tso_need" doc:"the TSO's mFRR need per quarter hour and its direction"`
	BatteryW    int64  `json:"battery_w" doc:"each battery's capability up and down"`
	Seed        uint64 `json:"seed"`
	GridNeeds   int    `json:"grid_needs" doc:"needs the DSO's forecast gives (GET needs)"`
	Unpublished int    `json:"unpublished_grid_needs" doc:"of those, needs with no battery at their buses: not published"`
	// Rows: one per scheme, then the reference computed outside the product.
	Rows []CoordinationRow `json:"rows"`
}

// CoordinationRow is one scheme's outcome. Quantities are W summed over
// the quarter hours (divide by 4 for the energy in Wh).
type CoordinationRow struct {
	Scheme     string        `json:"scheme"`
	Reference  bool          `json:"reference,omitempty" doc:"computed outside flexhub: each buyer's merit order alone, ignoring the grid and the other buyer"`
	DSONeedW   int64         `json:"dso_need_w"`
	DSOBoughtW int64         `json:"dso_bought_w"`
	DSOShortW  int64         `json:"dso_shortfall_w"`
	TSONeedW   int64         `json:"tso_need_w"`
	TSOBoughtW int64         `json:"tso_bought_w"`
	TSOShortW  int64         `json:"tso_shortfall_w"`
	DSOCost    flexhub.Money `json:"dso_cost"`
	TSOCost    flexhub.Money `json:"tso_cost"`
	TotalCost  flexhub.Money `json:"total_cost"`
	SoldTwiceW int64         `json:"sold_twice_w" doc:"obligations beyond a battery's capability, both buyers and directions, summed over batteries and quarter hours"`
	DSOBids    int           `json:"dso_bids"`
	TSOBids    int           `json:"tso_bids"`
	Refused    int           `json:"refused_bids" doc:"bids the DSO's traffic light refused (red, or amber below the bid's minimum)"`
	// Shared counts the batteries the DSO bought some of whose TSO bid
	// still reached the TSO's session: those dso_first cuts.
	Shared int         `json:"dso_bought_offered_to_tso" doc:"batteries the DSO bought that still had a bid in the TSO's session"`
	Before GridSummary `json:"before"`
	After  GridSummary `json:"after"`
}

// GridSummary is the grid over the forecast's intervals.
type GridSummary struct {
	Violations int     `json:"violations" doc:"violated bus voltages and line/transformer loadings, counted per interval"`
	MinVmPU    float64 `json:"min_vm_pu"`
	MinVmBus   string  `json:"min_vm_bus"`
	Worst      string  `json:"worst" doc:"the worst violation (voltage excess in % of nominal against loading excess in points)"`
	// Worse counts what the obligations did to the forecast: limits the
	// forecast keeps that are now broken, and violations now deeper, by
	// more than the grid clearing's AC tolerance (0.001 p.u., 0.5 %).
	Worse int `json:"worse" doc:"limit-intervals broken anew or deeper than forecast (beyond 0.001 p.u. or 0.5 % loading); 0 for the forecast itself"`
}

// coordScenario is what every scheme shares: the grid, the forecast, the
// batteries and their prices.
type coordScenario struct {
	opt      coordOptions
	file     []byte
	net      *grid.Network
	model    *powerflow.Model
	analyser *gridops.Analyser
	day      time.Time // the market day (UTC midnight)
	source   string
	series   []flexhub.GridForecastSeries
	p, q     [][]float64 // per forecast interval, MW/Mvar per bus, as the service builds it
	bus      []string    // battery i's bus
	dsoPrice []string    // EUR/MW/h
	tsoPrice []string
	before   []*gridops.State // the forecast's states, once computed
}

// newCoordScenario reads the grid and the meter data and places the
// batteries. The market day is tomorrow (UTC).
func newCoordScenario(dataDir string, opt coordOptions) (*coordScenario, error) {
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	path := filepath.Join(dataDir, "grids", "pandapower", "lv_schutterwald.json")
	file, err := os.ReadFile(path) // kept: each scheme's store gets it uploaded
	if err != nil {
		return nil, err
	}
	net, err := grid.ReadPandapower(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	hh, err := readHouseholds(filepath.Join(dataDir, "meter", "sgsc_25_households_halfhourly.csv.gz"))
	if err != nil {
		return nil, err
	}
	replay, err := hh.EveningPeakDay()
	if err != nil {
		return nil, err
	}
	kw, err := hh.DayKW(replay)
	if err != nil {
		return nil, err
	}
	pv, pd, err := readPVPerKWp(filepath.Join(dataDir, "meter", "ausgrid_solar_home_customer12_2011-2012.csv"), replay)
	if err != nil {
		return nil, err
	}
	// As `flexhub grid analyse` builds it (cmd/flexhub/grid.go): load i
	// follows household i mod 25, 5 kWp PV on 30 % of the loads. The
	// scenario without PV gives each bus's load, the difference its PV.
	withPV, err := gridops.HouseholdScenario{Start: replay, HouseholdsKW: kw, PVPerKWp: pv, PVShare: 0.3, PVKWp: 5}.Forecast(net)
	if err != nil {
		return nil, err
	}
	noPV, err := gridops.HouseholdScenario{Start: replay, HouseholdsKW: kw}.Forecast(net)
	if err != nil {
		return nil, err
	}
	m, err := powerflow.Compile(net)
	if err != nil {
		return nil, err
	}
	a, err := gridops.New(m, gridops.DefaultLimits(), powerflow.Options{})
	if err != nil {
		return nil, err
	}
	sc := &coordScenario{opt: opt, file: file, net: net, model: m, analyser: a, day: day,
		source: fmt.Sprintf("%d SGSC households of %s on the %d loads, 5 kWp PV on 30 %% of them (Ausgrid solar home, %s), replayed on %s",
			len(kw), replay.Format("2006-01-02"), len(net.Loads), pd.Format("2006-01-02"), day.Format("2006-01-02"))}
	idx := net.BusIndex()
	var loadBuses []string
	seen := map[string]bool{}
	baseP, baseQ := make([]float64, len(net.Buses)), make([]float64, len(net.Buses))
	for _, l := range net.Loads {
		baseP[idx[l.Bus]] += l.PMW
		baseQ[idx[l.Bus]] += l.QMvar
		if !seen[l.Bus] {
			seen[l.Bus] = true
			loadBuses = append(loadBuses, l.Bus)
		}
	}
	for _, b := range loadBuses {
		i := idx[b]
		sr := flexhub.GridForecastSeries{BusID: b, Unit: "kW", Load: make([]float64, forecastCount)}
		var gen []float64
		for k := range forecastCount {
			load := -noPV.Intervals[forecastFrom+k].PMW[i] * 1000
			sr.Load[k] = load
			if g := (withPV.Intervals[forecastFrom+k].PMW[i] - noPV.Intervals[forecastFrom+k].PMW[i]) * 1000; g > 1e-9 {
				if gen == nil {
					gen = make([]float64, forecastCount)
				}
				gen[k] = g
			}
		}
		sr.Generation = gen
		sc.series = append(sc.series, sr)
	}
	// The operating states exactly as the service computes them from the
	// uploaded series (app/gridforecast.go): loads and PV replace the
	// model's at each bus, reactive power at the bus's base power factor;
	// the model has no generators of its own.
	for k := range forecastCount {
		p, q := make([]float64, len(net.Buses)), make([]float64, len(net.Buses))
		for j := range sc.series {
			sr := &sc.series[j]
			i := idx[sr.BusID]
			lp := sr.MW(sr.Load[k])
			gp := 0.0
			if sr.Generation != nil {
				gp = sr.MW(sr.Generation[k])
			}
			ratio := 0.0
			if baseP[i] != 0 {
				ratio = baseQ[i] / baseP[i]
			}
			p[i], q[i] = gp-lp, -lp*ratio
		}
		sc.p, sc.q = append(sc.p, p), append(sc.q, q)
	}
	// Batteries at distinct load buses drawn over the whole grid; prices
	// in whole cents, DSO 100–200 and TSO 40–120 EUR/MW/h.
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5c4077e7a1d))
	if opt.Batteries > len(loadBuses) {
		return nil, usageError{fmt.Sprintf("--coordination-batteries %d: lv_schutterwald has %d load buses, one battery each at most", opt.Batteries, len(loadBuses))}
	}
	perm := rng.Perm(len(loadBuses))[:opt.Batteries]
	sort.Ints(perm)
	for _, j := range perm {
		sc.bus = append(sc.bus, loadBuses[j])
		sc.dsoPrice = append(sc.dsoPrice, cents(10000+rng.IntN(10001)))
		sc.tsoPrice = append(sc.tsoPrice, cents(4000+rng.IntN(8001)))
	}
	return sc, nil
}

func cents(c int) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

func (sc *coordScenario) at(k int) time.Time {
	return sc.day.Add(time.Duration(forecastFrom+k) * 15 * time.Minute)
}

// plannedBid is a bid as the FSP prepares it, before flexhub sees it.
type plannedBid struct {
	battery int
	need    int // index into the scheme's DSO needs; -1 for the TSO's
	price   string
	starts  []time.Time
}

// plannedNeed is a published need and its per-interval quantities (W).
type plannedNeed struct {
	starts   []time.Time
	demand   []int64
	maxPrice string
}

// schemeRun is one scheme's run: the row and what the reference reuses.
type schemeRun struct {
	row      CoordinationRow
	dsoNeeds []plannedNeed
	tsoNeed  plannedNeed
	bids     []plannedBid
	// from the service: results of both sessions, for the tests' checks
	dsoResults, tsoResults *app.SessionResults
	batteryID              []string
	gridNeeds              int
	unpublished            int
	forecast               *flexhub.GridForecast
	sc                     *coordScenario
	ob                     *obligations
	refOb                  *obligations // the reference's, on the first run
}

// runCoordination runs every scheme and the reference.
func runCoordination(ctx context.Context, sc *coordScenario, progress io.Writer) (*CoordinationReport, []*schemeRun, error) {
	opt := sc.opt
	fmt.Fprintf(progress, "TSO–DSO coordination on lv_schutterwald (%d batteries, seed %d): one fresh store per scheme\n", opt.Batteries, opt.Seed)
	rep := &CoordinationReport{Grid: "lv_schutterwald (pandapower, " + fmt.Sprint(len(sc.net.Buses)) + " buses)", Forecast: sc.source,
		Window:    sc.at(0).Format("2006-01-02 15:04") + "–" + sc.at(forecastCount).Format("15:04") + " UTC",
		Batteries: opt.Batteries, BatteryW: batteryW, Seed: opt.Seed, TSONeed: fmt.Sprintf("%g kW %s", opt.TSOKW, opt.TSODirection)}
	var runs []*schemeRun
	for _, scheme := range opt.Schemes {
		start := time.Now()
		fmt.Fprintf(progress, "  %s: fresh store, register, grid model, forecast, needs, bids, clearing ...\n", scheme)
		r, err := runScheme(ctx, sc, scheme, progress)
		if err != nil {
			return nil, nil, fmt.Errorf("coordination %s: %w", scheme, err)
		}
		fmt.Fprintf(progress, "  %s: done in %s\n", scheme, time.Since(start).Round(100*time.Millisecond))
		runs = append(runs, r)
		rep.Rows = append(rep.Rows, r.row)
	}
	if len(runs) == 0 {
		return rep, runs, nil
	}
	rep.GridNeeds, rep.Unpublished = runs[0].gridNeeds, runs[0].unpublished
	fmt.Fprintf(progress, "  %s: each buyer's merit order alone (clearing package, no grid)\n", referenceScheme)
	ref, err := sc.reference(runs[0])
	if err != nil {
		return nil, nil, fmt.Errorf("reference: %w", err)
	}
	rep.Rows = append(rep.Rows, *ref)
	return rep, runs, nil
}

// runScheme sets up a fresh store and runs one scheme through the service.
func runScheme(ctx context.Context, sc *coordScenario, scheme string, progress io.Writer) (*schemeRun, error) {
	dir, err := os.MkdirTemp("", "flexhub-coordination-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "flexhub.db"), true)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	svc := app.New(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var offset time.Duration
	svc.SetClock(func() time.Time { return time.Now().UTC().Add(offset).Truncate(time.Microsecond) })
	if _, err := svc.Bootstrap(ctx, ""); err != nil {
		return nil, err
	}
	var admin *flexhub.Party
	if err := store.View(ctx, func(tx flexhub.Tx) error {
		admin, err = tx.PartyByEIC(ctx, app.AdminEIC)
		return err
	}); err != nil {
		return nil, err
	}
	as := func(p *flexhub.Party) context.Context { return app.WithActor(ctx, p) }
	party := func(stem, name string, role flexhub.Role) (*flexhub.Party, error) {
		c, err := svc.CreateParty(as(admin), flexhub.PartySpec{EIC: flexhub.EICFromStem(stem), Name: name, Roles: []flexhub.Role{role}}, "")
		if err != nil {
			return nil, fmt.Errorf("party %s: %w", name, err)
		}
		return c.Object, nil
	}
	tso, err := party("10XCOORDTSO", "Coordination demo TSO", flexhub.RoleTSO)
	if err != nil {
		return nil, err
	}
	dso, err := party("10XCOORDDSO", "Schutterwald Netz DSO", flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	mo, err := party("10XCOORDMO", "Coordination demo market", flexhub.RoleMarketOperator)
	if err != nil {
		return nil, err
	}
	fsp, err := party("10XCOORDFSP", "Home battery aggregator", flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	ca, err := svc.CreateControlArea(as(tso), flexhub.ControlAreaSpec{EIC: flexhub.EICFromStem("10YCOORDCA"), Name: "Coordination demo control area"}, "")
	if err != nil {
		return nil, fmt.Errorf("control area: %w", err)
	}
	ga, err := svc.CreateGridArea(as(dso), flexhub.GridAreaSpec{EIC: flexhub.EICFromStem("10YSCHUTTERW"), Name: "lv_schutterwald", ControlAreaID: ca.Object.ID}, "")
	if err != nil {
		return nil, fmt.Errorf("grid area: %w", err)
	}
	up, err := svc.UploadGridModel(as(dso), ga.Object.ID, "pandapower", sc.file, "")
	if err != nil {
		return nil, fmt.Errorf("grid model: %w", err)
	}
	fmt.Fprintf(progress, "    grid model %s uploaded; %d batteries: connection points, households, resources, prequalifications\n", up.Model.ID, len(sc.bus))
	kw := func(v float64) *flexhub.Power { return &flexhub.Power{Value: v, Unit: "kW"} }
	product := func(by *flexhub.Party, name, service, direction string) (*flexhub.Product, error) {
		c, err := svc.CreateProduct(as(by), flexhub.ProductSpec{Name: name, Service: service, Direction: direction, PowerType: "active",
			MinBidSize: kw(minBidW / 1000), TimeResolution: "PT15M", FullActivationTime: "PT15M", MinDuration: "PT15M", MaxDuration: "PT2H",
			ActivationMode: "manual", Remuneration: []string{"capacity"}, BaselineMethod: "meter_before"}, "")
		if err != nil {
			return nil, fmt.Errorf("product %s: %w", name, err)
		}
		return c.Object, nil
	}
	local, err := product(dso, "LV congestion management (up)", "congestion_management", "up")
	if err != nil {
		return nil, err
	}
	tsoDir := sc.opt.TSODirection
	mfrr, err := product(tso, "mFRR "+tsoDir+" (households)", "balancing_mfrr", tsoDir)
	if err != nil {
		return nil, err
	}
	run := &schemeRun{row: CoordinationRow{Scheme: scheme}}
	var mappings []flexhub.GridMappingItem
	cpOf := make([]string, len(sc.bus))
	for i, bus := range sc.bus {
		cp, err := svc.CreateConnectionPoint(as(dso), flexhub.ConnectionPointSpec{Code: fmt.Sprintf("SW-%04d-bus-%s", i+1, bus), GridAreaID: ga.Object.ID,
			NodeRef: bus, VoltageKV: 0.4}, "")
		if err != nil {
			return nil, fmt.Errorf("connection point at bus %s: %w", bus, err)
		}
		cpOf[i] = cp.Object.ID
		mappings = append(mappings, flexhub.GridMappingItem{ConnectionPointID: cp.Object.ID, BusID: bus})
	}
	if _, err := svc.MapConnectionPoints(as(dso), up.Model.ID, flexhub.GridMappingRequest{Mappings: mappings}); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	yes := true
	for i := range sc.bus {
		home, err := party(fmt.Sprintf("10XCOORDHH%04d", i+1), fmt.Sprintf("Household %d", i+1), flexhub.RoleConsumer)
		if err != nil {
			return nil, err
		}
		mp, err := svc.CreateMeteringPoint(as(dso), flexhub.MeteringPointSpec{Code: fmt.Sprintf("SW-MP-%04d", i+1), ConnectionPointID: cpOf[i], ConsumerID: home.ID}, "")
		if err != nil {
			return nil, fmt.Errorf("metering point %d: %w", i+1, err)
		}
		r, err := svc.RegisterResource(as(fsp), flexhub.ResourceSpec{Name: fmt.Sprintf("Battery %d (bus %s)", i+1, sc.bus[i]), Kind: flexhub.ResourceUnit, UnitType: "battery",
			MeteringPointID: mp.Object.ID, Technical: flexhub.TechnicalData{MaxUp: kw(batteryW / 1000), MaxDown: kw(batteryW / 1000), FullActivationTime: "PT30S",
				MaxActivationDuration: "PT2H", EnergyLimit: &flexhub.Energy{Value: 10, Unit: "kWh"}}}, "")
		if err != nil {
			return nil, fmt.Errorf("battery %d: %w", i+1, err)
		}
		if _, err := svc.ConfirmResource(as(home), r.Object.ID, flexhub.ConfirmationRequest{Accept: &yes}, r.Object.Version); err != nil {
			return nil, fmt.Errorf("household %d confirming its battery: %w", i+1, err)
		}
		for _, pr := range []struct {
			so *flexhub.Party
			p  *flexhub.Product
		}{{dso, local}, {tso, mfrr}} {
			pq, err := svc.SubmitPrequalification(as(fsp), flexhub.PrequalRequest{ResourceID: r.Object.ID, ProductID: pr.p.ID}, "")
			if err != nil {
				return nil, fmt.Errorf("prequalification of battery %d: %w", i+1, err)
			}
			if _, err := svc.DecidePrequalification(as(pr.so), pq.Object.ID, flexhub.DecisionRequest{Outcome: flexhub.PrequalApproved}, pq.Object.Version); err != nil {
				return nil, fmt.Errorf("prequalification decision for battery %d: %w", i+1, err)
			}
		}
		g, err := svc.RequestGridPrequalification(as(fsp), app.GridPrequalRequest{ResourceID: r.Object.ID}, "")
		if err != nil {
			return nil, fmt.Errorf("grid prequalification of battery %d: %w", i+1, err)
		}
		if _, err := svc.DecideGridPrequalification(as(dso), g.Object.ID, flexhub.GridDecisionRequest{Outcome: flexhub.GridPrequalApproved}, g.Object.Version); err != nil {
			return nil, fmt.Errorf("grid decision for battery %d: %w", i+1, err)
		}
		run.batteryID = append(run.batteryID, r.Object.ID)
	}

	// The DSO's forecast of the evening, and the needs flexhub derives.
	f, err := svc.UploadGridForecast(as(dso), up.Model.ID, flexhub.GridForecastSpec{Start: sc.at(0), Intervals: forecastCount,
		GenerationScalePercent: make([]float64, forecastCount), Series: sc.series, Description: sc.source})
	if err != nil {
		return nil, fmt.Errorf("forecast: %w", err)
	}
	run.forecast = f
	gridNeeds, err := svc.GridForecastNeeds(as(dso), f.ID, "active")
	if err != nil {
		return nil, fmt.Errorf("needs of the forecast: %w", err)
	}
	run.gridNeeds = len(gridNeeds)
	fmt.Fprintf(progress, "    forecast %s: %d needs\n", f.ID, len(gridNeeds))
	var dsoNeedIDs []string
	var dsoNeedCPs [][]string
	for _, gn := range gridNeeds {
		if len(gn.ConnectionPointIDs) == 0 || gn.Direction != "up" {
			run.unpublished++
			continue
		}
		pn := plannedNeed{maxPrice: "250.00"}
		spec := flexhub.NeedSpec{ProductID: local.ID, ConnectionPointIDs: gn.ConnectionPointIDs, Direction: "up", Buys: "capacity",
			Description: gn.Reason}
		for _, iv := range gn.Intervals {
			w, err := iv.Quantity.Watts("quantity")
			if err != nil {
				return nil, err
			}
			// A need below the product's minimum bid size cannot be bought
			// as such: the DSO asks for at least the minimum.
			w = max(w, minBidW)
			spec.Intervals = append(spec.Intervals, flexhub.NeedInterval{Start: iv.Start, Quantity: flexhub.MarketQuantity{Value: float64(w) / 1000, Unit: "kW"},
				MaxPrice: &flexhub.Money{Amount: pn.maxPrice, Currency: "EUR"}})
			pn.starts, pn.demand = append(pn.starts, iv.Start), append(pn.demand, w)
		}
		n, err := svc.PublishNeed(as(dso), spec, "")
		if err != nil {
			return nil, fmt.Errorf("DSO need (%s): %w", gn.Reason, err)
		}
		dsoNeedIDs = append(dsoNeedIDs, n.Object.ID)
		dsoNeedCPs = append(dsoNeedCPs, gn.ConnectionPointIDs)
		run.dsoNeeds = append(run.dsoNeeds, pn)
	}
	run.tsoNeed = plannedNeed{maxPrice: "150.00"}
	tsoSpec := flexhub.NeedSpec{ProductID: mfrr.ID, GridAreaID: ga.Object.ID, Direction: tsoDir, Buys: "capacity",
		Description: "mFRR " + tsoDir + ": the evening's imbalance, from households' batteries"}
	for k := range needCount {
		t := sc.at(needFrom - forecastFrom + k)
		tsoSpec.Intervals = append(tsoSpec.Intervals, flexhub.NeedInterval{Start: t, Quantity: flexhub.MarketQuantity{Value: sc.opt.TSOKW, Unit: "kW"},
			MaxPrice: &flexhub.Money{Amount: run.tsoNeed.maxPrice, Currency: "EUR"}})
		run.tsoNeed.starts, run.tsoNeed.demand = append(run.tsoNeed.starts, t), append(run.tsoNeed.demand, int64(math.Round(sc.opt.TSOKW*1000)))
	}
	tsoNeed, err := svc.PublishNeed(as(tso), tsoSpec, "")
	if err != nil {
		return nil, fmt.Errorf("TSO need: %w", err)
	}

	// Sessions, run by the market operator; the scheme on the TSO's (and,
	// for the common market, on both).
	open, closure := svc.Now().Add(-time.Second), svc.Now().Add(time.Hour)
	dsoCoord := ""
	if scheme != flexhub.CoordinationDSOApproval && scheme != flexhub.CoordinationDSOFirst {
		dsoCoord = scheme
	}
	var dsoSession *flexhub.MarketSession
	if len(dsoNeedIDs) > 0 {
		c, err := svc.CreateSession(as(mo), flexhub.SessionSpec{Name: "lv_schutterwald evening congestion", Kind: "day_ahead", NeedIDs: dsoNeedIDs,
			GateOpening: open, GateClosure: closure, Coordination: dsoCoord}, "")
		if err != nil {
			return nil, fmt.Errorf("DSO session: %w", err)
		}
		dsoSession = c.Object
	}
	ts, err := svc.CreateSession(as(mo), flexhub.SessionSpec{Name: "mFRR " + tsoDir + ", evening", Kind: "day_ahead", NeedIDs: []string{tsoNeed.Object.ID},
		GateOpening: open, GateClosure: closure, Coordination: scheme}, "")
	if err != nil {
		return nil, fmt.Errorf("TSO session: %w", err)
	}

	// Bids: every battery into the TSO's session; those at a DSO need's
	// buses into the DSO's too (one need per quarter hour: the first that
	// names it, worst first, so the DSO is not sold one battery twice).
	fmt.Fprintf(progress, "    bids of %d batteries\n", len(sc.bus))
	submit := func(b plannedBid, session, need string) error {
		spec := flexhub.BidSpec{SessionID: session, NeedID: need, ResourceID: run.batteryID[b.battery], Divisible: true,
			MinQuantity: &flexhub.MarketQuantity{Value: minBidW / 1000, Unit: "kW"}}
		for _, t := range b.starts {
			spec.Intervals = append(spec.Intervals, flexhub.BidInterval{Start: t, Quantity: flexhub.MarketQuantity{Value: batteryW / 1000, Unit: "kW"},
				AvailabilityPrice: &flexhub.Money{Amount: b.price, Currency: "EUR"}})
		}
		_, err := svc.SubmitBid(as(fsp), spec, "")
		if rule := flexhub.ErrorRule(err); strings.HasPrefix(rule, "traffic_light.") {
			run.row.Refused++
			return nil
		}
		return err
	}
	for i := range sc.bus {
		used := map[int64]bool{}
		for j, cps := range dsoNeedCPs {
			if !contains(cps, cpOf[i]) {
				continue
			}
			free := true
			for _, t := range run.dsoNeeds[j].starts {
				free = free && !used[t.UnixMicro()]
			}
			if !free {
				continue
			}
			for _, t := range run.dsoNeeds[j].starts {
				used[t.UnixMicro()] = true
			}
			b := plannedBid{battery: i, need: j, price: sc.dsoPrice[i], starts: run.dsoNeeds[j].starts}
			run.bids = append(run.bids, b)
			run.row.DSOBids++
			if err := submit(b, dsoSession.ID, dsoNeedIDs[j]); err != nil {
				return nil, fmt.Errorf("DSO bid of battery %d: %w", i+1, err)
			}
		}
		b := plannedBid{battery: i, need: -1, price: sc.tsoPrice[i], starts: run.tsoNeed.starts}
		run.bids = append(run.bids, b)
		run.row.TSOBids++
		if err := submit(b, ts.Object.ID, tsoNeed.Object.ID); err != nil {
			return nil, fmt.Errorf("TSO bid of battery %d: %w", i+1, err)
		}
	}

	// Gate closure: the demo moves its clock past it and lets the
	// scheduler close and clear the sessions (dso_first waits a sweep).
	offset = time.Hour + time.Second
	sessions := []string{ts.Object.ID}
	if dsoSession != nil {
		sessions = append(sessions, dsoSession.ID)
	}
	cleared := false
	for sweep := 0; sweep < 5 && !cleared; sweep++ {
		if _, err := svc.AdvanceSessions(ctx); err != nil {
			return nil, fmt.Errorf("gate closure and clearing: %w", err)
		}
		cleared = true
		for _, id := range sessions {
			m, err := sessionAsAdmin(ctx, svc, id)
			if err != nil {
				return nil, err
			}
			cleared = cleared && m.Status == flexhub.SessionCleared
		}
	}
	if !cleared {
		return nil, fmt.Errorf("the sessions did not clear after 5 sweeps")
	}
	if run.tsoResults, err = svc.GetSessionResults(as(tso), ts.Object.ID); err != nil {
		return nil, err
	}
	if dsoSession != nil {
		if run.dsoResults, err = svc.GetSessionResults(as(dso), dsoSession.ID); err != nil {
			return nil, err
		}
	} else {
		run.dsoResults = &app.SessionResults{}
	}

	// The table's figures: sums of what the results say.
	var dsoCost, tsoCost int64
	for _, n := range run.dsoResults.Needs {
		c, err := sumNeed(n, &run.row.DSONeedW, &run.row.DSOBoughtW, &run.row.DSOShortW)
		if err != nil {
			return nil, err
		}
		dsoCost += c
	}
	for _, n := range run.tsoResults.Needs {
		c, err := sumNeed(n, &run.row.TSONeedW, &run.row.TSOBoughtW, &run.row.TSOShortW)
		if err != nil {
			return nil, err
		}
		tsoCost += c
	}
	run.row.DSOCost, run.row.TSOCost, run.row.TotalCost = eurAmount(dsoCost), eurAmount(tsoCost), eurAmount(dsoCost+tsoCost)
	battery := map[string]int{}
	for i, id := range run.batteryID {
		battery[id] = i
	}
	ob := newObligations(len(sc.bus))
	for _, set := range []struct {
		res *app.SessionResults
		by  [][]int64
	}{{run.dsoResults, ob.dso}, {run.tsoResults, ob.tso}} {
		dir := map[string]int64{}
		for _, n := range set.res.Needs {
			dir[n.NeedID] = 1
			if n.Direction == "down" {
				dir[n.NeedID] = -1
			}
		}
		for _, a := range set.res.Awards {
			i, ok := battery[a.ResourceID]
			if !ok {
				return nil, fmt.Errorf("award %s for an unknown resource %s", a.ID, a.ResourceID)
			}
			for _, iv := range a.Intervals {
				if k := sc.interval(iv.Start); k >= 0 {
					set.by[i][k] += dir[a.NeedID] * iv.Accepted
				}
			}
		}
	}
	run.row.SoldTwiceW = ob.soldTwice()
	run.sc, run.ob = sc, ob
	offered := map[string]bool{}
	for _, a := range run.tsoResults.Awards {
		offered[a.ResourceID] = true
	}
	for i, id := range run.batteryID {
		bought := false
		for k := range forecastCount {
			bought = bought || ob.dso[i][k] != 0
		}
		if bought && offered[id] {
			run.row.Shared++
		}
	}
	if run.row.Before, err = sc.check(nil); err != nil {
		return nil, err
	}
	if run.row.After, err = sc.check(ob); err != nil {
		return nil, err
	}
	return run, nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// sumNeed adds a need result's demand, accepted and shortfall and returns
// its total cost (ten-thousandths of the currency).
func sumNeed(n *flexhub.NeedResult, need, bought, short *int64) (int64, error) {
	for _, iv := range n.Intervals {
		*need += iv.Demand
		*bought += iv.Accepted
		*short += iv.Shortfall
	}
	return n.TotalCost.Parse("total_cost")
}

func eurAmount(v int64) flexhub.Money {
	return flexhub.Money{Amount: flexhub.FormatAmount(v), Currency: "EUR"}
}

// interval is the forecast interval a time falls in (-1 outside).
func (sc *coordScenario) interval(t time.Time) int {
	k := int(t.Sub(sc.at(0)) / (15 * time.Minute))
	if k < 0 || k >= forecastCount || !sc.at(k).Equal(t) {
		return -1
	}
	return k
}

// obligations are each battery's obligations per forecast interval, to
// each buyer, in W: positive up, negative down.
type obligations struct {
	dso, tso [][]int64
}

func newObligations(n int) *obligations {
	o := &obligations{dso: make([][]int64, n), tso: make([][]int64, n)}
	for i := range n {
		o.dso[i], o.tso[i] = make([]int64, forecastCount), make([]int64, forecastCount)
	}
	return o
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// soldTwice sums, over batteries and intervals, what the two buyers'
// obligations together ask beyond the battery's capability, whatever
// their directions: a 5 kW battery can be held for 5 kW, to one buyer or
// split between them, not for 5 kW to each.
func (o *obligations) soldTwice() int64 {
	var s int64
	for i := range o.dso {
		for k := range o.dso[i] {
			s += max(0, abs(o.dso[i][k])+abs(o.tso[i][k])-batteryW)
		}
	}
	return s
}

// states runs the full AC power flow of every forecast interval, with
// every obligation activated at its battery's bus (each battery's net
// change, the sum of its signed obligations, capped at its capability); ob nil: the
// forecast itself.
func (sc *coordScenario) states(ob *obligations) ([]*gridops.State, error) {
	if ob == nil && sc.before != nil {
		return sc.before, nil
	}
	idx := sc.net.BusIndex()
	out := make([]*gridops.State, forecastCount)
	for k := range forecastCount {
		p := append([]float64(nil), sc.p[k]...)
		if ob != nil {
			for i, bus := range sc.bus {
				d := min(batteryW, max(-batteryW, ob.dso[i][k]+ob.tso[i][k]))
				p[idx[bus]] += float64(d) / 1e6
			}
		}
		st, err := sc.analyser.NewState(sc.at(k), sc.at(k+1), p, sc.q[k])
		if err != nil {
			return nil, fmt.Errorf("power flow at %s: %w", sc.at(k).Format("15:04"), err)
		}
		out[k] = st
	}
	if ob == nil {
		sc.before = out
	}
	return out, nil
}

// worseThan lists the violations of after that before does not have, or
// has less deep, beyond the grid clearing's AC tolerance (0.001 p.u. for
// voltages, 0.5 % for loadings: docs/GRID_CLEARING.md).
func worseThan(after, before []gridops.Violation) []gridops.Violation {
	was := map[gridops.Constraint]float64{}
	for _, v := range before {
		was[v.Constraint] = v.Excess()
	}
	var out []gridops.Violation
	for _, v := range after {
		tol := 0.001
		if v.Kind == gridops.LineLoading || v.Kind == gridops.TrafoLoading {
			tol = 0.5
		}
		if v.Excess() > was[v.Constraint]+tol { // not violated before: 0
			out = append(out, v)
		}
	}
	return out
}

// check summarises the violations of the states with ob activated.
func (sc *coordScenario) check(ob *obligations) (GridSummary, error) {
	out := GridSummary{MinVmPU: math.Inf(1)}
	states, err := sc.states(ob)
	if err != nil {
		return out, err
	}
	before, err := sc.states(nil)
	if err != nil {
		return out, err
	}
	worst := -1.0
	for k, st := range states {
		sm := st.Summary()
		out.Violations += len(sm.Violations)
		out.Worse += len(worseThan(st.Violations(), before[k].Violations()))
		if sm.MinVmPU < out.MinVmPU {
			out.MinVmPU, out.MinVmBus = sm.MinVmPU, sm.MinVmBus
		}
		for _, v := range sm.Violations {
			if s := severity(v); s > worst {
				worst, out.Worst = s, v.String()+" at "+sc.at(k).Format("15:04")
			}
		}
	}
	out.MinVmPU = math.Round(out.MinVmPU*1e4) / 1e4
	return out, nil
}

// reference is the row without coordination, computed outside flexhub
// with the clearing engine: each buyer's merit order over every bid its
// FSP prepared (also those the traffic light refused), ignoring the grid
// and the other buyer, pay as bid.
func (sc *coordScenario) reference(run *schemeRun) (*CoordinationRow, error) {
	row := &CoordinationRow{Scheme: referenceScheme, Reference: true}
	ob := newObligations(len(sc.bus))
	var dsoCost, tsoCost int64
	needs := append([]plannedNeed{run.tsoNeed}, run.dsoNeeds...)
	for j, n := range needs {
		maxP, err := flexhub.ParseAmount("max_price", n.maxPrice)
		if err != nil {
			return nil, err
		}
		p := &clearing.Problem{Demand: n.demand, MaxPrice: make([]int64, len(n.demand))}
		for t := range p.MaxPrice {
			p.MaxPrice[t] = maxP
		}
		var bids []plannedBid
		for _, b := range run.bids {
			if b.need == j-1 {
				bids = append(bids, b)
			}
		}
		for _, b := range bids {
			price, err := flexhub.ParseAmount("price", b.price)
			if err != nil {
				return nil, err
			}
			cb := clearing.Bid{ID: fmt.Sprint(b.battery), Quantity: make([]int64, len(n.demand)), Price: make([]int64, len(n.demand)), Divisible: true, MinQuantity: minBidW}
			for t := range n.demand {
				cb.Quantity[t], cb.Price[t] = batteryW, price
			}
			p.Bids = append(p.Bids, cb)
		}
		r, err := clearing.Solve(p)
		if err != nil {
			return nil, err
		}
		sign, cost, by := int64(1), &dsoCost, ob.dso
		need, bought, short := &row.DSONeedW, &row.DSOBoughtW, &row.DSOShortW
		if j == 0 {
			cost, by = &tsoCost, ob.tso
			if sc.opt.TSODirection == "down" {
				sign = -1
			}
			need, bought, short = &row.TSONeedW, &row.TSOBoughtW, &row.TSOShortW
		}
		for t := range n.demand {
			*need += n.demand[t]
			*short += r.Shortfall[t]
		}
		for bi, b := range bids {
			for t, a := range r.Accepted[bi] {
				if a == 0 {
					continue
				}
				*bought += a
				*cost += amountFor(a, p.Bids[bi].Price[t], quarterSecs)
				if k := sc.interval(n.starts[t]); k >= 0 {
					by[b.battery][k] += sign * a
				}
			}
		}
		if j == 0 {
			row.TSOBids = len(bids)
		} else {
			row.DSOBids += len(bids)
		}
	}
	row.DSOCost, row.TSOCost, row.TotalCost = eurAmount(dsoCost), eurAmount(tsoCost), eurAmount(dsoCost+tsoCost)
	row.SoldTwiceW = ob.soldTwice()
	run.refOb = ob
	var err error
	if row.Before, err = sc.check(nil); err != nil {
		return nil, err
	}
	if row.After, err = sc.check(ob); err != nil {
		return nil, err
	}
	return row, nil
}

// amountFor is what accepted W at a price (ten-thousandths per MW per
// hour) cost over seconds, rounded half up to the ten-thousandth: as
// flexhub's clearing computes an award's amount.
func amountFor(accepted, price, seconds int64) int64 {
	num := new(big.Int).Mul(big.NewInt(accepted), big.NewInt(price))
	num.Mul(num, big.NewInt(seconds))
	den := big.NewInt(3_600_000_000) // W·s per MWh
	n := new(big.Int).Lsh(num, 1)
	n.Add(n, den)
	return n.Quo(n, new(big.Int).Lsh(den, 1)).Int64()
}

// printCoordination prints the comparison table and what it means.
func printCoordination(w io.Writer, r *CoordinationReport) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "== TSO–DSO coordination on %s, %s\n", r.Grid, r.Window)
	fmt.Fprintf(w, "Forecast: %s.\n", r.Forecast)
	fmt.Fprintf(w, "%d household batteries (%s kW up and down each) bid into both buyers' sessions; the DSO's %d needs from the forecast (%d without a battery at their buses, not published); the TSO buys mFRR, %s per quarter hour 17:30–19:30.\n",
		r.Batteries, kwString(r.BatteryW), r.GridNeeds, r.Unpublished, r.TSONeed)
	fmt.Fprintf(w, "kW are summed over the quarter hours (÷4: kWh); costs are capacity, pay as bid; \"sold twice\": obligations beyond a battery's 5 kW.\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "market\tDSO need kW\tbought\tshort\tTSO need kW\tbought\tshort\tDSO EUR\tTSO EUR\ttotal EUR\tsold twice kW\trefused bids\t")
	for _, row := range r.Rows {
		refused := fmt.Sprint(row.Refused)
		if row.Reference {
			refused = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.Scheme,
			kwString(row.DSONeedW), kwString(row.DSOBoughtW), kwString(row.DSOShortW), kwString(row.TSONeedW), kwString(row.TSOBoughtW), kwString(row.TSOShortW),
			row.DSOCost.Amount, row.TSOCost.Amount, row.TotalCost.Amount, kwString(row.SoldTwiceW), refused)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "grid\tviolations before\tafter\tnew/deeper\tlowest V before\tafter\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.4f\t%.4f\t\n", row.Scheme, row.Before.Violations, row.After.Violations, row.After.Worse, row.Before.MinVmPU, row.After.MinVmPU)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, row := range r.Rows {
		worst := row.After.Worst
		if worst == "" {
			worst = "none"
		}
		fmt.Fprintf(w, "  worst after, %s: %s\n", row.Scheme, worst)
	}
	if len(r.Rows) > 0 {
		fmt.Fprintf(w, "  worst before (the forecast): %s\n", r.Rows[0].Before.Worst)
	}
	fmt.Fprintln(w)
	for _, line := range coordinationMeaning(r) {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

// coordinationMeaning says in plain words what the table shows, from its
// figures.
func coordinationMeaning(r *CoordinationReport) []string {
	if len(r.Rows) < 2 {
		return nil
	}
	ref, first := r.Rows[len(r.Rows)-1], r.Rows[0]
	b := first.Before
	var out []string
	out = append(out, fmt.Sprintf("What it means: \"before\" is the DSO's forecast (%d violated bus voltages and loadings over the evening's quarter hours,", b.Violations),
		fmt.Sprintf("lowest %.4f p.u.); \"after\" is a full AC power flow with every obligation of both buyers activated at its battery.", b.MinVmPU),
		fmt.Sprintf("Without coordination each buyer takes the cheapest batteries wherever they are: %d violations after (%d new or deeper),", ref.After.Violations, ref.After.Worse),
		fmt.Sprintf("lowest %.4f p.u., and %s kW of battery capacity sold to both buyers at once.", ref.After.MinVmPU, kwString(ref.SoldTwiceW)))
	var lit []string
	for _, row := range r.Rows[:len(r.Rows)-1] {
		if row.Refused > 0 {
			lit = append(lit, row.Scheme)
		}
	}
	if len(lit) > 0 {
		out = append(out, fmt.Sprintf("Under %s the DSO's traffic light refuses the TSO's bids where charging would deepen the undervoltage:", strings.Join(lit, " and ")),
			"the TSO buys less or pays more. The light judges each bid on its own, so charging it allows bid by bid can still, all",
			"together, break limits the forecast kept (\"new/deeper\"); clearing all bids under the grid's limits at once is what prevents that.")
	}
	var approval *CoordinationRow
	for i, row := range r.Rows {
		if row.Scheme == flexhub.CoordinationDSOApproval {
			approval = &r.Rows[i]
		}
		if row.Scheme == flexhub.CoordinationDSOFirst && row.Shared == 0 {
			out = append(out, "dso_first had nothing to take off the TSO's bids: no battery the DSO bought still had a bid in the TSO's session.")
		}
	}
	for _, row := range r.Rows {
		if row.Scheme != flexhub.CoordinationCommon {
			continue
		}
		out = append(out, fmt.Sprintf("common_market clears both buyers' needs in one optimisation under the grid's limits: %d bids refused, %s kW sold twice,", row.Refused, kwString(row.SoldTwiceW)),
			fmt.Sprintf("%d violations after (%d new or deeper), total cost %s EUR", row.After.Violations, row.After.Worse, row.TotalCost.Amount))
		if approval != nil {
			out[len(out)-1] += fmt.Sprintf(" (dso_approval: %s EUR, %d new or deeper).", approval.TotalCost.Amount, approval.After.Worse)
		} else {
			out[len(out)-1] += "."
		}
	}
	return out
}
