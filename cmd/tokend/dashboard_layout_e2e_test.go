package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tokend/tokend"
)

// TestDashboardLayout walks, in a real Chromium, what a newcomer meets on
// first run (Home leads to an application first, then to a token; admin
// tokens are counted apart) and the layout at a phone's 390 px, where the
// lists become cards that fit the window, and at 768, 910 (just wider than
// cards), 1024 and 1280 px, where every row's Actions button is in the
// window and its menu opens within it. Screenshots of Home, the token
// list, the applications, the audit log, the users and the webhooks at
// 390 and 1280 px
// go to the directory the test logs. Last, a customer's owner page is
// opened from the list at both widths, and all their tokens revoked there.
func TestDashboardLayout(t *testing.T) {
	d, s := startDashboard(t, t.TempDir())
	l := &layoutWalk{dashboard: *d}

	s.run("first run: sign up as the owner", l.setup)
	s.run("first run: Home leads to an application, then a token", l.firstRun)
	s.run("an application without tokens offers to generate one there", l.emptyApp)
	s.run("a webhook endpoint added in its dialog, its secret shown once", l.webhook)
	s.run("more tokens, a user and events", l.seed)
	s.also("a phone, 390 px wide: cards within the window", l.phone)
	s.also("row menus within the window from 768 to 1280 px", l.menus)
	s.also("screenshots at 1280 px", l.wide)
	s.also("an owner's page from the token list at 1280 and 390 px, and revoking all their tokens", l.ownerPage)
}

// layoutWalk is the state of TestDashboardLayout's steps.
type layoutWalk struct {
	dashboard
	shopID    string
	webhookID string
}

// layoutOwner is the customer whose token the walk seeds.
const layoutOwner = "acct_acme-corporation-wholesale-0042"

// pages are the pages whose layout the walk checks, with the names of
// their screenshots: the lists, and the pages of an application and a
// token, which show the audit trail as a list too.
func (l *layoutWalk) pages() []struct{ path, name string } {
	return []struct{ path, name string }{
		{"/", "home"}, {"/tokens", "tokens"}, {"/apps", "apps"}, {"/audit", "audit"}, {"/users", "users"},
		{"/apps/" + l.shopID, "app"}, {"/tokens/" + l.tokenID, "token"},
		{"/webhooks", "webhooks"}, {"/webhooks/" + l.webhookID, "webhook"},
	}
}

// outside answers, for each element sel matches, what of it is outside the
// window (nothing when all of it is inside), at most a few: horizontally,
// and vertically too with vertical. An element not shown counts as outside
// with mustShow, else is left out (a cell that a layout hides on purpose).
func (l *layoutWalk) outside(t *testing.T, sel string, vertical, mustShow bool) []string {
	t.Helper()
	return eval[[]string](t, l.b, fmt.Sprintf(`(() => {
		const w = document.documentElement.clientWidth, h = window.innerHeight, out = [];
		for (const e of document.querySelectorAll(%q)) {
			const r = e.getBoundingClientRect(), what = e.tagName.toLowerCase() + " " + JSON.stringify((e.innerText || "").trim().slice(0, 30));
			if (!e.checkVisibility({visibilityProperty: true}) || r.width === 0) { if (%t) out.push(what + " is not shown"); continue }
			if (r.left < -0.5 || r.right > w + 0.5) out.push(what + " spans x " + Math.round(r.left) + ".." + Math.round(r.right) + " of a " + w + " px window");
			if (%t && (r.top < -0.5 || r.bottom > h + 0.5)) out.push(what + " spans y " + Math.round(r.top) + ".." + Math.round(r.bottom) + " of a " + h + " px window");
		}
		return out.length > 6 ? out.slice(0, 6).concat(["and " + (out.length - 6) + " more"]) : out })()`, sel, mustShow, vertical))
}

