package sqlstore

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
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
// dialects' Open calls it; running it again is harmless.
func (s *Store) Migrate(ctx context.Context) error {
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
