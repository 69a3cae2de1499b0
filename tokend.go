// Package tokend is the domain of the tokend API token service: what a token
// and an application are, the verification codes, the error type, and the
// small interfaces that the storage, verification and HTTP packages implement
// or consume.
//
// It imports only the standard library (a test pins this) and knows nothing of
// SQL, HTTP or caches. Reading this package is meant to teach the whole system.
package tokend

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Status is the stored state of a token. StatusExpired is never stored: it is
// derived from ExpiresAt when a token is shown or filtered.
type Status string

const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
	StatusRevoked  Status = "revoked"
	StatusExpired  Status = "expired"
)

// TokenType says where a token may be used from.
type TokenType string

const (
	// TypeStandard tokens are for server-to-server calls; presented with a
	// browser Origin they are refused.
	TypeStandard TokenType = "standard"
	// TypePlugin tokens are for browser extensions and in-browser apps; they
	// pass only from their allowed origins.
	TypePlugin TokenType = "plugin"
)

// Access is the breadth of what a token may do.
type Access string

const (
	AccessReadOnly Access = "read_only"
	AccessFull     Access = "full_access"
	AccessCustom   Access = "custom"
)

// Abstract permissions used when the caller asks only "may this token read"
// or "may it write" (forward auth deriving the need from an HTTP method).
const (
	PermRead  = "read"
	PermWrite = "write"
)

// Admin permissions carried by tokens of the system app and by dashboard roles.
const (
	PermAppsRead     = "apps:read"
	PermAppsWrite    = "apps:write"
	PermTokensRead   = "tokens:read"
	PermTokensWrite  = "tokens:write"
	PermTokensRotate = "tokens:rotate"
	PermTokensDelete = "tokens:delete"
	PermAuditRead    = "audit:read"
	PermUsersWrite   = "users:write"
)

// AdminPermissions is the permission catalog of the system app.
var AdminPermissions = []string{
	PermAppsRead, PermAppsWrite, PermTokensRead, PermTokensWrite,
	PermTokensRotate, PermTokensDelete, PermAuditRead, PermUsersWrite,
}

// SystemAppID is the id of the built-in application that holds admin tokens.
const SystemAppID = "app_system"

// DefaultPrefix is the secret prefix of an application that names none.
const DefaultPrefix = "tkd"

// Token is an API token as tokend keeps it. The secret itself is never part
// of it: only its keyed hash.
type Token struct {
	ID    string `json:"id" doc:"Public, stable reference; survives rotation; safe to log." example:"tok_4Lx0u1ZbT5uJ9mYtq2c3Qe"`
	AppID string `json:"app_id" doc:"The application the token belongs to."`
	// OwnerID is the product's own customer or account the token belongs
	// to (opaque to tokend); "" for none. It never changes after creation.
	OwnerID string `json:"owner_id" maxLength:"128" doc:"The product's customer or account the token belongs to: 1 to 128 visible ASCII characters; empty for none. Fixed at creation." example:"acct_1234"`
	// OwnerName is how the owner is shown; "" for none.
	OwnerName      string         `json:"owner_name" maxLength:"200" doc:"How the owner is shown: up to 200 characters of one line; empty for none."`
	Name           string         `json:"name"`
	Description    string         `json:"description"`
	Type           TokenType      `json:"type" enum:"standard,plugin"`
	Access         Access         `json:"access" enum:"read_only,full_access,custom"`
	Permissions    []string       `json:"permissions" doc:"For access custom: the permissions granted." nullable:"false"`
	ExpiresAt      *time.Time     `json:"expires_at" doc:"When the token stops working; null for never."`
	AllowedIPs     []string       `json:"allowed_ips" doc:"CIDR ranges the token may be used from; empty for anywhere." nullable:"false"`
	AllowedOrigins []string       `json:"allowed_origins" doc:"Browser origins a plugin token may be used from." nullable:"false"`
	RateLimit      *RateLimit     `json:"rate_limit"`
	MaxUses        *int64         `json:"max_uses" doc:"The token stops working after this many successful verifications."`
	UseCount       int64          `json:"use_count" doc:"Successful verifications recorded so far."`
	Metadata       map[string]any `json:"metadata" doc:"Small JSON object returned on verification."`
	Status         Status         `json:"status" enum:"active,disabled,revoked,expired"`
	Masked         string         `json:"masked" doc:"Display form: prefix and the last 4 characters." example:"tkd_…x7Qa"`
	CreatedAt      time.Time      `json:"created_at"`
	CreatedBy      string         `json:"created_by"`
	UpdatedAt      time.Time      `json:"updated_at"`
	LastUsedAt     *time.Time     `json:"last_used_at"`
	LastUsedIP     string         `json:"last_used_ip"`
	RevokedAt      *time.Time     `json:"revoked_at"`
	// PreviousSecretExpiresAt is the end of the grace period of the secret
	// replaced by the last rotation; null when there was none.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	Version                 int64      `json:"version" doc:"Increases on every change; the ETag of the token."`
	// Scope restricts an admin token (of the system app) to one owner and,
	// optionally, some applications; nil for an unrestricted admin token.
	// Tokens of product apps never have one.
	Scope *AdminScope `json:"scope,omitempty" doc:"Admin tokens only: the owner (and applications) the token may act on; absent for an unrestricted admin token."`
	// Decoy marks a honey token: it looks like a real token of its app,
	// never verifies (verification answers as for an unknown secret), and
	// its presentation raises token.decoy_used. Fixed at creation.
	Decoy bool `json:"decoy" doc:"A decoy (honey) token: it never verifies, and any presentation raises token.decoy_used. Listed apart: GET /v1/tokens?decoy=true."`
	// Networks are the networks the token was used from, most recently
	// seen first (at most MaxTokenNetworks); filled by the single-token
	// read of the management API only, never by lists or the store's
	// token reads.
	Networks []TokenNetwork `json:"networks,omitempty" doc:"The networks (IPv4 /24, IPv6 /48) the token was recently used from, most recently seen first; only in the answer for one token."`

	// SecretHash is HMAC-SHA256(pepper, secret). Never serialised.
	SecretHash []byte `json:"-"`
}

