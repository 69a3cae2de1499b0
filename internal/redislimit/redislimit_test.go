package redislimit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/redislimit"
	"github.com/tokend/tokend/internal/redislimit/redistest"
)

// clock is a test clock that moves only when told.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// open makes a limiter on the test server with a key prefix of the test's
// own. A generous timeout keeps a loaded machine from playing an outage.
func open(t *testing.T, url, prefix string, edit ...func(*redislimit.Options)) *redislimit.Limiter {
	t.Helper()
	o := redislimit.Options{Prefix: prefix, Timeout: 5 * time.Second}
	for _, f := range edit {
		f(&o)
	}
	l, err := redislimit.Open(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func withClock(c *clock) func(*redislimit.Options) {
	return func(o *redislimit.Options) { o.Now = c.Now }
}

func perMinute(n int) tokend.RateLimit {
	return tokend.RateLimit{Limit: n, Window: tokend.Duration(time.Minute)}
}

func take(t *testing.T, l *redislimit.Limiter, id string, rl tokend.RateLimit) (tokend.RateLimitState, bool) {
	t.Helper()
	s, ok, err := l.TakeRate(context.Background(), id, rl)
	if err != nil {
		t.Fatalf("TakeRate: %v", err)
	}
	return s, ok
}

// The same behaviour, figure for figure, as the engine's own limiter
// (internal/verify TestRateLimit).
func TestRateLimitBehavesAsTheLocalLimiter(t *testing.T) {
	url, c := redistest.URL(t), newClock()
	l := open(t, url, redistest.Prefix(t), withClock(c))
	rl := perMinute(3)
	for i, wantRemaining := range []int{2, 1, 0} {
		s, ok := take(t, l, "tok_a", rl)
		if !ok || s.Limit != 3 || s.Remaining != wantRemaining || s.RetryAfter != 0 {
			t.Fatalf("request %d: %v %+v, want allowed with remaining %d", i+1, ok, s, wantRemaining)
		}
	}
	s, ok := take(t, l, "tok_a", rl)
	if ok {
		t.Fatal("request 4 was allowed")
	}
	// One of three slots comes back every 20s.
	if s.Remaining != 0 || s.RetryAfter != 20 || s.Reset != 60 {
		t.Fatalf("refused state = %+v, want remaining 0, retry_after 20, reset 60", s)
	}
	// Refused requests and peeks do not spend the limit.
	c.Advance(20 * time.Second)
	for range 5 {
		if p, err := l.PeekRate(context.Background(), "tok_a", rl); err != nil || p.Remaining != 1 {
			t.Fatalf("peek after 20s = %+v %v, want remaining 1", p, err)
		}
	}
	if _, ok := take(t, l, "tok_a", rl); !ok {
		t.Fatal("after 20s: refused")
	}
	if _, ok := take(t, l, "tok_a", rl); ok {
		t.Fatal("second request after 20s: allowed")
	}
	// After a whole window of quiet the full limit is back.
	c.Advance(time.Minute)
	for i := range 3 {
		if _, ok := take(t, l, "tok_a", rl); !ok {
			t.Fatalf("after the window, request %d: refused", i+1)
		}
	}
	if _, ok := take(t, l, "tok_a", rl); ok {
		t.Fatal("after the window, request 4: allowed")
	}
	// Another token has a limit of its own.
	if _, ok := take(t, l, "tok_b", rl); !ok {
		t.Fatal("another token was refused")
	}
}

func TestRateLimitIsExactWhenTheWindowDoesNotDivide(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	for _, limit := range []int{1, 7, 999, 1000} {
		c := newClock()
		l := open(t, url, prefix, withClock(c))
		id := fmt.Sprint("tok_", limit)
		rl := perMinute(limit)
		count := func() int {
			n := 0
			for range limit + 5 {
				if _, ok := take(t, l, id, rl); ok {
					n++
				}
			}
			return n
		}
		if n := count(); n != limit {
			t.Errorf("limit %d per minute: %d passed in a burst", limit, n)
		}
		c.Advance(time.Minute)
		if n := count(); n != limit {
			t.Errorf("limit %d per minute: %d passed after the window", limit, n)
		}
	}
}

func TestRefundGivesOneBack(t *testing.T) {
	url, c := redistest.URL(t), newClock()
	l := open(t, url, redistest.Prefix(t), withClock(c))
	rl := perMinute(2)
	take(t, l, "tok_r", rl)
	take(t, l, "tok_r", rl)
	s, err := l.RefundRate(context.Background(), "tok_r", rl)
	if err != nil || s.Remaining != 1 {
		t.Fatalf("refund = %+v %v, want remaining 1", s, err)
	}
	if _, ok := take(t, l, "tok_r", rl); !ok {
		t.Fatal("the refunded verification was not given back")
	}
	if _, ok := take(t, l, "tok_r", rl); ok {
		t.Fatal("more than the limit after a refund")
	}
}

// Limiters on separate connections, as on separate instances, share one
// limit; with Redis' own clock, and the key lives no longer than the
// backlog it holds.
func TestRateLimitIsSharedAndItsKeyExpires(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	a, b := open(t, url, prefix), open(t, url, prefix)
	rl := tokend.RateLimit{Limit: 5, Window: tokend.Duration(time.Hour)}
	allowed := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if _, ok := take(t, l, "tok_shared", rl); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 10 allowed across two limiters, want exactly 5", allowed)
	}
	rdb := redistest.Client(t)
	ttl, err := rdb.PTTL(context.Background(), prefix+"rl:tok_shared").Result()
	if err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("the rate limit key's TTL is %v (%v), want within (0, 1h]", ttl, err)
	}
	if _, err := rdb.Get(context.Background(), prefix+"rl:other").Result(); err == nil {
		t.Fatal("a key exists for a token never asked about")
	}
}

