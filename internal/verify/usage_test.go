package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// usage sums what the store received, by token, hour and code, and the last
// use per token.
func usage(batches []tokend.UsageBatch) (map[tokend.UsageCount]int64, map[string]tokend.LastUse) {
	counts := map[tokend.UsageCount]int64{}
	last := map[string]tokend.LastUse{}
	for _, b := range batches {
		for _, c := range b.Counts {
			k := c
			k.Count = 0
			counts[k] += c.Count
		}
		for _, l := range b.Last {
			cur := last[l.TokenID]
			if l.At.After(cur.At) {
				cur.At, cur.IP = l.At, l.IP
			}
			cur.TokenID = l.TokenID
			cur.Uses += l.Uses
			last[l.TokenID] = cur
		}
	}
	return counts, last
}

func key(id string, hour time.Time, code tokend.Code) tokend.UsageCount {
	return tokend.UsageCount{TokenID: id, Hour: hour, Code: code}
}

func TestUsageIsCountedByHourAndCodeAndFlushed(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_use"; t.Access = tokend.AccessReadOnly })
	h.clock.Set(time.Date(2030, 1, 1, 9, 59, 58, 0, time.UTC))
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"})
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.2", Permissions: []string{"write"}})
	h.clock.Advance(time.Second)
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.3"})
	h.clock.Advance(time.Second) // 10:00:00, the next hour
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.4"})
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.5", Origin: "https://x.example"})
	h.verify(tokend.VerifyRequest{Token: "not a token"}) // identifies no token: not counted

	if n := h.store.usageCalls.Load(); n != 0 {
		t.Fatalf("usage written on the hot path: %d calls", n)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := h.store.recorded()
	counts, last := usage(b)
	nine := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
	ten := nine.Add(time.Hour)
	want := map[tokend.UsageCount]int64{
		key("tok_use", nine, tokend.CodeValid):                   2,
		key("tok_use", nine, tokend.CodeInsufficientPermissions): 1,
		key("tok_use", ten, tokend.CodeValid):                    1,
		key("tok_use", ten, tokend.CodeOriginNotAllowed):         1,
	}
	if len(counts) != len(want) {
		t.Errorf("counts = %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("count %s %s = %d, want %d", k.Hour.Format("15:04"), k.Code, counts[k], n)
		}
	}
	l := last["tok_use"]
	if !l.At.Equal(ten) || l.IP != "192.0.2.4" || l.Uses != 3 || len(last) != 1 {
		t.Errorf("last use = %+v, want 10:00 from 192.0.2.4 with 3 uses", l)
	}
	for _, batch := range b {
		for _, c := range batch.Counts {
			if c.Hour.Location() != time.UTC {
				t.Errorf("hour %v is not UTC", c.Hour)
			}
		}
	}

	// Nothing new, nothing written.
	h.e.Flush(context.Background())
	if n := h.store.usageCalls.Load(); n != 1 {
		t.Errorf("an empty flush called RecordUsage (%d calls)", n)
	}
}

func TestFailedFlushKeepsUsageForTheNextOne(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_keep" })
	start := h.clock.Now()
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"})
	h.clock.Advance(time.Second)
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.2"})

	down := errors.New("disk full")
	h.store.set(func(s *fakeStore) { s.usageErr = down })
	if err := h.e.Flush(context.Background()); !errors.Is(err, down) {
		t.Fatalf("Flush = %v, want the store's error", err)
	}
	// Collected while storage was down, merged with what was kept; the
	// older last use of the kept batch must not win over this one.
	h.clock.Advance(time.Second)
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.3"})
	h.e.Flush(context.Background()) // fails again
	h.verify(tokend.VerifyRequest{Token: "tkd_x", IP: "192.0.2.9"})

	h.store.set(func(s *fakeStore) { s.usageErr = nil })
	if err := h.e.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	b, _ := h.store.recorded()
	if len(b) != 1 {
		t.Fatalf("batches = %d, want 1 merged batch", len(b))
	}
	counts, last := usage(b)
	hour := start.Truncate(time.Hour)
	if n := counts[key("tok_keep", hour, tokend.CodeValid)]; n != 3 {
		t.Errorf("VALID count = %d, want 3", n)
	}
	if rows := len(b[0].Counts); rows != 1 {
		t.Errorf("merged batch has %d count rows for one key, want 1", rows)
	}
	l := last["tok_keep"]
	if l.Uses != 3 || l.IP != "192.0.2.3" || !l.At.Equal(start.Add(2*time.Second)) {
		t.Errorf("last use = %+v, want 3 uses, latest from 192.0.2.3", l)
	}
}

func TestFailedEventWriteIsRetried(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_ev" })
	h.store.set(func(s *fakeStore) {
		c := s.creds[h.hasher.Sum(sec)]
		s.creds[h.hasher.Sum(sec)] = tokend.Credential{Token: c.Token, Retired: true}
	})
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.7"})
	h.store.set(func(s *fakeStore) { s.eventErr = errors.New("locked") })
	if err := h.e.Flush(context.Background()); err == nil {
		t.Fatal("Flush hid the event write failure")
	}
	h.store.set(func(s *fakeStore) { s.eventErr = nil })
	h.e.Flush(context.Background())
	if _, evs := h.store.recorded(); len(evs) != 1 || evs[0].IP != "192.0.2.7" {
		t.Fatalf("events = %+v", evs)
	}
}

func TestOldSecretWarningNeverCarriesTheSecret(t *testing.T) {
	var logs strings.Builder
	h := newHarness(t, func(o *Options) { o.Logger = newTextLogger(&logs) })
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_log" })
	h.store.set(func(s *fakeStore) {
		c := s.creds[h.hasher.Sum(sec)]
		s.creds[h.hasher.Sum(sec)] = tokend.Credential{Token: c.Token, Retired: true}
	})
	h.store.set(func(s *fakeStore) { s.usageErr = errors.New("x") })
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.7"})
	h.e.Flush(context.Background())
	out := logs.String()
	if !strings.Contains(out, "tok_log") || !strings.Contains(out, "level=WARN") {
		t.Errorf("no warning naming the token: %s", out)
	}
	if strings.Contains(out, sec[4:24]) {
		t.Errorf("the log holds the secret: %s", out)
	}
}

func TestRunFlushesOnItsTicker(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FlushInterval = time.Millisecond })
	sec := h.token()
	h.code(sec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.e.Run(ctx)
		close(done)
	}()
	// Wait on the condition, with a deadline, rather than sleeping.
	deadline := time.Now().Add(5 * time.Second)
	for h.store.usageCalls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not flush within 5s")
		}
		<-time.After(time.Millisecond)
	}
	cancel()
	<-done
	b, _ := h.store.recorded()
	if _, last := usage(b); len(last) != 1 {
		t.Fatalf("batches = %+v", b)
	}
}

