package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// tokenCols are the columns of tokens in the order tokenArgs and scanToken
// use. The INSERT and UPDATE statements are spelled from this one list so
// that a new column cannot be forgotten in one of them.
var tokenCols = []string{
	"id", "app_id", "name", "description", "type", "access", "permissions",
	"expires_at", "allowed_ips", "allowed_origins", "rate_limit", "rate_window",
	"max_uses", "use_count", "metadata", "status", "masked", "created_at",
	"created_by", "updated_at", "last_used_at", "last_used_ip", "revoked_at",
	"previous_secret_expires_at", "version", "secret_hash",
}

var (
	tokenColumns = strings.Join(tokenCols, ", ")
	// tokenColumnsT names the same columns of the table aliased t.
	tokenColumnsT = "t." + strings.Join(tokenCols, ", t.")
	insertToken   = `INSERT INTO tokens (` + tokenColumns + `) VALUES (?` + strings.Repeat(", ?", len(tokenCols)-1) + `)`
	// updateToken binds the same arguments as insertToken: ?1 is the id.
	updateToken = func() string {
		set := make([]string, 0, len(tokenCols)-1)
		for i, c := range tokenCols[1:] {
			set = append(set, fmt.Sprintf("%s = ?%d", c, i+2))
		}
		return `UPDATE tokens SET ` + strings.Join(set, ", ") + ` WHERE id = ?1`
	}()
)

func (s *Store) CreateToken(ctx context.Context, t tokend.Token, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := checkLiveName(ctx, tx, t); err != nil {
			return err
		}
		args, err := tokenArgs(t)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertToken, args...); err != nil {
			if isForeignKey(err) {
				return &tokend.Error{Code: tokend.ECodeNotFound, Message: "app not found", Cause: err}
			}
			return storeErr("create token", err)
		}
		return insertEvent(ctx, tx, ev)
	})
}

// checkLiveName answers a conflict that names the field when another live
// token of t's app has t's name. The partial unique index enforces the rule
// anyway; asking first only gives the caller a better answer than "conflict".
func checkLiveName(ctx context.Context, tx *sql.Tx, t tokend.Token) error {
	if t.Status == tokend.StatusRevoked {
		return nil
	}
	var one int
	err := tx.QueryRowContext(ctx, `
		SELECT 1 FROM tokens
		WHERE app_id = ? AND name = ? AND status <> 'revoked' AND id <> ?`,
		t.AppID, t.Name, t.ID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return storeErr("check token name", err)
	}
	return &tokend.Error{
		Code:    tokend.ECodeConflict,
		Message: "another token of this app already has this name",
		Fields:  []tokend.FieldError{{Field: "name", Message: "is taken by another live token of this app"}},
	}
}

func (s *Store) Token(ctx context.Context, id string) (tokend.Token, error) {
	return scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
}

func (s *Store) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	// The app's catalog comes in the same read: it is the ceiling of what
	// the token is granted at verification.
	var catalog string
	t, err := scanToken(s.r.QueryRowContext(ctx, `
		SELECT `+tokenColumnsT+`, a.permissions
		FROM tokens t JOIN apps a ON a.id = t.app_id
		WHERE t.secret_hash = ?`, hash), &catalog)
	if err == nil {
		return credential(t, catalog, false, time.Time{})
	}
	if !errors.Is(err, tokend.ErrNotFound) {
		return tokend.Credential{}, err
	}
	// Not a current secret: perhaps one replaced by rotation. Checked second
	// because verification of current secrets is the hot path.
	var grace int64
	t, err = scanToken(s.r.QueryRowContext(ctx, `
		SELECT `+tokenColumnsT+`, r.grace_until, a.permissions
		FROM retired_secrets r JOIN tokens t ON t.id = r.token_id JOIN apps a ON a.id = t.app_id
		WHERE r.hash = ?`, hash), &grace, &catalog)
	if err != nil {
		return tokend.Credential{}, err
	}
	return credential(t, catalog, true, fromMicros(grace))
}

func credential(t tokend.Token, catalog string, retired bool, grace time.Time) (tokend.Credential, error) {
	perms, err := fromJSON[[]string](catalog)
	if err != nil {
		return tokend.Credential{}, tokend.Internal(fmt.Errorf("sqlite: catalog of app %s: %w", t.AppID, err))
	}
	return tokend.Credential{Token: t, Retired: retired, GraceUntil: grace, Catalog: perms}, nil
}

