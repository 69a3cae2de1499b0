package main

import (
	"fmt"
	"iter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// auditCmd is `tokend audit`: who did what to which token, when, from where.
func auditCmd(e env) *cobra.Command {
	var (
		o  client.EventListOptions
		lf logFlags
	)
	cmd := &cobra.Command{
		Use:   "audit [flags]",
		Short: "Show the audit log, newest first",
		Long: `Show the audit log, newest first: who did what, when, from where.

The token being audited is --token-id: --token is the admin token that
authenticates this command, as for every API verb.

The log is a hash chain: "tokend audit verify" checks it and "tokend audit
export" streams it with its hashes, both against the database itself.`,
		Example: `  tokend audit --app app_123 --since 24h
  tokend audit --token-id tok_123 --action token.rotate --json
  tokend audit verify --data-dir /var/lib/tokend
  tokend audit export --format jsonl > audit.jsonl`,
		Args: cobra.NoArgs,
	}
	f := addAPIFlags(cmd, e)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var err error
		if o.Since, o.Until, err = lf.times(); err != nil {
			return err
		}
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		page, err := listPages(lf.all, func() (tokend.Page[tokend.Event], error) { return c.Events(cmd.Context(), o) },
			c.AllEvents(cmd.Context(), o))
		if err != nil {
			return err
		}
		return printPage(e, f.json, page, "No audit events match.", []string{"TIME", "ACTOR", "ACTION", "APP", "TOKEN", "IP"},
			func(ev tokend.Event) []string {
				return []string{fmtTime(ev.Time), nonEmpty(ev.Actor), ev.Action,
					nonEmpty(ev.AppID), nonEmpty(ev.TokenID), nonEmpty(ev.IP)}
			})
	}
	fl := cmd.Flags()
	fl.StringVar(&o.TokenID, "token-id", "", "only events about this token")
	fl.StringVar(&o.AppID, "app", "", "only events about this application")
	fl.StringVar(&o.Action, "action", "", "only events of this action, e.g. token.revoke")
	lf.register(fl, &o.Limit, &o.Cursor)
	explainErrors(cmd, f)
	cmd.AddCommand(auditVerifyCmd(e), auditExportCmd(e))
	return cmd
}

// logFlags are the flags of a log's listing (tokend audit, tokend events):
// its time range, page and --all.
type logFlags struct {
	since, until string
	all          bool
}

func (l *logFlags) register(fl *pflag.FlagSet, limit *int, cursor *string) {
	fl.StringVar(&l.since, "since", "", "only events at or after: RFC 3339, a date, or a duration ago such as 24h")
	fl.StringVar(&l.until, "until", "", "only events before: RFC 3339, a date, or a duration ago")
	pageFlags(fl, limit, cursor)
	fl.BoolVar(&l.all, "all", false, "follow cursors and list every page")
}

// pageFlags are --limit and --cursor, of every listing that pages.
func pageFlags(fl *pflag.FlagSet, limit *int, cursor *string) {
	fl.IntVar(limit, "limit", 0, "page size (server default 50, at most 200)")
	fl.StringVar(cursor, "cursor", "", "continue after this cursor (from a previous page)")
}

// times reads --since and --until; zero for a flag not given.
func (l logFlags) times() (since, until time.Time, err error) {
	now := time.Now()
	if l.since != "" {
		if since, err = parseSince("since", l.since, now); err != nil {
			return
		}
	}
	if l.until != "" {
		until, err = parseSince("until", l.until, now)
	}
	return
}

// listPages answers one page, or with all every page's items in one.
func listPages[T any](all bool, one func() (tokend.Page[T], error), every iter.Seq2[T, error]) (tokend.Page[T], error) {
	if !all {
		return one()
	}
	page := tokend.Page[T]{Items: []T{}}
	for it, err := range every {
		if err != nil {
			return tokend.Page[T]{}, err
		}
		page.Items = append(page.Items, it)
	}
	return page, nil
}

// printPage prints a page of a listing: as JSON, or as a table of a row
// per item with a hint at the next page (empty, on stderr, for none).
func printPage[T any](e env, asJSON bool, page tokend.Page[T], empty string, header []string, row func(T) []string) error {
	if asJSON {
		return printJSON(e.stdout, page)
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(e.stderr, empty)
		return nil
	}
	rows := make([][]string, 0, len(page.Items))
	for _, it := range page.Items {
		rows = append(rows, row(it))
	}
	if err := printTable(e.stdout, header, rows); err != nil {
		return err
	}
	moreHint(e.stderr, page.NextCursor)
	return nil
}
