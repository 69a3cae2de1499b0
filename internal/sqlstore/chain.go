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

// The audit log is a hash chain (package auditchain). Where the flavor
// chains in the transaction of the write (ChainInTx: SQLite, whose writes
// are serial anyway), InsertEvent chains its row before the change
// commits. Elsewhere (PostgreSQL) rows are inserted unchained, and
// ChainAudit, run after the commit and in the background, chains whatever
// has committed, in batches, holding audit_head's row lock for its own
// short transaction only: holding it through each writer's commit would
// make concurrent writers commit one fsync after another (see
// docs/operations.md for the figures).

const chainColumns = `id, "time", actor, actor_name, ip, action, app_id, token_id, details, coalesce(pos, 0), prev_hash, hash`

var (
	chainHead    = Q(`SELECT pos, hash FROM audit_head`)
	setChainHead = Q(`UPDATE audit_head SET pos = $1, hash = $2`)
	chainRow     = Q(`UPDATE events SET pos = $1, prev_hash = $2, hash = $3 WHERE id = $4 AND pos IS NULL`)
)

// chainGather is how long RunChainer lets rows gather after a commit
// before it chains them: each pass is a transaction with its own commit,
// and with 20ms token creates from 8 writers on PostgreSQL lost about 20 %
// to the chain (BenchmarkAuditChainCreates), with 200ms 0-25 %.
const chainGather = 200 * time.Millisecond

// chainBatch bounds the rows one ChainAudit transaction chains.
const chainBatch = 500

// scanChainRow reads a row of chainColumns.
func (s *Store) scanChainRow(sc Row) (auditchain.Row, error) {
	var (
		r       auditchain.Row
		at      Time
		details JSON
	)
	if err := sc.Scan(&r.ID, &at, &r.Actor, &r.ActorName, &r.IP, &r.Action, &r.AppID, &r.TokenID, &details, &r.Pos, &r.PrevHash, &r.Hash); err != nil {
		return auditchain.Row{}, s.Err("read audit row", err)
	}
	r.Time = at.Time
	c, err := auditchain.Canonical(details)
	if err != nil {
		// Stored details that are not JSON: hash the bytes as they are,
		// so that verification names the row instead of failing.
		c = details
	}
	r.Details = c
	return r, nil
}

// chainEvents chains, in tx, the unchained rows that cond (on events,
// with args from $1) selects, at most limit of them in id order, after the
// head, and moves the head past them. It answers how many it chained.
// conn, when not nil, is tx's connection, for the flavor's ExecBatch.
func (s *Store) chainEvents(ctx context.Context, conn *sql.Conn, tx *sql.Tx, cond string, args []any, limit int) (int, error) {
	var head auditchain.Head
	if err := tx.QueryRowContext(ctx, s.sql(chainHead)+s.f.ForUpdate).Scan(&head.Pos, &head.Hash); err != nil {
		return 0, s.Err("audit head", err)
	}
	q := s.rebind(`SELECT ` + chainColumns + ` FROM events WHERE pos IS NULL AND ` + cond + ` ORDER BY id LIMIT ` + strconv.Itoa(limit))
	rows, err := list(ctx, s, tx, "chain audit", q, args, s.scanChainRow)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	stmts := make([]stmt, 0, len(rows)+1)
	for _, r := range rows {
		r.Pos, r.PrevHash = head.Pos+1, head.Hash
		r.Hash = auditchain.Sum(r.PrevHash, r)
		stmts = append(stmts, stmt{chainRow, []any{r.Pos, r.PrevHash, r.Hash, r.ID}})
		head = auditchain.Head{Pos: r.Pos, Hash: r.Hash}
	}
	stmts = append(stmts, stmt{setChainHead, []any{head.Pos, head.Hash}})
	if conn == nil {
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, s.sql(st.q), st.args...); err != nil {
				return 0, s.Err("chain audit", err)
			}
		}
		return len(rows), nil
	}
	return len(rows), s.execAll(ctx, conn, tx, "chain audit", stmts)
}

// ChainAudit chains every committed row not chained yet, in id order, in
// transactions of up to chainBatch rows each, and answers how many it
// chained. Where the flavor chains in the transaction of the write
// (SQLite) it does nothing: a row left unchained there was not written by
// tokend, and must stay out for verification to name it.
func (s *Store) ChainAudit(ctx context.Context) (int64, error) {
	if s.f.ChainInTx {
		return 0, nil
	}
	return s.chainAll(ctx, "true")
}

// chainLegacy chains the rows written before the chain existed (migration
// 00015 records the highest id as legacy_upto).
func (s *Store) chainLegacy(ctx context.Context) (int64, error) {
	return s.chainAll(ctx, "id <= (SELECT legacy_upto FROM audit_head)")
}

