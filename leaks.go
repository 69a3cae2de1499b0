package tokend

import (
	"net/netip"
	"time"
)

// Leak reports (POST /v1/leaks): secrets found where they should not be,
// each handled by its app's LeakPolicy.

// LeakPolicy is what a reported leak of a token's secret does.
type LeakPolicy string

const (
	LeakRevoke  LeakPolicy = "revoke"  // revoke the token (the default)
	LeakDisable LeakPolicy = "disable" // disable it (it may be enabled again)
	LeakNotify  LeakPolicy = "notify"  // change nothing; raise token.leaked only
)

// LeakPolicies lists the policies in the order the documentation gives them.
var LeakPolicies = []LeakPolicy{LeakRevoke, LeakDisable, LeakNotify}

// Valid reports whether p is a known policy.
func (p LeakPolicy) Valid() bool {
	return p == LeakRevoke || p == LeakDisable || p == LeakNotify
}

// LeakRepeatWindow is how long a leak of a token reported from one place
// (source and url) is remembered: the same report again within it - a
// scanner's retry, a replayed GitHub report, a second run over the same
// repository - changes nothing and raises nothing.
const LeakRepeatWindow = 7 * 24 * time.Hour

// Leak report limits.
const (
	MaxLeakSecrets      = 100 // secrets per report
	MaxLeakSecretLength = 512 // bytes per secret
	MaxLeakSourceLength = 200 // bytes of source
	MaxLeakURLLength    = 2048
)

// LeakReport is a report of leaked secrets.
type LeakReport struct {
	Tokens []string `json:"tokens" minItems:"1" maxItems:"100" doc:"The leaked secrets, 1 to 100, each at most 512 bytes."`
	Source string   `json:"source,omitempty" maxLength:"200" doc:"Where they were found, e.g. gitleaks or github."`
	URL    string   `json:"url,omitempty" maxLength:"2048" doc:"Where exactly, e.g. the commit's URL."`
}

// Leak results, one per reported secret.
const (
	LeakResultRevoked        = "revoked"
	LeakResultDisabled       = "disabled"
	LeakResultNotified       = "notified"
	LeakResultUnknown        = "unknown"
	LeakResultAlreadyRevoked = "already_revoked"
	// LeakResultAlreadyReported answers a leak of the token reported from
	// the same place (source, url) within LeakRepeatWindow: nothing is
	// done or raised again.
	LeakResultAlreadyReported = "already_reported"
)

// LeakResult is the answer for one reported secret, in the order given.
// It never holds the secret.
type LeakResult struct {
	TokenID string `json:"token_id,omitempty" doc:"The token the secret is of; absent when unknown."`
	Result  string `json:"result" enum:"revoked,disabled,notified,unknown,already_revoked,already_reported"`
}

// RotatedSecretPolicy is what the use of a rotated-out secret after its
// grace period does besides answering ROTATED and raising
// token.rotated_secret_used.
type RotatedSecretPolicy string

const (
	RotatedNotify  RotatedSecretPolicy = "notify"  // raise the event only (the default)
	RotatedDisable RotatedSecretPolicy = "disable" // also disable the token
)

// Valid reports whether p is a known policy.
func (p RotatedSecretPolicy) Valid() bool { return p == RotatedNotify || p == RotatedDisable }

// DefaultRotatedSecretRetention is how long a secret replaced by rotation is
// remembered after its grace ends, so that its use answers ROTATED (and
// raises token.rotated_secret_used) rather than NOT_FOUND.
const DefaultRotatedSecretRetention = 90 * 24 * time.Hour

// MaxTokenNetworks is how many networks a token keeps (the most recently
// seen); NewNetworkWindow how long a network stays known: a valid use from
// a network not seen within it raises token.new_network.
const (
	MaxTokenNetworks = 10
	NewNetworkWindow = 30 * 24 * time.Hour
)

// TokenNetwork is a network a token was used from: an IPv4 /24 or IPv6 /48
// in CIDR form, with when it was first and last seen.
type TokenNetwork struct {
	Network   string    `json:"network" example:"203.0.113.0/24"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// nat64 is the well-known prefix of NAT64 (RFC 6052): an IPv6-only client
// reaching an IPv4 host through it shows as the IPv4 address in the last 32
// bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// NetworkOf answers the network an address is counted in: its IPv4 /24 or
// IPv6 /48 (an IPv4-mapped IPv6 address, or one of NAT64's well-known
// prefix, counts as the IPv4 address it holds, since their /48 would lump
// every IPv4 client together); false when ip is not an address.
func NetworkOf(ip string) (netip.Prefix, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

// GitHub's secret scanning partner program (POST /v1/leaks/github): GitHub
// finds secrets matching tokend's pattern in public repositories and posts
// them, signed with one of its published keys; each is handled like a
// secret of POST /v1/leaks.

// GitHub report limits: beyond them a body is no report.
const (
	MaxGitHubReportBytes = 1 << 20 // body
	MaxGitHubMatches     = 1000    // matches per report
)

// GitHubMatch is one secret GitHub found: the secret, the token type name
// tokend registered with GitHub, where it was found (url) and in what
// (source: content, commit, pull_request_comment, gist…). The url holds
// text a repository's author chose (a file's path): one odd match must not
// keep the others of its report from being acted on, so no field refuses a
// report; what each field may be is said in its doc.
type GitHubMatch struct {
	Token  string `json:"token" doc:"The secret found. One that is not a string, empty or over 512 bytes is labelled false_positive without being looked up."`
	Type   string `json:"type" doc:"The token type name registered with GitHub, repeated in the answer."`
	URL    string `json:"url,omitempty" doc:"Where it was found. Kept as one line of text: invalid UTF-8, control, bidirectional and invisible characters become U+FFFD, and it is cut to 2048 bytes on a character boundary; a value that is not a string is left out."`
	Source string `json:"source,omitempty" doc:"What it was found in (content, commit, gist, …). Kept as the url is, cut to 200 bytes."`
}

// GitHub's labels of a match in its feedback.
const (
	GitHubTruePositive  = "true_positive"  // the secret is a token's (any status)
	GitHubFalsePositive = "false_positive" // no token's
)

// GitHubLabel is tokend's feedback on one match, in GitHub's format. It
// holds the secret GitHub sent (token_raw), as that format asks: GitHub
// already has it, and the answer goes back only to the signed request.
type GitHubLabel struct {
	TokenRaw  string `json:"token_raw" doc:"The secret, as GitHub sent it."`
	TokenType string `json:"token_type" doc:"The match's type, as GitHub sent it."`
	Label     string `json:"label" enum:"true_positive,false_positive"`
}
