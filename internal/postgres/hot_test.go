package postgres

import (
	"errors"
	"net/url"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// openWith opens a store on a fresh database with the URL parameters set.
func openWith(t *testing.T, params map[string]string) *Store {
	t.Helper()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	s, err := Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The verification cache miss runs a statement prepared on the connection
// (pgx's statement cache, its default mode), so that every later miss is
// one round trip that the server neither parses nor plans again.
func TestTokenBySecretIsPrepared(t *testing.T) {
	s := openWith(t, map[string]string{"pool_max_conns": "1"})
	for range 2 {
		if _, err := s.TokenBySecret(t.Context(), make([]byte, 32)); !errors.Is(err, tokend.ErrNotFound) {
			t.Fatalf("TokenBySecret(unknown) = %v; want ErrNotFound", err)
		}
	}
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_prepared_statements WHERE statement = $1`, tokenBySecret).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the connection holds %d prepared statements of the cache-miss query; want 1", n)
	}
}

// A pooler in transaction mode (PgBouncer before 1.21) cannot keep a
// prepared statement across transactions; such a setup says so in the URL
// (default_query_exec_mode=exec or simple_protocol), and the cache miss
// still answers, unprepared.
func TestTokenBySecretWithoutPreparedStatements(t *testing.T) {
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			s := openWith(t, map[string]string{"default_query_exec_mode": mode})
			if _, err := s.TokenBySecret(t.Context(), make([]byte, 32)); !errors.Is(err, tokend.ErrNotFound) {
				t.Fatalf("TokenBySecret(unknown) = %v; want ErrNotFound", err)
			}
		})
	}
}
