package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/storetest"
)

// TestConformance runs the suite on one fresh database per run, with a
// fresh schema for every store the suite asks for.
func TestConformance(t *testing.T) {
	db := pgtest.NewDatabase(t)
	storetest.Run(t, func(t *testing.T) tokend.Store {
		return open(t, pgtest.WithSchema(t, db))
	})
}

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, time.March, 14, 9, 26, 53, 589793000, time.UTC)

func event(action, appID, tokenID string) tokend.Event {
	return tokend.Event{Time: t0, Actor: "system", ActorName: "tokend", Action: action, AppID: appID, TokenID: tokenID}
}

func seed(t *testing.T, s *Store, tokenIDs ...string) {
	t.Helper()
	ctx := t.Context()
	app := tokend.App{ID: "app_a", Name: "Shop", TokenPrefix: "shop", Permissions: []string{}, CreatedAt: t0, UpdatedAt: t0, Version: 1}
	if err := s.CreateApp(ctx, app, event(tokend.ActionAppCreate, "app_a", "")); err != nil {
		t.Fatal(err)
	}
	for i, id := range tokenIDs {
		tok := tokend.Token{
			ID: id, AppID: "app_a", Name: "name " + id, Type: tokend.TypeStandard, Access: tokend.AccessFull,
			Status: tokend.StatusActive, Masked: "shop_…abcd", CreatedAt: t0, UpdatedAt: t0, Version: 1,
			SecretHash: bytes.Repeat([]byte{byte(i + 1)}, 32),
		}
		if err := s.CreateToken(ctx, tok, event(tokend.ActionTokenCreate, "app_a", id)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, "tok_a1")
	grace := t0.Add(time.Hour)
	rotated, err := s.UpdateToken(t.Context(), "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
		tok.SecretHash = bytes.Repeat([]byte{9}, 32)
		tok.PreviousSecretExpiresAt, tok.UpdatedAt = &grace, t0.Add(time.Minute)
		return event(tokend.ActionTokenRotate, "app_a", "tok_a1"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, url)
	got, err := s.Token(t.Context(), "tok_a1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || !got.UpdatedAt.Equal(rotated.UpdatedAt) || !bytes.Equal(got.SecretHash, rotated.SecretHash) {
		t.Errorf("after reopen: %+v, want %+v", got, rotated)
	}
	cred, err := s.TokenBySecret(t.Context(), bytes.Repeat([]byte{1}, 32))
	if err != nil || !cred.Retired || !cred.GraceUntil.Equal(grace) {
		t.Errorf("the retired secret after reopen: %+v %v", cred, err)
	}
	evs, err := s.Events(t.Context(), tokend.EventFilter{})
	if err != nil || len(evs.Items) != 3 {
		t.Errorf("events after reopen: %d %v, want 3", len(evs.Items), err)
	}
}

func TestMigrationsAreIdempotentAndSafeWhenInstancesRace(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const n = 6
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), url) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d of %d racing: %v", i+1, n, errs[i])
		}
		defer stores[i].Close()
	}
	s := stores[0]
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	current, latest, err := s.SchemaVersion(t.Context())
	if err != nil || current != latest || latest < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v", current, latest, err)
	}
	// Versions may have gaps (each branch takes its own number): count
	// the files.
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	var applied int
	err = s.pool.QueryRow(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied)
	if err != nil || applied != len(files) {
		t.Errorf("%d migrations recorded (%v), want each of %d once", applied, err, len(files))
	}
	seed(t, stores[n-1], "tok_a1")
	if _, err := s.Token(t.Context(), "tok_a1"); err != nil {
		t.Errorf("a token written through one instance, read through another: %v", err)
	}
}

