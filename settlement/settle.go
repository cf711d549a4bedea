package settlement

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Held is an obligation to settle availability for, with the award that
// priced it.
type Held struct {
	Obligation *flexhub.Obligation
	Award      *flexhub.Award
}

// Activated is a verified order to settle, with what priced it: the
// product, and the award of its obligation (none for an order without
// an obligation, e.g. an automatic product).
type Activated struct {
	Verification *flexhub.Verification
	Product      *flexhub.Product
	Award        *flexhub.Award
}

// StatementInput is one FSP's dealings with one system operator over a
// period, in one currency.
type StatementInput struct {
	FSPID, SystemOperatorID string
	PeriodStart, PeriodEnd  time.Time
	Currency                string
	Held                    []Held
	Activated               []Activated
}

// BuildStatement prices everything in in: availability per obligation
// interval in the period (quantity × the award's price × duration),
// activation per verified interval (delivered energy, capped at the
// ordered energy unless the product pays over-delivery, × the activation
// price), and penalties per interval for the shortfall beyond the
// product's tolerance (× the penalty price). Each line's amount is
// rounded once, half away from zero, to 1/10000; totals are sums of
// lines. ID, RunID, versions and CreatedAt are left for the caller.
func BuildStatement(in StatementInput) (*flexhub.Statement, error) {
	st := &flexhub.Statement{FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID,
		PeriodStart: in.PeriodStart.UTC(), PeriodEnd: in.PeriodEnd.UTC(), Currency: in.Currency}
	n := 0 // at most a line per held interval, two per verified one
	for _, h := range in.Held {
		n += len(h.Obligation.Intervals)
	}
	for _, a := range in.Activated {
		n += 2 * len(a.Verification.Intervals)
	}
	st.Lines = make([]flexhub.StatementLine, 0, n)
	var avail, act, pen int64
	for _, h := range in.Held {
		ob, aw := h.Obligation, h.Award
		if aw == nil || aw.PriceBasis != "availability" {
			continue // activation-priced awards are paid per delivered energy below
		}
		if aw.Currency != in.Currency {
			return nil, fmt.Errorf("award %s is in %s, the statement in %s", aw.ID, aw.Currency, in.Currency)
		}
		for _, iv := range ob.Intervals {
			if iv.Quantity <= 0 || iv.Start.Before(in.PeriodStart) || !iv.Start.Before(in.PeriodEnd) {
				continue
			}
			ai := awardInterval(aw, iv.Start)
			if ai == nil || ai.Price == nil {
				continue
			}
			price, err := ai.Price.Parse("price")
			if err != nil {
				return nil, fmt.Errorf("award %s price at %s: %w", aw.ID, iv.Start.Format(time.RFC3339), err)
			}
			amount := availabilityAmount(iv.Quantity, price, iv.End.Sub(iv.Start))
			avail += amount
			st.Lines = append(st.Lines, flexhub.StatementLine{Kind: flexhub.LineAvailability, Start: iv.Start.UTC(), End: iv.End.UTC(),
				ResourceID: ob.ResourceID, Quantity: iv.Quantity, Unit: ob.Unit, Price: *ai.Price,
				Amount: money(amount, in.Currency), AwardID: aw.ID, BidID: aw.BidID, ObligationID: ob.ID})
		}
	}
	for _, a := range in.Activated {
		v := a.Verification
		sp := a.Product.Settlement
		if sp == nil {
			sp = &flexhub.SettlementSpec{}
		}
		unit := v.Unit
		for _, iv := range v.Intervals {
			if iv.Excluded || iv.Start.Before(in.PeriodStart) || !iv.Start.Before(in.PeriodEnd) {
				continue
			}
			price, priceNote, err := activationPrice(a, iv.Start, in.Currency)
			if err != nil {
				return nil, err
			}
			if price == nil {
				continue // nothing prices this activation (a capacity-only product without an activation price)
			}
			p, _ := price.Parse("price")
			paid := max(iv.Delivered, 0)
			if sp.OverDelivery != flexhub.OverDeliveryPaid {
				paid = min(paid, iv.Ordered)
			}
			src := flexhub.StatementLine{Start: iv.Start, End: iv.End, ResourceID: v.ResourceID, Unit: unit,
				ObligationID: v.ObligationID, OrderID: v.OrderID, VerificationID: v.ID}
			if a.Award != nil {
				src.AwardID, src.BidID = a.Award.ID, a.Award.BidID
			}
			if paid > 0 {
				l := src
				l.Kind, l.Quantity, l.Price, l.Note = flexhub.LineActivation, paid, *price, priceNote
				amount := energyAmount(paid, p)
				l.Amount = money(amount, in.Currency)
				act += amount
				st.Lines = append(st.Lines, l)
			}
			// shortfall beyond the tolerance band
			band := iv.Ordered * int64(v.TolerancePct) / 100
			short := iv.Ordered - iv.Delivered - band
			if short <= 0 {
				continue
			}
			pp, ppMoney, note := penaltyPrice(sp, p, price)
			if pp == 0 {
				continue
			}
			l := src
			l.Kind, l.Quantity, l.Price = flexhub.LinePenalty, short, ppMoney
			l.Note = fmt.Sprintf("delivered %d of %d %s ordered, tolerance %d %%; %s", iv.Delivered, iv.Ordered, unit, v.TolerancePct, note)
			if iv.Verdict == flexhub.VerifyNoData {
				l.Note = fmt.Sprintf("no complete meter data: counted as not delivered (missing_data: not_delivered); %s", note)
			}
			amount := -energyAmount(short, pp)
			l.Amount = money(amount, in.Currency)
			pen += amount
			st.Lines = append(st.Lines, l)
		}
	}
	// By start, resource and kind, else in the order made: sorted as
	// indexes (a statement of 10,000 orders has over 100,000 lines, and a
	// stable sort of the lines themselves moves them around many times).
	idx := make([]int, len(st.Lines))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		a, b := &st.Lines[i], &st.Lines[j]
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if c := strings.Compare(a.ResourceID, b.ResourceID); c != 0 {
			return c
		}
		if c := kindOrder(a.Kind) - kindOrder(b.Kind); c != 0 {
			return c
		}
		return i - j
	})
	sorted := make([]flexhub.StatementLine, len(st.Lines))
	for k, i := range idx {
		sorted[k] = st.Lines[i]
	}
	st.Lines = sorted
	st.Availability = money(avail, in.Currency)
	st.Activation = money(act, in.Currency)
	st.Penalties = money(pen, in.Currency)
	st.Total = money(avail+act+pen, in.Currency)
	return st, nil
}

