package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// tokenCmd is `tokend token`: create, list, inspect, edit, disable, enable,
// revoke, rotate and delete tokens.
func tokenCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create and manage API tokens",
		Long: `Create and manage API tokens through the tokend server's REST API.

The server is --server or TOKEND_URL (default ` + defaultServer + `); the admin
token is TOKEND_TOKEN or --token.`,
	}
	f := addAPIFlags(cmd, e)
	cmd.AddCommand(
		tokenCreateCmd(e, f), tokenListCmd(e, f), tokenGetCmd(e, f), tokenEditCmd(e, f),
		tokenStateCmd(e, f, "disable", "Disable a token until it is enabled again", "Disabled", (*client.Client).DisableToken),
		tokenStateCmd(e, f, "enable", "Enable a disabled token", "Enabled", (*client.Client).EnableToken),
		tokenStateCmd(e, f, "revoke", "Revoke a token for good (it stays listed for the audit)", "Revoked", (*client.Client).RevokeToken),
		tokenRotateCmd(e, f), tokenDeleteCmd(e, f), tokenUsageCmd(e, f), tokenActivityCmd(e, f),
	)
	explainErrors(cmd, f)
	return cmd
}

func tokenCreateCmd(e env, f *apiFlags) *cobra.Command {
	var (
		in                          tokend.TokenInput
		typ, access, expiresAt      string
		rateLimit, metadata         string
		maxUses                     int64
		perms, allowIPs, allowOrigs []string
		scopeOwner                  string
		scopeApps                   []string
	)
	cmd := &cobra.Command{
		Use:   "create --app APP --name NAME [flags]",
		Short: "Create a token and print its secret (shown only once)",
		Example: `  tokend token create --app app_123 --name ci --expires-in 90d
  tokend token create --app app_123 --name "CI deploys" --owner acct_42 --owner-name "Acme Ltd"
  tokend token create --app app_123 --name orders-sync --permission orders:read --permission orders:write --rate-limit 1000/1h
  tokend token create --app app_system --name "backend for acct_42" --permission tokens:read --permission tokens:write --scope-owner acct_42`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			in.Type = tokend.TokenType(typ)
			in.Access = tokend.Access(access)
			in.Permissions, in.AllowedIPs, in.AllowedOrigins = perms, allowIPs, allowOrigs
			if len(perms) > 0 && !fl.Changed("access") {
				in.Access = tokend.AccessCustom
			}
			// Every flag the CLI reads itself is checked before one is
			// reported, as the server reports every invalid field.
			var bad []error
			if fl.Changed("expires-at") {
				t, err := parseTime("expires-at", expiresAt)
				bad = append(bad, err)
				in.ExpiresAt = &t
			}
			if fl.Changed("rate-limit") {
				rl, err := parseRateLimit(rateLimit)
				bad = append(bad, err)
				in.RateLimit = rl
			}
			if fl.Changed("max-uses") {
				in.MaxUses = &maxUses
			}
			if fl.Changed("scope-owner") || fl.Changed("scope-app") {
				in.Scope = &tokend.AdminScope{OwnerID: scopeOwner, AppIDs: scopeApps}
			}
			if fl.Changed("metadata") {
				m, err := parseMetadata(metadata)
				bad = append(bad, err)
				in.Metadata = m
			}
			if err := errors.Join(bad...); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			tok, sec, err := c.CreateToken(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printIssued(e.stdout, f.json, "Created", tok, sec)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in.AppID, "app", "", "id of the application the token belongs to (required)")
	fl.StringVar(&in.Name, "name", "", "name, unique among the app's (or the owner's) live tokens (required)")
	fl.StringVar(&in.OwnerID, "owner", "", "id of the customer or account the token belongs to (1 to 128 visible ASCII characters; fixed once created)")
	fl.StringVar(&in.OwnerName, "owner-name", "", "how the owner is shown, e.g. Acme Ltd (with --owner)")
	fl.StringVar(&in.Description, "description", "", "what the token is for")
	fl.StringVar(&typ, "type", "", "standard (server to server, the default) or plugin (browsers, from --allow-origin)")
	fl.StringVar(&access, "access", "", "read_only (the default), full_access, or custom (implied by --permission)")
	fl.StringSliceVar(&perms, "permission", nil, "a permission resource:action from the app's catalog (repeatable)")
	fl.StringVar(&in.ExpiresIn, "expires-in", "", "lifetime: 7d, 30d (the default), 90d, unlimited, or a duration such as 12h")
	fl.StringVar(&expiresAt, "expires-at", "", "explicit expiry, RFC 3339 or a date (instead of --expires-in)")
	fl.StringSliceVar(&allowIPs, "allow-ip", nil, "CIDR range or address the token may be used from (repeatable)")
	fl.StringSliceVar(&allowOrigs, "allow-origin", nil, "browser origin a plugin token may be used from (repeatable)")
	fl.StringVar(&rateLimit, "rate-limit", "", "successful verifications allowed per window, e.g. 1000/1h")
	fl.Int64Var(&maxUses, "max-uses", 0, "the token stops working after this many successful verifications")
	fl.StringVar(&metadata, "metadata", "", `JSON object returned on verification, e.g. {"team":"infra"}`)
	fl.StringVar(&scopeOwner, "scope-owner", "", "admin tokens (--app "+tokend.SystemAppID+"): act only on this owner's tokens; fixed for good")
	fl.StringSliceVar(&scopeApps, "scope-app", nil, "with --scope-owner: and only in this application (repeatable)")
	fl.BoolVar(&in.Decoy, "decoy", false, "make a decoy: it looks like a real token of the app, never verifies, and raises token.decoy_used whenever presented (plant it where intruders look); fixed for good")
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.MarkFlagRequired("name")
	cmd.MarkFlagsMutuallyExclusive("expires-in", "expires-at")
	return cmd
}

// printIssued shows a token with its new secret: the only time anyone sees
// the secret.
func printIssued(w io.Writer, asJSON bool, verb string, t tokend.Token, secret string) error {
	if asJSON {
		return printJSON(w, struct {
			Token  tokend.Token `json:"token"`
			Secret string       `json:"secret"`
		}{t, secret})
	}
	what := "token"
	if t.Decoy {
		what = "decoy token"
	}
	fmt.Fprintf(w, "%s %s %s (%s) of app %s.\n\n", verb, what, t.ID, t.Name, t.AppID)
	fmt.Fprintf(w, "  %s\n\n", secret)
	fmt.Fprintln(w, "Copy this secret now: it will not be shown again.")
	if t.PreviousSecretExpiresAt != nil {
		fmt.Fprintf(w, "The previous secret keeps working until %s.\n", fmtTime(*t.PreviousSecretExpiresAt))
	}
	return nil
}

func tokenListCmd(e env, f *apiFlags) *cobra.Command {
	var (
		o           client.TokenListOptions
		status, typ string
		all         bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tokens, newest first unless --sort says otherwise",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Status, o.Type = tokend.Status(status), tokend.TokenType(typ)
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var page tokend.Page[tokend.Token]
			if all {
				page.Items = []tokend.Token{}
				for t, err := range c.AllTokens(cmd.Context(), o) {
					if err != nil {
						return err
					}
					page.Items = append(page.Items, t)
				}
			} else if page, err = c.Tokens(cmd.Context(), o); err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, page)
			}
			if len(page.Items) == 0 {
				fmt.Fprintln(e.stderr, "No tokens match.")
				return nil
			}
			apps := appNames(cmd.Context(), c)
			rows := make([][]string, 0, len(page.Items))
			for _, t := range page.Items {
				rows = append(rows, []string{t.ID, t.Name, fmtApp(apps, t.AppID), fmtOwner(t), string(t.Type), string(t.Access), string(t.Status),
					fmtTimePtr(t.ExpiresAt, "never"), fmtTimePtr(t.LastUsedAt, "never")})
			}
			if err := printTable(e.stdout, []string{"ID", "NAME", "APP", "OWNER", "TYPE", "ACCESS", "STATUS", "EXPIRES", "LAST USED"}, rows); err != nil {
				return err
			}
			moreHint(e.stderr, page.NextCursor)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.AppID, "app", "", "only tokens of this application")
	fl.StringVar(&o.OwnerID, "owner", "", "only tokens of this owner (customer or account id)")
	fl.StringVar(&status, "status", "", "only tokens with this status: active, disabled, revoked or expired")
	fl.StringVar(&typ, "type", "", "only tokens of this type: standard or plugin")
	fl.StringVar(&o.Query, "q", "", "only tokens whose name contains this (case-insensitive), with this id (tok_…), or whose secret ends with these 4 characters")
	fl.StringVar(&o.UnusedFor, "unused-for", "", "only tokens not used for this many days, e.g. 30d (never used: since creation)")
	fl.StringVar(&o.Sort, "sort", "", "sort by name, created_at, expires_at or last_used_at (default created_at)")
	fl.StringVar(&o.Order, "order", "", "asc or desc (default: newest or most recent first, A to Z, soonest expiry first)")
	fl.IntVar(&o.Limit, "limit", 0, "page size (server default 50, at most 200)")
	fl.StringVar(&o.Cursor, "cursor", "", "continue after this cursor (from a previous page)")
	fl.BoolVar(&all, "all", false, "follow cursors and list every page")
	fl.BoolVar(&o.Decoy, "decoy", false, "list only decoy tokens (left out otherwise)")
	return cmd
}

