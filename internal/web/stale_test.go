package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func TestTokenListSortsWithHeaderLinksAndShowsTheTotal(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app, err := h.svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, n := range []string{"bravo", "alpha", "charlie"} {
		ids[n] = mustToken(t, h, app, n).ID
		h.clock.Advance(time.Second)
	}
	admin := h.login(t, tokend.RoleAdmin)
	base := "/tokens?app_id=" + app.ID

	res := admin.get(t, base)
	wantInBody(t, res, `data-testid="token-total" role="status">3 tokens<`, `aria-sort="descending"><a href="`)
	if got := tokenRows(res.Body); !slices.Equal(got, []string{ids["charlie"], ids["alpha"], ids["bravo"]}) {
		t.Errorf("default order: %v", got)
	}
	byName := linkOf(res.Body, "sort-name")
	if byName != base+"&sort=name" {
		t.Errorf("name header links to %q", byName)
	}
	res = admin.get(t, byName)
	if got := tokenRows(res.Body); !slices.Equal(got, []string{ids["alpha"], ids["bravo"], ids["charlie"]}) {
		t.Errorf("by name: %v", got)
	}
	if !regexp.MustCompile(`<th scope="col" class="sortable" aria-sort="ascending"><a href="[^"]*" data-testid="sort-name">Name`).MatchString(res.Body) {
		t.Errorf("the name header does not say it sorts ascending:\n%s", res.Body)
	}
	if strings.Count(res.Body, "aria-sort=") != 1 {
		t.Errorf("aria-sort on %d headers, want 1", strings.Count(res.Body, "aria-sort="))
	}
	// The same header again reverses, and the filters keep the sort.
	desc := linkOf(res.Body, "sort-name")
	if !strings.Contains(desc, "order=desc") {
		t.Errorf("the sorted header links to %q, want the other order", desc)
	}
	res = admin.get(t, desc)
	if got := tokenRows(res.Body); !slices.Equal(got, []string{ids["charlie"], ids["bravo"], ids["alpha"]}) {
		t.Errorf("by name, descending: %v", got)
	}
	wantInBody(t, res, `<input type="hidden" name="sort" value="name">`, `<input type="hidden" name="order" value="desc">`)

	// Pages of one keep the sort and the total.
	var seen []string
	next := "/tokens?app_id=" + app.ID + "&sort=name&limit=1"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		body := admin.get(t, next).Body
		if !strings.Contains(body, ">3 tokens<") {
			t.Errorf("page %d lacks the total", pages)
		}
		seen = append(seen, tokenRows(body)...)
		next = linkOf(body, "next-page")
	}
	if !slices.Equal(seen, []string{ids["alpha"], ids["bravo"], ids["charlie"]}) {
		t.Errorf("pages by name: %v", seen)
	}

	// One token: "1 token".
	wantInBody(t, admin.get(t, base+"&q=alpha"), ">1 token<")
	// A hand-made bad sort is a 400 page that says why.
	res = admin.get(t, base+"&sort=secret")
	wantStatus(t, res, http.StatusBadRequest)
	wantInBody(t, res, "must be name, created_at, expires_at or last_used_at")
}

func TestTokenListFindsByIDAndLast4(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app, err := h.svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	one, sec, err := h.svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	two := mustToken(t, h, app, "two")
	admin := h.login(t, tokend.RoleAdmin)
	if got := tokenRows(admin.get(t, "/tokens?q="+two.ID).Body); !slices.Equal(got, []string{two.ID}) {
		t.Errorf("search by id: %v", got)
	}
	last4 := sec.Reveal()[len(sec.Reveal())-4:]
	if got := tokenRows(admin.get(t, "/tokens?q="+url.QueryEscape(last4)).Body); !slices.Contains(got, one.ID) {
		t.Errorf("search by the last 4 %q: %v", last4, got)
	}
	wantInBody(t, admin.get(t, "/tokens"), "Search by name, id or last 4", "a token id (tok_…), or the last 4 characters of its secret.")
}

