// Package postgres keeps tokend's apps, tokens, audit events and usage in a
// PostgreSQL database, through pgx. It is the PostgreSQL dialect of the SQL
// core in package sqlstore, which holds every query and runs it through
// database/sql on this package's pgx pool; this package connects, migrates,
// says how PostgreSQL spells what differs (flavor.go), and reads the
// verification cache miss through pgx itself (hot.go). It implements
// tokend.Store with the same semantics as package sqlite and passes the
// storetest conformance suite. Several tokend instances may share one
// database: migrations take an advisory lock, updates lock the row they
// read, and usage merges add up.
//
// It must not log anything, and it never sees a secret: only keyed hashes
// arrive here, and no error it returns carries a stored value. It holds no
// business rules beyond what the Store contract says; validation, clocks and
// audit wording belong to the service.
//
// Every write that changes what verification answers also announces the
// change (NOTIFY, delivered on commit), and a Listener relays what every
// instance announces to the local verification cache (listen.go).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3/lock"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultConnectTimeout bounds a new connection when the database URL sets
// no connect_timeout.
const DefaultConnectTimeout = 5 * time.Second

// Store is a tokend.Store on one PostgreSQL database, through a pool of
// connections, which the core reaches through database/sql.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
	db   *sql.DB // the pool, as database/sql sees it
}

var (
	_ tokend.Store        = (*Store)(nil)
	_ tokend.WebhookStore = (*Store)(nil)
)

// Open connects to the database at url (postgres://…), and brings its
// schema up to date.
func Open(ctx context.Context, url string) (*Store, error) {
	s, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	// Before the migrations, which would fail on a read-only database with
	// a message about a table.
	if err := s.ping(ctx, "connect"); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenReader connects to the database at url without migrating it, for
// commands that only read (`tokend audit verify`, `export`), which an
// auditor may run with a role that cannot write, or on a standby.
func OpenReader(ctx context.Context, url string) (*Store, error) {
	s, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.Close()
		return nil, storeErr("connect", err)
	}
	return s, nil
}

func connect(ctx context.Context, url string) (*Store, error) {
	cfg, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	return &Store{Store: sqlstore.New(flavor, db, db), pool: pool, db: db}, nil
}

// parseURL reads the database URL into a pool configuration.
func parseURL(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("postgres: the database URL is not a valid PostgreSQL connection string")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without connect_timeout in the URL, a server whose network drops
		// packets would hold every request that needs a new connection
		// for as long as the kernel retries (minutes); this answers
		// UNAVAILABLE instead.
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

// migrationLockID keys the advisory lock held while migrating. Advisory
// locks are per database, so tokend databases on one server do not wait for
// each other.
const migrationLockID int64 = 0x746f6b656e64 // "tokend"

// advisoryLock is held while migrating, so that instances starting
// together apply each migration once. It is a session-level advisory lock
// that waits in the server
// for its holder to finish, rather than polling: goose's own PostgreSQL
// locker retries every few seconds, which would make every instance that
// starts alongside another wait that long.
type advisoryLock struct{}

var _ lock.SessionLocker = advisoryLock{}

func (advisoryLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockID); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	return nil
}

func (advisoryLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, migrationLockID); err != nil {
		return fmt.Errorf("releasing the migration lock: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	err := s.db.Close()
	s.pool.Close()
	return err
}

// Ping reports whether the database answers and takes writes, in one
// round trip that writes nothing.
func (s *Store) Ping(ctx context.Context) error {
	return s.ping(ctx, "ping")
}

// errReadOnly is a database that answers but takes no writes.
var errReadOnly = errors.New("the database takes no writes")

func (s *Store) ping(ctx context.Context, op string) error {
	// A standby (in recovery) refuses every write; so does a session whose
	// transactions are read-only, which default_transaction_read_only
	// (set on the server, the database, the role or in the URL) makes them.
	var recovery bool
	var readOnly string
	err := s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('transaction_read_only')`).Scan(&recovery, &readOnly)
	if err != nil {
		return storeErr(op, err)
	}
	switch {
	case recovery:
		return tokend.Unavailable(fmt.Errorf("postgres: %s: %w: it is a standby in recovery; point tokend at the primary", op, errReadOnly))
	case readOnly == "on":
		return tokend.Unavailable(fmt.Errorf("postgres: %s: %w: transactions are read-only (default_transaction_read_only is on for this server, database, role or connection)", op, errReadOnly))
	}
	return nil
}
