// Package verify is tokend's verification engine: it answers "is this secret
// good for this request?" for the HTTP verify endpoint, forward auth and the
// in-process middleware, fast enough to sit in front of every API call.
//
// A verification runs checksum → HMAC → cache → filter → checks → rate
// limit → answer. The checksum rejects mistyped and made-up secrets before
// any hashing or storage; the filter of every known secret (filter.go)
// answers a well-formed secret that no token has without storage; the cache, keyed by the HMAC digest, spares storage for tokens in
// use; expiry, IP ranges, origins, permissions and rate limits are checked on
// every request, from the cached entry, and a use of a token with max_uses is
// taken from storage, the authority shared by every instance.
//
// What it must not do: write to storage on the hot path (usage, last use and
// audit events are collected in memory and written in batches by Run and
// Flush; the one exception is a token with max_uses, whose every use is
// counted in storage before it is answered VALID, see takeUse), keep or log a plaintext secret (cache entries hold only the digest
// and what the token allows), take a lock shared by every request (all state
// is sharded), or answer VALID when storage could not be asked.
package verify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// Options configure an Engine. Store and Hasher are required.
//
// The cache is bounded twice: by CacheEntries and by CacheBytes, the
// approximate memory its entries (positive and negative) hold, estimated
// once per entry from its strings, slices, IP ranges, metadata and token.
// Both are split evenly between the cache's 64 shards, and a shard evicts
// until it is within both. A token whose entry alone is bigger than a
// shard's share of CacheBytes is verified from storage every time, never
// cached.
type Options struct {
	Store  tokend.Store
	Hasher *secret.Hasher
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default discards

	CacheEntries  int           // max cached positive+negative entries; default 100_000
	CacheBytes    int64         // max approximate bytes held by cached entries; default 64 MiB (see above)
	CacheTTL      time.Duration // a positive entry is re-read from storage after this; default 60s
	NegativeTTL   time.Duration // unknown hashes are remembered this long; default 5s
	FlushInterval time.Duration // usage batches written this often; default 1s
	FailureLimit  int           // failed verifications allowed per peer (VerifyRequest.Peer) per FailureWindow; 0 disables the throttle
	FailureWindow time.Duration // default 1m

	// StaleWindow bounds how long a cached answer is trusted while the
	// engine is out of sync (see OutOfSync): measured from when the answer
	// was read or from when invalidations may have started to go missing,
	// whichever is later. Past it, storage is asked, and if storage fails
	// the verification fails. Default 5s; negative trusts no cached answer
	// at all while out of sync.
	StaleWindow time.Duration
	// ReadTimeout bounds a read from storage on the verification path: a
	// database behind a network that went silent answers nothing, and the
	// verification fails (503) rather than waiting for TCP to give up.
	// Default 5s.
	ReadTimeout time.Duration
	// Shared, when set, keeps rate limits and failure counts for every
	// instance together (see tokend.SharedLimiter); the engine falls back
	// on its own counts whenever Shared answers an error.
	Shared tokend.SharedLimiter
	// TrackNetworks notes the network of every valid verification with
	// an address, for the store to raise token.new_network (see
	// networks.go). NetworkEvent makes that event (default: one whose data
	// is the token's id, app and name).
	TrackNetworks bool
	NetworkEvent  func(tokend.NewNetwork) tokend.Event
	// Disable, when set, disables a token whose secret replaced by
	// rotation was presented after its grace while its app's
	// rotated_secret_policy is disable: in one transaction with ev, the
	// audit event of the use (raising token.rotated_secret_used), and then
	// tells the caches. Run calls it promptly, off the request path; an
	// error keeps ev for the next flush. Without it, such a use is only
	// recorded, as with the policy notify.
	Disable func(ctx context.Context, tokenID string, ev tokend.Event) error
	// NoFilter turns off the filter of known secrets (see filter.go):
	// every secret not in the cache is then read from storage, as before
	// it existed. FilterRebuild is how often Run builds the filter again
	// (default DefaultFilterRebuild).
	NoFilter      bool
	FilterRebuild time.Duration
	// FilterConfirm is how many secrets the filter rules out are still
	// read from storage a second, and in a burst (see filter.go); default
	// DefaultFilterConfirm, negative for none.
	FilterConfirm int
}

// Defaults for the zero Options fields.
const (
	DefaultCacheEntries  = 100_000
	DefaultCacheBytes    = 64 << 20
	DefaultCacheTTL      = 60 * time.Second
	DefaultNegativeTTL   = 5 * time.Second
	DefaultFlushInterval = time.Second
	DefaultFailureWindow = time.Minute
	DefaultStaleWindow   = 5 * time.Second
	DefaultReadTimeout   = 5 * time.Second
)

