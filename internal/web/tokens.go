package web

// The API tokens pages: the list with its filters, the create dialog (and
// its page for browsers without JavaScript), the token page with its edit
// form, usage chart and audit trail, and the confirmation of every action.

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

var _ = addFuncs(template.FuncMap{
	"rel": func(now time.Time, t any) string {
		switch v := t.(type) {
		case time.Time:
			if !v.IsZero() {
				return relTime(now, v)
			}
		case *time.Time:
			if v != nil && !v.IsZero() {
				return relTime(now, *v)
			}
		}
		return "never"
	},
	"isoTime": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format(time.RFC3339)
		case *time.Time:
			if v != nil {
				return v.UTC().Format(time.RFC3339)
			}
		}
		return ""
	},
	"has":         contains,
	"maxSeconds":  maxSeconds,
	"lines":       func(s []string) string { return strings.Join(s, "\n") },
	"accessLabel": accessLabel,
	"typeLabel": func(t tokend.TokenType) string {
		if t == tokend.TypePlugin {
			return "Plugin"
		}
		return "Standard"
	},
	"statusLabel": func(s any) string {
		v := fmt.Sprint(s)
		if v == "" {
			return ""
		}
		return strings.ToUpper(v[:1]) + v[1:]
	},
	"toJSON": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return ""
		}
		return string(b)
	},
	"errs": func(fe *formError, field string) []string {
		if fe == nil {
			return nil
		}
		return fe.Fields[field]
	},
	"runes": func(s string) int { return len([]rune(s)) },
	"list":  func(v ...string) []string { return v },
	// at is what the "when" partial shows: t relative to now, or els.
	"at": func(now time.Time, t any, els string) whenData {
		switch v := t.(type) {
		case *time.Time:
			if v == nil {
				t = nil
			}
		case time.Time:
			if v.IsZero() {
				t = nil
			}
		}
		return whenData{Now: now, T: t, Else: els}
	},
	"past": func(now time.Time, t *time.Time) bool { return t != nil && !now.Before(*t) },
})

type whenData struct {
	Now  time.Time
	T    any
	Else string
}

func accessLabel(a tokend.Access) string {
	switch a {
	case tokend.AccessReadOnly:
		return "Read-only"
	case tokend.AccessFull:
		return "Full access"
	case tokend.AccessCustom:
		return "Custom"
	}
	return string(a)
}

func (s *Server) tokenRoutes() {
	s.handle("GET /tokens", tokend.PermTokensRead, s.tokensPage)
	s.handle("GET /tokens/new", tokend.PermTokensWrite, s.tokenNewPage)
	s.handle("POST /tokens", tokend.PermTokensWrite, s.tokenCreate)
	s.handle("GET /tokens/{id}", tokend.PermTokensRead, s.tokenPage)
	s.handle("POST /tokens/{id}", tokend.PermTokensWrite, s.tokenUpdate)
	for _, a := range tokenActions {
		s.handle("GET /tokens/{id}/"+a.Name, a.Perm, s.tokenConfirmPage(a))
		s.handle("POST /tokens/{id}/"+a.Name, a.Perm, s.tokenAction(a))
	}
}

// ---- the list ----

// tokenFilters are the list's query parameters.
type tokenFilters struct {
	AppID, Status, Type, Query, Cursor string
	// OwnerID keeps the tokens of one owner (a customer of the product).
	OwnerID string
	// UnusedFor is the stale filter ("30d"), Sort and Order the sort
	// (stale.go).
	UnusedFor, Sort, Order string
	Limit                  int
	// Kind is kindProduct to leave out admin tokens, or "" for all.
	Kind string
	// Path is the page the list is on, "" for /tokens; an owner's page
	// holds its application and owner in its path, not in the query.
	Path string
}

// kindProduct is the list's filter for product tokens: all but the admin
// tokens of the built-in system app, the set Home counts. kindDecoy is the
// Decoys view: decoy tokens only, which every other view leaves out.
const (
	kindProduct = "product"
	kindDecoy   = "decoy"
)

func (f tokenFilters) Any() bool {
	return f.AppID != "" || f.OwnerID != "" || f.Status != "" || f.Type != "" || f.Query != "" || f.UnusedFor != "" || f.Kind != ""
}

