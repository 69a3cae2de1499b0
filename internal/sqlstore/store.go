// Package sqlstore is the one SQL implementation of tokend.Store, on
// database/sql, that package sqlite and package postgres serve with a small
// Flavor each (the way dexidp/dex's storage/sql serves several databases):
// every query is written here once, with one row codec per table, and the
// flavor says only what the two databases spell differently (placeholders,
// time and JSON columns, row locks, error classification, search, change
// notification).
//
// It must not log anything, and it never sees a secret: only keyed hashes
// arrive here, and no error it returns carries a stored value. It holds no
// business rules beyond what the Store contract says; validation, clocks and
// audit wording belong to the service.
//
// # Writing queries
//
// Queries are written with PostgreSQL's numbered placeholders ($1, $2…; a
// number may stand twice). A fixed query is a Query, rebound once for each
// flavor when the package starts (SQLite reads $1 as ?1); a query built per
// call goes through Store.rebind. Times go in through Store.time and come
// out through a Time or NullTime destination, JSON through toJSON and a
// JSON destination, nullable integers through a NullInt64, so that one scan
// function reads a row of either database, from database/sql or from pgx.
//
// # Adding a table
//
//  1. One migration per dialect: internal/sqlite/migrations and
//     internal/postgres/migrations (INTEGER unix microseconds and TEXT JSON
//     on SQLite, timestamptz and jsonb on PostgreSQL).
//  2. One file here, say widgets.go, with the column list, the Query values,
//     one args function and one scan function for the row, and the Store
//     methods. Writes go through Store.Write (one transaction; the event of
//     the change inside it, by Store.InsertEvent); a row read to be changed
//     is read with the flavor's ForUpdate appended; a change that
//     verification must hear of calls Store.changed in the same
//     transaction; a list is read by list and cut by page.
//  3. Add the methods to tokend.Store (or its own interface) and to the
//     conformance suite in internal/storetest; both dialects then pass it.
//
// Only what one database cannot spell as the other does belongs in a dialect
// package, behind a Flavor field.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
)

// Flavor is what a dialect tells the core.
type Flavor struct {
	// Name prefixes every error: "sqlite", "postgres".
	Name string
	// Migrations bring the schema up to date (Migrate).
	Migrations Migrations
	// Question rebinds $n placeholders to ?n (SQLite).
	Question bool
	// Time converts a time to what the database's time columns take.
	Time func(time.Time) any
	// ForUpdate is appended to a read whose row the transaction will
	// change (" FOR UPDATE"); ForKeyShare and ForNoKeyUpdate likewise.
	// Empty where the transaction holds the whole database's write lock
	// already (SQLite: BEGIN IMMEDIATE on the single writer connection).
	ForUpdate, ForKeyShare, ForNoKeyUpdate string
	// SkipLocked is appended to a read of rows to take that other
	// instances may be taking at the same time (the outbox, due
	// deliveries): it locks the rows it reads and skips those locked
	// already (" FOR UPDATE SKIP LOCKED"). Empty where the write lock
	// covers the whole database (SQLite).
	SkipLocked string
	// LockUsers is run before CreateFirstUser reads whether the users
	// table is empty; empty where the write lock covers it.
	LockUsers string
	// LockAppNames is run before a transaction that creates or renames an
	// app looks for another app of that name, and held until it ends, so
	// that two such transactions cannot both find the name free; empty
	// where the write lock covers it.
	LockAppNames string
	// ByteOrder is appended to a text column in ORDER BY so that it sorts
	// by byte whatever the database's locale (` COLLATE "C"`).
	ByteOrder string
	// ILike matches a pattern ignoring case (ILIKE; SQLite's LIKE does so
	// for ASCII letters). Last4 is the expression of the last four
	// characters of the masked secret.
	ILike, Last4 string
	// CheckUnique: ask before a write whether it would break the unique
	// indexes on live token names and emails, so that the conflict names
	// the field. It holds where the write lock keeps anyone from slipping
	// in between (SQLite); PostgreSQL names the index in the error
	// instead, which Classify turns into the same answer.
	CheckUnique bool
	// ListArgs are put before the arguments of a filtered list query
	// (PostgreSQL: the exec mode that plans it for these very values).
	ListArgs []any
	// EventWriteLock is run in a transaction before it inserts an event,
	// EventReadLock before Events reads them, in a read-only transaction
	// of its own (see postgres/events.go). Empty: none.
	EventWriteLock, EventReadLock string
	// ChainInTx: chain each audit row in the transaction that writes it
	// (SQLite, whose writes are serial anyway); otherwise rows are chained
	// after commit, by ChainAudit (see chain.go).
	ChainInTx bool
	// ChainCommit, run first in a transaction of ChainAudit, lets its
	// commit return before it is on disk. Chaining is deterministic (the
	// rows in id order after the head), so a pass that a crash of the
	// database loses is made again, to the same hashes, by the next one.
	// Empty: commits as every other write.
	ChainCommit string
	// Snapshot are the options of the read transaction that verifies or
	// exports the audit log, which must see one consistent state.
	Snapshot *sql.TxOptions
	// LeadLock answers, for the name $1, whether this transaction now
	// holds the lock that lets one instance of many run a job (Lead), and
	// holds it until the transaction ends. Empty where one process owns
	// the database: every job runs.
	LeadLock string
	// Notify announces, inside the writing transaction, a change that
	// verification caches must hear of; nil when there is no one to tell.
	Notify func(ctx context.Context, tx *sql.Tx, kind, id string) error
	// Classify turns a driver error into the domain's (cause is err
	// wrapped with the operation); the core has already handled nil, a
	// tokend error and sql.ErrNoRows.
	Classify func(cause, err error) error
	// ForeignKey reports whether err is a foreign key violation.
	ForeignKey func(err error) bool
	// Retryable reports whether the transaction was rolled back by a
	// deadlock or serialization failure and may simply run again.
	Retryable func(err error) bool
	// ExecBatch, if set, sends the statements of a flush in one round trip
	// on conn, inside the transaction open on it (PostgreSQL: a pgx batch).
	// Without it they run one by one, each prepared once.
	ExecBatch func(ctx context.Context, conn *sql.Conn, stmts []Stmt) error
}

