package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tokend/tokend"
)

// TestDashboardReveal walks, in a real Chromium at 1280 and 390 px wide,
// what issue 11 asked of the secret-once reveal and of the confirmations:
// rotating from the list's row menu and from the token's page shows the new
// secret once (it verifies VALID, a reload shows it no more); the reveal
// names the token and app ids and gives ready-to-paste next steps, and asks
// before Escape or a click outside closes it; the list shows the masked
// secret as text and copies only a labelled id; every destructive action,
// from the row menus and for users too, is confirmed in the same dialog;
// and a form sent after the session ended leads to sign-in and back to the
// page, with a message. No console errors on any page.
func TestDashboardReveal(t *testing.T) {
	d, s := startDashboard(t, t.TempDir())
	b := d.b
	s.run("setup", d.setup)
	s.run("an application", d.createApp)
	for _, w := range []struct {
		width, height int64
	}{{1280, 900}, {390, 844}} {
		r := &revealWalk{d: d, w: w.width, h: w.height}
		s.run(fmt.Sprintf("%d px: window", w.width), r.resize)
		s.run(fmt.Sprintf("%d px: the reveal after create: ids, next steps, asks before closing", w.width), r.createReveal)
		s.run(fmt.Sprintf("%d px: the list shows the masked secret and copies a labelled id", w.width), r.listPill)
		s.run(fmt.Sprintf("%d px: rotate from the list's row menu", w.width), r.rotateFromList)
		s.run(fmt.Sprintf("%d px: rotate from the token's page", w.width), r.rotateFromPage)
		s.run(fmt.Sprintf("%d px: disable and delete from the row menu, confirmed", w.width), r.listConfirmations)
		s.run(fmt.Sprintf("%d px: disabling and deleting a user, confirmed", w.width), r.userConfirmations)
		s.run(fmt.Sprintf("%d px: a form sent after the session ended", w.width), r.sessionEnded)
		s.run(fmt.Sprintf("%d px: a create form sent after the session ended is kept", w.width), r.createKept)
		s.run(fmt.Sprintf("%d px: revoke from the row menu and revoke-all, confirmed", w.width), r.revokes)
	}
	b.run(t, "widening the window again", chromedp.EmulateViewport(1280, 900))
}

// revealWalk is one width's walk.
type revealWalk struct {
	d    *dashboard
	w, h int64
	id   string // the token of this width
	sec  string // its current secret
}

func (r *revealWalk) name(s string) string { return fmt.Sprintf("rv-%d-%s", r.w, s) }

func (r *revealWalk) resize(t *testing.T) {
	r.d.b.run(t, "sizing the window", chromedp.EmulateViewport(r.w, r.h))
}

