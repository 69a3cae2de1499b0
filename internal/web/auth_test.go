package web

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

const sessionCookie = "__Host-tokend_session"

func countUsers(t *testing.T, h *harness) int {
	t.Helper()
	n, err := h.store.CountUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func setupForm(token string) url.Values {
	return url.Values{"token": {token}, "name": {"First Owner"}, "email": {"first@example.com"},
		"password": {testPassword}, "confirm": {testPassword}}
}

func TestSetupOnlyWithTheBootstrapTokenAndOnlyOnce(t *testing.T) {
	h := newBareHarness(t)
	c := h.client()

	t.Run("every page points to setup while no user exists", func(t *testing.T) {
		wantRedirect(t, c.get(t, "/login"), "/setup")
		wantRedirect(t, c.get(t, "/users"), "/setup")
		wantRedirect(t, c.get(t, "/"), "/setup")
	})

	reader, readerSecret, err := h.svc.CreateToken(context.Background(), tokend.SystemActor, tokend.TokenInput{
		AppID: tokend.SystemAppID, Name: "reader", Access: tokend.AccessReadOnly, ExpiresIn: "unlimited"})
	if err != nil {
		t.Fatal(err)
	}
	_ = reader
	refusals := []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no token", setupForm(""), "token-error"},
		{"a made-up token", setupForm("tkd_admin_notreallyatoken_abcdef"), "token-error"},
		{"an admin token without users:write", setupForm(readerSecret.Reveal()), "token-error"},
		{"passwords that differ", func() url.Values {
			f := setupForm(h.bootstrap)
			f.Set("confirm", testPassword+"!")
			return f
		}(), "confirm-error"},
		{"a short password", func() url.Values {
			f := setupForm(h.bootstrap)
			f.Set("password", "short")
			f.Set("confirm", "short")
			return f
		}(), "password-error"},
		{"a bad email", func() url.Values {
			f := setupForm(h.bootstrap)
			f.Set("email", "not an email")
			return f
		}(), "email-error"},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			res := c.submit(t, "/setup", "/setup", tc.form)
			wantStatus(t, res, http.StatusUnprocessableEntity)
			if !strings.Contains(res.Body, `id="`+tc.field+`"`) {
				t.Errorf("no message next to the field (%s):\n%s", tc.field, res.Body)
			}
			if strings.Contains(res.Body, h.bootstrap) || strings.Contains(res.Body, testPassword) {
				t.Error("the page repeats the token or the password")
			}
			if n := countUsers(t, h); n != 0 {
				t.Fatalf("%d users after a refused setup", n)
			}
		})
	}

	t.Run("without a CSRF token", func(t *testing.T) {
		wantStatus(t, c.post(t, "/setup", setupForm(h.bootstrap)), http.StatusForbidden)
		if n := countUsers(t, h); n != 0 {
			t.Fatalf("%d users after a CSRF-less setup", n)
		}
	})

	t.Run("with the bootstrap token it creates the owner and signs them in", func(t *testing.T) {
		res := c.submit(t, "/setup", "/setup", setupForm(h.bootstrap))
		wantRedirect(t, res, "/")
		if _, ok := c.cookie(sessionCookie); !ok {
			t.Fatal("no session cookie after setup")
		}
		users, err := h.store.Users(context.Background())
		if err != nil || len(users) != 1 || users[0].Role != tokend.RoleOwner || users[0].Email != "first@example.com" {
			t.Fatalf("users after setup: %+v, %v", users, err)
		}
		wantStatus(t, c.get(t, "/users"), http.StatusOK)
	})

	t.Run("then never again", func(t *testing.T) {
		other := h.client()
		wantRedirect(t, other.get(t, "/setup"), "/login")
		tok := other.csrf(t, "/login")
		f := setupForm(h.bootstrap)
		f.Set("email", "second@example.com")
		f.Set("csrf", tok)
		wantRedirect(t, other.post(t, "/setup", f), "/login")
		if n := countUsers(t, h); n != 1 {
			t.Fatalf("%d users after a second setup", n)
		}
	})
}

