package app

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/gridops"
	"github.com/flexhub/flexhub/powerflow"
)

// Grid forecasts and the operating states computed on them
// (docs/GRID_FORECASTS.md): the DSO uploads a forecast for the current
// version of a grid area's model; flexhub runs the power flow of every
// interval before storing it (a forecast whose power flow does not
// converge is refused, naming the interval), keeps a summary per
// interval, and computes on those states the traffic light of bids and
// orders (trafficlight_check.go), the flexibility needs that would remove
// the violations, and the hosting capacity at a connection point for a
// grid prequalification.

// gridStates caches analysers per grid model version and operating states
// per forecast (or a model's base case): both are immutable once built,
// and each state caches its own sensitivities and AC limits, so the lights
// of many bids in one interval cost one factorisation.
type gridStates struct {
	mu        sync.Mutex
	analysers map[string]*gridops.Analyser
	states    map[string][]*gridops.State // forecast id, or "base:"+model id
	order     []string                    // state keys, oldest first
}

const maxCachedStateSets = 16

// gridAnalyser returns the analyser of a grid model version.
func (s *Service) gridAnalyser(ctx context.Context, tx flexhub.Tx, modelID string) (*gridops.Analyser, error) {
	c := &s.gstates
	c.mu.Lock()
	a := c.analysers[modelID]
	c.mu.Unlock()
	if a != nil {
		return a, nil
	}
	m, err := s.CompiledGridModel(ctx, tx, modelID)
	if err != nil {
		return nil, err
	}
	a, err = gridops.New(m, gridops.DefaultLimits(), powerflow.Options{})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.analysers == nil {
		c.analysers = map[string]*gridops.Analyser{}
	}
	if len(c.analysers) >= maxCompiledModels {
		clear(c.analysers)
	}
	c.analysers[modelID] = a
	return a, nil
}

func (c *gridStates) get(key string) []*gridops.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states[key]
}

func (c *gridStates) put(key string, st []*gridops.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.states == nil {
		c.states = map[string][]*gridops.State{}
	}
	if _, ok := c.states[key]; !ok {
		c.order = append(c.order, key)
	}
	c.states[key] = st
	for len(c.order) > maxCachedStateSets {
		delete(c.states, c.order[0])
		c.order = c.order[1:]
	}
}

// baseInjections splits a network's loads and generators per bus (MW,
// Mvar; loads as consumption).
type baseInjections struct {
	loadP, loadQ, genP, genQ []float64
}

func splitInjections(net *grid.Network) baseInjections {
	idx := net.BusIndex()
	n := len(net.Buses)
	b := baseInjections{loadP: make([]float64, n), loadQ: make([]float64, n), genP: make([]float64, n), genQ: make([]float64, n)}
	for _, l := range net.Loads {
		i := idx[l.Bus]
		b.loadP[i] += l.PMW
		b.loadQ[i] += l.QMvar
	}
	for _, g := range net.Gens {
		i := idx[g.Bus]
		b.genP[i] += g.PMW
		b.genQ[i] += g.QMvar
	}
	return b
}

// forecastInjections builds the net injections (generation positive) of
// every interval of a forecast whose series name bus indices in busOf.
func forecastInjections(net *grid.Network, f *flexhub.GridForecastSpec, busOf []int) []powerflow.Interval {
	base := splitInjections(net)
	n := len(net.Buses)
	out := make([]powerflow.Interval, f.Intervals)
	for k := range out {
		ls, gs := 1.0, 1.0
		if len(f.LoadScalePercent) > 0 {
			ls = f.LoadScalePercent[k] / 100
		}
		if len(f.GenerationScalePercent) > 0 {
			gs = f.GenerationScalePercent[k] / 100
		}
		p, q := make([]float64, n), make([]float64, n)
		for i := range n {
			p[i] = gs*base.genP[i] - ls*base.loadP[i]
			q[i] = gs*base.genQ[i] - ls*base.loadQ[i]
		}
		for j, sr := range f.Series {
			i := busOf[j]
			lp, lq := ls*base.loadP[i], ls*base.loadQ[i]
			gp, gq := gs*base.genP[i], gs*base.genQ[i]
			if len(sr.Load) > 0 {
				lp = sr.MW(sr.Load[k])
				lq = lp * ratio(base.loadQ[i], base.loadP[i])
			}
			if len(sr.Generation) > 0 {
				gp = sr.MW(sr.Generation[k])
				gq = gp * ratio(base.genQ[i], base.genP[i])
			}
			p[i], q[i] = gp-lp, gq-lq
		}
		out[k] = powerflow.Interval{PMW: p, QMvar: q}
	}
	return out
}