// URL answers the list with these filters at cursor ("" for the first page).
func (f tokenFilters) URL(cursor string) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/tokens"
	if f.Path != "" {
		path = f.Path
	} else {
		set("app_id", f.AppID)
		set("owner_id", f.OwnerID)
	}
	set("status", f.Status)
	set("type", f.Type)
	set("q", f.Query)
	set("unused_for", f.UnusedFor)
	set("sort", f.Sort)
	set("order", f.Order)
	set("kind", f.Kind)
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	set("cursor", cursor)
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

type tokenRow struct {
	tokend.Token
	AppName string
	// ExpiringSoon is true for a live token that expires within 7 days.
	ExpiringSoon bool
	// Actions are those the user may take on the token in its state.
	Actions []tokenAction
}

type tokensData struct {
	Now     time.Time
	Filters tokenFilters
	Rows    []tokenRow
	// Total is how many tokens the filters select, over every page.
	Total    int
	NextURL  string
	FirstURL string
	Apps     []tokend.App
	AppName  string // the application the list is filtered to
	// Owners is true when the Owner column shows: a token on the page has
	// an owner, or the list is filtered to one.
	Owners bool
	// OwnerPages are the "Open owner page" links of the list filtered to
	// an owner: one per application of theirs on the page.
	OwnerPages []ownerLink
	// NoApps is true when there is nowhere to create a token yet: no
	// application but the built-in one of admin tokens.
	NoApps bool
	Error  string
	Form   tokenForm // the create dialog
	Back   string    // this list, for actions to come back to

	// OpenDialog opens the create dialog as the page loads: its form came
	// back with problems.
	OpenDialog bool
}

// soon is how close an expiry must be for the pages to warn of it.
const soon = 7 * 24 * time.Hour

// statusExpiring is the list's filter for active tokens expiring soon.
const statusExpiring = "expiring"

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request) {
	s.tokensList(w, r, nil)
}

