package verify

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// revokeBehindItsBack changes the stored token without telling the engine,
// as a change made by another instance whose notification was lost.
func (h *harness) revokeBehindItsBack(id string) {
	h.store.update(id, func(t *tokend.Token) { t.Status = tokend.StatusRevoked })
}

func TestInSyncACachedAnswerLastsTheCacheTTL(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_s" })
	h.code(sec)
	h.revokeBehindItsBack("tok_s")
	h.clock.Advance(DefaultCacheTTL - time.Second)
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("in sync, within the cache TTL: %s, want the cached VALID", c)
	}
	if n := h.store.lookups.Load(); n != 1 {
		t.Errorf("store lookups = %d, want 1", n)
	}
}

func TestOutOfSyncACachedAnswerIsTrustedOnlyWithinTheStaleWindow(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.StaleWindow = 5 * time.Second })
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_s" })
	h.clock.Advance(-10 * time.Second)
	h.code(sec) // cached well before the trouble started
	h.clock.Advance(10 * time.Second)

	h.e.OutOfSync(h.clock.Now())
	h.revokeBehindItsBack("tok_s")
	h.clock.Advance(5 * time.Second)
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("at the edge of the window: %s, want the cached VALID", c)
	}
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("store lookups within the window = %d, want 1", n)
	}
	h.clock.Advance(time.Nanosecond)
	if c := h.code(sec); c != tokend.CodeRevoked {
		t.Fatalf("past the window: %s, want REVOKED read from storage", c)
	}
}

func TestOutOfSyncPastTheWindowAnOutageIsAnErrorNeverValid(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.StaleWindow = 5 * time.Second })
	cached, uncached := h.token(), h.token()
	h.code(cached)
	h.e.OutOfSync(h.clock.Now())
	outage := errors.New("connection refused")
	h.store.set(func(s *fakeStore) { s.lookupErr = outage })

	if _, err := h.e.Verify(context.Background(), tokend.VerifyRequest{Token: uncached}); tokend.CodeOf(err) != tokend.ECodeUnavailable {
		t.Errorf("an uncached token during the outage: %v, want UNAVAILABLE", err)
	}
	h.clock.Advance(4 * time.Second)
	if c := h.code(cached); c != tokend.CodeValid {
		t.Errorf("a cached token within the window: %s, want VALID", c)
	}
	h.clock.Advance(2 * time.Second)
	res, err := h.e.Verify(context.Background(), tokend.VerifyRequest{Token: cached})
	if tokend.CodeOf(err) != tokend.ECodeUnavailable || res.Valid || !errors.Is(err, outage) {
		t.Fatalf("a cached token past the window: %+v, %v; want UNAVAILABLE", res, err)
	}
	// Storage back, still out of sync: answers come from storage.
	h.store.set(func(s *fakeStore) { s.lookupErr = nil })
	if c := h.code(cached); c != tokend.CodeValid {
		t.Errorf("storage back: %s, want VALID", c)
	}
}

func TestOutOfSyncAnAnswerReadSinceIsTrustedForTheWindowFromItsRead(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.StaleWindow = 5 * time.Second })
	sec := h.token()
	h.e.OutOfSync(h.clock.Now())
	h.clock.Advance(time.Minute)
	h.code(sec)
	h.clock.Advance(5 * time.Second)
	h.code(sec)
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("store lookups within the window of the read = %d, want 1", n)
	}
	h.clock.Advance(time.Nanosecond)
	h.code(sec)
	if n := h.store.lookups.Load(); n != 2 {
		t.Fatalf("store lookups past the window of the read = %d, want 2", n)
	}
}

func TestOutOfSyncKeepsTheEarliestTime(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.StaleWindow = 5 * time.Second })
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_s" })
	h.code(sec)
	start := h.clock.Now()
	h.e.OutOfSync(start)
	h.e.OutOfSync(start.Add(10 * time.Second)) // a failed reconnect later on
	h.revokeBehindItsBack("tok_s")
	h.clock.Advance(6 * time.Second)
	if c := h.code(sec); c != tokend.CodeRevoked {
		t.Fatalf("6s after the first OutOfSync: %s, want REVOKED", c)
	}
}

