package sqlite

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokend.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "tokend.db"))
	})
}

func openTemp(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2026, time.March, 14, 9, 26, 53, 589793000, time.UTC)

func event(action, appID, tokenID string) tokend.Event {
	return tokend.Event{Time: t0, Actor: "system", ActorName: "tokend", Action: action, AppID: appID, TokenID: tokenID}
}

func seed(t *testing.T, s *Store, hash []byte) {
	t.Helper()
	ctx := t.Context()
	app := tokend.App{ID: "app_a", Name: "Shop", TokenPrefix: "shop", CreatedAt: t0, UpdatedAt: t0, Version: 1}
	if err := s.CreateApp(ctx, app, event(tokend.ActionAppCreate, "app_a", "")); err != nil {
		t.Fatal(err)
	}
	tok := tokend.Token{
		ID: "tok_a1", AppID: "app_a", Name: "ci", Type: tokend.TypeStandard, Access: tokend.AccessFull,
		Status: tokend.StatusActive, Masked: "shop_…abcd", CreatedAt: t0, UpdatedAt: t0, Version: 1, SecretHash: hash,
	}
	if err := s.CreateToken(ctx, tok, event(tokend.ActionTokenCreate, "app_a", "tok_a1")); err != nil {
		t.Fatal(err)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, bytes.Repeat([]byte{7}, 32))
	revokedAt := t0.Add(time.Hour)
	if _, err := s.UpdateToken(t.Context(), "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Status, tok.RevokedAt, tok.UpdatedAt = tokend.StatusRevoked, &revokedAt, revokedAt
		return event(tokend.ActionTokenRevoke, "app_a", "tok_a1"), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTemp(t, path)
	tok, err := s.Token(t.Context(), "tok_a1")
	if err != nil {
		t.Fatalf("Token after reopen: %v", err)
	}
	if tok.Status != tokend.StatusRevoked || tok.RevokedAt == nil || !tok.RevokedAt.Equal(revokedAt) || tok.Version != 2 {
		t.Errorf("after reopen: status %s, revoked at %v, version %d; want revoked at %v, version 2",
			tok.Status, tok.RevokedAt, tok.Version, revokedAt)
	}
	page, err := s.Events(t.Context(), tokend.EventFilter{})
	if err != nil || len(page.Items) != 3 {
		t.Errorf("events after reopen: %d, %v; want 3", len(page.Items), err)
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := seededFile(t)

	s := openTemp(t, path) // applies migrations again on Open
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate on an up-to-date database: %v", err)
	}
	current, latest, err := s.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if current != latest || latest < 1 {
		t.Errorf("schema version %d of %d, want the latest", current, latest)
	}
	if _, err := s.Token(t.Context(), "tok_a1"); err != nil {
		t.Errorf("data after re-running migrations: %v", err)
	}
}

// TestNoPlaintextSecret is a sanity check on what reaches the disk: the
// secret goes in only as its keyed hash, and nothing spells it out.
func TestNoPlaintextSecret(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	secret := "shop_7Yq2c3QeLx0u1ZbT5uJ9mYtq2c3QeLx0u1ZbT5uJ9_1a2B3c"
	mac := hmac.New(sha256.New, []byte("pepper that lives outside the database"))
	mac.Write([]byte(secret))
	hash := mac.Sum(nil)
	seed(t, s, hash)
	if _, err := s.TokenBySecret(t.Context(), hash); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, hash) {
		t.Fatalf("the hash is not in the files of %s: this test is not reading the database", dir)
	}
	for _, part := range []string{secret, secret[5:], secret[:20]} {
		if bytes.Contains(all, []byte(part)) {
			t.Errorf("the database files contain %q of the secret", part)
		}
	}
}

