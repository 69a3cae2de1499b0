package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/auditchain"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/sqlite"
)

// auditStore is what the audit chain's commands and jobs need of a store.
type auditStore interface {
	AuditSnapshot(ctx context.Context, fn func(auditchain.Source) error) error
	ChainsInTx() bool
	ChainAudit(ctx context.Context) (int64, error)
	RunChainer(ctx context.Context, every time.Duration, onErr func(error))
	CutAudit(ctx context.Context, before, now time.Time, sign func(auditchain.Checkpoint) []byte) (int64, error)
	SchemaVersion(ctx context.Context) (current, latest int64, err error)
}

var (
	_ auditStore = (*sqlite.Store)(nil)
	_ auditStore = (*postgres.Store)(nil)
)

// auditChainVersion is the migration that made the audit log a chain.
const auditChainVersion = 15

// openAuditReader opens the database of c for reading only, without the
// data directory's lock (verify and export may run beside serve), and
// answers the checkpoint key when the pepper is at hand (nil otherwise).
func openAuditReader(ctx context.Context, c config, getenv func(string) string) (auditStore, []byte, func() error, error) {
	var (
		st interface {
			auditStore
			Setting(ctx context.Context, key string) (string, error)
			Close() error
		}
		err error
	)
	if strings.HasPrefix(c.database, "postgres://") || strings.HasPrefix(c.database, "postgresql://") {
		var p *postgres.Store
		if p, err = postgres.OpenReader(ctx, c.database); err != nil {
			return nil, nil, nil, fmt.Errorf("opening the PostgreSQL database: %w", err)
		}
		st = p
	} else {
		path := c.database
		if path == "" {
			path = filepath.Join(c.dataDir, "tokend.db")
		}
		var s *sqlite.Store
		if s, err = sqlite.OpenReader(ctx, path); err != nil {
			return nil, nil, nil, err
		}
		st = s
	}
	fail := func(err error) (auditStore, []byte, func() error, error) {
		st.Close()
		return nil, nil, nil, err
	}
	current, _, err := st.SchemaVersion(ctx)
	if err != nil {
		return fail(err)
	}
	if current < auditChainVersion {
		return fail(fmt.Errorf("this database predates the audit chain (schema version %d): run tokend migrate, or start tokend serve, once to chain its audit log", current))
	}
	var key []byte
	p, err := readPepper(c, getenv)
	switch {
	case errors.Is(err, fs.ErrNotExist) && getenv("TOKEND_PEPPER") == "" && c.pepperFile == "":
		// No pepper: enough unless the chain starts at a checkpoint.
	case err != nil:
		return fail(err)
	default:
		want, err := st.Setting(ctx, pepperFingerprintKey)
		if err != nil && !errors.Is(err, tokend.ErrNotFound) {
			return fail(err)
		}
		if got := pepperFingerprint(p.value); want != "" && want != got {
			return fail(fmt.Errorf("wrong pepper: the database was used with the pepper whose fingerprint is %s, but %s has the fingerprint %s", shortFingerprint(want), p.source, shortFingerprint(got)))
		}
		key = auditchain.Key(p.value)
	}
	return st, key, st.Close, nil
}

// auditVerifyCmd is `tokend audit verify`.
func auditVerifyCmd(e env) *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain, offline, against the database",
		Long: `Walk the audit log's hash chain in the database and name the first row that
was changed, deleted, or inserted out of order (exit status 1), or count the
rows when it is intact (exit status 0).

It reads the database directly (--data-dir or --database), read-only and
beside a running tokend: what an auditor needs is a check that does not
trust the server it audits. A retention checkpoint's signature needs the
pepper (TOKEND_PEPPER, --pepper-file, or <data-dir>/pepper); without one,
a chain that starts at the first row ever is still checked.`,
		Example: `  tokend audit verify --data-dir /var/lib/tokend
  TOKEND_PEPPER=… tokend audit verify --database postgres://…`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.getenv); err != nil {
				return err
			}
			st, key, closeStore, err := openAuditReader(cmd.Context(), c, e.getenv)
			if err != nil {
				return err
			}
			defer closeStore()
			var rep auditchain.Report
			err = st.AuditSnapshot(cmd.Context(), func(src auditchain.Source) error {
				var err error
				rep, err = auditchain.Verify(cmd.Context(), src, auditchain.Options{Key: key, PendingIsBroken: st.ChainsInTx()})
				return err
			})
			var broken *auditchain.Broken
			if errors.As(err, &broken) {
				return fmt.Errorf("audit log tampered with: %w", err)
			}
			if err != nil {
				return err
			}
			start := "the first row ever written"
			if rep.Start != nil {
				start = fmt.Sprintf("the signed retention checkpoint at position %d (cut %s)", rep.Start.Pos, rep.Start.CutAt.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(e.stdout, "audit log intact: %d rows verified, from %s to position %d (hash %x)\n", rep.Rows, start, rep.Head.Pos, rep.Head.Hash)
			if rep.Pending > 0 {
				fmt.Fprintf(e.stdout, "%d newer rows are not chained yet (the oldest: %s); a running tokend chains them within a second, so verify again to include them\n", rep.Pending, rep.OldestPending.Name())
			}
			return nil
		},
	}
	storageFlags(cmd.Flags(), &c)
	return cmd
}

