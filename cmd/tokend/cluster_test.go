package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// These tests run real tokend processes, several on one PostgreSQL
// database, as a deployment behind a load balancer does.

// feedMode is one way changes made through other instances reach an
// instance (tokend serve --invalidation).
type feedMode struct {
	name string
	args []string
	// What the instance logs once it is in step, and once it is back in
	// step after losing the database.
	inStep, backInStep string
}

// feedModes are the multi-instance tests' modes.
var feedModes = []feedMode{
	{"listen", []string{"--invalidation", "listen"}, "invalidation listener connected", "reconnects=1"},
	{"poll", []string{"--invalidation", "poll"}, "invalidation poller reading the change log", "recoveries=1"},
}

// buildTokend builds the tokend binary for one test.
func buildTokend(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tokend")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess runs `tokend serve` as a process of its own on a free port,
// with env as its only TOKEND_* variables, and waits for its banner. It is
// stopped with SIGTERM when the test ends.
func startProcess(t *testing.T, bin string, env map[string]string, args ...string) *instance {
	t.Helper()
	argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "unused"), "--flush-interval", "50ms"}, args...)
	cmd := exec.Command(bin, argv...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKEND_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	inst := &instance{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(pw, inst.stdout)
	cmd.Stderr = inst.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	found := inst.readBanner(pr)
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("tokend did not start; stderr: %s", inst.stderr.String())
	}
	if inst.url == "" {
		t.Fatalf("tokend exited: %v\nstderr: %s", <-exited, inst.stderr.String())
	}
	stopped := false
	inst.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("tokend %s: %v\nstderr: %s", inst.url, err, inst.stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("tokend %s did not shut down", inst.url)
		}
	}
	inst.signal = func(s os.Signal) {
		if err := cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
	}
	inst.kill = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(inst.stop)
	return inst
}

// waitLog waits until the instance's log holds s, and answers when it was
// seen.
func (in *instance) waitLog(t *testing.T, s string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(in.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged within %s:\n%s", s, within, in.stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Now()
}

// verifyAt asks /v1/verify from ip and answers the status and, for a 200,
// the code; for any other status the problem's code.
func (in *instance) verifyAt(t *testing.T, sec, ip string) (int, string) {
	t.Helper()
	status, b := in.call(t, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: sec, IP: ip})
	var res struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("verify answered %d %q", status, b)
	}
	return status, res.Code
}

