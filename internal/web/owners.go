package web

// An owner's page: one customer of the product in one application (owners
// are per application), with the counts of their tokens, the token list
// filtered to them, the recent activity of their tokens, and "Revoke all
// tokens of this customer" behind a confirmation.

import (
	"cmp"
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tokend/tokend"
)

var _ = addFuncs(template.FuncMap{"ownerURL": ownerURL})

// ownerURL is the page of the owner ownerID in the application appID. An
// owner id "." or ".." cannot be a path segment (browsers resolve it, even
// escaped): theirs is the token list filtered to them.
func ownerURL(appID, ownerID string) string {
	if !hasOwnerPage(ownerID) {
		return tokenFilters{AppID: appID, OwnerID: ownerID}.URL("")
	}
	return "/apps/" + url.PathEscape(appID) + "/owners/" + url.PathEscape(ownerID)
}

// hasOwnerPage reports whether ownerID is an owner id with a page.
func hasOwnerPage(ownerID string) bool {
	return tokend.ValidOwnerID(ownerID) && ownerID != "." && ownerID != ".."
}

// ownerLink is an "Open owner page" link of the filtered token list.
type ownerLink struct {
	URL, AppName string
}

// ownerPages answers the owner pages the list filtered to an owner links
// to: the filtered application's, else one per application on the page.
func ownerPages(f tokenFilters, rows []tokenRow, apps map[string]string) []ownerLink {
	if !hasOwnerPage(f.OwnerID) {
		return nil
	}
	if f.AppID != "" {
		return []ownerLink{{URL: ownerURL(f.AppID, f.OwnerID), AppName: apps[f.AppID]}}
	}
	var out []ownerLink
	seen := map[string]bool{}
	for _, r := range rows {
		if r.OwnerID == f.OwnerID && !seen[r.AppID] {
			seen[r.AppID] = true
			out = append(out, ownerLink{URL: ownerURL(r.AppID, f.OwnerID), AppName: cmp.Or(r.AppName, r.AppID)})
		}
	}
	return out
}

func (s *Server) ownerRoutes() {
	s.handle("GET /apps/{id}/owners/{owner}", tokend.PermTokensRead, s.ownerPage)
	s.handle("GET /apps/{id}/owners/{owner}/revoke-all", tokend.PermTokensWrite, s.ownerConfirmPage)
	s.handle("POST /apps/{id}/owners/{owner}/revoke-all", tokend.PermTokensWrite, s.ownerRevokeAll)
}

// ownerEventsShown is how many events the owner's recent activity tells.
const ownerEventsShown = 10

type ownerData struct {
	*tokensData
	App       tokend.App
	OwnerID   string
	OwnerName string
	URL       string // the owner's page
	Counts    appTokens
	// CountURLs link each count to the token list of that status.
	CountURLs map[string]string
	CanAudit  bool
	Activity  []activity
	Err       *formError // the confirmation's problem
}

// loadOwner reads the owner of the request's path: a 404 for an owner id
// that cannot be one or an application that does not exist.
func (s *Server) loadOwner(r *http.Request) (*ownerData, error) {
	ctx, a := r.Context(), s.actor(r)
	appID, ownerID := r.PathValue("id"), r.PathValue("owner")
	if !hasOwnerPage(ownerID) {
		return nil, tokend.Errorf(tokend.ECodeNotFound, "owner not found")
	}
	app, err := s.svc.App(ctx, a, appID)
	if err != nil {
		return nil, err
	}
	if app.System {
		return nil, tokend.Errorf(tokend.ECodeNotFound, "owner not found: admin tokens have no owner")
	}
	d := &ownerData{App: app, OwnerID: ownerID, URL: ownerURL(appID, ownerID), CanAudit: a.Can(tokend.PermAuditRead),
		tokensData: &tokensData{Now: s.now().UTC()}}
	base := tokend.TokenFilter{AppID: appID, OwnerID: ownerID}
	if d.Counts, err = s.countTokens(ctx, a, base); err != nil {
		return nil, err
	}
	d.CountURLs = map[string]string{}
	for _, st := range []string{"active", "disabled", "expired", "revoked"} {
		d.CountURLs[st] = tokenFilters{AppID: appID, OwnerID: ownerID, Status: st}.URL("")
	}
	return d, nil
}

