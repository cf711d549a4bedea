package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
)

// The settlement part of `flexhub demo`: after the delivery window, the
// service's clock moves past the end of the market day and each system
// operator settles the day (app.RunSettlement, as POST
// /v1/settlement-runs does): a verification per order against the
// product's baseline, a statement per FSP, imbalance adjustments for the
// households' BRP.

// SettlementReport is the settlement part of `flexhub demo --json`.
type SettlementReport struct {
	PeriodStart   time.Time            `json:"period_start"`
	PeriodEnd     time.Time            `json:"period_end"`
	Runs          []string             `json:"run_ids"`
	Statements    []StatementReport    `json:"statements"`
	Verifications []VerificationReport `json:"verifications"`
	Adjustments   []BRPAdjustment      `json:"brp_adjustments"`
}

// StatementReport is one FSP's statement from one system operator.
type StatementReport struct {
	SystemOperator string            `json:"system_operator"`
	FSP            string            `json:"fsp"`
	Statement      flexhub.Statement `json:"statement"`
}

// VerificationReport is what one order delivered, as settled.
type VerificationReport struct {
	SystemOperator string `json:"system_operator"`
	FSP            string `json:"fsp"`
	Resource       string `json:"resource"`
	OrderID        string `json:"order_id"`
	Direction      string `json:"direction"`
	BaselineMethod string `json:"baseline_method"`
	BaselineNote   string `json:"baseline_note,omitempty"`
	OrderedMWh     int64  `json:"ordered_mwh" doc:"milliwatt-hours"`
	// BaselineMWh is the baseline's net import over the intervals that
	// count, milliwatt-hours; absent without a baseline.
	BaselineMWh  *int64 `json:"baseline_mwh,omitempty"`
	DeliveredMWh int64  `json:"delivered_mwh" doc:"milliwatt-hours, the intervals that count"`
	Verdict      string `json:"verdict"`
	AdjustedMWh  int64  `json:"adjusted_mwh" doc:"sum of the order's imbalance adjustments in the period"`
}

// BRPAdjustment sums the imbalance adjustments of one BRP.
type BRPAdjustment struct {
	BRP            string `json:"brp"`
	MeteringPoints int    `json:"metering_points"`
	Periods        int    `json:"imbalance_settlement_periods"`
	Adjustments    int    `json:"adjustments"`
	VolumeMWh      int64  `json:"volume_mwh" doc:"milliwatt-hours added to the BRP's metered consumption"`
}

// runSettlement settles the market day for each system operator.
func runSettlement(ctx context.Context, svc *app.Service, day *demo.Day) (*SettlementReport, error) {
	p, err := demo.FindParties(ctx, svc.Store())
	if err != nil {
		return nil, err
	}
	start := day.Start.UTC()
	end := day.Start.In(sydney).AddDate(0, 0, 1).UTC()
	// The day is over: the clock moves past its end.
	moved := time.Now()
	svc.SetClock(func() time.Time { return end.Add(time.Minute + time.Since(moved)).Truncate(time.Microsecond) })
	rep := &SettlementReport{PeriodStart: start, PeriodEnd: end, Statements: []StatementReport{}, Verifications: []VerificationReport{}, Adjustments: []BRPAdjustment{}}
	names := map[string]string{}
	for _, party := range []*flexhub.Party{p.DSO, p.TSO, p.Sunny, p.HeatFlex} {
		names[party.ID] = party.Name
	}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		_ = svc.Store().View(ctx, func(tx flexhub.Tx) error {
			if party, err := tx.Party(ctx, id); err == nil {
				names[id] = party.Name
			}
			return nil
		})
		if names[id] == "" {
			return id
		}
		return names[id]
	}
	type brpSum struct {
		BRPAdjustment
		mps, isps map[string]bool
	}
	brps := map[string]*brpSum{}
	for _, so := range []*flexhub.Party{p.DSO, p.TSO} {
		as := app.WithActor(ctx, so)
		created, err := svc.RunSettlement(as, flexhub.SettlementRunSpec{PeriodStart: start, PeriodEnd: end}, "")
		if err != nil {
			return nil, fmt.Errorf("%s settling %s: %w", so.Name, start.Format(time.DateOnly), err)
		}
		run := created.Object
		rep.Runs = append(rep.Runs, run.ID)
		page := flexhub.Page{Limit: 500}
		sts, err := svc.ListStatements(as, app.StatementFilter{RunID: run.ID}, page)
		if err != nil {
			return nil, err
		}
		for _, st := range sts.Items {
			rep.Statements = append(rep.Statements, StatementReport{SystemOperator: so.Name, FSP: name(st.FSPID), Statement: *st})
		}
		adjs, err := svc.ListImbalanceAdjustments(as, app.AdjustmentFilter{RunID: run.ID}, page)
		if err != nil {
			return nil, err
		}
		perOrder := map[string]int64{}
		for _, a := range adjs.Items {
			perOrder[a.OrderID] += a.Volume
			b := brps[a.BRPID]
			if b == nil {
				b = &brpSum{BRPAdjustment: BRPAdjustment{BRP: name(a.BRPID)}, mps: map[string]bool{}, isps: map[string]bool{}}
				brps[a.BRPID] = b
			}
			b.mps[a.MeteringPointID], b.isps[a.Start.String()] = true, true
			b.Adjustments++
			b.VolumeMWh += a.Volume
		}
		vs, err := svc.ListVerifications(as, app.VerificationFilter{RunID: run.ID}, page)
		if err != nil {
			return nil, err
		}
		for _, v := range vs.Items {
			vr := VerificationReport{SystemOperator: so.Name, FSP: name(v.FSPID), OrderID: v.OrderID, Direction: v.Direction, BaselineMethod: v.BaselineMethod,
				BaselineNote: v.BaselineNote, OrderedMWh: v.Ordered, DeliveredMWh: v.Delivered, Verdict: v.Verdict, AdjustedMWh: perOrder[v.OrderID]}
			for _, iv := range v.Intervals {
				if iv.Baseline != nil && !iv.Excluded {
					if vr.BaselineMWh == nil {
						vr.BaselineMWh = new(int64)
					}
					*vr.BaselineMWh += *iv.Baseline
				}
			}
			_ = svc.Store().View(ctx, func(tx flexhub.Tx) error {
				if r, err := tx.Resource(ctx, v.ResourceID); err == nil {
					vr.Resource = r.Name
				}
				return nil
			})
			rep.Verifications = append(rep.Verifications, vr)
		}
	}
	for _, b := range brps {
		b.MeteringPoints, b.Periods = len(b.mps), len(b.isps)
		rep.Adjustments = append(rep.Adjustments, b.BRPAdjustment)
	}
	sort.Slice(rep.Adjustments, func(i, j int) bool { return rep.Adjustments[i].BRP < rep.Adjustments[j].BRP })
	return rep, nil
}