// Stmt is one statement of a batch, as the flavor spells it.
type Stmt struct {
	SQL  string
	Args []any
}

// What a change notification names.
const (
	ChangedToken = "token"
	ChangedApp   = "app"
)

// Store is a tokend.Store on a database/sql database of one flavor.
type Store struct {
	f    *Flavor
	w, r *sql.DB // writes, and reads (the same pool on PostgreSQL)

	// outboxHook is called after a commit that wrote to the outbox
	// (outboxWritten set by insertNotices); see SetOutboxHook.
	outboxHook    atomic.Pointer[func()]
	outboxWritten atomic.Bool

	// unchained holds the open transactions that wrote an audit row left
	// for ChainAudit; their commit kicks RunChainer through chainKick.
	unchained sync.Map
	chainKick chan struct{}
}

// SetOutboxHook has fn called after each commit that wrote events to the
// outbox, so that a dispatcher in this process takes them at once instead
// of at its next poll. fn must not block. A hook may now and then be
// called early or not at all (writes commit concurrently): the poll stays
// the guarantee.
func (s *Store) SetOutboxHook(fn func()) { s.outboxHook.Store(&fn) }

// The dialects add Ping, Close and their migrations to make a tokend.Store.
var (
	_ tokend.UserStore    = (*Store)(nil)
	_ tokend.WebhookStore = (*Store)(nil)
)

// New is a store that writes through w and reads through r.
func New(f *Flavor, w, r *sql.DB) *Store {
	return &Store{f: f, w: w, r: r, chainKick: make(chan struct{}, 1)}
}

// Query is a fixed query, rebound once per placeholder style.
type Query struct{ dollar, question string }

// Q makes a Query of text written with $n placeholders.
func Q(text string) Query { return Query{dollar: text, question: rebind(text)} }

// Text answers the query as the flavor spells it.
func (f *Flavor) Text(q Query) string {
	if f.Question {
		return q.question
	}
	return q.dollar
}

func (s *Store) sql(q Query) string { return s.f.Text(q) }

// rebind spells a query built per call as the flavor does.
func (s *Store) rebind(q string) string {
	if s.f.Question {
		return rebind(q)
	}
	return q
}