// mustCall makes an API call that must answer want.
func (in *instance) mustCall(t *testing.T, want int, method, path, token string, body any, out any) {
	t.Helper()
	status, b := in.call(t, method, path, token, body)
	if status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (in *instance) newApp(t *testing.T, admin, name string) tokend.App {
	t.Helper()
	var app tokend.App
	in.mustCall(t, 201, "POST", "/v1/apps", admin, tokend.AppInput{Name: name}, &app)
	return app
}

func (in *instance) newToken(t *testing.T, admin, appID, name string) created {
	t.Helper()
	var c created
	in.mustCall(t, 201, "POST", "/v1/tokens", admin, tokend.TokenInput{AppID: appID, Name: name}, &c)
	return c
}

const clientIP = "192.0.2.1"

// TestInstancesObeyEachOthersChangesWithinASecond makes each kind of change
// through instance A and measures how long instance B, which has the token
// cached, takes to answer differently. B's cache would otherwise trust its
// answer for a minute.
func TestInstancesObeyEachOthersChangesWithinASecond(t *testing.T) {
	bin := buildTokend(t)
	for _, m := range feedModes {
		t.Run(m.name, func(t *testing.T) { testInstancesObeyEachOthersChangesWithinASecond(t, bin, m) })
	}
}

func testInstancesObeyEachOthersChangesWithinASecond(t *testing.T, bin string, m feedMode) {
	db := pgtest.NewDatabase(t)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	a := startProcess(t, bin, env, append(m.args, "--database", db)...)
	// B flushes usage more slowly than A, so that its older last use
	// reaches the database after A's newer one. The test asks B as fast as
	// it answers until it obeys: each answer of the old state (DISABLED
	// before the enable) would count against the address's failure limit.
	b := startProcess(t, bin, env, append(m.args, "--database", db, "--flush-interval", "1s", "--failure-limit", "0")...)
	for _, in := range []*instance{a, b} {
		in.waitLog(t, m.inStep, 10*time.Second)
	}
	admin := a.bootstrap

	app := a.newApp(t, admin, "shop")
	doomedApp := a.newApp(t, admin, "legacy")
	sweptApp := a.newApp(t, admin, "batch")
	tok := map[string]created{}
	for _, name := range []string{"edit", "disable", "revoke", "rotate", "delete", "usage"} {
		tok[name] = a.newToken(t, admin, app.ID, name)
	}
	swept := []created{a.newToken(t, admin, sweptApp.ID, "one"), a.newToken(t, admin, sweptApp.ID, "two")}
	doomed := a.newToken(t, admin, doomedApp.ID, "old")

	warm := func(sec string) {
		t.Helper()
		for range 2 {
			if status, code := b.verifyAt(t, sec, clientIP); status != 200 || code != "VALID" {
				t.Fatalf("B before the change: %d %s", status, code)
			}
		}
	}
	for _, name := range []string{"edit", "disable", "revoke", "rotate", "delete"} {
		warm(tok[name].Secret)
	}
	warm(swept[0].Secret)
	warm(swept[1].Secret)
	warm(doomed.Secret)

	id := func(name string) string { return tok[name].Token.ID }
	changes := []struct {
		kind   string
		change func()
		secret string
		want   string
	}{
		{"edit (allowed_ips)", func() {
			a.mustCall(t, 200, "PATCH", "/v1/tokens/"+id("edit"), admin, map[string]any{"allowed_ips": []string{"10.0.0.0/8"}}, nil)
		}, tok["edit"].Secret, "IP_NOT_ALLOWED"},
		{"disable", func() { a.mustCall(t, 200, "POST", "/v1/tokens/"+id("disable")+"/disable", admin, nil, nil) }, tok["disable"].Secret, "DISABLED"},
		{"enable", func() { a.mustCall(t, 200, "POST", "/v1/tokens/"+id("disable")+"/enable", admin, nil, nil) }, tok["disable"].Secret, "VALID"},
		{"revoke", func() { a.mustCall(t, 200, "POST", "/v1/tokens/"+id("revoke")+"/revoke", admin, nil, nil) }, tok["revoke"].Secret, "REVOKED"},
		{"rotate (old secret)", func() {
			var rotated created
			a.mustCall(t, 200, "POST", "/v1/tokens/"+id("rotate")+"/rotate", admin, map[string]any{}, &rotated)
			tok["rotated"] = rotated
		}, tok["rotate"].Secret, "ROTATED"},
		{"delete", func() { a.mustCall(t, 204, "DELETE", "/v1/tokens/"+id("delete"), admin, nil, nil) }, tok["delete"].Secret, "NOT_FOUND"},
		{"revoke-all", func() { a.mustCall(t, 200, "POST", "/v1/apps/"+sweptApp.ID+"/revoke-all", admin, nil, nil) }, swept[0].Secret, "REVOKED"},
		{"app deletion", func() { a.mustCall(t, 204, "DELETE", "/v1/apps/"+doomedApp.ID, admin, nil, nil) }, doomed.Secret, "NOT_FOUND"},
	}
	var figures []string
	for _, c := range changes {
		c.change()
		acked := time.Now() // A answered: the change is committed
		var code string
		for {
			_, code = b.verifyAt(t, c.secret, clientIP)
			if code == c.want || time.Since(acked) > 5*time.Second {
				break
			}
		}
		took := time.Since(acked)
		figures = append(figures, fmt.Sprintf("%s: %s", c.kind, took.Round(100*time.Microsecond)))
		t.Logf("%s: B obeyed %s after A acknowledged", c.kind, took.Round(100*time.Microsecond))
		if code != c.want {
			t.Fatalf("%s: B still answers %s %s after the change, want %s", c.kind, code, took, c.want)
		}
		if took > time.Second {
			t.Errorf("%s: B took %s to obey, more than 1s", c.kind, took)
		}
	}
	t.Logf("propagation A→B: %s", strings.Join(figures, ", "))
	if _, code := b.verifyAt(t, swept[1].Secret, clientIP); code != "REVOKED" {
		t.Errorf("the other token of the swept app on B: %s", code)
	}
	if _, code := b.verifyAt(t, tok["rotated"].Secret, clientIP); code != "VALID" {
		t.Errorf("the new secret of the rotated token on B: %s", code)
	}

	// Usage counted on both instances adds up; the latest use wins
	// although B, whose uses are older, writes last.
	const onA, onB = 7, 5
	use := tok["usage"]
	for range onB {
		if _, code := b.verifyAt(t, use.Secret, "192.0.2.20"); code != "VALID" {
			t.Fatalf("usage on B: %s", code)
		}
	}
	lastOnA := time.Now().UTC().Truncate(time.Microsecond)
	for range onA {
		if _, code := a.verifyAt(t, use.Secret, "192.0.2.10"); code != "VALID" {
			t.Fatalf("usage on A: %s", code)
		}
	}
	var got tokend.Token
	deadline := time.Now().Add(15 * time.Second)
	for {
		a.mustCall(t, 200, "GET", "/v1/tokens/"+use.Token.ID, admin, nil, &got)
		if got.UseCount >= onA+onB || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.UseCount != onA+onB {
		t.Errorf("use_count = %d, want %d (%d on A + %d on B)", got.UseCount, onA+onB, onA, onB)
	}
	if got.LastUsedAt == nil || got.LastUsedAt.Before(lastOnA) || got.LastUsedIP != "192.0.2.10" {
		t.Errorf("last used %v from %q, want A's use at or after %s from 192.0.2.10", got.LastUsedAt, got.LastUsedIP, lastOnA)
	}
}

// pgListenerName is what the listener of an instance whose database URL
// sets application_name=name calls itself.
func pgListenerName(name string) string { return name + " listener" }

func withAppName(t *testing.T, dbURL, name string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// The server process behind B's listener is killed: a change made through
// A while B's listener is away is obeyed by B within a second of its
// reconnection, because reconnecting drops B's cache.
func TestAKilledListenerIsReplacedAndItsCacheDropped(t *testing.T) {
	db := pgtest.NewDatabase(t)
	bin := buildTokend(t)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	a := startProcess(t, bin, env, "--database", db)
	b := startProcess(t, bin, env, "--database", withAppName(t, db, "tokend-b"))
	b.waitLog(t, "invalidation listener connected", 10*time.Second)
	admin := a.bootstrap
	app := a.newApp(t, admin, "shop")
	tok := a.newToken(t, admin, app.ID, "ci")
	for range 2 {
		if _, code := b.verifyAt(t, tok.Secret, clientIP); code != "VALID" {
			t.Fatalf("B before: %s", code)
		}
	}

	pg := pgtest.Admin(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	var killed int
	err = pg.QueryRow(t.Context(), `
		SELECT count(*) FROM (
			SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND application_name = $2) k`,
		dbName, pgListenerName("tokend-b")).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listener backends of B (%v), want 1", killed, err)
	}
	kill := time.Now()
	a.mustCall(t, 200, "POST", "/v1/tokens/"+tok.Token.ID+"/disable", admin, nil, nil)

	reconnected := b.waitLog(t, "reconnects=1", 10*time.Second)
	var code string
	for {
		_, code = b.verifyAt(t, tok.Secret, clientIP)
		if code == "DISABLED" || time.Since(reconnected) > 5*time.Second {
			break
		}
	}
	took := time.Since(reconnected)
	t.Logf("B's listener was back %s after the kill; B obeyed the change %s after that",
		reconnected.Sub(kill).Round(time.Millisecond), took.Round(100*time.Microsecond))
	if code != "DISABLED" || took > time.Second {
		t.Errorf("B answers %s %s after its listener reconnected, want DISABLED within 1s", code, took)
	}
	if !strings.Contains(b.stderr.String(), "invalidation listener lost its connection") {
		t.Errorf("B did not log the lost connection:\n%s", b.stderr.String())
	}
}

// problemCode answers the code of a problem+json answer, failing on any
// other kind of answer.
func problemCode(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s %s: Content-Type %q, want application/problem+json", res.Request.Method, res.Request.URL.Path, ct)
	}
	var p struct {
		Code string `json:"code"`
	}
	json.NewDecoder(res.Body).Decode(&p)
	return p.Code
}

// B loses the database entirely (a proxy in front of PostgreSQL is cut):
// it never answers VALID for a token it has not cached, serves a cached one
// only within --stale-window, refuses writes with 503 and changes nothing,
// reports not ready, and recovers by itself when the database returns.
func TestADatabaseOutageIsServedWithinTheStaleWindowThen503(t *testing.T) {
	bin := buildTokend(t)
	for _, m := range feedModes {
		t.Run(m.name, func(t *testing.T) { testADatabaseOutageIsServedWithinTheStaleWindowThen503(t, bin, m) })
	}
}

func testADatabaseOutageIsServedWithinTheStaleWindowThen503(t *testing.T, bin string, m feedMode) {
	db := pgtest.NewDatabase(t)
	proxy, viaProxy := pgtest.NewProxy(t, db)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	const window = 3 * time.Second
	a := startProcess(t, bin, env, append(m.args, "--database", db)...)
	b := startProcess(t, bin, env, append(m.args, "--database", viaProxy, "--stale-window", window.String())...)
	b.waitLog(t, m.inStep, 10*time.Second)
	admin := a.bootstrap
	app := a.newApp(t, admin, "shop")
	heard, _ := b.metric(t, "tokend_invalidations_received_total")
	cached := a.newToken(t, admin, app.ID, "cached")
	uncached := a.newToken(t, admin, app.ID, "uncached")
	revoked := a.newToken(t, admin, app.ID, "revoked during the outage")
	// B hears of every create; one heard after B cached the token would
	// make B read it again, during the outage.
	waitHeard(t, []*instance{b}, []float64{heard}, 3)
	for _, sec := range []string{cached.Secret, revoked.Secret} {
		if _, code := b.verifyAt(t, sec, clientIP); code != "VALID" {
			t.Fatalf("B before the outage: %s", code)
		}
	}
	b.mustCall(t, 200, "GET", "/v1/tokens?limit=1", admin, nil, nil) // B caches the admin token too

	proxy.Cut()
	cut := time.Now()

	if status, code := b.verifyAt(t, uncached.Secret, clientIP); status != 503 || code != "UNAVAILABLE" {
		t.Errorf("an uncached token during the outage: %d %s, want 503 UNAVAILABLE", status, code)
	}
	if res := b.do(t, "GET", "/v1/auth", uncached.Secret, nil); res.StatusCode != 503 {
		t.Errorf("forward auth of an uncached token during the outage: %d, want 503", res.StatusCode)
		res.Body.Close()
	} else if c := problemCode(t, res); c != "UNAVAILABLE" {
		t.Errorf("forward auth problem code %q", c)
	}
	if status, code := b.verifyAt(t, cached.Secret, clientIP); status != 200 || code != "VALID" {
		t.Errorf("a cached token right after the cut: %d %s, want VALID within the %s window", status, code, window)
	}
	res := b.do(t, "POST", "/v1/tokens/"+cached.Token.ID+"/disable", admin, nil)
	if res.StatusCode != 503 {
		t.Errorf("a write during the outage: %d, want 503", res.StatusCode)
	}
	if c := problemCode(t, res); c != "UNAVAILABLE" {
		t.Errorf("a write during the outage: problem code %q, want UNAVAILABLE", c)
	}
	if res := b.do(t, "GET", "/readyz", "", nil); res.StatusCode != 503 {
		t.Errorf("/readyz during the outage: %d, want 503", res.StatusCode)
		res.Body.Close()
	} else {
		res.Body.Close()
	}
	a.mustCall(t, 200, "POST", "/v1/tokens/"+revoked.Token.ID+"/revoke", admin, nil, nil)

	// The cached token is served until the window ends, never after: an
	// answer to a request sent after cut+window can only be a 503.
	var lastValid time.Duration
	for {
		sent := time.Now()
		status, code := b.verifyAt(t, cached.Secret, clientIP)
		if status == 200 && code == "VALID" {
			lastValid = sent.Sub(cut)
			if sent.After(cut.Add(window)) {
				t.Fatalf("a cached token answered VALID %s after the cut, past the %s window", sent.Sub(cut), window)
			}
		} else if status != 503 || code != "UNAVAILABLE" {
			t.Fatalf("a cached token during the outage: %d %s", status, code)
		} else if sent.After(cut.Add(window)) {
			break
		}
		if time.Since(cut) > window+10*time.Second {
			t.Fatal("the cached token never stopped being served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the cached token was last served VALID %s after the cut (window %s); 503 after", lastValid.Round(time.Millisecond), window)
	if status, code := b.verifyAt(t, revoked.Secret, clientIP); status != 503 {
		t.Errorf("a token revoked through A, past the window: %d %s, want 503", status, code)
	}
	res = b.do(t, "POST", "/v1/tokens/"+cached.Token.ID+"/disable", admin, nil)
	if res.StatusCode != 503 {
		t.Errorf("a write past the window: %d, want 503", res.StatusCode)
	}
	problemCode(t, res)

	proxy.Restore()
	restored := time.Now()
	deadline := restored.Add(15 * time.Second)
	for {
		_, c1 := b.verifyAt(t, cached.Secret, clientIP)
		_, c2 := b.verifyAt(t, uncached.Secret, clientIP)
		_, c3 := b.verifyAt(t, revoked.Secret, clientIP)
		ready := b.do(t, "GET", "/readyz", "", nil)
		ready.Body.Close()
		if c1 == "VALID" && c2 == "VALID" && c3 == "REVOKED" && ready.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B did not recover: %s %s %s, /readyz %d", c1, c2, c3, ready.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("B answered from the database again %s after it returned", time.Since(restored).Round(time.Millisecond))
	var made created
	b.mustCall(t, 201, "POST", "/v1/tokens", admin, tokend.TokenInput{AppID: app.ID, Name: "after the outage"}, &made)
	listening := b.waitLog(t, m.backInStep, 15*time.Second)
	t.Logf("B's listener was back %s after the database", listening.Sub(restored).Round(time.Millisecond))

	// The writes refused during the outage changed nothing.
	var got tokend.Token
	a.mustCall(t, 200, "GET", "/v1/tokens/"+cached.Token.ID, admin, nil, &got)
	if got.Status != tokend.StatusActive || got.Version != 1 {
		t.Errorf("after the outage the token is %s at version %d; the refused disable changed it", got.Status, got.Version)
	}
	var audit tokend.Page[tokend.Event]
	a.mustCall(t, 200, "GET", "/v1/audit?token_id="+cached.Token.ID, admin, nil, &audit)
	for _, ev := range audit.Items {
		if ev.Action != tokend.ActionTokenCreate {
			t.Errorf("an audit event %s for a write refused during the outage", ev.Action)
		}
	}
}