func TestStaleFilterBadgeAndHomeCard(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app, err := h.svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string) tokend.Token {
		tok, _, err := h.svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: name, ExpiresIn: "365d"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	old, used := mk("forgotten"), mk("busy")
	h.clock.Advance(31 * 24 * time.Hour)
	young := mk("new")
	if err := h.store.RecordUsage(ctx, tokend.UsageBatch{Last: []tokend.LastUse{{TokenID: used.ID, At: h.clock.Now().Add(-time.Hour), IP: "192.0.2.1", Uses: 1}}}); err != nil {
		t.Fatal(err)
	}
	viewer := h.login(t, tokend.RoleViewer)

	res := viewer.get(t, "/tokens?app_id="+app.ID)
	badges := regexp.MustCompile(`<tr data-token-id="([^"]+)"(?s:.*?)</tr>`).FindAllStringSubmatch(res.Body, -1)
	for _, m := range badges {
		has := strings.Contains(m[0], `data-testid="stale-badge"`)
		if want := m[1] == old.ID; has != want {
			t.Errorf("row %s: stale badge %v, want %v", m[1], has, want)
		}
		if m[1] == old.ID && !strings.Contains(m[0], "Unused 30+ days") {
			t.Errorf("badge of the forgotten token: %s", m[0])
		}
	}
	res = viewer.get(t, "/tokens?app_id="+app.ID+"&unused_for=30d")
	if got := tokenRows(res.Body); !slices.Equal(got, []string{old.ID}) {
		t.Errorf("unused_for=30d: %v (young %s, used %s)", got, young.ID, used.ID)
	}
	wantInBody(t, res, `<option value="30d" selected>30 days or more</option>`, ">1 token<")
	res = viewer.get(t, "/tokens?unused_for=soon")
	wantStatus(t, res, http.StatusBadRequest)
	wantInBody(t, res, "must be a number of days such as 30d")

	// Home counts the active stale product tokens (not the bootstrap admin
	// token, created a month ago and never used: admin tokens are counted
	// apart) and links to them.
	body := viewer.get(t, "/").Body
	m := regexp.MustCompile(`href="([^"]*)" data-testid="count-stale"><span class="stat-n">(\d+)</span><span class="stat-label">Stale \(unused 30 days\)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no stale card on Home:\n%s", body)
	}
	listed := tokenRows(viewer.get(t, strings.ReplaceAll(m[1], "&amp;", "&")).Body)
	if m[2] != "1" || !slices.Equal(listed, []string{old.ID}) {
		t.Errorf("stale card says %s, links to %s listing %v", m[2], m[1], listed)
	}

	// At 90 days the badge says so.
	h.clock.Advance(60 * 24 * time.Hour)
	viewer = h.login(t, tokend.RoleViewer)
	wantInBody(t, viewer.get(t, "/tokens?app_id="+app.ID+"&unused_for=90d"), "Unused 90+ days")
}

func TestAppFormSetsTheStalePolicy(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	res := admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "disable_unused_after": {"12h"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Must be at least 1d", `value="12h"`)
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "disable_unused_after": {"soon"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Use a number of days such as 90d")
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "disable_unused_after": {"90d"}})
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/apps/")
	app, err := h.svc.App(context.Background(), tokend.SystemActor, id)
	if err != nil || app.DisableUnusedAfter == nil || app.DisableUnusedAfter.String() != "90d" {
		t.Fatalf("created %+v %v", app, err)
	}
	page := "/apps/" + id
	wantInBody(t, admin.get(t, page), "After 90d without use", `name="disable_unused_after" value="90d"`)
	wantRedirect(t, admin.submit(t, page, page, url.Values{"version": {"1"}, "name": {"Shop"}, "token_prefix": {"tkd"},
		"disable_unused_after": {""}}), page)
	app, _ = h.svc.App(context.Background(), tokend.SystemActor, id)
	if app.DisableUnusedAfter != nil {
		t.Errorf("after clearing: %v", app.DisableUnusedAfter)
	}
}
