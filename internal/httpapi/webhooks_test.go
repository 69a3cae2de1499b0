package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

type webhookCreated struct {
	Webhook tokend.Webhook `json:"webhook"`
	Secret  string         `json:"secret"`
}

func (h *harness) createWebhook(in any) webhookCreated {
	h.t.Helper()
	r := h.do("POST", "/v1/webhooks", h.owner, in)
	if r.status != http.StatusCreated {
		h.t.Fatalf("create webhook = %d: %s", r.status, r.body)
	}
	var out webhookCreated
	r.json(h.t, &out)
	return out
}

func (h *harness) webhookCount() int {
	h.t.Helper()
	var page tokend.Page[tokend.Webhook]
	h.do("GET", "/v1/webhooks?limit=200", h.owner, nil).json(h.t, &page)
	return len(page.Items)
}

// addDelivery makes a delivery of a webhook.test event to w, as the
// dispatcher would, and answers its id.
func (h *harness) addDelivery(w tokend.Webhook) string {
	h.t.Helper()
	r := h.do("POST", "/v1/webhooks/"+w.ID+"/test", h.owner, nil)
	if r.status != http.StatusAccepted {
		h.t.Fatalf("test webhook = %d: %s", r.status, r.body)
	}
	var ans tokend.WebhookTestAnswer
	r.json(h.t, &ans)
	var id, evt string
	_, err := h.webhooks.DispatchEvents(context.Background(), 100, func(n tokend.Notification) ([]tokend.Delivery, error) {
		if n.Type != tokend.EventWebhookTest || n.Data["webhook_id"] != w.ID {
			return nil, nil
		}
		id, evt = "dlv_"+strings.TrimPrefix(n.ID, "evt_"), n.ID
		return []tokend.Delivery{{ID: id, Kind: tokend.DeliveryWebhook, WebhookID: w.ID, EventSeq: n.Seq, EventID: n.ID,
			EventType: n.Type, Status: tokend.DeliveryPending, CreatedAt: time.Now()}}, nil
	})
	if err != nil {
		h.t.Fatalf("dispatching the test event: %v", err)
	}
	if id == "" {
		h.t.Fatal("the test event is not in the outbox: no delivery to test")
	}
	if evt != ans.EventID {
		h.t.Errorf("the test answered event %s, but the outbox holds it as %s: the store must keep Notice.ID", ans.EventID, evt)
	}
	// One failed attempt, as the dispatcher records it.
	now := time.Now()
	claimed, err := h.webhooks.ClaimDeliveries(context.Background(), now.Add(time.Second), time.Minute, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range claimed {
		if c.Delivery.ID != id {
			continue
		}
		st, next := 503, now.Add(time.Hour)
		d := c.Delivery
		d.Status, d.NextAt, d.LastStatus, d.LastError = tokend.DeliveryPending, &next, &st, "server answered 503"
		if err := h.webhooks.FinishAttempt(context.Background(), d, tokend.DeliveryAttempt{N: 1, At: now, HTTPStatus: &st,
			DurationMS: 12, Error: "server answered 503", NextRetryAt: &next}); err != nil {
			h.t.Fatal(err)
		}
	}
	return id
}

func TestWebhookLifecycle(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			app := h.createApp(tokend.AppInput{Name: "shop"})
			c := h.createWebhook(map[string]any{"url": "https://hooks.example.com/tokend", "events": []string{"token.revoked", "token.rotated"},
				"app_id": app.ID, "description": "billing"})
			w := c.Webhook
			if !strings.HasPrefix(c.Secret, "whsec_") || !strings.HasPrefix(w.ID, "whk_") || !w.Enabled || w.AppID != app.ID ||
				!slices.Equal(w.Events, []string{"token.revoked", "token.rotated"}) || w.Version != 1 {
				t.Fatalf("created %+v with secret %q", w, c.Secret)
			}
			r := h.do("GET", "/v1/webhooks/"+w.ID, h.owner, nil)
			if r.status != 200 || r.header.Get("ETag") != `"1"` {
				t.Fatalf("get = %d %s", r.status, r.body)
			}
			// Edit under a stale ETag: 412, nothing changed.
			if r := h.do("PATCH", "/v1/webhooks/"+w.ID, h.owner, map[string]any{"enabled": false}, "If-Match", `"7"`); r.status != http.StatusPreconditionFailed {
				t.Fatalf("stale patch = %d %s", r.status, r.body)
			}
			r = h.do("PATCH", "/v1/webhooks/"+w.ID, h.owner, map[string]any{"enabled": false, "events": []string{"*"}}, "If-Match", `"1"`)
			var got tokend.Webhook
			r.json(t, &got)
			if r.status != 200 || got.Enabled || !slices.Equal(got.Events, []string{"*"}) || got.Version != 2 {
				t.Fatalf("patch = %d %s", r.status, r.body)
			}
			// A disabled endpoint is not sent test events.
			if r := h.do("POST", "/v1/webhooks/"+w.ID+"/test", h.owner, nil); r.status != http.StatusConflict {
				t.Fatalf("test of a disabled endpoint = %d %s", r.status, r.body)
			}
			h.do("PATCH", "/v1/webhooks/"+w.ID, h.owner, map[string]any{"enabled": true})
			// Rotate: a new secret, the old one signing for 24 h more.
			r = h.do("POST", "/v1/webhooks/"+w.ID+"/rotate-secret", h.owner, nil)
			var rot webhookCreated
			r.json(t, &rot)
			if r.status != 200 || !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == c.Secret || rot.Webhook.PreviousSecretUntil == nil ||
				rot.Webhook.PreviousSecretUntil.Sub(time.Now()) < 23*time.Hour {
				t.Fatalf("rotate = %d %s", r.status, r.body)
			}
			// Test event, then its delivery with its attempts, then retry.
			dlv := h.addDelivery(w)
			if r := h.do("GET", "/v1/webhooks/"+w.ID+"/deliveries?status=nonsense", h.owner, nil); r.status != 422 || !slices.Contains(fields(r.problem(t)), "status") {
				t.Fatalf("bad status filter = %d %s", r.status, r.body)
			}
			other := h.createWebhook(map[string]any{"url": "https://other.example.com/", "events": []string{"*"}}).Webhook
			wantActions := []string{tokend.ActionWebhookCreate, tokend.ActionWebhookUpdate, tokend.ActionWebhookRotateSecret, tokend.ActionWebhookTest,
				tokend.ActionDeliveryRetry}
			{
				var deliveries tokend.Page[tokend.Delivery]
				r = h.do("GET", "/v1/webhooks/"+w.ID+"/deliveries", h.owner, nil)
				r.json(t, &deliveries)
				if r.status != 200 || len(deliveries.Items) != 1 || deliveries.Items[0].ID != dlv || len(deliveries.Items[0].History) != 1 ||
					deliveries.Items[0].History[0].Error != "server answered 503" {
					t.Fatalf("deliveries = %d %s", r.status, r.body)
				}
				if r := h.do("GET", "/v1/webhooks/"+other.ID+"/deliveries", h.owner, nil); r.status != 200 || strings.Contains(string(r.body), dlv) {
					t.Fatalf("another endpoint lists the delivery: %d %s", r.status, r.body)
				}
				r = h.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/"+dlv+"/retry", h.owner, nil)
				var d tokend.Delivery
				r.json(t, &d)
				if r.status != 200 || d.Status != tokend.DeliveryPending {
					t.Fatalf("retry = %d %s", r.status, r.body)
				}
				// A delivery through another endpoint's id: not found.
				if r := h.do("POST", "/v1/webhooks/"+other.ID+"/deliveries/"+dlv+"/retry", h.owner, nil); r.status != 404 {
					t.Fatalf("retry through another webhook = %d %s", r.status, r.body)
				}
				// Nothing is sent to a disabled endpoint, a retry no more
				// than a test event: 409, and the delivery stays as it was.
				h.do("PATCH", "/v1/webhooks/"+w.ID, h.owner, map[string]any{"enabled": false})
				r = h.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/"+dlv+"/retry", h.owner, nil)
				if r.status != http.StatusConflict || r.problem(t).Code != tokend.ECodeConflict {
					t.Fatalf("retry to a disabled endpoint = %d %s", r.status, r.body)
				}
				h.do("PATCH", "/v1/webhooks/"+w.ID, h.owner, map[string]any{"enabled": true})
			}
			// Audit: every change, never a secret.
			var audit tokend.Page[tokend.Event]
			ra := h.do("GET", "/v1/audit?limit=200", h.owner, nil)
			ra.json(t, &audit)
			var actions []string
			for _, e := range audit.Items {
				actions = append(actions, e.Action)
			}
			for _, want := range wantActions {
				if !slices.Contains(actions, want) {
					t.Errorf("audit lacks %s: %v", want, actions)
				}
			}
			// Delete under If-Match, then it is gone.
			if r := h.do("DELETE", "/v1/webhooks/"+w.ID, h.owner, nil, "If-Match", `"1"`); r.status != 412 {
				t.Fatalf("stale delete = %d %s", r.status, r.body)
			}
			if r := h.do("DELETE", "/v1/webhooks/"+w.ID, h.owner, nil); r.status != 204 {
				t.Fatalf("delete = %d %s", r.status, r.body)
			}
			if r := h.do("GET", "/v1/webhooks/"+w.ID, h.owner, nil); r.status != 404 {
				t.Fatalf("get after delete = %d %s", r.status, r.body)
			}
			ra2 := h.do("GET", "/v1/audit?action=webhook.delete", h.owner, nil)
			// The secrets appear in no answer but create and rotate, and in no log.
			list := h.do("GET", "/v1/webhooks", h.owner, nil)
			for _, sec := range []string{c.Secret, rot.Secret} {
				key := strings.TrimPrefix(sec, "whsec_")
				for name, body := range map[string]string{"list": string(list.body), "audit": string(ra.body) + string(ra2.body), "logs": h.logs.String()} {
					if strings.Contains(body, key) {
						t.Errorf("the signing secret appears in the %s", name)
					}
				}
			}
		})
	}
}

