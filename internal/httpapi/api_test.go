package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

func TestHealthAndReadiness(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := h.do("GET", p, "", nil); r.status != 200 {
			t.Errorf("%s = %d", p, r.status)
		}
	}
}

func TestManagementNeedsAnAdminToken(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	_, appSecret := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci", Access: tokend.AccessFull})
	_, readOnly := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "auditor", Access: tokend.AccessReadOnly})
	_, tokensOnly := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "rotator", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermTokensRead, tokend.PermTokensRotate}})

	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
	}{
		{"no token", "GET", "/v1/tokens", "", nil, 401},
		{"a malformed token", "GET", "/v1/tokens", "nope", nil, 401},
		{"an app token is not an admin token", "GET", "/v1/tokens", appSecret, nil, 401},
		{"read-only admin may list", "GET", "/v1/tokens", readOnly, nil, 200},
		{"read-only admin may not create apps", "POST", "/v1/apps", readOnly, tokend.AppInput{Name: "x"}, 403},
		{"read-only admin may read audit", "GET", "/v1/audit", readOnly, nil, 200},
		{"tokens-only admin may not read apps", "GET", "/v1/apps", tokensOnly, nil, 403},
		{"tokens-only admin may not read audit", "GET", "/v1/audit", tokensOnly, nil, 403},
		{"read-only admin may read events", "GET", "/v1/events", readOnly, nil, 200},
		{"tokens-only admin may not read events", "GET", "/v1/events", tokensOnly, nil, 403},
		{"owner may do anything", "GET", "/v1/apps", h.owner, nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.path, c.token, c.body)
			if r.status != c.status {
				t.Fatalf("status = %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.status == 401 {
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %q", r.header.Get("WWW-Authenticate"))
				}
				r.problem(t)
			}
			if c.status == 403 {
				if p := r.problem(t); p.Code != tokend.ECodeForbidden {
					t.Errorf("code = %s", p.Code)
				}
			}
		})
	}

	t.Run("an admin cannot mint a token stronger than itself", func(t *testing.T) {
		r := h.do("POST", "/v1/tokens", tokensOnly, tokend.TokenInput{AppID: tokend.SystemAppID, Name: "escalate", Access: tokend.AccessFull})
		if r.status != 403 {
			t.Fatalf("status = %d: %s", r.status, r.body)
		}
	})
}

