package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"
)

// flavor is how PostgreSQL spells what the SQL core needs. Several
// instances write at once, so a read-modify-write locks the rows it reads,
// and the unique indexes alone decide a conflict (storeErr names the field
// by the index).
var flavor = &sqlstore.Flavor{
	Name:       "postgres",
	Migrations: sqlstore.Migrations{FS: migrations, Dialect: goose.DialectPostgres, Locker: advisoryLock{}},
	Time:       ts,
	// UpdateToken, UpdateApp, and the users an update checks its rules
	// against.
	ForUpdate: " FOR UPDATE",
	// A flush's tokens: they cannot be deleted under it, and flushes of
	// the same tokens queue in id order instead of deadlocking.
	ForKeyShare: " FOR KEY SHARE",
	// Activity's tokens, and the tokens RevokeAppTokens revokes: an
	// activity flush of a token waits for another's prune.
	ForNoKeyUpdate: " FOR NO KEY UPDATE",
	// The outbox events one instance dispatches and the deliveries it
	// claims: the others take the next ones instead of waiting.
	SkipLocked: " FOR UPDATE SKIP LOCKED",
	LockUsers:  `LOCK TABLE users IN EXCLUSIVE MODE`,
	// Creates and renames of apps, one after the other (apps are few and
	// rarely change; nothing else waits for it).
	LockAppNames: appNamesLock,
	// Names and codes sort by byte, as on SQLite, whatever the database's
	// locale.
	ByteOrder: ` COLLATE "C"`,
	// The trigram index on name serves ILIKE (see the migrations).
	ILike: "ILIKE",
	Last4: "right(masked, 4)",
	// A statement prepared once and run many times gets, after a few runs,
	// a generic plan made without its values; with a million tokens the
	// generic plan of "expired" walks every token when few have expired,
	// and that of a name search that matches every token sorts them all,
	// where the plans for the values take milliseconds. So filtered lists
	// are run so that the server plans them for these very values.
	ListArgs:       []any{pgx.QueryExecModeExec},
	EventWriteLock: eventWriteLock,
	EventReadLock:  eventReadLock,
	LeadLock:       leadLock,
	// The chainer's commit need not wait for its fsync, which would
	// compete with the writers' (see sqlstore's Flavor.ChainCommit).
	ChainCommit: `SET LOCAL synchronous_commit = off`,
	// Verification reads the audit rows, the head and the checkpoint as of
	// one moment.
	Snapshot:   &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	Notify:     notify,
	Classify:   classify,
	ForeignKey: isForeignKey,
	Retryable:  retryable,
	ExecBatch:  execBatch,
}

// execBatch sends a flush's statements in one round trip, on the pgx
// connection under conn, inside the transaction open on it.
func execBatch(ctx context.Context, conn *sql.Conn, stmts []sqlstore.Stmt) error {
	return conn.Raw(func(dc any) error {
		var b pgx.Batch
		for _, st := range stmts {
			b.Queue(st.SQL, st.Args...)
		}
		return dc.(*stdlib.Conn).Conn().SendBatch(ctx, &b).Close()
	})
}

// Times are written as whole microseconds in UTC, truncated the way the
// SQLite store truncates them, so that both backends give back the same
// times; timestamptz keeps exactly that. PostgreSQL would round a nanosecond
// remainder instead, so the store never lets one reach it.
func ts(t time.Time) any { return time.UnixMicro(t.UnixMicro()).UTC() }

// SQLSTATE codes the store tells apart.
const (
	sqlUniqueViolation     = "23505"
	sqlForeignKeyViolation = "23503"
	sqlSerialization       = "40001"
	sqlDeadlock            = "40P01"
	sqlTooManyConnections  = "53300"
	sqlAdminShutdown       = "57P01"
	sqlCrashShutdown       = "57P02"
	sqlCannotConnectNow    = "57P03"
)

// The unique indexes whose violation is a conflict on a field (see the
// migrations): the names of live tokens, and lower(email) of users.
const (
	liveNameIndex = "tokens_live_name"
	emailIndex    = "users_email"
)

// storeErr translates a driver error into the domain's errors (see
// classify).
func storeErr(op string, err error) error { return flavor.Err(op, err) }

// classify sorts a driver error by SQLSTATE and error type, never by
// message: a uniqueness violation is a conflict, a lost or refused
// connection or a deadline that ran out is an outage worth retrying.
// Anything else is internal.
func classify(cause, err error) error {
	if errors.Is(err, context.Canceled) {
		return cause // the caller gave up; nothing to say about the database
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The database did not answer in time: down, or behind a network
		// that went silent.
		return tokend.Unavailable(cause)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == sqlUniqueViolation && pe.ConstraintName == liveNameIndex:
			return sqlstore.NameTaken(cause)
		case pe.Code == sqlUniqueViolation && pe.ConstraintName == emailIndex:
			return sqlstore.EmailTaken(cause)
		case pe.Code == sqlUniqueViolation:
			return &tokend.Error{Code: tokend.ECodeConflict, Message: "conflicts with an existing record", Cause: cause}
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == sqlSerialization, pe.Code == sqlDeadlock,
			pe.Code == sqlTooManyConnections, pe.Code == sqlAdminShutdown,
			pe.Code == sqlCrashShutdown, pe.Code == sqlCannotConnectNow:
			return tokend.Unavailable(cause)
		}
		return tokend.Internal(cause)
	}
	// database/sql answers a connection that broke inside a transaction,
	// which it cannot retry on another, with ErrBadConn.
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return tokend.Unavailable(cause)
	}
	return tokend.Internal(cause)
}

// retryable reports whether err is a deadlock or serialization failure, after
// which the server rolled the transaction back and running it again is safe.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == sqlDeadlock || pe.Code == sqlSerialization)
}

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == sqlForeignKeyViolation
}
