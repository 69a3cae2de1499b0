// @tokend/sdk: verify and manage tokend API tokens from TypeScript and
// JavaScript. No runtime dependencies; fetch-based (Node ≥ 18, Bun, Deno,
// edge runtimes). Fastify and Hono middleware live in @tokend/sdk/fastify
// and @tokend/sdk/hono.

export * from "./client.js";
export type { AuthResult, CacheOptions, GuardOptions, Outcome, Passed, Refused } from "./guard.js";
export { tokendExpress, type NodeRequest } from "./express.js";
export { validSecret } from "./secret.js";
export type { components, operations, paths } from "./schema.js";