// ReasonClientThrottled is the Reason of a RATE_LIMITED answer given to a
// peer that failed too many verifications, for a secret that would have
// needed a storage read.
const ReasonClientThrottled = "client_throttled"

// ReasonOwnerRateLimited is the Reason of a RATE_LIMITED answer given when
// the limit shared by the tokens of the token's owner (the app's
// owner_rate_limit) is used up, though the token's own is not.
const ReasonOwnerRateLimited = "owner_rate_limited"

// Engine verifies secrets. It implements tokend.Verifier and
// tokend.Resyncer, and is safe for concurrent use.
type Engine struct {
	store tokend.Store
	// sum is Hasher.Sum; a field so that tests can count HMACs.
	sum           func(string) [32]byte
	now           func() time.Time
	log           *slog.Logger
	cacheTTL      int64 // nanoseconds, like every instant the hot path compares
	negativeTTL   int64
	flushInterval time.Duration
	staleWindow   int64 // nanoseconds; -1 when no stale answer may be served
	readTimeout   time.Duration

	// outOfSync is when invalidations may have started to go missing (unix
	// ns), 0 while every change is told. One atomic load on the hot path.
	outOfSync atomic.Int64

	cache    cache
	tokens   tokenTable
	intern   interner // what cache entries share
	usage    usageTable
	throttle *throttle // nil when disabled
	events   eventQueue
	decoys   decoyGate // bounds the events of decoy tokens
	// decoySecrets is every decoy's secrets (nil until first read), for
	// blocked peers; decoyNudge asks Run to read them again, decoyDelay
	// and decoyEvery say when (see decoy.go).
	decoySecrets atomic.Pointer[decoySet]
	decoyNudge   chan struct{}
	decoyDelay   time.Duration
	decoyEvery   time.Duration
	// disables are the uses of rotated-out secrets whose tokens are to be
	// disabled (see Options.Disable); nudge wakes Run for them.
	disable  func(ctx context.Context, tokenID string, ev tokend.Event) error
	disables eventQueue
	nudge    chan struct{}
	shared   tokend.SharedLimiter // nil: limits are this instance's own
	owners   ownerTable           // limits shared by an owner's tokens
	stats    stats

	// trackNetworks says whether valid uses note their network (see
	// networks.go); networkEvent makes token.new_network.
	trackNetworks bool
	networkEvent  func(tokend.NewNetwork) tokend.Event
	netQueue      netQueue
	// netSwept is when sweepNetworks last ran (unix ns); flush-only.
	netSwept int64

	// filter rules out secrets no token has (filter.go).
	filter secretFilter
}

