package app

import (
	"context"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
)

// Nominated baselines (flexhub.Nomination): an FSP declares per resource
// and market session what the resource would take from the grid without
// activation, for products whose baseline_method is nominated_schedule.
// It may replace the nomination until the session's gate closes; after
// that it is frozen. Each nomination is checked against the resource's
// own history (a high 4 of 5 baseline over the same intervals): a total
// beyond the product's nomination tolerance, or an interval above three
// times the history's largest, is refused as implausible; without
// history the nomination is taken and marked unchecked.

// nominationMaxRatio bounds one interval of a nomination against the
// largest interval of the resource's history.
const nominationMaxRatio = 3

// Nominate stores a new nomination.
func (s *Service) Nominate(ctx context.Context, spec flexhub.NominationSpec, key string) (*Created[flexhub.Nomination], error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if _, err := spec.Validate(0); err != nil {
		return nil, err
	}
	return create(ctx, s, by, key, flexhub.KindNomination, snapshot(spec),
		func(tx flexhub.Tx, id string) (*flexhub.Nomination, error) { return tx.Nomination(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Nomination, string, error) {
			n, err := s.checkNomination(ctx, tx, by, &spec)
			if err != nil {
				return nil, "", err
			}
			existing, _, err := tx.ListNominations(ctx, flexhub.Filter{"resource_id": n.ResourceID, "session_id": n.SessionID}, flexhub.Page{Limit: 1})
			if err != nil {
				return nil, "", err
			}
			if len(existing) > 0 {
				return nil, "", flexhub.RuleErrorf(flexhub.EConflict, "nomination.exists", "session_id",
					"resource %s already has nomination %s for session %s: replace it with PUT /v1/nominations/%s", n.ResourceID, existing[0].ID, n.SessionID, existing[0].ID)
			}
			n.ID = flexhub.NewID()
			n.CreatedAt, n.UpdatedAt = s.now(), s.now()
			if err := tx.CreateNomination(ctx, n); err != nil {
				return nil, "", err
			}
			return n, n.ID, s.record(ctx, tx, by, "nomination.submitted", flexhub.KindNomination, n.ID, n.Version, n, n.SystemOperatorID)
		})
}

// ReplaceNomination replaces a nomination's schedule (version: the one the
// caller read) while its session's gate is open.
func (s *Service) ReplaceNomination(ctx context.Context, id string, spec flexhub.NominationSpec, version int64) (*flexhub.Nomination, error) {
	by, err := actor(ctx, flexhub.RoleFSP)
	if err != nil {
		return nil, err
	}
	if _, err := spec.Validate(0); err != nil {
		return nil, err
	}
	var out *flexhub.Nomination
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		old, err := tx.Nomination(ctx, id)
		if err != nil {
			return err
		}
		if old.FSPID != by.ID {
			return notFound("nomination", id)
		}
		if version > 0 {
			if err := checkVersion("nomination", id, version, old.Version); err != nil {
				return err
			}
		}
		if spec.ResourceID != old.ResourceID || spec.SessionID != old.SessionID {
			return flexhub.RuleErrorf(flexhub.EInvalid, "nomination.identity", "resource_id",
				"nomination %s is for resource %s in session %s; nominate another resource or session with POST /v1/nominations", id, old.ResourceID, old.SessionID)
		}
		n, err := s.checkNomination(ctx, tx, by, &spec)
		if err != nil {
			return err
		}
		n.ID, n.Version, n.CreatedAt, n.UpdatedAt = old.ID, old.Version, old.CreatedAt, s.now()
		if err := tx.UpdateNomination(ctx, n); err != nil {
			return err
		}
		out = n
		return s.record(ctx, tx, by, "nomination.replaced", flexhub.KindNomination, n.ID, n.Version, n, n.SystemOperatorID)
	})
	return out, err
}

// checkNomination checks a nomination against its resource, session,
// product, gate and the resource's history, and returns it (without id).
func (s *Service) checkNomination(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, spec *flexhub.NominationSpec) (*flexhub.Nomination, error) {
	r, err := tx.Resource(ctx, spec.ResourceID)
	if flexhub.ErrorKind(err) == flexhub.ENotFound || err == nil && r.FSPID != by.ID {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "nomination.resource", "resource_id", "resource %s not found among your resources", spec.ResourceID)
	}
	if err != nil {
		return nil, err
	}
	if r.Status != flexhub.ResourceActive {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "nomination.resource", "resource_id", "resource %s is %s, not active", r.ID, r.Status)
	}
	m, err := tx.MarketSession(ctx, spec.SessionID)
	if flexhub.ErrorKind(err) == flexhub.ENotFound {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "nomination.session", "session_id", "market session %s not found", spec.SessionID)
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(m.GateClosure) {
		return nil, flexhub.RuleErrorf(flexhub.EGone, "nomination.gate_closed", "session_id",
			"the gate of session %s closed at %s: its nominations are frozen", m.ID, m.GateClosure.UTC().Format(time.RFC3339))
	}
	p, err := tx.Product(ctx, m.ProductID)
	if err != nil {
		return nil, err
	}
	if p.BaselineMethod != "nominated_schedule" {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "nomination.product", "session_id",
			"session %s trades product %s, whose baseline is %s: only nominated_schedule products take nominations", m.ID, p.ID, p.BaselineMethod)
	}
	step, _ := p.TimeResolution.Parse("")
	sched, err := spec.Validate(step)
	if err != nil {
		return nil, err
	}
	n := &flexhub.Nomination{ResourceID: r.ID, SessionID: m.ID, ProductID: p.ID, FSPID: by.ID, SystemOperatorID: m.SystemOperatorID,
		Schedule: sched, GateClosure: m.GateClosure.UTC()}
	n.Plausibility, err = s.plausible(ctx, tx, r, p, sched, step)
	return n, err
}