func TestLoginSetsAHardenedSessionCookie(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	res := c.submit(t, "/login", "/login", url.Values{"email": {"owner@example.com"}, "password": {testPassword}})
	wantRedirect(t, res, "/")
	var set *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie {
			set = ck
		}
	}
	if set == nil {
		t.Fatalf("no %s cookie set; Set-Cookie: %q", sessionCookie, res.Header.Values("Set-Cookie"))
	}
	if !set.HttpOnly || !set.Secure || set.SameSite != http.SameSiteLaxMode || set.Path != "/" || set.Domain != "" {
		t.Errorf("session cookie attributes: %q", set.Raw)
	}
	if set.MaxAge != 0 || !set.Expires.IsZero() {
		t.Errorf("the session cookie outlives the browser: %q", set.Raw)
	}
	if len(set.Value) < 22 { // 128 bits in base64url
		t.Errorf("session id %d characters long, want >= 22 (128 bits)", len(set.Value))
	}
	if strings.Contains(res.Header.Get("Set-Cookie"), testPassword) {
		t.Error("the password is in a cookie")
	}
	wantStatus(t, c.get(t, "/users"), http.StatusOK)
}

func TestLogoutEndsTheSessionOnTheServer(t *testing.T) {
	h := newHarness(t)
	c := h.login(t, tokend.RoleOwner)
	old, _ := c.cookie(sessionCookie)

	res := c.submit(t, "/users", "/logout", nil)
	wantRedirect(t, res, "/login")
	if _, ok := c.cookie(sessionCookie); ok {
		t.Error("the browser still holds the session cookie")
	}
	wantRedirect(t, c.get(t, "/users"), "/login?next=%2Fusers")

	// The old id, replayed by someone who copied it, is worth nothing.
	thief := h.client()
	thief.setCookie(sessionCookie, old.Value)
	wantRedirect(t, thief.get(t, "/users"), "/login?next=%2Fusers")
}

func TestLoginRegeneratesTheSession(t *testing.T) {
	h := newHarness(t)

	t.Run("an id planted before sign-in is replaced", func(t *testing.T) {
		c := h.client()
		c.setCookie(sessionCookie, "planted-by-an-attacker-0000000000000")
		res := c.submit(t, "/login", "/login", url.Values{"email": {"owner@example.com"}, "password": {testPassword}})
		wantRedirect(t, res, "/")
		ck, ok := c.cookie(sessionCookie)
		if !ok || ck.Value == "planted-by-an-attacker-0000000000000" {
			t.Fatalf("session cookie after sign-in: %+v", ck)
		}
	})

	t.Run("signing in again ends the old session", func(t *testing.T) {
		c := h.login(t, tokend.RoleOwner)
		first, _ := c.cookie(sessionCookie)
		res := c.submit(t, "/users", "/login", url.Values{"email": {"owner@example.com"}, "password": {testPassword}})
		wantRedirect(t, res, "/")
		second, _ := c.cookie(sessionCookie)
		if second.Value == first.Value {
			t.Fatal("the session id did not change at sign-in")
		}
		wantStatus(t, c.get(t, "/users"), http.StatusOK)
		replay := h.client()
		replay.setCookie(sessionCookie, first.Value)
		wantRedirect(t, replay.get(t, "/users"), "/login?next=%2Fusers")
	})
}

