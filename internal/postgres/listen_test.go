package postgres

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// recorder is a tokend.Resyncer that records what it is told, in order.
type recorder struct {
	mu     sync.Mutex
	seen   []string
	since  []time.Time // OutOfSync arguments
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.seen = append(r.seen, s)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) TokenChanged(id string) { r.add("token:" + id) }
func (r *recorder) AppChanged(id string)   { r.add("app:" + id) }
func (r *recorder) Resync()                { r.add("resync") }
func (r *recorder) CaughtUp()              { r.add("caughtup") }
func (r *recorder) OutOfSync(t time.Time) {
	r.mu.Lock()
	r.since = append(r.since, t)
	r.mu.Unlock()
	r.add("out")
}

// next waits for the next thing told after *pos and moves *pos past it.
func (r *recorder) next(t *testing.T, pos *int, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		if *pos < len(r.seen) {
			s := r.seen[*pos]
			*pos++
			r.mu.Unlock()
			return s
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("nothing told within %s after %v", within, r.seen[:*pos])
		}
	}
}

// await skips what is told until want, and answers how long that took.
func (r *recorder) await(t *testing.T, pos *int, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		left := within - time.Since(start)
		if left <= 0 {
			t.Fatalf("%q not told within %s; told %v", want, within, r.seen)
		}
		if r.next(t, pos, left) == want {
			return time.Since(start)
		}
	}
}

func (r *recorder) lastSince() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.since[len(r.since)-1]
}

// listen runs a listener on s until the test ends, waits until it listens,
// and answers it with the position of what rec is told next.
func listen(t *testing.T, s *Store, rec *recorder, o ListenOptions) (*Listener, int) {
	t.Helper()
	l := s.Listener(rec, o)
	return l, follow(t, l.Run, l.Connected, rec)
}

// follow runs a listener or a poller until the test ends, waits until it is
// in sync, and answers the position of what rec is told next.
func follow(t *testing.T, run func(context.Context), connected func() bool, rec *recorder) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	pos := 0
	if got := rec.next(t, &pos, 10*time.Second); got != "out" {
		t.Fatalf("first told %q, want out (of sync until in step)", got)
	}
	rec.await(t, &pos, "resync", 10*time.Second)
	if !connected() {
		t.Error("Connected() = false after the first Resync")
	}
	return pos
}

// throughAProxy answers two stores on one fresh database holding tok_a1:
// one connected directly, one through a proxy the test can cut.
func throughAProxy(t *testing.T) (proxy *pgtest.Proxy, direct, proxied *Store) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	proxy, viaProxy := pgtest.NewProxy(t, url)
	direct, proxied = open(t, url), open(t, viaProxy)
	seed(t, direct, "tok_a1")
	return proxy, direct, proxied
}

// changeToken updates a token through s, recording action.
func changeToken(t *testing.T, s *Store, id, action string, fn func(tok *tokend.Token)) {
	t.Helper()
	_, err := s.UpdateToken(t.Context(), id, func(tok *tokend.Token) (tokend.Event, error) {
		fn(tok)
		return event(action, "app_a", id), nil
	})
	if err != nil {
		t.Fatalf("UpdateToken %s: %v", id, err)
	}
}

