package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/internal/webhook"
	"github.com/tokend/tokend/secret"
)

// harness is a real tokend API (SQLite store in a temp dir, real engine and
// service) behind httptest, with every answer checked against the OpenAPI
// document the server itself serves.
type harness struct {
	t        testing.TB
	srv      *httptest.Server
	engine   *verify.Engine
	svc      *manage.Service
	store    tokend.Store
	owner    string // secret of an owner admin token
	logs     *syncBuffer
	router   routers.Router
	webhooks tokend.WebhookStore // the store, as the service's webhook store
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harnessOpts struct {
	trusted      []netip.Prefix
	failureLimit int // the engine's FailureLimit; 0: no failure throttle
	// filterConfirm is the engine's FilterConfirm (negative: the filter of
	// known secrets confirms nothing it rules out with a read).
	filterConfirm int
	// postgres runs the API on a fresh PostgreSQL database instead of
	// SQLite (the test skips when no server answers, unless CI=true).
	postgres bool
	// extra is Deps.Extra, the handler of every path the API does not
	// serve (the dashboard).
	extra http.Handler
	// github is Deps.GitHubKeys: POST /v1/leaks/github is served only
	// with it.
	github httpapi.GitHubKeys
}

// stores are the engines a test of the API runs on.
var stores = []struct {
	name string
	opts harnessOpts
}{{"sqlite", harnessOpts{}}, {"postgres", harnessOpts{postgres: true}}}

func newHarness(t testing.TB, opts ...harnessOpts) *harness {
	t.Helper()
	var o harnessOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	var st interface {
		tokend.Store
		Ping(context.Context) error
	}
	if o.postgres {
		pg, err := postgres.Open(ctx, pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		st = pg
	} else {
		sq, err := sqlite.Open(ctx, t.TempDir()+"/tokend.db")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sq.Close() })
		st = sq
	}
	hasher, err := secret.NewHasher([]byte("test-pepper-test-pepper-test-pepper"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	engine := verify.New(verify.Options{Store: st, Hasher: hasher, Logger: log, FailureLimit: o.failureLimit, FilterConfirm: o.filterConfirm})
	secrets, err := webhook.NewSecrets([]byte("test-pepper-test-pepper-test-pepper"))
	if err != nil {
		t.Fatal(err)
	}
	mo := manage.Options{Store: st, Hasher: hasher, Invalidator: engine, Logger: log, WebhookSecrets: secrets}
	webhooks, ok := st.(tokend.WebhookStore)
	if !ok {
		t.Fatal("the store keeps no webhooks")
	}
	svc := manage.New(mo)
	if err := svc.EnsureSystemApp(ctx); err != nil {
		t.Fatal(err)
	}
	_, owner, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, engine: engine, svc: svc, store: st, owner: owner.Reveal(), logs: logs, webhooks: webhooks}
	h.srv = httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Service: svc, Verifier: engine, Logger: log, Ready: st.Ping, TrustedProxies: o.trusted, Extra: o.extra,
		GitHubKeys: o.github,
	}))
	t.Cleanup(h.srv.Close)
	h.loadSpec()
	return h
}

func (h *harness) loadSpec() {
	h.t.Helper()
	res, err := http.Get(h.srv.URL + "/openapi-3.0.json")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		h.t.Fatalf("the OpenAPI document does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		h.t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: h.srv.URL}}
	if h.router, err = legacy.NewRouter(doc); err != nil {
		h.t.Fatal(err)
	}
}

// resp is an answer, already read.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, r.body)
	}
}

func (r resp) problem(t testing.TB) httpapi.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("error Content-Type = %q, want application/problem+json", ct)
	}
	var p httpapi.Problem
	r.json(t, &p)
	if p.Status != r.status || p.Code == "" || p.Title == "" {
		t.Errorf("incomplete problem for %d: %s", r.status, r.body)
	}
	return p
}

// fields answers the fields a problem names.
func fields(p httpapi.Problem) []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

// do sends a request with an optional admin token and JSON body, and checks
// the answer against the OpenAPI document.
func (h *harness) do(method, path, token string, body any, headers ...string) resp {
	h.t.Helper()
	var rd io.Reader
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			h.t.Fatal(err)
		}
	}
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, body: b}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
		h.t.Errorf("%s %s answered %d: %s", method, path, res.StatusCode, b)
	}
	h.checkSpec(req, raw, r)
	return r
}

// checkSpec validates an answer against the served OpenAPI document, so that
// the document cannot drift from what the handlers do.
func (h *harness) checkSpec(req *http.Request, body []byte, r resp) {
	h.t.Helper()
	if strings.HasPrefix(req.URL.Path, "/openapi") || r.status == http.StatusMethodNotAllowed {
		// A 405 says the document has no such operation.
		return
	}
	route, params, err := h.router.FindRoute(req)
	if err != nil {
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			h.t.Errorf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		}
		return
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, ExcludeRequestBody: true}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: r.status, Header: r.header, Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		h.t.Errorf("%s %s → %d does not match the OpenAPI document: %v\n%s", req.Method, req.URL.Path, r.status, err, r.body)
	}
}

func (h *harness) createApp(in tokend.AppInput) tokend.App {
	h.t.Helper()
	r := h.do("POST", "/v1/apps", h.owner, in)
	if r.status != http.StatusCreated {
		h.t.Fatalf("create app: %d %s", r.status, r.body)
	}
	var a tokend.App
	r.json(h.t, &a)
	return a
}

func (h *harness) createToken(in tokend.TokenInput) (tokend.Token, string) {
	h.t.Helper()
	r := h.do("POST", "/v1/tokens", h.owner, in)
	if r.status != http.StatusCreated {
		h.t.Fatalf("create token: %d %s", r.status, r.body)
	}
	var out httpapi.TokenWithSecret
	r.json(h.t, &out)
	return out.Token, out.Secret
}

func (h *harness) verify(req tokend.VerifyRequest) tokend.VerifyResult {
	h.t.Helper()
	r := h.do("POST", "/v1/verify", "", req)
	if r.status != http.StatusOK {
		h.t.Fatalf("verify: %d %s", r.status, r.body)
	}
	var res tokend.VerifyResult
	r.json(h.t, &res)
	return res
}

func (h *harness) code(sec string) tokend.Code {
	h.t.Helper()
	return h.verify(tokend.VerifyRequest{Token: sec}).Code
}
