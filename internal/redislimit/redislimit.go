// Package redislimit keeps tokend's per-token rate limits and per-address
// failure counts on Redis, so that every instance behind a load balancer
// obeys one limit (tokend.SharedLimiter).
//
// Each operation is one round trip: a small Lua script, so that reading and
// updating a limit is atomic however many instances ask at once. Rate limits
// are GCRA, as in the verification engine's own limiter, with the same
// arithmetic in whole microseconds of Redis' clock (TIME), so that clock
// skew between instances plays no part. Every key expires: a rate limit's
// when its backlog is paid off, a failure count at the end of its window.
//
// What it must not do: hold a request up while Redis is down. Commands have
// a short timeout; the first failure marks Redis down, from then on every
// call fails at once (the engine counts locally meanwhile) while a single
// background probe retries with a growing pause, and the first probe that
// succeeds brings Redis back. Each change is logged once. It never sees a
// secret; keys hold token ids and client addresses.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/tokend/tokend"
)

// Defaults for the zero Options fields.
const (
	DefaultPrefix  = "tokend:"
	DefaultTimeout = 50 * time.Millisecond
	// The pause before the first probe of a Redis found down, doubled after
	// each failed probe up to the maximum.
	DefaultProbeMin = 100 * time.Millisecond
	DefaultProbeMax = 2 * time.Second
)

// ErrDown is answered, without asking Redis, while Redis is marked down.
var ErrDown = errors.New("redislimit: redis is down; limits are counted per instance")

// Options configure a Limiter.
type Options struct {
	// Prefix starts every key: <prefix>rl:<token id>, <prefix>fail:<peer>
	// (the engine's peer key, "<door>|<address>").
	Prefix string
	// Timeout bounds every command, from taking a connection to reading the
	// answer.
	Timeout time.Duration
	// ProbeMin and ProbeMax bound the pause between probes of a Redis that
	// is down.
	ProbeMin, ProbeMax time.Duration
	Logger             *slog.Logger
	// Now, when set, replaces Redis' clock for rate limits (tests). All
	// instances must then agree on the time.
	Now func() time.Time
}

// Limiter is a tokend.SharedLimiter on Redis. It is safe for concurrent use.
type Limiter struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	probeLo time.Duration
	probeHi time.Duration
	log     *slog.Logger
	now     func() time.Time

	up        atomic.Bool
	fallbacks atomic.Uint64
	failures  atomic.Uint64
	// When Redis last came back, and the pause of the probe that brought
	// it back: a Redis that goes down again soon is probed less eagerly.
	backAt   atomic.Int64
	lastWait atomic.Int64

	ctx    context.Context // ends with Close; stops the probe
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and the probe's start
	closed bool
	probes sync.WaitGroup
}

var _ tokend.SharedLimiter = (*Limiter)(nil)

// Open connects to the Redis named by a redis:// or rediss:// URL and checks
// that it answers. A Redis that does not answer yet is not an error: the
// limiter starts down, logs it, and probes until it answers. A URL that does
// not parse is.
func Open(url string, o Options) (*Limiter, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("the Redis URL: %w", err)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// One try per command, within the timeout: the caller has a local
	// answer to fall back on and must not wait for retries.
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DialTimeout = timeout
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.PoolTimeout = timeout
	opt.ContextTimeoutEnabled = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	l := New(redis.NewClient(opt), o)
	// go-redis logs through one logger of its own for the whole process,
	// in lines of its own format on stderr (a failed dial every probe while
	// Redis is down, also under --log-format json): they go to this
	// limiter's logger at debug level, since markDown and probe say once
	// per outage what it means.
	redis.SetLogger(clientLog{l.log})
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := l.check(ctx); err != nil {
		l.failures.Add(1)
		l.markDown(err)
	}
	return l, nil
}

