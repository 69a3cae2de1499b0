package manage_test

import (
	"context"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
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
