//go:build !race

// The race detector makes sync.Pool drop what it holds, so allocation counts
// are only meaningful without it.

package httpapi

import "testing"

// BenchmarkCheckJSON is the cost strict JSON adds to every request body of a
// huma operation: it must not allocate for a valid body.
func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"token":"tkd_3mJr7AoUXx7Wqd4dGg0a1bCDEFghijklmnopqrstu_1a2B3c","permissions":["orders:read"],"ip":"203.0.113.7"}`)
	b.ReportAllocs()
	for b.Loop() {
		if p := checkJSON(body); p != nil {
			b.Fatal(p)
		}
	}
}

func TestCheckJSONDoesNotAllocate(t *testing.T) {
	body := []byte(`{"token":"tkd_x","permissions":["orders:read","orders:write"],"ip":"203.0.113.7","origin":"https://a.example"}`)
	checkJSON(body) // warm the pools
	if n := testing.AllocsPerRun(100, func() { checkJSON(body) }); n != 0 {
		t.Errorf("checkJSON allocates %v times for a valid body", n)
	}
}

// TestDecodeVerifyAllocatesOnlyItsStrings: decoding a valid verify body
// allocates the strings it hands on (token, ip, origin, one permission and
// their list) and nothing else.
func TestDecodeVerifyAllocatesOnlyItsStrings(t *testing.T) {
	body := []byte(`{"token":"tkd_x","permissions":["orders:read"],"ip":"203.0.113.7","origin":"https://a.example"}`)
	vr := new(verifyReader)
	decode := func() {
		vr.buf.Reset()
		vr.buf.Write(body)
		if _, err := vr.decodeVerify(); err != nil {
			t.Fatal(err)
		}
	}
	decode()
	if n := testing.AllocsPerRun(100, decode); n > 5 {
		t.Errorf("decodeVerify allocates %v times for a valid body, want at most 5", n)
	}
}
