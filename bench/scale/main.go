// Command scale measures tokend on PostgreSQL with many tokens: how fast the
// lifecycle service creates them, and then, on a real `tokend serve` process
// over the same database, the latency of verifications that miss the cache
// (each secret verified once) and of ones that hit it, the latency of the
// first page of token lists, and the instance's resident memory (RSS, from
// /proc) idle and after verifying many distinct tokens.
//
// It creates a database of its own on the server named by --url, and drops
// it at the end unless --keep. Tokens are made through manage.Service, the
// path the REST API takes (validation, secret, HMAC, one transaction with its
// audit event per token), by --workers goroutines. The secrets live only in
// this program's memory; none is written anywhere. The server is the binary
// given by --tokend (bench/scale.sh builds it from the working tree).
//
// The token mix: --apps apps take turns; every 100th token is a plugin token;
// after creation every 1000th token is disabled and every 10,000th revoked,
// through the service as well, so that status filters have something rare to
// find. This is a measuring tool, not a test: it asserts nothing but that the
// answers are the expected ones.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/bench/internal/benchserve"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/secret"
)

// pepper is shared by this program and the server it starts, so that the
// server can verify the secrets made here.
const pepper = "tokend-scale-bench-pepper-0123456789abcdef"

type options struct {
	url        string
	tokend     string
	tokens     int
	workers    int
	apps       int
	maxTime    time.Duration
	samples    int
	memTokens  int
	concurrent int
	listRuns   int
	keep       bool
	bulk       bool
	base       string
	rounds     int
	serveArgs  multiFlag
	serveEnv   multiFlag
}

// multiFlag is a flag that may be given several times.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var o options
	flag.StringVar(&o.url, "url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server (a role that may create databases); the run gets a fresh database on it")
	flag.StringVar(&o.tokend, "tokend", "", "the tokend binary to start (bench/scale.sh builds one); without it only creation is measured")
	flag.IntVar(&o.tokens, "tokens", 1_000_000, "tokens to create")
	flag.IntVar(&o.workers, "workers", 32, "goroutines creating tokens (and the size of the program's connection pool)")
	flag.IntVar(&o.apps, "apps", 10, "apps the tokens are spread over")
	flag.DurationVar(&o.maxTime, "max-time", 2*time.Hour, "stop creating after this long and measure with the tokens made so far")
	flag.IntVar(&o.samples, "samples", 20_000, "cache-miss verifications timed one at a time (then the same secrets again, as hits)")
	flag.IntVar(&o.concurrent, "concurrent", 8, "clients of the concurrent cache-miss phase")
	flag.IntVar(&o.memTokens, "mem-tokens", 100_000, "distinct tokens verified in all before the memory is read")
	flag.IntVar(&o.listRuns, "list-runs", 30, "times each list request is made")
	flag.BoolVar(&o.keep, "keep", false, "keep the database instead of dropping it (its URL is printed)")
	flag.BoolVar(&o.bulk, "bulk", false, "make all but the first 1,000 tokens by the bulk path (see bulkCreate) rather than through the service")
	flag.StringVar(&o.base, "tokend-base", "", "a second tokend binary (a base revision; bench/scale.sh builds it from BASE_REV): the sequential cache misses are timed on both, in alternating rounds")
	flag.IntVar(&o.rounds, "rounds", 10, "with --tokend-base: rounds of cache misses on each binary, alternating")
	flag.Var(&o.serveArgs, "serve-arg", "an argument added to the server's command line, e.g. --serve-arg=--flush-interval=10s (repeatable)")
	flag.Var(&o.serveEnv, "serve-env", "a KEY=VALUE added to the server's environment, e.g. --serve-env GOGC=off (repeatable)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, o options) error {
	if o.tokens < 1 || o.workers < 1 || o.apps < 1 {
		return errors.New("--tokens, --workers and --apps must be at least 1")
	}
	dbURL, drop, err := benchserve.CreateDatabase(ctx, o.url, "tokend_scale")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			fmt.Printf("kept the database: %s\n", dbURL)
			return
		}
		if err := drop(); err != nil {
			log.Printf("dropping the database: %v", err)
		}
	}()
	fmt.Printf("scale: database %s, GOMAXPROCS %d\n", redact(dbURL), runtime.GOMAXPROCS(0))

	f, err := create(ctx, o, dbURL)
	if err != nil {
		return err
	}
	if o.tokend == "" {
		return nil
	}
	return measure(ctx, o, dbURL, f)
}

