package main

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/github"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/metrics"
	"github.com/tokend/tokend/internal/portal"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/redislimit"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/internal/web"
	"github.com/tokend/tokend/internal/webhook"
	"github.com/tokend/tokend/secret"
)

// config is the server configuration. Every flag has a TOKEND_* twin in the
// environment; a flag given on the command line wins.
type config struct {
	addr           string
	dataDir        string
	database       string
	pepperFile     string
	trustedProxies []string
	logLevel       string
	logFormat      string
	cacheEntries   int
	cacheBytes     int64
	cacheTTL       time.Duration
	negativeTTL    time.Duration
	secretFilter   bool // the filter of known secrets (verify.Options.NoFilter)
	filterRebuild  time.Duration
	flushInterval  time.Duration
	failureLimit   int
	trackNetworks  bool
	staleWindow    time.Duration
	invalidation   string
	pollInterval   time.Duration
	eventInterval  time.Duration
	rotatedKeep    time.Duration
	rotatedSweep   time.Duration
	shutdown       time.Duration
	redis          string
	redisPrefix    string
	redisTimeout   time.Duration
	mail           mailConfig
	webhookHTTP    bool
	webhookPrivate bool
	webhookRetry   []time.Duration
	webhookLease   time.Duration
	githubKeys     string
	tlsCert        string
	tlsKey         string
	auditRetention string
}

// storageFlags are shared by serve, bootstrap and migrate.
func storageFlags(fs *pflag.FlagSet, c *config) {
	fs.StringVar(&c.dataDir, "data-dir", "./tokend-data", "directory for the SQLite database and the pepper file (TOKEND_DATA_DIR)")
	fs.StringVar(&c.database, "database", "", "SQLite file path (or file: URL), or a postgres:// (postgresql://) URL that several instances may share (PostgreSQL needs the same TOKEND_PEPPER or --pepper-file on every instance); default <data-dir>/tokend.db (TOKEND_DATABASE)")
	fs.StringVar(&c.pepperFile, "pepper-file", "", "file holding the HMAC pepper; default <data-dir>/pepper, created on first start; TOKEND_PEPPER gives the pepper itself (TOKEND_PEPPER_FILE)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error (TOKEND_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json (TOKEND_LOG_FORMAT)")
}

// applyEnv fills every flag not given on the command line from its
// TOKEND_* twin: --data-dir from TOKEND_DATA_DIR, and so on.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "TOKEND_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
}

func newLogger(c config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)
}

// backend is an opened store and the pepper's hasher.
type backend struct {
	store  tokend.Store
	users  tokend.UserStore
	hasher *secret.Hasher
	pepper []byte // for keys derived from it (the dashboard's cookies)
	close  func() error
	// pg is the store again when it is PostgreSQL, shared by instances that
	// must hear of each other's changes; nil for SQLite.
	pg *postgres.Store
}

// sqliteFile answers the SQLite file that --database names when it names
// no PostgreSQL database: a path as it is, or a file: URL's path. Any other
// URL (mysql://…, sqlite://…) is refused with the forms tokend takes,
// instead of becoming a file of that name or an error of SQLite's.
func sqliteFile(database string) (string, error) {
	if strings.HasPrefix(database, "file:") {
		u, err := url.Parse(database)
		if err == nil && u.RawQuery == "" && u.Fragment == "" && (u.Host == "" || u.Host == "localhost") {
			if u.Opaque != "" {
				return u.Opaque, nil // file:tokend.db, relative
			}
			if u.Path != "" {
				return u.Path, nil // file:///var/lib/tokend/tokend.db
			}
		}
	} else if !strings.Contains(database, "://") {
		return database, nil
	}
	return "", fmt.Errorf("--database %q is not a database tokend can use: give a SQLite file path (such as ./tokend-data/tokend.db, "+
		"or file:tokend.db), or a PostgreSQL URL starting with postgres:// or postgresql://", redactURL(database))
}

func openBackend(ctx context.Context, c config, getenv func(string) string, log *slog.Logger) (*backend, error) {
	if strings.HasPrefix(c.database, "postgres://") || strings.HasPrefix(c.database, "postgresql://") {
		return openPostgres(ctx, c, getenv, log)
	}
	path, err := sqliteFile(c.database)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	if path == "" {
		path = filepath.Join(c.dataDir, "tokend.db")
	}
	release, err := lockSQLite(c.dataDir, path)
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, path) // its errors name the file
	if err != nil {
		release()
		return nil, err
	}
	closeAll := func() error { return errors.Join(st.Close(), release()) }
	// The database is read before the pepper file is looked for: a
	// database that already has tokens must never get a new pepper.
	p, err := checkPepper(ctx, st, c, getenv, log, "the database "+path)
	if err != nil {
		closeAll()
		return nil, err
	}
	hasher, err := secret.NewHasher(p.value)
	if err != nil {
		closeAll()
		return nil, err
	}
	return &backend{store: st, users: st, hasher: hasher, pepper: p.value, close: closeAll}, nil
}