func TestApps(t *testing.T) {
	h := newHarness(t)
	lifetime := tokend.Duration(90 * 24 * time.Hour)
	app := h.createApp(tokend.AppInput{Name: "Shop", TokenPrefix: "shop", Permissions: []string{"orders:read", "orders:write"}, MaxTokenLifetime: &lifetime})
	if app.TokenPrefix != "shop" || len(app.Permissions) != 2 || app.System || app.Version != 1 {
		t.Fatalf("created app = %+v", app)
	}
	if d := h.createApp(tokend.AppInput{Name: "defaults"}); d.TokenPrefix != "tkd" {
		t.Errorf("default prefix = %q", d.TokenPrefix)
	}

	t.Run("every invalid field is reported at once", func(t *testing.T) {
		for _, c := range []struct {
			body any
			want []string
		}{
			{map[string]any{"name": "", "token_prefix": "Bad-Prefix", "permissions": []string{"orders"}}, []string{"name", "token_prefix", "permissions[0]"}},
			{map[string]any{"name": "  ", "permissions": []string{"orders", "orders:read", "orders:read"}, "max_token_lifetime": "1s"},
				[]string{"name", "permissions[0]", "permissions[2]", "max_token_lifetime"}},
		} {
			r := h.do("POST", "/v1/apps", h.owner, c.body)
			if r.status != 422 {
				t.Fatalf("status = %d: %s", r.status, r.body)
			}
			got := fields(r.problem(t))
			for _, f := range c.want {
				if !slices.Contains(got, f) {
					t.Errorf("no error for %s in %v", f, got)
				}
			}
		}
	})

	t.Run("list shows the system app", func(t *testing.T) {
		var page tokend.Page[tokend.App]
		h.do("GET", "/v1/apps", h.owner, nil).json(t, &page)
		var system int
		for _, a := range page.Items {
			if a.System {
				system++
			}
		}
		if system != 1 || len(page.Items) != 3 {
			t.Errorf("apps = %+v", page.Items)
		}
	})

	t.Run("get answers an ETag and patch honours If-Match", func(t *testing.T) {
		r := h.do("GET", "/v1/apps/"+app.ID, h.owner, nil)
		if r.header.Get("ETag") != `"1"` {
			t.Fatalf("ETag = %q", r.header.Get("ETag"))
		}
		r = h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"name": "Shop 2", "max_token_lifetime": nil}, "If-Match", `"1"`)
		var got tokend.App
		r.json(t, &got)
		if r.status != 200 || got.Name != "Shop 2" || got.MaxTokenLifetime != nil || got.Version != 2 {
			t.Fatalf("patch = %d %s", r.status, r.body)
		}
		r = h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"name": "stale"}, "If-Match", `"1"`)
		if r.status != 412 {
			t.Fatalf("stale patch = %d %s", r.status, r.body)
		}
		if p := r.problem(t); p.Code != tokend.ECodePreconditionFailed {
			t.Errorf("code = %s", p.Code)
		}
	})

	t.Run("the system app cannot be changed or deleted", func(t *testing.T) {
		if r := h.do("PATCH", "/v1/apps/"+tokend.SystemAppID, h.owner, map[string]any{"name": "mine"}); r.status != 403 {
			t.Errorf("patch system = %d", r.status)
		}
		if r := h.do("DELETE", "/v1/apps/"+tokend.SystemAppID, h.owner, nil); r.status != 403 {
			t.Errorf("delete system = %d", r.status)
		}
	})

	t.Run("unknown app is 404", func(t *testing.T) {
		r := h.do("GET", "/v1/apps/app_nope", h.owner, nil)
		if r.status != 404 || r.problem(t).Code != tokend.ECodeNotFound {
			t.Fatalf("status = %d %s", r.status, r.body)
		}
	})

	t.Run("revoke-all revokes every live token of the app only", func(t *testing.T) {
		other := h.createApp(tokend.AppInput{Name: "other"})
		_, keep := h.createToken(tokend.TokenInput{AppID: other.ID, Name: "keep"})
		var secrets []string
		for i := range 3 {
			_, s := h.createToken(tokend.TokenInput{AppID: app.ID, Name: fmt.Sprintf("t%d", i), ExpiresIn: "7d"})
			secrets = append(secrets, s)
		}
		var ans httpapi.RevokeAllAnswer
		r := h.do("POST", "/v1/apps/"+app.ID+"/revoke-all", h.owner, nil)
		r.json(t, &ans)
		if r.status != 200 || ans.Revoked != 3 {
			t.Fatalf("revoke-all = %d %s", r.status, r.body)
		}
		for _, s := range secrets {
			if c := h.code(s); c != tokend.CodeRevoked {
				t.Errorf("after revoke-all: %s", c)
			}
		}
		if c := h.code(keep); c != tokend.CodeValid {
			t.Errorf("other app's token: %s", c)
		}
	})

	t.Run("deleting an app deletes its tokens", func(t *testing.T) {
		gone := h.createApp(tokend.AppInput{Name: "gone"})
		tok, s := h.createToken(tokend.TokenInput{AppID: gone.ID, Name: "x"})
		if r := h.do("DELETE", "/v1/apps/"+gone.ID, h.owner, nil); r.status != 204 {
			t.Fatalf("delete = %d %s", r.status, r.body)
		}
		if c := h.code(s); c != tokend.CodeNotFound {
			t.Errorf("token of a deleted app: %s", c)
		}
		if r := h.do("GET", "/v1/tokens/"+tok.ID, h.owner, nil); r.status != 404 {
			t.Errorf("get = %d", r.status)
		}
	})
}

