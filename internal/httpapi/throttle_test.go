package httpapi_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/verify"
)

// The failure throttle as the issue found it: 101 junk verifications that
// name 127.0.0.1 as their client locked the owner out of the management API
// and made forward auth refuse valid tokens. The ip of a verification is the
// caller's word about its own client; the throttle keys on whoever sent the
// request (here the client a trusted proxy names), with a count per door.
func TestJunkVerificationsNamingAnAddressLockNobodyOut(t *testing.T) {
	h := newHarness(t, harnessOpts{failureLimit: 100, trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	app := h.createApp(tokend.AppInput{Name: "shop", Permissions: []string{"orders:read", "orders:write"}})
	_, used := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "in use"})
	_, cold := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "not used yet"})
	_, cold2 := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "not used yet either"})
	const attacker = "198.51.100.66"
	auth := func(sec string, headers ...string) int {
		return h.do("GET", "/v1/auth", "", nil, append([]string{"Authorization", "Bearer " + sec}, headers...)...).status
	}
	if s := auth(used, "X-Forwarded-For", attacker); s != 200 {
		t.Fatalf("the token in use, before: %d", s)
	}

	var last tokend.VerifyResult
	for range 101 {
		r := h.do("POST", "/v1/verify", "", map[string]string{"token": "junk", "ip": "127.0.0.1"}, "X-Forwarded-For", attacker)
		if r.status != 200 {
			t.Fatalf("junk verification: %d %s", r.status, r.body)
		}
		r.json(t, &last)
	}
	if last.Code != tokend.CodeRateLimited || last.Reason != verify.ReasonClientThrottled {
		t.Fatalf("the 101st junk verification from one client: %+v, want RATE_LIMITED client_throttled", last)
	}

	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"from the address the junk named (the proxy itself)", nil},
		{"from another client", []string{"X-Forwarded-For", "203.0.113.5"}},
		{"from the client that sent the junk", []string{"X-Forwarded-For", attacker}},
	} {
		t.Run("the owner's admin token works "+c.name, func(t *testing.T) {
			if r := h.do("GET", "/v1/apps", h.owner, nil, c.headers...); r.status != http.StatusOK {
				t.Fatalf("management API: %d %s", r.status, r.body)
			}
		})
	}
	t.Run("forward auth passes a valid token for anybody else", func(t *testing.T) {
		if s := auth(cold); s != 200 {
			t.Errorf("from the address the junk named: %d", s)
		}
		if s := auth(cold2, "X-Forwarded-For", "203.0.113.5"); s != 200 {
			t.Errorf("from another client: %d", s)
		}
	})
	t.Run("the client that sent the junk keeps the token it uses", func(t *testing.T) {
		if s := auth(used, "X-Forwarded-For", attacker); s != 200 {
			t.Errorf("a cached token: %d", s)
		}
		res := h.verify(tokend.VerifyRequest{Token: used})
		if !res.Valid {
			t.Errorf("verify of the cached token from the proxy: %+v", res)
		}
	})
	t.Run("but is refused what would need storage", func(t *testing.T) {
		_, fresh := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "fresh"})
		r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+fresh, "X-Forwarded-For", attacker)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("a token not in the cache from the throttled client: %d %v", r.status, r.header)
		}
		r.problem(t)
	})
}

// Junk sent without an ip, or naming a different one each time, is
// throttled all the same: the sender is what counts.
func TestJunkFromOnePeerIsThrottledWhateverItsIP(t *testing.T) {
	for _, c := range []struct {
		name string
		ip   func(i int) string
	}{
		{"without ip", func(int) string { return "" }},
		{"with a different ip each time", func(i int) string { return fmt.Sprintf("10.0.%d.%d", i/256, i%256) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{failureLimit: 5})
			app := h.createApp(tokend.AppInput{Name: "shop"})
			_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "not used yet"})
			for i := range 5 {
				if res := h.verify(tokend.VerifyRequest{Token: "junk", IP: c.ip(i)}); res.Code != tokend.CodeMalformed {
					t.Fatalf("junk %d: %+v", i, res)
				}
			}
			res := h.verify(tokend.VerifyRequest{Token: sec, IP: c.ip(99)})
			if res.Code != tokend.CodeRateLimited || res.Reason != verify.ReasonClientThrottled {
				t.Fatalf("after 5 failures from one peer: %+v, want client_throttled", res)
			}
			if r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+sec); r.status != http.StatusTooManyRequests {
				t.Fatalf("forward auth shares the verification door: %d", r.status)
			}
		})
	}
}

