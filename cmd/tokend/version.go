package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time by builds that know better than the build info, such as
// the Containerfile's (a build without .git, or with -buildvcs=false, has
// no VCS information):
//
//	go build -ldflags "-X main.buildVersion=v1.2.0 -X main.buildRevision=$(git rev-parse HEAD)" ./cmd/tokend
var (
	buildVersion  string
	buildRevision string
	buildTime     string
)

// buildInfo is what this binary knows of its own making.
type buildInfo struct {
	// Version is the module version (v1.2.0 for a binary installed with
	// go install …@v1.2.0), or "devel" for one built from a checkout.
	Version string
	// Revision is the VCS commit, with "+dirty" when the tree had
	// uncommitted changes, or "unknown".
	Revision string
	// Time is the commit's time (RFC 3339), or "".
	Time      string
	GoVersion string
}

// readBuild answers the version, from what the linker was told first, then
// from the build information Go embeds, and says "devel" and "unknown"
// rather than guess.
func readBuild() buildInfo {
	b := buildInfo{Version: "devel", Revision: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = v
		}
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && b.Revision != "unknown" {
			b.Revision += "+dirty"
		}
	}
	if buildVersion != "" {
		b.Version = buildVersion
	}
	if buildRevision != "" {
		b.Revision = buildRevision
	}
	if buildTime != "" {
		b.Time = buildTime
	}
	return b
}

// version is the version tokend reports: in the banner's log line, the
// OpenAPI document, /metrics, webhooks' User-Agent and the dashboard.
func version() string { return readBuild().Version }

// String is what `tokend version` prints.
func (b buildInfo) String() string {
	s := fmt.Sprintf("tokend %s\nrevision: %s\n", b.Version, b.Revision)
	if b.Time != "" {
		s += fmt.Sprintf("time:     %s\n", b.Time)
	}
	return s + fmt.Sprintf("go:       %s\n", b.GoVersion)
}

func versionCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the VCS revision and the Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(e.stdout, readBuild())
			return err
		},
	}
}
