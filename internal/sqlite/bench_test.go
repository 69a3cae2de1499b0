package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tokend/tokend/internal/storetest"
)

// BenchmarkTokenBySecret is the verification cache miss: the store read of
// a token by its secret's hash, among 10,000 tokens, at random (see
// storetest.BenchTokenBySecret).
func BenchmarkTokenBySecret(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchTokenBySecret(b, s)
}
