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
	// CodeRotated answers a secret replaced by rotation, presented after
	// its grace period: the token is alive under its new secret, and
	// whoever presents the old one may have stolen it.
	CodeRotated Code = "ROTATED"
)

// Codes lists every verification code.
var Codes = []Code{
	CodeValid, CodeMalformed, CodeNotFound, CodeExpired, CodeDisabled, CodeRevoked,
	CodeIPNotAllowed, CodeOriginNotAllowed, CodeInsufficientPermissions,
	CodeRateLimited, CodeUsageExceeded, CodeRotated,
}

// VerifyRequest asks whether a secret is good for a request.
type VerifyRequest struct {
	Token       string   `json:"token" maxLength:"512" doc:"The secret as presented by the client."`
	Permissions []string `json:"permissions,omitempty" maxItems:"32" doc:"Every permission the request needs (resource:action, or read / write)."`
	IP          string   `json:"ip,omitempty" maxLength:"64" doc:"The end client's address as the caller reports it: checked against allowed_ips and recorded as last used; never a key of tokend's failure throttle."`
	Origin      string   `json:"origin,omitempty" maxLength:"512" doc:"The browser Origin header, if any."`
	UserAgent   string   `json:"user_agent,omitempty" maxLength:"512" doc:"The end client's User-Agent as the caller reports it: kept only in the security events a secret can raise (token.rotated_secret_used, token.decoy_used)."`

	// Peer is what tokend's failure throttle counts failed verifications
	// against: the address of whoever asked tokend (the connection's peer,
	// or the client a trusted proxy names), with the door it came through
	// (see PeerKey). The HTTP layer sets it from the connection, never from
	// the body: IP is only what the caller reports about its own client, and
	// feeds allowed_ips and last use, never a throttle that protects tokend
	// itself. Empty (in-process callers) is never throttled.
	Peer string `json:"-"`

	// Method and Path are the original request's, set by forward auth
	// (X-Forwarded-Method / X-Original-Method, X-Forwarded-Uri /
	// X-Original-URI): recorded in the token's recent activity, the path
	// without its query string. Never read from a body.
	Method string `json:"-"`
	Path   string `json:"-"`

	// Endpoint is where the secret was presented (one of the Endpoint*
	// constants), set by the caller, never read from a body: told in the
	// security events a secret can raise.
	Endpoint string `json:"-"`

	// Peek asks about the token without using it (GET /v1/self): its rate
	// limit is reported, not spent; no use is counted toward max_uses and
	// nothing is recorded as its use (usage, last use, activity, networks).
	// The failure throttle and the filter of known secrets apply as to any
	// verification. Set by the caller, never read from a body.
	Peek bool `json:"-"`
}

// Where a secret is presented for verification (VerifyRequest.Endpoint).
const (
	EndpointVerify      = "verify"       // POST /v1/verify
	EndpointForwardAuth = "forward_auth" // GET /v1/auth
	EndpointAdmin       = "admin"        // the management API's bearer token
	EndpointDashboard   = "dashboard"    // the dashboard's sign-in with a token
	EndpointMiddleware  = "middleware"   // an in-process verifier (the Go SDK's)
	EndpointSelf        = "self"         // GET /v1/self: a token asking about itself
)

// Doors of the failure throttle. Each counts its failures apart, so that
// failures at one never refuse a peer at the other.
const (
	// DoorVerify is verification: POST /v1/verify and forward auth.
	DoorVerify = "verify"
	// DoorAdmin is the management API's check of admin tokens.
	DoorAdmin = "admin"
)

// PeerKey is the VerifyRequest.Peer of a peer address at a door.
func PeerKey(door, addr string) string { return door + "|" + addr }

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
	Code      Code            `json:"code" enum:"VALID,MALFORMED,NOT_FOUND,EXPIRED,DISABLED,REVOKED,IP_NOT_ALLOWED,ORIGIN_NOT_ALLOWED,INSUFFICIENT_PERMISSIONS,RATE_LIMITED,USAGE_EXCEEDED,ROTATED"`
	Reason    string          `json:"reason,omitempty" enum:"client_throttled,owner_rate_limited" doc:"More detail on the code: client_throttled (the failure throttle refused the caller's address) or owner_rate_limited (the rate limit shared by the token's owner) for RATE_LIMITED."`
	Token     *VerifiedToken  `json:"token,omitempty"`
	RateLimit *RateLimitState `json:"rate_limit,omitempty"`
}

