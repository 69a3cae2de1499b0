package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// The application form sets the leak policy, and a token whose secret was
// reported leaked shows a red banner on its page saying what was done,
// without the secret.
func TestLeakPolicyFormAndReportedBanner(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	res := admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "leak_policy": {"explode"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, `href="#a-leak"`)
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "leak_policy": {"disable"}})
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/apps/")
	page := "/apps/" + id
	wantInBody(t, admin.get(t, page), `data-testid="app-leak-policy">disable<`, `<option value="disable" selected>`)

	ctx, sys := context.Background(), tokend.SystemActor
	tok, sec, err := h.svc.CreateToken(ctx, sys, tokend.TokenInput{AppID: id, Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	tokPage := "/tokens/" + tok.ID
	if strings.Contains(admin.get(t, tokPage).Body, `data-testid="leak-reported"`) {
		t.Fatal("a banner before any report")
	}
	if _, err := h.svc.ReportLeaks(ctx, sys, tokend.LeakReport{Tokens: []string{sec.Reveal()}, Source: "gitleaks", URL: "https://git.example/<b>x</b>"}); err != nil {
		t.Fatal(err)
	}
	got := admin.get(t, tokPage)
	body := got.Body
	wantInBody(t, got, `data-testid="leak-reported"`, "Secret reported leaked", "gitleaks",
		"https://git.example/&lt;b&gt;x&lt;/b&gt;", "It was disabled")
	if strings.Contains(body, sec.Reveal()) {
		t.Error("the page shows the secret")
	}

	wantRedirect(t, admin.submit(t, page, page, url.Values{"version": {"1"}, "name": {"Shop"}, "token_prefix": {"tkd"}, "leak_policy": {"notify"}}), page)
	app, _ := h.svc.App(ctx, sys, id)
	if app.LeakPolicy != tokend.LeakNotify {
		t.Errorf("after editing: %q", app.LeakPolicy)
	}
}

// The application form sets the rotated-secret policy (notify by default),
// shows it, and refuses a value that is none.
func TestRotatedSecretPolicyForm(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	res := admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "rotated_secret_policy": {"revoke"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, `href="#a-rotated"`)
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}})
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/apps/")
	page := "/apps/" + id
	wantInBody(t, admin.get(t, page), `data-testid="app-rotated-policy">notify<`)
	wantRedirect(t, admin.submit(t, page, page, url.Values{"version": {"1"}, "name": {"Shop"}, "token_prefix": {"tkd"}, "rotated_secret_policy": {"disable"}}), page)
	app, _ := h.svc.App(context.Background(), tokend.SystemActor, id)
	if app.RotatedSecretPolicy != tokend.RotatedDisable {
		t.Errorf("after editing: %q, want disable", app.RotatedSecretPolicy)
	}
	wantInBody(t, admin.get(t, page), `data-testid="app-rotated-policy">disable<`, `<option value="disable" selected>Disable the token`)
}
