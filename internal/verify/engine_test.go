package verify

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

func ptr[T any](v T) *T { return &v }

func TestVerifyCodes(t *testing.T) {
	past := newClock().Now().Add(-time.Hour)
	future := newClock().Now().Add(time.Hour)
	tests := []struct {
		name string
		tok  func(t *tokend.Token)
		req  tokend.VerifyRequest // Token is filled in
		want tokend.Code
	}{
		{name: "active token is valid", want: tokend.CodeValid},
		{name: "token with a future expiry is valid", tok: func(t *tokend.Token) { t.ExpiresAt = &future }, want: tokend.CodeValid},
		{name: "revoked token is revoked", tok: func(t *tokend.Token) { t.Status = tokend.StatusRevoked }, want: tokend.CodeRevoked},
		{name: "disabled token is disabled", tok: func(t *tokend.Token) { t.Status = tokend.StatusDisabled }, want: tokend.CodeDisabled},
		{name: "expired token is expired", tok: func(t *tokend.Token) { t.ExpiresAt = &past }, want: tokend.CodeExpired},
		{name: "revoked wins over expired", tok: func(t *tokend.Token) { t.Status = tokend.StatusRevoked; t.ExpiresAt = &past }, want: tokend.CodeRevoked},
		{name: "disabled wins over expired", tok: func(t *tokend.Token) { t.Status = tokend.StatusDisabled; t.ExpiresAt = &past }, want: tokend.CodeDisabled},
		{name: "expired wins over a refused IP", tok: func(t *tokend.Token) { t.ExpiresAt = &past; t.AllowedIPs = []string{"10.0.0.0/8"} }, req: tokend.VerifyRequest{IP: "192.0.2.1"}, want: tokend.CodeExpired},

		// IP ranges
		{name: "v4 address inside a v4 range passes", tok: ips("203.0.113.0/24"), req: tokend.VerifyRequest{IP: "203.0.113.77"}, want: tokend.CodeValid},
		{name: "v4 address outside the range is refused", tok: ips("203.0.113.0/24"), req: tokend.VerifyRequest{IP: "203.0.114.1"}, want: tokend.CodeIPNotAllowed},
		{name: "single v4 address passes only itself", tok: ips("198.51.100.9"), req: tokend.VerifyRequest{IP: "198.51.100.9"}, want: tokend.CodeValid},
		{name: "neighbour of a single address is refused", tok: ips("198.51.100.9"), req: tokend.VerifyRequest{IP: "198.51.100.10"}, want: tokend.CodeIPNotAllowed},
		{name: "v6 address inside a v6 range passes", tok: ips("2001:db8::/32"), req: tokend.VerifyRequest{IP: "2001:db8:1234::1"}, want: tokend.CodeValid},
		{name: "v6 address outside the range is refused", tok: ips("2001:db8::/32"), req: tokend.VerifyRequest{IP: "2001:db9::1"}, want: tokend.CodeIPNotAllowed},
		{name: "v4-mapped v6 address matches a v4 range", tok: ips("203.0.113.0/24"), req: tokend.VerifyRequest{IP: "::ffff:203.0.113.5"}, want: tokend.CodeValid},
		{name: "v4-mapped v6 address outside the v4 range is refused", tok: ips("203.0.113.0/24"), req: tokend.VerifyRequest{IP: "::ffff:192.0.2.5"}, want: tokend.CodeIPNotAllowed},
		{name: "v4-mapped v6 range matches a v4 address", tok: ips("::ffff:10.0.0.0/104"), req: tokend.VerifyRequest{IP: "10.9.8.7"}, want: tokend.CodeValid},
		{name: "v4 address never matches a v6 range", tok: ips("2001:db8::/32"), req: tokend.VerifyRequest{IP: "10.0.0.1"}, want: tokend.CodeIPNotAllowed},
		{name: "v6 address with a zone matches its range", tok: ips("fe80::/10"), req: tokend.VerifyRequest{IP: "fe80::1%eth0"}, want: tokend.CodeValid},
		{name: "any of several ranges passes", tok: ips("10.0.0.0/8", "2001:db8::/32"), req: tokend.VerifyRequest{IP: "2001:db8::7"}, want: tokend.CodeValid},
		{name: "restricted token without a client IP is refused", tok: ips("10.0.0.0/8"), want: tokend.CodeIPNotAllowed},
		{name: "restricted token with an unparsable IP is refused", tok: ips("10.0.0.0/8"), req: tokend.VerifyRequest{IP: "10.0.0.1:443"}, want: tokend.CodeIPNotAllowed},
		{name: "restricted token whose ranges do not parse refuses everyone", tok: ips("nonsense"), req: tokend.VerifyRequest{IP: "10.0.0.1"}, want: tokend.CodeIPNotAllowed},
		{name: "unrestricted token passes any IP", req: tokend.VerifyRequest{IP: "192.0.2.1"}, want: tokend.CodeValid},

		// Origins
		{name: "standard token without an Origin passes", want: tokend.CodeValid},
		{name: "standard token with a browser Origin is refused", req: tokend.VerifyRequest{Origin: "https://evil.example"}, want: tokend.CodeOriginNotAllowed},
		{name: "standard token with a listed Origin passes", tok: origins(tokend.TypeStandard, "https://app.example.com"), req: tokend.VerifyRequest{Origin: "https://app.example.com"}, want: tokend.CodeValid},
		{name: "standard token with an unlisted Origin is refused", tok: origins(tokend.TypeStandard, "https://app.example.com"), req: tokend.VerifyRequest{Origin: "https://other.example.com"}, want: tokend.CodeOriginNotAllowed},
		{name: "plugin token from a listed origin passes", tok: origins(tokend.TypePlugin, "https://app.example.com"), req: tokend.VerifyRequest{Origin: "https://app.example.com"}, want: tokend.CodeValid},
		{name: "plugin token origin is compared normalised", tok: origins(tokend.TypePlugin, "https://App.Example.com"), req: tokend.VerifyRequest{Origin: "HTTPS://app.example.COM/"}, want: tokend.CodeValid},
		{name: "plugin token from an extension origin passes", tok: origins(tokend.TypePlugin, "chrome-extension://abcdefghijklmnop"), req: tokend.VerifyRequest{Origin: "chrome-extension://abcdefghijklmnop"}, want: tokend.CodeValid},
		{name: "plugin token from an unlisted origin is refused", tok: origins(tokend.TypePlugin, "https://app.example.com"), req: tokend.VerifyRequest{Origin: "https://app.example.com.evil.example"}, want: tokend.CodeOriginNotAllowed},
		{name: "plugin token with a port not listed is refused", tok: origins(tokend.TypePlugin, "https://app.example.com"), req: tokend.VerifyRequest{Origin: "https://app.example.com:8443"}, want: tokend.CodeOriginNotAllowed},
		{name: "plugin token without an Origin is refused", tok: origins(tokend.TypePlugin, "https://app.example.com"), want: tokend.CodeOriginNotAllowed},
		{name: "plugin token with the null Origin is refused", tok: origins(tokend.TypePlugin, "https://app.example.com"), req: tokend.VerifyRequest{Origin: "null"}, want: tokend.CodeOriginNotAllowed},
		{name: "plugin token with no origins listed is refused", tok: origins(tokend.TypePlugin), req: tokend.VerifyRequest{Origin: "https://app.example.com"}, want: tokend.CodeOriginNotAllowed},
		{name: "refused IP wins over a refused origin", tok: ips("10.0.0.0/8"), req: tokend.VerifyRequest{IP: "192.0.2.1", Origin: "https://evil.example"}, want: tokend.CodeIPNotAllowed},

		// Permissions
		{name: "read_only token refused for orders:write", tok: access(tokend.AccessReadOnly), req: perms("orders:write"), want: tokend.CodeInsufficientPermissions},
		{name: "read_only token refused for write", tok: access(tokend.AccessReadOnly), req: perms("write"), want: tokend.CodeInsufficientPermissions},
		{name: "read_only token passes orders:read", tok: access(tokend.AccessReadOnly), req: perms("orders:read"), want: tokend.CodeValid},
		{name: "read_only token passes read", tok: access(tokend.AccessReadOnly), req: perms("read"), want: tokend.CodeValid},
		{name: "read_only token refused when one of several is a write", tok: access(tokend.AccessReadOnly), req: perms("orders:read", "orders:delete"), want: tokend.CodeInsufficientPermissions},
		{name: "full_access token passes any permission of its catalog", req: perms("orders:write", "write", "read", "users:write", "orders:*"), want: tokend.CodeValid},
		{name: "full_access token refused a permission its catalog lacks", req: perms("users:delete"), want: tokend.CodeInsufficientPermissions},
		{name: "read_only token refused a read its catalog lacks", tok: access(tokend.AccessReadOnly), req: perms("foo:read"), want: tokend.CodeInsufficientPermissions},
		{name: "custom token with only orders:write refused read", tok: access(tokend.AccessCustom, "orders:write"), req: perms("read"), want: tokend.CodeInsufficientPermissions},
		{name: "custom token with orders:list passes read", tok: access(tokend.AccessCustom, "orders:list"), req: perms("read"), want: tokend.CodeValid},
		{name: "custom token with orders:* passes read and write", tok: access(tokend.AccessCustom, "orders:*"), req: perms("read", "write"), want: tokend.CodeValid},
		{name: "custom token holding a permission its catalog lost is refused it", tok: access(tokend.AccessCustom, "orders:write", "orders:export"), req: perms("orders:export"), want: tokend.CodeInsufficientPermissions},
		{name: "custom token passes a granted permission", tok: access(tokend.AccessCustom, "orders:read"), req: perms("orders:read"), want: tokend.CodeValid},
		{name: "custom token refused an ungranted permission", tok: access(tokend.AccessCustom, "orders:read"), req: perms("orders:write"), want: tokend.CodeInsufficientPermissions},
		{name: "custom token with orders:* passes orders:write", tok: access(tokend.AccessCustom, "orders:*"), req: perms("orders:write"), want: tokend.CodeValid},
		{name: "custom token with orders:* passes orders:delete and orders:read", tok: access(tokend.AccessCustom, "orders:*"), req: perms("orders:delete", "orders:read"), want: tokend.CodeValid},
		{name: "custom token with orders:* refused users:read", tok: access(tokend.AccessCustom, "orders:*"), req: perms("users:read"), want: tokend.CodeInsufficientPermissions},
		{name: "custom token with only reads refused write", tok: access(tokend.AccessCustom, "orders:read"), req: perms("write"), want: tokend.CodeInsufficientPermissions},
		{name: "custom token with a write passes write", tok: access(tokend.AccessCustom, "orders:read", "orders:write"), req: perms("write"), want: tokend.CodeValid},
		{name: "refused origin wins over missing permissions", tok: access(tokend.AccessReadOnly), req: tokend.VerifyRequest{Origin: "https://evil.example", Permissions: []string{"write"}}, want: tokend.CodeOriginNotAllowed},

		// Uses
		{name: "token that used up max_uses is refused", tok: func(t *tokend.Token) { t.MaxUses = ptr(int64(5)); t.UseCount = 5 }, want: tokend.CodeUsageExceeded},
		{name: "token with uses left passes", tok: func(t *tokend.Token) { t.MaxUses = ptr(int64(5)); t.UseCount = 4 }, want: tokend.CodeValid},
		{name: "missing permission wins over used-up uses", tok: func(t *tokend.Token) { t.Access = tokend.AccessReadOnly; t.MaxUses = ptr(int64(1)); t.UseCount = 1 }, req: perms("write"), want: tokend.CodeInsufficientPermissions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var edits []func(*tokend.Token)
			if tc.tok != nil {
				edits = append(edits, tc.tok)
			}
			req := tc.req
			req.Token = h.token(edits...)
			res := h.verify(req)
			if res.Code != tc.want {
				t.Fatalf("code = %s, want %s", res.Code, tc.want)
			}
			if res.Valid != (tc.want == tokend.CodeValid) {
				t.Errorf("valid = %v for %s", res.Valid, res.Code)
			}
			if res.Token == nil || res.Token.ID == "" {
				t.Errorf("a secret that identified a token answers no token: %+v", res)
			}
			// The second answer comes from the cache and must agree.
			if again := h.verify(req); again.Code != tc.want && tc.want != tokend.CodeValid {
				t.Errorf("cached answer = %s, want %s", again.Code, tc.want)
			}
			if n := h.store.lookups.Load(); n != 1 {
				t.Errorf("store lookups = %d, want 1 (the second answer is cached)", n)
			}
		})
	}
}