func tokenGetCmd(e env, f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Aliases: []string{"view", "show"},
		Short:   "Show a token",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			t, err := c.Token(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printToken(e.stdout, f.json, t)
		},
	}
}

func printToken(w io.Writer, asJSON bool, t tokend.Token) error {
	if asJSON {
		return printJSON(w, t)
	}
	rate := fmtRateLimit(t.RateLimit)
	uses := strconv.FormatInt(t.UseCount, 10)
	if t.MaxUses != nil {
		uses = fmt.Sprintf("%d of at most %d", t.UseCount, *t.MaxUses)
	}
	meta := "-"
	if t.Metadata != nil {
		b, err := jsonCompact(t.Metadata)
		if err != nil {
			return err
		}
		meta = b
	}
	lastUsed := fmtTimePtr(t.LastUsedAt, "never")
	if t.LastUsedAt != nil && t.LastUsedIP != "" {
		lastUsed += " from " + t.LastUsedIP
	}
	fields := []field{
		{"id", t.ID},
		{"name", t.Name},
		{"app", t.AppID},
		{"owner", fmtOwner(t)},
		{"description", nonEmpty(t.Description)},
		{"status", string(t.Status)},
		{"type", string(t.Type)},
		{"access", string(t.Access)},
		{"permissions", fmtList(t.Permissions)},
		{"expires", fmtTimePtr(t.ExpiresAt, "never")},
		{"allowed ips", fmtList(t.AllowedIPs)},
		{"allowed origins", fmtList(t.AllowedOrigins)},
		{"rate limit", rate},
		{"uses", uses},
		{"metadata", meta},
		{"secret", t.Masked},
		{"created", fmtTime(t.CreatedAt) + " by " + nonEmpty(t.CreatedBy)},
		{"updated", fmtTime(t.UpdatedAt)},
		{"last used", lastUsed},
	}
	if t.RevokedAt != nil {
		fields = append(fields, field{"revoked", fmtTime(*t.RevokedAt)})
	}
	if t.PreviousSecretExpiresAt != nil {
		fields = append(fields, field{"previous secret until", fmtTime(*t.PreviousSecretExpiresAt)})
	}
	if t.Scope != nil {
		scope := "owner " + t.Scope.OwnerID + ", " + "every application"
		if len(t.Scope.AppIDs) > 0 {
			scope = "owner " + t.Scope.OwnerID + ", applications " + fmtList(t.Scope.AppIDs)
		}
		fields = append(fields, field{"scope", scope})
	}
	if t.Decoy {
		fields = append(fields, field{"decoy", "yes: it never verifies, and its use raises token.decoy_used"})
	}
	// The networks, most recently seen first, one line each: only the
	// answer for one token (token show) has them.
	for _, n := range t.Networks {
		fields = append(fields, field{"network", n.Network + " (first seen " + fmtTime(n.FirstSeen) + ", last seen " + fmtTime(n.LastSeen) + ")"})
	}
	fields = append(fields, field{"version", strconv.FormatInt(t.Version, 10)})
	return printFields(w, fields)
}

