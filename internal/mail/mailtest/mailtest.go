// Package mailtest runs a real SMTP server for tests: mailpit
// (github.com/axllent/mailpit), built once per machine into the user's
// cache directory, started on free loopback ports, and read through its
// HTTP API.
//
// Without mailpit (it cannot be built: no network, no Go toolchain) the
// tests that need it skip with a message saying so, and fail under
// CI=true.
package mailtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Version is the mailpit the tests use.
const Version = "v1.33.1"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary answers the path of the mailpit binary, building it the first
// time on this machine (go install into os.UserCacheDir()/tokend-test,
// a few minutes once); it skips the test when that fails, or fails it
// under CI=true.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		msg := fmt.Sprintf("mailpit %s is not available (%v); the tests that need a real SMTP server need it: go install github.com/axllent/mailpit@%s", Version, buildErr, Version)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return binPath
}

func build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "tokend-test", "mailpit-"+Version)
	bin := filepath.Join(dir, "mailpit")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built into a directory of its own, then renamed into place, so that
	// test processes building at once never see half a binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/axllent/mailpit@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install: %v: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Rename(filepath.Join(tmp, "mailpit"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Options start mailpit in a particular way.
type Options struct {
	// Users, when set, are the only SMTP credentials accepted (user →
	// password); otherwise any, or none, are.
	Users map[string]string
	// CertFile and KeyFile, when set, make the server offer STARTTLS.
	CertFile, KeyFile string
	// RequireSTARTTLS refuses mail until the client starts TLS.
	RequireSTARTTLS bool
}

// Server is a running mailpit.
type Server struct {
	// SMTPAddr is host:port of its SMTP server; API the base URL of its
	// HTTP API.
	SMTPAddr string
	API      string
}

// Start runs mailpit for the test, which stops it at its end.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	args := []string{
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check", "--quiet", "--smtp-disable-rdns",
	}
	if len(o.Users) > 0 {
		var b bytes.Buffer
		for u, p := range o.Users {
			fmt.Fprintf(&b, "%s:%s\n", u, p)
		}
		file := filepath.Join(dir, "users")
		if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--smtp-auth-file", file)
	} else {
		args = append(args, "--smtp-auth-accept-any")
	}
	if o.CertFile != "" {
		args = append(args, "--smtp-tls-cert", o.CertFile, "--smtp-tls-key", o.KeyFile)
	}
	if o.RequireSTARTTLS {
		args = append(args, "--smtp-require-starttls")
	} else {
		// Let a client send its password without TLS: tokend does so only
		// to loopback addresses, as here.
		args = append(args, "--smtp-auth-allow-insecure")
	}
	// The ports were free a moment before mailpit binds them: another
	// process may take one meanwhile, and mailpit then exits. Try again,
	// on other ports.
	var out string
	for range 3 {
		s, exited := start(t, bin, args)
		if s != nil {
			return s
		}
		out = exited
	}
	t.Fatalf("mailpit exited at start, 3 times: %s", out)
	return nil
}

// start runs mailpit on fresh ports and waits until it answers; it
// answers nil and mailpit's output when mailpit exited first.
func start(t testing.TB, bin string, args []string) (*Server, string) {
	t.Helper()
	smtpAddr, httpAddr := freeAddr(t), freeAddr(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, append([]string{"--smtp", smtpAddr, "--listen", httpAddr}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mailpit: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	s := &Server{SMTPAddr: smtpAddr, API: "http://" + httpAddr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", smtpAddr, time.Second)
		if err == nil {
			conn.Close()
			if resp, err := apiClient.Get(s.API + "/api/v1/messages"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s, ""
				}
			}
		}
		select {
		case <-done:
			return nil, out.String()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit does not answer after 30 s: %s", out.String())
		}
	}
}

// apiClient reads mailpit's HTTP API; a request that hangs fails the test
// rather than holding it until go test's own timeout.
var apiClient = &http.Client{Timeout: 10 * time.Second}

// freeAddr answers a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Port answers the SMTP port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.SMTPAddr)
	n, _ := strconv.Atoi(p)
	return n
}

// Address is a mailbox as mailpit shows it.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is a message as the list shows it.
type Summary struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      Address   `json:"From"`
	To        []Address `json:"To"`
	Subject   string    `json:"Subject"`
}

// Message is one message, read in full.
type Message struct {
	Summary
	Date time.Time `json:"Date"`
	Text string    `json:"Text"`
	HTML string    `json:"HTML"`
	// Headers and Raw are read separately (Headers, Raw).
	Headers map[string][]string `json:"-"`
	Raw     []byte              `json:"-"`
}

// Messages answers every message received, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var list struct {
		Messages []Summary `json:"messages"`
	}
	s.get(t, "/api/v1/messages?limit=500", &list)
	return list.Messages
}

// Message answers one message with its headers and its raw source.
func (s *Server) Message(t testing.TB, id string) Message {
	t.Helper()
	var m Message
	s.get(t, "/api/v1/message/"+id, &m)
	s.get(t, "/api/v1/message/"+id+"/headers", &m.Headers)
	m.Raw = s.raw(t, "/api/v1/message/"+id+"/raw")
	return m
}

// WaitMessages waits up to timeout for at least n messages and answers
// them, newest first; it fails the test when they do not come.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Summary {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Messages(t)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit received %d messages in %s, want %d", len(got), timeout, n)
		}
		time.Sleep(50 * time.Millisecond) // polling mailpit, with a deadline
	}
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(s.raw(t, path), v); err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
}

func (s *Server) raw(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := apiClient.Get(s.API + path)
	if err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit %s: %s: %s", path, resp.Status, b.String())
	}
	return b.Bytes()
}
