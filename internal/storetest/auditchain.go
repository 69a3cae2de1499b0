package storetest

import (
	"context"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/auditchain"
)

// AuditChainStore is a store whose audit log is a hash chain.
type AuditChainStore interface {
	tokend.Store
	ChainAudit(ctx context.Context) (int64, error)
	AuditSnapshot(ctx context.Context, fn func(auditchain.Source) error) error
}

// VerifyAudit chains what is pending in s and verifies the whole chain,
// answering its report; a broken chain fails the test.
func VerifyAudit(t testing.TB, s AuditChainStore) auditchain.Report {
	t.Helper()
	ctx := context.Background()
	if _, err := s.ChainAudit(ctx); err != nil {
		t.Fatalf("ChainAudit: %v", err)
	}
	var rep auditchain.Report
	err := s.AuditSnapshot(ctx, func(src auditchain.Source) error {
		var err error
		rep, err = auditchain.Verify(ctx, src, auditchain.Options{PendingIsBroken: true})
		return err
	})
	if err != nil {
		t.Fatalf("the audit chain does not verify: %v", err)
	}
	return rep
}

// UpgradeAuditChain migrates u's database to 00014 (before the audit
// chain), writes three audit rows (ids 1 to 3) at the time now (the
// dialect's SQL for a time), and opens the store (the first start after the upgrade):
// the old rows join the chain in id order, and a new row follows them.
func UpgradeAuditChain(t *testing.T, u Upgrade, now string) {
	ctx := t.Context()
	seed := []string{
		`INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details) VALUES (` + now + `, 'system', 'tokend', '', 'app.create', 'app_a', '', '{"name":"Shop"}')`,
		`INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details) VALUES (` + now + `, 'user:usr_1', 'Ann', '192.0.2.1', 'token.create', 'app_a', 'tok_1', '{"b":2, "a":1}')`,
		`INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details) VALUES (` + now + `, 'user:usr_1', 'Ann', '192.0.2.1', 'token.revoke', 'app_a', 'tok_1', '{}')`,
	}
	db := u.DB(t)
	p := u.provider(t, db)
	if _, err := p.UpTo(ctx, 14); err != nil {
		t.Fatalf("migrate to 00014: %v", err)
	}
	for _, q := range seed {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed at 00014: %v", err)
		}
	}
	db.Close()

	s := u.Open(t).(AuditChainStore)
	if err := s.AppendEvent(ctx, tokend.Event{Action: tokend.ActionAppCreate, AppID: "app_new", Actor: "system"}); err != nil {
		t.Fatal(err)
	}
	rep := VerifyAudit(t, s)
	if want := int64(len(seed) + 1); rep.Rows != want || rep.Head.Pos != want {
		t.Fatalf("after the upgrade: %d rows chained, head at %d; want %d", rep.Rows, rep.Head.Pos, want)
	}
	var ids []int64
	err := s.AuditSnapshot(ctx, func(src auditchain.Source) error {
		return src.Rows(ctx, 0, func(r auditchain.Row) error { ids = append(ids, r.ID); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids[:len(seed)] {
		if id != int64(i+1) {
			t.Fatalf("old rows chained in the order %v; want id order", ids)
		}
	}
}
