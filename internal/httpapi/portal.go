package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/secret"
)

// The customer portal's one API operation: the product's backend mints a
// single-use link to tokend's self-service page for one of its customers.

type portalSessionInput struct {
	Body tokend.PortalInput
}

type portalSessionOutput struct {
	Body tokend.PortalSessionAnswer
}

// PortalPath is where a portal link points: PortalPath + its secret.
const PortalPath = "/portal/open/"

func handlePortalSession(svc *manage.Service) func(context.Context, *portalSessionInput) (*portalSessionOutput, error) {
	return func(ctx context.Context, in *portalSessionInput) (*portalSessionOutput, error) {
		raw, exp, err := svc.CreatePortalLink(ctx, actorFrom(ctx), in.Body)
		if err != nil {
			return nil, err
		}
		return &portalSessionOutput{Body: tokend.PortalSessionAnswer{URL: requestOrigin(ctx) + PortalPath + raw, ExpiresAt: exp}}, nil
	}
}

// withOrigin records, for the one operation that hands out links, the
// origin the request was sent to (scheme and host), which the links point
// at: https, unless the request came in plain HTTP to localhost or a
// loopback address. Every other request (verification's hot path among
// them) passes untouched.
func withOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/portal/sessions" {
			r = r.WithContext(context.WithValue(r.Context(), keyOrigin, originOf(r)))
		}
		next.ServeHTTP(w, r)
	})
}

func originOf(r *http.Request) string {
	host := r.Host
	u, err := url.Parse("http://" + host)
	if err != nil || u.Host != host || host == "" {
		host = "localhost"
	}
	scheme := "https"
	if r.TLS == nil {
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || ip != nil && ip.IsLoopback() {
			scheme = "http"
		}
	}
	return scheme + "://" + host
}

func requestOrigin(ctx context.Context) string {
	o, _ := ctx.Value(keyOrigin).(string)
	return o
}

// logPath is a request's path as the log may show it: a secret pasted
// where an id belongs is masked, and a portal link's secret left out.
func logPath(p string) string {
	// Not only the canonical /portal/open/<secret>: //portal/open/…,
	// /portal/./open/…, /PORTAL/open/… are logged before the mux answers
	// them (a redirect to the canonical path, which leaves the link
	// unused, or a 404), and must not show the secret either.
	lp := strings.ToLower(p)
	if i := strings.Index(lp, "/open/"); i >= 0 && strings.Contains(lp[:i], "portal") {
		return p[:i] + "/open/…"
	}
	return secret.Redact(p)
}