func TestTokenLifecycle(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop", TokenPrefix: "shop", Permissions: []string{"orders:read", "orders:write"}})
	tok, sec := h.createToken(tokend.TokenInput{
		AppID: app.ID, Name: "deploy bot", Description: "ships things", Access: tokend.AccessCustom,
		Permissions: []string{"orders:read"}, ExpiresIn: "30d", AllowedIPs: []string{"10.0.0.0/8", "2001:db8::1"},
		RateLimit: &tokend.RateLimit{Limit: 100, Window: tokend.Duration(time.Minute)}, Metadata: map[string]any{"team": "ops"},
	})
	if !strings.HasPrefix(sec, "shop_") || !strings.HasPrefix(tok.Masked, "shop_…") || !strings.HasSuffix(sec, tok.Masked[len(tok.Masked)-4:]) {
		t.Fatalf("secret %q / masked %q", tok.Masked, tok.Masked)
	}
	if tok.Status != tokend.StatusActive || tok.ExpiresAt == nil || tok.CreatedBy == "" || !slices.Equal(tok.AllowedIPs, []string{"10.0.0.0/8", "2001:db8::1/128"}) {
		t.Fatalf("token = %+v", tok)
	}

	t.Run("the secret is never answered again", func(t *testing.T) {
		for _, p := range []string{"/v1/tokens/" + tok.ID, "/v1/tokens?app_id=" + app.ID, "/v1/audit"} {
			if r := h.do("GET", p, h.owner, nil); strings.Contains(string(r.body), sec[5:25]) {
				t.Errorf("%s answers the secret", p)
			}
		}
	})

	t.Run("it verifies with its rules", func(t *testing.T) {
		cases := []struct {
			name string
			req  tokend.VerifyRequest
			want tokend.Code
		}{
			{"from an allowed range", tokend.VerifyRequest{Token: sec, IP: "10.1.2.3", Permissions: []string{"orders:read"}}, tokend.CodeValid},
			{"from an allowed v6 address", tokend.VerifyRequest{Token: sec, IP: "2001:db8::1"}, tokend.CodeValid},
			{"from elsewhere", tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}, tokend.CodeIPNotAllowed},
			{"without a permission it lacks", tokend.VerifyRequest{Token: sec, IP: "10.1.2.3", Permissions: []string{"orders:write"}}, tokend.CodeInsufficientPermissions},
			{"from a browser", tokend.VerifyRequest{Token: sec, IP: "10.1.2.3", Origin: "https://evil.example"}, tokend.CodeOriginNotAllowed},
			{"mistyped", tokend.VerifyRequest{Token: mistype(sec)}, tokend.CodeMalformed},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				res := h.verify(c.req)
				if res.Code != c.want || res.Valid != (c.want == tokend.CodeValid) {
					t.Fatalf("verify = %+v, want %s", res, c.want)
				}
				if c.want == tokend.CodeValid && (res.Token == nil || res.Token.ID != tok.ID || res.Token.Metadata["team"] != "ops" || res.RateLimit == nil) {
					t.Errorf("valid answer lacks the token or rate limit: %+v", res)
				}
			})
		}
	})

	t.Run("patch changes fields, clears with null, and checks If-Match", func(t *testing.T) {
		r := h.do("PATCH", "/v1/tokens/"+tok.ID, h.owner, map[string]any{
			"name": "deploy-bot", "rate_limit": nil, "allowed_ips": nil, "expires_in": "unlimited",
		}, "If-Match", fmt.Sprintf(`"%d"`, tok.Version))
		var got tokend.Token
		r.json(t, &got)
		if r.status != 200 || got.Name != "deploy-bot" || got.RateLimit != nil || len(got.AllowedIPs) != 0 || got.ExpiresAt != nil || got.Version != tok.Version+1 {
			t.Fatalf("patch = %d %s", r.status, r.body)
		}
		if r.header.Get("ETag") != fmt.Sprintf(`"%d"`, got.Version) {
			t.Errorf("ETag = %q", r.header.Get("ETag"))
		}
		if res := h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}); res.Code != tokend.CodeValid || res.RateLimit != nil {
			t.Errorf("the edit is not obeyed at once: %+v", res)
		}
		if r := h.do("PATCH", "/v1/tokens/"+tok.ID, h.owner, map[string]any{"name": "x"}, "If-Match", fmt.Sprintf(`"%d"`, tok.Version)); r.status != 412 {
			t.Errorf("stale If-Match = %d", r.status)
		}
		if r := h.do("PATCH", "/v1/tokens/"+tok.ID, h.owner, map[string]any{"access": "custom", "permissions": []string{"users:read"}}); r.status != 422 || !slices.Contains(fields(r.problem(t)), "permissions[0]") {
			t.Errorf("a permission outside the catalog = %d %s", r.status, r.body)
		}
	})

	t.Run("disable, enable, revoke change the verification code at once", func(t *testing.T) {
		steps := []struct {
			action string
			status int
			want   tokend.Code
		}{
			{"disable", 200, tokend.CodeDisabled},
			{"disable", 200, tokend.CodeDisabled}, // idempotent
			{"enable", 200, tokend.CodeValid},
			{"revoke", 200, tokend.CodeRevoked},
			{"enable", 409, tokend.CodeRevoked},
			{"disable", 409, tokend.CodeRevoked},
			{"rotate", 409, tokend.CodeRevoked},
		}
		for _, s := range steps {
			r := h.do("POST", "/v1/tokens/"+tok.ID+"/"+s.action, h.owner, nil)
			if r.status != s.status {
				t.Fatalf("%s = %d, want %d: %s", s.action, r.status, s.status, r.body)
			}
			if c := h.code(sec); c != s.want {
				t.Fatalf("after %s: %s, want %s", s.action, c, s.want)
			}
		}
		if r := h.do("PATCH", "/v1/tokens/"+tok.ID, h.owner, map[string]any{"name": "zombie"}); r.status != 409 {
			t.Errorf("editing a revoked token = %d", r.status)
		}
	})

	t.Run("a revoked token's name can be reused", func(t *testing.T) {
		h.createToken(tokend.TokenInput{AppID: app.ID, Name: "deploy-bot"})
		r := h.do("POST", "/v1/tokens", h.owner, tokend.TokenInput{AppID: app.ID, Name: "deploy-bot"})
		if r.status != 409 || !slices.Contains(fields(r.problem(t)), "name") {
			t.Errorf("duplicate live name = %d %s", r.status, r.body)
		}
	})

	t.Run("delete removes the token and keeps its audit trail", func(t *testing.T) {
		if r := h.do("DELETE", "/v1/tokens/"+tok.ID, h.owner, nil); r.status != 204 {
			t.Fatalf("delete = %d %s", r.status, r.body)
		}
		if c := h.code(sec); c != tokend.CodeNotFound {
			t.Errorf("after delete: %s", c)
		}
		if r := h.do("GET", "/v1/tokens/"+tok.ID, h.owner, nil); r.status != 404 {
			t.Errorf("get after delete = %d", r.status)
		}
		var page tokend.Page[tokend.Event]
		h.do("GET", "/v1/audit?token_id="+tok.ID, h.owner, nil).json(t, &page)
		var actions []string
		for _, e := range page.Items {
			actions = append(actions, e.Action)
			if e.Actor == "" || e.Time.IsZero() {
				t.Errorf("incomplete event %+v", e)
			}
		}
		for _, want := range []string{"token.create", "token.update", "token.disable", "token.enable", "token.revoke", "token.delete"} {
			if !slices.Contains(actions, want) {
				t.Errorf("audit lacks %s: %v", want, actions)
			}
		}
	})
}

