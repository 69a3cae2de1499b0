package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// TestLeaksGitleaksEndToEnd: a real token committed into a throwaway git
// repository, found by the real gitleaks with examples/gitleaks.toml, fed
// to `tokend leaks report --gitleaks`, is refused by POST /v1/verify
// (REVOKED) and heard of as token.leaked; `--file -` reports through the
// notify policy; no secret is printed or logged.
func TestLeaksGitleaksEndToEnd(t *testing.T) {
	bin := needTool(t, "gitleaks", goBinDirs()...)
	gitBin := needTool(t, "git")
	in := startTokend(t, t.TempDir(), nil)
	vars := map[string]string{"TOKEND_URL": in.url, "TOKEND_TOKEN": in.bootstrap}
	cmd := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := run(ctx, args, func(k string) string { return vars[k] }, strings.NewReader(stdin), &out, &errOut); err != nil {
			t.Fatalf("tokend %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String() + errOut.String()
	}
	token := func(appID, name string) (tokend.Token, string) {
		var tok struct {
			Token  tokend.Token `json:"token"`
			Secret string       `json:"secret"`
		}
		json.Unmarshal([]byte(cmd("", "token", "create", "--app", appID, "--name", name, "--json")), &tok)
		if tok.Secret == "" {
			t.Fatal("token create answered no secret")
		}
		return tok.Token, tok.Secret
	}
	verify := func(sec string) tokend.Code {
		t.Helper()
		b, _ := json.Marshal(tokend.VerifyRequest{Token: sec})
		res, err := http.Post(in.url+"/v1/verify", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v tokend.VerifyResult
		json.NewDecoder(res.Body).Decode(&v)
		return v.Code
	}

	var shop, notify tokend.App
	json.Unmarshal([]byte(cmd("", "app", "create", "--name", "shop", "--json")), &shop)
	json.Unmarshal([]byte(cmd("", "app", "create", "--name", "audit-only", "--leak-policy", "notify", "--json")), &notify)
	if shop.LeakPolicy != tokend.LeakRevoke || notify.LeakPolicy != tokend.LeakNotify {
		t.Fatalf("leak policies: %q %q", shop.LeakPolicy, notify.LeakPolicy)
	}
	tok, sec := token(shop.ID, "ci")
	if c := verify(sec); c != tokend.CodeValid {
		t.Fatalf("before the leak: %s", c)
	}

	// The throwaway repository, with the token committed.
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		c := exec.Command(gitBin, append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(repo, "deploy.sh"), []byte("curl -H \"Authorization: Bearer "+sec+"\" https://api.example.com/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "deploy.sh")
	git("commit", "-q", "-m", "deploy script")
	report := filepath.Join(t.TempDir(), "report.json")
	scan := exec.Command(bin, "git", repo, "--config", filepath.Join("..", "..", "examples", "gitleaks.toml"),
		"--report-format", "json", "--report-path", report, "--no-banner", "--exit-code", "0", "--log-level", "warn")
	if out, err := scan.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}

	out := cmd("", "leaks", "report", "--gitleaks", report, "--url", "https://git.example/shop")
	if !strings.Contains(out, tok.ID) || !strings.Contains(out, "revoked") || !strings.Contains(out, "deploy.sh:1") {
		t.Errorf("leaks report --gitleaks:\n%s", out)
	}
	if c := verify(sec); c != tokend.CodeRevoked {
		t.Errorf("after the report the token answers %s, want REVOKED", c)
	}
	var page tokend.Page[tokend.Notification]
	json.Unmarshal([]byte(cmd("", "events", "--type", "token.leaked", "--token-id", tok.ID, "--json")), &page)
	if len(page.Items) != 1 || page.Items[0].Data["source"] != "gitleaks" || page.Items[0].Data["action"] != "revoked" ||
		page.Items[0].Data["url"] != "https://git.example/shop" {
		t.Errorf("token.leaked events: %+v", page.Items)
	}

	// --file -: the notify policy, an unknown secret, comments and blanks.
	ntok, nsec := token(notify.ID, "reader")
	out2 := cmd("# found in a paste\n\n"+nsec+"\ntkd_notatoken\n"+sec+"\n", "leaks", "report", "--file", "-", "--source", "paste")
	for _, want := range []string{"line 3", ntok.ID, "notified", "line 4", "unknown", "line 5", "already_revoked"} {
		if !strings.Contains(out2, want) {
			t.Errorf("leaks report --file - does not show %q:\n%s", want, out2)
		}
	}
	if c := verify(nsec); c != tokend.CodeValid {
		t.Errorf("notify policy: the token answers %s, want VALID", c)
	}
	for where, text := range map[string]string{"output": out + out2, "logs": in.stderr.String() + in.stdout.String()} {
		for _, s := range []string{sec, nsec} {
			if strings.Contains(text, s) {
				t.Errorf("the %s holds a secret", where)
			}
		}
	}
}
