package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/secret"
)

// The canary: a whole token lifecycle on the real server with debug logging,
// through the API and the CLI, then a search of everything tokend keeps or
// tells for every secret it issued and for each secret's random part alone:
// the server's logs (stderr and stdout, but the banner line that shows the
// bootstrap secret), every HTTP answer but those of create and rotate (the
// one time a secret is shown), error bodies provoked with secrets in them,
// the CLI's output but that of create and rotate, the audit log (every
// page), /metrics, and the storage itself (the SQLite file with its -wal and
// -shm while the server runs and after it stopped, or every row of every
// PostgreSQL table as text). Zero hits.

func TestCanaryNoSecretInLogsAuditMetricsErrorsOrStorage(t *testing.T) {
	dir := t.TempDir()
	c := runCanary(t, dir, nil)
	// SQLite removes the -wal and -shm files when the last connection
	// closes: they are searched while the server runs.
	files := func(want ...string) map[string][]byte {
		out := map[string][]byte{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = b
			names = append(names, e.Name())
		}
		for _, must := range want {
			if len(out[must]) == 0 {
				t.Errorf("the data directory has no %s to search (it has %v)", must, names)
			}
		}
		return out
	}
	for name, b := range files("tokend.db", "tokend.db-wal", "tokend.db-shm") {
		c.search("the running server's "+name, b)
	}
	c.in.stop()
	for name, b := range files("tokend.db") {
		c.search("the stopped server's "+name, b)
	}
	c.finish()
}

