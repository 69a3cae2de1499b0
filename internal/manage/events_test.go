package manage_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/secret"
)

var eventT0 = time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)

// allEvents lists every event, oldest first.
func allEvents(t *testing.T, svc *manage.Service, f tokend.NotificationFilter) []tokend.Notification {
	t.Helper()
	var out []tokend.Notification
	f.Limit = tokend.MaxPageSize
	for {
		page, err := svc.Notifications(context.Background(), tokend.SystemActor, f)
		if err != nil {
			t.Fatalf("Notifications: %v", err)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			slices.Reverse(out)
			return out
		}
		f.Cursor = page.NextCursor
	}
}

func eventTypes(ns []tokend.Notification) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.Type)
	}
	return out
}

// must answers v, and stops the test binary on an error: a step that
// every test here needs to work.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Every change of a token, on either store and from the API's actors and
// the portal's, raises its event with the token as the API shows it after
// the change; and no event holds a secret or its hash.
func TestEveryChangeRaisesItsEvent(t *testing.T) {
	for name, open := range staleStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := testclock.New(eventT0)
			st := open()
			svc := newStaleService(st, clock, nil)
			admin := tokend.Actor{Kind: "token", ID: "tok_admin", Name: "ci", Permissions: tokend.AdminPermissions}
			app := must(svc.CreateApp(ctx, admin, tokend.AppInput{Name: "shop", Permissions: []string{"orders:read"}}))
			var secrets []secret.Secret
			tok, sec, err := svc.CreateToken(ctx, admin, tokend.TokenInput{AppID: app.ID, Name: "ci", OwnerID: "acct_1", ExpiresIn: "30d"})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, sec)
			name := "renamed"
			steps := []tokend.Token{tok}
			steps = append(steps, must(svc.UpdateToken(ctx, admin, tok.ID, tokend.TokenPatch{Name: &name}, 0)))
			steps = append(steps, must(svc.DisableToken(ctx, admin, tok.ID, 0)))
			steps = append(steps, must(svc.EnableToken(ctx, admin, tok.ID, 0)))
			rotated, sec, err := svc.RotateToken(ctx, admin, tok.ID, tokend.Duration(time.Hour), 0)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, sec)
			steps = append(steps, rotated)
			// The portal's customer acts as actor kind owner.
			owner := manage.PortalActor(tokend.PortalGrant{AppID: app.ID, OwnerID: "acct_1", OwnerName: "Acme", User: tokend.PortalUser{ID: "u1", Name: "Ann"}}, "192.0.2.1")
			steps = append(steps, must(svc.RevokeToken(ctx, owner, tok.ID, 0)))
			if err := svc.DeleteToken(ctx, owner, tok.ID, 0); err != nil {
				t.Fatal(err)
			}
			other, sec, err := svc.CreateToken(ctx, admin, tokend.TokenInput{AppID: app.ID, Name: "other", OwnerID: "acct_2"})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, sec)
			if n, err := svc.RevokeOwner(ctx, admin, app.ID, "acct_2"); err != nil || n != 1 {
				t.Fatalf("RevokeOwner = %d, %v", n, err)
			}
			third, sec, err := svc.CreateToken(ctx, admin, tokend.TokenInput{AppID: app.ID, Name: "third"})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, sec)
			if n, err := svc.RevokeAll(ctx, admin, app.ID); err != nil || n != 1 {
				t.Fatalf("RevokeAll = %d, %v", n, err)
			}
			// Revoking nothing changes nothing: audited, no event.
			if n, err := svc.RevokeAll(ctx, admin, app.ID); err != nil || n != 0 {
				t.Fatalf("RevokeAll again = %d, %v", n, err)
			}
			// A refused change raises nothing.
			if _, err := svc.UpdateToken(ctx, admin, other.ID, tokend.TokenPatch{Name: &name}, 0); err == nil {
				t.Fatal("editing a revoked token succeeded")
			}

			evs := allEvents(t, svc, tokend.NotificationFilter{})
			want := []string{
				tokend.EventTokenCreated, tokend.EventTokenUpdated, tokend.EventTokenDisabled, tokend.EventTokenEnabled,
				tokend.EventTokenRotated, tokend.EventTokenRevoked, tokend.EventTokenDeleted,
				// A revoke-all raises token.revoked for each token it
				// revoked, then its own event.
				tokend.EventTokenCreated, tokend.EventTokenRevoked, tokend.EventOwnerTokensRevoked,
				tokend.EventTokenCreated, tokend.EventTokenRevoked, tokend.EventAppTokensRevoked,
			}
			if got := eventTypes(evs); !slices.Equal(got, want) {
				t.Fatalf("events:\n got %v\nwant %v", got, want)
			}
			// Each token event's data is the token as the change answered it.
			for i, step := range append(steps, steps[len(steps)-1]) {
				n := evs[i]
				if n.TokenID != tok.ID || n.AppID != app.ID {
					t.Errorf("%s: token %s app %s", n.Type, n.TokenID, n.AppID)
				}
				wantData, _ := json.Marshal(step)
				var m map[string]any
				json.Unmarshal(wantData, &m)
				for k, v := range m {
					if v == nil {
						delete(m, k) // data leaves nulls out
					}
				}
				if n.Type == tokend.EventTokenDeleted {
					continue // the token as it was before
				}
				if fmt.Sprint(m) != fmt.Sprint(n.Data) {
					t.Errorf("%s data:\n got %v\nwant %v", n.Type, n.Data, m)
				}
			}
			if a := evs[0].Actor; a != (tokend.EventActor{Type: "token", ID: "tok_admin", Name: "ci"}) {
				t.Errorf("actor of created = %+v", a)
			}
			if a := evs[5].Actor; a != (tokend.EventActor{Type: "owner", ID: "acct_1", Name: "Acme"}) {
				t.Errorf("actor of the portal's revoke = %+v", a)
			}
			for i, id := range map[int]string{8: other.ID, 11: third.ID} {
				if n := evs[i]; n.TokenID != id || n.Data["id"] != id || n.Data["status"] != string(tokend.StatusRevoked) || n.Data["revoked_at"] == nil {
					t.Errorf("token.revoked of a revoke-all: %+v", n)
				}
			}
			if d := evs[9].Data; d["owner_id"] != "acct_2" || d["count"] != float64(1) || d["app_id"] != app.ID {
				t.Errorf("owner.tokens_revoked data = %v", d)
			}
			if d := evs[12].Data; d["name"] != "shop" || d["count"] != float64(1) || d["app_id"] != app.ID {
				t.Errorf("app.tokens_revoked data = %v", d)
			}
			for _, tk := range []string{other.ID, third.ID} {
				stored, err := st.Token(ctx, tk)
				if err != nil {
					t.Fatal(err)
				}
				wantNoSecret(t, evs, secrets, stored.SecretHash)
			}
		})
	}
}

