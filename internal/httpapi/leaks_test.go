package httpapi_test

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

// leakReport posts a report with the owner token and answers its results.
func (h *harness) leakReport(t *testing.T, rep any) []tokend.LeakResult {
	t.Helper()
	r := h.do("POST", "/v1/leaks", h.owner, rep)
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/leaks = %d: %s", r.status, r.body)
	}
	var a httpapi.LeakAnswer
	r.json(t, &a)
	return a.Results
}

// events answers the events of typ about a token.
func (h *harness) events(t *testing.T, typ, tokenID string) []tokend.Notification {
	t.Helper()
	r := h.do("GET", "/v1/events?type="+typ+"&token_id="+tokenID, h.owner, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/events = %d: %s", r.status, r.body)
	}
	var p tokend.Page[tokend.Notification]
	r.json(t, &p)
	return p.Items
}

// TestLeakReportPolicies reports one secret of each policy's app and sees
// each policy applied: the verification answer (the cache heard of the
// change), the result, token.leaked with source, url and action, and the
// status event the change raises.
func TestLeakReportPolicies(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			cases := []struct {
				policy tokend.LeakPolicy
				result string
				code   tokend.Code
				raises string
			}{
				{"", tokend.LeakResultRevoked, tokend.CodeRevoked, tokend.EventTokenRevoked},
				{tokend.LeakRevoke, tokend.LeakResultRevoked, tokend.CodeRevoked, tokend.EventTokenRevoked},
				{tokend.LeakDisable, tokend.LeakResultDisabled, tokend.CodeDisabled, tokend.EventTokenDisabled},
				{tokend.LeakNotify, tokend.LeakResultNotified, tokend.CodeValid, ""},
			}
			for i, c := range cases {
				app := h.createApp(tokend.AppInput{Name: fmt.Sprintf("app %d", i), LeakPolicy: c.policy})
				if want := cmp.Or(c.policy, tokend.LeakRevoke); app.LeakPolicy != want {
					t.Fatalf("app created with policy %q has %q, want %q", c.policy, app.LeakPolicy, want)
				}
				tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
				if got := h.code(sec); got != tokend.CodeValid { // cached now
					t.Fatalf("before: %s", got)
				}
				res := h.leakReport(t, tokend.LeakReport{Tokens: []string{sec}, Source: "gitleaks", URL: "https://git.example/c/1"})
				if want := []tokend.LeakResult{{TokenID: tok.ID, Result: c.result}}; !slices.Equal(res, want) {
					t.Fatalf("policy %q: results %+v, want %+v", c.policy, res, want)
				}
				if got := h.code(sec); got != c.code {
					t.Errorf("policy %q: verification answers %s, want %s", c.policy, got, c.code)
				}
				leaked := h.events(t, tokend.EventTokenLeaked, tok.ID)
				if len(leaked) != 1 {
					t.Fatalf("policy %q: %d token.leaked events, want 1", c.policy, len(leaked))
				}
				d := leaked[0].Data
				if d["id"] != tok.ID || d["source"] != "gitleaks" || d["url"] != "https://git.example/c/1" || d["action"] != c.result {
					t.Errorf("policy %q: token.leaked data %v", c.policy, d)
				}
				if c.raises != "" && len(h.events(t, c.raises, tok.ID)) != 1 {
					t.Errorf("policy %q: no %s event", c.policy, c.raises)
				}
				// Reported again: a revoked token stays as it is.
				again := h.leakReport(t, tokend.LeakReport{Tokens: []string{sec}})
				if c.policy == tokend.LeakRevoke && again[0].Result != tokend.LeakResultAlreadyRevoked {
					t.Errorf("reported twice: %+v, want already_revoked", again)
				}
			}
		})
	}
}

