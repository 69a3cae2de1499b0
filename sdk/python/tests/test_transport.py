"""The client's connections: kept alive and shared between calls and
threads, replaced when the server closed them, bounded in time, and answers
read no further than their limits."""

import json
import socket
import socketserver
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import tokend
from tests import server
from tests.test_client import FakeServer
from tokend._client import MAX_ANSWER_BYTES, _dropped

_NOT_FOUND = json.dumps({"valid": False, "code": "NOT_FOUND"}).encode()
_APPS = b'{"items":[],"next_cursor":""}'


def _answer(h: Any) -> Tuple[int, Dict[str, str], bytes]:
    return (200, {"Content-Type": "application/json"}, _NOT_FOUND if h.path == "/v1/verify" else _APPS)


def _wait(cond: Any, what: str) -> None:
    """Wait for cond() with a deadline, failing with what."""
    deadline = time.monotonic() + 10
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("waited 10 s for " + what)
        time.sleep(0.005)


class KeepAliveTest(unittest.TestCase):
    def fake(self, handler: Any = _answer) -> FakeServer:
        f = FakeServer(handler, keep_alive=True)
        self.addCleanup(f.close)
        return f

    def client(self, url: str, **kw: Any) -> tokend.Client:
        c = tokend.Client(url, **kw)
        self.addCleanup(c.close)
        return c

    def test_fifty_calls_use_one_connection(self) -> None:
        f = self.fake()
        c = self.client(f.url, admin_token=server.unknown_secret("tkd_admin"))
        for i in range(50):
            if i % 2:
                self.assertEqual(c.verify(server.unknown_secret()).code, "NOT_FOUND")
            else:
                self.assertEqual(c.list_apps().items, [])
        self.assertEqual(len(f.requests), 50)
        self.assertEqual(f.connections, 1)

    def test_threads_share_the_pool_without_sharing_a_connection(self) -> None:
        f = self.fake()
        c = self.client(f.url)

        def calls(_: int) -> List[str]:
            return [c.verify(server.unknown_secret()).code for _ in range(25)]

        with ThreadPoolExecutor(8) as pool:
            codes = [code for cs in pool.map(calls, range(8)) for code in cs]
        self.assertEqual(codes, ["NOT_FOUND"] * 200)
        self.assertEqual(len(f.requests), 200)
        # A connection is opened only when every other one is busy.
        self.assertLessEqual(f.connections, 8)

    def test_connections_the_server_closed_are_replaced(self) -> None:
        f = self.fake()
        c = self.client(f.url)
        for i in range(10):
            self.assertEqual(c.verify(server.unknown_secret()).code, "NOT_FOUND")
            f.drop_connections()
            # The server's end of file has reached the client's socket.
            idle = list(c._pool._idle)
            _wait(lambda: all(_dropped(conn) for conn, _ in idle), "the pooled connection to see its end of file")
        self.assertEqual(c.verify(server.unknown_secret()).code, "NOT_FOUND")
        self.assertEqual(f.connections, 11)

    def test_server_closing_as_a_request_arrives_retries_a_get_but_not_a_post(self) -> None:
        # The race a pool must survive: the server closes a kept connection
        # just as a request is sent on it, answering nothing.
        class Closer(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        got: List[bytes] = []

        class H(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                n = 0
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    length = 0
                    while True:
                        h = self.rfile.readline()
                        if h in (b"\r\n", b""):
                            break
                        if h.lower().startswith(b"content-length:"):
                            length = int(h.split(b":")[1])
                    self.rfile.read(length)
                    got.append(line.split(b" ")[1])
                    n += 1
                    if n == 2:
                        return  # read the second request, answer nothing
                    body = _NOT_FOUND if line.startswith(b"POST") else _APPS
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

        srv = Closer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        url = "http://127.0.0.1:%d" % srv.server_address[1]

        c = self.client(url, admin_token=server.unknown_secret("tkd_admin"))
        c.list_apps()
        self.assertEqual(c.list_apps().items, [], "a GET is sent again on a new connection")
        self.assertEqual(got, [b"/v1/apps"] * 3)

        got.clear()
        v = self.client(url)
        v.verify(server.unknown_secret())
        with self.assertRaises(tokend.UnavailableError):
            v.verify(server.unknown_secret())
        self.assertEqual(got, [b"/v1/verify"] * 2, "a verification (it counts a use) is never sent twice")

    def test_a_reused_connection_keeps_to_the_timeout(self) -> None:
        hang = threading.Event()
        self.addCleanup(hang.set)

        def handler(h: Any) -> Tuple[int, Dict[str, str], bytes]:
            if len(f.requests) > 1:
                hang.wait(30)
            return _answer(h)

        f = self.fake(handler)
        c = self.client(f.url, timeout=60)
        c.verify(server.unknown_secret())
        c.timeout = 0.3
        start = time.monotonic()
        with self.assertRaises(tokend.UnavailableError) as cm:
            c.verify(server.unknown_secret())
        self.assertIn("timed out", str(cm.exception))
        self.assertLess(time.monotonic() - start, 25, "the connection kept the timeout it was opened with")
        self.assertEqual(f.connections, 1)

    def test_an_http_1_0_server_gets_a_connection_per_call(self) -> None:
        f = FakeServer(_answer)  # closes each connection after its answer
        self.addCleanup(f.close)
        c = self.client(f.url)
        for _ in range(5):
            self.assertEqual(c.verify(server.unknown_secret()).code, "NOT_FOUND")
        self.assertEqual(f.connections, 5)


class Flood:
    """A server whose every answer is status with a body of up to 100 MB
    (with its Content-Length when told), written only as fast as the client
    reads; sent tells how much went out before the client hung up."""

    TOTAL = 100 << 20

    def __init__(self, status: int, with_length: bool) -> None:
        self.sent = 0
        self.done = threading.Event()
        flood = self

        class H(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    head = "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n" % status
                    head += "Content-Length: %d\r\n" % Flood.TOTAL if with_length else "Connection: close\r\n"
                    self.wfile.write((head + "\r\n").encode())
                    chunk = b"a" * (64 << 10)
                    while flood.sent < Flood.TOTAL:
                        self.wfile.write(chunk)
                        flood.sent += len(chunk)
                except OSError:
                    pass
                finally:
                    flood.done.set()

        class S(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = S(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


class AnswerLimitTest(unittest.TestCase):
    def flood(self, status: int, with_length: bool) -> Flood:
        f = Flood(status, with_length)
        self.addCleanup(f.close)
        return f

    def test_an_endless_answer_is_refused_past_16_mib_unread_beyond_it(self) -> None:
        for with_length in (False, True):
            with self.subTest(with_length=with_length):
                f = self.flood(200, with_length)
                c = tokend.Client(f.url)
                with self.assertRaises(tokend.UnavailableError) as cm:
                    c.verify(server.unknown_secret())
                self.assertIn("larger than %d bytes" % MAX_ANSWER_BYTES, str(cm.exception))
                self.assertEqual(c._pool._idle, [], "a connection with an answer left unread is not kept")
                self.assertTrue(f.done.wait(30))
                # What the socket buffers hold besides: far from the 100 MB
                # a client reading them all would take.
                self.assertLess(f.sent, 40 << 20)

    def test_an_endless_error_answer_is_read_only_as_far_as_a_problem_document_goes(self) -> None:
        f = self.flood(500, False)
        c = tokend.Client(f.url)
        with self.assertRaises(tokend.ProblemError) as cm:
            c.list_apps()
        self.assertEqual((cm.exception.status, cm.exception.code), (500, "INTERNAL"))
        self.assertTrue(f.done.wait(30))
        self.assertLess(f.sent, 40 << 20)


if __name__ == "__main__":
    unittest.main()
