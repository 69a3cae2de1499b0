package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	tmail "github.com/tokend/tokend/internal/mail"
	"github.com/tokend/tokend/internal/mail/mailtest"
)

var now = time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)

// fakeStore is the users, tokens and applications the mailer reads.
type fakeStore struct {
	users  []tokend.User
	tokens map[string]tokend.Token
	apps   map[string]tokend.App
}

func (f *fakeStore) Users(context.Context) ([]tokend.User, error) { return f.users, nil }

func (f *fakeStore) Token(_ context.Context, id string) (tokend.Token, error) {
	t, ok := f.tokens[id]
	if !ok {
		return tokend.Token{}, tokend.ErrNotFound
	}
	return t, nil
}

func (f *fakeStore) App(_ context.Context, id string) (tokend.App, error) {
	a, ok := f.apps[id]
	if !ok {
		return tokend.App{}, tokend.ErrNotFound
	}
	return a, nil
}

func newStore() *fakeStore {
	return &fakeStore{
		users: []tokend.User{
			{ID: "usr_owner", Email: "Ada@Example.com", Role: tokend.RoleOwner},
			{ID: "usr_admin", Email: "grace@example.com", Role: tokend.RoleAdmin},
			{ID: "usr_viewer", Email: "linus@example.com", Role: tokend.RoleViewer},
		},
		tokens: map[string]tokend.Token{
			"tok_billing": {ID: "tok_billing", AppID: "app_shop", Name: "Billing key", CreatedBy: "token:tok_admin"},
		},
		apps: map[string]tokend.App{"app_shop": {ID: "app_shop", Name: "Shop"}},
	}
}

func newMailer(t *testing.T, o tmail.Options) *tmail.Mailer {
	t.Helper()
	if o.From == "" {
		o.From = "tokend <tokend@example.com>"
	}
	if o.Users == nil {
		st := newStore()
		o.Users, o.Tokens = st, st
	}
	if o.Now == nil {
		o.Now = func() time.Time { return now }
	}
	m, err := tmail.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func expiring(name string) tokend.Notification {
	return tokend.Notification{
		ID: "evt_1", Type: tokend.EventTokenExpiring, OccurredAt: now,
		AppID: "app_shop", TokenID: "tok_billing",
		Actor: tokend.EventActor{Type: "system", ID: "system"},
		Data: map[string]any{
			"id": "tok_billing", "name": name, "app_id": "app_shop",
			"expires_at": now.Add(48 * time.Hour).Format(time.RFC3339Nano), "created_by": "token:tok_admin",
		},
	}
}

func only(t *testing.T, srv *mailtest.Server) mailtest.Message {
	t.Helper()
	list := srv.WaitMessages(t, 1, 10*time.Second)
	if len(list) != 1 {
		t.Fatalf("mailpit has %d messages, want 1", len(list))
	}
	return srv.Message(t, list[0].ID)
}

func TestSendExpiring(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m := newMailer(t, tmail.Options{
		URL:       "smtp://tokend:s3cret@" + srv.SMTPAddr,
		PublicURL: "https://tokend.example.com/",
	})
	if err := m.Send(t.Context(), "ada@example.com", expiring("Billing key")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msg := only(t, srv)
	if want := "Token Billing key of Shop expires in 2 days"; msg.Subject != want {
		t.Errorf("Subject %q, want %q", msg.Subject, want)
	}
	if msg.From.Address != "tokend@example.com" || msg.From.Name != "tokend" {
		t.Errorf("From %+v", msg.From)
	}
	if len(msg.To) != 1 || msg.To[0].Address != "ada@example.com" {
		t.Errorf("To %+v", msg.To)
	}
	h := msg.Headers
	if id := first(h, "Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID %q, want <…@example.com>", id)
	}
	if first(h, "Mime-Version") != "1.0" {
		t.Errorf("MIME-Version %q", first(h, "Mime-Version"))
	}
	if d, err := mail.ParseDate(first(h, "Date")); err != nil || !d.Equal(now) {
		t.Errorf("Date %q (%v), want %v", first(h, "Date"), err, now)
	}
	if ct := first(h, "Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
		t.Errorf("Content-Type %q", ct)
	}
	raw := string(msg.Raw)
	for _, want := range []string{"Content-Type: text/plain; charset=utf-8", "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the message has no %q:\n%s", want, raw)
		}
	}
	link := "https://tokend.example.com/tokens/tok_billing"
	for _, want := range []string{"Billing key", "Shop", "expires in 2 days", "Monday 16 March 2026, 09:00 UTC", link, "https://tokend.example.com/profile"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("the plain part has no %q:\n%s", want, msg.Text)
		}
	}
	if !strings.Contains(msg.HTML, `<a href="`+link+`">`) {
		t.Errorf("the HTML part has no link to %s:\n%s", link, msg.HTML)
	}
}

