package image_test

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/client"
)

// TestComposeUp runs compose.yaml as a user would, with podman-compose:
// tokend built from the Containerfile, PostgreSQL and Redis, with the
// file's environment, secret, healthchecks, dependencies, volume and
// published port as written. It checks that tokend answers /healthz on
// 127.0.0.1:8080, that every service's healthcheck passes, that the first
// start's admin token in the logs creates a token that verifies, and that
// a restart of tokend keeps the token and its rate limit, whose count
// lives in Redis.
//
// No image registry is reachable here, so postgres:17 and redis:7 are
// stood in for by images made from this machine's PostgreSQL and Redis
// (the binaries with the libraries ldd names, on a static busybox), which
// start as the official images do; an override file changes only each
// service's image. The project gets a name of its own, so that nothing of
// a real "tokend" project is touched, and everything the test made is
// removed at its end (the builder image and build caches are kept).
func TestComposeUp(t *testing.T) {
	podman := needTool(t, "podman")
	compose := needTool(t, "podman-compose")
	pgBin := needPostgres(t)
	redisServer, redisCLI := needTool(t, "redis-server"), needTool(t, "redis-cli")
	busybox := needTool(t, "busybox")
	if !static(t, busybox) {
		skipOrFail(t, "%s is linked dynamically; the stand-in images need a static busybox (busybox-static)", busybox)
	}
	// compose.yaml publishes 127.0.0.1:8080 as written.
	if l, err := net.Listen("tcp", "127.0.0.1:8080"); err != nil {
		skipOrFail(t, "127.0.0.1:8080, which compose.yaml publishes, is taken: %v", err)
	} else {
		l.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	root := repoRoot(t)

	suffix := randomHex(t)
	start := time.Now()
	tokendTag := "localhost/tokend-composetest:" + suffix
	buildImage(t, ctx, podman, root, tokendTag)
	pgTag := "localhost/tokend-composetest-postgres:" + suffix
	importStandIn(t, ctx, podman, pgTag, postgresStandIn(t, pgBin))
	redisTag := "localhost/tokend-composetest-redis:" + suffix
	importStandIn(t, ctx, podman, redisTag, redisStandIn(t, redisServer, redisCLI))
	t.Logf("images ready after %s", time.Since(start).Round(time.Second))

	// compose.yaml as it is, beside its secret, in a directory of its own.
	dir := t.TempDir()
	file, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	override := fmt.Sprintf("services:\n  tokend:\n    image: %s\n  postgres:\n    image: %s\n  redis:\n    image: %s\n", tokendTag, pgTag, redisTag)
	for name, content := range map[string]string{
		"compose.yaml": string(file), "compose.test.yaml": override,
		"tokend-pepper": pepper(t),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	project := "tokend-composetest-" + suffix
	pc := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, compose, append([]string{"-p", project, "-f", filepath.Join(dir, "compose.yaml"), "-f", filepath.Join(dir, "compose.test.yaml")}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "POSTGRES_PASSWORD="+randomHex(t))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		// podman-compose down removes containers without their anonymous
		// volumes (the image's /data): remove them with theirs first.
		// down -v then removes the pod and the named volume; the network
		// is removed apart.
		ids, _ := exec.Command(podman, "ps", "-a", "-q", "--filter", "label=io.podman.compose.project="+project).Output()
		if ids := strings.Fields(string(ids)); len(ids) > 0 {
			_ = exec.Command(podman, append([]string{"rm", "-f", "-v"}, ids...)...).Run()
		}
		cmd := exec.Command(compose, "-p", project, "-f", filepath.Join(dir, "compose.yaml"), "-f", filepath.Join(dir, "compose.test.yaml"), "down", "-v")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "POSTGRES_PASSWORD=x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("podman-compose down: %v\n%s", err, out)
		}
		_ = exec.Command(podman, "volume", "rm", "-f", project+"_postgres-data").Run()
		_ = exec.Command(podman, "network", "rm", "-f", project+"_default").Run()
	})
	up := time.Now()
	pc("up", "-d")

	// podman-compose names containers <project>_<service>_1.
	tokendC := &container{t: t, bin: podman, name: project + "_tokend_1", restarts: true}
	tokendC.waitHealthy(ctx)
	if tokendC.addr != "127.0.0.1:8080" {
		t.Fatalf("tokend's port 8080 is published on %s, want 127.0.0.1:8080 as compose.yaml says", tokendC.addr)
	}
	// podman-compose starts the services in the order of depends_on but
	// does not wait for their health: tokend may exit once because
	// PostgreSQL does not answer yet, and restart: unless-stopped starts
	// it again.
	t.Logf("tokend answered /healthz %s after up, after %s restarts", time.Since(up).Round(time.Second), tokendC.inspect("{{.RestartCount}}"))

	t.Run("every service's healthcheck passes", func(t *testing.T) {
		for _, svc := range []string{"postgres", "redis", "tokend"} {
			if out, err := exec.CommandContext(ctx, podman, "healthcheck", "run", project+"_"+svc+"_1").CombinedOutput(); err != nil {
				t.Errorf("%s: podman healthcheck run: %v\n%s", svc, err, out)
			}
		}
	})

	admin := adminToken(t, tokendC.podman("logs", tokendC.name))
	sdk, err := client.New("http://127.0.0.1:8080", client.WithToken(admin))
	if err != nil {
		t.Fatal(err)
	}
	app, err := sdk.CreateApp(ctx, tokend.AppInput{Name: "Shop"})
	if err != nil {
		t.Fatalf("creating an app with the first start's admin token: %v", err)
	}
	tok, secret, err := sdk.CreateToken(ctx, tokend.TokenInput{AppID: app.ID, Name: "ci",
		RateLimit: &tokend.RateLimit{Limit: 2, Window: tokend.Duration(time.Hour)}})
	if err != nil {
		t.Fatalf("creating a token: %v", err)
	}
	verify := func() tokend.Code {
		t.Helper()
		res, err := sdk.Verify(ctx, tokend.VerifyRequest{Token: secret})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		return res.Code
	}
	for i := range 2 {
		if c := verify(); c != tokend.CodeValid {
			t.Fatalf("verification %d of the new token: %s", i+1, c)
		}
	}
	if c := verify(); c != tokend.CodeRateLimited {
		t.Fatalf("the third verification within the limit of 2: %s", c)
	}

	t.Run("a restart keeps the token, and Redis keeps its rate limit", func(t *testing.T) {
		pc("restart", "tokend")
		tokendC.waitHealthy(ctx)
		// This instance's own limiter would start again from nothing:
		// still limited means the count is Redis's.
		if c := verify(); c != tokend.CodeRateLimited {
			t.Errorf("after a restart the token verifies %s, want %s: the rate limit was not in Redis", c, tokend.CodeRateLimited)
		}
		// The first start may come before Redis answers (podman-compose
		// does not wait for health); by the restart it does.
		if logs := tokendC.podman("logs", tokendC.name); !strings.Contains(logs, "rate limits and the failure throttle are shared through Redis") {
			t.Errorf("the logs do not tell of Redis:\n%s", logs)
		}
		if keys := tokendC.podman("exec", project+"_redis_1", "redis-cli", "--scan", "--pattern", "tokend:*"); strings.TrimSpace(keys) == "" {
			t.Error("Redis holds no key of tokend's")
		}
		got, err := sdk.Token(ctx, tok.ID)
		if err != nil || got.Name != "ci" {
			t.Errorf("after a restart the token reads %+v, %v", got, err)
		}
		if n := strings.Count(tokendC.podman("logs", tokendC.name), "This is the first start"); n != 1 {
			t.Errorf("the logs tell of %d first starts", n)
		}
	})
	t.Logf("%s from the start of the test", time.Since(start).Round(time.Second))
}

