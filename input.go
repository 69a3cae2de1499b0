package tokend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a request may hold.
const (
	MaxNameLen        = 50
	MaxDescriptionLen = 500
	MaxListLen        = 100 // IP ranges, origins, permissions
	MaxMetadataBytes  = 4096
	MaxPermissionLen  = 100
	MaxOwnerIDLen     = 128 // bytes, all visible ASCII
	MaxOwnerNameLen   = 200 // characters
)

// TokenInput is what creating a token takes.
type TokenInput struct {
	AppID          string         `json:"app_id"`
	OwnerID        string         `json:"owner_id,omitempty" maxLength:"128" doc:"Product apps only: the customer or account the token belongs to, 1 to 128 visible ASCII characters. Fixed once created."`
	OwnerName      string         `json:"owner_name,omitempty" maxLength:"200" doc:"How the owner is shown, up to 200 characters; only with owner_id."`
	Name           string         `json:"name" doc:"1 to 50 characters, unique among the app's live tokens."`
	Description    string         `json:"description,omitempty" doc:"Up to 500 characters."`
	Type           TokenType      `json:"type,omitempty" enum:"standard,plugin" doc:"standard (default) or plugin."`
	Access         Access         `json:"access,omitempty" enum:"read_only,full_access,custom" doc:"read_only (default), full_access or custom; custom when only permissions are given."`
	Permissions    []string       `json:"permissions,omitempty" doc:"With access custom: permissions from the app's catalog."`
	ExpiresIn      string         `json:"expires_in,omitempty" doc:"7d, 30d, 90d, unlimited, or any duration such as 12h. Default 30d unless expires_at is given."`
	ExpiresAt      *time.Time     `json:"expires_at,omitempty" doc:"An explicit expiry instead of expires_in."`
	AllowedIPs     []string       `json:"allowed_ips,omitempty" doc:"CIDR ranges or single addresses, IPv4 or IPv6."`
	AllowedOrigins []string       `json:"allowed_origins,omitempty" doc:"Plugin tokens: browser origins such as https://app.example.com."`
	RateLimit      *RateLimit     `json:"rate_limit,omitempty"`
	MaxUses        *int64         `json:"max_uses,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	// Scope makes an admin token (app_id: the system app) owner-scoped. It
	// is set here or never: no edit changes it.
	Scope *AdminScope `json:"scope,omitempty" doc:"Admin tokens only: restrict the token to one owner's tokens (and, with app_ids, to those applications). Set at creation; it can never be changed."`
	// Decoy makes a honey token: see Token.Decoy. Set here or never.
	Decoy bool `json:"decoy,omitempty" doc:"Make a decoy: a token that looks exactly like a real one of its app, never verifies (verification answers exactly as for an unknown token), and raises token.decoy_used whenever it is presented. Set at creation; it can never be changed."`
}

// TokenPatch is an edit of a token: absent fields stay as they are; fields
// sent as null are cleared (Null lists them).
type TokenPatch struct {
	// OwnerID cannot change: a patch may only repeat the token's own.
	OwnerID        *string         `json:"owner_id,omitempty" maxLength:"128" doc:"Cannot be changed after creation; only the token's own owner_id is accepted."`
	OwnerName      *string         `json:"owner_name,omitempty" maxLength:"200" nullable:"true" doc:"A new owner name, up to 200 characters; null or empty clears it."`
	Name           *string         `json:"name,omitempty" doc:"1 to 50 characters."`
	Description    *string         `json:"description,omitempty"`
	Type           *TokenType      `json:"type,omitempty" enum:"standard,plugin" doc:"standard or plugin."`
	Access         *Access         `json:"access,omitempty" enum:"read_only,full_access,custom" doc:"read_only, full_access or custom."`
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
	return p.OwnerID == nil && p.OwnerName == nil && p.Name == nil && p.Description == nil && p.Type == nil && p.Access == nil &&
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
	Name                string              `json:"name" doc:"1 to 50 characters."`
	TokenPrefix         string              `json:"token_prefix,omitempty" doc:"Lower-case letters, digits and underscores, starting with a letter. Default tkd."`
	Permissions         []string            `json:"permissions,omitempty" doc:"Permission catalog: resource:action strings."`
	MaxTokenLifetime    *Duration           `json:"max_token_lifetime,omitempty" doc:"Longest lifetime a token may have, e.g. 90d."`
	DisableUnusedAfter  *Duration           `json:"disable_unused_after,omitempty" doc:"Disable active tokens unused for this long, e.g. 90d; 1d to 36500d."`
	ExpiryNotice        *Duration           `json:"expiry_notice,omitempty" doc:"Also raise token.expiring this long before a token expires (besides 7d and 1d), e.g. 14d; 1h to 365d."`
	MaxTokensPerOwner   *int                `json:"max_tokens_per_owner,omitempty" minimum:"1" maximum:"1000000" doc:"Most live tokens one owner may hold, 1 to 1000000; absent for no limit."`
	OwnerRateLimit      *RateLimit          `json:"owner_rate_limit,omitempty" doc:"A rate limit shared by all tokens of one owner."`
	Portal              *AppPortal          `json:"portal,omitempty" doc:"The customer portal's branding and embedding."`
	LeakPolicy          LeakPolicy          `json:"leak_policy,omitempty" enum:"revoke,disable,notify" doc:"What a reported leak does: revoke (default), disable, or notify only."`
	RotatedSecretPolicy RotatedSecretPolicy `json:"rotated_secret_policy,omitempty" enum:"notify,disable" doc:"What presenting a rotated-out secret after its grace does besides answering ROTATED and raising token.rotated_secret_used: notify only (default) or also disable the token."`
}

// AppPatch is an edit of an app; null max_token_lifetime removes the limit,
// null disable_unused_after the stale-token policy.
type AppPatch struct {
	Name                *string              `json:"name,omitempty" doc:"1 to 50 characters."`
	TokenPrefix         *string              `json:"token_prefix,omitempty"`
	Permissions         *[]string            `json:"permissions,omitempty"`
	MaxTokenLifetime    *Duration            `json:"max_token_lifetime,omitempty" nullable:"true"`
	DisableUnusedAfter  *Duration            `json:"disable_unused_after,omitempty" nullable:"true" doc:"null removes the policy."`
	ExpiryNotice        *Duration            `json:"expiry_notice,omitempty" nullable:"true" doc:"1h to 365d; null removes the app's own notice period."`
	MaxTokensPerOwner   *int                 `json:"max_tokens_per_owner,omitempty" nullable:"true" minimum:"1" maximum:"1000000" doc:"1 to 1000000; null removes the limit."`
	OwnerRateLimit      *RateLimit           `json:"owner_rate_limit,omitempty" doc:"null removes the owner rate limit."`
	Portal              *AppPortal           `json:"portal,omitempty" doc:"Replaces the customer portal's settings as a whole; null restores the defaults."`
	LeakPolicy          *LeakPolicy          `json:"leak_policy,omitempty" enum:"revoke,disable,notify" doc:"What a reported leak does: revoke, disable, or notify only."`
	RotatedSecretPolicy *RotatedSecretPolicy `json:"rotated_secret_policy,omitempty" enum:"notify,disable" doc:"What presenting a rotated-out secret after its grace does: notify only, or also disable the token."`

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

// CheckName checks a token, app or user name: one line of printable text
// (CheckText's LineText rule) that cannot read as another name on a screen:
// no space around it, and no word (a run of letters) mixing Latin, Greek
// and Cyrillic letters, the look-alikes of one another ("Shоp" with a
// Cyrillic о).
func CheckName(p *Problems, field, name string) {
	n := utf8.RuneCountInString(name)
	switch {
	case strings.TrimSpace(name) == "":
		p.Add(field, "is required")
	case n > MaxNameLen:
		p.Add(field, "must be at most %d characters (it has %d)", MaxNameLen, n)
	case strings.TrimFunc(name, unicode.IsSpace) != name:
		p.Add(field, "must not begin or end with a space")
	default:
		if msg := TextProblem(name, LineText); msg != "" {
			p.Add(field, "%s", msg)
		} else if a, b := mixedScripts(name); a != "" {
			p.Add(field, "mixes %s and %s letters in one word: it could pass for another name; write each word in one script", a, b)
		}
	}
}

// lookalikeScripts are the scripts whose letters pass for one another.
var lookalikeScripts = []struct {
	name  string
	table *unicode.RangeTable
}{{"Latin", unicode.Latin}, {"Greek", unicode.Greek}, {"Cyrillic", unicode.Cyrillic}}

// mixedScripts answers the first two lookalikeScripts found in one word of
// s (a run of letters and combining marks), or "" when there are none.
func mixedScripts(s string) (string, string) {
	seen := -1
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsMark(r) {
			seen = -1
			continue
		}
		for i, sc := range lookalikeScripts {
			if !unicode.Is(sc.table, r) {
				continue
			}
			if seen >= 0 && seen != i {
				return lookalikeScripts[min(seen, i)].name, lookalikeScripts[max(seen, i)].name
			}
			seen = i
		}
	}
	return "", ""
}

// ValidOwnerID reports whether s is an owner id: 1 to MaxOwnerIDLen
// visible ASCII characters (0x21-0x7E). It goes into HTTP headers
// (X-Token-Owner), URL paths and logs as is, so nothing else is taken: no
// space, no control, nothing beyond ASCII.
func ValidOwnerID(s string) bool {
	if len(s) == 0 || len(s) > MaxOwnerIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// CheckOwnerID checks a token's owner id; "" (no owner) passes.
func CheckOwnerID(p *Problems, field, id string) {
	if id != "" && !ValidOwnerID(id) {
		p.Add(field, "must be 1 to %d visible ASCII characters (letters, digits, punctuation; no spaces)", MaxOwnerIDLen)
	}
}

// CheckOwnerName checks how an owner is shown: one line of printable text
// (CheckText's LineText rule) of at most MaxOwnerNameLen characters; ""
// passes.
func CheckOwnerName(p *Problems, field, name string) {
	if n := utf8.RuneCountInString(name); n > MaxOwnerNameLen {
		p.Add(field, "must be at most %d characters (it has %d)", MaxOwnerNameLen, n)
		return
	}
	CheckText(p, field, name, LineText)
}

// MaxTokensPerOwnerCap bounds an app's max_tokens_per_owner.
const MaxTokensPerOwnerCap = 1_000_000

// CheckMaxTokensPerOwner checks an app's cap on an owner's live tokens.
func CheckMaxTokensPerOwner(p *Problems, field string, n *int) {
	if n != nil && (*n < 1 || *n > MaxTokensPerOwnerCap) {
		p.Add(field, "must be between 1 and %d", MaxTokensPerOwnerCap)
	}
}

// CheckDescription checks a description (CheckText's ProseText rule).
func CheckDescription(p *Problems, field, d string) {
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLen {
		p.Add(field, "must be at most %d characters (it has %d)", MaxDescriptionLen, n)
	}
	CheckText(p, field, d, ProseText)
}

// TextKind is the rule a piece of text is held to.
type TextKind int

const (
	// LineText is one line shown as is and compared by eye: names,
	// permissions, origins, email addresses, metadata keys, list filters.
	// It refuses every control character (C0, DEL, C1), the bidirectional
	// controls that can make a name read as another (U+202A–U+202E,
	// U+2066–U+2069, U+200E, U+200F, U+061C), the byte order mark
	// (U+FEFF) and the invisible zero-width characters (U+200B–U+200D,
	// U+2060).
	LineText TextKind = iota
	// ProseText is free text (descriptions, metadata string values): it
	// may hold newlines (LF or CR LF) and tabs, but no other control
	// character and no bidirectional control.
	ProseText
)

// CheckText checks that s is valid UTF-8 holding only what text of this kind
// may hold; it is the one place that decides which characters tokend takes.
// Stores rely on it: PostgreSQL refuses NUL in text and \u0000 in jsonb.
func CheckText(p *Problems, field, s string, kind TextKind) {
	if msg := TextProblem(s, kind); msg != "" {
		p.Add(field, "%s", msg)
	}
}

// TextProblem answers why s is not text of this kind, or "" when it is.
func TextProblem(s string, kind TextKind) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return "must be valid UTF-8"
			}
		}
		if kind == ProseText {
			if r == '\n' || r == '\t' || (r == '\r' && i+1 < len(s) && s[i+1] == '\n') {
				continue
			}
			if isBidiControl(r) {
				return fmt.Sprintf("must not contain %U (a bidirectional control character)", r)
			}
		} else {
			switch {
			case isBidiControl(r):
				return fmt.Sprintf("must not contain %U (a bidirectional control character)", r)
			case isInvisible(r):
				return fmt.Sprintf("must not contain %U (an invisible character)", r)
			}
		}
		if isControl(r) {
			return fmt.Sprintf("must not contain control characters (%U)", r)
		}
	}
	return ""
}

// LineOf makes s one line of text (LineText) of at most max bytes, for
// text tokend keeps but did not choose and must not refuse (where GitHub
// found a leaked secret): invalid UTF-8 and every character the rule
// refuses become U+FFFD, and the result is cut on a character boundary.
func LineOf(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if TextProblem(string(r), LineText) != "" {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// isControl reports C0 and C1 control characters and DEL.
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

// isBidiControl reports the characters that change the direction of the
// text around them (the "Trojan Source" characters) and the marks that
// steer it.
func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// isInvisible reports zero-width characters and the byte order mark, which
// make two names that look the same differ.
func isInvisible(r rune) bool {
	return (r >= 0x200b && r <= 0x200d) || r == 0x2060 || r == 0xfeff
}

// SystemPrefix is the secret prefix of admin tokens (the system app's).
const SystemPrefix = "tkd_admin"

// CheckPrefix checks a secret prefix. The system app's prefix, and every
// prefix that begins with it, are reserved: a secret of another app must
// never look like an admin token (tkd_admin_…, tkd_adminx_…) to a person or
// a secret scanner.
func CheckPrefix(p *Problems, field, prefix string) {
	switch {
	case !prefixRE.MatchString(prefix):
		p.Add(field, "must be 1 to 16 lower-case letters, digits or underscores, starting with a letter")
	case strings.HasPrefix(prefix, SystemPrefix):
		p.Add(field, "%q is reserved: secrets starting with %s are admin tokens", prefix, SystemPrefix)
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
			p.Add(field+"["+strconv.Itoa(i)+"]", "%s is not of the form resource:action (lower case)", quote(perm))
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
		if msg := TextProblem(perm, LineText); msg != "" {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%s", msg)
		} else if !inCatalog(perm, catalog) {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%s is not in the application's permission catalog", quote(perm))
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
			p.Add(field+"["+strconv.Itoa(i)+"]", "%s is not an IP range such as 203.0.113.0/24 or 2001:db8::/32", quote(s))
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

// UnmapPrefix turns a v4-mapped v6 range (::ffff:10.0.0.0/104) into its v4
// form (10.0.0.0/8), since request addresses are unmapped before they are
// compared; any other range is answered as it is.
func UnmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// CheckOrigins checks browser origins: scheme://host[:port], nothing more.
func CheckOrigins(p *Problems, field string, origins []string) {
	if len(origins) > MaxListLen {
		p.Add(field, "must have at most %d entries", MaxListLen)
		return
	}
	for i, o := range origins {
		if msg := TextProblem(o, LineText); msg != "" {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%s", msg)
		} else if NormalizeOrigin(o) == "" {
			p.Add(field+"["+strconv.Itoa(i)+"]", "%s is not an origin such as https://app.example.com", quote(o))
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

// CheckMetadata checks metadata: its size, keys that are LineText and
// string values that are ProseText, at any depth.
func CheckMetadata(p *Problems, field string, m map[string]any) {
	if m == nil {
		return
	}
	if checkJSONText(p, field, m) {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		p.Add(field, "must be a JSON object")
	} else if len(b) > MaxMetadataBytes {
		p.Add(field, "must be at most %d bytes of JSON (it has %d)", MaxMetadataBytes, len(b))
	}
}

// quote shows a caller's value in a message: quoted, with anything that is
// not printable escaped, and cut short when long.
func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strconv.QuoteToASCII(s)
}

// checkJSONText checks the keys and strings of a decoded JSON value and
// reports whether it found a problem.
func checkJSONText(p *Problems, field string, v any) bool {
	bad := false
	switch v := v.(type) {
	case string:
		if msg := TextProblem(v, ProseText); msg != "" {
			p.Add(field, "%s", msg)
			bad = true
		}
	case map[string]any:
		for k, e := range v {
			if msg := TextProblem(k, LineText); msg != "" {
				p.Add(field, "keys %s", msg)
				bad = true
				continue
			}
			bad = checkJSONText(p, field+"."+k, e) || bad
		}
	case []any:
		for i, e := range v {
			bad = checkJSONText(p, field+"["+strconv.Itoa(i)+"]", e) || bad
		}
	}
	return bad
}

// MaxLifetime is the one cap on how far away an expiry may be, however it is
// given (expires_in of any form, expires_at, an app's max_token_lifetime).
const MaxLifetime = Duration(36500 * 24 * time.Hour)

// lifetimeTooLong is the one message for an expiry past MaxLifetime.
const lifetimeTooLong = "must be at most 36500d (100 years)"

// CheckMaxLifetime checks an app's maximum token lifetime.
func CheckMaxLifetime(p *Problems, field string, d *Duration) {
	switch {
	case d == nil:
	case time.Duration(*d) < time.Minute:
		p.Add(field, "must be at least 1m")
	case *d > MaxLifetime:
		p.Add(field, lifetimeTooLong)
	}
}

// CheckDisableUnused checks an app's stale-token policy: at least a day
// (tokens are used in batches, and last use is recorded in batches too), at
// most the one expiry cap.
func CheckDisableUnused(p *Problems, field string, d *Duration) {
	switch {
	case d == nil:
	case time.Duration(*d) < 24*time.Hour:
		p.Add(field, "must be at least 1d")
	case *d > MaxLifetime:
		p.Add(field, lifetimeTooLong)
	}
}

// MaxExpiryNotice bounds an app's own expiry notice period.
const MaxExpiryNotice = Duration(365 * 24 * time.Hour)

// CheckExpiryNotice checks an app's own expiry notice period: 1h to 365d.
func CheckExpiryNotice(p *Problems, field string, d *Duration) {
	if d != nil && (time.Duration(*d) < time.Hour || *d > MaxExpiryNotice) {
		p.Add(field, "must be from 1h to 365d, such as 14d")
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
		if at.Sub(now) > time.Duration(MaxLifetime) {
			p.Add("expires_at", lifetimeTooLong)
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
	if d > MaxLifetime {
		p.Add("expires_in", lifetimeTooLong)
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
