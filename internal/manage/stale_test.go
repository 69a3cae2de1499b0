package manage_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/secret"
)

// invalLog records what the service told the verification caches.
type invalLog struct {
	mu     sync.Mutex
	tokens []string
}

func (l *invalLog) TokenChanged(id string) {
	l.mu.Lock()
	l.tokens = append(l.tokens, id)
	l.mu.Unlock()
}
func (l *invalLog) AppChanged(string) {}
func (l *invalLog) told() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

// staleStores answers a constructor per store engine: SQLite always,
// PostgreSQL with TOKEND_TEST_POSTGRES. open gives another handle on the
// same database, as a second instance would have.
func staleStores(t *testing.T) map[string]func() tokend.Store {
	stores := map[string]func() tokend.Store{}
	path := t.TempDir() + "/tokend.db"
	stores["sqlite"] = func() tokend.Store {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	if os.Getenv("TOKEND_TEST_POSTGRES") != "" {
		db := pgtest.NewDatabase(t)
		stores["postgres"] = func() tokend.Store {
			st, err := postgres.Open(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}
	return stores
}

func newStaleService(st tokend.Store, clock *testclock.Clock, inval tokend.Invalidator) *manage.Service {
	h, _ := secret.NewHasher([]byte("stale-pepper-stale-pepper-stale-pepper"))
	return manage.New(manage.Options{Store: st, Hasher: h, Now: clock.Now, Invalidator: inval})
}

func disableEvents(t *testing.T, svc *manage.Service, tokenID string) []tokend.Event {
	t.Helper()
	page, err := svc.Store().Events(context.Background(), tokend.EventFilter{TokenID: tokenID, Action: tokend.ActionTokenDisable})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func TestDisableUnused(t *testing.T) {
	day := 24 * time.Hour
	for engine, open := range staleStores(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			clock := testclock.New(now.Add(-100 * day))
			inval := &invalLog{}
			svc := newStaleService(open(), clock, inval)
			a := tokend.SystemActor
			thirty := tokend.Duration(30 * day)
			policy, err := svc.CreateApp(ctx, a, tokend.AppInput{Name: "with policy", DisableUnusedAfter: &thirty})
			if err != nil {
				t.Fatal(err)
			}
			none, err := svc.CreateApp(ctx, a, tokend.AppInput{Name: "without"})
			if err != nil {
				t.Fatal(err)
			}
			mk := func(app tokend.App, name string, in tokend.TokenInput) tokend.Token {
				t.Helper()
				in.AppID, in.Name = app.ID, name
				if in.ExpiresIn == "" {
					in.ExpiresIn = "unlimited"
				}
				tok, _, err := svc.CreateToken(ctx, a, in)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			// Created 100 days before now.
			never := mk(policy, "never used", tokend.TokenInput{})
			usedLongAgo := mk(policy, "used 40 days ago", tokend.TokenInput{})
			usedRecently := mk(policy, "used yesterday", tokend.TokenInput{})
			expired := mk(policy, "expired", tokend.TokenInput{ExpiresIn: "50d"})
			paused := mk(policy, "already disabled", tokend.TokenInput{})
			if _, err := svc.DisableToken(ctx, a, paused.ID, 0); err != nil {
				t.Fatal(err)
			}
			other := mk(none, "no policy", tokend.TokenInput{})
			clock.Set(now.Add(-10 * day))
			young := mk(policy, "created 10 days ago", tokend.TokenInput{})
			clock.Set(now)
			err = svc.Store().RecordUsage(ctx, tokend.UsageBatch{Last: []tokend.LastUse{
				{TokenID: usedLongAgo.ID, At: now.Add(-40 * day), IP: "192.0.2.1", Uses: 1},
				{TokenID: usedRecently.ID, At: now.Add(-day), IP: "192.0.2.1", Uses: 1},
			}})
			if err != nil {
				t.Fatal(err)
			}

			n, err := svc.DisableUnused(ctx)
			if err != nil || n != 2 {
				t.Fatalf("DisableUnused = %d, %v; want 2", n, err)
			}
			for _, c := range []struct {
				tok  tokend.Token
				want tokend.Status
			}{
				{never, tokend.StatusDisabled}, {usedLongAgo, tokend.StatusDisabled},
				{usedRecently, tokend.StatusActive}, {expired, tokend.StatusExpired},
				{paused, tokend.StatusDisabled}, {other, tokend.StatusActive}, {young, tokend.StatusActive},
			} {
				got, err := svc.Token(ctx, a, c.tok.ID)
				if err != nil || got.Status != c.want {
					t.Errorf("%s: status %s, %v; want %s", c.tok.Name, got.Status, err, c.want)
				}
			}
			for _, tok := range []tokend.Token{never, usedLongAgo} {
				evs := disableEvents(t, svc, tok.ID)
				if len(evs) != 1 || evs[0].Actor != "system" || evs[0].Details["reason"] != "unused" || evs[0].Details["unused_for"] != "30d" {
					t.Errorf("%s: disable events %+v; want one by the system, reason unused, 30d", tok.Name, evs)
				}
			}
			if told := inval.told(); !slices.Contains(told, never.ID) || !slices.Contains(told, usedLongAgo.ID) {
				t.Errorf("caches told of %v; want both disabled tokens", told)
			}

			t.Run("a second run changes nothing", func(t *testing.T) {
				if n, err := svc.DisableUnused(ctx); err != nil || n != 0 {
					t.Fatalf("DisableUnused again = %d, %v; want 0", n, err)
				}
				if evs := disableEvents(t, svc, never.ID); len(evs) != 1 {
					t.Errorf("%d disable events after the second run; want 1", len(evs))
				}
			})
			t.Run("a token enabled again gets a full period", func(t *testing.T) {
				if _, err := svc.EnableToken(ctx, a, never.ID, 0); err != nil {
					t.Fatal(err)
				}
				clock.Advance(29 * day)
				// The tokens used yesterday and created 10 days ago are
				// past the period by now; the one enabled is not.
				if n, err := svc.DisableUnused(ctx); err != nil || n != 2 {
					t.Fatalf("DisableUnused 29 days after enabling = %d, %v; want 2", n, err)
				}
				if got, _ := svc.Token(ctx, a, never.ID); got.Status != tokend.StatusActive {
					t.Errorf("status %s 29 days after enabling; want active", got.Status)
				}
				clock.Advance(day)
				if n, err := svc.DisableUnused(ctx); err != nil || n != 1 {
					t.Fatalf("DisableUnused 30 days after enabling = %d, %v; want 1", n, err)
				}
				if got, _ := svc.Token(ctx, a, never.ID); got.Status != tokend.StatusDisabled {
					t.Errorf("status %s; want disabled", got.Status)
				}
			})
			t.Run("removing the policy stops it", func(t *testing.T) {
				young2 := mk(policy, "created before the policy went", tokend.TokenInput{})
				if _, err := svc.UpdateApp(ctx, a, policy.ID, tokend.AppPatch{Null: []string{"disable_unused_after"}}, 0); err != nil {
					t.Fatal(err)
				}
				clock.Advance(365 * day)
				if n, err := svc.DisableUnused(ctx); err != nil || n != 0 {
					t.Fatalf("DisableUnused without a policy = %d, %v; want 0", n, err)
				}
				if got, _ := svc.Token(ctx, a, young2.ID); got.Status != tokend.StatusActive {
					t.Errorf("status %s; want active", got.Status)
				}
			})
		})
	}
}

// TestDisableUnusedConcurrently: two instances running the job at once
// disable each token once, with one audit event each.
func TestDisableUnusedConcurrently(t *testing.T) {
	day := 24 * time.Hour
	for engine, open := range staleStores(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			clock := testclock.New(now.Add(-100 * day))
			one := newStaleService(open(), clock, nil)
			two := newStaleService(open(), clock, nil)
			ninety := tokend.Duration(90 * day)
			app, err := one.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "policy", DisableUnusedAfter: &ninety})
			if err != nil {
				t.Fatal(err)
			}
			const count = 30
			for i := range count {
				if _, _, err := one.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: fmt.Sprintf("t%d", i), ExpiresIn: "unlimited"}); err != nil {
					t.Fatal(err)
				}
			}
			clock.Set(now)
			var wg sync.WaitGroup
			ns := make([]int, 2)
			errs := make([]error, 2)
			for i, svc := range []*manage.Service{one, two} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ns[i], errs[i] = svc.DisableUnused(ctx)
				}()
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil || ns[0]+ns[1] != count {
				t.Fatalf("two runs disabled %v (errors %v); want %d in all", ns, errs, count)
			}
			evs, err := one.Store().Events(ctx, tokend.EventFilter{AppID: app.ID, Action: tokend.ActionTokenDisable, Limit: tokend.MaxPageSize})
			if err != nil || len(evs.Items) != count {
				t.Fatalf("%d disable events, %v; want %d", len(evs.Items), err, count)
			}
			n, err := one.CountTokens(ctx, tokend.SystemActor, tokend.TokenFilter{AppID: app.ID, Status: tokend.StatusDisabled})
			if err != nil || n != count {
				t.Fatalf("%d disabled tokens, %v; want %d", n, err, count)
			}
		})
	}
}

