package main

import (
	"context"
	"encoding/json"
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
)

const adminSecret = "tkd_admin_testsecretAbCdEfGhIjKlMnOpQrStUvWxYz0123456789_1a2B3c"

// request is one request the fake API received.
type request struct {
	Method, Path string
	Query        url.Values
	Auth         string
	IfMatch      string
	Body         string
}

// reply is a canned answer of the fake API.
type reply struct {
	status int
	body   string
}

// fakeAPI stands in for the tokend server: it answers each "METHOD /path"
// with its canned reply (404 problem otherwise) and records every request.
type fakeAPI struct {
	srv *httptest.Server

	mu      sync.Mutex
	replies map[string]reply
	reqs    []request
}

func newFakeAPI(t *testing.T, replies map[string]reply) *fakeAPI {
	t.Helper()
	a := &fakeAPI{replies: replies}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		key := r.Method + " " + r.URL.Path
		if cur := r.URL.Query().Get("cursor"); cur != "" {
			if _, ok := a.replies[key+"?cursor="+cur]; ok {
				key += "?cursor=" + cur
			}
		}
		a.mu.Lock()
		a.reqs = append(a.reqs, request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
			Auth: r.Header.Get("Authorization"), IfMatch: r.Header.Get("If-Match"), Body: string(b)})
		rep, ok := a.replies[key]
		a.mu.Unlock()
		if !ok {
			rep = reply{404, `{"type":"about:blank","title":"Not Found","status":404,"detail":"no such route in the fake","code":"NOT_FOUND"}`}
		}
		ct := "application/json"
		if rep.status >= 400 {
			ct = "application/problem+json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAPI) requests() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]request(nil), a.reqs...)
}

