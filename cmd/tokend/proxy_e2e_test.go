//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// These tests put the example configurations in examples/ in front of a real
// nginx and a real Caddy, with tokend (in-process) doing the forward auth and
// a recording upstream standing for the protected API.

// freePort answers a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// renderExample reads a file of examples/ and replaces its placeholders.
func renderExample(t *testing.T, name string, repl map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range repl {
		if !strings.Contains(s, k) {
			t.Fatalf("examples/%s has no placeholder %s", name, k)
		}
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// startProxy runs a proxy as a child process in its own process group, waits
// until it accepts connections on port, and stops it (and any worker it
// forked) when the test ends.
func startProxy(t *testing.T, port int, env []string, bin string, args ...string) {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("%s exited before listening on %s: %v\n%s", filepath.Base(bin), addr, err, out.String())
		case <-deadline:
			t.Fatalf("%s is not listening on %s after 10s:\n%s", filepath.Base(bin), addr, out.String())
		case <-tick.C:
		}
	}
}

// upstream is the protected API: it records every request that gets to it.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]seenRequest // by path
}

type seenRequest struct {
	method string
	header http.Header
	body   string
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{seen: map[string]seenRequest{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen[r.URL.Path] = seenRequest{method: r.Method, header: r.Header.Clone(), body: string(b)}
		u.mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) hostPort() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func (u *upstream) got(path string) (seenRequest, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r, ok := u.seen[path]
	return r, ok
}

// proxyTokens are the tokens the cases present.
type proxyTokens struct {
	appID                                   string
	reader, writer, revoked, limited, owned created
}

func makeProxyTokens(t *testing.T, in *instance) proxyTokens {
	t.Helper()
	status, b := in.call(t, "POST", "/v1/apps", in.bootstrap, tokend.AppInput{Name: "shop", TokenPrefix: "shop"})
	if status != 201 {
		t.Fatalf("create app = %d %s", status, b)
	}
	var app tokend.App
	json.Unmarshal(b, &app)
	mk := func(body map[string]any) created {
		t.Helper()
		body["app_id"] = app.ID
		status, b := in.call(t, "POST", "/v1/tokens", in.bootstrap, body)
		if status != 201 {
			t.Fatalf("create token %v = %d %s", body["name"], status, b)
		}
		var c created
		json.Unmarshal(b, &c)
		return c
	}
	tk := proxyTokens{appID: app.ID}
	tk.reader = mk(map[string]any{"name": "reader", "access": "read_only"})
	tk.writer = mk(map[string]any{"name": "writer", "access": "full_access"})
	tk.revoked = mk(map[string]any{"name": "revoked", "access": "full_access"})
	tk.owned = mk(map[string]any{"name": "owned", "access": "read_only", "owner_id": "acct_42", "owner_name": "Zoë"})
	tk.limited = mk(map[string]any{"name": "limited", "access": "read_only",
		"rate_limit": map[string]any{"limit": 2, "window": "1h"}})
	if status, b := in.call(t, "POST", "/v1/tokens/"+tk.revoked.Token.ID+"/revoke", in.bootstrap, nil); status != 200 {
		t.Fatalf("revoke = %d %s", status, b)
	}
	return tk
}

// proxyRequest sends one request through the proxy.
func proxyRequest(t *testing.T, base, method, path string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// checkForwardAuth runs the same cases through a proxy at base.
// It stops tokend at the end, to see that the proxy then fails closed.
func checkForwardAuth(t *testing.T, base string, in *instance, up *upstream, tk proxyTokens) {
	bearer := func(s string) map[string]string { return map[string]string{"Authorization": "Bearer " + s} }

	t.Run("a valid token reaches the upstream with its identity", func(t *testing.T) {
		res, body := proxyRequest(t, base, "GET", "/valid", forge(bearer(tk.reader.Secret)), "")
		if res.StatusCode != 200 || body != "upstream ok" {
			t.Fatalf("status %d %q, want 200 from the upstream", res.StatusCode, body)
		}
		checkIdentity(t, up, "/valid", tk.reader.Token.ID, tk.appID, "reader", "", nil)
	})

	t.Run("a token with an owner passes X-Token-Owner", func(t *testing.T) {
		res, body := proxyRequest(t, base, "GET", "/owned", forge(bearer(tk.owned.Secret)), "")
		if res.StatusCode != 200 {
			t.Fatalf("status %d %q, want 200", res.StatusCode, body)
		}
		checkIdentity(t, up, "/owned", tk.owned.Token.ID, tk.appID, "owned", "acct_42", nil)
	})

	t.Run("X-API-Key is read too", func(t *testing.T) {
		res, _ := proxyRequest(t, base, "GET", "/api-key", forge(map[string]string{"X-API-Key": tk.reader.Secret}), "")
		if res.StatusCode != 200 {
			t.Fatalf("status %d, want 200", res.StatusCode)
		}
		checkIdentity(t, up, "/api-key", tk.reader.Token.ID, tk.appID, "reader", "", nil)
	})

	t.Run("a full_access token may POST, and the body gets through", func(t *testing.T) {
		res, _ := proxyRequest(t, base, "POST", "/write", forge(bearer(tk.writer.Secret)), `{"order":1}`)
		if res.StatusCode != 200 {
			t.Fatalf("status %d, want 200", res.StatusCode)
		}
		got, ok := up.got("/write")
		if !ok || got.method != "POST" || got.body != `{"order":1}` {
			t.Errorf("the upstream saw %v %+v", ok, got)
		}
		checkIdentity(t, up, "/write", tk.writer.Token.ID, tk.appID, "writer", "", nil)
	})

	t.Run("a refused request's forged identity reaches nobody", func(t *testing.T) {
		res, _ := proxyRequest(t, base, "GET", "/forged-only", forge(nil), "")
		if res.StatusCode != 401 {
			t.Errorf("status %d, want 401", res.StatusCode)
		}
		if _, ok := up.got("/forged-only"); ok {
			t.Error("the upstream saw a request with only forged identity headers")
		}
	})

	refused := []struct {
		name, method, path string
		header             map[string]string
		status             int
	}{
		{"no token is refused with 401", "GET", "/missing", nil, 401},
		{"a token with a bad checksum is refused with 401", "GET", "/malformed", bearer(mistype(tk.reader.Secret)), 401},
		{"a revoked token is refused with 401", "GET", "/revoked", bearer(tk.revoked.Secret), 401},
		{"a read_only token may not POST: 403", "POST", "/read-only-post", bearer(tk.reader.Secret), 403},
		{"a read_only token may not DELETE: 403", "DELETE", "/read-only-delete", bearer(tk.reader.Secret), 403},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			res, body := proxyRequest(t, base, c.method, c.path, c.header, "{}")
			if res.StatusCode != c.status {
				t.Errorf("status %d %q, want %d", res.StatusCode, body, c.status)
			}
			if c.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want tokend's Bearer challenge", res.Header.Get("WWW-Authenticate"))
			}
			if _, ok := up.got(c.path); ok {
				t.Error("the upstream saw a refused request")
			}
		})
	}

	t.Run("a rate-limited token is refused with 429 and Retry-After", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			path := fmt.Sprintf("/limited-%d", i)
			res, _ := proxyRequest(t, base, "GET", path, forge(bearer(tk.limited.Secret)), "")
			if res.StatusCode != 200 {
				t.Fatalf("request %d: status %d, want 200", i, res.StatusCode)
			}
			checkIdentity(t, up, path, tk.limited.Token.ID, tk.appID, "limited", "", &rateLimitSeen{limit: 2, remaining: 2 - i})
		}
		res, body := proxyRequest(t, base, "GET", "/limited-3", bearer(tk.limited.Secret), "")
		if res.StatusCode != 429 {
			t.Fatalf("the third request: status %d %q, want 429", res.StatusCode, body)
		}
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 || s > 3600 {
			t.Errorf("Retry-After = %q, want seconds until the hour's window ends", res.Header.Get("Retry-After"))
		}
		if !strings.Contains(body, "RATE_LIMITED") {
			t.Errorf("body %q does not say RATE_LIMITED", body)
		}
		if _, ok := up.got("/limited-3"); ok {
			t.Error("the upstream saw a rate-limited request")
		}
	})

	t.Run("with tokend down nothing gets through", func(t *testing.T) {
		in.stop()
		res, body := proxyRequest(t, base, "GET", "/tokend-down", bearer(tk.reader.Secret), "")
		if res.StatusCode < 500 {
			t.Errorf("status %d %q, want a 5xx", res.StatusCode, body)
		}
		if _, ok := up.got("/tokend-down"); ok {
			t.Error("the upstream saw a request tokend never approved")
		}
	})
}