// Two instances (two pools) update one token at once: every update is kept,
// because each reads the row under its lock.
func TestConcurrentUpdatesFromTwoInstancesLoseNothing(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	seed(t, a, "tok_a1")
	const perInstance = 25
	var wg sync.WaitGroup
	errc := make(chan error, 2*perInstance)
	for _, s := range []*Store{a, b} {
		for i := range perInstance {
			wg.Go(func() {
				_, err := s.UpdateToken(t.Context(), "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
					tok.UseCount++ // stands in for any read-modify-write
					tok.Description += fmt.Sprintf("[%p %d]", s, i)
					return event(tokend.ActionTokenUpdate, "app_a", "tok_a1"), nil
				})
				errc <- err
			})
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("UpdateToken: %v", err)
		}
	}
	got, err := b.Token(t.Context(), "tok_a1")
	if err != nil {
		t.Fatal(err)
	}
	if got.UseCount != 2*perInstance || got.Version != 1+2*perInstance || strings.Count(got.Description, "[") != 2*perInstance {
		t.Errorf("after %d updates: use count %d, version %d, %d descriptions", 2*perInstance, got.UseCount, got.Version, strings.Count(got.Description, "["))
	}
	evs, err := a.Events(t.Context(), tokend.EventFilter{TokenID: "tok_a1", Action: tokend.ActionTokenUpdate, Limit: tokend.MaxPageSize})
	if err != nil || len(evs.Items) != 2*perInstance {
		t.Errorf("%d update events (%v), want %d", len(evs.Items), err, 2*perInstance)
	}
}

// Two instances flush overlapping batches at once: the counts add up
// exactly and the last use is the newest of all.
func TestConcurrentUsageFromTwoInstancesAddsUp(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	ids := []string{"tok_a1", "tok_a2", "tok_a3"}
	seed(t, a, ids...)
	hours := []time.Time{t0.Truncate(time.Hour), t0.Truncate(time.Hour).Add(time.Hour)}
	codes := []tokend.Code{tokend.CodeValid, tokend.CodeRevoked}
	const flushes = 20
	var wg sync.WaitGroup
	errc := make(chan error, 2*flushes)
	for k, s := range []*Store{a, b} {
		for f := range flushes {
			wg.Go(func() {
				var batch tokend.UsageBatch
				// Each flush walks the keys in its own order, as batches
				// built from maps do.
				for j := range len(ids) * len(hours) * len(codes) {
					j = (j + f) % (len(ids) * len(hours) * len(codes))
					batch.Counts = append(batch.Counts, tokend.UsageCount{
						TokenID: ids[j%len(ids)], Hour: hours[j/len(ids)%len(hours)].Add(time.Minute),
						Code: codes[j/(len(ids)*len(hours))], Count: 2,
					})
				}
				for j := range ids {
					id := ids[(j+f)%len(ids)]
					batch.Last = append(batch.Last, tokend.LastUse{
						TokenID: id, At: t0.Add(time.Duration(k*flushes+f) * time.Second), IP: fmt.Sprintf("192.0.2.%d", k*flushes+f), Uses: 3,
					})
				}
				errc <- s.RecordUsage(t.Context(), batch)
			})
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
	}
	for _, id := range ids {
		usage, err := a.Usage(t.Context(), id, hours[0], hours[1].Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(usage) != len(hours)*len(codes) {
			t.Fatalf("%s: %d usage rows, want %d: %+v", id, len(usage), len(hours)*len(codes), usage)
		}
		for _, u := range usage {
			if u.Count != 2*2*flushes {
				t.Errorf("%s %s %s: count %d, want %d", id, u.Hour, u.Code, u.Count, 2*2*flushes)
			}
		}
		tok, err := b.Token(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		newest := t0.Add(time.Duration(2*flushes-1) * time.Second)
		if tok.UseCount != 3*2*flushes || tok.LastUsedAt == nil || !tok.LastUsedAt.Equal(newest) || tok.LastUsedIP != fmt.Sprintf("192.0.2.%d", 2*flushes-1) {
			t.Errorf("%s: use count %d last used %v from %q, want %d at %s from 192.0.2.%d",
				id, tok.UseCount, tok.LastUsedAt, tok.LastUsedIP, 3*2*flushes, newest, 2*flushes-1)
		}
	}
}

func TestErrorsTranslate(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t))
	seed(t, s, "tok_a1", "tok_a2")
	ctx := t.Context()

	_, err := s.Token(ctx, "tok_nope")
	wantCode(t, "missing token", err, tokend.ECodeNotFound)
	err = s.CreateApp(ctx, tokend.App{ID: "app_a", Permissions: []string{}, CreatedAt: t0, UpdatedAt: t0}, event(tokend.ActionAppCreate, "app_a", ""))
	wantCode(t, "taken app id", err, tokend.ECodeConflict)
	_, err = s.UpdateToken(ctx, "tok_a2", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Name = "name tok_a1"
		return event(tokend.ActionTokenUpdate, "app_a", "tok_a2"), nil
	})
	wantCode(t, "a taken name", err, tokend.ECodeConflict)
	var e *tokend.Error
	if !errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0].Field != "name" {
		t.Errorf("a taken name: %v does not name the field", err)
	}
	_, err = s.UpdateToken(ctx, "tok_a2", func(tok *tokend.Token) (tokend.Event, error) {
		tok.AppID = "app_nope"
		return event(tokend.ActionTokenUpdate, "app_nope", "tok_a2"), nil
	})
	wantCode(t, "a move to a missing app", err, tokend.ECodeNotFound)

	// A server that does not answer is an outage, not a bug.
	unreachable, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = Open(unreachable, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=5")
	wantCode(t, "an unreachable server", err, tokend.ECodeUnavailable)

	_, err = Open(ctx, "postgres://user:hunter2@[::1/x")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a malformed URL: %v", err)
	}

	// A deadline that runs out is a database that does not answer; a
	// caller that gives up says nothing about the database.
	wantCode(t, "a deadline", storeErr("op", fmt.Errorf("read: %w", context.DeadlineExceeded)), tokend.ECodeUnavailable)
	if err := storeErr("op", context.Canceled); !errors.Is(err, context.Canceled) || tokend.CodeOf(err) == tokend.ECodeUnavailable {
		t.Errorf("a cancelled call: %v", err)
	}

	for code, want := range map[string]tokend.ErrorCode{
		"08006": tokend.ECodeUnavailable, // connection_failure
		"57P01": tokend.ECodeUnavailable, // admin_shutdown
		"40P01": tokend.ECodeUnavailable, // deadlock_detected
		"23505": tokend.ECodeConflict,
		"42P01": tokend.ECodeInternal, // undefined_table: a bug
	} {
		wantCode(t, "SQLSTATE "+code, storeErr("op", &pgconn.PgError{Code: code}), want)
	}
}