// StatusAt is the status of t as a user sees it at now: a live token past its
// expiry is expired.
func (t Token) StatusAt(now time.Time) Status {
	if t.Status != StatusRevoked && t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return StatusExpired
	}
	return t.Status
}

// AdminScope restricts an admin token to the tokens of one owner, and, when
// AppIDs is not empty, to those applications.
type AdminScope struct {
	OwnerID string   `json:"owner_id" minLength:"1" maxLength:"128" doc:"The owner whose tokens the admin token may manage."`
	AppIDs  []string `json:"app_ids,omitempty" maxItems:"100" doc:"The applications it may act on; empty for all of the owner's."`
}

// RateLimit allows Limit successful verifications per Window.
type RateLimit struct {
	_      struct{} `nullable:"true"`
	Limit  int      `json:"limit" doc:"1 to 1000000000."`
	Window Duration `json:"window" doc:"A duration such as 1s, 1m, 1h or 1d."`
}

// App is an application: a product or environment that owns tokens, with the
// permission catalog its tokens draw from.
type App struct {
	ID               string    `json:"id" example:"app_7GQx1bLx8Vv3k2Qx9ZaY0p"`
	Name             string    `json:"name"`
	TokenPrefix      string    `json:"token_prefix" doc:"Prefix of this app's secrets." example:"tkd"`
	Permissions      []string  `json:"permissions" doc:"Permission catalog: resource:action strings." nullable:"false"`
	MaxTokenLifetime *Duration `json:"max_token_lifetime" nullable:"true" doc:"Longest lifetime a token of this app may have; null for no limit."`
	// DisableUnusedAfter is the app's stale-token policy: a background job
	// disables its active tokens not used (nor created, enabled or edited)
	// for this long. nil for no policy.
	DisableUnusedAfter *Duration `json:"disable_unused_after" nullable:"true" doc:"Active tokens not used for this long (never used: since creation) are disabled by tokend; null for never."`
	// ExpiryNotice is the app's own notice period: token.expiring is
	// raised this long before a token expires, besides 7 days and 1 day
	// before. nil for only those two.
	ExpiryNotice *Duration `json:"expiry_notice" nullable:"true" doc:"token.expiring is also raised this long before a token of this app expires (besides 7d and 1d); null for only those two."`
	// MaxTokensPerOwner caps the live (not revoked, not expired) tokens one
	// owner may hold in the app; nil for no cap.
	MaxTokensPerOwner *int `json:"max_tokens_per_owner" nullable:"true" minimum:"1" maximum:"1000000" doc:"Most live (not revoked, not expired) tokens one owner may hold in this app; null for no limit."`
	// OwnerRateLimit is one limit shared by all tokens of one owner of the
	// app, checked after each token's own; nil for none.
	OwnerRateLimit *RateLimit `json:"owner_rate_limit" doc:"One rate limit shared by all tokens of one owner of this app; null for none."`
	// Portal brands the application's customer portal; nil for the
	// defaults.
	// LeakPolicy is what a report of a leaked secret of the app's tokens
	// does (POST /v1/leaks): revoke (the default), disable or notify only.
	LeakPolicy LeakPolicy `json:"leak_policy" enum:"revoke,disable,notify" doc:"What a reported leak of a token's secret does: revoke it (default), disable it, or only notify (token.leaked)."`
	// RotatedSecretPolicy is what the use of a secret replaced by rotation,
	// after its grace, does besides answering ROTATED and raising
	// token.rotated_secret_used: notify (nothing more) or disable.
	RotatedSecretPolicy RotatedSecretPolicy `json:"rotated_secret_policy" enum:"notify,disable" doc:"What presenting a secret replaced by rotation, after its grace period, does besides answering ROTATED and raising token.rotated_secret_used: notify only (default) or also disable the token."`
	Portal              *AppPortal          `json:"portal,omitempty" doc:"How the application's customer portal looks and who may embed it; absent for the defaults."`
	System              bool                `json:"system" doc:"True for the built-in app that holds admin tokens."`
	CreatedAt           time.Time           `json:"created_at"`
	UpdatedAt           time.Time           `json:"updated_at"`
	Version             int64               `json:"version"`
}