// lockSQLite takes the lock of the data directory (<data-dir>/tokend.lock)
// and the one of the database file (<database>.lock, beside it, which is in
// the data directory unless --database names a file elsewhere), so that no
// two processes serve, bootstrap or migrate one SQLite database at once:
// each would cache answers the other's writes make stale. release drops
// both.
func lockSQLite(dataDir, database string) (release func() error, err error) {
	dir, err := lockFile(filepath.Join(dataDir, "tokend.lock"), "the data directory "+dataDir)
	if err != nil {
		return nil, err
	}
	db, err := lockFile(database+".lock", "the database "+database)
	if err != nil {
		dir.release()
		return nil, err
	}
	return func() error { return errors.Join(db.release(), dir.release()) }, nil
}

// openPostgres opens the PostgreSQL database named by --database. The data
// directory plays no part: nothing is kept on local disk. The pepper must be
// given, never generated, because every instance on the database must hash
// secrets with the same one, and a pepper made up by one instance on its own
// disk would leave the others unable to verify its tokens.
func openPostgres(ctx context.Context, c config, getenv func(string) string, log *slog.Logger) (*backend, error) {
	if getenv("TOKEND_PEPPER") == "" && c.pepperFile == "" {
		return nil, errors.New("with PostgreSQL, several instances must share one pepper: set TOKEND_PEPPER or --pepper-file")
	}
	// Read before connecting, so that a pepper that cannot be read is
	// reported as such whatever the state of the database.
	if _, err := readPepper(c, getenv); err != nil {
		return nil, err
	}
	st, err := postgres.Open(ctx, c.database)
	if err != nil {
		return nil, fmt.Errorf("opening the PostgreSQL database: %w", err)
	}
	p, err := checkPepper(ctx, st, c, getenv, log, "the PostgreSQL database")
	if err != nil {
		st.Close()
		return nil, err
	}
	hasher, err := secret.NewHasher(p.value)
	if err != nil {
		st.Close()
		return nil, err
	}
	// What this process wrote joins the audit chain before it closes the
	// store, though no chainer ran (bootstrap, migrate).
	closeAll := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := st.ChainAudit(ctx)
		return errors.Join(err, st.Close())
	}
	return &backend{store: st, users: st, hasher: hasher, pepper: p.value, close: closeAll, pg: st}, nil
}

// pepper is the HMAC pepper and where it came from, for messages.
type pepper struct {
	value []byte
	// source names where it was read: TOKEND_PEPPER or a file, and how that
	// file was chosen.
	source string
	// path is the file it was read from, or the default file that does
	// not exist yet; empty for TOKEND_PEPPER.
	path string
}

// pepperFingerprintKey is the database setting that holds the fingerprint
// of the pepper its secret hashes were made with.
const pepperFingerprintKey = "pepper_fingerprint"

