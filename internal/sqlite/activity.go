package sqlite

import (
	"context"
	"database/sql"

	"github.com/tokend/tokend"
)

// RecordActivity appends the rows and prunes each token they name to its
// tokend.MaxActivity newest, in one transaction. Rows of tokens deleted
// since the batch was collected match nothing and are dropped.
func (s *Store) RecordActivity(ctx context.Context, rows []tokend.Activity) error {
	if len(rows) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		add, err := tx.PrepareContext(ctx, `
			INSERT INTO activity (token_id, at, ip, code, method, path)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM tokens WHERE id = ?1)`)
		if err != nil {
			return storeErr("record activity", err)
		}
		defer add.Close()
		seen := make(map[string]bool)
		for _, a := range rows {
			if _, err := add.ExecContext(ctx, a.TokenID, micros(a.At), a.IP, string(a.Code), a.Method, a.Path); err != nil {
				return storeErr("record activity", err)
			}
			seen[a.TokenID] = true
		}
		for id := range seen {
			if _, err := tx.ExecContext(ctx, `
				DELETE FROM activity WHERE token_id = ?1 AND seq NOT IN (
					SELECT seq FROM activity WHERE token_id = ?1 ORDER BY at DESC, seq DESC LIMIT ?2)`,
				id, tokend.MaxActivity); err != nil {
				return storeErr("record activity", err)
			}
		}
		return nil
	})
}

// Activity answers a token's recent verifications, newest first.
func (s *Store) Activity(ctx context.Context, tokenID string) ([]tokend.Activity, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT at, ip, code, method, path FROM activity
		WHERE token_id = ? ORDER BY at DESC, seq DESC LIMIT ?`,
		tokenID, tokend.MaxActivity)
	if err != nil {
		return nil, storeErr("activity", err)
	}
	defer rows.Close()
	out := []tokend.Activity{}
	for rows.Next() {
		a := tokend.Activity{TokenID: tokenID}
		var (
			at   int64
			code string
		)
		if err := rows.Scan(&at, &a.IP, &code, &a.Method, &a.Path); err != nil {
			return nil, storeErr("activity", err)
		}
		a.At, a.Code = fromMicros(at), tokend.Code(code)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("activity", err)
	}
	return out, nil
}