// fmtOwner shows a token's owner: its name and id, its id alone, or "-".
// appNames answers the name of every application the admin token may
// read, by id; none when it may not (the table then shows ids alone).
func appNames(ctx context.Context, c *client.Client) map[string]string {
	names := map[string]string{}
	for a, err := range c.AllApps(ctx, client.ListOptions{Limit: 200}) {
		if err != nil {
			return names
		}
		names[a.ID] = a.Name
	}
	return names
}

// fmtApp writes an application as the owner column does: "Shop (app_…)".
func fmtApp(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return n + " (" + id + ")"
	}
	return id
}

func fmtOwner(t tokend.Token) string {
	switch {
	case t.OwnerID == "":
		return "-"
	case t.OwnerName == "":
		return t.OwnerID
	}
	return t.OwnerName + " (" + t.OwnerID + ")"
}

func tokenEditCmd(e env, f *apiFlags) *cobra.Command {
	var (
		ownerName                                                          string
		name, desc, typ, access, expiresIn, expiresAt, rateLimit, metadata string
		perms, allowIPs, allowOrigs                                        []string
		maxUses, version                                                   int64
		noExpiry, clearIPs, clearOrigins, clearRate, clearMax, clearMeta   bool
	)
	cmd := &cobra.Command{
		Use:   "edit ID [flags]",
		Short: "Change a token's settings; only the flags given are changed",
		Example: `  tokend token edit tok_123 --name deploy --rate-limit 500/1m
  tokend token edit tok_123 --no-expiry --clear-max-uses
  tokend token edit tok_123 --allow-ip 10.0.0.0/8 --allow-ip 2001:db8::/32 --if-version 4`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var p tokend.TokenPatch
			null := func(flag, field string, set bool) {
				if fl.Changed(flag) && set {
					p.Null = append(p.Null, field)
				}
			}
			if fl.Changed("owner-name") {
				p.OwnerName = &ownerName
			}
			if fl.Changed("name") {
				p.Name = &name
			}
			if fl.Changed("description") {
				p.Description = &desc
			}
			p.Type = changedAs[tokend.TokenType](fl, "type", typ)
			p.Access = changedAs[tokend.Access](fl, "access", access)
			if fl.Changed("permission") {
				p.Permissions = &perms
			}
			if fl.Changed("expires-in") {
				p.ExpiresIn = &expiresIn
			}
			var bad []error // as in create: every flag checked first
			if fl.Changed("expires-at") {
				t, err := parseTime("expires-at", expiresAt)
				bad = append(bad, err)
				p.ExpiresAt = &t
			}
			null("no-expiry", "expires_at", noExpiry)
			if fl.Changed("allow-ip") {
				p.AllowedIPs = &allowIPs
			}
			null("clear-allow-ips", "allowed_ips", clearIPs)
			if fl.Changed("allow-origin") {
				p.AllowedOrigins = &allowOrigs
			}
			null("clear-allow-origins", "allowed_origins", clearOrigins)
			if fl.Changed("rate-limit") {
				rl, err := parseRateLimit(rateLimit)
				bad = append(bad, err)
				p.RateLimit = rl
			}
			null("clear-rate-limit", "rate_limit", clearRate)
			if fl.Changed("max-uses") {
				p.MaxUses = &maxUses
			}
			null("clear-max-uses", "max_uses", clearMax)
			if fl.Changed("metadata") {
				m, err := parseMetadata(metadata)
				bad = append(bad, err)
				p.Metadata = &m
			}
			null("clear-metadata", "metadata", clearMeta)
			if err := errors.Join(bad...); err != nil {
				return err
			}
			if p.Empty() {
				return fmt.Errorf("nothing to change: give at least one flag to edit (see tokend token edit --help)")
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			t, err := c.UpdateToken(cmd.Context(), args[0], p, client.IfVersion(version))
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, t)
			}
			fmt.Fprintf(e.stdout, "Updated token %s (%s).\n\n", t.ID, t.Name)
			return printToken(e.stdout, false, t)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name")
	fl.StringVar(&desc, "description", "", `new description ("" to clear it)`)
	fl.StringVar(&ownerName, "owner-name", "", `new owner name ("" to clear it; the owner id cannot change)`)
	fl.StringVar(&typ, "type", "", "standard or plugin")
	fl.StringVar(&access, "access", "", "read_only, full_access or custom")
	fl.StringSliceVar(&perms, "permission", nil, "replace the permissions with these (repeatable)")
	fl.StringVar(&expiresIn, "expires-in", "", "new lifetime from now: 7d, 30d, 90d, unlimited or a duration")
	fl.StringVar(&expiresAt, "expires-at", "", "new expiry, RFC 3339 or a date")
	fl.BoolVar(&noExpiry, "no-expiry", false, "remove the expiry: the token never expires")
	fl.StringSliceVar(&allowIPs, "allow-ip", nil, "replace the allowed IP ranges with these (repeatable)")
	fl.BoolVar(&clearIPs, "clear-allow-ips", false, "allow the token from any address")
	fl.StringSliceVar(&allowOrigs, "allow-origin", nil, "replace the allowed browser origins with these (repeatable)")
	fl.BoolVar(&clearOrigins, "clear-allow-origins", false, "remove every allowed browser origin")
	fl.StringVar(&rateLimit, "rate-limit", "", "new rate limit, e.g. 1000/1h")
	fl.BoolVar(&clearRate, "clear-rate-limit", false, "remove the rate limit")
	fl.Int64Var(&maxUses, "max-uses", 0, "new maximum number of successful verifications")
	fl.BoolVar(&clearMax, "clear-max-uses", false, "remove the maximum number of uses")
	fl.StringVar(&metadata, "metadata", "", "replace the metadata with this JSON object")
	fl.BoolVar(&clearMeta, "clear-metadata", false, "remove the metadata")
	addIfVersion(cmd, &version)
	cmd.MarkFlagsMutuallyExclusive("expires-in", "expires-at", "no-expiry")
	cmd.MarkFlagsMutuallyExclusive("allow-ip", "clear-allow-ips")
	cmd.MarkFlagsMutuallyExclusive("allow-origin", "clear-allow-origins")
	cmd.MarkFlagsMutuallyExclusive("rate-limit", "clear-rate-limit")
	cmd.MarkFlagsMutuallyExclusive("max-uses", "clear-max-uses")
	cmd.MarkFlagsMutuallyExclusive("metadata", "clear-metadata")
	return cmd
}

