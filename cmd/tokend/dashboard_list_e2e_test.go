package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
	"github.com/tokend/tokend/internal/sqlite"
)

// TestDashboardList walks the token list's sorting, search by the last 4
// characters of a secret, the "not used for" filter and badge, and an
// application's stale-token policy in its form, at 1280 and 390 px, in a
// real Chromium against a real `tokend serve`.
func TestDashboardList(t *testing.T) {
	dir := t.TempDir()
	d, s := startDashboard(t, dir)
	b := d.b
	l := &listWalk{d: d, dir: dir}
	s.run("first-run setup", d.setup)
	s.run("an application with a stale-token policy, from its form", l.appPolicy)
	s.run("tokens, one of them unused for 40 days", l.tokens)
	for _, w := range []struct{ width, height int64 }{{1280, 900}, {390, 844}} {
		l.width = w.width
		s.run(fmt.Sprintf("%d px: sort by a column", w.width), func(t *testing.T) {
			b.run(t, "sizing the window", chromedp.EmulateViewport(w.width, w.height))
			l.sort(t)
		})
		s.run(fmt.Sprintf("%d px: search by the last 4 of a secret", w.width), l.searchLast4)
		s.run(fmt.Sprintf("%d px: the stale filter and badge", w.width), l.stale)
		s.run(fmt.Sprintf("%d px: the policy in the app form", w.width), l.appForm)
	}
}

type listWalk struct {
	d     *dashboard
	dir   string
	width int64

	appID   string
	names   []string          // token names, as created
	secrets map[string]string // by name
	ids     map[string]string // by name
	staleID string
}

// rowNames answers the names of the token list's rows, in order.
func (l *listWalk) rowNames(t *testing.T) []string {
	t.Helper()
	return eval[[]string](t, l.d.b, `[...document.querySelectorAll('tr[data-token-id] .token-name')].map(e => e.textContent.trim())`)
}

