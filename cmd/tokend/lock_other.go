//go:build !unix

package main

import "os"

// tryLock takes no lock where flock does not exist: two servers on one data
// directory are not prevented there. The PID is still written.
func tryLock(*os.File) error { return nil }

// flockWorks: tryLock takes no lock here.
const flockWorks = false
