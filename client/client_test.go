package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

const adminSecret = "tkd_admin_4Lx0u1ZbT5uJ9mYtq2c3QeAbCdEfGhIjKlMnOpQrStUv_1a2B3c"

// seen is one request as the fake server received it.
type seen struct {
	Method  string
	Path    string // escaped
	Query   url.Values
	Header  http.Header
	Body    string
	HasBody bool
}

// fake is a stand-in tokend server: it records each request and answers
// what the test told it to.
type fake struct {
	srv *httptest.Server

	mu     sync.Mutex
	got    []seen
	status int
	header http.Header
	body   string
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.got = append(f.got, seen{
			Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(),
			Body: string(b), HasBody: len(b) > 0,
		})
		for k, v := range f.header {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" && f.body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// answer sets the next answers.
func (f *fake) answer(status int, body string, header ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body, f.header = status, body, http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		f.header.Set(header[i], header[i+1])
	}
	f.got = nil
}

func (f *fake) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) != 1 {
		t.Fatalf("server got %d requests, want 1", len(f.got))
	}
	return f.got[0]
}

func newClient(t *testing.T, f *fake, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithToken(adminSecret), client.WithUserAgent("client-test/1")}, opts...)
	c, err := client.New(f.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	t0       = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	exp      = t0.Add(30 * 24 * time.Hour)
	maxUses  = int64(10)
	lifetime = tokend.Duration(90 * 24 * time.Hour)

	sampleApp = tokend.App{
		ID: "app_1", Name: "Acme", TokenPrefix: "acme", Permissions: []string{"orders:read", "orders:write"},
		MaxTokenLifetime: &lifetime, CreatedAt: t0, UpdatedAt: t0, Version: 3,
	}
	sampleToken = tokend.Token{
		ID: "tok_1", AppID: "app_1", Name: "ci", Description: "deploys", Type: tokend.TypeStandard,
		Access: tokend.AccessCustom, Permissions: []string{"orders:read"}, ExpiresAt: &exp,
		AllowedIPs: []string{"10.0.0.0/8"}, AllowedOrigins: []string{},
		RateLimit: &tokend.RateLimit{Limit: 1000, Window: tokend.Duration(time.Hour)}, MaxUses: &maxUses,
		Metadata: map[string]any{"team": "infra"}, Status: tokend.StatusActive, Masked: "acme_…x7Qa",
		CreatedAt: t0, CreatedBy: "token:tok_admin", UpdatedAt: t0, Version: 7,
	}
	sampleEvent = tokend.Event{
		ID: 42, Time: t0, Actor: "token:tok_admin", ActorName: "owner", IP: "127.0.0.1",
		Action: tokend.ActionTokenRevoke, AppID: "app_1", TokenID: "tok_1", Details: map[string]any{"name": "ci"},
	}
)

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("invalid JSON %q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestMethods(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f)
	ctx := context.Background()
	name := "renamed"
	grant := []string{"orders:read", "orders:write"}
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name string
		call func() (any, error)
		// what the server must see
		method, path string
		query        url.Values // nil: none
		body         string     // "": no body
		ifMatch      string
		noAuth       bool
		// what it answers, and what the call must return
		status int
		answer string
		want   any
	}{
		{
			name:   "Apps lists with limit and cursor",
			call:   func() (any, error) { return c.Apps(ctx, client.ListOptions{Limit: 2, Cursor: "c1"}) },
			method: "GET", path: "/v1/apps", query: url.Values{"limit": {"2"}, "cursor": {"c1"}},
			status: 200, answer: js(t, tokend.Page[tokend.App]{Items: []tokend.App{sampleApp}, NextCursor: "c2"}),
			want: tokend.Page[tokend.App]{Items: []tokend.App{sampleApp}, NextCursor: "c2"},
		},
		{
			name: "CreateApp posts the input",
			call: func() (any, error) {
				return c.CreateApp(ctx, tokend.AppInput{Name: "Acme", TokenPrefix: "acme", Permissions: grant, MaxTokenLifetime: &lifetime})
			},
			method: "POST", path: "/v1/apps",
			body:   `{"name":"Acme","token_prefix":"acme","permissions":["orders:read","orders:write"],"max_token_lifetime":"90d"}`,
			status: 201, answer: js(t, sampleApp), want: sampleApp,
		},
		{
			name:   "App gets one",
			call:   func() (any, error) { return c.App(ctx, "app_1") },
			method: "GET", path: "/v1/apps/app_1",
			status: 200, answer: js(t, sampleApp), want: sampleApp,
		},
		{
			name: "UpdateApp sends null for a cleared field and If-Match",
			call: func() (any, error) {
				return c.UpdateApp(ctx, "app_1", tokend.AppPatch{Name: &name, Null: []string{"max_token_lifetime"}}, client.IfVersion(3))
			},
			method: "PATCH", path: "/v1/apps/app_1", ifMatch: `"3"`,
			body:   `{"name":"renamed","max_token_lifetime":null}`,
			status: 200, answer: js(t, sampleApp), want: sampleApp,
		},
		{
			name:   "UpdateApp without a version sends no If-Match",
			call:   func() (any, error) { return c.UpdateApp(ctx, "app_1", tokend.AppPatch{Permissions: &grant}) },
			method: "PATCH", path: "/v1/apps/app_1",
			body:   `{"permissions":["orders:read","orders:write"]}`,
			status: 200, answer: js(t, sampleApp), want: sampleApp,
		},
		{
			name:   "DeleteApp",
			call:   func() (any, error) { return nil, c.DeleteApp(ctx, "app_1", client.IfVersion(3)) },
			method: "DELETE", path: "/v1/apps/app_1", ifMatch: `"3"`,
			status: 204,
		},
		{
			name:   "RevokeAll answers the count",
			call:   func() (any, error) { return c.RevokeAll(ctx, "app_1") },
			method: "POST", path: "/v1/apps/app_1/revoke-all",
			status: 200, answer: `{"revoked":4}`, want: 4,
		},
		{
			name:   "RevokeOwnerTokens escapes the owner and answers the count",
			call:   func() (any, error) { return c.RevokeOwnerTokens(ctx, "app_1", "acct/42 x") },
			method: "POST", path: "/v1/apps/app_1/owners/acct%2F42%20x/revoke-all",
			status: 200, answer: `{"revoked":2}`, want: 2,
		},
		{
			name: "CreatePortalSession answers the link and its end",
			call: func() (any, error) {
				return c.CreatePortalSession(ctx, tokend.PortalInput{AppID: "app_1", OwnerID: "acct_42",
					User: tokend.PortalUser{ID: "u_7"}, ReturnURL: "https://app.example.com/settings"})
			},
			method: "POST", path: "/v1/portal/sessions",
			body:   `{"app_id":"app_1","owner_id":"acct_42","user":{"id":"u_7"},"return_url":"https://app.example.com/settings"}`,
			status: 201, answer: `{"url":"https://tokend.example.com/portal/open/x","expires_at":"2026-11-01T00:05:00Z"}`,
			want: tokend.PortalSessionAnswer{URL: "https://tokend.example.com/portal/open/x", ExpiresAt: since.Add(5 * time.Minute)},
		},
		{
			name: "Tokens lists with every filter",
			call: func() (any, error) {
				return c.Tokens(ctx, client.TokenListOptions{AppID: "app_1", OwnerID: "acct_42", Status: tokend.StatusActive, Type: tokend.TypePlugin, Query: "c i", Limit: 5, Cursor: "x"})
			},
			method: "GET", path: "/v1/tokens",
			query:  url.Values{"app_id": {"app_1"}, "owner_id": {"acct_42"}, "status": {"active"}, "type": {"plugin"}, "q": {"c i"}, "limit": {"5"}, "cursor": {"x"}},
			status: 200, answer: js(t, tokend.Page[tokend.Token]{Items: []tokend.Token{sampleToken}}),
			want: tokend.Page[tokend.Token]{Items: []tokend.Token{sampleToken}},
		},
		{
			name:   "Tokens without filters sends no query",
			call:   func() (any, error) { return c.Tokens(ctx, client.TokenListOptions{}) },
			method: "GET", path: "/v1/tokens",
			status: 200, answer: `{"items":[],"next_cursor":""}`, want: tokend.Page[tokend.Token]{Items: []tokend.Token{}},
		},
		{
			name: "CreateToken answers token and secret",
			call: func() (any, error) {
				tok, sec, err := c.CreateToken(ctx, tokend.TokenInput{
					AppID: "app_1", Name: "ci", Access: tokend.AccessCustom, Permissions: []string{"orders:read"},
					ExpiresIn: "30d", RateLimit: &tokend.RateLimit{Limit: 1000, Window: tokend.Duration(time.Hour)}, MaxUses: &maxUses,
				})
				return []any{tok, sec}, err
			},
			method: "POST", path: "/v1/tokens",
			body:   `{"app_id":"app_1","name":"ci","access":"custom","permissions":["orders:read"],"expires_in":"30d","rate_limit":{"limit":1000,"window":"1h"},"max_uses":10}`,
			status: 201, answer: `{"token":` + js(t, sampleToken) + `,"secret":"acme_secret_x7Qa"}`,
			want: []any{sampleToken, "acme_secret_x7Qa"},
		},
		{
			name:   "Token gets one",
			call:   func() (any, error) { return c.Token(ctx, "tok_1") },
			method: "GET", path: "/v1/tokens/tok_1",
			status: 200, answer: js(t, sampleToken), want: sampleToken,
		},
		{
			name:   "Token escapes the id",
			call:   func() (any, error) { return c.Token(ctx, "tok/1?x") },
			method: "GET", path: "/v1/tokens/tok%2F1%3Fx",
			status: 200, answer: js(t, sampleToken), want: sampleToken,
		},
		{
			name: "UpdateToken sends set fields and nulls",
			call: func() (any, error) {
				return c.UpdateToken(ctx, "tok_1", tokend.TokenPatch{Name: &name, Null: []string{"rate_limit", "max_uses", "expires_at"}}, client.IfVersion(7))
			},
			method: "PATCH", path: "/v1/tokens/tok_1", ifMatch: `"7"`,
			body:   `{"name":"renamed","rate_limit":null,"max_uses":null,"expires_at":null}`,
			status: 200, answer: js(t, sampleToken), want: sampleToken,
		},
		{
			name:   "DisableToken",
			call:   func() (any, error) { return c.DisableToken(ctx, "tok_1", client.IfVersion(7)) },
			method: "POST", path: "/v1/tokens/tok_1/disable", ifMatch: `"7"`,
			status: 200, answer: js(t, sampleToken), want: sampleToken,
		},
		{
			name:   "EnableToken",
			call:   func() (any, error) { return c.EnableToken(ctx, "tok_1") },
			method: "POST", path: "/v1/tokens/tok_1/enable",
			status: 200, answer: js(t, sampleToken), want: sampleToken,
		},
		{
			name:   "RevokeToken",
			call:   func() (any, error) { return c.RevokeToken(ctx, "tok_1") },
			method: "POST", path: "/v1/tokens/tok_1/revoke",
			status: 200, answer: js(t, sampleToken), want: sampleToken,
		},
		{
			name: "RotateToken with a grace period",
			call: func() (any, error) {
				tok, sec, err := c.RotateToken(ctx, "tok_1", tokend.Duration(time.Hour))
				return []any{tok, sec}, err
			},
			method: "POST", path: "/v1/tokens/tok_1/rotate", body: `{"grace_period":"1h"}`,
			status: 200, answer: `{"token":` + js(t, sampleToken) + `,"secret":"acme_new"}`,
			want: []any{sampleToken, "acme_new"},
		},
		{
			name: "RotateToken without grace sends no body",
			call: func() (any, error) {
				tok, sec, err := c.RotateToken(ctx, "tok_1", 0)
				return []any{tok, sec}, err
			},
			method: "POST", path: "/v1/tokens/tok_1/rotate",
			status: 200, answer: `{"token":` + js(t, sampleToken) + `,"secret":"acme_new"}`,
			want: []any{sampleToken, "acme_new"},
		},
		{
			name:   "DeleteToken",
			call:   func() (any, error) { return nil, c.DeleteToken(ctx, "tok_1") },
			method: "DELETE", path: "/v1/tokens/tok_1",
			status: 204,
		},
		{
			name:   "TokenUsage sends RFC 3339 bounds",
			call:   func() (any, error) { return c.TokenUsage(ctx, "tok_1", since, since.Add(48*time.Hour)) },
			method: "GET", path: "/v1/tokens/tok_1/usage",
			query:  url.Values{"from": {"2026-11-01T00:00:00Z"}, "to": {"2026-11-03T00:00:00Z"}},
			status: 200, answer: `{"items":[{"hour":"2026-11-01T05:00:00Z","code":"VALID","count":12}]}`,
			want: []tokend.UsageCount{{TokenID: "tok_1", Hour: since.Add(5 * time.Hour), Code: tokend.CodeValid, Count: 12}},
		},
		{
			name: "Events lists with every filter",
			call: func() (any, error) {
				return c.Events(ctx, client.EventListOptions{TokenID: "tok_1", AppID: "app_1", Action: "token.revoke", Since: since, Until: since.Add(time.Hour), Limit: 10, Cursor: "e"})
			},
			method: "GET", path: "/v1/audit",
			query: url.Values{"token_id": {"tok_1"}, "app_id": {"app_1"}, "action": {"token.revoke"},
				"since": {"2026-11-01T00:00:00Z"}, "until": {"2026-11-01T01:00:00Z"}, "limit": {"10"}, "cursor": {"e"}},
			status: 200, answer: js(t, tokend.Page[tokend.Event]{Items: []tokend.Event{sampleEvent}}),
			want: tokend.Page[tokend.Event]{Items: []tokend.Event{sampleEvent}},
		},
		{
			name: "Verify sends the question without the admin token",
			call: func() (any, error) {
				return c.Verify(ctx, tokend.VerifyRequest{Token: "acme_abc", Permissions: []string{"orders:read"}, IP: "10.1.2.3"})
			},
			method: "POST", path: "/v1/verify", noAuth: true,
			body:   `{"token":"acme_abc","permissions":["orders:read"],"ip":"10.1.2.3"}`,
			status: 200, answer: `{"valid":false,"code":"REVOKED","token":{"id":"tok_1","app_id":"app_1","name":"ci","type":"standard","access":"read_only"}}`,
			want: tokend.VerifyResult{Code: tokend.CodeRevoked, Token: &tokend.VerifiedToken{ID: "tok_1", AppID: "app_1", Name: "ci", Type: tokend.TypeStandard, Access: tokend.AccessReadOnly}},
		},
		{
			name:   "Healthy",
			call:   func() (any, error) { return nil, c.Healthy(ctx) },
			method: "GET", path: "/healthz", noAuth: true,
			status: 200, answer: `{"status":"ok"}`,
		},
		{
			name:   "Ready",
			call:   func() (any, error) { return nil, c.Ready(ctx) },
			method: "GET", path: "/readyz", noAuth: true,
			status: 200, answer: `{"status":"ok"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.answer(tt.status, tt.answer)
			got, err := tt.call()
			if err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("answer:\n got %#v\nwant %#v", got, tt.want)
			}
			r := f.last(t)
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			wantQuery := tt.query
			if wantQuery == nil {
				wantQuery = url.Values{}
			}
			if !reflect.DeepEqual(r.Query, wantQuery) {
				t.Errorf("query %v, want %v", r.Query, wantQuery)
			}
			switch {
			case tt.body == "" && r.HasBody:
				t.Errorf("body %s, want none", r.Body)
			case tt.body != "" && !sameJSON(t, r.Body, tt.body):
				t.Errorf("body %s, want %s", r.Body, tt.body)
			}
			if tt.body != "" && r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
			}
			if got := r.Header.Get("If-Match"); got != tt.ifMatch {
				t.Errorf("If-Match %q, want %q", got, tt.ifMatch)
			}
			wantAuth := "Bearer " + adminSecret
			if tt.noAuth {
				wantAuth = ""
			}
			if got := r.Header.Get("Authorization"); got != wantAuth {
				t.Errorf("Authorization %q, want %q", got, wantAuth)
			}
			if got := r.Header.Get("User-Agent"); got != "client-test/1" {
				t.Errorf("User-Agent %q", got)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f)
	ctx := context.Background()

	tests := []struct {
		name    string
		status  int
		body    string
		header  []string
		want    client.Error
		wantMsg string
		is      error
	}{
		{
			name:   "validation problem lists every field",
			status: 422,
			body: `{"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"the request has 2 invalid fields","code":"VALIDATION_FAILED",` +
				`"errors":[{"field":"name","message":"is required"},{"field":"rate_limit.window","message":"must be between 1s and 31d"}]}`,
			header: []string{"Content-Type", "application/problem+json"},
			want: client.Error{Status: 422, Code: "VALIDATION_FAILED", Type: "about:blank", Title: "Unprocessable Entity",
				Detail: "the request has 2 invalid fields", Fields: []tokend.FieldError{{Field: "name", Message: "is required"}, {Field: "rate_limit.window", Message: "must be between 1s and 31d"}}},
			wantMsg: "the request has 2 invalid fields: name: is required; rate_limit.window: must be between 1s and 31d",
		},
		{
			name:    "not found matches tokend.ErrNotFound",
			status:  404,
			body:    `{"title":"Not Found","status":404,"detail":"token not found","code":"NOT_FOUND"}`,
			header:  []string{"Content-Type", "application/problem+json; charset=utf-8"},
			want:    client.Error{Status: 404, Code: "NOT_FOUND", Title: "Not Found", Detail: "token not found"},
			wantMsg: "token not found",
			is:      tokend.ErrNotFound,
		},
		{
			name:    "stale version matches tokend.ErrStale",
			status:  412,
			body:    `{"title":"Precondition Failed","status":412,"detail":"the resource was changed since it was read; fetch it again","code":"PRECONDITION_FAILED"}`,
			header:  []string{"Content-Type", "application/problem+json"},
			want:    client.Error{Status: 412, Code: "PRECONDITION_FAILED", Title: "Precondition Failed", Detail: "the resource was changed since it was read; fetch it again"},
			wantMsg: "the resource was changed since it was read; fetch it again",
			is:      tokend.ErrStale,
		},
		{
			name:    "rate limited carries Retry-After",
			status:  429,
			body:    `{"title":"Too Many Requests","status":429,"detail":"slow down","code":"RATE_LIMITED"}`,
			header:  []string{"Content-Type", "application/problem+json", "Retry-After", "30"},
			want:    client.Error{Status: 429, Code: "RATE_LIMITED", Title: "Too Many Requests", Detail: "slow down", RetryAfter: 30 * time.Second},
			wantMsg: "slow down",
		},
		{
			name:    "a proxy's HTML page becomes a code from the status",
			status:  502,
			body:    `<html><body>Bad gateway</body></html>`,
			header:  []string{"Content-Type", "text/html"},
			want:    client.Error{Status: 502, Code: "UNAVAILABLE", Title: "Bad Gateway"},
			wantMsg: "Bad Gateway",
		},
		{
			name:    "unauthenticated without a body",
			status:  401,
			want:    client.Error{Status: 401, Code: "UNAUTHENTICATED", Title: "Unauthorized"},
			wantMsg: "Unauthorized",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.answer(tt.status, tt.body, tt.header...)
			_, err := c.Token(ctx, "tok_1")
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *client.Error", err, err)
			}
			if !reflect.DeepEqual(*e, tt.want) {
				t.Errorf("error:\n got %#v\nwant %#v", *e, tt.want)
			}
			if e.Error() != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", e.Error(), tt.wantMsg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
			if errors.Is(err, tokend.ErrConflict) {
				t.Errorf("errors.Is(err, ErrConflict) = true")
			}
			if strings.Contains(err.Error(), adminSecret) {
				t.Errorf("the error holds the admin secret")
			}
		})
	}
}