// tokensList shows the list; form, when not nil, is the create dialog's
// form that came back with problems: the dialog opens with them.
func (s *Server) tokensList(w http.ResponseWriter, r *http.Request, form *tokenForm) {
	ctx, a := r.Context(), s.actor(r)
	q := r.URL.Query()
	f := tokenFilters{
		AppID: q.Get("app_id"), OwnerID: strings.TrimSpace(q.Get("owner_id")), Status: q.Get("status"), Type: q.Get("type"),
		Query: strings.TrimSpace(q.Get("q")), Cursor: q.Get("cursor"),
		UnusedFor: q.Get("unused_for"), Sort: q.Get("sort"), Order: q.Get("order"), Kind: q.Get("kind"),
	}
	f.Limit = pageLimit(q)
	apps, err := s.allApps(ctx, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now().UTC()
	d := &tokensData{Now: now, Filters: f, Apps: apps, NoApps: noProductApp(a, apps), Back: f.URL(f.Cursor),
		AppName: appNames(apps)[f.AppID]}
	status := http.StatusOK
	err = s.listTokens(ctx, a, d, apps)
	switch {
	case err == nil:
	case tokend.CodeOf(err) == tokend.ECodeInvalid || tokend.CodeOf(err) == tokend.ECodeMalformedRequest:
		// A hand-edited address: say what is wrong, keep the filters usable.
		status = http.StatusBadRequest
		fe := s.formErrorOf(r, err)
		d.Error = strings.Join(fe.General, " ")
	default:
		s.fail(w, r, err)
		return
	}
	d.Owners = d.Owners || f.OwnerID != ""
	d.OwnerPages = ownerPages(f, d.Rows, appNames(apps))
	d.Form = newTokenForm(apps, f.AppID, now)
	if form != nil {
		d.Form, d.OpenDialog = *form, true
		d.Form.Apps = apps
		if status == http.StatusOK {
			status = form.Err.Status
		}
	}
	d.Form.InDialog = true
	s.render(w, r, status, "tokens.html", &page{Title: "API tokens", Nav: "tokens", Data: d})
}

// listTokens fills d's rows, total and pages with the tokens d.Filters
// select, at d.Now.
func (s *Server) listTokens(ctx context.Context, a tokend.Actor, d *tokensData, apps []tokend.App) error {
	f := d.Filters
	tf, err := listFilter(f, d.Now)
	if err == nil && f.Kind != "" && f.Kind != kindProduct && f.Kind != kindDecoy {
		var p tokend.Problems
		p.Add("kind", "must be product, decoy, or empty for every token")
		err = p.Err()
	}
	var list tokend.Page[tokend.Token]
	if err == nil {
		list, err = s.svc.Tokens(ctx, a, tf)
	}
	if err == nil {
		d.Total, err = s.svc.CountTokens(ctx, a, tf)
	}
	if err != nil {
		return err
	}
	names := appNames(apps)
	for _, t := range list.Items {
		d.Rows = append(d.Rows, tokenRow{Token: t, AppName: names[t.AppID], ExpiringSoon: expiringSoon(t, d.Now),
			Actions: actionsFor(a, t)})
		d.Owners = d.Owners || t.OwnerID != ""
	}
	if list.NextCursor != "" {
		d.NextURL = f.URL(list.NextCursor)
	}
	if f.Cursor != "" {
		d.FirstURL = f.URL("")
	}
	return nil
}

// pageLimit reads a list's page size, 0 (the default) unless valid.
func pageLimit(q url.Values) int {
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= tokend.MaxPageSize {
		return n
	}
	return 0
}

// listFilter is what the list's filters select at now. Home counts with it
// too, so that a count and the list it links to are one set.
func listFilter(f tokenFilters, now time.Time) (tokend.TokenFilter, error) {
	tf := tokend.TokenFilter{
		AppID: f.AppID, OwnerID: f.OwnerID, Status: tokend.Status(f.Status), Type: tokend.TokenType(f.Type),
		Query: f.Query, Cursor: f.Cursor, Limit: f.Limit, Sort: f.Sort, Order: f.Order,
		ProductOnly: f.Kind == kindProduct, Decoy: f.Kind == kindDecoy,
	}
	if f.Status == statusExpiring {
		tf.Status, tf.ExpiresBefore = tokend.StatusActive, now.Add(soon)
	}
	var err error
	tf.UnusedFor, err = parseUnusedFor(f.UnusedFor)
	return tf, err
}

// noProductApp reports whether the actor, who may read apps, sees none but
// the built-in one that holds admin tokens: nowhere to make a product token.
func noProductApp(a tokend.Actor, apps []tokend.App) bool {
	if !a.Can(tokend.PermAppsRead) {
		return false // cannot tell; the pages offer what the user may do
	}
	for _, app := range apps {
		if !app.System {
			return false
		}
	}
	return true
}

func expiringSoon(t tokend.Token, now time.Time) bool {
	return t.Status == tokend.StatusActive && t.ExpiresAt != nil && t.ExpiresAt.Sub(now) <= soon
}

// ---- the create and edit form ----

// tokenForm is the create or edit form as typed, with its problems.
type tokenForm struct {
	Edit        bool
	TokenID     string
	Version     int64
	AppID       string
	OwnerID     string // create only: the owner is fixed once the token exists
	OwnerName   string
	Name        string
	Description string
	Type        string
	Access      string
	Permissions []string
	// Expiry is keep (edit only), 7d, 30d, 90d, unlimited or custom.
	Expiry     string
	ExpiresOn  string // yyyy-mm-dd, with Expiry custom
	IPs        string
	Origins    string
	RateLimit  string
	RateWindow string
	MaxUses    string
	// Decoy makes a decoy (create only; fixed once the token exists).
	Decoy bool
	// Apps are the choices of the create form; the edit form gets the
	// token's app only, for its permission catalog.
	Apps []tokend.App
	Err  *formError
	// InDialog is true for the form in the list page's dialog.
	InDialog bool
	// MinDate is the first day a custom expiry may be (tomorrow, UTC).
	MinDate string
}

// presetExpiries are the form's expiry choices that are a duration.
var presetExpiries = []string{"7d", "30d", "90d"}

// selectedApp answers the app the form is for.
func (f tokenForm) selectedApp() (tokend.App, bool) {
	for _, a := range f.Apps {
		if a.ID == f.AppID {
			return a, true
		}
	}
	return tokend.App{}, false
}

// Allows reports whether the expiry choice fits the chosen app's maximum
// token lifetime: "No expiration" and the longer presets are hidden for
// an app that has one.
func (f tokenForm) Allows(choice string) bool {
	a, ok := f.selectedApp()
	return ok && appAllows(a, choice) || !ok
}

func appAllows(a tokend.App, choice string) bool {
	if a.MaxTokenLifetime == nil {
		return true
	}
	switch choice {
	case "unlimited":
		return false
	case "keep", "custom":
		return true
	}
	d, err := tokend.ParseDuration(choice)
	return err == nil && d <= *a.MaxTokenLifetime
}

// maxSeconds is an app's maximum token lifetime in seconds, 0 for none,
// for the script that hides the choices beyond it.
func maxSeconds(a tokend.App) int64 {
	if a.MaxTokenLifetime == nil {
		return 0
	}
	return int64(time.Duration(*a.MaxTokenLifetime) / time.Second)
}

var tokenFormFields = []string{"app_id", "owner_id", "owner_name", "name", "description", "type", "access", "permissions",
	"expires_in", "allowed_ips", "allowed_origins", "rate_limit", "max_uses"}

// rateWindows are the windows the form offers.
var rateWindows = []string{"1s", "1m", "1h", "1d"}

// Windows answers the window choices, with the current one if unusual.
func (f tokenForm) Windows() []string {
	if f.RateWindow == "" || contains(rateWindows, f.RateWindow) {
		return rateWindows
	}
	return append([]string{f.RateWindow}, rateWindows...)
}

func newTokenForm(apps []tokend.App, appID string, now time.Time) tokenForm {
	f := tokenForm{Type: string(tokend.TypeStandard), Access: string(tokend.AccessReadOnly), Expiry: "30d", RateWindow: "1h", Apps: apps}
	f.AppID = appID
	if f.AppID == "" {
		// Suggest the first app a customer's token would belong to.
		for _, a := range apps {
			if !a.System {
				f.AppID = a.ID
				break
			}
		}
	}
	f.setMinDate(now)
	if !f.Allows(f.Expiry) {
		// The longest preset the app allows, else a date to choose.
		f.Expiry = "custom"
		for _, p := range presetExpiries {
			if f.Allows(p) {
				f.Expiry = p
			}
		}
	}
	return f
}

// setMinDate sets the first day a custom expiry may be: tomorrow (UTC).
func (f *tokenForm) setMinDate(now time.Time) {
	f.MinDate = now.UTC().AddDate(0, 0, 1).Format("2006-01-02")
}

// editForm fills the edit form from the token.
func editForm(t tokend.Token, app tokend.App) tokenForm {
	f := tokenForm{
		Edit: true, TokenID: t.ID, Version: t.Version, AppID: t.AppID, Name: t.Name,
		Description: t.Description, Type: string(t.Type), Access: string(t.Access),
		Permissions: t.Permissions, Expiry: "keep",
		IPs: strings.Join(t.AllowedIPs, "\n"), Origins: strings.Join(t.AllowedOrigins, "\n"),
		RateWindow: "1h",
	}
	if app.ID != "" {
		f.Apps = []tokend.App{app}
	}
	if t.RateLimit != nil {
		f.RateLimit = strconv.Itoa(t.RateLimit.Limit)
		f.RateWindow = t.RateLimit.Window.String()
	}
	if t.MaxUses != nil {
		f.MaxUses = strconv.FormatInt(*t.MaxUses, 10)
	}
	return f
}

// readTokenForm reads the posted form as typed.
func readTokenForm(r *http.Request, edit bool) tokenForm {
	v := r.PostForm
	f := tokenForm{
		Edit: edit, AppID: v.Get("app_id"), Name: v.Get("name"), Description: v.Get("description"),
		OwnerID: strings.TrimSpace(v.Get("owner_id")), OwnerName: strings.TrimSpace(v.Get("owner_name")),
		Type: v.Get("type"), Access: v.Get("access"), Expiry: v.Get("expires_in"),
		ExpiresOn: strings.TrimSpace(v.Get("expires_on")), IPs: v.Get("allowed_ips"),
		Origins: v.Get("allowed_origins"), RateLimit: strings.TrimSpace(v.Get("rate_limit")),
		RateWindow: v.Get("rate_window"), MaxUses: strings.TrimSpace(v.Get("max_uses")),
		Decoy: !edit && v.Get("decoy") == "1",
	}
	// Each app's catalog has its own checkboxes; only the chosen app's count.
	f.Permissions = v["perm_"+f.AppID]
	f.Version, _ = strconv.ParseInt(v.Get("version"), 10, 64)
	return f
}

// parsed is what the form's text fields mean; problems go to f.Err.
type parsed struct {
	expiresIn string
	expiresAt *time.Time
	ips       []string
	origins   []string
	rate      *tokend.RateLimit
	maxUses   *int64
}

func (f *tokenForm) parse() parsed {
	var p parsed
	fe := &formError{Status: http.StatusUnprocessableEntity}
	switch f.Expiry {
	case "keep":
		if !f.Edit {
			fe.add("expires_in", "choose when the token expires")
		}
	case "custom":
		day, err := time.Parse("2006-01-02", f.ExpiresOn)
		if err != nil {
			fe.add("expires_in", "choose the date on which the token expires")
			break
		}
		// The token works through the whole of the chosen day (UTC).
		end := day.Add(24*time.Hour - time.Second)
		p.expiresAt = &end
	default:
		p.expiresIn = f.Expiry
	}
	p.ips = splitList(f.IPs)
	p.origins = splitList(f.Origins)
	if f.RateLimit != "" {
		n, err := strconv.Atoi(f.RateLimit)
		w, werr := tokend.ParseDuration(f.RateWindow)
		switch {
		case err != nil:
			fe.add("rate_limit", "the limit must be a whole number of requests")
		case werr != nil:
			fe.add("rate_limit", "choose a window such as 1m or 1h")
		default:
			p.rate = &tokend.RateLimit{Limit: n, Window: w}
		}
	}
	if f.MaxUses != "" {
		n, err := strconv.ParseInt(f.MaxUses, 10, 64)
		if err != nil {
			fe.add("max_uses", "must be a whole number")
		} else {
			p.maxUses = &n
		}
	}
	if fe.Has() {
		f.Err = fe
	}
	return p
}

func (f *tokenForm) input(p parsed) tokend.TokenInput {
	in := tokend.TokenInput{
		AppID: f.AppID, OwnerID: f.OwnerID, OwnerName: f.OwnerName, Name: f.Name, Description: f.Description,
		Type: tokend.TokenType(f.Type), Access: tokend.Access(f.Access),
		ExpiresIn: p.expiresIn, ExpiresAt: p.expiresAt,
		AllowedIPs: p.ips, AllowedOrigins: p.origins, RateLimit: p.rate, MaxUses: p.maxUses,
		Decoy: f.Decoy,
	}
	if in.Access == tokend.AccessCustom {
		in.Permissions = f.Permissions
	}
	return in
}

func (f *tokenForm) patch(p parsed) tokend.TokenPatch {
	typ, access := tokend.TokenType(f.Type), tokend.Access(f.Access)
	pt := tokend.TokenPatch{
		Name: &f.Name, Description: &f.Description, Type: &typ, Access: &access,
		AllowedIPs: &p.ips, AllowedOrigins: &p.origins, RateLimit: p.rate, MaxUses: p.maxUses,
	}
	if access == tokend.AccessCustom {
		perms := f.Permissions
		pt.Permissions = &perms
	}
	switch {
	case p.expiresAt != nil:
		pt.ExpiresAt = p.expiresAt
	case p.expiresIn != "":
		pt.ExpiresIn = &p.expiresIn
	}
	if p.rate == nil {
		pt.Null = append(pt.Null, "rate_limit")
	}
	if p.maxUses == nil {
		pt.Null = append(pt.Null, "max_uses")
	}
	return pt
}

type tokenNewData struct {
	Form   tokenForm
	NoApps bool
}

func (s *Server) tokenNewPage(w http.ResponseWriter, r *http.Request) {
	apps, err := s.allApps(r.Context(), s.actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := &tokenNewData{Form: newTokenForm(apps, r.URL.Query().Get("app_id"), s.now()), NoApps: len(apps) == 0}
	if kept, ok := s.takeKeptForm(w, r); ok {
		// What was typed before the session ended, to submit again.
		kept.Apps = apps
		d.Form = kept
	}
	s.render(w, r, http.StatusOK, "token_new.html", &page{Title: "Generate API token", Nav: "tokens", Data: d})
}

func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	ctx, a := r.Context(), s.actor(r)
	f := readTokenForm(r, false)
	p := f.parse()
	if f.Err == nil {
		t, sec, err := s.svc.CreateToken(ctx, a, f.input(p))
		if err == nil {
			s.reveal(w, r, t.ID, sec.Reveal())
			s.setFlash(w, "ok", "Token “"+t.Name+"” created.")
			http.Redirect(w, r, "/tokens/"+url.PathEscape(t.ID), http.StatusSeeOther)
			return
		}
		f.Err = s.formErrorOf(r, err, tokenFormFields...)
	}
	f.setMinDate(s.now())
	if r.PostForm.Get("in_dialog") == "1" {
		// Sent from the list's dialog: the dialog opens again with the
		// problems, over the list.
		f.InDialog = true
		s.tokensList(w, r, &f)
		return
	}
	apps, err := s.allApps(ctx, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.Apps = apps
	d := &tokenNewData{Form: f, NoApps: len(apps) == 0}
	s.render(w, r, f.Err.Status, "token_new.html", &page{Title: "Generate API token", Nav: "tokens", Data: d})
}

// ---- the token page ----

type tokenData struct {
	Now     time.Time
	Token   tokend.Token
	App     tokend.App
	AppName string
	Form    tokenForm
	// Secret is the new secret, present only on the one page view after
	// create or rotate; Reveal is what its dialog shows beside it.
	Secret     string
	Reveal     *revealData
	Chart      usageChart
	Events     []tokend.Event
	EventsMore bool
	// Notices are the token's events (GET /v1/events), newest first, a
	// page of tokenEventsShown from NoticesFrom; NoticesNext the cursor
	// of the next page, "" on the last.
	Notices                  []tokend.Notification
	NoticesFrom, NoticesNext string
	Actions                  []tokenAction
	// Stale is true when an edit failed its version check.
	Stale bool
	// CreatedBy names who created the token, when the audit log says.
	CreatedBy string

	// SecretUsed is set when the page was asked to show a new secret that
	// was shown already; SecretLater when it could not be shown just now.
	SecretUsed, SecretLater bool

	// Leak is the leak warning's banner; Activity the recent verifications
	// (see leak.go).
	Leak leakBanner
	// Reported is the token's latest leak report (POST /v1/leaks), or nil.
	Reported *manage.LeakReported
	Activity []tokend.Activity
}

// Action answers the action named n, for the page's dialogs.
func (d *tokenData) Action(n string) tokenActionForm {
	for _, a := range tokenActions {
		if a.Name == n {
			return tokenActionForm{tokenAction: a, Token: d.Token, InDialog: true, Grace: defaultGrace}
		}
	}
	return tokenActionForm{}
}

// tokenEventsShown is how much of a token's audit trail its page shows.
const tokenEventsShown = 20

// loadToken gathers everything the token page shows; the form is the
// token's own unless the caller replaces it.
func (s *Server) loadToken(r *http.Request, id string) (*tokenData, error) {
	ctx, a := r.Context(), s.actor(r)
	t, err := s.svc.TokenWithNetworks(ctx, a, id)
	if err != nil {
		return nil, err
	}
	d := &tokenData{Now: s.now().UTC(), Token: t, AppName: t.AppID}
	if app, err := s.svc.App(ctx, a, t.AppID); err == nil {
		d.App, d.AppName = app, app.Name
	}
	d.Form = editForm(t, d.App)
	d.Form.setMinDate(d.Now)
	// Seven whole days (UTC), today the last.
	to := d.Now.Truncate(24*time.Hour).AddDate(0, 0, 1)
	from := to.Add(-chartHours * time.Hour)
	usage, err := s.svc.TokenUsage(ctx, a, id, from, to)
	if err != nil {
		return nil, err
	}
	d.Chart = newUsageChart(usage, from, r.URL.Query().Get("usage") == "hourly")
	if a.Can(tokend.PermAuditRead) {
		ev, err := s.svc.Events(ctx, a, tokend.EventFilter{TokenID: id, Limit: tokenEventsShown})
		if err != nil {
			return nil, err
		}
		d.Events, d.EventsMore = ev.Items, ev.NextCursor != ""
		d.NoticesFrom = r.URL.Query().Get("events_cursor")
		notes, err := s.svc.Notifications(ctx, a, tokend.NotificationFilter{TokenID: id, Limit: tokenEventsShown, Cursor: d.NoticesFrom})
		if err != nil {
			return nil, err
		}
		d.Notices, d.NoticesNext = notes.Items, notes.NextCursor
		// created_by is a reference; the creation's audit entry has the name.
		created, err := s.svc.Events(ctx, a, tokend.EventFilter{TokenID: id, Action: tokend.ActionTokenCreate, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(created.Items) > 0 {
			d.CreatedBy = created.Items[0].ActorName
		}
	}
	if d.CreatedBy == "" {
		d.CreatedBy = creatorKind(t.CreatedBy)
	}
	if err := s.tokenLeak(r, d); err != nil {
		return nil, err
	}
	d.Actions = actionsFor(a, t)
	return d, nil
}

// creatorKind says who made a token when the audit log cannot name them:
// never the raw reference.
func creatorKind(ref string) string {
	switch {
	case ref == "":
		return ""
	case ref == "system":
		return "tokend itself"
	case strings.HasPrefix(ref, "user:"):
		return "a dashboard user"
	case strings.HasPrefix(ref, "token:"):
		return "an admin token"
	}
	return "someone"
}

// actionsFor answers the actions a may take on t in its state.
func actionsFor(a tokend.Actor, t tokend.Token) []tokenAction {
	var out []tokenAction
	for _, ac := range tokenActions {
		if ac.applies(t) && a.Can(ac.Perm) {
			out = append(out, ac)
		}
	}
	return out
}

func (s *Server) tokenPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, err := s.loadToken(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var reveal revealState
	d.Secret, reveal = s.takeReveal(w, r, id)
	d.SecretUsed, d.SecretLater = reveal == revealUsed, reveal == revealUnavailable
	if d.Secret != "" {
		d.Reveal = newRevealData(r, s.insecure, d.Token, d.App, d.Secret)
	}
	s.render(w, r, http.StatusOK, "token.html", &page{Title: d.Token.Name, Nav: "tokens", Data: d})
}

func (s *Server) tokenUpdate(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	id := r.PathValue("id")
	cur, err := s.svc.Token(r.Context(), s.actor(r), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := readTokenForm(r, true)
	// The checkboxes that count are those of the token's own app.
	f.TokenID, f.AppID = id, cur.AppID
	f.Permissions = r.PostForm["perm_"+f.AppID]
	p := f.parse()
	var stale bool
	if f.Err == nil {
		t, err := s.svc.UpdateToken(r.Context(), s.actor(r), id, f.patch(p), f.Version)
		var done bool
		if done, f.Err, stale = s.afterEdit(w, r, err, t.Name, "/tokens/"+url.PathEscape(id), tokenFormFields); done {
			return
		}
	}
	d, err := s.loadToken(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Show what was typed, against the catalog of the token's own app.
	f.Apps, f.MinDate = d.Form.Apps, d.Form.MinDate
	d.Form, d.Stale = f, stale
	s.render(w, r, f.Err.Status, "token.html", &page{Title: d.Token.Name, Nav: "tokens", Data: d})
}

// ---- actions ----

// tokenAction is one of the actions a token page offers, each confirmed
// first: in a dialog on the token page, or on a page of its own.
type tokenAction struct {
	Name   string // path segment and form name
	Perm   string
	Title  string // "Revoke token"
	Button string // the confirming button's text
	Danger bool
	// applies reports whether the action makes sense for the token.
	applies func(t tokend.Token) bool
}

var tokenActions = []tokenAction{
	{Name: "disable", Perm: tokend.PermTokensWrite, Title: "Disable token", Button: "Disable token",
		applies: func(t tokend.Token) bool { return t.Status == tokend.StatusActive || t.Status == tokend.StatusExpired }},
	{Name: "enable", Perm: tokend.PermTokensWrite, Title: "Enable token", Button: "Enable token",
		applies: func(t tokend.Token) bool { return t.Status == tokend.StatusDisabled }},
	{Name: "rotate", Perm: tokend.PermTokensRotate, Title: "Rotate token", Button: "Rotate token",
		applies: func(t tokend.Token) bool { return t.Status != tokend.StatusRevoked }},
	{Name: "revoke", Perm: tokend.PermTokensWrite, Title: "Revoke token", Button: "Revoke token", Danger: true,
		applies: func(t tokend.Token) bool { return t.Status != tokend.StatusRevoked }},
	{Name: "delete", Perm: tokend.PermTokensDelete, Title: "Delete token", Button: "Delete token", Danger: true,
		applies: func(tokend.Token) bool { return true }},
}

// tokenActionForm is an action's confirmation: in a dialog, on its page.
type tokenActionForm struct {
	tokenAction
	Token       tokend.Token
	InDialog    bool
	ConfirmName string
	Grace       string
	Err         *formError
	// Back is where the form returns after the action.
	Back string
}

// GracePeriods are the rotation grace periods offered.
func (tokenActionForm) GracePeriods() []gracePeriod { return gracePeriods }

type gracePeriod struct{ Value, Label string }

// defaultGrace is the grace period the rotate confirmation offers first:
// long enough to roll the new secret out, short enough to matter.
const defaultGrace = "1h"

var gracePeriods = []gracePeriod{
	{"0s", "None: the current secret stops working at once"},
	{"1h", "1 hour"}, {"24h", "24 hours"}, {"7d", "7 days"}, {"30d", "30 days"},
}

func (s *Server) tokenConfirmPage(ac tokenAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := s.svc.Token(r.Context(), s.actor(r), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		f := tokenActionForm{tokenAction: ac, Token: t, Back: safeBack(r.URL.Query().Get("back"), "")}
		if ac.Name == "rotate" {
			f.Grace = defaultGrace
		}
		s.renderConfirm(w, r, http.StatusOK, f)
	}
}

func (s *Server) renderConfirm(w http.ResponseWriter, r *http.Request, status int, f tokenActionForm) {
	s.render(w, r, status, "token_confirm.html", &page{Title: f.Title, Nav: "tokens", Data: &f})
}

func (s *Server) tokenAction(ac tokenAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.readForm(w, r) {
			return
		}
		ctx, a, id := r.Context(), s.actor(r), r.PathValue("id")
		tokenURL := "/tokens/" + url.PathEscape(id)
		back := safeBack(r.PostForm.Get("back"), tokenURL)
		f := tokenActionForm{tokenAction: ac, Back: safeBack(r.PostForm.Get("back"), ""),
			ConfirmName: r.PostForm.Get("confirm_name"), Grace: r.PostForm.Get("grace_period")}
		var (
			t   tokend.Token
			err error
			msg string
		)
		switch ac.Name {
		case "disable":
			t, err = s.svc.DisableToken(ctx, a, id, 0)
			msg = "Token “%s” disabled: it is refused until you enable it."
		case "enable":
			t, err = s.svc.EnableToken(ctx, a, id, 0)
			msg = "Token “%s” enabled."
		case "revoke":
			t, err = s.svc.RevokeToken(ctx, a, id, 0)
			msg = "Token “%s” revoked."
		case "rotate":
			t, err = s.rotate(w, r, &f)
			msg = "Token “%s” rotated."
			// The new secret is shown once, on the token's page: whatever
			// page the rotation came from, that is where it goes.
			back = tokenURL
			if err == nil && t.PreviousSecretExpiresAt != nil {
				msg += " The previous secret works until " + t.PreviousSecretExpiresAt.UTC().Format("2006-01-02 15:04 UTC") + "."
			}
		case "delete":
			t, err = s.deleteToken(r, &f)
			msg = "Token “%s” deleted."
			back = safeBack(r.PostForm.Get("back"), "/tokens")
			if back == tokenURL {
				back = "/tokens"
			}
		}
		if err == nil && f.Err == nil {
			s.setFlash(w, "ok", strings.Replace(msg, "%s", t.Name, 1))
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		if err != nil {
			if tokend.CodeOf(err) == tokend.ECodeNotFound {
				s.fail(w, r, err)
				return
			}
			f.Err = s.formErrorOf(r, err, "grace_period", "confirm_name")
		}
		if f.Token.ID == "" {
			if f.Token, err = s.svc.Token(ctx, a, id); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		s.renderConfirm(w, r, f.Err.Status, f)
	}
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request, f *tokenActionForm) (tokend.Token, error) {
	grace := tokend.Duration(0)
	if f.Grace != "" {
		g, err := tokend.ParseDuration(f.Grace)
		if err != nil {
			f.Err = &formError{Status: http.StatusUnprocessableEntity}
			f.Err.add("grace_period", "choose a grace period from the list")
			return tokend.Token{}, nil
		}
		grace = g
	}
	t, sec, err := s.svc.RotateToken(r.Context(), s.actor(r), r.PathValue("id"), grace, 0)
	if err != nil {
		return t, err
	}
	s.reveal(w, r, t.ID, sec.Reveal())
	return t, nil
}

// deleteToken deletes the token when the typed name is its name: deleting
// is permanent, so the server checks the confirmation, not only the page.
func (s *Server) deleteToken(r *http.Request, f *tokenActionForm) (tokend.Token, error) {
	ctx, a, id := r.Context(), s.actor(r), r.PathValue("id")
	t, err := s.svc.Token(ctx, a, id)
	if err != nil {
		return t, err
	}
	f.Token = t
	if !sameName(f.ConfirmName, t.Name) {
		f.Err = &formError{Status: http.StatusUnprocessableEntity}
		f.Err.add("confirm_name", "type the token's name exactly as shown to confirm")
		return t, nil
	}
	return t, s.svc.DeleteToken(ctx, a, id, t.Version)
}
