package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// webhookCmd is `tokend webhook`: the endpoints that receive signed events.
func webhookCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Manage webhook endpoints (signed event deliveries)",
		Long: `Manage webhook endpoints through the tokend server's REST API.

An endpoint receives the events it subscribes to (token.revoked,
token.rotated, ... or * for all) as signed POST requests (the Standard
Webhooks specification). Its signing secret is shown once, when it is
created or rotated.`,
	}
	f := addAPIFlags(cmd, e)
	cmd.AddCommand(webhookCreateCmd(e, f), webhookListCmd(e, f), webhookGetCmd(e, f), webhookEditCmd(e, f),
		webhookDeleteCmd(e, f), webhookRotateCmd(e, f), webhookTestCmd(e, f), webhookDeliveriesCmd(e, f), webhookRetryCmd(e, f))
	explainErrors(cmd, f)
	return cmd
}

func webhookCreateCmd(e env, f *apiFlags) *cobra.Command {
	var in tokend.WebhookInput
	cmd := &cobra.Command{
		Use:     "create --url URL --events TYPE,... [flags]",
		Short:   "Add a webhook endpoint and print its signing secret (shown only once)",
		Example: `  tokend webhook create --url https://api.example.com/hooks/tokend --events token.revoked,token.rotated`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			w, sec, err := c.CreateWebhook(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printWebhookSecret(e.stdout, f.json, "Created", w, sec)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in.URL, "url", "", "the endpoint's https URL (required)")
	fl.StringSliceVar(&in.Events, "events", nil, "event types to send, comma-separated, or * for all (required)")
	fl.StringVar(&in.AppID, "app", "", "only the events of this application (default: every application)")
	fl.StringVar(&in.Description, "description", "", "what the endpoint is for")
	_ = cmd.MarkFlagRequired("url")
	_ = cmd.MarkFlagRequired("events")
	return cmd
}

// printWebhookSecret shows an endpoint with its new signing secret: the
// only time anyone sees it.
func printWebhookSecret(w io.Writer, asJSON bool, verb string, wh tokend.Webhook, secret string) error {
	if asJSON {
		return printJSON(w, tokend.WebhookWithSecret{Webhook: wh, Secret: secret})
	}
	fmt.Fprintf(w, "%s webhook %s (%s).\n\nSigning secret:\n\n  %s\n\n", verb, wh.ID, wh.URL, secret)
	fmt.Fprintln(w, "Copy this secret now: it will not be shown again.")
	if wh.PreviousSecretUntil != nil {
		fmt.Fprintf(w, "The previous secret keeps signing alongside it until %s.\n", fmtTime(*wh.PreviousSecretUntil))
	}
	return nil
}

func webhookListCmd(e env, f *apiFlags) *cobra.Command {
	var o client.WebhookListOptions
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List webhook endpoints, oldest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			page, err := c.Webhooks(cmd.Context(), o)
			if err != nil {
				return err
			}
			return printPage(e, f.json, page, "No webhook endpoints.", []string{"ID", "URL", "APP", "EVENTS", "ENABLED", "FAILING SINCE"},
				func(w tokend.Webhook) []string {
					return []string{w.ID, w.URL, nonEmpty(w.AppID, "all"), fmtList(w.Events), fmtEnabled(w), fmtTimePtr(w.FailingSince, "-")}
				})
		},
	}
	cmd.Flags().StringVar(&o.AppID, "app", "", "only the endpoints limited to this application")
	pageFlags(cmd.Flags(), &o.Limit, &o.Cursor)
	return cmd
}

func fmtEnabled(w tokend.Webhook) string {
	switch {
	case w.Enabled:
		return "yes"
	case w.DisabledReason != "":
		return "no (" + w.DisabledReason + ")"
	}
	return "no"
}

func webhookGetCmd(e env, f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Aliases: []string{"view"},
		Short:   "Show a webhook endpoint",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			w, err := c.Webhook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printWebhook(e.stdout, f.json, w)
		},
	}
}

func printWebhook(w io.Writer, asJSON bool, wh tokend.Webhook) error {
	if asJSON {
		return printJSON(w, wh)
	}
	return printFields(w, []field{
		{"id", wh.ID},
		{"url", wh.URL},
		{"description", nonEmpty(oneLine(wh.Description), "-")},
		{"app", nonEmpty(wh.AppID, "all applications")},
		{"events", fmtList(wh.Events)},
		{"enabled", fmtEnabled(wh)},
		{"failing since", fmtTimePtr(wh.FailingSince, "-")},
		{"previous secret until", fmtTimePtr(wh.PreviousSecretUntil, "-")},
		{"created", fmtTime(wh.CreatedAt) + " by " + wh.CreatedBy},
		{"updated", fmtTime(wh.UpdatedAt)},
		{"version", strconv.FormatInt(wh.Version, 10)},
	})
}

