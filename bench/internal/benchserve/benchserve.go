// Package benchserve is what the bench programs that run real `tokend
// serve` processes on PostgreSQL share: a fresh database per run, and a
// server process started, read from its banner and stopped.
package benchserve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase makes <prefix>_<random> on the server at admin and answers
// its URL and a func that drops it.
func CreateDatabase(ctx context.Context, admin, prefix string) (string, func() error, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("--url must be a postgres:// URL")
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to %s: %w", u.Redacted(), err)
	}
	raw := make([]byte, 6)
	rand.Read(raw)
	name := prefix + "_" + hex.EncodeToString(raw)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() error {
		defer conn.Close(context.Background())
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := conn.Exec(c, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		if err == nil {
			fmt.Printf("dropped the database %s\n", name)
		}
		return err
	}
	return u.String(), drop, nil
}

// Server is a running `tokend serve`.
type Server struct {
	Cmd   *exec.Cmd
	URL   string        // http://127.0.0.1:port
	Admin string        // the admin token a first start prints, if it did
	Logs  *bytes.Buffer // its standard error
	done  chan error
}

var (
	listening = regexp.MustCompile(`listening on (http://\S+)`)
	adminRE   = regexp.MustCompile(`^\s+(tkd_admin_[0-9A-Za-z]+_[0-9A-Za-z]{6})\s*$`)
)

// Start runs bin with args (which should hold --addr 127.0.0.1:0) and the
// environment plus env, and waits for its banner.
func Start(ctx context.Context, bin string, args, env []string) (*Server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logs := &bytes.Buffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Cmd: cmd, done: make(chan error, 1), Logs: logs}
	type banner struct{ url, admin string }
	ready := make(chan banner, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var b banner
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				b.url = m[1]
			}
			if m := adminRE.FindStringSubmatch(sc.Text()); m != nil {
				b.admin = m[1]
			}
			if strings.HasPrefix(sc.Text(), "Press Ctrl+C") {
				ready <- b
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case b := <-ready:
		s.URL, s.Admin = b.url, b.admin
	case err := <-s.done:
		return nil, fmt.Errorf("tokend serve exited: %v\n%s", err, logs)
	case <-time.After(60 * time.Second):
		s.Stop()
		return nil, errors.New("tokend serve did not start within a minute")
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	return s, nil
}

// Stop shuts the server down gracefully (it flushes usage), or kills it
// after 30 seconds.
func (s *Server) Stop() {
	s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.Cmd.Process.Kill()
		<-s.done
	}
}
