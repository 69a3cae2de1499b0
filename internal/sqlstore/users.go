package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/tokend/tokend"
)

const userColumns = `id, email, name, role, password_hash, disabled, created_at, updated_at, last_login_at, version, mail_optout`

var (
	insertUser  = Q(`INSERT INTO users (` + userColumns + `) VALUES (` + placeholders(11) + `)`)
	userByID    = Q(`SELECT ` + userColumns + ` FROM users WHERE id = $1`)
	userByEmail = Q(`SELECT ` + userColumns + ` FROM users WHERE lower(email) = lower($1)`)
	emailOwner  = Q(`SELECT id FROM users WHERE lower(email) = lower($1)`)
	allUsers    = Q(`SELECT ` + userColumns + ` FROM users ORDER BY created_at, id`)
	// usersByID is read to lock every user row, in id order so that
	// concurrent callers queue instead of deadlocking.
	usersByID  = Q(`SELECT ` + userColumns + ` FROM users ORDER BY id`)
	anyUser    = Q(`SELECT EXISTS (SELECT 1 FROM users)`)
	countUsers = Q(`SELECT count(*) FROM users`)
	updateUser = Q(`
		UPDATE users
		SET email = $2, name = $3, role = $4, password_hash = $5, disabled = $6,
		    created_at = $7, updated_at = $8, last_login_at = $9, version = $10, mail_optout = $11
		WHERE id = $1`)
	deleteUser = Q(`DELETE FROM users WHERE id = $1`)
)

// CreateFirstUser stores u only while the users table is empty. On SQLite
// the write transaction (BEGIN IMMEDIATE) holds the database's write lock
// from its first statement; on PostgreSQL the table lock (EXCLUSIVE: it
// still lets others read, but no one else insert or lock rows) is held to
// the end of the transaction. Either way, of several callers, in this
// process or another, the first inserts and the others, which read the
// table only once they hold the lock, see its user.
func (s *Store) CreateFirstUser(ctx context.Context, u tokend.User, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		if s.f.LockUsers != "" {
			if _, err := tx.ExecContext(ctx, s.f.LockUsers); err != nil {
				return s.Err("lock users", err)
			}
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, s.sql(anyUser)).Scan(&exists); err != nil {
			return s.Err("count users", err)
		}
		if exists {
			return tokend.Errorf(tokend.ECodeConflict, "a user exists already")
		}
		return s.insertUser(ctx, tx, u, ev)
	})
}

func (s *Store) CreateUser(ctx context.Context, u tokend.User, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		return s.insertUser(ctx, tx, u, ev)
	})
}

func (s *Store) insertUser(ctx context.Context, tx *sql.Tx, u tokend.User, ev tokend.Event) error {
	if err := s.emailFree(ctx, tx, u.Email, u.ID); err != nil {
		return err
	}
	args, err := s.userArgs(u)
	if err != nil {
		return s.Err("create user", err)
	}
	if _, err := tx.ExecContext(ctx, s.sql(insertUser), args...); err != nil {
		return s.Err("create user", err)
	}
	return s.InsertEvent(ctx, tx, ev)
}

// emailFree answers a conflict naming the email field when a user other
// than id has email. The unique index is what enforces it; asking first
// lets the answer point at the field where the database does not name the
// index in its error (CheckUnique).
func (s *Store) emailFree(ctx context.Context, tx *sql.Tx, email, id string) error {
	if !s.f.CheckUnique {
		return nil
	}
	var other string
	err := tx.QueryRowContext(ctx, s.sql(emailOwner), email).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && other == id:
		return nil
	case err != nil:
		return s.Err("find email", err)
	}
	return EmailTaken(nil)
}

// EmailTaken is the conflict of an email with another user's. The unique
// index users_email on lower(email) enforces it.
func EmailTaken(cause error) error {
	return &tokend.Error{
		Code:    tokend.ECodeConflict,
		Message: "another user has this email address",
		Fields:  []tokend.FieldError{{Field: "email", Message: "is taken by another user"}},
		Cause:   cause,
	}
}