// Behind a trusted proxy, each client the proxy names has its own count;
// an untrusted peer's X-Forwarded-For is ignored, so it cannot spread its
// failures over made-up addresses.
func TestTheThrottleKeysOnTheTrustedProxysClient(t *testing.T) {
	t.Run("trusted proxy", func(t *testing.T) {
		h := newHarness(t, harnessOpts{failureLimit: 3, trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		app := h.createApp(tokend.AppInput{Name: "shop"})
		_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
		for range 3 {
			h.do("POST", "/v1/verify", "", map[string]string{"token": "junk"}, "X-Forwarded-For", "198.51.100.1")
		}
		for _, c := range []struct {
			xff      string
			throttle bool
		}{{"198.51.100.1", true}, {"198.51.100.2", false}, {"", false}} {
			r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+sec, "X-Forwarded-For", c.xff)
			if got := r.status == http.StatusTooManyRequests; got != c.throttle {
				t.Errorf("client %q: %d, throttled %v, want %v", c.xff, r.status, got, c.throttle)
			}
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		h := newHarness(t, harnessOpts{failureLimit: 3})
		app := h.createApp(tokend.AppInput{Name: "shop"})
		_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
		for i := range 3 {
			h.do("POST", "/v1/verify", "", map[string]string{"token": "junk"}, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		}
		r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+sec, "X-Forwarded-For", "198.51.100.200")
		if r.status != http.StatusTooManyRequests {
			t.Errorf("an untrusted peer escaped its count with X-Forwarded-For: %d", r.status)
		}
	})
}

// Verification and the management API count failures apart: neither door
// can lock a peer out of the other.
func TestVerificationAndManagementThrottlesAreSeparate(t *testing.T) {
	t.Run("failed verifications do not throttle the management API", func(t *testing.T) {
		h := newHarness(t, harnessOpts{failureLimit: 3})
		for range 10 {
			h.verify(tokend.VerifyRequest{Token: "junk"})
		}
		admin := h.adminToken()
		if r := h.do("GET", "/v1/apps", admin, nil); r.status != http.StatusOK {
			t.Fatalf("a fresh admin token after failed verifications from its peer: %d %s", r.status, r.body)
		}
	})
	t.Run("failed admin tokens throttle the management API only", func(t *testing.T) {
		h := newHarness(t, harnessOpts{failureLimit: 3})
		app := h.createApp(tokend.AppInput{Name: "shop"})
		_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
		admin := h.adminToken()
		for i := range 3 {
			if r := h.do("GET", "/v1/apps", "tkd_admin_junk", nil); r.status != http.StatusUnauthorized {
				t.Fatalf("bad admin token %d: %d", i, r.status)
			}
		}
		r := h.do("GET", "/v1/apps", admin, nil)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("a cold admin token from the peer that failed 3 times: %d %v", r.status, r.header)
		}
		r.problem(t)
		if r := h.do("GET", "/v1/apps", h.owner, nil); r.status != http.StatusOK {
			t.Errorf("the owner token in use from the same peer: %d", r.status)
		}
		if res := h.verify(tokend.VerifyRequest{Token: sec}); !res.Valid {
			t.Errorf("verification from the peer locked out of management: %+v", res)
		}
	})
}

// adminToken makes a new admin token that no request has used yet.
func (h *harness) adminToken() string {
	h.t.Helper()
	_, sec := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: fmt.Sprintf("admin %d", len(h.t.Name())), Access: tokend.AccessFull})
	return sec
}
