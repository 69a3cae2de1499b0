package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// appCmd is `tokend app`: the applications that own tokens, with their
// permission catalogs.
func appCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Create and manage applications (the owners of tokens)",
		Long: `Create and manage applications through the tokend server's REST API.

An application is a product or environment that owns tokens; its permission
catalog lists the resource:action permissions its tokens may be granted.`,
	}
	f := addAPIFlags(cmd, e)
	cmd.AddCommand(appCreateCmd(e, f), appListCmd(e, f), appGetCmd(e, f), appEditCmd(e, f), appDeleteCmd(e, f), appRevokeAllCmd(e, f), appRevokeOwnerCmd(e, f))
	explainErrors(cmd, f)
	return cmd
}

func appCreateCmd(e env, f *apiFlags) *cobra.Command {
	var (
		in                          tokend.AppInput
		lifetime, unused, ownerRate string
		notice                      string
		maxPerOwner                 int
		portal                      portalFlags
	)
	cmd := &cobra.Command{
		Use:     "create --name NAME [flags]",
		Short:   "Create an application",
		Example: `  tokend app create --name shop --prefix shop --permission orders:read --permission orders:write --max-lifetime 90d`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("max-lifetime") {
				d, err := tokend.ParseDuration(lifetime)
				if err != nil {
					return fmt.Errorf("invalid --max-lifetime: %w", err)
				}
				in.MaxTokenLifetime = &d
			}
			if cmd.Flags().Changed("disable-unused-after") {
				d, err := tokend.ParseDuration(unused)
				if err != nil {
					return fmt.Errorf("invalid --disable-unused-after: %w", err)
				}
				in.DisableUnusedAfter = &d
			}
			var err error
			if in.ExpiryNotice, err = durationFlag(cmd.Flags(), "expiry-notice", notice); err != nil {
				return err
			}
			if cmd.Flags().Changed("max-tokens-per-owner") {
				in.MaxTokensPerOwner = &maxPerOwner
			}
			if cmd.Flags().Changed("owner-rate-limit") {
				rl, err := parseRateLimit(ownerRate)
				if err != nil {
					return err
				}
				in.OwnerRateLimit = rl
			}
			if portal.changed(cmd.Flags()) {
				in.Portal = portal.apply(cmd.Flags(), nil)
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			a, err := c.CreateApp(cmd.Context(), in)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, a)
			}
			fmt.Fprintf(e.stdout, "Created app %s (%s).\n\n", a.ID, a.Name)
			return printApp(e.stdout, false, a)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in.Name, "name", "", "name of the application (required)")
	fl.StringVar(&in.TokenPrefix, "prefix", "", "prefix of its token secrets, e.g. shop (default tkd)")
	fl.StringSliceVar(&in.Permissions, "permission", nil, "a resource:action permission of its catalog (repeatable)")
	fl.StringVar(&lifetime, "max-lifetime", "", "longest lifetime its tokens may have, e.g. 90d")
	fl.StringVar(&unused, "disable-unused-after", "", "disable its active tokens unused for this long, e.g. 90d (1d to 36500d)")
	fl.StringVar(&notice, "expiry-notice", "", "also raise token.expiring this long before a token expires, besides 7d and 1d, e.g. 14d (1h to 365d)")
	fl.StringVar((*string)(&in.LeakPolicy), "leak-policy", "", "what a reported leak of a token's secret does: revoke (default), disable, or notify (token.leaked only)")
	fl.StringVar((*string)(&in.RotatedSecretPolicy), "rotated-secret-policy", "", "what presenting a secret replaced by rotation, after its grace, does besides answering ROTATED and raising token.rotated_secret_used: notify (default) or disable (also disables the token)")
	fl.IntVar(&maxPerOwner, "max-tokens-per-owner", 0, "most live tokens one owner may hold (1 to 1000000)")
	fl.StringVar(&ownerRate, "owner-rate-limit", "", "verifications allowed per window to all tokens of one owner together, e.g. 100/1m")
	portal.register(fl)
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func appListCmd(e env, f *apiFlags) *cobra.Command {
	var (
		o   client.ListOptions
		all bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List applications, oldest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var page tokend.Page[tokend.App]
			if all {
				page.Items = []tokend.App{}
				for a, err := range c.AllApps(cmd.Context(), o) {
					if err != nil {
						return err
					}
					page.Items = append(page.Items, a)
				}
			} else if page, err = c.Apps(cmd.Context(), o); err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, page)
			}
			if len(page.Items) == 0 {
				fmt.Fprintln(e.stderr, "No applications.")
				return nil
			}
			rows := make([][]string, 0, len(page.Items))
			for _, a := range page.Items {
				rows = append(rows, []string{a.ID, a.Name, a.TokenPrefix, strconv.Itoa(len(a.Permissions)), fmtLifetime(a.MaxTokenLifetime), fmtTime(a.CreatedAt)})
			}
			if err := printTable(e.stdout, []string{"ID", "NAME", "PREFIX", "PERMISSIONS", "MAX LIFETIME", "CREATED"}, rows); err != nil {
				return err
			}
			moreHint(e.stderr, page.NextCursor)
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Limit, "limit", 0, "page size (server default 50, at most 200)")
	cmd.Flags().StringVar(&o.Cursor, "cursor", "", "continue after this cursor (from a previous page)")
	cmd.Flags().BoolVar(&all, "all", false, "follow cursors and list every page")
	return cmd
}

