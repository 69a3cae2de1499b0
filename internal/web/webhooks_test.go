package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var webhookLocRE = regexp.MustCompile(`^/webhooks/(whk_[A-Za-z0-9]+)$`)

// addWebhook adds an endpoint through the dashboard's form and answers
// its id and the secret its page showed.
func addWebhook(t *testing.T, c *client, form url.Values) (string, string) {
	t.Helper()
	res := c.submit(t, "/webhooks", "/webhooks", form)
	wantStatus(t, res, http.StatusSeeOther)
	m := webhookLocRE.FindStringSubmatch(res.Location())
	if m == nil {
		t.Fatalf("adding redirected to %q", res.Location())
	}
	page := c.get(t, res.Location())
	sec, ok := revealedSecret(page.Body)
	if !ok || !strings.HasPrefix(sec, "whsec_") {
		t.Fatalf("the endpoint's page does not show the signing secret:\n%s", page.Body)
	}
	wantInBody(t, page, "only time the signing secret is shown", `data-copy="new-secret"`)
	again := c.get(t, res.Location())
	if strings.Contains(again.Body, sec) {
		t.Fatal("the signing secret is shown a second time")
	}
	return m[1], sec
}

// addWebhookDelivery makes a delivery of the last webhook.test event of
// endpoint id, with one failed attempt, as the dispatcher would.
func addWebhookDelivery(t *testing.T, h *harness, id string) string {
	t.Helper()
	ctx := context.Background()
	now := h.clock.Now()
	st := 503
	var dlv string
	if _, err := h.webhooks.DispatchEvents(ctx, 100, func(n tokend.Notification) ([]tokend.Delivery, error) {
		if n.Type != tokend.EventWebhookTest || n.Data["webhook_id"] != id || dlv != "" {
			return nil, nil
		}
		dlv = "dlv_" + strings.TrimPrefix(n.ID, "evt_")
		return []tokend.Delivery{{ID: dlv, Kind: tokend.DeliveryWebhook, WebhookID: id, EventSeq: n.Seq, EventID: n.ID,
			EventType: n.Type, Status: tokend.DeliveryPending, CreatedAt: now}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if dlv == "" {
		t.Fatal("the test event is not in the outbox: no delivery to show")
	}
	claimed, err := h.webhooks.ClaimDeliveries(ctx, now.Add(time.Second), time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claimed {
		if c.Delivery.ID == dlv {
			d := c.Delivery
			d.Status, d.NextAt, d.LastStatus, d.LastError = tokend.DeliveryFailed, nil, &st, "server answered 503 <script>"
			if err := h.webhooks.FinishAttempt(ctx, d, tokend.DeliveryAttempt{N: 1, At: now, HTTPStatus: &st, DurationMS: 9,
				Error: d.LastError}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dlv
}

func TestWebhookPages(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app, err := h.svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	admin := h.login(t, tokend.RoleAdmin)

	list := admin.get(t, "/webhooks")
	wantStatus(t, list, http.StatusOK)
	wantInBody(t, list, `href="/webhooks" aria-current="page"`, "Add endpoint", "No webhook endpoints yet",
		`value="*"`, `value="token.revoked"`, `<option value="`+app.ID+`">Shop</option>`)
	if strings.Contains(list.Body, `<option value="`+tokend.SystemAppID+`"`) {
		t.Error("the system application is offered")
	}

	// A refused form shows its problems next to the fields and adds nothing.
	bad := admin.submit(t, "/webhooks", "/webhooks", url.Values{"url": {"http://127.0.0.1/x"}, "in_dialog": {"1"}})
	wantStatus(t, bad, http.StatusUnprocessableEntity)
	wantInBody(t, bad, `href="#w-url"`, `href="#w-events-all"`, `id="create-webhook-dialog" aria-labelledby="create-webhook-title" open`)
	bad = admin.submit(t, "/webhooks/new", "/webhooks", url.Values{"url": {"https://h.example/\u202e"}, "events": {"token.revoked"}, "description": {"a\x00b"}})
	wantStatus(t, bad, http.StatusUnprocessableEntity)
	wantInBody(t, bad, `href="#w-url"`, `href="#w-description"`, "Add webhook endpoint")

	id, sec := addWebhook(t, admin, url.Values{"url": {"https://hooks.example.com/tokend"}, "events": {"token.revoked", "token.rotated"},
		"app_id": {app.ID}, "description": {"billing cache"}})
	page := admin.get(t, "/webhooks/"+id)
	wantInBody(t, page, "https://hooks.example.com/tokend", "<code>token.revoked</code>, <code>token.rotated</code>", ">Shop</a>",
		"billing cache", "No deliveries yet", "Send test event", "Rotate secret", `data-dialog="dlg-delete-webhook"`)
	list = admin.get(t, "/webhooks")
	wantInBody(t, list, `data-webhook-id="`+id+`"`, "Shop")
	wantInBody(t, admin.get(t, "/"), `added the webhook endpoint <a href="/webhooks/`+id+`">https://hooks.example.com/tokend</a>`)

	// Edit: "All events" wins over single types.
	wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id, url.Values{"url": {"https://hooks.example.com/v2"},
		"events": {"*", "token.created"}, "description": {""}, "version": {"1"}}), "/webhooks/"+id)
	wh, _ := h.webhooks.Webhook(ctx, id)
	if wh.URL != "https://hooks.example.com/v2" || len(wh.Events) != 1 || wh.Events[0] != "*" || wh.AppID != app.ID {
		t.Fatalf("edited to %+v", wh)
	}
	// An edit from a stale page is refused and says so.
	stale := admin.submit(t, "/webhooks/"+id, "/webhooks/"+id, url.Values{"url": {"https://x.example/"}, "events": {"*"}, "version": {"1"}})
	wantStatus(t, stale, http.StatusPreconditionFailed)
	wantInBody(t, stale, `data-testid="stale"`)

	// Disable, enable, test, rotate.
	wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/disable", url.Values{}), "/webhooks/"+id)
	page = admin.get(t, "/webhooks/"+id)
	wantInBody(t, page, `data-testid="webhook-disabled"`, `data-testid="action-enable"`, "disabled")
	wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/enable", url.Values{}), "/webhooks/"+id)
	wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/test", url.Values{}), "/webhooks/"+id)
	wantInBody(t, admin.get(t, "/webhooks/"+id), "Test event evt_")
	wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/rotate-secret", url.Values{}), "/webhooks/"+id)
	page = admin.get(t, "/webhooks/"+id)
	sec2, ok := revealedSecret(page.Body)
	if !ok || sec2 == sec {
		t.Fatalf("the rotated secret is not shown:\n%s", page.Body)
	}
	wantInBody(t, page, "previous secret too", "Signs alongside the new one until")

	// Deliveries with their attempts, and retry.
	{
		dlv := addWebhookDelivery(t, h, id)
		page = admin.get(t, "/webhooks/"+id)
		wantInBody(t, page, `data-delivery-id="`+dlv+`"`, "webhook.test", "503", "server answered 503 &lt;script&gt;", `data-testid="retry-`+dlv+`"`)
		wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/deliveries/"+dlv+"/retry", url.Values{}), "/webhooks/"+id)
		wantInBody(t, admin.get(t, "/webhooks/"+id), "sent again shortly")
		if d, _ := h.webhooks.Delivery(ctx, dlv); d.Status != tokend.DeliveryPending || d.NextAt == nil || d.NextAt.After(h.clock.Now().Add(time.Second)) {
			t.Errorf("retried delivery is %s, due %v", d.Status, d.NextAt)
		}
		// A disabled endpoint offers no retry, and refuses one.
		wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/disable", url.Values{}), "/webhooks/"+id)
		if page := admin.get(t, "/webhooks/"+id); strings.Contains(page.Body, `data-testid="retry-`+dlv+`"`) {
			t.Error("a disabled endpoint's page offers to retry a delivery")
		}
		wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/deliveries/"+dlv+"/retry", url.Values{}), "/webhooks/"+id)
		wantInBody(t, admin.get(t, "/webhooks/"+id), "flash-error", "The webhook is disabled")
		wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/enable", url.Values{}), "/webhooks/"+id)
	}
	// Another endpoint's delivery id: refused, nothing retried.
	wantRedirect(t, admin.submit(t, "/webhooks/"+id, "/webhooks/"+id+"/deliveries/dlv_nothere/retry", url.Values{}), "/webhooks/"+id)
	wantInBody(t, admin.get(t, "/webhooks/"+id), "flash-error")

	// The secrets are in no page but the one view, nor in the audit log.
	for _, p := range []string{"/webhooks", "/webhooks/" + id, "/audit"} {
		body := admin.get(t, p).Body
		for _, s := range []string{sec, sec2} {
			if strings.Contains(body, strings.TrimPrefix(s, "whsec_")) {
				t.Errorf("%s shows a signing secret", p)
			}
		}
	}

	// Delete, confirmed.
	wantInBody(t, admin.get(t, "/webhooks/"+id+"/delete"), "Delete endpoint", "https://hooks.example.com/v2")
	wantRedirect(t, admin.submit(t, "/webhooks/"+id+"/delete", "/webhooks/"+id+"/delete", url.Values{}), "/webhooks")
	wantStatus(t, admin.get(t, "/webhooks/"+id), http.StatusNotFound)
}

func TestWebhookPagesForViewers(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	wh, _, err := h.svc.CreateWebhook(ctx, tokend.SystemActor, tokend.WebhookInput{URL: "https://hooks.example.com/", Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	viewer := h.login(t, tokend.RoleViewer)
	list := viewer.get(t, "/webhooks")
	wantStatus(t, list, http.StatusOK)
	wantInBody(t, list, `href="/webhooks"`, wh.ID)
	if strings.Contains(list.Body, "Add endpoint") {
		t.Error("a viewer is offered to add an endpoint")
	}
	page := viewer.get(t, "/webhooks/"+wh.ID)
	wantStatus(t, page, http.StatusOK)
	for _, s := range []string{"Send test event", "Rotate secret", "edit-webhook-form", "Delete"} {
		if strings.Contains(page.Body, s) {
			t.Errorf("a viewer is offered %q", s)
		}
	}
	csrf := viewer.csrf(t, "/webhooks")
	for _, p := range []string{"/webhooks", "/webhooks/" + wh.ID, "/webhooks/" + wh.ID + "/disable", "/webhooks/" + wh.ID + "/delete",
		"/webhooks/" + wh.ID + "/rotate-secret", "/webhooks/" + wh.ID + "/test", "/webhooks/" + wh.ID + "/deliveries/dlv_x/retry"} {
		res := viewer.post(t, p, url.Values{"csrf": {csrf}, "url": {"https://evil.example/"}, "events": {"*"}})
		wantStatus(t, res, http.StatusForbidden)
	}
	wantStatus(t, viewer.get(t, "/webhooks/new"), http.StatusForbidden)
	after, _ := h.webhooks.Webhook(ctx, wh.ID)
	if after.Version != wh.Version || !after.Enabled {
		t.Errorf("the viewer changed the endpoint: %+v", after)
	}

	// An admin's form without its CSRF token changes nothing.
	admin := h.login(t, tokend.RoleAdmin)
	res := admin.post(t, "/webhooks/"+wh.ID+"/disable", url.Values{})
	if res.StatusCode == http.StatusSeeOther {
		t.Fatalf("a form without CSRF token was accepted")
	}
	if after, _ := h.webhooks.Webhook(ctx, wh.ID); !after.Enabled {
		t.Error("a form without CSRF token disabled the endpoint")
	}
}
