package httpapi_test

import (
	"bytes"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

// scopeWorld is what the owner-scoped admin token tests act on: two
// customers (owners) of two product apps, and tokens of each.
type scopeWorld struct {
	h          *harness
	x, y       tokend.App
	ax, ay, bx tokend.Token // owner A's in apps X and Y; owner B's in X
	bxSecret   string
	unowned    tokend.Token // a token of app X without an owner
	admin      tokend.Token // another, unscoped admin token
	missingTok string       // a token id of tokend's shape that names nothing
	missingApp string
}

const (
	ownerA = "cust_A"
	ownerB = "cust_B"
)

func newScopeWorld(t *testing.T, o harnessOpts) *scopeWorld {
	h := newHarness(t, o)
	w := &scopeWorld{h: h, missingTok: "tok_0000000000000000000000", missingApp: "app_0000000000000000000000"}
	perms := []string{"orders:read", "orders:write"}
	w.x = h.createApp(tokend.AppInput{Name: "shop", Permissions: perms})
	w.y = h.createApp(tokend.AppInput{Name: "billing", Permissions: perms})
	w.ax, _ = h.createToken(tokend.TokenInput{AppID: w.x.ID, OwnerID: ownerA, Name: "A in X"})
	w.ay, _ = h.createToken(tokend.TokenInput{AppID: w.y.ID, OwnerID: ownerA, Name: "A in Y"})
	w.bx, w.bxSecret = h.createToken(tokend.TokenInput{AppID: w.x.ID, OwnerID: ownerB, Name: "B in X"})
	w.unowned, _ = h.createToken(tokend.TokenInput{AppID: w.x.ID, Name: "nobody's"})
	w.admin, _ = h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "ops", Access: tokend.AccessFull})
	return w
}

// scoped creates an admin token with every admin permission, scoped to
// owner A (and to apps when given), and answers its secret.
func (w *scopeWorld) scoped(name string, apps ...string) (tokend.Token, string) {
	return w.h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: name, Access: tokend.AccessFull,
		Scope: &tokend.AdminScope{OwnerID: ownerA, AppIDs: apps}})
}

// attempt is one request of a scoped token and what it must answer.
type attempt struct {
	name, method, path string
	body               any
	headers            []string
	want               int
	// like, when set, is the same request on a resource that does not
	// exist: the answer must be the very same bytes (no enumeration).
	like string
}

// scopeCase says, for one operation of the OpenAPI document, what a scoped
// token tries (against owner B, apps outside the scope, the system app,
// admin tokens) and must be refused.
type scopeCase func(w *scopeWorld, appScoped bool) []attempt

// tokenTargets are the tokens a scoped token must not find: B's, one
// without an owner, an admin token, and A's in app Y when the scope names
// only X.
func (w *scopeWorld) tokenTargets(appScoped bool) map[string]string {
	m := map[string]string{"owner B's token": w.bx.ID, "a token without owner": w.unowned.ID, "an admin token": w.admin.ID}
	if appScoped {
		m["owner A's token in an app outside the scope"] = w.ay.ID
	}
	return m
}

// onTokens tries an operation on /v1/tokens/{id}{suffix} for every target,
// without and with If-Match, each answered as for a missing token.
func onTokens(method, suffix string, body any) scopeCase {
	return func(w *scopeWorld, appScoped bool) []attempt {
		var out []attempt
		for name, id := range w.tokenTargets(appScoped) {
			out = append(out, attempt{name: name, method: method, path: "/v1/tokens/" + id + suffix, body: body,
				want: http.StatusNotFound, like: "/v1/tokens/" + w.missingTok + suffix})
			if method != "GET" {
				out = append(out, attempt{name: name + " with If-Match", method: method, path: "/v1/tokens/" + id + suffix, body: body,
					headers: []string{"If-Match", `"1"`}, want: http.StatusPreconditionFailed, like: "/v1/tokens/" + w.missingTok + suffix})
			}
		}
		return out
	}
}

