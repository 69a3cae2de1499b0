package web

// Home: the counts of product tokens (admin tokens apart), each a link to
// exactly the tokens it counts; the first-run steps; the empty list of an
// application offering to generate one there; activity as sentences.

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// homeCard answers the number shown on the home card (or the admin tokens'
// line) with data-testid id and where it links to ("", "" when missing).
func homeCard(body, id string) (n, href string) {
	m := regexp.MustCompile(`<a [^>]*href="([^"]*)"[^>]*data-testid="` + id + `">(?:<span class="stat-n">)?(\d+)`).FindStringSubmatch(body)
	if m == nil {
		return "", ""
	}
	return m[2], html.UnescapeString(m[1])
}

// mainText answers the text of the page's main element, tags removed and
// spaces collapsed, as a person reads it.
func mainText(body string) string {
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	body = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(body)), " ")
}

func TestHomeCountsProductTokensAndLinksToTheSameSet(t *testing.T) {
	h := newHarness(t)
	f := newFixture(t, h)
	ctx, sys := context.Background(), tokend.SystemActor
	mk := func(appID, name, expires string) tokend.Token {
		t.Helper()
		tok, _, err := h.svc.CreateToken(ctx, sys, tokend.TokenInput{AppID: appID, Name: name, ExpiresIn: expires,
			Access: tokend.AccessReadOnly})
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
		return tok
	}
	soonGone := mk(f.app.ID, "soon gone", "3d")
	short := mk(f.app.ID, "short", "7d")
	// Admin tokens in every state: none of them is a product token.
	admins, err := h.svc.Tokens(ctx, sys, tokend.TokenFilter{AppID: tokend.SystemAppID})
	if err != nil || len(admins.Items) != 1 {
		t.Fatalf("admin tokens before the test: %v, %v; want the bootstrap token", admins.Items, err)
	}
	bootstrap := admins.Items[0]
	adminSoon := mk(tokend.SystemAppID, "admin soon", "3d")
	adminShort := mk(tokend.SystemAppID, "admin short", "7d")
	adminOff := mk(tokend.SystemAppID, "admin paused", "30d")
	if _, err := h.svc.DisableToken(ctx, sys, adminOff.ID, 0); err != nil {
		t.Fatal(err)
	}
	adminGone := mk(tokend.SystemAppID, "admin gone", "30d")
	if _, err := h.svc.RevokeToken(ctx, sys, adminGone.ID, 0); err != nil {
		t.Fatal(err)
	}

	// checkCards opens Home and every card's link: the card's number is
	// the size of the set, and the link lists exactly that set.
	checkCards := func(t *testing.T, want map[string][]string) {
		t.Helper()
		viewer := h.login(t, tokend.RoleViewer)
		home := viewer.get(t, "/")
		wantStatus(t, home, http.StatusOK)
		for _, card := range []string{"count-active", "count-expiring", "count-expired", "count-disabled", "count-revoked", "count-stale", "count-admin"} {
			ids := want[card]
			n, href := homeCard(home.Body, card)
			if href == "" {
				t.Errorf("Home has no %s card that links somewhere\n%s", card, home.Body)
				continue
			}
			if n != strconv.Itoa(len(ids)) {
				t.Errorf("%s reads %q, want %d", card, n, len(ids))
			}
			res := viewer.get(t, href)
			wantStatus(t, res, http.StatusOK)
			got := tokenRows(res.Body)
			slices.Sort(got)
			if ids = slices.Sorted(slices.Values(ids)); !slices.Equal(got, ids) {
				t.Errorf("%s links to %s, which lists %v; want %v", card, href, got, ids)
			}
		}
	}
	t.Run("now", func(t *testing.T) {
		checkCards(t, map[string][]string{
			"count-active":   {short.ID, soonGone.ID, f.active.ID},
			"count-expiring": {soonGone.ID},
			"count-disabled": {f.disabled.ID},
			"count-revoked":  {f.revoke.ID},
			"count-admin":    {adminShort.ID, adminSoon.ID, bootstrap.ID},
		})
	})
	t.Run("a week later", func(t *testing.T) {
		h.clock.Advance(7*24*time.Hour + time.Hour)
		defer h.clock.Advance(-(7*24*time.Hour + time.Hour))
		checkCards(t, map[string][]string{
			"count-active":   {f.active.ID},
			"count-expired":  {short.ID, soonGone.ID},
			"count-disabled": {f.disabled.ID},
			"count-revoked":  {f.revoke.ID},
			"count-admin":    {bootstrap.ID},
		})
	})
}

