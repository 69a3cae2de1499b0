"""What tokend answers, as Python values.

The answer of POST /v1/verify becomes a VerifyResult of frozen dataclasses
(the middleware shares one between the requests a cached answer serves, so
they must not change). Management answers stay the JSON objects the server
wrote, typed as TypedDicts: a field the server adds later is still there.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Generic, List, Mapping, Optional, TypedDict, TypeVar

from ._secret import mask

T = TypeVar("T")

# The verification codes (VerifyResult.code).
VALID = "VALID"
MALFORMED = "MALFORMED"
NOT_FOUND = "NOT_FOUND"
EXPIRED = "EXPIRED"
DISABLED = "DISABLED"
REVOKED = "REVOKED"
ROTATED = "ROTATED"
IP_NOT_ALLOWED = "IP_NOT_ALLOWED"
ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED"
INSUFFICIENT_PERMISSIONS = "INSUFFICIENT_PERMISSIONS"
RATE_LIMITED = "RATE_LIMITED"
USAGE_EXCEEDED = "USAGE_EXCEEDED"

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> Optional[datetime]:
    """Parse an RFC 3339 time as tokend writes it (nanoseconds, "Z").

    Python 3.9's fromisoformat takes neither, so the fraction is cut to
    microseconds and "Z" spelled as an offset. Anything else answers None.
    """
    if not isinstance(value, str) or not value:
        return None
    s = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    s = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], s, count=1)
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t


@dataclass(frozen=True)
class RateLimitState:
    """A token's rate limit after the verification."""

    limit: int
    remaining: int
    reset: int  # seconds until the full limit is available again
    retry_after: int = 0  # seconds to wait, when rate limited

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "RateLimitState":
        return cls(
            limit=_int(d.get("limit")),
            remaining=_int(d.get("remaining")),
            reset=_int(d.get("reset")),
            retry_after=_int(d.get("retry_after")),
        )


@dataclass(frozen=True)
class VerifiedToken:
    """What a verifier learns about a token: its identity, never its secret."""

    id: str
    app_id: str
    name: str
    type: str  # standard or plugin
    access: str  # read_only, full_access or custom
    permissions: List[str] = field(default_factory=list)
    owner_id: Optional[str] = None
    expires_at: Optional[datetime] = None
    metadata: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "VerifiedToken":
        perms = d.get("permissions")
        meta = d.get("metadata")
        return cls(
            id=str(d.get("id") or ""),
            app_id=str(d.get("app_id") or ""),
            name=str(d.get("name") or ""),
            type=str(d.get("type") or ""),
            access=str(d.get("access") or ""),
            permissions=[str(p) for p in perms] if isinstance(perms, list) else [],
            owner_id=d.get("owner_id") or None,
            expires_at=parse_time(d.get("expires_at")),
            metadata=meta if isinstance(meta, dict) else {},
        )


@dataclass(frozen=True)
class VerifyResult:
    """The answer of POST /v1/verify.

    valid says whether the token may be used for the request, code why
    (VALID, or a reason such as REVOKED), reason adds detail to some codes
    (client_throttled for a RATE_LIMITED from tokend's failure throttle).
    """

    valid: bool
    code: str
    token: Optional[VerifiedToken] = None
    rate_limit: Optional[RateLimitState] = None
    reason: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "VerifyResult":
        tok = d.get("token")
        rl = d.get("rate_limit")
        return cls(
            valid=d.get("valid") is True,
            code=str(d.get("code") or ""),
            token=VerifiedToken.from_json(tok) if isinstance(tok, dict) else None,
            rate_limit=RateLimitState.from_json(rl) if isinstance(rl, dict) else None,
            reason=d.get("reason") or None,
        )

    @property
    def status(self) -> int:
        """The HTTP status forward auth and the middleware answer this with."""
        if self.code == VALID:
            return 200
        if self.code in (IP_NOT_ALLOWED, ORIGIN_NOT_ALLOWED, INSUFFICIENT_PERMISSIONS):
            return 403
        if self.code == RATE_LIMITED:
            return 429
        return 401

    def describe(self) -> str:
        """Say in words why the verification answered as it did."""
        if self.code == RATE_LIMITED:
            if self.reason:
                return "too many failed attempts from this address; slow down"
            return "the token's rate limit is used up"
        return _DESCRIPTIONS.get(self.code, "the token was refused (" + self.code + ")")


_DESCRIPTIONS = {
    VALID: "the token is valid",
    MALFORMED: "the token is malformed",
    NOT_FOUND: "the token is not known",
    EXPIRED: "the token has expired",
    DISABLED: "the token is disabled",
    REVOKED: "the token is revoked",
    ROTATED: "the secret was replaced by rotation; the token's new secret must be used",
    USAGE_EXCEEDED: "the token has reached its maximum number of uses",
    IP_NOT_ALLOWED: "the token may not be used from this address",
    ORIGIN_NOT_ALLOWED: "the token may not be used from this origin",
    INSUFFICIENT_PERMISSIONS: "the token lacks a permission this request needs",
}


class App(TypedDict, total=False):
    """An application, as GET /v1/apps/{id} answers it (and more fields)."""

    id: str
    name: str
    token_prefix: str
    permissions: List[str]
    system: bool
    created_at: str
    updated_at: str
    version: int


class Token(TypedDict, total=False):
    """A token, as GET /v1/tokens/{id} answers it (and more fields)."""

    id: str
    app_id: str
    owner_id: str
    owner_name: str
    name: str
    description: str
    type: str
    access: str
    permissions: List[str]
    expires_at: Optional[str]
    allowed_ips: List[str]
    allowed_origins: List[str]
    rate_limit: Optional[Dict[str, Any]]
    max_uses: Optional[int]
    metadata: Optional[Dict[str, Any]]
    status: str
    masked: str
    created_at: str
    created_by: str
    updated_at: str
    last_used_at: Optional[str]
    version: int


class AuditEvent(TypedDict, total=False):
    """One row of the audit log (GET /v1/audit)."""

    id: int
    time: str
    actor: str
    actor_name: str
    ip: str
    action: str
    app_id: str
    token_id: str
    details: Dict[str, Any]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; next_cursor is empty on the last one."""

    items: List[T]
    next_cursor: str = ""


@dataclass(frozen=True)
class IssuedToken:
    """The answer to create and rotate: the only time a secret is seen.

    Its repr shows the secret masked, so that logging the object by mistake
    does not leak it; read .secret on purpose, hand it to its user, and keep
    it nowhere.
    """

    token: Token
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "IssuedToken(token_id=%r, secret=%r)" % (self.token.get("id"), mask(self.secret))


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
