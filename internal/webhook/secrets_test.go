package webhook

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSecretSealOpen(t *testing.T) {
	s, err := NewSecrets([]byte("pepper one"))
	if err != nil {
		t.Fatal(err)
	}
	shown, sealed, err := s.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseSecret(shown)
	if err != nil || len(key) != 32 || !strings.HasPrefix(shown, "whsec_") {
		t.Fatalf("shown %q: key of %d bytes, %v", shown, len(key), err)
	}
	if bytes.Contains(sealed, key) || bytes.Contains(sealed, []byte(shown)) {
		t.Error("the sealed secret holds the key in plain")
	}
	got, err := s.Open(sealed)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Open: %x, %v; want %x", got, err, key)
	}
	other, _ := NewSecrets([]byte("pepper two"))
	if _, err := other.Open(sealed); err == nil {
		t.Error("a secret opened under another pepper")
	}
	damaged := bytes.Clone(sealed)
	damaged[len(damaged)-1] ^= 1
	for _, bad := range [][]byte{nil, {1}, damaged, append([]byte{2}, sealed[1:]...)} {
		if _, err := s.Open(bad); err == nil {
			t.Errorf("Open(%x) succeeded", bad)
		}
	}
	_, sealed2, _ := s.NewSecret()
	if bytes.Equal(sealed, sealed2) {
		t.Error("two secrets sealed alike")
	}
	if _, err := NewSecrets(nil); err == nil {
		t.Error("an empty pepper was accepted")
	}
	for _, bad := range []string{"", "whsec_", "whsec_***", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", bad)
		}
	}
}

// The example of the Standard Webhooks specification (and of its
// libraries' tests).
func TestSignMatchesTheSpecification(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSetHeadersSignsWithEachKey(t *testing.T) {
	h := http.Header{}
	a, b := []byte("key a"), []byte("key b")
	at := time.Unix(1700000000, 0)
	SetHeaders(h, "evt_1", at, []byte("{}"), a, b)
	if h.Get("webhook-id") != "evt_1" || h.Get("webhook-timestamp") != "1700000000" {
		t.Errorf("headers %v", h)
	}
	sigs := strings.Split(h.Get("webhook-signature"), " ")
	if len(sigs) != 2 || sigs[0] != Sign(a, "evt_1", at, []byte("{}")) || sigs[1] != Sign(b, "evt_1", at, []byte("{}")) {
		t.Errorf("signatures %v", sigs)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sigs[0], "v1,"))
	if err != nil || len(raw) != 32 {
		t.Errorf("signature is not base64 of 32 bytes: %v", err)
	}
}