func addIfVersion(cmd *cobra.Command, v *int64) {
	cmd.Flags().Int64Var(v, "if-version", 0, "fail unless the resource is still at this version (see get)")
}

// tokenStateCmd makes disable, enable and revoke.
func tokenStateCmd(e env, f *apiFlags, verb, short, done string,
	call func(*client.Client, context.Context, string, ...client.RequestOption) (tokend.Token, error)) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			t, err := call(c, cmd.Context(), args[0], client.IfVersion(version))
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, t)
			}
			fmt.Fprintf(e.stdout, "%s token %s (%s); its status is now %s.\n", done, t.ID, t.Name, t.Status)
			return nil
		},
	}
	addIfVersion(cmd, &version)
	return cmd
}

func tokenRotateCmd(e env, f *apiFlags) *cobra.Command {
	var (
		grace   string
		version int64
	)
	cmd := &cobra.Command{
		Use:   "rotate ID [--grace 1h]",
		Short: "Give a token a new secret (shown only once), keeping its id and settings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var g tokend.Duration
			if grace != "" {
				d, err := tokend.ParseDuration(grace)
				if err != nil {
					return fmt.Errorf("invalid --grace: %w", err)
				}
				g = d
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			t, sec, err := c.RotateToken(cmd.Context(), args[0], g, client.IfVersion(version))
			if err != nil {
				return err
			}
			return printIssued(e.stdout, f.json, "Rotated", t, sec)
		},
	}
	cmd.Flags().StringVar(&grace, "grace", "", "how long the old secret keeps working, e.g. 1h (default: it stops at once)")
	addIfVersion(cmd, &version)
	return cmd
}

