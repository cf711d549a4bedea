package flexhub

import (
	"errors"
	"fmt"
)

// Error kinds. Adapters translate them into transport codes in one table
// (see http/error.go); the domain never speaks HTTP.
const (
	EInvalid      = "invalid"      // the request is malformed or breaks a rule
	ENotFound     = "not_found"    // the object does not exist or is not visible to the caller
	EConflict     = "conflict"     // a concurrent change won, or the state forbids the change
	EUnauthorized = "unauthorized" // no valid credential
	EForbidden    = "forbidden"    // authenticated, but the roles or ownership do not allow it
	EGone         = "gone"         // too late: past gate closure or expiry
	EInternal     = "internal"     // a bug or an unavailable dependency
)

// Error is flexhub's one error type. Kind decides the transport status,
// Field names the offending input (JSON path such as "technical.max_up"),
// Message is for humans and says exactly what is wrong. Rule, when set,
// names the business rule that failed ("bid.price.max") in a stable,
// machine-readable way, so that a client can react to a refused bid
// without parsing the human message.
type Error struct {
	Kind    string
	Field   string
	Message string
	Rule    string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("flexhub: %s: %s: %s", e.Kind, e.Field, e.Message)
	}
	return fmt.Sprintf("flexhub: %s: %s", e.Kind, e.Message)
}

// Errorf returns a domain error of the given kind.
func Errorf(kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EInvalid error that names the offending field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Kind: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// RuleErrorf returns an error of the given kind that names the rule that
// failed and, when field is not empty, the offending field.
func RuleErrorf(kind, rule, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Rule: rule, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorRule returns the rule a domain error names, if any.
func ErrorRule(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Rule
	}
	return ""
}

// ErrorKind returns the kind of a domain error, EInternal for anything else.
func ErrorKind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if err == nil {
		return ""
	}
	return EInternal
}

// ErrorMessage returns the human message of a domain error; other errors
// are reported as "internal error" so that no internals leak to callers.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the field named by a domain error, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// WithKind returns a copy of e with another kind.
func (e *Error) WithKind(kind string) *Error {
	c := *e
	c.Kind = kind
	return &c
}

// WithRule sets the rule an error names and returns the error.
func (e *Error) WithRule(rule string) *Error {
	e.Rule = rule
	return e
}
