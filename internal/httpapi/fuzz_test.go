package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
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

// FuzzVerifyDecoder reads POST /v1/verify bodies two ways: the fast path
// (Content-Type application/json, no Accept) and huma's path (an Accept that
// the fast path leaves to huma). Both must answer the same status and hand
// the verifier the same question; the question must be what the body says
// under its exact keys (no case-folded or unknown key slips in), within the
// schema's limits; a refusal is a 4xx problem+json and reaches no verifier.
// FuzzManagementBodies covers /v1/verify through the real engine.
// `go test -run '^$' -fuzz '^FuzzVerifyDecoder$' ./internal/httpapi/` explores.
func FuzzVerifyDecoder(f *testing.F) {
	h := newHarness(f)
	rec := &recordingVerifier{}
	handler := httpapi.NewServer(httpapi.Deps{Service: h.svc, Verifier: rec, Logger: slog.New(slog.DiscardHandler), Ready: h.store.Ping})
	for _, s := range []string{
		`{"token":"tkd_x"}`,
		`{"token":"tkd_x","permissions":["orders:read","write"],"ip":"203.0.113.7","origin":"https://app.example.com"}`,
		`{"TOKEN":"a"}`, `{"token":"a","Token":"b"}`, `{"token":"a","token":"b"}`, `{"token":"a","extra":1}`,
		`{"token":null}`, `{"token":"\u0000"}`, `{"token":"a","ip":"1.2.3.4\u0000"}`, `{"token":"a","permissions":[null]}`,
		`{"token":"a"} {}`, `{"token":"\u0074"}`, `{"tok\u0065n":"a"}`, `{"token":"` + strings.Repeat("a", 513) + `"}`,
		`{"token":"a","permissions":[` + strings.Repeat(`"x:y",`, 32) + `"x:y"]}`, "{\"token\":\"\xff\"}", `[]`, ``,
	} {
		f.Add(s)
	}
	ask := func(t *testing.T, body, accept string) (*httptest.ResponseRecorder, *tokend.VerifyRequest) {
		req := httptest.NewRequest("POST", "/v1/verify", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		return w, rec.take()
	}
	f.Fuzz(func(t *testing.T, body string) {
		fast, fq := ask(t, body, "")
		slow, sq := ask(t, body, "application/json;q=0.9")
		if fast.Code != slow.Code {
			t.Fatalf("%q: the fast path answered %d, huma's %d: %s / %s", body, fast.Code, slow.Code, fast.Body, slow.Body)
		}
		if fast.Code != http.StatusOK {
			if fast.Code < 400 || fast.Code >= 500 || !strings.HasPrefix(fast.Header().Get("Content-Type"), "application/problem+json") {
				t.Fatalf("%q: answered %d %s %s", body, fast.Code, fast.Header().Get("Content-Type"), fast.Body)
			}
			if fq != nil || sq != nil {
				t.Fatalf("%q was refused with %d but reached the verifier", body, fast.Code)
			}
			return
		}
		if fq == nil || sq == nil || !reflect.DeepEqual(fq, sq) {
			t.Fatalf("%q: the fast path asked %+v, huma's %+v", body, fq, sq)
		}
		// What the body says under the exact keys, read the plain way.
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("%q was answered 200 but is not a JSON object: %v", body, err)
		}
		for k := range m {
			if k != "token" && k != "permissions" && k != "ip" && k != "origin" {
				t.Fatalf("%q was answered 200 with the unknown key %q", body, k)
			}
		}
		var want tokend.VerifyRequest
		for k, dst := range map[string]any{"token": &want.Token, "permissions": &want.Permissions, "ip": &want.IP, "origin": &want.Origin} {
			if raw, ok := m[k]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					t.Fatalf("%q: %s does not read as its type: %v", body, k, err)
				}
			}
		}
		if _, ok := m["token"]; !ok {
			t.Fatalf("%q was answered 200 without a token", body)
		}
		// The throttle's key comes from the connection, never the body.
		if !strings.HasPrefix(fq.Peer, tokend.DoorVerify+"|") {
			t.Fatalf("%q: the verifier was asked with the peer %q, not the connection's at the verify door", body, fq.Peer)
		}
		want.Peer = fq.Peer
		if want.IP != "" {
			if a, err := netip.ParseAddr(want.IP); err != nil || a.Zone() != "" {
				t.Fatalf("%q was answered 200 with an ip that is not an address", body)
			}
		}
		if !reflect.DeepEqual(*fq, want) {
			t.Fatalf("%q: the verifier was asked %+v, the body says %+v", body, *fq, want)
		}
		if utf8.RuneCountInString(fq.Token) > 512 || utf8.RuneCountInString(fq.IP) > 64 || utf8.RuneCountInString(fq.Origin) > 512 || len(fq.Permissions) > 32 {
			t.Fatalf("%q: the verifier was asked %+v, beyond the schema's limits", body, *fq)
		}
	})
}
