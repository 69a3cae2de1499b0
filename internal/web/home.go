package web

// The home page: how many tokens are active, expiring soon and revoked,
// the tokens about to expire, a shortcut to generate one, and the latest
// audit events for users who may read them.

import (
	"net/http"
	"slices"
	"time"

	"github.com/tokend/tokend"
)

func (s *Server) homeRoutes() {
	s.handle("GET /{$}", "", s.homePage)
}

// homeExpiringShown is how many soon-expiring tokens the home page lists.
const (
	homeExpiringShown = 5
	homeEventsShown   = 10
)

type homeData struct {
	Now       time.Time
	CanTokens bool
	Active    int
	Expiring  int
	Revoked   int
	// Soon lists the tokens that expire first, within 7 days.
	Soon     []tokenRow
	Events   []tokend.Event
	AppNames map[string]string
	NoApps   bool
	// Leaks is the leak warnings' banner (see leak.go).
	Leaks leakBanner
	// Stale counts the active tokens unused for 30 days (stale.go).
	Stale int
}

func (s *Server) homePage(w http.ResponseWriter, r *http.Request) {
	ctx, a := r.Context(), s.actor(r)
	now := s.now().UTC()
	d := &homeData{Now: now, CanTokens: a.Can(tokend.PermTokensRead)}
	apps, err := s.allApps(ctx, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.AppNames, d.NoApps = appNames(apps), len(apps) == 0
	if d.CanTokens {
		expiring := tokend.TokenFilter{Status: tokend.StatusActive, ExpiresBefore: now.Add(soon)}
		for _, c := range []struct {
			n *int
			f tokend.TokenFilter
		}{
			{&d.Active, tokend.TokenFilter{Status: tokend.StatusActive}},
			{&d.Expiring, expiring},
			{&d.Revoked, tokend.TokenFilter{Status: tokend.StatusRevoked}},
		} {
			if *c.n, err = s.svc.CountTokens(ctx, a, c.f); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if d.Stale, err = s.countStale(ctx, a); err != nil {
			s.fail(w, r, err)
			return
		}
		// The list is newest first: of one page, show those expiring first.
		expiring.Limit = tokend.MaxPageSize
		list, err := s.svc.Tokens(ctx, a, expiring)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, t := range list.Items {
			d.Soon = append(d.Soon, tokenRow{Token: t, AppName: d.AppNames[t.AppID]})
		}
		slices.SortFunc(d.Soon, func(x, y tokenRow) int { return x.ExpiresAt.Compare(*y.ExpiresAt) })
		d.Soon = d.Soon[:min(len(d.Soon), homeExpiringShown)]
	}
	if a.Can(tokend.PermAuditRead) {
		ev, err := s.svc.Events(ctx, a, tokend.EventFilter{Limit: homeEventsShown})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.Events = ev.Items
	}
	d.Leaks = s.homeLeaks(r)
	s.render(w, r, http.StatusOK, "home.html", &page{Title: "Home", Nav: "home", Data: d})
}
