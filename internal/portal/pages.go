package portal

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/secret"
)

type pages struct{ t map[string]*template.Template }

var funcs = template.FuncMap{
	"date": func(v any) string {
		var t time.Time
		switch v := v.(type) {
		case time.Time:
			t = v
		case *time.Time:
			if v != nil {
				t = *v
			}
		}
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006")
	},
	"datetime": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
}

func parsePages() (*pages, error) {
	p := &pages{t: map[string]*template.Template{}}
	for _, name := range []string{"home.html", "token.html", "message.html"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/_layout.html", "templates/_reveal.html", "templates/"+name)
		if err != nil {
			return nil, err
		}
		p.t[name] = t
	}
	return p, nil
}

// view is what every page shows: the product's brand, the customer, the
// CSRF token of the session's forms.
type view struct {
	Title    string
	Brand    brand
	Customer string
	User     string
	CSRF     string
	Flash    string
	Error    string
	Data     any
}

type brand struct {
	Name, LogoURL, SupportURL string
	// Accent says the page links brand.css, the application's colour.
	Accent bool
}

func brandOf(app tokend.App) brand {
	b := brand{Name: app.Name}
	if pt := app.Portal; pt != nil {
		if pt.ProductName != "" {
			b.Name = pt.ProductName
		}
		b.LogoURL, b.SupportURL, b.Accent = pt.LogoURL, pt.SupportURL, pt.AccentColor != ""
	}
	return b
}