func ips(r ...string) func(t *tokend.Token) { return func(t *tokend.Token) { t.AllowedIPs = r } }

func origins(typ tokend.TokenType, o ...string) func(t *tokend.Token) {
	return func(t *tokend.Token) { t.Type = typ; t.AllowedOrigins = o }
}

func access(a tokend.Access, p ...string) func(t *tokend.Token) {
	return func(t *tokend.Token) { t.Access = a; t.Permissions = p }
}

func perms(p ...string) tokend.VerifyRequest { return tokend.VerifyRequest{Permissions: p} }

func TestVerifyAnswersTheTokenItIdentified(t *testing.T) {
	h := newHarness(t)
	exp := h.clock.Now().Add(24 * time.Hour).Truncate(time.Second)
	sec := h.token(func(t *tokend.Token) {
		t.ID, t.AppID, t.Name = "tok_answer", "app_9", "ci"
		t.Access, t.Permissions = tokend.AccessCustom, []string{"orders:read"}
		t.ExpiresAt = &exp
		t.Metadata = map[string]any{"team": "billing"}
	})
	res := h.verify(tokend.VerifyRequest{Token: sec})
	got := res.Token
	if got == nil || got.ID != "tok_answer" || got.AppID != "app_9" || got.Name != "ci" ||
		got.Access != tokend.AccessCustom || !slices.Equal(got.Permissions, []string{"orders:read"}) ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.Metadata["team"] != "billing" {
		t.Fatalf("token = %+v", got)
	}
	if res.RateLimit != nil {
		t.Errorf("a token without a rate limit answers rate limit state %+v", res.RateLimit)
	}
	// Built once per cache entry and shared.
	if again := h.verify(tokend.VerifyRequest{Token: sec}); again.Token != got {
		t.Errorf("the cached answer built a new VerifiedToken")
	}
}

