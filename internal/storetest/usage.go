package storetest

import (
	"cmp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var usageTests = []test{
	{name: "counts add up across batches", run: testUsageCounts},
	{name: "last use keeps the latest and uses add up", run: testUsageLastUse},
	{name: "usage of a deleted token is ignored", run: testUsageDeletedToken},
	{name: "an empty batch is fine", run: testUsageEmpty},
	{name: "take use counts up to max_uses and no further", run: testTakeUse},
	{name: "take use is exact under 50 concurrent callers", run: testTakeUseConcurrent},
}

func usageOf(t *testing.T, s tokend.Store, id string, from, to time.Time) []tokend.UsageCount {
	t.Helper()
	got, err := s.Usage(t.Context(), id, from, to)
	if err != nil {
		t.Fatalf("Usage(%s): %v", id, err)
	}
	if !slices.IsSortedFunc(got, func(a, b tokend.UsageCount) int { return a.Hour.Compare(b.Hour) }) {
		t.Errorf("Usage(%s) is not oldest first: %v", id, got)
	}
	// The order of codes within an hour is not part of the contract.
	slices.SortStableFunc(got, func(a, b tokend.UsageCount) int {
		return cmp.Or(a.Hour.Compare(b.Hour), cmp.Compare(a.Code, b.Code))
	})
	return got
}

func testUsageCounts(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_one1", "app_a", "one"))
	mustCreateToken(t, s, newToken("tok_two2", "app_a", "two"))
	h0 := t0.Truncate(time.Hour)
	h1, h2, h3 := h0.Add(time.Hour), h0.Add(2*time.Hour), h0.Add(3*time.Hour)

	batches := []tokend.UsageBatch{
		{Counts: []tokend.UsageCount{
			{TokenID: "tok_one1", Hour: h0, Code: tokend.CodeValid, Count: 3},
			{TokenID: "tok_one1", Hour: h0, Code: tokend.CodeRateLimited, Count: 1},
			{TokenID: "tok_one1", Hour: h1, Code: tokend.CodeValid, Count: 2},
			{TokenID: "tok_two2", Hour: h0, Code: tokend.CodeValid, Count: 10},
		}},
		{Counts: []tokend.UsageCount{
			{TokenID: "tok_one1", Hour: h0, Code: tokend.CodeValid, Count: 4},
			{TokenID: "tok_one1", Hour: h2, Code: tokend.CodeValid, Count: 1},
			{TokenID: "tok_one1", Hour: h3, Code: tokend.CodeExpired, Count: 5},
		}},
	}
	for _, b := range batches {
		if err := s.RecordUsage(ctx, b); err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
	}

	cases := []struct {
		name     string
		id       string
		from, to time.Time
		want     []tokend.UsageCount
	}{
		{"two batches add up", "tok_one1", h0, h3.Add(time.Hour), []tokend.UsageCount{
			{TokenID: "tok_one1", Hour: h0, Code: tokend.CodeRateLimited, Count: 1},
			{TokenID: "tok_one1", Hour: h0, Code: tokend.CodeValid, Count: 7},
			{TokenID: "tok_one1", Hour: h1, Code: tokend.CodeValid, Count: 2},
			{TokenID: "tok_one1", Hour: h2, Code: tokend.CodeValid, Count: 1},
			{TokenID: "tok_one1", Hour: h3, Code: tokend.CodeExpired, Count: 5},
		}},
		{"from is inclusive, to exclusive", "tok_one1", h1, h3, []tokend.UsageCount{
			{TokenID: "tok_one1", Hour: h1, Code: tokend.CodeValid, Count: 2},
			{TokenID: "tok_one1", Hour: h2, Code: tokend.CodeValid, Count: 1},
		}},
		{"another token's counts are its own", "tok_two2", h0, h3, []tokend.UsageCount{
			{TokenID: "tok_two2", Hour: h0, Code: tokend.CodeValid, Count: 10},
		}},
		{"an empty range", "tok_one1", h1, h1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := usageOf(t, s, c.id, c.from, c.to)
			if len(c.want) == 0 && len(got) == 0 {
				return
			}
			if d := diff(c.want, got); d != "" {
				t.Errorf("usage (-want +got):\n%s", d)
			}
		})
	}
}

