package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/github"
	"github.com/tokend/tokend/internal/github/githubtest"
	"github.com/tokend/tokend/internal/httpapi"
)

// githubHarness is a harness that takes GitHub's reports signed by key.
func githubHarness(t testing.TB, opts harnessOpts) (*harness, githubtest.Key) {
	t.Helper()
	key := githubtest.NewKey(t, "4fe6b016179b74078ade7581abf4e84fb398c6fae4fb973972235b84fcd70ca3")
	set, err := github.ParseKeys(githubtest.ListOf(t, key))
	if err != nil {
		t.Fatal(err)
	}
	opts.github = set
	return newHarness(t, opts), key
}

// githubPost posts body to /v1/leaks/github signed by key as key id.
func (h *harness) githubPost(key githubtest.Key, id string, body []byte) resp {
	h.t.Helper()
	return h.do("POST", "/v1/leaks/github", "", body,
		github.HeaderKeyID, id, github.HeaderSignature, key.Sign(h.t, body))
}

func githubBody(t *testing.T, matches ...tokend.GitHubMatch) []byte {
	t.Helper()
	b, err := json.Marshal(matches)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGitHubReportAppliesTheLeakPolicy posts a signed report as GitHub
// would and sees each secret of a token handled by its app's policy and
// labelled true_positive (already revoked and rotated-out ones too), the
// others false_positive, in GitHub's feedback format and order.
func TestGitHubReportAppliesTheLeakPolicy(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h, key := githubHarness(t, st.opts)
			revokeApp := h.createApp(tokend.AppInput{Name: "shop", TokenPrefix: "shop"})
			notifyApp := h.createApp(tokend.AppInput{Name: "blog", TokenPrefix: "blog", LeakPolicy: tokend.LeakNotify})
			live, liveSec := h.createToken(tokend.TokenInput{AppID: revokeApp.ID, Name: "live"})
			gone, goneSec := h.createToken(tokend.TokenInput{AppID: revokeApp.ID, Name: "gone"})
			if r := h.do("POST", "/v1/tokens/"+gone.ID+"/revoke", h.owner, nil); r.status != http.StatusOK {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			rot, rotOld := h.createToken(tokend.TokenInput{AppID: notifyApp.ID, Name: "rotated"})
			var rotated httpapi.TokenWithSecret
			h.do("POST", "/v1/tokens/"+rot.ID+"/rotate", h.owner, map[string]any{"grace_period": "1h"}).json(t, &rotated)
			watched, watchedSec := h.createToken(tokend.TokenInput{AppID: notifyApp.ID, Name: "watched"})
			_ = h.code(liveSec) // cached: the revocation must reach the cache

			other := "shop_" + strings.Repeat("A", 43) + "_AAAAAA" // the shape, no token's
			url := "https://github.com/octo/repo/blob/0123456789abcdef/config.yml"
			matches := []tokend.GitHubMatch{
				{Token: liveSec, Type: "tokend_token", URL: url, Source: "content"},
				{Token: other, Type: "tokend_token", URL: url, Source: "content"},
				{Token: goneSec, Type: "tokend_token", Source: "commit"},
				{Token: rotOld, Type: "tokend_token", URL: url, Source: "gist"},
				{Token: watchedSec, Type: "tokend_token", URL: url, Source: "issue_comment"},
				{Token: "not a token at all", Type: "tokend_token"},
				{Token: liveSec, Type: "tokend_token", URL: url, Source: "content"}, // twice: acted on once
			}
			r := h.githubPost(key, key.ID, githubBody(t, matches...))
			if r.status != http.StatusOK {
				t.Fatalf("POST /v1/leaks/github = %d: %s", r.status, r.body)
			}
			var labels []tokend.GitHubLabel
			r.json(t, &labels)
			want := []string{"true_positive", "false_positive", "true_positive", "true_positive", "true_positive", "false_positive", "true_positive"}
			for i, l := range labels {
				if l.TokenRaw != matches[i].Token || l.TokenType != "tokend_token" || l.Label != want[i] {
					t.Errorf("label %d = %+v, want %s of the secret sent", i, l, want[i])
				}
			}
			if len(labels) != len(want) {
				t.Fatalf("%d labels, want %d: %s", len(labels), len(want), r.body)
			}

			for sec, code := range map[string]tokend.Code{liveSec: tokend.CodeRevoked, goneSec: tokend.CodeRevoked,
				rotated.Secret: tokend.CodeValid, watchedSec: tokend.CodeValid} {
				if got := h.code(sec); got != code {
					t.Errorf("after the report a secret answers %s, want %s", got, code)
				}
			}
			leaked := h.events(t, tokend.EventTokenLeaked, live.ID)
			if len(leaked) != 1 {
				t.Fatalf("%d token.leaked for the live token, want 1", len(leaked))
			}
			d := leaked[0].Data
			if d["source"] != "github" || d["url"] != url || d["github_source"] != "content" || d["action"] != "revoked" {
				t.Errorf("token.leaked data %v", d)
			}
			if n := len(h.events(t, tokend.EventTokenLeaked, gone.ID)); n != 0 {
				t.Errorf("the revoked token raised %d token.leaked", n)
			}
			for _, id := range []string{rot.ID, watched.ID} {
				if ev := h.events(t, tokend.EventTokenLeaked, id); len(ev) != 1 || ev[0].Data["action"] != "notified" {
					t.Errorf("token %s (notify): token.leaked %v", id, ev)
				}
			}
			var audit tokend.Page[tokend.Event]
			h.do("GET", "/v1/audit?action="+tokend.ActionTokenLeak+"&token_id="+live.ID, h.owner, nil).json(t, &audit)
			if len(audit.Items) != 1 || audit.Items[0].ActorName != "github secret scanning" || audit.Items[0].Details["source"] != "github" {
				t.Errorf("audit of the leak: %+v", audit.Items)
			}
			if strings.Contains(h.logs.String(), liveSec) || strings.Contains(h.logs.String(), other) {
				t.Error("a reported secret is in the log")
			}

			// The same report again (a replay) changes nothing more.
			if r := h.githubPost(key, key.ID, githubBody(t, matches[0])); r.status != http.StatusOK || !strings.Contains(string(r.body), "true_positive") {
				t.Fatalf("the replay: %d %s", r.status, r.body)
			}
			if n := len(h.events(t, tokend.EventTokenLeaked, live.ID)); n != 1 {
				t.Errorf("the replay raised token.leaked again (%d)", n)
			}
		})
	}
}

