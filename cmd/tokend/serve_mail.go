package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/mail"
)

// mailConfig is the configuration of mail (docs/mail.md).
type mailConfig struct {
	smtpURL   string
	smtpFrom  string
	publicURL string
}

func mailFlags(fs *pflag.FlagSet, c *mailConfig) {
	fs.StringVar(&c.smtpURL, "smtp-url", "", "smtp://user:password@host:port (STARTTLS when the server offers it; port 587 by default) or smtps://… (TLS, port 465): mail token.expiring, token.expired, token.rotated_secret_used, token.leaked, token.decoy_used and webhook.disabled to owners and admins; empty sends no mail (TOKEND_SMTP_URL)")
	fs.StringVar(&c.smtpFrom, "smtp-from", "", "the sender of the mails, name@example.com or \"tokend <name@example.com>\"; required with --smtp-url (TOKEND_SMTP_FROM)")
	fs.StringVar(&c.publicURL, "public-url", "", "the address people open the dashboard at, such as https://tokend.example.com; mails link to its pages (TOKEND_PUBLIC_URL)")
}

// mailCheckTimeout bounds the conversation with the SMTP server at start.
const mailCheckTimeout = 10 * time.Second

// newMailer makes the mailer when --smtp-url is set, and answers nil
// otherwise. At start it talks to the server as far as AUTH: a server that
// would make tokend send the password in plain, or refuses it, stops the
// start; one that cannot be reached, or does not answer in time, is only
// warned about (mails wait in the outbox and are retried).
func newMailer(ctx context.Context, c mailConfig, b *backend, log *slog.Logger) (tokend.Mailer, error) {
	if c.smtpURL == "" {
		if c.smtpFrom != "" {
			log.Warn("--smtp-from is set but --smtp-url is not: no mail is sent")
		}
		return nil, nil
	}
	m, err := mail.New(mail.Options{
		URL: c.smtpURL, From: c.smtpFrom, PublicURL: c.publicURL,
		Users: b.users, Tokens: b.store, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	checkCtx, cancel := context.WithTimeout(ctx, mailCheckTimeout)
	defer cancel()
	switch err := m.Check(checkCtx); {
	case errors.Is(err, mail.ErrUnreachable):
		log.Warn("the SMTP server cannot be reached now; mails wait and are retried", "smtp", m.Redacted(), "err", err)
	case err != nil:
		return nil, fmt.Errorf("--smtp-url: %w", err)
	}
	return m, nil
}
