package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/tokend/tokend/internal/github/githubtest"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/redislimit/redistest"
)

// The documentation is tested: README.md and docs/*.md. Their proxy
// configurations must be the ones the proxy tests run (a snippet that
// drifts from examples/ is an untested configuration that readers copy;
// one once let clients forge X-Token-App), their links must resolve, and
// their shell blocks must run as printed.

// identityHeaders are every header the proxy forwards from tokend's answer:
// the upstream trusts them, so each must come from tokend or be absent.
var identityHeaders = []string{"X-Token-Id", "X-Token-App", "X-Token-Name", "X-Token-Owner", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}

// repoRoot is the module root, from the package directory the test runs in.
var repoRoot = filepath.Join("..", "..")

// docBlock is a fenced code block of a Markdown file.
type docBlock struct {
	file  string   // relative to the repository root
	lang  string   // the info string's first word
	attrs []string // its other words: no-run, postgres, redis
	line  int      // of the opening fence
	body  []string
}

func (b docBlock) has(attr string) bool { return slices.Contains(b.attrs, attr) }

func (b docBlock) where() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// docFiles answers the checked Markdown files, relative to the repository
// root: README.md first, then docs/*.md in name order.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(more)
	for _, f := range more {
		rel, _ := filepath.Rel(repoRoot, f)
		files = append(files, rel)
	}
	if len(files) < 2 {
		t.Fatal("docs/ holds no Markdown file")
	}
	return files
}

func readDoc(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mdBlocks answers the fenced code blocks of a Markdown text.
func mdBlocks(file, text string) []docBlock {
	var out []docBlock
	var cur *docBlock
	for i, l := range strings.Split(text, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			info := strings.Fields(strings.TrimPrefix(l, "```"))
			cur = &docBlock{file: file, line: i + 1}
			if len(info) > 0 {
				cur.lang, cur.attrs = info[0], info[1:]
			}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body = append(cur.body, l)
		}
	}
	return out
}

// allBlocks answers the fenced code blocks of every checked file.
func allBlocks(t *testing.T) []docBlock {
	t.Helper()
	var out []docBlock
	for _, f := range docFiles(t) {
		out = append(out, mdBlocks(f, readDoc(t, f))...)
	}
	return out
}

// configLines answers the lines of an nginx or Caddy configuration as the
// comparison sees them: what precedes a '#' that starts a comment (at the
// start of a line or after a blank, outside quotes), without leading and
// trailing blanks, and without lines left empty. So indentation, blank
// lines and comments may differ between the docs and the example;
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

func TestDocsProxySnippetsAreTheTestedExamples(t *testing.T) {
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
	for _, b := range allBlocks(t) {
		name, ok := examples[b.lang]
		if !ok {
			continue
		}
		seen[b.lang]++
		ex, err := os.ReadFile(filepath.Join(repoRoot, "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		part, whole := configLines(b.body), configLines(strings.Split(string(ex), "\n"))
		if len(part) == 0 {
			t.Errorf("%s: the %s block is empty", b.where(), b.lang)
			continue
		}
		if excerptAt(part, whole) < 0 {
			// Name the first line that does not follow, to make a fix easy.
			for n := len(part); n > 0; n-- {
				if excerptAt(part[:n-1], whole) >= 0 {
					t.Errorf("%s: the %s block is not a contiguous excerpt of examples/%s (ignoring indentation, blank lines and # comments): from %q on it differs",
						b.where(), b.lang, name, part[n-1])
					break
				}
			}
		}
		joined := strings.Join(part, "\n") + "\n"
		for _, want := range mustHave[b.lang] {
			if !strings.Contains(joined, want) {
				t.Errorf("%s: the %s block leaves out %q: a client could forge that header", b.where(), b.lang, strings.TrimSpace(want))
			}
		}
	}
	for lang := range examples {
		if seen[lang] == 0 {
			t.Errorf("no doc has a %s block: is the language tag of its fence still %q?", lang, lang)
		}
	}
}

// The docs' gitleaks commands use the rule file the gitleaks test runs,
// and the filter after it keeps the findings of that file's rule id.
func TestDocsGitleaksSnippetMatchesTheRule(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(repoRoot, "examples", "gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^id = "([^"]+)"`).FindAllStringSubmatch(string(rules), -1) {
		ids[m[1]] = true
	}
	commands, filters := 0, 0
	for _, b := range allBlocks(t) {
		for _, l := range b.body {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "gitleaks" {
				commands++
				if !strings.Contains(l, "--config examples/gitleaks.toml") {
					t.Errorf("%s: %q does not use --config examples/gitleaks.toml", b.where(), l)
				}
			}
			for _, m := range regexp.MustCompile(`RuleID == "([^"]+)"`).FindAllStringSubmatch(l, -1) {
				filters++
				if !ids[m[1]] {
					t.Errorf("%s: the filter keeps rule %q, which examples/gitleaks.toml does not define (it has %v)", b.where(), m[1], ids)
				}
			}
		}
	}
	if commands == 0 || filters == 0 {
		t.Errorf("the docs have %d gitleaks commands and %d rule filters in their code blocks, want some of each", commands, filters)
	}
}

