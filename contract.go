package flexhub

import (
	"strings"
	"time"
)

// Contract statuses.
//
//	proposed --accept--> active --request_termination--> termination_requested
//	proposed --reject--> rejected           termination_requested --confirm--> terminated
//	                                        termination_requested --reject--> active
const (
	ContractProposed             = "proposed"
	ContractActive               = "active"
	ContractRejected             = "rejected"
	ContractTerminationRequested = "termination_requested"
	ContractTerminated           = "terminated"
)

// Contract is a flexibility contract between an FSP and a system operator
// for one product. Either side proposes; the other accepts or rejects.
type Contract struct {
	ID string `json:"id"`
	ContractSpec
	FSPID            string       `json:"fsp_id"`
	SystemOperatorID string       `json:"system_operator_id"`
	Status           string       `json:"status" enum:"proposed,active,rejected,termination_requested,terminated"`
	ProposedBy       string       `json:"proposed_by"`
	Termination      *Termination `json:"termination,omitempty"`
	Version          int64        `json:"version"`
	CreatedAt        time.Time    `json:"created_at"`
	UpdatedAt        time.Time    `json:"updated_at"`
}

// ContractSpec is what the proposing party sends.
type ContractSpec struct {
	ProductID   string   `json:"product_id"`
	FSPID       string   `json:"fsp_id,omitempty" doc:"when the system operator proposes: the FSP"`
	ResourceIDs []string `json:"resource_ids,omitempty" doc:"resources the contract covers; empty means all the FSP's prequalified ones"`
	Validity    Interval `json:"validity"`
	Terms       string   `json:"terms,omitempty" maxLength:"20000"`
}

// Termination records a request to end a contract and its answer.
type Termination struct {
	RequestedBy string     `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	EffectiveAt time.Time  `json:"effective_at"`
	Reason      string     `json:"reason,omitempty"`
	AnsweredBy  string     `json:"answered_by,omitempty"`
	AnsweredAt  *time.Time `json:"answered_at,omitempty"`
	Answer      string     `json:"answer,omitempty" enum:"confirmed,rejected"`
}

// Validate checks the proposal.
func (s *ContractSpec) Validate() error {
	if !ValidID(s.ProductID) {
		return FieldErrorf("product_id", "%q is not a product id", s.ProductID)
	}
	if s.FSPID != "" && !ValidID(s.FSPID) {
		return FieldErrorf("fsp_id", "%q is not a party id", s.FSPID)
	}
	seen := map[string]bool{}
	for i, r := range s.ResourceIDs {
		if !ValidID(r) {
			return FieldErrorf(fieldIndex("resource_ids", i), "%q is not a resource id", r)
		}
		if seen[r] {
			return FieldErrorf(fieldIndex("resource_ids", i), "resource %s is listed twice", r)
		}
		seen[r] = true
	}
	return s.Validity.Validate("validity")
}

// Counterparty returns the other side of the contract from party.
func (c *Contract) Counterparty(party string) string {
	if party == c.FSPID {
		return c.SystemOperatorID
	}
	return c.FSPID
}

// Answer is the counterparty accepting or rejecting a proposal.
func (c *Contract) Answer(by string, accept bool, now time.Time) error {
	if c.Status != ContractProposed {
		return Errorf(EConflict, "contract is %s; only a proposed contract can be accepted or rejected", c.Status)
	}
	if by == c.ProposedBy {
		return Errorf(EForbidden, "the party that proposed a contract cannot accept or reject it; the counterparty does")
	}
	if accept {
		c.Status = ContractActive
	} else {
		c.Status = ContractRejected
	}
	c.UpdatedAt = now
	return nil
}

// TerminationRequest asks to end an active contract.
type TerminationRequest struct {
	EffectiveAt *time.Time `json:"effective_at,omitempty" doc:"when the contract should end; defaults to now"`
	Reason      string     `json:"reason,omitempty" maxLength:"4000"`
}

// RequestTermination is either party asking to end the contract.
func (c *Contract) RequestTermination(by string, r TerminationRequest, now time.Time) error {
	switch c.Status {
	case ContractActive:
	case ContractTerminated:
		return Errorf(EConflict, "contract is already terminated")
	case ContractTerminationRequested:
		return Errorf(EConflict, "termination was already requested by %s and awaits an answer", c.Termination.RequestedBy)
	default:
		return Errorf(EConflict, "contract is %s; only an active contract can be terminated", c.Status)
	}
	eff := now
	if r.EffectiveAt != nil {
		eff = r.EffectiveAt.UTC()
		if eff.Before(now.Add(-time.Minute)) {
			return FieldErrorf("effective_at", "termination cannot take effect in the past")
		}
		if c.Validity.End != nil && !eff.Before(*c.Validity.End) {
			return FieldErrorf("effective_at", "the contract ends by itself at %s; terminate it before then or let it run out", c.Validity.End.Format(time.RFC3339))
		}
	}
	c.Status = ContractTerminationRequested
	c.Termination = &Termination{RequestedBy: by, RequestedAt: now, EffectiveAt: eff, Reason: strings.TrimSpace(r.Reason)}
	c.UpdatedAt = now
	return nil
}

// AnswerTermination is the counterparty confirming or rejecting the request.
func (c *Contract) AnswerTermination(by string, confirm bool, now time.Time) error {
	if c.Status == ContractTerminated {
		return Errorf(EConflict, "contract is already terminated")
	}
	if c.Status != ContractTerminationRequested {
		return Errorf(EConflict, "contract is %s; there is no termination request to answer", c.Status)
	}
	if by == c.Termination.RequestedBy {
		return Errorf(EForbidden, "the party that requested termination cannot answer its own request")
	}
	c.Termination.AnsweredBy, c.Termination.AnsweredAt = by, &now
	if confirm {
		c.Termination.Answer = "confirmed"
		c.Status = ContractTerminated
	} else {
		c.Termination.Answer = "rejected"
		c.Status = ContractActive
	}
	c.UpdatedAt = now
	return nil
}
