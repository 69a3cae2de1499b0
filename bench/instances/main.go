// Command instances measures how soon a change made through one tokend
// instance is obeyed by the others, with many instances on one PostgreSQL
// database (issue 16: 20 instances, p99 ≤ 100 ms and worst ≤ 1 s).
//
// It creates a fresh database on the server named by --url (dropped at the
// end unless --keep), and runs --rounds rounds, taking the modes of --modes
// in turn (listen, poll, listen, poll… so that both see the same machine).
// A round starts --instances `tokend serve` processes (the binary given by
// --tokend; bench/instances.sh builds it from the working tree) with
// --invalidation set to the round's mode, waits until every one is in step
// (tokend_invalidation_listener_up 1), creates the tokens the round changes
// through the first instance (the writer), and caches each of them on every
// instance (two verifications each). Then, one change at a time, it makes
// the change through the writer and measures, for each other instance, the
// time from the writer's answer until that instance obeys: a goroutine per
// instance sends POST /v1/verify every --probe, only while a change is
// pending, and the time is that of the first answer that obeys (0 when the
// first probe, sent after the writer's answer, already obeys).
//
// The changes, --changes of each kind per round: revoke (REVOKED), disable
// (DISABLED), edit permissions (INSUFFICIENT_PERMISSIONS), edit allowed_ips
// (IP_NOT_ALLOWED), rotate (the old secret answers ROTATED), and an app's
// revoke-all (REVOKED).
//
// It prints, per mode, the distribution of the delays (count, p50, p90, p99,
// max, over every change and every instance but the writer), what probing
// cost (probes sent, their median round trip, and this program's CPU time
// while measuring), and the load average. This is a measuring tool, not a
// test; it asserts only that every instance obeys within --give-up.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tokend/tokend/bench/internal/benchserve"
)

// pepper is shared by every instance a run starts.
const pepper = "tokend-instances-bench-pepper-0123456789"

type options struct {
	tokend    string
	url       string
	instances int
	rounds    int
	modes     []string
	changes   int
	probe     time.Duration
	giveUp    time.Duration
	keep      bool
	conns     int
}

