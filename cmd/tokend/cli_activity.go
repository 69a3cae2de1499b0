package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
)

// tokenActivityCmd is `tokend token activity ID`: the token's recent
// verifications, newest first.
func tokenActivityCmd(e env, f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "activity ID",
		Short: "Show a token's last 50 verifications: time, address, outcome and, for forward auth, method and path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			items, err := c.TokenActivity(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				if items == nil {
					items = []tokend.Activity{}
				}
				return printJSON(e.stdout, struct {
					Items []tokend.Activity `json:"items"`
				}{items})
			}
			if len(items) == 0 {
				fmt.Fprintln(e.stderr, "No recent verifications.")
				return nil
			}
			rows := make([][]string, 0, len(items))
			for _, a := range items {
				rows = append(rows, []string{a.At.UTC().Format("2006-01-02 15:04:05 UTC"), orDash(a.IP), string(a.Code), orDash(a.Method), orDash(a.Path)})
			}
			return printTable(e.stdout, []string{"TIME", "ADDRESS", "CODE", "METHOD", "PATH"}, rows)
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