// pepperFingerprint identifies a pepper without revealing it: the hex
// HMAC-SHA256 of a fixed label keyed with the pepper. The README shows how
// to compute it for a pepper file with openssl.
func pepperFingerprint(p []byte) string {
	m := hmac.New(sha256.New, p)
	m.Write([]byte("tokend pepper fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// shortFingerprint is what messages and logs show of a fingerprint: enough
// to tell two peppers apart at a glance.
func shortFingerprint(fp string) string { return fp[:min(len(fp), 12)] }

// checkPepper answers the pepper the database st must be used with, and
// refuses one it was not used with. The database keeps the fingerprint of
// the first pepper it was used with (recorded now when it has none, atomically
// against other instances starting at the same moment), and every start
// compares. The default pepper file is created only when the database has
// neither tokens nor a fingerprint: a missing file for a database that has
// either is a lost pepper, and a new one would silently invalidate every
// token.
func checkPepper(ctx context.Context, st tokend.Store, c config, getenv func(string) string, log *slog.Logger, what string) (pepper, error) {
	want, err := st.Setting(ctx, pepperFingerprintKey)
	if errors.Is(err, tokend.ErrNotFound) {
		want = ""
	} else if err != nil {
		return pepper{}, fmt.Errorf("reading the pepper fingerprint from %s: %w", what, err)
	}
	hasTokens := false
	if want == "" {
		page, err := st.Tokens(ctx, tokend.TokenFilter{Limit: 1, Now: time.Now()})
		if err != nil {
			return pepper{}, fmt.Errorf("reading %s: %w", what, err)
		}
		hasTokens = len(page.Items) > 0
	}

	p, err := readPepper(c, getenv)
	if errors.Is(err, fs.ErrNotExist) && c.pepperFile == "" {
		if want != "" || hasTokens {
			used := "holds tokens made with a pepper"
			if want != "" {
				used = "was used with the pepper whose fingerprint is " + shortFingerprint(want)
			}
			return pepper{}, fmt.Errorf("the pepper file %s is missing, but %s %s; a new pepper would make every token answer NOT_FOUND, so none was made. "+
				"Restore %s from your backup (mode 0600), or give that pepper with TOKEND_PEPPER or --pepper-file, and start again",
				p.path, what, used, p.path)
		}
		p, err = createPepper(p)
	}
	if err != nil {
		return pepper{}, err
	}

	got := pepperFingerprint(p.value)
	if want == "" {
		want, err = st.InitSetting(ctx, pepperFingerprintKey, got)
		if err != nil {
			return pepper{}, fmt.Errorf("recording the pepper fingerprint in %s: %w", what, err)
		}
		if want == got {
			if hasTokens {
				log.Warn("this database holds tokens but had no pepper fingerprint (it predates the check): recorded the fingerprint of the pepper given; from now on a start with another pepper is refused. If its tokens answer NOT_FOUND, this is not the pepper they were made with",
					"fingerprint", shortFingerprint(got), "pepper", p.source)
			} else {
				log.Info("recorded the pepper fingerprint in the database; a start with another pepper will be refused",
					"fingerprint", shortFingerprint(got), "pepper", p.source)
			}
		}
	}
	if want != got {
		return pepper{}, fmt.Errorf("wrong pepper: %s was used with the pepper whose fingerprint is %s, but %s has the fingerprint %s. "+
			"With it every token would answer NOT_FOUND and new tokens would be bound to the wrong pepper, so tokend refuses to start. "+
			"Restore the pepper the database was used with (from your backup of the pepper file, or the TOKEND_PEPPER it was used with; the README shows how to compute a pepper's fingerprint) and start again",
			what, shortFingerprint(want), p.source, shortFingerprint(got))
	}
	return p, nil
}

// readPepper reads the pepper from TOKEND_PEPPER, else from the pepper file
// (--pepper-file, default <data-dir>/pepper). A file that does not exist is
// an error wrapping fs.ErrNotExist, with p.path and p.source set. The pepper
// never goes into the database: a stolen database alone cannot be used to
// test guesses of a secret.
func readPepper(c config, getenv func(string) string) (p pepper, err error) {
	if v := getenv("TOKEND_PEPPER"); v != "" {
		if len(v) < secret.MinPepperLen {
			return pepper{}, fmt.Errorf("TOKEND_PEPPER must be at least %d characters", secret.MinPepperLen)
		}
		return pepper{value: []byte(v), source: "TOKEND_PEPPER"}, nil
	}
	p.path = c.pepperFile
	p.source = "the pepper file " + p.path + " (--pepper-file)"
	if p.path == "" {
		p.path = filepath.Join(c.dataDir, "pepper")
		p.source = "the pepper file " + p.path
	}
	b, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, fmt.Errorf("the pepper file %s does not exist: %w", p.path, err)
	} else if err != nil {
		return p, fmt.Errorf("reading the pepper file: %w", err)
	}
	return p, p.set(b)
}

// set takes the pepper from the contents of its file.
func (p *pepper) set(b []byte) error {
	p.value = []byte(strings.TrimSpace(string(b)))
	if len(p.value) < secret.MinPepperLen {
		return fmt.Errorf("the pepper in %s is shorter than %d characters", p.path, secret.MinPepperLen)
	}
	return nil
}

// createPepper creates the pepper file p.path (0600, 32 random bytes as
// hex, synced) and answers the new pepper.
func createPepper(p pepper) (pepper, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return p, err
	}
	b := []byte(hex.EncodeToString(raw) + "\n")
	f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return p, fmt.Errorf("creating the pepper file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return p, fmt.Errorf("writing the pepper file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return p, fmt.Errorf("writing the pepper file: %w", err)
	}
	if err := f.Close(); err != nil {
		return p, err
	}
	return p, p.set(b)
}

func serveCmd(e env) *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the tokend server",
		Long: "Run the tokend server: the REST API, verification, the dashboard and /metrics on --addr.\n\n" +
			"The first start on an empty store creates an owner admin token and prints its secret once, in the " +
			"start-up banner on stdout, with a line to paste: export TOKEND_URL=… TOKEND_TOKEN=…. Keep it: it is " +
			"not shown again. Later, `tokend bootstrap` makes another (on SQLite, with serve stopped).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.getenv); err != nil {
				return err
			}
			return serve(cmd.Context(), c, e)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on (TOKEND_ADDR)")
	storageFlags(fs, &c)
	fs.StringSliceVar(&c.trustedProxies, "trusted-proxies", nil, "CIDR ranges of reverse proxies whose X-Forwarded-For is believed (TOKEND_TRUSTED_PROXIES)")
	fs.IntVar(&c.cacheEntries, "cache-entries", 100_000, "verification cache size, in tokens (known and unknown secrets); at least 1 (TOKEND_CACHE_ENTRIES)")
	fs.Int64Var(&c.cacheBytes, "cache-bytes", 64<<20, "approximate memory the verification cache may hold, in bytes; at least 1 (TOKEND_CACHE_BYTES)")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", time.Minute, "how long a cached token is trusted before it is read again; positive (TOKEND_CACHE_TTL)")
	fs.BoolVar(&c.secretFilter, "secret-filter", true, "keep a filter of every stored secret's hash in memory, so that a well-formed secret no token has answers NOT_FOUND without a database read; turn off while instances of a version that does not announce every create share the database (TOKEND_SECRET_FILTER)")
	fs.DurationVar(&c.filterRebuild, "secret-filter-rebuild", verify.DefaultFilterRebuild, "how often the filter of stored secrets is built again from the database; positive (TOKEND_SECRET_FILTER_REBUILD)")
	fs.DurationVar(&c.negativeTTL, "negative-ttl", 5*time.Second, "how long an unknown token is remembered as unknown; positive (TOKEND_NEGATIVE_TTL)")
	fs.DurationVar(&c.flushInterval, "flush-interval", time.Second, "how often usage and last-used times are written; positive (TOKEND_FLUSH_INTERVAL)")
	fs.BoolVar(&c.trackNetworks, "track-networks", true, "note the networks (IPv4 /24, IPv6 /48) each token is used from, and raise token.new_network for a new one; false turns both off (TOKEND_TRACK_NETWORKS)")
	fs.IntVar(&c.failureLimit, "failure-limit", 100, "failed verifications allowed per client address per minute before it is throttled; 0 turns the throttle off, negative is refused (TOKEND_FAILURE_LIMIT)")
	fs.DurationVar(&c.staleWindow, "stale-window", verify.DefaultStaleWindow, "PostgreSQL: how long cached answers are still trusted once changes from other instances may be missed (the database or the connection that carries them is lost); 0 trusts none (TOKEND_STALE_WINDOW)")
	fs.StringVar(&c.invalidation, "invalidation", "listen", "PostgreSQL: how changes made through other instances reach this one: listen (LISTEN/NOTIFY, one extra connection) or poll (read the change log every --invalidation-poll-interval, for databases without LISTEN) (TOKEND_INVALIDATION)")
	fs.DurationVar(&c.pollInterval, "invalidation-poll-interval", postgres.DefaultPollInterval, "PostgreSQL, --invalidation poll: the wait between two reads of the change log; positive (TOKEND_INVALIDATION_POLL_INTERVAL)")
	fs.DurationVar(&c.eventInterval, "event-interval", time.Minute, "how often the time-based events (token.expiring, token.expired) are looked for; positive (TOKEND_EVENT_INTERVAL)")
	fs.DurationVar(&c.rotatedKeep, "rotated-secret-retention", tokend.DefaultRotatedSecretRetention, "how long a secret replaced by rotation is remembered after its grace ends, so that its use answers ROTATED and raises token.rotated_secret_used; after that it answers NOT_FOUND. 0 keeps them forever (TOKEND_ROTATED_SECRET_RETENTION)")
	// How often forgotten rotated-out secrets are deleted; tests shorten it.
	fs.DurationVar(&c.rotatedSweep, "rotated-secret-sweep", time.Hour, "")
	_ = fs.MarkHidden("rotated-secret-sweep")
	fs.StringVar(&c.auditRetention, "audit-retention", "", "delete audit rows older than this (such as 365d), every hour, keeping the chain verifiable from a checkpoint signed with a key derived from the pepper; empty or 0 keeps the audit log forever, the default (TOKEND_AUDIT_RETENTION)")
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown may take (it writes the usage not yet written); positive (TOKEND_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.redis, "redis", "", "redis:// or rediss:// URL: share rate limits and the failure throttle with every instance on it; without, each instance limits on its own (TOKEND_REDIS)")
	fs.StringVar(&c.redisPrefix, "redis-prefix", redislimit.DefaultPrefix, "prefix of tokend's Redis keys, for several deployments on one Redis (TOKEND_REDIS_PREFIX)")
	fs.DurationVar(&c.redisTimeout, "redis-timeout", redislimit.DefaultTimeout, "longest wait for a Redis command before limits fall back on this instance's own; positive (TOKEND_REDIS_TIMEOUT)")
	mailFlags(fs, &c.mail)
	fs.StringVar(&c.githubKeys, "github-scanning-keys", "", "file of GitHub's secret scanning public keys (their published list): serves POST /v1/leaks/github for GitHub's secret scanning partner program; read again on SIGHUP (TOKEND_GITHUB_SCANNING_KEYS)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM file of the certificate (and its chain) to serve HTTPS with, TLS 1.2 or later; read again on SIGHUP (TOKEND_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM file of the private key of --tls-cert; read again on SIGHUP (TOKEND_TLS_KEY)")
	fs.BoolVar(&c.webhookHTTP, "webhook-allow-http", false, "let webhook endpoints be plain http:// URLs, not only https:// (TOKEND_WEBHOOK_ALLOW_HTTP)")
	fs.BoolVar(&c.webhookPrivate, "webhook-allow-private", false, "let webhook deliveries reach loopback, private, link-local and other non-public addresses (TOKEND_WEBHOOK_ALLOW_PRIVATE)")
	fs.DurationSliceVar(&c.webhookRetry, "webhook-retry-schedule", webhook.DefaultSchedule, "waits after each failed delivery attempt, the last repeated until 3 days after the first (TOKEND_WEBHOOK_RETRY_SCHEDULE)")
	// How long a claimed delivery is held before another worker may take
	// it; tests of a killed instance shorten it.
	fs.DurationVar(&c.webhookLease, "webhook-lease", webhook.DefaultLease, "")
	_ = fs.MarkHidden("webhook-lease")
	return cmd
}

