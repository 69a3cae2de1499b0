package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goSnippetContext is what each ```go block of the docs is compiled with:
// its imports and the names it uses without declaring them (the function
// it would sit in), keyed by the block's first line. A new Go block must be
// given its context here, so that no snippet goes unchecked.
var goSnippetContext = map[string]struct {
	imports []string
	params  string // the enclosing function's parameters
	returns string // "error" when the snippet returns one
}{
	`c, err := client.New(os.Getenv("TOKEND_URL")) // no admin token needed to verify`: {
		imports: []string{"fmt", "net/http", "os", "time", "github.com/tokend/tokend/client"},
		params:  "mux *http.ServeMux",
		returns: "error",
	},
	`var findings []struct {`: {
		imports: []string{"encoding/json", "fmt", "os", "github.com/tokend/tokend/secret"},
	},
	`func verifyWebhook(secret string, h http.Header, body []byte, now time.Time) error {`: {
		imports: []string{"crypto/hmac", "crypto/sha256", "encoding/base64", "encoding/json", "errors", "io", "net/http", "os", "strconv", "strings", "time"},
	},
	`func fromTokend(secret string, h http.Header, body []byte) bool {`: {
		imports: []string{"crypto/hmac", "crypto/sha256", "encoding/base64", "fmt", "net/http", "strconv", "strings", "time"},
	},
	`link, err := tokendClient.CreatePortalSession(ctx, tokend.PortalInput{`: {
		imports: []string{"context", "net/http", "github.com/tokend/tokend", "github.com/tokend/tokend/client"},
		params: "ctx context.Context, tokendClient *client.Client, appID string, account struct{ ID, Name string }, " +
			"user struct{ ID, Name, Email string }, w http.ResponseWriter, r *http.Request",
		returns: "error",
	},
}

// ignoredError finds a constructor's error thrown away in a snippet
// (`c, _ := client.New(…)`): the value is nil when the error is not.
var ignoredError = regexp.MustCompile(`^\s*\w+, _ :?= (client\.New|sql\.Open|url\.Parse)\(`)

// TestDocsGoSnippetsCompile builds every ```go block of README.md and docs/
// as the body of a function (top-level func declarations in a block stay
// top-level), through a build overlay: nothing is written into the
// repository. A snippet that no longer compiles against the code (a renamed
// field, a wrong type) fails here.
func TestDocsGoSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the docs' Go snippets")
	}
	dir := t.TempDir()
	replace := map[string]string{}
	pkgDir, err := filepath.Abs(filepath.Join(repoRoot, "internal", "docsnippets"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range docFiles(t) {
		for _, b := range mdBlocks(file, readDoc(t, file)) {
			if b.lang != "go" || len(b.body) == 0 {
				continue
			}
			ctx, ok := goSnippetContext[b.body[0]]
			if !ok {
				t.Errorf("%s:%d: a Go block this test does not know: give it a context in goSnippetContext", b.file, b.line)
				continue
			}
			for i, l := range b.body {
				// It compiles, and panics on a nil client as soon as the
				// URL is wrong: readers copy snippets as they are.
				if ignoredError.MatchString(l) {
					t.Errorf("%s:%d: the snippet ignores an error that leaves a nil value behind: %s", b.file, b.line+1+i, strings.TrimSpace(l))
				}
			}
			n++
			src := goSnippetSource(n, b.body, ctx.imports, ctx.params, ctx.returns)
			name := fmt.Sprintf("snippet%d.go", n)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			replace[filepath.Join(pkgDir, name)] = filepath.Join(dir, name)
			t.Logf("%s:%d compiled as %s", b.file, b.line, name)
		}
	}
	if n < len(goSnippetContext) {
		t.Errorf("found %d Go blocks, but goSnippetContext names %d: remove the contexts of blocks that are gone", n, len(goSnippetContext))
	}
	var ov strings.Builder
	ov.WriteString(`{"Replace":{`)
	first := true
	for k, v := range replace {
		if !first {
			ov.WriteString(",")
		}
		first = false
		fmt.Fprintf(&ov, "%q:%q", k, v)
	}
	ov.WriteString("}}")
	overlay := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlay, []byte(ov.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", overlay, "./internal/docsnippets/")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the docs' Go snippets do not compile: %v\n%s", err, out)
	}
}

// goSnippetSource wraps a snippet's statements in a function and keeps its
// func declarations at the top level.
func goSnippetSource(n int, body, imports []string, params, returns string) string {
	var decls, stmts []string
	inFunc := false
	for _, l := range body {
		switch {
		case strings.HasPrefix(l, "func "):
			inFunc = true
			decls = append(decls, l)
		case inFunc:
			decls = append(decls, l)
			if l == "}" {
				inFunc = false
			}
		default:
			stmts = append(stmts, l)
		}
	}
	var b strings.Builder
	b.WriteString("package docsnippets\n\nimport (\n")
	for _, imp := range imports {
		fmt.Fprintf(&b, "\t%q\n", imp)
	}
	fmt.Fprintf(&b, ")\n\nfunc snippet%d(%s) %s {\n", n, params, returns)
	b.WriteString(strings.Join(stmts, "\n"))
	if returns == "error" {
		b.WriteString("\n\treturn nil")
	}
	b.WriteString("\n}\n\n")
	b.WriteString(strings.Join(decls, "\n"))
	b.WriteString("\n")
	return b.String()
}
