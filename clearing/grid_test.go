package clearing

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/powerflow"
)

func case33bw(t *testing.T) (*powerflow.Model, []float64, []float64) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "shared", "data", "grids", "pandapower", "case33bw.json"))
	if err != nil {
		t.Skipf("grid data not found: %v", err)
	}
	defer f.Close()
	net, err := grid.ReadPandapower(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := powerflow.Compile(net)
	if err != nil {
		t.Fatal(err)
	}
	p, q := m.BaseInjections()
	return m, p, q
}

// gridProblem puts one bid on each of the given buses (the i-th gets
// quantity qW and price 3000+100·i: the first listed is the cheapest) and
// builds the rows at the forecast point.
func gridProblem(t *testing.T, m *powerflow.Model, pMW, qMvar []float64, buses []int, demand, qW int64, reactive bool, sign int8, lim GridLimits) *Problem {
	t.Helper()
	p := &Problem{Demand: []int64{demand}, Network: &Network{}}
	for i, b := range buses {
		p.Bids = append(p.Bids, Bid{ID: fmt.Sprintf("bus%d", b), Quantity: []int64{qW}, Price: []int64{int64(3000 + 100*i)}, Divisible: true})
		p.Network.Bids = append(p.Network.Bids, NetBid{Bus: b, Reactive: reactive, Sign: sign})
	}
	op, err := m.Solve(pMW, qMvar, powerflow.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := GridRows(m, op, 0, buses, lim)
	if err != nil {
		t.Fatal(err)
	}
	p.Network.Rows = rows
	return p
}

// On case33bw (lowest voltage 0.913 p.u. at the feeder's end), a
// downward need served by loads switching on: the cheapest bids sit at
// the far end, where every kW pulls the voltage down. With a 0.90 p.u.
// floor the clearing must move volume to dearer bids near the substation;
// the full AC power flow of the result keeps every voltage within the
// floor up to the linearisation's residual, while the unconstrained
// clearing breaks it.
func TestGridVoltageLimitOnCase33bw(t *testing.T) {
	m, pMW, qMvar := case33bw(t)
	buses := mainFeeder(m) // far end first: cheapest
	lim := GridLimits{VMinPU: 0.90}
	p := gridProblem(t, m, pMW, qMvar, buses, 600_000, 60_000, false, -1, lim)
	r, err := Solve(p)
	if err != nil {
		t.Fatal(err)
	}
	checkConstraints(t, NetworkConstraints(p), r)
	if totalShort(r) != 0 {
		t.Fatalf("shortfall %d", totalShort(r))
	}
	free := *p
	free.Network = nil
	ru, err := Solve(&free)
	if err != nil {
		t.Fatal(err)
	}
	if r.BidCost <= ru.BidCost {
		t.Fatalf("the voltage rows did not change the clearing: %d vs %d", r.BidCost, ru.BidCost)
	}
	gc, err := CheckGrid(m, pMW, qMvar, p, r, 0, lim, 0.01, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	gu, err := CheckGrid(m, pMW, qMvar, p, ru, 0, lim, 0.01, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	if len(gu.Violations) == 0 {
		t.Fatalf("the unconstrained clearing should break the 0.90 p.u. floor (lowest %.4f)", gu.After.MinVoltage().VmPU)
	}
	if len(gc.Violations) != 0 {
		t.Fatalf("constrained clearing: AC violations beyond 0.001 p.u.: %+v", gc.Violations)
	}
	// One re-linearisation at the cleared point shrinks the residual.
	x0 := make([]int64, len(p.Bids))
	for b := range p.Bids {
		x0[b] = r.Accepted[b][0]
	}
	rows, _, err := GridRowsAt(m, gc.Before, gc.After, p, x0, 0, lim)
	if err != nil {
		t.Fatal(err)
	}
	p2 := *p
	p2.Network = &Network{Bids: p.Network.Bids, Rows: rows}
	r2, err := Solve(&p2)
	if err != nil {
		t.Fatal(err)
	}
	gc2, err := CheckGrid(m, pMW, qMvar, &p2, r2, 0, lim, 0.01, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	if gc.MaxVoltageExcess <= 0 || gc2.MaxVoltageExcess >= gc.MaxVoltageExcess/10 {
		t.Fatalf("re-linearised clearing: voltage excess %.3g p.u. after %.3g", gc2.MaxVoltageExcess, gc.MaxVoltageExcess)
	}
	t.Logf("lowest voltage: forecast %.4f, constrained %.5f (excess %.2g p.u.; after one re-linearisation %.2g), unconstrained %.4f; cost %d (re-linearised %d) vs %d",
		gc.Before.MinVoltage().VmPU, gc.After.MinVoltage().VmPU, gc.MaxVoltageExcess, gc2.MaxVoltageExcess, gu.After.MinVoltage().VmPU, r.BidCost, r2.BidCost, ru.BidCost)
}

// A voltage-control product: reactive injection bids (var) against a
// need in var. Reactive power raises the voltage through dV/dQ; with a
// ceiling 0.01 p.u. above the forecast on the far half of the feeder
// the cheap far-end bids are limited and the rest goes nearer the
// substation.
func TestGridReactiveBidsMoveVoltages(t *testing.T) {
	m, pMW, qMvar := case33bw(t)
	buses := mainFeeder(m)
	op, err := m.Solve(pMW, qMvar, powerflow.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The DSO caps the far half of the main feeder at 0.01 p.u. above
	// each bus's forecast (the other buses keep the file's band).
	for _, b := range buses[:8] {
		m.Network().Buses[b].VMaxPU = op.Buses[b].VmPU + 0.01
	}
	lim := GridLimits{}
	p := gridProblem(t, m, pMW, qMvar, buses, 900_000, 150_000, true, +1, lim)
	r, err := Solve(p)
	if err != nil {
		t.Fatal(err)
	}
	checkConstraints(t, NetworkConstraints(p), r)
	free := *p
	free.Network = nil
	ru, _ := Solve(&free)
	if r.BidCost <= ru.BidCost {
		t.Fatalf("reactive bids: the voltage ceiling did not bind (%d vs %d)", r.BidCost, ru.BidCost)
	}
	gc, err := CheckGrid(m, pMW, qMvar, p, r, 0, lim, 0.01, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	if len(gc.Violations) != 0 {
		t.Fatalf("AC violations: %+v", gc.Violations)
	}
	if totalShort(r) != 0 {
		t.Fatalf("shortfall %d var", totalShort(r))
	}
	if d := gc.After.Buses[buses[0]].VmPU - gc.Before.Buses[buses[0]].VmPU; d <= 0.005 {
		t.Fatalf("accepted reactive injection should raise the far end's voltage towards the ceiling; rose %.4f p.u.", d)
	}
}

// mainFeeder is case33bw's main feeder from its far end (pandapower bus
// "17", the weakest) back to bus "1", as bus indices.
func mainFeeder(m *powerflow.Model) []int {
	idx := m.Network().BusIndex()
	var out []int
	for b := 17; b >= 1; b-- {
		out = append(out, idx[fmt.Sprint(b)])
	}
	return out
}
