package sqlite

import (
	"context"
	"errors"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"
)

// flavor is how SQLite spells what the SQL core needs.
//
// No row locks (FOR UPDATE and the like): every write transaction runs on
// the single writer connection and begins IMMEDIATE, so it holds the
// database's write lock from its first statement, against this process and
// every other. For the same reason the core may ask before a write whether
// it would break a unique index (CheckUnique), to name the field in the
// conflict: nobody can slip in between.
//
// TakeUse's conditional UPDATE is committed on its own by that writer, which
// syncs the WAL on every commit (synchronous FULL): a use it answers ok for
// survives a crash of the process and of the machine, and the single writer
// and SQLite's write lock across processes make the check and the increment
// one step.
var flavor = &sqlstore.Flavor{
	Name:       "sqlite",
	Migrations: sqlstore.Migrations{FS: migrations, Dialect: goose.DialectSQLite3},
	Question:   true,
	// Times are stored as INTEGER unix microseconds in UTC. Microseconds are
	// what PostgreSQL's timestamptz keeps, so both backends give back the
	// same times; they also cover any year a user may type, where
	// nanoseconds end in 2262.
	Time: func(t time.Time) any { return t.UnixMicro() },
	// SQLite's LIKE ignores case for ASCII letters only.
	ILike:       "LIKE",
	Last4:       "substr(masked, -4)",
	CheckUnique: true,
	// Writes are serial: each audit row joins the chain in its own
	// transaction, and a row outside the chain was not written by tokend.
	ChainInTx:  true,
	Classify:   classify,
	ForeignKey: isForeignKey,
}

// storeErr translates a driver error into the domain's errors (see
// classify).
func storeErr(op string, err error) error { return flavor.Err(op, err) }

// classify sorts a driver error by SQLite's extended result code, never by
// its message: a uniqueness violation is a conflict, a lock that stayed busy
// past the timeout is an outage worth retrying. Anything else is internal.
func classify(cause, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return cause
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &tokend.Error{Code: tokend.ECodeConflict, Message: "conflicts with an existing record", Cause: cause}
		}
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return tokend.Unavailable(cause)
		}
	}
	return tokend.Internal(cause)
}

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
