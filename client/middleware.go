// # Middleware
//
// (*Client).Middleware guards a net/http handler with tokend: every request
// must carry a token (Authorization: Bearer …, or X-API-Key) that tokend
// finds good for it, or it is answered as tokend's forward-auth door answers
// (401, 403, 429, each with a small application/problem+json body whose code
// is the error code and whose reason is the verification code) and never
// reaches the handler. A handler reads who called with TokenFrom:
//
//	tc, err := client.New(os.Getenv("TOKEND_URL"))
//	if err != nil { … }
//	guard := tc.Middleware(client.CacheTTL(5 * time.Second))
//	mux.Handle("GET /orders", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		tok, _ := client.TokenFrom(r.Context())
//		fmt.Fprintf(w, "hello %s of app %s\n", tok.Name, tok.AppID)
//	})))
//
// Without RequirePermissions or PermissionsFunc the permission asked for
// comes from the method, as at the forward-auth door: GET, HEAD and OPTIONS
// need tokend.PermRead, every other method tokend.PermWrite, so a read_only
// token cannot POST. (Put a CORS handler outside the middleware: browsers
// send preflight requests without credentials.)
//
// The client address checked against a token's allowed_ips is the host of
// the request's RemoteAddr. Behind a reverse proxy that is the proxy's;
// supply ClientIPFunc with code that trusts your proxy's header, and only
// your proxy's.
//
// Positive answers are cached in memory for CacheTTL (DefaultCacheTTL unless
// set; 0 disables), keyed by a SHA-256 digest of the token, the permissions,
// the client address and the origin, and never past the token's expires_at.
// Mind what a cache means: a cached answer is served without asking tokend,
// so for up to the TTL
//   - a revoked, disabled or deleted token still passes here, and
//   - requests are not counted by tokend: not against the token's rate
//     limit, not against its max_uses, and not in its usage and last-used
//     figures.
//
// Keep the TTL short, or 0 for tokens whose limits must hold exactly.
// Concurrent requests that miss the cache for the same key wait for one call
// to tokend and share its answer. A positive answer that used up the token's
// rate limit is not cached.
//
// Refusals are cached too, for RefusalTTL (by default the shorter of
// DefaultRefusalTTL and the TTL, so CacheTTL(0) alone turns all caching
// off), so that a client retrying a bad token does not make a call each
// time; RATE_LIMITED is never cached, since only tokend knows when its
// wait ends. A token enabled again, or given the permission it lacked, may
// be refused here for that long. The TypeScript and Python SDKs have the
// same defaults (5 s each, never RATE_LIMITED), but there a TTL of 0 leaves
// refusals cached: their refusal TTL does not follow the TTL.
//
// When tokend cannot answer (unreachable, an error status, a timeout) the
// middleware fails closed with 503, unless StaleIfUnavailable allows a
// positive answer up to that much older than the TTL to be served instead.
// OnError hears of every such failure.
//
// The Client needs no admin token for this: Verify sends none. A token whose
// checksum is wrong is refused (MALFORMED) without a call to tokend.
package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// Middleware defaults.
const (
	// DefaultCacheTTL is how long a positive answer is reused: short, since
	// it is also how long a revocation takes to be seen and how long
	// requests go uncounted by tokend (see the package documentation).
	DefaultCacheTTL = 5 * time.Second
	// DefaultRefusalTTL is how long a refusal is reused (see RefusalTTL).
	DefaultRefusalTTL = 5 * time.Second
	// DefaultCacheSize bounds the number of cached answers.
	DefaultCacheSize = 10_000
	// DefaultVerifyTimeout bounds one call to tokend.
	DefaultVerifyTimeout = 5 * time.Second
)

// MiddlewareOption configures the middleware made by (*Client).Middleware.
// An option given an impossible value (a negative duration, a cache of no
// entries) panics, when the middleware is made.
type MiddlewareOption func(*middleware)

// RequirePermissions makes every request need all of perms (resource:action,
// or tokend.PermRead / tokend.PermWrite) instead of the permission derived
// from its method. With no perms, any valid token passes.
func RequirePermissions(perms ...string) MiddlewareOption {
	p := slices.Sorted(slices.Values(perms))
	return func(m *middleware) {
		m.perms, m.permsSet, m.permsFn = p, true, nil
	}
}

// PermissionsFunc makes f decide what each request needs. f must not keep
// or change the request, and must answer quickly: it runs on every request.
func PermissionsFunc(f func(*http.Request) []string) MiddlewareOption {
	return func(m *middleware) {
		m.permsFn, m.perms, m.permsSet = f, nil, false
	}
}

