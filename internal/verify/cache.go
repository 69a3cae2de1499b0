package verify

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tokend/tokend"
)

// shards is the number of independently locked parts of every table. A
// power of two well above the core count keeps two requests for different
// tokens from meeting on a lock.
const shards = 64

// evictionSamples is how many entries a full shard looks at to choose one to
// evict (the oldest of them, or the first already stale): sampled LRU in the
// manner of Redis, without a list to update on every hit.
const evictionSamples = 5

// entry is what the cache knows about one digest: either that no token has
// it (negative) or everything the checks need, prepared once per read from
// storage. It is immutable once installed; counters live in its tokenState.
// It never holds the secret. It is one allocation: the VerifiedToken every
// answer points to is part of it, and what few tokens have (ranges,
// origins, max_uses, an owner limit, a retired secret's version) sits
// behind rare.
type entry struct {
	canRead  bool // tokend.Allows of the abstract read
	canWrite bool // and of the abstract write
	retired  bool
	status   statusCode
	size     int32 // approximate bytes held, estimated once (see estimateSize)
	born     int64 // when read from storage (unix ns)
	// state is nil on a negative entry (no token has the digest).
	state *tokenState
	gen   uint64 // state.generation() when read; stale once they differ

	catalog *[]string // the app's: the ceiling of every permission (interned)
	// expires is, on a positive entry, the token's expiry (unix ns; 0 for
	// never); on a negative one, when it is forgotten.
	expires int64
	limit   *limitSpec
	rare    *entryRare // nil for most: see entryRare

	// token is answered to every caller (by pointer) and never modified.
	// Its Permissions are those granted and still in the catalog
	// (tokend.LivePermissions), which the checks read too.
	token tokend.VerifiedToken
}

// entryRare is what few entries need.
type entryRare struct {
	maxUses int64 // 0 for no limit
	// version is the token's when read, for a retired secret's events.
	version int64
	// graceUntil is a retired secret's grace end (unix ns; 0 for none).
	graceUntil     int64
	ipRestricted   bool
	disableOnReuse bool // a retired secret's app's rotated_secret_policy is disable
	// decoy, on a negative entry, is the decoy token the secret is of: it
	// answers as an unknown secret and raises token.decoy_used.
	decoy    *decoyInfo
	prefixes []netip.Prefix
	origins  []string // normalised
	// ownerLimit is the app's limit shared by the tokens of the token's
	// owner, kept under ownerKey (tokend.OwnerRateKey); nil for none.
	ownerLimit *limitSpec
	ownerKey   string
}

// statusCode is a token's status in a byte.
type statusCode uint8

const (
	statusActive statusCode = iota
	statusDisabled
	statusRevoked
	statusOther // any other stored value, checked as the active are
)

func statusCodeOf(s tokend.Status) statusCode {
	switch s {
	case tokend.StatusActive:
		return statusActive
	case tokend.StatusDisabled:
		return statusDisabled
	case tokend.StatusRevoked:
		return statusRevoked
	}
	return statusOther
}

// negative says that no token has the entry's digest.
func (ent *entry) negative() bool { return ent.state == nil }

func (ent *entry) graceUntil() int64 {
	if ent.rare == nil {
		return 0
	}
	return ent.rare.graceUntil
}

func (ent *entry) ipRestricted() bool { return ent.rare != nil && ent.rare.ipRestricted }

func (ent *entry) disableOnReuse() bool { return ent.rare != nil && ent.rare.disableOnReuse }

// setSize records the estimate n (bounded: no entry comes near 2 GiB).
func (ent *entry) setSize(n int64) { ent.size = int32(min(n, 1<<31-1)) }

// decoy is the decoy whose secret a negative entry is of; nil for none,
// and for no entry.
func (ent *entry) decoy() *decoyInfo {
	if ent == nil || ent.rare == nil {
		return nil
	}
	return ent.rare.decoy
}

