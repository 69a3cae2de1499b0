package tokend

import (
	"context"
	"strings"
	"time"
)

// Store keeps apps, tokens, audit events and usage. Implementations (sqlite,
// postgres) pass the storetest conformance suite. Every method returns the
// sentinels ErrNotFound and ErrConflict (wrapped or not) where they apply, and
// writes the audit Event it is given in the same transaction as the change.
type Store interface {
	CreateApp(ctx context.Context, a App, ev Event) error
	App(ctx context.Context, id string) (App, error)
	Apps(ctx context.Context, f AppFilter) (Page[App], error)
	// UpdateApp runs fn on the stored app inside one transaction and stores
	// the result with Version+1 and the Event fn returns. fn's error aborts.
	UpdateApp(ctx context.Context, id string, fn func(a *App) (Event, error)) (App, error)
	// DeleteApp deletes the app and all of its tokens. version, when not
	// 0, must be the stored one, checked inside the delete's transaction
	// (ErrStale otherwise), so that a concurrent update cannot slip in
	// between the check and the delete.
	DeleteApp(ctx context.Context, id string, version int64, ev Event) error

	// CreateToken stores a new token; ErrConflict when another live token of
	// the app and owner has the same name or the secret hash exists. A
	// token with an owner (OwnerID not "") whose app has a
	// MaxTokensPerOwner is refused with ErrOwnerLimit (an ErrConflict) when
	// the owner already holds that many live tokens of the app (not
	// revoked, not expired at the token's CreatedAt): the count and the
	// insert are one transaction, so that concurrent creates, on any number
	// of instances, never exceed the limit. Decoys are left out of both
	// rules, on either side: a decoy may share its name with any token,
	// and counts for no limit, so that nothing tells its owner it is there.
	CreateToken(ctx context.Context, t Token, ev Event) error
	Token(ctx context.Context, id string) (Token, error)
	// TokenBySecret finds the token whose current or retired secret has this
	// hash, with its app's permission catalog. It is the verification cache
	// miss, and reads only what verification needs: the token's fields that
	// Token.ForVerification keeps.
	TokenBySecret(ctx context.Context, hash []byte) (Credential, error)
	Tokens(ctx context.Context, f TokenFilter) (Page[Token], error)
	// CountTokens counts the tokens Tokens would list over all of its
	// pages; f's Cursor and Limit do not apply.
	CountTokens(ctx context.Context, f TokenFilter) (int, error)
	// UpdateToken runs fn on the stored token inside one transaction and
	// stores the result with Version+1 and the Event fn returns. When fn
	// changes SecretHash, the old hash is kept as a retired secret that
	// verifies until the new PreviousSecretExpiresAt (not at all when nil).
	UpdateToken(ctx context.Context, id string, fn func(t *Token) (Event, error)) (Token, error)
	// DeleteToken deletes the token. version, when not 0, must be the
	// stored one, checked inside the delete's transaction (ErrStale
	// otherwise).
	DeleteToken(ctx context.Context, id string, version int64, ev Event) error
	// RevokeAppTokens revokes every token of the app that is not revoked yet
	// and answers how many it revoked. ev is recorded once.
	RevokeAppTokens(ctx context.Context, appID string, at time.Time, ev Event) (int, error)
	// RevokeOwnerTokens revokes every token of one owner of the app that is
	// not revoked yet, in one transaction, and answers how many it revoked
	// (0 when the owner has none; ErrNotFound when the app does not exist
	// or ownerID is ""). ev is recorded once, with the count.
	RevokeOwnerTokens(ctx context.Context, appID, ownerID string, at time.Time, ev Event) (int, error)

	// DecoySecrets answers the hash of every secret of every decoy token,
	// current and replaced by rotation, whatever the decoy's status, each
	// with its decoy. The verification engine keeps them in memory (decoys
	// are few) to see a decoy presented by a peer it reads no storage for;
	// the read stays cheap however many other tokens there are.
	DecoySecrets(ctx context.Context) ([]DecoySecret, error)

	// SecretHashes calls fn with the hash of every secret TokenBySecret can
	// find: every token's current secret whatever its status, decoys
	// included, and every secret replaced by rotation still kept. With
	// tokenIDs, only those tokens' (one read however many); with none,
	// every token's, read as a stream, never held in memory at once (the
	// verification engine's filter of known secrets reads a million this
	// way). fn may not keep hash past its call.
	SecretHashes(ctx context.Context, tokenIDs []string, fn func(hash []byte)) error
	// CountSecrets answers how many hashes SecretHashes with no ids would
	// answer now, to size what holds them.
	CountSecrets(ctx context.Context) (int, error)

	// ForgetRetiredSecrets deletes the secrets replaced by rotation whose
	// grace ended before before, and answers how many it deleted; their
	// use then answers NOT_FOUND. Idempotent: any number of instances may
	// run it at once.
	ForgetRetiredSecrets(ctx context.Context, before time.Time) (int, error)

	AppendEvent(ctx context.Context, ev Event) error
	// Events lists events newest first, by id. Ids grow with every append
	// and become visible in that order: once a read has answered an event,
	// no later read finds a new one with a lower id, so a reader can follow
	// the log by reading down to the highest id it has seen.
	Events(ctx context.Context, f EventFilter) (Page[Event], error)

	// TakeUse counts one use of a token that has a MaxUses, in one atomic
	// conditional update that is durable when TakeUse returns: ok is true
	// when the use was counted (UseCount was below MaxUses), false when the
	// token has no uses left, has no MaxUses, or does not exist. Concurrent
	// callers, on any number of instances, never count more than MaxUses.
	TakeUse(ctx context.Context, tokenID string) (ok bool, err error)
	// RecordUsage merges a batch of usage collected in memory: counts are
	// added, last use is kept only when newer than the stored one.
	RecordUsage(ctx context.Context, b UsageBatch) error
	// Usage answers hourly counts for a token in [from, to), oldest first.
	Usage(ctx context.Context, tokenID string, from, to time.Time) ([]UsageCount, error)
	// RecordActivity appends verifications to their tokens' recent
	// activity and, in the same transaction, prunes each token's to the
	// MaxActivity newest. Rows of tokens that no longer exist are dropped.
	RecordActivity(ctx context.Context, rows []Activity) error
	// Activity answers a token's recent verifications, newest first, at
	// most MaxActivity.
	Activity(ctx context.Context, tokenID string) ([]Activity, error)
	// RecordNetworks merges a batch of the networks tokens were validly
	// used from, in one transaction, deciding there what is new: a
	// network is new for a token when it has no row for it, or one last
	// seen more than NewNetworkWindow before the use. A new one gets its
	// row (first and last seen of the use) and, unless the token had no
	// network on record at all (its first use, or its first since
	// networks were tracked), the audit Event raise answers for it (with
	// its token.new_network notice), written in the same transaction; a
	// known one moves its last seen forward. Each token keeps its
	// MaxTokenNetworks most recently seen networks. Uses of tokens that no
	// longer exist are dropped. Of concurrent calls, on any number of
	// instances, with the same new network, exactly one raises.
	RecordNetworks(ctx context.Context, uses []NetworkUse, raise func(NewNetwork) Event) error
	// TokenNetworks answers the networks a token was used from, most
	// recently seen first, at most MaxTokenNetworks.
	TokenNetworks(ctx context.Context, tokenID string) ([]TokenNetwork, error)

	// Setting answers the value stored under key; ErrNotFound when there
	// is none. Settings are small facts about the database itself (such as
	// the fingerprint of the pepper its secrets are hashed with).
	Setting(ctx context.Context, key string) (string, error)
	// InitSetting stores value under key unless the key holds a value
	// already, and answers the value the key holds afterwards: value, or
	// the one stored before, which it never replaces. Of concurrent calls,
	// from any number of processes, exactly one value is stored and every
	// call answers that one.
	InitSetting(ctx context.Context, key, value string) (string, error)

	// Ping reports whether the storage answers and would accept a write,
	// without writing anything: a database that can be read but not
	// written (a read-only file, a standby) does not pass.
	Ping(ctx context.Context) error
}

