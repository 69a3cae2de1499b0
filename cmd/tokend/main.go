// Command tokend is the tokend binary: the server (serve), its set-up verbs
// (bootstrap, migrate, backup, restore), and a CLI over the REST API (token, app, audit).
//
// main only hands the process's environment to run, so that tests drive the
// very same code in-process with their own arguments, environment and
// streams.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokend:", err)
		os.Exit(1)
	}
}

// env is what every command gets from the process: its environment and its
// standard streams.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run executes one tokend command line. It returns when the command is done,
// or for serve, when ctx is cancelled and the server has shut down.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "tokend",
		Short:         "tokend issues, manages and verifies API tokens",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what `tokend version` does.
		Version: version(),
	}
	// A template: braces a stamp might hold are printed, not run.
	root.SetVersionTemplate(strings.ReplaceAll(readBuild().String(), "{{", `{{"{{"}}`))
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		serveCmd(e), bootstrapCmd(e), migrateCmd(e), backupCmd(e), restoreCmd(e),
		tokenCmd(e), appCmd(e), auditCmd(e), eventsCmd(e), webhookCmd(e), leaksCmd(e),
		versionCmd(e), healthcheckCmd(e),
	)
	return root.ExecuteContext(ctx)
}