func TestRotate(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})

	t.Run("with a grace period both secrets work, same id", func(t *testing.T) {
		tok, old := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "graceful"})
		r := h.do("POST", "/v1/tokens/"+tok.ID+"/rotate", h.owner, map[string]any{"grace_period": "1h"})
		var out httpapi.TokenWithSecret
		r.json(t, &out)
		if r.status != 200 || out.Token.ID != tok.ID || out.Secret == "" || out.Secret == old || out.Token.PreviousSecretExpiresAt == nil {
			t.Fatalf("rotate = %d %s", r.status, r.body)
		}
		if c := h.code(old); c != tokend.CodeValid {
			t.Errorf("old secret within grace: %s", c)
		}
		if c := h.code(out.Secret); c != tokend.CodeValid {
			t.Errorf("new secret: %s", c)
		}
	})

	t.Run("without one the old secret stops at once", func(t *testing.T) {
		tok, old := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "abrupt"})
		r := h.do("POST", "/v1/tokens/"+tok.ID+"/rotate", h.owner, nil)
		var out httpapi.TokenWithSecret
		r.json(t, &out)
		if r.status != 200 {
			t.Fatalf("rotate = %d %s", r.status, r.body)
		}
		if c := h.code(old); c == tokend.CodeValid {
			t.Errorf("old secret still valid")
		}
		if c := h.code(out.Secret); c != tokend.CodeValid {
			t.Errorf("new secret: %s", c)
		}
	})

	t.Run("a rule-breaking create reports every field at once", func(t *testing.T) {
		r := h.do("POST", "/v1/tokens", h.owner, map[string]any{"app_id": app.ID, "name": "", "type": "root",
			"allowed_ips": []string{"10.0.0.0/99"}, "rate_limit": map[string]any{"limit": 0, "window": "1h"}})
		got := fields(r.problem(t))
		for _, f := range []string{"name", "type", "allowed_ips[0]", "rate_limit.limit"} {
			if !slices.Contains(got, f) {
				t.Errorf("no error for %s in %v", f, got)
			}
		}
	})

	t.Run("a bad grace period is refused", func(t *testing.T) {
		tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "bad grace"})
		for _, g := range []string{"soon", "90d"} {
			r := h.do("POST", "/v1/tokens/"+tok.ID+"/rotate", h.owner, map[string]any{"grace_period": g})
			if r.status != 422 || !slices.Contains(fields(r.problem(t)), "grace_period") {
				t.Errorf("grace %q = %d %s", g, r.status, r.body)
			}
		}
	})
}

