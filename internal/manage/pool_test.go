package manage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/testclock"
)

// TestTokenWritesNeedOneConnection edits, rotates and disables a token on a
// PostgreSQL store whose pool holds a single connection. A write that
// read the token's app inside its transaction would wait for a second
// connection while holding the only one, until its context ended: with a
// pool filled by such writes (and, under load, by the usage flush waiting
// for their row locks) requests hung and then failed with 500.
func TestTokenWritesNeedOneConnection(t *testing.T) {
	db := pgtest.NewDatabase(t)
	sep := "?"
	if strings.Contains(db, "?") {
		sep = "&"
	}
	st, err := postgres.Open(context.Background(), db+sep+"pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := newStaleService(st, testclock.New(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := tokend.SystemActor
	app, err := svc.CreateApp(ctx, a, tokend.AppInput{Name: "pool", RotatedSecretPolicy: tokend.RotatedDisable})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.CreateToken(ctx, a, tokend.TokenInput{AppID: app.ID, Name: "one", ExpiresIn: "unlimited"})
	if err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	if _, err := svc.UpdateToken(ctx, a, tok.ID, tokend.TokenPatch{Name: &name}, 0); err != nil {
		t.Fatalf("edit with a pool of one connection: %v", err)
	}
	if _, _, err := svc.RotateToken(ctx, a, tok.ID, 0, 0); err != nil {
		t.Fatalf("rotate with a pool of one connection: %v", err)
	}
	ev := tokend.Event{Time: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), Actor: "system", ActorName: "tokend verification", Action: tokend.ActionTokenOldSecret, TokenID: tok.ID, AppID: app.ID}
	if err := svc.DisableRotated(ctx, tok.ID, ev); err != nil {
		t.Fatalf("disable for a rotated-out secret with a pool of one connection: %v", err)
	}
	if got, err := st.Token(ctx, tok.ID); err != nil || got.Status != tokend.StatusDisabled {
		t.Fatalf("after DisableRotated: %v %v, want disabled", got.Status, err)
	}
}
