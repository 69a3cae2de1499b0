package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// Two instances on one PostgreSQL database share tokens: a token made
// through one verifies through the other. Nothing is written to the data
// directory.
func TestServeOnPostgresSharedByTwoInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	dir := filepath.Join(t.TempDir(), "unused")

	a := startTokend(t, dir, env, "--database", db)
	if a.bootstrap == "" {
		t.Fatalf("the first start on an empty database printed no bootstrap token:\n%s", a.stdout.String())
	}
	status, b := a.call(t, "POST", "/v1/apps", a.bootstrap, tokend.AppInput{Name: "shop"})
	if status != 201 {
		t.Fatalf("create app = %d %s", status, b)
	}
	var app tokend.App
	json.Unmarshal(b, &app)
	status, b = a.call(t, "POST", "/v1/tokens", a.bootstrap, tokend.TokenInput{AppID: app.ID, Name: "ci"})
	if status != 201 {
		t.Fatalf("create token = %d %s", status, b)
	}
	var tok created
	json.Unmarshal(b, &tok)
	if c := a.verifyCode(t, tok.Secret); c != tokend.CodeValid {
		t.Fatalf("the new token is %s", c)
	}

	second := startTokend(t, filepath.Join(t.TempDir(), "unused"), env, "--database", db)
	if second.bootstrap != "" {
		t.Error("a second instance on a bootstrapped database printed a bootstrap token")
	}
	if c := second.verifyCode(t, tok.Secret); c != tokend.CodeValid {
		t.Errorf("the second instance answers %s for a token made through the first", c)
	}
	if c := second.verifyCode(t, a.bootstrap); c != tokend.CodeValid {
		t.Errorf("the second instance answers %s for the owner token", c)
	}
	status, b = second.call(t, "POST", "/v1/tokens", a.bootstrap, tokend.TokenInput{AppID: app.ID, Name: "deploy"})
	if status != 201 {
		t.Fatalf("create token on the second instance = %d %s", status, b)
	}
	var other created
	json.Unmarshal(b, &other)
	if c := a.verifyCode(t, other.Secret); c != tokend.CodeValid {
		t.Errorf("the first instance answers %s for a token made through the second", c)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the data directory %s was created although the database is PostgreSQL", dir)
	}
}

func TestServeOnPostgresWantsAnExplicitPepper(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := filepath.Join(t.TempDir(), "unused")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"serve", "--database", db, "--data-dir", dir, "--addr", "127.0.0.1:0"},
		func(string) string { return "" }, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "several instances must share one pepper: set TOKEND_PEPPER or --pepper-file") {
		t.Fatalf("serve on PostgreSQL without a pepper: %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a data directory was created")
	}

	// A pepper file is as good as TOKEND_PEPPER.
	pepper := filepath.Join(t.TempDir(), "pepper")
	os.WriteFile(pepper, []byte(strings.Repeat("q", 40)+"\n"), 0o600)
	in := startTokend(t, dir, nil, "--database", db, "--pepper-file", pepper)
	if in.bootstrap == "" {
		t.Error("no bootstrap token with --pepper-file")
	}
}

func TestMigrateOnPostgres(t *testing.T) {
	db := pgtest.NewDatabase(t)
	getenv := func(k string) string {
		if k == "TOKEND_PEPPER" {
			return strings.Repeat("p", 40)
		}
		return ""
	}
	for i := range 2 { // the second run finds nothing to do
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"migrate", "--database", db, "--data-dir", filepath.Join(t.TempDir(), "unused")}, getenv, nil, &out, &errOut); err != nil {
			t.Fatalf("migrate run %d: %v %s", i+1, err, errOut.String())
		}
		if !strings.Contains(out.String(), "migrations applied") {
			t.Errorf("migrate run %d printed %q", i+1, out.String())
		}
	}
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables int
	err = conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
		AND tablename IN ('apps', 'tokens', 'retired_secrets', 'events', 'usage')`).Scan(&tables)
	if err != nil || tables != 5 {
		t.Errorf("after migrate, %d of the 5 tables exist (%v)", tables, err)
	}
}