// refused tries an operation on every app (in scope or not, the system app,
// a missing one): always 403.
func refused(method, suffix string, body any) scopeCase {
	return func(w *scopeWorld, appScoped bool) []attempt {
		var out []attempt
		for _, id := range []string{w.x.ID, w.y.ID, tokend.SystemAppID, w.missingApp} {
			path := "/v1/apps"
			if suffix != "" || method != "POST" {
				path += "/" + id + suffix
			}
			out = append(out, attempt{name: id, method: method, path: path, body: body, want: http.StatusForbidden})
		}
		return out
	}
}

// scopeCases classifies every operation of the OpenAPI document for
// owner-scoped admin tokens; TestScopedTokenOnEveryOperation fails while
// one is missing. nil marks an operation that takes no admin token.
var scopeCases = map[string]scopeCase{
	"GET /healthz": nil, "GET /readyz": nil, "POST /v1/verify": nil, "GET /v1/auth": nil,
	// A token asking about itself learns nothing of any other token: a
	// scoped admin token is answered about itself, as any token is.
	"GET /v1/self": nil,

	"GET /v1/apps": func(w *scopeWorld, appScoped bool) []attempt {
		return []attempt{{name: "lists no app outside the scope", method: "GET", path: "/v1/apps", want: 200}}
	},
	"POST /v1/apps":                 refused("POST", "", tokend.AppInput{Name: "mine", Permissions: []string{"a:read"}}),
	"PATCH /v1/apps/{id}":           refused("PATCH", "", map[string]any{"name": "renamed"}),
	"DELETE /v1/apps/{id}":          refused("DELETE", "", nil),
	"POST /v1/apps/{id}/revoke-all": refused("POST", "/revoke-all", nil),
	"POST /v1/apps/{id}/owners/{owner_id}/revoke-all": func(w *scopeWorld, appScoped bool) []attempt {
		path := func(app, owner string) string { return "/v1/apps/" + app + "/owners/" + owner + "/revoke-all" }
		out := []attempt{
			{name: "owner B, who has tokens", method: "POST", path: path(w.x.ID, ownerB), want: 404, like: path(w.x.ID, "cust_nobody")},
			{name: "its owner in the system app", method: "POST", path: path(tokend.SystemAppID, ownerA), want: 404, like: path(w.missingApp, ownerA)},
		}
		if appScoped {
			out = append(out, attempt{name: "its owner in an app outside the scope", method: "POST", path: path(w.y.ID, ownerA), want: 404, like: path(w.missingApp, ownerA)})
		}
		return out
	},
	"GET /v1/apps/{id}": func(w *scopeWorld, appScoped bool) []attempt {
		out := []attempt{{name: "the system app", method: "GET", path: "/v1/apps/" + tokend.SystemAppID, want: 404, like: "/v1/apps/" + w.missingApp}}
		if appScoped {
			out = append(out, attempt{name: "an app outside the scope", method: "GET", path: "/v1/apps/" + w.y.ID, want: 404, like: "/v1/apps/" + w.missingApp})
		}
		return out
	},

	"GET /v1/tokens": func(w *scopeWorld, appScoped bool) []attempt {
		out := []attempt{
			{name: "another owner's filter", method: "GET", path: "/v1/tokens?owner_id=" + ownerB, want: 200},
			{name: "a search by another owner's token id", method: "GET", path: "/v1/tokens?q=" + w.bx.ID, want: 200},
			{name: "the system app's tokens", method: "GET", path: "/v1/tokens?app_id=" + tokend.SystemAppID, want: 200},
		}
		if appScoped {
			out = append(out, attempt{name: "an app outside the scope", method: "GET", path: "/v1/tokens?app_id=" + w.y.ID, want: 200})
		}
		return out
	},
	"POST /v1/tokens": func(w *scopeWorld, appScoped bool) []attempt {
		out := []attempt{
			{name: "for owner B", method: "POST", path: "/v1/tokens", want: 403,
				body: tokend.TokenInput{AppID: w.x.ID, OwnerID: ownerB, Name: "for B"}},
			{name: "an unscoped admin token", method: "POST", path: "/v1/tokens", want: 403,
				body: tokend.TokenInput{AppID: tokend.SystemAppID, Name: "unscoped", Access: tokend.AccessReadOnly}},
			{name: "an admin token scoped to owner B", method: "POST", path: "/v1/tokens", want: 403,
				body: tokend.TokenInput{AppID: tokend.SystemAppID, Name: "scoped to B", Access: tokend.AccessReadOnly, Scope: &tokend.AdminScope{OwnerID: ownerB}}},
		}
		if appScoped {
			out = append(out,
				attempt{name: "in an app outside the scope", method: "POST", path: "/v1/tokens", want: 422,
					body: tokend.TokenInput{AppID: w.y.ID, Name: "in Y"}, like: "missing app"},
				attempt{name: "an admin token scoped to the owner's every app", method: "POST", path: "/v1/tokens", want: 403,
					body: tokend.TokenInput{AppID: tokend.SystemAppID, Name: "wider", Access: tokend.AccessReadOnly, Scope: &tokend.AdminScope{OwnerID: ownerA}}})
		}
		return out
	},
	"POST /v1/portal/sessions": func(w *scopeWorld, appScoped bool) []attempt {
		link := func(appID, owner string) map[string]any {
			return map[string]any{"app_id": appID, "owner_id": owner, "user": map[string]any{"id": "u1"}, "return_url": "https://x.example/"}
		}
		out := []attempt{{name: "a link for owner B", method: "POST", path: "/v1/portal/sessions", body: link(w.x.ID, ownerB), want: 404}}
		if appScoped {
			out = append(out, attempt{name: "a link in an app outside the scope", method: "POST", path: "/v1/portal/sessions", body: link(w.y.ID, ownerA), want: 404})
		}
		return out
	},
	"GET /v1/tokens/{id}":                                   onTokens("GET", "", nil),
	"PATCH /v1/tokens/{id}":                                 onTokens("PATCH", "", map[string]any{"name": "taken over"}),
	"DELETE /v1/tokens/{id}":                                onTokens("DELETE", "", nil),
	"POST /v1/tokens/{id}/disable":                          onTokens("POST", "/disable", nil),
	"POST /v1/tokens/{id}/enable":                           onTokens("POST", "/enable", nil),
	"POST /v1/tokens/{id}/revoke":                           onTokens("POST", "/revoke", nil),
	"POST /v1/tokens/{id}/rotate":                           onTokens("POST", "/rotate", map[string]any{"grace_period": "1h"}),
	"GET /v1/tokens/{id}/usage":                             onTokens("GET", "/usage", nil),
	"GET /v1/tokens/{id}/activity":                          onTokens("GET", "/activity", nil),
	"GET /v1/webhooks":                                      webhookRefused("GET", "/v1/webhooks", nil),
	"POST /v1/webhooks":                                     webhookRefused("POST", "/v1/webhooks", map[string]any{"url": "https://x.example/h", "events": []string{"*"}}),
	"GET /v1/webhooks/{id}":                                 webhookRefused("GET", "/v1/webhooks/whk_nothere", nil),
	"PATCH /v1/webhooks/{id}":                               webhookRefused("PATCH", "/v1/webhooks/whk_nothere", map[string]any{"enabled": false}),
	"DELETE /v1/webhooks/{id}":                              webhookRefused("DELETE", "/v1/webhooks/whk_nothere", nil),
	"POST /v1/webhooks/{id}/rotate-secret":                  webhookRefused("POST", "/v1/webhooks/whk_nothere/rotate-secret", nil),
	"POST /v1/webhooks/{id}/test":                           webhookRefused("POST", "/v1/webhooks/whk_nothere/test", nil),
	"GET /v1/webhooks/{id}/deliveries":                      webhookRefused("GET", "/v1/webhooks/whk_nothere/deliveries", nil),
	"POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry": webhookRefused("POST", "/v1/webhooks/whk_nothere/deliveries/dlv_nothere/retry", nil),
	"POST /v1/leaks": func(w *scopeWorld, appScoped bool) []attempt {
		return []attempt{{name: "owner B's secret", method: "POST", path: "/v1/leaks", want: 200,
			body: tokend.LeakReport{Tokens: []string{w.bxSecret}, Source: "test"}, like: "unknown secret"}}
	},
	"GET /v1/audit": func(w *scopeWorld, appScoped bool) []attempt {
		out := []attempt{
			{name: "the whole log", method: "GET", path: "/v1/audit", want: 200},
			{name: "owner B's token's events", method: "GET", path: "/v1/audit?token_id=" + w.bx.ID, want: 200},
			{name: "the system app's events", method: "GET", path: "/v1/audit?app_id=" + tokend.SystemAppID, want: 200},
		}
		if appScoped {
			out = append(out, attempt{name: "an app outside the scope", method: "GET", path: "/v1/audit?app_id=" + w.y.ID, want: 200})
		}
		return out
	},
	"GET /v1/events": func(w *scopeWorld, appScoped bool) []attempt {
		out := []attempt{
			{name: "every event", method: "GET", path: "/v1/events", want: 200},
			{name: "owner B's token's events", method: "GET", path: "/v1/events?token_id=" + w.bx.ID, want: 200},
			{name: "the system app's events", method: "GET", path: "/v1/events?app_id=" + tokend.SystemAppID, want: 200},
		}
		if appScoped {
			out = append(out, attempt{name: "an app outside the scope", method: "GET", path: "/v1/events?app_id=" + w.y.ID, want: 200})
		}
		return out
	},
}

