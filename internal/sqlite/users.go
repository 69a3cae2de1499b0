package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/tokend/tokend"
)

var _ tokend.UserStore = (*Store)(nil)

const userColumns = `id, email, name, role, password_hash, disabled, created_at, updated_at, last_login_at, version`

// CreateFirstUser stores u only while the users table is empty. The write
// transaction (BEGIN IMMEDIATE) holds the database's write lock from its
// first statement, so two callers, in this process or another, cannot both
// see it empty.
func (s *Store) CreateFirstUser(ctx context.Context, u tokend.User, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
			return storeErr("count users", err)
		}
		if n > 0 {
			return tokend.Errorf(tokend.ECodeConflict, "a user exists already")
		}
		return insertUser(ctx, tx, u, ev)
	})
}

func (s *Store) CreateUser(ctx context.Context, u tokend.User, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		return insertUser(ctx, tx, u, ev)
	})
}

func insertUser(ctx context.Context, tx *sql.Tx, u tokend.User, ev tokend.Event) error {
	if err := emailFree(ctx, tx, u.Email, u.ID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, userArgs(u)...)
	if err != nil {
		return storeErr("create user", err)
	}
	return insertEvent(ctx, tx, ev)
}

// emailFree answers a conflict naming the email field when a user other
// than id has email. The unique index is what enforces it; asking first
// lets the answer point at the field.
func emailFree(ctx context.Context, tx *sql.Tx, email, id string) error {
	var other string
	err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE lower(email) = lower(?)`, email).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && other == id:
		return nil
	case err != nil:
		return storeErr("find email", err)
	}
	return emailTaken(nil)
}

// emailTaken is the conflict of an email with another user's, naming the
// field as the PostgreSQL store does.
func emailTaken(cause error) error {
	return &tokend.Error{
		Code:    tokend.ECodeConflict,
		Message: "another user has this email address",
		Fields:  []tokend.FieldError{{Field: "email", Message: "is taken by another user"}},
		Cause:   cause,
	}
}

func (s *Store) User(ctx context.Context, id string) (tokend.User, error) {
	return scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

func (s *Store) UserByEmail(ctx context.Context, email string) (tokend.User, error) {
	return scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower(?)`, email))
}

func (s *Store) Users(ctx context.Context) ([]tokend.User, error) {
	return allUsers(ctx, s.r)
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, storeErr("count users", err)
}

// UpdateUser reads every user inside the write transaction, so the rules fn
// checks against them (the last owner stays one) cannot be broken by a
// concurrent change: no other writer runs until this one commits.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *tokend.User, all []tokend.User) (tokend.Event, error)) (tokend.User, error) {
	var u tokend.User
	err := s.write(ctx, func(tx *sql.Tx) error {
		var all []tokend.User
		var err error
		if u, all, err = userAmongAll(ctx, tx, id); err != nil {
			return err
		}
		version, email := u.Version, u.Email
		ev, err := fn(&u, all)
		if err != nil {
			return err
		}
		// The id is the row's identity, and the version is the store's to
		// keep; whatever fn did to them is undone.
		u.ID, u.Version = id, version+1
		if u.Email != email {
			if err := emailFree(ctx, tx, u.Email, id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE users
			SET email = ?2, name = ?3, role = ?4, password_hash = ?5, disabled = ?6,
			    created_at = ?7, updated_at = ?8, last_login_at = ?9, version = ?10
			WHERE id = ?1`, userArgs(u)...)
		if err != nil {
			return storeErr("update user", err)
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

// DeleteUser deletes the user after check, inside the write transaction;
// its sessions go by ON DELETE CASCADE. Events stay.
func (s *Store) DeleteUser(ctx context.Context, id string, check func(u tokend.User, all []tokend.User) error, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		u, all, err := userAmongAll(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := check(u, all); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		if err := affectedOne(res, err, "delete user"); err != nil {
			return err
		}
		return insertEvent(ctx, tx, ev)
	})
}

// userAmongAll reads every user in the transaction and answers the one
// with id (ErrNotFound when none) and the list, which the caller's
// callback may keep or change freely.
func userAmongAll(ctx context.Context, tx *sql.Tx, id string) (tokend.User, []tokend.User, error) {
	all, err := allUsers(ctx, tx)
	if err != nil {
		return tokend.User{}, nil, err
	}
	i := slices.IndexFunc(all, func(x tokend.User) bool { return x.ID == id })
	if i < 0 {
		return tokend.User{}, nil, tokend.ErrNotFound
	}
	return all[i], slices.Clone(all), nil
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// allUsers answers every user, oldest first.
func allUsers(ctx context.Context, q querier) ([]tokend.User, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, storeErr("list users", err)
	}
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
		micros(u.CreatedAt), micros(u.UpdatedAt), nullMicros(u.LastLoginAt), u.Version,
	}
}

func scanUser(sc scanner) (tokend.User, error) {
	var (
		u                tokend.User
		role             string
		created, updated int64
		lastLogin        sql.NullInt64
	)
	err := sc.Scan(&u.ID, &u.Email, &u.Name, &role, &u.PasswordHash, &u.Disabled, &created, &updated, &lastLogin, &u.Version)
	if err != nil {
		return tokend.User{}, storeErr("read user", err)
	}
	u.Role = tokend.Role(role)
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = fromMicros(created), fromMicros(updated), fromNullMicros(lastLogin)
	return u, nil
}