func TestNegativeStaleWindowTrustsNoCachedAnswerWhileOutOfSync(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.StaleWindow = -1 })
	sec := h.token()
	h.code(sec)
	h.e.OutOfSync(h.clock.Now())
	h.code(sec)
	h.code(sec)
	if n := h.store.lookups.Load(); n != 3 {
		t.Fatalf("store lookups = %d, want 3: every verification reads storage", n)
	}
	h.e.Resync()
	h.code(sec)
	h.code(sec)
	if n := h.store.lookups.Load(); n != 4 {
		t.Fatalf("store lookups in sync again = %d, want 4: cached again", n)
	}
}

func TestResyncDropsEveryCachedAnswer(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour; o.NegativeTTL = time.Hour })
	var secs []string
	for i := range 50 {
		secs = append(secs, h.token(func(t *tokend.Token) { t.ID = fmt.Sprintf("tok_r%d", i) }))
	}
	for _, s := range secs {
		h.code(s)
	}
	// A token created elsewhere after its secret was looked up here.
	late, err := secret.Generate("tkd")
	if err != nil {
		t.Fatal(err)
	}
	if c := h.code(late.Reveal()); c != tokend.CodeNotFound {
		t.Fatalf("an unknown secret: %s", c)
	}
	h.store.put(h.hasher, late.Reveal(), tokend.Credential{Token: tokend.Token{
		ID: "tok_late", AppID: "app_1", Type: tokend.TypeStandard, Access: tokend.AccessFull, Status: tokend.StatusActive}})
	h.e.OutOfSync(h.clock.Now())
	for i := range secs {
		h.revokeBehindItsBack(fmt.Sprintf("tok_r%d", i))
	}

	h.e.Resync()
	for i, s := range secs {
		if c := h.code(s); c != tokend.CodeRevoked {
			t.Fatalf("token %d after Resync: %s, want REVOKED read from storage", i, c)
		}
	}
	if c := h.code(late.Reveal()); c != tokend.CodeValid {
		t.Errorf("the secret once unknown, after Resync: %s, want VALID", c)
	}
	// In sync again: the fresh answers are cached as usual.
	before := h.store.lookups.Load()
	h.clock.Advance(time.Minute)
	for _, s := range secs {
		h.code(s)
	}
	if n := h.store.lookups.Load() - before; n != 0 {
		t.Errorf("%d store lookups after Resync for cached tokens, want 0", n)
	}
}

// A read that began before Resync may predate a change the listener missed:
// it answers its own request but is not cached.
func TestAReadOverlappingResyncIsNotCached(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour })
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_race" })
	h.e.OutOfSync(h.clock.Now())
	slow := &slowStore{fakeStore: h.store, during: func() {
		h.revokeBehindItsBack("tok_race")
		h.e.Resync()
	}}
	h.e.store = slow
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("the overlapping request: %s, want the VALID it read", c)
	}
	slow.during = nil
	if c := h.code(sec); c != tokend.CodeRevoked {
		t.Fatalf("the next request: %s, want REVOKED", c)
	}
}

// Resync keeps what the engine counts per token: a rate limit spent before
// a reconnect is still spent after it.
func TestResyncKeepsRateLimits(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) {
		t.RateLimit = &tokend.RateLimit{Limit: 2, Window: tokend.Duration(time.Hour)}
	})
	h.code(sec)
	h.code(sec)
	h.e.Resync()
	if c := h.code(sec); c != tokend.CodeRateLimited {
		t.Fatalf("third verification after Resync: %s, want RATE_LIMITED", c)
	}
}

// hangingStore answers nothing until the caller gives up, as a database
// behind a network that went silent.
type hangingStore struct{ *fakeStore }

func (s hangingStore) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	<-ctx.Done()
	return tokend.Credential{}, ctx.Err()
}

func TestAStorageReadThatHangsFailsAfterTheReadTimeout(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ReadTimeout = 20 * time.Millisecond })
	sec := h.token()
	h.e.store = hangingStore{h.store}
	// The caller's own deadline is far away: the engine's must fire first.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.e.Verify(ctx, tokend.VerifyRequest{Token: sec})
	if tokend.CodeOf(err) != tokend.ECodeUnavailable || !errors.Is(err, context.DeadlineExceeded) || res.Valid {
		t.Fatalf("Verify = %+v, %v; want UNAVAILABLE after the read timeout", res, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's deadline ran out: the engine set none of its own")
	}
}
