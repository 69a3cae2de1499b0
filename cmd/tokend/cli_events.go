package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// eventsCmd is `tokend events`: what happened to tokens, as webhooks and
// mail hear of it (docs/events.md).
func eventsCmd(e env) *cobra.Command {
	var (
		o            client.NotificationListOptions
		since, until string
		all          bool
	)
	cmd := &cobra.Command{
		Use:   "events [flags]",
		Short: "Show events (token.created, token.expiring…), newest first",
		Long: `Show events, newest first: what webhooks and mail hear of, such as
token.created, token.revoked, token.expiring or token.rotated_secret_used.

The token the events are about is --token-id: --token is the admin token
that authenticates this command, as for every API verb.`,
		Example: `  tokend events --type token.expiring
  tokend events --app app_123 --since 24h --json`,
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
		var page tokend.Page[tokend.Notification]
		if all {
			page.Items = []tokend.Notification{}
			for n, err := range c.AllNotifications(cmd.Context(), o) {
				if err != nil {
					return err
				}
				page.Items = append(page.Items, n)
			}
		} else if page, err = c.Notifications(cmd.Context(), o); err != nil {
			return err
		}
		if f.json {
			return printJSON(e.stdout, page)
		}
		if len(page.Items) == 0 {
			fmt.Fprintln(e.stderr, "No events match.")
			return nil
		}
		rows := make([][]string, 0, len(page.Items))
		for _, n := range page.Items {
			rows = append(rows, []string{n.OccurredAt.UTC().Format(time.RFC3339), n.Type,
				nonEmpty(n.AppID), nonEmpty(n.TokenID), actorOf(n.Actor), n.ID})
		}
		if err := printTable(e.stdout, []string{"TIME", "TYPE", "APP", "TOKEN", "ACTOR", "ID"}, rows); err != nil {
			return err
		}
		moreHint(e.stderr, page.NextCursor)
		return nil
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Type, "type", "", "only events of this type, e.g. token.expiring")
	fl.StringVar(&o.TokenID, "token-id", "", "only events about this token")
	fl.StringVar(&o.AppID, "app", "", "only events about this application")
	fl.StringVar(&since, "since", "", "only events at or after: RFC 3339, a date, or a duration ago such as 24h")
	fl.StringVar(&until, "until", "", "only events before: RFC 3339, a date, or a duration ago")
	fl.IntVar(&o.Limit, "limit", 0, "page size (server default 50, at most 200)")
	fl.StringVar(&o.Cursor, "cursor", "", "continue after this cursor (from a previous page)")
	fl.BoolVar(&all, "all", false, "follow cursors and list every page")
	explainErrors(cmd, f)
	return cmd
}

// actorOf shows who caused an event: "system", or kind:id.
func actorOf(a tokend.EventActor) string {
	if a.Type == "system" || a.ID == "" {
		return nonEmpty(a.Type)
	}
	return a.Type + ":" + a.ID
}