// New makes an Engine. It panics without a Store or a Hasher: that is a
// wiring mistake, not a runtime condition.
func New(o Options) *Engine {
	if o.Store == nil || o.Hasher == nil {
		panic("verify: Options.Store and Options.Hasher are required")
	}
	if len(tokend.Codes) > maxCodes {
		panic("verify: more verification codes than usage counters; raise maxCodes")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = DefaultCacheEntries
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = DefaultFailureWindow
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	staleWindow := int64(o.StaleWindow)
	switch {
	case o.StaleWindow == 0:
		staleWindow = int64(DefaultStaleWindow)
	case o.StaleWindow < 0:
		staleWindow = -1
	}
	e := &Engine{
		store:         o.Store,
		sum:           o.Hasher.Sum,
		now:           o.Now,
		log:           o.Logger,
		cacheTTL:      int64(o.CacheTTL),
		negativeTTL:   int64(o.NegativeTTL),
		flushInterval: o.FlushInterval,
		staleWindow:   staleWindow,
		readTimeout:   o.ReadTimeout,
		shared:        o.Shared,
		trackNetworks: o.TrackNetworks,
		networkEvent:  o.NetworkEvent,
		disable:       o.Disable,
		nudge:         make(chan struct{}, 1),
		decoyNudge:    make(chan struct{}, 1),
		decoyDelay:    DecoyRefreshDelay,
		decoyEvery:    DecoyRefreshInterval,
	}
	if e.networkEvent == nil {
		e.networkEvent = basicNetworkEvent
	}
	if o.FilterRebuild <= 0 {
		o.FilterRebuild = DefaultFilterRebuild
	}
	if o.FilterConfirm == 0 {
		o.FilterConfirm = DefaultFilterConfirm
	}
	e.filter.init(!o.NoFilter, o.FilterRebuild, o.FilterConfirm)
	e.cache.init(o.CacheEntries, o.CacheBytes)
	e.tokens.init()
	e.owners.init()
	if o.FailureLimit > 0 {
		e.throttle = newThrottle(o.FailureLimit, o.FailureWindow)
	}
	return e
}

var (
	_ tokend.Verifier     = (*Engine)(nil)
	_ tokend.Resyncer     = (*Engine)(nil)
	_ tokend.SecretKeeper = (*Engine)(nil)
)

// screen is Verify before the answer is counted: the failure throttle
// screens the peer, then verify looks at the secret.
//
// The throttle keys on r.Peer alone, the address tokend sees (set by the
// HTTP layer, with its door), never on r.IP, which the caller reports and
// could be anything. A blocked peer is refused what would cost a storage
// read; a secret already in the positive cache still answers as usual, since
// a guess cannot be there and the answer costs an HMAC and a map lookup, so
// that a token in use keeps working from an address that others behind the
// same NAT or proxy got blocked. A decoy's secret, looked up in memory,
// raises its event and is refused as any other (see decoy.go).
func (e *Engine) screen(ctx context.Context, r tokend.VerifyRequest) (tokend.VerifyResult, error) {
	now := e.now().UnixNano()
	if e.throttle == nil || r.Peer == "" {
		res, _, err := e.verify(ctx, r, now, false)
		return res, err
	}
	client := makeClientKey(r.Peer)
	if retry, blocked := e.throttle.blocked(client, now); blocked {
		if res, ok, err := e.verify(ctx, r, now, true); ok {
			return res, err
		}
		return tokend.VerifyResult{
			Code:   tokend.CodeRateLimited,
			Reason: ReasonClientThrottled,
			RateLimit: &tokend.RateLimitState{
				Limit: e.throttle.limit, Remaining: 0, Reset: retry, RetryAfter: retry,
			},
		}, nil
	}
	res, _, err := e.verify(ctx, r, now, false)
	if err == nil && isGuess(res.Code) {
		e.failed(ctx, client, now)
	}
	return res, err
}

// isGuess reports whether a failure looks like someone trying secrets: a
// token that is malformed, unknown or dead, or a secret rotated out. A real token refused for its
// own rate limit, permissions or address is a client's honest mistake and
// must not get the whole address throttled.
func isGuess(c tokend.Code) bool {
	switch c {
	case tokend.CodeMalformed, tokend.CodeNotFound, tokend.CodeRevoked, tokend.CodeExpired, tokend.CodeDisabled,
		tokend.CodeRotated:
		return true
	}
	return false
}

// verify answers the secret. With cachedOnly it answers only from a trusted
// positive cache entry, and reports false for anything else (a malformed or
// unknown secret, or one that would need storage).
func (e *Engine) verify(ctx context.Context, r tokend.VerifyRequest, now int64, cachedOnly bool) (tokend.VerifyResult, bool, error) {
	if _, ok := secret.Check(r.Token); !ok {
		return tokend.VerifyResult{Code: tokend.CodeMalformed}, !cachedOnly, nil
	}
	d := e.sum(r.Token)
	ent := e.cache.get(&d, now, e.cacheTTL)
	if ent != nil && !e.trusted(ent, now) {
		ent = nil // read again below; an outage answers an error, not this
	}
	if cachedOnly && (ent == nil || ent.negative()) {
		if dc := e.blockedDecoy(ent, d); dc != nil {
			e.decoyUsed(dc, &r, now)
		}
		return tokend.VerifyResult{}, false, nil
	}
	if ent == nil && e.ruledOut(&d, now) {
		// No token has this secret: no storage read, nothing cached.
		return tokend.VerifyResult{Code: tokend.CodeNotFound}, true, nil
	}
	if ent == nil {
		var installed bool
		var err error
		ent, installed, err = e.load(ctx, d, now)
		if err != nil {
			return tokend.VerifyResult{}, false, err
		}
		if !installed && ent.state != nil {
			// The entry answers this request only; its hold on the token
			// state ends after the use below is counted, so that the
			// counter is not dropped under our feet.
			defer e.tokens.release(ent.state)
		}
	}
	if ent.negative() {
		if d := ent.decoy(); d != nil {
			e.decoyUsed(d, &r, now)
		}
		return tokend.VerifyResult{Code: tokend.CodeNotFound}, true, nil
	}
	res, err := e.check(ctx, ent, &r, now)
	if err != nil {
		return tokend.VerifyResult{}, true, err
	}
	if r.Peek {
		return res, true, nil // asked about, not used: nothing recorded
	}
	e.usage.record(ent.state, now, res.Code, &r, ent.maxUses() != 0)
	if e.trackNetworks && res.Valid {
		e.noteNetwork(ent.state, now, r.IP)
	}
	return res, true, nil
}

// trusted reports whether a fresh cache entry may answer: always while every
// change is told, and while out of sync only within the stale window of the
// later of its read and the start of the trouble (an entry read since then
// is as good as that read).
func (e *Engine) trusted(ent *entry, now int64) bool {
	since := e.outOfSync.Load()
	return since == 0 || now-max(since, ent.born) <= e.staleWindow
}

// load reads the secret's token from storage and caches the answer. The
// entry is not cached when an invalidation ran during the read, since what
// was read may predate the change.
func (e *Engine) load(ctx context.Context, d [32]byte, now int64) (ent *entry, installed bool, err error) {
	epoch := e.tokens.epoch.Load()
	ctx, cancel := context.WithTimeout(ctx, e.readTimeout)
	e.stats.reads.Add(1)
	cred, err := e.store.TokenBySecret(ctx, d[:])
	cancel()
	if errors.Is(err, tokend.ErrNotFound) {
		ent = newNegativeEntry(now, e.negativeTTL)
		e.install(d, ent)
		return ent, true, nil
	}
	if err != nil {
		if tokend.CodeOf(err) == tokend.ECodeInternal {
			// A foreign error from a driver: storage is down or failing,
			// which callers answer with 503.
			err = tokend.Unavailable(err)
		}
		return nil, false, err
	}
	if cred.Token.Decoy {
		// Whatever its status, expiry or settings: answered and cached as
		// an unknown secret is, so that nothing tells the two apart.
		ent = newDecoyEntry(cred.Token, now, e.negativeTTL)
		e.install(d, ent)
		return ent, true, nil
	}
	st := e.tokens.acquire(cred.Token.ID, e.intern.str(cred.Token.AppID))
	st.seedUses(cred.Token.UseCount)
	// The generation is read before the epoch is compared (in install):
	// an invalidation bumps the epoch first, so either install sees the new
	// epoch or this entry carries the old generation and goes stale.
	ent = newEntry(cred, st, st.generation(), now, &e.intern)
	if e.trackNetworks {
		ent.setSize(int64(ent.size) + networkStateSize)
	}
	if e.installIfEpoch(d, ent, epoch) {
		return ent, true, nil
	}
	return ent, false, nil
}

// install caches a negative entry, or leaves it to answer this request only.
func (e *Engine) install(d [32]byte, ent *entry) {
	var buf [4]*entry
	_, removed := e.cache.put(&d, ent, nil, 0, e.cacheTTL, buf[:0])
	e.releaseEntries(removed)
}

// installIfEpoch caches a positive entry unless an invalidation ran since
// epoch was read or the entry is too big to cache; it reports which.
func (e *Engine) installIfEpoch(d [32]byte, ent *entry, epoch uint64) bool {
	var buf [4]*entry
	ok, removed := e.cache.put(&d, ent, &e.tokens.epoch, epoch, e.cacheTTL, buf[:0])
	e.releaseEntries(removed)
	return ok
}

func (e *Engine) releaseEntries(es []*entry) {
	for _, x := range es {
		if x != nil && x.state != nil {
			e.tokens.release(x.state)
		}
	}
}

// check applies the rules in their order of precedence to a known token.
// An error means the use of a token with max_uses could not be counted.
func (e *Engine) check(ctx context.Context, ent *entry, r *tokend.VerifyRequest, now int64) (tokend.VerifyResult, error) {
	res := tokend.VerifyResult{Token: &ent.token}
	code, err := e.rules(ctx, ent, r, now, &res)
	if err != nil {
		return tokend.VerifyResult{}, err
	}
	res.Code = code
	res.Valid = code == tokend.CodeValid
	return res, nil
}

func (e *Engine) rules(ctx context.Context, ent *entry, r *tokend.VerifyRequest, now int64, res *tokend.VerifyResult) (tokend.Code, error) {
	st := ent.state
	limited := ent.limit != nil || ent.ownerLimit() != nil
	// peek reports the limit without consuming it, for answers decided
	// before the rate limit is reached.
	peek := func() {
		if limited {
			res.RateLimit = e.peekRate(ctx, ent, now)
		}
	}
	switch ent.status {
	case statusRevoked:
		peek()
		return tokend.CodeRevoked, nil
	case statusDisabled:
		peek()
		return tokend.CodeDisabled, nil
	}
	if ent.expires != 0 && now >= ent.expires {
		peek()
		return tokend.CodeExpired, nil
	}
	// Only a token alive under its new secret answers ROTATED: a dead one
	// answered above, as its current secret would.
	if ent.retired && now >= ent.graceUntil() {
		e.rotatedSecretUsed(ent, r, now)
		peek()
		return tokend.CodeRotated, nil
	}
	if ent.ipRestricted() && !ent.ipAllowed(r.IP) {
		peek()
		return tokend.CodeIPNotAllowed, nil
	}
	if !ent.originAllowed(r.Origin) {
		peek()
		return tokend.CodeOriginNotAllowed, nil
	}
	for _, p := range r.Permissions {
		if !ent.allows(p) {
			peek()
			return tokend.CodeInsufficientPermissions, nil
		}
	}
	// The uses known here are a cheap early refusal once the token is known
	// to be used up; storage, asked below, has the last word.
	if maxUses := ent.maxUses(); maxUses != 0 && st.uses.Load() >= maxUses {
		peek()
		return tokend.CodeUsageExceeded, nil
	}
	if r.Peek {
		// Asked about, not used: the limit as it stands, no use taken.
		peek()
		return tokend.CodeValid, nil
	}
	if limited {
		state, ok, reason := e.takeRate(ctx, ent, now)
		res.RateLimit = state
		if !ok {
			res.Reason = reason
			return tokend.CodeRateLimited, nil
		}
	}
	if ent.maxUses() != 0 {
		ok, err := e.takeUse(ctx, st)
		if err != nil || !ok {
			// Not a use: give the rate limit slot back.
			if limited {
				res.RateLimit = e.refundRate(ctx, ent, now)
			}
			if err != nil {
				return "", err
			}
			// Used up, perhaps through other instances: refuse early
			// from now on.
			st.seedUses(ent.maxUses())
			return tokend.CodeUsageExceeded, nil
		}
	}
	return tokend.CodeValid, nil
}

// takeUse counts one use of a token with max_uses in storage, durably and
// exactly across instances, before the answer can say VALID. It is the one
// storage write of the verification path; a token without max_uses never
// gets here. An error (storage down or slow past ReadTimeout) fails the
// verification: a limited token is never answered VALID on a use that was
// not counted.
func (e *Engine) takeUse(ctx context.Context, st *tokenState) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.readTimeout)
	ok, err := e.store.TakeUse(ctx, st.id)
	cancel()
	if err != nil {
		if tokend.CodeOf(err) != tokend.ECodeUnavailable {
			err = tokend.Unavailable(err)
		}
		return false, err
	}
	if ok {
		st.uses.Add(1)
	}
	return ok, nil
}