// TestGitHubReportRefused sends reports that are not GitHub's, or not
// well formed: each is a problem with its status, and nothing changes - an
// unsigned or mis-signed one is refused before its body is read as JSON.
func TestGitHubReportRefused(t *testing.T) {
	h, key := githubHarness(t, harnessOpts{})
	app := h.createApp(tokend.AppInput{Name: "shop"})
	tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci"})
	before := h.snapshot(app.ID, tok.ID)
	stranger := githubtest.NewKey(t, key.ID)
	good := githubBody(t, tokend.GitHubMatch{Token: sec, Type: "tokend_token"})
	signed := func(body []byte) []string {
		return []string{github.HeaderKeyID, key.ID, github.HeaderSignature, key.Sign(t, body)}
	}
	many := make([]tokend.GitHubMatch, tokend.MaxGitHubMatches+1)
	for i := range many {
		many[i] = tokend.GitHubMatch{Token: sec, Type: "t"}
	}
	huge := []byte(`[{"token":"` + strings.Repeat("a", tokend.MaxGitHubReportBytes) + `"}]`)
	cases := []struct {
		name    string
		body    []byte
		headers []string
		status  int
		field   string
	}{
		{"unsigned", good, nil, 401, ""},
		{"a key identifier without signature", good, []string{github.HeaderKeyID, key.ID}, 401, ""},
		{"a signature without key identifier", good, []string{github.HeaderSignature, key.Sign(t, good)}, 401, ""},
		{"an unknown key identifier", good, []string{github.HeaderKeyID, "other", github.HeaderSignature, key.Sign(t, good)}, 401, ""},
		{"signed by another key", good, []string{github.HeaderKeyID, key.ID, github.HeaderSignature, stranger.Sign(t, good)}, 401, ""},
		{"a tampered body", good, signed(append(good, ' ')), 401, ""},
		{"a signature that is not base64", good, []string{github.HeaderKeyID, key.ID, github.HeaderSignature, "%%%"}, 401, ""},
		{"unsigned and not JSON", []byte("{"), nil, 401, ""},
		{"unsigned with a name twice", []byte(`[{"token":"a","token":"b"}]`), nil, 401, ""},
		{"mis-signed and too many matches", githubBody(t, many...), []string{github.HeaderKeyID, key.ID, github.HeaderSignature, stranger.Sign(t, good)}, 401, ""},
		{"signed, too large", huge, signed(huge), 413, ""},
		{"signed, not JSON", []byte("[{"), signed([]byte("[{")), 400, ""},
		{"signed, empty", []byte(" "), signed([]byte(" ")), 400, ""},
		{"signed, an object", []byte(`{"token":"x"}`), signed([]byte(`{"token":"x"}`)), 422, ""},
		{"signed, a name twice", []byte(`[{"token":"a","token":"b"}]`), signed([]byte(`[{"token":"a","token":"b"}]`)), 422, "[0].token"},
		{"signed, no match", []byte(`[]`), signed([]byte(`[]`)), 422, ""},
		{"signed, too many matches", githubBody(t, many...), signed(githubBody(t, many...)), 422, ""},
		{"signed, a match that is a number", []byte(`[{"token":"` + sec + `"},1]`), signed([]byte(`[{"token":"` + sec + `"},1]`)), 422, "[1]"},
		{"signed, a match that is null", []byte(`[{"token":"` + sec + `"},null]`), signed([]byte(`[{"token":"` + sec + `"},null]`)), 422, "[1]"},
		{"signed, a match that is a string", []byte(`["` + sec + `"]`), signed([]byte(`["` + sec + `"]`)), 422, "[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", "/v1/leaks/github", "", c.body, c.headers...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			p := r.problem(t)
			if c.field != "" && !slices.Contains(fields(p), c.field) {
				t.Errorf("problem names %v, want %s: %s", fields(p), c.field, r.body)
			}
			if c.status == 401 && p.Code != tokend.ECodeUnauthenticated {
				t.Errorf("code %s, want %s", p.Code, tokend.ECodeUnauthenticated)
			}
			if got := h.code(sec); got != tokend.CodeValid {
				t.Errorf("the token answers %s after a refused report", got)
			}
			if after := h.snapshot(app.ID, tok.ID); after != before {
				t.Errorf("a refused report changed something:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
	t.Run("another content type", func(t *testing.T) {
		req := key.Request(t, h.srv.URL+"/v1/leaks/github", good)
		req.Header.Set("Content-Type", "text/plain")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("status %d, want 415", res.StatusCode)
		}
	})
}

// TestGitHubReportActsOnEveryUsableMatch: a signed report is acted on
// whatever its odd matches hold (the outside review's repro: one url over
// 2048 bytes, or holding U+200B, refused the whole report and left the
// leaked token active). Each url and source is kept as one line of text, cut
// on a character boundary; a token that is not a string, empty or too long
// is labelled false_positive without a lookup; one answer per match.
func TestGitHubReportActsOnEveryUsableMatch(t *testing.T) {
	h, key := githubHarness(t, harnessOpts{})
	app := h.createApp(tokend.AppInput{Name: "shop"})
	var toks []tokend.Token
	var secs []string
	for i := range 6 {
		tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: fmt.Sprintf("t%d", i)})
		toks, secs = append(toks, tok), append(secs, sec)
	}
	base := "https://github.com/octo/repo/blob/main/"
	long := base + strings.Repeat("d", 2100) + "/f.txt"
	longRunes := base + strings.Repeat("é", 1100) // 2 bytes each: 2048 falls inside one
	body := fmt.Sprintf(`[`+
		`{"token":%q,"type":"tokend_token","url":%q,"source":"content"},`+ // 0: url too long
		`{"token":%q,"type":"tokend_token","url":"%sa\u200bb.env","source":"content"},`+ // 1: zero-width space
		`{"token":%q,"type":"tokend_token","url":"%s\u200fcod.env","source":"commit\u0000"},`+ // 2: bidi mark, NUL in source
		`{"token":%q,"type":"tokend_token","url":"%s<ff>.env","source":%q},`+ // 3: invalid UTF-8, a long source
		`{"token":%q,"type":7,"url":%q,"source":["content"]},`+ // 4: type and source of another type, url cut inside a character
		`{"token":7,"type":"tokend_token"},`+ // 5: a token that is a number
		`{"token":%q,"type":"tokend_token"},`+ // 6: a token over 512 bytes
		`{"type":"tokend_token","url":"https://github.com/o/r"},`+ // 7: no token
		`{"token":%q,"type":"tokend_token","url":null,"extra":{"k":[1]}}`+ // 8: a null url
		`]`,
		secs[0], long, secs[1], base, secs[2], base, secs[3], base, strings.Repeat("s", 300), secs[4], longRunes,
		strings.Repeat("a", tokend.MaxLeakSecretLength+1), secs[5])
	body = strings.Replace(body, "<ff>", "\xff", 1) // a byte no UTF-8 text holds
	r := h.githubPost(key, key.ID, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/leaks/github = %d: %s", r.status, r.body)
	}
	var labels []tokend.GitHubLabel
	r.json(t, &labels)
	gl := func(raw, typ, label string) tokend.GitHubLabel {
		return tokend.GitHubLabel{TokenRaw: raw, TokenType: typ, Label: label}
	}
	want := []tokend.GitHubLabel{
		gl(secs[0], "tokend_token", "true_positive"), gl(secs[1], "tokend_token", "true_positive"),
		gl(secs[2], "tokend_token", "true_positive"), gl(secs[3], "tokend_token", "true_positive"),
		gl(secs[4], "", "true_positive"), gl("", "tokend_token", "false_positive"),
		gl(strings.Repeat("a", tokend.MaxLeakSecretLength+1), "tokend_token", "false_positive"),
		gl("", "tokend_token", "false_positive"), gl(secs[5], "tokend_token", "true_positive"),
	}
	if !slices.Equal(labels, want) {
		t.Fatalf("labels\n%+v\nwant\n%+v", labels, want)
	}
	for i, sec := range secs {
		if got := h.code(sec); got != tokend.CodeRevoked {
			t.Errorf("token %d answers %s after the report, want REVOKED", i, got)
		}
	}
	wantURL := []string{long[:tokend.MaxLeakURLLength], base + "a\ufffdb.env", base + "\ufffdcod.env", base + "\ufffd.env",
		longRunes[:tokend.MaxLeakURLLength-1], ""}
	wantSource := []string{"content", "content", "commit\ufffd", strings.Repeat("s", tokend.MaxLeakSourceLength), "", ""}
	for i, tok := range toks {
		ev := h.events(t, tokend.EventTokenLeaked, tok.ID)
		if len(ev) != 1 {
			t.Fatalf("token %d: %d token.leaked, want 1", i, len(ev))
		}
		url, _ := ev[0].Data["url"].(string)
		src, _ := ev[0].Data["github_source"].(string)
		if url != wantURL[i] || src != wantSource[i] {
			t.Errorf("token %d: token.leaked url %q (%d bytes), github_source %q; want %q, %q", i, url, len(url), src, wantURL[i], wantSource[i])
		}
		if msg := tokend.TextProblem(url, tokend.LineText) + tokend.TextProblem(src, tokend.LineText); msg != "" {
			t.Errorf("token %d: the event keeps text that is not one line: %s", i, msg)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, secs[0]) || strings.Contains(logs, "aaaaaaaaaa") {
		t.Error("a reported secret is in the log")
	}
}

// TestGitHubReportSentAgainChangesNothing: the same report again within
// tokend.LeakRepeatWindow (GitHub retrying, or whoever recorded one sending
// it again) changes nothing and raises nothing, even for a token an admin
// enabled since; the same secret found somewhere else is a new leak.
func TestGitHubReportSentAgainChangesNothing(t *testing.T) {
	h, key := githubHarness(t, harnessOpts{})
	app := h.createApp(tokend.AppInput{Name: "shop", LeakPolicy: tokend.LeakDisable})
	tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci"})
	report := githubBody(t, tokend.GitHubMatch{Token: sec, Type: "tokend_token", URL: "https://github.com/o/r", Source: "content"})
	send := func(report []byte) {
		t.Helper()
		if r := h.githubPost(key, key.ID, report); r.status != http.StatusOK || !strings.Contains(string(r.body), "true_positive") {
			t.Fatalf("the report: %d %s", r.status, r.body)
		}
	}
	enable := func() {
		t.Helper()
		if r := h.do("POST", "/v1/tokens/"+tok.ID+"/enable", h.owner, nil); r.status != http.StatusOK {
			t.Fatalf("enable: %d %s", r.status, r.body)
		}
	}
	send(report)
	enable()
	send(report) // the same signed bytes again
	if got := h.code(sec); got != tokend.CodeValid {
		t.Errorf("after the report sent again the enabled token answers %s, want VALID", got)
	}
	if n := len(h.events(t, tokend.EventTokenLeaked, tok.ID)); n != 1 {
		t.Errorf("%d token.leaked, want 1", n)
	}
	// Found somewhere else: a new leak, acted on.
	send(githubBody(t, tokend.GitHubMatch{Token: sec, Type: "tokend_token", URL: "https://github.com/o/fork", Source: "content"}))
	if got := h.code(sec); got != tokend.CodeDisabled {
		t.Errorf("after the secret was found elsewhere the token answers %s, want DISABLED", got)
	}
	if n := len(h.events(t, tokend.EventTokenLeaked, tok.ID)); n != 2 {
		t.Errorf("%d token.leaked, want 2", n)
	}
	enable()
	var rotated httpapi.TokenWithSecret
	if r := h.do("POST", "/v1/tokens/"+tok.ID+"/rotate", h.owner, map[string]any{"grace_period": "0s"}); r.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	} else {
		r.json(t, &rotated)
	}
	send(report)
	if got := h.code(rotated.Secret); got != tokend.CodeValid {
		t.Errorf("after the report of the rotated-out secret the token answers %s, want VALID", got)
	}
}

// TestGitHubRouteNeedsKeys: without --github-scanning-keys the path is no
// route, answered 404 in problem+json, and the OpenAPI document has no such
// operation; with them it has one, secured by the signature headers.
func TestGitHubRouteNeedsKeys(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/leaks/github", "", `[]`)
	if r.status != http.StatusNotFound {
		t.Fatalf("without keys: %d %s", r.status, r.body)
	}
	r.problem(t)
	if doc := h.do("GET", "/openapi.json", "", nil); strings.Contains(string(doc.body), "/v1/leaks/github") {
		t.Error("the document names /v1/leaks/github without keys")
	}

	h, _ = githubHarness(t, harnessOpts{})
	var doc struct {
		Paths map[string]map[string]struct {
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]struct{ Type, In, Name string } `json:"securitySchemes"`
		} `json:"components"`
	}
	h.do("GET", "/openapi.json", "", nil).json(t, &doc)
	op, ok := doc.Paths["/v1/leaks/github"]["post"]
	if !ok {
		t.Fatal("the document has no POST /v1/leaks/github")
	}
	if got := fmt.Sprint(op.Security); got != "[map[github-key-id:[] github-signature:[]]]" {
		t.Errorf("security %s, want both signature headers and no bearer", got)
	}
	for name, header := range map[string]string{"github-key-id": github.HeaderKeyID, "github-signature": github.HeaderSignature} {
		if s := doc.Components.SecuritySchemes[name]; s.Type != "apiKey" || s.In != "header" || s.Name != header {
			t.Errorf("security scheme %s = %+v", name, s)
		}
	}
}