// Credential is a token found by secret hash.
type Credential struct {
	// Token holds the fields Token.ForVerification keeps; the others are
	// zero.
	Token Token
	// Retired is true when the hash is of a secret replaced by rotation.
	Retired bool
	// GraceUntil is when a retired secret stops verifying (zero: at once).
	GraceUntil time.Time
	// RotatedSecretPolicy is the app's (App.RotatedSecretPolicy), read
	// with a retired secret only: what its use after GraceUntil does.
	RotatedSecretPolicy RotatedSecretPolicy
	// Catalog is the permission catalog of the token's app as stored with
	// the token: the ceiling of what verification grants (see Allows).
	Catalog []string
	// OwnerRateLimit is the app's limit shared by all tokens of one owner
	// (App.OwnerRateLimit), read with the token; nil for none.
	OwnerRateLimit *RateLimit
}

// OwnerRateKey names the rate limit shared by the tokens of one owner of an
// app where a limiter keys limits by token id (SharedLimiter): no token id
// holds "|", so the two never meet.
func OwnerRateKey(appID, ownerID string) string {
	return "owner|" + appID + "|" + ownerID
}

// Page is one page of a keyset-paginated list. NextCursor is empty on the
// last page.
type Page[T any] struct {
	Items      []T    `json:"items" nullable:"false"`
	NextCursor string `json:"next_cursor" doc:"Pass as cursor to get the next page; empty on the last page."`
}

