package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlite"
)

// runOK runs a tokend command that must succeed, and answers its stdout.
func runOK(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, args, func(k string) string { return env[k] }, nil, &out, &errOut); err != nil {
		t.Fatalf("tokend %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// createToken creates a token through the API, from any goroutine.
func createToken(url, admin, appID, name string) (created, error) {
	b, _ := json.Marshal(tokend.TokenInput{AppID: appID, Name: name})
	req, _ := http.NewRequest("POST", url+"/v1/tokens", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return created{}, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return created{}, fmt.Errorf("POST /v1/tokens = %d %s", res.StatusCode, body)
	}
	var c created
	return c, json.Unmarshal(body, &c)
}

// allEvents answers every audit event of the SQLite database of dir,
// oldest first. No tokend may be running on it.
func allEvents(t *testing.T, dir string) []tokend.Event {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []tokend.Event
	f := tokend.EventFilter{Limit: tokend.MaxPageSize}
	for {
		page, err := st.Events(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// The backup is taken from a data directory that a real tokend serve
// process is writing to under load, and restored elsewhere: every token
// whose creation was acknowledged before the backup began verifies on a
// server started on the restored copy, and the copy's audit log is exactly
// the beginning of the original's (a snapshot of one moment, nothing torn
// or reordered), its tokens exactly those whose creation it records.
func TestBackupUnderWriteLoadRestoresEveryAcknowledgedToken(t *testing.T) {
	bin := buildTokend(t)
	work := t.TempDir()
	dirA, dirB := filepath.Join(work, "a"), filepath.Join(work, "b")
	a := startProcess(t, bin, nil, "--data-dir", dirA)
	admin := a.bootstrap
	app := a.newApp(t, admin, "Shop")
	var mu sync.Mutex
	var acked []created
	for i := range 20 {
		acked = append(acked, a.newToken(t, admin, app.ID, fmt.Sprintf("first %d", i)))
	}

	// The write load: creations on four connections until stopped.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := createToken(a.url, admin, app.ID, fmt.Sprintf("load %d-%d", g, i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked = append(acked, c)
				mu.Unlock()
			}
		})
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, "the load to create tokens", func() bool { return ackedCount() >= 40 })

	mu.Lock()
	before := append([]created(nil), acked...)
	mu.Unlock()
	out := filepath.Join(work, "tokend-backup.db")
	start := time.Now()
	printed := runOK(t, nil, "backup", "--data-dir", dirA, "--out", out)
	took := time.Since(start)
	during := ackedCount() - len(before)
	// The server was not held up: creations go on after the backup.
	after := ackedCount()
	waitFor(t, "the load to go on after the backup", func() bool { return ackedCount() >= after+20 })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a creation under load failed: %v", err)
	}
	t.Logf("backup took %s beside %d acknowledged creations; %d tokens before it", took, during, len(before))
	if !strings.Contains(printed, "backed up "+filepath.Join(dirA, "tokend.db")+" to "+out) || !strings.Contains(printed, "pepper fingerprint "+fingerprintOfFile(t, filepath.Join(dirA, "pepper"))[:12]) {
		t.Errorf("backup printed %q", printed)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the backup's mode: %v, %v; want 0600", st.Mode(), err)
	}
	if b, err := os.ReadFile(out); err != nil || bytes.Contains(b, bytes.TrimSpace(readFile(t, filepath.Join(dirA, "pepper")))) {
		t.Errorf("the backup holds the pepper (or cannot be read: %v)", err)
	}

	// The restore, with the pepper copied as an operator would.
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "pepper"), readFile(t, filepath.Join(dirA, "pepper")), 0o600); err != nil {
		t.Fatal(err)
	}
	printed = runOK(t, nil, "restore", "--from", out, "--data-dir", dirB)
	if !strings.Contains(printed, "restored "+out+" to "+filepath.Join(dirB, "tokend.db")) {
		t.Errorf("restore printed %q", printed)
	}
	if st, err := os.Stat(filepath.Join(dirB, "tokend.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the restored database's mode: %v, %v; want 0600", st.Mode(), err)
	}
	restored := allEvents(t, dirB)

	// Tokens made after the backup answer NOT_FOUND there, as many as the
	// load made: no failure throttle.
	b := startProcess(t, bin, nil, "--data-dir", dirB, "--failure-limit", "0")
	if b.bootstrap != "" {
		t.Error("the restored server bootstrapped a new owner token: it saw no tokens")
	}
	for _, c := range before {
		if code := b.verifyCode(t, c.Secret); code != tokend.CodeValid {
			t.Errorf("%s (%s), acknowledged before the backup, is %s after the restore", c.Token.ID, c.Token.Name, code)
		}
	}
	creates := map[string]bool{}
	for _, e := range restored {
		if e.Action == tokend.ActionTokenCreate {
			creates[e.TokenID] = true
		}
	}
	mu.Lock()
	all := acked
	mu.Unlock()
	present := 0
	for _, c := range all {
		code := b.verifyCode(t, c.Secret)
		switch {
		case code == tokend.CodeValid && creates[c.Token.ID]:
			present++
		case code == tokend.CodeNotFound && !creates[c.Token.ID]:
		default:
			t.Errorf("%s after the restore: %s, its creation in the restored audit log: %v", c.Token.ID, code, creates[c.Token.ID])
		}
	}
	if present < len(before) || present == len(all) {
		t.Errorf("%d of %d tokens are in the backup, %d were acknowledged before it: want those and not those made well after it", present, len(all), len(before))
	}
	b.stop()
	a.stop()

	original := allEvents(t, dirA)
	if len(restored) == 0 || len(restored) > len(original) {
		t.Fatalf("the restored audit log has %d events, the original %d", len(restored), len(original))
	}
	if d := cmp.Diff(original[:len(restored)], restored); d != "" {
		t.Errorf("the restored audit log is not the beginning of the original (-original +restored):\n%s", d)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sourceDir answers a data directory with a database that holds the
// owner token, made by tokend bootstrap, and that token's secret.
func sourceDir(t *testing.T) (dir, owner string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "tokend-data")
	return dir, strings.TrimSpace(runOK(t, nil, "bootstrap", "--data-dir", dir))
}

