package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// TestPortalInChromium walks the customer portal in a real Chromium at
// 1280 and 390 px: the product's backend mints a link over the API, the
// browser arrives by it, generates a token, copies it, sees it listed,
// rotates and revokes it, and signs out to the product's return_url (a
// tiny page served here). Screenshots go to the run's screenshot
// directory ($TOKEND_SCREENSHOTS when set), portal-*.png.
func TestPortalInChromium(t *testing.T) {
	d, s := startDashboard(t, t.TempDir())
	b, in := d.b, d.in
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Acme settings</title><h1 id="back">Back in Acme's settings</h1>`)
	}))
	t.Cleanup(back.Close)

	api := func(t *testing.T, method, path string, body any, want int) map[string]any {
		t.Helper()
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, in.url+path, bytes.NewReader(js))
		req.Header.Set("Authorization", "Bearer "+in.bootstrap)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, res.StatusCode, out, want)
		}
		return out
	}
	app := api(t, http.MethodPost, "/v1/apps", map[string]any{"name": "Acme Cloud", "token_prefix": "acme",
		"permissions": []string{"projects:read", "projects:write"}}, http.StatusCreated)
	appID := app["id"].(string)
	b.run(t, "letting the page use the clipboard", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := cdp.Call(ctx, tg, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
				Permission: &cdpbrowser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
				Setting:    cdpbrowser.PermissionSettingGranted, Origin: in.url,
			}); err != nil {
				return err
			}
		}
		return nil
	}))

	for _, w := range []struct{ width, height int64 }{{1280, 900}, {390, 844}} {
		px := fmt.Sprint(w.width)
		var secret, tokenID string
		name := "CI deploys " + px
		s.run(px+": arrive by link", func(t *testing.T) {
			b.run(t, "sizing the window", chromedp.EmulateViewport(w.width, w.height))
			link := api(t, http.MethodPost, "/v1/portal/sessions", map[string]any{
				"app_id": appID, "owner_id": "acct_" + px, "owner_name": "Globex " + px,
				"user":       map[string]any{"id": "u_42", "name": "Grace", "email": "grace@globex.example"},
				"return_url": back.URL + "/settings",
			}, http.StatusCreated)["url"].(string)
			if st := b.navigate(t, "opening the link", chromedp.Navigate(link)); st != http.StatusOK {
				t.Fatalf("the link ended on %d", st)
			}
			if loc := b.location(t); loc != "/portal/" {
				t.Fatalf("after the link the address is %q, want /portal/ (the link's secret must leave it)", loc)
			}
			if got := b.text(t, ".brand"); got != "Acme Cloud" {
				t.Errorf("brand %q", got)
			}
			b.shot(t, "portal-01-empty-"+px)
		})
		s.run(px+": generate and copy", func(t *testing.T) {
			b.run(t, "opening the form", chromedp.Click(chromedp.CSS("#new-token")))
			if !b.visible(t, "#create") {
				t.Fatal("the form did not open")
			}
			b.fill(t, "#create form", map[string]string{"name": name, "expires": "90d", "access": "read_only"})
			b.shot(t, "portal-02-form-"+px)
			if st := b.navigate(t, "generating", chromedp.Click(chromedp.CSS("#create-submit"))); st != http.StatusOK {
				t.Fatalf("generate answered %d", st)
			}
			secret = b.text(t, "#secret")
			if !strings.HasPrefix(secret, "acme_") {
				t.Fatalf("the secret shown is %q", secret)
			}
			if got := b.text(t, "#account-id"); got != "acct_"+px {
				t.Errorf("account id shown %q", got)
			}
			b.run(t, "copying", chromedp.Click(chromedp.CSS("#copy-secret")))
			b.run(t, "waiting for the copy", chromedp.WaitVisible(chromedp.CSS("#copy-secret.copied")))
			if clip := eval[string](t, b, "navigator.clipboard.readText()"); clip != secret {
				t.Errorf("the clipboard holds %q, want the secret", clip)
			}
			b.shot(t, "portal-03-secret-"+px)
		})
		s.run(px+": listed", func(t *testing.T) {
			rows := eval[[]string](t, b, `[...document.querySelectorAll("#tokens tr[data-token]")].map(r => r.dataset.token + " " + r.innerText)`)
			if len(rows) != 1 || !strings.Contains(rows[0], name) || strings.Contains(rows[0], secret) {
				t.Fatalf("rows %q", rows)
			}
			tokenID = strings.Fields(rows[0])[0]
			if wd := eval[int](t, b, "document.documentElement.scrollWidth"); wd > int(w.width) {
				t.Errorf("the page is %d px wide in a %d px window", wd, w.width)
			}
			if w.width == 390 && eval[string](t, b, `getComputedStyle(document.querySelector("#tokens tr[data-token]")).display`) != "block" {
				t.Error("at 390 px the tokens are still table rows, not cards")
			}
		})
		s.run(px+": rotate", func(t *testing.T) {
			b.navigate(t, "opening the token", chromedp.Click(chromedp.CSS(`#tokens tr[data-token="`+tokenID+`"] a.button`)))
			if st := b.navigate(t, "rotating", chromedp.Click(chromedp.CSS("#rotate"))); st != http.StatusOK {
				t.Fatalf("rotate answered %d", st)
			}
			if again := b.text(t, "#secret"); again == secret || !strings.HasPrefix(again, "acme_") {
				t.Errorf("after rotation the secret shown is %q", again)
			}
			b.shot(t, "portal-04-rotated-"+px)
		})
		s.run(px+": revoke", func(t *testing.T) {
			b.run(t, "asking to revoke", chromedp.Click(chromedp.CSS("#revoke-open")))
			if st := b.navigate(t, "revoking", chromedp.Click(chromedp.CSS("#revoke"))); st != http.StatusOK {
				t.Fatalf("revoke ended on %d", st)
			}
			if got := b.text(t, "#state"); got != "revoked" {
				t.Errorf("status after revoke %q", got)
			}
			b.shot(t, "portal-05-revoked-"+px)
		})
		s.run(px+": sign out to return_url", func(t *testing.T) {
			if st := b.navigate(t, "signing out", chromedp.Click(chromedp.CSS("#signout"))); st != http.StatusOK {
				t.Fatalf("sign-out ended on %d", st)
			}
			if loc := get(t, b, "location", chromedp.Location()); loc != back.URL+"/settings" {
				t.Errorf("signed out to %q, want %q", loc, back.URL+"/settings")
			}
			if got := b.text(t, "#back"); !strings.Contains(got, "Back in Acme") {
				t.Errorf("return page says %q", got)
			}
		})
	}
}