func TestMalformedSecretsCostNoHMACAndNoStorage(t *testing.T) {
	good, err := secret.Generate("tkd")
	if err != nil {
		t.Fatal(err)
	}
	s := good.Reveal()
	flipped := []byte(s)
	flipped[10] ^= 1 // still base62 letters, but the checksum no longer matches
	for _, tok := range []string{
		"", "hello", "Bearer " + s, s + "x", s[:len(s)-1], string(flipped),
		"TKD" + s[3:], s[:len(s)-6] + "000000",
	} {
		h := newHarness(t)
		res := h.verify(tokend.VerifyRequest{Token: tok})
		if res.Code != tokend.CodeMalformed || res.Valid || res.Token != nil {
			t.Errorf("%q: %+v, want MALFORMED", tok, res)
		}
		if h.store.lookups.Load() != 0 || h.hmacs.Load() != 0 {
			t.Errorf("%q: %d store lookups, %d HMACs; want none", tok, h.store.lookups.Load(), h.hmacs.Load())
		}
	}
}

func TestUnknownSecretIsLookedUpOncePerNegativeTTL(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.NegativeTTL = 5 * time.Second })
	sec, _ := secret.Generate("tkd")
	for range 10 {
		if c := h.code(sec.Reveal()); c != tokend.CodeNotFound {
			t.Fatalf("code = %s, want NOT_FOUND", c)
		}
	}
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("store lookups within NegativeTTL = %d, want 1", n)
	}
	h.clock.Advance(5*time.Second - 1)
	h.code(sec.Reveal())
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("store lookups just before NegativeTTL = %d, want 1", n)
	}
	h.clock.Advance(1)
	h.code(sec.Reveal())
	if n := h.store.lookups.Load(); n != 2 {
		t.Fatalf("store lookups after NegativeTTL = %d, want 2", n)
	}
}

func TestStoreErrorIsAnErrorNeverValid(t *testing.T) {
	h := newHarness(t)
	sec := h.token()
	outage := errors.New("database is locked")
	h.store.set(func(s *fakeStore) { s.lookupErr = outage })
	res, err := h.e.Verify(context.Background(), tokend.VerifyRequest{Token: sec})
	if err == nil || res.Valid || res.Code == tokend.CodeValid {
		t.Fatalf("Verify = %+v, %v; want an error", res, err)
	}
	if !errors.Is(err, outage) {
		t.Errorf("error %v does not wrap the store's", err)
	}
	if c := tokend.CodeOf(err); c != tokend.ECodeUnavailable {
		t.Errorf("error code = %s, want %s", c, tokend.ECodeUnavailable)
	}
	// Nothing was cached from the failure: once storage is back, the token
	// verifies.
	h.store.set(func(s *fakeStore) { s.lookupErr = nil })
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("after the outage: %s, want VALID", c)
	}
}

func TestStoreErrorThatIsADomainErrorKeepsItsCode(t *testing.T) {
	h := newHarness(t)
	sec := h.token()
	h.store.set(func(s *fakeStore) { s.lookupErr = tokend.Unavailable(context.DeadlineExceeded) })
	_, err := h.e.Verify(context.Background(), tokend.VerifyRequest{Token: sec})
	if tokend.CodeOf(err) != tokend.ECodeUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestExpiryIsExactToTheSecondWhateverTheCacheHolds(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour })
	exp := h.clock.Now().Add(10 * time.Second)
	sec := h.token(func(t *tokend.Token) { t.ExpiresAt = &exp })
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("before expiry: %s", c)
	}
	h.clock.Set(exp.Add(-time.Nanosecond))
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("a nanosecond before expiry: %s, want VALID", c)
	}
	h.clock.Set(exp)
	if c := h.code(sec); c != tokend.CodeExpired {
		t.Fatalf("at expires_at: %s, want EXPIRED", c)
	}
	if n := h.store.lookups.Load(); n != 1 {
		t.Errorf("store lookups = %d, want 1: expiry comes from the cached entry", n)
	}
}

func TestPositiveEntriesAreReReadAfterCacheTTL(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Minute })
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_ttl" })
	h.code(sec)
	h.clock.Advance(time.Minute - time.Second)
	h.code(sec)
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("lookups within the TTL = %d, want 1", n)
	}
	// A change that nobody announced is seen once the TTL has passed.
	h.store.update("tok_ttl", func(t *tokend.Token) { t.Status = tokend.StatusDisabled })
	h.clock.Advance(time.Second)
	if c := h.code(sec); c != tokend.CodeDisabled {
		t.Fatalf("after the TTL: %s, want DISABLED", c)
	}
	if n := h.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups after the TTL = %d, want 2", n)
	}
}

func TestInvalidationIsSeenByTheVeryNextVerification(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *tokend.Token)
		want   tokend.Code
	}{
		{"disable", func(t *tokend.Token) { t.Status = tokend.StatusDisabled }, tokend.CodeDisabled},
		{"revoke", func(t *tokend.Token) { t.Status = tokend.StatusRevoked }, tokend.CodeRevoked},
		{"enable", func(t *tokend.Token) { t.Status = tokend.StatusActive }, tokend.CodeValid},
		{"edit IP ranges", func(t *tokend.Token) { t.AllowedIPs = []string{"10.0.0.0/8"} }, tokend.CodeIPNotAllowed},
		{"shorten expiry", func(t *tokend.Token) { t.ExpiresAt = ptr(time.Unix(0, 0)) }, tokend.CodeExpired},
		{"narrow access", func(t *tokend.Token) { t.Access = tokend.AccessReadOnly }, tokend.CodeValid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour })
			sec := h.token(func(t *tokend.Token) { t.ID = "tok_inv" })
			h.code(sec)
			h.store.update("tok_inv", tc.change)
			h.e.TokenChanged("tok_inv")
			if c := h.code(sec); c != tc.want {
				t.Fatalf("after %s: %s, want %s", tc.name, c, tc.want)
			}
		})
	}
}

func TestTokenDeletedIsNotFoundAtOnce(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_del" })
	h.code(sec)
	h.store.set(func(s *fakeStore) { delete(s.creds, h.hasher.Sum(sec)) })
	h.e.TokenChanged("tok_del")
	if c := h.code(sec); c != tokend.CodeNotFound {
		t.Fatalf("after delete: %s, want NOT_FOUND", c)
	}
}

