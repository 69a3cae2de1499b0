package postgres

import (
	"database/sql"
	"strconv"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// fastPoll polls often, so that the tests below take little time.
var fastPoll = PollOptions{Interval: 5 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Timeout: time.Second}

// poll runs a poller on s until the test ends, waits until it is in sync,
// and answers it with the position of what rec is told next.
func poll(t *testing.T, s *Store, rec *recorder, o PollOptions) (*Poller, int) {
	t.Helper()
	p := s.Poller(rec, o)
	return p, follow(t, p.Run, p.Connected, rec)
}

// withAGap polls a fresh database holding tok_a1..3 and opens a gap: a
// transaction changing tok_a1, held open, takes its seq before a committed
// change of tok_a2, which is relayed.
func withAGap(t *testing.T, o PollOptions) (a *Store, p *Poller, rec *recorder, pos int, held *sql.Tx) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	seed(t, a, "tok_a1", "tok_a2", "tok_a3")
	rec = newRecorder()
	p, pos = poll(t, b, rec, o)

	held = heldOpen(t, a, "tok_a1")
	changeToken(t, a, "tok_a2", tokend.ActionTokenDisable, func(tok *tokend.Token) { tok.Status = tokend.StatusDisabled })
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a2" {
		t.Fatalf("told %q, want token:tok_a2", got)
	}
	return a, p, rec, pos, held
}

// until waits for cond, polling it, for at most 10s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so within 10s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldOpen begins a transaction on s that records a change of token id in
// the log, as a write does, and keeps it open.
func heldOpen(t *testing.T, s *Store, id string) *sql.Tx {
	t.Helper()
	tx, err := s.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if err := notify(t.Context(), tx, changedToken, id); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestChangesThroughOneStoreAreRelayedByAnothersPoller(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	seed(t, a, "tok_a1", "tok_a2")
	rec := newRecorder()
	p, pos := poll(t, b, rec, fastPoll)

	changeToken(t, a, "tok_a1", tokend.ActionTokenDisable, func(tok *tokend.Token) { tok.Status = tokend.StatusDisabled })
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a1" {
		t.Fatalf("told %q, want token:tok_a1", got)
	}
	if _, err := a.RevokeAppTokens(t.Context(), "app_a", t0, event(tokend.ActionAppRevokeAll, "app_a", "")); err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t, &pos, 5*time.Second); got != "app:app_a" {
		t.Fatalf("told %q, want app:app_a", got)
	}
	if err := a.DeleteToken(t.Context(), "tok_a2", 0, event(tokend.ActionTokenDelete, "app_a", "tok_a2")); err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a2" {
		t.Fatalf("told %q, want token:tok_a2", got)
	}
	if p.Notifications() != 3 || p.Reconnects() != 0 || !p.Connected() {
		t.Errorf("Notifications() = %d, Reconnects() = %d, Connected() = %v; want 3, 0, true", p.Notifications(), p.Reconnects(), p.Connected())
	}
}

// A transaction that took its seq first and commits after a later one, held
// open across many polls, is relayed when it commits; meanwhile later
// changes are relayed as they commit.
func TestAChangeCommittedLateIsRelayed(t *testing.T) {
	a, p, rec, pos, slow := withAGap(t, fastPoll)
	until(t, "one gap open", func() bool { return p.Gaps() == 1 })
	changeToken(t, a, "tok_a3", tokend.ActionTokenDisable, func(tok *tokend.Token) { tok.Status = tokend.StatusDisabled })
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a3" {
		t.Fatalf("told %q, want token:tok_a3", got)
	}
	if p.Gaps() != 1 || !p.Connected() {
		t.Fatalf("Gaps() = %d, Connected() = %v while the slow transaction runs; want 1, true", p.Gaps(), p.Connected())
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a1" {
		t.Fatalf("told %q, want token:tok_a1 (the late commit)", got)
	}
	until(t, "no gap open", func() bool { return p.Gaps() == 0 })
}

