package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// instance is a tokend server started through run, in-process, the way
// `tokend serve` starts.
type instance struct {
	url       string
	bootstrap string // the owner secret from the first-start banner, if any
	stderr    *lockedBuffer
	stdout    *lockedBuffer
	stop      func()          // graceful shutdown, waits for run to return
	kill      func()          // SIGKILL, for a process of its own (startProcess) only
	signal    func(os.Signal) // for a process of its own (startProcess) only
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	listeningRE = regexp.MustCompile(`listening on (https?://\S+)`)
	secretRE    = regexp.MustCompile(`(?m)^\s+(tkd_admin_[0-9A-Za-z]+_[0-9A-Za-z]{6})\s*$`)
)

// startTokend runs `tokend serve` on a free port with dataDir and extra
// environment, and waits until the banner says where it listens.
func startTokend(t *testing.T, dataDir string, env map[string]string, args ...string) *instance {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	pr, pw := io.Pipe()
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--flush-interval", "50ms"}, args...)
	go func() {
		done <- run(ctx, argv, getenv, strings.NewReader(""), io.MultiWriter(pw, stdout), stderr)
		pw.Close()
	}()
	inst := &instance{stdout: stdout, stderr: stderr}
	found := inst.readBanner(pr)
	select {
	case <-found:
	case err := <-done:
		cancel()
		t.Fatalf("tokend serve exited: %v\nstderr: %s", err, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("tokend serve did not start; stdout: %s stderr: %s", stdout.String(), stderr.String())
	}
	var once sync.Once
	inst.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("tokend serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("tokend serve did not shut down")
			}
		})
	}
	t.Cleanup(inst.stop)
	return inst
}

// readBanner reads serve's standard output for the address and the
// bootstrap secret; the channel closes once the banner is complete, or the
// output ended without one.
func (in *instance) readBanner(stdout io.Reader) <-chan struct{} {
	found := make(chan struct{})
	var closeFound sync.Once
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if m := listeningRE.FindStringSubmatch(line); m != nil && in.url == "" {
				in.url = m[1]
			}
			if m := secretRE.FindStringSubmatch(line); m != nil {
				in.bootstrap = m[1]
			}
			if strings.HasPrefix(line, "Press Ctrl+C") {
				closeFound.Do(func() { close(found) })
			}
		}
		closeFound.Do(func() { close(found) })
	}()
	return found
}

func (in *instance) call(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	res := in.do(t, method, path, token, body)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// do sends a request with an optional bearer token and JSON body, and
// answers the response for the caller to read and close.
func (in *instance) do(t *testing.T, method, path, token string, body any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, in.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (in *instance) verifyCode(t *testing.T, sec string) tokend.Code {
	t.Helper()
	status, b := in.call(t, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: sec})
	if status != 200 {
		t.Fatalf("verify = %d %s", status, b)
	}
	var res tokend.VerifyResult
	json.Unmarshal(b, &res)
	return res.Code
}

type created struct {
	Token  tokend.Token `json:"token"`
	Secret string       `json:"secret"`
}

func TestFirstStartBootstrapsOnceAndDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := startTokend(t, dir, nil)
	if a.bootstrap == "" {
		t.Fatalf("the first start printed no bootstrap token:\n%s", a.stdout.String())
	}
	if st, err := os.Stat(filepath.Join(dir, "pepper")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file: %v %v", st, err)
	}
	status, b := a.call(t, "POST", "/v1/apps", a.bootstrap, tokend.AppInput{Name: "shop"})
	if status != 201 {
		t.Fatalf("create app = %d %s", status, b)
	}
	var app tokend.App
	json.Unmarshal(b, &app)
	var keep, gone created
	_, b = a.call(t, "POST", "/v1/tokens", a.bootstrap, tokend.TokenInput{AppID: app.ID, Name: "keep"})
	json.Unmarshal(b, &keep)
	_, b = a.call(t, "POST", "/v1/tokens", a.bootstrap, tokend.TokenInput{AppID: app.ID, Name: "gone"})
	json.Unmarshal(b, &gone)
	if status, b := a.call(t, "POST", "/v1/tokens/"+gone.Token.ID+"/revoke", a.bootstrap, nil); status != 200 {
		t.Fatalf("revoke = %d %s", status, b)
	}
	if c := a.verifyCode(t, keep.Secret); c != tokend.CodeValid {
		t.Fatalf("before restart: %s", c)
	}
	a.stop() // graceful: flushes usage

	b2 := startTokend(t, dir, nil)
	if b2.bootstrap != "" || strings.Contains(b2.stdout.String(), "first start") {
		t.Fatalf("a restart printed a bootstrap token again:\n%s", b2.stdout.String())
	}
	// Read before this instance verifies the token itself: its own use
	// would be flushed within the test's 50ms flush interval and counted.
	_, b = b2.call(t, "GET", "/v1/tokens/"+keep.Token.ID, a.bootstrap, nil)
	var got tokend.Token
	json.Unmarshal(b, &got)
	if got.LastUsedAt == nil || got.UseCount != 1 {
		t.Errorf("the last use recorded before shutdown was lost: %s", b)
	}
	if c := b2.verifyCode(t, keep.Secret); c != tokend.CodeValid {
		t.Errorf("after restart the token is %s", c)
	}
	if c := b2.verifyCode(t, gone.Secret); c != tokend.CodeRevoked {
		t.Errorf("after restart the revoked token is %s", c)
	}
	if c := b2.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("after restart the owner token is %s", c)
	}
}

