package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/testclock"
)

// sealServer is a dashboard with only what sealed cookies need.
func sealServer(t *testing.T) (*Server, *testClock) {
	t.Helper()
	clock := testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(Options{Users: st, Now: clock.Now, Key: []byte("0123456789abcdef0123456789abcdef")}), clock
}

// inSession answers a request of the session with id hash idHash.
func inSession(method, target string, idHash byte) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	sess := tokend.Session{IDHash: []byte{idHash, 1, 2, 3}, CSRF: "x"}
	return r.WithContext(context.WithValue(r.Context(), keySession, signedIn{sess: sess, raw: "raw"}))
}

// sentCookie answers the cookie named name that w set.
func sentCookie(t *testing.T, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie set; Set-Cookie: %q", name, w.Result().Header.Values("Set-Cookie"))
	return nil
}

func withCookie(r *http.Request, c *http.Cookie) *http.Request {
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	return r
}

func TestRevealHandsTheSecretOverOnce(t *testing.T) {
	s, clock := sealServer(t)
	const secretText = "tkd_live_0123456789abcdefghijkl_ABCDEF"
	w := httptest.NewRecorder()
	s.reveal(w, inSession("POST", "/tokens", 7), "tok_1", secretText)
	c := sentCookie(t, w, "__Host-tokend_reveal")
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 || c.MaxAge > 60 {
		t.Errorf("reveal cookie attributes: %q", c.Raw)
	}
	if strings.Contains(c.Value, secretText) || strings.Contains(c.Value, "tkd_live") {
		t.Fatal("the secret is readable in the cookie")
	}

	take := func(sessionByte byte, tokenID string) (string, bool, *httptest.ResponseRecorder) {
		w := httptest.NewRecorder()
		got, state := s.takeReveal(w, withCookie(inSession("GET", "/tokens/"+tokenID, sessionByte), c), tokenID)
		if (state == revealShown) != (got != "") {
			t.Errorf("takeReveal = %q, state %d", got, state)
		}
		return got, state == revealShown, w
	}
	if _, ok, _ := take(8, "tok_1"); ok {
		t.Error("another session took the secret")
	}
	if _, ok, _ := take(7, "tok_2"); ok {
		t.Error("another token's page took the secret")
	}
	got, ok, w2 := take(7, "tok_1")
	if !ok || got != secretText {
		t.Fatalf("takeReveal = %q, %v", got, ok)
	}
	if cleared := sentCookie(t, w2, "__Host-tokend_reveal"); cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Errorf("taking it does not clear the cookie: %q", cleared.Raw)
	}

	// The same cookie again, as a client that kept it would send it.
	w3 := httptest.NewRecorder()
	if got, state := s.takeReveal(w3, withCookie(inSession("GET", "/tokens/tok_1", 7), c), "tok_1"); got != "" || state != revealUsed {
		t.Errorf("the replayed hand-over: takeReveal = %q, state %d; want none, revealUsed", got, state)
	}
	if cleared := sentCookie(t, w3, "__Host-tokend_reveal"); cleared.MaxAge >= 0 {
		t.Errorf("the replayed cookie is not cleared: %q", cleared.Raw)
	}

	clock.Advance(revealTTL)
	if _, ok, _ := take(7, "tok_1"); ok {
		t.Error("an expired hand-over still works")
	}

	t.Run("tampered", func(t *testing.T) {
		w := httptest.NewRecorder()
		s.reveal(w, inSession("POST", "/tokens", 7), "tok_1", secretText)
		c := sentCookie(t, w, "__Host-tokend_reveal")
		b := []byte(c.Value)
		b[len(b)/2] ^= 1
		if b[len(b)/2] == '-' || b[len(b)/2] == '_' {
			b[len(b)/2] = 'A'
		}
		c.Value = string(b)
		if _, state := s.takeReveal(httptest.NewRecorder(), withCookie(inSession("GET", "/tokens/tok_1", 7), c), "tok_1"); state != revealNone {
			t.Error("a changed cookie was opened")
		}
	})

	t.Run("without a session nothing is handed over", func(t *testing.T) {
		w := httptest.NewRecorder()
		s.reveal(w, httptest.NewRequest("POST", "/tokens", nil), "tok_1", secretText)
		if len(w.Result().Cookies()) != 0 {
			t.Error("a cookie was set without a session")
		}
	})
}

func TestFlash(t *testing.T) {
	s, clock := sealServer(t)
	w := httptest.NewRecorder()
	s.setFlash(w, "ok", "Token created.")
	c := sentCookie(t, w, "__Host-tokend_flash")
	if !c.HttpOnly || !c.Secure || c.Path != "/" {
		t.Errorf("flash cookie attributes: %q", c.Raw)
	}
	w = httptest.NewRecorder()
	f := s.takeFlash(w, withCookie(httptest.NewRequest("GET", "/", nil), c))
	if f == nil || f.Kind != "ok" || f.Text != "Token created." {
		t.Fatalf("takeFlash = %+v", f)
	}
	if cleared := sentCookie(t, w, "__Host-tokend_flash"); cleared.MaxAge >= 0 {
		t.Error("taking the flash does not clear it")
	}

	forged := &http.Cookie{Name: "__Host-tokend_flash", Value: "eyJraW5kIjoiZXJyb3IifQ"}
	if f := s.takeFlash(httptest.NewRecorder(), withCookie(httptest.NewRequest("GET", "/", nil), forged)); f != nil {
		t.Errorf("a forged flash was shown: %+v", f)
	}
	// A reveal cookie is not a flash, even under the flash's name.
	w = httptest.NewRecorder()
	s.reveal(w, inSession("POST", "/", 1), "tok", "secret")
	rv := sentCookie(t, w, "__Host-tokend_reveal")
	rv.Name = "__Host-tokend_flash"
	if f := s.takeFlash(httptest.NewRecorder(), withCookie(httptest.NewRequest("GET", "/", nil), rv)); f != nil {
		t.Errorf("a reveal cookie opened as a flash: %+v", f)
	}
	clock.Advance(flashTTL)
	if f := s.takeFlash(httptest.NewRecorder(), withCookie(httptest.NewRequest("GET", "/", nil), c)); f != nil {
		t.Error("an expired flash was shown")
	}
}

func TestSealedCookiesOpenOnEveryInstanceWithTheKey(t *testing.T) {
	a, _ := sealServer(t)
	b, _ := sealServer(t)
	w := httptest.NewRecorder()
	a.setFlash(w, "ok", "hello")
	c := sentCookie(t, w, "__Host-tokend_flash")
	if f := b.takeFlash(httptest.NewRecorder(), withCookie(httptest.NewRequest("GET", "/", nil), c)); f == nil || f.Text != "hello" {
		t.Fatalf("another instance with the same key read %+v", f)
	}
	other := New(Options{Key: []byte("another key, 32 bytes long......")})
	if f := other.takeFlash(httptest.NewRecorder(), withCookie(httptest.NewRequest("GET", "/", nil), c)); f != nil {
		t.Fatal("a server with another key opened the cookie")
	}
}