func first(h map[string][]string, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// A token name is user-controlled: CR/LF, markup and bidirectional
// controls arrive harmless, in the headers and in both parts.
func TestHostileNames(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	st := newStore()
	st.apps["app_shop"] = tokend.App{ID: "app_shop", Name: "Bücher <b>& Co</b>"}
	m := newMailer(t, tmail.Options{URL: "smtp://" + srv.SMTPAddr, PublicURL: "https://tokend.example.com", Users: st, Tokens: st})
	name := "evil\r\nBcc: victim@example.com\r\n\r\n<script>alert(1)</script>\u202egnp.exe\x00\xff"
	if err := m.Send(t.Context(), "ada@example.com", expiring(name)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msg := only(t, srv)
	if _, ok := msg.Headers["Bcc"]; ok || len(msg.To) != 1 {
		t.Errorf("the name added a header or a recipient: %v, To %v", msg.Headers, msg.To)
	}
	if strings.Contains(string(msg.Raw), "\nBcc:") || strings.Contains(string(msg.Raw), "\u202e") {
		t.Errorf("raw message holds a raw Bcc line or a bidi override:\n%s", msg.Raw)
	}
	for part, s := range map[string]string{"subject": msg.Subject, "text": msg.Text, "html": msg.HTML} {
		if strings.ContainsAny(s, "\u202e\x00") {
			t.Errorf("the %s holds a bidi override or NUL: %q", part, s)
		}
	}
	if strings.ContainsAny(msg.Subject, "\r\n") || !strings.Contains(msg.Subject, "Bücher") {
		t.Errorf("Subject %q", msg.Subject)
	}
	if strings.Contains(msg.HTML, "<script>") || strings.Contains(msg.HTML, "<b>&") || !strings.Contains(msg.HTML, "&lt;script&gt;") {
		t.Errorf("the HTML part does not escape the names:\n%s", msg.HTML)
	}
	for _, line := range strings.Split(msg.Text, "\n") {
		if strings.HasPrefix(line, "Bcc:") {
			t.Errorf("the plain part has a line the name made: %q", line)
		}
	}
}

func TestEveryMailedType(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m := newMailer(t, tmail.Options{URL: "smtp://" + srv.SMTPAddr, PublicURL: "https://tokend.example.com"})
	base := expiring("Billing key")
	cases := []struct {
		typ     string
		data    map[string]any
		subject string
		text    []string
	}{
		{tokend.EventTokenExpired, map[string]any{"name": "Billing key", "expires_at": now.Format(time.RFC3339)},
			"Token Billing key of Shop has expired", []string{"has expired", "https://tokend.example.com/tokens/tok_billing"}},
		{tokend.EventTokenRotatedSecretUsed, map[string]any{"name": "Billing key", "ip": "203.0.113.7", "at": "2026-03-14T08:59:30.5Z", "grace_until": "2026-03-13T09:00:00Z",
			"user_agent": "python-requests/2.32.3", "endpoint": "forward_auth", "policy": "disable"},
			"Security alert: the old secret of token Billing key of Shop was used", []string{"203.0.113.7", "08:59 UTC", "Grace ended", "Friday 13 March 2026, 09:00 UTC", "revoke it", "https://tokend.example.com/tokens/tok_billing",
				"python-requests/2.32.3", "forward auth (GET /v1/auth)", "tokend disabled the token"}},
		{tokend.EventTokenDecoyUsed, map[string]any{"name": "Billing key", "ip": "203.0.113.7", "peer": "198.51.100.1", "user_agent": "aws-cli/2.15.0", "endpoint": "verify", "at": "2026-03-14T08:59:30.5Z"},
			"Security alert: the decoy token Billing key of Shop was used", []string{"203.0.113.7", "198.51.100.1", "aws-cli/2.15.0", "verify", "08:59 UTC", "Treat the real secrets", "https://tokend.example.com/tokens/tok_billing"}},
		{tokend.EventWebhookDisabled, map[string]any{"id": "whk_1", "url": "https://hooks.example.com/x", "disabled_reason": "failing"},
			"Webhook endpoint disabled: https://hooks.example.com/x", []string{"whk_1", "failed for 5 days", "PATCH /v1/webhooks/whk_1", "https://tokend.example.com/webhooks/whk_1"}},
	}
	for i, c := range cases {
		n := base
		n.ID, n.Type, n.Data = "evt_"+strconv.Itoa(i+2), c.typ, c.data
		if c.typ == tokend.EventWebhookDisabled {
			n.AppID, n.TokenID = "", ""
		}
		to := c.typ + "@example.com"
		if err := m.Send(t.Context(), to, n); err != nil {
			t.Fatalf("Send %s: %v", c.typ, err)
		}
		list := srv.WaitMessages(t, i+1, 10*time.Second)
		msg := srv.Message(t, list[0].ID)
		if msg.Subject != c.subject || msg.To[0].Address != to {
			t.Errorf("%s: Subject %q to %v, want %q", c.typ, msg.Subject, msg.To, c.subject)
		}
		for _, want := range c.text {
			if !strings.Contains(msg.Text, want) || !strings.Contains(msg.HTML, want) {
				t.Errorf("%s: a part lacks %q:\n%s\n%s", c.typ, want, msg.Text, msg.HTML)
			}
		}
	}
	if err := m.Send(t.Context(), "a@example.com", tokend.Notification{Type: tokend.EventTokenCreated}); err == nil {
		t.Error("Send of a type that is not mailed succeeded")
	}
	if err := m.Send(t.Context(), "a@example.com\r\nBcc: b@example.com", base); err == nil {
		t.Error("Send to an address with CR/LF succeeded")
	}
}

func TestNoPublicURL(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m := newMailer(t, tmail.Options{URL: "smtp://" + srv.SMTPAddr})
	if err := m.Send(t.Context(), "ada@example.com", expiring("Billing key")); err != nil {
		t.Fatal(err)
	}
	msg := only(t, srv)
	if strings.Contains(msg.Text, "http") || strings.Contains(msg.HTML, "href") {
		t.Errorf("a mail without --public-url links somewhere:\n%s\n%s", msg.Text, msg.HTML)
	}
}

func TestAuth(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Users: map[string]string{"tokend": "s3cret"}})
	bad := newMailer(t, tmail.Options{URL: "smtp://tokend:wrong@" + srv.SMTPAddr})
	err := bad.Send(t.Context(), "ada@example.com", expiring("Billing key"))
	if err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("Send with a wrong password: %v (want an error without the password)", err)
	}
	if err := bad.Check(t.Context()); err == nil {
		t.Error("Check with a wrong password succeeded")
	}
	good := newMailer(t, tmail.Options{URL: "smtp://tokend:s3cret@" + srv.SMTPAddr})
	if err := good.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := good.Send(t.Context(), "ada@example.com", expiring("Billing key")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	only(t, srv)
}

