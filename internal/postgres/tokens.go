package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
	insertToken   = func() string {
		ph := make([]string, len(tokenCols))
		for i := range tokenCols {
			ph[i] = "$" + strconv.Itoa(i+1)
		}
		return `INSERT INTO tokens (` + tokenColumns + `) VALUES (` + strings.Join(ph, ", ") + `)`
	}()
	// updateToken binds the same arguments as insertToken: $1 is the id.
	updateToken = func() string {
		set := make([]string, 0, len(tokenCols)-1)
		for i, c := range tokenCols[1:] {
			set = append(set, fmt.Sprintf("%s = $%d", c, i+2))
		}
		return `UPDATE tokens SET ` + strings.Join(set, ", ") + ` WHERE id = $1`
	}()
)

// appNotFound answers a token whose app does not exist.
func appNotFound(err error) error {
	return &tokend.Error{Code: tokend.ECodeNotFound, Message: "app not found", Cause: err}
}

// CreateToken relies on the unique indexes: the partial one on live names
// answers a conflict naming the field, even when two instances create the
// same name at once.
func (s *Store) CreateToken(ctx context.Context, t tokend.Token, ev tokend.Event) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		args, err := tokenArgs(t)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertToken, args...); err != nil {
			if isForeignKey(err) {
				return appNotFound(err)
			}
			return storeErr("create token", err)
		}
		return insertEvent(ctx, tx, ev)
	})
}

func (s *Store) Token(ctx context.Context, id string) (tokend.Token, error) {
	return scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
}

func (s *Store) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	// The app's catalog comes in the same read: it is the ceiling of what
	// the token is granted at verification.
	var catalog []byte
	t, err := scanToken(s.pool.QueryRow(ctx, `
		SELECT `+tokenColumnsT+`, a.permissions
		FROM tokens t JOIN apps a ON a.id = t.app_id
		WHERE t.secret_hash = $1`, hash), &catalog)
	if err == nil {
		return credential(t, catalog, false, time.Time{})
	}
	if !errors.Is(err, tokend.ErrNotFound) {
		return tokend.Credential{}, err
	}
	// Not a current secret: perhaps one replaced by rotation. Checked second
	// because verification of current secrets is the hot path.
	var grace time.Time
	t, err = scanToken(s.pool.QueryRow(ctx, `
		SELECT `+tokenColumnsT+`, r.grace_until, a.permissions
		FROM retired_secrets r JOIN tokens t ON t.id = r.token_id JOIN apps a ON a.id = t.app_id
		WHERE r.hash = $1`, hash), &grace, &catalog)
	if err != nil {
		return tokend.Credential{}, err
	}
	return credential(t, catalog, true, grace.UTC())
}

func credential(t tokend.Token, catalog []byte, retired bool, grace time.Time) (tokend.Credential, error) {
	perms, err := fromJSON[[]string](catalog)
	if err != nil {
		return tokend.Credential{}, tokend.Internal(fmt.Errorf("postgres: catalog of app %s: %w", t.AppID, err))
	}
	return tokend.Credential{Token: t, Retired: retired, GraceUntil: grace, Catalog: perms}, nil
}

// tokenWhere adds the conditions of the tokens f selects, its cursor
// aside.
func tokenWhere(w *whereArgs, f tokend.TokenFilter) error {
	now := f.Now
	if now.IsZero() {
		// A caller that forgot Now still gets today's answer, not one in
		// which nothing has ever expired.
		now = time.Now()
	}
	if f.AppID != "" {
		w.add("app_id = ?", f.AppID)
	}
	if f.ProductOnly {
		w.add("app_id <> ?", tokend.SystemAppID)
	}
	if f.Type != "" {
		w.add("type = ?", string(f.Type))
	}
	if f.Query != "" {
		id, last4 := tokend.SearchTerms(f.Query)
		switch {
		case id != "":
			w.add(`(name ILIKE ? ESCAPE '\' OR id = ?)`, likeContains(f.Query), id)
		case last4 != "":
			w.add(`(name ILIKE ? ESCAPE '\' OR right(masked, 4) = ?)`, likeContains(f.Query), last4)
		default:
			w.add(`name ILIKE ? ESCAPE '\'`, likeContains(f.Query))
		}
	}
	if !f.ExpiresBefore.IsZero() {
		w.add("expires_at < ?", ts(f.ExpiresBefore))
	}
	if f.UnusedFor > 0 {
		// Spelled as tokens_status_activity indexes it; without a status
		// every status is named, so that the index still applies.
		if f.Status == "" {
			w.add("status IN ('active', 'disabled', 'revoked')")
		}
		w.add("coalesce(last_used_at, created_at) <= ?", ts(now.Add(-time.Duration(f.UnusedFor))))
	}
	if f.Status != "" {
		switch f.Status {
		case tokend.StatusActive, tokend.StatusDisabled:
			w.add("status = ? AND (expires_at IS NULL OR expires_at > ?)", string(f.Status), ts(now))
		case tokend.StatusRevoked:
			w.add("status = 'revoked'")
		case tokend.StatusExpired:
			w.add("status <> 'revoked' AND expires_at <= ?", ts(now))
		default:
			var p tokend.Problems
			p.Add("status", "must be one of active, disabled, revoked or expired")
			return p.Err()
		}
	}
	return nil
}

