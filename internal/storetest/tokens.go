package storetest

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var tokenTests = []test{
	{name: "round trip keeps every field", run: testTokenRoundTrip},
	{name: "missing token is not found", run: testTokenNotFound},
	{name: "create conflicts", runEach: testTokenConflicts},
	{name: "create for a missing app is not found", run: testTokenMissingApp},
	{name: "rename onto a live name conflicts and changes nothing", run: testTokenRenameConflict},
	{name: "lookup by current and retired secret", run: testTokenBySecret},
	{name: "a rotation with grace keeps only the secret it replaced", run: testRotationKeepsOnePrevious},
	{name: "concurrent rotations leave at most two secrets that verify", run: testConcurrentRotations},
	{name: "lookup by secret answers the app's catalog as it is now", run: testTokenBySecretCatalog},
	{name: "a retired secret answers its app's rotated-secret policy as it is now", run: testRetiredSecretPolicy},
	{name: "retired secrets are forgotten after their grace, idempotently", run: testForgetRetiredSecrets},
	{name: "update bumps version and writes the event", run: testTokenUpdate},
	{name: "update error changes nothing and writes no event", run: testTokenUpdateError},
	{name: "concurrent updates lose nothing", run: testTokenConcurrentUpdates},
	{name: "delete keeps its events and drops its secrets and usage", run: testTokenDelete},
}

// fullToken has every field set, each to a value that tells it apart.
func fullToken() tokend.Token {
	tok := newToken("tok_full0001", "app_a", "Deploy bot")
	tok.Description = "Pushes releases from CI"
	tok.Type = tokend.TypePlugin
	tok.Access = tokend.AccessCustom
	tok.Permissions = []string{"orders:read", "orders:write"}
	tok.ExpiresAt = ptr(at(30 * 24 * time.Hour))
	tok.AllowedIPs = []string{"192.0.2.0/24", "2001:db8::/32"}
	tok.AllowedOrigins = []string{"https://shop.example", "chrome-extension://abcdefghijklmnop"}
	tok.RateLimit = &tokend.RateLimit{Limit: 1000, Window: tokend.Duration(time.Hour)}
	tok.MaxUses = ptr(int64(5000))
	tok.UseCount = 42
	// Numbers are float64, as they are after any JSON request body.
	tok.Metadata = map[string]any{
		"customer": "cus_123",
		"tier":     float64(3),
		"beta":     true,
		"nothing":  nil,
		"tags":     []any{"a", "b"},
		"nested":   map[string]any{"region": "eu-west-1"},
	}
	tok.Status = tokend.StatusDisabled
	tok.Masked = "tkd_…x7Qa"
	tok.CreatedAt = at(-time.Hour)
	tok.CreatedBy = "token:tok_admin"
	tok.UpdatedAt = at(-time.Minute)
	tok.LastUsedAt = ptr(at(-30 * time.Second))
	tok.LastUsedIP = "2001:db8::1"
	tok.PreviousSecretExpiresAt = ptr(at(time.Hour))
	tok.Version = 12
	tok.OwnerID = "acct:42/eu@example.com"
	tok.OwnerName = "Zoë O'Brien & Co. — \"עברית\" 50%_off"
	tok.Scope = &tokend.AdminScope{OwnerID: "acct_7", AppIDs: []string{"app_a", "app_b"}}
	tok.Decoy = true
	return tok
}

