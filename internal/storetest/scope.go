package storetest

import (
	"slices"
	"testing"

	"github.com/tokend/tokend"
)

// scopeTests pin the Scope of the list filters: what an owner-scoped admin
// token may see is chosen by the store, so that pages and counts are
// right, and it is exactly what tokend.AdminScope's methods admit.
var scopeTests = []test{
	{name: "tokens, counts, apps and events keep to the scope", run: testScopeFilters},
}

func testScopeFilters(t *testing.T, s tokend.Store) {
	for _, id := range []string{tokend.SystemAppID, "app_x", "app_y"} {
		mustCreateApp(t, s, newApp(id))
	}
	owned := func(id, app, owner string) tokend.Token {
		tok := newToken(id, app, "token "+id)
		tok.OwnerID = owner
		return tok
	}
	all := []tokend.Token{
		owned("tok_ax01", "app_x", "cust_a"), owned("tok_ay01", "app_y", "cust_a"),
		owned("tok_bx01", "app_x", "cust_b"), owned("tok_nx01", "app_x", ""),
		owned("tok_as01", tokend.SystemAppID, "cust_a"),
	}
	for _, tok := range all {
		mustCreateToken(t, s, tok)
	}
	if err := s.AppendEvent(t.Context(), newEvent(tokend.ActionAppUpdate, "app_x", "")); err != nil {
		t.Fatal(err)
	}
	var (
		a       = &tokend.AdminScope{OwnerID: "cust_a"}
		ax      = &tokend.AdminScope{OwnerID: "cust_a", AppIDs: []string{"app_x"}}
		axy     = &tokend.AdminScope{OwnerID: "cust_a", AppIDs: []string{"app_x", "app_y"}}
		noOwner = &tokend.AdminScope{}
	)
	admitted := func(sc *tokend.AdminScope) []string {
		var ids []string
		for _, tok := range all {
			if sc.Admits(tok.AppID, tok.OwnerID) {
				ids = append(ids, tok.ID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	for _, c := range []struct {
		name string
		f    tokend.TokenFilter
		want []string
	}{
		{"owner only", tokend.TokenFilter{Scope: a}, admitted(a)},
		{"owner and one app", tokend.TokenFilter{Scope: ax}, admitted(ax)},
		{"owner and two apps", tokend.TokenFilter{Scope: axy}, admitted(axy)},
		{"a scope without an owner admits nothing", tokend.TokenFilter{Scope: noOwner}, nil},
		{"another owner's filter finds nothing", tokend.TokenFilter{Scope: a, OwnerID: "cust_b"}, nil},
		{"an app outside the scope finds nothing", tokend.TokenFilter{Scope: ax, AppID: "app_y"}, nil},
		{"the system app is never in a scope", tokend.TokenFilter{Scope: a, AppID: tokend.SystemAppID}, nil},
		{"a search by another owner's token id finds nothing", tokend.TokenFilter{Scope: a, Query: "tok_bx01"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			f.Limit = tokend.MaxPageSize
			p, err := s.Tokens(t.Context(), f)
			if err != nil {
				t.Fatalf("Tokens: %v", err)
			}
			got := tokenIDs(p.Items)
			slices.Sort(got)
			if !slices.Equal(got, c.want) && (len(got) > 0 || len(c.want) > 0) {
				t.Errorf("Tokens = %v, want %v", got, c.want)
			}
			n, err := s.CountTokens(t.Context(), c.f)
			if err != nil || n != len(c.want) {
				t.Errorf("CountTokens = %d, %v; want %d", n, err, len(c.want))
			}
		})
	}
	if got := admitted(a); !slices.Equal(got, []string{"tok_ax01", "tok_ay01"}) {
		t.Fatalf("AdminScope.Admits of owner a = %v", got)
	}

	for _, c := range []struct {
		sc   *tokend.AdminScope
		want []string
	}{{a, []string{"app_x", "app_y"}}, {ax, []string{"app_x"}}} {
		p, err := s.Apps(t.Context(), tokend.AppFilter{Scope: c.sc, Limit: tokend.MaxPageSize})
		if err != nil {
			t.Fatalf("Apps: %v", err)
		}
		var got []string
		for _, app := range p.Items {
			got = append(got, app.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Apps of scope %+v = %v, want %v", *c.sc, got, c.want)
		}
	}

	// Every token has its creation event; the app has one more.
	for _, c := range []struct {
		sc *tokend.AdminScope
		f  tokend.EventFilter
	}{{a, tokend.EventFilter{}}, {ax, tokend.EventFilter{}}, {a, tokend.EventFilter{TokenID: "tok_bx01"}}, {a, tokend.EventFilter{AppID: "app_y"}}} {
		f := c.f
		f.Scope = c.sc
		var got []string
		for _, ev := range eventsOf(t, s, f) {
			got = append(got, ev.TokenID)
		}
		slices.Sort(got)
		var want []string
		for _, id := range admitted(c.sc) {
			tok := mustToken(t, s, id)
			if (c.f.TokenID == "" || c.f.TokenID == id) && (c.f.AppID == "" || c.f.AppID == tok.AppID) {
				want = append(want, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Events of scope %+v, filter %+v: tokens %v, want %v", *c.sc, c.f, got, want)
		}
	}
}
