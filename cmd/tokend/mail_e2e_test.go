package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
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
	rcv := newReceiver(t)
	in := startTokend(t, t.TempDir(), map[string]string{
		"TOKEND_SMTP_URL": "smtp://tokend:any@" + srv.SMTPAddr, "TOKEND_SMTP_FROM": "tokend <tokend@example.com>",
		"TOKEND_PUBLIC_URL": "https://tokend.example.com",
	}, append([]string{"--event-interval", "100ms"}, webhookFlags...)...)

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

	// A webhook for token.expiring, an application, and tokens that
	// expire in 2 days.
	in.createWebhook(t, in.bootstrap, rcv.url(), tokend.EventTokenExpiring)
	app := in.newApp(t, in.bootstrap, "Shop")
	expiringToken := func(name string) string {
		t.Helper()
		expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		var c created
		in.mustCall(t, 201, "POST", "/v1/tokens", in.bootstrap, tokend.TokenInput{AppID: app.ID, Name: name, ExpiresAt: &expires}, &c)
		return c.Token.ID
	}
	about := func(tokenID string) func(received) bool {
		return func(x received) bool {
			var n tokend.Notification
			return json.Unmarshal(x.body, &n) == nil && n.Type == tokend.EventTokenExpiring && n.TokenID == tokenID
		}
	}
	// arrived waits for the mails and the delivery about a token.
	arrived := func(tokenID string, mails int) {
		t.Helper()
		srv.WaitMessages(t, mails, 30*time.Second)
		rcv.waitFor(t, 1, 30*time.Second, about(tokenID))
	}
	id := expiringToken("Billing key")
	arrived(id, 1)
	// Later ticks must not raise it again. A token made now is raised by
	// a later tick, which also goes over the first: once its mail is in,
	// the scheduler has looked at the first token again. Twice over.
	for i, name := range []string{"Probe one", "Probe two"} {
		arrived(expiringToken(name), i+2)
	}
	msgs := srv.Messages(t)
	var first []mailtest.Summary
	for _, m := range msgs {
		if strings.Contains(m.Subject, "Billing key") {
			first = append(first, m)
		}
	}
	if len(msgs) != 3 || len(first) != 1 {
		t.Fatalf("mailpit has %d mails, %d about the first token; want 3 and exactly 1: %+v", len(msgs), len(first), msgs)
	}
	if n := len(rcv.waitFor(t, 1, 0, about(id))); n != 1 {
		t.Errorf("the receiver got %d token.expiring deliveries about the first token, want exactly 1", n)
	}
	msg := srv.Message(t, first[0].ID)
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
