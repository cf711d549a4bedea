package flexhub

import (
	"encoding/json"
	"testing"
	"time"
)

var pqNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	pqFSP = "0195a000-0000-7000-8000-00000000f5b0"
	pqSO  = "0195a000-0000-7000-8000-0000000050a0"
	pqRes = "0195a000-0000-7000-8000-00000000e500"
	pqPrd = "0195a000-0000-7000-8000-000000000d00"
)

func pqProduct() *Product {
	return &Product{ID: pqPrd, ProductSpec: ProductSpec{Name: "Local congestion", Requirements: []Requirement{
		{Key: "metering", Question: "Which meter measures the unit?", Required: true},
		{Key: "telemetry", Question: "Do you send telemetry?"},
	}}}
}

func pqInStatus(status string) *Prequalification {
	p := &Prequalification{ID: "0195a000-0000-7000-8000-0000000001a0", ResourceID: pqRes, ProductID: pqPrd, FSPID: pqFSP, SystemOperatorID: pqSO,
		Status: status, Answers: map[string]string{"metering": "smart meter"}, Version: 3, CreatedAt: pqNow.Add(-time.Hour), UpdatedAt: pqNow.Add(-time.Hour),
		Messages: []PrequalMessage{{Type: "submitted", By: pqFSP, At: pqNow.Add(-time.Hour)}}}
	if status == PrequalApproved || status == PrequalRejected || status == PrequalApprovedConditions {
		p.Decision = &PrequalDecision{Outcome: status, ValidFrom: pqNow.Add(-time.Hour), DecidedBy: pqSO, DecidedAt: pqNow.Add(-time.Hour)}
	}
	return p
}

func snapshot(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantErr checks an error's kind and field; kind "" means no error.
func wantErr(t *testing.T, err error, kind, field string) {
	t.Helper()
	if kind == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %s on %q", kind, field)
	}
	if ErrorKind(err) != kind || ErrorField(err) != field {
		t.Fatalf("error %v: kind %q field %q, want %q %q", err, ErrorKind(err), ErrorField(err), kind, field)
	}
	if ErrorMessage(err) == "" {
		t.Fatal("error without a message")
	}
}

func TestPrequalRequestValidate(t *testing.T) {
	tests := []struct {
		name        string
		req         PrequalRequest
		kind, field string
	}{
		{"complete", PrequalRequest{ResourceID: pqRes, ProductID: pqPrd, Answers: map[string]string{"metering": "smart meter"}}, "", ""},
		{"optional answer given", PrequalRequest{ResourceID: pqRes, ProductID: pqPrd, Answers: map[string]string{"metering": "m", "telemetry": "yes"}}, "", ""},
		{"bad resource id", PrequalRequest{ResourceID: "r1", ProductID: pqPrd}, EInvalid, "resource_id"},
		{"bad product id", PrequalRequest{ResourceID: pqRes, ProductID: ""}, EInvalid, "product_id"},
		{"required answer missing", PrequalRequest{ResourceID: pqRes, ProductID: pqPrd}, EInvalid, "answers.metering"},
		{"required answer blank", PrequalRequest{ResourceID: pqRes, ProductID: pqPrd, Answers: map[string]string{"metering": "  "}}, EInvalid, "answers.metering"},
		{"unknown requirement", PrequalRequest{ResourceID: pqRes, ProductID: pqPrd, Answers: map[string]string{"metering": "m", "colour": "red"}}, EInvalid, "answers.colour"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.req.Validate(pqProduct()), tc.kind, tc.field)
		})
	}
	t.Run("ids only without product", func(t *testing.T) {
		r := PrequalRequest{ResourceID: pqRes, ProductID: pqPrd}
		wantErr(t, r.Validate(nil), "", "")
	})
}

