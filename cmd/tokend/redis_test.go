package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/redislimit/redistest"
)

// verifyAs asks an instance about a secret on behalf of a client address.
func (in *instance) verifyAs(t *testing.T, sec, ip string) tokend.VerifyResult {
	t.Helper()
	status, b := in.call(t, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: sec, IP: ip})
	if status != 200 {
		t.Fatalf("verify = %d %s", status, b)
	}
	var res tokend.VerifyResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// create POSTs body to path as admin, wants 201, and decodes the answer
// into out.
func (in *instance) create(t *testing.T, path, admin string, body, out any) {
	t.Helper()
	status, b := in.call(t, "POST", path, admin, body)
	if status != 201 {
		t.Fatalf("POST %s = %d %s", path, status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// metric answers the value of one sample on an instance's /metrics, and
// whether it is there at all.
func (in *instance) metric(t *testing.T, sample string) (float64, bool) {
	t.Helper()
	status, b := in.call(t, "GET", "/metrics", "", nil)
	if status != 200 {
		t.Fatalf("GET /metrics = %d %s", status, b)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s = %q", sample, m[1])
	}
	return v, true
}

// cluster is several instances on one fresh PostgreSQL database and one
// Redis key prefix; the first to start makes an app.
type cluster struct {
	db, prefix string
	env        map[string]string
	admin      string
	appID      string
	members    []*instance
}

func newCluster(t *testing.T) *cluster {
	return &cluster{
		db:     pgtest.NewDatabase(t),
		prefix: redistest.Prefix(t),
		env:    map[string]string{"TOKEND_PEPPER": strings.Repeat("r", 40)},
	}
}

// start runs an instance on the cluster's database with Redis at redisURL.
// The Redis timeout is generous so that a loaded machine does not play an
// outage; the tests that want one cut the connection instead.
func (c *cluster) start(t *testing.T, redisURL string, args ...string) *instance {
	t.Helper()
	argv := append([]string{"--database", c.db, "--redis", redisURL, "--redis-prefix", c.prefix,
		"--redis-timeout", "2s"}, args...)
	in := startTokend(t, filepath.Join(t.TempDir(), "unused"), c.env, argv...)
	if in.bootstrap != "" {
		c.admin = in.bootstrap
		var app tokend.App
		in.create(t, "/v1/apps", c.admin, tokend.AppInput{Name: "shop"}, &app)
		c.appID = app.ID
	}
	c.members = append(c.members, in)
	return in
}

func (c *cluster) limitedToken(t *testing.T, in *instance, limit int) string {
	t.Helper()
	heard := c.heard(t)
	var tok created
	in.create(t, "/v1/tokens", c.admin, tokend.TokenInput{
		AppID: c.appID, Name: fmt.Sprint("limited ", time.Now().UnixNano()),
		RateLimit: &tokend.RateLimit{Limit: limit, Window: tokend.Duration(time.Minute)},
	}, &tok)
	// Every create is announced; an instance that heard of it only after
	// caching the token would read it again, which a test of outages
	// must not leave to chance.
	waitHeard(t, c.members, heard, 1)
	return tok.Secret
}

// heard answers how many changes each member has been told so far.
func (c *cluster) heard(t *testing.T) []float64 {
	t.Helper()
	n := make([]float64, len(c.members))
	for i, in := range c.members {
		n[i], _ = in.metric(t, "tokend_invalidations_received_total")
	}
	return n
}

// waitHeard waits until each instance has been told at least k more
// changes than before (tokend_invalidations_received_total).
func waitHeard(t *testing.T, ins []*instance, before []float64, k float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i, in := range ins {
		for {
			n, _ := in.metric(t, "tokend_invalidations_received_total")
			if n >= before[i]+k {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %d was told %v changes within 10s, want %v", i, n-before[i], k)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Two instances on one database and one Redis: a token limited to N a
// minute gets exactly N VALID answers in all, whichever instance answers,
// then RATE_LIMITED from both; and an address failing verifications is
// throttled by both after the shared failure limit.
func TestRateLimitsSharedByTwoInstances(t *testing.T) {
	redisURL := redistest.URL(t)
	c := newCluster(t)
	a := c.start(t, redisURL, "--failure-limit", "4")
	b := c.start(t, redisURL, "--failure-limit", "4")
	sec := c.limitedToken(t, a, 5)

	valid := 0
	var last [2]tokend.Code
	for i := range 12 {
		in := []*instance{a, b}[i%2]
		res := in.verifyAs(t, sec, "")
		switch res.Code {
		case tokend.CodeValid:
			valid++
		case tokend.CodeRateLimited:
			if res.RateLimit == nil || res.RateLimit.RetryAfter < 1 {
				t.Errorf("RATE_LIMITED without retry_after: %+v", res.RateLimit)
			}
		default:
			t.Fatalf("request %d: %s", i+1, res.Code)
		}
		last[i%2] = res.Code
	}
	if valid != 5 {
		t.Fatalf("%d VALID across two instances for a limit of 5 a minute", valid)
	}
	if last != [2]tokend.Code{tokend.CodeRateLimited, tokend.CodeRateLimited} {
		t.Fatalf("the last answers were %v, want RATE_LIMITED from both", last)
	}

	// The failure throttle: 4 failures a minute per peer, counted by both;
	// each instance learns of the block with its next failure from the
	// peer, so at most one failure more gets through. The ip each junk
	// request names changes every time and does not matter: the peer
	// (127.0.0.1, both instances see the test) does.
	failures := 0
	for i := range 12 {
		in := []*instance{a, b}[i%2]
		if in.verifyAs(t, "tkd_made_up", fmt.Sprintf("198.51.100.%d", i)).Code == tokend.CodeMalformed {
			failures++
		}
	}
	if failures < 4 || failures > 5 {
		t.Fatalf("%d failures got through two instances, want 4 or 5 (limit 4, two instances)", failures)
	}
	fresh := c.limitedToken(t, a, 5) // made through the management API, a door of its own
	for _, in := range []*instance{a, b} {
		if res := in.verifyAs(t, fresh, ""); res.Reason != "client_throttled" {
			t.Fatalf("after the shared failure limit: %+v, want client_throttled", res)
		}
	}
	// Redis holds the count under the peer at the verification door, the
	// key every instance computes alike.
	ctx := t.Context()
	rdb := redistest.Client(t)
	if n, err := rdb.Exists(ctx, c.prefix+"fail:verify|127.0.0.1").Result(); err != nil || n != 1 {
		keys, _ := rdb.Keys(ctx, c.prefix+"fail:*").Result()
		t.Fatalf("the shared failure count is not under fail:verify|127.0.0.1 (%v): %v", err, keys)
	}
	if n, _ := rdb.Exists(ctx, c.prefix+"fail:admin|127.0.0.1").Result(); n != 0 {
		t.Error("failed verifications were counted at the management API's door")
	}
}

// Redis goes away under one instance: verification keeps answering on the
// instance's own limits, a log line and the metrics say so; when Redis is
// back the limits are shared again.
func TestRedisOutage(t *testing.T) {
	redisURL := redistest.URL(t)
	proxy := redistest.NewProxy(t)
	c := newCluster(t)
	a := c.start(t, proxy.URL())
	b := c.start(t, redisURL)
	sec := c.limitedToken(t, a, 6)

	if up, ok := a.metric(t, "tokend_redis_up"); !ok || up != 1 {
		t.Fatalf("tokend_redis_up = %v (present %v), want 1", up, ok)
	}
	// On PostgreSQL the invalidation listener reports itself too.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		up, ok := a.metric(t, "tokend_invalidation_listener_up")
		if ok && up == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tokend_invalidation_listener_up = %v (present %v) 10s after start, want 1", up, ok)
		}
	}
	for _, in := range []*instance{a, b} {
		if c := in.verifyAs(t, sec, "").Code; c != tokend.CodeValid {
			t.Fatalf("before the outage: %s", c)
		}
	}

	proxy.Cut()
	// a counts on its own: it has let 1 of 6 through itself.
	for i := range 5 {
		if c := a.verifyAs(t, sec, "").Code; c != tokend.CodeValid {
			t.Fatalf("during the outage, request %d: %s, want VALID on local limits", i+1, c)
		}
	}
	if c := a.verifyAs(t, sec, "").Code; c != tokend.CodeRateLimited {
		t.Fatalf("during the outage, past the local limit: %s", c)
	}
	if n := strings.Count(a.stderr.String(), "redis is unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, a.stderr.String())
	}
	if up, _ := a.metric(t, "tokend_redis_up"); up != 0 {
		t.Errorf("tokend_redis_up = %v during the outage", up)
	}
	if n, _ := a.metric(t, "tokend_redis_fallbacks_total"); n < 6 {
		t.Errorf("tokend_redis_fallbacks_total = %v, want every verification of the outage", n)
	}

	proxy.Restore()
	deadline := time.Now().Add(30 * time.Second)
	for up, _ := a.metric(t, "tokend_redis_up"); up != 1; up, _ = a.metric(t, "tokend_redis_up") {
		if time.Now().After(deadline) {
			t.Fatalf("tokend_redis_up still 0 30s after Redis came back\n%s", a.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(a.stderr.String(), "redis answers again") {
		t.Errorf("the recovery was not logged:\n%s", a.stderr.String())
	}
	// Redis saw 2 of 6; the 4 left are shared by both instances again.
	valid := 0
	for i := range 10 {
		if []*instance{a, b}[i%2].verifyAs(t, sec, "").Valid {
			valid++
		}
	}
	if valid != 4 {
		t.Fatalf("after the outage %d VALID across both, want the 4 left on Redis", valid)
	}
}

// /metrics answers Prometheus text with tokend's metrics, which move as
// verifications happen; without Redis there is no Redis metric, and no
// secret or token id shows.
func TestMetrics(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil)
	var app tokend.App
	in.create(t, "/v1/apps", in.bootstrap, tokend.AppInput{Name: "shop"}, &app)
	var tok created
	in.create(t, "/v1/tokens", in.bootstrap, tokend.TokenInput{AppID: app.ID, Name: "m"}, &tok)

	valid0, ok := in.metric(t, `tokend_verifications_total{code="VALID"}`)
	if !ok {
		t.Fatal("no tokend_verifications_total{code=\"VALID\"}")
	}
	malformed0, _ := in.metric(t, `tokend_verifications_total{code="MALFORMED"}`)
	for range 3 {
		in.verifyAs(t, tok.Secret, "")
	}
	in.verifyAs(t, "nonsense", "")
	if v, _ := in.metric(t, `tokend_verifications_total{code="VALID"}`); v != valid0+3 {
		t.Errorf("VALID moved from %v to %v after 3 valid verifications", valid0, v)
	}
	if v, _ := in.metric(t, `tokend_verifications_total{code="MALFORMED"}`); v != malformed0+1 {
		t.Errorf("MALFORMED moved from %v to %v after 1 malformed verification", malformed0, v)
	}
	if n, _ := in.metric(t, "tokend_cache_entries"); n < 2 {
		t.Errorf("tokend_cache_entries = %v with two tokens in use", n)
	}
	for _, s := range []string{
		"tokend_cache_bytes", `tokend_storage_errors_total{op="verify"}`, `tokend_storage_errors_total{op="usage_flush"}`,
		"tokend_verifications_throttled_total", `tokend_verifications_total{code="USAGE_EXCEEDED"}`, "go_goroutines",
	} {
		if _, ok := in.metric(t, s); !ok {
			t.Errorf("no %s", s)
		}
	}
	if _, ok := in.metric(t, "tokend_redis_up"); ok {
		t.Error("tokend_redis_up without Redis")
	}
	_, body := in.call(t, "GET", "/metrics", "", nil)
	for _, s := range []string{tok.Secret, tok.Token.ID, in.bootstrap, app.ID} {
		if strings.Contains(string(body), s) {
			t.Errorf("/metrics shows %q", s)
		}
	}
}

// TOKEND_REDIS is --redis's twin; a URL that is not Redis's stops the start.
func TestServeRefusesABadRedisURL(t *testing.T) {
	getenv := func(k string) string {
		if k == "TOKEND_REDIS" {
			return "http://127.0.0.1:6379"
		}
		return ""
	}
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, getenv, nil, &out, &errOut)
	if err == nil || !strings.HasPrefix(err.Error(), "--redis: ") {
		t.Fatalf("serve with TOKEND_REDIS=http://…: %v", err)
	}
}
