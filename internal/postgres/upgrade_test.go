package postgres

import (
	"database/sql"
	"io"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/storetest"
)

// TestUpgradeToOwners also reads the upgraded token through TokenBySecret,
// the native pgx read.
func TestUpgradeToOwners(t *testing.T) {
	u := upgrade(pgtest.NewDatabase(t))
	u.Seed = []string{
		`INSERT INTO apps (id, name, token_prefix, permissions, created_at, updated_at, version)
		 VALUES ('app_a', 'Shop', 'shop', '[]', now(), now(), 1)`,
		`INSERT INTO tokens (id, app_id, name, description, type, access, permissions, allowed_ips,
		   allowed_origins, metadata, status, masked, created_at, created_by, updated_at, version, secret_hash)
		 VALUES ('tok_old', 'app_a', 'ci', '', 'standard', 'full_access', 'null', 'null',
		   'null', 'null', 'active', 'shop_…abcd', now(), 'system', now(), 1, '\x0102')`,
	}
	storetest.UpgradeToOwners(t, u)
}

// upgrade is the Upgrade of the database at url.
func upgrade(url string) storetest.Upgrade {
	return storetest.Upgrade{
		Dialect:    goose.DialectPostgres,
		Migrations: migrations,
		DB: func(t *testing.T) *sql.DB {
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		Open: func(t *testing.T) interface {
			tokend.Store
			io.Closer
		} {
			return open(t, url)
		},
	}
}

func TestUpgradeChainsTheAuditLog(t *testing.T) {
	storetest.UpgradeAuditChain(t, upgrade(pgtest.NewDatabase(t)), "now()")
}

func TestUpgradeFromEveryVersion(t *testing.T) {
	url := pgtest.NewDatabase(t)
	storetest.UpgradeFromEveryVersion(t, storetest.UpgradeEvery{
		Dialect:    goose.DialectPostgres,
		Migrations: migrations,
		Time:       flavor.Time,
		New: func(t *testing.T) (*sql.DB, func(t *testing.T) interface {
			tokend.Store
			io.Closer
		}) {
			url := pgtest.WithSchema(t, url) // a database of its own, as far as tokend can tell
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			return db, func(t *testing.T) interface {
				tokend.Store
				io.Closer
			} {
				s, err := Open(t.Context(), url)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
	})
}