// exportLine is one row of `tokend audit export --format jsonl`: every
// hashed field exactly as hashed (see package auditchain), its position,
// and the hashes in hex.
type exportLine struct {
	V         int    `json:"v"`
	Pos       int64  `json:"pos"`
	ID        int64  `json:"id"`
	Time      string `json:"time"`
	Actor     string `json:"actor"`
	ActorName string `json:"actor_name"`
	IP        string `json:"ip"`
	Action    string `json:"action"`
	AppID     string `json:"app_id"`
	TokenID   string `json:"token_id"`
	Details   string `json:"details"`
	PrevHash  string `json:"prev_hash"`
	Hash      string `json:"hash"`
}

// auditExportCmd is `tokend audit export`.
func auditExportCmd(e env) *cobra.Command {
	var (
		c             config
		format, since string
	)
	cmd := &cobra.Command{
		Use:   "export --format jsonl [--since TIME|POSITION]",
		Short: "Stream the audit log with its hashes, for an off-site archive",
		Long: `Stream the audit log in chain order, one JSON object a line: the position,
every hashed field exactly as hashed (details is the canonical JSON text),
prev_hash and hash in hex. The archive can be verified without tokend and
continued with --since its last position plus one (docs/operations.md).

It reads the database directly (--data-dir or --database), read-only and
beside a running tokend. Rows not chained yet are left for the next export.`,
		Example: `  tokend audit export --format jsonl > audit.jsonl
  tokend audit export --format jsonl --since 1201 >> audit.jsonl
  tokend audit export --format jsonl --since 2026-01-01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.getenv); err != nil {
				return err
			}
			if format != "jsonl" {
				return fmt.Errorf("--format: %q is not a format tokend exports; use jsonl", format)
			}
			var (
				from   int64
				fromAt time.Time
			)
			if since != "" {
				if n, err := strconv.ParseInt(since, 10, 64); err == nil {
					if n < 1 {
						return fmt.Errorf("--since: position %d: positions start at 1", n)
					}
					from = n - 1
				} else {
					at, err := parseSince("since", since, time.Now())
					if err != nil {
						return fmt.Errorf("%w (or a position in the chain, a whole number)", err)
					}
					fromAt = at
				}
			}
			st, _, closeStore, err := openAuditReader(cmd.Context(), c, e.getenv)
			if err != nil {
				return err
			}
			defer closeStore()
			w := bufio.NewWriter(e.stdout)
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			started := fromAt.IsZero()
			err = st.AuditSnapshot(cmd.Context(), func(src auditchain.Source) error {
				return src.Rows(cmd.Context(), from, func(r auditchain.Row) error {
					// From the first row written at or after --since on,
					// every row: an archive has no holes.
					if r.Gone {
						return fmt.Errorf("position %d: audit row %d is gone from the database, its place in the chain left: run tokend audit verify", r.Pos, r.ID)
					}
					if started = started || !r.Time.Before(fromAt); !started {
						return nil
					}
					f := r.Fields()
					return enc.Encode(exportLine{
						V: 1, Pos: r.Pos, ID: r.ID, Time: f[1], Actor: r.Actor, ActorName: r.ActorName, IP: r.IP,
						Action: r.Action, AppID: r.AppID, TokenID: r.TokenID, Details: string(r.Details),
						PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
					})
				})
			})
			if err != nil {
				return err
			}
			return w.Flush()
		},
	}
	storageFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&format, "format", "", "output format: jsonl (required)")
	cmd.Flags().StringVar(&since, "since", "", "start at this position in the chain (a whole number), or at the first row written at or after this time (RFC 3339, a date, or a duration ago such as 24h)")
	return cmd
}

// parseRetention reads --audit-retention: a duration such as 365d or
// 8760h; empty or 0 keeps the audit log forever.
func parseRetention(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	td, err := tokend.ParseDuration(s)
	d := time.Duration(td)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--audit-retention: %q is not a duration such as 365d or 720h (0 keeps the audit log forever)", s)
	}
	if d > 0 && d < time.Hour {
		return 0, fmt.Errorf("--audit-retention: %s is shorter than an hour; keep the audit log at least that long (0 keeps it forever)", s)
	}
	return d, nil
}

// auditRetentionEvery is how often retention cuts the audit log.
const auditRetentionEvery = time.Hour

// startAuditJobs starts the audit chain's background work: the chainer
// (PostgreSQL, where rows are chained after their commit) and, with a
// retention, the hourly cut (on PostgreSQL by one instance at a time).
// stop ends both.
func startAuditJobs(ctx context.Context, b *backend, retention time.Duration, log *slog.Logger) (stop func()) {
	st, ok := b.store.(auditStore)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{}, 2)
	go func() {
		st.RunChainer(ctx, time.Second, func(err error) { log.Error("chaining the audit log", "err", err) })
		done <- struct{}{}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		if retention <= 0 {
			return
		}
		key := auditchain.Key(b.pepper)
		sign := func(cp auditchain.Checkpoint) []byte { return cp.Sign(key) }
		lead, _ := b.store.(interface {
			Lead(ctx context.Context, name string, fn func(context.Context) error) (bool, error)
		})
		t := time.NewTicker(auditRetentionEvery)
		defer t.Stop()
		for {
			cut := func(ctx context.Context) error {
				// Rows not chained yet are chained first, so that the cut
				// leaves none behind it.
				if _, err := st.ChainAudit(ctx); err != nil {
					return err
				}
				now := time.Now()
				n, err := st.CutAudit(ctx, now.Add(-retention), now, sign)
				if n > 0 {
					log.Info("audit retention: deleted old rows and recorded a signed checkpoint", "rows", n, "retention", retention)
				}
				return err
			}
			var err error
			if lead != nil {
				_, err = lead.Lead(ctx, "audit-retention", cut)
			} else {
				err = cut(ctx)
			}
			if err != nil && ctx.Err() == nil {
				log.Error("audit retention", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done; <-done }
}