func TestNoSecretInLogsAuditOrDatabase(t *testing.T) {
	dir := t.TempDir()
	a := startTokend(t, dir, nil, "--log-level", "debug")
	_, b := a.call(t, "POST", "/v1/apps", a.bootstrap, tokend.AppInput{Name: "shop"})
	var app tokend.App
	json.Unmarshal(b, &app)
	var tok created
	_, b = a.call(t, "POST", "/v1/tokens", a.bootstrap, tokend.TokenInput{AppID: app.ID, Name: "secretive"})
	json.Unmarshal(b, &tok)
	a.verifyCode(t, tok.Secret)
	var rot created
	_, b = a.call(t, "POST", "/v1/tokens/"+tok.Token.ID+"/rotate", a.bootstrap, map[string]string{"grace_period": "1h"})
	json.Unmarshal(b, &rot)
	a.verifyCode(t, tok.Secret)
	a.verifyCode(t, rot.Secret)
	a.verifyCode(t, tok.Secret[:len(tok.Secret)-2]+"xx") // a mistyped one
	_, audit := a.call(t, "GET", "/v1/audit?limit=200", a.bootstrap, nil)
	a.stop()

	secrets := map[string]string{"owner": a.bootstrap, "created": tok.Secret, "rotated": rot.Secret}
	// The random part alone is what must never be kept anywhere.
	for name, s := range secrets {
		random := s[strings.LastIndex(s[:strings.LastIndex(s, "_")], "_")+1 : strings.LastIndex(s, "_")]
		if strings.Contains(a.stderr.String(), random) {
			t.Errorf("the %s secret is in the logs", name)
		}
		if bytes.Contains(audit, []byte(random)) {
			t.Errorf("the %s secret is in the audit log", name)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(random)) {
				t.Errorf("the %s secret is in %s", name, e.Name())
			}
		}
	}
	if !strings.Contains(a.stderr.String(), tok.Token.ID) {
		t.Error("the logs do not mention the token id at all; is logging on?")
	}
}

