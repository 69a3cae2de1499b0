package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
)

// PollOptions tune a Poller. The zero value is the default.
type PollOptions struct {
	Logger *slog.Logger // default discards
	// Interval is the wait between two polls. Default 50ms.
	Interval time.Duration
	// Timeout bounds each poll. Default 2s.
	Timeout time.Duration
	// GapTimeout is how long a gap in the log may stay open, its
	// transaction still running, before the poller stops vouching for the
	// cache (OutOfSync) until it closes. tokend's write transactions take
	// milliseconds; default 10s.
	GapTimeout time.Duration
	// Retention is how old a row of the log gets before it is pruned, and
	// how long a gap is watched before it is given up (Resync). Default 1h.
	Retention time.Duration
	// PruneEvery is how often this instance prunes the log. Default 1m.
	PruneEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait between polls after a
	// failure, which doubles from the first to the second. Defaults 100ms
	// and 5s.
	MinBackoff, MaxBackoff time.Duration
}

// Defaults for the zero PollOptions fields.
const (
	DefaultPollInterval = 50 * time.Millisecond
	DefaultPollTimeout  = 2 * time.Second
	DefaultGapTimeout   = 10 * time.Second
	DefaultRetention    = time.Hour
	DefaultPruneEvery   = time.Minute
)

// pollBatch is the most rows one poll reads; a full batch is followed by
// the next poll at once. startBack is how far behind the newest row a
// poller starts reading, so that the transactions in flight when it starts
// are not missed: it assumes fewer than that many changes are written while
// one write transaction runs.
const (
	pollBatch = 1000
	startBack = 1000
	maxGaps   = 100_000
)

// Poller relays the changes that every instance's writes record in the
// change log to a local cache of verification answers, by reading the log
// in seq order every Interval: the fallback for databases without
// LISTEN/NOTIFY, and an alternative to them (tokend serve --invalidation
// poll).
//
// A seq is taken when a transaction inserts its row, but the row becomes
// visible when the transaction commits, and transactions commit in another
// order than they take seqs: a poller that only read past the highest seq
// seen would skip the row of a transaction that commits late. So every seq
// below the highest seen that a poll does not find is a gap, read again by
// every poll until its row appears or its transaction is known to be over
// without it (rolled back). Each poll reads the snapshot its rows come
// from: a gap's transaction took its id before its seq (see notify), so it
// is in progress in the snapshot of the poll that first misses it, and once
// every transaction in progress then has ended, a row still missing will
// never come. A gap still open after GapTimeout (a transaction running that
// long, or one of another application the snapshot cannot tell apart) puts
// the cache out of sync until it closes; after Retention it is given up
// (Resync).
//
// A poll that fails puts the cache out of sync from the last poll that
// worked; the next poll that works reads on from the last seq read, and the
// cache is back in sync (CaughtUp) without losing what it holds, unless
// rows were pruned that it had not read (Resync).
//
// Its counters are for monitoring. It is safe for concurrent use; Run is
// called once.
type Poller struct {
	s      *Store
	target tokend.Resyncer
	log    *slog.Logger
	o      PollOptions

	up       atomic.Bool
	recovers atomic.Int64 // times back in sync after being out
	relayed  atomic.Int64
	open     atomic.Int64 // gaps open

	// Owned by Run.
	last      int64         // the highest seq read
	gaps      map[int64]gap // seqs below last not read yet
	outOfSync bool          // the target was told OutOfSync and not told since
	lastPrune time.Time
}

// gap is a seq below the highest read whose row was not there.
type gap struct {
	seen time.Time // the poll that first missed it
	snap *snapshot // that poll's snapshot
}

// Poller makes a Poller that reads the store's change log and keeps target
// in step. Start it with Run.
func (s *Store) Poller(target tokend.Resyncer, o PollOptions) *Poller {
	feedDefaults(&o.Logger, &o.MinBackoff, &o.MaxBackoff)
	orDefault(&o.Interval, DefaultPollInterval)
	orDefault(&o.Timeout, DefaultPollTimeout)
	orDefault(&o.GapTimeout, DefaultGapTimeout)
	orDefault(&o.Retention, DefaultRetention)
	orDefault(&o.PruneEvery, DefaultPruneEvery)
	return &Poller{s: s, target: target, log: o.Logger, o: o, last: -1, gaps: map[int64]gap{}}
}

// Connected reports whether every change committed up to the last poll has
// been relayed: the last poll worked and no gap is overdue.
func (p *Poller) Connected() bool { return p.up.Load() }

// Reconnects counts the times the poller was back in sync after a failed
// poll or an overdue gap.
func (p *Poller) Reconnects() int64 { return p.recovers.Load() }

