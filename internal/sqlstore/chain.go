package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/auditchain"
)

// The audit log is a hash chain (package auditchain), kept apart from the
// events it chains, in audit_chain (position, event id, prev_hash, hash),
// so that chaining a row is a narrow INSERT, never an UPDATE of the wide
// events row and all its indexes. audit_head holds the chain's last
// position and hash, and chained_upto, the highest event id the chain has
// taken in. Where the flavor chains in the transaction of the write
// (ChainInTx: SQLite, whose writes are serial anyway), InsertEvent chains
// its row before the change commits. Elsewhere (PostgreSQL) rows are
// inserted unchained, and ChainAudit, run after the commit and in the
// background, chains in id order the events above chained_upto, in
// batches, holding audit_head's row lock for its own short transaction
// only: holding it through each writer's commit would make concurrent
// writers commit one fsync after another (see docs/operations.md for the
// figures). audit_backlog lists the rows migration 00016 found unchained,
// which are chained first.

var (
	chainHead    = Q(`SELECT pos, hash, chained_upto FROM audit_head`)
	setChainHead = Q(`UPDATE audit_head SET pos = $1, hash = $2, chained_upto = $3`)
	chainRow     = Q(`INSERT INTO audit_chain (pos, event_id, prev_hash, hash) VALUES ($1, $2, $3, $4)`)
)

// chainedColumns are an audit row as the chain holds it: its place, and
// the event it chains, which may be gone (events LEFT JOINed as e).
const chainedColumns = `c.pos, c.event_id, c.prev_hash, c.hash, e.id IS NULL, e."time", coalesce(e.actor, ''),
	coalesce(e.actor_name, ''), coalesce(e.ip, ''), coalesce(e.action, ''), coalesce(e.app_id, ''),
	coalesce(e.token_id, ''), e.details`

// chainedFrom is the FROM of a read of chainedColumns.
const chainedFrom = ` FROM audit_chain c LEFT JOIN events e ON e.id = c.event_id`

// chainGather is how long RunChainer lets rows gather after a commit
// before it chains them: each pass is a transaction with its own commit,
// and with 20ms token creates from 8 writers on PostgreSQL lost about 20 %
// to the chain (BenchmarkAuditChainCreates, measured on schema 15), with
// 200ms 0-25 %.
const chainGather = 200 * time.Millisecond

// chainBatch bounds the rows one ChainAudit transaction chains.
const chainBatch = 500

// canonical is an event's stored details as the chain hashes them.
func canonical(details []byte) []byte {
	c, err := auditchain.Canonical(details)
	if err != nil {
		// Stored details that are not JSON: hash the bytes as they are,
		// so that verification names the row instead of failing.
		return details
	}
	return c
}

// scanEventRow reads an event (eventColumns) as the chain hashes it.
func (s *Store) scanEventRow(sc Row) (auditchain.Row, error) {
	var (
		r       auditchain.Row
		at      Time
		details JSON
	)
	if err := sc.Scan(&r.ID, &at, &r.Actor, &r.ActorName, &r.IP, &r.Action, &r.AppID, &r.TokenID, &details); err != nil {
		return auditchain.Row{}, s.Err("read audit row", err)
	}
	r.Time, r.Details = at.Time, canonical(details)
	return r, nil
}

// scanChainRow reads a row of chainedColumns.
func (s *Store) scanChainRow(sc Row) (auditchain.Row, error) {
	var (
		r       auditchain.Row
		at      NullTime
		details JSON
	)
	if err := sc.Scan(&r.Pos, &r.ID, &r.PrevHash, &r.Hash, &r.Gone, &at, &r.Actor, &r.ActorName, &r.IP, &r.Action, &r.AppID, &r.TokenID, &details); err != nil {
		return auditchain.Row{}, s.Err("read audit row", err)
	}
	if !r.Gone {
		r.Time, r.Details = at.Time, canonical(details)
	}
	return r, nil
}

// chainTail is audit_head as a chaining transaction reads it.
type chainTail struct {
	head auditchain.Head
	upto int64 // chained_upto
}

// lockTail reads audit_head in tx, locking it where the flavor can.
func (s *Store) lockTail(ctx context.Context, tx *sql.Tx) (chainTail, error) {
	var t chainTail
	err := tx.QueryRowContext(ctx, s.sql(chainHead)+s.f.ForUpdate).Scan(&t.head.Pos, &t.head.Hash, &t.upto)
	return t, s.Err("audit head", err)
}