func TestFailuresAreCountedAcrossLimitersAndExpire(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	a, b := open(t, url, prefix), open(t, url, prefix)
	ctx := context.Background()
	const window = time.Minute
	for i, l := range []*redislimit.Limiter{a, b} {
		if d, err := l.Failed(ctx, "198.51.100.7", 3, window); err != nil || d != 0 {
			t.Fatalf("failure %d: blocked %v (%v), want not blocked", i+1, d, err)
		}
	}
	d, err := a.Failed(ctx, "198.51.100.7", 3, window)
	if err != nil || d <= 0 || d > window {
		t.Fatalf("third failure: blocked %v (%v), want blocked for the rest of the minute", d, err)
	}
	if d, _ := b.Failed(ctx, "198.51.100.7", 3, window); d <= 0 {
		t.Fatal("the other limiter does not block after the shared limit")
	}
	if d, _ := b.Failed(ctx, "203.0.113.9", 3, window); d != 0 {
		t.Fatal("another address is blocked")
	}
	ttl, err := redistest.Client(t).PTTL(ctx, prefix+"fail:198.51.100.7").Result()
	if err != nil || ttl <= 0 || ttl > window {
		t.Fatalf("the failure key's TTL is %v (%v), want within (0, 1m]", ttl, err)
	}
}

// The engine keys failures by peer and door ("verify|<address>",
// "admin|<address>"): each key is counted on its own, under fail:<key>.
func TestFailuresAreCountedPerDoorAndPeer(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	l := open(t, url, prefix)
	ctx := context.Background()
	for range 2 {
		l.Failed(ctx, "verify|198.51.100.7", 2, time.Minute)
	}
	if d, err := l.Failed(ctx, "verify|198.51.100.7", 2, time.Minute); err != nil || d <= 0 {
		t.Fatalf("verify|198.51.100.7 after its limit: blocked %v (%v)", d, err)
	}
	if d, err := l.Failed(ctx, "admin|198.51.100.7", 2, time.Minute); err != nil || d != 0 {
		t.Fatalf("the same address at the admin door: blocked %v (%v), want not blocked", d, err)
	}
	rdb := redistest.Client(t)
	for key, want := range map[string]string{"verify|198.51.100.7": "3", "admin|198.51.100.7": "1"} {
		n, err := rdb.Get(ctx, prefix+"fail:"+key).Result()
		if err != nil || n != want {
			t.Errorf("count under fail:%s = %q (%v), want %s", key, n, err, want)
		}
	}
}

func TestFailureWindowEnds(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	l := open(t, url, prefix)
	ctx := context.Background()
	const window = 300 * time.Millisecond
	l.Failed(ctx, "192.0.2.1", 1, window)
	rdb := redistest.Client(t)
	waitFor(t, 10*time.Second, "the failure count to expire", func() bool {
		n, err := rdb.Exists(ctx, prefix+"fail:192.0.2.1").Result()
		return err == nil && n == 0
	})
	// A new window: one failure is allowed again before the block.
	if d, err := l.Failed(ctx, "192.0.2.1", 2, window); err != nil || d != 0 {
		t.Fatalf("first failure of a new window: blocked %v (%v)", d, err)
	}
}