func main() {
	var o options
	var modes string
	flag.StringVar(&o.tokend, "tokend", "", "the tokend binary (bench/instances.sh builds it from the working tree)")
	flag.StringVar(&o.url, "url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server (a role that may create databases); the run gets a fresh database on it")
	flag.IntVar(&o.instances, "instances", 20, "tokend serve processes per round")
	flag.IntVar(&o.rounds, "rounds", 4, "rounds, taking the modes in turn")
	flag.StringVar(&modes, "modes", "listen,poll", "the --invalidation modes measured, comma-separated")
	flag.IntVar(&o.changes, "changes", 5, "changes of each kind per round")
	flag.DurationVar(&o.probe, "probe", 2*time.Millisecond, "the wait between two probes of one instance while a change is pending")
	flag.DurationVar(&o.giveUp, "give-up", 10*time.Second, "how long an instance may take to obey before the run fails")
	flag.BoolVar(&o.keep, "keep", false, "keep the database")
	flag.IntVar(&o.conns, "pool", 3, "each instance's pool of database connections (pool_max_conns), besides its listener: 20 instances of the default pool (4 on 2 cores) and their listeners would take all 100 connections PostgreSQL allows by default")
	flag.Parse()
	o.modes = strings.Split(modes, ",")
	if o.tokend == "" {
		log.Fatal("--tokend is required (bench/instances.sh builds it)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// result is what one mode's rounds measured.
type result struct {
	delays   []time.Duration
	byKind   map[string][]time.Duration
	probes   int
	probeRTT []time.Duration
	cpu      time.Duration // this program's, while changes were pending
	wall     time.Duration // time changes were pending
	loads    []string
}

func run(ctx context.Context, o options) error {
	dbURL, drop, err := benchserve.CreateDatabase(ctx, o.url, "tokend_instances")
	if err != nil {
		return err
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(o.conns))
	u.RawQuery = q.Encode()
	dbURL = u.String()
	if !o.keep {
		defer drop()
	}
	fmt.Printf("%d instances, %d rounds (%s in turn), %d changes of each of %d kinds per round, probing every %s\n",
		o.instances, o.rounds, strings.Join(o.modes, ", "), o.changes, len(kinds), o.probe)
	results := map[string]*result{}
	admin := ""
	for r := range o.rounds {
		mode := o.modes[r%len(o.modes)]
		if results[mode] == nil {
			results[mode] = &result{byKind: map[string][]time.Duration{}}
		}
		var err error
		admin, err = round(ctx, o, dbURL, mode, r, admin, results[mode])
		if err != nil {
			return fmt.Errorf("round %d (%s): %w", r+1, mode, err)
		}
	}
	fmt.Printf("\n503 answers retried (storage timeouts on the loaded machine): %d\n", unavailable.Load())
	for _, mode := range o.modes {
		res := results[mode]
		if res == nil {
			continue
		}
		d := res.delays
		slices.Sort(d)
		slices.Sort(res.probeRTT)
		fmt.Printf("%-6s  n=%d  p50=%s  p90=%s  p99=%s  max=%s  (delay from the writer's answer until an instance obeys)\n",
			mode, len(d), ms(pct(d, 50)), ms(pct(d, 90)), ms(pct(d, 99)), ms(d[len(d)-1]))
		var kindLine []string
		for _, k := range kinds {
			kd := res.byKind[k]
			slices.Sort(kd)
			kindLine = append(kindLine, fmt.Sprintf("%s %s/%s", k, ms(pct(kd, 50)), ms(pct(kd, 99))))
		}
		fmt.Printf("        p50/p99 by change: %s\n", strings.Join(kindLine, ", "))
		fmt.Printf("        probing: %d probes, median round trip %s; this program used %.2f CPU-seconds in %.1f s of pending changes (%.0f%% of one core); load per round %s\n",
			res.probes, ms(pct(res.probeRTT, 50)), res.cpu.Seconds(), res.wall.Seconds(), 100*res.cpu.Seconds()/res.wall.Seconds(), strings.Join(res.loads, " | "))
	}
	return nil
}

// round starts the instances in one mode, makes the changes and measures
// them. It answers the admin token (printed by the first start).
func round(ctx context.Context, o options, dbURL, mode string, n int, admin string, res *result) (string, error) {
	fmt.Printf("round %d: %s, load %s\n", n+1, mode, loadavg())
	servers := make([]*server, o.instances)
	defer func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); s.Stop() }()
			}
		}
		wg.Wait()
	}()
	// The first instance starts alone: on a fresh database it creates the
	// schema and prints the admin token.
	var err error
	if servers[0], err = startServer(ctx, o.tokend, dbURL, mode); err != nil {
		return "", err
	}
	if admin == "" {
		admin = servers[0].Admin
	}
	if admin == "" {
		return "", errors.New("the first instance printed no admin token")
	}
	errs := make([]error, o.instances)
	var wg sync.WaitGroup
	for i := 1; i < o.instances; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); servers[i], errs[i] = startServer(ctx, o.tokend, dbURL, mode) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	for _, s := range servers {
		if err := s.waitInStep(ctx, 30*time.Second); err != nil {
			return "", err
		}
	}

	w := servers[0]
	changes, err := prepare(ctx, w, admin, o.changes, fmt.Sprintf("r%d", n+1))
	if err != nil {
		return "", fmt.Errorf("%w\nthe writer's log:\n%s", err, w.Logs)
	}
	for _, c := range changes {
		for _, s := range servers {
			for range 2 {
				code, _, err := s.verify(ctx, c.verify)
				if err != nil {
					return "", err
				}
				if code != "VALID" {
					return "", fmt.Errorf("%s: %s answers %s before the change", c.kind, s.URL, code)
				}
			}
		}
	}
	cpu0 := cpuTime()
	for _, c := range changes {
		start := time.Now()
		delays, probes, rtts, err := measure(ctx, o, w, servers[1:], admin, c)
		res.wall += time.Since(start)
		if err != nil {
			return "", fmt.Errorf("%w\nthe writer's log:\n%s", err, w.Logs)
		}
		res.delays = append(res.delays, delays...)
		res.byKind[c.kind] = append(res.byKind[c.kind], delays...)
		res.probes += probes
		res.probeRTT = append(res.probeRTT, rtts...)
	}
	res.cpu += cpuTime() - cpu0
	res.loads = append(res.loads, loadavg())
	return admin, nil
}