func TestListFiltersAndPages(t *testing.T) {
	h := newHarness(t)
	a := h.createApp(tokend.AppInput{Name: "a"})
	b := h.createApp(tokend.AppInput{Name: "b"})
	for i := range 7 {
		h.createToken(tokend.TokenInput{AppID: a.ID, Name: fmt.Sprintf("alpha %d", i)})
	}
	plugin, _ := h.createToken(tokend.TokenInput{AppID: b.ID, Name: "Browser Plugin", Type: tokend.TypePlugin, AllowedOrigins: []string{"https://app.example.com"}})
	h.do("POST", "/v1/tokens/"+plugin.ID+"/disable", h.owner, nil)

	list := func(q string) []tokend.Token {
		var all []tokend.Token
		cursor := ""
		for range 20 {
			var page tokend.Page[tokend.Token]
			r := h.do("GET", "/v1/tokens?limit=3&"+q+"&cursor="+cursor, h.owner, nil)
			if r.status != 200 {
				t.Fatalf("list %s = %d %s", q, r.status, r.body)
			}
			r.json(t, &page)
			all = append(all, page.Items...)
			if page.NextCursor == "" {
				return all
			}
			cursor = page.NextCursor
		}
		t.Fatal("pagination does not end")
		return nil
	}
	if got := list("app_id=" + a.ID); len(got) != 7 {
		t.Errorf("app a has %d tokens", len(got))
	}
	if got := list("type=plugin"); len(got) != 1 || got[0].ID != plugin.ID {
		t.Errorf("plugins = %v", got)
	}
	if got := list("status=disabled"); len(got) != 1 {
		t.Errorf("disabled = %v", got)
	}
	if got := list("q=browser"); len(got) != 1 {
		t.Errorf("search = %v", got)
	}
	if got := list("status=active&app_id=" + b.ID); len(got) != 0 {
		t.Errorf("active in b = %v", got)
	}
	for _, q := range []string{"status=gone", "limit=0", "limit=1000", "cursor=%25%25"} {
		r := h.do("GET", "/v1/tokens?"+q, h.owner, nil)
		if r.status != 422 && r.status != 400 {
			t.Errorf("%s = %d %s", q, r.status, r.body)
		}
		r.problem(t)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop", Permissions: []string{"orders:read"}})
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"not JSON", "{", 400, ""},
		{"an array", "[]", 422, ""},
		{"an unknown field", `{"app_id":"` + app.ID + `","name":"x","expires":"7d"}`, 422, "expires"},
		{"a name too long", tokend.TokenInput{AppID: app.ID, Name: strings.Repeat("n", 51)}, 422, "name"},
		{"no name", tokend.TokenInput{AppID: app.ID}, 422, "name"},
		{"an unknown app", tokend.TokenInput{AppID: "app_nope", Name: "x"}, 422, "app_id"},
		{"a bad type", map[string]any{"app_id": app.ID, "name": "x", "type": "root"}, 422, "type"},
		{"permissions with read_only", tokend.TokenInput{AppID: app.ID, Name: "x", Access: tokend.AccessReadOnly, Permissions: []string{"orders:read"}}, 422, "permissions"},
		{"custom without permissions", tokend.TokenInput{AppID: app.ID, Name: "x", Access: tokend.AccessCustom}, 422, "permissions"},
		{"a bad CIDR", tokend.TokenInput{AppID: app.ID, Name: "x", AllowedIPs: []string{"10.0.0.0/99"}}, 422, "allowed_ips[0]"},
		{"a bad origin", tokend.TokenInput{AppID: app.ID, Name: "x", AllowedOrigins: []string{"javascript:alert(1)"}}, 422, "allowed_origins[0]"},
		{"a plugin without origins", tokend.TokenInput{AppID: app.ID, Name: "x", Type: tokend.TypePlugin}, 422, "allowed_origins"},
		{"an expiry in the past", map[string]any{"app_id": app.ID, "name": "x", "expires_at": "2001-01-01T00:00:00Z"}, 422, "expires_at"},
		{"both expiries", map[string]any{"app_id": app.ID, "name": "x", "expires_in": "7d", "expires_at": "2099-01-01T00:00:00Z"}, 422, "expires_in"},
		{"a bad expires_in", tokend.TokenInput{AppID: app.ID, Name: "x", ExpiresIn: "forever"}, 422, "expires_in"},
		{"a bad rate limit", map[string]any{"app_id": app.ID, "name": "x", "rate_limit": map[string]any{"limit": 0, "window": "1h"}}, 422, "rate_limit.limit"},
		{"a bad window", map[string]any{"app_id": app.ID, "name": "x", "rate_limit": map[string]any{"limit": 5, "window": "1y"}}, 422, ""},
		{"max uses zero", map[string]any{"app_id": app.ID, "name": "x", "max_uses": 0}, 422, "max_uses"},
		{"a huge body", `{"app_id":"` + app.ID + `","name":"x","description":"` + strings.Repeat("d", 70000) + `"}`, 413, ""},
		{"huge metadata", tokend.TokenInput{AppID: app.ID, Name: "x", Metadata: map[string]any{"k": strings.Repeat("v", 5000)}}, 422, "metadata"},
		{"control characters in the name", tokend.TokenInput{AppID: app.ID, Name: "a\x00b"}, 422, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", "/v1/tokens", h.owner, c.body)
			if r.status != c.status {
				t.Fatalf("status = %d, want %d: %s", r.status, c.status, r.body)
			}
			p := r.problem(t)
			if c.field != "" && !slices.Contains(fields(p), c.field) {
				t.Errorf("no error for %q: %s", c.field, r.body)
			}
		})
	}
	var page tokend.Page[tokend.Token]
	h.do("GET", "/v1/tokens?app_id="+app.ID, h.owner, nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("bad requests created %d tokens", len(page.Items))
	}
	var events tokend.Page[tokend.Event]
	h.do("GET", "/v1/audit?action=token.create", h.owner, nil).json(t, &events)
	if len(events.Items) != 1 { // the bootstrap token only
		t.Errorf("bad requests wrote %d create events", len(events.Items))
	}
}

