package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the driver, to tamper with the database

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/auditchain"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/sqlite"
)

// These tests write an audit log, tamper with it in SQL as someone with
// access to the database would, and check that `tokend audit verify` names
// the first row that was changed, deleted or inserted out of order, on
// SQLite and PostgreSQL.

const testPepper = "audit-chain-test-pepper-0123456789abcdef"

// chainDB is a database with an audit log written by tokend's store, and a
// plain connection to tamper with it.
type chainDB struct {
	args  []string          // --data-dir or --database, for the CLI
	env   map[string]string // TOKEND_PEPPER
	raw   *sql.DB
	blob  func([]byte) string // a bytes literal in this dialect's SQL
	ids   []int64             // ids of the rows, by position (ids[0]: position 1)
	times []time.Time         // their times
	store interface {
		AppendEvent(ctx context.Context, ev tokend.Event) error
		ChainAudit(ctx context.Context) (int64, error)
		CutAudit(ctx context.Context, before, now time.Time, sign func(auditchain.Checkpoint) []byte) (int64, error)
	}
}

// auditEngines runs fn on a fresh database of each engine holding n audit
// rows, a day apart, the first on 2026-01-01.
func auditEngines(t *testing.T, n int, fn func(t *testing.T, db *chainDB)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "tokend.db")
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		db := &chainDB{args: []string{"--data-dir", dir}, raw: raw, store: st,
			blob: func(b []byte) string { return fmt.Sprintf("x'%x'", b) }}
		fill(t, db, n)
		fn(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.WithSchema(t, pgtest.NewDatabase(t))
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		raw, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		db := &chainDB{args: []string{"--database", url}, raw: raw, store: st,
			blob: func(b []byte) string { return fmt.Sprintf(`'\x%x'::bytea`, b) }}
		fill(t, db, n)
		fn(t, db)
	})
}

func fill(t *testing.T, db *chainDB, n int) {
	t.Helper()
	ctx := context.Background()
	db.env = map[string]string{"TOKEND_PEPPER": testPepper}
	day := time.Date(2026, time.January, 1, 12, 0, 0, 123456000, time.UTC)
	for i := range n {
		at := day.AddDate(0, 0, i)
		ev := tokend.Event{Time: at, Actor: "token:tok_admin", ActorName: "ops <&> \u00e9", IP: "192.0.2.7",
			Action: tokend.ActionTokenCreate, AppID: "app_1", TokenID: fmt.Sprintf("tok_%d", i),
			Details: map[string]any{"name": fmt.Sprintf("token %d", i), "n": i, "nested": map[string]any{"z": 1.5, "a": []any{"x", nil, true}}}}
		if err := db.store.AppendEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		db.times = append(db.times, at)
	}
	if _, err := db.store.ChainAudit(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := db.raw.Query(`SELECT event_id FROM audit_chain ORDER BY pos`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		db.ids = append(db.ids, id)
	}
	if len(db.ids) != n {
		t.Fatalf("%d rows chained, want %d", len(db.ids), n)
	}
}

func (db *chainDB) exec(t *testing.T, q string) {
	t.Helper()
	if _, err := db.raw.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (db *chainDB) hash(t *testing.T, pos int) []byte {
	t.Helper()
	var h []byte
	if err := db.raw.QueryRow(fmt.Sprintf(`SELECT hash FROM audit_chain WHERE pos = %d`, pos)).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// at is the condition on events of the row at pos.
func (db *chainDB) at(pos int) string { return fmt.Sprintf("id = %d", db.ids[pos-1]) }

// deleteRows deletes the rows at the positions cond (on audit_chain)
// selects, from the events and from the chain, as someone covering their
// tracks would.
func (db *chainDB) deleteRows(t *testing.T, cond string) {
	t.Helper()
	db.exec(t, `DELETE FROM events WHERE id IN (SELECT event_id FROM audit_chain WHERE `+cond+`)`)
	db.exec(t, `DELETE FROM audit_chain WHERE `+cond)
}

// verify runs tokend audit verify and answers its output, or its error.
func (db *chainDB) verify(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"audit", "verify"}, db.args...), func(k string) string { return env[k] }, nil, &out, &errOut)
	return out.String(), err
}

