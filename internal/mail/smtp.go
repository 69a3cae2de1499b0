package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// server is where and how mail is sent.
type server struct {
	host        string // as in the URL: a name or an address
	addr        string // host:port
	implicitTLS bool   // smtps://
	user, pass  string
	hasAuth     bool
	loopback    bool
	timeout     time.Duration
	tlsBase     *tls.Config
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	redacted    string
}

// ErrUnreachable marks a failure to reach the SMTP server at all (the dial
// error, or no answer within the timeout): the server may be down for a
// while, which is no reason to refuse to start.
var ErrUnreachable = errors.New("the SMTP server cannot be reached")

// ErrPlainAuth is the refusal to send the password over a connection that
// is not encrypted to a host that is not a loopback address.
var ErrPlainAuth = errors.New("the SMTP server offers no STARTTLS, and the password would go over the network in plain: use smtps://, a server that offers STARTTLS, or no password")

func parseServer(raw string) (server, error) {
	if raw == "" {
		return server{}, errors.New("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return server{}, errors.New("does not parse as a URL (smtp://user:password@host:port)")
	}
	s := server{redacted: u.Redacted()}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.implicitTLS = true
	default:
		return server{}, fmt.Errorf("%s: the scheme must be smtp:// (STARTTLS when offered) or smtps:// (TLS)", s.redacted)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return server{}, fmt.Errorf("%s: only smtp://user:password@host:port, with no path or query", s.redacted)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return server{}, fmt.Errorf("%s: names no host", s.redacted)
	}
	port := u.Port()
	if port == "" {
		port = "587"
		if s.implicitTLS {
			port = "465"
		}
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, s.hasAuth = u.User.Password()
		if !s.hasAuth || s.user == "" {
			return server{}, fmt.Errorf("%s: give both a user and a password, or neither", s.redacted)
		}
		if strings.ContainsAny(s.user+s.pass, "\x00\r\n") {
			return server{}, fmt.Errorf("%s: the user and password must not hold NUL, CR or LF", s.redacted)
		}
	}
	ip, err := netip.ParseAddr(s.host)
	s.loopback = s.host == "localhost" || (err == nil && ip.IsLoopback())
	return s, nil
}

func (s server) Redacted() string { return s.redacted }

func (s server) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.tlsBase != nil {
		c = s.tlsBase.Clone()
	}
	c.ServerName = s.host
	return c
}

// send mails msg from from to to in one SMTP conversation bounded by the
// timeout; with msg nil it stops after AUTH (Check).
func (s server) send(ctx context.Context, from, to string, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// A server that does not answer within the timeout cannot be reached
	// now (Check's caller only warns about that); this runs before cancel.
	defer func() {
		timedOut := ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) // the connection's deadline is the context's
		if err != nil && timedOut && !errors.Is(err, ErrUnreachable) {
			err = fmt.Errorf("%w: %s: no answer within %s: %w", ErrUnreachable, s.redacted, s.timeout, err)
		}
	}()
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, s.redacted, err)
	}
	// The deadline bounds every read and write; a cancelled context closes
	// the connection, which ends whatever waits on it.
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return s.fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return s.fail("EHLO", err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig()); err != nil {
				return s.fail("STARTTLS", err)
			}
		} else if s.hasAuth && !s.loopback {
			return fmt.Errorf("%s: %w", s.redacted, ErrPlainAuth)
		}
	}
	if s.hasAuth {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("%s: the URL has a password but the server offers no AUTH", s.redacted)
		}
		if err := c.Auth(plainAuth{user: s.user, pass: s.pass, plainOK: s.loopback}); err != nil {
			return s.fail("AUTH", err)
		}
	}
	if msg == nil {
		return c.Quit()
	}
	if err := c.Mail(from); err != nil {
		return s.fail("MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return s.fail("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return s.fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return s.fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return s.fail("DATA", err)
	}
	// The message is accepted once DATA is: a failed QUIT loses nothing.
	_ = c.Quit()
	return nil
}

func (s server) fail(step string, err error) error {
	return fmt.Errorf("%s: %s: %w", s.redacted, step, err)
}

func (s server) connect(ctx context.Context) (net.Conn, error) {
	dial := s.dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", s.addr)
	if err != nil || !s.implicitTLS {
		return conn, err
	}
	tc := tls.Client(conn, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// plainAuth is AUTH PLAIN (RFC 4616) that refuses to run over a connection
// without TLS unless plainOK (a loopback server).
type plainAuth struct {
	user, pass string
	plainOK    bool
}

func (a plainAuth) Start(si *smtp.ServerInfo) (string, []byte, error) {
	if !si.TLS && !a.plainOK {
		return "", nil, ErrPlainAuth
	}
	if !slices.Contains(si.Auth, "PLAIN") {
		return "", nil, fmt.Errorf("the server does not offer AUTH PLAIN (it offers %s)", strings.Join(si.Auth, ", "))
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("the server asked more of AUTH PLAIN than the credentials")
	}
	return nil, nil
}
