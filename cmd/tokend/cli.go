package main

// This file holds what the CLI verbs (token, app, audit) share: how they
// find the server and the admin token, how they print, ask, and report
// errors. The verbs themselves are in cli_token.go, cli_app.go and
// cli_audit.go; they all go through the public client package, so the CLI
// can do nothing that the REST API does not allow.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

const defaultServer = "http://127.0.0.1:8080"

// apiFlags are the flags every API verb has: where the server is, the
// admin token to present, and whether to print JSON.
type apiFlags struct {
	e      env
	server string
	token  string
	json   bool
}

func addAPIFlags(cmd *cobra.Command, e env) *apiFlags {
	f := &apiFlags{e: e}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", defaultServer, "URL of the tokend server (env TOKEND_URL)")
	pf.StringVar(&f.token, "token", "", "admin token secret (env TOKEND_TOKEN, preferred: flag values show in process lists)")
	pf.BoolVar(&f.json, "json", false, "print the server's JSON answer, for scripts")
	return f
}

// serverURL is --server, else TOKEND_URL, else the default.
func (f *apiFlags) serverURL(cmd *cobra.Command) string {
	if !cmd.Flags().Changed("server") {
		if v := strings.TrimSpace(f.e.getenv("TOKEND_URL")); v != "" {
			return v
		}
	}
	return f.server
}

// client makes an API client from the flags and environment.
func (f *apiFlags) client(cmd *cobra.Command) (*client.Client, error) {
	tok := f.token
	if !cmd.Flags().Changed("token") {
		tok = f.e.getenv("TOKEND_TOKEN")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, errors.New("no admin token: set TOKEND_TOKEN or pass --token (tokend bootstrap prints the first one)")
	}
	c, err := client.New(f.serverURL(cmd), client.WithToken(tok), client.WithUserAgent("tokend-cli"))
	if err != nil {
		return nil, fmt.Errorf("%s\n%s", strings.TrimPrefix(err.Error(), "client: "), serverHint)
	}
	return c, nil
}

// explainErrors makes every command under cmd report API failures in a
// form meant for people: the problem's detail, then one line per field.
func explainErrors(cmd *cobra.Command, f *apiFlags) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err == nil {
				return nil
			}
			return explain(err, f.serverURL(cmd))
		}
	}
	for _, sub := range cmd.Commands() {
		explainErrors(sub, f)
	}
}

// cliError is an API failure as the CLI shows it.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// serverHint says what --server should look like.
const serverHint = "--server (or TOKEND_URL) should be the base URL of a tokend server, such as " + defaultServer

func explain(err error, server string) error {
	if base, extra, ok := pastTheBase(server); ok && noSuchEndpoint(err) {
		return &cliError{msg: fmt.Sprintf("the server at %s has no such endpoint: --server (or TOKEND_URL) should be tokend's base URL, without %s: try --server %s",
			server, extra, base), err: err}
	}
	if errors.Is(err, client.ErrNotTokend) {
		return &cliError{msg: fmt.Sprintf("the server at %s does not answer as tokend does: %s\n%s", server,
			strings.TrimPrefix(strings.TrimPrefix(err.Error(), "client: "), client.ErrNotTokend.Error()+": "), serverHint), err: err}
	}
	var ce *client.Error
	if errors.As(err, &ce) && ce.Type == "" && ce.Detail == "" {
		// tokend answers every error under /v1 with a problem document.
		return &cliError{msg: fmt.Sprintf("the server at %s answered %d %s, not a tokend problem document: is it tokend?\n%s",
			server, ce.Status, ce.Title, serverHint), err: err}
	}
	if errors.As(err, &ce) {
		var b strings.Builder
		switch ce.Code {
		case string(tokend.ECodeUnauthenticated):
			b.WriteString("the server refused the admin token (check --token or TOKEND_TOKEN)")
			if ce.Detail != "" {
				b.WriteString(": " + ce.Detail)
			}
		case string(tokend.ECodePreconditionFailed):
			b.WriteString(nonEmpty(ce.Detail, ce.Title))
			b.WriteString(" (the version given with --if-version is not the current one)")
		default:
			b.WriteString(nonEmpty(ce.Detail, ce.Title))
		}
		for _, fe := range ce.Fields {
			if fe.Message == ce.Detail && len(ce.Fields) == 1 {
				continue // the detail already says it
			}
			b.WriteString("\n  ")
			if fe.Field != "" {
				b.WriteString(fe.Field + ": ")
			}
			b.WriteString(fe.Message)
		}
		return &cliError{msg: b.String(), err: err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return &cliError{msg: fmt.Sprintf("cannot reach the tokend server at %s (set --server or TOKEND_URL): %v", server, oe.Err), err: err}
	}
	return err
}

// pastTheBase answers the base URL in server when server goes on past it
// to where tokend serves something (the API's /v1, the OpenAPI document,
// a health check, a page of the dashboard), and what follows the base:
// "http://host/v1" is what a reader of the API reference types. The CLI
// does not strip it and go on: tokend may be served under a prefix that
// ends so (https://example.com/v1 is a valid base), so the hint is given
// only once the server has answered that no such endpoint exists.
func pastTheBase(server string) (base, extra string, ok bool) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", "", false
	}
	segs := strings.Split(strings.TrimRight(u.Path, "/"), "/")
	for i := 1; i < len(segs); i++ {
		if segs[i] == "v1" || i == len(segs)-1 && tokendPaths[segs[i]] {
			extra = "/" + strings.Join(segs[i:], "/")
			u.Path, u.RawPath = strings.Join(segs[:i], "/"), ""
			return u.String(), extra, true
		}
	}
	return "", "", false
}