func TestVerifyEndpoint(t *testing.T) {
	h := newHarness(t)
	// curl -d sends JSON labelled as a form; it is read as the JSON it is.
	r := h.do("POST", "/v1/verify", "", `{"token":"x"}`, "Content-Type", "application/x-www-form-urlencoded")
	if r.status != 200 {
		t.Errorf("a JSON body sent as a form = %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/v1/verify", "", `{"token":"x"}`, "Content-Type", "text/xml"); r.status != 415 {
		t.Errorf("an XML body = %d", r.status)
	}
	for _, body := range []string{"{", `{"token": 5}`, ""} {
		if r := h.do("POST", "/v1/verify", "", body); r.status != 400 && r.status != 422 {
			t.Errorf("verify %q = %d", body, r.status)
		}
	}
	res := h.verify(tokend.VerifyRequest{Token: "tkd_notreal"})
	if res.Valid || res.Code != tokend.CodeMalformed {
		t.Errorf("garbage = %+v", res)
	}
}

func TestForwardAuth(t *testing.T) {
	h := newHarness(t, harnessOpts{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	app := h.createApp(tokend.AppInput{Name: "shop", Permissions: []string{"orders:read", "orders:write"}})
	ro, roSec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "reader", Access: tokend.AccessReadOnly,
		RateLimit: &tokend.RateLimit{Limit: 5, Window: tokend.Duration(time.Hour)}})
	_, fullSec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "writer", Access: tokend.AccessFull})
	_, ipSec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "office", Access: tokend.AccessFull, AllowedIPs: []string{"198.51.100.0/24"}})
	_, limited := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "limited", Access: tokend.AccessFull,
		RateLimit: &tokend.RateLimit{Limit: 2, Window: tokend.Duration(time.Hour)}})

	cases := []struct {
		name    string
		headers []string
		query   string
		status  int
	}{
		{"no credentials", nil, "", 401},
		{"a bearer token", []string{"Authorization", "Bearer " + roSec}, "", 200},
		{"an X-API-Key", []string{"X-API-Key", roSec}, "", 200},
		{"an unknown token", []string{"Authorization", "Bearer tkd_nope"}, "", 401},
		{"read_only may GET (Caddy header)", []string{"Authorization", "Bearer " + roSec, "X-Forwarded-Method", "GET"}, "", 200},
		{"read_only may not POST (Caddy header)", []string{"Authorization", "Bearer " + roSec, "X-Forwarded-Method", "POST"}, "", 403},
		{"read_only may not DELETE (nginx header)", []string{"Authorization", "Bearer " + roSec, "X-Original-Method", "DELETE"}, "", 403},
		{"full may POST", []string{"Authorization", "Bearer " + fullSec, "X-Forwarded-Method", "POST"}, "", 200},
		{"explicit permission", []string{"Authorization", "Bearer " + roSec}, "?permission=orders:write", 403},
		{"explicit read permission", []string{"Authorization", "Bearer " + roSec}, "?permission=orders:read", 200},
		{"client address from a trusted proxy", []string{"Authorization", "Bearer " + ipSec, "X-Forwarded-For", "198.51.100.7"}, "", 200},
		{"client address outside the range", []string{"Authorization", "Bearer " + ipSec, "X-Forwarded-For", "203.0.113.9"}, "", 403},
		{"a browser origin on a standard token", []string{"Authorization", "Bearer " + fullSec, "Origin", "https://evil.example"}, "", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("GET", "/v1/auth"+c.query, "", nil, c.headers...)
			if r.status != c.status {
				t.Fatalf("status = %d, want %d: %s", r.status, c.status, r.body)
			}
			switch c.status {
			case 200:
				if r.header.Get("X-Token-Id") == "" || r.header.Get("X-Token-App") != app.ID || r.header.Get("X-Token-Name") == "" {
					t.Errorf("identity headers missing: %v", r.header)
				}
			case 401:
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("no challenge: %v", r.header)
				}
			}
			if c.status >= 400 {
				r.problem(t)
			}
		})
	}
	r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+roSec)
	if r.header.Get("X-Token-Id") != ro.ID || r.header.Get("RateLimit-Limit") != "5" || r.header.Get("RateLimit-Remaining") == "" || r.header.Get("RateLimit-Reset") == "" {
		t.Errorf("rate limit headers: %v", r.header)
	}

	t.Run("rate limited answers 429 with Retry-After", func(t *testing.T) {
		for range 2 {
			if r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+limited); r.status != 200 {
				t.Fatalf("within the limit: %d", r.status)
			}
		}
		r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+limited)
		if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Remaining") != "0" {
			t.Fatalf("over the limit: %d %v", r.status, r.header)
		}
	})
}

