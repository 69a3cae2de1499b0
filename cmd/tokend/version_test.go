package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// runOut runs a tokend command that must succeed and answers its stdout.
func runOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, func(string) string { return "" }, nil, &out, &errOut); err != nil {
		t.Fatalf("tokend %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func TestVersionSaysWhatItKnowsAndWhatTheLinkerWasTold(t *testing.T) {
	// A test binary has no module version and, built with
	// -buildvcs=false or outside a checkout, no VCS stamp: it says so
	// rather than make one up.
	got := runOut(t, "version")
	unstamped := regexp.MustCompile(`^tokend (devel|v\S+)\nrevision: (unknown|[0-9a-f]{40}(\+dirty)?)\n(time: .*\n)?go:       ` +
		regexp.QuoteMeta(runtime.Version()) + `\n$`)
	if !unstamped.MatchString(got) {
		t.Errorf("tokend version:\n%s\nwant it to match %s", got, unstamped)
	}
	if v := runOut(t, "--version"); v != got {
		t.Errorf("tokend --version:\n%s\ntokend version:\n%s", v, got)
	}

	// What -ldflags "-X main.buildVersion=… -X main.buildRevision=…" sets
	// wins, as the Containerfile's build does.
	buildVersion, buildRevision, buildTime = "v1.2.3", "0123abcd", "2026-01-02T03:04:05Z"
	t.Cleanup(func() { buildVersion, buildRevision, buildTime = "", "", "" })
	want := "tokend v1.2.3\nrevision: 0123abcd\ntime:     2026-01-02T03:04:05Z\ngo:       " + runtime.Version() + "\n"
	if got := runOut(t, "version"); got != want {
		t.Errorf("stamped tokend version:\n%s\nwant:\n%s", got, want)
	}
	if got := runOut(t, "--version"); got != want {
		t.Errorf("stamped tokend --version:\n%s\nwant:\n%s", got, want)
	}

	// --version goes through cobra's template: a stamp's braces are
	// printed as they are.
	buildVersion = "v1{{.Oops}}"
	if got := runOut(t, "--version"); !strings.HasPrefix(got, "tokend v1{{.Oops}}\n") {
		t.Errorf("tokend --version with braces in the stamp: %q", got)
	}
	buildVersion = "v1.2.3"

	// The served version is the same: /metrics' tokend_build_info, and
	// the OpenAPI document.
	in := startTokend(t, t.TempDir(), nil)
	metrics := getOK(t, in.url+"/metrics")
	line := `tokend_build_info{goversion="` + runtime.Version() + `",revision="0123abcd",version="v1.2.3"} 1`
	if !strings.Contains(metrics, line) {
		t.Errorf("/metrics has no %s:\n%s", line, grep(metrics, "build_info"))
	}
	if doc := getOK(t, in.url+"/openapi.json"); !strings.Contains(doc, `"version":"v1.2.3"`) {
		t.Errorf("/openapi.json does not give the version:\n%.300s", doc)
	}
}

// getOK answers the body of a GET that must answer 200.
func getOK(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, res.StatusCode, b)
	}
	return string(b)
}

// grep answers the lines of s that contain sub.
func grep(s, sub string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
