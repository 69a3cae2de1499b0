package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/tokend/tokend"
)

const appColumns = `id, name, token_prefix, permissions, max_token_lifetime, system, created_at, updated_at, version, disable_unused_after, max_tokens_per_owner, owner_rate_limit, portal, expiry_notice, leak_policy, rotated_secret_policy`

var (
	insertApp = Q(`INSERT INTO apps (` + appColumns + `) VALUES (` + placeholders(16) + `)`)
	appByID   = Q(`SELECT ` + appColumns + ` FROM apps WHERE id = $1`)
	// otherAppNames lists the names of the apps but one, for checkAppName
	// to compare by nameKey (neither SQLite's lower() nor a collation
	// folds what nameKey does).
	otherAppNames = Q(`SELECT id, name FROM apps WHERE id <> $1 ORDER BY id`)
	updateApp     = Q(`
		UPDATE apps
		SET name = $2, token_prefix = $3, permissions = $4, max_token_lifetime = $5,
		    system = $6, created_at = $7, updated_at = $8, version = $9,
		    disable_unused_after = $10, max_tokens_per_owner = $11, owner_rate_limit = $12,
		    portal = $13, expiry_notice = $14, leak_policy = $15,
		    rotated_secret_policy = $16
		WHERE id = $1`)
	deleteApp = Q(`DELETE FROM apps WHERE id = $1 AND ($2 = 0 OR version = $2)`)
)

func (s *Store) CreateApp(ctx context.Context, a tokend.App, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		if err := s.checkAppName(ctx, tx, a); err != nil {
			return err
		}
		args, err := s.appArgs(a)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.sql(insertApp), args...); err != nil {
			return s.Err("create app", err)
		}
		return s.InsertEvent(ctx, tx, ev)
	})
}

func (s *Store) App(ctx context.Context, id string) (tokend.App, error) {
	return s.scanApp(s.r.QueryRowContext(ctx, s.sql(appByID), id))
}

// Apps lists apps oldest first, keyed by (created_at, id).
func (s *Store) Apps(ctx context.Context, f tokend.AppFilter) (tokend.Page[tokend.App], error) {
	var w where
	scopeApps(&w, f.Scope)
	if f.Cursor != "" {
		at, id, err := tokend.ParseTimeCursor(tokend.CursorApps, f.Cursor)
		if err != nil {
			return tokend.Page[tokend.App]{}, err
		}
		w.add(`(created_at, id) > (?, ?)`, s.time(at), id)
	}
	limit := pageLimit(f.Limit)
	q := `SELECT ` + appColumns + ` FROM apps` + w.clause() + ` ORDER BY created_at, id LIMIT ` + w.arg(limit+1)
	items, err := list(ctx, s, s.r, "list apps", s.rebind(q), w.args, s.scanApp)
	if err != nil {
		return tokend.Page[tokend.App]{}, err
	}
	return page(items, limit, func(last tokend.App) string {
		return tokend.TimeCursor(tokend.CursorApps, last.CreatedAt, last.ID)
	}), nil
}

// UpdateApp locks the row it reads, as UpdateToken does.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(a *tokend.App) (tokend.Event, error)) (tokend.App, error) {
	var a tokend.App
	err := s.Write(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.scanApp(tx.QueryRowContext(ctx, s.sql(appByID)+s.f.ForUpdate, id))
		if err != nil {
			return err
		}
		version, name := a.Version, a.Name
		ev, err := fn(&a)
		if err != nil {
			return err
		}
		// The id is the row's identity, and the version is the store's to
		// keep; whatever fn did to them is undone.
		a.ID, a.Version = id, version+1
		if !strings.EqualFold(a.Name, name) {
			if err := s.checkAppName(ctx, tx, a); err != nil {
				return err
			}
		}
		args, err := s.appArgs(a)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.sql(updateApp), args...); err != nil {
			return s.Err("update app", err)
		}
		if err := s.changed(ctx, tx, ChangedApp, id); err != nil {
			return err
		}
		return s.InsertEvent(ctx, tx, ev)
	})
	if err != nil {
		return tokend.App{}, err
	}
	return a, nil
}