// inView fails unless the element matching sel is rendered and lies
// within the window's width (and, when whole, its height).
func (r *revealWalk) inView(t *testing.T, sel string, whole bool) {
	t.Helper()
	got := eval[string](t, r.d.b, fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		if (!e) return "missing";
		if (!e.checkVisibility({visibilityProperty: true})) return "hidden";
		const b = e.getBoundingClientRect(), w = document.documentElement.clientWidth, h = window.innerHeight;
		if (b.left < -1 || b.right > w + 1) return "outside the width: " + Math.round(b.left) + ".." + Math.round(b.right) + " of " + w;
		if (%t && (b.top < -1 || b.bottom > h + 1)) return "outside the height: " + Math.round(b.top) + ".." + Math.round(b.bottom) + " of " + h;
		if (b.bottom < 0 || b.top > h) return "scrolled away";
		return "" })()`, sel, whole))
	if got != "" {
		t.Fatalf("%s at %d px: %s", sel, r.w, got)
	}
}

// closeReveal closes the reveal with its own button, as a person who
// stored the secret does.
func (r *revealWalk) closeReveal(t *testing.T) {
	t.Helper()
	b := r.d.b
	b.clickText(t, `[data-testid="reveal-dialog"]`, "I have stored it safely")
	b.run(t, "waiting for the reveal to close", chromedp.WaitNotVisible(chromedp.ID("reveal-dialog")))
}

// onceOnly reloads the token's page and fails if the secret is still there.
func (r *revealWalk) onceOnly(t *testing.T, sec string) {
	t.Helper()
	b := r.d.b
	b.run(t, "reloading", chromedp.Reload())
	b.run(t, "waiting for the page", chromedp.WaitVisible(chromedp.CSS("h1")))
	if b.exists(t, "#new-secret") {
		t.Fatal("the secret dialog is shown again after a reload")
	}
	if eval[bool](t, b, fmt.Sprintf("document.documentElement.outerHTML.includes(%q)", sec)) {
		t.Fatal("the secret is still in the page after a reload")
	}
}

func (r *revealWalk) createReveal(t *testing.T) {
	d, b := r.d, r.d.b
	r.id, r.sec = d.newToken(t, fmt.Sprintf("deploy %d", r.w), d.appID)
	d.verify(t, r.sec, tokend.CodeValid)
	r.inView(t, "#new-secret", true)

	// The ids beside the secret, and next steps with the real values.
	if got := b.text(t, "#reveal-token-id"); got != r.id {
		t.Errorf("the reveal names token id %q, want %q", got, r.id)
	}
	if got := b.text(t, "#reveal-app-id"); got != d.appID {
		t.Errorf("the reveal names app id %q, want %q", got, d.appID)
	}
	curl := b.text(t, `[data-testid="snippet-curl"]`)
	for _, want := range []string{"curl -i " + d.in.url + "/v1/auth", "Authorization: Bearer " + r.sec, d.in.url + "/v1/verify"} {
		if !strings.Contains(curl, want) {
			t.Errorf("the curl snippet lacks %q:\n%s", want, curl)
		}
	}
	r.inView(t, `[data-testid="snippet-curl"]`, false)
	env := eval[string](t, b, `document.querySelector('[data-testid="snippet-env"]').textContent`)
	if env != "SHOP_API_TOKEN="+r.sec {
		t.Errorf("the .env line reads %q", env)
	}
	for _, sn := range []struct{ sel, want string }{
		{"snippet-go", `client.New("` + d.in.url + `")`},
		{"snippet-ts", `new Tokend({ baseUrl: "` + d.in.url + `" })`},
		{"snippet-ts", "process.env.SHOP_API_TOKEN"},
		{"snippet-py", `tokend.Client("` + d.in.url + `")`},
		{"snippet-py", `os.environ["SHOP_API_TOKEN"]`},
		{"snippet-nginx", "proxy_pass " + d.in.url + "/v1/auth;"},
		{"snippet-caddy", "forward_auth " + strings.TrimPrefix(d.in.url, "http://")},
	} {
		got := eval[string](t, b, fmt.Sprintf(`document.querySelector('[data-testid=%q]').textContent`, sn.sel))
		if !strings.Contains(got, sn.want) {
			t.Errorf("%s lacks %q:\n%s", sn.sel, sn.want, got)
		}
	}
	if !b.exists(t, `[data-testid="reveal-dialog"] a[href="/openapi.json"]`) {
		t.Error("the reveal has no link to the API document")
	}
	// The nginx and Caddy lines open on demand, and fit the window then.
	if b.visible(t, `[data-testid="reveal-ask"]`) {
		t.Error("the reveal asks whether to close before anyone tried to close it")
	}
	b.clickText(t, `[data-testid="next-steps"]`, "Protect any API behind nginx or Caddy (forward auth)")
	r.inView(t, `[data-testid="snippet-nginx"]`, false)
	b.clickText(t, `[data-testid="next-steps"]`, "Protect a TypeScript service (Express, Fastify, Hono, Next.js)")
	r.inView(t, `[data-testid="snippet-ts"]`, false)
	b.clickText(t, `[data-testid="next-steps"]`, "Protect a Python service (WSGI, ASGI)")
	r.inView(t, `[data-testid="snippet-py"]`, false)
	b.run(t, "back to the secret", chromedp.Focus(chromedp.ID("new-secret")))
	b.shot(t, r.name("reveal"))

	// Escape asks first, and the secret stays.
	b.press(t, "Escape")
	b.run(t, "waiting for the question", chromedp.WaitVisible(chromedp.CSS(`[data-testid="reveal-ask"]`)))
	if !b.visible(t, "#new-secret") {
		t.Fatal("Escape closed the reveal")
	}
	if txt := b.text(t, `[data-testid="reveal-ask"]`); !strings.Contains(txt, "You will not see this secret again") {
		t.Errorf("the question reads %q", txt)
	}
	r.inView(t, `[data-testid="reveal-ask"]`, true)
	b.shot(t, r.name("reveal-ask"))
	b.clickText(t, `[data-testid="reveal-ask"]`, "Back to the secret")
	if b.visible(t, `[data-testid="reveal-ask"]`) {
		t.Error("Back to the secret leaves the question up")
	}
	// So does a click outside it.
	b.run(t, "clicking outside the reveal", chromedp.MouseClickXY(3, 3))
	b.run(t, "waiting for the question", chromedp.WaitVisible(chromedp.CSS(`[data-testid="reveal-ask"]`)))
	if !b.visible(t, "#new-secret") {
		t.Fatal("a click outside closed the reveal")
	}
	b.clickText(t, `[data-testid="reveal-ask"]`, "Close, I have stored it")
	b.run(t, "waiting for the reveal to close", chromedp.WaitNotVisible(chromedp.ID("reveal-dialog")))
	r.onceOnly(t, r.sec)
}

func (r *revealWalk) listPill(t *testing.T) {
	b := r.d.b
	b.open(t, "/tokens", 200)
	row := fmt.Sprintf(`[data-token-id=%q]`, r.id)
	masked := b.text(t, row+" .masked")
	if !strings.HasPrefix(masked, "shop_") || !strings.HasSuffix(masked, r.sec[len(r.sec)-4:]) {
		t.Errorf("the list shows %q for the secret %s…", masked, r.sec[:6])
	}
	if eval[bool](t, b, fmt.Sprintf(`!!document.querySelector(%q).closest("button")`, row+" .masked")) {
		t.Error("the masked secret is a button")
	}
	// The only copy control of the cell says it copies the id.
	got := eval[[]string](t, b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.innerText.trim() + "|" + e.getAttribute("data-copy-text") + "|" + e.getAttribute("aria-label"))`,
		row+" .token-cell [data-copy-text]"))
	want := "Copy id|" + r.id + "|Copy the token id " + r.id
	if len(got) != 1 || got[0] != want {
		t.Errorf("the token cell's copy controls are %q, want [%q]", got, want)
	}
	b.run(t, "scrolling to the row", chromedp.ScrollIntoView(chromedp.CSS(row+" .token-cell")))
	b.shot(t, r.name("tokens"))
}