// invalidationFeed relays the changes made through other instances to the
// engine: a postgres.Listener or a postgres.Poller.
type invalidationFeed interface {
	metrics.Listener
	Run(ctx context.Context)
}

func serve(ctx context.Context, c config, e env) error {
	log, err := newLogger(c, e.stderr)
	if err != nil {
		return err
	}
	var trusted []netip.Prefix
	for _, s := range c.trustedProxies {
		p, err := tokend.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--trusted-proxies: %q is not a CIDR range", s)
		}
		trusted = append(trusted, p)
	}
	if err := checkNumbers(c); err != nil {
		return err
	}
	if c.invalidation != "listen" && c.invalidation != "poll" {
		return fmt.Errorf("--invalidation: %q is neither listen nor poll", c.invalidation)
	}
	if err := checkWebhookFlags(c); err != nil {
		return err
	}
	auditRetention, err := parseRetention(c.auditRetention)
	if err != nil {
		return err
	}
	// GitHub's keys are read before anything is opened or created: a key
	// file that cannot be used stops the start, as a wrong flag does.
	var githubKeys *github.Keys
	if c.githubKeys != "" {
		if githubKeys, err = github.LoadKeys(c.githubKeys); err != nil {
			return fmt.Errorf("--github-scanning-keys: %w", err)
		}
		warnSkippedKeys(log, c.githubKeys, githubKeys.Set())
	}
	// So is the TLS certificate.
	var cert *certificate
	if c.tlsCert != "" || c.tlsKey != "" {
		if cert, err = loadCertificate(c.tlsCert, c.tlsKey, log); err != nil {
			return err
		}
	}
	staleWindow := c.staleWindow
	if staleWindow == 0 {
		staleWindow = -1 // the engine's "none"; its zero is the default
	}
	// The address is taken before anything is opened or created: a port
	// in use must leave the data directory untouched, not create the
	// bootstrap admin token and then fail before printing it.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	defer ln.Close() // on an early return; Shutdown closes it otherwise
	b, err := openBackend(ctx, c, e.getenv, log)
	if err != nil {
		return err
	}
	defer b.close()
	// Mail is checked before the bootstrap token is created: a wrong
	// --smtp-url stops the start before it prints a secret. mailer is nil
	// when mail is off; the dispatcher (startWebhooks) takes it.
	mailer, err := newMailer(ctx, c.mail, b, log)
	if err != nil {
		return err
	}

	opts := verify.Options{
		Store: b.store, Hasher: b.hasher, Logger: log,
		CacheEntries: c.cacheEntries, CacheBytes: c.cacheBytes, CacheTTL: c.cacheTTL, NegativeTTL: c.negativeTTL,
		FlushInterval: c.flushInterval, FailureLimit: c.failureLimit, FailureWindow: time.Minute,
		StaleWindow:   staleWindow,
		TrackNetworks: c.trackNetworks, NetworkEvent: manage.NewNetworkEvent,
		NoFilter: !c.secretFilter, FilterRebuild: c.filterRebuild,
	}
	if b.pg == nil {
		// On SQLite this process makes every write, and adds each new
		// secret to the filter before handing it out: no other instance
		// can create a secret the filter has not heard of yet, so what it
		// rules out needs no confirming read.
		opts.FilterConfirm = -1
	}
	var shared *redislimit.Limiter
	if c.redis != "" {
		// Closed after the engine, which uses it until its last flush.
		shared, err = redislimit.Open(c.redis, redislimit.Options{Prefix: c.redisPrefix, Timeout: c.redisTimeout, Logger: log})
		if err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		defer shared.Close()
		opts.Shared = shared
		if shared.Up() {
			log.Info("rate limits and the failure throttle are shared through Redis", "redis", redactURL(c.redis), "prefix", c.redisPrefix)
		} else { // Open warned that it is unreachable
			log.Info("rate limits and the failure throttle will be shared through Redis once it answers", "redis", redactURL(c.redis), "prefix", c.redisPrefix)
		}
	}
	// A rotated-out secret presented again disables its token where its
	// app says so, through the service (made below, before anything is
	// verified).
	var svc *manage.Service
	opts.Disable = func(ctx context.Context, id string, ev tokend.Event) error { return svc.DisableRotated(ctx, id, ev) }
	engine := verify.New(opts)
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	engineDone := make(chan struct{})
	go func() { engine.Run(engineCtx); close(engineDone) }()
	defer func() {
		stopEngine()
		<-engineDone
		flushCtx, cancel := context.WithTimeout(context.Background(), c.shutdown)
		defer cancel()
		if err := engine.Close(flushCtx); err != nil {
			log.Error("final usage flush failed", "err", err)
		}
	}()

	var feed invalidationFeed
	if b.pg != nil {
		// Changes made through other instances reach this engine through
		// the database; until the feed is in step, and whenever it loses
		// it, the engine trusts its cache only for the stale window.
		if c.invalidation == "poll" {
			feed = b.pg.Poller(engine, postgres.PollOptions{Logger: log, Interval: c.pollInterval})
		} else {
			feed = b.pg.Listener(engine, postgres.ListenOptions{Logger: log})
		}
		feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
		feedDone := make(chan struct{})
		go func() { feed.Run(feedCtx); close(feedDone) }()
		defer func() { stopFeed(); <-feedDone }()
	}

	// Webhook signing secrets are sealed with a key derived from the
	// pepper: every instance sharing the pepper opens them.
	webhookSecrets, err := webhook.NewSecrets(b.pepper)
	if err != nil {
		return err
	}
	svc = manage.New(manage.Options{
		Store: b.store, Users: b.users, Hasher: b.hasher, Invalidator: engine, Logger: log,
		WebhookSecrets: webhookSecrets, WebhookAllowHTTP: c.webhookHTTP, WebhookAllowPrivate: c.webhookPrivate,
	})
	if err := svc.EnsureSystemApp(ctx); err != nil {
		return fmt.Errorf("preparing the store: %w", err)
	}
	var bootstrapSecret string
	page, err := b.store.Tokens(ctx, tokend.TokenFilter{AppID: tokend.SystemAppID, Limit: 1, Now: time.Now()})
	if err != nil {
		return err
	}
	if len(page.Items) == 0 {
		_, sec, err := svc.Bootstrap(ctx)
		if err != nil {
			return fmt.Errorf("creating the bootstrap admin token: %w", err)
		}
		bootstrapSecret = sec.Reveal()
	}

	needsSetup, err := svc.NeedsSetup(ctx)
	if err != nil {
		return err
	}
	dash, stopDash, err := newDashboard(ctx, b, svc, engine, log, mailer != nil)
	if err != nil {
		return err
	}
	defer stopDash()
	// Every instance applies the apps' stale-token policies; a token is
	// disabled once whichever instance gets to it first.
	staleCtx, stopStale := context.WithCancel(context.WithoutCancel(ctx))
	staleTicker := time.NewTicker(staleSweep)
	staleDone := make(chan struct{})
	go func() { svc.RunDisableUnused(staleCtx, staleTicker.C); close(staleDone) }()
	defer func() { stopStale(); staleTicker.Stop(); <-staleDone }()
	// The time-based events: on PostgreSQL one instance at a time looks
	// for them (the store's Lead), and each is raised once anyway.
	eventCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	eventTicker := time.NewTicker(c.eventInterval)
	eventsDone := make(chan struct{})
	go func() { svc.RunTimeEvents(eventCtx, eventTicker.C); close(eventsDone) }()
	defer func() { stopEvents(); eventTicker.Stop(); <-eventsDone }()
	if c.rotatedKeep > 0 {
		forgetCtx, stopForget := context.WithCancel(context.WithoutCancel(ctx))
		forgetTicker := time.NewTicker(c.rotatedSweep)
		forgetDone := make(chan struct{})
		go func() { svc.RunForgetRotated(forgetCtx, forgetTicker.C, c.rotatedKeep); close(forgetDone) }()
		defer func() { stopForget(); forgetTicker.Stop(); <-forgetDone }()
	}

	stopAudit := startAuditJobs(ctx, b, auditRetention, log)
	defer stopAudit()

	// The mailed event types go to mailer (nil: no mail is sent; made and
	// checked by newMailer above).
	dispatcher, stopDispatcher, err := startWebhooks(ctx, c, b, webhookSecrets, mailer, log)
	if err != nil {
		return err
	}
	defer stopDispatcher()

	bi := readBuild()
	reg := metrics.New(metrics.Build{Version: bi.Version, Revision: bi.Revision, GoVersion: bi.GoVersion})
	reg.Engine(engine)
	reg.Webhooks(dispatcher)
	if shared != nil {
		reg.Redis(shared)
	}
	if feed != nil {
		reg.Listener(feed)
	}
	deps := httpapi.Deps{
		Service: svc, Verifier: engine, Logger: log, TrustedProxies: trusted,
		Ready: b.store.Ping, Version: version(), Extra: dash, Metrics: reg.Handler(),
	}
	var reloads []reloader
	if githubKeys != nil {
		deps.GitHubKeys = githubKeys
		reg.GitHubKeys(githubKeys)
		reloads = append(reloads, reloader{"github scanning keys", func() ([]any, error) {
			set, err := githubKeys.Reload()
			if err != nil {
				return nil, err // its message names the file
			}
			warnSkippedKeys(log, c.githubKeys, set)
			return []any{"file", c.githubKeys, "keys", set.Len(), "skipped", len(set.Skipped())}, nil
		}})
		log.Info("GitHub secret scanning reports are taken at POST /v1/leaks/github", "file", c.githubKeys)
	}
	if cert != nil {
		reloads = append(reloads, cert.reloader())
	}
	stopReloads := reloadOnHangup(log, reloads)
	defer stopReloads()
	handler := httpapi.NewServer(deps)
	scheme := "http"
	if cert != nil {
		scheme = "https"
		handler = hsts(handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ConnContext:       httpapi.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	url := scheme + "://" + ln.Addr().String()
	printBanner(e.stdout, url, bootstrapSecret, needsSetup)
	if cert == nil && reachableFromOthers(ln.Addr()) {
		printCookieRules(e.stdout, ln.Addr().String())
	}
	fmt.Fprintln(e.stdout, "Press Ctrl+C to stop.")
	log.Info("tokend started", "addr", ln.Addr().String(), "version", version())

	errc := make(chan error, 1)
	if cert != nil {
		srv.TLSConfig = cert.config()
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), c.shutdown)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Error("graceful shutdown incomplete", "err", err)
	}
	return nil
}

