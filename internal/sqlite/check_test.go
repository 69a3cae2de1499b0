package sqlite

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// makeReadOnly makes files unwritable for this process until the test
// ends. File modes do not stop root, so as root it sets the immutable flag
// (chattr +i), which does, and skips the test where that is not possible.
func makeReadOnly(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if os.Geteuid() != 0 {
			if err := os.Chmod(p, 0o444); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o644) })
			continue
		}
		if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
			t.Skipf("running as root, and chattr +i %s failed (%v: %s): no way to make a file read-only here", p, err, out)
		}
		// Registered after t.TempDir's removal, so it runs before it.
		t.Cleanup(func() {
			if out, err := exec.Command("chattr", "-i", p).CombinedOutput(); err != nil {
				t.Errorf("chattr -i %s: %v %s", p, err, out)
			}
		})
	}
}

func TestOpenRefusesAReadOnlyFile(t *testing.T) {
	path := seededFile(t)
	makeReadOnly(t, path, path+"-wal", path+"-shm")

	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a read-only database file")
	}
	if msg := err.Error(); !strings.Contains(msg, "the database "+path+" is read-only") {
		t.Errorf("Open: %v; want it to say that %s is read-only", err, path)
	}
	if testing.Verbose() {
		t.Log(err)
	}
}

// A file made read-only after the start, or a writer connection that can no
// longer write, fails Ping, which /readyz answers with.
func TestPingFailsWhenAWriteWouldFail(t *testing.T) {
	t.Run("file made read-only", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokend.db")
		s := openTemp(t, path)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping on a writable database: %v", err)
		}
		makeReadOnly(t, path)
		if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), path+" cannot be written") {
			t.Errorf("Ping with the file read-only: %v; want it to say %s cannot be written", err, path)
		}
	})
	t.Run("writer connection read-only", func(t *testing.T) {
		s := openTemp(t, filepath.Join(t.TempDir(), "tokend.db"))
		// The pool has one connection: this sets it on the writer, as SQLite
		// itself does when it can open a file only for reading.
		if _, err := s.w.ExecContext(t.Context(), "PRAGMA query_only = 1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(t.Context()); err == nil {
			t.Error("Ping succeeded although the writer cannot write")
		}
	})
}

func TestOpenRefusesADamagedFile(t *testing.T) {
	path := damagedFile(t)
	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a damaged database file")
	}
	if msg := err.Error(); !strings.Contains(msg, "the database "+path+" is damaged") || !strings.Contains(msg, "restore it from a backup") {
		t.Errorf("Open: %v; want it to say that %s is damaged and to restore it", err, path)
	}
	if testing.Verbose() {
		t.Log(err)
	}
}

// Two processes starting on one new database each offer their own value;
// the write lock makes both keep and answer the same one.
func TestInitSettingAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	a, b := openTemp(t, path), openTemp(t, path)
	const n = 10
	got := make([]string, 2*n)
	errs := make([]error, 2*n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 * n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.InitSetting(t.Context(), "pepper_fingerprint", fmt.Sprint(i))
		})
	}
	close(start)
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("InitSetting %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Errorf("InitSetting %d answered %q, InitSetting 0 %q", i, got[i], got[0])
		}
	}
}
