package main

import (
	"strings"
	"testing"

	"github.com/tokend/tokend/internal/mail/mailtest"
)

func TestServeRefusesBadMailConfiguration(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no sender":        {[]string{"--smtp-url", "smtp://u:hunter2hunter2@127.0.0.1:1"}, "--smtp-from is required"},
		"another scheme":   {[]string{"--smtp-url", "http://u:hunter2hunter2@127.0.0.1:1", "--smtp-from", "t@example.com"}, "--smtp-url"},
		"a bad sender":     {[]string{"--smtp-url", "smtp://127.0.0.1:1", "--smtp-from", "nobody"}, "--smtp-from"},
		"a bad public URL": {[]string{"--smtp-url", "smtp://127.0.0.1:1", "--smtp-from", "t@example.com", "--public-url", "tokend.example.com"}, "--public-url"},
	} {
		t.Run(name, func(t *testing.T) {
			err := runFails(t, nil, withAddr("serve", append(c.args, "--data-dir", t.TempDir())...)...)
			wantErr(t, name, err, c.want)
			if strings.Contains(err.Error(), "hunter2hunter2") {
				t.Errorf("the error shows the SMTP password: %v", err)
			}
		})
	}
}

// A server that refuses the password stops the start; one that takes it
// starts, and the log names the server without the password.
func TestServeChecksTheSMTPServer(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Users: map[string]string{"tokend": "hunter2hunter2"}})
	err := runFails(t, nil, withAddr("serve", "--data-dir", t.TempDir(), "--smtp-from", "t@example.com",
		"--smtp-url", "smtp://tokend:wrongwrongwrong@"+srv.SMTPAddr)...)
	wantErr(t, "a wrong SMTP password", err, "--smtp-url", "AUTH")
	if strings.Contains(err.Error(), "wrongwrongwrong") {
		t.Errorf("the error shows the SMTP password: %v", err)
	}

	in := startTokend(t, t.TempDir(), map[string]string{
		"TOKEND_SMTP_URL": "smtp://tokend:hunter2hunter2@" + srv.SMTPAddr, "TOKEND_SMTP_FROM": "tokend <t@example.com>",
	})
	in.stop()
	log := in.stderr.String()
	if strings.Contains(log, "hunter2hunter2") {
		t.Errorf("the log shows the SMTP password:\n%s", log)
	}
	for _, want := range []string{"mail is on", "smtp://tokend:xxxxx@" + srv.SMTPAddr, "--public-url is not set"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
}
