package manage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/secret"
)

func newService(tb testing.TB) (*manage.Service, tokend.App) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, tb.TempDir()+"/tokend.db")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	h, _ := secret.NewHasher([]byte("bench-pepper-bench-pepper-bench-pepper"))
	svc := manage.New(manage.Options{Store: st, Hasher: h})
	app, err := svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "bench", Permissions: []string{"orders:read"}})
	if err != nil {
		tb.Fatal(err)
	}
	return svc, app
}

func TestNoEscalationThroughEdits(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if err := svc.EnsureSystemApp(ctx); err != nil {
		t.Fatal(err)
	}
	weak := tokend.Actor{Kind: "token", ID: "tok_weak", Permissions: []string{tokend.PermTokensRead, tokend.PermTokensWrite}}
	tok, _, err := svc.CreateToken(ctx, weak, tokend.TokenInput{AppID: tokend.SystemAppID, Name: "helper", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermTokensRead}})
	if err != nil {
		t.Fatalf("creating a weaker admin token: %v", err)
	}
	full := tokend.AccessFull
	_, err = svc.UpdateToken(ctx, weak, tok.ID, tokend.TokenPatch{Access: &full}, 0)
	if tokend.CodeOf(err) != tokend.ECodeForbidden {
		t.Fatalf("raising an admin token above oneself: %v", err)
	}
	owner, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RevokeToken(ctx, weak, owner.ID, 0); tokend.CodeOf(err) != tokend.ECodeForbidden {
		t.Fatalf("revoking a stronger admin token: %v", err)
	}
}

// BenchmarkCreateToken measures issuing a token end to end: validation,
// secret generation, HMAC, and a durable SQLite insert with its audit row.
func BenchmarkCreateToken(b *testing.B) {
	svc, app := newService(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: fmt.Sprintf("t%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
}