// fixture is what the creation phase leaves for the measurements.
type fixture struct {
	admin   string   // an owner admin secret
	apps    []string // app ids
	secrets []string // secrets[i] of token i; "" where creation failed
	ids     []string
	made    int
}

// live reports whether token i is expected to verify VALID.
func live(i int) bool { return i%1000 != 500 && i%10000 != 5000 }

func plugin(i int) bool { return i%100 == 99 }

const pluginOrigin = "https://plugin.example"

func create(ctx context.Context, o options, dbURL string) (*fixture, error) {
	// The pool is as large as the number of workers, so that they wait on
	// the database and not on each other for a connection.
	st, h, err := openStore(ctx, withPoolSize(dbURL, o.workers))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	svc := manage.New(manage.Options{Store: st, Hasher: h})
	_, admin, err := svc.Bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	actor := tokend.SystemActor
	f := &fixture{admin: admin.Reveal(), secrets: make([]string, o.tokens), ids: make([]string, o.tokens)}
	for i := range o.apps {
		app, err := svc.CreateApp(ctx, actor, tokend.AppInput{Name: fmt.Sprintf("app %02d", i), TokenPrefix: fmt.Sprintf("app%02d", i)})
		if err != nil {
			return nil, err
		}
		f.apps = append(f.apps, app.ID)
	}

	var next, done, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	deadline := start.Add(o.maxTime)
	viaService := o.tokens
	if o.bulk {
		viaService = min(o.tokens, bulkTemplates)
	}
	var wg sync.WaitGroup
	for range o.workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= viaService {
					return
				}
				in := tokend.TokenInput{AppID: f.apps[i%len(f.apps)], Name: fmt.Sprintf("svc-%07d", i), ExpiresIn: "90d"}
				if plugin(i) {
					in.Type, in.AllowedOrigins = tokend.TypePlugin, []string{pluginOrigin}
				}
				t, sec, err := svc.CreateToken(ctx, actor, in)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = fmt.Errorf("token %d: %w", i, err) })
					continue
				}
				f.secrets[i], f.ids[i] = sec.Reveal(), t.ID
				done.Add(1)
			}
		})
	}
	stopProgress := progress(func() string {
		el := time.Since(start)
		n := done.Load()
		return fmt.Sprintf("create: %d tokens in %s (%.0f/s)", n, el.Round(time.Second), float64(n)/el.Seconds())
	})
	wg.Wait()
	stopProgress()
	el := time.Since(start)
	f.made = int(done.Load())
	rate := float64(f.made) / el.Seconds()
	fmt.Printf("create: %d tokens through manage.Service in %s with %d workers: %.0f tokens/s (%d failed)\n",
		f.made, el.Round(time.Millisecond), o.workers, rate, failed.Load())
	if firstErr != nil {
		fmt.Printf("create: first failure: %v\n", firstErr)
	}
	if !o.bulk && f.made < o.tokens {
		fmt.Printf("create: stopped early; at this rate %d tokens would take %s\n", o.tokens, (time.Duration(float64(o.tokens)/rate) * time.Second).Round(time.Minute))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	made := min(int(next.Load()), viaService)
	if o.bulk && f.made == viaService && viaService < o.tokens {
		n, err := bulkCreate(ctx, dbURL, h, f, o.tokens, viaService)
		if err != nil {
			return nil, err
		}
		made += n
		f.made += n
	}
	f.secrets, f.ids = f.secrets[:min(len(f.secrets), made)], f.ids[:min(len(f.ids), made)]

	// Rare statuses, through the service too.
	start = time.Now()
	changed := 0
	for i := range f.ids {
		if live(i) || f.ids[i] == "" {
			continue
		}
		if i%10000 == 5000 {
			_, err = svc.RevokeToken(ctx, actor, f.ids[i], 0)
		} else {
			_, err = svc.DisableToken(ctx, actor, f.ids[i], 0)
		}
		if err != nil {
			return nil, fmt.Errorf("status of token %d: %w", i, err)
		}
		changed++
	}
	fmt.Printf("status: %d tokens disabled or revoked one at a time in %s (%.1f ms each)\n",
		changed, time.Since(start).Round(time.Millisecond), float64(time.Since(start).Milliseconds())/float64(max(changed, 1)))

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	// The steady state of a database that grew over weeks rather than
	// minutes: fresh statistics, the rows' hint bits and the visibility map
	// set by a vacuum (which autovacuum would otherwise start on the new
	// rows in the middle of the measurement, and which the first read of
	// each page would otherwise do by writing it), and the dirty pages
	// written by a checkpoint.
	start = time.Now()
	for _, q := range []string{"VACUUM (ANALYZE)", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	fmt.Printf("vacuum, analyze and checkpoint before measuring: %s\n", time.Since(start).Round(time.Millisecond))
	var dbSize, tokSize, evSize int64
	if err := conn.QueryRow(ctx, `SELECT pg_database_size(current_database()),
		pg_total_relation_size('tokens'), pg_total_relation_size('events')`).Scan(&dbSize, &tokSize, &evSize); err != nil {
		return nil, err
	}
	fmt.Printf("size: database %s, tokens with indexes %s, events with indexes %s\n", mib(dbSize), mib(tokSize), mib(evSize))
	return f, nil
}

// bulkTemplates is how many tokens --bulk still makes through the service:
// the templates of the others, and the rate to quote.
const bulkTemplates = 1000

// bulkBatch is the number of tokens one bulk INSERT adds.
const bulkBatch = 10_000

// bulkCreate makes tokens from..n-1 by a path only this tool takes, for
// reaching a million tokens in minutes rather than the lifecycle service's
// quarter of an hour: each is a copy of the service-made token of the same
// app and type (a token j < from with i's app and plugin(i)), with its own
// id, name, secret hash and mask, 10,000 rows an INSERT … SELECT over
// unnest through pgx (the column list read from the schema), and no audit
// event. The secrets are made and HMAC'd with the run's pepper as the
// service does (secret.Generate with the app's prefix, Hasher.Sum), and
// live only in this program's memory.
func bulkCreate(ctx context.Context, dbURL string, h *secret.Hasher, f *fixture, n, from int) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	type kind struct {
		app    int
		plugin bool
	}
	templates := map[kind]int{}
	for j := range from {
		k := kind{j % len(f.apps), plugin(j)}
		if _, ok := templates[k]; !ok && f.ids[j] != "" {
			templates[k] = j
		}
	}
	prefixes := map[string]string{}
	if err := scanAll(ctx, conn, `SELECT id, token_prefix FROM apps`, func(r pgx.Rows) error {
		var id, prefix string
		err := r.Scan(&id, &prefix)
		prefixes[id] = prefix
		return err
	}); err != nil {
		return 0, err
	}
	var cols, sel []string
	if err := scanAll(ctx, conn, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'tokens' ORDER BY ordinal_position`, func(r pgx.Rows) error {
		var c string
		err := r.Scan(&c)
		cols = append(cols, c)
		switch c {
		case "id", "name", "secret_hash", "masked":
			sel = append(sel, "u."+c)
		default:
			sel = append(sel, "t."+c)
		}
		return err
	}); err != nil {
		return 0, err
	}
	insert := `INSERT INTO tokens (` + strings.Join(cols, ", ") + `) SELECT ` + strings.Join(sel, ", ") + `
		FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) AS u(id, name, secret_hash, masked)
		CROSS JOIN tokens t WHERE t.id = $5`

	start := time.Now()
	var made atomic.Int64
	stopProgress := progress(func() string {
		return fmt.Sprintf("bulk: %d tokens in %s", made.Load(), time.Since(start).Round(time.Second))
	})
	defer stopProgress()
	// A batch copies one template.
	batches := map[kind][]int{}
	flush := func(k kind) error {
		idx := batches[k]
		if len(idx) == 0 {
			return nil
		}
		ids, names, masks := make([]string, len(idx)), make([]string, len(idx)), make([]string, len(idx))
		hashes := make([][]byte, len(idx))
		secs := make([]string, len(idx))
		for x, i := range idx {
			sec, err := secret.Generate(prefixes[f.apps[k.app]])
			if err != nil {
				return err
			}
			sum := h.Sum(sec.Reveal())
			ids[x], names[x], masks[x], hashes[x] = fmt.Sprintf("tok_bulk%014d", i), fmt.Sprintf("svc-%07d", i), sec.String(), sum[:]
			secs[x] = sec.Reveal()
		}
		if _, err := conn.Exec(ctx, insert, ids, names, hashes, masks, f.ids[templates[k]]); err != nil {
			return fmt.Errorf("bulk insert: %w", err)
		}
		for x, i := range idx {
			f.ids[i], f.secrets[i] = ids[x], secs[x]
		}
		made.Add(int64(len(idx)))
		batches[k] = idx[:0]
		return nil
	}
	for i := from; i < n && ctx.Err() == nil; i++ {
		k := kind{i % len(f.apps), plugin(i)}
		if _, ok := templates[k]; !ok {
			return int(made.Load()), fmt.Errorf("bulk: no service-made token of app %d (plugin %v) to copy; use fewer apps", k.app, k.plugin)
		}
		batches[k] = append(batches[k], i)
		if len(batches[k]) == bulkBatch {
			if err := flush(k); err != nil {
				return int(made.Load()), err
			}
		}
	}
	for k := range batches {
		if err := flush(k); err != nil {
			return int(made.Load()), err
		}
	}
	el := time.Since(start)
	fmt.Printf("bulk: %d tokens copied from service-made ones in %s: %.0f tokens/s (no audit events)\n", made.Load(), el.Round(time.Millisecond), float64(made.Load())/el.Seconds())
	return int(made.Load()), ctx.Err()
}

// scanAll runs query on conn and calls each for every row.
func scanAll(ctx context.Context, conn *pgx.Conn, query string, each func(pgx.Rows) error) error {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func measure(ctx context.Context, o options, dbURL string, f *fixture) error {
	srv, err := startServer(ctx, o, o.tokend, dbURL)
	if err != nil {
		return err
	}
	defer srv.Stop()
	idle, err := srv.rss()
	if err != nil {
		return err
	}
	fmt.Printf("memory: idle after start: %s\n", idle)

	var order []int
	for i, s := range f.secrets {
		if s != "" && live(i) {
			order = append(order, i)
		}
	}
	shuffle(order)
	samples := min(o.samples, len(order))
	c := newClient(srv.URL, o.concurrent)

	// The floor of a cache miss: the store's read alone (the prepared
	// statement the server runs, through the same pgx pool code), one at a
	// time over other secrets than the timed ones, from this process.
	if direct := order[max(samples, len(order)-samples):]; len(direct) > 0 {
		lat, err := storeReads(ctx, dbURL, direct, f)
		if err != nil {
			return err
		}
		report("store read alone (TokenBySecret)", lat)
	}

	// Cold: each secret once, one at a time; then the same ones again.
	timed := order[:samples]
	if o.base != "" {
		if timed, err = versusBase(ctx, o, dbURL, f, c, timed); err != nil {
			return err
		}
	} else {
		miss, err := c.verifyAll(ctx, f, timed, 1)
		if err != nil {
			return err
		}
		report("verify, cache miss (sequential)", miss)
	}
	hit, err := c.verifyAll(ctx, f, timed, 1)
	if err != nil {
		return err
	}
	report("verify, cache hit (sequential)", hit)
	afterSamples, err := srv.rss()
	if err != nil {
		return err
	}

	// Cold again, from several clients at once, over other secrets.
	rest := order[samples:]
	conc := rest[:min(len(rest), max(0, o.memTokens-samples), 4*o.samples)]
	if len(conc) > 0 {
		t0 := time.Now()
		lat, err := c.verifyAll(ctx, f, conc, o.concurrent)
		if err != nil {
			return err
		}
		report(fmt.Sprintf("verify, cache miss (%d clients)", o.concurrent), lat)
		fmt.Printf("  %.0f cache-miss verifications/s\n", float64(len(conc))/time.Since(t0).Seconds())
	}
	// Then distinct tokens up to --mem-tokens in all, for the memory.
	seen := samples + len(conc)
	fill := order[seen:min(len(order), max(seen, o.memTokens))]
	if _, err := c.verifyAll(ctx, f, fill, o.concurrent); err != nil {
		return err
	}
	seen += len(fill)
	full, err := srv.rss()
	if err != nil {
		return err
	}
	fmt.Printf("memory: after the %d timed verifications: %s\n", samples, afterSamples)
	fmt.Printf("memory: after %d distinct verifications: %s\n", seen, full)

	// Lists, with the admin token, first pages; then the second page of the
	// unfiltered list.
	app := f.apps[0]
	rare := fmt.Sprintf("%07d", 42) // matches the name of one of the oldest tokens
	lists := []struct{ label, query string }{
		{"all", ""},
		{"app", "app_id=" + app},
		{"status=active", "status=active"},
		{"status=disabled", "status=disabled"},
		{"status=revoked", "status=revoked"},
		{"status=expired (none)", "status=expired"},
		{"type=plugin", "type=plugin"},
		{"q=svc- (all match)", "q=svc-"},
		{"q=" + rare + " (one match, oldest)", "q=" + rare},
		{"app & status=disabled", "app_id=" + app + "&status=disabled"},
		{"app & q=" + rare, "app_id=" + f.apps[42%len(f.apps)] + "&q=" + rare},
	}
	fmt.Printf("lists: GET /v1/tokens first page (50), %d times each, %d tokens present\n", o.listRuns, f.made)
	for _, l := range lists {
		lat, n, err := c.list(ctx, f.admin, "/v1/tokens?"+l.query, o.listRuns)
		if err != nil {
			return fmt.Errorf("list %s: %w", l.label, err)
		}
		reportList(l.label, lat, n)
	}
	_, next, err := c.get(ctx, f.admin, "/v1/tokens")
	if err != nil {
		return err
	}
	lat, n, err := c.list(ctx, f.admin, "/v1/tokens?cursor="+url.QueryEscape(next), o.listRuns)
	if err != nil {
		return err
	}
	reportList("second page", lat, n)
	for _, l := range []struct{ label, query string }{
		{"audit, all", ""},
		{"audit, one token", "token_id=" + f.ids[42]},
		{"audit, action token.revoke", "action=token.revoke"},
	} {
		lat, n, err := c.list(ctx, f.admin, "/v1/audit?"+l.query, o.listRuns)
		if err != nil {
			return fmt.Errorf("list %s: %w", l.label, err)
		}
		reportList(l.label, lat, n)
	}
	return nil
}

// versusBase times the sequential cache misses of timed on the server c
// talks to and on one of o.base started beside it over the same database,
// in o.rounds alternating rounds of distinct secrets (each verified once,
// on one of the two), and reports both and their ratios. It answers the
// secrets the server c talks to verified.
func versusBase(ctx context.Context, o options, dbURL string, f *fixture, c *client, timed []int) ([]int, error) {
	base, err := startServer(ctx, o, o.base, dbURL)
	if err != nil {
		return nil, err
	}
	defer base.Stop()
	cb := newClient(base.URL, 1)
	rounds := max(1, o.rounds)
	per := len(timed) / (2 * rounds)
	var lat, latBase []time.Duration
	var verified []int
	for r := range rounds {
		a, b := timed[2*r*per:(2*r+1)*per], timed[(2*r+1)*per:(2*r+2)*per]
		l, err := c.verifyAll(ctx, f, a, 1)
		if err != nil {
			return nil, err
		}
		lb, err := cb.verifyAll(ctx, f, b, 1)
		if err != nil {
			return nil, fmt.Errorf("the base server: %w", err)
		}
		lat, latBase, verified = append(lat, l...), append(latBase, lb...), append(verified, a...)
	}
	report("verify, cache miss (sequential)", lat)
	report("  the same on --tokend-base", latBase)
	s, sb := slices.Sorted(slices.Values(lat)), slices.Sorted(slices.Values(latBase))
	fmt.Printf("  ratio to the base (%d alternating rounds of %d): p50 %.2f  p90 %.2f  p99 %.2f\n", rounds, per,
		ratio(s, sb, 0.50), ratio(s, sb, 0.90), ratio(s, sb, 0.99))
	return verified, nil
}

func ratio(s, base []time.Duration, p float64) float64 {
	return float64(q(s, p)) / float64(q(base, p))
}

// server is a running `tokend serve`.
type server struct{ *benchserve.Server }

func startServer(ctx context.Context, o options, binary, dbURL string) (*server, error) {
	dir, err := os.MkdirTemp("", "tokend-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // the server keeps nothing there on PostgreSQL
	entries := 2 * max(o.memTokens, o.samples)
	args := []string{"serve", "--database", dbURL, "--data-dir", dir, "--addr", "127.0.0.1:0",
		"--log-level", "warn", "--failure-limit", "0",
		// Room for every token verified, so that the memory figure is the
		// cost of the cached tokens rather than of evictions.
		"--cache-entries", strconv.Itoa(entries), "--cache-bytes", strconv.Itoa(entries * 2048)}
	args = append(args, o.serveArgs...)
	s, err := benchserve.Start(ctx, binary, args, append([]string{"TOKEND_PEPPER=" + pepper}, o.serveEnv...))
	if err != nil {
		return nil, err
	}
	fmt.Printf("server: %s (pid %d) %s\n", s.URL, s.Cmd.Process.Pid, strings.Join(args[6:], " "))
	return &server{s}, nil
}

type memory struct{ rss, hwm string }

func (m memory) String() string { return "RSS " + m.rss + " (peak " + m.hwm + ")" }

// rss reads the server's resident set and its peak from /proc.
func (s *server) rss() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	if err != nil {
		return memory{}, fmt.Errorf("reading the server's memory: %w", err)
	}
	var m memory
	for l := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(l, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = mib(kb << 10)
		case "VmHWM":
			m.hwm = mib(kb << 10)
		}
	}
	return m, nil
}

type client struct {
	base string
	http *http.Client
}

func newClient(base string, conns int) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &client{base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// verifyAll verifies the tokens at idx from workers clients, checks that
// each is VALID, and answers the latencies.
func (c *client) verifyAll(ctx context.Context, f *fixture, idx []int, workers int) ([]time.Duration, error) {
	if workers == 1 {
		defer pauseGC()()
	}
	lat := make([]time.Duration, len(idx))
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= len(idx) {
					return
				}
				i := idx[k]
				req := tokend.VerifyRequest{Token: f.secrets[i], Permissions: []string{"read"}, IP: "203.0.113.7"}
				if plugin(i) {
					req.Origin = pluginOrigin
				}
				body, _ := json.Marshal(req)
				t0 := time.Now()
				code, err := c.verify(ctx, body)
				lat[k] = time.Since(t0)
				if err == nil && code != tokend.CodeValid {
					err = fmt.Errorf("token %d answered %s", i, code)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return lat, firstErr
}

func (c *client) verify(ctx context.Context, body []byte) (tokend.Code, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/verify", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var r tokend.VerifyResult
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != 200 {
		return "", fmt.Errorf("verify answered %d (%v)", res.StatusCode, err)
	}
	return r.Code, nil
}

// list GETs path runs times and answers the latencies and the number of
// items on the page.
func (c *client) list(ctx context.Context, admin, path string, runs int) ([]time.Duration, int, error) {
	var lat []time.Duration
	n := 0
	for range runs {
		t0 := time.Now()
		items, _, err := c.get(ctx, admin, path)
		lat = append(lat, time.Since(t0))
		if err != nil {
			return nil, 0, err
		}
		n = items
	}
	return lat, n, nil
}

func (c *client) get(ctx context.Context, admin, path string) (items int, next string, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var page struct {
		Items      []json.RawMessage `json:"items"`
		NextCursor string            `json:"next_cursor"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || res.StatusCode != 200 {
		return 0, "", fmt.Errorf("GET %s answered %d (%v)", path, res.StatusCode, err)
	}
	return len(page.Items), page.NextCursor, nil
}