// rowAction opens the row menu of the token id on /tokens and picks the
// action, which opens its confirmation dialog.
func (r *revealWalk) rowAction(t *testing.T, id, action string) {
	t.Helper()
	b := r.d.b
	b.open(t, "/tokens", 200)
	row := fmt.Sprintf(`[data-token-id=%q]`, id)
	b.run(t, "opening the row menu", chromedp.Click(chromedp.CSS(row+" details.menu > summary")))
	link := fmt.Sprintf(`%s details.menu a[href^="/tokens/%s/%s"]`, row, id, action)
	// In a narrow window the table scrolls sideways in its box, as a
	// person would scroll it to reach the menu.
	b.run(t, "scrolling to "+action, chromedp.ScrollIntoView(chromedp.CSS(link)))
	r.inView(t, link, false)
	b.run(t, "picking "+action, chromedp.Click(chromedp.CSS(link)))
	form := fmt.Sprintf(`#confirm-dialog [data-testid="%s-form"]`, action)
	b.run(t, "waiting for the "+action+" dialog", chromedp.WaitVisible(chromedp.CSS(form)))
	if !eval[bool](t, b, `document.getElementById("confirm-dialog").matches(":modal")`) {
		t.Errorf("the %s confirmation is not a modal dialog", action)
	}
	r.inView(t, fmt.Sprintf(`#confirm-dialog [data-testid="confirm-%s"]`, action), true)
}