// CacheTTL sets how long a positive answer is reused; 0 disables the cache.
func CacheTTL(d time.Duration) MiddlewareOption {
	if d < 0 {
		panic("client: CacheTTL must not be negative")
	}
	return func(m *middleware) { m.ttl = d }
}

// RefusalTTL sets how long a refusal (other than RATE_LIMITED) is reused;
// 0 caches none. Unless set, it is the shorter of DefaultRefusalTTL and the
// CacheTTL.
func RefusalTTL(d time.Duration) MiddlewareOption {
	if d < 0 {
		panic("client: RefusalTTL must not be negative")
	}
	return func(m *middleware) { m.refusalTTL = d }
}

// CacheSize bounds the number of cached answers (n ≥ 1). When the cache is
// full, an answer that can no longer be served, or else one of the oldest of
// a small sample, makes room.
func CacheSize(n int) MiddlewareOption {
	if n < 1 {
		panic("client: CacheSize must be at least 1")
	}
	return func(m *middleware) { m.size = n }
}

// StaleIfUnavailable lets a cached positive answer be served for up to d
// past its TTL (never past the token's expiry) while tokend cannot answer.
// The default, 0, fails closed. With a TTL of 0 and d > 0 every request asks
// tokend, and the last positive answer stands in only during an outage.
func StaleIfUnavailable(d time.Duration) MiddlewareOption {
	if d < 0 {
		panic("client: StaleIfUnavailable must not be negative")
	}
	return func(m *middleware) { m.grace = d }
}

// ClientIPFunc makes f answer the client address sent to tokend, for
// services behind a proxy. An empty answer skips the allowed_ips check
// for tokens that have none and refuses those that do.
func ClientIPFunc(f func(*http.Request) string) MiddlewareOption {
	return func(m *middleware) { m.ipFn = f }
}

// IgnoreOrigin stops the middleware from sending the request's Origin
// header to tokend. By default it sends it, so that standard tokens are
// refused from browsers and plugin tokens pass only from their origins.
func IgnoreOrigin() MiddlewareOption {
	return func(m *middleware) { m.noOrigin = true }
}

// OnError makes f hear of every request that tokend could not answer, for
// logging, whether the request was then refused with 503 or served from a
// stale answer. f runs on the request's goroutine; err holds no secret.
func OnError(f func(r *http.Request, err error)) MiddlewareOption {
	return func(m *middleware) { m.onError = f }
}

// VerifyTimeout bounds one call to tokend (DefaultVerifyTimeout unless set).
func VerifyTimeout(d time.Duration) MiddlewareOption {
	if d <= 0 {
		panic("client: VerifyTimeout must be positive")
	}
	return func(m *middleware) { m.timeout = d }
}

// Middleware answers net/http middleware that lets through only requests
// whose token tokend verifies, as the package documentation describes.
// Make it once and wrap as many handlers as needed with it: they share its
// cache.
func (c *Client) Middleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := &middleware{
		c:       c,
		ttl:     DefaultCacheTTL,
		size:    DefaultCacheSize,
		timeout: DefaultVerifyTimeout,
		// Unset: derived from the TTL below.
		refusalTTL: -1,
	}
	for _, o := range opts {
		o(m)
	}
	if m.refusalTTL < 0 {
		m.refusalTTL = min(DefaultRefusalTTL, m.ttl)
	}
	m.base = m.wall()
	if m.ttl > 0 || m.grace > 0 || m.refusalTTL > 0 {
		m.cache = newCache(m.size)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(w, r, next)
		})
	}
}

// TokenFrom answers the token that the middleware verified for the request
// with this context. The token may be shared with other requests and must
// not be modified.
func TokenFrom(ctx context.Context) (*tokend.VerifiedToken, bool) {
	v, ok := ctx.Value(identityKey{}).(*identity)
	if !ok {
		return nil, false
	}
	return v.token, true
}

// RateLimitFrom answers the rate limit state of the verified token, when
// it has a limit: as of the verification, which for a cached answer is an
// earlier request's. It must not be modified.
func RateLimitFrom(ctx context.Context) (*tokend.RateLimitState, bool) {
	v, ok := ctx.Value(identityKey{}).(*identity)
	if !ok || v.rateLimit == nil {
		return nil, false
	}
	return v.rateLimit, true
}

type identityKey struct{}

// identity is what the context carries: one allocation per answer, shared
// by every request the answer serves.
type identity struct {
	token     *tokend.VerifiedToken
	rateLimit *tokend.RateLimitState
}