func testUsageLastUse(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	tok := newToken("tok_use1", "app_a", "busy")
	tok.UseCount = 10
	mustCreateToken(t, s, tok)

	steps := []struct {
		name   string
		use    tokend.LastUse
		wantAt time.Time
		wantIP string
		wantN  int64
	}{
		{"first use is kept", tokend.LastUse{At: at(2 * time.Hour), IP: "192.0.2.1", Uses: 3}, at(2 * time.Hour), "192.0.2.1", 13},
		{"an older batch arriving later only adds its uses", tokend.LastUse{At: at(time.Hour), IP: "192.0.2.2", Uses: 2}, at(2 * time.Hour), "192.0.2.1", 15},
		{"the same time does not move it", tokend.LastUse{At: at(2 * time.Hour), IP: "192.0.2.3", Uses: 1}, at(2 * time.Hour), "192.0.2.1", 16},
		{"a newer use moves it", tokend.LastUse{At: at(3 * time.Hour), IP: "2001:db8::7", Uses: 1}, at(3 * time.Hour), "2001:db8::7", 17},
	}
	for _, st := range steps {
		st.use.TokenID = "tok_use1"
		if err := s.RecordUsage(t.Context(), tokend.UsageBatch{Last: []tokend.LastUse{st.use}}); err != nil {
			t.Fatalf("%s: RecordUsage: %v", st.name, err)
		}
		got := mustToken(t, s, "tok_use1")
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(st.wantAt) || got.LastUsedIP != st.wantIP || got.UseCount != st.wantN {
			t.Errorf("%s: last used %v from %q, %d uses; want %v from %q, %d uses",
				st.name, got.LastUsedAt, got.LastUsedIP, got.UseCount, st.wantAt, st.wantIP, st.wantN)
		}
		// Usage is not a management change: the ETag of a busy token must
		// not move under an administrator editing it.
		if got.Version != tok.Version || !got.UpdatedAt.Equal(tok.UpdatedAt) {
			t.Errorf("%s: version %d, updated %v; want %d and %v unchanged", st.name, got.Version, got.UpdatedAt, tok.Version, tok.UpdatedAt)
		}
	}
}

func testUsageDeletedToken(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_gone", "app_a", "gone"))
	mustCreateToken(t, s, newToken("tok_live", "app_a", "live"))
	if err := s.DeleteToken(ctx, "tok_gone", 0, newEvent(tokend.ActionTokenDelete, "app_a", "tok_gone")); err != nil {
		t.Fatal(err)
	}
	h0 := t0.Truncate(time.Hour)
	err := s.RecordUsage(ctx, tokend.UsageBatch{
		Counts: []tokend.UsageCount{
			{TokenID: "tok_gone", Hour: h0, Code: tokend.CodeValid, Count: 1},
			{TokenID: "tok_live", Hour: h0, Code: tokend.CodeValid, Count: 2},
			{TokenID: "tok_never", Hour: h0, Code: tokend.CodeValid, Count: 3},
		},
		Last: []tokend.LastUse{
			{TokenID: "tok_gone", At: t0, IP: "192.0.2.1", Uses: 1},
			{TokenID: "tok_live", At: t0, IP: "192.0.2.2", Uses: 2},
		},
	})
	if err != nil {
		t.Fatalf("RecordUsage with a deleted token in the batch: %v", err)
	}
	if got := usageOf(t, s, "tok_gone", h0, h0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("usage of the deleted token = %v, want none", got)
	}
	want := []tokend.UsageCount{{TokenID: "tok_live", Hour: h0, Code: tokend.CodeValid, Count: 2}}
	if d := diff(want, usageOf(t, s, "tok_live", h0, h0.Add(time.Hour))); d != "" {
		t.Errorf("the rest of the batch still counts (-want +got):\n%s", d)
	}
	if got := mustToken(t, s, "tok_live"); got.UseCount != 2 || got.LastUsedIP != "192.0.2.2" {
		t.Errorf("live token: %d uses from %q, want 2 from 192.0.2.2", got.UseCount, got.LastUsedIP)
	}
	_, err = s.Token(ctx, "tok_gone")
	wantErrIs(t, "the deleted token stays deleted", err, tokend.ErrNotFound)
}