func TestPragmas(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "tokend.db"))
	for _, p := range []struct {
		name string
		db   *sql.DB
	}{{"writer", s.w}, {"reader", s.r}} {
		for _, c := range []struct {
			pragma string
			want   string
		}{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"synchronous", "2"}, // FULL
			{"busy_timeout", "10000"},
		} {
			var got string
			if err := p.db.QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", p.name, c.pragma, err)
			}
			if got != c.want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", p.name, c.pragma, got, c.want)
			}
		}
	}
	// The read pool refuses writes, so none can bypass the writer's lock.
	if _, err := s.r.ExecContext(t.Context(), `DELETE FROM apps`); err == nil {
		t.Error("a write through the read pool succeeded")
	}
}

// TestTwoStoresOneFile stands for two tokend processes on one database:
// BEGIN IMMEDIATE and the busy timeout make their read-modify-writes queue
// instead of failing with SQLITE_BUSY or losing an update.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	a := openTemp(t, path)
	b := openTemp(t, path)
	seed(t, a, bytes.Repeat([]byte{7}, 32))

	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for _, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for range each {
				_, err := s.UpdateToken(t.Context(), "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
					tok.UseCount++
					return event(tokend.ActionTokenUpdate, "app_a", "tok_a1"), nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("UpdateToken: %v", err)
	}
	tok, err := b.Token(t.Context(), "tok_a1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.UseCount != 4*each {
		t.Errorf("UseCount = %d, want %d: updates were lost between stores", tok.UseCount, 4*each)
	}
}

func TestOpenOddPath(t *testing.T) {
	// Characters that mean something in a URI must stay part of the name.
	path := filepath.Join(t.TempDir(), "odd ?name#1%.db")
	openTemp(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not created at %q: %v", path, err)
	}
}

func TestOpenRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	openTemp(t, "tokend.db")
	if _, err := os.Stat("tokend.db"); err != nil {
		t.Errorf("database not created in the working directory: %v", err)
	}
}

func TestErrorTranslation(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "tokend.db"))
	seed(t, s, bytes.Repeat([]byte{7}, 32))
	// A raw uniqueness violation, past the store's friendlier name check,
	// is still a conflict: the driver's code decides, not its message.
	_, err := s.w.ExecContext(t.Context(), `INSERT INTO apps (id, name, token_prefix, permissions, created_at, updated_at, version)
		VALUES ('app_a', 'x', 'x', 'null', 0, 0, 1)`)
	if got := storeErr("test", err); tokend.CodeOf(got) != tokend.ECodeConflict {
		t.Errorf("duplicate primary key: %v, want CONFLICT", got)
	}
	err = s.r.QueryRowContext(t.Context(), `SELECT id FROM apps WHERE id = 'nope'`).Scan(new(string))
	if got := storeErr("test", err); got != tokend.ErrNotFound {
		t.Errorf("no rows: %v, want ErrNotFound", got)
	}
	// A canceled request stays recognisable as such to the caller.
	if got := storeErr("test", context.Canceled); !errors.Is(got, context.Canceled) {
		t.Errorf("canceled: %v, want it to wrap context.Canceled", got)
	}
}

// The unique index is what enforces live names; the store asks first only
// so that the answer can point at the field.
func TestNameConflictNamesTheField(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "tokend.db"))
	seed(t, s, bytes.Repeat([]byte{7}, 32))
	dup := tokend.Token{
		ID: "tok_a2", AppID: "app_a", Name: "ci", Type: tokend.TypeStandard, Access: tokend.AccessFull,
		Status: tokend.StatusActive, CreatedAt: t0, UpdatedAt: t0, Version: 1, SecretHash: bytes.Repeat([]byte{8}, 32),
	}
	err := s.CreateToken(t.Context(), dup, event(tokend.ActionTokenCreate, "app_a", "tok_a2"))
	var e *tokend.Error
	if !errors.As(err, &e) || e.Code != tokend.ECodeConflict || len(e.Fields) != 1 || e.Fields[0].Field != "name" {
		t.Errorf("CreateToken with a taken name: %#v, want a CONFLICT naming the field name", err)
	}
}

// seededFile answers the path of a closed database file holding seed's
// app and token.
func seededFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokend.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, bytes.Repeat([]byte{7}, 32))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWebhookConformance(t *testing.T) {
	storetest.RunWebhooks(t, func(t *testing.T) tokend.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "tokend.db"))
	})
}