// A rolled-back transaction leaves a gap forever: it is let go once its
// transaction has ended, without relaying anything or resyncing.
func TestARolledBackChangeLeavesAGapThatIsLetGo(t *testing.T) {
	a, p, rec, pos, gone := withAGap(t, fastPoll)
	until(t, "one gap open", func() bool { return p.Gaps() == 1 })
	if err := gone.Rollback(); err != nil {
		t.Fatal(err)
	}
	until(t, "the gap let go", func() bool { return p.Gaps() == 0 })
	changeToken(t, a, "tok_a3", tokend.ActionTokenDisable, func(tok *tokend.Token) { tok.Status = tokend.StatusDisabled })
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a3" {
		t.Fatalf("told %q, want token:tok_a3: the rolled-back change or a resync was told", got)
	}
	if !p.Connected() || p.Notifications() != 2 {
		t.Errorf("Connected() = %v, Notifications() = %d; want true, 2", p.Connected(), p.Notifications())
	}
}

// A gap open longer than GapTimeout makes the cache out of sync from when
// it was first missed; once it closes the cache is in sync again, and keeps
// what it holds.
func TestAGapOpenTooLongIsOutOfSyncUntilItCloses(t *testing.T) {
	o := fastPoll
	o.GapTimeout = 50 * time.Millisecond
	began := time.Now()
	_, p, rec, pos, slow := withAGap(t, o)
	if got := rec.next(t, &pos, 5*time.Second); got != "out" {
		t.Fatalf("told %q, want out", got)
	}
	if since := rec.lastSince(); since.Before(began) {
		t.Errorf("out of sync since %s, before the gap could be seen (%s)", since.Format(time.StampMicro), began.Format(time.StampMicro))
	}
	if p.Connected() {
		t.Error("Connected() = true with a gap overdue")
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"token:tok_a1", "caughtup"} {
		if got := rec.next(t, &pos, 5*time.Second); got != want {
			t.Fatalf("told %q, want %q", got, want)
		}
	}
	until(t, "connected", p.Connected)
	if p.Reconnects() != 1 {
		t.Errorf("Reconnects() = %d, want 1", p.Reconnects())
	}
}

// pollingThroughAProxy polls, through a proxy the test can cut, a fresh
// database holding tok_a1, which the store direct reaches without the proxy.
func pollingThroughAProxy(t *testing.T) (proxy *pgtest.Proxy, direct *Store, p *Poller, rec *recorder, pos int) {
	t.Helper()
	proxy, direct, proxied := throughAProxy(t)
	rec = newRecorder()
	p, pos = poll(t, proxied, rec, fastPoll)
	return proxy, direct, p, rec, pos
}

// cutOff cuts the proxy, waits until the poller says it is out of sync,
// and answers when the cut was made.
func cutOff(t *testing.T, proxy *pgtest.Proxy, rec *recorder, pos *int) time.Time {
	t.Helper()
	proxy.Cut()
	cut := time.Now()
	if got := rec.next(t, pos, 5*time.Second); got != "out" {
		t.Fatalf("told %q, want out", got)
	}
	return cut
}

// A poll that fails makes the cache out of sync from the last poll that
// worked; once the database answers again the poller reads on from where
// it stopped, relays what it missed, and the cache keeps what it holds.
func TestAPollerCatchesUpAfterAnOutage(t *testing.T) {
	proxy, direct, p, rec, pos := pollingThroughAProxy(t)
	cut := cutOff(t, proxy, rec, &pos)
	if since := rec.lastSince(); since.After(cut) {
		t.Errorf("out of sync since %s, after the cut at %s", since.Format(time.StampMicro), cut.Format(time.StampMicro))
	}
	changeToken(t, direct, "tok_a1", tokend.ActionTokenRevoke, func(tok *tokend.Token) { tok.Status = tokend.StatusRevoked })
	if _, err := direct.RevokeAppTokens(t.Context(), "app_a", t0, event(tokend.ActionAppRevokeAll, "app_a", "")); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	for _, want := range []string{"token:tok_a1", "app:app_a", "caughtup"} {
		if got := rec.next(t, &pos, 10*time.Second); got != want {
			t.Fatalf("told %q, want %q", got, want)
		}
	}
	if p.Reconnects() != 1 || !p.Connected() {
		t.Errorf("Reconnects() = %d, Connected() = %v; want 1, true", p.Reconnects(), p.Connected())
	}
}

