package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

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
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var err error
	for range 3 {
		if err = s.recordActivity(ctx, rows, ids); !retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) recordActivity(ctx context.Context, rows []tokend.Activity, ids []string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		locked, err := tx.Query(ctx, `SELECT id FROM tokens WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids)
		if err != nil {
			return storeErr("record activity", err)
		}
		live, err := pgx.CollectRows(locked, pgx.RowTo[string])
		if err != nil {
			return storeErr("record activity", err)
		}
		exists := make(map[string]bool, len(live))
		for _, id := range live {
			exists[id] = true
		}
		var batch pgx.Batch
		for _, a := range rows {
			if !exists[a.TokenID] {
				continue
			}
			batch.Queue(`INSERT INTO activity (token_id, at, ip, code, method, path) VALUES ($1, $2, $3, $4, $5, $6)`,
				a.TokenID, ts(a.At), a.IP, string(a.Code), a.Method, a.Path)
		}
		for _, id := range live {
			batch.Queue(`
				DELETE FROM activity WHERE token_id = $1 AND seq NOT IN (
					SELECT seq FROM activity WHERE token_id = $1 ORDER BY at DESC, seq DESC LIMIT $2)`,
				id, tokend.MaxActivity)
		}
		if batch.Len() == 0 {
			return nil
		}
		return storeErr("record activity", tx.SendBatch(ctx, &batch).Close())
	})
}

// Activity answers a token's recent verifications, newest first.
func (s *Store) Activity(ctx context.Context, tokenID string) ([]tokend.Activity, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT at, ip, code, method, path FROM activity
		WHERE token_id = $1 ORDER BY at DESC, seq DESC LIMIT $2`,
		tokenID, tokend.MaxActivity)
	if err != nil {
		return nil, storeErr("activity", err)
	}
	defer rows.Close()
	out := []tokend.Activity{}
	for rows.Next() {
		a := tokend.Activity{TokenID: tokenID}
		var (
			at   time.Time
			code string
		)
		if err := rows.Scan(&at, &a.IP, &code, &a.Method, &a.Path); err != nil {
			return nil, storeErr("activity", err)
		}
		a.At, a.Code = at.UTC(), tokend.Code(code)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("activity", err)
	}
	return out, nil
}
