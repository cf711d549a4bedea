// Package demo loads a realistic register so that a newcomer can try the
// API at once: the SimBench LV rural grid's connection points, the 25 real
// households of the Smart Grid Smart City trial as consumers with metering
// points, two aggregators with units (each confirmed by its household) and
// groups of those households, a DSO with a congestion-management product
// and a TSO with an mFRR product. It goes through the app layer like any
// API call, so every object is validated and audited.
package demo

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// Key is a demo party's API key.
type Key struct {
	Role  string // what the party is for, e.g. "DSO"
	Name  string
	Party string
	Token string
}

// Result is what Load made.
type Result struct {
	Keys       []Key
	Households int
	Points     int
	Resources  int
}

// DSOEIC marks a store that already holds the demo.
var DSOEIC = eic("10XRURALNETZDSO")

func eic(stem string) string { return flexhub.EICFromStem(stem) }

// Loaded reports whether the store already holds the demo register.
func Loaded(ctx context.Context, store flexhub.Store) (bool, error) {
	err := store.View(ctx, func(tx flexhub.Tx) error {
		_, err := tx.PartyByEIC(ctx, DSOEIC)
		return err
	})
	switch flexhub.ErrorKind(err) {
	case "":
		return true, nil
	case flexhub.ENotFound:
		return false, nil
	default:
		return false, err
	}
}

type loader struct {
	svc   *app.Service
	ctx   context.Context
	admin context.Context
	res   Result
	step  func(string)
}

func (l *loader) as(p *flexhub.Party) context.Context { return app.WithActor(l.ctx, p) }

func (l *loader) party(role, name, eicCode string, roles ...flexhub.Role) (*flexhub.Party, context.Context, error) {
	c, err := l.svc.CreateParty(l.admin, flexhub.PartySpec{EIC: eicCode, Name: name, Roles: roles}, "demo-party-"+eicCode)
	if err != nil {
		return nil, nil, fmt.Errorf("party %s: %w", name, err)
	}
	k, err := l.svc.IssueCredential(l.admin, c.Object.ID, "demo")
	if err != nil {
		return nil, nil, err
	}
	l.res.Keys = append(l.res.Keys, Key{Role: role, Name: name, Party: c.Object.ID, Token: k.Token})
	return c.Object, l.as(c.Object), nil
}

