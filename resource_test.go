package flexhub

import (
	"strings"
	"testing"
)

func TestConfirmationRequestValidate(t *testing.T) {
	yes, no := true, false
	long := strings.Repeat("x", 4001)
	tests := []struct {
		name        string
		req         ConfirmationRequest
		kind, field string
	}{
		{"accept", ConfirmationRequest{Accept: &yes}, "", ""},
		{"reject with a reason", ConfirmationRequest{Accept: &no, Reason: "no contract with this FSP"}, "", ""},
		{"no answer", ConfirmationRequest{Reason: "hm"}, EInvalid, "accept"},
		{"reason too long", ConfirmationRequest{Accept: &no, Reason: long}, EInvalid, "reason"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.req.Validate(), tc.kind, tc.field)
		})
	}
}

func TestResourceConfirm(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name   string
		from   string
		answer *bool
		to     string
		kind   string
	}{
		{"accept a pending unit", ResourcePendingConfirmation, &yes, ResourceActive, ""},
		{"reject a pending unit", ResourcePendingConfirmation, &no, ResourceRejected, ""},
		{"accept an active unit", ResourceActive, &yes, "", EConflict},
		{"accept a rejected unit", ResourceRejected, &yes, "", EConflict},
		{"reject a rejected unit", ResourceRejected, &no, "", EConflict},
		{"accept a deregistered unit", ResourceDeregistered, &yes, "", EConflict},
		{"no answer is no rejection", ResourcePendingConfirmation, nil, "", EInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resource{ID: pqRes, Status: tc.from, ValidFrom: pqNow.Add(-1)}
			if tc.from == ResourceRejected {
				r.Confirmation = &ResourceConfirmation{AnsweredBy: pqSO, AnsweredAt: pqNow.Add(-1)}
			}
			before := *r
			err := r.Confirm(pqSO, ConfirmationRequest{Accept: tc.answer, Reason: "  because  "}, pqNow)
			field := ""
			if tc.kind == EInvalid {
				field = "accept"
			}
			wantErr(t, err, tc.kind, field)
			if tc.kind != "" {
				if r.Status != before.Status || r.Confirmation != before.Confirmation || !r.ValidFrom.Equal(before.ValidFrom) {
					t.Fatalf("a refused answer changed the resource: %+v", r)
				}
				return
			}
			c := r.Confirmation
			if r.Status != tc.to || c == nil || c.Accepted != *tc.answer || c.AnsweredBy != pqSO || !c.AnsweredAt.Equal(pqNow) || c.Reason != "because" || !r.ValidFrom.Equal(pqNow) {
				t.Fatalf("after the answer: status %s, %+v", r.Status, c)
			}
		})
	}
}
