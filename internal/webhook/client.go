package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Timeout bounds one attempt: connecting, sending, and reading the answer.
const Timeout = 10 * time.Second

// ClientOptions loosen the client's rules, for tests and for endpoints on
// a private network the operator trusts.
type ClientOptions struct {
	// AllowHTTP lets plain http:// endpoints be used.
	AllowHTTP bool
	// AllowPrivate lets the client connect to loopback, private,
	// link-local and other non-public addresses.
	AllowPrivate bool
}

// ErrRedirect is the error of an endpoint that answered a redirect, which
// is never followed.
var ErrRedirect = errors.New("redirect not followed")

// NewClient answers an HTTP client for deliveries. Unless o allows them, it
// connects only to public addresses: the check runs on every connection,
// after DNS resolution, on the address actually dialled, so that neither a
// name resolving to 127.0.0.1 nor a rebinding DNS answer reaches the
// machine's own network. It uses no proxy from the environment, follows no
// redirect, and gives up after Timeout.
func NewClient(o ClientOptions) *http.Client {
	d := &net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		d.Control = control
	}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    Timeout,
		ResponseHeaderTimeout:  Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: t,
		Timeout:   Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// control refuses a connection to a non-public address; it sees the
// address about to be dialled, after DNS.
func control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusedError{addr: address, reason: "unparsable"}
	}
	if reason := Refused(ap.Addr()); reason != "" {
		return &refusedError{addr: ap.Addr().String(), reason: reason}
	}
	return nil
}

// refusedError is control's refusal. Its Error names the address, for
// logs; attemptError, what the endpoint's owner sees, keeps only the
// reason: which address a name resolves to inside the network is not
// theirs to learn.
type refusedError struct{ addr, reason string }

func (e *refusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s address", e.addr, e.reason)
}

// CheckURL reports what is wrong with an endpoint URL, or nil: it must be
// absolute https (or http when allowHTTP), with a host, without user
// information or a fragment. Whether the host's addresses are public is
// checked when connecting (NewClient), not here: DNS answers change.
func CheckURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return errors.New("must be https:// (plain http is allowed only with --webhook-allow-http)")
	default:
		return errors.New("must be an https:// URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("has no host")
	}
	if u.User != nil {
		return errors.New("must not hold a user name or password")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return errors.New("must not have a fragment")
	}
	return checkHost(u.Hostname())
}

// checkHost refuses the host spellings whose address a resolver may read
// otherwise than they look: a name that is not ASCII (fullwidth digits and
// letters fold to 127.0.0.1 or localhost) and a numeric name that is not a
// plain dotted IPv4 address (2130706433, 0x7f000001, 0177.0.0.1 and 127.1
// are all 127.0.0.1 to some resolvers). No top-level domain is numeric, so
// no real name is refused.
func checkHost(host string) error {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return errors.New("must have an ASCII host: write an internationalised name in its xn-- form")
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	name := strings.TrimSuffix(host, ".")
	last := name[strings.LastIndexByte(name, '.')+1:]
	numeric := last != "" && strings.Trim(last, "0123456789") == ""
	if numeric || strings.HasPrefix(strings.ToLower(last), "0x") {
		if a, err := netip.ParseAddr(name); err != nil || !a.Is4() {
			return errors.New("must write a numeric host as a dotted IPv4 address (a.b.c.d) or a bracketed IPv6 one")
		}
	}
	return nil
}

// Non-public ranges not covered by netip's own predicates.
var refusedPrefixes = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // and 255.255.255.255, broadcast
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	// Local-use NAT64 and Teredo carry an IPv4 address that a translator
	// of the operator's, or a relay, reaches: refused whole.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
}

// Prefixes of IPv6 addresses that carry an IPv4 address, which is checked
// in turn: IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d),
// NAT64 (64:ff9b::/96) and 6to4 (2002:a.b.c.d::/48).
var (
	compatible = netip.MustParsePrefix("::/96")
	translated = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// Refused answers why the client does not connect to a, or "" for a public
// address.
func Refused(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.Unmap() // IPv4-mapped (::ffff:a.b.c.d) is the IPv4 address
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	for _, r := range refusedPrefixes {
		if r.p.Contains(a) {
			return r.reason
		}
	}
	if a.Is6() {
		b := a.As16()
		var v4 [4]byte
		switch {
		case compatible.Contains(a), translated.Contains(a), nat64.Contains(a):
			copy(v4[:], b[12:])
		case sixToFour.Contains(a):
			copy(v4[:], b[2:6])
		default:
			return ""
		}
		if r := Refused(netip.AddrFrom4(v4)); r != "" {
			return r + " (embedded in IPv6)"
		}
	}
	return ""
}

// attemptError makes a connection error short and free of the URL.
func attemptError(err error) string {
	var re *refusedError
	if errors.As(err, &re) {
		return "refused to connect: " + re.reason + " address"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out after 10s"
	}
	// Not the DNS error's own text: it names the resolver tokend asked,
	// an address of the network it runs in.
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return "no such host: " + de.Name
		}
		return "DNS lookup of " + de.Name + " failed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out after 10s"
	}
	return err.Error()
}
