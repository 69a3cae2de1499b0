package web

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func (h *harness) verifyReq(t *testing.T, r tokend.VerifyRequest) tokend.Code {
	t.Helper()
	res, err := h.eng.Verify(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return res.Code
}

func (h *harness) flush(t *testing.T) {
	t.Helper()
	if err := h.eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTokenPageShowsRecentActivity(t *testing.T) {
	h, f, viewer := withFixture(t, tokend.RoleViewer)
	tok := "/tokens/" + f.active.ID
	wantInBody(t, viewer.get(t, tok), "Recent activity", `data-testid="activity-empty"`)

	at := h.clock.Now().UTC()
	h.verifyReq(t, tokend.VerifyRequest{Token: f.activeSecret, IP: "203.0.113.9"})
	h.clock.Advance(3 * time.Second)
	h.verifyReq(t, tokend.VerifyRequest{Token: f.activeSecret, IP: "198.51.100.4", Permissions: []string{"nope:write"},
		Method: "POST", Path: "/orders/7?api_key=s3cret"})
	h.flush(t)

	res := viewer.get(t, tok)
	wantStatus(t, res, http.StatusOK)
	wantInBody(t, res, `data-testid="activity-table"`,
		at.Format("2006-01-02 15:04:05 UTC"), at.Add(3*time.Second).Format("2006-01-02 15:04:05 UTC"),
		"203.0.113.9", "198.51.100.4", "POST /orders/7", `badge-active">VALID`, `badge-refused">INSUFFICIENT_PERMISSIONS`)
	if strings.Contains(res.Body, "s3cret") || strings.Contains(res.Body, "api_key") {
		t.Error("the page shows the query string")
	}
	// Newest first.
	table := res.Body[strings.Index(res.Body, `data-testid="activity-table"`):]
	if strings.Index(table, "198.51.100.4") > strings.Index(table, "203.0.113.9") {
		t.Error("activity is not newest first")
	}
}

// wantText fails the test unless the page's text, tags dropped and spaces
// collapsed, holds s.
func wantText(t *testing.T, res *response, s string) {
	t.Helper()
	text := strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(res.Body, ""))), " ")
	if !strings.Contains(text, s) {
		t.Errorf("%s %s: the page's text lacks %q\n%s", res.Request.Method, res.Request.URL, s, text)
	}
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// useOldSecret presents the fixture token's secret, replaced by rotation,
// from ip, as a leaked copy would be used, and flushes the engine.
func useOldSecret(t *testing.T, h *harness, f fixture, ip string) {
	t.Helper()
	h.verifyReq(t, tokend.VerifyRequest{Token: f.activeSecret, IP: ip})
	h.flush(t)
}

func TestLeakWarningUntilDismissedOrRotated(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	viewer := h.login(t, tokend.RoleViewer)
	ctx := context.Background()
	tok := "/tokens/" + f.active.ID
	rotatedAt := h.clock.Now().UTC()
	_, second, err := h.svc.RotateToken(ctx, tokend.SystemActor, f.active.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tok, "/"} {
		if res := admin.get(t, p); strings.Contains(res.Body, `data-testid="leak-banner"`) {
			t.Fatalf("%s warns before any old secret was used", p)
		}
	}
	h.clock.Advance(10 * time.Second)
	usedAt := h.clock.Now().UTC()
	useOldSecret(t, h, f, "203.0.113.9")

	msg := "A secret this token had before its rotation on " + rotatedAt.Format("2006-01-02 15:04:05 UTC") +
		" was used on " + usedAt.Format("2006-01-02 15:04:05 UTC") + " from 203.0.113.9: it may have leaked. Rotate the token again or revoke it."
	for _, p := range []string{tok, "/"} {
		res := admin.get(t, p)
		wantInBody(t, res, `data-testid="leak-banner"`, `data-testid="leak-dismiss"`)
		wantText(t, res, msg)
	}
	wantInBody(t, admin.get(t, "/"), `href="/tokens/`+f.active.ID+`">ci deploy</a>`)

	// A viewer sees it and may not dismiss it.
	res := viewer.get(t, "/")
	wantText(t, res, msg)
	if strings.Contains(res.Body, `data-testid="leak-dismiss"`) {
		t.Error("a viewer is offered Dismiss")
	}
	res = viewer.post(t, tok+"/leak/dismiss", url.Values{"csrf": {viewer.csrf(t, "/")}})
	wantStatus(t, res, http.StatusForbidden)
	wantText(t, admin.get(t, tok), msg)

	// Without the form token: refused, nothing dismissed.
	res = admin.post(t, tok+"/leak/dismiss", url.Values{})
	if res.StatusCode < 400 {
		t.Errorf("dismiss without a form token = %d", res.StatusCode)
	}
	wantText(t, admin.get(t, tok), msg)

	// Dismissed from Home: back to Home, gone on both pages, audited.
	h.clock.Advance(time.Second)
	res = admin.submit(t, "/", tok+"/leak/dismiss", url.Values{"back": {"/"}})
	wantRedirect(t, res, "/")
	for _, p := range []string{tok, "/"} {
		if res := admin.get(t, p); strings.Contains(res.Body, `data-testid="leak-banner"`) {
			t.Errorf("%s still warns after the dismissal", p)
		}
	}
	ev, err := h.svc.Events(ctx, tokend.SystemActor, tokend.EventFilter{TokenID: f.active.ID, Action: tokend.ActionTokenLeakDismissed})
	if err != nil || len(ev.Items) != 1 || ev.Items[0].Actor != "user:"+h.users[tokend.RoleAdmin].ID {
		t.Errorf("dismissal audit = %+v, %v", ev.Items, err)
	}

	// Used again (the engine records at most one use per hour): back.
	h.clock.Advance(2 * time.Hour)
	useOldSecret(t, h, f, "192.0.2.77")
	admin = h.login(t, tokend.RoleAdmin) // the session ended meanwhile
	wantInBody(t, admin.get(t, tok), `data-testid="leak-banner"`, "192.0.2.77")

	// Rotated again: gone, without a dismissal.
	h.clock.Advance(time.Second)
	if _, _, err := h.svc.RotateToken(ctx, tokend.SystemActor, f.active.ID, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tok, "/"} {
		if res := admin.get(t, p); strings.Contains(res.Body, `data-testid="leak-banner"`) {
			t.Errorf("%s still warns after another rotation", p)
		}
	}
	// Dismissing a token without a warning changes nothing; an unknown one
	// is a 404.
	wantRedirect(t, admin.submit(t, tok, tok+"/leak/dismiss", nil), tok)
	wantStatus(t, admin.submit(t, tok, "/tokens/tok_missing/leak/dismiss", nil), http.StatusNotFound)

	// The secret the first rotation gave, replaced by the second, used: the
	// warning is back; revoking the token ends it.
	h.clock.Advance(2 * time.Hour)
	h.verifyReq(t, tokend.VerifyRequest{Token: second.Reveal(), IP: "192.0.2.88"})
	h.flush(t)
	admin = h.login(t, tokend.RoleAdmin)
	wantInBody(t, admin.get(t, tok), `data-testid="leak-banner"`, "192.0.2.88")
	if _, err := h.svc.RevokeToken(ctx, tokend.SystemActor, f.active.ID, 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tok, "/"} {
		if res := admin.get(t, p); strings.Contains(res.Body, `data-testid="leak-banner"`) {
			t.Errorf("%s still warns about a revoked token", p)
		}
	}
}
