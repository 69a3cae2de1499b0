package tokend_test

import (
	"net/netip"
	"testing"

	"github.com/tokend/tokend"
)

func TestUnmapPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:10.0.0.0/104":  "10.0.0.0/8",
		"::ffff:192.0.2.1/128": "192.0.2.1/32",
		"::ffff:0.0.0.0/96":    "0.0.0.0/0",
		"::/64":                "::/64", // shorter than the mapped prefix: left as it is
		"10.0.0.0/8":           "10.0.0.0/8",
		"2001:db8::/32":        "2001:db8::/32",
	} {
		if got := tokend.UnmapPrefix(netip.MustParsePrefix(in)); got != netip.MustParsePrefix(want) {
			t.Errorf("UnmapPrefix(%s) = %s, want %s", in, got, want)
		}
	}
}
