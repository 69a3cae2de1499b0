package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tokend/tokend"
)

// TestDashboard walks the dashboard in a real headless Chromium against a
// real `tokend serve`: first-run setup, sign-in, an application and its
// tokens, every token action with the verification answer changing each
// time, revoke-all, a viewer who cannot act, a POST without its CSRF token,
// a narrow window and the keyboard. A console error or an uncaught
// exception on any page fails the step it happened in. Screenshots of the
// main pages are kept in the directory the test logs.
func TestDashboard(t *testing.T) {
	start := time.Now()
	d, s := startDashboard(t, t.TempDir())

	s.run("first-run setup with the bootstrap token", d.setup)
	s.run("sign out and in again", d.signInAgain)
	s.run("create an application", d.createApp)
	s.run("create a token and read its secret once", d.createToken)
	s.run("disable and enable", d.disableEnable)
	s.run("rotate without grace", d.rotate)
	s.run("revoke", d.revoke)
	s.run("delete", d.delete)
	s.run("revoke all tokens of an application", d.revokeAll)
	s.also("a POST without a CSRF token is refused", d.csrfless)
	s.also("the main pages", d.pages)
	s.also("keyboard reaches the create dialog", d.keyboard)
	s.also("a narrow window", d.narrow)
	s.run("a viewer sees but cannot act", d.viewer)
	t.Logf("dashboard walk took %s", time.Since(start).Round(time.Millisecond))
}

// dashboard is the state the steps hand on.
type dashboard struct {
	in *instance
	b  *browser

	appID   string
	tokenID string // the token the lifecycle steps act on
	tokName string
	secret  string // its current secret
	kept    string // id of a token that stays live, for the refusal steps
	keptSec string
}

const (
	ownerEmail    = "owner@example.com"
	ownerPassword = "correct horse battery staple"
	viewerEmail   = "viewer@example.com"
	viewerPass    = "viewer password 12345"
)

func (d *dashboard) verify(t *testing.T, secret string, want tokend.Code) {
	t.Helper()
	if got := d.in.verifyCode(t, secret); got != want {
		t.Fatalf("POST /v1/verify = %s, want %s", got, want)
	}
}

func (d *dashboard) setup(t *testing.T) {
	b := d.b
	b.open(t, "/", 200)
	if loc := b.location(t); !strings.HasPrefix(loc, "/setup") {
		t.Fatalf("a fresh instance shows %s, want /setup", loc)
	}
	form := "#setup-form"
	b.fill(t, form, map[string]string{
		"token": d.in.bootstrap, "name": "Olivia Owner", "email": ownerEmail,
		"password": ownerPassword, "confirm": ownerPassword,
	})
	b.shot(t, "01-setup")
	if st := b.navigate(t, "submitting setup", chromedp.Click(chromedp.ID("setup-submit"))); st != 200 {
		t.Fatalf("setup answered %d", st)
	}
	if !strings.Contains(b.text(t, "header"), "Olivia Owner") {
		t.Fatalf("not signed in after setup; the page says: %s", b.text(t, "main"))
	}
	b.shot(t, "02-home-empty")
	// Setup is over: it now leads to the sign-in page.
	b.open(t, "/setup", 200)
	if loc := b.location(t); loc == "/setup" {
		t.Fatal("/setup is still offered after the owner exists")
	}
}

func (d *dashboard) signIn(t *testing.T, email, password string) {
	t.Helper()
	b := d.b
	b.open(t, "/login", 200)
	form := "#login-form"
	b.fill(t, form, map[string]string{"email": email, "password": password})
	if st := b.navigate(t, "signing in", chromedp.Click(chromedp.ID("login-submit"))); st != 200 {
		t.Fatalf("sign-in answered %d", st)
	}
	if loc := b.location(t); strings.HasPrefix(loc, "/login") {
		t.Fatalf("still on the sign-in page: %s", b.text(t, "main"))
	}
}

func (d *dashboard) signOut(t *testing.T) {
	t.Helper()
	if st := d.b.clickTextAndWait(t, "header", "Sign out"); st != 200 {
		t.Fatalf("sign-out answered %d", st)
	}
}

func (d *dashboard) signInAgain(t *testing.T) {
	b := d.b
	d.signOut(t)
	b.open(t, "/tokens", 200)
	if loc := b.location(t); !strings.HasPrefix(loc, "/login") {
		t.Fatalf("signed out, /tokens shows %s, want the sign-in page", loc)
	}
	b.shot(t, "03-login")
	d.signIn(t, ownerEmail, ownerPassword)
}