// TestLeakReportUnknownAndDuplicates: unknown, malformed and hostile
// secrets all answer {result: unknown} and nothing else; a secret given
// twice is acted on once; the answer, the events and the logs never hold a
// secret.
func TestLeakReportUnknownAndDuplicates(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
	secrets := []string{
		"tkd_thisisnotatokenofanyoneatall0000000",
		sec,
		"",
		"not a token",
		"\x00\x01bin",
		"\xff\xfe",
		"tkd_\u202egnp.exe",
		strings.Repeat("x", tokend.MaxLeakSecretLength),
		sec,
		sec[:len(sec)-1] + "A",
	}
	r := h.do("POST", "/v1/leaks", h.owner, tokend.LeakReport{Tokens: secrets})
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var a httpapi.LeakAnswer
	r.json(t, &a)
	unknown := tokend.LeakResult{Result: tokend.LeakResultUnknown}
	revoked := tokend.LeakResult{TokenID: tok.ID, Result: tokend.LeakResultRevoked}
	want := []tokend.LeakResult{unknown, revoked, unknown, unknown, unknown, unknown, unknown, unknown, revoked, unknown}
	if !slices.Equal(a.Results, want) {
		t.Fatalf("results\n%+v\nwant\n%+v", a.Results, want)
	}
	if n := len(h.events(t, tokend.EventTokenLeaked, tok.ID)); n != 1 {
		t.Errorf("a secret given twice raised %d token.leaked, want 1", n)
	}
	all := h.do("GET", "/v1/events", h.owner, nil)
	audit := h.do("GET", "/v1/audit", h.owner, nil)
	for where, text := range map[string]string{"answer": string(r.body), "events": string(all.body), "audit": string(audit.body), "logs": h.logs.String()} {
		if strings.Contains(text, sec) || strings.Contains(text, sec[len(sec)-12:]) {
			t.Errorf("the %s holds the secret", where)
		}
	}
}

// TestLeakReportRefusals: bad reports answer 422 and change nothing; a
// token without tokens:write is refused.
func TestLeakReportRefusals(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
	many := make([]string, tokend.MaxLeakSecrets+1)
	for i := range many {
		many[i] = sec
	}
	for name, body := range map[string]any{
		"101 secrets":           tokend.LeakReport{Tokens: many},
		"no secret":             tokend.LeakReport{Tokens: []string{}},
		"no tokens field":       map[string]any{"source": "x"},
		"a 513-byte secret":     tokend.LeakReport{Tokens: []string{sec, strings.Repeat("y", tokend.MaxLeakSecretLength+1)}},
		"a NUL in source":       tokend.LeakReport{Tokens: []string{sec}, Source: "git\x00leaks"},
		"a bidi override":       tokend.LeakReport{Tokens: []string{sec}, Source: "\u202eskaeltig"},
		"a long url":            tokend.LeakReport{Tokens: []string{sec}, URL: "https://x.example/" + strings.Repeat("a", tokend.MaxLeakURLLength)},
		"tokens not an array":   `{"tokens": "` + sec + `"}`,
		"a number among tokens": `{"tokens": ["` + sec + `", 1]}`,
		"unknown field":         map[string]any{"tokens": []string{sec}, "policy": "notify"},
	} {
		r := h.do("POST", "/v1/leaks", h.owner, body)
		if r.status != http.StatusUnprocessableEntity && r.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 422: %s", name, r.status, r.body)
			continue
		}
		r.problem(t)
		if strings.Contains(string(r.body), sec) {
			t.Errorf("%s: the refusal echoes the secret: %s", name, r.body)
		}
	}
	if got := h.code(sec); got != tokend.CodeValid {
		t.Errorf("after refused reports the token answers %s", got)
	}
	_, ro := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "ro", Access: tokend.AccessReadOnly})
	if r := h.do("POST", "/v1/leaks", ro, tokend.LeakReport{Tokens: []string{sec}}); r.status != http.StatusForbidden {
		t.Errorf("a read-only token: %d, want 403: %s", r.status, r.body)
	}
	if got := h.code(sec); got != tokend.CodeValid {
		t.Errorf("after a refused report the token answers %s", got)
	}
}

