package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// With Redis unreachable, --log-format json means every line on stderr
// is JSON: go-redis's own lines (a failed dial at each try, once printed
// on stderr in a format of their own) go through slog, at debug level;
// the outage is one warning. Needs no Redis: nothing listens on port 1.
func TestUnreachableRedisLogsOnlyJSON(t *testing.T) {
	bin := buildTokend(t)
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			in := startProcess(t, bin, nil, "--redis", "redis://127.0.0.1:1/0", "--log-format", "json", "--log-level", level)
			in.stop()
			var outage, client int
			for _, line := range strings.Split(strings.TrimSpace(in.stderr.String()), "\n") {
				var rec struct{ Level, Msg string }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("a line on stderr that is not JSON: %q", line)
				}
				switch {
				case strings.HasPrefix(rec.Msg, "redis is unreachable"):
					outage++
				case rec.Msg == "redis client":
					client++
				}
			}
			if outage != 1 {
				t.Errorf("%d outage warnings, want 1:\n%s", outage, in.stderr.String())
			}
			if (client > 0) != (level == "debug") {
				t.Errorf("%d go-redis lines at --log-level %s:\n%s", client, level, in.stderr.String())
			}
		})
	}
}
