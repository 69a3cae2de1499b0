package web

// The test harness every dashboard test builds on: the real stack (SQLite
// store in a temporary directory, the user and lifecycle service, the
// verification engine, the REST API with the dashboard mounted the way
// `tokend serve` mounts it) behind an httptest TLS server, so that cookies
// carry their real __Host- names and Secure attribute. A settable clock
// drives the dashboard and the service.
//
//	h := newHarness(t)              // users of each role exist
//	c := h.login(t, tokend.RoleAdmin) // a signed-in browser
//	res := c.get(t, "/tokens")
//	res = c.submit(t, "/tokens", "/tokens", url.Values{"name": {"x"}}) // csrf from the page
//
// newBareHarness(t) gives the same stack with no user, for first-run
// setup.

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/internal/webhook"
	"github.com/tokend/tokend/secret"
)

// testPassword is the password of every user the harness makes.
const testPassword = "correct horse battery staple"

// testHashParams make argon2id cheap: the tests exercise sign-in, not the
// hash's cost.
var testHashParams = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// harness is a running dashboard with its dependencies.
type harness struct {
	URL   string
	srv   *httptest.Server
	store *sqlite.Store
	svc   *manage.Service
	eng   *verify.Engine
	web   *Server
	clock *testClock
	// bootstrap is the secret of the owner admin token made on first
	// start, as `tokend serve` prints it.
	bootstrap string
	// users holds one user of each role (empty with newBareHarness); their
	// emails are <role>@example.com and their password testPassword.
	users    map[tokend.Role]tokend.User
	webhooks tokend.WebhookStore // the store, as the service's webhook store
}

// testClock is a clock the test moves by hand.
type testClock = testclock.Clock

// newHarness starts the dashboard with an owner, an admin and a viewer.
// opts adjust the dashboard's Options before it is made.
func newHarness(t *testing.T, opts ...func(*Options)) *harness {
	t.Helper()
	h := newBareHarness(t, opts...)
	ctx := context.Background()
	owner, err := h.svc.Setup(ctx, h.bootstrapActor(t), "Olivia Owner", "owner@example.com", testPassword)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	h.users[tokend.RoleOwner] = owner
	for _, role := range []tokend.Role{tokend.RoleAdmin, tokend.RoleViewer} {
		h.addUser(t, role, string(role)+"@example.com")
	}
	return h
}

// newBareHarness starts the dashboard on an empty store: no user yet, only
// the bootstrap admin token.
func newBareHarness(t *testing.T, opts ...func(*Options)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hasher, err := secret.NewHasher([]byte("a pepper for the dashboard tests, long enough"))
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	eng := verify.New(verify.Options{Store: st, Hasher: hasher, Now: clock.Now})
	secrets, err := webhook.NewSecrets([]byte("a pepper for the dashboard tests, long enough"))
	if err != nil {
		t.Fatal(err)
	}
	svc := manage.New(manage.Options{Store: st, Users: st, Hasher: hasher, Invalidator: eng, Now: clock.Now,
		Password: &testHashParams, WebhookSecrets: secrets})
	if err := svc.EnsureSystemApp(ctx); err != nil {
		t.Fatal(err)
	}
	_, sec, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Service: svc, Users: st, Verifier: eng, Key: []byte("0123456789abcdef0123456789abcdef"),
		Now: clock.Now,
	}
	for _, f := range opts {
		f(&o)
	}
	dash := New(o)
	srv := httptest.NewTLSServer(httpapi.NewServer(httpapi.Deps{Service: svc, Verifier: eng, Extra: dash}))
	t.Cleanup(srv.Close)
	return &harness{
		URL: srv.URL, srv: srv, store: st, svc: svc, eng: eng, web: dash, clock: clock,
		bootstrap: sec.Reveal(), users: map[tokend.Role]tokend.User{}, webhooks: st,
	}
}

// bootstrapActor is the bootstrap admin token as the service's actor.
func (h *harness) bootstrapActor(t *testing.T) tokend.Actor {
	t.Helper()
	res, err := h.eng.Verify(context.Background(), tokend.VerifyRequest{Token: h.bootstrap})
	if err != nil || !res.Valid {
		t.Fatalf("the bootstrap token does not verify: %+v %v", res, err)
	}
	return manage.AdminActor(*res.Token, "127.0.0.1")
}

