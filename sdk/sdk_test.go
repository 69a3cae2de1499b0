package sdk_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The suites run against a real tokend, built from this tree once for both
// and handed to them as TOKEND_BIN.
var (
	buildOnce sync.Once
	built     string
	buildErr  error
	buildLog  []byte
)

func tokendBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokend-sdk-bin-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "tokend")
		if runtime.GOOS == "windows" {
			built += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", built, "./cmd/tokend")
		cmd.Dir = repoRoot(t)
		buildLog, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/tokend: %v\n%s", buildErr, buildLog)
	}
	return built
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built != "" {
		os.RemoveAll(filepath.Dir(built))
	}
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// need answers the path of a program the suite needs. Without it the test
// is skipped, unless CI=true: there a missing tool is a broken CI image.
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true: the CI image must provide it", name)
	}
	t.Skipf("%s is not installed; install it to run this SDK's tests (they are required when CI=true)", name)
	return ""
}

// run runs a command of a suite within limit, failing the test with its
// output.
func run(t *testing.T, dir string, env []string, limit time.Duration, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", filepath.Base(name), strings.Join(args, " "), dir, err, out)
	}
	t.Logf("%s %s: ok", filepath.Base(name), strings.Join(args, " "))
}

// TestTypeScriptSDK runs `npm ci && npm test` on a copy of sdk/typescript
// in a temporary directory, so that node_modules and the build stay out of
// the tree and concurrent runs do not meet. npm ci needs the npm registry
// (or npm's cache).
func TestTypeScriptSDK(t *testing.T) {
	need(t, "node")
	npm := need(t, "npm")
	bin := tokendBin(t)
	root := repoRoot(t)
	dir := filepath.Join(t.TempDir(), "typescript")
	copyTree(t, filepath.Join(root, "sdk", "typescript"), dir, "node_modules", "dist")
	env := []string{"TOKEND_BIN=" + bin, "TOKEND_REPO=" + root, "NO_COLOR=1"}
	run(t, dir, env, 5*time.Minute, npm, "ci", "--no-audit", "--no-fund")
	run(t, dir, env, 10*time.Minute, npm, "test")

	// The package promises Bun and Deno as well as Node: the parts of the
	// suite that need no Node-only tool (the client, the cache, every
	// middleware with its framework) run again under each. npm ci brought
	// both, pinned, as devDependencies; one installed on PATH does too.
	for _, rt := range []string{"bun", "deno"} {
		t.Run(rt, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", rt)); err != nil {
				need(t, rt)
			}
			// No update check or telemetry: the tests reach no network.
			env := append(env, "DENO_NO_UPDATE_CHECK=1", "DO_NOT_TRACK=1")
			run(t, dir, env, 10*time.Minute, npm, "run", "test:"+rt)
		})
	}
}

// TestPythonSDK runs `python3 -m unittest discover` in sdk/python, when it
// exists, writing no bytecode into the tree.
func TestPythonSDK(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "sdk", "python")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no Python SDK in this tree (%v)", err)
	}
	py := need(t, "python3")
	bin := tokendBin(t)
	run(t, dir, []string{"TOKEND_BIN=" + bin, "PYTHONDONTWRITEBYTECODE=1"}, 10*time.Minute, py, "-m", "unittest", "discover", "-v")
}

// copyTree copies the regular files of src to dst, leaving out the
// directories named in skip.
func copyTree(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			for _, s := range skip {
				if d.Name() == s && p != src {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