// tokenWhere is the WHERE clause (with its arguments) of the tokens f
// selects, its cursor aside.
func tokenWhere(f tokend.TokenFilter) (where []string, args []any, err error) {
	now := f.Now
	if now.IsZero() {
		// A caller that forgot Now still gets today's answer, not one in
		// which nothing has ever expired.
		now = time.Now()
	}
	if f.AppID != "" {
		where, args = append(where, "app_id = ?"), append(args, f.AppID)
	}
	if f.ProductOnly {
		where, args = append(where, "app_id <> ?"), append(args, tokend.SystemAppID)
	}
	if f.Type != "" {
		where, args = append(where, "type = ?"), append(args, string(f.Type))
	}
	if f.Query != "" {
		// SQLite's LIKE ignores case for ASCII letters only; = and substr
		// keep it, as ids and secrets do.
		cond, qargs := `name LIKE ? ESCAPE '\'`, []any{likeContains(f.Query)}
		id, last4 := tokend.SearchTerms(f.Query)
		if id != "" {
			cond, qargs = cond+" OR id = ?", append(qargs, id)
		}
		if last4 != "" {
			cond, qargs = cond+" OR substr(masked, -4) = ?", append(qargs, last4)
		}
		where, args = append(where, "("+cond+")"), append(args, qargs...)
	}
	if !f.ExpiresBefore.IsZero() {
		where, args = append(where, "expires_at < ?"), append(args, micros(f.ExpiresBefore))
	}
	if f.UnusedFor > 0 {
		// Spelled as tokens_status_activity indexes it; without a status
		// every status is named, so that the index still applies.
		if f.Status == "" {
			where = append(where, "status IN ('active', 'disabled', 'revoked')")
		}
		where = append(where, "coalesce(last_used_at, created_at) <= ?")
		args = append(args, micros(now.Add(-time.Duration(f.UnusedFor))))
	}
	if f.Status != "" {
		n := micros(now)
		switch f.Status {
		case tokend.StatusActive, tokend.StatusDisabled:
			where = append(where, "status = ? AND (expires_at IS NULL OR expires_at > ?)")
			args = append(args, string(f.Status), n)
		case tokend.StatusRevoked:
			where = append(where, "status = 'revoked'")
		case tokend.StatusExpired:
			where = append(where, "status <> 'revoked' AND expires_at <= ?")
			args = append(args, n)
		default:
			var p tokend.Problems
			p.Add("status", "must be one of active, disabled, revoked or expired")
			return nil, nil, p.Err()
		}
	}
	return where, args, nil
}

// tokenOrder is the ORDER BY of a sorted list, and the condition (with its
// arguments) that starts a page after key. Tokens without the sort key
// come last in either order.
func tokenOrder(sort string, desc bool, key *tokend.TokenKey) (order, after string, args []any) {
	col, nullable := "created_at", false
	switch sort {
	case tokend.TokenSortName:
		col = "name"
	case tokend.TokenSortExpires:
		col, nullable = "expires_at", true
	case tokend.TokenSortLastUsed:
		col, nullable = "last_used_at", true
	}
	dir, op := "ASC", ">"
	if desc {
		dir, op = "DESC", "<"
	}
	order = col + " " + dir
	if nullable {
		order += " NULLS LAST"
	}
	order += ", id " + dir
	if key == nil {
		return order, "", nil
	}
	var v any = key.Name
	if sort != tokend.TokenSortName {
		v = micros(key.Time)
	}
	switch {
	case key.Null:
		after, args = col+" IS NULL AND id "+op+" ?", []any{key.ID}
	case nullable:
		after, args = "(("+col+", id) "+op+" (?, ?) OR "+col+" IS NULL)", []any{v, key.ID}
	default:
		after, args = "("+col+", id) "+op+" (?, ?)", []any{v, key.ID}
	}
	return order, after, args
}

