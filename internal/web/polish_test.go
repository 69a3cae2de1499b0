package web

// Tests of the dashboard's second pass (issue 11, "should fix"): times in
// words that cannot be misread, audit action names, the token page's edit
// button and danger zone, the users page, the application form's errors
// in one round, the generate dialog and the usage chart.

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func TestRelTimeSaysWhichSideOfNow(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		d    time.Duration
		want string
	}{
		{"now itself is past", 0, "less than a minute ago"},
		{"a second ahead", time.Second, "in less than a minute"},
		{"59 seconds ahead", 59 * time.Second, "in less than a minute"},
		{"59 seconds behind", -59 * time.Second, "less than a minute ago"},
		{"a minute ahead", time.Minute, "in 1 minute"},
		{"two minutes behind", -2 * time.Minute, "2 minutes ago"},
		{"59.5 minutes rounds to an hour", 59*time.Minute + 30*time.Second, "in 1 hour"},
		{"47 hours", 47 * time.Hour, "in 47 hours"},
		{"47.5 hours rounds to days", 47*time.Hour + 30*time.Minute, "in 2 days"},
		{"a 30-day token seconds later", 30*24*time.Hour - 5*time.Second, "in 30 days"},
		{"a 30-day token half a day later", 29*24*time.Hour + 13*time.Hour, "in 30 days"},
		{"29 days and 11 hours", 29*24*time.Hour + 11*time.Hour, "in 29 days"},
		{"59 days", 59 * 24 * time.Hour, "in 59 days"},
		{"90 days in months", 90 * 24 * time.Hour, "in 3 months"},
		{"two years", -2 * 365 * 24 * time.Hour, "2 years ago"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := relTime(now, now.Add(c.d)); got != c.want {
				t.Errorf("relTime(now%+v) = %q, want %q", c.d, got, c.want)
			}
		})
	}
}

func TestExpiryNamesTheState(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	for _, c := range []struct {
		name       string
		tok        tokend.Token
		want, when string
	}{
		{"fresh 30-day token", tokend.Token{Status: tokend.StatusActive, ExpiresAt: at(30*24*time.Hour - time.Second)}, "Expires in 30 days", "2026-03-31 11:59:59 UTC"},
		{"under a minute left", tokend.Token{Status: tokend.StatusActive, ExpiresAt: at(30 * time.Second)}, "Expires in less than a minute", "2026-03-01 12:00:30 UTC"},
		{"expired a moment ago", tokend.Token{Status: tokend.StatusExpired, ExpiresAt: at(-10 * time.Second)}, "Expired less than a minute ago", "2026-03-01 11:59:50 UTC"},
		{"expiring at this very second", tokend.Token{Status: tokend.StatusActive, ExpiresAt: at(0)}, "Expired less than a minute ago", "2026-03-01 12:00:00 UTC"},
		{"expired two minutes ago", tokend.Token{Status: tokend.StatusExpired, ExpiresAt: at(-2 * time.Minute)}, "Expired 2 minutes ago", "2026-03-01 11:58:00 UTC"},
		{"never", tokend.Token{Status: tokend.StatusActive}, "Never expires", ""},
		{"revoked with an expiry ahead", tokend.Token{Status: tokend.StatusRevoked, ExpiresAt: at(29 * 24 * time.Hour), RevokedAt: at(-3 * time.Hour)}, "Revoked 3 hours ago", "2026-03-01 09:00:00 UTC"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := expiryOf(now, c.tok)
			if e.Text() != c.want || e.Exact() != c.when {
				t.Errorf("expiry = %q (%q), want %q (%q)", e.Text(), e.Exact(), c.want, c.when)
			}
		})
	}
}

func TestTokenPagesSayExpiryInWordsWithTheExactTime(t *testing.T) {
	h, f, c := withFixture(t, tokend.RoleAdmin)
	ctx := context.Background()
	in := tokend.TokenInput{AppID: f.app.ID, Name: "thirty days", ExpiresIn: "30d"}
	fresh, _, err := h.svc.CreateToken(ctx, tokend.SystemActor, in)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(5 * time.Second)
	exact := fresh.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC")
	body := c.get(t, "/tokens/"+fresh.ID).Body
	wantInBody(t, &response{Body: body}, "Expires <time", ">in 30 days</time>", `title="`+exact+`"`, "("+exact+")")
	list := c.get(t, "/tokens").Body
	if !strings.Contains(list, ">in 30 days</time>") || strings.Contains(list, "in 29 days") {
		t.Error("the list does not say the fresh token expires in 30 days")
	}
	if _, err := h.svc.RevokeToken(ctx, tokend.SystemActor, fresh.ID, 0); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Minute)
	body = c.get(t, "/tokens/"+fresh.ID).Body
	wantInBody(t, &response{Body: body}, "Revoked <time", ">2 minutes ago</time>")
	if strings.Contains(body, "in 30 days") || strings.Contains(body, "in 29 days") {
		t.Error("a revoked token's page still counts down to its expiry")
	}
}

