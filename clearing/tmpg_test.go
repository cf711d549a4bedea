package clearing

import (
	"testing"
	"time"
)

func TestTmpG(t *testing.T) {
	t0 := time.Now()
	g := gridInstance(t, 1, 10_000)
	t.Logf("prep %v rows %d limits %d", time.Since(t0), len(g.p.Network.Rows), g.limits)
	nnz := 0
	for _, r := range g.p.Network.Rows {
		nnz += len(r.Buses)
	}
	t.Logf("nnz %d", nnz)
	t0 = time.Now()
	r, err := Solve(g.p)
	t.Logf("solve %v err %v", time.Since(t0), err)
	if err != nil {
		return
	}
	free := *g.p
	free.Network = nil
	ru, _ := Solve(&free)
	t.Logf("cost %d unconstrained %d short %d binding %d", r.BidCost, ru.BidCost, totalShort(r), bindingRows(g.p, r))
}