// Load builds the demo register from the shared data folder. progress, if
// not nil, is told about each step.
func Load(ctx context.Context, svc *app.Service, dataDir string, progress func(string)) (*Result, error) {
	if progress == nil {
		progress = func(string) {}
	}
	grid, err := ReadGrid(dataDir)
	if err != nil {
		return nil, fmt.Errorf("read the SimBench grid (is --shared-data right?): %w", err)
	}
	households, err := ReadHouseholds(dataDir)
	if err != nil {
		return nil, fmt.Errorf("read the household meter data: %w", err)
	}
	var admin *flexhub.Party
	if err := svc.Store().View(ctx, func(tx flexhub.Tx) error {
		var err error
		admin, err = tx.PartyByEIC(ctx, app.AdminEIC)
		return err
	}); err != nil {
		return nil, fmt.Errorf("find the administrator: %w", err)
	}
	l := &loader{svc: svc, ctx: ctx, admin: app.WithActor(ctx, admin), step: progress}

	progress("parties")
	tso, tsoCtx, err := l.party("TSO", "Demo Transmission TSO", eic("10XDEMOTSO"), flexhub.RoleTSO)
	if err != nil {
		return nil, err
	}
	dso, dsoCtx, err := l.party("DSO", "Rural Netz DSO", DSOEIC, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	sunny, sunnyCtx, err := l.party("FSP (batteries)", "Sunny Storage Aggregator", eic("10XSUNNYAGG"), flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	heat, heatCtx, err := l.party("FSP (heat pumps)", "HeatFlex Aggregator", eic("10XHEATFLEXAGG"), flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	brp, _, err := l.party("BRP", "Demo Balance Group", eic("10XDEMOBRP"), flexhub.RoleBRP)
	if err != nil {
		return nil, err
	}
	supplier, _, err := l.party("Supplier", "Demo Energy Supplier", eic("10XDEMOSUPPLIER"), flexhub.RoleSupplier)
	if err != nil {
		return nil, err
	}
	_, _, err = l.party("Market operator", "Demo Flexibility Market", eic("10XDEMOMARKET"), flexhub.RoleMarketOperator)
	if err != nil {
		return nil, err
	}

	progress("grid: control area, grid area, SimBench LV rural connection points")
	ca, err := svc.CreateControlArea(tsoCtx, flexhub.ControlAreaSpec{EIC: eic("10YDEMOCONTROL"), Name: "Demo control area"}, "demo-ca")
	if err != nil {
		return nil, fmt.Errorf("control area: %w", err)
	}
	ga, err := svc.CreateGridArea(dsoCtx, flexhub.GridAreaSpec{EIC: eic("10YRURALNETZ"), Name: "SimBench LV rural 1 (LV1.101)", ControlAreaID: ca.Object.ID}, "demo-ga")
	if err != nil {
		return nil, fmt.Errorf("grid area: %w", err)
	}
	var loadPoints []*flexhub.ConnectionPoint
	for _, g := range grid {
		code := strings.ReplaceAll(g.ID, " ", "-")
		cp, err := svc.CreateConnectionPoint(dsoCtx, flexhub.ConnectionPointSpec{Code: code, GridAreaID: ga.Object.ID, NodeRef: g.Node, VoltageKV: 0.4,
			Capacity: &flexhub.Power{Value: math.Round(g.RatedKVA*10) / 10, Unit: "kW"}}, "demo-cp-"+code)
		if err != nil {
			return nil, fmt.Errorf("connection point %s: %w", g.ID, err)
		}
		l.res.Points++
		if g.Kind == "load" {
			loadPoints = append(loadPoints, cp.Object)
		}
	}

	progress(fmt.Sprintf("%d households: consumers and metering points", len(households)))
	type home struct {
		h     Household
		party *flexhub.Party
		mp    *flexhub.MeteringPoint
	}
	homes := make([]home, 0, len(households))
	for i, h := range households {
		c, err := svc.CreateParty(dsoCtx, flexhub.PartySpec{EIC: eic("10XHH" + h.CustomerID), Name: "Household " + h.CustomerID, Roles: []flexhub.Role{flexhub.RoleConsumer}}, "demo-consumer-"+h.CustomerID)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", h.CustomerID, err)
		}
		// The 25 households share the grid's 13 load connection points,
		// as flats behind one house connection do.
		cp := loadPoints[i%len(loadPoints)]
		mp, err := svc.CreateMeteringPoint(dsoCtx, flexhub.MeteringPointSpec{Code: "SGSC-" + h.CustomerID, ConnectionPointID: cp.ID, ConsumerID: c.Object.ID,
			SupplierID: supplier.ID, BRPID: brp.ID}, "demo-mp-"+h.CustomerID)
		if err != nil {
			return nil, fmt.Errorf("metering point %s: %w", h.CustomerID, err)
		}
		homes = append(homes, home{h: h, party: c.Object, mp: mp.Object})
		l.res.Households++
	}
	for _, hm := range homes[:2] {
		k, err := svc.IssueCredential(l.admin, hm.party.ID, "demo")
		if err != nil {
			return nil, err
		}
		l.res.Keys = append(l.res.Keys, Key{Role: "Consumer", Name: hm.party.Name, Party: hm.party.ID, Token: k.Token})
	}

	progress("resources: batteries, heat pumps and their groups")
	kw := func(v float64) *flexhub.Power { return &flexhub.Power{Value: math.Round(v*10) / 10, Unit: "kW"} }
	var sunnyUnits, heatUnits []string
	for i, hm := range homes {
		var spec flexhub.ResourceSpec
		ctx, key := sunnyCtx, "demo-unit-"+hm.h.CustomerID
		if i%2 == 0 {
			// A home battery sized to the household's peak, capped at 5 kW.
			p := math.Min(5, math.Max(1, hm.h.PeakKW))
			spec = flexhub.ResourceSpec{Name: "Battery " + hm.h.CustomerID, Kind: flexhub.ResourceUnit, UnitType: "battery", MeteringPointID: hm.mp.ID,
				Technical: flexhub.TechnicalData{MaxUp: kw(p), MaxDown: kw(p), RampRate: &flexhub.Ramp{Value: p * 60, Unit: "kW/min"},
					FullActivationTime: "PT30S", MaxActivationDuration: "PT2H", RecoveryTime: "PT1H", EnergyLimit: &flexhub.Energy{Value: 10, Unit: "kWh"}}}
		} else {
			// A heat pump can shed about a third of the household's peak.
			spec = flexhub.ResourceSpec{Name: "Heat pump " + hm.h.CustomerID, Kind: flexhub.ResourceUnit, UnitType: "heat_pump", MeteringPointID: hm.mp.ID,
				Technical: flexhub.TechnicalData{MaxUp: kw(math.Max(0.5, hm.h.PeakKW/3)), FullActivationTime: "PT5M", MinActivationDuration: "PT15M", MaxActivationDuration: "PT1H", RecoveryTime: "PT2H",
					Availability: []flexhub.AvailabilityWindow{{Weekdays: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "06:00", To: "22:00"}}}}
			ctx = heatCtx
		}
		r, err := svc.RegisterResource(ctx, spec, key)
		if err != nil {
			return nil, fmt.Errorf("resource for %s: %w", hm.h.CustomerID, err)
		}
		// The aggregator's unit sits at the household's metering point, so
		// the household confirms it, as it would in its app; a replayed
		// registration may have been confirmed already.
		if r.Object.Status == flexhub.ResourcePendingConfirmation {
			yes := true
			if _, err := svc.ConfirmResource(l.as(hm.party), r.Object.ID, flexhub.ConfirmationRequest{Accept: &yes}, r.Object.Version); err != nil {
				return nil, fmt.Errorf("household %s confirming %s: %w", hm.h.CustomerID, r.Object.Name, err)
			}
		}
		l.res.Resources++
		if i%2 == 0 {
			sunnyUnits = append(sunnyUnits, r.Object.ID)
		} else {
			heatUnits = append(heatUnits, r.Object.ID)
		}
	}
	groupOf := func(ctx context.Context, name string, units []string, up float64, down float64) (*flexhub.Resource, error) {
		t := flexhub.TechnicalData{MaxUp: kw(up), FullActivationTime: "PT5M"}
		if down > 0 {
			t.MaxDown = kw(down)
		}
		r, err := svc.RegisterResource(ctx, flexhub.ResourceSpec{Name: name, Kind: flexhub.ResourceGroup, Members: units, Technical: t}, "demo-group-"+name)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", name, err)
		}
		l.res.Resources++
		return r.Object, nil
	}
	sumUp := func(units []string) float64 {
		total := 0.0
		_ = svc.Store().View(ctx, func(tx flexhub.Tx) error {
			for _, id := range units {
				if r, err := tx.Resource(ctx, id); err == nil {
					w, _ := r.Technical.MaxUp.Watts("")
					total += float64(w) / 1000
				}
			}
			return nil
		})
		return total
	}
	sunnyGroup, err := groupOf(sunnyCtx, "Sunny LV rural battery pool", sunnyUnits, sumUp(sunnyUnits), sumUp(sunnyUnits))
	if err != nil {
		return nil, err
	}
	heatGroup, err := groupOf(heatCtx, "HeatFlex LV rural heat pump pool", heatUnits, sumUp(heatUnits), 0)
	if err != nil {
		return nil, err
	}

	progress("products, prequalifications and a contract")
	cm, err := svc.CreateProduct(dsoCtx, flexhub.ProductSpec{Name: "LV congestion management (up)", Service: "congestion_management", Direction: "up", PowerType: "active",
		MinBidSize: kw(5), TimeResolution: "PT15M", FullActivationTime: "PT15M", MinDuration: "PT15M", MaxDuration: "PT2H",
		ActivationMode: "manual", Remuneration: []string{"capacity", "energy"}, BaselineMethod: "meter_before",
		Settlement: &flexhub.SettlementSpec{ActivationPrice: eur(150)},
		Requirements: []flexhub.Requirement{{Key: "metering", Question: "How is each unit metered (interval, channel)?", Required: true},
			{Key: "control", Question: "How does the FSP send set-points to the units?", Required: true}}}, "demo-product-cm")
	if err != nil {
		return nil, fmt.Errorf("DSO product: %w", err)
	}
	mfrr, err := svc.CreateProduct(tsoCtx, flexhub.ProductSpec{Name: "mFRR up (pilot, small assets)", Service: "balancing_mfrr", Direction: "up", PowerType: "active",
		MinBidSize: kw(5), TimeResolution: "PT15M", FullActivationTime: "PT12M30S", MinDuration: "PT5M", MaxDuration: "PT1H",
		ActivationMode: "manual", Remuneration: []string{"capacity", "energy"}, BaselineMethod: "nominated_schedule",
		Settlement:   &flexhub.SettlementSpec{ActivationPrice: eur(180)},
		Requirements: []flexhub.Requirement{{Key: "telemetry", Question: "Real-time telemetry: resolution and latency?", Required: true}}}, "demo-product-mfrr")
	if err != nil {
		return nil, fmt.Errorf("TSO product: %w", err)
	}
	pq, err := svc.SubmitPrequalification(sunnyCtx, flexhub.PrequalRequest{ResourceID: sunnyGroup.ID, ProductID: cm.Object.ID,
		Answers: map[string]string{"metering": "15-minute smart meter readings per household", "control": "battery vendor cloud API"}}, "demo-pq-sunny")
	if err != nil {
		return nil, fmt.Errorf("prequalification: %w", err)
	}
	if _, err := svc.DecidePrequalification(dsoCtx, pq.Object.ID, flexhub.DecisionRequest{Outcome: flexhub.PrequalApproved}, pq.Object.Version); err != nil {
		return nil, fmt.Errorf("prequalification decision: %w", err)
	}
	if _, err := svc.SubmitPrequalification(heatCtx, flexhub.PrequalRequest{ResourceID: heatGroup.ID, ProductID: mfrr.Object.ID,
		Answers: map[string]string{"telemetry": "1-minute heat pump controller readings"}}, "demo-pq-heat"); err != nil {
		return nil, fmt.Errorf("prequalification: %w", err)
	}
	if _, err := svc.RequestGridPrequalification(sunnyCtx, app.GridPrequalRequest{ResourceID: sunnyUnits[0]}, "demo-gpq-sunny"); err != nil {
		return nil, fmt.Errorf("grid prequalification: %w", err)
	}
	start := time.Now().UTC().Truncate(24 * time.Hour)
	end := start.AddDate(1, 0, 0)
	ct, err := svc.ProposeContract(dsoCtx, flexhub.ContractSpec{ProductID: cm.Object.ID, FSPID: sunny.ID, ResourceIDs: []string{sunnyGroup.ID},
		Validity: flexhub.Interval{Start: start, End: &end}, Terms: "Demo framework contract for LV congestion management."}, "demo-contract")
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	if _, err := svc.AcceptContract(sunnyCtx, ct.Object.ID, ct.Object.Version); err != nil {
		return nil, fmt.Errorf("contract acceptance: %w", err)
	}
	_, _, _ = tso, dso, heat
	return &l.res, nil
}
