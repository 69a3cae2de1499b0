package postgres

import "context"

func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
	if err != nil {
		return "", storeErr("read setting", err)
	}
	return v, nil
}

// InitSetting inserts, then reads in a statement of its own: under READ
// COMMITTED the read sees the row whichever instance's insert won, even one
// that committed while this insert waited on it.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return "", storeErr("init setting", err)
	}
	return s.Setting(ctx, key)
}