func (d *dashboard) createApp(t *testing.T) {
	b := d.b
	b.open(t, "/apps/new", 200)
	b.shot(t, "04-app-new")
	form := `[data-testid="create-app-form"]`
	b.fill(t, form, map[string]string{
		"name": "Shop", "token_prefix": "shop", "permissions": "orders:read\norders:write",
	})
	if st := b.clickTextAndWait(t, form, "Create application"); st != 200 {
		t.Fatalf("creating the app answered %d", st)
	}
	m := regexp.MustCompile(`^/apps/([^/?#]+)`).FindStringSubmatch(b.location(t))
	if m == nil {
		t.Fatalf("after creating an app the browser is on %s", b.location(t))
	}
	d.appID = m[1]
}

// newToken creates a token in the create dialog of /tokens and answers its
// id and the secret read from the reveal dialog.
func (d *dashboard) newToken(t *testing.T, name, appID string) (id, secret string) {
	t.Helper()
	b := d.b
	b.open(t, "/tokens", 200)
	b.run(t, "opening the create dialog", chromedp.Click(chromedp.ID("generate-token")))
	b.run(t, "waiting for the create dialog", chromedp.WaitVisible(chromedp.ID("create-token-form")))
	form := "#create-token-form"
	b.fill(t, form, map[string]string{"app_id": appID, "access": "full_access"})
	b.typeInto(t, "#f-name", name)
	if got := b.text(t, "#f-name-count"); got != fmt.Sprintf("%d/50", len(name)) {
		t.Errorf("name counter reads %q after typing %q", got, name)
	}
	if st := b.navigate(t, "generating the token", chromedp.Click(chromedp.CSS(`[data-testid="create-token-submit"]`))); st != 200 {
		t.Fatalf("creating a token answered %d", st)
	}
	m := regexp.MustCompile(`^/tokens/(tok_[^/?#]+)`).FindStringSubmatch(b.location(t))
	if m == nil {
		t.Fatalf("after creating a token the browser is on %s: %s", b.location(t), b.text(t, "main"))
	}
	return m[1], d.readSecret(t)
}

// readSecret reads the secret of the reveal dialog.
func (d *dashboard) readSecret(t *testing.T) string {
	t.Helper()
	b := d.b
	b.run(t, "waiting for the secret", chromedp.WaitVisible(chromedp.ID("new-secret")))
	sec := eval[string](t, b, `(() => { const e = document.getElementById("new-secret"); return (e.value || e.textContent).trim() })()`)
	if !strings.Contains(sec, "_") {
		t.Fatalf("the reveal dialog shows %q, not a secret", sec)
	}
	if txt := b.text(t, `[data-testid="reveal-dialog"]`); !strings.Contains(txt, "cannot be shown again") {
		t.Errorf("the reveal dialog does not warn that the secret cannot be shown again: %q", txt)
	}
	if !b.visible(t, `[data-testid="copy-secret"]`) {
		t.Error("the reveal dialog has no copy button")
	}
	return sec
}

func (d *dashboard) createToken(t *testing.T) {
	b := d.b
	b.open(t, "/tokens", 200)
	b.shot(t, "05-tokens-before")
	d.tokName = "CI deploys"
	d.tokenID, d.secret = d.newToken(t, d.tokName, d.appID)
	if !strings.HasPrefix(d.secret, "shop_") {
		t.Errorf("secret %q lacks the app's prefix shop_", d.secret)
	}
	b.shot(t, "06-token-secret-dialog")
	d.verify(t, d.secret, tokend.CodeValid)

	// Once only: a reload shows the token without its secret.
	b.run(t, "reloading", chromedp.Reload())
	if b.exists(t, "#new-secret") {
		t.Fatal("the secret dialog is shown again after a reload")
	}
	if eval[bool](t, b, fmt.Sprintf("document.documentElement.outerHTML.includes(%q)", d.secret)) {
		t.Fatal("the secret is still in the page after a reload")
	}
	b.shot(t, "07-token")
}

// act runs a token action from the token page: its button opens the
// confirmation dialog, whose confirm button posts it.
func (d *dashboard) act(t *testing.T, action string, fill map[string]string) {
	t.Helper()
	b := d.b
	b.open(t, "/tokens/"+d.tokenID, 200)
	b.run(t, "opening "+action, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-testid="action-%s"]`, action))))
	form := fmt.Sprintf(`[data-testid="%s-form"]`, action)
	b.run(t, "waiting for the "+action+" confirmation", chromedp.WaitVisible(chromedp.CSS(form)))
	if fill != nil {
		b.fill(t, form, fill)
	}
	b.shot(t, "08-confirm-"+action)
	if st := b.navigate(t, "confirming "+action, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-testid="confirm-%s"]`, action)))); st != 200 {
		t.Fatalf("%s answered %d", action, st)
	}
}

func (d *dashboard) disableEnable(t *testing.T) {
	d.act(t, "disable", nil)
	d.verify(t, d.secret, tokend.CodeDisabled)
	d.act(t, "enable", nil)
	d.verify(t, d.secret, tokend.CodeValid)
}