// The docs tell how to find which backed-up pepper a database was used
// with: the command must print the fingerprint tokend's refusal names. It
// reads tokend-data/pepper, the default data directory's.
func TestDocsPepperFingerprintCommand(t *testing.T) {
	var cmd string
	for _, b := range allBlocks(t) {
		for _, l := range b.body {
			if strings.Contains(l, "openssl dgst") {
				cmd = l
			}
		}
	}
	if cmd == "" {
		t.Fatal("no doc has an openssl command for the pepper's fingerprint")
	}
	needTool(t, "openssl")
	dir := t.TempDir()
	pepper := "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	if err := os.Mkdir(filepath.Join(dir, "tokend-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokend-data", "pepper"), []byte(pepper+"\n"), 0o600); err != nil {
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

// mdLink finds the target of an inline Markdown link or image.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// codeSpan is inline code, where brackets are not links.
var codeSpan = regexp.MustCompile("`[^`]*`")

// proseLines answers a Markdown text's lines outside fenced code blocks,
// with their line numbers.
func proseLines(text string) map[int]string {
	out := map[int]string{}
	fenced := false
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out[i+1] = l
		}
	}
	return out
}

// headingSlugs answers the anchors GitHub gives the headings of a Markdown
// text: the heading's text without its markup, lower-cased, without any
// character but letters, digits, '_', '-' and spaces, spaces turned into
// '-'; a slug met again gets -1, -2, … appended.
func headingSlugs(text string) map[string]bool {
	slugs := map[string]bool{}
	seen := map[string]int{}
	lines := proseLines(text)
	for n := 1; n <= len(strings.Split(text, "\n")); n++ {
		l, ok := lines[n]
		if !ok || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimLeft(l, "#")
		if h == "" || h[0] != ' ' {
			continue
		}
		h = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(strings.TrimSpace(h), "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if k := seen[slug]; k > 0 {
			slugs[fmt.Sprintf("%s-%d", slug, k)] = true
		} else {
			slugs[slug] = true
		}
		seen[slug]++
	}
	return slugs
}

