package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// tokenCols are the columns of tokens in the order tokenArgs and ScanToken
// use. The INSERT and UPDATE statements are spelled from this one list so
// that a new column cannot be forgotten in one of them.
var tokenCols = [...]string{
	"id", "app_id", "name", "description", "type", "access", "permissions",
	"expires_at", "allowed_ips", "allowed_origins", "rate_limit", "rate_window",
	"max_uses", "use_count", "metadata", "status", "masked", "created_at",
	"created_by", "updated_at", "last_used_at", "last_used_ip", "revoked_at",
	"previous_secret_expires_at", "version", "secret_hash", "owner_id",
	"owner_name", "scope", "decoy",
}

// credentialCols are the columns of tokens that verification needs
// (tokend.Credential): what the cache entry, the answer's VerifiedToken, a
// decoy's event, max_uses and the use count are made of. The others
// (description, bookkeeping, the secret hash, the owner's name) stay in
// the database on a cache miss.
var credentialCols = []string{
	"id", "app_id", "name", "type", "access", "permissions", "expires_at",
	"allowed_ips", "allowed_origins", "rate_limit", "rate_window", "max_uses",
	"use_count", "metadata", "status", "masked", "version", "owner_id",
	"scope", "decoy",
}

// jsonColumns are the JSON columns of tokens.
var jsonColumns = map[string]bool{
	"permissions": true, "allowed_ips": true, "allowed_origins": true, "metadata": true, "scope": true,
}

