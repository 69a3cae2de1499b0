package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokend/tokend"
)

const sessionColumns = `id_hash, user_id, csrf, created_at, last_seen_at, expires_at, ip, user_agent`

// CreateSession stores a session; ErrNotFound when its user does not exist.
func (s *Store) CreateSession(ctx context.Context, ss tokend.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ss.IDHash, ss.UserID, ss.CSRF, ts(ss.CreatedAt), ts(ss.LastSeenAt), ts(ss.ExpiresAt), ss.IP, ss.UserAgent)
	if isForeignKey(err) {
		return &tokend.Error{Code: tokend.ECodeNotFound, Message: "user not found", Cause: err}
	}
	return storeErr("create session", err)
}

func (s *Store) Session(ctx context.Context, idHash []byte) (tokend.Session, error) {
	var (
		ss                     tokend.Session
		created, seen, expires time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = $1`, idHash).
		Scan(&ss.IDHash, &ss.UserID, &ss.CSRF, &created, &seen, &expires, &ss.IP, &ss.UserAgent)
	if err != nil {
		return tokend.Session{}, storeErr("read session", err)
	}
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = created.UTC(), seen.UTC(), expires.UTC()
	return ss, nil
}

// TouchSession moves LastSeenAt forward to at, never back: a slow request
// finishing late must not shorten the idle clock another one extended.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE id_hash = $2`, ts(at), idHash)
	return affectedOne(tag.RowsAffected(), err, "touch session")
}

// DeleteSession ends a session; ending one that does not exist is not an
// error, so that signing out twice, or after the sweep, signs out.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	return storeErr("delete session", err)
}

func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	return storeErr("delete user sessions", err)
}

// DeleteExpiredSessions deletes sessions past ExpiresAt or idle since
// LastSeenAt+idle; idle <= 0 means no idle limit.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, idle time.Duration) (int, error) {
	var (
		tag pgconn.CommandTag
		err error
	)
	if idle > 0 {
		tag, err = s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2`, ts(now), ts(now.Add(-idle)))
	} else {
		tag, err = s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, ts(now))
	}
	if err != nil {
		return 0, storeErr("delete expired sessions", err)
	}
	return int(tag.RowsAffected()), nil
}

// ConsumeReveal records the hand-over id as used until expiresAt; the
// primary key makes the first insert win, on any instance, and every later
// one a conflict.
func (s *Store) ConsumeReveal(ctx context.Context, id []byte, expiresAt time.Time) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO reveals_used (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
		id, ts(expiresAt))
	if err != nil {
		return storeErr("consume reveal", err)
	}
	if tag.RowsAffected() == 0 {
		return &tokend.Error{Code: tokend.ECodeConflict, Message: "already shown"}
	}
	return nil
}

// DeleteExpiredReveals deletes the records of hand-overs ended before now.
func (s *Store) DeleteExpiredReveals(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM reveals_used WHERE expires_at < $1`, ts(now))
	if err != nil {
		return 0, storeErr("delete expired reveals", err)
	}
	return int(tag.RowsAffected()), nil
}
