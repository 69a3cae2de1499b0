package web

// The audit page: who did what, when and from where, filtered by action,
// token, application and time range, newest first.

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

var _ = addFuncs(template.FuncMap{
	"eventDetails": eventDetails,
	"actionName":   actionName,
	// withTokens names the tokens of an event table: id to name.
	"withTokens": func(e eventTable, names map[string]string) eventTable {
		e.TokenNames = names
		return e
	},
	"events": func(ev []tokend.Event, now time.Time, names map[string]string, wide, filtered bool) eventTable {
		return eventTable{Events: ev, Now: now, AppNames: names, Wide: wide, Filtered: filtered}
	},
})

// eventTable is what the event-table partial shows.
type eventTable struct {
	Events   []tokend.Event
	Now      time.Time
	AppNames map[string]string
	// Wide adds the application and token columns.
	Wide     bool
	Filtered bool
	// TokenNames names tokens by id, where known.
	TokenNames map[string]string
}

func (s *Server) auditRoutes() {
	s.handle("GET /audit", tokend.PermAuditRead, s.auditPage)
}

// auditActions are the actions the filter offers.
var auditActions = []string{
	tokend.ActionTokenCreate, tokend.ActionTokenUpdate, tokend.ActionTokenDisable, tokend.ActionTokenEnable,
	tokend.ActionTokenRevoke, tokend.ActionTokenRotate, tokend.ActionTokenDelete, tokend.ActionTokenOldSecret,
	tokend.ActionTokenLeakDismissed, tokend.ActionTokenLeak, tokend.ActionTokenDecoyUsed, tokend.ActionTokenNewNetwork,
	tokend.ActionAppCreate, tokend.ActionAppUpdate, tokend.ActionAppDelete, tokend.ActionAppRevokeAll,
	tokend.ActionOwnerRevokeAll,
	tokend.ActionUserCreate, tokend.ActionUserUpdate, tokend.ActionUserDelete, tokend.ActionUserLogin,
	tokend.ActionUserLogout, tokend.ActionUserSetup, tokend.ActionSystemBootstrap,
}

// The time range is typed in datetime-local controls, read as UTC.
const localMinute = "2006-01-02T15:04"

type auditFilters struct {
	Action, TokenID, AppID, Since, Until, Cursor string
	Limit                                        int
}

func (f auditFilters) Any() bool {
	return f.Action != "" || f.TokenID != "" || f.AppID != "" || f.Since != "" || f.Until != ""
}