// checkWebhookFlags refuses a retry schedule or lease the dispatcher
// cannot use, before anything is opened or created.
// checkNumbers refuses the numeric flags of serve that are out of range,
// each in the words of its --help: a zero the engine would silently read
// as its default (--cache-ttl 0 was a minute) is refused, unless the flag
// says what 0 means (--failure-limit, --stale-window,
// --rotated-secret-retention).
func checkNumbers(c config) error {
	positive := []struct {
		flag string
		v    int64
	}{
		{"cache-entries", int64(c.cacheEntries)}, {"cache-bytes", c.cacheBytes},
		{"cache-ttl", int64(c.cacheTTL)}, {"negative-ttl", int64(c.negativeTTL)}, {"flush-interval", int64(c.flushInterval)},
		{"secret-filter-rebuild", int64(c.filterRebuild)}, {"invalidation-poll-interval", int64(c.pollInterval)},
		{"event-interval", int64(c.eventInterval)}, {"rotated-secret-sweep", int64(c.rotatedSweep)},
		{"shutdown-timeout", int64(c.shutdown)}, {"redis-timeout", int64(c.redisTimeout)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("--%s must be positive (0 does not turn it off)", p.flag)
		}
	}
	for _, z := range []struct {
		flag, zero string
		v          int64
	}{
		{"failure-limit", "turns the throttle off", int64(c.failureLimit)},
		{"stale-window", "trusts no cached answer", int64(c.staleWindow)},
		{"rotated-secret-retention", "keeps rotated-out secrets forever", int64(c.rotatedKeep)},
	} {
		if z.v < 0 {
			return fmt.Errorf("--%s must not be negative (0 %s)", z.flag, z.zero)
		}
	}
	return nil
}

