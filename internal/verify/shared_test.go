package verify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// fakeShared is a shared limiter in memory that really limits, with the
// engine's own limiter per token and fixed failure windows per address, and
// that a test can take down.
type fakeShared struct {
	now   func() time.Time
	down  atomic.Bool
	calls atomic.Int64

	mu       sync.Mutex
	limiters map[string]*limiter
	fails    map[string]*failures
}

var errSharedDown = errors.New("shared limiter down")

func newFakeShared(now func() time.Time) *fakeShared {
	return &fakeShared{now: now, limiters: make(map[string]*limiter), fails: make(map[string]*failures)}
}

func (f *fakeShared) limiterOf(id string) (*limiter, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, errSharedDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.limiters[id]
	if l == nil {
		l = &limiter{}
		f.limiters[id] = l
	}
	return l, nil
}

func (f *fakeShared) TakeRate(_ context.Context, id string, rl tokend.RateLimit) (tokend.RateLimitState, bool, error) {
	l, err := f.limiterOf(id)
	if err != nil {
		return tokend.RateLimitState{}, false, err
	}
	s, ok := l.take(newLimitSpec(rl), f.now().UnixNano())
	return s, ok, nil
}

func (f *fakeShared) PeekRate(_ context.Context, id string, rl tokend.RateLimit) (tokend.RateLimitState, error) {
	l, err := f.limiterOf(id)
	if err != nil {
		return tokend.RateLimitState{}, err
	}
	return l.peek(newLimitSpec(rl), f.now().UnixNano()), nil
}

func (f *fakeShared) RefundRate(_ context.Context, id string, rl tokend.RateLimit) (tokend.RateLimitState, error) {
	l, err := f.limiterOf(id)
	if err != nil {
		return tokend.RateLimitState{}, err
	}
	s := newLimitSpec(rl)
	l.refund(s)
	return l.peek(s, f.now().UnixNano()), nil
}

func (f *fakeShared) Failed(_ context.Context, client string, limit int, window time.Duration) (time.Duration, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return 0, errSharedDown
	}
	now := f.now().UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.fails[client]
	if fl == nil || now >= fl.start+int64(window) {
		fl = &failures{start: now}
		f.fails[client] = fl
	}
	fl.count++
	if fl.count < limit {
		return 0, nil
	}
	return time.Duration(fl.start + int64(window) - now), nil
}

// instances makes n engines on one store and clock sharing one limiter, as
// n tokend instances on one database and one Redis.
func instances(t *testing.T, n int, edit ...func(o *Options)) (*harness, *fakeShared, []*Engine) {
	h := newHarness(t, edit...)
	shared := newFakeShared(h.clock.Now)
	var es []*Engine
	for range n {
		o := Options{Store: h.store, Hasher: h.hasher, Now: h.clock.Now, Shared: shared}
		for _, f := range edit {
			f(&o)
		}
		es = append(es, New(o))
	}
	return h, shared, es
}