func testTokenRoundTrip(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))

	minimal := newToken("tok_min00001", "app_a", "minimal")

	empty := newToken("tok_empty001", "app_a", "empty lists")
	empty.Permissions = []string{}
	empty.AllowedIPs = []string{}
	empty.AllowedOrigins = []string{}
	empty.Metadata = map[string]any{}

	revoked := newToken("tok_revoked1", "app_a", "revoked")
	revoked.Status = tokend.StatusRevoked
	revoked.RevokedAt = ptr(at(-time.Second))
	revoked.RateLimit = &tokend.RateLimit{Limit: 1, Window: tokend.Duration(24 * time.Hour)}
	revoked.MaxUses = ptr(int64(0))

	scoped := newToken("tok_scoped01", "app_a", "scoped to an owner")
	scoped.Scope = &tokend.AdminScope{OwnerID: "acct_9"}

	cases := []struct {
		name string
		tok  tokend.Token
	}{
		{"every field set", fullToken()},
		{"a scope without apps", scoped},
		{"nil lists, maps and pointers stay nil", minimal},
		{"empty lists and maps stay empty", empty},
		{"revoked with zero max uses", revoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustCreateToken(t, s, c.tok)
			got := mustToken(t, s, c.tok.ID)
			if d := diff(c.tok, got); d != "" {
				t.Errorf("Token (-want +got):\n%s", d)
			}
			cred, err := s.TokenBySecret(t.Context(), c.tok.SecretHash)
			if err != nil {
				t.Fatalf("TokenBySecret: %v", err)
			}
			if d := diff(tokend.Credential{Token: c.tok.ForVerification(), Catalog: newApp("app_a").Permissions}, cred); d != "" {
				t.Errorf("TokenBySecret (-want +got):\n%s", d)
			}
			page, err := s.Tokens(t.Context(), tokend.TokenFilter{AppID: "app_a", Decoy: c.tok.Decoy, Now: t0, Limit: tokend.MaxPageSize})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, listed := range page.Items {
				if listed.ID == c.tok.ID {
					found = true
					if d := diff(c.tok, listed); d != "" {
						t.Errorf("Tokens item (-want +got):\n%s", d)
					}
				}
			}
			if !found {
				t.Errorf("Tokens does not list %s", c.tok.ID)
			}
		})
	}
}

func testTokenNotFound(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	_, err := s.Token(ctx, "tok_nope")
	wantErrIs(t, "Token", err, tokend.ErrNotFound)
	_, err = s.TokenBySecret(ctx, hashOf("never issued"))
	wantErrIs(t, "TokenBySecret", err, tokend.ErrNotFound)
	called := false
	_, err = s.UpdateToken(ctx, "tok_nope", func(tok *tokend.Token) (tokend.Event, error) {
		called = true
		return newEvent(tokend.ActionTokenUpdate, tok.AppID, tok.ID), nil
	})
	wantErrIs(t, "UpdateToken", err, tokend.ErrNotFound)
	if called {
		t.Error("UpdateToken called fn for a missing token")
	}
	err = s.DeleteToken(ctx, "tok_nope", 0, newEvent(tokend.ActionTokenDelete, "app_a", "tok_nope"))
	wantErrIs(t, "DeleteToken", err, tokend.ErrNotFound)
	if n := countEvents(t, s); n != 1 {
		t.Errorf("%d events, want only the app's create", n)
	}
}

func testTokenConflicts(t *testing.T, newStore func(t *testing.T) tokend.Store) {
	// Every case gets its own store with the same tokens: in app_a a live
	// "ci", a disabled "paused" and a revoked "old"; in app_b a live "ci".
	setup := func(t *testing.T, s tokend.Store) {
		mustCreateApp(t, s, newApp("app_a"))
		mustCreateApp(t, s, newApp("app_b"))
		mustCreateToken(t, s, newToken("tok_a_ci", "app_a", "ci"))
		paused := newToken("tok_a_paused", "app_a", "paused")
		paused.Status = tokend.StatusDisabled
		mustCreateToken(t, s, paused)
		old := newToken("tok_a_old", "app_a", "old")
		old.Status = tokend.StatusRevoked
		old.RevokedAt = ptr(t0)
		mustCreateToken(t, s, old)
		mustCreateToken(t, s, newToken("tok_b_ci", "app_b", "ci"))
	}
	cases := []struct {
		name     string
		tok      tokend.Token
		conflict bool
	}{
		{"same name as a live token of the app", newToken("tok_new1", "app_a", "ci"), true},
		{"same name as a disabled token of the app", newToken("tok_new1", "app_a", "paused"), true},
		{"same name as a revoked token of the app is allowed", newToken("tok_new1", "app_a", "old"), false},
		{"same name in another app is allowed", newToken("tok_new1", "app_b", "paused"), false},
		{"name differing in case is another name", newToken("tok_new1", "app_a", "CI"), false},
		{"taken id", newToken("tok_a_ci", "app_b", "fresh"), true},
		{"taken secret hash, even in another app", func() tokend.Token {
			tok := newToken("tok_new1", "app_b", "fresh")
			tok.SecretHash = hashOf("secret of tok_a_ci")
			return tok
		}(), true},
		{"a second revoked token with a revoked name is allowed", func() tokend.Token {
			tok := newToken("tok_new1", "app_a", "old")
			tok.Status = tokend.StatusRevoked
			return tok
		}(), false},
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
				if got := mustToken(t, s, c.tok.ID); got.Name != c.tok.Name {
					t.Errorf("stored name %q, want %q", got.Name, c.tok.Name)
				}
				return
			}
			wantErrIs(t, "CreateToken", err, tokend.ErrConflict)
			if n := countEvents(t, s); n != before {
				t.Errorf("%d events after a refused create, want %d", n, before)
			}
		})
	}
}

