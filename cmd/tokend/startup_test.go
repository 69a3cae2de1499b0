package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/sqlite"

	_ "modernc.org/sqlite" // the driver, for forgetFingerprint
)

// These tests start tokend on data that is not as it should be (a lost or
// changed pepper, a data directory in use, a read-only or damaged database,
// a port in use) and check that it refuses to start, says why, and changes
// nothing.

// runFails runs a tokend command that must fail, and answers its error.
func runFails(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, args, func(k string) string { return env[k] }, nil, &out, &errOut)
	if err == nil {
		t.Fatalf("tokend %s succeeded; stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "tkd_admin_") {
		t.Errorf("tokend %s failed but printed a secret:\n%s", strings.Join(args, " "), out.String())
	}
	return err
}

// withAddr is the command line of cmd with args, and a free port for serve.
func withAddr(cmd string, args ...string) []string {
	args = append([]string{cmd}, args...)
	if cmd == "serve" {
		args = append(args, "--addr", "127.0.0.1:0")
	}
	return args
}

// wantErr fails the test unless err's message holds every one of wants.
func wantErr(t *testing.T, what string, err error, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %v\nwant it to say %q", what, err, w)
		}
	}
}

// openStore opens the SQLite database of a data directory behind tokend's
// back, to see what is in it; no tokend may be running on it.
func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func countTokens(t *testing.T, st tokend.Store) int {
	t.Helper()
	n, err := st.CountTokens(t.Context(), tokend.TokenFilter{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fingerprintOfFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pepperFingerprint(bytes.TrimSpace(b))
}

func TestAFreshDatabaseRecordsThePepperFingerprint(t *testing.T) {
	dir := t.TempDir()
	a := startTokend(t, dir, nil)
	a.stop()
	if !strings.Contains(a.stderr.String(), "recorded the pepper fingerprint") {
		t.Errorf("the first start did not log that it recorded the fingerprint:\n%s", a.stderr.String())
	}
	want := fingerprintOfFile(t, filepath.Join(dir, "pepper"))
	if got, err := openStore(t, dir).Setting(t.Context(), pepperFingerprintKey); err != nil || got != want {
		t.Errorf("the stored fingerprint is %q (%v), want %q", got, err, want)
	}
}

// A pepper file deleted by mistake must not be replaced by a new pepper,
// which would make every token answer NOT_FOUND; serve, bootstrap and
// migrate all refuse, and create nothing.
func TestAMissingPepperFileIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	pepperPath := filepath.Join(dir, "pepper")
	a := startTokend(t, dir, nil)
	a.stop()
	fp := fingerprintOfFile(t, pepperPath)
	pepper, _ := os.ReadFile(pepperPath)
	if err := os.Remove(pepperPath); err != nil {
		t.Fatal(err)
	}

	for _, cmd := range []string{"serve", "bootstrap", "migrate"} {
		t.Run(cmd, func(t *testing.T) {
			err := runFails(t, nil, withAddr(cmd, "--data-dir", dir)...)
			wantErr(t, cmd, err, "the pepper file "+pepperPath+" is missing", "so none was made",
				"fingerprint is "+fp[:12], "Restore "+pepperPath+" from your backup", "TOKEND_PEPPER or --pepper-file")
			if _, err := os.Stat(pepperPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a pepper file was created: %v", err)
			}
		})
	}
	if n := countTokens(t, openStore(t, dir)); n != 1 {
		t.Errorf("the database has %d tokens, want only the first start's", n)
	}

	// Restored, it serves the tokens made before.
	if err := os.WriteFile(pepperPath, pepper, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startTokend(t, dir, nil)
	if c := b.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("with the pepper restored the owner token is %s", c)
	}
}

// A database made before the fingerprint existed has tokens but none
// recorded, and no pepper file must be made for it either.
func TestAMissingPepperFileIsNotReplacedForAnOldDatabase(t *testing.T) {
	dir := t.TempDir()
	startTokend(t, dir, nil).stop()
	forgetFingerprint(t, dir)
	os.Remove(filepath.Join(dir, "pepper"))
	err := runFails(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	wantErr(t, "serve", err, "is missing", "holds tokens made with a pepper")
	if _, err := os.Stat(filepath.Join(dir, "pepper")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a pepper file was created: %v", err)
	}
}

// forgetFingerprint makes the database of dir look like one from before the
// fingerprint: the settings table, empty.
func forgetFingerprint(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM settings"); err != nil {
		t.Fatal(err)
	}
}

func TestAChangedPepperIsRefused(t *testing.T) {
	dir := t.TempDir()
	pepperPath := filepath.Join(dir, "pepper")
	a := startTokend(t, dir, nil)
	a.stop()
	pepper, _ := os.ReadFile(pepperPath)
	fp := fingerprintOfFile(t, pepperPath)
	other := strings.Repeat("0123456789abcdef", 4)
	otherFP := pepperFingerprint([]byte(other))

	os.WriteFile(pepperPath, []byte(other+"\n"), 0o600)
	err := runFails(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	wantErr(t, "a changed pepper file", err, "wrong pepper", "fingerprint is "+fp[:12],
		"the pepper file "+pepperPath+" has the fingerprint "+otherFP[:12], "Restore the pepper")

	os.WriteFile(pepperPath, pepper, 0o600)
	err = runFails(t, map[string]string{"TOKEND_PEPPER": other}, "bootstrap", "--data-dir", dir)
	wantErr(t, "TOKEND_PEPPER", err, "fingerprint is "+fp[:12], "TOKEND_PEPPER has the fingerprint "+otherFP[:12])

	elsewhere := filepath.Join(t.TempDir(), "pepper")
	os.WriteFile(elsewhere, []byte(other), 0o600)
	err = runFails(t, nil, "migrate", "--data-dir", dir, "--pepper-file", elsewhere)
	wantErr(t, "--pepper-file", err, "the pepper file "+elsewhere+" (--pepper-file) has the fingerprint "+otherFP[:12])

	if n := countTokens(t, openStore(t, dir)); n != 1 {
		t.Errorf("the database has %d tokens, want only the first start's", n)
	}
	b := startTokend(t, dir, nil) // the right pepper, back in its file
	if c := b.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("with the right pepper the owner token is %s", c)
	}
}

// A database from before the fingerprint is accepted with the pepper it is
// given, which it records (and says so); from then on another is refused.
func TestADatabaseWithoutAFingerprintRecordsIt(t *testing.T) {
	dir := t.TempDir()
	a := startTokend(t, dir, nil)
	a.stop()
	forgetFingerprint(t, dir)

	b := startTokend(t, dir, nil)
	if c := b.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("the owner token is %s", c)
	}
	b.stop()
	if !strings.Contains(b.stderr.String(), "had no pepper fingerprint") {
		t.Errorf("the start did not log that it recorded the fingerprint:\n%s", b.stderr.String())
	}
	want := fingerprintOfFile(t, filepath.Join(dir, "pepper"))
	st := openStore(t, dir)
	if got, err := st.Setting(t.Context(), pepperFingerprintKey); err != nil || got != want {
		t.Errorf("the stored fingerprint is %q (%v), want %q", got, err, want)
	}
	st.Close()
	err := runFails(t, map[string]string{"TOKEND_PEPPER": strings.Repeat("q", 40)}, "migrate", "--data-dir", dir)
	wantErr(t, "another pepper once recorded", err, "wrong pepper")
}