// maxUses is the token's max_uses; 0 for no limit, -1 for a limit of none.
func (ent *entry) maxUses() int64 {
	if ent.rare == nil {
		return 0
	}
	return ent.rare.maxUses
}

func (ent *entry) ownerLimit() *limitSpec {
	if ent.rare == nil {
		return nil
	}
	return ent.rare.ownerLimit
}

func (ent *entry) rareOf() *entryRare {
	if ent.rare == nil {
		ent.rare = &entryRare{}
	}
	return ent.rare
}

func newEntry(c tokend.Credential, st *tokenState, gen uint64, now int64, in *interner) *entry {
	t := c.Token
	catalog := &tokend.AdminPermissions
	if t.AppID != tokend.SystemAppID {
		// The admin permissions are the code's, whatever version of
		// tokend made the stored system app; others are the app's.
		catalog = in.list(c.Catalog)
	}
	ent := &entry{
		born:    now,
		state:   st,
		gen:     gen,
		status:  statusCodeOf(t.Status),
		catalog: catalog,
		retired: c.Retired,
	}
	if c.Retired {
		ent.rareOf().version = t.Version
	}
	tok := &ent.token
	tok.ID, tok.AppID, tok.OwnerID, tok.Name = t.ID, in.str(t.AppID), t.OwnerID, t.Name
	tok.Type, tok.Access = tokend.TokenType(in.str(string(t.Type))), tokend.Access(in.str(string(t.Access)))
	tok.Permissions = *in.list(tokend.LivePermissions(t.Permissions, *catalog))
	tok.Metadata = t.Metadata
	if t.AppID == tokend.SystemAppID && (t.Scope != nil || len(t.AllowedIPs) > 0 || t.RateLimit != nil) {
		tok.Admin = &tokend.AdminDetails{Scope: t.Scope, AllowedIPs: t.AllowedIPs, RateLimit: t.RateLimit}
	}
	if c.Retired && c.RotatedSecretPolicy == tokend.RotatedDisable {
		ent.rareOf().disableOnReuse = true
	}
	ent.canRead = tokend.Allows(tok.Access, tok.Permissions, *catalog, tokend.PermRead)
	ent.canWrite = tokend.Allows(tok.Access, tok.Permissions, *catalog, tokend.PermWrite)
	if c.Retired && !c.GraceUntil.IsZero() {
		ent.rareOf().graceUntil = c.GraceUntil.UnixNano()
	}
	if t.ExpiresAt != nil {
		x := *t.ExpiresAt
		tok.ExpiresAt = &x
		ent.expires = x.UnixNano()
		if ent.expires == 0 { // the epoch itself: long past, not "never"
			ent.expires = 1
		}
	}
	if len(t.AllowedIPs) > 0 {
		// A range that does not parse is skipped, not a reason to open
		// the token to every address: with none left, nothing passes.
		r := ent.rareOf()
		r.ipRestricted = true
		for _, s := range t.AllowedIPs {
			p, err := tokend.ParsePrefix(s)
			if err != nil {
				continue
			}
			r.prefixes = append(r.prefixes, tokend.UnmapPrefix(p))
		}
	}
	for _, o := range t.AllowedOrigins {
		if n := tokend.NormalizeOrigin(o); n != "" {
			r := ent.rareOf()
			r.origins = append(r.origins, n)
		}
	}
	if t.MaxUses != nil {
		r := ent.rareOf()
		r.maxUses = *t.MaxUses
		if r.maxUses <= 0 { // a limit of zero uses: nothing passes
			r.maxUses = -1
		}
	}
	if t.RateLimit != nil {
		ent.limit = newLimitSpec(*t.RateLimit)
	}
	if t.OwnerID != "" && c.OwnerRateLimit != nil {
		r := ent.rareOf()
		r.ownerLimit = newLimitSpec(*c.OwnerRateLimit)
		r.ownerKey = tokend.OwnerRateKey(t.AppID, t.OwnerID)
	}
	ent.setSize(ent.estimateSize())
	return ent
}