// link chains rows after t's head, in their order, and answers the
// statements that record it, the head's update last (with chained_upto
// moved to upto).
func link(t chainTail, rows []auditchain.Row, upto int64) []stmt {
	stmts := make([]stmt, 0, len(rows)+1)
	head := t.head
	for _, r := range rows {
		r.Pos, r.PrevHash = head.Pos+1, head.Hash
		r.Hash = auditchain.Sum(r.PrevHash, r)
		stmts = append(stmts, stmt{chainRow, []any{r.Pos, r.ID, r.PrevHash, r.Hash}})
		head = auditchain.Head{Pos: r.Pos, Hash: r.Hash}
	}
	return append(stmts, stmt{setChainHead, []any{head.Pos, head.Hash, upto}})
}

// How a chain pass finds the events that are safe to chain (all of them
// above chained_upto: no writer may still commit a lower id after it).
type chainMode int

const (
	// settle: wait for the writers that drew ids (settledID), and chain
	// up to the highest id then committed.
	settle chainMode = iota
	// prefix: chain the run of consecutive ids after chained_upto that
	// have committed, without waiting for anyone. Ids are drawn one after
	// the other, so a committed run leaves no writer behind it; the run
	// stops at an id not committed yet, or rolled back (a gap that only
	// settle can pass).
	prefix
	// prefixThenSettle: prefix, then settle if a gap stopped it.
	prefixThenSettle
)

// chainPass chains, in tx, what the next pass has to: the rows left in
// audit_backlog first, then the events above chained_upto that mode finds
// safe (up to settled, with settle), at most chainBatch of them, in id
// order. It answers how many it chained, whether it left work for another
// pass, and whether a gap in the ids stopped a prefix pass.
func (s *Store) chainPass(ctx context.Context, conn *sql.Conn, tx *sql.Tx, mode chainMode, settled int64) (n int, more, gap bool, err error) {
	if s.f.ChainCommit != "" {
		if _, err := tx.ExecContext(ctx, s.f.ChainCommit); err != nil {
			return 0, false, false, s.Err("chain audit", err)
		}
	}
	t, err := s.lockTail(ctx, tx)
	if err != nil {
		return 0, false, false, err
	}
	limit := ` ORDER BY id LIMIT ` + strconv.Itoa(chainBatch)
	backlog, err := s.exists(ctx, tx, `SELECT 1 FROM audit_backlog`)
	if err != nil {
		return 0, false, false, err
	}
	var (
		rows  []auditchain.Row
		stmts []stmt
	)
	switch {
	case backlog:
		rows, err = list(ctx, s, tx, "chain audit", `SELECT `+eventColumns+` FROM events WHERE id IN (SELECT event_id FROM audit_backlog)`+limit, nil, s.scanEventRow)
		if err != nil {
			return 0, false, false, err
		}
		stmts = link(t, rows, t.upto)
		// What is left of the backlog after these has no event (deleted)
		// when they are fewer than a batch.
		clear := stmt{Q(`DELETE FROM audit_backlog`), nil}
		if len(rows) == chainBatch {
			clear = stmt{Q(`DELETE FROM audit_backlog WHERE event_id <= $1`), []any{rows[len(rows)-1].ID}}
		}
		stmts = append(stmts, clear)
		more = true
	case mode == settle:
		if settled <= t.upto {
			return 0, false, false, nil
		}
		rows, err = list(ctx, s, tx, "chain audit", s.rebind(`SELECT `+eventColumns+` FROM events WHERE id > $1 AND id <= $2`+limit), []any{t.upto, settled}, s.scanEventRow)
		if err != nil {
			return 0, false, false, err
		}
		// Every id up to settled that is not here was rolled back.
		upto := settled
		if more = len(rows) == chainBatch; more {
			upto = rows[len(rows)-1].ID
		}
		stmts = link(t, rows, upto)
	default:
		rows, err = list(ctx, s, tx, "chain audit", s.rebind(`SELECT `+eventColumns+` FROM events WHERE id > $1`+limit), []any{t.upto}, s.scanEventRow)
		if err != nil {
			return 0, false, false, err
		}
		run := 0
		for run < len(rows) && rows[run].ID == t.upto+int64(run)+1 {
			run++
		}
		gap, more = run < len(rows), run == chainBatch
		if rows = rows[:run]; run == 0 {
			return 0, false, gap, nil
		}
		stmts = link(t, rows, rows[run-1].ID)
	}
	return len(rows), more, gap, s.execAll(ctx, conn, tx, "chain audit", stmts)
}

