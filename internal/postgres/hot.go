package postgres

import (
	"context"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"
)

// The verification cache miss, and the use count of a token with max_uses,
// which verification takes on every use, run through pgx itself rather
// than database/sql: the same query and row codec as the core's, without
// database/sql's connection hand-over and value conversions.
var (
	tokenBySecret = flavor.Text(sqlstore.TokenBySecretQuery)
	takeUse       = flavor.Text(sqlstore.TakeUseQuery)
)

func (s *Store) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	return s.CredentialBySecret(s.pool.QueryRow(ctx, tokenBySecret, hash))
}

// TakeUse counts one use of a token with max_uses in one conditional UPDATE,
// committed on its own. Concurrent updates of the row, from any instance,
// wait for its lock and then evaluate the condition again on the row as the
// winner left it, so no more than max_uses are ever counted.
func (s *Store) TakeUse(ctx context.Context, tokenID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, takeUse, tokenID)
	if err != nil {
		return false, storeErr("take use", err)
	}
	return tag.RowsAffected() == 1, nil
}
