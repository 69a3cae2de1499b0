package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// redoclyCLI is the OpenAPI linter the served document must pass, pinned
// so that a new release cannot turn the build red on its own.
const redoclyCLI = "@redocly/cli@2.77.0"

// TestOpenAPIPassesALinter lints the served /openapi.json with Redocly's
// CLI and its recommended rules: zero errors. It needs node and npx (npm
// fetches the CLI into its cache on the first run); without them it skips
// with a message, except under CI=true, where it fails.
func TestOpenAPIPassesALinter(t *testing.T) {
	npx, err := exec.LookPath("npx")
	if err == nil {
		_, err = exec.LookPath("node")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("linting the OpenAPI document needs node and npx (%v); CI=true requires them", err)
		}
		t.Skipf("skipped: linting the OpenAPI document needs node and npx (%v); install Node.js to run it (CI=true makes this a failure)", err)
	}
	h, _ := githubHarness(t, harnessOpts{}) // every operation, POST /v1/leaks/github too
	r := h.do("GET", "/openapi.json", "", nil)
	if r.status != 200 {
		t.Fatalf("GET /openapi.json: %d", r.status)
	}
	dir := t.TempDir()
	doc := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(doc, r.body, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, npx, "--yes", redoclyCLI, "lint", "--format=json", doc)
	cmd.Dir = dir // no redocly.yaml of anyone's: the recommended rules
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true",
		"NO_UPDATE_NOTIFIER=1", "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // exits 1 when there are errors: the report says which

	var report struct {
		Totals struct {
			Errors, Warnings, Ignored int
		} `json:"totals"`
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("%s lint did not report (%v, %v):\nstdout: %s\nstderr: %s", redoclyCLI, runErr, err, stdout.String(), stderr.String())
	}
	t.Logf("%s lint: %d errors, %d warnings in %v", redoclyCLI, report.Totals.Errors, report.Totals.Warnings, time.Since(start).Round(time.Millisecond))
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		if p.Severity == "error" {
			t.Errorf("%s: %s at %s", p.RuleID, p.Message, where)
		} else {
			t.Logf("%s %s: %s at %s", p.Severity, p.RuleID, p.Message, where)
		}
	}
	if report.Totals.Errors != 0 && !t.Failed() {
		t.Errorf("%d errors", report.Totals.Errors)
	}
}

// TestOpenAPIDeclaresServersAndSecurity checks, without node, the two
// things the linter first found missing: a servers list, and a security
// requirement on every operation (empty on the public ones).
func TestOpenAPIDeclaresServersAndSecurity(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]map[string]struct {
			Security *[]map[string][]string `json:"security"`
		} `json:"paths"`
	}
	h.do("GET", "/openapi.json", "", nil).json(t, &doc)
	if len(doc.Servers) == 0 || doc.Servers[0].URL != "/" {
		t.Errorf("servers = %+v, want the root of the serving address", doc.Servers)
	}
	public := map[string]bool{"get /healthz": true, "get /readyz": true, "post /v1/verify": true, "get /v1/auth": true}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			switch {
			case op.Security == nil:
				t.Errorf("%s %s declares no security", m, p)
			case public[m+" "+p] && len(*op.Security) != 0:
				t.Errorf("public %s %s asks for %v", m, p, *op.Security)
			case !public[m+" "+p] && len(*op.Security) == 0:
				t.Errorf("%s %s is declared public", m, p)
			}
		}
	}
}