func testTokenMissingApp(t *testing.T, s tokend.Store) {
	err := s.CreateToken(t.Context(), newToken("tok_orphan", "app_nope", "orphan"),
		newEvent(tokend.ActionTokenCreate, "app_nope", "tok_orphan"))
	wantErrIs(t, "CreateToken for a missing app", err, tokend.ErrNotFound)
	_, err = s.Token(t.Context(), "tok_orphan")
	wantErrIs(t, "Token", err, tokend.ErrNotFound)
}

func testTokenRenameConflict(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_one1", "app_a", "one"))
	two := newToken("tok_two2", "app_a", "two")
	mustCreateToken(t, s, two)
	before := countEvents(t, s)

	_, err := s.UpdateToken(ctx, "tok_two2", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Name = "one"
		return newEvent(tokend.ActionTokenUpdate, tok.AppID, tok.ID), nil
	})
	wantErrIs(t, "rename onto a live name", err, tokend.ErrConflict)
	if d := diff(two, mustToken(t, s, "tok_two2")); d != "" {
		t.Errorf("token changed by a refused rename (-want +got):\n%s", d)
	}
	if n := countEvents(t, s); n != before {
		t.Errorf("%d events after a refused rename, want %d", n, before)
	}

	// Revoking frees the name for the other token.
	if _, err := s.UpdateToken(ctx, "tok_one1", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Status, tok.RevokedAt = tokend.StatusRevoked, ptr(t0)
		return newEvent(tokend.ActionTokenRevoke, tok.AppID, tok.ID), nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateToken(ctx, "tok_two2", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Name = "one"
		return newEvent(tokend.ActionTokenUpdate, tok.AppID, tok.ID), nil
	}); err != nil {
		t.Errorf("rename onto a revoked token's name: %v", err)
	}
}

func testTokenBySecret(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	tok := newToken("tok_rot1", "app_a", "rotating")
	mustCreateToken(t, s, tok)

	cred, err := s.TokenBySecret(ctx, hashOf("secret of tok_rot1"))
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(tokend.Credential{Token: tok.ForVerification(), Catalog: newApp("app_a").Permissions}, cred); d != "" {
		t.Errorf("before rotation (-want +got):\n%s", d)
	}

	// First rotation with a grace period of an hour.
	grace := at(time.Hour)
	first := rotate(t, s, "tok_rot1", "second secret", at(time.Minute), &grace)
	if !bytes.Equal(first.SecretHash, hashOf("second secret")) {
		t.Fatalf("rotation answered the old hash")
	}
	cred, err = s.TokenBySecret(ctx, hashOf("second secret"))
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(tokend.Credential{Token: first.ForVerification(), Catalog: newApp("app_a").Permissions}, cred); d != "" {
		t.Errorf("new secret (-want +got):\n%s", d)
	}
	cred, err = s.TokenBySecret(ctx, hashOf("secret of tok_rot1"))
	if err != nil {
		t.Fatalf("TokenBySecret(retired): %v", err)
	}
	if d := diff(tokend.Credential{Token: first.ForVerification(), Retired: true, GraceUntil: grace, Catalog: newApp("app_a").Permissions,
		RotatedSecretPolicy: tokend.RotatedNotify}, cred); d != "" {
		t.Errorf("retired secret in its grace period (-want +got):\n%s", d)
	}

	// Second rotation without grace: the replaced secret stops at once, and
	// so does the first one, whose grace had not ended yet: a rotation
	// without grace leaves only the new secret.
	second := rotate(t, s, "tok_rot1", "third secret", at(2*time.Minute), nil)
	cred, err = s.TokenBySecret(ctx, hashOf("second secret"))
	if err != nil {
		t.Fatalf("TokenBySecret(retired without grace): %v", err)
	}
	if !cred.Retired || cred.Token.ID != "tok_rot1" {
		t.Errorf("retired without grace: Retired=%v token %s, want Retired for tok_rot1", cred.Retired, cred.Token.ID)
	}
	if cred.GraceUntil.After(at(2 * time.Minute)) {
		t.Errorf("secret retired without grace verifies until %v, after its rotation at %v", cred.GraceUntil, at(2*time.Minute))
	}
	if d := diff(second.ForVerification(), cred.Token); d != "" {
		t.Errorf("a retired secret answers the current token (-want +got):\n%s", d)
	}
	cred, err = s.TokenBySecret(ctx, hashOf("secret of tok_rot1"))
	if err != nil {
		t.Fatal(err)
	}
	if !cred.Retired || cred.GraceUntil.After(at(2*time.Minute)) {
		t.Errorf("first secret after a second rotation without grace: Retired=%v GraceUntil=%v, want retired with its grace ended by %v", cred.Retired, cred.GraceUntil, at(2*time.Minute))
	}
	if cred.Token.Version != second.Version {
		t.Errorf("first secret answers version %d, want the current %d", cred.Token.Version, second.Version)
	}
}

