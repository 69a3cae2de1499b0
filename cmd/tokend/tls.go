package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// certificate is the TLS certificate serve presents, read from
// --tls-cert and --tls-key at start and again on SIGHUP. Each handshake
// takes the one loaded last, so a reload swaps it for new connections
// while those already open go on with theirs.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// loadCertificate reads the pair for the first time; serve stops when it
// fails.
func loadCertificate(certFile, keyFile string, log *slog.Logger) (*certificate, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
	}
	c := &certificate{certFile: certFile, keyFile: keyFile}
	attrs, err := c.reload()
	if err != nil {
		return nil, err
	}
	log.Info("serving HTTPS", attrs...)
	return c, nil
}

// reload reads the pair again and puts it in place, or keeps the one in
// place when the files cannot be read, do not parse, or do not match. It
// answers what to log of the new certificate (never anything of the key).
func (c *certificate) reload() ([]any, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	leaf := pair.Leaf // parsed by LoadX509KeyPair, unless GODEBUG says not to
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %w", c.certFile, err)
		}
	}
	attrs := []any{"cert", c.certFile, "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		attrs = append(attrs, "warning", "the certificate is not valid now: clients will refuse it")
	}
	c.cur.Store(&pair)
	return attrs, nil
}

// config is serve's TLS configuration: TLS 1.2 at least (Go's defaults
// for the rest: its cipher suites for 1.2 are all forward secret and
// AEAD) and the certificate loaded last; http.Server.ServeTLS offers
// HTTP/2 besides HTTP/1.1.
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// reloader is the certificate's entry in the SIGHUP list.
func (c *certificate) reloader() reloader {
	return reloader{"TLS certificate", c.reload}
}

// hsts tells browsers to come back only over HTTPS for a year, on every
// answer of a server that serves HTTPS itself. includeSubDomains is left
// out: tokend cannot know what else runs under its domain.
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// reachableFromOthers reports whether a listener's address takes
// connections from other machines: anything but a loopback address
// (0.0.0.0 and :: take them from everywhere).
func reachableFromOthers(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}