// TestRunDisableUnused: the background loop applies the policy at start and
// on every tick, and stops with its context.
func TestRunDisableUnused(t *testing.T) {
	day := 24 * time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := testclock.New(now)
	st, err := sqlite.Open(ctx, t.TempDir()+"/tokend.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := newStaleService(st, clock, nil)
	week := tokend.Duration(7 * day)
	app, err := svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "policy", DisableUnusedAfter: &week})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "t", ExpiresIn: "unlimited"})
	if err != nil {
		t.Fatal(err)
	}
	// The channel is unbuffered: a send returns once the loop is waiting,
	// that is once the run before it is over.
	tick := make(chan time.Time)
	done := make(chan struct{})
	go func() { svc.RunDisableUnused(ctx, tick); close(done) }()
	tick <- now
	tick <- now // the run at start and one more are over
	if got, err := svc.Token(ctx, tokend.SystemActor, tok.ID); err != nil || got.Status != tokend.StatusActive {
		t.Fatalf("token %s, %v within the period; want active", got.Status, err)
	}
	clock.Advance(8 * day)
	tick <- clock.Now()
	tick <- clock.Now() // a whole run after the clock moved is over
	if got, err := svc.Token(ctx, tokend.SystemActor, tok.ID); err != nil || got.Status != tokend.StatusDisabled {
		t.Fatalf("token %s, %v past the period; want disabled", got.Status, err)
	}
	cancel()
	<-done
}