func tokenDeleteCmd(e env, f *apiFlags) *cobra.Command {
	var (
		yes     bool
		version int64
	)
	cmd := &cobra.Command{
		Use:   "delete ID [--yes]",
		Short: "Delete a token for good (revoke keeps it for the audit)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			what := "delete token " + args[0]
			if !yes && interactive(e.stdin) {
				t, err := c.Token(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				what = fmt.Sprintf("delete token %s (%s) of app %s", t.ID, t.Name, t.AppID)
			}
			if err := confirm(e, yes, what); err != nil {
				return err
			}
			if err := c.DeleteToken(cmd.Context(), args[0], client.IfVersion(version)); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintf(e.stdout, "Deleted token %s.\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addIfVersion(cmd, &version)
	return cmd
}

func tokenUsageCmd(e env, f *apiFlags) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "usage ID [--from TIME] [--to TIME]",
		Short: "Show a token's verifications per hour and outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var fromT, toT time.Time
			var err error
			now := time.Now()
			if from != "" {
				if fromT, err = parseSince("from", from, now); err != nil {
					return err
				}
			}
			if to != "" {
				if toT, err = parseSince("to", to, now); err != nil {
					return err
				}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			items, err := c.TokenUsage(cmd.Context(), args[0], fromT, toT)
			if err != nil {
				return err
			}
			if f.json {
				if items == nil {
					items = []tokend.UsageCount{}
				}
				return printJSON(e.stdout, struct {
					Items []tokend.UsageCount `json:"items"`
				}{items})
			}
			if len(items) == 0 {
				fmt.Fprintln(e.stderr, "No verifications in this period.")
				return nil
			}
			rows := make([][]string, 0, len(items))
			for _, u := range items {
				rows = append(rows, []string{fmtTime(u.Hour), string(u.Code), strconv.FormatInt(u.Count, 10)})
			}
			return printTable(e.stdout, []string{"HOUR", "CODE", "COUNT"}, rows)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "start: RFC 3339, a date, or a duration ago such as 24h (default: 7 days ago)")
	cmd.Flags().StringVar(&to, "to", "", "end: RFC 3339, a date, or a duration ago (default: now)")
	return cmd
}
