package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokend/tokend"
)

var _ tokend.UserStore = (*Store)(nil)

const userColumns = `id, email, name, role, password_hash, disabled, created_at, updated_at, last_login_at, version`

// emailIndex is the unique index on lower(email) (see the migration); a
// violation of it is a conflict on the email field.
const emailIndex = "users_email"

// CreateFirstUser stores u only while the users table is empty. The table
// lock (EXCLUSIVE: it still lets others read, but no one else insert or
// lock rows) is held to the end of the transaction, so of several callers,
// on any instance, the first inserts and the others, which read the table
// only once they hold the lock, see its user.
func (s *Store) CreateFirstUser(ctx context.Context, u tokend.User, ev tokend.Event) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE users IN EXCLUSIVE MODE`); err != nil {
			return storeErr("lock users", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&exists); err != nil {
			return storeErr("count users", err)
		}
		if exists {
			return tokend.Errorf(tokend.ECodeConflict, "a user exists already")
		}
		return insertUser(ctx, tx, u, ev)
	})
}

func (s *Store) CreateUser(ctx context.Context, u tokend.User, ev tokend.Event) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		return insertUser(ctx, tx, u, ev)
	})
}

func insertUser(ctx context.Context, tx pgx.Tx, u tokend.User, ev tokend.Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, userArgs(u)...)
	if err != nil {
		return userErr("create user", err)
	}
	return insertEvent(ctx, tx, ev)
}

// userErr is storeErr that names the email field in a conflict on it, as
// the SQLite store does.
func userErr(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == sqlUniqueViolation && pe.ConstraintName == emailIndex {
		return &tokend.Error{
			Code:    tokend.ECodeConflict,
			Message: "another user has this email address",
			Fields:  []tokend.FieldError{{Field: "email", Message: "is taken by another user"}},
			Cause:   storeErr(op, err),
		}
	}
	return storeErr(op, err)
}

func (s *Store) User(ctx context.Context, id string) (tokend.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

func (s *Store) UserByEmail(ctx context.Context, email string) (tokend.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email))
}

func (s *Store) Users(ctx context.Context) ([]tokend.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, storeErr("list users", err)
	}
	return collectUsers(rows)
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, storeErr("count users", err)
}

// UpdateUser locks every user row (SELECT … FOR UPDATE) before fn sees
// them, so the rules fn checks against all users (the last owner stays
// one) hold against a concurrent change on any instance: that one waits,
// then reads this one's result.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *tokend.User, all []tokend.User) (tokend.Event, error)) (tokend.User, error) {
	var u tokend.User
	err := s.write(ctx, func(tx pgx.Tx) error {
		var all []tokend.User
		var err error
		if u, all, err = lockUsers(ctx, tx, id); err != nil {
			return err
		}
		version := u.Version
		ev, err := fn(&u, all)
		if err != nil {
			return err
		}
		// The id is the row's identity, and the version is the store's to
		// keep; whatever fn did to them is undone.
		u.ID, u.Version = id, version+1
		_, err = tx.Exec(ctx, `
			UPDATE users
			SET email = $2, name = $3, role = $4, password_hash = $5, disabled = $6,
			    created_at = $7, updated_at = $8, last_login_at = $9, version = $10
			WHERE id = $1`, userArgs(u)...)
		if err != nil {
			return userErr("update user", err)
		}
		if ev.Action == "" {
			return nil
		}
		return insertEvent(ctx, tx, ev)
	})
	if err != nil {
		return tokend.User{}, err
	}
	return u, nil
}

// DeleteUser locks every user row, as UpdateUser does, runs check, and
// deletes; the user's sessions go by ON DELETE CASCADE. Events stay.
func (s *Store) DeleteUser(ctx context.Context, id string, check func(u tokend.User, all []tokend.User) error, ev tokend.Event) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		u, all, err := lockUsers(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := check(u, all); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err := affectedOne(tag.RowsAffected(), err, "delete user"); err != nil {
			return err
		}
		return insertEvent(ctx, tx, ev)
	})
}

// lockUsers locks every user row, in id order so that concurrent callers
// queue instead of deadlocking, and answers the one with id (ErrNotFound
// when none) and all of them oldest first.
func lockUsers(ctx context.Context, tx pgx.Tx, id string) (tokend.User, []tokend.User, error) {
	rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY id FOR UPDATE`)
	if err != nil {
		return tokend.User{}, nil, storeErr("lock users", err)
	}
	all, err := collectUsers(rows)
	if err != nil {
		return tokend.User{}, nil, err
	}
	slices.SortFunc(all, func(a, b tokend.User) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	i := slices.IndexFunc(all, func(x tokend.User) bool { return x.ID == id })
	if i < 0 {
		return tokend.User{}, nil, tokend.ErrNotFound
	}
	return all[i], slices.Clone(all), nil
}

func collectUsers(rows pgx.Rows) ([]tokend.User, error) {
	defer rows.Close()
	users := []tokend.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list users", err)
	}
	return users, nil
}

// userArgs lists u's columns in the order of userColumns.
func userArgs(u tokend.User) []any {
	return []any{
		u.ID, u.Email, u.Name, string(u.Role), u.PasswordHash, u.Disabled,
		ts(u.CreatedAt), ts(u.UpdatedAt), nullTS(u.LastLoginAt), u.Version,
	}
}

func scanUser(sc pgx.Row) (tokend.User, error) {
	var (
		u                tokend.User
		role             string
		created, updated time.Time
		lastLogin        *time.Time
	)
	err := sc.Scan(&u.ID, &u.Email, &u.Name, &role, &u.PasswordHash, &u.Disabled, &created, &updated, &lastLogin, &u.Version)
	if err != nil {
		return tokend.User{}, storeErr("read user", err)
	}
	u.Role = tokend.Role(role)
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = created.UTC(), updated.UTC(), fromNullTS(lastLogin)
	return u, nil
}
