package settlement

import (
	"math/bits"
	"slices"
	"time"

	"github.com/flexhub/flexhub"
)

// Share is one metering point behind a resource and its weight in the
// split: a unit has one metering point (weight 1); a group's delivered
// energy is split over its members' metering points by weight (their
// registered maximum regulation in the order's direction).
type Share struct {
	ResourceID    string
	MeteringPoint *flexhub.MeteringPoint
	Weight        int64
}

// Rules of the errors Adjustments returns (422: the run stores nothing).
const (
	RuleNoBRP           = "settlement.no_brp"
	RuleNoMeteringPoint = "settlement.no_metering_point"
)

// Adjustments splits what a verification delivered over the BRPs of the
// metering points behind the resource, per imbalance settlement period of
// length isp: the volume to add to each BRP's metered consumption
// (delivered for up, −delivered for down). Intervals left out of the
// verification (excluded, no baseline) move nothing; each interval is
// split over its ISPs and over the shares by largest remainder, so the
// volumes add up exactly to what was delivered. A metering point with no
// BRP at the time is an error: the imbalance settlement would lose the
// volume.
func Adjustments(v *flexhub.Verification, shares []Share, isp time.Duration) ([]flexhub.ImbalanceAdjustment, error) {
	if len(shares) == 0 {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, RuleNoMeteringPoint, "", "resource %s has no metering point to attribute its activation to", v.ResourceID)
	}
	if v.Unit != "mWh" {
		return nil, nil // reactive energy is not part of the imbalance settlement
	}
	weights := make([]int64, len(shares))
	for i, s := range shares {
		weights[i] = max(s.Weight, 0)
	}
	if slices.Max(weights) == 0 {
		for i := range weights {
			weights[i] = 1
		}
	}
	type key struct {
		mp    string
		start time.Time
	}
	acc := map[key]*flexhub.ImbalanceAdjustment{}
	var order []key
	for _, iv := range v.Intervals {
		if iv.Excluded || iv.Delivered == 0 {
			continue
		}
		vol := iv.Delivered
		if v.Direction == "down" {
			vol = -vol
		}
		// over the ISPs the interval covers (or the ISP that holds it)
		var periods []time.Time
		first := iv.Start.Truncate(isp)
		for t := first; t.Before(iv.End); t = t.Add(isp) {
			periods = append(periods, t)
		}
		perISP := split(vol, ones(len(periods)))
		for pi, start := range periods {
			per := split(perISP[pi], weights)
			for si, s := range shares {
				if per[si] == 0 {
					continue
				}
				a, ok := s.MeteringPoint.AssignmentAt(start)
				if !ok || a.BRPID == "" {
					return nil, flexhub.RuleErrorf(flexhub.EInvalid, RuleNoBRP, "", "metering point %s (%s) has no BRP at %s: the energy order %s moved there cannot be attributed; assign a BRP (POST /v1/metering-points/%s/switches) and run again",
						s.MeteringPoint.ID, s.MeteringPoint.Code, start.Format(time.RFC3339), v.OrderID, s.MeteringPoint.ID)
				}
				k := key{s.MeteringPoint.ID, start}
				adj := acc[k]
				if adj == nil {
					adj = &flexhub.ImbalanceAdjustment{OrderID: v.OrderID, VerificationID: v.ID, ResourceID: s.ResourceID,
						MeteringPointID: s.MeteringPoint.ID, BRPID: a.BRPID, SupplierID: a.SupplierID, FSPID: v.FSPID,
						SystemOperatorID: v.SystemOperatorID, Start: start.UTC(), End: start.Add(isp).UTC(), Unit: "mWh"}
					acc[k] = adj
					order = append(order, k)
				}
				adj.Volume += per[si]
			}
		}
	}
	out := make([]flexhub.ImbalanceAdjustment, 0, len(order))
	for _, k := range order {
		out = append(out, *acc[k])
	}
	return out, nil
}

func ones(n int) []int64 {
	w := make([]int64, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// split divides total over weights (not all zero) by largest remainder:
// the parts add up to total exactly; ties go to the earlier weight.
func split(total int64, weights []int64) []int64 {
	var sum int64
	for _, w := range weights {
		sum += w
	}
	neg := total < 0
	t := total
	if neg {
		t = -t
	}
	parts := make([]int64, len(weights))
	rems := make([]int64, len(weights))
	var given int64
	for i, w := range weights {
		q := mulDiv(t, w, sum)
		parts[i] = q
		rems[i] = mulMod(t, w, sum)
		given += q
	}
	idx := make([]int, len(weights))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case rems[a] > rems[b]:
			return -1
		case rems[a] < rems[b]:
			return 1
		}
		return 0
	})
	for k := 0; given < t; k++ {
		parts[idx[k%len(idx)]]++
		given++
	}
	if neg {
		for i := range parts {
			parts[i] = -parts[i]
		}
	}
	return parts
}

// mulDiv is ⌊a·b/c⌋ and mulMod (a·b) mod c for a, b ≥ 0, c > 0, in 128 bits.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}

func mulMod(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	_, r := bits.Div64(hi, lo, uint64(c))
	return int64(r)
}