func TestChangesThroughOneStoreAreRelayedByAnothersListener(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	seed(t, a, "tok_a1", "tok_a2", "tok_a3")
	rec := newRecorder()
	l, pos := listen(t, b, rec, ListenOptions{})
	ctx := t.Context()

	update := func(id string, fn func(tok *tokend.Token)) func() error {
		return func() error {
			_, err := a.UpdateToken(ctx, id, func(tok *tokend.Token) (tokend.Event, error) {
				fn(tok)
				return event(tokend.ActionTokenUpdate, "app_a", id), nil
			})
			return err
		}
	}
	changes := []struct {
		name string
		do   func() error
		want string
	}{
		// Every create, not only a decoy's: the engines keep a filter of
		// every secret.
		{"create", func() error {
			tok := tokend.Token{
				ID: "tok_a4", AppID: "app_a", Name: "new", Type: tokend.TypeStandard, Access: tokend.AccessFull,
				Status: tokend.StatusActive, Masked: "shop_…abcd", CreatedAt: t0, UpdatedAt: t0, Version: 1,
				SecretHash: bytes.Repeat([]byte{9}, 32),
			}
			return a.CreateToken(ctx, tok, event(tokend.ActionTokenCreate, "app_a", tok.ID))
		}, "token:tok_a4"},
		{"edit", update("tok_a1", func(tok *tokend.Token) { tok.AllowedIPs = []string{"10.0.0.0/8"} }), "token:tok_a1"},
		{"disable", update("tok_a1", func(tok *tokend.Token) { tok.Status = tokend.StatusDisabled }), "token:tok_a1"},
		{"rotate", update("tok_a3", func(tok *tokend.Token) { tok.SecretHash = bytes.Repeat([]byte{7}, 32) }), "token:tok_a3"},
		{"delete", func() error {
			return a.DeleteToken(ctx, "tok_a2", 0, event(tokend.ActionTokenDelete, "app_a", "tok_a2"))
		}, "token:tok_a2"},
		{"revoke-all", func() error {
			_, err := a.RevokeAppTokens(ctx, "app_a", t0, event(tokend.ActionAppRevokeAll, "app_a", ""))
			return err
		}, "app:app_a"},
		{"app edit", func() error {
			_, err := a.UpdateApp(ctx, "app_a", func(app *tokend.App) (tokend.Event, error) {
				app.Permissions = []string{"orders:read"}
				return event(tokend.ActionAppUpdate, "app_a", ""), nil
			})
			return err
		}, "app:app_a"},
		{"app delete", func() error { return a.DeleteApp(ctx, "app_a", 0, event(tokend.ActionAppDelete, "app_a", "")) }, "app:app_a"},
	}
	for _, c := range changes {
		start := time.Now()
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := rec.next(t, &pos, 5*time.Second); got != c.want {
			t.Fatalf("%s: told %q, want %q", c.name, got, c.want)
		}
		t.Logf("%s: relayed %s after the write began", c.name, time.Since(start).Round(100*time.Microsecond))
	}
	if n := l.Notifications(); n != int64(len(changes)) {
		t.Errorf("Notifications() = %d, want %d", n, len(changes))
	}
	if l.Reconnects() != 0 || !l.Connected() {
		t.Errorf("Reconnects() = %d, Connected() = %v", l.Reconnects(), l.Connected())
	}
}

// A change that rolls back is never announced: notifications are sent on
// commit. Notifications arrive in commit order, so the next one told being
// the later, committed change shows the rolled-back one was never sent.
func TestARolledBackChangeIsNotRelayed(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	seed(t, a, "tok_a1", "tok_a2")
	rec := newRecorder()
	_, pos := listen(t, b, rec, ListenOptions{})

	refused := errors.New("the updater refuses")
	_, err := a.UpdateToken(t.Context(), "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Status = tokend.StatusDisabled
		return tokend.Event{}, refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("UpdateToken = %v", err)
	}
	// A write that fails after its notify (the event row cannot be
	// inserted: its details cannot be encoded) rolls back with it.
	_, err = a.UpdateToken(t.Context(), "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
		ev := event(tokend.ActionTokenUpdate, "app_a", "tok_a1")
		ev.Details = map[string]any{"bad": func() {}}
		return ev, nil
	})
	if err == nil {
		t.Fatal("an event that cannot be encoded was written")
	}
	if err := a.DeleteToken(t.Context(), "tok_a2", 0, event(tokend.ActionTokenDelete, "app_a", "tok_a2")); err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a2" {
		t.Fatalf("told %q first, want token:tok_a2: a rolled-back change was announced", got)
	}
}

