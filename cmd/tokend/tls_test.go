package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost, with
// its PEM files.
type testCert struct {
	serial          int64
	cert            *x509.Certificate
	certPEM, keyPEM []byte
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "tokend test"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		serial: serial, cert: cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// write puts the pair in dir as cert.pem and key.pem, and answers their
// paths. Each file is replaced at once (a rename), as a certificate
// manager does.
func (c testCert) write(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeAtomic(t, certFile, c.certPEM)
	writeAtomic(t, keyFile, c.keyPEM)
	return certFile, keyFile
}

func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// trusting answers a TLS client configuration that trusts the given
// certificates only.
func trusting(certs ...testCert) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c.cert)
	}
	return &tls.Config{RootCAs: pool}
}

// servedSerial makes a new TLS connection to addr and answers the serial of
// the certificate the server presents.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func TestServeHTTPS(t *testing.T) {
	a := newTestCert(t, 1)
	certFile, keyFile := a.write(t, t.TempDir())
	in := startTokend(t, t.TempDir(), nil, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(in.url, "https://127.0.0.1:") {
		t.Fatalf("the banner says tokend listens on %q, want an https:// URL", in.url)
	}
	for _, line := range []string{"dashboard: https://", "POST https://", "TOKEND_URL=https://", "open https://"} {
		if !strings.Contains(in.stdout.String(), line) {
			t.Errorf("the banner has no %q:\n%s", line, in.stdout.String())
		}
	}
	if strings.Contains(in.stdout.String(), "Secure") {
		t.Errorf("the banner explains the cookie rules although it serves HTTPS:\n%s", in.stdout.String())
	}
	addr := strings.TrimPrefix(in.url, "https://")
	client := httpsClient(trusting(a))

	t.Run("the dashboard, the API and health answer over TLS with HSTS", func(t *testing.T) {
		for _, path := range []string{"/login", "/setup", "/healthz", "/openapi.json"} {
			res, err := client.Get(in.url + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d", path, res.StatusCode)
			}
			if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
				t.Errorf("GET %s: Strict-Transport-Security %q", path, got)
			}
		}
		if res, err := client.Get(in.url + "/v1/tokens"); err != nil {
			t.Fatal(err)
		} else if res.Body.Close(); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /v1/tokens without a token = %d", res.StatusCode)
		}
		req, _ := http.NewRequest("GET", in.url+"/v1/tokens", nil)
		req.Header.Set("Authorization", "Bearer "+in.bootstrap)
		if res, err := client.Do(req); err != nil {
			t.Fatal(err)
		} else if res.Body.Close(); res.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/tokens with the owner token over TLS = %d", res.StatusCode)
		}
	})

	t.Run("TLS 1.2 and 1.3 are taken, 1.1 and 1.0 refused", func(t *testing.T) {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			cfg := trusting(a)
			cfg.MinVersion, cfg.MaxVersion = v, v
			conn, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Errorf("%s refused: %v", tls.VersionName(v), err)
				continue
			}
			conn.Close()
		}
		for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS10} {
			cfg := trusting(a)
			cfg.MinVersion, cfg.MaxVersion = v, v
			conn, err := tls.Dial("tcp", addr, cfg)
			if err == nil {
				conn.Close()
				t.Errorf("a %s handshake succeeded", tls.VersionName(v))
			} else if !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("a %s handshake failed for another reason: %v", tls.VersionName(v), err)
			}
		}
	})

	t.Run("plain HTTP on the TLS port gets no answer but an error", func(t *testing.T) {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Error("plain HTTP was served on the TLS port")
			}
		}
	})

	t.Run("tokend healthcheck speaks HTTPS when --tls-cert is set", func(t *testing.T) {
		out := runOut(t, "healthcheck", "--addr", addr, "--tls-cert", certFile)
		if !strings.Contains(out, "ok: https://"+addr+"/healthz answered 200") {
			t.Errorf("tokend healthcheck: %q", out)
		}
	})
}

func TestPlainHTTPHasNoHSTS(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil)
	for _, path := range []string{"/login", "/healthz"} {
		res, err := http.Get(in.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, res.StatusCode)
		}
		if got := res.Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("GET %s over plain HTTP: Strict-Transport-Security %q", path, got)
		}
	}
}

