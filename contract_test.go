package flexhub

import (
	"testing"
	"time"
)

func TestContractSpecValidate(t *testing.T) {
	start := pqNow
	before := pqNow.Add(-time.Hour)
	end := pqNow.Add(30 * 24 * time.Hour)
	tests := []struct {
		name        string
		spec        ContractSpec
		kind, field string
	}{
		{"open-ended", ContractSpec{ProductID: pqPrd, Validity: Interval{Start: start}}, "", ""},
		{"with fsp, resources and end", ContractSpec{ProductID: pqPrd, FSPID: pqFSP, ResourceIDs: []string{pqRes}, Validity: Interval{Start: start, End: &end}}, "", ""},
		{"bad product id", ContractSpec{ProductID: "p", Validity: Interval{Start: start}}, EInvalid, "product_id"},
		{"bad fsp id", ContractSpec{ProductID: pqPrd, FSPID: "fsp", Validity: Interval{Start: start}}, EInvalid, "fsp_id"},
		{"bad resource id", ContractSpec{ProductID: pqPrd, ResourceIDs: []string{pqRes, "r"}, Validity: Interval{Start: start}}, EInvalid, "resource_ids[1]"},
		{"resource twice", ContractSpec{ProductID: pqPrd, ResourceIDs: []string{pqRes, pqRes}, Validity: Interval{Start: start}}, EInvalid, "resource_ids[1]"},
		{"no start", ContractSpec{ProductID: pqPrd}, EInvalid, "validity.start"},
		{"ends before it starts", ContractSpec{ProductID: pqPrd, Validity: Interval{Start: start, End: &before}}, EInvalid, "validity.end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.spec.Validate(), tc.kind, tc.field)
		})
	}
}

func TestContractTransitions(t *testing.T) {
	end := pqNow.Add(30 * 24 * time.Hour)
	inAWeek := pqNow.Add(7 * 24 * time.Hour)
	afterEnd := end.Add(time.Hour)
	yesterday := pqNow.Add(-24 * time.Hour)
	answer := func(by string, accept bool) func(*Contract) error {
		return func(c *Contract) error { return c.Answer(by, accept, pqNow) }
	}
	terminate := func(by string, r TerminationRequest) func(*Contract) error {
		return func(c *Contract) error { return c.RequestTermination(by, r, pqNow) }
	}
	answerTermination := func(by string, confirm bool) func(*Contract) error {
		return func(c *Contract) error { return c.AnswerTermination(by, confirm, pqNow) }
	}
	tests := []struct {
		name        string
		from        string
		op          func(*Contract) error
		to          string
		kind, field string
	}{
		{"counterparty accepts", ContractProposed, answer(pqFSP, true), ContractActive, "", ""},
		{"counterparty rejects", ContractProposed, answer(pqFSP, false), ContractRejected, "", ""},
		{"proposer accepts its own proposal", ContractProposed, answer(pqSO, true), "", EForbidden, ""},
		{"proposer rejects its own proposal", ContractProposed, answer(pqSO, false), "", EForbidden, ""},
		{"accept an active contract", ContractActive, answer(pqFSP, true), "", EConflict, ""},
		{"accept a rejected proposal", ContractRejected, answer(pqFSP, true), "", EConflict, ""},
		{"FSP asks to terminate", ContractActive, terminate(pqFSP, TerminationRequest{Reason: "portfolio sold"}), ContractTerminationRequested, "", ""},
		{"SO asks to terminate next week", ContractActive, terminate(pqSO, TerminationRequest{EffectiveAt: &inAWeek}), ContractTerminationRequested, "", ""},
		{"termination in the past", ContractActive, terminate(pqFSP, TerminationRequest{EffectiveAt: &yesterday}), "", EInvalid, "effective_at"},
		{"termination after the contract ends", ContractActive, terminate(pqFSP, TerminationRequest{EffectiveAt: &afterEnd}), "", EInvalid, "effective_at"},
		{"terminate a proposal", ContractProposed, terminate(pqFSP, TerminationRequest{}), "", EConflict, ""},
		{"terminate twice while pending", ContractTerminationRequested, terminate(pqSO, TerminationRequest{}), "", EConflict, ""},
		{"terminate a terminated contract", ContractTerminated, terminate(pqFSP, TerminationRequest{}), "", EConflict, ""},
		{"other party confirms termination", ContractTerminationRequested, answerTermination(pqSO, true), ContractTerminated, "", ""},
		{"other party rejects termination", ContractTerminationRequested, answerTermination(pqSO, false), ContractActive, "", ""},
		{"requester confirms its own termination", ContractTerminationRequested, answerTermination(pqFSP, true), "", EForbidden, ""},
		{"confirm without a request", ContractActive, answerTermination(pqSO, true), "", EConflict, ""},
		{"confirm a terminated contract", ContractTerminated, answerTermination(pqSO, true), "", EConflict, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Contract{ID: "c", ContractSpec: ContractSpec{ProductID: pqPrd, FSPID: pqFSP, Validity: Interval{Start: pqNow.Add(-time.Hour), End: &end}},
				FSPID: pqFSP, SystemOperatorID: pqSO, Status: tc.from, ProposedBy: pqSO, Version: 2, UpdatedAt: pqNow.Add(-time.Hour)}
			if tc.from == ContractTerminationRequested || tc.from == ContractTerminated {
				c.Termination = &Termination{RequestedBy: pqFSP, RequestedAt: pqNow.Add(-time.Hour), EffectiveAt: pqNow}
			}
			before := snapshot(t, c)
			err := tc.op(c)
			wantErr(t, err, tc.kind, tc.field)
			if err != nil {
				if snapshot(t, c) != before {
					t.Fatal("a refused step changed the contract")
				}
				return
			}
			if c.Status != tc.to || !c.UpdatedAt.Equal(pqNow) {
				t.Fatalf("status %s at %s, want %s at %s", c.Status, c.UpdatedAt, tc.to, pqNow)
			}
		})
	}
}

func TestContractTerminationRecord(t *testing.T) {
	c := &Contract{FSPID: pqFSP, SystemOperatorID: pqSO, Status: ContractActive, ProposedBy: pqSO}
	if err := c.RequestTermination(pqFSP, TerminationRequest{Reason: " sold "}, pqNow); err != nil {
		t.Fatal(err)
	}
	if tr := c.Termination; tr.RequestedBy != pqFSP || tr.Reason != "sold" || !tr.EffectiveAt.Equal(pqNow) {
		t.Fatalf("termination %+v", tr)
	}
	if err := c.AnswerTermination(pqSO, false, pqNow); err != nil {
		t.Fatal(err)
	}
	if c.Termination.Answer != "rejected" || c.Termination.AnsweredBy != pqSO || c.Status != ContractActive {
		t.Fatalf("after rejection: %+v %+v", c.Status, c.Termination)
	}
	// A refused termination can be asked for again, by either side.
	if err := c.RequestTermination(pqSO, TerminationRequest{}, pqNow); err != nil {
		t.Fatal(err)
	}
	if err := c.AnswerTermination(pqFSP, true, pqNow); err != nil {
		t.Fatal(err)
	}
	if c.Status != ContractTerminated || c.Termination.Answer != "confirmed" {
		t.Fatalf("after confirmation: %s %+v", c.Status, c.Termination)
	}
}

func TestContractCounterparty(t *testing.T) {
	c := &Contract{FSPID: pqFSP, SystemOperatorID: pqSO}
	if c.Counterparty(pqFSP) != pqSO || c.Counterparty(pqSO) != pqFSP {
		t.Fatal("counterparty mixed up")
	}
}