// The catalog comes with the token, current or retired secret alike, and
// follows the app's changes: verification takes it as the ceiling of what a
// token is granted.
func testTokenBySecretCatalog(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	other := newApp("app_b")
	other.Permissions = []string{"users:read"}
	mustCreateApp(t, s, other)
	tok := newToken("tok_cat1", "app_a", "catalog")
	tok.Access, tok.Permissions = tokend.AccessCustom, []string{"orders:read", "orders:write"}
	mustCreateToken(t, s, tok)
	mustCreateToken(t, s, newToken("tok_cat2", "app_b", "other app"))
	grace := at(time.Hour)
	rotate(t, s, "tok_cat1", "new secret of tok_cat1", at(time.Minute), &grace)

	if _, err := s.UpdateApp(ctx, "app_a", func(a *tokend.App) (tokend.Event, error) {
		a.Permissions = []string{"orders:read"}
		return newEvent(tokend.ActionAppUpdate, "app_a", ""), nil
	}); err != nil {
		t.Fatalf("UpdateApp: %v", err)
	}
	for _, c := range []struct {
		name, secret string
		want         []string
	}{
		{"current secret", "new secret of tok_cat1", []string{"orders:read"}},
		{"retired secret", "secret of tok_cat1", []string{"orders:read"}},
		{"a token of another app", "secret of tok_cat2", []string{"users:read"}},
	} {
		cred, err := s.TokenBySecret(ctx, hashOf(c.secret))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d := diff(c.want, cred.Catalog); d != "" {
			t.Errorf("%s: catalog (-want +got):\n%s", c.name, d)
		}
	}
	if cred, _ := s.TokenBySecret(ctx, hashOf("new secret of tok_cat1")); !slices.Equal(cred.Token.Permissions, tok.Permissions) {
		t.Errorf("the token's own permissions changed with the catalog: %v", cred.Token.Permissions)
	}
	// An app whose catalog was emptied answers an empty catalog, not an error.
	if _, err := s.UpdateApp(ctx, "app_b", func(a *tokend.App) (tokend.Event, error) {
		a.Permissions = []string{}
		return newEvent(tokend.ActionAppUpdate, "app_b", ""), nil
	}); err != nil {
		t.Fatalf("UpdateApp: %v", err)
	}
	if cred, err := s.TokenBySecret(ctx, hashOf("secret of tok_cat2")); err != nil || len(cred.Catalog) != 0 {
		t.Errorf("emptied catalog: %v, %v; want an empty catalog", cred.Catalog, err)
	}
}