type middleware struct {
	c        *Client
	perms    []string // sorted, when permsSet
	permsSet bool
	permsFn  func(*http.Request) []string
	ttl      time.Duration
	grace    time.Duration
	// refusalTTL: how long a refusal is cached (negative until options
	// are applied: unset).
	refusalTTL time.Duration
	size       int
	timeout    time.Duration
	ipFn       func(*http.Request) string
	noOrigin   bool
	onError    func(*http.Request, error)
	now        func() time.Time // nil for time.Now; tests set it
	base       time.Time        // when the middleware was made

	cache    *cache // nil when nothing is cached
	flightMu sync.Mutex
	flights  map[[32]byte]*flight
}

var (
	permsRead  = []string{tokend.PermRead}
	permsWrite = []string{tokend.PermWrite}
)

func (m *middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	tok := credentials(r)
	if tok == "" {
		writeRefusal(w, http.StatusUnauthorized, `Bearer realm="tokend"`, tokend.VerifyResult{}, "a bearer token is required")
		return
	}
	req := tokend.VerifyRequest{Token: tok, Permissions: m.permissions(r), IP: m.clientIP(r),
		UserAgent: clip(r.UserAgent(), maxUserAgent), Endpoint: tokend.EndpointMiddleware}
	if !m.noOrigin {
		req.Origin = r.Header.Get("Origin")
	}
	var key [32]byte
	var id *identity
	if m.cache != nil {
		key = cacheKey(&req)
		e, fresh := m.cache.get(key, m.elapsed())
		if fresh {
			m.serveCached(w, r, next, e)
			return
		}
		if e != nil {
			id = e.id
		}
	}
	// The checksum refuses a mistyped or made-up secret, an overlong one
	// included, as tokend would, without a call. (Only a checked secret is
	// ever cached, so a cache hit needs no check.)
	if _, ok := secret.Check(tok); !ok {
		refuse(w, tokend.VerifyResult{Code: tokend.CodeMalformed})
		return
	}
	if m.cache == nil {
		res, err := m.call(r.Context(), req)
		m.answer(w, r, next, res, err, nil)
		return
	}
	if m.ttl == 0 {
		// Without a TTL every request is tokend's to count: no sharing.
		res, err := m.call(r.Context(), req)
		if err == nil {
			m.remember(key, res)
		}
		m.answer(w, r, next, res, err, id)
		return
	}
	hit, res, err := m.shared(r.Context(), key, req)
	if hit != nil {
		m.serveCached(w, r, next, hit)
		return
	}
	m.answer(w, r, next, res, err, id)
}

// serveCached lets the request through with a cached identity, or refuses
// it with a cached refusal.
func (m *middleware) serveCached(w http.ResponseWriter, r *http.Request, next http.Handler, e *entry) {
	if e.refusal != nil {
		e.refusal.send(w)
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, e.id)))
}

// answer lets the request through on a positive answer, refuses it on a
// negative one, and on an error serves stale (a cached identity kept for
// outages) if there is one, else 503.
func (m *middleware) answer(w http.ResponseWriter, r *http.Request, next http.Handler, res tokend.VerifyResult, err error, stale *identity) {
	if err == nil && res.Valid && res.Token == nil {
		err = errors.New("client: tokend answered VALID without a token")
	}
	if err != nil {
		if m.onError != nil {
			m.onError(r, err)
		}
		if stale != nil {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, stale)))
			return
		}
		writeProblem(w, problemBody{Status: http.StatusServiceUnavailable, Code: tokend.ECodeUnavailable,
			Detail: "the token cannot be verified now; try again shortly"})
		return
	}
	if !res.Valid {
		refuse(w, res)
		return
	}
	id := &identity{token: res.Token, rateLimit: res.RateLimit}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
}

// call asks tokend, within the timeout.
func (m *middleware) call(ctx context.Context, req tokend.VerifyRequest) (tokend.VerifyResult, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	return m.c.Verify(ctx, req)
}

// flight is one call to tokend that requests with the same key wait for.
type flight struct {
	done chan struct{}
	res  tokend.VerifyResult
	err  error
}