// standIn is what an image made from this machine's files holds.
type standIn struct {
	bins    []string          // programs, each with the libraries ldd names
	libs    []string          // shared objects loaded at run time, with theirs
	trees   []string          // directories copied whole
	files   []string          // other files copied as they are
	written map[string]string // files written from a string (mode 0755)
	dirs    map[string]int    // directories made, owned by this uid
	changes []string          // podman import --change instructions
}

// standInUID is the uid of the stand-ins' unprivileged user, as in the
// official images.
const standInUID = 999

// postgresStandIn stands in for the official postgres image: the same
// data directory and socket directory, and an entrypoint that makes the
// cluster from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on the
// first start (password authentication over the network), then runs the
// server as the postgres user.
func postgresStandIn(t *testing.T, bin string) standIn {
	version := filepath.Base(filepath.Dir(bin))
	libs, err := filepath.Glob(filepath.Join(filepath.Dir(bin), "lib", "*.so"))
	if err != nil {
		t.Fatal(err)
	}
	// llvmjit needs LLVM, and JIT is off in the stand-in.
	libs = slices.DeleteFunc(libs, func(p string) bool { return strings.HasPrefix(filepath.Base(p), "llvmjit") })
	return standIn{
		bins:  []string{filepath.Join(bin, "postgres"), filepath.Join(bin, "initdb"), filepath.Join(bin, "pg_isready")},
		libs:  libs,
		trees: []string{filepath.Join("/usr/share/postgresql", version)},
		files: []string{"/usr/share/zoneinfo/UTC"},
		written: map[string]string{
			"etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\n",
			"etc/group":  "root:x:0:\npostgres:x:999:\n",
			"usr/local/bin/docker-entrypoint.sh": `#!/bin/sh
set -eu
export PGDATA=/var/lib/postgresql/data
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	chown postgres:postgres "$PGDATA"
	chmod 0700 "$PGDATA"
	printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile
	chown postgres /tmp/pwfile
	su -s /bin/sh postgres -c 'initdb --username="$POSTGRES_USER" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-locale' >/dev/null
	rm /tmp/pwfile
	echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
	echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\"" | su -s /bin/sh postgres -c 'postgres --single -D "$PGDATA" postgres' >/dev/null
fi
if [ "$1" = postgres ]; then
	shift
	set -- postgres -c listen_addresses='*' -c jit=off "$@"
fi
exec su -s /bin/sh postgres -c 'exec "$@"' -- sh "$@"
`,
		},
		dirs: map[string]int{"var/lib/postgresql": standInUID, "var/run/postgresql": standInUID},
		changes: []string{
			"ENV=PATH=/usr/local/bin:/usr/bin:/bin:" + bin, "ENV=TZ=UTC",
			`ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]`, `CMD ["postgres"]`, "EXPOSE 5432",
		},
	}
}

