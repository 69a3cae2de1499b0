package web

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// postFrom posts form (with the csrf the caller put in it) as a
// browser does from the page referer.
func (c *client) postFrom(t *testing.T, referer, path string, form url.Values) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.h.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if referer != "" {
		req.Header.Set("Referer", referer)
	}
	return c.do(t, req)
}

func TestRotateFromAnyPageShowsTheNewSecretOnceOnTheTokensPage(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	tok := "/tokens/" + f.active.ID

	// Every way to the rotation offers the grace period, a short one first.
	for _, page := range []string{tok, tok + "/rotate?back=%2Ftokens"} {
		res := admin.get(t, page)
		wantStatus(t, res, http.StatusOK)
		wantInBody(t, res, `name="grace_period"`, `<option value="1h" selected>`)
	}

	for _, back := range []string{"/tokens", "/tokens?status=active", tok, ""} {
		t.Run("back="+back, func(t *testing.T) {
			old := f.activeSecret
			if tk := h.token(t, f.active.ID); tk.PreviousSecretExpiresAt != nil {
				old = "" // rotated before in this test: the current secret is the last one shown
			}
			form := url.Values{"grace_period": {"1h"}}
			if back != "" {
				form.Set("back", back)
			}
			// The list menu's confirmation page carries back=/tokens…: the
			// secret must still be shown, so the rotation lands on the
			// token's page whatever back says.
			wantRedirect(t, admin.submit(t, tok+"/rotate?back="+url.QueryEscape(back), tok+"/rotate", form), tok)
			page := admin.get(t, tok)
			sec, ok := revealedSecret(page.Body)
			if !ok {
				t.Fatalf("the token's page does not show the new secret:\n%s", page.Body)
			}
			wantInBody(t, page, "rotated", "works until")
			if code := h.verify(t, sec); code != tokend.CodeValid {
				t.Errorf("the new secret verifies %s", code)
			}
			if old != "" {
				if code := h.verify(t, old); code != tokend.CodeValid {
					t.Errorf("the old secret within its hour of grace verifies %s", code)
				}
			}
			again := admin.get(t, tok)
			if _, shown := revealedSecret(again.Body); shown || strings.Contains(again.Body, sec) {
				t.Fatal("the new secret is shown a second time")
			}
		})
	}
}

func TestTheRevealShowsIdsAndNextStepsWithTheRealValues(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	res := admin.submit(t, "/tokens", "/tokens", createForm(f.app, "next steps"))
	wantStatus(t, res, http.StatusSeeOther)
	page := admin.get(t, res.Location())
	sec, ok := revealedSecret(page.Body)
	if !ok {
		t.Fatalf("no secret after create:\n%s", page.Body)
	}
	id := strings.TrimPrefix(res.Location(), "/tokens/")
	base := h.URL // the harness serves over TLS: https://127.0.0.1:port
	body := html.UnescapeString(page.Body)
	for _, want := range []string{
		`id="reveal-token-id">` + id + `<`,
		`id="reveal-app-id">` + f.app.ID + `<`,
		"curl -i " + base + "/v1/auth",
		`-H "Authorization: Bearer ` + sec + `"`,
		base + `/v1/verify`,
		`-d '{"token":"` + sec + `"}'`,
		"ACME_API_TOKEN=" + sec,
		`client.New("` + base + `")`,
		`os.Getenv("ACME_API_TOKEN")`,
		`new Tokend({ baseUrl: "` + base + `" })`,
		"process.env.ACME_API_TOKEN",
		`tokend.Client("` + base + `")`,
		`os.environ["ACME_API_TOKEN"]`,
		"auth_request /_tokend_auth;",
		"proxy_pass " + base + "/v1/auth;",
		"forward_auth " + strings.TrimPrefix(base, "https://") + " {",
		`href="/openapi.json"`,
		"data-guard",
		"You will not see this secret again.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the reveal lacks %q", want)
		}
	}
	if cc := page.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the page with the secret has Cache-Control %q, want no-store", cc)
	}
}

