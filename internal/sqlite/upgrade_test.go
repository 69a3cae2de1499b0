package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
)

// TestUpgradeToOwners opens a database left at 00007 (before owners) with
// a token in it: the migration gives the token no owner, and the app no
// owner limits; down and up again works.
func TestUpgradeToOwners(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tokend.db")
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatalf("migrate to 00007: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO apps (id, name, token_prefix, permissions, created_at, updated_at, version)
		 VALUES ('app_a', 'Shop', 'shop', '[]', 1, 1, 1)`,
		`INSERT INTO tokens (id, app_id, name, description, type, access, permissions, allowed_ips,
		   allowed_origins, metadata, status, masked, created_at, created_by, updated_at, version, secret_hash)
		 VALUES ('tok_old', 'app_a', 'ci', '', 'standard', 'full_access', 'null', 'null',
		   'null', 'null', 'active', 'shop_…abcd', 1, 'system', 1, 1, x'0102')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed at 00007: %v", err)
		}
	}
	db.Close()

	s := openTemp(t, path) // migrates to the latest
	tok, err := s.Token(ctx, "tok_old")
	if err != nil {
		t.Fatalf("Token after the upgrade: %v", err)
	}
	if tok.OwnerID != "" || tok.OwnerName != "" || tok.Scope != nil {
		t.Errorf("upgraded token: owner %q %q scope %v; want none", tok.OwnerID, tok.OwnerName, tok.Scope)
	}
	app, err := s.App(ctx, "app_a")
	if err != nil || app.MaxTokensPerOwner != nil || app.OwnerRateLimit != nil {
		t.Errorf("upgraded app: %+v, %v; want no owner limits", app, err)
	}
	// The token's name is now taken among the tokens without owner only.
	owned := tok
	owned.ID, owned.OwnerID, owned.SecretHash = "tok_new", "acct_1", []byte{3}
	if err := s.CreateToken(ctx, owned, tokend.Event{Action: tokend.ActionTokenCreate, AppID: "app_a"}); err != nil {
		t.Errorf("a token of the same name with an owner: %v", err)
	}
	if err := s.DeleteToken(ctx, "tok_new", 0, tokend.Event{Action: tokend.ActionTokenDelete, AppID: "app_a"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Down to 00007 and up again.
	db, err = sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err = goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("down to 00007: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