// ratio is q/p, 0 when p is 0 (the bus's base power factor).
func ratio(q, p float64) float64 {
	if p == 0 {
		return 0
	}
	return q / p
}

// summariseStates turns gridops' interval summaries into the register's.
func summariseStates(st []*gridops.State) []flexhub.GridStateSummary {
	out := make([]flexhub.GridStateSummary, len(st))
	for k, s := range st {
		sm := s.Summary()
		g := flexhub.GridStateSummary{Start: sm.Start, MinVmPU: round4(sm.MinVmPU), MinVmBus: sm.MinVmBus, MaxVmPU: round4(sm.MaxVmPU), MaxVmBus: sm.MaxVmBus,
			MaxLoadingPercent: math.Round(sm.MaxLoadingPercent*10) / 10, MaxLoadingElement: sm.MaxLoadingElement, NetLoadMW: math.Round(sm.LoadMW*1e6) / 1e6}
		for _, v := range sm.Violations {
			g.Violations = append(g.Violations, v.String())
		}
		out[k] = g
	}
	return out
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// UploadGridForecast stores a forecast for the current version of a grid
// model, by the grid area's DSO, after running the power flow of every
// interval.
func (s *Service) UploadGridForecast(ctx context.Context, modelID string, spec flexhub.GridForecastSpec) (*flexhub.GridForecast, error) {
	by, err := actor(ctx, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	f := &flexhub.GridForecast{ID: flexhub.NewID(), GridModelID: modelID, GridForecastSpec: spec, End: spec.Until(), CreatedBy: by.ID, CreatedAt: s.now()}
	var states []*gridops.State
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		m, _, err := gridModelFor(ctx, tx, by, modelID, true)
		if err != nil {
			return err
		}
		cur, err := tx.CurrentGridModel(ctx, m.GridAreaID)
		if err != nil {
			return err
		}
		if cur.ID != m.ID {
			return flexhub.RuleErrorf(flexhub.EConflict, "grid_forecast.model", "", "grid model %s is version %d; grid area %s is at version %d (%s): forecast the current version",
				m.ID, m.ModelVersion, m.GridAreaID, cur.ModelVersion, cur.ID)
		}
		f.GridAreaID, f.ModelVersion = m.GridAreaID, m.ModelVersion
		net, err := loadNetwork(ctx, tx, m.ID)
		if err != nil {
			return err
		}
		busOf, err := forecastBuses(ctx, tx, m.ID, net, &f.GridForecastSpec)
		if err != nil {
			return err
		}
		a, err := s.gridAnalyser(ctx, tx, m.ID)
		if err != nil {
			return err
		}
		states, err = a.Day(gridops.Forecast{Start: spec.Start, Step: flexhub.GridForecastStep, Intervals: forecastInjections(net, &f.GridForecastSpec, busOf)})
		if err != nil {
			return flexhub.RuleErrorf(flexhub.EInvalid, "grid_forecast.power_flow", "", "the forecast's power flow does not solve, so no state of it can be trusted: %v", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.States = summariseStates(states)
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		m, err := tx.GridModel(ctx, modelID)
		if err != nil {
			return err
		}
		if cur, err := tx.CurrentGridModel(ctx, m.GridAreaID); err != nil || cur.ID != m.ID {
			if err == nil {
				err = flexhub.Errorf(flexhub.EConflict, "grid area %s got version %d while the forecast was computed: upload it again", m.GridAreaID, cur.ModelVersion)
			}
			return err
		}
		if err := tx.CreateGridForecast(ctx, f); err != nil {
			return err
		}
		return s.record(ctx, tx, by, "grid_forecast.uploaded", flexhub.KindGridForecast, f.ID, f.Version, f)
	})
	if err != nil {
		return nil, err
	}
	s.gstates.put(f.ID, states)
	return f, nil
}

// forecastBuses resolves each series to a bus index of the network: its
// bus, or its connection point's bus in this model version. Every problem
// is listed.
func forecastBuses(ctx context.Context, tx flexhub.Tx, modelID string, net *grid.Network, spec *flexhub.GridForecastSpec) ([]int, error) {
	buses := net.BusIndex()
	var cpBus map[string]string
	out := make([]int, len(spec.Series))
	var problems []string
	seen := map[int]int{}
	for j, sr := range spec.Series {
		id := sr.BusID
		if sr.ConnectionPointID != "" {
			if cpBus == nil {
				ms, err := tx.GridModelMappings(ctx, modelID)
				if err != nil {
					return nil, err
				}
				cpBus = map[string]string{}
				for _, m := range ms {
					cpBus[m.ConnectionPointID] = m.BusID
				}
			}
			b, ok := cpBus[sr.ConnectionPointID]
			if !ok {
				problems = append(problems, fmt.Sprintf("series[%d]: connection point %s is not mapped to a bus of grid model %s", j, sr.ConnectionPointID, modelID))
				continue
			}
			id = b
		}
		i, ok := buses[id]
		if !ok {
			problems = append(problems, fmt.Sprintf("series[%d]: bus %q does not exist in grid model %s", j, id, modelID))
			continue
		}
		if prev, dup := seen[i]; dup {
			problems = append(problems, fmt.Sprintf("series[%d]: bus %s already has series[%d]", j, id, prev))
			continue
		}
		seen[i] = j
		out[j] = i
	}
	if len(problems) > 0 {
		return nil, flexhub.NewProblems("series", "the forecast names buses or connection points the grid model does not have", problems)
	}
	return out, nil
}

// forecastStates returns a stored forecast's operating states (computed
// once per process, then cached).
func (s *Service) forecastStates(ctx context.Context, tx flexhub.Tx, f *flexhub.GridForecast) ([]*gridops.State, error) {
	if st := s.gstates.get(f.ID); st != nil {
		return st, nil
	}
	net, err := loadNetwork(ctx, tx, f.GridModelID)
	if err != nil {
		return nil, err
	}
	busOf, err := forecastBuses(ctx, tx, f.GridModelID, net, &f.GridForecastSpec)
	if err != nil {
		return nil, err
	}
	a, err := s.gridAnalyser(ctx, tx, f.GridModelID)
	if err != nil {
		return nil, err
	}
	st, err := a.Day(gridops.Forecast{Start: f.Start, Step: flexhub.GridForecastStep, Intervals: forecastInjections(net, &f.GridForecastSpec, busOf)})
	if err != nil {
		return nil, fmt.Errorf("grid forecast %s: %w", f.ID, err)
	}
	s.gstates.put(f.ID, st)
	return st, nil
}

// baseState is a model's own base case (its loads and generators as
// uploaded), the state of intervals no forecast covers.
func (s *Service) baseState(ctx context.Context, tx flexhub.Tx, modelID string) (*gridops.State, error) {
	key := "base:" + modelID
	if st := s.gstates.get(key); st != nil {
		return st[0], nil
	}
	a, err := s.gridAnalyser(ctx, tx, modelID)
	if err != nil {
		return nil, err
	}
	p, q := a.Model().BaseInjections()
	st, err := a.NewState(time.Time{}, time.Time{}, p, q)
	if err != nil {
		return nil, fmt.Errorf("grid model %s base case: %w", modelID, err)
	}
	s.gstates.put(key, []*gridops.State{st})
	return st, nil
}

// statesOver returns the operating states of a model over [from, to) in
// 15-minute steps — from the newest forecast covering each step, else the
// base case — and a description of their source.
func (s *Service) statesOver(ctx context.Context, tx flexhub.Tx, modelID string, from, to time.Time) ([]*gridops.State, string, error) {
	var out []*gridops.State
	sources := map[string]bool{}
	var order []string
	for t := from.Truncate(flexhub.GridForecastStep); t.Before(to); t = t.Add(flexhub.GridForecastStep) {
		f, err := tx.GridForecastAt(ctx, modelID, t)
		src := ""
		switch {
		case flexhub.ErrorKind(err) == flexhub.ENotFound:
			st, err := s.baseState(ctx, tx, modelID)
			if err != nil {
				return nil, "", err
			}
			out = append(out, st)
			src = "the model's base case"
		case err != nil:
			return nil, "", err
		default:
			st, err := s.forecastStates(ctx, tx, f)
			if err != nil {
				return nil, "", err
			}
			out = append(out, st[int(t.Sub(f.Start)/flexhub.GridForecastStep)])
			src = "forecast " + f.ID
		}
		if !sources[src] {
			sources[src] = true
			order = append(order, src)
		}
	}
	desc := ""
	for i, x := range order {
		if i > 0 {
			desc += ", "
		}
		desc += x
	}
	return out, desc, nil
}

// GetGridForecast reads a forecast (the DSO and the TSO of the control
// area, as its grid model).
func (s *Service) GetGridForecast(ctx context.Context, id string) (*flexhub.GridForecast, error) {
	var out *flexhub.GridForecast
	err := s.viewAs(ctx, func(tx flexhub.Tx, by *flexhub.Party) error {
		f, err := tx.GridForecast(ctx, id)
		if err != nil {
			return err
		}
		if _, _, err := gridModelFor(ctx, tx, by, f.GridModelID, false); err != nil {
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				return notFound("grid forecast", id)
			}
			return err
		}
		out = f
		return nil
	})
	return out, err
}

// ListGridForecasts lists a grid model's forecasts.
func (s *Service) ListGridForecasts(ctx context.Context, modelID string, pg flexhub.Page) (*ListResult[flexhub.GridForecast], error) {
	out := &ListResult[flexhub.GridForecast]{}
	err := s.viewAs(ctx, func(tx flexhub.Tx, by *flexhub.Party) (err error) {
		if _, _, err := gridModelFor(ctx, tx, by, modelID, false); err != nil {
			return err
		}
		out.Items, out.Next, err = tx.ListGridForecasts(ctx, modelID, pg)
		return err
	})
	return out, err
}

// GridNeed is a flexibility need derived from a forecast, ready to
// publish (POST /v1/needs with a product): where (connection points
// mapped to the buses that can relieve the limit, and the buses
// themselves), when, how much, which direction, active or reactive.
type GridNeed struct {
	Start              time.Time          `json:"start"`
	End                time.Time          `json:"end"`
	Kind               string             `json:"kind" enum:"active,reactive"`
	Direction          string             `json:"direction" enum:"up,down"`
	ConnectionPointIDs []string           `json:"connection_point_ids" nullable:"false" doc:"mapped connection points at the buses that relieve the limit (empty when none is mapped yet)"`
	Buses              []gridops.NeedBus  `json:"buses" doc:"the buses that relieve the limit, with their effect relative to the most effective (0-1]"`
	Limiting           string             `json:"limiting" doc:"the limit the need removes, e.g. line 12"`
	Reason             string             `json:"reason"`
	Resolved           bool               `json:"resolved" doc:"an AC power flow confirms the need, delivered, removes the violations in every interval"`
	Intervals          []GridNeedInterval `json:"intervals"`
}

// GridNeedInterval is a need's quantity in one interval.
type GridNeedInterval struct {
	Start     time.Time     `json:"start"`
	Quantity  flexhub.Power `json:"quantity" doc:"kW (active) or kvar (reactive)"`
	Violation string        `json:"violation" doc:"the violation it removes there"`
}

// GridForecastNeeds derives the flexibility needs that would remove a
// forecast's violations (gridops.Needs on its states), by the DSO.
func (s *Service) GridForecastNeeds(ctx context.Context, id, kind string) ([]GridNeed, error) {
	by, err := actor(ctx, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if kind == "" {
		kind = string(gridops.Active)
	}
	if kind != string(gridops.Active) && kind != string(gridops.Reactive) {
		return nil, flexhub.FieldErrorf("kind", "%q is not a kind: use active or reactive", kind)
	}
	var out []GridNeed
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		f, err := tx.GridForecast(ctx, id)
		if err != nil {
			return err
		}
		if _, _, err := gridModelFor(ctx, tx, by, f.GridModelID, true); err != nil {
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				return notFound("grid forecast", id)
			}
			return err
		}
		states, err := s.forecastStates(ctx, tx, f)
		if err != nil {
			return err
		}
		a, err := s.gridAnalyser(ctx, tx, f.GridModelID)
		if err != nil {
			return err
		}
		needs, err := a.Needs(states, gridops.NeedOptions{Kind: gridops.PowerKind(kind)}, nil)
		if err != nil {
			return err
		}
		ms, err := tx.GridModelMappings(ctx, f.GridModelID)
		if err != nil {
			return err
		}
		cps := map[string][]string{}
		for _, m := range ms {
			cps[m.BusID] = append(cps[m.BusID], m.ConnectionPointID)
		}
		unit := "kW"
		if kind == string(gridops.Reactive) {
			unit = "kvar"
		}
		out = []GridNeed{}
		for _, n := range needs {
			g := GridNeed{Start: n.Start, End: n.End, Kind: string(n.Kind), Direction: string(n.Direction), ConnectionPointIDs: []string{}, Buses: n.Buses,
				Limiting: n.Limiting.String(), Reason: n.Reason, Resolved: n.Resolved}
			for _, b := range n.Buses {
				g.ConnectionPointIDs = append(g.ConnectionPointIDs, cps[b.Bus]...)
			}
			for _, iv := range n.Intervals {
				g.Intervals = append(g.Intervals, GridNeedInterval{Start: iv.Start, Quantity: flexhub.Power{Value: math.Ceil(iv.Quantity*1000) / 1000, Unit: unit},
					Violation: iv.Violation.String()})
			}
			out = append(out, g)
		}
		return nil
	})
	return out, err
}

