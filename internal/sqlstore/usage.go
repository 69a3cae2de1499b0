package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/tokend/tokend"
)

var (
	addUsage = Q(`
		INSERT INTO usage (token_id, hour, code, count) VALUES ($1, $2, $3, $4)
		ON CONFLICT (token_id, hour, code) DO UPDATE SET count = usage.count + excluded.count`)
	// Batches from several instances, or a retried flush, may arrive out of
	// order: the last use moves only forward, while use counts add up
	// regardless. Both CASEs see the row as it was before this UPDATE.
	addUse = Q(`
		UPDATE tokens
		SET use_count = use_count + $2,
		    last_used_ip = CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $4 ELSE last_used_ip END,
		    last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $3 ELSE last_used_at END
		WHERE id = $1`)
	addActivity   = Q(`INSERT INTO activity (token_id, at, ip, code, method, path) VALUES ($1, $2, $3, $4, $5, $6)`)
	pruneActivity = Q(`
		DELETE FROM activity WHERE token_id = $1 AND seq NOT IN (
			SELECT seq FROM activity WHERE token_id = $1 ORDER BY at DESC, seq DESC LIMIT $2)`)
	activityOf = Q(`
		SELECT at, ip, code, method, path FROM activity
		WHERE token_id = $1 ORDER BY at DESC, seq DESC LIMIT $2`)
)

// RecordUsage merges a batch in one transaction. Several instances flush
// their own batches concurrently; every change is an increment made under
// the row's lock (ON CONFLICT DO UPDATE, UPDATE … SET use_count = use_count
// + n), so no count is lost.
//
// The batch's tokens are first locked (FOR KEY SHARE on PostgreSQL; on
// SQLite the write lock holds them all), in id order: a token deleted
// meanwhile cannot vanish between that check and the inserts (its rows are
// dropped instead of failing the batch on the foreign key), and instances
// flushing the same tokens take their locks in the same order, so they wait
// for each other rather than deadlock. Usage rows are written in key order
// for the same reason.
//
// Usage changes neither Version nor UpdatedAt: those track management
// changes, and an ETag that moved with every verification would make every
// If-Match edit of a busy token fail.
func (s *Store) RecordUsage(ctx context.Context, b tokend.UsageBatch) error {
	if len(b.Counts) == 0 && len(b.Last) == 0 {
		return nil
	}
	counts := slices.Clone(b.Counts)
	for i := range counts {
		counts[i].Hour = counts[i].Hour.UTC().Truncate(time.Hour)
	}
	slices.SortFunc(counts, func(x, y tokend.UsageCount) int {
		return cmp.Or(cmp.Compare(x.TokenID, y.TokenID), x.Hour.Compare(y.Hour), cmp.Compare(x.Code, y.Code))
	})
	last := slices.Clone(b.Last)
	slices.SortStableFunc(last, func(x, y tokend.LastUse) int { return cmp.Compare(x.TokenID, y.TokenID) })
	ids := make([]string, 0, len(counts)+len(last))
	for _, c := range counts {
		ids = append(ids, c.TokenID)
	}
	for _, l := range last {
		ids = append(ids, l.TokenID)
	}
	return s.flush(ctx, "record usage", ids, s.f.ForKeyShare, func(exists map[string]bool) []stmt {
		var stmts []stmt
		for _, c := range counts {
			if exists[c.TokenID] {
				stmts = append(stmts, stmt{addUsage, []any{c.TokenID, s.time(c.Hour), string(c.Code), c.Count}})
			}
		}
		for _, l := range last {
			if exists[l.TokenID] {
				stmts = append(stmts, stmt{addUse, []any{l.TokenID, l.Uses, s.time(l.At), l.IP}})
			}
		}
		return stmts
	})
}

// flush locks the tokens of ids (with the flavor's lock clause lock, in id
// order) and runs in the same transaction the statements that build makes
// for those that exist.
//
// A deadlock with a change that locks tokens in another order (deleting an
// app cascades in the server's order) rolls the whole batch back, so
// running it again adds nothing twice.
func (s *Store) flush(ctx context.Context, op string, ids []string, lock string, build func(exists map[string]bool) []stmt) error {
	return s.retry(func() error {
		return s.writeConn(ctx, func(conn *sql.Conn, tx *sql.Tx) error {
			exists, err := s.lockTokens(ctx, tx, op, ids, lock)
			if err != nil {
				return err
			}
			return s.execAll(ctx, conn, tx, op, build(exists))
		})
	})
}

// stmt is one statement of a batch.
type stmt struct {
	q    Query
	args []any
}