// TestAppLeakPolicyEdit: PATCH sets the policy, and refuses an unknown one
// or null.
func TestAppLeakPolicyEdit(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	r := h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"leak_policy": "notify"})
	var got tokend.App
	r.json(t, &got)
	if r.status != 200 || got.LeakPolicy != tokend.LeakNotify {
		t.Fatalf("PATCH leak_policy notify: %d %s", r.status, r.body)
	}
	for _, bad := range []any{"delete", nil, "", 1} {
		r := h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"leak_policy": bad})
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("leak_policy %#v: %d, want 422: %s", bad, r.status, r.body)
		}
	}
	if r := h.do("POST", "/v1/apps", h.owner, map[string]any{"name": "x", "leak_policy": "explode"}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("create with leak_policy explode: %d, want 422", r.status)
	}
}

// TestLeakReportRetiredSecretAndBigBody: a secret replaced by rotation is
// still the token's, and reporting it applies the policy; a 10 MB body is
// refused and changes nothing.
func TestLeakReportRetiredSecretAndBigBody(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop", LeakPolicy: tokend.LeakDisable})
	tok, old := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
	r := h.do("POST", "/v1/tokens/"+tok.ID+"/rotate", h.owner, map[string]any{"grace_period": "1h"})
	var rotated httpapi.TokenWithSecret
	r.json(t, &rotated)
	big := `{"tokens": ["` + strings.Repeat("a", 10<<20) + `"]}`
	if r := h.do("POST", "/v1/leaks", h.owner, big); r.status < 400 || r.status >= 500 {
		t.Errorf("a 10 MB body: %d", r.status)
	}
	if got := h.code(rotated.Secret); got != tokend.CodeValid {
		t.Fatalf("after the big body: %s", got)
	}
	res := h.leakReport(t, tokend.LeakReport{Tokens: []string{old}})
	if want := (tokend.LeakResult{TokenID: tok.ID, Result: tokend.LeakResultDisabled}); len(res) != 1 || res[0] != want {
		t.Fatalf("the retired secret: %+v", res)
	}
	if got := h.code(rotated.Secret); got != tokend.CodeDisabled {
		t.Errorf("after reporting the retired secret the current one answers %s, want DISABLED", got)
	}
	// Reported again while disabled: still disabled, one more token.leaked,
	// no second token.disabled.
	h.leakReport(t, tokend.LeakReport{Tokens: []string{rotated.Secret}})
	if n, d := len(h.events(t, tokend.EventTokenLeaked, tok.ID)), len(h.events(t, tokend.EventTokenDisabled, tok.ID)); n != 2 || d != 1 {
		t.Errorf("%d token.leaked, %d token.disabled; want 2 and 1", n, d)
	}
}

// TestLeakReportRotatedOutSecretOnlyNotifies: a secret replaced by rotation
// whose grace has ended opens nothing, so reporting it leaked raises
// token.leaked (rotated_out) and leaves the token as it is, whatever the
// policy: whoever kept an old secret cannot revoke the live token by
// publishing it.
func TestLeakReportRotatedOutSecretOnlyNotifies(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"}) // leak_policy revoke
	tok, old := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "t"})
	r := h.do("POST", "/v1/tokens/"+tok.ID+"/rotate", h.owner, map[string]any{})
	var rotated httpapi.TokenWithSecret
	r.json(t, &rotated)
	if got := h.code(old); got != tokend.CodeRotated {
		t.Fatalf("the old secret answers %s, want ROTATED", got)
	}
	res := h.leakReport(t, tokend.LeakReport{Tokens: []string{old}, Source: "pastebin"})
	if want := (tokend.LeakResult{TokenID: tok.ID, Result: tokend.LeakResultNotified}); len(res) != 1 || res[0] != want {
		t.Fatalf("the rotated-out secret: %+v, want %+v", res, want)
	}
	if got := h.code(rotated.Secret); got != tokend.CodeValid {
		t.Errorf("after reporting the rotated-out secret the current one answers %s, want VALID", got)
	}
	evs := h.events(t, tokend.EventTokenLeaked, tok.ID)
	if len(evs) != 1 || evs[0].Data["rotated_out"] != true || evs[0].Data["action"] != tokend.LeakResultNotified {
		t.Errorf("token.leaked = %+v, want one, notified, rotated_out", evs)
	}
	if n := len(h.events(t, tokend.EventTokenRevoked, tok.ID)); n != 0 {
		t.Errorf("%d token.revoked, want none", n)
	}
}
