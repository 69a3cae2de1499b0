package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend"
)

// leaksCmd is `tokend leaks`: report secrets found where they should not
// be (POST /v1/leaks).
func leaksCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leaks",
		Short: "Report leaked token secrets",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(leaksReportCmd(e))
	return cmd
}

// leakedSecret is one secret to report and where it was found, which the
// table shows instead of the secret.
type leakedSecret struct {
	secret string
	where  string
}

func leaksReportCmd(e env) *cobra.Command {
	var file, gitleaks string
	var rep tokend.LeakReport
	cmd := &cobra.Command{
		Use:   "report (--file FILE | --gitleaks REPORT) [flags]",
		Short: "Report leaked secrets; each token found is handled by its application's leak policy",
		Long: `Report leaked secrets. Each secret that is a token's is handled by its
application's leak policy: revoke (the default), disable, or notify only;
each raises token.leaked. The table shows each secret's token id and what
was done, never a secret; a secret that is no token's (or not one this
admin token may act on) is "unknown".

--file reads one secret per line (blank lines and lines starting with #
are skipped; - reads standard input). --gitleaks reads a gitleaks JSON
report (gitleaks ... --report-format json), whose findings' Secret fields
hold the secrets.`,
		Example: `  tokend leaks report --file secrets.txt --source pastebin --url https://paste.example/x
  gitleaks git . --config examples/gitleaks.toml --report-format json --report-path leaks.json --exit-code 0
  tokend leaks report --gitleaks leaks.json`,
		Args: cobra.NoArgs,
	}
	f := addAPIFlags(cmd, e)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var secrets []leakedSecret
		var err error
		switch {
		case cmd.Flags().Changed("file"):
			secrets, err = readSecretLines(e, file)
		case gitleaks != "":
			secrets, err = readGitleaksReport(e, gitleaks)
			if rep.Source == "" {
				rep.Source = "gitleaks"
			}
		}
		if err != nil {
			return err
		}
		if len(secrets) == 0 {
			fmt.Fprintln(e.stderr, "No secrets to report.")
			return nil
		}
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		results := make([]tokend.LeakResult, len(secrets))
		// Send what could be a secret, tokend.MaxLeakSecrets at a time; a
		// longer value than any token is no token's.
		var batch []string
		var at []int
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			rep.Tokens = batch
			res, err := c.ReportLeaks(cmd.Context(), rep)
			if err != nil {
				return err
			}
			if len(res) != len(batch) {
				return fmt.Errorf("the server answered %d results for %d secrets", len(res), len(batch))
			}
			for i, r := range res {
				results[at[i]] = r
			}
			batch, at = batch[:0], at[:0]
			return nil
		}
		for i, s := range secrets {
			if len(s.secret) > tokend.MaxLeakSecretLength {
				results[i] = tokend.LeakResult{Result: tokend.LeakResultUnknown}
				continue
			}
			batch, at = append(batch, s.secret), append(at, i)
			if len(batch) == tokend.MaxLeakSecrets {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if f.json {
			return printJSON(e.stdout, struct {
				Results []tokend.LeakResult `json:"results"`
			}{results})
		}
		rows := make([][]string, len(results))
		for i, r := range results {
			rows[i] = []string{secrets[i].where, nonEmpty(r.TokenID), r.Result}
		}
		return printTable(e.stdout, []string{"FOUND AT", "TOKEN", "RESULT"}, rows)
	}
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "read secrets from this file, one a line (- for standard input)")
	fl.StringVar(&gitleaks, "gitleaks", "", "read secrets from this gitleaks JSON report")
	fl.StringVar(&rep.Source, "source", "", "where the secrets were found, e.g. pastebin (default gitleaks with --gitleaks)")
	fl.StringVar(&rep.URL, "url", "", "the URL where they were found")
	cmd.MarkFlagsMutuallyExclusive("file", "gitleaks")
	cmd.MarkFlagsOneRequired("file", "gitleaks")
	explainErrors(cmd, f)
	return cmd
}

// openInput opens name, or standard input for "-".
func openInput(e env, name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(e.stdin), nil
	}
	return os.Open(name)
}

// readSecretLines reads one secret a line, skipping blank lines and
// #comments.
func readSecretLines(e env, name string) ([]leakedSecret, error) {
	r, err := openInput(e, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []leakedSecret
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, leakedSecret{secret: line, where: "line " + strconv.Itoa(n)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

// gitleaksReportFinding is the part of a gitleaks JSON report finding read.
type gitleaksReportFinding struct {
	Secret    string
	File      string
	StartLine int
	Commit    string
}

// readGitleaksReport reads a gitleaks JSON report: an array of findings.
func readGitleaksReport(e env, name string) ([]leakedSecret, error) {
	r, err := openInput(e, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var findings []gitleaksReportFinding
	if err := json.NewDecoder(io.LimitReader(r, 256<<20)).Decode(&findings); err != nil {
		return nil, fmt.Errorf("%s is not a gitleaks JSON report (an array of findings): %w", name, err)
	}
	var out []leakedSecret
	for _, f := range findings {
		if f.Secret == "" {
			continue
		}
		where := f.File + ":" + strconv.Itoa(f.StartLine)
		if len(f.Commit) >= 8 {
			where += " @" + f.Commit[:8]
		}
		out = append(out, leakedSecret{secret: f.Secret, where: where})
	}
	return out, nil
}
