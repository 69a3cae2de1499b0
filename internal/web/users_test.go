package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

func manageUserPatch(disabled bool) manage.UserPatch {
	return manage.UserPatch{Disabled: &disabled}
}

func storedUser(t *testing.T, h *harness, id string) tokend.User {
	t.Helper()
	u, err := h.store.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func versionForm(u tokend.User, kv ...string) url.Values {
	f := url.Values{"version": {strconv.FormatInt(u.Version, 10)}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// ownedPosts are the POST routes of auth.go and users.go, with a form that
// would succeed with a CSRF token.
func ownedPosts(h *harness, target tokend.User) map[string]url.Values {
	id := target.ID
	return map[string]url.Values{
		"/login":                    {"email": {"owner@example.com"}, "password": {testPassword}},
		"/logout":                   {},
		"/users":                    {"name": {"New"}, "email": {"new@example.com"}, "role": {"viewer"}, "password": {testPassword}},
		"/users/" + id + "/role":    versionForm(target, "role", "admin"),
		"/users/" + id + "/disable": versionForm(target),
		"/users/" + id + "/enable":  versionForm(target),
		"/users/" + id + "/delete":  versionForm(target),
	}
}

func TestPostsWithoutAValidCSRFTokenAreRefused(t *testing.T) {
	h := newHarness(t)
	owner := h.login(t, tokend.RoleOwner)
	target := h.addUser(t, tokend.RoleViewer, "target@example.com")
	other := h.login(t, tokend.RoleOwner) // another session of the same user
	otherToken := other.csrf(t, "/users")

	for path, form := range ownedPosts(h, target) {
		for _, bad := range []struct{ name, token string }{
			{"none", ""},
			{"wrong", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			{"another session's", otherToken},
		} {
			t.Run(path+" with "+bad.name, func(t *testing.T) {
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				if bad.token != "" {
					f.Set("csrf", bad.token)
				}
				res := owner.post(t, path, f)
				wantStatus(t, res, http.StatusForbidden)
			})
		}
	}
	// Nothing changed, and the owner is still signed in.
	if got := storedUser(t, h, target.ID); got.Version != target.Version || got.Role != tokend.RoleViewer || got.Disabled {
		t.Errorf("target changed by refused posts: %+v", got)
	}
	if n := countUsers(t, h); n != 4 {
		t.Errorf("%d users, want 4", n)
	}
	wantStatus(t, owner.get(t, "/users"), http.StatusOK)

	t.Run("cross-origin posts are refused even with the token", func(t *testing.T) {
		tok := owner.csrf(t, "/users")
		f := versionForm(target, "role", "admin", "csrf", tok)
		req, _ := http.NewRequest(http.MethodPost, h.URL+"/users/"+target.ID+"/role", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		wantStatus(t, owner.do(t, req), http.StatusForbidden)
		req, _ = http.NewRequest(http.MethodPost, h.URL+"/users/"+target.ID+"/role", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		wantStatus(t, owner.do(t, req), http.StatusForbidden)
		if got := storedUser(t, h, target.ID); got.Role != tokend.RoleViewer {
			t.Errorf("role changed by a cross-origin post: %s", got.Role)
		}
	})

	t.Run("a sign-in form's token does not act for a session", func(t *testing.T) {
		planted := "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
		owner.setCookie("__Host-tokend_csrf", planted)
		wantStatus(t, owner.post(t, "/users/"+target.ID+"/role", url.Values{"role": {"admin"}, "csrf": {planted}}), http.StatusForbidden)
		if got := storedUser(t, h, target.ID); got.Role != tokend.RoleViewer {
			t.Errorf("role changed with the sign-in form's token: %s", got.Role)
		}
	})

	t.Run("the sign-in form's token must match its cookie", func(t *testing.T) {
		c := h.client()
		c.csrf(t, "/login") // sets the cookie
		other := h.client()
		res := c.post(t, "/login", url.Values{"email": {"owner@example.com"}, "password": {testPassword}, "csrf": {other.csrf(t, "/login")}})
		wantStatus(t, res, http.StatusForbidden)
	})
}

func TestUsersPageIsForOwnersOnly(t *testing.T) {
	h := newHarness(t)
	target := h.addUser(t, tokend.RoleViewer, "target@example.com")
	for _, role := range []tokend.Role{tokend.RoleAdmin, tokend.RoleViewer} {
		t.Run(string(role), func(t *testing.T) {
			c := h.login(t, role)
			refused := c.get(t, "/users")
			wantStatus(t, refused, http.StatusForbidden)
			wantStatus(t, c.get(t, "/users/"+target.ID+"/delete"), http.StatusForbidden)
			tok := csrfOf(t, refused.Body) // the sign-out form of any page carries the session's token
			for path, form := range ownedPosts(h, target) {
				if !strings.HasPrefix(path, "/users") {
					continue
				}
				f := url.Values{"csrf": {tok}}
				for k, v := range form {
					f[k] = v
				}
				wantStatus(t, c.post(t, path, f), http.StatusForbidden)
			}
			if got := storedUser(t, h, target.ID); got.Version != target.Version {
				t.Errorf("a %s changed a user: %+v", role, got)
			}
			if n := countUsers(t, h); n != 4 {
				t.Errorf("a %s added a user: %d users", role, n)
			}
			if strings.Contains(refused.Body, `href="/users"`) {
				t.Errorf("the %s sees a link to the users page", role)
			}
		})
	}
}

func TestOwnerManagesUsers(t *testing.T) {
	h := newHarness(t)
	c := h.login(t, tokend.RoleOwner)

	t.Run("field problems are shown next to the fields, values kept", func(t *testing.T) {
		res := c.submit(t, "/users", "/users", url.Values{"name": {"Nina"}, "email": {"not-an-email"}, "role": {"emperor"}, "password": {"short"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		for _, id := range []string{"new-email-error", "new-role-error", "new-password-error"} {
			if !strings.Contains(res.Body, `id="`+id+`"`) {
				t.Errorf("no %s in the page", id)
			}
		}
		if !strings.Contains(res.Body, `value="Nina"`) || !strings.Contains(res.Body, `value="not-an-email"`) {
			t.Error("the typed values were not kept")
		}
		if n := countUsers(t, h); n != 3 {
			t.Errorf("%d users after a refused create", n)
		}
	})

	t.Run("a taken email is a field problem", func(t *testing.T) {
		res := c.submit(t, "/users", "/users", url.Values{"name": {"Again"}, "email": {"Admin@Example.com"}, "role": {"viewer"}, "password": {testPassword}})
		if res.StatusCode < 400 || !strings.Contains(res.Body, `id="new-email-error"`) {
			t.Fatalf("status %d; want the email field marked\n%s", res.StatusCode, res.Body)
		}
	})

	var nina tokend.User
	t.Run("create", func(t *testing.T) {
		res := c.submit(t, "/users", "/users", url.Values{"name": {"Nina"}, "email": {"nina@example.com"}, "role": {"viewer"}, "password": {testPassword}})
		wantRedirect(t, res, "/users")
		page := c.get(t, "/users")
		if !strings.Contains(page.Body, "nina@example.com") || !strings.Contains(page.Body, "Added nina@example.com") {
			t.Fatalf("the new user or the message is missing:\n%s", page.Body)
		}
		u, err := h.store.UserByEmail(context.Background(), "nina@example.com")
		if err != nil || u.Role != tokend.RoleViewer {
			t.Fatalf("stored: %+v %v", u, err)
		}
		nina = u
		if !strings.Contains(page.Body, `data-user-id="`+u.ID+`"`) {
			t.Error("the row has no data-user-id")
		}
	})

	ninaBrowser := h.loginAs(t, "nina@example.com", testPassword)

	t.Run("change role", func(t *testing.T) {
		res := c.submit(t, "/users", "/users/"+nina.ID+"/role", versionForm(nina, "role", "admin"))
		wantRedirect(t, res, "/users")
		nina = storedUser(t, h, nina.ID)
		if nina.Role != tokend.RoleAdmin {
			t.Fatalf("role %s; the page says:\n%s", nina.Role, c.get(t, "/users").Body)
		}
		// A role change signs them out: their next request asks them to sign in.
		wantRedirect(t, ninaBrowser.get(t, "/users"), "/login?next=%2Fusers")
	})

	t.Run("a stale deletion changes nothing", func(t *testing.T) {
		stale := nina
		stale.Version--
		res := c.submit(t, "/users/"+nina.ID+"/delete", "/users/"+nina.ID+"/delete", versionForm(stale))
		wantRedirect(t, res, "/users")
		if _, err := h.store.User(context.Background(), nina.ID); err != nil {
			t.Fatalf("a stale form deleted the user: %v", err)
		}
		if page := c.get(t, "/users"); !strings.Contains(page.Body, "Someone changed this") {
			t.Error("no error message after a stale form")
		}
		res = c.submit(t, "/users", "/users/"+nina.ID+"/delete", url.Values{})
		wantStatus(t, res, http.StatusBadRequest)
	})

	t.Run("disable signs them out, enable lets them back", func(t *testing.T) {
		nb := h.loginAs(t, "nina@example.com", testPassword)
		wantRedirect(t, c.submit(t, "/users", "/users/"+nina.ID+"/disable", versionForm(nina)), "/users")
		nina = storedUser(t, h, nina.ID)
		if !nina.Disabled {
			t.Fatal("not disabled")
		}
		wantRedirect(t, nb.get(t, "/users"), "/login?next=%2Fusers")
		res := nb.submit(t, "/login", "/login", url.Values{"email": {"nina@example.com"}, "password": {testPassword}})
		wantStatus(t, res, http.StatusUnauthorized)
		wantRedirect(t, c.submit(t, "/users", "/users/"+nina.ID+"/enable", versionForm(nina)), "/users")
		nina = storedUser(t, h, nina.ID)
		h.loginAs(t, "nina@example.com", testPassword)
	})

	t.Run("the last owner stays an owner", func(t *testing.T) {
		owner := storedUser(t, h, h.users[tokend.RoleOwner].ID)
		c.submit(t, "/users", "/users/"+owner.ID+"/role", versionForm(owner, "role", "viewer"))
		if got := storedUser(t, h, owner.ID); got.Role != tokend.RoleOwner {
			t.Fatalf("the last owner became %s", got.Role)
		}
		page := c.get(t, "/users")
		if !strings.Contains(page.Body, "flash-error") {
			t.Errorf("no error message:\n%s", page.Body)
		}
	})

	t.Run("delete asks first", func(t *testing.T) {
		nina = storedUser(t, h, nina.ID) // signing in bumped the version
		page := c.get(t, "/users/"+nina.ID+"/delete")
		wantStatus(t, page, http.StatusOK)
		if !strings.Contains(page.Body, `id="confirm-delete"`) || !strings.Contains(page.Body, "nina@example.com") {
			t.Fatalf("no confirmation:\n%s", page.Body)
		}
		tok := csrfOf(t, page.Body)
		f := versionForm(nina, "csrf", tok)
		wantRedirect(t, c.post(t, "/users/"+nina.ID+"/delete", f), "/users")
		if _, err := h.store.User(context.Background(), nina.ID); err == nil {
			t.Fatal("still stored")
		}
		wantStatus(t, c.get(t, "/users/"+nina.ID+"/delete"), http.StatusNotFound)
	})
}