func wantCode(t *testing.T, what string, err error, want tokend.ErrorCode) {
	t.Helper()
	if got := tokend.CodeOf(err); got != want {
		t.Errorf("%s: got %v (%s), want %s", what, err, got, want)
	}
}

// Revoking an app's tokens while instances flush usage of them neither
// deadlocks nor loses a count: both lock tokens in id order.
func TestRevokeWhileFlushing(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("tok_%04d", i))
	}
	seed(t, a, ids...)
	var wg sync.WaitGroup
	errc := make(chan error, 21)
	for k, s := range []*Store{a, b} {
		for f := range 10 {
			wg.Go(func() {
				var batch tokend.UsageBatch
				for j := range ids {
					id := ids[(j*7+f+k)%len(ids)]
					batch.Last = append(batch.Last, tokend.LastUse{TokenID: id, At: t0, IP: "192.0.2.1", Uses: 1})
				}
				errc <- s.RecordUsage(t.Context(), batch)
			})
		}
	}
	wg.Go(func() {
		_, err := b.RevokeAppTokens(t.Context(), "app_a", t0, event(tokend.ActionAppRevokeAll, "app_a", ""))
		errc <- err
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("RecordUsage or RevokeAppTokens: %v", err)
		}
	}
	for _, id := range ids {
		tok, err := a.Token(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tok.UseCount != 20 || tok.Status != tokend.StatusRevoked {
			t.Errorf("%s: use count %d, status %s; want 20, revoked", id, tok.UseCount, tok.Status)
		}
	}
}

func TestWebhookConformance(t *testing.T) {
	db := pgtest.NewDatabase(t)
	storetest.RunWebhooks(t, func(t *testing.T) tokend.Store {
		return open(t, pgtest.WithSchema(t, db))
	})
}

// Two instances, four goroutines each, dispatch the outbox at once, then
// claim its deliveries at once: each event is taken once, each delivery
// held by one at a time.
func TestDispatchAndClaimFromTwoInstances(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	storetest.DispatchRace(t, a, []tokend.WebhookStore{a, b, a, b, a, b, a, b})
	url = pgtest.NewDatabase(t)
	a, b = open(t, url), open(t, url)
	storetest.ClaimRace(t, a, []tokend.WebhookStore{a, b, a, b, a, b, a, b})
}
