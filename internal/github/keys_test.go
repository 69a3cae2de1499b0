package github_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend/internal/github"
	"github.com/tokend/tokend/internal/github/githubtest"
)

func TestParseKeysRefusesWhatIsNoGitHubKeyList(t *testing.T) {
	k := githubtest.NewKey(t, "k1")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	entry := func(id string, pub any) githubtest.Entry {
		return githubtest.Entry{KeyIdentifier: id, Key: githubtest.PEM(t, pub)}
	}
	cases := []struct {
		name, list, want string
	}{
		{"an empty file", "", "not GitHub's key list"},
		{"not JSON", "-----BEGIN PUBLIC KEY-----", "not GitHub's key list"},
		{"a list without keys", `{"public_keys":[]}`, "holds no keys"},
		{"an object without public_keys", `{"keys":[]}`, "holds no keys"},
		{"a P-384 key", string(githubtest.List(t, k.Entry(t), entry("k2", &p384.PublicKey))), "public_keys[1] (k2): key is not an ECDSA P-256 key"},
		{"an RSA key", string(githubtest.List(t, entry("r", &rsaKey.PublicKey))), "not an ECDSA P-256 key"},
		{"an Ed25519 key", string(githubtest.List(t, entry("e", edPub))), "not an ECDSA P-256 key"},
		{"a key that is not PEM", `{"public_keys":[{"key_identifier":"a","key":"MFkwEwYHKoZIzj0CAQ"}]}`, "not a PEM public key"},
		{"a PEM block that does not parse", `{"public_keys":[{"key_identifier":"a","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]}`, "does not parse"},
		{"a key without identifier", string(githubtest.List(t, githubtest.Entry{Key: githubtest.PEM(t, &k.Priv.PublicKey)})), "key_identifier is missing"},
		{"an identifier given twice", string(githubtest.ListOf(t, k, k)), `key_identifier "k1" is given twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := github.ParseKeys([]byte(c.list))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseKeys = %v, %v; want an error holding %q", s, err, c.want)
			}
		})
	}
}

func TestVerifyTakesOnlyAGoodSignatureOfTheBodyByAListedKey(t *testing.T) {
	current, old, stranger := githubtest.NewKey(t, "current"), githubtest.NewKey(t, "old"), githubtest.NewKey(t, "current")
	entryOld := old.Entry(t)
	entryOld.IsCurrent = false
	set, err := github.ParseKeys(githubtest.List(t, current.Entry(t), entryOld))
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Fatalf("Len = %d, want 2", set.Len())
	}
	body := []byte(`[{"token":"shop_x","type":"tokend_token","url":"https://github.com/o/r","source":"content"}]`)
	cases := []struct {
		name    string
		id, sig string
		body    []byte
		want    error
	}{
		{"signed by the current key", "current", current.Sign(t, body), body, nil},
		{"signed by a key no longer current but listed", "old", old.Sign(t, body), body, nil},
		{"no key identifier", "", current.Sign(t, body), body, github.ErrUnsigned},
		{"no signature", "current", "", body, github.ErrUnsigned},
		{"an unknown key identifier", "other", current.Sign(t, body), body, github.ErrUnknownKey},
		{"signed by another key under a listed identifier", "current", stranger.Sign(t, body), body, github.ErrBadSignature},
		{"signed by the other listed key", "current", old.Sign(t, body), body, github.ErrBadSignature},
		{"a tampered body", "current", current.Sign(t, body), append([]byte(" "), body...), github.ErrBadSignature},
		{"a signature that is not base64", "current", "not base64!", body, github.ErrBadSignature},
		{"base64 that is no signature", "current", "AAAA", body, github.ErrBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := set.Verify(c.id, c.sig, c.body); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestReloadKeepsTheKeysWhenTheFileIsBad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	first, second := githubtest.NewKey(t, "first"), githubtest.NewKey(t, "second")
	write := func(b []byte) {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(githubtest.ListOf(t, first))
	keys, err := github.LoadKeys(file)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[]`)
	verifies := func(k githubtest.Key) error { return keys.Verify(k.ID, k.Sign(t, body), body) }

	write([]byte(`{"public_keys":[]}`))
	if n, err := keys.Reload(); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Reload of an empty list = %d, %v; want an error naming the file", n, err)
	}
	if err := verifies(first); err != nil {
		t.Fatalf("after a failed reload the old key no longer verifies: %v", err)
	}
	write(githubtest.ListOf(t, second))
	if n, err := keys.Reload(); err != nil || n != 1 {
		t.Fatalf("Reload = %d, %v; want 1 key", n, err)
	}
	if err := verifies(second); err != nil {
		t.Fatalf("the new key does not verify: %v", err)
	}
	if err := verifies(first); !errors.Is(err, github.ErrUnknownKey) {
		t.Fatalf("the dropped key: %v, want ErrUnknownKey", err)
	}
	os.Remove(file)
	if _, err := keys.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if _, err := github.LoadKeys(file); err == nil {
		t.Fatal("LoadKeys of a missing file succeeded")
	}
}
