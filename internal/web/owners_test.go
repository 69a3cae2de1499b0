package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func TestOwnersOnTheTokenPages(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)

	// Generate API token takes an optional owner.
	form := createForm(f.app, "CI deploys")
	form.Set("owner_id", "acct_42")
	form.Set("owner_name", "Acme <Ltd>")
	res := admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/tokens/")
	if tok := h.token(t, id); tok.OwnerID != "acct_42" || tok.OwnerName != "Acme <Ltd>" {
		t.Fatalf("created owner %q %q", tok.OwnerID, tok.OwnerName)
	}
	// The same name for another owner is fine.
	form.Set("owner_id", "acct_43")
	wantStatus(t, admin.submit(t, "/tokens", "/tokens", form), http.StatusSeeOther)

	// The token page shows the owner, escaped.
	page := admin.get(t, "/tokens/"+id)
	wantStatus(t, page, http.StatusOK)
	wantInBody(t, page, `Acme &lt;Ltd&gt;`, `<span class="mono">acct_42</span>`)

	// The list shows the owner under the application, and filters by owner.
	list := admin.get(t, "/tokens?owner_id=acct_42")
	wantStatus(t, list, http.StatusOK)
	wantInBody(t, list, `Application · owner</th>`, `name="owner_id" value="acct_42"`, `data-testid="owner"`)
	if n := strings.Count(list.Body, `data-token-id="`); n != 1 {
		t.Errorf("the list filtered to acct_42 has %d rows, want 1", n)
	}
	all := admin.get(t, "/tokens")
	if !strings.Contains(all.Body, "—") || strings.Count(all.Body, `data-token-id="`) < 3 {
		t.Errorf("the whole list lacks tokens without owner (shown as —)")
	}
	// A junk filter is a 400 naming the problem, not a 500.
	bad := admin.get(t, "/tokens?owner_id="+url.QueryEscape("a b"))
	wantStatus(t, bad, http.StatusBadRequest)

	// A bad owner id in the form comes back with the field's problem.
	form.Set("owner_id", "has space")
	res = admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "visible ASCII")
}

// ownerTokens makes the tokens of the owner page's tests: two owners of
// app with a token of the same name, one of them with a second token, and
// the first owner's token in the other app.
func ownerTokens(t *testing.T, h *harness, f fixture) (a1, a2, b1, other tokend.Token) {
	t.Helper()
	ctx, sys := context.Background(), tokend.SystemActor
	mk := func(app tokend.App, owner, ownerName, name string) tokend.Token {
		h.clock.Advance(time.Second) // the newest first
		tok, _, err := h.svc.CreateToken(ctx, sys, tokend.TokenInput{AppID: app.ID, Name: name,
			OwnerID: owner, OwnerName: ownerName})
		if err != nil {
			t.Fatalf("creating %s for %s: %v", name, owner, err)
		}
		return tok
	}
	a1 = mk(f.app, "acct_A", "Alpha <Inc>", "CI deploys")
	a2 = mk(f.app, "acct_A", "Alpha <Inc>", "nightly export")
	b1 = mk(f.app, "acct_B", "Beta", "CI deploys")
	other = mk(f.other, "acct_A", "Alpha <Inc>", "CI deploys")
	return a1, a2, b1, other
}

