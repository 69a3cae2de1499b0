package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var ownerTests = []test{
	{name: "owner fields round trip and survive updates", run: testOwnerRoundTrip},
	{name: "names are unique per app and owner", runEach: testOwnerNames},
	{name: "list and count by owner", run: testOwnerList},
	{name: "an app's owner settings round trip and clear", run: testOwnerAppSettings},
	{name: "max tokens per owner counts live tokens only", run: testOwnerLimit},
	{name: "max tokens per owner holds under concurrent creates", run: testOwnerLimitConcurrent},
	{name: "revoke one owner's tokens", run: testRevokeOwner},
	{name: "lookup by secret answers the app's owner rate limit", run: testOwnerRateLimitBySecret},
}

func testOwnerRateLimitBySecret(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	a := newApp("app_a")
	a.OwnerRateLimit = &tokend.RateLimit{Limit: 10, Window: tokend.Duration(time.Minute)}
	mustCreateApp(t, s, a)
	tok := ownedToken("tok_owned001", "app_a", "acct_1", "ci")
	mustCreateToken(t, s, tok)
	cred, err := s.TokenBySecret(ctx, tok.SecretHash)
	if err != nil || cred.OwnerRateLimit == nil || *cred.OwnerRateLimit != *a.OwnerRateLimit {
		t.Fatalf("TokenBySecret = %+v, %v; want the app's owner rate limit", cred.OwnerRateLimit, err)
	}
	rotate(t, s, tok.ID, "second", at(time.Minute), ptr(at(time.Hour)))
	cred, err = s.TokenBySecret(ctx, tok.SecretHash)
	if err != nil || !cred.Retired || cred.OwnerRateLimit == nil || *cred.OwnerRateLimit != *a.OwnerRateLimit {
		t.Errorf("TokenBySecret(retired) = %+v, %v; want the app's owner rate limit", cred.OwnerRateLimit, err)
	}
	// Removed from the app: none.
	if _, err := s.UpdateApp(ctx, "app_a", func(x *tokend.App) (tokend.Event, error) {
		x.OwnerRateLimit = nil
		return newEvent(tokend.ActionAppUpdate, x.ID, ""), nil
	}); err != nil {
		t.Fatal(err)
	}
	if cred, err := s.TokenBySecret(ctx, hashOf("second")); err != nil || cred.OwnerRateLimit != nil {
		t.Errorf("TokenBySecret after removal = %+v, %v; want none", cred.OwnerRateLimit, err)
	}
}

// ownedToken is a token of an owner.
func ownedToken(id, appID, owner, name string) tokend.Token {
	tok := newToken(id, appID, name)
	tok.OwnerID, tok.OwnerName = owner, "Owner "+owner
	return tok
}

