package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's proxy configurations must be the ones the proxy tests run:
// a snippet that drifts from examples/ is an untested configuration that
// readers copy (one once let clients forge X-Token-App).

// identityHeaders are every header the proxy forwards from tokend's answer:
// the upstream trusts them, so each must come from tokend or be absent.
var identityHeaders = []string{"X-Token-Id", "X-Token-App", "X-Token-Name", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}

// readmeBlock is a fenced code block of README.md.
type readmeBlock struct {
	lang string
	line int // of the opening fence
	body []string
}

// readmeBlocks answers the fenced code blocks of a Markdown text.
func readmeBlocks(text string) []readmeBlock {
	var out []readmeBlock
	var cur *readmeBlock
	for i, l := range strings.Split(text, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &readmeBlock{lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), line: i + 1}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body = append(cur.body, l)
		}
	}
	return out
}

// configLines answers the lines of an nginx or Caddy configuration as the
// comparison sees them: what precedes a '#' that starts a comment (at the
// start of a line or after a blank, outside quotes), without leading and
// trailing blanks, and without lines left empty. So indentation, blank
// lines and comments may differ between the README and the example;
// nothing else may.
func configLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if s := strings.TrimSpace(stripComment(l)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func stripComment(l string) string {
	var quote byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

// excerptAt answers where part starts as a contiguous run of whole's
// lines, or -1.
func excerptAt(part, whole []string) int {
	for i := 0; i+len(part) <= len(whole); i++ {
		match := true
		for j := range part {
			if whole[i+j] != part[j] {
				match = false
				break
			}
		}
		if match {
			return i
		}
	}
	return -1
}

func TestReadmeProxySnippetsAreTheTestedExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string]string{"nginx": "nginx.conf", "caddy": "Caddyfile"}
	// What a snippet must hold to be safe to copy: every identity header
	// replaced (nginx) or dropped before forward_auth copies tokend's in
	// (Caddy), so that a client cannot pass off its own.
	mustHave := map[string][]string{}
	for _, h := range identityHeaders {
		mustHave["nginx"] = append(mustHave["nginx"], "proxy_set_header "+h+" ")
		mustHave["caddy"] = append(mustHave["caddy"], "request_header -"+h)
	}
	seen := map[string]int{}
	for _, b := range readmeBlocks(string(readme)) {
		name, ok := examples[b.lang]
		if !ok {
			continue
		}
		seen[b.lang]++
		ex, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		part, whole := configLines(b.body), configLines(strings.Split(string(ex), "\n"))
		if len(part) == 0 {
			t.Errorf("README.md:%d: the %s block is empty", b.line, b.lang)
			continue
		}
		if excerptAt(part, whole) < 0 {
			// Name the first line that does not follow, to make a fix easy.
			for n := len(part); n > 0; n-- {
				if excerptAt(part[:n-1], whole) >= 0 {
					t.Errorf("README.md:%d: the %s block is not a contiguous excerpt of examples/%s (ignoring indentation, blank lines and # comments): from %q on it differs",
						b.line, b.lang, name, part[n-1])
					break
				}
			}
		}
		joined := strings.Join(part, "\n") + "\n"
		for _, want := range mustHave[b.lang] {
			if !strings.Contains(joined, want) {
				t.Errorf("README.md:%d: the %s block leaves out %q: a client could forge that header", b.line, b.lang, strings.TrimSpace(want))
			}
		}
	}
	for lang := range examples {
		if seen[lang] == 0 {
			t.Errorf("README.md has no %s block: is the language tag of its fence still %q?", lang, lang)
		}
	}
}

// The README's gitleaks commands use the rule file the gitleaks test runs,
// and the filter after it keeps the findings of that file's rule id.
func TestReadmeGitleaksSnippetMatchesTheRule(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join("..", "..", "examples", "gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^id = "([^"]+)"`).FindAllStringSubmatch(string(rules), -1) {
		ids[m[1]] = true
	}
	commands, filters := 0, 0
	for _, b := range readmeBlocks(string(readme)) {
		for _, l := range b.body {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "gitleaks" {
				commands++
				if !strings.Contains(l, "--config examples/gitleaks.toml") {
					t.Errorf("README.md:%d: %q does not use --config examples/gitleaks.toml", b.line, l)
				}
			}
			for _, m := range regexp.MustCompile(`RuleID == "([^"]+)"`).FindAllStringSubmatch(l, -1) {
				filters++
				if !ids[m[1]] {
					t.Errorf("README.md:%d: the filter keeps rule %q, which examples/gitleaks.toml does not define (it has %v)", b.line, m[1], ids)
				}
			}
		}
	}
	if commands == 0 || filters == 0 {
		t.Errorf("README.md has %d gitleaks commands and %d rule filters in its code blocks, want some of each", commands, filters)
	}
}

// The README tells how to find which backed-up pepper a database was used
// with: its command must print the fingerprint tokend's refusal names.
func TestReadmePepperFingerprintCommand(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var cmd string
	for _, b := range readmeBlocks(string(readme)) {
		for _, l := range b.body {
			if strings.Contains(l, "openssl dgst") {
				cmd = l
			}
		}
	}
	if cmd == "" {
		t.Fatal("README.md has no openssl command for the pepper's fingerprint")
	}
	needTool(t, "openssl")
	dir := t.TempDir()
	pepper := "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	if err := os.WriteFile(filepath.Join(dir, "pepper"), []byte(pepper+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("sh", "-c", cmd)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	if want := pepperFingerprint([]byte(pepper)); !strings.Contains(string(out), want) {
		t.Errorf("%s printed %q, want the fingerprint %s", cmd, out, want)
	}
}
