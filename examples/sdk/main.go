// Command sdk is a tiny API guarded by tokend through the Go SDK's
// net/http middleware: every request needs a token that tokend finds good
// for it (GET needs read access, POST write access).
//
// Run it against a local tokend:
//
//	go run ./cmd/tokend serve      # first start: prints an owner token; keep it as TOKEND_TOKEN
//	export TOKEND_URL=http://127.0.0.1:8080 TOKEND_TOKEN=…
//	go run ./cmd/tokend app create --name Shop --prefix shop
//	go run ./cmd/tokend token create --app app_… --name reader   # read_only; prints the secret
//	go run ./examples/sdk          # listens on 127.0.0.1:9090 (ADDR to change)
//
//	curl -H "Authorization: Bearer shop_…" http://127.0.0.1:9090/orders          # 200
//	curl -X POST -H "Authorization: Bearer shop_…" http://127.0.0.1:9090/orders  # 403: read_only
//	curl http://127.0.0.1:9090/orders                                            # 401
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/tokend/tokend/client"
)

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	tokendURL, addr := getenv("TOKEND_URL"), getenv("ADDR")
	if tokendURL == "" {
		tokendURL = "http://127.0.0.1:8080"
	}
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	tc, err := client.New(tokendURL) // verification needs no admin token
	if err != nil {
		return err
	}
	guard := tc.Middleware(
		client.CacheTTL(5*time.Second),
		client.OnError(func(r *http.Request, err error) {
			slog.ErrorContext(r.Context(), "cannot verify a token", "err", err)
		}),
	)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := client.TokenFrom(r.Context())
		fmt.Fprintf(w, "orders for %s (token %s, app %s, access %s)\n", tok.Name, tok.ID, tok.AppID, tok.Access)
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := client.TokenFrom(r.Context())
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "order placed by %s\n", tok.Name)
	})

	srv := &http.Server{Addr: addr, Handler: guard(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	slog.Info("example API listening", "addr", addr, "tokend", tokendURL)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
