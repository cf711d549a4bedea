package flexhub

import (
	"strings"
	"time"
)

// Prequalification statuses. The workflow:
//
//	submitted --request_info--> information_requested --supplement--> submitted ...
//	submitted --decide--> approved | approved_with_conditions | rejected
//	submitted | information_requested --withdraw--> withdrawn
const (
	PrequalSubmitted            = "submitted"
	PrequalInformationRequested = "information_requested"
	PrequalApproved             = "approved"
	PrequalApprovedConditions   = "approved_with_conditions"
	PrequalRejected             = "rejected"
	PrequalWithdrawn            = "withdrawn"
)

// Prequalification is the product prequalification of one resource (unit
// or group) for one product, reviewed by the product's system operator.
type Prequalification struct {
	ID               string            `json:"id"`
	ResourceID       string            `json:"resource_id"`
	ProductID        string            `json:"product_id"`
	FSPID            string            `json:"fsp_id"`
	SystemOperatorID string            `json:"system_operator_id"`
	Status           string            `json:"status" enum:"submitted,information_requested,approved,approved_with_conditions,rejected,withdrawn"`
	Answers          map[string]string `json:"answers" doc:"the FSP's answers to the product's requirements, merged over all rounds"`
	Messages         []PrequalMessage  `json:"messages" doc:"every exchange, oldest first"`
	Decision         *PrequalDecision  `json:"decision,omitempty"`
	Version          int64             `json:"version"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
}

// PrequalMessage is one exchange in a prequalification.
type PrequalMessage struct {
	Type    string            `json:"type" enum:"submitted,information_requested,supplemented,decided,withdrawn"`
	By      string            `json:"by" doc:"party id"`
	At      time.Time         `json:"at"`
	Text    string            `json:"text,omitempty"`
	Answers map[string]string `json:"answers,omitempty"`
	Keys    []string          `json:"keys,omitempty" doc:"for information requests: the requirement keys to answer again"`
}

// PrequalDecision is the system operator's verdict.
type PrequalDecision struct {
	Outcome    string     `json:"outcome" enum:"approved,approved_with_conditions,rejected"`
	MaxPower   *Power     `json:"max_power,omitempty" doc:"condition: the most the resource may offer under this product"`
	Conditions string     `json:"conditions,omitempty" doc:"further conditions in words"`
	Reasons    string     `json:"reasons,omitempty" doc:"required when rejecting"`
	ValidFrom  time.Time  `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until,omitempty" doc:"exclusive; absent means no expiry"`
	DecidedBy  string     `json:"decided_by"`
	DecidedAt  time.Time  `json:"decided_at"`
}

// PrequalRequest opens a prequalification.
type PrequalRequest struct {
	ResourceID string            `json:"resource_id"`
	ProductID  string            `json:"product_id"`
	Answers    map[string]string `json:"answers,omitempty"`
	Text       string            `json:"text,omitempty" maxLength:"4000"`
}

// Validate checks ids and that every required requirement is answered.
func (r *PrequalRequest) Validate(p *Product) error {
	if !ValidID(r.ResourceID) {
		return FieldErrorf("resource_id", "%q is not a resource id", r.ResourceID)
	}
	if !ValidID(r.ProductID) {
		return FieldErrorf("product_id", "%q is not a product id", r.ProductID)
	}
	if p == nil {
		return nil
	}
	return checkAnswers(p, r.Answers, true)
}

func checkAnswers(p *Product, answers map[string]string, requireAll bool) error {
	known := map[string]bool{}
	for _, q := range p.Requirements {
		known[q.Key] = true
		if requireAll && q.Required && strings.TrimSpace(answers[q.Key]) == "" {
			return FieldErrorf("answers."+q.Key, "product %q requires an answer to %q", p.Name, q.Question)
		}
	}
	for k := range answers {
		if !known[k] {
			return FieldErrorf("answers."+k, "product %q has no requirement %q", p.Name, k)
		}
	}
	return nil
}

// Open reports whether the prequalification still awaits a decision.
func (p *Prequalification) Open() bool {
	return p.Status == PrequalSubmitted || p.Status == PrequalInformationRequested
}

// ValidAt reports whether the prequalification is approved (with or without
// conditions) and in its validity period at t.
func (p *Prequalification) ValidAt(t time.Time) bool {
	if p.Decision == nil || (p.Status != PrequalApproved && p.Status != PrequalApprovedConditions) {
		return false
	}
	return !t.Before(p.Decision.ValidFrom) && (p.Decision.ValidUntil == nil || t.Before(*p.Decision.ValidUntil))
}