func checkWebhookFlags(c config) error {
	for _, w := range c.webhookRetry {
		if w <= 0 {
			return errors.New("--webhook-retry-schedule: every wait must be positive")
		}
	}
	if c.webhookLease <= webhook.Timeout {
		return fmt.Errorf("--webhook-lease must be longer than the %s attempt timeout", webhook.Timeout)
	}
	// A mail attempt may take MailTimeout: under a shorter lease none
	// would ever begin (see the dispatcher's budget).
	if c.mail.smtpURL != "" && c.webhookLease <= webhook.MailTimeout {
		return fmt.Errorf("--webhook-lease must be longer than the %s mail timeout", webhook.MailTimeout)
	}
	return nil
}

// startWebhooks starts the dispatcher that delivers events to webhook
// endpoints and mail recipients; stop ends it, once the attempts under way
// are recorded (each ends within webhook.Timeout).
func startWebhooks(ctx context.Context, c config, b *backend, secrets *webhook.Secrets, mailer tokend.Mailer, log *slog.Logger) (d *webhook.Dispatcher, stop func(), err error) {
	store, ok := b.store.(tokend.WebhookStore)
	if !ok {
		return nil, nil, fmt.Errorf("%T keeps no webhooks", b.store)
	}
	d = webhook.New(webhook.Options{
		Store: store, Secrets: secrets, Mailer: mailer,
		AllowHTTP: c.webhookHTTP, AllowPrivate: c.webhookPrivate,
		Schedule: c.webhookRetry, Lease: c.webhookLease,
		Logger: log.With("part", "webhooks"), Version: version(),
	})
	// Events written through this instance are taken at once; those of
	// other instances at the next poll.
	if h, ok := b.store.(interface{ SetOutboxHook(func()) }); ok {
		h.SetOutboxHook(d.Nudge)
	}
	if c.webhookHTTP || c.webhookPrivate {
		log.Warn("webhook deliveries may reach plain http:// or non-public addresses", "allow_http", c.webhookHTTP, "allow_private", c.webhookPrivate)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { _ = d.Run(runCtx); close(done) }()
	return d, func() { cancel(); <-done }, nil
}

// redactURL hides the password of a URL that is logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}

func printBanner(w io.Writer, url, bootstrapSecret string, needsSetup bool) {
	fmt.Fprintf(w, "tokend is listening on %s\n", url)
	fmt.Fprintf(w, "  dashboard: %s/\n", url)
	fmt.Fprintf(w, "  REST API:  %s/v1   (OpenAPI document: %s/openapi.json)\n", url, url)
	fmt.Fprintf(w, "  verify:    POST %s/v1/verify   forward auth: GET %s/v1/auth\n", url, url)
	if bootstrapSecret != "" {
		fmt.Fprintf(w, "\nThis is the first start: an owner admin token was created. It is shown only this once:\n\n")
		fmt.Fprintf(w, "    %s\n\n", bootstrapSecret)
		fmt.Fprintf(w, "Keep it somewhere safe, for example:\n    export TOKEND_URL=%s TOKEND_TOKEN=%s\n\n", url, bootstrapSecret)
		if needsSetup {
			fmt.Fprintf(w, "To create the dashboard's owner account, open %s/setup and paste the token above.\n\n", url)
		}
	} else if needsSetup {
		fmt.Fprintf(w, "\nNo dashboard user yet: open %s/setup and paste an owner admin token (`tokend bootstrap` makes one).\n\n", url)
	}
}

// printCookieRules explains, when serve takes plain HTTP from other
// machines, why a browser on one of them cannot sign in to the dashboard,
// and what to do about it. The cookies are web.Server's (internal/web,
// auth.go).
func printCookieRules(w io.Writer, addr string) {
	_, port, _ := net.SplitHostPort(addr)
	fmt.Fprintf(w, `Plain HTTP on %[1]s, which other machines can reach: the dashboard signs
nobody in from them. Its cookies (__Host-tokend_session, __Host-tokend_csrf) are
Secure, and browsers keep Secure cookies only from https:// pages, or from
http://localhost and http://127.0.0.1 (Chrome, Firefox). At any other http://
address the setup and sign-in forms answer 403 ("The form was missing its
security token"). The API, verification and forward auth work as they are.
For the dashboard from another machine, either
  - serve HTTPS: --tls-cert FILE --tls-key FILE (TOKEND_TLS_CERT, TOKEND_TLS_KEY),
  - or put a reverse proxy that terminates TLS in front (its address in
    --trusted-proxies, for the client addresses),
  - or open http://localhost:%[2]s/ on that machine through an SSH tunnel:
    ssh -L %[2]s:127.0.0.1:%[2]s <this host> (a container's port published on the
    browser's machine works the same way: http://localhost:<published port>/).

`, addr, port)
}

// staleSweep is how often the apps' stale-token policies are applied; their
// periods are whole days, so an hour late is close enough.
const staleSweep = time.Hour

// sessionSweep is how often expired dashboard sessions are deleted; they
// are refused anyway, this only keeps the table small.
const sessionSweep = 10 * time.Minute

// newDashboard makes the dashboard. Its cookie key comes from the pepper
// through HKDF with a label of its own, so that every instance sharing the
// pepper can open the cookies another sealed, and the key reveals nothing
// of the pepper. stop ends the sweep of expired sessions and waits for it.
func newDashboard(ctx context.Context, b *backend, svc *manage.Service, v tokend.Verifier, log *slog.Logger, mailOn bool) (h http.Handler, stop func(), err error) {
	key, err := hkdf.Key(sha256.New, b.pepper, nil, "tokend dashboard cookies v1", 32)
	if err != nil {
		return nil, nil, err
	}
	dash := web.New(web.Options{
		Service: svc, Users: b.users, Verifier: v, Key: key, Logger: log, MailOn: mailOn,
		Version: version(),
	})
	// The customer portal is a separate area under /portal/: its own
	// sessions and cookie, never the dashboard's.
	cust := portal.New(portal.Options{Service: svc, Logger: log})
	mux := http.NewServeMux()
	mux.Handle(portal.Prefix, cust)
	mux.Handle("/", dash)
	sweepCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { dash.Run(sweepCtx, sessionSweep) })
	wg.Go(func() { cust.Run(sweepCtx, sessionSweep) })
	return mux, func() { cancel(); wg.Wait() }, nil
}