// inView reports whether the element is rendered and wholly within the
// window's width, after scrolling it into view as a person would.
func (l *listWalk) inView(t *testing.T, sel string) bool {
	t.Helper()
	return eval[bool](t, l.d.b, fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		if (e === null || !e.checkVisibility({visibilityProperty: true})) return false;
		e.scrollIntoView({block: "center", inline: "nearest"});
		const r = e.getBoundingClientRect();
		return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth && r.top >= 0 && r.bottom <= window.innerHeight })()`, sel))
}

func (l *listWalk) appPolicy(t *testing.T) {
	b := l.d.b
	b.open(t, "/apps/new", 200)
	if !b.visible(t, "#a-unused") {
		t.Fatal("the app form has no visible stale-token policy field")
	}
	b.fill(t, "form.app-form", map[string]string{"name": "Shop", "disable_unused_after": "12h"})
	if st := b.navigate(t, "creating the app with a policy under a day", chromedp.Submit("#a-unused")); st != 422 {
		t.Fatalf("a 12h policy answered %d", st)
	}
	if msg := b.text(t, "main"); !strings.Contains(msg, "Must be at least 1d") {
		t.Fatalf("no message for a 12h policy; the page says: %s", msg)
	}
	b.check(t, "status of 422") // provoked: the form's answer to a bad value
	b.fill(t, "form.app-form", map[string]string{"name": "Shop", "disable_unused_after": "90d"})
	if st := b.navigate(t, "creating the app", chromedp.Submit("#a-unused")); st != 200 {
		t.Fatalf("creating the app answered %d", st)
	}
	loc := b.location(t)
	if !strings.HasPrefix(loc, "/apps/app_") {
		t.Fatalf("after creating the app: %s", loc)
	}
	l.appID = strings.TrimPrefix(loc, "/apps/")
	if got := b.text(t, `[data-testid="app-unused-policy"]`); got != "After 90d without use" {
		t.Errorf("the app page shows the policy as %q", got)
	}
}

func (l *listWalk) tokens(t *testing.T) {
	c, err := client.New(l.d.in.url, client.WithToken(l.d.in.bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l.names = []string{"delta", "alpha", "charlie", "bravo"}
	l.secrets, l.ids = map[string]string{}, map[string]string{}
	for _, n := range l.names {
		tok, sec, err := c.CreateToken(ctx, tokend.TokenInput{AppID: l.appID, Name: n, ExpiresIn: "90d"})
		if err != nil {
			t.Fatal(err)
		}
		l.secrets[n], l.ids[n] = sec, tok.ID
	}
	// "charlie" was last used 40 days ago: recorded as the server's usage
	// flush would, through a second handle on its database.
	st, err := sqlite.Open(ctx, filepath.Join(l.dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l.staleID = l.ids["charlie"]
	err = st.RecordUsage(ctx, tokend.UsageBatch{Last: []tokend.LastUse{{TokenID: l.staleID, At: time.Now().Add(-40 * 24 * time.Hour), IP: "192.0.2.7", Uses: 1}}})
	if err != nil {
		t.Fatal(err)
	}
}

func (l *listWalk) sort(t *testing.T) {
	b := l.d.b
	b.open(t, "/tokens?app_id="+l.appID, 200)
	if got := b.text(t, `[data-testid="token-total"]`); got != "4 tokens" {
		t.Errorf("the total reads %q, want 4 tokens", got)
	}
	if !l.inView(t, `[data-testid="token-total"]`) {
		t.Error("the total is not within the window")
	}
	if st := b.navigate(t, "clicking the Name header", chromedp.Click(`[data-testid="sort-name"]`)); st != 200 {
		t.Fatalf("sorting by name answered %d", st)
	}
	want := slices.Sorted(slices.Values(l.names))
	if got := l.rowNames(t); !slices.Equal(got, want) {
		t.Errorf("sorted by name: %v, want %v", got, want)
	}
	if got := eval[string](t, b, `document.querySelector('th[aria-sort]').getAttribute('aria-sort') + ' ' + document.querySelector('th[aria-sort]').innerText.trim()`); !strings.HasPrefix(got, "ascending Name") {
		t.Errorf("the sorted header is %q, want ascending Name", got)
	}
	b.shot(t, fmt.Sprintf("list-sorted-name-%d", l.width))
	// The keyboard: focus the header's link, Enter reverses the order.
	eval[bool](t, b, `(() => { document.querySelector('[data-testid="sort-name"]').focus(); return true })()`)
	if st := b.navigate(t, "pressing Enter on the Name header", chromedp.KeyEvent("\r")); st != 200 {
		t.Fatalf("Enter on the header answered %d", st)
	}
	slices.Reverse(want)
	if got := l.rowNames(t); !slices.Equal(got, want) {
		t.Errorf("sorted by name, descending: %v, want %v", got, want)
	}
	if got := eval[string](t, b, `document.querySelector('th[aria-sort]').getAttribute('aria-sort')`); got != "descending" {
		t.Errorf("aria-sort after Enter: %q", got)
	}
	// Last used: the one used comes first, then the never used.
	if st := b.navigate(t, "clicking the Last used header", chromedp.Click(`[data-testid="sort-last_used_at"]`)); st != 200 {
		t.Fatalf("sorting by last use answered %d", st)
	}
	if got := l.rowNames(t); len(got) != 4 || got[0] != "charlie" {
		t.Errorf("sorted by last use: %v, want charlie first", got)
	}
}

func (l *listWalk) searchLast4(t *testing.T) {
	b := l.d.b
	b.open(t, "/tokens", 200)
	sec := l.secrets["bravo"]
	last4 := sec[len(sec)-4:]
	if !l.inView(t, "#filter-q") {
		t.Error("the search field is not within the window")
	}
	b.fill(t, "form.filters", map[string]string{"q": last4})
	if st := b.navigate(t, "searching for "+last4, chromedp.Submit("#filter-q")); st != 200 {
		t.Fatalf("the search answered %d", st)
	}
	if got := l.rowNames(t); !slices.Contains(got, "bravo") {
		t.Errorf("searching %q (the end of bravo's secret) lists %v", last4, got)
	}
	masked := eval[string](t, b, fmt.Sprintf(`document.querySelector('tr[data-token-id=%q] .masked').innerText`, l.ids["bravo"]))
	if !strings.HasSuffix(masked, last4) {
		t.Errorf("bravo's row shows %q, which does not end with %q", masked, last4)
	}
	b.shot(t, fmt.Sprintf("list-search-last4-%d", l.width))
}

func (l *listWalk) stale(t *testing.T) {
	b := l.d.b
	b.open(t, "/tokens?app_id="+l.appID, 200)
	// Without a filter, the badge marks the one unused for 30 days.
	badges := eval[[]string](t, b, `[...document.querySelectorAll('[data-testid="stale-badge"]')].map(e => e.closest('tr').dataset.tokenId + ' ' + e.innerText.trim())`)
	if !slices.Equal(badges, []string{l.staleID + " Unused 30+ days"}) {
		t.Errorf("stale badges %v, want only %s", badges, l.staleID)
	}
	if !l.inView(t, "#filter-unused") {
		t.Error("the 'not used for' filter is not within the window")
	}
	// Choosing applies the filter at once (the select's change submits).
	if st := b.navigate(t, "choosing 30 days", chromedp.SetValue("#filter-unused", "30d")); st != 200 {
		t.Fatalf("the stale filter answered %d", st)
	}
	if got := l.rowNames(t); !slices.Equal(got, []string{"charlie"}) {
		t.Errorf("unused for 30 days: %v, want charlie", got)
	}
	if got := b.text(t, `[data-testid="token-total"]`); got != "1 token" {
		t.Errorf("the total reads %q", got)
	}
	if !l.inView(t, `[data-testid="stale-badge"]`) {
		t.Error("the stale badge cannot be brought into the window")
	}
	if got := b.text(t, `[data-testid="stale-badge"]`); got != "Unused 30+ days" {
		t.Errorf("the badge reads %q", got)
	}
	b.shot(t, fmt.Sprintf("list-stale-%d", l.width))
	// Home's card counts the same tokens and leads to them.
	b.open(t, "/", 200)
	card := b.text(t, `[data-testid="count-stale"]`)
	if !strings.Contains(card, "Stale (unused 30 days)") {
		t.Errorf("the Home card reads %q", card)
	}
	if !l.inView(t, `[data-testid="count-stale"]`) {
		t.Error("the stale card is not within the window")
	}
	b.shot(t, fmt.Sprintf("home-stale-%d", l.width))
	if st := b.navigate(t, "following the stale card", chromedp.Click(`[data-testid="count-stale"]`)); st != 200 {
		t.Fatalf("the stale card's list answered %d", st)
	}
	// The bootstrap admin token is new, so the stale tokens are charlie only.
	if got := l.rowNames(t); !slices.Equal(got, []string{"charlie"}) || !strings.HasPrefix(card, "1") {
		t.Errorf("the card says %q and lists %v", card, got)
	}
}

func (l *listWalk) appForm(t *testing.T) {
	b := l.d.b
	b.open(t, "/apps/"+l.appID, 200)
	if got := eval[string](t, b, `document.querySelector('#a-unused').value`); got != "90d" {
		t.Errorf("the edit form shows the policy as %q", got)
	}
	if !l.inView(t, "#a-unused") || !l.inView(t, `label[for="a-unused"]`) {
		t.Error("the policy field or its label is not within the window")
	}
	b.shot(t, fmt.Sprintf("app-policy-%d", l.width))
}