func TestUsageOfEveryCodeThatIdentifiedAToken(t *testing.T) {
	h := newHarness(t)
	past := h.clock.Now().Add(-time.Second)
	secs := map[tokend.Code]string{
		tokend.CodeDisabled: h.token(func(t *tokend.Token) { t.ID = "tok_d"; t.Status = tokend.StatusDisabled }),
		tokend.CodeExpired:  h.token(func(t *tokend.Token) { t.ID = "tok_e"; t.ExpiresAt = &past }),
		tokend.CodeRevoked:  h.token(func(t *tokend.Token) { t.ID = "tok_r"; t.Status = tokend.StatusRevoked }),
	}
	for _, s := range secs {
		h.code(s)
	}
	h.e.Flush(context.Background())
	b, _ := h.store.recorded()
	counts, last := usage(b)
	var got []string
	for k := range counts {
		got = append(got, k.TokenID+" "+string(k.Code))
	}
	slices.Sort(got)
	if want := []string{"tok_d DISABLED", "tok_e EXPIRED", "tok_r REVOKED"}; !slices.Equal(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	if len(last) != 0 {
		t.Errorf("refused verifications updated last use: %+v", last)
	}
}

func TestPastHoursAreForgottenOnceWritten(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_hours" })
	for range 5 {
		h.code(sec)
		h.clock.Advance(time.Hour)
	}
	h.code(sec)
	for range 3 {
		h.e.Flush(context.Background())
	}
	st := h.e.cache.get(ptr(h.hasher.Sum(sec)), h.clock.Now().UnixNano(), int64(time.Hour)).state
	st.mu.Lock()
	n := 0
	if st.held != nil {
		n = len(st.held.past)
	}
	st.mu.Unlock()
	if n != 0 {
		t.Errorf("%d past hours still held after they were written", n)
	}
	b, _ := h.store.recorded()
	counts, _ := usage(b)
	if len(counts) != 6 {
		t.Errorf("counts = %v, want one VALID row for each of 6 hours", counts)
	}
}

func TestLastUsedIPIsOnlyEverAnAddress(t *testing.T) {
	tests := []struct{ given, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"fe80::1%eth0", "fe80::1"},
		{"10.0.0.1\x00", ""},
		{"not an address", ""},
		{"192.0.2.1, 10.0.0.1", ""},
		{"", ""},
	}
	for _, tt := range tests {
		h := newHarness(t)
		sec := h.token(func(t *tokend.Token) { t.ID = "tok_ip" })
		h.verify(tokend.VerifyRequest{Token: sec, IP: "198.51.100.7"})
		h.clock.Advance(time.Second)
		h.verify(tokend.VerifyRequest{Token: sec, IP: tt.given})
		if err := h.e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, _ := h.store.recorded()
		_, last := usage(b)
		if got := last["tok_ip"].IP; got != tt.want {
			t.Errorf("last used from %q: stored %q, want %q", tt.given, got, tt.want)
		}
	}
}

// badIP is the fake store's stand-in for a value the database refuses.
const badIP = "192.0.2.66"

