package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"

	"github.com/tokend/tokend"
)

// The networks each token was used from (token_networks), written by the
// verification engine's usage flush (RecordNetworks) and read for the
// management API's answer for one token (TokenNetworks).

var (
	// A new network: a row of its own, or a row last seen so long ago that
	// the network counts as new again (both its times start over).
	putNetwork = Q(`
		INSERT INTO token_networks (token_id, network, first_seen, last_seen) VALUES ($1, $2, $3, $4)
		ON CONFLICT (token_id, network) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen`)
	// A known network: its last seen moves only forward (batches of
	// several instances arrive in any order).
	touchNetwork = Q(`
		UPDATE token_networks SET last_seen = $3
		WHERE token_id = $1 AND network = $2 AND last_seen < $3`)
	// Times are unique enough that the tie-break (by network) only makes
	// the order total.
	trimNetworks = Q(`
		DELETE FROM token_networks WHERE token_id = $1 AND network NOT IN (
			SELECT network FROM token_networks WHERE token_id = $1
			ORDER BY last_seen DESC, network LIMIT $2)`)
	networksOf = Q(`
		SELECT network, first_seen, last_seen FROM token_networks
		WHERE token_id = $1 ORDER BY last_seen DESC, network LIMIT $2`)
)

// RecordNetworks merges the uses in one transaction. The batch's tokens are
// locked first, in id order (FOR NO KEY UPDATE on PostgreSQL; on SQLite the
// write lock holds them all), and every write of a token's networks holds
// its token's lock: so the rows read next are the truth until the commit,
// and of two instances flushing the same new network, the second reads the
// first's row after it committed and finds nothing new. A token deleted
// meanwhile has its uses dropped.
func (s *Store) RecordNetworks(ctx context.Context, uses []tokend.NetworkUse, raise func(tokend.NewNetwork) tokend.Event) error {
	if len(uses) == 0 {
		return nil
	}
	uses = slices.Clone(uses)
	// By token, then oldest first: a token's first network of a batch is
	// on record when its second is looked at.
	slices.SortFunc(uses, func(x, y tokend.NetworkUse) int {
		return cmp.Or(cmp.Compare(x.TokenID, y.TokenID), x.First.Compare(y.First), cmp.Compare(x.Network, y.Network))
	})
	ids := make([]string, 0, len(uses))
	for _, u := range uses {
		ids = append(ids, u.TokenID)
	}
	const op = "record networks"
	return s.retry(func() error {
		return s.writeConn(ctx, func(conn *sql.Conn, tx *sql.Tx) error {
			exists, err := s.lockTokens(ctx, tx, op, ids, s.f.ForNoKeyUpdate)
			if err != nil {
				return err
			}
			known, err := s.networksOfTokens(ctx, tx, exists)
			if err != nil {
				return err
			}
			var (
				stmts []stmt
				found []tokend.NewNetwork
			)
			for i := 0; i < len(uses); {
				id := uses[i].TokenID
				j := i
				for j < len(uses) && uses[j].TokenID == id {
					j++
				}
				if exists[id] {
					st, nn := s.mergeNetworks(known[id], uses[i:j])
					stmts = append(stmts, st...)
					found = append(found, nn...)
				}
				i = j
			}
			if err := s.execAll(ctx, conn, tx, op, stmts); err != nil {
				return err
			}
			for _, n := range found {
				t, err := s.ScanToken(tx.QueryRowContext(ctx, s.sql(tokenByID), n.Use.TokenID))
				if err != nil {
					return err
				}
				n.Token = t
				if err := s.InsertEvent(ctx, tx, raise(n)); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// mergeNetworks answers the statements that merge one token's uses (oldest
// first) into its rows, and the new networks among them (their Token still
// to be read). rows are the token's networks on record, most recently seen
// first.
func (s *Store) mergeNetworks(rows []tokend.TokenNetwork, uses []tokend.NetworkUse) ([]stmt, []tokend.NewNetwork) {
	var (
		stmts []stmt
		found []tokend.NewNetwork
		trim  bool
	)
	for _, u := range uses {
		i := slices.IndexFunc(rows, func(r tokend.TokenNetwork) bool { return r.Network == u.Network })
		if i >= 0 && !rows[i].LastSeen.Before(u.First.Add(-tokend.NewNetworkWindow)) {
			if u.Last.After(rows[i].LastSeen) {
				rows[i].LastSeen = u.Last
				stmts = append(stmts, stmt{touchNetwork, []any{u.TokenID, u.Network, s.time(u.Last)}})
			}
			continue
		}
		if len(rows) > 0 {
			previous := slices.DeleteFunc(slices.Clone(rows), func(r tokend.TokenNetwork) bool { return r.Network == u.Network })
			sortNetworks(previous)
			found = append(found, tokend.NewNetwork{Use: u, Previous: previous})
		}
		row := tokend.TokenNetwork{Network: u.Network, FirstSeen: u.First, LastSeen: u.Last}
		if i >= 0 {
			rows[i] = row
		} else {
			rows = append(rows, row)
		}
		if len(rows) > tokend.MaxTokenNetworks {
			sortNetworks(rows)
			rows, trim = rows[:tokend.MaxTokenNetworks], true
		}
		stmts = append(stmts, stmt{putNetwork, []any{u.TokenID, u.Network, s.time(u.First), s.time(u.Last)}})
	}
	if trim {
		stmts = append(stmts, stmt{trimNetworks, []any{uses[0].TokenID, tokend.MaxTokenNetworks}})
	}
	return stmts, found
}

// sortNetworks puts networks in the order TokenNetworks answers them: most
// recently seen first, then by network.
func sortNetworks(ns []tokend.TokenNetwork) {
	slices.SortFunc(ns, func(x, y tokend.TokenNetwork) int {
		return cmp.Or(y.LastSeen.Compare(x.LastSeen), cmp.Compare(x.Network, y.Network))
	})
}

// networksOfTokens reads the networks on record of the tokens of ids, in
// tx, after their tokens were locked.
func (s *Store) networksOfTokens(ctx context.Context, tx *sql.Tx, ids map[string]bool) (map[string][]tokend.TokenNetwork, error) {
	live := make([]string, 0, len(ids))
	for id, ok := range ids {
		if ok {
			live = append(live, id)
		}
	}
	slices.Sort(live)
	out := make(map[string][]tokend.TokenNetwork, len(live))
	const chunk = 500
	for part := range slices.Chunk(live, chunk) {
		var w where
		q := `SELECT token_id, network, first_seen, last_seen FROM token_networks WHERE token_id IN (` + w.in(part) + `)`
		type row struct {
			id string
			n  tokend.TokenNetwork
		}
		rows, err := list(ctx, s, tx, "record networks", s.rebind(q), w.args, func(r Row) (row, error) {
			var x row
			n, err := s.scanNetwork(r, &x.id)
			x.n = n
			return x, err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r.id] = append(out[r.id], r.n)
		}
	}
	return out, nil
}

// TokenNetworks answers a token's networks, most recently seen first.
func (s *Store) TokenNetworks(ctx context.Context, tokenID string) ([]tokend.TokenNetwork, error) {
	return list(ctx, s, s.r, "token networks", s.sql(networksOf), []any{tokenID, tokend.MaxTokenNetworks},
		func(r Row) (tokend.TokenNetwork, error) { return s.scanNetwork(r) })
}

// scanNetwork reads a row of the columns before (scanned into before),
// then network, first_seen and last_seen.
func (s *Store) scanNetwork(r Row, before ...any) (tokend.TokenNetwork, error) {
	var (
		n           tokend.TokenNetwork
		first, last Time
	)
	if err := r.Scan(append(before, &n.Network, &first, &last)...); err != nil {
		return tokend.TokenNetwork{}, s.Err("read network", err)
	}
	n.FirstSeen, n.LastSeen = first.Time, last.Time
	return n, nil
}