// RequestInfo is the reviewer asking the FSP for more: any number of rounds.
func (p *Prequalification) RequestInfo(by string, keys []string, text string, now time.Time, product *Product) error {
	if p.Status != PrequalSubmitted {
		return Errorf(EConflict, "prequalification is %s; information can only be requested while it is submitted", p.Status)
	}
	if strings.TrimSpace(text) == "" && len(keys) == 0 {
		return FieldErrorf("text", "say what information is missing")
	}
	seen := map[string]bool{}
	for i, k := range keys {
		if seen[k] {
			return FieldErrorf(fieldIndex("keys", i), "requirement key %q is listed twice", k)
		}
		seen[k] = true
		if product == nil {
			continue
		}
		if err := checkAnswers(product, map[string]string{k: ""}, false); err != nil {
			return FieldErrorf(fieldIndex("keys", i), "%s", ErrorMessage(err))
		}
	}
	p.Status = PrequalInformationRequested
	p.Messages = append(p.Messages, PrequalMessage{Type: "information_requested", By: by, At: now, Text: text, Keys: keys})
	p.UpdatedAt = now
	return nil
}

// Supplement is the FSP's answer to an information request.
func (p *Prequalification) Supplement(by string, answers map[string]string, text string, now time.Time, product *Product) error {
	if p.Status != PrequalInformationRequested {
		return Errorf(EConflict, "prequalification is %s; supplementary information is only accepted after the reviewer asked for it", p.Status)
	}
	if len(answers) == 0 && strings.TrimSpace(text) == "" {
		return FieldErrorf("answers", "give the requested answers or a text")
	}
	merged := make(map[string]string, len(p.Answers)+len(answers))
	for k, v := range p.Answers {
		merged[k] = v
	}
	for k, v := range answers {
		merged[k] = v
	}
	if product != nil {
		if err := checkAnswers(product, answers, false); err != nil {
			return err
		}
		// A supplement must not blank out an answer the product requires:
		// the reviewer would decide on an incomplete file.
		if err := checkAnswers(product, merged, true); err != nil {
			return err
		}
	}
	p.Answers = merged
	p.Status = PrequalSubmitted
	p.Messages = append(p.Messages, PrequalMessage{Type: "supplemented", By: by, At: now, Text: text, Answers: answers})
	p.UpdatedAt = now
	return nil
}