var (
	// credentialColumnsT names credentialCols of the table aliased t, its
	// JSON columns as text: pgx plans a jsonb column's scan anew on every
	// read (an allocation or two), a text column's not at all, and jsonb's
	// text is what the scan decodes either way.
	credentialColumnsT = func() string {
		cols := make([]string, len(credentialCols))
		for k, c := range credentialCols {
			cols[k] = "t." + c
			if jsonColumns[c] {
				cols[k] = "CAST(" + cols[k] + " AS TEXT)"
			}
		}
		return strings.Join(cols, ", ")
	}()
	// credentialIdx are credentialCols' indexes in tokenCols.
	credentialIdx = func() []int {
		idx := make([]int, len(credentialCols))
		for k, c := range credentialCols {
			idx[k] = slices.Index(tokenCols[:], c)
			if idx[k] < 0 {
				panic("sqlstore: credentialCols names no column " + c) // at start, in every test
			}
		}
		return idx
	}()
	tokenColumns = strings.Join(tokenCols[:], ", ")
	// tokenColumnsT names the same columns of the table aliased t.
	tokenColumnsT = "t." + strings.Join(tokenCols[:], ", t.")
	insertToken   = Q(`INSERT INTO tokens (` + tokenColumns + `) VALUES (` + placeholders(len(tokenCols)) + `)`)
	// updateToken binds the same arguments as insertToken: $1 is the id.
	updateToken = Q(func() string {
		set := make([]string, 0, len(tokenCols)-1)
		for i, c := range tokenCols[1:] {
			set = append(set, fmt.Sprintf("%s = $%d", c, i+2))
		}
		return `UPDATE tokens SET ` + strings.Join(set, ", ") + ` WHERE id = $1`
	}())
	tokenByID   = Q(`SELECT ` + tokenColumns + ` FROM tokens WHERE id = $1`)
	tokenExists = Q(`SELECT 1 FROM tokens WHERE id = $1`)
	// liveNameTaken reads tokens_live_name: decoys take no names.
	liveNameTaken = Q(`SELECT 1 FROM tokens WHERE app_id = $1 AND owner_id = $2 AND name = $3 AND status <> 'revoked' AND NOT decoy AND id <> $4`)

	// decoySecrets reads every decoy (through the partial index
	// tokens_decoy, whatever the size of the table) with its current
	// secret, then again with each of its retired secrets, for ScanToken
	// with one extra destination: the retired hash, NULL for the current
	// one. The IN keeps both engines from scanning every retired secret
	// (SQLite would, on a join written plainly, without statistics):
	// they look up the decoys' (index retired_secrets_token).
	decoySecrets = Q(`
		SELECT ` + tokenColumnsT + `, NULL FROM tokens t WHERE t.decoy
		UNION ALL
		SELECT ` + tokenColumnsT + `, r.hash
		FROM retired_secrets r JOIN tokens t ON t.id = r.token_id
		WHERE r.token_id IN (SELECT id FROM tokens WHERE decoy)`)

	// TokenBySecretQuery reads the token whose current or retired secret
	// has the hash $1, its columns of credentialCols only, with its app's
	// catalog and owner rate limit, for scanColumns with four extra
	// destinations: the retired secret's grace end and its app's
	// rotated_secret_policy (both NULL for a current secret), the catalog
	// and the owner rate limit (JSON, JSON). One round trip whatever the
	// secret is: a current secret (a decoy's too) stops the scan at its
	// first branch (LIMIT 1), and an unknown one probes both indexes,
	// microseconds apart inside the database, where two statements made an
	// unknown secret cost a second round trip that a decoy's did not. The
	// PostgreSQL dialect runs it through pgx itself, prepared on each
	// connection: it is the verification cache miss.
	TokenBySecretQuery = Q(`
		SELECT ` + credentialColumnsT + `, NULL, NULL, CAST(a.permissions AS TEXT), CAST(a.owner_rate_limit AS TEXT)
		FROM tokens t JOIN apps a ON a.id = t.app_id
		WHERE t.secret_hash = $1
		UNION ALL
		SELECT ` + credentialColumnsT + `, r.grace_until, a.rotated_secret_policy, CAST(a.permissions AS TEXT), CAST(a.owner_rate_limit AS TEXT)
		FROM retired_secrets r JOIN tokens t ON t.id = r.token_id JOIN apps a ON a.id = t.app_id
		WHERE r.hash = $1
		LIMIT 1`)

	// TakeUseQuery counts one use of token $1 if it has uses left.
	TakeUseQuery = Q(`
		UPDATE tokens SET use_count = use_count + 1
		WHERE id = $1 AND max_uses IS NOT NULL AND use_count < max_uses`)

	endGrace = Q(`
		UPDATE retired_secrets SET grace_until = $2
		WHERE token_id = $1 AND grace_until > $2`)
	insertRetired = Q(`
		INSERT INTO retired_secrets (hash, token_id, retired_at, grace_until)
		VALUES ($1, $2, $3, $4)`)
	// forgetRetired reads index retired_secrets_grace.
	forgetRetired = Q(`DELETE FROM retired_secrets WHERE grace_until < $1`)
	deleteToken   = Q(`DELETE FROM tokens WHERE id = $1 AND ($2 = 0 OR version = $2)`)
	appExists     = Q(`SELECT 1 FROM apps WHERE id = $1`)

	appOwnerLimit = Q(`SELECT max_tokens_per_owner FROM apps WHERE id = $1`)
	// ownerLiveTokens counts an owner's live tokens at $3, decoys aside,
	// reading tokens_live_name (app_id, owner_id, name; status <>
	// 'revoked' AND NOT decoy).
	ownerLiveTokens = Q(`
		SELECT count(*) FROM tokens
		WHERE app_id = $1 AND owner_id = $2 AND status <> 'revoked' AND NOT decoy
		  AND (expires_at IS NULL OR expires_at > $3)`)
)

// placeholders answers "$1, $2, …, $n".
func placeholders(n int) string {
	ph := make([]string, n)
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	return strings.Join(ph, ", ")
}

// appNotFound answers a token whose app does not exist.
func appNotFound(err error) error {
	return &tokend.Error{Code: tokend.ECodeNotFound, Message: "app not found", Cause: err}
}