func TestPrequalificationTransitions(t *testing.T) {
	kw := func(v float64) *Power { return &Power{Value: v, Unit: "kW"} }
	later := pqNow.Add(365 * 24 * time.Hour)
	past := pqNow.Add(-24 * time.Hour)
	longAgo := pqNow.Add(-48 * time.Hour)
	requestInfo := func(keys []string, text string) func(*Prequalification) error {
		return func(p *Prequalification) error { return p.RequestInfo(pqSO, keys, text, pqNow, pqProduct()) }
	}
	supplement := func(answers map[string]string, text string) func(*Prequalification) error {
		return func(p *Prequalification) error { return p.Supplement(pqFSP, answers, text, pqNow, pqProduct()) }
	}
	decide := func(d DecisionRequest) func(*Prequalification) error {
		return func(p *Prequalification) error { return p.Decide(pqSO, d, pqNow) }
	}
	withdraw := func(p *Prequalification) error { return p.Withdraw(pqFSP, pqNow) }

	tests := []struct {
		name        string
		from        string
		op          func(*Prequalification) error
		to          string // status after success
		kind, field string // expected error
	}{
		// information requests
		{"request info with text", PrequalSubmitted, requestInfo(nil, "send the meter certificate"), PrequalInformationRequested, "", ""},
		{"request info by keys", PrequalSubmitted, requestInfo([]string{"telemetry"}, ""), PrequalInformationRequested, "", ""},
		{"request info without text or keys", PrequalSubmitted, requestInfo(nil, "  "), "", EInvalid, "text"},
		{"request info on unknown key", PrequalSubmitted, requestInfo([]string{"telemetry", "colour"}, ""), "", EInvalid, "keys[1]"},
		{"request info on a key twice", PrequalSubmitted, requestInfo([]string{"telemetry", "telemetry"}, ""), "", EInvalid, "keys[1]"},
		{"request info twice in a row", PrequalInformationRequested, requestInfo(nil, "more"), "", EConflict, ""},
		{"request info after approval", PrequalApproved, requestInfo(nil, "more"), "", EConflict, ""},
		{"request info after withdrawal", PrequalWithdrawn, requestInfo(nil, "more"), "", EConflict, ""},
		// supplements
		{"supplement answers", PrequalInformationRequested, supplement(map[string]string{"telemetry": "yes, every 4 s"}, ""), PrequalSubmitted, "", ""},
		{"supplement text only", PrequalInformationRequested, supplement(nil, "certificate attached"), PrequalSubmitted, "", ""},
		{"supplement nothing", PrequalInformationRequested, supplement(map[string]string{}, " "), "", EInvalid, "answers"},
		{"supplement unknown key", PrequalInformationRequested, supplement(map[string]string{"colour": "red"}, ""), "", EInvalid, "answers.colour"},
		{"supplement blanks a required answer", PrequalInformationRequested, supplement(map[string]string{"metering": ""}, "oops"), "", EInvalid, "answers.metering"},
		{"supplement unasked", PrequalSubmitted, supplement(nil, "more"), "", EConflict, ""},
		{"supplement after rejection", PrequalRejected, supplement(nil, "more"), "", EConflict, ""},
		// decisions
		{"approve", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApproved, ValidUntil: &later}), PrequalApproved, "", ""},
		{"approve with power cap", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApprovedConditions, MaxPower: kw(200)}), PrequalApprovedConditions, "", ""},
		{"approve with conditions text", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApprovedConditions, Conditions: "only on weekdays"}), PrequalApprovedConditions, "", ""},
		{"conditional approval without conditions", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApprovedConditions, Conditions: " "}), "", EInvalid, "conditions"},
		{"conditional approval with zero cap", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApprovedConditions, MaxPower: kw(0)}), "", EInvalid, "max_power.value"},
		{"conditional approval with bad unit", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApprovedConditions, MaxPower: &Power{Value: 2, Unit: "hp"}}), "", EInvalid, "max_power.unit"},
		{"plain approval with a cap", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApproved, MaxPower: kw(200)}), "", EInvalid, "outcome"},
		{"reject with reasons", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalRejected, Reasons: "ramp too slow"}), PrequalRejected, "", ""},
		{"reject without reasons", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalRejected, Reasons: "  "}), "", EInvalid, "reasons"},
		{"reject with a cap", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalRejected, Reasons: "no", MaxPower: kw(1)}), "", EInvalid, "max_power"},
		{"unknown outcome", PrequalSubmitted, decide(DecisionRequest{Outcome: "maybe"}), "", EInvalid, "outcome"},
		{"validity ends before it starts", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApproved, ValidFrom: &later, ValidUntil: &later}), "", EInvalid, "valid_until"},
		{"validity already over", PrequalSubmitted, decide(DecisionRequest{Outcome: PrequalApproved, ValidFrom: &longAgo, ValidUntil: &past}), "", EInvalid, "valid_until"},
		{"decide while information is requested", PrequalInformationRequested, decide(DecisionRequest{Outcome: PrequalApproved}), "", EConflict, ""},
		{"decide twice", PrequalApproved, decide(DecisionRequest{Outcome: PrequalRejected, Reasons: "changed my mind"}), "", EConflict, ""},
		{"decide a withdrawn request", PrequalWithdrawn, decide(DecisionRequest{Outcome: PrequalApproved}), "", EConflict, ""},
		// withdrawal
		{"withdraw submitted", PrequalSubmitted, withdraw, PrequalWithdrawn, "", ""},
		{"withdraw while information is requested", PrequalInformationRequested, withdraw, PrequalWithdrawn, "", ""},
		{"withdraw after approval", PrequalApprovedConditions, withdraw, "", EConflict, ""},
		{"withdraw twice", PrequalWithdrawn, withdraw, "", EConflict, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pqInStatus(tc.from)
			before := snapshot(t, p)
			err := tc.op(p)
			wantErr(t, err, tc.kind, tc.field)
			if err != nil {
				if after := snapshot(t, p); after != before {
					t.Fatalf("a refused step changed the prequalification:\nbefore %s\nafter  %s", before, after)
				}
				return
			}
			if p.Status != tc.to {
				t.Fatalf("status %s, want %s", p.Status, tc.to)
			}
			if len(p.Messages) != 2 || !p.UpdatedAt.Equal(pqNow) {
				t.Fatalf("a step must add one message and touch updated_at: %+v", p)
			}
		})
	}
}