func TestOwnerPage(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	a1, a2, b1, other := ownerTokens(t, h, f)
	pageURL := "/apps/" + f.app.ID + "/owners/acct_A"

	page := admin.get(t, pageURL)
	wantStatus(t, page, http.StatusOK)
	wantInBody(t, page, `Alpha &lt;Inc&gt;`, `data-copy-text="acct_A"`, `data-testid="owner-revoke-all"`,
		`data-testid="owner-count-active"><span class="stat-n">2</span>`)
	if rows := tokenRows(page.Body); !slices.Equal(rows, []string{a2.ID, a1.ID}) {
		t.Errorf("the owner page lists %v, want only acct_A's tokens of Acme %v", rows, []string{a2.ID, a1.ID})
	}
	for _, id := range []string{b1.ID, other.ID} {
		if strings.Contains(page.Body, `data-token-id="`+id+`"`) {
			t.Errorf("the owner page lists %s, not acct_A's in Acme", id)
		}
	}
	// The recent activity tells of their tokens only.
	wantInBody(t, page, `data-testid="activity"`, `generated the token <a href="/tokens/`+a1.ID+`">`)
	if strings.Contains(page.Body, `/tokens/`+b1.ID+`"`) {
		t.Error("the owner page's activity tells of another owner's token")
	}

	// The list and the token page link to the owner's page; the list
	// filtered to the owner offers it.
	ownerLink := `href="` + pageURL + `"`
	wantInBody(t, admin.get(t, "/tokens"), ownerLink)
	wantInBody(t, admin.get(t, "/tokens/"+a1.ID), ownerLink)
	wantInBody(t, admin.get(t, "/tokens?owner_id=acct_A&app_id="+f.app.ID), ownerLink+` data-testid="open-owner-page"`)
	all := admin.get(t, "/tokens?owner_id=acct_A")
	if n := strings.Count(all.Body, `data-testid="open-owner-page"`); n != 2 {
		t.Errorf("the list of acct_A in two apps offers %d owner pages, want 2", n)
	}

	// Paginated like the list, on the owner's page.
	one := admin.get(t, pageURL+"?limit=1")
	wantStatus(t, one, http.StatusOK)
	next := linkOf(one.Body, "next-page")
	if !strings.HasPrefix(next, pageURL+"?cursor=") {
		t.Fatalf("the owner page's next page is %q", next)
	}
	if rows := tokenRows(admin.get(t, next).Body); !slices.Equal(rows, []string{a1.ID}) {
		t.Errorf("the second page lists %v, want %v", rows, []string{a1.ID})
	}

	// An owner without tokens: an empty state, not an error.
	empty := admin.get(t, "/apps/"+f.app.ID+"/owners/acct_nobody")
	wantStatus(t, empty, http.StatusOK)
	wantInBody(t, empty, `data-testid="empty-state"`, "acct_nobody has no token in Acme")
	if strings.Contains(empty.Body, `data-testid="owner-revoke-all"`) {
		t.Error("revoke all is offered for an owner without tokens")
	}
}

func TestOwnerPageBadIDs(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	ownerTokens(t, h, f)
	for _, p := range []string{
		"/apps/" + f.app.ID + "/owners/a%00b",
		"/apps/" + f.app.ID + "/owners/%ff",
		"/apps/" + f.app.ID + "/owners/a%20b",
		"/apps/" + f.app.ID + "/owners/" + strings.Repeat("x", tokend.MaxOwnerIDLen+1),
		"/apps/" + f.app.ID + "/owners/" + strings.Repeat("x", tokend.MaxOwnerIDLen+1) + "/revoke-all",
		"/apps/app_nope/owners/acct_A",
		"/apps/%ff/owners/acct_A",
		"/apps/" + tokend.SystemAppID + "/owners/acct_A",
	} {
		res := admin.get(t, p)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	csrf := admin.csrf(t, "/apps/"+f.app.ID+"/owners/acct_A")
	for _, p := range []string{"/apps/" + f.app.ID + "/owners/%ff/revoke-all", "/apps/app_nope/owners/acct_A/revoke-all"} {
		if res := admin.post(t, p, url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, res.StatusCode)
		}
	}
	// 128 characters is an owner id: its (empty) page.
	long := "/apps/" + f.app.ID + "/owners/" + strings.Repeat("x", tokend.MaxOwnerIDLen)
	wantStatus(t, admin.get(t, long), http.StatusOK)
	// An id with characters a path escapes round-trips through its link.
	odd := "a/b?c#d%e"
	if _, _, err := h.svc.CreateToken(context.Background(), tokend.SystemActor, tokend.TokenInput{AppID: f.app.ID,
		Name: "odd", OwnerID: odd}); err != nil {
		t.Fatal(err)
	}
	link := ownerURL(f.app.ID, odd)
	wantInBody(t, admin.get(t, "/tokens?owner_id="+url.QueryEscape(odd)), `href="`+link+`"`)
	res := admin.get(t, link)
	wantStatus(t, res, http.StatusOK)
	if rows := tokenRows(res.Body); len(rows) != 1 {
		t.Errorf("the page of %q lists %d tokens, want 1", odd, len(rows))
	}
	// "." and "..": a browser resolves them in a path, so their link is
	// the filtered list, and the escaped path is no page.
	if _, _, err := h.svc.CreateToken(context.Background(), tokend.SystemActor, tokend.TokenInput{AppID: f.app.ID,
		Name: "dots", OwnerID: ".."}); err != nil {
		t.Fatal(err)
	}
	wantInBody(t, admin.get(t, "/tokens"), `href="/tokens?app_id=`+f.app.ID+`&amp;owner_id=..`)
	wantStatus(t, admin.get(t, "/apps/"+f.app.ID+"/owners/%2E%2E"), http.StatusNotFound)
}

