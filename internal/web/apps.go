package web

// The applications pages: the list, creating and editing an app with its
// permission catalog, deleting it, and revoking all of its tokens, each
// dangerous action confirmed with what it will do.

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

var _ = addFuncs(template.FuncMap{
	"appAction": func(d *appData, which string, inDialog bool, csrf string) appActionData {
		return appActionData{V: d, Which: which, InDialog: inDialog, CSRF: csrf}
	},
	"add": func(n ...int) int {
		sum := 0
		for _, v := range n {
			sum += v
		}
		return sum
	},
})

// appActionData is what the app-action partial gets.
type appActionData struct {
	V        *appData
	Which    string // revoke-all or delete
	InDialog bool
	CSRF     string
}

func (s *Server) appRoutes() {
	s.handle("GET /apps", tokend.PermAppsRead, s.appsPage)
	s.handle("GET /apps/new", tokend.PermAppsWrite, s.appNewPage)
	s.handle("POST /apps", tokend.PermAppsWrite, s.appCreate)
	s.handle("GET /apps/{id}", tokend.PermAppsRead, s.appPage)
	s.handle("POST /apps/{id}", tokend.PermAppsWrite, s.appUpdate)
	s.handle("GET /apps/{id}/revoke-all", tokend.PermTokensWrite, s.appConfirmPage("revoke-all"))
	s.handle("POST /apps/{id}/revoke-all", tokend.PermTokensWrite, s.appRevokeAll)
	s.handle("GET /apps/{id}/delete", tokend.PermAppsWrite, s.appConfirmPage("delete"))
	s.handle("POST /apps/{id}/delete", tokend.PermAppsWrite, s.appDelete)
}

// appForm is the create or edit form of an app as typed.
type appForm struct {
	Edit        bool
	ID          string
	Version     int64
	Name        string
	Prefix      string
	Permissions string // one per line
	MaxLifetime string // "" for no limit
	// UnusedAfter is the stale-token policy, "" for none.
	UnusedAfter string
	// ExpiryNotice is the app's own token.expiring period, "" for none.
	ExpiryNotice string
	// LeakPolicy is what a reported leak does (revoke, disable, notify).
	LeakPolicy string
	// RotatedPolicy is what a rotated-out secret presented after its
	// grace does (notify, disable).
	RotatedPolicy string
	Err           *formError
	InDialog      bool
}

var appFormFields = []string{"name", "token_prefix", "permissions", "max_token_lifetime", "disable_unused_after", "expiry_notice", "leak_policy", "rotated_secret_policy"}

func appEditForm(a tokend.App) appForm {
	f := appForm{Edit: true, ID: a.ID, Version: a.Version, Name: a.Name, Prefix: a.TokenPrefix,
		Permissions: strings.Join(a.Permissions, "\n"), LeakPolicy: string(a.LeakPolicy),
		RotatedPolicy: string(a.RotatedSecretPolicy)}
	if a.MaxTokenLifetime != nil {
		f.MaxLifetime = a.MaxTokenLifetime.String()
	}
	if a.DisableUnusedAfter != nil {
		f.UnusedAfter = a.DisableUnusedAfter.String()
	}
	if a.ExpiryNotice != nil {
		f.ExpiryNotice = a.ExpiryNotice.String()
	}
	return f
}

func readAppForm(r *http.Request, edit bool) appForm {
	v := r.PostForm
	f := appForm{Edit: edit, Name: v.Get("name"), Prefix: strings.TrimSpace(v.Get("token_prefix")),
		Permissions: v.Get("permissions"), MaxLifetime: strings.TrimSpace(v.Get("max_token_lifetime")),
		UnusedAfter: strings.TrimSpace(v.Get("disable_unused_after")), ExpiryNotice: strings.TrimSpace(v.Get("expiry_notice")),
		LeakPolicy: v.Get("leak_policy"), RotatedPolicy: v.Get("rotated_secret_policy")}
	f.Version, _ = strconv.ParseInt(v.Get("version"), 10, 64)
	return f
}

// lifetime reads the maximum lifetime; nil for none.
func (f *appForm) lifetime() *tokend.Duration {
	if f.MaxLifetime == "" {
		return nil
	}
	d, err := tokend.ParseDuration(f.MaxLifetime)
	if err != nil {
		// The service checks the other fields only once this one reads:
		// check them here too, so that the form shows every problem at once.
		var p tokend.Problems
		tokend.CheckName(&p, "name", f.Name)
		if f.Prefix != "" {
			tokend.CheckPrefix(&p, "token_prefix", f.Prefix)
		}
		tokend.CheckPermissionCatalog(&p, "permissions", splitList(f.Permissions))
		f.Err = &formError{Status: http.StatusUnprocessableEntity}
		for _, pr := range p {
			field := pr.Field
			if i := strings.IndexAny(field, "[."); i >= 0 {
				field = field[:i]
			}
			f.Err.add(field, pr.Message)
		}
		f.Err.add("max_token_lifetime", "use a duration such as 90d or 12h, or leave it empty for no limit")
		return nil
	}
	return &d
}