func TestPrequalificationStepDetails(t *testing.T) {
	t.Run("supplement merges answers", func(t *testing.T) {
		p := pqInStatus(PrequalInformationRequested)
		if err := p.Supplement(pqFSP, map[string]string{"telemetry": "yes"}, "", pqNow, pqProduct()); err != nil {
			t.Fatal(err)
		}
		if p.Answers["metering"] != "smart meter" || p.Answers["telemetry"] != "yes" {
			t.Fatalf("answers %v", p.Answers)
		}
		if m := p.Messages[1]; m.Type != "supplemented" || m.By != pqFSP || m.Answers["telemetry"] != "yes" {
			t.Fatalf("message %+v", m)
		}
	})
	t.Run("any number of information rounds", func(t *testing.T) {
		p := pqInStatus(PrequalSubmitted)
		for i := 0; i < 3; i++ {
			if err := p.RequestInfo(pqSO, []string{"telemetry"}, "again", pqNow, pqProduct()); err != nil {
				t.Fatal(err)
			}
			if err := p.Supplement(pqFSP, map[string]string{"telemetry": "yes"}, "", pqNow, pqProduct()); err != nil {
				t.Fatal(err)
			}
		}
		if p.Status != PrequalSubmitted || len(p.Messages) != 7 {
			t.Fatalf("status %s with %d messages", p.Status, len(p.Messages))
		}
	})
	t.Run("conditional decision is recorded", func(t *testing.T) {
		p := pqInStatus(PrequalSubmitted)
		until := pqNow.Add(24 * time.Hour)
		err := p.Decide(pqSO, DecisionRequest{Outcome: PrequalApprovedConditions, MaxPower: &Power{Value: 200, Unit: "kW"}, Conditions: " weekdays ", ValidUntil: &until}, pqNow)
		if err != nil {
			t.Fatal(err)
		}
		d := p.Decision
		if d.MaxPower.Value != 200 || d.Conditions != "weekdays" || d.DecidedBy != pqSO || !d.ValidFrom.Equal(pqNow) || !d.ValidUntil.Equal(until) {
			t.Fatalf("decision %+v", d)
		}
	})
	t.Run("request info without a product checks no keys", func(t *testing.T) {
		p := pqInStatus(PrequalSubmitted)
		if err := p.RequestInfo(pqSO, []string{"anything"}, "", pqNow, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPrequalificationValidAt(t *testing.T) {
	from := pqNow
	until := pqNow.Add(time.Hour)
	approved := func(status string, end *time.Time) *Prequalification {
		p := pqInStatus(status)
		p.Decision = &PrequalDecision{Outcome: status, ValidFrom: from, ValidUntil: end}
		return p
	}
	tests := []struct {
		name string
		p    *Prequalification
		at   time.Time
		want bool
	}{
		{"before validity", approved(PrequalApproved, &until), from.Add(-time.Second), false},
		{"at start", approved(PrequalApproved, &until), from, true},
		{"inside, with conditions", approved(PrequalApprovedConditions, &until), from.Add(time.Minute), true},
		{"at end (exclusive)", approved(PrequalApproved, &until), until, false},
		{"open-ended", approved(PrequalApproved, nil), from.Add(1000 * time.Hour), true},
		{"rejected", approved(PrequalRejected, nil), from.Add(time.Minute), false},
		{"still open", pqInStatus(PrequalSubmitted), from, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.ValidAt(tc.at); got != tc.want {
				t.Fatalf("ValidAt = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGridPrequalificationDecide(t *testing.T) {
	kw := func(v float64) *Power { return &Power{Value: v, Unit: "kW"} }
	future := pqNow.Add(24 * time.Hour)
	past := pqNow.Add(-time.Minute)
	tests := []struct {
		name        string
		from        string
		d           GridDecisionRequest
		kind, field string
	}{
		{"approve", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalApproved, ValidUntil: &future}, "", ""},
		{"limit upward", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalLimited, LimitUp: kw(50)}, "", ""},
		{"limit both ways", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalLimited, LimitUp: kw(50), LimitDown: kw(0)}, "", ""},
		{"reject with reasons", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalRejected, Reasons: "feeder at its limit"}, "", ""},
		{"approve with limits", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalApproved, LimitUp: kw(5)}, EInvalid, "outcome"},
		{"limited without limits", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalLimited}, EInvalid, "limit_up"},
		{"limited to nothing", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalLimited, LimitUp: kw(0)}, EInvalid, "limit_up"},
		{"limit in a bad unit", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalLimited, LimitDown: &Power{Value: 1, Unit: "A"}}, EInvalid, "limit_down.unit"},
		{"reject without reasons", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalRejected}, EInvalid, "reasons"},
		{"reject with limits", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalRejected, Reasons: "no", LimitUp: kw(5)}, EInvalid, "outcome"},
		{"unknown outcome", GridPrequalRequested, GridDecisionRequest{Outcome: "amber"}, EInvalid, "outcome"},
		{"validity in the past", GridPrequalRequested, GridDecisionRequest{Outcome: GridPrequalApproved, ValidUntil: &past}, EInvalid, "valid_until"},
		{"decide twice", GridPrequalLimited, GridDecisionRequest{Outcome: GridPrequalApproved}, EConflict, ""},
		{"decide a rejection again", GridPrequalRejected, GridDecisionRequest{Outcome: GridPrequalApproved}, EConflict, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &GridPrequalification{ID: "g", ResourceID: pqRes, DSOID: pqSO, FSPID: pqFSP, Status: tc.from, Version: 1, UpdatedAt: pqNow.Add(-time.Hour)}
			before := snapshot(t, g)
			err := g.Decide(pqSO, tc.d, pqNow)
			wantErr(t, err, tc.kind, tc.field)
			if err != nil {
				if snapshot(t, g) != before {
					t.Fatal("a refused decision changed the grid prequalification")
				}
				return
			}
			if g.Status != tc.d.Outcome || g.DecidedBy != pqSO || g.DecidedAt == nil || !g.UpdatedAt.Equal(pqNow) {
				t.Fatalf("after decision: %+v", g)
			}
		})
	}
}
