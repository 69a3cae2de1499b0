package main

import (
	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// eventsCmd is `tokend events`: what happened to tokens, as webhooks and
// mail hear of it (docs/events.md).
func eventsCmd(e env) *cobra.Command {
	var (
		o  client.NotificationListOptions
		lf logFlags
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
		var err error
		if o.Since, o.Until, err = lf.times(); err != nil {
			return err
		}
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		page, err := listPages(lf.all, func() (tokend.Page[tokend.Notification], error) { return c.Notifications(cmd.Context(), o) },
			c.AllNotifications(cmd.Context(), o))
		if err != nil {
			return err
		}
		return printPage(e, f.json, page, "No events match.", []string{"TIME", "TYPE", "APP", "TOKEN", "ACTOR", "ID"},
			func(n tokend.Notification) []string {
				return []string{fmtTime(n.OccurredAt), n.Type,
					nonEmpty(n.AppID), nonEmpty(n.TokenID), actorOf(n.Actor), n.ID}
			})
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Type, "type", "", "only events of this type, e.g. token.expiring")
	fl.StringVar(&o.TokenID, "token-id", "", "only events about this token")
	fl.StringVar(&o.AppID, "app", "", "only events about this application")
	lf.register(fl, &o.Limit, &o.Cursor)
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