func TestSecretNotInDecodeError(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f)
	// A secret where a token object should be: the decode error must not
	// quote it.
	f.answer(201, `{"token":"acme_topsecret_value","secret":"acme_topsecret_value"}`)
	_, _, err := c.CreateToken(context.Background(), tokend.TokenInput{AppID: "a", Name: "n"})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error %q holds the secret", err)
	}
}

func TestAnswerSizeLimit(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f)
	f.answer(200, `{"items":[],"next_cursor":"`+strings.Repeat("x", client.MaxAnswerBytes)+`"}`)
	_, err := c.Tokens(context.Background(), client.TokenListOptions{})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v, want one about the size", err)
	}
}

func TestNew(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "http://u:p@host", "http://host/?q=1", "http://host/#f"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	if _, err := client.New("http://host", client.WithToken("a b")); err == nil {
		t.Error("a token with a space was accepted")
	}
	if _, err := client.New("http://host", client.WithHTTPClient(nil)); err == nil {
		t.Error("a nil http.Client was accepted")
	}
	c, err := client.New("https://tokens.example.com/tokend/")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL(); got != "https://tokens.example.com/tokend" {
		t.Errorf("BaseURL %q", got)
	}
}

func TestBasePath(t *testing.T) {
	f := newFake(t)
	c, err := client.New(f.srv.URL + "/tokend/")
	if err != nil {
		t.Fatal(err)
	}
	f.answer(200, js(t, sampleApp))
	if _, err := c.App(context.Background(), "app_1"); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t).Path; got != "/tokend/v1/apps/app_1" {
		t.Errorf("path %q", got)
	}
}

