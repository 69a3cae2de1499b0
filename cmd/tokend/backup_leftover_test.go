//go:build unix

package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A backup or restore killed with -9 leaves its temporary copy (a whole
// database) and SQLite's journal of it beside the destination. The next
// backup or restore there removes them, and leaves alone the temporary
// file of one that is still running (it holds an flock on it).
func TestBackupAndRestoreRemoveWhatAKilledOneLeft(t *testing.T) {
	src, _ := sourceDir(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "tokend-backup.db")
	target := emptyTarget(t, src)
	db := filepath.Join(target, "tokend.db")

	write := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("half a database"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var live []string
	for _, dest := range []string{out, db} {
		stale := filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-0123456789ab")
		write(stale)
		write(stale + "-journal")
		running := filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-ba9876543210")
		write(running)
		f, err := os.Open(running)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := tryLock(f); err != nil {
			t.Fatal(err)
		}
		live = append(live, running)
	}

	runOK(t, nil, "backup", "--data-dir", src, "--out", out)
	runOK(t, nil, "restore", "--from", out, "--data-dir", target)

	for i, d := range []string{dir, target} {
		left, _ := filepath.Glob(filepath.Join(d, ".*.tmp-*"))
		if !slices.Equal(left, []string{live[i]}) {
			t.Errorf("in %s after a backup and a restore: %v; want only the running one's %s", d, left, live[i])
		}
	}
}