func testOwnerRoundTrip(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	// Odd but valid: every visible ASCII character class in the id, and a
	// name of quotes, wildcards, right-to-left letters and an emoji.
	tok := ownedToken("tok_owned001", "app_a", `acct!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`, "ci")
	tok.OwnerName = `Zoë "Bobby" O'Brien; DROP TABLE tokens -- 100%_ עברית 🚀`
	mustCreateToken(t, s, tok)
	if d := diff(tok, mustToken(t, s, tok.ID)); d != "" {
		t.Errorf("Token (-want +got):\n%s", d)
	}
	cred, err := s.TokenBySecret(ctx, tok.SecretHash)
	if err != nil {
		t.Fatalf("TokenBySecret: %v", err)
	}
	// Verification needs the owner's id, not how the owner is shown.
	if cred.Token.OwnerID != tok.OwnerID {
		t.Errorf("TokenBySecret owner = %q, want %q", cred.Token.OwnerID, tok.OwnerID)
	}

	// A retired secret reads the owner too.
	rotate(t, s, tok.ID, "second", at(time.Minute), ptr(at(time.Hour)))
	cred, err = s.TokenBySecret(ctx, tok.SecretHash)
	if err != nil || !cred.Retired || cred.Token.OwnerID != tok.OwnerID {
		t.Errorf("TokenBySecret(retired) = owner %q retired %v, %v; want owner %q, retired", cred.Token.OwnerID, cred.Retired, err, tok.OwnerID)
	}

	// The owner's name can change; the update keeps the rest.
	got, err := s.UpdateToken(ctx, tok.ID, func(x *tokend.Token) (tokend.Event, error) {
		x.OwnerName = "Zoë"
		return newEvent(tokend.ActionTokenUpdate, x.AppID, x.ID), nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	if got.OwnerName != "Zoë" || got.OwnerID != tok.OwnerID {
		t.Errorf("after update: owner %q %q", got.OwnerID, got.OwnerName)
	}
	if stored := mustToken(t, s, tok.ID); stored.OwnerName != "Zoë" || stored.OwnerID != tok.OwnerID || stored.Scope != nil {
		t.Errorf("stored after update: owner %q %q scope %v", stored.OwnerID, stored.OwnerName, stored.Scope)
	}

	// A token without an owner reads "" and no scope.
	none := newToken("tok_noowner1", "app_a", "nobody's")
	mustCreateToken(t, s, none)
	if got := mustToken(t, s, none.ID); got.OwnerID != "" || got.OwnerName != "" || got.Scope != nil {
		t.Errorf("token without owner reads owner %q %q scope %v", got.OwnerID, got.OwnerName, got.Scope)
	}

	// A scope can be set, changed and removed.
	for _, sc := range []*tokend.AdminScope{{OwnerID: "acct_1"}, {OwnerID: "acct_1", AppIDs: []string{"app_a"}}, nil} {
		if _, err := s.UpdateToken(ctx, none.ID, func(x *tokend.Token) (tokend.Event, error) {
			x.Scope = sc
			return newEvent(tokend.ActionTokenUpdate, x.AppID, x.ID), nil
		}); err != nil {
			t.Fatalf("UpdateToken(scope %v): %v", sc, err)
		}
		if d := diff(sc, mustToken(t, s, none.ID).Scope); d != "" {
			t.Errorf("scope (-want +got):\n%s", d)
		}
	}
}

func testOwnerNames(t *testing.T, newStore func(t *testing.T) tokend.Store) {
	// In app_a: "ci" of acct_1, "ci" without owner, a revoked "old" of
	// acct_1; in app_b: "ci" of acct_2.
	setup := func(t *testing.T, s tokend.Store) {
		mustCreateApp(t, s, newApp("app_a"))
		mustCreateApp(t, s, newApp("app_b"))
		mustCreateToken(t, s, ownedToken("tok_a1_ci", "app_a", "acct_1", "ci"))
		mustCreateToken(t, s, newToken("tok_a_ci", "app_a", "ci"))
		old := ownedToken("tok_a1_old", "app_a", "acct_1", "old")
		old.Status, old.RevokedAt = tokend.StatusRevoked, ptr(t0)
		mustCreateToken(t, s, old)
		mustCreateToken(t, s, ownedToken("tok_b2_ci", "app_b", "acct_2", "ci"))
	}
	cases := []struct {
		name     string
		tok      tokend.Token
		conflict bool
	}{
		{"same name, same owner", ownedToken("tok_new1", "app_a", "acct_1", "ci"), true},
		{"same name, another owner of the app", ownedToken("tok_new1", "app_a", "acct_2", "ci"), false},
		{"same name, no owner, taken by another without owner", newToken("tok_new1", "app_a", "ci"), true},
		{"same name as a revoked token of the owner", ownedToken("tok_new1", "app_a", "acct_1", "old"), false},
		{"same owner and name in another app", ownedToken("tok_new1", "app_b", "acct_1", "ci"), false},
		{"owner ids differ in case", ownedToken("tok_new1", "app_a", "ACCT_1", "ci"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			setup(t, s)
			before := countEvents(t, s)
			err := s.CreateToken(t.Context(), c.tok, newEvent(tokend.ActionTokenCreate, c.tok.AppID, c.tok.ID))
			if !c.conflict {
				if err != nil {
					t.Fatalf("CreateToken: %v, want success", err)
				}
				return
			}
			wantNameTaken(t, "CreateToken", err)
			if n := countEvents(t, s); n != before {
				t.Errorf("%d events after a refused create, want %d", n, before)
			}
		})
	}

	t.Run("rename onto the owner's live name", func(t *testing.T) {
		s := newStore(t)
		setup(t, s)
		mustCreateToken(t, s, ownedToken("tok_a1_cd", "app_a", "acct_1", "cd"))
		_, err := s.UpdateToken(t.Context(), "tok_a1_cd", func(x *tokend.Token) (tokend.Event, error) {
			x.Name = "ci"
			return newEvent(tokend.ActionTokenUpdate, x.AppID, x.ID), nil
		})
		wantNameTaken(t, "UpdateToken", err)
		if got := mustToken(t, s, "tok_a1_cd"); got.Name != "cd" {
			t.Errorf("name after a refused rename: %q", got.Name)
		}
		// Another owner's token may take the name.
		mustCreateToken(t, s, ownedToken("tok_a3_cd", "app_a", "acct_3", "cd"))
		if _, err := s.UpdateToken(t.Context(), "tok_a3_cd", func(x *tokend.Token) (tokend.Event, error) {
			x.Name = "ci"
			return newEvent(tokend.ActionTokenUpdate, x.AppID, x.ID), nil
		}); err != nil {
			t.Errorf("rename onto a name another owner uses: %v", err)
		}
	})
}

// wantNameTaken checks for the conflict that names the field "name".
func wantNameTaken(t *testing.T, what string, err error) {
	t.Helper()
	var e *tokend.Error
	if !errors.As(err, &e) || e.Code != tokend.ECodeConflict {
		t.Fatalf("%s: got error %v, want %s", what, err, tokend.ECodeConflict)
	}
	if len(e.Fields) != 1 || e.Fields[0].Field != "name" {
		t.Errorf("%s: conflict fields %v, want name", what, e.Fields)
	}
}

func testOwnerList(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))
	var want []string // acct_1's tokens in app_a, newest first
	for i := range 5 {
		tok := ownedToken(name("tok_a1_%04d", i), "app_a", "acct_1", name("t%d", i))
		tok.CreatedAt = at(time.Duration(i) * time.Minute)
		mustCreateToken(t, s, tok)
		want = append([]string{tok.ID}, want...)
	}
	mustCreateToken(t, s, ownedToken("tok_a2_0000", "app_a", "acct_2", "t0"))
	mustCreateToken(t, s, ownedToken("tok_a1x_000", "app_a", "acct_10", "t0"))
	mustCreateToken(t, s, newToken("tok_a_0000", "app_a", "t0"))
	mustCreateToken(t, s, ownedToken("tok_b1_0000", "app_b", "acct_1", "t0"))

	f := tokend.TokenFilter{AppID: "app_a", OwnerID: "acct_1", Now: t0, Limit: 2}
	got := allPages(t, 2, func(cursor string) (tokend.Page[tokend.Token], error) {
		f.Cursor = cursor
		return s.Tokens(ctx, f)
	})
	if d := diff(want, tokenIDs(got)); d != "" {
		t.Errorf("acct_1's tokens of app_a (-want +got):\n%s", d)
	}
	if n, err := s.CountTokens(ctx, f); err != nil || n != 5 {
		t.Errorf("CountTokens(app_a, acct_1) = %d, %v; want 5", n, err)
	}
	// Across apps, and combined with the other filters.
	all := tokend.TokenFilter{OwnerID: "acct_1", Now: t0}
	if n, err := s.CountTokens(ctx, all); err != nil || n != 6 {
		t.Errorf("CountTokens(acct_1) = %d, %v; want 6", n, err)
	}
	q := tokend.TokenFilter{AppID: "app_a", OwnerID: "acct_1", Query: "t3", Now: t0}
	if p, err := s.Tokens(ctx, q); err != nil || len(p.Items) != 1 || p.Items[0].ID != "tok_a1_0003" {
		t.Errorf("Tokens(acct_1, q=t3) = %v, %v; want tok_a1_0003", tokenIDs(p.Items), err)
	}
	if n, err := s.CountTokens(ctx, tokend.TokenFilter{OwnerID: "acct_nobody", Now: t0}); err != nil || n != 0 {
		t.Errorf("CountTokens(unknown owner) = %d, %v; want 0", n, err)
	}
}

