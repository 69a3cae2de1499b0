package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tokend/tokend"
)

// The customer portal's links and sessions (tokend.PortalStore). Each
// write is one statement, committed on its own through the writer.

const (
	portalLinkColumns    = `id_hash, grant_json, created_at, expires_at`
	portalSessionColumns = `id_hash, grant_json, csrf, created_at, last_seen_at, expires_at`
)

var (
	insertPortalLink = Q(`INSERT INTO portal_links (` + portalLinkColumns + `) VALUES (` + placeholders(4) + `)`)
	// consumePortalLink deletes and answers the link in one statement: of
	// concurrent callers only the one whose delete found the row gets it.
	consumePortalLink    = Q(`DELETE FROM portal_links WHERE id_hash = $1 AND expires_at > $2 RETURNING ` + portalLinkColumns)
	insertPortalSession  = Q(`INSERT INTO portal_sessions (` + portalSessionColumns + `) VALUES (` + placeholders(6) + `)`)
	portalSessionByHash  = Q(`SELECT ` + portalSessionColumns + ` FROM portal_sessions WHERE id_hash = $1`)
	touchPortalSession   = Q(`UPDATE portal_sessions SET last_seen_at = CASE WHEN last_seen_at < $1 THEN $1 ELSE last_seen_at END WHERE id_hash = $2`)
	deletePortalSession  = Q(`DELETE FROM portal_sessions WHERE id_hash = $1`)
	deleteExpiredLinks   = Q(`DELETE FROM portal_links WHERE expires_at <= $1`)
	deleteExpiredPortals = Q(`DELETE FROM portal_sessions WHERE expires_at < $1 OR last_seen_at < $2`)
)

func (s *Store) CreatePortalLink(ctx context.Context, l tokend.PortalLink) error {
	g, err := toJSON(l.Grant)
	if err != nil {
		return s.internal("encode portal grant", err)
	}
	_, err = s.w.ExecContext(ctx, s.sql(insertPortalLink), l.IDHash, g, s.time(l.CreatedAt), s.time(l.ExpiresAt))
	return s.Err("create portal link", err)
}

func (s *Store) ConsumePortalLink(ctx context.Context, idHash []byte, now time.Time) (tokend.PortalLink, error) {
	var (
		l                tokend.PortalLink
		g                JSON
		created, expires Time
	)
	err := s.w.QueryRowContext(ctx, s.sql(consumePortalLink), idHash, s.time(now)).Scan(&l.IDHash, &g, &created, &expires)
	if err != nil {
		return tokend.PortalLink{}, s.Err("consume portal link", err)
	}
	if err := json.Unmarshal(g, &l.Grant); err != nil {
		return tokend.PortalLink{}, s.internal("decode portal grant", err)
	}
	l.CreatedAt, l.ExpiresAt = created.Time, expires.Time
	return l, nil
}

func (s *Store) CreatePortalSession(ctx context.Context, ps tokend.PortalSession) error {
	g, err := toJSON(ps.Grant)
	if err != nil {
		return s.internal("encode portal grant", err)
	}
	_, err = s.w.ExecContext(ctx, s.sql(insertPortalSession),
		ps.IDHash, g, ps.CSRF, s.time(ps.CreatedAt), s.time(ps.LastSeenAt), s.time(ps.ExpiresAt))
	return s.Err("create portal session", err)
}

func (s *Store) PortalSession(ctx context.Context, idHash []byte) (tokend.PortalSession, error) {
	var (
		ps                     tokend.PortalSession
		g                      JSON
		created, seen, expires Time
	)
	err := s.r.QueryRowContext(ctx, s.sql(portalSessionByHash), idHash).
		Scan(&ps.IDHash, &g, &ps.CSRF, &created, &seen, &expires)
	if err != nil {
		return tokend.PortalSession{}, s.Err("read portal session", err)
	}
	if err := json.Unmarshal(g, &ps.Grant); err != nil {
		return tokend.PortalSession{}, s.internal("decode portal grant", err)
	}
	ps.CreatedAt, ps.LastSeenAt, ps.ExpiresAt = created.Time, seen.Time, expires.Time
	return ps, nil
}

func (s *Store) TouchPortalSession(ctx context.Context, idHash []byte, at time.Time) error {
	res, err := s.w.ExecContext(ctx, s.sql(touchPortalSession), s.time(at), idHash)
	return s.affectedOne(res, err, "touch portal session")
}

// DeletePortalSession ends a session; ending one that does not exist is
// not an error (signing out twice signs out).
func (s *Store) DeletePortalSession(ctx context.Context, idHash []byte) error {
	_, err := s.w.ExecContext(ctx, s.sql(deletePortalSession), idHash)
	return s.Err("delete portal session", err)
}

func (s *Store) DeleteExpiredPortal(ctx context.Context, now time.Time, idle time.Duration) (int, error) {
	res, err := s.w.ExecContext(ctx, s.sql(deleteExpiredLinks), s.time(now))
	links, err := s.affected(res, err, "delete expired portal links")
	if err != nil {
		return 0, err
	}
	res, err = s.w.ExecContext(ctx, s.sql(deleteExpiredPortals), s.time(now), s.time(now.Add(-idle)))
	sessions, err := s.affected(res, err, "delete expired portal sessions")
	return int(links + sessions), err
}
