// Package client is the Go SDK of tokend: a typed HTTP client for its REST
// API, used by the tokend CLI and by any Go program that manages tokens
// (apps, tokens, audit) or asks tokend whether a presented token is good
// (Verify).
//
// The wire format is the domain package's: a Client sends and receives
// tokend.App, tokend.Token, tokend.Event and friends exactly as the server
// writes them. Failures the server reports come back as *Error, carrying the
// problem's stable code and per-field messages.
//
// A Client holds an admin token secret and must not leak it: the secret is
// sent only to the configured base URL (redirects to another origin are
// refused), and it never appears in an error message or log. Token secrets
// returned by CreateToken and RotateToken are handed to the caller once and
// kept nowhere.
//
// A Client is safe for concurrent use by several goroutines.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
)

// Answer size limits: a page of the largest size with large metadata fits
// well within MaxAnswerBytes; a problem document is small.
const (
	MaxAnswerBytes  = 16 << 20
	maxProblemBytes = 64 << 10
)

// DefaultTimeout bounds a whole call when the Client makes its own
// http.Client (not with WithHTTPClient).
const DefaultTimeout = 30 * time.Second

// Client calls one tokend server.
type Client struct {
	base      *url.URL // scheme://host[/path], no trailing slash
	token     string
	hc        *http.Client
	userAgent string
	// oldServer is set once a server refused the user_agent member of
	// POST /v1/verify (a tokend older than the field): Verify leaves it out
	// from then on.
	oldServer atomic.Bool
}

// Option configures a Client made by New.
type Option func(*Client) error

// WithToken sets the admin token secret sent as a bearer token on every
// management call. Verify, Healthy and Ready do not need (or send) it.
func WithToken(secret string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(secret, " \t\r\n") {
			return errors.New("client: the token must not contain white space")
		}
		c.token = secret
		return nil
	}
}

// WithHTTPClient makes the Client send its requests through hc (for its
// transport, timeouts or instrumentation). The Client keeps a copy of hc
// whose redirect policy also refuses redirects to another origin.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("client: nil http.Client")
		}
		c.hc = hc
		return nil
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// New makes a Client for the tokend server at baseURL, such as
// "http://127.0.0.1:8080" or "https://tokens.example.com/tokend".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: invalid base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http:// or https:// with a host", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("client: base URL must not hold user information, a query or a fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	c := &Client{base: u, userAgent: "tokend-go-client"}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	var hc http.Client
	if c.hc != nil {
		hc = *c.hc
	} else {
		hc.Timeout = DefaultTimeout
	}
	hc.CheckRedirect = sameOrigin(c.base, hc.CheckRedirect)
	c.hc = &hc
	return c, nil
}

// BaseURL answers the server's base URL as configured.
func (c *Client) BaseURL() string { return c.base.String() }

// sameOrigin refuses redirects that leave the base URL's scheme and host, so
// that no header of ours (the Authorization one above all) can reach another
// server, then applies next (or Go's default limit of 10 redirects).
func sameOrigin(base *url.URL, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != base.Scheme || !strings.EqualFold(req.URL.Host, base.Host) {
			return fmt.Errorf("refusing to follow a redirect to %s://%s, which is not the configured server", req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// RequestOption adjusts one call.
type RequestOption func(*request)

// IfVersion makes a change apply only if the resource is still at version
// (sent as If-Match); otherwise the call fails with an *Error of code
// PRECONDITION_FAILED (errors.Is(err, tokend.ErrStale)). 0 means no check.
func IfVersion(version int64) RequestOption {
	return func(r *request) { r.version = version }
}

// request is one call to the API.
type request struct {
	method  string
	path    string // escaped, from the base URL's path on
	query   url.Values
	body    any // JSON-encoded when not nil
	noAuth  bool
	version int64
}

// ListOptions pages through a list: Limit items (the server's default when
// 0) after Cursor (the NextCursor of the previous page; "" for the first).
type ListOptions struct {
	Limit  int
	Cursor string
}

func (o ListOptions) values() url.Values {
	q := url.Values{}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	setIf(q, "cursor", o.Cursor)
	return q
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// seg escapes one id as a path segment, refusing ids that would change the
// path's meaning.
func seg(kind, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("client: invalid %s id %q", kind, id)
	}
	return url.PathEscape(id), nil
}

// do sends r and decodes a 2xx answer's JSON body into out (when not nil).
// Any other answer becomes an *Error.
func (c *Client) do(ctx context.Context, r request, out any) error {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + r.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	u.Path = p
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}

	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("client: encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if !r.noAuth && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r.version != 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(r.version, 10)+`"`)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL (never a secret: ids and
		// filters only) and the cause.
		return err
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProblemBytes))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return fmt.Errorf("client: reading the answer to %s %s: %w", r.method, u.Path, err)
	}
	if len(b) > MaxAnswerBytes {
		return fmt.Errorf("client: the answer to %s %s is larger than %d bytes", r.method, u.Path, MaxAnswerBytes)
	}
	if err := json.Unmarshal(b, out); err != nil {
		// The error of encoding/json names a type or a position, never the
		// content, so a secret in the answer cannot leak through it.
		return fmt.Errorf("client: decoding the answer to %s %s: %w", r.method, u.Path, err)
	}
	return nil
}

// readError turns a non-2xx answer into an *Error, from its problem document
// when it has one.
func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, Code: string(tokend.CodeForStatus(resp.StatusCode))}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBytes))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p problem
		if json.Unmarshal(b, &p) == nil && (p.Code != "" || p.Title != "" || p.Detail != "") {
			if p.Code != "" {
				e.Code = p.Code
			}
			e.Type, e.Title, e.Detail, e.Fields = p.Type, p.Title, p.Detail, p.Errors
		}
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}
