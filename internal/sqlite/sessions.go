package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokend/tokend"
)

const sessionColumns = `id_hash, user_id, csrf, created_at, last_seen_at, expires_at, ip, user_agent`

// CreateSession stores a session; ErrNotFound when its user does not exist.
func (s *Store) CreateSession(ctx context.Context, ss tokend.Session) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			ss.IDHash, ss.UserID, ss.CSRF, micros(ss.CreatedAt), micros(ss.LastSeenAt), micros(ss.ExpiresAt), ss.IP, ss.UserAgent)
		if isForeignKey(err) {
			return &tokend.Error{Code: tokend.ECodeNotFound, Message: "user not found", Cause: err}
		}
		return storeErr("create session", err)
	})
}

func (s *Store) Session(ctx context.Context, idHash []byte) (tokend.Session, error) {
	var (
		ss                     tokend.Session
		created, seen, expires int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = ?`, idHash).
		Scan(&ss.IDHash, &ss.UserID, &ss.CSRF, &created, &seen, &expires, &ss.IP, &ss.UserAgent)
	if err != nil {
		return tokend.Session{}, storeErr("read session", err)
	}
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return ss, nil
}

// TouchSession moves LastSeenAt forward to at, never back: a slow request
// finishing late must not shorten the idle clock another one extended.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE id_hash = ?`, micros(at), idHash)
		return affectedOne(res, err, "touch session")
	})
}

// DeleteSession ends a session; ending one that does not exist is not an
// error, so that signing out twice, or after the sweep, signs out.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
		return storeErr("delete session", err)
	})
}

func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		return storeErr("delete user sessions", err)
	})
}

// DeleteExpiredSessions deletes sessions past ExpiresAt or idle since
// LastSeenAt+idle; idle <= 0 means no idle limit.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, idle time.Duration) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		q, args := `DELETE FROM sessions WHERE expires_at < ?`, []any{micros(now)}
		if idle > 0 {
			q, args = q+` OR last_seen_at < ?`, append(args, micros(now.Add(-idle)))
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return storeErr("delete expired sessions", err)
		}
		n, err = res.RowsAffected()
		return storeErr("delete expired sessions", err)
	})
	return int(n), err
}

// ConsumeReveal records the hand-over id as used until expiresAt; the
// primary key makes the first insert win and every later one a conflict.
func (s *Store) ConsumeReveal(ctx context.Context, id []byte, expiresAt time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO reveals_used (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
			id, micros(expiresAt))
		if err != nil {
			return storeErr("consume reveal", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return storeErr("consume reveal", err)
		}
		if n == 0 {
			return &tokend.Error{Code: tokend.ECodeConflict, Message: "already shown"}
		}
		return nil
	})
}

// DeleteExpiredReveals deletes the records of hand-overs ended before now.
func (s *Store) DeleteExpiredReveals(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM reveals_used WHERE expires_at < ?`, micros(now))
		if err != nil {
			return storeErr("delete expired reveals", err)
		}
		n, err = res.RowsAffected()
		return storeErr("delete expired reveals", err)
	})
	return int(n), err
}
