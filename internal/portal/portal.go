// Package portal is the customer portal: the self-service "API tokens" page
// a product gives its own customers. A product's backend mints a single-use
// link (POST /v1/portal/sessions); the link opens a session of this page
// for one owner of one application, and every action goes through the
// same manage.Service as the API with manage.PortalActor, an actor scoped
// to that owner and that application. The service's scope rules are the
// isolation: another owner's token, or another application's, is answered
// as one that does not exist.
//
// It is a separate area from the operator dashboard (package web): its own
// cookie, its own sessions (in the portal_sessions table), its own CSRF
// token, pages and headers. It shares nothing with the dashboard's session.
//
// The cookie is __Host-tokend_portal: the __Host- prefix makes the browser
// refuse it unless it is Secure, host-only and Path=/, so it cannot be set
// or overwritten by a sibling subdomain; the prefix forbids a narrower
// Path, so the cookie is scoped by its distinct name instead of by path
// (the dashboard's is __Host-tokend_session), and the portal reads only
// its own. HttpOnly, SameSite=Lax, no Max-Age: the server ends a session
// after 30 minutes idle (tokend.PortalIdle).
package portal

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
)

//go:embed all:templates static
var assets embed.FS

// Options wire the portal.
type Options struct {
	Service *manage.Service
	Logger  *slog.Logger
	// Insecure drops the Secure attribute and the __Host- prefix from the
	// cookie, for tests over plain HTTP on a non-loopback address only.
	Insecure bool
}

// Server is the portal, served under /portal/.
type Server struct {
	svc      *manage.Service
	log      *slog.Logger
	insecure bool
	pages    *pages
	mux      *http.ServeMux
	cop      *http.CrossOriginProtection
}

// Prefix is where the portal is served.
const Prefix = "/portal/"

const cookieBase = "tokend_portal"

// New makes the portal. It panics when the embedded templates do not parse.
func New(o Options) *Server {
	s := &Server{svc: o.Service, log: o.Logger, insecure: o.Insecure, cop: http.NewCrossOriginProtection()}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := parsePages()
	if err != nil {
		panic(err)
	}
	s.pages = p
	s.mux = http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /portal/static/", http.StripPrefix("/portal/static/", cacheFor(http.FileServerFS(static))))
	s.mux.HandleFunc("GET /portal/open/{link}", s.open)
	s.mux.HandleFunc("GET /portal/{$}", s.signedIn(s.home))
	s.mux.HandleFunc("GET /portal/brand.css", s.signedIn(s.brandCSS))
	s.mux.HandleFunc("POST /portal/tokens", s.signedIn(s.create))
	s.mux.HandleFunc("GET /portal/tokens/{id}", s.signedIn(s.token))
	s.mux.HandleFunc("POST /portal/tokens/{id}/edit", s.signedIn(s.edit))
	s.mux.HandleFunc("POST /portal/tokens/{id}/{action}", s.signedIn(s.act))
	s.mux.HandleFunc("POST /portal/logout", s.signedIn(s.logout))
	s.mux.HandleFunc("/portal/", func(w http.ResponseWriter, r *http.Request) {
		s.message(w, r, http.StatusNotFound, "Page not found", "There is no such page.")
	})
	return s
}

// Run sweeps expired links and ended sessions every interval until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.svc.SweepPortal(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweeping expired portal sessions", "err", err)
			} else if n > 0 {
				s.log.Debug("swept expired portal links and sessions", "count", n)
			}
		}
	}
}

