package web

// The home page: how many product tokens are active, expiring soon,
// expired, disabled and revoked (each a link to that set in the list), the
// admin tokens apart, the first steps while there is no application or no
// token yet, and the latest changes told as sentences for users who may
// read the audit log.

import (
	"fmt"
	"net/http"
	"time"

	"github.com/tokend/tokend"
)

func (s *Server) homeRoutes() {
	s.handle("GET /{$}", "", s.homePage)
}

// homeEventsShown is how many audit events the home page tells.
const homeEventsShown = 10

type homeData struct {
	Now       time.Time
	CanTokens bool
	// Counts are the cards of product tokens, in the order shown; a card
	// is one count query and links to the list of exactly what it counts.
	Counts []homeCount
	// Admin counts the active admin tokens, shown apart from the product's.
	Admin    int
	AdminURL string
	// NoApps is true when no application exists but the built-in one;
	// NoTokens when no product token exists yet (in any state).
	NoApps   bool
	NoTokens bool
	Activity []activity
	// Leaks is the leak warnings' banner (see leak.go).
	Leaks leakBanner
	// Stale counts the active tokens unused for 30 days (stale.go).
	Stale int
}

// homeCount is one card of the home page's grid.
type homeCount struct {
	ID    string // the card's data-testid: count-<ID>
	Label string
	N     int
	URL   string
	// Warn marks a count that asks for attention when not zero.
	Warn bool
}

// FirstRun is true while a getting-started step remains.
func (d *homeData) FirstRun() bool { return d.NoApps || (d.CanTokens && d.NoTokens) }

func (s *Server) homePage(w http.ResponseWriter, r *http.Request) {
	ctx, a := r.Context(), s.actor(r)
	now := s.now().UTC()
	d := &homeData{Now: now, CanTokens: a.Can(tokend.PermTokensRead)}
	apps, err := s.allApps(ctx, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.NoApps = noProductApp(a, apps)
	if d.CanTokens {
		product := func(status string) tokenFilters { return tokenFilters{Kind: kindProduct, Status: status} }
		cards := []struct {
			c homeCount
			f tokenFilters
		}{
			{homeCount{ID: "active", Label: "Active tokens"}, product(string(tokend.StatusActive))},
			{homeCount{ID: "expiring", Label: "Expiring within 7 days", Warn: true}, product(statusExpiring)},
			{homeCount{ID: "expired", Label: "Expired tokens", Warn: true}, product(string(tokend.StatusExpired))},
			{homeCount{ID: "disabled", Label: "Disabled tokens"}, product(string(tokend.StatusDisabled))},
			{homeCount{ID: "revoked", Label: "Revoked tokens"}, product(string(tokend.StatusRevoked))},
			// Stale tokens (stale.go): active, unused for 30 days.
			{homeCount{ID: "stale", Label: fmt.Sprintf("Stale (unused %d days)", homeStaleDays), Warn: true},
				tokenFilters{Kind: kindProduct, Status: string(tokend.StatusActive), UnusedFor: fmt.Sprintf("%dd", homeStaleDays)}},
		}
		total := 0
		for _, c := range cards {
			tf, err := listFilter(c.f, now)
			if err == nil {
				c.c.N, err = s.svc.CountTokens(ctx, a, tf)
			}
			if err != nil {
				s.fail(w, r, err)
				return
			}
			c.c.URL = c.f.URL("")
			d.Counts = append(d.Counts, c.c)
			switch {
			case c.c.ID == "stale":
				d.Stale = c.c.N
			case c.f.Status != statusExpiring:
				total += c.c.N // the four statuses split the tokens
			}
		}
		d.NoTokens = total == 0
		admin := tokenFilters{AppID: tokend.SystemAppID, Status: string(tokend.StatusActive)}
		af, _ := listFilter(admin, now)
		if d.Admin, err = s.svc.CountTokens(ctx, a, af); err != nil {
			s.fail(w, r, err)
			return
		}
		d.AdminURL = admin.URL("")
	}
	if a.Can(tokend.PermAuditRead) {
		ev, err := s.svc.Events(ctx, a, tokend.EventFilter{Limit: homeEventsShown})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.Activity = s.activities(ctx, a, ev.Items, appNames(apps))
	}
	d.Leaks = s.homeLeaks(r)
	s.render(w, r, http.StatusOK, "home.html", &page{Title: "Home", Nav: "home", Data: d})
}
