//go:build unix

package client

import (
	"syscall"
	"time"
)

// processCPU answers the CPU time (user and system) this process has used,
// and true; benchmarks compare it across rounds, where other processes'
// load moves wall time much more than what a request costs.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
