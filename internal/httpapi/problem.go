package httpapi

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// Problem is an RFC 9457 problem document, the one shape of every error
// answer. huma writes it; newProblem is the one place that makes it.
type Problem struct {
	Type   string              `json:"type" example:"about:blank"`
	Title  string              `json:"title" example:"Unprocessable Entity"`
	Status int                 `json:"status" example:"422"`
	Detail string              `json:"detail,omitempty" example:"the request has 1 invalid field"`
	Code   tokend.ErrorCode    `json:"code" example:"VALIDATION_FAILED" doc:"Stable machine-readable code."`
	Errors []tokend.FieldError `json:"errors,omitempty" doc:"Per-field problems."`
	Reason tokend.Code         `json:"reason,omitempty" doc:"For a refused token: the verification code, e.g. REVOKED."`

	headers http.Header
	cause   error // logged, never sent
}

func (p *Problem) Error() string           { return string(p.Code) + ": " + p.Detail }
func (p *Problem) GetStatus() int          { return p.Status }
func (p *Problem) GetHeaders() http.Header { return p.headers }

// ContentType makes huma send problem+json whatever JSON type was asked for.
func (p *Problem) ContentType(string) string { return "application/problem+json" }

func (p *Problem) withHeader(k, v string) *Problem {
	if p.headers == nil {
		p.headers = http.Header{}
	}
	p.headers.Set(k, v)
	return p
}

// newProblem is installed as huma.NewError: it turns huma's own errors
// (validation, unreadable bodies) and ours into a Problem.
func newProblem(status int, msg string, errs ...error) huma.StatusError {
	for _, err := range errs {
		if p, ok := err.(*Problem); ok {
			return p
		}
	}
	p := &Problem{Type: "about:blank", Status: status, Title: http.StatusText(status), Detail: msg, Code: tokend.CodeForStatus(status)}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var te *tokend.Error
		var d *huma.ErrorDetail
		switch {
		case errors.As(err, &te):
			if status >= 500 {
				s := te.Code.Status()
				p.Status, p.Title, p.Code = s, http.StatusText(s), te.Code
			}
			if te.Code != tokend.ECodeInternal {
				p.Detail = te.Message
			}
			p.Errors = append(p.Errors, te.Fields...)
		case errors.As(err, &d):
			p.Errors = append(p.Errors, fieldError(d))
		default:
			if status < 500 {
				p.Errors = append(p.Errors, tokend.FieldError{Message: err.Error()})
			}
		}
	}
	if p.Code != tokend.ECodeInvalid && len(p.Errors) == 1 && p.Errors[0].Field == "" {
		// huma says "validation failed" for a body it cannot read; the
		// one error it holds says why.
		p.Detail, p.Errors = p.Errors[0].Message, nil
	}
	if p.Code == tokend.ECodeInvalid && len(p.Errors) > 0 {
		p.Detail = tokend.Problems(p.Errors).Err().(*tokend.Error).Message
	}
	return p.redact()
}

// redact masks anything shaped like a secret in what the problem says: a
// message may quote what the client sent (a secret pasted where a
// permission or an id belongs), and error answers end up in logs.
func (p *Problem) redact() *Problem {
	p.Detail = secret.Redact(p.Detail)
	for i := range p.Errors {
		p.Errors[i].Field = secret.Redact(p.Errors[i].Field)
		p.Errors[i].Message = secret.Redact(p.Errors[i].Message)
	}
	return p
}

// requiredRE is huma's message for a missing required property, which it
// reports at the enclosing object ("body") rather than at the property.
var requiredRE = regexp.MustCompile(`^expected required property (\S+) to be present$`)

// fieldError is one of huma's validation errors as our own validation
// words it: a missing property is named and "is required", as the
// service says of an empty one.
func fieldError(d *huma.ErrorDetail) tokend.FieldError {
	field := fieldName(d.Location)
	if m := requiredRE.FindStringSubmatch(d.Message); m != nil {
		if field != "" {
			field += "."
		}
		return tokend.FieldError{Field: field + m[1], Message: "is required"}
	}
	return tokend.FieldError{Field: field, Message: d.Message}
}

// fieldName turns huma's locations ("body.rate_limit.limit", "query.limit")
// into the field names our own validation uses.
func fieldName(loc string) string {
	for _, pfx := range []string{"body.", "query.", "path.", "header."} {
		if rest, ok := strings.CutPrefix(loc, pfx); ok {
			return rest
		}
	}
	if loc == "body" {
		return ""
	}
	return loc
}

// problemFrom turns any error a handler returns into a Problem. A foreign
// error is internal: its text never reaches the caller.
func problemFrom(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var te *tokend.Error
	if !errors.As(err, &te) {
		te = tokend.Internal(err)
	}
	status := te.Code.Status()
	p = &Problem{
		Type: "about:blank", Status: status, Title: http.StatusText(status),
		Detail: te.Message, Code: te.Code, Errors: slices.Clone(te.Fields), cause: te.Cause,
	}
	return p.redact()
}
