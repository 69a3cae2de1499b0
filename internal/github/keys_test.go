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
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend/internal/github"
	"github.com/tokend/tokend/internal/github/githubtest"
)

// TestParseKeysRefusesWhatIsNoGitHubKeyList: a list is refused only when it
// is not GitHub's format or holds no usable key.
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
		{"public_keys that is no array", `{"public_keys":{"key_identifier":"a"}}`, "not GitHub's key list"},
		{"a list without keys", `{"public_keys":[]}`, "holds no keys"},
		{"an object without public_keys", `{"keys":[]}`, "holds no keys"},
		{"only a P-384 key", string(githubtest.List(t, entry("k2", &p384.PublicKey))), `public_keys[0] (key_identifier "k2"): key is not an ECDSA P-256 key`},
		{"an RSA and an Ed25519 key", string(githubtest.List(t, entry("r", &rsaKey.PublicKey), entry("e", edPub))),
			`no usable key: public_keys[0] (key_identifier "r"): key is not an ECDSA P-256 key; public_keys[1] (key_identifier "e"): key is not an ECDSA P-256 key`},
		{"a key that is not PEM", `{"public_keys":[{"key_identifier":"a","key":"MFkwEwYHKoZIzj0CAQ"}]}`, "not a PEM public key"},
		{"a PEM block that does not parse", `{"public_keys":[{"key_identifier":"a","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]}`, "does not parse"},
		{"a key without identifier", string(githubtest.List(t, githubtest.Entry{Key: githubtest.PEM(t, &k.Priv.PublicKey)})), "key_identifier is missing"},
		{"entries that are no objects", `{"public_keys":["k1",7,null]}`, "no usable key: public_keys[0]"},
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

// TestParseKeysSkipsUnusableEntries: an entry that cannot be used is left
// out, named by its index and key_identifier, and the others are taken; of
// an identifier given twice the first usable entry wins.
func TestParseKeysSkipsUnusableEntries(t *testing.T) {
	k1, k1again, k3 := githubtest.NewKey(t, "k1"), githubtest.NewKey(t, "k1"), githubtest.NewKey(t, "k3")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	list := githubtest.List(t,
		githubtest.Entry{KeyIdentifier: "k1", Key: githubtest.PEM(t, &p384.PublicKey)}, // 0: P-384, skipped before k1 is taken
		k1.Entry(t),      // 1
		k1again.Entry(t), // 2: k1 again
		githubtest.Entry{KeyIdentifier: " ", Key: githubtest.PEM(t, &k3.Priv.PublicKey)}, // 3: no identifier
		k3.Entry(t), // 4
	)
	set, err := github.ParseKeys(list)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Errorf("Len = %d, want 2", set.Len())
	}
	want := []github.Skipped{
		{Index: 0, KeyIdentifier: "k1", Reason: "key is not an ECDSA P-256 key"},
		{Index: 2, KeyIdentifier: "k1", Reason: "key_identifier is given again: the first entry is kept"},
		{Index: 3, KeyIdentifier: "", Reason: "key_identifier is missing"},
	}
	if got := set.Skipped(); !slices.Equal(got, want) {
		t.Errorf("Skipped = %+v\nwant %+v", got, want)
	}
	body := []byte(`[]`)
	for _, c := range []struct {
		key  githubtest.Key
		want error
	}{{k1, nil}, {k3, nil}, {k1again, github.ErrBadSignature}} {
		if err := set.Verify(c.key.ID, c.key.Sign(t, body), body); !errors.Is(err, c.want) {
			t.Errorf("a report signed by %s: %v, want %v", c.key.ID, err, c.want)
		}
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

// TestReloadKeepsTheKeysWhenTheFileIsBad: a reload takes a file with at
// least one usable key (skipping the others), keeps the keys it had when
// none is usable or the file cannot be read, and counts those failures.
func TestReloadKeepsTheKeysWhenTheFileIsBad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	first, second := githubtest.NewKey(t, "first"), githubtest.NewKey(t, "second")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
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
	if keys.Len() != 1 || keys.ReloadFailures() != 0 {
		t.Fatalf("after LoadKeys: Len %d, ReloadFailures %d", keys.Len(), keys.ReloadFailures())
	}
	body := []byte(`[]`)
	verifies := func(k githubtest.Key) error { return keys.Verify(k.ID, k.Sign(t, body), body) }

	for i, bad := range [][]byte{[]byte(`{"public_keys":[]}`), githubtest.List(t, githubtest.Entry{KeyIdentifier: "p384", Key: githubtest.PEM(t, &p384.PublicKey)})} {
		write(bad)
		if set, err := keys.Reload(); err == nil || !strings.Contains(err.Error(), file) {
			t.Fatalf("Reload of %s = %v, %v; want an error naming the file", bad, set, err)
		}
		if err := verifies(first); err != nil {
			t.Fatalf("after a failed reload the old key no longer verifies: %v", err)
		}
		if keys.Len() != 1 || keys.ReloadFailures() != uint64(i+1) {
			t.Fatalf("after %d failed reloads: Len %d, ReloadFailures %d", i+1, keys.Len(), keys.ReloadFailures())
		}
	}
	write(githubtest.List(t, second.Entry(t), githubtest.Entry{KeyIdentifier: "p384", Key: githubtest.PEM(t, &p384.PublicKey)}))
	set, err := keys.Reload()
	if err != nil || set.Len() != 1 || len(set.Skipped()) != 1 || set.Skipped()[0].KeyIdentifier != "p384" {
		t.Fatalf("Reload of a list with one usable key = %+v, %v; want it, p384 skipped", set, err)
	}
	if keys.Len() != 1 || keys.ReloadFailures() != 2 {
		t.Errorf("after the reload: Len %d, ReloadFailures %d", keys.Len(), keys.ReloadFailures())
	}
	if err := verifies(second); err != nil {
		t.Fatalf("the new key does not verify: %v", err)
	}
	if err := verifies(first); !errors.Is(err, github.ErrUnknownKey) {
		t.Fatalf("the dropped key: %v, want ErrUnknownKey", err)
	}
	os.Remove(file)
	if _, err := keys.Reload(); err == nil || keys.ReloadFailures() != 3 {
		t.Fatalf("Reload of a missing file: %v, ReloadFailures %d", err, keys.ReloadFailures())
	}
	if _, err := github.LoadKeys(file); err == nil {
		t.Fatal("LoadKeys of a missing file succeeded")
	}
}
