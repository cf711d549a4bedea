package app

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/clearing"
	"github.com/flexhub/flexhub/gridops"
	"github.com/flexhub/flexhub/powerflow"
)

// A DSO's clearing in its own grid (docs/GRID_CLEARING.md): when the
// buyer of a session's need is the DSO of the need's grid area and that
// area has a grid model, the clearing takes the grid's linearised limits
// (every line and transformer loading, every bus voltage band, at the
// operating state of each interval: the newest forecast covering it, else
// the model's base case) as network rows, so the selected bids meet the
// need without breaking a limit the forecast keeps or worsening one it
// already breaks; a full AC power flow of each cleared interval then
// verifies the result and the need result reports any residual.

// gridClear is what a grid-aware clearing reads from the store.
type gridClear struct {
	modelID    string
	gridAreaID string
	version    int64
	model      *powerflow.Model
	slack      int            // a slack bus: bids outside the grid sit there (no effect)
	bus        map[string]int // bid id → bus index of the unit it moves
	states     map[int64][]*gridops.State
	source     map[int64]string
}

// gridLimits are the limits the grid-aware clearing keeps: a bus's own
// band, else 0.9–1.1 p.u.; loadings up to 100 % (as gridops' defaults).
var gridLimits = clearing.GridLimits{}

// loadGridClear returns the grid side of a session's clearing, nil when
// the session is not a DSO's clearing in a grid area with a model.
func (s *Service) loadGridClear(ctx context.Context, tx flexhub.Tx, in *clearInput) (*gridClear, error) {
	var need *flexhub.Need
	for _, n := range in.needs {
		if n.Status != flexhub.NeedCancelled {
			need = n
			break
		}
	}
	if need == nil {
		return nil, nil
	}
	gaID := need.GridAreaID
	if gaID == "" && len(need.ConnectionPointIDs) > 0 {
		cp, err := tx.ConnectionPoint(ctx, need.ConnectionPointIDs[0])
		if err != nil {
			return nil, err
		}
		gaID = cp.GridAreaID
	}
	if gaID == "" {
		return nil, nil
	}
	ga, err := tx.GridArea(ctx, gaID)
	if err != nil {
		return nil, err
	}
	if ga.DSOID != need.SystemOperatorID {
		return nil, nil // not the DSO's own grid: the traffic light decides
	}
	gm, err := tx.CurrentGridModel(ctx, ga.ID)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	g, err := s.newGridClear(ctx, tx, gm)
	if err != nil {
		return nil, err
	}
	direction, unit := need.Direction, "W"
	if in.product.PowerType == "reactive" {
		unit = "var"
	}
	for _, b := range in.bids {
		if b.Status != flexhub.BidSubmitted {
			continue
		}
		_, units, err := resourceUnits(ctx, tx, b.ResourceID)
		if err != nil {
			return nil, err
		}
		ref, err := unitsBus(ctx, tx, units, direction, unit)
		if err != nil {
			return nil, err
		}
		if ref != nil && ref.GridModelID == gm.ID {
			g.bus[b.ID] = ref.BusIndex
		}
	}
	res := in.product.Resolution()
	for _, n := range in.needs {
		for _, iv := range n.Intervals {
			if err := g.addState(ctx, s, tx, iv.Start, res); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// unitsBus is where a bid's resource sits in its grid model: a group
// sits where most of its capability in the direction is (its units'
// buses are not told apart: docs/GRID_CLEARING.md); nil when no unit has
// a connection point mapped to a bus.
func unitsBus(ctx context.Context, tx flexhub.Tx, units []*flexhub.Resource, direction, unit string) (*flexhub.GridBusRef, error) {
	best, bestCap := (*flexhub.Resource)(nil), int64(-1)
	for _, u := range units {
		if c := capability(u, direction, unit, 0); c > bestCap && u.ConnectionPointID != "" {
			best, bestCap = u, c
		}
	}
	if best == nil {
		return nil, nil
	}
	ref, err := tx.ConnectionPointBus(ctx, best.ConnectionPointID)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return nil, nil
	}
	return ref, err
}

// newGridClear compiles a grid model for a clearing (no bids placed, no
// states read yet).
func (s *Service) newGridClear(ctx context.Context, tx flexhub.Tx, gm *flexhub.GridModel) (*gridClear, error) {
	m, err := s.CompiledGridModel(ctx, tx, gm.ID)
	if err != nil {
		return nil, err
	}
	net := m.Network()
	g := &gridClear{modelID: gm.ID, gridAreaID: gm.GridAreaID, version: gm.ModelVersion, model: m, bus: map[string]int{}, states: map[int64][]*gridops.State{}, source: map[int64]string{}}
	if len(net.Slacks) == 0 {
		return nil, fmt.Errorf("grid model %s has no slack", gm.ID)
	}
	g.slack = net.BusIndex()[net.Slacks[0].Bus]
	return g, nil
}

// addState reads the operating states of the interval from start (the
// newest forecast covering it, else the base case), once.
func (g *gridClear) addState(ctx context.Context, s *Service, tx flexhub.Tx, start time.Time, res time.Duration) error {
	k := start.UnixMicro()
	if _, ok := g.states[k]; ok {
		return nil
	}
	st, src, err := s.statesOver(ctx, tx, g.modelID, start, start.Add(res))
	if err != nil {
		return err
	}
	g.states[k], g.source[k] = st, src
	return nil
}

// network places the engine's bids and writes the grid rows of every
// column (engineBid[i]: the session's bid behind engine bid i, signs[i]
// +1 when accepting it injects more — an upward need — and −1 for a
// downward one; starts[c]: column c's interval start).
func (g *gridClear) network(p *clearing.Problem, engineBid []*flexhub.Bid, signs []int8, starts []int64, reactive bool) (int, error) {
	nw := &clearing.Network{Bids: make([]clearing.NetBid, len(p.Bids))}
	busSet := map[int]bool{}
	for i, b := range engineBid {
		bus, ok := g.bus[b.ID]
		if !ok {
			bus = g.slack
		}
		nw.Bids[i] = clearing.NetBid{Bus: bus, Reactive: reactive, Sign: signs[i]}
		busSet[bus] = true
	}
	buses := make([]int, 0, len(busSet))
	for b := range busSet {
		buses = append(buses, b)
	}
	limits := 0
	for c, k := range starts {
		for _, st := range g.states[k] {
			rows, n, err := clearing.GridRows(g.model, st.Result, c, buses, gridLimits)
			if err != nil {
				return 0, err
			}
			nw.Rows = append(nw.Rows, rows...)
			limits = max(limits, n)
		}
	}
	p.Network = nw
	return limits, nil
}

// maxGridPasses bounds the clear → check → re-linearise loop.
const maxGridPasses = 4

// gridBest keeps, over the passes of a grid-aware clearing, the best
// clearing the AC check found clean (least shortfall, then least cost
// Σ accepted × price); with none clean, the first offered (the rows at
// the forecast, whose residual the need result reports).
type gridBest struct {
	ok, clean bool
	short     int64
	cost      *big.Int
	accepted  [][]int64
	reasons   []string
	out       []*flexhub.GridOutcome
}

// offer considers one pass's clearing (accepted per bid and column of p)
// and its AC check.
func (g *gridBest) offer(p *clearing.Problem, accepted [][]int64, reasons []string, out []*flexhub.GridOutcome) {
	clean := true
	for _, o := range out {
		clean = clean && len(o.After) == 0
	}
	var short int64
	cost := new(big.Int)
	for c, d := range p.Demand {
		var got int64
		for i := range p.Bids {
			got += accepted[i][c]
			cost.Add(cost, new(big.Int).Mul(big.NewInt(accepted[i][c]), big.NewInt(p.Bids[i].Price[c])))
		}
		short += max(0, d-got)
	}
	switch {
	case !g.ok: // the first: kept whatever it is
	case g.clean && !clean:
		return
	case g.clean == clean && (short > g.short || short == g.short && cost.Cmp(g.cost) >= 0):
		return
	}
	g.ok, g.clean, g.short, g.cost, g.reasons, g.out = true, clean, short, cost, reasons, out
	g.accepted = make([][]int64, len(accepted))
	for i := range accepted {
		g.accepted[i] = append([]int64(nil), accepted[i]...)
	}
}

// verify runs the AC power flow of each column's cleared state and
// reports it (accepted: per engine bid and column, in W or var), with
// the cleared operating points (per column and state) to re-linearise at.
func (g *gridClear) verify(p *clearing.Problem, accepted [][]int64, starts []int64, limits int) ([]*flexhub.GridOutcome, [][]*powerflow.Result, error) {
	out := make([]*flexhub.GridOutcome, len(starts))
	ats := make([][]*powerflow.Result, len(starts))
	r := &clearing.Result{Accepted: accepted}
	for c, k := range starts {
		o := &flexhub.GridOutcome{GridModelID: g.modelID, ModelVersion: g.version, States: g.source[k], Limits: limits, After: []string{}}
		for _, st := range g.states[k] {
			for _, v := range st.Violations() {
				o.Before = append(o.Before, v.String())
			}
			chk, err := clearing.CheckGrid(g.model, st.PMW, st.QMvar, p, r, c, gridLimits, 0.5, 0.001)
			if err != nil {
				return nil, nil, err
			}
			ats[c] = append(ats[c], chk.After)
			for _, v := range chk.Violations {
				o.After = append(o.After, fmt.Sprintf("%s at %.4g (allowed %.4g)", v.Element, v.Value, v.Limit))
			}
			o.MaxLoadingExcess = max(o.MaxLoadingExcess, chk.MaxLoadingExcess)
			o.MaxVoltageExcess = max(o.MaxVoltageExcess, chk.MaxVoltageExcess)
		}
		out[c] = o
	}
	return out, ats, nil
}

// relinearise replaces the network rows with rows linearised at the
// cleared operating points (clearing.GridRowsAt: value there plus the
// sensitivity times the change from the accepted quantities).
func (g *gridClear) relinearise(p *clearing.Problem, accepted [][]int64, starts []int64, ats [][]*powerflow.Result) error {
	var rows []clearing.NetRow
	for c, k := range starts {
		x0 := make([]int64, len(p.Bids))
		for b := range p.Bids {
			x0[b] = accepted[b][c]
		}
		for i, st := range g.states[k] {
			rs, _, err := clearing.GridRowsAt(g.model, st.Result, ats[c][i], p, x0, c, gridLimits)
			if err != nil {
				return err
			}
			rows = append(rows, rs...)
		}
	}
	p.Network.Rows = rows
	return nil
}