func newNegativeEntry(now, ttl int64) *entry {
	return &entry{born: now, expires: now + ttl, size: int32(negativeEntrySize)}
}

// Sizes for the estimate of what an entry holds. They are approximations of
// the Go runtime's layout, meant to bound the cache's memory within a small
// factor, not to account for every byte.
const (
	// slotOverhead is a shard map's slot (32-byte key, pointer, control
	// byte) at a typical load, plus the entry's allocation rounding.
	slotOverhead = 64
	// tokenStateSize is a token state with its slot in the table, and the
	// usage it collects between flushes: the current hour's counters, one
	// activity note, the last address.
	tokenStateSize = int64(unsafe.Sizeof(tokenState{})) + 48 + int64(unsafe.Sizeof(heldUsage{})) +
		int64(unsafe.Sizeof(hourUsage{})) + int64(unsafe.Sizeof(activityNote{}))
	negativeEntrySize = int64(unsafe.Sizeof(entry{})) + slotOverhead
	stringHeader      = int64(unsafe.Sizeof(""))
	ifaceHeader       = int64(unsafe.Sizeof(any(nil)))
	sliceHeader       = int64(unsafe.Sizeof([]any(nil)))
	// mapEntryOverhead is what a map[string]any spends per element beyond
	// the key and value headers (control bytes, load factor, growth).
	mapEntryOverhead = 24
	mapHeader        = 48
	// metadataMaxDepth stops the walk of metadata nested deeper than any
	// JSON object tokend accepts; what lies below is sized by its JSON.
	metadataMaxDepth = 32
)

// estimateSize answers roughly how many bytes a positive entry keeps alive:
// the entry and its VerifiedToken, their strings and slices (but those
// interned, which tokens share), the limit, and the token state it holds
// (counted in full even when another entry shares it, which errs on the
// side of a smaller cache), with the usage it collects between flushes.
func (ent *entry) estimateSize() int64 {
	n := int64(unsafe.Sizeof(*ent)) + slotOverhead
	n += tokenStateSize
	if r := ent.rare; r != nil {
		n += int64(unsafe.Sizeof(*r))
		n += int64(cap(r.prefixes)) * int64(unsafe.Sizeof(netip.Prefix{}))
		n += int64(cap(r.origins)) * stringHeader
		for _, o := range r.origins {
			n += int64(len(o))
		}
		if r.ownerLimit != nil {
			n += int64(unsafe.Sizeof(*r.ownerLimit)) + int64(len(r.ownerKey))
		}
	}
	if ent.limit != nil {
		n += int64(unsafe.Sizeof(*ent.limit))
	}
	t := &ent.token
	n += int64(len(t.ID) + len(t.OwnerID) + len(t.Name))
	if a := t.Admin; a != nil {
		n += int64(unsafe.Sizeof(*a))
		if sc := a.Scope; sc != nil {
			n += int64(unsafe.Sizeof(*sc)) + int64(len(sc.OwnerID)) + int64(cap(sc.AppIDs))*stringHeader
			for _, id := range sc.AppIDs {
				n += int64(len(id))
			}
		}
		// The admin token's own restrictions, as the management API reads
		// them (Actor.Limits): kept alive by the entry beside their parsed
		// forms above.
		n += int64(cap(a.AllowedIPs)) * stringHeader
		for _, s := range a.AllowedIPs {
			n += int64(len(s))
		}
		if a.RateLimit != nil {
			n += int64(unsafe.Sizeof(*a.RateLimit))
		}
	}
	if t.ExpiresAt != nil {
		n += int64(unsafe.Sizeof(*t.ExpiresAt))
	}
	if t.Metadata != nil {
		n += metadataSize(t.Metadata, 0)
	}
	return n
}