// Tokens lists tokens in f's order (newest first by default), keyed by the
// sort column and the id.
func (s *Store) Tokens(ctx context.Context, f tokend.TokenFilter) (tokend.Page[tokend.Token], error) {
	where, args, err := tokenWhere(f)
	if err != nil {
		return tokend.Page[tokend.Token]{}, err
	}
	sort, desc, ok := tokend.TokenOrder(f.Sort, f.Order)
	if !ok {
		return tokend.Page[tokend.Token]{}, tokend.ErrBadSort()
	}
	var key *tokend.TokenKey
	if f.Cursor != "" {
		k, err := tokend.ParseTokenCursor(sort, desc, f.Cursor)
		if err != nil {
			return tokend.Page[tokend.Token]{}, err
		}
		key = &k
	}
	order, after, afterArgs := tokenOrder(sort, desc, key)
	if after != "" {
		where, args = append(where, after), append(args, afterArgs...)
	}
	limit := pageLimit(f.Limit)
	q := `SELECT ` + tokenColumns + ` FROM tokens`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order + " LIMIT ?"
	args = append(args, limit+1) // one more tells whether a next page exists

	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return tokend.Page[tokend.Token]{}, storeErr("list tokens", err)
	}
	defer rows.Close()
	page := tokend.Page[tokend.Token]{Items: []tokend.Token{}}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return tokend.Page[tokend.Token]{}, err
		}
		page.Items = append(page.Items, t)
	}
	if err := rows.Err(); err != nil {
		return tokend.Page[tokend.Token]{}, storeErr("list tokens", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = tokend.TokenCursor(sort, desc, page.Items[limit-1])
	}
	return page, nil
}

// CountTokens counts what Tokens lists over all its pages.
func (s *Store) CountTokens(ctx context.Context, f tokend.TokenFilter) (int, error) {
	where, args, err := tokenWhere(f)
	if err != nil {
		return 0, err
	}
	q := `SELECT count(*) FROM tokens`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, storeErr("count tokens", err)
	}
	return n, nil
}

func (s *Store) UpdateToken(ctx context.Context, id string, fn func(t *tokend.Token) (tokend.Event, error)) (tokend.Token, error) {
	var t tokend.Token
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
		if err != nil {
			return err
		}
		// fn may overwrite the hash in place; keep our own copy.
		oldHash := bytes.Clone(t.SecretHash)
		version := t.Version
		ev, err := fn(&t)
		if err != nil {
			return err
		}
		// The id is the row's identity, and the version is the store's to
		// keep; whatever fn did to them is undone.
		t.ID, t.Version = id, version+1
		if err := checkLiveName(ctx, tx, t); err != nil {
			return err
		}
		args, err := tokenArgs(t)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, updateToken, args...); err != nil {
			if isForeignKey(err) {
				return &tokend.Error{Code: tokend.ECodeNotFound, Message: "app not found", Cause: err}
			}
			return storeErr("update token", err)
		}
		if !bytes.Equal(oldHash, t.SecretHash) {
			if err := retireSecret(ctx, tx, t, oldHash); err != nil {
				return err
			}
		}
		return insertEvent(ctx, tx, ev)
	})
	if err != nil {
		return tokend.Token{}, err
	}
	return t, nil
}

// retireSecret keeps a hash replaced by rotation. It verifies until the
// token's PreviousSecretExpiresAt; without one, its grace ends at the
// rotation itself, and a later use is only recognised as an old secret.
//
// At most the current secret and the one it replaced verify: every secret
// retired earlier has its grace ended at this rotation (kept, so that a
// later use of it is still recognised as an old secret, not an unknown one).
func retireSecret(ctx context.Context, tx *sql.Tx, t tokend.Token, hash []byte) error {
	retired := t.UpdatedAt // the service stamps the rotation time here
	if retired.IsZero() {
		retired = time.Now()
	}
	grace := retired
	if t.PreviousSecretExpiresAt != nil {
		grace = *t.PreviousSecretExpiresAt
	}
	_, err := tx.ExecContext(ctx, `
		UPDATE retired_secrets SET grace_until = ?2
		WHERE token_id = ?1 AND grace_until > ?2`,
		t.ID, micros(retired))
	if err != nil {
		return storeErr("retire secret", err)
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO retired_secrets (hash, token_id, retired_at, grace_until)
		VALUES (?, ?, ?, ?)`,
		hash, t.ID, micros(retired), micros(grace))
	return storeErr("retire secret", err)
}

// DeleteToken deletes the token; its retired secrets and usage go by ON
// DELETE CASCADE. Its events stay: the audit log outlives what it is about.
func (s *Store) DeleteToken(ctx context.Context, id string, version int64, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = ?1 AND (?2 = 0 OR version = ?2)`, id, version)
		if err := affectedOne(res, err, "delete token"); err != nil {
			return staleIfExists(ctx, tx, `SELECT 1 FROM tokens WHERE id = ?`, id, err)
		}
		return insertEvent(ctx, tx, ev)
	})
}

