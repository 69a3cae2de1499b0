package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// errLocked is a lock file held by another process (or another open of it
// in this one).
var errLocked = errors.New("locked")

// fileLock is an exclusive lock on a lock file, held until release. The
// kernel drops it when the process ends however it ends (kill -9 included),
// so a lock file left behind never blocks the next start: the PID in it is
// only what the last holder wrote, and is overwritten.
type fileLock struct{ f *os.File }

// lockFile takes the lock on path (creating the file) without waiting, and
// writes this process's PID into it. When another process holds it, the
// error names that process's PID, as it wrote it.
func lockFile(path, what string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file of %s: %w", what, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		holder := "a process whose PID it has not written yet"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = "PID " + strconv.Itoa(pid)
			}
		}
		return nil, fmt.Errorf("%s is in use by another tokend (%s holds %s): stop it first, or give this one another --data-dir", what, holder, path)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}

// release drops the lock. The file stays: removing it would let a process
// that opened it just before lock a file nobody else can find.
func (l *fileLock) release() error {
	return l.f.Close()
}
