package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// These tests deliver events to a webhook receiver on 127.0.0.1 from real
// tokend servers (hence --webhook-allow-http and --webhook-allow-private),
// and check the signatures with the Standard Webhooks library for Node.js,
// an implementation independent of tokend's.

var webhookFlags = []string{"--webhook-allow-http", "--webhook-allow-private"}

// received is one request the receiver got.
type received struct {
	header http.Header
	body   []byte
}

func (r received) id() string { return r.header.Get("webhook-id") }

// receiver is a webhook endpoint that records what it gets and answers
// what answer says (200 by default; dropConnection: no answer at all, as
// an endpoint that is down); hold, when set, keeps a request open until it
// is closed.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
	// answer is the status of the n-th request (from 1).
	answer func(n int) int
	hold   chan struct{}
	held   chan struct{} // closed when a request is being held
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{answer: func(int) int { return 200 }}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body})
		n, answer, hold, held := len(r.got), r.answer, r.hold, r.held
		r.hold = nil
		r.mu.Unlock()
		if hold != nil {
			close(held)
			<-hold
		}
		code := answer(n)
		if code == dropConnection {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return
			}
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// dropConnection, as the receiver's answer, closes the connection
// without answering.
const dropConnection = -1

func (r *receiver) url() string { return r.srv.URL + "/hooks/tokend" }

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// waitFor polls until the receiver holds n requests for which ok is true
// (every request when ok is nil), and answers those.
func (r *receiver) waitFor(t *testing.T, n int, within time.Duration, ok func(received) bool) []received {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var got []received
		for _, x := range r.all() {
			if ok == nil || ok(x) {
				got = append(got, x)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d matching deliveries within %s, want %d; got %d requests in all", len(got), within, n, len(r.all()))
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
}

func eventType(x received) string {
	var n tokend.Notification
	json.Unmarshal(x.body, &n)
	return n.Type
}

// needEvents skips a test on a build whose changes raise no events yet
// (GET /v1/events unknown): nothing would be delivered. Under CI=true it
// fails.
func (in *instance) needEvents(t *testing.T, admin string) {
	t.Helper()
	if status, _ := in.call(t, "GET", "/v1/events", admin, nil); status != http.StatusNotFound {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("GET /v1/events is unknown: this build writes no events to deliver")
	}
	t.Skip("GET /v1/events is unknown: this build writes no events to deliver")
}

// createWebhook adds an endpoint through the API and answers it with its
// secret.
func (in *instance) createWebhook(t *testing.T, admin, url string, events ...string) tokend.WebhookWithSecret {
	t.Helper()
	in.needEvents(t, admin)
	var w tokend.WebhookWithSecret
	in.mustCall(t, 201, "POST", "/v1/webhooks", admin, tokend.WebhookInput{URL: url, Events: events}, &w)
	if !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("created webhook answered secret %q", w.Secret)
	}
	return w
}

// standardWebhooks verifies deliveries with the npm package standardwebhooks
// (pinned by testdata/standardwebhooks/package-lock.json, installed with
// npm ci into a temporary directory): for each delivery and secret, the
// event id the library accepted, or "ERROR …".
type swCase struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func standardWebhooks(t *testing.T) func(cases []swCase) []string {
	t.Helper()
	needTool(t, "node")
	npm := needTool(t, "npm")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "verify.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "standardwebhooks", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Bounded: a registry that does not answer fails (or skips) the test
	// instead of holding it until go test's timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := fmt.Sprintf("npm ci standardwebhooks: %v\n%s", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg + "(the npm registry is needed; required when CI=true)")
	}
	return func(cases []swCase) []string {
		t.Helper()
		in, _ := json.Marshal(cases)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "verify.mjs")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node verify.mjs: %v", err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
}

func swCaseOf(x received, secret string) swCase {
	h := map[string]string{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		h[k] = x.header.Get(k)
	}
	return swCase{Secret: secret, Headers: h, Body: string(x.body)}
}