func TestOwnerRevokeAll(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	a1, a2, b1, other := ownerTokens(t, h, f)
	pageURL := "/apps/" + f.app.ID + "/owners/acct_A"

	// A viewer sees the page without the action, and cannot take it.
	viewer := h.login(t, tokend.RoleViewer)
	vp := viewer.get(t, pageURL)
	wantStatus(t, vp, http.StatusOK)
	if strings.Contains(vp.Body, "owner-revoke-all") {
		t.Error("a viewer is offered revoke all")
	}
	if res := viewer.get(t, pageURL+"/revoke-all"); res.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's confirmation page: %d, want 403", res.StatusCode)
	}
	if res := viewer.submit(t, pageURL, pageURL+"/revoke-all", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's revoke all: %d, want 403", res.StatusCode)
	}
	// Without the form token: refused.
	if res := admin.post(t, pageURL+"/revoke-all", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("revoke all without CSRF: %d, want 403", res.StatusCode)
	}
	if got := h.token(t, a1.ID).Status; got != tokend.StatusActive {
		t.Fatalf("a refused revoke all left a1 %s", got)
	}

	// The confirmation says how many; the action revokes those only.
	confirm := admin.get(t, pageURL+"/revoke-all")
	wantStatus(t, confirm, http.StatusOK)
	wantInBody(t, confirm, `This revokes <strong>2 tokens</strong>`)
	res := admin.submit(t, pageURL+"/revoke-all", pageURL+"/revoke-all", nil)
	wantRedirect(t, res, pageURL)
	done := admin.get(t, pageURL)
	wantInBody(t, done, "Revoked 2 tokens of acct_A.", `revoked every token of the owner acct_A in the application`)
	for _, tok := range []tokend.Token{a1, a2} {
		if got := h.token(t, tok.ID).Status; got != tokend.StatusRevoked {
			t.Errorf("%s is %s after revoke all, want revoked", tok.Name, got)
		}
	}
	for _, tok := range []tokend.Token{b1, other, f.active} {
		if got := h.token(t, tok.ID).Status; got == tokend.StatusRevoked {
			t.Errorf("%s (%s, %s) was revoked with acct_A's tokens of Acme", tok.Name, tok.OwnerID, tok.AppID)
		}
	}
	ev, err := h.svc.Events(context.Background(), tokend.SystemActor, tokend.EventFilter{Action: tokend.ActionOwnerRevokeAll})
	if err != nil || len(ev.Items) != 1 || ev.Items[0].Actor != "user:"+h.users[tokend.RoleAdmin].ID {
		t.Errorf("revoke-all audit = %+v, %v", ev.Items, err)
	}
	if strings.Contains(done.Body, `data-testid="owner-revoke-all"`) {
		t.Error("revoke all is still offered with nothing left to revoke")
	}
}
