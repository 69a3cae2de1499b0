package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Migrations are a dialect's migration files and how goose applies them.
type Migrations struct {
	FS      fs.FS // the files, in a directory "migrations"
	Dialect goose.Dialect
	// Locker, if set, keeps instances starting together from applying a
	// migration twice.
	Locker lock.SessionLocker
}

// Migrate applies the flavor's migrations that the database lacks. The
// dialects' Open calls it; running it again is harmless. A database whose
// schema is newer than this build's is refused (*SchemaTooNewError)
// before anything is written.
func (s *Store) Migrate(ctx context.Context) error {
	if _, err := s.f.Migrations.Status(ctx, s.w); err != nil {
		return fmt.Errorf("%s: %w", s.f.Name, err)
	}
	p, err := s.migrator()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("%s: migrate: %w", s.f.Name, err)
	}
	return nil
}

// SchemaVersion answers the version of the newest migration applied to the
// database and the newest one this build knows.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int64, err error) {
	p, err := s.migrator()
	if err != nil {
		return 0, 0, err
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: schema version: %w", s.f.Name, err)
	}
	return current, latest, nil
}

func (s *Store) migrator() (*goose.Provider, error) {
	// The sub-FS puts the files at its root, where goose looks. Go migrations
	// registered globally by other packages must never run against this
	// database.
	m := s.f.Migrations
	fsys, err := fs.Sub(m.FS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("%s: migrations: %w", s.f.Name, err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if m.Locker != nil {
		opts = append(opts, goose.WithSessionLocker(m.Locker))
	}
	p, err := goose.NewProvider(m.Dialect, s.w, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: migrations: %w", s.f.Name, err)
	}
	return p, nil
}

// SchemaTooNewError is a database whose schema a newer tokend migrated:
// this one does not know its newest migrations, so it could misread or
// damage what they added. Migrations are never undone automatically.
type SchemaTooNewError struct {
	Current int64 // the database's schema version
	Latest  int64 // the newest migration this build knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this tokend (%d); upgrade tokend", e.Current, e.Latest)
}

// Migration is one migration file of a dialect.
type Migration struct {
	Version int64
	Name    string // from the file name: "change_log" for 00014_change_log.sql
}

// Known answers the migrations of m, oldest first.
func (m Migrations) Known() ([]Migration, error) {
	names, err := fs.Glob(m.FS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return nil, fmt.Errorf("migrations: %s: %w", n, err)
		}
		_, name, _ := strings.Cut(strings.TrimSuffix(path.Base(n), ".sql"), "_")
		out = append(out, Migration{Version: v, Name: name})
	}
	slices.SortFunc(out, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	return out, nil
}

// Latest answers the version of the newest migration of m.
func (m Migrations) Latest() (int64, error) {
	known, err := m.Known()
	if err != nil || len(known) == 0 {
		return 0, errors.Join(err, errors.New("migrations: none embedded"))
	}
	return known[len(known)-1].Version, nil
}

// MigrationStatus is where a database's schema stands against this build.
type MigrationStatus struct {
	Current int64       // the newest migration applied; 0 for an empty database
	Latest  int64       // the newest migration this build knows
	Pending []Migration // known and not applied, oldest first
}

// Status reads which of m's migrations db has, without writing anything
// (not even goose's version table, which a migration would create), and
// answers a *SchemaTooNewError when db has a newer one than m knows.
func (m Migrations) Status(ctx context.Context, db *sql.DB) (MigrationStatus, error) {
	known, err := m.Known()
	if err != nil {
		return MigrationStatus{}, err
	}
	st := MigrationStatus{Latest: known[len(known)-1].Version}
	applied, err := appliedVersions(ctx, db, m.Dialect)
	if err != nil {
		return MigrationStatus{}, err
	}
	for v := range applied {
		st.Current = max(st.Current, v)
	}
	if st.Current > st.Latest {
		return st, &SchemaTooNewError{Current: st.Current, Latest: st.Latest}
	}
	for _, k := range known {
		if !applied[k.Version] {
			st.Pending = append(st.Pending, k)
		}
	}
	return st, nil
}

// appliedVersions reads goose's version table, if db has one: a version
// is applied when its newest row says so (as goose reads it).
func appliedVersions(ctx context.Context, db *sql.DB, d goose.Dialect) (map[int64]bool, error) {
	store, err := database.NewStore(d, goose.DefaultTablename)
	if err != nil {
		return nil, err
	}
	var exists bool
	err = errors.ErrUnsupported
	if ext, ok := store.(database.StoreExtender); ok {
		exists, err = ext.TableExists(ctx, db)
	}
	if errors.Is(err, errors.ErrUnsupported) {
		// goose asks SQLite by trying; this asks without an error.
		err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '`+goose.DefaultTablename+`')`).Scan(&exists)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the schema version: %w", err)
	}
	applied := map[int64]bool{}
	if !exists {
		return applied, nil
	}
	rows, err := store.ListMigrations(ctx, db) // newest row first
	if err != nil {
		return nil, fmt.Errorf("reading the schema version: %w", err)
	}
	seen := map[int64]bool{}
	for _, r := range rows {
		if r.Version > 0 && !seen[r.Version] {
			seen[r.Version] = true
			applied[r.Version] = r.IsApplied
		}
	}
	for v, a := range applied {
		if !a {
			delete(applied, v)
		}
	}
	return applied, nil
}
