// Package github checks the signature of a report from GitHub's secret
// scanning partner program: GitHub signs each report's body with ECDSA
// P-256 over SHA-256 and names the key in Github-Public-Key-Identifier; its
// public keys are the list GitHub publishes, read from a file.
//
// It authenticates and nothing more: it never reads a report's secrets,
// looks anything up, or changes anything (internal/manage does).
package github

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// The request headers of a signed report.
const (
	HeaderKeyID     = "Github-Public-Key-Identifier"
	HeaderSignature = "Github-Public-Key-Signature"
)

// Why a report is refused; each is the message of a 401.
var (
	ErrUnsigned     = errors.New("the report is unsigned: " + HeaderKeyID + " and " + HeaderSignature + " are required")
	ErrUnknownKey   = errors.New("the report is signed with a key that is not among GitHub's keys (" + HeaderKeyID + ")")
	ErrBadSignature = errors.New("the report's signature does not verify (" + HeaderSignature + ")")
)

// KeySet is GitHub's public keys, by identifier, and the entries of their
// list that were left out.
type KeySet struct {
	keys    map[string]*ecdsa.PublicKey
	skipped []Skipped
}

// Skipped is an entry of a key list that was left out, and why.
type Skipped struct {
	Index         int    // in public_keys
	KeyIdentifier string // "" when the entry has none
	Reason        string
}

func (s Skipped) String() string {
	return fmt.Sprintf("public_keys[%d] (key_identifier %q): %s", s.Index, s.KeyIdentifier, s.Reason)
}

// keyList is the format GitHub publishes its keys in; each entry is read
// on its own (keyEntry), so that one odd entry spoils no other.
type keyList struct {
	PublicKeys []json.RawMessage `json:"public_keys"`
}

type keyEntry struct {
	KeyIdentifier string `json:"key_identifier"`
	Key           string `json:"key"`
	IsCurrent     bool   `json:"is_current"`
}

// ParseKeys reads a key list in GitHub's format:
// {"public_keys":[{"key_identifier":"…","key":"-----BEGIN PUBLIC KEY-----…","is_current":true}]}.
// Each usable entry - an identifier and an ECDSA P-256 public key in PEM
// (PKIX) - is taken; any other (no identifier, another kind of key, an
// entry that is no object, an identifier a usable entry before it has: the
// first wins) is left out and said in Skipped, so that one odd key in
// GitHub's list does not stop reports signed by the others. The list is
// refused when it is not GitHub's format or no entry is usable. A key that
// is no longer current still verifies: GitHub may sign with it until it
// drops it from the list.
func ParseKeys(b []byte) (*KeySet, error) {
	var l keyList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("not GitHub's key list (JSON with public_keys): %w", err)
	}
	if len(l.PublicKeys) == 0 {
		return nil, errors.New("the key list holds no keys (public_keys is empty or missing)")
	}
	s := &KeySet{keys: make(map[string]*ecdsa.PublicKey, len(l.PublicKeys))}
	for i, raw := range l.PublicKeys {
		var k keyEntry
		if err := json.Unmarshal(raw, &k); err != nil {
			s.skipped = append(s.skipped, Skipped{Index: i, Reason: "not a key entry (an object with key_identifier and key)"})
			continue
		}
		id := strings.TrimSpace(k.KeyIdentifier)
		skip := func(reason string) {
			s.skipped = append(s.skipped, Skipped{Index: i, KeyIdentifier: id, Reason: reason})
		}
		if id == "" {
			skip("key_identifier is missing")
			continue
		}
		if _, dup := s.keys[id]; dup {
			skip("key_identifier is given again: the first entry is kept")
			continue
		}
		pub, err := parseKey(k.Key)
		if err != nil {
			skip(err.Error())
			continue
		}
		s.keys[id] = pub
	}
	if len(s.keys) == 0 {
		reasons := make([]string, len(s.skipped))
		for i, sk := range s.skipped {
			reasons[i] = sk.String()
		}
		return nil, errors.New("the key list holds no usable key: " + strings.Join(reasons, "; "))
	}
	return s, nil
}

func parseKey(s string) (*ecdsa.PublicKey, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("key is not a PEM public key (-----BEGIN PUBLIC KEY-----)")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key does not parse: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("key is not an ECDSA P-256 key")
	}
	return pub, nil
}

// Len is how many keys the set holds.
func (s *KeySet) Len() int { return len(s.keys) }

// Skipped answers the entries of the list that were left out, in order.
func (s *KeySet) Skipped() []Skipped { return s.skipped }

// Verify checks that signature (base64 of an ASN.1 DER ECDSA signature) is
// the key keyID's over SHA-256 of body. Public-key verification needs no
// constant-time compare: nothing secret is compared.
func (s *KeySet) Verify(keyID, signature string, body []byte) error {
	if keyID == "" || signature == "" {
		return ErrUnsigned
	}
	pub, ok := s.keys[keyID]
	if !ok {
		return ErrUnknownKey
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrBadSignature
	}
	sum := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, sum[:], sig) {
		return ErrBadSignature
	}
	return nil
}

// Keys is the key set read from a file, which Reload reads again (on
// SIGHUP) while reports are verified.
type Keys struct {
	file     string
	mu       sync.RWMutex
	set      *KeySet
	failures atomic.Uint64
}

// LoadKeys reads the key list in file (see ParseKeys); Set says what it
// left out.
func LoadKeys(file string) (*Keys, error) {
	k := &Keys{file: file}
	if _, err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the file again and answers the set it now verifies with.
// On an error (the file cannot be read, is not GitHub's list, or holds no
// usable key) the keys are those read before, and ReloadFailures counts
// one more.
func (k *Keys) Reload() (*KeySet, error) {
	s, err := k.read()
	if err != nil {
		k.failures.Add(1)
		return nil, err
	}
	k.mu.Lock()
	k.set = s
	k.mu.Unlock()
	return s, nil
}

func (k *Keys) read() (*KeySet, error) {
	b, err := os.ReadFile(k.file)
	if err != nil {
		return nil, err
	}
	s, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.file, err)
	}
	return s, nil
}

// Set is the key set read last.
func (k *Keys) Set() *KeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.set
}

// Len is how many keys the set read last holds (tokend_github_scanning_keys).
func (k *Keys) Len() int { return k.Set().Len() }

// ReloadFailures counts the reloads that failed and kept the keys before.
func (k *Keys) ReloadFailures() uint64 { return k.failures.Load() }

// Verify checks a report's signature against the keys read last.
func (k *Keys) Verify(keyID, signature string, body []byte) error {
	return k.Set().Verify(keyID, signature, body)
}
