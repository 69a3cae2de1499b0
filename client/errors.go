package client

import (
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// Error is a failure the server answered: an RFC 9457 problem document, or
// for an answer that is not one (a proxy's error page), what the status says.
type Error struct {
	Status int    // HTTP status
	Code   string // a tokend.ErrorCode value, such as NOT_FOUND
	Type   string // the problem type URI, if any
	Title  string
	Detail string
	Fields []tokend.FieldError // per-field problems of a VALIDATION_FAILED request
	// RetryAfter is how long the server asked to wait (429, 503), if it said.
	RetryAfter time.Duration
}

// Error answers the detail (or title) followed by each field's problem, e.g.
// "the request has 2 invalid fields: name: is required; max_uses: must be at
// least 1".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Detail != "":
		b.WriteString(e.Detail)
	case e.Title != "":
		b.WriteString(e.Title)
	default:
		b.WriteString("the server answered " + strconv.Itoa(e.Status))
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if f.Field != "" {
			b.WriteString(f.Field + ": ")
		}
		b.WriteString(f.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, tokend.ErrNotFound) (and ErrConflict, ErrStale)
// true for an Error of the same code, as it is for the server's own errors.
func (e *Error) Is(target error) bool {
	t, ok := target.(*tokend.Error)
	return ok && string(t.Code) == e.Code &&
		(t == tokend.ErrNotFound || t == tokend.ErrConflict || t == tokend.ErrStale)
}

// problem is the wire form of an error answer.
type problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Code   string              `json:"code"`
	Errors []tokend.FieldError `json:"errors"`
}
