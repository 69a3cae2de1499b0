package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tokend/tokend/internal/sqlstore"
)

// MigrationStatus answers where the schema of the database at url stands,
// without migrating or writing anything (tokend migrate --dry-run).
func MigrationStatus(ctx context.Context, url string) (sqlstore.MigrationStatus, error) {
	cfg, err := parseURL(url)
	if err != nil {
		return sqlstore.MigrationStatus{}, err
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return sqlstore.MigrationStatus{}, fmt.Errorf("postgres: connect: %w", err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	st, err := flavor.Migrations.Status(ctx, db)
	if err != nil {
		return st, fmt.Errorf("postgres: %w", err)
	}
	return st, nil
}