// Every hostile value in every field: a 4xx problem naming the field, and
// nothing created.
func TestWebhookHostileInput(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			ok := map[string]any{"url": "https://hooks.example.com/x", "events": []string{"token.revoked"}}
			with := func(k string, v any) map[string]any {
				m := map[string]any{}
				for a, b := range ok {
					m[a] = b
				}
				m[k] = v
				return m
			}
			cases := []struct {
				name  string
				body  any
				want  int
				field string
			}{
				{"no url", map[string]any{"events": []string{"*"}}, 422, "url"},
				{"http", with("url", "http://hooks.example.com/"), 422, "url"},
				{"relative", with("url", "/hooks"), 422, "url"},
				{"ftp", with("url", "ftp://hooks.example.com/"), 422, "url"},
				{"javascript", with("url", "javascript:alert(1)"), 422, "url"},
				{"userinfo", with("url", "https://user:pw@hooks.example.com/"), 422, "url"},
				{"loopback", with("url", "https://127.0.0.1/"), 422, "url"},
				{"private", with("url", "https://10.1.2.3:8443/"), 422, "url"},
				{"link-local metadata", with("url", "https://169.254.169.254/latest"), 422, "url"},
				{"ipv6 loopback", with("url", "https://[::1]/"), 422, "url"},
				{"ipv4-mapped private", with("url", "https://[::ffff:192.168.0.1]/"), 422, "url"},
				{"localhost", with("url", "https://localhost/"), 422, "url"},
				{"long", with("url", "https://hooks.example.com/"+strings.Repeat("a", 2048)), 422, "url"},
				{"NUL in url", with("url", "https://hooks.example.com/\x00"), 422, "url"},
				{"bidi in url", with("url", "https://hooks.example.com/\u202e"), 422, "url"},
				{"invalid UTF-8 in url", "{\"url\":\"https://hooks.example.com/\xff\",\"events\":[\"*\"]}", 422, "url"},
				{"invalid UTF-8 in description", "{\"url\":\"https://hooks.example.com/\",\"events\":[\"*\"],\"description\":\"\xc3\"}", 422, "description"},
				{"bad port", with("url", "https://hooks.example.com:99999/"), 422, "url"},
				{"no events", with("events", []string{}), 422, "events"},
				{"unknown event", with("events", []string{"token.exploded"}), 422, "events[0]"},
				{"webhook.test is not subscribable", with("events", []string{"webhook.test"}), 422, "events[0]"},
				{"duplicate event", with("events", []string{"token.revoked", "token.revoked"}), 422, "events[1]"},
				{"star and more", with("events", []string{"*", "token.revoked"}), 422, "events"},
				{"NUL event", with("events", []string{"token.\x00"}), 422, "events[0]"},
				{"events not a list", with("events", "token.revoked"), 422, "events"},
				{"long description", with("description", strings.Repeat("é", 1001)), 422, "description"},
				{"NUL description", with("description", "a\x00b"), 422, "description"},
				{"bidi description", with("description", "a\u202eb"), 422, "description"},
				{"missing app", with("app_id", "app_nothere"), 404, "app_id"},
				{"app of bad shape", with("app_id", "../../etc"), 404, "app_id"},
				{"system app", with("app_id", tokend.SystemAppID), 422, "app_id"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := h.do("POST", "/v1/webhooks", h.owner, c.body)
					if r.status != c.want {
						t.Fatalf("= %d, want %d: %s", r.status, c.want, r.body)
					}
					if fs := fields(r.problem(t)); !slices.Contains(fs, c.field) {
						t.Errorf("the problem names %v, not %s: %s", fs, c.field, r.body)
					}
				})
			}
			if r := h.do("POST", "/v1/webhooks", h.owner, `{"url":"https://h.example.com/","events":["*"],"description":"`+strings.Repeat("a", 10<<20)+`"}`); r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("10 MB body = %d", r.status)
			}
			if r := h.do("POST", "/v1/webhooks", h.owner, `{"url":`); r.status != 400 {
				t.Errorf("broken JSON = %d %s", r.status, r.body)
			}
			if n := h.webhookCount(); n != 0 {
				t.Fatalf("hostile input created %d webhooks", n)
			}
			w := h.createWebhook(ok).Webhook
			for _, c := range []struct {
				body  any
				field string
			}{
				{map[string]any{"url": "http://x.example/"}, "url"},
				{map[string]any{"events": []string{}}, "events"},
				{map[string]any{"description": "\u2066"}, "description"},
				{map[string]any{"enabled": "yes"}, "enabled"},
				{map[string]any{"url": nil}, "url"},
				{map[string]any{"events": nil, "enabled": true}, "events"},
			} {
				r := h.do("PATCH", "/v1/webhooks/"+w.ID, h.owner, c.body)
				if r.status != 422 || !slices.Contains(fields(r.problem(t)), c.field) {
					t.Errorf("PATCH %v = %d %s", c.body, r.status, r.body)
				}
			}
			// Ids of every odd shape: 404 (or 422 from the path's limit), never 500.
			for _, id := range []string{"whk_nothere", "tok_" + strings.Repeat("x", 20), "%00", "%E2%80%AE", "%FF", strings.Repeat("w", 64)} {
				for _, m := range []struct{ method, suffix string }{{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/rotate-secret"}, {"POST", "/test"}, {"GET", "/deliveries"}, {"POST", "/deliveries/" + id + "/retry"}} {
					var body any
					if m.method == "PATCH" {
						body = map[string]any{"enabled": false}
					}
					r := h.do(m.method, "/v1/webhooks/"+id+m.suffix, h.owner, body)
					if r.status != 404 && r.status != 422 {
						t.Errorf("%s %s = %d %s", m.method, id+m.suffix, r.status, r.body)
					}
				}
			}
			// Query parameters of every odd shape: a 4xx, never a 500.
			for _, q := range []string{"/v1/webhooks?cursor=garbage", "/v1/webhooks?cursor=" + cursorOf("\x00\xff"), "/v1/webhooks?app_id=%00",
				"/v1/webhooks?app_id=app_%E2%80%AE", "/v1/webhooks?limit=0", "/v1/webhooks?limit=201",
				"/v1/webhooks/" + w.ID + "/deliveries?cursor=garbage", "/v1/webhooks/" + w.ID + "/deliveries?status=%00",
				"/v1/webhooks/" + w.ID + "/deliveries?status=" + strings.Repeat("p", 100)} {
				if r := h.do("GET", q, h.owner, nil); r.status >= 500 || r.status == 200 && strings.Contains(q, "%00") {
					t.Errorf("GET %s = %d %s", q, r.status, r.body)
				}
			}
			if got, _ := h.webhooks.Webhook(context.Background(), w.ID); got.Version != 1 || got.URL != ok["url"] {
				t.Errorf("refused edits changed the webhook: %+v", got)
			}
		})
	}
}