func report(label string, lat []time.Duration) {
	s := slices.Sorted(slices.Values(lat))
	fmt.Printf("%-36s n=%-7d p50 %-9s p90 %-9s p99 %-9s max %s\n", label, len(s),
		q(s, 0.50), q(s, 0.90), q(s, 0.99), s[len(s)-1].Round(time.Microsecond))
}

func reportList(label string, lat []time.Duration, items int) {
	s := slices.Sorted(slices.Values(lat))
	fmt.Printf("  %-34s %3d items  p50 %-9s p99 %-9s max %s\n", label, items, q(s, 0.50), q(s, 0.99), s[len(s)-1].Round(time.Microsecond))
}

func q(s []time.Duration, p float64) time.Duration {
	return s[min(len(s)-1, int(float64(len(s))*p))].Round(time.Microsecond)
}

// progress prints line() every 30 seconds until the answered func is called.
func progress(line func() string) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Println(line())
			case <-stop:
				return
			}
		}
	}()
	return func() { close(stop); <-done }
}

func withPoolSize(dbURL string, n int) string {
	u, _ := url.Parse(dbURL)
	q := u.Query()
	if q.Get("pool_max_conns") == "" {
		q.Set("pool_max_conns", strconv.Itoa(n))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(the database URL)"
	}
	return u.Redacted()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// shuffle orders idx at random, so that samples are spread over the table.
func shuffle(idx []int) {
	mrand.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
}

// storeReads times the store's TokenBySecret of each secret of idx, one at
// a time, on a store of its own over the database.
func storeReads(ctx context.Context, dbURL string, idx []int, f *fixture) ([]time.Duration, error) {
	st, h, err := openStore(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	defer pauseGC()()
	lat := make([]time.Duration, 0, len(idx))
	for _, i := range idx {
		d := h.Sum(f.secrets[i])
		t0 := time.Now()
		if _, err := st.TokenBySecret(ctx, d[:]); err != nil {
			return nil, fmt.Errorf("store read of token %s: %w", f.ids[i], err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// pauseGC turns this program's garbage collector off until the function it
// answers is called, after one collection: the sequential phases time the
// server one request at a time, and a pause of the client's own would be
// counted as the server's latency. A phase allocates a few KiB a request,
// a hundred MiB at most at the default --samples.
func pauseGC() (resume func()) {
	runtime.GC()
	old := debug.SetGCPercent(-1)
	return func() { debug.SetGCPercent(old) }
}

// openStore opens the store on the database at url, and the hasher of the
// pepper this program shares with the server.
func openStore(ctx context.Context, url string) (*postgres.Store, *secret.Hasher, error) {
	st, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	h, err := secret.NewHasher([]byte(pepper))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, h, nil
}
