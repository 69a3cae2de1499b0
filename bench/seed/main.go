// Command seed fills a tokend SQLite database with many tokens through the
// store's own CreateToken (one transaction, synced to disk, per token: what
// the API pays) and writes their secrets, one a line, for bench/cold and
// bench/flood. Running it again on the same files continues where it
// stopped. It stops after --tokens in all or after --max-time, whichever
// comes first, and reports the rate.
//
// --bulk N adds N more tokens afterwards by a path only this tool takes: a
// connection of its own with synchronous=OFF, 10,000 rows a transaction,
// each row a copy of the last token CreateToken stored with a new id, name,
// secret hash and mask (the column list is read from the schema), and no
// audit event. It is for reaching a million tokens in minutes; the rate
// CreateToken reached is the one to quote.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/secret"
)

// Pepper is the HMAC pepper every bench program uses, so that they agree on
// the digests of the secrets seed writes.
const Pepper = "tokend-bench-pepper-0123456789abcdef"

const appID = "app_bench"

func main() {
	db := flag.String("db", "bench.db", "SQLite database file")
	secrets := flag.String("secrets", "bench-secrets.txt", "file the secrets are appended to")
	n := flag.Int("tokens", 1_000_000, "number of tokens the database should hold in all")
	maxTime := flag.Duration("max-time", 10*time.Minute, "stop after this long even if fewer tokens were created")
	bulkN := flag.Int("bulk", 0, "then add this many tokens through the bulk path (see the package comment)")
	flag.Parse()
	if err := run(*db, *secrets, *n, *maxTime); err != nil {
		log.Fatal(err)
	}
	if *bulkN > 0 {
		if err := bulk(*db, *secrets, *bulkN, *maxTime); err != nil {
			log.Fatal(err)
		}
	}
}

// bulk appends n tokens copied from the newest bench token; see the package
// comment.
func bulk(path, secretsPath string, n int, maxTime time.Duration) error {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=synchronous(OFF)&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var template string
	if err := db.QueryRowContext(ctx, `SELECT id FROM tokens WHERE app_id = ? ORDER BY id DESC LIMIT 1`, appID).Scan(&template); err != nil {
		return fmt.Errorf("bulk: no bench token to copy (run without --tokens 0 first): %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('tokens') ORDER BY cid`)
	if err != nil {
		return err
	}
	var cols, sel []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return err
		}
		cols = append(cols, c)
		switch c {
		case "id", "name", "secret_hash", "masked":
			sel = append(sel, ":"+c)
		default:
			sel = append(sel, c)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	insert := `INSERT INTO tokens (` + strings.Join(cols, ", ") + `) SELECT ` + strings.Join(sel, ", ") + ` FROM tokens WHERE id = :template`
	h, err := secret.NewHasher([]byte(Pepper))
	if err != nil {
		return err
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE app_id = ?`, appID).Scan(&have); err != nil {
		return err
	}
	f, err := os.OpenFile(secretsPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	start := time.Now()
	made := 0
	for made < n && time.Since(start) < maxTime {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			tx.Rollback()
			return err
		}
		var batch []string
		for j := 0; j < 10_000 && made+len(batch) < n; j++ {
			i := have + made + j
			sec, err := secret.Generate("bench")
			if err != nil {
				tx.Rollback()
				return err
			}
			sum := h.Sum(sec.Reveal())
			if _, err := stmt.ExecContext(ctx, sql.Named("id", fmt.Sprintf("tok_bulk%014d", i)), sql.Named("name", fmt.Sprintf("b%08d", i)),
				sql.Named("secret_hash", sum[:]), sql.Named("masked", sec.String()), sql.Named("template", template)); err != nil {
				tx.Rollback()
				return fmt.Errorf("bulk insert %d: %w", i, err)
			}
			batch = append(batch, sec.Reveal())
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
		for _, s := range batch {
			fmt.Fprintln(w, s)
		}
		made += len(batch)
	}
	el := time.Since(start)
	fmt.Printf("seed: bulk path added %d tokens in %s: %.0f tokens/s; the database holds %d bench tokens\n",
		made, el.Round(time.Millisecond), float64(made)/el.Seconds(), have+made)
	return w.Flush()
}

func run(path, secretsPath string, n int, maxTime time.Duration) error {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := secret.NewHasher([]byte(Pepper))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	ev := func(action, tok string) tokend.Event {
		return tokend.Event{Time: now, Actor: "system", ActorName: "bench", Action: action, AppID: appID, TokenID: tok}
	}
	app := tokend.App{ID: appID, Name: "bench", TokenPrefix: "bench", CreatedAt: now, UpdatedAt: now, Version: 1}
	if err := st.CreateApp(ctx, app, ev(tokend.ActionAppCreate, "")); err != nil && !errors.Is(err, tokend.ErrConflict) {
		return err
	}
	have := 0
	if b, err := os.ReadFile(secretsPath); err == nil {
		have = bytes.Count(b, []byte("\n"))
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(secretsPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()

	start := time.Now()
	last := start
	made := 0
	for i := have; i < n; i++ {
		if time.Since(start) > maxTime {
			fmt.Printf("seed: stopped by --max-time %s\n", maxTime)
			break
		}
		sec, err := secret.Generate("bench")
		if err != nil {
			return err
		}
		sum := h.Sum(sec.Reveal())
		id := fmt.Sprintf("tok_bench%013d", i)
		t := tokend.Token{
			ID: id, AppID: appID, Name: fmt.Sprintf("t%07d", i), Type: tokend.TypeStandard,
			Access: tokend.AccessReadOnly, Status: tokend.StatusActive, Masked: sec.String(),
			CreatedAt: now, CreatedBy: "system", UpdatedAt: now, Version: 1, SecretHash: sum[:],
		}
		if err := st.CreateToken(ctx, t, ev(tokend.ActionTokenCreate, id)); err != nil {
			return fmt.Errorf("token %d: %w", i, err)
		}
		// The secret is written only once its token is stored.
		fmt.Fprintln(w, sec.Reveal())
		made++
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			el := time.Since(start)
			fmt.Printf("seed: %d created in %s (%.0f/s), %d in all\n", made, el.Round(time.Second), float64(made)/el.Seconds(), have+made)
		}
	}
	el := time.Since(start)
	fmt.Printf("seed: created %d tokens in %s: %.0f tokens/s; the database holds %d bench tokens\n",
		made, el.Round(time.Millisecond), float64(made)/el.Seconds(), have+made)
	return w.Flush()
}
