package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/mail/mailtest"
)

// The end-to-end rule for mail: a token expiring in 2 days
// produces exactly one token.expiring mail (to the owner user; an admin who
// opted out gets none, a viewer is not mailed) and one webhook delivery,
// with the scheduler running for several ticks.
func TestExpiringTokenMailsOnceAndDeliversOnce(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})

	var mu sync.Mutex
	hooks := map[string]int{} // "type token_id" → deliveries received
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type    string `json:"type"`
			TokenID string `json:"token_id"`
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &ev)
		mu.Lock()
		hooks[ev.Type+" "+ev.TokenID]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	received := func(tokenID string) int {
		mu.Lock()
		defer mu.Unlock()
		return hooks[tokend.EventTokenExpiring+" "+tokenID]
	}

	in := startTokend(t, t.TempDir(), map[string]string{
		"TOKEND_SMTP_URL": "smtp://tokend:any@" + srv.SMTPAddr, "TOKEND_SMTP_FROM": "tokend <tokend@example.com>",
		"TOKEND_PUBLIC_URL": "https://tokend.example.com",
	}, "--event-interval", "100ms", "--webhook-allow-http", "--webhook-allow-private")

	// The owner sets up the dashboard, adds an admin and a viewer; the
	// admin opts out of token.expiring on their profile.
	const pw = "correct horse battery staple"
	owner := &plainBrowser{base: in.url, cookies: map[string]string{}}
	_, page := owner.do(t, "GET", "/setup", nil)
	if res, body := owner.do(t, "POST", "/setup", url.Values{
		"csrf": {pageCSRF(t, page)}, "token": {in.bootstrap}, "name": {"Olivia Owner"},
		"email": {"owner@example.com"}, "password": {pw}, "confirm": {pw},
	}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d\n%s", res.StatusCode, body)
	}
	for _, u := range []struct{ email, role string }{{"admin@example.com", "admin"}, {"viewer@example.com", "viewer"}} {
		_, page := owner.do(t, "GET", "/users", nil)
		if res, body := owner.do(t, "POST", "/users", url.Values{
			"csrf": {pageCSRF(t, page)}, "name": {u.role}, "email": {u.email}, "role": {u.role}, "password": {pw},
		}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("adding %s: %d\n%s", u.email, res.StatusCode, body)
		}
	}
	admin := &plainBrowser{base: in.url, cookies: map[string]string{}}
	_, page = admin.do(t, "GET", "/login", nil)
	if res, body := admin.do(t, "POST", "/login", url.Values{"csrf": {pageCSRF(t, page)}, "email": {"admin@example.com"}, "password": {pw}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %d\n%s", res.StatusCode, body)
	}
	_, page = admin.do(t, "GET", "/profile", nil)
	if res, body := admin.do(t, "POST", "/profile", url.Values{"csrf": {pageCSRF(t, page)}, "receive": {tokend.EventTokenExpired}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin opting out: %d\n%s", res.StatusCode, body)
	}

	// A webhook for token.expiring, through the API.
	status, body := in.call(t, "POST", "/v1/webhooks", in.bootstrap, map[string]any{
		"url": receiver.URL + "/hook", "events": []string{tokend.EventTokenExpiring},
	})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/webhooks: %d %s", status, body)
	}

	// An application and a token that expires in 2 days.
	status, body = in.call(t, "POST", "/v1/apps", in.bootstrap, map[string]any{"name": "Shop"})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/apps: %d %s", status, body)
	}
	var app tokend.App
	json.Unmarshal(body, &app)
	expiringToken := func(name string) string {
		t.Helper()
		status, body := in.call(t, "POST", "/v1/tokens", in.bootstrap, map[string]any{
			"app_id": app.ID, "name": name, "expires_at": time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second),
		})
		if status != http.StatusCreated {
			t.Fatalf("POST /v1/tokens: %d %s", status, body)
		}
		var created struct{ Token tokend.Token }
		json.Unmarshal(body, &created)
		return created.Token.ID
	}
	// waitFor waits for the mail and the delivery about a token.
	waitFor := func(tokenID string, mails int) {
		t.Helper()
		srv.WaitMessages(t, mails, 30*time.Second)
		deadline := time.Now().Add(30 * time.Second)
		for received(tokenID) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no token.expiring delivery about %s in 30 s; log:\n%s", tokenID, in.stderr.String())
			}
			time.Sleep(50 * time.Millisecond) // polling the receiver, with a deadline
		}
	}
	id := expiringToken("Billing key")
	waitFor(id, 1)
	// Later ticks must not raise it again. A token made now is raised by
	// a later tick, which also goes over the first: once its mail is in,
	// the scheduler has looked at the first token again. Twice over.
	for i, name := range []string{"Probe one", "Probe two"} {
		waitFor(expiringToken(name), i+2)
	}
	msgs := srv.Messages(t)
	var about []mailtest.Summary
	for _, m := range msgs {
		if strings.Contains(m.Subject, "Billing key") {
			about = append(about, m)
		}
	}
	if len(msgs) != 3 || len(about) != 1 {
		t.Fatalf("mailpit has %d mails, %d about the first token; want 3 and exactly 1: %+v", len(msgs), len(about), msgs)
	}
	if n := received(id); n != 1 {
		t.Errorf("the receiver got %d token.expiring deliveries about the first token, want exactly 1", n)
	}
	msg := srv.Message(t, about[0].ID)
	if len(msg.To) != 1 || msg.To[0].Address != "owner@example.com" {
		t.Errorf("the mail went to %+v, want the owner alone", msg.To)
	}
	if want := "Token Billing key of Shop expires in 2 days"; msg.Subject != want {
		t.Errorf("Subject %q, want %q", msg.Subject, want)
	}
	if link := "https://tokend.example.com/tokens/" + id; !strings.Contains(msg.Text, link) {
		t.Errorf("the mail does not link to %s:\n%s", link, msg.Text)
	}
	if strings.Contains(in.stderr.String(), "tokend:any@") {
		t.Error("the log holds the SMTP password")
	}
}
