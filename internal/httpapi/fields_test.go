package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// A request with several bad fields, a missing required one among them,
// is answered with every invalid field at once, whether the schema or the
// service finds it, and changes nothing.
func TestEveryInvalidFieldAtOnce(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "Shop", Permissions: []string{"orders:read"}})
	tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
	wh := h.createWebhook(map[string]any{"url": "https://example.com/hook", "events": []string{"token.created"}})
	before := h.counts(t)

	for _, c := range []struct {
		name, method, path, body string
		want                     []string // the fields named, in any order
	}{
		{"token create: missing and wrong", "POST", "/v1/tokens",
			`{"access":"bogus","expires_in":"soon","allowed_ips":["10.0.0.0/99"],"rate_limit":{"limit":"x"}}`,
			[]string{"app_id", "name", "access", "expires_in", "allowed_ips[0]", "rate_limit.limit", "rate_limit.window"}},
		{"token edit", "PATCH", "/v1/tokens/" + tok.ID,
			`{"name":"","access":"bogus","max_uses":"many","allowed_ips":["nope"]}`,
			[]string{"name", "access", "max_uses", "allowed_ips[0]"}},
		// Values the schema takes but Go cannot decode (a duration, a
		// number beyond int64): TokenPatch and AppPatch decode themselves
		// whole, so one of them emptied the patch and hid the others.
		{"token edit: values only the decoder refuses", "PATCH", "/v1/tokens/" + tok.ID,
			`{"name":"","max_uses":1e30,"rate_limit":{"limit":5,"window":"soon"}}`,
			[]string{"name", "max_uses", "rate_limit.window"}},
		{"app edit: values only the decoder refuses", "PATCH", "/v1/apps/" + app.ID,
			`{"name":"","max_token_lifetime":"soon","owner_rate_limit":{"limit":5,"window":"soon"}}`,
			[]string{"name", "max_token_lifetime", "owner_rate_limit.window"}},
		{"app create: a duration only the decoder refuses", "POST", "/v1/apps",
			`{"token_prefix":"BAD!","max_token_lifetime":"soon"}`,
			[]string{"name", "token_prefix", "max_token_lifetime"}},
		{"app create: missing name, bad prefix, out-of-range limit", "POST", "/v1/apps",
			`{"token_prefix":"BAD!","max_tokens_per_owner":0,"permissions":["no action"]}`,
			[]string{"name", "token_prefix", "max_tokens_per_owner", "permissions[0]"}},
		{"app edit", "PATCH", "/v1/apps/" + app.ID,
			`{"name":"","token_prefix":"BAD!","max_tokens_per_owner":0}`,
			[]string{"name", "token_prefix", "max_tokens_per_owner"}},
		{"webhook create: missing url, bad events and description", "POST", "/v1/webhooks",
			`{"events":["nope"],"enabled":"yes"}`,
			[]string{"url", "events[0]", "enabled"}},
		{"webhook edit", "PATCH", "/v1/webhooks/" + wh.Webhook.ID,
			`{"url":"ftp://example.com","events":["nope"],"enabled":"yes"}`,
			[]string{"url", "events[0]", "enabled"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.path, h.owner, c.body)
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s", r.status, r.body)
			}
			p := r.problem(t)
			got := fields(p)
			for _, f := range c.want {
				if !slices.Contains(got, f) {
					t.Errorf("the answer does not name %s: %s", f, r.body)
				}
			}
			if len(got) != len(slices.Compact(slices.Sorted(slices.Values(got)))) {
				t.Errorf("a field is named twice: %s", r.body)
			}
			if len(got) != len(c.want) {
				t.Errorf("%d fields named, want %d (%v): %s", len(got), len(c.want), c.want, r.body)
			}
		})
	}
	if after := h.counts(t); after != before {
		t.Errorf("refused requests changed something: %+v, then %+v", before, after)
	}
	t.Run("a body that is no JSON is still 400, another content type 415", func(t *testing.T) {
		if r := h.do("POST", "/v1/tokens", h.owner, `{"app_id":`); r.status != http.StatusBadRequest {
			t.Errorf("truncated JSON: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/v1/apps", h.owner, `name=x`, "Content-Type", "text/plain"); r.status != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: %d %s", r.status, r.body)
		}
	})
}

type storeCounts struct{ apps, tokens, audit int }

// counts answers how many apps, tokens and audit rows the store holds.
func (h *harness) counts(t *testing.T) storeCounts {
	t.Helper()
	ctx := context.Background()
	apps, err := h.store.Apps(ctx, tokend.AppFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.store.CountTokens(ctx, tokend.TokenFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var audit tokend.Page[tokend.Event]
	h.do("GET", "/v1/audit?limit=200", h.owner, nil).json(t, &audit)
	return storeCounts{len(apps.Items), n, len(audit.Items)}
}

// Permissions without access mean access custom, as the CLI reads them;
// with another access the answer says what to change.
func TestPermissionsWithoutAccessMeanCustom(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "Shop", Permissions: []string{"orders:read", "orders:write"}})
	tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "reader", Permissions: []string{"orders:read"}})
	if tok.Access != tokend.AccessCustom || !slices.Equal(tok.Permissions, []string{"orders:read"}) {
		t.Errorf("access %s, permissions %v; want custom with orders:read", tok.Access, tok.Permissions)
	}
	if tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "plain"}); tok.Access != tokend.AccessReadOnly {
		t.Errorf("without permissions: access %s, want read_only", tok.Access)
	}
	r := h.do("POST", "/v1/tokens", h.owner, tokend.TokenInput{AppID: app.ID, Name: "both", Access: tokend.AccessReadOnly, Permissions: []string{"orders:read"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("read_only with permissions: %d %s", r.status, r.body)
	}
	if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "permissions" || !strings.Contains(p.Errors[0].Message, "set access to custom") {
		t.Errorf("the answer does not say what to change: %s", r.body)
	}
}

// Following the tour's curl and then its CLI step made two "Shop" apps: a
// second app of a name is refused, 409 naming the first.
func TestDuplicateAppNamesAreRefused(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			shop := h.createApp(tokend.AppInput{Name: "Shop"})
			other := h.createApp(tokend.AppInput{Name: "Warehouse"})
			for _, c := range []struct{ method, path string }{{"POST", "/v1/apps"}, {"PATCH", "/v1/apps/" + other.ID}} {
				r := h.do(c.method, c.path, h.owner, map[string]string{"name": "shop"})
				if r.status != http.StatusConflict {
					t.Fatalf("%s %s named like another: %d %s", c.method, c.path, r.status, r.body)
				}
				p := r.problem(t)
				if p.Code != tokend.ECodeConflict || !strings.Contains(p.Detail, shop.ID) || !slices.Equal(fields(p), []string{"name"}) {
					t.Errorf("the answer does not name the app that has the name: %s", r.body)
				}
			}
			var page tokend.Page[tokend.App]
			h.do("GET", "/v1/apps", h.owner, nil).json(t, &page)
			if len(page.Items) != 3 { // the system app, Shop, Warehouse
				t.Errorf("%d apps after the refusals, want 3", len(page.Items))
			}
		})
	}
}