// oneLine keeps a multi-line description on its line of a listing.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func webhookEditCmd(e env, f *apiFlags) *cobra.Command {
	var (
		url, description string
		events           []string
		enable, disable  bool
		version          int64
	)
	cmd := &cobra.Command{
		Use:     "edit ID [flags]",
		Short:   "Change, enable or disable a webhook endpoint; only the flags given are changed",
		Example: `  tokend webhook edit whk_123 --events '*' --enable`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var p tokend.WebhookPatch
			if fl.Changed("url") {
				p.URL = &url
			}
			if fl.Changed("events") {
				p.Events = &events
			}
			if fl.Changed("description") {
				p.Description = &description
			}
			if fl.Changed("enable") && enable {
				t := true
				p.Enabled = &t
			}
			if fl.Changed("disable") && disable {
				no := false
				p.Enabled = &no
			}
			if p.URL == nil && p.Events == nil && p.Description == nil && p.Enabled == nil {
				return fmt.Errorf("nothing to change: give at least one flag to edit (see tokend webhook edit --help)")
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			w, err := c.UpdateWebhook(cmd.Context(), args[0], p, client.IfVersion(version))
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, w)
			}
			fmt.Fprintf(e.stdout, "Updated webhook %s.\n\n", w.ID)
			return printWebhook(e.stdout, false, w)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&url, "url", "", "new https URL")
	fl.StringSliceVar(&events, "events", nil, "replace the event types, comma-separated, or * for all")
	fl.StringVar(&description, "description", "", "new description")
	fl.BoolVar(&enable, "enable", false, "enable the endpoint (clears why tokend disabled it)")
	fl.BoolVar(&disable, "disable", false, "stop sending to the endpoint")
	addIfVersion(cmd, &version)
	cmd.MarkFlagsMutuallyExclusive("enable", "disable")
	return cmd
}

func webhookDeleteCmd(e env, f *apiFlags) *cobra.Command {
	var (
		yes     bool
		version int64
	)
	cmd := &cobra.Command{
		Use:   "delete ID [--yes]",
		Short: "Delete a webhook endpoint and its deliveries",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			what := args[0]
			if !yes && interactive(e.stdin) {
				w, err := c.Webhook(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				what = fmt.Sprintf("%s (%s)", w.ID, w.URL)
			}
			if err := confirm(e, yes, "delete webhook "+what+" and its deliveries"); err != nil {
				return err
			}
			if err := c.DeleteWebhook(cmd.Context(), args[0], client.IfVersion(version)); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintf(e.stdout, "Deleted webhook %s.\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addIfVersion(cmd, &version)
	return cmd
}

func webhookRotateCmd(e env, f *apiFlags) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "rotate-secret ID",
		Short: "Give a webhook endpoint a new signing secret (shown only once); the old one signs alongside for 24 hours",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			w, sec, err := c.RotateWebhookSecret(cmd.Context(), args[0], client.IfVersion(version))
			if err != nil {
				return err
			}
			return printWebhookSecret(e.stdout, f.json, "Rotated the secret of", w, sec)
		},
	}
	addIfVersion(cmd, &version)
	return cmd
}

func webhookTestCmd(e env, f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "test ID",
		Short: "Send a webhook.test event to one endpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			id, err := c.TestWebhook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, tokend.WebhookTestAnswer{EventID: id})
			}
			fmt.Fprintf(e.stdout, "Sent test event %s to webhook %s; see tokend webhook deliveries %s.\n", id, args[0], args[0])
			return nil
		},
	}
}

func webhookDeliveriesCmd(e env, f *apiFlags) *cobra.Command {
	var o client.DeliveryListOptions
	cmd := &cobra.Command{
		Use:   "deliveries ID [--status pending|delivered|failed]",
		Short: "List the deliveries to a webhook endpoint, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			page, err := c.WebhookDeliveries(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			return printPage(e, f.json, page, "No deliveries.", []string{"ID", "CREATED", "EVENT", "STATUS", "HTTP", "ATTEMPTS", "NEXT RETRY", "ERROR"},
				func(d tokend.Delivery) []string {
					return []string{d.ID, fmtTime(d.CreatedAt), d.EventType, d.Status, fmtHTTPStatus(d.LastStatus),
						strconv.Itoa(d.Attempts), fmtTimePtr(d.NextAt, "-"), nonEmpty(oneLine(d.LastError), "-")}
				})
		},
	}
	cmd.Flags().StringVar(&o.Status, "status", "", "only pending, delivered or failed deliveries")
	pageFlags(cmd.Flags(), &o.Limit, &o.Cursor)
	return cmd
}

func fmtHTTPStatus(s *int) string {
	if s == nil {
		return "-"
	}
	return strconv.Itoa(*s)
}

func webhookRetryCmd(e env, f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID DELIVERY_ID",
		Short: "Send a delivery again now, whatever its state",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			d, err := c.RetryDelivery(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, d)
			}
			fmt.Fprintf(e.stdout, "Delivery %s of event %s is due again now.\n", d.ID, d.EventID)
			return nil
		},
	}
}
