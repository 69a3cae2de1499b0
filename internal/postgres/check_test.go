package postgres

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// A database that takes no writes is refused at start, with a message that
// says so, rather than accepted and answering 500 to every write.
func TestOpenRefusesADatabaseThatTakesNoWrites(t *testing.T) {
	db := pgtest.NewDatabase(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_transaction_read_only", "on") // a run-time parameter of every connection
	u.RawQuery = q.Encode()
	s, err := Open(t.Context(), u.String())
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a read-only database")
	}
	if !errors.Is(err, errReadOnly) || !strings.Contains(err.Error(), "default_transaction_read_only") {
		t.Errorf("Open: %v; want it to say the database takes no writes", err)
	}
}

// Ping, which /readyz answers with, fails once the database stops taking
// writes, and answers again when it takes them again.
func TestPingFailsWhileTheDatabaseTakesNoWrites(t *testing.T) {
	db := pgtest.NewDatabase(t)
	s := open(t, db)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	name := strings.TrimPrefix(mustParse(t, db).Path, "/")
	admin := pgtest.Admin(t)
	setReadOnly := func(on bool) {
		t.Helper()
		v := "off"
		if on {
			v = "on"
		}
		if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET default_transaction_read_only = "+v); err != nil {
			t.Fatal(err)
		}
		s.pool.Reset() // the setting applies to new connections
	}
	setReadOnly(true)
	err := s.Ping(t.Context())
	if !errors.Is(err, errReadOnly) || tokend.CodeOf(err) != tokend.ECodeUnavailable {
		t.Errorf("Ping of a read-only database: %v; want UNAVAILABLE, read-only", err)
	}
	setReadOnly(false)
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping once the database takes writes again: %v", err)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