// token.created, token.rotated and token.revoked reach the endpoint,
// signed so that the Standard Webhooks library accepts them; during a
// secret rotation each of the two signatures is accepted with its own
// secret.
func TestWebhookDeliveriesVerifyWithStandardWebhooks(t *testing.T) {
	verify := standardWebhooks(t)
	rcv := newReceiver(t)
	in := startTokend(t, t.TempDir(), nil, webhookFlags...)
	admin := in.bootstrap
	hook := in.createWebhook(t, admin, rcv.url(), tokend.EventTokenCreated, tokend.EventTokenRotated, tokend.EventTokenRevoked)
	app := in.newApp(t, admin, "shop")
	tok := in.newToken(t, admin, app.ID, "ci")
	in.mustCall(t, 200, "POST", "/v1/tokens/"+tok.Token.ID+"/rotate", admin, nil, nil)
	in.mustCall(t, 200, "POST", "/v1/tokens/"+tok.Token.ID+"/revoke", admin, nil, nil)

	got := rcv.waitFor(t, 3, 30*time.Second, nil)
	var types []string
	var cases []swCase
	for _, x := range got {
		types = append(types, eventType(x))
		cases = append(cases, swCaseOf(x, hook.Secret))
		if ct, ua := x.header.Get("Content-Type"), x.header.Get("User-Agent"); ct != "application/json" || !strings.HasPrefix(ua, "tokend/") {
			t.Errorf("Content-Type %q, User-Agent %q", ct, ua)
		}
		if bytes.Contains(x.body, []byte(tok.Secret)) {
			t.Error("a delivery holds the token's secret")
		}
	}
	if want := []string{tokend.EventTokenCreated, tokend.EventTokenRotated, tokend.EventTokenRevoked}; strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("delivered %v, want %v in order", types, want)
	}
	// A wrong secret is refused by the library: the check is real.
	_, wrong, _ := strings.Cut(in.createWebhook(t, admin, rcv.url()+"/other", "token.deleted").Secret, "_")
	cases = append(cases, swCaseOf(got[0], "whsec_"+wrong))
	res := verify(cases)
	for i, x := range got {
		if res[i] != x.id() {
			t.Errorf("delivery %d (%s): the library answered %q", i, x.id(), res[i])
		}
	}
	if !strings.HasPrefix(res[len(res)-1], "ERROR") {
		t.Errorf("a delivery verified with another endpoint's secret: %q", res[len(res)-1])
	}

	// Rotate the endpoint's secret: for 24 hours both sign.
	var rotated tokend.WebhookWithSecret
	in.mustCall(t, 200, "POST", "/v1/webhooks/"+hook.Webhook.ID+"/rotate-secret", admin, nil, &rotated)
	in.newToken(t, admin, app.ID, "after rotation")
	x := rcv.waitFor(t, 4, 30*time.Second, nil)[3]
	if sigs := strings.Fields(x.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("signatures during a rotation: %q, want two", sigs)
	}
	res = verify([]swCase{swCaseOf(x, rotated.Secret), swCaseOf(x, hook.Secret)})
	if res[0] != x.id() || res[1] != x.id() {
		t.Errorf("during a rotation, the library with the new and the old secret answered %q", res)
	}
}

