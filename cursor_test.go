package tokend_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// FuzzParseCursor: a cursor is accepted only when it is exactly what the
// encoder writes for some in-range sort key, and decoding never panics.
// Seeds: testdata/fuzz/FuzzParseCursor.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{
		tokend.TimeCursor(tokend.CursorTokens, time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC), "tok_0001"),
		tokend.TimeCursor(tokend.CursorApps, time.Unix(0, 0), "app_system"),
		tokend.IDCursor(tokend.CursorEvents, 42),
		base64.RawURLEncoding.EncodeToString([]byte("t:-9223372036854775808:a")),
		base64.RawURLEncoding.EncodeToString([]byte("e:0")),
		"",
		"!!",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, kind := range []string{tokend.CursorTokens, tokend.CursorApps} {
			at, id, err := tokend.ParseTimeCursor(kind, s)
			if err != nil {
				if tokend.CodeOf(err) != tokend.ECodeInvalid {
					t.Fatalf("ParseTimeCursor(%q): %v, want VALIDATION_FAILED", s, err)
				}
				continue
			}
			if !tokend.ValidID(id) || at.Year() < 1 || at.Year() > 9999 {
				t.Fatalf("ParseTimeCursor(%q) = %v, %q: out of range", s, at, id)
			}
			if back := tokend.TimeCursor(kind, at, id); back != s {
				t.Fatalf("ParseTimeCursor(%q) does not round-trip: %q", s, back)
			}
		}
		n, err := tokend.ParseIDCursor(tokend.CursorEvents, s)
		if err != nil {
			if tokend.CodeOf(err) != tokend.ECodeInvalid {
				t.Fatalf("ParseIDCursor(%q): %v, want VALIDATION_FAILED", s, err)
			}
			return
		}
		if n <= 0 || tokend.IDCursor(tokend.CursorEvents, n) != s {
			t.Fatalf("ParseIDCursor(%q) = %d: out of range or no round trip", s, n)
		}
	})
}

func TestCursorsRoundTrip(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		c := tokend.TimeCursor(tokend.CursorTokens, at, "tok_a_1")
		got, id, err := tokend.ParseTimeCursor(tokend.CursorTokens, c)
		if err != nil || !got.Equal(at) || id != "tok_a_1" {
			t.Errorf("%v: got %v %q %v", at, got, id, err)
		}
	}
	if _, _, err := tokend.ParseTimeCursor(tokend.CursorApps, tokend.TimeCursor(tokend.CursorTokens, time.Unix(1, 0), "tok_a")); err == nil {
		t.Error("a token cursor passed as an app cursor")
	}
}

func TestCheckText(t *testing.T) {
	cases := []struct {
		name       string
		s          string
		line, text bool // accepted as LineText, as ProseText
	}{
		{"plain", "deploy bot", true, true},
		{"accents, CJK, emoji", "Café 東京 🚀", true, true},
		{"right-to-left script", "مرحبا", true, true},
		{"an emoji with a joiner", "👩‍💻", false, true},
		{"NUL", "a\x00b", false, false},
		{"a bell", "a\ab", false, false},
		{"escape", "a\x1b[31m", false, false},
		{"DEL", "a\x7fb", false, false},
		{"a C1 control", "a\u0085b", false, false},
		{"CSI", "a\u009bb", false, false},
		{"newline", "a\nb", false, true},
		{"CR LF", "a\r\nb", false, true},
		{"a bare CR", "a\rb", false, false},
		{"tab", "a\tb", false, true},
		{"RLO", "a\u202eb", false, false},
		{"LRE", "a\u202ab", false, false},
		{"FSI", "a\u2068b", false, false},
		{"PDI", "a\u2069b", false, false},
		{"RLM", "a\u200fb", false, false},
		{"BOM", "\ufeffa", false, true},
		{"zero-width space", "a\u200bb", false, true},
		{"zero-width non-joiner", "a\u200cb", false, true},
		{"word joiner", "a\u2060b", false, true},
		{"invalid UTF-8", "a\xffb", false, false},
		{"a truncated sequence", "a\xe2\x80", false, false},
		{"an encoded surrogate", "\xed\xa0\x80", false, false},
		{"U+FFFD itself", "a\ufffdb", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := tokend.TextProblem(c.s, tokend.LineText) == ""; got != c.line {
				t.Errorf("LineText accepts %q: %v, want %v", c.s, got, c.line)
			}
			if got := tokend.TextProblem(c.s, tokend.ProseText) == ""; got != c.text {
				t.Errorf("ProseText accepts %q: %v, want %v", c.s, got, c.text)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		"tok_3mJr7AoUXx7Wqd4dGg0a1b": true, "app_system": true, "tok_a_1": true,
		"": false, "tok_": false, "_abc": false, "TOK_a": false, "tok_a\x00": false, "tok_\xff": false,
		"tok_a-b": false, "tok_a b": false, "tok_é": false, "tok_" + string(make([]byte, 70)): false,
	} {
		if got := tokend.ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}