// forge adds a client's own value for every identity header to h: a
// proxy must drop or replace each of them, whatever tokend answers.
func forge(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for _, k := range identityHeaders {
		out[k] = "forged-" + strings.ToLower(k)
	}
	out["X-Token-App"] = tokend.SystemAppID
	return out
}

// rateLimitSeen is what a rate-limited token's headers must say upstream.
type rateLimitSeen struct{ limit, remaining int }

// checkIdentity asserts every identity header the upstream saw at path:
// exactly one value each, from tokend, and no RateLimit-* at all for a
// token without a rate limit (not empty, not a proxy's placeholder).
func checkIdentity(t *testing.T, up *upstream, path, id, app, name, owner string, rl *rateLimitSeen) {
	t.Helper()
	got, ok := up.got(path)
	if !ok {
		t.Fatalf("the upstream did not see %s", path)
	}
	want := map[string]string{"X-Token-Id": id, "X-Token-App": app, "X-Token-Name": name}
	if owner != "" {
		want["X-Token-Owner"] = owner
	}
	if rl != nil {
		want["RateLimit-Limit"] = strconv.Itoa(rl.limit)
		want["RateLimit-Remaining"] = strconv.Itoa(rl.remaining)
	}
	for _, k := range identityHeaders {
		vs := got.header.Values(k)
		for _, v := range vs {
			if strings.Contains(v, "forged") || strings.Contains(v, "{") || v == tokend.SystemAppID && app != tokend.SystemAppID {
				t.Errorf("the upstream saw %s: %q, a value tokend never gave", k, vs)
			}
		}
		switch {
		case k == "RateLimit-Reset" && rl != nil:
			if s, err := strconv.Atoi(strings.Join(vs, ",")); len(vs) != 1 || err != nil || s < 1 || s > 3600 {
				t.Errorf("the upstream saw %s: %q, want the seconds left in the hour's window", k, vs)
			}
		case want[k] == "":
			if len(vs) != 0 {
				t.Errorf("the upstream saw %s: %q, want no such header (the token has no rate limit)", k, vs)
			}
		case len(vs) != 1 || vs[0] != want[k]:
			t.Errorf("the upstream saw %s: %q, want exactly %q", k, vs, want[k])
		}
	}
}

