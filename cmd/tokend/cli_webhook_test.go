package main

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var hook = tokend.Webhook{ID: "whk_1", URL: "https://hooks.example.com/t", Events: []string{"token.revoked", "token.rotated"},
	Enabled: true, CreatedBy: "token:tok_admin", CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Version: 3}

func webhookFake(t *testing.T) *fakeAPI {
	failing := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	off := hook
	off.ID, off.Enabled, off.DisabledReason, off.FailingSince, off.AppID = "whk_2", false, "failing", &failing, "app_1"
	st := 503
	d := tokend.Delivery{ID: "dlv_1", Kind: "webhook", WebhookID: "whk_1", EventID: "evt_1", EventType: "token.revoked",
		Status: "pending", Attempts: 2, LastStatus: &st, LastError: "server answered 503", CreatedAt: failing, NextAt: &failing}
	return newFakeAPI(t, map[string]reply{
		"POST /v1/webhooks":                              {201, mustJSON(t, tokend.WebhookWithSecret{Webhook: hook, Secret: webhookSecret})},
		"GET /v1/webhooks":                               {200, mustJSON(t, tokend.Page[tokend.Webhook]{Items: []tokend.Webhook{hook, off}})},
		"GET /v1/webhooks/whk_1":                         {200, mustJSON(t, hook)},
		"PATCH /v1/webhooks/whk_1":                       {200, mustJSON(t, hook)},
		"DELETE /v1/webhooks/whk_1":                      {204, ""},
		"POST /v1/webhooks/whk_1/rotate-secret":          {200, mustJSON(t, tokend.WebhookWithSecret{Webhook: hook, Secret: webhookSecret})},
		"POST /v1/webhooks/whk_1/test":                   {202, `{"event_id":"evt_9"}`},
		"GET /v1/webhooks/whk_1/deliveries":              {200, mustJSON(t, tokend.Page[tokend.Delivery]{Items: []tokend.Delivery{d}})},
		"POST /v1/webhooks/whk_1/deliveries/dlv_1/retry": {200, mustJSON(t, d)},
	})
}

func TestWebhookCLIRequests(t *testing.T) {
	a := webhookFake(t)
	checkRequests(t, a, []requestCase{
		{name: "create", args: []string{"webhook", "create", "--url", "https://hooks.example.com/t", "--events", "token.revoked,token.rotated", "--app", "app_1", "--description", "billing"},
			method: "POST", path: "/v1/webhooks", body: `{"url":"https://hooks.example.com/t","events":["token.revoked","token.rotated"],"app_id":"app_1","description":"billing"}`},
		{name: "create for every event", args: []string{"webhook", "create", "--url", "https://h.example/", "--events", "*"},
			method: "POST", path: "/v1/webhooks", body: `{"url":"https://h.example/","events":["*"]}`},
		{name: "list", args: []string{"webhook", "list", "--app", "app_1", "--limit", "5"}, method: "GET", path: "/v1/webhooks",
			query: url.Values{"app_id": {"app_1"}, "limit": {"5"}}},
		{name: "get", args: []string{"webhook", "get", "whk_1"}, method: "GET", path: "/v1/webhooks/whk_1"},
		{name: "edit", args: []string{"webhook", "edit", "whk_1", "--url", "https://n.example/", "--events", "*", "--enable", "--description", "", "--if-version", "3"},
			method: "PATCH", path: "/v1/webhooks/whk_1", ifMatch: `"3"`, body: `{"url":"https://n.example/","events":["*"],"enabled":true,"description":""}`},
		{name: "disable", args: []string{"webhook", "edit", "whk_1", "--disable"}, method: "PATCH", path: "/v1/webhooks/whk_1", body: `{"enabled":false}`},
		{name: "delete", args: []string{"webhook", "delete", "whk_1", "--yes"}, method: "DELETE", path: "/v1/webhooks/whk_1"},
		{name: "rotate", args: []string{"webhook", "rotate-secret", "whk_1", "--if-version", "3"}, method: "POST", path: "/v1/webhooks/whk_1/rotate-secret", ifMatch: `"3"`},
		{name: "test", args: []string{"webhook", "test", "whk_1"}, method: "POST", path: "/v1/webhooks/whk_1/test"},
		{name: "deliveries", args: []string{"webhook", "deliveries", "whk_1", "--status", "failed"}, method: "GET", path: "/v1/webhooks/whk_1/deliveries",
			query: url.Values{"status": {"failed"}}},
		{name: "retry", args: []string{"webhook", "retry", "whk_1", "dlv_1"}, method: "POST", path: "/v1/webhooks/whk_1/deliveries/dlv_1/retry"},
	})
}