// rebind turns $n into ?n, SQLite's numbered placeholder (which, like $n,
// may stand several times). No query of the store has a $ in a literal.
func rebind(q string) string {
	return strings.ReplaceAll(q, "$", "?")
}

// Write runs fn in one write transaction and commits when fn returns nil.
// fn's error is returned unchanged, so that an updater's own error reaches
// the caller as is.
func (s *Store) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.Err("begin", err)
	}
	return s.commit(tx, fn(tx))
}

// writeConn is Write that also hands fn the connection of the transaction,
// for the flavor's ExecBatch.
func (s *Store) writeConn(ctx context.Context, fn func(conn *sql.Conn, tx *sql.Tx) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return s.Err("begin", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return s.Err("begin", err)
	}
	return s.commit(tx, fn(conn, tx))
}

// commit commits tx when err is nil, and rolls it back otherwise.
func (s *Store) commit(tx *sql.Tx, err error) error {
	if err != nil {
		_ = tx.Rollback()
		s.committed(tx, false)
		return err
	}
	err = tx.Commit()
	s.committed(tx, err == nil)
	if err != nil {
		return s.Err("commit", err)
	}
	if s.outboxWritten.Swap(false) {
		if fn := s.outboxHook.Load(); fn != nil {
			(*fn)()
		}
	}
	return nil
}

// retry runs write again after a deadlock or serialization failure, which
// rolled it back whole, so that running it again adds nothing twice.
func (s *Store) retry(write func() error) error {
	var err error
	for range 3 {
		if err = write(); s.f.Retryable == nil || !s.f.Retryable(err) {
			return err
		}
	}
	return err
}

// Err translates a driver error into the domain's errors: a missing row is
// not found; the rest the flavor classifies, by error code, never by
// message.
func (f *Flavor) Err(op string, err error) error {
	if err == nil {
		return nil
	}
	var te *tokend.Error
	if errors.As(err, &te) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return tokend.ErrNotFound
	}
	return f.Classify(fmt.Errorf("%s: %s: %w", f.Name, op, err), err)
}

// Err is the flavor's Err.
func (s *Store) Err(op string, err error) error { return s.f.Err(op, err) }

// internal is a stored value the store cannot decode or encode.
func (s *Store) internal(what string, err error) error {
	return tokend.Internal(fmt.Errorf("%s: %s: %w", s.f.Name, what, err))
}

// changed announces a change to verification caches, in tx.
func (s *Store) changed(ctx context.Context, tx *sql.Tx, kind, id string) error {
	if s.f.Notify == nil {
		return nil
	}
	return s.Err("notify", s.f.Notify(ctx, tx, kind, id))
}

// affectedOne turns "no row matched" into ErrNotFound.
func (s *Store) affectedOne(res sql.Result, err error, op string) error {
	n, err := s.affected(res, err, op)
	if err == nil && n == 0 {
		return tokend.ErrNotFound
	}
	return err
}

// affected answers how many rows a statement changed.
func (s *Store) affected(res sql.Result, err error, op string) (int64, error) {
	if err != nil {
		return 0, s.Err(op, err)
	}
	n, err := res.RowsAffected()
	return n, s.Err(op, err)
}

// staleIfExists answers, for a conditional delete or update that matched no
// row, ErrStale when the row is there (its version is not the one expected) and
// err (ErrNotFound, or a failure) when it is not.
func (s *Store) staleIfExists(ctx context.Context, tx *sql.Tx, query Query, id string, err error) error {
	if !errors.Is(err, tokend.ErrNotFound) {
		return err
	}
	var one int
	switch e := tx.QueryRowContext(ctx, s.sql(query), id).Scan(&one); {
	case e == nil:
		return tokend.ErrStale
	case errors.Is(e, sql.ErrNoRows):
		return tokend.ErrNotFound
	default:
		return s.Err("delete", e)
	}
}

// Row is a *sql.Row, *sql.Rows, pgx.Row or pgx.Rows.
type Row interface {
	Scan(dest ...any) error
}

// list reads every row of q with scan.
func list[T any](ctx context.Context, s *Store, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, op, q string, args []any, scan func(Row) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.Err(op, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.Err(op, err)
	}
	return out, nil
}
