package tokend_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// Fuzz targets for the parsers that read what a client sends: IP ranges,
// durations and expiries. Their seeds (f.Add here, plus the files in
// testdata/fuzz/<target>/) run in every `go test`; `go test -run '^$'
// -fuzz '^FuzzParsePrefix$' .` explores.

// hasControl reports a C0 or C1 control character, DEL or NUL anywhere in s
// (bytes, so invalid UTF-8 cannot hide one).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 && r <= 0x9f })
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{
		"203.0.113.0/24", "203.0.113.7", "2001:db8::/32", "2001:db8::1", "::ffff:10.0.0.1",
		"::ffff:10.0.0.0/104", "10.0.0.9/8", "0.0.0.0/0", "::/0", "fe80::1%eth0", "fe80::1%\x00",
		"1.2.3.4/33", "1.2.3.4/-1", "01.2.3.4", "1.2.3.4 ", "", "/", "1.2.3.4/024",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := tokend.ParsePrefix(s)
		var probs tokend.Problems
		tokend.CheckIPs(&probs, "allowed_ips", []string{s})
		if (err == nil) != (len(probs) == 0) {
			t.Fatalf("ParsePrefix(%q) err=%v but CheckIPs found %v", s, err, probs)
		}
		if err != nil {
			if len(probs) != 1 || probs[0].Field != "allowed_ips[0]" {
				t.Fatalf("CheckIPs(%q) = %v, want one problem on allowed_ips[0]", s, probs)
			}
			return
		}
		if hasControl(s) || strings.ContainsAny(s, " %") {
			t.Fatalf("ParsePrefix accepted %q, which holds a control character, a blank or a zone", s)
		}
		if !p.IsValid() || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %v: not a valid prefix without zone", s, p)
		}
		if p != p.Masked() {
			t.Fatalf("ParsePrefix(%q) = %v, not masked (%v)", s, p, p.Masked())
		}
		if !strings.Contains(s, "/") && (p.Bits() != p.Addr().BitLen() || p.Addr().Is4In6()) {
			t.Fatalf("ParsePrefix(%q) = %v: a single address must be a whole, unmapped /32 or /128", s, p)
		}
		// The canonical form the store keeps reads back as the same range.
		again, err := tokend.ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, but its canonical form reads back as %v, %v", s, p, again, err)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{
		"7d", "30d", "90d", "0d", "-1d", "1h", "90m", "1h30m", "45s", "1.5h", "-1h", "0",
		"99999999999d", "2562047h", "1d1h", "d", "1\x00h", "1h\x00", " 1h", "+7d", "07d", "1e3d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := tokend.ParseDuration(s)
		if err != nil {
			return
		}
		if hasControl(s) || strings.ContainsAny(s, " \t") {
			t.Fatalf("ParseDuration accepted %q, which holds a control character or a blank", s)
		}
		if n, ok := strings.CutSuffix(s, "d"); ok {
			days, err := strconv.ParseInt(n, 10, 64)
			if err != nil || days < 0 || time.Duration(d)%(24*time.Hour) != 0 || int64(time.Duration(d)/(24*time.Hour)) != days {
				t.Fatalf("ParseDuration(%q) = %v (%d ns): not exactly that many whole days", s, d, int64(d))
			}
		}
		// What tokend writes (the API, the store, the CLI) reads back the same.
		again, err := tokend.ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("ParseDuration(%q) = %d ns, written %q, reads back as %d ns, %v", s, int64(d), d.String(), int64(again), err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var j tokend.Duration
		if err := json.Unmarshal(b, &j); err != nil || j != d {
			t.Fatalf("ParseDuration(%q) = %v: JSON %s reads back as %v, %v", s, d, b, j, err)
		}
	})
}

func FuzzResolveExpiry(f *testing.F) {
	// in, whether expires_at is given, expires_at as seconds from now.
	f.Add("30d", false, int64(0))
	f.Add("7d", false, int64(0))
	f.Add("unlimited", false, int64(0))
	f.Add("never", false, int64(0))
	f.Add("", true, int64(3600))
	f.Add("", true, int64(0))
	f.Add("", true, int64(-1))
	f.Add("", true, int64(101*366*24*3600))
	f.Add("1h", true, int64(3600))
	f.Add("59s", false, int64(0))
	f.Add("-1h", false, int64(0))
	f.Add("36500d", false, int64(0))
	f.Add("1h\x00", false, int64(0))
	now := time.Date(2026, 3, 1, 12, 30, 15, 500_000_000, time.FixedZone("X", 3600))
	f.Fuzz(func(t *testing.T, in string, hasAt bool, atSeconds int64) {
		var at *time.Time
		if hasAt {
			v := now.Add(time.Duration(atSeconds) * time.Second / 2) // half seconds too
			at = &v
		}
		var p tokend.Problems
		got := tokend.ResolveExpiry(&p, in, at, now)
		for _, fe := range p {
			if fe.Field != "expires_in" && fe.Field != "expires_at" {
				t.Fatalf("ResolveExpiry(%q, %v) reported field %q", in, at, fe.Field)
			}
		}
		if len(p) > 0 {
			if got != nil {
				t.Fatalf("ResolveExpiry(%q, %v) = %v with problems %v", in, at, got, p)
			}
			return
		}
		if in != "" && at != nil {
			t.Fatalf("ResolveExpiry(%q, %v) took both expires_in and expires_at", in, at)
		}
		if hasControl(in) {
			t.Fatalf("ResolveExpiry accepted expires_in %q, which holds a control character", in)
		}
		if got == nil {
			if at != nil || (in != "unlimited" && in != "never") {
				t.Fatalf("ResolveExpiry(%q, %v) = never, which only unlimited (or never) may ask for", in, at)
			}
			return
		}
		if got.Location() != time.UTC || !got.Equal(got.Truncate(time.Second)) {
			t.Fatalf("ResolveExpiry(%q, %v) = %v, want UTC in whole seconds", in, at, got)
		}
		// One cap for both ways of asking (issue 10): at most 100 years.
		if !got.After(now.Add(-time.Second)) || got.After(now.AddDate(100, 0, 0)) {
			t.Fatalf("ResolveExpiry(%q, %v) = %v: not between now (%v) and 100 years from now", in, at, got, now)
		}
		if at == nil && got.Before(now.Add(time.Minute-time.Second)) {
			t.Fatalf("ResolveExpiry(%q) = %v: expires_in gives at least a minute", in, got)
		}
	})
}

// FuzzLineOf: whatever text it is given, LineOf answers one line of text
// (LineText) within max bytes, and text that already is one changes only by
// its cut.
func FuzzLineOf(f *testing.F) {
	for _, s := range []string{
		"https://github.com/o/r/blob/main/.env", "a\u200bb", "a\u200fb", "\xff", "a\x00b", "é", "👩‍💻", "",
		"a\xe2\x80", "\ufeff", "\u202e", "ab\r\nc", "\ufffd",
	} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 {
			max = -max % 4096
		}
		got := tokend.LineOf(s, max)
		if msg := tokend.TextProblem(got, tokend.LineText); msg != "" || len(got) > max {
			t.Fatalf("LineOf(%q, %d) = %q (%d bytes): %s", s, max, got, len(got), msg)
		}
		if tokend.TextProblem(s, tokend.LineText) == "" && !strings.HasPrefix(s, got) {
			t.Fatalf("LineOf(%q, %d) = %q changed one line of text", s, max, got)
		}
		if tokend.TextProblem(s, tokend.LineText) == "" && len(s) <= max && got != s {
			t.Fatalf("LineOf(%q, %d) = %q changed text that fit", s, max, got)
		}
	})
}