// ServeHTTP serves the portal with its headers: nothing cached, no
// referrer (a link's secret is in its URL), and not embeddable.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp("", "", ""))
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	if !strings.HasPrefix(r.URL.Path, "/portal/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := s.cop.Check(r); err != nil {
			s.message(w, r, http.StatusForbidden, "Refused", "This request came from another site and was refused.")
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// csp is the portal's Content-Security-Policy: img, when set, is the
// logo's origin; formTarget the origin sign-out redirects to; frames the
// origins that may embed the page ("": none may).
func csp(img, formTarget, frames string) string {
	if img != "" {
		img = " " + img
	}
	if formTarget != "" {
		formTarget = " " + formTarget
	}
	if frames == "" {
		frames = "'none'"
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:" + img + "; " +
		"object-src 'none'; base-uri 'none'; form-action 'self'" + formTarget + "; frame-ancestors " + frames
}

func cacheFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) cookieName() string {
	if s.insecure {
		return cookieBase
	}
	return "__Host-" + cookieBase
}

// cookie is the session cookie. In a page other sites may frame, it is
// SameSite=None and Partitioned (CHIPS): a browser sends it inside the
// product's iframe, and only there, keyed to the top-level site; the
// session's CSRF token and the cross-origin check still guard every form.
func (s *Server) cookie(value string, framed bool) *http.Cookie {
	c := &http.Cookie{Name: s.cookieName(), Value: value, Path: "/", HttpOnly: true, Secure: !s.insecure, SameSite: http.SameSiteLaxMode}
	if framed && !s.insecure {
		c.SameSite, c.Partitioned = http.SameSiteNoneMode, true
	}
	return c
}

func (s *Server) clearCookie() *http.Cookie {
	c := s.cookie("", false)
	c.MaxAge = -1
	return c
}

// open consumes a link, starts its session and sends the browser on to the
// page, so that the link's secret leaves the address bar (and, with the
// redirect answering 303, the history's current entry).
func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		// A link preview (or a scanner) asking what is there must not use
		// the link up; only a GET opens it.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	raw, sess, err := s.svc.OpenPortalLink(r.Context(), r.PathValue("link"), httpapi.RemoteIP(r))
	if err != nil {
		if c := tokend.CodeOf(err); c == tokend.ECodeUnavailable || c == tokend.ECodeInternal {
			s.fail(w, r, err)
			return
		}
		s.message(w, r, http.StatusNotFound, "This link has expired",
			"A link to this page works once, within 5 minutes. Go back to the application you came from and open the page again.")
		return
	}
	app, ok := s.appOf(w, r, sess.Grant)
	if !ok {
		return
	}
	// A session this browser held before (another link) ends here.
	if old, err := r.Cookie(s.cookieName()); err == nil {
		if err := s.svc.EndPortalSession(r.Context(), old.Value, httpapi.RemoteIP(r)); err != nil {
			s.log.WarnContext(r.Context(), "ending a replaced portal session", "err", err)
		}
	}
	http.SetCookie(w, s.cookie(raw, embeddable(app)))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// appOf reads the grant's application as its customer and sets the
// headers of its pages; when it cannot, it answers the request (an
// application deleted since the link was made: its page is gone).
func (s *Server) appOf(w http.ResponseWriter, r *http.Request, g tokend.PortalGrant) (tokend.App, bool) {
	app, err := s.svc.App(r.Context(), manage.PortalActor(g, httpapi.RemoteIP(r)), g.AppID)
	switch c := tokend.CodeOf(err); {
	case err == nil:
		s.headers(w, g, app)
		return app, true
	case c == tokend.ECodeUnavailable || c == tokend.ECodeInternal:
		s.fail(w, r, err)
	default:
		s.message(w, r, http.StatusNotFound, "This page is no longer available", "Go back to the application you came from.")
	}
	return tokend.App{}, false
}

// embeddable reports whether the app lets other sites frame its portal.
func embeddable(app tokend.App) bool { return app.Portal != nil && len(app.Portal.FrameAncestors) > 0 }

// headers sets the headers of a page of this session's application: the
// CSP names the logo's origin (img-src), the return URL's (form-action:
// sign-out redirects there) and the application's frame ancestors, whose
// absence keeps the page unembeddable (frame-ancestors 'none' and
// X-Frame-Options DENY). Every origin comes from a URL the service
// validated (manage.URLOrigin), so none can add a directive.
func (s *Server) headers(w http.ResponseWriter, g tokend.PortalGrant, app tokend.App) {
	var img, frames string
	if pt := app.Portal; pt != nil {
		img = manage.URLOrigin(pt.LogoURL)
		for _, o := range pt.FrameAncestors {
			if o = manage.URLOrigin(o); o != "" {
				frames += " " + o
			}
		}
	}
	h := w.Header()
	h.Set("Content-Security-Policy", csp(img, manage.URLOrigin(g.ReturnURL), strings.TrimSpace(frames)))
	if frames != "" {
		h.Del("X-Frame-Options")
	}
}

type ctxKey int

const keySession ctxKey = 0

type session struct {
	tokend.PortalSession
	raw string
	app tokend.App
}

// signedIn resolves the session cookie and, for a POST, checks the form's
// CSRF token; without a session the page says how to come back.
func (s *Server) signedIn(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookieName())
		if err != nil {
			s.ended(w, r)
			return
		}
		sess, err := s.svc.PortalSession(r.Context(), c.Value)
		if err != nil {
			if code := tokend.CodeOf(err); code == tokend.ECodeUnavailable || code == tokend.ECodeInternal {
				s.fail(w, r, err)
				return
			}
			http.SetCookie(w, s.clearCookie())
			s.ended(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				s.message(w, r, http.StatusBadRequest, "The form could not be read", "Go back, reload the page and try again.")
				return
			}
			got := r.PostForm.Get("csrf")
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
				s.message(w, r, http.StatusForbidden, "The form has expired",
					"The form was missing its security token or it had expired. Go back, reload the page and try again.")
				return
			}
		}
		app, ok := s.appOf(w, r, sess.Grant)
		if !ok {
			return
		}
		h(w, r, session{PortalSession: sess, raw: c.Value, app: app})
	}
}

func (s *Server) ended(w http.ResponseWriter, r *http.Request) {
	s.message(w, r, http.StatusUnauthorized, "Your session has ended",
		"For your security this page signs you out after 30 minutes without activity. Go back to the application you came from and open the page again.")
}

// fail answers an error the customer cannot fix: storage unavailable
// (503) or a fault (500, logged).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if tokend.CodeOf(err) == tokend.ECodeUnavailable {
		s.message(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The service is unavailable for a moment. Try again shortly.")
		return
	}
	s.log.ErrorContext(r.Context(), "portal request failed", "path", r.URL.Path, "err", err)
	s.message(w, r, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. Try again shortly.")
}

// problem answers what the customer may read about a failed action.
func problem(err error) string {
	var e *tokend.Error
	if !errors.As(err, &e) {
		return "Something went wrong."
	}
	if len(e.Fields) > 0 {
		msgs := make([]string, 0, len(e.Fields))
		for _, f := range e.Fields {
			msgs = append(msgs, fieldLabel(f.Field)+" "+f.Message+".")
		}
		return strings.Join(msgs, " ")
	}
	switch e.Code {
	case tokend.ECodeNotFound:
		return "That token does not exist."
	case tokend.ECodePreconditionFailed:
		return "The token changed meanwhile. Reload the page and try again."
	}
	m := capital(e.Message)
	if m != "" && !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}

// capital answers s with its first letter upper-case.
func capital(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

func fieldLabel(f string) string {
	if i := strings.IndexAny(f, "[."); i >= 0 {
		f = f[:i]
	}
	switch f {
	case "allowed_ips":
		return "IP ranges"
	case "expires_in", "expires_at":
		return "Expiry"
	case "owner_id":
		return "Your account"
	}
	if f == "" {
		return "The form:"
	}
	return capital(strings.ReplaceAll(f, "_", " "))
}
