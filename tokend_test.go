package tokend_test

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// The domain package must stay free of everything but the standard library.
func TestDomainImportsOnlyStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/tokend/tokend" {
			t.Errorf("the domain package depends on %s", p)
		}
	}
}

func TestAllows(t *testing.T) {
	catalog := []string{"orders:read", "orders:list", "orders:write", "orders:delete", "users:read", "reports:get", "jobs:run"}
	cases := []struct {
		name    string
		access  tokend.Access
		granted []string
		catalog []string // nil: catalog above
		perm    string
		want    bool
	}{
		{"read_only passes orders:read", tokend.AccessReadOnly, nil, nil, "orders:read", true},
		{"read_only passes orders:list", tokend.AccessReadOnly, nil, nil, "orders:list", true},
		{"read_only passes reports:get", tokend.AccessReadOnly, nil, nil, "reports:get", true},
		{"read_only passes abstract read", tokend.AccessReadOnly, nil, nil, "read", true},
		{"read_only passes abstract read whatever its catalog", tokend.AccessReadOnly, nil, []string{}, "read", true},
		{"read_only refused orders:write", tokend.AccessReadOnly, nil, nil, "orders:write", false},
		{"read_only refused orders:delete", tokend.AccessReadOnly, nil, nil, "orders:delete", false},
		{"read_only refused abstract write", tokend.AccessReadOnly, nil, nil, "write", false},
		{"read_only refused a permission without action", tokend.AccessReadOnly, nil, nil, "orders", false},
		{"read_only refused a read its catalog lacks", tokend.AccessReadOnly, nil, nil, "foo:read", false},
		{"read_only refused orders:* (not only reads)", tokend.AccessReadOnly, nil, nil, "orders:*", false},
		{"full passes anything in its catalog", tokend.AccessFull, nil, nil, "orders:delete", true},
		{"full passes resource:* of a resource in its catalog", tokend.AccessFull, nil, nil, "orders:*", true},
		{"full passes abstract read and write", tokend.AccessFull, nil, []string{}, "write", true},
		{"full refused what its catalog lacks", tokend.AccessFull, nil, nil, "users:delete", false},
		{"full refused a permission without action", tokend.AccessFull, nil, nil, "orders", false},
		{"custom passes a listed permission", tokend.AccessCustom, []string{"orders:write"}, nil, "orders:write", true},
		{"custom refuses an unlisted one", tokend.AccessCustom, []string{"orders:write"}, nil, "orders:read", false},
		{"custom refuses a listed one its catalog lost", tokend.AccessCustom, []string{"orders:write", "orders:export"}, nil, "orders:export", false},
		{"custom wildcard covers the resource", tokend.AccessCustom, []string{"orders:*"}, nil, "orders:delete", true},
		{"custom wildcard covers only actions in the catalog", tokend.AccessCustom, []string{"orders:*"}, nil, "orders:export", false},
		{"custom wildcard does not cover other resources", tokend.AccessCustom, []string{"orders:*"}, nil, "users:read", false},
		{"custom wildcard passes resource:* itself", tokend.AccessCustom, []string{"orders:*"}, nil, "orders:*", true},
		{"custom with a write permission passes abstract write", tokend.AccessCustom, []string{"orders:write"}, nil, "write", true},
		{"custom with a non-read action passes abstract write", tokend.AccessCustom, []string{"jobs:run"}, nil, "write", true},
		{"custom with only reads refuses abstract write", tokend.AccessCustom, []string{"orders:read", "reports:get"}, nil, "write", false},
		{"custom with only orders:write refuses abstract read", tokend.AccessCustom, []string{"orders:write"}, nil, "read", false},
		{"custom with orders:list passes abstract read", tokend.AccessCustom, []string{"orders:list"}, nil, "read", true},
		{"custom with reports:get passes abstract read", tokend.AccessCustom, []string{"reports:get"}, nil, "read", true},
		{"custom with orders:* passes abstract read", tokend.AccessCustom, []string{"orders:*"}, nil, "read", true},
		{"custom with orders:* passes abstract write", tokend.AccessCustom, []string{"orders:*"}, nil, "write", true},
		{"custom with jobs:* has no read action to pass abstract read", tokend.AccessCustom, []string{"jobs:*"}, nil, "read", false},
		{"custom whose only read left the catalog refuses abstract read", tokend.AccessCustom, []string{"orders:read", "orders:write"}, []string{"orders:write"}, "read", false},
		{"custom whose only write left the catalog refuses abstract write", tokend.AccessCustom, []string{"orders:read", "orders:write"}, []string{"orders:read"}, "write", false},
		{"admin catalog: custom users:write passes", tokend.AccessCustom, []string{tokend.PermUsersWrite}, tokend.AdminPermissions, tokend.PermUsersWrite, true},
		{"admin catalog: full passes tokens:rotate", tokend.AccessFull, nil, tokend.AdminPermissions, tokend.PermTokensRotate, true},
		{"admin catalog: read_only passes audit:read", tokend.AccessReadOnly, nil, tokend.AdminPermissions, tokend.PermAuditRead, true},
		{"admin catalog: full refused an app permission", tokend.AccessFull, nil, tokend.AdminPermissions, "orders:read", false},
		{"unknown access refuses", tokend.Access("root"), nil, nil, "orders:read", false},
		{"unknown access refuses abstract read", tokend.Access("root"), nil, nil, "read", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cat := c.catalog
			if cat == nil {
				cat = catalog
			}
			if got := tokend.Allows(c.access, c.granted, cat, c.perm); got != c.want {
				t.Errorf("Allows(%s, %v, %v, %q) = %v, want %v", c.access, c.granted, cat, c.perm, got, c.want)
			}
		})
	}
}

