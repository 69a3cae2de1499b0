package web

// Signing in: first-run setup, login and logout, sessions kept by the user
// service in the store, CSRF protection, and login throttling.
//
// The session id lives only in the browser's cookie; the store keeps its
// SHA-256. The cookie is __Host- prefixed, Secure, HttpOnly and SameSite=Lax,
// without Max-Age (it ends with the browser); the server ends the session
// after IdleTimeout without a request and AbsoluteTimeout after sign-in,
// whatever the cookie says.
//
// CSRF: every state-changing request must carry the session's CSRF token
// (form field "csrf", or the X-CSRF-Token header), compared in constant
// time. The forms shown before a session exists (login, setup) use a random
// token also held in the __Host-tokend_csrf cookie (double submit). Go's
// http.CrossOriginProtection refuses cross-origin browser requests first,
// by Sec-Fetch-Site or Origin, as a second layer.
//
// Throttling counts failed sign-ins per account (the email, lower-cased) and
// per client address, in this instance's memory: with several instances
// behind a load balancer each keeps its own counts. An attempt is counted
// as a failure before its password is checked (a reservation, taken on
// both keys at once or refused), and given back only when it succeeds or
// cannot be checked, so concurrent attempts can never check more passwords
// than the limits allow.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
)

// LoginThrottle bounds failed sign-ins: at most PerAccount failures for one
// email and PerAddress failures from one client address within Window.
// Zero fields take the defaults (5, 20, 15 minutes).
type LoginThrottle struct {
	PerAccount int
	PerAddress int
	Window     time.Duration
}

// Cookie names without the __Host- prefix that secure mode adds.
const (
	cookieSession = "tokend_session"
	cookieCSRF    = "tokend_csrf"
	cookieFlash   = "tokend_flash"
	cookieReveal  = "tokend_reveal"
)

type authState struct {
	seal     *sealer
	idle     time.Duration
	absolute time.Duration
	throttle *throttle
	cop      *http.CrossOriginProtection
	// hasUsers is set once a user exists; it never goes back (the last
	// owner cannot be deleted), so /setup stops asking the store.
	hasUsers atomic.Bool
}

func newAuthState(s *Server) *authState {
	seal, err := newSealer(s.key)
	if err != nil {
		panic(err)
	}
	a := &authState{seal: seal, idle: s.idle, absolute: s.absolute, cop: http.NewCrossOriginProtection()}
	if a.idle <= 0 {
		a.idle = manage.DefaultSessionIdle
	}
	if a.absolute <= 0 {
		a.absolute = manage.DefaultSessionAbsolute
	}
	a.throttle = newThrottle(s.throttle)
	return a
}

// authRoutes registers /setup, /login and /logout.
func (s *Server) authRoutes() {
	s.mux.HandleFunc("GET /setup", s.setupPage)
	s.mux.HandleFunc("POST /setup", s.setupSubmit)
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.loginSubmit)
	s.mux.HandleFunc("POST /logout", s.logout)
}

// Run sweeps expired sessions and the ended records of shown secrets from
// the store, and stale throttle entries from memory, every interval until
// ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := s.now()
			n, err := s.svc.SweepSessions(ctx, now, s.auth.idle)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("sweeping expired dashboard sessions", "err", err)
			} else if n > 0 {
				s.log.Debug("swept expired dashboard sessions", "count", n)
			}
			if s.users != nil {
				n, err := s.users.DeleteExpiredReveals(ctx, now)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("sweeping the records of shown secrets", "err", err)
				} else if n > 0 {
					s.log.Debug("swept the records of shown secrets", "count", n)
				}
			}
			s.auth.throttle.prune(now)
		}
	}
}

type ctxKey int

const (
	keyUser ctxKey = iota
	keySession
)

// signedIn is the session of a request and its raw id from the cookie.
type signedIn struct {
	sess tokend.Session
	raw  string
}

// currentUser answers the signed-in user of the request.
func currentUser(ctx context.Context) (tokend.User, bool) {
	u, ok := ctx.Value(keyUser).(tokend.User)
	return u, ok
}

func currentSession(ctx context.Context) (tokend.Session, bool) {
	si, ok := ctx.Value(keySession).(signedIn)
	return si.sess, ok
}

