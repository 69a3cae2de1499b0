package postgres

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"
)

// invalidationChannel is the NOTIFY channel on which every write that
// changes a verification answer announces what it changed. Channels are per
// database, so tokend databases sharing a server do not hear each other.
const invalidationChannel = "tokend_invalidate"

// What a notification's payload names: "token:<id>" or "app:<id>".
const (
	changedToken = sqlstore.ChangedToken
	changedApp   = sqlstore.ChangedApp
)

// notify announces a change inside the writing transaction, twice: by
// pg_notify to the instances that LISTEN, and by a row of the change log to
// those that poll it (instances of one deployment may mix both). PostgreSQL
// delivers the notification only when the transaction commits, and not at
// all when it rolls back, and the row becomes visible at the same moment, so
// neither kind of instance hears of a change that did not happen, nor before
// it can be read.
//
// The transaction takes its id before the row takes its seq (the
// MATERIALIZED subquery runs first): the poller relies on a seq's
// transaction being in progress in every snapshot that sees a later seq
// but not this one (see Poller).
func notify(ctx context.Context, tx *sql.Tx, kind, id string) error {
	_, err := tx.ExecContext(ctx, notifyQuery, invalidationChannel, kind, id)
	return err
}

const notifyQuery = `WITH x AS MATERIALIZED (SELECT pg_current_xact_id() AS xid),
l AS (INSERT INTO change_log (kind, id) SELECT $2, $3 FROM x RETURNING seq)
SELECT pg_notify($1, $2 || ':' || $3) FROM l`

// ListenOptions tune a Listener. The zero value is the default.
type ListenOptions struct {
	Logger *slog.Logger // default discards
	// Heartbeat is how long the connection may stay silent before it is
	// pinged; a connection that does not answer is given up, so that a
	// network that fails silently is noticed within Heartbeat+Timeout.
	// Default 1s.
	Heartbeat time.Duration
	// Timeout bounds connecting, LISTEN and each ping. Default 2s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts, which doubles from the first to the second. Defaults 100ms
	// and 5s.
	MinBackoff, MaxBackoff time.Duration
}

// Defaults for the zero ListenOptions fields.
const (
	DefaultHeartbeat     = time.Second
	DefaultListenTimeout = 2 * time.Second
	DefaultMinBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff    = 5 * time.Second
)

// Listener relays the changes that every instance's writes announce to a
// local cache of verification answers, over a connection of its own (LISTEN
// needs one that stays open, which a pool's connections do not). Whenever
// the connection is lost it tells the cache that it is out of sync, and once
// it listens again, that it is back in sync and must forget what it holds.
//
// Its counters are for monitoring. It is safe for concurrent use; Run is
// called once.
type Listener struct {
	cfg    *pgx.ConnConfig
	target tokend.Resyncer
	log    *slog.Logger
	o      ListenOptions

	connected     atomic.Bool
	sessions      atomic.Int64 // connections made
	notifications atomic.Int64
	pid           atomic.Uint32 // the server process of the current connection
}

// Listener makes a Listener that connects to the store's database as the
// store's pool does, and keeps target in step. Start it with Run.
func (s *Store) Listener(target tokend.Resyncer, o ListenOptions) *Listener {
	feedDefaults(&o.Logger, &o.MinBackoff, &o.MaxBackoff)
	orDefault(&o.Heartbeat, DefaultHeartbeat)
	orDefault(&o.Timeout, DefaultListenTimeout)
	cfg := s.pool.Config().ConnConfig.Copy()
	// The listener is easy to tell apart in pg_stat_activity.
	name := cfg.RuntimeParams["application_name"]
	if name == "" {
		name = "tokend"
	}
	cfg.RuntimeParams["application_name"] = name + " listener"
	return &Listener{cfg: cfg, target: target, log: o.Logger, o: o}
}

// Connected reports whether the listener is listening now.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Reconnects counts the connections made after the first one.
func (l *Listener) Reconnects() int64 { return max(0, l.sessions.Load()-1) }

// Notifications counts the changes relayed.
func (l *Listener) Notifications() int64 { return l.notifications.Load() }

// Run listens until ctx is done, reconnecting after every failure with a
// backoff that doubles up to MaxBackoff. Until the first connection is made
// the target is out of sync from the moment Run starts.
func (l *Listener) Run(ctx context.Context) {
	l.target.OutOfSync(time.Now())
	backoff := l.o.MinBackoff
	failures := 0
	for {
		lastGood, err := l.session(ctx)
		wasConnected := l.connected.Swap(false)
		if ctx.Err() != nil {
			return
		}
		if wasConnected {
			l.target.OutOfSync(lastGood)
			l.log.Warn("invalidation listener lost its connection; cached answers are trusted for a bounded time until it is back",
				"err", err, "last_good", lastGood)
			backoff, failures = l.o.MinBackoff, 0
		} else {
			failures++
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			l.log.Log(ctx, level, "invalidation listener cannot connect; retrying", "err", err, "attempt", failures, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, l.o.MaxBackoff)
	}
}

// session connects, listens and relays until the connection fails. It
// answers when the connection was last known to work (zero if it never
// did): every change committed before then has been relayed.
func (l *Listener) session(ctx context.Context) (lastGood time.Time, err error) {
	cctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	conn, err := pgx.ConnectConfig(cctx, l.cfg)
	cancel()
	if err != nil {
		return time.Time{}, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), l.o.Timeout)
		defer cancel()
		conn.Close(cctx)
	}()
	cctx, cancel = context.WithTimeout(ctx, l.o.Timeout)
	_, err = conn.Exec(cctx, "LISTEN "+invalidationChannel)
	cancel()
	if err != nil {
		return time.Time{}, err
	}
	// From here on every committed change reaches this connection, so what
	// the cache holds from before can go.
	lastGood = time.Now()
	l.pid.Store(conn.PgConn().PID())
	l.sessions.Add(1)
	l.connected.Store(true)
	l.target.Resync()
	l.log.Info("invalidation listener connected", "reconnects", l.Reconnects())

	for {
		if wait := l.o.Heartbeat - time.Since(lastGood); wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, wait)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			if n != nil {
				l.relay(n)
			}
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return lastGood, ctx.Err()
			}
			if !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
				return lastGood, err
			}
		}
		// A heartbeat: the server answering a ping after sending everything
		// committed before it proves nothing was missed up to the ping.
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return lastGood, ctx.Err()
			}
			return lastGood, err
		}
		lastGood = start
	}
}

// feedDefaults fills in the options a Listener and a Poller share.
func feedDefaults(log **slog.Logger, minBackoff, maxBackoff *time.Duration) {
	if *log == nil {
		*log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	orDefault(minBackoff, DefaultMinBackoff)
	if *maxBackoff < *minBackoff {
		*maxBackoff = max(DefaultMaxBackoff, *minBackoff)
	}
}

// orDefault sets *d to def unless it is positive.
func orDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// relay tells the target what a notification names. A payload this version
// does not understand may still be a change: everything is dropped.
func (l *Listener) relay(n *pgconn.Notification) {
	l.notifications.Add(1)
	kind, id, _ := strings.Cut(n.Payload, ":")
	switch kind {
	case changedToken:
		l.target.TokenChanged(id)
	case changedApp:
		l.target.AppChanged(id)
	default:
		l.log.Warn("invalidation listener: unknown notification; dropping every cached answer", "payload", n.Payload)
		l.target.Resync()
	}
}
