package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// RecordUsage merges a batch in one transaction. Several instances flush
// their own batches concurrently; every change is an increment made under
// the row's lock (ON CONFLICT DO UPDATE, UPDATE … SET use_count = use_count
// + n), so no count is lost.
//
// The batch's tokens are first locked FOR KEY SHARE, in id order: a token
// deleted meanwhile cannot vanish between that check and the inserts (its
// rows are dropped instead of failing the batch on the foreign key), and
// instances flushing the same tokens take their locks in the same order, so
// they wait for each other rather than deadlock. Usage rows are written in
// key order for the same reason.
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
		counts[i].Hour = ts(counts[i].Hour.UTC().Truncate(time.Hour))
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
	slices.Sort(ids)
	ids = slices.Compact(ids)

	// A deadlock with a change that locks tokens in another order (deleting
	// an app cascades in the server's order) rolls the whole batch back, so
	// running it again adds nothing twice.
	var err error
	for range 3 {
		if err = s.recordUsage(ctx, counts, last, ids); !retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) recordUsage(ctx context.Context, counts []tokend.UsageCount, last []tokend.LastUse, ids []string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM tokens WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`, ids)
		if err != nil {
			return storeErr("record usage", err)
		}
		live, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return storeErr("record usage", err)
		}
		exists := make(map[string]bool, len(live))
		for _, id := range live {
			exists[id] = true
		}

		var batch pgx.Batch
		for _, c := range counts {
			if !exists[c.TokenID] {
				continue
			}
			batch.Queue(`
				INSERT INTO usage (token_id, hour, code, count) VALUES ($1, $2, $3, $4)
				ON CONFLICT (token_id, hour, code) DO UPDATE SET count = usage.count + EXCLUDED.count`,
				c.TokenID, c.Hour, string(c.Code), c.Count)
		}
		// Batches from several instances, or a retried flush, may arrive out
		// of order: the last use moves only forward, while use counts add up
		// regardless. Both CASEs see the row as it was before this UPDATE.
		for _, l := range last {
			if !exists[l.TokenID] {
				continue
			}
			batch.Queue(`
				UPDATE tokens
				SET use_count = use_count + $2,
				    last_used_ip = CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $4 ELSE last_used_ip END,
				    last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $3 ELSE last_used_at END
				WHERE id = $1`,
				l.TokenID, l.Uses, ts(l.At), l.IP)
		}
		if batch.Len() == 0 {
			return nil
		}
		return storeErr("record usage", tx.SendBatch(ctx, &batch).Close())
	})
}

// Usage answers the hourly counts of a token in [from, to), oldest first and,
// within an hour, by code.
func (s *Store) Usage(ctx context.Context, tokenID string, from, to time.Time) ([]tokend.UsageCount, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT hour, code, count FROM usage
		WHERE token_id = $1 AND hour >= $2 AND hour < $3
		ORDER BY hour, code COLLATE "C"`,
		tokenID, ts(from), ts(to))
	if err != nil {
		return nil, storeErr("usage", err)
	}
	defer rows.Close()
	out := []tokend.UsageCount{}
	for rows.Next() {
		var (
			hour time.Time
			code string
			n    int64
		)
		if err := rows.Scan(&hour, &code, &n); err != nil {
			return nil, storeErr("usage", err)
		}
		out = append(out, tokend.UsageCount{TokenID: tokenID, Hour: hour.UTC(), Code: tokend.Code(code), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("usage", err)
	}
	return out, nil
}

// TakeUse counts one use of a token with max_uses in one conditional UPDATE,
// committed on its own. Concurrent updates of the row, from any instance,
// wait for its lock and then evaluate the condition again on the row as the
// winner left it, so no more than max_uses are ever counted.
func (s *Store) TakeUse(ctx context.Context, tokenID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE tokens SET use_count = use_count + 1
		WHERE id = $1 AND max_uses IS NOT NULL AND use_count < max_uses`, tokenID)
	if err != nil {
		return false, storeErr("take use", err)
	}
	return tag.RowsAffected() == 1, nil
}