func (d *dashboard) rotate(t *testing.T) {
	old := d.secret
	d.act(t, "rotate", map[string]string{"grace_period": "0s"})
	d.secret = d.readSecret(t)
	if d.secret == old {
		t.Fatal("rotation showed the old secret")
	}
	d.verify(t, old, tokend.CodeRotated)
	d.verify(t, d.secret, tokend.CodeValid)
}

func (d *dashboard) revoke(t *testing.T) {
	d.act(t, "revoke", nil)
	d.verify(t, d.secret, tokend.CodeRevoked)
}

func (d *dashboard) delete(t *testing.T) {
	d.act(t, "delete", map[string]string{"confirm_name": d.tokName})
	d.verify(t, d.secret, tokend.CodeNotFound)
	d.b.open(t, "/tokens/"+d.tokenID, 404)
	d.b.check(t, "status of 404")
}

func (d *dashboard) revokeAll(t *testing.T) {
	b := d.b
	_, s1 := d.newToken(t, "web shop", d.appID)
	_, s2 := d.newToken(t, "mobile shop", d.appID)
	d.verify(t, s1, tokend.CodeValid)
	d.verify(t, s2, tokend.CodeValid)
	b.open(t, "/apps/"+d.appID, 200)
	b.shot(t, "09-app")
	b.run(t, "opening revoke-all", chromedp.Click(chromedp.CSS(`[data-testid="action-revoke-all"]`)))
	b.run(t, "waiting for the revoke-all confirmation", chromedp.WaitVisible(chromedp.CSS(`[data-testid="revoke-all-form"]`)))
	if txt := b.text(t, `[data-testid="revoke-all-count"]`); !strings.Contains(txt, "revokes 2 tokens") {
		t.Errorf("the revoke-all confirmation does not state the count 2: %q", txt)
	}
	b.shot(t, "10-confirm-revoke-all")
	if st := b.navigate(t, "confirming revoke-all", chromedp.Click(chromedp.CSS(`[data-testid="confirm-revoke-all"]`))); st != 200 {
		t.Fatalf("revoke-all answered %d", st)
	}
	d.verify(t, s1, tokend.CodeRevoked)
	d.verify(t, s2, tokend.CodeRevoked)

	// A live token for the refusal steps that follow.
	d.kept, d.keptSec = d.newToken(t, "still alive", d.appID)
	d.verify(t, d.keptSec, tokend.CodeValid)
}