func kindOrder(k string) int {
	switch k {
	case flexhub.LineAvailability:
		return 0
	case flexhub.LineActivation:
		return 1
	}
	return 2
}

func awardInterval(aw *flexhub.Award, start time.Time) *flexhub.AwardInterval {
	for i := range aw.Intervals {
		if aw.Intervals[i].Start.Equal(start) {
			return &aw.Intervals[i]
		}
	}
	return nil
}

// activationPrice is what one MWh delivered at t is paid: the award's
// price where the award was priced per activation, the bid's activation
// price where the need bought both, else the product's activation price.
func activationPrice(a Activated, t time.Time, currency string) (*flexhub.Money, string, error) {
	var price *flexhub.Money
	note := ""
	if aw := a.Award; aw != nil {
		// an interval of an award covers the market time unit starting at t
		if ai := awardIntervalCovering(aw, t); ai != nil {
			switch {
			case aw.PriceBasis == "activation" && ai.Price != nil:
				price, note = ai.Price, "the award's activation price"
			case ai.ActivationPrice != nil:
				price, note = ai.ActivationPrice, "the bid's activation price"
			}
		}
	}
	if price == nil && a.Product.Settlement != nil && a.Product.Settlement.ActivationPrice != nil {
		price, note = a.Product.Settlement.ActivationPrice, "the product's activation price"
	}
	if price != nil && price.Currency != currency {
		return nil, "", fmt.Errorf("order %s is priced in %s, the statement is in %s", a.Verification.OrderID, price.Currency, currency)
	}
	return price, note, nil
}

// awardIntervalCovering finds the award interval whose market time unit
// holds t (award intervals are market time units of the need).
func awardIntervalCovering(aw *flexhub.Award, t time.Time) *flexhub.AwardInterval {
	var best *flexhub.AwardInterval
	for i := range aw.Intervals {
		if !aw.Intervals[i].Start.After(t) {
			best = &aw.Intervals[i]
		}
	}
	if best != nil && best.Accepted > 0 {
		return best
	}
	return nil
}

// penaltyPrice is the price per MWh of shortfall: the product's penalty
// price, or penalty_pct (100 by default) of the activation price.
func penaltyPrice(sp *flexhub.SettlementSpec, activation int64, act *flexhub.Money) (int64, flexhub.Money, string) {
	if sp.PenaltyPrice != nil {
		v, _ := sp.PenaltyPrice.Parse("penalty_price")
		return v, *sp.PenaltyPrice, "the product's penalty price"
	}
	pct := int64(100)
	if sp.PenaltyPct != nil {
		pct = int64(*sp.PenaltyPct)
	}
	v := roundDiv(big.NewInt(activation*pct), big.NewInt(100))
	return v, money(v, act.Currency), fmt.Sprintf("%d %% of the activation price", pct)
}

// energyAmount is e mWh at p ten-thousandths per MWh, in ten-thousandths:
// e·p / 10^9, rounded half away from zero.
func energyAmount(e, p int64) int64 {
	num := new(big.Int).Mul(big.NewInt(e), big.NewInt(p))
	return roundDiv(num, big.NewInt(1_000_000_000))
}

// availabilityAmount is q W held for d at p ten-thousandths per MW per
// hour: q·p·seconds / (10^6·3600), rounded half away from zero (as the
// clearing computes an award's amount).
func availabilityAmount(q, p int64, d time.Duration) int64 {
	num := new(big.Int).Mul(big.NewInt(q), big.NewInt(p))
	num.Mul(num, big.NewInt(int64(d/time.Second)))
	return roundDiv(num, big.NewInt(3_600_000_000))
}

// roundDiv is num/den rounded half away from zero (den > 0).
func roundDiv(num, den *big.Int) int64 {
	neg := num.Sign() < 0
	n := new(big.Int).Abs(num)
	n.Lsh(n, 1).Add(n, den)
	n.Quo(n, new(big.Int).Lsh(den, 1))
	if neg {
		n.Neg(n)
	}
	return n.Int64()
}

func money(v int64, currency string) flexhub.Money {
	return flexhub.Money{Amount: flexhub.FormatAmount(v), Currency: currency}
}