// VerifiedToken is what a verifier learns about the token.
type VerifiedToken struct {
	ID          string         `json:"id"`
	AppID       string         `json:"app_id"`
	OwnerID     string         `json:"owner_id,omitempty" doc:"The owner of the token; absent when it has none."`
	Name        string         `json:"name"`
	Type        TokenType      `json:"type" enum:"standard,plugin"`
	Access      Access         `json:"access" enum:"read_only,full_access,custom"`
	Permissions []string       `json:"permissions,omitempty"`
	ExpiresAt   *time.Time     `json:"expires_at,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	// Admin is, of an admin token only, what the management API that
	// authenticates with it needs besides; nil for every other token (and
	// for an admin token with neither scope nor restrictions). Never part
	// of a verification answer. Apart so that the millions of product
	// tokens a cache holds do not each carry room for it.
	Admin *AdminDetails `json:"-"`
}

// AdminDetails are an admin token's scope (Token.Scope) and its own
// restrictions, which bound the admin tokens it creates (Actor.Limits).
type AdminDetails struct {
	Scope      *AdminScope
	AllowedIPs []string
	RateLimit  *RateLimit
}

// RateLimitState reports a token's rate limit after this verification.
type RateLimitState struct {
	Limit     int `json:"limit" doc:"Verifications allowed per window."`
	Remaining int `json:"remaining" doc:"Verifications left in the current window."`
	// Reset is the number of seconds until the full limit is available again.
	Reset int `json:"reset" minimum:"0" doc:"Seconds until the full limit is available again (0: it is)."`
	// RetryAfter is the number of seconds to wait when rate limited.
	RetryAfter int `json:"retry_after,omitempty" minimum:"0" doc:"When rate limited: seconds to wait before trying again."`
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

// Allows reports whether a token with this access and granted list, of an
// app whose permission catalog is catalog, may do perm. It is the one place
// this rule lives.
//
// The catalog is the ceiling: a named permission (resource:action, or
// resource:* for every action on the resource) passes only when the catalog
// has it (as CheckGranted understands the catalog), whatever the access, so
// that removing a permission from the catalog takes it from every token at
// once. Within the catalog, read_only passes read actions (read, list, get),
// full_access passes everything, and custom passes what its list holds,
// where "resource:*" covers every action on the resource.
//
// The abstract permissions ask only about a kind of action (forward auth
// derives them from the HTTP method): read passes read_only and full_access,
// and a custom token that may do some read action of its catalog; write
// passes full_access, and a custom token that may do some other action of
// its catalog. A custom token holding only orders:write may not read.
func Allows(access Access, granted, catalog []string, perm string) bool {
	switch perm {
	case PermRead, PermWrite:
		switch access {
		case AccessFull:
			return true
		case AccessReadOnly:
			return perm == PermRead
		case AccessCustom:
			read := perm == PermRead
			for _, c := range catalog {
				if IsReadAction(c) == read && covers(granted, c) {
					return true
				}
			}
		}
		return false
	}
	if !inCatalog(perm, catalog) {
		return false
	}
	switch access {
	case AccessFull:
		return true
	case AccessReadOnly:
		return IsReadAction(perm)
	case AccessCustom:
		return covers(granted, perm)
	}
	return false
}

// LivePermissions answers the permissions of a granted list that the
// catalog still has (as CheckGranted understands the catalog): what a token
// is reported to hold at verification, once a catalog change has taken some
// away.
func LivePermissions(granted, catalog []string) []string {
	live := make([]string, 0, len(granted))
	for _, g := range granted {
		if inCatalog(g, catalog) {
			live = append(live, g)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live
}

// covers reports whether a granted list holds perm, itself or as
// "resource:*".
func covers(granted []string, perm string) bool {
	res, _, _ := strings.Cut(perm, ":")
	for _, g := range granted {
		if g == perm {
			return true
		}
		if gres, act, ok := strings.Cut(g, ":"); ok && act == "*" && gres == res {
			return true
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
	case CodeRotated:
		return "the secret was replaced by rotation; the token's new secret must be used"
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