// post sends a form POST from the page with the session's cookies, as a
// hand-written request would, and answers the status.
func (d *dashboard) post(t *testing.T, path string, withCSRF bool) int {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
		const body = new URLSearchParams();
		if (%t) body.set("csrf", document.querySelector('input[name="csrf"]').value);
		const r = await fetch(%q, {method: "POST", body, redirect: "manual"});
		return r.status })()`, withCSRF, path)
	return eval[int](t, d.b, js)
}

// refused posts a disable of the kept token from its page, with or without
// the page's CSRF token, and checks that it is refused and changed nothing.
func (d *dashboard) refused(t *testing.T, withCSRF bool) {
	t.Helper()
	d.b.open(t, "/tokens/"+d.kept, 200)
	path := "/tokens/" + d.kept + "/disable"
	if st := d.post(t, path, withCSRF); st != 403 {
		t.Fatalf("POST %s (csrf sent: %t) = %d, want 403", path, withCSRF, st)
	}
	d.b.check(t, "status of 403")
	d.verify(t, d.keptSec, tokend.CodeValid)
}

// csrfless: the owner may disable the token, but not without the form token.
func (d *dashboard) csrfless(t *testing.T) { d.refused(t, false) }

func (d *dashboard) pages(t *testing.T) {
	b := d.b
	for _, p := range []struct{ path, name string }{
		{"/", "11-home"}, {"/tokens", "12-tokens"}, {"/tokens/" + d.kept, "13-token"},
		{"/apps", "14-apps"}, {"/audit", "15-audit"}, {"/users", "16-users"},
	} {
		b.open(t, p.path, 200)
		b.shot(t, p.name)
	}
}

func (d *dashboard) keyboard(t *testing.T) {
	b := d.b
	b.open(t, "/tokens", 200)
	reached := false
	for range 40 {
		b.press(t, "Tab")
		if eval[string](t, b, "document.activeElement.id") == "generate-token" {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("40 presses of Tab never reached the Generate API token button")
	}
	b.press(t, "Enter")
	b.run(t, "waiting for the create dialog", chromedp.WaitVisible(chromedp.ID("create-token-form")))
	if !eval[bool](t, b, `document.getElementById("create-dialog").contains(document.activeElement)`) {
		t.Error("the focus is not inside the create dialog once it opens")
	}
	if id := eval[string](t, b, "document.activeElement.id"); id != "f-name" {
		t.Errorf("the create dialog opens with the focus on #%s, want the name field #f-name", id)
	}
	b.press(t, "Escape")
	if b.visible(t, "#create-token-form") {
		t.Error("Escape does not close the create dialog")
	}
}

func (d *dashboard) narrow(t *testing.T) {
	b := d.b
	b.run(t, "narrowing the window", chromedp.EmulateViewport(375, 812))
	defer b.run(t, "widening the window again", chromedp.EmulateViewport(1280, 900))
	for _, p := range []struct{ path, name string }{
		{"/tokens", "17-tokens-375"}, {"/tokens/" + d.kept, "18-token-375"}, {"/", "19-home-375"}, {"/audit", "19-audit-375"},
	} {
		b.open(t, p.path, 200)
		// Wide tables scroll in their own box; the page itself must not.
		if w := eval[int](t, b, "document.documentElement.scrollWidth"); w > 375 {
			t.Errorf("%s is %d px wide in a 375 px window, so the whole page pans sideways; sticking out: %v "+
				"(an absolutely positioned element inside a scrolling box escapes it unless the box, or something "+
				"inside it, is positioned: position:relative on the box)", p.path, w, eval[[]string](t, b, overflowing))
		}
		b.shot(t, p.name)
	}
}

func (d *dashboard) viewer(t *testing.T) {
	b := d.b
	b.open(t, "/users", 200)
	form := "#new-user-form"
	b.fill(t, form, map[string]string{"name": "Vic Viewer", "email": viewerEmail, "role": "viewer", "password": viewerPass})
	if st := b.navigate(t, "creating the viewer", chromedp.Click(chromedp.ID("new-user-submit"))); st != 200 {
		t.Fatalf("creating the viewer answered %d", st)
	}
	if !strings.Contains(b.text(t, "main"), viewerEmail) {
		t.Fatal("the new viewer is not listed on /users")
	}
	d.signOut(t)
	d.signIn(t, viewerEmail, viewerPass)

	// The viewer sees the pages, without a control that would act.
	for _, p := range []struct{ path, name string }{
		{"/tokens", "20-viewer-tokens"}, {"/tokens/" + d.kept, "21-viewer-token"}, {"/apps/" + d.appID, "22-viewer-app"},
	} {
		b.open(t, p.path, 200)
		b.shot(t, p.name)
		controls := eval[[]string](t, b, `[...document.querySelectorAll('main :is([data-testid^="action-"], #generate-token, '+
			'form[method=post], a[href^="/tokens/new"], a[href*="/disable"], a[href*="/enable"], a[href*="/rotate"], '+
			'a[href*="/revoke"], a[href*="/delete"], a[href*="/revoke-all"], a[href^="/apps/new"])')].map(e => e.outerHTML.slice(0, 100))`)
		for _, c := range controls {
			t.Errorf("the viewer's %s offers an action: %s", p.path, c)
		}
	}
	// Nor does a hand-written POST with the viewer's own valid CSRF token.
	d.refused(t, true)
}

// overflowing lists the elements that stick out of the window to the right
// with no ancestor that scrolls or clips them, to name a layout bug. An
// absolutely positioned element is clipped only by an ancestor at or above
// its containing block (the nearest positioned ancestor).
const overflowing = `(() => {
	const w = document.documentElement.clientWidth, out = [];
	for (const e of document.body.querySelectorAll("*")) {
		const r = e.getBoundingClientRect();
		if (r.right <= w + 1 || r.width === 0) continue;
		const pos = getComputedStyle(e).position;
		let skip = pos === "absolute" || pos === "fixed", clipped = false;
		for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
			const cs = getComputedStyle(p);
			if (skip) {
				if (pos === "fixed" || cs.position === "static") continue;
				skip = false;
			}
			if (cs.overflowX !== "visible" && p.getBoundingClientRect().right <= w + 1) { clipped = true; break }
		}
		if (!clipped) out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
			(typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : "") +
			" (right edge at " + Math.round(r.right) + " px)");
	}
	return out.slice(0, 6) })()`

// startDashboard starts a real tokend on the data directory dir and a
// Chromium tab on its dashboard (screenshots go to the run's directory,
// which it logs), for a walk of steps. The walk begins with d.setup.
func startDashboard(t *testing.T, dir string) (*dashboard, *steps) {
	t.Helper()
	shots := screenshotDir(t)
	in := startTokend(t, dir, nil)
	if in.bootstrap == "" {
		t.Fatalf("no bootstrap token in the banner:\n%s", in.stdout.String())
	}
	b := newBrowser(t, in.url, shots)
	t.Logf("screenshots: %s", shots)
	return &dashboard{in: in, b: b}, &steps{t: t, b: b}
}