// The app's catalog is the ceiling of what a token is granted: a permission
// taken from the catalog is taken from every token at once (on the next
// verification after the app's invalidation), and no longer reported.
func TestCatalogChangeTakesAPermissionFromEveryToken(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour })
	custom := h.token(access(tokend.AccessCustom, "orders:write", "orders:read"))
	full := h.token()
	ro := h.token(access(tokend.AccessReadOnly))
	ask := func(sec string, p ...string) tokend.VerifyResult {
		return h.verify(tokend.VerifyRequest{Token: sec, Permissions: p})
	}
	for _, c := range []struct {
		sec, perm string
	}{{custom, "orders:write"}, {full, "orders:write"}, {ro, "orders:read"}} {
		if res := ask(c.sec, c.perm); res.Code != tokend.CodeValid {
			t.Fatalf("before the change, %s: %s", c.perm, res.Code)
		}
	}
	h.store.setCatalog("app_1", []string{"orders:read"})
	h.e.AppChanged("app_1")
	if res := ask(custom, "orders:write"); res.Code != tokend.CodeInsufficientPermissions {
		t.Errorf("custom token, orders:write removed from the catalog: %s, want INSUFFICIENT_PERMISSIONS", res.Code)
	} else if !slices.Equal(res.Token.Permissions, []string{"orders:read"}) {
		t.Errorf("the answer reports permissions %v, want only [orders:read]", res.Token.Permissions)
	}
	if res := ask(custom, "write"); res.Code != tokend.CodeInsufficientPermissions {
		t.Errorf("custom token left with reads only, abstract write: %s", res.Code)
	}
	if res := ask(full, "orders:write"); res.Code != tokend.CodeInsufficientPermissions {
		t.Errorf("full_access token, orders:write removed from the catalog: %s", res.Code)
	}
	if res := ask(custom, "orders:read"); res.Code != tokend.CodeValid {
		t.Errorf("custom token, orders:read still in the catalog: %s", res.Code)
	}
	h.store.setCatalog("app_1", []string{})
	h.e.AppChanged("app_1")
	if res := ask(ro, "orders:read"); res.Code != tokend.CodeInsufficientPermissions {
		t.Errorf("read_only token, empty catalog, orders:read: %s", res.Code)
	}
}

// The system app's catalog is the code's admin permissions, whatever the
// stored app says.
func TestAdminTokensAreCheckedAgainstTheAdminPermissions(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) {
		t.AppID = tokend.SystemAppID
		t.Access, t.Permissions = tokend.AccessCustom, slices.Clone(tokend.AdminPermissions)
	})
	h.store.setCatalog(tokend.SystemAppID, []string{"apps:read"}) // an older tokend's
	res := h.verify(tokend.VerifyRequest{Token: sec, Permissions: []string{tokend.PermUsersWrite, tokend.PermTokensRotate}})
	if res.Code != tokend.CodeValid {
		t.Fatalf("owner token: %s, want VALID", res.Code)
	}
	if !slices.Equal(res.Token.Permissions, tokend.AdminPermissions) {
		t.Errorf("owner token reports %v, want every admin permission", res.Token.Permissions)
	}
	if c := h.verify(tokend.VerifyRequest{Token: sec, Permissions: []string{"orders:read"}}).Code; c != tokend.CodeInsufficientPermissions {
		t.Errorf("admin token asked for an app permission: %s", c)
	}
}

func TestAppChangedReReadsEveryTokenOfTheAppOnly(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour })
	a1 := h.token(func(t *tokend.Token) { t.ID, t.AppID = "tok_a1", "app_a" })
	a2 := h.token(func(t *tokend.Token) { t.ID, t.AppID = "tok_a2", "app_a" })
	b1 := h.token(func(t *tokend.Token) { t.ID, t.AppID = "tok_b1", "app_b" })
	for _, s := range []string{a1, a2, b1} {
		h.code(s)
	}
	for _, id := range []string{"tok_a1", "tok_a2", "tok_b1"} {
		h.store.update(id, func(t *tokend.Token) { t.Status = tokend.StatusRevoked })
	}
	h.e.AppChanged("app_a")
	if c := h.code(a1); c != tokend.CodeRevoked {
		t.Errorf("app_a token 1: %s, want REVOKED", c)
	}
	if c := h.code(a2); c != tokend.CodeRevoked {
		t.Errorf("app_a token 2: %s, want REVOKED", c)
	}
	if c := h.code(b1); c != tokend.CodeValid {
		t.Errorf("app_b token was re-read: %s, want the cached VALID", c)
	}
	if n := h.store.lookups.Load(); n != 5 {
		t.Errorf("lookups = %d, want 5 (3 first reads, 2 re-reads)", n)
	}
}

func TestInvalidationDuringAStoreReadIsNotCachedOver(t *testing.T) {
	// A read from storage that overlaps an invalidation may hold the old
	// token; it answers its own request but must not be cached.
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour })
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_race" })
	slow := &slowStore{fakeStore: h.store, during: func() {
		h.store.update("tok_race", func(t *tokend.Token) { t.Status = tokend.StatusDisabled })
		h.e.TokenChanged("tok_race")
	}}
	h.e.store = slow
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("the overlapping request: %s, want the VALID it read", c)
	}
	slow.during = nil
	if c := h.code(sec); c != tokend.CodeDisabled {
		t.Fatalf("the next request: %s, want DISABLED", c)
	}
}

// slowStore runs during after reading a credential and before answering
// it, as if the read had raced with a change.
type slowStore struct {
	*fakeStore
	during func()
}

func (s *slowStore) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	c, err := s.fakeStore.TokenBySecret(ctx, hash)
	if s.during != nil {
		s.during()
	}
	return c, err
}