// Every relative link of the docs names a file that exists and, with an
// #anchor into a Markdown file, a heading of that file.
func TestDocsLinksResolve(t *testing.T) {
	links := 0
	for _, file := range docFiles(t) {
		text := readDoc(t, file)
		for n, l := range proseLines(text) {
			for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(l, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				path, anchor, _ := strings.Cut(target, "#")
				dest := file
				if path != "" {
					dest = filepath.Join(filepath.Dir(file), path)
					if _, err := os.Stat(filepath.Join(repoRoot, dest)); err != nil {
						t.Errorf("%s:%d: the link %s names %s, which does not exist", file, n, target, dest)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s:%d: the link %s has an anchor into a file that is not Markdown", file, n, target)
					continue
				}
				if !headingSlugs(readDoc(t, dest))[anchor] {
					t.Errorf("%s:%d: the link %s names #%s, which no heading of %s has", file, n, target, anchor, dest)
				}
			}
		}
	}
	if links == 0 {
		t.Error("the docs hold no relative link: is the link pattern still right?")
	}
}

// shellLangs are the info strings of blocks that must run or be marked.
var shellLangs = map[string]bool{"sh": true, "bash": true, "console": true}

// blockKinds are the words a shell block's info string may add after its
// language: no-run for what cannot run here (a production host, a server
// that does not return, a benchmark of minutes), postgres and redis for
// what needs that service. Any other word is an error, so that a typo
// cannot skip a block.
var blockKinds = map[string]bool{"no-run": true, "postgres": true, "redis": true}

// segment is a run of commands of a block and the output it shows.
type segment struct {
	block    docBlock
	line     int      // of its first command, in the file
	commands []string // as printed
	expect   []string // its whole-line comments, without "# "
}

// segments cuts a shell block after each run of whole-line comments: such
// a comment under a command shows what the command prints (a block that
// runs has its explanations as trailing comments).
func segments(b docBlock) []segment {
	var out []segment
	cur := segment{block: b, line: b.line + 1}
	for i, l := range b.body {
		if c, ok := strings.CutPrefix(strings.TrimSpace(l), "#"); ok {
			cur.expect = append(cur.expect, strings.TrimSpace(c))
			continue
		}
		if len(cur.expect) > 0 {
			out = append(out, cur)
			cur = segment{block: b, line: b.line + 1 + i}
		}
		cur.commands = append(cur.commands, l)
	}
	if len(cur.commands) > 0 || len(cur.expect) > 0 {
		out = append(out, cur)
	}
	return out
}

// jsonField finds `"key":` in an expected JSON answer.
var jsonField = regexp.MustCompile(`"([A-Za-z0-9_]+)":`)

// wants answers the strings the output of a segment must contain for one
// expected line. An expected JSON answer (it starts with '{') gives its
// fields: "key":value whole, or up to the '…' that elides the rest
// ("id":"tok_…" wants "id":"tok_), and "key":{ or "key":[ for an object or
// an elided array. Any other line is wanted as printed, up to a '…'.
func wants(expect string) []string {
	if !strings.HasPrefix(expect, "{") {
		before, _, _ := strings.Cut(expect, "…")
		if s := strings.TrimSpace(before); s != "" {
			return []string{s}
		}
		return nil
	}
	var out []string
	for _, m := range jsonField.FindAllStringSubmatchIndex(expect, -1) {
		field, rest := expect[m[0]:m[1]], expect[m[1]:]
		if rest == "" {
			continue
		}
		var value string
		switch rest[0] {
		case '"':
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				continue
			}
			value = rest[:end+2]
		case '{':
			out = append(out, field+"{")
			continue
		case '[':
			end := strings.Index(rest, "]")
			if end < 0 {
				continue
			}
			value = rest[:end+1]
		default:
			end := strings.IndexAny(rest, ",}]")
			if end < 0 {
				end = len(rest)
			}
			value = rest[:end]
		}
		if before, _, elided := strings.Cut(value, "…"); elided {
			value = before
		}
		out = append(out, field+value)
	}
	return out
}

// runBlocks runs segments in order in one bash process (set -euo
// pipefail) in dir, with env, and checks each segment's output against
// what its block shows. The segments are told apart by a marker line
// printed after each.
func runBlocks(t *testing.T, dir string, env []string, prelude string, segs []segment) {
	t.Helper()
	marker := make([]byte, 8)
	rand.Read(marker)
	mark := "@@docs-" + hex.EncodeToString(marker) + "@@"
	var script strings.Builder
	script.WriteString("set -euo pipefail\n" + prelude + "\n")
	for _, s := range segs {
		fmt.Fprintf(&script, "# %s:%d\n%s\nprintf '\\n%s\\n'\n", s.block.file, s.line, strings.Join(s.commands, "\n"), mark)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	outs := strings.Split(stdout.String(), mark+"\n")
	if err != nil {
		// The failing segment is the one whose marker was not printed.
		failed := segs[min(len(outs)-1, len(segs)-1)]
		t.Fatalf("%s:%d: the block failed (%v):\n%s\nstdout:\n%s\nstderr:\n%s", failed.block.file, failed.line, err,
			strings.Join(failed.commands, "\n"), outs[len(outs)-1], stderr.String())
	}
	for i, s := range segs {
		for _, e := range s.expect {
			for _, w := range wants(e) {
				if !strings.Contains(outs[i], w) {
					t.Errorf("%s:%d: the output lacks %s, which the block shows (# %s):\n%s", s.block.file, s.line, w, e, outs[i])
				}
			}
		}
	}
}

// docsEnv answers the environment of the blocks: this process's, with the
// tokend binary's directory first on PATH and no TOKEND_* variable but
// extra.
func docsEnv(bin string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TOKEND_") {
			continue
		}
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			kv = "PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + v
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// bannerExport answers the line of an instance's first-start banner that
// sets TOKEND_URL and TOKEND_TOKEN, which the tour asks readers to paste.
// It is made from what the banner's reader found (the output buffer may
// still be filling), and checkBannerExport checks, once the instance has
// stopped, that the banner printed that very line.
func bannerExport(t *testing.T, in *instance) string {
	t.Helper()
	if in.bootstrap == "" {
		t.Fatalf("the first start printed no owner token:\n%s", in.stdout.String())
	}
	return "export TOKEND_URL=" + in.url + " TOKEND_TOKEN=" + in.bootstrap
}

func checkBannerExport(t *testing.T, in *instance, export string) {
	t.Helper()
	in.stop() // its output is complete once it has exited
	for _, l := range strings.Split(in.stdout.String(), "\n") {
		if strings.TrimSpace(l) == export {
			return
		}
	}
	t.Errorf("the banner has no line %q for readers to paste:\n%s", export, in.stdout.String())
}

// needService skips a test that needs the service a variable names when
// it is not set, and fails it under CI=true (where .ci/run sets it).
func needService(t *testing.T, variable string) {
	t.Helper()
	if os.Getenv(variable) != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set, and CI=true: .ci/run sets it", variable)
	}
	t.Skipf("set %s to run the docs' blocks that need it", variable)
}

