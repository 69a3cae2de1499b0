package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