func verifyOn(t *testing.T, e *Engine, r tokend.VerifyRequest) tokend.VerifyResult {
	t.Helper()
	res, err := e.Verify(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSharedRateLimitHoldsAcrossInstances(t *testing.T) {
	h, _, es := instances(t, 2)
	sec := h.token(func(t *tokend.Token) {
		t.RateLimit = &tokend.RateLimit{Limit: 5, Window: tokend.Duration(time.Minute)}
	})
	valid := 0
	for i := range 10 {
		res := verifyOn(t, es[i%2], tokend.VerifyRequest{Token: sec})
		if res.Valid {
			valid++
			if rl := res.RateLimit; rl == nil || rl.Remaining != 5-valid {
				t.Fatalf("request %d: rate limit %+v, want remaining %d across both", i+1, rl, 5-valid)
			}
		} else if res.Code != tokend.CodeRateLimited {
			t.Fatalf("request %d: %s", i+1, res.Code)
		}
	}
	if valid != 5 {
		t.Fatalf("%d VALID across two instances, want 5", valid)
	}
	// A refusal for another reason reports the shared state unspent.
	res := verifyOn(t, es[0], tokend.VerifyRequest{Token: sec, Origin: "https://browser.example"})
	if res.Code != tokend.CodeOriginNotAllowed || res.RateLimit == nil || res.RateLimit.Remaining != 0 {
		t.Fatalf("refused for its origin: %s %+v, want the shared limit (remaining 0)", res.Code, res.RateLimit)
	}
}

func TestTokensWithoutALimitNeverAskTheSharedLimiter(t *testing.T) {
	h, shared, es := instances(t, 1, func(o *Options) { o.FailureLimit = 10 })
	sec := h.token()
	for range 50 {
		if c := verifyOn(t, es[0], tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}).Code; c != tokend.CodeValid {
			t.Fatal(c)
		}
	}
	if n := shared.calls.Load(); n != 0 {
		t.Fatalf("valid verifications of a token without a limit called the shared limiter %d times", n)
	}
}

// When the shared limiter fails, the instance limits on its own, starting
// from what it let through itself.
func TestSharedLimiterDownFallsBackOnTheLocalLimit(t *testing.T) {
	h, shared, es := instances(t, 2)
	sec := h.token(func(t *tokend.Token) {
		t.RateLimit = &tokend.RateLimit{Limit: 4, Window: tokend.Duration(time.Hour)}
	})
	a, b := es[0], es[1]
	for _, e := range []*Engine{a, a, b} {
		if c := verifyOn(t, e, tokend.VerifyRequest{Token: sec}).Code; c != tokend.CodeValid {
			t.Fatal(c)
		}
	}
	shared.down.Store(true)
	// a spent 2 of its own 4; b spent 1.
	for name, c := range map[string]struct {
		e    *Engine
		want int
	}{"a": {a, 2}, "b": {b, 3}} {
		valid := 0
		for range 10 {
			if verifyOn(t, c.e, tokend.VerifyRequest{Token: sec}).Valid {
				valid++
			}
		}
		if valid != c.want {
			t.Errorf("instance %s with the shared limiter down: %d VALID, want %d", name, valid, c.want)
		}
	}
	shared.down.Store(false)
	if c := verifyOn(t, a, tokend.VerifyRequest{Token: sec}).Code; c != tokend.CodeValid {
		t.Fatalf("back on the shared limit (3 of 4 spent there): %s, want VALID", c)
	}
	if c := verifyOn(t, b, tokend.VerifyRequest{Token: sec}).Code; c != tokend.CodeRateLimited {
		t.Fatalf("back on the shared limit, all spent: %s, want RATE_LIMITED", c)
	}
}

func TestSharedFailureThrottle(t *testing.T) {
	h, shared, es := instances(t, 2, func(o *Options) { o.FailureLimit = 4 })
	good := h.token()
	ip := tokend.PeerKey(tokend.DoorVerify, "198.51.100.23")
	unknown, _ := secret.Generate("tkd")
	failures := 0
	for i := range 20 {
		res := verifyOn(t, es[i%2], tokend.VerifyRequest{Token: unknown.Reveal(), Peer: ip})
		if res.Reason != ReasonClientThrottled {
			failures++
		}
	}
	// Each instance learns of the block at its next failure from the
	// address: at most instances-1 failures beyond the limit.
	if failures < 4 || failures > 5 {
		t.Fatalf("%d failures got through two instances, want 4 to 5", failures)
	}
	shared.mu.Lock()
	_, keyed := shared.fails["verify|198.51.100.23"]
	shared.mu.Unlock()
	if !keyed {
		t.Errorf("the shared limiter was not told the peer with its door: %v", shared.fails)
	}
	calls := shared.calls.Load()
	for _, e := range es {
		if res := verifyOn(t, e, tokend.VerifyRequest{Token: good, Peer: ip}); res.Reason != ReasonClientThrottled {
			t.Fatalf("a blocked address was let through: %+v", res)
		}
	}
	if shared.calls.Load() != calls {
		t.Error("checking a blocked address asked the shared limiter")
	}
	// The block ends with the shared window on every instance.
	h.clock.Advance(time.Minute)
	for _, e := range es {
		if c := verifyOn(t, e, tokend.VerifyRequest{Token: good, Peer: ip}).Code; c != tokend.CodeValid {
			t.Fatalf("after the window: %s", c)
		}
	}
}

func TestFailureThrottleWithTheSharedLimiterDown(t *testing.T) {
	_, shared, es := instances(t, 2, func(o *Options) { o.FailureLimit = 3 })
	shared.down.Store(true)
	failures := 0
	for i := range 20 {
		if verifyOn(t, es[i%2], tokend.VerifyRequest{Token: "garbage", Peer: "verify|192.0.2.9"}).Reason != ReasonClientThrottled {
			failures++
		}
	}
	if failures != 6 {
		t.Fatalf("%d failures through two instances counting alone, want 3 each", failures)
	}
}

func TestVerificationsAreCounted(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 2 })
	sec := h.token()
	unknown, _ := secret.Generate("tkd")
	for range 3 {
		h.verify(tokend.VerifyRequest{Token: sec})
	}
	h.verify(tokend.VerifyRequest{Token: "garbage", Peer: "verify|192.0.2.1"})
	h.verify(tokend.VerifyRequest{Token: unknown.Reveal(), Peer: "verify|192.0.2.1"})
	h.verify(tokend.VerifyRequest{Token: h.token(), Peer: "verify|192.0.2.1"}) // throttled
	other, _ := secret.Generate("tkd")
	h.store.set(func(s *fakeStore) { s.lookupErr = errors.New("storage down") })
	if _, err := h.e.Verify(context.Background(), tokend.VerifyRequest{Token: other.Reveal()}); err == nil {
		t.Fatal("no error with storage down")
	}
	want := map[tokend.Code]uint64{
		tokend.CodeValid: 3, tokend.CodeMalformed: 1, tokend.CodeNotFound: 1, tokend.CodeRateLimited: 1,
	}
	for _, c := range tokend.Codes {
		if got := h.e.Verifications(c); got != want[c] {
			t.Errorf("%s counted %d times, want %d", c, got, want[c])
		}
	}
	if h.e.Throttled() != 1 || h.e.StorageErrors() != 1 {
		t.Errorf("throttled %d, storage errors %d; want 1 and 1", h.e.Throttled(), h.e.StorageErrors())
	}
	if n, b := h.e.CacheSize(); n != 2 || b <= 0 {
		t.Errorf("cache size = %d entries, %d bytes; want 2 entries (one token, one unknown)", n, b)
	}
	h.store.set(func(s *fakeStore) { s.usageErr = errors.New("storage down") })
	h.e.Flush(context.Background())
	if h.e.FlushErrors() != 1 {
		t.Errorf("flush errors = %d, want 1", h.e.FlushErrors())
	}
}