func testOwnerAppSettings(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	a := newApp("app_a")
	mustCreateApp(t, s, a)
	if got, err := s.App(ctx, a.ID); err != nil || got.MaxTokensPerOwner != nil || got.OwnerRateLimit != nil {
		t.Fatalf("new app: max %v, limit %v, %v; want none", got.MaxTokensPerOwner, got.OwnerRateLimit, err)
	}
	set := func(max *int, rl *tokend.RateLimit) {
		t.Helper()
		updated, err := s.UpdateApp(ctx, a.ID, func(x *tokend.App) (tokend.Event, error) {
			x.MaxTokensPerOwner, x.OwnerRateLimit = max, rl
			return newEvent(tokend.ActionAppUpdate, x.ID, ""), nil
		})
		if err != nil {
			t.Fatalf("UpdateApp: %v", err)
		}
		got, err := s.App(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(updated, got); d != "" {
			t.Errorf("App after update (-want +got):\n%s", d)
		}
		if d := diff(max, got.MaxTokensPerOwner); d != "" {
			t.Errorf("max tokens per owner (-want +got):\n%s", d)
		}
		if d := diff(rl, got.OwnerRateLimit); d != "" {
			t.Errorf("owner rate limit (-want +got):\n%s", d)
		}
		p, err := s.Apps(ctx, tokend.AppFilter{})
		if err != nil || len(p.Items) != 1 {
			t.Fatalf("Apps: %v, %v", p.Items, err)
		}
		if d := diff(got, p.Items[0]); d != "" {
			t.Errorf("Apps item (-want +got):\n%s", d)
		}
	}
	set(ptr(1_000_000), &tokend.RateLimit{Limit: 1_000_000_000, Window: tokend.Duration(31 * 24 * time.Hour)})
	set(ptr(1), &tokend.RateLimit{Limit: 1, Window: tokend.Duration(1500 * time.Millisecond)})
	set(nil, nil)
}

func testOwnerLimit(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	a := newApp("app_a")
	a.MaxTokensPerOwner = ptr(2)
	mustCreateApp(t, s, a)
	mustCreateApp(t, s, newApp("app_b")) // no limit

	// Revoked and expired tokens of acct_1 do not count.
	gone := ownedToken("tok_gone", "app_a", "acct_1", "gone")
	gone.Status, gone.RevokedAt = tokend.StatusRevoked, ptr(t0)
	mustCreateToken(t, s, gone)
	expired := ownedToken("tok_expired", "app_a", "acct_1", "expired")
	expired.ExpiresAt = ptr(at(-time.Second))
	mustCreateToken(t, s, expired)
	// Disabled ones do.
	paused := ownedToken("tok_paused", "app_a", "acct_1", "paused")
	paused.Status = tokend.StatusDisabled
	mustCreateToken(t, s, paused)
	live := ownedToken("tok_live", "app_a", "acct_1", "live")
	live.ExpiresAt = ptr(at(time.Hour))
	mustCreateToken(t, s, live)

	before := countEvents(t, s)
	err := s.CreateToken(ctx, ownedToken("tok_third", "app_a", "acct_1", "third"), newEvent(tokend.ActionTokenCreate, "app_a", "tok_third"))
	wantErrIs(t, "a third live token", err, tokend.ErrConflict)
	var e *tokend.Error
	if errors.As(err, &e) && (len(e.Fields) != 1 || e.Fields[0].Field != "owner_id") {
		t.Errorf("the refusal names fields %v, want owner_id", e.Fields)
	}
	if n := countEvents(t, s); n != before {
		t.Errorf("%d events after a refused create, want %d", n, before)
	}
	if _, err := s.Token(ctx, "tok_third"); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("the refused token was stored: %v", err)
	}

	// Other owners, tokens without an owner and other apps are not limited
	// by acct_1's tokens.
	mustCreateToken(t, s, ownedToken("tok_other1", "app_a", "acct_2", "a"))
	mustCreateToken(t, s, ownedToken("tok_other2", "app_a", "acct_2", "b"))
	for i := range 3 {
		mustCreateToken(t, s, newToken(name("tok_none_%d", i), "app_a", name("none %d", i)))
		mustCreateToken(t, s, ownedToken(name("tok_b_%d", i), "app_b", "acct_1", name("b %d", i)))
	}

	// Once one expires (by the new token's creation time), another fits.
	late := ownedToken("tok_late", "app_a", "acct_1", "late")
	late.CreatedAt = at(2 * time.Hour)
	mustCreateToken(t, s, late)

	// A token of an owner of an app that does not exist is not found.
	err = s.CreateToken(ctx, ownedToken("tok_orphan", "app_nope", "acct_1", "x"), newEvent(tokend.ActionTokenCreate, "app_nope", "tok_orphan"))
	wantErrIs(t, "a token of a missing app", err, tokend.ErrNotFound)
}

