package portal

// The portal's tests run the real stack: a SQLite store, the service, the
// verification engine and the REST API with the portal mounted as `tokend
// serve` mounts it, behind an httptest TLS server (so the cookie carries
// its __Host- name), on a clock the tests move.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/secret"
)

type harness struct {
	URL    string
	srv    *httptest.Server
	store  *sqlite.Store
	svc    *manage.Service
	clock  *testclock.Clock
	admin  string // the bootstrap admin token's secret
	boot   tokend.Actor
	appX   tokend.App
	appY   tokend.App
	apiHTT *http.Client
	logs   *syncBuffer // the server's log, at debug level
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hasher, err := secret.NewHasher([]byte("a pepper for the portal tests, long enough"))
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	eng := verify.New(verify.Options{Store: st, Hasher: hasher, Now: clock.Now})
	svc := manage.New(manage.Options{Store: st, Users: st, Hasher: hasher, Invalidator: eng, Now: clock.Now})
	if err := svc.EnsureSystemApp(ctx); err != nil {
		t.Fatal(err)
	}
	_, sec, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := eng.Verify(ctx, tokend.VerifyRequest{Token: sec.Reveal()})
	if err != nil || !vr.Valid {
		t.Fatalf("the bootstrap token does not verify: %+v %v", vr, err)
	}
	boot := manage.AdminActor(*vr.Token, "127.0.0.1")
	mux := http.NewServeMux()
	mux.Handle(Prefix, New(Options{Service: svc}))
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewTLSServer(httpapi.NewServer(httpapi.Deps{Service: svc, Verifier: eng, Extra: mux, Logger: logger}))
	t.Cleanup(srv.Close)
	h := &harness{URL: srv.URL, srv: srv, store: st, svc: svc, clock: clock, admin: sec.Reveal(), boot: boot, apiHTT: srv.Client(), logs: logs}
	for _, p := range []*tokend.App{&h.appX, &h.appY} {
		name := "Shop X"
		if p == &h.appY {
			name = "Shop Y"
		}
		*p, err = svc.CreateApp(ctx, boot, tokend.AppInput{Name: name, TokenPrefix: "shop", Permissions: []string{"orders:read", "orders:write"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// api calls the REST API with the bearer secret and answers the status and
// the decoded body.
func (h *harness) api(t *testing.T, bearer, method, path string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, h.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	res, err := h.apiHTT.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func linkBody(appID, owner string) map[string]any {
	return map[string]any{
		"app_id": appID, "owner_id": owner, "owner_name": "Customer " + owner,
		"user":       map[string]any{"id": "u_" + owner, "name": "Ada", "email": "ada@example.com"},
		"return_url": "https://shop.example.com/settings",
	}
}

// mint asks the API for a link and answers its URL.
func (h *harness) mint(t *testing.T, body map[string]any) string {
	t.Helper()
	status, out := h.api(t, h.admin, http.MethodPost, "/v1/portal/sessions", body)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/portal/sessions: %d %v", status, out)
	}
	u, _ := out["url"].(string)
	if !strings.HasPrefix(u, h.URL+"/portal/open/") {
		t.Fatalf("url %q is not a link to this server's portal", u)
	}
	exp, err := time.Parse(time.RFC3339, out["expires_at"].(string))
	if err != nil || exp.After(h.clock.Now().Add(5*time.Minute)) {
		t.Fatalf("expires_at %v (%v): more than 5 minutes away", out["expires_at"], err)
	}
	return u
}

type browser struct {
	h   *harness
	c   *http.Client
	jar *cookiejar.Jar
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	return &browser{h: h, jar: jar, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	*http.Response
	Body string
}

func (b *browser) do(t *testing.T, req *http.Request) *response {
	t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return &response{Response: res, Body: string(body)}
}

func (b *browser) get(t *testing.T, u string) *response {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.h.URL + u
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(t, req)
}

func (b *browser) post(t *testing.T, path string, form url.Values) *response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.h.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func (b *browser) csrf(t *testing.T) string {
	t.Helper()
	res := b.get(t, "/portal/")
	m := csrfRE.FindStringSubmatch(res.Body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /portal/: %d, no CSRF token\n%s", res.StatusCode, res.Body)
	}
	return html.UnescapeString(m[1])
}

// submit posts form with the session's CSRF token.
func (b *browser) submit(t *testing.T, path string, form url.Values) *response {
	t.Helper()
	f := url.Values{"csrf": {b.csrf(t)}}
	for k, v := range form {
		f[k] = v
	}
	return b.post(t, path, f)
}

// arrive opens a fresh link for owner of app in a new browser.
func (h *harness) arrive(t *testing.T, appID, owner string) *browser {
	t.Helper()
	b := h.browser()
	res := b.get(t, h.mint(t, linkBody(appID, owner)))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/portal/" {
		t.Fatalf("opening the link: %d to %q\n%s", res.StatusCode, res.Header.Get("Location"), res.Body)
	}
	return b
}

var secretRE = regexp.MustCompile(`<code id="secret" class="secret">([^<]+)</code>`)

func TestALinkOpensOnceIntoItsOwnSession(t *testing.T) {
	h := newHarness(t)
	link := h.mint(t, linkBody(h.appX.ID, "acct_a"))
	b := h.browser()
	res := b.get(t, link)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/portal/" {
		t.Fatalf("opening the link: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q, want no-referrer (the link holds a secret)", got)
	}
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Host-tokend_portal" {
			ck = c
		}
	}
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("portal cookie = %+v; want __Host-tokend_portal, Secure, HttpOnly, SameSite=Lax, Path=/, host-only", ck)
	}
	if res := b.get(t, "/portal/"); res.StatusCode != http.StatusOK || !strings.Contains(res.Body, "Customer acct_a") {
		t.Fatalf("GET /portal/ = %d\n%s", res.StatusCode, res.Body)
	}
	// A second link in the same browser replaces the session: the first
	// one's id no longer works.
	if res := b.get(t, h.mint(t, linkBody(h.appX.ID, "acct_a"))); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("a second link: %d", res.StatusCode)
	}
	if _, err := h.svc.PortalSession(t.Context(), ck.Value); err == nil {
		t.Error("the replaced session still works")
	}
	// Used: the same link, in this browser or another, opens nothing.
	for _, other := range []*browser{b, h.browser()} {
		if res := other.get(t, link); res.StatusCode != http.StatusNotFound || !strings.Contains(res.Body, "expired") {
			t.Errorf("a used link: %d\n%s", res.StatusCode, res.Body)
		}
	}
	// The link's secret is in no log line, nor the session's id.
	secretPart := strings.TrimPrefix(link, h.URL+"/portal/open/")
	if logs := h.logs.String(); strings.Contains(logs, secretPart) || strings.Contains(logs, ck.Value) || !strings.Contains(logs, "/portal/open/…") {
		t.Errorf("the log holds the link's or the session's secret, or no masked open:\n%s", logs)
	}
	// The dashboard's session cookie is not the portal's: a dashboard
	// cookie opens nothing here.
	fresh := h.browser()
	u, _ := url.Parse(h.URL)
	fresh.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-tokend_session", Value: ck.Value, Path: "/", Secure: true}})
	if res := fresh.get(t, "/portal/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /portal/ with only a dashboard cookie: %d, want 401", res.StatusCode)
	}
}

