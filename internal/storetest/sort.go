package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var sortTests = []test{
	{name: "unused for", run: testListUnusedFor},
	{name: "search by id and by the secret's last 4", run: testListSearch},
	{name: "every sort pages without duplicates or gaps", run: testListSortPages},
	{name: "a cursor is only good for its sort and order", run: testListSortCursor},
	{name: "unknown sort or order is invalid", run: testListBadSort},
}

func testListUnusedFor(t *testing.T, s tokend.Store) {
	now := at(400 * 24 * time.Hour)
	day := 24 * time.Hour
	mustCreateApp(t, s, newApp("app_a"))
	for i, sp := range []struct {
		id       string
		created  time.Time
		lastUsed *time.Time
		status   tokend.Status
	}{
		{"tok_used_now", now.Add(-100 * day), ptr(now.Add(-time.Minute)), tokend.StatusActive},
		{"tok_used_29d", now.Add(-100 * day), ptr(now.Add(-29 * day)), tokend.StatusActive},
		{"tok_used_30d", now.Add(-100 * day), ptr(now.Add(-30 * day)), tokend.StatusActive},
		{"tok_used_91d", now.Add(-100 * day), ptr(now.Add(-91 * day)), tokend.StatusDisabled},
		{"tok_new_never", now.Add(-2 * day), nil, tokend.StatusActive},
		{"tok_old_never", now.Add(-40 * day), nil, tokend.StatusActive},
		{"tok_gone_never", now.Add(-95 * day), nil, tokend.StatusRevoked},
	} {
		tok := newToken(sp.id, "app_a", fmt.Sprintf("token %d", i))
		tok.CreatedAt, tok.LastUsedAt, tok.Status = sp.created, sp.lastUsed, sp.status
		mustCreateToken(t, s, tok)
	}
	cases := []struct {
		name string
		f    tokend.TokenFilter
		want []string
	}{
		{"30 days: last use at the bound counts, never used counts from creation",
			tokend.TokenFilter{UnusedFor: tokend.Duration(30 * day)},
			[]string{"tok_used_30d", "tok_used_91d", "tok_old_never", "tok_gone_never"}},
		{"90 days", tokend.TokenFilter{UnusedFor: tokend.Duration(90 * day)}, []string{"tok_used_91d", "tok_gone_never"}},
		{"with a status", tokend.TokenFilter{UnusedFor: tokend.Duration(30 * day), Status: tokend.StatusActive},
			[]string{"tok_used_30d", "tok_old_never"}},
		{"with an app", tokend.TokenFilter{UnusedFor: tokend.Duration(90 * day), AppID: "app_a", Status: tokend.StatusRevoked},
			[]string{"tok_gone_never"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.f.Now, c.f.Sort = now, tokend.TokenSortName
			page, err := s.Tokens(t.Context(), c.f)
			if err != nil {
				t.Fatalf("Tokens: %v", err)
			}
			want := slices.Clone(c.want)
			slices.SortFunc(want, func(a, b string) int { return cmp.Compare(nameOf(page.Items, a), nameOf(page.Items, b)) })
			if d := diff(want, tokenIDs(page.Items)); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
			n, err := s.CountTokens(t.Context(), c.f)
			if err != nil || n != len(c.want) {
				t.Errorf("CountTokens = %d, %v; want %d", n, err, len(c.want))
			}
		})
	}
}

func nameOf(ts []tokend.Token, id string) string {
	for _, tok := range ts {
		if tok.ID == id {
			return tok.Name
		}
	}
	return "~" + id
}

