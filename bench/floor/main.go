// Command floor is the yardstick for POST /v1/verify: a bare net/http server
// doing the least any verifier must do for one request (verifyfloor.Handler)
// — decode the same JSON body, check the secret's checksum, HMAC-SHA256 it
// with a pepper, look the digest up in a map prepared at start, and encode a
// VALID answer shaped like tokend's. bench/verify.sh loads tokend and the floor alternately and
// reports tokend's throughput as a fraction of the floor's.
//
// The floor creates --tokens secrets itself (secret.Generate) and writes them
// to --secrets-out (one a line; a temp file when empty, whose path it
// prints); --secrets-in adds the secrets of a file (for instance one created
// through tokend's API) so that one load script can send the same token to
// both servers.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with --pprof, on its own address
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/bench/floor/verifyfloor"
	"github.com/tokend/tokend/secret"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on")
	n := flag.Int("tokens", 1000, "number of secrets to create")
	in := flag.String("secrets-in", "", "file of secrets (one a line) to answer VALID as well")
	out := flag.String("secrets-out", "", "file to write the created secrets to; a temp file when empty")
	pepper := flag.String("pepper", "floor-bench-pepper-0123456789abcdef", "HMAC pepper")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (debug)")
	flag.Parse()
	if err := run(*addr, *n, *in, *out, *pepper, *pprofAddr); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, n int, in, out, pepper, pprofAddr string) error {
	h, err := secret.NewHasher([]byte(pepper))
	if err != nil {
		return err
	}
	answers := make(map[[32]byte]*tokend.VerifyResult, n)
	add := func(sec string, i int) {
		exp := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		answers[h.Sum(sec)] = &tokend.VerifyResult{Valid: true, Code: tokend.CodeValid, Token: &tokend.VerifiedToken{
			ID: fmt.Sprintf("tok_floor%013d", i), AppID: "app_floor", Name: fmt.Sprintf("floor %d", i),
			Type: tokend.TypeStandard, Access: tokend.AccessReadOnly, ExpiresAt: &exp,
		}}
	}
	if out == "" {
		f, err := os.CreateTemp("", "floor-secrets-*.txt")
		if err != nil {
			return err
		}
		f.Close()
		out = f.Name()
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for i := range n {
		s, err := secret.Generate("flr")
		if err != nil {
			return err
		}
		add(s.Reveal(), i)
		fmt.Fprintln(bw, s.Reveal())
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if in != "" {
		b, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		for i, line := range strings.Fields(string(b)) {
			add(line, n+i)
		}
	}
	fmt.Printf("floor: %d secrets answer VALID; created ones are in %s\n", len(answers), out)

	if pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(pprofAddr, http.DefaultServeMux)) }()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("floor: listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: verifyfloor.Handler(h, answers), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