// exists reports whether q, in tx, answers a row.
func (s *Store) exists(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, q string) (bool, error) {
	var one int
	switch err := db.QueryRowContext(ctx, q+` LIMIT 1`).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, s.Err("chain audit", err)
	}
	return true, nil
}

// settledID answers an event id at or below which every writer has
// committed or rolled back: the highest id committed while it holds the
// flavor's EventReadLock, which waits for the writers that drew ids (see
// postgres/events.go) and keeps new ones back for one read.
func (s *Store) settledID(ctx context.Context) (int64, error) {
	ids, err := readLocked(ctx, s, "chain audit", `SELECT coalesce(max(id), 0) FROM events`, nil, func(sc Row) (int64, error) {
		var id int64
		return id, sc.Scan(&id)
	})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return ids[0], nil
}

// ChainAudit chains every committed row not chained yet, in id order, in
// transactions of up to chainBatch rows each, and answers how many it
// chained. Where the flavor chains in the transaction of the write
// (SQLite) it does nothing: a row left unchained there was not written by
// tokend, and must stay out for verification to name it.
func (s *Store) ChainAudit(ctx context.Context) (int64, error) {
	return s.chainAudit(ctx, settle)
}

func (s *Store) chainAudit(ctx context.Context, mode chainMode) (int64, error) {
	if s.f.ChainInTx {
		return 0, nil
	}
	return s.chainAll(ctx, true, mode)
}

// chainAll runs chain passes until none is left: of the backlog only, or,
// with events, of the events above chained_upto too, found as mode says.
func (s *Store) chainAll(ctx context.Context, events bool, mode chainMode) (int64, error) {
	// Most passes find nothing: they ask without taking the head's lock,
	// which would write to the database every time, or the events lock,
	// which would hold writers back for a moment.
	backlog, err := s.exists(ctx, s.w, `SELECT 1 FROM audit_backlog`)
	if err != nil {
		return 0, err
	}
	newer := false
	if events {
		if newer, err = s.exists(ctx, s.w, `SELECT 1 FROM events WHERE id > (SELECT chained_upto FROM audit_head)`); err != nil {
			return 0, err
		}
	}
	if !backlog && !newer {
		return 0, nil
	}
	var (
		total   int64
		settled int64
	)
	if mode == settle && newer {
		if settled, err = s.settledID(ctx); err != nil {
			return 0, err
		}
	}
	for {
		var (
			n         int
			more, gap bool
		)
		err := s.retry(func() error {
			return s.writeConn(ctx, func(conn *sql.Conn, tx *sql.Tx) error {
				var err error
				n, more, gap, err = s.chainPass(ctx, conn, tx, mode, settled)
				return err
			})
		})
		if err != nil {
			return total, err
		}
		total += int64(n)
		switch {
		case more:
		case gap && mode == prefixThenSettle && events:
			if settled, err = s.settledID(ctx); err != nil {
				return total, err
			}
			mode = settle
		default:
			return total, nil
		}
	}
}

// ChainLegacy chains, once after migration 00016, the rows it found
// unchained (audit_backlog); the dialects' Open calls it where rows are
// chained in their own transaction (SQLite). PostgreSQL's first
// ChainAudit does the same.
func (s *Store) ChainLegacy(ctx context.Context) error {
	if !s.f.ChainInTx {
		return nil
	}
	_, err := s.chainAll(ctx, false, settle)
	return err
}

// RunChainer chains at once, after each commit that wrote an audit row
// unchained (in this process), and every interval (for rows other
// instances wrote and did not chain, having died between commit and chain,
// and past the ids of writers that rolled back), until ctx ends. onErr hears each failure. Where rows are chained
// with their write it returns at once.
func (s *Store) RunChainer(ctx context.Context, every time.Duration, onErr func(error)) {
	if s.f.ChainInTx {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	// A kick chains the run of ids committed after the chain's end without
	// waiting for anyone; a tick also passes the gaps that stop such runs
	// (a writer that rolled back, or is slow to commit), holding the
	// writers back for a moment (settledID).
	mode := prefixThenSettle
	for {
		if _, err := s.chainAudit(ctx, mode); err != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			// What was written up to the end joins the chain now rather
			// than at the next start.
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, err := s.ChainAudit(last); err != nil {
				onErr(err)
			}
			cancel()
			return
		case <-s.chainKick:
			// Let the writes of the next moment join this pass: a pass
			// costs a transaction of its own, and more rows cost little.
			select {
			case <-ctx.Done():
			case <-time.After(chainGather):
			}
			mode = prefix
		case <-t.C:
			mode = prefixThenSettle
		}
	}
}

