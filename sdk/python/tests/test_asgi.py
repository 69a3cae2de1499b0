"""ASGIMiddleware against a real tokend, driven by plain ASGI calls."""

import asyncio
import json
import threading
import unittest
from typing import Any, Dict, List, MutableMapping, Optional, Tuple

import tokend
from tests import server
from tests.test_client import closed_port_url


class App:
    """An ASGI app that answers 200 with the token the middleware left."""

    def __init__(self) -> None:
        self.scopes: List[MutableMapping[str, Any]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "lifespan":
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        tok = tokend.token_from(scope)
        body = json.dumps({"id": tok.id if tok else None}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


async def call(app: Any, method: str = "GET", headers: Optional[Dict[str, str]] = None, kind: str = "http",
               client: Tuple[str, int] = ("10.1.2.3", 5555)) -> Tuple[int, Dict[str, str], bytes, List[Dict[str, Any]]]:  # fmt: skip
    scope: Dict[str, Any] = {
        "type": kind, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": "/orders", "raw_path": b"/orders", "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
        "client": client, "server": ("127.0.0.1", 8000), "state": {"from_lifespan": 1},
    }  # fmt: skip
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: Dict[str, Any]) -> None:
        sent.append(msg)

    await app(scope, receive, send)
    if kind != "http":
        return 0, {}, b"", sent
    start = sent[0]
    headers_out = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], headers_out, b"".join(m.get("body", b"") for m in sent[1:]), sent


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class ASGITest(server.TokendCase):
    def test_valid_token_reaches_the_app_in_scope_and_state(self) -> None:
        it = self.token()
        inner = App()
        app = tokend.ASGIMiddleware(inner, self.client)
        status, _, body, _ = run(call(app, headers={"Authorization": "Bearer " + it.secret}))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["id"], it.token["id"])
        scope = inner.scopes[-1]
        self.assertEqual(scope["state"]["tokend_token"].id, it.token["id"])
        self.assertEqual(scope["state"]["from_lifespan"], 1, "the lifespan state is kept")
        self.assertIs(scope["tokend.token"], scope["state"]["tokend_token"])
        status, _, _, _ = run(call(app, headers={"X-API-Key": it.secret}))
        self.assertEqual(status, 200)

    def test_refusals(self) -> None:
        reader = self.token(access="read_only", rate_limit={"limit": 1, "window": "1h"})
        inner = App()
        app = tokend.ASGIMiddleware(inner, self.client)
        status, h, body, _ = run(call(app))
        self.assertEqual((status, h["www-authenticate"]), (401, 'Bearer realm="tokend"'))
        self.assertEqual(json.loads(body)["code"], "UNAUTHENTICATED")
        status, h, body, _ = run(call(app, method="DELETE", headers={"Authorization": "Bearer " + reader.secret}))
        self.assertEqual((status, h["www-authenticate"]), (403, 'Bearer realm="tokend", error="insufficient_scope"'))
        self.assertEqual(json.loads(body)["reason"], "INSUFFICIENT_PERMISSIONS")
        self.assertEqual(run(call(app, headers={"Authorization": "Bearer " + reader.secret}))[0], 200)
        status, h, body, _ = run(call(app, headers={"Authorization": "Bearer " + reader.secret}))
        self.assertEqual(status, 429)
        self.assertGreater(int(h["retry-after"]), 0)
        self.assertEqual(h["content-type"], "application/problem+json")
        status, h, body, _ = run(call(app, headers={"Authorization": "Bearer shop_x"}))
        self.assertEqual((status, json.loads(body)["reason"]), (401, "MALFORMED"))
        self.assertEqual(len(inner.scopes), 1, "only the allowed GET reached the app")

    def test_tokend_down_is_503(self) -> None:
        errors: List[BaseException] = []
        app = tokend.ASGIMiddleware(App(), tokend.Client(closed_port_url()), on_error=errors.append)
        status, _, body, _ = run(call(app, headers={"Authorization": "Bearer " + server.unknown_secret("shop")}))
        self.assertEqual((status, json.loads(body)["code"]), (503, "UNAVAILABLE"))
        self.assertEqual(len(errors), 1)

    def test_websocket_is_guarded_and_lifespan_passes(self) -> None:
        it = self.token()
        inner = App()
        app = tokend.ASGIMiddleware(inner, self.client)
        _, _, _, sent = run(call(app, kind="websocket"))
        self.assertEqual(sent, [{"type": "websocket.close", "code": 1008}])
        _, _, _, sent = run(call(app, kind="websocket", headers={"Authorization": "Bearer " + it.secret}))
        self.assertEqual(sent, [{"type": "websocket.accept"}])
        run(call(app, kind="lifespan"))
        self.assertEqual([s["type"] for s in inner.scopes], ["websocket", "lifespan"])

    def test_cached_answer_needs_no_call(self) -> None:
        it = self.token()
        app = tokend.ASGIMiddleware(App(), self.client)

        async def many() -> List[int]:
            return [(await call(app, headers={"Authorization": "Bearer " + it.secret}))[0] for _ in range(5)]

        self.assertEqual(run(many()), [200] * 5)
        self.assertEqual(self.client.calls, 1)

    def test_concurrent_requests_share_one_call(self) -> None:
        it = self.token()
        app = tokend.ASGIMiddleware(App(), self.client)

        async def many() -> List[int]:
            calls = [call(app, headers={"Authorization": "Bearer " + it.secret}) for _ in range(12)]
            return [r[0] for r in await asyncio.gather(*calls)]

        self.assertEqual(run(many()), [200] * 12)
        self.assertEqual(self.client.calls, 1)

    def test_the_call_to_tokend_does_not_block_the_event_loop(self) -> None:
        it = self.token()
        entered, release = threading.Event(), threading.Event()
        threads: List[threading.Thread] = []

        class Slow(server.CountingClient):
            def verify(self, *args: Any, **kwargs: Any) -> tokend.VerifyResult:
                threads.append(threading.current_thread())
                entered.set()
                # Only a coroutine on the loop sets it: were the loop
                # blocked here, the wait would end by its timeout and the
                # test fail.
                if not release.wait(30):
                    raise tokend.UnavailableError("the event loop was blocked")
                return super().verify(*args, **kwargs)

        app = tokend.ASGIMiddleware(App(), Slow(server.shared().url))

        async def scenario() -> int:
            task = asyncio.ensure_future(call(app, headers={"Authorization": "Bearer " + it.secret}))
            while not entered.is_set():
                if task.done():
                    break
                await asyncio.sleep(0.01)
            release.set()  # runs on the loop while verify waits in its thread
            status = (await task)[0]
            self.assertIsNot(threads[0], threading.main_thread())
            return int(status)

        self.assertEqual(run(scenario()), 200)


if __name__ == "__main__":
    unittest.main()