func TestRotation(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheTTL = time.Hour })
	oldSec := h.token(func(t *tokend.Token) { t.ID, t.AppID = "tok_rot", "app_r" })
	if c := h.code(oldSec); c != tokend.CodeValid {
		t.Fatalf("before rotation: %s", c)
	}
	// Rotate with a one-hour grace period, as UpdateToken would store it.
	grace := h.clock.Now().Add(time.Hour)
	newSec, _ := secret.Generate("tkd")
	h.store.set(func(s *fakeStore) {
		c := s.creds[h.hasher.Sum(oldSec)]
		c.Token.PreviousSecretExpiresAt = &grace
		s.creds[h.hasher.Sum(newSec.Reveal())] = tokend.Credential{Token: c.Token}
		s.creds[h.hasher.Sum(oldSec)] = tokend.Credential{Token: c.Token, Retired: true, GraceUntil: grace}
	})
	h.e.TokenChanged("tok_rot")

	if c := h.code(newSec.Reveal()); c != tokend.CodeValid {
		t.Errorf("new secret: %s, want VALID", c)
	}
	if c := h.code(oldSec); c != tokend.CodeValid {
		t.Errorf("old secret within grace: %s, want VALID", c)
	}
	h.clock.Set(grace.Add(-time.Nanosecond))
	if c := h.code(oldSec); c != tokend.CodeValid {
		t.Errorf("old secret a nanosecond before the grace ends: %s, want VALID", c)
	}
	h.clock.Set(grace)
	res := h.verify(tokend.VerifyRequest{Token: oldSec, IP: "192.0.2.44", UserAgent: "curl/8.5.0", Endpoint: tokend.EndpointVerify})
	if res.Code != tokend.CodeRotated || res.Valid || res.Token == nil || res.Token.ID != "tok_rot" {
		t.Fatalf("old secret after grace: %+v, want ROTATED naming the token", res)
	}
	if c := h.code(newSec.Reveal()); c != tokend.CodeValid {
		t.Errorf("new secret after the old one's grace: %s, want VALID", c)
	}

	// The event waits for the flush: the hot path writes nothing.
	if _, evs := h.store.recorded(); len(evs) != 0 {
		t.Fatalf("events written before Flush: %+v", evs)
	}
	// More uses within the hour add no event.
	h.clock.Advance(59 * time.Minute)
	h.verify(tokend.VerifyRequest{Token: oldSec, IP: "192.0.2.45"})
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, evs := h.store.recorded()
	if len(evs) != 1 {
		t.Fatalf("events = %d, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Action != tokend.ActionTokenOldSecret || ev.TokenID != "tok_rot" || ev.AppID != "app_r" ||
		ev.IP != "192.0.2.44" || !ev.Time.Equal(grace) {
		t.Errorf("event = %+v", ev)
	}
	for k, v := range ev.Details {
		if s, ok := v.(string); ok && strings.Contains(s, oldSec[4:20]) {
			t.Errorf("event detail %s holds the secret", k)
		}
	}
	// The audit event raises token.rotated_secret_used.
	if len(ev.Notices) != 1 || ev.Notices[0].Type != tokend.EventTokenRotatedSecretUsed {
		t.Fatalf("notices = %+v, want one token.rotated_secret_used", ev.Notices)
	}
	d := ev.Notices[0].Data
	if d["token_id"] != "tok_rot" || d["app_id"] != "app_r" || d["ip"] != "192.0.2.44" ||
		d["user_agent"] != "curl/8.5.0" || d["endpoint"] != tokend.EndpointVerify || d["policy"] != "notify" ||
		d["at"] != grace.UTC().Format(time.RFC3339Nano) || d["grace_until"] != grace.UTC().Format(time.RFC3339) {
		t.Errorf("notice data = %v", d)
	}
	for k, v := range d {
		if s, ok := v.(string); ok && strings.Contains(s, oldSec[4:20]) {
			t.Errorf("notice data %s holds the secret", k)
		}
	}
	// An hour after the first event, another use is recorded again.
	h.clock.Advance(time.Minute)
	h.verify(tokend.VerifyRequest{Token: oldSec, IP: "192.0.2.46"})
	h.e.Flush(context.Background())
	if _, evs := h.store.recorded(); len(evs) != 2 || evs[1].IP != "192.0.2.46" {
		t.Fatalf("events after an hour = %+v, want a second one", evs)
	}
}

func TestRotationWithoutGraceRefusesTheOldSecretAtOnce(t *testing.T) {
	h := newHarness(t)
	oldSec := h.token(func(t *tokend.Token) { t.ID = "tok_now" })
	h.code(oldSec)
	h.store.set(func(s *fakeStore) {
		c := s.creds[h.hasher.Sum(oldSec)]
		s.creds[h.hasher.Sum(oldSec)] = tokend.Credential{Token: c.Token, Retired: true}
	})
	h.e.TokenChanged("tok_now")
	if c := h.code(oldSec); c != tokend.CodeRotated {
		t.Fatalf("old secret without grace: %s, want ROTATED", c)
	}
	h.e.Flush(context.Background())
	if _, evs := h.store.recorded(); len(evs) != 1 || evs[0].Action != tokend.ActionTokenOldSecret {
		t.Fatalf("events = %+v", evs)
	}
}

func TestMaxUses(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_max"; t.MaxUses = ptr(int64(3)); t.UseCount = 1 })
	got := []tokend.Code{h.code(sec), h.code(sec), h.code(sec)}
	if !slices.Equal(got, []tokend.Code{tokend.CodeValid, tokend.CodeValid, tokend.CodeUsageExceeded}) {
		t.Fatalf("codes = %v: a stored use count of 1 leaves 2 of 3", got)
	}
	// A refusal is not a use: a failed check does not spend one.
	h2 := newHarness(t)
	sec2 := h2.token(func(t *tokend.Token) { t.Access = tokend.AccessReadOnly; t.MaxUses = ptr(int64(1)) })
	h2.verify(tokend.VerifyRequest{Token: sec2, Permissions: []string{"write"}})
	if c := h2.code(sec2); c != tokend.CodeValid {
		t.Fatalf("after a refused request: %s, want VALID", c)
	}
}

func TestMaxUsesAreNeverLoweredByAReRead(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_seed"; t.MaxUses = ptr(int64(2)) })
	h.code(sec)
	h.code(sec)
	// Storage has not seen the uses yet (no flush); a re-read must not give
	// them back.
	h.e.TokenChanged("tok_seed")
	if c := h.code(sec); c != tokend.CodeUsageExceeded {
		t.Fatalf("after a re-read: %s, want USAGE_EXCEEDED", c)
	}
	// Raising the limit lets it through again.
	h.store.update("tok_seed", func(t *tokend.Token) { t.MaxUses = ptr(int64(3)) })
	h.e.TokenChanged("tok_seed")
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("after raising max_uses: %s, want VALID", c)
	}
}

