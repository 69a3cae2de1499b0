package webhook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestRefusedAddresses(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.255.255.254", "::1", // loopback
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", // RFC 1918
		"100.64.0.1", "100.127.255.254", // CGNAT
		"169.254.169.254", "169.254.0.1", "fe80::1", // link-local, metadata
		"fc00::1", "fd12:3456::1", "fd00:ec2::254", // unique-local, AWS metadata
		"0.0.0.0", "::", "0.1.2.3", // unspecified, this network
		"224.0.0.1", "239.255.255.250", "ff02::1", // multicast
		"255.255.255.255", "240.0.0.1", // broadcast, reserved
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", // IPv4-mapped
		"::127.0.0.1", "::10.0.0.1", // IPv4-compatible
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", // NAT64 of loopback, metadata
		"2002:7f00:1::1", "2002:c0a8:101::1", // 6to4 of loopback, 192.168.1.1
		"198.18.0.1", "192.0.0.1",
		"::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe", // IPv4-translated loopback, metadata
		"64:ff9b:1::7f00:1", "64:ff9b:1::a9fe:a9fe", // local-use NAT64
		"2001:0:4136:e378:8000:63bf:3fff:fdd2",     // Teredo
		"fec0::1",                                  // site-local
		"192.0.2.1", "198.51.100.7", "203.0.113.9", // documentation
	}
	for _, s := range refused {
		a := netip.MustParseAddr(s)
		if Refused(a) == "" {
			t.Errorf("%s is allowed", s)
		}
		if err := control("tcp", netip.AddrPortFrom(a, 443).String(), nil); err == nil {
			t.Errorf("dialling %s is allowed", s)
		}
	}
	allowed := []string{"93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "100.128.0.1", "172.32.0.1", "::ffff:8.8.8.8", "64:ff9b::808:808"}
	for _, s := range allowed {
		a := netip.MustParseAddr(s)
		if r := Refused(a); r != "" {
			t.Errorf("%s refused: %s", s, r)
		}
		if err := control("tcp", netip.AddrPortFrom(a, 443).String(), nil); err != nil {
			t.Errorf("dialling %s: %v", s, err)
		}
	}
	if err := control("tcp", "not an address", nil); err == nil {
		t.Error("a malformed address was allowed")
	}
}

func TestClientRefusesLoopbackByNameAndAddress(t *testing.T) {
	var hit bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := NewClient(ClientOptions{AllowHTTP: true})
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s went through", u)
			continue
		}
		if !strings.Contains(err.Error(), "loopback") {
			t.Errorf("GET %s: %v, want a refusal naming loopback", u, err)
		}
		// What the endpoint's owner sees says why, not which address
		// the name resolved to here (no map of the internal network).
		if msg := attemptError(err); !strings.Contains(msg, "loopback") || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, port) {
			t.Errorf("stored error of GET %s: %q, want the reason without the address", u, msg)
		}
	}
	if hit {
		t.Error("the loopback server was reached")
	}
	// Allowed, it connects.
	resp, err := NewClient(ClientOptions{AllowHTTP: true, AllowPrivate: true}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestClientFollowsNoRedirectAndNoProxy(t *testing.T) {
	var target bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			target = true
			return
		}
		http.Redirect(w, r, "/target", http.StatusFound)
	}))
	defer srv.Close()
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	c := NewClient(ClientOptions{AllowHTTP: true, AllowPrivate: true})
	if c.Transport.(*http.Transport).Proxy != nil {
		t.Error("the client uses a proxy")
	}
	resp, err := c.Get(srv.URL + "/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || target {
		t.Errorf("status %d, target reached %v: a redirect was followed", resp.StatusCode, target)
	}
}

func TestCheckURL(t *testing.T) {
	for _, u := range []string{"https://hooks.example.com/x?y=1", "https://10.0.0.1:8443/", "https://hooks.example.com./",
		"https://xn--bcher-kva.example/", "https://[2606:4700::1111]/", "https://1.1.1.1/", "https://a1.example/", "https://0x.example/x"} {
		if err := CheckURL(u, false); err != nil {
			t.Errorf("CheckURL(%q): %v", u, err)
		}
	}
	if err := CheckURL("http://hooks.example.com/", true); err != nil {
		t.Errorf("http with AllowHTTP: %v", err)
	}
	for _, u := range []string{"http://hooks.example.com/", "ftp://x/", "https://", "https://u:p@h/", "/relative", "https://h/#f", "javascript:alert(1)", "https://h\x00/",
		// Spellings a resolver may read as another address than they show.
		"https://2130706433/", "https://0x7f000001/", "https://0177.0.0.1/", "https://127.1/", "https://1.2.3.4.5/",
		"https://ｌｏｃａｌｈｏｓｔ/", "https://１２７.０.０.１/", "https://bücher.example/"} {
		if err := CheckURL(u, false); err == nil {
			t.Errorf("CheckURL(%q) accepted", u)
		}
	}
}

func TestAttemptErrorTimeout(t *testing.T) {
	if got := attemptError(context.DeadlineExceeded); got != "timed out after 10s" {
		t.Errorf("attemptError = %q", got)
	}
}

// A failed lookup is told without the resolver's address (an address of
// the network tokend runs in).
func TestAttemptErrorHidesTheResolver(t *testing.T) {
	for _, err := range []error{
		&net.DNSError{Err: "no such host", Name: "hooks.example", Server: "10.255.255.53:53", IsNotFound: true},
		&net.DNSError{Err: "i/o timeout", Name: "hooks.example", Server: "10.255.255.53:53", IsTimeout: true},
	} {
		got := attemptError(&url.Error{Op: "Post", URL: "https://hooks.example/x", Err: err})
		if strings.Contains(got, "10.255") || !strings.Contains(got, "hooks.example") {
			t.Errorf("%v -> %q", err, got)
		}
	}
}
