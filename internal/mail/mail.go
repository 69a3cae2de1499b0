// Package mail is tokend's tokend.Mailer: it mails the mailed event types
// (tokend.MailedEventTypes) to the dashboard's owners and admins, and to
// the user who made the token, over SMTP.
//
// Files: mail.go (options, recipients, sending), smtp.go (the SMTP
// conversation: STARTTLS, AUTH PLAIN, timeouts), message.go (what each
// event type says, and the MIME message that carries it).
//
// Security:
//   - the SMTP password is never logged (Redacted), and is sent only over
//     TLS (smtps://, or STARTTLS, which is used whenever the server offers
//     it) or to a loopback address; Check finds out at start whether the
//     server would make tokend send it in plain, and New refuses what is
//     wrong in the URL itself;
//   - the values of events (token, application and owner names) are
//     user-controlled: a CR or LF never reaches a header raw (headers are
//     built from cleaned values and Q-encoded when not ASCII), HTML is
//     escaped by html/template, and control, bidirectional and invisible
//     characters are replaced (U+FFFD) in both parts.
package mail

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// DefaultTimeout bounds one send: dialling, TLS, and the whole SMTP
// conversation.
const DefaultTimeout = 30 * time.Second

// Users is what the mailer reads of the dashboard's users.
type Users interface {
	// Users answers every user.
	Users(ctx context.Context) ([]tokend.User, error)
}

// Tokens is what the mailer reads of tokens and applications: the token's
// creator, and names an event does not carry. tokend.Store implements it.
type Tokens interface {
	Token(ctx context.Context, id string) (tokend.Token, error)
	App(ctx context.Context, id string) (tokend.App, error)
}

