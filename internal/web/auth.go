package web

// STUB — helper "web-auth" replaces this file with the real thing: setup,
// sign-in/out, sessions in the store, CSRF, throttling. The signatures below
// are the contract the page files rely on; keep them.

import (
	"context"
	"net/http"

	"github.com/tokend/tokend"
)

type authState struct{ s *Server }

func newAuthState(s *Server) *authState { return &authState{s: s} }

// authRoutes registers /setup, /login and /logout.
func (s *Server) authRoutes() {}

// protect wraps the whole dashboard: it resolves the session cookie into
// the request context and refuses any state-changing request without a
// valid CSRF token (403).
func (s *Server) protect(next http.Handler) http.Handler { return next }

// require answers 303 to /login when nobody is signed in, 403 when the user
// lacks perm ("" for any signed-in user), else runs h.
func (s *Server) require(perm string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := currentUser(r.Context())
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if perm != "" && !u.Actor("").Can(perm) {
			s.errorPage(w, r, http.StatusForbidden, "Your role does not allow this.")
			return
		}
		h(w, r)
	})
}

type ctxKey int

const keyUser ctxKey = iota

// currentUser answers the signed-in user of the request.
func currentUser(ctx context.Context) (tokend.User, bool) {
	u, ok := ctx.Value(keyUser).(tokend.User)
	return u, ok
}

// actor answers the signed-in user as the actor of a service call.
func (s *Server) actor(r *http.Request) tokend.Actor {
	u, _ := currentUser(r.Context())
	return u.Actor(s.clientIP(r.Context()))
}

// csrfToken answers the form token to embed in the page's forms.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string { return "" }

// setFlash shows text at the top of the next page the browser gets.
func (s *Server) setFlash(w http.ResponseWriter, kind, text string) {}

// takeFlash answers and clears the pending flash message, if any.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *flash { return nil }

// reveal hands a new secret to the next GET of the token's page, once:
// sealed in a short-lived cookie bound to the session, never stored.
func (s *Server) reveal(w http.ResponseWriter, r *http.Request, tokenID, secret string) {}

// takeReveal answers the secret handed over by reveal for this token and
// clears it; ok is false when there is none (reload, other token, expired).
func (s *Server) takeReveal(w http.ResponseWriter, r *http.Request, tokenID string) (secret string, ok bool) {
	return "", false
}
