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

// KeySet is GitHub's public keys, by identifier.
type KeySet struct {
	keys map[string]*ecdsa.PublicKey
}

// keyList is the format GitHub publishes its keys in.
type keyList struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// ParseKeys reads a key list in GitHub's format:
// {"public_keys":[{"key_identifier":"…","key":"-----BEGIN PUBLIC KEY-----…","is_current":true}]}.
// Every key must be an ECDSA P-256 public key in PEM (PKIX) with an
// identifier of its own; a list without keys is refused. A key that is no
// longer current still verifies: GitHub may sign with it until it drops it
// from the list.
func ParseKeys(b []byte) (*KeySet, error) {
	var l keyList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("not GitHub's key list (JSON with public_keys): %w", err)
	}
	if len(l.PublicKeys) == 0 {
		return nil, errors.New("the key list holds no keys (public_keys is empty or missing)")
	}
	s := &KeySet{keys: make(map[string]*ecdsa.PublicKey, len(l.PublicKeys))}
	for i, k := range l.PublicKeys {
		id := strings.TrimSpace(k.KeyIdentifier)
		if id == "" {
			return nil, fmt.Errorf("public_keys[%d]: key_identifier is missing", i)
		}
		if _, dup := s.keys[id]; dup {
			return nil, fmt.Errorf("public_keys[%d]: key_identifier %q is given twice", i, id)
		}
		pub, err := parseKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("public_keys[%d] (%s): %w", i, id, err)
		}
		s.keys[id] = pub
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
	file string
	mu   sync.RWMutex
	set  *KeySet
}

// LoadKeys reads the key list in file (see ParseKeys).
func LoadKeys(file string) (*Keys, error) {
	k := &Keys{file: file}
	if _, err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the file again and answers how many keys it holds. On an
// error the keys are those read before.
func (k *Keys) Reload() (int, error) {
	b, err := os.ReadFile(k.file)
	if err != nil {
		return 0, err
	}
	s, err := ParseKeys(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", k.file, err)
	}
	k.mu.Lock()
	k.set = s
	k.mu.Unlock()
	return s.Len(), nil
}

// Verify checks a report's signature against the keys read last.
func (k *Keys) Verify(keyID, signature string, body []byte) error {
	k.mu.RLock()
	s := k.set
	k.mu.RUnlock()
	return s.Verify(keyID, signature, body)
}
