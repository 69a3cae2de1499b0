package httpapi

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tokend/tokend"
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

// With ConnContext, the requests of one keep-alive connection from a peer
// that is no trusted proxy reuse the address worked out for its first
// request, and still ignore forwarding headers; those from a trusted proxy
// each name their own client.
func TestClientIPOnAKeptConnection(t *testing.T) {
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		want    []string
	}{
		{"an untrusted peer", nil, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}},
		{"a trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			type seen struct{ ip, peer string }
			got := make(chan seen, 1)
			srv := httptest.NewUnstartedServer(clientIP(c.trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- seen{ClientIP(r.Context()), verifyPeer(r.Context())}
			})))
			srv.Config.ConnContext = ConnContext
			var conns atomic.Int32
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			for i, want := range c.want {
				req, _ := http.NewRequest("GET", srv.URL+"/v1/auth", nil)
				req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
				res, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				s := <-got
				if s.ip != want || s.peer != tokend.PeerKey(tokend.DoorVerify, want) {
					t.Errorf("request %d: client address %q, throttle key %q; want %q", i, s.ip, s.peer, want)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections, want the requests on one", n)
			}
		})
	}
}