// A server that is not on a loopback address gets the password only over
// TLS: STARTTLS when it offers it, and no mail at all when it does not.
func TestPasswordOnlyOverTLS(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t, "mail.example.com")
	plain := mailtest.Start(t, mailtest.Options{Users: map[string]string{"tokend": "s3cret"}})
	secure := mailtest.Start(t, mailtest.Options{Users: map[string]string{"tokend": "s3cret"}, CertFile: certFile, KeyFile: keyFile, RequireSTARTTLS: true})
	via := func(srv *mailtest.Server) func(ctx context.Context, network, _ string) (net.Conn, error) {
		return func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, srv.SMTPAddr)
		}
	}
	url := "smtp://tokend:s3cret@mail.example.com"
	m := newMailer(t, tmail.Options{URL: url, Dial: via(plain), TLS: &tls.Config{RootCAs: roots}})
	if err := m.Check(t.Context()); !errors.Is(err, tmail.ErrPlainAuth) {
		t.Errorf("Check against a server without STARTTLS: %v, want ErrPlainAuth", err)
	}
	if err := m.Send(t.Context(), "ada@example.com", expiring("Billing key")); !errors.Is(err, tmail.ErrPlainAuth) {
		t.Errorf("Send against a server without STARTTLS: %v, want ErrPlainAuth", err)
	}
	if n := len(plain.Messages(t)); n != 0 {
		t.Errorf("%d messages went through without TLS", n)
	}

	m = newMailer(t, tmail.Options{URL: url, Dial: via(secure), TLS: &tls.Config{RootCAs: roots}})
	if err := m.Check(t.Context()); err != nil {
		t.Errorf("Check with STARTTLS: %v", err)
	}
	if err := m.Send(t.Context(), "ada@example.com", expiring("Billing key")); err != nil {
		t.Fatalf("Send with STARTTLS: %v", err)
	}
	only(t, secure)

	// A certificate for another name is refused.
	m = newMailer(t, tmail.Options{URL: "smtp://tokend:s3cret@other.example.com", Dial: via(secure), TLS: &tls.Config{RootCAs: roots}})
	if err := m.Check(t.Context()); err == nil {
		t.Error("STARTTLS accepted a certificate for another host")
	}
}