// backupOf answers a fresh backup of the database of dir.
func backupOf(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tokend-backup.db")
	runOK(t, nil, "backup", "--data-dir", dir, "--out", out)
	return out
}

// emptyTarget answers a data directory holding only the pepper file of src.
func emptyTarget(t *testing.T, src string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pepper"), readFile(t, filepath.Join(src, "pepper")), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// noDatabase fails the test if dir holds a database file.
func noDatabase(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "tokend.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s holds a database after a refused restore (%v)", dir, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".tokend.db.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("a refused restore left %v", leftovers)
	}
}

func TestRestoreRefusesAndChangesNothing(t *testing.T) {
	src, owner := sourceDir(t)
	good := backupOf(t, src)
	fp := fingerprintOfFile(t, filepath.Join(src, "pepper"))

	t.Run("wrong pepper", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "restored")
		other := strings.Repeat("0123456789abcdef", 4)
		err := runFails(t, map[string]string{"TOKEND_PEPPER": other}, "restore", "--from", good, "--data-dir", dir)
		wantErr(t, "TOKEND_PEPPER not the backup's", err, "wrong pepper", "fingerprint is "+fp[:12],
			"TOKEND_PEPPER has the fingerprint "+pepperFingerprint([]byte(other))[:12], "nothing was restored")
		noDatabase(t, dir)
		file := filepath.Join(t.TempDir(), "pepper")
		os.WriteFile(file, []byte(other), 0o600)
		err = runFails(t, nil, "restore", "--from", good, "--data-dir", dir, "--pepper-file", file)
		wantErr(t, "--pepper-file not the backup's", err, "wrong pepper", "the pepper file "+file+" (--pepper-file)")
		noDatabase(t, dir)
	})
	t.Run("no pepper", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "restored")
		err := runFails(t, nil, "restore", "--from", good, "--data-dir", dir)
		wantErr(t, "no pepper file", err, filepath.Join(dir, "pepper")+" does not exist", "copy the pepper file")
		noDatabase(t, dir)
		if _, err := os.Stat(filepath.Join(dir, "pepper")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("restore made a pepper: %v", err)
		}
	})
	t.Run("a data directory that holds a database", func(t *testing.T) {
		dir := emptyTarget(t, src)
		runOK(t, nil, "restore", "--from", good, "--data-dir", dir)
		before := readFile(t, filepath.Join(dir, "tokend.db"))
		err := runFails(t, nil, "restore", "--from", good, "--data-dir", dir)
		wantErr(t, "a second restore", err, "already holds a database", "never overwrites")
		if !bytes.Equal(before, readFile(t, filepath.Join(dir, "tokend.db"))) {
			t.Error("the refused restore changed the database")
		}
		// The source itself, which has a server's -wal beside it too.
		err = runFails(t, nil, "restore", "--from", good, "--data-dir", src)
		wantErr(t, "onto the source", err, "already holds a database")
	})
	t.Run("a data directory in use", func(t *testing.T) {
		dir := emptyTarget(t, src)
		in := startTokend(t, dir, nil) // a fresh server on it
		err := runFails(t, nil, "restore", "--from", good, "--data-dir", dir)
		wantErr(t, "beside serve", err, "in use by another tokend")
		in.stop()
	})
	bad := map[string][]byte{
		"text":  bytes.Repeat([]byte("not a database at all\n"), 300),
		"empty": nil,
	}
	damaged := readFile(t, good)
	for i := len(damaged) / 2; i < len(damaged)/2+4096; i++ {
		damaged[i] = 'x'
	}
	bad["damaged"] = damaged
	other := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	bad["another application's SQLite database"] = readFile(t, other)
	want := map[string]string{
		"text": "is not a SQLite database", "empty": "is not a tokend database", "damaged": "is damaged",
		"another application's SQLite database": "is not a tokend database",
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			from := filepath.Join(t.TempDir(), "backup.db")
			os.WriteFile(from, b, 0o600)
			dir := emptyTarget(t, src)
			err := runFails(t, nil, "restore", "--from", from, "--data-dir", dir)
			wantErr(t, name, err, from+" cannot be restored", want[name])
			noDatabase(t, dir)
		})
	}
	t.Run("a newer schema", func(t *testing.T) {
		from := filepath.Join(t.TempDir(), "backup.db")
		os.WriteFile(from, readFile(t, good), 0o600)
		bumpSchema(t, from)
		dir := emptyTarget(t, src)
		err := runFails(t, nil, "restore", "--from", from, "--data-dir", dir)
		wantErr(t, "a newer schema", err, "database schema version 9999 is newer than this tokend", "upgrade tokend")
		noDatabase(t, dir)
	})

	// After all that, the good backup still restores, and its owner token
	// verifies.
	dir := emptyTarget(t, src)
	runOK(t, nil, "restore", "--from", good, "--data-dir", dir)
	if code := startTokend(t, dir, nil).verifyCode(t, owner); code != tokend.CodeValid {
		t.Errorf("the owner token after the restore: %s", code)
	}
}