// kWhString shows milliwatt-hours as kWh with three decimals (Wh),
// exactly (rounded half away from zero to the Wh).
func kWhString(mWh int64) string {
	sign := ""
	if mWh < 0 {
		sign, mWh = "-", -mWh
	}
	wh := (mWh + 500) / 1000
	return fmt.Sprintf("%s%d.%03d", sign, wh/1000, wh%1000)
}

// printSettlement prints the settlement tables.
func printSettlement(w io.Writer, r *SettlementReport) {
	fmt.Fprintf(w, "== Settlement of the market day, %s to %s (Sydney time), by each system operator\n\n",
		r.PeriodStart.In(sydney).Format("Mon 2 Jan 15:04"), r.PeriodEnd.In(sydney).Format("Mon 2 Jan 15:04"))
	fmt.Fprintln(w, "Statements per FSP:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system operator\tFSP\tlines\tavailability\tactivation\tpenalties\ttotal\tcurrency\tversion\t")
	for _, s := range r.Statements {
		st := s.Statement
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t\n", s.SystemOperator, s.FSP, len(st.Lines), st.Availability.Amount, st.Activation.Amount,
			st.Penalties.Amount, st.Total.Amount, st.Currency, st.StatementVersion)
	}
	if len(r.Statements) == 0 {
		fmt.Fprintln(tw, "none\t")
	}
	tw.Flush()
	fmt.Fprintln(w, "\nVerification per activation (energies in kWh):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "buyer\tFSP\tresource\tordered\tbaseline\tbaseline import\tdelivered\tverdict\tBRP adjusted\tnote")
	for _, v := range r.Verifications {
		delivered, adjusted, base := kWhString(v.DeliveredMWh), kWhString(v.AdjustedMWh), "-"
		if v.Verdict == flexhub.VerifyNoBaseline {
			delivered, adjusted = "-", "-"
		}
		if v.BaselineMWh != nil {
			base = kWhString(*v.BaselineMWh)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.SystemOperator, v.FSP, v.Resource, kWhString(v.OrderedMWh), v.BaselineMethod,
			base, delivered, strings.ReplaceAll(v.Verdict, "_", " "), adjusted, v.BaselineNote)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nImbalance adjustments per BRP (added to its metered consumption):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRP\tmetering points\tquarter hours\tadjustments\tvolume kWh")
	for _, b := range r.Adjustments {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", b.BRP, b.MeteringPoints, b.Periods, b.Adjustments, kWhString(b.VolumeMWh))
	}
	if len(r.Adjustments) == 0 {
		fmt.Fprintln(tw, "none")
	}
	tw.Flush()
	fmt.Fprint(w, `
Statement lines: availability for the awarded capacity held, activation for the energy
delivered against the product's baseline, penalties for shortfalls beyond the tolerance
(docs/SETTLEMENT.md). Every line names its award, obligation, order and verification:
GET /v1/settlement-statements, /v1/verifications, /v1/imbalance-adjustments.
`)
	fmt.Fprintln(w)
}
