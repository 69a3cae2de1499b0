package web

// What the page handlers share: turning service errors into pages or
// messages next to form fields, reading list fields, safe return paths,
// relative times, and loading everything a select needs.

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokend/tokend"
)

var _ = addFuncs(template.FuncMap{
	// withCSRF hands a partial its data and the page's form token.
	"withCSRF": func(v any, csrf string) partialData { return partialData{V: v, CSRF: csrf} },
})

// partialData is what a form partial gets: its own data and the form token.
type partialData struct {
	V    any
	CSRF string
}

// fieldErrors maps a form field to its messages.
type fieldErrors map[string][]string

// formError is a failed form submission as a page shows it: messages by
// field, messages that belong to no field, and the HTTP status to answer.
type formError struct {
	Fields  fieldErrors
	General []string
	Status  int
}

// Has reports whether the form has any problem at all.
func (e *formError) Has() bool { return e != nil && (len(e.Fields) > 0 || len(e.General) > 0) }

// add records a message for a field. A field shows one message, the
// first: the rest are usually the same problem in other words.
func (e *formError) add(field, msg string) {
	if e.Fields == nil {
		e.Fields = fieldErrors{}
	}
	if len(e.Fields[field]) > 0 {
		return
	}
	e.Fields[field] = append(e.Fields[field], sentence(msg))
}

// fieldAliases send problems reported on one request field to the form
// control that sets it.
var fieldAliases = map[string]string{
	"expires_at": "expires_in",
	"grace":      "grace_period",
}

// formErrorOf turns a service error into messages for a form whose
// controls are named known. Problems on other fields, and errors without
// fields, become general messages; internal causes are logged, never shown.
func (s *Server) formErrorOf(r *http.Request, err error, known ...string) *formError {
	fe := &formError{Status: tokend.CodeOf(err).Status()}
	var e *tokend.Error
	if !errors.As(err, &e) || fe.Status >= 500 {
		s.logFailure(r, err)
		fe.General = append(fe.General, publicMessage(err))
		return fe
	}
	for _, f := range e.Fields {
		base := f.Field
		if i := strings.IndexAny(base, "[."); i >= 0 {
			base = base[:i]
		}
		if a, ok := fieldAliases[base]; ok {
			base = a
		}
		if contains(known, base) {
			fe.add(base, f.Message)
		} else {
			fe.General = append(fe.General, sentence(f.Field+": "+f.Message))
		}
	}
	if len(e.Fields) == 0 {
		fe.General = append(fe.General, publicMessage(err))
	}
	return fe
}

// staleMessage explains a failed version check in a form.
const staleMessage = "Someone changed this while you were editing it. Your changes were not saved: " +
	"reload the page to see the current values, then make your changes again."

// publicMessage is what a user may read about err.
func publicMessage(err error) string {
	var e *tokend.Error
	switch {
	case errors.Is(err, tokend.ErrStale):
		return staleMessage
	case errors.As(err, &e) && e.Code != tokend.ECodeInternal:
		return sentence(e.Message)
	}
	return "Something went wrong on the server. Try again; if it keeps happening, the server log has the details."
}

// fail answers a page for an error of the service: its status and public
// message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := tokend.CodeOf(err).Status()
	if status >= 500 {
		s.logFailure(r, err)
	}
	s.errorPage(w, r, status, publicMessage(err))
}

func (s *Server) logFailure(r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err)
}

// sentence starts msg with a capital letter and ends it with a full stop.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") && !strings.HasSuffix(msg, "!") {
		msg += "."
	}
	return msg
}

// splitList reads a list typed one entry per line or separated by commas
// or spaces.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	if len(f) == 0 {
		return nil
	}
	return f
}

// safeBack answers v when it is a path on this site, else def: a return
// address from a form must never send the browser elsewhere.
func safeBack(v, def string) string {
	if v == "" || len(v) > 2000 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") ||
		strings.ContainsAny(v, "\\\r\n\t") {
		return def
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return def
	}
	return v
}

// maxFormBytes bounds what a dashboard form may post.
const maxFormBytes = 64 << 10

// readForm reads a posted form within maxFormBytes, answering a 400 page
// when it cannot.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	return true
}

// afterEdit finishes a version-checked edit. Saved: the flash and the
// redirect to where, and done is true. A missing thing: its 404 page, done.
// Anything else: the problems to show in the form again, and whether the
// version check failed.
func (s *Server) afterEdit(w http.ResponseWriter, r *http.Request, err error, name, where string, fields []string) (done bool, fe *formError, stale bool) {
	switch {
	case err == nil:
		s.setFlash(w, "ok", "Changes to “"+name+"” saved.")
		http.Redirect(w, r, where, http.StatusSeeOther)
		return true, nil, false
	case tokend.CodeOf(err) == tokend.ECodeNotFound:
		s.fail(w, r, err)
		return true, nil, false
	}
	return false, s.formErrorOf(r, err, fields...), errors.Is(err, tokend.ErrStale)
}

// sameName reports whether a name typed to confirm is the name shown:
// spaces around either do not count.
func sameName(typed, name string) bool {
	return strings.TrimSpace(typed) == strings.TrimSpace(name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// maxListedApps bounds how many apps a select offers.
const maxListedApps = 1000

// allApps answers the apps the actor may see, oldest first, for selects
// and for naming apps in tables.
func (s *Server) allApps(ctx context.Context, a tokend.Actor) ([]tokend.App, error) {
	if !a.Can(tokend.PermAppsRead) {
		return nil, nil // pages show ids instead of names
	}
	var out []tokend.App
	cursor := ""
	for len(out) < maxListedApps {
		page, err := s.svc.Apps(ctx, a, tokend.AppFilter{Limit: tokend.MaxPageSize, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	return out, nil
}

// appNames maps app ids to names.
func appNames(apps []tokend.App) map[string]string {
	m := make(map[string]string, len(apps))
	for _, a := range apps {
		m[a.ID] = a.Name
	}
	return m
}
