// Package secret makes, checks, hashes and masks tokend secrets.
//
// A secret reads <prefix>_<random>_<checksum>: random is 43 base62
// characters (256 bits from crypto/rand), checksum is the CRC32 of
// "<prefix>_<random>" in 6 base62 characters. The checksum lets anyone reject
// a mistyped or made-up secret without touching storage, and lets secret
// scanners recognise the format with few false positives.
//
// This package never logs and never keeps a secret: the Secret type prints
// masked, and only HMAC-SHA256 digests leave it for storage.
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"unsafe"
)

const (
	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// RandomLen base62 characters carry 43*log2(62) ≈ 256.03 bits.
	RandomLen = 43
	// ChecksumLen base62 characters hold any 32-bit CRC (62^6 > 2^32).
	ChecksumLen = 6
	// MaxPrefixLen bounds the prefix, as apps do.
	MaxPrefixLen = 16
	// MaxLen is the longest well-formed secret.
	MaxLen = MaxPrefixLen + 1 + RandomLen + 1 + ChecksumLen
)

// Secret is a plaintext secret. It formats, prints and logs masked; call
// Reveal for the plaintext, exactly once, in the answer to create or rotate.
type Secret struct{ s string }

// Reveal answers the plaintext.
func (s Secret) Reveal() string { return s.s }

// String answers the masked form.
func (s Secret) String() string { return Mask(s.s) }

// Format prints the masked form whatever the verb.
func (s Secret) Format(f fmt.State, _ rune) { io.WriteString(f, Mask(s.s)) }

// LogValue logs the masked form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Mask(s.s)) }

// MarshalText answers the masked form, so that a Secret put in JSON by
// mistake does not leak: the plaintext must be revealed on purpose.
func (s Secret) MarshalText() ([]byte, error) {
	return []byte(Mask(s.s)), nil
}

// Generate makes a new secret with the given prefix.
func Generate(prefix string) (Secret, error) {
	if prefix == "" || len(prefix) > MaxPrefixLen {
		return Secret{}, errors.New("secret: prefix must be 1 to 16 characters")
	}
	b := make([]byte, 0, len(prefix)+1+RandomLen+1+ChecksumLen)
	b = append(b, prefix...)
	b = append(b, '_')
	b, err := appendRandom(b, RandomLen)
	if err != nil {
		return Secret{}, err
	}
	sum := crc32.ChecksumIEEE(b)
	b = append(b, '_')
	b = appendChecksum(b, sum)
	return Secret{s: string(b)}, nil
}

// appendRandom appends n uniformly random base62 characters, by rejection
// sampling bytes so that no character is likelier than another.
func appendRandom(b []byte, n int) ([]byte, error) {
	var buf [64]byte
	for n > 0 {
		if _, err := rand.Read(buf[:]); err != nil {
			return nil, fmt.Errorf("secret: reading random bytes: %w", err)
		}
		for _, c := range buf {
			if c >= 248 { // 248 = 4*62: keeps c%62 uniform
				continue
			}
			b = append(b, alphabet[c%62])
			n--
			if n == 0 {
				break
			}
		}
	}
	return b, nil
}

func appendChecksum(b []byte, sum uint32) []byte {
	var c [ChecksumLen]byte
	v := uint64(sum)
	for i := ChecksumLen - 1; i >= 0; i-- {
		c[i] = alphabet[v%62]
		v /= 62
	}
	return append(b, c[:]...)
}

// Check reports whether s is a well-formed secret with a correct checksum,
// and answers its prefix. It allocates nothing and reads no storage.
func Check(s string) (prefix string, ok bool) {
	if len(s) > MaxLen || len(s) < 1+1+RandomLen+1+ChecksumLen {
		return "", false
	}
	sumAt := len(s) - ChecksumLen
	randAt := sumAt - 1 - RandomLen
	if s[sumAt-1] != '_' || s[randAt-1] != '_' {
		return "", false
	}
	prefix = s[:randAt-1]
	if prefix == "" {
		return "", false
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return "", false
		}
	}
	for i := randAt; i < sumAt-1; i++ {
		if !isBase62(s[i]) {
			return "", false
		}
	}
	var want uint64
	for i := sumAt; i < len(s); i++ {
		c := s[i]
		if !isBase62(c) {
			return "", false
		}
		want = want*62 + uint64(strings.IndexByte(alphabet, c))
	}
	if uint64(crc32.ChecksumIEEE(unsafeBytes(s[:sumAt-1]))) != want {
		return "", false
	}
	return prefix, true
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Parse checks s and wraps it as a Secret.
func Parse(s string) (Secret, bool) {
	if _, ok := Check(s); !ok {
		return Secret{}, false
	}
	return Secret{s: s}, true
}

// Mask answers the display form: the prefix and the last 4 characters,
// e.g. "acme_…x7Qa". Anything that is not a secret masks to "…".
func Mask(s string) string {
	i := strings.LastIndexByte(s, '_')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], '_')
	}
	if j <= 0 || len(s) < 8 {
		return "…"
	}
	return s[:j] + "_…" + s[len(s)-4:]
}

// shaped matches anything laid out as a secret, checksum right or not (a
// mistyped secret is nearly the secret), with letters or digits of any case
// before the random part so that no part of a prefix stays behind.
var shaped = regexp.MustCompile(`[0-9A-Za-z_]*_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}`)

// Redact answers s with everything shaped like a secret masked, for text
// that may echo what a client sent (error messages, logged paths). It
// allocates only when it finds one.
func Redact(s string) string {
	if len(s) < 1+1+RandomLen+1+ChecksumLen || strings.IndexByte(s, '_') < 0 || !shaped.MatchString(s) {
		return s
	}
	return shaped.ReplaceAllStringFunc(s, Mask)
}

// Hasher computes HMAC-SHA256(pepper, secret). It is safe for concurrent use
// and reuses its HMAC states so that hashing does not allocate.
type Hasher struct {
	pool sync.Pool
}

// MinPepperLen is the shortest pepper accepted.
const MinPepperLen = 32

// NewHasher makes a Hasher with the pepper, which must be at least 32 bytes
// and must be kept outside the database.
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) < MinPepperLen {
		return nil, fmt.Errorf("secret: the pepper must be at least %d bytes", MinPepperLen)
	}
	key := append([]byte(nil), pepper...)
	h := &Hasher{}
	h.pool.New = func() any { return &hmacState{mac: hmac.New(sha256.New, key)} }
	return h, nil
}

// hmacState is a reusable HMAC with its own output buffer, so that Sum's
// result does not escape to the heap through the hash.Hash interface.
type hmacState struct {
	mac hash.Hash
	buf [sha256.Size]byte
}

// Sum answers the digest of s.
func (h *Hasher) Sum(s string) [sha256.Size]byte {
	st := h.pool.Get().(*hmacState)
	st.mac.Reset()
	st.mac.Write(unsafeBytes(s)) // HMAC only reads its input
	out := [sha256.Size]byte(st.mac.Sum(st.buf[:0]))
	h.pool.Put(st)
	return out
}

// Equal compares two digests in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// unsafeBytes views s as bytes without copying, for read-only use by
// crc32 on the hot path.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// IDLen is the number of random base62 characters in an id (≈131 bits).
const IDLen = 22

// NewID makes a public identifier such as "tok_4Lx0u1ZbT5uJ9mYtq2c3Qe". Ids are
// random so that they reveal nothing about how many tokens exist.
func NewID(kind string) (string, error) {
	b := make([]byte, 0, len(kind)+1+IDLen)
	b = append(b, kind...)
	b = append(b, '_')
	b, err := appendRandom(b, IDLen)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