// change is one change to make through the writer and what every instance
// must then answer.
type change struct {
	kind   string
	do     func(ctx context.Context) error
	verify verifyRequest
	want   string
}

type verifyRequest struct {
	Token       string   `json:"token"`
	Permissions []string `json:"permissions,omitempty"`
	IP          string   `json:"ip,omitempty"`
}

var kinds = []string{"revoke", "disable", "edit permissions", "edit allowed_ips", "rotate", "revoke-all"}

// prepare creates the tokens (and apps) that the changes change, through
// the writer.
func prepare(ctx context.Context, w *server, admin string, perKind int, tag string) ([]change, error) {
	var app struct {
		ID string `json:"id"`
	}
	if err := w.call(ctx, admin, 201, "POST", "/v1/apps", map[string]any{"name": tag + "-shop", "permissions": []string{"orders:read", "orders:write"}}, &app); err != nil {
		return nil, err
	}
	type created struct {
		Secret string `json:"secret"`
		Token  struct {
			ID string `json:"id"`
		} `json:"token"`
	}
	newToken := func(appID, name string, custom bool) (created, error) {
		body := map[string]any{"app_id": appID, "name": name}
		if custom {
			body["access"] = "custom"
			body["permissions"] = []string{"orders:read", "orders:write"}
		}
		var c created
		err := w.call(ctx, admin, 201, "POST", "/v1/tokens", body, &c)
		return c, err
	}
	const ip = "192.0.2.1"
	var changes []change
	for i := range perKind {
		for _, kind := range kinds {
			name := fmt.Sprintf("%s-%s-%d", tag, strings.ReplaceAll(kind, " ", "-"), i)
			appID := app.ID
			if kind == "revoke-all" {
				var a struct {
					ID string `json:"id"`
				}
				if err := w.call(ctx, admin, 201, "POST", "/v1/apps", map[string]any{"name": name}, &a); err != nil {
					return nil, err
				}
				appID = a.ID
			}
			tok, err := newToken(appID, name, kind == "edit permissions")
			if err != nil {
				return nil, err
			}
			id := tok.Token.ID
			c := change{kind: kind, verify: verifyRequest{Token: tok.Secret, IP: ip}}
			post := func(path string, body any) func(ctx context.Context) error {
				return func(ctx context.Context) error { return w.call(ctx, admin, 200, "POST", path, body, nil) }
			}
			patch := func(body any) func(ctx context.Context) error {
				return func(ctx context.Context) error { return w.call(ctx, admin, 200, "PATCH", "/v1/tokens/"+id, body, nil) }
			}
			switch kind {
			case "revoke":
				c.do, c.want = post("/v1/tokens/"+id+"/revoke", nil), "REVOKED"
			case "disable":
				c.do, c.want = post("/v1/tokens/"+id+"/disable", nil), "DISABLED"
			case "edit permissions":
				c.verify.Permissions = []string{"orders:write"}
				c.do, c.want = patch(map[string]any{"permissions": []string{"orders:read"}}), "INSUFFICIENT_PERMISSIONS"
			case "edit allowed_ips":
				c.do, c.want = patch(map[string]any{"allowed_ips": []string{"10.0.0.0/8"}}), "IP_NOT_ALLOWED"
			case "rotate":
				c.do, c.want = post("/v1/tokens/"+id+"/rotate", map[string]any{}), "ROTATED"
			case "revoke-all":
				c.do, c.want = post("/v1/apps/"+appID+"/revoke-all", nil), "REVOKED"
			}
			changes = append(changes, c)
		}
	}
	return changes, nil
}

