package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/demo"
	"github.com/flexhub/flexhub/sim"
)

// The nominations of `flexhub demo`: the TSO's mFRR product verifies
// delivery against a nominated schedule (baseline_method
// nominated_schedule, docs/BASELINES.md), so before the gates close each
// simulated aggregator nominates, for every resource it bid with in such
// a session, what that resource would take from the grid without
// activation, over the span of its bid, through the real REST API as
// itself (POST /v1/nominations). The schedule is the simulator's own
// forecast (sim.Fleet.Forecast): the mean of what the units' meters read
// when no order runs — the same model that runs the units later, so the
// nomination is honest, and what the settlement measures against it is
// what the units truly delivered. flexhub checks it against the
// resource's meter history; a refusal is printed, and the resource's
// activations then settle without a baseline.

// NominationReport is one nomination the demo's aggregators sent.
type NominationReport struct {
	FSP          string    `json:"fsp"`
	Resource     string    `json:"resource"`
	ResourceID   string    `json:"resource_id"`
	Session      string    `json:"session"`
	Buyer        string    `json:"buyer"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Intervals    int       `json:"intervals"`
	EnergyMWh    int64     `json:"energy_mwh" doc:"the schedule's net import, milliwatt-hours"`
	NominationID string    `json:"nomination_id,omitempty" doc:"absent when flexhub refused it"`
	Plausibility string    `json:"plausibility,omitempty" doc:"flexhub's check against the resource's history"`
	Refused      string    `json:"refused,omitempty" doc:"why flexhub refused the nomination"`
}

// nominate has the simulated aggregators nominate their baselines for
// the day's nominated_schedule sessions. It is called before gate
// closure; a refused nomination is reported, not an error.
func (lr *liveRun) nominate(ctx context.Context, day *demo.Day, progress io.Writer) ([]NominationReport, error) {
	out := []NominationReport{}
	fsps := map[string]*sim.FSP{}
	for _, s := range lr.sims {
		for _, f := range s.FSPs {
			fsps[f.Party] = f
		}
	}
	for _, m := range []*flexhub.MarketSession{day.DSOSession, day.TSOSession} {
		var p *flexhub.Product
		resources := map[string]string{}
		if err := lr.svc.Store().View(ctx, func(tx flexhub.Tx) error {
			var err error
			if p, err = tx.Product(ctx, m.ProductID); err != nil {
				return err
			}
			for _, b := range day.Bids {
				if b.SessionID == m.ID {
					if r, err := tx.Resource(ctx, b.ResourceID); err == nil {
						resources[r.ID] = r.Name
					}
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if p.BaselineMethod != "nominated_schedule" {
			continue
		}
		step, err := p.TimeResolution.Parse("time_resolution")
		if err != nil || step <= 0 {
			return nil, fmt.Errorf("product %s: time resolution %q", p.ID, p.TimeResolution)
		}
		// Per FSP and resource, the span of its bids in the session.
		type span struct {
			fsp, resource string
			start, end    time.Time
		}
		var spans []*span
		byKey := map[[2]string]*span{}
		for _, b := range day.Bids {
			if b.SessionID != m.ID || len(b.Intervals) == 0 {
				continue
			}
			k := [2]string{b.FSPID, b.ResourceID}
			sp := byKey[k]
			if sp == nil {
				sp = &span{fsp: b.FSPID, resource: b.ResourceID}
				byKey[k] = sp
				spans = append(spans, sp)
			}
			for _, iv := range b.Intervals {
				if sp.start.IsZero() || iv.Start.Before(sp.start) {
					sp.start = iv.Start
				}
				if e := iv.Start.Add(step); e.After(sp.end) {
					sp.end = e
				}
			}
		}
		for _, sp := range spans {
			nr := NominationReport{FSP: lr.names[sp.fsp], Resource: resources[sp.resource], ResourceID: sp.resource, Session: m.Name,
				Buyer: lr.names[m.SystemOperatorID], Start: sp.start.UTC(), End: sp.end.UTC(), Intervals: int(sp.end.Sub(sp.start) / step)}
			f := fsps[sp.fsp]
			if f == nil {
				return nil, fmt.Errorf("%s bid in %s but is not simulated", nr.FSP, m.Name)
			}
			spec, n, err := f.Nominate(ctx, m.ID, sp.resource, sp.start, sp.end, step)
			var refused *sim.HTTPError
			switch {
			case errors.As(err, &refused):
				nr.Refused = refused.Error()
			case err != nil:
				return nil, fmt.Errorf("%s nominating %s: %w", nr.FSP, nr.Resource, err)
			default:
				nr.NominationID, nr.Plausibility = n.ID, n.Plausibility
			}
			for _, iv := range spec.Schedule {
				w := int64(iv.Quantity.Value)
				if iv.Flow == flexhub.FlowExport {
					w = -w
				}
				nr.EnergyMWh += w * int64(step/time.Millisecond) / 3600
			}
			fmt.Fprintf(progress, "  %s nominates %s's baseline, %s-%s (Sydney), %s kWh: %s\n", nr.FSP, nr.Resource,
				nr.Start.In(sydney).Format("15:04"), nr.End.In(sydney).Format("15:04"), kWhString(nr.EnergyMWh), nominationOutcome(nr))
			out = append(out, nr)
		}
	}
	return out, nil
}

// nominationOutcome says in short what flexhub made of a nomination (the
// plausibility note in full is in the report); a refusal in full.
func nominationOutcome(n NominationReport) string {
	if n.Refused != "" {
		return "REFUSED by flexhub: " + n.Refused
	}
	check, _, _ := strings.Cut(n.Plausibility, ":")
	return "accepted (" + check + ")"
}

// printNominations prints the nominations as a table, then flexhub's
// plausibility note on each, and any refusal in full.
func printNominations(w io.Writer, ns []NominationReport) {
	if len(ns) == 0 {
		return
	}
	fmt.Fprintln(w, "== Baselines nominated before gate closure (POST /v1/nominations, by each aggregator)")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FSP\tresource\tsession\ttime (Sydney)\tquarter hours\tnominated kWh\toutcome")
	for _, n := range ns {
		outcome := "accepted"
		if n.Refused != "" {
			outcome = "REFUSED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s-%s\t%d\t%s\t%s\n", n.FSP, n.Resource, n.Session, n.Start.In(sydney).Format("15:04"), n.End.In(sydney).Format("15:04"),
			n.Intervals, kWhString(n.EnergyMWh), outcome)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, n := range ns {
		if n.Refused != "" {
			fmt.Fprintf(w, "flexhub REFUSED %s's nomination for %s: %s\n  Its activations in %s settle without a baseline (no_baseline).\n", n.FSP, n.Resource, n.Refused, n.Session)
		} else {
			fmt.Fprintf(w, "%s, checked against its meter history: %s\n", n.Resource, n.Plausibility)
		}
	}
	fmt.Fprint(w, `
The simulated aggregators nominate what their units' meters would read without any
order (the simulator's own model of its units: the households' replayed load, each heat
pump at its natural share of it); the product's settlement measures delivery against it.
`)
	fmt.Fprintln(w)
}
