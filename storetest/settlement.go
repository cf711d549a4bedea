package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testSettlement: runs, verifications, statements and imbalance
// adjustments are stored whole and read back; listed by every filter the
// API offers (the latest statement version, BRP visibility of
// verifications, ISP time ranges); a second statement of the same
// version, or a second one superseding the same statement, is refused.
func (s *suite) testSettlement(t *testing.T) {
	st, ws := s.seed(t, 1)
	w := ws[0]
	start := base.Add(24 * time.Hour)
	end := start.Add(24 * time.Hour)
	order := &flexhub.ActivationOrder{ID: flexhub.NewID(), Type: flexhub.OrderActivate, SystemOperatorID: w.TSO.ID, FSPID: w.FSP.ID,
		ResourceID: w.Unit.ID, ProductID: w.Product.ID, ObligationID: w.Obligation.ID, Direction: "up", Unit: "W",
		Setpoints: []flexhub.Setpoint{{Start: start, End: start.Add(30 * time.Minute), Quantity: 100_000}},
		Status:    flexhub.OrderCompleted, AckDeadline: base, CreatedAt: base, UpdatedAt: base}
	run := &flexhub.SettlementRun{ID: flexhub.NewID(), SystemOperatorID: w.TSO.ID, PeriodStart: start, PeriodEnd: end, CreatedAt: base,
		Verifications: []flexhub.RunVerification{}, Statements: []flexhub.RunStatement{}, Adjustments: 3}
	b, m := int64(40_000_000), int64(15_000_000)
	verif := func(id string) *flexhub.Verification {
		return &flexhub.Verification{ID: id, RunID: run.ID, OrderID: order.ID, ResourceID: w.Unit.ID, FSPID: w.FSP.ID, SystemOperatorID: w.TSO.ID,
			ProductID: w.Product.ID, Direction: "up", Unit: "mWh", BaselineMethod: "x_of_y", Ordered: 25_000_000, Delivered: 25_000_000,
			Verdict: flexhub.VerifyOnTarget, CreatedAt: base,
			Intervals: []flexhub.VerifiedInterval{{Start: start, End: start.Add(15 * time.Minute), Ordered: 25_000_000, Baseline: &b, Measured: &m, Delivered: 25_000_000, Verdict: flexhub.VerifyOnTarget}}}
	}
	visible, hidden := verif(flexhub.NewID()), verif(flexhub.NewID())
	eur := func(a string) flexhub.Money { return flexhub.Money{Amount: a, Currency: "EUR"} }
	stmt := func(version int64, supersedes, total string) *flexhub.Statement {
		return &flexhub.Statement{ID: flexhub.NewID(), RunID: run.ID, FSPID: w.FSP.ID, SystemOperatorID: w.TSO.ID, PeriodStart: start, PeriodEnd: end,
			Currency: "EUR", StatementVersion: version, Supersedes: supersedes, Total: eur(total), Availability: eur(total), Activation: eur("0"), Penalties: eur("0"),
			Lines: []flexhub.StatementLine{{Kind: flexhub.LineAvailability, Start: start, End: start.Add(15 * time.Minute), ResourceID: w.Unit.ID, Quantity: 200_000,
				Unit: "W", Price: eur("50.00"), Amount: eur(total), AwardID: w.Award.ID, ObligationID: w.Obligation.ID}}, CreatedAt: base}
	}
	v1 := stmt(1, "", "2.5")
	v2 := stmt(2, v1.ID, "2.75")
	diff := eur("0.25")
	v2.Difference = &diff
	adj := func(v *flexhub.Verification, at time.Duration, vol int64) *flexhub.ImbalanceAdjustment {
		return &flexhub.ImbalanceAdjustment{ID: flexhub.NewID(), RunID: run.ID, OrderID: order.ID, VerificationID: v.ID, ResourceID: w.Unit.ID,
			MeteringPointID: w.MeteringPoint.ID, BRPID: w.Supplier.ID, FSPID: w.FSP.ID, SystemOperatorID: w.TSO.ID,
			Start: start.Add(at), End: start.Add(at + flexhub.ISP), Volume: vol, Unit: "mWh", CreatedAt: base}
	}
	a1, a2, a3 := adj(visible, 0, 10_000_000), adj(visible, 15*time.Minute, 15_000_000), adj(hidden, 30*time.Minute, 1)
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if err := tx.CreateActivationOrder(ctx, order); err != nil {
			return err
		}
		if err := tx.CreateSettlementRun(ctx, run); err != nil {
			return err
		}
		hashes, err := tx.CreateVerifications(ctx, []*flexhub.Verification{visible, hidden}, []bool{true, false})
		if err != nil {
			return err
		}
		if len(hashes) != 2 || hashes[0] != flexhub.PayloadHash(visible) || hashes[1] != flexhub.PayloadHash(hidden) {
			t.Errorf("payload hashes %v, want those of the verifications", hashes)
		}
		for _, m := range []*flexhub.Statement{v1, v2} {
			hash, err := tx.CreateStatement(ctx, m)
			if err != nil {
				return err
			}
			if hash != flexhub.PayloadHash(m) {
				t.Errorf("statement payload hash %s, want %s", hash, flexhub.PayloadHash(m))
			}
		}
		return tx.CreateImbalanceAdjustments(ctx, []*flexhub.ImbalanceAdjustment{a1, a2, a3})
	})
	// A second version 2, or a second statement superseding v1: refused,
	// so two concurrent runs cannot both revise a statement.
	for name, m := range map[string]*flexhub.Statement{"same version": stmt(2, "", "9"), "same predecessor": stmt(3, v1.ID, "9")} {
		err := st.Update(t.Context(), func(tx flexhub.Tx) error { _, err := tx.CreateStatement(t.Context(), m); return err })
		if flexhub.ErrorKind(err) != flexhub.EConflict {
			t.Errorf("%s: %v, want a conflict", name, err)
		}
	}
	// A set with an id already taken is refused whole: the new
	// verification and adjustment beside it are not stored.
	fresh := verif(flexhub.NewID())
	freshAdj := adj(fresh, 45*time.Minute, 7)
	err := st.Update(t.Context(), func(tx flexhub.Tx) error {
		_, err := tx.CreateVerifications(t.Context(), []*flexhub.Verification{fresh, visible}, []bool{false, false})
		return err
	})
	if flexhub.ErrorKind(err) != flexhub.EConflict {
		t.Errorf("verifications with a taken id: %v, want a conflict", err)
	}
	err = st.Update(t.Context(), func(tx flexhub.Tx) error {
		if _, err := tx.CreateVerifications(t.Context(), []*flexhub.Verification{fresh}, []bool{false}); err != nil {
			return err
		}
		return tx.CreateImbalanceAdjustments(t.Context(), []*flexhub.ImbalanceAdjustment{freshAdj, a1})
	})
	if flexhub.ErrorKind(err) != flexhub.EConflict {
		t.Errorf("adjustments with a taken id: %v, want a conflict", err)
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if _, err := tx.Verification(ctx, fresh.ID); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("verification of a refused set: %v, want not found", err)
		}
		l, _, err := tx.ListImbalanceAdjustments(ctx, flexhub.Filter{"verification_id": fresh.ID}, flexhub.Page{})
		if err != nil || len(l) != 0 {
			t.Errorf("adjustments of a refused set: %d (%v), want none", len(l), err)
		}
		return nil
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		r, err := tx.SettlementRun(ctx, run.ID)
		if err != nil {
			return err
		}
		if r.Version != 1 || !r.PeriodStart.Equal(start) || r.Adjustments != 3 || r.SystemOperatorID != w.TSO.ID {
			t.Errorf("run read back %+v", r)
		}
		v, err := tx.Verification(ctx, visible.ID)
		if err != nil {
			return err
		}
		if len(v.Intervals) != 1 || *v.Intervals[0].Baseline != b || *v.Intervals[0].Measured != m || v.Delivered != 25_000_000 {
			t.Errorf("verification read back %+v", v)
		}
		got, err := tx.Statement(ctx, v2.ID)
		if err != nil {
			return err
		}
		if got.Supersedes != v1.ID || got.Difference == nil || got.Difference.Amount != "0.25" || len(got.Lines) != 1 || got.Lines[0].AwardID != w.Award.ID {
			t.Errorf("statement read back %+v", got)
		}
		for _, get := range []func() error{
			func() error { _, err := tx.SettlementRun(ctx, flexhub.NewID()); return err },
			func() error { _, err := tx.Verification(ctx, flexhub.NewID()); return err },
			func() error { _, err := tx.Statement(ctx, flexhub.NewID()); return err },
		} {
			if err := get(); flexhub.ErrorKind(err) != flexhub.ENotFound {
				t.Errorf("missing object: %v, want not found", err)
			}
		}
		sts := func(f flexhub.Filter) []string {
			l, _, err := tx.ListStatements(ctx, f, flexhub.Page{})
			if err != nil {
				t.Fatalf("statements %v: %v", f, err)
			}
			var ids []string
			for _, x := range l {
				ids = append(ids, x.ID)
			}
			return ids
		}
		period := flexhub.Filter{"fsp_id": w.FSP.ID, "system_operator_id": w.TSO.ID, "currency": "EUR",
			"period_start": flexhub.TimeKey(start), "period_end": flexhub.TimeKey(end)}
		latest := flexhub.Filter{"superseded": "false"}
		for k, v := range period {
			latest[k] = v
		}
		if ids := sts(latest); !slices.Equal(ids, []string{v2.ID}) {
			t.Errorf("latest statement %v, want v2 %s", ids, v2.ID)
		}
		if ids := sts(flexhub.Filter{"superseded": "true"}); !slices.Equal(ids, []string{v1.ID}) {
			t.Errorf("superseded statements %v, want v1 %s", ids, v1.ID)
		}
		if ids := sts(period); len(ids) != 2 {
			t.Errorf("both versions: %v", ids)
		}
		if ids := sts(flexhub.Filter{"period_start": flexhub.TimeKey(end)}); len(ids) != 0 {
			t.Errorf("another period: %v", ids)
		}
		adjs := func(f flexhub.Filter) []string {
			l, _, err := tx.ListImbalanceAdjustments(ctx, f, flexhub.Page{})
			if err != nil {
				t.Fatalf("adjustments %v: %v", f, err)
			}
			var ids []string
			for _, x := range l {
				ids = append(ids, x.ID)
			}
			slices.Sort(ids)
			return ids
		}
		sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
		for name, c := range map[string]struct {
			f    flexhub.Filter
			want []string
		}{
			"brp":          {flexhub.Filter{"brp_id": w.Supplier.ID}, sorted(a1.ID, a2.ID, a3.ID)},
			"from":         {flexhub.Filter{"from": flexhub.TimeKey(start.Add(15 * time.Minute))}, sorted(a2.ID, a3.ID)},
			"to":           {flexhub.Filter{"to": flexhub.TimeKey(start.Add(15 * time.Minute))}, sorted(a1.ID)},
			"from and to":  {flexhub.Filter{"from": flexhub.TimeKey(start.Add(15 * time.Minute)), "to": flexhub.TimeKey(start.Add(30 * time.Minute))}, sorted(a2.ID)},
			"verification": {flexhub.Filter{"verification_id": hidden.ID}, sorted(a3.ID)},
			"supplier":     {flexhub.Filter{"supplier_id": w.Supplier.ID}, nil},
			"run":          {flexhub.Filter{"run_id": run.ID, "order_id": order.ID, "fsp_id": w.FSP.ID, "system_operator_id": w.TSO.ID}, sorted(a1.ID, a2.ID, a3.ID)},
		} {
			if got := adjs(c.f); !slices.Equal(got, c.want) {
				t.Errorf("adjustments by %s: %v, want %v", name, got, c.want)
			}
		}
		// A BRP sees only verifications marked visible to BRPs that
		// moved energy at its metering points.
		l, _, err := tx.ListVerifications(ctx, flexhub.Filter{"brp_id": w.Supplier.ID}, flexhub.Page{})
		if err != nil {
			return err
		}
		if len(l) != 1 || l[0].ID != visible.ID {
			t.Errorf("verifications a BRP sees: %d, want only %s", len(l), visible.ID)
		}
		l, _, err = tx.ListVerifications(ctx, flexhub.Filter{"run_id": run.ID, "order_id": order.ID, "resource_id": w.Unit.ID, "fsp_id": w.FSP.ID}, flexhub.Page{})
		if err != nil || len(l) != 2 {
			t.Errorf("verifications of the run: %d %v, want 2", len(l), err)
		}
		if _, _, err := tx.ListStatements(ctx, flexhub.Filter{"resource_id": "x"}, flexhub.Page{}); flexhub.ErrorKind(err) != flexhub.EInvalid {
			t.Errorf("unknown statement filter: %v, want invalid", err)
		}
		runs, _, err := tx.ListSettlementRuns(ctx, flexhub.Filter{"system_operator_id": w.TSO.ID}, flexhub.Page{})
		if err != nil || len(runs) != 1 {
			t.Errorf("runs of the TSO: %d %v", len(runs), err)
		}
		return nil
	})

	// A later run over the first quarter hour verifies the order again
	// and attributes nothing there: the first run's adjustment in that
	// ISP is superseded (even without a replacement), the others are not;
	// the later verification supersedes both earlier ones.
	run2 := &flexhub.SettlementRun{ID: flexhub.NewID(), SystemOperatorID: w.TSO.ID, PeriodStart: start, PeriodEnd: start.Add(15 * time.Minute), CreatedAt: base,
		Verifications: []flexhub.RunVerification{}, Statements: []flexhub.RunStatement{}}
	again := verif(flexhub.NewID())
	again.RunID = run2.ID
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if err := tx.CreateSettlementRun(ctx, run2); err != nil {
			return err
		}
		_, err := tx.CreateVerifications(ctx, []*flexhub.Verification{again}, []bool{false})
		return err
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for want, ids := range map[string][]string{"false": {a2.ID, a3.ID}, "true": {a1.ID}} {
			l, _, err := tx.ListImbalanceAdjustments(ctx, flexhub.Filter{"superseded": want, "order_id": order.ID}, flexhub.Page{})
			if err != nil {
				return err
			}
			var got []string
			for _, a := range l {
				got = append(got, a.ID)
			}
			slices.Sort(got)
			slices.Sort(ids)
			if !slices.Equal(got, ids) {
				t.Errorf("adjustments superseded=%s: %v, want %v", want, got, ids)
			}
		}
		l, _, err := tx.ListVerifications(ctx, flexhub.Filter{"order_id": order.ID, "superseded": "false"}, flexhub.Page{})
		if err != nil {
			return err
		}
		if len(l) != 1 || l[0].ID != again.ID {
			t.Errorf("current verifications of the order: %d, want only the later run's", len(l))
		}
		return nil
	})
}