func testListSearch(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	for i, sp := range []struct{ id, name, masked string }{
		{"tok_1111", "Deploy", "tkd_…x7Qa"},
		{"tok_2222", "x7qa in the name", "tkd_…AAAA"},
		{"tok_3333", "named tok_1111", "tkd_…Bx7Q"},
		{"tok_4444", "other", "acme_…x7Qa"},
	} {
		tok := newToken(sp.id, "app_a", sp.name)
		tok.Masked, tok.CreatedAt = sp.masked, at(time.Duration(i)*time.Second)
		mustCreateToken(t, s, tok)
	}
	for _, c := range []struct {
		name, q string
		want    []string
	}{
		{"a token id finds that token, and names holding it", "tok_1111", []string{"tok_3333", "tok_1111"}},
		{"an unknown token id finds nothing", "tok_9999", []string{}},
		{"the last 4 match the masked end, exact case, and names in any case", "x7Qa", []string{"tok_4444", "tok_2222", "tok_1111"}},
		{"other case of the last 4 matches names only", "X7QA", []string{"tok_2222"}},
		{"the last 4 do not match elsewhere in the masked form", "Bx7Q", []string{"tok_3333"}},
		{"not base62: a name search only", "x7Q%", []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := tokend.TokenFilter{Now: t0, Query: c.q}
			page, err := s.Tokens(t.Context(), f)
			if err != nil {
				t.Fatalf("Tokens: %v", err)
			}
			if d := diff(c.want, tokenIDs(page.Items)); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
			if n, err := s.CountTokens(t.Context(), f); err != nil || n != len(c.want) {
				t.Errorf("CountTokens = %d, %v; want %d", n, err, len(c.want))
			}
		})
	}
}

// sortSpecs makes 23 tokens with ties on every sort key, null keys, and ids
// shuffled against every order, so that only the id breaks ties.
func sortSpecs(t *testing.T, s tokend.Store) []tokend.Token {
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))
	names := []string{"beta", "Alpha", "beta", "gamma", "alpha", "Beta", "delta:1", "delta", "émile", "zulu"}
	var all []tokend.Token
	for i := range 23 {
		id := fmt.Sprintf("tok_%02d", (i*7)%23)
		tok := newToken(id, []string{"app_a", "app_b"}[i%2], names[i%len(names)]+fmt.Sprint(i/len(names)%2))
		if i%len(names) < 3 {
			tok.Name = names[i%len(names)] // equal names, in two apps
			tok.AppID = []string{"app_a", "app_b"}[i%2]
		}
		tok.CreatedAt = at(time.Duration(i/3) * time.Second)
		if i%4 != 0 {
			tok.ExpiresAt = ptr(at(time.Duration(i%3) * time.Hour))
		}
		if i%3 != 0 {
			tok.LastUsedAt = ptr(at(time.Duration(i%5) * time.Minute))
		}
		all = append(all, tok)
	}
	// Equal names in one app must not be live together: revoke the extra.
	seen := map[string]bool{}
	for i := range all {
		k := all[i].AppID + "/" + all[i].Name
		if seen[k] {
			all[i].Status, all[i].RevokedAt = tokend.StatusRevoked, ptr(t0)
		}
		seen[k] = true
		mustCreateToken(t, s, all[i])
	}
	return all
}

// wantOrder sorts as the stores must: by the key, nulls last in either
// order, then by id in the same order.
func wantOrder(ts []tokend.Token, sort string, desc bool) []string {
	ts = slices.Clone(ts)
	key := func(tok tokend.Token) (string, *time.Time) {
		switch sort {
		case tokend.TokenSortName:
			return tok.Name, nil
		case tokend.TokenSortExpires:
			return "", tok.ExpiresAt
		case tokend.TokenSortLastUsed:
			return "", tok.LastUsedAt
		}
		return "", &tok.CreatedAt
	}
	slices.SortFunc(ts, func(a, b tokend.Token) int {
		an, at := key(a)
		bn, bt := key(b)
		if sort != tokend.TokenSortName {
			if (at == nil) != (bt == nil) {
				if at == nil {
					return 1
				}
				return -1
			}
			if at != nil {
				an, bn = fmt.Sprintf("%020d", at.UnixMicro()), fmt.Sprintf("%020d", bt.UnixMicro())
			}
		}
		c := cmp.Or(cmp.Compare(an, bn), cmp.Compare(a.ID, b.ID))
		if desc {
			c = -c
		}
		return c
	})
	return tokenIDs(ts)
}

