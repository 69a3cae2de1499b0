package sqlstore

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tokend/tokend"
)

// The list decoder answers what encoding/json answers, for every input: the
// same list (nil, empty or not), or an error where json has one.
func FuzzDecodeStrings(f *testing.F) {
	for _, s := range []string{
		`null`, `[]`, ` [ ] `, `["a"]`, `["a", "b"]`, `["a","b"]`, "[\n\"x\"\t,\r\"y\"]",
		`["é", "日本"]`, `["a\"b"]`, `["\u00e9"]`, "[\"\xff\"]", `["a",]`, `[,"a"]`, `["a"`,
		`["a"] x`, `{"a":1}`, `[1]`, `[null]`, `["a", null]`, ``, `"a"`, "[\"\x01\"]",
		`["read:orders", "write:orders"]`, `["10.0.0.0/8", "2001:db8::/32"]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		wantErr := json.Unmarshal([]byte(s), &want)
		for _, via := range []string{"string", "bytes"} {
			var l jsonList
			if via == "string" {
				if err := l.Scan(s); err != nil {
					t.Fatal(err)
				}
			} else if err := l.ScanBytes([]byte(s)); err != nil {
				t.Fatal(err)
			}
			if (l.err != nil) != (wantErr != nil) {
				t.Fatalf("%s %q: error %v, json's %v", via, s, l.err, wantErr)
			}
			if wantErr == nil && (!reflect.DeepEqual(l.v, want) || (l.v == nil) != (want == nil)) {
				t.Fatalf("%s %q: %#v, json's %#v", via, s, l.v, want)
			}
		}
	})
}

// The common lists are read without encoding/json and, from a string the
// driver made (SQLite's), without a copy: their elements are its substrings.
func TestPlainListsAreReadInPlace(t *testing.T) {
	s := `["read:orders", "write:orders"]`
	var l jsonList
	if n := testing.AllocsPerRun(100, func() { _ = l.Scan(s) }); n != 1 {
		t.Errorf("a list of two from a string: %v allocations, want 1 (the slice)", n)
	}
	if len(l.v) != 2 || l.v[1] != "write:orders" {
		t.Fatalf("read %q", l.v)
	}
	b := []byte(s)
	if n := testing.AllocsPerRun(100, func() { _ = l.ScanBytes(b) }); n != 2 {
		t.Errorf("a list of two from bytes: %v allocations, want 2 (one copy, the slice)", n)
	}
	b[2] = 'X' // the driver reuses its buffer: what was read must not change
	if l.v[0] != "read:orders" {
		t.Errorf("the list shares the driver's buffer: %q", l.v[0])
	}
}

// A token's short labels come back as the program's own strings, with no
// allocation, and an unknown one as a copy that outlives the driver's buffer.
func TestLabelsAreTheProgramsOwnStrings(t *testing.T) {
	var l label
	for _, w := range []string{string(tokend.TypePlugin), string(tokend.AccessReadOnly), string(tokend.StatusRevoked), string(tokend.RotatedDisable)} {
		b := []byte(w)
		if n := testing.AllocsPerRun(100, func() { _ = l.ScanBytes(b) }); n != 0 || string(l) != w {
			t.Errorf("%q: %q with %v allocations", w, l, n)
		}
	}
	b := []byte("something-else")
	_ = l.ScanBytes(b)
	b[0] = 'X'
	if l != "something-else" {
		t.Errorf("an unknown label shares the driver's buffer: %q", l)
	}
	if err := l.Scan(nil); err != nil || l != "" {
		t.Errorf("NULL: %q, %v", l, err)
	}
}