// rowName is how verify names the row at pos (from 1).
func (db *chainDB) rowName(pos int) string {
	return fmt.Sprintf("row %d (token.create, %s)", db.ids[pos-1], db.times[pos-1].Format(time.RFC3339))
}

func wantBroken(t *testing.T, db *chainDB, wants ...string) {
	t.Helper()
	out, err := db.verify(t, db.env)
	if err == nil {
		t.Fatalf("verify passed a tampered log: %s", out)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("verify said %q, want it to hold %q", err, w)
		}
	}
}

func TestAuditVerifyNamesTheFirstTamperedRow(t *testing.T) {
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		out, err := db.verify(t, nil)
		if err != nil {
			t.Fatalf("an untouched log: %v", err)
		}
		if !strings.Contains(out, "audit log intact: 6 rows verified") {
			t.Fatalf("verify said %q", out)
		}
		t.Run("a row's details changed", func(t *testing.T) {
			db.exec(t, `UPDATE events SET details = '{"name":"harmless"}' WHERE `+db.at(3))
			wantBroken(t, db, db.rowName(3)+": content does not match its hash — changed after it was written")
			// Putting the original back is the only way to pass again.
		})
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		db.exec(t, `UPDATE events SET actor = 'user:usr_someone_else' WHERE `+db.at(5))
		db.exec(t, `UPDATE events SET ip = '198.51.100.1' WHERE `+db.at(2))
		wantBroken(t, db, db.rowName(2)+": content does not match its hash")
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		db.deleteRows(t, `pos = 3`)
		wantBroken(t, db, "position 3: deleted — the row written between "+db.rowName(2)+" and "+db.rowName(4)+" is gone")
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		// The row gone, its place in the chain left.
		db.exec(t, `DELETE FROM events WHERE `+db.at(3))
		wantBroken(t, db, fmt.Sprintf("position 3: deleted — row %d, written after %s, is gone", db.ids[2], db.rowName(2)))
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		// The row's place in the chain gone, the row left.
		db.exec(t, `DELETE FROM audit_chain WHERE pos = 3`)
		wantBroken(t, db, "position 3: deleted — the row written between "+db.rowName(2)+" and "+db.rowName(4)+" is gone")
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		// The last row's place in the chain gone, and the head moved back
		// to the row before: the row is left outside the chain.
		db.exec(t, `DELETE FROM audit_chain WHERE pos = 6`)
		db.exec(t, fmt.Sprintf(`UPDATE audit_head SET pos = 5, hash = %s`, db.blob(db.hash(t, 5))))
		wantBroken(t, db, db.rowName(6)+": not in the chain — inserted behind tokend's back, or its place in the chain was deleted")
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		db.deleteRows(t, `pos = 1`)
		wantBroken(t, db, "deleted — the rows before "+db.rowName(2)+" are gone")
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		db.deleteRows(t, `pos >= 5`)
		wantBroken(t, db, "the last rows were deleted: the chain's head is at position 6, but its last row is at position 4")
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		// Rows 3 and 4 swap places.
		db.exec(t, `UPDATE audit_chain SET pos = 100 WHERE pos = 3`)
		db.exec(t, `UPDATE audit_chain SET pos = 3 WHERE pos = 4`)
		db.exec(t, `UPDATE audit_chain SET pos = 4 WHERE pos = 100`)
		wantBroken(t, db, db.rowName(4)+": out of order — it was written after "+db.rowName(3)+", which now comes after it")
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		// A forged row after row 3, hashed as tokend would, the rows after
		// it moved one place down: the row that followed row 3 no longer
		// follows what is before it.
		db.exec(t, `UPDATE audit_chain SET pos = pos + 100 WHERE pos >= 4`)
		db.exec(t, `UPDATE audit_chain SET pos = pos - 99 WHERE pos >= 104`)
		at := db.times[2].Add(time.Hour)
		var id int64
		if err := db.raw.QueryRow(fmt.Sprintf(`INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details)
			VALUES (%s, 'system', 'tokend', '', 'token.revoke', 'app_1', 'tok_2', '{}') RETURNING id`, timeLit(db, at))).Scan(&id); err != nil {
			t.Fatal(err)
		}
		forged := auditchain.Row{ID: id, Time: at, Actor: "system", ActorName: "tokend", Action: "token.revoke", AppID: "app_1", TokenID: "tok_2", Details: []byte("{}")}
		prev := db.hash(t, 3)
		db.exec(t, fmt.Sprintf(`INSERT INTO audit_chain (pos, event_id, prev_hash, hash) VALUES (4, %d, %s, %s)`, id, db.blob(prev), db.blob(auditchain.Sum(prev, forged))))
		wantBroken(t, db, fmt.Sprintf("row %d (token.revoke, %s): inserted — %s was written right after %s", id, at.Format(time.RFC3339), db.rowName(4), db.rowName(3)))
	})
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		// A forged row that does not even try to fit.
		db.exec(t, `UPDATE audit_chain SET pos = 200 WHERE pos = 6`)
		var id int64
		if err := db.raw.QueryRow(fmt.Sprintf(`INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details)
			VALUES (%s, 'system', 'tokend', '', 'token.revoke', 'app_1', 'tok_2', '{}') RETURNING id`, timeLit(db, db.times[5]))).Scan(&id); err != nil {
			t.Fatal(err)
		}
		db.exec(t, fmt.Sprintf(`INSERT INTO audit_chain (pos, event_id, prev_hash, hash) VALUES (6, %d, %s, %s)`, id, db.blob(db.hash(t, 5)), db.blob(make([]byte, 32))))
		wantBroken(t, db, ": content does not match its hash")
	})
}

