package http

import (
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
)

// statusOf is the one table from domain error kinds to HTTP statuses.
var statusOf = map[string]int{
	flexhub.EInvalid:      http.StatusUnprocessableEntity,
	flexhub.ENotFound:     http.StatusNotFound,
	flexhub.EConflict:     http.StatusConflict,
	flexhub.EUnauthorized: http.StatusUnauthorized,
	flexhub.EForbidden:    http.StatusForbidden,
	flexhub.EGone:         http.StatusGone,
	flexhub.EInternal:     http.StatusInternalServerError,
}

// RuleURI is the problem type of a failed business rule, e.g.
// urn:flexhub:rule:bid.price.max.
func RuleURI(rule string) string { return "urn:flexhub:rule:" + rule }

// problem turns a domain error into an RFC 9457 problem (huma.ErrorModel,
// served as application/problem+json). A field error names its location
// in huma's notation ("body.technical.max_up", "header.If-Match").
func problem(err error) error {
	if err == nil {
		return nil
	}
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	kind := flexhub.ErrorKind(err)
	status, ok := statusOf[kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	msg := flexhub.ErrorMessage(err)
	m := &huma.ErrorModel{Status: status, Title: http.StatusText(status), Detail: msg}
	if r := flexhub.ErrorRule(err); r != "" {
		// RFC 9457's "type" identifies the kind of problem: here the
		// business rule that failed, stable for clients to branch on.
		m.Type = RuleURI(r)
	}
	if f := flexhub.ErrorField(err); f != "" {
		loc := "body." + f
		if f == "If-Match" || f == "Idempotency-Key" {
			loc = "header." + f
		} else if strings.HasPrefix(f, "query.") || strings.HasPrefix(f, "path.") {
			loc = f
		}
		m.Errors = []*huma.ErrorDetail{{Message: msg, Location: loc}}
	}
	return m
}