// NameTaken is the conflict of a token name with another live token of the
// same app and owner. The partial unique index tokens_live_name enforces
// the rule; it leaves decoys out, so that a decoy's name tells its owner
// nothing.
func NameTaken(cause error) error {
	return &tokend.Error{
		Code:    tokend.ECodeConflict,
		Message: "another token of this app (and owner) already has this name",
		Fields:  []tokend.FieldError{{Field: "name", Message: "is taken by another live token of this app (and owner)"}},
		Cause:   cause,
	}
}

// CreateToken relies on the unique indexes: the partial one on live names
// answers a conflict naming the field, even when two instances create the
// same name at once. A token with an owner is first counted against its
// app's max_tokens_per_owner (checkOwnerLimit), in the same transaction.
// A decoy is neither: it takes no name and counts for no limit, so that
// the owner it is planted among cannot tell it is there. Every new token
// is announced (changed): the engines keep a filter of every secret, and
// every decoy's secrets.
func (s *Store) CreateToken(ctx context.Context, t tokend.Token, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		if err := s.checkOwnerLimit(ctx, tx, t); err != nil {
			return err
		}
		if err := s.putToken(ctx, tx, insertToken, "create token", t); err != nil {
			return err
		}
		if err := s.changed(ctx, tx, ChangedToken, t.ID); err != nil {
			return err
		}
		return s.InsertEvent(ctx, tx, ev)
	})
}

// checkOwnerLimit refuses t when its owner already holds its app's
// max_tokens_per_owner live tokens (not revoked, not expired at
// t.CreatedAt). The app's row is read locked (FOR NO KEY UPDATE on
// PostgreSQL, which the foreign key checks of other inserts do not wait
// for; SQLite's write lock is held already), so that concurrent creates
// for owners of the app, on any instance, count one after the other and
// never exceed the limit. Decoys count for nothing, theirs included.
func (s *Store) checkOwnerLimit(ctx context.Context, tx *sql.Tx, t tokend.Token) error {
	if t.OwnerID == "" || t.Decoy {
		return nil
	}
	var max NullInt64
	if err := tx.QueryRowContext(ctx, s.sql(appOwnerLimit)+s.f.ForNoKeyUpdate, t.AppID).Scan(&max); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return appNotFound(err)
		}
		return s.Err("count owner tokens", err)
	}
	if !max.Valid {
		return nil
	}
	var n int64
	if err := tx.QueryRowContext(ctx, s.sql(ownerLiveTokens), t.AppID, t.OwnerID, s.time(t.CreatedAt)).Scan(&n); err != nil {
		return s.Err("count owner tokens", err)
	}
	if n >= max.Int64 {
		return tokend.ErrOwnerLimit(int(max.Int64))
	}
	return nil
}

// putToken writes t with q (insertToken or updateToken, which bind the same
// arguments), after checkLiveName.
func (s *Store) putToken(ctx context.Context, tx *sql.Tx, q Query, op string, t tokend.Token) error {
	if err := s.checkLiveName(ctx, tx, t); err != nil {
		return err
	}
	args, err := s.tokenArgs(t)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.sql(q), args...); err != nil {
		if s.f.ForeignKey(err) {
			return appNotFound(err)
		}
		return s.Err(op, err)
	}
	return nil
}

// checkLiveName answers a conflict that names the field when another live
// token of t's app has t's name. The partial unique index enforces the rule
// anyway; asking first only gives the caller a better answer than
// "conflict" where the database names no index in its error (CheckUnique).
// A decoy's name is never taken, nor takes one.
func (s *Store) checkLiveName(ctx context.Context, tx *sql.Tx, t tokend.Token) error {
	if !s.f.CheckUnique || t.Status == tokend.StatusRevoked || t.Decoy {
		return nil
	}
	var one int
	err := tx.QueryRowContext(ctx, s.sql(liveNameTaken), t.AppID, t.OwnerID, t.Name, t.ID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return s.Err("check token name", err)
	}
	return NameTaken(nil)
}