func TestAPepperMismatchOnPostgresIsRefused(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := filepath.Join(t.TempDir(), "unused")
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	a := startTokend(t, dir, env, "--database", db)
	a.stop()

	other := strings.Repeat("q", 40)
	err := runFails(t, map[string]string{"TOKEND_PEPPER": other}, "serve", "--database", db, "--data-dir", dir, "--addr", "127.0.0.1:0")
	wantErr(t, "serve", err, "wrong pepper", "the PostgreSQL database was used with the pepper whose fingerprint is "+pepperFingerprint([]byte(env["TOKEND_PEPPER"]))[:12],
		"TOKEND_PEPPER has the fingerprint "+pepperFingerprint([]byte(other))[:12])

	// The same pepper from a file is the same pepper.
	pepperFile := filepath.Join(t.TempDir(), "pepper")
	os.WriteFile(pepperFile, []byte(env["TOKEND_PEPPER"]+"\n"), 0o600)
	b := startTokend(t, dir, nil, "--database", db, "--pepper-file", pepperFile)
	if c := b.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("the owner token is %s", c)
	}
}

// One SQLite data directory, one process: the second serve (or bootstrap,
// or migrate) is refused with the PID of the first, and once the first has
// stopped the next one starts.
func TestOneProcessPerDataDirectory(t *testing.T) {
	dir := t.TempDir()
	a := startTokend(t, dir, nil)
	for _, cmd := range []string{"serve", "bootstrap", "migrate"} {
		err := runFails(t, nil, withAddr(cmd, "--data-dir", dir)...)
		wantErr(t, cmd, err, "the data directory "+dir+" is in use by another tokend", "PID "+strconv.Itoa(os.Getpid()), filepath.Join(dir, "tokend.lock"))
	}
	if c := a.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("the running server answers %s for its owner token", c)
	}
	a.stop()
	b := startTokend(t, dir, nil)
	if c := b.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("the next server answers %s for the owner token", c)
	}
}

