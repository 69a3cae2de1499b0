package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

// verifyServer is the API with a verifier that answers VALID and keeps the
// question, so that a test sees exactly what POST /v1/verify decoded.
func verifyServer(t testing.TB) (http.Handler, *recordingVerifier) {
	h := newHarness(t)
	rec := &recordingVerifier{}
	return httpapi.NewServer(httpapi.Deps{Service: h.svc, Verifier: rec, Logger: slog.New(slog.DiscardHandler), Ready: h.store.Ping}), rec
}

func postVerify(handler http.Handler, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/v1/verify", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	return w
}

// TestVerifyBodyRefusals pins every refusal of POST /v1/verify's decoder:
// the status, the code and the fields the problem names, in order. None
// reaches the verifier.
func TestVerifyBodyRefusals(t *testing.T) {
	handler, rec := verifyServer(t)
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	list := func(n int) string { return `["` + strings.Repeat(`x:y","`, n-1) + `x:y"]` }
	const (
		invalid   = tokend.ECodeInvalid
		malformed = tokend.ECodeMalformedRequest
	)
	cases := []struct {
		name, body string
		headers    []string
		status     int
		code       tokend.ErrorCode
		fields     []string
	}{
		{"an unknown member", `{"token":"a","extra":1}`, nil, 422, invalid, []string{"extra"}},
		{"an unknown member holding null", `{"token":"a","extra":null}`, nil, 422, invalid, []string{"extra"}},
		{"two unknown members, in the body's order", `{"token":"a","zz":1,"aa":2}`, nil, 422, invalid, []string{"zz", "aa"}},
		{"a member spelled in another case", `{"token":"a","Ip":"192.0.2.1"}`, nil, 422, invalid, []string{"Ip"}},
		{"token in capitals only", `{"TOKEN":"a"}`, nil, 422, invalid, []string{"token", "TOKEN"}},
		{"token twice", `{"token":"a","token":"b"}`, nil, 422, invalid, []string{"token"}},
		{"token twice, the second escaped", `{"token":"a","tok\u0065n":"b"}`, nil, 422, invalid, []string{"token"}},
		{"a duplicate inside an unknown member", `{"token":"a","x":{"k":1,"k":2}}`, nil, 422, invalid, []string{"x.k"}},
		{"invalid UTF-8 in token", "{\"token\":\"\xff\"}", nil, 422, invalid, []string{"token"}},
		{"invalid UTF-8 in a permission", "{\"token\":\"a\",\"permissions\":[\"\xc3\"]}", nil, 422, invalid, []string{"permissions[0]"}},
		{"a lone surrogate in origin", `{"token":"a","origin":"\ud800"}`, nil, 422, invalid, []string{"origin"}},
		{"no token", `{}`, nil, 422, invalid, []string{"token"}},
		{"no token, ip given", `{"ip":"192.0.2.1"}`, nil, 422, invalid, []string{"token"}},
		{"token null", `{"token":null}`, nil, 422, invalid, []string{"token"}},
		{"ip null", `{"token":"a","ip":null}`, nil, 422, invalid, []string{"ip"}},
		{"origin null", `{"token":"a","origin":null}`, nil, 422, invalid, []string{"origin"}},
		{"a permission null", `{"token":"a","permissions":["read",null]}`, nil, 422, invalid, []string{"permissions[1]"}},
		{"token a number", `{"token":5}`, nil, 422, invalid, []string{"token"}},
		{"ip a list", `{"token":"a","ip":["192.0.2.1"]}`, nil, 422, invalid, []string{"ip"}},
		{"permissions a string", `{"token":"a","permissions":"read"}`, nil, 422, invalid, []string{"permissions"}},
		{"a permission an object", `{"token":"a","permissions":[{}]}`, nil, 422, invalid, []string{"permissions[0]"}},
		{"token of 513 characters", `{"token":"` + long("a", 513) + `"}`, nil, 422, invalid, []string{"token"}},
		{"token of 513 two-byte characters", `{"token":"` + long("é", 513) + `"}`, nil, 422, invalid, []string{"token"}},
		{"ip of 65 characters", `{"token":"a","ip":"` + long("1", 65) + `"}`, nil, 422, invalid, []string{"ip"}},
		{"origin of 513 characters", `{"token":"a","origin":"` + long("o", 513) + `"}`, nil, 422, invalid, []string{"origin"}},
		{"33 permissions", `{"token":"a","permissions":` + list(33) + `}`, nil, 422, invalid, []string{"permissions"}},
		{"every fault at once", `{"ip":5,"x":1,"permissions":[1]}`, nil, 422, invalid, []string{"token", "ip", "x", "permissions[0]"}},
		{"ip not an address", `{"token":"a","ip":"localhost"}`, nil, 422, invalid, []string{"ip"}},
		{"ip with a zone", `{"token":"a","ip":"fe80::1%eth0"}`, nil, 422, invalid, []string{"ip"}},
		{"a list", `[]`, nil, 422, invalid, []string{""}},
		{"null", `null`, nil, 422, invalid, []string{""}},
		{"a string", `"tkd_x"`, nil, 422, invalid, []string{""}},
		{"no body", ``, nil, 400, malformed, nil},
		{"only spaces", "  \n", nil, 400, malformed, nil},
		{"a cut object", `{"token":"a"`, nil, 400, malformed, nil},
		{"a second object after the first", `{"token":"a"} {}`, nil, 400, malformed, nil},
		{"text after the object", `{"token":"a"} x`, nil, 400, malformed, nil},
		{"NUL after the object", "{\"token\":\"a\"}\x00", nil, 400, malformed, nil},
		{"a trailing comma", `{"token":"a",}`, nil, 400, malformed, nil},
		{"single quotes", `{'token':'a'}`, nil, 400, malformed, nil},
		{"a body over MaxBodyBytes", `{"token":"` + long("a", httpapi.MaxBodyBytes) + `"}`, nil, 413, tokend.ECodeTooLarge, nil},
		{"XML", `{"token":"a"}`, []string{"Content-Type", "text/xml"}, 415, malformed, nil},
		{"CBOR", `{"token":"a"}`, []string{"Content-Type", "application/cbor"}, 415, malformed, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := postVerify(handler, c.body, c.headers...)
			if w.Code != c.status {
				t.Fatalf("status = %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var p httpapi.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("not a problem: %v: %s", err, w.Body)
			}
			if p.Status != c.status || p.Code != c.code || p.Title != http.StatusText(c.status) || p.Detail == "" {
				t.Errorf("problem = %s, want status %d, code %s", w.Body, c.status, c.code)
			}
			if got := fields(p); !reflect.DeepEqual(got, c.fields) {
				t.Errorf("fields = %q, want %q: %s", got, c.fields, w.Body)
			}
			if q := rec.take(); q != nil {
				t.Errorf("the refused body reached the verifier as %+v", q)
			}
		})
	}
}