func (s *Store) Token(ctx context.Context, id string) (tokend.Token, error) {
	return s.ScanToken(s.r.QueryRowContext(ctx, s.sql(tokenByID), id))
}

func (s *Store) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	return s.CredentialBySecret(s.r.QueryRowContext(ctx, s.sql(TokenBySecretQuery), hash))
}

// CredentialBySecret answers the credential read by row, TokenBySecretQuery
// run for the hash (through database/sql, or a dialect's own driver on the
// verification hot path). The app's catalog comes in the same read: it is
// the ceiling of what the token is granted at verification; so does, for a
// secret replaced by rotation, its grace and its app's policy.
func (s *Store) CredentialBySecret(row Row) (tokend.Credential, error) {
	r := new(credentialScan)
	t, err := s.scanInto(row, &r.tokenScan, credentialIdx, &r.grace, &r.policy, &r.catalog, &r.ownerLimit)
	if err != nil {
		return tokend.Credential{}, err
	}
	c := tokend.Credential{Token: t, Catalog: r.catalog.v}
	j := jsonCodec{err: r.catalog.err}
	if r.ownerLimit != nil {
		c.OwnerRateLimit = decode[*tokend.RateLimit](&j, r.ownerLimit)
	}
	if j.err != nil {
		return tokend.Credential{}, s.internal("app "+t.AppID, j.err)
	}
	if r.grace.Valid { // a retired secret: its grace_until is never NULL
		c.Retired, c.GraceUntil = true, r.grace.Time
		c.RotatedSecretPolicy = rotatedSecretPolicy(tokend.RotatedSecretPolicy(r.policy))
	}
	return c, nil
}

// DecoySecrets is one read (decoySecrets).
func (s *Store) DecoySecrets(ctx context.Context) ([]tokend.DecoySecret, error) {
	return list(ctx, s, s.r, "read decoy secrets", s.sql(decoySecrets), nil, func(r Row) (tokend.DecoySecret, error) {
		var retired []byte
		t, err := s.ScanToken(r, &retired)
		if retired == nil {
			retired = t.SecretHash
		}
		return tokend.DecoySecret{Hash: retired, Token: t}, err
	})
}

var (
	// allSecrets is every hash TokenBySecretQuery can match, in no order;
	// secretCount counts them.
	allSecrets  = Q(`SELECT secret_hash FROM tokens UNION ALL SELECT hash FROM retired_secrets`)
	secretCount = Q(`SELECT (SELECT count(*) FROM tokens) + (SELECT count(*) FROM retired_secrets)`)
)

// SecretHashes streams the rows of one statement: allSecrets, or the same
// for the tokens named (their ids bound once, each placeholder standing in
// both branches). A row's hash is handed to fn without a copy.
func (s *Store) SecretHashes(ctx context.Context, tokenIDs []string, fn func(hash []byte)) error {
	q, args := s.sql(allSecrets), []any(nil)
	if len(tokenIDs) > 0 {
		ph := placeholders(len(tokenIDs))
		q = s.rebind(`SELECT secret_hash FROM tokens WHERE id IN (` + ph + `)
			UNION ALL SELECT hash FROM retired_secrets WHERE token_id IN (` + ph + `)`)
		args = make([]any, len(tokenIDs))
		for i, id := range tokenIDs {
			args[i] = id
		}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return s.Err("read secret hashes", err)
	}
	defer rows.Close()
	var h sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&h); err != nil {
			return s.Err("read secret hashes", err)
		}
		fn(h)
	}
	return s.Err("read secret hashes", rows.Err())
}

// CountSecrets is one read (secretCount).
func (s *Store) CountSecrets(ctx context.Context) (int, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, s.sql(secretCount)).Scan(&n)
	return int(n), s.Err("count secret hashes", err)
}

// ForgetRetiredSecrets is one DELETE: instances that run it at once delete
// each row once between them, and a row deleted already is no error.
func (s *Store) ForgetRetiredSecrets(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, s.sql(forgetRetired), s.time(before))
	n, err := s.affected(res, err, "forget retired secrets")
	return int(n), err
}