// TestEveryAuditActionHasAName reads package tokend's source: an Action
// constant added without a name in actionNames fails here.
func TestEveryAuditActionHasAName(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "../..", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if !strings.HasPrefix(n.Name, "Action") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok {
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						seen++
						if name, ok := actionNames[v]; !ok || name == "" || name == v {
							t.Errorf("tokend.%s (%q) has no name in actionNames", n.Name, v)
						}
					}
				}
			}
		}
	}
	if seen < 15 {
		t.Fatalf("found only %d Action constants in package tokend", seen)
	}
	for _, a := range auditActions {
		if _, ok := actionNames[a]; !ok {
			t.Errorf("the audit filter offers %q without a name", a)
		}
	}
}

func TestAuditLogShowsNamesNotCodes(t *testing.T) {
	h, f, c := withFixture(t, tokend.RoleOwner)
	if _, _, err := h.svc.RotateToken(context.Background(), h.users[tokend.RoleAdmin].Actor("203.0.113.4"), f.active.ID, 0, 0); err != nil {
		t.Fatal(err)
	}
	res := c.get(t, "/audit")
	wantInBody(t, res, "Token rotated", "Application created", ">ci deploy <span", `href="/tokens/`+f.active.ID+`"`,
		`<option value="token.rotate">Token rotated</option>`)
	row := ""
	for _, r := range strings.Split(res.Body, "<tr ") {
		if strings.Contains(r, `data-action="token.rotate"`) {
			row = r
		}
	}
	admin := h.users[tokend.RoleAdmin]
	if !strings.Contains(row, ">"+admin.Name+"</td>") {
		t.Errorf("the rotation's row does not name the actor: %s", row)
	}
	if strings.Contains(row, ">user:") || strings.Contains(row, ">"+admin.ID+"<") {
		t.Errorf("the rotation's row shows the actor's raw id: %s", row)
	}
	if !regexpTime.MatchString(row) {
		t.Errorf("the rotation's time has no seconds: %s", row)
	}
}

var regexpTime = regexp.MustCompile(`>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>`)

func TestUsersPageSpeaksLikeTheOthers(t *testing.T) {
	h := newHarness(t)
	c := h.login(t, tokend.RoleOwner)
	body := c.get(t, "/users").Body
	wantInBody(t, &response{Body: body}, `<span class="badge badge-role" data-testid="role">Owner</span>`,
		`<span class="badge badge-role" data-testid="role">Viewer</span>`, `<span class="badge badge-active">Active</span>`)
	if n := strings.Count(body, ">Change role<"); n != len(h.users) {
		t.Errorf("%d Change role controls for %d users", n, len(h.users))
	}
	if strings.Contains(body, `class="role-select"`) || strings.Contains(body, `>owner</option>`) {
		t.Error("the users page still shows a lower-case role select in every row")
	}
}

func TestSetupRecordsTheOwnersSignIn(t *testing.T) {
	h := newBareHarness(t)
	c := h.client()
	res := c.submit(t, "/setup", "/setup", url.Values{"name": {"Olivia Owner"}, "email": {"owner@example.com"},
		"password": {testPassword}, "confirm": {testPassword}, "token": {h.bootstrap}})
	wantRedirect(t, res, "/")
	body := c.get(t, "/users").Body
	i := strings.Index(body, `data-testid="last-sign-in"`)
	if i < 0 {
		t.Fatalf("no last sign-in column:\n%s", body)
	}
	if cell := body[i : i+200]; strings.Contains(cell, "Never") || !strings.Contains(cell, "<time") {
		t.Errorf("the owner's last sign-in after setup is not shown: %s", cell)
	}
}

func TestAppFormReportsEveryProblemInOneRound(t *testing.T) {
	h := newHarness(t)
	c := h.login(t, tokend.RoleAdmin)
	res := c.submit(t, "/apps/new", "/apps", url.Values{"name": {""}, "token_prefix": {"Bad-Prefix"},
		"permissions": {"not a permission"}, "max_token_lifetime": {"forever"}})
	wantStatus(t, res, 422)
	for _, id := range []string{"a-name", "a-prefix", "a-perms", "a-lifetime"} {
		if !strings.Contains(res.Body, `<a href="#`+id+`">`) {
			t.Errorf("the summary does not link to #%s", id)
		}
		i := strings.Index(res.Body, `id="`+id+`"`)
		if i < 0 || !strings.Contains(res.Body[i:min(len(res.Body), i+900)], `class="field-error"`) {
			t.Errorf("no message at the field %s", id)
		}
	}
	wantInBody(t, res, "There are 4 problems")
}

