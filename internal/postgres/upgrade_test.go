package postgres

import (
	"database/sql"
	"io/fs"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// TestUpgradeToOwners opens a database left at 00007 (before owners) with
// a token in it: the migration gives the token no owner and the app no
// owner limits; down and up again works.
func TestUpgradeToOwners(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatalf("migrate to 00007: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO apps (id, name, token_prefix, permissions, created_at, updated_at, version)
		 VALUES ('app_a', 'Shop', 'shop', '[]', now(), now(), 1)`,
		`INSERT INTO tokens (id, app_id, name, description, type, access, permissions, allowed_ips,
		   allowed_origins, metadata, status, masked, created_at, created_by, updated_at, version, secret_hash)
		 VALUES ('tok_old', 'app_a', 'ci', '', 'standard', 'full_access', 'null', 'null',
		   'null', 'null', 'active', 'shop_…abcd', now(), 'system', now(), 1, '\x0102')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed at 00007: %v", err)
		}
	}

	s := open(t, url) // migrates to the latest
	tok, err := s.Token(ctx, "tok_old")
	if err != nil {
		t.Fatalf("Token after the upgrade: %v", err)
	}
	if tok.OwnerID != "" || tok.OwnerName != "" || tok.Scope != nil {
		t.Errorf("upgraded token: owner %q %q scope %v; want none", tok.OwnerID, tok.OwnerName, tok.Scope)
	}
	cred, err := s.TokenBySecret(ctx, []byte{1, 2}) // the native pgx read
	if err != nil || cred.Token.OwnerID != "" || cred.Token.Scope != nil {
		t.Errorf("TokenBySecret after the upgrade: %+v, %v", cred.Token, err)
	}
	app, err := s.App(ctx, "app_a")
	if err != nil || app.MaxTokensPerOwner != nil || app.OwnerRateLimit != nil {
		t.Errorf("upgraded app: %+v, %v; want no owner limits", app, err)
	}
	s.Close()

	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("down to 00007: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
