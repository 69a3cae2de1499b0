// Package pgtest gives tests a PostgreSQL database of their own: it creates
// a fresh database on the server named by TOKEND_TEST_POSTGRES and drops it
// when the test ends. Tests skip when no server answers, unless CI=true,
// where a missing server is a failure rather than a silent pass.
//
// It is for tests only and must not be imported by production code.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultAdminURL is the server used when TOKEND_TEST_POSTGRES is unset.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the URL of a role that may create databases.
func AdminURL() string {
	if u := os.Getenv("TOKEND_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// unreachable skips the test, or fails it on CI.
func unreachable(t testing.TB, err error) {
	t.Helper()
	msg := "PostgreSQL not reachable at " + redact(AdminURL()) + ": set TOKEND_TEST_POSTGRES (" + err.Error() + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// redact hides a password in a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "TOKEND_TEST_POSTGRES"
	}
	return u.Redacted()
}

// Admin connects to the admin URL; the connection closes when the test ends.
func Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		unreachable(t, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// NewDatabase creates an empty database tokend_test_<random>, answers its
// URL, and drops it (closing any connection left to it) when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := Admin(t)
	raw := make([]byte, 8)
	rand.Read(raw)
	name := "tokend_test_" + hex.EncodeToString(raw)
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("TOKEND_TEST_POSTGRES must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// WithSchema answers dbURL with a fresh schema first on its search path, so
// that several stores can share one database without seeing each other.
func WithSchema(t testing.TB, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(dbURL), err)
	}
	defer conn.Close(ctx)
	raw := make([]byte, 6)
	rand.Read(raw)
	schema := "s_" + hex.EncodeToString(raw)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("CREATE SCHEMA: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
