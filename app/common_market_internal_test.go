package app

import (
	"testing"

	"github.com/flexhub/flexhub/clearing"
)

// A grid row in the common market holds for every subset of the awards:
// bids pushing the element up count against its upper headroom, bids
// pushing it down against its lower one, each alone — one buyer's
// activation never counts on another's to offset it.
func TestCommonMarketRowsHoldForAnySubset(t *testing.T) {
	// Three bids of 1,000 W at buses 4, 5, 6; bid 2 withdraws (sign −1).
	q := &clearing.Problem{Bids: make([]clearing.Bid, 3), Network: &clearing.Network{Bids: []clearing.NetBid{{Bus: 4, Sign: 1}, {Bus: 5, Sign: 1}, {Bus: 6, Sign: -1}}}}
	pt := &clearing.Problem{Bids: make([]clearing.Bid, 3)}
	for i := range pt.Bids {
		pt.Bids[i].Quantity = []int64{1000}
	}
	// A voltage row: +2,000 ppm per W at each bus (micro-p.u. × 10⁶), so
	// bids 0 and 1 raise it 2,000·x, bid 2 lowers it. Headroom 3 up and 1
	// down (micro-units × 10⁶ on the row's scale).
	row := clearing.NetRow{Name: "bus 9 voltage", Buses: []int32{4, 5, 6}, PPM: []int64{2000, 2000, 2000}, Up: 3, Down: 1}
	rows := perBid(pt, q, &row)
	if len(rows) != 2 {
		t.Fatalf("rows %+v: want an upper and a lower one", rows)
	}
	up, down := rows[0], rows[1]
	if up.Down != clearing.Unlimited || up.Up != 3 || len(up.Buses) != 2 || up.Buses[0] != 0 || up.Buses[1] != 1 {
		t.Errorf("upper row %+v: want bids 0 and 1 against headroom 3", up)
	}
	if down.Up != clearing.Unlimited || down.Down != 1 || len(down.Buses) != 1 || down.Buses[0] != 2 || down.PPM[0] != -2000 {
		t.Errorf("lower row %+v: want bid 2 (coefficient −2,000) against headroom 1", down)
	}
	// With room for everything up (2 bids × 1,000 W × 2,000 = 4·10⁶ ≤
	// 5·10⁶), the upper side is dropped; the lower one stays.
	row.Up = 5
	if rows := perBid(pt, q, &row); len(rows) != 1 || rows[0].Down != 1 {
		t.Errorf("rows %+v: want only the lower row", rows)
	}
	// Nothing can reach either side: no row.
	row.Down = 2
	if rows := perBid(pt, q, &row); len(rows) != 0 {
		t.Errorf("rows %+v: want none", rows)
	}
}