// allows applies tokend.Allows with the token's access, permissions and its
// app's catalog; the answers for the abstract read and write, which may scan
// the whole catalog, were worked out once when the entry was made.
func (ent *entry) allows(perm string) bool {
	switch perm {
	case tokend.PermRead:
		return ent.canRead
	case tokend.PermWrite:
		return ent.canWrite
	}
	return tokend.Allows(ent.token.Access, ent.token.Permissions, *ent.catalog, perm)
}

// ipAllowed reports whether the request address is inside one of the
// token's ranges. An address that does not parse is refused: the token is
// restricted and we cannot show the client is inside.
func (ent *entry) ipAllowed(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	if ent.rare == nil {
		return false
	}
	for _, p := range ent.rare.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// originAllowed applies the origin rules: a plugin token needs one of its
// origins; a standard token passes without an Origin (server to server) and,
// with one, only if it lists that origin.
func (ent *entry) originAllowed(origin string) bool {
	if origin == "" {
		return ent.token.Type != tokend.TypePlugin
	}
	if ent.rare == nil || len(ent.rare.origins) == 0 {
		return false
	}
	// Browsers send origins in canonical form already; the exact match
	// spares NormalizeOrigin's URL parse (and its allocations).
	for _, o := range ent.rare.origins {
		if o == origin {
			return true
		}
	}
	n := tokend.NormalizeOrigin(origin)
	if n == "" || n == origin {
		return false
	}
	for _, o := range ent.rare.origins {
		if o == n {
			return true
		}
	}
	return false
}
