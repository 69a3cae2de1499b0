package main

import (
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/tokend/tokend/internal/github"
)

// reloader reads one part of serve's configuration again (GitHub's
// scanning keys; TLS certificates may follow). reload answers what to log
// with the outcome; on an error the part must keep what it had.
type reloader struct {
	name   string
	reload func() (attrs []any, err error)
}

// reloadOnHangup runs every reloader each time the process gets SIGHUP,
// logging each outcome: a failed reload is an error in the log and changes
// nothing, the server goes on as it was. Without it SIGHUP would end the
// process. stop ends the watch and waits for a reload under way.
func reloadOnHangup(log *slog.Logger, rs []reloader) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
			}
			if len(rs) == 0 {
				log.Info("SIGHUP: nothing to reload")
			}
			for _, r := range rs {
				attrs, err := r.reload()
				if err != nil {
					log.Error("SIGHUP: reload failed; keeping what was loaded before", append([]any{"what", r.name, "err", err}, attrs...)...)
					continue
				}
				log.Info("SIGHUP: reloaded", append([]any{"what", r.name}, attrs...)...)
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// warnSkippedKeys logs each entry of GitHub's key list that was left out
// (the reports its key signs are refused, 401), naming its key_identifier.
func warnSkippedKeys(log *slog.Logger, file string, set *github.KeySet) {
	for _, sk := range set.Skipped() {
		log.Warn("--github-scanning-keys: a key is skipped", "file", file, "index", sk.Index,
			"key_identifier", sk.KeyIdentifier, "reason", sk.Reason)
	}
}