// only answers the one request the fake got.
func (a *fakeAPI) only(t *testing.T) request {
	t.Helper()
	rs := a.requests()
	if len(rs) != 1 {
		t.Fatalf("the server got %d requests, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}

// tty is a stdin that says it is a terminal.
type tty struct{ io.Reader }

func (tty) Terminal() bool { return true }

type result struct {
	stdout, stderr string
	err            error
}

// cli runs the tokend command line against the fake with the environment
// env (TOKEND_URL and TOKEND_TOKEN pointing at the fake unless env sets
// them, to "" for unset).
func cli(t *testing.T, a *fakeAPI, stdin io.Reader, env map[string]string, args ...string) result {
	t.Helper()
	vars := map[string]string{"TOKEND_URL": a.srv.URL, "TOKEND_TOKEN": adminSecret}
	for k, v := range env {
		vars[k] = v
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, args, func(k string) string { return vars[k] }, stdin, &out, &errOut)
	return result{out.String(), errOut.String(), err}
}

var (
	t0       = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	exp      = t0.Add(30 * 24 * time.Hour)
	used     = t0.Add(2 * time.Hour)
	maxUses  = int64(100)
	lifetime = tokend.Duration(90 * 24 * time.Hour)

	tok = tokend.Token{
		ID: "tok_1", AppID: "app_1", Name: "ci", Description: "deploys", Type: tokend.TypeStandard,
		Access: tokend.AccessCustom, Permissions: []string{"orders:read", "orders:write"}, ExpiresAt: &exp,
		AllowedIPs: []string{"10.0.0.0/8"}, AllowedOrigins: []string{},
		RateLimit: &tokend.RateLimit{Limit: 1000, Window: tokend.Duration(time.Hour)}, MaxUses: &maxUses, UseCount: 7,
		Metadata: map[string]any{"team": "infra"}, Status: tokend.StatusActive, Masked: "acme_…x7Qa",
		CreatedAt: t0, CreatedBy: "token:tok_admin", UpdatedAt: t0, LastUsedAt: &used, LastUsedIP: "10.1.2.3", Version: 4,
	}
	tok2 = tokend.Token{
		ID: "tok_2", AppID: "app_1", OwnerID: "acct_42", OwnerName: "Acme Ltd", Name: "dashboard plugin", Type: tokend.TypePlugin, Access: tokend.AccessReadOnly,
		Permissions: []string{}, AllowedIPs: []string{}, AllowedOrigins: []string{"https://app.example.com"},
		Status: tokend.StatusDisabled, Masked: "acme_…9zQe", CreatedAt: t0, UpdatedAt: t0, Version: 1,
	}
	app = tokend.App{
		ID: "app_1", Name: "Acme", TokenPrefix: "acme", Permissions: []string{"orders:read", "orders:write"},
		MaxTokenLifetime: &lifetime, LeakPolicy: tokend.LeakRevoke, RotatedSecretPolicy: tokend.RotatedNotify, CreatedAt: t0, UpdatedAt: t0, Version: 2,
	}
	event = tokend.Event{ID: 9, Time: t0, Actor: "token:tok_admin", ActorName: "owner", IP: "127.0.0.1",
		Action: tokend.ActionTokenRevoke, AppID: "app_1", TokenID: "tok_1", Details: map[string]any{}}
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// canon decodes JSON and writes every duration (rate_limit.window,
// grace_period, max_token_lifetime) in one form, so that "1h" and "1h0m0s"
// compare equal.
func canon(t *testing.T, s string) any {
	t.Helper()
	if s == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", s, err)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "window" || k == "grace_period" || k == "max_token_lifetime") {
					if d, err := tokend.ParseDuration(s); err == nil {
						x[k] = d.String()
						continue
					}
				}
				x[k] = walk(e)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	return walk(v)
}

func TestHumanOutput(t *testing.T) {
	issued := `{"token":` + mustJSON(t, tok) + `,"secret":"acme_s3cretvalue_x7Qa"}`
	a := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens/tok_1":                          {200, mustJSON(t, tok)},
		"GET /v1/tokens":                                {200, mustJSON(t, tokend.Page[tokend.Token]{Items: []tokend.Token{tok, tok2}, NextCursor: "cur2"})},
		"POST /v1/tokens":                               {201, issued},
		"POST /v1/tokens/tok_1/rotate":                  {200, issued},
		"POST /v1/tokens/tok_1/revoke":                  {200, mustJSON(t, func() tokend.Token { x := tok; x.Status = tokend.StatusRevoked; return x }())},
		"GET /v1/tokens/tok_1/usage":                    {200, `{"items":[{"hour":"2026-11-23T09:00:00Z","code":"VALID","count":12},{"hour":"2026-11-23T09:00:00Z","code":"REVOKED","count":1}]}`},
		"GET /v1/apps":                                  {200, mustJSON(t, tokend.Page[tokend.App]{Items: []tokend.App{app}})},
		"GET /v1/apps/app_1":                            {200, mustJSON(t, app)},
		"POST /v1/apps/app_1/revoke-all":                {200, `{"revoked":3}`},
		"POST /v1/apps/app_1/owners/acct/42/revoke-all": {200, `{"revoked":1}`},
		"GET /v1/audit":                                 {200, mustJSON(t, tokend.Page[tokend.Event]{Items: []tokend.Event{event}})},
	})
	tests := []struct {
		name       string
		args       []string
		wantOut    string
		wantErrOut string
	}{
		{
			name: "token get lists every field",
			args: []string{"token", "get", "tok_1"},
			wantOut: `id:              tok_1
name:            ci
app:             app_1
owner:           -
description:     deploys
status:          active
type:            standard
access:          custom
permissions:     orders:read, orders:write
expires:         2026-12-23 09:00 UTC
allowed ips:     10.0.0.0/8
allowed origins: -
rate limit:      1000 per 1h
uses:            7 of at most 100
metadata:        {"team":"infra"}
secret:          acme_…x7Qa
created:         2026-11-23 09:00 UTC by token:tok_admin
updated:         2026-11-23 09:00 UTC
last used:       2026-11-23 11:00 UTC from 10.1.2.3
version:         4
`,
		},
		{
			name: "token list is a table with app names beside ids, and a hint for the next page",
			args: []string{"token", "list"},
			wantOut: `ID     NAME              APP           OWNER               TYPE      ACCESS     STATUS    EXPIRES               LAST USED
tok_1  ci                Acme (app_1)  -                   standard  custom     active    2026-12-23 09:00 UTC  2026-11-23 11:00 UTC
tok_2  dashboard plugin  Acme (app_1)  Acme Ltd (acct_42)  plugin    read_only  disabled  never                 never
`,
			wantErrOut: "More results: run again with --cursor cur2, or with --all.\n",
		},
		{
			name: "token create shows the secret once, with a warning",
			args: []string{"token", "create", "--app", "app_1", "--name", "ci"},
			wantOut: `Created token tok_1 (ci) of app app_1.

  acme_s3cretvalue_x7Qa

Copy this secret now: it will not be shown again.
`,
		},
		{
			name: "token rotate shows the new secret once",
			args: []string{"token", "rotate", "tok_1"},
			wantOut: `Rotated token tok_1 (ci) of app app_1.

  acme_s3cretvalue_x7Qa

Copy this secret now: it will not be shown again.
`,
		},
		{
			name:    "token revoke says what happened",
			args:    []string{"token", "revoke", "tok_1"},
			wantOut: "Revoked token tok_1 (ci); its status is now revoked.\n",
		},
		{
			name: "token usage is a table",
			args: []string{"token", "usage", "tok_1"},
			wantOut: `HOUR                  CODE     COUNT
2026-11-23 09:00 UTC  VALID    12
2026-11-23 09:00 UTC  REVOKED  1
`,
		},
		{
			name: "app list is a table",
			args: []string{"app", "list"},
			wantOut: `ID     NAME  PREFIX  PERMISSIONS  MAX LIFETIME  CREATED
app_1  Acme  acme    2            90d           2026-11-23 09:00 UTC
`,
		},
		{
			name: "app get lists every field",
			args: []string{"app", "get", "app_1"},
			wantOut: `id:                 app_1
name:               Acme
token prefix:       acme
permissions:        orders:read, orders:write
max token lifetime: 90d
disable unused:     never
expiry notices:     7d and 1d before expiry
leak policy:        revoke
old secret reuse:   notify
tokens per owner:   unlimited
owner rate limit:   -
created:            2026-11-23 09:00 UTC
updated:            2026-11-23 09:00 UTC
version:            2
`,
		},
		{
			name:    "app revoke-all counts",
			args:    []string{"app", "revoke-all", "app_1", "--yes"},
			wantOut: "Revoked 3 tokens of app app_1.\n",
		},
		{
			name:    "app revoke-owner counts",
			args:    []string{"app", "revoke-owner", "app_1", "acct/42", "--yes"},
			wantOut: "Revoked 1 token of owner \"acct/42\" in app app_1.\n",
		},
		{
			name: "audit is a table, its times as the other tables write them",
			args: []string{"audit"},
			wantOut: `TIME                  ACTOR            ACTION        APP    TOKEN  IP
2026-11-23 09:00 UTC  token:tok_admin  token.revoke  app_1  tok_1  127.0.0.1
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, a, nil, nil, tt.args...)
			if r.err != nil {
				t.Fatalf("error: %v", r.err)
			}
			if r.stdout != tt.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.wantOut)
			}
			if r.stderr != tt.wantErrOut {
				t.Errorf("stderr:\n%q\nwant:\n%q", r.stderr, tt.wantErrOut)
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	issued := `{"token":` + mustJSON(t, tok) + `,"secret":"acme_s3cretvalue_x7Qa"}`
	tokens := mustJSON(t, tokend.Page[tokend.Token]{Items: []tokend.Token{tok, tok2}, NextCursor: "cur2"})
	apps := mustJSON(t, tokend.Page[tokend.App]{Items: []tokend.App{app}})
	audit := mustJSON(t, tokend.Page[tokend.Event]{Items: []tokend.Event{event}})
	a := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens/tok_1":           {200, mustJSON(t, tok)},
		"GET /v1/tokens":                 {200, tokens},
		"POST /v1/tokens":                {201, issued},
		"POST /v1/tokens/tok_1/rotate":   {200, issued},
		"POST /v1/tokens/tok_1/disable":  {200, mustJSON(t, tok)},
		"GET /v1/apps":                   {200, apps},
		"GET /v1/apps/app_1":             {200, mustJSON(t, app)},
		"POST /v1/apps/app_1/revoke-all": {200, `{"revoked":3}`},
		"GET /v1/audit":                  {200, audit},
	})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"token get", []string{"token", "get", "tok_1", "--json"}, mustJSON(t, tok)},
		{"token list", []string{"token", "list", "--json"}, tokens},
		{"token create prints token and secret", []string{"token", "create", "--app", "app_1", "--name", "ci", "--json"}, issued},
		{"token rotate prints token and secret", []string{"token", "rotate", "tok_1", "--json"}, issued},
		{"token disable", []string{"token", "disable", "tok_1", "--json"}, mustJSON(t, tok)},
		{"app list", []string{"app", "list", "--json"}, apps},
		{"app get", []string{"app", "get", "app_1", "--json"}, mustJSON(t, app)},
		{"app revoke-all", []string{"app", "revoke-all", "app_1", "--yes", "--json"}, `{"revoked":3}`},
		{"audit", []string{"audit", "--json"}, audit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, a, nil, nil, tt.args...)
			if r.err != nil {
				t.Fatalf("error: %v", r.err)
			}
			if !reflect.DeepEqual(canon(t, r.stdout), canon(t, tt.want)) {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.want)
			}
			if r.stderr != "" {
				t.Errorf("stderr: %q", r.stderr)
			}
		})
	}
}

// TestRequests checks how flags become requests: paths, queries, bodies
// and If-Match.
func TestRequests(t *testing.T) {
	issued := `{"token":` + mustJSON(t, tok) + `,"secret":"acme_s"}`
	a := newFakeAPI(t, map[string]reply{
		"POST /v1/tokens":              {201, issued},
		"GET /v1/tokens":               {200, `{"items":[],"next_cursor":""}`},
		"PATCH /v1/tokens/tok_1":       {200, mustJSON(t, tok)},
		"POST /v1/tokens/tok_1/rotate": {200, issued},
		"POST /v1/tokens/tok_1/enable": {200, mustJSON(t, tok)},
		"DELETE /v1/tokens/tok_1":      {204, ""},
		"GET /v1/tokens/tok_1/usage":   {200, `{"items":[]}`},
		"POST /v1/apps":                {201, mustJSON(t, app)},
		"PATCH /v1/apps/app_1":         {200, mustJSON(t, app)},
		"DELETE /v1/apps/app_1":        {204, ""},
		"GET /v1/apps":                 {200, `{"items":[],"next_cursor":""}`},
		"GET /v1/audit":                {200, `{"items":[],"next_cursor":""}`},
	})
	checkRequests(t, a, []requestCase{
		{
			name:   "token create with the least",
			args:   []string{"token", "create", "--app", "app_1", "--name", "ci"},
			method: "POST", path: "/v1/tokens",
			body: `{"app_id":"app_1","name":"ci"}`,
		},
		{
			name:   "token create for an owner",
			args:   []string{"token", "create", "--app", "app_1", "--name", "ci", "--owner", "acct_42", "--owner-name", "Acme Ltd"},
			method: "POST", path: "/v1/tokens",
			body: `{"app_id":"app_1","owner_id":"acct_42","owner_name":"Acme Ltd","name":"ci"}`,
		},
		{
			name:   "token list by owner",
			args:   []string{"token", "list", "--owner", "acct_42"},
			method: "GET", path: "/v1/tokens", query: url.Values{"owner_id": {"acct_42"}},
		},
		{
			name:   "token edit of the owner name",
			args:   []string{"token", "edit", "tok_1", "--owner-name", "Acme"},
			method: "PATCH", path: "/v1/tokens/tok_1",
			body: `{"owner_name":"Acme"}`,
		},
		{
			name:   "app create with owner limits",
			args:   []string{"app", "create", "--name", "Acme", "--max-tokens-per-owner", "10", "--owner-rate-limit", "100/1m"},
			method: "POST", path: "/v1/apps",
			body: `{"name":"Acme","max_tokens_per_owner":10,"owner_rate_limit":{"limit":100,"window":"1m"}}`,
		},
		{
			name:   "app edit removes the owner limits",
			args:   []string{"app", "edit", "app_1", "--no-max-tokens-per-owner", "--no-owner-rate-limit"},
			method: "PATCH", path: "/v1/apps/app_1",
			body: `{"max_tokens_per_owner":null,"owner_rate_limit":null}`,
		},
		{
			name: "app create with the customer portal's branding",
			args: []string{"app", "create", "--name", "Acme", "--portal-name", "Acme Cloud", "--portal-logo", "https://cdn.example.com/l.png",
				"--portal-accent", "#0a7d55", "--portal-support", "https://help.example.com/", "--portal-frame-ancestor", "https://app.example.com"},
			method: "POST", path: "/v1/apps",
			body: `{"name":"Acme","portal":{"product_name":"Acme Cloud","logo_url":"https://cdn.example.com/l.png","accent_color":"#0a7d55",
				"support_url":"https://help.example.com/","frame_ancestors":["https://app.example.com"]}}`,
		},
		{
			name:   "app edit restores the portal's defaults",
			args:   []string{"app", "edit", "app_1", "--no-portal"},
			method: "PATCH", path: "/v1/apps/app_1",
			body: `{"portal":null}`,
		},
		{
			name: "token create with every flag",
			args: []string{"token", "create", "--app", "app_1", "--name", "ci", "--description", "deploys",
				"--type", "plugin", "--access", "full_access", "--expires-in", "90d",
				"--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32", "--allow-origin", "https://app.example.com",
				"--rate-limit", "1000/1h", "--max-uses", "50", "--metadata", `{"team":"infra","n":2}`},
			method: "POST", path: "/v1/tokens",
			body: `{"app_id":"app_1","name":"ci","description":"deploys","type":"plugin","access":"full_access","expires_in":"90d",
				"allowed_ips":["10.0.0.0/8","2001:db8::/32"],"allowed_origins":["https://app.example.com"],
				"rate_limit":{"limit":1000,"window":"1h"},"max_uses":50,"metadata":{"team":"infra","n":2}}`,
		},
		{
			name:   "token create: --permission implies custom access",
			args:   []string{"token", "create", "--app", "app_1", "--name", "ci", "--permission", "orders:read", "--permission", "orders:write"},
			method: "POST", path: "/v1/tokens",
			body: `{"app_id":"app_1","name":"ci","access":"custom","permissions":["orders:read","orders:write"]}`,
		},
		{
			name: "token create: an owner-scoped admin token",
			args: []string{"token", "create", "--app", "app_system", "--name", "backend", "--permission", "tokens:read",
				"--scope-owner", "acct_42", "--scope-app", "app_1", "--scope-app", "app_2"},
			method: "POST", path: "/v1/tokens",
			body: `{"app_id":"app_system","name":"backend","access":"custom","permissions":["tokens:read"],"scope":{"owner_id":"acct_42","app_ids":["app_1","app_2"]}}`,
		},
		{
			name:   "token create: --scope-owner alone",
			args:   []string{"token", "create", "--app", "app_system", "--name", "backend", "--scope-owner", "acct_42"},
			method: "POST", path: "/v1/tokens",
			body: `{"app_id":"app_system","name":"backend","scope":{"owner_id":"acct_42"}}`,
		},
		{
			name:   "token create: --rate-limit without a number of windows, --expires-at",
			args:   []string{"token", "create", "--app", "app_1", "--name", "ci", "--rate-limit", "60/m", "--expires-at", "2027-01-31T12:00:00Z"},
			method: "POST", path: "/v1/tokens",
			body: `{"app_id":"app_1","name":"ci","rate_limit":{"limit":60,"window":"1m"},"expires_at":"2027-01-31T12:00:00Z"}`,
		},
		{
			name:   "token list filters",
			args:   []string{"token", "list", "--app", "app_1", "--status", "active", "--type", "standard", "--q", "ci", "--limit", "20", "--cursor", "abc"},
			method: "GET", path: "/v1/tokens",
			query: url.Values{"app_id": {"app_1"}, "status": {"active"}, "type": {"standard"}, "q": {"ci"}, "limit": {"20"}, "cursor": {"abc"}},
		},
		{
			name:   "token edit sends only the flags given",
			args:   []string{"token", "edit", "tok_1", "--name", "deploy", "--rate-limit", "500/1m"},
			method: "PATCH", path: "/v1/tokens/tok_1",
			body: `{"name":"deploy","rate_limit":{"limit":500,"window":"1m"}}`,
		},
		{
			name: "token edit clears with nulls",
			args: []string{"token", "edit", "tok_1", "--no-expiry", "--clear-rate-limit", "--clear-max-uses",
				"--clear-allow-ips", "--clear-allow-origins", "--clear-metadata", "--if-version", "4"},
			method: "PATCH", path: "/v1/tokens/tok_1", ifMatch: `"4"`,
			body: `{"expires_at":null,"rate_limit":null,"max_uses":null,"allowed_ips":null,"allowed_origins":null,"metadata":null}`,
		},
		{
			name:   "token edit replaces lists and sets an empty description",
			args:   []string{"token", "edit", "tok_1", "--permission", "orders:read", "--allow-ip", "10.0.0.1", "--description", "", "--access", "custom", "--expires-in", "unlimited"},
			method: "PATCH", path: "/v1/tokens/tok_1",
			body: `{"permissions":["orders:read"],"allowed_ips":["10.0.0.1"],"description":"","access":"custom","expires_in":"unlimited"}`,
		},
		{
			name:   "token rotate with a grace period",
			args:   []string{"token", "rotate", "tok_1", "--grace", "1h"},
			method: "POST", path: "/v1/tokens/tok_1/rotate",
			body: `{"grace_period":"1h"}`,
		},
		{
			name:   "token rotate without one sends no body",
			args:   []string{"token", "rotate", "tok_1", "--if-version", "4"},
			method: "POST", path: "/v1/tokens/tok_1/rotate", ifMatch: `"4"`,
		},
		{
			name:   "token enable with a version",
			args:   []string{"token", "enable", "tok_1", "--if-version", "9"},
			method: "POST", path: "/v1/tokens/tok_1/enable", ifMatch: `"9"`,
		},
		{
			name:   "token delete with --yes",
			args:   []string{"token", "delete", "tok_1", "--yes"},
			method: "DELETE", path: "/v1/tokens/tok_1",
		},
		{
			name:   "token usage bounds",
			args:   []string{"token", "usage", "tok_1", "--from", "2026-11-01", "--to", "2026-11-02T00:00:00Z"},
			method: "GET", path: "/v1/tokens/tok_1/usage",
			query: url.Values{"from": {"2026-11-01T00:00:00Z"}, "to": {"2026-11-02T00:00:00Z"}},
		},
		{
			name:   "app create",
			args:   []string{"app", "create", "--name", "Acme", "--prefix", "acme", "--permission", "orders:read,orders:write", "--max-lifetime", "90d"},
			method: "POST", path: "/v1/apps",
			body: `{"name":"Acme","token_prefix":"acme","permissions":["orders:read","orders:write"],"max_token_lifetime":"90d"}`,
		},
		{
			name:   "app edit clears the lifetime limit",
			args:   []string{"app", "edit", "app_1", "--name", "Shop", "--no-max-lifetime", "--if-version", "2"},
			method: "PATCH", path: "/v1/apps/app_1", ifMatch: `"2"`,
			body: `{"name":"Shop","max_token_lifetime":null}`,
		},
		{
			name:   "app create with a stale-token policy",
			args:   []string{"app", "create", "--name", "Acme", "--disable-unused-after", "90d"},
			method: "POST", path: "/v1/apps",
			body: `{"name":"Acme","disable_unused_after":"90d"}`,
		},
		{
			name:   "app edit sets and removes the stale-token policy",
			args:   []string{"app", "edit", "app_1", "--disable-unused-after", "30d"},
			method: "PATCH", path: "/v1/apps/app_1",
			body: `{"disable_unused_after":"30d"}`,
		},
		{
			name:   "app create with the rotated-secret policy",
			args:   []string{"app", "create", "--name", "Acme", "--rotated-secret-policy", "disable"},
			method: "POST", path: "/v1/apps",
			body: `{"name":"Acme","rotated_secret_policy":"disable"}`,
		},
		{
			name:   "app edit sets the rotated-secret policy",
			args:   []string{"app", "edit", "app_1", "--rotated-secret-policy", "notify"},
			method: "PATCH", path: "/v1/apps/app_1",
			body: `{"rotated_secret_policy":"notify"}`,
		},
		{
			name:   "app edit removes the stale-token policy",
			args:   []string{"app", "edit", "app_1", "--no-disable-unused"},
			method: "PATCH", path: "/v1/apps/app_1",
			body: `{"disable_unused_after":null}`,
		},
		{
			name:   "token list stale, sorted",
			args:   []string{"token", "list", "--unused-for", "30d", "--sort", "last_used_at", "--order", "asc"},
			method: "GET", path: "/v1/tokens",
			query: url.Values{"unused_for": {"30d"}, "sort": {"last_used_at"}, "order": {"asc"}},
		},
		{
			name:   "app edit empties the catalog",
			args:   []string{"app", "edit", "app_1", "--clear-permissions"},
			method: "PATCH", path: "/v1/apps/app_1",
			body: `{"permissions":[]}`,
		},
		{
			name:   "app delete with --yes",
			args:   []string{"app", "delete", "app_1", "-y"},
			method: "DELETE", path: "/v1/apps/app_1",
		},
		{
			name:   "app list pages",
			args:   []string{"app", "list", "--limit", "5", "--cursor", "c"},
			method: "GET", path: "/v1/apps",
			query: url.Values{"limit": {"5"}, "cursor": {"c"}},
		},
		{
			name: "audit filters",
			args: []string{"audit", "--token-id", "tok_1", "--app", "app_1", "--action", "token.rotate",
				"--since", "2026-11-01T00:00:00Z", "--until", "2026-11-02", "--limit", "10"},
			method: "GET", path: "/v1/audit",
			query: url.Values{"token_id": {"tok_1"}, "app_id": {"app_1"}, "action": {"token.rotate"},
				"since": {"2026-11-01T00:00:00Z"}, "until": {"2026-11-02T00:00:00Z"}, "limit": {"10"}},
		},
	})
}

// requestCase is a command line and the one request it must make.
type requestCase struct {
	name         string
	args         []string
	method, path string
	query        url.Values
	body         string
	ifMatch      string
}

// checkRequests runs each case's command against a and checks the one
// request it made: method, path, query, body, If-Match and the admin
// token.
func checkRequests(t *testing.T, a *fakeAPI, tests []requestCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.mu.Lock()
			a.reqs = nil
			a.mu.Unlock()
			r := cli(t, a, nil, nil, tt.args...)
			if r.err != nil {
				t.Fatalf("error: %v", r.err)
			}
			got := a.only(t)
			if got.Method != tt.method || got.Path != tt.path {
				t.Errorf("request %s %s, want %s %s", got.Method, got.Path, tt.method, tt.path)
			}
			q := tt.query
			if q == nil {
				q = url.Values{}
			}
			if !reflect.DeepEqual(got.Query, q) {
				t.Errorf("query %v, want %v", got.Query, q)
			}
			if !reflect.DeepEqual(canon(t, got.Body), canon(t, tt.body)) {
				t.Errorf("body:\n%s\nwant:\n%s", got.Body, tt.body)
			}
			if got.IfMatch != tt.ifMatch {
				t.Errorf("If-Match %q, want %q", got.IfMatch, tt.ifMatch)
			}
			if got.Auth != "Bearer "+adminSecret {
				t.Errorf("Authorization %q", got.Auth)
			}
		})
	}
}

func TestConfirmation(t *testing.T) {
	a := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens/tok_1":           {200, mustJSON(t, tok)},
		"DELETE /v1/tokens/tok_1":        {204, ""},
		"GET /v1/apps/app_1":             {200, mustJSON(t, app)},
		"DELETE /v1/apps/app_1":          {204, ""},
		"POST /v1/apps/app_1/revoke-all": {200, `{"revoked":2}`},
	})
	tests := []struct {
		name       string
		args       []string
		stdin      io.Reader
		wantErr    string
		wantPrompt string
		wantCalls  []string // METHOD /path
	}{
		{
			name:    "token delete needs --yes without a terminal",
			args:    []string{"token", "delete", "tok_1"},
			stdin:   strings.NewReader("y\n"),
			wantErr: "refusing to delete token tok_1 without confirmation: stdin is not a terminal; pass --yes",
		},
		{
			name:       "token delete asks at a terminal and goes on with yes",
			args:       []string{"token", "delete", "tok_1"},
			stdin:      tty{strings.NewReader("yes\n")},
			wantPrompt: "Delete token tok_1 (ci) of app app_1? This cannot be undone. [y/N] ",
			wantCalls:  []string{"GET /v1/tokens/tok_1", "DELETE /v1/tokens/tok_1"},
		},
		{
			name:       "token delete stops on anything but yes",
			args:       []string{"token", "delete", "tok_1"},
			stdin:      tty{strings.NewReader("n\n")},
			wantErr:    "aborted: nothing was changed",
			wantPrompt: "Delete token tok_1 (ci) of app app_1? This cannot be undone. [y/N] ",
			wantCalls:  []string{"GET /v1/tokens/tok_1"},
		},
		{
			name:       "token delete stops at the end of input",
			args:       []string{"token", "delete", "tok_1"},
			stdin:      tty{strings.NewReader("")},
			wantErr:    "aborted: nothing was changed (no answer was read; pass --yes to confirm without a prompt)",
			wantPrompt: "Delete token tok_1 (ci) of app app_1? This cannot be undone. [y/N] \n",
			wantCalls:  []string{"GET /v1/tokens/tok_1"},
		},
		{
			name:    "app revoke-all needs --yes without a terminal",
			args:    []string{"app", "revoke-all", "app_1"},
			wantErr: "refusing to revoke every token of app app_1 without confirmation: stdin is not a terminal; pass --yes",
		},
		{
			name:       "app revoke-all asks at a terminal",
			args:       []string{"app", "revoke-all", "app_1"},
			stdin:      tty{strings.NewReader("y\n")},
			wantPrompt: "Revoke every token of app app_1 (Acme)? This cannot be undone. [y/N] ",
			wantCalls:  []string{"GET /v1/apps/app_1", "POST /v1/apps/app_1/revoke-all"},
		},
		{
			name:    "app delete needs --yes without a terminal",
			args:    []string{"app", "delete", "app_1"},
			wantErr: "refusing to delete app app_1 and all of its tokens without confirmation: stdin is not a terminal; pass --yes",
		},
		{
			name:       "app delete asks at a terminal",
			args:       []string{"app", "delete", "app_1"},
			stdin:      tty{strings.NewReader("y\n")},
			wantPrompt: "Delete app app_1 (Acme) and all of its tokens? This cannot be undone. [y/N] ",
			wantCalls:  []string{"GET /v1/apps/app_1", "DELETE /v1/apps/app_1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.mu.Lock()
			a.reqs = nil
			a.mu.Unlock()
			r := cli(t, a, tt.stdin, nil, tt.args...)
			if tt.wantErr == "" && r.err != nil {
				t.Fatalf("error: %v", r.err)
			}
			if tt.wantErr != "" && (r.err == nil || r.err.Error() != tt.wantErr) {
				t.Fatalf("error %v, want %q", r.err, tt.wantErr)
			}
			if r.stderr != tt.wantPrompt {
				t.Errorf("stderr %q, want %q", r.stderr, tt.wantPrompt)
			}
			var calls []string
			for _, q := range a.requests() {
				calls = append(calls, q.Method+" "+q.Path)
			}
			if !reflect.DeepEqual(calls, tt.wantCalls) {
				t.Errorf("calls %v, want %v", calls, tt.wantCalls)
			}
		})
	}
}

func TestServerAndToken(t *testing.T) {
	a := newFakeAPI(t, map[string]reply{"GET /v1/apps": {200, `{"items":[],"next_cursor":""}`}})
	other := newFakeAPI(t, map[string]reply{"GET /v1/apps": {200, `{"items":[],"next_cursor":""}`}})

	t.Run("missing token", func(t *testing.T) {
		for _, args := range [][]string{{"token", "list"}, {"app", "list"}, {"audit"}} {
			r := cli(t, a, nil, map[string]string{"TOKEND_TOKEN": ""}, args...)
			want := "no admin token: set TOKEND_TOKEN or pass --token (tokend bootstrap prints the first one)"
			if r.err == nil || r.err.Error() != want {
				t.Errorf("%v: error %v, want %q", args, r.err, want)
			}
		}
		if n := len(a.requests()); n != 0 {
			t.Errorf("the server got %d requests", n)
		}
	})
	t.Run("flags win over the environment", func(t *testing.T) {
		r := cli(t, a, nil, nil, "app", "list", "--server", other.srv.URL, "--token", "tkd_admin_fromflag")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := other.only(t).Auth; got != "Bearer tkd_admin_fromflag" {
			t.Errorf("Authorization %q", got)
		}
		if n := len(a.requests()); n != 0 {
			t.Errorf("the environment's server got %d requests", n)
		}
	})
	t.Run("default server", func(t *testing.T) {
		// Without --server or TOKEND_URL the CLI goes to the default
		// address; nothing is expected to listen there in a test, and
		// the message must say what to set.
		r := cli(t, a, nil, map[string]string{"TOKEND_URL": "http://127.0.0.1:1"}, "app", "list")
		if r.err == nil || !strings.Contains(r.err.Error(), "cannot reach the tokend server at http://127.0.0.1:1 (set --server or TOKEND_URL)") {
			t.Errorf("error %v", r.err)
		}
	})
	t.Run("invalid server URL", func(t *testing.T) {
		r := cli(t, a, nil, map[string]string{"TOKEND_URL": "127.0.0.1:8080"}, "app", "list")
		if r.err == nil || !strings.Contains(r.err.Error(), "--server (or TOKEND_URL) should be") || !strings.Contains(r.err.Error(), "such as http://127.0.0.1:8080") {
			t.Errorf("error %v", r.err)
		}
	})
}

func TestErrorMessages(t *testing.T) {
	a := newFakeAPI(t, map[string]reply{
		"POST /v1/tokens": {422, `{"type":"about:blank","title":"Unprocessable Entity","status":422,"code":"VALIDATION_FAILED",` +
			`"detail":"the request has 2 invalid fields","errors":[{"field":"name","message":"is required"},{"field":"rate_limit.window","message":"must be between 1s and 31d"}]}`},
		"GET /v1/apps": {401, `{"title":"Unauthorized","status":401,"detail":"the token is revoked","code":"UNAUTHENTICATED"}`},
		"POST /v1/apps": {409, `{"title":"Conflict","status":409,"detail":"an app is already named \"Shop\"","code":"CONFLICT",` +
			`"errors":[{"field":"name","message":"an app is already named \"Shop\""}]}`},
		"GET /v1/audit":          {403, `{"title":"Forbidden","status":403,"detail":"this requires the audit:read permission","code":"FORBIDDEN"}`},
		"PATCH /v1/tokens/tok_1": {412, `{"title":"Precondition Failed","status":412,"detail":"the resource was changed since it was read; fetch it again","code":"PRECONDITION_FAILED"}`},
	})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "validation lists every field",
			args: []string{"token", "create", "--app", "app_1", "--name", " "},
			want: "the request has 2 invalid fields\n  name: is required\n  rate_limit.window: must be between 1s and 31d",
		},
		{
			name: "a refused admin token says what to check",
			args: []string{"app", "list"},
			want: "the server refused the admin token (check --token or TOKEND_TOKEN): the token is revoked",
		},
		{
			name: "a field error that repeats the detail is not shown twice",
			args: []string{"app", "create", "--name", "Shop"},
			want: `an app is already named "Shop"`,
		},
		{
			name: "a missing permission is named",
			args: []string{"audit"},
			want: "this requires the audit:read permission",
		},
		{
			name: "a stale version points at --if-version",
			args: []string{"token", "edit", "tok_1", "--name", "x", "--if-version", "3"},
			want: "the resource was changed since it was read; fetch it again (the version given with --if-version is not the current one)",
		},
		{
			name: "not found",
			args: []string{"token", "get", "tok_nope"},
			want: "no such route in the fake",
		},
		{
			name: "edit without a change",
			args: []string{"token", "edit", "tok_1"},
			want: "nothing to change: give at least one flag to edit (see tokend token edit --help)",
		},
		{
			name: "bad rate limit",
			args: []string{"token", "create", "--app", "a", "--name", "n", "--rate-limit", "fast"},
			want: `invalid rate limit "fast": use LIMIT/WINDOW such as 1000/1h`,
		},
		{
			name: "bad metadata",
			args: []string{"token", "create", "--app", "a", "--name", "n", "--metadata", "[1]"},
			want: `invalid --metadata: it must be a JSON object such as {"team":"infra"}`,
		},
		{
			name: "every flag the CLI reads itself is reported at once",
			args: []string{"token", "edit", "tok_1", "--expires-at", "soon", "--rate-limit", "fast", "--metadata", "[1]"},
			want: "invalid --expires-at \"soon\": use an RFC 3339 time such as 2026-12-31T23:59:00Z or a date such as 2026-12-31\n" +
				"invalid rate limit \"fast\": use LIMIT/WINDOW such as 1000/1h\n" +
				`invalid --metadata: it must be a JSON object such as {"team":"infra"}`,
		},
		{
			name: "required flags",
			args: []string{"token", "create", "--name", "n"},
			want: `required flag(s) "app" not set`,
		},
		{
			name: "contradicting flags",
			args: []string{"token", "edit", "tok_1", "--rate-limit", "1/1s", "--clear-rate-limit"},
			want: "if any flags in the group [rate-limit clear-rate-limit] are set none of the others can be; [clear-rate-limit rate-limit] were all set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, a, nil, nil, tt.args...)
			if r.err == nil || r.err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", r.err, tt.want)
			}
			if strings.Contains(r.stdout+r.stderr, adminSecret) {
				t.Error("the admin secret was printed")
			}
		})
	}
}

func TestListAll(t *testing.T) {
	a := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens":           {200, mustJSON(t, tokend.Page[tokend.Token]{Items: []tokend.Token{tok}, NextCursor: "p2"})},
		"GET /v1/tokens?cursor=p2": {200, mustJSON(t, tokend.Page[tokend.Token]{Items: []tokend.Token{tok2}})},
	})
	r := cli(t, a, nil, nil, "token", "list", "--all", "--app", "app_1", "--json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var page tokend.Page[tokend.Token]
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].ID != "tok_1" || page.Items[1].ID != "tok_2" || page.NextCursor != "" {
		t.Errorf("page %+v", page)
	}
	reqs := a.requests()
	if len(reqs) != 2 || reqs[1].Query.Get("cursor") != "p2" || reqs[1].Query.Get("app_id") != "app_1" {
		t.Errorf("requests %+v", reqs)
	}
}

func TestEmptyList(t *testing.T) {
	a := newFakeAPI(t, map[string]reply{"GET /v1/tokens": {200, `{"items":[],"next_cursor":""}`}})
	r := cli(t, a, nil, nil, "token", "list")
	if r.err != nil || r.stdout != "" || r.stderr != "No tokens match.\n" {
		t.Errorf("got %+v", r)
	}
}

func TestParseRateLimit(t *testing.T) {
	for _, tt := range []struct {
		in    string
		limit int
		win   time.Duration
	}{
		{"1000/1h", 1000, time.Hour},
		{"60/m", 60, time.Minute},
		{"5000/1d", 5000, 24 * time.Hour},
		{" 10 / 30s ", 10, 30 * time.Second},
	} {
		rl, err := parseRateLimit(tt.in)
		if err != nil || rl.Limit != tt.limit || time.Duration(rl.Window) != tt.win {
			t.Errorf("parseRateLimit(%q) = %+v, %v", tt.in, rl, err)
		}
	}
	for _, bad := range []string{"", "1000", "0/1h", "-1/1h", "x/1h", "10/", "10/xyz", "10/-1h"} {
		if _, err := parseRateLimit(bad); err == nil {
			t.Errorf("parseRateLimit(%q) accepted", bad)
		}
	}
}

func TestInteractive(t *testing.T) {
	if interactive(strings.NewReader("")) {
		t.Error("a strings.Reader is not a terminal")
	}
	if !interactive(tty{strings.NewReader("")}) {
		t.Error("tty is a terminal")
	}
}

// token get shows an admin token's scope: the owner, and its applications
// when it names some.
func TestTokenGetShowsTheScope(t *testing.T) {
	scoped := tok
	scoped.ID, scoped.AppID = "tok_adm", tokend.SystemAppID
	scoped.Scope = &tokend.AdminScope{OwnerID: "acct_42", AppIDs: []string{"app_1", "app_2"}}
	everyApp := scoped
	everyApp.ID, everyApp.Scope = "tok_all", &tokend.AdminScope{OwnerID: "acct_42"}
	a := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens/tok_adm": {200, mustJSON(t, scoped)},
		"GET /v1/tokens/tok_all": {200, mustJSON(t, everyApp)},
		"GET /v1/tokens/tok_1":   {200, mustJSON(t, tok)},
	})
	for id, want := range map[string]string{
		"tok_adm": "owner acct_42, applications app_1, app_2\n",
		"tok_all": "owner acct_42, every application\n",
	} {
		r := cli(t, a, nil, nil, "token", "get", id)
		if r.err != nil || !strings.Contains(r.stdout, "scope:") || !strings.Contains(r.stdout, want) {
			t.Errorf("token get %s: %v\n%s", id, r.err, r.stdout)
		}
	}
	if r := cli(t, a, nil, nil, "token", "get", "tok_1"); strings.Contains(r.stdout, "scope:") {
		t.Errorf("an unscoped token shows a scope:\n%s", r.stdout)
	}
}