// wantNoSecret fails when any event's JSON holds a secret (or its random
// part), or a hash in hex or base64.
func wantNoSecret(t *testing.T, evs []tokend.Notification, secrets []secret.Secret, hashes ...[]byte) {
	t.Helper()
	h, _ := secret.NewHasher([]byte("stale-pepper-stale-pepper-stale-pepper"))
	var needles []string
	for _, s := range secrets {
		plain := s.Reveal()
		sum := h.Sum(plain)
		hashes = append(hashes, sum[:])
		needles = append(needles, plain, plain[len(plain)-20:])
	}
	for _, hash := range hashes {
		needles = append(needles, hex.EncodeToString(hash), base64.StdEncoding.EncodeToString(hash),
			base64.RawURLEncoding.EncodeToString(hash), base64.RawStdEncoding.EncodeToString(hash))
	}
	for _, n := range evs {
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range needles {
			if strings.Contains(string(b), needle) {
				t.Errorf("event %s holds a secret or hash: %s", n.Type, b)
			}
		}
	}
}

// The stale-token policy's disable raises token.disabled and
// token.inactive.
func TestStalePolicyRaisesInactive(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(eventT0)
	svc := newStaleService(staleStores(t)["sqlite"](), clock, nil)
	period := tokend.Duration(30 * 24 * time.Hour)
	app := must(svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "shop", DisableUnusedAfter: &period}))
	tok, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "idle", ExpiresIn: "unlimited"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * 24 * time.Hour)
	if n, err := svc.DisableUnused(ctx); err != nil || n != 1 {
		t.Fatalf("DisableUnused = %d, %v", n, err)
	}
	evs := allEvents(t, svc, tokend.NotificationFilter{TokenID: tok.ID})
	if got := eventTypes(evs); !slices.Equal(got, []string{tokend.EventTokenCreated, tokend.EventTokenDisabled, tokend.EventTokenInactive}) {
		t.Fatalf("events = %v", got)
	}
	if d := evs[2].Data; d["unused_for"] != "30d" || d["status"] != "disabled" || d["id"] != tok.ID {
		t.Errorf("token.inactive data = %v", d)
	}
	if a := evs[2].Actor; a.Type != "system" {
		t.Errorf("actor = %+v, want system", a)
	}
}

type expiring struct {
	typ, token, period string
}

func raise(t *testing.T, svc *manage.Service, seen *int) []expiring {
	t.Helper()
	if _, err := svc.RaiseTimeEvents(context.Background()); err != nil {
		t.Fatalf("RaiseTimeEvents: %v", err)
	}
	var out []expiring
	evs := allEvents(t, svc, tokend.NotificationFilter{})
	for _, n := range evs[*seen:] {
		if n.Type == tokend.EventTokenExpiring || n.Type == tokend.EventTokenExpired {
			p, _ := n.Data["notice_period"].(string)
			out = append(out, expiring{n.Type, n.Data["name"].(string), p})
		}
	}
	*seen = len(evs)
	return out
}