func TestBootstrapPrintsOnlyTheSecret(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"bootstrap", "--data-dir", dir}, func(string) string { return "" }, nil, &out, &errOut); err != nil {
		t.Fatalf("bootstrap: %v %s", err, errOut.String())
	}
	sec := strings.TrimSpace(out.String())
	if !regexp.MustCompile(`^tkd_admin_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}$`).MatchString(sec) {
		t.Fatalf("stdout = %q, want just the secret", out.String())
	}
	// The server started on the same data then accepts it, and makes no
	// bootstrap token of its own.
	a := startTokend(t, dir, nil)
	if a.bootstrap != "" {
		t.Error("serve bootstrapped although an admin token exists")
	}
	if status, b := a.call(t, "GET", "/v1/tokens", sec, nil); status != 200 {
		t.Errorf("the bootstrap token is refused: %d %s", status, b)
	}
}

func TestEnvironmentTwinsAndPepper(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKEND_DATA_DIR": dir, "TOKEND_PEPPER": strings.Repeat("p", 40), "TOKEND_LOG_FORMAT": "json"}
	a := startTokendEnv(t, env)
	if _, err := os.Stat(filepath.Join(dir, "tokend.db")); err != nil {
		t.Errorf("TOKEND_DATA_DIR not used: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pepper")); err == nil {
		t.Error("a pepper file was made although TOKEND_PEPPER was given")
	}
	if !strings.HasPrefix(strings.TrimSpace(a.stderr.String()), "{") {
		t.Errorf("TOKEND_LOG_FORMAT=json not used: %s", a.stderr.String())
	}
	a.stop()
	// The same database with another pepper would know none of its
	// secrets: it is refused.
	env["TOKEND_PEPPER"] = strings.Repeat("q", 40)
	err := runFails(t, env, "serve", "--addr", "127.0.0.1:0")
	wantErr(t, "serve with another TOKEND_PEPPER", err, "wrong pepper", "TOKEND_PEPPER has the fingerprint")
}

func startTokendEnv(t *testing.T, env map[string]string) *instance {
	t.Helper()
	return startTokend(t, env["TOKEND_DATA_DIR"], env)
}

func TestServeRefusesBadConfiguration(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string // in the error
	}{
		"postgres without a pepper": {[]string{"serve", "--database", "postgres://localhost/x"},
			"with PostgreSQL, several instances must share one pepper: set TOKEND_PEPPER or --pepper-file"},
		"bad trusted proxy":            {[]string{"serve", "--trusted-proxies", "nope"}, `--trusted-proxies: "nope" is not a CIDR range`},
		"bad log level":                {[]string{"serve", "--log-level", "loud"}, "--log-level"},
		"a negative window":            {[]string{"serve", "--stale-window", "-1s"}, "--stale-window must not be negative"},
		"no event interval":            {[]string{"serve", "--event-interval", "0s"}, "--event-interval must be positive"},
		"an unknown invalidation mode": {[]string{"serve", "--invalidation", "notify"}, `--invalidation: "notify" is neither listen nor poll`},
		"no poll interval": {[]string{"serve", "--invalidation", "poll", "--invalidation-poll-interval", "0s"},
			"--invalidation-poll-interval must be positive"},
		"a negative rotated-secret retention": {[]string{"serve", "--rotated-secret-retention", "-1h"},
			"--rotated-secret-retention must not be negative (0 keeps rotated-out secrets forever)"},
		"a lease shorter than a mail": {[]string{"serve", "--smtp-url", "smtp://mail.example.com", "--smtp-from", "a@example.com", "--webhook-lease", "20s"},
			"--webhook-lease must be longer than the 30s mail timeout"},
		"a short pepper":     {[]string{"serve", "--pepper-file", "PEPPER"}, "is shorter than"},
		"an unknown command": {[]string{"frobnicate"}, `unknown command "frobnicate"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "short"), []byte("tiny"), 0o600)
			args := slices.Clone(c.args)
			for i, a := range args {
				if a == "PEPPER" {
					args[i] = filepath.Join(dir, "short")
				}
			}
			if name != "an unknown command" {
				args = append(args, "--data-dir", dir, "--addr", "127.0.0.1:0")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, args, func(string) string { return "" }, nil, &out, &errOut)
			if err == nil {
				t.Fatalf("run %v succeeded", args)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("run %v: %v, want an error saying %q", args, err, c.want)
			}
		})
	}
}
