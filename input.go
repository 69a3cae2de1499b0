package tokend

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what a request may hold.
const (
	MaxNameLen        = 50
	MaxDescriptionLen = 500
	MaxListLen        = 100 // IP ranges, origins, permissions
	MaxMetadataBytes  = 4096
	MaxPermissionLen  = 100
)

// TokenInput is what creating a token takes.
type TokenInput struct {
	AppID          string         `json:"app_id"`
	Name           string         `json:"name" doc:"1 to 50 characters, unique among the app's live tokens."`
	Description    string         `json:"description,omitempty" doc:"Up to 500 characters."`
	Type           TokenType      `json:"type,omitempty" doc:"standard (default) or plugin."`
	Access         Access         `json:"access,omitempty" doc:"read_only (default), full_access or custom."`
	Permissions    []string       `json:"permissions,omitempty" doc:"With access custom: permissions from the app's catalog."`
	ExpiresIn      string         `json:"expires_in,omitempty" doc:"7d, 30d, 90d, unlimited, or any duration such as 12h. Default 30d unless expires_at is given."`
	ExpiresAt      *time.Time     `json:"expires_at,omitempty" doc:"An explicit expiry instead of expires_in."`
	AllowedIPs     []string       `json:"allowed_ips,omitempty" doc:"CIDR ranges or single addresses, IPv4 or IPv6."`
	AllowedOrigins []string       `json:"allowed_origins,omitempty" doc:"Plugin tokens: browser origins such as https://app.example.com."`
	RateLimit      *RateLimit     `json:"rate_limit,omitempty"`
	MaxUses        *int64         `json:"max_uses,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
}

// TokenPatch is an edit of a token: absent fields stay as they are; fields
// sent as null are cleared (Null lists them).
type TokenPatch struct {
	Name           *string         `json:"name,omitempty" doc:"1 to 50 characters."`
	Description    *string         `json:"description,omitempty"`
	Type           *TokenType      `json:"type,omitempty" doc:"standard or plugin."`
	Access         *Access         `json:"access,omitempty" doc:"read_only, full_access or custom."`
	Permissions    *[]string       `json:"permissions,omitempty"`
	ExpiresIn      *string         `json:"expires_in,omitempty" doc:"7d, 30d, 90d, a duration from now, or unlimited to remove the expiry."`
	ExpiresAt      *time.Time      `json:"expires_at,omitempty" nullable:"true" doc:"A new expiry; null removes it."`
	AllowedIPs     *[]string       `json:"allowed_ips,omitempty"`
	AllowedOrigins *[]string       `json:"allowed_origins,omitempty"`
	RateLimit      *RateLimit      `json:"rate_limit,omitempty" doc:"A new limit; null removes it."`
	MaxUses        *int64          `json:"max_uses,omitempty" nullable:"true" doc:"null removes the limit."`
	Metadata       *map[string]any `json:"metadata,omitempty"`

	// Null holds the JSON names of fields sent as null.
	Null []string `json:"-"`
}

// UnmarshalJSON records which fields were sent as null.
func (p *TokenPatch) UnmarshalJSON(b []byte) error {
	type plain TokenPatch
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = TokenPatch(v)
	p.Null = nullKeys(b)
	return nil
}

// MarshalJSON writes the set fields, and null for each field in Null.
func (p TokenPatch) MarshalJSON() ([]byte, error) {
	type plain TokenPatch
	return marshalWithNulls(plain(p), p.Null)
}

// IsNull reports whether field was sent as null.
func (p TokenPatch) IsNull(field string) bool {
	for _, f := range p.Null {
		if f == field {
			return true
		}
	}
	return false
}

// Empty reports whether the patch changes nothing.
func (p TokenPatch) Empty() bool {
	return p.Name == nil && p.Description == nil && p.Type == nil && p.Access == nil &&
		p.Permissions == nil && p.ExpiresIn == nil && p.ExpiresAt == nil && p.AllowedIPs == nil &&
		p.AllowedOrigins == nil && p.RateLimit == nil && p.MaxUses == nil && p.Metadata == nil &&
		len(p.Null) == 0
}

func marshalWithNulls(v any, nulls []string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(nulls) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range nulls {
		m[k] = json.RawMessage("null")
	}
	return json.Marshal(m)
}

func nullKeys(b []byte) []string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return nil
	}
	var out []string
	for k, v := range raw {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			out = append(out, k)
		}
	}
	return out
}

// AppInput is what creating an app takes.
type AppInput struct {
	Name             string    `json:"name" doc:"1 to 50 characters."`
	TokenPrefix      string    `json:"token_prefix,omitempty" doc:"Lower-case letters, digits and underscores, starting with a letter. Default tkd."`
	Permissions      []string  `json:"permissions,omitempty" doc:"Permission catalog: resource:action strings."`
	MaxTokenLifetime *Duration `json:"max_token_lifetime,omitempty" doc:"Longest lifetime a token may have, e.g. 90d."`
}

// AppPatch is an edit of an app; null max_token_lifetime removes the limit.
type AppPatch struct {
	Name             *string   `json:"name,omitempty" doc:"1 to 50 characters."`
	TokenPrefix      *string   `json:"token_prefix,omitempty"`
	Permissions      *[]string `json:"permissions,omitempty"`
	MaxTokenLifetime *Duration `json:"max_token_lifetime,omitempty" nullable:"true"`

	Null []string `json:"-"`
}

// UnmarshalJSON records which fields were sent as null.
func (p *AppPatch) UnmarshalJSON(b []byte) error {
	type plain AppPatch
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = AppPatch(v)
	p.Null = nullKeys(b)
	return nil
}

// MarshalJSON writes the set fields, and null for each field in Null.
func (p AppPatch) MarshalJSON() ([]byte, error) {
	type plain AppPatch
	return marshalWithNulls(plain(p), p.Null)
}

// IsNull reports whether field was sent as null.
func (p AppPatch) IsNull(field string) bool {
	for _, f := range p.Null {
		if f == field {
			return true
		}
	}
	return false
}

var (
	prefixRE     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,15}$`)
	permissionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*:([a-z0-9][a-z0-9_.-]*|\*)$`)
)

// CheckName checks a token or app name.
func CheckName(p *Problems, field, name string) {
	n := utf8.RuneCountInString(name)
	switch {
	case strings.TrimSpace(name) == "":
		p.Add(field, "is required")
	case n > MaxNameLen:
		p.Add(field, "must be at most %d characters (it has %d)", MaxNameLen, n)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, isControl):
		p.Add(field, "must not contain control characters")
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// CheckDescription checks a description.
func CheckDescription(p *Problems, field, d string) {
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLen {
		p.Add(field, "must be at most %d characters (it has %d)", MaxDescriptionLen, n)
	}
	if !utf8.ValidString(d) {
		p.Add(field, "must be valid UTF-8")
	}
}

// CheckPrefix checks a secret prefix.
func CheckPrefix(p *Problems, field, prefix string) {
	if !prefixRE.MatchString(prefix) {
		p.Add(field, "must be 1 to 16 lower-case letters, digits or underscores, starting with a letter")
	}
}

// CheckPermissionCatalog checks an app's permission catalog.
func CheckPermissionCatalog(p *Problems, field string, perms []string) {
	if len(perms) > MaxListLen {
		p.Add(field, "must have at most %d entries", MaxListLen)
		return
	}
	seen := map[string]bool{}
	for i, perm := range perms {
		if len(perm) > MaxPermissionLen || !permissionRE.MatchString(perm) || strings.HasSuffix(perm, ":*") {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%q is not of the form resource:action (lower case)", perm)
		} else if seen[perm] {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%q is listed twice", perm)
		}
		seen[perm] = true
	}
}

// CheckGranted checks a custom token's permissions against its app's catalog.
// "resource:*" is accepted when the catalog holds any action on resource.
func CheckGranted(p *Problems, field string, perms, catalog []string) {
	if len(perms) == 0 {
		p.Add(field, "must list at least one permission for access custom")
		return
	}
	if len(perms) > MaxListLen {
		p.Add(field, "must have at most %d entries", MaxListLen)
		return
	}
	for i, perm := range perms {
		if !inCatalog(perm, catalog) {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%q is not in the application's permission catalog", perm)
		}
	}
}

func inCatalog(perm string, catalog []string) bool {
	res, act, ok := strings.Cut(perm, ":")
	if !ok {
		return false
	}
	for _, c := range catalog {
		if c == perm {
			return true
		}
		if act == "*" && strings.HasPrefix(c, res+":") {
			return true
		}
	}
	return false
}

// CheckIPs checks CIDR ranges and single addresses.
func CheckIPs(p *Problems, field string, ips []string) {
	if len(ips) > MaxListLen {
		p.Add(field, "must have at most %d entries", MaxListLen)
		return
	}
	for i, s := range ips {
		if _, err := ParsePrefix(s); err != nil {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%q is not an IP range such as 203.0.113.0/24 or 2001:db8::/32", s)
		}
	}
}

// zoneError refuses an address with an IPv6 zone.
type zoneError struct{}

func (zoneError) Error() string { return "an IP range has no zone (%...)" }

// ParsePrefix reads a CIDR range or a single address (as a /32 or /128).
// An IPv6 zone ("fe80::1%eth0") is refused: it names an interface of the
// client's machine, means nothing here, and may hold any byte (NUL too).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, zoneError{}
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// CheckOrigins checks browser origins: scheme://host[:port], nothing more.
func CheckOrigins(p *Problems, field string, origins []string) {
	if len(origins) > MaxListLen {
		p.Add(field, "must have at most %d entries", MaxListLen)
		return
	}
	for i, o := range origins {
		if NormalizeOrigin(o) == "" {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%q is not an origin such as https://app.example.com", o)
		}
	}
}

// NormalizeOrigin answers the canonical lower-case form of an origin, or ""
// if s is not one.
func NormalizeOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "chrome-extension" && u.Scheme != "moz-extension") ||
		u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// CheckRateLimit checks a rate limit.
func CheckRateLimit(p *Problems, field string, rl *RateLimit) {
	if rl == nil {
		return
	}
	if rl.Limit < 1 || rl.Limit > 1_000_000_000 {
		p.Add(field+".limit", "must be between 1 and 1000000000")
	}
	if w := time.Duration(rl.Window); w < time.Second || w > 31*24*time.Hour {
		p.Add(field+".window", "must be between 1s and 31d")
	}
}

// CheckMetadata checks metadata size.
func CheckMetadata(p *Problems, field string, m map[string]any) {
	if m == nil {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		p.Add(field, "must be a JSON object")
	} else if len(b) > MaxMetadataBytes {
		p.Add(field, "must be at most %d bytes of JSON (it has %d)", MaxMetadataBytes, len(b))
	}
}

// ResolveExpiry turns expires_in or expires_at into an expiry at now. nil
// means never. Exactly one of in and at may be set.
func ResolveExpiry(p *Problems, in string, at *time.Time, now time.Time) *time.Time {
	if in != "" && at != nil {
		p.Add("expires_in", "give either expires_in or expires_at, not both")
		return nil
	}
	if at != nil {
		if !at.After(now) {
			p.Add("expires_at", "must be in the future")
			return nil
		}
		if at.After(now.AddDate(100, 0, 0)) {
			p.Add("expires_at", "must be within 100 years")
			return nil
		}
		t := at.UTC().Truncate(time.Second)
		return &t
	}
	switch in {
	case "unlimited", "never":
		return nil
	}
	d, err := ParseDuration(in)
	if err != nil || d <= 0 || time.Duration(d) < time.Minute {
		p.Add("expires_in", "must be 7d, 30d, 90d, unlimited, or a duration of at least 1m such as 12h")
		return nil
	}
	t := now.Add(time.Duration(d)).UTC().Truncate(time.Second)
	return &t
}

// CheckLifetime checks an expiry against an app's maximum token lifetime.
func CheckLifetime(p *Problems, field string, exp *time.Time, app App, now time.Time) {
	if app.MaxTokenLifetime == nil {
		return
	}
	max := time.Duration(*app.MaxTokenLifetime)
	if exp == nil {
		p.Add(field, "the application allows tokens to live at most %s; choose an expiry", app.MaxTokenLifetime)
	} else if exp.Sub(now) > max+time.Second {
		p.Add(field, "the application allows tokens to live at most %s", app.MaxTokenLifetime)
	}
}