func TestAFieldShowsOneMessage(t *testing.T) {
	var fe formError
	fe.add("name", "must not be empty")
	fe.add("name", "must be at most 50 characters")
	if got := fe.Fields["name"]; len(got) != 1 || got[0] != "Must not be empty." {
		t.Errorf("name's messages = %q, want the first only", got)
	}
	s := summarize(&fe, "token")
	if len(s.Items) != 1 || s.Items[0].Href != "#f-name" || s.Items[0].Label != "Name" {
		t.Errorf("summary = %+v", s)
	}
}

func TestTokenPageEditBehindAButtonAndADangerZone(t *testing.T) {
	h, f, c := withFixture(t, tokend.RoleAdmin)
	body := c.get(t, "/tokens/"+f.active.ID).Body
	wantInBody(t, &response{Body: body}, `data-testid="action-edit"`, `<details id="edit" class="card edit-panel" data-testid="edit-panel">`,
		`data-testid="danger-zone"`, `class="button danger" href="/tokens/`+f.active.ID+`/revoke"`,
		`class="button danger-outline" href="/tokens/`+f.active.ID+`/delete"`)
	zone := body[strings.Index(body, `data-testid="danger-zone"`):]
	if strings.Index(body, `data-testid="action-revoke"`) < strings.Index(body, `data-testid="danger-zone"`) {
		t.Error("Revoke is outside the danger zone")
	}
	if strings.Count(zone, `class="button danger"`) != 1 {
		t.Error("the danger zone has not exactly one filled destructive button")
	}
	// Created by: the name, never the raw reference.
	created := body[strings.Index(body, `data-testid="created"`):]
	created = created[:strings.Index(created, "</dd>")]
	if strings.Contains(created, "system") || strings.Contains(created, "usr_") || !strings.Contains(created, " by ") {
		t.Errorf("created by shows a raw reference or nothing: %s", created)
	}
	// A form that comes back with errors opens the panel.
	form := url.Values{"name": {""}, "type": {"standard"}, "access": {"read_only"}, "expires_in": {"keep"},
		"version": {strconv.FormatInt(f.active.Version, 10)}}
	res := c.submit(t, "/tokens/"+f.active.ID, "/tokens/"+f.active.ID, form)
	wantStatus(t, res, 422)
	wantInBody(t, res, `data-testid="edit-panel" open>`, `data-testid="error-summary"`)
	// A token made by a user names the user.
	admin := h.users[tokend.RoleAdmin]
	tok, _, err := h.svc.CreateToken(context.Background(), admin.Actor("203.0.113.1"), tokend.TokenInput{AppID: f.app.ID, Name: "by admin"})
	if err != nil {
		t.Fatal(err)
	}
	body = c.get(t, "/tokens/"+tok.ID).Body
	wantInBody(t, &response{Body: body}, " by "+admin.Name+"</dd>")
	if strings.Contains(body, admin.ID) {
		i := strings.Index(body, admin.ID)
		t.Errorf("the token page shows the creator's raw id: %s", body[max(0, i-300):i+100])
	}
}

func TestGenerateDialogKeepsServerErrorsInTheDialog(t *testing.T) {
	h, f, c := withFixture(t, tokend.RoleAdmin)
	form := createForm(f.app, "")
	form.Set("type", "plugin")
	form.Set("in_dialog", "1")
	res := c.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, 422)
	wantInBody(t, res, `open data-open-on-load data-testid="create-dialog">`, `data-testid="tokens-table"`,
		`data-testid="error-summary"`, `<a href="#f-name">Name</a>`, `<a href="#f-origins">Allowed browser origins</a>`,
		`name="in_dialog" value="1"`)
	dialog := res.Body[strings.Index(res.Body, `id="create-dialog"`):]
	if i, j := strings.Index(dialog, `aria-invalid="true"`), strings.Index(dialog, `id="f-name"`); i < 0 || i < j {
		t.Error("the first field marked invalid in the dialog is not the name")
	}
	// Without the dialog (no JavaScript), the form's own page answers.
	form.Del("in_dialog")
	res = c.submit(t, "/tokens/new", "/tokens", form)
	wantStatus(t, res, 422)
	if strings.Contains(res.Body, `id="create-dialog"`) || !strings.Contains(res.Body, `data-testid="create-token-form"`) {
		t.Error("the page without the dialog did not show its own form")
	}
	if n, err := h.svc.CountTokens(context.Background(), tokend.SystemActor, tokend.TokenFilter{AppID: f.app.ID}); err != nil || n != 2 {
		t.Errorf("refused creates stored tokens: %d, %v", n, err)
	}
}

