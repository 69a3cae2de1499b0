package storetest

import (
	"testing"

	"github.com/tokend/tokend"
)

var deleteTests = []test{
	{name: "token delete checks the version in its transaction", run: testTokenDeleteVersion},
	{name: "app delete checks the version in its transaction", run: testAppDeleteVersion},
}

// testTokenDeleteVersion: a delete that expects a version the token no
// longer has is stale and changes nothing; with the stored version, or 0,
// it deletes.
func testTokenDeleteVersion(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_a1", "app_a", "one"))
	mustCreateToken(t, s, newToken("tok_a2", "app_a", "two"))
	edited, err := s.UpdateToken(ctx, "tok_a1", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Description = "edited"
		return newEvent(tokend.ActionTokenUpdate, tok.AppID, tok.ID), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	events := countEvents(t, s)
	err = s.DeleteToken(ctx, "tok_a1", edited.Version-1, newEvent(tokend.ActionTokenDelete, "app_a", "tok_a1"))
	wantErrIs(t, "DeleteToken with an old version", err, tokend.ErrStale)
	if _, err := s.Token(ctx, "tok_a1"); err != nil {
		t.Errorf("a stale delete removed the token: %v", err)
	}
	if n := countEvents(t, s); n != events {
		t.Errorf("a stale delete wrote %d events", n-events)
	}
	err = s.DeleteToken(ctx, "tok_nope", 3, newEvent(tokend.ActionTokenDelete, "app_a", "tok_nope"))
	wantErrIs(t, "DeleteToken of a missing token with a version", err, tokend.ErrNotFound)
	if err := s.DeleteToken(ctx, "tok_a1", edited.Version, newEvent(tokend.ActionTokenDelete, "app_a", "tok_a1")); err != nil {
		t.Fatalf("DeleteToken with the stored version: %v", err)
	}
	if err := s.DeleteToken(ctx, "tok_a2", 0, newEvent(tokend.ActionTokenDelete, "app_a", "tok_a2")); err != nil {
		t.Fatalf("DeleteToken with version 0: %v", err)
	}
	for _, id := range []string{"tok_a1", "tok_a2"} {
		_, err := s.Token(ctx, id)
		wantErrIs(t, "Token after delete", err, tokend.ErrNotFound)
	}
	if n := countEvents(t, s); n != events+2 {
		t.Errorf("%d events after two deletes, want %d", n, events+2)
	}
}

func testAppDeleteVersion(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_a1", "app_a", "one"))
	edited, err := s.UpdateApp(ctx, "app_a", func(a *tokend.App) (tokend.Event, error) {
		a.Name = "edited"
		return newEvent(tokend.ActionAppUpdate, a.ID, ""), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	events := countEvents(t, s)
	err = s.DeleteApp(ctx, "app_a", edited.Version-1, newEvent(tokend.ActionAppDelete, "app_a", ""))
	wantErrIs(t, "DeleteApp with an old version", err, tokend.ErrStale)
	if _, err := s.App(ctx, "app_a"); err != nil {
		t.Errorf("a stale delete removed the app: %v", err)
	}
	if _, err := s.Token(ctx, "tok_a1"); err != nil {
		t.Errorf("a stale delete removed the app's token: %v", err)
	}
	if n := countEvents(t, s); n != events {
		t.Errorf("a stale delete wrote %d events", n-events)
	}
	err = s.DeleteApp(ctx, "app_nope", 2, newEvent(tokend.ActionAppDelete, "app_nope", ""))
	wantErrIs(t, "DeleteApp of a missing app with a version", err, tokend.ErrNotFound)
	if err := s.DeleteApp(ctx, "app_a", edited.Version, newEvent(tokend.ActionAppDelete, "app_a", "")); err != nil {
		t.Fatalf("DeleteApp with the stored version: %v", err)
	}
	_, err = s.App(ctx, "app_a")
	wantErrIs(t, "App after delete", err, tokend.ErrNotFound)
}
