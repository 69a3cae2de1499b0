package postgres

import (
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/storetest"
)

// Two instances (two Store values on one database) flushing the same new
// network of a token at once raise one token.new_network between them.
func TestNewNetworkAcrossInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b := open(t, db), open(t, db)
	seed(t, a, "tok_race")
	storetest.NetworkRace(t, []tokend.Store{a, b}, "tok_race")
}
