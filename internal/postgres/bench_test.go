package postgres

import (
	"context"
	"testing"

	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/storetest"
)

// BenchmarkTokenBySecret is the verification cache miss: the store read of
// a token by its secret's hash, among 10,000 tokens, at random (see
// storetest.BenchTokenBySecret).
func BenchmarkTokenBySecret(b *testing.B) {
	s, err := Open(context.Background(), pgtest.WithSchema(b, pgtest.NewDatabase(b)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchTokenBySecret(b, s)
}
