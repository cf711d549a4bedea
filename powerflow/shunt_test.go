package powerflow

import (
	"math"
	"testing"

	"github.com/flexhub/flexhub/grid"
)

// A shunt is a constant admittance: at the voltage the power flow finds,
// it takes exactly what a constant-power load of P = PMW·V², Q = -QMvar·V²
// would take there, so replacing it by that load must give the same
// voltages. A capacitor (QMvar > 0) raises the voltage.
func TestShuntIsConstantAdmittance(t *testing.T) {
	n := loadPandapower(t, "case33bw.json")
	weak := "17"
	n.Shunts = []grid.Shunt{{ID: "cap", Bus: weak, PMW: 0.05, QMvar: 1.2}}
	m, r := solveBase(t, n)
	vs := 0.0
	if b, ok := r.Bus(weak); ok {
		vs = b.VmPU
	}

	plain := loadPandapower(t, "case33bw.json")
	_, r0 := solveBase(t, plain)
	v0, _ := r0.Bus(weak)
	t.Logf("bus %s: %.5f p.u. without the capacitor, %.5f with it", weak, v0.VmPU, vs)
	if vs <= v0.VmPU+0.01 {
		t.Errorf("a 1.2 Mvar capacitor at the weakest bus raised it from %.5f to only %.5f p.u.", v0.VmPU, vs)
	}

	// The same network with the shunt replaced by the load it is at vs.
	eq := loadPandapower(t, "case33bw.json")
	eq.Loads = append(eq.Loads, grid.Load{ID: "cap-as-load", Bus: weak, PMW: 0.05 * vs * vs, QMvar: -1.2 * vs * vs})
	_, re := solveBase(t, eq)
	worst := 0.0
	for i, b := range r.Buses {
		worst = math.Max(worst, math.Abs(b.VmPU-re.Buses[i].VmPU))
	}
	if worst > 1e-9 {
		t.Errorf("shunt vs its equivalent load: voltages differ by up to %.3g p.u.", worst)
	}
	// The shunt's P is consumed: the slack supplies load + losses + PMW·V².
	p, _ := m.BaseInjections()
	load := 0.0
	for _, x := range p {
		load -= x
	}
	if d := r.SlackPMW - (load + r.LossesMW + 0.05*vs*vs); math.Abs(d) > 1e-7 {
		t.Errorf("active balance off by %.3g MW", d)
	}
}

// The sensitivities come from the same admittance matrix, shunts included:
// on IEEE13 (two capacitor banks) dVm/dQ at the end of the single-phase
// lateral agrees with central differences.
func TestSensitivityWithShunts(t *testing.T) {
	n := loadCIM(t, "IEEE13.xml")
	m, base := solveBase(t, n)
	lin, err := m.Linearize(base)
	if err != nil {
		t.Fatal(err)
	}
	var b int
	for i, x := range n.Buses {
		if x.Name == "652" {
			b = i
		}
	}
	s, err := lin.Sensitivity(b)
	if err != nil {
		t.Fatal(err)
	}
	p0, q0 := m.BaseInjections()
	const h = 1e-5
	solve := func(dq float64) *Result {
		q := append([]float64(nil), q0...)
		q[b] += dq
		r, err := m.Solve(p0, q, Options{TolMVA: 1e-10})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	up, down := solve(h), solve(-h)
	largest := 0.0
	for _, x := range s.DVmDQ {
		largest = math.Max(largest, math.Abs(x))
	}
	for i, x := range s.DVmDQ {
		fd := (up.Buses[i].VmPU - down.Buses[i].VmPU) / (2 * h)
		if math.Abs(x) >= 0.01*largest && math.Abs(fd-x) > 0.02*math.Abs(x) {
			t.Errorf("bus %s: dVm/dQ %.6g, finite differences %.6g", n.Buses[i].Name, x, fd)
		}
	}
	t.Logf("dVm/dQ at 652: %.5f p.u./Mvar", s.DVmDQ[b])
}