// HostingCapacity is what a unit's bus takes in its grid's operating
// states: the grid prequalification's limits computed from the grid.
type HostingCapacity struct {
	ResourceID   string             `json:"resource_id"`
	GridModelID  string             `json:"grid_model_id"`
	ModelVersion int64              `json:"model_version"`
	BusID        string             `json:"bus_id"`
	From         time.Time          `json:"from"`
	To           time.Time          `json:"to"`
	States       string             `json:"states" doc:"what the operating states came from: forecasts, or the model's base case"`
	LimitUp      flexhub.Power      `json:"limit_up" doc:"the most upward change (more generation or less consumption) that keeps every limit in every state; offer it as limit_up of a limited approval"`
	LimitDown    flexhub.Power      `json:"limit_down" doc:"the most downward change"`
	Capacities   []gridops.Capacity `json:"capacities" doc:"all four (active and reactive, up and down), with the limiting element and the state it binds in"`
}

// GridPrequalificationCapacity computes, for a grid prequalification's
// unit, the hosting capacity at its bus over [from, to) (15-minute
// states: forecasts where they exist, else the model's base case), by
// the DSO deciding it.
func (s *Service) GridPrequalificationCapacity(ctx context.Context, id string, from, to time.Time) (*HostingCapacity, error) {
	by, err := actor(ctx, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	from, to = from.UTC(), to.UTC()
	if !to.After(from) || to.Sub(from) > 7*24*time.Hour {
		return nil, flexhub.FieldErrorf("to", "give from < to, at most 7 days apart")
	}
	var out *HostingCapacity
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		g, err := tx.GridPrequalification(ctx, id)
		if err != nil {
			return err
		}
		if g.DSOID != by.ID {
			return notFound("grid prequalification", id)
		}
		ref, err := tx.ConnectionPointBus(ctx, g.ConnectionPointID)
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return flexhub.RuleErrorf(flexhub.EInvalid, "grid_model.unmapped", "", "connection point %s is not mapped to a bus of its grid area's current grid model: upload a model and map it first (docs/GRID_MODELS.md)", g.ConnectionPointID)
		}
		if err != nil {
			return err
		}
		states, src, err := s.statesOver(ctx, tx, ref.GridModelID, from, to)
		if err != nil {
			return err
		}
		a, err := s.gridAnalyser(ctx, tx, ref.GridModelID)
		if err != nil {
			return err
		}
		caps, err := a.HostingCapacity(states, ref.BusID, gridops.HostingOptions{})
		if err != nil {
			return err
		}
		out = &HostingCapacity{ResourceID: g.ResourceID, GridModelID: ref.GridModelID, ModelVersion: ref.ModelVersion, BusID: ref.BusID, From: from, To: to, States: src, Capacities: caps}
		for _, c := range caps {
			if c.Kind != gridops.Active {
				continue
			}
			p := flexhub.Power{Value: math.Floor(c.Limit*1000) / 1000, Unit: "kW"}
			if c.Direction == gridops.Up {
				out.LimitUp = p
			} else {
				out.LimitDown = p
			}
		}
		return nil
	})
	return out, err
}