func TestCanaryNoSecretInLogsAuditMetricsErrorsOrStorageOnPostgres(t *testing.T) {
	if os.Getenv("TOKEND_TEST_POSTGRES") == "" {
		t.Skip("TOKEND_TEST_POSTGRES is not set")
	}
	db := pgtest.NewDatabase(t)
	c := runCanary(t, filepath.Join(t.TempDir(), "unused"), map[string]string{"TOKEND_PEPPER": strings.Repeat("c", 40)}, "--database", db)
	rows := func() map[string][]byte {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		r, err := conn.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
			WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for _, tbl := range tables {
			r, err := conn.Query(ctx, "SELECT t::text FROM "+tbl+" t")
			if err != nil {
				t.Fatal(err)
			}
			texts, err := pgx.CollectRows(r, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			out[tbl] = []byte(strings.Join(texts, "\n"))
		}
		if len(out["public.tokens"]) == 0 {
			t.Errorf("no rows in public.tokens to search (tables: %v)", tables)
		}
		return out
	}
	for tbl, b := range rows() {
		c.search("the running server's table "+tbl, b)
	}
	c.in.stop()
	for tbl, b := range rows() {
		c.search("the stopped server's table "+tbl, b)
	}
	c.finish()
}

// canary holds the secrets issued and where each was searched for.
type canary struct {
	t        *testing.T
	in       *instance
	secrets  []string
	searched []string
	bytes    int
}

// issued records a secret that an answer showed, once.
func (c *canary) issued(s string) {
	c.t.Helper()
	if _, ok := secret.Check(s); !ok {
		c.t.Fatalf("not a secret: %q", secret.Mask(s))
	}
	c.secrets = append(c.secrets, s)
}

// search looks for every secret, and its random part alone, in b.
func (c *canary) search(where string, b []byte) {
	c.t.Helper()
	c.searched = append(c.searched, where)
	c.bytes += len(b)
	for _, s := range c.secrets {
		random := s[len(s)-secret.ChecksumLen-1-secret.RandomLen : len(s)-secret.ChecksumLen-1]
		for _, needle := range []string{s, random} {
			if i := bytes.Index(b, []byte(needle)); i >= 0 {
				lo, hi := max(0, i-120), min(len(b), i+len(needle)+120)
				c.t.Errorf("%s holds the secret %s (%d bytes searched; around it: %q)", where, secret.Mask(s), len(b),
					strings.ReplaceAll(string(b[lo:hi]), needle, "<SECRET>"))
				break
			}
		}
	}
}

// finish searches the server's own output, once it has stopped.
func (c *canary) finish() {
	c.t.Helper()
	// The banner, up to "Press Ctrl+C", shows the bootstrap secret (on its
	// own line and in an export example); its other lines and everything
	// after it are searched.
	out := c.in.stdout.String()
	banner, rest, ok := strings.Cut(out, "Press Ctrl+C to stop.\n")
	if !ok {
		c.t.Errorf("no banner in the server's standard output:\n%s", out)
	}
	var kept []string
	for _, l := range strings.Split(banner, "\n") {
		if !strings.Contains(l, c.in.bootstrap) {
			kept = append(kept, l)
		}
	}
	c.search("the server's banner (but the lines that show the bootstrap secret)", []byte(strings.Join(kept, "\n")))
	c.search("the server's standard output after the banner", []byte(rest))
	logs := c.in.stderr.String()
	if !strings.Contains(logs, "level=DEBUG") {
		c.t.Errorf("the server logged nothing at debug level:\n%s", logs)
	}
	c.search("the server's log (stderr)", []byte(logs))
	if len(c.secrets) < 10 {
		c.t.Errorf("only %d secrets issued", len(c.secrets))
	}
	c.t.Logf("%d secrets searched for, with their random parts, in %d places (%d bytes)", len(c.secrets), len(c.searched), c.bytes)
}

// runCanary starts the server and drives the lifecycle, searching every
// answer as it comes; the caller searches storage and calls finish.
func runCanary(t *testing.T, dir string, env map[string]string, args ...string) *canary {
	in := startTokend(t, dir, env, append([]string{"--log-level", "debug"}, args...)...)
	if in.bootstrap == "" {
		t.Fatalf("no bootstrap secret in the banner:\n%s", in.stdout.String())
	}
	c := &canary{t: t, in: in}
	c.issued(in.bootstrap)
	admin := in.bootstrap

	// do sends a request and answers status and body; every answer but
	// those that issue a secret is searched (headers too).
	do := func(method, path string, header map[string]string, body string, issues bool) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, in.url+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if !issues || res.StatusCode >= 300 {
			var h bytes.Buffer
			res.Header.Write(&h)
			c.search(fmt.Sprintf("the answer to %s %s (%d)", method, path, res.StatusCode), append(h.Bytes(), b...))
		}
		return res.StatusCode, b
	}
	bearer := map[string]string{"Authorization": "Bearer " + admin}
	api := func(method, path, body string, want int) []byte {
		t.Helper()
		status, b := do(method, path, bearer, body, false)
		if status != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
		}
		return b
	}
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	issue := func(method, path, body string) created {
		t.Helper()
		status, b := do(method, path, bearer, body, true)
		if status != 200 && status != 201 {
			t.Fatalf("%s %s = %d %s", method, path, status, b)
		}
		var cr created
		if err := json.Unmarshal(b, &cr); err != nil || cr.Secret == "" {
			t.Fatalf("%s %s answered no secret: %s", method, path, b)
		}
		c.issued(cr.Secret)
		return cr
	}
	verifyCode := func(req tokend.VerifyRequest) tokend.Code {
		t.Helper()
		status, b := do("POST", "/v1/verify", nil, jsonOf(req), false)
		if status != 200 {
			t.Fatalf("verify = %d %s", status, b)
		}
		var res tokend.VerifyResult
		json.Unmarshal(b, &res)
		return res.Code
	}
	auth := func(header map[string]string) int {
		t.Helper()
		status, _ := do("GET", "/v1/auth", header, "", false)
		return status
	}

	var app tokend.App
	json.Unmarshal(api("POST", "/v1/apps", jsonOf(tokend.AppInput{Name: "canary", TokenPrefix: "cnry",
		Permissions: []string{"orders:read", "orders:write"}}), 201), &app)
	var other tokend.App
	json.Unmarshal(api("POST", "/v1/apps", jsonOf(tokend.AppInput{Name: "canary-other"}), 201), &other)

	// Tokens of several kinds, each verified through /v1/verify and /v1/auth.
	uses := int64(100)
	reader := issue("POST", "/v1/tokens", jsonOf(tokend.TokenInput{AppID: app.ID, Name: "reader", Access: tokend.AccessReadOnly,
		Metadata: map[string]any{"team": "canary"}}))
	writer := issue("POST", "/v1/tokens", jsonOf(tokend.TokenInput{AppID: app.ID, Name: "writer", Access: tokend.AccessFull,
		AllowedIPs: []string{"203.0.113.0/24", "127.0.0.1"}, RateLimit: &tokend.RateLimit{Limit: 100, Window: tokend.Duration(time.Hour)},
		MaxUses: &uses, ExpiresIn: "7d"}))
	custom := issue("POST", "/v1/tokens", jsonOf(tokend.TokenInput{AppID: app.ID, Name: "custom", Access: tokend.AccessCustom,
		Permissions: []string{"orders:write"}, ExpiresIn: "unlimited"}))
	plugin := issue("POST", "/v1/tokens", jsonOf(tokend.TokenInput{AppID: app.ID, Name: "plugin", Type: tokend.TypePlugin,
		AllowedOrigins: []string{"https://app.example.com"}}))
	doomed := issue("POST", "/v1/tokens", jsonOf(tokend.TokenInput{AppID: other.ID, Name: "doomed"}))
	for _, tk := range []created{reader, writer, custom, plugin, doomed} {
		verifyCode(tokend.VerifyRequest{Token: tk.Secret})
		verifyCode(tokend.VerifyRequest{Token: tk.Secret, Permissions: []string{"orders:write"}, IP: "198.51.100.7", Origin: "https://evil.example"})
		auth(map[string]string{"Authorization": "Bearer " + tk.Secret, "X-Forwarded-Method": "POST"})
		auth(map[string]string{"X-API-Key": tk.Secret})
	}
	if code := verifyCode(tokend.VerifyRequest{Token: writer.Secret, IP: "203.0.113.9", Permissions: []string{"orders:write"}}); code != tokend.CodeValid {
		t.Errorf("the writer token answers %s", code)
	}
	if code := verifyCode(tokend.VerifyRequest{Token: plugin.Secret, Origin: "https://app.example.com"}); code != tokend.CodeValid {
		t.Errorf("the plugin token answers %s from its origin", code)
	}
	// Mistyped and unknown secrets are logged as attempts: never in full.
	verifyCode(tokend.VerifyRequest{Token: mistype(reader.Secret)})
	auth(map[string]string{"Authorization": "Bearer " + mistype(writer.Secret)})

	// Edit, disable, enable, with the token's ETag.
	api("PATCH", "/v1/tokens/"+reader.Token.ID, `{"name":"reader-2","description":"renamed by the canary"}`, 200)
	api("POST", "/v1/tokens/"+reader.Token.ID+"/disable", "", 200)
	if code := verifyCode(tokend.VerifyRequest{Token: reader.Secret}); code != tokend.CodeDisabled {
		t.Errorf("a disabled token answers %s", code)
	}
	api("POST", "/v1/tokens/"+reader.Token.ID+"/enable", "", 200)

	// Rotate with grace, then without: the old secrets are presented again.
	r1 := issue("POST", "/v1/tokens/"+writer.Token.ID+"/rotate", `{"grace_period":"1h"}`)
	verifyCode(tokend.VerifyRequest{Token: writer.Secret, IP: "203.0.113.9"})
	r2 := issue("POST", "/v1/tokens/"+writer.Token.ID+"/rotate", "")
	for _, s := range []string{writer.Secret, r1.Secret, r2.Secret} {
		verifyCode(tokend.VerifyRequest{Token: s, IP: "203.0.113.9"})
		auth(map[string]string{"Authorization": "Bearer " + s, "X-Forwarded-For": "203.0.113.9"})
	}
	if code := verifyCode(tokend.VerifyRequest{Token: r2.Secret, IP: "203.0.113.9"}); code != tokend.CodeValid {
		t.Errorf("the newest secret answers %s", code)
	}

	// Error bodies, provoked with secrets where a client might put them by
	// mistake: a secret in place of an id, a name, a permission, an IP
	// range, an origin, a cursor, a filter; and an admin secret that is not
	// an admin token.
	for _, s := range []string{reader.Secret, admin} {
		do("GET", "/v1/tokens/"+url.PathEscape(s), bearer, "", false)
		do("PATCH", "/v1/tokens/"+url.PathEscape(s), bearer, `{"name":"x"}`, false)
		do("POST", "/v1/tokens/"+url.PathEscape(s)+"/rotate", bearer, "", false)
		do("GET", "/v1/tokens?app_id="+url.QueryEscape(s), bearer, "", false)
		do("GET", "/v1/tokens?cursor="+url.QueryEscape(s), bearer, "", false)
		do("GET", "/v1/tokens?q="+url.QueryEscape(s)+"&status="+url.QueryEscape(s), bearer, "", false)
		do("GET", "/v1/audit?cursor="+url.QueryEscape(s)+"&since="+url.QueryEscape(s), bearer, "", false)
		do("POST", "/v1/tokens", bearer, jsonOf(map[string]any{"app_id": s, "name": "x"}), false)
		do("POST", "/v1/tokens", bearer, jsonOf(map[string]any{"app_id": app.ID, "name": "x", "access": "custom", "permissions": []string{s}}), false)
		do("POST", "/v1/tokens", bearer, jsonOf(map[string]any{"app_id": app.ID, "name": "x", "allowed_ips": []string{s}, "allowed_origins": []string{s}, "expires_in": s}), false)
		do("POST", "/v1/tokens", bearer, jsonOf(map[string]any{"app_id": app.ID, "name": "x", "metadata": s, "rate_limit": map[string]any{"limit": 1, "window": s}}), false)
		do("POST", "/v1/tokens", bearer, `{"app_id":"`+s+`",`, false) // not JSON
		do("POST", "/v1/verify", nil, jsonOf(map[string]any{"token": s, "ip": s, "origin": s, "permissions": []string{s}}), false)
		do("POST", "/v1/verify", nil, `{"token":"`+s+`","unknown":1}`, false)
		do("POST", "/v1/verify", nil, `{"token":"`+s+`"`, false)
		do("GET", "/v1/auth?permission="+url.QueryEscape(s), map[string]string{"Authorization": "Bearer " + s}, "", false)
		do("GET", "/v1/apps", map[string]string{"Authorization": "Bearer " + mistype(s)}, "", false)
		do("GET", "/v1/"+url.PathEscape(s), bearer, "", false)
	}
	do("GET", "/v1/apps", map[string]string{"Authorization": "Bearer " + reader.Secret}, "", false) // not an admin token
	do("DELETE", "/v1/tokens/"+reader.Token.ID, map[string]string{"Authorization": "Bearer " + custom.Secret}, "", false)

	// The CLI, for part of it: create and rotate show their secret (not
	// searched); everything else it prints is.
	vars := map[string]string{"TOKEND_URL": in.url, "TOKEND_TOKEN": admin}
	cli := func(issues bool, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, args, func(k string) string { return vars[k] }, strings.NewReader(""), &out, &errOut)
		if !issues || err != nil {
			c.search("the output of tokend "+strings.Join(args, " "), out.Bytes())
		}
		c.search("the error output of tokend "+strings.Join(args, " "), errOut.Bytes())
		if err != nil && issues {
			t.Fatalf("tokend %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	var cliTok created
	json.Unmarshal([]byte(cli(true, "token", "create", "--app", app.ID, "--name", "from-cli", "--rate-limit", "10/1m", "--json")), &cliTok)
	c.issued(cliTok.Secret)
	rotated := cli(true, "token", "rotate", cliTok.Token.ID, "--grace", "1h")
	var cliRotated string
	for _, f := range strings.Fields(rotated) {
		if _, ok := secret.Check(f); ok {
			cliRotated = f
		}
	}
	c.issued(cliRotated)
	cli(false, "token", "get", cliTok.Token.ID)
	cli(false, "token", "list", "--app", app.ID)
	cli(false, "token", "edit", cliTok.Token.ID, "--description", "edited from the CLI")
	cli(false, "token", "disable", cliTok.Token.ID)
	cli(false, "token", "enable", cliTok.Token.ID)
	cli(false, "token", "get", cliRotated) // a secret where an id belongs
	cli(false, "token", "usage", cliTok.Token.ID)
	cli(false, "audit")
	verifyCode(tokend.VerifyRequest{Token: cliTok.Secret})
	verifyCode(tokend.VerifyRequest{Token: cliRotated})

	// Revoke, revoke all, delete, and present the secrets once more.
	api("POST", "/v1/tokens/"+custom.Token.ID+"/revoke", "", 200)
	api("POST", "/v1/apps/"+other.ID+"/revoke-all", "", 200)
	cli(false, "token", "delete", plugin.Token.ID, "--yes")
	for _, s := range c.secrets {
		verifyCode(tokend.VerifyRequest{Token: s})
	}
	// Wait (10 s at most) for the batched usage to reach storage, so that
	// it is searched too.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var tok tokend.Token
		json.Unmarshal(api("GET", "/v1/tokens/"+r2.Token.ID, "", 200), &tok)
		if tok.LastUsedAt != nil {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the newest secret's use is not in storage after 10s")
		case <-tick.C:
		}
	}

	// The audit log, every page, and the metrics.
	pages := 0
	for cursor := ""; ; pages++ {
		var page tokend.Page[tokend.Event]
		json.Unmarshal(api("GET", "/v1/audit?limit=5&cursor="+url.QueryEscape(cursor), "", 200), &page)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if pages < 4 {
		t.Errorf("the audit log has %d pages of 5, want a lifecycle's worth", pages+1)
	}
	metrics := api("GET", "/metrics", "", 200)
	if !bytes.Contains(metrics, []byte("tokend_")) {
		t.Errorf("/metrics shows no tokend metric:\n%s", metrics)
	}
	return c
}