// The endpoint is down (it drops the connection), then answers 503 for a
// while, then comes back: the retries land, each attempt recorded.
func TestWebhookRetriedUntilTheEndpointComesBack(t *testing.T) {
	rcv := newReceiver(t)
	rcv.answer = func(n int) int {
		switch {
		case n == 1:
			return dropConnection
		case n <= 3:
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	}
	in := startTokend(t, t.TempDir(), nil, append(webhookFlags, "--webhook-retry-schedule", "100ms,200ms")...)
	admin := in.bootstrap
	hook := in.createWebhook(t, admin, rcv.url(), "*")
	app := in.newApp(t, admin, "shop")
	in.newToken(t, admin, app.ID, "ci")
	got := rcv.waitFor(t, 4, 30*time.Second, nil)
	for _, x := range got[1:] {
		if x.id() != got[0].id() {
			t.Errorf("a retry has webhook-id %s, the first attempt %s", x.id(), got[0].id())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page tokend.Page[tokend.Delivery]
		in.mustCall(t, 200, "GET", "/v1/webhooks/"+hook.Webhook.ID+"/deliveries", admin, nil, &page)
		if len(page.Items) == 1 && page.Items[0].Status == tokend.DeliveryDelivered {
			if d := page.Items[0]; d.Attempts != 4 || d.LastStatus == nil || *d.LastStatus != 204 {
				t.Errorf("delivered after %d attempts, last status %v; want 4, 204", d.Attempts, d.LastStatus)
			}
			var got []string
			for _, a := range page.Items[0].History {
				status := "none"
				if a.HTTPStatus != nil {
					status = strconv.Itoa(*a.HTTPStatus)
				}
				got = append(got, fmt.Sprintf("%d:%s:%t:%t", a.N, status, a.Error != "", a.NextRetryAt != nil))
			}
			slices.Sort(got)
			// The dropped connection has no status and an error; the 503s
			// an error; each failed one a next retry.
			if want := []string{"1:none:true:true", "2:503:true:true", "3:503:true:true", "4:204:false:false"}; !slices.Equal(got, want) {
				t.Errorf("attempts (n:status:error:next retry) %v, want %v", got, want)
			}
			for result, want := range map[string]float64{"retry": 3, "delivered": 1, "failed": 0} {
				if got, _ := in.metric(t, `tokend_webhook_deliveries_total{result="`+result+`"}`); got != want {
					t.Errorf("tokend_webhook_deliveries_total{result=%q} = %v, want %v", result, got, want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v", page.Items)
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
}

// tokend is killed (SIGKILL) while the endpoint holds a delivery open;
// started again, it delivers that event once its lease lapses: at least
// once, and at most the one attempt in flight twice.
func TestWebhookDeliverySurvivesKill9(t *testing.T) {
	bin := buildTokend(t)
	dir := t.TempDir()
	rcv := newReceiver(t)
	release := make(chan struct{})
	rcv.hold, rcv.held = release, make(chan struct{})
	held := rcv.held
	args := append([]string{"--data-dir", dir, "--webhook-lease", "11s"}, webhookFlags...)
	a := startProcess(t, bin, nil, args...)
	admin := a.bootstrap
	a.createWebhook(t, admin, rcv.url(), tokend.EventTokenCreated)
	app := a.newApp(t, admin, "shop")
	a.newToken(t, admin, app.ID, "first")
	a.newToken(t, admin, app.ID, "second")
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery arrived; tokend's log:\n%s", a.stderr.String())
	}
	a.kill()
	close(release)

	b := startProcess(t, bin, nil, args...)
	_ = b
	got := rcv.waitFor(t, 3, 60*time.Second, nil)
	count := map[string]int{}
	for _, x := range rcv.all() {
		count[x.id()]++
	}
	if len(count) != 2 {
		t.Fatalf("%d events delivered, want 2: %v", len(count), count)
	}
	if first := got[0].id(); count[first] != 2 {
		t.Errorf("the event in flight at the kill arrived %d times, want 2 (once before, once after)", count[first])
	}
	for id, n := range count {
		if id != got[0].id() && n != 1 {
			t.Errorf("%s arrived %d times", id, n)
		}
	}
}

// Two instances on one PostgreSQL database, one endpoint: 100 token
// changes made through both, every event delivered exactly once.
func TestWebhookExactlyOnceFromTwoInstances(t *testing.T) {
	needService(t, "TOKEND_TEST_POSTGRES")
	db := pgtest.NewDatabase(t)
	bin := buildTokend(t)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	args := append([]string{"--database", db}, webhookFlags...)
	a := startProcess(t, bin, env, args...)
	b := startProcess(t, bin, env, args...)
	admin := a.bootstrap
	rcv := newReceiver(t)
	hook := a.createWebhook(t, admin, rcv.url(), tokend.EventTokenCreated, tokend.EventTokenRevoked)
	app := a.newApp(t, admin, "shop")
	const changes = 100
	var wg sync.WaitGroup
	for i := range changes / 2 {
		in := []*instance{a, b}[i%2]
		wg.Go(func() {
			c := in.newToken(t, admin, app.ID, fmt.Sprintf("t%d", i))
			[]*instance{b, a}[i%2].mustCall(t, 200, "POST", "/v1/tokens/"+c.Token.ID+"/revoke", admin, nil, nil)
		})
	}
	wg.Wait()
	rcv.waitFor(t, changes, 60*time.Second, nil)
	// Every delivery is recorded delivered after one attempt: none is left
	// to come again.
	var page tokend.Page[tokend.Delivery]
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mustCall(t, 200, "GET", "/v1/webhooks/"+hook.Webhook.ID+"/deliveries?status=delivered&limit=200", admin, nil, &page)
		if len(page.Items) >= changes || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
	if len(page.Items) != changes {
		t.Errorf("%d deliveries delivered, want %d", len(page.Items), changes)
	}
	for _, d := range page.Items {
		if d.Attempts != 1 {
			t.Errorf("delivery %s of %s: %d attempts", d.ID, d.EventID, d.Attempts)
		}
	}
	count := map[string]int{}
	for _, x := range rcv.all() {
		count[x.id()]++
	}
	if len(count) != changes {
		t.Errorf("%d distinct events delivered, want %d", len(count), changes)
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
}
