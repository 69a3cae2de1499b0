package httpapi

import (
	"crypto/tls"
	"net/http/httptest"
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
