package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Screenshots stay in the test's temporary directory, removed with it,
// unless $TOKEND_SCREENSHOTS asks to keep them: `go test ./...` once left a
// tokend-screenshots-<time> directory in /tmp at every run.
func TestScreenshotsAreKeptOnlyWhenAsked(t *testing.T) {
	shoot := func() string {
		var dir string
		t.Run("shots", func(t *testing.T) {
			dir = screenshotDir(t)
			if err := os.WriteFile(filepath.Join(dir, "x.png"), []byte("png"), 0o644); err != nil {
				t.Fatal(err)
			}
		})
		return dir
	}
	t.Setenv("TOKEND_SCREENSHOTS", "")
	if dir := shoot(); dir == "" {
		t.Fatal("no directory")
	} else if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the screenshots outlived the test in %s (%v)", dir, err)
	}
	keep := filepath.Join(t.TempDir(), "keep")
	t.Setenv("TOKEND_SCREENSHOTS", keep)
	if dir := shoot(); dir != keep {
		t.Errorf("screenshots went to %s, not $TOKEND_SCREENSHOTS %s", dir, keep)
	}
	if _, err := os.Stat(filepath.Join(keep, "x.png")); err != nil {
		t.Errorf("the asked-for screenshot is gone: %v", err)
	}
}
