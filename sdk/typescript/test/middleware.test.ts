// Each middleware with its real framework against a real tokend: the same
// answers as the Go SDK's middleware and tokend's forward-auth door.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import type { Server as HTTPServer } from "node:http";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { Tokend, tokendExpress, type GuardOptions } from "@tokend/sdk";
import { tokendFastify } from "@tokend/sdk/fastify";
import { tokendHono, type TokendVariables } from "@tokend/sdk/hono";
import { startShop, type Server } from "./server.js";

let srv: Server;
let admin: Tokend;
let appId: string;

before(async () => ({ srv, admin, appId } = await startShop(["orders:read", "orders:write"])));
after(() => srv?.stop());

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}
interface Harness {
  request(method: string, path: string, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}
/** Makes a service with GET and POST /orders behind the middleware, and /admin needing orders:write. */
type Make = (t: Tokend, perms: GuardOptions<never>["permissions"]) => Promise<Harness>;

async function answer(r: Response): Promise<Answer> {
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text.startsWith("{") ? JSON.parse(text) : text };
}

function overHTTP(server: HTTPServer, close: () => Promise<void>): Harness {
  const { port } = server.address() as AddressInfo;
  return {
    request: (method, path, headers) => fetch(`http://127.0.0.1:${port}${path}`, { method, headers }).then(answer),
    close,
  };
}

const makeExpress: Make = async (t, perms) => {
  const app = express();
  const guard = tokendExpress(t);
  const hello = (req: express.Request, res: express.Response) => {
    res.json({ name: req.tokend!.name, remaining: req.tokendRateLimit?.remaining ?? null });
  };
  app.get("/orders", guard, hello);
  app.post("/orders", guard, hello);
  app.get("/admin", tokendExpress(t, { permissions: perms as string[] }), hello);
  const server = await new Promise<HTTPServer>((r) => {
    const s = app.listen(0, "127.0.0.1", () => r(s));
  });
  return overHTTP(server, () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }));
};

const makeFastify: Make = async (t, perms) => {
  const app = Fastify();
  const hello = async (req: import("fastify").FastifyRequest) => ({ name: req.tokend!.name, remaining: req.tokendRateLimit?.remaining ?? null });
  const hook = tokendFastify(t);
  app.get("/orders", { preHandler: hook }, hello);
  app.post("/orders", { preHandler: hook }, hello);
  app.get("/admin", { preHandler: tokendFastify(t, { permissions: perms as string[] }) }, hello);
  await app.listen({ port: 0, host: "127.0.0.1" });
  return overHTTP(app.server, () => app.close());
};

const makeHono: Make = async (t, perms) => {
  const app = new Hono<{ Variables: TokendVariables }>();
  const hello = (c: import("hono").Context<{ Variables: TokendVariables }>) =>
    c.json({ name: c.get("tokend").name, remaining: c.get("tokendRateLimit")?.remaining ?? null });
  app.use("/orders", tokendHono(t, { clientIp: () => "127.0.0.1" }));
  app.get("/orders", hello);
  app.post("/orders", hello);
  app.get("/admin", tokendHono(t, { permissions: perms as string[], clientIp: () => "127.0.0.1" }), hello);
  return {
    request: async (method, path, headers) => answer(await app.request(path, { method, headers })),
    close: async () => {},
  };
};

const makeFetch: Make = async (t, perms) => {
  // A Next.js route handler or an edge function: Request in, Response out.
  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const auth = await t.authenticate(req, { ip: "127.0.0.1", permissions: path === "/admin" ? (perms as string[]) : undefined });
    if (!auth.ok) return auth.response;
    return Response.json({ name: auth.token.name, remaining: auth.rateLimit?.remaining ?? null });
  };
  return {
    request: async (method, path, headers) => answer(await handler(new Request("http://svc.example" + path, { method, headers }))),
    close: async () => {},
  };
};

const frameworks: [string, Make][] = [
  ["express", makeExpress],
  ["fastify", makeFastify],
  ["hono", makeHono],
  ["authenticate (fetch Request)", makeFetch],
];

async function token(input: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const { token, secret } = await admin.createToken({ app_id: appId, name: "t" + Math.random().toString(36).slice(2), ...input } as never);
  return { id: token.id, secret };
}