// logs records the messages logged through it.
type logs struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logs) Enabled(context.Context, slog.Level) bool { return true }
func (r *logs) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logs) WithGroup(string) slog.Handler            { return r }
func (r *logs) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

// count answers how many messages start with s.
func (r *logs) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, s) {
			n++
		}
	}
	return n
}

func (r *logs) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const (
	downLine = "redis is unreachable"
	upLine   = "redis answers again"
)

// An outage: the first call that meets it fails and marks Redis down, the
// calls after it fail without waiting for Redis, one line is logged, and
// when Redis is back the limiter comes back by itself with the count it had.
func TestOutageFailsFastAndRecovers(t *testing.T) {
	for _, outage := range []string{"cut", "stalled"} {
		t.Run(outage, func(t *testing.T) {
			proxy := redistest.NewProxy(t)
			rec := &logs{}
			prefix := redistest.Prefix(t)
			l := open(t, proxy.URL(), prefix, func(o *redislimit.Options) {
				o.Timeout = 200 * time.Millisecond
				o.ProbeMin, o.ProbeMax = 10*time.Millisecond, 50*time.Millisecond
				o.Logger = slog.New(rec)
			})
			rl := tokend.RateLimit{Limit: 3, Window: tokend.Duration(time.Hour)}
			if _, ok := take(t, l, "tok_f", rl); !ok || !l.Up() {
				t.Fatal("before the outage: refused or down")
			}

			if outage == "cut" {
				proxy.Cut()
			} else {
				proxy.Stall()
			}
			if _, _, err := l.TakeRate(context.Background(), "tok_f", rl); err == nil {
				t.Fatal("a verification during the outage reached Redis")
			}
			if l.Up() {
				t.Fatal("Up after a failed command")
			}
			for range 20 {
				if _, _, err := l.TakeRate(context.Background(), "tok_f", rl); !errors.Is(err, redislimit.ErrDown) {
					t.Fatalf("during the outage: %v, want ErrDown without asking Redis", err)
				}
				if _, err := l.Failed(context.Background(), "192.0.2.1", 5, time.Minute); !errors.Is(err, redislimit.ErrDown) {
					t.Fatalf("failure during the outage: %v, want ErrDown", err)
				}
			}
			if n := rec.count(downLine); n != 1 {
				t.Errorf("the outage was logged %d times, want once:\n%s", n, rec)
			}
			if l.Fallbacks() < 41 || l.Errors() < 1 {
				t.Errorf("fallbacks %d, errors %d: want every failed call counted", l.Fallbacks(), l.Errors())
			}

			proxy.Restore()
			waitFor(t, 20*time.Second, "the limiter to find Redis again", l.Up)
			if n := rec.count(upLine); n != 1 {
				t.Errorf("the recovery was logged %d times, want once:\n%s", n, rec)
			}
			// The count kept on Redis is the one before the outage.
			for i, want := range []bool{true, true, false} {
				if _, ok := take(t, l, "tok_f", rl); ok != want {
					t.Fatalf("after the outage, request %d: allowed %v, want %v", i+1, ok, want)
				}
			}
		})
	}
}

// A Redis that does not answer at start is no reason not to start.
func TestOpenWhileRedisIsDown(t *testing.T) {
	proxy := redistest.NewProxy(t)
	proxy.Cut()
	rec := &logs{}
	l := open(t, proxy.URL(), redistest.Prefix(t), func(o *redislimit.Options) {
		o.Timeout = 200 * time.Millisecond
		o.ProbeMin, o.ProbeMax = 10*time.Millisecond, 50*time.Millisecond
		o.Logger = slog.New(rec)
	})
	if l.Up() || rec.count(downLine) != 1 {
		t.Fatalf("up %v; log:\n%s", l.Up(), rec)
	}
	proxy.Restore()
	waitFor(t, 20*time.Second, "the limiter to find Redis", l.Up)
	if _, ok := take(t, l, "tok_o", perMinute(1)); !ok {
		t.Fatal("refused after Redis came")
	}
}

func TestOpenRefusesABadURL(t *testing.T) {
	if _, err := redislimit.Open("http://127.0.0.1:6379", redislimit.Options{}); err == nil {
		t.Fatal("an http:// URL was taken for Redis")
	}
}
