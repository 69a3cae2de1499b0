package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// A zone names an interface of the proxy's, not a client: an address with
// one is no client address (as /v1/verify's ip refuses it), and the
// peer's own zone is left out.
func TestClientIPLeavesZonesOut(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("fe80::/10")}
	var got string
	h := clientIP(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = ClientIP(r.Context()) }))
	cases := []struct {
		name, remote, header, value, want string
	}{
		{"a zone in X-Forwarded-For", "192.0.2.1:1234", "X-Forwarded-For", "fe80::1%eth0", "192.0.2.1"},
		{"a zone behind a client", "192.0.2.1:1234", "X-Forwarded-For", "198.51.100.7, fe80::1%eth0", "192.0.2.1"},
		{"a zone in X-Real-IP", "192.0.2.1:1234", "X-Real-IP", "fe80::1%eth0", "192.0.2.1"},
		{"a plain client", "192.0.2.1:1234", "X-Forwarded-For", "fe80::1", "fe80::1"},
		{"a peer with a zone", "[fe80::2%eth0]:1234", "", "", "fe80::2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/auth", nil)
			r.RemoteAddr = c.remote
			if c.header != "" {
				r.Header.Set(c.header, c.value)
			}
			got = "unset"
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != c.want {
				t.Errorf("client address = %q, want %q", got, c.want)
			}
		})
	}
}