// shared asks tokend once for all the concurrent requests with this key,
// or answers the cached identity that a call which ended meanwhile left.
// The call is detached from the first request's cancellation (a client
// going away must not fail the others) and bounded by the timeout; a
// waiting request gives up when its own context ends.
func (m *middleware) shared(ctx context.Context, key [32]byte, req tokend.VerifyRequest) (*entry, tokend.VerifyResult, error) {
	m.flightMu.Lock()
	if f, ok := m.flights[key]; ok {
		m.flightMu.Unlock()
		select {
		case <-f.done:
			return nil, f.res, f.err
		case <-ctx.Done():
			return nil, tokend.VerifyResult{}, context.Cause(ctx)
		}
	}
	// A call caches its answer before it leaves the map, so looking again
	// here, under the lock, makes one call per key and TTL however the
	// requests interleave.
	if e, fresh := m.cache.get(key, m.elapsed()); fresh {
		m.flightMu.Unlock()
		return e, tokend.VerifyResult{}, nil
	}
	if err := ctx.Err(); err != nil {
		// Nobody is left to answer; let the next request make the call.
		m.flightMu.Unlock()
		return nil, tokend.VerifyResult{}, context.Cause(ctx)
	}
	f := &flight{done: make(chan struct{})}
	if m.flights == nil {
		m.flights = make(map[[32]byte]*flight)
	}
	m.flights[key] = f
	m.flightMu.Unlock()

	defer func() {
		m.flightMu.Lock()
		delete(m.flights, key)
		m.flightMu.Unlock()
		close(f.done)
	}()
	f.res, f.err = m.call(context.WithoutCancel(ctx), req)
	if f.err == nil {
		m.remember(key, f.res)
	}
	return nil, f.res, f.err
}

// remember caches tokend's latest answer to the question of key: a
// positive one for the TTL (plus the grace for outages), never past the
// token's expiry, and not when the token's rate limit is used up (the next
// request must hear tokend's refusal); a refusal for the refusal TTL, but
// RATE_LIMITED. Either replaces what was cached, and an answer not cached
// drops it, so that an outage cannot bring back a token just refused.
func (m *middleware) remember(key [32]byte, res tokend.VerifyResult) {
	if !res.Valid || res.Code != tokend.CodeValid || res.Token == nil {
		if res.Valid || res.Code == tokend.CodeRateLimited || m.refusalTTL == 0 {
			m.cache.delete(key)
			return
		}
		now := m.elapsed()
		m.cache.put(key, &entry{refusal: prepare(res), fresh: now + m.refusalTTL, stale: now + m.refusalTTL}, now)
		return
	}
	if rl := res.RateLimit; rl != nil && rl.Remaining <= 0 || m.ttl == 0 && m.grace == 0 {
		m.cache.delete(key)
		return
	}
	now := m.elapsed()
	fresh, stale := now+m.ttl, now+m.ttl+m.grace
	if exp := res.Token.ExpiresAt; exp != nil {
		left := exp.Sub(m.wall())
		if left <= 0 {
			m.cache.delete(key)
			return
		}
		fresh, stale = min(fresh, now+left), min(stale, now+left)
	}
	m.cache.put(key, &entry{id: &identity{token: res.Token, rateLimit: res.RateLimit}, fresh: fresh, stale: stale}, now)
}

// wall answers the time of day, to compare with expiry dates.
func (m *middleware) wall() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

// elapsed answers the time since the middleware was made, the cache's
// clock: monotonic, so that a change of the time of day does not stretch a
// TTL, and cheaper to read than the time of day.
func (m *middleware) elapsed() time.Duration {
	if m.now != nil {
		return m.now().Sub(m.base)
	}
	return time.Since(m.base)
}

func (m *middleware) permissions(r *http.Request) []string {
	switch {
	case m.permsSet:
		return m.perms
	case m.permsFn != nil:
		p := m.permsFn(r)
		if !slices.IsSorted(p) {
			p = slices.Sorted(slices.Values(p))
		}
		return p
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return permsRead
	}
	return permsWrite
}

// clientIP answers the client address as tokend takes it: one IP address
// without a zone (tokend refuses anything else with 422), or "" when there
// is none (a Unix socket peer, or an ipFn answer that is not an address).
func (m *middleware) clientIP(r *http.Request) string {
	ip := r.RemoteAddr
	if m.ipFn != nil {
		ip = m.ipFn(r)
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return ""
	case a.Zone() != "":
		return a.WithZone("").String()
	}
	return ip
}

// credentials reads the token from Authorization: Bearer, or X-API-Key.
func credentials(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			if tok = strings.TrimSpace(tok); tok != "" {
				return tok
			}
		}
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// cacheKey digests everything the answer depends on, each field length-
// prefixed so that no two requests share a key. The token itself is kept
// nowhere.
func cacheKey(req *tokend.VerifyRequest) [32]byte {
	var buf [256]byte
	b := appendField(buf[:0], req.Token)
	b = binary.AppendUvarint(b, uint64(len(req.Permissions)))
	for _, p := range req.Permissions {
		b = appendField(b, p)
	}
	b = appendField(b, req.IP)
	b = appendField(b, req.Origin)
	return sha256.Sum256(b)
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// entry is a cached answer: a positive one (id) served until fresh, and
// while tokend cannot answer until stale; or a refusal, served until fresh,
// which is stale (times on the middleware's elapsed clock).
type entry struct {
	id           *identity
	refusal      *refusal
	fresh, stale time.Duration
}

// cache is a bounded map of entries, split in shards so that concurrent
// requests seldom wait on one lock. No lock is held during a call to
// tokend.
type cache struct {
	shards   []shard
	perShard int
}

type shard struct {
	mu sync.Mutex
	m  map[[32]byte]*entry
	_  [48]byte // keep shards on separate cache lines
}

func newCache(size int) *cache {
	n := 16
	if size < 64 {
		n = 1
	}
	c := &cache{shards: make([]shard, n), perShard: size / n}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*entry)
	}
	return c
}