func (s *Store) RevokeAppTokens(ctx context.Context, appID string, at time.Time, ev tokend.Event) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM apps WHERE id = ?`, appID).Scan(&one)
		if err != nil {
			return storeErr("revoke app tokens", err)
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE tokens
			SET status = 'revoked', revoked_at = ?1, updated_at = ?1, version = version + 1
			WHERE app_id = ?2 AND status <> 'revoked'`,
			micros(at), appID)
		if err != nil {
			return storeErr("revoke app tokens", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return storeErr("revoke app tokens", err)
		}
		// The caller's map is theirs; the count goes into a copy.
		d := maps.Clone(ev.Details)
		if d == nil {
			d = map[string]any{}
		}
		d["count"] = n
		ev.Details = d
		return insertEvent(ctx, tx, ev)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// tokenArgs lists t's columns in the order of tokenCols.
func tokenArgs(t tokend.Token) ([]any, error) {
	var j jsonCodec
	perms, ips := j.encode(t.Permissions), j.encode(t.AllowedIPs)
	origins, meta := j.encode(t.AllowedOrigins), j.encode(t.Metadata)
	if j.err != nil {
		return nil, tokend.Internal(fmt.Errorf("sqlite: token %s: %w", t.ID, j.err))
	}
	var limit, window any
	if t.RateLimit != nil {
		limit, window = int64(t.RateLimit.Limit), int64(t.RateLimit.Window)
	}
	return []any{
		t.ID, t.AppID, t.Name, t.Description, string(t.Type), string(t.Access), perms,
		nullMicros(t.ExpiresAt), ips, origins, limit, window,
		nullInt64(t.MaxUses), t.UseCount, meta, string(t.Status), t.Masked, micros(t.CreatedAt),
		t.CreatedBy, micros(t.UpdatedAt), nullMicros(t.LastUsedAt), t.LastUsedIP, nullMicros(t.RevokedAt),
		nullMicros(t.PreviousSecretExpiresAt), t.Version, t.SecretHash,
	}, nil
}

// scanToken reads the columns of tokenCols, then any extra ones into extra.
func scanToken(sc scanner, extra ...any) (tokend.Token, error) {
	var (
		t                                  tokend.Token
		typ, access, status                string
		perms, ips, origins, meta          string
		expires, lastUsed, revoked, prevEx sql.NullInt64
		limit, window, maxUses             sql.NullInt64
		created, updated                   int64
	)
	dest := []any{
		&t.ID, &t.AppID, &t.Name, &t.Description, &typ, &access, &perms,
		&expires, &ips, &origins, &limit, &window,
		&maxUses, &t.UseCount, &meta, &status, &t.Masked, &created,
		&t.CreatedBy, &updated, &lastUsed, &t.LastUsedIP, &revoked,
		&prevEx, &t.Version, &t.SecretHash,
	}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return tokend.Token{}, storeErr("read token", err)
	}
	t.Type, t.Access, t.Status = tokend.TokenType(typ), tokend.Access(access), tokend.Status(status)
	t.ExpiresAt, t.LastUsedAt = fromNullMicros(expires), fromNullMicros(lastUsed)
	t.RevokedAt, t.PreviousSecretExpiresAt = fromNullMicros(revoked), fromNullMicros(prevEx)
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	t.MaxUses = fromNullInt64(maxUses)
	if limit.Valid {
		t.RateLimit = &tokend.RateLimit{Limit: int(limit.Int64), Window: tokend.Duration(window.Int64)}
	}
	var j jsonCodec
	t.Permissions, t.AllowedIPs = decode[[]string](&j, perms), decode[[]string](&j, ips)
	t.AllowedOrigins, t.Metadata = decode[[]string](&j, origins), decode[map[string]any](&j, meta)
	if j.err != nil {
		return tokend.Token{}, tokend.Internal(fmt.Errorf("sqlite: token %s: %w", t.ID, j.err))
	}
	return t, nil
}
