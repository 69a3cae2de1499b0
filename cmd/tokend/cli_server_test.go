package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// The CLI notices when --server is not tokend: another JSON service, an
// HTML page, a URL without a scheme each end in a message that says what
// --server should look like, and a non-zero exit.
func TestCLISaysWhenTheServerIsNotTokend(t *testing.T) {
	other := func(ct, body string, status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	a := newFakeAPI(t, nil)
	for _, c := range []struct {
		name, server string
		want         string
	}{
		{"another JSON service", other("application/json", `{"status":"ok","service":"billing"}`, 200), "does not answer as tokend does"},
		{"a JSON list", other("application/json", `[{"id":1}]`, 200), "does not answer as tokend does"},
		{"an empty JSON object", other("application/json", `{}`, 200), "does not answer as tokend does"},
		{"JSON null", other("application/json", `null`, 200), "does not answer as tokend does"},
		{"another service's page of items", other("application/json", `{"items":[],"total":0}`, 200), "does not answer as tokend does"},
		{"an HTML page", other("text/html; charset=utf-8", "<!doctype html><title>Welcome</title>", 200), "Content-Type text/html"},
		{"an HTML error page", other("text/html", "<h1>Not Found</h1>", 404), "not a tokend problem document"},
		{"no scheme", "127.0.0.1:8080", "must start with http:// or https://"},
		{"host:port read as a scheme", "localhost:8080", "must start with http:// or https://"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{{"token", "list"}, {"app", "list"}} {
				r := cli(t, a, nil, map[string]string{"TOKEND_URL": c.server}, args...)
				if r.err == nil {
					t.Fatalf("%v: no error; stdout %q", args, r.stdout)
				}
				msg := r.err.Error()
				if !strings.Contains(msg, c.want) || !strings.Contains(msg, "such as http://127.0.0.1:8080") {
					t.Errorf("%v: %q lacks %q or what --server should look like", args, msg, c.want)
				}
				if strings.Contains(r.stdout, "No tokens") || strings.Contains(r.stdout, "No apps") {
					t.Errorf("%v: printed as if tokend had answered: %q", args, r.stdout)
				}
			}
			if c.server[0] != 'h' {
				return
			}
			// A write is not reported done on an answer tokend cannot have given.
			r := cli(t, a, nil, map[string]string{"TOKEND_URL": c.server}, "app", "create", "--name", "Shop")
			if r.err == nil || strings.Contains(r.stdout, "Created") {
				t.Errorf("app create: err %v, stdout %q; want an error and nothing created", r.err, r.stdout)
			}
		})
	}
}

// token list shows app names beside ids, and ids alone when the admin
// token may not read applications.
func TestTokenListShowsAppNamesWhenItMay(t *testing.T) {
	page := mustJSON(t, tokend.Page[tokend.Token]{Items: []tokend.Token{tok}})
	with := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens": {200, page},
		"GET /v1/apps":   {200, mustJSON(t, tokend.Page[tokend.App]{Items: []tokend.App{app}})},
	})
	if r := cli(t, with, nil, nil, "token", "list"); r.err != nil || !strings.Contains(r.stdout, "Acme (app_1)") {
		t.Errorf("with apps:read: %v\n%s", r.err, r.stdout)
	}
	without := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens": {200, page},
		"GET /v1/apps":   {403, `{"type":"about:blank","title":"Forbidden","status":403,"detail":"this requires the apps:read permission","code":"FORBIDDEN"}`},
	})
	r := cli(t, without, nil, nil, "token", "list")
	if r.err != nil || !strings.Contains(r.stdout, "app_1") || strings.Contains(r.stdout, "Acme") {
		t.Errorf("without apps:read: %v\n%s", r.err, r.stdout)
	}
}

// A --server that goes on past tokend's base URL (the API's /v1, as the
// API reference spells paths, or a page copied from the browser) ends in
// a message that gives the base to use instead of "no such endpoint";
// tokend served under a prefix that ends in /v1 still works, and its own
// "not found" stays what it is.
func TestCLISaysWhenTheServerGoesPastTheBaseURL(t *testing.T) {
	url, admin := e2eServer(t)
	cmd := func(server string, args ...string) result {
		t.Helper()
		vars := map[string]string{"TOKEND_URL": server, "TOKEND_TOKEN": admin}
		var out, errOut strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, args, func(k string) string { return vars[k] }, strings.NewReader(""), &out, &errOut)
		return result{out.String(), errOut.String(), err}
	}
	if r := cmd(url, "app", "list"); r.err != nil {
		t.Fatalf("with the base URL: %v", r.err)
	}
	for _, c := range []struct{ server, extra string }{
		{url + "/v1", "/v1"},
		{url + "/v1/", "/v1"},
		{url + "/v1/tokens", "/v1/tokens"},
		{url + "/openapi.json", "/openapi.json"},
		{url + "/healthz", "/healthz"},
		{url + "/login", "/login"},
	} {
		for _, args := range [][]string{{"token", "list"}, {"app", "create", "--name", "Shop"}} {
			r := cmd(c.server, args...)
			want := "should be tokend's base URL, without " + c.extra + ": try --server " + url
			if r.err == nil || !strings.Contains(r.err.Error(), want) || !strings.HasSuffix(r.err.Error(), url) {
				t.Errorf("--server %s, %v: %v; want an error with %q", c.server, args, r.err, want)
			}
		}
	}

	prefixed := httptest.NewServer(http.StripPrefix("/v1", httputil.NewSingleHostReverseProxy(mustParseURL(t, url))))
	t.Cleanup(prefixed.Close)
	if r := cmd(prefixed.URL+"/v1", "app", "list"); r.err != nil {
		t.Errorf("tokend served under /v1: %v", r.err)
	}
	r := cmd(prefixed.URL+"/v1", "token", "get", "tok_nope")
	if r.err == nil || strings.Contains(r.err.Error(), "base URL") {
		t.Errorf("a token that does not exist, under a /v1 prefix: %v; want tokend's not found", r.err)
	}
}

func mustParseURL(t *testing.T, s string) *neturl.URL {
	t.Helper()
	u, err := neturl.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
