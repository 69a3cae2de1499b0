package web

// The leak warning and a token's recent activity. A secret that rotation
// replaced, used after its grace period, may have leaked: the banner says
// so on the token's page and on Home until someone dismisses it (audited)
// or the token is rotated again. The recent activity is the token's last 50
// verifications, as the verification engine's flush wrote them.

import (
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

var _ = addFuncs(template.FuncMap{
	// activityTime is a time to the second, in UTC.
	"activityTime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
})

func (s *Server) leakRoutes() {
	s.handle("POST /tokens/{id}/leak/dismiss", tokend.PermTokensWrite, s.leakDismiss)
}

// leakBanner is the data of the "leak-banners" partial.
type leakBanner struct {
	Leaks []manage.Leak
	// Dismiss is true when the user may dismiss the warnings.
	Dismiss bool
	// Back is where a dismissal returns to.
	Back string
	// OnToken is true on the token's own page (no link to it).
	OnToken bool
}

func (s *Server) leakDismiss(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	id := r.PathValue("id")
	if err := s.svc.DismissLeak(r.Context(), s.actor(r), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.setFlash(w, "ok", "Warning dismissed. It shows again if an old secret of this token is used again.")
	http.Redirect(w, r, safeBack(r.PostForm.Get("back"), "/tokens/"+url.PathEscape(id)), http.StatusSeeOther)
}

// homeLeaks answers Home's leak banner. A failure to read the warnings is
// logged and shows none, rather than taking Home down.
func (s *Server) homeLeaks(r *http.Request) leakBanner {
	a := s.actor(r)
	b := leakBanner{Dismiss: a.Can(tokend.PermTokensWrite), Back: "/"}
	if !a.Can(tokend.PermTokensRead) {
		return b
	}
	leaks, err := s.svc.LeakSignals(r.Context(), a)
	if err != nil {
		s.log.ErrorContext(r.Context(), "web: reading leak warnings", "err", err)
		return b
	}
	b.Leaks = leaks
	return b
}

// tokenLeak adds the token page's leak banner and recent activity.
func (s *Server) tokenLeak(r *http.Request, d *tokenData) error {
	ctx, a := r.Context(), s.actor(r)
	l, err := s.svc.TokenLeak(ctx, a, d.Token.ID)
	if err != nil {
		return err
	}
	d.Leak = leakBanner{Dismiss: a.Can(tokend.PermTokensWrite), Back: "/tokens/" + url.PathEscape(d.Token.ID), OnToken: true}
	if l != nil {
		d.Leak.Leaks = []manage.Leak{*l}
	}
	if d.Reported, err = s.svc.TokenLeakReport(ctx, a, d.Token.ID); err != nil {
		return err
	}
	d.Activity, err = s.svc.TokenActivity(ctx, a, d.Token.ID)
	return err
}
