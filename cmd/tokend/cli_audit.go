package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// auditCmd is `tokend audit`: who did what to which token, when, from where.
func auditCmd(e env) *cobra.Command {
	var (
		o            client.EventListOptions
		since, until string
		all          bool
	)
	cmd := &cobra.Command{
		Use:   "audit [flags]",
		Short: "Show the audit log, newest first",
		Long: `Show the audit log, newest first: who did what, when, from where.

The token being audited is --token-id: --token is the admin token that
authenticates this command, as for every API verb.`,
		Example: `  tokend audit --app app_123 --since 24h
  tokend audit --token-id tok_123 --action token.rotate --json`,
		Args: cobra.NoArgs,
	}
	f := addAPIFlags(cmd, e)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		now := time.Now()
		var err error
		if since != "" {
			if o.Since, err = parseSince("since", since, now); err != nil {
				return err
			}
		}
		if until != "" {
			if o.Until, err = parseSince("until", until, now); err != nil {
				return err
			}
		}
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		var page tokend.Page[tokend.Event]
		if all {
			page.Items = []tokend.Event{}
			for ev, err := range c.AllEvents(cmd.Context(), o) {
				if err != nil {
					return err
				}
				page.Items = append(page.Items, ev)
			}
		} else if page, err = c.Events(cmd.Context(), o); err != nil {
			return err
		}
		if f.json {
			return printJSON(e.stdout, page)
		}
		if len(page.Items) == 0 {
			fmt.Fprintln(e.stderr, "No audit events match.")
			return nil
		}
		rows := make([][]string, 0, len(page.Items))
		for _, ev := range page.Items {
			rows = append(rows, []string{ev.Time.UTC().Format(time.RFC3339), nonEmpty(ev.Actor), ev.Action,
				nonEmpty(ev.AppID), nonEmpty(ev.TokenID), nonEmpty(ev.IP)})
		}
		if err := printTable(e.stdout, []string{"TIME", "ACTOR", "ACTION", "APP", "TOKEN", "IP"}, rows); err != nil {
			return err
		}
		moreHint(e.stderr, page.NextCursor)
		return nil
	}
	fl := cmd.Flags()
	fl.StringVar(&o.TokenID, "token-id", "", "only events about this token")
	fl.StringVar(&o.AppID, "app", "", "only events about this application")
	fl.StringVar(&o.Action, "action", "", "only events of this action, e.g. token.revoke")
	fl.StringVar(&since, "since", "", "only events at or after: RFC 3339, a date, or a duration ago such as 24h")
	fl.StringVar(&until, "until", "", "only events before: RFC 3339, a date, or a duration ago")
	fl.IntVar(&o.Limit, "limit", 0, "page size (server default 50, at most 200)")
	fl.StringVar(&o.Cursor, "cursor", "", "continue after this cursor (from a previous page)")
	fl.BoolVar(&all, "all", false, "follow cursors and list every page")
	explainErrors(cmd, f)
	return cmd
}
