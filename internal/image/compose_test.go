package image_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yaml "github.com/oasdiff/yaml3"
)

// compose is the part of compose.yaml the test reads.
type compose struct {
	Services map[string]struct {
		Image string
		Build struct {
			Context, Dockerfile string
		}
		Environment map[string]string
		Secrets     []string
		Ports       []string
		DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
		Healthcheck struct{ Test []string }
		Volumes     []string
	}
	Secrets map[string]struct{ File string }
	Volumes map[string]any
}

// compose.yaml runs tokend on PostgreSQL with Redis: tokend starts once
// both are healthy, its pepper comes from a secret, no secret is written in
// the file, and the port is published on loopback only. (No registry is
// reachable here to pull postgres and redis: TestComposeUp runs the file
// with stand-ins for them.)
func TestComposeFile(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	tokend, pg, redis := c.Services["tokend"], c.Services["postgres"], c.Services["redis"]
	if _, err := os.Stat(filepath.Join(root, tokend.Build.Context, tokend.Build.Dockerfile)); err != nil || tokend.Build.Dockerfile != "Containerfile" {
		t.Errorf("tokend is not built from the Containerfile: %+v (%v)", tokend.Build, err)
	}
	for _, dep := range []string{"postgres", "redis"} {
		if cond := tokend.DependsOn[dep].Condition; cond != "service_healthy" {
			t.Errorf("tokend depends on %s with condition %q, want service_healthy", dep, cond)
		}
	}
	if got := pg.Healthcheck.Test; len(got) < 2 || got[0] != "CMD" || got[1] != "pg_isready" {
		t.Errorf("postgres healthcheck %v", got)
	}
	if got := redis.Healthcheck.Test; len(got) < 2 || got[0] != "CMD" || got[1] != "redis-cli" {
		t.Errorf("redis healthcheck %v", got)
	}
	// tokend's own health is the image's HEALTHCHECK: compose must not
	// replace it with a shell command the image cannot run.
	if tokend.Healthcheck.Test != nil {
		t.Errorf("compose.yaml replaces the image's HEALTHCHECK with %v", tokend.Healthcheck.Test)
	}
	containerfile, _ := os.ReadFile(filepath.Join(root, "Containerfile"))
	if !strings.Contains(string(containerfile), `CMD ["/tokend", "healthcheck"]`) {
		t.Error("the Containerfile's HEALTHCHECK does not run tokend healthcheck")
	}

	env := tokend.Environment
	if !strings.HasPrefix(env["TOKEND_DATABASE"], "postgres://tokend@postgres:5432/tokend") {
		t.Errorf("TOKEND_DATABASE = %q", env["TOKEND_DATABASE"])
	}
	if env["TOKEND_REDIS"] != "redis://redis:6379/0" {
		t.Errorf("TOKEND_REDIS = %q", env["TOKEND_REDIS"])
	}
	secret, ok := strings.CutPrefix(env["TOKEND_PEPPER_FILE"], "/run/secrets/")
	if !ok || !slices.Contains(tokend.Secrets, secret) || c.Secrets[secret].File == "" {
		t.Errorf("the pepper is not a secret: TOKEND_PEPPER_FILE=%q, secrets %v %v", env["TOKEND_PEPPER_FILE"], tokend.Secrets, c.Secrets)
	}
	if _, ok := env["TOKEND_PEPPER"]; ok {
		t.Error("compose.yaml writes the pepper itself")
	}
	for name, v := range map[string]string{"PGPASSWORD": env["PGPASSWORD"], "POSTGRES_PASSWORD": pg.Environment["POSTGRES_PASSWORD"]} {
		if !strings.HasPrefix(v, "${POSTGRES_PASSWORD:?") {
			t.Errorf("%s = %q, want it from the environment, required", name, v)
		}
	}
	if len(tokend.Ports) != 1 || !strings.HasPrefix(tokend.Ports[0], "127.0.0.1:") {
		t.Errorf("tokend's ports %v, want one published on loopback", tokend.Ports)
	}
	if len(pg.Volumes) != 1 || !strings.HasSuffix(pg.Volumes[0], ":/var/lib/postgresql/data") {
		t.Errorf("PostgreSQL keeps its data in %v", pg.Volumes)
	}
	if len(pg.Ports)+len(redis.Ports) != 0 {
		t.Error("PostgreSQL or Redis is published outside the compose network")
	}
}