// webhookRefused is the rule of the webhook operations: an endpoint hears
// every owner's events, so a scoped token may not manage one (403, before
// anything is read, whatever the id).
func webhookRefused(method, path string, body any) scopeCase {
	return func(w *scopeWorld, appScoped bool) []attempt {
		return []attempt{{name: "refused", method: method, path: path, body: body, want: http.StatusForbidden}}
	}
}

// documentedOperations answers "METHOD /path" of every operation the
// served OpenAPI document describes.
func documentedOperations(t *testing.T, h *harness) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	h.do("GET", "/openapi.json", "", nil).json(t, &doc)
	var ops []string
	for p, methods := range doc.Paths {
		for m := range methods {
			switch m {
			case "get", "put", "post", "patch", "delete", "head", "options":
				ops = append(ops, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

// TestScopedTokenOnEveryOperation is the confused-deputy guard: a token
// scoped to owner A (and a variant scoped to A and app X) tries every
// operation of the OpenAPI document against owner B's tokens, tokens
// outside its apps, the system app and admin tokens. Each answers 404, as
// for what does not exist and in the very same bytes, or 403 for what a
// scope can never do; none touches B. An operation the table does not
// classify fails the test.
func TestScopedTokenOnEveryOperation(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			w := newScopeWorld(t, st.opts)
			h := w.h
			ops := documentedOperations(t, h)
			for _, op := range ops {
				if _, ok := scopeCases[op]; !ok {
					t.Errorf("%s is not classified for owner-scoped admin tokens: add it to scopeCases (and decide its rule in internal/manage)", op)
				}
			}
			for op := range scopeCases {
				if !slices.Contains(ops, op) {
					t.Errorf("scopeCases names %s, which the OpenAPI document does not have", op)
				}
			}
			before := w.snapshot(t)
			for _, variant := range []struct {
				name string
				apps []string
			}{{"scoped to owner A", nil}, {"scoped to owner A and app X", []string{w.x.ID}}} {
				_, sec := w.scoped(variant.name, variant.apps...)
				appScoped := len(variant.apps) > 0
				// Deletes last: one that wrongly succeeded would leave
				// every later attempt a 404 for the wrong reason.
				ordered := slices.Clone(ops)
				slices.SortStableFunc(ordered, func(a, b string) int {
					return cmpBool(strings.HasPrefix(a, "DELETE "), strings.HasPrefix(b, "DELETE "))
				})
				for _, op := range ordered {
					c := scopeCases[op]
					if c == nil {
						continue
					}
					for _, a := range c(w, appScoped) {
						t.Run(variant.name+"/"+op+"/"+a.name, func(t *testing.T) {
							w.try(t, sec, a)
						})
					}
				}
				w.checkLists(t, sec, appScoped)
			}
			if after := w.snapshot(t); !slices.Equal(before, after) {
				t.Errorf("the scoped tokens changed what they may not touch:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// try sends one attempt and checks its answer.
func (w *scopeWorld) try(t *testing.T, sec string, a attempt) {
	t.Helper()
	r := w.h.do(a.method, a.path, sec, a.body, a.headers...)
	if r.status != a.want {
		t.Fatalf("%s %s = %d, want %d: %s", a.method, a.path, r.status, a.want, r.body)
	}
	if r.status >= 400 {
		r.problem(t)
		if strings.Contains(string(r.body), ownerB) || strings.Contains(string(r.body), w.bx.Name) {
			t.Errorf("the refusal names owner B or B's token: %s", r.body)
		}
	}
	switch {
	case a.like == "missing app":
		in := a.body.(tokend.TokenInput)
		in.AppID = w.missingApp
		other := w.h.do(a.method, a.path, sec, in, a.headers...)
		if !bytes.Equal(r.body, other.body) || r.status != other.status {
			t.Errorf("an app outside the scope answers\n%d %s\nbut a missing app\n%d %s", r.status, r.body, other.status, other.body)
		}
	case a.like == "unknown secret":
		in := a.body.(tokend.LeakReport)
		in.Tokens = []string{"tkd_notatokenofanyone"}
		other := w.h.do(a.method, a.path, sec, in, a.headers...)
		if !bytes.Equal(r.body, other.body) || r.status != other.status {
			t.Errorf("a secret outside the scope answers\n%d %s\nbut an unknown one\n%d %s", r.status, r.body, other.status, other.body)
		}
	case a.like != "":
		other := w.h.do(a.method, a.like, sec, a.body, a.headers...)
		if !bytes.Equal(r.body, other.body) || r.status != other.status {
			t.Errorf("%s %s answers\n%d %s\nbut what does not exist\n%d %s", a.method, a.path, r.status, r.body, other.status, other.body)
		}
	}
	if r.status/100 == 2 {
		for _, s := range []string{w.bx.ID, ownerB, w.unowned.ID, w.admin.ID, tokend.SystemAppID} {
			if strings.Contains(string(r.body), s) {
				t.Errorf("%s %s answered %s, which is outside the scope: %s", a.method, a.path, s, r.body)
			}
		}
	}
}

// checkLists: the lists a scoped token sees hold only its owner's tokens
// (of its apps), the apps of its scope, and the events of those tokens.
func (w *scopeWorld) checkLists(t *testing.T, sec string, appScoped bool) {
	t.Helper()
	wantTokens := []string{w.ax.ID, w.ay.ID}
	wantApps := []string{w.x.ID, w.y.ID}
	if appScoped {
		wantTokens, wantApps = []string{w.ax.ID}, []string{w.x.ID}
	}
	var tokens tokend.Page[tokend.Token]
	w.h.do("GET", "/v1/tokens?limit=200", sec, nil).json(t, &tokens)
	var got []string
	for _, tok := range tokens.Items {
		if tok.OwnerID == ownerA && tok.AppID != tokend.SystemAppID {
			got = append(got, tok.ID)
		} else {
			t.Errorf("the scoped token lists %s (app %s, owner %q)", tok.ID, tok.AppID, tok.OwnerID)
		}
	}
	for _, id := range wantTokens {
		if !slices.Contains(got, id) {
			t.Errorf("the scoped token does not list %s: %v", id, got)
		}
	}
	var apps tokend.Page[tokend.App]
	w.h.do("GET", "/v1/apps", sec, nil).json(t, &apps)
	var gotApps []string
	for _, a := range apps.Items {
		gotApps = append(gotApps, a.ID)
	}
	if !slices.Equal(gotApps, wantApps) {
		t.Errorf("the scoped token lists apps %v, want %v", gotApps, wantApps)
	}
	var events tokend.Page[tokend.Event]
	w.h.do("GET", "/v1/audit?limit=200", sec, nil).json(t, &events)
	for _, ev := range events.Items {
		if !slices.Contains(got, ev.TokenID) {
			t.Errorf("the scoped token reads an event of %q (%s): %+v", ev.TokenID, ev.Action, ev)
		}
	}
	var notes tokend.Page[tokend.Notification]
	w.h.do("GET", "/v1/events?limit=200", sec, nil).json(t, &notes)
	if len(notes.Items) == 0 {
		t.Errorf("the scoped token reads no event of its tokens")
	}
	for _, n := range notes.Items {
		if !slices.Contains(got, n.TokenID) {
			t.Errorf("the scoped token reads an event of %q (%s): %+v", n.TokenID, n.Type, n)
		}
	}
}

// snapshot is what the scoped tokens must leave as it was: every token
// outside owner A's (its version and status) and every app.
func (w *scopeWorld) snapshot(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, id := range []string{w.bx.ID, w.unowned.ID, w.admin.ID, w.ay.ID} {
		var tok tokend.Token
		r := w.h.do("GET", "/v1/tokens/"+id, w.h.owner, nil)
		if r.status != 200 {
			t.Fatalf("GET %s as the owner: %d %s", id, r.status, r.body)
		}
		r.json(t, &tok)
		out = append(out, tok.ID+" v"+strconv.FormatInt(tok.Version, 10)+" "+string(tok.Status))
	}
	var apps tokend.Page[tokend.App]
	w.h.do("GET", "/v1/apps", w.h.owner, nil).json(t, &apps)
	for _, a := range apps.Items {
		out = append(out, a.ID+" v"+strconv.FormatInt(a.Version, 10))
	}
	if c := w.h.code(w.bxSecret); c != tokend.CodeValid {
		out = append(out, "B's token verifies "+string(c))
	}
	return out
}

// The positive side: a scoped token lists, creates, rotates, revokes and
// deletes its owner's tokens; what it creates belongs to its owner, and the
// audit log names the owner it acted for.
func TestScopedTokenManagesItsOwnersTokens(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			w := newScopeWorld(t, st.opts)
			h := w.h
			scoped, sec := w.scoped("backend for A", w.x.ID)

			r := h.do("POST", "/v1/tokens", sec, tokend.TokenInput{AppID: w.x.ID, Name: "CI deploys"})
			if r.status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			var created httpapi.TokenWithSecret
			r.json(t, &created)
			if created.Token.OwnerID != ownerA {
				t.Errorf("a token created by a scoped token belongs to %q, want %q", created.Token.OwnerID, ownerA)
			}
			if r := h.do("POST", "/v1/tokens", sec, tokend.TokenInput{AppID: w.x.ID, OwnerID: ownerA, Name: "named owner"}); r.status != http.StatusCreated {
				t.Errorf("create naming its own owner: %d %s", r.status, r.body)
			}
			if c := h.code(created.Secret); c != tokend.CodeValid {
				t.Errorf("the new token verifies %s", c)
			}
			var page tokend.Page[tokend.Token]
			h.do("GET", "/v1/tokens?owner_id="+ownerA, sec, nil).json(t, &page)
			if ids := tokenIDs(page.Items); !slices.Contains(ids, created.Token.ID) || !slices.Contains(ids, w.ax.ID) || len(ids) != 3 {
				t.Errorf("list = %v, want A's three tokens of X", ids)
			}
			if r := h.do("GET", "/v1/tokens/"+w.ax.ID, sec, nil); r.status != 200 {
				t.Errorf("get A's token: %d %s", r.status, r.body)
			}
			if r := h.do("PATCH", "/v1/tokens/"+w.ax.ID, sec, map[string]any{"description": "edited by the backend"}); r.status != 200 {
				t.Errorf("edit A's token: %d %s", r.status, r.body)
			}
			r = h.do("POST", "/v1/tokens/"+created.Token.ID+"/rotate", sec, nil)
			if r.status != 200 {
				t.Fatalf("rotate: %d %s", r.status, r.body)
			}
			var rotated httpapi.TokenWithSecret
			r.json(t, &rotated)
			if c := h.code(rotated.Secret); c != tokend.CodeValid {
				t.Errorf("the rotated secret verifies %s", c)
			}
			for _, p := range []string{"/disable", "/enable", "/revoke"} {
				if r := h.do("POST", "/v1/tokens/"+created.Token.ID+p, sec, nil); r.status != 200 {
					t.Errorf("%s: %d %s", p, r.status, r.body)
				}
			}
			for _, p := range []string{"/usage", "/activity"} {
				if r := h.do("GET", "/v1/tokens/"+w.ax.ID+p, sec, nil); r.status != 200 {
					t.Errorf("%s: %d %s", p, r.status, r.body)
				}
			}
			if r := h.do("DELETE", "/v1/tokens/"+created.Token.ID, sec, nil); r.status != http.StatusNoContent {
				t.Errorf("delete: %d %s", r.status, r.body)
			}
			r = h.do("POST", "/v1/apps/"+w.x.ID+"/owners/"+ownerA+"/revoke-all", sec, nil)
			var revoked httpapi.RevokeAllAnswer
			if r.json(t, &revoked); r.status != 200 || revoked.Revoked != 2 {
				t.Errorf("revoke its owner's tokens of X: %d %s, want 2 revoked (A's own and the one it made)", r.status, r.body)
			}
			if c := h.code(w.bxSecret); c != tokend.CodeValid {
				t.Errorf("revoking owner A's tokens left B's %s", c)
			}

			// The audit log names the token as the actor, as for any
			// admin token, and the owner it acted for.
			var events tokend.Page[tokend.Event]
			h.do("GET", "/v1/audit?token_id="+w.ax.ID+"&action="+tokend.ActionTokenUpdate, h.owner, nil).json(t, &events)
			if len(events.Items) != 1 {
				t.Fatalf("update events of A's token: %+v", events.Items)
			}
			ev := events.Items[0]
			if ev.Actor != "token:"+scoped.ID || ev.Details["scope_owner_id"] != ownerA {
				t.Errorf("the audit event of a scoped token's edit: actor %q, details %v", ev.Actor, ev.Details)
			}
			// A scoped token sees its own owner's events, B's never.
			h.do("GET", "/v1/audit?limit=200", sec, nil).json(t, &events)
			if len(events.Items) == 0 {
				t.Errorf("the scoped token sees no event of its owner's tokens")
			}
		})
	}
}

// A scoped token can never widen its reach: no unscoped admin token, no
// admin token of another owner or of more applications, none holding a
// permission it lacks; and nothing is created by a refusal. It may create
// a narrower scoped admin token, which is itself held to its scope.
func TestScopedTokenCannotWiden(t *testing.T) {
	w := newScopeWorld(t, harnessOpts{})
	h := w.h
	// It outlives the default expiry of what it makes: a token may not
	// outlive its maker, and one made a second later with the same default
	// would, and be refused for that (422) before its reach is looked at.
	_, sec := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "backend for A in X", Access: tokend.AccessCustom,
		Permissions: []string{tokend.PermTokensRead, tokend.PermTokensWrite}, ExpiresIn: "90d",
		Scope: &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.x.ID}}})
	count := func() int {
		var page tokend.Page[tokend.Token]
		h.do("GET", "/v1/tokens?limit=200", h.owner, nil).json(t, &page)
		return len(page.Items)
	}
	n := count()
	admin := func(name string, sc *tokend.AdminScope, perms ...string) tokend.TokenInput {
		return tokend.TokenInput{AppID: tokend.SystemAppID, Name: name, Access: tokend.AccessCustom, Permissions: perms, Scope: sc}
	}
	for _, c := range []struct {
		name string
		in   tokend.TokenInput
	}{
		{"unscoped", admin("unscoped", nil, tokend.PermTokensRead)},
		{"another owner", admin("B", &tokend.AdminScope{OwnerID: ownerB, AppIDs: []string{w.x.ID}}, tokend.PermTokensRead)},
		{"every app of the owner", admin("all apps", &tokend.AdminScope{OwnerID: ownerA}, tokend.PermTokensRead)},
		{"more apps", admin("X and Y", &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.x.ID, w.y.ID}}, tokend.PermTokensRead)},
		{"another app", admin("Y", &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.y.ID}}, tokend.PermTokensRead)},
		// 403 as for an app that exists: the answer tells nothing of it.
		{"an app that does not exist", admin("nowhere", &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.missingApp}}, tokend.PermTokensRead)},
		{"more permissions", admin("rotator", &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.x.ID}}, tokend.PermTokensRead, tokend.PermTokensRotate)},
		{"full access", tokend.TokenInput{AppID: tokend.SystemAppID, Name: "full", Access: tokend.AccessFull, Scope: &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.x.ID}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", "/v1/tokens", sec, c.in)
			if r.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.status, r.body)
			}
			if p := r.problem(t); p.Code != tokend.ECodeForbidden {
				t.Errorf("code %s", p.Code)
			}
		})
	}
	if got := count(); got != n {
		t.Errorf("refused creations left %d tokens, want %d", got, n)
	}

	narrow := admin("reader for A in X", &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.x.ID}}, tokend.PermTokensRead)
	// Within its creator's lifetime (the default 30 days, made a second
	// later, would end after the creator's and be refused).
	narrow.ExpiresIn = "29d"
	r := h.do("POST", "/v1/tokens", sec, narrow)
	if r.status != http.StatusCreated {
		t.Fatalf("a narrower scoped admin token: %d %s", r.status, r.body)
	}
	var out httpapi.TokenWithSecret
	r.json(t, &out)
	if out.Token.Scope == nil || out.Token.Scope.OwnerID != ownerA || !slices.Equal(out.Token.Scope.AppIDs, []string{w.x.ID}) {
		t.Errorf("the new admin token's scope = %+v", out.Token.Scope)
	}
	if r := h.do("GET", "/v1/tokens/"+w.bx.ID, out.Secret, nil); r.status != http.StatusNotFound {
		t.Errorf("the narrower token reads B's token: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/v1/tokens/"+w.ax.ID, out.Secret, nil); r.status != 200 {
		t.Errorf("the narrower token cannot read A's token: %d %s", r.status, r.body)
	}
	// An admin token, scoped or not, is outside every scope: its creator
	// cannot read or revoke it (the operator can).
	for _, p := range []string{"", "/revoke"} {
		method := map[string]string{"": "GET", "/revoke": "POST"}[p]
		if r := h.do(method, "/v1/tokens/"+out.Token.ID+p, sec, nil); r.status != http.StatusNotFound {
			t.Errorf("%s of the admin token it created: %d %s", method+" "+p, r.status, r.body)
		}
	}

	// A scope is what the token is: no edit changes it, for anyone.
	for _, body := range []string{`{"scope":{"owner_id":"` + ownerB + `"}}`, `{"scope":null}`} {
		if r := h.do("PATCH", "/v1/tokens/"+out.Token.ID, h.owner, body); r.status != http.StatusUnprocessableEntity {
			t.Errorf("PATCH %s: %d, want 422: %s", body, r.status, r.body)
		}
	}
	var again tokend.Token
	h.do("GET", "/v1/tokens/"+out.Token.ID, h.owner, nil).json(t, &again)
	if again.Scope == nil || again.Scope.OwnerID != ownerA || again.Version != out.Token.Version {
		t.Errorf("after the refused edits: scope %+v, version %d", again.Scope, again.Version)
	}
}

