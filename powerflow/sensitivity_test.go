package powerflow

import (
	"math"
	"testing"
)

// The linear sensitivities must predict what the full power flow does for
// a small injection: central differences of two converged power flows,
// ±step around the operating point. The steps are small against the
// loads at the buses (a household's Q is 0.1 kvar in lv_schutterwald:
// a larger step would cross Q = 0, where a branch current's magnitude
// bends).
func TestSensitivitiesMatchFiniteDifferences(t *testing.T) {
	for _, c := range []struct {
		file string
		step float64 // MW or Mvar
	}{
		{"case33bw.json", 1e-4},
		{"lv_schutterwald.json", 1e-5},
	} {
		t.Run(c.file, func(t *testing.T) {
			n := loadPandapower(t, c.file)
			m, base := solveBase(t, n)
			lin, err := m.Linearize(base)
			if err != nil {
				t.Fatal(err)
			}
			// The weakest bus and a bus halfway along its path.
			idx := n.BusIndex()
			weak := idx[base.MinVoltage().ID]
			buses := []int{weak, weak / 2, len(n.Buses) - 1}
			p0, q0 := m.BaseInjections()
			opt := Options{TolMVA: 1e-10}
			for _, b := range buses {
				s, err := lin.Sensitivity(b)
				if err != nil {
					t.Fatal(err)
				}
				for q, name := range []string{"P", "Q"} {
					solve := func(h float64) *Result {
						p, qq := append([]float64(nil), p0...), append([]float64(nil), q0...)
						if q == 0 {
							p[b] += h
						} else {
							qq[b] += h
						}
						r, err := m.Solve(p, qq, opt)
						if err != nil {
							t.Fatal(err)
						}
						return r
					}
					r, base := solve(c.step), solve(-c.step)
					dv, dl, dt := s.DVmDP, s.DLineLoadingDP, s.DTrafoLoadingDP
					if q == 1 {
						dv, dl, dt = s.DVmDQ, s.DLineLoadingDQ, s.DTrafoLoadingDQ
					}
					fv := make([]float64, len(dv))
					for i := range fv {
						fv[i] = (r.Buses[i].VmPU - base.Buses[i].VmPU) / (2 * c.step)
					}
					fl := make([]float64, len(dl))
					for i := range fl {
						fl[i] = (r.Lines[i].LoadingPercent - base.Lines[i].LoadingPercent) / (2 * c.step)
					}
					ft := make([]float64, len(dt))
					for i := range ft {
						ft[i] = (r.Trafos[i].LoadingPercent - base.Trafos[i].LoadingPercent) / (2 * c.step)
					}
					compare(t, "dVm/d"+name+" at bus "+s.Bus, dv, fv)
					compare(t, "dLineLoading/d"+name+" at bus "+s.Bus, dl, fl)
					compare(t, "dTrafoLoading/d"+name+" at bus "+s.Bus, dt, ft)
				}
			}
		})
	}
}

// compare checks every element whose derivative is at least 1 % of the
// largest within 2 %, and the whole vector within 2 % of its norm.
func compare(t *testing.T, what string, lin, fd []float64) {
	t.Helper()
	var big, num, den float64
	for _, x := range lin {
		big = math.Max(big, math.Abs(x))
	}
	if big == 0 {
		for i, x := range fd {
			if math.Abs(x) > 1e-9 {
				t.Errorf("%s: element %d is %.3g by finite differences but 0 linearised", what, i, x)
				return
			}
		}
		return
	}
	worst := 0.0
	for i := range lin {
		num += (lin[i] - fd[i]) * (lin[i] - fd[i])
		den += fd[i] * fd[i]
		if math.Abs(lin[i]) >= 0.01*big {
			rel := math.Abs(lin[i]-fd[i]) / math.Abs(fd[i])
			worst = math.Max(worst, rel)
			if rel > 0.02 {
				t.Errorf("%s: element %d linearised %.6g, finite difference %.6g (%.2f %%)", what, i, lin[i], fd[i], rel*100)
				return
			}
		}
	}
	if r := math.Sqrt(num / den); r > 0.02 {
		t.Errorf("%s: relative error %.3g of the whole vector", what, r)
	}
	t.Logf("%s: worst element %.3f %%, norm %.3f %%", what, worst*100, math.Sqrt(num/den)*100)
}