// The listener's server process is killed (as a restart or a failover
// would): it is out of sync from its last good moment, reconnects, drops
// the cache, and relays again.
func TestAKilledListenerReconnectsAndResyncs(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	seed(t, a, "tok_a1")
	rec := newRecorder()
	l, pos := listen(t, b, rec, ListenOptions{})

	admin := pgtest.Admin(t)
	pid := l.pid.Load()
	killed := time.Now()
	var ok bool
	if err := admin.QueryRow(t.Context(), `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	// A change made while the listener is away.
	changeToken(t, a, "tok_a1", tokend.ActionTokenRevoke, func(tok *tokend.Token) { tok.Status = tokend.StatusRevoked })
	noticed := rec.await(t, &pos, "out", 5*time.Second)
	if since := rec.lastSince(); since.After(killed) {
		t.Errorf("out of sync since %s, after the kill at %s", since.Format(time.StampMicro), killed.Format(time.StampMicro))
	}
	back := rec.await(t, &pos, "resync", 10*time.Second)
	t.Logf("the kill noticed after %s, listening again %s later", noticed.Round(time.Millisecond), back.Round(time.Millisecond))
	if l.Reconnects() != 1 || !l.Connected() {
		t.Errorf("Reconnects() = %d, Connected() = %v; want 1, true", l.Reconnects(), l.Connected())
	}
	if l.pid.Load() == pid {
		t.Error("the listener still reports the killed server process")
	}
	changeToken(t, a, "tok_a1", tokend.ActionTokenUpdate, func(tok *tokend.Token) { tok.Description = "after the reconnect" })
	rec.await(t, &pos, "token:tok_a1", 5*time.Second)
}

// A network that fails silently (no reset, no error, nothing) is noticed by
// the heartbeat, and the listener comes back once the network does.
func TestASilentNetworkIsNoticedByTheHeartbeat(t *testing.T) {
	proxy, a, b := throughAProxy(t)
	rec := newRecorder()
	o := ListenOptions{Heartbeat: 200 * time.Millisecond, Timeout: 300 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
	l, pos := listen(t, b, rec, o)

	proxy.Freeze()
	frozen := time.Now()
	noticed := rec.await(t, &pos, "out", 10*time.Second)
	t.Logf("a silent network noticed after %s (heartbeat %s, timeout %s)", noticed.Round(time.Millisecond), o.Heartbeat, o.Timeout)
	if since := rec.lastSince(); since.After(frozen) || frozen.Sub(since) > o.Heartbeat+o.Timeout {
		t.Errorf("out of sync since %s; the network froze at %s", since.Format(time.StampMicro), frozen.Format(time.StampMicro))
	}
	if l.Connected() {
		t.Error("Connected() = true on a silent network")
	}

	proxy.Restore()
	rec.await(t, &pos, "resync", 10*time.Second)
	changeToken(t, a, "tok_a1", tokend.ActionTokenDisable, func(tok *tokend.Token) { tok.Status = tokend.StatusDisabled })
	rec.await(t, &pos, "token:tok_a1", 5*time.Second)
}

// While the database cannot be reached, every call answers UNAVAILABLE (a
// 503 for the API, never a 500), a write cut off halfway changes nothing,
// and the store works again by itself once the database is back.
func TestAnUnreachableDatabaseIsUnavailableAndComesBack(t *testing.T) {
	proxy, direct, s := throughAProxy(t)
	ctx := t.Context()

	// Cut in the middle of a write: after the row is read under its lock,
	// before the update is sent.
	_, err := s.UpdateToken(ctx, "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
		proxy.Cut()
		tok.Status = tokend.StatusRevoked
		return event(tokend.ActionTokenRevoke, "app_a", "tok_a1"), nil
	})
	wantCode(t, "a write cut off halfway", err, tokend.ECodeUnavailable)

	calls := map[string]func() error{
		"ping":  func() error { return s.Ping(ctx) },
		"token": func() error { _, err := s.Token(ctx, "tok_a1"); return err },
		"by secret": func() error {
			_, err := s.TokenBySecret(ctx, bytes.Repeat([]byte{1}, 32))
			return err
		},
		"list": func() error { _, err := s.Tokens(ctx, tokend.TokenFilter{}); return err },
		"update": func() error {
			_, err := s.UpdateToken(ctx, "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
				tok.Status = tokend.StatusDisabled
				return event(tokend.ActionTokenDisable, "app_a", "tok_a1"), nil
			})
			return err
		},
		"delete": func() error {
			return s.DeleteToken(ctx, "tok_a1", 0, event(tokend.ActionTokenDelete, "app_a", "tok_a1"))
		},
		"usage": func() error {
			return s.RecordUsage(ctx, tokend.UsageBatch{Last: []tokend.LastUse{{TokenID: "tok_a1", At: t0, Uses: 1}}})
		},
		"event": func() error { return s.AppendEvent(ctx, event("test.event", "app_a", "")) },
	}
	for name, call := range calls {
		wantCode(t, "while cut: "+name, call(), tokend.ECodeUnavailable)
	}

	tok, err := direct.Token(ctx, "tok_a1")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := direct.Events(ctx, tokend.EventFilter{TokenID: "tok_a1"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Status != tokend.StatusActive || tok.Version != 1 || tok.UseCount != 0 || len(evs.Items) != 1 {
		t.Errorf("the outage changed the token: status %s, version %d, uses %d, %d events", tok.Status, tok.Version, tok.UseCount, len(evs.Items))
	}

	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not come back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, call := range calls {
		if name == "delete" {
			continue
		}
		if err := call(); err != nil && !errors.Is(err, tokend.ErrNotFound) {
			t.Errorf("after the outage, %s: %v", name, err)
		}
	}
	tok, err = direct.Token(ctx, "tok_a1")
	if err != nil || tok.Status != tokend.StatusDisabled {
		t.Errorf("a write after the outage: %+v, %v", tok.Status, err)
	}
	if err := s.DeleteToken(ctx, "tok_a1", 0, event(tokend.ActionTokenDelete, "app_a", "tok_a1")); err != nil {
		t.Errorf("delete after the outage: %v", err)
	}
}
