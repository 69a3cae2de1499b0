"""The HTTP client of tokend's REST API, on the standard library's urllib."""

import http.client
import json
import select
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._errors import ProblemError, TokendError, UnavailableError
from ._models import App, AuditEvent, IssuedToken, Page, Token, VerifyResult

# Answer size limits, as the Go SDK's: a page of the largest size with large
# metadata fits well within MAX_ANSWER_BYTES; a problem document is small.
MAX_ANSWER_BYTES = 16 << 20
_MAX_PROBLEM_BYTES = 64 << 10

#: How long one call may wait on the server, in seconds, unless told.
DEFAULT_TIMEOUT = 5.0

_USER_AGENT = "tokend-python"

TimeLike = Union[datetime, str]


#: How many idle connections a Client keeps to its server.
POOL_SIZE = 10

# An idle connection older than this is closed rather than reused: the
# server (tokend keeps them 2 minutes) or a proxy before it may be about to
# close it, and a request sent as it does so would fail.
_IDLE_MAX = 30.0

_MAX_REDIRECTS = 10

# Methods whose request may be sent again when a reused connection turns
# out to be closed before it answered: doing them twice is doing them once.
# A POST (verify counts a use) is not among them.
_IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS"))


class _Pool:
    """Keep-alive connections to one server, shared by the threads of a
    Client: each connection serves one request at a time, and goes back to
    the pool only once its answer was read whole."""

    def __init__(self, scheme: str, host: str, port: Optional[int], size: int) -> None:
        self._https = scheme == "https"
        self._host = host
        self._port = port
        self._size = size
        self._lock = threading.Lock()
        self._idle: List[Tuple[http.client.HTTPConnection, float]] = []

    def get(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it served a request before."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                # The most recently used first: the likeliest still open.
                conn, since = self._idle.pop()
            if now - since < _IDLE_MAX and not _dropped(conn):
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                return conn, True
            conn.close()
        return self.new(timeout), False

    def new(self, timeout: float) -> http.client.HTTPConnection:
        """A connection of its own (opened at its first request)."""
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if conn.sock is not None and len(self._idle) < self._size:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    # A Client dropped without close() leaves no socket open behind it.
    __del__ = close


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Report whether an idle connection was closed by the other end: one
    that has something to read before it was asked anything holds an end of
    file (or bytes no request asked for), and cannot be used."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            p = select.poll()
            p.register(sock, select.POLLIN)
            return bool(p.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class Client:
    """Calls one tokend server.

    base_url is where tokend answers, such as "http://127.0.0.1:8080" or
    "https://tokens.example.com/tokend". admin_token is sent as a bearer
    token on management calls only; verify needs none and sends none.
    timeout bounds each wait on the network, in seconds.

    A Client is safe to share between threads. It keeps up to POOL_SIZE idle
    connections to the server for the next calls (close() closes them; a
    Client is also a context manager). It never puts a secret in an
    exception message, a repr or a log.
    """

    def __init__(
        self,
        base_url: str,
        admin_token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = _USER_AGENT,
    ) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ValueError("tokend: base URL %r must be http:// or https:// with a host" % base_url)
        if u.username is not None or u.password is not None or u.query or u.fragment:
            raise ValueError("tokend: base URL must not hold user information, a query or a fragment")
        if admin_token is not None and (not admin_token or any(c in admin_token for c in " \t\r\n")):
            raise ValueError("tokend: the admin token must not be empty or contain white space")
        if timeout <= 0:
            raise ValueError("tokend: timeout must be positive")
        self._base = u.scheme + "://" + u.netloc + u.path.rstrip("/")
        self._token = admin_token
        self.timeout = float(timeout)
        self._user_agent = user_agent
        self._origin = (u.scheme + "://" + u.netloc).lower()
        try:
            port = u.port
        except ValueError:
            raise ValueError("tokend: base URL %r has an invalid port" % base_url) from None
        self._pool = _Pool(u.scheme, u.hostname or "", port, POOL_SIZE)
        # Set once a server refused the user_agent member of POST /v1/verify
        # (a tokend older than the field): verify leaves it out from then on.
        self._old_server = threading.Event()

    @property
    def base_url(self) -> str:
        return self._base

    def __repr__(self) -> str:
        return "tokend.Client(%r)" % self._base

    def close(self) -> None:
        """Close the idle connections; a later call opens new ones."""
        self._pool.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # Verification.

    def verify(
        self,
        secret: str,
        permissions: Optional[Sequence[str]] = None,
        ip: Optional[str] = None,
        origin: Optional[str] = None,
        user_agent: Optional[str] = None,
    ) -> VerifyResult:
        """Ask whether a presented secret is good for a request.

        A well-formed question always has an answer: .valid is False with a
        .code saying why (MALFORMED, NOT_FOUND, REVOKED, …). permissions are
        every permission the request needs (resource:action, or "read" /
        "write"), ip the end client's address, origin the browser's Origin
        header, user_agent the end client's User-Agent (recorded only in the
        security events a secret can raise).

        Raises UnavailableError when tokend cannot answer (unreachable, a
        timeout, an answer that is not JSON) and ProblemError when it
        answers an error status (503 UNAVAILABLE when its storage cannot be
        asked, 422 for a question that is not well formed): either way the
        caller must refuse the request.
        """
        body: Dict[str, Any] = {"token": secret}
        if permissions:
            body["permissions"] = list(permissions)
        if ip:
            body["ip"] = ip
        if origin:
            body["origin"] = origin
        if user_agent and not self._old_server.is_set():
            body["user_agent"] = user_agent
        try:
            out = self._do("POST", "/v1/verify", body=body, auth=False)
        except ProblemError as e:
            if "user_agent" not in body or e.status != 422 or not any(f.get("field") == "user_agent" for f in e.errors):
                raise
            self._old_server.set()
            del body["user_agent"]
            out = self._do("POST", "/v1/verify", body=body, auth=False)
        if not isinstance(out, dict) or not isinstance(out.get("valid"), bool) or not isinstance(out.get("code"), str):
            raise UnavailableError("tokend: the answer to POST /v1/verify is not a verification")
        return VerifyResult.from_json(out)

    def healthy(self) -> bool:
        """Report whether the server process answers (/healthz)."""
        return self._probe("/healthz")

    def ready(self) -> bool:
        """Report whether the server can serve requests, storage included (/readyz)."""
        return self._probe("/readyz")

    # Applications.

    def list_apps(self, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[App]:
        """List applications, oldest first, one page at a time."""
        return self._page("/v1/apps", {"limit": limit, "cursor": cursor})

    def iter_apps(self, limit: Optional[int] = None) -> Iterator[App]:
        """Iterate over every application, fetching pages as it goes."""
        return self._all(lambda c: self.list_apps(limit=limit, cursor=c))

    def create_app(self, name: str, **fields: Any) -> App:
        """Create an application; fields are the other members of POST /v1/apps
        (token_prefix, permissions, max_token_lifetime, leak_policy, …)."""
        return self._do("POST", "/v1/apps", body=dict(fields, name=name))  # type: ignore[no-any-return]

    def get_app(self, app_id: str) -> App:
        return self._do("GET", "/v1/apps/" + _seg("app", app_id))  # type: ignore[no-any-return]

    def update_app(self, app_id: str, version: Optional[int] = None, **fields: Any) -> App:
        """Edit an application (PATCH): fields given change, None clears one.
        With version, only if the app is still at that version (else a
        ProblemError of code PRECONDITION_FAILED)."""
        return self._do("PATCH", "/v1/apps/" + _seg("app", app_id), body=fields, version=version)  # type: ignore[no-any-return]

    def delete_app(self, app_id: str, version: Optional[int] = None) -> None:
        """Delete an application and every one of its tokens."""
        self._do("DELETE", "/v1/apps/" + _seg("app", app_id), version=version)

    def revoke_all(self, app_id: str) -> int:
        """Revoke every live token of an application; answer how many."""
        out = self._do("POST", "/v1/apps/" + _seg("app", app_id) + "/revoke-all")
        return int(out.get("revoked", 0)) if isinstance(out, dict) else 0

    def revoke_owner_tokens(self, app_id: str, owner_id: str) -> int:
        """Revoke every live token of one owner of an application; answer how many."""
        path = "/v1/apps/" + _seg("app", app_id) + "/owners/" + _seg("owner", owner_id) + "/revoke-all"
        out = self._do("POST", path)
        return int(out.get("revoked", 0)) if isinstance(out, dict) else 0

    # Tokens.

    def list_tokens(
        self,
        app_id: Optional[str] = None,
        owner_id: Optional[str] = None,
        status: Optional[str] = None,
        type: Optional[str] = None,
        q: Optional[str] = None,
        unused_for: Optional[str] = None,
        sort: Optional[str] = None,
        order: Optional[str] = None,
        decoy: bool = False,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Token]:
        """List tokens, newest first unless sorted otherwise."""
        query = {
            "app_id": app_id,
            "owner_id": owner_id,
            "status": status,
            "type": type,
            "q": q,
            "unused_for": unused_for,
            "sort": sort,
            "order": order,
            "decoy": "true" if decoy else None,
            "limit": limit,
            "cursor": cursor,
        }
        return self._page("/v1/tokens", query)

    def iter_tokens(self, **filters: Any) -> Iterator[Token]:
        """Iterate over every token that the filters of list_tokens select."""
        filters.pop("cursor", None)
        return self._all(lambda c: self.list_tokens(cursor=c, **filters))

    def create_token(self, app_id: str, name: str, **fields: Any) -> IssuedToken:
        """Create a token and answer it with its secret, shown this once.

        fields are the other members of POST /v1/tokens: description, type,
        access, permissions, expires_in, expires_at, allowed_ips,
        allowed_origins, rate_limit ({"limit": 1000, "window": "1h"}),
        max_uses, metadata, owner_id, owner_name, scope, decoy.
        """
        out = self._do("POST", "/v1/tokens", body=dict(fields, app_id=app_id, name=name))
        return _issued(out)

    def get_token(self, token_id: str) -> Token:
        return self._do("GET", "/v1/tokens/" + _seg("token", token_id))  # type: ignore[no-any-return]

    def update_token(self, token_id: str, version: Optional[int] = None, **fields: Any) -> Token:
        """Edit a token (PATCH): fields given change, None clears one."""
        return self._token_call("PATCH", token_id, "", fields, version)

    def disable_token(self, token_id: str, version: Optional[int] = None) -> Token:
        return self._token_call("POST", token_id, "/disable", None, version)

    def enable_token(self, token_id: str, version: Optional[int] = None) -> Token:
        return self._token_call("POST", token_id, "/enable", None, version)

    def revoke_token(self, token_id: str, version: Optional[int] = None) -> Token:
        """Revoke a token for good; it stays listed for the audit."""
        return self._token_call("POST", token_id, "/revoke", None, version)

    def rotate_token(self, token_id: str, grace_period: Optional[str] = None, version: Optional[int] = None) -> IssuedToken:
        """Give a token a new secret, same id and settings; answer it with the
        new secret (shown this once). The old secret keeps working for
        grace_period, such as "1h" (None: not at all)."""
        body = {"grace_period": grace_period} if grace_period else None
        out = self._do("POST", "/v1/tokens/" + _seg("token", token_id) + "/rotate", body=body, version=version)
        return _issued(out)

    def delete_token(self, token_id: str, version: Optional[int] = None) -> None:
        """Delete a token permanently."""
        self._do("DELETE", "/v1/tokens/" + _seg("token", token_id), version=version)

    def token_usage(self, token_id: str, since: Optional[TimeLike] = None, until: Optional[TimeLike] = None) -> List[Dict[str, Any]]:
        """A token's verifications per hour and outcome, oldest first."""
        query = {"from": _time(since), "to": _time(until)}
        out = self._do("GET", "/v1/tokens/" + _seg("token", token_id) + "/usage", query=query)
        return list(out.get("items") or []) if isinstance(out, dict) else []

    def token_activity(self, token_id: str) -> List[Dict[str, Any]]:
        """A token's recent verifications, newest first (at most 50)."""
        out = self._do("GET", "/v1/tokens/" + _seg("token", token_id) + "/activity")
        return list(out.get("items") or []) if isinstance(out, dict) else []

    # Audit.

    def audit(
        self,
        token_id: Optional[str] = None,
        app_id: Optional[str] = None,
        action: Optional[str] = None,
        since: Optional[TimeLike] = None,
        until: Optional[TimeLike] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[AuditEvent]:
        """List audit events (who did what, when, from where), newest first."""
        query = {
            "token_id": token_id,
            "app_id": app_id,
            "action": action,
            "since": _time(since),
            "until": _time(until),
            "limit": limit,
            "cursor": cursor,
        }
        return self._page("/v1/audit", query)

    def iter_audit(self, **filters: Any) -> Iterator[AuditEvent]:
        """Iterate over every audit event that the filters of audit select."""
        filters.pop("cursor", None)
        return self._all(lambda c: self.audit(cursor=c, **filters))

    # The wire.

    def _token_call(self, method: str, token_id: str, action: str, body: Any, version: Optional[int]) -> Token:
        return self._do(method, "/v1/tokens/" + _seg("token", token_id) + action, body=body, version=version)  # type: ignore[no-any-return]

    def _page(self, path: str, query: Mapping[str, Any]) -> Page[Any]:
        out = self._do("GET", path, query=query)
        if not isinstance(out, dict) or not isinstance(out.get("items"), list):
            raise UnavailableError("tokend: the answer to GET %s is not a list" % path)
        return Page(items=out["items"], next_cursor=str(out.get("next_cursor") or ""))

    @staticmethod
    def _all(list_page: Callable[[Optional[str]], Page[Any]]) -> Iterator[Any]:
        cursor: Optional[str] = None
        while True:
            page = list_page(cursor)
            yield from page.items
            # A server that answers the cursor it was given would loop forever.
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    def _probe(self, path: str) -> bool:
        try:
            self._do("GET", path, auth=False, decode=False)
        except TokendError:
            return False
        return True

    def _do(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[Mapping[str, Any]] = None,
        auth: bool = True,
        version: Optional[int] = None,
        decode: bool = True,
    ) -> Any:
        """Send one request; answer the decoded JSON of a 2xx answer."""
        target = urllib.parse.urlsplit(self._base).path + path
        if query:
            q = [(k, str(v)) for k, v in query.items() if v is not None and v != ""]
            if q:
                target += "?" + urllib.parse.urlencode(q)
        data = None
        headers = {"Accept": "application/json, application/problem+json", "User-Agent": self._user_agent}
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if auth and self._token:
            headers["Authorization"] = "Bearer " + self._token
        if version:
            headers["If-Match"] = '"%d"' % version
        where = "%s %s" % (method, path)
        try:
            status, resp_headers, raw = self._send(method, target, data, headers)
        except TokendError:
            raise
        except (OSError, ValueError, http.client.HTTPException) as e:
            # Timeouts, refused and reset connections: the message names the
            # method and path, never the query or a header.
            raise UnavailableError("tokend: %s: %s" % (where, _reason(e))) from None
        if status < 200 or status > 299:
            raise _problem(status, resp_headers, raw or b"")
        if raw is None:
            raise UnavailableError("tokend: the answer to %s is larger than %d bytes" % (where, MAX_ANSWER_BYTES))
        if not decode or status == 204 or not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            # Not the content: an answer may hold a secret.
            raise UnavailableError("tokend: the answer to %s is not JSON" % where) from None

    def _send(
        self, method: str, target: str, data: Optional[bytes], headers: Dict[str, str]
    ) -> Tuple[int, http.client.HTTPMessage, Optional[bytes]]:
        """Send a request, following redirects within the server; answer the
        status, headers and body (None for a 2xx body over the limit)."""
        for _ in range(_MAX_REDIRECTS + 1):
            status, resp_headers, raw = self._round_trip(method, target, data, headers)
            location = resp_headers.get("Location")
            if status not in (301, 302, 303, 307, 308) or not location:
                return status, resp_headers, raw
            # A redirect elsewhere would carry the admin token (and the
            # secret being verified) to another server: the Go SDK refuses
            # those too.
            u = urllib.parse.urlsplit(urllib.parse.urljoin(self._origin + target, location))
            if (u.scheme + "://" + u.netloc).lower() != self._origin:
                raise UnavailableError(
                    "refusing to follow a redirect to %s://%s, which is not the configured server" % (u.scheme, u.hostname)
                )
            target = (u.path or "/") + ("?" + u.query if u.query else "")
            if status in (301, 302, 303) and method not in ("GET", "HEAD"):
                method, data = "GET", None
                headers = {k: v for k, v in headers.items() if k != "Content-Type"}
        raise UnavailableError("tokend: more than %d redirects" % _MAX_REDIRECTS)

    def _round_trip(
        self, method: str, target: str, data: Optional[bytes], headers: Dict[str, str]
    ) -> Tuple[int, http.client.HTTPMessage, Optional[bytes]]:
        """One request and its answer on a pooled connection. A reused
        connection the server closed before answering is replaced by a new
        one, and an idempotent request sent again on it."""
        conn, reused = self._pool.get(self.timeout)
        try:
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused or method not in _IDEMPOTENT:
                    raise
                conn.close()
                conn = self._pool.new(self.timeout)
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
            ok = 200 <= resp.status <= 299
            limit = MAX_ANSWER_BYTES if ok else _MAX_PROBLEM_BYTES
            raw: Optional[bytes]
            if ok and resp.length is not None and resp.length > MAX_ANSWER_BYTES:
                raw = None  # refused unread
            else:
                raw = resp.read(limit + 1) if ok else resp.read(limit)
                if ok and len(raw) > limit:
                    raw = None
        except BaseException:
            conn.close()
            raise
        if resp.isclosed():
            # Read whole: the connection can serve the next request (unless
            # the server said it would close it, and http.client did).
            self._pool.put(conn)
        else:
            # What is left unread (an answer past its limit) is not worth
            # reading: the connection goes with it.
            conn.close()
        return resp.status, resp.headers, raw


def _problem(status: int, headers: http.client.HTTPMessage, raw: bytes) -> ProblemError:
    """Turn an error answer into a ProblemError, from its problem document
    when it has one."""
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    doc = None
    if ctype in ("application/problem+json", "application/json"):
        try:
            d = json.loads(raw)
        except ValueError:
            d = None
        if isinstance(d, dict) and (d.get("code") or d.get("title") or d.get("detail")):
            doc = d
    retry = None
    ra = headers.get("Retry-After")
    if ra and ra.strip().isdigit():
        retry = int(ra.strip())
    return ProblemError.from_problem(status, doc, retry)


def _reason(e: BaseException) -> str:
    r = getattr(e, "reason", None)
    if r is not None and not isinstance(r, str):
        e = r
    if isinstance(e, TimeoutError) or "timed out" in str(e):
        return "timed out"
    return str(r if isinstance(r, str) else e) or type(e).__name__


def _seg(kind: str, ident: str) -> str:
    """Escape one id as a path segment, refusing ids that would change the path."""
    if not isinstance(ident, str) or ident in ("", ".", ".."):
        raise ValueError("tokend: invalid %s id %r" % (kind, ident))
    return urllib.parse.quote(ident, safe="")


def _time(t: Optional[TimeLike]) -> Optional[str]:
    if t is None or isinstance(t, str):
        return t
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _issued(out: Any) -> IssuedToken:
    if not isinstance(out, dict) or not isinstance(out.get("token"), dict) or not isinstance(out.get("secret"), str):
        raise UnavailableError("tokend: the answer holds no token and secret")
    return IssuedToken(token=out["token"], secret=out["secret"])