// A database named outside the data directory is locked beside it, so that
// two data directories cannot share it either.
func TestADatabaseOutsideTheDataDirectoryIsLocked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shared.db")
	startTokend(t, t.TempDir(), nil, "--database", db)
	err := runFails(t, nil, "serve", "--data-dir", t.TempDir(), "--database", db, "--addr", "127.0.0.1:0")
	wantErr(t, "serve", err, "the database "+db+" is in use by another tokend", "PID "+strconv.Itoa(os.Getpid()), db+".lock")
}

// The lock goes with its process however the process ends: after kill -9
// the lock file is still there, with the dead PID in it, and the next
// start takes it.
func TestALockLeftByAKilledProcessDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	child := startChild(t, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir)
	lock := filepath.Join(dir, "tokend.lock")
	b, err := os.ReadFile(lock)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(child.Process.Pid) {
		t.Fatalf("the lock file holds %q (%v), want the child's PID %d", b, err, child.Process.Pid)
	}
	err = runFails(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	wantErr(t, "serve beside the child", err, "PID "+strconv.Itoa(child.Process.Pid))

	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	child.Wait()
	a := startTokend(t, dir, nil)
	if a.bootstrap != "" {
		t.Error("the restart bootstrapped again")
	}
	if b, _ := os.ReadFile(lock); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("the lock file holds %q, want this process's PID %d", b, os.Getpid())
	}
}

// startChild runs tokend with args in a process of its own (this test
// binary again, in TestTokendChild), and waits for serve's banner.
func startChild(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTokendChild$")
	cmd.Env = append(os.Environ(), "TOKEND_TEST_CHILD_ARGS="+string(raw))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Press Ctrl+C") && !ok {
				ok = true
				started <- true
			}
		}
		if !ok {
			started <- false
		}
	}()
	select {
	case ok := <-started:
		if !ok {
			t.Fatalf("the child exited without starting:\n%s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the child did not start:\n%s", stderr.String())
	}
	return cmd
}