// windowShot saves a screenshot of the window as it is (an open menu
// included) as <name>.png in the screenshot directory.
func (l *layoutWalk) windowShot(t *testing.T, name string) {
	t.Helper()
	png := get(t, l.b, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(l.b.shots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (l *layoutWalk) setup(t *testing.T) {
	b := l.b
	b.open(t, "/setup", 200)
	b.fill(t, "#setup-form", map[string]string{
		"token": l.in.bootstrap, "name": "Olivia Owner", "email": ownerEmail,
		"password": ownerPassword, "confirm": ownerPassword,
	})
	if st := b.navigate(t, "submitting setup", chromedp.Click(chromedp.ID("setup-submit"))); st != 200 {
		t.Fatalf("setup answered %d", st)
	}
	if !strings.Contains(b.text(t, "header"), "Olivia Owner") {
		t.Fatalf("not signed in after setup; the page says: %s", b.text(t, "main"))
	}
}

func (l *layoutWalk) firstRun(t *testing.T) {
	b := l.b
	b.open(t, "/", 200)
	b.shot(t, "layout-home-first-run-1280")
	steps := b.text(t, `[data-testid="first-steps"]`)
	app, gen := strings.Index(steps, "Create an application"), strings.Index(steps, "Generate an API token")
	if app < 0 || gen < 0 || app > gen {
		t.Fatalf("the first steps read %q, want Create an application, then Generate", steps)
	}
	if b.exists(t, `main a[href^="/tokens/new"]`) {
		t.Error("Home offers to generate a token before any application exists")
	}
	if got := b.text(t, `[data-testid="count-active"] .stat-n`); got != "0" {
		t.Errorf("Home counts %s active tokens with only the bootstrap admin token", got)
	}
	if got := b.text(t, `[data-testid="admin-tokens"]`); !strings.HasPrefix(got, "Admin tokens: 1 active") {
		t.Errorf("the admin tokens read %q", got)
	}

	// Step 1: the application.
	if st := b.clickTextAndWait(t, `[data-testid="step-app"]`, "Create an application"); st != 200 {
		t.Fatalf("Create an application answered %d", st)
	}
	form := `[data-testid="create-app-form"]`
	b.fill(t, form, map[string]string{"name": "Shop", "token_prefix": "shop", "permissions": "orders:read\norders:write"})
	if st := b.clickTextAndWait(t, form, "Create application"); st != 200 {
		t.Fatalf("creating the app answered %d", st)
	}
	m := regexp.MustCompile(`^/apps/([^/?#]+)`).FindStringSubmatch(b.location(t))
	if m == nil {
		t.Fatalf("after creating an app the browser is on %s", b.location(t))
	}
	l.shopID = m[1]

	// Step 2: the token, in that application.
	b.open(t, "/", 200)
	if got := b.text(t, `[data-testid="step-app"]`); !strings.Contains(got, "Done") {
		t.Errorf("the application step does not read done: %q", got)
	}
	if st := b.clickTextAndWait(t, `[data-testid="step-generate"]`, "Generate API token"); st != 200 {
		t.Fatalf("Generate API token answered %d", st)
	}
	if got := eval[string](t, b, `document.querySelector("#create-token-form [name=app_id]").value`); got != l.shopID {
		t.Errorf("the token form suggests the app %q, want Shop %s", got, l.shopID)
	}
	b.typeInto(t, "#f-name", "deploy bot")
	if st := b.navigate(t, "generating the token", chromedp.Click(chromedp.CSS(`[data-testid="create-token-submit"]`))); st != 200 {
		t.Fatalf("creating a token answered %d", st)
	}
	tok := regexp.MustCompile(`^/tokens/(tok_[^/?#]+)`).FindStringSubmatch(b.location(t))
	if tok == nil {
		t.Fatalf("after creating a token the browser is on %s: %s", b.location(t), b.text(t, "main"))
	}
	l.tokenID = tok[1]
	if sec := l.readSecret(t); !strings.HasPrefix(sec, "shop_") {
		t.Errorf("the secret %q is not of Shop", sec)
	}

	// Done: Home counts the product token, and its card lists exactly it.
	b.open(t, "/", 200)
	if b.exists(t, `[data-testid="first-steps"]`) {
		t.Error("the first steps stay after the first token")
	}
	if got := b.text(t, `[data-testid="count-active"] .stat-n`); got != "1" {
		t.Errorf("Home counts %s active tokens, want 1", got)
	}
	if st := b.navigate(t, "opening the active count", chromedp.Click(chromedp.CSS(`[data-testid="count-active"]`))); st != 200 {
		t.Fatalf("the active count answered %d", st)
	}
	rows := eval[[]string](t, b, `[...document.querySelectorAll("tr[data-token-id]")].map(r => r.dataset.tokenId)`)
	if len(rows) != 1 || rows[0] != tok[1] {
		t.Errorf("the active count lists %v, want [%s]", rows, tok[1])
	}
}

func (l *layoutWalk) emptyApp(t *testing.T) {
	b := l.b
	billing := l.in.newApp(t, l.in.bootstrap, "Billing")
	b.open(t, "/tokens?app_id="+billing.ID, 200)
	b.shot(t, "layout-tokens-empty-app-1280")
	b.run(t, "generating for Billing", chromedp.Click(chromedp.CSS(`[data-testid="generate-for-app"]`)))
	b.run(t, "waiting for the create dialog", chromedp.WaitVisible(chromedp.ID("create-token-form")))
	if got := eval[string](t, b, `document.querySelector("#create-dialog [name=app_id]").value`); got != billing.ID {
		t.Errorf("the create dialog has the app %q, want Billing %s", got, billing.ID)
	}
}

func (l *layoutWalk) seed(t *testing.T) {
	in, admin := l.in, l.in.bootstrap
	names := []string{"nightly billing export", "Zapier integration (marketing team)", "mobile app", "staging smoke tests",
		"old cron job", "partner feed: Acme Corporation wholesale"}
	ids := map[string]string{}
	for _, n := range names {
		var c created
		in2 := tokend.TokenInput{AppID: l.shopID, Name: n, ExpiresIn: "90d", Description: "Used by the " + n + " of the shop."}
		if strings.HasPrefix(n, "partner feed") {
			// A customer's token: the list grows its Owner column.
			in2.OwnerID, in2.OwnerName = layoutOwner, "Acme Corporation Wholesale Ltd."
		}
		in.mustCall(t, 201, "POST", "/v1/tokens", admin, in2, &c)
		ids[n] = c.Token.ID
	}
	var c created
	in.mustCall(t, 201, "POST", "/v1/tokens", admin, tokend.TokenInput{AppID: l.shopID, Name: "expiring soon", ExpiresIn: "7d"}, &c)
	in.mustCall(t, 200, "POST", "/v1/tokens/"+ids["mobile app"]+"/disable", admin, nil, nil)
	in.mustCall(t, 200, "POST", "/v1/tokens/"+ids["old cron job"]+"/revoke", admin, nil, nil)

	b := l.b
	b.open(t, "/users", 200)
	b.fill(t, "#new-user-form", map[string]string{"name": "Vic Viewer", "email": viewerEmail, "role": "viewer", "password": viewerPass})
	if st := b.navigate(t, "creating the viewer", chromedp.Click(chromedp.ID("new-user-submit"))); st != 200 {
		t.Fatalf("creating the viewer answered %d", st)
	}
}

// webhook adds an endpoint of Shop for two event types through the
// Webhooks page's dialog: its page shows the signing secret once, and
// the list shows the endpoint.
func (l *layoutWalk) webhook(t *testing.T) {
	b := l.b
	b.open(t, "/webhooks", 200)
	b.run(t, "opening the add dialog", chromedp.Click(chromedp.ID("new-webhook")), chromedp.WaitVisible(chromedp.ID("w-url")))
	form := `[data-testid="create-webhook-form"]`
	b.fill(t, form, map[string]string{"app_id": l.shopID, "description": "Drops cached tokens of the shop's API gateway."})
	b.typeInto(t, "#w-url", "https://gateway.shop.example/hooks/tokend")
	for _, typ := range []string{"token.revoked", "token.rotated"} {
		b.run(t, "ticking "+typ, chromedp.Click(chromedp.CSS(`#create-webhook-dialog input[value="`+typ+`"]`)))
	}
	if st := b.clickTextAndWait(t, form, "Add endpoint"); st != 200 {
		t.Fatalf("adding the endpoint answered %d", st)
	}
	m := regexp.MustCompile(`^/webhooks/(whk_[^/?#]+)$`).FindStringSubmatch(b.location(t))
	if m == nil {
		t.Fatalf("after adding an endpoint the browser is on %s: %s", b.location(t), b.text(t, "main"))
	}
	l.webhookID = m[1]
	if sec := l.readSecret(t); !strings.HasPrefix(sec, "whsec_") {
		t.Errorf("the dialog shows %q, not a signing secret", sec)
	}
	b.shot(t, "layout-webhook-secret-1280")
	b.open(t, "/webhooks/"+l.webhookID, 200)
	if b.exists(t, "#new-secret") {
		t.Error("the signing secret is shown a second time")
	}
	if got := b.text(t, `[data-testid="webhook-details"]`); !strings.Contains(got, "token.rotated, token.revoked") || !strings.Contains(got, "Shop") {
		t.Errorf("the endpoint's details read %q", got)
	}
	b.open(t, "/webhooks", 200)
	if n := eval[int](t, b, `document.querySelectorAll("tr[data-webhook-id]").length`); n != 1 {
		t.Errorf("the list shows %d endpoints, want 1", n)
	}
}

func (l *layoutWalk) phone(t *testing.T) {
	b := l.b
	b.run(t, "narrowing the window to a phone's", chromedp.EmulateViewport(390, 844))
	defer b.run(t, "widening the window again", chromedp.EmulateViewport(1280, 900))
	for _, p := range l.pages() {
		b.open(t, p.path, 200)
		b.shot(t, "layout-"+p.name+"-390")
		if w := eval[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
			t.Errorf("%s is %d px wide in a 390 px window: the page pans sideways; sticking out: %v", p.path, w, eval[[]string](t, b, overflowing))
		}
		// Nothing hides in a box that scrolls sideways either: every cell
		// of every list is within the window.
		for _, o := range l.outside(t, "main td", false, false) {
			t.Errorf("%s at 390 px: %s", p.path, o)
		}
	}

	b.open(t, "/tokens", 200)
	cards := eval[int](t, b, `document.querySelectorAll("tr[data-token-id]").length`)
	if cards < 8 {
		t.Fatalf("%d tokens listed, want the 8 made", cards)
	}
	if d := eval[string](t, b, `getComputedStyle(document.querySelector("tr[data-token-id]")).display`); d == "table-row" {
		t.Error("at 390 px the tokens are still table rows, not cards")
	}
	for _, part := range []string{".badge", `[data-label="Expires"]`, "details.menu > summary", ".token-name", `[data-label="Token"] .copy`, `[data-label="Last used"]`} {
		sel := "tr[data-token-id] " + part
		if n := eval[int](t, b, fmt.Sprintf("document.querySelectorAll(%q).length", sel)); n != cards {
			t.Errorf("%d of %d cards have %s", n, cards, part)
		}
		for _, o := range l.outside(t, sel, false, true) {
			t.Errorf("a card's %s: %s", part, o)
		}
	}
	l.openMenu(t, "first", 390)
	l.openMenu(t, "last", 390)
}

// openMenu opens the row menu of the first or last token of the list and
// fails unless the whole menu is within the window; it closes it again.
func (l *layoutWalk) openMenu(t *testing.T, which string, width int) {
	t.Helper()
	b := l.b
	idx := "0"
	if which == "last" {
		idx = "all.length - 1"
	}
	eval[bool](t, b, fmt.Sprintf(`(() => { const all = document.querySelectorAll("tr[data-token-id]"), row = all[%s];
		for (const e of document.querySelectorAll("[data-e2e-target]")) e.removeAttribute("data-e2e-target");
		row.querySelector("details.menu > summary").setAttribute("data-e2e-target", "");
		row.scrollIntoView({block: "end"}); return true })()`, idx))
	// The menu shows once the page has placed it: wait for it to be seen.
	b.run(t, "opening the "+which+" row menu", chromedp.Click(chromedp.CSS("[data-e2e-target]")),
		chromedp.Poll[chromedp.Void](`(() => { const u = document.querySelector("details.menu[open] ul");
			return u !== null && u.checkVisibility({visibilityProperty: true}) })()`))
	for _, o := range l.outside(t, "details.menu[open] ul", true, true) {
		t.Errorf("at %d px the %s row menu: %s", width, which, o)
	}
	for _, o := range l.outside(t, "details.menu[open] ul a", true, true) {
		t.Errorf("at %d px an entry of the %s row menu: %s", width, which, o)
	}
	l.windowShot(t, fmt.Sprintf("layout-tokens-menu-%s-%d", which, width))
	b.press(t, "Escape")
	if b.exists(t, "details.menu[open]") {
		t.Errorf("Escape leaves the %s row menu open", which)
	}
}

func (l *layoutWalk) menus(t *testing.T) {
	b := l.b
	defer b.run(t, "restoring the window", chromedp.EmulateViewport(1280, 900))
	for _, w := range []int64{768, 910, 1024, 1280} {
		b.run(t, fmt.Sprintf("a window %d px wide", w), chromedp.EmulateViewport(w, 800))
		b.open(t, "/tokens", 200)
		b.shot(t, fmt.Sprintf("layout-tokens-%d", w))
		if sw := eval[int](t, b, "document.documentElement.scrollWidth"); sw > int(w) {
			t.Errorf("/tokens is %d px wide in a %d px window", sw, w)
		}
		for _, o := range l.outside(t, "tr[data-token-id] details.menu > summary", false, true) {
			t.Errorf("at %d px a row's Actions button: %s", w, o)
		}
		l.openMenu(t, "first", int(w))
		l.openMenu(t, "last", int(w))
	}
}

func (l *layoutWalk) wide(t *testing.T) {
	b := l.b
	b.run(t, "a window 1280 px wide", chromedp.EmulateViewport(1280, 900))
	for _, p := range l.pages() {
		b.open(t, p.path, 200)
		b.shot(t, "layout-"+p.name+"-1280")
	}
	// Home: the product's counts in one grid, each linking to its list.
	b.open(t, "/", 200)
	for card, want := range map[string]string{"count-active": "6", "count-expiring": "1", "count-disabled": "1", "count-revoked": "1", "count-expired": "0"} {
		if got := b.text(t, `[data-testid="`+card+`"] .stat-n`); got != want {
			t.Errorf("%s reads %s, want %s", card, got, want)
		}
	}
	if got := b.text(t, `[data-testid="activity"] li`); !strings.Contains(got, "Olivia Owner added the user Vic Viewer") {
		t.Errorf("the latest activity reads %q", got)
	}
}

// ownerPage opens the customer's page from the owner link in the token
// list, at 1280 and 390 px: their one token, within the window; then
// revokes all their tokens through its confirmation.
func (l *layoutWalk) ownerPage(t *testing.T) {
	b := l.b
	defer b.run(t, "restoring the window", chromedp.EmulateViewport(1280, 900))
	want := "/apps/" + l.shopID + "/owners/" + layoutOwner
	for _, w := range []int64{1280, 390} {
		b.run(t, fmt.Sprintf("a window %d px wide", w), chromedp.EmulateViewport(w, 844))
		b.open(t, "/tokens", 200)
		if st := b.navigate(t, "following the owner link", chromedp.Click(chromedp.CSS(`[data-testid="owner-link"]`))); st != 200 {
			t.Fatalf("the owner's page answered %d", st)
		}
		if got := b.location(t); got != want {
			t.Fatalf("the owner link led to %s, want %s", got, want)
		}
		b.shot(t, fmt.Sprintf("layout-owner-%d", w))
		if got := b.text(t, `[data-testid="owner-name"]`); got != "Acme Corporation Wholesale Ltd." {
			t.Errorf("the owner page's heading reads %q", got)
		}
		if n := eval[int](t, b, `document.querySelectorAll("tr[data-token-id]").length`); n != 1 {
			t.Errorf("the owner page lists %d tokens, want their 1", n)
		}
		if sw := eval[int](t, b, "document.documentElement.scrollWidth"); sw > int(w) {
			t.Errorf("the owner page is %d px wide in a %d px window; sticking out: %v", sw, w, eval[[]string](t, b, overflowing))
		}
		for _, o := range l.outside(t, `main td, main .stat, [data-testid="owner-id"], [data-testid="owner-revoke-all"]`, false, false) {
			t.Errorf("the owner page at %d px: %s", w, o)
		}
	}
	// At 390 px still: revoke all, confirmed on its page.
	if st := b.navigate(t, "opening the confirmation", chromedp.Click(chromedp.CSS(`[data-testid="owner-revoke-all"]`))); st != 200 {
		t.Fatalf("the confirmation answered %d", st)
	}
	if got := b.text(t, `[data-testid="owner-revoke-all-count"]`); !strings.Contains(got, "This revokes 1 token of") {
		t.Errorf("the confirmation reads %q", got)
	}
	if st := b.navigate(t, "revoking all", chromedp.Click(chromedp.CSS(`[data-testid="confirm-owner-revoke-all"]`))); st != 200 {
		t.Fatalf("revoking all ended on %d", st)
	}
	if got := b.location(t); got != want {
		t.Errorf("revoking all ended on %s, want the owner's page", got)
	}
	if got := b.text(t, ".flash"); !strings.Contains(got, "Revoked 1 token of "+layoutOwner) {
		t.Errorf("after revoking all the page says %q", got)
	}
	if got := b.text(t, `[data-testid="owner-count-revoked"] .stat-n`); got != "1" {
		t.Errorf("the revoked count reads %s, want 1", got)
	}
	if b.exists(t, `[data-testid="owner-revoke-all"]`) {
		t.Error("revoke all is still offered with nothing left to revoke")
	}
}