func TestALinkExpiresAfterFiveMinutes(t *testing.T) {
	h := newHarness(t)
	late := h.mint(t, linkBody(h.appX.ID, "acct_a"))
	inTime := h.mint(t, linkBody(h.appX.ID, "acct_a"))
	h.clock.Advance(5*time.Minute - time.Second)
	if res := h.browser().get(t, inTime); res.StatusCode != http.StatusSeeOther {
		t.Errorf("a link after 4m59s: %d, want 303", res.StatusCode)
	}
	h.clock.Advance(time.Second)
	if res := h.browser().get(t, late); res.StatusCode != http.StatusNotFound {
		t.Errorf("a link after 5 minutes: %d, want 404", res.StatusCode)
	}
	for _, bad := range []string{"/portal/open/x", "/portal/open/" + strings.Repeat("a", 200), "/portal/open/%00"} {
		if res := h.browser().get(t, bad); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", bad, res.StatusCode)
		}
	}
}

func TestASessionEndsAfter30MinutesIdle(t *testing.T) {
	h := newHarness(t)
	b := h.arrive(t, h.appX.ID, "acct_a")
	h.clock.Advance(29 * time.Minute)
	if res := b.get(t, "/portal/"); res.StatusCode != http.StatusOK {
		t.Fatalf("after 29 minutes: %d", res.StatusCode)
	}
	h.clock.Advance(30 * time.Minute)
	if res := b.get(t, "/portal/"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Body, "session has ended") {
		t.Errorf("after 30 minutes idle: %d, want 401", res.StatusCode)
	}
}