func TestEnvName(t *testing.T) {
	for prefix, want := range map[string]string{
		"acme": "ACME_API_TOKEN", "tkd": "TKD_API_TOKEN", "my-app": "MY_APP_API_TOKEN", "": "TOKEND_API_TOKEN", "9x": "TOKEND_9X_API_TOKEN",
	} {
		if got := envName(prefix); got != want {
			t.Errorf("envName(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func TestTheListShowsTheMaskedSecretAndCopiesOnlyALabelledID(t *testing.T) {
	_, f, admin := withFixture(t, tokend.RoleAdmin)
	res := admin.get(t, "/tokens")
	wantStatus(t, res, http.StatusOK)
	// The masked secret is text, not a button that copies something else.
	if strings.Contains(res.Body, `>`+f.active.Masked+`</button>`) {
		t.Error("the masked secret is a copy button (it would copy the id)")
	}
	wantInBody(t, res, `<span class="mono masked"`, html.EscapeString(f.active.Masked)+`</span>`,
		`data-copy-text="`+f.active.ID+`"`, `aria-label="Copy the token id `+f.active.ID+`"`, `>Copy id</button>`)
}

func TestAFormSentAfterTheSessionEndedLeadsToSignInAndBack(t *testing.T) {
	for _, how := range []string{"cookie gone", "idle timeout"} {
		t.Run(how, func(t *testing.T) {
			h, f, admin := withFixture(t, tokend.RoleAdmin)
			tok := "/tokens/" + f.active.ID
			form := url.Values{"csrf": {admin.csrf(t, tok)}}
			switch how {
			case "cookie gone":
				admin.setCookie(hostCookie(cookieSession), "")
			case "idle timeout":
				h.clock.Advance(31 * time.Minute)
			}
			res := admin.postFrom(t, h.URL+tok, tok+"/disable", form)
			wantRedirect(t, res, "/login?ended=1&next="+url.QueryEscape(tok))
			if got := h.token(t, f.active.ID); got.Status != tokend.StatusActive {
				t.Fatalf("the token is %s after a form without a session", got.Status)
			}
			login := admin.get(t, res.Location())
			wantStatus(t, login, http.StatusOK)
			wantInBody(t, login, "Your session ended, so the form you sent was not saved",
				`name="next" value="`+tok+`"`, `name="ended" value="1"`)
			signed := admin.submit(t, res.Location(), "/login", url.Values{
				"email": {h.users[tokend.RoleAdmin].Email}, "password": {testPassword}, "next": {tok}, "ended": {"1"}})
			wantRedirect(t, signed, tok)
			back := admin.get(t, tok)
			wantStatus(t, back, http.StatusOK)
			wantInBody(t, back, "You are signed in again. The form you sent while signed out was not saved")
		})
	}
}

func TestTheSignInRedirectNeverLeavesTheSite(t *testing.T) {
	h, f, _ := withFixture(t, tokend.RoleAdmin)
	tok := "/tokens/" + f.active.ID
	u, _ := url.Parse(h.URL)
	for _, ref := range []string{
		"https://evil.example" + tok,
		"https://evil.example//" + u.Host + tok,
		h.URL + "//evil.example/x",
		h.URL + `/\evil.example`,
		"javascript:alert(1)",
		"",
	} {
		t.Run(ref, func(t *testing.T) {
			c := h.client()
			form := url.Values{"csrf": {c.csrf(t, "/login")}}
			res := c.postFrom(t, ref, tok+"/disable", form)
			wantStatus(t, res, http.StatusSeeOther)
			loc, err := url.Parse(res.Location())
			if err != nil || loc.Path != "/login" || loc.Host != "" {
				t.Fatalf("redirected to %q", res.Location())
			}
			// next, when there is one, is a path of this site.
			if next := loc.Query().Get("next"); next != "" {
				n, err := url.Parse(next)
				if err != nil || n.Host != "" || n.Scheme != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
					strings.Contains(next, `\`) {
					t.Fatalf("next=%q from Referer %q", next, ref)
				}
			}
		})
	}
	// The sign-in itself only follows a path of this site.
	c := h.client()
	res := c.submit(t, "/login", "/login", url.Values{"email": {h.users[tokend.RoleAdmin].Email}, "password": {testPassword},
		"next": {"//evil.example/"}, "ended": {"1"}})
	wantRedirect(t, res, "/")
}

func TestDisablingAUserIsConfirmedFirst(t *testing.T) {
	h := newHarness(t)
	target := h.addUser(t, tokend.RoleViewer, "target@example.com")
	owner := h.login(t, tokend.RoleOwner)
	list := owner.get(t, "/users")
	wantStatus(t, list, http.StatusOK)
	if strings.Contains(list.Body, `action="/users/`+target.ID+`/disable"`) {
		t.Error("the users page disables in one click, without a confirmation")
	}
	wantInBody(t, list, `href="/users/`+target.ID+`/disable" data-confirm`, `href="/users/`+target.ID+`/delete" data-confirm`)
	page := owner.get(t, "/users/"+target.ID+"/disable")
	wantStatus(t, page, http.StatusOK)
	wantInBody(t, page, `class="confirm-form"`, `action="/users/`+target.ID+`/disable"`, "target@example.com", "Disable user", "signed out everywhere")
	wantRedirect(t, owner.submit(t, "/users/"+target.ID+"/disable", "/users/"+target.ID+"/disable", url.Values{}), "/users")
	if got := storedUser(t, h, target.ID); !got.Disabled {
		t.Error("the confirmed disable did not disable the user")
	}
}

// hostCookie is the harness's name of a cookie (secure mode: __Host-).
func hostCookie(base string) string { return "__Host-" + base }

func TestATokenCreateFormSentAfterTheSessionEndedIsKeptThroughSignIn(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	form := createForm(f.app, "kept through sign-in")
	form.Set("description", "typed before the session ended")
	form.Set("allowed_ips", "10.0.0.0/8")
	form.Set("csrf", admin.csrf(t, "/tokens"))
	admin.setCookie(hostCookie(cookieSession), "")
	res := admin.postFrom(t, h.URL+"/tokens", "/tokens", form)
	wantRedirect(t, res, "/login?ended=1&next="+url.QueryEscape("/tokens/new"))
	list, err := h.svc.Tokens(t.Context(), tokend.SystemActor, tokend.TokenFilter{Query: "kept through"})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("a token was created without a session: %v %v", list.Items, err)
	}
	kept, ok := admin.cookie(hostCookie(cookieResume))
	if !ok || strings.Contains(kept.Value, "kept") || strings.Contains(kept.Value, "10.0.0.0") {
		t.Fatalf("the kept form is not in a sealed cookie: %v", kept)
	}
	signed := admin.submit(t, res.Location(), "/login", url.Values{
		"email": {h.users[tokend.RoleAdmin].Email}, "password": {testPassword}, "next": {"/tokens/new"}, "ended": {"1"}})
	wantRedirect(t, signed, "/tokens/new")
	page := admin.get(t, "/tokens/new")
	wantStatus(t, page, http.StatusOK)
	wantInBody(t, page, `value="kept through sign-in"`, "typed before the session ended", "10.0.0.0/8",
		"The form you sent while signed out was not saved")
	if _, still := admin.cookie(hostCookie(cookieResume)); still {
		t.Error("the kept form's cookie outlives its showing")
	}
	// Shown once: the next visit starts blank.
	if again := admin.get(t, "/tokens/new"); strings.Contains(again.Body, "kept through sign-in") {
		t.Error("the kept form is shown a second time")
	}
}