// TestTokendChild is not a test: it is the process startChild starts.
func TestTokendChild(t *testing.T) {
	raw := os.Getenv("TOKEND_TEST_CHILD_ARGS")
	if raw == "" {
		t.Skip("the child process of TestALockLeftByAKilledProcessDoesNotBlock")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tokend:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// makeReadOnly makes files unwritable for this process until the test
// ends (or until the function it answers is called). File modes do not stop
// root, so as root it sets the immutable flag (chattr +i), which does, and
// skips the test where that is not possible.
func makeReadOnly(t *testing.T, paths ...string) (undo func()) {
	t.Helper()
	var undos []func()
	for _, p := range paths {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if os.Geteuid() != 0 {
			if err := os.Chmod(p, 0o444); err != nil {
				t.Fatal(err)
			}
			undos = append(undos, func() { os.Chmod(p, 0o644) })
			continue
		}
		if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
			t.Skipf("running as root, and chattr +i %s failed (%v: %s): no way to make a file read-only here", p, err, out)
		}
		undos = append(undos, func() {
			if out, err := exec.Command("chattr", "-i", p).CombinedOutput(); err != nil {
				t.Errorf("chattr -i %s: %v %s", p, err, out)
			}
		})
	}
	done := false
	undo = func() {
		if !done {
			done = true
			for _, u := range undos {
				u()
			}
		}
	}
	t.Cleanup(undo) // before t.TempDir's removal, registered earlier
	return undo
}

func TestAReadOnlyDatabaseIsRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tokend.db")
	startTokend(t, dir, nil).stop()
	undo := makeReadOnly(t, db, db+"-wal", db+"-shm")
	err := runFails(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	wantErr(t, "serve", err, "the database "+db+" is read-only", "tokend must be able to write it")
	undo()

	// Read-only once running: not ready, and ready again once writable.
	a := startTokend(t, dir, nil)
	wantReady(t, a, 200, "")
	undo = makeReadOnly(t, db)
	wantReady(t, a, 503, "UNAVAILABLE")
	undo()
	wantReady(t, a, 200, "")
}

func wantReady(t *testing.T, in *instance, status int, code string) {
	t.Helper()
	res := in.do(t, "GET", "/readyz", "", nil)
	if res.StatusCode != status {
		res.Body.Close()
		t.Fatalf("/readyz = %d, want %d", res.StatusCode, status)
	}
	if code == "" {
		res.Body.Close()
		return
	}
	if got := problemCode(t, res); got != code {
		t.Errorf("/readyz answered the code %q, want %q", got, code)
	}
}

func TestADamagedDatabaseIsRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tokend.db")
	a := startTokend(t, dir, nil)
	_, b := a.call(t, "POST", "/v1/apps", a.bootstrap, tokend.AppInput{Name: "shop"})
	var app tokend.App
	json.Unmarshal(b, &app)
	for i := range 60 {
		if status, b := a.call(t, "POST", "/v1/tokens", a.bootstrap, tokend.TokenInput{AppID: app.ID, Name: fmt.Sprint("token ", i)}); status != 201 {
			t.Fatalf("create = %d %s", status, b)
		}
	}
	a.stop() // the WAL is written back into the file
	st, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("garbage!"), page/8), st.Size()/page/2*page); err != nil {
		t.Fatal(err)
	}
	f.Close()

	err = runFails(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	wantErr(t, "serve", err, "the database "+db+" is damaged", "restore it from a backup")
}

// The address is taken before anything else: with the port in use the
// first start fails and leaves nothing behind, and the next one, on a free
// port, shows the owner token it creates.
func TestABusyPortOnTheFirstStartCreatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	err = runFails(t, nil, "serve", "--data-dir", dir, "--addr", ln.Addr().String())
	wantErr(t, "serve on a busy port", err, "address already in use")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was created: %v", err)
	}

	a := startTokend(t, dir, nil)
	if a.bootstrap == "" {
		t.Fatalf("the start after the failed one printed no owner token:\n%s", a.stdout.String())
	}
	status, b := a.call(t, "GET", "/v1/tokens?app_id="+tokend.SystemAppID, a.bootstrap, nil)
	var page tokend.Page[tokend.Token]
	json.Unmarshal(b, &page)
	if status != 200 || len(page.Items) != 1 {
		t.Errorf("system tokens: %d %s; want exactly one", status, b)
	}
}