func TestWebhookCLIOutput(t *testing.T) {
	a := webhookFake(t)
	r := cli(t, a, nil, nil, "webhook", "create", "--url", "https://hooks.example.com/t", "--events", "token.revoked")
	if r.err != nil || !strings.Contains(r.stdout, "  "+webhookSecret+"\n") || !strings.Contains(r.stdout, "Copy this secret now: it will not be shown again.") {
		t.Errorf("create printed %q (%v)", r.stdout, r.err)
	}
	r = cli(t, a, nil, nil, "webhook", "rotate-secret", "whk_1")
	if r.err != nil || strings.Count(r.stdout, webhookSecret) != 1 || !strings.Contains(r.stdout, "not be shown again") {
		t.Errorf("rotate printed %q (%v)", r.stdout, r.err)
	}
	r = cli(t, a, nil, nil, "webhook", "list")
	for _, want := range []string{"whk_1", "https://hooks.example.com/t", "all", "token.revoked, token.rotated", "no (failing)", "2026-12-01 11:00 UTC"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cli(t, a, nil, nil, "webhook", "deliveries", "whk_1")
	for _, want := range []string{"dlv_1", "token.revoked", "pending", "503", "server answered 503"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("deliveries lack %q:\n%s", want, r.stdout)
		}
	}
	r = cli(t, a, nil, nil, "webhook", "test", "whk_1")
	if !strings.Contains(r.stdout, "evt_9") {
		t.Errorf("test printed %q", r.stdout)
	}
	if r := cli(t, a, nil, nil, "webhook", "edit", "whk_1"); r.err == nil || !strings.Contains(r.err.Error(), "nothing to change") {
		t.Errorf("edit without flags: %v", r.err)
	}
	if r := cli(t, a, nil, nil, "webhook", "edit", "whk_1", "--enable", "--disable"); r.err == nil {
		t.Error("--enable with --disable was accepted")
	}
}

func TestWebhookCLIDeleteConfirmation(t *testing.T) {
	a := webhookFake(t)
	r := cli(t, a, nil, nil, "webhook", "delete", "whk_1")
	if want := "refusing to delete webhook whk_1 and its deliveries without confirmation: stdin is not a terminal; pass --yes"; r.err == nil || r.err.Error() != want {
		t.Errorf("error %v, want %q", r.err, want)
	}
	if n := len(a.requests()); n != 0 {
		t.Fatalf("the server got %d requests", n)
	}
	r = cli(t, a, tty{strings.NewReader("y\n")}, nil, "webhook", "delete", "whk_1")
	if want := "Delete webhook whk_1 (https://hooks.example.com/t) and its deliveries? This cannot be undone. [y/N] "; r.err != nil || r.stderr != want {
		t.Errorf("prompt %q (%v), want %q", r.stderr, r.err, want)
	}
	var calls []string
	for _, q := range a.requests() {
		calls = append(calls, q.Method+" "+q.Path)
	}
	if !reflect.DeepEqual(calls, []string{"GET /v1/webhooks/whk_1", "DELETE /v1/webhooks/whk_1"}) {
		t.Errorf("calls %v", calls)
	}
}