func fmtLifetime(d *tokend.Duration) string {
	if d == nil {
		return "unlimited"
	}
	return fmtDuration(*d)
}

func appGetCmd(e env, f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Aliases: []string{"view"},
		Short:   "Show an application",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			a, err := c.App(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printApp(e.stdout, f.json, a)
		},
	}
}

func printApp(w io.Writer, asJSON bool, a tokend.App) error {
	if asJSON {
		return printJSON(w, a)
	}
	fields := []field{
		{"id", a.ID},
		{"name", a.Name},
		{"token prefix", a.TokenPrefix},
		{"permissions", fmtList(a.Permissions)},
		{"max token lifetime", fmtLifetime(a.MaxTokenLifetime)},
		{"disable unused", fmtUnusedPolicy(a.DisableUnusedAfter)},
		{"expiry notices", fmtExpiryNotices(a.ExpiryNotice)},
		{"leak policy", nonEmpty(string(a.LeakPolicy))},
		{"old secret reuse", nonEmpty(string(a.RotatedSecretPolicy))},
		{"tokens per owner", fmtMaxPerOwner(a.MaxTokensPerOwner)},
		{"owner rate limit", fmtRateLimit(a.OwnerRateLimit)},
	}
	if a.Portal != nil {
		fields = append(fields, field{"customer portal", fmtPortal(a.Portal)})
	}
	if a.System {
		fields = append(fields, field{"system", "yes: holds the admin tokens"})
	}
	fields = append(fields,
		field{"created", fmtTime(a.CreatedAt)},
		field{"updated", fmtTime(a.UpdatedAt)},
		field{"version", strconv.FormatInt(a.Version, 10)},
	)
	return printFields(w, fields)
}