for (const [name, make] of frameworks) {
  describe(name, () => {
    let h: Harness;
    let cached: Harness;
    let down: Harness;
    before(async () => {
      // Exact answers first: no cache, every request asks tokend.
      h = await make(new Tokend({ baseUrl: srv.url, cache: false }), ["orders:write"]);
      cached = await make(new Tokend({ baseUrl: srv.url }), ["orders:write"]);
      down = await make(new Tokend({ baseUrl: "http://127.0.0.1:9", cache: false }), ["orders:write"]);
    });
    after(async () => {
      await h.close();
      await cached.close();
      await down.close();
    });

    test("no token: 401 with a Bearer challenge and a problem body", async () => {
      const a = await h.request("GET", "/orders");
      assert.equal(a.status, 401);
      assert.equal(a.headers.get("www-authenticate"), 'Bearer realm="tokend"');
      assert.match(a.headers.get("content-type")!, /^application\/problem\+json/);
      assert.equal(a.body.code, "UNAUTHENTICATED");
      assert.equal(a.body.status, 401);
    });

    test("a malformed token: 401 invalid_token, reason MALFORMED", async () => {
      const a = await h.request("GET", "/orders", { Authorization: "Bearer shop_nope" });
      assert.equal(a.status, 401);
      assert.equal(a.headers.get("www-authenticate"), 'Bearer realm="tokend", error="invalid_token"');
      assert.equal(a.body.reason, "MALFORMED");
    });

    test("a read_only token reads, by Bearer or X-API-Key, and the handler sees who called", async () => {
      const t = await token({ access: "read_only" });
      const hdrs: Record<string, string>[] = [{ Authorization: "Bearer " + t.secret }, { authorization: "bearer  " + t.secret + " " }, { "X-API-Key": t.secret }];
      for (const hdr of hdrs) {
        const a = await h.request("GET", "/orders", hdr);
        assert.equal(a.status, 200, JSON.stringify(a.body));
        assert.match(a.body.name, /^t/);
      }
    });

    test("a read_only token cannot write: 403 insufficient_scope", async () => {
      const t = await token({ access: "read_only" });
      const a = await h.request("POST", "/orders", { Authorization: "Bearer " + t.secret });
      assert.equal(a.status, 403);
      assert.equal(a.headers.get("www-authenticate"), 'Bearer realm="tokend", error="insufficient_scope"');
      assert.deepEqual([a.body.code, a.body.reason], ["FORBIDDEN", "INSUFFICIENT_PERMISSIONS"]);
    });

    test("permissions given to the middleware replace the method's", async () => {
      const reader = await token({ access: "custom", permissions: ["orders:read"] });
      const writer = await token({ access: "custom", permissions: ["orders:write"] });
      assert.equal((await h.request("GET", "/admin", { Authorization: "Bearer " + reader.secret })).status, 403);
      assert.equal((await h.request("GET", "/admin", { Authorization: "Bearer " + writer.secret })).status, 200);
    });

    test("a revoked token: 401, reason REVOKED", async () => {
      const t = await token({ access: "read_only" });
      await admin.revokeToken(t.id);
      const a = await h.request("GET", "/orders", { Authorization: "Bearer " + t.secret });
      assert.equal(a.status, 401);
      assert.equal(a.body.reason, "REVOKED");
    });

    test("an address outside allowed_ips: 403 IP_NOT_ALLOWED", async () => {
      const t = await token({ access: "read_only", allowed_ips: ["10.0.0.0/8"] });
      const a = await h.request("GET", "/orders", { Authorization: "Bearer " + t.secret });
      assert.deepEqual([a.status, a.body.reason], [403, "IP_NOT_ALLOWED"]);
      const ok = await token({ access: "read_only", allowed_ips: ["127.0.0.0/8"] });
      assert.equal((await h.request("GET", "/orders", { Authorization: "Bearer " + ok.secret })).status, 200);
    });

    test("a standard token from a browser Origin is refused", async () => {
      const t = await token({ access: "read_only" });
      const a = await h.request("GET", "/orders", { Authorization: "Bearer " + t.secret, Origin: "https://evil.example" });
      assert.deepEqual([a.status, a.body.reason], [403, "ORIGIN_NOT_ALLOWED"]);
    });

    test("an overlong Origin or User-Agent is no 503: refused as an origin, clipped as an agent", async () => {
      const t = await token({ access: "read_only" });
      const a = await h.request("GET", "/orders", { Authorization: "Bearer " + t.secret, Origin: "https://" + "a".repeat(600) + ".example" });
      assert.deepEqual([a.status, a.body.reason], [403, "ORIGIN_NOT_ALLOWED"]);
      const ua = await h.request("GET", "/orders", { Authorization: "Bearer " + t.secret, "User-Agent": "x".repeat(2000) });
      assert.equal(ua.status, 200);
    });

    test("a used-up rate limit: 429 with Retry-After and RateLimit headers", async () => {
      const t = await token({ access: "read_only", rate_limit: { limit: 1, window: "1h" } });
      const first = await h.request("GET", "/orders", { Authorization: "Bearer " + t.secret });
      assert.equal(first.status, 200);
      assert.equal(first.body.remaining, 0);
      const a = await h.request("GET", "/orders", { Authorization: "Bearer " + t.secret });
      assert.equal(a.status, 429);
      assert.ok(Number(a.headers.get("retry-after")) >= 1, a.headers.get("retry-after") ?? "no Retry-After");
      assert.equal(a.headers.get("ratelimit-remaining"), "0");
      assert.deepEqual([a.body.code, a.body.reason], ["RATE_LIMITED", "RATE_LIMITED"]);
    });

    test("with the cache, a revoked token passes until the TTL, and a used-up limit is never cached", async () => {
      const t = await token({ access: "read_only", rate_limit: { limit: 1, window: "1h" } });
      assert.equal((await cached.request("GET", "/orders", { Authorization: "Bearer " + t.secret })).status, 200);
      assert.equal((await cached.request("GET", "/orders", { Authorization: "Bearer " + t.secret })).status, 429);
      const u = await token({ access: "read_only" });
      assert.equal((await cached.request("GET", "/orders", { Authorization: "Bearer " + u.secret })).status, 200);
      await admin.revokeToken(u.id);
      assert.equal((await cached.request("GET", "/orders", { Authorization: "Bearer " + u.secret })).status, 200);
    });

    test("tokend unreachable: 503 UNAVAILABLE, never through", async () => {
      const t = await token({ access: "read_only" });
      const a = await down.request("GET", "/orders", { Authorization: "Bearer " + t.secret });
      assert.equal(a.status, 503);
      assert.equal(a.body.code, "UNAVAILABLE");
    });
  });
}
