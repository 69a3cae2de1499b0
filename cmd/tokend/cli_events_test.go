package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// TestEventsEndToEnd: an application with its own expiry notice, a token
// within it, and the scheduler of `tokend serve --event-interval` raising
// token.expiring, seen through `tokend events`.
func TestEventsEndToEnd(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil, "--event-interval", "100ms")
	vars := map[string]string{"TOKEND_URL": in.url, "TOKEND_TOKEN": in.bootstrap}
	cmd := func(args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := run(ctx, args, func(k string) string { return vars[k] }, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatalf("tokend %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	var app tokend.App
	json.Unmarshal([]byte(cmd("app", "create", "--name", "shop", "--expiry-notice", "14d", "--json")), &app)
	if app.ExpiryNotice == nil || app.ExpiryNotice.String() != "14d" {
		t.Fatalf("app create --expiry-notice 14d: %+v", app)
	}
	if out := cmd("app", "get", app.ID); !strings.Contains(out, "14d, 7d and 1d before expiry") {
		t.Errorf("app get does not show the notice periods:\n%s", out)
	}
	var tok struct {
		Token tokend.Token `json:"token"`
	}
	json.Unmarshal([]byte(cmd("token", "create", "--app", app.ID, "--name", "ci", "--expires-in", "10d", "--json")), &tok)
	if tok.Token.ID == "" {
		t.Fatal("token create answered no token")
	}
	var page tokend.Page[tokend.Notification]
	waitFor(t, "token.expiring", func() bool {
		json.Unmarshal([]byte(cmd("events", "--type", "token.expiring", "--json")), &page)
		return len(page.Items) > 0
	})
	if n := page.Items[0]; n.TokenID != tok.Token.ID || n.Data["notice_period"] != "14d" || n.Actor.Type != "system" {
		t.Errorf("token.expiring = %+v", n)
	}
	out := cmd("events", "--token-id", tok.Token.ID)
	for _, want := range []string{"TYPE", "token.expiring", "token.created", "system"} {
		if !strings.Contains(out, want) {
			t.Errorf("tokend events does not show %q:\n%s", want, out)
		}
	}
	if out := cmd("app", "edit", app.ID, "--no-expiry-notice"); !strings.Contains(out, "7d and 1d before expiry") || strings.Contains(out, "14d,") {
		t.Errorf("app edit --no-expiry-notice:\n%s", out)
	}
}
