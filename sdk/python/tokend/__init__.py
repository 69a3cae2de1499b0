"""tokend: verify API tokens, manage them, and guard WSGI and ASGI apps.

The Python SDK of tokend (https://github.com/tokend/tokend), on the
standard library only::

    import tokend

    client = tokend.Client("http://127.0.0.1:8080")
    result = client.verify(secret, permissions=["orders:read"], ip=client_ip)
    if not result.valid:
        ...  # result.code says why: NOT_FOUND, REVOKED, RATE_LIMITED, …

Management calls (apps, tokens, rotate, revoke, audit) need an admin token:
``tokend.Client(url, admin_token=...)``. Failures tokend answers raise
ProblemError with the problem document's fields; a tokend that cannot be
reached raises UnavailableError. WSGIMiddleware and ASGIMiddleware guard a
web app (Flask, Django, FastAPI, Starlette) without importing any framework.
"""

from ._client import DEFAULT_TIMEOUT, MAX_ANSWER_BYTES, POOL_SIZE, Client
from ._errors import ProblemError, TokendError, UnavailableError
from ._models import (
    DISABLED,
    EXPIRED,
    INSUFFICIENT_PERMISSIONS,
    IP_NOT_ALLOWED,
    MALFORMED,
    NOT_FOUND,
    ORIGIN_NOT_ALLOWED,
    RATE_LIMITED,
    REVOKED,
    ROTATED,
    USAGE_EXCEEDED,
    VALID,
    App,
    AuditEvent,
    IssuedToken,
    Page,
    RateLimitState,
    Token,
    VerifiedToken,
    VerifyResult,
)
from ._secret import check_secret, mask
from .middleware import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_CACHE_TTL,
    DEFAULT_REFUSAL_TTL,
    ASGIMiddleware,
    WSGIMiddleware,
    rate_limit_from,
    token_from,
)

__version__ = "0.1.0"

__all__ = [
    "ASGIMiddleware",
    "App",
    "AuditEvent",
    "Client",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_REFUSAL_TTL",
    "DEFAULT_TIMEOUT",
    "DISABLED",
    "EXPIRED",
    "INSUFFICIENT_PERMISSIONS",
    "IP_NOT_ALLOWED",
    "IssuedToken",
    "MALFORMED",
    "MAX_ANSWER_BYTES",
    "NOT_FOUND",
    "ORIGIN_NOT_ALLOWED",
    "POOL_SIZE",
    "Page",
    "ProblemError",
    "RATE_LIMITED",
    "REVOKED",
    "ROTATED",
    "RateLimitState",
    "Token",
    "TokendError",
    "USAGE_EXCEEDED",
    "UnavailableError",
    "VALID",
    "VerifiedToken",
    "VerifyResult",
    "WSGIMiddleware",
    "check_secret",
    "mask",
    "rate_limit_from",
    "token_from",
]