// execAll runs the statements in order in tx: in one round trip where the
// flavor can (ExecBatch), else one by one, each prepared once.
func (s *Store) execAll(ctx context.Context, conn *sql.Conn, tx *sql.Tx, op string, stmts []stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	if s.f.ExecBatch != nil {
		batch := make([]Stmt, len(stmts))
		for i, st := range stmts {
			batch[i] = Stmt{SQL: s.sql(st.q), Args: st.args}
		}
		return s.Err(op, s.f.ExecBatch(ctx, conn, batch))
	}
	prepared := map[Query]*sql.Stmt{}
	defer func() {
		for _, p := range prepared {
			p.Close()
		}
	}()
	for _, st := range stmts {
		p := prepared[st.q]
		if p == nil {
			var err error
			if p, err = tx.PrepareContext(ctx, s.sql(st.q)); err != nil {
				return s.Err(op, err)
			}
			prepared[st.q] = p
		}
		if _, err := p.ExecContext(ctx, st.args...); err != nil {
			return s.Err(op, err)
		}
	}
	return nil
}

// lockTokens locks the tokens of ids that exist, in id order, with the
// flavor's lock clause, and answers which exist.
func (s *Store) lockTokens(ctx context.Context, tx *sql.Tx, op string, ids []string, lock string) (map[string]bool, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	exists := make(map[string]bool, len(ids))
	// In chunks, well below either database's limit on arguments; each
	// chunk's ids follow the previous chunk's, so the order holds.
	const chunk = 500
	for part := range slices.Chunk(ids, chunk) {
		var w where
		q := `SELECT id FROM tokens WHERE id IN (` + w.in(part) + `) ORDER BY id` + lock
		live, err := list(ctx, s, tx, op, s.rebind(q), w.args, func(r Row) (string, error) {
			var id string
			return id, s.Err(op, r.Scan(&id))
		})
		if err != nil {
			return nil, err
		}
		for _, id := range live {
			exists[id] = true
		}
	}
	return exists, nil
}

// Usage answers the hourly counts of a token in [from, to), oldest first and,
// within an hour, by code.
func (s *Store) Usage(ctx context.Context, tokenID string, from, to time.Time) ([]tokend.UsageCount, error) {
	q := s.rebind(`
		SELECT hour, code, count FROM usage
		WHERE token_id = $1 AND hour >= $2 AND hour < $3
		ORDER BY hour, code` + s.f.ByteOrder)
	return list(ctx, s, s.r, "usage", q, []any{tokenID, s.time(from), s.time(to)}, func(r Row) (tokend.UsageCount, error) {
		var (
			hour Time
			code string
			n    int64
		)
		if err := r.Scan(&hour, &code, &n); err != nil {
			return tokend.UsageCount{}, s.Err("usage", err)
		}
		return tokend.UsageCount{TokenID: tokenID, Hour: hour.Time, Code: tokend.Code(code), Count: n}, nil
	})
}

// RecordActivity appends the rows and prunes each token they name to its
// tokend.MaxActivity newest, in one transaction. The tokens are locked first,
// in id order: instances flushing the same token take turns, so that each
// prune sees the rows of the other and the bound holds, and a token deleted
// meanwhile has its rows dropped instead of failing the batch.
func (s *Store) RecordActivity(ctx context.Context, rows []tokend.Activity) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]string, 0, len(rows))
	for _, a := range rows {
		ids = append(ids, a.TokenID)
	}
	return s.flush(ctx, "record activity", ids, s.f.ForNoKeyUpdate, func(exists map[string]bool) []stmt {
		var stmts []stmt
		for _, a := range rows {
			if exists[a.TokenID] {
				stmts = append(stmts, stmt{addActivity, []any{a.TokenID, s.time(a.At), a.IP, string(a.Code), a.Method, a.Path}})
			}
		}
		live := make([]string, 0, len(exists))
		for id := range exists {
			live = append(live, id)
		}
		slices.Sort(live)
		for _, id := range live {
			stmts = append(stmts, stmt{pruneActivity, []any{id, tokend.MaxActivity}})
		}
		return stmts
	})
}

// Activity answers a token's recent verifications, newest first.
func (s *Store) Activity(ctx context.Context, tokenID string) ([]tokend.Activity, error) {
	return list(ctx, s, s.r, "activity", s.sql(activityOf), []any{tokenID, tokend.MaxActivity}, func(r Row) (tokend.Activity, error) {
		a := tokend.Activity{TokenID: tokenID}
		var (
			at   Time
			code string
		)
		if err := r.Scan(&at, &a.IP, &code, &a.Method, &a.Path); err != nil {
			return tokend.Activity{}, s.Err("activity", err)
		}
		a.At, a.Code = at.Time, tokend.Code(code)
		return a, nil
	})
}
