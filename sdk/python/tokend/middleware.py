"""WSGI and ASGI middleware that let through only requests with a good token.

Every request must carry a token (``Authorization: Bearer …``, or
``X-API-Key``) that tokend finds good for it, or it is answered as tokend's
forward-auth door and the Go SDK's middleware answer — 401 with
``WWW-Authenticate``, 403, 429 with ``Retry-After``, each with a small
``application/problem+json`` body whose ``code`` is the error code and whose
``reason`` is the verification code — and never reaches the app. When tokend
cannot answer, the request is refused with 503 (fail closed).

Neither class imports a framework: WSGIMiddleware wraps any WSGI app (Flask's
``app.wsgi_app``, Django's ``get_wsgi_application()``), ASGIMiddleware any
ASGI app (FastAPI, Starlette, Django's ASGI app). The verified token is put
where the app can read it: ``environ["tokend.token"]`` (Flask:
``request.environ``, Django: ``request.META``), or ``scope["tokend.token"]``
and ``scope["state"]["tokend_token"]`` (Starlette/FastAPI:
``request.state.tokend_token``); ``token_from`` reads either.

Without ``permissions`` or ``permissions_func`` the permission asked for
comes from the method, as at the forward-auth door: GET, HEAD and OPTIONS
need ``read``, every other method ``write``.

Answers are cached in memory, keyed by a SHA-256 digest of the token, the
permissions, the client address and the origin (the token itself is kept
nowhere): a positive answer for ``cache_ttl`` seconds (default 5, never past
the token's expiry, and not when it used up the token's rate limit), a
refusal for ``refusal_ttl`` seconds (default 5; never RATE_LIMITED, which
tokend must keep counting). ``cache_size`` bounds each of the two caches
(10,000 answers). Mind what a cache means: for up to the TTL a revoked,
disabled or deleted token still passes here, and its requests are not
counted by tokend (rate limit, max_uses, usage). 0 turns either cache off.
Concurrent requests that miss the cache for the same question wait for one
call to tokend and share its answer.

The client address sent to tokend (checked against a token's allowed_ips)
is the connection's peer: ``REMOTE_ADDR``, or the ASGI ``client``. Behind a
reverse proxy give ``client_ip`` a function that trusts your proxy's header,
and only your proxy's.

WSGIMiddleware is safe under threaded servers. ASGIMiddleware answers a
cached question on the event loop (a dictionary lookup) and asks tokend in a
worker thread, so the loop is never blocked on the network.
"""

import asyncio
import functools
import hashlib
import ipaddress
import json
import threading
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, MutableMapping, Optional, Sequence, Tuple

from ._client import Client
from ._errors import TokendError, UnavailableError
from ._models import MALFORMED, RATE_LIMITED, VALID, RateLimitState, VerifiedToken, VerifyResult
from ._secret import MAX_LEN, check_secret

#: How long a positive answer is reused, in seconds: short, since it is also
#: how long a revocation takes to be seen here.
DEFAULT_CACHE_TTL = 5.0
#: How long a refusal is reused, in seconds.
DEFAULT_REFUSAL_TTL = 5.0
#: How many answers each cache (positive, refusals) holds at most.
DEFAULT_CACHE_SIZE = 10_000

_MAX_USER_AGENT = 512
_READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_ASGI_HEADERS = frozenset((b"authorization", b"x-api-key", b"origin", b"user-agent"))
_PERMS_READ: Tuple[str, ...] = ("read",)
_PERMS_WRITE: Tuple[str, ...] = ("write",)

WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

_STATUS_LINES = {
    401: "401 Unauthorized",
    403: "403 Forbidden",
    429: "429 Too Many Requests",
    503: "503 Service Unavailable",
}


class _Answer:
    """What the middleware does with a request: let it through with a token,
    or refuse it with a response built once (a cached refusal is sent as
    is, bytes and all)."""

    __slots__ = ("ok", "token", "rate_limit", "code", "status", "headers", "body", "asgi_headers")

    def __init__(
        self,
        ok: bool,
        token: Optional[VerifiedToken] = None,
        rate_limit: Optional[RateLimitState] = None,
        code: str = "",
        status: int = 200,
        headers: Optional[List[Tuple[str, str]]] = None,
        body: bytes = b"",
    ) -> None:
        self.ok = ok
        self.token = token
        self.rate_limit = rate_limit
        self.code = code
        self.status = status
        self.headers = headers or []
        self.body = body
        self.asgi_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]


