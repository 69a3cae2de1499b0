// Package githubtest plays GitHub's part in tests of the secret scanning
// partner endpoint: it makes signing keys, publishes them in GitHub's key
// list format, and signs reports as GitHub does.
package githubtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"
)

// Key is a signing key of GitHub's, made for one test.
type Key struct {
	ID   string
	Priv *ecdsa.PrivateKey
}

// NewKey makes a P-256 key named id.
func NewKey(t testing.TB, id string) Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Priv: priv}
}

// PEM is the public key in PEM (PKIX), as GitHub's list gives it.
func PEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Entry is one key of a list: an identifier and a PEM public key.
type Entry struct {
	KeyIdentifier string `json:"key_identifier"`
	Key           string `json:"key"`
	IsCurrent     bool   `json:"is_current"`
}

// Entry is k's entry in GitHub's list.
func (k Key) Entry(t testing.TB) Entry {
	return Entry{KeyIdentifier: k.ID, Key: PEM(t, &k.Priv.PublicKey), IsCurrent: true}
}

// List is GitHub's published key list holding entries.
func List(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	b, err := json.Marshal(map[string][]Entry{"public_keys": entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ListOf is the list of keys.
func ListOf(t testing.TB, keys ...Key) []byte {
	t.Helper()
	var es []Entry
	for _, k := range keys {
		es = append(es, k.Entry(t))
	}
	return List(t, es...)
}

// Sign answers the Github-Public-Key-Signature of body: base64 of the ASN.1
// ECDSA signature over its SHA-256.
func (k Key) Sign(t testing.TB, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, k.Priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// Request is a report to url as GitHub posts it: body as JSON, signed by k.
func (k Key) Request(t testing.TB, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Github-Public-Key-Identifier", k.ID)
	req.Header.Set("Github-Public-Key-Signature", k.Sign(t, body))
	return req
}