// URL answers the log with these filters at cursor ("" for the first page).
func (f auditFilters) URL(cursor string) string {
	q := url.Values{}
	for k, v := range map[string]string{"action": f.Action, "token_id": f.TokenID, "app_id": f.AppID,
		"since": f.Since, "until": f.Until, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if len(q) == 0 {
		return "/audit"
	}
	return "/audit?" + q.Encode()
}

type auditData struct {
	Now      time.Time
	Filters  auditFilters
	Actions  []string
	Apps     []tokend.App
	AppNames map[string]string
	Events   []tokend.Event
	NextURL  string
	FirstURL string
	Errors   []string
	// TokenNames names the tokens of the events shown.
	TokenNames map[string]string
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	ctx, a := r.Context(), s.actor(r)
	q := r.URL.Query()
	f := auditFilters{
		Action: q.Get("action"), TokenID: strings.TrimSpace(q.Get("token_id")), AppID: q.Get("app_id"),
		Since: q.Get("since"), Until: q.Get("until"), Cursor: q.Get("cursor"),
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= tokend.MaxPageSize {
		f.Limit = n
	}
	d := &auditData{Now: s.now().UTC(), Filters: f, Actions: auditActions}
	if a.Can(tokend.PermAppsRead) {
		apps, err := s.allApps(ctx, a)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.Apps, d.AppNames = apps, appNames(apps)
	}
	ef := tokend.EventFilter{Action: f.Action, TokenID: f.TokenID, AppID: f.AppID, Cursor: f.Cursor, Limit: f.Limit}
	var err error
	if ef.Since, err = parseLocal(f.Since); err != nil {
		d.Errors = append(d.Errors, "From: enter a date and time such as 2025-01-31T09:00.")
	}
	if ef.Until, err = parseLocal(f.Until); err != nil {
		d.Errors = append(d.Errors, "To: enter a date and time such as 2025-01-31T18:00.")
	}
	status := http.StatusOK
	if len(d.Errors) == 0 {
		list, err := s.svc.Events(ctx, a, ef)
		switch {
		case err == nil:
			d.Events = list.Items
			d.TokenNames = s.tokenNames(ctx, a, list.Items)
			if list.NextCursor != "" {
				d.NextURL = f.URL(list.NextCursor)
			}
		case tokend.CodeOf(err) == tokend.ECodeInvalid || tokend.CodeOf(err) == tokend.ECodeMalformedRequest:
			d.Errors = s.formErrorOf(r, err).General
		default:
			s.fail(w, r, err)
			return
		}
	}
	if len(d.Errors) > 0 {
		status = http.StatusBadRequest
	}
	if f.Cursor != "" {
		d.FirstURL = f.URL("")
	}
	s.render(w, r, status, "audit.html", &page{Title: "Audit log", Nav: "audit", Data: d})
}

func parseLocal(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(localMinute, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04:05", s)
}

// detail is one line of an event's details.
type detail struct{ Key, Value string }

// eventDetails renders an event's details as lines, changes as "from → to".
func eventDetails(m map[string]any) []detail {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]detail, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		if ch, ok := v.(map[string]any); ok && len(ch) == 2 {
			from, fok := ch["from"]
			to, tok := ch["to"]
			if fok && tok {
				out = append(out, detail{k, detailValue(from) + " → " + detailValue(to)})
				continue
			}
		}
		out = append(out, detail{k, detailValue(v)})
	}
	return out
}

func detailValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case string:
		if x == "" {
			return "none"
		}
		return x
	case []any:
		if len(x) == 0 {
			return "none"
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = detailValue(e)
		}
		return strings.Join(parts, ", ")
	case []string:
		if len(x) == 0 {
			return "none"
		}
		return strings.Join(x, ", ")
	case float64, bool, int, int64:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// actionNames are the audit log's words for every action; a test fails on
// an Action constant of package tokend that has none.
var actionNames = map[string]string{
	tokend.ActionAppCreate:           "Application created",
	tokend.ActionAppUpdate:           "Application changed",
	tokend.ActionAppDelete:           "Application deleted",
	tokend.ActionAppRevokeAll:        "All tokens of an application revoked",
	tokend.ActionOwnerRevokeAll:      "All tokens of an owner revoked",
	tokend.ActionTokenCreate:         "Token created",
	tokend.ActionTokenUpdate:         "Token changed",
	tokend.ActionTokenDisable:        "Token disabled",
	tokend.ActionTokenEnable:         "Token enabled",
	tokend.ActionTokenRevoke:         "Token revoked",
	tokend.ActionTokenRotate:         "Token rotated",
	tokend.ActionTokenDelete:         "Token deleted",
	tokend.ActionTokenOldSecret:      "Rotated-out secret used",
	tokend.ActionTokenLeakDismissed:  "Leak warning dismissed",
	tokend.ActionTokenLeak:           "Secret reported leaked",
	tokend.ActionTokenDecoyUsed:      "Decoy token used",
	tokend.ActionTokenNewNetwork:     "Used from a new network",
	tokend.ActionSystemBootstrap:     "Bootstrap admin token created",
	tokend.ActionUserCreate:          "User created",
	tokend.ActionUserUpdate:          "User changed",
	tokend.ActionUserDelete:          "User deleted",
	tokend.ActionUserLogin:           "Signed in",
	tokend.ActionUserLogout:          "Signed out",
	tokend.ActionUserSetup:           "Owner account set up",
	tokend.ActionPortalLink:          "Customer portal link made",
	tokend.ActionPortalOpen:          "Customer portal opened",
	tokend.ActionPortalLogout:        "Customer portal signed out",
	tokend.ActionWebhookCreate:       "Webhook endpoint added",
	tokend.ActionWebhookUpdate:       "Webhook endpoint changed",
	tokend.ActionWebhookDelete:       "Webhook endpoint deleted",
	tokend.ActionWebhookRotateSecret: "Webhook signing secret rotated",
	tokend.ActionWebhookTest:         "Webhook test event sent",
	tokend.ActionDeliveryRetry:       "Webhook delivery retried",
}

// actionName answers the words for an action, the action itself for one
// without (an event written by a newer version).
func actionName(action string) string {
	if n, ok := actionNames[action]; ok {
		return n
	}
	return action
}

// tokenNames names the tokens of events: the token's name now, else the
// name the event recorded (a deleted token's creation or deletion names
// it). At most one lookup per token of the page.
func (s *Server) tokenNames(ctx context.Context, a tokend.Actor, events []tokend.Event) map[string]string {
	names := map[string]string{}
	for _, e := range events {
		if e.TokenID == "" {
			continue
		}
		if _, ok := names[e.TokenID]; !ok && a.Can(tokend.PermTokensRead) {
			if t, err := s.svc.Token(ctx, a, e.TokenID); err == nil {
				names[e.TokenID] = t.Name
				continue
			}
			names[e.TokenID] = ""
		}
		if names[e.TokenID] == "" {
			if n, ok := e.Details["name"].(string); ok {
				names[e.TokenID] = n
			}
		}
	}
	return names
}