func TestMaxUsesFromManyGoroutinesNeverExceeds(t *testing.T) {
	const max, workers, each = 100, 16, 25
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.MaxUses = ptr(int64(max)) })
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[tokend.Code]int{}
	)
	for range workers {
		wg.Go(func() {
			for range each {
				res, err := h.e.Verify(context.Background(), tokend.VerifyRequest{Token: sec})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				codes[res.Code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[tokend.CodeValid] != max || codes[tokend.CodeUsageExceeded] != workers*each-max {
		t.Fatalf("codes = %v, want exactly %d VALID", codes, max)
	}
	// Storage counted every use as it was taken; the flush carries the
	// hourly counts and the last use, and adds no use a second time.
	if n := storedUses(h, sec); n != max {
		t.Fatalf("use count in storage = %d, want %d", n, max)
	}
	h.e.Flush(context.Background())
	b, _ := h.store.recorded()
	if len(b) != 1 || len(b[0].Last) != 1 || b[0].Last[0].Uses != 0 {
		t.Fatalf("flushed uses = %+v, want none: storage counted them already", b)
	}
}

// storedUses answers the use count the fake store holds for sec's token.
func storedUses(h *harness, sec string) int64 {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return h.store.creds[h.hasher.Sum(sec)].Token.UseCount
}

func TestMaxUsesAreTakenFromStorage(t *testing.T) {
	limited := func(max int64) func(t *tokend.Token) {
		return func(t *tokend.Token) {
			t.MaxUses = ptr(max)
			t.RateLimit = &tokend.RateLimit{Limit: 10, Window: tokend.Duration(time.Minute)}
		}
	}
	t.Run("every VALID is a use counted in storage, and the flush adds none", func(t *testing.T) {
		h := newHarness(t)
		sec := h.token(limited(5))
		for range 3 {
			if c := h.code(sec); c != tokend.CodeValid {
				t.Fatalf("%s, want VALID", c)
			}
		}
		if n := storedUses(h, sec); n != 3 {
			t.Fatalf("use count in storage after 3 VALID = %d, want 3 before any flush", n)
		}
		if err := h.e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, _ := h.store.recorded()
		if len(b) != 1 || len(b[0].Last) != 1 || b[0].Last[0].Uses != 0 || b[0].Last[0].At.IsZero() {
			t.Fatalf("flushed %+v, want the last use with no uses to add", b)
		}
		if len(b[0].Counts) != 1 || b[0].Counts[0].Count != 3 {
			t.Fatalf("flushed counts %+v, want 3 VALID in the hour", b[0].Counts)
		}
	})
	t.Run("uses taken elsewhere refuse the token and give the rate slot back", func(t *testing.T) {
		h := newHarness(t)
		sec := h.token(func(tok *tokend.Token) { limited(2)(tok); tok.ID = "tok_elsewhere" })
		if c := h.code(sec); c != tokend.CodeValid {
			t.Fatalf("%s, want VALID", c)
		}
		// Another instance takes the last use; this one still counts 1 of 2.
		h.store.update("tok_elsewhere", func(t *tokend.Token) { t.UseCount = 2 })
		res := h.verify(tokend.VerifyRequest{Token: sec})
		if res.Code != tokend.CodeUsageExceeded || res.Valid {
			t.Fatalf("%s, want USAGE_EXCEEDED", res.Code)
		}
		if rl := res.RateLimit; rl == nil || rl.Remaining != 9 {
			t.Fatalf("rate limit %+v, want 9 remaining: the refused request gave its slot back", rl)
		}
		// Known to be used up: the next refusal needs no storage write.
		takes := h.store.takes.Load()
		if c := h.code(sec); c != tokend.CodeUsageExceeded {
			t.Fatalf("%s, want USAGE_EXCEEDED", c)
		}
		if n := h.store.takes.Load(); n != takes {
			t.Fatalf("a token known to be used up asked storage again")
		}
	})
	t.Run("storage that cannot count the use fails the verification", func(t *testing.T) {
		h := newHarness(t)
		sec := h.token(limited(5))
		if c := h.code(sec); c != tokend.CodeValid {
			t.Fatalf("%s, want VALID", c)
		}
		h.store.set(func(s *fakeStore) { s.takeErr = errors.New("connection refused") })
		for range 3 {
			res, err := h.e.Verify(context.Background(), tokend.VerifyRequest{Token: sec})
			if err == nil || res.Valid {
				t.Fatalf("Verify with storage down = %+v, %v; want an error, never VALID", res, err)
			}
			if c := tokend.CodeOf(err); c != tokend.ECodeUnavailable {
				t.Fatalf("error code %s, want %s (503)", c, tokend.ECodeUnavailable)
			}
		}
		h.store.set(func(s *fakeStore) { s.takeErr = nil })
		res := h.verify(tokend.VerifyRequest{Token: sec})
		if res.Code != tokend.CodeValid {
			t.Fatalf("after storage came back: %s, want VALID", res.Code)
		}
		// The failed verifications spent no rate slot and no use.
		if rl := res.RateLimit; rl == nil || rl.Remaining != 8 {
			t.Fatalf("rate limit %+v, want 8 remaining after 2 VALID", rl)
		}
		if n := storedUses(h, sec); n != 2 {
			t.Fatalf("use count in storage = %d, want 2", n)
		}
		h.e.Flush(context.Background())
		b, _ := h.store.recorded()
		if len(b) != 1 || b[0].Last[0].Uses != 0 {
			t.Fatalf("flushed %+v, want no uses to add", b)
		}
	})
	t.Run("a token without max_uses writes nothing on verification", func(t *testing.T) {
		h := newHarness(t)
		sec := h.token()
		for range 3 {
			h.code(sec)
		}
		if n := h.store.takes.Load(); n != 0 {
			t.Fatalf("%d storage writes for a token without max_uses", n)
		}
		h.e.Flush(context.Background())
		b, _ := h.store.recorded()
		if len(b) != 1 || b[0].Last[0].Uses != 3 {
			t.Fatalf("flushed %+v, want 3 uses in the batch", b)
		}
	})
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) {
		t.RateLimit = &tokend.RateLimit{Limit: 3, Window: tokend.Duration(time.Minute)}
	})
	for i, wantRemaining := range []int{2, 1, 0} {
		res := h.verify(tokend.VerifyRequest{Token: sec})
		if res.Code != tokend.CodeValid {
			t.Fatalf("request %d: %s, want VALID", i+1, res.Code)
		}
		if rl := res.RateLimit; rl == nil || rl.Limit != 3 || rl.Remaining != wantRemaining || rl.RetryAfter != 0 {
			t.Fatalf("request %d: rate limit %+v, want remaining %d", i+1, rl, wantRemaining)
		}
	}
	res := h.verify(tokend.VerifyRequest{Token: sec})
	if res.Code != tokend.CodeRateLimited || res.Valid {
		t.Fatalf("request 4: %s, want RATE_LIMITED", res.Code)
	}
	// One of three slots comes back every 20s.
	if rl := res.RateLimit; rl == nil || rl.Remaining != 0 || rl.RetryAfter != 20 || rl.Reset != 60 {
		t.Fatalf("rate limited state = %+v, want remaining 0, retry_after 20, reset 60", rl)
	}
	if res.Token == nil {
		t.Errorf("a rate limited answer names no token")
	}
	// Refused requests do not consume the limit.
	h.clock.Advance(20 * time.Second)
	for range 5 {
		h.verify(tokend.VerifyRequest{Token: sec, Origin: "https://browser.example"})
	}
	if c := h.code(sec); c != tokend.CodeValid {
		t.Fatalf("after 20s: %s, want VALID", c)
	}
	if c := h.code(sec); c != tokend.CodeRateLimited {
		t.Fatalf("second request after 20s: %s, want RATE_LIMITED", c)
	}
	// After a whole window of quiet the full limit is back.
	h.clock.Advance(time.Minute)
	for i := range 3 {
		if c := h.code(sec); c != tokend.CodeValid {
			t.Fatalf("after the window, request %d: %s, want VALID", i+1, c)
		}
	}
	if c := h.code(sec); c != tokend.CodeRateLimited {
		t.Fatalf("after the window, request 4: %s, want RATE_LIMITED", c)
	}
}

func TestRateLimitIsExactWhenTheWindowDoesNotDivide(t *testing.T) {
	for _, limit := range []int{1, 7, 999, 1000} {
		h := newHarness(t)
		sec := h.token(func(t *tokend.Token) {
			t.RateLimit = &tokend.RateLimit{Limit: limit, Window: tokend.Duration(time.Second)}
		})
		valid := 0
		for range limit + 5 {
			if h.code(sec) == tokend.CodeValid {
				valid++
			}
		}
		if valid != limit {
			t.Errorf("limit %d per 1s: %d passed in a burst", limit, valid)
		}
		h.clock.Advance(time.Second)
		valid = 0
		for range limit + 5 {
			if h.code(sec) == tokend.CodeValid {
				valid++
			}
		}
		if valid != limit {
			t.Errorf("limit %d per 1s: %d passed after the window", limit, valid)
		}
	}
}

func TestRateLimitStateIsReportedWithoutBeingSpent(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) {
		t.Status = tokend.StatusDisabled
		t.RateLimit = &tokend.RateLimit{Limit: 10, Window: tokend.Duration(time.Hour)}
	})
	for range 3 {
		res := h.verify(tokend.VerifyRequest{Token: sec})
		if res.Code != tokend.CodeDisabled || res.RateLimit == nil || res.RateLimit.Remaining != 10 {
			t.Fatalf("disabled token: %+v %+v", res, res.RateLimit)
		}
	}
}