// credential is t granted at most its app's catalog, with its app's owner
// rate limit (NULL: none), as read by TokenBySecretQuery.

// tokenWhere adds the conditions of the tokens f selects, its cursor
// aside.
func (s *Store) tokenWhere(w *where, f tokend.TokenFilter) error {
	now := f.Now
	if now.IsZero() {
		// A caller that forgot Now still gets today's answer, not one in
		// which nothing has ever expired.
		now = time.Now()
	}
	if f.AppID != "" {
		w.add("app_id = ?", f.AppID)
	}
	if f.OwnerID != "" {
		w.add("owner_id = ?", f.OwnerID)
	}
	if f.ProductOnly {
		w.add("app_id <> ?", tokend.SystemAppID)
	}
	// Decoys are always listed apart: never among the other tokens, nor
	// the other way round.
	w.add("decoy = ?", f.Decoy)
	scopeTokens(w, f.Scope)
	if f.Type != "" {
		w.add("type = ?", string(f.Type))
	}
	if f.Query != "" {
		// The name ignores case (SQLite's LIKE for ASCII letters only); =
		// and the last four characters keep it, as ids and secrets do.
		cond, args := "name "+s.f.ILike+` ? ESCAPE '\'`, []any{likeContains(f.Query)}
		id, last4 := tokend.SearchTerms(f.Query)
		if id != "" {
			cond, args = cond+" OR id = ?", append(args, id)
		}
		if last4 != "" {
			cond, args = cond+" OR "+s.f.Last4+" = ?", append(args, last4)
		}
		w.add("("+cond+")", args...)
	}
	if !f.ExpiresBefore.IsZero() {
		w.add("expires_at < ?", s.time(f.ExpiresBefore))
	}
	if f.UnusedFor > 0 {
		// Spelled as tokens_status_activity indexes it; without a status
		// every status is named, so that the index still applies.
		if f.Status == "" {
			w.add("status IN ('active', 'disabled', 'revoked')")
		}
		w.add("coalesce(last_used_at, created_at) <= ?", s.time(now.Add(-time.Duration(f.UnusedFor))))
	}
	if f.Status != "" {
		switch f.Status {
		case tokend.StatusActive, tokend.StatusDisabled:
			w.add("status = ? AND (expires_at IS NULL OR expires_at > ?)", string(f.Status), s.time(now))
		case tokend.StatusRevoked:
			w.add("status = 'revoked'")
		case tokend.StatusExpired:
			w.add("status <> 'revoked' AND expires_at <= ?", s.time(now))
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
// last in either order. Names sort by byte, whatever the database's locale.
func (s *Store) tokenOrder(w *where, sort string, desc bool, key *tokend.TokenKey) string {
	col, nullable := "created_at", false
	switch sort {
	case tokend.TokenSortName:
		col = "name" + s.f.ByteOrder
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
		v = s.time(key.Time)
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
	var w where
	if err := s.tokenWhere(&w, f); err != nil {
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
	order := s.tokenOrder(&w, sort, desc, key)
	limit := pageLimit(f.Limit)
	// One more tells whether a next page exists.
	q := `SELECT ` + tokenColumns + ` FROM tokens` + w.clause() +
		` ORDER BY ` + order + ` LIMIT ` + w.arg(limit+1)
	items, err := list(ctx, s, s.r, "list tokens", s.rebind(q), s.listArgs(w.args), s.scanToken)
	if err != nil {
		return tokend.Page[tokend.Token]{}, err
	}
	return page(items, limit, func(last tokend.Token) string { return tokend.TokenCursor(sort, desc, last) }), nil
}

// CountTokens counts what Tokens lists over all its pages.
func (s *Store) CountTokens(ctx context.Context, f tokend.TokenFilter) (int, error) {
	var w where
	if err := s.tokenWhere(&w, f); err != nil {
		return 0, err
	}
	var n int
	if err := s.r.QueryRowContext(ctx, s.rebind(`SELECT count(*) FROM tokens`+w.clause()), s.listArgs(w.args)...).Scan(&n); err != nil {
		return 0, s.Err("count tokens", err)
	}
	return n, nil
}

// UpdateToken locks the row it reads (SELECT … FOR UPDATE on PostgreSQL;
// on SQLite the write transaction holds the write lock from its first
// read), so an update by another instance or process waits for this one to
// commit and then reads its result.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(t *tokend.Token) (tokend.Event, error)) (tokend.Token, error) {
	var t tokend.Token
	err := s.Write(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = s.ScanToken(tx.QueryRowContext(ctx, s.sql(tokenByID)+s.f.ForUpdate, id))
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
		if err := s.putToken(ctx, tx, updateToken, "update token", t); err != nil {
			return err
		}
		if !bytes.Equal(oldHash, t.SecretHash) {
			if err := s.retireSecret(ctx, tx, t, oldHash); err != nil {
				return err
			}
		}
		if err := s.changed(ctx, tx, ChangedToken, id); err != nil {
			return err
		}
		return s.InsertEvent(ctx, tx, ev)
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
func (s *Store) retireSecret(ctx context.Context, tx *sql.Tx, t tokend.Token, hash []byte) error {
	retired := t.UpdatedAt // the service stamps the rotation time here
	if retired.IsZero() {
		retired = time.Now()
	}
	grace := retired
	if t.PreviousSecretExpiresAt != nil {
		grace = *t.PreviousSecretExpiresAt
	}
	if _, err := tx.ExecContext(ctx, s.sql(endGrace), t.ID, s.time(retired)); err != nil {
		return s.Err("retire secret", err)
	}
	_, err := tx.ExecContext(ctx, s.sql(insertRetired), hash, t.ID, s.time(retired), s.time(grace))
	return s.Err("retire secret", err)
}

// DeleteToken deletes the token; its retired secrets and usage go by ON
// DELETE CASCADE. Its events stay: the audit log outlives what it is about.
func (s *Store) DeleteToken(ctx context.Context, id string, version int64, ev tokend.Event) error {
	return s.deleteVersioned(ctx, "delete token", deleteToken, tokenExists, ChangedToken, id, version, ev)
}

// deleteVersioned runs del, a delete of the row id at version (0: any),
// announces it as a change of kind, and appends ev; a row there at another
// version is ErrStale (exists reads it).
func (s *Store) deleteVersioned(ctx context.Context, op string, del, exists Query, kind, id string, version int64, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.sql(del), id, version)
		if err := s.affectedOne(res, err, op); err != nil {
			return s.staleIfExists(ctx, tx, exists, id, err)
		}
		if err := s.changed(ctx, tx, kind, id); err != nil {
			return err
		}
		return s.InsertEvent(ctx, tx, ev)
	})
}

func (s *Store) RevokeAppTokens(ctx context.Context, appID string, at time.Time, ev tokend.Event) (int, error) {
	return s.revokeTokens(ctx, "revoke app tokens", appID, "", at, ev)
}

// RevokeOwnerTokens is RevokeAppTokens for the tokens of one owner of the
// app.
func (s *Store) RevokeOwnerTokens(ctx context.Context, appID, ownerID string, at time.Time, ev tokend.Event) (int, error) {
	if ownerID == "" {
		// "" is "no owner", not an owner: never revoke all of those.
		return 0, tokend.ErrNotFound
	}
	return s.revokeTokens(ctx, "revoke owner tokens", appID, ownerID, at, ev)
}

// revokeTokens revokes the live tokens of the app, or of one owner of it
// (ownerID not ""), records ev with the count in its details and in the
// data of each of its notices, and tells verification caches of the whole
// app.
func (s *Store) revokeTokens(ctx context.Context, op, appID, ownerID string, at time.Time, ev tokend.Event) (int, error) {
	var n int64
	err := s.Write(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, s.sql(appExists), appID).Scan(&one); err != nil {
			return s.Err(op, err)
		}
		var w where
		when := w.arg(s.time(at))
		w.add("app_id = ?", appID)
		if ownerID != "" {
			// An owner's decoys stay planted and uncounted: the owner
			// (the portal's revoke-all) must not learn of them from the
			// count.
			w.add("owner_id = ?", ownerID)
			w.add("NOT decoy")
		}
		w.add("status <> 'revoked'")
		// The rows are locked in id order, the order RecordUsage locks
		// them in, so that a flush running meanwhile waits instead of
		// deadlocking with this revocation.
		rows, err := tx.QueryContext(ctx, s.rebind(`
			UPDATE tokens
			SET status = 'revoked', revoked_at = `+when+`, updated_at = `+when+`, version = version + 1
			WHERE id IN (
				SELECT id FROM tokens`+w.clause()+`
				ORDER BY id`+s.f.ForNoKeyUpdate+`)
			RETURNING id`),
			w.args...)
		if err != nil {
			return s.Err(op, err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return s.Err(op, err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return s.Err(op, err)
		}
		if err := rows.Err(); err != nil {
			return s.Err(op, err)
		}
		n = int64(len(ids))
		if err := s.changed(ctx, tx, ChangedApp, appID); err != nil {
			return err
		}
		// The caller's map is theirs; the count goes into a copy.
		d := maps.Clone(ev.Details)
		if d == nil {
			d = map[string]any{}
		}
		d["count"] = n
		ev.Details = d
		// So does the count of each notice (app.tokens_revoked...). A
		// revocation that revoked nothing is audited, but raises no
		// event: nothing changed.
		var notices []tokend.Notice
		for _, no := range ev.Notices {
			if n == 0 {
				break
			}
			no.Data = maps.Clone(no.Data)
			if no.Data == nil {
				no.Data = map[string]any{}
			}
			no.Data["count"] = n
			notices = append(notices, no)
		}
		ev.Notices = notices
		if err := s.eachTokenNotices(ctx, tx, ev, ids); err != nil {
			return err
		}
		return s.InsertEvent(ctx, tx, ev)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// eachTokenNotices writes the notices ev.EachToken gives for each token of
// ids, read as stored now, with its id, in tx: a bulk change raises the
// event of each token it changed (token.revoked for each token of a
// revoke-all) along with its own.
func (s *Store) eachTokenNotices(ctx context.Context, tx *sql.Tx, ev tokend.Event, ids []string) error {
	if ev.EachToken == nil {
		return nil
	}
	const chunk = 500
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		var w where
		q := s.rebind(`SELECT ` + tokenColumns + ` FROM tokens WHERE id IN (` + w.in(part) + `) ORDER BY id`)
		tokens, err := list(ctx, s, tx, "read revoked tokens", q, w.args, s.scanToken)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			one := ev
			one.TokenID, one.Notices = t.ID, ev.EachToken(t)
			if err := s.insertNotices(ctx, tx, one); err != nil {
				return err
			}
		}
	}
	return nil
}

// TakeUse counts one use of a token with max_uses in one conditional UPDATE,
// committed on its own (see each dialect for why that is exact and
// durable there).
func (s *Store) TakeUse(ctx context.Context, tokenID string) (bool, error) {
	res, err := s.w.ExecContext(ctx, s.sql(TakeUseQuery), tokenID)
	n, err := s.affected(res, err, "take use")
	return n == 1, err
}

// tokenArgs lists t's columns in the order of tokenCols.
func (s *Store) tokenArgs(t tokend.Token) ([]any, error) {
	var j jsonCodec
	perms, ips := j.encode(t.Permissions), j.encode(t.AllowedIPs)
	origins, meta := j.encode(t.AllowedOrigins), j.encode(t.Metadata)
	var scope any // NULL: unscoped
	if t.Scope != nil {
		scope = j.encode(t.Scope)
	}
	if j.err != nil {
		return nil, s.internal("token "+t.ID, j.err)
	}
	var limit, window any
	if t.RateLimit != nil {
		limit, window = int64(t.RateLimit.Limit), int64(t.RateLimit.Window)
	}
	return []any{
		t.ID, t.AppID, t.Name, t.Description, string(t.Type), string(t.Access), perms,
		s.nullTime(t.ExpiresAt), ips, origins, limit, window,
		nullInt64(t.MaxUses), t.UseCount, meta, string(t.Status), t.Masked, s.time(t.CreatedAt),
		t.CreatedBy, s.time(t.UpdatedAt), s.nullTime(t.LastUsedAt), t.LastUsedIP, s.nullTime(t.RevokedAt),
		s.nullTime(t.PreviousSecretExpiresAt), t.Version, t.SecretHash, t.OwnerID,
		t.OwnerName, scope, t.Decoy,
	}, nil
}

func (s *Store) scanToken(sc Row) (tokend.Token, error) { return s.ScanToken(sc) }

// ScanToken reads the columns of tokenCols, then any extra ones into extra.
func (s *Store) ScanToken(sc Row, extra ...any) (tokend.Token, error) {
	return s.scanColumns(sc, nil, extra...)
}

// scanColumns reads the columns of tokenCols at the indexes cols (all of
// them, in order, for nil), then any extra ones into extra; the fields of
// the columns not read stay zero.
func (s *Store) scanColumns(sc Row, cols []int, extra ...any) (tokend.Token, error) {
	return s.scanInto(sc, new(tokenScan), cols, extra...)
}

// scanInto is scanColumns into r's destinations.
func (s *Store) scanInto(sc Row, r *tokenScan, cols []int, extra ...any) (tokend.Token, error) {
	t := &r.t
	all := [len(tokenCols)]any{
		&t.ID, &t.AppID, &t.Name, &t.Description, &r.typ, &r.access, &r.perms,
		&r.expires, &r.ips, &r.origins, &r.limit, &r.window,
		&r.maxUses, &t.UseCount, &r.meta, &r.status, &t.Masked, &r.created,
		&t.CreatedBy, &r.updated, &r.lastUsed, &t.LastUsedIP, &r.revoked,
		&r.prevEx, &t.Version, &t.SecretHash, &t.OwnerID,
		&t.OwnerName, &r.scope, &t.Decoy,
	}
	dest := r.dest[:0]
	if cols == nil {
		dest = append(dest, all[:]...)
	} else {
		for _, i := range cols {
			dest = append(dest, all[i])
		}
	}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return tokend.Token{}, s.Err("read token", err)
	}
	t.Type, t.Access, t.Status = tokend.TokenType(r.typ), tokend.Access(r.access), tokend.Status(r.status)
	t.ExpiresAt, t.LastUsedAt = r.expires.Ptr(), r.lastUsed.Ptr()
	t.RevokedAt, t.PreviousSecretExpiresAt = r.revoked.Ptr(), r.prevEx.Ptr()
	t.CreatedAt, t.UpdatedAt = r.created.Time, r.updated.Time
	t.MaxUses = r.maxUses.Ptr()
	if r.limit.Valid {
		t.RateLimit = &tokend.RateLimit{Limit: int(r.limit.Int64), Window: tokend.Duration(r.window.Int64)}
	}
	t.Permissions, t.AllowedIPs, t.AllowedOrigins = r.perms.v, r.ips.v, r.origins.v
	j := jsonCodec{err: cmp.Or(r.perms.err, r.ips.err, r.origins.err)}
	t.Metadata = decodeObject(&j, r.meta)
	if r.scope != nil { // NULL: unscoped
		t.Scope = decode[*tokend.AdminScope](&j, r.scope)
	}
	if j.err != nil {
		return tokend.Token{}, s.internal("token "+t.ID, j.err)
	}
	return *t, nil
}