// Duration is a time.Duration that reads and writes as text ("90s", "1h",
// "30d"). A day is 24 hours.
type Duration time.Duration

// ParseDuration reads Go durations plus a whole number of days ("7d").
func ParseDuration(s string) (Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || int64(days) > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use forms such as 30s, 15m, 1h or 7d", s)
	}
	return Duration(d), nil
}

// String writes the shortest whole unit: "30d", "1h", "90m", "45s"; other
// values as Go does.
func (d Duration) String() string {
	td := time.Duration(d)
	for _, u := range []struct {
		unit time.Duration
		sfx  string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if td > 0 && td%u.unit == 0 {
			return strconv.FormatInt(int64(td/u.unit), 10) + u.sfx
		}
	}
	return td.String()
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1h\"")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Actor is who performs a management operation, with what they may do.
type Actor struct {
	Kind        string   // "token", "user", "owner" (a portal customer) or "system"
	ID          string   // token id, user id, or "system"
	Name        string   // human-readable
	IP          string   // client address, for the audit log
	Permissions []string // admin permissions held
	// Scope restricts an owner-scoped admin token to one owner's tokens
	// (and some applications); nil for every other actor. See AdminScope.
	Scope *AdminScope
	// Limits are an admin token's own expiry, IP ranges and rate limit,
	// which bound the admin tokens it creates or edits (a child admin
	// token is never looser than its creator); nil for every other actor.
	Limits *ActorLimits
	// Details are recorded in every audit event of this actor (the
	// portal's customer: the product's user acting for the owner).
	Details map[string]any
}

// ActorLimits are the restrictions of an admin token acting on the
// management API. A nil ExpiresAt, empty AllowedIPs or nil RateLimit
// bounds nothing.
type ActorLimits struct {
	ExpiresAt  *time.Time
	AllowedIPs []string
	RateLimit  *RateLimit
}

// SystemActor acts for tokend itself (bootstrap, migrations).
var SystemActor = Actor{Kind: "system", ID: "system", Name: "tokend", Permissions: AdminPermissions}

// Ref is how the actor appears in audit entries and created_by.
func (a Actor) Ref() string {
	if a.Kind == "system" {
		return "system"
	}
	return a.Kind + ":" + a.ID
}

// Can reports whether the actor holds perm.
func (a Actor) Can(perm string) bool {
	for _, p := range a.Permissions {
		if p == perm {
			return true
		}
	}
	return false
}

// Require answers a FORBIDDEN error unless the actor holds every perm.
func (a Actor) Require(perms ...string) error {
	for _, p := range perms {
		if !a.Can(p) {
			return Errorf(ECodeForbidden, "this requires the %s permission", p)
		}
	}
	return nil
}

// Event is one audit record. Details hold what changed (field: {from, to})
// and never any secret.
type Event struct {
	ID        int64          `json:"id"`
	Time      time.Time      `json:"time"`
	Actor     string         `json:"actor" example:"token:tok_4Lx0u1ZbT5uJ9mYtq2c3Qe"`
	ActorName string         `json:"actor_name"`
	IP        string         `json:"ip"`
	Action    string         `json:"action" example:"token.revoke"`
	AppID     string         `json:"app_id"`
	TokenID   string         `json:"token_id"`
	Details   map[string]any `json:"details"`
	// Notices are the events (GET /v1/events, webhooks, mail) the change
	// raises; the store writes them to its outbox with this audit row, in
	// the same transaction.
	Notices []Notice `json:"-"`
	// EachToken, on a change of many tokens at once (revoking every token
	// of an application or of an owner), answers the notices of one
	// changed token, as stored after the change; the store writes them,
	// with that token's id, in the same transaction.
	EachToken func(t Token) []Notice `json:"-"`
}

// Audit actions.
const (
	ActionAppCreate       = "app.create"
	ActionAppUpdate       = "app.update"
	ActionAppDelete       = "app.delete"
	ActionAppRevokeAll    = "app.revoke_all"
	ActionOwnerRevokeAll  = "owner.revoke_all" // every token of one owner of an app
	ActionTokenCreate     = "token.create"
	ActionTokenUpdate     = "token.update"
	ActionTokenDisable    = "token.disable"
	ActionTokenEnable     = "token.enable"
	ActionTokenRevoke     = "token.revoke"
	ActionTokenRotate     = "token.rotate"
	ActionTokenDelete     = "token.delete"
	ActionTokenOldSecret  = "token.old_secret_used"
	ActionTokenLeak       = "token.leak" // a secret reported leaked (POST /v1/leaks)
	ActionSystemBootstrap = "system.bootstrap"
)

// ActionTokenLeakDismissed records that someone acknowledged the warning
// raised by token.old_secret_used (the dashboard's leak banner).
const ActionTokenLeakDismissed = "token.leak_dismissed"

// ActionTokenDecoyUsed records that a decoy's secret was presented for
// verification (the audit row of token.decoy_used).
const ActionTokenDecoyUsed = "token.decoy_used"