func bootstrapCmd(e env) *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create an owner admin token and print only its secret",
		Long:  "Create an owner admin token (every admin permission, no expiry) and print only its secret on stdout, for scripts.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.getenv); err != nil {
				return err
			}
			log, err := newLogger(c, e.stderr)
			if err != nil {
				return err
			}
			b, err := openBackend(cmd.Context(), c, e.getenv, log)
			if err != nil {
				return err
			}
			defer b.close()
			svc := manage.New(manage.Options{Store: b.store, Hasher: b.hasher, Logger: log})
			_, sec, err := svc.Bootstrap(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.stdout, sec.Reveal())
			return err
		},
	}
	storageFlags(cmd.Flags(), &c)
	return cmd
}

func migrateCmd(e env) *cobra.Command {
	var c config
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		Long: "Apply the database migrations this tokend has and the database lacks, and exit. " +
			"A database whose schema is newer than this tokend's is refused: migrations are never undone.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.getenv); err != nil {
				return err
			}
			if dryRun {
				return migrateDryRun(cmd.Context(), c, e)
			}
			log, err := newLogger(c, e.stderr)
			if err != nil {
				return err
			}
			b, err := openBackend(cmd.Context(), c, e.getenv, log)
			if err != nil {
				return err
			}
			defer b.close()
			_, err = fmt.Fprintln(e.stdout, "migrations applied; the schema is up to date")
			return err
		},
	}
	storageFlags(cmd.Flags(), &c)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the migrations that would be applied, and apply none: reads the database only, with no lock and no pepper")
	return cmd
}
