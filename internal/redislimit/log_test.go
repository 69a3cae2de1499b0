package redislimit_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/redislimit"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// With Redis unreachable, go-redis's own lines (a failed dial at each
// try) go through the limiter's slog logger at debug level, as JSON under
// a JSON handler, and the outage is one warning. Needs no Redis: nothing
// listens on port 1.
func TestGoRedisLogsThroughSlog(t *testing.T) {
	var buf lockedBuf
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := redislimit.Open("redis://127.0.0.1:1/0", redislimit.Options{Logger: log, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l.Up() {
		t.Fatal("up with nothing listening")
	}
	var client, outage int
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec struct{ Level, Msg, Detail string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a line that is not JSON: %q", line)
		}
		switch {
		case rec.Msg == "redis client":
			client++
			if rec.Level != "DEBUG" || !strings.Contains(rec.Detail, "dial") {
				t.Errorf("go-redis's line as %+v", rec)
			}
		case strings.HasPrefix(rec.Msg, "redis is unreachable"):
			outage++
		}
	}
	if client == 0 || outage != 1 {
		t.Errorf("%d go-redis lines (want some), %d outage warnings (want 1):\n%s", client, outage, buf.String())
	}
}
