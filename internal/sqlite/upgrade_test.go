package sqlite

import (
	"database/sql"
	"io"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/storetest"
)

func TestUpgradeToOwners(t *testing.T) {
	u := upgrade(filepath.Join(t.TempDir(), "tokend.db"))
	u.Seed = []string{
		`INSERT INTO apps (id, name, token_prefix, permissions, created_at, updated_at, version)
		 VALUES ('app_a', 'Shop', 'shop', '[]', 1, 1, 1)`,
		`INSERT INTO tokens (id, app_id, name, description, type, access, permissions, allowed_ips,
		   allowed_origins, metadata, status, masked, created_at, created_by, updated_at, version, secret_hash)
		 VALUES ('tok_old', 'app_a', 'ci', '', 'standard', 'full_access', 'null', 'null',
		   'null', 'null', 'active', 'shop_…abcd', 1, 'system', 1, 1, x'0102')`,
	}
	storetest.UpgradeToOwners(t, u)
}

// upgrade is the Upgrade of the database at path.
func upgrade(path string) storetest.Upgrade {
	return storetest.Upgrade{
		Dialect:    goose.DialectSQLite3,
		Migrations: migrations,
		DB: func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", dsn(path, true))
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		Open: func(t *testing.T) interface {
			tokend.Store
			io.Closer
		} {
			return openTemp(t, path)
		},
	}
}

func TestUpgradeChainsTheAuditLog(t *testing.T) {
	storetest.UpgradeAuditChain(t, upgrade(filepath.Join(t.TempDir(), "tokend.db")), "1")
}

func TestUpgradeFromEveryVersion(t *testing.T) {
	storetest.UpgradeFromEveryVersion(t, storetest.UpgradeEvery{
		Dialect:    goose.DialectSQLite3,
		Migrations: migrations,
		Question:   true,
		Time:       flavor.Time,
		New: func(t *testing.T) (*sql.DB, func(t *testing.T) interface {
			tokend.Store
			io.Closer
		}) {
			path := filepath.Join(t.TempDir(), "tokend.db")
			db, err := sql.Open("sqlite", dsn(path, true))
			if err != nil {
				t.Fatal(err)
			}
			return db, func(t *testing.T) interface {
				tokend.Store
				io.Closer
			} {
				s, err := Open(t.Context(), path)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
	})
}
