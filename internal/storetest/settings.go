package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tokend/tokend"
)

var settingTests = []test{
	{name: "a key never set is not found", run: testSettingMissing},
	{name: "init stores the first value and never replaces it", run: testSettingInit},
	{name: "concurrent inits store one value and all answer it", run: testSettingInitRace},
}

func testSettingMissing(t *testing.T, s tokend.Store) {
	_, err := s.Setting(t.Context(), "pepper_fingerprint")
	wantErrIs(t, "Setting of a key never set", err, tokend.ErrNotFound)
}

func testSettingInit(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	got, err := s.InitSetting(ctx, "pepper_fingerprint", "aaaa")
	if err != nil || got != "aaaa" {
		t.Fatalf("first InitSetting = %q, %v; want aaaa", got, err)
	}
	got, err = s.InitSetting(ctx, "pepper_fingerprint", "bbbb")
	if err != nil || got != "aaaa" {
		t.Errorf("second InitSetting with another value = %q, %v; want the first value, aaaa", got, err)
	}
	got, err = s.Setting(ctx, "pepper_fingerprint")
	if err != nil || got != "aaaa" {
		t.Errorf("Setting = %q, %v; want aaaa", got, err)
	}
	// Keys are independent of each other.
	if got, err := s.InitSetting(ctx, "other", "cccc"); err != nil || got != "cccc" {
		t.Errorf("InitSetting of another key = %q, %v; want cccc", got, err)
	}
	if got, err := s.Setting(ctx, "pepper_fingerprint"); err != nil || got != "aaaa" {
		t.Errorf("after setting another key, Setting = %q, %v; want aaaa", got, err)
	}
}

// Instances that start together on one empty database each offer their own
// value; exactly one is kept, and each learns which.
func testSettingInitRace(t *testing.T, s tokend.Store) {
	const n = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   = make([]string, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.InitSetting(t.Context(), "pepper_fingerprint", fmt.Sprintf("value %d", i))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("InitSetting %d: %v", i, err)
		}
	}
	stored, err := s.Setting(t.Context(), "pepper_fingerprint")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != stored {
			t.Errorf("InitSetting %d answered %q, but %q is stored", i, v, stored)
		}
	}
}