// redisStandIn stands in for the official redis image: redis-server as the
// redis user in /data, protected mode off (the official image builds it
// so), and redis-cli for the healthcheck.
func redisStandIn(t *testing.T, server, cli string) standIn {
	return standIn{
		bins: []string{server, cli},
		written: map[string]string{
			"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nredis:x:999:999:redis:/data:/bin/sh\n",
			"etc/group":  "root:x:0:\nredis:x:999:\n",
			"usr/local/bin/docker-entrypoint.sh": `#!/bin/sh
set -eu
if [ "$1" = redis-server ]; then
	shift
	set -- redis-server --protected-mode no "$@"
fi
exec su -s /bin/sh redis -c 'exec "$@"' -- sh "$@"
`,
		},
		dirs: map[string]int{"data": standInUID},
		changes: []string{
			"ENV=PATH=/usr/local/bin:/usr/bin:/bin", "WORKDIR=/data",
			`ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]`, `CMD ["redis-server"]`, "EXPOSE 6379",
		},
	}
}

// importStandIn makes the image ref of s with podman import (a static
// busybox gives it its shell and su), and removes it when the test ends.
func importStandIn(t *testing.T, ctx context.Context, podman, ref string, s standIn) {
	t.Helper()
	busybox, _ := exec.LookPath("busybox")
	applets, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	// Each program and library with the libraries it loads, at the paths
	// ldd names (the dynamic loader among them).
	files := slices.Concat(s.bins, s.libs, s.files)
	for _, p := range slices.Concat(s.bins, s.libs) {
		files = append(files, sharedLibraries(t, p)...)
	}
	slices.Sort(files)
	files = slices.Compact(files)

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := errors.Join(addDir(tw, "tmp", 0o1777), addDir(tw, "root", 0o700), addFile(tw, busybox, "bin/busybox"))
		for _, a := range strings.Fields(string(applets)) {
			if a != "busybox" && err == nil {
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777})
			}
		}
		for _, f := range files {
			if err == nil {
				err = addFile(tw, f, strings.TrimPrefix(f, "/"))
			}
		}
		for _, tree := range s.trees {
			if err == nil {
				err = addTree(tw, tree, strings.TrimPrefix(tree, "/"), "")
			}
		}
		for _, name := range slices.Sorted(maps.Keys(s.written)) {
			if err == nil {
				content := s.written[name]
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(content))})
				if err == nil {
					_, err = io.WriteString(tw, content)
				}
			}
		}
		for _, name := range slices.Sorted(maps.Keys(s.dirs)) {
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o2775, Uid: s.dirs[name], Gid: s.dirs[name]})
			}
		}
		pw.CloseWithError(errors.Join(err, tw.Close()))
	}()
	args := []string{"import"}
	for _, c := range s.changes {
		args = append(args, "--change", c)
	}
	cmd := exec.CommandContext(ctx, podman, append(args, "-", ref)...)
	cmd.Stdin = pr
	if out, err := cmd.CombinedOutput(); err != nil {
		pr.CloseWithError(err)
		t.Fatalf("podman import %s: %v\n%s", ref, err, out)
	}
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", ref).Run() })
}

// sharedLibraries answers the files ldd names for the program or library
// at path.
func sharedLibraries(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", path, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		case slices.Contains(f, "not") && slices.Contains(f, "found"):
			t.Fatalf("ldd %s: %s", path, line)
		}
	}
	return libs
}

// needPostgres answers the bin directory of this machine's newest
// PostgreSQL (Debian's layout, /usr/lib/postgresql/<version>/bin).
func needPostgres(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		skipOrFail(t, "no PostgreSQL server in /usr/lib/postgresql/*/bin: install postgresql")
	}
	// The newest: 15 sorts after 9 by length first.
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Or(len(a)-len(b), strings.Compare(a, b)) })
	return filepath.Dir(dirs[len(dirs)-1])
}

// skipOrFail skips the test, unless CI=true, where what is missing is a
// broken CI machine.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (and CI=true)", args...)
	}
	t.Skipf(format, args...)
}

// pepper answers a pepper as the compose file's comment makes one
// (openssl rand -hex 32).
func pepper(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b) + "\n"
}