func testUsageEmpty(t *testing.T, s tokend.Store) {
	if err := s.RecordUsage(t.Context(), tokend.UsageBatch{}); err != nil {
		t.Errorf("RecordUsage(empty): %v", err)
	}
}

func testTakeUse(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	limited := newToken("tok_lim2", "app_a", "limited")
	limited.MaxUses = ptr(int64(3))
	limited.UseCount = 1
	mustCreateToken(t, s, limited)
	mustCreateToken(t, s, newToken("tok_free", "app_a", "unlimited"))
	zero := newToken("tok_zero", "app_a", "zero")
	zero.MaxUses = ptr(int64(0))
	mustCreateToken(t, s, zero)

	take := func(id string) bool {
		t.Helper()
		ok, err := s.TakeUse(ctx, id)
		if err != nil {
			t.Fatalf("TakeUse(%s): %v", id, err)
		}
		return ok
	}
	got := []bool{take("tok_lim2"), take("tok_lim2"), take("tok_lim2")}
	if !slices.Equal(got, []bool{true, true, false}) {
		t.Errorf("TakeUse with 1 of 3 used = %v, want true, true, false", got)
	}
	if tok := mustToken(t, s, "tok_lim2"); tok.UseCount != 3 || tok.Version != limited.Version {
		t.Errorf("after taking its uses: use count %d, version %d; want 3 and %d unchanged", tok.UseCount, tok.Version, limited.Version)
	}
	if take("tok_free") {
		t.Errorf("TakeUse of a token without max_uses answered ok")
	}
	if tok := mustToken(t, s, "tok_free"); tok.UseCount != 0 {
		t.Errorf("TakeUse of a token without max_uses counted %d uses", tok.UseCount)
	}
	if take("tok_zero") {
		t.Errorf("TakeUse of a token with max_uses 0 answered ok")
	}
	if take("tok_none") {
		t.Errorf("TakeUse of an unknown token answered ok")
	}

	// A batch flushed later adds its own uses and leaves the limit alone.
	err := s.RecordUsage(ctx, tokend.UsageBatch{Last: []tokend.LastUse{{TokenID: "tok_lim2", At: at(time.Hour), IP: "192.0.2.9"}}})
	if err != nil {
		t.Fatal(err)
	}
	if tok := mustToken(t, s, "tok_lim2"); tok.UseCount != 3 || tok.LastUsedIP != "192.0.2.9" {
		t.Errorf("after a batch without uses: %d uses from %q, want 3 from 192.0.2.9", tok.UseCount, tok.LastUsedIP)
	}
}

func testTakeUseConcurrent(t *testing.T, s tokend.Store) {
	const callers, max = 50, 10
	mustCreateApp(t, s, newApp("app_a"))
	tok := newToken("tok_race", "app_a", "raced")
	tok.MaxUses = ptr(int64(max))
	mustCreateToken(t, s, tok)

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		taken int
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			ok, err := s.TakeUse(t.Context(), "tok_race")
			if err != nil {
				t.Errorf("TakeUse: %v", err)
				return
			}
			if ok {
				mu.Lock()
				taken++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if taken != max {
		t.Errorf("%d concurrent TakeUse answered ok %d times, want exactly %d", callers, taken, max)
	}
	if got := mustToken(t, s, "tok_race"); got.UseCount != max {
		t.Errorf("use count %d, want %d", got.UseCount, max)
	}
}
