// Express (4 and 5) middleware, written against Node's request and response
// so that it needs no Express import: it works with any connect-style
// framework, and the package keeps no runtime dependency.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { RateLimitState, Tokend, VerifiedToken } from "./client.js";
import type { GuardOptions, Outcome } from "./guard.js";

declare global {
  // Express's own request type merges this namespace's Request.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The token tokendExpress verified for this request. */
      tokend?: VerifiedToken;
      /** Its rate limit state, when it has a limit (for a cached answer, an earlier request's). */
      tokendRateLimit?: RateLimitState;
    }
  }
}

/** The parts of an Express request the middleware reads. */
export interface NodeRequest extends IncomingMessage {
  ip?: string;
  tokend?: VerifiedToken;
  tokendRateLimit?: RateLimitState;
}

/**
 * Express middleware that lets through only requests whose token tokend
 * verifies (see Guard), setting req.tokend; others get 401, 403, 429 or
 * 503 with a problem+json body. Make it once per set of options: every
 * middleware of one Tokend shares its cache.
 */
export function tokendExpress(tokend: Tokend, opts: GuardOptions<NodeRequest> = {}) {
  const guard = tokend.guard();
  return function tokendMiddleware(req: NodeRequest, res: ServerResponse, next: (err?: unknown) => void): void {
    const h = req.headers;
    const out = guard.decide(
      req, req.method ?? "GET", h.authorization, first(h["x-api-key"]), first(h.origin), h["user-agent"],
      req.ip ?? req.socket?.remoteAddress, opts,
    );
    if (out instanceof Promise) out.then((o) => answer(o, req, res, next), next);
    else answer(out, req, res, next);
  };
}

function answer(o: Outcome, req: NodeRequest, res: ServerResponse, next: (err?: unknown) => void): void {
  if (o.ok) {
    req.tokend = o.token;
    if (o.rateLimit) req.tokendRateLimit = o.rateLimit;
    next();
    return;
  }
  res.writeHead(o.status, { ...o.headers, "Content-Length": String(Buffer.byteLength(o.body)) });
  res.end(o.body);
}

/** @internal */
export function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