func TestGenerateFormOffersOnlyWhatTheAppAllows(t *testing.T) {
	h, f, c := withFixture(t, tokend.RoleAdmin)
	week := tokend.Duration(7 * 24 * time.Hour)
	capped, err := h.svc.CreateApp(context.Background(), tokend.SystemActor, tokend.AppInput{Name: "Capped", MaxTokenLifetime: &week})
	if err != nil {
		t.Fatal(err)
	}
	body := c.get(t, "/tokens/new?app_id="+capped.ID).Body
	wantInBody(t, &response{Body: body}, `<option value="unlimited" data-unlimited hidden disabled>No expiration</option>`,
		`<option value="30d" data-seconds="2592000" hidden disabled>`, `<option value="7d" data-seconds="604800" selected>`,
		`data-max-seconds="604800" selected>Capped`,
		`min="`+h.clock.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")+`"`,
		`data-required-when="type=plugin"`)
	// An app without a maximum offers every choice.
	body = c.get(t, "/tokens/new?app_id="+f.app.ID).Body
	if !strings.Contains(body, `<option value="unlimited" data-unlimited>No expiration</option>`) {
		t.Error("an app without a maximum lifetime does not offer No expiration")
	}
}

func TestUsageChartPerDayWithHourlyOnDemand(t *testing.T) {
	h, f, c := withFixture(t, tokend.RoleViewer)
	hour := h.clock.Now().Truncate(time.Hour)
	err := h.store.RecordUsage(context.Background(), tokend.UsageBatch{Counts: []tokend.UsageCount{
		{TokenID: f.active.ID, Hour: hour, Code: tokend.CodeValid, Count: 7},
		{TokenID: f.active.ID, Hour: hour.Add(-48 * time.Hour), Code: tokend.CodeValid, Count: 3},
	}})
	if err != nil {
		t.Fatal(err)
	}
	body := c.get(t, "/tokens/"+f.active.ID).Body
	wantInBody(t, &response{Body: body}, `viewBox="0 0 70 100" preserveAspectRatio="none"`, "Verifications per day over the last 7 days: 10 valid",
		`width="7" height="70"`, `data-testid="chart-hourly"`, `<div class="chart-x" aria-hidden="true"><span>`)
	if strings.Contains(body, "<text") {
		t.Error("the chart draws its labels inside the stretched SVG")
	}
	if strings.Count(body[strings.Index(body, `class="chart-x"`):], "<span>")-strings.Count(body[strings.Index(body, `</figure>`):], "<span>") != 7 {
		t.Error("the day axis has not seven labels")
	}
	body = c.get(t, "/tokens/"+f.active.ID+"?usage=hourly").Body
	wantInBody(t, &response{Body: body}, `viewBox="0 0 1680 100"`, "Verifications per hour over the last 7 days: 10 valid", `data-testid="chart-daily"`)
}

func TestChartDaysAreWholeUTCDays(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	usage := []tokend.UsageCount{
		{Hour: from, Code: tokend.CodeValid, Count: 1},
		{Hour: from.Add(23 * time.Hour), Code: tokend.CodeRevoked, Count: 2},
		{Hour: from.Add(6*24*time.Hour + 23*time.Hour), Code: tokend.CodeValid, Count: 4},
		{Hour: from.Add(7 * 24 * time.Hour), Code: tokend.CodeValid, Count: 100}, // after the span
		{Hour: from.Add(-time.Hour), Code: tokend.CodeValid, Count: 100},         // before it
	}
	c := newUsageChart(usage, from, false)
	if len(c.Bars) != 2 || c.Valid != 5 || c.Refused != 2 || c.Bars[0].X != 1 || c.Bars[1].X != 61 {
		t.Errorf("daily chart = %+v", c)
	}
	if c.Days[0] != "Sun 1" || c.Days[6] != "Sat 7" {
		t.Errorf("days = %v", c.Days)
	}
	if h := newUsageChart(usage, from, true); len(h.Bars) != 3 || h.Width != 1680 {
		t.Errorf("hourly chart: %d bars, width %d", len(h.Bars), h.Width)
	}
}