func (c *cache) shard(key [32]byte) *shard { return &c.shards[int(key[0])%len(c.shards)] }

// get answers the entry and whether it is fresh; a stale one is answered
// for use during an outage, and a dead one is dropped.
func (c *cache) get(key [32]byte, now time.Duration) (e *entry, fresh bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, false
	}
	if now >= e.stale {
		delete(s.m, key)
		return nil, false
	}
	return e, now < e.fresh
}

// evictSample is how many entries a full shard looks at to choose the one
// to drop.
const evictSample = 8

func (c *cache) put(key [32]byte, e *entry, now time.Duration) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.perShard {
		var victim [32]byte
		var oldest time.Duration
		n := 0
		for k, v := range s.m {
			if now >= v.stale {
				victim = k
				break
			}
			if n == 0 || v.stale < oldest {
				victim, oldest = k, v.stale
			}
			if n++; n == evictSample {
				break
			}
		}
		delete(s.m, victim)
	}
	s.m[key] = e
}

func (c *cache) delete(key [32]byte) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// problemBody is the RFC 9457 document of a refusal, in the shape tokend's
// own answers have.
type problemBody struct {
	Type   string           `json:"type"`
	Title  string           `json:"title"`
	Status int              `json:"status"`
	Detail string           `json:"detail,omitempty"`
	Code   tokend.ErrorCode `json:"code"`
	Reason tokend.Code      `json:"reason,omitempty"`
}

// refuse answers a negative verification as tokend's forward-auth door
// does: 401 for a token that is no good, 403 for a good token that may not
// do this, 429 when rate limited.
// refusal is a refused answer as refuse writes it, made once when it is
// cached: a cached refusal is sent again without encoding it again.
type refusal struct {
	header http.Header
	status int
	body   []byte
}

// prepare records what refuse writes for res.
func prepare(res tokend.VerifyResult) *refusal {
	r := &refusal{header: http.Header{}}
	refuse(r, res)
	return r
}

func (r *refusal) Header() http.Header         { return r.header }
func (r *refusal) WriteHeader(status int)      { r.status = status }
func (r *refusal) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }

// send writes the recorded refusal to w. The header values are shared by
// every request the refusal serves; nothing changes them after this.
func (r *refusal) send(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func refuse(w http.ResponseWriter, res tokend.VerifyResult) {
	status, challenge := res.Code.Status(), ""
	switch status {
	case http.StatusUnauthorized:
		challenge = `Bearer realm="tokend", error="invalid_token"`
	case http.StatusForbidden:
		if res.Code == tokend.CodeInsufficientPermissions {
			challenge = `Bearer realm="tokend", error="insufficient_scope"`
		}
	case http.StatusTooManyRequests:
		retry := 1
		if res.RateLimit != nil && res.RateLimit.RetryAfter > 0 {
			retry = res.RateLimit.RetryAfter
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	writeRefusal(w, status, challenge, res, res.Describe())
}

func writeRefusal(w http.ResponseWriter, status int, challenge string, res tokend.VerifyResult, detail string) {
	h := w.Header()
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	if rl := res.RateLimit; rl != nil {
		h.Set("RateLimit-Limit", strconv.Itoa(rl.Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(rl.Remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(rl.Reset))
	}
	code := tokend.ECodeUnauthenticated
	switch status {
	case http.StatusForbidden:
		code = tokend.ECodeForbidden
	case http.StatusTooManyRequests:
		code = tokend.ECodeRateLimited
	}
	writeProblem(w, problemBody{Status: status, Code: code, Reason: res.Code, Detail: detail})
}

func writeProblem(w http.ResponseWriter, p problemBody) {
	p.Type, p.Title = "about:blank", http.StatusText(p.Status)
	b, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

// maxUserAgent is the longest user_agent POST /v1/verify accepts, in
// characters; a longer User-Agent is cut (to as many bytes, so never more
// characters) rather than failing the verification.
const maxUserAgent = 512

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
