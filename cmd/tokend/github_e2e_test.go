package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/github/githubtest"
)

// githubReport posts matches to the instance's /v1/leaks/github signed by
// key, as GitHub does, and answers the status and body.
func githubReport(t *testing.T, in *instance, key githubtest.Key, matches ...tokend.GitHubMatch) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(matches)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(key.Request(t, in.url+"/v1/leaks/github", body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestGitHubSecretScanningEndToEnd runs the real binary with a key list
// made for the test and plays GitHub: a signed report revokes the token
// and labels what it sent; a report signed by another key changes nothing;
// after the key file is rewritten and SIGHUP sent, the new key is taken and
// the old one refused, and a bad file on the next SIGHUP keeps the keys. A
// key of another kind in the list is skipped with a warning naming it;
// /metrics shows the keys in use and the failed reloads.
func TestGitHubSecretScanningEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "github-keys.json")
	writeKeys := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(keyFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first, stranger, second := githubtest.NewKey(t, "first"), githubtest.NewKey(t, "first"), githubtest.NewKey(t, "second")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// One key of another kind in the list: skipped with a warning, the
	// others taken.
	writeKeys(githubtest.List(t, first.Entry(t), githubtest.Entry{KeyIdentifier: "odd-p384", Key: githubtest.PEM(t, &p384.PublicKey)}))
	in := startProcess(t, buildTokend(t), map[string]string{"TOKEND_GITHUB_SCANNING_KEYS": keyFile}, "--data-dir", filepath.Join(dir, "data"))
	in.waitLog(t, "a key is skipped", 10*time.Second)
	if !strings.Contains(in.stderr.String(), "odd-p384") {
		t.Errorf("the warning does not name the skipped key:\n%s", in.stderr.String())
	}
	keyMetrics := func(keys, failures float64) {
		t.Helper()
		if n, ok := in.metric(t, "tokend_github_scanning_keys"); !ok || n != keys {
			t.Errorf("tokend_github_scanning_keys = %v (%v), want %v", n, ok, keys)
		}
		if n, ok := in.metric(t, "tokend_github_scanning_key_reload_failures_total"); !ok || n != failures {
			t.Errorf("tokend_github_scanning_key_reload_failures_total = %v (%v), want %v", n, ok, failures)
		}
	}
	keyMetrics(1, 0)
	admin := in.bootstrap
	app := in.newApp(t, admin, "shop")
	tok := in.newToken(t, admin, app.ID, "ci")
	code := func(sec string) tokend.Code {
		t.Helper()
		_, b := in.call(t, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: sec})
		var res tokend.VerifyResult
		json.Unmarshal(b, &res)
		return res.Code
	}
	unknown := "shop_" + strings.Repeat("Z", 43) + "_ZZZZZZ"
	url := "https://github.com/octo/repo/blob/0123456789abcdef/.env"

	// Signed by a key that is not GitHub's: refused, nothing changed.
	status, b := githubReport(t, in, stranger, tokend.GitHubMatch{Token: tok.Secret, Type: "tokend_token", URL: url, Source: "content"})
	if status != http.StatusUnauthorized || !strings.Contains(string(b), "UNAUTHENTICATED") {
		t.Fatalf("a report signed by another key: %d %s", status, b)
	}
	if got := code(tok.Secret); got != tokend.CodeValid {
		t.Fatalf("after a mis-signed report the token answers %s", got)
	}

	// Signed by GitHub's key: the token is revoked, the answer labels both.
	status, b = githubReport(t, in, first,
		tokend.GitHubMatch{Token: tok.Secret, Type: "tokend_token", URL: url, Source: "content"},
		tokend.GitHubMatch{Token: unknown, Type: "tokend_token", URL: url, Source: "content"})
	if status != http.StatusOK {
		t.Fatalf("a signed report: %d %s", status, b)
	}
	var labels []tokend.GitHubLabel
	if err := json.Unmarshal(b, &labels); err != nil {
		t.Fatal(err)
	}
	want := []tokend.GitHubLabel{{TokenRaw: tok.Secret, TokenType: "tokend_token", Label: "true_positive"},
		{TokenRaw: unknown, TokenType: "tokend_token", Label: "false_positive"}}
	if len(labels) != 2 || labels[0] != want[0] || labels[1] != want[1] {
		t.Fatalf("labels %s, want %+v", b, want)
	}
	if got := code(tok.Secret); got != tokend.CodeRevoked {
		t.Fatalf("after GitHub's report the token answers %s, want REVOKED", got)
	}
	var events tokend.Page[tokend.Notification]
	in.mustCall(t, 200, "GET", "/v1/events?type=token.leaked&token_id="+tok.Token.ID, admin, nil, &events)
	if len(events.Items) != 1 || events.Items[0].Data["source"] != "github" || events.Items[0].Data["url"] != url {
		t.Fatalf("token.leaked: %+v", events.Items)
	}

	// The outside review's report: a leak beside a match whose url is over
	// 2048 bytes, and one whose url holds U+200B. The leak is acted on, the
	// urls kept as one line.
	victim := in.newToken(t, admin, app.ID, "victim")
	long := "https://github.com/someone/repo/blob/main/" + strings.Repeat("d", 2100) + "/f.txt"
	status, b = githubReport(t, in, first,
		tokend.GitHubMatch{Token: victim.Secret, Type: "tokend_token", URL: url, Source: "content"},
		tokend.GitHubMatch{Token: unknown, Type: "tokend_token", URL: long, Source: "content"},
		tokend.GitHubMatch{Token: unknown, Type: "tokend_token", URL: "https://github.com/o/r/blob/main/a\u200b.env", Source: "content"})
	if status != http.StatusOK || strings.Count(string(b), "_positive") != 3 {
		t.Fatalf("a report with odd urls: %d %s", status, b)
	}
	if got := code(victim.Secret); got != tokend.CodeRevoked {
		t.Fatalf("after a report with odd urls the leaked token answers %s, want REVOKED", got)
	}

	// GitHub's new key list, read on SIGHUP.
	writeKeys(githubtest.ListOf(t, second))
	in.signal(syscall.SIGHUP)
	in.waitLog(t, "SIGHUP: reloaded", 10*time.Second)
	next := in.newToken(t, admin, app.ID, "deploy")
	if status, b := githubReport(t, in, first, tokend.GitHubMatch{Token: next.Secret, Type: "tokend_token"}); status != http.StatusUnauthorized {
		t.Fatalf("a report signed by the dropped key: %d %s", status, b)
	}
	if got := code(next.Secret); got != tokend.CodeValid {
		t.Fatalf("after a report by the dropped key the token answers %s", got)
	}
	if status, b := githubReport(t, in, second, tokend.GitHubMatch{Token: next.Secret, Type: "tokend_token"}); status != http.StatusOK || !strings.Contains(string(b), "true_positive") {
		t.Fatalf("a report signed by the new key: %d %s", status, b)
	}
	if got := code(next.Secret); got != tokend.CodeRevoked {
		t.Fatalf("after the new key's report the token answers %s", got)
	}
	keyMetrics(1, 0)

	// A key file that no longer parses: logged, the keys kept.
	writeKeys([]byte(`{"public_keys":[]}`))
	in.signal(syscall.SIGHUP)
	in.waitLog(t, "SIGHUP: reload failed", 10*time.Second)
	if status, b := githubReport(t, in, second, tokend.GitHubMatch{Token: unknown, Type: "tokend_token"}); status != http.StatusOK || !strings.Contains(string(b), "false_positive") {
		t.Fatalf("after a failed reload: %d %s", status, b)
	}
	keyMetrics(1, 1)
	if strings.Contains(in.stderr.String(), tok.Secret) || strings.Contains(in.stderr.String(), next.Secret) {
		t.Error("a reported secret is in the log")
	}
}

// TestABadGitHubKeyFileStopsTheStart: a key file that is missing, not
// GitHub's list or without one usable P-256 key stops serve before anything
// is created.
func TestABadGitHubKeyFileStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(bad, []byte(`{"public_keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	err := runFails(t, nil, withAddr("serve", "--data-dir", data, "--github-scanning-keys", bad)...)
	wantErr(t, "an empty key list", err, "--github-scanning-keys", bad, "holds no keys")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, githubtest.List(t, githubtest.Entry{KeyIdentifier: "odd-p384", Key: githubtest.PEM(t, &p384.PublicKey)}), 0o600); err != nil {
		t.Fatal(err)
	}
	err = runFails(t, nil, withAddr("serve", "--data-dir", data, "--github-scanning-keys", bad)...)
	wantErr(t, "a list of no usable key", err, "--github-scanning-keys", "holds no usable key", "odd-p384", "not an ECDSA P-256 key")
	err = runFails(t, map[string]string{"TOKEND_GITHUB_SCANNING_KEYS": filepath.Join(dir, "missing.json")}, withAddr("serve", "--data-dir", data)...)
	wantErr(t, "a missing key file", err, "--github-scanning-keys", "missing.json")
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the refused start made the data directory: %v", err)
	}
}