// bumpSchema records a migration 9999 in the database at path, as a
// tokend newer than this one would.
func bumpSchema(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
}

func TestBackupRefusesAndOverwritesOnlyWithForce(t *testing.T) {
	src, _ := sourceDir(t)
	out := filepath.Join(t.TempDir(), "tokend-backup.db")
	os.WriteFile(out, []byte("an older backup"), 0o600)
	err := runFails(t, nil, "backup", "--data-dir", src, "--out", out)
	wantErr(t, "an existing --out", err, out+" exists", "--force")
	if string(readFile(t, out)) != "an older backup" {
		t.Error("the refused backup changed the existing file")
	}
	runOK(t, nil, "backup", "--data-dir", src, "--out", out, "--force")
	if _, err := sqlite.Inspect(t.Context(), out); err != nil {
		t.Errorf("the backup written with --force: %v", err)
	}

	db := filepath.Join(src, "tokend.db")
	live := readFile(t, db)
	for _, o := range []string{db, db + "-wal", filepath.Join(src, ".", "tokend.db")} {
		err = runFails(t, nil, "backup", "--data-dir", src, "--out", o, "--force")
		wantErr(t, "--out the database", err, "is the database itself")
	}
	if !bytes.Equal(live, readFile(t, db)) {
		t.Error("a refused backup onto the database changed it")
	}

	err = runFails(t, nil, "backup", "--data-dir", src, "--out", os.DevNull, "--force")
	wantErr(t, "--out a device", err, "not a regular file")
	err = runFails(t, nil, "restore", "--from", os.DevNull, "--data-dir", filepath.Join(t.TempDir(), "d"))
	wantErr(t, "--from a device", err, "not a regular file")

	missing := filepath.Join(t.TempDir(), "nothing-here")
	err = runFails(t, nil, "backup", "--data-dir", missing, "--out", filepath.Join(t.TempDir(), "b.db"))
	wantErr(t, "no database", err, "there is no database at "+filepath.Join(missing, "tokend.db"))
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup created the data directory it was pointed at: %v", err)
	}

	err = runFails(t, nil, "backup", "--database", "postgres://tokend@db.internal/tokend", "--out", filepath.Join(t.TempDir(), "b.db"))
	wantErr(t, "PostgreSQL", err, "pg_dump --format=custom", "pg_restore")
	err = runFails(t, nil, "restore", "--database", "postgres://tokend@db.internal/tokend", "--from", out, "--data-dir", t.TempDir())
	wantErr(t, "PostgreSQL", err, "pg_dump --format=custom", "pg_restore")
	err = runFails(t, nil, "backup", "--data-dir", src)
	wantErr(t, "no --out", err, "--out FILE is required")

	// The database as serve takes it: a file: URL is its path, and what
	// is no SQLite database is named as such.
	byURL := filepath.Join(t.TempDir(), "by-url.db")
	runOK(t, nil, "backup", "--database", "file://"+filepath.Join(src, "tokend.db"), "--out", byURL)
	if _, err := sqlite.Inspect(t.Context(), byURL); err != nil {
		t.Errorf("the backup of a file: URL: %v", err)
	}
	err = runFails(t, nil, "backup", "--database", "mysql://x", "--out", filepath.Join(t.TempDir(), "b.db"))
	wantErr(t, "mysql://", err, "not a database tokend can use")
}