// TestVerifyBodyAccepted pins what POST /v1/verify's decoder takes, and the
// question the verifier is asked.
func TestVerifyBodyAccepted(t *testing.T) {
	handler, rec := verifyServer(t)
	full := strings.Repeat("é", 512)
	cases := []struct {
		name, body string
		headers    []string
		want       tokend.VerifyRequest
	}{
		{"token only", `{"token":"tkd_x"}`, nil, tokend.VerifyRequest{Token: "tkd_x"}},
		{"every member", `{"token":"tkd_x","permissions":["orders:read","write"],"ip":"203.0.113.7","origin":"https://a.example"}`, nil,
			tokend.VerifyRequest{Token: "tkd_x", Permissions: []string{"orders:read", "write"}, IP: "203.0.113.7", Origin: "https://a.example"}},
		{"escaped names and text", `{"tok\u0065n":"tkd_\u0078","origin":"a\"b\\c\u00e9"}`, nil, tokend.VerifyRequest{Token: "tkd_x", Origin: "a\"b\\cé"}},
		{"permissions null, as the schema allows", `{"token":"a","permissions":null}`, nil, tokend.VerifyRequest{Token: "a"}},
		{"no permissions", `{"token":"a","permissions":[]}`, nil, tokend.VerifyRequest{Token: "a", Permissions: []string{}}},
		{"an empty token (the verifier says MALFORMED)", `{"token":""}`, nil, tokend.VerifyRequest{}},
		{"512 two-byte characters", `{"token":"` + full + `"}`, nil, tokend.VerifyRequest{Token: full}},
		{"an IPv6 ip", `{"token":"a","ip":"2001:db8::7"}`, nil, tokend.VerifyRequest{Token: "a", IP: "2001:db8::7"}},
		{"white space around", "\n\t{ \"token\" : \"a\" }\r\n", nil, tokend.VerifyRequest{Token: "a"}},
		{"a form content type (curl -d)", `{"token":"a"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, tokend.VerifyRequest{Token: "a"}},
		{"a charset", `{"token":"a"}`, []string{"Content-Type", "application/json; charset=utf-8"}, tokend.VerifyRequest{Token: "a"}},
		{"a +json type", `{"token":"a"}`, []string{"Content-Type", "application/vnd.api+json"}, tokend.VerifyRequest{Token: "a"}},
		// As every operation: JSON whatever the Accept (there is no other format).
		{"Accept CBOR", `{"token":"a"}`, []string{"Accept", "application/cbor"}, tokend.VerifyRequest{Token: "a"}},
		{"Accept HTML", `{"token":"a"}`, []string{"Accept", "text/html"}, tokend.VerifyRequest{Token: "a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := postVerify(handler, c.body, c.headers...)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			q := rec.take()
			if q == nil {
				t.Fatal("the verifier was not asked")
			}
			want := c.want
			want.Peer = tokend.PeerKey(tokend.DoorVerify, "192.0.2.1") // httptest's peer
			want.Endpoint = tokend.EndpointVerify                      // set by the server, never by the body
			if !reflect.DeepEqual(*q, want) {
				t.Errorf("asked %+v, want %+v", *q, want)
			}
		})
	}
}

// TestVerifyAnswerEncoding: the answer is written as huma writes JSON, HTML
// characters unescaped.
func TestVerifyAnswerEncoding(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "a<b>&c"})
	tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "<script>&"})
	r := h.do("POST", "/v1/verify", "", tokend.VerifyRequest{Token: sec})
	if want := `"name":"<script>&"`; r.status != 200 || !strings.Contains(string(r.body), want) || !strings.HasSuffix(string(r.body), "}\n") {
		t.Errorf("%d %s, want %s", r.status, r.body, want)
	}
	if !strings.Contains(string(r.body), `"id":"`+tok.ID+`"`) {
		t.Errorf("%s", r.body)
	}
}