def _problem(status: int, code: str, detail: str, reason: str = "", extra: Sequence[Tuple[str, str]] = ()) -> _Answer:
    """A refusal in the shape tokend's own problem documents have."""
    doc: Dict[str, Any] = {"type": "about:blank", "title": _STATUS_LINES[status][4:], "status": status}
    if detail:
        doc["detail"] = detail
    doc["code"] = code
    if reason:
        doc["reason"] = reason
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    headers = list(extra) + [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))]
    return _Answer(False, code=reason, status=status, headers=headers, body=body)


def _refusal(res: VerifyResult) -> _Answer:
    """Answer a negative verification as forward auth does: 401 for a token
    that is no good, 403 for a good one that may not do this, 429 when rate
    limited."""
    status = res.status
    if status == 200:  # valid without a token: not an answer to trust
        return _UNAVAILABLE
    headers: List[Tuple[str, str]] = []
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="tokend", error="invalid_token"'))
    elif status == 403 and res.code == "INSUFFICIENT_PERMISSIONS":
        headers.append(("WWW-Authenticate", 'Bearer realm="tokend", error="insufficient_scope"'))
    elif status == 429:
        retry = 1
        if res.rate_limit is not None and res.rate_limit.retry_after > 0:
            retry = res.rate_limit.retry_after
        headers.append(("Retry-After", str(retry)))
    rl = res.rate_limit
    if rl is not None:
        headers += [
            ("RateLimit-Limit", str(rl.limit)),
            ("RateLimit-Remaining", str(rl.remaining)),
            ("RateLimit-Reset", str(rl.reset)),
        ]
    code = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 429: "RATE_LIMITED"}[status]
    return _problem(status, code, res.describe(), res.code, headers)


_NO_CREDENTIALS = _problem(
    401, "UNAUTHENTICATED", "a bearer token is required", extra=[("WWW-Authenticate", 'Bearer realm="tokend"')]
)
_MALFORMED = _refusal(VerifyResult(valid=False, code=MALFORMED))
_UNAVAILABLE = _problem(503, "UNAVAILABLE", "the token cannot be verified now; try again shortly")


class _Entry:
    __slots__ = ("answer", "fresh", "stale")

    def __init__(self, answer: _Answer, fresh: float, stale: float) -> None:
        self.answer = answer
        self.fresh = fresh
        self.stale = stale


class _Cache:
    """A bounded map of answers. Reads take no lock (a dict lookup is atomic);
    writes do. When full, the oldest entry makes room."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._m: "OrderedDict[bytes, _Entry]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Optional[_Entry]:
        return self._m.get(key)

    def put(self, key: bytes, e: _Entry) -> None:
        with self._lock:
            if key in self._m:
                del self._m[key]
            elif len(self._m) >= self._size:
                self._m.popitem(last=False)
            self._m[key] = e

    def delete(self, key: bytes) -> None:
        with self._lock:
            self._m.pop(key, None)

    def __len__(self) -> int:
        return len(self._m)


class _Flight:
    """One call to tokend that requests with the same question wait for."""

    __slots__ = ("done", "answer")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: Optional[_Answer] = None


class _Question:
    """One request's question to tokend."""

    __slots__ = ("token", "permissions", "ip", "origin", "user_agent", "key")

    def __init__(self, token: str, permissions: Sequence[str], ip: str, origin: str, user_agent: str) -> None:
        self.token = token
        self.permissions = permissions
        self.ip = ip
        self.origin = origin
        self.user_agent = user_agent
        self.key = b""