// Notifications counts the changes relayed.
func (p *Poller) Notifications() int64 { return p.relayed.Load() }

// Gaps answers how many seqs below the highest read are still awaited.
func (p *Poller) Gaps() int64 { return p.open.Load() }

// Run polls until ctx is done. Until the first poll works the target is out
// of sync from the moment Run starts.
func (p *Poller) Run(ctx context.Context) {
	p.target.OutOfSync(time.Now())
	p.outOfSync = true
	backoff := p.o.MinBackoff
	failures := 0
	lastGood := time.Time{}
	for {
		start := time.Now()
		full, err := p.poll(ctx, start, lastGood.IsZero())
		if ctx.Err() != nil {
			return
		}
		wait := p.o.Interval
		if err != nil {
			if p.up.Swap(false) || !p.outOfSync {
				p.target.OutOfSync(lastGood)
				p.outOfSync = true
			}
			failures++
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			p.log.Log(ctx, level, "invalidation poller cannot read the change log; cached answers are trusted for a bounded time until it can",
				"err", err, "attempt", failures, "last_good", lastGood, "retry_in", backoff)
			wait = backoff
			backoff = min(2*backoff, p.o.MaxBackoff)
		} else {
			lastGood = start
			failures, backoff = 0, p.o.MinBackoff
			if full {
				wait = 0
			}
			if time.Since(p.lastPrune) >= p.o.PruneEvery {
				p.lastPrune = time.Now()
				if err := p.prune(ctx); err != nil && ctx.Err() == nil {
					p.log.Warn("invalidation poller cannot prune the change log", "err", err)
				}
			}
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// pollQuery reads, in one snapshot, that snapshot, the highest seq pruned,
// and the rows past $1 (at most $3) and among the gaps $2, in seq order (at
// least one row, with a NULL seq when there is none). Two index scans: the
// generic plan of "seq > $1 OR seq = ANY($2)" sorts the whole table.
const pollQuery = `SELECT s.snap::text, (SELECT upto FROM change_log_pruned), c.seq, c.kind, c.id
FROM (SELECT pg_current_snapshot() AS snap) s
LEFT JOIN LATERAL (SELECT * FROM (
	(SELECT seq, kind, id FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $3)
	UNION ALL
	(SELECT seq, kind, id FROM change_log WHERE seq = ANY($2))
) u ORDER BY seq) c ON true`

// startQuery answers where a poller starts reading.
const startQuery = `SELECT coalesce(max(seq), 0) FROM change_log`

type logRow struct {
	seq      int64
	kind, id string
}

// poll reads the log once and relays what it finds. It answers whether the
// batch was full (more rows are waiting).
func (p *Poller) poll(ctx context.Context, now time.Time, first bool) (full bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	if p.last < 0 {
		var newest int64
		if err := p.s.pool.QueryRow(ctx, startQuery).Scan(&newest); err != nil {
			return false, fmt.Errorf("postgres: change log: %w", err)
		}
		p.last = max(0, newest-startBack)
	}
	gaps := make([]int64, 0, len(p.gaps))
	for seq := range p.gaps {
		gaps = append(gaps, seq)
	}
	rows, err := p.s.pool.Query(ctx, pollQuery, p.last, gaps, pollBatch)
	if err != nil {
		return false, fmt.Errorf("postgres: change log: %w", err)
	}
	var (
		snapText string
		pruned   int64
		found    []logRow
	)
	for rows.Next() {
		var seq *int64
		var kind, id *string
		if err := rows.Scan(&snapText, &pruned, &seq, &kind, &id); err != nil {
			rows.Close()
			return false, fmt.Errorf("postgres: change log: %w", err)
		}
		if seq != nil {
			found = append(found, logRow{*seq, *kind, *id})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("postgres: change log: %w", err)
	}
	snap, err := parseSnapshot(snapText)
	if err != nil {
		return false, fmt.Errorf("postgres: change log: %w", err)
	}

	resync := first
	if pruned > p.last {
		// Rows this poller never read are gone: changes may be lost.
		if !first {
			p.log.Warn("invalidation poller: the change log was pruned past what this instance read; dropping every cached answer",
				"last", p.last, "pruned", pruned)
		}
		resync = true
		p.last = pruned
	}
	for seq := range p.gaps {
		if seq <= pruned {
			// Open for an hour, and pruned if it ever committed.
			delete(p.gaps, seq)
			resync = true
		}
	}

	filled := 0
	for _, r := range found {
		if _, ok := p.gaps[r.seq]; ok {
			delete(p.gaps, r.seq) // a late commit: the gap is filled
			filled++
		} else if r.seq > p.last {
			for missing := p.last + 1; missing < r.seq; missing++ {
				p.gaps[missing] = gap{seen: now, snap: snap}
			}
			p.last = r.seq
		} else {
			continue
		}
		if !resync {
			p.relay(r)
		}
	}
	full = len(found)-filled >= pollBatch

	// Gaps whose transactions have all ended are rolled back; those open
	// too long make the cache out of sync until they close.
	var overdue time.Time
	for seq, g := range p.gaps {
		switch {
		case snap.after(g.snap):
			delete(p.gaps, seq)
		case now.Sub(g.seen) > p.o.Retention || len(p.gaps) > maxGaps:
			p.log.Warn("invalidation poller: a change log gap stayed open too long; giving it up and dropping every cached answer", "seq", seq, "since", g.seen)
			delete(p.gaps, seq)
			resync = true
		case now.Sub(g.seen) > p.o.GapTimeout:
			if overdue.IsZero() || g.seen.Before(overdue) {
				overdue = g.seen
			}
		}
	}
	p.open.Store(int64(len(p.gaps)))

	switch {
	case resync:
		// Up before the target hears of it, as below.
		p.catchUp(first)
		p.outOfSync = false
		p.target.Resync()
	case !overdue.IsZero():
		// Down before the target hears of it: whoever the target tells
		// sees Connected() false already.
		p.up.Store(false)
		if !p.outOfSync {
			p.log.Warn("invalidation poller: a write transaction has been running for a long time; cached answers are trusted for a bounded time until it ends", "since", overdue)
			p.target.OutOfSync(overdue)
			p.outOfSync = true
		}
	case p.outOfSync && !full:
		p.catchUp(first)
		p.outOfSync = false
		p.target.CaughtUp()
	case !p.outOfSync:
		p.up.Store(true)
	}
	return full, nil
}

// catchUp marks the poller back in sync.
func (p *Poller) catchUp(first bool) {
	if !p.up.Swap(true) && !first {
		p.recovers.Add(1)
		p.log.Info("invalidation poller back in sync", "recoveries", p.recovers.Load())
	} else if first {
		p.log.Info("invalidation poller reading the change log", "from", p.last)
	}
}

// relay tells the target what a row names. A kind this version does not
// understand may still be a change: everything is dropped.
func (p *Poller) relay(r logRow) {
	p.relayed.Add(1)
	switch r.kind {
	case changedToken:
		p.target.TokenChanged(r.id)
	case changedApp:
		p.target.AppChanged(r.id)
	default:
		p.log.Warn("invalidation poller: unknown change; dropping every cached answer", "kind", r.kind)
		p.target.Resync()
	}
}

// pruneQuery deletes the rows older than $1 and remembers the highest seq
// deleted. Any instance may run it at any time, several at once.
const pruneQuery = `WITH cut AS (SELECT max(seq) AS upto FROM change_log WHERE at < now() - $1::interval),
d AS (DELETE FROM change_log WHERE seq <= (SELECT upto FROM cut))
UPDATE change_log_pruned SET upto = greatest(upto, (SELECT upto FROM cut)) WHERE (SELECT upto FROM cut) IS NOT NULL`

// prune deletes the rows older than Retention.
func (p *Poller) prune(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	_, err := p.s.pool.Exec(ctx, pruneQuery, fmt.Sprintf("%d microseconds", p.o.Retention.Microseconds()))
	if err != nil {
		return fmt.Errorf("postgres: prune change log: %w", err)
	}
	return nil
}

// PruneChangeLog deletes the change log's rows older than age, as every
// poller does each PruneEvery.
func (s *Store) PruneChangeLog(ctx context.Context, age time.Duration) error {
	return (&Poller{s: s, o: PollOptions{Timeout: DefaultPollTimeout, Retention: age}}).prune(ctx)
}

// snapshot is a pg_snapshot: every transaction id below xmin had ended,
// none from xmax on had begun, and those in xip were in progress.
type snapshot struct {
	xmin, xmax uint64
	xip        []uint64
}

func parseSnapshot(s string) (*snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, errors.New("unreadable snapshot")
	}
	var snap snapshot
	var err error
	if snap.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return nil, errors.New("unreadable snapshot")
	}
	if snap.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return nil, errors.New("unreadable snapshot")
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			id, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return nil, errors.New("unreadable snapshot")
			}
			snap.xip = append(snap.xip, id)
		}
	}
	return &snap, nil
}

// running reports whether transaction x is in progress in s.
func (s *snapshot) running(x uint64) bool {
	return x >= s.xmin && (x >= s.xmax || slices.Contains(s.xip, x))
}

// after reports whether every transaction in progress in earlier has ended
// in s.
func (s *snapshot) after(earlier *snapshot) bool {
	for _, x := range earlier.xip {
		if s.running(x) {
			return false
		}
	}
	return true
}
