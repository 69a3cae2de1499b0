"""The errors the SDK raises.

Every message is safe to log: none holds a secret (the admin token, a
verified token's secret, a secret tokend issued), nor a request's body.
"""

from typing import Any, Dict, List, Mapping, Optional


class TokendError(Exception):
    """Anything that kept a call from getting tokend's answer."""


class UnavailableError(TokendError):
    """tokend could not be asked, or did not answer in time or in JSON.

    A service that verifies tokens must refuse the request (503): an
    unanswered question is never a valid token.
    """


class ProblemError(TokendError):
    """tokend answered with an error status: an RFC 9457 problem document.

    status, type, title, detail and errors are the document's fields (errors
    is the per-field list of a 422, each {"field", "message"}); code is
    tokend's stable machine code, such as NOT_FOUND or VALIDATION_FAILED.
    For an answer that is not a problem document (a proxy's error page) the
    fields say what the status does. retry_after is the Retry-After header
    in seconds, when the server sent one (429, 503).
    """

    def __init__(
        self,
        status: int,
        code: str = "",
        title: str = "",
        detail: str = "",
        type: str = "about:blank",
        errors: Optional[List[Dict[str, str]]] = None,
        retry_after: Optional[int] = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.type = type
        self.errors: List[Dict[str, str]] = errors or []
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        msg = self.detail or self.title or "the server answered %d" % self.status
        parts = []
        for e in self.errors:
            f, m = e.get("field", ""), e.get("message", "")
            parts.append(f + ": " + m if f else m)
        if parts:
            msg += ": " + "; ".join(parts)
        return msg

    def __repr__(self) -> str:
        return "ProblemError(status=%d, code=%r, detail=%r)" % (self.status, self.code, self.detail or self.title)

    @classmethod
    def from_problem(cls, status: int, doc: Optional[Mapping[str, Any]], retry_after: Optional[int]) -> "ProblemError":
        doc = doc or {}
        errs = doc.get("errors")
        errors = []
        if isinstance(errs, list):
            for e in errs:
                if isinstance(e, dict):
                    errors.append({"field": str(e.get("field") or ""), "message": str(e.get("message") or "")})
        title = doc.get("title")
        return cls(
            status=status,
            code=str(doc.get("code") or code_for_status(status)),
            title=str(title) if title else _TITLES.get(status, ""),
            detail=str(doc.get("detail") or ""),
            type=str(doc.get("type") or "about:blank"),
            errors=errors,
            retry_after=retry_after,
        )


# What a status means when the answer is no problem document, as the Go
# SDK's tokend.CodeForStatus says.
_CODE_FOR_STATUS = {
    400: "MALFORMED_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "TOO_LARGE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMITED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}


def code_for_status(status: int) -> str:
    """Answer tokend's error code for an HTTP status."""
    if status in _CODE_FOR_STATUS:
        return _CODE_FOR_STATUS[status]
    return "INTERNAL" if status >= 500 else "MALFORMED_REQUEST"


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
