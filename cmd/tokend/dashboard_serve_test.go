package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// plainBrowser is a client that keeps cookies by hand: Go's cookie jar never
// sends a Secure cookie over plain HTTP, which browsers do for 127.0.0.1.
type plainBrowser struct {
	base    string
	cookies map[string]string
}

func (b *plainBrowser) do(t *testing.T, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck.Value
		}
	}
	return res, string(raw)
}

var formCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func pageCSRF(t *testing.T, body string) string {
	t.Helper()
	m := formCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

func TestServeMountsTheDashboard(t *testing.T) {
	dir := t.TempDir()
	in := startTokend(t, dir, nil)
	out := in.stdout.String()
	for _, want := range []string{"dashboard: " + in.url + "/\n", "open " + in.url + "/setup and paste the token above"} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner lacks %q:\n%s", want, out)
		}
	}
	b := &plainBrowser{base: in.url, cookies: map[string]string{}}
	if res, _ := b.do(t, "GET", "/", nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/setup" {
		t.Fatalf("GET / on a fresh instance: %d to %q, want 303 to /setup", res.StatusCode, res.Header.Get("Location"))
	}
	// The API keeps its paths.
	if res, _ := b.do(t, "GET", "/healthz", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", res.StatusCode)
	}

	_, page := b.do(t, "GET", "/setup", nil)
	res, body := b.do(t, "POST", "/setup", url.Values{
		"csrf": {pageCSRF(t, page)}, "token": {in.bootstrap}, "name": {"Olivia Owner"},
		"email": {"owner@example.com"}, "password": {"correct horse battery staple"}, "confirm": {"correct horse battery staple"},
	})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d\n%s", res.StatusCode, body)
	}
	if _, ok := b.cookies["__Host-tokend_session"]; !ok {
		t.Fatalf("no session cookie after setup: %v", res.Header.Values("Set-Cookie"))
	}
	res, page = b.do(t, "GET", "/users", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "owner@example.com") {
		t.Fatalf("/users after setup: %d\n%s", res.StatusCode, page)
	}
	if strings.Contains(in.stderr.String(), in.bootstrap) || strings.Contains(in.stderr.String(), "correct horse") {
		t.Error("the log holds the token or the password")
	}

	// After a restart on the same data directory the session still holds
	// (it is in the store), and a cookie sealed before the restart opens
	// (the key comes from the pepper).
	session := b.cookies["__Host-tokend_session"]
	if res, _ := b.do(t, "POST", "/logout", url.Values{"csrf": {pageCSRF(t, page)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if _, ok := b.cookies["__Host-tokend_flash"]; !ok {
		t.Fatal("no flash cookie after logout")
	}
	in.stop()
	again := startTokend(t, dir, nil)
	if strings.Contains(again.stdout.String(), "/setup") {
		t.Errorf("the banner still offers setup:\n%s", again.stdout.String())
	}
	b.base = again.url
	if _, page := b.do(t, "GET", "/login", nil); !strings.Contains(page, "You are signed out.") {
		t.Errorf("the flash sealed before the restart was not shown:\n%s", page)
	}
	// The ended session stays ended.
	b.cookies["__Host-tokend_session"] = session
	if res, _ := b.do(t, "GET", "/users", nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("a signed-out session still opens /users after a restart: %d", res.StatusCode)
	}
}
