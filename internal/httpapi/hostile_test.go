package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// cursorOf encodes a crafted cursor as the stores' cursors are encoded.
func cursorOf(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }

// snapshot is what a refused request must leave as it was.
type snapshot struct {
	token, app string
	tokens     int
	events     int
}

func (h *harness) snapshot(appID, tokenID string) snapshot {
	h.t.Helper()
	var s snapshot
	s.token = string(h.do("GET", "/v1/tokens/"+tokenID, h.owner, nil).body)
	s.app = string(h.do("GET", "/v1/apps/"+appID, h.owner, nil).body)
	var toks tokend.Page[tokend.Token]
	h.do("GET", "/v1/tokens?limit=200", h.owner, nil).json(h.t, &toks)
	s.tokens = len(toks.Items)
	var evs tokend.Page[tokend.Event]
	h.do("GET", "/v1/audit?limit=200", h.owner, nil).json(h.t, &evs)
	s.events = len(evs.Items)
	return s
}

// TestHostileInputIsRefusedOnEveryStore sends what an attacker would, on
// SQLite and PostgreSQL alike: each is a 4xx problem naming the field, never
// a 500, and nothing changes.
func TestHostileInputIsRefusedOnEveryStore(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			app := h.createApp(tokend.AppInput{Name: "shop", Permissions: []string{"orders:read"}})
			tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci"})
			tokPath := "/v1/tokens/" + tok.ID
			create := func(extra string) string {
				return `{"app_id":"` + app.ID + `","name":"x"` + extra + `}`
			}
			cases := []struct {
				name, method, path string
				body               any
				status             int
				field              string
			}{
				// Names: one line of visible text.
				{"NUL in a name", "POST", "/v1/tokens", create(`,"name":"a\u0000b"`), 422, "name"},
				{"a right-to-left override in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "invoice\u202Efdp.exe"}, 422, "name"},
				{"an isolate in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "a\u2066b"}, 422, "name"},
				{"a C1 control in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "a\u0085b"}, 422, "name"},
				{"DEL in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "a\u007fb"}, 422, "name"},
				{"a byte order mark in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "\uFEFFci"}, 422, "name"},
				{"a zero-width space in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "c\u200Bi"}, 422, "name"},
				{"a word joiner in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "c\u2060i"}, 422, "name"},
				{"a newline in a name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "c\ni"}, 422, "name"},
				{"an override in an app name", "POST", "/v1/apps", tokend.AppInput{Name: "shop\u202E"}, 422, "name"},
				{"NUL in an app name edit", "PATCH", "/v1/apps/" + app.ID, map[string]any{"name": "s\u0000"}, 422, "name"},
				// Descriptions: prose, but no NUL, other controls or overrides.
				{"NUL in a description", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Description: "a\u0000b"}, 422, "description"},
				{"a bell in a description", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Description: "a\u0007b"}, 422, "description"},
				{"a C1 control in a description", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Description: "a\u009bb"}, 422, "description"},
				{"an override in a description", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Description: "a\u202Db"}, 422, "description"},
				{"NUL in a description edit", "PATCH", tokPath, map[string]any{"description": "\u0000"}, 422, "description"},
				// Metadata, permissions, origins.
				{"NUL in a metadata value", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Metadata: map[string]any{"k": "a\u0000"}}, 422, "metadata.k"},
				{"NUL deep in metadata", "PATCH", tokPath, map[string]any{"metadata": map[string]any{"k": []any{1, map[string]any{"j": "\u0000"}}}}, 422, "metadata.k[1].j"},
				{"NUL in a metadata key", "PATCH", tokPath, map[string]any{"metadata": map[string]any{"a\u0000": 1}}, 422, "metadata"},
				{"an override in a metadata key", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Metadata: map[string]any{"\u202Ek": 1}}, 422, "metadata"},
				{"NUL in a permission", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Access: tokend.AccessCustom, Permissions: []string{"orders:read\u0000"}}, 422, "permissions[0]"},
				{"NUL in a catalog permission", "POST", "/v1/apps", tokend.AppInput{Name: "a", Permissions: []string{"a:b\u0000"}}, 422, "permissions[0]"},
				{"NUL in an origin", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Type: tokend.TypePlugin, AllowedOrigins: []string{"https://a.example\u0000"}}, 422, "allowed_origins[0]"},
				{"an override in an origin", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", Type: tokend.TypePlugin, AllowedOrigins: []string{"https://\u202Eelpmaxe.com"}}, 422, "allowed_origins[0]"},
				{"NUL in an app id", "POST", "/v1/tokens", tokend.TokenInput{AppID: "app_\u0000", Name: "x"}, 422, "app_id"},
				// JSON: invalid UTF-8 and duplicate names, anywhere.
				{"invalid UTF-8 in a name", "POST", "/v1/tokens", create(`,"description":"a` + "\xff" + `b"`), 422, "description"},
				{"invalid UTF-8 in a metadata key", "POST", "/v1/tokens", create(`,"metadata":{"` + "\xc3" + `":1}`), 422, "metadata"},
				{"invalid UTF-8 in an app name", "POST", "/v1/apps", `{"name":"` + "\xed\xa0\x80" + `"}`, 422, "name"},
				{"a lone surrogate escape", "POST", "/v1/apps", `{"name":"a\ud800"}`, 422, "name"},
				{"a duplicate name", "POST", "/v1/tokens", create(`,"name":"y"`), 422, "name"},
				{"a duplicate metadata key", "POST", "/v1/tokens", create(`,"metadata":{"k":1,"k":2}`), 422, "metadata.k"},
				{"a duplicate key in an edit", "PATCH", tokPath, `{"description":"a","description":"b"}`, 422, "description"},
				{"a duplicate key in a rotation", "POST", tokPath + "/rotate", `{"grace_period":"1h","grace_period":"0s"}`, 422, "grace_period"},
				// Query parameters and path ids: refused before a store sees them.
				{"NUL in q", "GET", "/v1/tokens?q=%00", nil, 422, "q"},
				{"invalid UTF-8 in q", "GET", "/v1/tokens?q=%ff", nil, 422, "q"},
				{"NUL in the app filter", "GET", "/v1/tokens?app_id=%00", nil, 422, "app_id"},
				{"invalid UTF-8 in the app filter", "GET", "/v1/tokens?app_id=app_%ff", nil, 422, "app_id"},
				{"NUL in the audit action", "GET", "/v1/audit?action=token.create%00", nil, 422, "action"},
				{"invalid UTF-8 in the audit token", "GET", "/v1/audit?token_id=tok_%fe", nil, 422, "token_id"},
				{"NUL in a token id", "GET", "/v1/tokens/tok_%00", nil, 404, ""},
				{"invalid UTF-8 in a token id", "GET", "/v1/tokens/tok_%ff", nil, 404, ""},
				{"NUL in an edited id", "PATCH", "/v1/tokens/%00", map[string]any{"name": "n"}, 404, ""},
				{"NUL in a disabled id", "POST", "/v1/tokens/%00/disable", nil, 404, ""},
				{"invalid UTF-8 in a rotated id", "POST", "/v1/tokens/tok_%c3/rotate", nil, 404, ""},
				{"NUL in a deleted id", "DELETE", "/v1/tokens/tok_%00", nil, 404, ""},
				{"NUL in a usage id", "GET", "/v1/tokens/tok_%00/usage", nil, 404, ""},
				{"invalid UTF-8 in an app id", "GET", "/v1/apps/app_%ff", nil, 404, ""},
				{"NUL in a revoke-all id", "POST", "/v1/apps/app_%00/revoke-all", nil, 404, ""},
				{"NUL in a deleted app id", "DELETE", "/v1/apps/%00", nil, 404, ""},
				// Owners: an id of visible ASCII, a name of one line.
				{"NUL in an owner id", "POST", "/v1/tokens", create(`,"owner_id":"a\u0000b"`), 422, "owner_id"},
				{"a space in an owner id", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerID: "acct 1"}, 422, "owner_id"},
				{"an owner id of 129", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerID: strings.Repeat("a", 129)}, 422, "owner_id"},
				{"invalid UTF-8 in an owner id", "POST", "/v1/tokens", create(`,"owner_id":"a` + "\xff" + `"`), 422, "owner_id"},
				{"a non-ASCII owner id", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerID: "zoë"}, 422, "owner_id"},
				{"an override in an owner name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerID: "a", OwnerName: "\u202Eevil"}, 422, "owner_name"},
				{"NUL in an owner name", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerID: "a", OwnerName: "a\u0000"}, 422, "owner_name"},
				{"invalid UTF-8 in an owner name", "POST", "/v1/tokens", create(`,"owner_id":"a","owner_name":"` + "\xc3" + `"`), 422, "owner_name"},
				{"an owner name of 201", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerID: "a", OwnerName: strings.Repeat("é", 201)}, 422, "owner_name"},
				{"an owner name of 10 MB", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerID: "a", OwnerName: strings.Repeat("a", 10<<20)}, 413, ""},
				{"an owner name without an owner", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", OwnerName: "Zoë"}, 422, "owner_name"},
				{"an admin token with an owner", "POST", "/v1/tokens", tokend.TokenInput{AppID: tokend.SystemAppID, Name: "x", OwnerID: "a"}, 422, "owner_id"},
				{"an owner given to a token without one", "PATCH", tokPath, map[string]any{"owner_id": "acct_1"}, 422, "owner_id"},
				{"an owner name given to a token without owner", "PATCH", tokPath, map[string]any{"owner_name": "Zoë"}, 422, "owner_name"},
				{"NUL in an owner name edit", "PATCH", tokPath, map[string]any{"owner_name": "\u0000"}, 422, "owner_name"},
				{"NUL in the owner filter", "GET", "/v1/tokens?owner_id=%00", nil, 422, "owner_id"},
				{"a space in the owner filter", "GET", "/v1/tokens?owner_id=a%20b", nil, 422, "owner_id"},
				{"invalid UTF-8 in the owner filter", "GET", "/v1/tokens?owner_id=%ff", nil, 422, "owner_id"},
				{"an owner filter of 129", "GET", "/v1/tokens?owner_id=" + strings.Repeat("a", 129), nil, 422, "owner_id"},
				{"NUL in a revoked owner", "POST", "/v1/apps/" + app.ID + "/owners/a%00/revoke-all", nil, 404, ""},
				{"invalid UTF-8 in a revoked owner", "POST", "/v1/apps/" + app.ID + "/owners/%ff/revoke-all", nil, 404, ""},
				{"a space in a revoked owner", "POST", "/v1/apps/" + app.ID + "/owners/a%20b/revoke-all", nil, 404, ""},
				{"a revoked owner of 129", "POST", "/v1/apps/" + app.ID + "/owners/" + strings.Repeat("a", 129) + "/revoke-all", nil, 404, ""},
				{"NUL in the app of a revoked owner", "POST", "/v1/apps/app_%00/owners/a/revoke-all", nil, 404, ""},
				{"a max of 0 tokens per owner", "POST", "/v1/apps", map[string]any{"name": "a", "max_tokens_per_owner": 0}, 422, "max_tokens_per_owner"},
				{"a max of 1000001 tokens per owner", "PATCH", "/v1/apps/" + app.ID, map[string]any{"max_tokens_per_owner": 1000001}, 422, "max_tokens_per_owner"},
				{"a word as max tokens per owner", "POST", "/v1/apps", map[string]any{"name": "a", "max_tokens_per_owner": "ten"}, 422, "max_tokens_per_owner"},
				{"an owner rate limit of 0", "POST", "/v1/apps", map[string]any{"name": "a", "owner_rate_limit": map[string]any{"limit": 0, "window": "1m"}}, 422, "owner_rate_limit.limit"},
				{"an owner rate window of NUL", "PATCH", "/v1/apps/" + app.ID, map[string]any{"owner_rate_limit": map[string]any{"limit": 1, "window": "1m\u0000"}}, 422, ""},
				// Cursors: only what a store gave out.
				{"a token cursor at the minimum int64", "GET", "/v1/tokens?cursor=" + cursorOf("t:-9223372036854775808:a"), nil, 422, "cursor"},
				{"a token cursor at the maximum int64", "GET", "/v1/tokens?cursor=" + cursorOf("t:9223372036854775807:tok_a"), nil, 422, "cursor"},
				{"a token cursor with NUL", "GET", "/v1/tokens?cursor=" + cursorOf("t:1:tok_\x00"), nil, 422, "cursor"},
				{"a token cursor with invalid UTF-8", "GET", "/v1/tokens?cursor=" + cursorOf("t:1:tok_\xff"), nil, 422, "cursor"},
				{"a token cursor with a plus sign", "GET", "/v1/tokens?cursor=" + cursorOf("t:+1:tok_a"), nil, 422, "cursor"},
				{"an app cursor out of range", "GET", "/v1/apps?cursor=" + cursorOf("a:-9223372036854775808:app_a"), nil, 422, "cursor"},
				{"an audit cursor of zero", "GET", "/v1/audit?cursor=" + cursorOf("e:0"), nil, 422, "cursor"},
				{"an audit cursor past int64", "GET", "/v1/audit?cursor=" + cursorOf("e:9223372036854775808"), nil, 422, "cursor"},
				{"an audit cursor on the events", "GET", "/v1/events?cursor=" + cursorOf("e:3"), nil, 422, "cursor"},
				{"an events cursor of zero", "GET", "/v1/events?cursor=" + cursorOf("n:0"), nil, 422, "cursor"},
				// Events: every parameter checked.
				{"an unknown event type", "GET", "/v1/events?type=token.exploded", nil, 422, "type"},
				{"NUL in the event type", "GET", "/v1/events?type=token.created%00", nil, 422, "type"},
				{"an override in the event type", "GET", "/v1/events?type=%E2%80%AEtoken.created", nil, 422, "type"},
				{"invalid UTF-8 in the events token", "GET", "/v1/events?token_id=tok_%fe", nil, 422, "token_id"},
				{"NUL in the events app", "GET", "/v1/events?app_id=app_%00", nil, 422, "app_id"},
				{"events since a word", "GET", "/v1/events?since=yesterday", nil, 422, "since"},
				{"events until before since", "GET", "/v1/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", nil, 422, "since"},
				{"events limit of 201", "GET", "/v1/events?limit=201", nil, 422, "limit"},
				{"an expiry notice of 30m", "POST", "/v1/apps", map[string]any{"name": "a", "expiry_notice": "30m"}, 422, "expiry_notice"},
				{"an expiry notice of 366d", "PATCH", "/v1/apps/" + app.ID, map[string]any{"expiry_notice": "366d"}, 422, "expiry_notice"},
				{"an expiry notice of a word", "PATCH", "/v1/apps/" + app.ID, map[string]any{"expiry_notice": "soon"}, 422, ""},
				{"a token cursor on the app list", "GET", "/v1/apps?cursor=" + cursorOf("t:1:tok_a"), nil, 422, "cursor"},
				// Expiry: one cap, 100 years, however it is given.
				{"expires_in of 2562047h", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", ExpiresIn: "2562047h"}, 422, "expires_in"},
				{"expires_in of 36501d", "POST", "/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "x", ExpiresIn: "36501d"}, 422, "expires_in"},
				{"expires_in of 106751d", "PATCH", tokPath, map[string]any{"expires_in": "106751d"}, 422, "expires_in"},
				{"expires_at in 101 years", "POST", "/v1/tokens", map[string]any{"app_id": app.ID, "name": "x", "expires_at": time.Now().AddDate(101, 0, 0).Format(time.RFC3339)}, 422, "expires_at"},
				{"an app lifetime of 36501d", "POST", "/v1/apps", map[string]any{"name": "a", "max_token_lifetime": "36501d"}, 422, "max_token_lifetime"},
				// The system prefix is reserved.
				{"the admin prefix", "POST", "/v1/apps", tokend.AppInput{Name: "a", TokenPrefix: "tkd_admin"}, 422, "token_prefix"},
				{"a prefix extending the admin prefix", "POST", "/v1/apps", tokend.AppInput{Name: "a", TokenPrefix: "tkd_admin_x"}, 422, "token_prefix"},
				{"a prefix glued to the admin prefix", "POST", "/v1/apps", tokend.AppInput{Name: "a", TokenPrefix: "tkd_adminx"}, 422, "token_prefix"},
				{"an app edited to the admin prefix", "PATCH", "/v1/apps/" + app.ID, map[string]any{"token_prefix": "tkd_admin"}, 422, "token_prefix"},
				// Verification: ip is an address.
				{"NUL in verify's ip", "POST", "/v1/verify", tokend.VerifyRequest{Token: sec, IP: "127.0.0.1\u0000"}, 422, "ip"},
				{"a word as verify's ip", "POST", "/v1/verify", tokend.VerifyRequest{Token: sec, IP: "localhost"}, 422, "ip"},
				{"a zone in verify's ip", "POST", "/v1/verify", tokend.VerifyRequest{Token: sec, IP: "fe80::1%eth0"}, 422, "ip"},
				{"a range as verify's ip", "POST", "/v1/verify", tokend.VerifyRequest{Token: sec, IP: "10.0.0.0/8"}, 422, "ip"},
				{"verify's ip beside permissions null", "POST", "/v1/verify", `{"token":"` + sec + `","ip":"x","permissions":null}`, 422, "ip"},
				{"invalid UTF-8 in verify's body", "POST", "/v1/verify", `{"token":"` + sec + `","origin":"` + "\xff" + `"}`, 422, "origin"},
				{"a duplicate token in verify's body", "POST", "/v1/verify", `{"token":"x","token":"` + sec + `"}`, 422, "token"},
			}
			before := h.snapshot(app.ID, tok.ID)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := h.do(c.method, c.path, h.owner, c.body)
					if r.status != c.status {
						t.Fatalf("status = %d, want %d: %s", r.status, c.status, r.body)
					}
					p := r.problem(t)
					if c.field != "" && !slices.Contains(fields(p), c.field) {
						t.Errorf("no error for %q: %s", c.field, r.body)
					}
				})
			}
			if after := h.snapshot(app.ID, tok.ID); after != before {
				t.Errorf("refused requests changed something:\nbefore %+v\nafter  %+v", before, after)
			}
			if got := h.verify(tokend.VerifyRequest{Token: sec, IP: "203.0.113.7"}).Code; got != tokend.CodeValid {
				t.Errorf("after the refused requests the token answers %s", got)
			}
		})
	}
}

