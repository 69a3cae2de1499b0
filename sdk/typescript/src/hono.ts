// Hono middleware. Imported as @tokend/sdk/hono, so that only services
// using Hono need its types. Runs wherever Hono runs (fetch API only).

import type { Context, MiddlewareHandler } from "hono";
import type { RateLimitState, Tokend, VerifiedToken } from "./client.js";
import type { GuardOptions } from "./guard.js";

/** What the middleware sets on the context: c.get("tokend"). */
export type TokendVariables = {
  tokend: VerifiedToken;
  tokendRateLimit: RateLimitState | undefined;
};

/**
 * Hono middleware that lets through only requests whose token tokend
 * verifies, setting c.get("tokend"); others get 401, 403, 429 or 503 with
 * a problem+json body. The client address is the socket's under
 * @hono/node-server; elsewhere give clientIp (e.g. from hono/conninfo).
 */
export function tokendHono(tokend: Tokend, opts: GuardOptions<Context> = {}): MiddlewareHandler<{ Variables: TokendVariables }> {
  const guard = tokend.guard();
  return async (c, next) => {
    const r = c.req.raw;
    const h = r.headers;
    let out = guard.decide(c, r.method, h.get("authorization"), h.get("x-api-key"), h.get("origin"), h.get("user-agent"), nodeSocketIp(c), opts);
    if (out instanceof Promise) out = await out;
    if (!out.ok) return new Response(out.body, { status: out.status, headers: out.headers });
    c.set("tokend", out.token);
    c.set("tokendRateLimit", out.rateLimit);
    await next();
  };
}

function nodeSocketIp(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

export { Tokend } from "./client.js";
