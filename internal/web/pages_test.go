package web

// Handler tests of the pages (home, tokens, applications, audit) over the
// harness: what each role may see and do, the create → reveal once flow,
// field errors, confirmations checked on the server, filters and
// pagination.

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// fixture is an app with a catalog and tokens in several states, made
// through the service as the system.
type fixture struct {
	app, other               tokend.App
	active, disabled, revoke tokend.Token
	// activeSecret is the secret of active.
	activeSecret string
}

func newFixture(t *testing.T, h *harness) fixture {
	t.Helper()
	ctx, sys := context.Background(), tokend.SystemActor
	var f fixture
	var err error
	if f.app, err = h.svc.CreateApp(ctx, sys, tokend.AppInput{Name: "Acme", TokenPrefix: "acme",
		Permissions: []string{"orders:read", "orders:write"}}); err != nil {
		t.Fatal(err)
	}
	if f.other, err = h.svc.CreateApp(ctx, sys, tokend.AppInput{Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	mk := func(app tokend.App, name string, typ tokend.TokenType) (tokend.Token, string) {
		in := tokend.TokenInput{AppID: app.ID, Name: name, Type: typ}
		if typ == tokend.TypePlugin {
			in.AllowedOrigins = []string{"https://app.example.com"}
		}
		tok, sec, err := h.svc.CreateToken(ctx, sys, in)
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
		return tok, sec.Reveal()
	}
	f.active, f.activeSecret = mk(f.app, "ci deploy", tokend.TypeStandard)
	f.disabled, _ = mk(f.app, "browser plugin", tokend.TypePlugin)
	if f.disabled, err = h.svc.DisableToken(ctx, sys, f.disabled.ID, 0); err != nil {
		t.Fatal(err)
	}
	f.revoke, _ = mk(f.other, "old cron", tokend.TypeStandard)
	if f.revoke, err = h.svc.RevokeToken(ctx, sys, f.revoke.ID, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

// withFixture is a harness with the fixture and a browser signed in as role.
func withFixture(t *testing.T, role tokend.Role) (*harness, fixture, *client) {
	t.Helper()
	h := newHarness(t)
	f := newFixture(t, h)
	return h, f, h.login(t, role)
}

// wantInBody fails the test unless the page holds every part.
func wantInBody(t *testing.T, res *response, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(res.Body, p) {
			t.Errorf("%s %s: the page lacks %q\n%s", res.Request.Method, res.Request.URL, p, res.Body)
		}
	}
}

var tokenRowRE = regexp.MustCompile(`<tr data-token-id="([^"]+)"`)

// tokenRows answers the ids of the token table's rows, in order.
func tokenRows(body string) []string {
	var ids []string
	for _, m := range tokenRowRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// linkOf answers the href of the element with data-testid id, unescaped.
func linkOf(body, testid string) string {
	m := regexp.MustCompile(`href="([^"]*)"[^>]*data-testid="` + testid + `"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

var secretRE = regexp.MustCompile(`id="new-secret"[^>]*value="([^"]+)"`)

// revealedSecret answers the secret shown in the page's reveal dialog.
func revealedSecret(body string) (string, bool) {
	m := secretRE.FindStringSubmatch(body)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[1]), true
}

func (h *harness) token(t *testing.T, id string) tokend.Token {
	t.Helper()
	tok, err := h.svc.Token(context.Background(), tokend.SystemActor, id)
	if err != nil {
		t.Fatalf("token %s: %v", id, err)
	}
	return tok
}

func (h *harness) verify(t *testing.T, sec string) tokend.Code {
	t.Helper()
	res, err := h.eng.Verify(context.Background(), tokend.VerifyRequest{Token: sec})
	if err != nil {
		t.Fatal(err)
	}
	return res.Code
}

func (h *harness) eventCount(t *testing.T) int {
	t.Helper()
	n := 0
	f := tokend.EventFilter{Limit: tokend.MaxPageSize}
	for {
		page, err := h.svc.Events(context.Background(), tokend.SystemActor, f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Items)
		if page.NextCursor == "" {
			return n
		}
		f.Cursor = page.NextCursor
	}
}

// createForm is a valid create form for app.
func createForm(app tokend.App, name string) url.Values {
	return url.Values{"app_id": {app.ID}, "name": {name}, "type": {"standard"}, "access": {"read_only"}, "expires_in": {"30d"}}
}

func TestViewerSeesEveryPageButChangesNothing(t *testing.T) {
	h, f, viewer := withFixture(t, tokend.RoleViewer)
	tok, app := "/tokens/"+f.active.ID, "/apps/"+f.app.ID

	for _, path := range []string{"/", "/tokens", tok, "/apps", app, "/audit", "/tokens?status=active"} {
		res := viewer.get(t, path)
		wantStatus(t, res, http.StatusOK)
		for _, control := range []string{`method="post" action="/tokens`, `method="post" action="/apps`, `/revoke"`, `/delete"`, `/revoke-all"`, "/rotate"} {
			if strings.Contains(res.Body, control) {
				t.Errorf("GET %s shows a viewer the control %s", path, control)
			}
		}
	}
	for _, path := range []string{"/tokens/new", tok + "/disable", tok + "/rotate", tok + "/revoke", tok + "/delete",
		"/apps/new", app + "/revoke-all", app + "/delete"} {
		wantStatus(t, viewer.get(t, path), http.StatusForbidden)
	}

	before := h.eventCount(t)
	csrf := viewer.csrf(t, "/tokens")
	posts := map[string]url.Values{
		"/tokens":                              createForm(f.app, "sneaky"),
		tok:                                    {"name": {"renamed"}, "version": {"1"}, "type": {"standard"}, "access": {"full_access"}, "expires_in": {"keep"}},
		tok + "/disable":                       {},
		tok + "/revoke":                        {},
		tok + "/rotate":                        {"grace_period": {"0s"}},
		tok + "/delete":                        {"confirm_name": {f.active.Name}},
		"/tokens/" + f.disabled.ID + "/enable": {},
		"/apps":                                {"name": {"sneaky"}},
		app:                                    {"name": {"renamed"}, "version": {"1"}},
		app + "/revoke-all":                    {},
		app + "/delete":                        {"confirm_name": {f.app.Name}},
	}
	for path, form := range posts {
		form.Set("csrf", csrf)
		wantStatus(t, viewer.post(t, path, form), http.StatusForbidden)
	}
	if after := h.eventCount(t); after != before {
		t.Errorf("the viewer's posts wrote %d audit events", after-before)
	}
	if got := h.token(t, f.active.ID); got.Status != tokend.StatusActive || got.Version != f.active.Version {
		t.Errorf("the viewer changed the token: %+v", got)
	}
	if got := h.token(t, f.disabled.ID); got.Status != tokend.StatusDisabled {
		t.Errorf("the viewer enabled the token: %s", got.Status)
	}
	if a, err := h.svc.App(context.Background(), tokend.SystemActor, f.app.ID); err != nil || a.Name != f.app.Name {
		t.Errorf("the viewer changed the app: %+v %v", a, err)
	}
}

func TestAdminActsOnTokensFromTheirPages(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	tok := "/tokens/" + f.active.ID

	page := admin.get(t, tok)
	wantStatus(t, page, http.StatusOK)
	for _, a := range []string{"disable", "rotate", "revoke", "delete"} {
		if !strings.Contains(page.Body, `data-testid="action-`+a+`"`) || !strings.Contains(page.Body, `id="dlg-`+a+`"`) {
			t.Errorf("the token page offers no %s button with its dialog", a)
		}
		wantStatus(t, admin.get(t, tok+"/"+a), http.StatusOK) // the page without JavaScript
	}

	steps := []struct {
		action string
		want   tokend.Status
		code   tokend.Code
	}{
		{"disable", tokend.StatusDisabled, tokend.CodeDisabled},
		{"enable", tokend.StatusActive, tokend.CodeValid},
		{"revoke", tokend.StatusRevoked, tokend.CodeRevoked},
	}
	for _, s := range steps {
		wantRedirect(t, admin.submit(t, tok, tok+"/"+s.action, nil), tok)
		if got := h.token(t, f.active.ID).Status; got != s.want {
			t.Fatalf("after %s: status %s, want %s", s.action, got, s.want)
		}
		if code := h.verify(t, f.activeSecret); code != s.code {
			t.Errorf("after %s: the secret verifies %s, want %s", s.action, code, s.code)
		}
	}
	if body := admin.get(t, tok).Body; !strings.Contains(body, "revoked") {
		t.Errorf("the flash or the page does not say revoked:\n%s", body)
	}
	// A revoked token cannot be enabled: the confirmation says why.
	res := admin.submit(t, "/tokens", tok+"/enable", nil)
	wantStatus(t, res, http.StatusConflict)
	wantInBody(t, res, "revocation is permanent")
}

func TestCreateRevealsTheSecretOnce(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)

	// The dialog on the list and the page without JavaScript hold the form.
	for _, p := range []string{"/tokens", "/tokens/new"} {
		if body := admin.get(t, p).Body; !strings.Contains(body, `data-testid="create-token-form"`) {
			t.Errorf("%s has no create form", p)
		}
	}
	form := createForm(f.app, "deploy bot")
	form.Set("access", "custom")
	form.Set("perm_"+f.app.ID, "orders:write")
	form.Set("perm_"+f.other.ID, "ignored:read") // another app's boxes do not count
	form.Set("allowed_ips", "203.0.113.0/24\n2001:db8::/32")
	form.Set("rate_limit", "100")
	form.Set("rate_window", "1m")
	form.Set("max_uses", "5")
	res := admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/tokens/")
	tok := h.token(t, id)
	if tok.Name != "deploy bot" || tok.Access != tokend.AccessCustom || !slices.Equal(tok.Permissions, []string{"orders:write"}) ||
		len(tok.AllowedIPs) != 2 || tok.RateLimit == nil || tok.RateLimit.Limit != 100 ||
		time.Duration(tok.RateLimit.Window) != time.Minute || tok.MaxUses == nil || *tok.MaxUses != 5 || tok.ExpiresAt == nil {
		t.Fatalf("created %+v", tok)
	}

	page := admin.get(t, res.Location())
	wantStatus(t, page, http.StatusOK)
	sec, ok := revealedSecret(page.Body)
	if !ok {
		t.Fatalf("the token page after create shows no secret:\n%s", page.Body)
	}
	if !strings.Contains(page.Body, "cannot be shown again") || !strings.Contains(page.Body, `data-copy="new-secret"`) {
		t.Error("the reveal dialog lacks the warning or the copy button")
	}
	if v, err := h.eng.Verify(context.Background(), tokend.VerifyRequest{Token: sec, IP: "203.0.113.5"}); err != nil || v.Code != tokend.CodeValid {
		t.Errorf("the revealed secret verifies %+v %v", v, err)
	}
	if got := page.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("the page with the secret has Cache-Control %q", got)
	}
	for _, p := range []string{res.Location(), "/tokens", "/"} {
		if body := admin.get(t, p).Body; strings.Contains(body, sec) || strings.Contains(body, `id="new-secret"`) {
			t.Errorf("GET %s shows the secret again", p)
		}
	}
	// Another browser of the same user never gets it either.
	if _, ok := revealedSecret(h.login(t, tokend.RoleAdmin).get(t, res.Location()).Body); ok {
		t.Error("another session saw the secret")
	}
}

func TestCreateShowsFieldErrorsNextToTheFieldsAndKeepsTheValues(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	form := createForm(f.app, strings.Repeat("n", 51))
	form.Set("description", "kept <b>as typed</b>")
	form.Set("type", "plugin") // without origins
	form.Set("access", "custom")
	form.Set("allowed_ips", "10.0.0.0/8\nnot-an-ip")
	res := admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)

	// Each message sits between its control and the next one.
	order := []struct{ control, message string }{
		{`id="f-name"`, "Must be at most 50 characters (it has 51)."},
		{`id="f-description"`, ""},
		{`id="f-access-custom"`, ""},
		{`name="perm_` + f.app.ID + `"`, "Must list at least one permission for access custom."},
		{`id="f-expiry"`, ""},
		{`id="f-ips"`, `&#34;not-an-ip&#34; is not an IP range`},
		{`id="f-origins"`, "A plugin token needs at least one allowed origin."},
		{`id="f-rate"`, ""},
	}
	for i, o := range order {
		if o.message == "" {
			continue
		}
		// The summary at the top lists the messages too: look after the control.
		at := strings.Index(res.Body, o.control)
		msg := -1
		if at >= 0 {
			if m := strings.Index(res.Body[at:], o.message); m >= 0 {
				msg = at + m
			}
		}
		next := strings.Index(res.Body, order[i+1].control)
		if at < 0 || msg < at || msg > next {
			t.Errorf("%q is not shown after %s and before %s (at %d, %d, %d)", o.message, o.control, order[i+1].control, at, msg, next)
		}
	}
	wantInBody(t, res, `value="`+strings.Repeat("n", 51)+`"`, "kept &lt;b&gt;as typed&lt;/b&gt;", "not-an-ip",
		`id="f-type-plugin" name="type" value="plugin" checked`)
	list, err := h.svc.Tokens(context.Background(), tokend.SystemActor, tokend.TokenFilter{AppID: f.app.ID})
	if err != nil || len(list.Items) != 2 {
		t.Errorf("a refused create stored a token: %d tokens, %v", len(list.Items), err)
	}

	// Problems the form finds itself come back the same way.
	form = createForm(f.app, "ok name")
	form.Set("rate_limit", "many")
	form.Set("expires_in", "custom")
	res = admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "The limit must be a whole number of requests.", "Choose the date on which the token expires.")
	// A past custom date is refused by the service's rule, on the expiry.
	form.Set("rate_limit", "")
	form.Set("expires_on", h.clock.Now().AddDate(0, 0, -2).Format("2006-01-02"))
	res = admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Must be in the future.")
	// A custom date in the future works through the whole of that day.
	day := h.clock.Now().AddDate(0, 0, 10).Format("2006-01-02")
	form.Set("expires_on", day)
	res = admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusSeeOther)
	exp := h.token(t, strings.TrimPrefix(res.Location(), "/tokens/")).ExpiresAt
	if exp == nil || exp.Format("2006-01-02 15:04:05") != day+" 23:59:59" {
		t.Errorf("custom date %s: expires %v", day, exp)
	}
}

