package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/tokend/tokend"
)

// FuzzManagementBodies throws arbitrary bodies at every writing endpoint: the
// answer is never a 5xx and the server never panics. The seeds run in every
// `go test`; `go test -fuzz FuzzManagementBodies ./internal/httpapi/` explores.
func FuzzManagementBodies(f *testing.F) {
	h := newHarness(f)
	app := h.createApp(tokend.AppInput{Name: "fuzz", Permissions: []string{"orders:read"}})
	tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "target"})
	seeds := []string{
		`{"app_id":"` + app.ID + `","name":"x","access":"custom","permissions":["orders:*"]}`,
		`{"name":null,"rate_limit":{"limit":1e309,"window":"1h"}}`,
		`{"expires_at":"9999-12-31T23:59:59Z","max_uses":-9223372036854775808}`,
		`{"metadata":{"a":[[[[[[[[[[[]]]]]]]]]]]}}`,
		`{"allowed_ips":["::ffff:10.0.0.1/200","1.2.3.4/-1"],"allowed_origins":["https://[::1]:99999"]}`,
		`{"grace_period":"-1h"}`, `{"token_prefix":"a_","max_token_lifetime":"99999999999d"}`,
		`{"app_id":"` + app.ID + `","name":"y","owner_id":"acct\u0000","owner_name":"\u202e"}`,
		`{"app_id":"` + app.ID + `","name":"y","owner_id":"` + strings.Repeat("a", 129) + `","owner_name":"` + strings.Repeat("é", 201) + `"}`,
		`{"owner_id":"other","owner_name":null}`, `{"owner_id":null,"owner_name":"\ud800"}`,
		`{"max_tokens_per_owner":0,"owner_rate_limit":{"limit":-1,"window":"0s"}}`,
		`{"max_tokens_per_owner":1e10,"owner_rate_limit":null}`, `{"max_tokens_per_owner":"3","owner_rate_limit":"1/1m"}`,
		"\x00", `"just a string"`, `{"app_id":` + strings.Repeat("[", 10000),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	targets := []struct{ method, path string }{
		{"POST", "/v1/tokens"}, {"PATCH", "/v1/tokens/" + tok.ID}, {"POST", "/v1/tokens/" + tok.ID + "/rotate"},
		{"POST", "/v1/apps"}, {"PATCH", "/v1/apps/" + app.ID}, {"POST", "/v1/verify"},
	}
	handler := h.srv.Config.Handler
	f.Fuzz(func(t *testing.T, body string) {
		for _, tg := range targets {
			req := httptest.NewRequest(tg.method, tg.path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+h.owner)
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code >= http.StatusInternalServerError {
				t.Fatalf("%s %s with %q answered %d: %s", tg.method, tg.path, body, rec.Code, rec.Body)
			}
		}
	})
}

// recordingVerifier answers every question VALID and keeps the last one, so
// that a fuzz target sees exactly what the HTTP layer decoded.
type recordingVerifier struct {
	mu   sync.Mutex
	last *tokend.VerifyRequest
}

func (r *recordingVerifier) Verify(_ context.Context, req tokend.VerifyRequest) (tokend.VerifyResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = &req
	return tokend.VerifyResult{Valid: true, Code: tokend.CodeValid}, nil
}

func (r *recordingVerifier) take() *tokend.VerifyRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.last
	r.last = nil
	return q
}

