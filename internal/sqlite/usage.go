package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokend/tokend"
)

// RecordUsage merges a batch in one transaction. Rows of tokens deleted since
// the batch was collected match nothing and are dropped: the EXISTS guard
// keeps the foreign key from failing the whole batch.
//
// Usage changes neither Version nor UpdatedAt: those track management
// changes, and an ETag that moved with every verification would make every
// If-Match edit of a busy token fail.
func (s *Store) RecordUsage(ctx context.Context, b tokend.UsageBatch) error {
	if len(b.Counts) == 0 && len(b.Last) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		addCount, err := tx.PrepareContext(ctx, `
			INSERT INTO usage (token_id, hour, code, count)
			SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM tokens WHERE id = ?1)
			ON CONFLICT (token_id, hour, code) DO UPDATE SET count = count + excluded.count`)
		if err != nil {
			return storeErr("record usage", err)
		}
		defer addCount.Close()
		for _, c := range b.Counts {
			hour := c.Hour.UTC().Truncate(time.Hour)
			if _, err := addCount.ExecContext(ctx, c.TokenID, micros(hour), string(c.Code), c.Count); err != nil {
				return storeErr("record usage", err)
			}
		}

		// Batches from several instances, or a retried flush, may arrive out
		// of order: the last use moves only forward, while use counts add up
		// regardless. Both CASEs see the row as it was before this UPDATE.
		addUse, err := tx.PrepareContext(ctx, `
			UPDATE tokens
			SET use_count = use_count + ?2,
			    last_used_ip = CASE WHEN last_used_at IS NULL OR last_used_at < ?3 THEN ?4 ELSE last_used_ip END,
			    last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ?3 THEN ?3 ELSE last_used_at END
			WHERE id = ?1`)
		if err != nil {
			return storeErr("record usage", err)
		}
		defer addUse.Close()
		for _, l := range b.Last {
			if _, err := addUse.ExecContext(ctx, l.TokenID, l.Uses, micros(l.At), l.IP); err != nil {
				return storeErr("record usage", err)
			}
		}
		return nil
	})
}

// Usage answers the hourly counts of a token in [from, to), oldest first and,
// within an hour, by code.
func (s *Store) Usage(ctx context.Context, tokenID string, from, to time.Time) ([]tokend.UsageCount, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT hour, code, count FROM usage
		WHERE token_id = ? AND hour >= ? AND hour < ?
		ORDER BY hour, code`,
		tokenID, micros(from), micros(to))
	if err != nil {
		return nil, storeErr("usage", err)
	}
	defer rows.Close()
	out := []tokend.UsageCount{}
	for rows.Next() {
		var (
			hour int64
			code string
			n    int64
		)
		if err := rows.Scan(&hour, &code, &n); err != nil {
			return nil, storeErr("usage", err)
		}
		out = append(out, tokend.UsageCount{TokenID: tokenID, Hour: fromMicros(hour), Code: tokend.Code(code), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("usage", err)
	}
	return out, nil
}

// TakeUse counts one use of a token with max_uses in one conditional UPDATE,
// committed on its own: the writer connection syncs the WAL on every commit
// (synchronous FULL), so a use it answers ok for survives a crash of the
// process and of the machine. The single writer connection, and SQLite's
// write lock across processes, make the check and the increment one step.
func (s *Store) TakeUse(ctx context.Context, tokenID string) (bool, error) {
	res, err := s.w.ExecContext(ctx, `
		UPDATE tokens SET use_count = use_count + 1
		WHERE id = ? AND max_uses IS NOT NULL AND use_count < max_uses`, tokenID)
	if err != nil {
		return false, storeErr("take use", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, storeErr("take use", err)
	}
	return n == 1, nil
}
