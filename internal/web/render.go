package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// page is what every template gets: the shell's data and the page's own.
type page struct {
	Title string
	// Nav names the active navigation entry: home, tokens, apps, audit, users.
	Nav   string
	User  *tokend.User // nil when nobody is signed in
	CSRF  string       // the form token of this session (or of the sign-in form)
	Flash *flash
	// Version is tokend's, for the footer that signed-in users see.
	Version string
	Data    any
}

// Can reports whether the signed-in user holds perm, for showing or hiding
// controls. It is a convenience only: handlers check permissions again.
func (p *page) Can(perm string) bool {
	return p.User != nil && p.User.Actor("").Can(perm)
}

// flash is a one-time message shown at the top of the next page.
type flash struct {
	Kind string // "ok" or "error"
	Text string
}

// pages holds one template set per page: the shared layout and partials,
// plus the page's own file.
type pages struct {
	sets map[string]*template.Template
}

// funcMaps are the template functions; files add theirs with addFuncs.
var funcMaps = []template.FuncMap{{
	"fmtTime": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return exactTime(v)
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return exactTime(*v)
		}
		return "—"
	},
	"join": strings.Join,
}}

// addFuncs adds template functions; call it from a package-level var.
func addFuncs(m template.FuncMap) bool {
	funcMaps = append(funcMaps, m)
	return true
}

func parsePages() (*pages, error) {
	funcs := template.FuncMap{}
	for _, m := range funcMaps {
		for k, v := range m {
			funcs[k] = v
		}
	}
	base := template.New("").Funcs(funcs)
	base, err := base.ParseFS(assets, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parsing the layout: %w", err)
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		name := path.Base(n)
		if strings.HasPrefix(name, "_") {
			continue
		}
		set, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := set.ParseFS(assets, n); err != nil {
			return nil, fmt.Errorf("web: parsing %s: %w", name, err)
		}
		p.sets[name] = set
	}
	return p, nil
}

// render writes the page through the layout. The page is rendered into a
// buffer first so that a template error becomes a clean 500 page, never half
// a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	set, ok := s.pages.sets[name]
	if !ok {
		s.log.Error("no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.fillPage(w, r, p)
	var buf bytes.Buffer
	if err := set.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages can show a secret once; no copy may be kept anywhere.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fillPage sets what the shell needs from the request: the user, the form
// token and a pending flash message.
func (s *Server) fillPage(w http.ResponseWriter, r *http.Request, p *page) {
	if u, ok := currentUser(r.Context()); ok {
		p.User = &u
	}
	p.CSRF = s.csrfToken(w, r)
	p.Version = s.version
	if p.Flash == nil {
		p.Flash = s.takeFlash(w, r)
	}
}

// errorPage shows a plain error page with the status.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, text string) {
	s.render(w, r, status, "error.html", &page{Title: http.StatusText(status), Data: errorData{Status: status, Text: text}})
}

type errorData struct {
	Status int
	Text   string
}
