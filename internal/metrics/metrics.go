// Package metrics shows tokend's state to Prometheus: a registry that the
// server serves at GET /metrics, and the metrics of the parts wired into it.
//
// Metrics are read from the parts when Prometheus scrapes (CounterFunc,
// GaugeFunc), never pushed from the request path: a component exposes plain
// methods (counts kept in atomics, a connected flag) and registers them
// here, so that counting costs a request at most an atomic add. A part added
// later does the same with Counter and Gauge, or Register for a collector of
// its own.
//
// What it must not do: use a secret, a token id or a client address as a
// label. Labels take only a few fixed values (verification codes, names of
// operations), so that a scrape stays small whatever the traffic.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tokend/tokend"
)

// Registry holds tokend's metrics, with the Go runtime's and the process's.
type Registry struct {
	reg *prometheus.Registry
}

// Build is what the binary knows of its own making, shown as the labels of
// tokend_build_info.
type Build struct {
	Version   string // the module version, or "devel"
	Revision  string // the VCS commit, or "unknown"
	GoVersion string // runtime.Version()
}

// New makes a registry; b labels tokend_build_info.
func New(b Build) *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	r.Gauge("tokend_build_info", "Always 1; the version, the VCS revision and the Go version that built tokend are labels.",
		prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion}, func() float64 { return 1 })
	return r
}

// Handler serves the metrics in Prometheus' text (or protobuf) format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Register adds collectors of a part's own. It fails when a metric is
// registered twice.
func (r *Registry) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := r.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Counter registers a counter read from f at each scrape. Metrics of one
// name may be registered several times with different values of the same
// labels, to make one metric with a label.
func (r *Registry) Counter(name, help string, labels prometheus.Labels, f func() uint64) {
	r.reg.MustRegister(prometheus.NewCounterFunc(
		prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
		func() float64 { return float64(f()) }))
}

// Gauge registers a gauge read from f at each scrape.
func (r *Registry) Gauge(name, help string, labels prometheus.Labels, f func() float64) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(
		prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
}

// Engine is what the verification engine (internal/verify) reports.
type Engine interface {
	Verifications(tokend.Code) uint64
	AdminAuthentications(tokend.Code) uint64
	Throttled() uint64
	StorageErrors() uint64
	FlushErrors() uint64
	CacheSize() (entries int, bytes int64)
	StorageReads() uint64
	FilterStats() (entries int64, bytes int, rebuilds uint64)
}

// Engine registers the verification engine's metrics.
func (r *Registry) Engine(e Engine) {
	for _, c := range tokend.Codes {
		r.Counter("tokend_verifications_total",
			"Verifications answered, by code (a client refused by the failure throttle counts as RATE_LIMITED); admin tokens checked by the management API and the dashboard are counted apart, in tokend_admin_authentications_total.",
			prometheus.Labels{"code": string(c)}, func() uint64 { return e.Verifications(c) })
		r.Counter("tokend_admin_authentications_total",
			"Admin tokens checked by the management API (its bearer token) and the dashboard's sign-in, by code; not counted in tokend_verifications_total.",
			prometheus.Labels{"code": string(c)}, func() uint64 { return e.AdminAuthentications(c) })
	}
	r.Counter("tokend_verifications_throttled_total",
		"Verifications refused by the failure throttle before the secret was looked at.", nil, e.Throttled)
	r.Counter("tokend_storage_errors_total",
		"Storage failures: reads for verifications that could not be answered (503), and usage flushes refused.",
		prometheus.Labels{"op": "verify"}, e.StorageErrors)
	r.Counter("tokend_storage_errors_total",
		"Storage failures: reads for verifications that could not be answered (503), and usage flushes refused.",
		prometheus.Labels{"op": "usage_flush"}, e.FlushErrors)
	r.Counter("tokend_storage_reads_total",
		"Reads from storage: tokens read by secret for verifications (cache misses the filter of known secrets did not rule out).",
		prometheus.Labels{"op": "verify"}, e.StorageReads)
	r.Gauge("tokend_secret_filter_entries", "Secrets in the filter of known secrets (0 while it is not built, or off).", nil,
		func() float64 { n, _, _ := e.FilterStats(); return float64(n) })
	r.Gauge("tokend_secret_filter_bytes", "Memory of the filter of known secrets.", nil,
		func() float64 { _, b, _ := e.FilterStats(); return float64(b) })
	r.Counter("tokend_secret_filter_rebuilds_total", "Times the filter of known secrets was built from storage and put in place.", nil,
		func() uint64 { _, _, n := e.FilterStats(); return n })
	r.Gauge("tokend_cache_entries", "Entries in the verification cache, known and unknown secrets.", nil,
		func() float64 { n, _ := e.CacheSize(); return float64(n) })
	r.Gauge("tokend_cache_bytes", "Estimated bytes held by the verification cache's entries.", nil,
		func() float64 { _, b := e.CacheSize(); return float64(b) })
}

