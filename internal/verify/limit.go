package verify

import (
	"context"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
)

// limitSpec is a token's rate limit prepared for the limiter: Limit
// verifications per Window, one every interval.
type limitSpec struct {
	rl       tokend.RateLimit // as configured, for the shared limiter
	limit    int
	interval int64 // window / limit, rounded down, in ns
	burst    int64 // (limit-1) * interval: the most backlog a request may find
	window   int64
}

func newLimitSpec(rl tokend.RateLimit) *limitSpec {
	l := int64(rl.Limit)
	w := int64(time.Duration(rl.Window))
	if l < 1 {
		l = 1
	}
	if w < 1 {
		w = 1
	}
	iv := w / l
	if iv < 1 {
		iv = 1
	}
	return &limitSpec{rl: rl, limit: int(l), interval: iv, burst: (l - 1) * iv, window: w}
}

// limiter is a GCRA (generic cell rate algorithm) limiter: one atomic
// instant, the theoretical arrival time of the next request, no lock and no
// timer. A request is allowed when the backlog ahead of it (tat - now) is at
// most (limit-1) intervals; it then adds one interval. Comparing the backlog
// with whole intervals, rather than with the window, keeps the count exact
// when the window does not divide by the limit: exactly Limit requests pass
// in a burst, and after a full Window of quiet the whole Limit is back.
type limiter struct {
	tat atomic.Int64
}

// take consumes one request if the limit allows it.
func (l *limiter) take(s *limitSpec, now int64) (tokend.RateLimitState, bool) {
	for {
		tat := l.tat.Load()
		backlog := max(tat-now, 0)
		if backlog > s.burst {
			wait := backlog - s.burst
			return tokend.RateLimitState{
				Limit:      s.limit,
				Remaining:  0,
				Reset:      ceilSeconds(backlog),
				RetryAfter: max(ceilSeconds(wait), 1),
			}, false
		}
		next := now + backlog + s.interval
		if l.tat.CompareAndSwap(tat, next) {
			return s.state(backlog + s.interval), true
		}
	}
}

// refund gives back one interval taken by take.
func (l *limiter) refund(s *limitSpec) { l.tat.Add(-s.interval) }

// peek reports the limit's state without consuming it.
func (l *limiter) peek(s *limitSpec, now int64) tokend.RateLimitState {
	return s.state(max(l.tat.Load()-now, 0))
}

func (s *limitSpec) state(backlog int64) tokend.RateLimitState {
	used := (backlog + s.interval - 1) / s.interval // intervals still owed
	return tokend.RateLimitState{
		Limit:     s.limit,
		Remaining: int(max(int64(s.limit)-used, 0)),
		Reset:     ceilSeconds(backlog),
	}
}

func ceilSeconds(ns int64) int {
	return int((ns + int64(time.Second) - 1) / int64(time.Second))
}

// maxThrottled bounds the peers the failure throttle remembers.
const maxThrottled = 65_536

// throttle counts failed verifications per peer (an address at a door) in
// fixed windows and refuses a peer that used up its failures until its
// window ends, for anything that would need a storage read: a client
// guessing secrets costs us a map lookup and an HMAC.
type throttle struct {
	limit  int
	window int64
	per    int
	seed   maphash.Seed
	shard  [shards]throttleShard
}

type throttleShard struct {
	mu sync.RWMutex
	m  map[clientKey]failures
}

type failures struct {
	start int64 // window start (unix ns)
	count int
}

// clientKey is a peer at a door (VerifyRequest.Peer, "door|address"), its
// address unmapped so that 1.2.3.4 and ::ffff:1.2.3.4 share one allowance;
// raw holds an address that did not parse.
type clientKey struct {
	door string
	addr netip.Addr
	raw  string
}

func makeClientKey(peer string) clientKey {
	door, ip, ok := strings.Cut(peer, "|")
	if !ok {
		door, ip = "", peer
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return clientKey{door: door, raw: ip}
	}
	return clientKey{door: door, addr: a.Unmap().WithZone("")}
}

func newThrottle(limit int, window time.Duration) *throttle {
	t := &throttle{limit: limit, window: int64(window), per: maxThrottled / shards, seed: maphash.MakeSeed()}
	for i := range t.shard {
		t.shard[i].m = make(map[clientKey]failures)
	}
	return t
}

func (t *throttle) shardOf(k clientKey) *throttleShard {
	return &t.shard[maphash.Comparable(t.seed, k)%shards]
}