// Every sh, bash and console block of the docs runs as printed, or says in
// its info string why it cannot (no-run) or what it needs (postgres,
// redis).
//
// The server: one `tokend serve` of the built binary, on a fresh data
// directory tokend-data in a temporary directory, where the blocks run.
// The address: the docs never name the server's address in a block that
// runs; they use $TOKEND_URL, which readers set by pasting the export line
// of their banner (the tour's first block, marked no-run since it holds a
// placeholder). So the server listens on 127.0.0.1:0, a port the kernel
// picks free, and the test runs its real banner's export line in that
// block's place: no fixed port can be taken, and nothing in a block is
// rewritten.
//
// The blocks of a page run in order in one bash process; a postgres block
// runs on its own with TOKEND_DATABASE on a fresh database of
// TOKEND_TEST_POSTGRES and a TOKEND_PEPPER, a redis block against a second
// instance started with --redis on TOKEND_TEST_REDIS.
func TestDocsCommandBlocksRun(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "sqlite3"} {
		needTool(t, tool)
	}
	pages := map[string][]segment{}
	var postgresBlocks, redisBlocks []docBlock
	ran, marked := 0, 0
	for _, b := range allBlocks(t) {
		if !shellLangs[b.lang] {
			continue
		}
		known := true
		for _, a := range b.attrs {
			if !blockKinds[a] {
				t.Errorf("%s: the info string's %q is none of no-run, postgres, redis", b.where(), a)
				known = false
			}
		}
		switch {
		case !known: // reported; not run, since it may have meant no-run
		case b.has("no-run"):
			marked++
		case b.lang == "console":
			t.Errorf("%s: a console block mixes commands and output: make it sh, or mark it no-run", b.where())
		case b.has("postgres"):
			postgresBlocks = append(postgresBlocks, b)
		case b.has("redis"):
			redisBlocks = append(redisBlocks, b)
		default:
			pages[b.file] = append(pages[b.file], segments(b)...)
			ran++
		}
	}
	if len(pages["README.md"]) == 0 {
		t.Fatal("README.md has no block that runs: where is the tour?")
	}
	t.Logf("%d blocks run here, %d PostgreSQL and %d Redis blocks when those are set, %d marked no-run", ran, len(postgresBlocks), len(redisBlocks), marked)

	bin := buildTokend(t)
	work := t.TempDir()
	inst := startProcess(t, bin, nil, "--data-dir", filepath.Join(work, "tokend-data"))
	export := bannerExport(t, inst)
	for _, file := range docFiles(t) {
		if segs := pages[file]; len(segs) > 0 {
			t.Run(file, func(t *testing.T) { runBlocks(t, work, docsEnv(bin), export, segs) })
		}
	}
	checkBannerExport(t, inst, export)
	for _, b := range postgresBlocks {
		t.Run(b.where()+" postgres", func(t *testing.T) {
			needService(t, "TOKEND_TEST_POSTGRES")
			pepper := make([]byte, 32)
			rand.Read(pepper)
			env := docsEnv(bin, "TOKEND_DATABASE="+pgtest.NewDatabase(t), "TOKEND_PEPPER="+hex.EncodeToString(pepper))
			runBlocks(t, t.TempDir(), env, "", segments(b))
		})
	}
	for _, b := range redisBlocks {
		t.Run(b.where()+" redis", func(t *testing.T) {
			needService(t, "TOKEND_TEST_REDIS")
			r := startProcess(t, bin, map[string]string{"TOKEND_REDIS": redistest.URL(t), "TOKEND_REDIS_PREFIX": redistest.Prefix(t)},
				"--data-dir", filepath.Join(t.TempDir(), "tokend-data"))
			export := bannerExport(t, r)
			runBlocks(t, t.TempDir(), docsEnv(bin), export, segments(b))
			checkBannerExport(t, r, export)
		})
	}
}

