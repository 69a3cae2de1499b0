package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokend/tokend"
)

const sessionColumns = `id_hash, user_id, csrf, created_at, last_seen_at, expires_at, ip, user_agent`

var (
	insertSession      = Q(`INSERT INTO sessions (` + sessionColumns + `) VALUES (` + placeholders(8) + `)`)
	sessionByHash      = Q(`SELECT ` + sessionColumns + ` FROM sessions WHERE id_hash = $1`)
	touchSession       = Q(`UPDATE sessions SET last_seen_at = CASE WHEN last_seen_at < $1 THEN $1 ELSE last_seen_at END WHERE id_hash = $2`)
	deleteSession      = Q(`DELETE FROM sessions WHERE id_hash = $1`)
	deleteUserSessions = Q(`DELETE FROM sessions WHERE user_id = $1`)
	deleteExpired      = Q(`DELETE FROM sessions WHERE expires_at < $1`)
	deleteIdle         = Q(`DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2`)
	insertReveal       = Q(`INSERT INTO reveals_used (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`)
	deleteReveals      = Q(`DELETE FROM reveals_used WHERE expires_at < $1`)
	settingByKey       = Q(`SELECT value FROM settings WHERE key = $1`)
	insertSetting      = Q(`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`)
)

// Each write below is one statement, committed on its own through the
// writer.

// CreateSession stores a session; ErrNotFound when its user does not exist.
func (s *Store) CreateSession(ctx context.Context, ss tokend.Session) error {
	_, err := s.w.ExecContext(ctx, s.sql(insertSession),
		ss.IDHash, ss.UserID, ss.CSRF, s.time(ss.CreatedAt), s.time(ss.LastSeenAt), s.time(ss.ExpiresAt), ss.IP, ss.UserAgent)
	if err != nil && s.f.ForeignKey(err) {
		return &tokend.Error{Code: tokend.ECodeNotFound, Message: "user not found", Cause: err}
	}
	return s.Err("create session", err)
}

func (s *Store) Session(ctx context.Context, idHash []byte) (tokend.Session, error) {
	var (
		ss                     tokend.Session
		created, seen, expires Time
	)
	err := s.r.QueryRowContext(ctx, s.sql(sessionByHash), idHash).
		Scan(&ss.IDHash, &ss.UserID, &ss.CSRF, &created, &seen, &expires, &ss.IP, &ss.UserAgent)
	if err != nil {
		return tokend.Session{}, s.Err("read session", err)
	}
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = created.Time, seen.Time, expires.Time
	return ss, nil
}

// TouchSession moves LastSeenAt forward to at, never back: a slow request
// finishing late must not shorten the idle clock another one extended.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	res, err := s.w.ExecContext(ctx, s.sql(touchSession), s.time(at), idHash)
	return s.affectedOne(res, err, "touch session")
}

// DeleteSession ends a session; ending one that does not exist is not an
// error, so that signing out twice, or after the sweep, signs out.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := s.w.ExecContext(ctx, s.sql(deleteSession), idHash)
	return s.Err("delete session", err)
}

func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := s.w.ExecContext(ctx, s.sql(deleteUserSessions), userID)
	return s.Err("delete user sessions", err)
}

// DeleteExpiredSessions deletes sessions past ExpiresAt or idle since
// LastSeenAt+idle; idle <= 0 means no idle limit.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, idle time.Duration) (int, error) {
	q, args := deleteExpired, []any{s.time(now)}
	if idle > 0 {
		q, args = deleteIdle, append(args, s.time(now.Add(-idle)))
	}
	res, err := s.w.ExecContext(ctx, s.sql(q), args...)
	n, err := s.affected(res, err, "delete expired sessions")
	return int(n), err
}

// ConsumeReveal records the hand-over id as used until expiresAt; the
// primary key makes the first insert win, on any instance, and every later
// one a conflict.
func (s *Store) ConsumeReveal(ctx context.Context, id []byte, expiresAt time.Time) error {
	res, err := s.w.ExecContext(ctx, s.sql(insertReveal), id, s.time(expiresAt))
	n, err := s.affected(res, err, "consume reveal")
	if err == nil && n == 0 {
		return &tokend.Error{Code: tokend.ECodeConflict, Message: "already shown"}
	}
	return err
}

// DeleteExpiredReveals deletes the records of hand-overs ended before now.
func (s *Store) DeleteExpiredReveals(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, s.sql(deleteReveals), s.time(now))
	n, err := s.affected(res, err, "delete expired reveals")
	return int(n), err
}

func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.r.QueryRowContext(ctx, s.sql(settingByKey), key).Scan(&v); err != nil {
		return "", s.Err("read setting", err)
	}
	return v, nil
}

// InitSetting inserts and reads back in one write transaction. On SQLite
// the write lock makes it atomic across connections and processes; on
// PostgreSQL, under READ COMMITTED, the read is a statement of its own and
// sees the row whichever instance's insert won, even one that committed
// while this insert waited on it.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, error) {
	var stored string
	err := s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.sql(insertSetting), key, value); err != nil {
			return s.Err("init setting", err)
		}
		return s.Err("init setting", tx.QueryRowContext(ctx, s.sql(settingByKey), key).Scan(&stored))
	})
	if err != nil {
		return "", err
	}
	return stored, nil
}