func (s *Store) chainAll(ctx context.Context, cond string) (int64, error) {
	// Most passes find nothing: they ask without taking the head's lock,
	// which would write to the database every time.
	var one int
	switch err := s.w.QueryRowContext(ctx, `SELECT 1 FROM events WHERE pos IS NULL AND `+cond+` LIMIT 1`).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, s.Err("chain audit", err)
	}
	var total int64
	for {
		var n int
		err := s.retry(func() error {
			return s.writeConn(ctx, func(conn *sql.Conn, tx *sql.Tx) error {
				var err error
				n, err = s.chainEvents(ctx, conn, tx, cond, nil, chainBatch)
				return err
			})
		})
		if err != nil {
			return total, err
		}
		total += int64(n)
		if n < chainBatch {
			return total, nil
		}
	}
}

// ChainLegacy chains, once after migration 00015, the rows written before
// it; the dialects' Open calls it where rows are chained in their own
// transaction (SQLite). PostgreSQL's first ChainAudit does the same.
func (s *Store) ChainLegacy(ctx context.Context) error {
	if !s.f.ChainInTx {
		return nil
	}
	_, err := s.chainLegacy(ctx)
	return err
}

// RunChainer runs ChainAudit at once, after each commit that wrote an
// audit row unchained (in this process), and every interval (for rows
// other instances wrote and did not chain, having died between commit and
// chain), until ctx ends. onErr hears each failure. Where rows are chained
// with their write it returns at once.
func (s *Store) RunChainer(ctx context.Context, every time.Duration, onErr func(error)) {
	if s.f.ChainInTx {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.ChainAudit(ctx); err != nil && ctx.Err() == nil {
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
		case <-t.C:
		}
	}
}

// chainEvent chains the row id just inserted in tx, or leaves it for
// ChainAudit after the commit (see the top of this file).
func (s *Store) chainEvent(ctx context.Context, tx *sql.Tx, id int64) error {
	if !s.f.ChainInTx {
		s.unchained.Store(tx, true)
		return nil
	}
	_, err := s.chainEvents(ctx, nil, tx, "id = $1", []any{id}, 1)
	return err
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
		var head auditchain.Head
		if err := tx.QueryRowContext(ctx, s.sql(chainHead)+s.f.ForUpdate).Scan(&head.Pos, &head.Hash); err != nil {
			return s.Err("audit head", err)
		}
		var first, cut NullInt64
		if err := tx.QueryRowContext(ctx, s.rebind(`SELECT min(pos) FROM events WHERE pos IS NOT NULL AND "time" >= $1`), s.time(before)).Scan(&first); err != nil {
			return s.Err("audit cut", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT max(pos) FROM audit_checkpoints`).Scan(&cut); err != nil {
			return s.Err("audit cut", err)
		}
		last := head.Pos
		if first.Valid {
			last = first.Int64 - 1
		}
		if last <= cut.Int64 {
			return nil
		}
		var (
			cp auditchain.Checkpoint
			at Time
		)
		cp.Pos = last
		if err := tx.QueryRowContext(ctx, s.rebind(`SELECT hash, "time" FROM events WHERE pos = $1`), last).Scan(&cp.Hash, &at); err != nil {
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
		res, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM events WHERE pos <= $1`), last)
		deleted, err = s.affected(res, err, "audit cut")
		return err
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
	err := a.tx.QueryRowContext(ctx, a.s.sql(chainHead)).Scan(&h.Pos, &h.Hash)
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
	rows, err := a.tx.QueryContext(ctx, a.s.rebind(`SELECT `+chainColumns+` FROM events WHERE pos > $1 ORDER BY pos`), from)
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

func (a *auditSource) one(ctx context.Context, cond string, arg any) (auditchain.Row, bool, error) {
	r, err := a.s.scanChainRow(a.tx.QueryRowContext(ctx, a.s.rebind(`SELECT `+chainColumns+` FROM events WHERE `+cond+` LIMIT 1`), arg))
	if errors.Is(err, tokend.ErrNotFound) {
		return auditchain.Row{}, false, nil
	}
	return r, err == nil, err
}

func (a *auditSource) ByHash(ctx context.Context, h []byte) (auditchain.Row, bool, error) {
	return a.one(ctx, `pos IS NOT NULL AND hash = $1`, h)
}

func (a *auditSource) At(ctx context.Context, pos int64) (auditchain.Row, bool, error) {
	return a.one(ctx, `pos = $1`, pos)
}

func (a *auditSource) Unchained(ctx context.Context) (int64, auditchain.Row, error) {
	var n int64
	if err := a.tx.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE pos IS NULL`).Scan(&n); err != nil {
		return 0, auditchain.Row{}, a.s.Err("audit unchained", err)
	}
	if n == 0 {
		return 0, auditchain.Row{}, nil
	}
	r, err := a.s.scanChainRow(a.tx.QueryRowContext(ctx, `SELECT `+chainColumns+` FROM events WHERE pos IS NULL ORDER BY id LIMIT 1`))
	return n, r, err
}