func testOwnerLimitConcurrent(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	a := newApp("app_a")
	a.MaxTokensPerOwner = ptr(3)
	mustCreateApp(t, s, a)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok := ownedToken(name("tok_race_%d", i), "app_a", "acct_1", name("race %d", i))
			errs[i] = s.CreateToken(ctx, tok, newEvent(tokend.ActionTokenCreate, "app_a", tok.ID))
		})
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, tokend.ErrConflict):
			t.Errorf("create %d: %v, want success or a conflict", i, err)
		}
	}
	if created != 3 {
		t.Errorf("%d of %d concurrent creates succeeded, want exactly 3", created, n)
	}
	if c, err := s.CountTokens(ctx, tokend.TokenFilter{AppID: "app_a", OwnerID: "acct_1", Now: t0}); err != nil || c != 3 {
		t.Errorf("stored %d tokens of the owner, %v; want 3", c, err)
	}
}

func testRevokeOwner(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))
	active := ownedToken("tok_a1_active", "app_a", "acct_1", "active")
	disabled := ownedToken("tok_a1_disabled", "app_a", "acct_1", "disabled")
	disabled.Status = tokend.StatusDisabled
	before := ownedToken("tok_a1_before", "app_a", "acct_1", "before")
	before.Status, before.RevokedAt = tokend.StatusRevoked, ptr(at(-time.Hour))
	others := []tokend.Token{
		ownedToken("tok_a2_active", "app_a", "acct_2", "active"),
		newToken("tok_a_active", "app_a", "active"),
		ownedToken("tok_b1_active", "app_b", "acct_1", "active"),
	}
	for _, tok := range append([]tokend.Token{active, disabled, before}, others...) {
		mustCreateToken(t, s, tok)
	}

	when := at(time.Hour)
	ev := newEvent(tokend.ActionAppRevokeAll, "app_a", "")
	ev.Time = when
	ev.Details = map[string]any{"owner_id": "acct_1"}
	n, err := s.RevokeOwnerTokens(ctx, "app_a", "acct_1", when, ev)
	if err != nil || n != 2 {
		t.Fatalf("RevokeOwnerTokens = %d, %v; want 2", n, err)
	}
	for _, tok := range []tokend.Token{active, disabled} {
		want := tok
		want.Status, want.RevokedAt, want.UpdatedAt, want.Version = tokend.StatusRevoked, &when, when, tok.Version+1
		if d := diff(want, mustToken(t, s, tok.ID)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tok.ID, d)
		}
	}
	for _, tok := range append([]tokend.Token{before}, others...) {
		if d := diff(tok, mustToken(t, s, tok.ID)); d != "" {
			t.Errorf("%s is left alone (-want +got):\n%s", tok.ID, d)
		}
	}
	wantEv := ev
	wantEv.Details = map[string]any{"owner_id": "acct_1", "count": float64(2)}
	if d := diff([]tokend.Event{wantEv}, eventsOf(t, s, tokend.EventFilter{Action: tokend.ActionAppRevokeAll}), ignoreEventID); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if len(ev.Details) != 1 {
		t.Errorf("the caller's Details map was changed: %v", ev.Details)
	}

	// Again: nothing left.
	if n, err := s.RevokeOwnerTokens(ctx, "app_a", "acct_1", when, ev); err != nil || n != 0 {
		t.Errorf("second RevokeOwnerTokens = %d, %v; want 0", n, err)
	}
	// An unknown owner: 0. A missing app, or "" (no owner): not found.
	if n, err := s.RevokeOwnerTokens(ctx, "app_a", "acct_nobody", when, ev); err != nil || n != 0 {
		t.Errorf("RevokeOwnerTokens(unknown owner) = %d, %v; want 0", n, err)
	}
	_, err = s.RevokeOwnerTokens(ctx, "app_nope", "acct_1", when, ev)
	wantErrIs(t, "RevokeOwnerTokens(missing app)", err, tokend.ErrNotFound)
	_, err = s.RevokeOwnerTokens(ctx, "app_a", "", when, ev)
	wantErrIs(t, "RevokeOwnerTokens(no owner)", err, tokend.ErrNotFound)
	if got := mustToken(t, s, "tok_a_active"); got.Status != tokend.StatusActive {
		t.Errorf("a token without owner was revoked by RevokeOwnerTokens(\"\")")
	}
}