func TestRateLimitAndMaxUsesTogether(t *testing.T) {
	// The last use is taken once, under concurrency, and the rate limit
	// slot of a request that lost it is given back.
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) {
		t.MaxUses = ptr(int64(50))
		t.RateLimit = &tokend.RateLimit{Limit: 1000, Window: tokend.Duration(time.Hour)}
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	valid := 0
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if h.code(sec) == tokend.CodeValid {
					mu.Lock()
					valid++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if valid != 50 {
		t.Fatalf("valid = %d, want 50", valid)
	}
	ent := h.e.cache.get(ptr(h.hasher.Sum(sec)), h.clock.Now().UnixNano(), int64(time.Hour))
	if rl := ent.state.limiter.peek(ent.limit, h.clock.Now().UnixNano()); rl.Remaining != 950 {
		t.Errorf("rate limit remaining = %d, want 950: only the valid answers spend it", rl.Remaining)
	}
}

func TestFailureThrottle(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 3; o.FailureWindow = time.Minute })
	good := h.token()
	unknown, _ := secret.Generate("tkd")
	attacker := tokend.PeerKey(tokend.DoorVerify, "198.51.100.66")
	bystander := tokend.PeerKey(tokend.DoorVerify, "203.0.113.10")

	// The reported ip changes on every failure: the peer is what counts.
	for i := range 3 {
		r := tokend.VerifyRequest{Token: unknown.Reveal(), IP: fmt.Sprintf("192.0.2.%d", i), Peer: attacker}
		if c := h.verify(r).Code; c != tokend.CodeNotFound {
			t.Fatalf("failure %d: %s, want NOT_FOUND", i+1, c)
		}
	}
	lookups := h.store.lookups.Load()
	// Three failures are allowed; whatever would need storage next is
	// refused unread.
	if res := h.verify(tokend.VerifyRequest{Token: "garbage", Peer: attacker}); res.Reason != ReasonClientThrottled {
		t.Fatalf("after 3 failures: %+v, want client_throttled", res)
	}
	for _, tok := range []string{unknown.Reveal(), good} {
		res := h.verify(tokend.VerifyRequest{Token: tok, Peer: attacker})
		if res.Code != tokend.CodeRateLimited || res.Reason != ReasonClientThrottled || res.Token != nil {
			t.Fatalf("throttled client: %+v, want RATE_LIMITED client_throttled", res)
		}
		if rl := res.RateLimit; rl == nil || rl.RetryAfter != 60 {
			t.Errorf("throttled client rate limit state = %+v, want retry after 60s", rl)
		}
	}
	// The same peer written as a v4-mapped v6 address is the same peer.
	if res := h.verify(tokend.VerifyRequest{Token: good, Peer: tokend.PeerKey(tokend.DoorVerify, "::ffff:198.51.100.66")}); res.Reason != ReasonClientThrottled {
		t.Errorf("v4-mapped form of the throttled address: %+v", res)
	}
	if h.store.lookups.Load() != lookups {
		t.Errorf("throttled requests reached storage")
	}
	if c := h.verify(tokend.VerifyRequest{Token: good, Peer: bystander}).Code; c != tokend.CodeValid {
		t.Fatalf("another peer: %s, want VALID", c)
	}
	// Now that the token is in the cache, the blocked peer may use it too:
	// a guess cannot be there, and the answer costs no storage read.
	if c := h.verify(tokend.VerifyRequest{Token: good, Peer: attacker}).Code; c != tokend.CodeValid {
		t.Fatalf("a cached token from the blocked peer: %s, want VALID", c)
	}
	if c := h.verify(tokend.VerifyRequest{Token: good, IP: "198.51.100.66"}).Code; c != tokend.CodeValid {
		t.Fatalf("a request without a peer: %s, want VALID", c)
	}
	if c := h.verify(tokend.VerifyRequest{Token: h.token(), Peer: tokend.PeerKey(tokend.DoorAdmin, "198.51.100.66")}).Code; c != tokend.CodeValid {
		t.Fatalf("the same address at another door: %s, want VALID", c)
	}
	h.clock.Advance(time.Minute)
	if c := h.verify(tokend.VerifyRequest{Token: h.token(), Peer: attacker}).Code; c != tokend.CodeValid {
		t.Fatalf("the throttled peer after the window: %s, want VALID", c)
	}
}

// The ip of a request is the caller's word about its own client: it never
// throttles anybody, nor escapes the throttle.
func TestFailureThrottleIgnoresTheReportedIP(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 3 })
	for range 10 {
		h.verify(tokend.VerifyRequest{Token: "junk", IP: "127.0.0.1"})
	}
	if c := h.verify(tokend.VerifyRequest{Token: h.token(), IP: "127.0.0.1", Peer: tokend.PeerKey(tokend.DoorVerify, "127.0.0.1")}).Code; c != tokend.CodeValid {
		t.Fatalf("failures without a peer throttled the address they named: %s", c)
	}
	peer := tokend.PeerKey(tokend.DoorVerify, "192.0.2.50")
	for i := range 3 {
		h.verify(tokend.VerifyRequest{Token: "junk", IP: fmt.Sprintf("10.0.0.%d", i), Peer: peer})
	}
	if res := h.verify(tokend.VerifyRequest{Token: h.token(), IP: "10.0.0.99", Peer: peer}); res.Reason != ReasonClientThrottled {
		t.Fatalf("failures from one peer with varying ip were not throttled: %+v", res)
	}
}

