// Package webhook gets tokend's events to webhook endpoints and to mail
// recipients: it makes and seals the endpoints' signing secrets (Secrets),
// signs each delivery as the Standard Webhooks specification says (Sign),
// sends it through an HTTP client that reaches only public addresses
// (NewClient), and runs the loop that turns the outbox into deliveries and
// attempts them with retries (Dispatcher).
//
// It must not log a secret, a signature or a response body; delivery errors
// it stores are short, valid UTF-8 and carry no secret.
package webhook

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/tokend/tokend"
)

// SecretPrefix starts a signing secret as shown: whsec_ and the standard
// base64 of its key, the form of the Standard Webhooks libraries.
const SecretPrefix = "whsec_"

// keyLen is the length of a signing key, and of the sealing key.
const keyLen = 32

// sealVersion is the first byte of a sealed secret, so that another way of
// sealing can be told apart later.
const sealVersion = 1

// Secrets makes signing secrets and seals them with AES-256-GCM under a key
// derived from the pepper, which the database never holds: a stolen
// database alone signs nothing.
type Secrets struct {
	aead cipher.AEAD
}

var _ tokend.WebhookSecrets = (*Secrets)(nil)

// NewSecrets derives the sealing key from pepper.
func NewSecrets(pepper []byte) (*Secrets, error) {
	if len(pepper) == 0 {
		return nil, errors.New("webhook secrets: empty pepper")
	}
	key, err := hkdf.Key(sha256.New, pepper, nil, "tokend webhook secrets v1", keyLen)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	return &Secrets{aead: aead}, nil
}

// NewSecret makes a random signing key: shown (whsec_…) once to the
// caller, sealed to be stored.
func (s *Secrets) NewSecret() (shown string, sealed []byte, err error) {
	key := make([]byte, keyLen)
	if _, err := rand.Read(key); err != nil {
		return "", nil, fmt.Errorf("webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), s.Seal(key), nil
}

// Seal seals a signing key: the version byte, a random nonce, and the
// ciphertext with its tag.
func (s *Secrets) Seal(key []byte) []byte {
	out := make([]byte, 1, 1+s.aead.NonceSize()+len(key)+s.aead.Overhead())
	out[0] = sealVersion
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, key, []byte("tokend webhook secret"))
}

// Open answers the signing key a sealed secret holds. It fails, without
// saying more, for a secret sealed under another pepper or damaged.
func (s *Secrets) Open(sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errors.New("webhook secret: not a sealed secret")
	}
	key, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte("tokend webhook secret"))
	if err != nil {
		return nil, errors.New("webhook secret: cannot be opened with this pepper")
	}
	return key, nil
}

// ParseSecret answers the key of a secret as shown (whsec_…), as a
// receiver would decode it.
func ParseSecret(shown string) ([]byte, error) {
	b64, ok := strings.CutPrefix(shown, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret: does not start with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret: not base64")
	}
	return key, nil
}