// actor answers the signed-in user as the actor of a service call.
func (s *Server) actor(r *http.Request) tokend.Actor {
	u, _ := currentUser(r.Context())
	return u.Actor(httpapi.RemoteIP(r))
}

// protect wraps the whole dashboard: it resolves the session cookie into
// the request context and refuses any state-changing request without a
// valid CSRF token (403).
func (s *Server) protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead
		if safe && (strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/favicon.ico") {
			next.ServeHTTP(w, r) // assets need no session: spare the store
			return
		}
		if c, err := r.Cookie(s.cookieName(cookieSession)); err == nil {
			sess, u, err := s.svc.SessionUser(r.Context(), c.Value, s.now(), s.auth.idle, s.auth.absolute)
			switch code := tokend.CodeOf(err); {
			case err == nil:
				ctx := context.WithValue(r.Context(), keyUser, u)
				ctx = context.WithValue(ctx, keySession, signedIn{sess: sess, raw: c.Value})
				r = r.WithContext(ctx)
			case code == tokend.ECodeUnavailable || code == tokend.ECodeInternal:
				s.fail(w, r, err)
				return
			default:
				// Unknown, expired, or its user disabled or gone.
				http.SetCookie(w, s.clearCookie(cookieSession))
			}
		}
		if !safe {
			if err := s.auth.cop.Check(r); err != nil {
				s.errorPage(w, r, http.StatusForbidden, "This request came from another site and was refused.")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseMultipartForm(maxFormBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				s.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !s.validCSRF(r) {
				if _, ok := currentSession(r.Context()); !ok && r.URL.Path != "/login" && r.URL.Path != "/setup" {
					// Most likely the session ended while the form was
					// open (its token was the session's): nothing was done;
					// sign in and go back to the page.
					s.toLogin(w, r, true, s.keepForm(w, r))
					return
				}
				s.errorPage(w, r, http.StatusForbidden,
					"The form was missing its security token or it had expired. Go back, reload the page and try again.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// validCSRF checks the request's CSRF token: the session's, or, on the
// forms shown before sign-in, the one in the CSRF cookie.
func (s *Server) validCSRF(r *http.Request) bool {
	got := r.PostForm.Get("csrf")
	if got == "" {
		got = r.Header.Get("X-CSRF-Token")
	}
	if got == "" {
		return false
	}
	if sess, ok := currentSession(r.Context()); ok {
		if equalTokens(got, sess.CSRF) {
			return true
		}
		if r.URL.Path != "/login" && r.URL.Path != "/setup" {
			return false
		}
	}
	c, err := r.Cookie(s.cookieName(cookieCSRF))
	return err == nil && equalTokens(got, c.Value)
}

func equalTokens(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// csrfToken answers the form token to embed in the page's forms: the
// session's, else the sign-in forms' own, set in a cookie when missing.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if sess, ok := currentSession(r.Context()); ok {
		return sess.CSRF
	}
	if c, err := r.Cookie(s.cookieName(cookieCSRF)); err == nil && validRandom(c.Value) {
		return c.Value
	}
	v := randomToken()
	http.SetCookie(w, s.cookie(cookieCSRF, v, 0, http.SameSiteLaxMode))
	return v
}

// randomToken answers 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

func validRandom(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// require answers 303 to /login when nobody is signed in, 403 when the user
// lacks perm ("" for any signed-in user), else runs h.
func (s *Server) require(perm string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := currentUser(r.Context())
		if !ok {
			if !s.inPhase(w, r, true) {
				return
			}
			s.toLogin(w, r, r.Method != http.MethodGet && r.Method != http.MethodHead, "")
			return
		}
		if perm != "" && !u.Actor("").Can(perm) {
			s.errorPage(w, r, http.StatusForbidden, "Your role does not allow this.")
			return
		}
		h(w, r)
	})
}

// toLogin sends a request without a session to the sign-in page, with the
// page to come back to: next if given, else the page itself for a GET, else
// the page the form was on (its Referer, when it is of this site). ended says a form was
// refused for want of a session, which the sign-in page then explains.
// next is only ever a relative path of this site (safeBack), never an
// address elsewhere.
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request, ended bool, next string) {
	q := url.Values{}
	switch {
	case next != "":
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		next = r.URL.RequestURI()
	default:
		next = sameSiteReferer(r)
	}
	if next = safeBack(next, ""); next != "" && next != "/" {
		q.Set("next", next)
	}
	if ended {
		q.Set("ended", "1")
	}
	to := "/login"
	if len(q) > 0 {
		to += "?" + q.Encode()
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// sameSiteReferer answers the path and query of the request's Referer when
// it is a page of this site, else "".
func sameSiteReferer(r *http.Request) string {
	ref := r.Referer()
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil || u.Host != r.Host || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return ""
	}
	if u.Path == "/login" || u.Path == "/setup" || u.Path == "/logout" {
		return ""
	}
	return u.RequestURI()
}

// usersExist reports whether setup is done.
func (s *Server) usersExist(ctx context.Context) (bool, error) {
	if s.auth.hasUsers.Load() {
		return true, nil
	}
	needs, err := s.svc.NeedsSetup(ctx)
	if err != nil {
		return false, err
	}
	if !needs {
		s.auth.hasUsers.Store(true)
	}
	return !needs, nil
}

// inPhase reports whether the request belongs to the instance's phase:
// before setup (no user yet) only /setup is offered, after it /setup is
// gone. Otherwise it answers a redirect to the page of the phase.
func (s *Server) inPhase(w http.ResponseWriter, r *http.Request, afterSetup bool) bool {
	exist, err := s.usersExist(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if exist == afterSetup {
		return true
	}
	to := "/setup"
	if exist {
		to = "/login"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return false
}

// Cookies.

func (s *Server) cookieName(base string) string {
	if s.insecure {
		return base
	}
	return "__Host-" + base
}

// cookie makes a host-only, HttpOnly cookie for the whole site; maxAge 0
// leaves it a browser-session cookie.
func (s *Server) cookie(base, value string, maxAge time.Duration, site http.SameSite) *http.Cookie {
	c := &http.Cookie{
		Name: s.cookieName(base), Value: value, Path: "/",
		HttpOnly: true, Secure: !s.insecure, SameSite: site,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

func (s *Server) clearCookie(base string) *http.Cookie {
	c := s.cookie(base, "", 0, http.SameSiteLaxMode)
	c.MaxAge = -1
	return c
}

// startSession signs u in: it ends the request's current session, if any,
// and sets the cookie of a new one, so that an id known before sign-in is
// worth nothing after it.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u tokend.User) error {
	if si, ok := r.Context().Value(keySession).(signedIn); ok {
		if err := s.svc.EndSession(r.Context(), si.raw, httpapi.RemoteIP(r)); err != nil {
			return err
		}
	}
	raw, _, err := s.svc.NewSession(r.Context(), u, httpapi.RemoteIP(r), r.UserAgent(), s.now(), s.auth.absolute)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(cookieSession, raw, 0, http.SameSiteLaxMode))
	// The sign-in form's token has done its job.
	http.SetCookie(w, s.clearCookie(cookieCSRF))
	return nil
}

// Setup.

type setupData struct {
	Name, Email string
	authForm
}

// authForm lets a template of this file ask for a field's messages.
type authForm struct {
	Errors *formError
}

// Err answers the messages about field, or "".
func (f authForm) Err(field string) string {
	if f.Errors == nil {
		return ""
	}
	return strings.Join(f.Errors.Fields[field], " ")
}

// General answers the messages about no field in particular.
func (f authForm) General() []string {
	if f.Errors == nil {
		return nil
	}
	return f.Errors.General
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	if !s.inPhase(w, r, false) {
		return
	}
	s.render(w, r, http.StatusOK, "setup.html", &page{Title: "Set up tokend", Data: setupData{}})
}

func (s *Server) setupSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.inPhase(w, r, false) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	d := setupData{Name: strings.TrimSpace(f.Get("name")), Email: strings.TrimSpace(f.Get("email")), authForm: authForm{Errors: &formError{}}}
	ip := httpapi.RemoteIP(r)
	show := func(status int) {
		d.Errors.Status = status
		s.render(w, r, status, "setup.html", &page{Title: "Set up tokend", Data: d})
	}
	attempt, wait, ok := s.auth.throttle.reserve(s.now(), "ip:"+ip)
	if !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		d.Errors.General = append(d.Errors.General, tooMany(wait))
		show(http.StatusTooManyRequests)
		return
	}
	pw := f.Get("password")
	if pw != f.Get("confirm") {
		d.Errors.add("confirm", "the two passwords differ")
	}
	actor, err := s.bootstrapActor(ctx, strings.TrimSpace(f.Get("token")), ip)
	if err != nil {
		if c := tokend.CodeOf(err); c == tokend.ECodeUnavailable || c == tokend.ECodeInternal {
			attempt.release()
			s.fail(w, r, err)
			return
		}
		// The reservation stays: it is the failure.
		d.Errors.add("token", "this is not the bootstrap admin token; copy it from the output of the first `tokend serve`")
	} else {
		attempt.release()
	}
	if d.Errors.Has() {
		show(http.StatusUnprocessableEntity)
		return
	}
	u, err := s.svc.Setup(ctx, actor, d.Name, d.Email, pw)
	if errors.Is(err, tokend.ErrConflict) {
		// Someone finished setup first.
		s.auth.hasUsers.Store(true)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err != nil {
		d.Errors = s.formErrorOf(r, err, "name", "email", "password")
		show(d.Errors.Status)
		return
	}
	s.auth.hasUsers.Store(true)
	if err := s.startSession(w, r, u); err != nil {
		s.fail(w, r, err)
		return
	}
	s.setFlash(w, "ok", "Your owner account is ready. Welcome to tokend.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// bootstrapActor checks that secret is a valid admin token allowed to
// create users, and answers it as the actor of the setup.
func (s *Server) bootstrapActor(ctx context.Context, secret, ip string) (tokend.Actor, error) {
	refused := tokend.Errorf(tokend.ECodeUnauthenticated, "not a bootstrap admin token")
	if secret == "" || len(secret) > 512 {
		return tokend.Actor{}, refused
	}
	res, err := s.verifier.Verify(ctx, tokend.VerifyRequest{Token: secret, IP: ip, Permissions: []string{tokend.PermUsersWrite},
		Endpoint: tokend.EndpointDashboard})
	if err != nil {
		return tokend.Actor{}, tokend.Unavailable(err)
	}
	if !res.Valid || res.Token == nil || res.Token.AppID != tokend.SystemAppID {
		return tokend.Actor{}, refused
	}
	a := manage.AdminActor(*res.Token, ip)
	if !a.Can(tokend.PermUsersWrite) {
		return tokend.Actor{}, refused
	}
	return a, nil
}

// Login and logout.

type loginData struct {
	Email, Next string
	Error       string
	// Ended is true when a form was refused because the session had
	// ended: the page says so, and the sign-in says it again on the page
	// it goes back to.
	Ended bool
}

// EndedNote is what the sign-in page says after a refused form.
func (loginData) EndedNote() string { return endedNote }

// endedNote is what the sign-in page and the page after it say when a
// form came after the session's end.
const (
	endedNote  = "Your session ended, so the form you sent was not saved. Sign in to go back to the page you were on."
	resumeNote = "You are signed in again. The form you sent while signed out was not saved: check this page and submit it again."
)

const badLogin = "Incorrect email or password."

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if !s.inPhase(w, r, true) {
		return
	}
	next := safeBack(r.URL.Query().Get("next"), "/")
	if _, ok := currentUser(r.Context()); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login.html", &page{Title: "Sign in", Data: loginData{Next: next, Ended: r.URL.Query().Get("ended") == "1"}})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.inPhase(w, r, true) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	d := loginData{Email: strings.TrimSpace(f.Get("email")), Next: safeBack(f.Get("next"), "/"), Ended: f.Get("ended") == "1"}
	ip := httpapi.RemoteIP(r)
	// Clipped: a longer email matches no account, and a key must not let
	// anyone fill the throttle's memory with megabytes of "email".
	account, addr := "acct:"+clip(manage.NormalizeEmail(d.Email), manage.MaxEmailLen+1), "ip:"+ip
	// The attempt counts before the password is checked, so that attempts
	// sent at once cannot all pass a check made before any of them failed.
	attempt, wait, ok := s.auth.throttle.reserve(s.now(), account, addr)
	if !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		d.Error = tooMany(wait)
		s.render(w, r, http.StatusTooManyRequests, "login.html", &page{Title: "Sign in", Data: d})
		return
	}
	u, err := s.svc.Authenticate(ctx, d.Email, f.Get("password"), ip)
	if err != nil {
		if c := tokend.CodeOf(err); c == tokend.ECodeUnavailable || c == tokend.ECodeInternal {
			attempt.release()
			s.fail(w, r, err)
			return
		}
		// The reservation stays: it is the failure.
		d.Error = badLogin
		s.render(w, r, http.StatusUnauthorized, "login.html", &page{Title: "Sign in", Data: d})
		return
	}
	attempt.release()
	s.auth.throttle.reset(account)
	if err := s.startSession(w, r, u); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.Ended {
		s.setFlash(w, "error", resumeNote)
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func tooMany(wait time.Duration) string {
	m := int(wait.Round(time.Minute) / time.Minute)
	if m < 1 {
		m = 1
	}
	unit := "minutes"
	if m == 1 {
		unit = "minute"
	}
	return fmt.Sprintf("Too many failed attempts. Try again in %d %s.", m, unit)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if si, ok := r.Context().Value(keySession).(signedIn); ok {
		if err := s.svc.EndSession(r.Context(), si.raw, httpapi.RemoteIP(r)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, s.clearCookie(cookieSession))
	s.setFlash(w, "ok", "You are signed out.")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// throttle counts failures per key in a sliding window, in memory. An
// attempt in flight counts as a failure until it gives its reservation
// back.
type throttle struct {
	limits LoginThrottle
	mu     sync.Mutex
	fails  map[string][]time.Time // oldest first, at most the key's limit
}

// maxThrottleKeys bounds the memory the counts take; past it the stalest
// keys are forgotten.
const maxThrottleKeys = 100_000

func newThrottle(l LoginThrottle) *throttle {
	if l.PerAccount <= 0 {
		l.PerAccount = 5
	}
	if l.PerAddress <= 0 {
		l.PerAddress = 20
	}
	if l.Window <= 0 {
		l.Window = 15 * time.Minute
	}
	return &throttle{limits: l, fails: map[string][]time.Time{}}
}

func (t *throttle) limit(key string) int {
	if strings.HasPrefix(key, "ip:") {
		return t.limits.PerAddress
	}
	return t.limits.PerAccount
}

// recent answers the failures of key within the window.
func (t *throttle) recent(key string, now time.Time) []time.Time {
	f := t.fails[key]
	i := 0
	for i < len(f) && !f[i].After(now.Add(-t.limits.Window)) {
		i++
	}
	return f[i:]
}

// attempt is a sign-in attempt counted as a failure on its keys before it
// is checked. Left alone, it stays the failure; release gives it back.
type attempt struct {
	t    *throttle
	at   time.Time
	keys []string
}

// reserve counts one attempt on every key, in one step under the lock, or
// on none: when a key has used up its limit (failures and attempts in
// flight within the window) it answers ok false and how long until one
// more attempt is allowed.
func (t *throttle) reserve(now time.Time, keys ...string) (a *attempt, wait time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		f := t.recent(k, now)
		if n := t.limit(k); len(f) >= n {
			wait = max(wait, f[len(f)-n].Add(t.limits.Window).Sub(now))
		}
	}
	if wait > 0 {
		return nil, wait, false
	}
	if len(t.fails) >= maxThrottleKeys {
		t.pruneLocked(now)
	}
	for _, k := range keys {
		t.fails[k] = append(t.recent(k, now), now)
	}
	return &attempt{t: t, at: now, keys: keys}, 0, true
}

// release gives the attempt back on every key: it succeeded, or it could
// not be checked. Releasing twice gives back once.
func (a *attempt) release() {
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range a.keys {
		f := t.fails[k]
		// Any entry of the same time will do: they are all alike.
		for i := len(f) - 1; i >= 0; i-- {
			if f[i].Equal(a.at) {
				f = append(f[:i:i], f[i+1:]...)
				break
			}
		}
		if len(f) == 0 {
			delete(t.fails, k)
		} else {
			t.fails[k] = f
		}
	}
	a.keys = nil
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, key)
}

// prune forgets keys without failures in the window.
func (t *throttle) prune(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now)
}

func (t *throttle) pruneLocked(now time.Time) {
	for k := range t.fails {
		if len(t.recent(k, now)) == 0 {
			delete(t.fails, k)
		}
	}
	// Still full: forget arbitrary keys rather than grow without bound.
	for k := range t.fails {
		if len(t.fails) < maxThrottleKeys*9/10 {
			break
		}
		delete(t.fails, k)
	}
}
