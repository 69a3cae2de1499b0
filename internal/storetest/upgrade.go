package storetest

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/auditchain"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/secret"
)

// Upgrade is one backend's database for UpgradeToOwners.
type Upgrade struct {
	Dialect    goose.Dialect
	Migrations fs.FS // holds the directory "migrations"
	// DB opens a connection to the one database the test upgrades; the
	// helper closes it.
	DB func(t *testing.T) *sql.DB
	// Seed inserts, at 00007, the app 'app_a' and its token 'tok_old' named
	// "ci" with secret hash 0x0102, in the dialect's own SQL.
	Seed []string
	// Open opens the store on that database, migrating it to the latest.
	Open func(t *testing.T) interface {
		tokend.Store
		io.Closer
	}
}

// UpgradeToOwners opens a database left at 00007 (before owners) with a
// token in it: the migration gives the token no owner and the app no owner
// limits, the token's name is taken among the tokens without owner only,
// and down to 00007 and up again works.
func UpgradeToOwners(t *testing.T, u Upgrade) {
	ctx := t.Context()
	db := u.DB(t)
	if _, err := u.provider(t, db).UpTo(ctx, 7); err != nil {
		t.Fatalf("migrate to 00007: %v", err)
	}
	for _, q := range u.Seed {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed at 00007: %v", err)
		}
	}
	db.Close()

	s := u.Open(t)
	tok, err := s.Token(ctx, "tok_old")
	if err != nil {
		t.Fatalf("Token after the upgrade: %v", err)
	}
	if tok.OwnerID != "" || tok.OwnerName != "" || tok.Scope != nil {
		t.Errorf("upgraded token: owner %q %q scope %v; want none", tok.OwnerID, tok.OwnerName, tok.Scope)
	}
	cred, err := s.TokenBySecret(ctx, []byte{1, 2})
	if err != nil || cred.Token.OwnerID != "" || cred.Token.Scope != nil {
		t.Errorf("TokenBySecret after the upgrade: %+v, %v", cred.Token, err)
	}
	app, err := s.App(ctx, "app_a")
	if err != nil || app.MaxTokensPerOwner != nil || app.OwnerRateLimit != nil {
		t.Errorf("upgraded app: %+v, %v; want no owner limits", app, err)
	}
	owned := tok
	owned.ID, owned.OwnerID, owned.SecretHash = "tok_new", "acct_1", []byte{3}
	if err := s.CreateToken(ctx, owned, tokend.Event{Action: tokend.ActionTokenCreate, AppID: "app_a"}); err != nil {
		t.Errorf("a token of the same name with an owner: %v", err)
	}
	if err := s.DeleteToken(ctx, "tok_new", 0, tokend.Event{Action: tokend.ActionTokenDelete, AppID: "app_a"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db = u.DB(t)
	defer db.Close()
	p := u.provider(t, db)
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("down to 00007: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

// UpgradeEvery is one backend for UpgradeFromEveryVersion.
type UpgradeEvery struct {
	Dialect    goose.Dialect
	Migrations fs.FS // holds the directory "migrations"
	// New answers a connection to a fresh, empty database (the helper
	// closes it) and opens the store on that same database, migrating it
	// to the latest.
	New func(t *testing.T) (db *sql.DB, open func(t *testing.T) interface {
		tokend.Store
		io.Closer
	})
	// Question is set where placeholders are spelled ?n (SQLite) rather
	// than $n; Time converts a time to what the time columns take.
	Question bool
	Time     func(time.Time) any
}

// UpgradeFromEveryVersion builds a database at each earlier schema version
// (1 to the latest but one), fills it with what was valid then (an app, a
// token whose secret and HMAC are known, a revoked one, their audit rows,
// and from 00004 the pepper fingerprint), opens the store on it, which
// migrates it to the latest, and checks that every value came through and
// that the tokens verify as they did: the upgrade a deployment makes from
// any release to this one.
func UpgradeFromEveryVersion(t *testing.T, u UpgradeEvery) {
	fsys, err := fs.Sub(u.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(names) < 2 {
		t.Fatalf("migrations: %v %v", names, err)
	}
	latest, err := goose.NumericComponent(names[len(names)-1])
	if err != nil {
		t.Fatal(err)
	}
	pepper := []byte("the pepper of the upgrade test, 32+ bytes")
	h, err := secret.NewHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	live, err := secret.Generate("shop")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := secret.Generate("shop")
	if err != nil {
		t.Fatal(err)
	}
	liveHash, goneHash := h.Sum(live.Reveal()), h.Sum(gone.Reveal())
	created := time.Date(2025, time.June, 1, 12, 30, 15, 123456000, time.UTC)
	expires := time.Date(2100, time.January, 1, 0, 0, 0, 0, time.UTC)

	for v := int64(1); v < latest; v++ {
		t.Run(fmt.Sprintf("from %05d", v), func(t *testing.T) {
			ctx := t.Context()
			db, open := u.New(t)
			p, err := goose.NewProvider(u.Dialect, db, fsys, goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, v); err != nil {
				t.Fatalf("migrate to %05d: %v", v, err)
			}
			// The columns of 00001, which every later migration kept;
			// what they added has defaults.
			seed := []struct {
				q    string
				args []any
			}{
				{`INSERT INTO apps (id, name, token_prefix, permissions, created_at, updated_at, version)
				  VALUES ('app_up', 'Shop', 'shop', '["orders:read","orders:write"]', $1, $1, 3)`, []any{u.Time(created)}},
				{`INSERT INTO tokens (id, app_id, name, description, type, access, permissions, expires_at, allowed_ips,
				    allowed_origins, rate_limit, rate_window, use_count, metadata, status, masked, created_at, created_by,
				    updated_at, last_used_at, last_used_ip, version, secret_hash)
				  VALUES ('tok_live', 'app_up', 'ci', 'deploys', 'standard', 'custom', '["orders:read"]', $1, '["10.0.0.0/8"]',
				    'null', 100, 3600000000000, 7, '{"team":"ops"}', 'active', $2, $3, 'token:tok_admin',
				    $3, $3, '10.1.2.3', 2, $4)`, []any{u.Time(expires), live.String(), u.Time(created), liveHash[:]}},
				{`INSERT INTO tokens (id, app_id, name, description, type, access, permissions, allowed_ips, allowed_origins,
				    metadata, status, masked, created_at, created_by, updated_at, revoked_at, version, secret_hash)
				  VALUES ('tok_gone', 'app_up', 'ci', '', 'standard', 'read_only', 'null', 'null', 'null',
				    'null', 'revoked', $1, $2, 'token:tok_admin', $2, $2, 2, $3)`, []any{gone.String(), u.Time(created), goneHash[:]}},
				{`INSERT INTO events (time, actor, actor_name, ip, action, app_id, token_id, details)
				  VALUES ($1, 'token:tok_admin', 'admin', '192.0.2.1', 'token.create', 'app_up', 'tok_live', '{"name":"ci"}')`, []any{u.Time(created)}},
				{`INSERT INTO events (time, actor, actor_name, ip, action, app_id, token_id, details)
				  VALUES ($1, 'token:tok_admin', 'admin', '192.0.2.1', 'token.revoke', 'app_up', 'tok_gone', '{}')`, []any{u.Time(created)}},
			}
			if v >= 4 {
				seed = append(seed, struct {
					q    string
					args []any
				}{`INSERT INTO settings (key, value) VALUES ('pepper_fingerprint', 'f00d')`, nil})
			}
			for _, s := range seed {
				q := s.q
				if u.Question {
					q = strings.ReplaceAll(q, "$", "?")
				}
				if _, err := db.ExecContext(ctx, q, s.args...); err != nil {
					t.Fatalf("seed at %05d: %v\n%s", v, err, q)
				}
			}
			var chained []byte
			if v == 15 {
				chained = chainAt15(t, db, u.Question, created)
			}
			db.Close()

			s := open(t)
			defer s.Close()
			checkUpgraded(t, s, h, live.Reveal(), gone.Reveal(), created, expires, v >= 4)
			checkUpgradedChain(t, s, chained)
		})
	}
}

// chainAt15 chains, as 00015 did in the events table itself, the first of
// the two audit rows UpgradeFromEveryVersion seeded, and leaves the second
// for later (on PostgreSQL written but not chained yet, on SQLite written
// before 00015 and not chained yet), and answers the first row's hash.
func chainAt15(t *testing.T, db *sql.DB, question bool, created time.Time) []byte {
	t.Helper()
	var ids []int64
	rows, err := db.QueryContext(t.Context(), `SELECT id FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Close(); len(ids) != 2 {
		t.Fatalf("seeded audit rows %v, want 2", ids)
	}
	first := auditchain.Row{ID: ids[0], Time: created, Actor: "token:tok_admin", ActorName: "admin", IP: "192.0.2.1",
		Action: "token.create", AppID: "app_up", TokenID: "tok_live", Details: []byte(`{"name":"ci"}`)}
	hash := auditchain.Sum(auditchain.Genesis, first)
	for _, q := range []struct {
		q    string
		args []any
	}{
		{`UPDATE events SET pos = 1, prev_hash = $1, hash = $2 WHERE id = $3`, []any{auditchain.Genesis, hash, ids[0]}},
		{`UPDATE audit_head SET pos = 1, hash = $1, legacy_upto = $2`, []any{hash, ids[1]}},
	} {
		text := q.q
		if question {
			text = strings.ReplaceAll(text, "$", "?")
		}
		if _, err := db.ExecContext(t.Context(), text, q.args...); err != nil {
			t.Fatalf("chain at 00015: %v\n%s", err, text)
		}
	}
	return hash
}

// checkUpgradedChain checks that the audit rows UpgradeFromEveryVersion
// seeded are chained after the upgrade, in id order, and verify, and that
// the row chained before it (chained: its hash; nil: none) kept its hash,
// as an off-site export may have recorded it.
func checkUpgradedChain(t *testing.T, s tokend.Store, chained []byte) {
	t.Helper()
	ctx := t.Context()
	cs, ok := s.(AuditChainStore)
	if !ok {
		t.Fatalf("%T has no audit chain", s)
	}
	if rep := VerifyAudit(t, cs); rep.Rows != 2 || rep.Pending != 0 {
		t.Fatalf("the audit chain after the upgrade: %+v; want 2 rows chained", rep)
	}
	var got []auditchain.Row
	err := cs.AuditSnapshot(ctx, func(src auditchain.Source) error {
		return src.Rows(ctx, 0, func(r auditchain.Row) error { got = append(got, r); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID >= got[1].ID || got[0].Action != "token.create" || got[1].Action != "token.revoke" {
		t.Fatalf("the chained rows after the upgrade: %+v", got)
	}
	if chained != nil && !bytes.Equal(got[0].Hash, chained) {
		t.Errorf("the first row's hash after the upgrade: %x, before it: %x", got[0].Hash, chained)
	}
}

// checkUpgraded checks the data UpgradeFromEveryVersion seeded, after the
// upgrade.
func checkUpgraded(t *testing.T, s tokend.Store, h *secret.Hasher, live, gone string, created, expires time.Time, fingerprint bool) {
	t.Helper()
	ctx := t.Context()
	app, err := s.App(ctx, "app_up")
	if err != nil {
		t.Fatalf("the app: %v", err)
	}
	if app.Name != "Shop" || app.TokenPrefix != "shop" || !slices.Equal(app.Permissions, []string{"orders:read", "orders:write"}) ||
		!app.CreatedAt.Equal(created) || app.Version != 3 {
		t.Errorf("the app after the upgrade: %+v", app)
	}
	tok, err := s.Token(ctx, "tok_live")
	if err != nil {
		t.Fatalf("the token: %v", err)
	}
	want := tokend.Token{
		ID: "tok_live", AppID: "app_up", Name: "ci", Description: "deploys", Type: tokend.TypeStandard,
		Access: tokend.AccessCustom, Permissions: []string{"orders:read"}, ExpiresAt: &expires,
		AllowedIPs: []string{"10.0.0.0/8"}, Metadata: map[string]any{"team": "ops"},
		Status: tokend.StatusActive, Masked: secret.Mask(live), CreatedAt: created, CreatedBy: "token:tok_admin",
		UpdatedAt: created, LastUsedAt: &created, LastUsedIP: "10.1.2.3", Version: 2,
	}
	got := tok
	got.SecretHash, got.RateLimit, got.UseCount = nil, nil, 0
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("the token after the upgrade (-want +got):\n%s", d)
	}
	if tok.RateLimit == nil || tok.RateLimit.Limit != 100 || tok.RateLimit.Window != tokend.Duration(time.Hour) || tok.UseCount != 7 {
		t.Errorf("the token's rate limit %+v and use count %d", tok.RateLimit, tok.UseCount)
	}
	if fp, err := s.Setting(ctx, "pepper_fingerprint"); fingerprint && (err != nil || fp != "f00d") {
		t.Errorf("the pepper fingerprint after the upgrade: %q, %v", fp, err)
	}
	page, err := s.Events(ctx, tokend.EventFilter{AppID: "app_up", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range page.Items {
		if !e.Time.Equal(created) || e.Actor != "token:tok_admin" || e.IP != "192.0.2.1" {
			t.Errorf("an audit event after the upgrade: %+v", e)
		}
		actions = append(actions, e.Action+" "+e.TokenID)
	}
	if want := []string{"token.revoke tok_gone", "token.create tok_live"}; !slices.Equal(actions, want) {
		t.Errorf("the audit log after the upgrade: %v, want %v", actions, want)
	}

	// The secrets verify as they did, through the engine and the store's
	// lookup by HMAC.
	engine := verify.New(verify.Options{Store: s, Hasher: h, NoFilter: true})
	for _, c := range []struct {
		secret string
		req    tokend.VerifyRequest
		want   tokend.Code
	}{
		{live, tokend.VerifyRequest{Permissions: []string{"orders:read"}, IP: "10.1.2.3"}, tokend.CodeValid},
		{live, tokend.VerifyRequest{Permissions: []string{"orders:write"}, IP: "10.1.2.3"}, tokend.CodeInsufficientPermissions},
		{live, tokend.VerifyRequest{Permissions: []string{"orders:read"}, IP: "192.0.2.7"}, tokend.CodeIPNotAllowed},
		{gone, tokend.VerifyRequest{}, tokend.CodeRevoked},
	} {
		c.req.Token = c.secret
		res, err := engine.Verify(ctx, c.req)
		if err != nil || res.Code != c.want {
			t.Errorf("verify %s %v after the upgrade: %s, %v; want %s", secret.Mask(c.secret), c.req.Permissions, res.Code, err, c.want)
		}
	}
	if err := engine.Close(ctx); err != nil {
		t.Error(err)
	}
}

// provider is goose on db with u's migrations only.
func (u Upgrade) provider(t *testing.T, db *sql.DB) *goose.Provider {
	t.Helper()
	fsys, err := fs.Sub(u.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(u.Dialect, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
