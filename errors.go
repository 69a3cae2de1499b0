package tokend

import (
	"errors"
	"fmt"
)

// ErrorCode is the stable, machine-readable kind of a failed operation. The
// HTTP layer maps each to one status.
type ErrorCode string

const (
	ECodeInvalid            ErrorCode = "VALIDATION_FAILED"   // 422 (400 for a body that is not JSON)
	ECodeMalformedRequest   ErrorCode = "MALFORMED_REQUEST"   // 400
	ECodeUnauthenticated    ErrorCode = "UNAUTHENTICATED"     // 401
	ECodeForbidden          ErrorCode = "FORBIDDEN"           // 403
	ECodeNotFound           ErrorCode = "NOT_FOUND"           // 404
	ECodeConflict           ErrorCode = "CONFLICT"            // 409
	ECodePreconditionFailed ErrorCode = "PRECONDITION_FAILED" // 412
	ECodeMethodNotAllowed   ErrorCode = "METHOD_NOT_ALLOWED"  // 405
	ECodeTooLarge           ErrorCode = "TOO_LARGE"           // 413
	ECodeRateLimited        ErrorCode = "RATE_LIMITED"        // 429
	ECodeUnavailable        ErrorCode = "UNAVAILABLE"         // 503
	ECodeInternal           ErrorCode = "INTERNAL"            // 500
)

// Sentinel errors that stores return, translated from driver errors by code.
var (
	ErrNotFound = &Error{Code: ECodeNotFound, Message: "not found"}
	ErrConflict = &Error{Code: ECodeConflict, Message: "conflict"}
	// ErrStale is returned by an update whose expected version is not the
	// stored one.
	ErrStale = &Error{Code: ECodePreconditionFailed, Message: "the resource was changed since it was read; fetch it again"}
)

// ErrOwnerLimit is the refusal of a token for an owner who already holds
// max live tokens of the app (App.MaxTokensPerOwner). It is a conflict
// (ErrConflict matches it): the request is valid, the owner's tokens are
// in the way.
func ErrOwnerLimit(max int) *Error {
	return &Error{
		Code:    ECodeConflict,
		Message: fmt.Sprintf("this owner already has %d live tokens of this application, its max_tokens_per_owner; revoke one first", max),
		Fields:  []FieldError{{Field: "owner_id", Message: fmt.Sprintf("holds the most live tokens the application allows per owner (%d)", max)}},
	}
}

// ErrAppNameTaken refuses an application name that another application
// (id) has already, whatever the case of its letters: two "Shop"s cannot be
// told apart in a list, a menu or a log.
func ErrAppNameTaken(name, id string) *Error {
	return &Error{
		Code:    ECodeConflict,
		Message: fmt.Sprintf("an application named %q exists already: %s; use it, or choose another name", name, id),
		Fields:  []FieldError{{Field: "name", Message: fmt.Sprintf("is the name of application %s", id)}},
	}
}

// IsOwnerLimit reports whether err is an ErrOwnerLimit refusal.
func IsOwnerLimit(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == ECodeConflict && len(e.Fields) == 1 && e.Fields[0].Field == "owner_id"
}

// FieldError is one problem with one field of a request.
type FieldError struct {
	Field   string `json:"field" example:"name"`
	Message string `json:"message" example:"must be 1 to 50 characters"`
}

// Error is tokend's one error type: a stable Code, a Message safe to show to
// any caller, per-field problems, and an internal cause that is only logged.
type Error struct {
	Code    ErrorCode
	Message string
	Fields  []FieldError
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrNotFound) true for any NOT_FOUND error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t == ErrNotFound || t == ErrConflict || t == ErrStale)
}

// Errorf makes an *Error with a public message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps a cause that must not reach the caller.
func Internal(cause error) *Error {
	return &Error{Code: ECodeInternal, Message: "internal error", Cause: cause}
}

// Unavailable wraps a storage outage.
func Unavailable(cause error) *Error {
	return &Error{Code: ECodeUnavailable, Message: "storage is unavailable; try again shortly", Cause: cause}
}

// CodeOf returns the ErrorCode of err, ECodeInternal for a foreign error.
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ECodeInternal
}

// Problems collects field errors so that validation reports everything wrong
// with a request at once.
type Problems []FieldError

// Add records a problem with field.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err is nil without problems, else a VALIDATION_FAILED error listing them.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	msg := "the request has 1 invalid field"
	if len(p) > 1 {
		msg = fmt.Sprintf("the request has %d invalid fields", len(p))
	}
	return &Error{Code: ECodeInvalid, Message: msg, Fields: p}
}

// Status is the HTTP status that answers an error of this code.
func (c ErrorCode) Status() int {
	switch c {
	case ECodeInvalid:
		return 422
	case ECodeMalformedRequest:
		return 400
	case ECodeUnauthenticated:
		return 401
	case ECodeForbidden:
		return 403
	case ECodeNotFound:
		return 404
	case ECodeMethodNotAllowed:
		return 405
	case ECodeConflict:
		return 409
	case ECodePreconditionFailed:
		return 412
	case ECodeTooLarge:
		return 413
	case ECodeRateLimited:
		return 429
	case ECodeUnavailable:
		return 503
	}
	return 500
}

// ErrorCodes lists every ErrorCode, the closed set an error answer's code
// is drawn from.
var ErrorCodes = []ErrorCode{
	ECodeInvalid, ECodeMalformedRequest, ECodeUnauthenticated, ECodeForbidden, ECodeNotFound, ECodeConflict,
	ECodePreconditionFailed, ECodeMethodNotAllowed, ECodeTooLarge, ECodeRateLimited, ECodeUnavailable, ECodeInternal,
}

// CodeForStatus is the code of an error answered with an HTTP status, for
// answers that carry none: the inverse of Status, with other client errors
// read as malformed requests and other server errors as internal ones.
func CodeForStatus(status int) ErrorCode {
	switch status {
	case 400:
		return ECodeMalformedRequest
	case 401:
		return ECodeUnauthenticated
	case 403:
		return ECodeForbidden
	case 404:
		return ECodeNotFound
	case 405:
		return ECodeMethodNotAllowed
	case 409:
		return ECodeConflict
	case 412:
		return ECodePreconditionFailed
	case 413:
		return ECodeTooLarge
	case 422:
		return ECodeInvalid
	case 429:
		return ECodeRateLimited
	case 502, 503, 504:
		return ECodeUnavailable
	}
	if status >= 500 {
		return ECodeInternal
	}
	return ECodeMalformedRequest
}
