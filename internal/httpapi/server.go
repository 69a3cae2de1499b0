// Package httpapi is tokend's HTTP face: the REST management API under /v1,
// POST /v1/verify, forward auth at GET /v1/auth, health and readiness, and
// the OpenAPI document generated from the handlers themselves (huma).
//
// Handlers only translate between HTTP and the manage and verify services;
// rules live there. Every error answer is an RFC 9457 problem made in one
// place (problem.go). Nothing here logs a secret, a request body, or a query
// string.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

// Deps is what the HTTP API needs.
type Deps struct {
	Service  *manage.Service
	Verifier tokend.Verifier
	Logger   *slog.Logger
	// TrustedProxies are the peers whose X-Forwarded-For / X-Real-IP are
	// believed.
	TrustedProxies []netip.Prefix
	// Ready answers nil when the instance can serve (storage reachable).
	Ready   func(ctx context.Context) error
	Version string
	// Extra, when set, serves every path the API does not (the dashboard).
	Extra http.Handler
	// Metrics, when set, answers GET /metrics (Prometheus). It is not part
	// of the OpenAPI document: it is for the monitoring system, not for API
	// clients, and shows only counts, never a token or an address.
	Metrics http.Handler
	// GitHubKeys, when set, serves POST /v1/leaks/github (GitHub's secret
	// scanning partner program) and checks its reports' signatures.
	GitHubKeys GitHubKeys
}

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

var installErrors sync.Once

// NewServer answers the HTTP handler for the whole API.
func NewServer(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Version == "" {
		d.Version = "dev"
	}
	// huma makes its own errors (validation, unreadable bodies) through
	// this hook; ours must have the same shape, so install it once.
	installErrors.Do(func() {
		huma.NewError = newProblem
		// A key is the field only when spelled exactly so: otherwise
		// {"name":"a","Name":"b"} validates and encoding/json then reads
		// "b", not what a reader of the body sees. (POST /v1/verify's own
		// decoder is case-sensitive too: decodeVerify.)
		huma.ValidateStrictCasing = true
	})
	mux := http.NewServeMux()
	api := humago.New(mux, apiConfig(d.Version))
	api.UseMiddleware(strictJSON(api), authenticate(api, d.Verifier, d.Logger))
	addRoutes(api, mux, d)
	finishDocument(api)
	fallback := d.Extra
	if fallback == nil {
		fallback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeProblem(api, w, r, &Problem{Type: "about:blank", Status: http.StatusNotFound,
				Title: http.StatusText(http.StatusNotFound), Code: tokend.ECodeNotFound, Detail: "no such endpoint"})
		})
	}
	mux.Handle("/", fallback)
	// Everything under /v1 is the API's, answered in problem+json even
	// where no route matches; the dashboard never sees it.
	unrouted := notRouted(api, mux)
	mux.Handle("/v1/", unrouted)
	mux.Handle("/v1", unrouted)
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics)
	}
	var h http.Handler = mux
	h = jsonByDefault(h)
	h = withOrigin(h)
	h = secureHeaders(h)
	h = recoverPanics(api, d.Logger, h)
	h = logRequests(d.Logger, h)
	h = clientIP(d.TrustedProxies, h)
	return h
}

// notRouted answers a /v1 request that no route takes: 405 with Allow when
// the path has routes for other methods, 404 otherwise. With the /v1/
// catch-all registered, ServeMux hands it wrong-method requests too instead
// of answering 405 itself, so the methods the path has are asked of the
// mux.
func notRouted(api huma.API, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := *r
			probe.Method = m
			if _, pattern := mux.Handler(&probe); pattern != "" && pattern != "/" && pattern != "/v1/" && pattern != "/v1" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			writeProblem(api, w, r, &Problem{Type: "about:blank", Status: http.StatusNotFound,
				Title: http.StatusText(http.StatusNotFound), Code: tokend.ECodeNotFound, Detail: "no such endpoint"})
			return
		}
		p := &Problem{Type: "about:blank", Status: http.StatusMethodNotAllowed, Title: http.StatusText(http.StatusMethodNotAllowed),
			Code: tokend.ECodeMethodNotAllowed, Detail: r.Method + " is not allowed here; allowed: " + strings.Join(allow, ", ")}
		writeProblem(api, w, r, p.withHeader("Allow", strings.Join(allow, ", ")))
	})
}

func apiConfig(version string) huma.Config {
	cfg := huma.DefaultConfig("tokend", version)
	cfg.Info.Description = "Issue, manage and verify API tokens. Management endpoints take an admin token as a bearer token; " +
		"/v1/verify and /v1/auth take the token being verified."
	cfg.CreateHooks = nil // no $schema links in answers
	cfg.Formats = withRawBodies(cfg.Formats)
	cfg.DocsPath = "" // the docs UI would load scripts from elsewhere
	cfg.SchemasPath = ""
	cfg.OpenAPIPath = "/openapi"
	// The API is at the root of whatever address serves this document.
	cfg.Servers = []*huma.Server{{URL: "/", Description: "This tokend instance: the address the document was fetched from."}}
	// Durations travel as text ("1h", "30d"), not as nanoseconds.
	cfg.Components.Schemas.RegisterTypeAlias(reflect.TypeFor[tokend.Duration](), reflect.TypeFor[string]())
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "The secret of an admin token (an owner token comes from `tokend bootstrap`)."},
		"token":  {Type: "http", Scheme: "bearer", Description: "The secret of the token asking about itself (GET /v1/self): any token, a product's or an admin's."},
	}
	return cfg
}

