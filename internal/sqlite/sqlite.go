// Package sqlite keeps tokend's apps, tokens, audit events and usage in one
// SQLite database file, through the pure-Go driver modernc.org/sqlite. It is
// the SQLite dialect of the SQL core in package sqlstore, which holds every
// query; this package opens and checks the file, migrates it, and says how
// SQLite spells what differs (flavor.go). It implements tokend.Store and
// passes the storetest conformance suite.
//
// It must not log anything, and it never sees a secret: only keyed hashes
// arrive here, and no error it returns carries a stored value.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a tokend.Store on one SQLite database file.
//
// Writes go through a pool of exactly one connection whose transactions
// begin IMMEDIATE: in-process writers queue in database/sql instead of
// spinning on SQLITE_BUSY, and a read-modify-write (UpdateToken) holds the
// write lock from its first read, so no other writer, in this process or
// another, can slip in between. Reads use their own pool: in WAL mode they
// neither wait for nor block the writer.
type Store struct {
	*sqlstore.Store
	w    *sql.DB // the single writer connection
	r    *sql.DB // read-only connections
	path string
	// bySecret is sqlstore.TokenBySecretQuery prepared once (on each read
	// connection as it is first used): the verification cache miss, which
	// would otherwise compile its statement on every read.
	bySecret *sql.Stmt
}

var (
	_ tokend.Store        = (*Store)(nil)
	_ tokend.WebhookStore = (*Store)(nil)
)

// busyTimeoutMS bounds how long a connection waits for a lock held by another
// process (another tokend, or the sqlite3 shell) before giving up.
const busyTimeoutMS = 10000

// Open opens (creating if needed) the database at path, checks that it can
// be written and is not damaged (PRAGMA quick_check), and brings its schema
// up to date. Its errors name the file and say what is wrong with it.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)

	s := &Store{Store: sqlstore.New(flavor, w, r), w: w, r: r, path: path}
	// The writer connects first: it switches the file to WAL, which is
	// persistent, before any reader opens it.
	if err := w.PingContext(ctx); err != nil {
		s.Close()
		return nil, openErr(path, err)
	}
	// Both checks come before the migrations, which would otherwise fail
	// on such a file with a message about a table.
	if err := s.writable(ctx); err != nil {
		s.Close()
		return nil, openErr(path, err)
	}
	if err := s.quickCheck(ctx); err != nil {
		s.Close()
		return nil, openErr(path, err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	// The audit rows written before the hash chain existed join it at the
	// first open after migration 00015.
	if err := s.ChainLegacy(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	if s.bySecret, err = r.PrepareContext(ctx, flavor.Text(sqlstore.TokenBySecretQuery)); err != nil {
		s.Close()
		return nil, openErr(path, err)
	}
	return s, nil
}

// OpenReader opens the existing database at path for reading only: no
// migration, no write, no lock on the data directory, so that `tokend
// audit verify` and `export` may run beside a serving tokend.
func OpenReader(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{Store: sqlstore.New(flavor, r, r), w: r, r: r, path: path}
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		return nil, openErr(path, err)
	}
	return s, nil
}

// dsn builds the driver's connection string. Every pragma is applied on every
// new connection, because foreign_keys, synchronous and busy_timeout are per
// connection in SQLite.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	// FULL syncs the WAL on every commit: an acknowledged write survives a
	// power loss, not only a crash of the process.
	q.Add("_pragma", "synchronous(FULL)")
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	} else {
		// A bug that writes through the read pool fails loudly instead of
		// racing the writer for the lock.
		q.Add("_pragma", "query_only(1)")
	}
	return fileURL(path, q)
}

// fileURL is the URI filename of path with the parameters q.
func fileURL(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	if path[0] != '/' {
		// A relative path stays relative: "file:data/tokend.db".
		u = url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath(), RawQuery: q.Encode()}
	}
	return u.String()
}

// Close closes the database. Pending transactions are rolled back by SQLite.
func (s *Store) Close() error {
	var err error
	if s.bySecret != nil {
		err = s.bySecret.Close()
	}
	if s.w == s.r {
		return errors.Join(err, s.r.Close())
	}
	return errors.Join(err, s.r.Close(), s.w.Close())
}

// TokenBySecret runs the prepared bySecret (see sqlstore.CredentialBySecret).
func (s *Store) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	return s.CredentialBySecret(s.bySecret.QueryRowContext(ctx, hash))
}

// Ping reports whether the read pool reaches the database and the writer
// could write to it (see writable).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return storeErr("ping", err)
	}
	if err := s.writable(ctx); err != nil {
		return storeErr("ping", err)
	}
	return nil
}

// writable reports whether a write would go through, without writing: the
// database file and its WAL may still be written by this process (not made
// read-only, immutable, or on a file system remounted read-only since it
// was opened), and the writer can take the write lock. BEGIN IMMEDIATE
// fails with SQLITE_READONLY on a connection that SQLite opened read-only
// because the file could not be opened for writing.
func (s *Store) writable(ctx context.Context) error {
	for _, p := range []string{s.path, s.path + "-wal"} {
		if err := canWrite(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &readOnlyError{path: p, err: err}
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	return tx.Rollback()
}

// readOnlyError is a database file this process may not write.
type readOnlyError struct {
	path string
	err  error
}

func (e *readOnlyError) Error() string {
	return fmt.Sprintf("%s cannot be written: %v", e.path, e.err)
}

func (e *readOnlyError) Unwrap() error { return e.err }

// quickCheck runs PRAGMA quick_check, which reads every page of the file
// and checks the structure of every table and index (not that indexes
// match their rows, which integrity_check adds at several times the cost).
func (s *Store) quickCheck(ctx context.Context) error {
	return check(ctx, s.w, "quick_check")
}

// check runs PRAGMA pragma (quick_check or integrity_check) and answers a
// *damagedError with the first problems it finds.
func check(ctx context.Context, db *sql.DB, pragma string) error {
	const shown = 5 // problems quoted in the error
	rows, err := db.QueryContext(ctx, fmt.Sprintf("PRAGMA %s(%d)", pragma, shown))
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		if line != "ok" {
			problems = append(problems, strings.ReplaceAll(line, "\n", " "))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return &damagedError{check: pragma, problems: problems}
	}
	return nil
}

// damagedError is a database file that fails the integrity check.
type damagedError struct {
	check    string // the pragma that found the problems
	problems []string
}

func (e *damagedError) Error() string {
	return "PRAGMA " + e.check + " found: " + strings.Join(e.problems, "; ")
}

// openErr says what is wrong with the database file at path when Open
// cannot use it, in words an operator can act on.
func openErr(path string, err error) error {
	var ro *readOnlyError
	var dmg *damagedError
	var se *sqlite.Error
	switch {
	case errors.As(err, &dmg):
		return fmt.Errorf("sqlite: the database %s is damaged (%v): restore it from a backup", path, err)
	case errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_CORRUPT || se.Code()&0xff == sqlite3.SQLITE_NOTADB):
		return fmt.Errorf("sqlite: the database %s is damaged or not a SQLite database (%v): restore it from a backup", path, err)
	case errors.As(err, &ro), errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY:
		return fmt.Errorf("sqlite: the database %s is read-only (%v): tokend must be able to write it, its -wal and -shm files and its directory; check their owner and mode, immutable flags (lsattr), and that the file system is mounted read-write", path, err)
	}
	return fmt.Errorf("sqlite: open %s: %w", path, err)
}
