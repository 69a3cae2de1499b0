// Command profserve runs tokend's HTTP API wired as `tokend serve` wires it
// (SQLite store, verification engine, manage service, httpapi.NewServer),
// plus net/http/pprof on a separate debug address, so that a CPU profile of
// POST /v1/verify under load can be taken without a profiling endpoint in
// the server itself:
//
//	go run ./bench/profserve --addr 127.0.0.1:27280 --pprof 127.0.0.1:27281
//	go tool pprof -top http://127.0.0.1:27281/debug/pprof/profile?seconds=10
//
// It prints an owner admin token on its first line, like serve's banner.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/secret"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:27280", "API address")
	pprofAddr := flag.String("pprof", "127.0.0.1:27281", "net/http/pprof address")
	dir := flag.String("data-dir", "", "data directory; a temp dir when empty")
	flag.Parse()
	if err := run(*addr, *pprofAddr, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(addr, pprofAddr, dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		d, err := os.MkdirTemp("", "tokend-profserve-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "tokend.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := secret.NewHasher([]byte("tokend-bench-pepper-0123456789abcdef"))
	if err != nil {
		return err
	}
	engine := verify.New(verify.Options{Store: st, Hasher: h})
	go engine.Run(ctx)
	svc := manage.New(manage.Options{Store: st, Hasher: h, Invalidator: engine})
	_, admin, err := svc.Bootstrap(ctx)
	if err != nil {
		return err
	}
	fmt.Println(admin.Reveal())

	dbg := http.NewServeMux()
	dbg.HandleFunc("/debug/pprof/", pprof.Index)
	dbg.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { log.Println(http.ListenAndServe(pprofAddr, dbg)) }()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           httpapi.NewServer(httpapi.Deps{Service: svc, Verifier: engine, Ready: st.Ping}),
		ConnContext:       httpapi.ConnContext,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	fmt.Printf("profserve: API on http://%s, pprof on http://%s/debug/pprof/\n", ln.Addr(), pprofAddr)
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