func TestTimeEvents(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(eventT0)
	svc := newStaleService(staleStores(t)["sqlite"](), clock, nil)
	notice := tokend.Duration(14 * 24 * time.Hour)
	plain := must(svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "plain"}))
	long := must(svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "long", ExpiryNotice: &notice}))
	mk := func(app tokend.App, name string, in time.Duration) tokend.Token {
		at := clock.Now().Add(in)
		tok, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: name, ExpiresAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	mk(plain, "two-days", 2*24*time.Hour)
	mk(plain, "thirty-days", 30*24*time.Hour)
	mk(long, "twenty-days", 20*24*time.Hour)
	mk(long, "ten-days", 10*24*time.Hour)
	off := mk(plain, "disabled", 24*time.Hour)
	if _, err := svc.DisableToken(ctx, tokend.SystemActor, off.ID, 0); err != nil {
		t.Fatal(err)
	}
	edited := mk(plain, "edited", 3*24*time.Hour)
	seen := 0
	check := func(step string, want ...expiring) {
		t.Helper()
		got := raise(t, svc, &seen)
		slices.SortFunc(got, func(a, b expiring) int { return strings.Compare(a.token+a.typ, b.token+b.typ) })
		slices.SortFunc(want, func(a, b expiring) int { return strings.Compare(a.token+a.typ, b.token+b.typ) })
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", step, got, want)
		}
	}
	const ex, exd = tokend.EventTokenExpiring, tokend.EventTokenExpired
	check("at once",
		expiring{ex, "two-days", "7d"}, expiring{ex, "ten-days", "14d"}, expiring{ex, "edited", "7d"})
	check("again: nothing new")

	// A changed expiry makes new notices due.
	later := clock.Now().Add(5 * 24 * time.Hour)
	if _, err := svc.UpdateToken(ctx, tokend.SystemActor, edited.ID, tokend.TokenPatch{ExpiresAt: &later}, 0); err != nil {
		t.Fatal(err)
	}
	check("after the edit", expiring{ex, "edited", "7d"})

	clock.Advance(24*time.Hour + time.Minute)
	check("a day later", expiring{ex, "two-days", "1d"}, expiring{exd, "disabled", ""})
	clock.Advance(24 * time.Hour)
	check("two days later", expiring{exd, "two-days", ""})
	check("again: nothing new")
	clock.Advance(4 * 24 * time.Hour)
	// edited expired at 5 days, before any run saw it within a day: its
	// 1-day notice is skipped.
	check("six days later", expiring{ex, "twenty-days", "14d"}, expiring{ex, "ten-days", "7d"}, expiring{exd, "edited", ""})

	// ten-days expired 16 days before this run, without the scheduler
	// running meanwhile: too long ago to announce.
	clock.Advance(20 * 24 * time.Hour)
	check("twenty days later", expiring{ex, "thirty-days", "7d"}, expiring{exd, "twenty-days", ""})
}

// Two instances on one database run the scheduler concurrently, many
// times: each event is raised once.
func TestTimeEventsOnceAcrossInstances(t *testing.T) {
	for name, open := range staleStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := testclock.New(eventT0)
			a, b := newStaleService(open(), clock, nil), newStaleService(open(), clock, nil)
			app := must(a.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "shop"}))
			for i := range 30 {
				at := clock.Now().Add(time.Duration(i+1) * 6 * time.Hour)
				if _, _, err := a.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: fmt.Sprint("t", i), ExpiresAt: &at}); err != nil {
					t.Fatal(err)
				}
			}
			for range 12 {
				var wg sync.WaitGroup
				for _, svc := range []*manage.Service{a, b, a, b} {
					wg.Go(func() {
						if _, err := svc.RaiseTimeEvents(ctx); err != nil {
							t.Errorf("RaiseTimeEvents: %v", err)
						}
					})
				}
				wg.Wait()
				clock.Advance(18 * time.Hour)
			}
			count := map[string]int{}
			for _, n := range allEvents(t, a, tokend.NotificationFilter{}) {
				if n.Type == tokend.EventTokenExpiring || n.Type == tokend.EventTokenExpired {
					count[fmt.Sprint(n.Type, n.TokenID, n.Data["notice_period"])]++
				}
			}
			expired := 0
			for k, c := range count {
				if c != 1 {
					t.Errorf("%s raised %d times", k, c)
				}
				if strings.HasPrefix(k, tokend.EventTokenExpired) {
					expired++
				}
			}
			if expired != 30 {
				t.Errorf("token.expired raised for %d tokens, want 30", expired)
			}
		})
	}
}
