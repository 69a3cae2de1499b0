package secret

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateRoundTrip(t *testing.T) {
	for _, prefix := range []string{"tkd", "acme", "tkd_admin", "a", "abcdefghijklmnop"} {
		s, err := Generate(prefix)
		if err != nil {
			t.Fatalf("Generate(%q): %v", prefix, err)
		}
		plain := s.Reveal()
		if !strings.HasPrefix(plain, prefix+"_") {
			t.Errorf("secret %q does not start with %q", Mask(plain), prefix+"_")
		}
		if want := len(prefix) + 1 + RandomLen + 1 + ChecksumLen; len(plain) != want {
			t.Errorf("len = %d, want %d", len(plain), want)
		}
		got, ok := Check(plain)
		if !ok || got != prefix {
			t.Errorf("Check(generated) = %q, %v; want %q, true", got, ok, prefix)
		}
	}
}

func TestGenerateRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"", strings.Repeat("a", MaxPrefixLen+1)} {
		if _, err := Generate(p); err == nil {
			t.Errorf("Generate(%q) succeeded", p)
		}
	}
}

func TestGenerateIsRandom(t *testing.T) {
	seen := map[string]bool{}
	counts := map[byte]int{}
	const n = 2000
	for range n {
		s, err := Generate("tkd")
		if err != nil {
			t.Fatal(err)
		}
		if seen[s.Reveal()] {
			t.Fatal("the same secret twice")
		}
		seen[s.Reveal()] = true
		for _, c := range []byte(s.Reveal()[4 : 4+RandomLen]) {
			counts[c]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("random part uses %d distinct characters, want all 62", len(counts))
	}
	// Each character is expected n*43/62 ≈ 1387 times; a biased sampler
	// (plain byte%62) would skew the first 8 characters by about 25%.
	for c, k := range counts {
		if k < 1100 || k > 1700 {
			t.Errorf("character %q appears %d times, expected about 1387", c, k)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	good, _ := Generate("tkd")
	g := good.Reveal()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":                         "",
		"garbage":                       "hello",
		"one character mistyped":        flip(g, 10),
		"checksum mistyped":             flip(g, len(g)-1),
		"prefix changed":                "tkx" + g[3:],
		"truncated":                     g[:len(g)-1],
		"extra character":               g + "a",
		"upper-case prefix":             "TKD" + g[3:],
		"missing separator":             strings.Replace(g, "_", "", 1),
		"non-base62 in random":          g[:10] + "-" + g[11:],
		"too long":                      strings.Repeat("a", MaxLen+1),
		"prefix replaced by underscore": "_" + g[3:],
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if _, ok := Check(s); ok {
				t.Errorf("Check(%q) accepted", s)
			}
		})
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	s, _ := Generate("tkd")
	plain := s.Reveal()
	if n := testing.AllocsPerRun(100, func() { Check(plain) }); n != 0 {
		t.Errorf("Check allocates %v times", n)
	}
}

func TestMask(t *testing.T) {
	cases := []struct{ in, want string }{
		{"acme_0123456789abcdefghijABCDEFGHIJ0123456789abc_x7Qa12", "acme_…Qa12"},
		{"tkd_admin_0123456789abcdefghijABCDEFGHIJ0123456789abc_x7Qa12", "tkd_admin_…Qa12"},
		{"short", "…"},
		{"", "…"},
		{"no-underscores-at-all-but-long", "…"},
	}
	for _, c := range cases {
		if got := Mask(c.in); got != c.want {
			t.Errorf("Mask(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSecretNeverPrintsPlaintext(t *testing.T) {
	s, _ := Generate("tkd")
	plain := s.Reveal()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "secret", s)
	fmt.Fprintf(&buf, "%v %s %+v %#v %q", s, s, s, s, s)
	buf.WriteString(s.String())
	b, _ := s.MarshalText()
	buf.Write(b)
	if strings.Contains(buf.String(), plain[4:20]) {
		t.Fatalf("plaintext leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), Mask(plain)) {
		t.Fatalf("masked form missing: %s", buf.String())
	}
}

func TestHasher(t *testing.T) {
	if _, err := NewHasher([]byte("short")); err == nil {
		t.Fatal("a short pepper was accepted")
	}
	h1, _ := NewHasher(bytes.Repeat([]byte("a"), 32))
	h2, _ := NewHasher(bytes.Repeat([]byte("b"), 32))
	a, b := h1.Sum("tkd_x"), h1.Sum("tkd_x")
	if !Equal(a[:], b[:]) {
		t.Fatal("same input, different digests")
	}
	c := h2.Sum("tkd_x")
	if Equal(a[:], c[:]) {
		t.Fatal("the pepper does not change the digest")
	}
	d := h1.Sum("tkd_y")
	if Equal(a[:], d[:]) {
		t.Fatal("different inputs, same digest")
	}
	if n := testing.AllocsPerRun(100, func() { h1.Sum("tkd_0123456789") }); n != 0 && !raceEnabled {
		t.Errorf("Sum allocates %v times", n)
	}
}

func TestNewID(t *testing.T) {
	id, err := NewID("tok")
	if err != nil || !strings.HasPrefix(id, "tok_") || len(id) != 4+IDLen {
		t.Fatalf("NewID = %q, %v", id, err)
	}
}

func BenchmarkCheck(b *testing.B) {
	s, _ := Generate("tkd")
	plain := s.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		Check(plain)
	}
}

func BenchmarkHash(b *testing.B) {
	h, _ := NewHasher(bytes.Repeat([]byte("p"), 32))
	s, _ := Generate("tkd")
	plain := s.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		h.Sum(plain)
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate("tkd"); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCheck: Check agrees with a plain reading of the format (below), for
// the input and for the input with its checksum made right (so that the
// accepting path is explored too, which random bytes almost never reach);
// Parse agrees with Check; what is accepted is printable ASCII, masks
// without its random part, and fails once any one character changes.
// Seeds: the f.Add below and testdata/fuzz/FuzzCheck/.
// `go test -run '^$' -fuzz '^FuzzCheck$' ./secret/` explores.
func FuzzCheck(f *testing.F) {
	s, _ := Generate("tkd")
	f.Add(s.Reveal())
	f.Add("tkd__")
	f.Add("")
	f.Add(strings.Repeat("_", MaxLen))
	f.Fuzz(func(t *testing.T, in string) {
		checkOne(t, in)
		if len(in) > ChecksumLen {
			checkOne(t, withChecksum(in))
		}
	})
}

// withChecksum replaces the last ChecksumLen bytes of s with the checksum
// of what precedes the '_' before them.
func withChecksum(s string) string {
	body := s[:len(s)-ChecksumLen-1]
	return string(appendChecksum([]byte(s[:len(s)-ChecksumLen]), crc32.ChecksumIEEE([]byte(body))))
}

// wellFormed is the format as DESIGN.md states it, read the slow way:
// <prefix>_<43 base62>_<6 base62 = CRC32 of "<prefix>_<random>">, the
// prefix of lower-case letters, digits and '_', 1 to 16 bytes.
func wellFormed(s string) (prefix string, ok bool) {
	m := regexp.MustCompile(`^([a-z0-9_]{1,16})_([0-9A-Za-z]{43})_([0-9A-Za-z]{6})$`).FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	var v uint64
	for _, c := range m[3] {
		v = v*62 + uint64(strings.IndexRune(alphabet, c))
	}
	if v != uint64(crc32.ChecksumIEEE([]byte(m[1]+"_"+m[2]))) {
		return "", false
	}
	return m[1], true
}

func checkOne(t *testing.T, in string) {
	prefix, ok := Check(in)
	wantPrefix, wantOK := wellFormed(in)
	if ok != wantOK || prefix != wantPrefix {
		t.Fatalf("Check(%q) = %q, %v; the format says %q, %v", in, prefix, ok, wantPrefix, wantOK)
	}
	sec, pok := Parse(in)
	if pok != ok {
		t.Fatalf("Parse(%q) ok=%v but Check ok=%v", in, pok, ok)
	}
	if !ok {
		return
	}
	if sec.Reveal() != in {
		t.Fatalf("Parse(%q).Reveal() = %q", in, sec.Reveal())
	}
	for i := 0; i < len(in); i++ {
		if in[i] <= ' ' || in[i] >= 0x7f {
			t.Fatalf("Check accepted %q, which holds byte %#x", in, in[i])
		}
	}
	random := in[len(in)-ChecksumLen-1-RandomLen : len(in)-ChecksumLen-1]
	for _, shown := range []string{sec.String(), fmt.Sprintf("%v %s %q %+v %#v", sec, sec, sec, sec, sec), Mask(in)} {
		if strings.Contains(shown, random) || !strings.HasPrefix(shown, prefix+"_…") {
			t.Fatalf("%q shows as %q", Mask(in), shown)
		}
	}
	// CRC32 catches every change of one character (a burst of at most 8
	// bits): try each position once, with a character the input derives.
	for i := len(prefix) + 1; i < len(in); i++ {
		if in[i] == '_' {
			continue
		}
		c := alphabet[(strings.IndexByte(alphabet, in[i])+1+int(in[0])%61)%62]
		if _, ok := Check(in[:i] + string(c) + in[i+1:]); ok {
			t.Fatalf("Check accepted %q with character %d changed to %q", Mask(in), i, c)
		}
	}
}

// FuzzGenerate: a secret made with any prefix an app may have checks,
// parses and masks as that prefix's.
func FuzzGenerate(f *testing.F) {
	for _, p := range []string{"tkd", "tkd_admin", "a", "abcdefghijklmnop", "shop_eu_1", "x9"} {
		f.Add(p)
	}
	appPrefix := regexp.MustCompile(`^[a-z][a-z0-9_]{0,15}$`) // tokend.CheckPrefix
	f.Fuzz(func(t *testing.T, prefix string) {
		s, err := Generate(prefix)
		if !appPrefix.MatchString(prefix) {
			return // Generate's callers check the prefix first
		}
		if err != nil {
			t.Fatalf("Generate(%q): %v", prefix, err)
		}
		got, ok := Check(s.Reveal())
		if !ok || got != prefix {
			t.Fatalf("Check(Generate(%q)) = %q, %v", prefix, got, ok)
		}
		checkOne(t, s.Reveal())
	})
}

func TestRedact(t *testing.T) {
	s, _ := Generate("cnry")
	sec := s.Reveal()
	random := sec[len("cnry_") : len("cnry_")+RandomLen]
	mistyped := sec[:len(sec)-1] + "x"
	if mistyped == sec {
		mistyped = sec[:len(sec)-1] + "y"
	}
	for _, in := range []string{
		sec, "path=/v1/tokens/" + sec + " status=404", `"` + sec + `" is not in the catalog`,
		"Bearer " + mistyped, "X" + sec + "Y", sec + "," + sec,
	} {
		got := Redact(in)
		if strings.Contains(got, random) || !strings.Contains(got, "_…") {
			t.Errorf("Redact(%q) = %q", Mask(in), got)
		}
	}
	for _, in := range []string{"", "tkd__", "the request has 1 invalid field", "tok_4Lx0u1ZbT5uJ9mYtq2c3Qe", strings.Repeat("a_", 40)} {
		if got := Redact(in); got != in {
			t.Errorf("Redact(%q) = %q, want it unchanged", in, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Redact("path=/v1/tokens/tok_4Lx0u1ZbT5uJ9mYtq2c3Qe status=404") }); n != 0 && !raceEnabled {
		t.Errorf("Redact allocates %v times on text without a secret", n)
	}
}