// unusedAfter reads the stale-token policy; nil for none.
func (f *appForm) unusedAfter() *tokend.Duration {
	return f.duration("disable_unused_after", f.UnusedAfter, "use a number of days such as 90d, or leave it empty to never disable unused tokens")
}

// expiryNotice reads the app's own expiry notice period; nil for none.
func (f *appForm) expiryNotice() *tokend.Duration {
	return f.duration("expiry_notice", f.ExpiryNotice, "use a duration such as 14d or 12h, or leave it empty for the 7-day and 1-day notices only")
}

// duration reads an optional duration field; nil for none, and for one
// that does not read (the form then says so, with hint).
func (f *appForm) duration(field, value, hint string) *tokend.Duration {
	if value == "" {
		return nil
	}
	d, err := tokend.ParseDuration(value)
	if err != nil {
		if f.Err == nil {
			f.Err = &formError{Status: http.StatusUnprocessableEntity}
		}
		f.Err.add(field, hint)
		return nil
	}
	return &d
}

type appsData struct {
	Apps []tokend.App
	Form appForm
}

func (s *Server) appsPage(w http.ResponseWriter, r *http.Request) {
	apps, err := s.allApps(r.Context(), s.actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "apps.html", &page{Title: "Applications", Nav: "apps", Data: &appsData{Apps: apps, Form: appForm{InDialog: true}}})
}

func (s *Server) appNewPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "app_new.html", &page{Title: "New application", Nav: "apps", Data: &appForm{}})
}

func (s *Server) appCreate(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	f := readAppForm(r, false)
	life := f.lifetime()
	unused := f.unusedAfter()
	notice := f.expiryNotice()
	if f.Err == nil {
		app, err := s.svc.CreateApp(r.Context(), s.actor(r), tokend.AppInput{
			Name: f.Name, TokenPrefix: f.Prefix, Permissions: splitList(f.Permissions), MaxTokenLifetime: life,
			DisableUnusedAfter: unused, ExpiryNotice: notice, LeakPolicy: tokend.LeakPolicy(f.LeakPolicy),
			RotatedSecretPolicy: tokend.RotatedSecretPolicy(f.RotatedPolicy),
		})
		if err == nil {
			s.setFlash(w, "ok", "Application “"+app.Name+"” created.")
			http.Redirect(w, r, "/apps/"+url.PathEscape(app.ID), http.StatusSeeOther)
			return
		}
		f.Err = s.formErrorOf(r, err, appFormFields...)
	}
	s.render(w, r, f.Err.Status, "app_new.html", &page{Title: "New application", Nav: "apps", Data: &f})
}

// appTokens counts an app's (or an owner's) tokens by status.
type appTokens struct {
	Active, Disabled, Expired, Revoked int
}

// Live is how many tokens revoking all would revoke: every one not
// revoked yet, disabled and expired ones included.
func (c appTokens) Live() int { return c.Active + c.Disabled + c.Expired }

// countTokens counts the tokens base selects by status.
func (s *Server) countTokens(ctx context.Context, a tokend.Actor, base tokend.TokenFilter) (appTokens, error) {
	var c appTokens
	for _, st := range []struct {
		n      *int
		status tokend.Status
	}{
		{&c.Active, tokend.StatusActive}, {&c.Disabled, tokend.StatusDisabled},
		{&c.Expired, tokend.StatusExpired}, {&c.Revoked, tokend.StatusRevoked},
	} {
		f := base
		f.Status = st.status
		n, err := s.svc.CountTokens(ctx, a, f)
		if err != nil {
			return c, err
		}
		*st.n = n
	}
	return c, nil
}

type appData struct {
	Now    time.Time
	App    tokend.App
	Form   appForm
	Tokens appTokens
	// CanCount is false when the user may not read tokens.
	CanCount bool
	Stale    bool
	Confirm  string // which confirmation a confirm page shows
	Err      *formError
	Typed    string // the name typed to confirm a delete
}