// metadataSize estimates the memory of decoded JSON: maps, slices, strings,
// numbers and booleans held in interfaces. Anything else is sized by its JSON
// encoding.
func metadataSize(v any, depth int) int64 {
	if depth > metadataMaxDepth {
		return jsonSize(v)
	}
	switch x := v.(type) {
	case nil, bool:
		return 0 // interfaces of these need no allocation
	case string:
		return stringHeader + int64(len(x))
	case json.Number:
		return stringHeader + int64(len(x))
	case float64, int64, int:
		return 8
	case map[string]any:
		n := int64(mapHeader)
		for k, e := range x {
			n += stringHeader + int64(len(k)) + ifaceHeader + mapEntryOverhead + metadataSize(e, depth+1)
		}
		return n
	case []any:
		n := sliceHeader + int64(cap(x))*ifaceHeader
		for _, e := range x {
			n += metadataSize(e, depth+1)
		}
		return n
	}
	return jsonSize(v)
}

// jsonSize is the length of v's JSON encoding, doubled for the decoded
// form's headers; what cannot be encoded counts a kibibyte.
func jsonSize(v any) int64 {
	b, err := json.Marshal(v)
	if err != nil {
		return 1 << 10
	}
	return 2 * int64(len(b))
}

// cache maps HMAC digests to entries, in shards each with its own lock.
// Every shard holds at most perShard entries and bytesPerShard bytes of
// entries by their estimated size.
type cache struct {
	perShard      int
	bytesPerShard int64
	shard         [shards]cacheShard
}

// cacheKey is the first half of a secret's HMAC digest: what the cache
// files an entry under. 128 bits of HMAC-SHA256 keep two secrets from
// meeting by chance (about 2^-69 with a billion cached) as well as 256
// do, and none can be sought on purpose without the pepper; while the
// shards' map slots, one per cached entry, take 24 bytes instead of 40.
// Storage is always asked with the whole digest.
type cacheKey [16]byte

func keyOf(d *[32]byte) cacheKey { return cacheKey(d[:16]) }

type cacheShard struct {
	mu    sync.RWMutex
	m     map[cacheKey]*entry
	bytes int64    // sum of the entries' sizes; under mu
	_     [32]byte // keep neighbouring shards' locks off one cache line
}

func (c *cache) init(maxEntries int, maxBytes int64) {
	c.perShard = maxEntries / shards
	if c.perShard < 1 {
		c.perShard = 1
	}
	c.bytesPerShard = maxBytes / shards
	for i := range c.shard {
		c.shard[i].m = make(map[cacheKey]*entry)
	}
}

func (c *cache) shardOf(k cacheKey) *cacheShard {
	// HMAC output is uniform: any of its bits pick a shard evenly.
	return &c.shard[binary.LittleEndian.Uint64(k[:8])%shards]
}

// get answers the fresh entry for d, or nil when storage must be asked.
func (c *cache) get(d *[32]byte, now, ttl int64) *entry {
	k := keyOf(d)
	sh := c.shardOf(k)
	sh.mu.RLock()
	ent := sh.m[k]
	sh.mu.RUnlock()
	if ent == nil || !ent.fresh(now, ttl) {
		return nil
	}
	return ent
}

func (ent *entry) fresh(now, ttl int64) bool {
	if ent.negative() {
		return now < ent.expires
	}
	return now-ent.born < ttl && ent.gen == ent.state.generation()
}

