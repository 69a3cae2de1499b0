package password

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// cheap keeps the tests fast; the format and the checks are the same at
// any cost.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashFormat(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "$argon2id$v=19$m=47104,t=2,p=1$"
	if !strings.HasPrefix(h, prefix) {
		t.Fatalf("Hash = %q, want it to start with %q", h, prefix)
	}
	parts := strings.Split(h, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 { // 16 and 32 bytes, unpadded base64
		t.Errorf("salt %q and hash %q are not 16 and 32 bytes in unpadded base64", parts[4], parts[5])
	}
	ok, rehash, err := Verify("correct horse battery staple", h)
	if !ok || rehash || err != nil {
		t.Errorf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestVerify(t *testing.T) {
	h, err := HashWith("correct horse battery staple", cheap)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, password string
		want           bool
	}{
		{"the right password matches", "correct horse battery staple", true},
		{"another password does not", "correct horse battery stapler", false},
		{"the empty password does not", "", false},
		{"a prefix does not", "correct horse", false},
		{"case matters", "Correct horse battery staple", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, _, err := VerifyWith(c.password, h, cheap)
			if ok != c.want || err != nil {
				t.Errorf("VerifyWith = %v, %v; want %v, nil", ok, err, c.want)
			}
		})
	}
}

func TestSaltIsRandom(t *testing.T) {
	a, _ := HashWith("same password here", cheap)
	b, _ := HashWith("same password here", cheap)
	if a == b {
		t.Fatalf("two hashes of one password are equal: %q", a)
	}
}

func TestNeedsRehash(t *testing.T) {
	old, err := HashWith("correct horse battery staple", cheap)
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := Verify("correct horse battery staple", old)
	if !ok || !rehash || err != nil {
		t.Errorf("Verify of a hash made with other parameters = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	ok, rehash, err = VerifyWith("correct horse battery staple", old, cheap)
	if !ok || rehash || err != nil {
		t.Errorf("VerifyWith the parameters it was made with = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	// A failed check never asks for a rehash: there is nothing to rehash.
	if ok, rehash, _ := Verify("wrong password!", old); ok || rehash {
		t.Errorf("Verify(wrong) = %v, %v; want false, false", ok, rehash)
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	good, err := HashWith("correct horse battery staple", cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	with := func(alg, v, params, s, k string) string {
		return strings.Join([]string{"", alg, v, params, s, k}, "$")
	}
	for _, c := range []struct{ name, encoded string }{
		{"empty", ""},
		{"plain text", "correct horse battery staple"},
		{"argon2i", with("argon2i", "v=19", "m=64,t=1,p=1", salt, key)},
		{"argon2d", with("argon2d", "v=19", "m=64,t=1,p=1", salt, key)},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"old version", with("argon2id", "v=16", "m=64,t=1,p=1", salt, key)},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"parameters out of order", with("argon2id", "v=19", "t=1,m=64,p=1", salt, key)},
		{"extra parameter", with("argon2id", "v=19", "m=64,t=1,p=1,k=2", salt, key)},
		{"missing parameter", with("argon2id", "v=19", "m=64,t=1", salt, key)},
		{"zero memory", with("argon2id", "v=19", "m=0,t=1,p=1", salt, key)},
		{"memory below 8 KiB per lane", with("argon2id", "v=19", "m=15,t=1,p=2", salt, key)},
		{"memory of 4 GiB", with("argon2id", "v=19", "m=4194304,t=1,p=1", salt, key)},
		{"memory overflowing 32 bits", with("argon2id", "v=19", "m=99999999999,t=1,p=1", salt, key)},
		{"zero passes", with("argon2id", "v=19", "m=64,t=0,p=1", salt, key)},
		{"a million passes", with("argon2id", "v=19", "m=64,t=1000000,p=1", salt, key)},
		{"zero lanes", with("argon2id", "v=19", "m=64,t=1,p=0", salt, key)},
		{"256 lanes", with("argon2id", "v=19", "m=4096,t=1,p=256", salt, key)},
		{"negative number", with("argon2id", "v=19", "m=-64,t=1,p=1", salt, key)},
		{"plus sign", with("argon2id", "v=19", "m=+64,t=1,p=1", salt, key)},
		{"leading zero", with("argon2id", "v=19", "m=064,t=1,p=1", salt, key)},
		{"empty number", with("argon2id", "v=19", "m=,t=1,p=1", salt, key)},
		{"padded salt", with("argon2id", "v=19", "m=64,t=1,p=1", salt+"==", key)},
		{"url-safe base64", with("argon2id", "v=19", "m=64,t=1,p=1", strings.NewReplacer("+", "-", "/", "_").Replace(salt)+"-_", key)},
		{"salt not base64", with("argon2id", "v=19", "m=64,t=1,p=1", "!!!!", key)},
		{"short salt", with("argon2id", "v=19", "m=64,t=1,p=1", "c2FsdA", key)},
		{"empty salt", with("argon2id", "v=19", "m=64,t=1,p=1", "", key)},
		{"empty hash", with("argon2id", "v=19", "m=64,t=1,p=1", salt, "")},
		{"short hash", with("argon2id", "v=19", "m=64,t=1,p=1", salt, key[:10])},
		{"trailing field", good + "$x"},
		{"trailing newline", good + "\n"},
		{"no leading dollar", strings.TrimPrefix(good, "$")},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, rehash, err := Verify("correct horse battery staple", c.encoded)
			if ok || rehash || !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify(%q) = %v, %v, %v; want false, false, ErrMalformed", c.encoded, ok, rehash, err)
			}
		})
	}
}

func TestHashWithRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		{Memory: 1 << 30, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		if h, err := HashWith("correct horse battery staple", p); err == nil {
			t.Errorf("HashWith(%+v) = %q, want an error", p, h)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name, password string
		ok             bool
	}{
		{"12 characters pass", "abcdefghijkl", true},
		{"11 characters fail", "abcdefghijk", false},
		{"empty fails", "", false},
		{"characters, not bytes, count toward the minimum", "ééééééééééé", false}, // 11 runes, 22 bytes
		{"12 multi-byte characters pass", "éééééééééééé", true},
		{"256 bytes pass", strings.Repeat("a", 256), true},
		{"257 bytes fail", strings.Repeat("a", 257), false},
		{"only white space fails", strings.Repeat(" \t", 10), false},
		{"only non-ASCII white space fails", strings.Repeat("\u3000", 12), false},
		{"spaces inside pass", "correct horse battery", true},
		{"invalid UTF-8 fails", "abcdefghijkl\xff", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p tokend.Problems
			Check(&p, "password", c.password)
			if (len(p) == 0) != c.ok {
				t.Errorf("Check(%q) = %v, want ok %v", c.password, p, c.ok)
			}
			if len(p) > 0 && (p[0].Field != "password" || strings.Contains(p[0].Message, c.password) && c.password != "") {
				t.Errorf("Check(%q) = %v: want a problem on field password that does not repeat the password", c.password, p)
			}
		})
	}
}