// brandCSS is the application's accent colour as a stylesheet (the CSP
// allows no inline style); the colour was validated as #rrggbb when it was
// set.
func (s *Server) brandCSS(w http.ResponseWriter, r *http.Request, sess session) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	if pt := sess.app.Portal; pt != nil && manage.ValidAccent(pt.AccentColor) {
		_, _ = w.Write([]byte(":root { --accent:" + pt.AccentColor + "; }\n"))
	}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	var buf bytes.Buffer
	if err := s.pages.t[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.ErrorContext(r.Context(), "rendering a portal page", "page", name, "err", err)
		http.Error(w, "Something went wrong.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	s.render(w, r, status, "message.html", view{Title: title, Data: text})
}

// base answers the view of a signed-in page, with the application (for its
// name and permission catalog), read as the customer.
func (s *Server) base(r *http.Request, sess session, title string) (view, tokend.App, error) {
	app := sess.app
	g := sess.Grant
	customer := g.OwnerName
	if customer == "" {
		customer = g.OwnerID
	}
	user := g.User.Name
	if user == "" {
		user = g.User.Email
	}
	return view{Title: title, Brand: brandOf(app), Customer: customer, User: user, CSRF: sess.CSRF}, app, nil
}

func (s *Server) actor(r *http.Request, sess session) tokend.Actor {
	return manage.PortalActor(sess.Grant, httpapi.RemoteIP(r))
}

// homeData is the list page.
type homeData struct {
	Tokens  []row
	Form    createForm
	Reveal  *reveal
	OwnerID string
	AppID   string
	Open    bool // the create form starts open (after an error)
}

type row struct {
	tokend.Token
	State string
}

type createForm struct {
	Name, Type, Expires, ExpiresOn, Access, IPs, Origins string
	Perms                                                []string
	Accesses                                             []tokend.Access
	Catalog                                              []string
	Error                                                string
}

// HasPerm reports whether the form has p checked.
func (f createForm) HasPerm(p string) bool { return slices.Contains(f.Perms, p) }

// reveal is the secret shown once, beside what the customer needs to use it.
type reveal struct {
	Secret, TokenID, Name, OwnerID, Verb string
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, sess session) {
	s.showHome(w, r, sess, http.StatusOK, nil, nil, done[r.URL.Query().Get("done")])
}

func (s *Server) showHome(w http.ResponseWriter, r *http.Request, sess session, status int, form *createForm, rv *reveal, flash string) {
	v, app, err := s.base(r, sess, "API tokens")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.svc.Now()
	page, err := s.svc.Tokens(r.Context(), s.actor(r, sess), tokend.TokenFilter{AppID: sess.Grant.AppID, Now: now, Limit: tokend.MaxPageSize})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := homeData{Reveal: rv, OwnerID: sess.Grant.OwnerID, AppID: app.ID}
	for _, t := range page.Items {
		d.Tokens = append(d.Tokens, row{Token: t, State: string(t.StatusAt(now))})
	}
	if form == nil {
		form = &createForm{Type: string(tokend.TypeStandard), Expires: "30d", Access: string(tokend.AccessReadOnly)}
		if len(sess.Grant.AllowedAccess) > 0 {
			form.Access = string(sess.Grant.AllowedAccess[0])
		}
	} else {
		d.Open = true
	}
	form.Accesses = sess.Grant.AllowedAccess
	if slices.Contains(form.Accesses, tokend.AccessCustom) {
		form.Catalog = catalog(sess.Grant, app)
	}
	d.Form = *form
	v.Data, v.Flash = d, flash
	s.render(w, r, status, "home.html", v)
}

// catalog is what the customer may pick with custom access.
func catalog(g tokend.PortalGrant, app tokend.App) []string {
	if len(g.AllowedPermissions) > 0 {
		return g.AllowedPermissions
	}
	return app.Permissions
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, sess session) {
	f := r.PostForm
	form := createForm{
		Name: strings.TrimSpace(f.Get("name")), Type: f.Get("type"), Expires: f.Get("expires"),
		ExpiresOn: f.Get("expires_on"), Access: f.Get("access"), IPs: f.Get("allowed_ips"), Origins: f.Get("allowed_origins"),
		Perms: f["permissions"],
	}
	g := sess.Grant
	in := tokend.TokenInput{
		AppID: g.AppID, OwnerID: g.OwnerID, OwnerName: g.OwnerName, Name: form.Name,
		Type: tokend.TokenType(form.Type), Access: tokend.Access(form.Access), AllowedIPs: lines(form.IPs),
	}
	if in.Type == tokend.TypePlugin {
		in.AllowedOrigins = lines(form.Origins)
	}
	if in.Access == tokend.AccessCustom {
		in.Permissions = form.Perms
	}
	switch form.Expires {
	case "7d", "30d", "90d", "unlimited":
		in.ExpiresIn = form.Expires
	case "custom":
		on, err := time.Parse("2006-01-02", form.ExpiresOn)
		if err != nil {
			form.Error = "Expiry: choose a date."
			s.showHome(w, r, sess, http.StatusUnprocessableEntity, &form, nil, "")
			return
		}
		end := on.Add(24*time.Hour - time.Second)
		in.ExpiresAt = &end
	default:
		form.Error = "Expiry: choose one of the options."
		s.showHome(w, r, sess, http.StatusUnprocessableEntity, &form, nil, "")
		return
	}
	if err := manage.GrantAllows(g, in.Access, in.Permissions); err != nil {
		form.Error = problem(err)
		s.showHome(w, r, sess, http.StatusUnprocessableEntity, &form, nil, "")
		return
	}
	t, sec, err := s.svc.CreateToken(r.Context(), s.actor(r, sess), in)
	if err != nil {
		if c := tokend.CodeOf(err); c == tokend.ECodeUnavailable || c == tokend.ECodeInternal {
			s.fail(w, r, err)
			return
		}
		form.Error = problem(err)
		s.showHome(w, r, sess, tokend.CodeOf(err).Status(), &form, nil, "")
		return
	}
	s.showHome(w, r, sess, http.StatusOK, nil, newReveal(t, sec, g, "created"), "")
}

func newReveal(t tokend.Token, sec secret.Secret, g tokend.PortalGrant, verb string) *reveal {
	return &reveal{Secret: sec.Reveal(), TokenID: t.ID, Name: t.Name, OwnerID: g.OwnerID, Verb: verb}
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// tokenData is a token's page.
type tokenData struct {
	Token    row
	Activity []tokend.Activity
	IPs      string
	Reveal   *reveal
	Error    string
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, sess session) {
	s.showToken(w, r, sess, http.StatusOK, nil, done[r.URL.Query().Get("done")], "")
}

// done is what a page says after an action, named in its address (a
// redirect after the POST, so that a reload repeats nothing).
var done = map[string]string{
	"edit":    "Your changes are saved.",
	"disable": "The token is disabled: it does not work until you enable it again.",
	"enable":  "The token is enabled.",
	"revoke":  "The token is revoked: it no longer works.",
	"delete":  "The token is deleted.",
}

func (s *Server) showToken(w http.ResponseWriter, r *http.Request, sess session, status int, rv *reveal, flash, formErr string) {
	a := s.actor(r, sess)
	t, err := s.svc.Token(r.Context(), a, r.PathValue("id"))
	if err != nil {
		s.notFound(w, r, err)
		return
	}
	act, err := s.svc.TokenActivity(r.Context(), a, t.ID)
	if err != nil {
		s.notFound(w, r, err)
		return
	}
	v, _, err := s.base(r, sess, t.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Flash = flash
	v.Data = tokenData{Token: row{Token: t, State: string(t.StatusAt(s.svc.Now()))}, Activity: act,
		IPs: strings.Join(t.AllowedIPs, "\n"), Reveal: rv, Error: formErr}
	s.render(w, r, status, "token.html", v)
}

// notFound answers a token the customer cannot see exactly as one that
// does not exist.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, err error) {
	switch tokend.CodeOf(err) {
	case tokend.ECodeUnavailable, tokend.ECodeInternal:
		s.fail(w, r, err)
	default:
		s.message(w, r, http.StatusNotFound, "Token not found", "There is no such token in your account.")
	}
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request, sess session) {
	f := r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	ips := lines(f.Get("allowed_ips"))
	if ips == nil {
		ips = []string{}
	}
	a := s.actor(r, sess)
	_, err := s.svc.UpdateToken(r.Context(), a, r.PathValue("id"), tokend.TokenPatch{Name: &name, AllowedIPs: &ips}, 0)
	s.after(w, r, sess, err, "edit")
}

// after answers an action on a token: its page again, saying what
// happened (or what went wrong).
func (s *Server) after(w http.ResponseWriter, r *http.Request, sess session, err error, action string) {
	switch c := tokend.CodeOf(err); {
	case err == nil && action == "delete":
		http.Redirect(w, r, Prefix+"?done=delete", http.StatusSeeOther)
	case err == nil:
		http.Redirect(w, r, Prefix+"tokens/"+r.PathValue("id")+"?done="+action, http.StatusSeeOther)
	case c == tokend.ECodeNotFound:
		s.notFound(w, r, err)
	case c == tokend.ECodeUnavailable || c == tokend.ECodeInternal:
		s.fail(w, r, err)
	default:
		s.showToken(w, r, sess, c.Status(), nil, "", problem(err))
	}
}

func (s *Server) act(w http.ResponseWriter, r *http.Request, sess session) {
	ctx, a, id := r.Context(), s.actor(r, sess), r.PathValue("id")
	var err error
	switch action := r.PathValue("action"); action {
	case "disable":
		_, err = s.svc.DisableToken(ctx, a, id, 0)
		s.after(w, r, sess, err, action)
	case "enable":
		_, err = s.svc.EnableToken(ctx, a, id, 0)
		s.after(w, r, sess, err, action)
	case "revoke":
		_, err = s.svc.RevokeToken(ctx, a, id, 0)
		s.after(w, r, sess, err, action)
	case "rotate":
		t, sec, err := s.svc.RotateToken(ctx, a, id, 0, 0)
		if err != nil {
			s.after(w, r, sess, err, "")
			return
		}
		s.showToken(w, r, sess, http.StatusOK, newReveal(t, sec, sess.Grant, "rotated"), "", "")
	case "delete":
		s.after(w, r, sess, s.svc.DeleteToken(ctx, a, id, 0), action)
	default:
		s.message(w, r, http.StatusNotFound, "Page not found", "There is no such page.")
	}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess session) {
	if err := s.svc.EndPortalSession(r.Context(), sess.raw, httpapi.RemoteIP(r)); err != nil && !errors.Is(err, tokend.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, s.clearCookie())
	http.Redirect(w, r, sess.Grant.ReturnURL, http.StatusSeeOther)
}