// A database that a newer tokend migrated is refused by every command
// that would use it, with the versions and what to do, and is left as it
// was.
func TestANewerSchemaIsRefusedByEveryCommand(t *testing.T) {
	dir, _ := sourceDir(t)
	bumpSchema(t, filepath.Join(dir, "tokend.db"))
	before := readFile(t, filepath.Join(dir, "tokend.db"))
	latest := strings.Count(runOK(t, nil, "migrate", "--dry-run", "--data-dir", filepath.Join(t.TempDir(), "none")), "\n  ")
	want := fmt.Sprintf("database schema version 9999 is newer than this tokend (%d); upgrade tokend", latest)
	for _, args := range [][]string{
		withAddr("serve", "--data-dir", dir),
		{"migrate", "--data-dir", dir},
		{"migrate", "--dry-run", "--data-dir", dir},
		{"bootstrap", "--data-dir", dir},
		{"backup", "--data-dir", dir, "--out", filepath.Join(t.TempDir(), "b.db")},
	} {
		err := runFails(t, nil, args...)
		wantErr(t, strings.Join(args[:min(2, len(args))], " "), err, want)
	}
	if !bytes.Equal(before, readFile(t, filepath.Join(dir, "tokend.db"))) {
		t.Error("a refused command changed the database")
	}
}

func TestMigrateDryRunListsAndAppliesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokend-data")
	out := runOK(t, nil, "migrate", "--dry-run", "--data-dir", dir)
	if !strings.Contains(out, "schema version 0; this tokend would apply") || !strings.Contains(out, "  00001  init\n") || !strings.Contains(out, "dry run: nothing applied") {
		t.Errorf("dry run on nothing printed:\n%s", out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dry run created %s: %v", dir, err)
	}

	// A database left at 00012: the dry run lists 13 and 14 and leaves it
	// there; migrate then applies them.
	os.MkdirAll(dir, 0o700)
	db, err := sql.Open("sqlite", filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := upTo(t.Context(), db, 12); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := readFile(t, filepath.Join(dir, "tokend.db"))
	out = runOK(t, nil, "migrate", "--dry-run", "--data-dir", dir)
	if !strings.Contains(out, "schema version 12;") || !strings.Contains(out, "  00013  decoy_names\n") || strings.Contains(out, "00012") {
		t.Errorf("dry run at 00012 printed:\n%s", out)
	}
	if !bytes.Equal(before, readFile(t, filepath.Join(dir, "tokend.db"))) {
		t.Error("the dry run changed the database")
	}
	if _, err := os.Stat(filepath.Join(dir, "pepper")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dry run made a pepper: %v", err)
	}
	runOK(t, nil, "migrate", "--data-dir", dir)
	if out := runOK(t, nil, "migrate", "--dry-run", "--data-dir", dir); !strings.Contains(out, "the schema is up to date") {
		t.Errorf("dry run after migrate printed:\n%s", out)
	}
}

// upTo migrates the SQLite database db up to version, with the migration
// files of the repository.
func upTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS(filepath.Join(repoRoot, "internal", "sqlite", "migrations")), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}
