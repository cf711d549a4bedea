package clearing

import "fmt"

// assemble turns the per-slot quantities into a Result: totals, prices,
// payment and a reason for every bid that got nothing.
func assemble(p *Problem, m *model, x []int64, dead []bool) *Result {
	nT := m.nT
	r := &Result{
		Accepted:      make([][]int64, len(p.Bids)),
		Shortfall:     make([]int64, nT),
		ClearingPrice: make([]int64, nT),
		Reasons:       make([]string, len(p.Bids)),
	}
	flat := make([]int64, len(p.Bids)*nT)
	for b := range p.Bids {
		r.Accepted[b] = flat[b*nT : (b+1)*nT : (b+1)*nT]
	}
	for i := range m.items {
		if dead[i] {
			continue
		}
		for _, sl := range m.items[i].slots {
			st := &m.slots[sl]
			r.Accepted[st.bid][st.t] = x[sl]
		}
	}
	covered := make([]int64, nT)
	for b := range p.Bids {
		for t, v := range r.Accepted[b] {
			if v > 0 {
				covered[t] += v
				r.BidCost += v * p.Bids[b].Price[t]
				r.ClearingPrice[t] = max(r.ClearingPrice[t], p.Bids[b].Price[t])
			}
		}
	}
	for t := range nT {
		r.Shortfall[t] = max(0, p.Demand[t]-covered[t])
	}
	if p.Pricing == Uniform {
		for t := range nT {
			r.Payment += covered[t] * r.ClearingPrice[t]
		}
	} else {
		r.Payment = r.BidCost
	}
	// Reasons.
	winner := make(map[int32]int32) // group → accepted bid
	for b := range p.Bids {
		if g := m.groupOf[b]; g >= 0 && anyPositive(r.Accepted[b]) {
			if _, ok := winner[g]; !ok {
				winner[g] = int32(b)
			}
		}
	}
	for b := range p.Bids {
		if anyPositive(r.Accepted[b]) {
			continue
		}
		r.Reasons[b] = reason(p, m, r, b, winner)
	}
	return r
}

func anyPositive(v []int64) bool {
	for _, x := range v {
		if x > 0 {
			return true
		}
	}
	return false
}

// Reasons given for bids that are not accepted at all.
const (
	ReasonNothingOffered = "nothing offered: every quantity is zero"
	ReasonPriceCap       = "price above the need's maximum price"
	ReasonLinkedPriceCap = "linked bid: price above the need's maximum price in at least one of its intervals"
	ReasonNotNeeded      = "not needed: cheaper bids cover the demand"
	ReasonLinked         = "linked bid could not be accepted whole: taking all of its intervals together costs more than the alternatives"
	ReasonIndivisible    = "indivisible bid: accepting its full quantity costs more than the alternatives"
	ReasonMinQuantity    = "minimum quantity: accepting at least the minimum costs more than the alternatives"
)

func reason(p *Problem, m *model, r *Result, b int, winner map[int32]int32) string {
	bid := &p.Bids[b]
	if len(m.bidItems[b]) == 0 {
		switch {
		case !anyPositive(bid.Quantity):
			return ReasonNothingOffered
		case bid.Linked && m.capped[b]:
			return ReasonLinkedPriceCap
		default:
			return ReasonPriceCap
		}
	}
	if g := m.groupOf[b]; g >= 0 {
		if w, ok := winner[g]; ok {
			return fmt.Sprintf("excluded: bid %s of exclusive group %s was selected", bidName(p, int(w)), bid.ExclusiveGroup)
		}
	}
	// Would the bid have been worth taking in some interval on its own?
	competitive := false
	for _, it := range m.bidItems[b] {
		for _, sl := range m.items[it].slots {
			t := m.slots[sl].t
			if r.Shortfall[t] > 0 || m.slots[sl].p < r.ClearingPrice[t] {
				competitive = true
			}
		}
	}
	switch {
	case !competitive:
		return ReasonNotNeeded
	case bid.Linked:
		return ReasonLinked
	case !bid.Divisible:
		return ReasonIndivisible
	case bid.MinQuantity > 1:
		return ReasonMinQuantity
	}
	return ReasonNotNeeded
}

func bidName(p *Problem, b int) string {
	if id := p.Bids[b].ID; id != "" {
		return id
	}
	return fmt.Sprintf("#%d", b)
}
