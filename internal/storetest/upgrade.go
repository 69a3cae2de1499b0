package storetest

import (
	"database/sql"
	"io"
	"io/fs"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
)

// Upgrade is one backend's database for UpgradeToOwners.
type Upgrade struct {
	Dialect    goose.Dialect
	Migrations fs.FS // holds the directory "migrations"
	// DB opens a connection to the one database the test upgrades; the
	// helper closes it.
	DB func(t *testing.T) *sql.DB
	// Seed inserts, at 00007, the app 'app_a' and its token 'tok_old' named
	// "ci" with secret hash 0x0102, in the dialect's own SQL.
	Seed []string
	// Open opens the store on that database, migrating it to the latest.
	Open func(t *testing.T) interface {
		tokend.Store
		io.Closer
	}
}

// UpgradeToOwners opens a database left at 00007 (before owners) with a
// token in it: the migration gives the token no owner and the app no owner
// limits, the token's name is taken among the tokens without owner only,
// and down to 00007 and up again works.
func UpgradeToOwners(t *testing.T, u Upgrade) {
	ctx := t.Context()
	db := u.DB(t)
	if _, err := u.provider(t, db).UpTo(ctx, 7); err != nil {
		t.Fatalf("migrate to 00007: %v", err)
	}
	for _, q := range u.Seed {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed at 00007: %v", err)
		}
	}
	db.Close()

	s := u.Open(t)
	tok, err := s.Token(ctx, "tok_old")
	if err != nil {
		t.Fatalf("Token after the upgrade: %v", err)
	}
	if tok.OwnerID != "" || tok.OwnerName != "" || tok.Scope != nil {
		t.Errorf("upgraded token: owner %q %q scope %v; want none", tok.OwnerID, tok.OwnerName, tok.Scope)
	}
	cred, err := s.TokenBySecret(ctx, []byte{1, 2})
	if err != nil || cred.Token.OwnerID != "" || cred.Token.Scope != nil {
		t.Errorf("TokenBySecret after the upgrade: %+v, %v", cred.Token, err)
	}
	app, err := s.App(ctx, "app_a")
	if err != nil || app.MaxTokensPerOwner != nil || app.OwnerRateLimit != nil {
		t.Errorf("upgraded app: %+v, %v; want no owner limits", app, err)
	}
	owned := tok
	owned.ID, owned.OwnerID, owned.SecretHash = "tok_new", "acct_1", []byte{3}
	if err := s.CreateToken(ctx, owned, tokend.Event{Action: tokend.ActionTokenCreate, AppID: "app_a"}); err != nil {
		t.Errorf("a token of the same name with an owner: %v", err)
	}
	if err := s.DeleteToken(ctx, "tok_new", 0, tokend.Event{Action: tokend.ActionTokenDelete, AppID: "app_a"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db = u.DB(t)
	defer db.Close()
	p := u.provider(t, db)
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("down to 00007: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

// provider is goose on db with u's migrations only.
func (u Upgrade) provider(t *testing.T, db *sql.DB) *goose.Provider {
	t.Helper()
	fsys, err := fs.Sub(u.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(u.Dialect, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
