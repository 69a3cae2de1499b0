package manage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/secret"
)

// The customer portal never shows, creates or acts on a decoy, even one
// planted among its owner's tokens.
func TestPortalNeverSeesADecoy(t *testing.T) {
	svc, app := newService(t)
	ctx := context.Background()
	decoy, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, OwnerID: "acct_1", Name: "bait", Decoy: true})
	if err != nil || !decoy.Decoy {
		t.Fatalf("create decoy: %+v, %v", decoy, err)
	}
	real, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, OwnerID: "acct_1", Name: "real"})
	if err != nil {
		t.Fatal(err)
	}
	portal := manage.PortalActor(tokend.PortalGrant{AppID: app.ID, OwnerID: "acct_1", User: tokend.PortalUser{ID: "u1"},
		AllowedAccess: []tokend.Access{tokend.AccessReadOnly}}, "192.0.2.1")

	for _, f := range []tokend.TokenFilter{{AppID: app.ID}, {AppID: app.ID, Decoy: true}} {
		page, err := svc.Tokens(ctx, portal, f)
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != real.ID {
			t.Errorf("portal list %+v = %+v, %v; want only the real token", f, page.Items, err)
		}
		if n, err := svc.CountTokens(ctx, portal, f); err != nil || n != 1 {
			t.Errorf("portal count %+v = %d, %v; want 1", f, n, err)
		}
	}
	if _, err := svc.Token(ctx, portal, decoy.ID); tokend.CodeOf(err) != tokend.ECodeNotFound {
		t.Errorf("portal reads a decoy: %v", err)
	}
	if _, err := svc.RevokeToken(ctx, portal, decoy.ID, 0); tokend.CodeOf(err) != tokend.ECodeNotFound {
		t.Errorf("portal revokes a decoy: %v", err)
	}
	if err := svc.DeleteToken(ctx, portal, decoy.ID, 0); tokend.CodeOf(err) != tokend.ECodeNotFound {
		t.Errorf("portal deletes a decoy: %v", err)
	}
	if _, _, err := svc.CreateToken(ctx, portal, tokend.TokenInput{AppID: app.ID, Name: "mine", Decoy: true}); err == nil {
		t.Error("the portal created a decoy")
	}
	// An administrator sees it, apart.
	page, err := svc.Tokens(ctx, tokend.SystemActor, tokend.TokenFilter{AppID: app.ID, Decoy: true})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != decoy.ID {
		t.Errorf("admin decoy list = %+v, %v", page.Items, err)
	}
}

// The scheduler leaves decoys alone: no token.expiring or token.expired
// about them, and the stale-token policy never disables one (no noise; a
// decoy is never used, by design).
func TestSchedulerLeavesDecoysAlone(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(eventT0)
	svc := newStaleService(staleStores(t)["sqlite"](), clock, nil)
	period := tokend.Duration(30 * 24 * time.Hour)
	app := must(svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "shop", DisableUnusedAfter: &period}))
	soon := clock.Now().Add(2 * 24 * time.Hour)
	decoy := must3(svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "bait", ExpiresAt: &soon, Decoy: true}))
	idle := must3(svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "idle", ExpiresIn: "unlimited"}))
	must3(svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "real", ExpiresAt: &soon}))
	seen := 0
	if got := raise(t, svc, &seen); len(got) != 1 || got[0].token != "real" {
		t.Errorf("notices = %v, want only the real token's", got)
	}
	clock.Advance(31 * 24 * time.Hour)
	raise(t, svc, &seen)
	if n, err := svc.DisableUnused(ctx); err != nil || n != 1 {
		t.Fatalf("DisableUnused = %d, %v; want the idle token alone", n, err)
	}
	evs := allEvents(t, svc, tokend.NotificationFilter{TokenID: decoy.ID})
	if got := eventTypes(evs); !slices.Equal(got, []string{tokend.EventTokenCreated}) {
		t.Errorf("events of the decoy = %v, want its creation alone", got)
	}
	if got := must(svc.Token(ctx, tokend.SystemActor, decoy.ID)); got.Status == tokend.StatusDisabled || got.Version != decoy.Version {
		t.Errorf("decoy changed by the scheduler: %+v", got)
	}
	if got := must(svc.Token(ctx, tokend.SystemActor, idle.ID)); got.Status != tokend.StatusDisabled {
		t.Errorf("idle real token status = %s, want disabled", got.Status)
	}
}

func must3[T, U any](v T, _ U, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// recordingInvalidator keeps the token ids it is told of.
type recordingInvalidator struct{ tokens []string }

func (r *recordingInvalidator) TokenChanged(id string) { r.tokens = append(r.tokens, id) }
func (r *recordingInvalidator) AppChanged(string)      {}

// A decoy planted among an owner's tokens shows through nothing the owner
// can do, in the customer portal or with an owner-scoped admin token: its
// name is free for the owner's own token, and it counts for nothing
// against max_tokens_per_owner (the review's 4-decoy-portal.sh).
func TestADecoyShowsThroughNoNameOrLimit(t *testing.T) {
	actors := map[string]func(appID string) tokend.Actor{
		"portal": func(appID string) tokend.Actor {
			return manage.PortalActor(tokend.PortalGrant{AppID: appID, OwnerID: "acct_d", User: tokend.PortalUser{ID: "u1"},
				AllowedAccess: []tokend.Access{tokend.AccessReadOnly}}, "192.0.2.1")
		},
		"scoped admin token": func(string) tokend.Actor {
			return tokend.Actor{Kind: "token", ID: "tok_scoped", Name: "backend", Permissions: tokend.AdminPermissions,
				Scope: &tokend.AdminScope{OwnerID: "acct_d"}}
		},
	}
	for name, actorOf := range actors {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st, err := sqlite.Open(ctx, t.TempDir()+"/tokend.db")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			h, _ := secret.NewHasher([]byte("test-pepper-test-pepper-test-pepper"))
			inval := &recordingInvalidator{}
			svc := manage.New(manage.Options{Store: st, Hasher: h, Invalidator: inval})
			app := must(svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "shop", MaxTokensPerOwner: ptr(2)}))
			actor := actorOf(app.ID)
			decoy := must3(svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, OwnerID: "acct_d", Name: "aws backup key", Decoy: true}))
			if !slices.Equal(inval.tokens, []string{decoy.ID}) {
				t.Errorf("invalidations after a decoy's creation = %v, want its id (the engines re-read their decoys)", inval.tokens)
			}
			for _, n := range []string{"aws backup key", "two"} {
				if _, _, err := svc.CreateToken(ctx, actor, tokend.TokenInput{AppID: app.ID, Name: n, ExpiresIn: "30d"}); err != nil {
					t.Fatalf("create %q beside the decoy: %v", n, err)
				}
			}
			// The limit holds for the owner's own tokens, and a name of
			// theirs is still theirs alone.
			_, _, err = svc.CreateToken(ctx, actor, tokend.TokenInput{AppID: app.ID, Name: "three", ExpiresIn: "30d"})
			if !tokend.IsOwnerLimit(err) {
				t.Errorf("a third token: %v, want the owner limit", err)
			}
			// Another decoy may join a full owner, under a taken name.
			must3(svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, OwnerID: "acct_d", Name: "two", Decoy: true}))
			if len(inval.tokens) != 2 {
				t.Errorf("invalidations = %v, want one per decoy created and none for real tokens", inval.tokens)
			}
		})
	}
}