func TestUntrustedPeersCannotForgeTheirAddress(t *testing.T) {
	h := newHarness(t) // no trusted proxies
	app := h.createApp(tokend.AppInput{Name: "shop"})
	_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "office", AllowedIPs: []string{"198.51.100.0/24"}})
	for _, hdr := range []string{"X-Forwarded-For", "X-Real-IP"} {
		r := h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+sec, hdr, "198.51.100.7")
		if r.status != 403 {
			t.Errorf("%s from an untrusted peer was believed: %d", hdr, r.status)
		}
	}
}

func TestUsageAndLastUse(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "counted", AllowedIPs: []string{"10.0.0.0/8"}})
	for range 3 {
		h.verify(tokend.VerifyRequest{Token: sec, IP: "10.0.0.1"})
	}
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"})
	if err := h.engine.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got tokend.Token
	h.do("GET", "/v1/tokens/"+tok.ID, h.owner, nil).json(t, &got)
	if got.LastUsedAt == nil || got.LastUsedIP != "10.0.0.1" || got.UseCount != 3 {
		t.Errorf("last use = %v %q, uses %d", got.LastUsedAt, got.LastUsedIP, got.UseCount)
	}
	var usage httpapi.UsageAnswer
	r := h.do("GET", "/v1/tokens/"+tok.ID+"/usage", h.owner, nil)
	r.json(t, &usage)
	counts := map[tokend.Code]int64{}
	for _, u := range usage.Items {
		counts[u.Code] += u.Count
	}
	if counts[tokend.CodeValid] != 3 || counts[tokend.CodeIPNotAllowed] != 1 {
		t.Errorf("usage = %s", r.body)
	}
	if r := h.do("GET", "/v1/tokens/"+tok.ID+"/usage?from=yesterday", h.owner, nil); r.status != 422 {
		t.Errorf("bad from = %d", r.status)
	}
}