func (s *Store) User(ctx context.Context, id string) (tokend.User, error) {
	return s.scanUser(s.r.QueryRowContext(ctx, s.sql(userByID), id))
}

func (s *Store) UserByEmail(ctx context.Context, email string) (tokend.User, error) {
	return s.scanUser(s.r.QueryRowContext(ctx, s.sql(userByEmail), email))
}

func (s *Store) Users(ctx context.Context) ([]tokend.User, error) {
	return list(ctx, s, s.r, "list users", s.sql(allUsers), nil, s.scanUser)
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, s.sql(countUsers)).Scan(&n)
	return n, s.Err("count users", err)
}

// UpdateUser reads, and locks, every user inside the write transaction
// before fn sees them, so the rules fn checks against all users (the last
// owner stays one) hold against a concurrent change on any instance: that
// one waits, then reads this one's result.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *tokend.User, all []tokend.User) (tokend.Event, error)) (tokend.User, error) {
	var u tokend.User
	err := s.Write(ctx, func(tx *sql.Tx) error {
		var all []tokend.User
		var err error
		if u, all, err = s.lockUsers(ctx, tx, id); err != nil {
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
			if err := s.emailFree(ctx, tx, u.Email, id); err != nil {
				return err
			}
		}
		args, err := s.userArgs(u)
		if err != nil {
			return s.Err("update user", err)
		}
		if _, err := tx.ExecContext(ctx, s.sql(updateUser), args...); err != nil {
			return s.Err("update user", err)
		}
		if ev.Action == "" {
			return nil
		}
		return s.InsertEvent(ctx, tx, ev)
	})
	if err != nil {
		return tokend.User{}, err
	}
	return u, nil
}

// DeleteUser locks every user row, as UpdateUser does, runs check, and
// deletes; the user's sessions go by ON DELETE CASCADE. Events stay.
func (s *Store) DeleteUser(ctx context.Context, id string, check func(u tokend.User, all []tokend.User) error, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		u, all, err := s.lockUsers(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := check(u, all); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.sql(deleteUser), id)
		if err := s.affectedOne(res, err, "delete user"); err != nil {
			return err
		}
		return s.InsertEvent(ctx, tx, ev)
	})
}

// lockUsers locks every user row (FOR UPDATE, in id order; on SQLite the
// write lock covers them) and answers the one with id (ErrNotFound when
// none) and all of them oldest first, a list the caller's callback may keep
// or change freely.
func (s *Store) lockUsers(ctx context.Context, tx *sql.Tx, id string) (tokend.User, []tokend.User, error) {
	all, err := list(ctx, s, tx, "lock users", s.sql(usersByID)+s.f.ForUpdate, nil, s.scanUser)
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

// userArgs lists u's columns in the order of userColumns. The opt-outs
// are a JSON array, never null (the column is NOT NULL).
func (s *Store) userArgs(u tokend.User) ([]any, error) {
	var j jsonCodec
	optout := j.encode(u.MailOptOut)
	if u.MailOptOut == nil {
		optout = "[]"
	}
	return []any{
		u.ID, u.Email, u.Name, string(u.Role), u.PasswordHash, u.Disabled,
		s.time(u.CreatedAt), s.time(u.UpdatedAt), s.nullTime(u.LastLoginAt), u.Version, optout,
	}, j.err
}

func (s *Store) scanUser(sc Row) (tokend.User, error) {
	var (
		u                tokend.User
		role             string
		created, updated Time
		lastLogin        NullTime
		optout           JSON
	)
	err := sc.Scan(&u.ID, &u.Email, &u.Name, &role, &u.PasswordHash, &u.Disabled, &created, &updated, &lastLogin, &u.Version, &optout)
	if err != nil {
		return tokend.User{}, s.Err("read user", err)
	}
	var j jsonCodec
	if u.MailOptOut = decode[[]string](&j, optout); j.err != nil {
		return tokend.User{}, s.Err("read user", j.err)
	}
	if len(u.MailOptOut) == 0 {
		u.MailOptOut = nil // none is nil, as a new user has it
	}
	u.Role = tokend.Role(role)
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = created.Time, updated.Time, lastLogin.Ptr()
	return u, nil
}
