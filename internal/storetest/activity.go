package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokend/tokend"
)

var activityTests = []test{
	{name: "activity is answered newest first with every field", run: testActivityFields},
	{name: "activity keeps the 50 newest per token across batches", run: testActivityBound},
	{name: "activity of a deleted or unknown token is dropped", run: testActivityDeleted},
	{name: "activity of a token without any is empty", run: testActivityEmpty},
	{name: "activity stays bounded under concurrent batches", run: testActivityConcurrent},
	{name: "deleting a token deletes its activity", run: testActivityCascade},
}

func activityOf(t *testing.T, s tokend.Store, id string) []tokend.Activity {
	t.Helper()
	got, err := s.Activity(t.Context(), id)
	if err != nil {
		t.Fatalf("Activity(%s): %v", id, err)
	}
	if got == nil {
		t.Errorf("Activity(%s) = nil, want an empty list", id)
	}
	return got
}

func testActivityFields(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_one1", "app_a", "one"))
	rows := []tokend.Activity{
		{TokenID: "tok_one1", At: t0, IP: "203.0.113.9", Code: tokend.CodeValid},
		{TokenID: "tok_one1", At: t0.Add(time.Second), IP: "2001:db8::7", Code: tokend.CodeInsufficientPermissions, Method: "POST", Path: "/orders/7"},
		// Same instant as the row before: the later append comes first.
		{TokenID: "tok_one1", At: t0.Add(time.Second), IP: "", Code: tokend.CodeRateLimited, Method: "GET", Path: "/"},
	}
	if err := s.RecordActivity(t.Context(), rows); err != nil {
		t.Fatalf("RecordActivity: %v", err)
	}
	want := []tokend.Activity{rows[2], rows[1], rows[0]}
	if diff := cmp.Diff(want, activityOf(t, s, "tok_one1")); diff != "" {
		t.Errorf("Activity (-want +got):\n%s", diff)
	}
}

func testActivityBound(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_one1", "app_a", "one"))
	mustCreateToken(t, s, newToken("tok_two2", "app_a", "two"))
	n := 0
	next := func(id string) tokend.Activity {
		n++
		return tokend.Activity{TokenID: id, At: t0.Add(time.Duration(n) * time.Second), IP: "192.0.2.1", Code: tokend.CodeValid, Path: fmt.Sprintf("/r/%d", n)}
	}
	// 30 + 40 rows for one token in two batches, 3 for the other.
	var b1, b2 []tokend.Activity
	for range 30 {
		b1 = append(b1, next("tok_one1"))
	}
	for range 3 {
		b1 = append(b1, next("tok_two2"))
	}
	for range 40 {
		b2 = append(b2, next("tok_one1"))
	}
	for _, b := range [][]tokend.Activity{b1, b2} {
		if err := s.RecordActivity(t.Context(), b); err != nil {
			t.Fatalf("RecordActivity: %v", err)
		}
	}
	got := activityOf(t, s, "tok_one1")
	if len(got) != tokend.MaxActivity {
		t.Fatalf("tok_one1 has %d rows, want %d", len(got), tokend.MaxActivity)
	}
	// The newest is the last of b2; the oldest kept the 20th row of tok_one1.
	if got[0] != b2[39] || got[49] != b1[20] {
		t.Errorf("kept %v … %v, want %v … %v", got[0].Path, got[49].Path, b2[39].Path, b1[20].Path)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].At.Before(got[i-1].At) {
			t.Fatalf("row %d (%v) not older than row %d (%v)", i, got[i].At, i-1, got[i-1].At)
		}
	}
	if two := activityOf(t, s, "tok_two2"); len(two) != 3 {
		t.Errorf("tok_two2 has %d rows, want 3 (another token's prune must not touch it)", len(two))
	}
	// A single batch of more than the bound keeps the newest too.
	var big []tokend.Activity
	for range 70 {
		big = append(big, next("tok_two2"))
	}
	if err := s.RecordActivity(t.Context(), big); err != nil {
		t.Fatalf("RecordActivity: %v", err)
	}
	two := activityOf(t, s, "tok_two2")
	if len(two) != tokend.MaxActivity || two[0] != big[69] || two[49] != big[20] {
		t.Errorf("tok_two2 after 70 more: %d rows, first %v, last %v; want 50 from %v to %v",
			len(two), two[0].Path, two[len(two)-1].Path, big[69].Path, big[20].Path)
	}
}

