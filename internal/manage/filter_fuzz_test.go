package manage_test

import (
	"context"
	"encoding/base64"
	"os"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/secret"
)

// FuzzListFilters: whatever a caller puts in the filters of the token list,
// its count, the audit log and the events, the answer is a page or
// VALIDATION_FAILED, never a store failure, on SQLite and (with TOKEND_TEST_POSTGRES set) on
// PostgreSQL, which refuses NUL and invalid UTF-8 where SQLite does not.
// Seeds: testdata/fuzz/FuzzListFilters.
func FuzzListFilters(f *testing.F) {
	services := []*manage.Service{}
	sq, app := newService(f)
	services = append(services, sq)
	if os.Getenv("TOKEND_TEST_POSTGRES") != "" {
		st, err := postgres.Open(context.Background(), pgtest.NewDatabase(f))
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { st.Close() })
		h, _ := secret.NewHasher([]byte("fuzz-pepper-fuzz-pepper-fuzz-pepper"))
		svc := manage.New(manage.Options{Store: st, Hasher: h})
		if _, err := svc.CreateApp(context.Background(), tokend.SystemActor, tokend.AppInput{Name: "fuzz"}); err != nil {
			f.Fatal(err)
		}
		services = append(services, svc)
	}
	for _, svc := range services {
		for _, name := range []string{"ci", "deploy", "50% off"} {
			apps, err := svc.Apps(context.Background(), tokend.SystemActor, tokend.AppFilter{})
			if err != nil {
				f.Fatal(err)
			}
			if _, _, err := svc.CreateToken(context.Background(), tokend.SystemActor, tokend.TokenInput{AppID: apps.Items[0].ID, Name: name}); err != nil {
				f.Fatal(err)
			}
		}
	}
	cur := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	f.Add("ci", app.ID, "active", "standard", "", "token.create", 10)
	f.Add("\x00", "app_\x00", "", "", cur("t:-9223372036854775808:a"), "\x00", 0)
	f.Add("\xff", "app_\xff", "expired", "plugin", cur("t:1:tok_\xff"), "token.\xff", 1)
	f.Add("%_\\", "' OR 1=1 --", "sleeping", "root", cur("e:0"), "", -1)
	f.Add("acct_42", app.ID, "", "", "", "a b", 5)
	f.Add("acct/42?#%", app.ID, "", "", "", "\u202e", 0)
	f.Fuzz(func(t *testing.T, q, appID, status, typ, cursor, action string, limit int) {
		ctx := context.Background()
		a := tokend.SystemActor
		for _, svc := range services {
			tf := tokend.TokenFilter{Query: q, AppID: appID, Status: tokend.Status(status), Type: tokend.TokenType(typ), Cursor: cursor, Limit: limit}
			_, err := svc.Tokens(ctx, a, tf)
			wantPageOrInvalid(t, "Tokens", err)
			_, err = svc.CountTokens(ctx, a, tf)
			wantPageOrInvalid(t, "CountTokens", err)
			// The owner filter and an owner's revoke-all take any string too.
			owned := tf
			owned.OwnerID = action
			_, err = svc.Tokens(ctx, a, owned)
			wantPageOrInvalid(t, "Tokens(owner)", err)
			_, err = svc.CountTokens(ctx, a, owned)
			wantPageOrInvalid(t, "CountTokens(owner)", err)
			if _, err := svc.RevokeOwner(ctx, a, appID, q); err != nil && tokend.CodeOf(err) != tokend.ECodeNotFound {
				t.Fatalf("RevokeOwner(%q, %q): %v, want a count or NOT_FOUND", appID, q, err)
			}
			_, err = svc.Events(ctx, a, tokend.EventFilter{AppID: appID, TokenID: q, Action: action, Cursor: cursor, Limit: limit})
			wantPageOrInvalid(t, "Events", err)
			_, err = svc.Notifications(ctx, a, tokend.NotificationFilter{Type: action, AppID: appID, TokenID: q, Cursor: cursor, Limit: limit})
			wantPageOrInvalid(t, "Notifications", err)
			_, err = svc.Notifications(ctx, a, tokend.NotificationFilter{Type: tokend.EventTokenCreated, AppID: appID, TokenID: status, Cursor: cursor, Limit: limit})
			wantPageOrInvalid(t, "Notifications", err)
			_, err = svc.Apps(ctx, a, tokend.AppFilter{Cursor: cursor, Limit: limit})
			wantPageOrInvalid(t, "Apps", err)
			_, err = svc.Token(ctx, a, appID)
			if err != nil && tokend.CodeOf(err) != tokend.ECodeNotFound {
				t.Fatalf("Token(%q): %v, want a token or NOT_FOUND", appID, err)
			}
		}
	})
}

func wantPageOrInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && tokend.CodeOf(err) != tokend.ECodeInvalid {
		t.Fatalf("%s: %v, want a page or VALIDATION_FAILED", what, err)
	}
}