// tokendPaths are the last path segments of tokend's own pages outside
// /v1, which a --server copied from a browser may end in.
var tokendPaths = map[string]bool{
	"openapi": true, "openapi.json": true, "openapi.yaml": true, "healthz": true, "readyz": true,
	"metrics": true, "dashboard": true, "login": true, "setup": true, "docs": true,
}

// noSuchEndpoint reports whether err says the server has no such route,
// rather than no such resource: tokend's 404 for an unrouted /v1 path, a
// 405, or an answer that is not tokend's (a dashboard page, a redirect to
// its login).
func noSuchEndpoint(err error) bool {
	if errors.Is(err, client.ErrNotTokend) {
		return true
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		return false
	}
	return ce.Type == "" && ce.Detail == "" || ce.Status == http.StatusMethodNotAllowed ||
		ce.Status == http.StatusNotFound && ce.Detail == "no such endpoint"
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonCompact writes v as one line of JSON.
func jsonCompact(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// field is one line of a detail listing.
type field struct{ key, value string }

// printFields writes a "key: value" listing with aligned values.
func printFields(w io.Writer, fields []field) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.key, f.value)
	}
	return tw.Flush()
}

// printTable writes a header and rows in aligned columns.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// moreHint tells a person how to get the next page.
func moreHint(w io.Writer, cursor string) {
	if cursor != "" {
		fmt.Fprintf(w, "More results: run again with --cursor %s, or with --all.\n", cursor)
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func fmtTimePtr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return fmtTime(*t)
}

// fmtDuration writes 1h rather than 1h0m0s.
func fmtDuration(d tokend.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func fmtList(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ", ")
}

func nonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return "-"
}

// parseRateLimit reads "1000/1h" (or "1000/h", "60/1m", "5000/1d").
func parseRateLimit(s string) (*tokend.RateLimit, error) {
	n, w, ok := strings.Cut(strings.TrimSpace(s), "/")
	limit, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || limit < 1 {
		return nil, fmt.Errorf("invalid rate limit %q: use LIMIT/WINDOW such as 1000/1h", s)
	}
	w = strings.TrimSpace(w)
	if w != "" && (w[0] < '0' || w[0] > '9') {
		w = "1" + w
	}
	d, err := tokend.ParseDuration(w)
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("invalid rate limit %q: use LIMIT/WINDOW such as 1000/1h", s)
	}
	return &tokend.RateLimit{Limit: limit, Window: d}, nil
}

// parseTime reads an RFC 3339 time or a date (midnight UTC).
func parseTime(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid --%s %q: use an RFC 3339 time such as 2026-12-31T23:59:00Z or a date such as 2026-12-31", flag, s)
}

// parseSince reads a time like parseTime, or a duration before now ("24h",
// "7d").
func parseSince(flag, s string, now time.Time) (time.Time, error) {
	if d, err := tokend.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-time.Duration(d)), nil
	}
	t, err := parseTime(flag, s)
	if err != nil {
		return t, fmt.Errorf("%w, or a duration before now such as 24h or 7d", err)
	}
	return t, nil
}

// parseMetadata reads a JSON object.
func parseMetadata(s string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, fmt.Errorf(`invalid --metadata: it must be a JSON object such as {"team":"infra"}`)
	}
	return m, nil
}

// interactive reports whether r is a terminal that a person types at. A
// test stands in for one with a reader that has a Terminal() bool method.
func interactive(r io.Reader) bool {
	if t, ok := r.(interface{ Terminal() bool }); ok {
		return t.Terminal()
	}
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// errAborted is returned when a person answers no to a confirmation.
var errAborted = errors.New("aborted: nothing was changed")

// confirm asks a person to confirm what. --yes answers for them; without a
// person at a terminal, --yes is required.
func confirm(e env, yes bool, what string) error {
	if yes {
		return nil
	}
	if !interactive(e.stdin) {
		return fmt.Errorf("refusing to %s without confirmation: stdin is not a terminal; pass --yes", what)
	}
	fmt.Fprintf(e.stderr, "%s? This cannot be undone. [y/N] ", upperFirst(what))
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(e.stderr)
		return fmt.Errorf("%w (no answer was read; pass --yes to confirm without a prompt)", errAborted)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errAborted
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