func TestMintingValidatesEverything(t *testing.T) {
	h := newHarness(t)
	bad := map[string]func(m map[string]any){
		"http elsewhere":         func(m map[string]any) { m["return_url"] = "http://shop.example.com/" },
		"javascript":             func(m map[string]any) { m["return_url"] = "javascript:alert(1)" },
		"relative":               func(m map[string]any) { m["return_url"] = "/settings" },
		"scheme-relative":        func(m map[string]any) { m["return_url"] = "//evil.example/" },
		"user info":              func(m map[string]any) { m["return_url"] = "https://a:b@shop.example.com/" },
		"NUL":                    func(m map[string]any) { m["return_url"] = "https://shop.example.com/\x00" },
		"bidi":                   func(m map[string]any) { m["return_url"] = "https://shop.example.com/\u202e" },
		"too long":               func(m map[string]any) { m["return_url"] = "https://shop.example.com/" + strings.Repeat("a", 2048) },
		"a port that is none":    func(m map[string]any) { m["return_url"] = "https://shop.example.com:99999/" },
		"port zero":              func(m map[string]any) { m["return_url"] = "https://shop.example.com:0/" },
		"no return url":          func(m map[string]any) { delete(m, "return_url") },
		"no owner":               func(m map[string]any) { m["owner_id"] = "" },
		"owner with a space":     func(m map[string]any) { m["owner_id"] = "a b" },
		"owner name bidi":        func(m map[string]any) { m["owner_name"] = "x\u202ey" },
		"no user":                func(m map[string]any) { m["user"] = map[string]any{"name": "x"} },
		"user email":             func(m map[string]any) { m["user"] = map[string]any{"id": "u1", "email": "not an email"} },
		"system app":             func(m map[string]any) { m["app_id"] = tokend.SystemAppID },
		"unknown app":            func(m map[string]any) { m["app_id"] = "app_doesnotexist0000000000" },
		"access outside":         func(m map[string]any) { m["allowed_access"] = []string{"root"} },
		"permission outside app": func(m map[string]any) { m["allowed_permissions"] = []string{"billing:write"} },
	}
	for name, change := range bad {
		body := linkBody(h.appX.ID, "acct_a")
		change(body)
		status, out := h.api(t, h.admin, http.MethodPost, "/v1/portal/sessions", body)
		if status < 400 || status >= 500 || status == 404 && name != "unknown app" {
			t.Errorf("%s: %d %v, want a 4xx", name, status, out)
		}
	}
	// Invalid UTF-8 cannot even be sent as JSON text: a raw body.
	req, _ := http.NewRequest(http.MethodPost, h.URL+"/v1/portal/sessions",
		strings.NewReader(`{"app_id":"`+h.appX.ID+`","owner_id":"a","user":{"id":"u"},"return_url":"https://x.example/`+"\xff"+`"}`))
	req.Header.Set("Authorization", "Bearer "+h.admin)
	req.Header.Set("Content-Type", "application/json")
	res, err := h.apiHTT.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode < 400 || res.StatusCode >= 500 {
		t.Errorf("invalid UTF-8: %d, want a 4xx", res.StatusCode)
	}
	for _, good := range []string{"https://shop.example.com/settings?x=1#y", "http://localhost:3000/back", "http://LOCALHOST/back", "http://127.0.0.1/back", "https://shop.example.com:65535/"} {
		body := linkBody(h.appX.ID, "acct_a")
		body["return_url"] = good
		if status, out := h.api(t, h.admin, http.MethodPost, "/v1/portal/sessions", body); status != http.StatusCreated {
			t.Errorf("return_url %s: %d %v", good, status, out)
		}
	}
	// Without tokens:write: 403.
	ro, sec, err := h.svc.CreateToken(t.Context(), h.boot, tokend.TokenInput{AppID: tokend.SystemAppID, Name: "reader", Access: tokend.AccessReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	_ = ro
	if status, _ := h.api(t, sec.Reveal(), http.MethodPost, "/v1/portal/sessions", linkBody(h.appX.ID, "acct_a")); status != http.StatusForbidden {
		t.Errorf("a read-only admin token: %d, want 403", status)
	}
}

func TestAScopedAdminTokenMintsOnlyForItsOwner(t *testing.T) {
	h := newHarness(t)
	_, sec, err := h.svc.CreateToken(t.Context(), h.boot, tokend.TokenInput{
		AppID: tokend.SystemAppID, Name: "backend for a", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermTokensRead, tokend.PermTokensWrite, tokend.PermTokensRotate, tokend.PermTokensDelete, tokend.PermAppsRead},
		Scope:       &tokend.AdminScope{OwnerID: "acct_a", AppIDs: []string{h.appX.ID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	scoped := sec.Reveal()
	if status, out := h.api(t, scoped, http.MethodPost, "/v1/portal/sessions", linkBody(h.appX.ID, "acct_a")); status != http.StatusCreated {
		t.Errorf("its own owner: %d %v", status, out)
	}
	if status, _ := h.api(t, scoped, http.MethodPost, "/v1/portal/sessions", linkBody(h.appX.ID, "acct_b")); status != http.StatusNotFound {
		t.Errorf("another owner: %d, want 404", status)
	}
	if status, _ := h.api(t, scoped, http.MethodPost, "/v1/portal/sessions", linkBody(h.appY.ID, "acct_a")); status != http.StatusNotFound {
		t.Errorf("an application outside its scope: %d, want 404", status)
	}
}

// TestCustomerAIsolatedFromCustomerB tries B's token ids (and A's own token
// of another application) directly in every route of A's session.
func TestCustomerAIsolatedFromCustomerB(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	tokB, _, err := h.svc.CreateToken(ctx, h.boot, tokend.TokenInput{AppID: h.appX.ID, OwnerID: "acct_b", Name: "B's deploys"})
	if err != nil {
		t.Fatal(err)
	}
	tokAY, _, err := h.svc.CreateToken(ctx, h.boot, tokend.TokenInput{AppID: h.appY.ID, OwnerID: "acct_a", Name: "A's token in Y"})
	if err != nil {
		t.Fatal(err)
	}
	unowned, _, err := h.svc.CreateToken(ctx, h.boot, tokend.TokenInput{AppID: h.appX.ID, Name: "no owner"})
	if err != nil {
		t.Fatal(err)
	}
	adminID := h.boot.ID
	a := h.arrive(t, h.appX.ID, "acct_a")
	list := a.get(t, "/portal/")
	for _, other := range []tokend.Token{tokB, tokAY, unowned} {
		if strings.Contains(list.Body, other.ID) || strings.Contains(list.Body, other.Name) {
			t.Errorf("A's list shows %s (%q)", other.ID, other.Name)
		}
	}
	for _, id := range []string{tokB.ID, tokAY.ID, unowned.ID, adminID, "tok_doesnotexist", "..%2f..%2fv1"} {
		if res := a.get(t, "/portal/tokens/"+id); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET /portal/tokens/%s: %d, want 404", id, res.StatusCode)
		}
		for _, action := range []string{"edit", "disable", "enable", "revoke", "rotate", "delete"} {
			res := a.submit(t, "/portal/tokens/"+id+"/"+action, url.Values{"name": {"mine now"}})
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("POST %s on %s: %d, want 404", action, id, res.StatusCode)
			}
		}
	}
	for _, tok := range []tokend.Token{tokB, tokAY, unowned} {
		got, err := h.store.Token(ctx, tok.ID)
		if err != nil || got.Status != tokend.StatusActive || got.Name != tok.Name || got.Version != tok.Version {
			t.Errorf("%s after A's attempts: %+v %v", tok.ID, got, err)
		}
	}
	// B's own session sees B's token.
	b := h.arrive(t, h.appX.ID, "acct_b")
	if res := b.get(t, "/portal/tokens/"+tokB.ID); res.StatusCode != http.StatusOK {
		t.Errorf("B opening its own token: %d", res.StatusCode)
	}
}

func TestTheCustomerManagesTheirTokens(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	a := h.arrive(t, h.appX.ID, "acct_a")
	res := a.submit(t, "/portal/tokens", url.Values{"name": {"CI deploys"}, "type": {"standard"}, "expires": {"90d"},
		"access": {"read_only"}, "allowed_ips": {"203.0.113.0/24"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("generate: %d\n%s", res.StatusCode, res.Body)
	}
	m := secretRE.FindStringSubmatch(res.Body)
	if m == nil || !strings.Contains(res.Body, `<code id="account-id">acct_a</code>`) {
		t.Fatalf("the secret and the account id are not shown:\n%s", res.Body)
	}
	sec := m[1]
	page, err := h.store.Tokens(ctx, tokend.TokenFilter{AppID: h.appX.ID, OwnerID: "acct_a", Now: h.clock.Now(), Query: "CI deploys"})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("tokens of acct_a: %v %v", page.Items, err)
	}
	tok := page.Items[0]
	if tok.OwnerName != "Customer acct_a" || tok.CreatedBy != "owner:acct_a" || len(tok.AllowedIPs) != 1 {
		t.Errorf("token = %+v", tok)
	}
	// A plugin token with its origins.
	if res := a.submit(t, "/portal/tokens", url.Values{"name": {"extension"}, "type": {"plugin"}, "expires": {"custom"},
		"expires_on": {h.clock.Now().AddDate(0, 1, 0).Format("2006-01-02")}, "access": {"full_access"},
		"allowed_origins": {"https://app.example.com"}}); res.StatusCode != http.StatusOK || !secretRE.MatchString(res.Body) {
		t.Errorf("a plugin token with an origin and a date: %d\n%s", res.StatusCode, res.Body)
	}
	// Shown once: the list never shows it again.
	list := a.get(t, "/portal/")
	if strings.Contains(list.Body, sec) || !strings.Contains(list.Body, tok.ID) {
		t.Errorf("the list shows the secret, or not the token")
	}
	// The audit log names the customer and their user.
	evs, err := h.store.Events(ctx, tokend.EventFilter{TokenID: tok.ID})
	if err != nil || len(evs.Items) == 0 || evs.Items[0].Actor != "owner:acct_a" || evs.Items[0].Details["user"] != "user:u_acct_a" {
		t.Errorf("audit of the creation: %+v %v", evs.Items, err)
	}
	// Access beyond what the link allows is refused.
	res = a.submit(t, "/portal/tokens", url.Values{"name": {"too much"}, "type": {"standard"}, "expires": {"7d"}, "access": {"custom"}, "permissions": {"orders:write"}})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("custom access not allowed by the link: %d", res.StatusCode)
	}
	for _, bad := range []url.Values{
		{"name": {strings.Repeat("n", 51)}, "expires": {"7d"}, "access": {"read_only"}},
		{"name": {"x\u202e"}, "expires": {"7d"}, "access": {"read_only"}},
		{"name": {"x"}, "expires": {"forever"}, "access": {"read_only"}},
		{"name": {"x"}, "expires": {"custom"}, "expires_on": {"not a date"}, "access": {"read_only"}},
		{"name": {"x"}, "expires": {"7d"}, "access": {"read_only"}, "allowed_ips": {"not an ip"}},
		{"name": {"x"}, "expires": {"7d"}, "access": {"read_only"}, "type": {"root"}},
		{"name": {"CI deploys"}, "expires": {"7d"}, "access": {"read_only"}},
	} {
		if res := a.submit(t, "/portal/tokens", bad); res.StatusCode < 400 || res.StatusCode >= 500 || !strings.Contains(res.Body, "form-errors") {
			t.Errorf("generate with %v: %d, want a 4xx with a message", bad, res.StatusCode)
		}
	}
	// Edit, disable, enable, rotate, revoke, delete.
	path := "/portal/tokens/" + tok.ID
	if res := a.submit(t, path+"/edit", url.Values{"name": {"CI deploys (prod)"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", res.StatusCode, res.Body)
	}
	for _, action := range []string{"disable", "enable"} {
		if res := a.submit(t, path+"/"+action, nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", action, res.StatusCode, res.Body)
		}
	}
	res = a.submit(t, path+"/rotate", nil)
	m = secretRE.FindStringSubmatch(res.Body)
	if res.StatusCode != http.StatusOK || m == nil || m[1] == sec {
		t.Fatalf("rotate: %d, new secret shown: %v", res.StatusCode, m != nil)
	}
	if res := a.submit(t, path+"/revoke", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	got, _ := h.store.Token(ctx, tok.ID)
	if got.Status != tokend.StatusRevoked || got.Name != "CI deploys (prod)" {
		t.Errorf("after edit and revoke: %+v", got)
	}
	if res := a.get(t, path); res.StatusCode != http.StatusOK || !strings.Contains(res.Body, "revoked") {
		t.Errorf("the token's page after revoke: %d", res.StatusCode)
	}
	if res := a.submit(t, path+"/delete", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	if _, err := h.store.Token(ctx, tok.ID); err == nil {
		t.Error("the token is still there after delete")
	}
	// Sign-out: to return_url, and the session is over.
	res = a.submit(t, "/portal/logout", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "https://shop.example.com/settings" {
		t.Fatalf("sign-out: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := a.get(t, "/portal/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after sign-out: %d, want 401", res.StatusCode)
	}
}

func TestFormsNeedTheSessionsCSRFToken(t *testing.T) {
	h := newHarness(t)
	a := h.arrive(t, h.appX.ID, "acct_a")
	b := h.arrive(t, h.appX.ID, "acct_b")
	form := url.Values{"name": {"x"}, "expires": {"7d"}, "access": {"read_only"}}
	if res := a.post(t, "/portal/tokens", form); res.StatusCode != http.StatusForbidden {
		t.Errorf("no CSRF token: %d, want 403", res.StatusCode)
	}
	form.Set("csrf", b.csrf(t))
	if res := a.post(t, "/portal/tokens", form); res.StatusCode != http.StatusForbidden {
		t.Errorf("another session's CSRF token: %d, want 403", res.StatusCode)
	}
	form.Set("csrf", a.csrf(t))
	req, _ := http.NewRequest(http.MethodPost, h.URL+"/portal/tokens", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if res := a.do(t, req); res.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site POST: %d, want 403", res.StatusCode)
	}
	if res := a.post(t, "/portal/logout", url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without CSRF: %d, want 403", res.StatusCode)
	}
	page, _ := h.store.Tokens(t.Context(), tokend.TokenFilter{AppID: h.appX.ID, Now: h.clock.Now()})
	if len(page.Items) != 0 {
		t.Errorf("refused forms created %d tokens", len(page.Items))
	}
}

func TestThePortalIsNotEmbeddable(t *testing.T) {
	h := newHarness(t)
	a := h.arrive(t, h.appX.ID, "acct_a")
	for _, p := range []string{"/portal/", "/portal/tokens/tok_x", "/portal/open/x"} {
		res := a.get(t, p)
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: X-Frame-Options %q, Cache-Control %q", p, res.Header.Get("X-Frame-Options"), res.Header.Get("Cache-Control"))
		}
	}
}

func TestBrandingAndEmbedding(t *testing.T) {
	h := newHarness(t)
	for name, pt := range map[string]map[string]any{
		"accent word":           {"accent_color": "red"},
		"accent short":          {"accent_color": "#12345"},
		"accent injection":      {"accent_color": "#123456;} body{display:none"},
		"logo over http":        {"logo_url": "http://cdn.example.com/logo.png"},
		"logo javascript":       {"logo_url": "javascript:alert(1)"},
		"logo with a space":     {"logo_url": "https://cdn.example.com/a b.png"},
		"support relative":      {"support_url": "/help"},
		"frame with a path":     {"frame_ancestors": []string{"https://app.example.com/settings"}},
		"frame over http":       {"frame_ancestors": []string{"http://app.example.com"}},
		"frame wildcard":        {"frame_ancestors": []string{"*"}},
		"frame directive":       {"frame_ancestors": []string{"https://a.example.com; script-src *"}},
		"product name bidi":     {"product_name": "Acme\u202e"},
		"product name too long": {"product_name": strings.Repeat("a", 51)},
	} {
		if status, out := h.api(t, h.admin, http.MethodPatch, "/v1/apps/"+h.appX.ID, map[string]any{"portal": pt}); status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %v, want 422", name, status, out)
		}
	}
	plain := h.arrive(t, h.appX.ID, "acct_a")
	res := plain.get(t, "/portal/")
	if !strings.Contains(res.Body, `<span class="brand">Shop X</span>`) || strings.Contains(res.Body, "brand.css") {
		t.Errorf("an unbranded page shows the app's name and no brand stylesheet")
	}

	status, out := h.api(t, h.admin, http.MethodPatch, "/v1/apps/"+h.appX.ID, map[string]any{"portal": map[string]any{
		"product_name": "Acme Cloud", "logo_url": "https://cdn.example.com/logo.png?v=\"x\"", "accent_color": "#0a7d55",
		"support_url": "https://help.example.com/", "frame_ancestors": []string{"https://app.example.com", "https://app.example.com"},
	}})
	if status != http.StatusOK {
		t.Fatalf("branding the app: %d %v", status, out)
	}
	if fa := out["portal"].(map[string]any)["frame_ancestors"].([]any); len(fa) != 1 {
		t.Errorf("frame_ancestors stored %v, want the origin once", fa)
	}
	b := h.browser()
	res = b.get(t, h.mint(t, linkBody(h.appX.ID, "acct_a")))
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		ck = c
	}
	if ck == nil || ck.SameSite != http.SameSiteNoneMode || !ck.Partitioned || !ck.Secure {
		t.Errorf("the cookie of an embeddable page = %+v, want SameSite=None, Partitioned, Secure", ck)
	}
	res = b.get(t, "/portal/")
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors https://app.example.com", "img-src 'self' data: https://cdn.example.com;", "form-action 'self' https://shop.example.com;"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if xfo := res.Header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("X-Frame-Options %q on an embeddable page", xfo)
	}
	for _, want := range []string{`<img class="logo" src="https://cdn.example.com/logo.png?v=%22x%22"`, "Acme Cloud", `href="https://help.example.com/"`, `href="/portal/brand.css"`} {
		if !strings.Contains(res.Body, want) {
			t.Errorf("the branded page lacks %s", want)
		}
	}
	if css := b.get(t, "/portal/brand.css"); css.Body != ":root { --accent:#0a7d55; }\n" || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("brand.css = %q (%s)", css.Body, css.Header.Get("Content-Type"))
	}
	// null restores the defaults: not embeddable again.
	if status, out := h.api(t, h.admin, http.MethodPatch, "/v1/apps/"+h.appX.ID, map[string]any{"portal": nil}); status != http.StatusOK || out["portal"] != nil {
		t.Fatalf("clearing: %d %v", status, out)
	}
	res = b.get(t, "/portal/")
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("after clearing: CSP %q, XFO %q", res.Header.Get("Content-Security-Policy"), res.Header.Get("X-Frame-Options"))
	}
}

// TestTwoTabsOneLink opens one link from many browsers at once: exactly one
// gets a session.
func TestTwoTabsOneLink(t *testing.T) {
	h := newHarness(t)
	link := h.mint(t, linkBody(h.appX.ID, "acct_a"))
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		b := h.browser()
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, link, nil)
			res, err := b.c.Do(req)
			if err != nil {
				return
			}
			res.Body.Close()
			codes[i] = res.StatusCode
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case http.StatusSeeOther:
			won++
		case http.StatusNotFound:
		default:
			t.Errorf("an opening answered %d", c)
		}
	}
	if won != 1 {
		t.Errorf("%d browsers opened the link, want exactly 1 (%v)", won, codes)
	}
}