// FuzzVerifyDecoder throws arbitrary bodies at POST /v1/verify: the answer
// is never a 5xx; a refusal is a 4xx problem+json and reaches no verifier; a
// 200 only answers a body that decodes strictly (one JSON object, valid
// UTF-8, no name twice, exactly spelled members among token, permissions,
// ip and origin, token present, strings where strings belong, permissions a
// list of strings or null, within the schema's limits, ip an address), and
// the verifier is asked exactly what the body says, with the connection's
// peer. FuzzManagementBodies covers /v1/verify through the real engine.
// `go test -run '^$' -fuzz '^FuzzVerifyDecoder$' ./internal/httpapi/` explores.
func FuzzVerifyDecoder(f *testing.F) {
	handler, rec := verifyServer(f)
	for _, s := range []string{
		`{"token":"tkd_x"}`,
		`{"token":"tkd_x","permissions":["orders:read","write"],"ip":"203.0.113.7","origin":"https://app.example.com"}`,
		`{"TOKEN":"a"}`, `{"token":"a","Token":"b"}`, `{"token":"a","token":"b"}`, `{"token":"a","extra":1}`,
		`{"token":null}`, `{"token":"\u0000"}`, `{"token":"a","ip":"1.2.3.4\u0000"}`, `{"token":"a","permissions":[null]}`,
		`{"token":"a"} {}`, `{"token":"\u0074"}`, `{"tok\u0065n":"a"}`, `{"token":"` + strings.Repeat("a", 513) + `"}`,
		`{"token":"a","permissions":[` + strings.Repeat(`"x:y",`, 32) + `"x:y"]}`, "{\"token\":\"\xff\"}", `[]`, ``,
		`{"token":"a","ip":null}`, `{"token":"a","permissions":null}`, `{"token":"a","origin":"\ud800"}`, `{"token":"a","x":{"k":1,"k":2}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := postVerify(handler, body)
		q := rec.take()
		if w.Code != http.StatusOK {
			if w.Code < 400 || w.Code >= 500 || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%q: answered %d %s %s", body, w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			if q != nil {
				t.Fatalf("%q was refused with %d but reached the verifier", body, w.Code)
			}
			return
		}
		if q == nil {
			t.Fatalf("%q was answered 200 without asking the verifier", body)
		}
		if !jsontext.Value(body).IsValid() {
			t.Fatalf("%q was answered 200 but is not one valid JSON value (UTF-8, names once)", body)
		}
		// What the body says under the exact keys, read the plain way.
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("%q was answered 200 but is not a JSON object: %v", body, err)
		}
		isString := func(raw json.RawMessage) bool { return strings.HasPrefix(string(raw), `"`) }
		var want tokend.VerifyRequest
		for k, raw := range m {
			var dst any
			switch k {
			case "token":
				dst = &want.Token
			case "ip":
				dst = &want.IP
			case "origin":
				dst = &want.Origin
			case "user_agent":
				dst = &want.UserAgent
			case "permissions":
				dst = &want.Permissions
				var items []json.RawMessage
				if err := json.Unmarshal(raw, &items); err != nil || slices.ContainsFunc(items, func(r json.RawMessage) bool { return !isString(r) }) {
					t.Fatalf("%q was answered 200 with permissions not null nor a list of strings", body)
				}
			default:
				t.Fatalf("%q was answered 200 with the unknown key %q", body, k)
			}
			if k != "permissions" && !isString(raw) {
				t.Fatalf("%q was answered 200 with %s not a string", body, k)
			}
			if err := json.Unmarshal(raw, dst); err != nil {
				t.Fatalf("%q: %s does not read as its type: %v", body, k, err)
			}
		}
		if _, ok := m["token"]; !ok {
			t.Fatalf("%q was answered 200 without a token", body)
		}
		// The throttle's key comes from the connection, never the body.
		want.Peer = tokend.PeerKey(tokend.DoorVerify, "192.0.2.1")
		want.Endpoint = tokend.EndpointVerify
		if want.IP != "" {
			if a, err := netip.ParseAddr(want.IP); err != nil || a.Zone() != "" {
				t.Fatalf("%q was answered 200 with an ip that is not an address", body)
			}
		}
		if !reflect.DeepEqual(*q, want) {
			t.Fatalf("%q: the verifier was asked %+v, the body says %+v", body, *q, want)
		}
		if utf8.RuneCountInString(q.Token) > 512 || utf8.RuneCountInString(q.IP) > 64 || utf8.RuneCountInString(q.Origin) > 512 || len(q.Permissions) > 32 {
			t.Fatalf("%q: the verifier was asked %+v, beyond the schema's limits", body, *q)
		}
	})
}