// chainEvent chains the row id just inserted in tx, or leaves it for
// ChainAudit after the commit (see the top of this file). Only that row:
// one inserted behind tokend's back, with an id between the head's and
// id, must stay out of the chain for verification to name it.
func (s *Store) chainEvent(ctx context.Context, tx *sql.Tx, id int64) error {
	if !s.f.ChainInTx {
		s.unchained.Store(tx, true)
		return nil
	}
	t, err := s.lockTail(ctx, tx)
	if err != nil {
		return err
	}
	rows, err := list(ctx, s, tx, "chain audit", s.rebind(`SELECT `+eventColumns+` FROM events WHERE id = $1`), []any{id}, s.scanEventRow)
	if err != nil {
		return err
	}
	for _, st := range link(t, rows, max(t.upto, id)) {
		if _, err := tx.ExecContext(ctx, s.sql(st.q), st.args...); err != nil {
			return s.Err("chain audit", err)
		}
	}
	return nil
}

// committed kicks the chainer when tx wrote an unchained audit row; done
// tells whether tx committed.
func (s *Store) committed(tx *sql.Tx, done bool) {
	if _, ok := s.unchained.LoadAndDelete(tx); ok && done {
		select {
		case s.chainKick <- struct{}{}:
		default:
		}
	}
}

