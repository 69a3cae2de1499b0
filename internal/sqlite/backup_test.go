package sqlite

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"
)

// A copy made while the store holds an open write transaction has every
// commit before it and nothing of the transaction, and the store's writer
// goes on meanwhile: Copy neither waits for the write lock nor takes it.
func TestCopyIsASnapshotBesideAWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	s := openTemp(t, path)
	seed(t, s, bytes.Repeat([]byte{7}, 32))
	if _, err := s.InitSetting(t.Context(), "pepper_fingerprint", "f00d"); err != nil {
		t.Fatal(err)
	}

	// A write transaction held open across the copy: the copy must not
	// wait for it (it would time out after busyTimeoutMS) nor see it.
	tx, err := s.w.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE tokens SET name = 'uncommitted' WHERE id = 'tok_a1'`); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "copy.db")
	if err := Copy(t.Context(), path, out); err != nil {
		t.Fatalf("Copy beside an open write transaction: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the writer's commit after the copy: %v", err)
	}

	info, err := Inspect(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != info.Latest || info.Latest < 14 || info.Apps != 1 || info.Tokens != 1 || info.Events != 2 || info.Settings["pepper_fingerprint"] != "f00d" {
		t.Errorf("Inspect(copy) = %+v", info)
	}
	c := openTemp(t, out)
	tok, err := c.Token(t.Context(), "tok_a1")
	if err != nil || tok.Name != "ci" {
		t.Errorf("the copy's token: %q, %v; want the committed name ci", tok.Name, err)
	}
}

func TestCopyRefusesAnExistingFileAndCreatesNoSource(t *testing.T) {
	dir := t.TempDir()
	path := seededFile(t)
	out := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Copy(t.Context(), path, out); err == nil {
		t.Error("Copy overwrote a file that is not empty")
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Errorf("the existing file now holds %q", b)
	}
	missing := filepath.Join(dir, "missing.db")
	if err := Copy(t.Context(), missing, filepath.Join(dir, "other.db")); err == nil {
		t.Error("Copy of a missing database succeeded")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Copy created the missing source: %v", err)
	}
}

func TestInspectRefusesWhatIsNotAGoodTokendDatabase(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", dsn(other, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (body TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	newer := seededFile(t)
	db, err = sql.Open("sqlite", dsn(newer, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, c := range []struct {
		name, path string
		want       string
	}{
		{"text file", write("notes.txt", bytes.Repeat([]byte("not a database\n"), 400)), "is not a SQLite database"},
		{"empty file", write("empty.db", nil), "is not a tokend database"},
		{"another SQLite database", other, "is not a tokend database"},
		{"damaged", damagedFile(t), "is damaged"},
		{"newer schema", newer, "database schema version 9999 is newer than this tokend"},
		{"missing", filepath.Join(dir, "missing.db"), "does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Inspect(t.Context(), c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Inspect = %v; want it to say %q", err, c.want)
			}
		})
	}
}

// damagedFile answers a tokend database of several pages with one page in
// the middle overwritten.
func damagedFile(t *testing.T) string {
	t.Helper()
	path := seededFile(t)
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		tok := tokend.Token{
			ID: fmt.Sprintf("tok_x%04d", i), AppID: "app_a", Name: fmt.Sprintf("token %d", i), Type: tokend.TypeStandard,
			Access: tokend.AccessFull, Status: tokend.StatusActive, Masked: "shop_…abcd", CreatedAt: t0, UpdatedAt: t0,
			Version: 1, SecretHash: bytes.Repeat([]byte{byte(i), byte(i >> 8), 1}, 11)[:32],
		}
		if err := s.CreateToken(t.Context(), tok, event(tokend.ActionTokenCreate, "app_a", tok.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if st.Size() < 8*page {
		t.Fatalf("the database has only %d bytes; the test needs several pages", st.Size())
	}
	// One page in the middle of the file, overwritten.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte("garbage!"), page/8), st.Size()/page/2*page); err != nil {
		t.Fatal(err)
	}
	return path
}

// Migrate refuses a database a newer tokend migrated, before it writes
// anything, and MigrationStatus reads it without writing.
func TestANewerSchemaIsRefused(t *testing.T) {
	path := seededFile(t)
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	latest, err := flavor.Migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("database schema version 9999 is newer than this tokend (%d); upgrade tokend", latest)
	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open migrated a database with a newer schema")
	}
	var tooNew *sqlstore.SchemaTooNewError
	if !errors.As(err, &tooNew) || !strings.Contains(err.Error(), want) {
		t.Errorf("Open = %v; want %q", err, want)
	}
	if _, err := MigrationStatus(t.Context(), path); !errors.As(err, &tooNew) {
		t.Errorf("MigrationStatus = %v; want %q", err, want)
	}
}

// MigrationStatus lists what Open would apply, and creates nothing.
func TestMigrationStatusWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	st, err := MigrationStatus(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != 0 || len(st.Pending) != int(st.Latest) || st.Pending[0].Version != 1 || st.Pending[0].Name != "init" {
		t.Errorf("a missing file: %+v", st)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MigrationStatus created the file: %v", err)
	}
	path = seededFile(t)
	if st, err := MigrationStatus(t.Context(), path); err != nil || st.Current != st.Latest || len(st.Pending) != 0 {
		t.Errorf("an up-to-date database: %+v, %v", st, err)
	}
}