// timeLit is at as a literal of the dialect's time column.
func timeLit(db *chainDB, at time.Time) string {
	if strings.HasPrefix(db.args[0], "--data-dir") {
		return strconv.FormatInt(at.UnixMicro(), 10)
	}
	return "'" + at.Format(time.RFC3339Nano) + "'"
}

func TestAuditVerifyUnchainedRow(t *testing.T) {
	auditEngines(t, 3, func(t *testing.T, db *chainDB) {
		db.exec(t, fmt.Sprintf(`INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details)
			VALUES (%s, 'system', 'tokend', '', 'token.revoke', 'app_1', 'tok_2', '{}')`, timeLit(db, db.times[2])))
		out, err := db.verify(t, db.env)
		if strings.HasPrefix(db.args[0], "--data-dir") {
			// SQLite chains every row in the transaction that writes it.
			if err == nil || !strings.Contains(err.Error(), "not in the chain — inserted behind tokend's back") {
				t.Fatalf("verify: %v\n%s", err, out)
			}
			return
		}
		// PostgreSQL chains after commit: a row not chained yet is news.
		if err != nil || !strings.Contains(out, "1 newer rows are not chained yet") {
			t.Fatalf("verify: %v\n%s", err, out)
		}
	})
}

func TestAuditRetentionKeepsTheChainVerifiable(t *testing.T) {
	auditEngines(t, 6, func(t *testing.T, db *chainDB) {
		ctx := context.Background()
		key := auditchain.Key([]byte(testPepper))
		sign := func(cp auditchain.Checkpoint) []byte { return cp.Sign(key) }
		n, err := db.store.CutAudit(ctx, db.times[3], time.Now(), sign)
		if err != nil || n != 3 {
			t.Fatalf("cut: %d rows, %v; want 3", n, err)
		}
		// A second cut at the same time has nothing to do.
		if n, err := db.store.CutAudit(ctx, db.times[3], time.Now(), sign); err != nil || n != 0 {
			t.Fatalf("second cut: %d rows, %v", n, err)
		}
		out, err := db.verify(t, db.env)
		if err != nil || !strings.Contains(out, "audit log intact: 3 rows verified, from the signed retention checkpoint at position 3") {
			t.Fatalf("after the cut: %v\n%s", err, out)
		}
		if _, err := db.verify(t, nil); err == nil || !strings.Contains(err.Error(), "only the pepper can check") {
			t.Fatalf("without the pepper: %v", err)
		}
		var fp map[string]string = map[string]string{"TOKEND_PEPPER": strings.Repeat("x", 40)}
		if _, err := db.verify(t, fp); err == nil || !strings.Contains(err.Error(), "signature is wrong") {
			t.Fatalf("another pepper: %v", err)
		}

		t.Run("a deleted row after the cut", func(t *testing.T) {
			tx, _ := db.raw.Begin()
			defer tx.Rollback()
			for _, q := range []string{`DELETE FROM events WHERE ` + db.at(4), `DELETE FROM audit_chain WHERE pos = 4`} {
				if _, err := tx.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			tx.Commit()
			wantBroken(t, db, "deleted — the rows before "+db.rowName(5)+" are gone (the chain must start at the retention checkpoint at position 3)")
		})
		t.Run("a forged checkpoint passing the deletion off as a cut", func(t *testing.T) {
			h := db.hash(t, 5)
			// Its MAC made with a key that is not the pepper's.
			cp := auditchain.Checkpoint{Pos: 5, Hash: h, Time: db.times[4], CutAt: time.Now()}
			mac := cp.Sign(auditchain.Key([]byte("not the pepper, but just as long as it")))
			db.exec(t, fmt.Sprintf(`INSERT INTO audit_checkpoints (pos, hash, "time", cut_at, mac) VALUES (5, %s, %s, %s, %s)`,
				db.blob(h), timeLit(db, cp.Time), timeLit(db, cp.CutAt), db.blob(mac)))
			db.deleteRows(t, `pos = 5`)
			wantBroken(t, db, "position 5: the retention checkpoint's signature is wrong")
		})
	})
}

// TestAuditExportRecomputesAlone exports the chain and recomputes it from
// the export alone, with an implementation of the documented layout that
// shares no code with tokend's, and continues an archive with --since.
func TestAuditExportRecomputesAlone(t *testing.T) {
	auditEngines(t, 5, func(t *testing.T, db *chainDB) {
		export := func(args ...string) []map[string]any {
			t.Helper()
			var out, errOut bytes.Buffer
			args = append(append([]string{"audit", "export", "--format", "jsonl"}, db.args...), args...)
			if err := run(context.Background(), args, func(string) string { return "" }, nil, &out, &errOut); err != nil {
				t.Fatalf("export: %v\n%s", err, errOut.String())
			}
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				lines = append(lines, m)
			}
			return lines
		}
		all := export()
		if len(all) != 5 {
			t.Fatalf("%d lines, want 5", len(all))
		}
		prev := strings.Repeat("00", 32)
		for i, r := range all {
			var content []byte
			content = append(content, "tokend audit v1"...)
			for _, k := range []string{"id", "time", "actor", "actor_name", "ip", "action", "app_id", "token_id", "details"} {
				var f string
				switch v := r[k].(type) {
				case float64:
					f = strconv.FormatInt(int64(v), 10)
				case string:
					f = v
				}
				content = binary.BigEndian.AppendUint32(content, uint32(len(f)))
				content = append(content, f...)
			}
			p, _ := hex.DecodeString(r["prev_hash"].(string))
			sum := sha256.Sum256(append(p, content...))
			if r["prev_hash"] != prev || hex.EncodeToString(sum[:]) != r["hash"] {
				t.Fatalf("line %d does not chain: %v", i+1, r)
			}
			prev = r["hash"].(string)
		}
		if d := all[0]["details"].(string); d != `{"n":0,"name":"token 0","nested":{"a":["x",null,true],"z":1.5}}` {
			t.Errorf("details exported as %s, want canonical JSON", d)
		}
		if all[0]["time"] != "2026-01-01T12:00:00.123456Z" || all[0]["actor_name"] != "ops <&> \u00e9" {
			t.Errorf("first line %v", all[0])
		}
		// An archive continues after its last position, and from a time.
		more := export("--since", "4")
		if len(more) != 2 || more[0]["prev_hash"] != all[2]["hash"] || more[1]["hash"] != all[4]["hash"] {
			t.Fatalf("--since 4: %v", more)
		}
		fromTime := export("--since", db.times[3].Format(time.RFC3339Nano))
		if len(fromTime) != 2 || fromTime[0]["pos"] != all[3]["pos"] {
			t.Fatalf("--since a time: %v", fromTime)
		}
	})
}