func appEditCmd(e env, f *apiFlags) *cobra.Command {
	var (
		name, prefix, lifetime, unused, ownerRate string
		notice, leakPolicy, rotatedPolicy         string
		perms                                     []string
		clearPerms, noLifetime, noUnused          bool
		noNotice                                  bool
		noMaxPerOwner, noOwnerRate, noPortal      bool
		maxPerOwner                               int
		version                                   int64
		portal                                    portalFlags
	)
	cmd := &cobra.Command{
		Use:     "edit ID [flags]",
		Short:   "Change an application; only the flags given are changed",
		Example: `  tokend app edit app_123 --permission orders:read --permission refunds:write --no-max-lifetime`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var p tokend.AppPatch
			if fl.Changed("name") {
				p.Name = &name
			}
			if fl.Changed("prefix") {
				p.TokenPrefix = &prefix
			}
			if fl.Changed("permission") {
				p.Permissions = &perms
			}
			if fl.Changed("clear-permissions") && clearPerms {
				empty := []string{}
				p.Permissions = &empty
			}
			if fl.Changed("max-lifetime") {
				d, err := tokend.ParseDuration(lifetime)
				if err != nil {
					return fmt.Errorf("invalid --max-lifetime: %w", err)
				}
				p.MaxTokenLifetime = &d
			}
			if fl.Changed("no-max-lifetime") && noLifetime {
				p.Null = append(p.Null, "max_token_lifetime")
			}
			if fl.Changed("disable-unused-after") {
				d, err := tokend.ParseDuration(unused)
				if err != nil {
					return fmt.Errorf("invalid --disable-unused-after: %w", err)
				}
				p.DisableUnusedAfter = &d
			}
			if fl.Changed("no-disable-unused") && noUnused {
				p.Null = append(p.Null, "disable_unused_after")
			}
			var err error
			if p.ExpiryNotice, err = durationFlag(fl, "expiry-notice", notice); err != nil {
				return err
			}
			if fl.Changed("no-expiry-notice") && noNotice {
				p.Null = append(p.Null, "expiry_notice")
			}
			p.LeakPolicy = changedAs[tokend.LeakPolicy](fl, "leak-policy", leakPolicy)
			p.RotatedSecretPolicy = changedAs[tokend.RotatedSecretPolicy](fl, "rotated-secret-policy", rotatedPolicy)
			if fl.Changed("max-tokens-per-owner") {
				p.MaxTokensPerOwner = &maxPerOwner
			}
			if fl.Changed("no-max-tokens-per-owner") && noMaxPerOwner {
				p.Null = append(p.Null, "max_tokens_per_owner")
			}
			if fl.Changed("owner-rate-limit") {
				rl, err := parseRateLimit(ownerRate)
				if err != nil {
					return err
				}
				p.OwnerRateLimit = rl
			}
			if fl.Changed("no-owner-rate-limit") && noOwnerRate {
				p.Null = append(p.Null, "owner_rate_limit")
			}
			if fl.Changed("no-portal") && noPortal {
				p.Null = append(p.Null, "portal")
			}
			if p.Name == nil && p.TokenPrefix == nil && p.Permissions == nil && p.MaxTokenLifetime == nil && p.DisableUnusedAfter == nil && p.ExpiryNotice == nil &&
				p.LeakPolicy == nil && p.RotatedSecretPolicy == nil && p.MaxTokensPerOwner == nil && p.OwnerRateLimit == nil && len(p.Null) == 0 && !portal.changed(fl) {
				return fmt.Errorf("nothing to change: give at least one flag to edit (see tokend app edit --help)")
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if portal.changed(fl) {
				// The API replaces the portal settings as a whole: the
				// flags not given keep their current values.
				cur, err := c.App(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				p.Portal = portal.apply(fl, cur.Portal)
			}
			a, err := c.UpdateApp(cmd.Context(), args[0], p, client.IfVersion(version))
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, a)
			}
			fmt.Fprintf(e.stdout, "Updated app %s (%s).\n\n", a.ID, a.Name)
			return printApp(e.stdout, false, a)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name")
	fl.StringVar(&prefix, "prefix", "", "new prefix for secrets issued from now on")
	fl.StringSliceVar(&perms, "permission", nil, "replace the permission catalog with these (repeatable)")
	fl.BoolVar(&clearPerms, "clear-permissions", false, "empty the permission catalog")
	fl.StringVar(&lifetime, "max-lifetime", "", "new longest token lifetime, e.g. 90d")
	fl.BoolVar(&noLifetime, "no-max-lifetime", false, "remove the limit on token lifetime")
	fl.StringVar(&unused, "disable-unused-after", "", "disable active tokens unused for this long, e.g. 90d (1d to 36500d)")
	fl.BoolVar(&noUnused, "no-disable-unused", false, "stop disabling unused tokens")
	fl.StringVar(&notice, "expiry-notice", "", "also raise token.expiring this long before a token expires, besides 7d and 1d, e.g. 14d (1h to 365d)")
	fl.StringVar(&leakPolicy, "leak-policy", "", "what a reported leak of a token's secret does: revoke (default), disable, or notify (token.leaked only)")
	fl.StringVar(&rotatedPolicy, "rotated-secret-policy", "", "what presenting a secret replaced by rotation, after its grace, does besides answering ROTATED and raising token.rotated_secret_used: notify (default) or disable (also disables the token)")
	fl.BoolVar(&noNotice, "no-expiry-notice", false, "remove the application's own expiry notice (7d and 1d remain)")
	fl.IntVar(&maxPerOwner, "max-tokens-per-owner", 0, "most live tokens one owner may hold (1 to 1000000)")
	fl.BoolVar(&noMaxPerOwner, "no-max-tokens-per-owner", false, "remove the limit on tokens per owner")
	fl.StringVar(&ownerRate, "owner-rate-limit", "", "verifications allowed per window to all tokens of one owner together, e.g. 100/1m")
	fl.BoolVar(&noOwnerRate, "no-owner-rate-limit", false, "remove the owner rate limit")
	portal.register(fl)
	fl.BoolVar(&noPortal, "no-portal", false, "restore the customer portal's defaults (unbranded, not embeddable)")
	addIfVersion(cmd, &version)
	cmd.MarkFlagsMutuallyExclusive("permission", "clear-permissions")
	cmd.MarkFlagsMutuallyExclusive("max-lifetime", "no-max-lifetime")
	cmd.MarkFlagsMutuallyExclusive("disable-unused-after", "no-disable-unused")
	cmd.MarkFlagsMutuallyExclusive("expiry-notice", "no-expiry-notice")
	cmd.MarkFlagsMutuallyExclusive("max-tokens-per-owner", "no-max-tokens-per-owner")
	cmd.MarkFlagsMutuallyExclusive("owner-rate-limit", "no-owner-rate-limit")
	return cmd
}

func appDeleteCmd(e env, f *apiFlags) *cobra.Command {
	var (
		yes     bool
		version int64
	)
	cmd := &cobra.Command{
		Use:   "delete ID [--yes]",
		Short: "Delete an application and every one of its tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := confirmApp(cmd, e, c, yes, args[0], "delete app %s and all of its tokens"); err != nil {
				return err
			}
			if err := c.DeleteApp(cmd.Context(), args[0], client.IfVersion(version)); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintf(e.stdout, "Deleted app %s and its tokens.\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addIfVersion(cmd, &version)
	return cmd
}

func appRevokeAllCmd(e env, f *apiFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke-all ID [--yes]",
		Short: "Revoke every token of an application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := confirmApp(cmd, e, c, yes, args[0], "revoke every token of app %s"); err != nil {
				return err
			}
			n, err := c.RevokeAll(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printRevoked(e, f, n, "app "+args[0])
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// appRevokeOwnerCmd is `tokend app revoke-owner`: revoke-all for the tokens
// of one owner.
func appRevokeOwnerCmd(e env, f *apiFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "revoke-owner APP-ID OWNER-ID [--yes]",
		Short:   "Revoke every token of one owner (customer or account) of an application",
		Example: `  tokend app revoke-owner app_123 acct_42 --yes`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := confirm(e, yes, fmt.Sprintf("revoke every token of owner %q in app %s", args[1], args[0])); err != nil {
				return err
			}
			n, err := c.RevokeOwnerTokens(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return printRevoked(e, f, n, fmt.Sprintf("owner %q in app %s", args[1], args[0]))
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// confirmApp is confirm for an act on app id, what being its words with %s
// for the app; at a terminal (where someone reads it) the app is named too.
func confirmApp(cmd *cobra.Command, e env, c *client.Client, yes bool, id, what string) error {
	app := id
	if !yes && interactive(e.stdin) {
		a, err := c.App(cmd.Context(), id)
		if err != nil {
			return err
		}
		app = fmt.Sprintf("%s (%s)", a.ID, a.Name)
	}
	return confirm(e, yes, fmt.Sprintf(what, app))
}

// printRevoked tells how many tokens of what a revoke-all revoked, or
// prints the API's answer with --json.
func printRevoked(e env, f *apiFlags, n int, of string) error {
	if f.json {
		return printJSON(e.stdout, struct {
			Revoked int `json:"revoked"`
		}{n})
	}
	noun := "tokens"
	if n == 1 {
		noun = "token"
	}
	fmt.Fprintf(e.stdout, "Revoked %d %s of %s.\n", n, noun, of)
	return nil
}

// fmtMaxPerOwner shows an app's cap on an owner's live tokens.
func fmtMaxPerOwner(n *int) string {
	if n == nil {
		return "unlimited"
	}
	return "at most " + strconv.Itoa(*n) + " live"
}

// fmtRateLimit shows a rate limit, "-" for none.
func fmtRateLimit(rl *tokend.RateLimit) string {
	if rl == nil {
		return "-"
	}
	return fmt.Sprintf("%d per %s", rl.Limit, fmtDuration(rl.Window))
}

// fmtUnusedPolicy shows an app's stale-token policy.
// durationFlag answers the duration the flag name was given, nil when it
// was not.
// changedAs answers the flag's value as a T for a patch when the flag was
// given, nil (leave as it is) otherwise.
func changedAs[T ~string](fl *pflag.FlagSet, name, value string) *T {
	if !fl.Changed(name) {
		return nil
	}
	v := T(value)
	return &v
}

func durationFlag(fl *pflag.FlagSet, name, value string) (*tokend.Duration, error) {
	if !fl.Changed(name) {
		return nil, nil
	}
	d, err := tokend.ParseDuration(value)
	if err != nil {
		return nil, fmt.Errorf("invalid --%s: %w", name, err)
	}
	return &d, nil
}

func fmtExpiryNotices(d *tokend.Duration) string {
	if d == nil {
		return "7d and 1d before expiry"
	}
	return d.String() + ", 7d and 1d before expiry"
}

func fmtUnusedPolicy(d *tokend.Duration) string {
	if d == nil {
		return "never"
	}
	return "after " + d.String() + " without use"
}