func testTokenUpdate(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	tok := newToken("tok_upd1", "app_a", "before")
	mustCreateToken(t, s, tok)

	ev := newEvent(tokend.ActionTokenUpdate, "app_a", "tok_upd1")
	ev.Time = at(time.Minute)
	ev.Details = map[string]any{"description": map[string]any{"from": "", "to": "now described"}}
	got, err := s.UpdateToken(t.Context(), "tok_upd1", func(cur *tokend.Token) (tokend.Event, error) {
		if d := diff(tok, *cur); d != "" {
			t.Errorf("fn got a different token than stored (-want +got):\n%s", d)
		}
		cur.Description = "now described"
		cur.AllowedIPs = []string{"198.51.100.0/24"}
		cur.ExpiresAt = ptr(at(7 * 24 * time.Hour))
		return ev, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	// Only Version moves by itself; UpdatedAt is the service's to set, and
	// this fn did not.
	want := tok
	want.Description = "now described"
	want.AllowedIPs = []string{"198.51.100.0/24"}
	want.ExpiresAt = ptr(at(7 * 24 * time.Hour))
	want.Version = tok.Version + 1
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateToken answered (-want +got):\n%s", d)
	}
	if d := diff(want, mustToken(t, s, "tok_upd1")); d != "" {
		t.Errorf("stored token (-want +got):\n%s", d)
	}
	evs := eventsOf(t, s, tokend.EventFilter{TokenID: "tok_upd1"})
	wantEvs := []tokend.Event{ev, newEvent(tokend.ActionTokenCreate, "app_a", "tok_upd1")}
	if d := diff(wantEvs, evs, ignoreEventID); d != "" {
		t.Errorf("events, newest first (-want +got):\n%s", d)
	}
	// The same secret still finds it: no rotation happened.
	if _, err := s.TokenBySecret(t.Context(), tok.SecretHash); err != nil {
		t.Errorf("TokenBySecret after an update that kept the secret: %v", err)
	}
}

func testTokenUpdateError(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	tok := newToken("tok_err1", "app_a", "steady")
	tok.AllowedIPs = []string{"192.0.2.0/24"}
	mustCreateToken(t, s, tok)
	before := countEvents(t, s)

	_, err := s.UpdateToken(t.Context(), "tok_err1", func(cur *tokend.Token) (tokend.Event, error) {
		cur.Name = "half-done"
		cur.Status = tokend.StatusRevoked
		cur.AllowedIPs[0] = "0.0.0.0/0"
		cur.SecretHash[0] ^= 0xff // in place, as careless code might
		return newEvent(tokend.ActionTokenUpdate, cur.AppID, cur.ID), errBoom
	})
	if err != errBoom {
		t.Errorf("UpdateToken error = %v, want fn's error as is", err)
	}
	if d := diff(tok, mustToken(t, s, "tok_err1")); d != "" {
		t.Errorf("token changed by a failed update (-want +got):\n%s", d)
	}
	if n := countEvents(t, s); n != before {
		t.Errorf("%d events after a failed update, want %d", n, before)
	}
	cred, err := s.TokenBySecret(t.Context(), tok.SecretHash)
	if err != nil || cred.Retired {
		t.Errorf("TokenBySecret after a failed update = retired %v, %v; want the current secret", cred.Retired, err)
	}
}

func testTokenConcurrentUpdates(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	tok := newToken("tok_race", "app_a", "counter")
	mustCreateToken(t, s, tok)

	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := s.UpdateToken(t.Context(), "tok_race", func(cur *tokend.Token) (tokend.Event, error) {
					cur.UseCount++ // read-modify-write: lost if two runs interleave
					return newEvent(tokend.ActionTokenUpdate, cur.AppID, cur.ID), nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("UpdateToken: %v", err)
	}
	got := mustToken(t, s, "tok_race")
	if got.UseCount != workers*each {
		t.Errorf("UseCount = %d after %d increments: updates were lost", got.UseCount, workers*each)
	}
	if got.Version != tok.Version+workers*each {
		t.Errorf("Version = %d, want %d", got.Version, tok.Version+workers*each)
	}
	if n := len(eventsOf(t, s, tokend.EventFilter{TokenID: "tok_race", Action: tokend.ActionTokenUpdate})); n != workers*each {
		t.Errorf("%d update events, want %d", n, workers*each)
	}
}

func testTokenDelete(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_del1", "app_a", "doomed"))
	rotate(t, s, "tok_del1", "rotated secret", at(time.Minute), ptr(at(time.Hour)))
	hour := t0.Truncate(time.Hour)
	if err := s.RecordUsage(ctx, tokend.UsageBatch{
		Counts: []tokend.UsageCount{{TokenID: "tok_del1", Hour: hour, Code: tokend.CodeValid, Count: 2}},
	}); err != nil {
		t.Fatal(err)
	}

	del := newEvent(tokend.ActionTokenDelete, "app_a", "tok_del1")
	del.Time = at(2 * time.Minute)
	if err := s.DeleteToken(ctx, "tok_del1", 0, del); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}

	_, err := s.Token(ctx, "tok_del1")
	wantErrIs(t, "Token after delete", err, tokend.ErrNotFound)
	for _, secret := range []string{"rotated secret", "secret of tok_del1"} {
		_, err := s.TokenBySecret(ctx, hashOf(secret))
		wantErrIs(t, "TokenBySecret("+secret+") after delete", err, tokend.ErrNotFound)
	}
	usage, err := s.Usage(ctx, "tok_del1", hour, hour.Add(time.Hour))
	if err != nil || len(usage) != 0 {
		t.Errorf("Usage after delete = %v, %v; want none", usage, err)
	}
	var actions []string
	for _, ev := range eventsOf(t, s, tokend.EventFilter{TokenID: "tok_del1"}) {
		actions = append(actions, ev.Action)
	}
	wantActions := []string{tokend.ActionTokenDelete, tokend.ActionTokenRotate, tokend.ActionTokenCreate}
	if d := diff(wantActions, actions); d != "" {
		t.Errorf("events of the deleted token, newest first (-want +got):\n%s", d)
	}

	err = s.DeleteToken(ctx, "tok_del1", 0, del)
	wantErrIs(t, "second DeleteToken", err, tokend.ErrNotFound)
	if n := len(eventsOf(t, s, tokend.EventFilter{TokenID: "tok_del1"})); n != 3 {
		t.Errorf("%d events after a second delete, want still 3", n)
	}
	// Its name and its secrets are free again.
	again := newToken("tok_del2", "app_a", "doomed")
	again.SecretHash = hashOf("rotated secret")
	mustCreateToken(t, s, again)
}

// verifying answers which of the secrets verify at now: the current one,
// and retired ones inside their grace.
func verifying(t *testing.T, s tokend.Store, now time.Time, secrets []string) []string {
	t.Helper()
	var out []string
	for _, sec := range secrets {
		cred, err := s.TokenBySecret(t.Context(), hashOf(sec))
		if errors.Is(err, tokend.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("TokenBySecret(%s): %v", sec, err)
		}
		if !cred.Retired || cred.GraceUntil.After(now) {
			out = append(out, sec)
		}
	}
	return out
}

func testRotationKeepsOnePrevious(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_rot2", "app_a", "rotating"))
	secrets := []string{"secret of tok_rot2", "s1", "s2", "s3"}
	steps := []struct {
		name  string
		grace *time.Time
		want  []string
	}{
		{"rotation with an hour of grace keeps the replaced secret", ptr(at(time.Hour + time.Minute)), []string{"secret of tok_rot2", "s1"}},
		{"another rotation with grace keeps only the secret it replaced", ptr(at(time.Hour + 2*time.Minute)), []string{"s1", "s2"}},
		{"a rotation without grace leaves only the new secret", nil, []string{"s3"}},
	}
	for i, st := range steps {
		when := at(time.Duration(i+1) * time.Minute)
		rotate(t, s, "tok_rot2", secrets[i+1], when, st.grace)
		if d := diff(st.want, verifying(t, s, when, secrets)); d != "" {
			t.Errorf("%s: secrets that verify (-want +got):\n%s", st.name, d)
		}
	}
}

func testConcurrentRotations(t *testing.T, s tokend.Store) {
	const rotations = 20
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_rot3", "app_a", "rotating"))
	secrets := []string{"secret of tok_rot3"}
	for i := range rotations {
		secrets = append(secrets, name("secret %d", i))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range rotations {
		wg.Go(func() {
			<-start
			when := at(time.Duration(i+1) * time.Second)
			_, err := s.UpdateToken(t.Context(), "tok_rot3", func(tok *tokend.Token) (tokend.Event, error) {
				tok.SecretHash = hashOf(secrets[i+1])
				tok.PreviousSecretExpiresAt = ptr(when.Add(time.Hour))
				tok.UpdatedAt = when
				return newEvent(tokend.ActionTokenRotate, tok.AppID, tok.ID), nil
			})
			if err != nil {
				t.Errorf("rotation %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	// Every rotation is stamped before this instant, and every grace
	// period ends after it.
	valid := verifying(t, s, at(time.Minute), secrets)
	t.Logf("%d concurrent rotations with grace: %d of %d secrets verify", rotations, len(valid), len(secrets))
	if len(valid) != 2 {
		t.Errorf("secrets that verify after %d concurrent rotations with grace: %v, want the current one and the one it replaced", rotations, valid)
	}
	cur := mustToken(t, s, "tok_rot3")
	if !slices.ContainsFunc(valid, func(sec string) bool { return bytes.Equal(hashOf(sec), cur.SecretHash) }) {
		t.Errorf("the current secret is not among those that verify: %v", valid)
	}
}

// The policy comes with a retired secret only, read from the app at the
// lookup: an edit of the app applies to the next read.
func testRetiredSecretPolicy(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	app := newApp("app_a")
	app.RotatedSecretPolicy = tokend.RotatedDisable
	mustCreateApp(t, s, app)
	mustCreateToken(t, s, newToken("tok_pol1", "app_a", "policy"))
	rotate(t, s, "tok_pol1", "new secret", at(time.Minute), nil)
	cred, err := s.TokenBySecret(ctx, hashOf("secret of tok_pol1"))
	if err != nil || !cred.Retired || cred.RotatedSecretPolicy != tokend.RotatedDisable {
		t.Fatalf("retired secret = retired %v policy %q, %v; want retired, disable", cred.Retired, cred.RotatedSecretPolicy, err)
	}
	if cred, err := s.TokenBySecret(ctx, hashOf("new secret")); err != nil || cred.RotatedSecretPolicy != "" {
		t.Errorf("current secret = policy %q, %v; want none (the hot query reads no policy)", cred.RotatedSecretPolicy, err)
	}
	if _, err := s.UpdateApp(ctx, "app_a", func(a *tokend.App) (tokend.Event, error) {
		a.RotatedSecretPolicy = tokend.RotatedNotify
		return newEvent(tokend.ActionAppUpdate, "app_a", ""), nil
	}); err != nil {
		t.Fatal(err)
	}
	if cred, err := s.TokenBySecret(ctx, hashOf("secret of tok_pol1")); err != nil || cred.RotatedSecretPolicy != tokend.RotatedNotify {
		t.Errorf("after the app's edit: policy %q, %v; want notify", cred.RotatedSecretPolicy, err)
	}
}

// ForgetRetiredSecrets deletes the retired secrets whose grace ended before
// the cutoff, and nothing else: a secret still in its grace, or ended at or
// after the cutoff, stays, and so do the current secrets. A second run, as
// another instance's, deletes nothing and fails nothing.
func testForgetRetiredSecrets(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_old1", "app_a", "old"))
	mustCreateToken(t, s, newToken("tok_new1", "app_a", "new"))
	rotate(t, s, "tok_old1", "old's second secret", at(time.Minute), nil) // grace ends at +1m
	grace := at(time.Hour)
	rotate(t, s, "tok_new1", "new's second secret", at(time.Minute), &grace)

	if n, err := s.ForgetRetiredSecrets(ctx, at(time.Minute)); err != nil || n != 0 {
		t.Fatalf("forget before +1m = %d, %v; want 0 (a grace ending at the cutoff stays)", n, err)
	}
	if n, err := s.ForgetRetiredSecrets(ctx, at(30*time.Minute)); err != nil || n != 1 {
		t.Fatalf("forget before +30m = %d, %v; want 1", n, err)
	}
	_, err := s.TokenBySecret(ctx, hashOf("secret of tok_old1"))
	wantErrIs(t, "a forgotten secret", err, tokend.ErrNotFound)
	if cred, err := s.TokenBySecret(ctx, hashOf("secret of tok_new1")); err != nil || !cred.Retired {
		t.Errorf("a secret in its grace = retired %v, %v; want kept", cred.Retired, err)
	}
	for _, sec := range []string{"old's second secret", "new's second secret"} {
		if cred, err := s.TokenBySecret(ctx, hashOf(sec)); err != nil || cred.Retired {
			t.Errorf("current secret %q = retired %v, %v; want kept", sec, cred.Retired, err)
		}
	}
	// Concurrent runs, as several instances: each row goes once.
	errs := make(chan error, 4)
	counts := make(chan int, 4)
	for range 4 {
		go func() {
			n, err := s.ForgetRetiredSecrets(ctx, at(2*time.Hour))
			counts <- n
			errs <- err
		}()
	}
	total := 0
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent forget: %v", err)
		}
		total += <-counts
	}
	if total != 1 {
		t.Errorf("concurrent forgets deleted %d rows in all, want 1", total)
	}
	_, err = s.TokenBySecret(ctx, hashOf("secret of tok_new1"))
	wantErrIs(t, "the second forgotten secret", err, tokend.ErrNotFound)
}