func TestSessionTimeouts(t *testing.T) {
	h := newHarness(t)

	t.Run("idle", func(t *testing.T) {
		c := h.login(t, tokend.RoleOwner)
		for range 3 { // activity keeps it alive past the idle timeout
			h.clock.Advance(manage.DefaultSessionIdle - time.Minute)
			wantStatus(t, c.get(t, "/users"), http.StatusOK)
		}
		h.clock.Advance(manage.DefaultSessionIdle + time.Second)
		wantRedirect(t, c.get(t, "/users"), "/login?next=%2Fusers")
	})

	t.Run("absolute", func(t *testing.T) {
		c := h.login(t, tokend.RoleOwner)
		start := h.clock.Now()
		for h.clock.Now().Sub(start) < manage.DefaultSessionAbsolute-20*time.Minute {
			h.clock.Advance(20 * time.Minute)
			wantStatus(t, c.get(t, "/users"), http.StatusOK)
		}
		h.clock.Advance(start.Add(manage.DefaultSessionAbsolute).Sub(h.clock.Now()) + time.Second)
		wantRedirect(t, c.get(t, "/users"), "/login?next=%2Fusers")
	})

	t.Run("options", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.IdleTimeout = 5 * time.Minute; o.AbsoluteTimeout = time.Hour })
		c := h.login(t, tokend.RoleOwner)
		h.clock.Advance(4 * time.Minute)
		wantStatus(t, c.get(t, "/users"), http.StatusOK)
		h.clock.Advance(5*time.Minute + time.Second)
		wantRedirect(t, c.get(t, "/users"), "/login?next=%2Fusers")
	})
}

func TestLoginFailuresAreGeneric(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	unknown := c.submit(t, "/login", "/login", url.Values{"email": {"nobody@example.com"}, "password": {testPassword}})
	wrong := c.submit(t, "/login", "/login", url.Values{"email": {"owner@example.com"}, "password": {"wrong password!!"}})
	disabledUser := h.addUser(t, tokend.RoleViewer, "gone@example.com")
	disabled := true
	if _, err := h.svc.UpdateUser(context.Background(), h.users[tokend.RoleOwner].Actor(""), disabledUser.ID,
		manageUserPatch(disabled), disabledUser.Version); err != nil {
		t.Fatal(err)
	}
	off := c.submit(t, "/login", "/login", url.Values{"email": {"gone@example.com"}, "password": {testPassword}})
	for _, res := range []*response{unknown, wrong, off} {
		wantStatus(t, res, http.StatusUnauthorized)
		if !strings.Contains(res.Body, badLogin) {
			t.Errorf("missing the generic message:\n%s", res.Body)
		}
	}
	if errorText(unknown.Body) != errorText(wrong.Body) || errorText(wrong.Body) != errorText(off.Body) {
		t.Errorf("the answers differ: %q / %q / %q", errorText(unknown.Body), errorText(wrong.Body), errorText(off.Body))
	}
	if _, ok := c.cookie(sessionCookie); ok {
		t.Error("a failed sign-in set a session cookie")
	}
}