// put installs ent for d, evicting entries until the shard is within both
// its bounds. With epoch set, it refuses when epoch no longer holds want; an
// entry bigger than a shard's byte budget is refused too (and the entry it
// would have replaced dropped). It reports whether ent was installed, and
// appends the entries it removed to out, for the caller to release outside
// the shard lock.
func (c *cache) put(d *[32]byte, ent *entry, epoch *atomic.Uint64, want uint64, ttl int64, out []*entry) (bool, []*entry) {
	k := keyOf(d)
	sh := c.shardOf(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if epoch != nil && epoch.Load() != want {
		return false, out
	}
	if old := sh.m[k]; old != nil {
		delete(sh.m, k)
		sh.bytes -= int64(old.size)
		out = append(out, old)
	}
	if int64(ent.size) > c.bytesPerShard {
		return false, out
	}
	for len(sh.m) >= c.perShard || sh.bytes+int64(ent.size) > c.bytesPerShard {
		victim := sh.evictLocked(ent.born, ttl)
		if victim == nil { // empty: the bounds hold
			break
		}
		out = append(out, victim)
	}
	sh.m[k] = ent
	sh.bytes += int64(ent.size)
	return true, out
}

func (sh *cacheShard) evictLocked(now, ttl int64) *entry {
	var (
		key   cacheKey
		pick  *entry
		found bool
		n     int
	)
	// Map iteration starts at a random place, which makes this a random
	// sample.
	for k, v := range sh.m {
		if !v.fresh(now, ttl) {
			key, pick, found = k, v, true
			break
		}
		if !found || v.born < pick.born {
			key, pick, found = k, v, true
		}
		if n++; n >= evictionSamples {
			break
		}
	}
	if !found {
		return nil
	}
	delete(sh.m, key)
	sh.bytes -= int64(pick.size)
	return pick
}

// tokenState is what the engine keeps per token id across re-reads and
// rotations: the use counter, the rate limiter, the generation that
// invalidations bump. It lives while a cache entry refers to it or uses are
// waiting to be flushed, so that a re-read never forgets uses that storage
// has not seen yet.
type tokenState struct {
	id  string
	app *appGen // shared by the app's tokens

	gen       atomic.Uint64 // bumped by an invalidation of the token
	uses      atomic.Int64  // successful verifications known here
	unflushed atomic.Int64  // of which not yet written to storage
	batched   atomic.Int64  // of which not yet taken by a flush
	limiter   limiter
	// rotated is the last token.rotated_secret_used raised here; nil
	// until the first (see rotatedMarkOf).
	rotated atomic.Pointer[rotatedMark]

	// nets are the networks noted here (see networks.go); nil until the
	// first.
	nets atomic.Pointer[netSet]

	// Usage since the last flush (see usageTable).
	usage     atomic.Pointer[hourUsage]
	lastAt    atomic.Int64
	mu        sync.Mutex // guards held and the change of hour
	held      *heldUsage // nil while idle
	flushedAt int64      // flush-only: lastAt when last written
	dirty     atomic.Bool

	refs int32 // cache entries referring to it; under the table shard's lock
}

// heldUsage is what a token in use holds besides its current hour's
// counters, under its state's mu: the activity noted since the last flush,
// earlier hours' counters not yet written, and the address of the last
// successful use, as the request gave it. A flush that finds nothing noted
// since the last one takes the address and drops the rest, so that an idle
// token holds none.
type heldUsage struct {
	past     []*hourUsage
	activity activityRing
	lastIP   string
}

// heldLocked answers the token's heldUsage, made on first use; the caller
// holds st.mu.
func (st *tokenState) heldLocked() *heldUsage {
	if st.held == nil {
		st.held = &heldUsage{}
	}
	return st.held
}

// dirtyShard answers which of the usage table's lists st goes on: any
// spread will do, and its address is one that costs no field (states are
// never moved, and allocated apart by at least their size).
func (st *tokenState) dirtyShard() uintptr {
	return uintptr(unsafe.Pointer(st)) / unsafe.Sizeof(tokenState{}) % shards
}

// rotatedMarkOf answers the token's rotatedMark, made on first use: few
// tokens ever need one.
func (st *tokenState) rotatedMarkOf() *rotatedMark {
	if m := st.rotated.Load(); m != nil {
		return m
	}
	st.rotated.CompareAndSwap(nil, &rotatedMark{})
	return st.rotated.Load()
}

// seedUses raises the use counter to what storage counted, never lowering
// it: storage lags the uses of a token without max_uses counted here until
// the next flush. (A token with max_uses has its uses counted in storage as
// they happen; the counter here only refuses early once it is used up.)
func (st *tokenState) seedUses(stored int64) {
	for {
		cur := st.uses.Load()
		if cur >= stored || st.uses.CompareAndSwap(cur, stored) {
			return
		}
	}
}

// generation is what an entry records when read and compares on every
// hit: the token's generation plus its app's. Both only grow, so that the
// sum changes when either is bumped.
func (st *tokenState) generation() uint64 { return st.gen.Load() + st.app.gen.Load() }

// appGen is an app's generation, which AppChanged bumps: every entry of the
// app's tokens read before goes stale at once, without an index of the
// app's tokens to visit. There is one per app id ever cached (apps are few);
// it is never forgotten, so that a state made later shares it.
type appGen struct {
	id  string
	gen atomic.Uint64
}

// tokenTable finds token states by token id, and apps' generations by app
// id, so that invalidation touches only the tokens concerned.
type tokenTable struct {
	seed maphash.Seed
	// epoch changes on every invalidation, so that a read from storage that
	// overlapped one is not cached.
	epoch atomic.Uint64
	shard [shards]tokenShard

	appsMu sync.RWMutex
	apps   map[string]*appGen
}

type tokenShard struct {
	mu   sync.RWMutex
	byID map[string]*tokenState
}

func (t *tokenTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shard {
		t.shard[i].byID = make(map[string]*tokenState)
	}
	t.apps = make(map[string]*appGen)
}

func (t *tokenTable) shardIndex(s string) uint64 { return maphash.String(t.seed, s) % shards }

// appGenOf answers the app's generation, made on first use.
func (t *tokenTable) appGenOf(appID string) *appGen {
	t.appsMu.RLock()
	a := t.apps[appID]
	t.appsMu.RUnlock()
	if a != nil {
		return a
	}
	t.appsMu.Lock()
	defer t.appsMu.Unlock()
	if a = t.apps[appID]; a == nil {
		a = &appGen{id: appID}
		t.apps[appID] = a
	}
	return a
}

// acquire finds or makes the state of a token and holds it for one cache
// entry.
func (t *tokenTable) acquire(id, appID string) *tokenState {
	i := t.shardIndex(id)
	sh := &t.shard[i]
	sh.mu.Lock()
	st := sh.byID[id]
	if st == nil {
		st = &tokenState{id: id, app: t.appGenOf(appID)}
		sh.byID[id] = st
	}
	st.refs++
	sh.mu.Unlock()
	return st
}

// release ends one hold and forgets the state when nothing needs it.
func (t *tokenTable) release(st *tokenState) {
	sh := &t.shard[t.shardIndex(st.id)]
	sh.mu.Lock()
	st.refs--
	t.dropIfUnusedLocked(sh, st)
	sh.mu.Unlock()
}

// settled is told that n uses of the token reached storage.
func (t *tokenTable) settled(id string, n int64) {
	sh := &t.shard[t.shardIndex(id)]
	sh.mu.Lock()
	if st := sh.byID[id]; st != nil {
		st.unflushed.Add(-n)
		t.dropIfUnusedLocked(sh, st)
	}
	sh.mu.Unlock()
}

func (t *tokenTable) dropIfUnusedLocked(sh *tokenShard, st *tokenState) {
	if st.refs > 0 || st.unflushed.Load() > 0 || sh.byID[st.id] != st {
		return
	}
	delete(sh.byID, st.id)
}

// tokenChanged makes every cached entry of the token stale. The epoch moves
// first: a read from storage that has not installed its entry yet will see it
// and not install (see Engine.load).
func (t *tokenTable) tokenChanged(id string) {
	t.epoch.Add(1)
	sh := &t.shard[t.shardIndex(id)]
	sh.mu.RLock()
	if st := sh.byID[id]; st != nil {
		st.gen.Add(1)
	}
	sh.mu.RUnlock()
}

// appChanged makes every cached entry of the app's tokens stale: it bumps
// the app's generation, which their entries recorded. An app never cached
// has none to bump (a read in flight sees the epoch).
func (t *tokenTable) appChanged(appID string) {
	t.epoch.Add(1)
	t.appsMu.RLock()
	a := t.apps[appID]
	t.appsMu.RUnlock()
	if a != nil {
		a.gen.Add(1)
	}
}
