package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// pgBackupBlock answers the shell block of docs/operations.md that backs
// up and restores a PostgreSQL database: the one whose lines run pg_dump
// and pg_restore.
func pgBackupBlock(t *testing.T) []string {
	t.Helper()
	for _, b := range mdBlocks("docs/operations.md", readDoc(t, "docs/operations.md")) {
		dump, restore := false, false
		for _, l := range b.body {
			dump = dump || strings.HasPrefix(l, "pg_dump ")
			restore = restore || strings.HasPrefix(l, "pg_restore ")
		}
		if b.lang == "sh" && dump && restore {
			return b.body
		}
	}
	t.Fatal("docs/operations.md has no sh block with a pg_dump and a pg_restore line")
	return nil
}

// needPgDump skips (fails under CI=true) unless pg_dump and pg_restore are
// installed and pg_dump is at least as new as the server, which it needs
// to dump it.
func needPgDump(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	needTool(t, "pg_restore")
	out, err := exec.Command(needTool(t, "pg_dump"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\s(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("pg_dump --version printed %q", out)
	}
	client, _ := strconv.Atoi(m[1])
	var num string
	if err := conn.QueryRow(t.Context(), "SHOW server_version_num").Scan(&num); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(num)
	if server := n / 10000; client < server {
		msg := fmt.Sprintf("pg_dump %d cannot dump a PostgreSQL %d server: install postgresql-client-%d", client, server, server)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// audit answers an instance's whole audit log, oldest first.
func audit(t *testing.T, in *instance, admin string) []tokend.Event {
	t.Helper()
	var out []tokend.Event
	path := "/v1/audit?limit=200"
	for {
		var page tokend.Page[tokend.Event]
		in.mustCall(t, 200, "GET", path, admin, nil, &page)
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			break
		}
		path = "/v1/audit?limit=200&cursor=" + page.NextCursor
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// The docs' pg_dump and pg_restore lines, run as printed against a
// database tokend serves, restore one on which a server answers for every
// token as the original did, with the same audit log, and refuses another
// pepper.
func TestPostgresBackupCommandsOfTheDocs(t *testing.T) {
	src, dst := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	needPgDump(t, pgtest.Admin(t))
	pepper := strings.Repeat("pepper-of-the-pg-backup-test", 2)
	a := startTokend(t, t.TempDir(), map[string]string{"TOKEND_DATABASE": src, "TOKEND_PEPPER": pepper})
	admin := a.bootstrap
	app := a.newApp(t, admin, "Shop")
	var tokens []created
	for i := range 5 {
		tokens = append(tokens, a.newToken(t, admin, app.ID, fmt.Sprintf("ci %d", i)))
	}
	a.mustCall(t, 200, "POST", "/v1/tokens/"+tokens[0].Token.ID+"/revoke", admin, nil, nil)
	a.mustCall(t, 200, "POST", "/v1/tokens/"+tokens[1].Token.ID+"/disable", admin, nil, nil)
	want := map[string]tokend.Code{tokens[0].Secret: tokend.CodeRevoked, tokens[1].Secret: tokend.CodeDisabled, admin: tokend.CodeValid}
	for _, c := range tokens[2:] {
		want[c.Secret] = tokend.CodeValid
	}
	for sec, code := range want {
		if got := a.verifyCode(t, sec); got != code {
			t.Fatalf("before the backup: %s, want %s", got, code)
		}
	}
	before := audit(t, a, admin)

	// The block, as printed, while a serves the source.
	block := pgBackupBlock(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+strings.Join(block, "\n"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(docsEnv(os.Args[0]), "TOKEND_DATABASE="+src, "RESTORED_DATABASE="+dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the docs' block failed: %v\n%s\n%s", err, strings.Join(block, "\n"), out)
	}
	a.stop()

	err := runFails(t, map[string]string{"TOKEND_PEPPER": strings.Repeat("another pepper ", 3)}, withAddr("serve", "--database", dst, "--data-dir", t.TempDir())...)
	wantErr(t, "another pepper on the restored database", err, "wrong pepper")

	b := startTokend(t, t.TempDir(), map[string]string{"TOKEND_DATABASE": dst, "TOKEND_PEPPER": pepper})
	if b.bootstrap != "" {
		t.Error("the server on the restored database bootstrapped a new owner token")
	}
	for sec, code := range want {
		if got := b.verifyCode(t, sec); got != code {
			t.Errorf("after the restore: %s, want %s", got, code)
		}
	}
	if d := cmp.Diff(before, audit(t, b, admin)); d != "" {
		t.Errorf("the restored audit log differs (-original +restored):\n%s", d)
	}
}

// A PostgreSQL database that a newer tokend migrated is refused by serve
// and migrate, and by the dry run, which leave it as it was.
func TestANewerSchemaOnPostgresIsRefused(t *testing.T) {
	db := pgtest.NewDatabase(t)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	dir := t.TempDir()
	runOK(t, env, "migrate", "--database", db, "--data-dir", dir)
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows := count()
	for _, args := range [][]string{
		withAddr("serve", "--database", db, "--data-dir", dir),
		{"migrate", "--database", db, "--data-dir", dir},
		{"migrate", "--dry-run", "--database", db},
		{"bootstrap", "--database", db, "--data-dir", dir},
	} {
		err := runFails(t, env, args...)
		wantErr(t, strings.Join(args[:2], " "), err, "database schema version 9999 is newer than this tokend", "upgrade tokend")
	}
	if n := count(); n != rows {
		t.Errorf("the refused commands changed goose_db_version: %d rows, were %d", n, rows)
	}
	var tokens int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM tokens`).Scan(&tokens); err != nil || tokens != 0 {
		t.Errorf("the refused bootstrap left %d tokens (%v)", tokens, err)
	}
}
