package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend"
)

const appColumns = `id, name, token_prefix, permissions, max_token_lifetime, system, created_at, updated_at, version, disable_unused_after`

func (s *Store) CreateApp(ctx context.Context, a tokend.App, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		args, err := appArgs(a)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO apps (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
			return storeErr("create app", err)
		}
		return insertEvent(ctx, tx, ev)
	})
}

func (s *Store) App(ctx context.Context, id string) (tokend.App, error) {
	return scanApp(s.r.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE id = ?`, id))
}

// Apps lists apps oldest first, keyed by (created_at, id).
func (s *Store) Apps(ctx context.Context, f tokend.AppFilter) (tokend.Page[tokend.App], error) {
	q := `SELECT ` + appColumns + ` FROM apps`
	var args []any
	if f.Cursor != "" {
		at, id, err := parseTimeCursor(kindApp, f.Cursor)
		if err != nil {
			return tokend.Page[tokend.App]{}, err
		}
		q += ` WHERE (created_at, id) > (?, ?)`
		args = append(args, at, id)
	}
	limit := pageLimit(f.Limit)
	q += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, limit+1)

	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return tokend.Page[tokend.App]{}, storeErr("list apps", err)
	}
	defer rows.Close()
	page := tokend.Page[tokend.App]{Items: []tokend.App{}}
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return tokend.Page[tokend.App]{}, err
		}
		page.Items = append(page.Items, a)
	}
	if err := rows.Err(); err != nil {
		return tokend.Page[tokend.App]{}, storeErr("list apps", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = timeCursor(kindApp, last.CreatedAt, last.ID)
	}
	return page, nil
}

func (s *Store) UpdateApp(ctx context.Context, id string, fn func(a *tokend.App) (tokend.Event, error)) (tokend.App, error) {
	var a tokend.App
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE id = ?`, id))
		if err != nil {
			return err
		}
		version := a.Version
		ev, err := fn(&a)
		if err != nil {
			return err
		}
		// The id is the row's identity, and the version is the store's to
		// keep; whatever fn did to them is undone.
		a.ID, a.Version = id, version+1
		args, err := appArgs(a)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE apps
			SET name = ?2, token_prefix = ?3, permissions = ?4, max_token_lifetime = ?5,
			    system = ?6, created_at = ?7, updated_at = ?8, version = ?9,
			    disable_unused_after = ?10
			WHERE id = ?1`, args...)
		if err != nil {
			return storeErr("update app", err)
		}
		return insertEvent(ctx, tx, ev)
	})
	if err != nil {
		return tokend.App{}, err
	}
	return a, nil
}

// DeleteApp deletes the app; its tokens, and with them their retired secrets
// and usage, go by ON DELETE CASCADE. Events stay.
func (s *Store) DeleteApp(ctx context.Context, id string, version int64, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE id = ?1 AND (?2 = 0 OR version = ?2)`, id, version)
		if err := affectedOne(res, err, "delete app"); err != nil {
			return staleIfExists(ctx, tx, `SELECT 1 FROM apps WHERE id = ?`, id, err)
		}
		return insertEvent(ctx, tx, ev)
	})
}

// affectedOne turns "no row matched" into ErrNotFound.
func affectedOne(res sql.Result, err error, op string) error {
	if err != nil {
		return storeErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return storeErr(op, err)
	}
	if n == 0 {
		return tokend.ErrNotFound
	}
	return nil
}

// appArgs lists a's columns in the order of appColumns.
func appArgs(a tokend.App) ([]any, error) {
	perms, err := toJSON(a.Permissions)
	if err != nil {
		return nil, tokend.Internal(fmt.Errorf("sqlite: app permissions: %w", err))
	}
	var lifetime, unused any
	if a.MaxTokenLifetime != nil {
		lifetime = int64(*a.MaxTokenLifetime)
	}
	if a.DisableUnusedAfter != nil {
		unused = int64(*a.DisableUnusedAfter)
	}
	return []any{
		a.ID, a.Name, a.TokenPrefix, perms, lifetime, a.System,
		micros(a.CreatedAt), micros(a.UpdatedAt), a.Version, unused,
	}, nil
}

func scanApp(sc scanner) (tokend.App, error) {
	var (
		a                tokend.App
		perms            string
		lifetime, unused sql.NullInt64
		created, updated int64
	)
	err := sc.Scan(&a.ID, &a.Name, &a.TokenPrefix, &perms, &lifetime, &a.System, &created, &updated, &a.Version, &unused)
	if err != nil {
		return tokend.App{}, storeErr("read app", err)
	}
	if a.Permissions, err = fromJSON[[]string](perms); err != nil {
		return tokend.App{}, tokend.Internal(fmt.Errorf("sqlite: app %s: %w", a.ID, err))
	}
	if lifetime.Valid {
		d := tokend.Duration(time.Duration(lifetime.Int64))
		a.MaxTokenLifetime = &d
	}
	if unused.Valid {
		d := tokend.Duration(time.Duration(unused.Int64))
		a.DisableUnusedAfter = &d
	}
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return a, nil
}

// staleIfExists answers, for a conditional delete that matched no row,
// ErrStale when the row is there (its version is not the one expected) and
// err (ErrNotFound, or a failure) when it is not.
func staleIfExists(ctx context.Context, tx *sql.Tx, query, id string, err error) error {
	if !errors.Is(err, tokend.ErrNotFound) {
		return err
	}
	var one int
	switch e := tx.QueryRowContext(ctx, query, id).Scan(&one); {
	case e == nil:
		return tokend.ErrStale
	case errors.Is(e, sql.ErrNoRows):
		return tokend.ErrNotFound
	default:
		return storeErr("delete", e)
	}
}
