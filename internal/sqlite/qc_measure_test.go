package sqlite

import (
	"os"
	"testing"
	"time"
)

// TestQuickCheckTime measures what the integrity check adds to a start, on
// a database named by TOKEND_QUICK_CHECK_DB (bench/seed makes one), e.g.
//
//	go run ./bench/seed -db /tmp/q/bench.db -secrets /tmp/q/s.txt -tokens 1000 -bulk 99000
//	TOKEND_QUICK_CHECK_DB=/tmp/q/bench.db go test -run TestQuickCheckTime -v ./internal/sqlite/
func TestQuickCheckTime(t *testing.T) {
	path := os.Getenv("TOKEND_QUICK_CHECK_DB")
	if path == "" {
		t.Skip("set TOKEND_QUICK_CHECK_DB to a database to measure")
	}
	for i := range 3 {
		start := time.Now()
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		open := time.Since(start)
		start = time.Now()
		if err := s.quickCheck(t.Context()); err != nil {
			t.Fatal(err)
		}
		check := time.Since(start)
		start = time.Now()
		const pings = 100
		for range pings {
			if err := s.Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		ping := time.Since(start) / pings
		s.Close()
		t.Logf("run %d: Open %s (quick_check included), quick_check again %s, Ping (readiness) %s", i+1, open, check, ping)
	}
}