func TestInvalidIDs(t *testing.T) {
	c, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.Token(context.Background(), id); err == nil {
			t.Errorf("Token(%q) accepted", id)
		}
		if err := c.DeleteApp(context.Background(), id); err == nil {
			t.Errorf("DeleteApp(%q) accepted", id)
		}
		if _, err := c.RevokeOwnerTokens(context.Background(), "app_1", id); err == nil {
			t.Errorf("RevokeOwnerTokens(owner %q) accepted", id)
		}
	}
}

// TestRedirects checks that the admin token never leaves the configured
// server: a redirect to another origin is refused before it is followed.
func TestRedirects(t *testing.T) {
	var leaked sync.Map
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store("request", r.Header.Get("Authorization"))
		w.WriteHeader(200)
		io.WriteString(w, js(t, sampleApp))
	}))
	defer other.Close()

	f := newFake(t)
	c := newClient(t, f, client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	// 127.0.0.1 and localhost are different hosts to Go's redirect rules,
	// and both servers listen on loopback: the port alone differs.
	f.answer(http.StatusTemporaryRedirect, "", "Location", other.URL+"/v1/apps/app_1")
	_, err := c.App(context.Background(), "app_1")
	if err == nil || !strings.Contains(err.Error(), "refusing to follow a redirect") {
		t.Fatalf("error %v, want a refused redirect", err)
	}
	if _, ok := leaked.Load("request"); ok {
		t.Error("the other server was called")
	}

	// A redirect within the server is followed, with the token.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1/apps/app_1", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("GET /v1/apps/app_1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+adminSecret {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, js(t, sampleApp))
	})
	same := httptest.NewServer(mux)
	defer same.Close()
	c2, err := client.New(same.URL, client.WithToken(adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.App(context.Background(), "old"); err != nil {
		t.Errorf("same-origin redirect: %v", err)
	}
}

func TestAllTokensFollowsCursors(t *testing.T) {
	pages := map[string]string{
		"":   js(t, tokend.Page[tokend.Token]{Items: []tokend.Token{{ID: "tok_1"}, {ID: "tok_2"}}, NextCursor: "c2"}),
		"c2": js(t, tokend.Page[tokend.Token]{Items: []tokend.Token{{ID: "tok_3"}}, NextCursor: ""}),
	}
	var mu sync.Mutex
	var apps []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		apps = append(apps, r.URL.Query().Get("app_id"))
		mu.Unlock()
		io.WriteString(w, pages[r.URL.Query().Get("cursor")])
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithToken(adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for tok, err := range c.AllTokens(context.Background(), client.TokenListOptions{AppID: "app_1", Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
	if want := []string{"tok_1", "tok_2", "tok_3"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if want := []string{"app_1", "app_1"}; !reflect.DeepEqual(apps, want) {
		t.Errorf("app_id per request %v, want %v", apps, want)
	}
}

func TestAllStopsAtError(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f)
	f.answer(403, `{"title":"Forbidden","status":403,"detail":"this requires the audit:read permission","code":"FORBIDDEN"}`, "Content-Type", "application/problem+json")
	n := 0
	for _, err := range c.AllEvents(context.Background(), client.EventListOptions{}) {
		n++
		if err == nil || !strings.Contains(err.Error(), "audit:read") {
			t.Errorf("error %v", err)
		}
	}
	if n != 1 {
		t.Errorf("yielded %d times, want 1", n)
	}
}

// A tokend older than user_agent refuses it as an unexpected property (422
// naming it): Verify asks again without it, and leaves it out from then on.
func TestVerifyAgainstAServerWithoutUserAgent(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if strings.Contains(string(b), `"user_agent"`) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"title":"Unprocessable Entity","status":422,"code":"VALIDATION_FAILED","detail":"validation failed","errors":[{"field":"user_agent","message":"unexpected property"}]}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"valid":true,"code":"VALID"}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res, err := c.Verify(context.Background(), tokend.VerifyRequest{Token: "tkd_x", UserAgent: "curl/8.5"})
		if err != nil || !res.Valid {
			t.Fatalf("verify %d: %+v, %v", i, res, err)
		}
	}
	if len(bodies) != 3 || !strings.Contains(bodies[0], "user_agent") || strings.Contains(bodies[1]+bodies[2], "user_agent") {
		t.Errorf("bodies sent = %q; want one with user_agent, then two without", bodies)
	}
}