func TestLivePermissions(t *testing.T) {
	catalog := []string{"orders:read", "orders:write"}
	got := tokend.LivePermissions([]string{"orders:read", "orders:export", "orders:*", "users:*"}, catalog)
	if want := []string{"orders:read", "orders:*"}; !slices.Equal(got, want) {
		t.Errorf("LivePermissions = %v, want %v", got, want)
	}
	if got := tokend.LivePermissions([]string{"users:read"}, catalog); got != nil {
		t.Errorf("nothing left: %v, want nil", got)
	}
}

func TestStatusAt(t *testing.T) {
	exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok := tokend.Token{Status: tokend.StatusActive, ExpiresAt: &exp}
	if got := tok.StatusAt(exp.Add(-time.Nanosecond)); got != tokend.StatusActive {
		t.Errorf("before expiry: %s", got)
	}
	if got := tok.StatusAt(exp); got != tokend.StatusExpired {
		t.Errorf("at expiry: %s", got)
	}
	tok.Status = tokend.StatusRevoked
	if got := tok.StatusAt(exp.Add(time.Hour)); got != tokend.StatusRevoked {
		t.Errorf("revoked and expired: %s", got)
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1h": time.Hour, "90s": 90 * time.Second} {
		d, err := tokend.ParseDuration(in)
		if err != nil || time.Duration(d) != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, d, err)
		}
	}
	for _, bad := range []string{"", "x", "-1d", "1y", "99999999d"} {
		if _, err := tokend.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	b, _ := json.Marshal([]tokend.Duration{tokend.Duration(30 * 24 * time.Hour), tokend.Duration(time.Hour), tokend.Duration(90 * time.Second)})
	if string(b) != `["30d","1h","90s"]` {
		t.Errorf("30 days marshal to %s", b)
	}
}

