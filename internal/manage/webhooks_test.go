package manage_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/webhook"
	"github.com/tokend/tokend/secret"
)

func newWebhookService(t *testing.T, o manage.Options) (*manage.Service, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/tokend.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o.Store = st
	o.Hasher, _ = secret.NewHasher([]byte("webhook-pepper-webhook-pepper-webhook"))
	if o.WebhookSecrets, err = webhook.NewSecrets([]byte("webhook-pepper-webhook-pepper-webhook")); err != nil {
		t.Fatal(err)
	}
	return manage.New(o), st
}

// Re-enabling an endpoint tokend disabled clears why and since when it
// failed; disabling by hand leaves no reason.
func TestWebhookReenableClearsFailure(t *testing.T) {
	ctx := context.Background()
	svc, st := newWebhookService(t, manage.Options{})
	w, _, err := svc.CreateWebhook(ctx, tokend.SystemActor, tokend.WebhookInput{URL: "https://hooks.example.com/", Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-6 * 24 * time.Hour).UTC().Truncate(time.Second)
	if _, err := st.UpdateWebhook(ctx, w.ID, func(w *tokend.Webhook) (tokend.Event, error) {
		w.Enabled, w.DisabledReason, w.FailingSince = false, "failing", &since
		return tokend.Event{Time: time.Now(), Actor: "system", Action: tokend.ActionWebhookUpdate}, nil
	}); err != nil {
		t.Fatal(err)
	}
	on := true
	got, err := svc.UpdateWebhook(ctx, tokend.SystemActor, w.ID, tokend.WebhookPatch{Enabled: &on}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || got.DisabledReason != "" || got.FailingSince != nil || got.Version != 3 {
		t.Fatalf("re-enabled: %+v", got)
	}
	// Nothing to change: no new version, no audit event.
	if again, err := svc.UpdateWebhook(ctx, tokend.SystemActor, w.ID, tokend.WebhookPatch{Enabled: &on}, 0); err != nil || again.Version != 3 {
		t.Fatalf("a patch that changes nothing: %+v %v", again, err)
	}
	if _, err := svc.UpdateWebhook(ctx, tokend.SystemActor, w.ID, tokend.WebhookPatch{Enabled: &on}, 2); tokend.CodeOf(err) != tokend.ECodePreconditionFailed {
		t.Fatalf("stale version: %v", err)
	}
}

// Rotation keeps the replaced secret signing for 24 hours, and the
// stored secrets are sealed, never the one shown.
func TestWebhookRotationKeepsThePreviousSecret(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	svc, st := newWebhookService(t, manage.Options{Now: func() time.Time { return now }})
	w, shown, err := svc.CreateWebhook(ctx, tokend.SystemActor, tokend.WebhookInput{URL: "https://hooks.example.com/", Events: []string{"token.revoked"}})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := st.Webhook(ctx, w.ID)
	if len(stored.Secret) == 0 || string(stored.Secret) == shown {
		t.Fatal("the secret is not stored sealed")
	}
	r, shown2, err := svc.RotateWebhookSecret(ctx, tokend.SystemActor, w.ID, 0)
	if err != nil || shown2 == shown {
		t.Fatalf("rotate: %v", err)
	}
	if r.PreviousSecretUntil == nil || !r.PreviousSecretUntil.Equal(now.Add(24*time.Hour)) || r.Secret != nil || r.PreviousSecret != nil {
		t.Fatalf("rotated: %+v", r)
	}
	after, _ := st.Webhook(ctx, w.ID)
	if string(after.PreviousSecret) != string(stored.Secret) || string(after.Secret) == string(stored.Secret) {
		t.Fatal("the previous secret is not the one replaced")
	}
	// A day later the previous secret no longer shows.
	now = now.Add(25 * time.Hour)
	if got, _ := svc.Webhook(ctx, tokend.SystemActor, w.ID); got.PreviousSecretUntil != nil {
		t.Fatalf("a lapsed previous secret still shows: %v", got.PreviousSecretUntil)
	}
}

// The server's allowances open http and private addresses, and nothing
// else.
func TestWebhookURLAllowances(t *testing.T) {
	ctx := context.Background()
	strict, _ := newWebhookService(t, manage.Options{})
	open, _ := newWebhookService(t, manage.Options{WebhookAllowHTTP: true, WebhookAllowPrivate: true})
	for _, c := range []struct {
		url          string
		strict, open bool
	}{
		{"https://hooks.example.com/x", true, true},
		{"http://hooks.example.com/x", false, true},
		{"https://192.168.1.10/x", false, true},
		{"http://127.0.0.1:8080/x", false, true},
		{"https://[fe80::1%25eth0]/x", false, true},
		{"https://100.64.0.1/", false, true},
		{"https://8.8.8.8/", true, true},
		{"https://u:p@hooks.example.com/", false, false},
		{"ftp://hooks.example.com/", false, false},
		{"hooks.example.com/x", false, false},
		// What deliveries refuse (internal/webhook), creation refuses:
		// a fragment, and every address the delivery client will not
		// connect to.
		{"https://hooks.example.com/x#top", false, false},
		{"https://0.0.0.1/", false, true},
		{"https://198.18.0.1/", false, true},
		{"https://[64:ff9b::7f00:1]/", false, true},
		{"https://[2002:a00:1::]/", false, true},
		{"https://[::ffff:127.0.0.1]/", false, true},
		{"https://192.168.1.1./", false, true}, // a literal with the root's dot
		{"https://255.255.255.255/", false, true},
		// Spellings a resolver may read as another address: refused on
		// every server (deliveries refuse them too).
		{"https://2130706433/", false, false},
		{"https://0177.0.0.1/", false, false},
		{"https://ｌｏｃａｌｈｏｓｔ/", false, false},
	} {
		for _, s := range []struct {
			svc  *manage.Service
			want bool
			name string
		}{{strict, c.strict, "strict"}, {open, c.open, "open"}} {
			_, _, err := s.svc.CreateWebhook(ctx, tokend.SystemActor, tokend.WebhookInput{URL: c.url, Events: []string{"*"}})
			if ok := err == nil; ok != s.want {
				t.Errorf("%s server, %s: %v", s.name, c.url, err)
			}
		}
	}
}