func TestForwardAuthBehindNginx(t *testing.T) {
	bin := needTool(t, "nginx", "/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")
	in := startTokend(t, t.TempDir(), nil, "--trusted-proxies", "127.0.0.1/32")
	up := startUpstream(t)
	tk := makeProxyTokens(t, in)

	dir := t.TempDir()
	port := freePort(t)
	site := renderExample(t, "nginx.conf", map[string]string{
		"TOKEND_UPSTREAM": strings.TrimPrefix(in.url, "http://"),
		"APP_UPSTREAM":    up.hostPort(),
		"LISTEN_PORT":     "127.0.0.1:" + strconv.Itoa(port),
	})
	if err := os.WriteFile(filepath.Join(dir, "tokend.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	// The main configuration a packaged nginx has in /etc/nginx/nginx.conf,
	// with every path inside dir so that no system directory is needed.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers otherwise switch to a user that cannot enter dir
	}
	tmp := filepath.Join(dir, "tmp")
	main := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    include %[2]s/tokend.conf;
}
`, user, dir, tmp)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(tmp, 0o700)
	startProxy(t, port, os.Environ(), bin, "-e", "stderr", "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")

	checkForwardAuth(t, "http://127.0.0.1:"+strconv.Itoa(port), in, up, tk)
}

func TestForwardAuthBehindCaddy(t *testing.T) {
	bin := needTool(t, "caddy")
	in := startTokend(t, t.TempDir(), nil, "--trusted-proxies", "127.0.0.1/32")
	up := startUpstream(t)
	tk := makeProxyTokens(t, in)

	dir := t.TempDir()
	port := freePort(t)
	// The example as it is, after global options that keep this Caddy to
	// itself: no admin endpoint (several may run at once); what it saves goes to dir.
	site, err := os.ReadFile(filepath.Join("..", "..", "examples", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"{$TOKEND_UPSTREAM", "{$APP_UPSTREAM", "{$LISTEN_PORT"} {
		if !strings.Contains(string(site), p) {
			t.Fatalf("examples/Caddyfile has no placeholder %s}", p)
		}
	}
	conf := "{\n\tadmin off\n}\n\n" + string(site)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"TOKEND_UPSTREAM="+strings.TrimPrefix(in.url, "http://"),
		"APP_UPSTREAM="+up.hostPort(),
		"LISTEN_PORT="+strconv.Itoa(port),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
	)
	startProxy(t, port, env, bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")

	checkForwardAuth(t, "http://127.0.0.1:"+strconv.Itoa(port), in, up, tk)
}

// mistype changes the secret's last character, whatever it is, so that
// its checksum no longer matches.
func mistype(sec string) string {
	c := byte('x')
	if sec[len(sec)-1] == c {
		c = 'y'
	}
	return sec[:len(sec)-1] + string(c)
}