func TestDeleteNeedsTheNameTyped(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	tok := "/tokens/" + f.active.ID

	res := admin.submit(t, tok, tok+"/delete", url.Values{"confirm_name": {"ci deplo"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Type the token&#39;s name exactly as shown to confirm.")
	h.token(t, f.active.ID) // still there

	wantRedirect(t, admin.submit(t, tok, tok+"/delete", url.Values{"confirm_name": {"ci deploy"}}), "/tokens")
	if _, err := h.svc.Token(context.Background(), tokend.SystemActor, f.active.ID); tokend.CodeOf(err) != tokend.ECodeNotFound {
		t.Errorf("after delete: %v", err)
	}
	if code := h.verify(t, f.activeSecret); code != tokend.CodeNotFound {
		t.Errorf("a deleted token verifies %s", code)
	}
	wantStatus(t, admin.get(t, tok), http.StatusNotFound)
}

func TestRotateRevealsTheNewSecretAndKeepsTheOldForTheGrace(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	tok := "/tokens/" + f.active.ID

	res := admin.submit(t, tok, tok+"/rotate", url.Values{"grace_period": {"1h"}})
	wantRedirect(t, res, tok)
	sec, ok := revealedSecret(admin.get(t, tok).Body)
	if !ok {
		t.Fatal("no new secret after rotate")
	}
	if sec == f.activeSecret || h.verify(t, sec) != tokend.CodeValid || h.verify(t, f.activeSecret) != tokend.CodeValid {
		t.Error("the new secret or the old one within the grace period does not verify")
	}
	if _, ok := revealedSecret(admin.get(t, tok).Body); ok {
		t.Error("the rotated secret is shown twice")
	}
	res = admin.submit(t, tok, tok+"/rotate", url.Values{"grace_period": {"forever"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Choose a grace period from the list.")
}

func TestEditIsVersionChecked(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	tok := "/tokens/" + f.active.ID
	edit := url.Values{
		"version": {strconv.FormatInt(f.active.Version, 10)}, "name": {"ci deploy v2"}, "description": {"builds"},
		"type": {"standard"}, "access": {"custom"}, "perm_" + f.app.ID: {"orders:read"}, "expires_in": {"keep"},
		"allowed_ips": {""}, "allowed_origins": {""}, "rate_limit": {"10"}, "rate_window": {"1s"}, "max_uses": {""},
	}
	// Someone else changes it first.
	desc := "changed elsewhere"
	if _, err := h.svc.UpdateToken(context.Background(), tokend.SystemActor, f.active.ID, tokend.TokenPatch{Description: &desc}, 0); err != nil {
		t.Fatal(err)
	}
	res := admin.submit(t, tok, tok, edit)
	wantStatus(t, res, http.StatusPreconditionFailed)
	wantInBody(t, res, `data-testid="stale"`, `value="ci deploy v2"`)
	if got := h.token(t, f.active.ID); got.Name != "ci deploy" || got.Description != desc {
		t.Errorf("a stale edit changed the token: %+v", got)
	}

	edit.Set("version", strconv.FormatInt(h.token(t, f.active.ID).Version, 10))
	res = admin.submit(t, tok, tok, edit)
	wantRedirect(t, res, tok)
	got := h.token(t, f.active.ID)
	if got.Name != "ci deploy v2" || got.Description != "builds" || got.Access != tokend.AccessCustom ||
		!slices.Equal(got.Permissions, []string{"orders:read"}) || got.RateLimit == nil || got.RateLimit.Limit != 10 ||
		!got.ExpiresAt.Equal(*f.active.ExpiresAt) {
		t.Errorf("after the edit: %+v", got)
	}

	// A field error on edit shows next to the field.
	edit.Set("version", strconv.FormatInt(got.Version, 10))
	edit.Set("allowed_origins", "ftp://nope")
	res = admin.submit(t, tok, tok, edit)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "is not an origin such as https://app.example.com")
}

func TestTokenListFiltersAndPages(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	system := ""
	for _, id := range tokenRows(admin.get(t, "/tokens").Body) {
		if !slices.Contains([]string{f.active.ID, f.disabled.ID, f.revoke.ID}, id) {
			system = id // the bootstrap admin token
		}
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{f.revoke.ID, f.disabled.ID, f.active.ID, system}},
		{"?app_id=" + f.app.ID, []string{f.disabled.ID, f.active.ID}},
		{"?status=disabled", []string{f.disabled.ID}},
		{"?status=revoked", []string{f.revoke.ID}},
		{"?type=plugin", []string{f.disabled.ID}},
		{"?q=DEPLOY", []string{f.active.ID}},
		{"?app_id=" + f.app.ID + "&status=active", []string{f.active.ID}},
		{"?q=nothing-like-this", nil},
	}
	for _, c := range cases {
		res := admin.get(t, "/tokens"+c.query)
		wantStatus(t, res, http.StatusOK)
		// Tokens made in the same second come in id order: compare sets.
		if got := tokenRows(res.Body); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(c.want))) {
			t.Errorf("/tokens%s: rows %v, want %v", c.query, got, c.want)
		}
	}
	if body := admin.get(t, "/tokens?q=nothing-like-this").Body; !strings.Contains(body, "No tokens match") {
		t.Error("no empty state for filters that match nothing")
	}
	// A hand-made bad filter is a 400 page that says why, never a 500.
	res := admin.get(t, "/tokens?status=lost")
	wantStatus(t, res, http.StatusBadRequest)
	wantInBody(t, res, "must be active, disabled, revoked or expired")
	wantStatus(t, admin.get(t, "/tokens?cursor=garbage"), http.StatusBadRequest)

	// Pages of two: every token once, Next until the end, First from later pages.
	for i := range 3 {
		if _, _, err := h.svc.CreateToken(context.Background(), tokend.SystemActor,
			tokend.TokenInput{AppID: f.app.ID, Name: fmt.Sprintf("extra %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	next := "/tokens?limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		body := admin.get(t, next).Body
		rows := tokenRows(body)
		if len(rows) == 0 || len(rows) > 2 {
			t.Fatalf("%s: %d rows", next, len(rows))
		}
		seen = append(seen, rows...)
		if first := linkOf(body, "first-page"); (pages > 0) != (first == "/tokens?limit=2") {
			t.Errorf("page %d: first page link %q", pages, first)
		}
		next = linkOf(body, "next-page")
	}
	if len(seen) != 7 || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != 7 {
		t.Errorf("pages showed %d rows, %v", len(seen), seen)
	}
}

func TestEmptyStatesExplainWhatToDo(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	// Only the system app exists: tokens can be made for it, and the
	// bootstrap token is listed, so look at an app with none.
	app, err := h.svc.CreateApp(context.Background(), tokend.SystemActor, tokend.AppInput{Name: "Fresh"})
	if err != nil {
		t.Fatal(err)
	}
	body := admin.get(t, "/tokens?app_id="+app.ID).Body
	if !strings.Contains(body, `data-testid="empty-state"`) {
		t.Errorf("no empty state:\n%s", body)
	}
}

func TestRevokeAllStatesHowManyAndRevokesThem(t *testing.T) {
	h := newHarness(t)
	f := newFixture(t, h)
	ctx := context.Background()
	expiring, _, err := h.svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: f.app.ID, Name: "short", ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.RevokeToken(ctx, tokend.SystemActor, mustToken(t, h, f.app, "gone").ID, 0); err != nil {
		t.Fatal(err)
	}
	other, _, err := h.svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: f.other.ID, Name: "untouched"})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Hour) // "short" has expired
	admin := h.login(t, tokend.RoleAdmin)

	app := "/apps/" + f.app.ID
	for _, p := range []string{app, app + "/revoke-all"} {
		body := admin.get(t, p).Body
		if !strings.Contains(body, "This revokes <strong>3 tokens</strong>") || !strings.Contains(body, "(1 active, 1 disabled, 1 expired)") {
			t.Errorf("%s does not state the count:\n%s", p, body)
		}
	}
	res := admin.submit(t, app, app+"/revoke-all", nil)
	wantRedirect(t, res, app)
	if body := admin.get(t, app).Body; !strings.Contains(body, "Revoked 3 tokens.") {
		t.Errorf("no flash with the count:\n%s", body)
	}
	for _, id := range []string{f.active.ID, f.disabled.ID, expiring.ID} {
		if s := h.token(t, id).Status; s != tokend.StatusRevoked {
			t.Errorf("%s is %s", id, s)
		}
	}
	if s := h.token(t, other.ID).Status; s != tokend.StatusActive {
		t.Errorf("another app's token is %s", s)
	}
}

func mustToken(t *testing.T, h *harness, app tokend.App, name string) tokend.Token {
	t.Helper()
	tok, _, err := h.svc.CreateToken(context.Background(), tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestApplicationsCreateEditDelete(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	if body := admin.get(t, "/apps").Body; !strings.Contains(body, `data-testid="create-app-form"`) {
		t.Error("no create dialog on /apps")
	}
	res := admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "token_prefix": {"Shop!"},
		"permissions": {"orders:read\nBAD"}, "max_token_lifetime": {"soon"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Use a duration such as 90d")
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "token_prefix": {"Shop!"},
		"permissions": {"orders:read\nBAD"}, "max_token_lifetime": {"90d"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "Must be 1 to 16 lower-case letters", "&#34;BAD&#34; is not of the form resource:action")
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "token_prefix": {"shop"},
		"permissions": {"orders:read, orders:write"}, "max_token_lifetime": {"90d"}})
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/apps/")
	app, err := h.svc.App(context.Background(), tokend.SystemActor, id)
	if err != nil || app.TokenPrefix != "shop" || len(app.Permissions) != 2 || app.MaxTokenLifetime == nil {
		t.Fatalf("created %+v %v", app, err)
	}

	page := "/apps/" + id
	wantRedirect(t, admin.submit(t, page, page, url.Values{"version": {"1"}, "name": {"Shop EU"}, "token_prefix": {"shop"},
		"permissions": {"orders:read"}, "max_token_lifetime": {""}}), page)
	app, _ = h.svc.App(context.Background(), tokend.SystemActor, id)
	if app.Name != "Shop EU" || len(app.Permissions) != 1 || app.MaxTokenLifetime != nil {
		t.Errorf("after the edit: %+v", app)
	}
	res = admin.submit(t, page, page, url.Values{"version": {"1"}, "name": {"Shop US"}, "token_prefix": {"shop"}})
	wantStatus(t, res, http.StatusPreconditionFailed)
	wantInBody(t, res, `data-testid="stale"`)

	mustToken(t, h, app, "one")
	res = admin.submit(t, page, page+"/delete", url.Values{"confirm_name": {"Shop"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantRedirect(t, admin.submit(t, page, page+"/delete", url.Values{"confirm_name": {"Shop EU"}}), "/apps")
	if _, err := h.svc.App(context.Background(), tokend.SystemActor, id); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}

	// The system app is shown, never editable.
	sys := admin.get(t, "/apps/"+tokend.SystemAppID).Body
	if strings.Contains(sys, `data-testid="edit-app-form"`) || strings.Contains(sys, `action-delete-app`) {
		t.Error("the system app offers edit or delete")
	}
}

func TestHomeCountsAndActivity(t *testing.T) {
	h := newHarness(t)
	f := newFixture(t, h)
	gone, _, err := h.svc.CreateToken(context.Background(), tokend.SystemActor,
		tokend.TokenInput{AppID: f.app.ID, Name: "soon gone", ExpiresIn: "3d"})
	if err != nil {
		t.Fatal(err)
	}
	viewer := h.login(t, tokend.RoleViewer)
	body := viewer.get(t, "/").Body
	count := func(id string) string {
		m := regexp.MustCompile(`data-testid="` + id + `"><span class="stat-n">([^<]*)<`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return m[1]
	}
	// Active: ci deploy and soon gone; the bootstrap admin token is apart.
	if a, e, r := count("count-active"), count("count-expiring"), count("count-revoked"); a != "2" || e != "1" || r != "1" {
		t.Errorf("counts active %q, expiring %q, revoked %q\n%s", a, e, r, body)
	}
	if !strings.Contains(body, "soon gone</a>") || !strings.Contains(body, "revoked the token") {
		t.Errorf("no expiring token or no recent activity:\n%s", body)
	}
	// The expiring count links to the same tokens in the list.
	if got := tokenRows(viewer.get(t, "/tokens?status=expiring").Body); !slices.Equal(got, []string{gone.ID}) {
		t.Errorf("expiring tokens listed: %v", got)
	}
	if !strings.Contains(h.login(t, tokend.RoleAdmin).get(t, "/").Body, `href="/tokens/new"`) {
		t.Error("no Generate API token shortcut for an admin")
	}
}

func TestAuditLogFilters(t *testing.T) {
	h, f, viewer := withFixture(t, tokend.RoleViewer)
	events := func(query string) []string {
		res := viewer.get(t, "/audit"+query)
		wantStatus(t, res, http.StatusOK)
		var actions []string
		for _, m := range regexp.MustCompile(`<td data-action="([a-z_.]+)"`).FindAllStringSubmatch(res.Body, -1) {
			actions = append(actions, m[1])
		}
		return actions
	}
	if got := events("?action=token.revoke"); !slices.Equal(got, []string{"token.revoke"}) {
		t.Errorf("action filter: %v", got)
	}
	if got := events("?token_id=" + f.disabled.ID); !slices.Equal(got, []string{"token.disable", "token.create"}) {
		t.Errorf("token filter: %v", got)
	}
	if got := events("?app_id=" + f.other.ID); !slices.Equal(got, []string{"token.revoke", "token.create", "app.create"}) {
		t.Errorf("app filter: %v", got)
	}
	future := h.clock.Now().Add(time.Hour).Format(localMinute)
	if got := events("?since=" + url.QueryEscape(future)); len(got) != 0 {
		t.Errorf("since the future: %v", got)
	}
	if got := events("?until=" + url.QueryEscape(future) + "&limit=2"); len(got) != 2 {
		t.Errorf("two per page: %v", got)
	}
	res := viewer.get(t, "/audit?since=yesterday")
	wantStatus(t, res, http.StatusBadRequest)
	wantInBody(t, res, "From: enter a date and time")
	// The admin token page's trail is there for a reader of the audit log.
	if body := viewer.get(t, "/tokens/"+f.disabled.ID).Body; !strings.Contains(body, "token.disable") {
		t.Error("no audit trail on the token page")
	}
}

func TestTokenPageShowsUsageAndLastUse(t *testing.T) {
	h := newHarness(t)
	f := newFixture(t, h)
	hour := h.clock.Now().Truncate(time.Hour).Add(-3 * time.Hour)
	err := h.store.RecordUsage(context.Background(), tokend.UsageBatch{
		Counts: []tokend.UsageCount{
			{TokenID: f.active.ID, Hour: hour, Code: tokend.CodeValid, Count: 40},
			{TokenID: f.active.ID, Hour: hour, Code: tokend.CodeRateLimited, Count: 2},
			{TokenID: f.active.ID, Hour: hour.Add(-30 * 24 * time.Hour), Code: tokend.CodeValid, Count: 999}, // outside the chart
		},
		Last: []tokend.LastUse{{TokenID: f.active.ID, At: hour.Add(10 * time.Minute), IP: "203.0.113.9", Uses: 40}},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := h.login(t, tokend.RoleViewer).get(t, "/tokens/"+f.active.ID).Body
	for _, want := range []string{`data-testid="usage-chart"`, "40 valid, 2 refused", `class="bar-refused"`, "203.0.113.9", "RATE_LIMITED"} {
		if !strings.Contains(body, want) {
			t.Errorf("the token page lacks %q", want)
		}
	}
	if strings.Contains(body, "999") {
		t.Error("the chart counts usage older than 7 days")
	}
	if body := h.login(t, tokend.RoleViewer).get(t, "/tokens/"+f.disabled.ID).Body; !strings.Contains(body, `data-testid="usage-empty"`) {
		t.Error("no empty usage message")
	}
}

func TestMissingThingsAre404Pages(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	for _, p := range []string{"/tokens/tok_missing", "/tokens/tok_missing/rotate", "/apps/app_missing", "/apps/app_missing/delete"} {
		wantStatus(t, admin.get(t, p), http.StatusNotFound)
	}
	wantStatus(t, admin.submit(t, "/tokens", "/tokens/tok_missing/revoke", nil), http.StatusNotFound)
}

func TestChartScale(t *testing.T) {
	for _, c := range []struct{ in, want int64 }{{0, 2}, {1, 2}, {3, 5}, {5, 5}, {6, 10}, {11, 20}, {99, 100}, {101, 200}, {4999, 5000}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSafeBack(t *testing.T) {
	for in, want := range map[string]string{
		"/tokens?status=active": "/tokens?status=active", "//evil.example": "/d", "https://evil.example/": "/d",
		"/\\evil": "/d", "": "/d", "tokens": "/d", "/ok#frag": "/ok#frag",
	} {
		if got := safeBack(in, "/d"); got != want {
			t.Errorf("safeBack(%q) = %q, want %q", in, got, want)
		}
	}
}
