package powerflow

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Five times the base load collapses the voltage of case33bw: no solution
// exists, so Solve must say so, with the last mismatch and where, and
// return no result.
func TestNotConvergedIsAnError(t *testing.T) {
	m, _ := solveBase(t, loadPandapower(t, "case33bw.json"))
	p, q := m.BaseInjections()
	for i := range p {
		p[i] *= 5
		q[i] *= 5
	}
	r, err := m.Solve(p, q, Options{MaxIter: 15})
	var nc *NotConvergedError
	if !errors.As(err, &nc) {
		t.Fatalf("want *NotConvergedError, got result %v, error %v", r, err)
	}
	if r != nil {
		t.Fatal("a result was returned with the error")
	}
	if nc.Bus == "" || !(nc.MaxMismatchMVA > 1e-8) || (nc.Kind != "P" && nc.Kind != "Q") {
		t.Fatalf("error lacks the mismatch or the bus: %+v", nc)
	}
	if !strings.Contains(err.Error(), "not converged") || !strings.Contains(err.Error(), nc.Bus) {
		t.Fatalf("message %q", err)
	}
	t.Log(err)

	// The same day in a series stops at that interval.
	p0, q0 := m.BaseInjections()
	_, err = m.RunSeries([]Interval{{p0, q0}, {p, q}}, Options{MaxIter: 15})
	if !errors.As(err, &nc) || !strings.Contains(err.Error(), "interval 1 of 2") {
		t.Fatalf("series: %v", err)
	}
}

func TestBadInjections(t *testing.T) {
	m, _ := solveBase(t, loadPandapower(t, "case33bw.json"))
	p, q := m.BaseInjections()
	if _, err := m.Solve(p[:5], q, Options{}); err == nil || !strings.Contains(err.Error(), "5 P and 33 Q injections for 33 buses") {
		t.Fatalf("short vector: %v", err)
	}
	p[m.Network().BusIndex()["7"]] = math.NaN()
	if _, err := m.Solve(p, q, Options{}); err == nil || !strings.Contains(err.Error(), `bus "7" is not a number`) {
		t.Fatalf("NaN: %v", err)
	}
}

func TestCompileRejectsInvalidNetwork(t *testing.T) {
	n := loadPandapower(t, "case33bw.json")
	for i := range n.Lines {
		if n.Lines[i].ID == "line3" {
			n.Lines[i].XOhmPerKM, n.Lines[i].ROhmPerKM = 0, 0
		}
	}
	if _, err := Compile(n); err == nil || !strings.Contains(err.Error(), `line "line3": impedance r=0 x=0 ohm/km is missing`) {
		t.Fatalf("want the missing impedance named, got %v", err)
	}
}