func writeProblem(api huma.API, w http.ResponseWriter, r *http.Request, p *Problem) {
	for k, v := range p.headers {
		w.Header()[k] = v
	}
	huma.WriteErr(api, humago.NewContext(nil, r, w), p.Status, p.Detail, p)
}

type ctxKey int

const (
	keyClientIP ctxKey = iota
	keyActor
	keyOrigin
	keyConnPeer
)

// ClientIP answers the client address of a request as clientIP found it.
func ClientIP(ctx context.Context) string {
	if ip, ok := ctx.Value(keyClientIP).(string); ok {
		return ip
	}
	if p := connPeerOf(ctx); p != nil {
		return p.ip
	}
	return ""
}

// connPeer is a connection's peer as clientIP works it out, kept for the
// connection's later requests: a keep-alive connection carries many, from
// the same peer. Only a peer that is no trusted proxy is kept (a trusted
// proxy's requests each name their own client).
type connPeer struct {
	remote     string // the peer's address as the request has it (RemoteAddr)
	ip         string // the client address: the peer's
	verifyPeer string // the failure throttle's key at /v1/verify
}

// peerSlot holds a connection's connPeer once its first request set it.
type peerSlot struct{ p atomic.Pointer[connPeer] }

// ConnContext is for http.Server's ConnContext: it gives each connection a
// place where clientIP keeps what it works out from the peer, so that the
// connection's later requests reuse it instead of parsing the address,
// allocating its text and a request carrying it anew each time. Without
// it the API answers the same, a little slower.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, keyConnPeer, new(peerSlot))
}

// connPeerOf answers the connPeer kept for ctx's connection, if any.
func connPeerOf(ctx context.Context) *connPeer {
	if s, ok := ctx.Value(keyConnPeer).(*peerSlot); ok {
		return s.p.Load()
	}
	return nil
}

// RemoteIP is the client address of a request: what clientIP found, else
// (a handler not behind it) the peer's host.
func RemoteIP(r *http.Request) string {
	if ip := ClientIP(r.Context()); ip != "" {
		return ip
	}
	return peerHost(r.RemoteAddr)
}

// peerHost is the host of a peer address, or the address as it is when it
// has no port.
func peerHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

func actorFrom(ctx context.Context) tokend.Actor {
	a, _ := ctx.Value(keyActor).(tokend.Actor)
	return a
}

// clientIP works out the client address: the peer, or, when the peer is a
// trusted proxy, the nearest untrusted address in X-Forwarded-For (or
// X-Real-IP). Headers from anybody else are ignored so that they cannot
// forge an address to pass allowed_ips.
func clientIP(trusted []netip.Prefix, next http.Handler) http.Handler {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slot, _ := r.Context().Value(keyConnPeer).(*peerSlot)
		if slot != nil {
			if p := slot.p.Load(); p != nil && p.remote == r.RemoteAddr {
				next.ServeHTTP(w, r) // ClientIP finds p.ip
				return
			}
		}
		peer, err := netip.ParseAddr(peerHost(r.RemoteAddr))
		ip := ""
		if err == nil {
			peer = peer.Unmap().WithZone("")
			ip = peer.String()
			if isTrusted(peer) {
				ip = forwardedFor(r, isTrusted, ip)
			} else if slot != nil {
				slot.p.Store(&connPeer{remote: r.RemoteAddr, ip: ip, verifyPeer: tokend.PeerKey(tokend.DoorVerify, ip)})
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyClientIP, ip)))
	})
}

func forwardedFor(r *http.Request, isTrusted func(netip.Addr) bool, peer string) string {
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil || a.Zone() != "" {
			// Not a client's address (a zone names an interface of
			// the proxy's, which /v1/verify's ip refuses too).
			break
		}
		a = a.Unmap()
		if !isTrusted(a) || i == 0 {
			return a.String()
		}
	}
	if v := strings.TrimSpace(r.Header.Get("X-Real-IP")); v != "" {
		if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
			return a.Unmap().String()
		}
	}
	return peer
}

// jsonByDefault reads API bodies sent without a content type, or as
// curl -d sends them (form-encoded), as the JSON they are: the API takes no
// forms, and `curl -d '{...}'` is how most people first try it.
func jsonByDefault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			switch ct := r.Header.Get("Content-Type"); {
			case ct == "", strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
				r.Header.Set("Content-Type", "application/json")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// The values of headers set on every answer, shared by all answers so that
// setting them allocates nothing (net/http only reads them; an append by a
// handler copies, their capacity being their length).
var (
	headerNosniff = []string{"nosniff"}
	headerNoStore = []string{"no-store"}
	headerJSON    = []string{"application/json"}
)

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = headerNosniff
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			// Answers can hold secrets (create, rotate): never cache them.
			h["Cache-Control"] = headerNoStore
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic into a logged 500 problem; the server goes on.
func recoverPanics(api huma.API, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", logPath(r.URL.Path),
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeProblem(api, w, r, problemFrom(tokend.Internal(fmt.Errorf("panic: %v", v))))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs method, path (never the query), status and duration.
// Verification traffic is logged at debug level: it is the hot path.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		level := slog.LevelInfo
		if r.URL.Path == "/v1/verify" || r.URL.Path == "/v1/auth" || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			level = slog.LevelDebug
		}
		if !log.Enabled(r.Context(), level) {
			// Nothing to log: no recorder, no clock reads.
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		log.Log(r.Context(), level, "request", "method", r.Method, "path", logPath(r.URL.Path),
			"status", rec.status, "duration", time.Since(start), "client_ip", ClientIP(r.Context()))
	})
}