// The configuration table lists exactly the flags of `tokend serve`.
func TestDocsConfigurationListsServeFlags(t *testing.T) {
	var help bytes.Buffer
	if err := run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, strings.NewReader(""), &help, &help); err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z-]+)`).FindAllStringSubmatch(help.String(), -1) {
		if m[1] != "help" {
			flags[m[1]] = true
		}
	}
	if len(flags) == 0 {
		t.Fatalf("no flag found in serve --help:\n%s", help.String())
	}
	documented := map[string]bool{}
	for n, l := range proseLines(readDoc(t, "docs/configuration.md")) {
		m := regexp.MustCompile("^\\| `--([a-z-]+)` \\|").FindStringSubmatch(l)
		if m == nil {
			continue
		}
		documented[m[1]] = true
		if !flags[m[1]] {
			t.Errorf("docs/configuration.md:%d: --%s is not a flag of tokend serve", n, m[1])
		}
	}
	for f := range flags {
		if !documented[f] {
			t.Errorf("docs/configuration.md does not list --%s, a flag of tokend serve", f)
		}
	}
}

// The REST API table of docs/api.md lists every path of the OpenAPI
// document the server serves, with its methods, and nothing else but
// /metrics (which is not in the document, but answers).
func TestDocsAPITableMatchesOpenAPI(t *testing.T) {
	// With GitHub's keys, so that POST /v1/leaks/github is served too.
	keys := filepath.Join(t.TempDir(), "github-keys.json")
	if err := os.WriteFile(keys, githubtest.ListOf(t, githubtest.NewKey(t, "k")), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := startTokend(t, t.TempDir(), nil, "--github-scanning-keys", keys)
	status, b := inst.call(t, "GET", "/openapi.json", "", nil)
	if status != 200 {
		t.Fatalf("GET /openapi.json = %d", status)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	listed := map[string]bool{}
	for n, l := range proseLines(readDoc(t, "docs/api.md")) {
		cols := strings.Split(l, "|")
		if len(cols) < 4 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "`/") {
			continue
		}
		// The first column names paths; `/enable` after `/v1/tokens/{id}/disable`
		// is its sibling.
		var paths []string
		for _, m := range code.FindAllStringSubmatch(cols[1], -1) {
			p := m[1]
			if len(paths) > 0 && strings.Count(p, "/") == 1 && p != "/healthz" && p != "/readyz" && p != "/metrics" {
				last := paths[len(paths)-1]
				p = last[:strings.LastIndex(last, "/")] + p
			}
			paths = append(paths, p)
		}
		var methods []string
		for _, m := range code.FindAllStringSubmatch(cols[2], -1) {
			if w := m[1]; w == strings.ToUpper(w) && regexp.MustCompile(`^[A-Z]+$`).MatchString(w) {
				methods = append(methods, strings.ToLower(w))
			}
		}
		for _, p := range paths {
			listed[p] = true
			if p == "/metrics" {
				if status, _ := inst.call(t, "GET", p, "", nil); status != 200 {
					t.Errorf("docs/api.md:%d: GET /metrics = %d", n, status)
				}
				continue
			}
			ops, ok := doc.Paths[p]
			if !ok {
				t.Errorf("docs/api.md:%d: %s is not a path of /openapi.json", n, p)
				continue
			}
			for _, m := range methods {
				if _, ok := ops[m]; !ok {
					t.Errorf("docs/api.md:%d: %s has no %s in /openapi.json", n, p, strings.ToUpper(m))
				}
			}
		}
	}
	for p := range doc.Paths {
		if !listed[p] {
			t.Errorf("docs/api.md's table does not list %s, a path of /openapi.json", p)
		}
	}
}
