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
	"reflect"
	"strconv"
	"strings"
	"sync"
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
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		// "127.0.0.1:8080" does not even parse, "localhost:8080" reads
		// as the scheme localhost: either way, say what a URL looks like.
		return nil, fmt.Errorf("client: base URL %q must start with http:// or https:// and name a host, such as http://127.0.0.1:8080", baseURL)
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
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNoContent && !maybeJSON(ct) {
		return fmt.Errorf("client: %w: %s %s answered %d with Content-Type %s", ErrNotTokend, r.method, u.Path, resp.StatusCode, ct)
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
		return fmt.Errorf("client: %w: decoding the answer to %s %s: %w", ErrNotTokend, r.method, u.Path, err)
	}
	if !knownShape(b, out) {
		return fmt.Errorf("client: %w: the answer to %s %s is JSON with none of the fields tokend answers", ErrNotTokend, r.method, u.Path)
	}
	return nil
}

// ErrNotTokend is (as errors.Is tells) the error of a 2xx answer that
// tokend cannot have given: not JSON, or JSON of another shape. The base
// URL most likely names another service, or a page in front of tokend.
var ErrNotTokend = errors.New("the server did not answer as tokend does (is the base URL tokend's?)")

// maybeJSON reports whether an answer of this Content-Type may be JSON:
// tokend's is application/json; no type, or the text/plain that Go's
// servers sniff for a body written without one, leave it to the shape.
func maybeJSON(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || mt == "text/plain" ||
		strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// fieldNames caches the JSON names of a struct type's fields.
var fieldNames sync.Map // reflect.Type → map[string]bool

// addFieldNames adds the JSON names of struct type t's fields to m, those
// of embedded structs as encoding/json flattens them.
func addFieldNames(m map[string]bool, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			addFieldNames(m, f.Type)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = true
	}
}

// knownShape reports whether an answer decoded into out could be tokend's:
// when out is a struct, the answer is an object (never null, never empty:
// tokend answers no struct that way) with at least one of the struct's
// fields, and a page has both of a page's fields, which tokend always
// writes (another service's JSON decodes into a struct without error, as
// its zero value).
func knownShape(b []byte, out any) bool {
	t := reflect.TypeOf(out)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return true
	}
	names, ok := fieldNames.Load(t)
	if !ok {
		m := map[string]bool{}
		addFieldNames(m, t)
		names, _ = fieldNames.LoadOrStore(t, m)
	}
	known := names.(map[string]bool)
	if len(known) == 0 {
		return true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil || len(obj) == 0 {
		return false // null or {}: not an answer of tokend's
	}
	if known["items"] && known["next_cursor"] {
		_, items := obj["items"]
		_, next := obj["next_cursor"]
		return items && next
	}
	for k := range obj {
		if known[k] {
			return true
		}
	}
	return false
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