func TestFailureThrottleIgnoresValidTraffic(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 2 })
	good := h.token()
	peer := tokend.PeerKey(tokend.DoorVerify, "192.0.2.1")
	for i := range 50 {
		if c := h.verify(tokend.VerifyRequest{Token: good, Peer: peer}).Code; c != tokend.CodeValid {
			t.Fatalf("valid request %d: %s", i+1, c)
		}
	}
	h.verify(tokend.VerifyRequest{Token: "x", Peer: peer})
	h.verify(tokend.VerifyRequest{Token: "x", Peer: peer})
	if c := h.verify(tokend.VerifyRequest{Token: h.token(), Peer: peer}).Code; c != tokend.CodeRateLimited {
		t.Fatalf("after 2 failures, a token not yet cached: %s, want RATE_LIMITED", c)
	}
	if c := h.verify(tokend.VerifyRequest{Token: good, Peer: peer}).Code; c != tokend.CodeValid {
		t.Fatalf("after 2 failures, the token in use: %s, want VALID", c)
	}
}

// A cached answer to a blocked peer costs no allocation either.
func TestBlockedPeerCachedAnswerAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	h := newHarness(t, func(o *Options) { o.FailureLimit = 1 })
	peer := tokend.PeerKey(tokend.DoorVerify, "192.0.2.1")
	r := tokend.VerifyRequest{Token: h.token(), Peer: peer, Permissions: []string{"read"}}
	h.verify(r)
	h.verify(tokend.VerifyRequest{Token: "x", Peer: peer})
	if res := h.verify(tokend.VerifyRequest{Token: h.token(), Peer: peer}); res.Reason != ReasonClientThrottled {
		t.Fatalf("the peer is not blocked: %+v", res)
	}
	if n := testing.AllocsPerRun(100, func() { h.e.Verify(context.Background(), r) }); n != 0 {
		t.Fatalf("a cached verification from a blocked peer allocates %v times", n)
	}
}

func TestFailureThrottleIgnoresHonestRefusals(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 2 })
	limited := h.token(func(t *tokend.Token) {
		t.RateLimit = &tokend.RateLimit{Limit: 1, Window: tokend.Duration(time.Hour)}
		t.Access = tokend.AccessReadOnly
	})
	ip := tokend.PeerKey(tokend.DoorVerify, "192.0.2.7")
	h.verify(tokend.VerifyRequest{Token: limited, Peer: ip})
	for range 5 {
		h.verify(tokend.VerifyRequest{Token: limited, Peer: ip})                                   // its own rate limit
		h.verify(tokend.VerifyRequest{Token: limited, Peer: ip, Permissions: []string{"x:write"}}) // a permission it lacks
	}
	if res := h.verify(tokend.VerifyRequest{Token: h.token(), Peer: ip}); res.Reason == ReasonClientThrottled {
		t.Fatalf("a real token's own refusals throttled its address: %+v", res)
	}
}

func TestFailureThrottleMemoryIsBounded(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 1 })
	for i := range maxThrottled + 5000 {
		ip := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		h.verify(tokend.VerifyRequest{Token: "x", Peer: tokend.PeerKey(tokend.DoorVerify, netip.AddrFrom4(ip).String())})
	}
	n := 0
	for i := range h.e.throttle.shard {
		n += len(h.e.throttle.shard[i].m)
	}
	if n > maxThrottled {
		t.Fatalf("throttle remembers %d clients, bound %d", n, maxThrottled)
	}
}

func TestDisabledThrottleNeverThrottles(t *testing.T) {
	h := newHarness(t)
	for range 100 {
		h.verify(tokend.VerifyRequest{Token: "x", Peer: "verify|192.0.2.1"})
	}
	if c := h.verify(tokend.VerifyRequest{Token: "x", Peer: "verify|192.0.2.1"}).Code; c != tokend.CodeMalformed {
		t.Fatalf("%s, want MALFORMED", c)
	}
}

func TestCacheStaysWithinItsBound(t *testing.T) {
	const max = 128
	h := newHarness(t, func(o *Options) { o.CacheEntries = max })
	var secs []string
	for range 1000 {
		secs = append(secs, h.token())
	}
	for _, s := range secs {
		if c := h.code(s); c != tokend.CodeValid {
			t.Fatal(c)
		}
	}
	unknown, _ := secret.Generate("tkd")
	h.code(unknown.Reveal())
	if n := h.e.cacheLen(); n > max {
		t.Fatalf("cache holds %d entries, bound %d", n, max)
	}
	// Token states outlive their entries only until their uses are written.
	h.e.Flush(context.Background())
	if n := h.e.tokenStates(); n > max {
		t.Fatalf("%d token states after a flush, bound %d", n, max)
	}
	// Evicted tokens still verify, from storage.
	if c := h.code(secs[0]); c != tokend.CodeValid {
		t.Fatalf("an evicted token: %s", c)
	}
}

func TestConcurrentVerifyInvalidateAndFlush(t *testing.T) {
	// For the race detector: every path at once.
	h := newHarness(t, func(o *Options) { o.CacheEntries = 64; o.FailureLimit = 1000 })
	var secs []string
	for i := range 40 {
		secs = append(secs, h.token(func(t *tokend.Token) {
			t.AppID = []string{"app_x", "app_y"}[i%2]
			t.MaxUses = ptr(int64(1_000_000))
			t.RateLimit = &tokend.RateLimit{Limit: 1_000_000, Window: tokend.Duration(time.Second)}
		}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 400 {
				_, err := h.e.Verify(ctx, tokend.VerifyRequest{Token: secs[(i*7+w)%len(secs)], IP: "192.0.2.1"})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			h.e.TokenChanged("tok_x")
			h.e.AppChanged([]string{"app_x", "app_y"}[i%2])
			h.e.Flush(ctx)
			if i%10 == 0 { // a listener losing its connection and coming back
				h.e.OutOfSync(h.clock.Now())
				h.e.Resync()
			}
		}
	})
	wg.Wait()
	cancel()
	if err := h.e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := h.store.recorded()
	var valid int64
	for _, batch := range b {
		for _, c := range batch.Counts {
			if c.Code == tokend.CodeValid {
				valid += c.Count
			}
		}
	}
	if valid != 6*400 {
		t.Fatalf("flushed VALID counts = %d, want %d", valid, 6*400)
	}
}

// cacheLen and tokenStates count entries, for tests.
func (e *Engine) cacheLen() int {
	n := 0
	for i := range e.cache.shard {
		sh := &e.cache.shard[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

func (e *Engine) tokenStates() int {
	n := 0
	for i := range e.tokens.shard {
		sh := &e.tokens.shard[i]
		sh.mu.RLock()
		n += len(sh.byID)
		sh.mu.RUnlock()
	}
	return n
}