// errorText is the error paragraph of the login page.
func errorText(body string) string {
	i := strings.Index(body, `id="login-error"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</p>")
	return body[i : i+j]
}

func TestLoginThrottling(t *testing.T) {
	t.Run("per account", func(t *testing.T) {
		h := newHarness(t)
		c := h.client()
		for i := range 5 {
			res := c.submit(t, "/login", "/login", url.Values{"email": {"admin@example.com"}, "password": {"guess number " + string(rune('a'+i))}})
			wantStatus(t, res, http.StatusUnauthorized)
		}
		// Now even the right password waits, from any address.
		res := c.submit(t, "/login", "/login", url.Values{"email": {"ADMIN@example.com"}, "password": {testPassword}})
		wantStatus(t, res, http.StatusTooManyRequests)
		if res.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		// Other accounts are not locked by it.
		h.login(t, tokend.RoleViewer)
		h.clock.Advance(15 * time.Minute)
		h.login(t, tokend.RoleAdmin)
	})

	t.Run("per address", func(t *testing.T) {
		h := newHarness(t)
		c := h.client()
		for i := range 20 {
			res := c.submit(t, "/login", "/login", url.Values{"email": {"someone" + string(rune('a'+i)) + "@example.com"}, "password": {"guess"}})
			wantStatus(t, res, http.StatusUnauthorized)
		}
		res := c.submit(t, "/login", "/login", url.Values{"email": {"viewer@example.com"}, "password": {testPassword}})
		wantStatus(t, res, http.StatusTooManyRequests)
		h.clock.Advance(15 * time.Minute)
		h.login(t, tokend.RoleViewer)
	})
}

func TestNoOpenRedirect(t *testing.T) {
	h := newHarness(t)
	cases := map[string]string{
		"/tokens?status=active":     "/tokens?status=active",
		"https://evil.example/":     "/",
		"//evil.example/":           "/",
		"/\\evil.example/":          "/",
		"javascript:alert(1)":       "/",
		"http:/evil.example":        "/",
		"/%0d%0aSet-Cookie:x=y":     "/%0d%0aSet-Cookie:x=y",
		"\t//evil.example":          "/",
		"https:\\\\evil.example\\x": "/",
	}
	for next, want := range cases {
		t.Run(next, func(t *testing.T) {
			c := h.client()
			res := c.submit(t, "/login", "/login", url.Values{"email": {"viewer@example.com"}, "password": {testPassword}, "next": {next}})
			wantRedirect(t, res, want)
			// Already signed in, /login?next= sends there too.
			wantRedirect(t, c.get(t, "/login?next="+url.QueryEscape(next)), want)
		})
	}

	t.Run("the login page carries next from the redirect", func(t *testing.T) {
		c := h.client()
		res := c.get(t, "/users?x=1")
		wantRedirect(t, res, "/login?next=%2Fusers%3Fx%3D1")
		page := c.get(t, res.Location())
		wantStatus(t, page, http.StatusOK)
		if !strings.Contains(page.Body, `name="next" value="/users?x=1"`) {
			t.Errorf("the form does not carry next:\n%s", page.Body)
		}
	})
}

func TestSetupAttemptsAreThrottledPerAddress(t *testing.T) {
	h := newBareHarness(t, func(o *Options) { o.LoginThrottle = LoginThrottle{PerAddress: 3} })
	c := h.client()
	for range 3 {
		wantStatus(t, c.submit(t, "/setup", "/setup", setupForm("tkd_admin_guess_abcdef")), http.StatusUnprocessableEntity)
	}
	res := c.submit(t, "/setup", "/setup", setupForm(h.bootstrap))
	wantStatus(t, res, http.StatusTooManyRequests)
	if n := countUsers(t, h); n != 0 {
		t.Fatalf("%d users after a throttled setup", n)
	}
	h.clock.Advance(15 * time.Minute)
	wantRedirect(t, c.submit(t, "/setup", "/setup", setupForm(h.bootstrap)), "/")
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	th := newThrottle(LoginThrottle{})
	now := time.Now()
	for i := range maxThrottleKeys + 1000 {
		th.reserve(now, "acct:"+strconv.Itoa(i)+"@example.com")
	}
	if n := len(th.fails); n > maxThrottleKeys {
		t.Fatalf("%d keys kept, bound %d", n, maxThrottleKeys)
	}
	// Old failures are forgotten by prune.
	th.prune(now.Add(15*time.Minute + time.Second))
	if n := len(th.fails); n != 0 {
		t.Fatalf("%d keys after the window", n)
	}
}

func TestRunSweepsExpiredSessions(t *testing.T) {
	h := newHarness(t)
	c := h.login(t, tokend.RoleViewer)
	ck, _ := c.cookie(sessionCookie)
	sum := sha256.Sum256([]byte(ck.Value))
	if _, err := h.store.Session(context.Background(), sum[:]); err != nil {
		t.Fatalf("the session is not stored under its id's SHA-256: %v", err)
	}
	h.clock.Advance(manage.DefaultSessionIdle + time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.web.Run(ctx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := h.store.Session(context.Background(), sum[:])
		if errors.Is(err, tokend.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle session is still stored: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