// TestTextThatIsFine keeps the rules from refusing what people write.
func TestTextThatIsFine(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "Café ☕ 東京", TokenPrefix: "tkd_admi"})
	tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "déploiement — prod 🚀", Description: "line one\nline two\r\n\tindented, 👩‍💻 with a joiner",
		Metadata: map[string]any{"note": "multi\nline", "עברית": "مرحبا"}, ExpiresIn: "36500d"})
	if tok.Description != "line one\nline two\r\n\tindented, 👩‍💻 with a joiner" {
		t.Errorf("description = %q", tok.Description)
	}
	if r := h.do("POST", "/v1/verify", "", tokend.VerifyRequest{Token: "x", IP: "2001:db8::7"}); r.status != 200 {
		t.Errorf("verify with an IPv6 ip: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/v1/verify", "", tokend.VerifyRequest{Token: "x", IP: "::ffff:203.0.113.7"}); r.status != 200 {
		t.Errorf("verify with a mapped IPv4 ip: %d %s", r.status, r.body)
	}
}

// TestOneExpiryCapOneMessage: every way to give an expiry stops at the same
// 100 years with the same words.
func TestOneExpiryCapOneMessage(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	msgs := map[string]bool{}
	for _, c := range []struct {
		path  string
		body  any
		field string
	}{
		{"/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "a", ExpiresIn: "2562047h"}, "expires_in"},
		{"/v1/tokens", tokend.TokenInput{AppID: app.ID, Name: "b", ExpiresIn: "36501d"}, "expires_in"},
		{"/v1/tokens", map[string]any{"app_id": app.ID, "name": "c", "expires_at": time.Now().AddDate(100, 1, 0).Format(time.RFC3339)}, "expires_at"},
		{"/v1/apps", map[string]any{"name": "d", "max_token_lifetime": "36501d"}, "max_token_lifetime"},
	} {
		r := h.do("POST", c.path, h.owner, c.body)
		if r.status != 422 {
			t.Fatalf("%s %v: %d %s", c.path, c.body, r.status, r.body)
		}
		for _, f := range r.problem(t).Errors {
			if f.Field == c.field {
				msgs[f.Message] = true
			}
		}
	}
	if len(msgs) != 1 {
		t.Errorf("the cap speaks with %d messages: %v", len(msgs), msgs)
	}
	for _, ok := range []tokend.TokenInput{{AppID: app.ID, Name: "e", ExpiresIn: "36500d"}, {AppID: app.ID, Name: "f", ExpiresIn: "876000h"}} {
		if r := h.do("POST", "/v1/tokens", h.owner, ok); r.status != http.StatusCreated {
			t.Errorf("%s refused: %d %s", ok.ExpiresIn, r.status, r.body)
		}
	}
}

// TestEveryV1AnswerIsAProblem: unknown paths and wrong methods under /v1
// answer problem+json, even with a dashboard serving everything else.
func TestEveryV1AnswerIsAProblem(t *testing.T) {
	dashboard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>dashboard</html>", http.StatusForbidden)
	})
	h := newHarness(t, harnessOpts{extra: dashboard})
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/nope", 404, ""},
		{"GET", "/v1", 404, ""},
		{"GET", "/v1/", 404, ""},
		{"POST", "/v1/tokens/tok_x/nope", 404, ""},
		{"PUT", "/v1/tokens", 405, "GET, HEAD, POST"},
		{"DELETE", "/v1/tokens", 405, "GET, HEAD, POST"},
		{"POST", "/v1/tokens/tok_x", 405, "GET, HEAD, PATCH, DELETE"},
		{"GET", "/v1/verify", 405, "POST"},
		{"POST", "/v1/auth", 405, "GET, HEAD"},
		{"GET", "/v1/tokens/tok_x/rotate", 405, "POST"},
		{"PATCH", "/v1/apps/app_x/revoke-all", 405, "POST"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := h.do(c.method, c.path, h.owner, nil)
			if r.status != c.status {
				t.Fatalf("status = %d, want %d: %s", r.status, c.status, r.body)
			}
			r.problem(t)
			if got := r.header.Get("Allow"); got != c.allow {
				t.Errorf("Allow = %q, want %q", got, c.allow)
			}
		})
	}
	res, err := http.Get(h.srv.URL + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "dashboard") {
		t.Errorf("the dashboard no longer serves other paths: %d %s", res.StatusCode, body)
	}
}