// Counting costs the cached path no allocation.
func TestCountingAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	h := newHarness(t)
	sec := h.token()
	r := tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}
	h.verify(r)
	if n := testing.AllocsPerRun(100, func() { h.e.Verify(context.Background(), r) }); n != 0 {
		t.Fatalf("a cached verification allocates %v times", n)
	}
}

// Admin tokens checked by the management API and the dashboard are counted
// apart: scripts driving the API do not show up as product verifications.
func TestAdminAuthenticationsAreCountedApart(t *testing.T) {
	h := newHarness(t)
	sec := h.token()
	h.verify(tokend.VerifyRequest{Token: sec})
	h.verify(tokend.VerifyRequest{Token: sec, Endpoint: tokend.EndpointAdmin})
	h.verify(tokend.VerifyRequest{Token: sec, Endpoint: tokend.EndpointAdmin})
	h.verify(tokend.VerifyRequest{Token: "junk", Endpoint: tokend.EndpointDashboard})
	h.verify(tokend.VerifyRequest{Token: sec, Endpoint: tokend.EndpointSelf})
	for c, want := range map[tokend.Code][2]uint64{
		tokend.CodeValid:     {2, 2}, // verify and self; admin twice
		tokend.CodeMalformed: {0, 1},
	} {
		if got := [2]uint64{h.e.Verifications(c), h.e.AdminAuthentications(c)}; got != want {
			t.Errorf("%s: verifications, admin = %v, want %v", c, got, want)
		}
	}
}

// A peek (GET /v1/self) reports the rate limit without spending it and
// counts no use: the token's verifications are all still there after it.
func TestPeekSpendsNothing(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) {
		t.RateLimit = &tokend.RateLimit{Limit: 2, Window: tokend.Duration(time.Hour)}
		t.MaxUses = ptr(int64(2))
	})
	for range 5 {
		res := h.verify(tokend.VerifyRequest{Token: sec, Peek: true})
		if !res.Valid || res.RateLimit == nil || res.RateLimit.Remaining != 2 {
			t.Fatalf("peek: %+v", res)
		}
	}
	if h.store.takes.Load() != 0 {
		t.Errorf("peeks took %d uses", h.store.takes.Load())
	}
	for i := range 2 {
		if res := h.verify(tokend.VerifyRequest{Token: sec}); !res.Valid {
			t.Fatalf("verification %d after the peeks: %+v", i, res)
		}
	}
	if res := h.verify(tokend.VerifyRequest{Token: sec, Peek: true}); res.Valid || res.Code != tokend.CodeUsageExceeded {
		t.Errorf("peek of a used-up token: %+v, want USAGE_EXCEEDED", res)
	}
}
