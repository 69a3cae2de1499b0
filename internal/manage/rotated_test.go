package manage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/secret"
)

// With the app's rotated_secret_policy disable, a rotated-out secret
// presented after its grace disables the token: one transaction writes the
// token, one audit row (token.disable) and both events; the caches are told,
// so that the new secret answers DISABLED at once. Enabled again, the token
// is watched again: the next use of the old secret disables it again,
// within the hour.
func TestRotatedSecretPolicyDisables(t *testing.T) {
	for name, open := range staleStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := testclock.New(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
			st := open()
			h, _ := secret.NewHasher([]byte("rotated-pepper-rotated-pepper-rotated"))
			var svc *manage.Service
			engine := verify.New(verify.Options{Store: st, Hasher: h, Now: clock.Now,
				Disable: func(ctx context.Context, id string, ev tokend.Event) error { return svc.DisableRotated(ctx, id, ev) }})
			svc = manage.New(manage.Options{Store: st, Hasher: h, Now: clock.Now, Invalidator: engine})
			a := tokend.SystemActor
			app, err := svc.CreateApp(ctx, a, tokend.AppInput{Name: "strict", RotatedSecretPolicy: tokend.RotatedDisable})
			if err != nil {
				t.Fatal(err)
			}
			tok, oldSec, err := svc.CreateToken(ctx, a, tokend.TokenInput{AppID: app.ID, Name: "ci", ExpiresIn: "unlimited"})
			if err != nil {
				t.Fatal(err)
			}
			_, newSec, err := svc.RotateToken(ctx, a, tok.ID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			verifyCode := func(sec secret.Secret) tokend.Code {
				t.Helper()
				res, err := engine.Verify(ctx, tokend.VerifyRequest{Token: sec.Reveal(), IP: "198.51.100.4",
					UserAgent: "python-requests/2.32", Endpoint: tokend.EndpointVerify})
				if err != nil {
					t.Fatal(err)
				}
				return res.Code
			}
			// useOld presents the old secret; once the engine flushed, the
			// new one answers DISABLED.
			useOld := func(when string) {
				t.Helper()
				if c := verifyCode(oldSec); c != tokend.CodeRotated {
					t.Fatalf("old secret %s: %s, want ROTATED", when, c)
				}
				if err := engine.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if c := verifyCode(newSec); c != tokend.CodeDisabled {
					t.Fatalf("new secret after the policy ran (%s): %s, want DISABLED", when, c)
				}
			}
			clock.Advance(time.Second)
			useOld("at first")
			got, err := svc.Token(ctx, a, tok.ID)
			if err != nil || got.Status != tokend.StatusDisabled {
				t.Fatalf("token = %s, %v; want disabled", got.Status, err)
			}
			evs := disableEvents(t, svc, tok.ID)
			if len(evs) != 1 {
				t.Fatalf("disable audit rows = %d, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Details["reason"] != "rotated_secret_used" || ev.Details["user_agent"] != "python-requests/2.32" ||
				ev.Details["endpoint"] != tokend.EndpointVerify || ev.IP != "198.51.100.4" {
				t.Errorf("audit row = %+v", ev)
			}
			types := noticeTypes(t, svc, tok.ID)
			for _, want := range []string{tokend.EventTokenDisabled, tokend.EventTokenRotatedSecretUsed} {
				if !slices.Contains(types, want) {
					t.Errorf("events %v lack %s", types, want)
				}
			}
			// Enabled again within the hour: watched again.
			if _, err := svc.EnableToken(ctx, a, tok.ID, 0); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute)
			useOld("after the token was enabled again")
			if n := len(disableEvents(t, svc, tok.ID)); n != 2 {
				t.Errorf("disable audit rows = %d, want 2", n)
			}
			countUsed := func() int {
				n := 0
				for _, typ := range noticeTypes(t, svc, tok.ID) {
					if typ == tokend.EventTokenRotatedSecretUsed {
						n++
					}
				}
				return n
			}
			// Two instances, each with its own hourly bound, see the old
			// secret before either disabled the token: one disables it,
			// raising the event with that; the other raises none.
			if _, err := svc.EnableToken(ctx, a, tok.ID, 0); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Hour)
			used := countUsed()
			other := verify.New(verify.Options{Store: st, Hasher: h, Now: clock.Now,
				Disable: func(ctx context.Context, id string, ev tokend.Event) error { return svc.DisableRotated(ctx, id, ev) }})
			for _, e := range []*verify.Engine{engine, other} {
				if res, err := e.Verify(ctx, tokend.VerifyRequest{Token: oldSec.Reveal(), IP: "198.51.100.5"}); err != nil || res.Code != tokend.CodeRotated {
					t.Fatalf("old secret on two instances: %v, %v", res.Code, err)
				}
			}
			for _, e := range []*verify.Engine{engine, other} {
				if err := e.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n := countUsed(); n != used+1 {
				t.Errorf("token.rotated_secret_used = %d after two instances' uses, want %d", n, used+1)
			}
			used++
			// Policy set back to notify: a later use raises the event and
			// leaves the token as it is.
			notify := tokend.RotatedNotify
			if _, err := svc.UpdateApp(ctx, a, app.ID, tokend.AppPatch{RotatedSecretPolicy: &notify}, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.EnableToken(ctx, a, tok.ID, 0); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Hour)
			if c := verifyCode(oldSec); c != tokend.CodeRotated {
				t.Fatalf("old secret under notify: %s", c)
			}
			if err := engine.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if c := verifyCode(newSec); c != tokend.CodeValid {
				t.Errorf("new secret under notify: %s, want VALID", c)
			}
			if n := countUsed(); n != used+1 {
				t.Errorf("token.rotated_secret_used = %d under notify, want %d", n, used+1)
			}
		})
	}
}

func noticeTypes(t *testing.T, svc *manage.Service, tokenID string) []string {
	t.Helper()
	es, ok := svc.Store().(tokend.EventStore)
	if !ok {
		t.Fatal("the store keeps no events")
	}
	page, err := es.Notifications(context.Background(), tokend.NotificationFilter{TokenID: tokenID})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, n := range page.Items {
		types = append(types, n.Type)
	}
	return types
}