// checkAppName refuses a's name when another app has it already (see
// tokend.ErrAppNameTaken). Apps that shared a name before this rule keep
// it; only a create or a rename to a taken name is refused.
func (s *Store) checkAppName(ctx context.Context, tx *sql.Tx, a tokend.App) error {
	if s.f.LockAppNames != "" {
		if _, err := tx.ExecContext(ctx, s.f.LockAppNames); err != nil {
			return s.Err("lock app names", err)
		}
	}
	rows, err := tx.QueryContext(ctx, s.sql(otherAppNames), a.ID)
	if err != nil {
		return s.Err("list app names", err)
	}
	defer rows.Close()
	key, other := nameKey(a.Name), ""
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return s.Err("list app names", err)
		}
		if nameKey(name) == key {
			other = id
			break
		}
	}
	if err := rows.Err(); err != nil {
		return s.Err("list app names", err)
	}
	if other == "" {
		return nil
	}
	return tokend.ErrAppNameTaken(a.Name, other)
}

// nameKey is what two app names that read as one on a screen share: the
// name in Unicode's compatibility composition (NFKC: a decomposed accent
// composed, full-width letters as ASCII), with every letter's case folded,
// spaces around it dropped and runs of spaces inside made one. Letters of
// different scripts that look alike (Latin o, Cyrillic о) stay apart.
func nameKey(name string) string {
	var b strings.Builder
	space := false
	for _, r := range norm.NFKC.String(name) {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune is the smallest rune of r's simple case-folding orbit (s, S and
// ſ all give S), so runes equal under folding give one rune.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// DeleteApp deletes the app; its tokens, and with them their retired secrets
// and usage, go by ON DELETE CASCADE. Events stay.
func (s *Store) DeleteApp(ctx context.Context, id string, version int64, ev tokend.Event) error {
	return s.deleteVersioned(ctx, "delete app", deleteApp, appExists, ChangedApp, id, version, ev)
}

// appArgs lists a's columns in the order of appColumns.
func (s *Store) appArgs(a tokend.App) ([]any, error) {
	var j jsonCodec
	perms := j.encode(a.Permissions)
	var maxOwner, ownerLimit, portal any // NULL: none
	if a.MaxTokensPerOwner != nil {
		maxOwner = int64(*a.MaxTokensPerOwner)
	}
	if a.OwnerRateLimit != nil {
		ownerLimit = j.encode(a.OwnerRateLimit)
	}
	if a.Portal != nil {
		portal = j.encode(a.Portal)
	}
	if j.err != nil {
		return nil, s.internal("app "+a.ID, j.err)
	}
	return []any{
		a.ID, a.Name, a.TokenPrefix, perms, nullDuration(a.MaxTokenLifetime), a.System,
		s.time(a.CreatedAt), s.time(a.UpdatedAt), a.Version, nullDuration(a.DisableUnusedAfter),
		maxOwner, ownerLimit, portal, nullDuration(a.ExpiryNotice), string(leakPolicy(a.LeakPolicy)),
		string(rotatedSecretPolicy(a.RotatedSecretPolicy)),
	}, nil
}

func (s *Store) scanApp(sc Row) (tokend.App, error) {
	var (
		a                          tokend.App
		perms, ownerLimit, portal  JSON
		lifetime, unused, maxOwner NullInt64
		notice                     NullInt64
		created, updated           Time
	)
	err := sc.Scan(&a.ID, &a.Name, &a.TokenPrefix, &perms, &lifetime, &a.System, &created, &updated, &a.Version, &unused, &maxOwner, &ownerLimit, &portal, &notice, &a.LeakPolicy, &a.RotatedSecretPolicy)
	if err != nil {
		return tokend.App{}, s.Err("read app", err)
	}
	var j jsonCodec
	a.Permissions = decode[[]string](&j, perms)
	if ownerLimit != nil { // NULL: none
		a.OwnerRateLimit = decode[*tokend.RateLimit](&j, ownerLimit)
	}
	if portal != nil {
		a.Portal = decode[*tokend.AppPortal](&j, portal)
	}
	if j.err != nil {
		return tokend.App{}, s.internal("app "+a.ID, j.err)
	}
	if maxOwner.Valid {
		n := int(maxOwner.Int64)
		a.MaxTokensPerOwner = &n
	}
	a.MaxTokenLifetime, a.DisableUnusedAfter = fromNullDuration(lifetime), fromNullDuration(unused)
	a.ExpiryNotice = fromNullDuration(notice)
	a.CreatedAt, a.UpdatedAt = created.Time, updated.Time
	return a, nil
}

// leakPolicy is p, or the default policy when p is unset.
func leakPolicy(p tokend.LeakPolicy) tokend.LeakPolicy {
	if p == "" {
		return tokend.LeakRevoke
	}
	return p
}

// rotatedSecretPolicy is p, or the default policy when p is unset.
func rotatedSecretPolicy(p tokend.RotatedSecretPolicy) tokend.RotatedSecretPolicy {
	if p == "" {
		return tokend.RotatedNotify
	}
	return p
}
