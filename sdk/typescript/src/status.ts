// HTTP statuses as tokend names them: reason phrases and error codes.

const statuses: Record<number, [string, string]> = {
  400: ["Bad Request", "MALFORMED_REQUEST"],
  401: ["Unauthorized", "UNAUTHENTICATED"],
  403: ["Forbidden", "FORBIDDEN"],
  404: ["Not Found", "NOT_FOUND"],
  405: ["Method Not Allowed", "METHOD_NOT_ALLOWED"],
  409: ["Conflict", "CONFLICT"],
  412: ["Precondition Failed", "PRECONDITION_FAILED"],
  413: ["Content Too Large", "TOO_LARGE"],
  422: ["Unprocessable Entity", "VALIDATION_FAILED"],
  429: ["Too Many Requests", "RATE_LIMITED"],
  502: ["Bad Gateway", "UNAVAILABLE"],
  503: ["Service Unavailable", "UNAVAILABLE"],
  504: ["Gateway Timeout", "UNAVAILABLE"],
};

/** The reason phrase of an HTTP status. */
export function statusText(status: number): string {
  return statuses[status]?.[0] ?? (status >= 500 ? "Server Error" : `HTTP ${status}`);
}

/** The error code tokend gives a status, for answers that are not its problem documents. */
export function codeForStatus(status: number): string {
  return statuses[status]?.[1] ?? (status >= 500 ? "INTERNAL" : "MALFORMED_REQUEST");
}