// TestPermissionBeforeIdempotency: an admin token that may not manage
// another admin token learns nothing from "already so".
func TestPermissionBeforeIdempotency(t *testing.T) {
	h := newHarness(t)
	target, _ := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "owner2", Access: tokend.AccessCustom, Permissions: tokend.AdminPermissions, ExpiresIn: "unlimited"})
	_, weak := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "weak", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermTokensRead, tokend.PermTokensWrite, tokend.PermTokensRotate, tokend.PermTokensDelete}})
	path := "/v1/tokens/" + target.ID
	// The owner puts the target in every state the weak token then tries
	// to put it in again.
	for _, c := range []struct {
		name, setup, method, path string
	}{
		{"disable an already disabled token", "/disable", "POST", path + "/disable"},
		{"enable an already enabled token", "/enable", "POST", path + "/enable"},
		{"rotate", "", "POST", path + "/rotate"},
		{"delete", "", "DELETE", path},
		{"revoke an already revoked token", "/revoke", "POST", path + "/revoke"},
		{"disable a revoked token", "", "POST", path + "/disable"},
		{"revoke all admin tokens", "", "POST", "/v1/apps/" + tokend.SystemAppID + "/revoke-all"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != "" {
				if r := h.do("POST", path+c.setup, h.owner, nil); r.status != 200 {
					t.Fatalf("setup: %d %s", r.status, r.body)
				}
			}
			before := string(h.do("GET", path, h.owner, nil).body)
			r := h.do(c.method, c.path, weak, nil)
			if r.status != http.StatusForbidden {
				t.Fatalf("status = %d, want 403: %s", r.status, r.body)
			}
			r.problem(t)
			if after := string(h.do("GET", path, h.owner, nil).body); after != before {
				t.Errorf("a refused request changed the token:\n%s\n%s", before, after)
			}
		})
	}
}