// Redis is what the shared limiter (internal/redislimit) reports.
type Redis interface {
	Up() bool
	Fallbacks() uint64
	Errors() uint64
}

// Redis registers the shared limiter's metrics. Without Redis they are not
// registered at all.
func (r *Registry) Redis(x Redis) {
	r.Gauge("tokend_redis_up", "1 while Redis answers and limits are shared; 0 while each instance limits on its own.", nil,
		func() float64 {
			if x.Up() {
				return 1
			}
			return 0
		})
	r.Counter("tokend_redis_fallbacks_total",
		"Rate-limit and failure-throttle decisions made with this instance's own counts because Redis was unavailable.", nil, x.Fallbacks)
	r.Counter("tokend_redis_errors_total", "Redis commands that failed (timeouts, refused connections, errors).", nil, x.Errors)
}

// Listener is what the PostgreSQL invalidation feed reports, a listener
// (LISTEN/NOTIFY) or a poller of the change log.
type Listener interface {
	Connected() bool
	Reconnects() int64
	Notifications() int64
}

// Gaps is what a poller of the change log reports besides.
type Gaps interface {
	Gaps() int64
}

// Listener registers the invalidation feed's metrics (PostgreSQL only).
// They mean the same in both modes.
func (r *Registry) Listener(l Listener) {
	r.Gauge("tokend_invalidation_listener_up",
		"1 while this instance hears of changes made through other instances (listening, or polling in step); 0 while changes may be missed (cached answers are then trusted only for --stale-window).", nil,
		func() float64 {
			if l.Connected() {
				return 1
			}
			return 0
		})
	r.Counter("tokend_invalidation_reconnects_total", "Times the invalidation feed was back in step after losing it (the listener reconnected; the poller read the change log again after failing, or saw a long transaction end).", nil,
		func() uint64 { return uint64(l.Reconnects()) })
	r.Counter("tokend_invalidations_received_total", "Changes heard of from the database (notifications, or rows of the change log).", nil,
		func() uint64 { return uint64(l.Notifications()) })
	if g, ok := l.(Gaps); ok {
		r.Gauge("tokend_invalidation_gaps",
			"--invalidation poll: seqs of the change log below the highest read whose transactions may still commit (a transaction that commits late, or one rolled back and not yet known to be).", nil,
			func() float64 { return float64(g.Gaps()) })
	}
}

// Webhooks is what the webhook dispatcher (internal/webhook) reports.
type Webhooks interface {
	Deliveries(result string) uint64
}

// WebhookResults are the results of a delivery attempt: delivered, retry
// (failed, tried again later) and failed (given up, or the endpoint is
// disabled or gone).
var WebhookResults = []string{"delivered", "retry", "failed"}

// Webhooks registers the dispatcher's metrics.
func (r *Registry) Webhooks(w Webhooks) {
	for _, res := range WebhookResults {
		r.Counter("tokend_webhook_deliveries_total",
			"Delivery attempts of events to webhook endpoints and mail recipients, by result: delivered, retry (failed, to be tried again), failed (given up).",
			prometheus.Labels{"result": res}, func() uint64 { return w.Deliveries(res) })
	}
}

// GitHubKeys is what GitHub's secret scanning keys (internal/github's
// Keys) report.
type GitHubKeys interface {
	Len() int
	ReloadFailures() uint64
}

// GitHubKeys registers the metrics of GitHub's secret scanning keys. Without
// --github-scanning-keys they are not registered at all.
func (r *Registry) GitHubKeys(k GitHubKeys) {
	r.Gauge("tokend_github_scanning_keys",
		"GitHub secret scanning keys in use (read from --github-scanning-keys at the start or the last reload that succeeded).", nil,
		func() float64 { return float64(k.Len()) })
	r.Counter("tokend_github_scanning_key_reload_failures_total",
		"Reloads of --github-scanning-keys (SIGHUP) that failed and kept the keys read before.", nil, k.ReloadFailures)
}
