package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tokend/tokend"
)

// TestDashboardActivity walks a token's recent activity and the leak
// warning in Chromium at 1280 and 390 px: verifications through /v1/verify
// and forward auth show on the token's page (the path without its query
// string); a secret replaced by rotation and used afterwards raises a banner
// on the token's page and on Home, which Dismiss clears.
func TestDashboardActivity(t *testing.T) {
	d, s := startDashboard(t, t.TempDir())
	a := &activityWalk{d: d}

	s.run("first-run setup", d.setup)
	s.run("a token verified through both doors", a.verifySome)
	s.run("the token page lists the verifications", a.tokenPage)
	s.run("an old secret used after rotation raises the warning", a.leak)
	s.run("Dismiss clears the warning", a.dismiss)
}

type activityWalk struct {
	d      *dashboard
	app    tokend.App
	tok    created
	tokURL string
}

// forwardAuth asks GET /v1/auth as a reverse proxy would, with headers.
func (a *activityWalk) forwardAuth(t *testing.T, sec string, headers ...string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", a.d.in.url+"/v1/auth", nil)
	req.Header.Set("Authorization", "Bearer "+sec)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// waitFor polls the API until ok answers true, within a deadline.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		<-tick.C
	}
}

func (a *activityWalk) verifySome(t *testing.T) {
	in, admin := a.d.in, a.d.in.bootstrap
	a.app = in.newApp(t, admin, "Shop")
	in.mustCall(t, 201, "POST", "/v1/tokens", admin, tokend.TokenInput{AppID: a.app.ID, Name: "orders sync",
		Access: tokend.AccessReadOnly}, &a.tok)
	a.tokURL = "/tokens/" + a.tok.Token.ID
	if got, _ := in.verifyAt(t, a.tok.Secret, "198.51.100.23"); got != 200 {
		t.Fatalf("/v1/verify = %d", got)
	}
	if st := a.forwardAuth(t, a.tok.Secret, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/orders?page=2&api_key=hunter2"); st != 200 {
		t.Fatalf("/v1/auth GET = %d", st)
	}
	if st := a.forwardAuth(t, a.tok.Secret, "X-Original-Method", "DELETE", "X-Original-URI", "/orders/7?token=hunter2"); st != 403 {
		t.Fatalf("/v1/auth DELETE with a read_only token = %d, want 403", st)
	}
	waitFor(t, "three rows of activity", func() bool {
		var got struct{ Items []tokend.Activity }
		in.mustCall(t, 200, "GET", "/v1"+a.tokURL+"/activity", admin, nil, &got)
		return len(got.Items) == 3
	})
}

func (a *activityWalk) tokenPage(t *testing.T) {
	b := a.d.b
	for _, w := range []struct {
		width, height int64
		shot          string
	}{{1280, 900, "act-01-token-1280"}, {390, 844, "act-02-token-390"}} {
		b.run(t, "sizing the window", chromedp.EmulateViewport(w.width, w.height))
		b.open(t, a.tokURL, 200)
		table := b.text(t, `[data-testid="activity-table"]`)
		for _, want := range []string{"DELETE /orders/7", "GET /orders", "INSUFFICIENT_PERMISSIONS", "VALID", "198.51.100.23", "127.0.0.1"} {
			if !strings.Contains(table, want) {
				t.Errorf("at %d px the activity table lacks %q:\n%s", w.width, want, table)
			}
		}
		if strings.Contains(table, "hunter2") || strings.Contains(table, "?") {
			t.Errorf("the activity shows a query string:\n%s", table)
		}
		// Newest first, times to the second.
		if strings.Index(table, "DELETE") > strings.Index(table, "198.51.100.23") {
			t.Errorf("activity not newest first:\n%s", table)
		}
		if !regexpSeconds.MatchString(table) {
			t.Errorf("no time with seconds in:\n%s", table)
		}
		// The outcome badge of the newest row is on screen, not off to the side.
		b.run(t, "scrolling to the activity", chromedp.ScrollIntoView(`[data-testid="activity-table"] tbody tr:first-child .badge`))
		if !inViewport(t, b, `[data-testid="activity-table"] tbody tr:first-child .badge`) {
			t.Errorf("at %d px the outcome badge is outside the window", w.width)
		}
		if sw := eval[int](t, b, "document.documentElement.scrollWidth"); sw > int(w.width) {
			t.Errorf("at %d px the page is %d px wide; sticking out: %v", w.width, sw, eval[[]string](t, b, overflowing))
		}
		b.shot(t, w.shot)
	}
	b.run(t, "sizing the window", chromedp.EmulateViewport(1280, 900))
}

