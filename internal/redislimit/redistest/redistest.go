// Package redistest gives tests the Redis server named by TOKEND_TEST_REDIS
// (default redis://127.0.0.1:6379/0), a key prefix of their own so that
// parallel runs never meet, and a TCP proxy in front of the server that a
// test can cut or stall to play an outage without touching the server,
// which others share. Tests skip when no server answers, unless CI=true,
// where a missing server is a failure rather than a silent pass.
//
// It is for tests only and must not be imported by production code.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the server used when TOKEND_TEST_REDIS is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL answers the test server's URL after checking that it answers; it
// skips the test when it does not, or fails it under CI=true.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TOKEND_TEST_REDIS")
	if u == "" {
		u = DefaultURL
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("TOKEND_TEST_REDIS must be a redis:// URL: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		msg := "Redis not reachable at " + opt.Addr + ": set TOKEND_TEST_REDIS (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return u
}

// Client connects to the test server; it is closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, _ := redis.ParseURL(URL(t))
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix answers a key prefix that no other test uses, and deletes the
// keys under it when the test ends.
func Prefix(t testing.TB) string {
	t.Helper()
	raw := make([]byte, 6)
	rand.Read(raw)
	p := "tokend-test:" + hex.EncodeToString(raw) + ":"
	c := Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := Keys(ctx, c, p)
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("cleaning up the keys under %s: %v", p, err)
		}
	})
	return p
}

// Keys lists the keys under a prefix.
func Keys(ctx context.Context, c *redis.Client, prefix string) ([]string, error) {
	var keys []string
	it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	return keys, it.Err()
}

// Proxy forwards TCP connections to the test server until told otherwise.
type Proxy struct {
	ln     net.Listener
	target string
	db     int

	mu    sync.Mutex
	mode  mode
	conns map[net.Conn]struct{} // every open connection, both sides
	wg    sync.WaitGroup
}

type mode int

const (
	forwarding mode = iota
	cut             // every connection is closed at once
	stalled         // connections are accepted and never answered
)

// NewProxy starts a proxy on 127.0.0.1 in front of the test server; it
// stops when the test ends.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	opt, _ := redis.ParseURL(URL(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: opt.Addr, db: opt.DB, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// URL answers a redis:// URL that leads through the proxy to the test
// server's database.
func (p *Proxy) URL() string {
	u := url.URL{Scheme: "redis", Host: p.ln.Addr().String(), Path: "/" + strconv.Itoa(p.db)}
	return u.String()
}

// Cut closes every connection through the proxy and refuses new ones: Redis
// is gone, as when its machine is.
func (p *Proxy) Cut() { p.set(cut) }

// Stall closes every connection and from then on accepts new ones but
// forwards nothing: Redis answers no command, as when it hangs.
func (p *Proxy) Stall() { p.set(stalled) }

// Restore forwards again.
func (p *Proxy) Restore() { p.set(forwarding) }

func (p *Proxy) set(m mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) close() {
	p.ln.Close()
	p.set(cut)
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		m := p.mode
		switch m {
		case cut:
			c.Close()
		case stalled:
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if m == forwarding {
			p.wg.Add(1)
			go p.forward(c)
		}
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 3*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.mode != forwarding { // changed while dialling
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}
