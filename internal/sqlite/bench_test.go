package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend/internal/sqlstore"

	"github.com/tokend/tokend/internal/storetest"
)

// BenchmarkTokenBySecret is the verification cache miss: the store read of
// a token by its secret's hash, among 10,000 tokens, at random (see
// storetest.BenchTokenBySecret).
func BenchmarkTokenBySecret(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchTokenBySecret(b, s)
}

// BenchmarkAuditChainCreates measures token creates per second, 4 writers
// at a time (storetest.BenchAuditChainCreates), on a schema before the
// audit chain (migration 00014: "plain") and with each audit row chained
// in the transaction that writes it ("chained"), as SQLite does.
func BenchmarkAuditChainCreates(b *testing.B) {
	ctx := context.Background()
	plainPath := filepath.Join(b.TempDir(), "plain.db")
	w, err := sql.Open("sqlite", dsn(plainPath, true))
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	fsys, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectSQLite3, w, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 14); err != nil {
		b.Fatal(err)
	}
	f := *flavor
	f.ChainInTx = false // nothing chains: the rows stay as before 00015
	plain := &Store{Store: sqlstore.New(&f, w, w), w: w, r: w, path: plainPath}
	defer plain.Close()
	chained, err := Open(ctx, filepath.Join(b.TempDir(), "chained.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer chained.Close()
	storetest.BenchAuditChainCreates(b, 4, []storetest.ChainVariant{
		{Name: "plain", Store: plain},
		{Name: "chained", Store: chained},
	})
}
