//go:build unix

package sqlite

import "syscall"

// canWrite asks the kernel whether this process may write the file at path,
// without opening it: closing any descriptor of the database file would
// release the POSIX locks SQLite holds on it.
func canWrite(path string) error {
	const wOK = 2 // W_OK, the same on every unix
	return syscall.Access(path, wOK)
}