func testActivityDeleted(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_gone", "app_a", "gone"))
	mustCreateToken(t, s, newToken("tok_live", "app_a", "live"))
	if err := s.DeleteToken(ctx, "tok_gone", 0, newEvent(tokend.ActionTokenDelete, "app_a", "tok_gone")); err != nil {
		t.Fatal(err)
	}
	err := s.RecordActivity(ctx, []tokend.Activity{
		{TokenID: "tok_gone", At: t0, Code: tokend.CodeValid},
		{TokenID: "tok_live", At: t0, Code: tokend.CodeValid},
		{TokenID: "tok_never", At: t0, Code: tokend.CodeValid},
	})
	if err != nil {
		t.Fatalf("RecordActivity with a deleted token in the batch: %v", err)
	}
	if got := activityOf(t, s, "tok_gone"); len(got) != 0 {
		t.Errorf("activity of the deleted token = %v, want none", got)
	}
	if got := activityOf(t, s, "tok_live"); len(got) != 1 {
		t.Errorf("activity of the live token = %v, want its row", got)
	}
}

func testActivityEmpty(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_one1", "app_a", "one"))
	if err := s.RecordActivity(t.Context(), nil); err != nil {
		t.Fatalf("RecordActivity(nil): %v", err)
	}
	if got := activityOf(t, s, "tok_one1"); len(got) != 0 {
		t.Errorf("Activity = %v, want none", got)
	}
	if got := activityOf(t, s, "tok_nope"); len(got) != 0 {
		t.Errorf("Activity of an unknown token = %v, want none", got)
	}
}

// Several instances flush the same tokens at once, in either order: none
// fails (no deadlock) and the answer is the newest rows.
func testActivityConcurrent(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_one1", "app_a", "one"))
	mustCreateToken(t, s, newToken("tok_two2", "app_a", "two"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rows []tokend.Activity
			for i := range 30 {
				at := t0.Add(time.Duration(w*100+i) * time.Millisecond)
				rows = append(rows,
					tokend.Activity{TokenID: "tok_one1", At: at, Code: tokend.CodeValid},
					tokend.Activity{TokenID: "tok_two2", At: at, Code: tokend.CodeValid})
			}
			if w%2 == 1 { // the other order of tokens
				for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
					rows[i], rows[j] = rows[j], rows[i]
				}
			}
			errs <- s.RecordActivity(t.Context(), rows)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("RecordActivity: %v", err)
		}
	}
	for _, id := range []string{"tok_one1", "tok_two2"} {
		got := activityOf(t, s, id)
		if len(got) != tokend.MaxActivity {
			t.Errorf("%s has %d rows, want %d", id, len(got), tokend.MaxActivity)
		}
		if len(got) > 0 && !got[0].At.Equal(t0.Add(729*time.Millisecond)) {
			t.Errorf("%s newest at %v, want the newest of every batch", id, got[0].At)
		}
	}
}

func testActivityCascade(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_one1", "app_a", "one"))
	if err := s.RecordActivity(ctx, []tokend.Activity{{TokenID: "tok_one1", At: t0, Code: tokend.CodeValid}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteToken(ctx, "tok_one1", 0, newEvent(tokend.ActionTokenDelete, "app_a", "tok_one1")); err != nil {
		t.Fatal(err)
	}
	if got := activityOf(t, s, "tok_one1"); len(got) != 0 {
		t.Errorf("activity after delete = %v, want none", got)
	}
}
