package tokend_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The import rules of docs/architecture.md. The domain (the root package)
// and secret are the standard library's only, so that every other package
// can depend on them; the HTTP handlers never reach storage or Redis but
// through the services and the root's interfaces, so that cmd/tokend alone
// chooses a store.

const module = "github.com/tokend/tokend"

// forbiddenInHandlers are import paths (and everything under them) that
// internal/httpapi, internal/web and internal/portal must not import.
var forbiddenInHandlers = []string{
	module + "/internal/sqlstore",
	module + "/internal/sqlite",
	module + "/internal/postgres",
	module + "/internal/redislimit",
	"github.com/jackc/pgx",
	"modernc.org/sqlite",
	"github.com/redis/go-redis",
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// standard reports whether an import path is of the standard library: its
// first element has no dot.
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// imports answers, for each non-test .go file of the module (by its
// slash-separated path), the paths it imports.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			p, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(path)] = append(out[filepath.ToSlash(path)], p)
		}
		if _, ok := out[filepath.ToSlash(path)]; !ok {
			out[filepath.ToSlash(path)] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportRules(t *testing.T) {
	checked := map[string]int{}
	for file, paths := range imports(t) {
		dir := filepath.ToSlash(filepath.Dir(file))
		switch {
		case dir == "." || dir == "secret":
			checked[dir]++
			name := map[string]string{".": "tokend (the root)", "secret": "secret"}[dir]
			for _, p := range paths {
				if !standard(p) {
					t.Errorf("%s imports %s: package %s may import only the standard library", file, p, name)
				}
			}
		case under(dir, "internal/httpapi") || under(dir, "internal/web") || under(dir, "internal/portal"):
			checked[strings.Join(strings.SplitN(dir, "/", 3)[:2], "/")]++
			for _, p := range paths {
				for _, bad := range forbiddenInHandlers {
					if under(p, bad) {
						t.Errorf("%s imports %s: the handlers reach storage and Redis only through the services and the root's interfaces", file, p)
					}
				}
			}
		}
	}
	// A rule that checks no file (a package moved or renamed) checks nothing.
	for _, dir := range []string{".", "secret", "internal/httpapi", "internal/web", "internal/portal"} {
		if checked[dir] == 0 {
			t.Errorf("no .go file of %s was checked: did the package move?", dir)
		}
	}
}
