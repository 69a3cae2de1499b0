// Package password hashes and checks the passwords of dashboard users with
// argon2id (golang.org/x/crypto/argon2), stored in the PHC string format
// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>" (unpadded
// standard base64), and holds the password policy.
//
// It never logs or returns a password, and it must not panic on any stored
// string: an encoding it cannot read is an error, never a match. Parameters
// read from an encoding are bounded, so a corrupt or hostile row cannot make
// a check allocate gigabytes or run for minutes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/tokend/tokend"
)

// Params are argon2id's cost parameters and sizes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// Default is what Hash uses: 46 MiB, two passes, one lane, a 16-byte salt
// and a 32-byte hash. That is stronger than each of OWASP's argon2id
// configurations (46 MiB with one pass, or 19 MiB with two) and still costs
// well under 100 ms on one core (BenchmarkHash).
var Default = Params{Memory: 46 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read from an encoding.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Policy limits.
const (
	MinChars = 12
	MaxBytes = 256
)

// ErrMalformed is answered for a stored string that is not an argon2id
// hash this package can check.
var ErrMalformed = errors.New("password: not an argon2id hash in PHC format")

// Hash answers the argon2id hash of password with Default parameters and a
// fresh random salt.
func Hash(password string) (string, error) {
	return HashWith(password, Default)
}

// HashWith answers the hash of password with p: a service configured with
// other parameters, and tests, which use tiny ones to stay fast.
func HashWith(password string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key := derive(password, salt, p)
	return encode(p, salt, key), nil
}

// Verify reports whether password matches encoded, and whether encoded
// should be replaced by a fresh Hash because it was made with parameters
// other than Default. A malformed encoding answers ErrMalformed and never a
// match.
func Verify(password, encoded string) (ok, needsRehash bool, err error) {
	return VerifyWith(password, encoded, Default)
}

// VerifyWith is Verify for a caller that hashes with current rather than
// Default: needsRehash is true when encoded was made with other parameters.
func VerifyWith(password, encoded string, current Params) (ok, needsRehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got := derive(password, salt, p)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != current, nil
}

// Check adds to p what is wrong with password as a new password: fewer than
// MinChars characters, more than MaxBytes bytes, only white space, or not
// UTF-8. It says nothing about the password itself.
func Check(p *tokend.Problems, field, password string) {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		p.Add(field, "must be valid UTF-8 text")
	case n < MinChars:
		p.Add(field, "must be at least %d characters", MinChars)
	case len(password) > MaxBytes:
		p.Add(field, "must be at most %d bytes", MaxBytes)
	case strings.TrimFunc(password, unicode.IsSpace) == "":
		p.Add(field, "must not be only white space")
	}
}

// slots bounds how many hashes run at once to the number of CPUs: more
// would not finish sooner, and each holds Memory KiB, so a burst of
// sign-ins cannot exhaust the server's memory.
var slots = sync.OnceValue(func() chan struct{} {
	return make(chan struct{}, runtime.GOMAXPROCS(0))
})

func derive(password string, salt []byte, p Params) []byte {
	s := slots()
	s <- struct{}{}
	defer func() { <-s }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

func (p Params) check() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("password: threads %d out of range 1..%d", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("password: memory %d KiB out of range %d..%d", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("password: time %d out of range 1..%d", p.Time, maxTime)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("password: salt length %d out of range %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("password: key length %d out of range %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode reads what encode writes, strictly: the fields in this order, no
// extra parameters, decimal numbers without signs or leading zeros, and
// canonical base64. Anything else is ErrMalformed.
func decode(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, ErrMalformed
	}
	var p Params
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return Params{}, nil, nil, ErrMalformed
	}
	m, ok1 := param(kv[0], "m=", maxMemory)
	t, ok2 := param(kv[1], "t=", maxTime)
	l, ok3 := param(kv[2], "p=", maxThreads)
	if !ok1 || !ok2 || !ok3 {
		return Params{}, nil, nil, ErrMalformed
	}
	p.Memory, p.Time, p.Threads = m, t, uint8(l)
	salt, ok1 := canonical(parts[4])
	key, ok2 := canonical(parts[5])
	if !ok1 || !ok2 {
		return Params{}, nil, nil, ErrMalformed
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if p.check() != nil {
		return Params{}, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}

// canonical decodes s, which must be exactly what encode would write for
// the bytes: the decoder alone skips line breaks and tolerates stray bits.
func canonical(s string) ([]byte, bool) {
	b, err := b64.Strict().DecodeString(s)
	if err != nil || b64.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// param reads "<name><decimal>" with the value in 1..max.
func param(s, name string, max uint32) (uint32, bool) {
	v, ok := strings.CutPrefix(s, name)
	if !ok || v == "" || len(v) > 10 || v[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > uint64(max) {
		return 0, false
	}
	return uint32(n), true
}
