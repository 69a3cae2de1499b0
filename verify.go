package tokend

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// Code is the outcome of a verification.
type Code string

const (
	CodeValid                   Code = "VALID"
	CodeMalformed               Code = "MALFORMED"
	CodeNotFound                Code = "NOT_FOUND"
	CodeExpired                 Code = "EXPIRED"
	CodeDisabled                Code = "DISABLED"
	CodeRevoked                 Code = "REVOKED"
	CodeIPNotAllowed            Code = "IP_NOT_ALLOWED"
	CodeOriginNotAllowed        Code = "ORIGIN_NOT_ALLOWED"
	CodeInsufficientPermissions Code = "INSUFFICIENT_PERMISSIONS"
	CodeRateLimited             Code = "RATE_LIMITED"
	CodeUsageExceeded           Code = "USAGE_EXCEEDED"
)

// Codes lists every verification code.
var Codes = []Code{
	CodeValid, CodeMalformed, CodeNotFound, CodeExpired, CodeDisabled, CodeRevoked,
	CodeIPNotAllowed, CodeOriginNotAllowed, CodeInsufficientPermissions,
	CodeRateLimited, CodeUsageExceeded,
}

// VerifyRequest asks whether a secret is good for a request.
type VerifyRequest struct {
	Token       string   `json:"token" maxLength:"512" doc:"The secret as presented by the client."`
	Permissions []string `json:"permissions,omitempty" maxItems:"32" doc:"Every permission the request needs (resource:action, or read / write)."`
	IP          string   `json:"ip,omitempty" maxLength:"64" doc:"The client address, checked against allowed_ips."`
	Origin      string   `json:"origin,omitempty" maxLength:"512" doc:"The browser Origin header, if any."`
}

// Check answers a VALIDATION_FAILED error for a question that is not well
// formed: an ip that is not one IPv4 or IPv6 address (without a zone). The
// ip feeds allowed_ips and is stored as the last-used address, so nothing
// else may pass.
func (r VerifyRequest) Check() error {
	if r.IP == "" {
		return nil
	}
	if a, err := netip.ParseAddr(r.IP); err != nil || a.Zone() != "" {
		var p Problems
		p.Add("ip", "must be an IPv4 or IPv6 address such as 203.0.113.7 or 2001:db8::7")
		return p.Err()
	}
	return nil
}

// VerifyResult is the answer. Token is set when the secret identified a
// token, whatever the code; RateLimit when the token has a limit.
type VerifyResult struct {
	Valid     bool            `json:"valid"`
	Code      Code            `json:"code"`
	Reason    string          `json:"reason,omitempty" doc:"More detail on the code, e.g. client_throttled for RATE_LIMITED."`
	Token     *VerifiedToken  `json:"token,omitempty"`
	RateLimit *RateLimitState `json:"rate_limit,omitempty"`
}

// VerifiedToken is what a verifier learns about the token.
type VerifiedToken struct {
	ID          string         `json:"id"`
	AppID       string         `json:"app_id"`
	Name        string         `json:"name"`
	Type        TokenType      `json:"type"`
	Access      Access         `json:"access"`
	Permissions []string       `json:"permissions,omitempty"`
	ExpiresAt   *time.Time     `json:"expires_at,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
}

// RateLimitState reports a token's rate limit after this verification.
type RateLimitState struct {
	Limit     int `json:"limit"`
	Remaining int `json:"remaining"`
	// Reset is the number of seconds until the full limit is available again.
	Reset int `json:"reset"`
	// RetryAfter is the number of seconds to wait when rate limited.
	RetryAfter int `json:"retry_after,omitempty"`
}

// Verifier answers verification questions. The verify package implements it.
// An error means the question could not be answered (storage unavailable for
// a token not in a fresh cache): callers answer 503, never VALID.
type Verifier interface {
	Verify(ctx context.Context, r VerifyRequest) (VerifyResult, error)
}

// IsReadAction reports whether a permission only reads: the abstract "read",
// or a resource:action whose action is read, list or get.
func IsReadAction(perm string) bool {
	if perm == PermRead {
		return true
	}
	i := strings.LastIndexByte(perm, ':')
	if i < 0 {
		return false
	}
	switch perm[i+1:] {
	case "read", "list", "get":
		return true
	}
	return false
}

// Allows reports whether a token with this access and permission list may
// do perm. A read_only token passes only read permissions; full_access passes
// everything; custom passes what its list holds, where "resource:*" covers
// every action on the resource, and the abstract read/write pass when the list
// holds any permission of that kind.
func Allows(access Access, granted []string, perm string) bool {
	switch access {
	case AccessFull:
		return true
	case AccessReadOnly:
		return IsReadAction(perm)
	case AccessCustom:
		switch perm {
		case PermRead:
			return len(granted) > 0
		case PermWrite:
			for _, g := range granted {
				if !IsReadAction(g) {
					return true
				}
			}
			return false
		}
		res, _, _ := strings.Cut(perm, ":")
		for _, g := range granted {
			if g == perm {
				return true
			}
			if gres, act, ok := strings.Cut(g, ":"); ok && act == "*" && gres == res {
				return true
			}
		}
	}
	return false
}

// Status is the HTTP status every front door (forward auth, the SDK
// middleware) answers for this code: 200 for VALID, 401 for a token that is
// no good, 403 for a good token that may not do this, 429 when rate limited.
func (c Code) Status() int {
	switch c {
	case CodeValid:
		return 200
	case CodeIPNotAllowed, CodeOriginNotAllowed, CodeInsufficientPermissions:
		return 403
	case CodeRateLimited:
		return 429
	}
	return 401
}

// Describe says in words why a verification answered as it did.
func (r VerifyResult) Describe() string {
	switch r.Code {
	case CodeValid:
		return "the token is valid"
	case CodeMalformed:
		return "the token is malformed"
	case CodeNotFound:
		return "the token is not known"
	case CodeExpired:
		return "the token has expired"
	case CodeDisabled:
		return "the token is disabled"
	case CodeRevoked:
		return "the token is revoked"
	case CodeUsageExceeded:
		return "the token has reached its maximum number of uses"
	case CodeIPNotAllowed:
		return "the token may not be used from this address"
	case CodeOriginNotAllowed:
		return "the token may not be used from this origin"
	case CodeInsufficientPermissions:
		return "the token lacks a permission this request needs"
	case CodeRateLimited:
		if r.Reason != "" {
			return "too many failed attempts from this address; slow down"
		}
		return "the token's rate limit is used up"
	}
	return "the token was refused (" + string(r.Code) + ")"
}