func TestProblemWording(t *testing.T) {
	for err, want := range map[error]string{
		&tokend.Error{Code: tokend.ECodeInvalid, Fields: []tokend.FieldError{{Field: "", Message: "is odd"}}}:                     "The form: is odd.",
		&tokend.Error{Code: tokend.ECodeInvalid, Fields: []tokend.FieldError{{Field: "allowed_ips[0]", Message: "is not an IP"}}}: "IP ranges is not an IP.",
		tokend.Errorf(tokend.ECodeConflict, "élan is taken"):                                                                      "Élan is taken.",
		tokend.Errorf(tokend.ECodeConflict, ""):                                                                                   "",
		tokend.ErrNotFound:                                                                                                        "That token does not exist.",
	} {
		if got := problem(err); got != want {
			t.Errorf("problem(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestHostileFormsNever500 sends every form of the portal hostile values:
// each answer is a page below 500.
func TestHostileFormsNever500(t *testing.T) {
	h := newHarness(t)
	a := h.arrive(t, h.appX.ID, "acct_a")
	res := a.submit(t, "/portal/tokens", url.Values{"name": {"mine"}, "expires": {"7d"}, "access": {"read_only"}})
	id := regexp.MustCompile(`<dd><code>(tok_[A-Za-z0-9]+)</code></dd>`).FindStringSubmatch(res.Body)
	if id == nil {
		t.Fatalf("no token id in\n%s", res.Body)
	}
	hostile := []string{"\x00", "\xff\xfe", "a\u202eb", strings.Repeat("x", 5000), "../../etc/passwd", "<script>", "1e999", "-1", ""}
	for _, v := range hostile {
		form := url.Values{}
		for _, k := range []string{"name", "type", "expires", "expires_on", "access", "permissions", "allowed_ips", "allowed_origins"} {
			form.Set(k, v)
		}
		for _, path := range []string{"/portal/tokens", "/portal/tokens/" + id[1] + "/edit", "/portal/tokens/" + url.PathEscape(v) + "/edit",
			"/portal/tokens/" + id[1] + "/" + url.PathEscape(v)} {
			if res := a.submit(t, path, form); res.StatusCode >= 500 {
				t.Errorf("POST %s with %q: %d", path, v, res.StatusCode)
			}
		}
		for _, path := range []string{"/portal/tokens/" + url.PathEscape(v), "/portal/open/" + url.PathEscape(v), "/portal/?done=" + url.QueryEscape(v)} {
			if res := a.get(t, path); res.StatusCode >= 500 {
				t.Errorf("GET %s: %d", path, res.StatusCode)
			}
		}
	}
	if res := a.post(t, "/portal/tokens", url.Values{"csrf": {a.csrf(t)}, "name": {strings.Repeat("x", 70<<10)}}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a form over 64 KiB: %d, want 400", res.StatusCode)
	}
}

// TestMintingNeedsWhatThePageCanDo: the page lets its customer read,
// create, edit, rotate and delete their tokens, so an admin token that may
// not do all of that itself cannot hand it on through a link (a review
// found a tokens:write token rotating and deleting through its own link).
func TestMintingNeedsWhatThePageCanDo(t *testing.T) {
	h := newHarness(t)
	for i, perms := range [][]string{
		{tokend.PermTokensWrite},
		{tokend.PermAppsRead, tokend.PermTokensRead, tokend.PermTokensWrite},
		{tokend.PermAppsRead, tokend.PermTokensRead, tokend.PermTokensWrite, tokend.PermTokensRotate},
	} {
		_, sec, err := h.svc.CreateToken(t.Context(), h.boot, tokend.TokenInput{
			AppID: tokend.SystemAppID, Name: fmt.Sprintf("narrow %d", i), Access: tokend.AccessCustom, Permissions: perms,
		})
		if err != nil {
			t.Fatal(err)
		}
		status, out := h.api(t, sec.Reveal(), http.MethodPost, "/v1/portal/sessions", linkBody(h.appX.ID, "acct_a"))
		if status != http.StatusForbidden || !strings.Contains(fmt.Sprint(out["detail"]), tokend.PermTokensDelete) {
			t.Errorf("minting with %v: %d %v, want 403 naming what it lacks", perms, status, out)
		}
	}
}

// TestLinksAndSessionsEndWithTheirMinter: revoking (or disabling) the
// admin token that minted a link ends the sessions it opened and the links
// not yet opened, so that revoking a leaked backend token is enough.
func TestLinksAndSessionsEndWithTheirMinter(t *testing.T) {
	h := newHarness(t)
	for _, end := range []string{"revoke", "disable", "expire"} {
		t.Run(end, func(t *testing.T) {
			in := tokend.TokenInput{
				AppID: tokend.SystemAppID, Name: "backend " + end, Access: tokend.AccessCustom,
				Permissions: []string{tokend.PermAppsRead, tokend.PermTokensRead, tokend.PermTokensWrite, tokend.PermTokensRotate, tokend.PermTokensDelete},
			}
			if end == "expire" {
				in.ExpiresIn = "3m" // before the links' 5 minutes and the session's 30 idle ones
			}
			minter, sec, err := h.svc.CreateToken(t.Context(), h.boot, in)
			if err != nil {
				t.Fatal(err)
			}
			mint := func() string {
				status, out := h.api(t, sec.Reveal(), http.MethodPost, "/v1/portal/sessions", linkBody(h.appX.ID, "acct_a"))
				if status != http.StatusCreated {
					t.Fatalf("minting: %d %v", status, out)
				}
				return out["url"].(string)
			}
			opened, unopened := h.browser(), mint()
			if res := opened.get(t, mint()); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("opening: %d", res.StatusCode)
			}
			if res := opened.get(t, "/portal/"); res.StatusCode != http.StatusOK {
				t.Fatalf("the page before: %d", res.StatusCode)
			}
			switch end {
			case "revoke":
				_, err = h.svc.RevokeToken(t.Context(), h.boot, minter.ID, 0)
			case "disable":
				_, err = h.svc.DisableToken(t.Context(), h.boot, minter.ID, 0)
			case "expire":
				h.clock.Advance(3*time.Minute + time.Second)
			}
			if err != nil {
				t.Fatal(err)
			}
			if res := opened.get(t, "/portal/"); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("the session after its minter's %s: %d, want 401", end, res.StatusCode)
			}
			if res := h.browser().get(t, unopened); res.StatusCode != http.StatusNotFound {
				t.Errorf("an unopened link after its minter's %s: %d, want 404", end, res.StatusCode)
			}
		})
	}
}

// TestHeadDoesNotUseALink: a link preview asking HEAD leaves the link for
// the customer's browser.
func TestHeadDoesNotUseALink(t *testing.T) {
	h := newHarness(t)
	link := h.mint(t, linkBody(h.appX.ID, "acct_a"))
	req, _ := http.NewRequest(http.MethodHead, link, nil)
	if res := h.browser().do(t, req); res.StatusCode != http.StatusOK || len(res.Cookies()) != 0 {
		t.Errorf("HEAD: %d with %d cookies, want 200 and none", res.StatusCode, len(res.Cookies()))
	}
	if res := h.browser().get(t, link); res.StatusCode != http.StatusSeeOther {
		t.Errorf("GET after HEAD: %d, want 303", res.StatusCode)
	}
}
