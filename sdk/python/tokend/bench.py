"""Benchmark: a hello-world WSGI app with and without WSGIMiddleware.

    python3 -m tokend.bench [--url URL --secret SECRET] [--requests N] [--rounds R]

The middleware's answer is cached (the first request asks tokend, every
other one is the cached path), and both apps are measured in the same run,
in alternating rounds, in two ways:

- over HTTP: each app served by wsgiref on 127.0.0.1, sent the same GET with
  a bearer token over a new connection each (wsgiref speaks HTTP/1.0), from
  one client thread of this process;
- in-process: each app called directly with a copy of the same environ.

It prints requests/s for each, and the median over the rounds of the ratio
with/without (the goal is at least 0.9). A third measure is of the client
itself, uncached: calls of Client.verify on its kept connection ("with")
against calls on a new connection each ("without"). Against a real tokend give --url
and --secret (a valid token's); without them a stub on 127.0.0.1 answers the
one verification the cache needs as tokend would answer VALID.
"""

import argparse
import http.client
import http.server
import json
import socket
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import setup_testing_defaults

from ._client import Client
from ._secret import _example
from .middleware import WSGIMiddleware

def hello(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [b"hello world\n"]


def _stub_tokend() -> Tuple[str, Callable[[], None]]:
    """A stand-in for tokend's POST /v1/verify that answers VALID."""
    answer = json.dumps({"valid": True, "code": "VALID", "token": {"id": "tok_bench", "app_id": "app_bench",
                         "name": "bench", "type": "standard", "access": "full_access"}}).encode()  # fmt: skip

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # connections kept open, as tokend keeps them

        def setup(self) -> None:
            super().setup()
            # The head and the body go out in two writes: without this, the
            # second waits for the client's delayed ACK of the first (40 ms),
            # which tokend (Go) never makes a client wait.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop() -> None:
        srv.shutdown()
        srv.server_close()

    return "http://127.0.0.1:%d" % srv.server_address[1], stop


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def _serve(app: Any) -> Tuple[WSGIServer, int]:
    srv = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def _over_http(port: int, secret: str, n: int) -> Tuple[float, float]:
    """Send n GETs, each on its own connection; answer requests/s by wall
    time and by the CPU time of this process (client and server alike)."""
    headers = {"Authorization": "Bearer " + secret}
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/hello", headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit("the app answered %d: is the token valid?" % r.status)
        c.close()
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def _in_process(app: Any, environ: Dict[str, Any], n: int) -> Tuple[float, float]:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        if status[:3] != "200":
            raise SystemExit("the app answered %s: is the token valid?" % status)

    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        for _ in app(dict(environ), start_response):
            pass
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def _verify_calls(client: Client, secret: str, n: int, kept: bool) -> Tuple[float, float]:
    """Call client.verify n times, on its kept connection or (kept False)
    on a new connection each, as the client did before it kept them."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        if not kept:
            client.close()
        if not client.verify(secret).valid:
            raise SystemExit("tokend answered not valid: is the token valid?")
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def _rounds(label: str, plain: Callable[[], Tuple[float, float]], guarded: Callable[[], Tuple[float, float]], rounds: int) -> Dict[str, Any]:
    """Run both sides rounds times, alternating which goes first so that a
    change of load between the halves of a round favours neither, and
    answer the medians: of each side's requests/s, and of the per-round
    ratios with/without, by wall time and by CPU time."""
    wall: List[Tuple[float, float]] = []
    cpu: List[Tuple[float, float]] = []
    for i in range(rounds):
        if i % 2 == 0:
            a = plain()
            b = guarded()
        else:
            b = guarded()
            a = plain()
        wall.append((a[0], b[0]))
        cpu.append((a[1], b[1]))
    res: Dict[str, Any] = {"measure": label, "rounds": rounds}
    for name, pairs in (("wall", wall), ("cpu", cpu)):
        ratios = [b / a for a, b in pairs]
        without = statistics.median(a for a, _ in pairs)
        with_ = statistics.median(b for _, b in pairs)
        res[name] = {
            "without_rps": without,
            "with_rps": with_,
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "added_us": (1 / with_ - 1 / without) * 1e6,
        }
    return res


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m tokend.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a tokend's base URL (default: a stub answering VALID)")
    p.add_argument("--secret", help="a valid token's secret, with --url")
    p.add_argument("--requests", type=int, default=500, help="HTTP requests per app per round (default 500)")
    p.add_argument("--inproc", type=int, default=50000, help="in-process calls per app per round (default 50000)")
    p.add_argument("--rounds", type=int, default=30, help="alternating rounds (default 30)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if bool(args.url) != bool(args.secret):
        p.error("--url and --secret go together")

    stop = None
    url, secret = args.url, args.secret
    if not url:
        url, stop = _stub_tokend()
        secret = _example("bench")
    try:
        client = Client(url)
        guarded_app = WSGIMiddleware(hello, client)  # the default cache: 5 s
        # Keep the cached answer fresh for the whole run without changing
        # what a request does: the clock the cache reads stands still.
        frozen = time.monotonic()
        guarded_app._guard.monotonic = lambda: frozen

        environ: Dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/hello", "REMOTE_ADDR": "127.0.0.1",
                                   "HTTP_AUTHORIZATION": "Bearer " + secret}  # fmt: skip
        setup_testing_defaults(environ)
        _in_process(guarded_app, environ, 1)  # the one call to tokend: now cached

        plain_srv, plain_port = _serve(hello)
        guarded_srv, guarded_port = _serve(guarded_app)
        try:
            _over_http(plain_port, secret, 200)  # warm up
            _over_http(guarded_port, secret, 200)
            results = [
                _rounds("over HTTP (wsgiref)", lambda: _over_http(plain_port, secret, args.requests),
                        lambda: _over_http(guarded_port, secret, args.requests), args.rounds),  # fmt: skip
                _rounds("in-process", lambda: _in_process(hello, environ, args.inproc),
                        lambda: _in_process(guarded_app, environ, args.inproc), args.rounds),  # fmt: skip
                # Not the middleware: the client's calls to tokend, "with"
                # a kept connection, "without" a new one each.
                _rounds("client.verify", lambda: _verify_calls(client, secret, args.requests, False),
                        lambda: _verify_calls(client, secret, args.requests, True), args.rounds),  # fmt: skip
            ]
        finally:
            for s in (plain_srv, guarded_srv):
                s.shutdown()
                s.server_close()
    finally:
        if stop is not None:
            stop()

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("python %s, %d rounds, tokend: %s" % (sys.version.split()[0], args.rounds, "given" if args.url else "stub"))
    for r in results:
        for name in ("wall", "cpu"):
            m = r[name]
            print(
                "%-20s by %-4s time: without %9.0f req/s, with %9.0f req/s; with/without median %.3f (rounds %.3f–%.3f), %+.1f µs a request"
                % (r["measure"], name, m["without_rps"], m["with_rps"], m["ratio_median"], m["ratio_min"], m["ratio_max"], m["added_us"])
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
