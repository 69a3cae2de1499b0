package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// The permission rule through both verification doors: generic read needs
// some read permission (or read_only / full_access), generic write some
// other one (or full_access), and a named permission must be in the app's
// catalog whatever the access.
func TestPermissionRuleAtVerifyAndForwardAuth(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop", Permissions: []string{"orders:read", "orders:write", "reports:get"}})
	tok := func(access tokend.Access, perms ...string) string {
		_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: strings.TrimSpace(string(access) + " " + joinPerms(perms)), Access: access, Permissions: perms})
		return sec
	}
	writeOnly := tok(tokend.AccessCustom, "orders:write")
	readOnlyCustom := tok(tokend.AccessCustom, "reports:get")
	wildcard := tok(tokend.AccessCustom, "orders:*")
	ro := tok(tokend.AccessReadOnly)
	full := tok(tokend.AccessFull)

	cases := []struct {
		name   string
		sec    string
		method string // forward auth's X-Forwarded-Method; "" with perm
		perm   string
		want   tokend.Code
	}{
		{"custom token holding only orders:write refused a GET", writeOnly, "GET", "", tokend.CodeInsufficientPermissions},
		{"custom token holding only orders:write passes a POST", writeOnly, "POST", "", tokend.CodeValid},
		{"custom token holding only reports:get passes a GET", readOnlyCustom, "GET", "", tokend.CodeValid},
		{"custom token holding only reports:get refused a POST", readOnlyCustom, "POST", "", tokend.CodeInsufficientPermissions},
		{"custom token with orders:* passes a GET and a DELETE", wildcard, "DELETE", "", tokend.CodeValid},
		{"custom token with orders:* passes orders:read", wildcard, "", "orders:read", tokend.CodeValid},
		{"custom token with orders:* refused orders:delete, not in the catalog", wildcard, "", "orders:delete", tokend.CodeInsufficientPermissions},
		{"read_only token passes a GET", ro, "GET", "", tokend.CodeValid},
		{"read_only token refused foo:read, not in the catalog", ro, "", "foo:read", tokend.CodeInsufficientPermissions},
		{"read_only token passes orders:read", ro, "", "orders:read", tokend.CodeValid},
		{"full_access token passes a POST", full, "POST", "", tokend.CodeValid},
		{"full_access token refused users:delete, not in the catalog", full, "", "users:delete", tokend.CodeInsufficientPermissions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			perm := c.perm
			switch c.method {
			case "GET":
				perm = tokend.PermRead
			case "POST", "DELETE":
				perm = tokend.PermWrite
			}
			if res := h.verify(tokend.VerifyRequest{Token: c.sec, Permissions: []string{perm}}); res.Code != c.want {
				t.Errorf("/v1/verify %s: %s, want %s", perm, res.Code, c.want)
			}
			headers := []string{"Authorization", "Bearer " + c.sec}
			path := "/v1/auth"
			if c.method != "" {
				headers = append(headers, "X-Forwarded-Method", c.method)
			} else {
				path += "?permission=" + c.perm
			}
			if r := h.do("GET", path, "", nil, headers...); r.status != c.want.Status() {
				t.Errorf("/v1/auth: %d, want %d", r.status, c.want.Status())
			}
		})
	}
}

// Removing a permission from an app's catalog takes it from every token of
// the app at once, custom tokens holding it included, and the answer no
// longer reports it.
func TestCatalogChangeTakesAPermissionFromEveryToken(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop", Permissions: []string{"orders:read", "orders:write", "orders:export"}})
	_, custom := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "exporter", Access: tokend.AccessCustom,
		Permissions: []string{"orders:read", "orders:export"}})
	_, full := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "full", Access: tokend.AccessFull})
	for _, sec := range []string{custom, full} {
		if res := h.verify(tokend.VerifyRequest{Token: sec, Permissions: []string{"orders:export"}}); !res.Valid {
			t.Fatalf("before the change: %+v", res)
		}
	}
	r := h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"permissions": []string{"orders:read", "orders:write"}})
	if r.status != http.StatusOK {
		t.Fatalf("PATCH app: %d %s", r.status, r.body)
	}
	for name, sec := range map[string]string{"custom": custom, "full_access": full} {
		res := h.verify(tokend.VerifyRequest{Token: sec, Permissions: []string{"orders:export"}})
		if res.Code != tokend.CodeInsufficientPermissions {
			t.Errorf("%s token after orders:export left the catalog: %s, want INSUFFICIENT_PERMISSIONS", name, res.Code)
		}
		if s := h.do("GET", "/v1/auth?permission=orders:export", "", nil, "Authorization", "Bearer "+sec).status; s != http.StatusForbidden {
			t.Errorf("%s token at forward auth: %d, want 403", name, s)
		}
	}
	res := h.verify(tokend.VerifyRequest{Token: custom, Permissions: []string{"orders:read"}})
	if !res.Valid || len(res.Token.Permissions) != 1 || res.Token.Permissions[0] != "orders:read" {
		t.Errorf("the custom token's answer: %+v, want VALID reporting only orders:read", res)
	}
}

// Admin tokens are checked against the admin permissions: the owner token
// and a custom admin token keep working on the management API.
func TestAdminTokensKeepTheirPermissions(t *testing.T) {
	h := newHarness(t)
	if r := h.do("POST", "/v1/apps", h.owner, tokend.AppInput{Name: "shop"}); r.status != http.StatusCreated {
		t.Fatalf("owner creates an app: %d %s", r.status, r.body)
	}
	_, reader := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "auditor", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermAuditRead, tokend.PermAppsRead}})
	if r := h.do("GET", "/v1/apps", reader, nil); r.status != http.StatusOK {
		t.Errorf("custom admin token with apps:read lists apps: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/v1/apps", reader, tokend.AppInput{Name: "nope"}); r.status != http.StatusForbidden {
		t.Errorf("custom admin token without apps:write creates an app: %d", r.status)
	}
	if res := h.verify(tokend.VerifyRequest{Token: h.owner, Permissions: []string{tokend.PermUsersWrite, "read", "write"}}); !res.Valid {
		t.Errorf("the owner token at /v1/verify: %+v", res)
	}
}

func joinPerms(p []string) string {
	out := ""
	for _, s := range p {
		out += s + " "
	}
	return out
}
