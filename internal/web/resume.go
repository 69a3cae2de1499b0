package web

// Keeping a token-create form across a sign-in: when the form arrives after
// the session ended, what was typed (nothing secret: a create form holds no
// secret) is sealed into a short-lived cookie, and the create page shows it
// again once the user has signed in. The cookie is encrypted and
// authenticated like the flash (seal.go), read once and cleared.

import (
	"net/http"
	"time"
)

const (
	cookieResume = "tokend_resume"
	resumeTTL    = 15 * time.Minute
	// resumeMax bounds the sealed cookie: a form too big to fit in one
	// cookie is not kept (the user still lands back on the page).
	resumeMax = 3800
)

// keptTokenForm is what is kept of a token-create form.
type keptTokenForm struct {
	AppID       string   `json:"a"`
	Name        string   `json:"n"`
	Description string   `json:"d,omitempty"`
	Type        string   `json:"t,omitempty"`
	Access      string   `json:"c,omitempty"`
	Permissions []string `json:"p,omitempty"`
	Expiry      string   `json:"e,omitempty"`
	ExpiresOn   string   `json:"o,omitempty"`
	IPs         string   `json:"i,omitempty"`
	Origins     string   `json:"g,omitempty"`
	RateLimit   string   `json:"r,omitempty"`
	RateWindow  string   `json:"w,omitempty"`
	MaxUses     string   `json:"m,omitempty"`
}

// keepForm keeps the form of a POST that came without a session, when it
// is one that can be shown again, and answers the page that shows it ("" if
// none).
func (s *Server) keepForm(w http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodPost || r.URL.Path != "/tokens" {
		return ""
	}
	f := readTokenForm(r, false)
	k := keptTokenForm{
		AppID: f.AppID, Name: f.Name, Description: f.Description, Type: f.Type, Access: f.Access,
		Permissions: f.Permissions, Expiry: f.Expiry, ExpiresOn: f.ExpiresOn, IPs: f.IPs, Origins: f.Origins,
		RateLimit: f.RateLimit, RateWindow: f.RateWindow, MaxUses: f.MaxUses,
	}
	v, err := s.auth.seal.seal("resume", k, s.now().Add(resumeTTL))
	if err != nil || len(v) > resumeMax {
		return "/tokens/new"
	}
	http.SetCookie(w, s.cookie(cookieResume, v, resumeTTL, http.SameSiteLaxMode))
	return "/tokens/new"
}

// takeKeptForm answers, once, the token-create form kept by keepForm.
func (s *Server) takeKeptForm(w http.ResponseWriter, r *http.Request) (tokenForm, bool) {
	c, err := r.Cookie(s.cookieName(cookieResume))
	if err != nil {
		return tokenForm{}, false
	}
	http.SetCookie(w, s.clearCookie(cookieResume))
	k, ok := open[keptTokenForm](s.auth.seal, "resume", c.Value, s.now())
	if !ok {
		return tokenForm{}, false
	}
	return tokenForm{
		AppID: k.AppID, Name: k.Name, Description: k.Description, Type: k.Type, Access: k.Access,
		Permissions: k.Permissions, Expiry: k.Expiry, ExpiresOn: k.ExpiresOn, IPs: k.IPs, Origins: k.Origins,
		RateLimit: k.RateLimit, RateWindow: k.RateWindow, MaxUses: k.MaxUses,
	}, true
}