// Options configure a Mailer.
type Options struct {
	// URL is smtp://[user:password@]host[:port] (port 587 by default;
	// STARTTLS whenever the server offers it) or smtps://…[:port] (TLS
	// from the first byte, port 465 by default).
	URL string
	// From is the sender: an address, or "Name <address>". Required.
	From string
	// PublicURL is where people reach the dashboard (https://tokend.example.com);
	// the mails link to its pages. Empty: no links.
	PublicURL string
	Users     Users
	Tokens    Tokens
	Logger    *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Timeout bounds one send (DefaultTimeout when 0).
	Timeout time.Duration
	// TLS, when set, is the base of the TLS configuration (the tests give
	// their own roots); ServerName is always the URL's host.
	TLS *tls.Config
	// Dial, when set, opens the TCP connections (net.Dialer otherwise):
	// for tests that need a host name to reach a local server.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Mailer mails events. It is safe for concurrent use.
type Mailer struct {
	server    server
	from      *mail.Address
	domain    string // of From, for Message-IDs
	publicURL string
	users     Users
	tokens    Tokens
	log       *slog.Logger
	now       func() time.Time
}

var _ tokend.Mailer = (*Mailer)(nil)

// New checks o and makes the Mailer. Its errors name the flag at fault
// (--smtp-url, --smtp-from, --public-url) and never hold the password.
func New(o Options) (*Mailer, error) {
	srv, err := parseServer(o.URL)
	if err != nil {
		return nil, fmt.Errorf("--smtp-url: %w", err)
	}
	srv.timeout = cmp.Or(o.Timeout, DefaultTimeout)
	srv.tlsBase, srv.dial = o.TLS, o.Dial
	if o.From == "" {
		return nil, errors.New("--smtp-from is required with --smtp-url: the address the mails come from")
	}
	from, err := mail.ParseAddress(o.From)
	if err != nil || tokend.TextProblem(o.From, tokend.LineText) != "" {
		return nil, fmt.Errorf("--smtp-from: %q is not an email address (name@example.com or \"Name <name@example.com>\")", o.From)
	}
	publicURL, err := parsePublicURL(o.PublicURL)
	if err != nil {
		return nil, err
	}
	if o.Users == nil || o.Tokens == nil {
		return nil, errors.New("mail: Users and Tokens are required")
	}
	m := &Mailer{
		server: srv, from: from, domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		publicURL: publicURL, users: o.Users, tokens: o.Tokens, log: o.Logger, now: o.Now,
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.log.Info("mail is on", "smtp", srv.Redacted(), "from", from.Address, "events", tokend.MailedEventTypes)
	if publicURL == "" {
		m.log.Warn("--public-url is not set: the mails name the token but carry no link to the dashboard")
	}
	return m, nil
}

// parsePublicURL checks --public-url: an absolute http(s) URL without a
// query or fragment; it answers it without a trailing slash.
func parsePublicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || tokend.TextProblem(s, tokend.LineText) != "" {
		return "", fmt.Errorf("--public-url: %q is not the dashboard's address (https://tokend.example.com)", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Redacted answers the SMTP URL with its password hidden, for logs.
func (m *Mailer) Redacted() string { return m.server.Redacted() }

// Check talks to the SMTP server as far as AUTH, sending no mail, and
// answers an error when something is wrong: the server cannot be reached
// (ErrUnreachable wraps that error: a server that is down may come back),
// or it would make tokend send the password in plain, or refuses it.
func (m *Mailer) Check(ctx context.Context) error {
	return m.server.send(ctx, "", "", nil)
}

// Recipients answers the addresses to mail about n: the owners and admins
// not disabled and not opted out of n.Type, and the user who created the
// token (created_by "user:<id>") under the same two conditions; each once,
// lower-cased and sorted. Types that are not mailed have none.
func (m *Mailer) Recipients(ctx context.Context, n tokend.Notification) ([]string, error) {
	if !slices.Contains(tokend.MailedEventTypes, n.Type) {
		return nil, nil
	}
	users, err := m.users.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("mail recipients: %w", err)
	}
	creator, err := m.creator(ctx, n)
	if err != nil {
		return nil, err
	}
	var to []string
	for _, u := range users {
		if u.Disabled || u.OptedOut(n.Type) {
			continue
		}
		if u.Role == tokend.RoleOwner || u.Role == tokend.RoleAdmin || (creator != "" && u.ID == creator) {
			to = append(to, strings.ToLower(u.Email))
		}
	}
	slices.Sort(to)
	return slices.Compact(to), nil
}

// creator answers the id of the dashboard user who created the event's
// token, "" when a user did not (or the token is gone and the event does
// not say), or the event is about no token: the created_by of another
// subject (webhook.disabled's endpoint) is not a reason to mail anyone.
func (m *Mailer) creator(ctx context.Context, n tokend.Notification) (string, error) {
	if n.TokenID == "" {
		return "", nil
	}
	by := str(n.Data, "created_by")
	if by == "" {
		t, err := m.tokens.Token(ctx, n.TokenID)
		switch {
		case errors.Is(err, tokend.ErrNotFound):
		case err != nil:
			return "", fmt.Errorf("mail recipients: %w", err)
		default:
			by = t.CreatedBy
		}
	}
	id, ok := strings.CutPrefix(by, "user:")
	if !ok {
		return "", nil
	}
	return id, nil
}

// Send mails n to one address.
func (m *Mailer) Send(ctx context.Context, to string, n tokend.Notification) error {
	addr, err := mail.ParseAddress(to)
	if err != nil || addr.Name != "" || addr.Address != to || tokend.TextProblem(to, tokend.LineText) != "" {
		return fmt.Errorf("mail: %q is not a plain email address", clean(to, 254))
	}
	c, err := m.content(ctx, n)
	if err != nil {
		return err
	}
	msg, err := m.message(addr.Address, c)
	if err != nil {
		return err
	}
	if err := m.server.send(ctx, m.from.Address, addr.Address, msg); err != nil {
		return err
	}
	m.log.InfoContext(ctx, "mail sent", "event_id", n.ID, "type", n.Type, "to", addr.Address)
	return nil
}
