package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// The application form sets, shows and clears the app's own expiry
// notice.
func TestAppFormSetsTheExpiryNotice(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	res := admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "expiry_notice": {"30m"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "1h to 365d", `value="30m"`, `href="#a-notice"`)
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "disable_unused_after": {"soon"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, `href="#a-unused"`)
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "expiry_notice": {"soon"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Use a duration such as 14d")
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "expiry_notice": {"14d"}})
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/apps/")
	page := "/apps/" + id
	wantInBody(t, admin.get(t, page), "14d, 7d and 1d before", `name="expiry_notice" value="14d"`)
	wantRedirect(t, admin.submit(t, page, page, url.Values{"version": {"1"}, "name": {"Shop"}, "token_prefix": {"tkd"},
		"expiry_notice": {""}}), page)
	app, _ := h.svc.App(context.Background(), tokend.SystemActor, id)
	if app.ExpiryNotice != nil {
		t.Errorf("after clearing: %v", app.ExpiryNotice)
	}
}

// The token page lists the token's events, newest first, 20 at a time
// with a link to the older ones.
func TestTokenPageListsItsEvents(t *testing.T) {
	h := newHarness(t)
	ctx, sys := context.Background(), tokend.SystemActor
	app, err := h.svc.CreateApp(ctx, sys, tokend.AppInput{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.svc.CreateToken(ctx, sys, tokend.TokenInput{AppID: app.ID, Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		if _, err := h.svc.DisableToken(ctx, sys, tok.ID, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.EnableToken(ctx, sys, tok.ID, 0); err != nil {
			t.Fatal(err)
		}
	}
	viewer := h.login(t, tokend.RoleViewer)
	res := viewer.get(t, "/tokens/"+tok.ID)
	body := res.Body
	if n := strings.Count(body, "<td class=\"mono\" data-label=\"Event\">"); n != 20 {
		t.Errorf("the token page shows %d events, want 20", n)
	}
	wantInBody(t, res, "token.enabled", "token.disabled", `data-testid="token-events-more"`)
	i := strings.Index(body, `href="/tokens/`+tok.ID+`?events_cursor=`)
	if i < 0 {
		t.Fatal("no link to the older events")
	}
	more := body[i+len(`href="`):]
	more = more[:strings.Index(more, `"`)]
	olderRes := viewer.get(t, strings.ReplaceAll(more, "&amp;", "&"))
	older := olderRes.Body
	if n := strings.Count(older, "<td class=\"mono\" data-label=\"Event\">"); n != 5 {
		t.Errorf("the older page shows %d events, want 5", n)
	}
	wantInBody(t, olderRes, "token.created", "Newest events")
	if strings.Contains(older, `data-testid="token-events-more"`) {
		t.Error("the last page links to older events")
	}
}