// New makes a Limiter on a client. Close closes the client.
func New(rdb redis.UniversalClient, o Options) *Limiter {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProbeMin <= 0 {
		o.ProbeMin = DefaultProbeMin
	}
	if o.ProbeMax < o.ProbeMin {
		o.ProbeMax = max(DefaultProbeMax, o.ProbeMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{
		rdb: rdb, prefix: o.Prefix, timeout: o.Timeout,
		probeLo: o.ProbeMin, probeHi: o.ProbeMax, log: o.Logger, now: o.Now,
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.up.Store(true)
	return l
}

// Close stops the probe and closes the client.
func (l *Limiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.probes.Wait()
	return l.rdb.Close()
}

// Up reports whether Redis is answering: limits are shared.
func (l *Limiter) Up() bool { return l.up.Load() }

// Fallbacks counts the calls answered with an error, for which the engine
// counted on its own: while Redis was down, or when a command failed.
func (l *Limiter) Fallbacks() uint64 { return l.fallbacks.Load() }

// Errors counts the Redis commands that failed (not those skipped while
// Redis was down).
func (l *Limiter) Errors() uint64 { return l.failures.Load() }

// TakeRate implements tokend.SharedLimiter.
func (l *Limiter) TakeRate(ctx context.Context, tokenID string, rl tokend.RateLimit) (tokend.RateLimitState, bool, error) {
	return l.rate(ctx, tokenID, rl, opTake)
}

// PeekRate implements tokend.SharedLimiter.
func (l *Limiter) PeekRate(ctx context.Context, tokenID string, rl tokend.RateLimit) (tokend.RateLimitState, error) {
	s, _, err := l.rate(ctx, tokenID, rl, opPeek)
	return s, err
}

// RefundRate implements tokend.SharedLimiter.
func (l *Limiter) RefundRate(ctx context.Context, tokenID string, rl tokend.RateLimit) (tokend.RateLimitState, error) {
	s, _, err := l.rate(ctx, tokenID, rl, opRefund)
	return s, err
}

func (l *Limiter) rate(ctx context.Context, tokenID string, rl tokend.RateLimit, op int) (tokend.RateLimitState, bool, error) {
	g := newGCRA(rl)
	v, err := l.run(ctx, rateScript, l.prefix+"rl:"+tokenID, g.interval, g.burst, op, l.nowArg())
	if err != nil {
		return tokend.RateLimitState{}, false, err
	}
	ok := v[0] == 1
	return g.state(v[1], ok), ok, nil
}

// Failed implements tokend.SharedLimiter.
func (l *Limiter) Failed(ctx context.Context, client string, limit int, window time.Duration) (time.Duration, error) {
	v, err := l.run(ctx, failScript, l.prefix+"fail:"+client, max(window.Milliseconds(), 1))
	if err != nil {
		return 0, err
	}
	if v[0] < int64(limit) {
		return 0, nil
	}
	return time.Duration(max(v[1], 1)) * time.Millisecond, nil
}

func (l *Limiter) nowArg() string {
	if l.now == nil {
		return "" // the script reads Redis' clock
	}
	return fmt.Sprint(l.now().UnixMicro())
}

// run runs a script on one key and answers its two numbers, or fails at
// once while Redis is down.
func (l *Limiter) run(ctx context.Context, s *redis.Script, key string, args ...any) ([]int64, error) {
	if !l.up.Load() {
		l.fallbacks.Add(1)
		return nil, ErrDown
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	v, err := s.Run(cctx, l.rdb, []string{key}, args...).Int64Slice()
	cancel()
	if err == nil && len(v) != 2 {
		err = fmt.Errorf("redislimit: the script answered %d numbers, not 2", len(v))
	}
	if err != nil {
		l.fallbacks.Add(1)
		// A caller that gave up (its client went away) says nothing
		// about Redis.
		if ctx.Err() == nil {
			l.failures.Add(1)
			l.markDown(err)
		}
		return nil, err
	}
	return v, nil
}

// check asks Redis what a probe needs to know: that it answers, and runs
// our scripts (not just PING: a server that refuses scripts is no use).
func (l *Limiter) check(ctx context.Context) error {
	return rateScript.Run(ctx, l.rdb, []string{l.prefix + "probe"}, 1, 0, opPeek, "").Err()
}

// markDown switches to failing fast, logs it once, and starts the probe.
func (l *Limiter) markDown(err error) {
	if !l.up.CompareAndSwap(true, false) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.log.Warn("redis is unreachable: rate limits and the failure throttle are counted per instance until it answers again",
		"err", err)
	l.probes.Add(1)
	go l.probe()
}

// clientLog is go-redis's logger (redis.SetLogger) as slog debug lines.
type clientLog struct{ log *slog.Logger }

func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.DebugContext(ctx, "redis client", "detail", strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}

// probe retries until Redis answers, then marks it up.
func (l *Limiter) probe() {
	defer l.probes.Done()
	wait := l.probeLo
	if since := time.Since(time.Unix(0, l.backAt.Load())); since < 4*l.probeHi {
		// Down again soon after coming back: pick up the pause where the
		// last probe left it, so that a flapping Redis is not hammered
		// and the log not flooded.
		wait = min(2*time.Duration(l.lastWait.Load()), l.probeHi)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
		err := l.check(ctx)
		cancel()
		if err == nil {
			l.lastWait.Store(int64(wait))
			l.backAt.Store(time.Now().UnixNano())
			l.up.Store(true)
			l.log.Info("redis answers again: rate limits and the failure throttle are shared again")
			return
		}
		wait = min(2*wait, l.probeHi)
		t.Reset(wait)
	}
}

// gcra is a rate limit in the scripts' terms: one verification every
// interval microseconds, a request allowed while the backlog ahead of it is
// at most burst. It matches the engine's limiter (internal/verify): exactly
// Limit pass in a burst, and after Window of quiet the whole Limit is back,
// whether or not the window divides by the limit.
type gcra struct {
	limit    int
	interval int64 // µs: window / limit, rounded down, at least 1
	burst    int64 // µs: (limit - 1) * interval
}

func newGCRA(rl tokend.RateLimit) gcra {
	l := int64(max(rl.Limit, 1))
	w := max(time.Duration(rl.Window).Microseconds(), 1)
	iv := max(w/l, 1)
	return gcra{limit: int(l), interval: iv, burst: (l - 1) * iv}
}

// state reports the limit with backlog µs owed: after an allowed (or
// peeked) request, or for a refused one.
func (g gcra) state(backlog int64, allowed bool) tokend.RateLimitState {
	s := tokend.RateLimitState{Limit: g.limit, Reset: ceilSeconds(backlog)}
	if !allowed {
		s.RetryAfter = max(ceilSeconds(backlog-g.burst), 1)
		return s
	}
	used := (backlog + g.interval - 1) / g.interval
	s.Remaining = int(max(int64(g.limit)-used, 0))
	return s
}

func ceilSeconds(us int64) int { return int((us + 999_999) / 1_000_000) }
