package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

func TestTokenActivity(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "watched", Access: tokend.AccessReadOnly})
	other, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "quiet"})
	h.verify(tokend.VerifyRequest{Token: sec, IP: "203.0.113.9"})
	h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+sec,
		"X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/orders/7?api_key=s3cret&x=1")
	h.do("GET", "/v1/auth", "", nil, "Authorization", "Bearer "+sec,
		"X-Original-Method", "GET", "X-Original-URI", "/orders?token=s3cret")
	if err := h.engine.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	r := h.do("GET", "/v1/tokens/"+tok.ID+"/activity", h.owner, nil)
	if r.status != 200 {
		t.Fatalf("activity = %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "s3cret") || strings.Contains(string(r.body), sec) {
		t.Errorf("activity holds a secret: %s", r.body)
	}
	var got httpapi.ActivityAnswer
	r.json(t, &got)
	if len(got.Items) != 3 {
		t.Fatalf("activity = %s, want 3 rows", r.body)
	}
	type row struct {
		code         tokend.Code
		method, path string
	}
	want := []row{ // newest first
		{tokend.CodeValid, "GET", "/orders"},
		{tokend.CodeInsufficientPermissions, "POST", "/orders/7"},
		{tokend.CodeValid, "", ""},
	}
	for i, w := range want {
		g := got.Items[i]
		if (row{g.Code, g.Method, g.Path}) != w {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
	if got.Items[2].IP != "203.0.113.9" || got.Items[0].IP == "" {
		t.Errorf("addresses = %q, %q", got.Items[2].IP, got.Items[0].IP)
	}

	// A token without activity answers an empty list, not null.
	if r := h.do("GET", "/v1/tokens/"+other.ID+"/activity", h.owner, nil); r.status != 200 || !strings.Contains(string(r.body), `"items":[]`) {
		t.Errorf("empty activity = %d %s", r.status, r.body)
	}

	// Permissions and errors, as GET token.
	_, noRead := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "apps only", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermAppsRead}})
	_, reader := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "reader", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermTokensRead}})
	cases := []struct {
		name, path, token string
		status            int
	}{
		{"tokens:read may read it", "/v1/tokens/" + tok.ID + "/activity", reader, 200},
		{"without tokens:read refused", "/v1/tokens/" + tok.ID + "/activity", noRead, 403},
		{"without a token refused", "/v1/tokens/" + tok.ID + "/activity", "", 401},
		{"unknown token", "/v1/tokens/tok_missing/activity", h.owner, 404},
		{"malformed id", "/v1/tokens/tok_%00/activity", h.owner, 404},
		{"an app token is no admin token", "/v1/tokens/" + tok.ID + "/activity", sec, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("GET", c.path, c.token, nil)
			if r.status != c.status {
				t.Fatalf("%s = %d, want %d: %s", c.path, r.status, c.status, r.body)
			}
			if c.status != 200 {
				r.problem(t)
			}
		})
	}
}