// blocked reports whether the client is over its failures, and for how many
// seconds more.
func (t *throttle) blocked(k clientKey, now int64) (int, bool) {
	sh := t.shardOf(k)
	sh.mu.RLock()
	f, ok := sh.m[k]
	sh.mu.RUnlock()
	if !ok || f.count < t.limit || now >= f.start+t.window {
		return 0, false
	}
	return max(ceilSeconds(f.start+t.window-now), 1), true
}

// fail counts one failed verification.
func (t *throttle) fail(k clientKey, now int64) {
	sh := t.shardOf(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f, ok := sh.m[k]
	if !ok && len(sh.m) >= t.per {
		t.evictLocked(sh, now)
	}
	if !ok || now >= f.start+t.window {
		f = failures{start: now}
	}
	f.count++
	sh.m[k] = f
}

// evictLocked makes room: ended windows first, else any entry. Losing an
// entry only forgives a client early; the table never grows past its bound.
func (t *throttle) evictLocked(sh *throttleShard, now int64) {
	var first clientKey
	seen, ended := 0, 0
	for k, f := range sh.m {
		if seen == 0 {
			first = k
		}
		if now >= f.start+t.window {
			delete(sh.m, k)
			ended++
		}
		if seen++; seen >= evictionSamples*4 {
			break
		}
	}
	if ended == 0 {
		delete(sh.m, first)
	}
}

// block refuses the client until the instant until, as the shared limiter
// asks once every instance together has counted enough failures from it. A
// block already running longer is kept.
func (t *throttle) block(k clientKey, until int64) {
	sh := t.shardOf(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f, ok := sh.m[k]
	if ok && f.count >= t.limit && f.start+t.window >= until {
		return
	}
	if !ok && len(sh.m) >= t.per {
		t.evictLocked(sh, until-t.window)
	}
	sh.m[k] = failures{start: until - t.window, count: max(f.count, t.limit)}
}

// String is the key as the shared limiter keeps it: the same door and
// address make the same key on every instance.
func (k clientKey) String() string {
	a := k.raw
	if k.addr.IsValid() {
		a = k.addr.String()
	}
	if k.door == "" {
		return a
	}
	return tokend.PeerKey(k.door, a)
}

// With a shared limiter (Options.Shared) the limits of every instance are
// kept in one place and asked first. This instance's own limiter follows
// what the shared one allowed, so that when the shared one cannot be reached
// the instance falls back on limits that already count its own recent
// verifications, not on fresh ones.
//
// A token has up to two limits: its own (entry.limit, kept with its state),
// then its owner's (entry.ownerLimit, shared by every token of the owner in
// the app, kept in the engine's ownerTable). Each is one rateLimit below.

// rateLimit is one limit: its key for the shared limiter, its spec, and
// this instance's limiter.
type rateLimit struct {
	key  string
	spec *limitSpec
	l    *limiter
}

func (ent *entry) tokenRate() rateLimit {
	return rateLimit{key: ent.state.id, spec: ent.limit, l: &ent.state.limiter}
}

func (e *Engine) ownerRate(ent *entry, now int64) rateLimit {
	return rateLimit{key: ent.rare.ownerKey, spec: ent.rare.ownerLimit, l: e.owners.get(ent.rare.ownerKey, now)}
}

// take spends one verification of the limit.
func (e *Engine) take(ctx context.Context, r rateLimit, now int64) (tokend.RateLimitState, bool) {
	if e.shared != nil {
		s, ok, err := e.shared.TakeRate(ctx, r.key, r.spec.rl)
		if err == nil {
			if ok {
				r.l.take(r.spec, now)
			}
			return s, ok
		}
	}
	return r.l.take(r.spec, now)
}

// peek reports the limit without spending it.
func (e *Engine) peek(ctx context.Context, r rateLimit, now int64) tokend.RateLimitState {
	if e.shared != nil {
		if s, err := e.shared.PeekRate(ctx, r.key, r.spec.rl); err == nil {
			return s
		}
	}
	return r.l.peek(r.spec, now)
}

// refund gives back what take spent and reports the limit after it.
func (e *Engine) refund(ctx context.Context, r rateLimit, now int64) tokend.RateLimitState {
	r.l.refund(r.spec)
	if e.shared != nil {
		if s, err := e.shared.RefundRate(ctx, r.key, r.spec.rl); err == nil {
			return s
		}
	}
	return r.l.peek(r.spec, now)
}

// takeRate spends one verification of the token's own limit, then of its
// owner's. A refusal by the owner's limit gives the token's back and says
// so in reason. The state answered is the tighter of the two, the one
// allocation of the call.
func (e *Engine) takeRate(ctx context.Context, ent *entry, now int64) (*tokend.RateLimitState, bool, string) {
	var state tokend.RateLimitState // the only one to escape
	ok, reason := true, ""
	if ent.limit != nil {
		state, ok = e.take(ctx, ent.tokenRate(), now)
	}
	if ok && ent.ownerLimit() != nil {
		own, ownOK := e.take(ctx, e.ownerRate(ent, now), now)
		switch {
		case !ownOK:
			if ent.limit != nil {
				e.refund(ctx, ent.tokenRate(), now)
			}
			state, ok, reason = own, false, ReasonOwnerRateLimited
		case ent.limit != nil:
			state = tighter(state, own)
		default:
			state = own
		}
	}
	return &state, ok, reason
}

// peekRate reports the entry's limits without spending them.
func (e *Engine) peekRate(ctx context.Context, ent *entry, now int64) *tokend.RateLimitState {
	return e.eachRate(ctx, ent, now, e.peek)
}

// refundRate gives back what takeRate spent and reports the limits after it.
func (e *Engine) refundRate(ctx context.Context, ent *entry, now int64) *tokend.RateLimitState {
	return e.eachRate(ctx, ent, now, e.refund)
}

// eachRate runs do on the entry's limits, the token's then its owner's, and
// answers the tighter state; nil when the entry has no limit.
func (e *Engine) eachRate(ctx context.Context, ent *entry, now int64,
	do func(context.Context, rateLimit, int64) tokend.RateLimitState) *tokend.RateLimitState {
	var state tokend.RateLimitState
	switch {
	case ent.limit != nil && ent.ownerLimit() != nil:
		state = tighter(do(ctx, ent.tokenRate(), now), do(ctx, e.ownerRate(ent, now), now))
	case ent.limit != nil:
		state = do(ctx, ent.tokenRate(), now)
	case ent.ownerLimit() != nil:
		state = do(ctx, e.ownerRate(ent, now), now)
	default:
		return nil
	}
	return &state
}

// tighter is the state with fewer verifications left (on a tie, the one
// that takes longer to come back).
func tighter(a, b tokend.RateLimitState) tokend.RateLimitState {
	if b.Remaining < a.Remaining || (b.Remaining == a.Remaining && b.Reset > a.Reset) {
		return b
	}
	return a
}

// maxOwners bounds the owners whose shared limit this instance remembers.
const maxOwners = 262_144

// ownerTable holds the limiter of each owner with an owner rate limit,
// keyed by tokend.OwnerRateKey, in shards each with its own lock. It is
// asked on every verification of such an owner's tokens (not kept in the
// cache entries, so that every token of the owner, cached or not, counts
// against the one limiter).
//
// When a shard is full, limiters that are idle (their next allowed
// instant has passed: they hold the whole limit, as a new one would) are
// dropped, which loses nothing; only when none is idle is a busy one
// dropped, which forgives that owner early and keeps memory bounded.
type ownerTable struct {
	seed  maphash.Seed
	per   int
	shard [shards]ownerShard
}

type ownerShard struct {
	mu sync.RWMutex
	m  map[string]*limiter
}

func (t *ownerTable) init() {
	t.seed, t.per = maphash.MakeSeed(), maxOwners/shards
	for i := range t.shard {
		t.shard[i].m = make(map[string]*limiter)
	}
}

// get answers the owner's limiter, made on first use.
func (t *ownerTable) get(key string, now int64) *limiter {
	sh := &t.shard[maphash.String(t.seed, key)%shards]
	sh.mu.RLock()
	l := sh.m[key]
	sh.mu.RUnlock()
	if l != nil {
		return l
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l = sh.m[key]; l != nil {
		return l
	}
	if len(sh.m) >= t.per {
		dropped := false
		for k, x := range sh.m {
			if x.tat.Load() <= now {
				delete(sh.m, k)
				dropped = true
			}
		}
		if !dropped {
			for k := range sh.m {
				delete(sh.m, k)
				break
			}
		}
	}
	l = new(limiter)
	sh.m[key] = l
	return l
}

// failed counts a failure that looks like guessing from the client, here
// and in the shared limiter, whose answer blocks the address here too once
// the instances together have seen enough failures from it. Blocks are then
// checked here alone, without a round trip: an instance learns of a block
// at the latest with the next failure it sees from the address itself.
func (e *Engine) failed(ctx context.Context, client clientKey, now int64) {
	t := e.throttle
	t.fail(client, now)
	if e.shared == nil {
		return
	}
	d, err := e.shared.Failed(ctx, client.String(), t.limit, time.Duration(t.window))
	if err == nil && d > 0 {
		t.block(client, now+int64(d))
	}
}