// tokenOrder answers the ORDER BY of a sorted list and adds to w the
// condition that starts a page after key. Tokens without the sort key come
// last in either order. Names sort by byte (COLLATE "C"), as on SQLite,
// whatever the database's locale.
func tokenOrder(w *whereArgs, sort string, desc bool, key *tokend.TokenKey) string {
	col, nullable := "created_at", false
	switch sort {
	case tokend.TokenSortName:
		col = `name COLLATE "C"`
	case tokend.TokenSortExpires:
		col, nullable = "expires_at", true
	case tokend.TokenSortLastUsed:
		col, nullable = "last_used_at", true
	}
	dir, op := "ASC", ">"
	if desc {
		dir, op = "DESC", "<"
	}
	order := col + " " + dir
	if nullable {
		order += " NULLS LAST"
	}
	order += ", id " + dir
	if key == nil {
		return order
	}
	var v any = key.Name
	if sort != tokend.TokenSortName {
		v = ts(key.Time)
	}
	switch {
	case key.Null:
		w.add(col+" IS NULL AND id "+op+" ?", key.ID)
	case nullable:
		w.add("(("+col+", id) "+op+" (?, ?) OR "+col+" IS NULL)", v, key.ID)
	default:
		w.add("("+col+", id) "+op+" (?, ?)", v, key.ID)
	}
	return order
}

// Tokens lists tokens in f's order (newest first by default), keyed by the
// sort column and the id.
func (s *Store) Tokens(ctx context.Context, f tokend.TokenFilter) (tokend.Page[tokend.Token], error) {
	var w whereArgs
	if err := tokenWhere(&w, f); err != nil {
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
	order := tokenOrder(&w, sort, desc, key)
	limit := pageLimit(f.Limit)
	// One more tells whether a next page exists.
	q := `SELECT ` + tokenColumns + ` FROM tokens` + w.clause() +
		` ORDER BY ` + order + ` LIMIT ` + w.arg(limit+1)

	rows, err := s.pool.Query(ctx, q, listArgs(w.args)...)
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
	var w whereArgs
	if err := tokenWhere(&w, f); err != nil {
		return 0, err
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tokens`+w.clause(), listArgs(w.args)...).Scan(&n); err != nil {
		return 0, storeErr("count tokens", err)
	}
	return n, nil
}

// UpdateToken locks the row it reads (SELECT … FOR UPDATE), so an update by
// another instance waits for this one to commit and then reads its result.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(t *tokend.Token) (tokend.Event, error)) (tokend.Token, error) {
	var t tokend.Token
	err := s.write(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1 FOR UPDATE`, id))
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
		args, err := tokenArgs(t)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, updateToken, args...); err != nil {
			if isForeignKey(err) {
				return appNotFound(err)
			}
			return storeErr("update token", err)
		}
		if !bytes.Equal(oldHash, t.SecretHash) {
			if err := retireSecret(ctx, tx, t, oldHash); err != nil {
				return err
			}
		}
		if err := notify(ctx, tx, changedToken, id); err != nil {
			return err
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
func retireSecret(ctx context.Context, tx pgx.Tx, t tokend.Token, hash []byte) error {
	retired := t.UpdatedAt // the service stamps the rotation time here
	if retired.IsZero() {
		retired = time.Now()
	}
	grace := retired
	if t.PreviousSecretExpiresAt != nil {
		grace = *t.PreviousSecretExpiresAt
	}
	_, err := tx.Exec(ctx, `
		UPDATE retired_secrets SET grace_until = $2
		WHERE token_id = $1 AND grace_until > $2`,
		t.ID, ts(retired))
	if err != nil {
		return storeErr("retire secret", err)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO retired_secrets (hash, token_id, retired_at, grace_until)
		VALUES ($1, $2, $3, $4)`,
		hash, t.ID, ts(retired), ts(grace))
	return storeErr("retire secret", err)
}

// DeleteToken deletes the token; its retired secrets and usage go by ON
// DELETE CASCADE. Its events stay: the audit log outlives what it is about.
func (s *Store) DeleteToken(ctx context.Context, id string, version int64, ev tokend.Event) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tokens WHERE id = $1 AND ($2 = 0 OR version = $2)`, id, version)
		if err := affectedOne(tag.RowsAffected(), err, "delete token"); err != nil {
			return staleIfExists(ctx, tx, `SELECT 1 FROM tokens WHERE id = $1`, id, err)
		}
		if err := notify(ctx, tx, changedToken, id); err != nil {
			return err
		}
		return insertEvent(ctx, tx, ev)
	})
}

