package httpapi_test

import (
	"slices"
	"testing"

	"github.com/tokend/tokend"
)

// GET /v1/events lists what the changes raised, newest first, with the
// filters and pages of the audit log.
func TestEventsList(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "shop"})
	tok, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci"})
	other, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "other"})
	if r := h.do("POST", "/v1/tokens/"+tok.ID+"/revoke", h.owner, nil); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	var page tokend.Page[tokend.Notification]
	h.do("GET", "/v1/events?token_id="+tok.ID, h.owner, nil).json(t, &page)
	var types []string
	for _, n := range page.Items {
		types = append(types, n.Type)
	}
	if !slices.Equal(types, []string{tokend.EventTokenRevoked, tokend.EventTokenCreated}) {
		t.Fatalf("events of %s: %v", tok.ID, types)
	}
	n := page.Items[0]
	if n.AppID != app.ID || n.TokenID != tok.ID || n.Data["status"] != "revoked" || n.Data["name"] != "ci" || n.Actor.Type != "token" {
		t.Errorf("token.revoked = %+v", n)
	}
	h.do("GET", "/v1/events?type=token.created&app_id="+app.ID, h.owner, nil).json(t, &page)
	if len(page.Items) != 2 || page.Items[0].TokenID != other.ID {
		t.Errorf("token.created of the app: %+v", page.Items)
	}
	// One at a time, following the cursor.
	var all []string
	next := "/v1/events?limit=1&app_id=" + app.ID
	for next != "" {
		var p tokend.Page[tokend.Notification]
		h.do("GET", next, h.owner, nil).json(t, &p)
		for _, n := range p.Items {
			all = append(all, n.ID)
		}
		next = ""
		if p.NextCursor != "" {
			next = "/v1/events?limit=1&app_id=" + app.ID + "&cursor=" + p.NextCursor
		}
	}
	if len(all) != 3 {
		t.Errorf("paging one at a time found %d events, want 3", len(all))
	}
	r := h.do("GET", "/v1/events?type=nope", h.owner, nil)
	if r.status != 422 {
		t.Fatalf("unknown type: %d", r.status)
	}
	if p := r.problem(t); len(p.Errors) == 0 || p.Errors[0].Field != "type" {
		t.Errorf("unknown type: %+v", p)
	}
}

// An app's own expiry notice period is set at creation, changed, and
// removed with null.
func TestAppExpiryNotice(t *testing.T) {
	h := newHarness(t)
	var app tokend.App
	h.do("POST", "/v1/apps", h.owner, map[string]any{"name": "shop", "expiry_notice": "14d"}).json(t, &app)
	if app.ExpiryNotice == nil || app.ExpiryNotice.String() != "14d" {
		t.Fatalf("created app's expiry_notice = %v", app.ExpiryNotice)
	}
	h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"expiry_notice": "36h"}).json(t, &app)
	if app.ExpiryNotice == nil || app.ExpiryNotice.String() != "36h" {
		t.Fatalf("edited expiry_notice = %v", app.ExpiryNotice)
	}
	h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"expiry_notice": nil}).json(t, &app)
	if app.ExpiryNotice != nil {
		t.Fatalf("expiry_notice after null = %v", app.ExpiryNotice)
	}
}