// DecisionRequest is the reviewer's decision as sent over the API.
type DecisionRequest struct {
	Outcome    string     `json:"outcome" enum:"approved,approved_with_conditions,rejected"`
	MaxPower   *Power     `json:"max_power,omitempty"`
	Conditions string     `json:"conditions,omitempty" maxLength:"4000"`
	Reasons    string     `json:"reasons,omitempty" maxLength:"4000"`
	ValidFrom  *time.Time `json:"valid_from,omitempty" doc:"defaults to now"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
}

// Decide records the reviewer's decision. It can happen once.
func (p *Prequalification) Decide(by string, d DecisionRequest, now time.Time) error {
	if !p.Open() {
		return Errorf(EConflict, "prequalification is already %s; a decision is final", p.Status)
	}
	if p.Status != PrequalSubmitted {
		return Errorf(EConflict, "prequalification awaits information from the FSP; decide after it is supplemented")
	}
	dec := PrequalDecision{Outcome: d.Outcome, Conditions: strings.TrimSpace(d.Conditions), Reasons: strings.TrimSpace(d.Reasons), DecidedBy: by, DecidedAt: now, ValidFrom: now}
	if d.ValidFrom != nil {
		dec.ValidFrom = d.ValidFrom.UTC()
	}
	if d.ValidUntil != nil {
		u := d.ValidUntil.UTC()
		if !u.After(dec.ValidFrom) {
			return FieldErrorf("valid_until", "validity must end after it starts (%s)", dec.ValidFrom.Format(time.RFC3339))
		}
		if d.Outcome != PrequalRejected && !u.After(now) {
			return FieldErrorf("valid_until", "validity must end in the future; an approval that has already expired approves nothing")
		}
		dec.ValidUntil = &u
	}
	switch d.Outcome {
	case PrequalApproved:
		if d.MaxPower != nil || dec.Conditions != "" {
			return FieldErrorf("outcome", "conditions given: use approved_with_conditions")
		}
	case PrequalApprovedConditions:
		if d.MaxPower == nil && dec.Conditions == "" {
			return FieldErrorf("conditions", "approved_with_conditions needs max_power or conditions")
		}
		w, err := d.MaxPower.Watts("max_power")
		if err != nil {
			return err
		}
		if d.MaxPower != nil && w == 0 {
			return FieldErrorf("max_power.value", "a cap of zero is a rejection; use outcome rejected")
		}
		dec.MaxPower = d.MaxPower
	case PrequalRejected:
		if dec.Reasons == "" {
			return FieldErrorf("reasons", "a rejection needs reasons")
		}
		if d.MaxPower != nil {
			return FieldErrorf("max_power", "a rejection takes no power cap")
		}
	default:
		return FieldErrorf("outcome", "%q is not approved, approved_with_conditions or rejected", d.Outcome)
	}
	p.Status = d.Outcome
	p.Decision = &dec
	p.Messages = append(p.Messages, PrequalMessage{Type: "decided", By: by, At: now, Text: strings.TrimSpace(dec.Reasons + " " + dec.Conditions)})
	p.UpdatedAt = now
	return nil
}

// Withdraw is the FSP giving up an open request.
func (p *Prequalification) Withdraw(by string, now time.Time) error {
	if !p.Open() {
		return Errorf(EConflict, "prequalification is already %s and cannot be withdrawn", p.Status)
	}
	p.Status = PrequalWithdrawn
	p.Messages = append(p.Messages, PrequalMessage{Type: "withdrawn", By: by, At: now})
	p.UpdatedAt = now
	return nil
}

// Grid prequalification statuses.
const (
	GridPrequalRequested = "requested"
	GridPrequalApproved  = "approved"
	GridPrequalLimited   = "limited"
	GridPrequalRejected  = "rejected"
)

// GridPrequalification is the connecting DSO's verdict on whether a unit
// may deliver flexibility at its connection point without breaking limits.
type GridPrequalification struct {
	ID                string     `json:"id"`
	ResourceID        string     `json:"resource_id"`
	ConnectionPointID string     `json:"connection_point_id"`
	DSOID             string     `json:"dso_id"`
	FSPID             string     `json:"fsp_id"`
	Status            string     `json:"status" enum:"requested,approved,limited,rejected"`
	LimitUp           *Power     `json:"limit_up,omitempty"`
	LimitDown         *Power     `json:"limit_down,omitempty"`
	Reasons           string     `json:"reasons,omitempty"`
	ValidUntil        *time.Time `json:"valid_until,omitempty"`
	DecidedAt         *time.Time `json:"decided_at,omitempty"`
	DecidedBy         string     `json:"decided_by,omitempty"`
	Version           int64      `json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// GridDecisionRequest is the DSO's grid prequalification decision.
type GridDecisionRequest struct {
	Outcome    string     `json:"outcome" enum:"approved,limited,rejected"`
	LimitUp    *Power     `json:"limit_up,omitempty" doc:"for limited: the most upward flexibility allowed at this node"`
	LimitDown  *Power     `json:"limit_down,omitempty" doc:"for limited: the most downward flexibility allowed at this node"`
	Reasons    string     `json:"reasons,omitempty" maxLength:"4000"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
}

// Decide records the DSO's verdict. It can happen once.
func (g *GridPrequalification) Decide(by string, d GridDecisionRequest, now time.Time) error {
	if g.Status != GridPrequalRequested {
		return Errorf(EConflict, "grid prequalification is already %s; a decision is final", g.Status)
	}
	reasons := strings.TrimSpace(d.Reasons)
	switch d.Outcome {
	case GridPrequalApproved:
		if d.LimitUp != nil || d.LimitDown != nil {
			return FieldErrorf("outcome", "limits given: use limited")
		}
	case GridPrequalLimited:
		if d.LimitUp == nil && d.LimitDown == nil {
			return FieldErrorf("limit_up", "limited needs limit_up and/or limit_down")
		}
		up, err := d.LimitUp.Watts("limit_up")
		if err != nil {
			return err
		}
		down, err := d.LimitDown.Watts("limit_down")
		if err != nil {
			return err
		}
		if up == 0 && down == 0 {
			return FieldErrorf("limit_up", "limits of zero in every given direction block the unit: use outcome rejected with reasons")
		}
	case GridPrequalRejected:
		if reasons == "" {
			return FieldErrorf("reasons", "a rejection needs reasons")
		}
		if d.LimitUp != nil || d.LimitDown != nil {
			return FieldErrorf("outcome", "a rejection takes no limits; use limited to allow part of the flexibility")
		}
	default:
		return FieldErrorf("outcome", "%q is not approved, limited or rejected", d.Outcome)
	}
	if d.ValidUntil != nil {
		u := d.ValidUntil.UTC()
		if !u.After(now) {
			return FieldErrorf("valid_until", "validity must end in the future")
		}
		g.ValidUntil = &u
	}
	g.Status, g.LimitUp, g.LimitDown, g.Reasons = d.Outcome, d.LimitUp, d.LimitDown, reasons
	g.DecidedAt, g.DecidedBy, g.UpdatedAt = &now, by, now
	return nil
}