// A scope is only for admin tokens, names an owner, and names existing
// product applications.
func TestScopeIsValidated(t *testing.T) {
	w := newScopeWorld(t, harnessOpts{})
	h := w.h
	for _, c := range []struct {
		name  string
		in    tokend.TokenInput
		field string
	}{
		{"on a product token", tokend.TokenInput{AppID: w.x.ID, Name: "p", Scope: &tokend.AdminScope{OwnerID: ownerA}}, "scope"},
		{"without owner", tokend.TokenInput{AppID: tokend.SystemAppID, Name: "a", Access: tokend.AccessReadOnly, Scope: &tokend.AdminScope{}}, "scope.owner_id"},
		{"with the system app", tokend.TokenInput{AppID: tokend.SystemAppID, Name: "a", Access: tokend.AccessReadOnly,
			Scope: &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{tokend.SystemAppID}}}, "scope.app_ids[0]"},
		{"with a missing app", tokend.TokenInput{AppID: tokend.SystemAppID, Name: "a", Access: tokend.AccessReadOnly,
			Scope: &tokend.AdminScope{OwnerID: ownerA, AppIDs: []string{w.x.ID, w.missingApp}}}, "scope.app_ids[1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", "/v1/tokens", h.owner, c.in)
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", r.status, r.body)
			}
			if f := fields(r.problem(t)); !slices.Contains(f, c.field) {
				t.Errorf("fields %v, want %s", f, c.field)
			}
		})
	}
}

func tokenIDs(ts []tokend.Token) []string {
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