// testSettlementBulk: a run's verifications and adjustments come by the
// thousand (PostgreSQL bulk-loads them with COPY past a few hundred):
// every one is stored whole and read back with its payload hash, NULLs
// stay NULL, and a set with one taken id is refused whole.
func (s *suite) testSettlementBulk(t *testing.T) {
	st, ws := s.seed(t, 1)
	w := ws[0]
	start := base.Add(48 * time.Hour)
	order := &flexhub.ActivationOrder{ID: flexhub.NewID(), Type: flexhub.OrderActivate, SystemOperatorID: w.TSO.ID, FSPID: w.FSP.ID,
		ResourceID: w.Unit.ID, ProductID: w.Product.ID, ObligationID: w.Obligation.ID, Direction: "up", Unit: "W",
		Setpoints: []flexhub.Setpoint{{Start: start, End: start.Add(time.Hour), Quantity: 100_000}},
		Status:    flexhub.OrderCompleted, AckDeadline: base, CreatedAt: base, UpdatedAt: base}
	run := &flexhub.SettlementRun{ID: flexhub.NewID(), SystemOperatorID: w.TSO.ID, PeriodStart: start, PeriodEnd: start.Add(24 * time.Hour), CreatedAt: base,
		Verifications: []flexhub.RunVerification{}, Statements: []flexhub.RunStatement{}}
	const nv, perV = 700, 3
	vs, visible := make([]*flexhub.Verification, nv), make([]bool, nv)
	var as []*flexhub.ImbalanceAdjustment
	for i := range vs {
		delivered := int64(1_000 * (i + 1))
		vs[i] = &flexhub.Verification{ID: flexhub.NewID(), RunID: run.ID, OrderID: order.ID, ResourceID: w.Unit.ID, FSPID: w.FSP.ID, SystemOperatorID: w.TSO.ID,
			ProductID: w.Product.ID, Direction: "up", Unit: "mWh", BaselineMethod: "x_of_y", Ordered: 25_000_000, Delivered: delivered,
			Verdict: flexhub.VerifyUnder, CreatedAt: base,
			Intervals: []flexhub.VerifiedInterval{{Start: start, End: start.Add(15 * time.Minute), Ordered: 25_000_000, Delivered: delivered, Verdict: flexhub.VerifyUnder}}}
		visible[i] = i%2 == 0
		for k := range perV {
			supplier := ""
			if k == 1 {
				supplier = w.Supplier.ID
			}
			as = append(as, &flexhub.ImbalanceAdjustment{ID: flexhub.NewID(), RunID: run.ID, OrderID: order.ID, VerificationID: vs[i].ID, ResourceID: w.Unit.ID,
				MeteringPointID: w.MeteringPoint.ID, BRPID: w.Supplier.ID, SupplierID: supplier, FSPID: w.FSP.ID, SystemOperatorID: w.TSO.ID,
				Start: start.Add(time.Duration(k) * flexhub.ISP), End: start.Add(time.Duration(k+1) * flexhub.ISP), Volume: delivered + int64(k), Unit: "mWh", CreatedAt: base})
		}
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if err := tx.CreateActivationOrder(ctx, order); err != nil {
			return err
		}
		if err := tx.CreateSettlementRun(ctx, run); err != nil {
			return err
		}
		hashes, err := tx.CreateVerifications(ctx, vs, visible)
		if err != nil {
			return err
		}
		for i, h := range hashes {
			if h != flexhub.PayloadHash(vs[i]) {
				t.Fatalf("payload hash %d: %s, want %s", i, h, flexhub.PayloadHash(vs[i]))
			}
		}
		return tx.CreateImbalanceAdjustments(ctx, as)
	})
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, i := range []int{0, 1, nv / 2, nv - 1} {
			v, err := tx.Verification(ctx, vs[i].ID)
			if err != nil {
				return err
			}
			if v.Delivered != vs[i].Delivered || len(v.Intervals) != 1 || v.Intervals[0].Baseline != nil {
				t.Errorf("verification %d read back %+v", i, v)
			}
		}
		got := map[string]*flexhub.ImbalanceAdjustment{}
		for cursor := ""; ; {
			l, next, err := tx.ListImbalanceAdjustments(ctx, flexhub.Filter{"run_id": run.ID}, flexhub.Page{Limit: 500, After: cursor})
			if err != nil {
				return err
			}
			for _, a := range l {
				got[a.ID] = a
			}
			if cursor = next; next == "" {
				break
			}
		}
		if len(got) != len(as) {
			t.Fatalf("%d adjustments read back, want %d", len(got), len(as))
		}
		for _, a := range as {
			g := got[a.ID]
			if g == nil || g.Volume != a.Volume || g.SupplierID != a.SupplierID || g.VerificationID != a.VerificationID || !g.Start.Equal(a.Start) {
				t.Fatalf("adjustment %s read back %+v, want %+v", a.ID, g, a)
			}
		}
		l, _, err := tx.ListVerifications(ctx, flexhub.Filter{"brp_id": w.Supplier.ID, "run_id": run.ID}, flexhub.Page{Limit: 500})
		if err != nil {
			return err
		}
		if len(l) != nv/2 {
			t.Errorf("%d verifications visible to the BRP, want %d", len(l), nv/2)
		}
		return nil
	})
	// The same large set again, one id fresh: refused whole.
	again := slices.Clone(vs)
	fresh := *vs[0]
	fresh.ID = flexhub.NewID()
	again[0] = &fresh
	err := st.Update(t.Context(), func(tx flexhub.Tx) error {
		_, err := tx.CreateVerifications(t.Context(), again, visible)
		return err
	})
	if flexhub.ErrorKind(err) != flexhub.EConflict {
		t.Errorf("a large set with taken ids: %v, want a conflict", err)
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if _, err := tx.Verification(ctx, fresh.ID); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("verification of a refused set: %v, want not found", err)
		}
		return nil
	})
}