class _Guard:
    """What WSGIMiddleware and ASGIMiddleware share: the questions, the
    caches and the calls to tokend."""

    def __init__(
        self,
        client: Client,
        permissions: Optional[Sequence[str]],
        permissions_func: Optional[Callable[[Any], Sequence[str]]],
        cache_ttl: float,
        refusal_ttl: float,
        cache_size: int,
        stale_if_unavailable: float,
        client_ip: Optional[Callable[[Any], Optional[str]]],
        ignore_origin: bool,
        on_error: Optional[Callable[[BaseException], None]],
    ) -> None:
        if not isinstance(client, Client):
            raise TypeError("tokend: the middleware needs a tokend.Client")
        if permissions is not None and permissions_func is not None:
            raise ValueError("tokend: give permissions or permissions_func, not both")
        if isinstance(permissions, str):
            raise TypeError("tokend: permissions is a list of permissions, not one string")
        for name, v in (("cache_ttl", cache_ttl), ("refusal_ttl", refusal_ttl), ("stale_if_unavailable", stale_if_unavailable)):
            if v < 0:
                raise ValueError("tokend: %s must not be negative" % name)
        if cache_size < 1:
            raise ValueError("tokend: cache_size must be at least 1")
        self.client = client
        self.perms: Optional[Tuple[str, ...]] = tuple(sorted(permissions)) if permissions is not None else None
        self.perms_func = permissions_func
        self.ttl = float(cache_ttl)
        self.refusal_ttl = float(refusal_ttl)
        self.grace = float(stale_if_unavailable)
        self.ip_func = client_ip
        self.ignore_origin = ignore_origin
        self.on_error = on_error
        self.positive = _Cache(cache_size) if self.ttl > 0 or self.grace > 0 else None
        self.refusals = _Cache(cache_size) if self.refusal_ttl > 0 else None
        self.cached = self.positive is not None or self.refusals is not None
        self._flights: Dict[bytes, _Flight] = {}
        self._flights_lock = threading.Lock()
        # The clocks, for tests: the cache's is monotonic, so that a change
        # of the time of day does not stretch a TTL; expiry is on the wall.
        self.monotonic: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time

    def permissions(self, method: str, req: Any) -> Sequence[str]:
        if self.perms is not None:
            return self.perms
        if self.perms_func is not None:
            return tuple(sorted(self.perms_func(req)))
        return _PERMS_READ if method in _READ_METHODS else _PERMS_WRITE

    def client_ip(self, peer: Optional[str], req: Any) -> str:
        ip = self.ip_func(req) if self.ip_func is not None else peer
        return _ip(ip)

    def cached_answer(self, q: _Question) -> Tuple[Optional[_Answer], Optional[_Answer]]:
        """Answer a fresh cached answer to q, if any, and a stale positive one
        kept for outages; neither asks tokend."""
        q.key = _key(q)
        now = self.monotonic()
        stale = None
        if self.positive is not None:
            e = self.positive.get(q.key)
            if e is not None:
                if now < e.fresh:
                    return e.answer, None
                if now < e.stale:
                    stale = e.answer
        if self.refusals is not None:
            e = self.refusals.get(q.key)
            if e is not None and now < e.fresh:
                return e.answer, None
        return None, stale

    def precheck(self, q: Optional[_Question]) -> Tuple[Optional[_Answer], Optional[_Answer]]:
        """Answer what needs no call to tokend: no token, a cached answer, a
        token whose checksum is wrong (refused as tokend would). Second: a
        stale positive answer for outages."""
        if q is None:
            return _NO_CREDENTIALS, None
        if len(q.token) > MAX_LEN:
            # Too long to be a secret: refused before it costs a digest.
            return _MALFORMED, None
        if self.cached:
            hit, stale = self.cached_answer(q)
            if hit is not None:
                return hit, None
        else:
            stale = None
        if not check_secret(q.token):
            return _MALFORMED, None
        return None, stale

    def resolve(self, q: _Question, stale: Optional[_Answer]) -> _Answer:
        """Ask tokend (blocking), sharing the call with concurrent requests
        of the same question when answers are cached."""
        if self.ttl <= 0:
            # Without a TTL every request is tokend's to count: no sharing.
            return self._ask(q, stale)
        with self._flights_lock:
            f = self._flights.get(q.key)
            if f is None:
                # A call caches its answer before it leaves the map, so
                # looking again here, under the lock, makes one call per
                # question and TTL however the requests interleave.
                hit, _ = self.cached_answer(q)
                if hit is not None:
                    return hit
                f = _Flight()
                self._flights[q.key] = f
                leader = True
            else:
                leader = False
        if not leader:
            # The leader's call is bounded by the client's timeout (per
            # network wait); give up well after it, failing closed.
            if f.done.wait(self.client.timeout * 3 + 1) and f.answer is not None:
                if f.answer is _UNAVAILABLE and stale is not None:
                    return stale
                return f.answer
            return stale if stale is not None else _UNAVAILABLE
        try:
            f.answer = self._ask(q, stale=None)
        finally:
            with self._flights_lock:
                del self._flights[q.key]
            f.done.set()
        if f.answer is _UNAVAILABLE and stale is not None:
            return stale
        return f.answer

    def _ask(self, q: _Question, stale: Optional[_Answer]) -> _Answer:
        try:
            res = self.client.verify(
                q.token, permissions=q.permissions, ip=q.ip or None, origin=q.origin or None, user_agent=q.user_agent or None
            )
            if res.valid and res.token is None:
                raise UnavailableError("tokend: tokend answered VALID without a token")
        except (TokendError, OSError, ValueError) as e:
            if self.on_error is not None:
                self.on_error(e)
            return stale if stale is not None else _UNAVAILABLE
        return self._remember(q.key, res)

    def _remember(self, key: bytes, res: VerifyResult) -> _Answer:
        """Cache tokend's latest answer to the question of key, and answer
        what to do with the request. A positive answer is kept for the TTL
        (plus the grace for outages), never past the token's expiry, and not
        when the token's rate limit is used up (the next request must hear
        tokend's refusal). A refusal drops the positive answer, so that an
        outage cannot bring back a token just refused."""
        if res.valid and res.code == VALID and res.token is not None:
            ans = _Answer(True, token=res.token, rate_limit=res.rate_limit, code=VALID)
            if self.refusals is not None:
                self.refusals.delete(key)
            if self.positive is None:
                return ans
            rl = res.rate_limit
            if rl is not None and rl.remaining <= 0:
                self.positive.delete(key)
                return ans
            now = self.monotonic()
            fresh, stale = now + self.ttl, now + self.ttl + self.grace
            if res.token.expires_at is not None:
                left = res.token.expires_at.timestamp() - self.wall()
                if left <= 0:
                    self.positive.delete(key)
                    return ans
                fresh, stale = min(fresh, now + left), min(stale, now + left)
            self.positive.put(key, _Entry(ans, fresh, stale))
            return ans
        ans = _refusal(res)
        if self.positive is not None:
            self.positive.delete(key)
        if self.refusals is not None and res.code != RATE_LIMITED and ans is not _UNAVAILABLE:
            fresh = self.monotonic() + self.refusal_ttl
            self.refusals.put(key, _Entry(ans, fresh, fresh))
        return ans