func TestErrorsAreProblems(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", "/nowhere", 404},
		{"GET", "/v1/tokens/tok_missing", 404},
		{"DELETE", "/v1/tokens/tok_missing", 404},
		{"POST", "/v1/tokens/tok_missing/rotate", 404},
		{"GET", "/v1/tokens/tok_missing/usage", 404},
		{"GET", "/v1/audit?since=never", 422},
	}
	for _, c := range cases {
		r := h.do(c.method, c.path, h.owner, nil)
		if r.status != c.status {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, r.status, c.status)
			continue
		}
		r.problem(t)
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/openapi.json", "", nil)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	want := map[string][]string{
		"/v1/apps": {"get", "post"}, "/v1/apps/{id}": {"get", "patch", "delete"}, "/v1/apps/{id}/revoke-all": {"post"},
		"/v1/tokens": {"get", "post"}, "/v1/tokens/{id}": {"get", "patch", "delete"},
		"/v1/tokens/{id}/disable": {"post"}, "/v1/tokens/{id}/enable": {"post"}, "/v1/tokens/{id}/revoke": {"post"},
		"/v1/tokens/{id}/rotate": {"post"}, "/v1/tokens/{id}/usage": {"get"}, "/v1/tokens/{id}/activity": {"get"},
		"/v1/audit": {"get"}, "/v1/events": {"get"}, "/v1/verify": {"post"}, "/v1/auth": {"get"}, "/healthz": {"get"}, "/readyz": {"get"},
	}
	for p, methods := range want {
		for _, m := range methods {
			if _, ok := doc.Paths[p][m]; !ok {
				t.Errorf("the OpenAPI document lacks %s %s", m, p)
			}
		}
	}
}

func TestNoSecretInLogs(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "quiet"})
	h.code(sec)
	h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+sec)
	var out httpapi.TokenWithSecret
	h.do("POST", "/v1/tokens/"+tok.ID+"/rotate", h.owner, map[string]any{"grace_period": "1m"}).json(t, &out)
	h.code(sec)
	h.engine.Flush(context.Background())
	logs := h.logs.String()
	if logs == "" {
		t.Fatal("no logs captured")
	}
	for _, s := range []string{sec, out.Secret, h.owner} {
		if strings.Contains(logs, s[len(s)-30:]) {
			t.Errorf("a secret is in the logs")
		}
	}
	if !strings.Contains(logs, tok.ID) {
		t.Errorf("the logs do not even name the token; is logging on?")
	}
}

func TestNoPanicOnOddInput(t *testing.T) {
	h := newHarness(t)
	paths := []string{"/v1/tokens/%00", "/v1/tokens/" + strings.Repeat("x", 5000), "/v1/apps/%ff/revoke-all", "/v1/tokens?limit=-1", "/v1/tokens?limit=abc", "/v1/audit?limit=99999999999999999999"}
	for _, p := range paths {
		for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
			req, err := http.NewRequest(m, h.srv.URL+p, strings.NewReader("\x00\xff{"))
			if err != nil {
				continue
			}
			req.Header.Set("Authorization", "Bearer "+h.owner)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode >= 500 {
				t.Errorf("%s %s = %d", m, p, res.StatusCode)
			}
		}
	}
}

// mistype changes the secret's last character, whatever it is.
func mistype(sec string) string {
	last := sec[len(sec)-1]
	c := byte('x')
	if last == c {
		c = 'y'
	}
	return sec[:len(sec)-1] + string(c)
}