func (s *Server) ownerPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.loadOwner(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, a, q := r.Context(), s.actor(r), r.URL.Query()
	f := tokenFilters{AppID: d.App.ID, OwnerID: d.OwnerID, Path: d.URL, Cursor: q.Get("cursor"),
		Sort: q.Get("sort"), Order: q.Get("order"), Limit: pageLimit(q)}
	d.Filters, d.Back = f, f.URL(f.Cursor)
	apps := []tokend.App{d.App}
	switch err := s.listTokens(ctx, a, d.tokensData, apps); {
	case err == nil:
	case tokend.CodeOf(err) == tokend.ECodeInvalid || tokend.CodeOf(err) == tokend.ECodeMalformedRequest:
		d.Error = strings.Join(s.formErrorOf(r, err).General, " ") // a hand-edited cursor or sort
	default:
		s.fail(w, r, err)
		return
	}
	d.Owners = true
	for _, t := range d.Rows {
		if t.OwnerName != "" {
			d.OwnerName = t.OwnerName
			break
		}
	}
	if d.OwnerName == "" {
		// Not on this page (another sort or page): the newest token's.
		if l, err := s.svc.Tokens(ctx, a, tokend.TokenFilter{AppID: d.App.ID, OwnerID: d.OwnerID, Limit: 1}); err == nil && len(l.Items) > 0 {
			d.OwnerName = l.Items[0].OwnerName
		}
	}
	if d.CanAudit {
		if d.Activity, err = s.ownerActivity(ctx, a, d.App, d.OwnerID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	status := http.StatusOK
	if d.Error != "" {
		status = http.StatusBadRequest
	}
	s.render(w, r, status, "owner.html", &page{Title: cmp.Or(d.OwnerName, d.OwnerID), Nav: "tokens", Data: d})
}

// ownerActivity tells the latest events of the owner's tokens in app, and
// the revocations of all of them, newest first.
func (s *Server) ownerActivity(ctx context.Context, a tokend.Actor, app tokend.App, ownerID string) ([]activity, error) {
	scope := &tokend.AdminScope{OwnerID: ownerID, AppIDs: []string{app.ID}}
	ev, err := s.svc.Events(ctx, a, tokend.EventFilter{Scope: scope, Limit: ownerEventsShown})
	if err != nil {
		return nil, err
	}
	events := ev.Items
	// A revoke-all names the owner in its details, not a token.
	all, err := s.svc.Events(ctx, a, tokend.EventFilter{AppID: app.ID, Action: tokend.ActionOwnerRevokeAll, Limit: tokend.MaxPageSize})
	if err != nil {
		return nil, err
	}
	for _, e := range all.Items {
		if detailName(e.Details, "owner_id") == ownerID {
			events = append(events, e)
		}
	}
	slices.SortFunc(events, func(x, y tokend.Event) int { return y.Time.Compare(x.Time) })
	if len(events) > ownerEventsShown {
		events = events[:ownerEventsShown]
	}
	return s.activities(ctx, a, events, map[string]string{app.ID: app.Name}), nil
}

func (s *Server) ownerConfirmPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.loadOwner(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderOwnerConfirm(w, r, http.StatusOK, d)
}

func (s *Server) renderOwnerConfirm(w http.ResponseWriter, r *http.Request, status int, d *ownerData) {
	s.render(w, r, status, "owner_confirm.html", &page{Title: "Revoke all tokens of this customer", Nav: "tokens", Data: d})
}

func (s *Server) ownerRevokeAll(w http.ResponseWriter, r *http.Request) {
	d, err := s.loadOwner(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.svc.RevokeOwner(r.Context(), s.actor(r), d.App.ID, d.OwnerID)
	if err != nil {
		if tokend.CodeOf(err) == tokend.ECodeNotFound {
			s.fail(w, r, err)
			return
		}
		d.Err = s.formErrorOf(r, err)
		s.renderOwnerConfirm(w, r, d.Err.Status, d)
		return
	}
	msg := "Revoked " + strconv.Itoa(n) + " tokens of " + d.OwnerID + "."
	if n == 1 {
		msg = "Revoked 1 token of " + d.OwnerID + "."
	}
	s.setFlash(w, "ok", msg)
	http.Redirect(w, r, d.URL, http.StatusSeeOther)
}
