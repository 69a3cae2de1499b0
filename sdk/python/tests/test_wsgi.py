"""WSGIMiddleware against a real tokend: answers, headers, cache, threads."""

import json
import threading
import unittest
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import setup_testing_defaults

import tokend
from tests import server
from tests.test_client import closed_port_url


def hello(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    tok = tokend.token_from(environ)
    body = json.dumps({"id": tok.id if tok else None, "name": tok.name if tok else None}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def call(app: Any, method: str = "GET", headers: Optional[Dict[str, str]] = None, remote: str = "10.1.2.3") -> Tuple[int, Dict[str, str], bytes, Dict[str, Any]]:
    """Call a WSGI app with a real environ (wsgiref's defaults plus headers)."""
    environ: Dict[str, Any] = {"REQUEST_METHOD": method, "REMOTE_ADDR": remote}
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    setup_testing_defaults(environ)
    got: Dict[str, Any] = {}

    def start_response(status: str, hdrs: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, dict(hdrs)
        return lambda b: None

    body = b"".join(app(environ, start_response))
    return int(got["status"].split()[0]), got["headers"], body, environ


def bearer(secret: str) -> Dict[str, str]:
    return {"Authorization": "Bearer " + secret}


class WSGITest(server.TokendCase):
    def test_valid_token_reaches_the_app_with_its_identity(self) -> None:
        it = self.token()
        app = tokend.WSGIMiddleware(hello, self.client)
        cases: List[Dict[str, str]] = [bearer(it.secret), {"Authorization": "bearer  " + it.secret + " "}, {"X-API-Key": it.secret}]
        for headers in cases:
            with self.subTest(headers=list(headers)):
                status, _, body, environ = call(app, headers=headers)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["id"], it.token["id"])
                self.assertIsInstance(environ["tokend.token"], tokend.VerifiedToken)

    def test_no_token_is_401_with_a_challenge(self) -> None:
        app = tokend.WSGIMiddleware(hello, self.client)
        no_token: List[Dict[str, str]] = [{}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "}]
        for headers in no_token:
            with self.subTest(headers=headers):
                status, h, body, environ = call(app, headers=headers)
                self.assertEqual(status, 401)
                self.assertEqual(h["WWW-Authenticate"], 'Bearer realm="tokend"')
                self.assertEqual(h["Content-Type"], "application/problem+json")
                self.assertEqual(int(h["Content-Length"]), len(body))
                self.assertEqual(json.loads(body), {"type": "about:blank", "title": "Unauthorized", "status": 401,
                                                    "detail": "a bearer token is required", "code": "UNAUTHENTICATED"})  # fmt: skip
                self.assertNotIn("tokend.token", environ)
        self.assertEqual(self.client.calls, 0)

    def test_malformed_token_is_refused_without_asking_tokend(self) -> None:
        down = server.CountingClient(closed_port_url())
        app = tokend.WSGIMiddleware(hello, down)
        status, h, body, _ = call(app, headers=bearer("shop_not-a-real-token"))
        self.assertEqual(status, 401)
        self.assertEqual(h["WWW-Authenticate"], 'Bearer realm="tokend", error="invalid_token"')
        self.assertEqual(json.loads(body)["reason"], "MALFORMED")
        status, _, body, _ = call(app, headers=bearer(server.unknown_secret("shop") + "x" * 100000))
        self.assertEqual((status, json.loads(body)["reason"]), (401, "MALFORMED"))
        self.assertEqual(down.calls, 0)

    def test_refusals_answer_as_forward_auth(self) -> None:
        reader = self.token(access="read_only", allowed_ips=["10.0.0.0/8"])
        revoked = self.token()
        self.admin.revoke_token(revoked.token["id"])
        app = tokend.WSGIMiddleware(hello, self.client)
        cases = [
            ("read_only token may not POST", "POST", reader.secret, "10.1.2.3", {}, 403, "INSUFFICIENT_PERMISSIONS", 'Bearer realm="tokend", error="insufficient_scope"'),
            ("address outside allowed_ips", "GET", reader.secret, "192.0.2.1", {}, 403, "IP_NOT_ALLOWED", None),
            ("standard token from a browser", "GET", reader.secret, "10.1.2.3", {"Origin": "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED", None),
            ("revoked token", "GET", revoked.secret, "10.1.2.3", {}, 401, "REVOKED", 'Bearer realm="tokend", error="invalid_token"'),
            ("unknown token", "GET", server.unknown_secret("shop"), "10.1.2.3", {}, 401, "NOT_FOUND", 'Bearer realm="tokend", error="invalid_token"'),
        ]
        for label, method, secret, remote, extra, want, reason, challenge in cases:
            with self.subTest(label):
                status, h, body, environ = call(app, method=method, headers=dict(bearer(secret), **extra), remote=remote)
                self.assertEqual(status, want)
                doc = json.loads(body)
                self.assertEqual(doc["reason"], reason)
                self.assertEqual(doc["code"], "FORBIDDEN" if want == 403 else "UNAUTHENTICATED")
                self.assertEqual(h.get("WWW-Authenticate"), challenge)
                self.assertNotIn("tokend.token", environ)
        status, _, _, _ = call(app, method="GET", headers=bearer(reader.secret))
        self.assertEqual(status, 200, "the same token reads")

    def test_rate_limited_is_429_with_retry_after_and_is_never_cached(self) -> None:
        it = self.token(rate_limit={"limit": 1, "window": "1h"})
        app = tokend.WSGIMiddleware(hello, self.client)
        status, _, _, environ = call(app, headers=bearer(it.secret))
        self.assertEqual(status, 200)
        rl = tokend.rate_limit_from(environ)
        assert rl is not None
        self.assertEqual((rl.limit, rl.remaining), (1, 0))
        # That answer used the limit up: not cached, so the next requests
        # hear tokend's refusal, which is not cached either.
        for _ in range(2):
            status, h, body, _ = call(app, headers=bearer(it.secret))
            self.assertEqual(status, 429)
            self.assertGreater(int(h["Retry-After"]), 0)
            self.assertEqual((h["RateLimit-Limit"], h["RateLimit-Remaining"]), ("1", "0"))
            self.assertEqual(json.loads(body)["code"], "RATE_LIMITED")
        self.assertEqual(self.client.calls, 3)

    def test_permissions_given_or_from_a_function(self) -> None:
        it = self.token(access="custom", permissions=["orders:read"])
        fixed = tokend.WSGIMiddleware(hello, self.client, permissions=["orders:write"])
        self.assertEqual(call(fixed, headers=bearer(it.secret))[0], 403)
        by_path = tokend.WSGIMiddleware(hello, self.client, permissions_func=lambda env: ["orders:" + env["PATH_INFO"].strip("/")])
        environ_path = {"Authorization": "Bearer " + it.secret}
        self.assertEqual(call(by_path, headers=environ_path)[0], 403)  # PATH_INFO "/" → "orders:"
        with self.assertRaises(ValueError):
            tokend.WSGIMiddleware(hello, self.client, permissions=["a"], permissions_func=lambda e: [])
        with self.assertRaises(TypeError):
            tokend.WSGIMiddleware(hello, self.client, permissions="orders:read")

    def test_client_ip_function_and_addresses_that_are_none(self) -> None:
        it = self.token(allowed_ips=["203.0.113.0/24"])
        proxied = tokend.WSGIMiddleware(hello, self.client, client_ip=lambda env: env.get("HTTP_X_REAL_IP"))
        self.assertEqual(call(proxied, headers=dict(bearer(it.secret), **{"X-Real-IP": "203.0.113.9"}), remote="127.0.0.1")[0], 200)
        self.assertEqual(call(proxied, headers=dict(bearer(it.secret), **{"X-Real-IP": "not an address"}))[0], 403)
        plain = tokend.WSGIMiddleware(hello, self.client)
        self.assertEqual(call(plain, headers=bearer(it.secret), remote="")[0], 403)
        self.assertEqual(call(plain, headers=bearer(it.secret), remote="203.0.113.7")[0], 200)

    def test_ignore_origin_lets_a_standard_token_pass_from_a_browser(self) -> None:
        it = self.token()
        from_browser = dict(bearer(it.secret), Origin="https://app.example")
        self.assertEqual(call(tokend.WSGIMiddleware(hello, self.client), headers=from_browser)[0], 403)
        self.assertEqual(call(tokend.WSGIMiddleware(hello, self.client, ignore_origin=True), headers=from_browser)[0], 200)

    def test_positive_answers_are_cached_for_the_ttl(self) -> None:
        it = self.token()
        app = tokend.WSGIMiddleware(hello, self.client)
        guard = app._guard
        clock = [1000.0]
        guard.monotonic = lambda: clock[0]
        for _ in range(5):
            self.assertEqual(call(app, headers=bearer(it.secret))[0], 200)
        self.assertEqual(self.client.calls, 1)
        # A revocation is seen here only when the answer goes stale.
        self.admin.revoke_token(it.token["id"])
        clock[0] += tokend.DEFAULT_CACHE_TTL - 0.5
        self.assertEqual(call(app, headers=bearer(it.secret))[0], 200)
        clock[0] += 1
        self.assertEqual(call(app, headers=bearer(it.secret))[0], 401)
        self.assertEqual(self.client.calls, 2)
        # Another address or method is another question.
        other = self.token()
        call(app, headers=bearer(other.secret))
        call(app, headers=bearer(other.secret), remote="10.9.9.9")
        call(app, method="POST", headers=bearer(other.secret))
        self.assertEqual(self.client.calls, 5)

    def test_refusals_are_cached_for_their_ttl(self) -> None:
        it = self.token()
        self.admin.disable_token(it.token["id"])
        app = tokend.WSGIMiddleware(hello, self.client, refusal_ttl=30)
        clock = [50.0]
        app._guard.monotonic = lambda: clock[0]
        for _ in range(3):
            self.assertEqual(call(app, headers=bearer(it.secret))[0], 401)
        self.assertEqual(self.client.calls, 1)
        self.admin.enable_token(it.token["id"])
        clock[0] += 31
        self.assertEqual(call(app, headers=bearer(it.secret))[0], 200)
        self.assertEqual(self.client.calls, 2)

    def test_ttl_zero_asks_every_time(self) -> None:
        it = self.token()
        app = tokend.WSGIMiddleware(hello, self.client, cache_ttl=0, refusal_ttl=0)
        for _ in range(3):
            self.assertEqual(call(app, headers=bearer(it.secret))[0], 200)
        self.assertEqual(self.client.calls, 3)
        self.assertIsNone(app._guard.positive)

    def test_cache_never_outlives_the_token(self) -> None:
        it = self.token(expires_in="7d")
        app = tokend.WSGIMiddleware(hello, self.client, cache_ttl=3600)
        verified = tokend.Client(server.shared().url).verify(it.secret).token
        assert verified is not None and verified.expires_at is not None
        expires = verified.expires_at
        clock = [0.0]
        app._guard.monotonic = lambda: clock[0]
        app._guard.wall = lambda: expires.timestamp() - 10  # ten seconds left
        self.assertEqual(call(app, headers=bearer(it.secret))[0], 200)
        clock[0] = 11
        call(app, headers=bearer(it.secret))
        self.assertEqual(self.client.calls, 2, "the answer was kept 10 s, not an hour")

    def test_cache_holds_digests_only_and_is_bounded(self) -> None:
        app = tokend.WSGIMiddleware(hello, self.client, cache_size=2)
        secrets = [self.token().secret for _ in range(3)] + [server.unknown_secret("shop") for _ in range(3)]
        for s in secrets:
            call(app, headers=bearer(s))
        g = app._guard
        assert g.positive is not None and g.refusals is not None
        self.assertEqual((len(g.positive), len(g.refusals)), (2, 2))
        for cache in (g.positive, g.refusals):
            for key in list(cache._m):
                self.assertEqual(len(key), 32)
                for s in secrets:
                    self.assertNotIn(s.encode(), key)
                    self.assertNotIn(s, repr(cache._m[key].answer.body))

    def test_tokend_down_is_503_unless_a_stale_answer_may_stand_in(self) -> None:
        it = self.token()
        errors: List[BaseException] = []
        app = tokend.WSGIMiddleware(hello, self.client, stale_if_unavailable=60, on_error=errors.append)
        clock = [0.0]
        app._guard.monotonic = lambda: clock[0]
        self.assertEqual(call(app, headers=bearer(it.secret))[0], 200)
        app._guard.client = tokend.Client(closed_port_url(), timeout=2)
        clock[0] = tokend.DEFAULT_CACHE_TTL + 1
        status, _, body, _ = call(app, headers=bearer(it.secret))
        self.assertEqual(status, 200, "the stale answer stands in")
        self.assertEqual(json.loads(body)["id"], it.token["id"])
        clock[0] = tokend.DEFAULT_CACHE_TTL + 61
        status, h, body, _ = call(app, headers=bearer(it.secret))
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["code"], "UNAVAILABLE")
        self.assertNotIn("WWW-Authenticate", h)
        self.assertEqual(len(errors), 2)
        for e in errors:
            self.assertIsInstance(e, tokend.UnavailableError)
            self.assertNotIn(it.secret, str(e))
        # Without the grace, an outage refuses at once.
        strict = tokend.WSGIMiddleware(hello, tokend.Client(closed_port_url()))
        self.assertEqual(call(strict, headers=bearer(it.secret))[0], 503)

    def test_concurrent_requests_share_one_call(self) -> None:
        it = self.token()
        app = tokend.WSGIMiddleware(hello, self.client)
        statuses: List[int] = []
        lock = threading.Lock()
        start = threading.Barrier(16)

        def worker() -> None:
            start.wait()
            s = call(app, headers=bearer(it.secret))[0]
            with lock:
                statuses.append(s)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(statuses, [200] * 16)
        self.assertEqual(self.client.calls, 1)

    def test_over_wsgiref_http(self) -> None:
        it = self.token()

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        httpd = make_server("127.0.0.1", 0, tokend.WSGIMiddleware(hello, self.client), handler_class=Quiet)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        url = "http://127.0.0.1:%d/orders" % httpd.server_address[1]
        with urllib.request.urlopen(urllib.request.Request(url, headers=bearer(it.secret)), timeout=10) as r:
            self.assertEqual(json.loads(r.read())["id"], it.token["id"])
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(url, timeout=10)
        with cm.exception as e:
            self.assertEqual(e.code, 401)
            self.assertEqual(e.headers["WWW-Authenticate"], 'Bearer realm="tokend"')
            self.assertEqual(json.loads(e.read())["code"], "UNAUTHENTICATED")


if __name__ == "__main__":
    unittest.main()
