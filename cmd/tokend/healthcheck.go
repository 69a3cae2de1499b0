package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd asks the server on this machine for /healthz, for a
// container's HEALTHCHECK: an image FROM scratch has no shell and no curl.
// It reads the address (and whether serve speaks HTTPS) from the same
// flags and TOKEND_* variables as serve, so that one environment serves
// both.
func healthcheckCmd(e env) *cobra.Command {
	var (
		addr, tlsCert string
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Ask the local server's /healthz; exit 0 when it answers 200, 1 otherwise",
		Long: "Ask the server listening on --addr for /healthz, over HTTPS when --tls-cert is set (as serve's is), " +
			"and exit 0 when it answers 200, 1 otherwise. A wildcard address (0.0.0.0, ::) is asked on loopback. " +
			"The server's certificate is not checked: nothing secret is sent, and the question is only whether it answers.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.getenv); err != nil {
				return err
			}
			url, err := healthzURL(addr, tlsCert != "")
			if err != nil {
				return err
			}
			client := &http.Client{
				Timeout: timeout,
				Transport: &http.Transport{
					Proxy:           nil,                                   // never through HTTP_PROXY: this asks this machine
					TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // see Long
				},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			res, err := client.Get(url)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer res.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s", url, res.Status)
			}
			_, err = fmt.Fprintf(e.stdout, "ok: %s answered %s\n", url, res.Status)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "the address serve listens on (TOKEND_ADDR)")
	fs.StringVar(&tlsCert, "tls-cert", "", "set when serve speaks HTTPS (TOKEND_TLS_CERT); only whether it is set matters")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer (TOKEND_TIMEOUT)")
	return cmd
}

// healthzURL answers the /healthz URL of a server listening on addr.
func healthzURL(addr string, https bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}