// When the rows a poller had not read yet were pruned meanwhile, it cannot
// tell what changed: it resyncs.
func TestAPollerResyncsWhenWhatItMissedWasPruned(t *testing.T) {
	proxy, direct, p, rec, pos := pollingThroughAProxy(t)
	cutOff(t, proxy, rec, &pos)
	changeToken(t, direct, "tok_a1", tokend.ActionTokenRevoke, func(tok *tokend.Token) { tok.Status = tokend.StatusRevoked })
	// Every row, even this one, is old enough for an age of a microsecond.
	until(t, "the change log pruned", func() bool {
		if err := direct.PruneChangeLog(t.Context(), time.Microsecond); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := direct.db.QueryRowContext(t.Context(), `SELECT count(*) FROM change_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	proxy.Restore()
	if got := rec.next(t, &pos, 10*time.Second); got != "resync" {
		t.Fatalf("told %q, want resync", got)
	}
	until(t, "connected", p.Connected)
	changeToken(t, direct, "tok_a1", tokend.ActionTokenUpdate, func(tok *tokend.Token) { tok.Description = "after" })
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a1" {
		t.Fatalf("told %q, want token:tok_a1", got)
	}
}

func TestSnapshots(t *testing.T) {
	for _, bad := range []string{"", "1:2", "a:2:", "1:b:", "1:2:x", "1:2:3:4"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("parseSnapshot(%q) = nil error", bad)
		}
	}
	then, err := parseSnapshot("100:105:100,103")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		now  string
		want bool
	}{
		{"100:106:100,105", false}, // 100 still runs
		{"101:106:103", false},     // 103 still runs
		{"101:106:104", true},      // both ended; 104 is not ours
		{"104:104:", true},
		{"200:200:", true},
	}
	for _, c := range cases {
		now, err := parseSnapshot(c.now)
		if err != nil {
			t.Fatal(err)
		}
		if got := now.after(then); got != c.want {
			t.Errorf("%s after %s = %v, want %v", c.now, "100:105:100,103", got, c.want)
		}
	}
}

// After an outage longer than a batch, the poller reads batch after batch,
// in seq order, and is in sync again only once it has read them all.
func TestAPollerCatchesUpBatchAfterBatch(t *testing.T) {
	proxy, direct, p, rec, pos := pollingThroughAProxy(t)
	cutOff(t, proxy, rec, &pos)
	const n = 2*pollBatch + 10
	if _, err := direct.db.ExecContext(t.Context(), `INSERT INTO change_log (kind, id) SELECT 'token', 'tok_' || g FROM generate_series(1, $1::int) g`, n); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	for i := 1; i <= n; i++ {
		if got, want := rec.next(t, &pos, 10*time.Second), "token:tok_"+strconv.Itoa(i); got != want {
			t.Fatalf("told %q, want %q", got, want)
		}
	}
	if got := rec.next(t, &pos, 5*time.Second); got != "caughtup" {
		t.Fatalf("told %q, want caughtup", got)
	}
	until(t, "connected", p.Connected)
}

// A transaction in flight when the poller starts, behind a later one that
// committed, is still relayed when it commits.
func TestAPollerStartingMidTransactionMissesNothing(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	seed(t, a, "tok_a1", "tok_a2")
	slow := heldOpen(t, a, "tok_a1")
	changeToken(t, a, "tok_a2", tokend.ActionTokenDisable, func(tok *tokend.Token) { tok.Status = tokend.StatusDisabled })
	rec := newRecorder()
	p, pos := poll(t, b, rec, fastPoll)
	until(t, "one gap open", func() bool { return p.Gaps() == 1 })
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t, &pos, 5*time.Second); got != "token:tok_a1" {
		t.Fatalf("told %q, want token:tok_a1", got)
	}
}