def _key(q: _Question) -> bytes:
    """Digest everything the answer depends on. The repr of a tuple of
    strings tells every tuple apart (each string quoted and escaped), so no
    two questions share a key; the token itself is kept nowhere."""
    t = (q.token, tuple(q.permissions), q.ip, q.origin)
    return hashlib.sha256(repr(t).encode("utf-8", "surrogatepass")).digest()


@functools.lru_cache(maxsize=4096)
def _ip(ip: Optional[str]) -> str:
    """One IP address without a zone, as tokend takes it, or "" for none
    (remembered: a service sees the same few addresses over and over)."""
    if not ip:
        return ""
    ip = ip.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ""


def _bearer(authorization: Optional[str], api_key: Optional[str]) -> str:
    """Read the token from Authorization: Bearer, or X-API-Key."""
    if authorization:
        parts = authorization.strip().split(" ", 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            tok = parts[1].strip()
            if tok:
                return tok
    return (api_key or "").strip()


class _Middleware:
    """The options WSGIMiddleware and ASGIMiddleware share (see the module
    documentation); the request is what permissions_func and client_ip get:
    the WSGI environ or the ASGI scope."""

    def __init__(
        self,
        app: Any,
        client: Client,
        *,
        permissions: Optional[Sequence[str]] = None,
        permissions_func: Optional[Callable[[Any], Sequence[str]]] = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        refusal_ttl: float = DEFAULT_REFUSAL_TTL,
        cache_size: int = DEFAULT_CACHE_SIZE,
        stale_if_unavailable: float = 0.0,
        client_ip: Optional[Callable[[Any], Optional[str]]] = None,
        ignore_origin: bool = False,
        on_error: Optional[Callable[[BaseException], None]] = None,
    ) -> None:
        self.app = app
        self._guard = _Guard(
            client, permissions, permissions_func, cache_ttl, refusal_ttl, cache_size,
            stale_if_unavailable, client_ip, ignore_origin, on_error,
        )  # fmt: skip


class WSGIMiddleware(_Middleware):
    """Guard a WSGI app with tokend, as the module documentation describes.

    ``app.wsgi_app = WSGIMiddleware(app.wsgi_app, client)`` for Flask;
    wrap ``get_wsgi_application()`` for Django. Make one and wrap the app
    once: the cache lives in the middleware.
    """

    app: WSGIApp

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        g = self._guard
        tok = _bearer(environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_X_API_KEY"))
        q = None
        if tok:
            q = _Question(
                tok,
                g.permissions(environ.get("REQUEST_METHOD", "GET"), environ),
                g.client_ip(environ.get("REMOTE_ADDR"), environ),
                "" if g.ignore_origin else environ.get("HTTP_ORIGIN", ""),
                environ.get("HTTP_USER_AGENT", "")[:_MAX_USER_AGENT],
            )
        ans, stale = g.precheck(q)
        if ans is None:
            ans = g.resolve(q, stale)  # type: ignore[arg-type]
        if ans.ok:
            environ["tokend.token"] = ans.token
            environ["tokend.rate_limit"] = ans.rate_limit
            return self.app(environ, start_response)
        start_response(_STATUS_LINES[ans.status], list(ans.headers))
        return [ans.body]


class ASGIMiddleware(_Middleware):
    """Guard an ASGI app with tokend, as the module documentation describes.

    ``app.add_middleware(ASGIMiddleware, client=client)`` for Starlette and
    FastAPI, or ``ASGIMiddleware(app, client)`` around any ASGI app. HTTP and
    WebSocket connections are guarded (a refused WebSocket is closed before
    it is accepted, which servers answer 403); lifespan passes through.
    """

    app: ASGIApp

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        g = self._guard
        # The first of a repeated header counts, as net/http's Get reads it.
        found: Dict[bytes, str] = {}
        for name, value in scope.get("headers") or ():
            if name in _ASGI_HEADERS and name not in found:
                found[name] = value.decode("latin-1")
        auth, api_key = found.get(b"authorization"), found.get(b"x-api-key")
        origin, ua = found.get(b"origin"), found.get(b"user-agent")
        tok = _bearer(auth, api_key)
        q = None
        if tok:
            client = scope.get("client")
            q = _Question(
                tok,
                g.permissions(scope.get("method", "GET"), scope),
                g.client_ip(client[0] if client else None, scope),
                "" if g.ignore_origin else (origin or ""),
                (ua or "")[:_MAX_USER_AGENT],
            )
        ans, stale = g.precheck(q)
        if ans is None:
            ans = await asyncio.get_running_loop().run_in_executor(None, g.resolve, q, stale)
        if ans.ok:
            scope = dict(scope)
            state = dict(scope.get("state") or {})
            state["tokend_token"] = ans.token
            state["tokend_rate_limit"] = ans.rate_limit
            scope["state"] = state
            scope["tokend.token"] = ans.token
            scope["tokend.rate_limit"] = ans.rate_limit
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "http.response.start", "status": ans.status, "headers": ans.asgi_headers})
        await send({"type": "http.response.body", "body": ans.body})


def token_from(environ_or_scope: Mapping[str, Any]) -> Optional[VerifiedToken]:
    """Answer the token the middleware verified for this WSGI environ or
    ASGI scope (None if it did not)."""
    tok = environ_or_scope.get("tokend.token")
    return tok if isinstance(tok, VerifiedToken) else None


def rate_limit_from(environ_or_scope: Mapping[str, Any]) -> Optional[RateLimitState]:
    """Answer the verified token's rate limit state, when it has a limit: as
    of the verification, which for a cached answer is an earlier request's."""
    rl = environ_or_scope.get("tokend.rate_limit")
    return rl if isinstance(rl, RateLimitState) else None