func TestPatchNulls(t *testing.T) {
	var p tokend.TokenPatch
	if err := json.Unmarshal([]byte(`{"name":"x","rate_limit":null,"max_uses":null}`), &p); err != nil {
		t.Fatal(err)
	}
	if *p.Name != "x" || !p.IsNull("rate_limit") || !p.IsNull("max_uses") || p.IsNull("name") {
		t.Fatalf("patch = %+v", p)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(b, &back)
	if v, ok := back["rate_limit"]; !ok || v != nil {
		t.Errorf("round trip lost the null: %s", b)
	}
}

func TestValidation(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var p tokend.Problems
	tokend.CheckName(&p, "name", "")
	tokend.CheckName(&p, "name2", strings.Repeat("é", 51))
	tokend.CheckIPs(&p, "allowed_ips", []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1", "300.1.1.1", "10.0.0.0/33"})
	tokend.CheckOrigins(&p, "allowed_origins", []string{"https://app.example.com", "https://x.com/path", "ftp://x.com", "chrome-extension://abcdef"})
	tokend.CheckRateLimit(&p, "rate_limit", &tokend.RateLimit{Limit: 0, Window: 0})
	tokend.ResolveExpiry(&p, "", ptr(now.Add(-time.Second)), now)
	tokend.ResolveExpiry(&p, "5y", nil, now)
	got := map[string]bool{}
	for _, f := range p {
		got[f.Field] = true
	}
	want := []string{"name", "name2", "allowed_ips[3]", "allowed_ips[4]", "allowed_origins[1]", "allowed_origins[2]",
		"rate_limit.limit", "rate_limit.window", "expires_at", "expires_in"}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no problem reported for %s; got %v", w, p)
		}
	}
	if len(p) != len(want) {
		t.Errorf("got %d problems, want %d: %v", len(p), len(want), p)
	}
	if err := p.Err(); tokend.CodeOf(err) != tokend.ECodeInvalid {
		t.Errorf("Err code = %v", tokend.CodeOf(err))
	}
}

func TestResolveExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]*time.Time{
		"7d": ptr(now.Add(7 * 24 * time.Hour)), "30d": ptr(now.Add(30 * 24 * time.Hour)),
		"90d": ptr(now.Add(90 * 24 * time.Hour)), "unlimited": nil,
	} {
		var p tokend.Problems
		got := tokend.ResolveExpiry(&p, in, nil, now)
		if len(p) > 0 || (got == nil) != (want == nil) || (got != nil && !got.Equal(*want)) {
			t.Errorf("ResolveExpiry(%q) = %v (%v), want %v", in, got, p, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestErrorCodeStatusRoundTrip(t *testing.T) {
	for _, c := range []tokend.ErrorCode{tokend.ECodeInvalid, tokend.ECodeMalformedRequest, tokend.ECodeUnauthenticated,
		tokend.ECodeForbidden, tokend.ECodeNotFound, tokend.ECodeConflict, tokend.ECodePreconditionFailed,
		tokend.ECodeTooLarge, tokend.ECodeRateLimited, tokend.ECodeUnavailable, tokend.ECodeInternal} {
		if got := tokend.CodeForStatus(c.Status()); got != c {
			t.Errorf("%s → %d → %s", c, c.Status(), got)
		}
	}
	for code, want := range map[tokend.Code]int{tokend.CodeValid: 200, tokend.CodeRevoked: 401, tokend.CodeMalformed: 401,
		tokend.CodeInsufficientPermissions: 403, tokend.CodeIPNotAllowed: 403, tokend.CodeRateLimited: 429} {
		if got := code.Status(); got != want {
			t.Errorf("%s.Status() = %d, want %d", code, got, want)
		}
	}
}

func TestOwnerValidation(t *testing.T) {
	for _, id := range []string{"a", "acct_42", `!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`, strings.Repeat("x", 128)} {
		if !tokend.ValidOwnerID(id) {
			t.Errorf("ValidOwnerID(%q) = false, want true", id)
		}
	}
	for _, id := range []string{"", " ", "a b", "a\x00b", "a\tb", "a\x7fb", "é", "a\xffb", "\u202eabc", strings.Repeat("x", 129)} {
		if tokend.ValidOwnerID(id) {
			t.Errorf("ValidOwnerID(%q) = true, want false", id)
		}
		var p tokend.Problems
		tokend.CheckOwnerID(&p, "owner_id", id)
		if (id == "") != (len(p) == 0) {
			t.Errorf("CheckOwnerID(%q) problems %v", id, p)
		}
	}
	for _, name := range []string{"", "Zoë O'Brien", "עברית 🚀 50%_", strings.Repeat("é", 200)} {
		var p tokend.Problems
		tokend.CheckOwnerName(&p, "owner_name", name)
		if len(p) != 0 {
			t.Errorf("CheckOwnerName(%q): %v, want none", name, p)
		}
	}
	for _, name := range []string{"a\x00b", "line\nbreak", "\u202eevil", "bad\xffutf8", "zero\u200bwidth", strings.Repeat("é", 201)} {
		var p tokend.Problems
		tokend.CheckOwnerName(&p, "owner_name", name)
		if len(p) != 1 || p[0].Field != "owner_name" {
			t.Errorf("CheckOwnerName(%q): %v, want one problem", name, p)
		}
	}
}

// The OpenAPI document lists the verification codes from the enum tags of
// the fields that hold one; each must list exactly tokend.Codes.
func TestCodeEnumTagsListEveryCode(t *testing.T) {
	var want []string
	for _, c := range tokend.Codes {
		want = append(want, string(c))
	}
	for _, f := range []reflect.StructField{
		field(t, reflect.TypeFor[tokend.VerifyResult](), "Code"),
		field(t, reflect.TypeFor[tokend.UsageCount](), "Code"),
		field(t, reflect.TypeFor[tokend.Activity](), "Code"),
	} {
		if got := f.Tag.Get("enum"); got != strings.Join(want, ",") {
			t.Errorf("%s's enum tag = %q, want %q", f.Name, got, strings.Join(want, ","))
		}
	}
}

func field(t *testing.T, typ reflect.Type, name string) reflect.StructField {
	f, ok := typ.FieldByName(name)
	if !ok {
		t.Fatalf("%s has no field %s", typ, name)
	}
	return f
}

func TestRotatedIsRefusedLikeRevoked(t *testing.T) {
	if got := tokend.CodeRotated.Status(); got != 401 {
		t.Errorf("ROTATED status = %d, want 401", got)
	}
	if d := (tokend.VerifyResult{Code: tokend.CodeRotated}).Describe(); !strings.Contains(d, "rotation") {
		t.Errorf("ROTATED described as %q", d)
	}
}

func TestNetworkOf(t *testing.T) {
	cases := []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.0/24"},
		{"::ffff:203.0.113.7", "203.0.113.0/24"},
		{"64:ff9b::cb00:7107", "203.0.113.0/24"}, // NAT64 of 203.0.113.7
		{"2001:db8:1:2::1", "2001:db8:1::/48"},
		{"fe80::1%eth0", "fe80::/48"},
		{"", ""},
		{"203.0.113.7/24", ""},
		{"not an address", ""},
	}
	for _, c := range cases {
		p, ok := tokend.NetworkOf(c.ip)
		got := ""
		if ok {
			got = p.String()
		}
		if got != c.want {
			t.Errorf("NetworkOf(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
}

// A name that would read as another on a screen is refused: spaces around
// it ("deploy " beside "deploy") and a word that mixes Latin, Greek and
// Cyrillic letters ("Shоp" with a Cyrillic о beside "Shop"). Words of one
// script, and words of several scripts side by side, pass.
func TestNamesThatReadAsAnother(t *testing.T) {
	for name, want := range map[string]string{
		"deploy ":       "must not begin or end with a space",
		" deploy":       "must not begin or end with a space",
		"deploy\u00a0":  "must not begin or end with a space",
		"Sh\u043ep":     "mixes Latin and Cyrillic letters",
		"p\u0430ypal 2": "mixes Latin and Cyrillic letters",
		"\u03a1ay":      "mixes Latin and Greek letters",
		"deploy bot":    "",
		"Магазин":       "",
		"Shop Магазин":  "",
		"Σ-bot":         "",
		"Café 東京":       "",
	} {
		var p tokend.Problems
		tokend.CheckName(&p, "name", name)
		switch {
		case want == "" && len(p) != 0:
			t.Errorf("CheckName(%q) = %v; want it accepted", name, p)
		case want != "" && (len(p) != 1 || !strings.Contains(p[0].Message, want)):
			t.Errorf("CheckName(%q) = %v; want one problem saying %q", name, p, want)
		}
	}
}
