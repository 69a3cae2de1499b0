package tokend

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
)

// LeakResult is the answer for one reported secret, in the order given.
// It never holds the secret.
type LeakResult struct {
	TokenID string `json:"token_id,omitempty" doc:"The token the secret is of; absent when unknown."`
	Result  string `json:"result" enum:"revoked,disabled,notified,unknown,already_revoked"`
}