// measure makes one change through w and answers, for each of others, how
// long after w's answer it obeyed, with the probes sent and their round
// trips.
func measure(ctx context.Context, o options, w *server, others []*server, admin string, c change) ([]time.Duration, int, []time.Duration, error) {
	if err := c.do(ctx); err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", c.kind, err)
	}
	acked := time.Now()
	delays := make([]time.Duration, len(others))
	probes := make([]int, len(others))
	rtts := make([][]time.Duration, len(others))
	errs := make([]error, len(others))
	var wg sync.WaitGroup
	for i, s := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; ; first = false {
				code, rtt, err := s.verify(ctx, c.verify)
				probes[i]++
				rtts[i] = append(rtts[i], rtt)
				if err != nil {
					errs[i] = err
					return
				}
				if code == c.want {
					if !first {
						delays[i] = time.Since(acked)
					}
					return
				}
				if time.Since(acked) > o.giveUp {
					errs[i] = fmt.Errorf("%s: %s still answers %s %s after the change, want %s", c.kind, s.URL, code, o.giveUp, c.want)
					return
				}
				time.Sleep(o.probe)
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, p := range probes {
		n += p
	}
	return delays, n, slices.Concat(rtts...), errors.Join(errs...)
}

// server is an instance of the round, with the calls made to it.
type server struct{ *benchserve.Server }

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}

func startServer(ctx context.Context, bin, dbURL, mode string) (*server, error) {
	dir, err := os.MkdirTemp("", "tokend-instances-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // nothing is kept there on PostgreSQL
	args := []string{"serve", "--database", dbURL, "--data-dir", dir, "--addr", "127.0.0.1:0",
		"--invalidation", mode, "--log-level", "warn", "--failure-limit", "0",
		// Nothing cached expires during a round: only invalidation makes an
		// instance obey.
		"--cache-ttl", "1h"}
	s, err := benchserve.Start(ctx, bin, args, []string{"TOKEND_PEPPER=" + pepper})
	if err != nil {
		return nil, err
	}
	return &server{s}, nil
}

// waitInStep waits until the instance reports that it hears of the others'
// changes.
func (s *server) waitInStep(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/metrics", nil)
		res, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if bytes.Contains(b, []byte("\ntokend_invalidation_listener_up 1\n")) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not in step within %s", s.URL, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verify asks /v1/verify and answers the code and the round trip.
func (s *server) verify(ctx context.Context, v verifyRequest) (string, time.Duration, error) {
	var out struct {
		Code string `json:"code"`
	}
	start := time.Now()
	err := s.call(ctx, "", 200, "POST", "/v1/verify", v, &out)
	return out.Code, time.Since(start), err
}

// unavailable counts the 503 answers retried: on a machine this loaded a
// storage call sometimes times out, and a 503 changes nothing.
var unavailable atomic.Int64

// call makes an API call that must answer want, and decodes its body into
// out unless out is nil. A 503 is tried again, up to 10 times.
func (s *server) call(ctx context.Context, token string, want int, method, path string, body, out any) error {
	for range 10 {
		err := s.callOnce(ctx, token, want, method, path, body, out)
		if !errors.Is(err, errUnavailable) {
			return err
		}
		unavailable.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
	return s.callOnce(ctx, token, want, method, path, body, out)
}

var errUnavailable = errors.New("503")

func (s *server) callOnce(ctx context.Context, token string, want int, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode == http.StatusServiceUnavailable && want != res.StatusCode {
		return fmt.Errorf("%s %s: %w %s", method, path, errUnavailable, b)
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// pct answers the p-th percentile of sorted d (nearest rank).
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100
	return d[max(0, min(len(d)-1, i-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// cpuTime answers the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
