package manage

import (
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/internal/sqlite"
)

// TestUnknownEmailCostsAHash checks the enumeration defence without timing
// anything: a sign-in for an unknown email verifies the dummy hash, which
// is a real hash with the service's parameters (so the work is the same as
// for a known email), and a known email does not touch it.
func TestUnknownEmailCostsAHash(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir()+"/tokend.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	s := New(Options{Store: st, Password: &p})

	dummy := s.users.dummy()
	ok, rehash, err := password.VerifyWith("", dummy, p)
	if err != nil || ok || rehash {
		t.Fatalf("the dummy hash %q: VerifyWith = %v, %v, %v; want a well-formed hash with the service's parameters", dummy, ok, rehash, err)
	}

	calls := 0
	s.users.dummy = func() string { calls++; return dummy }
	boot := tokend.Actor{Kind: "token", ID: "tok_boot", Permissions: tokend.AdminPermissions}
	if _, err := s.Setup(t.Context(), boot, "Ada", "ada@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(t.Context(), "nobody@example.com", "correct horse battery", ""); err == nil {
		t.Fatal("an unknown email signed in")
	}
	if calls != 1 {
		t.Errorf("an unknown email checked the dummy hash %d times, want 1", calls)
	}
	if _, err := s.Authenticate(t.Context(), "ada@example.com", "wrong password!", ""); err == nil {
		t.Fatal("a wrong password signed in")
	}
	if calls != 1 {
		t.Errorf("a known email checked the dummy hash: %d calls, want still 1", calls)
	}
}