// Pagination limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// TokenFilter selects tokens, newest first unless Sort says otherwise.
type TokenFilter struct {
	AppID string
	// OwnerID, when set, keeps only the tokens of this owner.
	OwnerID string
	Status  Status // "" for any; StatusExpired and StatusActive consider Now
	Type    TokenType
	// Query is a case-insensitive substring of the name. It also finds a
	// token by id when it is one (tok_…, exact), and, when it is 4 base62
	// characters, the tokens whose masked secret ends with them (exact
	// case): see SearchTerms.
	Query string
	// ExpiresBefore, when set, keeps only tokens whose expiry is before it
	// (a token that never expires is never kept).
	ExpiresBefore time.Time
	// UnusedFor, when set, keeps only tokens not used since Now-UnusedFor
	// (inclusive); a token never used counts from its creation.
	UnusedFor Duration
	// Sort and Order choose the order of the list (TokenSort*, "asc" or
	// "desc"; "" for the sort's default order). Tokens without the sort
	// key (never used, never expiring) come last in either order; ties are
	// broken by id in the same order. A cursor is valid only for the sort
	// and order that gave it out.
	Sort  string
	Order string
	Now   time.Time
	// ProductOnly, when set, leaves out the admin tokens of the system app
	// (SystemAppID), keeping those of the product's own apps.
	ProductOnly bool
	// Decoy selects decoy tokens (Token.Decoy) when true and the others
	// when false: decoys are always listed apart.
	Decoy bool
	// Scope, when set, keeps only the tokens the scope admits (see
	// AdminScope.Admits): the service sets it for an owner-scoped actor.
	Scope  *AdminScope
	Limit  int
	Cursor string
}

// Token list sorts and orders.
const (
	TokenSortCreated  = "created_at" // default; newest first by default
	TokenSortName     = "name"       // A to Z by default, by byte
	TokenSortExpires  = "expires_at" // soonest first by default
	TokenSortLastUsed = "last_used_at"

	OrderAsc  = "asc"
	OrderDesc = "desc"
)

// TokenOrder resolves a filter's sort and order to what the stores run:
// "" takes the default sort (created_at) and the sort's default order
// (descending for the times of the past, ascending for name and expiry).
// ok is false when either is unknown.
func TokenOrder(sort, order string) (s string, desc bool, ok bool) {
	if sort == "" {
		sort = TokenSortCreated
	}
	switch sort {
	case TokenSortCreated, TokenSortLastUsed:
		desc = true
	case TokenSortName, TokenSortExpires:
	default:
		return "", false, false
	}
	switch order {
	case "":
	case OrderAsc:
		desc = false
	case OrderDesc:
		desc = true
	default:
		return "", false, false
	}
	return sort, desc, true
}

// SearchTerms reads a list query: id is set when q is a token id, last4
// when q is 4 base62 characters (the visible end of a masked secret).
func SearchTerms(q string) (id, last4 string) {
	if strings.HasPrefix(q, "tok_") && ValidID(q) {
		id = q
	}
	if len(q) == 4 {
		last4 = q
		for i := 0; i < 4; i++ {
			c := q[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				last4 = ""
			}
		}
	}
	return id, last4
}

// AppFilter selects apps, oldest first.
type AppFilter struct {
	// Scope, when set, keeps only the applications the scope admits
	// (AdminScope.AdmitsApp): never the system app.
	Scope  *AdminScope
	Limit  int
	Cursor string
}

// EventFilter selects audit events, newest first.
type EventFilter struct {
	TokenID string
	AppID   string
	Action  string
	Since   time.Time // inclusive; zero for no bound
	Until   time.Time // exclusive; zero for no bound
	// Scope, when set, keeps only the events of tokens the scope admits,
	// as they are now (a deleted token's events are left out with it).
	Scope  *AdminScope
	Limit  int
	Cursor string
}

// UsageBatch is what the verification engine collected since its last
// flush.
type UsageBatch struct {
	Counts []UsageCount
	Last   []LastUse
}