func selfSigned(t *testing.T, host string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, roots
}

// A server that never answers costs one timeout, not a hung worker.
func TestSendTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent: never greets
		}
	}()
	m := newMailer(t, tmail.Options{URL: "smtp://" + ln.Addr().String(), Timeout: 300 * time.Millisecond})
	start := time.Now()
	err = m.Send(t.Context(), "ada@example.com", expiring("Billing key"))
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("Send to a silent server: %v after %s", err, time.Since(start))
	}
	// A server that does not answer in time is one that cannot be reached
	// now, which serve only warns about: not one that refused tokend.
	if err := m.Check(t.Context()); !errors.Is(err, tmail.ErrUnreachable) {
		t.Errorf("Check with a silent server: %v, want ErrUnreachable", err)
	}
	// Nothing listens: unreachable, which serve only warns about.
	addr := ln.Addr().String()
	ln.Close()
	m = newMailer(t, tmail.Options{URL: "smtp://" + addr})
	if err := m.Check(t.Context()); !errors.Is(err, tmail.ErrUnreachable) {
		t.Errorf("Check with nothing listening: %v, want ErrUnreachable", err)
	}
}

func TestNewRefuses(t *testing.T) {
	st := newStore()
	for _, c := range []struct{ name, url, from, public, want string }{
		{"no URL", "", "a@example.com", "", "--smtp-url"},
		{"another scheme", "http://h:25", "a@example.com", "", "scheme"},
		{"no host", "smtp://", "a@example.com", "", "host"},
		{"user without password", "smtp://user@h", "a@example.com", "", "both"},
		{"a path", "smtp://u:p@h/x", "a@example.com", "", "no path"},
		{"no from", "smtp://u:topsecret@h", "", "", "--smtp-from is required"},
		{"bad from", "smtp://u:topsecret@h", "not an address", "", "--smtp-from"},
		{"from with CR/LF", "smtp://u:topsecret@h", "a@example.com\r\nBcc: b@example.com", "", "--smtp-from"},
		{"relative public URL", "smtp://u:topsecret@h", "a@example.com", "tokend.example.com", "--public-url"},
		{"public URL with query", "smtp://u:topsecret@h", "a@example.com", "https://t.example.com/?x=1", "--public-url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tmail.New(tmail.Options{URL: c.url, From: c.from, PublicURL: c.public, Users: st, Tokens: st})
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "topsecret") {
				t.Errorf("New: %v, want an error naming %q without the password", err, c.want)
			}
		})
	}
	m, err := tmail.New(tmail.Options{URL: "smtps://u:topsecret@mail.example.com", From: "a@example.com", Users: st, Tokens: st})
	if err != nil || strings.Contains(m.Redacted(), "topsecret") {
		t.Errorf("New: %v; Redacted %q", err, m.Redacted())
	}
}

