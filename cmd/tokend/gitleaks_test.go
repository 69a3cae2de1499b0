package main

import (
	"encoding/json"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend/secret"
)

// needTool answers the path of an outside program an end-to-end test needs,
// looked up in PATH and then in alsoIn. Without it the test is skipped,
// unless CI=true: there a missing tool is a broken CI image, and the test
// fails.
func needTool(t *testing.T, name string, alsoIn ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range alsoIn {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true: the CI image must provide it", name)
	}
	t.Skipf("%s is not installed; install it to run this test (it is required when CI=true)", name)
	return ""
}

// goBinDirs are where `go install` puts programs.
func goBinDirs() []string {
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	for _, p := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	return dirs
}

// gitleaksFinding is the part of a gitleaks JSON report entry the test reads.
type gitleaksFinding struct {
	RuleID    string
	Secret    string
	File      string
	StartLine int
}

// TestGitleaksRuleFindsRealTokensOnly scans, with the real gitleaks and
// examples/gitleaks.toml, files holding real tokens and look-alikes, then
// confirms each finding's checksum the way the README says to. Every real
// token must be found and confirmed; no look-alike may be confirmed.
func TestGitleaksRuleFindsRealTokensOnly(t *testing.T) {
	bin := needTool(t, "gitleaks", goBinDirs()...)

	rule, err := os.ReadFile(filepath.Join("..", "..", "examples", "gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The customisation the file asks for: the apps' prefixes in keywords.
	// (tkd and tkd_admin are covered by the "tkd_" the file ships with.)
	const shipped = `keywords = ["tkd_"]`
	if !strings.Contains(string(rule), shipped) {
		t.Fatalf("examples/gitleaks.toml has no line %s", shipped)
	}
	prefixes := []string{"tkd", "tkd_admin", "shop", "acme_prod2", "x"}
	config := strings.Replace(string(rule), shipped, `keywords = ["tkd_", "shop_", "acme_prod2_", "x_"]`, 1)

	var real, bad []string
	for _, p := range prefixes {
		for i := 0; i < 2; i++ {
			s, err := secret.Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			real = append(real, s.Reveal())
		}
	}
	// Look-alikes of the right shape with a wrong checksum: one character of
	// the random part changed (a mistyped token), or of the checksum.
	mutate := func(s string, at int) string {
		c := byte('A')
		if s[at] == 'A' {
			c = 'B'
		}
		return s[:at] + string(c) + s[at+1:]
	}
	for _, s := range real {
		randomAt := len(s) - secret.ChecksumLen - 1 - secret.RandomLen
		bad = append(bad, mutate(s, randomAt+17), mutate(s, len(s)-2))
	}
	for _, s := range bad {
		if _, ok := secret.Check(s); ok {
			t.Fatalf("look-alike %s passes the checksum", s)
		}
	}
	// Placeholders the rule itself must not report: low entropy, a random
	// part one character short.
	placeholders := []string{
		"tkd_" + strings.Repeat("x", secret.RandomLen) + "_xxxxxx",
		real[0][:len(real[0])-secret.ChecksumLen-2] + real[0][len(real[0])-secret.ChecksumLen-1:],
	}

	// The values, in lines such as real code and configuration hold them.
	lines := []struct{ file, format string }{
		{".env", "SHOP_API_TOKEN=%s\n"},
		{"client.go", "package client\n\nconst apiToken = \"%s\" // do not commit\n"},
		{"deploy.sh", "curl -fsS -H \"Authorization: Bearer %s\" https://api.example.com/v1/orders\n"},
		{"config.yaml", "tokend:\n  url: https://tokend.internal\n  token: %s\n"},
		{"settings.json", "{\"token\": \"%s\", \"retries\": 3}\n"},
		{"README.md", "Call the API with `X-API-Key: %s`.\n"},
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	all := append(append(append([]string(nil), real...), bad...), placeholders...)
	for i, v := range all {
		l := lines[i%len(lines)]
		name := filepath.Join(src, fmt.Sprintf("%02d-%s", i, l.file))
		if err := os.WriteFile(name, []byte(fmt.Sprintf(l.format, v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "gitleaks.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(bin, "dir", src, "--config", cfg, "--report-format", "json", "--report-path", report,
		"--no-banner", "--exit-code", "0", "--log-level", "warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var findings []gitleaksFinding
	if err := json.Unmarshal(b, &findings); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, b)
	}

	candidates := map[string]bool{} // what gitleaks reported: the right shape
	confirmed := map[string]bool{}  // of those, the ones with a correct checksum
	for _, f := range findings {
		if f.RuleID != "tokend-token" {
			t.Errorf("finding of rule %q in %s", f.RuleID, f.File)
			continue
		}
		candidates[f.Secret] = true
		if _, ok := secret.Check(f.Secret); ok {
			confirmed[f.Secret] = true
		}
	}
	for _, s := range real {
		if !candidates[s] {
			t.Errorf("gitleaks missed the real token %s", s)
		}
	}
	for _, s := range bad {
		if confirmed[s] {
			t.Errorf("the look-alike %s was confirmed", s)
		}
		// gitleaks matches by shape and cannot compute a CRC32, so it
		// reports look-alikes; the checksum step above is what drops them.
		// Should this ever fail, gitleaks learned to check, and the README
		// and examples/gitleaks.toml should say so.
		if !candidates[s] {
			t.Errorf("gitleaks did not report the look-alike %s: does it check checksums now?", s)
		}
	}
	for _, s := range placeholders {
		if candidates[s] {
			t.Errorf("gitleaks reported the placeholder %s", s)
		}
	}
	if len(confirmed) != len(real) {
		t.Errorf("%d findings confirmed, want the %d real tokens", len(confirmed), len(real))
	}
	t.Logf("%d findings, %d with a good checksum (%d real tokens, %d look-alikes, %d placeholders scanned)",
		len(findings), len(confirmed), len(real), len(bad), len(placeholders))
}
