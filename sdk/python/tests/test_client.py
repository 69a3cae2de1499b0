"""tokend.Client against a real tokend: verification, management, errors."""

import http.server
import json
import socket
import threading
import unittest
from typing import Any, Callable, Dict, List, Tuple

import tokend
from tests import server


class FakeServer:
    """A tiny HTTP server answering every request with handler(path,
    headers), for what a real tokend does not do on demand (a 503, a
    redirect, a page that is not JSON). It records the requests it got and
    counts the connections it accepted. With keep_alive it speaks HTTP/1.1
    and keeps connections open between requests, as tokend does; else it
    closes each after one answer, as an HTTP/1.0 server does."""

    def __init__(self, handler: Callable[[Any], Tuple[int, Dict[str, str], bytes]], keep_alive: bool = False) -> None:
        self.requests: List[Tuple[str, str, Dict[str, str]]] = []
        self.connections = 0
        self.open: List[socket.socket] = []
        self._lock = threading.Lock()
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake.connections += 1
                    fake.open.append(self.connection)

            def _any(self) -> None:
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a test of its timeout)

            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                fake.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = handler(self)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def drop_connections(self) -> None:
        """Close every connection the server holds, as a server does with
        connections idle for too long."""
        with self._lock:
            conns, self.open = self.open, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.drop_connections()
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """A URL nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


class VerifyTest(unittest.TestCase):
    admin: tokend.Client
    app: tokend.App
    client: tokend.Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.admin = server.admin_client()
        cls.app = cls.admin.create_app(server.name("verify shop"), token_prefix="shop", permissions=["orders:read", "orders:write"])
        cls.client = tokend.Client(server.shared().url)  # no admin token: verify needs none

    def token(self, **fields: Any) -> tokend.IssuedToken:
        return self.admin.create_token(self.app["id"], server.name("bot"), **fields)

    def test_valid_token_answers_its_identity_and_rate_limit(self) -> None:
        it = self.token(
            access="custom", permissions=["orders:read"], allowed_ips=["10.0.0.0/8"],
            rate_limit={"limit": 100, "window": "1h"}, metadata={"plan": "gold"}, owner_id="acct_42",
        )  # fmt: skip
        r = self.client.verify(it.secret, permissions=["orders:read"], ip="10.1.2.3", user_agent="tests/1.0")
        self.assertTrue(r.valid)
        self.assertEqual(r.code, tokend.VALID)
        assert r.token is not None
        self.assertEqual(r.token.id, it.token["id"])
        self.assertEqual(r.token.app_id, self.app["id"])
        self.assertEqual(r.token.owner_id, "acct_42")
        self.assertEqual(r.token.access, "custom")
        self.assertEqual(r.token.type, "standard")
        self.assertEqual(r.token.permissions, ["orders:read"])
        self.assertEqual(r.token.metadata, {"plan": "gold"})
        self.assertIsNotNone(r.token.expires_at)  # the default lifetime
        assert r.rate_limit is not None
        self.assertEqual((r.rate_limit.limit, r.rate_limit.remaining), (100, 99))
        self.assertEqual(r.status, 200)

    def test_refusals_answer_valid_false_with_the_code(self) -> None:
        reader = self.token(access="read_only", allowed_ips=["10.0.0.0/8"])
        revoked = self.token()
        self.admin.revoke_token(revoked.token["id"])
        disabled = self.token()
        self.admin.disable_token(disabled.token["id"])
        cases: List[Tuple[str, str, Dict[str, Any], str, int]] = [
            ("write permission for a read_only token", reader.secret, {"permissions": ["orders:write"], "ip": "10.0.0.1"}, tokend.INSUFFICIENT_PERMISSIONS, 403),
            ("address outside allowed_ips", reader.secret, {"ip": "192.0.2.1"}, tokend.IP_NOT_ALLOWED, 403),
            ("standard token from a browser", reader.secret, {"ip": "10.0.0.1", "origin": "https://evil.example"}, tokend.ORIGIN_NOT_ALLOWED, 403),
            ("revoked token", revoked.secret, {}, tokend.REVOKED, 401),
            ("disabled token", disabled.secret, {}, tokend.DISABLED, 401),
            ("checksum wrong", revoked.secret[:-1] + ("A" if revoked.secret[-1] != "A" else "B"), {}, tokend.MALFORMED, 401),
            ("not a token at all", "hello", {}, tokend.MALFORMED, 401),
            ("well formed but unknown", server.unknown_secret("shop"), {}, tokend.NOT_FOUND, 401),
        ]
        for label, secret, kw, code, status in cases:
            with self.subTest(label):
                r = self.client.verify(secret, **kw)
                self.assertFalse(r.valid)
                self.assertEqual(r.code, code)
                self.assertEqual(r.status, status)

    def test_rate_limited_answers_retry_after(self) -> None:
        it = self.token(rate_limit={"limit": 1, "window": "1h"})
        self.assertTrue(self.client.verify(it.secret).valid)
        r = self.client.verify(it.secret)
        self.assertEqual(r.code, tokend.RATE_LIMITED)
        assert r.rate_limit is not None
        self.assertEqual(r.rate_limit.remaining, 0)
        self.assertGreater(r.rate_limit.retry_after, 0)
        self.assertEqual(r.status, 429)

    def test_rotation_old_secret_answers_rotated_new_one_valid(self) -> None:
        it = self.token()
        new = self.admin.rotate_token(it.token["id"])
        self.assertEqual(new.token["id"], it.token["id"])
        self.assertNotEqual(new.secret, it.secret)
        self.assertEqual(self.client.verify(it.secret).code, tokend.ROTATED)
        self.assertTrue(self.client.verify(new.secret).valid)

    def test_rotation_with_grace_keeps_the_old_secret_working(self) -> None:
        it = self.token()
        new = self.admin.rotate_token(it.token["id"], grace_period="1h")
        self.assertTrue(self.client.verify(it.secret).valid)
        self.assertTrue(self.client.verify(new.secret).valid)

    def test_question_that_is_not_well_formed_is_a_problem(self) -> None:
        with self.assertRaises(tokend.ProblemError) as cm:
            self.client.verify("x", ip="1" * 100, permissions=["p"] * 40)
        e = cm.exception
        self.assertEqual((e.status, e.code, e.type), (422, "VALIDATION_FAILED", "about:blank"))
        self.assertEqual(e.title, "Unprocessable Entity")
        self.assertEqual(sorted(f["field"] for f in e.errors), ["ip", "permissions"])
        self.assertIn("ip:", str(e))

    def test_unreachable_tokend_is_unavailable(self) -> None:
        c = tokend.Client(closed_port_url(), timeout=2)
        with self.assertRaises(tokend.UnavailableError) as cm:
            c.verify(server.unknown_secret())
        self.assertIn("POST /v1/verify", str(cm.exception))
        self.assertFalse(c.healthy())

    def test_tokend_that_does_not_answer_times_out(self) -> None:
        # Accepts the connection and never answers.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        self.addCleanup(s.close)
        c = tokend.Client("http://127.0.0.1:%d" % s.getsockname()[1], timeout=0.3)
        with self.assertRaises(tokend.UnavailableError) as cm:
            c.verify(server.unknown_secret())
        self.assertIn("timed out", str(cm.exception))

    def test_503_is_a_problem_with_retry_after(self) -> None:
        body = json.dumps({"type": "about:blank", "title": "Service Unavailable", "status": 503,
                           "detail": "storage is unavailable", "code": "UNAVAILABLE"}).encode()  # fmt: skip
        fake = FakeServer(lambda h: (503, {"Content-Type": "application/problem+json", "Retry-After": "3"}, body))
        self.addCleanup(fake.close)
        with self.assertRaises(tokend.ProblemError) as cm:
            tokend.Client(fake.url).verify(server.unknown_secret())
        e = cm.exception
        self.assertEqual((e.status, e.code, e.detail, e.retry_after), (503, "UNAVAILABLE", "storage is unavailable", 3))
        self.assertIsInstance(e, tokend.TokendError)

    def test_answer_that_is_no_problem_document_takes_its_status(self) -> None:
        fake = FakeServer(lambda h: (502, {"Content-Type": "text/html"}, b"<h1>bad gateway</h1>"))
        self.addCleanup(fake.close)
        with self.assertRaises(tokend.ProblemError) as cm:
            tokend.Client(fake.url).verify(server.unknown_secret())
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.title), (502, "UNAVAILABLE", "Bad Gateway"))

    def test_200_that_is_not_a_verification_is_unavailable(self) -> None:
        for body in (b"<html>captive portal</html>", b'{"hello":"world"}', b"[1,2]"):
            with self.subTest(body=body):
                fake = FakeServer(lambda h: (200, {"Content-Type": "application/json"}, body))
                self.addCleanup(fake.close)
                with self.assertRaises(tokend.UnavailableError):
                    tokend.Client(fake.url).verify(server.unknown_secret())

    def test_old_server_refusing_user_agent_is_asked_again_without_it(self) -> None:
        refusal = json.dumps({"status": 422, "code": "VALIDATION_FAILED", "title": "Unprocessable Entity",
                              "errors": [{"field": "user_agent", "message": "unknown field"}]}).encode()  # fmt: skip
        answer = json.dumps({"valid": False, "code": "NOT_FOUND"}).encode()
        box: List[FakeServer] = []

        def handle(h: Any) -> Tuple[int, Dict[str, str], bytes]:
            if len(box[0].requests) == 1:
                return (422, {"Content-Type": "application/problem+json"}, refusal)
            return (200, {"Content-Type": "application/json"}, answer)

        fake = FakeServer(handle)
        box.append(fake)
        self.addCleanup(fake.close)
        c = tokend.Client(fake.url)
        self.assertEqual(c.verify(server.unknown_secret(), user_agent="curl/8").code, tokend.NOT_FOUND)
        self.assertEqual(c.verify(server.unknown_secret(), user_agent="curl/8").code, tokend.NOT_FOUND)
        self.assertEqual(len(fake.requests), 3, "one refused, then one each without user_agent")


class AdminTokenTest(unittest.TestCase):
    def test_verify_never_sends_the_admin_token(self) -> None:
        answer = json.dumps({"valid": False, "code": "NOT_FOUND"}).encode()
        fake = FakeServer(lambda h: (200, {"Content-Type": "application/json"}, answer))
        self.addCleanup(fake.close)
        admin = server.unknown_secret("tkd_admin")
        c = tokend.Client(fake.url, admin_token=admin)
        c.verify(server.unknown_secret())
        with self.assertRaises(tokend.UnavailableError):
            c.list_apps()  # the fake's answer is no list
        self.assertEqual([r[1] for r in fake.requests], ["/v1/verify", "/v1/apps"])
        self.assertNotIn("Authorization", fake.requests[0][2])
        self.assertEqual(fake.requests[1][2].get("Authorization"), "Bearer " + admin)


class RedirectTest(unittest.TestCase):
    def test_redirect_to_another_origin_is_refused_and_gets_no_admin_token(self) -> None:
        other = FakeServer(lambda h: (200, {"Content-Type": "application/json"}, b'{"items":[]}'))
        self.addCleanup(other.close)
        first = FakeServer(lambda h: (307, {"Location": other.url + "/v1/apps"}, b""))
        self.addCleanup(first.close)
        c = tokend.Client(first.url, admin_token=server.unknown_secret("tkd_admin"))
        with self.assertRaises(tokend.UnavailableError) as cm:
            c.list_apps()
        self.assertIn("redirect", str(cm.exception))
        self.assertEqual(other.requests, [])

    def test_redirect_within_the_server_is_followed(self) -> None:
        target = {"n": 0}

        def handle(h: Any) -> Tuple[int, Dict[str, str], bytes]:
            target["n"] += 1
            if h.path.startswith("/old"):
                return (307, {"Location": "/new/v1/apps"}, b"")
            return (200, {"Content-Type": "application/json"}, b'{"items":[{"id":"app_1"}],"next_cursor":""}')

        fake = FakeServer(handle)
        self.addCleanup(fake.close)
        admin = server.unknown_secret("tkd_admin")
        page = tokend.Client(fake.url + "/old", admin_token=admin).list_apps()
        self.assertEqual(page.items, [{"id": "app_1"}])
        self.assertEqual(fake.requests[-1][2].get("Authorization"), "Bearer " + admin)


class ManagementTest(unittest.TestCase):
    admin: tokend.Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.admin = server.admin_client()

    def test_apps_create_get_list_update_delete(self) -> None:
        a = self.admin.create_app(server.name("apps"), token_prefix="apps", permissions=["x:read"])
        self.assertTrue(a["id"].startswith("app_"))
        self.assertEqual(self.admin.get_app(a["id"])["name"], a["name"])
        self.assertIn(a["id"], [x["id"] for x in self.admin.iter_apps(limit=1)])
        page = self.admin.list_apps(limit=1)
        self.assertEqual(len(page.items), 1)
        self.assertTrue(page.next_cursor)
        b = self.admin.update_app(a["id"], version=a["version"], permissions=["x:read", "x:write"])
        self.assertEqual(b["permissions"], ["x:read", "x:write"])
        with self.assertRaises(tokend.ProblemError) as cm:
            self.admin.update_app(a["id"], version=a["version"], name="stale")
        self.assertEqual((cm.exception.status, cm.exception.code), (412, "PRECONDITION_FAILED"))
        self.admin.delete_app(a["id"])
        with self.assertRaises(tokend.ProblemError) as cm:
            self.admin.get_app(a["id"])
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "NOT_FOUND"))

    def test_token_lifecycle_and_its_audit_trail(self) -> None:
        app = self.admin.create_app(server.name("life"))
        it = self.admin.create_token(app["id"], server.name("nightly"), access="read_only", expires_in="7d", description="d")
        tid = it.token["id"]
        self.assertTrue(tokend.check_secret(it.secret))
        self.assertNotIn(it.secret, repr(it), "the repr of an issued token shows it masked")
        self.assertIn(tokend.mask(it.secret), repr(it))
        self.assertNotIn("secret", self.admin.get_token(tid))
        self.assertEqual(self.admin.get_token(tid)["status"], "active")
        self.assertEqual([t["id"] for t in self.admin.list_tokens(app_id=app["id"]).items], [tid])
        self.assertEqual(self.admin.update_token(tid, name="renamed")["name"], "renamed")
        self.assertEqual(self.admin.disable_token(tid)["status"], "disabled")
        self.assertEqual(self.admin.list_tokens(app_id=app["id"], status="disabled").items[0]["id"], tid)
        self.assertEqual(self.admin.enable_token(tid)["status"], "active")
        rotated = self.admin.rotate_token(tid)
        self.assertNotEqual(rotated.secret, it.secret)
        self.assertEqual(self.admin.revoke_token(tid)["status"], "revoked")
        self.assertIsInstance(self.admin.token_usage(tid), list)
        self.assertIsInstance(self.admin.token_activity(tid), list)
        actions = [e["action"] for e in self.admin.iter_audit(token_id=tid, limit=2)]
        for want in ("token.create", "token.update", "token.disable", "token.enable", "token.rotate", "token.revoke"):
            self.assertIn(want, actions)
        self.assertEqual(self.admin.audit(token_id=tid, action="token.revoke").items[0]["token_id"], tid)
        self.admin.delete_token(tid)
        with self.assertRaises(tokend.ProblemError) as cm:
            self.admin.get_token(tid)
        self.assertEqual(cm.exception.code, "NOT_FOUND")

    def test_revoke_all_and_revoke_owner_tokens_count(self) -> None:
        app = self.admin.create_app(server.name("all"))
        for i in range(3):
            self.admin.create_token(app["id"], server.name("t"), owner_id="acct_%d" % (i % 2))
        self.assertEqual(self.admin.revoke_owner_tokens(app["id"], "acct_0"), 2)
        self.assertEqual(self.admin.revoke_all(app["id"]), 1)
        self.assertEqual(self.admin.revoke_all(app["id"]), 0)

    def test_validation_problem_lists_every_field(self) -> None:
        app = self.admin.create_app(server.name("invalid"))
        with self.assertRaises(tokend.ProblemError) as cm:
            self.admin.create_token(app["id"], "", allowed_ips=["10.0.0.0/99"], max_uses=0)
        e = cm.exception
        self.assertEqual((e.status, e.code), (422, "VALIDATION_FAILED"))
        fields = {f["field"] for f in e.errors}
        self.assertTrue({"name", "allowed_ips[0]", "max_uses"} <= fields, fields)
        self.assertEqual(self.admin.list_tokens(app_id=app["id"]).items, [], "nothing was created")

    def test_bad_admin_token_is_401_and_never_in_a_message(self) -> None:
        bad = server.unknown_secret("tkd_admin")
        c = tokend.Client(server.shared().url, admin_token=bad)
        with self.assertRaises(tokend.ProblemError) as cm:
            c.list_tokens()
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "UNAUTHENTICATED"))
        for text in (str(cm.exception), repr(cm.exception), repr(c)):
            self.assertNotIn(bad, text)

    def test_admin_token_without_the_permission_is_403(self) -> None:
        reader = self.admin.create_token("app_system", server.name("reader"), access="custom", permissions=["tokens:read"])
        c = tokend.Client(server.shared().url, admin_token=reader.secret)
        c.list_tokens(limit=1)
        with self.assertRaises(tokend.ProblemError) as cm:
            c.create_app(server.name("nope"))
        self.assertEqual((cm.exception.status, cm.exception.code), (403, "FORBIDDEN"))

    def test_ids_cannot_change_the_path(self) -> None:
        for bad in ("", ".", ".."):
            with self.subTest(id=bad), self.assertRaises(ValueError):
                self.admin.get_token(bad)
        with self.assertRaises(tokend.ProblemError) as cm:
            self.admin.get_token("../apps")
        self.assertEqual(cm.exception.status, 404)

    def test_health(self) -> None:
        c = tokend.Client(server.shared().url)
        self.assertTrue(c.healthy())
        self.assertTrue(c.ready())


class ClientArgumentsTest(unittest.TestCase):
    def test_bad_arguments_are_refused(self) -> None:
        cases: List[Dict[str, Any]] = [
            {"base_url": "127.0.0.1:8080"},
            {"base_url": "ftp://host"},
            {"base_url": "http://user:pw@host"},
            {"base_url": "http://host/?q=1"},
            {"base_url": "http://host", "admin_token": "a b"},
            {"base_url": "http://host", "admin_token": ""},
            {"base_url": "http://host", "timeout": 0},
        ]
        for kw in cases:
            with self.subTest(kw=kw), self.assertRaises(ValueError):
                tokend.Client(**kw)

    def test_check_secret(self) -> None:
        s = server.unknown_secret("shop")
        self.assertTrue(tokend.check_secret(s))
        for bad in (s[:-1] + ("0" if s[-1] != "0" else "1"), s.upper(), "shop__" + s[5:], s + "x", "", "é" * 60, s.replace("shop", "SHOP")):
            with self.subTest(bad=bad):
                self.assertFalse(tokend.check_secret(bad))


if __name__ == "__main__":
    unittest.main()
