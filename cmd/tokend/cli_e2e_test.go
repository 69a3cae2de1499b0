package main

import (
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// e2eServer runs the real `tokend serve` in-process on a free port with a
// fresh data directory, and answers its URL and the bootstrap admin secret
// that its first start prints.
func e2eServer(t *testing.T) (url, admin string) {
	t.Helper()
	in := startTokend(t, t.TempDir(), nil)
	if in.bootstrap == "" {
		t.Fatalf("tokend serve printed no bootstrap token: %s", in.stdout.String())
	}
	return in.url, in.bootstrap
}

// TestCLIEndToEnd drives the CLI against the real server: what an
// administrator does on a first day, and what they see.
func TestCLIEndToEnd(t *testing.T) {
	url, admin := e2eServer(t)
	vars := map[string]string{"TOKEND_URL": url, "TOKEND_TOKEN": admin}
	cmd := func(stdin io.Reader, args ...string) result {
		t.Helper()
		if stdin == nil {
			stdin = strings.NewReader("")
		}
		var out, errOut strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, args, func(k string) string { return vars[k] }, stdin, &out, &errOut)
		return result{out.String(), errOut.String(), err}
	}
	must := func(args ...string) string {
		t.Helper()
		r := cmd(nil, args...)
		if r.err != nil {
			t.Fatalf("tokend %s: %v\nstderr: %s", strings.Join(args, " "), r.err, r.stderr)
		}
		return r.stdout
	}
	decode := func(s string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(s), v); err != nil {
			t.Fatalf("decoding %q: %v", s, err)
		}
	}
	sdk, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(secret string, perms ...string) tokend.Code {
		t.Helper()
		res, err := sdk.Verify(context.Background(), tokend.VerifyRequest{Token: secret, Permissions: perms})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		return res.Code
	}

	// An app with a permission catalog.
	var app tokend.App
	decode(must("app", "create", "--name", "Shop", "--prefix", "shop", "--permission", "orders:read,orders:write", "--max-lifetime", "90d", "--json"), &app)
	if app.ID == "" || app.TokenPrefix != "shop" || len(app.Permissions) != 2 {
		t.Fatalf("app %+v", app)
	}
	if out := must("app", "get", app.ID); !strings.Contains(out, "max token lifetime: 90d") {
		t.Errorf("app get:\n%s", out)
	}

	// A token, whose secret is shown once and works.
	out := must("token", "create", "--app", app.ID, "--name", "ci", "--permission", "orders:read",
		"--rate-limit", "1000/1h", "--max-uses", "50", "--expires-in", "30d", "--metadata", `{"team":"infra"}`)
	if !strings.Contains(out, "it will not be shown again") {
		t.Errorf("token create:\n%s", out)
	}
	m := regexp.MustCompile(`(?m)^  (shop_\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no secret in:\n%s", out)
	}
	sec := m[1]
	if c := verify(sec, "orders:read"); c != tokend.CodeValid {
		t.Errorf("new token verifies %s", c)
	}
	if c := verify(sec, "orders:write"); c != tokend.CodeInsufficientPermissions {
		t.Errorf("write with a read grant verifies %s", c)
	}

	var page tokend.Page[tokend.Token]
	decode(must("token", "list", "--app", app.ID, "--json"), &page)
	if len(page.Items) != 1 || page.Items[0].Name != "ci" {
		t.Fatalf("token list %+v", page)
	}
	tok := page.Items[0]
	if tok.RateLimit == nil || tok.RateLimit.Limit != 1000 || time.Duration(tok.RateLimit.Window) != time.Hour ||
		tok.MaxUses == nil || *tok.MaxUses != 50 || tok.Metadata["team"] != "infra" {
		t.Errorf("token as created: %+v", tok)
	}
	if out := must("token", "list", "--app", app.ID); !strings.Contains(out, tok.ID+"  ci") || !strings.HasPrefix(out, "ID ") {
		t.Errorf("token list:\n%s", out)
	}
	if out := must("token", "get", tok.ID); !strings.Contains(out, "rate limit:      1000 per 1h") {
		t.Errorf("token get:\n%s", out)
	}

	// Edits send only what is given, clear with nulls, and honour versions.
	var edited tokend.Token
	decode(must("token", "edit", tok.ID, "--name", "deploy", "--clear-rate-limit", "--clear-max-uses", "--if-version", strconv.FormatInt(tok.Version, 10), "--json"), &edited)
	if edited.Name != "deploy" || edited.RateLimit != nil || edited.MaxUses != nil || edited.ExpiresAt == nil || edited.Metadata["team"] != "infra" {
		t.Errorf("edited token %+v", edited)
	}
	r := cmd(nil, "token", "edit", tok.ID, "--description", "stale", "--if-version", strconv.FormatInt(tok.Version, 10))
	if r.err == nil || !strings.Contains(r.err.Error(), "--if-version") {
		t.Errorf("stale edit: %v", r.err)
	}
	// Every invalid field of an edit is shown, one line each.
	r = cmd(nil, "token", "edit", tok.ID, "--name", "", "--allow-ip", "not-an-ip", "--allow-origin", "nope")
	if r.err == nil || !strings.HasPrefix(r.err.Error(), "the request has 3 invalid fields\n") ||
		strings.Count(r.err.Error(), "\n  ") != 3 || !strings.Contains(r.err.Error(), "\n  name: ") ||
		!strings.Contains(r.err.Error(), "\n  allowed_ips") || !strings.Contains(r.err.Error(), "\n  allowed_origins") {
		t.Errorf("invalid edit: %v", r.err)
	}

	// Rotation with a grace period: both secrets work for now.
	var rotated struct {
		Token  tokend.Token `json:"token"`
		Secret string       `json:"secret"`
	}
	decode(must("token", "rotate", tok.ID, "--grace", "1h", "--json"), &rotated)
	if rotated.Secret == "" || rotated.Secret == sec || rotated.Token.ID != tok.ID || rotated.Token.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate: %+v", rotated.Token)
	}
	if c := verify(rotated.Secret, "orders:read"); c != tokend.CodeValid {
		t.Errorf("new secret verifies %s", c)
	}
	if c := verify(sec, "orders:read"); c != tokend.CodeValid {
		t.Errorf("old secret in its grace period verifies %s", c)
	}

	// Disable takes effect at once; enable undoes it.
	if out := must("token", "disable", tok.ID); out != "Disabled token "+tok.ID+" (deploy); its status is now disabled.\n" {
		t.Errorf("disable: %q", out)
	}
	if c := verify(rotated.Secret); c != tokend.CodeDisabled {
		t.Errorf("disabled token verifies %s", c)
	}
	must("token", "enable", tok.ID)
	if c := verify(rotated.Secret); c != tokend.CodeValid {
		t.Errorf("enabled token verifies %s", c)
	}

	// A second token, then revoke-all (confirmed) and delete (confirmed).
	must("token", "create", "--app", app.ID, "--name", "other", "--access", "full_access")
	r = cmd(nil, "app", "revoke-all", app.ID)
	if r.err == nil || !strings.Contains(r.err.Error(), "pass --yes") {
		t.Errorf("revoke-all without --yes: %v", r.err)
	}
	if out := must("app", "revoke-all", app.ID, "--yes"); out != "Revoked 2 tokens of app "+app.ID+".\n" {
		t.Errorf("revoke-all: %q", out)
	}
	if c := verify(rotated.Secret); c != tokend.CodeRevoked {
		t.Errorf("revoked token verifies %s", c)
	}
	r = cmd(tty{strings.NewReader("y\n")}, "token", "delete", tok.ID)
	if r.err != nil || !strings.Contains(r.stderr, "Delete token "+tok.ID+" (deploy)") {
		t.Errorf("delete: %v, stderr %q", r.err, r.stderr)
	}
	r = cmd(nil, "token", "get", tok.ID)
	if r.err == nil || !strings.Contains(strings.ToLower(r.err.Error()), "not found") {
		t.Errorf("get after delete: %v", r.err)
	}

	// The audit log tells the story.
	var events tokend.Page[tokend.Event]
	decode(must("audit", "--app", app.ID, "--all", "--json"), &events)
	seen := map[string]bool{}
	for _, ev := range events.Items {
		seen[ev.Action] = true
		if strings.Contains(mustJSON(t, ev), sec) || strings.Contains(mustJSON(t, ev), rotated.Secret) {
			t.Errorf("a secret is in the audit log: %+v", ev)
		}
	}
	for _, a := range []string{tokend.ActionAppCreate, tokend.ActionTokenCreate, tokend.ActionTokenUpdate, tokend.ActionTokenRotate,
		tokend.ActionTokenDisable, tokend.ActionTokenEnable, tokend.ActionAppRevokeAll, tokend.ActionTokenDelete} {
		if !seen[a] {
			t.Errorf("no %s event in %v", a, seen)
		}
	}
	if out := must("audit", "--token-id", tok.ID, "--action", "token.rotate"); !strings.Contains(out, "token.rotate") || strings.Contains(out, "token.create") {
		t.Errorf("filtered audit:\n%s", out)
	}

	// A wrong admin token is refused with a message that says what to check.
	vars["TOKEND_TOKEN"] = "tkd_admin_wrong"
	r = cmd(nil, "app", "list")
	if r.err == nil || !strings.Contains(r.err.Error(), "the server refused the admin token") {
		t.Errorf("wrong admin token: %v", r.err)
	}
}