// TestAuditVerifyBesideServe writes through a running server and verifies
// and exports its audit log from another process's point of view, while it
// still runs: the reader takes no lock of the data directory. The list of
// `tokend audit` keeps working, and retention is refused below an hour.
func TestAuditVerifyBesideServe(t *testing.T) {
	dir := t.TempDir()
	in := startTokend(t, dir, nil, "--audit-retention", "400d")
	cmd := cliOf(t, in)
	var app tokend.App
	json.Unmarshal([]byte(cmd("app", "create", "--name", "Shop", "--json")), &app)
	var tok createdToken
	json.Unmarshal([]byte(cmd("token", "create", "--app", app.ID, "--name", "ci", "--json")), &tok)
	cmd("token", "revoke", tok.Token.ID)
	if out := cmd("audit", "--token-id", tok.Token.ID); !strings.Contains(out, "token.revoke") {
		t.Fatalf("tokend audit: %s", out)
	}
	vars := map[string]string{}
	getenv := func(k string) string { return vars[k] }
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("verify beside serve: %v", err)
	}
	// bootstrap's app and token, the app, the token, its revocation
	if !strings.Contains(out.String(), "audit log intact: 5 rows verified") {
		t.Fatalf("verify: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"audit", "export", "--format", "jsonl", "--data-dir", dir}, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 5 || strings.Contains(out.String(), tok.Secret) {
		t.Fatalf("export: %d lines, or a secret in it:\n%s", n, out.String())
	}
	in.stop()

	err := runFails(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--audit-retention", "5m")
	wantErr(t, "a retention under an hour", err, "--audit-retention", "shorter than an hour")
	err = runFails(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--audit-retention", "forever")
	wantErr(t, "a retention that is no duration", err, "--audit-retention", "365d")
	err = runFails(t, nil, "audit", "export", "--data-dir", dir)
	wantErr(t, "an export without --format", err, "--format", "jsonl")
	err = runFails(t, nil, "audit", "export", "--format", "jsonl", "--data-dir", dir, "--since", "0")
	wantErr(t, "a position 0", err, "positions start at 1")
	err = runFails(t, nil, "audit", "verify", "--data-dir", t.TempDir())
	wantErr(t, "a data directory without a database", err, "tokend.db")

	out.Reset()
	if err := run(context.Background(), []string{"serve", "--help"}, getenv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "empty or 0 keeps the audit log forever, the default") {
		t.Errorf("serve --help does not say what --audit-retention defaults to:\n%s", out.String())
	}
}

// TestServeAuditRetentionCuts starts serve with --audit-retention on a
// database whose first rows are older than it: serve cuts them at start,
// and verify (with the pepper of the data directory) passes from the
// signed checkpoint.
func TestServeAuditRetentionCuts(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for i := range 3 {
		if err := st.AppendEvent(context.Background(), tokend.Event{Time: old.Add(time.Duration(i) * time.Minute), Actor: "system", Action: tokend.ActionAppCreate, AppID: "app_old"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	startTokend(t, dir, nil, "--audit-retention", "24h")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := (&chainDB{args: []string{"--data-dir", dir}}).verify(t, nil)
		if err == nil && strings.Contains(out, "from the signed retention checkpoint at position 3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cut after 30s: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}
