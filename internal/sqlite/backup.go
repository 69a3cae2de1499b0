package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tokend/tokend/internal/sqlstore"
)

// The functions of this file read a database file without taking it over:
// they open it read-only, never migrate it and never take the data
// directory's lock, so that they work beside a server using the file.

// readOnly opens the database at path read-only: no statement through it
// may write the file, and it never changes its journal mode. In WAL mode it
// reads a snapshot without blocking the server's writer, nor being blocked
// by it.
func readOnly(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err // a missing file must not be created
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	db, err := sql.Open("sqlite", fileURL(path, q))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Copy writes a consistent copy of the database at src into dst, which must
// not exist or be empty, with VACUUM INTO: one read transaction, so the
// copy is the database as one moment's commits left it, while a server
// keeps writing (WAL readers and the writer do not wait for each other).
// The copy is compacted and has no WAL of its own. Copy neither syncs nor
// checks dst; Inspect checks it.
func Copy(ctx context.Context, src, dst string) error {
	db, err := readOnly(src)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("sqlite: copying %s: %w", src, inspectErr(err))
	}
	return nil
}

// Info is what Inspect finds in a tokend database file.
type Info struct {
	// Version is its schema version, Latest the newest this build knows
	// (never less than Version: Inspect refuses a newer file).
	Version, Latest int64
	// Settings are the database's settings (its pepper fingerprint).
	Settings map[string]string
	Apps     int64
	Tokens   int64
	Events   int64 // audit events
}

// ErrNotTokend is a SQLite database that holds no tokend schema.
var ErrNotTokend = errors.New("not a tokend database")

// Inspect checks the database file at path, read-only: that it is a SQLite
// database without damage (PRAGMA integrity_check, which also checks every
// index against its table), that it holds a tokend schema no newer than
// this build's (else a *sqlstore.SchemaTooNewError), and answers what it
// holds. Its errors do not name the file, which may be a temporary copy:
// they say what is wrong with it ("it is damaged (…)"), for the caller to
// say which file.
func Inspect(ctx context.Context, path string) (Info, error) {
	db, err := readOnly(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, errors.New("it does not exist")
	} else if err != nil {
		return Info{}, fmt.Errorf("it cannot be opened: %w", err)
	}
	defer db.Close()
	info, err := inspect(ctx, db)
	var tooNew *sqlstore.SchemaTooNewError
	switch {
	case errors.Is(err, ErrNotTokend):
		return info, fmt.Errorf("it is %w (no tokend tables in it)", err)
	case errors.As(err, &tooNew):
		return info, err
	case err != nil:
		return info, inspectErr(err)
	}
	return info, nil
}

// inspectErr says what is wrong with a file that cannot be read; unlike
// openErr, it does not assume the file is the live database.
func inspectErr(err error) error {
	var dmg *damagedError
	var se *sqlite.Error
	switch {
	case errors.As(err, &dmg), errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("it is damaged (%v)", err)
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("it is not a SQLite database (%v)", err)
	}
	return fmt.Errorf("it cannot be read: %w", err)
}

func inspect(ctx context.Context, db *sql.DB) (Info, error) {
	// integrity_check adds to quick_check that every index holds exactly
	// its table's rows: a backup is checked once, where a start can only
	// afford the quick check.
	if err := check(ctx, db, "integrity_check"); err != nil {
		return Info{}, err
	}
	tables := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		return Info{}, err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return Info{}, err
		}
		tables[n] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return Info{}, err
	}
	for _, t := range []string{"goose_db_version", "apps", "tokens", "events"} {
		if !tables[t] {
			return Info{}, ErrNotTokend
		}
	}
	st, err := flavor.Migrations.Status(ctx, db)
	if err != nil {
		return Info{}, err
	}
	info := Info{Version: st.Current, Latest: st.Latest, Settings: map[string]string{}}
	if tables["settings"] {
		rows, err := db.QueryContext(ctx, `SELECT key, value FROM settings`)
		if err != nil {
			return Info{}, err
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return Info{}, err
			}
			info.Settings[k] = v
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return Info{}, err
		}
	}
	for q, n := range map[string]*int64{
		`SELECT count(*) FROM apps`:   &info.Apps,
		`SELECT count(*) FROM tokens`: &info.Tokens,
		`SELECT count(*) FROM events`: &info.Events,
	} {
		if err := db.QueryRowContext(ctx, q).Scan(n); err != nil {
			return Info{}, err
		}
	}
	return info, nil
}

// MigrationStatus answers where the schema of the database at path stands,
// read-only: a file that does not exist has every migration pending.
func MigrationStatus(ctx context.Context, path string) (sqlstore.MigrationStatus, error) {
	db, err := readOnly(path)
	if errors.Is(err, fs.ErrNotExist) {
		known, err := flavor.Migrations.Known()
		if err != nil {
			return sqlstore.MigrationStatus{}, err
		}
		return sqlstore.MigrationStatus{Latest: known[len(known)-1].Version, Pending: known}, nil
	} else if err != nil {
		return sqlstore.MigrationStatus{}, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer db.Close()
	st, err := flavor.Migrations.Status(ctx, db)
	var tooNew *sqlstore.SchemaTooNewError
	if errors.As(err, &tooNew) {
		return st, fmt.Errorf("sqlite: %w (%s)", err, path)
	} else if err != nil {
		return st, openErr(path, err)
	}
	return st, nil
}
