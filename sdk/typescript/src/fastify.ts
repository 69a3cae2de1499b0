// Fastify: a preHandler hook. Imported as @tokend/sdk/fastify, so that
// only services using Fastify need its types.

import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import type { RateLimitState, Tokend, VerifiedToken } from "./client.js";
import type { GuardOptions, Outcome } from "./guard.js";
import { first } from "./express.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The token tokendFastify verified for this request. */
    tokend?: VerifiedToken;
    /** Its rate limit state, when it has a limit. */
    tokendRateLimit?: RateLimitState;
  }
}

/**
 * A Fastify preHandler hook that lets through only requests whose token
 * tokend verifies, setting request.tokend; others get 401, 403, 429 or 503
 * with a problem+json body. Use it per route ({ preHandler: hook }) or for
 * every route (app.addHook("preHandler", hook)). It is a callback hook, so
 * that a cached answer costs no promise.
 */
export function tokendFastify(tokend: Tokend, opts: GuardOptions<FastifyRequest> = {}) {
  const guard = tokend.guard();
  return function tokendPreHandler(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const h = request.headers;
    const out = guard.decide(request, request.method, h.authorization, first(h["x-api-key"]), first(h.origin), h["user-agent"], request.ip, opts);
    const answer = (o: Outcome) => {
      if (o.ok) {
        request.tokend = o.token;
        if (o.rateLimit) request.tokendRateLimit = o.rateLimit;
        done();
        return;
      }
      reply.code(o.status).headers(o.headers).send(o.body);
    };
    if (out instanceof Promise) out.then(answer, done);
    else answer(out);
  };
}

export { Tokend } from "./client.js";