func TestRecipients(t *testing.T) {
	st := newStore()
	st.users = append(st.users,
		tokend.User{ID: "usr_off", Email: "off@example.com", Role: tokend.RoleAdmin, Disabled: true},
		tokend.User{ID: "usr_quiet", Email: "quiet@example.com", Role: tokend.RoleOwner, MailOptOut: []string{tokend.EventTokenExpiring}},
		tokend.User{ID: "usr_maker", Email: "maker@example.com", Role: tokend.RoleViewer},
		tokend.User{ID: "usr_dup", Email: "ada@example.com", Role: tokend.RoleAdmin},
	)
	st.tokens["tok_dash"] = tokend.Token{ID: "tok_dash", AppID: "app_shop", Name: "Made in the dashboard", CreatedBy: "user:usr_maker"}
	m := newMailer(t, tmail.Options{URL: "smtp://127.0.0.1:1", Users: st, Tokens: st})
	recipients := func(n tokend.Notification) []string {
		t.Helper()
		got, err := m.Recipients(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	n := expiring("Billing key")
	if got, want := recipients(n), []string{"ada@example.com", "grace@example.com"}; !slices.Equal(got, want) {
		t.Errorf("token.expiring of an API-made token: %v, want %v", got, want)
	}
	n.Type = tokend.EventTokenExpired
	if got, want := recipients(n), []string{"ada@example.com", "grace@example.com", "quiet@example.com"}; !slices.Equal(got, want) {
		t.Errorf("token.expired (opted out of expiring only): %v, want %v", got, want)
	}
	// The creator is found from the event's data, or from the token.
	n = expiring("Made in the dashboard")
	n.TokenID = "tok_dash"
	delete(n.Data, "created_by")
	if got, want := recipients(n), []string{"ada@example.com", "grace@example.com", "maker@example.com"}; !slices.Equal(got, want) {
		t.Errorf("token made in the dashboard: %v, want %v", got, want)
	}
	n.TokenID, n.Data["created_by"] = "tok_gone", "user:usr_maker"
	if got := recipients(n); !slices.Contains(got, "maker@example.com") {
		t.Errorf("creator of a deleted token, from the data: %v", got)
	}
	n.Data = map[string]any{"token": map[string]any{"created_by": "user:usr_maker"}}
	if got := recipients(n); !slices.Contains(got, "maker@example.com") {
		t.Errorf("creator of a deleted token, from the token the data nests: %v", got)
	}
	st.users[5].MailOptOut = []string{tokend.EventTokenExpiring}
	if got := recipients(n); slices.Contains(got, "maker@example.com") {
		t.Errorf("the creator opted out and still receives: %v", got)
	}
	// webhook.disabled goes to owners and admins only: its data is the
	// endpoint, whose created_by names who made the endpoint, not a token.
	st.users[5].MailOptOut = nil
	wd := tokend.Notification{Type: tokend.EventWebhookDisabled, Data: map[string]any{"id": "whk_1", "created_by": "user:usr_maker"}}
	if got, want := recipients(wd), []string{"ada@example.com", "grace@example.com", "quiet@example.com"}; !slices.Equal(got, want) {
		t.Errorf("webhook.disabled: %v, want %v", got, want)
	}
	if got := recipients(tokend.Notification{Type: tokend.EventTokenCreated, TokenID: "tok_dash"}); len(got) != 0 {
		t.Errorf("token.created is not mailed, yet has recipients %v", got)
	}
}