func (s *Server) loadApp(r *http.Request, id string) (*appData, error) {
	ctx, a := r.Context(), s.actor(r)
	app, err := s.svc.App(ctx, a, id)
	if err != nil {
		return nil, err
	}
	d := &appData{Now: s.now().UTC(), App: app, Form: appEditForm(app), CanCount: a.Can(tokend.PermTokensRead)}
	if d.CanCount {
		if d.Tokens, err = s.countTokens(ctx, a, tokend.TokenFilter{AppID: id}); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (s *Server) appPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.loadApp(r, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "app.html", &page{Title: d.App.Name, Nav: "apps", Data: d})
}

func (s *Server) appUpdate(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	id := r.PathValue("id")
	f := readAppForm(r, true)
	f.ID = id
	life := f.lifetime()
	unused := f.unusedAfter()
	notice := f.expiryNotice()
	var stale bool
	if f.Err == nil {
		perms := splitList(f.Permissions)
		patch := tokend.AppPatch{Name: &f.Name, TokenPrefix: &f.Prefix, Permissions: &perms, MaxTokenLifetime: life,
			DisableUnusedAfter: unused, ExpiryNotice: notice}
		if f.LeakPolicy != "" {
			lp := tokend.LeakPolicy(f.LeakPolicy)
			patch.LeakPolicy = &lp
		}
		if f.RotatedPolicy != "" {
			rp := tokend.RotatedSecretPolicy(f.RotatedPolicy)
			patch.RotatedSecretPolicy = &rp
		}
		if life == nil {
			patch.Null = []string{"max_token_lifetime"}
		}
		if unused == nil {
			patch.Null = append(patch.Null, "disable_unused_after")
		}
		if notice == nil {
			patch.Null = append(patch.Null, "expiry_notice")
		}
		app, err := s.svc.UpdateApp(r.Context(), s.actor(r), id, patch, f.Version)
		var done bool
		if done, f.Err, stale = s.afterEdit(w, r, err, app.Name, "/apps/"+url.PathEscape(id), appFormFields); done {
			return
		}
	}
	d, err := s.loadApp(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Form, d.Stale = f, stale
	s.render(w, r, f.Err.Status, "app.html", &page{Title: d.App.Name, Nav: "apps", Data: d})
}

func (s *Server) appConfirmPage(which string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := s.loadApp(r, r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.Confirm = which
		s.renderAppConfirm(w, r, http.StatusOK, d)
	}
}

func (s *Server) renderAppConfirm(w http.ResponseWriter, r *http.Request, status int, d *appData) {
	title := "Revoke all tokens of " + d.App.Name
	if d.Confirm == "delete" {
		title = "Delete " + d.App.Name
	}
	s.render(w, r, status, "app_confirm.html", &page{Title: title, Nav: "apps", Data: d})
}

func (s *Server) appRevokeAll(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := s.svc.RevokeAll(r.Context(), s.actor(r), id)
	if err != nil {
		s.appActionFailed(w, r, "revoke-all", err, "")
		return
	}
	msg := "Revoked " + strconv.Itoa(n) + " tokens."
	if n == 1 {
		msg = "Revoked 1 token."
	}
	s.setFlash(w, "ok", msg)
	http.Redirect(w, r, "/apps/"+url.PathEscape(id), http.StatusSeeOther)
}

func (s *Server) appDelete(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	ctx, a, id := r.Context(), s.actor(r), r.PathValue("id")
	typed := r.PostForm.Get("confirm_name")
	app, err := s.svc.App(ctx, a, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !sameName(typed, app.Name) {
		fe := &formError{Status: http.StatusUnprocessableEntity}
		fe.add("confirm_name", "type the application's name exactly as shown to confirm")
		s.appConfirmFailed(w, r, "delete", fe, typed)
		return
	}
	if err := s.svc.DeleteApp(ctx, a, id, app.Version); err != nil {
		s.appActionFailed(w, r, "delete", err, typed)
		return
	}
	s.setFlash(w, "ok", "Application “"+app.Name+"” and its tokens deleted.")
	http.Redirect(w, r, "/apps", http.StatusSeeOther)
}

// appConfirmFailed shows the confirmation again with what went wrong.
func (s *Server) appConfirmFailed(w http.ResponseWriter, r *http.Request, which string, fe *formError, typed string) {
	d, err := s.loadApp(r, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Confirm, d.Err, d.Typed = which, fe, typed
	s.renderAppConfirm(w, r, fe.Status, d)
}

// appActionFailed answers a failed revoke-all or delete: a missing app is
// a 404 page, anything else the confirmation with the service's message.
func (s *Server) appActionFailed(w http.ResponseWriter, r *http.Request, which string, err error, typed string) {
	if tokend.CodeOf(err) == tokend.ECodeNotFound {
		s.fail(w, r, err)
		return
	}
	s.appConfirmFailed(w, r, which, s.formErrorOf(r, err, "confirm_name"), typed)
}
