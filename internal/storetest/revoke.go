package storetest

import (
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var revokeTests = []test{
	{name: "revokes every live token of the app and no other", run: testRevokeApp},
	{name: "an app without live tokens answers zero", run: testRevokeNone},
}

func testRevokeApp(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))

	active := newToken("tok_a_active", "app_a", "active")
	disabled := newToken("tok_a_disabled", "app_a", "disabled")
	disabled.Status = tokend.StatusDisabled
	expired := newToken("tok_a_expired", "app_a", "expired")
	expired.ExpiresAt = ptr(at(-time.Hour))
	before := newToken("tok_a_before", "app_a", "revoked before")
	before.Status, before.RevokedAt, before.Version = tokend.StatusRevoked, ptr(at(-time.Hour)), 3
	other := newToken("tok_b_active", "app_b", "active")
	for _, tok := range []tokend.Token{active, disabled, expired, before, other} {
		mustCreateToken(t, s, tok)
	}

	when := at(time.Hour)
	ev := newEvent(tokend.ActionAppRevokeAll, "app_a", "")
	ev.Time = when
	ev.Details = map[string]any{"reason": "leaked in a log"}
	n, err := s.RevokeAppTokens(ctx, "app_a", when, ev)
	if err != nil {
		t.Fatalf("RevokeAppTokens: %v", err)
	}
	if n != 3 {
		t.Errorf("revoked %d tokens, want 3 (active, disabled, expired)", n)
	}
	for _, tok := range []tokend.Token{active, disabled, expired} {
		want := tok
		want.Status, want.RevokedAt, want.UpdatedAt, want.Version = tokend.StatusRevoked, &when, when, tok.Version+1
		if d := diff(want, mustToken(t, s, tok.ID)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tok.ID, d)
		}
	}
	if d := diff(before, mustToken(t, s, before.ID)); d != "" {
		t.Errorf("a token revoked before is left alone (-want +got):\n%s", d)
	}
	if d := diff(other, mustToken(t, s, other.ID)); d != "" {
		t.Errorf("another app's token is left alone (-want +got):\n%s", d)
	}

	wantEv := ev
	wantEv.Details = map[string]any{"reason": "leaked in a log", "count": float64(3)}
	got := eventsOf(t, s, tokend.EventFilter{Action: tokend.ActionAppRevokeAll})
	if d := diff([]tokend.Event{wantEv}, got, ignoreEventID); d != "" {
		t.Errorf("revoke-all events: one, with the count (-want +got):\n%s", d)
	}
	if len(ev.Details) != 1 {
		t.Errorf("the caller's Details map was changed: %v", ev.Details)
	}
	if n := len(eventsOf(t, s, tokend.EventFilter{Action: tokend.ActionTokenRevoke})); n != 0 {
		t.Errorf("%d per-token revoke events; the one app event is the record", n)
	}

	// The names are free again.
	mustCreateToken(t, s, newToken("tok_a_new", "app_a", "active"))
}

func testRevokeNone(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	gone := newToken("tok_gone", "app_a", "gone")
	gone.Status, gone.RevokedAt = tokend.StatusRevoked, ptr(t0)
	mustCreateToken(t, s, gone)
	for i := range 2 {
		n, err := s.RevokeAppTokens(t.Context(), "app_a", at(time.Hour), newEvent(tokend.ActionAppRevokeAll, "app_a", ""))
		if err != nil || n != 0 {
			t.Errorf("call %d: RevokeAppTokens = %d, %v; want 0, nil", i+1, n, err)
		}
	}
	evs := eventsOf(t, s, tokend.EventFilter{Action: tokend.ActionAppRevokeAll})
	if len(evs) != 2 || evs[0].Details["count"] != float64(0) {
		t.Errorf("revoke-all events = %+v; want two, each with count 0", evs)
	}
	if d := diff(gone, mustToken(t, s, "tok_gone")); d != "" {
		t.Errorf("the revoked token changed (-want +got):\n%s", d)
	}
}
