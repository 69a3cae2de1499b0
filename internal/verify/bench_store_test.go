package verify

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/secret"
)

// A cached token with max_uses on a real store: every VALID is one durable
// conditional update (Store.TakeUse), the one storage write of the
// verification path. "unlimited" is the same token without max_uses, for
// comparison: no write at all.
func BenchmarkVerifyMaxUses(b *testing.B) {
	stores := map[string]func(b *testing.B) tokend.Store{
		"sqlite": func(b *testing.B) tokend.Store {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "tokend.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(b *testing.B) tokend.Store {
			if os.Getenv("TOKEND_TEST_POSTGRES") == "" {
				b.Skip("TOKEND_TEST_POSTGRES is not set")
			}
			s, err := postgres.Open(b.Context(), pgtest.WithSchema(b, pgtest.NewDatabase(b)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, limited := range []bool{true, false} {
			sub := name + "/unlimited"
			if limited {
				sub = name + "/max_uses"
			}
			b.Run(sub, func(b *testing.B) {
				store := stores[name](b)
				h := benchHarness(b)
				h.e = New(Options{Store: store, Hasher: h.hasher})
				now := time.Now().UTC().Truncate(time.Microsecond)
				app := tokend.App{ID: "app_b", Name: "bench", TokenPrefix: "tkd", Permissions: []string{}, CreatedAt: now, UpdatedAt: now, Version: 1}
				if err := store.CreateApp(b.Context(), app, tokend.Event{Time: now, Actor: "system", Action: tokend.ActionAppCreate, AppID: "app_b"}); err != nil {
					b.Fatal(err)
				}
				sec, err := secret.Generate("tkd")
				if err != nil {
					b.Fatal(err)
				}
				sum := h.hasher.Sum(sec.Reveal())
				tok := tokend.Token{
					ID: "tok_bench", AppID: "app_b", Name: "bench", Type: tokend.TypeStandard, Access: tokend.AccessFull,
					Status: tokend.StatusActive, Masked: sec.String(), CreatedAt: now, UpdatedAt: now, Version: 1, SecretHash: sum[:],
				}
				if limited {
					tok.MaxUses = ptr(int64(1 << 62))
				}
				if err := store.CreateToken(b.Context(), tok, tokend.Event{Time: now, Actor: "system", Action: tokend.ActionTokenCreate, AppID: "app_b", TokenID: "tok_bench"}); err != nil {
					b.Fatal(err)
				}
				loop(b, h, tokend.VerifyRequest{Token: sec.Reveal(), IP: "192.0.2.1"}, tokend.CodeValid)
			})
		}
	}
}