// FuzzGitHubReport signs whatever body it is given, as GitHub would, and
// posts it: the answer is 200 with one label per match, or a 4xx problem,
// never a 500.
func FuzzGitHubReport(f *testing.F) {
	h, key := githubHarness(f, harnessOpts{})
	app := h.createApp(tokend.AppInput{Name: "fuzz", LeakPolicy: tokend.LeakNotify})
	_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "target"})
	for _, s := range []string{
		`[{"token":"` + sec + `","type":"tokend_token","url":"https://github.com/o/r","source":"content"}]`,
		`[{"token":"a","type":"t","extra":{"k":[1,2]}},{"token":"a","type":"t"}]`,
		`[{"TOKEN":"a"}]`, `[{"token":"a","token":"b"}]`, `[{"token":null}]`, `[null]`, `[1]`, `[[]]`, `null`, `{}`, `""`,
		"[{\"token\":\"\xff\"}]", `[{"token":"\u0000","source":"\u202e"}]`, `[{"token":"\ud800"}]`, `[` + strings.Repeat("[", 10000),
		`[{"token":"a"}] []`, ``, `[{"token":"` + strings.Repeat("a", 513) + `"}]`,
		`[{"token":"a","url":"https://github.com/o/r/\u200b` + strings.Repeat("u", 2100) + `","source":7}]`, `[{"token":1,"type":{}}]`,
	} {
		f.Add(s)
	}
	handler := h.srv.Config.Handler
	f.Fuzz(func(t *testing.T, body string) {
		req := key.Request(t, "/v1/leaks/github", []byte(body))
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			if w.Code < 400 || w.Code >= 500 || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%q: answered %d %s %s", body, w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			// Only what is no report is refused: a strict JSON array of
			// 1 to 1000 objects is acted on, whatever the objects hold.
			var objects []map[string]json.RawMessage
			if jsontext.Value(body).IsValid() && json.Unmarshal([]byte(body), &objects) == nil &&
				len(objects) > 0 && len(objects) <= tokend.MaxGitHubMatches && !slices.ContainsFunc(objects, func(o map[string]json.RawMessage) bool { return o == nil }) {
				t.Fatalf("%q, an array of objects, was refused: %d %s", body, w.Code, w.Body)
			}
			return
		}
		var matches []json.RawMessage
		var labels []tokend.GitHubLabel
		if err := json.Unmarshal([]byte(body), &matches); err != nil {
			t.Fatalf("%q is no array but was answered 200", body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &labels); err != nil || len(labels) != len(matches) {
			t.Fatalf("%q: %d matches answered %s (%v)", body, len(matches), w.Body, err)
		}
	})
}
