package mail

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

type noStore struct{}

func (noStore) Users(context.Context) ([]tokend.User, error) { return nil, nil }
func (noStore) Token(context.Context, string) (tokend.Token, error) {
	return tokend.Token{}, tokend.ErrNotFound
}
func (noStore) App(context.Context, string) (tokend.App, error) {
	return tokend.App{}, tokend.ErrNotFound
}

// Whatever the names in an event, the message has exactly its own headers,
// its subject decodes to one line, and neither part holds a control,
// bidirectional or invisible character the name brought.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		"Billing key", "evil\r\nBcc: victim@example.com", "\u202egnp.exe", "<script>alert(1)</script>",
		"=?utf-8?q?=0D=0ABcc:_x?=", "\x00\xff\xfe", strings.Repeat("é", 400), "a\rb\nc\u2028d\u0085e",
	} {
		f.Add(s, "Shop", tokend.EventTokenExpiring)
		f.Add("Billing key", s, tokend.EventTokenRotatedSecretUsed)
		f.Add(s, s, tokend.EventWebhookDisabled)
	}
	m, err := New(Options{URL: "smtp://127.0.0.1:1", From: "tokend <tokend@example.com>", PublicURL: "https://tokend.example.com",
		Users: noStore{}, Tokens: noStore{}, Now: func() time.Time { return time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, app, typ string) {
		if !slices.Contains(tokend.MailedEventTypes, typ) {
			typ = tokend.EventTokenExpired
		}
		n := tokend.Notification{ID: "evt_1", Type: typ, AppID: "app_1", TokenID: "tok_1", Data: map[string]any{
			"name": name, "app_name": app, "owner_name": name, "url": name, "id": app, "ip": name,
			"expires_at": "2026-03-16T09:00:00Z",
		}}
		c, err := m.content(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := m.message("ada@example.com", c)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("the message does not parse: %v\n%s", err, raw)
		}
		var keys []string
		for k := range msg.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"Auto-Submitted", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
		if !slices.Equal(keys, want) {
			t.Fatalf("headers %v, want %v", keys, want)
		}
		if to := msg.Header["To"]; len(to) != 1 || to[0] != "<ada@example.com>" {
			t.Fatalf("To %v", to)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("the subject does not decode: %v", err)
		}
		checkText(t, "subject", subject)
		_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		mr := multipart.NewReader(msg.Body, params["boundary"])
		parts := 0
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			// The multipart reader has decoded the quoted-printable part
			// already (it hides the header and decodes on Read): decoding
			// again misread a name with "=" in it.
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			parts++
			checkText(t, p.Header.Get("Content-Type"), strings.ReplaceAll(string(b), "\r\n", ""))
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") && strings.Contains(string(b), "<script>") {
				t.Fatalf("the HTML part holds a raw <script>:\n%s", b)
			}
		}
		if parts != 2 {
			t.Fatalf("%d parts, want 2", parts)
		}
	})
}

// checkText fails unless s holds only what a line of text may (no CR, LF,
// control, bidirectional or invisible character).
func checkText(t *testing.T, what, s string) {
	t.Helper()
	if p := tokend.TextProblem(s, tokend.LineText); p != "" {
		t.Fatalf("the %s %s: %q", what, p, s)
	}
}