// UsageCount is the number of verifications of a token with one outcome in
// the hour starting at Hour (UTC, truncated).
type UsageCount struct {
	TokenID string    `json:"-"`
	Hour    time.Time `json:"hour"`
	Code    Code      `json:"code" enum:"VALID,MALFORMED,NOT_FOUND,EXPIRED,DISABLED,REVOKED,IP_NOT_ALLOWED,ORIGIN_NOT_ALLOWED,INSUFFICIENT_PERMISSIONS,RATE_LIMITED,USAGE_EXCEEDED,ROTATED"`
	Count   int64     `json:"count"`
}

// LastUse is a token's latest successful verification and how many successful
// verifications to add to its use count. Uses of a token with MaxUses are
// counted by TakeUse as they happen, never here.
type LastUse struct {
	TokenID string
	At      time.Time
	IP      string
	Uses    int64
}

// MaxActivity is how many recent verifications are kept per token.
const MaxActivity = 50

// MaxActivityPath bounds the forward-auth path kept with a verification, in
// bytes.
const MaxActivityPath = 256

// Activity is one recent verification of a token. Nothing in it is secret:
// no token, and the path without its query string. Every text field passes
// CheckText's LineText rule (the verification engine drops a field that
// does not).
type Activity struct {
	TokenID string    `json:"-"`
	At      time.Time `json:"at"`
	IP      string    `json:"ip,omitempty" doc:"The client address: the ip given to /v1/verify, or the client a trusted proxy names at /v1/auth."`
	Code    Code      `json:"code" enum:"VALID,MALFORMED,NOT_FOUND,EXPIRED,DISABLED,REVOKED,IP_NOT_ALLOWED,ORIGIN_NOT_ALLOWED,INSUFFICIENT_PERMISSIONS,RATE_LIMITED,USAGE_EXCEEDED,ROTATED"`
	Method  string    `json:"method,omitempty" doc:"Forward auth: the original request's method."`
	Path    string    `json:"path,omitempty" doc:"Forward auth: the original request's path, without its query string."`
}

// DecoySecret is one secret of a decoy token, its current one or one
// replaced by rotation: only its HMAC, as stored.
type DecoySecret struct {
	Hash  []byte
	Token Token
}

// Invalidator is told about changes so that caches of verification answers
// stop serving stale ones. The verification engine implements it; a store
// that spans instances relays it to the others.
type Invalidator interface {
	TokenChanged(id string)
	AppChanged(id string)
}

// SecretKeeper is an Invalidator that keeps a filter of the secrets storage
// holds, to answer an unknown one without reading storage (the verification
// engine). Whoever creates or rotates a token in its process tells it the
// new secret's hash once the write committed and before the secret is handed
// out, so that no caller can present a secret the filter has not seen; other
// instances learn of it through TokenChanged, which a store that spans
// instances relays for every create.
type SecretKeeper interface {
	SecretAdded(hash []byte)
}

// Resyncer is an Invalidator whose changes arrive over a connection that can
// break (PostgreSQL LISTEN, in package postgres). While the connection is
// down, changes made by other instances may go untold, so the listener says
// so, and says again when nothing can be missed any more.
type Resyncer interface {
	Invalidator
	// OutOfSync says that changes made since t (when the connection was last
	// known to work) may not have been told. Until Resync, cached answers
	// may be trusted only for a bounded time. Repeated calls keep the
	// earliest t.
	OutOfSync(since time.Time)
	// Resync says that every change from now on will be told: whatever was
	// cached before must be forgotten, as changes may have been missed.
	Resync()
	// CaughtUp says that every change made since OutOfSync has been told
	// after all (a polled change log read on from where it stopped): cached
	// answers are trusted again, and kept.
	CaughtUp()
}

// ForVerification answers t with only the fields verification reads (the
// cache entry, the VerifiedToken answered, a decoy's event, max_uses and
// the use count) and the others zero: what TokenBySecret fills.
func (t Token) ForVerification() Token {
	return Token{
		ID: t.ID, AppID: t.AppID, OwnerID: t.OwnerID, Name: t.Name,
		Type: t.Type, Access: t.Access, Permissions: t.Permissions,
		ExpiresAt: t.ExpiresAt, AllowedIPs: t.AllowedIPs,
		AllowedOrigins: t.AllowedOrigins, RateLimit: t.RateLimit,
		MaxUses: t.MaxUses, UseCount: t.UseCount, Metadata: t.Metadata,
		Status: t.Status, Masked: t.Masked, Version: t.Version,
		Scope: t.Scope, Decoy: t.Decoy,
	}
}