// TestDeleteAndPatchWithOneETag: of a DELETE and a PATCH sent at once with
// the same If-Match, exactly one wins and the other answers 412, every
// round, on both stores.
func TestDeleteAndPatchWithOneETag(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			app := h.createApp(tokend.AppInput{Name: "shop"})
			for round := range 30 {
				var status [2]int
				var paths [2]string
				var etag string
				if round%2 == 0 {
					tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: fmt.Sprintf("t%d", round)})
					paths = [2]string{"/v1/tokens/" + tok.ID, "/v1/tokens/" + tok.ID}
					etag = h.do("GET", paths[0], h.owner, nil).header.Get("ETag")
				} else {
					a := h.createApp(tokend.AppInput{Name: fmt.Sprintf("a%d", round)})
					paths = [2]string{"/v1/apps/" + a.ID, "/v1/apps/" + a.ID}
					etag = h.do("GET", paths[0], h.owner, nil).header.Get("ETag")
				}
				var body any = map[string]any{"description": fmt.Sprint("round ", round)}
				if round%2 == 1 {
					body = map[string]any{"name": fmt.Sprint("renamed ", round)}
				}
				start := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					status[0] = h.do("DELETE", paths[0], h.owner, nil, "If-Match", etag).status
				}()
				go func() {
					defer wg.Done()
					<-start
					status[1] = h.do("PATCH", paths[1], h.owner, body, "If-Match", etag).status
				}()
				close(start)
				wg.Wait()
				won := 0
				for _, s := range status {
					switch {
					case s < 300:
						won++
					case s != http.StatusPreconditionFailed:
						t.Errorf("round %d: a loser answered %d, want 412", round, s)
					}
				}
				if won != 1 {
					t.Errorf("round %d: %d of DELETE and PATCH won (%v), want exactly 1", round, won, status)
				}
				gone := h.do("GET", paths[0], h.owner, nil).status == http.StatusNotFound
				if gone != (status[0] < 300) {
					t.Errorf("round %d: delete answered %d but the resource is gone=%v", round, status[0], gone)
				}
			}
		})
	}
}