// addUser makes a user with role and testPassword through the service, as
// the owner.
func (h *harness) addUser(t *testing.T, role tokend.Role, email string) tokend.User {
	t.Helper()
	owner, ok := h.users[tokend.RoleOwner]
	if !ok {
		t.Fatal("addUser needs the owner: use newHarness")
	}
	u, err := h.svc.CreateUser(context.Background(), owner.Actor("127.0.0.1"), manage.UserInput{
		Name: strings.ToUpper(string(role[0])) + string(role[1:]) + " " + email, Email: email, Role: role, Password: testPassword,
	})
	if err != nil {
		t.Fatalf("creating %s %s: %v", role, email, err)
	}
	if _, taken := h.users[role]; !taken {
		h.users[role] = u
	}
	return u
}

// client is a browser: a cookie jar, TLS trusting the test server, and
// redirects left for the test to see.
type client struct {
	h    *harness
	http *http.Client
	jar  *cookiejar.Jar
}

// client answers a new browser with no cookie.
func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	// The test server's client trusts its certificate; each browser gets
	// its own copy of the transport.
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	return &client{h: h, jar: jar, http: &http.Client{
		Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// login answers a browser signed in as the harness's user of role.
func (h *harness) login(t *testing.T, role tokend.Role) *client {
	t.Helper()
	u, ok := h.users[role]
	if !ok {
		t.Fatalf("no %s in this harness", role)
	}
	return h.loginAs(t, u.Email, testPassword)
}

// loginAs answers a browser signed in with email and password; the test
// fails unless the sign-in succeeds.
func (h *harness) loginAs(t *testing.T, email, password string) *client {
	t.Helper()
	c := h.client()
	res := c.submit(t, "/login", "/login", url.Values{"email": {email}, "password": {password}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in as %s: %d\n%s", email, res.StatusCode, res.Body)
	}
	return c
}

// response is an answer with its body read.
type response struct {
	*http.Response
	Body string
}

// Location answers the redirect target, "" when there is none.
func (r *response) Location() string { return r.Header.Get("Location") }

func (c *client) do(t *testing.T, req *http.Request) *response {
	t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return &response{Response: res, Body: string(b)}
}

// get fetches path (redirects are not followed).
func (c *client) get(t *testing.T, path string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.h.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.do(t, req)
}

// post sends form to path as it is: add "csrf" yourself, or use submit.
func (c *client) post(t *testing.T, path string, form url.Values) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.h.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(t, req)
}

// submit fetches page, takes the CSRF token of its forms, and posts form
// with it to path, the way a browser submits a form it was shown.
func (c *client) submit(t *testing.T, page, path string, form url.Values) *response {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", c.csrf(t, page))
	return c.post(t, path, f)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// csrf fetches page and answers the CSRF token in its forms.
func (c *client) csrf(t *testing.T, page string) string {
	t.Helper()
	res := c.get(t, page)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200 to read a CSRF token\n%s", page, res.StatusCode, res.Body)
	}
	return csrfOf(t, res.Body)
}

// csrfOf answers the CSRF token in a page's forms.
func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil || m[1] == "" {
		t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

// cookie answers the browser's cookie named name for the server, if any.
func (c *client) cookie(name string) (*http.Cookie, bool) {
	u, _ := url.Parse(c.h.URL)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck, true
		}
	}
	return nil, false
}

// setCookie gives the browser a cookie for the server, as if the server
// (or someone else) had set it.
func (c *client) setCookie(name, value string) {
	u, _ := url.Parse(c.h.URL)
	c.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true}})
}

// wantStatus fails the test unless res has status want.
func wantStatus(t *testing.T, res *response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", res.Request.Method, res.Request.URL.Path, res.StatusCode, want, res.Body)
	}
}

// wantRedirect fails the test unless res is a 303 to the path to.
func wantRedirect(t *testing.T, res *response, to string) {
	t.Helper()
	wantStatus(t, res, http.StatusSeeOther)
	if res.Location() != to {
		t.Fatalf("%s %s: redirected to %q, want %q", res.Request.Method, res.Request.URL.Path, res.Location(), to)
	}
}
