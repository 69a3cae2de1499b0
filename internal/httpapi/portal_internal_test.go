package httpapi

import (
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"
)

// A link points at the origin the backend called: https, except plain HTTP
// to localhost or a loopback address; a Host that is no host is not used.
func TestOriginOfALink(t *testing.T) {
	for _, c := range []struct {
		host string
		tls  bool
		want string
	}{
		{"127.0.0.1:8080", false, "http://127.0.0.1:8080"},
		{"localhost:8080", false, "http://localhost:8080"},
		{"[::1]:8080", false, "http://[::1]:8080"},
		{"tokend.example.com", false, "https://tokend.example.com"},
		{"tokend.example.com", true, "https://tokend.example.com"},
		{"127.0.0.1:8080", true, "https://127.0.0.1:8080"},
		{"evil.example/path", false, "https://localhost"},
		{"a@b", false, "https://localhost"},
	} {
		r := httptest.NewRequest("POST", "/v1/portal/sessions", nil)
		r.Host = c.host
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		} else {
			r.TLS = nil
		}
		if got := originOf(r); got != c.want {
			t.Errorf("originOf(%q, tls %v) = %q, want %q", c.host, c.tls, got, c.want)
		}
	}
}

// TestLogPathHidesALinkWhateverItsSpelling: the request log is written
// before the mux cleans a path, so //portal/open/…, /portal/./open/… and
// /PORTAL/open/… (answered with a redirect that leaves the link unused, or
// a 404) must not show the link's secret either.
func TestLogPathHidesALinkWhateverItsSpelling(t *testing.T) {
	const link = "qqUP5TFpYDaszKHQOzUKt9tBSfzuJmnmk4f11rLN5LM"
	for _, p := range []string{
		"/portal/open/" + link, "//portal/open/" + link, "/portal//open/" + link, "/portal/./open/" + link,
		"/PORTAL/open/" + link, "/portal/OPEN/" + link, "/portal/open//" + link, "/x/../portal/open/" + link,
	} {
		if got := logPath(p); strings.Contains(got, link) || !strings.HasSuffix(got, "…") {
			t.Errorf("logPath(%q) = %q", p, got)
		}
	}
	if got := logPath("/v1/tokens/tok_123"); got != "/v1/tokens/tok_123" {
		t.Errorf("an ordinary path: %q", got)
	}
}
