package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestCLIStaleAndSort drives the stale-token filter, the app policy and
// the list's sort through the real CLI and server.
func TestCLIStaleAndSort(t *testing.T) {
	url, admin := e2eServer(t)
	vars := map[string]string{"TOKEND_URL": url, "TOKEND_TOKEN": admin}
	cmd := func(args ...string) result {
		t.Helper()
		var out, errOut strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, args, func(k string) string { return vars[k] }, strings.NewReader(""), &out, &errOut)
		return result{out.String(), errOut.String(), err}
	}
	must := func(args ...string) string {
		t.Helper()
		r := cmd(args...)
		if r.err != nil {
			t.Fatalf("tokend %s: %v\nstderr: %s", strings.Join(args, " "), r.err, r.stderr)
		}
		return r.stdout
	}
	out := must("app", "create", "--name", "Shop", "--disable-unused-after", "90d")
	id := strings.Fields(out)[2]
	if out := must("app", "get", id); !strings.Contains(out, "disable unused:     after 90d without use") {
		t.Errorf("app get:\n%s", out)
	}
	if r := cmd("app", "edit", id, "--disable-unused-after", "12h"); r.err == nil || !strings.Contains(r.err.Error()+r.stderr, "at least 1d") {
		t.Errorf("a policy under a day: %v\n%s", r.err, r.stderr)
	}
	if out := must("app", "edit", id, "--no-disable-unused"); !strings.Contains(out, "disable unused:     never") {
		t.Errorf("app edit --no-disable-unused:\n%s", out)
	}
	for _, n := range []string{"bravo", "alpha", "charlie"} {
		must("token", "create", "--app", id, "--name", n)
	}
	out = must("token", "list", "--app", id, "--sort", "name")
	if a, b, c := strings.Index(out, "alpha"), strings.Index(out, "bravo"), strings.Index(out, "charlie"); !(a > 0 && a < b && b < c) {
		t.Errorf("token list --sort name:\n%s", out)
	}
	// Just created: none is unused for 30 days.
	if r := cmd("token", "list", "--app", id, "--unused-for", "30d"); r.err != nil || !strings.Contains(r.stderr, "No tokens match.") {
		t.Errorf("token list --unused-for 30d: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if r := cmd("token", "list", "--unused-for", "30"); r.err == nil || !strings.Contains(r.err.Error()+r.stderr, "unused_for") {
		t.Errorf("token list --unused-for 30: %v\n%s", r.err, r.stderr)
	}
}