func (a *activityWalk) leak(t *testing.T) {
	in, admin, b := a.d.in, a.d.in.bootstrap, a.d.b
	old := a.tok.Secret
	in.mustCall(t, 200, "POST", "/v1/tokens/"+a.tok.Token.ID+"/rotate", admin, map[string]any{}, &a.tok)
	if st, code := in.verifyAt(t, old, "203.0.113.9"); st != 200 || code != string(tokend.CodeRotated) {
		t.Fatalf("the old secret after rotation without grace: %d %s, want ROTATED", st, code)
	}
	waitFor(t, "the old-secret audit event", func() bool {
		var page tokend.Page[tokend.Event]
		in.mustCall(t, 200, "GET", "/v1/audit?action="+tokend.ActionTokenOldSecret, admin, nil, &page)
		return len(page.Items) > 0
	})
	for _, w := range []struct {
		width, height int64
		suffix        string
	}{{1280, 900, "1280"}, {390, 844, "390"}} {
		b.run(t, "sizing the window", chromedp.EmulateViewport(w.width, w.height))
		for i, p := range []string{a.tokURL, "/"} {
			page := []string{"token", "home"}[i]
			b.open(t, p, 200)
			sel := `[data-testid="leak-banner"]`
			if !b.visible(t, sel) {
				t.Fatalf("%s at %d px: no leak warning", p, w.width)
			}
			text := b.text(t, sel)
			for _, want := range []string{"A secret this token had before its rotation on", "from 203.0.113.9: it may have leaked. Rotate the token again or revoke it."} {
				if !strings.Contains(text, want) {
					t.Errorf("%s at %d px: the warning lacks %q: %s", p, w.width, want, text)
				}
			}
			if p == "/" && !strings.Contains(text, "orders sync") {
				t.Errorf("Home's warning does not name the token: %s", text)
			}
			if !inViewport(t, b, sel) || !inViewport(t, b, sel+` [data-testid="leak-dismiss"]`) {
				t.Errorf("%s at %d px: the warning or its Dismiss button is outside the window", p, w.width)
			}
			if sw := eval[int](t, b, "document.documentElement.scrollWidth"); sw > int(w.width) {
				t.Errorf("%s at %d px: the page is %d px wide; sticking out: %v", p, w.width, sw, eval[[]string](t, b, overflowing))
			}
			b.shot(t, fmt.Sprintf("act-%02d-leak-%s-%s", 3+i, page, w.suffix))
		}
	}
	b.run(t, "sizing the window", chromedp.EmulateViewport(1280, 900))
}

func (a *activityWalk) dismiss(t *testing.T) {
	in, admin, b := a.d.in, a.d.in.bootstrap, a.d.b
	b.open(t, "/", 200)
	if st := b.navigate(t, "dismissing", chromedp.Click(`[data-testid="leak-dismiss"]`)); st != 200 {
		t.Fatalf("dismiss answered %d", st)
	}
	if loc := b.location(t); loc != "/" {
		t.Errorf("after Dismiss the browser is on %s, want Home", loc)
	}
	for _, p := range []string{"/", a.tokURL} {
		b.open(t, p, 200)
		if b.exists(t, `[data-testid="leak-banner"]`) {
			t.Errorf("%s still warns after Dismiss", p)
		}
	}
	var page tokend.Page[tokend.Event]
	in.mustCall(t, 200, "GET", "/v1/audit?action="+tokend.ActionTokenLeakDismissed, admin, nil, &page)
	if len(page.Items) != 1 || page.Items[0].ActorName != "Olivia Owner" {
		b, _ := json.Marshal(page.Items)
		t.Errorf("the dismissal's audit entries: %s", b)
	}
	b.shot(t, "act-05-home-dismissed-1280")
}

var regexpSeconds = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`)

// inViewport reports whether the element matching sel lies within the
// window, horizontally and vertically, once scrolled to.
func inViewport(t *testing.T, b *browser, sel string) bool {
	t.Helper()
	b.run(t, "scrolling to "+sel, chromedp.ScrollIntoView(sel))
	return eval[bool](t, b, `(() => { const r = document.querySelector(`+jsString(sel)+`).getBoundingClientRect();
		return r.width > 0 && r.left >= 0 && r.top >= 0 && r.right <= document.documentElement.clientWidth + 1 && r.bottom <= innerHeight + 1 })()`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