// Numeric flags out of range are refused, naming the flag and what 0
// means where it means something; nothing is created. A zero the engine
// would have read as its default (--cache-ttl 0 was a minute) is one.
func TestServeRefusesNumbersOutOfRange(t *testing.T) {
	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--cache-ttl", "0"}, []string{"--cache-ttl must be positive"}},
		{[]string{"--cache-entries", "0"}, []string{"--cache-entries must be positive"}},
		{[]string{"--cache-bytes", "-1"}, []string{"--cache-bytes must be positive"}},
		{[]string{"--negative-ttl", "0s"}, []string{"--negative-ttl must be positive"}},
		{[]string{"--flush-interval", "0"}, []string{"--flush-interval must be positive"}},
		{[]string{"--shutdown-timeout", "0"}, []string{"--shutdown-timeout must be positive"}},
		{[]string{"--redis-timeout", "-5ms"}, []string{"--redis-timeout must be positive"}},
		{[]string{"--event-interval", "0"}, []string{"--event-interval must be positive"}},
		{[]string{"--secret-filter-rebuild", "0"}, []string{"--secret-filter-rebuild must be positive"}},
		{[]string{"--invalidation-poll-interval", "0"}, []string{"--invalidation-poll-interval must be positive"}},
		{[]string{"--failure-limit", "-1"}, []string{"--failure-limit must not be negative", "0 turns the throttle off"}},
		{[]string{"--stale-window", "-1s"}, []string{"--stale-window must not be negative"}},
		{[]string{"--rotated-secret-retention", "-1h"}, []string{"--rotated-secret-retention must not be negative"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			err := runFails(t, nil, withAddr("serve", append([]string{"--data-dir", dir}, c.args...)...)...)
			wantErr(t, strings.Join(c.args, " "), err, c.wants...)
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the refused start created %s (%v)", dir, err)
			}
		})
	}
	t.Run("the environment too", func(t *testing.T) {
		err := runFails(t, map[string]string{"TOKEND_CACHE_TTL": "0"}, withAddr("serve", "--data-dir", filepath.Join(t.TempDir(), "data"))...)
		wantErr(t, "TOKEND_CACHE_TTL=0", err, "--cache-ttl must be positive")
	})
	t.Run("--help says which zeros mean something", func(t *testing.T) {
		var help bytes.Buffer
		if err := run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, nil, &help, &help); err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"0 turns the throttle off", "0 trusts none", "0 keeps them forever", "positive (TOKEND_CACHE_TTL)",
			// And where the first admin token comes from.
			"first start on an empty store creates an owner admin token", "TOKEND_TOKEN", "tokend bootstrap"} {
			if !strings.Contains(help.String(), w) {
				t.Errorf("serve --help does not say %q", w)
			}
		}
	})
}

// --database names the forms it takes when given another: a mysql:// URL
// was opened as a SQLite file and answered SQLite's error. A file: URL is
// a SQLite path.
func TestDatabaseNamesTheSupportedSchemes(t *testing.T) {
	for _, db := range []string{"mysql://x", "sqlite:///tmp/x.db", "redis://127.0.0.1:6379/0", "file:x.db?mode=ro"} {
		for _, cmd := range []string{"serve", "bootstrap", "migrate"} {
			dir := filepath.Join(t.TempDir(), "data")
			err := runFails(t, nil, withAddr(cmd, "--data-dir", dir, "--database", db)...)
			wantErr(t, cmd+" --database "+db, err, "SQLite file path", "file:", "postgres://", "postgresql://")
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s --database %s created %s (%v)", cmd, db, dir, err)
			}
		}
	}
	t.Run("file: URL", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "via-url.db")
		a := startTokend(t, dir, nil, "--database", "file://"+db)
		a.stop()
		if _, err := os.Stat(db); err != nil {
			t.Errorf("file://%s did not open %s: %v", db, db, err)
		}
	})
}