// FuzzVerify feeds arbitrary stored strings to Verify: it must never panic
// and never match anything it did not produce, and whatever the parser
// accepts must be within the bounds that keep a check cheap.
func FuzzVerify(f *testing.F) {
	// A constant, not a fresh hash: each fuzzing worker process runs this
	// function again, and a fresh salt would give each its own "good".
	const good = "$argon2id$v=19$m=64,t=1,p=1$8jScphk6jDrPBsIAtpYivw$8Qf2AVMZfY9LE/0ptAdJWbHEPx3rgxFXCYfnrSpOjWM"
	if ok, _, err := VerifyWith("correct horse battery staple", good, cheap); !ok || err != nil {
		f.Fatalf("the seed hash does not verify: %v", err)
	}
	f.Add("correct horse battery staple", good)
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("x", "$argon2id$v=19$m=4294967295,t=4294967295,p=255$$")
	f.Add("", "$$$$$")
	f.Add("", "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, pw, encoded string) {
		p, salt, key, err := decode(encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode(%q): %v, want ErrMalformed", encoded, err)
			}
			if ok, rehash, err := Verify(pw, encoded); ok || rehash || err == nil {
				t.Fatalf("Verify accepted %q that decode refused", encoded)
			}
			return
		}
		if p.check() != nil || len(salt) != int(p.SaltLen) || len(key) != int(p.KeyLen) {
			t.Fatalf("decode(%q) answered out-of-bounds %+v", encoded, p)
		}
		// What decode accepts, encode writes back the same: one spelling
		// per hash.
		if back := encode(p, salt, key); back != encoded {
			t.Fatalf("decode then encode: %q, want %q", back, encoded)
		}
		if uint64(p.Memory)*uint64(p.Time) > 4096 {
			return // valid but too slow to run for every input
		}
		ok, _, err := VerifyWith(pw, encoded, cheap)
		if err != nil {
			t.Fatalf("Verify(%q): %v after decode accepted it", encoded, err)
		}
		if ok && encoded != good {
			t.Fatalf("Verify matched %q against a hash it did not make", pw)
		}
	})
}

// BenchmarkHash measures one hash with Default parameters: the cost of a
// sign-in, and of every failed one.
func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures a check with Default parameters.
func BenchmarkVerify(b *testing.B) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, _ := Verify("correct horse battery staple", h); !ok {
			b.Fatal("no match")
		}
	}
}