func testListSortPages(t *testing.T, s tokend.Store) {
	all := sortSpecs(t, s)
	for _, sort := range []string{"", tokend.TokenSortCreated, tokend.TokenSortName, tokend.TokenSortExpires, tokend.TokenSortLastUsed} {
		for _, order := range []string{"", tokend.OrderAsc, tokend.OrderDesc} {
			rs, desc, ok := tokend.TokenOrder(sort, order)
			if !ok {
				t.Fatalf("TokenOrder(%q, %q) refused", sort, order)
			}
			want := wantOrder(all, rs, desc)
			for _, limit := range []int{1, 4, 5, 22, 23, 24} {
				t.Run(fmt.Sprintf("sort %q order %q limit %d", sort, order, limit), func(t *testing.T) {
					got := allPages(t, limit, func(cursor string) (tokend.Page[tokend.Token], error) {
						return s.Tokens(t.Context(), tokend.TokenFilter{Now: t0, Sort: sort, Order: order, Limit: limit, Cursor: cursor})
					})
					if d := diff(want, tokenIDs(got)); d != "" {
						t.Errorf("ids over all pages (-want +got):\n%s", d)
					}
				})
			}
			t.Run(fmt.Sprintf("sort %q order %q in one app", sort, order), func(t *testing.T) {
				wantA := wantOrder(slices.DeleteFunc(slices.Clone(all), func(tok tokend.Token) bool { return tok.AppID != "app_a" }), rs, desc)
				got := allPages(t, 3, func(cursor string) (tokend.Page[tokend.Token], error) {
					return s.Tokens(t.Context(), tokend.TokenFilter{AppID: "app_a", Now: t0, Sort: sort, Order: order, Limit: 3, Cursor: cursor})
				})
				if d := diff(wantA, tokenIDs(got)); d != "" {
					t.Errorf("ids over all pages (-want +got):\n%s", d)
				}
			})
		}
	}
}

func testListSortCursor(t *testing.T, s tokend.Store) {
	sortSpecs(t, s)
	type so struct{ sort, order string }
	orders := []so{{"", ""}, {"name", "asc"}, {"name", "desc"}, {"created_at", "asc"}, {"expires_at", "asc"}, {"expires_at", "desc"}, {"last_used_at", "asc"}, {"last_used_at", "desc"}}
	for _, from := range orders {
		page, err := s.Tokens(t.Context(), tokend.TokenFilter{Now: t0, Sort: from.sort, Order: from.order, Limit: 2})
		if err != nil || page.NextCursor == "" {
			t.Fatalf("first page of %v: %v, cursor %q", from, err, page.NextCursor)
		}
		for _, to := range orders {
			fs, fd, _ := tokend.TokenOrder(from.sort, from.order)
			ts, td, _ := tokend.TokenOrder(to.sort, to.order)
			if fs == ts && fd == td {
				continue
			}
			_, err := s.Tokens(t.Context(), tokend.TokenFilter{Now: t0, Sort: to.sort, Order: to.order, Cursor: page.NextCursor})
			wantInvalidField(t, fmt.Sprintf("cursor of %v used with %v", from, to), err, "cursor")
		}
	}
}

func testListBadSort(t *testing.T, s tokend.Store) {
	for _, f := range []tokend.TokenFilter{
		{Sort: "secret_hash"}, {Sort: "name; DROP TABLE tokens"}, {Sort: "name", Order: "sideways"}, {Order: "ASC"},
	} {
		f.Now = t0
		_, err := s.Tokens(t.Context(), f)
		wantInvalidField(t, fmt.Sprintf("Tokens with sort %q order %q", f.Sort, f.Order), err, "sort")
	}
}
