// Package testclock is a clock that tests move by hand, safe for the
// goroutines of the code under test to read. It is for tests only and must
// not be imported by production code.
package testclock

import (
	"sync"
	"time"
)

// Clock stands still until the test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New answers a clock that reads t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now answers the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