func TestWebhookPermissions(t *testing.T) {
	h := newHarness(t)
	w := h.createWebhook(map[string]any{"url": "https://hooks.example.com/", "events": []string{"*"}}).Webhook
	admin := func(perms ...string) string {
		_, sec := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "t " + strings.Join(perms, " "), Access: tokend.AccessCustom, Permissions: perms})
		return sec
	}
	reader := admin(tokend.PermAppsRead)
	tokensOnly := admin(tokend.PermTokensRead, tokend.PermTokensWrite)
	writer := admin(tokend.PermAppsRead, tokend.PermAppsWrite)
	reads := []struct{ method, path string }{
		{"GET", "/v1/webhooks"}, {"GET", "/v1/webhooks/" + w.ID}, {"GET", "/v1/webhooks/" + w.ID + "/deliveries"},
	}
	writes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/2", "events": []string{"*"}}},
		{"PATCH", "/v1/webhooks/" + w.ID, map[string]any{"description": "x"}},
		{"POST", "/v1/webhooks/" + w.ID + "/rotate-secret", nil},
		{"POST", "/v1/webhooks/" + w.ID + "/test", nil},
		{"POST", "/v1/webhooks/" + w.ID + "/deliveries/dlv_nothere/retry", nil},
		{"DELETE", "/v1/webhooks/" + w.ID, nil},
	}
	for _, r := range reads {
		if got := h.do(r.method, r.path, reader, nil).status; got != 200 {
			t.Errorf("apps:read %s %s = %d", r.method, r.path, got)
		}
		if got := h.do(r.method, r.path, tokensOnly, nil).status; got != 403 {
			t.Errorf("without apps:read %s %s = %d", r.method, r.path, got)
		}
	}
	for _, r := range writes {
		if got := h.do(r.method, r.path, reader, r.body).status; got != 403 {
			t.Errorf("apps:read only %s %s = %d", r.method, r.path, got)
		}
	}
	if n := h.webhookCount(); n != 1 {
		t.Fatalf("refused writes left %d webhooks", n)
	}
	for _, r := range writes {
		if got := h.do(r.method, r.path, writer, r.body).status; got >= 300 && got != 404 {
			t.Errorf("apps:write %s %s = %d", r.method, r.path, got)
		}
	}
}
