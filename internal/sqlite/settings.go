package sqlite

import (
	"context"
	"database/sql"
)

func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if err != nil {
		return "", storeErr("read setting", err)
	}
	return v, nil
}

// InitSetting inserts and reads back in one write transaction: the write
// lock makes it atomic across connections and processes.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, error) {
	var stored string
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
			return storeErr("init setting", err)
		}
		return storeErr("init setting", tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&stored))
	})
	if err != nil {
		return "", err
	}
	return stored, nil
}
