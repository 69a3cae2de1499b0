package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The image's stamp, given to the build as VERSION and REVISION.
const (
	stampVersion  = "v0.0.0-imagetest"
	stampRevision = "0123456789abcdef0123456789abcdef01234567"
)

// TestContainerImage builds the Containerfile with podman, runs the image
// on a free port, and checks what a user would: /healthz answers 200 from
// the running container, the process is not root, the first start's admin
// token is in the logs and works, the pepper was made in the /data volume,
// the image's HEALTHCHECK passes, the data survives a restart, and
// `tokend version` tells the stamp.
//
// The builder image is TOKEND_TEST_GO_IMAGE when set (golang:1.26, say);
// otherwise one is made from the Go toolchain that runs this test and a
// static busybox, as localhost/tokend-go:<go version>, and kept for the next
// run. Modules come through GOPROXY, as `go env` says.
func TestContainerImage(t *testing.T) {
	podman := needTool(t, "podman")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	root := repoRoot(t)
	suffix := randomHex(t)
	tag := "localhost/tokend-imagetest:" + suffix
	name := "tokend-imagetest-" + suffix
	buildImage(t, ctx, podman, root, tag)

	// Run as a user would: the image's own address (0.0.0.0:8080 inside),
	// its port published on a free port of the host's loopback.
	c := &container{t: t, bin: podman, name: name}
	t.Cleanup(func() { _ = exec.Command(podman, "rm", "-f", "-v", name).Run() })
	c.podman("run", "-d", "--name", name, "--runtime", "runc", "-p", "127.0.0.1::8080", tag)
	c.waitHealthy(ctx)

	t.Run("runs as the unprivileged user 65532, not root", func(t *testing.T) {
		if u := c.inspect("{{.Config.User}}"); u != "65532:65532" {
			t.Errorf("the image's user is %q, want 65532:65532", u)
		}
		if u := c.podman("top", name, "user"); !strings.Contains(u, "tokend") || strings.Contains(u, "root") {
			t.Errorf("podman top: the process runs as\n%s", u)
		}
		pid := c.inspect("{{.State.Pid}}")
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			key, ids, ok := strings.Cut(line, ":")
			if !ok || (key != "Uid" && key != "Gid") {
				continue
			}
			for _, id := range strings.Fields(ids) {
				// Rootless podman maps 65532 to a subordinate id of its
				// own; either way it is never 0.
				if id == "0" || (os.Geteuid() == 0 && id != "65532") {
					t.Errorf("/proc/%s/status %s:%s, want 65532 everywhere", pid, key, ids)
				}
			}
		}
	})

	admin := adminToken(t, c.podman("logs", name))
	t.Run("the first start's admin token is in the logs and works", func(t *testing.T) {
		if code := c.get(t, "/v1/tokens", admin); code != http.StatusOK {
			t.Errorf("GET /v1/tokens with the banner's token = %d", code)
		}
	})

	t.Run("the pepper is made in the /data volume, 0600, owned by 65532", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the volume's files belong to a mapped user under rootless podman")
		}
		dir := c.inspect(`{{range .Mounts}}{{if eq .Destination "/data"}}{{.Source}}{{end}}{{end}}`)
		st, err := os.Stat(filepath.Join(dir, "pepper"))
		if err != nil {
			t.Fatalf("no pepper in the /data volume: %v", err)
		}
		if st.Mode().Perm() != 0o600 || st.Sys().(*syscall.Stat_t).Uid != 65532 {
			t.Errorf("pepper: mode %v, owner %d", st.Mode(), st.Sys().(*syscall.Stat_t).Uid)
		}
	})

	t.Run("the image's HEALTHCHECK runs tokend healthcheck and passes", func(t *testing.T) {
		if hc := c.inspect("{{.Config.Healthcheck.Test}}"); !strings.Contains(hc, "/tokend healthcheck") {
			t.Errorf("HEALTHCHECK = %s", hc)
		}
		if out, err := exec.CommandContext(ctx, podman, "healthcheck", "run", name).CombinedOutput(); err != nil {
			t.Errorf("podman healthcheck run: %v\n%s", err, out)
		}
	})

	t.Run("a restart keeps the data and bootstraps nothing", func(t *testing.T) {
		c.podman("restart", name)
		c.waitHealthy(ctx)
		if code := c.get(t, "/v1/tokens", admin); code != http.StatusOK {
			t.Errorf("after a restart the admin token answers %d", code)
		}
		if n := strings.Count(c.podman("logs", name), "This is the first start"); n != 1 {
			t.Errorf("the logs tell of %d first starts", n)
		}
	})

	t.Run("tokend version tells the stamp", func(t *testing.T) {
		out := c.podman("run", "--rm", "--runtime", "runc", "--network", "none", tag, "version")
		if !strings.Contains(out, "tokend "+stampVersion) || !strings.Contains(out, "revision: "+stampRevision) {
			t.Errorf("tokend version:\n%s", out)
		}
	})
}