// plausible compares a schedule with a high 4 of 5 baseline of the
// resource's history over the same intervals.
func (s *Service) plausible(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource, p *flexhub.Product, sched []flexhub.NominatedInterval, step time.Duration) (string, error) {
	params := p.BaselineParams()
	first, last := sched[0].Start, sched[len(sched)-1].End
	lookback := params.LookbackDays
	if lookback == 0 {
		lookback = 3*params.Y + 14
	}
	from := first.AddDate(0, 0, -lookback-2).Truncate(step)
	hist, err := netSeries(ctx, tx, r, p.PowerType == "reactive", from, last, step)
	if err != nil {
		return "", err
	}
	if hist == nil {
		return "unchecked: the resource has no meter data", nil
	}
	var holidays []baseline.Date
	for _, h := range params.Holidays {
		if d, err := baseline.ParseDate(h); err == nil {
			holidays = append(holidays, d)
		}
	}
	ref, err := baseline.DayMatch(hist, baseline.Window{Start: first, End: last},
		baseline.DayMatching{X: 4, Y: 5, DayType: params.DayType, Location: params.Location, Holidays: holidays, Lookback: params.LookbackDays})
	if err != nil {
		return "unchecked: " + flexhub.ErrorMessage(err), nil
	}
	nom := make([]int64, 0, len(sched))
	refs := make([]int64, 0, len(sched))
	for _, iv := range sched {
		nom = append(nom, baseline.MulDivRound(iv.NetImport, int64(step/time.Millisecond), 3600))
		refs = append(refs, ref.Values[int(iv.Start.Sub(first)/step)])
	}
	if err := baseline.CheckNomination(nom, refs, params.NominationTolerancePct, nominationMaxRatio); err != nil {
		return "", err
	}
	return fmt.Sprintf("checked: within %d %% of a high 4 of 5 baseline", params.NominationTolerancePct), nil
}

// canSeeNomination: the FSP and the session's system operator.
func canSeeNomination(by *flexhub.Party, n *flexhub.Nomination) bool {
	return privileged(by) || by.ID == n.FSPID || by.ID == n.SystemOperatorID
}

// Nomination reads one nomination.
func (s *Service) Nomination(ctx context.Context, id string) (*flexhub.Nomination, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Nomination
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		n, err := tx.Nomination(ctx, id)
		if err != nil {
			return err
		}
		if !canSeeNomination(by, n) {
			return notFound("nomination", id)
		}
		out = n
		return nil
	})
	return out, err
}

// ListNominations lists the nominations the caller may see: an FSP its
// own, a system operator those for its sessions.
func (s *Service) ListNominations(ctx context.Context, f flexhub.Filter, pg flexhub.Page) (*ListResult[flexhub.Nomination], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if !privileged(by) {
		switch {
		case f["fsp_id"] == by.ID || f["system_operator_id"] == by.ID:
		case by.HasRole(flexhub.RoleFSP):
			f["fsp_id"] = by.ID
		default:
			f["system_operator_id"] = by.ID
		}
	}
	out := &ListResult[flexhub.Nomination]{}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		out.Items, out.Next, err = tx.ListNominations(ctx, f, pg)
		return err
	})
	return out, err
}

// nominatedSeries is a resource's nominated baseline over [from, to) as
// net import energy per step (milli-units), from the nominations covering
// it (a later nomination's interval wins); nil when there is none.
// Intervals no nomination covers are missing.
func (s *Service) nominatedSeries(ctx context.Context, tx flexhub.Tx, resourceID string, from, to time.Time, step time.Duration) (*baseline.Series, error) {
	ns, err := tx.NominationsCovering(ctx, resourceID, from, to)
	if err != nil || len(ns) == 0 {
		return nil, err
	}
	n := int(to.Sub(from) / step)
	out := &baseline.Series{Start: from, Step: step, Values: make([]int64, n), Missing: make([]bool, n)}
	for i := range out.Missing {
		out.Missing[i] = true
	}
	for _, nm := range ns {
		for _, iv := range nm.Schedule {
			if iv.Start.Before(from) || !iv.Start.Before(to) {
				continue
			}
			i := int(iv.Start.Sub(from) / step)
			out.Values[i] = baseline.MulDivRound(iv.NetImport, int64(step/time.Millisecond), 3600)
			out.Missing[i] = false
		}
	}
	return out, nil
}
