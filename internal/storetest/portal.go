package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokend/tokend"
)

// portalTests check tokend.PortalStore: the customer portal's single-use
// links and its sessions.
var portalTests = []test{
	portal("a link round-trips and is consumed once", testPortalLinkOnce),
	portal("an expired link is refused", testPortalLinkExpired),
	portal("a link: of concurrent consumers exactly one wins", testPortalLinkRace),
	portal("sessions: round trip, touch forward only, delete, sweep", testPortalSessions),
	{name: "an app's portal settings round-trip and clear", run: testAppPortalSettings},
}

func testAppPortalSettings(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	a := newApp("app_branded")
	a.Portal = &tokend.AppPortal{ProductName: "Acme", LogoURL: "https://cdn.example.com/logo.png", AccentColor: "#2557d6",
		SupportURL: "https://help.example.com/", FrameAncestors: []string{"https://app.example.com", "https://admin.example.com"}}
	mustCreateApp(t, s, a)
	got, err := s.App(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(a.Portal, got.Portal); d != "" {
		t.Errorf("portal settings (-stored +read):\n%s", d)
	}
	_, err = s.UpdateApp(ctx, a.ID, func(a *tokend.App) (tokend.Event, error) {
		a.Portal = nil
		return newEvent(tokend.ActionAppUpdate, a.ID, ""), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err = s.App(ctx, a.ID); err != nil || got.Portal != nil {
		t.Errorf("portal settings after clearing: %+v, %v", got.Portal, err)
	}
}

func portal(name string, run func(t *testing.T, ps tokend.PortalStore)) test {
	return test{name: name, run: func(t *testing.T, s tokend.Store) {
		ps, ok := s.(tokend.PortalStore)
		if !ok {
			t.Fatalf("%T does not implement tokend.PortalStore", s)
		}
		run(t, ps)
	}}
}

func newGrant() tokend.PortalGrant {
	return tokend.PortalGrant{
		AppID: "app_shop", OwnerID: "acct_42", OwnerName: "Ada's shop",
		User:          tokend.PortalUser{ID: "u_7", Name: "Ada", Email: "ada@example.com"},
		ReturnURL:     "https://shop.example.com/settings",
		AllowedAccess: []tokend.Access{tokend.AccessReadOnly, tokend.AccessCustom}, AllowedPermissions: []string{"orders:read"},
		CreatedBy: "token:tok_backend",
	}
}

func newLink(k string) tokend.PortalLink {
	return tokend.PortalLink{IDHash: hashOf("link " + k), Grant: newGrant(), CreatedAt: t0, ExpiresAt: at(5 * time.Minute)}
}

func testPortalLinkOnce(t *testing.T, ps tokend.PortalStore) {
	ctx := t.Context()
	l := newLink("a")
	if err := ps.CreatePortalLink(ctx, l); err != nil {
		t.Fatalf("CreatePortalLink: %v", err)
	}
	if err := ps.CreatePortalLink(ctx, newLink("b")); err != nil {
		t.Fatalf("CreatePortalLink b: %v", err)
	}
	got, err := ps.ConsumePortalLink(ctx, l.IDHash, at(time.Minute))
	if err != nil {
		t.Fatalf("ConsumePortalLink: %v", err)
	}
	if d := cmp.Diff(l, got); d != "" {
		t.Errorf("consumed link (-stored +read):\n%s", d)
	}
	_, err = ps.ConsumePortalLink(ctx, l.IDHash, at(time.Minute))
	wantErrIs(t, "a second ConsumePortalLink", err, tokend.ErrNotFound)
	_, err = ps.ConsumePortalLink(ctx, hashOf("link never minted"), at(time.Minute))
	wantErrIs(t, "ConsumePortalLink of an unknown link", err, tokend.ErrNotFound)
	// The other link is untouched.
	if _, err := ps.ConsumePortalLink(ctx, newLink("b").IDHash, at(time.Minute)); err != nil {
		t.Errorf("ConsumePortalLink b: %v", err)
	}
}

func testPortalLinkExpired(t *testing.T, ps tokend.PortalStore) {
	ctx := t.Context()
	l := newLink("a")
	if err := ps.CreatePortalLink(ctx, l); err != nil {
		t.Fatalf("CreatePortalLink: %v", err)
	}
	// At its expiry the link is over.
	_, err := ps.ConsumePortalLink(ctx, l.IDHash, l.ExpiresAt)
	wantErrIs(t, "ConsumePortalLink at its expiry", err, tokend.ErrNotFound)
	if n, err := ps.DeleteExpiredPortal(ctx, l.ExpiresAt, time.Hour); err != nil || n != 1 {
		t.Errorf("DeleteExpiredPortal = %d, %v; want 1", n, err)
	}
	_, err = ps.ConsumePortalLink(ctx, l.IDHash, at(time.Minute))
	wantErrIs(t, "ConsumePortalLink of a swept link", err, tokend.ErrNotFound)
}

func testPortalLinkRace(t *testing.T, ps tokend.PortalStore) {
	l := newLink("race")
	if err := ps.CreatePortalLink(t.Context(), l); err != nil {
		t.Fatalf("CreatePortalLink: %v", err)
	}
	oneWinner(t, "a link", tokend.ErrNotFound, func() error {
		_, err := ps.ConsumePortalLink(t.Context(), l.IDHash, at(time.Minute))
		return err
	})
}

func testPortalSessions(t *testing.T, ps tokend.PortalStore) {
	ctx := t.Context()
	s := tokend.PortalSession{
		IDHash: hashOf("session a"), Grant: newGrant(), CSRF: "csrf-a",
		CreatedAt: t0, LastSeenAt: t0, ExpiresAt: at(8 * time.Hour),
	}
	if err := ps.CreatePortalSession(ctx, s); err != nil {
		t.Fatalf("CreatePortalSession: %v", err)
	}
	got, err := ps.PortalSession(ctx, s.IDHash)
	if err != nil {
		t.Fatalf("PortalSession: %v", err)
	}
	if d := cmp.Diff(s, got); d != "" {
		t.Errorf("session (-stored +read):\n%s", d)
	}
	if err := ps.TouchPortalSession(ctx, s.IDHash, at(10*time.Minute)); err != nil {
		t.Fatalf("TouchPortalSession: %v", err)
	}
	if err := ps.TouchPortalSession(ctx, s.IDHash, at(time.Minute)); err != nil {
		t.Fatalf("TouchPortalSession back: %v", err)
	}
	if got, _ := ps.PortalSession(ctx, s.IDHash); !got.LastSeenAt.Equal(at(10 * time.Minute)) {
		t.Errorf("LastSeenAt = %v, want %v (never moved back)", got.LastSeenAt, at(10*time.Minute))
	}
	err = ps.TouchPortalSession(ctx, hashOf("no such session"), at(time.Minute))
	wantErrIs(t, "TouchPortalSession of an unknown session", err, tokend.ErrNotFound)

	// Idle for 30 minutes after +10m: swept at +41m, not at +40m.
	if n, err := ps.DeleteExpiredPortal(ctx, at(40*time.Minute), 30*time.Minute); err != nil || n != 0 {
		t.Errorf("DeleteExpiredPortal at +40m = %d, %v; want 0", n, err)
	}
	if n, err := ps.DeleteExpiredPortal(ctx, at(41*time.Minute), 30*time.Minute); err != nil || n != 1 {
		t.Errorf("DeleteExpiredPortal at +41m = %d, %v; want 1", n, err)
	}
	_, err = ps.PortalSession(ctx, s.IDHash)
	wantErrIs(t, "PortalSession after the sweep", err, tokend.ErrNotFound)

	s.IDHash = hashOf("session b")
	if err := ps.CreatePortalSession(ctx, s); err != nil {
		t.Fatalf("CreatePortalSession b: %v", err)
	}
	for range 2 {
		if err := ps.DeletePortalSession(ctx, s.IDHash); err != nil {
			t.Errorf("DeletePortalSession: %v", err)
		}
	}
	_, err = ps.PortalSession(ctx, s.IDHash)
	wantErrIs(t, "PortalSession after sign-out", err, tokend.ErrNotFound)
}