func TestFlushWritesEveryGoodRowAndDropsOnlyTheBadOne(t *testing.T) {
	h := newHarness(t)
	h.store.set(func(s *fakeStore) {
		s.refuse = func(_ *tokend.UsageCount, l *tokend.LastUse) bool { return l != nil && l.IP == badIP }
	})
	var secs []string
	for i := range 20 {
		secs = append(secs, h.token(func(t *tokend.Token) { t.ID = fmt.Sprintf("tok_row%02d", i) }))
	}
	for i, sec := range secs {
		ip := "198.51.100.1"
		if i == 7 {
			ip = badIP
		}
		h.verify(tokend.VerifyRequest{Token: sec, IP: ip})
	}
	if err := h.e.Flush(context.Background()); err == nil {
		t.Fatalf("Flush with a refused row answered no error")
	}
	if n := h.e.FlushErrors(); n < 2 {
		t.Errorf("flush errors = %d, want the flush and the dropped row counted", n)
	}
	b, _ := h.store.recorded()
	counts, last := usage(b)
	for i := range secs {
		id := fmt.Sprintf("tok_row%02d", i)
		if counts[key(id, h.clock.Now().Truncate(time.Hour), tokend.CodeValid)] != 1 {
			t.Errorf("%s: hourly count not written", id)
		}
		l, ok := last[id]
		if i == 7 {
			if ok {
				t.Errorf("the refused row was written: %+v", l)
			}
			continue
		}
		if !ok || l.Uses != 1 {
			t.Errorf("%s: last use %+v, want written with 1 use", id, l)
		}
	}
	// The bad row is gone for good: the next flush is clean and writes
	// what came since.
	h.store.set(func(s *fakeStore) { s.batches = nil })
	h.verify(tokend.VerifyRequest{Token: secs[0], IP: "198.51.100.2"})
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatalf("the flush after the bad row: %v", err)
	}
	b, _ = h.store.recorded()
	if _, last := usage(b); len(last) != 1 || last["tok_row00"].IP != "198.51.100.2" {
		t.Fatalf("next flush wrote %+v", b)
	}
}

func TestFlushKeepsTheWholeBatchWhileStorageIsDown(t *testing.T) {
	h := newHarness(t)
	var secs []string
	for i := range 5 {
		secs = append(secs, h.token(func(t *tokend.Token) { t.ID = fmt.Sprintf("tok_out%d", i) }))
	}
	for _, sec := range secs {
		h.verify(tokend.VerifyRequest{Token: sec, IP: "198.51.100.1"})
	}
	h.store.set(func(s *fakeStore) { s.usageErr = tokend.Unavailable(errors.New("connection refused")) })
	if err := h.e.Flush(context.Background()); err == nil {
		t.Fatal("Flush with storage down answered no error")
	}
	if n := h.store.usageCalls.Load(); n != 1 {
		t.Errorf("%d writes with storage down, want 1: an outage is not split row by row", n)
	}
	// Refused for some other reason by every row: nothing landed, so it
	// is kept too, not dropped.
	h.store.set(func(s *fakeStore) { s.usageErr = errors.New("disk I/O error") })
	h.e.Flush(context.Background())
	h.store.set(func(s *fakeStore) { s.usageErr = nil })
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := h.store.recorded()
	if _, last := usage(b); len(last) != len(secs) {
		t.Fatalf("after storage came back: %d last uses written, want %d: %+v", len(last), len(secs), b)
	}
}

// A token not verified since the last flush gives up its counters, its
// activity array and its last address at the flushes after, so that a cache
// of idle tokens holds none; verified again, it counts from fresh ones, and
// nothing is lost.
func TestIdleTokenGivesUpItsUsageCounters(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_idle" })
	h.clock.Set(time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
	st := func() *tokenState {
		sh := &h.e.tokens.shard[h.e.tokens.shardIndex("tok_idle")]
		sh.mu.RLock()
		defer sh.mu.RUnlock()
		return sh.byID["tok_idle"]
	}
	held := func() (usage bool, past int, notes bool, addr string) {
		s := st()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.held != nil {
			past, addr = len(s.held.past), s.held.lastIP
		}
		return s.usage.Load() != nil, past, s.held != nil, addr
	}
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"})
	for range 3 {
		if err := h.e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if u, p, n, a := held(); u || p != 0 || n || a != "" {
		t.Fatalf("idle after three flushes: current hour held %v, %d past hours, activity or past hours held %v, last address %q; want none", u, p, n, a)
	}
	h.clock.Advance(time.Minute)
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"})
	if u, _, n, a := held(); !u || !n || a != "192.0.2.1" {
		t.Fatalf("verified again: current hour held %v, activity held %v, last address %q; want both and 192.0.2.1", u, n, a)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := h.store.recorded()
	counts, last := usage(b)
	if n := counts[key("tok_idle", time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC), tokend.CodeValid)]; n != 2 {
		t.Errorf("VALID at 09:00 counted %d times, want 2", n)
	}
	if l := last["tok_idle"]; !l.At.Equal(time.Date(2030, 1, 1, 9, 1, 0, 0, time.UTC)) || l.IP != "192.0.2.1" {
		t.Errorf("last use written %v from %q, want 09:01 from 192.0.2.1", l.At, l.IP)
	}
}