func TestHomeFirstRunStepsLeadToAnApplicationFirst(t *testing.T) {
	h := newHarness(t) // the bootstrap admin token, no application
	owner := h.login(t, tokend.RoleOwner)

	t.Run("no application", func(t *testing.T) {
		home := owner.get(t, "/")
		wantStatus(t, home, http.StatusOK)
		text := mainText(home.Body)
		app, gen := strings.Index(text, "Create an application"), strings.Index(text, "Generate an API token")
		if app < 0 || gen < 0 || app > gen {
			t.Errorf("the first steps are not Create an application, then Generate: %q", text)
		}
		wantInBody(t, home, `href="/apps/new" id="home-create-app"`)
		if strings.Contains(home.Body, `href="/tokens/new`) {
			t.Errorf("Home offers to generate a token before any application exists:\n%s", home.Body)
		}
		if n, _ := homeCard(home.Body, "count-active"); n != "0" {
			t.Errorf("active tokens read %q with only the bootstrap admin token, want 0", n)
		}
		if n, href := homeCard(home.Body, "count-admin"); n != "1" || href == "" {
			t.Errorf("admin tokens read %q (link %q), want 1 with a link", n, href)
		}
		// The list, too, leads to an application rather than to an admin token.
		list := owner.get(t, "/tokens")
		if strings.Contains(list.Body, `id="generate-token"`) || strings.Contains(list.Body, `id="create-dialog"`) {
			t.Error("the token list offers to generate a token before any application exists")
		}
		wantInBody(t, list, `data-testid="create-app-first"`)
		// A viewer is told whom to ask.
		wantInBody(t, h.login(t, tokend.RoleViewer).get(t, "/"), "Ask an administrator")
	})

	app, err := h.svc.CreateApp(context.Background(), tokend.SystemActor, tokend.AppInput{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("an application, no token", func(t *testing.T) {
		home := owner.get(t, "/")
		wantInBody(t, home, `data-testid="first-steps"`, `href="/tokens/new" id="home-generate"`)
		if strings.Contains(home.Body, `id="home-create-app"`) {
			t.Error("Create an application is still offered as the next step")
		}
	})
	if _, _, err := h.svc.CreateToken(context.Background(), tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "deploy"}); err != nil {
		t.Fatal(err)
	}
	t.Run("a token", func(t *testing.T) {
		home := owner.get(t, "/")
		if strings.Contains(home.Body, `data-testid="first-steps"`) {
			t.Error("the first steps stay after the first token")
		}
		wantInBody(t, home, `id="home-generate"`)
	})
}

func TestEmptyListOfAnAppOffersToGenerateThere(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	fresh, err := h.svc.CreateApp(context.Background(), tokend.SystemActor, tokend.AppInput{Name: "Fresh"})
	if err != nil {
		t.Fatal(err)
	}
	res := admin.get(t, "/tokens?app_id="+fresh.ID)
	wantStatus(t, res, http.StatusOK)
	if href := linkOf(res.Body, "generate-for-app"); href != "/tokens/new?app_id="+fresh.ID {
		t.Errorf("the empty list of Fresh offers %q, want /tokens/new?app_id=%s", href, fresh.ID)
	}
	wantInBody(t, res, "Generate API token for Fresh")
	selected := regexp.MustCompile(`<option value="` + fresh.ID + `"[^>]* selected>`)
	if !selected.MatchString(res.Body) {
		t.Error("the create dialog does not preselect Fresh")
	}
	if page := admin.get(t, "/tokens/new?app_id="+fresh.ID); !selected.MatchString(page.Body) {
		t.Error("the create page (without JavaScript) does not preselect Fresh")
	}
	// With a narrower filter, the same offer and a way back to the app.
	wantInBody(t, admin.get(t, "/tokens?status=revoked&app_id="+f.app.ID), `data-testid="generate-for-app"`, "match these filters")
	// A viewer is offered nothing.
	if strings.Contains(h.login(t, tokend.RoleViewer).get(t, "/tokens?app_id="+fresh.ID).Body, "generate-for-app") {
		t.Error("a viewer is offered to generate a token")
	}
}

func TestTokenListKindFilter(t *testing.T) {
	h, f, viewer := withFixture(t, tokend.RoleViewer)
	// Every token is the fixture's three and the bootstrap admin token.
	var want []string
	for _, id := range tokenRows(viewer.get(t, "/tokens").Body) {
		if h.token(t, id).AppID != tokend.SystemAppID {
			want = append(want, id)
		}
	}
	got := tokenRows(viewer.get(t, "/tokens?kind=product").Body)
	if !slices.Equal(got, want) || len(got) != 3 || !slices.Contains(got, f.active.ID) {
		t.Errorf("kind=product lists %v, want %v: every token but the admin token", got, want)
	}
	res := viewer.get(t, "/tokens?kind=admins")
	wantStatus(t, res, http.StatusBadRequest)
	wantInBody(t, res, "Kind: must be product")
}

func TestHomeActivityReadsAsSentences(t *testing.T) {
	h, f, viewer := withFixture(t, tokend.RoleViewer)
	ctx, ana := context.Background(), h.users[tokend.RoleOwner].Actor("192.0.2.7")
	if _, err := h.svc.RevokeToken(ctx, ana, f.active.ID, 0); err != nil {
		t.Fatal(err)
	}
	desc := "runs the nightly deploy"
	if _, err := h.svc.UpdateToken(ctx, ana, f.disabled.ID, tokend.TokenPatch{Description: &desc}, 0); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(3 * time.Minute)
	text := mainText(viewer.get(t, "/").Body)
	for _, want := range []string{
		"Olivia Owner revoked the token ci deploy of Acme · 3 minutes ago",
		// An edit's event does not carry the name: it is read from the token.
		"Olivia Owner edited the token browser plugin of Acme · 3 minutes ago",
		"tokend created the application Other",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Home does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "token.revoke") || strings.Contains(text, "user:") {
		t.Errorf("Home shows raw audit fields:\n%s", text)
	}
}

func TestTellSentences(t *testing.T) {
	tokens := map[string]string{"tok_1": "deploy bot"}
	apps := map[string]string{"app_1": "Shop"}
	ev := func(action string, details map[string]any) tokend.Event {
		return tokend.Event{ActorName: "Ana", Actor: "user:usr_1", Action: action, AppID: "app_1", TokenID: "tok_1", Details: details}
	}
	noToken := func(e tokend.Event) tokend.Event { e.TokenID = ""; return e }
	for _, c := range []struct {
		e    tokend.Event
		want string
	}{
		{ev(tokend.ActionTokenCreate, nil), "Ana generated the token [deploy bot](/tokens/tok_1) of [Shop](/apps/app_1)"},
		{ev(tokend.ActionTokenRevoke, nil), "Ana revoked the token [deploy bot](/tokens/tok_1) of [Shop](/apps/app_1)"},
		{ev(tokend.ActionTokenRotate, nil), "Ana rotated the secret of the token [deploy bot](/tokens/tok_1) of [Shop](/apps/app_1)"},
		{ev(tokend.ActionTokenDelete, nil), "Ana deleted the token deploy bot of [Shop](/apps/app_1)"},
		{tokend.Event{ActorName: "tokend verification", Action: tokend.ActionTokenOldSecret, AppID: "app_1", TokenID: "tok_1", IP: "203.0.113.9"},
			"Someone used a rotated-out secret of the token [deploy bot](/tokens/tok_1) of [Shop](/apps/app_1) from 203.0.113.9"},
		{noToken(ev(tokend.ActionAppCreate, map[string]any{"name": "Shop"})), "Ana created the application [Shop](/apps/app_1)"},
		{tokend.Event{ActorName: "Ana", Action: tokend.ActionAppDelete, AppID: "app_9", Details: map[string]any{"name": "Old shop"}},
			"Ana deleted the application Old shop"},
		{noToken(ev(tokend.ActionAppRevokeAll, nil)), "Ana revoked every token of the application [Shop](/apps/app_1)"},
		{tokend.Event{ActorName: "Ana", Action: tokend.ActionUserUpdate,
			Details: map[string]any{"email": "vic@example.com", "role": map[string]any{"from": "viewer", "to": "admin"}}},
			"Ana made vic@example.com an admin"},
		{tokend.Event{ActorName: "Ana", Action: tokend.ActionUserUpdate,
			Details: map[string]any{"email": "vic@example.com", "disabled": map[string]any{"from": false, "to": true}}},
			"Ana disabled the user vic@example.com"},
		{tokend.Event{ActorName: "Ana", Action: tokend.ActionUserLogin}, "Ana signed in"},
		{tokend.Event{ActorName: "owner (bootstrap)", Actor: "token:tok_9", Action: tokend.ActionUserSetup, Details: map[string]any{"name": "Ana", "email": "ana@example.com"}},
			"The admin token owner (bootstrap) set up tokend for its owner Ana"},
		{tokend.Event{Actor: "token:tok_2", Action: "something.new"}, "token:tok_2 did something.new"},
	} {
		a := tell(c.e, tokens, apps)
		got := a.Actor
		for _, p := range a.Parts {
			if p.URL != "" {
				got += "[" + p.Text + "](" + p.URL + ")"
			} else {
				got += p.Text
			}
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.e.Action, got, c.want)
		}
	}
}
