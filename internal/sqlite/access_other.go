//go:build !unix

package sqlite

// canWrite has no cheap, lock-safe answer here; BEGIN IMMEDIATE in
// writable still catches a database SQLite opened read-only.
func canWrite(string) error { return nil }