// confirm clicks the confirm button of the dialog and waits for the page.
func (r *revealWalk) confirm(t *testing.T, scope, action string) {
	t.Helper()
	if st := r.d.b.navigate(t, "confirming "+action, chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s [data-testid="confirm-%s"]`, scope, action)))); st != 200 {
		t.Fatalf("%s answered %d", action, st)
	}
}

func (r *revealWalk) rotateFromList(t *testing.T) {
	d, b := r.d, r.d.b
	r.rowAction(t, r.id, "rotate")
	if got := eval[string](t, b, `document.querySelector("#confirm-dialog select[name=grace_period]").value`); got != "1h" {
		t.Errorf("the rotate dialog offers grace %q first, want 1h", got)
	}
	b.shot(t, r.name("rotate-from-list"))
	old := r.sec
	r.confirm(t, "#confirm-dialog", "rotate")
	if loc := b.location(t); loc != "/tokens/"+r.id {
		t.Fatalf("after rotating from the list the browser is on %s, not the token's page", loc)
	}
	r.sec = d.readSecret(t)
	if r.sec == old {
		t.Fatal("the rotation showed the old secret")
	}
	r.inView(t, "#new-secret", true)
	if txt := b.text(t, `[data-testid="flash"]`); !strings.Contains(txt, "rotated") || !strings.Contains(txt, "works until") {
		t.Errorf("the flash reads %q", txt)
	}
	b.shot(t, r.name("rotate-from-list-reveal"))
	d.verify(t, r.sec, tokend.CodeValid)
	d.verify(t, old, tokend.CodeValid) // within its hour of grace
	r.closeReveal(t)
	r.onceOnly(t, r.sec)
}

func (r *revealWalk) rotateFromPage(t *testing.T) {
	d, b := r.d, r.d.b
	b.open(t, "/tokens/"+r.id, 200)
	b.run(t, "opening rotate", chromedp.Click(chromedp.CSS(`[data-testid="action-rotate"]`)))
	b.run(t, "waiting for the rotate dialog", chromedp.WaitVisible(chromedp.CSS(`#dlg-rotate [data-testid="rotate-form"]`)))
	if got := eval[string](t, b, `document.querySelector("#dlg-rotate select[name=grace_period]").value`); got != "1h" {
		t.Errorf("the rotate dialog offers grace %q first, want 1h", got)
	}
	b.fill(t, `#dlg-rotate [data-testid="rotate-form"]`, map[string]string{"grace_period": "0s"})
	r.inView(t, `#dlg-rotate [data-testid="confirm-rotate"]`, true)
	old := r.sec
	r.confirm(t, "#dlg-rotate", "rotate")
	r.sec = d.readSecret(t)
	if r.sec == old {
		t.Fatal("the rotation showed the old secret")
	}
	d.verify(t, r.sec, tokend.CodeValid)
	d.verify(t, old, tokend.CodeRotated) // no grace chosen: the token lives on
	r.closeReveal(t)
	r.onceOnly(t, r.sec)
}

func (r *revealWalk) listConfirmations(t *testing.T) {
	d, b := r.d, r.d.b
	r.rowAction(t, r.id, "disable")
	if txt := b.text(t, "#confirm-dialog h2"); txt != "Disable token" {
		t.Errorf("the dialog's title is %q", txt)
	}
	b.shot(t, r.name("disable-from-list"))
	// Cancel changes nothing and stays on the list.
	b.clickText(t, "#confirm-dialog", "Cancel")
	if b.visible(t, "#confirm-dialog") || b.location(t) != "/tokens" {
		t.Fatalf("Cancel left the dialog open or the list (%s)", b.location(t))
	}
	d.verify(t, r.sec, tokend.CodeValid)
	r.rowAction(t, r.id, "disable")
	r.confirm(t, "#confirm-dialog", "disable")
	d.verify(t, r.sec, tokend.CodeDisabled)
	if loc := b.location(t); loc != "/tokens" {
		t.Errorf("after disabling from the list the browser is on %s", loc)
	}

	// Delete asks for the name, and the button waits for it.
	name := fmt.Sprintf("deploy %d", r.w)
	r.rowAction(t, r.id, "delete")
	if !eval[bool](t, b, `document.querySelector('#confirm-dialog [data-testid="confirm-delete"]').disabled`) {
		t.Error("the delete button is enabled before the name is typed")
	}
	b.typeInto(t, "#confirm-dialog #confirm-name", name)
	if eval[bool](t, b, `document.querySelector('#confirm-dialog [data-testid="confirm-delete"]').disabled`) {
		t.Fatal("the delete button stays disabled once the name is typed")
	}
	b.shot(t, r.name("delete-from-list"))
	r.confirm(t, "#confirm-dialog", "delete")
	d.verify(t, r.sec, tokend.CodeNotFound)
}

func (r *revealWalk) userConfirmations(t *testing.T) {
	b := r.d.b
	email := fmt.Sprintf("temp%d@example.com", r.w)
	b.open(t, "/users", 200)
	b.fill(t, "#new-user-form", map[string]string{"name": "Temp User", "email": email, "role": "viewer", "password": "temporary password 123"})
	if st := b.navigate(t, "creating a user", chromedp.Click(chromedp.ID("new-user-submit"))); st != 200 {
		t.Fatalf("creating a user answered %d", st)
	}
	row := fmt.Sprintf(`tr[data-user-email=%q]`, email)
	for _, action := range []string{"disable", "delete"} {
		b.run(t, "opening "+action, chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s [data-testid="user-%s"]`, row, action))))
		form := fmt.Sprintf(`#confirm-dialog [data-testid="user-%s-form"]`, action)
		b.run(t, "waiting for the "+action+" dialog", chromedp.WaitVisible(chromedp.CSS(form)))
		if txt := b.text(t, form); !strings.Contains(txt, email) {
			t.Errorf("the %s confirmation does not name %s: %q", action, email, txt)
		}
		r.inView(t, fmt.Sprintf(`#confirm-dialog [data-testid="confirm-user-%s"]`, action), true)
		b.shot(t, r.name("user-"+action))
		r.confirm(t, "#confirm-dialog", "user-"+action)
		if loc := b.location(t); loc != "/users" {
			t.Fatalf("after %s the browser is on %s", action, loc)
		}
		if action == "disable" {
			if txt := b.text(t, row); !strings.Contains(txt, "Disabled") {
				t.Errorf("the user's row reads %q after disable", txt)
			}
		} else if b.exists(t, row) {
			t.Error("the deleted user is still listed")
		}
	}
}

func (r *revealWalk) sessionEnded(t *testing.T) {
	d, b := r.d, r.d.b
	id, sec := d.newToken(t, fmt.Sprintf("kept %d", r.w), d.appID)
	r.closeReveal(t)
	page := "/tokens/" + id
	b.open(t, page, 200)
	b.run(t, "opening disable", chromedp.Click(chromedp.CSS(`[data-testid="action-disable"]`)))
	b.run(t, "waiting for the disable dialog", chromedp.WaitVisible(chromedp.CSS(`#dlg-disable [data-testid="disable-form"]`)))
	// The session ends while the dialog is open.
	r.endSession(t)
	r.confirm(t, "#dlg-disable", "disable")
	loc := b.location(t)
	if !strings.HasPrefix(loc, "/login?") || !strings.Contains(loc, "next=%2Ftokens%2F"+id) {
		t.Fatalf("a form after the session's end led to %s, want the sign-in page with next=%s", loc, page)
	}
	if txt := b.text(t, `[data-testid="session-ended"]`); !strings.Contains(txt, "Your session ended, so the form you sent was not saved") {
		t.Errorf("the sign-in page says %q", txt)
	}
	r.inView(t, `[data-testid="session-ended"]`, true)
	b.shot(t, r.name("session-ended-login"))
	d.verify(t, sec, tokend.CodeValid)

	r.signInBack(t)
	if loc := b.location(t); loc != page {
		t.Fatalf("after signing in the browser is on %s, want %s", loc, page)
	}
	if txt := b.text(t, `[data-testid="flash"]`); !strings.Contains(txt, "You are signed in again. The form you sent while signed out was not saved") {
		t.Errorf("back on the page, the message reads %q", txt)
	}
	r.inView(t, `[data-testid="flash"]`, false)
	b.shot(t, r.name("session-ended-back"))
	d.verify(t, sec, tokend.CodeValid)
}

// endSession deletes the session cookie, as the end of a session does to
// a page left open.
func (r *revealWalk) endSession(t *testing.T) {
	t.Helper()
	d, b := r.d, r.d.b
	b.run(t, "deleting the session cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{d.in.url}})
		if err != nil {
			return err
		}
		n := 0
		for _, c := range res.Cookies {
			if strings.HasSuffix(c.Name, "tokend_session") {
				if _, err := cdp.Call(ctx, tg, network.DeleteCookies, network.DeleteCookiesParams{Name: c.Name, URL: d.in.url}); err != nil {
					return err
				}
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%d session cookies, want 1", n)
		}
		return nil
	}))
}

// signInBack signs in on the sign-in page the browser is on.
func (r *revealWalk) signInBack(t *testing.T) {
	t.Helper()
	b := r.d.b
	b.fill(t, "#login-form", map[string]string{"email": ownerEmail, "password": ownerPassword})
	if st := b.navigate(t, "signing in", chromedp.Click(chromedp.ID("login-submit"))); st != 200 {
		t.Fatalf("sign-in answered %d", st)
	}
}

func (r *revealWalk) createKept(t *testing.T) {
	d, b := r.d, r.d.b
	name := fmt.Sprintf("typed %d", r.w)
	b.open(t, "/tokens", 200)
	b.run(t, "opening the create dialog", chromedp.Click(chromedp.ID("generate-token")))
	b.run(t, "waiting for the create dialog", chromedp.WaitVisible(chromedp.ID("create-token-form")))
	b.fill(t, "#create-token-form", map[string]string{"app_id": d.appID, "access": "full_access", "description": "typed while signed out"})
	b.typeInto(t, "#f-name", name)
	r.endSession(t)
	if st := b.navigate(t, "generating the token", chromedp.Click(chromedp.CSS(`[data-testid="create-token-submit"]`))); st != 200 {
		t.Fatalf("creating a token answered %d", st)
	}
	if loc := b.location(t); !strings.HasPrefix(loc, "/login?") {
		t.Fatalf("a create form after the session's end led to %s", loc)
	}
	r.signInBack(t)
	if loc := b.location(t); loc != "/tokens/new" {
		t.Fatalf("after signing in the browser is on %s, want the create page", loc)
	}
	if got := eval[string](t, b, `document.getElementById("f-name").value`); got != name {
		t.Errorf("the create form shows the name %q, want %q as typed", got, name)
	}
	if got := eval[string](t, b, `document.querySelector("main textarea[name=description]").value`); got != "typed while signed out" {
		t.Errorf("the create form shows the description %q", got)
	}
	if txt := b.text(t, `[data-testid="flash"]`); !strings.Contains(txt, "not saved") {
		t.Errorf("the message reads %q", txt)
	}
	r.inView(t, "#f-name", false)
	b.shot(t, r.name("session-ended-create-kept"))
}

func (r *revealWalk) revokes(t *testing.T) {
	d, b := r.d, r.d.b
	id, sec := d.newToken(t, fmt.Sprintf("to revoke %d", r.w), d.appID)
	r.closeReveal(t)
	r.rowAction(t, id, "revoke")
	if txt := b.text(t, "#confirm-dialog h2"); txt != "Revoke token" {
		t.Errorf("the dialog's title is %q", txt)
	}
	b.shot(t, r.name("revoke-from-list"))
	r.confirm(t, "#confirm-dialog", "revoke")
	d.verify(t, sec, tokend.CodeRevoked)

	_, live := d.newToken(t, fmt.Sprintf("all %d", r.w), d.appID)
	r.closeReveal(t)
	b.open(t, "/apps/"+d.appID, 200)
	b.run(t, "opening revoke-all", chromedp.Click(chromedp.CSS(`[data-testid="action-revoke-all"]`)))
	b.run(t, "waiting for the revoke-all dialog", chromedp.WaitVisible(chromedp.CSS(`#dlg-revoke-all [data-testid="revoke-all-form"]`)))
	r.inView(t, `#dlg-revoke-all [data-testid="confirm-revoke-all"]`, true)
	b.shot(t, r.name("revoke-all"))
	r.confirm(t, "#dlg-revoke-all", "revoke-all")
	d.verify(t, live, tokend.CodeRevoked)
}