func (s *Store) RevokeAppTokens(ctx context.Context, appID string, at time.Time, ev tokend.Event) (int, error) {
	var n int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM apps WHERE id = $1`, appID).Scan(&one)
		if err != nil {
			return storeErr("revoke app tokens", err)
		}
		// The rows are locked in id order, the order RecordUsage locks
		// them in, so that a flush running meanwhile waits instead of
		// deadlocking with this revocation.
		tag, err := tx.Exec(ctx, `
			UPDATE tokens
			SET status = 'revoked', revoked_at = $1, updated_at = $1, version = version + 1
			WHERE id IN (
				SELECT id FROM tokens WHERE app_id = $2 AND status <> 'revoked'
				ORDER BY id FOR NO KEY UPDATE)`,
			ts(at), appID)
		if err != nil {
			return storeErr("revoke app tokens", err)
		}
		n = tag.RowsAffected()
		if err := notify(ctx, tx, changedApp, appID); err != nil {
			return err
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

// affectedOne turns "no row matched" into ErrNotFound.
func affectedOne(n int64, err error, op string) error {
	if err != nil {
		return storeErr(op, err)
	}
	if n == 0 {
		return tokend.ErrNotFound
	}
	return nil
}

// tokenArgs lists t's columns in the order of tokenCols.
func tokenArgs(t tokend.Token) ([]any, error) {
	var j jsonCodec
	perms, ips := j.encode(t.Permissions), j.encode(t.AllowedIPs)
	origins, meta := j.encode(t.AllowedOrigins), j.encode(t.Metadata)
	if j.err != nil {
		return nil, tokend.Internal(fmt.Errorf("postgres: token %s: %w", t.ID, j.err))
	}
	var limit, window any
	if t.RateLimit != nil {
		limit, window = int64(t.RateLimit.Limit), int64(t.RateLimit.Window)
	}
	return []any{
		t.ID, t.AppID, t.Name, t.Description, string(t.Type), string(t.Access), perms,
		nullTS(t.ExpiresAt), ips, origins, limit, window,
		nullInt64(t.MaxUses), t.UseCount, meta, string(t.Status), t.Masked, ts(t.CreatedAt),
		t.CreatedBy, ts(t.UpdatedAt), nullTS(t.LastUsedAt), t.LastUsedIP, nullTS(t.RevokedAt),
		nullTS(t.PreviousSecretExpiresAt), t.Version, t.SecretHash,
	}, nil
}

// scanToken reads the columns of tokenCols, then any extra ones into extra.
func scanToken(sc pgx.Row, extra ...any) (tokend.Token, error) {
	var (
		t                                  tokend.Token
		typ, access, status                string
		perms, ips, origins, meta          []byte
		expires, lastUsed, revoked, prevEx *time.Time
		limit, window, maxUses             *int64
		created, updated                   time.Time
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
	t.ExpiresAt, t.LastUsedAt = fromNullTS(expires), fromNullTS(lastUsed)
	t.RevokedAt, t.PreviousSecretExpiresAt = fromNullTS(revoked), fromNullTS(prevEx)
	t.CreatedAt, t.UpdatedAt = created.UTC(), updated.UTC()
	t.MaxUses = maxUses
	if limit != nil {
		t.RateLimit = &tokend.RateLimit{Limit: int(*limit)}
		if window != nil {
			t.RateLimit.Window = tokend.Duration(*window)
		}
	}
	var j jsonCodec
	t.Permissions, t.AllowedIPs = decode[[]string](&j, perms), decode[[]string](&j, ips)
	t.AllowedOrigins, t.Metadata = decode[[]string](&j, origins), decode[map[string]any](&j, meta)
	if j.err != nil {
		return tokend.Token{}, tokend.Internal(fmt.Errorf("postgres: token %s: %w", t.ID, j.err))
	}
	return t, nil
}
