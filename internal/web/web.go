// Package web is tokend's dashboard: server-rendered pages (html/template)
// and a little static CSS and JavaScript, all embedded in the binary, served
// next to the REST API by the same process.
//
// Every action goes through the same manage.Service as the API, with the
// signed-in user as the actor, so the rules, the permission checks and the
// audit log are the API's. The dashboard adds what a browser needs: password
// sign-in, sessions, CSRF protection, and pages.
//
// Files by area: web.go (wiring, headers, errors), render.go (templates),
// auth.go (setup, sign-in, sessions, CSRF, throttling), users.go (users
// page), profile.go (the signed-in user's own page: which mails they get), home.go, tokens.go, apps.go, audit.go (the pages), seal.go (sealed
// cookies: flash messages and the once-only secret hand-over), reveal.go
// (what the secret-once dialog shows beside the secret), resume.go (a
// create form kept across the sign-in after a session ended).
package web

import (
	"cmp"
	"embed"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

//go:embed all:templates static
var assets embed.FS

// Options wire the dashboard.
type Options struct {
	Service *manage.Service
	Users   tokend.UserStore
	// Verifier checks the bootstrap admin token on /setup.
	Verifier tokend.Verifier
	// Key is secret material shared by every instance (derived from the
	// pepper), for what the dashboard seals into cookies.
	Key    []byte
	Logger *slog.Logger
	Now    func() time.Time
	// IdleTimeout ends a session after this long without a request (default
	// 30 min); AbsoluteTimeout ends it this long after sign-in, whatever
	// its activity (default 12 h).
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// LoginThrottle bounds failed sign-ins per account and per address.
	LoginThrottle LoginThrottle
	// MailOn tells the profile page that this server sends mail
	// (--smtp-url).
	MailOn bool
	// Version is tokend's version, shown in the footer to signed-in users
	// only (it would tell a stranger which flaws to try).
	Version string
	// Insecure drops the Secure attribute and the __Host- prefix from
	// cookies, for tests over plain HTTP on a non-loopback address only.
	Insecure bool
}

// Server is the dashboard.
type Server struct {
	svc      *manage.Service
	users    tokend.UserStore
	verifier tokend.Verifier
	key      []byte
	log      *slog.Logger
	now      func() time.Time
	insecure bool
	mailOn   bool
	version  string
	idle     time.Duration
	absolute time.Duration
	throttle LoginThrottle

	pages *pages
	mux   *http.ServeMux
	auth  *authState
}

// New makes the dashboard. It panics when the embedded templates do not
// parse: that is a build mistake, caught by the package's tests.
func New(o Options) *Server {
	s := &Server{
		svc: o.Service, users: o.Users, verifier: o.Verifier, key: o.Key,
		log: o.Logger, now: o.Now, insecure: o.Insecure, mailOn: o.MailOn,
		version: cmp.Or(o.Version, "devel"),
		idle:    o.IdleTimeout, absolute: o.AbsoluteTimeout, throttle: o.LoginThrottle,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	p, err := parsePages()
	if err != nil {
		panic(err)
	}
	s.pages = p
	s.auth = newAuthState(s)
	s.mux = http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(http.FileServerFS(static))))
	// Browsers ask every site for /favicon.ico; a 404 would be an error in
	// the console of every page.
	s.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	})
	s.authRoutes()
	s.userRoutes()
	s.homeRoutes()
	s.tokenRoutes()
	s.appRoutes()
	s.ownerRoutes()
	s.auditRoutes()
	s.leakRoutes()
	s.profileRoutes()
	s.webhookRoutes()
	return s
}

// ServeHTTP serves the dashboard.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	s.protect(s.mux).ServeHTTP(w, r)
}

// staticFiles lets browsers keep the assets for a while; they change only
// with the binary.
func staticFiles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// handle registers a page handler that needs a signed-in user holding perm
// ("" for any signed-in user).
func (s *Server) handle(pattern, perm string, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.require(perm, h))
}