// repoRoot answers the repository's directory, which holds the
// Containerfile and compose.yaml.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildImage builds the Containerfile in root as tag, stamped with
// stampVersion and stampRevision, and removes the image when the test ends.
func buildImage(t *testing.T, ctx context.Context, podman, root, tag string) {
	t.Helper()
	goImage := os.Getenv("TOKEND_TEST_GO_IMAGE")
	if goImage == "" {
		goImage = localGoImage(t, ctx, podman)
	}
	start := time.Now()
	// --format docker: the OCI format has no HEALTHCHECK. --layers=false
	// leaves no build-stage images behind; the module and build caches
	// are cache mounts, kept between builds anyway.
	out, err := exec.CommandContext(ctx, podman, "build", "--format", "docker", "--layers=false", "--network", "host",
		"--build-arg", "GO_IMAGE="+goImage,
		"--build-arg", "GOPROXY="+goEnv(t, "GOPROXY"),
		"--build-arg", "VERSION="+stampVersion, "--build-arg", "REVISION="+stampRevision,
		"-t", tag, "-f", filepath.Join(root, "Containerfile"), root).CombinedOutput()
	if err != nil {
		t.Fatalf("podman build: %v\n%s", err, out)
	}
	t.Logf("podman build took %s", time.Since(start).Round(time.Second))
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", tag).Run() })
}

// container is one running container of the image under test.
type container struct {
	t    *testing.T
	bin  string // podman
	name string
	addr string // where the host reaches its port 8080
	// restarts: its restart policy starts it again when it stops.
	restarts bool
}

// podman runs a podman command that must succeed, and answers its output.
func (c *container) podman(args ...string) string {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

func (c *container) inspect(format string) string {
	c.t.Helper()
	return strings.TrimSpace(c.podman("inspect", "--format", format, c.name))
}

// waitHealthy waits until the container's /healthz answers 200, and fails
// with its logs when it stops (unless its restart policy starts it again)
// or does not answer within two minutes.
func (c *container) waitHealthy(ctx context.Context) {
	c.t.Helper()
	c.addr = strings.TrimSpace(c.podman("port", c.name, "8080/tcp"))
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := http.Get("http://" + c.addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if !c.restarts && c.inspect("{{.State.Running}}") != "true" || time.Now().After(deadline) || ctx.Err() != nil {
			c.t.Fatalf("%s does not answer /healthz on %s (last: %v); its logs:\n%s", c.name, c.addr, err, c.podman("logs", c.name))
		}
		<-tick.C
	}
}

// get answers the status of a GET with a bearer token.
func (c *container) get(t *testing.T, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+c.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

var adminRE = regexp.MustCompile(`(?m)^\s+(tkd_admin_[0-9A-Za-z]+_[0-9A-Za-z]{6})\s*$`)

// adminToken answers the admin token of the first start's banner in logs.
func adminToken(t *testing.T, logs string) string {
	t.Helper()
	if !strings.Contains(logs, "This is the first start") {
		t.Fatalf("the logs have no first-start banner:\n%s", logs)
	}
	m := adminRE.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("the banner shows no admin token:\n%s", logs)
	}
	return m[1]
}

// localGoImage answers localhost/tokend-go:<version> of the Go toolchain
// that runs the test, importing it into podman when it is not there yet:
// GOROOT at /usr/local/go, CA certificates, and a static busybox for the
// build stage's shell commands. Nothing is pulled from a registry.
func localGoImage(t *testing.T, ctx context.Context, podman string) string {
	t.Helper()
	ref := "localhost/tokend-go:" + goEnv(t, "GOVERSION")
	if exec.Command(podman, "image", "exists", ref).Run() == nil {
		return ref
	}
	busybox := needTool(t, "busybox")
	if !static(t, busybox) {
		t.Skipf("%s is linked dynamically; install a static busybox (busybox-static) to make the builder image", busybox)
	}
	applets, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	const certs = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(certs); err != nil {
		t.Fatalf("the builder image needs the CA certificates: %v", err)
	}

	goroot := goEnv(t, "GOROOT")
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := errors.Join(
			addDir(tw, "tmp", 0o1777), addDir(tw, "root", 0o700), addDir(tw, "go", 0o755),
			addTree(tw, goroot, "usr/local/go", "test"),
			addFile(tw, certs, "etc/ssl/certs/ca-certificates.crt"),
			addFile(tw, busybox, "bin/busybox"),
		)
		for _, a := range strings.Fields(string(applets)) {
			if a != "busybox" && err == nil {
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777})
			}
		}
		pw.CloseWithError(errors.Join(err, tw.Close()))
	}()
	cmd := exec.CommandContext(ctx, podman, "import",
		"--change", "ENV=PATH=/usr/local/go/bin:/go/bin:/bin", "--change", "ENV=GOPATH=/go", "-", ref)
	cmd.Stdin = pr
	if out, err := cmd.CombinedOutput(); err != nil {
		pr.CloseWithError(err)
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	return ref
}

// static reports whether the ELF file at path needs no dynamic loader.
func static(t *testing.T, path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func addDir(tw *tar.Writer, name string, mode int64) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
}

func addFile(tw *tar.Writer, src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(st.Mode().Perm()), Size: st.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// addTree adds the directory src as name, leaving out its top-level
// directory skip.
func addTree(tw *tar.Writer, src, name, skip string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == skip {
			return filepath.SkipDir
		}
		to := filepath.ToSlash(filepath.Join(name, rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return addDir(tw, to, int64(info.Mode().Perm()))
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: to, Linkname: link, Mode: 0o777})
		case info.Mode().IsRegular():
			return addFile(tw, path, to)
		}
		return nil
	})
}

// goEnv answers `go env NAME`.
func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// needTool answers the path of a program the test needs. Without it the
// test is skipped, unless CI=true: there a missing tool is a broken CI
// machine (.ci/run installs it), and the test fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true: .ci/run installs it", name)
	}
	t.Skipf("%s is not installed; install it to run this test (.ci/run shows how; it is required when CI=true)", name)
	return ""
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
