package web

// What the secret-once dialog shows beside a new secret: the token's and
// its application's ids, and ready-to-paste next steps with the real values
// (this server's address, the secret, the variable name to keep it in).
// They are rendered into that one page view only, which is never cached
// (Cache-Control: no-store); nothing here is logged or stored.

import (
	"net"
	"net/http"
	"strings"

	"github.com/tokend/tokend"
)

// revealData is the secret-once dialog's content.
type revealData struct {
	Secret  string
	TokenID string
	AppID   string
	AppName string
	// Base is this server's address as the browser reached it, for the
	// snippets that call it: https unless the request came over plain HTTP
	// on a loopback address or the dashboard runs insecure (cookies are
	// Secure otherwise, so the browser must have come over HTTPS).
	Base string
	// HostPort is Base without its scheme, for the proxy snippets.
	HostPort string
	// EnvName is the variable the .env line keeps the secret in.
	EnvName string
	// Write is true when the token may write, so the forward-auth example
	// of a write (POST) applies.
	Write bool
}

func newRevealData(r *http.Request, insecure bool, t tokend.Token, app tokend.App, secret string) *revealData {
	d := &revealData{
		Secret: secret, TokenID: t.ID, AppID: t.AppID, AppName: app.Name,
		EnvName: envName(app.TokenPrefix), Write: t.Access != tokend.AccessReadOnly,
	}
	if d.AppName == "" {
		d.AppName = t.AppID
	}
	d.HostPort = r.Host
	scheme := "https"
	if r.TLS == nil && (insecure || loopbackHost(r.Host)) {
		scheme = "http"
	}
	d.Base = scheme + "://" + r.Host
	return d
}

// envName answers the environment variable a token of prefix is kept in:
// SHOP_API_TOKEN for prefix shop.
func envName(prefix string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(prefix) {
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	n := strings.Trim(b.String(), "_")
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		n = "TOKEND_" + n
	}
	return strings.TrimSuffix(n, "_") + "_API_TOKEN"
}

// loopbackHost reports whether host (host[:port]) names this machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