// CutAudit is retention: it deletes the chained rows up to (not including)
// the first one written at or after before, and records the cut as a
// checkpoint (the position, hash and time of the last row deleted, at now)
// signed by sign, in one transaction, so that the chain stays verifiable
// from the checkpoint on. It answers how many rows it deleted.
func (s *Store) CutAudit(ctx context.Context, before, now time.Time, sign func(auditchain.Checkpoint) []byte) (int64, error) {
	var deleted int64
	err := s.Write(ctx, func(tx *sql.Tx) error {
		t, err := s.lockTail(ctx, tx)
		if err != nil {
			return err
		}
		// The chain in order up to the first row to keep: as many steps
		// as rows to cut, rather than every row kept.
		last := t.head.Pos
		var first int64
		switch err := tx.QueryRowContext(ctx, s.rebind(`SELECT c.pos FROM audit_chain c JOIN events e ON e.id = c.event_id
			WHERE e."time" >= $1 ORDER BY c.pos LIMIT 1`), s.time(before)).Scan(&first); {
		case err == nil:
			last = first - 1
		case !errors.Is(err, sql.ErrNoRows):
			return s.Err("audit cut", err)
		}
		var cut NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(pos) FROM audit_checkpoints`).Scan(&cut); err != nil {
			return s.Err("audit cut", err)
		}
		if last <= cut.Int64 {
			return nil
		}
		var (
			cp auditchain.Checkpoint
			at Time
		)
		cp.Pos = last
		if err := tx.QueryRowContext(ctx, s.rebind(`SELECT c.hash, e."time" FROM audit_chain c JOIN events e ON e.id = c.event_id WHERE c.pos = $1`), last).Scan(&cp.Hash, &at); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return tokend.Internal(errors.New(s.f.Name + ": audit cut: the row at the cut is missing; run tokend audit verify"))
			}
			return s.Err("audit cut", err)
		}
		cp.Time, cp.CutAt = at.Time, now
		cp.MAC = sign(cp)
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO audit_checkpoints (pos, hash, "time", cut_at, mac) VALUES ($1, $2, $3, $4, $5)`),
			cp.Pos, cp.Hash, s.time(cp.Time), s.time(cp.CutAt), cp.MAC); err != nil {
			return s.Err("audit cut", err)
		}
		res, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM events WHERE id IN (SELECT event_id FROM audit_chain WHERE pos <= $1)`), last)
		if deleted, err = s.affected(res, err, "audit cut"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.rebind(`DELETE FROM audit_chain WHERE pos <= $1`), last)
		return s.Err("audit cut", err)
	})
	return deleted, err
}

// AuditSnapshot runs fn on a consistent view of the audit log: one
// read-only transaction (repeatable read on PostgreSQL).
func (s *Store) AuditSnapshot(ctx context.Context, fn func(auditchain.Source) error) error {
	tx, err := s.r.BeginTx(ctx, s.f.Snapshot)
	if err != nil {
		return s.Err("audit snapshot", err)
	}
	defer tx.Rollback()
	return fn(&auditSource{s: s, tx: tx})
}

// ChainsInTx reports whether every row is chained by the transaction that
// writes it, so that an unchained row was not written by tokend.
func (s *Store) ChainsInTx() bool { return s.f.ChainInTx }

type auditSource struct {
	s  *Store
	tx *sql.Tx
}

func (a *auditSource) Head(ctx context.Context) (auditchain.Head, error) {
	var h auditchain.Head
	err := a.tx.QueryRowContext(ctx, `SELECT pos, hash FROM audit_head`).Scan(&h.Pos, &h.Hash)
	return h, a.s.Err("audit head", err)
}

func (a *auditSource) Checkpoint(ctx context.Context) (*auditchain.Checkpoint, error) {
	var (
		cp        auditchain.Checkpoint
		at, cutAt Time
	)
	err := a.tx.QueryRowContext(ctx, `SELECT pos, hash, "time", cut_at, mac FROM audit_checkpoints ORDER BY pos DESC LIMIT 1`).
		Scan(&cp.Pos, &cp.Hash, &at, &cutAt, &cp.MAC)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, a.s.Err("audit checkpoint", err)
	}
	cp.Time, cp.CutAt = at.Time, cutAt.Time
	return &cp, nil
}

func (a *auditSource) Rows(ctx context.Context, from int64, fn func(auditchain.Row) error) error {
	rows, err := a.tx.QueryContext(ctx, a.s.rebind(`SELECT `+chainedColumns+chainedFrom+` WHERE c.pos > $1 ORDER BY c.pos`), from)
	if err != nil {
		return a.s.Err("audit rows", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := a.s.scanChainRow(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return a.s.Err("audit rows", rows.Err())
}

// one answers the row that q (with args) selects, scanned by scan.
func (a *auditSource) one(ctx context.Context, q string, scan func(Row) (auditchain.Row, error), args ...any) (auditchain.Row, bool, error) {
	r, err := scan(a.tx.QueryRowContext(ctx, a.s.rebind(q+` LIMIT 1`), args...))
	if errors.Is(err, tokend.ErrNotFound) {
		return auditchain.Row{}, false, nil
	}
	return r, err == nil, err
}

func (a *auditSource) ByHash(ctx context.Context, h []byte) (auditchain.Row, bool, error) {
	return a.one(ctx, `SELECT `+chainedColumns+chainedFrom+` WHERE c.hash = $1`, a.s.scanChainRow, h)
}

func (a *auditSource) At(ctx context.Context, pos int64) (auditchain.Row, bool, error) {
	return a.one(ctx, `SELECT `+chainedColumns+chainedFrom+` WHERE c.pos = $1`, a.s.scanChainRow, pos)
}

// pending selects the events that wait for the chain: above chained_upto,
// or left by migration 00016.
const pending = ` FROM events WHERE id > (SELECT chained_upto FROM audit_head) OR id IN (SELECT event_id FROM audit_backlog)`

func (a *auditSource) Pending(ctx context.Context) (int64, auditchain.Row, error) {
	var n int64
	if err := a.tx.QueryRowContext(ctx, `SELECT count(*)`+pending).Scan(&n); err != nil {
		return 0, auditchain.Row{}, a.s.Err("audit pending", err)
	}
	if n == 0 {
		return 0, auditchain.Row{}, nil
	}
	r, _, err := a.one(ctx, `SELECT `+eventColumns+pending+` ORDER BY id`, a.s.scanEventRow)
	return n, r, err
}

func (a *auditSource) Stray(ctx context.Context) (auditchain.Row, bool, error) {
	return a.one(ctx, `SELECT `+eventColumns+` FROM events e WHERE id <= (SELECT chained_upto FROM audit_head)
		AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id)
		AND id NOT IN (SELECT event_id FROM audit_backlog) ORDER BY id`, a.s.scanEventRow)
}