func TestServeRefusesABadTLSPair(t *testing.T) {
	dir := t.TempDir()
	a, b := newTestCert(t, 1), newTestCert(t, 2)
	certFile, keyFile := a.write(t, dir)
	otherKey := filepath.Join(dir, "other-key.pem")
	writeAtomic(t, otherKey, b.keyPEM)
	garbage := filepath.Join(dir, "garbage.pem")
	writeAtomic(t, garbage, []byte("not a certificate\n"))
	cases := map[string]struct {
		args []string
		want []string
	}{
		"a certificate without a key": {[]string{"--tls-cert", certFile}, []string{"--tls-cert and --tls-key go together"}},
		"a key without a certificate": {[]string{"--tls-key", keyFile}, []string{"--tls-cert and --tls-key go together"}},
		"a missing file": {[]string{"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", keyFile},
			[]string{"--tls-cert " + filepath.Join(dir, "nope.pem"), "no such file"}},
		"a file that is no certificate": {[]string{"--tls-cert", garbage, "--tls-key", keyFile}, []string{"--tls-cert " + garbage}},
		"a key of another certificate": {[]string{"--tls-cert", certFile, "--tls-key", otherKey},
			[]string{"private key does not match public key"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			data := t.TempDir()
			err := runFails(t, nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", data}, c.args...)...)
			wantErr(t, name, err, c.want...)
			// Refused before anything was created: no bootstrap token
			// was made and lost.
			if entries, _ := os.ReadDir(data); len(entries) != 0 {
				t.Errorf("the data directory was written to: %v", entries)
			}
		})
	}
}

// SIGHUP reads the certificate again: new connections get the new one,
// an open connection goes on, and a pair that does not load keeps the one
// in place.
func TestTLSCertificateReloadsOnSIGHUP(t *testing.T) {
	bin := buildTokend(t)
	dir := t.TempDir()
	a, b, c := newTestCert(t, 1), newTestCert(t, 2), newTestCert(t, 3)
	certFile, keyFile := a.write(t, dir)
	in := startProcess(t, bin, nil, "--data-dir", filepath.Join(t.TempDir(), "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	addr := strings.TrimPrefix(in.url, "https://")
	trust := trusting(a, b, c)
	if got := servedSerial(t, addr, trust); got != 1 {
		t.Fatalf("serves the certificate of serial %d, want 1", got)
	}

	// A connection opened before the reload, kept alive across it.
	open, err := tls.Dial("tcp", addr, trust)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	rd := bufio.NewReader(open)
	ask := func(what string) {
		t.Helper()
		if _, err := open.Write([]byte("GET /healthz HTTP/1.1\r\nHost: tokend\r\n\r\n")); err != nil {
			t.Fatalf("%s: writing on the open connection: %v", what, err)
		}
		res, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("%s: the open connection was dropped: %v", what, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: /healthz = %d", what, res.StatusCode)
		}
	}
	ask("before the reload")

	b.write(t, dir)
	in.signal(syscall.SIGHUP)
	in.waitLog(t, "SIGHUP: reloaded", 10*time.Second)
	if got := servedSerial(t, addr, trust); got != 2 {
		t.Errorf("after SIGHUP new connections get serial %d, want 2", got)
	}
	if !strings.Contains(in.stderr.String(), "what=\"TLS certificate\"") || !strings.Contains(in.stderr.String(), "serial=2") {
		t.Errorf("the reload is not logged with the new serial:\n%s", in.stderr.String())
	}
	ask("after the reload")
	if open.ConnectionState().PeerCertificates[0].SerialNumber.Int64() != 1 {
		t.Error("the open connection's certificate changed")
	}

	// A broken pair, c's certificate with a's key: refused, logged, and b
	// stays.
	writeAtomic(t, certFile, c.certPEM)
	writeAtomic(t, keyFile, a.keyPEM)
	in.signal(syscall.SIGHUP)
	in.waitLog(t, "SIGHUP: reload failed", 10*time.Second)
	if got := servedSerial(t, addr, trust); got != 2 {
		t.Errorf("after a failed reload new connections get serial %d, want 2 still", got)
	}
	if !strings.Contains(in.stderr.String(), "private key does not match public key") {
		t.Errorf("the failed reload does not say why:\n%s", in.stderr.String())
	}
	ask("after the failed reload")
	if strings.Contains(in.stderr.String(), "PRIVATE KEY") {
		t.Error("the log shows a private key")
	}
}

// Serving plain HTTP where other machines can reach it, the banner says
// why their browsers cannot sign in to the dashboard, and what to do; on
// loopback, or under TLS, it says nothing of it.
func TestBannerExplainsTheCookieRulesOnPlainHTTPReachableFromOthers(t *testing.T) {
	const rules = "the dashboard signs\nnobody in from them"
	if in := startTokend(t, t.TempDir(), nil); strings.Contains(in.stdout.String(), rules) {
		t.Errorf("on 127.0.0.1 the banner explains the cookie rules:\n%s", in.stdout.String())
	}
	a := newTestCert(t, 1)
	certFile, keyFile := a.write(t, t.TempDir())
	if in := startTokend(t, t.TempDir(), nil, "--addr", "0.0.0.0:0", "--tls-cert", certFile, "--tls-key", keyFile); strings.Contains(in.stdout.String(), rules) {
		t.Errorf("under TLS the banner explains the cookie rules:\n%s", in.stdout.String())
	}

	in := startTokend(t, t.TempDir(), nil, "--addr", "0.0.0.0:0")
	out := in.stdout.String()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(in.url, "http://"))
	for _, want := range []string{rules, "__Host-tokend_session", "Secure", "--tls-cert FILE --tls-key FILE",
		"ssh -L " + port + ":127.0.0.1:" + port, `answer 403 ("The form was missing its` + "\nsecurity token\")"} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner does not say %q:\n%s", want, out)
		}
	}

	// What the banner says happens: the sign-in page sets its CSRF cookie
	// Secure; a browser at a plain http:// address drops it, and the
	// form, posted without it, is refused.
	res, err := http.Get(in.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var csrf *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Host-tokend_csrf" {
			csrf = c
		}
	}
	if csrf == nil || !csrf.Secure {
		t.Fatalf("the sign-in page sets no Secure __Host-tokend_csrf cookie: %v", res.Cookies())
	}
	form := strings.NewReader("csrf=" + csrf.Value + "&email=owner%40example.com&password=x")
	res, err = http.Post(in.url+"/login", "application/x-www-form-urlencoded", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "The form was missing its security token") {
		t.Errorf("a sign-in without the cookie = %d:\n%s", res.StatusCode, body)
	}
}
